//! `/v1/ops/migration`: the operator plans waves of social shops to move to the core and reads
//! them back (DESIGN.md §6 step 1, `jembatan migrate plan` over HTTP). A dry run answers what
//! the wave would hold and writes nothing; a real plan enrols the shops and records the wave.
//!
//! Operator only: merchant, channel, provider and regulator tokens are refused (403). The
//! regulator is meant to read the migration's progress later, from a report of its own; the
//! waves themselves stay the operator's working records.

use axum::extract::rejection::QueryRejection;
use axum::extract::{Path, Query, State};
use axum::http::StatusCode;
use axum::response::Response;
use jembatan_core::migrate::plan::{DefectCount, PlannedShop, Skipped};
use jembatan_core::migrate::{Defect, PlanReport, PlanRequest, waves};
use jembatan_domain::migration::{MigrationState, Selection, SelectionError};
use jembatan_store::migration::WaveRecord;
use serde::{Deserialize, Serialize};
use utoipa::ToSchema;

use crate::AppState;
use crate::extract::{Caller, JsonBody};
use crate::problem::Problem;
use crate::routes::{PageQuery, ok, page_size};
use crate::wire::{MoneyWire, rfc3339};

/// Most planned shops listed in a plan's answer (all are counted in its totals; a wave's
/// merchants are its records in the store).
pub const SHOPS_LISTED_MAX: usize = 1_000;

type Answer = Result<Response, Problem>;

// ---- wire shapes ------------------------------------------------------------------------------

#[derive(Debug, Deserialize, ToSchema)]
pub struct PlanWaveRequest {
    /// The wave's name: 1 to 64 of `A-Z a-z 0-9 - _ .`. Planning an existing wave again (same
    /// selection and limit) adds the shops not yet in it.
    #[schema(example = "bali-small")]
    pub wave: String,
    /// `all`, or terms joined by commas, all of which must hold: `seller_type=LOCAL|CROSS_BORDER`,
    /// `province=Bali|Jawa Barat`, `city=…`, `shop_id=123|456`, and `orders`, `products` or `gmv`
    /// (integer rupiah) compared with `<`, `<=`, `>`, `>=` or `=`.
    #[schema(example = "seller_type=LOCAL,province=Bali,orders<1000")]
    pub select: String,
    /// Most merchants the wave takes (in shop id order); absent: no limit.
    pub limit: Option<u64>,
    /// Preview only: count and check, write nothing (default false).
    #[serde(default)]
    pub dry_run: bool,
}

/// What moving a shop, or a whole wave, copies.
#[derive(Debug, Serialize, ToSchema)]
pub struct MoveSizesWire {
    /// Products that move (deleted ones do not).
    pub products: u64,
    pub skus: u64,
    pub orders: u64,
    pub order_items: u64,
    /// Rows a move copies: products, SKUs, orders and order items.
    pub rows: u64,
    /// Sum of the totals of the paid orders (not unpaid, not cancelled).
    pub gmv: MoneyWire,
}

#[derive(Debug, Serialize, ToSchema)]
pub struct PlannedShopWire {
    pub shop_id: String,
    /// Absent in a dry run for a shop not enrolled with the core yet.
    pub merchant_id: Option<String>,
    #[serde(flatten)]
    pub sizes: MoveSizesWire,
    pub defects: u64,
}

impl From<&PlannedShop> for PlannedShopWire {
    fn from(s: &PlannedShop) -> Self {
        PlannedShopWire {
            shop_id: s.shop_id.clone(),
            merchant_id: s.merchant_id.map(|m| m.to_string()),
            sizes: MoveSizesWire {
                products: s.products,
                skus: s.skus,
                orders: s.orders,
                order_items: s.order_items,
                rows: s.rows(),
                gmv: s.gmv.into(),
            },
            defects: s.defects,
        }
    }
}

#[derive(Debug, Serialize, ToSchema)]
pub struct DefectCountWire {
    /// `shop`, `product` or `order`.
    pub entity: String,
    /// Stable kind, e.g. `ambiguous-price`, `duplicate-sku-code`, `total-mismatch`.
    pub kind: String,
    pub count: u64,
}

impl From<&DefectCount> for DefectCountWire {
    fn from(d: &DefectCount) -> Self {
        DefectCountWire {
            entity: d.entity.as_str().to_owned(),
            kind: d.kind.as_str().to_owned(),
            count: d.count,
        }
    }
}

#[derive(Debug, Serialize, ToSchema)]
pub struct DefectWire {
    pub entity: String,
    /// The legacy id of the row (shop, product or order id).
    pub entity_id: String,
    pub kind: String,
    /// Where in the row, e.g. `skus[2].price`.
    pub field: String,
    /// The value as the legacy store holds it.
    pub raw: String,
    pub reason: String,
}

impl From<&Defect> for DefectWire {
    fn from(d: &Defect) -> Self {
        DefectWire {
            entity: d.entity.as_str().to_owned(),
            entity_id: d.entity_id.clone(),
            kind: d.kind.as_str().to_owned(),
            field: d.field.clone(),
            raw: d.raw.clone(),
            reason: d.reason.clone(),
        }
    }
}

#[derive(Debug, Serialize, ToSchema)]
pub struct SkippedCountWire {
    /// `core-owned`, `being-moved`, `in-wave` or `cannot-enrol`.
    pub code: String,
    pub shops: u64,
}

#[derive(Debug, Serialize, ToSchema)]
pub struct SkippedWire {
    pub shop_id: String,
    pub code: String,
    pub reason: String,
}

impl From<&Skipped> for SkippedWire {
    fn from(s: &Skipped) -> Self {
        SkippedWire { shop_id: s.shop_id.clone(), code: s.code.to_owned(), reason: s.reason.clone() }
    }
}

/// What a plan chose and what moving it means.
#[derive(Debug, Serialize, ToSchema)]
pub struct PlanReportWire {
    pub wave: String,
    /// The selection as the planner reads it (canonical form).
    pub selection: String,
    pub limit: Option<u64>,
    pub dry_run: bool,
    /// Shops the selection matched, before skips and the limit.
    pub matched: u64,
    /// Merchants planned (or, in a dry run, that would be).
    pub merchants: u64,
    #[serde(flatten)]
    pub sizes: MoveSizesWire,
    pub defects_total: u64,
    /// Every defect the copy will meet, counted by entity and kind.
    pub defects: Vec<DefectCountWire>,
    /// The first few defects, as examples.
    pub defect_examples: Vec<DefectWire>,
    pub skipped_total: u64,
    pub skipped_by_code: Vec<SkippedCountWire>,
    /// The first skipped shops with their reasons.
    pub skipped: Vec<SkippedWire>,
    /// The planned shops, the first 1,000 (`merchants` counts them all).
    pub shops: Vec<PlannedShopWire>,
}

impl From<&PlanReport> for PlanReportWire {
    fn from(r: &PlanReport) -> Self {
        PlanReportWire {
            wave: r.wave.clone(),
            selection: r.selection.clone(),
            limit: r.merchants_limit,
            dry_run: r.dry_run,
            matched: r.matched,
            merchants: r.merchants,
            sizes: MoveSizesWire {
                products: r.products,
                skus: r.skus,
                orders: r.orders,
                order_items: r.order_items,
                rows: r.rows,
                gmv: r.gmv.into(),
            },
            defects_total: r.defects_total,
            defects: r.defects.iter().map(DefectCountWire::from).collect(),
            defect_examples: r.defect_examples.iter().map(DefectWire::from).collect(),
            skipped_total: r.skipped_total,
            skipped_by_code: r
                .skipped_by_code
                .iter()
                .map(|(code, shops)| SkippedCountWire { code: (*code).to_owned(), shops: *shops })
                .collect(),
            skipped: r.skipped.iter().map(SkippedWire::from).collect(),
            shops: r.shops.iter().take(SHOPS_LISTED_MAX).map(PlannedShopWire::from).collect(),
        }
    }
}

/// A wave's merchants in each state of their move (every state, zero included).
#[derive(Debug, Default, Serialize, ToSchema)]
pub struct MerchantsByState {
    pub legacy: u64,
    pub copying: u64,
    pub catching_up: u64,
    pub verified: u64,
    pub fenced: u64,
    pub cut_over: u64,
    pub finalized: u64,
    pub rolled_back: u64,
    pub quarantined: u64,
}

impl MerchantsByState {
    fn new(by_state: &[(MigrationState, u64)]) -> MerchantsByState {
        let mut counts = MerchantsByState::default();
        for (state, merchants) in by_state {
            let slot = match state {
                MigrationState::Legacy => &mut counts.legacy,
                MigrationState::Copying => &mut counts.copying,
                MigrationState::CatchingUp => &mut counts.catching_up,
                MigrationState::Verified => &mut counts.verified,
                MigrationState::Fenced => &mut counts.fenced,
                MigrationState::CutOver => &mut counts.cut_over,
                MigrationState::Finalized => &mut counts.finalized,
                MigrationState::RolledBack => &mut counts.rolled_back,
                MigrationState::Quarantined => &mut counts.quarantined,
            };
            *slot += merchants;
        }
        counts
    }
}

#[derive(Debug, Serialize, ToSchema)]
pub struct WaveWire {
    pub name: String,
    pub selection: String,
    pub limit: Option<u64>,
    /// The engine starts no more work on a paused wave.
    pub paused: bool,
    pub created_at: String,
    pub updated_at: String,
    pub merchants: u64,
    /// What the plan counted, summed over the wave's merchants.
    pub rows_planned: u64,
    pub gmv_planned: MoneyWire,
    pub defects_expected: u64,
    pub merchants_by_state: MerchantsByState,
}

impl From<&WaveRecord> for WaveWire {
    fn from(w: &WaveRecord) -> Self {
        WaveWire {
            name: w.name.clone(),
            selection: w.selection.clone(),
            limit: w.merchants_limit,
            paused: w.paused,
            created_at: rfc3339(jembatan_domain::Timestamp::from_unix_ms(w.created_at_ms)),
            updated_at: rfc3339(jembatan_domain::Timestamp::from_unix_ms(w.updated_at_ms)),
            merchants: w.merchants,
            rows_planned: w.rows_planned,
            gmv_planned: w.gmv_planned.into(),
            defects_expected: w.defects_expected,
            merchants_by_state: MerchantsByState::new(&w.by_state),
        }
    }
}

#[derive(Debug, Serialize, ToSchema)]
pub struct WavePage {
    pub waves: Vec<WaveWire>,
    /// Pass as `cursor` to get the next page; absent on the last page.
    pub next_cursor: Option<String>,
}

/// A selection that does not parse: 400 `bad-selection`, naming the term and the known fields.
pub fn bad_selection(error: &SelectionError) -> Problem {
    Problem::new(StatusCode::BAD_REQUEST, "bad-selection", error.to_string()).with_field("select")
}

// ---- handlers ---------------------------------------------------------------------------------

#[utoipa::path(post, path = "/v1/ops/migration/waves", tag = "migration",
    request_body = PlanWaveRequest,
    responses(
        (status = 200, body = PlanReportWire, description = "A dry run: what the wave would hold; nothing was written"),
        (status = 201, body = PlanReportWire, description = "The wave is planned: its shops enrolled, its merchants in state `legacy`"),
        (status = 400, body = Problem, description = "`bad-selection`: the selection does not parse (the term and the known fields are named)"),
        (status = 403, body = Problem),
        (status = 409, body = Problem, description = "`conflict`: a wave of that name exists with another selection or limit"),
        (status = 422, body = Problem),
        (status = 503, body = Problem, description = "`social-unavailable`: the server runs without the legacy store")),
    security(("bearer" = [])))]
/// Plans a wave of merchants by a selection (or previews it with `dry_run`). Safe to repeat:
/// planning the same wave again adds only shops not yet in it. Operator only.
pub async fn plan_wave(
    State(state): State<AppState>,
    Caller(who): Caller,
    body: JsonBody<PlanWaveRequest>,
) -> Answer {
    let request = body.value;
    let selection = Selection::parse(&request.select).map_err(|e| bad_selection(&e))?;
    let legacy = crate::social::gateway(&state)?.legacy();
    let report = jembatan_core::migrate::plan(
        &state.core,
        legacy,
        &who,
        PlanRequest {
            wave: request.wave,
            selection,
            merchants_limit: request.limit,
            dry_run: request.dry_run,
        },
    )
    .await?;
    let status = if report.dry_run { StatusCode::OK } else { StatusCode::CREATED };
    ok(status, &PlanReportWire::from(&report))
}

#[utoipa::path(get, path = "/v1/ops/migration/waves", tag = "migration",
    params(PageQuery),
    responses((status = 200, body = WavePage), (status = 403, body = Problem), (status = 422, body = Problem)),
    security(("bearer" = [])))]
/// The planned waves in name order, with their merchants counted by state. Operator only.
pub async fn list_waves(
    State(state): State<AppState>,
    Caller(who): Caller,
    query: Result<Query<PageQuery>, QueryRejection>,
) -> Answer {
    let Query(query) =
        query.map_err(|e| Problem::new(StatusCode::UNPROCESSABLE_ENTITY, "validation", e.body_text()))?;
    let limit = page_size(&state.limits, query.limit)?;
    let after = query.cursor.unwrap_or_default();
    let mut found = waves::waves(&state.core, &who, &after, limit + 1).await?;
    let more = found.len() > limit as usize;
    found.truncate(limit as usize);
    let next_cursor = if more { found.last().map(|w| w.name.clone()) } else { None };
    ok(StatusCode::OK, &WavePage { waves: found.iter().map(WaveWire::from).collect(), next_cursor })
}

#[utoipa::path(get, path = "/v1/ops/migration/waves/{name}", tag = "migration",
    params(("name" = String, Path)),
    responses((status = 200, body = WaveWire), (status = 403, body = Problem), (status = 404, body = Problem)),
    security(("bearer" = [])))]
/// One wave with its merchants counted by state and its planned figures. Operator only.
pub async fn get_wave(
    State(state): State<AppState>,
    Caller(who): Caller,
    Path(name): Path<String>,
) -> Answer {
    let wave = waves::wave(&state.core, &who, &name).await?;
    ok(StatusCode::OK, &WaveWire::from(&wave))
}
