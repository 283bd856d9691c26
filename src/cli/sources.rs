//! `sources`: each source's status, asked of the running daemon, else read from the
//! store.

use anyhow::Context;
use std::io::Write;

use crate::config::Config;
use crate::ops::listing::Listing;
use crate::ops::status::{self, SourceStatus, Table};

/// 3 seconds for the daemon to answer `tributary sources`: it serves from memory, so
/// a slower answer means it is not the daemon (or it is wedged), and the store is the
/// better source.
const DAEMON_ANSWER_TIMEOUT: std::time::Duration = std::time::Duration::from_secs(3);

pub(super) fn sources(config: &Config, json: bool) -> anyhow::Result<()> {
    let url = daemon_url(
        config.admin_listen.unwrap_or(config.listen),
        "/sources.json",
    );
    let mut out = Output::new(json);
    out.from = Some(format!("from the daemon at {url}"));
    let unanswered = match from_daemon(&url, &mut out) {
        Ok(()) => return out.finish(),
        Err(err) if out.started() => {
            return Err(err.context(format!(
                "the daemon at {url} stopped answering in the middle of the list"
            )));
        }
        Err(unanswered) => unanswered,
    };
    if config.cluster.is_some() {
        out.from = Some(format!(
            "from the shared PostgreSQL store (no daemon answers at {url})"
        ));
        from_shared_store(config, &mut out).context("reading the shared PostgreSQL store")?;
        return out.finish();
    }
    out.from = Some(if config.store_path.exists() {
        format!(
            "from the store at {} (no daemon answers at {url})",
            config.store_path.display()
        )
    } else {
        format!(
            "no store at {} yet, and no daemon answers at {url}",
            config.store_path.display()
        )
    });
    from_store(config, &mut out).map_err(|err| {
        let locked = matches!(
            err.downcast_ref::<crate::store::StoreError>(),
            Some(crate::store::StoreError::Locked { .. })
        );
        // Kept in the chain, so the exit status is the store-busy one (69).
        if locked {
            err.context(format!(
                "no daemon answers at {url} ({unanswered:#}), and another process holds the store: \
                 is a daemon with another [server] listen running on it?"
            ))
        } else {
            err.context(format!(
                "reading the store at {}",
                config.store_path.display()
            ))
        }
    })?;
    out.finish()
}

/// Sources asked of the daemon, or read from the store, at once.
const PAGE: usize = crate::ops::listing::MAX_PAGE;

/// The list, written out a page at a time as it comes: the table (after a line on
/// stderr saying where it comes from), or with `--json` the document `/sources.json`
/// serves, every source in one `sources` array.
struct Output {
    json: bool,
    from: Option<String>,
    table: Option<Table>,
    rows: usize,
    stdout: std::io::StdoutLock<'static>,
}

impl Output {
    fn new(json: bool) -> Output {
        Output {
            json,
            from: None,
            table: None,
            rows: 0,
            stdout: std::io::stdout().lock(),
        }
    }

    /// Whether anything was written yet (a daemon that stops answering then cannot
    /// be stood in for by the store).
    fn started(&self) -> bool {
        self.table.is_some() || self.rows > 0
    }

    fn page(&mut self, statuses: &[SourceStatus]) -> anyhow::Result<()> {
        if self.json {
            for status in statuses {
                let lead = if self.rows == 0 {
                    "{\"sources\": [\n"
                } else {
                    ",\n"
                };
                write!(self.stdout, "{lead}{}", serde_json::to_string(status)?)?;
                self.rows += 1;
            }
            return Ok(());
        }
        let table = match &mut self.table {
            Some(table) => table,
            None => {
                if let Some(from) = &self.from {
                    eprintln!("{from}");
                }
                let table = Table::new(statuses, chrono::Utc::now());
                self.stdout.write_all(table.header().as_bytes())?;
                self.table.insert(table)
            }
        };
        let rows = table.rows(statuses);
        self.stdout.write_all(rows.as_bytes())?;
        Ok(())
    }

    fn finish(mut self) -> anyhow::Result<()> {
        if self.json {
            let open = if self.rows == 0 {
                "{\"sources\": ["
            } else {
                ""
            };
            writeln!(self.stdout, "{open}\n]}}")?;
        } else {
            if self.table.is_none() {
                self.page(&[])?;
            }
            let footer = self.table.as_ref().map(Table::footer).unwrap_or_default();
            self.stdout.write_all(footer.as_bytes())?;
        }
        self.stdout.flush()?;
        Ok(())
    }
}

/// `http://{listen}{path}`, with a wildcard listen address replaced by loopback.
pub(super) fn daemon_url(listen: std::net::SocketAddr, path: &str) -> String {
    let mut addr = listen;
    if addr.ip().is_unspecified() {
        addr.set_ip(match addr.ip() {
            std::net::IpAddr::V4(_) => std::net::Ipv4Addr::LOCALHOST.into(),
            std::net::IpAddr::V6(_) => std::net::Ipv6Addr::LOCALHOST.into(),
        });
    }
    format!("http://{addr}{path}")
}

/// Runs `ask` with an HTTP client for the daemon (answers within `timeout`), on a
/// runtime of its own: the commands that ask a running daemon are not async.
pub(super) fn with_daemon_client<T>(
    timeout: std::time::Duration,
    ask: impl AsyncFnOnce(reqwest::Client) -> anyhow::Result<T>,
) -> anyhow::Result<T> {
    let runtime = tokio::runtime::Builder::new_current_thread()
        .enable_all()
        .build()?;
    runtime.block_on(async {
        crate::fetch::install_crypto_provider();
        let client = reqwest::Client::builder().timeout(timeout).build()?;
        ask(client).await
    })
}

/// Writes every page the daemon serves at `url`, following each page's `next`.
fn from_daemon(url: &str, out: &mut Output) -> anyhow::Result<()> {
    with_daemon_client(DAEMON_ANSWER_TIMEOUT, async |client| {
        let mut page = reqwest::Url::parse(url)?;
        page.set_query(Some(&format!("limit={PAGE}")));
        // Every page holds at least one source, so this bounds the walk.
        let mut pages_left: Option<usize> = None;
        loop {
            let response = client.get(page.clone()).send().await?.error_for_status()?;
            let body = response.bytes().await?;
            let listing =
                Listing::from_json(&body).context("the answer is not tributary's source list")?;
            out.page(&listing.sources)?;
            let left = pages_left.get_or_insert(listing.total.unwrap_or(0).div_ceil(PAGE) + 1);
            match listing.next {
                Some(next) if *left > 0 && !listing.sources.is_empty() => {
                    *left -= 1;
                    page = page.join(&next)?;
                }
                Some(_) => anyhow::bail!("the daemon's pages do not end"),
                None => return Ok(()),
            }
        }
    })
}

/// Writes the statuses as the store remembers them, a page at a time; every source
/// pending when there is no store yet (opening one would create it).
fn from_store(config: &Config, out: &mut Output) -> anyhow::Result<()> {
    if !config.store_path.exists() {
        let never = crate::item::SourceState::default();
        let all = config.sources.iter().map(|s| (s, false));
        let all: Vec<_> = all
            .chain(config.disabled.iter().map(|s| (s, true)))
            .collect();
        for chunk in all.chunks(PAGE) {
            let statuses: Vec<_> = chunk
                .iter()
                .map(|&(source, disabled)| {
                    let mut status = status::source_status(source, &never, Some(0));
                    if disabled {
                        status.status = status::Status::Disabled;
                    }
                    status
                })
                .collect();
            out.page(&statuses)?;
        }
        return Ok(());
    }
    let store = super::shared::open_embedded(config)?;
    from_open_store(config, &store, out, None)
}

/// Writes the statuses as the shared store remembers them, each with its partition
/// and the node that holds it now.
fn from_shared_store(config: &Config, out: &mut Output) -> anyhow::Result<()> {
    let store = super::shared::open(config)?;
    let ttl = config
        .cluster
        .as_ref()
        .map(|c| c.lease_ttl)
        .unwrap_or_default();
    let map = super::shared::lease_map(&store, ttl)?;
    from_open_store(config, &store, out, Some(&map))
}

fn from_open_store(
    config: &Config,
    store: &crate::store::Store,
    out: &mut Output,
    leases: Option<&crate::store::postgres::LeaseMap>,
) -> anyhow::Result<()> {
    let counts = store.item_counts()?;
    let list =
        crate::ops::listing::SourceList::new(config.sources.clone(), config.disabled.clone());
    let count = |id: &crate::item::SourceId| Some(counts.get(id).copied().unwrap_or(0));
    for start in (0..list.len()).step_by(PAGE) {
        let rows = start..(start + PAGE).min(list.len());
        let mut statuses = list.statuses(rows.clone(), store, count)?;
        if let Some(map) = leases {
            let sources = rows.map(|place| list.get(place));
            crate::ops::cluster::annotate(&mut statuses, sources, map, None);
        }
        out.page(&statuses)?;
    }
    Ok(())
}
