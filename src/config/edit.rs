//! The one writer of `[[source]]` tables into a `feeds.toml` document (toml_edit), used
//! by `tributary add` ([`super::add`]) and `tributary import-opml` ([`super::import`]):
//! the keys a new source gets, in the order a person writes them, appended after the
//! tables already there, every comment and blank line of the file kept.

use toml_edit::{Array, ArrayOfTables, DocumentMut, Item, Table, value};

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

/// The document's `[[source]]` list, created empty when it has none; `None` when
/// `source` is something else than a list of tables.
pub(super) fn sources_mut(document: &mut DocumentMut) -> Option<&mut ArrayOfTables> {
    if !document.contains_key("source") {
        document.insert("source", Item::ArrayOfTables(ArrayOfTables::new()));
    }
    document
        .get_mut("source")
        .and_then(Item::as_array_of_tables_mut)
}
