//! A store whose writes start failing (a full disk) goes on answering reads, and
//! writes again once there is room, without a restart. The disk fills up by way of
//! RLIMIT_FSIZE (writes past it fail with EFBIG), which needs no root and no mount;
//! the limit is per process, so this file holds this one test.
//! `bench/diskfull.sh` checks the same with the real daemon on a full tmpfs.

use chrono::DateTime;
use std::time::{Duration, Instant};
use tributary::item::{Item, ItemId, Origin, SourceId, SourceState};
use tributary::store::{REOPEN_EVERY, Store};

fn set_file_size_limit(bytes: libc::rlim_t) {
    let limit = libc::rlimit {
        rlim_cur: bytes,
        rlim_max: libc::RLIM_INFINITY,
    };
    // SAFETY: setrlimit reads the struct it is given and has no other effect on memory.
    let rc = unsafe { libc::setrlimit(libc::RLIMIT_FSIZE, &limit) };
    assert_eq!(rc, 0, "setrlimit: {}", std::io::Error::last_os_error());
}

fn item(n: usize) -> Item {
    Item {
        id: ItemId(format!("https://news.example/{n}")),
        title: Some(format!("Story {n}")),
        link: Some(format!("https://news.example/{n}")),
        published: DateTime::from_timestamp(1_780_000_000 + n as i64, 0),
        updated: None,
        // Incompressible text, so the store file grows with every item.
        summary: Some(
            (0..2000)
                .map(|i| char::from(b'a' + ((n * 7919 + i * 104_729) % 26) as u8))
                .collect(),
        ),
        content: None,
        authors: Vec::new(),
        categories: Vec::new(),
        enclosures: Vec::new(),
        comments: None,
    }
}

#[test]
fn a_full_disk_fails_writes_keeps_reads_and_recovers() {
    // SAFETY: ignoring SIGXFSZ makes a write past the limit fail with EFBIG instead of
    // killing the process; no other handler is installed for it.
    unsafe { libc::signal(libc::SIGXFSZ, libc::SIG_IGN) };
    let dir = tempfile::tempdir().unwrap();
    let store = Store::open(&dir.path().join("data")).unwrap();
    let origin = Origin {
        source: SourceId("https://news.example/feed".into()),
        name: "News".into(),
        url: "https://news.example/feed".into(),
        tags: Vec::new(),
    };
    let now = DateTime::from_timestamp(1_780_100_000, 0).unwrap();
    let state = SourceState::default();
    store
        .record_fetch(&origin, &[item(0), item(1)], &state, now)
        .unwrap();
    block_on_flush(&store).unwrap();

    // The disk is full: a little room left, then none.
    set_file_size_limit(64 * 1024);
    let mut failed = None;
    for n in 2..2000 {
        let written = store
            .record_fetch(&origin, &[item(n)], &state, now)
            // sled writes in the background; a flush makes the failure show.
            .and_then(|_| block_on_flush(&store));
        if let Err(err) = written {
            failed = Some((n, err));
            break;
        }
    }
    let (at, err) = failed.expect("writes fail once the file size limit is reached");
    let message = format!("{err:#}");
    assert!(!message.is_empty());
    // Reads go on: what was stored before the failure is still there.
    let stored = store.latest(10_000).unwrap();
    assert!(
        stored.iter().any(|s| s.item.id.0.ends_with("/0")),
        "{message}"
    );
    assert!(store.is_healthy());
    // While the disk stays full, writes keep failing, and nothing panics or blocks.
    assert!(
        store
            .record_fetch(&origin, &[item(at + 1)], &state, now)
            .and_then(|_| block_on_flush(&store))
            .is_err()
    );

    // Room again: within a reopen period the store writes again.
    set_file_size_limit(libc::RLIM_INFINITY);
    let deadline = Instant::now() + REOPEN_EVERY * 3;
    loop {
        let result = store
            .record_fetch(&origin, &[item(5000)], &state, now)
            .and_then(|_| block_on_flush(&store));
        if result.is_ok() {
            break;
        }
        assert!(
            Instant::now() < deadline,
            "the store did not write again: {:#}",
            result.unwrap_err()
        );
        std::thread::sleep(Duration::from_millis(100));
    }
    let stored = store.latest(10_000).unwrap();
    assert!(stored.iter().any(|s| s.item.id.0.ends_with("/5000")));
    assert!(stored.iter().any(|s| s.item.id.0.ends_with("/0")));
    drop(store);
    // And what it wrote is on disk.
    let reopened = Store::open(&dir.path().join("data")).unwrap();
    let stored = reopened.latest(10_000).unwrap();
    assert!(stored.iter().any(|s| s.item.id.0.ends_with("/5000")));
}

fn block_on_flush(store: &Store) -> Result<(), tributary::store::StoreError> {
    tokio::runtime::Builder::new_current_thread()
        .build()
        .unwrap()
        .block_on(store.flush())
}
