//! A reload on one node of a cluster reaches the others through the shared store
//! (a throwaway PostgreSQL the test starts; skipped when PostgreSQL is not installed,
//! a failure under CI): node one watches its `feeds.toml`, node two does not; a
//! source added to both files is listed by node two once node one has reloaded.

mod common;

use std::path::Path;
use std::time::Duration;
use tributary::ops::listing::Listing;

use common::postgres::TestPg;
use common::{FeedServer, RunningApp};

fn text(db: &str, node: &str, watch: bool, urls: &[String]) -> String {
    let mut text = format!(
        "[config]\nwatch = {watch}\n[server]\nlisten = \"127.0.0.1:0\"\n\
         [store]\nbackend = \"postgres\"\nurl = \"{db}\"\nnode_id = \"{node}\"\n\
         lease_ttl = \"3s\"\nwatch_every = \"200ms\"\n"
    );
    for url in urls {
        text.push_str(&format!("[[source]]\nurl = \"{url}\"\n"));
    }
    text
}

fn load(path: &Path) -> tributary::config::Config {
    tributary::config::load(path).unwrap()
}

async fn listed(app: &RunningApp) -> usize {
    let addr = app.addr.to_string();
    let response = tokio::task::spawn_blocking(move || {
        common::daemon::http_get(&addr, "/sources.json?limit=1000")
    })
    .await
    .unwrap();
    Listing::from_json(common::daemon::body(&response).as_bytes())
        .map(|listing| listing.sources.len())
        .unwrap_or(0)
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_reload_on_one_node_reaches_the_others() {
    let Some(pg) = TestPg::start() else { return };
    let db = pg.database("reload");
    let server = FeedServer::start().await;
    common::serve_river(&server);
    let urls: Vec<String> = ["/rss2.xml", "/atom.xml", "/rss1.xml"]
        .iter()
        .map(|path| server.url(path))
        .collect();
    let (one_dir, two_dir) = (tempfile::tempdir().unwrap(), tempfile::tempdir().unwrap());
    let one_path = common::write_config(one_dir.path(), &text(&db, "n1", true, &urls[..2]));
    let two_path = common::write_config(two_dir.path(), &text(&db, "n2", false, &urls[..2]));
    let (one, two) = tokio::join!(
        RunningApp::start(load(&one_path)),
        RunningApp::start(load(&two_path)),
    );
    common::eventually(Duration::from_secs(30), || async {
        (listed(&one).await == 2 && listed(&two).await == 2).then_some(())
    })
    .await;

    // The same file deployed to both; node two is not told, and does not look.
    std::fs::write(&two_path, text(&db, "n2", false, &urls)).unwrap();
    tokio::time::sleep(Duration::from_secs(1)).await;
    assert_eq!(listed(&two).await, 2, "node two reloaded on its own");
    std::fs::write(&one_path, text(&db, "n1", true, &urls)).unwrap();
    common::eventually(Duration::from_secs(20), || async {
        (listed(&one).await == 3 && listed(&two).await == 3).then_some(())
    })
    .await;
    one.stop().await;
    two.stop().await;
}
