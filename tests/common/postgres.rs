//! A throwaway PostgreSQL server for a test: Debian's binaries (on PATH or under
//! /usr/lib/postgresql/*/bin), `initdb` into a temporary directory, listening on a
//! Unix socket there and on a free loopback port, stopped when dropped (also when the
//! test panics).
//!
//! initdb and postgres refuse to run as root: as root (CI), both run as `nobody`
//! through `setpriv`, which owns the temporary directory.
//!
//! Without the binaries, [`TestPg::start`] returns `None` after saying why, and the
//! test skips; with the environment variable `CI` set, that is a failure.

use std::path::{Path, PathBuf};
use std::process::{Child, Command, Stdio};
use std::time::{Duration, Instant};

/// The uid and gid of `nobody` on Debian.
const NOBODY: &str = "65534";

pub struct TestPg {
    dir: tempfile::TempDir,
    pub port: u16,
    server: Child,
}

/// Where initdb, postgres and pg_ctl are: PATH first, then the newest Debian version.
fn binaries() -> Option<PathBuf> {
    if let Ok(path) = std::env::var("PATH") {
        for dir in std::env::split_paths(&path) {
            if dir.join("initdb").is_file() && dir.join("postgres").is_file() {
                return Some(dir);
            }
        }
    }
    let mut versions: Vec<(u32, PathBuf)> = std::fs::read_dir("/usr/lib/postgresql")
        .ok()?
        .flatten()
        .filter_map(|entry| {
            let version = entry.file_name().to_str()?.parse().ok()?;
            let bin = entry.path().join("bin");
            bin.join("initdb").is_file().then_some((version, bin))
        })
        .collect();
    versions.sort();
    versions.pop().map(|(_, bin)| bin)
}

fn is_root() -> bool {
    use std::os::unix::fs::MetadataExt;
    // /proc/self belongs to the process's effective user.
    std::fs::metadata("/proc/self").is_ok_and(|m| m.uid() == 0)
}

/// `program` with `args`, as `nobody` when this process is root.
fn command(program: &Path, args: &[&str]) -> Command {
    if is_root() {
        let mut command = Command::new("setpriv");
        command
            .args(["--reuid", NOBODY, "--regid", NOBODY, "--clear-groups", "--"])
            .arg(program)
            .args(args);
        command
    } else {
        let mut command = Command::new(program);
        command.args(args);
        command
    }
}

fn free_port() -> u16 {
    let listener = std::net::TcpListener::bind("127.0.0.1:0").unwrap();
    listener.local_addr().unwrap().port()
}

impl TestPg {
    /// Starts a server, or says why it cannot and returns `None` (a failure under CI).
    pub fn start() -> Option<TestPg> {
        let Some(bin) = binaries() else {
            let why = "PostgreSQL is not installed (no initdb on PATH or in /usr/lib/postgresql/*/bin; apt-get install postgresql)";
            if std::env::var_os("CI").is_some() {
                panic!("{why}");
            }
            eprintln!("skipping: {why}");
            return None;
        };
        let dir = tempfile::Builder::new()
            .prefix("tributary-pg")
            .tempdir_in(std::env::temp_dir())
            .unwrap();
        let path = dir.path().to_str().unwrap().to_string();
        if is_root() {
            let status = Command::new("chown")
                .args([&format!("{NOBODY}:{NOBODY}"), &path])
                .status()
                .unwrap();
            assert!(status.success(), "chown of {path}");
        }
        let data = format!("{path}/data");
        let output = command(
            &bin.join("initdb"),
            &[
                "-D",
                &data,
                "-A",
                "trust",
                "-U",
                "postgres",
                "-E",
                "UTF8",
                "--locale=C",
                "--no-sync",
            ],
        )
        .output()
        .unwrap();
        assert!(
            output.status.success(),
            "initdb failed: {}",
            String::from_utf8_lossy(&output.stderr)
        );
        let port = free_port();
        let log = std::fs::File::create(dir.path().join("server.log")).unwrap();
        let server = command(
            &bin.join("postgres"),
            &[
                "-D",
                &data,
                "-k",
                &path,
                "-p",
                &port.to_string(),
                "-c",
                "listen_addresses=127.0.0.1",
                "-c",
                "fsync=off",
                "-c",
                "synchronous_commit=off",
                "-c",
                "full_page_writes=off",
                "-c",
                "max_connections=200",
            ],
        )
        .stdout(Stdio::null())
        .stderr(log)
        .spawn()
        .unwrap();
        let pg = TestPg { dir, port, server };
        pg.wait_ready();
        Some(pg)
    }

    fn wait_ready(&self) {
        let socket = self.dir.path().join(format!(".s.PGSQL.{}", self.port));
        let deadline = Instant::now() + Duration::from_secs(30);
        while !socket.exists() {
            assert!(
                Instant::now() < deadline,
                "PostgreSQL did not start: {}",
                self.log()
            );
            std::thread::sleep(Duration::from_millis(50));
        }
        // The socket appears a little before connections are accepted.
        while self.psql("SELECT 1").is_err() {
            assert!(
                Instant::now() < deadline,
                "PostgreSQL did not answer: {}",
                self.log()
            );
            std::thread::sleep(Duration::from_millis(50));
        }
    }

    pub fn log(&self) -> String {
        std::fs::read_to_string(self.dir.path().join("server.log")).unwrap_or_default()
    }

    /// The connection string of database `name` over the Unix socket.
    pub fn url(&self, name: &str) -> String {
        format!(
            "host={} port={} user=postgres dbname={name}",
            self.dir.path().display(),
            self.port
        )
    }

    /// Runs `sql` in database `postgres`, without a runtime of the caller's.
    pub fn psql(&self, sql: &str) -> Result<(), String> {
        let sql = sql.to_string();
        with_client(self.url("postgres"), move |client| {
            Box::pin(async move { client.batch_execute(&sql).await.map_err(|e| e.to_string()) })
        })
    }

    /// The first column of the first row of `sql`, as text, in the database at `url`.
    pub fn psql_value(&self, url: &str, sql: &str) -> String {
        let sql = sql.to_string();
        with_client(url.to_string(), move |client| {
            Box::pin(async move {
                let row = client
                    .query_one(&sql, &[])
                    .await
                    .map_err(|e| e.to_string())?;
                Ok(row.get::<_, String>(0))
            })
        })
        .unwrap()
    }

    /// A new empty database; returns its connection string.
    pub fn database(&self, name: &str) -> String {
        self.psql(&format!("CREATE DATABASE {name}")).unwrap();
        self.url(name)
    }
}

impl Drop for TestPg {
    fn drop(&mut self) {
        // SIGINT: PostgreSQL's fast shutdown.
        let _ = Command::new("kill")
            .args(["-INT", &self.server.id().to_string()])
            .status();
        let deadline = Instant::now() + Duration::from_secs(10);
        while Instant::now() < deadline {
            if let Ok(Some(_)) = self.server.try_wait() {
                return;
            }
            std::thread::sleep(Duration::from_millis(20));
        }
        let _ = self.server.kill();
        let _ = self.server.wait();
    }
}

type Work<T> = std::pin::Pin<Box<dyn std::future::Future<Output = Result<T, String>> + Send>>;

/// Runs `work` with a new client of the database at `url`, on a thread and a
/// runtime of its own, so that callers inside a runtime may use it too.
fn with_client<T: Send + 'static>(
    url: String,
    work: impl FnOnce(tokio_postgres::Client) -> Work<T> + Send + 'static,
) -> Result<T, String> {
    std::thread::spawn(move || {
        let runtime = tokio::runtime::Builder::new_current_thread()
            .enable_all()
            .build()
            .unwrap();
        runtime.block_on(async {
            let (client, connection) = tokio_postgres::connect(&url, tokio_postgres::NoTls)
                .await
                .map_err(|e| e.to_string())?;
            tokio::spawn(connection);
            work(client).await
        })
    })
    .join()
    .unwrap()
}
