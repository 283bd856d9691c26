//! Tells systemd how the service is doing (`Type=notify`). Every call does nothing
//! when `NOTIFY_SOCKET` is unset, so the daemon runs the same outside systemd.
//!
//! Called from `app` only, on the main task: systemd drops messages from other PIDs
//! under `NotifyAccess=main`, and all tasks share the one process.

use sd_notify::NotifyState;
use tracing::debug;

/// The store is open and the listener bound: the service is up.
pub fn ready() {
    notify(&[NotifyState::Ready]);
}

/// Shutdown has begun.
pub fn stopping() {
    notify(&[NotifyState::Stopping]);
}

/// A one-line status for `systemctl status`.
pub fn status(line: &str) {
    notify(&[NotifyState::Status(line)]);
}

fn notify(states: &[NotifyState]) {
    if let Err(err) = sd_notify::notify(states) {
        debug!(error = %err, "cannot notify systemd");
    }
}
