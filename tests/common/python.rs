//! Python's feedparser, the reference reader: a PYTHONPATH it imports from, and the
//! scripts in `tests/` run with it. Used by `outputs` (through `common`) and by
//! `fidelity` (alone, so that small test binary does not build the servers here).

use std::ffi::OsStr;
use std::path::Path;
use std::process::Command;

/// A directory for PYTHONPATH where feedparser can be imported from. When the
/// system's python3 lacks it, it is installed once with pip into the build's
/// temporary directory, so `cargo test` works on a machine that has only python3.
pub fn feedparser_path() -> &'static Path {
    static PATH: std::sync::OnceLock<std::path::PathBuf> = std::sync::OnceLock::new();
    PATH.get_or_init(|| {
        let target = Path::new(env!("CARGO_TARGET_TMPDIR")).join("python");
        let importable = Command::new("python3")
            .args(["-c", "import feedparser"])
            .env("PYTHONPATH", &target)
            .status()
            .is_ok_and(|s| s.success());
        if !importable {
            let status = Command::new("python3")
                .args(["-m", "pip", "install", "--quiet", "--disable-pip-version-check"])
                .args(["--target".as_ref(), target.as_os_str()])
                .arg("feedparser")
                .status();
            assert!(
                status.is_ok_and(|s| s.success()),
                "feedparser is not installed and `python3 -m pip install --target {} feedparser` failed",
                target.display()
            );
        }
        target
    })
}

/// Runs `python3 tests/SCRIPT ARGS...` with feedparser importable; its stdout.
/// Panics, with the script's stderr, when it cannot run or fails.
pub fn run_script<I, S>(script: &str, args: I) -> Vec<u8>
where
    I: IntoIterator<Item = S>,
    S: AsRef<OsStr>,
{
    let path = Path::new(env!("CARGO_MANIFEST_DIR"))
        .join("tests")
        .join(script);
    let output = Command::new("python3")
        .env("PYTHONPATH", feedparser_path())
        .arg(&path)
        .args(args)
        .output()
        .unwrap_or_else(|err| {
            panic!("python3 is needed to read documents with feedparser and could not be run ({err}); install python3, then `python3 -m pip install feedparser`")
        });
    assert!(
        output.status.success(),
        "{script} failed (exit {:?}): {}\nInstall feedparser with `python3 -m pip install feedparser` (.ci/run does).",
        output.status.code(),
        String::from_utf8_lossy(&output.stderr)
    );
    output.stdout
}

/// Whether python3 can import `modules` (e.g. `"flask_websub.hub, celery"`), for the
/// tests that run an independent implementation written in Python. When it cannot,
/// prints why the test skips; under `CI`, where nothing may be skipped, panics
/// naming `install`, the command that installs them.
#[allow(dead_code)] // not by every test binary that includes this file
pub fn can_import(modules: &str, install: &str) -> bool {
    let ok = Command::new("python3")
        .args(["-c", &format!("import {modules}")])
        .stderr(std::process::Stdio::null())
        .status()
        .is_ok_and(|s| s.success());
    if !ok {
        assert!(
            std::env::var_os("CI").is_none(),
            "CI is set and python3 cannot import {modules}: {install}"
        );
        eprintln!("skipping: python3 cannot import {modules} ({install})");
    }
    ok
}

/// Starts `command` (a Python launcher of a peer) with its stdout piped, and waits for
/// the first line it prints: the line that says it is ready, and where.
#[allow(dead_code)] // not by every test binary that includes this file
pub fn spawn_ready(command: &mut Command) -> (std::process::Child, String) {
    use std::io::BufRead;
    let mut child = command
        .stdout(std::process::Stdio::piped())
        .spawn()
        .expect("python3 runs");
    let mut line = String::new();
    std::io::BufReader::new(child.stdout.take().expect("stdout is piped"))
        .read_line(&mut line)
        .expect("reading the launcher's first line");
    (child, line)
}
