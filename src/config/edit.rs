//! The one writer of new sources into a `feeds.toml` document (toml_edit), used by
//! `tributary add` ([`super::add`]) and `tributary import-opml` ([`super::import`]):
//! the keys a new source gets, in the order a person writes them, appended after the
//! sources already there, every comment and blank line of the file kept; and
//! [`replace_file`], the one way the file is written back.
//!
//! Whatever `config::parse` accepts can be edited: sources written as `[[source]]`
//! tables or as an inline array (`source = [ { url = "…" } ]`), a file that starts
//! with a byte-order mark, CRLF line endings, an empty file. The edited text keeps
//! the mark and the line endings it had.

use std::path::Path;
use toml_edit::{Array, ArrayOfTables, DocumentMut, Item, Table, Value, value};

/// The UTF-8 byte-order mark some Windows editors put at the start of a file.
pub(super) const BOM: char = '\u{feff}';

/// Why the file could not take the new sources.
#[derive(Debug, thiserror::Error)]
pub enum EditError {
    #[error("cannot read it as TOML: {0}")]
    Syntax(#[from] toml_edit::TomlError),
    #[error("`source` is neither [[source]] tables nor an array of tables")]
    NotSources,
    #[error("no URL to add")]
    NoUrl,
}

/// A `[[source]]` table: `url`, then `name` and `tags` when given.
pub(super) fn source_table(url: &str, name: Option<&str>, tags: &[String]) -> Table {
    let mut table = Table::new();
    table.insert("url", value(url));
    if let Some(name) = name {
        table.insert("name", value(name));
    }
    if !tags.is_empty() {
        table.insert("tags", value(tags.iter().collect::<Array>()));
    }
    table
}

/// `text` with `tables` appended to its sources, in the shape the file already uses
/// for them: more `[[source]]` tables (each after a blank line, as a person writes
/// them), or more entries of its inline `source = [ … ]` array.
pub(super) fn append_tables(text: &str, tables: Vec<Table>) -> Result<String, EditError> {
    let body = text.strip_prefix(BOM).unwrap_or(text);
    let mut document: DocumentMut = body.parse()?;
    match document.get_mut("source") {
        None => {
            document.insert("source", Item::ArrayOfTables(ArrayOfTables::new()));
            push_tables(&mut document, tables, !body.trim().is_empty())?;
        }
        Some(Item::ArrayOfTables(_)) => push_tables(&mut document, tables, true)?,
        Some(Item::Value(Value::Array(array))) if array.iter().all(Value::is_inline_table) => {
            for table in tables {
                push_inline(array, table);
            }
        }
        Some(_) => return Err(EditError::NotSources),
    }
    Ok(written_like(text, document.to_string()))
}

fn push_tables(
    document: &mut DocumentMut,
    tables: Vec<Table>,
    blank_line_before: bool,
) -> Result<(), EditError> {
    // Comments and blank lines at the end of the file stay where they were written,
    // before the new tables rather than after them.
    let trailing = document.trailing().as_str().unwrap_or("").to_string();
    document.set_trailing("");
    let sources = document
        .get_mut("source")
        .and_then(Item::as_array_of_tables_mut)
        .ok_or(EditError::NotSources)?;
    for (i, mut table) in tables.into_iter().enumerate() {
        let blank = if blank_line_before || i > 0 { "\n" } else { "" };
        let prefix = if i == 0 {
            format!("{trailing}{blank}")
        } else {
            blank.to_string()
        };
        table.decor_mut().set_prefix(prefix);
        sources.push(table);
    }
    Ok(())
}

/// Appends `table` to an inline array of sources, laid out like its last entry: on a
/// line of its own when that one is, and with the last entry's comment or spacing
/// after it moved behind the new one.
fn push_inline(array: &mut Array, table: Table) {
    let mut inline = table.into_inline_table();
    inline.fmt();
    let mut entry = Value::InlineTable(inline);
    let (prefix, suffix) = match array.iter_mut().last() {
        Some(last) => {
            let prefix = last
                .decor()
                .prefix()
                .and_then(|p| p.as_str())
                .unwrap_or(" ");
            let prefix = match prefix.rfind('\n') {
                Some(at) => prefix[at..].to_string(),
                None => " ".to_string(),
            };
            let suffix = last.decor().suffix().and_then(|s| s.as_str()).unwrap_or("");
            let suffix = suffix.to_string();
            last.decor_mut().set_suffix("");
            (prefix, suffix)
        }
        None => (String::new(), String::new()),
    };
    entry.decor_mut().set_prefix(prefix);
    entry.decor_mut().set_suffix(suffix);
    array.push_formatted(entry);
}

/// `edited` with the byte-order mark and the line endings of `original`, and a final
/// newline.
pub(super) fn written_like(original: &str, edited: String) -> String {
    let mut edited = edited;
    if !edited.ends_with('\n') {
        edited.push('\n');
    }
    if original.contains("\r\n") {
        // New lines are written as "\n"; the file's own keep their "\r\n".
        edited = edited.replace("\r\n", "\n").replace('\n', "\r\n");
    }
    if original.starts_with(BOM) {
        edited.insert(0, BOM);
    }
    edited
}

/// Replaces `path` with `text` atomically: a temporary file in the same directory,
/// written and flushed to disk, then renamed over it, and the directory flushed; a
/// crash leaves the old file or the new one, never half of one. The new file keeps
/// the old one's permissions and, when allowed, its owner, so a `0640
/// root:tributary` config holding feed credentials stays that way. A symbolic link
/// is followed: the file it names is replaced, the link stays.
pub fn replace_file(path: &Path, text: &str) -> std::io::Result<()> {
    use std::io::Write;
    let path = match std::fs::symlink_metadata(path) {
        Ok(meta) if meta.file_type().is_symlink() => std::fs::canonicalize(path)?,
        _ => path.to_owned(),
    };
    let dir = match path.parent() {
        Some(dir) if !dir.as_os_str().is_empty() => dir.to_owned(),
        _ => Path::new(".").to_owned(),
    };
    let old = std::fs::metadata(&path).ok();
    let mut temporary = tempfile::NamedTempFile::new_in(&dir)?;
    if let Some(old) = &old {
        // Before any byte is written: the temporary file is created 0600, and must
        // not be readable by more people than the file it replaces at any time.
        temporary.as_file().set_permissions(old.permissions())?;
        #[cfg(unix)]
        {
            use std::os::unix::fs::MetadataExt;
            // Only root may give a file away; anyone else keeps their own ownership.
            let _ =
                std::os::unix::fs::fchown(temporary.as_file(), Some(old.uid()), Some(old.gid()));
        }
    }
    temporary.write_all(text.as_bytes())?;
    temporary.as_file().sync_all()?;
    temporary.persist(&path).map_err(|err| err.error)?;
    // The rename itself is on disk only once the directory is.
    std::fs::File::open(&dir)?.sync_all()
}

#[cfg(test)]
mod tests {
    use super::*;

    fn one(url: &str) -> Vec<Table> {
        vec![source_table(url, Some("N"), &[])]
    }

    fn urls(text: &str) -> Vec<String> {
        let config = crate::config::parse(Path::new("feeds.toml"), text, None).unwrap();
        config.sources.iter().map(|s| s.url.to_string()).collect()
    }

    /// Every shape `config::parse` accepts takes a new source and still parses, with
    /// the new source last.
    #[test]
    fn every_accepted_shape_takes_a_source() {
        let shapes = [
            "",
            "\n\n",
            "# only a comment",
            "[server]\nlisten = \"127.0.0.1:8080\"",
            "source = []\n",
            "source = [ { url = \"https://a.example/rss\" } ]\n",
            "source = [\n  { url = \"https://a.example/rss\" }, # first\n  { url = \"https://b.example/rss\", tags = [\"x\"] },\n]\n[server]\nlisten = \"127.0.0.1:8080\"\n",
            "[[source]]\nurl = \"https://a.example/rss\"\nheaders.X-Key = \"k\"\n",
            "[[source]]\nurl = \"https://a.example/rss\"\n[source.headers]\nX-Key = \"k\"\n",
            "[[source]]\r\nurl = \"https://a.example/rss\"\r\n",
            "\u{feff}[[source]]\nurl = \"https://a.example/rss\"\n",
            "\u{feff}",
            "[[source]]\nurl = \"https://a.example/rss\"\nkind = \"html\"\n[source.selectors]\nitem = \"li\"\ntitle = \"a\"\nlink = \"a\"\n[[source]]\nurl = \"https://b.example/rss\"\n",
        ];
        for text in shapes {
            let before = urls(text);
            let edited = append_tables(text, one("https://new.example/feed")).unwrap();
            let mut expected = before.clone();
            expected.push("https://new.example/feed".to_string());
            assert_eq!(urls(&edited), expected, "{text:?} became {edited:?}");
            if text.contains("source = [") {
                assert_eq!(edited.contains("# first"), text.contains("# first"));
            } else {
                assert!(
                    edited.starts_with(text.trim_end()),
                    "{text:?} -> {edited:?}"
                );
            }
            assert_eq!(edited.starts_with(BOM), text.starts_with(BOM));
            if text.contains("\r\n") {
                assert!(!edited.replace("\r\n", "").contains('\n'), "{edited:?}");
            }
        }
    }

    #[test]
    fn other_shapes_are_refused_not_broken() {
        for text in [
            "source = 5\n",
            "source = [1, 2]\n",
            "[source]\nurl = \"x\"\n",
        ] {
            let edited = append_tables(text, one("https://new.example/feed"));
            assert!(
                matches!(edited, Err(EditError::NotSources)),
                "{text:?}: {edited:?}"
            );
        }
    }

    #[test]
    fn replacing_keeps_mode_and_follows_links() {
        use std::os::unix::fs::PermissionsExt;
        let dir = tempfile::tempdir().unwrap();
        let real = dir.path().join("real.toml");
        std::fs::write(&real, "old").unwrap();
        std::fs::set_permissions(&real, std::fs::Permissions::from_mode(0o640)).unwrap();
        let link = dir.path().join("feeds.toml");
        std::os::unix::fs::symlink(&real, &link).unwrap();
        replace_file(&link, "new").unwrap();
        assert!(
            std::fs::symlink_metadata(&link)
                .unwrap()
                .file_type()
                .is_symlink()
        );
        assert_eq!(std::fs::read_to_string(&real).unwrap(), "new");
        let mode = std::fs::metadata(&real).unwrap().permissions().mode();
        assert_eq!(mode & 0o777, 0o640);
        let left: Vec<_> = std::fs::read_dir(dir.path()).unwrap().collect();
        assert_eq!(left.len(), 2, "no temporary file left behind");
    }
}
