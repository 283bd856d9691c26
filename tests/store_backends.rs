//! The store's behaviour, the same on both backends: the embedded sled store and
//! PostgreSQL (a throwaway server started by the test; skipped when PostgreSQL is not
//! installed, a failure under CI). Then what only a shared store has: the watermark
//! other nodes see, writes fenced by partition leases, several nodes writing one
//! story at once, and the copy between the two backends.

mod common;

use chrono::{DateTime, Duration, Utc};
use std::collections::HashSet;
use std::sync::Arc;
use tributary::item::{Item, ItemId, Origin, SourceId, SourceState, StoredItem};
use tributary::store::postgres::{Leases, PgOptions, Postgres, partition_of};
use tributary::store::{Record, SideEntries, SideTable, Store, StoreError};

use common::postgres::TestPg;

fn at(secs: i64) -> DateTime<Utc> {
    DateTime::from_timestamp(secs, 0).unwrap()
}

fn item(id: &str, published: Option<i64>) -> Item {
    Item {
        id: ItemId(id.into()),
        title: Some(format!("title {id}")),
        link: None,
        published: published.map(at),
        updated: None,
        summary: None,
        content: None,
        authors: vec![],
        categories: vec![],
        enclosures: vec![],
        comments: None,
    }
}

fn linked(id: &str, link: &str, published: i64) -> Item {
    Item {
        link: Some(link.into()),
        ..item(id, Some(published))
    }
}

fn origin(name: &str) -> Origin {
    Origin {
        source: SourceId(format!("http://{name}.example/rss")),
        name: name.into(),
        url: format!("http://{name}.example/rss"),
        tags: vec![],
    }
}

fn ids(items: &[StoredItem]) -> Vec<String> {
    items.iter().map(|i| i.item.id.0.clone()).collect()
}

fn names(items: &[StoredItem]) -> Vec<(String, String)> {
    items
        .iter()
        .map(|i| (i.origin.name.clone(), i.item.id.0.clone()))
        .collect()
}

/// Runs every scenario on a store the factory makes afresh.
fn scenarios(mut fresh: impl FnMut() -> Store) {
    upserts_dedup_update_and_move(&fresh());
    a_story_in_two_sources_is_kept_by_its_first_publisher(&fresh());
    new_ids_of_a_stored_story_do_not_repeat_it(&fresh());
    retention_leaves_tombstones_that_keep_items_away(&fresh());
    a_source_keeps_at_most_its_max_items(&fresh());
    counts_state_and_change_signals(&fresh());
    views_scan_a_bounded_number_of_items(&fresh());
    forgetting_is_counted(&fresh());
}

/// What the scheduler's memory of known entries relies on: `forgotten` stands still
/// while the store forgets no identity (writes, unchanged rewrites, trims) and moves
/// when it does (a take-over, an expired tombstone); `holds` says which ids a source
/// holds, live or trimmed.
fn forgetting_is_counted(store: &Store) {
    let state = SourceState::default();
    let (a, b) = (origin("a"), origin("b"));
    let story = "https://news.example/story";
    let items = [
        linked("a-1", story, 400),
        item("a-2", Some(300)),
        item("a-3", Some(200)),
    ];
    let start = store.forgotten();
    assert_eq!(store.forgotten(), start);
    store.record_fetch(&a, &items, &state, at(1000)).unwrap();
    let report = store.record_fetch(&a, &items, &state, at(1100)).unwrap();
    assert_eq!(report.unchanged, 3);
    assert_eq!(store.trim(at(250), 100).unwrap().removed, 1);
    assert_eq!(store.forgotten(), start, "nothing was forgotten yet");
    let report = store
        .record_fetch(&b, &[linked("b-1", story, 100)], &state, at(1200))
        .unwrap();
    assert_eq!(report.taken_over, 1);
    let taken = store.forgotten();
    assert_ne!(taken, start, "a take-over forgets a-1");
    assert_eq!(store.forgotten(), taken);
    assert_eq!(
        store
            .holds(&a.source, ["a-1", "a-2", "a-3", "a-4"])
            .unwrap(),
        [false, true, true, false]
    );
    assert_eq!(store.holds(&b.source, ["b-1"]).unwrap(), [true]);
    // Every item trimmed, and the tombstone of a-3 expired.
    store.trim(Utc::now() + Duration::days(1), 100).unwrap();
    assert_ne!(
        store.forgotten(),
        taken,
        "an expired tombstone is forgotten"
    );
}

fn upserts_dedup_update_and_move(store: &Store) {
    let a = origin("a");
    let state = SourceState::default();
    let first = vec![item("1", Some(100)), item("2", Some(300)), item("3", None)];
    let report = store.record_fetch(&a, &first, &state, at(1000)).unwrap();
    assert_eq!(report.added, 3);
    assert_eq!(ids(&store.latest(10).unwrap()), ["3", "2", "1"]);
    let report = store.record_fetch(&a, &first, &state, at(2000)).unwrap();
    assert_eq!((report.unchanged, report.added, report.updated), (3, 0, 0));
    assert_eq!(store.latest(1).unwrap()[0].timestamp, at(1000));
    let mut moved = item("1", Some(1500));
    moved.title = Some("corrected".into());
    let report = store.record_fetch(&a, &[moved], &state, at(3000)).unwrap();
    assert_eq!(report.updated, 1);
    let latest = store.latest(10).unwrap();
    assert_eq!(ids(&latest), ["1", "3", "2"]);
    assert_eq!(latest[0].item.title.as_deref(), Some("corrected"));
    store
        .record_fetch(&origin("b"), &[item("1", Some(200))], &state, at(3000))
        .unwrap();
    assert_eq!(store.latest(10).unwrap().len(), 4);
    assert_eq!(store.latest(2).unwrap().len(), 2);
}

fn a_story_in_two_sources_is_kept_by_its_first_publisher(store: &Store) {
    let state = SourceState::default();
    let (a, b, c) = (origin("a"), origin("b"), origin("c"));
    let story = "https://news.example/story?id=7";
    store
        .record_fetch(&a, &[linked("a-1", story, 200)], &state, at(1000))
        .unwrap();
    let tracked = "https://NEWS.example:443/story?id=7&utm_source=rss#top";
    let report = store
        .record_fetch(&b, &[linked("b-1", tracked, 300)], &state, at(1000))
        .unwrap();
    assert_eq!((report.added, report.duplicates), (0, 1));
    let report = store
        .record_fetch(&c, &[linked("c-1", story, 100)], &state, at(2000))
        .unwrap();
    assert_eq!((report.added, report.taken_over), (1, 1));
    assert_eq!(
        names(&store.latest(10).unwrap()),
        [("c".to_string(), "c-1".to_string())]
    );
    let report = store
        .record_fetch(&a, &[linked("a-1", story, 200)], &state, at(3000))
        .unwrap();
    assert_eq!(report.added, 0, "{report:?}");
}

fn new_ids_of_a_stored_story_do_not_repeat_it(store: &Store) {
    let state = SourceState::default();
    let a = origin("a");
    let first = vec![
        linked("http://www.a.example/p?id=1", "http://a.example/one", 100),
        linked("a-guid-2", "http://a.example/two-old-slug", 200),
    ];
    store.record_fetch(&a, &first, &state, at(1000)).unwrap();
    let second = vec![
        linked("https://www.a.example/p?id=1", "https://a.example/one", 100),
        linked("a-guid-2-edited", "http://a.example/two-old-slug", 200),
    ];
    let report = store.record_fetch(&a, &second, &state, at(2000)).unwrap();
    assert_eq!((report.added, report.reidentified), (0, 2), "{report:?}");
    assert_eq!(
        ids(&store.latest(10).unwrap()),
        ["a-guid-2-edited", "https://www.a.example/p?id=1"]
    );
    let report = store.record_fetch(&a, &second, &state, at(3000)).unwrap();
    assert_eq!(report.unchanged, 2, "{report:?}");
}

fn retention_leaves_tombstones_that_keep_items_away(store: &Store) {
    let a = origin("a");
    let state = SourceState::default();
    let items: Vec<_> = (1..=10)
        .map(|i| item(&i.to_string(), Some(i * 100)))
        .collect();
    store.record_fetch(&a, &items, &state, at(5000)).unwrap();
    assert_eq!(store.trim(at(350), 100).unwrap().removed, 3);
    assert_eq!(
        ids(&store.latest(100).unwrap()),
        ["10", "9", "8", "7", "6", "5", "4"]
    );
    let trimmed = store.trim(at(0), 5).unwrap();
    assert_eq!(trimmed.removed, 2);
    assert_eq!(trimmed.counts[&a.source], 5);
    assert_eq!(ids(&store.latest(100).unwrap()), ["10", "9", "8", "7", "6"]);
    let report = store.record_fetch(&a, &items, &state, at(6000)).unwrap();
    assert_eq!(report.added, 0);
    // A trimmed story stays away under a new id too.
    let story = "https://a.example/old";
    let b = origin("b");
    store
        .record_fetch(&b, &[linked("1", story, 100)], &state, at(1000))
        .unwrap();
    assert_eq!(store.trim(at(101), 100).unwrap().removed, 1);
    let report = store
        .record_fetch(&b, &[linked("1b", story, 100)], &state, at(2000))
        .unwrap();
    assert_eq!(report.added, 0, "{report:?}");
    assert_eq!(store.last_orphan_sweep().unwrap(), None);
    assert_eq!(store.drop_orphan_keys().unwrap(), 0);
    assert!(store.last_orphan_sweep().unwrap().is_some());
    // Once the tombstones expire, the items come back, and the sweep drops the
    // keys that pointed at them.
    let future = Utc::now() + Duration::days(1);
    assert_eq!(store.trim(future, 100).unwrap().removed, 5);
    assert!(store.drop_orphan_keys().unwrap() > 0);
    let report = store
        .record_fetch(&a, &items[..1], &state, at(7000))
        .unwrap();
    assert_eq!(report.added, 1);
}

fn a_source_keeps_at_most_its_max_items(store: &Store) {
    let state = SourceState::default();
    let (a, b) = (origin("a"), origin("b"));
    let items: Vec<_> = (1..=6)
        .map(|i| item(&i.to_string(), Some(i * 10)))
        .collect();
    store.record_fetch(&a, &items, &state, at(1000)).unwrap();
    store.record_fetch(&b, &items, &state, at(1000)).unwrap();
    assert_eq!(store.trim_source(&a.source, 4).unwrap(), 2);
    assert_eq!(store.trim_source(&a.source, 4).unwrap(), 0);
    assert_eq!(store.count_items(&a.source).unwrap(), 4);
    assert_eq!(store.count_items(&b.source).unwrap(), 6);
    let report = store.record_fetch(&a, &items, &state, at(2000)).unwrap();
    assert_eq!(report.added, 0);
}

fn counts_state_and_change_signals(store: &Store) {
    let a = origin("a");
    let mut changes = store.subscribe();
    changes.mark_unchanged();
    assert_eq!(
        store.source_state(&a.source).unwrap(),
        SourceState::default()
    );
    let state = SourceState {
        etag: Some("\"v1\"".into()),
        ..SourceState::default()
    };
    let before = store.watermark().unwrap();
    store
        .record_fetch(&a, &[item("1", Some(1))], &state, at(10))
        .unwrap();
    assert_eq!(store.source_state(&a.source).unwrap(), state);
    assert!(changes.has_changed().unwrap());
    let after = store.watermark().unwrap();
    assert!(after > before, "{before} -> {after}");
    changes.mark_unchanged();
    store
        .record_fetch(&a, &[item("1", Some(1))], &state, at(20))
        .unwrap();
    assert!(!changes.has_changed().unwrap());
    assert_eq!(store.watermark().unwrap(), after);
    let failing = SourceState {
        consecutive_failures: 2,
        ..state
    };
    store.put_source_state(&a.source, &failing).unwrap();
    assert_eq!(store.source_state(&a.source).unwrap(), failing);
    let counts = store.item_counts().unwrap();
    assert_eq!(counts.len(), 1);
    assert_eq!(counts[&a.source], 1);
    assert!(store.is_healthy());
    // A poll's write may wait in memory for the next flush (sled's own, every few
    // seconds, or this one).
    let runtime = tokio::runtime::Runtime::new().unwrap();
    runtime.block_on(store.flush()).unwrap();
    assert!(store.size_on_disk().unwrap() > 0);
}

fn views_scan_a_bounded_number_of_items(store: &Store) {
    let state = SourceState::default();
    let (a, b) = (origin("a"), origin("b"));
    let many: Vec<_> = (0..600)
        .map(|i| item(&format!("a{i}"), Some(1000 + i)))
        .collect();
    store.record_fetch(&a, &many, &state, at(5000)).unwrap();
    store
        .record_fetch(&b, &[item("b0", Some(10))], &state, at(5000))
        .unwrap();
    let of_b = |scan| {
        store
            .latest_where(5, scan, |i| i.origin.source == b.source)
            .unwrap()
    };
    assert!(of_b(600).is_empty());
    assert_eq!(ids(&of_b(601)), ["b0"]);
    assert_eq!(store.latest(601).unwrap().len(), 601);
    assert_eq!(store.latest(1000).unwrap().len(), 601);
}

#[test]
fn the_embedded_store_behaves_as_specified() {
    scenarios(|| Store::temporary().unwrap());
}

fn connect(url: &str) -> Postgres {
    let mut options = PgOptions::new(url);
    options.watch_every = std::time::Duration::from_millis(100);
    Postgres::connect(&options).unwrap()
}

#[test]
fn the_postgres_store_behaves_as_the_embedded_one() {
    let Some(pg) = TestPg::start() else { return };
    let mut n = 0;
    scenarios(|| {
        n += 1;
        connect(&pg.database(&format!("s{n}"))).into()
    });
}

/// A node sees what another forgot: the count is the database's, read with the
/// watermark (every `watch_every`); the writer's own count moves at once.
#[test]
fn nodes_see_what_the_others_forgot() {
    let Some(pg) = TestPg::start() else { return };
    let url = pg.database("forgotten");
    let (one, two): (Store, Store) = (connect(&url).into(), connect(&url).into());
    let state = SourceState::default();
    let story = "https://news.example/story";
    one.record_fetch(&origin("a"), &[linked("a-1", story, 400)], &state, at(1000))
        .unwrap();
    let before = two.forgotten();
    assert_eq!(one.forgotten(), before);
    let report = one
        .record_fetch(&origin("b"), &[linked("b-1", story, 100)], &state, at(1000))
        .unwrap();
    assert_eq!(report.taken_over, 1);
    assert_ne!(one.forgotten(), before);
    let deadline = std::time::Instant::now() + std::time::Duration::from_secs(5);
    while two.forgotten() == before {
        assert!(
            std::time::Instant::now() < deadline,
            "the other node never saw the count move"
        );
        std::thread::sleep(std::time::Duration::from_millis(20));
    }
}

#[test]
fn nodes_see_each_others_writes_through_the_watermark() {
    let Some(pg) = TestPg::start() else { return };
    let url = pg.database("watermark");
    let (one, two): (Store, Store) = (connect(&url).into(), connect(&url).into());
    let mut seen = two.subscribe();
    seen.mark_unchanged();
    one.record_fetch(
        &origin("a"),
        &[item("1", Some(1))],
        &SourceState::default(),
        at(10),
    )
    .unwrap();
    let deadline = std::time::Instant::now() + std::time::Duration::from_secs(5);
    while !seen.has_changed().unwrap() {
        assert!(std::time::Instant::now() < deadline, "no change seen");
        std::thread::sleep(std::time::Duration::from_millis(20));
    }
    assert_eq!(*seen.borrow_and_update(), one.watermark().unwrap());
    assert_eq!(ids(&two.latest(10).unwrap()), ["1"]);
}

#[test]
fn migrations_apply_once_when_nodes_start_together() {
    let Some(pg) = TestPg::start() else { return };
    let url = pg.database("migrations");
    let nodes: Vec<_> = (0..4)
        .map(|_| {
            let url = url.clone();
            std::thread::spawn(move || connect(&url))
        })
        .collect();
    let stores: Vec<Postgres> = nodes.into_iter().map(|n| n.join().unwrap()).collect();
    assert_eq!(stores.len(), 4);
    // One row per version: each applied once.
    let count = pg.psql_value(&url, "SELECT count(*)::text FROM schema_migrations");
    assert_eq!(
        count,
        tributary::store::postgres::schema::latest_version().to_string()
    );
}

/// Two nodes share the partitions; a node that lost a partition (its lease expired
/// and another node took it, raising the epoch) can no longer write for its sources,
/// and its late write leaves nothing behind.
#[test]
fn a_write_under_a_stale_lease_is_refused() {
    let Some(pg) = TestPg::start() else { return };
    let url = pg.database("fencing");
    let ttl = std::time::Duration::from_secs(1);
    let (one, two) = (connect(&url), connect(&url));
    let first = Leases::new(&one, "one", ttl);
    let renewal = first.renew().unwrap();
    assert_eq!(
        renewal.held.len(),
        256,
        "alone, a node takes every partition"
    );
    // A source of the partitions the first node keeps when it shares (the lowest).
    let a = (0..)
        .map(|n| origin(&format!("s{n}")))
        .find(|o| partition_of(&o.source.0, 256) < 128)
        .unwrap();
    let part = partition_of(&a.source.0, 256);
    let epoch = first.fence().epoch(part).unwrap();
    let one_store: Store = one.clone().into();
    let state = SourceState::default();
    one_store
        .record_fetch(&a, &[item("1", Some(1))], &state, at(10))
        .unwrap();
    // A second node joins: at its next renewal the first stops polling half, and
    // gives their leases back only at the one after, when those polls have ended.
    let second = Leases::new(&two, "two", ttl);
    assert!(second.renew().unwrap().held.is_empty());
    let renewal = first.renew().unwrap();
    assert_eq!((renewal.held.len(), renewal.live_nodes), (128, 2));
    assert_eq!(renewal.released.len(), 128);
    assert!(
        second.renew().unwrap().held.is_empty(),
        "taken before they were given back"
    );
    assert_eq!(first.renew().unwrap().held.len(), 128);
    let renewal = second.renew().unwrap();
    assert_eq!(renewal.held.len(), 128);
    let all: HashSet<u32> = first
        .fence()
        .held()
        .union(&second.fence().held())
        .copied()
        .collect();
    assert_eq!(all.len(), 256);
    // The first node stalls past its TTL; the second takes what it held.
    std::thread::sleep(ttl + std::time::Duration::from_millis(300));
    let renewal = second.renew().unwrap();
    assert_eq!(renewal.live_nodes, 1);
    assert_eq!(renewal.held.len(), 256);
    assert!(second.fence().epoch(part).unwrap() > epoch);
    // The stalled node wakes up: it knows its leases lapsed, and writes nothing.
    assert_eq!(first.fence().epoch(part), None);
    let late = one_store.record_fetch(&a, &[item("late", Some(2))], &state, at(20));
    assert!(matches!(late, Err(StoreError::Fenced { .. })), "{late:?}");
    let late = one_store.put_source_state(&a.source, &state);
    assert!(matches!(late, Err(StoreError::Fenced { .. })), "{late:?}");
    let two_store: Store = two.into();
    assert_eq!(ids(&two_store.latest(10).unwrap()), ["1"]);
    two_store
        .record_fetch(&a, &[item("2", Some(3))], &state, at(30))
        .unwrap();
    // Shutdown gives everything back at once.
    second.release().unwrap();
    assert!(second.fence().held().is_empty());
    let renewal = first.renew().unwrap();
    assert_eq!(renewal.held.len(), 256);
}

/// A node whose lease is still sure on its own clock, but whose partition the
/// database gave to another node meanwhile (a clock that ran slow, a pause between
/// its check and its write), is refused by the database itself.
#[test]
fn the_database_refuses_a_write_under_a_taken_lease() {
    let Some(pg) = TestPg::start() else { return };
    let url = pg.database("fencing_db");
    let one = connect(&url);
    let leases = Leases::new(&one, "one", std::time::Duration::from_secs(60));
    assert_eq!(leases.renew().unwrap().held.len(), 256);
    let a = origin("s1");
    let part = partition_of(&a.source.0, 256);
    let store: Store = one.into();
    let state = SourceState::default();
    store
        .record_fetch(&a, &[item("1", Some(1))], &state, at(10))
        .unwrap();
    pg.psql_value(
        &url,
        &format!("UPDATE leases SET owner = 'two', epoch = epoch + 1 WHERE part = {part} RETURNING part::text"),
    );
    assert!(leases.fence().epoch(part).is_some());
    let late = store.record_fetch(&a, &[item("late", Some(2))], &state, at(20));
    assert!(matches!(late, Err(StoreError::Fenced { .. })), "{late:?}");
    let late = store.put_source_state(&a.source, &state);
    assert!(matches!(late, Err(StoreError::Fenced { .. })), "{late:?}");
    assert_eq!(ids(&store.latest(10).unwrap()), ["1"]);
}

/// A node whose renewals hang (here: a lock every renewal needs, held by another
/// session) stops polling its partitions while their leases are still valid in the
/// database, so no other node can have taken them yet; it polls them again once a
/// renewal goes through.
#[test]
fn a_node_whose_renewals_hang_lets_go_before_its_leases_expire() {
    let Some(pg) = TestPg::start() else { return };
    let url = pg.database("lapse");
    let one = connect(&url);
    let ttl = std::time::Duration::from_secs(3);
    let leases = Leases::new(&one, "one", ttl);
    assert_eq!(leases.renew().unwrap().held.len(), 256);
    let runtime = tokio::runtime::Runtime::new().unwrap();
    let mut owned = leases.owned();
    let stop = tokio_util::sync::CancellationToken::new();
    let running = runtime.spawn(leases.clone().run(stop.clone()));
    let locker = runtime.block_on(async {
        let (client, connection) = tokio_postgres::connect(&url, tokio_postgres::NoTls)
            .await
            .unwrap();
        tokio::spawn(connection);
        client
            .batch_execute("BEGIN; LOCK TABLE nodes IN ACCESS EXCLUSIVE MODE")
            .await
            .unwrap();
        client
    });
    let locked = std::time::Instant::now();
    runtime
        .block_on(async {
            tokio::time::timeout(ttl, owned.wait_for(|parts| parts.is_empty())).await
        })
        .expect("the node lets go before its leases expire")
        .unwrap();
    let unexpired = pg.psql_value(
        &url,
        "SELECT (count(*) FILTER (WHERE expires_at > now()))::text FROM leases WHERE owner = 'one'",
    );
    assert_eq!(unexpired, "256", "let go after {:?}", locked.elapsed());
    assert!(leases.fence().held().is_empty());
    assert!(leases.fence().epoch(0).is_none());
    // The lock goes: the next renewal takes the partitions up again.
    runtime.block_on(async { locker.batch_execute("COMMIT").await.unwrap() });
    runtime
        .block_on(async {
            tokio::time::timeout(ttl * 2, owned.wait_for(|parts| parts.len() == 256)).await
        })
        .expect("polling again after a renewal")
        .unwrap();
    stop.cancel();
    runtime.block_on(running).unwrap();
}

/// Two nodes store the same story from two sources at once, many times over: it is
/// stored once each time, by the earlier publisher, as one writer would have it.
#[test]
fn nodes_writing_one_story_at_once_store_it_once() {
    let Some(pg) = TestPg::start() else { return };
    let url = pg.database("races");
    let stores: Vec<Store> = (0..2).map(|_| connect(&url).into()).collect();
    let rounds = 40;
    let handles: Vec<_> = stores
        .iter()
        .enumerate()
        .map(|(n, store)| {
            let store = store.clone();
            std::thread::spawn(move || {
                let source = origin(&format!("s{n}"));
                for round in 0..rounds {
                    let story = format!("https://news.example/story/{round}");
                    let items = [linked(
                        &format!("{n}-{round}"),
                        &story,
                        1000 + round + n as i64,
                    )];
                    store
                        .record_fetch(&source, &items, &SourceState::default(), at(5000))
                        .unwrap();
                }
            })
        })
        .collect();
    for handle in handles {
        handle.join().unwrap();
    }
    let latest = stores[0].latest(1000).unwrap();
    assert_eq!(latest.len(), rounds as usize, "{:?}", names(&latest));
    assert!(latest.iter().all(|i| i.origin.name == "s0"));
}

fn everything(store: &Store) -> Vec<Record> {
    let mut records = Vec::new();
    store
        .backend()
        .export(&mut |record| {
            records.push(record);
            Ok(())
        })
        .unwrap();
    records
}

/// sled -> PostgreSQL -> sled keeps every record: items, tombstones, links,
/// aliases, states; and the copy behaves as the original.
#[test]
fn a_store_copied_between_backends_keeps_every_item_and_tombstone() {
    let Some(pg) = TestPg::start() else { return };
    let sled = Store::temporary().unwrap();
    let state = SourceState {
        etag: Some("\"e\"".into()),
        ..SourceState::default()
    };
    let a = origin("a");
    let items: Vec<_> = (0..50)
        .map(|i| {
            linked(
                &format!("http://a.example/{i}"),
                &format!("https://a.example/p/{i}"),
                100 + i,
            )
        })
        .collect();
    sled.record_fetch(&a, &items, &state, at(1000)).unwrap();
    assert_eq!(sled.trim(at(120), 100).unwrap().removed, 20);
    let original = everything(&sled);
    let tombstones = original
        .iter()
        .filter(|r| matches!(r, Record::Id { value, .. } if value.len() == 9))
        .count();
    assert_eq!(tombstones, 20);
    let postgres: Store = connect(&pg.database("copy")).into();
    postgres.backend().import(original.clone()).unwrap();
    assert_eq!(everything(&postgres), original);
    assert_eq!(postgres.latest(100).unwrap(), sled.latest(100).unwrap());
    // Trimmed items stay away in the copy, under their ids and their https ids.
    let again: Vec<_> = items
        .iter()
        .map(|i| Item {
            id: ItemId(i.id.0.replacen("http://", "https://", 1)),
            ..i.clone()
        })
        .collect();
    let report = postgres.record_fetch(&a, &items, &state, at(2000)).unwrap();
    assert_eq!((report.added, report.unchanged), (0, 50));
    let report = postgres.record_fetch(&a, &again, &state, at(2000)).unwrap();
    assert_eq!(report.added, 0, "{report:?}");
    // And back.
    let back = Store::temporary().unwrap();
    back.backend().import(everything(&postgres)).unwrap();
    assert_eq!(everything(&back), everything(&postgres));
    assert_eq!(back.source_state(&a.source).unwrap(), state);
    let _ = Arc::new(());
}

/// `tributary migrate-store` copies a sled store into PostgreSQL and back, every
/// item and tombstone, and refuses a destination that holds items.
#[test]
fn migrate_store_copies_sled_into_postgres_and_back() {
    let Some(pg) = TestPg::start() else { return };
    let dir = tempfile::tempdir().unwrap();
    let (first, back) = (dir.path().join("first"), dir.path().join("back"));
    let original = {
        let sled = Store::open(&first).unwrap();
        let a = origin("a");
        let items: Vec<_> = (0..30)
            .map(|i| item(&format!("a{i}"), Some(100 + i)))
            .collect();
        sled.record_fetch(&a, &items, &SourceState::default(), at(1000))
            .unwrap();
        assert_eq!(sled.trim(at(110), 100).unwrap().removed, 10);
        everything(&sled)
    };
    let url = pg.database("migrate");
    let to_pg = format!("postgres:{url}");
    let run = |from: &str, to: &str| common::tributary(&["migrate-store", from, to]);
    let output = run(&format!("sled:{}", first.display()), &to_pg);
    let said = String::from_utf8_lossy(&output.stdout).to_string();
    assert!(
        output.status.success(),
        "{}",
        String::from_utf8_lossy(&output.stderr)
    );
    assert!(said.contains("20 items, 10 tombstones"), "{said}");
    let postgres: Store = connect(&url).into();
    assert_eq!(everything(&postgres), original);
    let output = run(&format!("sled:{}", first.display()), &to_pg);
    assert!(
        !output.status.success(),
        "a second copy into a full store is refused"
    );
    let output = run(&to_pg, &format!("sled:{}", back.display()));
    assert!(
        output.status.success(),
        "{}",
        String::from_utf8_lossy(&output.stderr)
    );
    assert_eq!(everything(&Store::open(&back).unwrap()), original);
}

/// `tributary migrate-store` copies the side tables too, both ways: the
/// subscriptions to the sources' hubs and the built-in hub's subscribers.
#[test]
fn migrate_store_copies_the_side_tables_both_ways() {
    let Some(pg) = TestPg::start() else { return };
    let dir = tempfile::tempdir().unwrap();
    let (first, back) = (dir.path().join("first"), dir.path().join("back"));
    let entries = |store: &Store| -> Vec<SideEntries> {
        SideTable::ALL
            .iter()
            .map(|&table| store.backend().side_entries(table).unwrap())
            .collect()
    };
    let original = {
        let sled = Store::open(&first).unwrap();
        sled.record_fetch(
            &origin("a"),
            &[item("a1", Some(100))],
            &SourceState::default(),
            at(1000),
        )
        .unwrap();
        for n in 0..3u8 {
            let backend = sled.backend();
            backend
                .put_side_entry(SideTable::Websub, &[b'w', n], &[n; 40])
                .unwrap();
            backend
                .put_side_entry(SideTable::HubSubscriptions, &[b'h', n, 0, n], b"sub")
                .unwrap();
        }
        entries(&sled)
    };
    assert!(original.iter().all(|table| table.len() == 3));
    let url = pg.database("side");
    let to_pg = format!("postgres:{url}");
    let run = |from: &str, to: &str| {
        let output = common::tributary(&["migrate-store", from, to]);
        assert!(
            output.status.success(),
            "{}",
            String::from_utf8_lossy(&output.stderr)
        );
        String::from_utf8_lossy(&output.stdout).to_string()
    };
    let said = run(&format!("sled:{}", first.display()), &to_pg);
    assert!(
        said.contains("3 hub_subscriptions entries, 3 websub entries"),
        "{said}"
    );
    assert_eq!(entries(&connect(&url).into()), original);
    run(&to_pg, &format!("sled:{}", back.display()));
    assert_eq!(entries(&Store::open(&back).unwrap()), original);
}
