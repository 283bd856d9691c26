//! `run` (the daemon's runtime, its listening socket and open-file limit), `check`
//! (a config's summary) and `poll` (every source once, then exit).

use super::{load_config, report};
use crate::config::Config;
use crate::fetch::Fetcher;
use anyhow::Context;
use std::path::Path;
use std::process::ExitCode;

pub(super) fn run(path: &Path) -> ExitCode {
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

pub(super) fn check(found: &super::discover::Found) -> ExitCode {
    println!("reading {} ({})", found.path.display(), found.why);
    let config = match load_config(&found.path) {
        Ok(config) => config,
        Err(code) => return code,
    };
    println!("{}: ok", config.path.display());
    println!("  sources: {}", config.sources.len());
    if !config.disabled.is_empty() {
        println!("  disabled: {}", config.disabled.len());
    }
    println!("  store:   {}", config.store_path.display());
    println!("  listen:  {}", config.listen);
    if let Some(admin) = config.admin_listen {
        println!("  admin:   {admin}");
    }
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

pub(super) fn poll_once(config: Config) -> anyhow::Result<()> {
    let runtime = daemon_runtime().context("starting the runtime")?;
    let store = super::shared::open(&config)
        .with_context(|| format!("opening {}", super::shared::describe(&config)))?;
    super::shared::refuse_while_nodes_poll(&config, &store)?;
    runtime.block_on(async {
        let started = std::time::Instant::now();
        let scheduler = crate::scheduler::Scheduler {
            store: store.clone(),
            fetcher: Fetcher::new(&config.poll).context("setting up the HTTP client")?,
            sources: crate::config::share(config.sources.clone()),
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
