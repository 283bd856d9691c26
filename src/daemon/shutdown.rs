//! The signals that stop the daemon: SIGTERM (systemd, `kill`) and SIGINT (Ctrl-C).
//!
//! The `run` command (`cli`) passes [`signal`] to `daemon::run`; tests pass their own
//! future instead.

use tokio::signal::unix::{SignalKind, signal as unix_signal};
use tracing::info;

/// Completes when SIGTERM or SIGINT arrives.
pub async fn signal() {
    let mut term = unix_signal(SignalKind::terminate()).expect("installing a SIGTERM handler");
    let mut int = unix_signal(SignalKind::interrupt()).expect("installing a SIGINT handler");
    let name = tokio::select! {
        _ = term.recv() => "SIGTERM",
        _ = int.recv() => "SIGINT",
    };
    info!(signal = name, "shutting down");
}
