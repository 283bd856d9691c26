//! Where the daemon keeps large rendered documents: in unnamed files in the store's
//! directory (`tributary::zerocopy`), open while they are served and never visible
//! there. A test binary of its own: the directory is set process-wide, and another
//! daemon started in the same process would move it.

mod common;

use std::os::unix::fs::OpenOptionsExt;
use std::path::PathBuf;
use std::time::Duration;

/// The targets of this process's open file descriptors.
fn open_files() -> Vec<String> {
    std::fs::read_dir("/proc/self/fd")
        .unwrap()
        .filter_map(|entry| std::fs::read_link(entry.ok()?.path()).ok())
        .map(|target| target.to_string_lossy().into_owned())
        .collect()
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn large_documents_live_in_unnamed_files_in_the_store_directory() {
    let server = common::FeedServer::start().await;
    let mut feed = String::from(
        "<?xml version=\"1.0\"?><rss version=\"2.0\"><channel><title>Long reads</title>\
         <link>https://long.example/</link><description>d</description>",
    );
    for n in 0..60 {
        feed.push_str(&format!(
            "<item><title>Long read {n}</title><link>https://long.example/{n}</link>\
             <pubDate>Fri, 06 Feb 2026 10:{n:02}:00 GMT</pubDate>\
             <description>{}</description></item>",
            format!("Paragraph {n} of a long article, with varied words. ").repeat(40)
        ));
    }
    feed.push_str("</channel></rss>");
    server.route("/long.xml", feed.into_bytes(), "application/rss+xml");
    let store = tempfile::tempdir().unwrap();
    let store_path: PathBuf = store.path().canonicalize().unwrap();
    let text = format!(
        "[store]\npath = \"{}\"\nmax_age = \"36500d\"\n[[source]]\nurl = \"{}\"\n",
        store_path.display(),
        server.url("/long.xml")
    );
    let app = common::RunningApp::start(common::config_with_interval(
        &text,
        Duration::from_secs(3600),
    ))
    .await;
    let url = app.url("/feed.xml");
    let body = common::eventually(Duration::from_secs(15), || {
        let url = url.clone();
        async move {
            let body = reqwest::get(&url).await.ok()?.bytes().await.ok()?;
            let feed = feed_rs::parser::parse(&body[..]).ok()?;
            (feed.entries.len() == 60).then_some(body)
        }
    })
    .await;
    assert!(
        body.len() >= tributary::zerocopy::MIN_SENDFILE_BYTES,
        "the test needs a large document, not {} bytes",
        body.len()
    );

    // A filesystem without unnamed files (overlayfs before Linux 6.6) gets memfds.
    let unnamed_files_work = std::fs::OpenOptions::new()
        .write(true)
        .custom_flags(libc::O_TMPFILE)
        .open(&store_path)
        .is_ok();
    if !unnamed_files_work {
        assert!(
            open_files()
                .iter()
                .any(|target| target.starts_with("/memfd:tributary-document")),
            "{:?}",
            open_files()
        );
        app.stop().await;
        return;
    }
    // Open, in the store's directory, and already unlinked: "/store/#1234 (deleted)".
    let prefix = format!("{}/", store_path.display());
    let documents: Vec<String> = open_files()
        .into_iter()
        .filter(|target| target.starts_with(&prefix) && target.ends_with(" (deleted)"))
        .collect();
    assert!(
        !documents.is_empty(),
        "no unnamed document file in {prefix}: {:?}",
        open_files()
    );
    assert!(
        !open_files()
            .iter()
            .any(|target| target.starts_with("/memfd:")),
        "a document went to a memory file although the store's directory can hold it"
    );
    // Nothing of them shows in the directory.
    let listed: Vec<String> = std::fs::read_dir(&store_path)
        .unwrap()
        .map(|entry| entry.unwrap().file_name().to_string_lossy().into_owned())
        .collect();
    for document in &documents {
        let name = document[prefix.len()..].trim_end_matches(" (deleted)");
        assert!(
            !listed.iter().any(|entry| entry == name),
            "{name} is visible in {listed:?}"
        );
    }
    app.stop().await;
}
