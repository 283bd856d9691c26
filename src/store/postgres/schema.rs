//! The schema, created and migrated by the daemon: numbered migrations, each applied
//! once in its own transaction and recorded in `schema_migrations`, under a
//! session-level advisory lock so that nodes starting together wait for each other
//! instead of racing.
//!
//! The tables mirror sled's trees, with the same keys and values (so `migrate-store`
//! copies bytes and items sort the same way in both), plus the columns SQL needs to
//! count and expire without decoding: each identity's `source`, each item's `source`.

use tokio_postgres::GenericClient;

use super::super::StoreError;

/// Key of the advisory lock held while migrating ("tributary" in ASCII, trimmed).
const MIGRATION_LOCK: i64 = 0x7472_6962_7574;
/// Partitions of the sources by host, fixed at creation (stored in `meta`).
pub const PARTITIONS: u32 = 256;

/// The migrations, oldest first; a version is never edited once released.
const MIGRATIONS: &[(i32, &str)] = &[
    (
        1,
        "CREATE TABLE items (
        key bytea PRIMARY KEY,
        source text NOT NULL,
        body bytea NOT NULL
    );
    CREATE TABLE ids (
        identity bytea PRIMARY KEY,
        source text NOT NULL,
        value bytea NOT NULL
    );
    CREATE INDEX ids_by_source ON ids (source);
    CREATE TABLE links (link bytea PRIMARY KEY, owner bytea NOT NULL);
    CREATE TABLE aliases (alias bytea PRIMARY KEY, owner bytea NOT NULL);
    CREATE TABLE sources (id text PRIMARY KEY, state bytea NOT NULL);
    CREATE TABLE meta (name bytea PRIMARY KEY, value bytea NOT NULL);
    CREATE SEQUENCE changes;
    CREATE TABLE nodes (id text PRIMARY KEY, seen_at timestamptz NOT NULL);
    CREATE TABLE leases (
        part integer PRIMARY KEY,
        owner text,
        epoch bigint NOT NULL DEFAULT 0,
        expires_at timestamptz NOT NULL DEFAULT '-infinity'
    );
    INSERT INTO leases (part) SELECT generate_series(0, 255);
    INSERT INTO meta (name, value) VALUES ('partitions', int4send(256));",
    ),
    (
        2,
        "CREATE TABLE side (
        tab text NOT NULL,
        key bytea NOT NULL,
        value bytea NOT NULL,
        PRIMARY KEY (tab, key)
    );",
    ),
    // `forgotten`: advanced after every write that forgets an identity (see
    // `forgetting.rs`); `config_version`: after every reload of a node's config, for
    // the others to reload theirs (see `config_version.rs`).
    (
        3,
        "CREATE SEQUENCE forgotten;
    CREATE SEQUENCE config_version;",
    ),
];

/// The newest schema version this build knows.
pub fn latest_version() -> i32 {
    MIGRATIONS.last().map_or(0, |(version, _)| *version)
}

/// Brings the schema up to date; returns the versions it applied. Safe to run from
/// several nodes at once.
pub async fn migrate(client: &mut tokio_postgres::Client) -> Result<Vec<i32>, StoreError> {
    client
        .execute("SELECT pg_advisory_lock($1)", &[&MIGRATION_LOCK])
        .await?;
    let result = apply(client).await;
    let unlock = client
        .execute("SELECT pg_advisory_unlock($1)", &[&MIGRATION_LOCK])
        .await;
    let applied = result?;
    unlock?;
    Ok(applied)
}

async fn apply(client: &mut tokio_postgres::Client) -> Result<Vec<i32>, StoreError> {
    client
        .batch_execute(
            "CREATE TABLE IF NOT EXISTS schema_migrations (
                version integer PRIMARY KEY,
                applied_at timestamptz NOT NULL DEFAULT now()
            )",
        )
        .await?;
    let current = current_version(client).await?;
    if current > latest_version() {
        return Err(StoreError::SchemaTooNew {
            found: current,
            known: latest_version(),
        });
    }
    let mut applied = Vec::new();
    for (version, sql) in MIGRATIONS.iter().filter(|(v, _)| *v > current) {
        let tx = client.transaction().await?;
        tx.batch_execute(sql).await?;
        tx.execute(
            "INSERT INTO schema_migrations (version) VALUES ($1)",
            &[version],
        )
        .await?;
        tx.commit().await?;
        applied.push(*version);
    }
    Ok(applied)
}

/// The version the database is at; 0 when none was applied.
pub async fn current_version(client: &impl GenericClient) -> Result<i32, StoreError> {
    let row = client
        .query_one(
            "SELECT coalesce(max(version), 0) FROM schema_migrations",
            &[],
        )
        .await?;
    Ok(row.get(0))
}
