//! The migration engine's writes to the core (DESIGN.md §6, issue 5): its per-merchant state
//! and checkpoint, batches of legacy rows applied with their checkpoint in one unit, the
//! quarantine, verification reports, and the cutover unit that applies the last changes and
//! flips the owner together with the merchant's state.
//!
//! Every unit first checks (and on PostgreSQL locks) the merchant's migration row in the state
//! the engine believes it is in: a second engine, an operator's rollback or a crash-restarted
//! run working on stale state finds a conflict and changes nothing. The checkpoint moves in the
//! same unit as the rows it covers, so it never runs ahead of what the core holds.

use std::collections::HashSet;

use jembatan_domain::MerchantId;
use jembatan_domain::migration::MigrationState;

use crate::catalogue::SocialProductCopy;
use crate::db::{Conn, Row, lock_clause, q};
use crate::error::StoreError;
use crate::exec::{Store, WriteCtx};
use crate::import::{Imported, ImportedOrder, import_orders};
use crate::journal::{self, Change};
use crate::migration::{MERCHANT_COLUMNS, MigrationMerchantRecord, decode_merchant};
use crate::rows;
use crate::social::Owner;

/// The cutover's check of the rows it applied, on the core as the unit sees them.
/// Compares what the spot check read with what it expected: the differences as JSON text.
pub type SpotCheckFn = Box<dyn Fn(&CoreView) -> Option<String> + Send + Sync>;

pub struct SpotCheck {
    /// The social ids of the products and orders to read back (the last changes').
    pub products: Vec<String>,
    pub orders: Vec<String>,
    /// The differences between what was read and what was expected, as JSON text, if any.
    pub check: SpotCheckFn,
}

/// How a conflict of a failed spot check starts; the differences (JSON) follow.
pub const SPOT_CHECK_FAILED: &str = "the cutover's spot check found differences: ";

/// What a quarantined row is.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, PartialOrd, Ord)]
pub enum QuarantineEntity {
    Product,
    Order,
}

impl QuarantineEntity {
    pub fn as_str(self) -> &'static str {
        match self {
            QuarantineEntity::Product => "product",
            QuarantineEntity::Order => "order",
        }
    }

    pub fn parse(raw: &str) -> Result<QuarantineEntity, jembatan_domain::DomainError> {
        match raw {
            "product" => Ok(QuarantineEntity::Product),
            "order" => Ok(QuarantineEntity::Order),
            _ => Err(jembatan_domain::DomainError::invalid("entity", "must be `product` or `order`")),
        }
    }
}

/// A legacy row the core cannot take, with why and the raw row.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct QuarantineEntry {
    pub entity: QuarantineEntity,
    pub legacy_key: String,
    /// Defect kinds, comma-separated (`ambiguous-price,negative-stock`).
    pub kinds: String,
    pub reason: String,
    /// The legacy row as JSON text.
    pub raw: String,
}

#[derive(Debug, Clone, PartialEq, Eq)]
pub struct QuarantineRecord {
    pub merchant_id: MerchantId,
    pub shop_id: String,
    pub entity: QuarantineEntity,
    pub legacy_key: String,
    pub kinds: String,
    pub reason: String,
    pub raw: String,
    /// `open`, `resolved` or `accepted`.
    pub state: String,
    pub created_at_ms: i64,
    pub updated_at_ms: i64,
}

/// Legacy rows applied in one unit, with where the engine stands after them.
#[derive(Debug, Clone, Default)]
pub struct MigrationBatch {
    pub products: Vec<SocialProductCopy>,
    pub orders: Vec<ImportedOrder>,
    pub quarantine: Vec<QuarantineEntry>,
    /// Rows applied cleanly now whose earlier quarantine entry is resolved by it.
    pub resolved: Vec<(QuarantineEntity, String)>,
    /// Legacy row versions this batch applies (for progress by rows).
    pub rows: u64,
    pub checkpoint: String,
}

/// What a verification found, as stored.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct VerificationRecord {
    pub merchant_id: MerchantId,
    pub verification_id: String,
    /// `before_cutover` or `after_cutover`.
    pub phase: String,
    pub matched: bool,
    pub legacy_rows: u64,
    pub core_rows: u64,
    pub differences: u64,
    pub report: serde_json::Value,
    pub created_at_ms: i64,
}

/// A copied product as the core holds it, by its social ids.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct CoreProductRow {
    pub social_product_id: String,
    pub title: String,
    pub category: String,
    pub listed: bool,
    /// (social SKU id, code, price, units available), by social SKU id.
    pub skus: Vec<(String, String, i64, i64)>,
}

/// An order of the merchant as the core holds it, by its social ids.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct CoreOrderRow {
    pub social_order_id: String,
    pub status: String,
    pub total_idr: i64,
    pub payment_method: String,
    pub recipient_phone: String,
    /// A twin: its payment is the core's, and the core may be ahead of the legacy row.
    pub has_payment: bool,
    /// (social SKU id, quantity, unit price), in line order.
    pub lines: Vec<(String, i64, i64)>,
}

/// The whole of one merchant in the core, as the verifier compares it.
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub struct CoreView {
    pub products: Vec<CoreProductRow>,
    pub orders: Vec<CoreOrderRow>,
}

/// Changes to a merchant's migration row besides its state.
#[derive(Debug, Clone, Default)]
pub struct Progress {
    pub snapshot_position: Option<i64>,
    pub checkpoint: Option<String>,
    /// `Some(None)` clears it.
    pub last_error: Option<Option<String>>,
    pub attempt: bool,
    pub started: bool,
}

impl Store {
    pub async fn migration_merchant(
        &self,
        merchant_id: MerchantId,
    ) -> Result<Option<MigrationMerchantRecord>, StoreError> {
        self.read(move |conn| {
            Box::pin(async move {
                q(format!("SELECT {MERCHANT_COLUMNS} FROM migration_merchants WHERE merchant_id = $1"))
                    .bind(merchant_id.to_string())
                    .fetch_optional(conn)
                    .await?
                    .as_ref()
                    .map(decode_merchant)
                    .transpose()
            })
        })
        .await
    }

    /// Merchants the engine has work for, in merchant id order after `after`: not finished,
    /// not stopped for the operator, not cut over, in a wave that is not paused.
    pub async fn migration_work(
        &self,
        wave: Option<String>,
        after: String,
        limit: u32,
    ) -> Result<Vec<MigrationMerchantRecord>, StoreError> {
        self.read(move |conn| {
            Box::pin(async move {
                let columns =
                    MERCHANT_COLUMNS.split(", ").map(|c| format!("m.{c}")).collect::<Vec<_>>().join(", ");
                q(format!(
                    "SELECT {columns} FROM migration_merchants m JOIN migration_waves w ON w.name = m.wave
                     WHERE w.paused = 0 AND m.state IN ('legacy', 'copying', 'catching_up', 'verified', 'fenced')
                       AND ($1 = '' OR m.wave = $1) AND m.merchant_id > $2
                     ORDER BY m.merchant_id LIMIT $3"
                ))
                .bind(wave.unwrap_or_default())
                .bind(after)
                .bind(i64::from(limit))
                .fetch_all(conn)
                .await?
                .iter()
                .map(decode_merchant)
                .collect()
            })
        })
        .await
    }

    /// Moves a merchant's migration from `from` to `to` (a transition of the state machine),
    /// with its progress, and journals it.
    pub async fn set_migration_state(
        &self,
        ctx: WriteCtx,
        merchant_id: MerchantId,
        from: MigrationState,
        to: MigrationState,
        progress: Progress,
    ) -> Result<MigrationMerchantRecord, StoreError> {
        self.write(None, move |conn| {
            Box::pin(async move { move_state(conn, &ctx, merchant_id, from, to, progress).await })
        })
        .await
    }

    /// Applies a batch of legacy rows and moves the checkpoint, in one unit. Orders the core
    /// refuses are quarantined in the same unit. The merchant must be in `state`.
    pub async fn apply_migration_batch(
        &self,
        ctx: WriteCtx,
        merchant_id: MerchantId,
        state: MigrationState,
        batch: MigrationBatch,
    ) -> Result<Vec<Imported>, StoreError> {
        self.apply_migration_batch_then(ctx, merchant_id, state, batch, None).await
    }

    /// [`Store::apply_migration_batch`], then, in the same unit, the merchant's move to the
    /// next state (the last batch of a copy and the start of its catch-up commit together).
    pub async fn apply_migration_batch_then(
        &self,
        ctx: WriteCtx,
        merchant_id: MerchantId,
        state: MigrationState,
        batch: MigrationBatch,
        then: Option<(MigrationState, Progress)>,
    ) -> Result<Vec<Imported>, StoreError> {
        self.write(None, move |conn| {
            let then = then.clone();
            Box::pin(async move {
                let record = lock_merchant(conn, merchant_id, state).await?;
                let outcomes = apply(conn, &ctx, &record, batch.clone()).await?;
                q("UPDATE migration_merchants SET checkpoint = $2, rows_copied = rows_copied + $3, updated_at_ms = $4
                   WHERE merchant_id = $1")
                .bind(merchant_id.to_string())
                .bind(batch.checkpoint)
                .bind(batch.rows as i64)
                .bind(ctx.now.unix_ms())
                .execute(&mut *conn)
                .await?;
                if let Some((to, progress)) = then {
                    move_state(conn, &ctx, merchant_id, state, to, progress).await?;
                }
                Ok(outcomes)
            })
        })
        .await
    }

    /// The cutover, in one unit: the last rows applied and read back through `spot_check`
    /// (a difference, as JSON text, rolls the unit back with a conflict starting with
    /// [`SPOT_CHECK_FAILED`]), the owner flipped from `migrating` to `core` (see
    /// [`crate::social::complete_move`]), the merchant `cut_over` with its measured pause. All
    /// of it commits or none.
    pub async fn migration_cut_over(
        &self,
        ctx: WriteCtx,
        merchant_id: MerchantId,
        batch: MigrationBatch,
        legacy_cancelled: Vec<String>,
        pause_us: i64,
        spot_check: SpotCheck,
    ) -> Result<Vec<Imported>, StoreError> {
        let spot_check = std::sync::Arc::new(spot_check);
        self.write(None, move |conn| {
            let spot_check = spot_check.clone();
            Box::pin(async move {
                let record = lock_merchant(conn, merchant_id, MigrationState::Fenced).await?;
                let outcomes = apply(conn, &ctx, &record, batch.clone()).await?;
                let view =
                    core_view(conn, merchant_id, Some((&spot_check.products, &spot_check.orders))).await?;
                if let Some(differences) = (spot_check.check)(&view) {
                    return Err(StoreError::Conflict(format!("{SPOT_CHECK_FAILED}{differences}")));
                }
                crate::social::complete_move(conn, &ctx, &record.shop_id, legacy_cancelled).await?;
                q("UPDATE migration_merchants SET rows_copied = rows_copied + $2, cutover_pause_us = $3,
                          cut_over_at_ms = $4, checkpoint = $5 WHERE merchant_id = $1")
                .bind(merchant_id.to_string())
                .bind(batch.rows as i64)
                .bind(pause_us)
                .bind(ctx.now.unix_ms())
                .bind(batch.checkpoint)
                .execute(&mut *conn)
                .await?;
                move_state(
                    conn,
                    &ctx,
                    merchant_id,
                    MigrationState::Fenced,
                    MigrationState::CutOver,
                    Progress { last_error: Some(None), ..Progress::default() },
                )
                .await?;
                Ok(outcomes)
            })
        })
        .await
    }

    /// The merchant's rows in the core by their social ids, for the verifier.
    pub async fn migration_core_view(&self, merchant_id: MerchantId) -> Result<CoreView, StoreError> {
        self.read(move |conn| Box::pin(async move { core_view(conn, merchant_id, None).await })).await
    }

    pub async fn record_verification(
        &self,
        ctx: WriteCtx,
        record: VerificationRecord,
    ) -> Result<(), StoreError> {
        self.record_verification_and_pause(ctx, record, None).await
    }

    /// A verification and, for the cutover's spot check, the pause measured once the cutover
    /// committed (the cutover's unit stores the pause up to its own start), in one unit.
    pub async fn record_verification_and_pause(
        &self,
        ctx: WriteCtx,
        record: VerificationRecord,
        pause_us: Option<i64>,
    ) -> Result<(), StoreError> {
        self.write(None, move |conn| {
            Box::pin(async move {
                if let Some(pause_us) = pause_us {
                    q("UPDATE migration_merchants SET cutover_pause_us = $2 WHERE merchant_id = $1 AND state = 'cut_over'")
                        .bind(record.merchant_id.to_string())
                        .bind(pause_us)
                        .execute(&mut *conn)
                        .await?;
                }
                q("INSERT INTO migration_verifications (merchant_id, verification_id, phase, matched, legacy_rows,
                       core_rows, differences, report, created_at_ms)
                   VALUES ($1, $2, $3, $4, $5, $6, $7, $8, $9)")
                .bind(record.merchant_id.to_string())
                .bind(record.verification_id.clone())
                .bind(record.phase.clone())
                .bind(i64::from(record.matched))
                .bind(record.legacy_rows as i64)
                .bind(record.core_rows as i64)
                .bind(record.differences as i64)
                .bind(record.report.to_string())
                .bind(record.created_at_ms)
                .execute(&mut *conn)
                .await?;
                let change = Change {
                    event_type: "migration_merchant.verified",
                    action: "migration_merchant.verify",
                    entity_type: "migration_merchant",
                    entity_id: record.merchant_id.to_string(),
                    merchant_id: Some(record.merchant_id),
                    channel: None,
                    payload: serde_json::json!({
                        "verification_id": record.verification_id, "phase": record.phase,
                        "matched": record.matched, "legacy_rows": record.legacy_rows,
                        "core_rows": record.core_rows, "differences": record.differences,
                    }),
                };
                journal::record(conn, &ctx, change).await
            })
        })
        .await
    }

    /// A merchant's verifications, newest first.
    pub async fn verifications(
        &self,
        merchant_id: MerchantId,
    ) -> Result<Vec<VerificationRecord>, StoreError> {
        self.read(move |conn| {
            Box::pin(async move {
                q("SELECT * FROM migration_verifications WHERE merchant_id = $1
                   ORDER BY created_at_ms DESC, verification_id DESC")
                .bind(merchant_id.to_string())
                .fetch_all(conn)
                .await?
                .iter()
                .map(decode_verification)
                .collect()
            })
        })
        .await
    }

    /// Quarantined rows, by merchant and key after `after` (merchant id, entity, key); all
    /// states or one.
    pub async fn quarantined(
        &self,
        merchant_id: Option<MerchantId>,
        state: Option<String>,
        after: (String, String, String),
        limit: u32,
    ) -> Result<Vec<QuarantineRecord>, StoreError> {
        self.read(move |conn| {
            Box::pin(async move {
                // Each filter is in the SQL only when given, and the keyset starts with a plain
                // range on `merchant_id`, so the primary key bounds the walk (an `$1 = '' OR …`
                // form read the whole table, once per merchant the engine moved).
                let merchant_filter = if merchant_id.is_some() { "merchant_id = $1" } else { "$1 = ''" };
                let state_filter = if state.is_some() { "state = $2" } else { "$2 = ''" };
                q(format!(
                    "SELECT * FROM migration_quarantine
                     WHERE {merchant_filter} AND {state_filter} AND merchant_id >= $3
                       AND (merchant_id > $3 OR (entity > $4 OR (entity = $4 AND legacy_key > $5)))
                     ORDER BY merchant_id, entity, legacy_key LIMIT $6"
                ))
                .bind(merchant_id.map(|m| m.to_string()).unwrap_or_default())
                .bind(state.unwrap_or_default())
                .bind(after.0)
                .bind(after.1)
                .bind(after.2)
                .bind(i64::from(limit))
                .fetch_all(conn)
                .await?
                .iter()
                .map(decode_quarantine)
                .collect()
            })
        })
        .await
    }

    /// Quarantine counts by state: (open, resolved, accepted), of one merchant or all.
    pub async fn quarantine_counts(
        &self,
        merchant_id: Option<MerchantId>,
    ) -> Result<(u64, u64, u64), StoreError> {
        self.read(move |conn| {
            Box::pin(async move {
                let rows = match merchant_id {
                    Some(merchant) => q("SELECT state, COUNT(*) AS n FROM migration_quarantine
                                         WHERE merchant_id = $1 GROUP BY state")
                    .bind(merchant.to_string()),
                    None => q("SELECT state, COUNT(*) AS n FROM migration_quarantine GROUP BY state"),
                }
                .fetch_all(conn)
                .await?;
                let mut counts = (0, 0, 0);
                for row in rows {
                    let n = rows::int(&row, "n")? as u64;
                    match rows::text(&row, "state")?.as_str() {
                        "open" => counts.0 = n,
                        "resolved" => counts.1 = n,
                        _ => counts.2 = n,
                    }
                }
                Ok(counts)
            })
        })
        .await
    }

    /// The operator accepts moving a merchant without these open quarantined rows (audited
    /// with the reason given). Returns how many rows it accepted.
    pub async fn accept_quarantine(
        &self,
        ctx: WriteCtx,
        merchant_id: MerchantId,
        keys: Option<Vec<(QuarantineEntity, String)>>,
        reason: String,
    ) -> Result<u64, StoreError> {
        self.write(None, move |conn| {
            Box::pin(async move {
                let open = q("SELECT entity, legacy_key FROM migration_quarantine
                              WHERE merchant_id = $1 AND state = 'open' ORDER BY entity, legacy_key")
                .bind(merchant_id.to_string())
                .fetch_all(&mut *conn)
                .await?;
                let mut accepted = Vec::new();
                for row in &open {
                    let entity = rows::parsed("entity", QuarantineEntity::parse(&rows::text(row, "entity")?))?;
                    let key = rows::text(row, "legacy_key")?;
                    if keys.as_ref().is_none_or(|keys| keys.iter().any(|(e, k)| *e == entity && *k == key)) {
                        accepted.push((entity, key));
                    }
                }
                if let Some(keys) = &keys
                    && let Some((entity, key)) = keys.iter().find(|k| !accepted.contains(k))
                {
                    return Err(StoreError::not_found("open quarantined row", format!("{} {key}", entity.as_str())));
                }
                for (entity, key) in &accepted {
                    q("UPDATE migration_quarantine SET state = 'accepted', updated_at_ms = $4
                       WHERE merchant_id = $1 AND entity = $2 AND legacy_key = $3")
                    .bind(merchant_id.to_string())
                    .bind(entity.as_str())
                    .bind(key.clone())
                    .bind(ctx.now.unix_ms())
                    .execute(&mut *conn)
                    .await?;
                }
                let change = Change {
                    event_type: "migration_quarantine.accepted",
                    action: "migration_quarantine.accept",
                    entity_type: "migration_merchant",
                    entity_id: merchant_id.to_string(),
                    merchant_id: Some(merchant_id),
                    channel: None,
                    payload: serde_json::json!({
                        "reason": reason,
                        "rows": accepted.iter().map(|(e, k)| serde_json::json!({"entity": e.as_str(), "legacy_key": k})).collect::<Vec<_>>(),
                    }),
                };
                journal::record(conn, &ctx, change).await?;
                Ok(accepted.len() as u64)
            })
        })
        .await
    }
}

async fn lock_merchant(
    conn: &mut dyn Conn,
    merchant_id: MerchantId,
    state: MigrationState,
) -> Result<MigrationMerchantRecord, StoreError> {
    let sql = format!(
        "SELECT {MERCHANT_COLUMNS} FROM migration_merchants WHERE merchant_id = $1{}",
        lock_clause(conn, true)
    );
    let record = q(sql)
        .bind(merchant_id.to_string())
        .fetch_optional(&mut *conn)
        .await?
        .as_ref()
        .map(decode_merchant)
        .transpose()?
        .ok_or_else(|| StoreError::not_found("migration merchant", merchant_id))?;
    if record.state != state {
        return Err(StoreError::Conflict(format!(
            "merchant {merchant_id}'s migration is {}, not {}: nothing changed",
            record.state,
            state.as_str()
        )));
    }
    Ok(record)
}

async fn move_state(
    conn: &mut dyn Conn,
    ctx: &WriteCtx,
    merchant_id: MerchantId,
    from: MigrationState,
    to: MigrationState,
    progress: Progress,
) -> Result<MigrationMerchantRecord, StoreError> {
    let record = lock_merchant(conn, merchant_id, from).await?;
    if !from.can_move_to(to) {
        return Err(StoreError::Conflict(format!(
            "merchant {merchant_id}'s migration cannot go from {from} to {to}"
        )));
    }
    let now_ms = ctx.now.unix_ms();
    q("UPDATE migration_merchants SET state = $2, updated_at_ms = $3,
              snapshot_position = COALESCE($4, snapshot_position),
              checkpoint = CASE WHEN $5 = 1 THEN $6 ELSE checkpoint END,
              last_error = CASE WHEN $7 = 1 THEN $8 ELSE last_error END,
              attempts = attempts + $9,
              started_at_ms = CASE WHEN $10 = 1 THEN $3 ELSE started_at_ms END
       WHERE merchant_id = $1")
    .bind(merchant_id.to_string())
    .bind(to.as_str())
    .bind(now_ms)
    .bind(progress.snapshot_position)
    .bind(i64::from(progress.checkpoint.is_some()))
    .bind(progress.checkpoint.clone())
    .bind(i64::from(progress.last_error.is_some()))
    .bind(progress.last_error.clone().flatten())
    .bind(i64::from(progress.attempt))
    .bind(i64::from(progress.started))
    .execute(&mut *conn)
    .await?;
    if from != to {
        let change = Change {
            event_type: "migration_merchant.state_changed",
            action: "migration_merchant.set_state",
            entity_type: "migration_merchant",
            entity_id: merchant_id.to_string(),
            merchant_id: Some(merchant_id),
            channel: None,
            payload: serde_json::json!({
                "merchant_id": merchant_id.to_string(), "shop_id": record.shop_id,
                "from": from.as_str(), "to": to.as_str(),
                "error": progress.last_error.flatten(),
            }),
        };
        journal::record(&mut *conn, ctx, change).await?;
    }
    let sql = format!("SELECT {MERCHANT_COLUMNS} FROM migration_merchants WHERE merchant_id = $1");
    decode_merchant(&q(sql).bind(merchant_id.to_string()).fetch_one(conn).await?)
}

async fn apply(
    conn: &mut dyn Conn,
    ctx: &WriteCtx,
    record: &MigrationMerchantRecord,
    batch: MigrationBatch,
) -> Result<Vec<Imported>, StoreError> {
    let now_ms = ctx.now.unix_ms();
    crate::catalogue::put_social_products(conn, ctx, batch.products).await?;
    let mut quarantine = batch.quarantine;
    let mut resolved = batch.resolved;
    let keys: Vec<String> = batch.orders.iter().map(|o| o.social_order_id.clone()).collect();
    let outcomes = import_orders(conn, ctx, record.merchant_id, batch.orders).await?;
    for (key, outcome) in keys.into_iter().zip(&outcomes) {
        match outcome {
            Imported::Refused(reason) => quarantine.push(QuarantineEntry {
                entity: QuarantineEntity::Order,
                raw: serde_json::json!({"order_id": key}).to_string(),
                legacy_key: key,
                kinds: "core-refused".to_owned(),
                reason: reason.clone(),
            }),
            _ => resolved.push((QuarantineEntity::Order, key)),
        }
    }
    for entry in quarantine {
        // A row quarantined again unchanged keeps its state (an operator's acceptance stands);
        // a changed row is open again.
        q("INSERT INTO migration_quarantine (merchant_id, entity, legacy_key, shop_id, kinds, reason, raw, state,
               created_at_ms, updated_at_ms)
           VALUES ($1, $2, $3, $4, $5, $6, $7, 'open', $8, $8)
           ON CONFLICT (merchant_id, entity, legacy_key) DO UPDATE SET kinds = excluded.kinds,
               reason = excluded.reason, updated_at_ms = excluded.updated_at_ms,
               state = CASE WHEN migration_quarantine.raw = excluded.raw AND migration_quarantine.state <> 'resolved'
                            THEN migration_quarantine.state ELSE 'open' END,
               raw = excluded.raw")
        .bind(record.merchant_id.to_string())
        .bind(entry.entity.as_str())
        .bind(entry.legacy_key)
        .bind(record.shop_id.clone())
        .bind(entry.kinds)
        .bind(entry.reason)
        .bind(entry.raw)
        .bind(now_ms)
        .execute(&mut *conn)
        .await?;
    }
    // Rows copied cleanly close their quarantine entries, if they had any: the merchant's open
    // entries are read once (almost always none) instead of one update per copied row.
    let open: HashSet<(String, String)> = if resolved.is_empty() {
        HashSet::new()
    } else {
        q("SELECT entity, legacy_key FROM migration_quarantine WHERE merchant_id = $1 AND state <> 'resolved'")
            .bind(record.merchant_id.to_string())
            .fetch_all(&mut *conn)
            .await?
            .iter()
            .map(|r| Ok((rows::text(r, "entity")?, rows::text(r, "legacy_key")?)))
            .collect::<Result<_, StoreError>>()?
    };
    for (entity, key) in resolved {
        if !open.contains(&(entity.as_str().to_owned(), key.clone())) {
            continue;
        }
        q("UPDATE migration_quarantine SET state = 'resolved', updated_at_ms = $4
           WHERE merchant_id = $1 AND entity = $2 AND legacy_key = $3 AND state <> 'resolved'")
        .bind(record.merchant_id.to_string())
        .bind(entity.as_str())
        .bind(key)
        .bind(now_ms)
        .execute(&mut *conn)
        .await?;
    }
    Ok(outcomes)
}

/// `AND column IN ($2, …)` for the keys of a keyed view, or nothing for a whole view.
fn only_keys(column: &str, keys: Option<&[String]>) -> String {
    match keys {
        Some(keys) => {
            let list: Vec<String> = (0..keys.len()).map(|i| format!("${}", i + 2)).collect();
            format!(" AND {column} IN ({})", list.join(", "))
        }
        None => String::new(),
    }
}

/// A merchant's query bound with the keys of a keyed view, if any.
fn with_keys(sql: String, merchant: &str, keys: Option<&[String]>) -> crate::db::Query {
    let mut query = q(sql).bind(merchant.to_owned());
    for key in keys.unwrap_or_default() {
        query = query.bind(key.clone());
    }
    query
}

async fn core_products(
    conn: &mut dyn Conn,
    merchant_id: MerchantId,
    only: Option<&[String]>,
) -> Result<Vec<CoreProductRow>, StoreError> {
    if only.is_some_and(|keys| keys.is_empty()) {
        return Ok(Vec::new());
    }
    let merchant = merchant_id.to_string();
    // The id map is joined by `core_id` alone (unique over every kind): with `kind = …` in the
    // join, SQLite's planner walked every id of that kind first, once per merchant — a cost
    // that grew with the whole shop and dominated the migration's profile.
    let products = with_keys(
        format!(
            "SELECT s.social_id, p.title, p.category, p.listed FROM products p
             JOIN social_ids s ON s.core_id = p.product_id
             WHERE p.merchant_id = $1{} ORDER BY s.social_id",
            only_keys("s.social_id", only)
        ),
        &merchant,
        only,
    )
    .fetch_all(&mut *conn)
    .await?;
    let skus = with_keys(
        format!(
            "SELECT ps.social_id AS product, s.social_id AS sku, k.code, k.price_idr,
                    k.stock_on_hand - k.stock_reserved AS available
             FROM skus k
             JOIN social_ids s ON s.core_id = k.sku_id
             JOIN social_ids ps ON ps.core_id = k.product_id
             WHERE k.merchant_id = $1{} ORDER BY ps.social_id, s.social_id",
            only_keys("ps.social_id", only)
        ),
        &merchant,
        only,
    )
    .fetch_all(&mut *conn)
    .await?;
    let mut skus = by_key(&skus, "product")?;
    let mut out_products = Vec::with_capacity(products.len());
    for p in &products {
        let social = rows::text(p, "social_id")?;
        let skus = skus
            .remove(&social)
            .unwrap_or_default()
            .into_iter()
            .map(|s| {
                Ok((
                    rows::text(s, "sku")?,
                    rows::text(s, "code")?,
                    rows::int(s, "price_idr")?,
                    rows::int(s, "available")?,
                ))
            })
            .collect::<Result<_, StoreError>>()?;
        out_products.push(CoreProductRow {
            social_product_id: social,
            title: rows::text(p, "title")?,
            category: rows::text(p, "category")?,
            listed: rows::int(p, "listed")? == 1,
            skus,
        });
    }
    Ok(out_products)
}

/// A merchant's rows in the core by their social ids: all of them, or (`only`) those of the
/// given products' and orders' social ids — the cutover's spot check reads just the rows of the
/// last changes inside its unit, not the whole shop.
async fn core_view(
    conn: &mut dyn Conn,
    merchant_id: MerchantId,
    only: Option<(&[String], &[String])>,
) -> Result<CoreView, StoreError> {
    let (only_products, only_orders) = match only {
        Some((products, orders)) => (Some(products), Some(orders)),
        None => (None, None),
    };
    let mut view =
        CoreView { products: core_products(conn, merchant_id, only_products).await?, orders: Vec::new() };
    if only_orders.is_some_and(|keys| keys.is_empty()) {
        return Ok(view);
    }
    let merchant = merchant_id.to_string();
    let orders = with_keys(
        format!(
            "SELECT s.social_id, o.status, o.total_idr, o.payment_method, o.recipient_phone,
                    CASE WHEN EXISTS (SELECT 1 FROM payments y WHERE y.checkout_id = o.checkout_id) THEN 1 ELSE 0 END AS has_payment
             FROM orders o JOIN social_ids s ON s.core_id = o.order_id
             WHERE o.merchant_id = $1{} ORDER BY s.social_id",
            only_keys("s.social_id", only_orders)
        ),
        &merchant,
        only_orders,
    )
    .fetch_all(&mut *conn)
    .await?;
    let lines = with_keys(
        format!(
            "SELECT os.social_id AS social_order, ks.social_id AS sku, l.quantity, l.unit_price_idr
             FROM order_lines l
             JOIN social_ids os ON os.core_id = l.order_id
             JOIN social_ids ks ON ks.core_id = l.sku_id
             WHERE l.merchant_id = $1{} ORDER BY os.social_id, l.line_no",
            only_keys("os.social_id", only_orders)
        ),
        &merchant,
        only_orders,
    )
    .fetch_all(&mut *conn)
    .await?;
    let mut lines = by_key(&lines, "social_order")?;
    for o in &orders {
        let social = rows::text(o, "social_id")?;
        let lines = lines
            .remove(&social)
            .unwrap_or_default()
            .into_iter()
            .map(|l| Ok((rows::text(l, "sku")?, rows::int(l, "quantity")?, rows::int(l, "unit_price_idr")?)))
            .collect::<Result<_, StoreError>>()?;
        view.orders.push(CoreOrderRow {
            social_order_id: social,
            status: rows::text(o, "status")?,
            total_idr: rows::int(o, "total_idr")?,
            payment_method: rows::text(o, "payment_method")?,
            recipient_phone: rows::text(o, "recipient_phone")?,
            has_payment: rows::int(o, "has_payment")? == 1,
            lines,
        });
    }
    Ok(view)
}

/// Child rows grouped by a key column, in their query order (lines of an order, SKUs of a
/// product).
fn by_key<'r>(
    rows: &'r [Row],
    key: &str,
) -> Result<std::collections::HashMap<String, Vec<&'r Row>>, StoreError> {
    let mut out: std::collections::HashMap<String, Vec<&Row>> = std::collections::HashMap::new();
    for row in rows {
        out.entry(rows::text(row, key)?).or_default().push(row);
    }
    Ok(out)
}

fn decode_verification(r: &Row) -> Result<VerificationRecord, StoreError> {
    Ok(VerificationRecord {
        merchant_id: rows::id(r, "merchant_id")?,
        verification_id: r.text("verification_id")?,
        phase: r.text("phase")?,
        matched: r.int("matched")? == 1,
        legacy_rows: r.int("legacy_rows")? as u64,
        core_rows: r.int("core_rows")? as u64,
        differences: r.int("differences")? as u64,
        report: serde_json::from_str(&r.text("report")?)
            .map_err(|e| StoreError::Conflict(format!("a stored verification report is not JSON: {e}")))?,
        created_at_ms: r.int("created_at_ms")?,
    })
}

fn decode_quarantine(r: &Row) -> Result<QuarantineRecord, StoreError> {
    Ok(QuarantineRecord {
        merchant_id: rows::id(r, "merchant_id")?,
        shop_id: r.text("shop_id")?,
        entity: rows::parsed("entity", QuarantineEntity::parse(&r.text("entity")?))?,
        legacy_key: r.text("legacy_key")?,
        kinds: r.text("kinds")?,
        reason: r.text("reason")?,
        raw: r.text("raw")?,
        state: r.text("state")?,
        created_at_ms: r.int("created_at_ms")?,
        updated_at_ms: r.int("updated_at_ms")?,
    })
}

/// One wave's merchants in one state, summed.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct ProgressRow {
    pub wave: String,
    pub paused: bool,
    pub state: MigrationState,
    pub merchants: u64,
    pub rows_planned: u64,
    pub rows_copied: u64,
    pub gmv_planned_idr: i64,
    pub first_started_at_ms: Option<i64>,
    pub last_updated_at_ms: i64,
}

/// What the integration view counts besides the migration's own rows.
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub struct IntegrationCounts {
    /// Payments of the social channel the core holds.
    pub social_payments: u64,
    /// Social profile fields held in the core without a standing consent (must be 0).
    pub profiles_without_consent: u64,
    /// Social buyers whose profile the core holds under a consent.
    pub profiles_with_consent: u64,
}

impl Store {
    /// The migration's progress from stored state alone (it survives any restart).
    pub async fn migration_progress(&self) -> Result<(Vec<ProgressRow>, Vec<(String, i64)>), StoreError> {
        self.read(move |conn| {
            Box::pin(async move {
                let rows = q("SELECT m.wave, w.paused, m.state, COUNT(*) AS merchants,
                                     CAST(SUM(m.rows_planned) AS BIGINT) AS rows_planned,
                                     CAST(SUM(m.rows_copied) AS BIGINT) AS rows_copied,
                                     CAST(SUM(m.gmv_planned_idr) AS BIGINT) AS gmv,
                                     MIN(m.started_at_ms) AS first_started, MAX(m.updated_at_ms) AS last_updated
                              FROM migration_merchants m JOIN migration_waves w ON w.name = m.wave
                              GROUP BY m.wave, w.paused, m.state ORDER BY m.wave, m.state")
                .fetch_all(&mut *conn)
                .await?;
                let mut out = Vec::with_capacity(rows.len());
                for r in &rows {
                    out.push(ProgressRow {
                        wave: r.text("wave")?,
                        paused: r.int("paused")? == 1,
                        state: rows::parsed("state", MigrationState::parse(&r.text("state")?))?,
                        merchants: r.int("merchants")? as u64,
                        rows_planned: r.int("rows_planned")? as u64,
                        rows_copied: r.int("rows_copied")? as u64,
                        gmv_planned_idr: r.int("gmv")?,
                        first_started_at_ms: r.opt_int("first_started")?,
                        last_updated_at_ms: r.int("last_updated")?,
                    });
                }
                let pauses = q("SELECT wave, cutover_pause_us FROM migration_merchants
                                WHERE cutover_pause_us IS NOT NULL ORDER BY wave, cutover_pause_us")
                .fetch_all(&mut *conn)
                .await?
                .iter()
                .map(|r| Ok((r.text("wave")?, r.int("cutover_pause_us")?)))
                .collect::<Result<Vec<_>, StoreError>>()?;
                Ok((out, pauses))
            })
        })
        .await
    }

    /// The integration's other workstreams, counted in the core.
    pub async fn integration_counts(&self) -> Result<IntegrationCounts, StoreError> {
        self.read(move |conn| {
            Box::pin(async move {
                let payments = q(
                    "SELECT COUNT(*) AS n FROM payments p JOIN checkouts c ON c.checkout_id = p.checkout_id
                                  WHERE c.channel = 'social'",
                )
                .fetch_one(&mut *conn)
                .await?
                .int("n")?;
                let without = q("SELECT COUNT(*) AS n FROM buyer_profiles b
                                 WHERE NOT EXISTS (SELECT 1 FROM consents c WHERE c.consent_id = b.consent_id
                                                   AND c.withdrawn_at_ms IS NULL)")
                .fetch_one(&mut *conn)
                .await?
                .int("n")?;
                let with =
                    q("SELECT COUNT(*) AS n FROM buyer_profiles").fetch_one(&mut *conn).await?.int("n")?;
                Ok(IntegrationCounts {
                    social_payments: payments as u64,
                    profiles_without_consent: without as u64,
                    profiles_with_consent: (with - without).max(0) as u64,
                })
            })
        })
        .await
    }
}

impl Store {
    /// Pauses or resumes a wave: the engine starts no merchant of a paused wave (those in
    /// flight finish their step). Journaled.
    pub async fn set_wave_paused(&self, ctx: WriteCtx, wave: String, paused: bool) -> Result<(), StoreError> {
        self.write(None, move |conn| {
            Box::pin(async move {
                let changed = q("UPDATE migration_waves SET paused = $2, updated_at_ms = $3 WHERE name = $1")
                    .bind(wave.clone())
                    .bind(i64::from(paused))
                    .bind(ctx.now.unix_ms())
                    .execute(&mut *conn)
                    .await?;
                if changed == 0 {
                    return Err(StoreError::not_found("wave", &wave));
                }
                let change = Change {
                    event_type: if paused { "migration_wave.paused" } else { "migration_wave.resumed" },
                    action: if paused { "migration_wave.pause" } else { "migration_wave.resume" },
                    entity_type: "migration_wave",
                    entity_id: wave.clone(),
                    merchant_id: None,
                    channel: None,
                    payload: serde_json::json!({"name": wave, "paused": paused}),
                };
                journal::record(conn, &ctx, change).await
            })
        })
        .await
    }
}

/// A social order as the core holds it, with what the legacy store needs to hold it too.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct ReverseOrderRow {
    pub social_order_id: String,
    pub status: String,
    /// The pseudonymous buyer reference the core holds.
    pub buyer_ref: String,
    pub payment_method: String,
    pub total_idr: i64,
    pub recipient_name: String,
    pub recipient_phone: String,
    pub street: String,
    pub city: String,
    pub province: String,
    pub postal_code: String,
    pub created_at_ms: i64,
    pub updated_at_ms: i64,
    /// (social product id, social SKU id, product title, quantity, unit price), in line order.
    pub lines: Vec<(String, String, String, i64, i64)>,
}

impl Store {
    /// What the reverse sync writes back for a merchant: its products, and its social orders
    /// changed at or after `orders_since_ms`.
    pub async fn reverse_view(
        &self,
        merchant_id: MerchantId,
        orders_since_ms: i64,
    ) -> Result<(Vec<CoreProductRow>, Vec<ReverseOrderRow>), StoreError> {
        self.read(move |conn| {
            Box::pin(async move {
                let products = core_products(conn, merchant_id, None).await?;
                let merchant = merchant_id.to_string();
                let orders = q("SELECT s.social_id, o.order_id, o.status, o.buyer_id, o.payment_method, o.total_idr,
                                       o.recipient_name, o.recipient_phone, o.street, o.city, o.province, o.postal_code,
                                       o.created_at_ms, o.updated_at_ms
                                FROM orders o JOIN social_ids s ON s.core_id = o.order_id
                                WHERE o.merchant_id = $1 AND o.updated_at_ms >= $2 ORDER BY s.social_id")
                .bind(merchant.clone())
                .bind(orders_since_ms)
                .fetch_all(&mut *conn)
                .await?;
                // Every line of those orders in one read, grouped by order.
                let lines = q("SELECT l.order_id, ps.social_id AS product, ks.social_id AS sku, p.title, l.quantity, l.unit_price_idr
                               FROM order_lines l
                               JOIN orders o ON o.merchant_id = l.merchant_id AND o.order_id = l.order_id
                               JOIN skus k ON k.merchant_id = l.merchant_id AND k.sku_id = l.sku_id
                               JOIN products p ON p.merchant_id = k.merchant_id AND p.product_id = k.product_id
                               JOIN social_ids ks ON ks.core_id = l.sku_id
                               JOIN social_ids ps ON ps.core_id = k.product_id
                               WHERE l.merchant_id = $1 AND o.updated_at_ms >= $2 ORDER BY l.order_id, l.line_no")
                .bind(merchant.clone())
                .bind(orders_since_ms)
                .fetch_all(&mut *conn)
                .await?;
                let mut lines = by_key(&lines, "order_id")?;
                let mut out = Vec::with_capacity(orders.len());
                for o in &orders {
                    let lines = lines.remove(&o.text("order_id")?).unwrap_or_default();
                    out.push(ReverseOrderRow {
                        social_order_id: o.text("social_id")?,
                        status: o.text("status")?,
                        buyer_ref: o.text("buyer_id")?,
                        payment_method: o.text("payment_method")?,
                        total_idr: o.int("total_idr")?,
                        recipient_name: o.text("recipient_name")?,
                        recipient_phone: o.text("recipient_phone")?,
                        street: o.text("street")?,
                        city: o.text("city")?,
                        province: o.text("province")?,
                        postal_code: o.text("postal_code")?,
                        created_at_ms: o.int("created_at_ms")?,
                        updated_at_ms: o.int("updated_at_ms")?,
                        lines: lines
                            .iter()
                            .map(|l| {
                                Ok((
                                    l.text("product")?,
                                    l.text("sku")?,
                                    l.text("title")?,
                                    l.int("quantity")?,
                                    l.int("unit_price_idr")?,
                                ))
                            })
                            .collect::<Result<_, StoreError>>()?,
                    });
                }
                Ok((products, out))
            })
        })
        .await
    }

    /// Where the reverse sync of a merchant stands (orders changed before it are written back).
    pub async fn set_reverse_synced(&self, merchant_id: MerchantId, at_ms: i64) -> Result<(), StoreError> {
        self.write(None, move |conn| {
            Box::pin(async move {
                q("UPDATE migration_merchants SET reverse_synced_at_ms = $2 WHERE merchant_id = $1")
                    .bind(merchant_id.to_string())
                    .bind(at_ms)
                    .execute(conn)
                    .await?;
                Ok(())
            })
        })
        .await
    }

    /// The end of a rollback, in one unit: the shop's owner from `migrating` back to `legacy`,
    /// the units of its twins returning to the legacy store again on a cancellation, the
    /// merchant `rolled_back`.
    pub async fn migration_rolled_back(
        &self,
        ctx: WriteCtx,
        merchant_id: MerchantId,
        reason: String,
    ) -> Result<MigrationMerchantRecord, StoreError> {
        self.write(None, move |conn| {
            Box::pin(async move {
                let record = lock_merchant(conn, merchant_id, MigrationState::CutOver).await?;
                crate::social::set_owner(conn, &ctx, &record.shop_id, Owner::Migrating, Owner::Legacy)
                    .await?;
                q("UPDATE orders SET legacy_stock_moved = 0 WHERE merchant_id = $1 AND origin = 'legacy'")
                    .bind(merchant_id.to_string())
                    .execute(&mut *conn)
                    .await?;
                move_state(
                    conn,
                    &ctx,
                    merchant_id,
                    MigrationState::CutOver,
                    MigrationState::RolledBack,
                    Progress { last_error: Some(Some(reason)), ..Progress::default() },
                )
                .await
            })
        })
        .await
    }
}

impl Store {
    /// A wave's (or every wave's) merchants in one state, in merchant id order after `after`.
    pub async fn migration_in_state(
        &self,
        state: MigrationState,
        wave: Option<String>,
        after: String,
        limit: u32,
    ) -> Result<Vec<MigrationMerchantRecord>, StoreError> {
        self.read(move |conn| {
            Box::pin(async move {
                q(format!(
                    "SELECT {MERCHANT_COLUMNS} FROM migration_merchants
                     WHERE state = $1 AND ($2 = '' OR wave = $2) AND merchant_id > $3 ORDER BY merchant_id LIMIT $4"
                ))
                .bind(state.as_str())
                .bind(wave.unwrap_or_default())
                .bind(after)
                .bind(i64::from(limit))
                .fetch_all(conn)
                .await?
                .iter()
                .map(decode_merchant)
                .collect()
            })
        })
        .await
    }

    /// Finalizes a cut-over merchant (its reverse sync stops), refused while it has open
    /// quarantined rows the operator has not accepted.
    pub async fn migration_finalize(
        &self,
        ctx: WriteCtx,
        merchant_id: MerchantId,
    ) -> Result<MigrationMerchantRecord, StoreError> {
        self.write(None, move |conn| {
            Box::pin(async move {
                lock_merchant(conn, merchant_id, MigrationState::CutOver).await?;
                let open = q("SELECT COUNT(*) AS n FROM migration_quarantine WHERE merchant_id = $1 AND state = 'open'")
                    .bind(merchant_id.to_string())
                    .fetch_one(&mut *conn)
                    .await?
                    .int("n")?;
                if open > 0 {
                    return Err(StoreError::Conflict(format!(
                        "merchant {merchant_id} has {open} open quarantined rows: fix them at the source and `jembatan migrate retry`, or accept them with `jembatan migrate accept {merchant_id} --reason ...` before finalizing"
                    )));
                }
                move_state(conn, &ctx, merchant_id, MigrationState::CutOver, MigrationState::Finalized, Progress::default())
                    .await
            })
        })
        .await
    }
}

impl Store {
    /// Every wave's merchants in merchant id order after `after`.
    pub async fn all_migration_merchants(
        &self,
        after: &str,
        limit: u32,
    ) -> Result<Vec<MigrationMerchantRecord>, StoreError> {
        let after = after.to_owned();
        self.read(move |conn| {
            Box::pin(async move {
                q(format!("SELECT {MERCHANT_COLUMNS} FROM migration_merchants WHERE merchant_id > $1 ORDER BY merchant_id LIMIT $2"))
                    .bind(after)
                    .bind(i64::from(limit))
                    .fetch_all(conn)
                    .await?
                    .iter()
                    .map(decode_merchant)
                    .collect()
            })
        })
        .await
    }
}

impl Store {
    /// (core orders mapped from this social order id, core orders of this checkout): what
    /// `jembatan check --journal` counts to see each acknowledged write exactly once.
    pub async fn journal_counts(
        &self,
        social_order_id: Option<String>,
        checkout_id: Option<String>,
    ) -> Result<(i64, i64), StoreError> {
        self.read(move |conn| {
            Box::pin(async move {
                let mapped =
                    q("SELECT COUNT(*) AS n FROM social_ids WHERE kind = 'order' AND social_id = $1")
                        .bind(social_order_id.unwrap_or_default())
                        .fetch_one(&mut *conn)
                        .await?
                        .int("n")?;
                let orders = q("SELECT COUNT(*) AS n FROM orders WHERE checkout_id = $1")
                    .bind(checkout_id.unwrap_or_default())
                    .fetch_one(&mut *conn)
                    .await?
                    .int("n")?;
                Ok((mapped, orders))
            })
        })
        .await
    }
}

impl Store {
    /// The start of a cutover, in one unit: the merchant `fenced` and its shop's owner from
    /// `legacy` to `migrating` (the gateway holds its writes from here).
    pub async fn migration_fence(
        &self,
        ctx: WriteCtx,
        merchant_id: MerchantId,
    ) -> Result<MigrationMerchantRecord, StoreError> {
        self.write(None, move |conn| {
            Box::pin(async move {
                let record = move_state(
                    conn,
                    &ctx,
                    merchant_id,
                    MigrationState::Verified,
                    MigrationState::Fenced,
                    Progress::default(),
                )
                .await?;
                crate::social::set_owner(conn, &ctx, &record.shop_id, Owner::Legacy, Owner::Migrating)
                    .await?;
                Ok(record)
            })
        })
        .await
    }
}
