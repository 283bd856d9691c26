//! Tells systemd how the service is doing (`Type=notify`). Every call does nothing
//! when `NOTIFY_SOCKET` is unset, so the daemon runs the same outside systemd.
//!
//! All calls come from this one process (systemd drops messages from other PIDs under
//! `NotifyAccess=main`): `daemon` sends the state changes, `watchdog` the pings.

use sd_notify::NotifyState;
use tracing::debug;

/// The store is open and the listener bound, or a reload has ended: the service is up.
pub fn ready() {
    notify(&[NotifyState::Ready]);
}

/// A reload has ended, with a status line saying how.
pub fn ready_with_status(line: &str) {
    notify(&[NotifyState::Ready, NotifyState::Status(line)]);
}

/// A reload has begun. `MONOTONIC_USEC` goes in the same message: systemd 253 and
/// later match it against the time they sent SIGHUP.
pub fn reloading() {
    match NotifyState::monotonic_usec_now() {
        Ok(now) => notify(&[NotifyState::Reloading, now]),
        Err(err) => {
            debug!(error = %err, "cannot read the monotonic clock");
            notify(&[NotifyState::Reloading]);
        }
    }
}

/// Shutdown has begun.
pub fn stopping() {
    notify(&[NotifyState::Stopping]);
}

/// A one-line status for `systemctl status`.
pub fn status(line: &str) {
    notify(&[NotifyState::Status(line)]);
}

/// The watchdog ping.
pub fn watchdog() {
    notify(&[NotifyState::Watchdog]);
}

fn notify(states: &[NotifyState]) {
    if let Err(err) = sd_notify::notify(states) {
        debug!(error = %err, "cannot notify systemd");
    }
}
