//! The `tributary` command: `run` the daemon, `check` a config, `poll` once,
//! `inspect` one feed or page, `add` a source to the config, list the `sources` and
//! their status, `import-opml` and `export-opml`; a hidden `generate` writes the man
//! pages and shell completions.

use crate::config::{self, Config};
use crate::fetch::discover;
use crate::fetch::{FetchOutcome, Fetcher, RequestOptions, Validators};
use crate::ingest::normalize::{Document, normalize_document};
use crate::store::StoreError;
use anyhow::Context;
use clap::{CommandFactory, Parser, Subcommand};
use std::path::{Path, PathBuf};
use std::process::ExitCode;
use url::Url;

/// sysexits.h EX_CONFIG: the configuration is wrong; restarting will not help.
const EXIT_CONFIG: u8 = 78;
/// sysexits.h EX_IOERR: the store could not be read or written.
const EXIT_STORE_IO: u8 = 74;
/// sysexits.h EX_UNAVAILABLE: another process (a running daemon) holds the store.
const EXIT_STORE_BUSY: u8 = 69;

/// The examples of `--help`.
const EXAMPLES: &str = "Every command that reads a config takes --config PATH (default: feeds.toml, \
or $TRIBUTARY_CONFIG).\n\nExamples:\n  tributary check --config /etc/tributary/feeds.toml\n  \
tributary run --config /etc/tributary/feeds.toml\n  tributary add https://example.org/ --tag news\n  \
tributary sources\n  \
tributary import-opml subscriptions.opml\n  tributary export-opml > feeds.opml";

const EXIT_CODES: &str = "\
Exit status:
  0   success
  1   any other failure (the message says what)
  2   bad usage: unknown command or option
  69  the store is in use by another process (is the daemon running?)
  74  the store could not be read or written
  78  the config file is missing or invalid (every mistake is listed)";

#[derive(Parser)]
#[command(
    name = "tributary",
    version,
    about = "A feed aggregator daemon: polls RSS, Atom and JSON Feed sources and republishes the merged river of news",
    long_about = "A feed aggregator daemon: polls the RSS, Atom and JSON Feed sources listed in feeds.toml, \
keeps their items in one store, and republishes the merged river of news over HTTP \
(RSS 2.0, Atom, JSON Feed, an HTML page and OPML).",
    after_help = format!("{EXAMPLES}\n\n{EXIT_CODES}")
)]
pub struct Cli {
    /// Log level: error, warn, info, debug or trace [default: $RUST_LOG, else info].
    #[arg(long, global = true, value_name = "LEVEL")]
    pub log_level: Option<tracing::level_filters::LevelFilter>,
    #[command(subcommand)]
    pub command: Command,
}

// Parsed once at start-up: the size of the largest variant costs nothing.
#[allow(clippy::large_enum_variant)]
#[derive(Subcommand)]
pub enum Command {
    /// Run the daemon.
    Run {
        #[command(flatten)]
        config: ConfigArg,
    },
    /// Check the config and print a summary; exit 78 when it is invalid.
    Check {
        #[command(flatten)]
        config: ConfigArg,
    },
    /// Poll every source once now, store what they hold, print a summary and exit
    /// (the daemon must not be running on the same store).
    Poll {
        #[command(flatten)]
        config: ConfigArg,
    },
    /// Fetch (or read) one feed and print it as the daemon would store it. A web page
    /// is searched for the feed it advertises; with --item, --title and --link its
    /// items are read with those CSS selectors, as a kind = "html" source would.
    Inspect {
        /// A feed or page file, or an http(s) URL.
        file_or_url: String,
        /// Print one JSON object instead of a summary.
        #[arg(long)]
        json: bool,
        /// Read dates that name no zone in this IANA time zone, as the source's
        /// `timezone` would.
        #[arg(long, default_value = "UTC")]
        timezone: chrono_tz::Tz,
        /// The address a page file was saved from: relative links resolve against it
        /// (the links of a file without it cannot be made http(s) links).
        #[arg(long, requires = "item")]
        base_url: Option<Url>,
        #[command(flatten)]
        selectors: SelectorArgs,
    },
    /// Fetch a feed (or the feed a web page advertises), check that it reads, and
    /// append it to the config as a [[source]], keeping the file's comments. A
    /// running daemon picks it up on its next reload.
    Add {
        /// The feed's or the site's http(s) URL.
        url: String,
        /// The source's display name (default: the feed's own title).
        #[arg(long)]
        name: Option<String>,
        /// A tag for every item of the source; repeat for more.
        #[arg(long = "tag")]
        tags: Vec<String>,
        #[command(flatten)]
        config: ConfigArg,
    },
    /// Print each source's status: ok, failing, backing off or gone, its last success
    /// and error, next poll and items stored.
    ///
    /// Asks the running daemon (at the config's [server] listen address); when none
    /// answers, reads the store directly.
    Sources {
        #[command(flatten)]
        config: ConfigArg,
        /// Print the JSON of /sources.json instead of a table.
        #[arg(long)]
        json: bool,
    },
    /// Append the feeds of an OPML subscription list to the config, keeping its
    /// comments and layout.
    ///
    /// Feeds already configured are skipped; folders and OPML categories become
    /// tags. A running daemon picks the new sources up on its next reload.
    ImportOpml {
        /// The OPML file (as exported by most feed readers).
        file: PathBuf,
        #[command(flatten)]
        config: ConfigArg,
    },
    /// Print the configured sources as an OPML 2.0 subscription list.
    ExportOpml {
        #[command(flatten)]
        config: ConfigArg,
    },
    /// Write the man pages or shell completions, generated from these definitions.
    #[command(hide = true)]
    Generate {
        #[command(subcommand)]
        what: Generated,
    },
}

#[derive(Subcommand)]
pub enum Generated {
    /// tributary.1 and one page per command (tributary-run.1, ...).
    Man {
        /// The directory to write them to (created when missing).
        #[arg(long)]
        out: PathBuf,
    },
    /// Completions for bash (tributary.bash), zsh (_tributary) and fish
    /// (tributary.fish).
    Completions {
        /// The directory to write them to (created when missing).
        #[arg(long)]
        out: PathBuf,
    },
}

/// The `[source.selectors]` of a kind = "html" source, on the command line.
#[derive(clap::Args)]
pub struct SelectorArgs {
    /// CSS selector of one element per news item.
    #[arg(long, requires_all = ["title", "link"])]
    item: Option<String>,
    /// CSS selector of the headline, inside an item.
    #[arg(long, requires = "item")]
    title: Option<String>,
    /// CSS selector of the element carrying the link, inside an item.
    #[arg(long, requires = "item")]
    link: Option<String>,
    /// The attribute holding the link.
    #[arg(long, requires = "item", default_value = crate::ingest::scrape::DEFAULT_LINK_ATTRIBUTE)]
    link_attribute: String,
    /// CSS selector of the element carrying the date, inside an item.
    #[arg(long, requires = "item")]
    date: Option<String>,
    /// chrono strftime format of the date, e.g. "%H:%M %d.%m.%Y", read in --timezone.
    #[arg(long, requires = "date")]
    date_format: Option<String>,
    /// Read the date from this attribute of the date element instead of its text.
    #[arg(long, requires = "date")]
    date_attribute: Option<String>,
    /// CSS selector of the element whose HTML becomes the summary.
    #[arg(long, requires = "item")]
    summary: Option<String>,
}

impl SelectorArgs {
    fn rules(&self) -> anyhow::Result<Option<crate::ingest::scrape::Rules>> {
        let (Some(item), Some(title), Some(link)) = (&self.item, &self.title, &self.link) else {
            return Ok(None);
        };
        let text = crate::ingest::scrape::RulesText {
            item: item.clone(),
            title: title.clone(),
            link: link.clone(),
            link_attribute: Some(self.link_attribute.clone()),
            date: self.date.clone(),
            date_attribute: self.date_attribute.clone(),
            date_format: self.date_format.clone(),
            summary: self.summary.clone(),
        };
        Ok(Some(crate::ingest::scrape::Rules::new(text)?))
    }
}

#[derive(clap::Args)]
pub struct ConfigArg {
    /// The config file.
    #[arg(
        long = "config",
        env = "TRIBUTARY_CONFIG",
        default_value = "feeds.toml"
    )]
    path: PathBuf,
}

/// Runs one command to its end; the exit code says how it went.
pub fn dispatch(command: Command) -> ExitCode {
    if !matches!(command, Command::Run { .. }) {
        crate::sys::stop_quietly_on_closed_pipe();
    }
    match command {
        Command::Run { config } => run(&config.path),
        Command::Check { config } => check(&config.path),
        Command::Poll { config } => match load_config(&config.path) {
            Ok(config) => report(poll_once(config)),
            Err(code) => code,
        },
        Command::Inspect {
            file_or_url,
            json,
            timezone,
            base_url,
            selectors,
        } => report(selectors.rules().and_then(|rules| match rules {
            Some(rules) => inspect_page(&file_or_url, json, timezone, &rules, base_url),
            None => inspect(&file_or_url, json, timezone),
        })),
        Command::Add {
            url,
            name,
            tags,
            config,
        } => match load_config(&config.path) {
            Ok(loaded) => report(add(&loaded, &url, name, tags)),
            Err(code) => code,
        },
        Command::Sources { config, json } => match load_config(&config.path) {
            Ok(config) => report(sources(&config, json)),
            Err(code) => code,
        },
        Command::ImportOpml { file, config } => report(import_opml(&file, &config.path)),
        Command::ExportOpml { config } => match load_config(&config.path) {
            Ok(config) => {
                print!("{}", export_opml(&config));
                ExitCode::SUCCESS
            }
            Err(code) => code,
        },
        Command::Generate { what } => report(generate(what)),
    }
}

fn load_config(path: &Path) -> Result<Config, ExitCode> {
    config::load(path).map_err(|err| {
        eprintln!("{err}");
        ExitCode::from(EXIT_CONFIG)
    })
}

fn run(path: &Path) -> ExitCode {
    let config = match load_config(path) {
        Ok(config) => config,
        Err(code) => return code,
    };
    raise_open_file_limit();
    let runtime = match daemon_runtime() {
        Ok(runtime) => runtime,
        Err(err) => return report(Err(anyhow::Error::new(err).context("starting the runtime"))),
    };
    report(runtime.block_on(async {
        let listener = match passed_listener().context("taking the socket systemd passed")? {
            Some(listener) => {
                tracing::info!(
                    "serving on the socket passed by systemd; [server] listen is not used"
                );
                listener
            }
            None => tokio::net::TcpListener::bind(config.listen)
                .await
                .with_context(|| {
                    format!(
                        "listening on {} (change [server] listen in {})",
                        config.listen,
                        config.path.display()
                    )
                })?,
        };
        crate::daemon::run(config, listener, crate::daemon::shutdown::signal()).await
    }))
}

/// Raises the soft limit of open files to the hard one ([`crate::sys::raise_open_file_limit`]),
/// and says so in the log.
fn raise_open_file_limit() {
    match crate::sys::raise_open_file_limit() {
        Ok(Some((from, to))) => tracing::info!(from, to, "raised the limit of open files"),
        Ok(None) => {}
        Err(err) => tracing::warn!(error = %err, "cannot raise the limit of open files"),
    }
}

/// The listening socket systemd passed (socket activation), if any, as a tokio
/// listener. Must be called inside the runtime.
fn passed_listener() -> anyhow::Result<Option<tokio::net::TcpListener>> {
    let Some(listener) = crate::sys::systemd_listener()? else {
        return Ok(None);
    };
    listener.set_nonblocking(true)?;
    Ok(Some(tokio::net::TcpListener::from_std(listener)?))
}

/// The multi-threaded runtime of `run` and `poll`. Parsing and store writes run on
/// blocking threads; tokio's default allows 512 of them, and with a thousand sources
/// due at once each idle one keeps its stack and its share of the allocator's caches.
/// A few per core keep the CPU just as busy at a fraction of the memory.
fn daemon_runtime() -> std::io::Result<tokio::runtime::Runtime> {
    let cores = std::thread::available_parallelism().map_or(2, |n| n.get());
    tokio::runtime::Builder::new_multi_thread()
        .enable_all()
        .max_blocking_threads((2 * cores).max(4))
        .build()
}

fn check(path: &Path) -> ExitCode {
    let config = match load_config(path) {
        Ok(config) => config,
        Err(code) => return code,
    };
    println!("{}: ok", config.path.display());
    println!("  sources: {}", config.sources.len());
    println!("  store:   {}", config.store_path.display());
    println!("  listen:  {}", config.listen);
    println!(
        "  publish: \"{}\", {} items, language {}, times in {}",
        config.publish.title,
        config.publish.max_items,
        config.publish.language,
        config.publish.timezone.name()
    );
    if let Some(url) = &config.public_url {
        println!("  public:  {url}");
    }
    ExitCode::SUCCESS
}

fn poll_once(config: Config) -> anyhow::Result<()> {
    let runtime = daemon_runtime().context("starting the runtime")?;
    runtime.block_on(async {
        let store = crate::store::Store::open(&config.store_path)
            .with_context(|| format!("opening the store at {}", config.store_path.display()))?;
        let started = std::time::Instant::now();
        let scheduler = crate::scheduler::Scheduler {
            store: store.clone(),
            fetcher: Fetcher::new(&config.poll).context("setting up the HTTP client")?,
            sources: config.sources.clone(),
            poll: config.poll.clone(),
            metrics: Default::default(),
            health: Default::default(),
        };
        let summary = scheduler.poll_once().await;
        store.flush().await.context("flushing the store")?;
        println!(
            "polled {} sources in {:.2}s: {} ok, {} failed, {} gone",
            config.sources.len(),
            started.elapsed().as_secs_f64(),
            summary.ok,
            summary.failed,
            summary.gone
        );
        Ok(())
    })
}

fn inspect(target: &str, json: bool, zone: chrono_tz::Tz) -> anyhow::Result<()> {
    let (document, discovery) = if target.starts_with("http://") || target.starts_with("https://") {
        inspect_url(target, zone)?
    } else {
        let body = std::fs::read(target).with_context(|| format!("reading {target}"))?;
        let base = std::path::absolute(target)
            .ok()
            .and_then(|p| Url::from_file_path(p).ok());
        if discover::is_html(&body, None) {
            let page = crate::ingest::parse::decode_html(&body, None);
            let advertised = base
                .as_ref()
                .map(|base| discover::advertised_feeds(&page, base))
                .unwrap_or_default();
            anyhow::bail!("{target}: {}", page_without_feed(&advertised));
        }
        let document = normalize_document(&body, None, base.as_ref(), zone)
            .with_context(|| target.to_string())?;
        (document, None)
    };
    if json {
        let mut value = serde_json::to_value(&document)?;
        if let Some(discovery) = &discovery {
            value["discovery"] = serde_json::to_value(discovery)?;
        }
        println!("{}", serde_json::to_string_pretty(&value)?);
    } else {
        if let Some(discovery) = &discovery {
            print_discovery(discovery);
        }
        print_summary(&document);
    }
    Ok(())
}

/// What `inspect` found behind a web page.
#[derive(serde::Serialize)]
struct FoundBehindPage {
    page: Url,
    feed: Url,
    via: discover::Via,
    advertised: Vec<discover::Advertised>,
}

fn print_discovery(found: &FoundBehindPage) {
    println!("{} is a web page", found.page);
    if found.advertised.is_empty() {
        println!(
            "  it advertises no feed; found one at a common path: {}",
            found.feed
        );
    } else {
        println!("  it advertises {} feed(s):", found.advertised.len());
        for feed in &found.advertised {
            let title = feed
                .title
                .as_deref()
                .map(|t| format!("  \"{t}\""))
                .unwrap_or_default();
            println!("    {:9}  {}{title}", feed.kind.to_string(), feed.url);
        }
        println!("  inspecting {}", found.feed);
    }
    println!();
}

/// The error for a local page: files cannot be probed, so only its links can help.
fn page_without_feed(advertised: &[discover::Advertised]) -> String {
    if advertised.is_empty() {
        return "not a feed but an HTML page that advertises none; inspect the site's URL to probe common feed paths, or try selectors with --item, --title and --link".to_string();
    }
    let list: Vec<_> = advertised
        .iter()
        .map(|feed| format!("{} ({})", feed.url, feed.kind))
        .collect();
    format!(
        "not a feed but an HTML page; it advertises {}; inspect one of those",
        list.join(", ")
    )
}

fn inspect_url(
    target: &str,
    zone: chrono_tz::Tz,
) -> anyhow::Result<(Document, Option<FoundBehindPage>)> {
    let url = Url::parse(target).with_context(|| format!("`{target}` is not a valid URL"))?;
    let fetcher = Fetcher::new(&config::PollConfig::default())?;
    let (resolved, document) = fetch_feed(&fetcher, &url, zone)?;
    let found = resolved.discovery.map(|(via, advertised)| FoundBehindPage {
        page: url,
        feed: resolved.feed_url,
        via,
        advertised,
    });
    Ok((document, found))
}

/// Fetches `url` (following a web page to the feed it advertises) and normalizes the
/// feed: what both `inspect` and `add` check before they report or write anything.
fn fetch_feed(
    fetcher: &Fetcher,
    url: &Url,
    zone: chrono_tz::Tz,
) -> anyhow::Result<(discover::Resolved, Document)> {
    let runtime = tokio::runtime::Builder::new_current_thread()
        .enable_all()
        .build()?;
    let resolved = runtime
        .block_on(discover::resolve(
            fetcher,
            url,
            &RequestOptions::for_url(url),
        ))
        .with_context(|| url.to_string())?;
    let document = normalize_document(
        &resolved.fetched.body,
        resolved.fetched.content_type.as_deref(),
        Some(&resolved.fetched.response.final_url),
        zone,
    )
    .with_context(|| resolved.feed_url.to_string())?;
    Ok((resolved, document))
}

/// Fetches a page (or reads a file) and prints the items `rules` find on it.
fn inspect_page(
    target: &str,
    json: bool,
    zone: chrono_tz::Tz,
    rules: &crate::ingest::scrape::Rules,
    base_url: Option<Url>,
) -> anyhow::Result<()> {
    let (body, content_type, url) = if target.starts_with("http://")
        || target.starts_with("https://")
    {
        let url = Url::parse(target).with_context(|| format!("`{target}` is not a valid URL"))?;
        let fetcher = Fetcher::new(&config::PollConfig::default())?;
        let runtime = tokio::runtime::Builder::new_current_thread()
            .enable_all()
            .build()?;
        let fetched = match runtime
            .block_on(fetcher.fetch(&url, &Validators::default(), &RequestOptions::for_url(&url)))
            .with_context(|| target.to_string())?
        {
            FetchOutcome::Fetched(fetched) => fetched,
            FetchOutcome::NotModified(_) => {
                anyhow::bail!("{target}: server answered 304 to an unconditional request")
            }
        };
        (
            fetched.body,
            fetched.content_type,
            fetched.response.final_url,
        )
    } else {
        let body = std::fs::read(target).with_context(|| format!("reading {target}"))?;
        let url = match base_url {
            Some(url) => url,
            None => std::path::absolute(target)
                .ok()
                .and_then(|p| Url::from_file_path(p).ok())
                .with_context(|| format!("{target}: cannot make a file URL of it"))?,
        };
        (body, None, url)
    };
    let document = crate::ingest::scrape::scrape(&body, content_type.as_deref(), &url, rules, zone)
        .with_context(|| target.to_string())?;
    if json {
        println!("{}", serde_json::to_string_pretty(&document)?);
    } else {
        print_summary(&document);
    }
    Ok(())
}

/// `tributary add`: fetches and checks the feed (following autodiscovery), then
/// appends it to the config file.
fn add(
    config: &Config,
    target: &str,
    name: Option<String>,
    tags: Vec<String>,
) -> anyhow::Result<()> {
    let url = Url::parse(target.trim())
        .ok()
        .filter(|url| matches!(url.scheme(), "http" | "https") && url.host().is_some())
        .with_context(|| {
            format!("`{target}` is not an http(s) URL; write it in full, like \"https://example.org/rss.xml\"")
        })?;
    let already = |url: &Url| {
        config
            .sources
            .iter()
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
    let text = std::fs::read_to_string(&config.path)
        .with_context(|| format!("reading {}", config.path.display()))?;
    let new = crate::config::add::NewSource {
        url: Some(resolved.feed_url.clone()),
        name: name.map(|n| n.trim().to_string()).filter(|n| !n.is_empty()),
        tags,
    };
    let edited = crate::config::add::append_source(&text, &new)
        .with_context(|| format!("adding to {}", config.path.display()))?;
    // The file is written only once the result is known to load.
    config::parse(&config.path, &edited, None)
        .map_err(|err| anyhow::anyhow!("the new source would make the config invalid: {err}"))?;
    std::fs::write(&config.path, edited)
        .with_context(|| format!("writing {}", config.path.display()))?;
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
        "added {} to {}: \"{}\", {} items",
        resolved.feed_url,
        config.path.display(),
        new.name
            .as_deref()
            .or(document.feed.title.as_deref())
            .unwrap_or("(untitled feed)"),
        document.items.len()
    );
    println!("the daemon starts polling it when it next reads the config (reload or restart)");
    Ok(())
}

fn print_summary(document: &Document) {
    let feed = &document.feed;
    println!("{}", feed.title.as_deref().unwrap_or("(untitled feed)"));
    if let Some(link) = &feed.link {
        println!("{link}");
    }
    println!("{} items", document.items.len());
    for item in &document.items {
        let date = item.published.or(item.updated).map_or_else(
            || "no date".to_string(),
            |d| d.format("%Y-%m-%d %H:%M").to_string(),
        );
        println!(
            "  {date:16}  {}",
            item.title.as_deref().unwrap_or("(untitled)")
        );
        if let Some(link) = &item.link {
            println!("  {:16}  {link}", "");
        }
    }
}

/// Prints an error's whole chain on one line and picks the exit code.
fn report(result: anyhow::Result<()>) -> ExitCode {
    match result {
        Ok(()) => ExitCode::SUCCESS,
        Err(err) => {
            eprintln!("tributary: {err:#}");
            ExitCode::from(exit_code(&err))
        }
    }
}

/// The sysexits code of a failure: the store's errors have their own, so systemd
/// (`RestartPreventExitStatus=`) and scripts can tell them apart.
fn exit_code(err: &anyhow::Error) -> u8 {
    match err
        .chain()
        .find_map(|cause| cause.downcast_ref::<StoreError>())
    {
        Some(StoreError::Locked { .. }) => EXIT_STORE_BUSY,
        Some(_) => EXIT_STORE_IO,
        None if err
            .chain()
            .any(|cause| cause.downcast_ref::<config::ConfigError>().is_some()) =>
        {
            EXIT_CONFIG
        }
        None => 1,
    }
}

/// 3 seconds for the daemon to answer `tributary sources`: it serves from memory, so
/// a slower answer means it is not the daemon (or it is wedged), and the store is the
/// better source.
const DAEMON_ANSWER_TIMEOUT: std::time::Duration = std::time::Duration::from_secs(3);

fn sources(config: &Config, json: bool) -> anyhow::Result<()> {
    use crate::ops::status;
    let url = daemon_url(config.listen, "/sources.json");
    let (statuses, from) = match from_daemon(&url) {
        Ok(statuses) => (statuses, format!("from the daemon at {url}")),
        Err(unanswered) => {
            let statuses = from_store(config).map_err(|err| match err {
                // Kept in the chain, so the exit status is the store-busy one (69).
                locked @ crate::store::StoreError::Locked { .. } => {
                    anyhow::Error::new(locked).context(format!(
                        "no daemon answers at {url} ({unanswered:#}), and another process holds the store: \
                         is a daemon with another [server] listen running on it?"
                    ))
                }
                other => anyhow::Error::new(other).context(format!(
                    "reading the store at {}",
                    config.store_path.display()
                )),
            })?;
            let from = if config.store_path.exists() {
                format!(
                    "from the store at {} (no daemon answers at {url})",
                    config.store_path.display()
                )
            } else {
                format!(
                    "no store at {} yet, and no daemon answers at {url}",
                    config.store_path.display()
                )
            };
            (statuses, from)
        }
    };
    if json {
        println!(
            "{}",
            String::from_utf8(status::render_json(&statuses)).expect("JSON is UTF-8")
        );
    } else {
        eprintln!("{from}");
        print!("{}", status::render_table(&statuses, chrono::Utc::now()));
    }
    Ok(())
}

/// `http://{listen}{path}`, with a wildcard listen address replaced by loopback.
fn daemon_url(listen: std::net::SocketAddr, path: &str) -> String {
    let mut addr = listen;
    if addr.ip().is_unspecified() {
        addr.set_ip(match addr.ip() {
            std::net::IpAddr::V4(_) => std::net::Ipv4Addr::LOCALHOST.into(),
            std::net::IpAddr::V6(_) => std::net::Ipv6Addr::LOCALHOST.into(),
        });
    }
    format!("http://{addr}{path}")
}

fn from_daemon(url: &str) -> anyhow::Result<Vec<crate::ops::status::SourceStatus>> {
    let runtime = tokio::runtime::Builder::new_current_thread()
        .enable_all()
        .build()?;
    runtime.block_on(async {
        let client = reqwest::Client::builder()
            .timeout(DAEMON_ANSWER_TIMEOUT)
            .build()?;
        let response = client.get(url).send().await?.error_for_status()?;
        let body = response.bytes().await?;
        crate::ops::status::parse_json(&body).context("the answer is not tributary's source list")
    })
}

/// The statuses as the store remembers them; every source pending when there is no
/// store yet (opening one would create it).
fn from_store(
    config: &Config,
) -> Result<Vec<crate::ops::status::SourceStatus>, crate::store::StoreError> {
    use crate::ops::status;
    if !config.store_path.exists() {
        let never = crate::item::SourceState::default();
        return Ok(config
            .sources
            .iter()
            .map(|source| status::source_status(source, &never, Some(0)))
            .collect());
    }
    let store = crate::store::Store::open(&config.store_path)?;
    let counts = store.item_counts()?;
    status::collect(&config.sources, &store, |id| {
        Some(counts.get(id).copied().unwrap_or(0))
    })
}

fn import_opml(file: &Path, config_path: &Path) -> anyhow::Result<()> {
    let bytes = std::fs::read(file).with_context(|| format!("reading {}", file.display()))?;
    let feeds = crate::config::import::read_opml(&bytes)
        .with_context(|| format!("reading {}", file.display()))?;
    let text = match std::fs::read_to_string(config_path) {
        Ok(text) => text,
        Err(err) if err.kind() == std::io::ErrorKind::NotFound => String::new(),
        Err(err) => {
            return Err(err).with_context(|| format!("reading {}", config_path.display()));
        }
    };
    // The config as it is must be valid: a problem is shown with its line and column
    // before anything is changed.
    config::parse(config_path, &text, None)?;
    let mut document: toml_edit::DocumentMut = text
        .parse()
        .with_context(|| format!("reading {}", config_path.display()))?;
    let report = crate::config::import::append_sources(&mut document, &feeds);
    for (url, reason) in &report.invalid {
        eprintln!("skipped {url}: {reason}");
    }
    if !report.added.is_empty() {
        let updated = document.to_string();
        config::parse(config_path, &updated, None)
            .context("the imported sources would make the config invalid; nothing was written")?;
        write_replacing(config_path, &updated)
            .with_context(|| format!("writing {}", config_path.display()))?;
    }
    for feed in &report.added {
        match &feed.name {
            Some(name) => println!("added {} ({name})", feed.url),
            None => println!("added {}", feed.url),
        }
    }
    println!(
        "{}: {} sources added, {} already there, {} skipped",
        config_path.display(),
        report.added.len(),
        report.already.len(),
        report.invalid.len()
    );
    Ok(())
}

/// Replaces `path` with `text` atomically (a temporary file renamed over it), so a
/// crash leaves the old file or the new one, never half of one. The new file keeps
/// the old one's permissions and, when allowed, its owner: a `0640 root:tributary`
/// config holding feed credentials stays that way.
fn write_replacing(path: &Path, text: &str) -> std::io::Result<()> {
    use std::io::Write;
    let dir = match path.parent() {
        Some(dir) if !dir.as_os_str().is_empty() => dir,
        _ => Path::new("."),
    };
    let old = std::fs::metadata(path).ok();
    let mut temporary = tempfile::NamedTempFile::new_in(dir)?;
    temporary.write_all(text.as_bytes())?;
    temporary.as_file().sync_all()?;
    if let Some(old) = &old {
        temporary.as_file().set_permissions(old.permissions())?;
        #[cfg(unix)]
        {
            use std::os::unix::fs::MetadataExt;
            // Only root may give a file away; anyone else keeps their own ownership.
            let _ =
                std::os::unix::fs::fchown(temporary.as_file(), Some(old.uid()), Some(old.gid()));
        }
    }
    temporary.persist(path).map_err(|err| err.error)?;
    Ok(())
}

/// The configured sources as OPML 2.0, named as in the config (else by URL).
fn export_opml(config: &Config) -> String {
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
                    .unwrap_or_else(|| source.url.to_string()),
                url: source.url.to_string(),
                tags: source.tags.clone(),
            })
            .collect(),
        tags: Vec::new(),
    };
    String::from_utf8(crate::render::render_opml(&page)).expect("OPML is UTF-8")
}

fn generate(what: Generated) -> anyhow::Result<()> {
    let (Generated::Man { out } | Generated::Completions { out }) = &what;
    std::fs::create_dir_all(out).with_context(|| format!("creating {}", out.display()))?;
    let mut command = Cli::command();
    match what {
        Generated::Man { out } => {
            let mut written = vec![write_man(&out, "tributary", command.clone())?];
            for sub in command.get_subcommands().filter(|s| !s.is_hide_set()) {
                let name = format!("tributary-{}", sub.get_name());
                written.push(write_man(&out, &name, sub.clone().name(name.clone()))?);
            }
            for path in written {
                println!("{}", path.display());
            }
        }
        Generated::Completions { out } => {
            use clap_complete::Shell;
            for shell in [Shell::Bash, Shell::Zsh, Shell::Fish] {
                let path = clap_complete::generate_to(shell, &mut command, "tributary", &out)
                    .with_context(|| format!("writing {shell} completions"))?;
                println!("{}", path.display());
            }
        }
    }
    Ok(())
}

fn write_man(dir: &Path, name: &str, command: clap::Command) -> anyhow::Result<PathBuf> {
    let path = dir.join(format!("{name}.1"));
    let mut page = Vec::new();
    clap_mangen::Man::new(command).render(&mut page)?;
    std::fs::write(&path, page).with_context(|| format!("writing {}", path.display()))?;
    Ok(path)
}
