//! `reset`: forgets a source's failures, backoff and 410 Gone so it is polled at once.
//!
//! The store can be opened by one process only, so while the daemon runs the reset
//! is asked of it: `POST /sources/{id}/reset` on its admin listener (`[server]
//! admin_listen`, else `listen`, where the daemon takes admin POSTs only when that is
//! a loopback address). The daemon writes the store and polls the source at once.
//! When no daemon answers, the command writes the store itself; the next `run` or
//! `poll` then polls the source without waiting.

use super::sources::daemon_url;
use crate::config::Config;
use crate::config::change::pick;
use anyhow::Context;

/// How long the daemon has to answer: it writes one small record.
const DAEMON_ANSWER_TIMEOUT: std::time::Duration = std::time::Duration::from_secs(5);

pub(super) fn reset(config: &Config, target: &str) -> anyhow::Result<()> {
    let all: Vec<_> = config.sources.iter().chain(&config.disabled).collect();
    let urls: Vec<String> = all.iter().map(|s| s.id.0.clone()).collect();
    let source = all[pick(&urls, target)?];
    let admin = config.admin_listen.unwrap_or(config.listen);
    let url = daemon_url(admin, &format!("/sources/{}/reset", source.id.slug()));
    match ask_daemon(&url) {
        Ok(Answer::Done(said)) => {
            println!("{said}");
            return Ok(());
        }
        Ok(Answer::Refused(status, said)) => anyhow::bail!(
            "the daemon at {url} refused the reset ({status}: {}); it takes admin requests on [server] admin_listen, or on listen when that is a loopback address",
            said.trim()
        ),
        Err(unanswered) => {
            let runtime = tokio::runtime::Builder::new_current_thread().build()?;
            let before = open_and_reset(&runtime, config, source).map_err(|err| match err {
                locked @ crate::store::StoreError::Locked { .. } => {
                    anyhow::Error::new(locked).context(format!(
                        "no daemon answers at {url} ({unanswered:#}), and another process holds the store"
                    ))
                }
                other => anyhow::Error::new(other).context(format!(
                    "resetting in the store at {}",
                    config.store_path.display()
                )),
            })?;
            println!(
                "reset {} in the store at {} (no daemon answers at {url}): {}; it is polled when the daemon next starts",
                source.shown_url(),
                config.store_path.display(),
                crate::ops::status::forgotten(&before)
            );
        }
    }
    Ok(())
}

fn open_and_reset(
    runtime: &tokio::runtime::Runtime,
    config: &Config,
    source: &crate::config::SourceConfig,
) -> Result<crate::item::SourceState, crate::store::StoreError> {
    let store = super::shared::open_embedded(config)?;
    let before = store.reset_source(&source.id)?;
    runtime.block_on(store.flush())?;
    Ok(before)
}

enum Answer {
    Done(String),
    Refused(u16, String),
}

fn ask_daemon(url: &str) -> anyhow::Result<Answer> {
    super::sources::with_daemon_client(DAEMON_ANSWER_TIMEOUT, async |client| {
        let response = client.post(url).send().await?;
        let status = response.status();
        let body = response
            .text()
            .await
            .context("reading the daemon's answer")?;
        Ok(if status.is_success() {
            Answer::Done(body.trim().to_string())
        } else {
            Answer::Refused(status.as_u16(), body)
        })
    })
}
