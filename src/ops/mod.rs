//! What the operator sees of the running daemon: Prometheus [`metrics`] (exporting,
//! among others, the [`item_counts`] of each source), the
//! [`health`] behind `/healthz` and `/readyz`, each source's [`status`] (`/sources`,
//! `tributary sources`, a [`listing`] page at a time), the systemd [`watchdog`] and readiness notes ([`systemd`]),
//! and journal-friendly [`logging`].

pub mod cluster;
pub mod health;
pub mod item_counts;
pub mod listing;
pub mod logging;
pub mod metrics;
mod process_metrics;
pub mod status;
pub mod systemd;
pub mod watchdog;
