//! The `/v1` handlers. Each one parses its input into domain values, calls one core use case
//! with the caller's principal (the core asks `authz`), and renders the record it gets back.

use axum::extract::rejection::QueryRejection;
use axum::extract::{Path, Query, State};
use axum::http::{HeaderMap, StatusCode, header};
use axum::response::{IntoResponse, Response};
use jembatan_domain::payout::parse_result_file;
use jembatan_domain::reconcile::parse_report;
use jembatan_domain::{
    DomainError, Merchant, MerchantId, Money, OrderAction, OrderId, OrderStatus, PaymentId, PayoutBatchId,
    PayoutId, Principal, ProductId, ReconciliationId, SkuId, StockLevel, WebhookDeliveryId,
    WebhookSubscriptionId,
};
use jembatan_store::catalogue::{ProductRecord, SkuRecord};
use jembatan_store::orders::{CheckoutRecord, OrderRecord};
use jembatan_store::payments::RefundRecord;
use jembatan_store::payouts::{ConfirmationRecord, PayoutBatchRecord, PayoutRecord, ResultLineRecord};
use jembatan_store::reconciliation::ReconciliationRecord;
use jembatan_store::webhooks::{DeliveryRecord, SubscriptionRecord};
use serde::Deserialize;
use utoipa::IntoParams;

use crate::AppState;
use crate::extract::{Caller, CsvBody, JsonBody};
use crate::idempotency;
use crate::problem::{Problem, raw_response};
use crate::wire::*;

type Answer = Result<Response, Problem>;

pub(crate) fn ok<W: serde::Serialize>(status: StatusCode, value: &W) -> Answer {
    Ok(raw_response(status, serde_json::to_string(value).expect("wire types serialise")))
}

fn id<T: jembatan_domain::TypedId>(raw: &str) -> Result<T, Problem> {
    // A malformed id names nothing that exists.
    parse_id::<T>(raw).map_err(|e| Problem::not_found(&format!("`{raw}` ({e})")))
}

#[utoipa::path(post, path = "/v1/merchants", tag = "merchants",
    request_body = CreateMerchantRequest,
    params(("Idempotency-Key" = Option<String>, Header, description = "Makes the POST safe to retry")),
    responses((status = 201, body = MerchantResponse), (status = 403, body = Problem), (status = 422, body = Problem)),
    security(("bearer" = [])))]
pub async fn create_merchant(
    State(state): State<AppState>,
    Caller(who): Caller,
    headers: HeaderMap,
    body: JsonBody<CreateMerchantRequest>,
) -> Answer {
    let input = body.value.parse()?;
    let core = state.core.clone();
    Ok(idempotency::run(
        &state,
        &who.clone(),
        &headers,
        "POST /v1/merchants",
        &body.bytes,
        StatusCode::CREATED,
        |m: &Merchant| MerchantResponse::from(m),
        move |idem| async move { core.create_merchant(&who, input, idem).await },
    )
    .await)
}

#[utoipa::path(get, path = "/v1/merchants/{merchant_id}", tag = "merchants",
    params(("merchant_id" = String, Path)),
    responses((status = 200, body = MerchantResponse), (status = 404, body = Problem)),
    security(("bearer" = [])))]
pub async fn get_merchant(
    State(state): State<AppState>,
    Caller(who): Caller,
    Path(raw): Path<String>,
) -> Answer {
    let merchant = state.core.merchant(&who, id::<MerchantId>(&raw)?).await?;
    ok(StatusCode::OK, &MerchantResponse::from(&merchant))
}

#[utoipa::path(post, path = "/v1/merchants/{merchant_id}/products", tag = "catalogue",
    request_body = CreateProductRequest,
    params(("merchant_id" = String, Path), ("Idempotency-Key" = Option<String>, Header)),
    responses((status = 201, body = ProductResponse), (status = 404, body = Problem), (status = 409, body = Problem), (status = 422, body = Problem)),
    security(("bearer" = [])))]
pub async fn create_product(
    State(state): State<AppState>,
    Caller(who): Caller,
    Path(raw): Path<String>,
    headers: HeaderMap,
    body: JsonBody<CreateProductRequest>,
) -> Answer {
    let merchant_id = id::<MerchantId>(&raw)?;
    let product = body.value.parse(merchant_id)?;
    let core = state.core.clone();
    Ok(idempotency::run(
        &state,
        &who.clone(),
        &headers,
        &format!("POST /v1/merchants/{merchant_id}/products"),
        &body.bytes,
        StatusCode::CREATED,
        |p: &ProductRecord| ProductResponse::from(p),
        move |idem| async move { core.create_product(&who, product, idem).await },
    )
    .await)
}

#[utoipa::path(get, path = "/v1/products/{product_id}", tag = "catalogue",
    params(("product_id" = String, Path)),
    responses((status = 200, body = ProductResponse), (status = 404, body = Problem)),
    security(("bearer" = [])))]
pub async fn get_product(
    State(state): State<AppState>,
    Caller(who): Caller,
    Path(raw): Path<String>,
) -> Answer {
    let product = state.core.product(&who, id::<ProductId>(&raw)?).await?;
    ok(StatusCode::OK, &ProductResponse::from(&product))
}

#[utoipa::path(get, path = "/v1/skus/{sku_id}", tag = "catalogue",
    params(("sku_id" = String, Path)),
    responses((status = 200, body = SkuResponse), (status = 404, body = Problem)),
    security(("bearer" = [])))]
pub async fn get_sku(State(state): State<AppState>, Caller(who): Caller, Path(raw): Path<String>) -> Answer {
    let sku = state.core.sku(&who, id::<SkuId>(&raw)?).await?;
    ok(StatusCode::OK, &SkuResponse::from(&sku))
}

#[utoipa::path(put, path = "/v1/skus/{sku_id}/stock", tag = "catalogue",
    request_body = SetStockRequest,
    params(("sku_id" = String, Path)),
    responses((status = 200, body = SkuResponse), (status = 404, body = Problem), (status = 409, body = Problem), (status = 422, body = Problem)),
    security(("bearer" = [])))]
pub async fn set_stock(
    State(state): State<AppState>,
    Caller(who): Caller,
    Path(raw): Path<String>,
    headers: HeaderMap,
    body: JsonBody<SetStockRequest>,
) -> Answer {
    let sku_id = id::<SkuId>(&raw)?;
    let level = StockLevel::on_hand(body.value.stock_on_hand).map_err(|_| {
        DomainError::invalid(
            "stock_on_hand",
            format!("must be between 0 and {}", jembatan_domain::limits::STOCK_UNITS_MAX),
        )
    })?;
    let core = state.core.clone();
    // PUT is idempotent by nature; a key is honoured all the same.
    Ok(idempotency::run(
        &state,
        &who.clone(),
        &headers,
        &format!("PUT /v1/skus/{sku_id}/stock"),
        &body.bytes,
        StatusCode::OK,
        |s: &SkuRecord| SkuResponse::from(s),
        move |idem| async move { core.set_stock(&who, sku_id, level, idem).await },
    )
    .await)
}

#[utoipa::path(post, path = "/v1/checkouts", tag = "orders",
    request_body = CreateCheckoutRequest,
    params(("Idempotency-Key" = Option<String>, Header)),
    responses((status = 201, body = CheckoutResponse), (status = 403, body = Problem), (status = 409, body = Problem), (status = 422, body = Problem)),
    security(("bearer" = [])))]
pub async fn create_checkout(
    State(state): State<AppState>,
    Caller(who): Caller,
    headers: HeaderMap,
    body: JsonBody<CreateCheckoutRequest>,
) -> Answer {
    let Principal::Channel(channel) = &who else {
        return Err(Problem::new(
            StatusCode::FORBIDDEN,
            "forbidden",
            "only a channel token (social or marketplace) checks out",
        ));
    };
    let request = body.value.parse(*channel)?;
    let core = state.core.clone();
    Ok(idempotency::run(
        &state,
        &who.clone(),
        &headers,
        "POST /v1/checkouts",
        &body.bytes,
        StatusCode::CREATED,
        |c: &CheckoutRecord| CheckoutResponse::from(c),
        move |idem| async move { core.checkout(&who, request, idem).await },
    )
    .await)
}

#[utoipa::path(get, path = "/v1/payments/{payment_id}", tag = "payments",
    params(("payment_id" = String, Path)),
    responses((status = 200, body = PaymentResponse), (status = 403, body = Problem), (status = 404, body = Problem)),
    security(("bearer" = [])))]
pub async fn get_payment(
    State(state): State<AppState>,
    Caller(who): Caller,
    Path(raw): Path<String>,
) -> Answer {
    let payment = state.core.payment(&who, id::<PaymentId>(&raw)?).await?;
    ok(StatusCode::OK, &PaymentResponse::from(&payment))
}

/// The payment provider's callback: authenticated by its HMAC signature, not a bearer token.
/// A repeated callback answers 200 `already_applied` and changes nothing; every callback is
/// recorded, refused ones with their reason.
#[utoipa::path(post, path = "/v1/payments/callbacks", tag = "payments",
    params(
        ("x-callback-timestamp" = String, Header, description = "Unix seconds when the provider sent it"),
        ("x-callback-signature" = String, Header, description = "`v1=` + hex HMAC-SHA256 of `{timestamp}.{body}` under the provider secret"),
    ),
    responses((status = 200, body = CallbackResponse), (status = 401, body = Problem), (status = 404, body = Problem),
        (status = 409, body = Problem), (status = 422, body = Problem)))]
pub async fn payment_callback(
    State(state): State<AppState>,
    headers: HeaderMap,
    body: axum::body::Bytes,
) -> Answer {
    if body.len() > state.limits.body_bytes_max {
        return Err(Problem::new(
            StatusCode::PAYLOAD_TOO_LARGE,
            "body-too-large",
            "the callback body is too large",
        ));
    }
    let header = |name: &str| headers.get(name).and_then(|v| v.to_str().ok()).map(str::to_owned);
    let answer = state
        .core
        .payment_callback(
            header(jembatan_core::payments::TIMESTAMP_HEADER).as_deref(),
            header(jembatan_core::payments::SIGNATURE_HEADER).as_deref(),
            &body,
        )
        .await?;
    callback_answer(answer)
}

fn callback_answer(answer: jembatan_core::payments::CallbackAnswer) -> Answer {
    use jembatan_store::payments::CallbackOutcome as O;
    let (status, kind) = match answer.outcome {
        O::Applied | O::AlreadyApplied => {
            return ok(
                StatusCode::OK,
                &CallbackResponse {
                    outcome: answer.outcome.as_str().to_owned(),
                    detail: answer.detail,
                    payment: answer.payment.as_ref().map(PaymentResponse::from),
                },
            );
        }
        O::RefusedUnknown => (StatusCode::NOT_FOUND, "unknown-payment"),
        O::RefusedAmount => (StatusCode::UNPROCESSABLE_ENTITY, "wrong-amount"),
        O::RefusedExpired => (StatusCode::CONFLICT, "payment-expired"),
        O::RefusedSignature => (StatusCode::UNAUTHORIZED, "bad-signature"),
        O::RefusedTimestamp => (StatusCode::UNAUTHORIZED, "stale-callback"),
        O::RefusedMalformed => (StatusCode::UNPROCESSABLE_ENTITY, "malformed-callback"),
    };
    let recorded = !matches!(answer.outcome, O::RefusedSignature | O::RefusedTimestamp);
    let note = if recorded { "recorded; nothing changed" } else { "nothing changed" };
    Err(Problem::new(status, kind, format!("{} ({note})", answer.detail)))
}

/// The provider simulator's "the buyer paid": it signs the callback a real provider would send
/// and hands it to the same verification and completion path as `/v1/payments/callbacks`. The
/// request itself must be signed with the provider secret over its method, path and body (see
/// `jembatan_core::payments::simulator_request_message`), so it can only pay the payment it
/// names; it makes no outbound request.
#[utoipa::path(post, path = "/v1/provider-sim/payments/{payment_id}/pay", tag = "payments",
    params(("payment_id" = String, Path),
        ("x-callback-timestamp" = String, Header), ("x-callback-signature" = String, Header)),
    request_body = SimulatePaymentRequest,
    responses((status = 200, body = CallbackResponse), (status = 401, body = Problem), (status = 404, body = Problem),
        (status = 409, body = Problem), (status = 422, body = Problem)))]
pub async fn simulate_payment(
    State(state): State<AppState>,
    Path(raw): Path<String>,
    headers: HeaderMap,
    body: axum::body::Bytes,
) -> Answer {
    let Some(simulator) = state.core.simulator() else {
        return Err(Problem::new(
            StatusCode::NOT_FOUND,
            "not-found",
            "the provider simulator is not enabled",
        ));
    };
    let header = |name: &str| headers.get(name).and_then(|v| v.to_str().ok());
    let message = jembatan_core::payments::simulator_request_message(&raw, &body);
    simulator
        .verify_signature(
            header(jembatan_core::payments::TIMESTAMP_HEADER),
            header(jembatan_core::payments::SIGNATURE_HEADER),
            &message,
            state.core.clock().now(),
        )
        .map_err(|refusal| Problem::new(StatusCode::UNAUTHORIZED, "bad-signature", refusal.detail))?;
    let request: SimulatePaymentRequest = if body.is_empty() {
        SimulatePaymentRequest::default()
    } else {
        serde_json::from_slice(&body)
            .map_err(|e| Problem::new(StatusCode::UNPROCESSABLE_ENTITY, "validation", format!("body: {e}")))?
    };
    let amount = request
        .amount
        .map(|a| {
            Money::from_rupiah(a).map_err(|_| DomainError::invalid("amount", "must be 0 or more rupiah"))
        })
        .transpose()?;
    let payment_id = id::<PaymentId>(&raw)?;
    callback_answer(state.core.provider_pays(payment_id, amount).await?)
}

#[utoipa::path(get, path = "/v1/ledger/accounts/{account_id}", tag = "payments",
    params(("account_id" = String, Path), PageQuery),
    responses((status = 200, body = LedgerAccountResponse), (status = 403, body = Problem), (status = 404, body = Problem),
        (status = 422, body = Problem)),
    security(("bearer" = [])))]
pub async fn get_ledger_account(
    State(state): State<AppState>,
    Caller(who): Caller,
    Path(raw): Path<String>,
    query: Result<Query<PageQuery>, QueryRejection>,
) -> Answer {
    let account_id = id::<jembatan_domain::AccountId>(&raw)?;
    let (limit, cursor) = page::<jembatan_domain::TransferId>(&state, query)?;
    let (account, mut transfers) = state.core.ledger_account(&who, account_id, cursor, limit + 1).await?;
    let more = transfers.len() > limit as usize;
    transfers.truncate(limit as usize);
    let b = account.balances;
    ok(
        StatusCode::OK,
        &LedgerAccountResponse {
            id: account.id.to_string(),
            kind: account.kind.as_str().to_owned(),
            merchant_id: account.merchant.map(|m| m.to_string()),
            debits_pending: b.debits_pending,
            debits_posted: b.debits_posted,
            credits_pending: b.credits_pending,
            credits_posted: b.credits_posted,
            credit_balance: b.credit_balance(),
            next_cursor: if more { transfers.last().map(|t| t.new.id.to_string()) } else { None },
            transfers: transfers.iter().map(TransferResponse::from).collect(),
        },
    )
}

#[utoipa::path(post, path = "/v1/orders/{order_id}/refunds", tag = "payments",
    params(("order_id" = String, Path), ("Idempotency-Key" = Option<String>, Header)),
    request_body = CreateRefundRequest,
    responses((status = 201, body = RefundResponse), (status = 403, body = Problem), (status = 404, body = Problem),
        (status = 409, body = Problem), (status = 422, body = Problem)),
    security(("bearer" = [])))]
pub async fn create_refund(
    State(state): State<AppState>,
    Caller(who): Caller,
    Path(raw): Path<String>,
    headers: HeaderMap,
    body: JsonBody<CreateRefundRequest>,
) -> Answer {
    let order_id = id::<OrderId>(&raw)?;
    let (amount, reason) = body.value.parse()?;
    let core = state.core.clone();
    Ok(idempotency::run(
        &state,
        &who.clone(),
        &headers,
        &format!("POST /v1/orders/{order_id}/refunds"),
        &body.bytes,
        StatusCode::CREATED,
        |r: &RefundRecord| RefundResponse::from(r),
        move |idem| async move { core.refund(&who, order_id, amount, reason, idem).await },
    )
    .await)
}

#[utoipa::path(get, path = "/v1/orders/{order_id}/refunds", tag = "payments",
    params(("order_id" = String, Path)),
    responses((status = 200, body = RefundList), (status = 404, body = Problem)),
    security(("bearer" = [])))]
pub async fn list_refunds(
    State(state): State<AppState>,
    Caller(who): Caller,
    Path(raw): Path<String>,
) -> Answer {
    let refunds = state.core.refunds_of_order(&who, id::<OrderId>(&raw)?).await?;
    ok(StatusCode::OK, &RefundList { refunds: refunds.iter().map(RefundResponse::from).collect() })
}

#[utoipa::path(get, path = "/v1/orders/{order_id}", tag = "orders",
    params(("order_id" = String, Path)),
    responses((status = 200, body = OrderResponse), (status = 404, body = Problem)),
    security(("bearer" = [])))]
pub async fn get_order(
    State(state): State<AppState>,
    Caller(who): Caller,
    Path(raw): Path<String>,
) -> Answer {
    let order = state.core.order(&who, id::<OrderId>(&raw)?).await?;
    ok(StatusCode::OK, &OrderResponse::new(&order, who == Principal::Regulator))
}

#[derive(Debug, Deserialize, IntoParams)]
#[into_params(parameter_in = Query)]
pub struct ListOrdersQuery {
    /// Page size, 1 to 100 (default 20).
    pub limit: Option<i64>,
    /// `next_cursor` of the previous page.
    pub cursor: Option<String>,
    /// Only orders in this status.
    pub status: Option<String>,
}

#[utoipa::path(get, path = "/v1/merchants/{merchant_id}/orders", tag = "orders",
    params(("merchant_id" = String, Path), ListOrdersQuery),
    responses((status = 200, body = OrderPage), (status = 404, body = Problem), (status = 422, body = Problem)),
    security(("bearer" = [])))]
pub async fn list_orders(
    State(state): State<AppState>,
    Caller(who): Caller,
    Path(raw): Path<String>,
    query: Result<Query<ListOrdersQuery>, QueryRejection>,
) -> Answer {
    let merchant_id = id::<MerchantId>(&raw)?;
    let Query(query) =
        query.map_err(|e| Problem::new(StatusCode::UNPROCESSABLE_ENTITY, "validation", e.body_text()))?;
    let (limit, cursor) = page_of::<OrderId>(&state.limits, query.limit, query.cursor.as_deref())?;
    let status = query.status.as_deref().map(OrderStatus::parse).transpose()?;
    let mut orders = state.core.orders_of_merchant(&who, merchant_id, status, cursor, limit + 1).await?;
    let more = orders.len() > limit as usize;
    orders.truncate(limit as usize);
    let next_cursor = if more { orders.last().map(|o| o.id.to_string()) } else { None };
    let masked = who == Principal::Regulator;
    ok(
        StatusCode::OK,
        &OrderPage { orders: orders.iter().map(|o| OrderResponse::new(o, masked)).collect(), next_cursor },
    )
}

async fn transition(
    state: AppState,
    who: Principal,
    raw: String,
    headers: HeaderMap,
    action: OrderAction,
) -> Answer {
    let order_id = id::<OrderId>(&raw)?;
    let core = state.core.clone();
    let route = format!("POST /v1/orders/{order_id}/{}", action.as_str());
    Ok(idempotency::run(
        &state,
        &who.clone(),
        &headers,
        &route,
        b"",
        StatusCode::OK,
        |o: &OrderRecord| OrderResponse::new(o, false),
        move |idem| async move { core.transition_order(&who, order_id, action, idem).await },
    )
    .await)
}

macro_rules! transition_route {
    ($name:ident, $path:literal, $action:expr, $doc:literal) => {
        #[doc = $doc]
        #[utoipa::path(post, path = $path, tag = "orders",
            params(("order_id" = String, Path), ("Idempotency-Key" = Option<String>, Header)),
            responses((status = 200, body = OrderResponse), (status = 403, body = Problem), (status = 404, body = Problem), (status = 409, body = Problem)),
            security(("bearer" = [])))]
        pub async fn $name(State(state): State<AppState>, Caller(who): Caller, Path(raw): Path<String>, headers: HeaderMap) -> Answer {
            transition(state, who, raw, headers, $action).await
        }
    };
}

transition_route!(
    ship_order,
    "/v1/orders/{order_id}/ship",
    OrderAction::Ship,
    "The merchant hands a paid order to the courier."
);
transition_route!(
    deliver_order,
    "/v1/orders/{order_id}/deliver",
    OrderAction::Deliver,
    "The courier delivered a shipped order."
);
transition_route!(
    confirm_order,
    "/v1/orders/{order_id}/confirm",
    OrderAction::Confirm,
    "The buyer confirms receipt of a delivered order."
);
transition_route!(
    cancel_order,
    "/v1/orders/{order_id}/cancel",
    OrderAction::Cancel,
    "Cancels an order before shipping; its stock returns."
);

// ----- webhooks -----

#[derive(Debug, Deserialize, IntoParams)]
#[into_params(parameter_in = Query)]
pub struct PageQuery {
    /// Page size, 1 to 100 (default 20).
    pub limit: Option<i64>,
    /// `next_cursor` of the previous page.
    pub cursor: Option<String>,
}

/// The page size and cursor of a list request, checked against the limits.
fn page<T: jembatan_domain::TypedId>(
    state: &AppState,
    query: Result<Query<PageQuery>, QueryRejection>,
) -> Result<(u32, Option<T>), Problem> {
    let Query(query) =
        query.map_err(|e| Problem::new(StatusCode::UNPROCESSABLE_ENTITY, "validation", e.body_text()))?;
    page_of(&state.limits, query.limit, query.cursor.as_deref())
}

/// A page size (default and maximum from the limits) and a cursor naming the last item seen.
fn page_of<T: jembatan_domain::TypedId>(
    limits: &crate::ApiLimits,
    limit: Option<i64>,
    cursor: Option<&str>,
) -> Result<(u32, Option<T>), Problem> {
    let limit = page_size(limits, limit)?;
    let cursor = cursor
        .map(|c| {
            parse_id::<T>(c)
                .map_err(|_| DomainError::invalid("cursor", "must be the next_cursor of a previous page"))
        })
        .transpose()?;
    Ok((limit, cursor))
}

/// A list's page size: the default when absent, refused outside 1 to the maximum.
pub(crate) fn page_size(limits: &crate::ApiLimits, limit: Option<i64>) -> Result<u32, Problem> {
    let limit = limit.unwrap_or(i64::from(limits.page_size_default));
    if !(1..=i64::from(limits.page_size_max)).contains(&limit) {
        return Err(
            DomainError::invalid("limit", format!("must be between 1 and {}", limits.page_size_max)).into()
        );
    }
    Ok(limit as u32)
}

#[utoipa::path(post, path = "/v1/webhooks/subscriptions", tag = "webhooks",
    request_body = CreateSubscriptionRequest,
    params(("Idempotency-Key" = Option<String>, Header)),
    responses(
        (status = 201, body = SubscriptionResponse, description = "Subscribed; the answer holds the signing secret, shown this once"),
        (status = 403, body = Problem), (status = 404, body = Problem),
        (status = 422, body = Problem, description = "`validation`, or `webhook-url-refused` naming why the URL is not one webhooks are sent to")),
    security(("bearer" = [])))]
pub async fn create_webhook_subscription(
    State(state): State<AppState>,
    Caller(who): Caller,
    headers: HeaderMap,
    body: JsonBody<CreateSubscriptionRequest>,
) -> Answer {
    let input = body.value.parse()?;
    let core = state.core.clone();
    Ok(idempotency::run(
        &state,
        &who.clone(),
        &headers,
        "POST /v1/webhooks/subscriptions",
        &body.bytes,
        StatusCode::CREATED,
        |s: &SubscriptionRecord| SubscriptionResponse::new(s, true),
        move |idem| async move { core.create_webhook_subscription(&who, input, idem).await },
    )
    .await)
}

#[utoipa::path(get, path = "/v1/webhooks/subscriptions", tag = "webhooks",
    params(PageQuery),
    responses((status = 200, body = SubscriptionPage), (status = 403, body = Problem), (status = 422, body = Problem)),
    security(("bearer" = [])))]
pub async fn list_webhook_subscriptions(
    State(state): State<AppState>,
    Caller(who): Caller,
    query: Result<Query<PageQuery>, QueryRejection>,
) -> Answer {
    let (limit, cursor) = page::<WebhookSubscriptionId>(&state, query)?;
    let mut subscriptions = state.core.webhook_subscriptions(&who, cursor, limit + 1).await?;
    let more = subscriptions.len() > limit as usize;
    subscriptions.truncate(limit as usize);
    let next_cursor = if more { subscriptions.last().map(|s| s.id.to_string()) } else { None };
    let subscriptions = subscriptions.iter().map(|s| SubscriptionResponse::new(s, false)).collect();
    ok(StatusCode::OK, &SubscriptionPage { subscriptions, next_cursor })
}

#[utoipa::path(get, path = "/v1/webhooks/subscriptions/{subscription_id}", tag = "webhooks",
    params(("subscription_id" = String, Path)),
    responses((status = 200, body = SubscriptionResponse), (status = 403, body = Problem), (status = 404, body = Problem)),
    security(("bearer" = [])))]
pub async fn get_webhook_subscription(
    State(state): State<AppState>,
    Caller(who): Caller,
    Path(raw): Path<String>,
) -> Answer {
    let subscription = state.core.webhook_subscription(&who, id::<WebhookSubscriptionId>(&raw)?).await?;
    ok(StatusCode::OK, &SubscriptionResponse::new(&subscription, false))
}

/// Deletes a subscription and its delivery log; nothing more is sent to it.
#[utoipa::path(delete, path = "/v1/webhooks/subscriptions/{subscription_id}", tag = "webhooks",
    params(("subscription_id" = String, Path)),
    responses((status = 204, description = "Deleted"), (status = 403, body = Problem), (status = 404, body = Problem)),
    security(("bearer" = [])))]
pub async fn delete_webhook_subscription(
    State(state): State<AppState>,
    Caller(who): Caller,
    Path(raw): Path<String>,
) -> Answer {
    state.core.delete_webhook_subscription(&who, id::<WebhookSubscriptionId>(&raw)?).await?;
    Ok(StatusCode::NO_CONTENT.into_response())
}

/// The delivery log of a subscription: every delivery, newest first, with its latest attempts.
#[utoipa::path(get, path = "/v1/webhooks/subscriptions/{subscription_id}/deliveries", tag = "webhooks",
    params(("subscription_id" = String, Path), PageQuery),
    responses((status = 200, body = DeliveryPage), (status = 403, body = Problem), (status = 404, body = Problem), (status = 422, body = Problem)),
    security(("bearer" = [])))]
pub async fn list_webhook_deliveries(
    State(state): State<AppState>,
    Caller(who): Caller,
    Path(raw): Path<String>,
    query: Result<Query<PageQuery>, QueryRejection>,
) -> Answer {
    let subscription_id = id::<WebhookSubscriptionId>(&raw)?;
    let (limit, cursor) = page::<WebhookDeliveryId>(&state, query)?;
    let mut deliveries = state.core.webhook_deliveries(&who, subscription_id, cursor, limit + 1).await?;
    let more = deliveries.len() > limit as usize;
    deliveries.truncate(limit as usize);
    let next_cursor = if more { deliveries.last().map(|d| d.id.to_string()) } else { None };
    ok(
        StatusCode::OK,
        &DeliveryPage { deliveries: deliveries.iter().map(DeliveryResponse::from).collect(), next_cursor },
    )
}

/// Sends a delivery again, now, whatever its status, with a fresh round of retries.
#[utoipa::path(post, path = "/v1/webhooks/deliveries/{delivery_id}/replay", tag = "webhooks",
    params(("delivery_id" = String, Path), ("Idempotency-Key" = Option<String>, Header)),
    responses((status = 202, body = DeliveryResponse, description = "Due now; the dispatcher sends it shortly"), (status = 403, body = Problem), (status = 404, body = Problem)),
    security(("bearer" = [])))]
pub async fn replay_webhook_delivery(
    State(state): State<AppState>,
    Caller(who): Caller,
    Path(raw): Path<String>,
    headers: HeaderMap,
) -> Answer {
    let delivery_id = id::<WebhookDeliveryId>(&raw)?;
    let core = state.core.clone();
    Ok(idempotency::run(
        &state,
        &who.clone(),
        &headers,
        &format!("POST /v1/webhooks/deliveries/{delivery_id}/replay"),
        b"",
        StatusCode::ACCEPTED,
        |d: &DeliveryRecord| DeliveryResponse::from(d),
        move |idem| async move { core.replay_webhook_delivery(&who, delivery_id, idem).await },
    )
    .await)
}

#[utoipa::path(get, path = "/healthz", tag = "operations",
    responses((status = 200, body = Health), (status = 503, body = Problem)))]
pub async fn healthz(State(state): State<AppState>) -> Answer {
    sqlx_ping(&state).await?;
    ok(
        StatusCode::OK,
        &Health {
            status: "ok".to_owned(),
            database: format!("{:?}", state.core.store().backend()).to_lowercase(),
        },
    )
}

async fn sqlx_ping(state: &AppState) -> Result<(), Problem> {
    state.core.store().ping().await.map_err(|_| {
        Problem::new(StatusCode::SERVICE_UNAVAILABLE, "unavailable", "the database does not answer")
    })
}

#[utoipa::path(get, path = "/metrics", tag = "operations",
    responses((status = 200, description = "Prometheus text exposition", content_type = "text/plain")))]
pub async fn metrics(State(state): State<AppState>) -> Response {
    state.metrics.render().into_response()
}

// ----- payouts -----

/// Where a batch's file can be fetched (again).
pub fn batch_file_url(batch_id: PayoutBatchId) -> String {
    format!("/v1/ops/payout-batches/{batch_id}/file")
}

#[utoipa::path(post, path = "/v1/merchants/{merchant_id}/payouts", tag = "payouts",
    request_body = CreatePayoutRequest,
    params(("merchant_id" = String, Path), ("Idempotency-Key" = Option<String>, Header)),
    responses((status = 201, body = PayoutResponse), (status = 403, body = Problem), (status = 404, body = Problem),
        (status = 409, body = Problem, description = "`insufficient-balance`: the available balance does not cover it"),
        (status = 422, body = Problem)),
    security(("bearer" = [])))]
/// The merchant withdraws from its balance to its bank account; the amount is held at once.
pub async fn request_payout(
    State(state): State<AppState>,
    Caller(who): Caller,
    Path(raw): Path<String>,
    headers: HeaderMap,
    body: JsonBody<CreatePayoutRequest>,
) -> Answer {
    let merchant_id = id::<MerchantId>(&raw)?;
    let payout = body.value.parse(merchant_id)?;
    let core = state.core.clone();
    Ok(idempotency::run(
        &state,
        &who.clone(),
        &headers,
        &format!("POST /v1/merchants/{merchant_id}/payouts"),
        &body.bytes,
        StatusCode::CREATED,
        |p: &PayoutRecord| PayoutResponse::new(p, false),
        move |idem| async move { core.request_payout(&who, payout, idem).await },
    )
    .await)
}

#[utoipa::path(get, path = "/v1/merchants/{merchant_id}/payouts", tag = "payouts",
    params(("merchant_id" = String, Path), PageQuery),
    responses((status = 200, body = PayoutPage), (status = 404, body = Problem), (status = 422, body = Problem)),
    security(("bearer" = [])))]
pub async fn list_payouts(
    State(state): State<AppState>,
    Caller(who): Caller,
    Path(raw): Path<String>,
    query: Result<Query<PageQuery>, QueryRejection>,
) -> Answer {
    let merchant_id = id::<MerchantId>(&raw)?;
    let (limit, cursor) = page::<PayoutId>(&state, query)?;
    let mut payouts = state.core.payouts_of_merchant(&who, merchant_id, cursor, limit + 1).await?;
    let more = payouts.len() > limit as usize;
    payouts.truncate(limit as usize);
    let next_cursor = if more { payouts.last().map(|p| p.id.to_string()) } else { None };
    let masked = who == Principal::Regulator;
    ok(
        StatusCode::OK,
        &PayoutPage {
            payouts: payouts.iter().map(|p| PayoutResponse::new(p, masked)).collect(),
            next_cursor,
        },
    )
}

#[utoipa::path(get, path = "/v1/payouts/{payout_id}", tag = "payouts",
    params(("payout_id" = String, Path)),
    responses((status = 200, body = PayoutResponse), (status = 403, body = Problem), (status = 404, body = Problem)),
    security(("bearer" = [])))]
pub async fn get_payout(
    State(state): State<AppState>,
    Caller(who): Caller,
    Path(raw): Path<String>,
) -> Answer {
    let payout = state.core.payout(&who, id::<PayoutId>(&raw)?).await?;
    ok(StatusCode::OK, &PayoutResponse::new(&payout, who == Principal::Regulator))
}

#[utoipa::path(get, path = "/v1/merchants/{merchant_id}/balance", tag = "payouts",
    params(("merchant_id" = String, Path)),
    responses((status = 200, body = BalanceResponse), (status = 403, body = Problem), (status = 404, body = Problem)),
    security(("bearer" = [])))]
/// The merchant's available balance, pending payouts and total paid out, from the ledger.
pub async fn get_balance(
    State(state): State<AppState>,
    Caller(who): Caller,
    Path(raw): Path<String>,
) -> Answer {
    let merchant_id = id::<MerchantId>(&raw)?;
    let balance = state.core.merchant_balance(&who, merchant_id).await?;
    ok(StatusCode::OK, &BalanceResponse::new(merchant_id, &balance))
}

#[utoipa::path(post, path = "/v1/ops/payout-batches", tag = "payouts",
    params(("Idempotency-Key" = Option<String>, Header)),
    responses((status = 201, body = PayoutBatchResponse), (status = 403, body = Problem),
        (status = 409, body = Problem, description = "`payout-conflict`: no payout is waiting")),
    security(("bearer" = [])))]
/// The operator exports every requested payout in one batch for the bank.
pub async fn create_payout_batch(
    State(state): State<AppState>,
    Caller(who): Caller,
    headers: HeaderMap,
) -> Answer {
    let core = state.core.clone();
    Ok(idempotency::run(
        &state,
        &who.clone(),
        &headers,
        "POST /v1/ops/payout-batches",
        b"",
        StatusCode::CREATED,
        |b: &PayoutBatchRecord| PayoutBatchResponse::from(b),
        move |idem| async move { core.create_payout_batch(&who, idem).await },
    )
    .await)
}

#[utoipa::path(get, path = "/v1/ops/payout-batches/{batch_id}/file", tag = "payouts",
    params(("batch_id" = String, Path)),
    responses((status = 200, description = "The batch's CSV file for the bank: payout_id,bank_code,account_number,account_holder,amount,reference",
        content_type = "text/csv", body = String),
        (status = 403, body = Problem), (status = 404, body = Problem)),
    security(("bearer" = [])))]
pub async fn get_payout_batch_file(
    State(state): State<AppState>,
    Caller(who): Caller,
    Path(raw): Path<String>,
) -> Answer {
    let batch = state.core.payout_batch(&who, id::<PayoutBatchId>(&raw)?).await?;
    let disposition = format!("attachment; filename=\"{}.csv\"", batch.id);
    Ok((
        StatusCode::OK,
        [
            (header::CONTENT_TYPE, "text/csv; charset=utf-8".to_owned()),
            (header::CONTENT_DISPOSITION, disposition),
        ],
        batch.file(),
    )
        .into_response())
}

#[utoipa::path(post, path = "/v1/ops/payouts/{payout_id}/confirm", tag = "payouts",
    request_body = ConfirmPayoutRequest,
    params(("payout_id" = String, Path), ("Idempotency-Key" = Option<String>, Header)),
    responses((status = 200, body = ConfirmationResponse, description = "Applied, or already applied (`changed: false`)"),
        (status = 403, body = Problem), (status = 404, body = Problem),
        (status = 409, body = Problem, description = "`payout-conflict`: the answer contradicts an earlier one"),
        (status = 422, body = Problem)),
    security(("bearer" = [])))]
/// The operator records the bank's answer: `paid` (the money leaves the platform) or
/// `failed` with the bank's reason (the money returns to the merchant's balance).
pub async fn confirm_payout(
    State(state): State<AppState>,
    Caller(who): Caller,
    Path(raw): Path<String>,
    headers: HeaderMap,
    body: JsonBody<ConfirmPayoutRequest>,
) -> Answer {
    let payout_id = id::<PayoutId>(&raw)?;
    let outcome = body.value.parse()?;
    let core = state.core.clone();
    Ok(idempotency::run(
        &state,
        &who.clone(),
        &headers,
        &format!("POST /v1/ops/payouts/{payout_id}/confirm"),
        &body.bytes,
        StatusCode::OK,
        |c: &ConfirmationRecord| ConfirmationResponse::from(c),
        move |idem| async move { core.confirm_payout(&who, payout_id, outcome, idem).await },
    )
    .await)
}

#[utoipa::path(post, path = "/v1/ops/payout-results", tag = "payouts",
    request_body(content = String, content_type = "text/csv", description = "The bank's result file: payout_id,status,reason"),
    params(("Idempotency-Key" = Option<String>, Header)),
    responses((status = 200, body = PayoutResultsResponse, description = "What each line did"),
        (status = 403, body = Problem), (status = 413, body = Problem), (status = 415, body = Problem),
        (status = 422, body = Problem, description = "A line does not parse (named); nothing was applied")),
    security(("bearer" = [])))]
/// The operator uploads the bank's result file; each line is applied once.
pub async fn apply_payout_results(
    State(state): State<AppState>,
    Caller(who): Caller,
    headers: HeaderMap,
    body: CsvBody,
) -> Answer {
    let lines = parse_result_file(&body.text)?;
    let core = state.core.clone();
    Ok(idempotency::run(
        &state,
        &who.clone(),
        &headers,
        "POST /v1/ops/payout-results",
        &body.bytes,
        StatusCode::OK,
        |lines: &Vec<ResultLineRecord>| PayoutResultsResponse::new(lines),
        move |idem| async move { core.apply_payout_results(&who, lines, idem).await },
    )
    .await)
}

// ----- reconciliation -----

#[utoipa::path(post, path = "/v1/ops/reconciliations", tag = "reconciliation",
    request_body(content = String, content_type = "text/csv",
        description = "The provider's settlement report: provider_ref,type,amount,settled_at (type payment|refund|payout, amount integer rupiah, settled_at RFC 3339 or a date)"),
    params(("Idempotency-Key" = Option<String>, Header)),
    responses((status = 201, body = ReconciliationResponse), (status = 403, body = Problem), (status = 413, body = Problem),
        (status = 415, body = Problem), (status = 422, body = Problem, description = "A line does not parse (named)")),
    security(("bearer" = [])))]
/// The operator imports a settlement report; the run and each finding are stored.
pub async fn create_reconciliation(
    State(state): State<AppState>,
    Caller(who): Caller,
    headers: HeaderMap,
    body: CsvBody,
) -> Answer {
    let report = parse_report(&body.text)?;
    let core = state.core.clone();
    Ok(idempotency::run(
        &state,
        &who.clone(),
        &headers,
        "POST /v1/ops/reconciliations",
        &body.bytes,
        StatusCode::CREATED,
        |r: &ReconciliationRecord| ReconciliationResponse::from(r),
        move |idem| async move { core.reconcile(&who, report, idem).await },
    )
    .await)
}

#[utoipa::path(get, path = "/v1/ops/reconciliations", tag = "reconciliation",
    params(PageQuery),
    responses((status = 200, body = ReconciliationPage), (status = 403, body = Problem), (status = 422, body = Problem)),
    security(("bearer" = [])))]
/// Stored runs, newest first, without their items.
pub async fn list_reconciliations(
    State(state): State<AppState>,
    Caller(who): Caller,
    query: Result<Query<PageQuery>, QueryRejection>,
) -> Answer {
    let (limit, cursor) = page::<ReconciliationId>(&state, query)?;
    let mut runs = state.core.reconciliations(&who, cursor, limit + 1).await?;
    let more = runs.len() > limit as usize;
    runs.truncate(limit as usize);
    let next_cursor = if more { runs.last().map(|r| r.id.to_string()) } else { None };
    ok(
        StatusCode::OK,
        &ReconciliationPage {
            reconciliations: runs.iter().map(ReconciliationRunResponse::from).collect(),
            next_cursor,
        },
    )
}

#[utoipa::path(get, path = "/v1/ops/reconciliations/{reconciliation_id}", tag = "reconciliation",
    params(("reconciliation_id" = String, Path)),
    responses((status = 200, body = ReconciliationResponse), (status = 403, body = Problem), (status = 404, body = Problem)),
    security(("bearer" = [])))]
pub async fn get_reconciliation(
    State(state): State<AppState>,
    Caller(who): Caller,
    Path(raw): Path<String>,
) -> Answer {
    let run = state.core.reconciliation(&who, id::<ReconciliationId>(&raw)?).await?;
    ok(StatusCode::OK, &ReconciliationResponse::from(&run))
}
