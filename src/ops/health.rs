//! Whether the daemon should get traffic: `/readyz`.
//!
//! `/healthz` says the process and its store answer; readiness says the node is worth
//! sending readers to: the store is open and its river is served (the daemon renders
//! what the store holds before it serves anything), polling has started, every source
//! the store knows nothing about (never polled, here or in a former run) has had its
//! first poll, and shutdown has not begun (a load balancer stops sending readers while
//! connections drain).
//!
//! A source the store already knows is represented by its stored items: it is polled
//! when it falls due, and a restarted node does not wait for that (up to a whole poll
//! interval) to serve again. A cold store holds nothing, so a new node is ready after
//! its first cycle, and a warm one as soon as polling starts. `daemon` owns one
//! [`Health`] and flips its flags; the scheduler reports polling and the first polls;
//! `http` reads it.

use std::sync::atomic::{AtomicBool, Ordering};

/// Readiness flags, shared by `daemon`, the scheduler and `http`.
#[derive(Debug, Default)]
pub struct Health {
    store_open: AtomicBool,
    polling: AtomicBool,
    new_sources_polled: AtomicBool,
    draining: AtomicBool,
}

impl Health {
    /// The store is open.
    pub fn set_store_open(&self) {
        self.store_open.store(true, Ordering::Release);
    }

    /// The poll loop runs: every source is tracked and has its first due time.
    pub fn set_polling(&self) {
        self.polling.store(true, Ordering::Release);
    }

    /// Every source that was new to the store at start-up has been polled once (or
    /// there was none).
    pub fn set_new_sources_polled(&self) {
        self.new_sources_polled.store(true, Ordering::Release);
    }

    /// Shutdown has begun: readers should go elsewhere while connections drain.
    pub fn set_draining(&self) {
        self.draining.store(true, Ordering::Release);
    }

    /// `Ok` when ready for traffic, else a one-line reason.
    pub fn readiness(&self) -> Result<(), &'static str> {
        if self.draining.load(Ordering::Acquire) {
            Err("shutting down")
        } else if !self.store_open.load(Ordering::Acquire) {
            Err("the store is not open")
        } else if !self.polling.load(Ordering::Acquire) {
            Err("polling has not started")
        } else if !self.new_sources_polled.load(Ordering::Acquire) {
            Err("sources new to the store have not been polled yet")
        } else {
            Ok(())
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn ready_from_the_first_polls_of_new_sources_until_shutdown() {
        let health = Health::default();
        assert_eq!(health.readiness(), Err("the store is not open"));
        health.set_store_open();
        assert_eq!(health.readiness(), Err("polling has not started"));
        // A warm store: nothing new to poll first.
        health.set_new_sources_polled();
        assert_eq!(health.readiness(), Err("polling has not started"));
        health.set_polling();
        assert_eq!(health.readiness(), Ok(()));
        health.set_draining();
        assert_eq!(health.readiness(), Err("shutting down"));

        let cold = Health::default();
        cold.set_store_open();
        cold.set_polling();
        assert_eq!(
            cold.readiness(),
            Err("sources new to the store have not been polled yet")
        );
        cold.set_new_sources_polled();
        assert_eq!(cold.readiness(), Ok(()));
    }
}
