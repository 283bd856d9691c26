//! Whether the daemon should get traffic: `/readyz`.
//!
//! `/healthz` says the process and its store answer; readiness says more: the store is
//! open, every source has been polled once since start (so the river is as fresh as
//! the sources allow, not just what the store kept), and shutdown has not begun (a
//! load balancer stops sending readers while connections drain). `daemon` owns one
//! [`Health`] and flips its flags; the scheduler reports the first cycle; `http`
//! reads it.

use std::sync::atomic::{AtomicBool, Ordering};

/// Readiness flags, shared by `daemon`, the scheduler and `http`.
#[derive(Debug, Default)]
pub struct Health {
    store_open: AtomicBool,
    polled_once: AtomicBool,
    draining: AtomicBool,
}

impl Health {
    /// The store is open.
    pub fn set_store_open(&self) {
        self.store_open.store(true, Ordering::Release);
    }

    /// Every source has been polled at least once (or there are none).
    pub fn set_polled_once(&self) {
        self.polled_once.store(true, Ordering::Release);
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
        } else if !self.polled_once.load(Ordering::Acquire) {
            Err("the first poll cycle has not finished")
        } else {
            Ok(())
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn ready_only_between_the_first_cycle_and_shutdown() {
        let health = Health::default();
        assert_eq!(health.readiness(), Err("the store is not open"));
        health.set_store_open();
        assert_eq!(
            health.readiness(),
            Err("the first poll cycle has not finished")
        );
        health.set_polled_once();
        assert_eq!(health.readiness(), Ok(()));
        health.set_draining();
        assert_eq!(health.readiness(), Err("shutting down"));
    }
}
