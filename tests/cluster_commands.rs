//! The commands that read or write the store without a daemon, on the shared
//! PostgreSQL store (a throwaway server the test starts; skipped when PostgreSQL is
//! not installed, a failure under CI): `tributary poll` stores what the sources
//! hold there, and refuses while a node holds partitions; `tributary sources` reads
//! the statuses there, each with its partition and the node that polls it.

mod common;

use std::time::Duration;
use tributary::ops::listing::Listing;
use tributary::ops::status::Status;
use tributary::store::Store;
use tributary::store::postgres::{Leases, PARTITIONS, PgOptions, Postgres, partition_of};

use common::postgres::TestPg;
use common::{FeedServer, serve_river, tributary};

fn free_port() -> u16 {
    let listener = std::net::TcpListener::bind("127.0.0.1:0").unwrap();
    listener.local_addr().unwrap().port()
}

async fn run(args: &[&str]) -> std::process::Output {
    let args: Vec<String> = args.iter().map(|a| a.to_string()).collect();
    tokio::task::spawn_blocking(move || {
        let args: Vec<&str> = args.iter().map(String::as_str).collect();
        tributary(&args)
    })
    .await
    .unwrap()
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn poll_and_sources_work_on_the_shared_store() {
    let Some(pg) = TestPg::start() else { return };
    let db = pg.database("commands");
    let server = FeedServer::start().await;
    serve_river(&server);
    let dir = tempfile::tempdir().unwrap();
    // No daemon answers on this port: `sources` reads the store.
    let text = format!(
        "[server]\nlisten = \"127.0.0.1:{}\"\n\
         [store]\nbackend = \"postgres\"\nurl = \"{db}\"\nlease_ttl = \"3s\"\n{}",
        free_port(),
        common::river_sources(&server)
    );
    let config = common::write_config(dir.path(), &text);
    let config = config.to_str().unwrap();

    let out = run(&["poll", "--config", config]).await;
    let said = String::from_utf8_lossy(&out.stdout);
    assert!(
        out.status.success(),
        "{said}{}",
        String::from_utf8_lossy(&out.stderr)
    );
    assert!(said.contains("polled 4 sources"), "{said}");
    assert!(said.contains("4 ok"), "{said}");
    let mut options = PgOptions::new(db.clone());
    options.pool_size = 2;
    let postgres = Postgres::connect(&options).unwrap();
    let store: Store = postgres.clone().into();
    let stored = store.latest(100).unwrap();
    assert!(stored.len() >= 4, "{} items stored", stored.len());

    let out = run(&["sources", "--json", "--config", config]).await;
    assert!(
        out.status.success(),
        "{}",
        String::from_utf8_lossy(&out.stderr)
    );
    let listing = Listing::from_json(&out.stdout).unwrap();
    assert_eq!(listing.sources.len(), 4);
    let mut items = 0;
    for status in &listing.sources {
        assert_eq!(status.status, Status::Ok, "{status:?}");
        items += status.items.unwrap();
        assert_eq!(
            status.partition,
            Some(partition_of(&status.url, PARTITIONS))
        );
        // No node runs: nobody polls it, and the command is not a node.
        assert_eq!(status.owner, None);
        assert_eq!(status.polled_here, None);
    }
    assert_eq!(items as usize, stored.len());

    // A node takes every partition: it polls, and `poll` refuses to write beside it;
    // `sources` names it as the poller of each source.
    let leases = Leases::new(&postgres, "n1", Duration::from_secs(30));
    assert_eq!(leases.renew().unwrap().held.len(), PARTITIONS as usize);
    let out = run(&["poll", "--config", config]).await;
    assert!(!out.status.success());
    let stderr = String::from_utf8_lossy(&out.stderr);
    assert!(stderr.contains("n1 (256)"), "{stderr}");
    let out = run(&["sources", "--config", config]).await;
    let table = String::from_utf8_lossy(&out.stdout);
    assert_eq!(table.matches(", polled by n1").count(), 4, "{table}");
    let stderr = String::from_utf8_lossy(&out.stderr);
    assert!(
        stderr.contains("from the shared PostgreSQL store"),
        "{stderr}"
    );
    leases.release().unwrap();
}
