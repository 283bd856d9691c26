//! Live reload: SIGHUP, and with `[config] watch = true` an edit of the file itself,
//! asks for `feeds.toml` to be read again. [`apply`] re-reads it and hands the new
//! settings to the scheduler, the publisher, retention and `/sources`; a file that
//! does not check out is logged with its places and the running config stays in force.
//!
//! Editors save in many ways (write in place, or write a temporary file and rename
//! it over the old one), so the watcher looks at the file's directory and waits for
//! the events to settle before it asks for one reload.

use notify::event::{EventKind, ModifyKind};
use notify::{RecommendedWatcher, RecursiveMode, Watcher};
use std::ffi::OsString;
use std::path::{Path, PathBuf};
use std::time::Duration;
use tokio::signal::unix::{Signal, SignalKind, signal};
use tokio::sync::mpsc;
use tracing::{error, info, warn};

use super::Settings;
use crate::config::{self, Config};
use crate::ops::systemd;

/// Quiet time after the last change of the file before it is read: a save is often
/// several writes and a rename.
pub const SETTLE: Duration = Duration::from_millis(300);

/// Why a reload was asked for.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum Trigger {
    Signal,
    FileChanged,
    /// Another node of the cluster reloaded (see `config_sync`).
    Cluster,
}

impl Trigger {
    pub fn as_str(self) -> &'static str {
        match self {
            Trigger::Signal => "SIGHUP",
            Trigger::FileChanged => "the file changed",
            Trigger::Cluster => "another node reloaded",
        }
    }
}

/// The sources of reload requests.
pub struct Triggers {
    hangup: Signal,
    path: PathBuf,
    watcher: Option<RecommendedWatcher>,
    changes: mpsc::UnboundedReceiver<()>,
    changes_tx: mpsc::UnboundedSender<()>,
    /// Reloads of the other nodes of a cluster, when the store is shared.
    cluster: Option<mpsc::UnboundedReceiver<()>>,
}

impl Triggers {
    /// Listens for SIGHUP, and watches the config file when `config.watch` is set.
    pub fn new(config: &Config) -> std::io::Result<Triggers> {
        let (changes_tx, changes) = mpsc::unbounded_channel();
        let mut triggers = Triggers {
            hangup: signal(SignalKind::hangup())?,
            path: config.path.clone(),
            watcher: None,
            changes,
            changes_tx,
            cluster: None,
        };
        triggers.watch(config.watch);
        Ok(triggers)
    }

    /// Starts or stops watching the file (after a reload changed `[config] watch`).
    pub fn watch(&mut self, on: bool) {
        match (on, self.watcher.is_some()) {
            (true, false) => match watch_file(&self.path, self.changes_tx.clone()) {
                Ok(watcher) => {
                    info!(file = %self.path.display(), "watching the config file: edits are applied when saved");
                    self.watcher = Some(watcher);
                }
                Err(err) => {
                    warn!(file = %self.path.display(), error = %err, "cannot watch the config file; reload with SIGHUP instead");
                }
            },
            (false, true) => {
                info!(file = %self.path.display(), "no longer watching the config file");
                self.watcher = None;
            }
            _ => {}
        }
    }

    /// Also reloads when another node of the cluster did (each `()` on `reloads`).
    pub fn follow_cluster(&mut self, reloads: mpsc::UnboundedReceiver<()>) {
        self.cluster = Some(reloads);
    }

    /// The next reload request. Changes of the file are reported once they settle.
    pub async fn next(&mut self) -> Trigger {
        let cluster = async {
            match &mut self.cluster {
                Some(reloads) => reloads.recv().await,
                None => std::future::pending().await,
            }
        };
        tokio::select! {
            Some(()) = cluster => Trigger::Cluster,
            _ = self.hangup.recv() => Trigger::Signal,
            Some(()) = self.changes.recv() => {
                while let Ok(Some(())) = tokio::time::timeout(SETTLE, self.changes.recv()).await {}
                // A SIGHUP sent along with the edit is answered by this same reload.
                Trigger::FileChanged
            }
        }
    }
}

/// Watches the directory holding `path` (a rename over the file replaces the inode a
/// watch on the file itself would follow) and reports changes of that one name.
fn watch_file(
    path: &Path,
    changes: mpsc::UnboundedSender<()>,
) -> notify::Result<RecommendedWatcher> {
    let dir = path
        .parent()
        .filter(|dir| !dir.as_os_str().is_empty())
        .unwrap_or(Path::new("."))
        .to_owned();
    let name: OsString = path.file_name().unwrap_or_default().to_owned();
    let mut watcher = notify::recommended_watcher(move |event: notify::Result<notify::Event>| {
        let Ok(event) = event else { return };
        // Reading the file (as every reload does) must not look like a change.
        let changed = match event.kind {
            EventKind::Create(_) | EventKind::Remove(_) | EventKind::Any => true,
            EventKind::Modify(ModifyKind::Metadata(_)) => false,
            EventKind::Modify(_) => true,
            EventKind::Access(_) | EventKind::Other => false,
        };
        if changed
            && event
                .paths
                .iter()
                .any(|p| p.file_name() == Some(name.as_os_str()))
        {
            let _ = changes.send(());
        }
    })?;
    watcher.watch(&dir, RecursiveMode::NonRecursive)?;
    Ok(watcher)
}

/// Reads the config file again on `trigger` and sends its settings to every part;
/// returns the config now in force (the `running` one when the file does not check
/// out), without its sources: `settings` holds them. `started` is the config the process started with, for what only a restart
/// changes.
pub(super) async fn apply(
    trigger: Trigger,
    started: &Config,
    running: Config,
    triggers: &mut Triggers,
    settings: &mut Settings,
) -> anyhow::Result<Config> {
    systemd::reloading();
    info!(file = %running.path.display(), reason = trigger.as_str(), "reloading the config");
    let path = running.path.clone();
    let began = std::time::Instant::now();
    let lists = settings.lists.clone();
    let load = move || {
        let previous = lists.texts.as_deref().map(|texts| config::Previous {
            texts,
            enabled: &lists.enabled,
            disabled: &lists.disabled,
        });
        config::reload(&path, previous.as_ref())
    };
    match tokio::task::spawn_blocking(load).await? {
        Ok(config::Reloaded {
            config: mut new,
            enabled,
            disabled,
        }) => {
            let read_ms = began.elapsed().as_millis() as u64;
            // What is compared and sent needs of the sources only the one polled
            // most often (the lifetime of responses), as for `restart_view`.
            let shortest = new.shortest_interval_of(enabled.iter().map(|s| &**s));
            new.sources = shortest.cloned().into_iter().collect();
            for change in needs_restart(started, &new) {
                warn!(
                    change,
                    "this change takes effect only when tributary restarts"
                );
            }
            triggers.watch(new.watch);
            let sources = enabled.len();
            let lists = super::Lists {
                enabled: enabled.into(),
                disabled: disabled.into(),
                texts: new.texts.take(),
            };
            settings.send(&mut new, lists);
            let elapsed_ms = began.elapsed().as_millis() as u64;
            info!(sources, read_ms, elapsed_ms, "config reloaded");
            systemd::ready_with_status(&format!(
                "reloaded {}: {} sources",
                new.path.display(),
                sources
            ));
            Ok(new)
        }
        Err(err) => {
            for line in err.to_string().lines() {
                error!("{line}");
            }
            error!(file = %running.path.display(), "the config was not reloaded: the running one stays in force");
            systemd::ready_with_status(&format!(
                "reload failed, running the former config: {}",
                err.to_string().lines().next().unwrap_or_default()
            ));
            Ok(running)
        }
    }
}

/// `config` as [`needs_restart`] needs it kept, and `config` itself: the first
/// without the sources but the one polled most often (which sets the `Cache-Control`
/// lifetime), so a daemon of 100 000 sources does not hold a second copy of them all.
pub(super) fn restart_view(mut config: Config) -> (Config, Config) {
    let sources = std::mem::take(&mut config.sources);
    let shortest = config.shortest_interval_of(&sources);
    let started = Config {
        sources: shortest.cloned().into_iter().collect(),
        texts: None,
        ..config.clone()
    };
    config.sources = sources;
    (started, config)
}

/// What a new config changes that only a restart applies, in words for the log.
pub fn needs_restart(running: &Config, new: &Config) -> Vec<String> {
    let mut changes = Vec::new();
    if running.listen != new.listen {
        changes.push(format!(
            "[server] listen {} -> {}",
            running.listen, new.listen
        ));
    }
    if running.store_path != new.store_path {
        changes.push(format!(
            "[store] path {} -> {}",
            running.store_path.display(),
            new.store_path.display()
        ));
    }
    if running.store_cache_bytes != new.store_cache_bytes {
        changes.push(format!(
            "[store] cache_mb {} -> {}",
            running.store_cache_bytes / (1024 * 1024),
            new.store_cache_bytes / (1024 * 1024)
        ));
    }
    if crate::daemon::max_age(running) != crate::daemon::max_age(new) {
        changes.push(
            "the Cache-Control lifetime (the shortest poll interval) of HTTP responses".into(),
        );
    }
    if running.send_timeout != new.send_timeout {
        changes.push(format!(
            "[server] send_timeout {} -> {}",
            humantime::format_duration(running.send_timeout),
            humantime::format_duration(new.send_timeout)
        ));
    }
    if running.publish.max_items != new.publish.max_items {
        changes.push("the largest ?limit= of HTTP requests ([publish] max_items)".into());
    }
    if (running.admin_listen, running.metrics) != (new.admin_listen, new.metrics) {
        changes.push("[server] admin_listen or metrics".into());
    }
    changes
}

#[cfg(test)]
mod tests {
    use super::*;

    fn config(text: &str) -> Config {
        crate::config::parse(Path::new("feeds.toml"), text, None).unwrap()
    }

    #[test]
    fn the_kept_view_of_a_config_has_the_same_lifetime_and_one_source() {
        let text = "[poll]\ninterval = \"2h\"\n[[source]]\nurl = \"https://a.example/rss\"\n[[source]]\nurl = \"https://b.example/rss\"\ninterval = \"3m\"\n[[source]]\nurl = \"https://c.example/rss\"\n";
        let (started, running) = restart_view(config(text));
        assert_eq!(running.sources.len(), 3);
        assert_eq!(started.sources.len(), 1);
        assert_eq!(started.sources[0].url.as_str(), "https://b.example/rss");
        assert_eq!(
            crate::daemon::max_age(&started),
            crate::daemon::max_age(&running)
        );
        assert!(needs_restart(&started, &running).is_empty());
        let (started, _) = restart_view(config(""));
        assert!(started.sources.is_empty());
    }

    #[test]
    fn only_the_listen_address_and_store_path_and_http_limits_need_a_restart() {
        let old = config("[[source]]\nurl = \"https://a.example/rss\"\n");
        let sources = config(
            "[[source]]\nurl = \"https://a.example/rss\"\nname = \"A\"\n[[source]]\nurl = \"https://b.example/rss\"\n",
        );
        assert!(needs_restart(&old, &sources).is_empty());
        let moved = config(
            "[server]\nlisten = \"127.0.0.1:9\"\nsend_timeout = \"2m\"\n[store]\npath = \"elsewhere\"\n[[source]]\nurl = \"https://a.example/rss\"\n",
        );
        let changes = needs_restart(&old, &moved);
        assert_eq!(changes.len(), 3, "{changes:?}");
        assert!(changes[0].contains("127.0.0.1:9"));
        assert!(changes[1].contains("elsewhere"));
        assert!(changes[2].contains("send_timeout 1m -> 2m"));
    }
}
