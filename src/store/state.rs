//! Each source's remembered [`SourceState`] (validators, failures, next poll), in the
//! `sources` tree as MessagePack.

use super::{Sled, StoreError};
use crate::item::{SourceId, SourceState};

impl Sled {
    /// The remembered state of a source; the default when it was never polled.
    pub fn source_state(&self, source: &SourceId) -> Result<SourceState, StoreError> {
        match self.handles()?.sources.get(source.0.as_bytes())? {
            Some(bytes) => Ok(rmp_serde::from_slice(&bytes)?),
            None => Ok(SourceState::default()),
        }
    }

    /// Saves a source's state after a poll that stored no items (304, error).
    pub fn put_source_state(
        &self,
        source: &SourceId,
        state: &SourceState,
    ) -> Result<(), StoreError> {
        let state = rmp_serde::to_vec_named(state)?;
        self.write(|h| {
            h.sources.insert(source.0.as_bytes(), state)?;
            Ok(())
        })
    }
}
