//! The daemon (`tributary run`) against a store it cannot use: held by another
//! process, a file where its directory should be, a read-only directory. Each time it
//! must exit at once with the documented code (69 busy, 74 unreadable/unwritable) and
//! a message naming the store's path and the cause, instead of starting half-way.
//!
//! Disk full is `bench/diskfull.sh` (it mounts a tmpfs, so it needs root).

mod common;

use common::{daemon, write_config};

use std::io::Read;
use std::path::Path;
use std::process::ExitStatus;
use std::time::{Duration, Instant};

/// Runs `tributary run` on `config` until it exits (at most 20 s: it should exit at
/// once); returns its status and stderr.
fn run_until_exit(config: &Path) -> (ExitStatus, String) {
    let mut child = daemon::command(config).spawn().expect("the binary starts");
    let mut stderr = child.stderr.take().unwrap();
    let reader = std::thread::spawn(move || {
        let mut text = String::new();
        let _ = stderr.read_to_string(&mut text);
        text
    });
    let deadline = Instant::now() + Duration::from_secs(20);
    let status = loop {
        if let Some(status) = child.try_wait().unwrap() {
            break status;
        }
        if Instant::now() > deadline {
            let _ = child.kill();
            let _ = child.wait();
            panic!(
                "tributary run did not exit within 20 s:\n{}",
                reader.join().unwrap()
            );
        }
        std::thread::sleep(Duration::from_millis(20));
    };
    (status, reader.join().unwrap())
}

/// A daemon config on `dir` with no source, written to `dir/feeds.toml`.
fn write_daemon_config(dir: &Path) -> std::path::PathBuf {
    write_config(dir, &daemon::config_text(dir, ""))
}

fn is_root() -> bool {
    // SAFETY: geteuid has no preconditions and cannot fail.
    unsafe { libc::geteuid() == 0 }
}

#[test]
fn a_store_held_by_another_process_exits_69_naming_it() {
    let dir = tempfile::tempdir().unwrap();
    let config = write_daemon_config(dir.path());
    let store_path = dir.path().join("data");
    let _held = tributary::store::Store::open(&store_path).unwrap();
    let (status, stderr) = run_until_exit(&config);
    assert_eq!(status.code(), Some(69), "{stderr}");
    assert!(
        stderr.contains(&format!("opening the store at {}", store_path.display())),
        "{stderr}"
    );
    assert!(stderr.contains("in use by another process"), "{stderr}");
    assert!(!stderr.contains("tributary is up"), "{stderr}");
}

#[test]
fn a_file_where_the_store_should_be_exits_74_naming_it() {
    let dir = tempfile::tempdir().unwrap();
    let config = write_daemon_config(dir.path());
    let store_path = dir.path().join("data");
    std::fs::write(&store_path, "not a directory").unwrap();
    let (status, stderr) = run_until_exit(&config);
    assert_eq!(status.code(), Some(74), "{stderr}");
    assert!(
        stderr.contains(&format!("opening the store at {}", store_path.display())),
        "{stderr}"
    );
    assert!(stderr.contains("Not a directory"), "{stderr}");
    assert!(!stderr.contains("tributary is up"), "{stderr}");
}

/// Read-only: a new store under a directory that cannot be written, and an existing
/// store whose files cannot be written. Root writes through permission bits, so as
/// root the first case uses a directory of sysfs (where not even root may create one)
/// and the second is skipped.
#[test]
fn a_read_only_store_exits_74_naming_it() {
    use std::os::unix::fs::PermissionsExt;
    let set_mode = |path: &Path, mode: u32| {
        std::fs::set_permissions(path, std::fs::Permissions::from_mode(mode)).unwrap()
    };
    let dir = tempfile::tempdir().unwrap();
    let config = dir.path().join("feeds.toml");

    // No store yet, and its parent cannot be written.
    let (parent, cause) = if is_root() {
        (Path::new("/sys").to_path_buf(), "Operation not permitted")
    } else {
        let parent = dir.path().join("read-only");
        std::fs::create_dir(&parent).unwrap();
        set_mode(&parent, 0o555);
        (parent, "Permission denied")
    };
    std::fs::write(&config, daemon::config_text(&parent, "")).unwrap();
    let store_path = parent.join("data");
    let (status, stderr) = run_until_exit(&config);
    assert_eq!(status.code(), Some(74), "{stderr}");
    assert!(
        stderr.contains(&format!("opening the store at {}", store_path.display())),
        "{stderr}"
    );
    assert!(stderr.contains(cause), "{stderr}");

    if is_root() {
        eprintln!("skipped the read-only existing store: root writes through permission bits");
        return;
    }
    // An existing store, made read-only (directory and files).
    set_mode(&parent, 0o755);
    drop(tributary::store::Store::open(&store_path).unwrap());
    let mut paths = vec![store_path.clone()];
    let mut at = 0;
    while at < paths.len() {
        if paths[at].is_dir() {
            for entry in std::fs::read_dir(&paths[at]).unwrap() {
                paths.push(entry.unwrap().path());
            }
        }
        at += 1;
    }
    for path in paths.iter().rev() {
        set_mode(path, if path.is_dir() { 0o555 } else { 0o444 });
    }
    let (status, stderr) = run_until_exit(&config);
    for path in &paths {
        set_mode(path, 0o755);
    }
    assert_eq!(status.code(), Some(74), "{stderr}");
    assert!(
        stderr.contains(&format!("opening the store at {}", store_path.display())),
        "{stderr}"
    );
    assert!(stderr.contains("Permission denied"), "{stderr}");
}
