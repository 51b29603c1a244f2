//! `/v1/ops/migration` beyond planning: start a run of the engine inside the server, read the
//! progress (the regulator too: it holds no personal data), the merchants of a wave and the
//! quarantine, accept quarantined rows, pause and resume a wave, roll a merchant back and
//! finalize it (DESIGN.md §6; `jembatan migrate …` over HTTP).
//!
//! Operator only, except `GET /v1/ops/migration/progress`, which the regulator reads too.

use std::collections::BTreeMap;
use std::sync::atomic::Ordering;

use axum::extract::rejection::QueryRejection;
use axum::extract::{Path, Query, State};
use axum::http::StatusCode;
use axum::response::Response;
use jembatan_core::migrate::progress::{MigrationProgress, WaveProgress, progress};
use jembatan_core::migrate::throttle::Throttle;
use jembatan_core::migrate::{Engine, EngineOptions};
use jembatan_domain::{MerchantId, Principal, Timestamp, TypedId};
use jembatan_store::migration::MigrationMerchantRecord;
use jembatan_store::migration_run::QuarantineRecord;
use serde::{Deserialize, Serialize};
use utoipa::{IntoParams, ToSchema};

use crate::AppState;
use crate::extract::{Caller, JsonBody};
use crate::problem::Problem;
use crate::routes::{ok, page_size};
use crate::wire::{MoneyWire, rfc3339};

type Answer = Result<Response, Problem>;

/// Most merchants moved at once by a run started over the API.
pub const RUN_PARALLEL_MAX: u32 = 32;

fn operator_only(who: &Principal) -> Result<(), Problem> {
    if *who == Principal::Operator {
        Ok(())
    } else {
        Err(Problem::new(StatusCode::FORBIDDEN, "forbidden", "only the operator runs the migration"))
    }
}

fn money(idr: i64) -> MoneyWire {
    MoneyWire { amount: idr, currency: "IDR".to_owned() }
}

fn merchant_id(raw: &str) -> Result<MerchantId, Problem> {
    MerchantId::parse(raw).map_err(|e| Problem::from(jembatan_core::CoreError::from(e)))
}

// ---- wire shapes ------------------------------------------------------------------------------

#[derive(Debug, Serialize, ToSchema)]
pub struct WaveProgressWire {
    /// The wave's name (`all` for the overall figures).
    pub wave: String,
    pub paused: bool,
    pub merchants: u64,
    /// Merchants per state, every state named.
    pub by_state: BTreeMap<String, u64>,
    /// Cut over or finalized.
    pub merchants_moved: u64,
    pub percent_by_merchants: f64,
    pub gmv_planned: MoneyWire,
    pub gmv_moved: MoneyWire,
    pub percent_by_gmv: f64,
    pub rows_planned: u64,
    pub rows_copied: u64,
    pub percent_by_rows: f64,
    pub rows_per_s: f64,
    /// Seconds left at the rate so far; absent before any copy.
    pub eta_s: Option<f64>,
    pub cutover_pause_p50_ms: Option<f64>,
    pub cutover_pause_p99_ms: Option<f64>,
    pub cutover_pause_max_ms: Option<f64>,
}

impl From<&WaveProgress> for WaveProgressWire {
    fn from(w: &WaveProgress) -> Self {
        WaveProgressWire {
            wave: w.wave.clone(),
            paused: w.paused,
            merchants: w.merchants,
            by_state: w.by_state.clone(),
            merchants_moved: w.merchants_moved,
            percent_by_merchants: w.percent_by_merchants,
            gmv_planned: money(w.gmv_planned_idr),
            gmv_moved: money(w.gmv_moved_idr),
            percent_by_gmv: w.percent_by_gmv,
            rows_planned: w.rows_planned,
            rows_copied: w.rows_copied,
            percent_by_rows: w.percent_by_rows,
            rows_per_s: w.rows_per_s,
            eta_s: w.eta_s,
            cutover_pause_p50_ms: w.cutover_pause_p50_ms,
            cutover_pause_p99_ms: w.cutover_pause_p99_ms,
            cutover_pause_max_ms: w.cutover_pause_max_ms,
        }
    }
}

#[derive(Debug, Serialize, ToSchema)]
pub struct WorkstreamWire {
    /// `payments_through_core`, `user_data_separated` or `merchant_operations_moved`.
    pub name: String,
    pub percent: f64,
    pub detail: String,
}

#[derive(Debug, Serialize, ToSchema)]
pub struct QuarantineCountsWire {
    pub open: u64,
    pub resolved: u64,
    pub accepted: u64,
}

/// Where the migration stands, from stored state.
#[derive(Debug, Serialize, ToSchema)]
pub struct ProgressWire {
    pub waves: Vec<WaveProgressWire>,
    pub overall: WaveProgressWire,
    pub quarantine: QuarantineCountsWire,
    pub workstreams: Vec<WorkstreamWire>,
    /// The mean of the workstreams: how far along the integration is.
    pub integration_percent: f64,
    /// Whether a run started over the API is going on in this server.
    pub running: bool,
}

impl ProgressWire {
    fn new(p: &MigrationProgress, running: bool) -> ProgressWire {
        ProgressWire {
            waves: p.waves.iter().map(WaveProgressWire::from).collect(),
            overall: (&p.overall).into(),
            quarantine: QuarantineCountsWire {
                open: p.quarantine.open,
                resolved: p.quarantine.resolved,
                accepted: p.quarantine.accepted,
            },
            workstreams: p
                .workstreams
                .iter()
                .map(|w| WorkstreamWire {
                    name: w.name.to_owned(),
                    percent: w.percent,
                    detail: w.detail.clone(),
                })
                .collect(),
            integration_percent: p.integration_percent,
            running,
        }
    }
}

#[derive(Debug, Serialize, ToSchema)]
pub struct MigrationMerchantWire {
    pub merchant_id: String,
    pub shop_id: String,
    pub wave: String,
    /// legacy, copying, catching_up, verified, fenced, cut_over, finalized, rolled_back, quarantined.
    pub state: String,
    pub rows_planned: u64,
    pub rows_copied: u64,
    pub gmv_planned: MoneyWire,
    pub defects_expected: u64,
    pub attempts: u64,
    /// Why it stopped or was sent back, if it was.
    pub last_error: Option<String>,
    pub cutover_pause_ms: Option<f64>,
    pub started_at: Option<String>,
    pub cut_over_at: Option<String>,
}

impl From<&MigrationMerchantRecord> for MigrationMerchantWire {
    fn from(m: &MigrationMerchantRecord) -> Self {
        let at = |ms: Option<i64>| ms.map(|ms| rfc3339(Timestamp::from_unix_ms(ms)));
        MigrationMerchantWire {
            merchant_id: m.merchant_id.to_string(),
            shop_id: m.shop_id.clone(),
            wave: m.wave.clone(),
            state: m.state.as_str().to_owned(),
            rows_planned: m.rows_planned,
            rows_copied: m.rows_copied,
            gmv_planned: m.gmv_planned.into(),
            defects_expected: m.defects_expected,
            attempts: m.attempts,
            last_error: m.last_error.clone(),
            cutover_pause_ms: m.cutover_pause_us.map(|us| us as f64 / 1000.0),
            started_at: at(m.started_at_ms),
            cut_over_at: at(m.cut_over_at_ms),
        }
    }
}

#[derive(Debug, Serialize, ToSchema)]
pub struct MigrationMerchantPage {
    pub merchants: Vec<MigrationMerchantWire>,
    pub next_cursor: Option<String>,
}

#[derive(Debug, Serialize, ToSchema)]
pub struct QuarantineWire {
    pub merchant_id: String,
    pub shop_id: String,
    /// `product` or `order`.
    pub entity: String,
    /// The legacy id of the row.
    pub legacy_key: String,
    /// Defect kinds, e.g. `ambiguous-price`, `duplicate-sku-code`, `core-refused`.
    pub kinds: Vec<String>,
    pub reason: String,
    /// `open`, `resolved` or `accepted`.
    pub state: String,
    /// The legacy row as it was read (personal data included: operator only).
    #[schema(value_type = Object)]
    pub raw: serde_json::Value,
    pub created_at: String,
    pub updated_at: String,
}

impl From<&QuarantineRecord> for QuarantineWire {
    fn from(q: &QuarantineRecord) -> Self {
        QuarantineWire {
            merchant_id: q.merchant_id.to_string(),
            shop_id: q.shop_id.clone(),
            entity: q.entity.as_str().to_owned(),
            legacy_key: q.legacy_key.clone(),
            kinds: q.kinds.split(',').filter(|k| !k.is_empty()).map(str::to_owned).collect(),
            reason: q.reason.clone(),
            state: q.state.clone(),
            raw: serde_json::from_str(&q.raw).unwrap_or_else(|_| q.raw.clone().into()),
            created_at: rfc3339(Timestamp::from_unix_ms(q.created_at_ms)),
            updated_at: rfc3339(Timestamp::from_unix_ms(q.updated_at_ms)),
        }
    }
}

#[derive(Debug, Serialize, ToSchema)]
pub struct QuarantinePage {
    pub rows: Vec<QuarantineWire>,
    /// Pass as `cursor` for the next page; absent on the last.
    pub next_cursor: Option<String>,
}

#[derive(Debug, Deserialize, ToSchema)]
pub struct RunRequest {
    /// Only this wave's merchants; absent: every wave's.
    pub wave: Option<String>,
    /// Merchants moved at the same time (1 to 32, default 4).
    pub parallel: Option<u32>,
    /// The copy slows down while the storefronts' p99 over the last 10 s is above this many
    /// milliseconds (default 100; 0: never).
    pub throttle_p99_ms: Option<u64>,
}

#[derive(Debug, Serialize, ToSchema)]
pub struct RunStarted {
    pub wave: Option<String>,
    pub parallel: u32,
}

#[derive(Debug, Deserialize, ToSchema)]
pub struct ReasonRequest {
    /// Why (recorded in the audit log).
    pub reason: String,
}

#[derive(Debug, Serialize, ToSchema)]
pub struct AcceptedWire {
    pub merchant_id: String,
    /// Open quarantined rows now accepted.
    pub accepted: u64,
}

#[derive(Debug, Serialize, ToSchema)]
pub struct RollbackWire {
    pub merchant: MigrationMerchantWire,
    pub products_written: u64,
    pub orders_inserted: u64,
    pub orders_updated: u64,
}

#[derive(Debug, Deserialize, IntoParams)]
pub struct MerchantsQuery {
    /// Only this wave's merchants.
    pub wave: Option<String>,
    pub cursor: Option<String>,
    pub limit: Option<i64>,
}

#[derive(Debug, Deserialize, IntoParams)]
pub struct QuarantineQuery {
    /// Only this merchant's rows.
    pub merchant_id: Option<String>,
    /// `open`, `resolved` or `accepted`.
    pub state: Option<String>,
    pub cursor: Option<String>,
    pub limit: Option<i64>,
}

fn query<T>(query: Result<Query<T>, QueryRejection>) -> Result<T, Problem> {
    query
        .map(|Query(q)| q)
        .map_err(|e| Problem::new(StatusCode::UNPROCESSABLE_ENTITY, "validation", e.body_text()))
}

// ---- handlers ---------------------------------------------------------------------------------

#[utoipa::path(post, path = "/v1/ops/migration/runs", tag = "migration",
    request_body = RunRequest,
    responses(
        (status = 202, body = RunStarted, description = "The engine runs in the server; follow it with the progress"),
        (status = 403, body = Problem),
        (status = 409, body = Problem, description = "`conflict`: a run is already going on in this server"),
        (status = 422, body = Problem),
        (status = 503, body = Problem, description = "`social-unavailable`: the server runs without the legacy store")),
    security(("bearer" = [])))]
/// Starts `migrate run` inside the server: every planned merchant (of one wave, or all) is
/// copied, caught up, verified and cut over, from where it stands. Operator only.
pub async fn start_run(
    State(state): State<AppState>,
    Caller(who): Caller,
    body: JsonBody<RunRequest>,
) -> Answer {
    operator_only(&who)?;
    let gateway = crate::social::gateway(&state)?.clone();
    let request = body.value;
    let parallel = request.parallel.unwrap_or(4);
    if !(1..=RUN_PARALLEL_MAX).contains(&parallel) {
        return Err(Problem::new(
            StatusCode::UNPROCESSABLE_ENTITY,
            "validation",
            format!("parallel is 1 to {RUN_PARALLEL_MAX}"),
        )
        .with_field("parallel"));
    }
    if let Some(wave) = &request.wave
        && state.core.store().wave(wave).await.map_err(jembatan_core::CoreError::from)?.is_none()
    {
        return Err(Problem::new(StatusCode::NOT_FOUND, "not-found", format!("no wave `{wave}`")));
    }
    if state.migration_running.swap(true, Ordering::SeqCst) {
        return Err(Problem::new(
            StatusCode::CONFLICT,
            "conflict",
            "a migration run is already going on in this server: follow it with GET /v1/ops/migration/progress",
        ));
    }
    let running = state.migration_running.clone();
    let wave = request.wave.clone();
    let throttle = match request.throttle_p99_ms.unwrap_or(100) {
        0 => None,
        ms => Some(Throttle::new(state.live_latency.clone(), std::time::Duration::from_millis(ms), false)),
    };
    tokio::spawn(async move {
        let engine = Engine::new(gateway, EngineOptions { throttle, ..EngineOptions::default() });
        match engine.run(&Principal::Operator, wave, parallel as usize).await {
            Ok(report) => {
                if let Err(error) = engine.reverse_sync_all(None).await {
                    tracing::warn!(%error, "the reverse sync after a run failed");
                }
                tracing::info!(
                    merchants = report.merchants.len(),
                    failed = report.failed.len(),
                    "migration run done"
                );
            }
            Err(error) => tracing::warn!(%error, "migration run failed"),
        }
        running.store(false, Ordering::SeqCst);
    });
    ok(StatusCode::ACCEPTED, &RunStarted { wave: request.wave, parallel })
}

#[utoipa::path(get, path = "/v1/ops/migration/progress", tag = "migration",
    responses((status = 200, body = ProgressWire), (status = 403, body = Problem), (status = 503, body = Problem)),
    security(("bearer" = [])))]
/// Where the migration stands, per wave and overall: merchants by state, percent done by
/// merchants, GMV and rows, rows/s, ETA, cutover pauses, quarantine, and the integration's
/// workstreams. Operator and regulator.
pub async fn get_progress(State(state): State<AppState>, Caller(who): Caller) -> Answer {
    let gateway = crate::social::gateway(&state)?;
    let p = progress(&state.core, gateway.legacy(), &who).await?;
    ok(StatusCode::OK, &ProgressWire::new(&p, state.migration_running.load(Ordering::SeqCst)))
}

#[utoipa::path(get, path = "/v1/ops/migration/merchants", tag = "migration",
    params(MerchantsQuery),
    responses((status = 200, body = MigrationMerchantPage), (status = 403, body = Problem), (status = 422, body = Problem)),
    security(("bearer" = [])))]
/// The merchants being moved, in merchant id order, with their state and figures. Operator only.
pub async fn list_merchants(
    State(state): State<AppState>,
    Caller(who): Caller,
    q: Result<Query<MerchantsQuery>, QueryRejection>,
) -> Answer {
    operator_only(&who)?;
    let q = query(q)?;
    let limit = page_size(&state.limits, q.limit)?;
    let after = q.cursor.unwrap_or_default();
    let store = state.core.store();
    let mut found = match &q.wave {
        Some(wave) => store.wave_merchants(wave, &after, limit + 1).await,
        None => store.all_migration_merchants(&after, limit + 1).await,
    }
    .map_err(jembatan_core::CoreError::from)?;
    let more = found.len() > limit as usize;
    found.truncate(limit as usize);
    let next_cursor = if more { found.last().map(|m| m.merchant_id.to_string()) } else { None };
    ok(
        StatusCode::OK,
        &MigrationMerchantPage {
            merchants: found.iter().map(MigrationMerchantWire::from).collect(),
            next_cursor,
        },
    )
}

#[utoipa::path(get, path = "/v1/ops/migration/quarantine", tag = "migration",
    params(QuarantineQuery),
    responses((status = 200, body = QuarantinePage), (status = 403, body = Problem), (status = 422, body = Problem)),
    security(("bearer" = [])))]
/// Rows the core could not take, with their reason and raw legacy value. Operator only.
pub async fn list_quarantine(
    State(state): State<AppState>,
    Caller(who): Caller,
    q: Result<Query<QuarantineQuery>, QueryRejection>,
) -> Answer {
    operator_only(&who)?;
    let q = query(q)?;
    let limit = page_size(&state.limits, q.limit)?;
    let merchant = q.merchant_id.as_deref().map(merchant_id).transpose()?;
    if let Some(s) = &q.state
        && !matches!(s.as_str(), "open" | "resolved" | "accepted")
    {
        return Err(Problem::new(
            StatusCode::UNPROCESSABLE_ENTITY,
            "validation",
            "state is open, resolved or accepted",
        )
        .with_field("state"));
    }
    // The cursor is the last row's merchant, entity and key, joined by `/`.
    let after = match q.cursor.as_deref() {
        None | Some("") => (String::new(), String::new(), String::new()),
        Some(cursor) => {
            let parts: Vec<&str> = cursor.splitn(3, '/').collect();
            match parts.as_slice() {
                [m, e, k] => ((*m).to_owned(), (*e).to_owned(), (*k).to_owned()),
                _ => {
                    return Err(Problem::new(
                        StatusCode::UNPROCESSABLE_ENTITY,
                        "validation",
                        "not a cursor of this list",
                    )
                    .with_field("cursor"));
                }
            }
        }
    };
    let mut rows = state
        .core
        .store()
        .quarantined(merchant, q.state, after, limit + 1)
        .await
        .map_err(jembatan_core::CoreError::from)?;
    let more = rows.len() > limit as usize;
    rows.truncate(limit as usize);
    let next_cursor = if more {
        rows.last().map(|r| format!("{}/{}/{}", r.merchant_id, r.entity.as_str(), r.legacy_key))
    } else {
        None
    };
    ok(StatusCode::OK, &QuarantinePage { rows: rows.iter().map(QuarantineWire::from).collect(), next_cursor })
}

#[utoipa::path(post, path = "/v1/ops/migration/merchants/{merchant_id}/accept-quarantine", tag = "migration",
    params(("merchant_id" = String, Path)),
    request_body = ReasonRequest,
    responses((status = 200, body = AcceptedWire), (status = 403, body = Problem), (status = 422, body = Problem)),
    security(("bearer" = [])))]
/// Accepts moving a merchant without its open quarantined rows, so it can be finalized; the
/// reason is audited. Operator only.
pub async fn accept_quarantine(
    State(state): State<AppState>,
    Caller(who): Caller,
    Path(merchant): Path<String>,
    body: JsonBody<ReasonRequest>,
) -> Answer {
    let merchant = merchant_id(&merchant)?;
    let accepted = state.core.accept_quarantine(&who, merchant, body.value.reason).await?;
    ok(StatusCode::OK, &AcceptedWire { merchant_id: merchant.to_string(), accepted })
}

#[utoipa::path(post, path = "/v1/ops/migration/merchants/{merchant_id}/rollback", tag = "migration",
    params(("merchant_id" = String, Path)),
    request_body = ReasonRequest,
    responses(
        (status = 200, body = RollbackWire, description = "The shop is the legacy store's again, with what the core did for it"),
        (status = 403, body = Problem),
        (status = 404, body = Problem),
        (status = 409, body = Problem, description = "`conflict`: the merchant is not cut over"),
        (status = 503, body = Problem)),
    security(("bearer" = [])))]
/// Gives a cut-over merchant back to the legacy store with nothing lost. Operator only.
pub async fn rollback(
    State(state): State<AppState>,
    Caller(who): Caller,
    Path(merchant): Path<String>,
    body: JsonBody<ReasonRequest>,
) -> Answer {
    let merchant = merchant_id(&merchant)?;
    let gateway = crate::social::gateway(&state)?.clone();
    let engine = Engine::new(gateway, EngineOptions::default());
    let (record, synced) = engine.rollback(&who, merchant, &body.value.reason).await?;
    ok(
        StatusCode::OK,
        &RollbackWire {
            merchant: (&record).into(),
            products_written: synced.products,
            orders_inserted: synced.orders_inserted,
            orders_updated: synced.orders_updated,
        },
    )
}

#[utoipa::path(post, path = "/v1/ops/migration/merchants/{merchant_id}/finalize", tag = "migration",
    params(("merchant_id" = String, Path)),
    responses(
        (status = 200, body = MigrationMerchantWire),
        (status = 403, body = Problem),
        (status = 404, body = Problem),
        (status = 409, body = Problem, description = "`conflict`: not cut over, or open quarantined rows"),
        (status = 503, body = Problem)),
    security(("bearer" = [])))]
/// Ends a cut-over merchant's migration for good (its reverse sync stops). Operator only.
pub async fn finalize(
    State(state): State<AppState>,
    Caller(who): Caller,
    Path(merchant): Path<String>,
) -> Answer {
    let merchant = merchant_id(&merchant)?;
    let gateway = crate::social::gateway(&state)?.clone();
    let record = Engine::new(gateway, EngineOptions::default()).finalize(&who, merchant).await?;
    ok(StatusCode::OK, &MigrationMerchantWire::from(&record))
}

#[utoipa::path(post, path = "/v1/ops/migration/waves/{name}/pause", tag = "migration",
    params(("name" = String, Path)),
    responses((status = 204), (status = 403, body = Problem), (status = 404, body = Problem)),
    security(("bearer" = [])))]
/// The engine starts no more merchants of this wave (those in flight finish their step).
pub async fn pause_wave(
    State(state): State<AppState>,
    Caller(who): Caller,
    Path(name): Path<String>,
) -> Answer {
    state.core.pause_wave(&who, name, true).await?;
    Ok(axum::response::IntoResponse::into_response(StatusCode::NO_CONTENT))
}

#[utoipa::path(post, path = "/v1/ops/migration/waves/{name}/resume", tag = "migration",
    params(("name" = String, Path)),
    responses((status = 204), (status = 403, body = Problem), (status = 404, body = Problem)),
    security(("bearer" = [])))]
/// The engine takes this wave's merchants again.
pub async fn resume_wave(
    State(state): State<AppState>,
    Caller(who): Caller,
    Path(name): Path<String>,
) -> Answer {
    state.core.pause_wave(&who, name, false).await?;
    Ok(axum::response::IntoResponse::into_response(StatusCode::NO_CONTENT))
}
