//! Reading fidelity, on every document in `tests/fidelity/` (`NAME.xml`, `NAME.rdf`,
//! `NAME.json`, one small document per quirk):
//!
//! - `fixtures_read_as_expected`: `tributary inspect NAME.xml --json` is exactly
//!   `NAME.expected.json` (compared as JSON values). `TRIBUTARY_BLESS=1` writes the
//!   expected files from the binary instead (`TRIBUTARY_BLESS=PREFIX` only those whose
//!   name starts with PREFIX); each blessed reading must then be checked by hand.
//! - `fixtures_agree_with_feedparser`: the differential check. Python's feedparser
//!   (`tests/feedparser_read.py`) and tributary read each document; the entries, their
//!   titles, links, ids, dates and whether they have a summary and a content must
//!   agree, but for the differences listed in [`DIFFERENCES`], each with its reason
//!   (the same table is `tests/fidelity/DIFFERENCES.md`).
//! - `differential_report` (ignored): the same comparison on any folder,
//!   `FIDELITY_DIR=DIR`, printing figures and every disagreement; `bench/differential.sh`
//!   runs it.

#[path = "common/python.rs"]
mod python;

use serde_json::Value;
use std::collections::{BTreeMap, BTreeSet};
use std::fmt::Write as _;
use std::path::{Path, PathBuf};
use url::Url;

/// A known, accepted difference between tributary's reading and feedparser's.
struct Difference {
    id: &'static str,
    /// The field compared (`published/updated`: either).
    field: &'static str,
    reason: &'static str,
    /// Empty: a rule the comparison applies wherever it holds (see its use below).
    /// Otherwise the documents (file names) where any disagreement on `field` is this
    /// difference: for a quirk whose fixture deliberately reads otherwise.
    documents: &'static [&'static str],
}

/// Every difference the differential check tolerates; `tests/fidelity/DIFFERENCES.md`
/// has the same rows (checked by `differences_are_documented`). A fixture that reads
/// otherwise than feedparser on purpose adds an entry naming it in `documents`.
const DIFFERENCES: &[Difference] = &[
    Difference {
        id: "json-feed",
        field: "document",
        reason: "feedparser reads no JSON Feed (zero entries); JSON documents are compared \
                 with a JSON Feed 1.1 reading by Python's standard library instead \
                 (`tests/feedparser_read.py`)",
        documents: &[],
    },
    Difference {
        id: "made-up-id",
        field: "id",
        reason: "an entry without guid/id gets its canonical link, else a hash, as id in \
                 tributary (a store needs one); feedparser leaves the id empty",
        documents: &[],
    },
    Difference {
        id: "headline",
        field: "title",
        reason: "an entry without title gets the first words of its text as title in \
                 tributary; feedparser has none",
        documents: &[],
    },
    Difference {
        id: "escaped-title",
        field: "title",
        reason: "tributary decodes the character references a publisher left in a \
                 plain-text title (`&amp;`, `&#8211;`); feedparser keeps them as written",
        documents: &[],
    },
    Difference {
        id: "id-resolved",
        field: "id",
        reason: "feedparser resolves an id that looks like a relative URI against the \
                 document (`t3_x` becomes `/t3_x`); tributary keeps ids as written",
        documents: &[],
    },
    Difference {
        id: "one-date",
        field: "published/updated",
        reason: "an entry with one date has it under another name: feed-rs copies RSS \
                 pubDate into updated, and files dc:date as published where feedparser \
                 files it as updated",
        documents: &[],
    },
    Difference {
        id: "feedparser-unparsed-date",
        field: "published/updated",
        reason: "feedparser has the date as written but could not read it; tributary did",
        documents: &[],
    },
    Difference {
        id: "feedparser-zone-name",
        field: "published/updated",
        reason: "feedparser reads a zone name it does not know (`MSK`, `CEST`) as UTC; \
                 tributary knows it",
        documents: &[],
    },
    Difference {
        id: "ymd-slash-date",
        field: "published/updated",
        reason: "feedparser misreads `YYYY/M/D h:m:s` (2020/1/10 as 1 December); \
                 tributary reads it as written",
        documents: &[],
    },
    Difference {
        id: "tracking-pixel",
        field: "summary/content",
        reason: "tributary drops 1×1 tracking images, so a text that holds nothing else \
                 is empty; feedparser keeps it",
        documents: &[],
    },
    Difference {
        id: "second-summary",
        field: "content",
        reason: "feedparser makes a second summary-like element of an RSS item \
                 (itunes:summary, a nested <description>) its content (text/plain, or \
                 the summary's text again); tributary reads content from content \
                 elements only",
        documents: &[],
    },
    Difference {
        id: "relative-link",
        field: "link",
        reason: "feedparser keeps a relative link it cannot resolve; tributary resolves it \
                 against the feed's link or drops it (it keeps only absolute http(s) links)",
        documents: &[],
    },
    Difference {
        id: "link-scheme",
        field: "link",
        reason: "tributary keeps only http(s) links; feedparser keeps mailto:, ftp:, …",
        documents: &[],
    },
    Difference {
        id: "repeated-id",
        field: "entries",
        reason: "a document that repeats an entry id keeps its first occurrence in \
                 tributary; feedparser lists every occurrence",
        documents: &[],
    },
    Difference {
        id: "entry-cap",
        field: "entries",
        reason: "tributary keeps the newest 1000 entries of a document (MAX_ENTRIES)",
        documents: &[],
    },
    Difference {
        id: "core-wins-title",
        field: "title",
        reason: "where an RSS item has both a core element and its Dublin Core twin (`title` and `dc:title`), the core element wins in tributary whatever their order; feedparser takes whichever comes last",
        documents: &["rss-dublin-core.xml"],
    },
    Difference {
        id: "core-wins-date",
        field: "published/updated",
        reason: "where an RSS item has both `pubDate` and `dc:date` or `dcterms:modified`, the core element wins in tributary whatever their order; feedparser takes whichever comes last",
        documents: &["rss-dublin-core.xml"],
    },
    Difference {
        id: "itunes-subtitle",
        field: "summary",
        reason: "an episode with no description and an empty `itunes:summary` gets its `itunes:subtitle` as summary in tributary, so readers show some text; feedparser files the subtitle apart and has no summary",
        documents: &["rss-itunes-fallbacks.xml"],
    },
    Difference {
        id: "recovered-entries",
        field: "entries",
        reason: "in a document with mismatched and stray end tags tributary recovers every entry by the nesting the tags mean; feedparser's loose parser nests the entries after the fault into one another (one entry fewer)",
        documents: &["xml-ill-formed-items-recovered.xml"],
    },
    Difference {
        id: "recovered-feed-title",
        field: "feed.title",
        reason: "in the same document feedparser's loose parser takes text of the entries after the fault for the feed's title; tributary keeps the channel's title",
        documents: &["xml-ill-formed-items-recovered.xml"],
    },
    Difference {
        id: "recovered-feed-link",
        field: "feed.link",
        reason: "in the same document feedparser's loose parser takes an entry's link for the feed's link; tributary keeps the channel's link",
        documents: &["xml-ill-formed-items-recovered.xml"],
    },
    Difference {
        id: "recovered-titles",
        field: "title",
        reason: "in the same document feedparser's loose parser runs the titles of nested entries together; tributary reads each entry's own title",
        documents: &["xml-ill-formed-items-recovered.xml"],
    },
    Difference {
        id: "forbidden-chars-feed-title",
        field: "feed.title",
        reason: "characters XML 1.0 forbids (C0 controls, U+FFFE, U+FFFF) are dropped from every text tributary keeps, so that every output stays well-formed; the JSON reading keeps them",
        documents: &["norm-json-control-chars.json"],
    },
    Difference {
        id: "forbidden-chars-title",
        field: "title",
        reason: "the same, in an entry's title",
        documents: &["norm-json-control-chars.json"],
    },
    Difference {
        id: "forbidden-chars-id",
        field: "id",
        reason: "the same, in an entry's id",
        documents: &["norm-json-control-chars.json"],
    },
    Difference {
        id: "deep-escaped-title",
        field: "title",
        reason: "an HTML title is decoded to a fixed point in tributary and every tag that reveals is stripped, so no title is markup at any depth of escaping (`&amp;lt;i&amp;gt;` in an HTML title, `&lt;marquee&gt;` in an XHTML one); feedparser decodes once and keeps the tags so spelt as text",
        documents: &[
            "norm-rss-title-escaped-four-times.xml",
            "norm-atom-text-title-brackets.xml",
            "atom-text-title-brackets.xml",
        ],
    },
    Difference {
        id: "identical-entries",
        field: "entries",
        reason: "two entries alike in every field (a publisher's repeat, with no guid) are one item in tributary; feedparser lists both",
        documents: &["norm-podcast-shared-link.xml"],
    },
];

fn fixture_dir() -> PathBuf {
    Path::new(env!("CARGO_MANIFEST_DIR")).join("tests/fidelity")
}

/// The documents of `dir` (`*.xml`, `*.rdf`, `*.json` but not `*.expected.json`), sorted.
fn documents(dir: &Path) -> Vec<PathBuf> {
    let mut found: Vec<PathBuf> = std::fs::read_dir(dir)
        .unwrap_or_else(|e| panic!("{}: {e}", dir.display()))
        .map(|entry| entry.unwrap().path())
        .filter(|path| {
            let name = path.file_name().unwrap_or_default().to_string_lossy();
            path.is_file()
                && !name.ends_with(".expected.json")
                && [".xml", ".rdf", ".json", ".atom", ".rss"]
                    .iter()
                    .any(|ext| name.ends_with(ext))
        })
        .collect();
    found.sort();
    found
}

fn name_of(path: &Path) -> String {
    path.file_name().unwrap().to_string_lossy().into_owned()
}

fn expected_path(document: &Path) -> PathBuf {
    let stem = document.file_stem().unwrap().to_string_lossy();
    document.with_file_name(format!("{stem}.expected.json"))
}

/// The binary under test: this build's, or `FIDELITY_BIN` for `differential_report`.
fn binary() -> std::ffi::OsString {
    std::env::var_os("FIDELITY_BIN")
        .filter(|bin| !bin.is_empty())
        .unwrap_or_else(|| env!("CARGO_BIN_EXE_tributary").into())
}

/// `tributary inspect FILE --json`: its output and the JSON value, or what went wrong.
fn inspect(document: &Path) -> Result<(String, Value), String> {
    let output = std::process::Command::new(binary())
        .arg("inspect")
        .arg(document)
        .arg("--json")
        .env_remove("TRIBUTARY_CONFIG")
        .env_remove("STATE_DIRECTORY")
        .output()
        .map_err(|e| format!("cannot run tributary: {e}"))?;
    if !output.status.success() {
        let stderr = String::from_utf8_lossy(&output.stderr);
        return Err(format!(
            "exit {:?}: {}",
            output.status.code(),
            stderr.trim()
        ));
    }
    let text = String::from_utf8(output.stdout).map_err(|e| e.to_string())?;
    let value = serde_json::from_str(&text).map_err(|e| format!("not JSON: {e}"))?;
    Ok((text, value))
}

// ---------------------------------------------------------------------------------
// The expected readings.

#[test]
fn fixtures_read_as_expected() {
    let bless = std::env::var("TRIBUTARY_BLESS")
        .ok()
        .filter(|v| !v.is_empty());
    let documents = documents(&fixture_dir());
    assert!(!documents.is_empty(), "no documents in tests/fidelity/");
    let mut problems = Vec::new();
    let mut blessed = Vec::new();
    for document in &documents {
        let name = name_of(document);
        let expected = expected_path(document);
        let blessing = bless
            .as_deref()
            .is_some_and(|prefix| prefix == "1" || name.starts_with(prefix));
        match inspect(document) {
            Err(err) => problems.push(format!("{name}: `tributary inspect` failed: {err}")),
            Ok((text, _)) if blessing => {
                if std::fs::read_to_string(&expected).ok().as_deref() != Some(text.as_str()) {
                    std::fs::write(&expected, &text).unwrap();
                    blessed.push(name_of(&expected));
                }
            }
            Ok((_, value)) => {
                if let Some(problem) = compare_expected(&name, &expected, &value) {
                    problems.push(problem);
                }
            }
        }
    }
    assert!(
        blessed.is_empty(),
        "TRIBUTARY_BLESS wrote {} file(s) in tests/fidelity/; check each reading by hand \
         (never bless a wrong reading), then run again without TRIBUTARY_BLESS:\n  {}",
        blessed.len(),
        blessed.join("\n  ")
    );
    assert!(
        problems.is_empty(),
        "{} of {} fixtures in tests/fidelity/ do not read as expected:\n\n{}",
        problems.len(),
        documents.len(),
        problems.join("\n\n")
    );
}

/// What is wrong with `value` as the reading of fixture `name`, if anything.
fn compare_expected(name: &str, expected: &Path, value: &Value) -> Option<String> {
    let expected_name = name_of(expected);
    let Ok(text) = std::fs::read_to_string(expected) else {
        return Some(format!(
            "{name}: no {expected_name}; write it with \
             `TRIBUTARY_BLESS={name} cargo test --test fidelity fixtures_read_as_expected` \
             and check the reading by hand"
        ));
    };
    let wanted: Value = match serde_json::from_str(&text) {
        Ok(wanted) => wanted,
        Err(err) => return Some(format!("{name}: {expected_name} is not JSON: {err}")),
    };
    if &wanted == value {
        return None;
    }
    let mut lines = Vec::new();
    json_diff("", &wanted, value, &mut lines);
    let more = lines.len().saturating_sub(30);
    lines.truncate(30);
    if more > 0 {
        lines.push(format!("… and {more} more"));
    }
    Some(format!(
        "{name}: the reading differs from {expected_name} (- expected, + got):\n{}",
        lines.join("\n")
    ))
}

/// One line per leaf where `got` differs from `wanted`, named by its JSON path; a key
/// or element only one side has shows as `(absent)` on the other.
fn json_diff(path: &str, wanted: &Value, got: &Value, out: &mut Vec<String>) {
    let show = |value: Option<&Value>| value.map_or("(absent)".to_string(), Value::to_string);
    let mut leaf = |path: String, a: Option<&Value>, b: Option<&Value>| match (a, b) {
        (Some(a), Some(b)) => json_diff(&path, a, b, out),
        (a, b) => out.push(format!("  {path}:\n    - {}\n    + {}", show(a), show(b))),
    };
    match (wanted, got) {
        (Value::Object(a), Value::Object(b)) => {
            let keys: BTreeSet<&String> = a.keys().chain(b.keys()).collect();
            for key in keys {
                leaf(format!("{path}.{key}"), a.get(key), b.get(key));
            }
        }
        (Value::Array(a), Value::Array(b)) => {
            for i in 0..a.len().max(b.len()) {
                leaf(format!("{path}[{i}]"), a.get(i), b.get(i));
            }
        }
        (a, b) if a != b => out.push(format!("  {path}:\n    - {a}\n    + {b}")),
        _ => {}
    }
}

// ---------------------------------------------------------------------------------
// The differential check against feedparser.

#[test]
fn fixtures_agree_with_feedparser() {
    let documents = documents(&fixture_dir());
    assert!(!documents.is_empty(), "no documents in tests/fidelity/");
    let report = differential(&documents);
    assert!(
        report.disagreements.is_empty(),
        "tributary and feedparser disagree on tests/fidelity/ beyond the listed \
         differences (tests/fidelity/DIFFERENCES.md):\n\n{}",
        report.render()
    );
}

/// `FIDELITY_DIR=DIR cargo test --test fidelity differential_report -- --ignored
/// --nocapture`: the differential check on any folder of documents, as a report
/// (also written to `FIDELITY_REPORT` when set), with this build's binary or the one
/// `FIDELITY_BIN` names.
#[test]
#[ignore = "a report on a folder named by FIDELITY_DIR; bench/differential.sh runs it"]
fn differential_report() {
    let dir = std::env::var("FIDELITY_DIR").expect("FIDELITY_DIR=folder of documents");
    let documents = documents(Path::new(&dir));
    let report = differential(&documents);
    let text = report.render();
    println!("{text}");
    if let Some(out) = std::env::var("FIDELITY_REPORT")
        .ok()
        .filter(|o| !o.is_empty())
    {
        std::fs::write(&out, &text).unwrap_or_else(|e| panic!("{out}: {e}"));
    }
}

#[test]
fn differences_are_documented() {
    let table = std::fs::read_to_string(fixture_dir().join("DIFFERENCES.md")).unwrap();
    let rows: Vec<&str> = table
        .lines()
        .filter_map(|line| line.strip_prefix("| `")?.split('`').next())
        .collect();
    let listed: Vec<&str> = DIFFERENCES.iter().map(|d| d.id).collect();
    assert_eq!(
        rows, listed,
        "tests/fidelity/DIFFERENCES.md and DIFFERENCES in tests/fidelity.rs must list the \
         same differences, in the same order"
    );
    for difference in DIFFERENCES {
        let row = table
            .lines()
            .find(|l| l.starts_with(&format!("| `{}`", difference.id)))
            .unwrap();
        let cells: Vec<&str> = row.split(" | ").collect();
        let documents = match difference.documents {
            [] => "any".to_string(),
            names => names
                .iter()
                .map(|n| format!("`{n}`"))
                .collect::<Vec<_>>()
                .join(", "),
        };
        assert_eq!(
            cells[1..],
            [
                difference.field,
                difference.reason,
                &format!("{documents} |")
            ],
            "{}: its row in DIFFERENCES.md says something else",
            difference.id
        );
    }
}

/// The difference listed for `field` of `document` by name, if any.
fn listed_for(document: &str, field: &str) -> Option<&'static str> {
    DIFFERENCES
        .iter()
        .find(|d| d.documents.contains(&document) && d.field.split('/').any(|f| f == field))
        .map(|d| d.id)
}

/// What `feedparser_read.py` prints for one document.
#[derive(serde::Deserialize, Debug)]
struct Theirs {
    version: String,
    feed: TheirFeed,
    entries: Vec<TheirEntry>,
}

#[derive(serde::Deserialize, Debug)]
struct TheirFeed {
    title: Option<String>,
    title_unescaped: Option<String>,
    link: Option<String>,
}

#[derive(serde::Deserialize, Debug, Clone)]
struct TheirEntry {
    title: Option<String>,
    title_unescaped: Option<String>,
    link: Option<String>,
    id: Option<String>,
    published: Option<i64>,
    updated: Option<i64>,
    published_raw: Option<String>,
    updated_raw: Option<String>,
    summary: bool,
    summary_substance: bool,
    content: bool,
    content_substance: bool,
    content_type: Option<String>,
    content_repeats_summary: bool,
}

/// The fields compared, in report order.
const FIELDS: &[&str] = &[
    "document",
    "feed.title",
    "feed.link",
    "entries",
    "title",
    "link",
    "id",
    "published",
    "updated",
    "summary",
    "content",
];

#[derive(Default)]
struct Report {
    documents: usize,
    agreeing: usize,
    /// Per field: compared, agreed outright, agreed through a listed difference.
    fields: BTreeMap<&'static str, (usize, usize, usize)>,
    tolerated: BTreeMap<&'static str, usize>,
    disagreements: Vec<Disagreement>,
}

struct Disagreement {
    document: String,
    place: String,
    field: &'static str,
    ours: String,
    theirs: String,
}

/// How one field of one document compares.
enum Verdict {
    Agree,
    Tolerated(&'static str),
    Disagree(String, String),
}

fn differential(documents: &[PathBuf]) -> Report {
    let stdout = python::run_script("feedparser_read.py", documents);
    let theirs: Vec<Theirs> =
        serde_json::from_slice(&stdout).expect("feedparser_read.py prints a JSON array");
    assert_eq!(theirs.len(), documents.len());
    let mut report = Report::default();
    for (document, theirs) in documents.iter().zip(&theirs) {
        report.documents += 1;
        let before = report.disagreements.len();
        let ours = inspect(document);
        compare_document(&mut report, &name_of(document), ours, theirs);
        if report.disagreements.len() == before {
            report.agreeing += 1;
        }
    }
    report
}

impl Report {
    fn record(&mut self, document: &str, place: String, field: &'static str, verdict: Verdict) {
        let verdict = match verdict {
            Verdict::Disagree(..) => {
                listed_for(document, field).map_or(verdict, Verdict::Tolerated)
            }
            other => other,
        };
        let counts = self.fields.entry(field).or_default();
        counts.0 += 1;
        match verdict {
            Verdict::Agree => counts.1 += 1,
            Verdict::Tolerated(id) => {
                counts.2 += 1;
                *self.tolerated.entry(id).or_default() += 1;
            }
            Verdict::Disagree(ours, theirs) => self.disagreements.push(Disagreement {
                document: document.to_string(),
                place,
                field,
                ours,
                theirs,
            }),
        }
    }

    fn render(&self) -> String {
        let mut out = String::new();
        let _ = writeln!(
            out,
            "documents: {}; agreeing on every field: {}",
            self.documents, self.agreeing
        );
        let _ = writeln!(
            out,
            "\n| field | compared | agree | agree (listed difference) | disagree |"
        );
        let _ = writeln!(out, "|---|---:|---:|---:|---:|");
        for field in FIELDS {
            let (n, same, listed) = self.fields.get(field).copied().unwrap_or_default();
            let _ = writeln!(
                out,
                "| {field} | {n} | {same} | {listed} | {} |",
                n - same - listed
            );
        }
        if !self.tolerated.is_empty() {
            let _ = writeln!(out, "\nlisted differences met:");
            for difference in DIFFERENCES {
                if let Some(n) = self.tolerated.get(difference.id) {
                    let _ = writeln!(out, "  {} ({n}): {}", difference.id, difference.reason);
                }
            }
        }
        let _ = writeln!(out, "\ndisagreements: {}", self.disagreements.len());
        for field in FIELDS {
            let group: Vec<&Disagreement> = self
                .disagreements
                .iter()
                .filter(|d| d.field == *field)
                .collect();
            if group.is_empty() {
                continue;
            }
            let _ = writeln!(out, "\n## {field} ({})\n", group.len());
            for d in group {
                let _ = writeln!(
                    out,
                    "- {} {}: tributary {} / feedparser {}",
                    d.document, d.place, d.ours, d.theirs
                );
            }
        }
        out
    }
}

fn show<T: std::fmt::Debug>(value: &Option<T>) -> String {
    match value {
        Some(v) => format!("{v:?}"),
        None => "none".to_string(),
    }
}

fn compare_document(
    report: &mut Report,
    name: &str,
    ours: Result<(String, Value), String>,
    theirs: &Theirs,
) {
    let json = theirs.version == "json";
    let ours = match ours {
        Ok((_, value)) => value,
        Err(err) => {
            let verdict = if theirs.entries.is_empty() && theirs.feed.title.is_none() {
                Verdict::Agree
            } else {
                Verdict::Disagree(
                    format!("error ({})", err.lines().last().unwrap_or_default()),
                    format!("{} entries", theirs.entries.len()),
                )
            };
            report.record(name, String::new(), "document", verdict);
            return;
        }
    };
    let verdict = if json {
        Verdict::Tolerated("json-feed")
    } else {
        Verdict::Agree
    };
    report.record(name, String::new(), "document", verdict);
    let feed = &ours["feed"];
    let our_title = feed["title"].as_str().map(collapse);
    let verdict = compare_title(&our_title, &theirs.feed.title, &theirs.feed.title_unescaped);
    report.record(name, String::new(), "feed.title", verdict);
    let our_link = feed["link"].as_str().map(str::to_string);
    let verdict = compare_link(&our_link, &theirs.feed.link, None);
    report.record(name, String::new(), "feed.link", verdict);

    let items: Vec<&Value> = ours["items"]
        .as_array()
        .map(|a| a.iter().collect())
        .unwrap_or_default();
    let (entries, verdict) = pair_entries(&items, &theirs.entries);
    report.record(name, String::new(), "entries", verdict);
    let Some(entries) = entries else { return };
    let base = our_link.as_deref().and_then(|l| Url::parse(l).ok());
    for (i, (item, entry)) in items.iter().zip(&entries).enumerate() {
        let place = format!("entries[{i}]");
        let rss = theirs.version.starts_with("rss");
        for (field, verdict) in compare_entry(item, entry, base.as_ref(), rss) {
            report.record(name, place.clone(), field, verdict);
        }
    }
}

/// feedparser's entries paired with ours by position, after the listed differences
/// in what is kept (repeated ids, the entry cap); None when they cannot be paired.
fn pair_entries(items: &[&Value], entries: &[TheirEntry]) -> (Option<Vec<TheirEntry>>, Verdict) {
    if items.len() == entries.len() {
        return (Some(entries.to_vec()), Verdict::Agree);
    }
    let mut seen = std::collections::HashSet::new();
    let unique: Vec<TheirEntry> = entries
        .iter()
        .filter(|e| match e.id.as_deref().or(e.link.as_deref()) {
            Some(key) => seen.insert(key.to_string()),
            None => true,
        })
        .cloned()
        .collect();
    if unique.len() == items.len() {
        return (Some(unique), Verdict::Tolerated("repeated-id"));
    }
    if items.len() == 1000 && unique.len() > 1000 {
        return (None, Verdict::Tolerated("entry-cap"));
    }
    let verdict = Verdict::Disagree(items.len().to_string(), entries.len().to_string());
    (None, verdict)
}

fn compare_entry(
    item: &Value,
    entry: &TheirEntry,
    base: Option<&Url>,
    rss: bool,
) -> Vec<(&'static str, Verdict)> {
    let text = |key: &str| item[key].as_str().map(str::to_string);
    let title = text("title").map(|t| collapse(&t));
    let title_verdict = match (&title, &entry.title) {
        (Some(_), None) => Verdict::Tolerated("headline"),
        _ => compare_title(&title, &entry.title, &entry.title_unescaped),
    };
    let link = text("link");
    let published = seconds(&item["published"]);
    let updated = seconds(&item["updated"]);
    let (published_verdict, updated_verdict) = compare_dates(published, updated, entry);
    let present = |key: &str| item[key].as_str().is_some_and(|s| !s.trim().is_empty());
    let (summary, content) = (present("summary"), present("content"));
    let summary_verdict = match (summary, entry.summary) {
        (false, true) if !entry.summary_substance => Verdict::Tolerated("tracking-pixel"),
        _ => same(&summary, &entry.summary),
    };
    let second_summary = rss
        && summary
        && entry.summary
        && (entry.content_type.as_deref() == Some("text/plain") || entry.content_repeats_summary);
    let content_verdict = match (content, entry.content) {
        (false, true) if !entry.content_substance => Verdict::Tolerated("tracking-pixel"),
        (false, true) if second_summary => Verdict::Tolerated("second-summary"),
        _ => same(&content, &entry.content),
    };
    vec![
        ("title", title_verdict),
        ("link", compare_link(&link, &entry.link, base)),
        ("id", compare_id(&text("id"), &entry.id, link.as_deref())),
        ("published", published_verdict),
        ("updated", updated_verdict),
        ("summary", summary_verdict),
        ("content", content_verdict),
    ]
}

fn compare_title(
    ours: &Option<String>,
    theirs: &Option<String>,
    unescaped: &Option<String>,
) -> Verdict {
    if ours != theirs && ours.is_some() && ours == unescaped {
        return Verdict::Tolerated("escaped-title");
    }
    same(ours, theirs)
}

fn compare_id(ours: &Option<String>, theirs: &Option<String>, link: Option<&str>) -> Verdict {
    let ours = ours.as_deref().map(str::trim);
    let theirs = theirs.as_deref().map(str::trim);
    match (ours, theirs) {
        (Some(ours), None) if is_made_up_id(ours, link) => Verdict::Tolerated("made-up-id"),
        (Some(ours), Some(theirs))
            if ours != theirs && theirs.ends_with(ours) && Url::parse(ours).is_err() =>
        {
            Verdict::Tolerated("id-resolved")
        }
        _ => same(&ours, &theirs),
    }
}

fn same<T: PartialEq + std::fmt::Debug>(ours: &T, theirs: &T) -> Verdict {
    if ours == theirs {
        Verdict::Agree
    } else {
        Verdict::Disagree(format!("{ours:?}"), format!("{theirs:?}"))
    }
}

fn collapse(text: &str) -> String {
    text.split_whitespace().collect::<Vec<_>>().join(" ")
}

fn seconds(value: &Value) -> Option<i64> {
    let text = value.as_str()?;
    Some(chrono::DateTime::parse_from_rfc3339(text).ok()?.timestamp())
}

/// Our id for an entry feedparser has none for: the canonical link, or a hash.
fn is_made_up_id(id: &str, link: Option<&str>) -> bool {
    let identity = link
        .and_then(|l| Url::parse(l).ok())
        .map(|l| tributary::item::identity_link(&l));
    id.starts_with("hash:") || identity.as_deref() == Some(id)
}

fn compare_dates(
    published: Option<i64>,
    updated: Option<i64>,
    entry: &TheirEntry,
) -> (Verdict, Verdict) {
    // feedparser's misses that a listed difference explains count as our reading.
    let explain = |ours: Option<i64>, theirs: Option<i64>, raw: &Option<String>| {
        if ours.is_some() && ours != theirs {
            if theirs.is_none() && raw.is_some() {
                return (ours, Some("feedparser-unparsed-date"));
            }
            if raw.as_deref().and_then(slash_date) == ours {
                return (ours, Some("ymd-slash-date"));
            }
            if let (Some(a), Some(b), Some(raw)) = (ours, theirs, raw.as_deref())
                && zone_name_unknown_to_feedparser(raw)
                && (a - b).abs() <= 14 * 3600
                && (a - b) % 900 == 0
            {
                return (ours, Some("feedparser-zone-name"));
            }
        }
        (theirs, None)
    };
    let (their_published, published_why) =
        explain(published, entry.published, &entry.published_raw);
    let (their_updated, updated_why) = explain(updated, entry.updated, &entry.updated_raw);
    // One date on each side, the same instant, under different names.
    let ours: BTreeSet<i64> = [published, updated].into_iter().flatten().collect();
    let theirs: BTreeSet<i64> = [their_published, their_updated]
        .into_iter()
        .flatten()
        .collect();
    let one_date = ours.len() == 1 && ours == theirs;
    let verdict = |ours: Option<i64>,
                   effective: Option<i64>,
                   why: Option<&'static str>,
                   original: Option<i64>| {
        if ours == effective {
            why.map_or(Verdict::Agree, Verdict::Tolerated)
        } else if one_date {
            Verdict::Tolerated("one-date")
        } else {
            Verdict::Disagree(show(&ours.map(iso)), show(&original.map(iso)))
        }
    };
    (
        verdict(published, their_published, published_why, entry.published),
        verdict(updated, their_updated, updated_why, entry.updated),
    )
}

/// Whether a date ends in a zone name feedparser's RFC 822 reader does not know (it
/// reads those as UTC): `MSK`, `CEST`, `IST`, …
fn zone_name_unknown_to_feedparser(raw: &str) -> bool {
    const KNOWN: &[&str] = &[
        "ut", "gmt", "z", "adt", "ast", "at", "edt", "est", "et", "cdt", "cst", "ct", "mdt", "mst",
        "mt", "pdt", "pst", "pt",
    ];
    let zone = raw.split_whitespace().last().unwrap_or_default();
    zone.len() > 1
        && zone.chars().all(|c| c.is_ascii_alphabetic())
        && !KNOWN.contains(&zone.to_ascii_lowercase().as_str())
}

/// `YYYY/M/D h:m:s` (UTC), as written.
fn slash_date(raw: &str) -> Option<i64> {
    let parsed = chrono::NaiveDateTime::parse_from_str(raw.trim(), "%Y/%m/%d %H:%M:%S").ok()?;
    Some(parsed.and_utc().timestamp())
}

fn iso(seconds: i64) -> String {
    chrono::DateTime::from_timestamp(seconds, 0)
        .map(|d| d.to_rfc3339())
        .unwrap_or_else(|| seconds.to_string())
}

/// Links compare as URLs (the url crate's normal form on both sides).
fn compare_link(ours: &Option<String>, theirs: &Option<String>, base: Option<&Url>) -> Verdict {
    let Some(theirs_text) = theirs.as_deref().map(str::trim).filter(|t| !t.is_empty()) else {
        return same(ours, &None);
    };
    match Url::parse(theirs_text) {
        Ok(url) if !matches!(url.scheme(), "http" | "https") && ours.is_none() => {
            Verdict::Tolerated("link-scheme")
        }
        Ok(url) => same(ours, &Some(url.to_string())),
        Err(url::ParseError::RelativeUrlWithoutBase) => {
            let resolved = base
                .and_then(|b| b.join(theirs_text).ok())
                .map(String::from);
            if ours.is_none() || *ours == resolved {
                Verdict::Tolerated("relative-link")
            } else {
                Verdict::Disagree(show(ours), show(theirs))
            }
        }
        Err(_) => same(ours, theirs),
    }
}

// ---------------------------------------------------------------------------------
// Documents in other charsets, read from the UTF-8 text they decode to.

/// A document read as the daemon reads a feed, as text: its JSON reading, the number
/// of entries and which entry each item came from, or the error.
fn reading(body: &[u8], content_type: Option<&str>) -> String {
    let url = Url::parse("https://reading.example/feed").unwrap();
    let zone = chrono_tz::Europe::Moscow;
    match tributary::ingest::normalize::normalize_document(body, content_type, Some(&url), zone) {
        Ok(document) => format!(
            "{}\n{} entries, items from {:?}",
            serde_json::to_string_pretty(&document).unwrap(),
            document.entries,
            document.entry_of
        ),
        Err(err) => format!("error: {err}"),
    }
}

/// Documents in charsets other than UTF-8, with the Content-Type each is served with.
fn charset_documents() -> Vec<(&'static str, Vec<u8>, Option<&'static str>)> {
    let text = |declared: &str, title: &str, words: &str| {
        format!(
            "<?xml version=\"1.0\"{declared}?>\n<rss version=\"2.0\"><channel><title>{title}</title>\
             <link>https://n.example/</link>\n\
             <item><guid>1</guid><title>{words}</title><link>/1</link>\
             <pubDate>Mon, 01 Jun 2026 10:00:00</pubDate>\
             <description>&lt;p&gt;{words} &amp;amp; {title}&lt;/p&gt;</description></item>\n\
             <item><title>{title}: {words}</title><link>/2</link></item>\n</channel></rss>"
        )
    };
    let encoded = |encoding: &'static encoding_rs::Encoding, text: String| {
        let (bytes, _, unmappable) = encoding.encode(&text);
        assert!(!unmappable, "{text}");
        bytes.into_owned()
    };
    let cyrillic = |declared| text(declared, "Новости", "Привет, мир");
    let utf16 = |text: String, big_endian: bool| -> Vec<u8> {
        "\u{feff}"
            .encode_utf16()
            .chain(text.encode_utf16())
            .flat_map(|u| {
                if big_endian {
                    u.to_be_bytes()
                } else {
                    u.to_le_bytes()
                }
            })
            .collect()
    };
    let cp1251 = encoded(
        encoding_rs::WINDOWS_1251,
        cyrillic(" encoding=\"windows-1251\""),
    );
    // Bytes in the titles (where `@` was) that are no character in their charset
    // (0xA5 in ISO-8859-3, 0x81 then a space in Shift_JIS), or a C1 control
    // (0x98 in windows-1251, which the Encoding Standard maps to U+0098).
    let invalid = |encoding, declared: &str, title, words, bad: &[u8]| -> Vec<u8> {
        let bytes = encoded(encoding, text(declared, title, words));
        let mut parts = bytes.split(|b| *b == b'@');
        let first = parts.next().unwrap_or_default().to_vec();
        parts.fold(first, |body, part| [&body, bad, part].concat())
    };
    let sjis = encoded(
        encoding_rs::SHIFT_JIS,
        text(" encoding=\"Shift_JIS\"", "ニュース", "こんにちは"),
    );
    vec![
        ("windows-1251", cp1251.clone(), None),
        (
            "windows-1251, blanket utf-8",
            cp1251.clone(),
            Some("text/xml; charset=utf-8"),
        ),
        // The server's charset contradicts the declaration: the server's is read.
        (
            "windows-1251 declared, koi8-r served",
            cp1251,
            Some("text/xml; charset=koi8-r"),
        ),
        (
            "windows-1251, undefined byte",
            invalid(
                encoding_rs::WINDOWS_1251,
                " encoding=\"windows-1251\"",
                "Новости",
                "Привет@мир",
                b"\x98",
            ),
            None,
        ),
        (
            "koi8-r, served",
            encoded(encoding_rs::KOI8_R, cyrillic("")),
            Some("application/rss+xml; charset=KOI8-R"),
        ),
        (
            "iso-8859-1",
            encoded(
                encoding_rs::WINDOWS_1252,
                text(" encoding=\"ISO-8859-1\"", "Café", "Crème brûlée"),
            ),
            None,
        ),
        ("shift_jis", sjis, None),
        (
            "iso-8859-3, invalid byte",
            invalid(
                encoding_rs::ISO_8859_3,
                " encoding=\"ISO-8859-3\"",
                "Gazzetta",
                "Caf@ bar",
                b"\xa5",
            ),
            None,
        ),
        (
            "shift_jis, invalid bytes",
            invalid(
                encoding_rs::SHIFT_JIS,
                "",
                "ニュース",
                "こんにちは@",
                b"\x81 ",
            ),
            Some("application/rss+xml; charset=shift_jis"),
        ),
        (
            "utf-16le, BOM",
            utf16(cyrillic(" encoding=\"utf-16\""), false),
            None,
        ),
        ("utf-16be, BOM", utf16(cyrillic(""), true), Some("text/xml")),
        (
            "utf-16le, BOM, lone surrogate",
            [utf16(cyrillic(""), false), vec![0x00, 0xd8]].concat(),
            None,
        ),
        (
            "utf-16le, no BOM",
            utf16(cyrillic(""), false)[2..].to_vec(),
            None,
        ),
        (
            "utf-16le, BOM, white space",
            utf16(" \n".into(), false),
            None,
        ),
        (
            "cp437",
            [
                b"<?xml version=\"1.0\" encoding=\"cp437\"?><rss version=\"2.0\"><channel>"
                    .as_slice(),
                b"<title>\x80\x81</title><item><title>\x82</title></item></channel></rss>",
            ]
            .concat(),
            None,
        ),
        (
            "json feed, utf-16le",
            utf16(
                "{\"version\": \"https://jsonfeed.org/version/1.1\", \"title\": \"Новости\", \
                 \"items\": [{\"id\": \"1\", \"content_text\": \"Привет\"}]}"
                    .into(),
                false,
            ),
            None,
        ),
    ]
}

/// A document the daemon reads as the UTF-8 text it decodes to
/// (`ingest::charset::to_utf8`, under `charset::DECODED`) reads exactly as its own
/// bytes do: every fidelity document and every corpus and fixture feed under several
/// served charsets, and documents in other charsets.
#[test]
fn documents_read_the_same_from_their_utf8_text() {
    use tributary::ingest::charset::{DECODED, to_utf8};
    let root = Path::new(env!("CARGO_MANIFEST_DIR"));
    let mut documents: Vec<(String, Vec<u8>, Option<&str>)> = charset_documents()
        .into_iter()
        .map(|(name, body, content_type)| (name.to_string(), body, content_type))
        .collect();
    let served = [
        None,
        Some("application/rss+xml"),
        Some("text/xml; charset=utf-8"),
        Some("text/xml; charset=windows-1251"),
        Some("text/xml; charset=iso-8859-1"),
        Some("text/xml; charset=utf-16"),
        Some("text/xml; charset=cp850"),
    ];
    let files = ["tests/fidelity", "benches/corpus", "tests/fixtures/feeds"]
        .iter()
        .flat_map(|dir| self::documents(&root.join(dir)));
    for path in files {
        let body = std::fs::read(&path).unwrap();
        for content_type in served {
            documents.push((name_of(&path), body.clone(), content_type));
        }
    }
    let mut transcoded = BTreeSet::new();
    for (name, body, content_type) in &documents {
        let Some(text) = to_utf8(body, *content_type) else {
            continue;
        };
        transcoded.insert(name.clone());
        let (theirs, ours) = (
            reading(body, *content_type),
            reading(text.as_bytes(), Some(DECODED)),
        );
        // Invalid bytes are U+FFFD in the text (the reading drops it).
        if name.contains("invalid") {
            let replaced = ["Caf\u{fffd} bar", "こんにちは\u{fffd} "];
            assert!(replaced.iter().any(|r| text.contains(r)), "{name}");
        }
        assert!(
            theirs == ours,
            "{name} served as {content_type:?}: its text reads\n{ours}\nbut it reads\n{theirs}"
        );
    }
    // Every document in another charset was read from its text, but the white space.
    for (name, _, _) in charset_documents() {
        assert_eq!(
            transcoded.contains(name),
            name != "utf-16le, BOM, white space",
            "{name}"
        );
    }
    for name in [
        "windows-1251.xml",
        "rss20-miniflux-encoding_WINDOWS-1251.xml",
        "koi8-r-http-charset.xml",
    ] {
        assert!(transcoded.contains(name), "{name}");
    }
}
