//! The `tributary` binary itself: `check`, `inspect --json`, and `run` stopping
//! cleanly on SIGTERM.

use crate::common::{daemon, fixture_path, tributary, tributary_command, write_config};
use serde_json::Value;
use std::io::{BufRead, BufReader, Read};
use std::path::Path;
use std::process::{Command, Stdio};
use std::time::{Duration, Instant};

#[test]
fn check_accepts_a_valid_config_and_summarizes_it() {
    let dir = tempfile::tempdir().unwrap();
    let path = write_config(
        dir.path(),
        "[server]\nlisten = \"127.0.0.1:9999\"\n[[source]]\nurl = \"https://a.example/rss\"\n",
    )
    .display()
    .to_string();
    let out = tributary(&["check", "--config", &path]);
    assert!(out.status.success(), "{out:?}");
    let stdout = String::from_utf8(out.stdout).unwrap();
    assert!(stdout.contains("sources: 1"), "{stdout}");
    assert!(stdout.contains("127.0.0.1:9999"), "{stdout}");
}

#[test]
fn check_rejects_a_bad_config_with_exit_78_and_places() {
    let dir = tempfile::tempdir().unwrap();
    let path = write_config(
        dir.path(),
        "[[source]]\nurl = \"https://a.example/rss\"\ninterval = \"10s\"\n\n[[source]]\nurl = \"https://a.example/rss\"\n",
    )
        .display()
        .to_string();
    let out = tributary(&["check", "--config", &path]);
    assert_eq!(out.status.code(), Some(78));
    let stderr = String::from_utf8(out.stderr).unwrap();
    assert!(
        stderr.contains(&format!("{path}:3:12: interval")),
        "{stderr}"
    );
    assert!(
        stderr.contains(&format!("{path}:6:7: duplicate source")),
        "{stderr}"
    );
}

#[test]
fn check_reports_a_missing_file() {
    let out = tributary(&["check", "--config", "/nonexistent/feeds.toml"]);
    assert_eq!(out.status.code(), Some(78));
    let stderr = String::from_utf8(out.stderr).unwrap();
    assert!(stderr.contains("/nonexistent/feeds.toml"), "{stderr}");
}

#[test]
fn the_example_config_is_valid() {
    let example = Path::new(env!("CARGO_MANIFEST_DIR")).join("feeds.toml");
    let out = tributary(&["check", "--config", example.to_str().unwrap()]);
    assert!(out.status.success(), "{out:?}");
}

/// The Debian package's conffile is a template: valid as installed, with no source,
/// and its commented examples valid once uncommented.
#[test]
fn the_package_config_template_is_valid_and_its_examples_too() {
    let template = Path::new(env!("CARGO_MANIFEST_DIR")).join("debian/feeds.toml");
    let out = tributary(&["check", "--config", template.to_str().unwrap()]);
    assert!(out.status.success(), "{out:?}");
    let stdout = String::from_utf8(out.stdout).unwrap();
    assert!(stdout.contains("sources: 0"), "{stdout}");

    let text = std::fs::read_to_string(&template).unwrap();
    let (head, examples) = text
        .split_once("\n# EXAMPLES:")
        .expect("an EXAMPLES section");
    let uncommented: Vec<&str> = examples
        .lines()
        .map(|line| match line.strip_prefix("# ") {
            Some(toml) if toml.starts_with('[') || toml.contains(" = ") => toml,
            _ => line,
        })
        .collect();
    let dir = tempfile::tempdir().unwrap();
    let path = write_config(
        dir.path(),
        &format!("{head}\n# EXAMPLES:{}\n", uncommented.join("\n")),
    )
    .display()
    .to_string();
    let out = tributary(&["check", "--config", &path]);
    assert!(out.status.success(), "{out:?}");
    let stdout = String::from_utf8(out.stdout).unwrap();
    assert!(stdout.contains("sources: 4"), "{stdout}");
}

fn inspect_json(name: &str) -> Value {
    let path = fixture_path(name);
    let out = tributary(&["inspect", path.to_str().unwrap(), "--json"]);
    assert!(out.status.success(), "{name}: {out:?}");
    serde_json::from_slice(&out.stdout).expect("inspect --json prints one JSON object")
}

/// Every key the JSON contract promises is there, with the right type.
fn assert_shape(doc: &Value) {
    for key in ["title", "link", "id", "updated", "description", "language"] {
        let value = &doc["feed"][key];
        assert!(value.is_null() || value.is_string(), "feed.{key}: {value}");
    }
    for item in doc["items"].as_array().unwrap() {
        assert!(item["id"].is_string());
        for key in [
            "title",
            "link",
            "published",
            "updated",
            "summary",
            "content",
        ] {
            let value = &item[key];
            assert!(value.is_null() || value.is_string(), "item.{key}: {value}");
        }
        for key in ["authors", "categories", "enclosures"] {
            assert!(item[key].is_array(), "item.{key}");
        }
        for enclosure in item["enclosures"].as_array().unwrap() {
            assert!(enclosure["url"].is_string());
            assert!(enclosure.get("type").is_some() && enclosure.get("length").is_some());
        }
    }
}

#[test]
fn inspect_json_has_the_promised_shape_for_every_fixture() {
    let dir = Path::new(env!("CARGO_MANIFEST_DIR")).join("tests/fixtures/feeds");
    let mut seen = 0;
    for entry in std::fs::read_dir(dir).unwrap() {
        let name = entry.unwrap().file_name().into_string().unwrap();
        let doc = inspect_json(&name);
        assert_shape(&doc);
        assert!(!doc["items"].as_array().unwrap().is_empty(), "{name}");
        seen += 1;
    }
    assert!(seen >= 8);
}

#[test]
fn inspect_rss2_fields() {
    let doc = inspect_json("rss2.xml");
    assert_eq!(doc["feed"]["title"], "World Wire");
    assert_eq!(doc["feed"]["language"], "en");
    let item = &doc["items"][0];
    assert_eq!(item["id"], "wire-1006");
    assert_eq!(item["title"], "Talks resume in Geneva");
    assert_eq!(item["link"], "https://wire.example/2026/02/talks");
    assert_eq!(item["published"], "2026-02-06T18:00:00Z");
    assert_eq!(item["authors"][0], "Anna Petrova");
    assert_eq!(item["categories"][0], "Politics");
    assert_eq!(item["summary"], "<p>Delegations met again.</p>");
    assert_eq!(
        item["content"],
        "<p>Delegations met again <b>today</b>.</p>"
    );
}

#[test]
fn inspect_removes_everything_dangerous() {
    let doc = inspect_json("hostile.xml");
    assert_eq!(doc["feed"]["title"], "Hostile & Co");
    let item = &doc["items"][0];
    assert_eq!(item["title"], "Tom & Jerry bold news");
    assert_eq!(item["link"], "https://hostile.example/news/1");
    let summary = item["summary"].as_str().unwrap();
    for bad in [
        "<script",
        "onclick",
        "onerror",
        "javascript:",
        "<iframe",
        "<object",
        "<style",
    ] {
        assert!(!summary.contains(bad), "{bad} in {summary}");
    }
    assert!(
        summary.contains("https://hostile.example/news/x.png"),
        "{summary}"
    );
    // A javascript: link is no link at all.
    assert_eq!(doc["items"][1]["link"], Value::Null);
}

#[test]
fn inspect_decodes_windows_1251() {
    let doc = inspect_json("windows-1251.xml");
    assert_eq!(doc["feed"]["title"], "Новости дня");
    let item = &doc["items"][0];
    assert_eq!(item["title"], "Мэрия объявила о ремонте моста");
    assert_eq!(item["summary"], "Работы начнутся в марте — «до лета».");
    assert_eq!(item["published"], "2026-02-06T19:20:00Z");
}

#[test]
fn inspect_gives_stable_ids_without_guids() {
    let first = inspect_json("no-guid.xml");
    let second = inspect_json("no-guid.xml");
    assert_eq!(first["items"][0]["id"], "https://noids.example/a");
    // Moscow time without an offset in the date.
    assert_eq!(first["items"][0]["published"], "2026-02-06T09:00:00Z");
    let hashed = first["items"][1]["id"].as_str().unwrap();
    assert!(hashed.starts_with("hash:"), "{hashed}");
    assert_eq!(first["items"][1]["id"], second["items"][1]["id"]);
}

#[test]
fn inspect_reads_json_feed() {
    let doc = inspect_json("jsonfeed.json");
    let item = &doc["items"][0];
    assert_eq!(item["id"], "note-2");
    assert_eq!(item["published"], "2026-02-06T10:00:00Z");
    assert_eq!(item["content"], "<p>Two </p>");
    assert_eq!(item["enclosures"][0]["url"], "https://notes.example/2.mp3");
    assert_eq!(item["enclosures"][0]["length"], 42);
}

#[test]
fn inspect_fails_with_one_line_on_garbage() {
    let dir = tempfile::tempdir().unwrap();
    let path = dir.path().join("page.html");
    std::fs::write(&path, "<html><body>Checking your browser</body></html>").unwrap();
    let out = tributary(&["inspect", path.to_str().unwrap(), "--json"]);
    assert!(!out.status.success());
    let stderr = String::from_utf8(out.stderr).unwrap();
    assert_eq!(stderr.trim().lines().count(), 1, "{stderr}");
    assert!(stderr.contains("not a feed"), "{stderr}");
    let out = tributary(&["inspect", "/nonexistent.xml"]);
    assert!(!out.status.success());
}

#[test]
fn run_stops_cleanly_on_sigterm() {
    let dir = tempfile::tempdir().unwrap();
    let config = write_config(dir.path(), &daemon::config_text(dir.path(), ""));
    let mut daemon = daemon::Daemon::start(&config);
    assert!(daemon.get("/healthz").starts_with("HTTP/1.1 200"));

    let started = Instant::now();
    daemon.signal(libc::SIGTERM);
    let status = daemon.wait(Duration::from_secs(5));
    assert!(status.success(), "exit status {status:?}");
    assert!(started.elapsed() < Duration::from_secs(5));
    daemon.wait_for_log("stopped", Duration::from_secs(5));
}

/// A daemon started with a low soft limit of open files (1024 is the usual default)
/// runs with the hard limit: each reader connection holds a descriptor.
#[test]
fn run_raises_the_open_file_limit_to_the_hard_limit() {
    use std::os::unix::process::CommandExt;
    let mut limit = libc::rlimit {
        rlim_cur: 0,
        rlim_max: 0,
    };
    // SAFETY: getrlimit writes one struct we own.
    assert_eq!(
        unsafe { libc::getrlimit(libc::RLIMIT_NOFILE, &raw mut limit) },
        0
    );
    let hard = limit.rlim_max;
    let low = hard.min(256) - 1;
    let dir = tempfile::tempdir().unwrap();
    let config = write_config(dir.path(), &daemon::config_text(dir.path(), ""));
    let mut command = daemon::command(&config);
    // SAFETY: the closure only calls setrlimit, which is async-signal-safe.
    unsafe {
        command.pre_exec(move || {
            let lowered = libc::rlimit {
                rlim_cur: low,
                rlim_max: hard,
            };
            if libc::setrlimit(libc::RLIMIT_NOFILE, &raw const lowered) != 0 {
                return Err(std::io::Error::last_os_error());
            }
            Ok(())
        });
    }
    let daemon = daemon::Daemon::spawn(command);
    let limits = std::fs::read_to_string(format!("/proc/{}/limits", daemon.pid())).unwrap();
    let open_files: Vec<&str> = limits
        .lines()
        .find(|line| line.starts_with("Max open files"))
        .unwrap()
        .split_whitespace()
        .collect();
    let (soft, hard_seen) = (open_files[3], open_files[4]);
    assert_eq!(hard_seen, hard.to_string(), "{limits}");
    assert_eq!(soft, hard_seen, "the soft limit stayed low:\n{limits}");
    daemon.wait_for_log(&format!("from={low}"), Duration::from_secs(5));
    daemon.stop(Duration::from_secs(5));
}

#[test]
fn inspect_fetches_a_url_and_uses_the_http_charset() {
    let runtime = tokio::runtime::Runtime::new().unwrap();
    let server = runtime.block_on(crate::common::FeedServer::start());
    server.route(
        "/koi8.xml",
        std::fs::read(fixture_path("koi8-r-http-charset.xml")).unwrap(),
        "application/rss+xml; charset=koi8-r",
    );
    let out = tributary(&["inspect", &server.url("/koi8.xml"), "--json"]);
    assert!(out.status.success(), "{out:?}");
    let doc: Value = serde_json::from_slice(&out.stdout).unwrap();
    assert_eq!(doc["feed"]["title"], "Вести по-русски");
    assert_eq!(doc["items"][0]["title"], "Парк откроют после ремонта");

    let out = tributary(&["inspect", &server.url("/gone.xml")]);
    assert!(!out.status.success());
    let stderr = String::from_utf8(out.stderr).unwrap();
    assert!(stderr.contains("404"), "{stderr}");
}

#[test]
fn inspect_resolves_relative_links_against_content_location() {
    use std::io::{Read, Write};
    let listener = std::net::TcpListener::bind("127.0.0.1:0").unwrap();
    let port = listener.local_addr().unwrap().port();
    let server = std::thread::spawn(move || {
        let (mut stream, _) = listener.accept().unwrap();
        let mut request = [0u8; 4096];
        let _ = stream.read(&mut request).unwrap();
        let body = r#"<rss version="2.0"><channel><title>T</title><item><title>One</title><guid>1</guid><link>relative/1</link></item><item><title>Two</title><guid isPermaLink="false">2</guid><description>&lt;a href="relative/page"&gt;more&lt;/a&gt;</description></item></channel></rss>"#;
        let head = format!(
            "HTTP/1.1 200 OK\r\nContent-Type: application/rss+xml\r\nContent-Location: /moved/feed.xml\r\nContent-Length: {}\r\nConnection: close\r\n\r\n",
            body.len()
        );
        stream.write_all(head.as_bytes()).unwrap();
        stream.write_all(body.as_bytes()).unwrap();
    });
    let out = tributary(&[
        "inspect",
        &format!("http://127.0.0.1:{port}/feeds/rss.xml"),
        "--json",
    ]);
    server.join().unwrap();
    assert!(out.status.success(), "{out:?}");
    let doc: Value = serde_json::from_slice(&out.stdout).unwrap();
    let item = &doc["items"][0];
    assert_eq!(
        item["link"],
        format!("http://127.0.0.1:{port}/moved/relative/1")
    );
    // An item without a link of its own: its HTML resolves against the document's base.
    let item = &doc["items"][1];
    assert!(
        item["summary"]
            .as_str()
            .unwrap()
            .contains(&format!("http://127.0.0.1:{port}/moved/relative/page")),
        "{item}"
    );
}

#[test]
fn a_store_in_use_is_a_clear_error() {
    let dir = tempfile::tempdir().unwrap();
    let store_path = dir.path().join("data");
    let _held = tributary::store::Store::open(&store_path).unwrap();
    let path = write_config(
        dir.path(),
        &format!("[store]\npath = \"{}\"\n", store_path.display()),
    )
    .display()
    .to_string();
    let out = tributary(&["poll", "--config", &path]);
    assert_eq!(out.status.code(), Some(69), "{out:?}");
    let stderr = String::from_utf8(out.stderr).unwrap();
    assert!(stderr.contains("in use by another process"), "{stderr}");
    assert!(
        stderr.contains(&store_path.display().to_string()),
        "{stderr}"
    );
}

#[test]
fn a_store_that_cannot_be_written_exits_74() {
    let dir = tempfile::tempdir().unwrap();
    // A regular file where the store's directory should be.
    let store_path = dir.path().join("data");
    std::fs::write(&store_path, "not a directory").unwrap();
    let path = write_config(
        dir.path(),
        &format!("[store]\npath = \"{}\"\n", store_path.display()),
    )
    .display()
    .to_string();
    let out = tributary(&["poll", "--config", &path]);
    assert_eq!(out.status.code(), Some(74), "{out:?}");
    let stderr = String::from_utf8(out.stderr).unwrap();
    assert!(stderr.contains("opening the store"), "{stderr}");
}

#[test]
fn exit_codes_are_documented_and_usage_errors_exit_2() {
    let help = tributary(&["--help"]);
    assert!(help.status.success());
    let text = String::from_utf8(help.stdout).unwrap();
    for code in ["69", "74", "78", "2 "] {
        assert!(text.contains(&format!("  {code}")), "{code} in {text}");
    }
    assert_eq!(tributary(&["frobnicate"]).status.code(), Some(2));
    assert_eq!(tributary(&["run", "--no-such-flag"]).status.code(), Some(2));
    assert_eq!(
        tributary(&["--log-level", "loud", "check"]).status.code(),
        Some(2)
    );
    let dir = tempfile::tempdir().unwrap();
    let path = write_config(dir.path(), "[server\n").display().to_string();
    assert_eq!(
        tributary(&["run", "--config", &path]).status.code(),
        Some(78)
    );
}

/// Runs the daemon with stderr on a pipe, `JOURNAL_STREAM` naming that pipe when
/// `journal`, until it has polled its one unreachable source; returns its stderr.
fn daemon_stderr(journal: bool, args: &[&str]) -> String {
    use std::os::fd::AsFd;
    use std::os::unix::fs::MetadataExt;
    let dir = tempfile::tempdir().unwrap();
    let path = write_config(
        dir.path(),
        &format!(
            "[server]\nlisten = \"127.0.0.1:0\"\n[store]\npath = \"{}\"\n[[source]]\nurl = \"http://127.0.0.1:1/feed.xml\"\n",
            dir.path().join("data").display()
        ),
    )
        .display()
        .to_string();
    let (reader, writer) = std::io::pipe().unwrap();
    let meta = std::fs::File::from(reader.as_fd().try_clone_to_owned().unwrap())
        .metadata()
        .unwrap();
    let mut command = tributary_command(args);
    command
        .args(["run", "--config", &path])
        .env("RUST_LOG", "info")
        .env_remove("JOURNAL_STREAM")
        .stderr(writer);
    if journal {
        command.env("JOURNAL_STREAM", format!("{}:{}", meta.dev(), meta.ino()));
    }
    let mut child = command.spawn().unwrap();
    drop(command);
    let mut lines = BufReader::new(reader).lines();
    let mut seen = String::new();
    let deadline = Instant::now() + Duration::from_secs(10);
    for line in lines.by_ref() {
        let line = line.unwrap();
        seen.push_str(&line);
        seen.push('\n');
        if line.contains("every source polled once")
            || line.contains("no source can be reached")
            || Instant::now() > deadline
        {
            break;
        }
    }
    let _ = Command::new("kill")
        .args(["-TERM", &child.id().to_string()])
        .status();
    assert!(child.wait().unwrap().success());
    for line in lines {
        seen.push_str(&line.unwrap());
        seen.push('\n');
    }
    seen
}

#[test]
fn journal_lines_carry_a_priority_and_no_time() {
    let log = daemon_stderr(true, &[]);
    let lines: Vec<&str> = log.lines().collect();
    assert!(
        lines
            .iter()
            .any(|l| l.starts_with("<6>") && l.contains("tributary is up")),
        "{log}"
    );
    // The unreachable source: a warning.
    assert!(lines.iter().any(|l| l.starts_with("<4>")), "{log}");
    for line in &lines {
        assert!(
            line.starts_with('<') && !line.contains("Z  INFO") && !line.starts_with("<6>20"),
            "{line}"
        );
    }
}

#[test]
fn without_the_journal_lines_have_times_and_log_level_filters() {
    let log = daemon_stderr(false, &[]);
    assert!(log.lines().all(|l| l.starts_with("20")), "{log}");
    assert!(log.contains(" INFO "), "{log}");
    let quiet = daemon_stderr(false, &["--log-level", "warn"]);
    assert!(!quiet.contains(" INFO "), "{quiet}");
    assert!(quiet.contains(" WARN "), "{quiet}");
}

#[test]
fn inspect_into_a_closed_pipe_ends_quietly() {
    // More output than a pipe buffers (64 KiB), so the write after the reader has
    // gone fails.
    let dir = tempfile::tempdir().unwrap();
    let items: String = (0..2000)
        .map(|n| format!("<item><title>Story {n}</title><link>https://a.example/{n}</link><description>Text of story {n}</description></item>"))
        .collect();
    let feed = dir.path().join("big.xml");
    std::fs::write(
        &feed,
        format!("<rss version=\"2.0\"><channel><title>Big</title>{items}</channel></rss>"),
    )
    .unwrap();
    let mut child = tributary_command(&["inspect", "--json"])
        .arg(&feed)
        .stdout(Stdio::piped())
        .stderr(Stdio::piped())
        .spawn()
        .unwrap();
    let mut first = [0u8; 16];
    child.stdout.take().unwrap().read_exact(&mut first).unwrap();
    // The read end is closed here, as `| head -c 16` would.
    let out = child.wait_with_output().unwrap();
    let stderr = String::from_utf8_lossy(&out.stderr);
    assert!(!stderr.contains("panicked"), "{stderr}");
    use std::os::unix::process::ExitStatusExt;
    assert_eq!(out.status.signal(), Some(libc::SIGPIPE), "{:?}", out.status);
}
