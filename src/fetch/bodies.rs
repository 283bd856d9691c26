//! Buffers for fetched bodies, used again from poll to poll.
//!
//! A body grows in its buffer as its chunks arrive (a compressed response declares no
//! length to reserve). A fresh buffer per poll cost more than reading the body: the
//! allocator gives freed pages back to the system within 100 ms (see `main.rs`), so
//! every poll had the kernel map and zero new pages for its buffer and again for each
//! doubling, about a sixth of a steady daemon's CPU. A few buffers kept here stay
//! mapped instead.

use std::sync::Mutex;

/// Buffers kept at most: as many as the polls that usually run at once.
const KEPT: usize = 16;
/// A buffer larger than this is let go: a rare huge document does not stay resident.
const LARGEST_KEPT: usize = 1 << 20;

static FREE: Mutex<Vec<Vec<u8>>> = Mutex::new(Vec::new());

/// An empty buffer, with whatever room an earlier body left in it.
pub(super) fn take() -> Vec<u8> {
    FREE.lock()
        .ok()
        .and_then(|mut free| free.pop())
        .unwrap_or_default()
}

/// Gives the buffer of a body that was read back, to be used for another.
pub fn recycle(mut body: Vec<u8>) {
    if body.capacity() == 0 || body.capacity() > LARGEST_KEPT {
        return;
    }
    body.clear();
    if let Ok(mut free) = FREE.lock()
        && free.len() < KEPT
    {
        free.push(body);
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn a_buffer_comes_back_empty_with_its_room_and_huge_ones_are_let_go() {
        let mut body = take();
        body.extend_from_slice(&[7; 100_000]);
        let room = body.capacity();
        recycle(body);
        // Other tests may take buffers meanwhile: look for this one among a few.
        let taken: Vec<Vec<u8>> = (0..KEPT).map(|_| take()).collect();
        assert!(taken.iter().all(Vec::is_empty));
        assert!(taken.iter().any(|b| b.capacity() == room));
        taken.into_iter().for_each(recycle);
        recycle(Vec::with_capacity(LARGEST_KEPT + 1));
        let taken: Vec<Vec<u8>> = (0..KEPT + 1).map(|_| take()).collect();
        assert!(taken.iter().all(|b| b.capacity() <= LARGEST_KEPT));
    }
}
