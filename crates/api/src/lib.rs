//! The HTTP surface of Jembatan (DESIGN.md §9): axum routes under `/v1`, bearer-token
//! authentication, idempotency keys, RFC 9457 errors, Prometheus metrics and the OpenAPI 3.1
//! document generated from the handlers themselves.
//!
//! Architecture invariant: this is the only crate that knows JSON wire shapes and HTTP status
//! codes; it decides nothing about access (that is `jembatan_core::authz`) except the blanket
//! rule, enforced here for every route at once, that a regulator token never writes.

pub mod extract;
pub mod idempotency;
pub mod migration;
pub mod migration_run;
pub mod oversight;
pub mod problem;
pub mod routes;
pub mod social;
pub mod wire;

use std::sync::OnceLock;
use std::time::Instant;

use axum::Router;
use axum::extract::{MatchedPath, Request, State};
use axum::http::{Method, StatusCode, header};
use axum::middleware::{self, Next};
use axum::response::{IntoResponse, Response};
use jembatan_core::Core;
use jembatan_domain::Principal;
use metrics_exporter_prometheus::{PrometheusBuilder, PrometheusHandle};
use utoipa::OpenApi;
use utoipa::openapi::security::{HttpAuthScheme, HttpBuilder, SecurityScheme};
use utoipa_axum::router::OpenApiRouter;
use utoipa_axum::routes;

use crate::problem::Problem;

/// Limits of the HTTP surface, with their units.
#[derive(Debug, Clone)]
pub struct ApiLimits {
    pub body_bytes_max: usize,
    /// CSV files posted to the API (bank results, settlement reports).
    pub csv_body_bytes_max: usize,
    pub page_size_default: u32,
    pub page_size_max: u32,
    /// An idempotency claim older than this whose request never finished may be taken over.
    pub idempotency_stale_ms: i64,
}

impl Default for ApiLimits {
    fn default() -> Self {
        ApiLimits {
            body_bytes_max: 64 * 1024,
            csv_body_bytes_max: 2 * 1024 * 1024,
            page_size_default: 20,
            page_size_max: 100,
            idempotency_stale_ms: 60_000,
        }
    }
}

#[derive(Clone)]
pub struct AppState {
    pub core: Core,
    pub limits: ApiLimits,
    pub metrics: PrometheusHandle,
    /// Serves `/social/v1`; absent when the server runs without the social shop's store.
    pub gateway: Option<jembatan_core::gateway::Gateway>,
    /// A migration run started over the API is going on (one at a time per server).
    pub migration_running: std::sync::Arc<std::sync::atomic::AtomicBool>,
    /// Latencies of the storefront requests of the last seconds: the migration's throttle.
    pub live_latency: std::sync::Arc<jembatan_core::migrate::throttle::LatencyWindow>,
    /// Hex of the public key that signs the audit digests, when the server has the key.
    pub audit_public_key: Option<String>,
    /// The compliance policy in force (the built-in one unless the server was given another).
    pub policy: std::sync::Arc<jembatan_domain::policy::Policy>,
}

impl AppState {
    pub fn new(core: Core, limits: ApiLimits) -> AppState {
        AppState {
            core,
            limits,
            metrics: metrics_handle(),
            gateway: None,
            migration_running: Default::default(),
            live_latency: std::sync::Arc::new(jembatan_core::migrate::throttle::LatencyWindow::new(
                std::time::Duration::from_secs(10),
            )),
            audit_public_key: None,
            policy: std::sync::Arc::new(
                jembatan_core::policy::load(jembatan_core::policy::BUILT_IN)
                    .expect("the built-in policy loads"),
            ),
        }
    }

    pub fn with_policy(mut self, policy: jembatan_domain::policy::Policy) -> AppState {
        self.policy = std::sync::Arc::new(policy);
        self
    }

    pub fn with_audit_public_key(mut self, public_key_hex: String) -> AppState {
        self.audit_public_key = Some(public_key_hex);
        self
    }

    pub fn with_gateway(mut self, gateway: jembatan_core::gateway::Gateway) -> AppState {
        self.gateway = Some(gateway);
        self
    }
}

/// The process-wide Prometheus recorder (a process has one; tests start many apps).
pub fn metrics_handle() -> PrometheusHandle {
    static HANDLE: OnceLock<PrometheusHandle> = OnceLock::new();
    HANDLE
        .get_or_init(|| {
            let recorder = PrometheusBuilder::new().build_recorder();
            let handle = recorder.handle();
            // Another recorder may already be installed (an embedding program); then ours
            // renders nothing, which is still correct.
            let _ = metrics::set_global_recorder(recorder);
            handle
        })
        .clone()
}

#[derive(OpenApi)]
#[openapi(
    info(title = "Jembatan", description = "One order, payment and settlement core for two storefronts, with live merchant migration and a regulator's window."),
    modifiers(&BearerAuth),
    tags(
        (name = "merchants", description = "Sellers of the marketplace core"),
        (name = "catalogue", description = "Products, SKUs and stock"),
        (name = "orders", description = "Checkouts and the order lifecycle"),
        (name = "webhooks", description = "Signed event deliveries to merchants and channels (Standard Webhooks)"),
        (name = "payouts", description = "Merchant balances, payouts, batches for the bank and its answers"),
        (name = "reconciliation", description = "Provider settlement reports matched against the ledger"),
        (name = "operations", description = "Health and metrics"),
        (name = "oversight", description = "The regulator's window: audit chain, signed digests (regulator and operator, read-only)"),
        (name = "migration", description = "Waves of social shops planned for the live migration to the core (operator only)"),
        (name = "social", description = "The social shop's own contract (legacy style: digit ids, numeric status codes, decimal-string rupiah, unix seconds), served for every shop wherever it lives"),
    )
)]
struct ApiDoc;

struct BearerAuth;

impl utoipa::Modify for BearerAuth {
    fn modify(&self, openapi: &mut utoipa::openapi::OpenApi) {
        let components = openapi.components.get_or_insert_with(Default::default);
        components.add_security_scheme(
            "bearer",
            SecurityScheme::Http(
                HttpBuilder::new().scheme(HttpAuthScheme::Bearer).bearer_format("jbt_…").build(),
            ),
        );
    }
}

fn api_router() -> OpenApiRouter<AppState> {
    use routes::*;
    OpenApiRouter::with_openapi(ApiDoc::openapi())
        .routes(routes!(create_merchant))
        .routes(routes!(get_merchant))
        .routes(routes!(create_product))
        .routes(routes!(get_product))
        .routes(routes!(get_sku))
        .routes(routes!(set_stock))
        .routes(routes!(create_checkout))
        .routes(routes!(get_payment))
        .routes(routes!(create_refund))
        .routes(routes!(list_refunds))
        .routes(routes!(get_ledger_account))
        .routes(routes!(get_order))
        .routes(routes!(list_orders))
        .routes(routes!(ship_order))
        .routes(routes!(deliver_order))
        .routes(routes!(confirm_order))
        .routes(routes!(cancel_order))
        .routes(routes!(create_webhook_subscription, list_webhook_subscriptions))
        .routes(routes!(get_webhook_subscription, delete_webhook_subscription))
        .routes(routes!(list_webhook_deliveries))
        .routes(routes!(replay_webhook_delivery))
        .routes(routes!(request_payout))
        .routes(routes!(list_payouts))
        .routes(routes!(get_payout))
        .routes(routes!(get_balance))
        .routes(routes!(create_payout_batch))
        .routes(routes!(get_payout_batch_file))
        .routes(routes!(confirm_payout))
        .routes(routes!(apply_payout_results))
        .routes(routes!(create_reconciliation, list_reconciliations))
        .routes(routes!(get_reconciliation))
        .routes(routes!(social::social_products))
        .routes(routes!(social::social_edit_product))
        .routes(routes!(social::social_set_stock))
        .routes(routes!(social::social_shop_orders))
        .routes(routes!(social::social_ship))
        .routes(routes!(social::social_create_order))
        .routes(routes!(social::social_order))
        .routes(routes!(social::social_pay))
        .routes(routes!(social::social_confirm))
        .routes(routes!(social::social_cancel))
        .routes(routes!(social::social_refund))
        .routes(routes!(social::social_refunds))
        .routes(routes!(social::social_grant_consent, social::social_consents))
        .routes(routes!(social::social_withdraw_consent))
        .routes(routes!(social::social_share_profile))
        .routes(routes!(social::social_export_buyer))
        .routes(routes!(social::social_enrol_shop))
        .routes(routes!(social::social_move_shop))
        .routes(routes!(social::social_abort_move))
        .routes(routes!(migration::plan_wave, migration::list_waves))
        .routes(routes!(migration::get_wave))
        .routes(routes!(oversight::list_rules))
        .routes(routes!(oversight::list_pdp_requests))
        .routes(routes!(oversight::transactions_report))
        .routes(routes!(oversight::list_findings))
        .routes(routes!(oversight::acknowledge_finding))
        .routes(routes!(oversight::resolve_finding))
        .routes(routes!(oversight::get_chain))
        .routes(routes!(oversight::list_digests))
        .routes(routes!(oversight::get_digest))
        .routes(routes!(oversight::get_public_key))
        .routes(routes!(migration_run::start_run))
        .routes(routes!(migration_run::get_progress))
        .routes(routes!(migration_run::list_merchants))
        .routes(routes!(migration_run::list_quarantine))
        .routes(routes!(migration_run::accept_quarantine))
        .routes(routes!(migration_run::rollback))
        .routes(routes!(migration_run::finalize))
        .routes(routes!(migration_run::pause_wave))
        .routes(routes!(migration_run::resume_wave))
}

fn ops_router() -> OpenApiRouter<AppState> {
    OpenApiRouter::new().routes(routes!(routes::healthz)).routes(routes!(routes::metrics))
}

/// Routes a payment provider calls, authenticated by the HMAC signature of each request
/// instead of a bearer token.
fn provider_router() -> OpenApiRouter<AppState> {
    OpenApiRouter::new().routes(routes!(routes::payment_callback)).routes(routes!(routes::simulate_payment))
}

/// The OpenAPI document, as served at `/openapi.json` and committed as `openapi.json`.
pub fn openapi() -> utoipa::openapi::OpenApi {
    let (_, api) = api_router().merge(ops_router()).merge(provider_router()).split_for_parts();
    api
}

pub fn openapi_json() -> String {
    openapi().to_pretty_json().expect("openapi serialises") + "\n"
}

pub fn router(state: AppState) -> Router {
    let (api, _) = api_router().split_for_parts();
    let api = api.layer(middleware::from_fn_with_state(state.clone(), authenticate));
    let (ops, _) = ops_router().split_for_parts();
    let (provider, _) = provider_router().split_for_parts();
    let document = openapi_json();
    Router::new()
        .merge(api)
        .merge(ops)
        .merge(provider)
        .route(
            "/openapi.json",
            axum::routing::get(
                move || async move { ([(header::CONTENT_TYPE, "application/json")], document) },
            ),
        )
        .fallback(|| async {
            Problem::new(StatusCode::NOT_FOUND, "not-found", "no such route; see /openapi.json for the API")
        })
        .method_not_allowed_fallback(|| async {
            Problem::new(
                StatusCode::METHOD_NOT_ALLOWED,
                "method-not-allowed",
                "this route does not take that method; see /openapi.json",
            )
        })
        .layer(middleware::from_fn_with_state(state.clone(), observe))
        .layer(tower_http::trace::TraceLayer::new_for_http())
        .with_state(state)
}

/// Resolves the bearer token into a [`Principal`] for the handlers, and refuses every write by
/// a regulator token before any handler runs (DESIGN.md invariant 7).
async fn authenticate(State(state): State<AppState>, mut request: Request, next: Next) -> Response {
    let secret = request
        .headers()
        .get(header::AUTHORIZATION)
        .and_then(|v| v.to_str().ok())
        .and_then(|v| v.strip_prefix("Bearer "))
        .map(str::trim);
    let Some(secret) = secret else { return Problem::unauthenticated().into_response() };
    let principal = match state.core.authenticate(secret).await {
        Ok(Some(principal)) => principal,
        Ok(None) => return Problem::unauthenticated().into_response(),
        Err(error) => return Problem::from(error).into_response(),
    };
    let writes = !matches!(*request.method(), Method::GET | Method::HEAD | Method::OPTIONS);
    if writes && principal == Principal::Regulator {
        return Problem::new(StatusCode::FORBIDDEN, "forbidden", "the regulator has read-only access")
            .into_response();
    }
    request.extensions_mut().insert(principal);
    next.run(request).await
}

/// Request counts and latency per route, for `/metrics`; storefront requests (`/v1`, not
/// `/v1/ops`, and `/social/v1`) also feed the migration's throttle.
async fn observe(State(state): State<AppState>, request: Request, next: Next) -> Response {
    let started = Instant::now();
    let route = request.extensions().get::<MatchedPath>().map_or("unmatched", |p| p.as_str()).to_owned();
    let method = request.method().as_str().to_owned();
    let response = next.run(request).await;
    let status = response.status().as_u16().to_string();
    metrics::counter!("jembatan_http_requests_total", "method" => method.clone(), "route" => route.clone(), "status" => status)
        .increment(1);
    let elapsed = started.elapsed();
    if (route.starts_with("/v1/") && !route.starts_with("/v1/ops/")) || route.starts_with("/social/v1/") {
        state.live_latency.record(elapsed);
    }
    metrics::histogram!("jembatan_http_request_seconds", "method" => method, "route" => route)
        .record(elapsed.as_secs_f64());
    response
}

/// Serves `router` on `listener` until `shutdown` resolves.
pub async fn serve(
    listener: tokio::net::TcpListener,
    state: AppState,
    shutdown: impl std::future::Future<Output = ()> + Send + 'static,
) -> std::io::Result<()> {
    axum::serve(listener, router(state)).with_graceful_shutdown(shutdown).await
}
