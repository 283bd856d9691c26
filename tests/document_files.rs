//! Where the daemon keeps large rendered documents: in unnamed files in the store's
//! directory (`tributary::http::zerocopy`), open while they are served and never visible
//! there. A test binary of its own: the directory is set process-wide, and another
//! daemon started in the same process would move it.

mod common;

use std::os::unix::fs::OpenOptionsExt;
use std::path::PathBuf;

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
    let store = tempfile::tempdir().unwrap();
    let store_path: PathBuf = store.path().canonicalize().unwrap();
    let (_server, app, _feed) = common::start_long_reads(&store_path).await;

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
