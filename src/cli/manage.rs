//! The commands that manage the sources in the config file: `remove`, `enable`,
//! `disable`; `--dry-run` of every command that edits the file ([`write_or_diff`]);
//! and `config`, the effective config with every default filled in.

use crate::config::change::{Change, change_source};
use crate::config::{self, Config, Interval, SourceConfig, SourceKind};
use anyhow::Context;
use std::path::Path;
use std::time::Duration;
use toml_edit::{Array, ArrayOfTables, DocumentMut, InlineTable, Item, Table, value};

/// What a secret is shown as.
pub const REDACTED: &str = "<redacted>";

/// Writes `new` over the config at `path` (atomically, keeping its mode and owner)
/// once it checks out; with `dry_run`, prints the change as a unified diff instead
/// and writes nothing. Returns whether it wrote.
pub(super) fn write_or_diff(
    path: &Path,
    old: &str,
    new: &str,
    dry_run: bool,
) -> anyhow::Result<bool> {
    config::parse(path, new, None).map_err(|err| {
        anyhow::anyhow!("the change would make the config invalid; nothing was written: {err}")
    })?;
    if dry_run {
        let name = path.display().to_string();
        let diff = similar::TextDiff::from_lines(old, new);
        print!("{}", diff.unified_diff().header(&name, &name));
        eprintln!("dry run: {name} was not changed");
        return Ok(false);
    }
    config::replace_file(path, new).with_context(|| format!("writing {}", path.display()))?;
    Ok(true)
}

fn read(path: &Path) -> anyhow::Result<String> {
    std::fs::read_to_string(path).with_context(|| format!("reading {}", path.display()))
}

/// `tributary remove`.
pub(super) fn remove(path: &Path, target: &str, dry_run: bool) -> anyhow::Result<()> {
    let text = read(path)?;
    let (edited, url) = change_source(&text, target, Change::Remove)
        .with_context(|| format!("removing from {}", path.display()))?;
    if write_or_diff(path, &text, &edited, dry_run)? {
        println!(
            "removed {} from {}; a running daemon stops polling it when it next reads the config (reload); its items age out by retention",
            config::shown_url(&url, &[]),
            path.display()
        );
    }
    Ok(())
}

/// `tributary enable` (`on`) and `tributary disable`.
pub(super) fn set_enabled(
    path: &Path,
    target: &str,
    on: bool,
    dry_run: bool,
) -> anyhow::Result<()> {
    let text = read(path)?;
    let (edited, url) = change_source(&text, target, Change::Enable(on))
        .with_context(|| format!("editing {}", path.display()))?;
    let shown = config::shown_url(&url, &[]);
    if edited == text {
        println!(
            "{shown} is already {}",
            if on { "enabled" } else { "disabled" }
        );
        return Ok(());
    }
    if write_or_diff(path, &text, &edited, dry_run)? {
        let (done, then) = if on {
            ("enabled", "starts polling it")
        } else {
            ("disabled", "stops polling it")
        };
        println!(
            "{done} {shown} in {}; a running daemon {then} when it next reads the config (reload)",
            path.display()
        );
    }
    Ok(())
}

/// `tributary config`: `config` as TOML, every default written out, secrets (the
/// password, header values) as [`REDACTED`], URLs as every output shows them.
pub(super) fn effective(config: &Config) -> String {
    let mut doc = DocumentMut::new();
    let mut section = Table::new();
    section.insert("watch", value(config.watch));
    doc.insert("config", Item::Table(section));
    doc.insert("server", Item::Table(server(config)));
    let mut store = Table::new();
    store.insert("path", value(config.store_path.display().to_string()));
    store.insert("max_age", value(duration(config.retention.max_age)));
    store.insert("max_items", value(config.retention.max_items as i64));
    store.insert(
        "cache_mb",
        value((config.store_cache_bytes / (1024 * 1024)) as i64),
    );
    doc.insert("store", Item::Table(store));
    let poll = &config.poll;
    let mut table = Table::new();
    table.insert("interval", value(interval(poll.interval)));
    table.insert("min_interval", value(duration(poll.min_interval)));
    table.insert("max_interval", value(duration(poll.max_interval)));
    table.insert("concurrency", value(poll.concurrency as i64));
    table.insert("per_host", value(poll.per_host as i64));
    table.insert("timeout", value(duration(poll.timeout)));
    table.insert("connect_timeout", value(duration(poll.connect_timeout)));
    table.insert("max_body_bytes", value(poll.max_body_bytes as i64));
    doc.insert("poll", Item::Table(table));
    doc.insert("publish", Item::Table(publish(config)));
    let mut sources = ArrayOfTables::new();
    let all = config.sources.iter().map(|s| (s, true));
    for (source, enabled) in all.chain(config.disabled.iter().map(|s| (s, false))) {
        let mut table = source_table(source, enabled);
        table.decor_mut().set_prefix("\n");
        sources.push(table);
    }
    doc.insert("source", Item::ArrayOfTables(sources));
    doc.to_string()
}

fn server(config: &Config) -> Table {
    let mut server = Table::new();
    server.insert("listen", value(config.listen.to_string()));
    if let Some(url) = &config.public_url {
        server.insert("public_url", value(url.as_str()));
    }
    server.insert(
        "hostnames",
        value(config.hostnames.iter().collect::<Array>()),
    );
    server.insert("send_timeout", value(duration(config.send_timeout)));
    if let Some(admin) = config.admin_listen {
        server.insert("admin_listen", value(admin.to_string()));
    }
    server.insert("metrics", value(config.metrics));
    server
}

fn publish(config: &Config) -> Table {
    let publish = &config.publish;
    let mut table = Table::new();
    table.insert("title", value(&publish.title));
    table.insert("description", value(&publish.description));
    if let Some(link) = &publish.link {
        table.insert("link", value(link.as_str()));
    }
    table.insert("max_items", value(publish.max_items as i64));
    if let Some(cap) = publish.max_per_source {
        table.insert("max_per_source", value(cap as i64));
    }
    table.insert("language", value(&publish.language));
    table.insert("timezone", value(publish.timezone.name()));
    table
}

fn source_table(source: &SourceConfig, enabled: bool) -> Table {
    let mut table = Table::new();
    table.insert("url", value(source.shown_url()));
    table.insert("enabled", value(enabled));
    if let Some(name) = &source.name {
        table.insert("name", value(name));
    }
    table.insert("tags", value(source.tags.iter().collect::<Array>()));
    table.insert("interval", value(interval(source.interval)));
    table.insert("timezone", value(source.timezone.name()));
    let patterns = |set: &Option<regex::RegexSet>| {
        set.iter().flat_map(|set| set.patterns()).collect::<Array>()
    };
    table.insert("include", value(patterns(&source.filter.include)));
    table.insert("exclude", value(patterns(&source.filter.exclude)));
    let on = match source.filter.on {
        crate::ingest::filter::FilterOn::Title => "title",
        crate::ingest::filter::FilterOn::Summary => "summary",
        crate::ingest::filter::FilterOn::Both => "both",
    };
    table.insert("filter_on", value(on));
    if let Some(max) = source.max_items {
        table.insert("max_items", value(max as i64));
    }
    let request = &source.request;
    table.insert("allow_private", value(request.addresses.allows_private()));
    table.insert(
        "secret_query",
        value(source.secret_query.iter().collect::<Array>()),
    );
    if let Some(agent) = &request.user_agent {
        table.insert("user_agent", value(agent));
    }
    if let Some((user, password)) = &request.basic_auth {
        table.insert("username", value(user));
        if password.is_some() {
            table.insert("password", value(REDACTED));
        }
    }
    let mut headers = InlineTable::new();
    for name in request.headers.keys() {
        headers.insert(name, REDACTED.into());
    }
    table.insert("headers", value(headers));
    match &source.kind {
        SourceKind::Feed => {
            table.insert("kind", value("feed"));
        }
        SourceKind::Html(rules) => {
            table.insert("kind", value("html"));
            table.insert("selectors", Item::Table(selectors(&rules.text)));
        }
    }
    table
}

fn selectors(text: &crate::ingest::scrape::RulesText) -> Table {
    let mut table = Table::new();
    let optional = [
        ("link_attribute", &text.link_attribute),
        ("date", &text.date),
        ("date_attribute", &text.date_attribute),
        ("date_format", &text.date_format),
        ("summary", &text.summary),
    ];
    table.insert("item", value(&text.item));
    table.insert("title", value(&text.title));
    table.insert("link", value(&text.link));
    for (key, text) in optional {
        if let Some(text) = text {
            table.insert(key, value(text));
        }
    }
    table
}

fn duration(duration: Duration) -> String {
    humantime::format_duration(duration).to_string()
}

fn interval(interval: Interval) -> String {
    match interval {
        Interval::Auto => "auto".to_string(),
        Interval::Fixed(every) => duration(every),
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn the_effective_config_reads_back_as_the_same_config() {
        let text = "[poll]\ninterval = \"20m\"\n[[source]]\nurl = \"https://a.example/rss?token=abc\"\nname = \"A\"\nusername = \"me\"\npassword = \"hunter22\"\nheaders = { X-Key = \"k3y\" }\ninclude = [\"(?i)rust\"]\n[[source]]\nurl = \"https://b.example/\"\nenabled = false\nkind = \"html\"\n[source.selectors]\nitem = \"li\"\ntitle = \"a\"\nlink = \"a\"\n";
        let path = Path::new("feeds.toml");
        let config = config::parse(path, text, None).unwrap();
        let shown = effective(&config);
        for secret in ["hunter22", "k3y", "abc"] {
            assert!(!shown.contains(secret), "{secret} in {shown}");
        }
        assert!(shown.contains("password = \"<redacted>\""), "{shown}");
        assert!(shown.contains("max_body_bytes = 16777216"), "{shown}");
        let again = config::parse(path, &shown, None).unwrap();
        assert_eq!(effective(&again), shown);
        assert_eq!(again.poll, config.poll);
        assert_eq!(again.sources[0].interval, config.sources[0].interval);
        assert_eq!(again.disabled.len(), 1);
        assert!(matches!(again.disabled[0].kind, SourceKind::Html(_)));
    }
}
