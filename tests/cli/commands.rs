//! The operator's commands on the real binary: `sources` (from the daemon, from the
//! store, and when neither answers), `import-opml` / `export-opml`, and `generate`.

use crate::common::{
    FeedServer, Reply, RunningApp, config_with_interval, eventually, fixture, tributary,
    write_config,
};
use std::net::SocketAddr;
use std::path::Path;
use std::process::Output;
use std::time::Duration;
use tributary::store::Store;

fn stdout(out: &Output) -> String {
    String::from_utf8(out.stdout.clone()).unwrap()
}

fn stderr(out: &Output) -> String {
    String::from_utf8(out.stderr.clone()).unwrap()
}

/// The text of a config with a healthy and a failing source on `server`.
fn config_text(store: &Path, listen: SocketAddr, server: &FeedServer) -> String {
    format!(
        r#"[server]
listen = "{listen}"

[store]
path = "{}"
max_age = "36500d"

[[source]]
url = "{}"
name = "World Wire"

[[source]]
url = "{}"
name = "Broken"
"#,
        store.display(),
        server.url("/wire.xml"),
        server.url("/broken.xml"),
    )
}

/// A daemon (in this process, on port 0) that has polled both sources once, and a
/// config file naming its address.
async fn polled_daemon(dir: &Path) -> (FeedServer, RunningApp, String) {
    let server = FeedServer::start().await;
    server.route("/wire.xml", fixture("rss2.xml"), "application/rss+xml");
    server.reply(
        "/broken.xml",
        Reply::Status {
            status: 500,
            headers: vec![],
        },
    );
    let store = dir.join("store");
    let unused: SocketAddr = "127.0.0.1:9".parse().unwrap();
    let app = RunningApp::start(config_with_interval(
        &config_text(&store, unused, &server),
        Duration::from_secs(3600),
    ))
    .await;
    let ready = app.url("/readyz");
    eventually(Duration::from_secs(15), || {
        let ready = ready.clone();
        async move { (reqwest::get(&ready).await.ok()?.status() == 200).then_some(()) }
    })
    .await;
    let path = write_config(dir, &config_text(&store, app.addr, &server));
    (server, app, path.display().to_string())
}

fn assert_table(table: &str) {
    let lines: Vec<&str> = table.lines().collect();
    assert!(lines[0].starts_with("ID"), "{table}");
    let wire = lines.iter().find(|l| l.contains("World Wire")).unwrap();
    assert!(wire.contains(" ok "), "{table}");
    assert!(wire.contains(" 3 "), "three items: {table}");
    let broken = lines.iter().position(|l| l.contains("Broken")).unwrap();
    assert!(lines[broken].contains(" failing "), "{table}");
    assert!(lines[broken + 1].contains("error: fetch:"), "{table}");
    assert!(lines[broken + 1].contains("500"), "{table}");
    assert_eq!(lines.last(), Some(&"2 sources, 1 failing, 3 items"));
}

#[tokio::test(flavor = "multi_thread")]
async fn sources_come_from_the_daemon_then_from_the_store() {
    let dir = tempfile::tempdir().unwrap();
    let (_server, app, config) = polled_daemon(dir.path()).await;
    let addr = app.addr;

    // The daemon holds the store: the answer can only come over HTTP.
    let out = tokio::task::spawn_blocking({
        let config = config.clone();
        move || tributary(&["sources", "--config", &config])
    })
    .await
    .unwrap();
    assert!(out.status.success(), "{out:?}");
    assert!(stderr(&out).contains(&format!("from the daemon at http://{addr}/sources.json")));
    assert_table(&stdout(&out));
    let json = tokio::task::spawn_blocking({
        let config = config.clone();
        move || tributary(&["sources", "--json", "--config", &config])
    })
    .await
    .unwrap();
    let listing: serde_json::Value = serde_json::from_slice(&json.stdout).unwrap();
    assert_eq!(listing["sources"][0]["status"], "ok");
    assert_eq!(listing["sources"][1]["status"], "failing");

    // Stopped: the same table from the store.
    app.stop().await;
    let out = tributary(&["sources", "--config", &config]);
    assert!(out.status.success(), "{out:?}");
    assert!(
        stderr(&out).contains("from the store at"),
        "{}",
        stderr(&out)
    );
    assert_table(&stdout(&out));

    // Another process holds the store and answers no HTTP: said plainly.
    let store = Store::open(&dir.path().join("store")).unwrap();
    let out = tributary(&["sources", "--config", &config]);
    assert_eq!(out.status.code(), Some(69), "{out:?}");
    let message = stderr(&out);
    assert!(
        message.contains("another process holds the store"),
        "{message}"
    );
    assert!(
        message.contains("is in use by another process"),
        "{message}"
    );
    assert!(
        message.contains(&format!("no daemon answers at http://{addr}/sources.json")),
        "{message}"
    );
    drop(store);
}

#[test]
fn sources_without_a_store_lists_pending_sources_and_creates_nothing() {
    let dir = tempfile::tempdir().unwrap();
    let store = dir.path().join("store");
    let config = write_config(
        dir.path(),
        &format!(
            "[server]\nlisten = \"127.0.0.1:9\"\n[store]\npath = \"{}\"\n[[source]]\nurl = \"https://a.example/rss\"\n",
            store.display()
        ),
    );
    let out = tributary(&["sources", "--config", config.to_str().unwrap()]);
    assert!(out.status.success(), "{out:?}");
    assert!(stdout(&out).contains(" pending "), "{}", stdout(&out));
    assert!(stderr(&out).contains("no store at"), "{}", stderr(&out));
    assert!(!store.exists());
}

const COMMENTED: &str = r#"# Our feeds. Keep this comment.
[server]
listen = "127.0.0.1:8080"   # loopback only

[publish]
title = "Round trip"

# --- news ---
[[source]]
url = "https://wire.example/rss"
name = "World Wire"
tags = ["world", "news"]

[[source]]
url = "https://plain.example/feed"   # no name: the feed's own title is used
"#;

#[test]
fn opml_round_trips_through_export_and_import() {
    let dir = tempfile::tempdir().unwrap();
    let original = write_config(
        dir.path(),
        &format!(
            "{COMMENTED}\n[[source]]\nurl = \"https://tech.example/atom.xml\"\nname = \"Tech & <Co>\"\ntags = [\"tech\"]\n"
        ),
    );
    let exported = tributary(&["export-opml", "--config", original.to_str().unwrap()]);
    assert!(exported.status.success(), "{exported:?}");
    let opml = dir.path().join("feeds.opml");
    std::fs::write(&opml, &exported.stdout).unwrap();
    assert!(stdout(&exported).contains("<opml version=\"2.0\">"));

    let empty = dir.path().join("empty.toml");
    std::fs::write(&empty, "").unwrap();
    let imported = tributary(&[
        "import-opml",
        opml.to_str().unwrap(),
        "--config",
        empty.to_str().unwrap(),
    ]);
    assert!(imported.status.success(), "{imported:?}");
    assert!(stdout(&imported).ends_with("3 sources added, 0 already there, 0 skipped\n"));

    let load = |path: &Path| tributary::config::load(path).unwrap().sources;
    let summary = |sources: Vec<tributary::config::SourceConfig>| {
        sources
            .into_iter()
            .map(|s| (s.url.to_string(), s.name, s.tags))
            .collect::<Vec<_>>()
    };
    let before = summary(load(&original));
    assert_eq!(before.len(), 3);
    assert_eq!(summary(load(&empty)), before);
}

#[test]
fn import_keeps_comments_and_skips_known_feeds() {
    let dir = tempfile::tempdir().unwrap();
    let config = write_config(dir.path(), COMMENTED);
    let opml = dir.path().join("reader.opml");
    std::fs::write(
        &opml,
        r#"<?xml version="1.0"?>
<opml version="1.0"><head><title>Exported by a reader</title></head><body>
<outline text="Science">
  <outline text="Comets" type="rss" xmlUrl="https://science.example/comets.xml" htmlUrl="https://science.example/"/>
</outline>
<outline text="Wire again" type="rss" xmlUrl="https://wire.example/rss"/>
</body></opml>"#,
    )
    .unwrap();
    let args = [
        "import-opml",
        opml.to_str().unwrap(),
        "--config",
        config.to_str().unwrap(),
    ];
    let out = tributary(&args);
    assert!(out.status.success(), "{out:?}");
    assert_eq!(
        stdout(&out).lines().collect::<Vec<_>>(),
        [
            "added https://science.example/comets.xml (Comets)",
            &format!(
                "{}: 1 sources added, 1 already there, 0 skipped",
                config.display()
            ),
        ]
    );
    let text = std::fs::read_to_string(&config).unwrap();
    assert!(text.starts_with(COMMENTED), "{text}");
    assert_eq!(
        &text[COMMENTED.len()..],
        "\n[[source]]\nurl = \"https://science.example/comets.xml\"\nname = \"Comets\"\ntags = [\"Science\"]\n"
    );
    // Importing again adds nothing and leaves the file alone.
    let again = tributary(&args);
    assert!(stdout(&again).ends_with("0 sources added, 2 already there, 0 skipped\n"));
    assert_eq!(std::fs::read_to_string(&config).unwrap(), text);
}

#[test]
fn import_refuses_a_broken_opml_or_config_and_changes_nothing() {
    let dir = tempfile::tempdir().unwrap();
    let config = write_config(dir.path(), COMMENTED);
    let bad = dir.path().join("bad.opml");
    std::fs::write(&bad, "<opml><body><outline text=\"x\"></body>").unwrap();
    let out = tributary(&[
        "import-opml",
        bad.to_str().unwrap(),
        "--config",
        config.to_str().unwrap(),
    ]);
    assert!(!out.status.success());
    assert!(
        stderr(&out).contains("not well-formed XML"),
        "{}",
        stderr(&out)
    );
    assert_eq!(std::fs::read_to_string(&config).unwrap(), COMMENTED);

    let good = dir.path().join("good.opml");
    std::fs::write(
        &good,
        "<opml version=\"2.0\"><body><outline text=\"A\" xmlUrl=\"https://a.example/rss\"/></body></opml>",
    )
    .unwrap();
    let broken_config = format!("{COMMENTED}\n[[source]]\nurl = \"not a url\"\n");
    std::fs::write(&config, &broken_config).unwrap();
    let out = tributary(&[
        "import-opml",
        good.to_str().unwrap(),
        "--config",
        config.to_str().unwrap(),
    ]);
    assert!(!out.status.success());
    assert!(
        stderr(&out).contains("feeds.toml:18:7: source url `not a url`"),
        "{}",
        stderr(&out)
    );
    assert_eq!(std::fs::read_to_string(&config).unwrap(), broken_config);
}

#[test]
fn generate_writes_man_pages_and_completions() {
    let dir = tempfile::tempdir().unwrap();
    let man = dir.path().join("man");
    let out = tributary(&["generate", "man", "--out", man.to_str().unwrap()]);
    assert!(out.status.success(), "{out:?}");
    let page = std::fs::read_to_string(man.join("tributary.1")).unwrap();
    assert!(page.starts_with(".ie \\n(.g .ds Aq \\(aq"), "{page}");
    assert!(page.contains(".TH tributary 1"), "{page}");
    assert!(page.contains("import\\-opml"), "{page}");
    let sources = std::fs::read_to_string(man.join("tributary-sources.1")).unwrap();
    assert!(sources.contains("\\-\\-json"), "{sources}");
    assert!(!man.join("tributary-generate.1").exists());

    let completions = dir.path().join("completions");
    let out = tributary(&[
        "generate",
        "completions",
        "--out",
        completions.to_str().unwrap(),
    ]);
    assert!(out.status.success(), "{out:?}");
    for (file, needle) in [
        ("tributary.bash", "complete -F _tributary"),
        ("_tributary", "#compdef tributary"),
        ("tributary.fish", "complete -c tributary"),
    ] {
        let text = std::fs::read_to_string(completions.join(file)).unwrap();
        assert!(text.contains(needle), "{file}: {text}");
        assert!(text.contains("export-opml"), "{file}");
    }
    // The hidden command stays out of the help.
    assert!(!stdout(&tributary(&["--help"])).contains("generate"));
}

/// Every shape of config that `check` accepts can be imported into: sources as an
/// inline array, dotted keys, CRLF line endings, a byte-order mark, an empty file.
#[test]
fn import_works_on_every_config_that_check_accepts() {
    let dir = tempfile::tempdir().unwrap();
    let opml = dir.path().join("reader.opml");
    std::fs::write(
        &opml,
        "<opml version=\"2.0\"><body><outline text=\"A\" xmlUrl=\"https://a.example/rss\"/><outline text=\"N\" xmlUrl=\"https://new.example/rss\"/></body></opml>",
    )
    .unwrap();
    let shapes = [
        "source = [ { url = \"https://a.example/rss\" } ]\n",
        "source = [\r\n  { url = \"https://a.example/rss\" }, # the first\r\n  { url = \"https://b.example/rss\", tags = [\"x\"] },\r\n]\r\n",
        "[[source]]\r\nurl = \"https://a.example/rss\"\r\nheaders.X-Key = \"k\"\r\n# the end\r\n",
        "\u{feff}[[source]]\nurl = \"https://a.example/rss\"\n",
        "",
    ];
    for text in shapes {
        let config = dir.path().join("feeds.toml");
        std::fs::write(&config, text).unwrap();
        let config = config.to_str().unwrap();
        let check = tributary(&["check", "--config", config]);
        assert!(check.status.success(), "{text:?}: {check:?}");
        let out = tributary(&["import-opml", opml.to_str().unwrap(), "--config", config]);
        assert!(out.status.success(), "{text:?}: {out:?}");
        let added = if text.is_empty() { 2 } else { 1 };
        assert!(
            stdout(&out).contains(&format!("{added} sources added")),
            "{text:?}: {}",
            stdout(&out)
        );
        let check = tributary(&["check", "--config", config]);
        assert!(check.status.success(), "{text:?}: {check:?}");
        let edited = std::fs::read_to_string(config).unwrap();
        assert!(edited.contains("https://new.example/rss"), "{edited}");
        assert_eq!(
            edited.contains("# the "),
            text.contains("# the "),
            "{edited}"
        );
        assert_eq!(edited.starts_with('\u{feff}'), text.starts_with('\u{feff}'));
    }
}
