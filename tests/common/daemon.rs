//! The real `tributary run` as a child process: its log collected line by line, its
//! address read from the "tributary is up" line, signals sent to it by pid.
#![allow(dead_code)]

use std::io::{BufRead, BufReader, Read, Write};
use std::path::Path;
use std::process::{Child, Command, ExitStatus, Stdio};
use std::sync::{Arc, Mutex};
use std::time::{Duration, Instant};

pub struct Daemon {
    child: Child,
    /// The address it serves on.
    pub addr: String,
    log: Arc<Mutex<String>>,
}

/// A `tributary run --config <config>` command, for the caller to add to.
pub fn command(config: &Path) -> Command {
    let mut command = Command::new(env!("CARGO_BIN_EXE_tributary"));
    command
        .args(["run", "--config"])
        .arg(config)
        .env("RUST_LOG", "info")
        .env_remove("TRIBUTARY_CONFIG")
        .env_remove("STATE_DIRECTORY")
        .env_remove("NOTIFY_SOCKET")
        .env_remove("WATCHDOG_USEC")
        .env_remove("WATCHDOG_PID")
        .env_remove("LISTEN_FDS")
        .env_remove("LISTEN_PID")
        .env_remove("JOURNAL_STREAM")
        .stdin(Stdio::null())
        .stderr(Stdio::piped());
    command
}

/// The config of a daemon on a free loopback port with its store in `dir`, followed
/// by `rest` (sources and the like).
pub fn config_text(dir: &Path, rest: &str) -> String {
    format!(
        "[server]\nlisten = \"127.0.0.1:0\"\n[store]\npath = \"{}\"\nmax_age = \"36500d\"\n{rest}",
        dir.join("data").display()
    )
}

impl Daemon {
    /// Starts `tributary run --config <config>`; returns once it is up.
    pub fn start(config: &Path) -> Daemon {
        Daemon::spawn(command(config))
    }

    /// Spawns `command` (see [`command`]) and waits (at most 10 s) until it is up.
    pub fn spawn(command: Command) -> Daemon {
        Daemon::spawn_within(command, Duration::from_secs(10))
    }

    /// Spawns `command` and waits (at most `limit`) until it is up.
    pub fn spawn_within(mut command: Command, limit: Duration) -> Daemon {
        let mut child = command.spawn().expect("the binary starts");
        let log = Arc::new(Mutex::new(String::new()));
        let stderr = child.stderr.take().unwrap();
        let sink = log.clone();
        std::thread::spawn(move || {
            for line in BufReader::new(stderr).lines() {
                let Ok(line) = line else { break };
                let mut log = sink.lock().unwrap();
                log.push_str(&line);
                log.push('\n');
            }
        });
        let mut daemon = Daemon {
            child,
            addr: String::new(),
            log,
        };
        let up = daemon.wait_for_log("tributary is up", limit);
        daemon.addr = up
            .split_whitespace()
            .find_map(|w| w.strip_prefix("listen="))
            .expect("the log line names the address")
            .to_string();
        daemon
    }

    pub fn pid(&self) -> i32 {
        self.child.id() as i32
    }

    pub fn signal(&self, signal: i32) {
        // SAFETY: kill(2) on our own child's pid.
        let rc = unsafe { libc::kill(self.pid(), signal) };
        assert_eq!(rc, 0, "kill: {}", std::io::Error::last_os_error());
    }

    /// Whether the process is still running.
    pub fn child_alive(&mut self) -> bool {
        self.child.try_wait().unwrap().is_none()
    }

    /// Everything logged so far.
    pub fn log(&self) -> String {
        self.log.lock().unwrap().clone()
    }

    /// Waits until a log line contains `needle` and returns that line.
    pub fn wait_for_log(&self, needle: &str, limit: Duration) -> String {
        self.wait_for_log_after(0, needle, limit)
    }

    /// Waits until a line after byte `from` of the log contains `needle`.
    pub fn wait_for_log_after(&self, from: usize, needle: &str, limit: Duration) -> String {
        let deadline = Instant::now() + limit;
        loop {
            let log = self.log();
            if let Some(line) = log
                .get(from..)
                .unwrap_or("")
                .lines()
                .find(|l| l.contains(needle))
            {
                return line.to_string();
            }
            assert!(
                Instant::now() < deadline,
                "no log line with {needle:?} within {limit:?}; the log:\n{log}"
            );
            std::thread::sleep(Duration::from_millis(20));
        }
    }

    /// GETs `path` and returns the whole response.
    pub fn get(&self, path: &str) -> String {
        http_get(&self.addr, path)
    }

    /// Waits until GET `path` returns a response containing `needle`.
    pub fn wait_for_body(&self, path: &str, needle: &str, limit: Duration) -> String {
        let deadline = Instant::now() + limit;
        loop {
            let response = self.get(path);
            if response.contains(needle) {
                return response;
            }
            assert!(
                Instant::now() < deadline,
                "GET {path} did not show {needle:?} within {limit:?}:\n{response}\nlog:\n{}",
                self.log()
            );
            std::thread::sleep(Duration::from_millis(50));
        }
    }

    /// Sends SIGTERM and waits (at most `limit`) for the exit.
    pub fn stop(mut self, limit: Duration) -> ExitStatus {
        self.signal(libc::SIGTERM);
        self.wait(limit)
    }

    /// Waits (at most `limit`) for the process to exit.
    pub fn wait(&mut self, limit: Duration) -> ExitStatus {
        let deadline = Instant::now() + limit;
        loop {
            if let Some(status) = self.child.try_wait().unwrap() {
                return status;
            }
            assert!(
                Instant::now() < deadline,
                "the daemon did not exit within {limit:?}; the log:\n{}",
                self.log()
            );
            std::thread::sleep(Duration::from_millis(20));
        }
    }
}

impl Drop for Daemon {
    fn drop(&mut self) {
        let _ = self.child.kill();
        let _ = self.child.wait();
    }
}

/// The body of an HTTP response: what follows the head.
pub fn body(response: &str) -> &str {
    response.split_once("\r\n\r\n").map_or("", |(_, b)| b)
}

/// A minimal HTTP/1.1 GET; returns the whole response.
pub fn http_get(addr: &str, path: &str) -> String {
    http_request(addr, "GET", path, "")
}

/// A minimal HTTP/1.1 request with no body, `headers` (each ending in CRLF) added;
/// returns the whole response.
pub fn http_request(addr: &str, method: &str, path: &str, headers: &str) -> String {
    let mut stream = std::net::TcpStream::connect(addr).unwrap();
    stream
        .set_read_timeout(Some(Duration::from_secs(5)))
        .unwrap();
    write!(
        stream,
        "{method} {path} HTTP/1.1\r\nHost: {addr}\r\n{headers}Connection: close\r\n\r\n"
    )
    .unwrap();
    let mut response = String::new();
    stream.read_to_string(&mut response).unwrap();
    response
}
