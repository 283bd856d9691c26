//! The config version of the cluster: the sequence `config_version`, advanced by a
//! node after it reloaded its config, read by the others (every `watch_every`), which
//! then reload theirs. Every node reads the same `feeds.toml`: a reload asked of one
//! node (SIGHUP, `systemctl reload`, an edit it watches) reaches them all.

use super::super::StoreError;
use super::Postgres;

impl Postgres {
    pub(super) async fn read_config_version(&self) -> Result<u64, StoreError> {
        let conn = self.conn().await?;
        let row = conn
            .query_one("SELECT last_value, is_called FROM config_version", &[])
            .await?;
        let (value, called): (i64, bool) = (row.get(0), row.get(1));
        Ok(if called { value as u64 } else { 0 })
    }

    pub(super) async fn advance_config_version(&self) -> Result<u64, StoreError> {
        let conn = self.conn().await?;
        let row = conn
            .query_one("SELECT nextval('config_version')", &[])
            .await?;
        Ok(row.get::<_, i64>(0) as u64)
    }
}
