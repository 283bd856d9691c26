//! `tributary migrate-store FROM TO`: copies every record of one store into another,
//! sled to PostgreSQL or back: items, identities and tombstones, links, aliases,
//! source states, and the side tables (the subscriptions to the sources' WebSub hubs
//! and the built-in hub's subscribers). The keys and values are the same bytes in both backends, so the
//! copy is exact. The destination must hold no items; the daemon must not be running
//! on the sled store (sled allows one process).

use anyhow::{Context, bail};
use std::path::PathBuf;

use crate::store::postgres::{PgOptions, Postgres};
use crate::store::{Record, SideTable, Store};

/// Records written per batch: bounded memory for any size of store.
const BATCH: usize = 5000;

/// A store named on the command line.
#[derive(Clone, Debug, PartialEq, Eq)]
pub enum StoreSpec {
    /// `sled:PATH`: the embedded store in directory PATH.
    Sled(PathBuf),
    /// `postgres:CONNINFO`, or a `postgres://` / `postgresql://` URL.
    Postgres(String),
}

impl std::str::FromStr for StoreSpec {
    type Err = String;

    fn from_str(text: &str) -> Result<StoreSpec, String> {
        if let Some(path) = text.strip_prefix("sled:") {
            Ok(StoreSpec::Sled(PathBuf::from(path)))
        } else if let Some(conninfo) = text.strip_prefix("postgres:")
            && !conninfo.starts_with("//")
        {
            Ok(StoreSpec::Postgres(conninfo.to_string()))
        } else if text.starts_with("postgres://") || text.starts_with("postgresql://") {
            Ok(StoreSpec::Postgres(text.to_string()))
        } else {
            Err("write sled:PATH, postgres://... or postgres:CONNINFO".into())
        }
    }
}

fn open(spec: &StoreSpec, password: Option<&String>) -> anyhow::Result<Store> {
    Ok(match spec {
        StoreSpec::Sled(path) => {
            Store::open(path).with_context(|| format!("opening {}", path.display()))?
        }
        StoreSpec::Postgres(url) => {
            let mut options = PgOptions::new(url.clone());
            options.password = password.cloned();
            options.pool_size = 2;
            Postgres::connect(&options)
                .context("opening the PostgreSQL store")?
                .into()
        }
    })
}

/// Copies `from` into `to`; prints what it copied.
pub fn migrate(
    from: &StoreSpec,
    to: &StoreSpec,
    password_file: Option<PathBuf>,
) -> anyhow::Result<()> {
    let password = match password_file {
        Some(file) => Some(
            std::fs::read_to_string(&file)
                .with_context(|| format!("reading {}", file.display()))?
                .lines()
                .next()
                .unwrap_or("")
                .trim()
                .to_string(),
        ),
        None => None,
    };
    if from == to {
        bail!("the source and the destination are the same store");
    }
    let source = open(from, password.as_ref())?;
    let destination = open(to, password.as_ref())?;
    if !destination.latest(1)?.is_empty() {
        bail!("the destination already holds items; migrate into an empty store");
    }
    let mut batch: Vec<Record> = Vec::with_capacity(BATCH);
    let (mut items, mut tombstones, mut records) = (0u64, 0u64, 0u64);
    source.backend().export(&mut |record| {
        match &record {
            Record::Item { .. } => items += 1,
            Record::Id { value, .. } if value.len() == 9 => tombstones += 1,
            _ => {}
        }
        records += 1;
        batch.push(record);
        if batch.len() == BATCH {
            destination.backend().import(std::mem::take(&mut batch))?;
        }
        Ok(())
    })?;
    destination.backend().import(batch)?;
    let copied = destination.item_counts()?.values().sum::<u64>();
    if copied != items {
        bail!("copied {items} items but the destination counts {copied}");
    }
    let side = copy_side_tables(&source, &destination)?;
    println!("copied {records} records: {items} items, {tombstones} tombstones; {side}");
    Ok(())
}

/// Copies every entry of every side table; says how many of each it copied.
fn copy_side_tables(source: &Store, destination: &Store) -> anyhow::Result<String> {
    let mut copied = Vec::new();
    for table in SideTable::ALL {
        let entries = source
            .backend()
            .side_entries(table)
            .with_context(|| format!("reading the side table {}", table.name()))?;
        for (key, value) in &entries {
            destination
                .backend()
                .put_side_entry(table, key, value)
                .with_context(|| format!("writing the side table {}", table.name()))?;
        }
        let now = destination.backend().side_entries(table)?;
        if now != entries {
            bail!(
                "the side table {} holds other entries after the copy",
                table.name()
            );
        }
        copied.push(format!("{} {} entries", entries.len(), table.name()));
    }
    Ok(copied.join(", "))
}
