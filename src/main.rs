//! The `tributary` command: `run` the daemon, `check` a config, `poll` once,
//! `inspect` one feed, list the `sources` and their status, `import-opml` and
//! `export-opml`; a hidden `generate` writes the man pages and shell completions.

use anyhow::Context;
use clap::{CommandFactory, Parser, Subcommand};
use std::path::{Path, PathBuf};
use std::process::ExitCode;
use tributary::config::{self, Config};
use tributary::fetch::{FetchOutcome, Fetcher, RequestOptions, Validators};
use tributary::normalize::{Document, normalize_document};
use url::Url;

/// sysexits.h EX_CONFIG: the configuration is wrong; restarting will not help.
const EXIT_CONFIG: u8 = 78;

#[derive(Parser)]
#[command(
    name = "tributary",
    version,
    about = "A feed aggregator daemon: polls RSS, Atom and JSON Feed sources and republishes the merged river of news",
    long_about = "A feed aggregator daemon: polls the RSS, Atom and JSON Feed sources listed in feeds.toml, \
keeps their items in one store, and republishes the merged river of news over HTTP \
(RSS 2.0, Atom, JSON Feed, an HTML page and OPML).",
    after_help = "Every command that reads a config takes --config PATH (default: feeds.toml, \
or $TRIBUTARY_CONFIG).\n\nExamples:\n  tributary check --config /etc/tributary/feeds.toml\n  \
tributary run --config /etc/tributary/feeds.toml\n  tributary sources\n  \
tributary import-opml subscriptions.opml\n  tributary export-opml > feeds.opml"
)]
struct Cli {
    #[command(subcommand)]
    command: Command,
}

#[derive(Subcommand)]
enum Command {
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
    /// Fetch (or read) one feed and print it as the daemon would store it.
    Inspect {
        /// A feed file, or an http(s) URL.
        file_or_url: String,
        /// Print one JSON object instead of a summary.
        #[arg(long)]
        json: bool,
        /// Read dates that name no zone in this IANA time zone, as the source's
        /// `timezone` would.
        #[arg(long, default_value = "UTC")]
        timezone: chrono_tz::Tz,
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
enum Generated {
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

#[derive(clap::Args)]
struct ConfigArg {
    /// The config file.
    #[arg(
        long = "config",
        env = "TRIBUTARY_CONFIG",
        default_value = "feeds.toml"
    )]
    path: PathBuf,
}

fn main() -> ExitCode {
    limit_malloc_arenas();
    let cli = Cli::parse();
    init_tracing();
    match cli.command {
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
        } => report(inspect(&file_or_url, json, timezone)),
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

/// glibc gives each thread that allocates its own arena and keeps freed memory in
/// every one; the threads that parse feeds would each hold one. Two arenas keep the
/// peak RSS of a 1000-source poll about a third lower (measured with bench/poll.sh).
fn limit_malloc_arenas() {
    #[cfg(all(target_os = "linux", target_env = "gnu"))]
    // SAFETY: mallopt only sets a tunable; it is called before any thread exists.
    unsafe {
        libc::mallopt(libc::M_ARENA_MAX, 2);
    }
}

fn init_tracing() {
    let filter = tracing_subscriber::EnvFilter::try_from_default_env()
        .unwrap_or_else(|_| tracing_subscriber::EnvFilter::new("info"));
    tracing_subscriber::fmt()
        .with_env_filter(filter)
        .with_writer(std::io::stderr)
        // No colour codes in the journal or in a log file.
        .with_ansi(std::io::IsTerminal::is_terminal(&std::io::stderr()))
        .init();
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
    let runtime = match daemon_runtime() {
        Ok(runtime) => runtime,
        Err(err) => return report(Err(anyhow::Error::new(err).context("starting the runtime"))),
    };
    report(runtime.block_on(async {
        let listener = tokio::net::TcpListener::bind(config.listen)
            .await
            .with_context(|| {
                format!(
                    "listening on {} (change [server] listen in {})",
                    config.listen,
                    config.path.display()
                )
            })?;
        tributary::app::run(config, listener, tributary::shutdown::signal()).await
    }))
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
        let store = tributary::store::Store::open(&config.store_path)
            .with_context(|| format!("opening the store at {}", config.store_path.display()))?;
        let started = std::time::Instant::now();
        let scheduler = tributary::scheduler::Scheduler {
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
    let document = if target.starts_with("http://") || target.starts_with("https://") {
        inspect_url(target, zone)?
    } else {
        let body = std::fs::read(target).with_context(|| format!("reading {target}"))?;
        let base = std::path::absolute(target)
            .ok()
            .and_then(|p| Url::from_file_path(p).ok());
        normalize_document(&body, None, base.as_ref(), zone).with_context(|| target.to_string())?
    };
    if json {
        println!("{}", serde_json::to_string_pretty(&document)?);
    } else {
        print_summary(&document);
    }
    Ok(())
}

fn inspect_url(target: &str, zone: chrono_tz::Tz) -> anyhow::Result<Document> {
    let url = Url::parse(target).with_context(|| format!("`{target}` is not a valid URL"))?;
    let fetcher = Fetcher::new(&config::PollConfig::default())?;
    let runtime = tokio::runtime::Builder::new_current_thread()
        .enable_all()
        .build()?;
    let fetched = match runtime
        .block_on(fetcher.fetch(&url, &Validators::default(), &RequestOptions::default()))
        .with_context(|| target.to_string())?
    {
        FetchOutcome::Fetched(fetched) => fetched,
        FetchOutcome::NotModified(_) => {
            anyhow::bail!("{target}: server answered 304 to an unconditional request")
        }
    };
    normalize_document(
        &fetched.body,
        fetched.content_type.as_deref(),
        Some(&fetched.response.final_url),
        zone,
    )
    .with_context(|| target.to_string())
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
            ExitCode::FAILURE
        }
    }
}

/// 3 seconds for the daemon to answer `tributary sources`: it serves from memory, so
/// a slower answer means it is not the daemon (or it is wedged), and the store is the
/// better source.
const DAEMON_ANSWER_TIMEOUT: std::time::Duration = std::time::Duration::from_secs(3);

fn sources(config: &Config, json: bool) -> anyhow::Result<()> {
    use tributary::status;
    let url = daemon_url(config.listen, "/sources.json");
    let (statuses, from) = match from_daemon(&url) {
        Ok(statuses) => (statuses, format!("from the daemon at {url}")),
        Err(unanswered) => {
            let statuses = from_store(config).map_err(|err| match err {
                tributary::store::StoreError::Locked { path } => anyhow::anyhow!(
                    "the store at {} is held by another process, but no daemon answers at {url} ({unanswered:#}): \
                     is a daemon with another [server] listen running on it?",
                    path.display()
                ),
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

fn from_daemon(url: &str) -> anyhow::Result<Vec<tributary::status::SourceStatus>> {
    let runtime = tokio::runtime::Builder::new_current_thread()
        .enable_all()
        .build()?;
    runtime.block_on(async {
        let client = reqwest::Client::builder()
            .timeout(DAEMON_ANSWER_TIMEOUT)
            .build()?;
        let response = client.get(url).send().await?.error_for_status()?;
        let body = response.bytes().await?;
        tributary::status::parse_json(&body).context("the answer is not tributary's source list")
    })
}

/// The statuses as the store remembers them; every source pending when there is no
/// store yet (opening one would create it).
fn from_store(
    config: &Config,
) -> Result<Vec<tributary::status::SourceStatus>, tributary::store::StoreError> {
    use tributary::status;
    if !config.store_path.exists() {
        let never = tributary::item::SourceState::default();
        return Ok(config
            .sources
            .iter()
            .map(|source| status::source_status(source, &never, Some(0)))
            .collect());
    }
    let store = tributary::store::Store::open(&config.store_path)?;
    let counts = store.item_counts()?;
    status::collect(&config.sources, &store, |id| {
        Some(counts.get(id).copied().unwrap_or(0))
    })
}

fn import_opml(file: &Path, config_path: &Path) -> anyhow::Result<()> {
    let bytes = std::fs::read(file).with_context(|| format!("reading {}", file.display()))?;
    let feeds = tributary::import::read_opml(&bytes)
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
    let report = tributary::import::append_sources(&mut document, &feeds);
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
    use tributary::render::{PageInfo, SourceEntry};
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
                name: source
                    .name
                    .clone()
                    .unwrap_or_else(|| source.url.to_string()),
                url: source.url.to_string(),
                tags: source.tags.clone(),
            })
            .collect(),
        tags: Vec::new(),
    };
    String::from_utf8(tributary::render::render_opml(&page)).expect("OPML is UTF-8")
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
