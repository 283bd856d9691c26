//! `sources`: each source's status, asked of the running daemon, else read from the
//! store.

use crate::config::Config;
use anyhow::Context;

/// 3 seconds for the daemon to answer `tributary sources`: it serves from memory, so
/// a slower answer means it is not the daemon (or it is wedged), and the store is the
/// better source.
const DAEMON_ANSWER_TIMEOUT: std::time::Duration = std::time::Duration::from_secs(3);

pub(super) fn sources(config: &Config, json: bool) -> anyhow::Result<()> {
    use crate::ops::status;
    let url = daemon_url(
        config.admin_listen.unwrap_or(config.listen),
        "/sources.json",
    );
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

fn from_daemon(url: &str) -> anyhow::Result<Vec<crate::ops::status::SourceStatus>> {
    let runtime = tokio::runtime::Builder::new_current_thread()
        .enable_all()
        .build()?;
    runtime.block_on(async {
        crate::fetch::install_crypto_provider();
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
        let status = |source| status::source_status(source, &never, Some(0));
        let disabled = config.disabled.iter().map(status).map(|mut s| {
            s.status = status::Status::Disabled;
            s
        });
        return Ok(config.sources.iter().map(status).chain(disabled).collect());
    }
    let store = crate::store::Store::open(&config.store_path)?;
    let counts = store.item_counts()?;
    let count = |id: &crate::item::SourceId| Some(counts.get(id).copied().unwrap_or(0));
    let mut statuses = status::collect(&config.sources, &store, count)?;
    statuses.extend(status::collect_disabled(&config.disabled, &store, count)?);
    Ok(statuses)
}
