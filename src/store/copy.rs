//! The records of a sled store, read and written whole, for `migrate-store`.

use super::backend::Record;
use super::{Sled, StoreError};

/// Records written per batch on import.
const BATCH: usize = 1000;

pub(super) fn export_sled(
    store: &Sled,
    sink: &mut dyn FnMut(Record) -> Result<(), StoreError>,
) -> Result<(), StoreError> {
    let h = store.handles()?;
    for entry in h.items.iter() {
        let (key, value) = entry?;
        sink(Record::Item {
            key: key.to_vec(),
            value: value.to_vec(),
        })?;
    }
    for entry in h.ids.iter() {
        let (identity, value) = entry?;
        sink(Record::Id {
            identity: identity.to_vec(),
            value: value.to_vec(),
        })?;
    }
    for entry in h.links.iter() {
        let (link, owner) = entry?;
        sink(Record::Link {
            link: link.to_vec(),
            owner: owner.to_vec(),
        })?;
    }
    for entry in h.aliases.iter() {
        let (alias, owner) = entry?;
        sink(Record::Alias {
            alias: alias.to_vec(),
            owner: owner.to_vec(),
        })?;
    }
    for entry in h.sources.iter() {
        let (id, state) = entry?;
        sink(Record::Source {
            id: id.to_vec(),
            state: state.to_vec(),
        })?;
    }
    for entry in h.db.iter() {
        let (name, value) = entry?;
        sink(Record::Meta {
            name: name.to_vec(),
            value: value.to_vec(),
        })?;
    }
    Ok(())
}

pub(super) fn import_sled(store: &Sled, records: Vec<Record>) -> Result<(), StoreError> {
    store.write(|h| {
        for chunk in records.chunks(BATCH) {
            for record in chunk {
                let (tree, key, value) = match record {
                    Record::Item { key, value } => (&h.items, key, value),
                    Record::Id { identity, value } => (&h.ids, identity, value),
                    Record::Link { link, owner } => (&h.links, link, owner),
                    Record::Alias { alias, owner } => (&h.aliases, alias, owner),
                    Record::Source { id, state } => (&h.sources, id, state),
                    Record::Meta { name, value } => (&*h.db, name, value),
                };
                tree.insert(key.as_slice(), value.as_slice())?;
            }
        }
        Ok(())
    })?;
    store.signal_change();
    Ok(())
}
