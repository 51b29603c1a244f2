//! Housekeeping that runs beside the API: expiring idempotency keys after their retention
//! period (clients may retry with the same key within it; after it, the key is forgotten).

use std::time::Duration;

use crate::Core;

/// Rows deleted per unit, so that a purge never holds the writer for long.
const PURGE_ROWS_MAX: i64 = 5_000;

#[derive(Debug, Clone)]
pub struct MaintenanceOptions {
    pub idempotency_retention_ms: i64,
    pub idempotency_stale_ms: i64,
    pub interval: Duration,
}

impl Core {
    /// One purge pass; returns the keys deleted.
    pub async fn purge_idempotency_keys(
        &self,
        options: &MaintenanceOptions,
    ) -> Result<u64, crate::CoreError> {
        let now = self.clock().now();
        let completed_before = now.plus_ms(-options.idempotency_retention_ms);
        let abandoned_before =
            now.plus_ms(-options.idempotency_stale_ms.max(options.idempotency_retention_ms));
        let mut total = 0;
        loop {
            let deleted = self
                .store()
                .purge_idempotency_keys(completed_before, abandoned_before, PURGE_ROWS_MAX)
                .await?;
            total += deleted;
            if deleted < PURGE_ROWS_MAX as u64 {
                return Ok(total);
            }
        }
    }

    /// Runs maintenance every `interval` until the task is dropped.
    pub async fn run_maintenance(self, options: MaintenanceOptions) {
        let mut ticker = tokio::time::interval(options.interval);
        loop {
            ticker.tick().await;
            match self.purge_idempotency_keys(&options).await {
                Ok(0) => {}
                Ok(deleted) => tracing::info!(deleted, "expired idempotency keys purged"),
                Err(error) => tracing::warn!(%error, "idempotency key purge failed"),
            }
        }
    }
}
