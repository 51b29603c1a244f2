//! The migration's own records in the core (DESIGN.md §6): waves and, per merchant being moved,
//! its state, planned figures and the engine's progress (tables of migration 10). Planning is a
//! unit like any change: the rows, an outbox event and an audit entry per wave and merchant.

use jembatan_domain::migration::MigrationState;
use jembatan_domain::{MerchantId, Money};

use crate::db::{Conn, Row, lock_clause, q};
use crate::error::StoreError;
use crate::exec::{Store, WriteCtx};
use crate::journal::{self, Change};
use crate::legacy_facts::placeholders;
use crate::rows;
use crate::social::Owner;

/// Most merchants planned by one unit (a wave of many is planned in several).
pub const PLAN_UNIT_MERCHANTS_MAX: usize = 500;
/// Most shops one lookup names.
pub const LOOKUP_SHOPS_MAX: usize = 500;

/// A wave to create (or to add to, when it exists with the same selection and limit).
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct NewWave {
    pub name: String,
    /// The selection as written back by `Selection`'s `Display` (canonical).
    pub selection: String,
    pub merchants_limit: Option<u64>,
}

/// One merchant the plan puts into a wave, with what the plan counted.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct PlannedMerchant {
    pub merchant_id: MerchantId,
    pub shop_id: String,
    pub rows: u64,
    pub gmv: Money,
    pub defects_expected: u64,
}

#[derive(Debug, Clone, PartialEq, Eq)]
pub struct WaveRecord {
    pub name: String,
    pub selection: String,
    pub merchants_limit: Option<u64>,
    pub paused: bool,
    pub created_at_ms: i64,
    pub updated_at_ms: i64,
    /// Sums over the wave's merchants.
    pub merchants: u64,
    pub rows_planned: u64,
    pub gmv_planned: Money,
    pub defects_expected: u64,
    /// Merchants per state, states without merchants left out.
    pub by_state: Vec<(MigrationState, u64)>,
}

#[derive(Debug, Clone, PartialEq, Eq)]
pub struct MigrationMerchantRecord {
    pub merchant_id: MerchantId,
    pub shop_id: String,
    pub wave: String,
    pub state: MigrationState,
    pub rows_planned: u64,
    pub gmv_planned: Money,
    pub defects_expected: u64,
    pub snapshot_position: Option<i64>,
    pub checkpoint: Option<String>,
    pub attempts: u64,
    pub last_error: Option<String>,
    pub cutover_pause_us: Option<i64>,
    pub planned_at_ms: i64,
    pub updated_at_ms: i64,
    /// Legacy row versions written to the core so far (copy and catch-up).
    pub rows_copied: u64,
    pub started_at_ms: Option<i64>,
    pub cut_over_at_ms: Option<i64>,
    pub reverse_synced_at_ms: i64,
}

/// A shop's enrolment in the core, as the planner needs it.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct ShopOwner {
    pub shop_id: String,
    pub merchant_id: MerchantId,
    pub owner: Owner,
}

/// What one planning unit did: merchants planned, and those another writer planned first.
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub struct PlanOutcome {
    pub planned: Vec<MerchantId>,
    /// (shop id, why not planned) for rows found taken inside the unit.
    pub skipped: Vec<(String, String)>,
}

pub(crate) const MERCHANT_COLUMNS: &str = "merchant_id, shop_id, wave, state, rows_planned, gmv_planned_idr, defects_expected, \
     snapshot_position, checkpoint, attempts, last_error, cutover_pause_us, planned_at_ms, updated_at_ms, \
     rows_copied, started_at_ms, cut_over_at_ms, reverse_synced_at_ms";

impl Store {
    /// The migration rows of these shops (at most [`LOOKUP_SHOPS_MAX`]).
    pub async fn migration_merchants_of_shops(
        &self,
        shops: Vec<String>,
    ) -> Result<Vec<MigrationMerchantRecord>, StoreError> {
        check_lookup(&shops)?;
        self.read(move |conn| {
            Box::pin(async move {
                let sql = format!(
                    "SELECT {MERCHANT_COLUMNS} FROM migration_merchants WHERE shop_id IN ({})",
                    placeholders(1, shops.len())
                );
                let mut query = q(sql);
                for shop in shops {
                    query = query.bind(shop);
                }
                query.fetch_all(conn).await?.iter().map(decode_merchant).collect()
            })
        })
        .await
    }

    /// The enrolments of these shops (at most [`LOOKUP_SHOPS_MAX`]); shops not enrolled are absent.
    pub async fn shop_owners(&self, shops: Vec<String>) -> Result<Vec<ShopOwner>, StoreError> {
        check_lookup(&shops)?;
        self.read(move |conn| {
            Box::pin(async move {
                let sql = format!(
                    "SELECT shop_id, merchant_id, owner FROM social_shops WHERE shop_id IN ({})",
                    placeholders(1, shops.len())
                );
                let mut query = q(sql);
                for shop in shops {
                    query = query.bind(shop);
                }
                query
                    .fetch_all(conn)
                    .await?
                    .iter()
                    .map(|r| {
                        Ok(ShopOwner {
                            shop_id: rows::text(r, "shop_id")?,
                            merchant_id: rows::id(r, "merchant_id")?,
                            owner: rows::parsed("owner", Owner::parse(&rows::text(r, "owner")?))?,
                        })
                    })
                    .collect()
            })
        })
        .await
    }

    pub async fn wave(&self, name: &str) -> Result<Option<WaveRecord>, StoreError> {
        let name = name.to_owned();
        self.read(move |conn| {
            Box::pin(async move {
                let row = q("SELECT * FROM migration_waves WHERE name = $1")
                    .bind(name)
                    .fetch_optional(&mut *conn)
                    .await?;
                match row {
                    Some(row) => Ok(Some(decode_wave(conn, &row).await?)),
                    None => Ok(None),
                }
            })
        })
        .await
    }

    /// Waves in name order after `after` ("" from the start).
    pub async fn waves(&self, after: &str, limit: u32) -> Result<Vec<WaveRecord>, StoreError> {
        let after = after.to_owned();
        self.read(move |conn| {
            Box::pin(async move {
                let rows = q("SELECT * FROM migration_waves WHERE name > $1 ORDER BY name LIMIT $2")
                    .bind(after)
                    .bind(i64::from(limit))
                    .fetch_all(&mut *conn)
                    .await?;
                let mut out = Vec::with_capacity(rows.len());
                for row in &rows {
                    out.push(decode_wave(&mut *conn, row).await?);
                }
                Ok(out)
            })
        })
        .await
    }

    /// A wave's merchants in merchant id order after `after` ("" from the start).
    pub async fn wave_merchants(
        &self,
        wave: &str,
        after: &str,
        limit: u32,
    ) -> Result<Vec<MigrationMerchantRecord>, StoreError> {
        let (wave, after) = (wave.to_owned(), after.to_owned());
        self.read(move |conn| {
            Box::pin(async move {
                let sql = format!(
                    "SELECT {MERCHANT_COLUMNS} FROM migration_merchants
                     WHERE wave = $1 AND ($2 = '' OR merchant_id > $2) ORDER BY merchant_id LIMIT $3"
                );
                q(sql)
                    .bind(wave)
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

    /// Plans merchants into a wave in one unit: creates the wave (refused if one of that name
    /// exists with another selection or limit), then adds each merchant in state `legacy` —
    /// a merchant with a row already is added only if it was rolled back (its row starts
    /// over); otherwise it is reported skipped with where it is.
    pub async fn plan_wave(
        &self,
        ctx: WriteCtx,
        wave: NewWave,
        merchants: Vec<PlannedMerchant>,
    ) -> Result<PlanOutcome, StoreError> {
        assert!(
            merchants.len() <= PLAN_UNIT_MERCHANTS_MAX,
            "a planning unit holds at most {PLAN_UNIT_MERCHANTS_MAX} merchants"
        );
        self.write(None, move |conn| Box::pin(plan_unit(conn, ctx, wave, merchants))).await
    }
}

async fn plan_unit(
    conn: &mut dyn Conn,
    ctx: WriteCtx,
    wave: NewWave,
    merchants: Vec<PlannedMerchant>,
) -> Result<PlanOutcome, StoreError> {
    let now_ms = ctx.now.unix_ms();
    let limit = wave.merchants_limit.map(|n| n as i64);
    let sql = format!(
        "SELECT selection, merchants_limit FROM migration_waves WHERE name = $1{}",
        lock_clause(conn, true)
    );
    match q(sql).bind(&wave.name).fetch_optional(&mut *conn).await? {
        Some(row) => {
            let (selection, stored_limit) = (row.text("selection")?, row.opt_int("merchants_limit")?);
            if selection != wave.selection || stored_limit != limit {
                return Err(StoreError::Conflict(format!(
                    "wave `{}` exists with selection `{selection}` and limit {}: choose another name, or repeat its selection and limit to add to it",
                    wave.name,
                    stored_limit.map_or_else(|| "none".to_owned(), |n| n.to_string())
                )));
            }
            q("UPDATE migration_waves SET updated_at_ms = $2 WHERE name = $1")
                .bind(&wave.name)
                .bind(now_ms)
                .execute(&mut *conn)
                .await?;
        }
        None => {
            q("INSERT INTO migration_waves (name, selection, merchants_limit, paused, created_at_ms, updated_at_ms)
               VALUES ($1, $2, $3, 0, $4, $4)")
            .bind(&wave.name)
            .bind(&wave.selection)
            .bind(limit)
            .bind(now_ms)
            .execute(&mut *conn)
            .await?;
            let change = Change {
                event_type: "migration_wave.planned",
                action: "migration_wave.plan",
                entity_type: "migration_wave",
                entity_id: wave.name.clone(),
                merchant_id: None,
                channel: None,
                payload: serde_json::json!({"name": wave.name, "selection": wave.selection, "merchants_limit": wave.merchants_limit}),
            };
            journal::record(&mut *conn, &ctx, change).await?;
        }
    }
    let mut outcome = PlanOutcome::default();
    for merchant in merchants {
        assert!(merchant.gmv.rupiah() >= 0, "GMV is never negative");
        let id = merchant.merchant_id.to_string();
        let inserted = q(format!(
            "INSERT INTO migration_merchants ({MERCHANT_COLUMNS})
             VALUES ($1, $2, $3, 'legacy', $4, $5, $6, NULL, NULL, 0, NULL, NULL, $7, $7, 0, NULL, NULL, 0)
             ON CONFLICT DO NOTHING"
        ))
        .bind(&id)
        .bind(&merchant.shop_id)
        .bind(&wave.name)
        .bind(merchant.rows as i64)
        .bind(merchant.gmv.rupiah())
        .bind(merchant.defects_expected as i64)
        .bind(now_ms)
        .execute(&mut *conn)
        .await?;
        let planned = inserted == 1
            || q("UPDATE migration_merchants SET wave = $2, state = 'legacy', rows_planned = $3, gmv_planned_idr = $4,
                    defects_expected = $5, snapshot_position = NULL, checkpoint = NULL, attempts = 0, last_error = NULL,
                    cutover_pause_us = NULL, planned_at_ms = $6, updated_at_ms = $6, rows_copied = 0,
                    started_at_ms = NULL, cut_over_at_ms = NULL, reverse_synced_at_ms = 0
                  WHERE merchant_id = $1 AND state = 'rolled_back'")
            .bind(&id)
            .bind(&wave.name)
            .bind(merchant.rows as i64)
            .bind(merchant.gmv.rupiah())
            .bind(merchant.defects_expected as i64)
            .bind(now_ms)
            .execute(&mut *conn)
            .await?
                == 1;
        if !planned {
            let row = q("SELECT wave, state FROM migration_merchants WHERE merchant_id = $1")
                .bind(&id)
                .fetch_one(&mut *conn)
                .await?;
            let reason = format!("already in wave `{}` ({})", row.text("wave")?, row.text("state")?);
            outcome.skipped.push((merchant.shop_id, reason));
            continue;
        }
        let change = Change {
            event_type: "migration_merchant.planned",
            action: "migration_merchant.plan",
            entity_type: "migration_merchant",
            entity_id: id.clone(),
            merchant_id: Some(merchant.merchant_id),
            channel: None,
            payload: serde_json::json!({
                "merchant_id": id, "shop_id": merchant.shop_id, "wave": wave.name,
                "rows_planned": merchant.rows, "gmv_planned_idr": merchant.gmv.rupiah(),
                "defects_expected": merchant.defects_expected,
            }),
        };
        journal::record(&mut *conn, &ctx, change).await?;
        outcome.planned.push(merchant.merchant_id);
    }
    Ok(outcome)
}

async fn decode_wave(conn: &mut dyn Conn, row: &Row) -> Result<WaveRecord, StoreError> {
    let name = row.text("name")?;
    let states = q("SELECT state, COUNT(*) AS merchants, CAST(SUM(rows_planned) AS BIGINT) AS rows_planned,
                           CAST(SUM(gmv_planned_idr) AS BIGINT) AS gmv, CAST(SUM(defects_expected) AS BIGINT) AS defects
                    FROM migration_merchants WHERE wave = $1 GROUP BY state")
    .bind(name.clone())
    .fetch_all(conn)
    .await?;
    let mut wave = WaveRecord {
        name,
        selection: row.text("selection")?,
        merchants_limit: row.opt_int("merchants_limit")?.map(|n| n as u64),
        paused: row.int("paused")? == 1,
        created_at_ms: row.int("created_at_ms")?,
        updated_at_ms: row.int("updated_at_ms")?,
        merchants: 0,
        rows_planned: 0,
        gmv_planned: Money::ZERO,
        defects_expected: 0,
        by_state: Vec::new(),
    };
    for s in &states {
        let merchants = s.int("merchants")? as u64;
        wave.merchants += merchants;
        wave.rows_planned += s.int("rows_planned")? as u64;
        wave.gmv_planned = wave.gmv_planned.checked_add(Money::from_rupiah(s.int("gmv")?)?)?;
        wave.defects_expected += s.int("defects")? as u64;
        wave.by_state.push((rows::parsed("state", MigrationState::parse(&s.text("state")?))?, merchants));
    }
    wave.by_state.sort();
    Ok(wave)
}

pub(crate) fn decode_merchant(r: &Row) -> Result<MigrationMerchantRecord, StoreError> {
    Ok(MigrationMerchantRecord {
        merchant_id: rows::id(r, "merchant_id")?,
        shop_id: r.text("shop_id")?,
        wave: r.text("wave")?,
        state: rows::parsed("state", MigrationState::parse(&r.text("state")?))?,
        rows_planned: r.int("rows_planned")? as u64,
        gmv_planned: Money::from_rupiah(r.int("gmv_planned_idr")?)?,
        defects_expected: r.int("defects_expected")? as u64,
        snapshot_position: r.opt_int("snapshot_position")?,
        checkpoint: r.opt_text("checkpoint")?,
        attempts: r.int("attempts")? as u64,
        last_error: r.opt_text("last_error")?,
        cutover_pause_us: r.opt_int("cutover_pause_us")?,
        planned_at_ms: r.int("planned_at_ms")?,
        updated_at_ms: r.int("updated_at_ms")?,
        rows_copied: r.int("rows_copied")? as u64,
        started_at_ms: r.opt_int("started_at_ms")?,
        cut_over_at_ms: r.opt_int("cut_over_at_ms")?,
        reverse_synced_at_ms: r.int("reverse_synced_at_ms")?,
    })
}

fn check_lookup(shops: &[String]) -> Result<(), StoreError> {
    if shops.is_empty() || shops.len() > LOOKUP_SHOPS_MAX {
        return Err(StoreError::Conflict(format!(
            "a lookup names 1 to {LOOKUP_SHOPS_MAX} shops, not {}",
            shops.len()
        )));
    }
    Ok(())
}
