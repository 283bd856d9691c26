//! Where the entries of a source's last document lay, so the next scan can step over
//! the run of them the new document repeats.
//!
//! A new document of a busy feed is usually the last one with an entry or two put on
//! top and as many of the oldest dropped at the bottom: from its first old entry on,
//! the bytes are the last document's for all but its last entries. A scan leaves a
//! [`Layout`] behind, and the next scan of the same source, once it has read an entry
//! that is the last document's first one byte for byte, hashes its way over the
//! entries that followed it instead of tokenizing them: the same bytes, read inside
//! the same open elements, hold the same entries at the same places. Hashing costs a
//! tenth of tokenizing, and the scan comes out as a scan of every byte would.
//!
//! A layout is left only where stepping over a run cannot change what the scan
//! finds: every entry is a child of the same element, so whatever lies between two
//! of them is balanced markup and the run leaves the open elements as they were; and
//! none of them adds to the context (their ancestors are hashed at the first entry).

use std::ops::Range;

use xxhash_rust::xxh3::{Xxh3, xxh3_64};

use super::Open;

/// Of how many of the last entries a run may end at the end: a new document may
/// drop up to one fewer of the last document's oldest entries (one per new entry,
/// for a feed that keeps a fixed number) and still be stepped over.
const ENDS: usize = 8;

/// Where the entries of one document lay.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct Layout {
    /// Hash of the start tags open around the entries.
    stack: u64,
    /// Hash of the first entry's bytes.
    first: u64,
    /// Each entry's range, from the first entry's start.
    entries: Box<[(u32, u32)]>,
    /// Hash of the bytes from the first entry's start to the end of each of the last
    /// [`ENDS`] entries, the earliest first.
    ends: Box<[u64]>,
}

impl Layout {
    /// The entries of `last` that follow `first`, an entry just scanned in `body`
    /// inside `open`, when `first` is `last`'s first entry and the bytes after it
    /// are its next ones; `None` when not, or when the run would hold `first` only.
    /// A run is looked along once per scan (`looked`): a document whose entries are
    /// all copies of the last first one (a hostile one) is not hashed to its end
    /// from each of them. Hashing the candidates costs no more than the document:
    /// each is hashed once.
    fn run(
        last: &Layout,
        body: &[u8],
        first: Range<usize>,
        open: &[Open],
        looked: &mut bool,
    ) -> Option<Vec<Range<usize>>> {
        // Ranges are from the first entry's start: its own ends at its length.
        let (_, first_length) = last.entries[0];
        if *looked
            || first.len() != first_length as usize
            || xxh3_64(&body[first.clone()]) != last.first
        {
            return None;
        }
        *looked = true;
        if stack(open, body) != last.stack {
            return None;
        }
        // The longest run whose bytes hash as the last document's: the hashes are of
        // ever longer stretches from the first entry's start, so one pass finds it.
        let at = first.start;
        let skipped = last.entries.len() - last.ends.len();
        let mut hasher = Xxh3::new();
        let mut hashed = at;
        let mut found = None;
        for (i, &hash) in last.ends.iter().enumerate() {
            let end = at + last.entries[skipped + i].1 as usize;
            if end > body.len() {
                break;
            }
            hasher.update(&body[hashed..end]);
            hashed = end;
            if hasher.digest() != hash {
                break;
            }
            found = Some(skipped + i);
        }
        let count = found? + 1;
        (count > 1).then(|| {
            last.entries[1..count]
                .iter()
                .map(|&(start, end)| at + start as usize..at + end as usize)
                .collect()
        })
    }
}

/// What a scan keeps track of for layouts: the last document's, to step over the run
/// of its entries, and this one's, to leave.
pub(super) struct Tracker<'a> {
    last: Option<&'a Layout>,
    /// The parent of the first entry (its start tag's position) and the start tags
    /// around it.
    first: Option<(usize, u64)>,
    /// Whether every entry had the first one's parent, and none had ancestors of its
    /// own to hash into the context (then no layout is left).
    siblings: bool,
    late: bool,
    /// Whether the run was looked for, and what was stepped over: the run after the
    /// entry that matched the last first one, which was scanned.
    looked: bool,
    stepped: Option<Range<usize>>,
}

impl<'a> Tracker<'a> {
    pub(super) fn new(last: Option<&'a Layout>) -> Tracker<'a> {
        Tracker {
            last,
            first: None,
            siblings: true,
            late: false,
            looked: false,
            stepped: None,
        }
    }

    /// An entry starts inside `open`; `hashed` says whether that hashed ancestors
    /// into the context.
    pub(super) fn started(&mut self, open: &[Open], body: &[u8], hashed: bool) {
        self.late |= hashed && self.first.is_some();
        // An entry is never the root: it has a parent.
        let parent = open.last().map_or(0, |parent| parent.tag.start);
        let (first_parent, _) = *self
            .first
            .get_or_insert_with(|| (parent, stack(open, body)));
        self.siblings &= parent == first_parent;
    }

    /// An entry ended: it joins `entries`, and so do the entries of the run that
    /// follows it, if it starts one. Says where the scan goes on after a run.
    pub(super) fn ended(
        &mut self,
        body: &[u8],
        entries: &mut Vec<Range<usize>>,
        entry: Range<usize>,
        open: &[Open],
    ) -> Option<usize> {
        entries.push(entry.clone());
        let last = self.last?;
        let run = Layout::run(last, body, entry.clone(), open, &mut self.looked)?;
        let to = run.last().map_or(entry.end, |entry| entry.end);
        self.stepped = Some(entry.end..to);
        entries.extend(run);
        Some(to)
    }

    /// The layout of `entries` to leave, if any, and what was stepped over.
    pub(super) fn finish(
        self,
        body: &[u8],
        entries: &[Range<usize>],
    ) -> (Option<Layout>, Option<Range<usize>>) {
        let layout = (self.first)
            .filter(|_| self.siblings && !self.late)
            .and_then(|(_, stack)| leave(body, entries, stack));
        (layout, self.stepped)
    }
}

/// Hash of the start tags of `open`: what the entries are read inside.
fn stack(open: &[Open], body: &[u8]) -> u64 {
    let mut hasher = Xxh3::new();
    for element in open {
        hasher.update(&body[element.tag.clone()]);
        hasher.update(&[0]);
    }
    hasher.digest()
}

/// The layout of `entries` in `body`, read inside elements hashing to `stack`; `None`
/// without entries, or past what a layout holds (4 GiB).
fn leave(body: &[u8], entries: &[Range<usize>], stack: u64) -> Option<Layout> {
    let origin = entries.first()?.start;
    let relative = |at: usize| u32::try_from(at - origin).ok();
    let ranges = entries
        .iter()
        .map(|entry| Some((relative(entry.start)?, relative(entry.end)?)))
        .collect::<Option<Box<[_]>>>()?;
    let mut hasher = Xxh3::new();
    let mut hashed = origin;
    let last = &entries[entries.len().saturating_sub(ENDS)..];
    let ends = last
        .iter()
        .map(|entry| {
            hasher.update(&body[hashed..entry.end]);
            hashed = entry.end;
            hasher.digest()
        })
        .collect();
    Some(Layout {
        stack,
        first: xxh3_64(&body[entries[0].clone()]),
        entries: ranges,
        ends,
    })
}

#[cfg(test)]
mod tests {
    use super::super::{Scan, scan};

    /// A document of `entries` in one of three dialects, with what lies between
    /// the entries and after the root.
    fn document(dialect: usize, head: &str, entries: &[String], gap: &str) -> String {
        let items = entries.join(gap);
        match dialect {
            0 => format!(
                "<?xml version=\"1.0\"?>\n<rss version=\"2.0\"><channel>{head}\n{items}\n</channel></rss>\n"
            ),
            1 => format!(
                "<feed xmlns=\"http://www.w3.org/2005/Atom\">{head}{items}</feed><!-- end -->"
            ),
            _ => format!(
                "<rdf:RDF xmlns:rdf=\"http://www.w3.org/1999/02/22-rdf-syntax-ns#\" xmlns=\"http://purl.org/rss/1.0/\">\
                 <channel>{head}</channel>{items}</rdf:RDF>"
            ),
        }
    }

    /// Entry `i` of a dialect, in one of a few shapes: text with references, CDATA,
    /// comments, nested elements (an `<item>` inside one is not an entry), empty.
    fn entry(dialect: usize, i: usize, shape: usize) -> String {
        let name = if dialect == 1 { "entry" } else { "item" };
        match shape % 5 {
            0 => format!("<{name}><title>Story {i} &amp; more</title><guid>{i}</guid></{name}>"),
            1 => format!(
                "<{name} a=\"{i}\"><description><![CDATA[<p>{i} </{name}> ]]></description></{name}>"
            ),
            2 => format!(
                "<{name}><!-- <{name}> --><x:y xmlns:x=\"u\">{i}</x:y><item>{i}</item></{name}>"
            ),
            3 => format!("<{name} id=\"{i}\"/>"),
            _ => format!("<{name}>\n  <title>Новость {i}</title>\n  <link>/{i}</link>\n</{name}>"),
        }
    }

    /// What a scan found, less how it found it.
    fn found(
        scan: Option<Scan>,
    ) -> Option<(u64, Vec<std::ops::Range<usize>>, Option<super::Layout>)> {
        scan.map(|scan| (scan.context, scan.entries, scan.layout))
    }

    /// Scans `new` after `old` with and without `old`'s layout: they must find the
    /// same. Says whether the scan stepped over a run.
    fn same_either_way(old: &str, new: &str) -> bool {
        let last = scan(old.as_bytes(), None).and_then(|scan| scan.layout);
        let stepping = scan(new.as_bytes(), last.as_ref());
        let stepped = stepping.as_ref().is_some_and(|scan| scan.stepped.is_some());
        assert_eq!(
            found(stepping),
            found(scan(new.as_bytes(), None)),
            "{old}\n---\n{new}"
        );
        stepped
    }

    #[test]
    fn a_document_that_repeats_the_last_ones_entries_steps_over_them() {
        for dialect in 0..3 {
            let entries = |range: std::ops::Range<usize>| -> Vec<String> {
                range.rev().map(|i| entry(dialect, i, i)).collect()
            };
            let old = document(dialect, "<title>T</title>", &entries(0..50), "\n");
            // New entries on top, the oldest dropped: stepped over.
            for (new, dropped) in [(1, 1), (2, 2), (1, 0), (0, 1), (3, 3), (7, 7)] {
                let text = document(
                    dialect,
                    "<title>T</title>",
                    &entries(dropped..50 + new),
                    "\n",
                );
                assert!(same_either_way(&old, &text), "{dialect} {new} {dropped}");
            }
            // More dropped than the layout has ends for: scanned whole.
            let text = document(dialect, "<title>T</title>", &entries(8..51), "\n");
            assert!(!same_either_way(&old, &text));
            // The first old entry changed: scanned from there.
            let mut changed = entries(1..51);
            changed[1] = entry(dialect, 49, 1);
            assert!(!same_either_way(
                &old,
                &document(dialect, "<title>T</title>", &changed, "\n")
            ));
            // The head changed: stepped over, and the context is the new one.
            let text = document(dialect, "<title>U</title>", &entries(1..51), "\n");
            assert!(same_either_way(&old, &text));
        }
    }

    #[test]
    fn a_run_is_stepped_over_only_inside_the_same_open_elements() {
        let items: Vec<String> = (0..5).rev().map(|i| entry(0, i, 0)).collect();
        let items = items.join("");
        let old = format!("<rss><channel>{items}</channel></rss>");
        for new in [
            format!("<rss version=\"2.0\"><channel>{items}</channel></rss>"),
            format!("<rss><channel xml:base=\"/b/\">{items}</channel></rss>"),
            format!("<rdf:RDF><channel>{items}</channel></rdf:RDF>"),
        ] {
            assert!(!same_either_way(&old, &new), "{new}");
        }
        // Entries of two parents leave no layout: what lies between them closes one.
        let split = format!("<rss><channel>{items}</channel><channel>{items}</channel></rss>");
        assert_eq!(scan(split.as_bytes(), None).unwrap().layout, None);
        let rdf =
            |items: &str| format!("<rdf:RDF><channel>{items}</channel><item>b</item></rdf:RDF>");
        assert_eq!(
            scan(rdf("<item>a</item>").as_bytes(), None).unwrap().layout,
            None
        );
        assert!(!same_either_way(
            &rdf("<item>a</item>"),
            &rdf("<item>n</item><item>a</item>")
        ));
        // Nor does a document without entries, or a JSON Feed.
        assert_eq!(scan(b"<rss><channel/></rss>", None).unwrap().layout, None);
        let json = br#"{"version": "https://jsonfeed.org/version/1.1", "items": [{"id": "1"}]}"#;
        assert_eq!(scan(json, None).unwrap().layout, None);
    }

    #[test]
    fn what_does_not_scan_after_a_run_does_not_scan_either_way() {
        let items: Vec<String> = (0..5).rev().map(|i| entry(0, i, i)).collect();
        let old = document(0, "", &items, "\n");
        let new_items: Vec<String> = (0..6).rev().map(|i| entry(0, i, i)).collect();
        let whole = document(0, "", &new_items, "\n");
        for broken in [
            whole.replace("</channel></rss>", "</channel>"),
            whole.replace("</rss>", "</rss><rss/>"),
            whole.replace("<title>T", "<title>\u{1b}"),
            whole[..whole.len() / 2].to_string(),
        ] {
            same_either_way(&old, &broken);
        }
        let mut bytes = whole.clone().into_bytes();
        bytes[40] = 0xff;
        let last = scan(old.as_bytes(), None).unwrap().layout;
        assert!(scan(&bytes, last.as_ref()).is_none());
    }

    #[test]
    fn entries_that_start_like_the_last_first_one_are_not_each_hashed_to_the_end() {
        let big = format!("<item><title>{}</title></item>", "x".repeat(10_000));
        let items: Vec<String> = (0..10).map(|i| entry(0, i, 0)).collect();
        let old = document(0, "", &[vec![big.clone()], items.clone()].concat(), "\n");
        // A new entry on top: stepped over.
        let one = [vec![entry(0, 99, 0), big.clone()], items.clone()].concat();
        assert!(same_either_way(&old, &document(0, "", &one, "\n")));
        // Fifty copies of the first entry's bytes on top: the run is looked for along
        // the first copy only, not from each to the end. The scan is the same.
        let copies = [vec![big; 51], items].concat();
        assert!(!same_either_way(&old, &document(0, "", &copies, "\n")));
    }

    /// Random documents and random changes to them, each scanned after the other
    /// with and without its layout (`SCAN_CASES` and `SCAN_SEED` for longer runs).
    #[test]
    fn random_changes_scan_the_same_with_and_without_the_last_layout() {
        let cases = std::env::var("SCAN_CASES").map_or(2000, |n| n.parse().unwrap());
        let seed = std::env::var("SCAN_SEED").map_or(7, |n| n.parse().unwrap());
        let mut rng = fastrand::Rng::with_seed(seed);
        let gaps = [
            "",
            "\n",
            "\n  ",
            "<!-- c -->",
            "<other>x</other>\n",
            "<?pi x?>",
        ];
        let heads = ["<title>T</title>", "<title>U &amp; V</title>", ""];
        let mut stepped = 0;
        for _ in 0..cases {
            let dialect = rng.usize(0..3);
            let count = rng.usize(1..20);
            let shapes: Vec<usize> = (0..count + 12).map(|_| rng.usize(0..5)).collect();
            let entries = |range: std::ops::Range<usize>| -> Vec<String> {
                range.rev().map(|i| entry(dialect, i, shapes[i])).collect()
            };
            let gap = gaps[rng.usize(..gaps.len())];
            let old = document(dialect, heads[rng.usize(..3)], &entries(0..count), gap);
            let (new, dropped) = (rng.usize(0..4), rng.usize(0..count.min(10)));
            let mut changed = entries(dropped..count + new);
            match rng.usize(0..6) {
                0 if !changed.is_empty() => {
                    let at = rng.usize(..changed.len());
                    changed[at] = entry(dialect, 1000 + at, rng.usize(0..5));
                }
                1 if !changed.is_empty() => {
                    changed.remove(rng.usize(..changed.len()));
                }
                2 => changed.reverse(),
                _ => {}
            }
            let gap = if rng.usize(0..8) == 0 {
                gaps[rng.usize(..gaps.len())]
            } else {
                gap
            };
            let text = document(dialect, heads[rng.usize(..3)], &changed, gap);
            stepped += usize::from(same_either_way(&old, &text));
        }
        // Most changes keep a run of the last document's entries.
        assert!(stepped > cases / 4, "{stepped} of {cases}");
    }
}
