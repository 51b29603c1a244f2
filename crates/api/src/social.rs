//! `/social/v1`: the social shop's own API contract, which its app keeps calling unchanged
//! while the shops move underneath (DESIGN.md §3, §5). Legacy style on purpose: ids are strings
//! of digits, order statuses numeric codes, amounts decimal strings of whole rupiah, times unix
//! seconds. Every call goes through the [`Gateway`], which serves it from the legacy store or
//! the core, whichever owns the shop. Errors are RFC 9457 problems like everywhere else.

use axum::extract::rejection::QueryRejection;
use axum::extract::{Path, Query, State};
use axum::http::{HeaderMap, StatusCode};
use axum::response::Response;
use jembatan_core::gateway::{
    Gateway, NewSocialOrder, SocialItem, SocialOrder, SocialPage, SocialPayment, SocialProduct,
    SocialProductEdit, SocialRecipient, SocialSku,
};
use jembatan_domain::social::{LegacyStatus, SocialId, format_price, parse_payment_method, parse_price};
use jembatan_domain::{DomainError, Money, Price, Quantity, ShippingAddress, StockLevel};
use jembatan_store::payments::RefundRecord;
use jembatan_store::social::{Consent, SharedProfile};
use serde::{Deserialize, Serialize};
use utoipa::{IntoParams, ToSchema};

use crate::AppState;
use crate::extract::{Caller, JsonBody};
use crate::idempotency;
use crate::problem::{Problem, raw_response};

type Answer = Result<Response, Problem>;

fn ok<W: Serialize>(status: StatusCode, value: &W) -> Answer {
    Ok(raw_response(status, serde_json::to_string(value).expect("wire types serialise")))
}

pub(crate) fn gateway(state: &AppState) -> Result<&Gateway, Problem> {
    state.gateway.as_ref().ok_or_else(|| {
        Problem::new(
            StatusCode::SERVICE_UNAVAILABLE,
            "social-unavailable",
            "this server runs without the social shop's legacy store; start it with one (`jembatan serve`)",
        )
    })
}

/// A legacy id from the path: digits only, or a 400 that says so.
fn social_id(field: &'static str, raw: &str) -> Result<SocialId, Problem> {
    SocialId::parse(field, raw)
        .map_err(|e| Problem::new(StatusCode::BAD_REQUEST, "malformed-id", e.to_string()).with_field(field))
}

fn price(field: &'static str, raw: &str) -> Result<Money, Problem> {
    parse_price(raw).map_err(|problem| {
        Problem::new(
            StatusCode::UNPROCESSABLE_ENTITY,
            problem.code(),
            format!("{field}: {}", problem.explain(raw)),
        )
        .with_field(field)
    })
}

// ---- wire shapes ------------------------------------------------------------------------------

#[derive(Debug, Serialize, ToSchema)]
pub struct SocialSkuWire {
    pub sku_id: String,
    pub seller_sku: String,
    /// Whole rupiah as digits, e.g. `"149000"`.
    pub price: String,
    pub stock: i64,
}

#[derive(Debug, Serialize, ToSchema)]
pub struct SocialProductWire {
    pub product_id: String,
    pub shop_id: String,
    pub title: String,
    pub category: String,
    /// 1 live, 2 delisted.
    pub status: i64,
    pub skus: Vec<SocialSkuWire>,
}

impl From<&SocialProduct> for SocialProductWire {
    fn from(p: &SocialProduct) -> Self {
        SocialProductWire {
            product_id: p.product_id.clone(),
            shop_id: p.shop_id.clone(),
            title: p.title.clone(),
            category: p.category.clone(),
            status: p.status,
            skus: p
                .skus
                .iter()
                .map(|s: &SocialSku| SocialSkuWire {
                    sku_id: s.sku_id.clone(),
                    seller_sku: s.seller_sku.clone(),
                    price: s.price.clone(),
                    stock: s.stock,
                })
                .collect(),
        }
    }
}

#[derive(Debug, Serialize, ToSchema)]
pub struct SocialProductList {
    pub products: Vec<SocialProductWire>,
    /// Pass as `page_token` for the next page; absent on the last.
    #[serde(skip_serializing_if = "Option::is_none")]
    pub next_page_token: Option<String>,
}

#[derive(Debug, Serialize, Deserialize, ToSchema, Clone)]
pub struct SocialRecipientWire {
    pub name: String,
    /// `08…`, `628…` or `+628…`; answered as `+628…`.
    pub phone: String,
    pub address_detail: String,
    pub city: String,
    /// One of the 38 provinces, e.g. `Jawa Barat`.
    pub province: String,
    pub postal_code: String,
}

#[derive(Debug, Serialize, ToSchema)]
pub struct SocialItemWire {
    pub product_id: String,
    pub sku_id: String,
    pub product_name: String,
    pub quantity: i64,
    pub unit_price: String,
}

#[derive(Debug, Serialize, ToSchema)]
pub struct SocialPaymentWire {
    pub payment_id: String,
    /// `VA`, `QRIS`, `EWALLET` or `COD`.
    pub method: String,
    pub amount: String,
    /// `pending`, `paid` or `expired`.
    pub status: String,
    #[serde(skip_serializing_if = "Option::is_none")]
    pub bank_code: Option<String>,
    #[serde(skip_serializing_if = "Option::is_none")]
    pub va_number: Option<String>,
    #[serde(skip_serializing_if = "Option::is_none")]
    pub qris_payload: Option<String>,
    #[serde(skip_serializing_if = "Option::is_none")]
    pub ewallet_ref: Option<String>,
    #[serde(skip_serializing_if = "Option::is_none")]
    pub redirect_url: Option<String>,
    #[serde(skip_serializing_if = "Option::is_none")]
    pub expire_time: Option<i64>,
}

impl From<&SocialPayment> for SocialPaymentWire {
    fn from(p: &SocialPayment) -> Self {
        SocialPaymentWire {
            payment_id: p.payment_id.clone(),
            method: p.method.clone(),
            amount: p.amount.clone(),
            status: p.status.clone(),
            bank_code: p.bank_code.clone(),
            va_number: p.va_number.clone(),
            qris_payload: p.qris_payload.clone(),
            ewallet_ref: p.ewallet_ref.clone(),
            redirect_url: p.redirect_url.clone(),
            expire_time: p.expire_time,
        }
    }
}

#[derive(Debug, Serialize, ToSchema)]
pub struct SocialOrderWire {
    pub order_id: String,
    pub shop_id: String,
    pub buyer_id: String,
    /// 100 unpaid, 111 awaiting shipment, 112 awaiting collection, 121 in transit,
    /// 122 delivered, 130 completed, 140 cancelled.
    pub status: i64,
    pub payment_method: String,
    pub total_amount: String,
    pub refunded_amount: String,
    pub items: Vec<SocialItemWire>,
    pub recipient: SocialRecipientWire,
    /// What to pay, once asked (`POST …/pay`).
    #[serde(skip_serializing_if = "Option::is_none")]
    pub payment: Option<SocialPaymentWire>,
    pub create_time: i64,
    pub update_time: i64,
}

impl SocialOrderWire {
    fn new(o: &SocialOrder, masked: bool) -> Self {
        let mask = |s: &str, head: usize, tail: usize| {
            if masked { crate::wire::mask_keep(s, head, tail) } else { s.to_owned() }
        };
        let r: &SocialRecipient = &o.recipient;
        SocialOrderWire {
            order_id: o.order_id.clone(),
            shop_id: o.shop_id.clone(),
            buyer_id: mask(&o.buyer_id, 2, 0),
            status: o.status,
            payment_method: o.payment_method.clone(),
            total_amount: o.total_amount.clone(),
            refunded_amount: o.refunded_amount.clone(),
            items: o
                .items
                .iter()
                .map(|i: &SocialItem| SocialItemWire {
                    product_id: i.product_id.clone(),
                    sku_id: i.sku_id.clone(),
                    product_name: i.product_name.clone(),
                    quantity: i.quantity,
                    unit_price: i.unit_price.clone(),
                })
                .collect(),
            recipient: SocialRecipientWire {
                name: mask(&r.name, 1, 0),
                phone: mask(&r.phone, 5, 3),
                address_detail: mask(&r.address_detail, 0, 0),
                city: r.city.clone(),
                province: r.province.clone(),
                postal_code: mask(&r.postal_code, 2, 0),
            },
            payment: o.payment.as_ref().map(SocialPaymentWire::from),
            create_time: o.create_time,
            update_time: o.update_time,
        }
    }
}

#[derive(Debug, Serialize, ToSchema)]
pub struct SocialOrderList {
    pub orders: Vec<SocialOrderWire>,
    #[serde(skip_serializing_if = "Option::is_none")]
    pub next_page_token: Option<String>,
}

#[derive(Debug, Deserialize, ToSchema)]
pub struct SocialCartItem {
    pub product_id: String,
    pub sku_id: String,
    pub quantity: i64,
}

#[derive(Debug, Deserialize, ToSchema)]
pub struct CreateSocialOrderRequest {
    pub shop_id: String,
    pub buyer_id: String,
    pub items: Vec<SocialCartItem>,
    /// `VA`, `QRIS`, `EWALLET` or `COD`.
    pub payment_method: String,
    pub recipient: SocialRecipientWire,
}

#[derive(Debug, Deserialize, ToSchema)]
pub struct SocialSkuEdit {
    pub sku_id: String,
    /// Whole rupiah: `"149000"` or the Indonesian way `"149.000"`.
    #[serde(default)]
    pub price: Option<String>,
}

#[derive(Debug, Deserialize, ToSchema)]
pub struct EditSocialProductRequest {
    #[serde(default)]
    pub title: Option<String>,
    #[serde(default)]
    pub skus: Vec<SocialSkuEdit>,
}

#[derive(Debug, Deserialize, ToSchema)]
pub struct SocialStockEdit {
    pub sku_id: String,
    /// Units available to sell.
    pub stock: i64,
}

#[derive(Debug, Deserialize, ToSchema)]
pub struct SetSocialStockRequest {
    pub skus: Vec<SocialStockEdit>,
}

#[derive(Debug, Deserialize, ToSchema)]
pub struct SocialRefundRequest {
    /// Whole rupiah, e.g. `"50000"`.
    pub amount: String,
    pub reason: String,
}

#[derive(Debug, Serialize, ToSchema)]
pub struct SocialRefundWire {
    pub refund_id: String,
    pub amount: String,
    pub reason: String,
    pub create_time: i64,
}

impl From<&RefundRecord> for SocialRefundWire {
    fn from(r: &RefundRecord) -> Self {
        SocialRefundWire {
            refund_id: r.id.to_string(),
            amount: format_price(r.amount),
            reason: r.reason.clone(),
            create_time: r.created_at.unix_ms() / 1000,
        }
    }
}

#[derive(Debug, Serialize, ToSchema)]
pub struct SocialRefundList {
    pub refunds: Vec<SocialRefundWire>,
}

#[derive(Debug, Deserialize, ToSchema)]
pub struct ConsentRequest {
    /// What the data is shared for, e.g. `profile_sharing`.
    pub purpose: String,
    /// The version of the consent text the user agreed to.
    pub text_version: String,
}

#[derive(Debug, Serialize, ToSchema)]
pub struct ConsentWire {
    pub consent_id: String,
    pub purpose: String,
    pub text_version: String,
    pub grant_time: i64,
    #[serde(skip_serializing_if = "Option::is_none")]
    pub withdraw_time: Option<i64>,
}

impl From<&Consent> for ConsentWire {
    fn from(c: &Consent) -> Self {
        ConsentWire {
            consent_id: c.id.to_string(),
            purpose: c.purpose.clone(),
            text_version: c.text_version.clone(),
            grant_time: c.granted_at.unix_ms() / 1000,
            withdraw_time: c.withdrawn_at.map(|t| t.unix_ms() / 1000),
        }
    }
}

#[derive(Debug, Serialize, ToSchema)]
pub struct ConsentList {
    pub consents: Vec<ConsentWire>,
}

#[derive(Debug, Serialize, ToSchema)]
pub struct SharedProfileWire {
    pub consent_id: String,
    pub shared_fields: Vec<String>,
}

impl From<&SharedProfile> for SharedProfileWire {
    fn from(p: &SharedProfile) -> Self {
        SharedProfileWire {
            consent_id: p.consent_id.to_string(),
            shared_fields: vec!["nickname".to_owned(), "email".to_owned()],
        }
    }
}

#[derive(Debug, Deserialize, IntoParams)]
#[into_params(parameter_in = Query)]
pub struct SocialPageQuery {
    /// 1 to 100 (default 20).
    pub page_size: Option<i64>,
    /// `next_page_token` of the previous page.
    pub page_token: Option<String>,
    /// Orders only: a status code (100, 111, 112, 121, 122, 130, 140).
    pub status: Option<String>,
}

fn page_query(
    state: &AppState,
    query: Result<Query<SocialPageQuery>, QueryRejection>,
) -> Result<(u32, Option<SocialId>, Option<LegacyStatus>), Problem> {
    let Query(query) =
        query.map_err(|e| Problem::new(StatusCode::UNPROCESSABLE_ENTITY, "validation", e.body_text()))?;
    let size = query.page_size.unwrap_or(i64::from(state.limits.page_size_default));
    if !(1..=i64::from(state.limits.page_size_max)).contains(&size) {
        return Err(DomainError::invalid(
            "page_size",
            format!("must be between 1 and {}", state.limits.page_size_max),
        )
        .into());
    }
    let token =
        query.page_token.filter(|t| !t.is_empty()).map(|t| SocialId::parse("page_token", &t)).transpose()?;
    let status = query
        .status
        .map(|raw| {
            raw.parse::<i64>()
                .map_err(|_| {
                    DomainError::invalid(
                        "status",
                        format!("`{raw}` is not a status code: use 100, 111, 112, 121, 122, 130 or 140"),
                    )
                })
                .and_then(LegacyStatus::from_code)
        })
        .transpose()?;
    Ok((size as u32, token, status))
}

// ---- seller side ------------------------------------------------------------------------------

#[utoipa::path(get, path = "/social/v1/shops/{shop_id}/products", tag = "social",
    params(("shop_id" = String, Path), SocialPageQuery),
    responses((status = 200, body = SocialProductList), (status = 400, body = Problem), (status = 404, body = Problem)),
    security(("bearer" = [])))]
pub async fn social_products(
    State(state): State<AppState>,
    Caller(who): Caller,
    Path(shop): Path<String>,
    query: Result<Query<SocialPageQuery>, QueryRejection>,
) -> Answer {
    let shop = social_id("shop_id", &shop)?;
    let (size, token, _) = page_query(&state, query)?;
    let page: SocialPage<SocialProduct> = gateway(&state)?.products(&who, &shop, token, size).await?;
    ok(
        StatusCode::OK,
        &SocialProductList {
            products: page.items.iter().map(SocialProductWire::from).collect(),
            next_page_token: page.next_page_token,
        },
    )
}

#[utoipa::path(post, path = "/social/v1/shops/{shop_id}/products/{product_id}", tag = "social",
    params(("shop_id" = String, Path), ("product_id" = String, Path)),
    request_body = EditSocialProductRequest,
    responses((status = 200, body = SocialProductWire), (status = 400, body = Problem), (status = 404, body = Problem),
        (status = 422, body = Problem), (status = 503, body = Problem)),
    security(("bearer" = [])))]
pub async fn social_edit_product(
    State(state): State<AppState>,
    Caller(who): Caller,
    Path((shop, product)): Path<(String, String)>,
    body: JsonBody<EditSocialProductRequest>,
) -> Answer {
    let (shop, product) = (social_id("shop_id", &shop)?, social_id("product_id", &product)?);
    let title = body.value.title.as_deref().map(jembatan_domain::ProductTitle::parse).transpose()?;
    let mut prices = Vec::new();
    for sku in &body.value.skus {
        if let Some(raw) = &sku.price {
            prices.push((
                social_id("skus.sku_id", &sku.sku_id)?,
                Price::from_rupiah(price("skus.price", raw)?.rupiah())?,
            ));
        }
    }
    if title.is_none() && prices.is_empty() {
        return Err(DomainError::invalid("title", "give a new title or at least one SKU price").into());
    }
    let edit = SocialProductEdit { title, prices, stocks: Vec::new() };
    let product = gateway(&state)?.edit_product(&who, &shop, &product, edit).await?;
    ok(StatusCode::OK, &SocialProductWire::from(&product))
}

#[utoipa::path(post, path = "/social/v1/shops/{shop_id}/products/{product_id}/stock", tag = "social",
    params(("shop_id" = String, Path), ("product_id" = String, Path)),
    request_body = SetSocialStockRequest,
    responses((status = 200, body = SocialProductWire), (status = 400, body = Problem), (status = 404, body = Problem),
        (status = 409, body = Problem), (status = 422, body = Problem), (status = 503, body = Problem)),
    security(("bearer" = [])))]
pub async fn social_set_stock(
    State(state): State<AppState>,
    Caller(who): Caller,
    Path((shop, product)): Path<(String, String)>,
    body: JsonBody<SetSocialStockRequest>,
) -> Answer {
    let (shop, product) = (social_id("shop_id", &shop)?, social_id("product_id", &product)?);
    if body.value.skus.is_empty() {
        return Err(DomainError::invalid("skus", "name at least one SKU and its stock").into());
    }
    let mut stocks = Vec::new();
    for sku in &body.value.skus {
        stocks.push((social_id("skus.sku_id", &sku.sku_id)?, StockLevel::on_hand(sku.stock)?));
    }
    let edit = SocialProductEdit { stocks, ..SocialProductEdit::default() };
    let product = gateway(&state)?.edit_product(&who, &shop, &product, edit).await?;
    ok(StatusCode::OK, &SocialProductWire::from(&product))
}

#[utoipa::path(get, path = "/social/v1/shops/{shop_id}/orders", tag = "social",
    params(("shop_id" = String, Path), SocialPageQuery),
    responses((status = 200, body = SocialOrderList), (status = 400, body = Problem), (status = 404, body = Problem),
        (status = 422, body = Problem)),
    security(("bearer" = [])))]
pub async fn social_shop_orders(
    State(state): State<AppState>,
    Caller(who): Caller,
    Path(shop): Path<String>,
    query: Result<Query<SocialPageQuery>, QueryRejection>,
) -> Answer {
    let shop = social_id("shop_id", &shop)?;
    let (size, token, status) = page_query(&state, query)?;
    let page = gateway(&state)?.orders(&who, &shop, status, token, size).await?;
    let masked = who == jembatan_domain::Principal::Regulator;
    ok(
        StatusCode::OK,
        &SocialOrderList {
            orders: page.items.iter().map(|o| SocialOrderWire::new(o, masked)).collect(),
            next_page_token: page.next_page_token,
        },
    )
}

#[utoipa::path(post, path = "/social/v1/orders/{order_id}/ship", tag = "social",
    params(("order_id" = String, Path)),
    responses((status = 200, body = SocialOrderWire), (status = 400, body = Problem), (status = 404, body = Problem),
        (status = 409, body = Problem), (status = 503, body = Problem)),
    security(("bearer" = [])))]
pub async fn social_ship(
    State(state): State<AppState>,
    Caller(who): Caller,
    Path(order): Path<String>,
) -> Answer {
    let order = social_id("order_id", &order)?;
    let order = gateway(&state)?.ship(&who, &order).await?;
    ok(StatusCode::OK, &SocialOrderWire::new(&order, false))
}

// ---- buyer side -------------------------------------------------------------------------------

/// The social order id of a request: derived from its idempotency key when it sent one (so a
/// retry finds the order it created), fresh otherwise.
/// The body is part of the derivation: the same key with another cart (another buyer, another
/// shop) is another order, never the first one's answer.
fn order_id_for(
    state: &AppState,
    who: &jembatan_domain::Principal,
    headers: &HeaderMap,
    body: &[u8],
) -> SocialId {
    let now_ms = state.core.clock().now().unix_ms();
    match headers.get(idempotency::HEADER).and_then(|v| v.to_str().ok()) {
        Some(key) => {
            use sha2::{Digest, Sha256};
            let mut hasher = Sha256::new();
            hasher.update(format!("{}:{}:{key}:", who.role().as_str(), who.subject()).as_bytes());
            hasher.update(body);
            let digest = hasher.finalize();
            let n = u64::from_be_bytes(digest[..8].try_into().expect("8 bytes")) >> 1;
            SocialId::parse("order_id", &n.to_string()).expect("digits")
        }
        None => SocialId::generate(now_ms, rand::random::<u32>()),
    }
}

#[utoipa::path(post, path = "/social/v1/orders", tag = "social",
    request_body = CreateSocialOrderRequest,
    params(("Idempotency-Key" = Option<String>, Header, description = "A retry with the same key answers with the same order")),
    responses((status = 201, body = SocialOrderWire), (status = 400, body = Problem), (status = 404, body = Problem),
        (status = 409, body = Problem), (status = 422, body = Problem), (status = 503, body = Problem)),
    security(("bearer" = [])))]
pub async fn social_create_order(
    State(state): State<AppState>,
    Caller(who): Caller,
    headers: HeaderMap,
    body: JsonBody<CreateSocialOrderRequest>,
) -> Answer {
    let b = &body.value;
    let shop_id = SocialId::parse("shop_id", &b.shop_id)?;
    let buyer_id = SocialId::parse("buyer_id", &b.buyer_id)?;
    if b.items.is_empty() || b.items.len() > jembatan_domain::limits::CHECKOUT_LINES_MAX {
        return Err(DomainError::invalid(
            "items",
            format!("must hold 1 to {} items", jembatan_domain::limits::CHECKOUT_LINES_MAX),
        )
        .into());
    }
    let mut items = Vec::with_capacity(b.items.len());
    for item in &b.items {
        items.push((
            SocialId::parse("items.product_id", &item.product_id)?,
            SocialId::parse("items.sku_id", &item.sku_id)?,
            Quantity::new(item.quantity)?,
        ));
    }
    let r = &b.recipient;
    let address =
        ShippingAddress::parse(&r.name, &r.phone, &r.address_detail, &r.city, &r.province, &r.postal_code)?;
    let payment_method = parse_payment_method(&b.payment_method)?;
    let order_id = order_id_for(&state, &who, &headers, &body.bytes);
    let new = NewSocialOrder { shop_id, buyer_id, items, payment_method, address, order_id };
    let order = gateway(&state)?.create_order(&who, new).await?;
    ok(StatusCode::CREATED, &SocialOrderWire::new(&order, false))
}

#[utoipa::path(get, path = "/social/v1/orders/{order_id}", tag = "social",
    params(("order_id" = String, Path)),
    responses((status = 200, body = SocialOrderWire), (status = 400, body = Problem), (status = 404, body = Problem)),
    security(("bearer" = [])))]
pub async fn social_order(
    State(state): State<AppState>,
    Caller(who): Caller,
    Path(order): Path<String>,
) -> Answer {
    let order = social_id("order_id", &order)?;
    let order = gateway(&state)?.order(&who, &order).await?;
    ok(StatusCode::OK, &SocialOrderWire::new(&order, who == jembatan_domain::Principal::Regulator))
}

macro_rules! order_step {
    ($name:ident, $path:literal, $method:ident, $doc:literal) => {
        #[doc = $doc]
        #[utoipa::path(post, path = $path, tag = "social",
            params(("order_id" = String, Path)),
            responses((status = 200, body = SocialOrderWire), (status = 400, body = Problem), (status = 404, body = Problem),
                (status = 409, body = Problem), (status = 503, body = Problem)),
            security(("bearer" = [])))]
        pub async fn $name(State(state): State<AppState>, Caller(who): Caller, Path(order): Path<String>) -> Answer {
            let order = social_id("order_id", &order)?;
            let order = gateway(&state)?.$method(&who, &order).await?;
            ok(StatusCode::OK, &SocialOrderWire::new(&order, false))
        }
    };
}

order_step!(
    social_pay,
    "/social/v1/orders/{order_id}/pay",
    pay,
    "What the buyer needs to pay (the core's payment)."
);
order_step!(social_confirm, "/social/v1/orders/{order_id}/confirm", confirm, "The buyer confirms receipt.");
order_step!(
    social_cancel,
    "/social/v1/orders/{order_id}/cancel",
    cancel,
    "The buyer cancels before shipping."
);

#[utoipa::path(post, path = "/social/v1/orders/{order_id}/refund", tag = "social",
    params(("order_id" = String, Path), ("Idempotency-Key" = Option<String>, Header)),
    request_body = SocialRefundRequest,
    responses((status = 201, body = SocialRefundWire), (status = 400, body = Problem), (status = 403, body = Problem),
        (status = 404, body = Problem), (status = 409, body = Problem), (status = 422, body = Problem)),
    security(("bearer" = [])))]
pub async fn social_refund(
    State(state): State<AppState>,
    Caller(who): Caller,
    Path(order): Path<String>,
    headers: HeaderMap,
    body: JsonBody<SocialRefundRequest>,
) -> Answer {
    let order = social_id("order_id", &order)?;
    let amount = price("amount", &body.value.amount)?;
    let reason = body.value.reason.trim().to_owned();
    if reason.is_empty() || reason.chars().count() > 500 {
        return Err(DomainError::invalid("reason", "must be 1 to 500 characters").into());
    }
    let gateway = gateway(&state)?.clone();
    Ok(idempotency::run(
        &state,
        &who.clone(),
        &headers,
        &format!("POST /social/v1/orders/{order}/refund"),
        &body.bytes,
        StatusCode::CREATED,
        |r: &RefundRecord| SocialRefundWire::from(r),
        move |idem| async move { gateway.refund(&who, &order, amount, reason, idem).await },
    )
    .await)
}

#[utoipa::path(get, path = "/social/v1/orders/{order_id}/refunds", tag = "social",
    params(("order_id" = String, Path)),
    responses((status = 200, body = SocialRefundList), (status = 400, body = Problem), (status = 404, body = Problem)),
    security(("bearer" = [])))]
pub async fn social_refunds(
    State(state): State<AppState>,
    Caller(who): Caller,
    Path(order): Path<String>,
) -> Answer {
    let order = social_id("order_id", &order)?;
    let refunds = gateway(&state)?.refunds(&who, &order).await?;
    ok(StatusCode::OK, &SocialRefundList { refunds: refunds.iter().map(SocialRefundWire::from).collect() })
}

// ---- consent (rule R6) ------------------------------------------------------------------------

#[utoipa::path(post, path = "/social/v1/buyers/{buyer_id}/consents", tag = "social",
    params(("buyer_id" = String, Path)),
    request_body = ConsentRequest,
    responses((status = 201, body = ConsentWire), (status = 400, body = Problem), (status = 422, body = Problem)),
    security(("bearer" = [])))]
pub async fn social_grant_consent(
    State(state): State<AppState>,
    Caller(who): Caller,
    Path(buyer): Path<String>,
    body: JsonBody<ConsentRequest>,
) -> Answer {
    let buyer = social_id("buyer_id", &buyer)?;
    let (purpose, version) = (body.value.purpose.trim(), body.value.text_version.trim());
    let token = |s: &str| {
        (1..=64).contains(&s.len()) && s.bytes().all(|b| b.is_ascii_alphanumeric() || b"._-".contains(&b))
    };
    if !token(purpose) {
        return Err(DomainError::invalid(
            "purpose",
            "must be 1 to 64 of a-z 0-9 . _ -, e.g. `profile_sharing`",
        )
        .into());
    }
    if !token(version) {
        return Err(
            DomainError::invalid("text_version", "must be 1 to 64 of a-z 0-9 . _ -, e.g. `2024-01`").into()
        );
    }
    let consent =
        gateway(&state)?.record_consent(&who, &buyer, purpose.to_owned(), version.to_owned()).await?;
    ok(StatusCode::CREATED, &ConsentWire::from(&consent))
}

#[utoipa::path(get, path = "/social/v1/buyers/{buyer_id}/consents", tag = "social",
    params(("buyer_id" = String, Path)),
    responses((status = 200, body = ConsentList), (status = 400, body = Problem), (status = 403, body = Problem)),
    security(("bearer" = [])))]
pub async fn social_consents(
    State(state): State<AppState>,
    Caller(who): Caller,
    Path(buyer): Path<String>,
) -> Answer {
    let buyer = social_id("buyer_id", &buyer)?;
    let consents = gateway(&state)?.consents(&who, &buyer).await?;
    ok(StatusCode::OK, &ConsentList { consents: consents.iter().map(ConsentWire::from).collect() })
}

#[utoipa::path(delete, path = "/social/v1/buyers/{buyer_id}/consents/{purpose}", tag = "social",
    params(("buyer_id" = String, Path), ("purpose" = String, Path)),
    responses((status = 204), (status = 400, body = Problem)),
    security(("bearer" = [])))]
pub async fn social_withdraw_consent(
    State(state): State<AppState>,
    Caller(who): Caller,
    Path((buyer, purpose)): Path<(String, String)>,
) -> Answer {
    let buyer = social_id("buyer_id", &buyer)?;
    gateway(&state)?.withdraw_consent(&who, &buyer, purpose).await?;
    Ok(raw_response(StatusCode::NO_CONTENT, String::new()))
}

/// Everything the core holds about a social user, for the user (UU PDP No. 27/2022).
#[derive(Debug, Serialize, ToSchema)]
pub struct BuyerExportWire {
    /// The pseudonymous reference the core knows the user by.
    pub buyer_ref: String,
    pub consents: Vec<serde_json::Value>,
    pub profile: Option<serde_json::Value>,
    /// The user's orders with their shipping details.
    pub orders: Vec<serde_json::Value>,
    /// What was done with the data: the audit entries about the orders and consents.
    pub processing: Vec<serde_json::Value>,
}

#[utoipa::path(get, path = "/social/v1/buyers/{buyer_id}/data-export", tag = "social",
    params(("buyer_id" = String, Path)),
    responses((status = 200, body = BuyerExportWire), (status = 400, body = Problem), (status = 403, body = Problem)),
    security(("bearer" = [])))]
/// A data subject's export under UU PDP: everything the core holds about the user and its
/// processing record. Answered at once and recorded with its 3 × 24-hour deadline. The social
/// channel asks on the user's behalf.
pub async fn social_export_buyer(
    State(state): State<AppState>,
    Caller(who): Caller,
    Path(buyer): Path<String>,
) -> Answer {
    let buyer = social_id("buyer_id", &buyer)?;
    let gateway = gateway(&state)?;
    let export = gateway.export_buyer(&who, &buyer).await?;
    ok(
        StatusCode::OK,
        &BuyerExportWire {
            buyer_ref: gateway.buyer_ref(&buyer).as_str().to_owned(),
            consents: export.consents,
            profile: export.profile,
            orders: export.orders,
            processing: export.processing,
        },
    )
}

#[utoipa::path(post, path = "/social/v1/buyers/{buyer_id}/profile-share", tag = "social",
    params(("buyer_id" = String, Path)),
    responses((status = 201, body = SharedProfileWire), (status = 400, body = Problem), (status = 404, body = Problem),
        (status = 409, body = Problem)),
    security(("bearer" = [])))]
pub async fn social_share_profile(
    State(state): State<AppState>,
    Caller(who): Caller,
    Path(buyer): Path<String>,
) -> Answer {
    let buyer = social_id("buyer_id", &buyer)?;
    let shared = gateway(&state)?.share_profile(&who, &buyer).await?;
    ok(StatusCode::CREATED, &SharedProfileWire::from(&shared))
}

// ---- operator ---------------------------------------------------------------------------------

#[derive(Debug, Serialize, ToSchema)]
pub struct SocialShopWire {
    pub shop_id: String,
    pub merchant_id: String,
    /// `legacy`, `migrating` or `core`.
    pub owner: String,
}

impl From<jembatan_store::social::SocialShop> for SocialShopWire {
    fn from(shop: jembatan_store::social::SocialShop) -> Self {
        SocialShopWire {
            shop_id: shop.shop_id,
            merchant_id: shop.merchant_id.to_string(),
            owner: shop.owner.as_str().to_owned(),
        }
    }
}

#[utoipa::path(post, path = "/v1/ops/social/shops/{shop_id}/enrol", tag = "social",
    params(("shop_id" = String, Path)),
    responses((status = 200, body = SocialShopWire), (status = 400, body = Problem), (status = 403, body = Problem),
        (status = 404, body = Problem), (status = 422, body = Problem)),
    security(("bearer" = [])))]
pub async fn social_enrol_shop(
    State(state): State<AppState>,
    Caller(who): Caller,
    Path(shop): Path<String>,
) -> Answer {
    let shop = social_id("shop_id", &shop)?;
    if who != jembatan_domain::Principal::Operator {
        return Err(Problem::new(
            StatusCode::FORBIDDEN,
            "forbidden",
            "only the operator enrols a social shop",
        ));
    }
    let shop = gateway(&state)?.enrol_shop(&who, &shop).await?;
    ok(StatusCode::OK, &SocialShopWire::from(shop))
}

#[derive(Debug, Serialize, ToSchema)]
pub struct MoveReportWire {
    pub shop_id: String,
    pub merchant_id: String,
    pub products_copied: usize,
    pub orders: usize,
    pub already_moved: bool,
}

#[utoipa::path(post, path = "/v1/ops/social/shops/{shop_id}/move", tag = "social",
    params(("shop_id" = String, Path)),
    responses((status = 200, body = MoveReportWire), (status = 400, body = Problem), (status = 403, body = Problem),
        (status = 404, body = Problem), (status = 409, body = Problem)),
    security(("bearer" = [])))]
/// Moves one shop to the core with its writes held during the copy (all or nothing).
pub async fn social_move_shop(
    State(state): State<AppState>,
    Caller(who): Caller,
    Path(shop): Path<String>,
) -> Answer {
    let shop = social_id("shop_id", &shop)?;
    let report = gateway(&state)?.move_shop(&who, &shop).await?;
    ok(
        StatusCode::OK,
        &MoveReportWire {
            shop_id: report.shop_id,
            merchant_id: report.merchant_id.to_string(),
            products_copied: report.products,
            orders: report.orders,
            already_moved: report.already_moved,
        },
    )
}

#[utoipa::path(post, path = "/v1/ops/social/shops/{shop_id}/abort-move", tag = "social",
    params(("shop_id" = String, Path)),
    responses((status = 200, body = SocialShopWire), (status = 400, body = Problem), (status = 403, body = Problem),
        (status = 404, body = Problem), (status = 409, body = Problem)),
    security(("bearer" = [])))]
/// Gives a shop whose move did not finish (the process died mid-move) back to the legacy
/// store: owner `legacy`, fence lifted. A shop the core owns is refused.
pub async fn social_abort_move(
    State(state): State<AppState>,
    Caller(who): Caller,
    Path(shop): Path<String>,
) -> Answer {
    let shop = social_id("shop_id", &shop)?;
    let shop = gateway(&state)?.abort_move(&who, &shop).await?;
    ok(StatusCode::OK, &SocialShopWire::from(shop))
}
