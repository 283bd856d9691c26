//! The daemon's conversation with systemd, seen from a fake `NOTIFY_SOCKET` (a Unix
//! datagram socket of the test) with the real binary as a child.

mod common;

use common::daemon::{Daemon, command, config_text};
use common::write_config;
use std::os::unix::net::UnixDatagram;
use std::sync::{Arc, Mutex};
use std::time::{Duration, Instant};

const WAIT: Duration = Duration::from_secs(15);

/// Every datagram received, in order, with when it came.
#[derive(Clone, Default)]
struct Messages(Arc<Mutex<Vec<(Instant, String)>>>);

impl Messages {
    fn listen(socket: UnixDatagram) -> Messages {
        let messages = Messages::default();
        let sink = messages.clone();
        std::thread::spawn(move || {
            let mut buf = vec![0u8; 4096];
            while let Ok(n) = socket.recv(&mut buf) {
                let text = String::from_utf8_lossy(&buf[..n]).into_owned();
                sink.0.lock().unwrap().push((Instant::now(), text));
            }
        });
        messages
    }

    fn all(&self) -> Vec<String> {
        self.0
            .lock()
            .unwrap()
            .iter()
            .map(|(_, m)| m.clone())
            .collect()
    }

    /// Waits for a message after the first `from` that has every one of `lines`;
    /// returns its index.
    fn wait_for(&self, from: usize, lines: &[&str]) -> usize {
        let deadline = Instant::now() + WAIT;
        loop {
            if let Some(i) = self
                .all()
                .iter()
                .enumerate()
                .skip(from)
                .find(|(_, m)| lines.iter().all(|l| m.lines().any(|x| x.starts_with(l))))
                .map(|(i, _)| i)
            {
                return i;
            }
            assert!(
                Instant::now() < deadline,
                "no message with {lines:?}; got {:?}",
                self.all()
            );
            std::thread::sleep(Duration::from_millis(20));
        }
    }

    /// Watchdog pings received between `from` and `to`.
    fn pings_between(&self, from: Instant, to: Instant) -> usize {
        self.0
            .lock()
            .unwrap()
            .iter()
            .filter(|(at, m)| *at >= from && *at < to && m.lines().any(|l| l == "WATCHDOG=1"))
            .count()
    }
}

#[test]
fn ready_reloading_ready_stopping_and_watchdog_pings() {
    let dir = tempfile::tempdir().unwrap();
    let config = write_config(dir.path(), &config_text(dir.path(), ""));
    let socket_path = dir.path().join("notify.sock");
    let socket = UnixDatagram::bind(&socket_path).unwrap();
    let messages = Messages::listen(socket);

    let mut child = command(&config);
    // One second: a ping every half second.
    child
        .env("NOTIFY_SOCKET", &socket_path)
        .env("WATCHDOG_USEC", "1000000");
    let daemon = Daemon::spawn(child);
    let ready = messages.wait_for(0, &["READY=1"]);
    messages.wait_for(0, &["STATUS=polling 0 sources, 0 failing, 0 items"]);

    // Pings at the rate asked for: about 6 in 3 s.
    let from = Instant::now();
    std::thread::sleep(Duration::from_secs(3));
    let pings = messages.pings_between(from, Instant::now());
    assert!((5..=7).contains(&pings), "{pings} pings in 3 s");

    daemon.signal(libc::SIGHUP);
    let reloading = messages.wait_for(ready + 1, &["RELOADING=1", "MONOTONIC_USEC="]);
    let ready_again = messages.wait_for(reloading + 1, &["READY=1", "STATUS=reloaded"]);

    // A broken file: READY=1 again, with a status saying why.
    std::fs::write(&config, "[server\n").unwrap();
    daemon.signal(libc::SIGHUP);
    let reloading = messages.wait_for(ready_again + 1, &["RELOADING=1", "MONOTONIC_USEC="]);
    let failed = messages.wait_for(reloading + 1, &["READY=1", "STATUS=reload failed"]);
    assert!(
        messages.all()[failed].contains("feeds.toml:1:"),
        "{:?}",
        messages.all()[failed]
    );

    let stopping_from = messages.all().len();
    let started = Instant::now();
    let status = daemon.stop(WAIT);
    assert!(status.success(), "{status:?}");
    assert!(started.elapsed() < Duration::from_secs(5));
    messages.wait_for(stopping_from, &["STOPPING=1"]);
    // MONOTONIC_USEC is CLOCK_MONOTONIC in microseconds: a plausible number.
    let monotonic: u64 = messages.all()[reloading]
        .lines()
        .find_map(|l| l.strip_prefix("MONOTONIC_USEC="))
        .unwrap()
        .parse()
        .unwrap();
    assert!(monotonic > 0);
}

#[test]
fn without_notify_socket_nothing_is_sent_and_the_daemon_runs() {
    let dir = tempfile::tempdir().unwrap();
    let config = write_config(dir.path(), &config_text(dir.path(), ""));
    let daemon = Daemon::start(&config);
    assert!(daemon.get("/healthz").starts_with("HTTP/1.1 200"));
    assert!(!daemon.log().contains("pinging the systemd watchdog"));
    assert!(daemon.stop(WAIT).success());
}

#[test]
fn a_socket_passed_by_systemd_is_served_on() {
    use std::os::fd::AsRawFd;
    use std::os::unix::process::CommandExt;
    let dir = tempfile::tempdir().unwrap();
    let config = dir.path().join("feeds.toml");
    // The config names another port: the passed socket wins.
    std::fs::write(&config, config_text(dir.path(), "")).unwrap();
    let listener = std::net::TcpListener::bind("127.0.0.1:0").unwrap();
    let addr = listener.local_addr().unwrap();
    let fd = listener.as_raw_fd();

    // LISTEN_PID must be the daemon's own pid: a shell sets it to its own and execs.
    let mut child = std::process::Command::new("sh");
    let template = command(&config);
    child
        .arg("-c")
        .arg("LISTEN_PID=$$ exec \"$0\" \"$@\"")
        .arg(template.get_program())
        .args(template.get_args())
        .env("RUST_LOG", "info")
        .env("LISTEN_FDS", "1")
        .env_remove("LISTEN_PID")
        .env_remove("STATE_DIRECTORY")
        .env_remove("NOTIFY_SOCKET")
        .stdin(std::process::Stdio::null())
        .stderr(std::process::Stdio::piped());
    // SAFETY: dup2 and fcntl are async-signal-safe. fd 3 is the first passed fd; it
    // must survive exec (dup2 clears close-on-exec, but not when fd is 3 already).
    unsafe {
        child.pre_exec(move || {
            let ok = if fd == 3 {
                libc::fcntl(3, libc::F_SETFD, 0)
            } else {
                libc::dup2(fd, 3)
            };
            if ok < 0 {
                return Err(std::io::Error::last_os_error());
            }
            Ok(())
        });
    }
    let daemon = Daemon::spawn(child);
    drop(listener);
    assert_eq!(daemon.addr, addr.to_string());
    assert!(daemon.log().contains("socket passed by systemd"));
    assert!(daemon.get("/healthz").starts_with("HTTP/1.1 200"));
    assert!(daemon.stop(WAIT).success());
}

#[test]
fn a_passed_fd_that_is_not_a_listening_socket_is_a_clear_error() {
    let dir = tempfile::tempdir().unwrap();
    let config = write_config(dir.path(), &config_text(dir.path(), ""));
    let template = command(&config);
    let out = std::process::Command::new("sh")
        .arg("-c")
        .arg("LISTEN_FDS=1 LISTEN_PID=$$ exec \"$0\" \"$@\" 3<\"$CONFIG\"")
        .arg(template.get_program())
        .args(template.get_args())
        .env("CONFIG", &config)
        .env_remove("LISTEN_PID")
        .env_remove("NOTIFY_SOCKET")
        .output()
        .unwrap();
    assert_eq!(out.status.code(), Some(1), "{out:?}");
    let stderr = String::from_utf8(out.stderr).unwrap();
    assert!(
        stderr.contains("fd 3 is not a listening stream socket"),
        "{stderr}"
    );
}
