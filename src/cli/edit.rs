//! The commands that edit or export the config's sources: `add` (one feed, checked
//! by fetching it first), `import-opml` and `export-opml`.

use super::inspect::fetch_feed;
use crate::config::{self, Config};
use crate::fetch::Fetcher;
use crate::fetch::discover;
use anyhow::Context;
use std::path::Path;
use url::Url;

/// `tributary add`: fetches and checks the feed (following autodiscovery), then
/// appends it to the config file.
pub(super) fn add(
    config: &Config,
    target: &str,
    name: Option<String>,
    tags: Vec<String>,
    dry_run: bool,
) -> anyhow::Result<()> {
    let url = Url::parse(target.trim())
        .ok()
        .filter(|url| matches!(url.scheme(), "http" | "https") && url.host().is_some())
        .with_context(|| {
            format!("`{target}` is not an http(s) URL; write it in full, like \"https://example.org/rss.xml\"")
        })?;
    if !url.username().is_empty() || url.password().is_some() {
        anyhow::bail!(
            "`{}` has a user name or password in it, which would be published with the URL; add the source without them and write them as `username` and `password` in its [[source]] table (sent to its host only)",
            config::shown_url(url.as_str(), &[])
        );
    }
    let already = |url: &Url| {
        config
            .sources
            .iter()
            .chain(&config.disabled)
            .find(|s| s.url == *url)
            .map(|s| s.id.clone())
    };
    if let Some(id) = already(&url) {
        anyhow::bail!(
            "{url} is already a source in {} (as {id})",
            config.path.display()
        );
    }
    let fetcher = Fetcher::new(&config.poll).context("setting up the HTTP client")?;
    let (resolved, document) = fetch_feed(&fetcher, &url, chrono_tz::UTC)?;
    if let Some(id) = already(&resolved.feed_url) {
        anyhow::bail!(
            "{url} leads to the feed {}, which is already a source in {} (as {id})",
            resolved.feed_url,
            config.path.display()
        );
    }
    let text = read_or_empty(&config.path)?;
    let new = crate::config::add::NewSource {
        url: Some(resolved.feed_url.clone()),
        name: name.map(|n| n.trim().to_string()).filter(|n| !n.is_empty()),
        tags,
    };
    let edited = crate::config::add::append_source(&text, &new)
        .with_context(|| format!("adding to {}", config.path.display()))?;
    // The file is written only once the result is known to load.
    let written = super::manage::write_or_diff(&config.path, &text, &edited, dry_run)?;
    if let Some((via, advertised)) = &resolved.discovery {
        let how = match via {
            discover::Via::Link => format!("it advertises {} feed(s)", advertised.len()),
            discover::Via::FallbackPath => {
                "it advertises none; found one at a common path".to_string()
            }
        };
        println!("{url} is a web page; {how}; adding {}", resolved.feed_url);
    }
    println!(
        "{} {} to {}: \"{}\", {} items",
        if written { "added" } else { "would add" },
        resolved.feed_url,
        config.path.display(),
        new.name
            .as_deref()
            .or(document.feed.title.as_deref())
            .unwrap_or("(untitled feed)"),
        document.items.len()
    );
    if written {
        println!("the daemon starts polling it when it next reads the config (reload or restart)");
    }
    Ok(())
}

pub(super) fn import_opml(file: &Path, config_path: &Path, dry_run: bool) -> anyhow::Result<()> {
    let bytes = std::fs::read(file).with_context(|| format!("reading {}", file.display()))?;
    let feeds = crate::config::import::read_opml(&bytes)
        .with_context(|| format!("reading {}", file.display()))?;
    let text = read_or_empty(config_path)?;
    // The config as it is must be valid: a problem is shown with its line and column
    // before anything is changed.
    let current = config::parse(config_path, &text, None)?;
    let configured: Vec<Url> = current
        .sources
        .iter()
        .chain(&current.disabled)
        .map(|s| s.url.clone())
        .collect();
    let (updated, report) = crate::config::import::append_sources(&text, &configured, &feeds)
        .with_context(|| format!("adding to {}", config_path.display()))?;
    for (url, reason) in &report.invalid {
        eprintln!("skipped {url}: {reason}");
    }
    if let Some(updated) = updated {
        super::manage::write_or_diff(config_path, &text, &updated, dry_run)?;
    }
    let added = if dry_run { "would add" } else { "added" };
    for feed in &report.added {
        match &feed.name {
            Some(name) => println!("{added} {} ({name})", feed.url),
            None => println!("{added} {}", feed.url),
        }
    }
    println!(
        "{}: {} sources {}, {} already there, {} skipped",
        config_path.display(),
        report.added.len(),
        if dry_run { "to add" } else { "added" },
        report.already.len(),
        report.invalid.len()
    );
    Ok(())
}

/// The text of the config file at `path`; empty when there is none yet (`add` and
/// `import-opml` then create it).
fn read_or_empty(path: &Path) -> anyhow::Result<String> {
    match std::fs::read_to_string(path) {
        Ok(text) => Ok(text),
        Err(err) if err.kind() == std::io::ErrorKind::NotFound => Ok(String::new()),
        Err(err) => Err(err).with_context(|| format!("reading {}", path.display())),
    }
}

/// The configured sources as OPML 2.0, named as in the config (else by URL).
pub(super) fn export_opml(config: &Config) -> String {
    use crate::render::{PageInfo, SourceEntry};
    let page = PageInfo {
        title: config.publish.title.clone(),
        description: config.publish.description.clone(),
        language: config.publish.language.clone(),
        timezone: config.publish.timezone,
        sources: config
            .sources
            .iter()
            .map(|source| SourceEntry {
                slug: source.id.slug(),
                name: config::source_name(source.name.as_deref(), None)
                    .unwrap_or_else(|| source.shown_url()),
                url: source.shown_url(),
                tags: source.tags.clone(),
            })
            .collect(),
        tags: Vec::new(),
    };
    String::from_utf8(crate::render::render_opml(&page)).expect("OPML is UTF-8")
}
