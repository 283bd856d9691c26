//! Retention, item counts and the orphan sweep in PostgreSQL, as sled's do them (the
//! same tombstones, the same order of removal); and `migrate-store`'s export and
//! import of every record.

use chrono::{DateTime, Utc};
use std::collections::{HashMap, HashSet};

use super::super::backend::Record;
use super::super::codec::decode_item;
use super::super::keys::{TOMBSTONE, identity_key, item_key};
use super::super::{StoreError, Trimmed};
use super::Postgres;
use crate::item::SourceId;

/// Items removed per transaction, as in sled.
const TRIM_BATCH: usize = 256;
/// Rows read or written per statement by export and import.
const COPY_BATCH: i64 = 1000;
/// `meta` name of the last orphan sweep's time, as in sled's default tree.
const LAST_ORPHAN_SWEEP: &[u8] = b"last_orphan_sweep";
/// A live `ids` value is an item key of 16 bytes; a tombstone has 9.
const LIVE: &str = "length(value) = 16";
/// The trim time (microseconds) of a tombstone value.
const TOMB_MICROS: &str = "('x' || encode(substring(value from 2 for 8), 'hex'))::bit(64)::bigint";

impl Postgres {
    pub(super) async fn counts(&self) -> Result<HashMap<SourceId, u64>, StoreError> {
        let conn = self.conn().await?;
        let rows = conn
            .query(
                &format!("SELECT source, count(*) FROM ids WHERE {LIVE} GROUP BY source"),
                &[],
            )
            .await?;
        Ok(rows
            .into_iter()
            .map(|row| (SourceId(row.get(0)), row.get::<_, i64>(1) as u64))
            .collect())
    }

    pub(super) async fn count_one(&self, source: &SourceId) -> Result<u64, StoreError> {
        let conn = self.conn().await?;
        let row = conn
            .query_one(
                &format!("SELECT count(*) FROM ids WHERE source = $1 AND {LIVE}"),
                &[&source.0],
            )
            .await?;
        Ok(row.get::<_, i64>(0) as u64)
    }

    pub(super) async fn trim_all(
        &self,
        keep_after: DateTime<Utc>,
        max_items: usize,
    ) -> Result<Trimmed, StoreError> {
        let conn = self.conn().await?;
        let expired = conn
            .execute(
                &format!("DELETE FROM ids WHERE length(value) = 9 AND {TOMB_MICROS} < $1"),
                &[&keep_after.timestamp_micros()],
            )
            .await?;
        if expired > 0 {
            self.note_forgotten(&conn).await;
        }
        let mut counts = self.counts().await?;
        let live = counts.values().sum::<u64>() as usize;
        let excess = live.saturating_sub(max_items);
        let cutoff = item_key(keep_after, b"");
        let older: i64 = conn
            .query_one(
                "SELECT count(*) FROM items WHERE key < $1",
                &[&&cutoff[..8]],
            )
            .await?
            .get(0);
        let take = (older as usize).max(excess) as i64;
        let rows = conn
            .query(
                "SELECT key, body FROM items ORDER BY key LIMIT $1",
                &[&take],
            )
            .await?;
        drop(conn);
        let mut doomed = Vec::with_capacity(rows.len());
        let mut touched = HashSet::new();
        for row in rows {
            let record = decode_item(row.get::<_, &[u8]>(1))?;
            if let Some(count) = counts.get_mut(&record.origin.source) {
                *count = count.saturating_sub(1);
            }
            let identity = identity_key(&record.origin.source, &record.item.id.0);
            doomed.push((row.get::<_, Vec<u8>>(0), identity));
            touched.insert(record.origin.source);
        }
        self.bury(&doomed).await?;
        counts.retain(|_, count| *count > 0);
        Ok(Trimmed {
            removed: doomed.len(),
            touched,
            counts,
        })
    }

    pub(super) async fn trim_one(
        &self,
        source: &SourceId,
        max_items: usize,
    ) -> Result<usize, StoreError> {
        let conn = self.conn().await?;
        let rows = conn
            .query(
                &format!(
                    "SELECT value, identity FROM ids WHERE source = $1 AND {LIVE} ORDER BY value"
                ),
                &[&source.0],
            )
            .await?;
        drop(conn);
        if rows.len() <= max_items {
            return Ok(0);
        }
        let doomed: Vec<(Vec<u8>, Vec<u8>)> = rows[..rows.len() - max_items]
            .iter()
            .map(|row| (row.get(0), row.get(1)))
            .collect();
        self.bury(&doomed).await?;
        Ok(doomed.len())
    }

    /// Removes items (key, identity) and leaves tombstones of their identities, in
    /// batches; an item a poll moved since it was picked stays.
    async fn bury(&self, doomed: &[(Vec<u8>, Vec<u8>)]) -> Result<(), StoreError> {
        let mut tombstone = Vec::with_capacity(9);
        tombstone.push(TOMBSTONE);
        tombstone.extend_from_slice(&Utc::now().timestamp_micros().to_be_bytes());
        let mut removed = 0;
        for chunk in doomed.chunks(TRIM_BATCH) {
            let keys: Vec<&[u8]> = chunk.iter().map(|(key, _)| key.as_slice()).collect();
            let identities: Vec<&[u8]> = chunk.iter().map(|(_, id)| id.as_slice()).collect();
            let conn = self.conn().await?;
            removed += conn
                .execute(
                    "WITH doomed AS (
                        SELECT unnest($1::bytea[]) AS key, unnest($2::bytea[]) AS identity
                     ), buried AS (
                        UPDATE ids SET value = $3 FROM doomed
                        WHERE ids.identity = doomed.identity AND ids.value = doomed.key
                        RETURNING doomed.key
                     )
                     DELETE FROM items WHERE key IN (SELECT key FROM buried)",
                    &[&keys, &identities, &tombstone],
                )
                .await?;
        }
        if removed > 0 {
            let conn = self.conn().await?;
            self.advance(&conn).await?;
        }
        Ok(())
    }

    pub(super) async fn sweep_orphans(&self) -> Result<usize, StoreError> {
        let conn = self.conn().await?;
        let now = Utc::now().timestamp_micros().to_be_bytes();
        conn.execute(
            "INSERT INTO meta (name, value) VALUES ($1, $2)
             ON CONFLICT (name) DO UPDATE SET value = excluded.value",
            &[&LAST_ORPHAN_SWEEP, &&now[..]],
        )
        .await?;
        let links = conn
            .execute(
                "DELETE FROM links l WHERE NOT EXISTS (SELECT 1 FROM ids WHERE identity = l.owner)",
                &[],
            )
            .await?;
        let aliases = conn
            .execute(
                "DELETE FROM aliases a WHERE NOT EXISTS (SELECT 1 FROM ids WHERE identity = a.owner)",
                &[],
            )
            .await?;
        Ok((links + aliases) as usize)
    }

    pub(super) async fn last_sweep(&self) -> Result<Option<DateTime<Utc>>, StoreError> {
        let conn = self.conn().await?;
        let row = conn
            .query_opt(
                "SELECT value FROM meta WHERE name = $1",
                &[&LAST_ORPHAN_SWEEP],
            )
            .await?;
        Ok(row
            .and_then(|row| row.get::<_, &[u8]>(0).try_into().ok())
            .and_then(|micros| DateTime::from_timestamp_micros(i64::from_be_bytes(micros))))
    }

    pub(super) async fn export_all(
        &self,
        sink: &mut dyn FnMut(Record) -> Result<(), StoreError>,
    ) -> Result<(), StoreError> {
        let conn = self.conn().await?;
        let tables: [(&str, &str, &str); 6] = [
            ("items", "key", "body"),
            ("ids", "identity", "value"),
            ("links", "link", "owner"),
            ("aliases", "alias", "owner"),
            ("sources", "convert_to(id, 'UTF8')", "state"),
            ("meta", "name", "value"),
        ];
        for (table, key, value) in tables {
            let mut after: Vec<u8> = Vec::new();
            loop {
                let sql = format!(
                    "SELECT {key}, {value} FROM {table} WHERE {key} > $1 ORDER BY {key} LIMIT $2"
                );
                let rows = conn.query(&sql, &[&after, &COPY_BATCH]).await?;
                let done = (rows.len() as i64) < COPY_BATCH;
                for row in rows {
                    let (k, v): (Vec<u8>, Vec<u8>) = (row.get(0), row.get(1));
                    after = k.clone();
                    if table == "meta" && k == b"partitions" {
                        // The database's own: fixed when it was created.
                        continue;
                    }
                    sink(match table {
                        "items" => Record::Item { key: k, value: v },
                        "ids" => Record::Id {
                            identity: k,
                            value: v,
                        },
                        "links" => Record::Link { link: k, owner: v },
                        "aliases" => Record::Alias { alias: k, owner: v },
                        "sources" => Record::Source { id: k, state: v },
                        _ => Record::Meta { name: k, value: v },
                    })?;
                }
                if done {
                    break;
                }
            }
        }
        Ok(())
    }

    pub(super) async fn import_all(&self, records: Vec<Record>) -> Result<(), StoreError> {
        let mut conn = self.conn().await?;
        let tx = conn.transaction().await?;
        for record in &records {
            match record {
                Record::Item { key, value } => {
                    let source = decode_item(value)?.origin.source.0;
                    tx.execute(
                        "INSERT INTO items (key, source, body) VALUES ($1, $2, $3)
                         ON CONFLICT (key) DO UPDATE SET source = excluded.source, body = excluded.body",
                        &[key, &source, value],
                    )
                    .await?;
                }
                Record::Id { identity, value } => {
                    let source = identity.split(|&b| b == 0).next().unwrap_or_default();
                    let source = String::from_utf8_lossy(source).into_owned();
                    tx.execute(
                        "INSERT INTO ids (identity, source, value) VALUES ($1, $2, $3)
                         ON CONFLICT (identity) DO UPDATE SET value = excluded.value",
                        &[identity, &source, value],
                    )
                    .await?;
                }
                Record::Link { link, owner } => {
                    tx.execute(
                        "INSERT INTO links (link, owner) VALUES ($1, $2)
                         ON CONFLICT (link) DO UPDATE SET owner = excluded.owner",
                        &[link, owner],
                    )
                    .await?;
                }
                Record::Alias { alias, owner } => {
                    tx.execute(
                        "INSERT INTO aliases (alias, owner) VALUES ($1, $2)
                         ON CONFLICT (alias) DO UPDATE SET owner = excluded.owner",
                        &[alias, owner],
                    )
                    .await?;
                }
                Record::Source { id, state } => {
                    let id = String::from_utf8_lossy(id).into_owned();
                    tx.execute(
                        "INSERT INTO sources (id, state) VALUES ($1, $2)
                         ON CONFLICT (id) DO UPDATE SET state = excluded.state",
                        &[&id, state],
                    )
                    .await?;
                }
                Record::Meta { name, value } => {
                    tx.execute(
                        "INSERT INTO meta (name, value) VALUES ($1, $2)
                         ON CONFLICT (name) DO UPDATE SET value = excluded.value",
                        &[name, value],
                    )
                    .await?;
                }
            }
        }
        tx.commit().await?;
        self.advance(&conn).await?;
        Ok(())
    }
}
