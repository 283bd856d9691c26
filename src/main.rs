//! The `tributary` command: `run` the daemon, `check` a config, `inspect` one feed.

use anyhow::Context;
use clap::{Parser, Subcommand};
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
    version,
    about = "A feed aggregator daemon: polls RSS, Atom and JSON Feed sources and republishes the merged river of news"
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
