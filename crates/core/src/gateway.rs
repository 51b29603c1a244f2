//! The gateway (DESIGN.md §3): serves the social shop's contract `/social/v1` for every shop,
//! wherever its data lives.
//!
//! For each call the shop's owner decides (the `social_shops` row in the core; a shop without
//! one is the legacy store's):
//! - `legacy`: the legacy store serves the catalogue, stock and orders, in its own model;
//! - `core`: the call is translated to the core (id map, status codes, price format);
//! - `migrating`: the fence is up; a write waits (bounded by `fence_wait`) and then goes to
//!   whichever system owns the shop after the flip. A legacy write that meets the fence inside
//!   its own transaction (the legacy store's trigger) is retried the same way. Moves never fail
//!   a call unless they outlast the wait (503 `shop-moving`).
//!
//! **Payments are the core's for every shop from the start** (compliance rule R1): paying a
//! legacy shop's order opens a core order priced by the legacy store (`origin = legacy`, no
//! stock in the core) whose payment and escrow are the core's; the legacy store never records a
//! payment. The legacy order and its core twin are kept in step: every money-moving step runs
//! on the core first, then on the legacy row, and [`Gateway::order`] repairs a legacy row the
//! core is ahead of (a payment confirmed by the provider, an expiry, an auto-confirmation).
//!
//! **User data** (compliance rule R6): the core receives a pseudonymous buyer reference (a
//! keyed hash of the social user id), the shipping name, address and phone, nothing else. The
//! link from reference to user stays on the social side (`buyer_refs` in the legacy store).
//! Profile fields reach the core only under a recorded consent ([`Gateway::share_profile`]).

use std::time::Duration;

use hmac::{KeyInit, Mac};
use jembatan_domain::social::{
    LegacyStatus, SocialId, format_price, parse_payment_method, parse_price, parse_seller_type,
    payment_method_name,
};
use jembatan_domain::{
    BuyerId, Category, Channel, CheckoutLine, CheckoutRequest, DomainError, Merchant, MerchantId,
    MerchantName, Money, OrderAction, OrderId, OrderStatus, Origin, PaymentStatus, Price, PricedSku,
    Principal, ProductId, ProductTitle, Province, Quantity, ShippingAddress, SkuId, StockLevel, TypedId,
};
use jembatan_store::StoreError;
use jembatan_store::catalogue::{ProductRecord, SocialProductCopy};
use jembatan_store::legacy::{LegacyOrder, LegacyProduct, LegacyStore, NewItem, NewLegacyOrder, ProductEdit};
use jembatan_store::orders::{OrderRecord, Pricing};
use jembatan_store::payments::{PaymentRecord, RefundRecord};
use jembatan_store::social::{Consent, IdKind, IdMapping, Owner, SharedProfile, SocialShop, TwinCursor};

use crate::authz::{self, Access};
use crate::{Core, CoreError};

fn not_found(entity: &'static str, id: impl std::fmt::Display) -> CoreError {
    CoreError::Store(StoreError::not_found(entity, id))
}

/// How the gateway behaves.
#[derive(Debug, Clone)]
pub struct GatewayOptions {
    /// How long a write waits for a shop's move before giving up with 503.
    pub fence_wait: Duration,
    /// How often a waiting write looks again.
    pub fence_poll: Duration,
    /// Key of the pseudonymous buyer references (HMAC-SHA256).
    pub pseudonym_key: Vec<u8>,
}

impl Default for GatewayOptions {
    fn default() -> Self {
        GatewayOptions {
            fence_wait: Duration::from_secs(2),
            fence_poll: Duration::from_millis(20),
            pseudonym_key: b"jembatan-default-pseudonym-key".to_vec(),
        }
    }
}

/// A product as the social contract shows it.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct SocialProduct {
    pub product_id: String,
    pub shop_id: String,
    pub title: String,
    pub category: String,
    /// 1 live, 2 delisted (the core lists live products only).
    pub status: i64,
    pub skus: Vec<SocialSku>,
}

#[derive(Debug, Clone, PartialEq, Eq)]
pub struct SocialSku {
    pub sku_id: String,
    pub seller_sku: String,
    /// Whole rupiah as digits; a legacy price that does not read is shown as stored.
    pub price: String,
    /// Units available to sell.
    pub stock: i64,
}

#[derive(Debug, Clone, PartialEq, Eq)]
pub struct SocialRecipient {
    pub name: String,
    pub phone: String,
    pub address_detail: String,
    pub city: String,
    pub province: String,
    pub postal_code: String,
}

#[derive(Debug, Clone, PartialEq, Eq)]
pub struct SocialItem {
    pub product_id: String,
    pub sku_id: String,
    pub product_name: String,
    pub quantity: i64,
    pub unit_price: String,
}

#[derive(Debug, Clone, PartialEq, Eq)]
pub struct SocialPayment {
    pub payment_id: String,
    pub method: String,
    pub amount: String,
    /// `pending`, `paid` or `expired`.
    pub status: String,
    pub bank_code: Option<String>,
    pub va_number: Option<String>,
    pub qris_payload: Option<String>,
    pub ewallet_ref: Option<String>,
    pub redirect_url: Option<String>,
    pub expire_time: Option<i64>,
}

#[derive(Debug, Clone, PartialEq, Eq)]
pub struct SocialOrder {
    pub order_id: String,
    pub shop_id: String,
    pub buyer_id: String,
    pub status: i64,
    pub payment_method: String,
    pub total_amount: String,
    pub refunded_amount: String,
    pub items: Vec<SocialItem>,
    pub recipient: SocialRecipient,
    /// `None` until the buyer asks to pay (legacy shops) — the core opens it then.
    pub payment: Option<SocialPayment>,
    pub create_time: i64,
    pub update_time: i64,
}

/// A buyer's order from a cart of one shop.
#[derive(Debug, Clone)]
pub struct NewSocialOrder {
    pub shop_id: SocialId,
    pub buyer_id: SocialId,
    /// (product id, SKU id, quantity).
    pub items: Vec<(SocialId, SocialId, Quantity)>,
    pub payment_method: jembatan_domain::PaymentMethod,
    pub address: ShippingAddress,
    /// Derived from the request's idempotency key when it has one, so a retry finds its order.
    pub order_id: SocialId,
}

/// A seller's edit of a product.
#[derive(Debug, Clone, Default)]
pub struct SocialProductEdit {
    pub title: Option<ProductTitle>,
    /// (SKU id, price).
    pub prices: Vec<(SocialId, Price)>,
    /// (SKU id, units available).
    pub stocks: Vec<(SocialId, StockLevel)>,
}

/// Where a shop's calls go now.
enum Route {
    /// The legacy store; the core merchant if the shop is enrolled (for payments).
    Legacy(Option<SocialShop>),
    Core(SocialShop),
}

/// One page of a list and the token of the next.
#[derive(Debug, Clone)]
pub struct SocialPage<T> {
    pub items: Vec<T>,
    pub next_page_token: Option<String>,
}

#[derive(Clone)]
pub struct Gateway {
    core: Core,
    legacy: LegacyStore,
    options: std::sync::Arc<GatewayOptions>,
}

impl Gateway {
    pub fn new(core: Core, legacy: LegacyStore, options: GatewayOptions) -> Gateway {
        Gateway { core, legacy, options: std::sync::Arc::new(options) }
    }

    pub fn legacy(&self) -> &LegacyStore {
        &self.legacy
    }

    pub fn core(&self) -> &Core {
        &self.core
    }

    /// The pseudonymous reference the core knows a social user by.
    pub fn buyer_ref(&self, buyer_id: &SocialId) -> BuyerId {
        let mut mac = hmac::Hmac::<sha2::Sha256>::new_from_slice(&self.options.pseudonym_key)
            .expect("HMAC takes keys of any length");
        mac.update(buyer_id.as_str().as_bytes());
        let digest = hex::encode(mac.finalize().into_bytes());
        BuyerId::parse(&format!("sb_{}", &digest[..32])).expect("a hex reference is a buyer id")
    }

    fn now_s(&self) -> i64 {
        self.core.clock().now().unix_ms() / 1000
    }

    /// Enrols a social shop with the core (its merchant and balance account), as the operator
    /// does before issuing the seller's token, or the gateway on the shop's first payment.
    pub async fn enrol_shop(&self, who: &Principal, shop_id: &SocialId) -> Result<SocialShop, CoreError> {
        if !matches!(who, Principal::Operator | Principal::Channel(Channel::Social)) {
            return Err(CoreError::Forbidden("only the operator enrols a social shop".to_owned()));
        }
        if let Some(shop) = self.core.store().social_shop(shop_id.as_str()).await? {
            return Ok(shop);
        }
        let legacy = self.legacy.shop(shop_id.as_str()).await?.ok_or_else(|| not_found("shop", shop_id))?;
        let origin = parse_seller_type(&legacy.seller_type).unwrap_or(Origin::Local);
        let province = match (origin, Province::parse(&legacy.province)) {
            (Origin::CrossBorder, _) => Province::OVERSEAS,
            (Origin::Local, Ok(province)) => province,
            (Origin::Local, Err(_)) => {
                return Err(DomainError::invalid(
                    "province",
                    format!("shop {shop_id} has province `{}`, which is not an Indonesian province: fix the shop first", legacy.province),
                )
                .into());
            }
        };
        let name = MerchantName::parse(&legacy.shop_name)
            .or_else(|_| MerchantName::parse(&format!("Toko {shop_id}")))?;
        let merchant_id: MerchantId = jembatan_store::new_id();
        let nib = match jembatan_domain::Nib::parse(&legacy.nib) {
            Ok(nib) => Some(nib),
            Err(_) if origin == Origin::CrossBorder => None,
            Err(_) => {
                return Err(DomainError::invalid(
                    "nib",
                    format!("shop {shop_id} has no valid NIB (`{}`): a local seller needs its 13-digit business number before the core can hold its money", legacy.nib),
                )
                .into());
            }
        };
        let merchant = Merchant::new(merchant_id, name, origin, province, nib, self.core.clock().now())?;
        Ok(self.core.store().enrol_social_shop(self.core.ctx(who), shop_id.to_string(), merchant).await?)
    }

    async fn route(&self, shop_id: &str) -> Result<(Route, Owner), CoreError> {
        match self.core.store().social_shop(shop_id).await? {
            Some(shop) if shop.owner == Owner::Core => Ok((Route::Core(shop), Owner::Core)),
            Some(shop) => {
                let owner = shop.owner;
                Ok((Route::Legacy(Some(shop)), owner))
            }
            None => {
                if self.legacy.shop(shop_id).await?.is_none() {
                    return Err(not_found("shop", shop_id));
                }
                Ok((Route::Legacy(None), Owner::Legacy))
            }
        }
    }

    /// Runs a write on whichever system owns the shop, waiting out a fence (see module docs).
    async fn write_route<T, F, Fut>(&self, shop_id: &str, mut op: F) -> Result<T, CoreError>
    where
        F: FnMut(Route) -> Fut,
        Fut: std::future::Future<Output = Result<T, CoreError>>,
    {
        let deadline = tokio::time::Instant::now() + self.options.fence_wait;
        loop {
            let (route, owner) = self.route(shop_id).await?;
            let outcome = if owner == Owner::Migrating {
                Err(CoreError::Store(StoreError::Fenced(shop_id.to_owned())))
            } else {
                op(route).await
            };
            match outcome {
                Err(CoreError::Store(StoreError::Fenced(_))) if tokio::time::Instant::now() < deadline => {
                    metrics::counter!("jembatan_gateway_fence_waits_total").increment(1);
                    tokio::time::sleep(self.options.fence_poll).await;
                }
                other => return other,
            }
        }
    }

    /// The seller (or the operator, or the regulator reading) may act on this shop.
    fn check_shop(
        &self,
        who: &Principal,
        route: &Route,
        access: fn(MerchantId) -> Access,
    ) -> Result<(), CoreError> {
        let merchant = match route {
            Route::Core(shop) | Route::Legacy(Some(shop)) => shop.merchant_id,
            // Not enrolled: no merchant token can be bound to it; only the operator and the
            // regulator (reading) see it.
            Route::Legacy(None) => match who {
                Principal::Operator | Principal::Regulator => authz::anyone(),
                _ => return Err(not_found("shop", "requested")),
            },
        };
        authz::check(who, access(merchant))
    }

    // ---- seller side ----------------------------------------------------------------------

    pub async fn products(
        &self,
        who: &Principal,
        shop_id: &SocialId,
        page_token: Option<SocialId>,
        limit: u32,
    ) -> Result<SocialPage<SocialProduct>, CoreError> {
        let (route, _) = self.route(shop_id.as_str()).await?;
        self.check_shop(who, &route, Access::ReadCatalogue)?;
        let after = page_token.map(|t| t.to_string()).unwrap_or_default();
        // The next page follows the last row read, deleted or not (a page of deleted rows
        // must not end the listing).
        let mut last_read = None;
        let items = match route {
            Route::Legacy(_) => {
                let rows = self.legacy.products(shop_id.as_str(), &after, limit).await?;
                if rows.len() as u32 == limit {
                    last_read = rows.last().map(|p| p.product_id.clone());
                }
                rows.into_iter()
                    .filter(|p| p.status != jembatan_store::legacy::PRODUCT_DELETED)
                    .map(|p| legacy_product(&p))
                    .collect::<Vec<_>>()
            }
            Route::Core(shop) => {
                let after = if after.is_empty() {
                    None
                } else {
                    let mapped = self.core.store().core_ids(IdKind::Product, vec![after.clone()]).await?;
                    Some(parse_core_id::<ProductId>(
                        &mapped.first().ok_or_else(|| not_found("product", &after))?.core_id,
                    )?)
                };
                let products = self.core.store().products_of_merchant(shop.merchant_id, after, limit).await?;
                let mut out = Vec::with_capacity(products.len());
                for product in &products {
                    out.push(self.core_product(shop_id.as_str(), product).await?);
                }
                out
            }
        };
        let next_page_token = last_read.or_else(|| {
            if items.len() as u32 == limit { items.last().map(|p| p.product_id.clone()) } else { None }
        });
        Ok(SocialPage { items, next_page_token })
    }

    pub async fn edit_product(
        &self,
        who: &Principal,
        shop_id: &SocialId,
        product_id: &SocialId,
        edit: SocialProductEdit,
    ) -> Result<SocialProduct, CoreError> {
        self.write_route(shop_id.as_str(), |route| {
            let edit = edit.clone();
            async move {
                self.check_shop(who, &route, Access::WriteCatalogue)?;
                match route {
                    Route::Legacy(_) => {
                        let legacy_edit = ProductEdit {
                            title: edit.title.map(|t| t.as_str().to_owned()),
                            description: None,
                            prices: edit
                                .prices
                                .iter()
                                .map(|(s, p)| (s.to_string(), format_price(p.money())))
                                .collect(),
                            stocks: edit
                                .stocks
                                .iter()
                                .map(|(s, n)| (s.to_string(), i64::from(n.units_on_hand())))
                                .collect(),
                        };
                        let product = self
                            .legacy
                            .edit_product(shop_id.as_str(), product_id.as_str(), legacy_edit, self.now_s())
                            .await?;
                        Ok(legacy_product(&product))
                    }
                    Route::Core(shop) => self.edit_core_product(who, &shop, product_id, edit).await,
                }
            }
        })
        .await
    }

    async fn edit_core_product(
        &self,
        who: &Principal,
        shop: &SocialShop,
        product_id: &SocialId,
        edit: SocialProductEdit,
    ) -> Result<SocialProduct, CoreError> {
        let product_core = self.core_id::<ProductId>(IdKind::Product, product_id, shop.merchant_id).await?;
        let ctx = self.core.ctx(who);
        let mut prices = Vec::with_capacity(edit.prices.len());
        for (sku, price) in &edit.prices {
            prices.push((self.core_id::<SkuId>(IdKind::Sku, sku, shop.merchant_id).await?, *price));
        }
        let mut product = if edit.title.is_some() || !prices.is_empty() {
            self.core.store().edit_product(ctx.clone(), product_core, edit.title.clone(), prices).await?
        } else {
            self.core.store().product(product_core).await?.ok_or_else(|| not_found("product", product_id))?
        };
        for (sku, available) in &edit.stocks {
            let sku_core = self.core_id::<SkuId>(IdKind::Sku, sku, shop.merchant_id).await?;
            if !product.skus.iter().any(|s| s.id == sku_core) {
                return Err(not_found("sku", sku));
            }
            // The social contract sets units available; the core keeps on hand = available + reserved.
            self.core
                .store()
                .set_stock_available(ctx.clone(), shop.merchant_id, sku_core, *available)
                .await?;
        }
        if !edit.stocks.is_empty() {
            product = self
                .core
                .store()
                .product(product_core)
                .await?
                .ok_or_else(|| not_found("product", product_id))?;
        }
        self.core_product(&shop.shop_id, &product).await
    }

    pub async fn orders(
        &self,
        who: &Principal,
        shop_id: &SocialId,
        status: Option<LegacyStatus>,
        page_token: Option<SocialId>,
        limit: u32,
    ) -> Result<SocialPage<SocialOrder>, CoreError> {
        let (route, _) = self.route(shop_id.as_str()).await?;
        self.check_shop(who, &route, Access::ListOrders)?;
        let before = page_token.map(|t| t.to_string()).unwrap_or_default();
        let items = match route {
            Route::Legacy(_) => {
                let orders = self
                    .legacy
                    .orders(shop_id.as_str(), status.map(LegacyStatus::code), &before, limit)
                    .await?;
                let mut out = Vec::with_capacity(orders.len());
                for order in orders {
                    let twin = self.twin_of(&order.order_id).await?;
                    out.push(self.legacy_order_view(order, twin.as_ref()).await?);
                }
                out
            }
            Route::Core(shop) => {
                let before = if before.is_empty() {
                    None
                } else {
                    let mapped = self.core.store().core_ids(IdKind::Order, vec![before.clone()]).await?;
                    Some(parse_core_id::<OrderId>(
                        &mapped.first().ok_or_else(|| not_found("order", &before))?.core_id,
                    )?)
                };
                let core_status = match status {
                    // Awaiting collection does not exist in the core: nothing is in it.
                    Some(LegacyStatus::AwaitingCollection) => {
                        return Ok(SocialPage { items: Vec::new(), next_page_token: None });
                    }
                    other => other.map(LegacyStatus::to_core),
                };
                let orders = self
                    .core
                    .store()
                    .orders_of_merchant(shop.merchant_id, core_status, before, limit)
                    .await?;
                let mut out = Vec::with_capacity(orders.len());
                for order in &orders {
                    out.push(self.core_order_view(&shop.shop_id, order).await?);
                }
                out
            }
        };
        let next_page_token =
            if items.len() as u32 == limit { items.last().map(|o| o.order_id.clone()) } else { None };
        Ok(SocialPage { items, next_page_token })
    }

    /// The seller hands the parcel to the courier: in transit (121).
    pub async fn ship(&self, who: &Principal, order_id: &SocialId) -> Result<SocialOrder, CoreError> {
        self.order_step(who, order_id, OrderAction::Ship).await
    }

    // ---- buyer side -----------------------------------------------------------------------

    pub async fn create_order(&self, who: &Principal, new: NewSocialOrder) -> Result<SocialOrder, CoreError> {
        authz::check(who, Access::Checkout(Channel::Social))?;
        if let Some(existing) = self.find_order(new.order_id.as_str()).await? {
            // A retry of the same request (same idempotency key): its order as it is now.
            return self.view(existing).await;
        }
        let buyer_ref = self.buyer_ref(&new.buyer_id);
        self.legacy.remember_buyer_ref(buyer_ref.as_str(), new.buyer_id.as_str()).await?;
        let shop_id = new.shop_id.to_string();
        self.write_route(&shop_id, |route| {
            let new = new.clone();
            let buyer_ref = buyer_ref.clone();
            async move {
                match route {
                    Route::Legacy(_) => {
                        let a = &new.address;
                        let order = NewLegacyOrder {
                            shop_id: new.shop_id.to_string(),
                            order_id: new.order_id.to_string(),
                            buyer_id: new.buyer_id.to_string(),
                            payment_method: payment_method_name(new.payment_method).to_owned(),
                            recipient_name: a.recipient_name.clone(),
                            recipient_phone: a.phone.as_str().to_owned(),
                            address_detail: a.street.clone(),
                            city: a.city.clone(),
                            province: a.province.as_str().to_owned(),
                            postal_code: a.postal_code.clone(),
                            items: new
                                .items
                                .iter()
                                .map(|(p, s, q)| NewItem {
                                    product_id: p.to_string(),
                                    sku_id: s.to_string(),
                                    quantity: i64::from(q.units()),
                                })
                                .collect(),
                            now_s: self.now_s(),
                        };
                        let order = match self.legacy.create_order(order).await {
                            Err(StoreError::Conflict(_)) => {
                                self.legacy
                                    .order(new.order_id.as_str())
                                    .await?
                                    .ok_or_else(|| not_found("order", &new.order_id))?
                            }
                            other => other?,
                        };
                        // The payment is the core's from the start (R1): its twin opens now. If
                        // that fails the legacy order is cancelled again (stock back); a crash
                        // in between leaves an unpaid order whose twin `pay` opens later.
                        if self.twin_of(&order.order_id).await?.is_none() {
                            let opened = match self
                                .enrol_shop(&Principal::Channel(Channel::Social), &new.shop_id)
                                .await
                            {
                                Ok(shop) => self.open_twin(who, &shop, &order).await,
                                Err(error) => Err(error),
                            };
                            if let Err(error) = opened {
                                let _ = self
                                    .legacy
                                    .set_order_status(
                                        &order.order_id,
                                        vec![LegacyStatus::Unpaid],
                                        LegacyStatus::Cancelled,
                                        self.now_s(),
                                    )
                                    .await;
                                return Err(error);
                            }
                        }
                        let twin = self.twin_of(&order.order_id).await?;
                        self.legacy_order_view(order, twin.as_ref()).await
                    }
                    Route::Core(shop) => {
                        let mut lines = Vec::with_capacity(new.items.len());
                        for (product, sku, quantity) in &new.items {
                            let sku_core = self.core_id::<SkuId>(IdKind::Sku, sku, shop.merchant_id).await?;
                            let product_core =
                                self.core_id::<ProductId>(IdKind::Product, product, shop.merchant_id).await?;
                            let record = self
                                .core
                                .store()
                                .sku(sku_core)
                                .await?
                                .ok_or_else(|| not_found("sku", sku))?;
                            if record.product_id != product_core {
                                return Err(not_found("sku", format!("{sku} of product {product}")));
                            }
                            lines.push(CheckoutLine { sku_id: sku_core, quantity: *quantity });
                        }
                        let request = CheckoutRequest::new(
                            Channel::Social,
                            buyer_ref,
                            lines,
                            new.address.clone(),
                            new.payment_method,
                        )?;
                        let payment = self.core.new_payment(&request);
                        let checkout = match self
                            .core
                            .store()
                            .checkout_social(
                                self.core.ctx(who),
                                request,
                                Pricing::Reserve,
                                new.order_id.to_string(),
                                payment,
                            )
                            .await
                        {
                            // Name the SKU as the social app knows it.
                            Err(StoreError::Domain(DomainError::InsufficientStock {
                                sku: Some(core),
                                available,
                                requested,
                            })) => {
                                let social =
                                    self.core.store().social_ids(IdKind::Sku, vec![core.clone()]).await?;
                                let sku = social.first().map_or(core, |m| m.social_id.clone());
                                return Err(DomainError::InsufficientStock {
                                    sku: Some(sku),
                                    available,
                                    requested,
                                }
                                .into());
                            }
                            other => other?,
                        };
                        let order =
                            checkout.orders.first().ok_or_else(|| not_found("order", &new.order_id))?;
                        self.core_order_view(&shop.shop_id, order).await
                    }
                }
            }
        })
        .await
    }

    /// An order, wherever it lives; a legacy row behind its core twin is brought up to it.
    pub async fn order(&self, who: &Principal, order_id: &SocialId) -> Result<SocialOrder, CoreError> {
        let found = self.find_order(order_id.as_str()).await?.ok_or_else(|| not_found("order", order_id))?;
        self.check_order(who, &found, |merchant| Access::ReadOrder { merchant, channel: Channel::Social })?;
        self.view(found).await
    }

    /// What the buyer needs to pay. For a legacy shop's order the core opens its payment now.
    pub async fn pay(&self, who: &Principal, order_id: &SocialId) -> Result<SocialOrder, CoreError> {
        authz::check(who, Access::Checkout(Channel::Social))?;
        let found = self.find_order(order_id.as_str()).await?.ok_or_else(|| not_found("order", order_id))?;
        match found {
            Found::Core { .. } => self.view(found).await,
            Found::Legacy { order, twin: Some(_), .. } => {
                let twin = self.twin_of(&order.order_id).await?;
                self.legacy_order_view(order, twin.as_ref()).await
            }
            Found::Legacy { order, twin: None, .. } => {
                if order.status != LegacyStatus::Unpaid.code() {
                    return Err(CoreError::Store(StoreError::Conflict(format!(
                        "order {order_id} has status {}: only an unpaid order is paid",
                        order.status
                    ))));
                }
                let shop_id = SocialId::parse("shop_id", &order.shop_id)?;
                let shop = self.enrol_shop(&Principal::Channel(Channel::Social), &shop_id).await?;
                self.open_twin(who, &shop, &order).await?;
                let twin = self.twin_of(&order.order_id).await?;
                // A cancel may have committed on the legacy row after it was read: then the
                // twin is cancelled too (a cancel checks for a twin after its write, so one of
                // the two always sees the other).
                let order =
                    self.legacy.order(&order.order_id).await?.ok_or_else(|| not_found("order", order_id))?;
                if let Some(twin) = &twin
                    && order.status == LegacyStatus::Cancelled.code()
                {
                    self.core_steps(&Principal::Operator, twin.clone(), OrderAction::Cancel).await?;
                    return Err(CoreError::Store(StoreError::Conflict(format!(
                        "order {order_id} was cancelled while its payment was being opened: nothing to pay"
                    ))));
                }
                self.legacy_order_view(order, twin.as_ref()).await
            }
        }
    }

    /// The buyer confirms receipt: completed (130); the escrow is released to the seller.
    pub async fn confirm(&self, who: &Principal, order_id: &SocialId) -> Result<SocialOrder, CoreError> {
        self.order_step(who, order_id, OrderAction::Confirm).await
    }

    /// The buyer cancels before shipping (140); what was paid is refunded, stock comes back.
    pub async fn cancel(&self, who: &Principal, order_id: &SocialId) -> Result<SocialOrder, CoreError> {
        self.order_step(who, order_id, OrderAction::Cancel).await
    }

    /// A refund of (part of) a paid order, from the core's escrow (or, after release, the
    /// seller's balance). The buyer may take one only before shipment; the seller any time.
    pub async fn refund(
        &self,
        who: &Principal,
        order_id: &SocialId,
        amount: Money,
        reason: String,
        idem: Option<jembatan_store::Idem<RefundRecord>>,
    ) -> Result<RefundRecord, CoreError> {
        let found = self.find_order(order_id.as_str()).await?.ok_or_else(|| not_found("order", order_id))?;
        self.check_order(who, &found, |merchant| Access::ReadOrder { merchant, channel: Channel::Social })?;
        let core_order = match &found {
            Found::Core { order, .. } => order.clone(),
            Found::Legacy { twin: Some(twin), .. } => twin.clone(),
            Found::Legacy { .. } => {
                return Err(CoreError::Store(StoreError::Conflict(format!(
                    "order {order_id} was never paid: there is nothing to refund"
                ))));
            }
        };
        // The buyer's own refund is limited to a paid order that has not left the seller (an
        // item missing, a change of mind): once the parcel is on its way the goods are out of
        // the seller's hands, and a refund is the seller's to grant (its token, this route).
        if matches!(who, Principal::Channel(_)) && core_order.status != OrderStatus::Paid {
            return Err(CoreError::Forbidden(format!(
                "order {order_id} is {}: after shipment a refund is granted by the seller, not taken by the buyer",
                core_order.status.as_str()
            )));
        }
        let ctx = self.core.ctx(who);
        Ok(self.core.store().refund(ctx, core_order.id, amount, reason, idem).await?)
    }

    pub async fn refunds(
        &self,
        who: &Principal,
        order_id: &SocialId,
    ) -> Result<Vec<RefundRecord>, CoreError> {
        let found = self.find_order(order_id.as_str()).await?.ok_or_else(|| not_found("order", order_id))?;
        self.check_order(who, &found, |merchant| Access::ReadOrder { merchant, channel: Channel::Social })?;
        match found {
            Found::Core { order, .. } | Found::Legacy { twin: Some(order), .. } => {
                Ok(self.core.store().refunds_of_order(&order).await?)
            }
            Found::Legacy { .. } => Ok(Vec::new()),
        }
    }

    // ---- consent (rule R6) ------------------------------------------------------------------

    pub async fn record_consent(
        &self,
        who: &Principal,
        buyer_id: &SocialId,
        purpose: String,
        text_version: String,
    ) -> Result<Consent, CoreError> {
        authz::check(who, Access::Checkout(Channel::Social))?;
        let buyer_ref = self.buyer_ref(buyer_id);
        self.legacy.remember_buyer_ref(buyer_ref.as_str(), buyer_id.as_str()).await?;
        Ok(self
            .core
            .store()
            .record_consent(self.core.ctx(who), buyer_ref.as_str().to_owned(), purpose, text_version)
            .await?)
    }

    pub async fn withdraw_consent(
        &self,
        who: &Principal,
        buyer_id: &SocialId,
        purpose: String,
    ) -> Result<u64, CoreError> {
        authz::check(who, Access::Checkout(Channel::Social))?;
        let buyer_ref = self.buyer_ref(buyer_id);
        Ok(self
            .core
            .store()
            .withdraw_consent(self.core.ctx(who), buyer_ref.as_str().to_owned(), purpose)
            .await?)
    }

    /// A data subject's export under UU PDP: everything the core holds about the user (as its
    /// pseudonymous reference) and the record of what was done with it; the request is
    /// recorded as answered with its deadline. The social channel asks on the user's behalf.
    pub async fn export_buyer(
        &self,
        who: &Principal,
        buyer_id: &SocialId,
    ) -> Result<jembatan_store::pdp::BuyerExport, CoreError> {
        authz::check(who, Access::Checkout(Channel::Social))?;
        let buyer_ref = self.buyer_ref(buyer_id);
        Ok(self.core.store().export_buyer(self.core.ctx(who), buyer_ref.as_str().to_owned()).await?)
    }

    pub async fn consents(&self, who: &Principal, buyer_id: &SocialId) -> Result<Vec<Consent>, CoreError> {
        authz::check_role(who, Access::ReadOrder { merchant: authz::anyone(), channel: Channel::Social })?;
        if matches!(who, Principal::Merchant(_)) {
            return Err(CoreError::Forbidden("a merchant cannot read a user's consents".to_owned()));
        }
        Ok(self.core.store().consents(self.buyer_ref(buyer_id).as_str().to_owned()).await?)
    }

    /// Shares the user's profile fields with the core — only under a standing consent to
    /// `profile_sharing` (refused otherwise, nothing written).
    pub async fn share_profile(
        &self,
        who: &Principal,
        buyer_id: &SocialId,
    ) -> Result<SharedProfile, CoreError> {
        authz::check(who, Access::Checkout(Channel::Social))?;
        let buyer =
            self.legacy.buyer(buyer_id.as_str()).await?.ok_or_else(|| not_found("buyer", buyer_id))?;
        let buyer_ref = self.buyer_ref(buyer_id);
        Ok(self
            .core
            .store()
            .share_profile(self.core.ctx(who), buyer_ref.as_str().to_owned(), buyer.nickname, buyer.email)
            .await?)
    }

    // ---- keeping legacy rows in step -----------------------------------------------------------

    /// Brings the legacy rows of twins changed after `cursor` up to the core (a payment the
    /// provider confirmed, an expiry that gives the stock back, an auto-confirmation), so that
    /// a seller listing "awaiting shipment" sees a paid order without anyone reading it first.
    /// One batch: returns how many rows moved, the cursor to resume from, and whether more may
    /// be waiting.
    pub async fn sync_legacy_twins(
        &self,
        cursor: TwinCursor,
        batch: u32,
    ) -> Result<(u64, TwinCursor, bool), CoreError> {
        let changed = self.core.store().legacy_twins_changed_since(cursor.clone(), batch).await?;
        let mut moved = 0;
        let mut next = cursor;
        for (social_id, status, at) in changed.iter() {
            next = at.clone();
            let Some(order) = self.legacy.order(social_id).await? else { continue };
            if let Some((from, to)) = repair(order.status, *status) {
                match self.legacy.set_order_status(social_id, from, to, self.now_s()).await {
                    Ok(_) => moved += 1,
                    // Moved shops are the core's; a concurrent step got there first.
                    Err(StoreError::Fenced(_) | StoreError::Conflict(_)) => {}
                    Err(error) => return Err(error.into()),
                }
            }
        }
        Ok((moved, next, changed.len() as u32 == batch))
    }

    /// Runs [`Gateway::sync_legacy_twins`] every `interval`, looking back `overlap` each time
    /// (a unit that committed late with an earlier time is still seen). Starts a day back:
    /// older changes are repaired when the order is next read or written.
    pub async fn run_legacy_sync(self, interval: Duration, overlap: Duration) {
        let mut since = self.core.clock().now().unix_ms() - 24 * 60 * 60 * 1000;
        let mut ticker = tokio::time::interval(interval);
        loop {
            ticker.tick().await;
            let mut resume = TwinCursor::from_ms(since);
            loop {
                match self.sync_legacy_twins(resume.clone(), 500).await {
                    Ok((moved, next, more)) => {
                        metrics::counter!("jembatan_gateway_legacy_rows_synced_total").increment(moved);
                        resume = next;
                        if !more {
                            since = since.max(resume.at_ms - overlap.as_millis() as i64);
                            break;
                        }
                    }
                    Err(error) => {
                        tracing::warn!(%error, "legacy sync failed; retrying");
                        break;
                    }
                }
            }
        }
    }

    // ---- moving a shop -----------------------------------------------------------------------

    /// Moves one shop from the legacy store to the core with its writes held for the whole
    /// copy: owner `migrating` and the legacy fence up, products and SKUs copied (keeping the
    /// core ids its paid orders already use; a delisted product moves unlisted), each unpaid
    /// order given its core twin, then the owner flips to `core`. The legacy fence stays up:
    /// the legacy store is no longer the owner.
    ///
    /// Every row is checked before the fence goes up (and again once it is up, as the shop may
    /// have changed): a shop with a row the core cannot take — a defect (an empty title, a
    /// negative stock, an ambiguous price, a SKU code used twice in the shop, a damaged SKU
    /// list), an unpaid order whose payment could not be opened, or an order paid before the
    /// integration whose money the core never held — is not moved, and the error lists every
    /// such row. Anything failing once the owner is `migrating` moves it back to `legacy` and
    /// lifts the fence ([`Gateway::abort_move`]); the copy is an upsert, so a later move brings
    /// what was copied up to date. A process dying mid-move leaves the shop `migrating`: moving
    /// it again resumes, `abort_move` gives it back. The live, resumable move with catch-up,
    /// verification and quarantine is the migration engine's.
    pub async fn move_shop(&self, who: &Principal, shop_id: &SocialId) -> Result<MoveReport, CoreError> {
        if *who != Principal::Operator {
            return Err(CoreError::Forbidden("only the operator moves a shop".to_owned()));
        }
        let shop = self.enrol_shop(who, shop_id).await?;
        if shop.owner == Owner::Core {
            return Ok(MoveReport {
                shop_id: shop.shop_id,
                merchant_id: shop.merchant_id,
                products: 0,
                orders: 0,
                already_moved: true,
            });
        }
        // Checked before anything changes: a refused shop keeps selling as it was.
        self.move_plan(&shop).await?;
        let ctx = self.core.ctx(who);
        if shop.owner == Owner::Legacy {
            self.core
                .store()
                .set_shop_owner(ctx.clone(), shop_id.as_str(), Owner::Legacy, Owner::Migrating)
                .await?;
        }
        match self.finish_move(who, &shop).await {
            Ok(report) => Ok(report),
            Err(error) => {
                tracing::warn!(shop_id = %shop_id, %error, "the move failed; the shop goes back to the legacy store");
                self.abort_move(who, shop_id).await?;
                Err(error)
            }
        }
    }

    /// The part of a move run with the owner `migrating`: fence, check again, copy, flip.
    async fn finish_move(&self, who: &Principal, shop: &SocialShop) -> Result<MoveReport, CoreError> {
        let ctx = self.core.ctx(who);
        let store = self.core.store();
        self.legacy.fence(&shop.shop_id, "moving to the core", ctx.now.unix_ms()).await?;
        // The fence is up and no write is in flight any more: read again what to copy.
        let plan = self.move_plan(shop).await?;
        let copied = plan.copies.len();
        store.put_social_products(ctx.clone(), plan.copies).await?;
        for order in &plan.unpaid {
            self.open_twin(who, shop, order).await?;
        }
        // The legacy rows are frozen now: those cancelled gave their units back there (and so
        // to the copy); the flip returns the units of twins cancelled since.
        store.complete_shop_move(self.core.ctx(who), &shop.shop_id, plan.cancelled).await?;
        Ok(MoveReport {
            shop_id: shop.shop_id.clone(),
            merchant_id: shop.merchant_id,
            products: copied,
            orders: plan.orders,
            already_moved: false,
        })
    }

    /// Gives a shop whose move did not finish back to the legacy store: owner `legacy`, fence
    /// down. A shop the core owns is refused (moving back is the migration engine's rollback).
    pub async fn abort_move(&self, who: &Principal, shop_id: &SocialId) -> Result<SocialShop, CoreError> {
        if *who != Principal::Operator {
            return Err(CoreError::Forbidden("only the operator moves a shop".to_owned()));
        }
        let shop = self
            .core
            .store()
            .social_shop(shop_id.as_str())
            .await?
            .ok_or_else(|| not_found("shop", shop_id))?;
        let shop = match shop.owner {
            Owner::Core => {
                return Err(CoreError::Store(StoreError::Conflict(format!(
                    "shop {shop_id} has moved to the core: a finished move is not aborted"
                ))));
            }
            Owner::Migrating => {
                self.core
                    .store()
                    .set_shop_owner(self.core.ctx(who), shop_id.as_str(), Owner::Migrating, Owner::Legacy)
                    .await?
            }
            Owner::Legacy => shop,
        };
        // Lifted after the flip: the legacy store takes writes only once it owns the shop again.
        self.legacy.unfence(shop_id.as_str()).await?;
        Ok(shop)
    }

    /// What moving `shop` copies, or every reason it cannot move now.
    async fn move_plan(&self, shop: &SocialShop) -> Result<MovePlan, CoreError> {
        let products = self.all_legacy_products(&shop.shop_id).await?;
        let orders = self.all_legacy_orders(&shop.shop_id).await?;
        let store = self.core.store();
        let mut refused = Vec::new();
        let mut drafts = Vec::with_capacity(products.len());
        let mut codes: std::collections::HashMap<String, String> = std::collections::HashMap::new();
        for product in &products {
            match core_product_draft(shop.merchant_id, product) {
                Ok(draft) => {
                    for sku in &draft.skus {
                        if let Some(other) =
                            codes.insert(sku.code.as_str().to_owned(), product.product_id.clone())
                            && other != product.product_id
                        {
                            refused.push(format!(
                                "product {}: SKU code `{}` is also used by product {other} (codes are unique per merchant in the core)",
                                product.product_id,
                                sku.code.as_str()
                            ));
                        }
                    }
                    drafts.push((product, draft));
                }
                Err(reason) => refused.push(format!("product {}: {reason}", product.product_id)),
            }
        }
        let mut unpaid = Vec::new();
        let mut cancelled = Vec::new();
        let twins =
            store.core_ids(IdKind::Order, orders.iter().map(|o| o.order_id.clone()).collect()).await?;
        for order in &orders {
            let has_twin = twins.iter().any(|t| t.social_id == order.order_id);
            match (has_twin, order.status) {
                (_, 140) => cancelled.push(order.order_id.clone()),
                (true, _) => {}
                (false, 100) => match twin_parts(order) {
                    Ok(_) => unpaid.push(order.clone()),
                    Err(error) => refused.push(format!("order {}: {error}", order.order_id)),
                },
                (false, status) => refused.push(format!(
                    "order {} (status {status}) was paid before payments moved to the core: the migration engine imports such history",
                    order.order_id
                )),
            }
        }
        if !refused.is_empty() {
            return Err(CoreError::Store(StoreError::Conflict(format!(
                "shop {} cannot move: {}",
                shop.shop_id,
                refused.join("; ")
            ))));
        }
        let product_map =
            store.core_ids(IdKind::Product, products.iter().map(|p| p.product_id.clone()).collect()).await?;
        let sku_map = store
            .core_ids(
                IdKind::Sku,
                products.iter().flat_map(|p| p.skus.iter().map(|s| s.sku_id.clone())).collect(),
            )
            .await?;
        let mut copies = Vec::with_capacity(drafts.len());
        for (product, draft) in drafts {
            let product_id = match product_map.iter().find(|m| m.social_id == product.product_id) {
                Some(m) => parse_core_id::<ProductId>(&m.core_id)?,
                None => jembatan_store::new_id(),
            };
            let social_sku_ids: Vec<String> = product.skus.iter().map(|s| s.sku_id.clone()).collect();
            let mut sku_ids = Vec::with_capacity(social_sku_ids.len());
            for social in &social_sku_ids {
                sku_ids.push(match sku_map.iter().find(|m| &m.social_id == social) {
                    Some(m) => parse_core_id::<SkuId>(&m.core_id)?,
                    None => jembatan_store::new_id(),
                });
            }
            copies.push(SocialProductCopy {
                product: draft,
                ids: jembatan_store::catalogue::SocialProductIds {
                    product_id,
                    social_product_id: product.product_id.clone(),
                    sku_ids,
                    social_sku_ids,
                },
                listed: product.status == jembatan_store::legacy::PRODUCT_LIVE,
            });
        }
        Ok(MovePlan { copies, unpaid, cancelled, orders: orders.len() })
    }

    async fn all_legacy_products(&self, shop_id: &str) -> Result<Vec<LegacyProduct>, CoreError> {
        let mut out: Vec<LegacyProduct> = Vec::new();
        loop {
            let after = out.last().map(|p| p.product_id.clone()).unwrap_or_default();
            let page = self.legacy.products(shop_id, &after, 500).await?;
            let done = page.len() < 500;
            out.extend(page);
            if done {
                return Ok(out
                    .into_iter()
                    .filter(|p| p.status != jembatan_store::legacy::PRODUCT_DELETED)
                    .collect());
            }
        }
    }

    async fn all_legacy_orders(&self, shop_id: &str) -> Result<Vec<LegacyOrder>, CoreError> {
        let mut out: Vec<LegacyOrder> = Vec::new();
        loop {
            let before = out.last().map(|o| o.order_id.clone()).unwrap_or_default();
            let page = self.legacy.orders(shop_id, None, &before, 500).await?;
            let done = page.len() < 500;
            out.extend(page);
            if done {
                return Ok(out);
            }
        }
    }

    // ---- internals --------------------------------------------------------------------------

    /// An order step run on whichever system holds the order. For a legacy order with a core
    /// twin the core moves first (money), then the legacy row.
    async fn order_step(
        &self,
        who: &Principal,
        order_id: &SocialId,
        action: OrderAction,
    ) -> Result<SocialOrder, CoreError> {
        let found = self.find_order(order_id.as_str()).await?.ok_or_else(|| not_found("order", order_id))?;
        self.check_order(who, &found, |merchant| Access::TransitionOrder {
            merchant,
            channel: Channel::Social,
            action,
        })?;
        let shop_id = found.shop_id().to_owned();
        // A step is several transactions (the core twin's, then the legacy row's). If the
        // database aborts a later one to break a deadlock (PostgreSQL), the earlier ones stand:
        // answering "nothing was written" would be false. The call runs again instead — each
        // step already taken is skipped — a few times before the conflict is given back.
        let mut attempts = 0;
        loop {
            match self.order_step_once(who, order_id, action, &shop_id).await {
                Err(CoreError::Store(e)) if e.is_retry_abort() && attempts < 5 => {
                    attempts += 1;
                    metrics::counter!("jembatan_gateway_step_retries_total").increment(1);
                    tokio::time::sleep(self.options.fence_poll).await;
                }
                other => return other,
            }
        }
    }

    async fn order_step_once(
        &self,
        who: &Principal,
        order_id: &SocialId,
        action: OrderAction,
        shop_id: &str,
    ) -> Result<SocialOrder, CoreError> {
        self.write_route(shop_id, |_| async {
            // Found again inside the route: the shop may have moved while this call waited.
            let found =
                self.find_order(order_id.as_str()).await?.ok_or_else(|| not_found("order", order_id))?;
            match found {
                Found::Core { shop_id, order } => {
                    let order = self.core_steps(who, order, action).await?;
                    self.core_order_view(&shop_id, &order).await
                }
                Found::Legacy { order, twin, .. } => {
                    // A payment the provider confirmed (or an expiry) the legacy row has not
                    // heard of yet comes first.
                    let order = match &twin {
                        Some(twin) => self.repair_legacy(order, twin).await?,
                        None => order,
                    };
                    if twin.is_none()
                        && action == OrderAction::Cancel
                        && order.status != LegacyStatus::Unpaid.code()
                        && order.status != LegacyStatus::Cancelled.code()
                    {
                        return Err(CoreError::Store(StoreError::Conflict(format!(
                            "order {order_id} was paid before payments moved to the core, which holds no money for it: its cancellation and refund go through the operator"
                        ))));
                    }
                    let had_twin = twin.is_some();
                    let mut twin = match twin {
                        Some(twin) => Some(self.core_steps(who, twin, action).await?),
                        None => None,
                    };
                    let (from, to) = legacy_step(action, had_twin, order_id)?;
                    // Taken already by an earlier attempt of this call: not taken again.
                    let order = if order.status == to.code() {
                        order
                    } else {
                        self.legacy.set_order_status(&order.order_id, from, to, self.now_s()).await?
                    };
                    if !had_twin && action == OrderAction::Cancel {
                        // A concurrent pay may have opened a twin after this call looked:
                        // it must not stay payable.
                        if let Some(opened) = self.twin_of(&order.order_id).await? {
                            twin = Some(self.core_steps(&Principal::Operator, opened, OrderAction::Cancel).await?);
                        }
                    }
                    self.legacy_order_view(order, twin.as_ref()).await
                }
            }
        })
        .await
    }

    /// The core transitions that make `action` in the social contract: confirming receipt of a
    /// parcel in transit also marks it delivered. A step already taken is not taken again.
    async fn core_steps(
        &self,
        who: &Principal,
        order: OrderRecord,
        action: OrderAction,
    ) -> Result<OrderRecord, CoreError> {
        let steps: &[OrderAction] = match (action, order.status) {
            (OrderAction::Confirm, OrderStatus::Shipped) => &[OrderAction::Deliver, OrderAction::Confirm],
            (OrderAction::Confirm, OrderStatus::Completed)
            | (OrderAction::Ship, OrderStatus::Shipped)
            | (OrderAction::Cancel, OrderStatus::Cancelled) => &[],
            (action, _) => std::slice::from_ref(match action {
                OrderAction::Ship => &OrderAction::Ship,
                OrderAction::Confirm => &OrderAction::Confirm,
                OrderAction::Cancel => &OrderAction::Cancel,
                OrderAction::Deliver => &OrderAction::Deliver,
                OrderAction::Pay => &OrderAction::Pay,
            }),
        };
        let mut order = order;
        for step in steps {
            // The buyer's channel confirms receipt; the delivery it implies is recorded as
            // the operator's (the courier's) step, on the buyer's word.
            let actor = if *step == OrderAction::Deliver { Principal::Operator } else { who.clone() };
            order = self.core.store().transition_order(self.core.ctx(&actor), order.id, *step, None).await?;
        }
        Ok(order)
    }

    /// Opens the core twin (its payment) of a legacy order that has none yet; an order with
    /// one is left as it is. The migration engine moves unpaid orders this way.
    pub(crate) async fn ensure_twin(
        &self,
        who: &Principal,
        shop: &SocialShop,
        order: &LegacyOrder,
    ) -> Result<(), CoreError> {
        if self.twin_of(&order.order_id).await?.is_some() {
            return Ok(());
        }
        self.open_twin(who, shop, order).await
    }

    async fn open_twin(
        &self,
        who: &Principal,
        shop: &SocialShop,
        order: &LegacyOrder,
    ) -> Result<(), CoreError> {
        let parts = twin_parts(order)?;
        // Each legacy SKU gets its core id now (kept when the shop moves).
        let mut mappings: Vec<IdMapping> = Vec::with_capacity(parts.lines.len());
        for (sku, ..) in &parts.lines {
            mappings.push(IdMapping {
                social_id: sku.clone(),
                merchant_id: shop.merchant_id,
                core_id: jembatan_store::new_id::<SkuId>().to_string(),
            });
        }
        let mapped = self.core.store().map_ids(IdKind::Sku, mappings).await?;
        let mut lines = Vec::with_capacity(parts.lines.len());
        let mut priced = Vec::with_capacity(parts.lines.len());
        for ((social_sku, quantity, price), item) in parts.lines.iter().zip(&order.items) {
            let core = mapped
                .iter()
                .find(|m| &m.social_id == social_sku)
                .ok_or_else(|| not_found("sku", social_sku))?;
            let sku_id = parse_core_id::<SkuId>(&core.core_id)?;
            let category = match self.legacy.product(&order.shop_id, &item.product_id).await? {
                Some(product) => Category::parse(&product.category).unwrap_or(Category::Home),
                None => Category::Home,
            };
            lines.push(CheckoutLine { sku_id, quantity: *quantity });
            priced.push(PricedSku { sku_id, merchant_id: shop.merchant_id, price: *price, category });
        }
        let request = CheckoutRequest::new(
            Channel::Social,
            self.buyer_ref(&parts.buyer),
            lines,
            parts.address,
            parts.method,
        )?;
        let payment = self.core.new_payment(&request);
        match self
            .core
            .store()
            .checkout_social(
                self.core.ctx(who),
                request,
                Pricing::Legacy(priced),
                order.order_id.clone(),
                payment,
            )
            .await
        {
            // Two pay calls raced: the other opened the twin.
            Ok(_) | Err(StoreError::Conflict(_)) => Ok(()),
            Err(error) => Err(error.into()),
        }
    }

    async fn twin_of(&self, order_id: &str) -> Result<Option<OrderRecord>, CoreError> {
        let mapped = self.core.store().core_ids(IdKind::Order, vec![order_id.to_owned()]).await?;
        match mapped.first() {
            None => Ok(None),
            Some(m) => Ok(self.core.store().order(parse_core_id::<OrderId>(&m.core_id)?).await?),
        }
    }

    async fn find_order(&self, order_id: &str) -> Result<Option<Found>, CoreError> {
        // The twin and its shop's owner in one store read (the owner is read fresh each call).
        let (twin, shop) = match self.core.store().social_twin(order_id.to_owned()).await? {
            None => (None, None),
            Some(found) => {
                parse_core_id::<OrderId>(&found.mapping.core_id)?;
                (found.order, found.shop)
            }
        };
        if let Some(order) = &twin {
            let shop = shop.ok_or_else(|| not_found("shop", order.merchant_id))?;
            if shop.owner == Owner::Core {
                return Ok(Some(Found::Core { shop_id: shop.shop_id, order: order.clone() }));
            }
        }
        match self.legacy.order(order_id).await? {
            Some(order) => Ok(Some(Found::Legacy { order, twin })),
            None => Ok(None),
        }
    }

    fn check_order(
        &self,
        who: &Principal,
        found: &Found,
        access: impl Fn(MerchantId) -> Access,
    ) -> Result<(), CoreError> {
        match found {
            Found::Core { order, .. } | Found::Legacy { twin: Some(order), .. } => {
                authz::check(who, access(order.merchant_id))
            }
            Found::Legacy { .. } => match who {
                // An order of a shop not yet enrolled: its seller has no token yet.
                Principal::Merchant(_) => Err(not_found("order", "requested")),
                other => authz::check(other, access(authz::anyone())),
            },
        }
    }

    async fn view(&self, found: Found) -> Result<SocialOrder, CoreError> {
        match found {
            Found::Core { shop_id, order } => self.core_order_view(&shop_id, &order).await,
            Found::Legacy { order, twin } => self.legacy_order_view(order, twin.as_ref()).await,
        }
    }

    /// A legacy order with its core twin's money; a legacy row the core is ahead of (paid,
    /// expired, auto-confirmed) is brought up to it first.
    async fn legacy_order_view(
        &self,
        order: LegacyOrder,
        twin: Option<&OrderRecord>,
    ) -> Result<SocialOrder, CoreError> {
        let order = match twin {
            Some(twin) => self.repair_legacy(order, twin).await?,
            None => order,
        };
        let payment = match twin {
            Some(twin) => self.payment_of(twin).await?,
            None => None,
        };
        Ok(SocialOrder {
            total_amount: parse_price(&order.total_amount).map_or(order.total_amount.clone(), format_price),
            refunded_amount: format_price(twin.map_or(Money::ZERO, |t| t.refunded)),
            items: order
                .items
                .iter()
                .map(|i| SocialItem {
                    product_id: i.product_id.clone(),
                    sku_id: i.sku_id.clone(),
                    product_name: i.product_title.clone(),
                    quantity: i.quantity,
                    unit_price: parse_price(&i.unit_price).map_or(i.unit_price.clone(), format_price),
                })
                .collect(),
            recipient: SocialRecipient {
                name: order.recipient_name,
                phone: order.recipient_phone,
                address_detail: order.address_detail,
                city: order.city,
                province: order.province,
                postal_code: order.postal_code,
            },
            order_id: order.order_id,
            shop_id: order.shop_id,
            buyer_id: order.buyer_id,
            status: order.status,
            payment_method: order.payment_method,
            payment,
            create_time: order.create_time,
            update_time: order.update_time,
        })
    }

    /// Brings a legacy row up to its core twin where the core is ahead (see [`repair`]).
    async fn repair_legacy(&self, order: LegacyOrder, twin: &OrderRecord) -> Result<LegacyOrder, CoreError> {
        let mut order = order;
        if let Some((from, to)) = repair(order.status, twin.status) {
            match self.legacy.set_order_status(&order.order_id, from, to, self.now_s()).await {
                Ok(repaired) => order = repaired,
                // The shop is fenced or moved; the view shows the core's status all the same.
                Err(StoreError::Fenced(_)) | Err(StoreError::Conflict(_)) => order.status = to.code(),
                Err(error) => return Err(error.into()),
            }
        }
        Ok(order)
    }

    async fn core_order_view(&self, shop_id: &str, order: &OrderRecord) -> Result<SocialOrder, CoreError> {
        // Every id, product and the payment in one store read.
        let parts = self.core.store().social_order_parts(order).await?;
        let order_id = parts.order_ids.first().map_or_else(|| order.id.to_string(), |m| m.social_id.clone());
        let mut items = Vec::with_capacity(order.lines.len());
        for line in &order.lines {
            let core_sku = line.sku_id.to_string();
            let sku_id = parts
                .skus
                .iter()
                .find(|m| m.core_id == core_sku)
                .map_or_else(|| core_sku.clone(), |m| m.social_id.clone());
            let (product_id, product_name) = match parts.lines.iter().find(|l| l.sku_id == core_sku) {
                Some(sku) => {
                    let core_product = sku.product_id.to_string();
                    let social = parts.products.iter().find(|m| m.core_id == core_product);
                    (
                        social.map_or(core_product.clone(), |m| m.social_id.clone()),
                        sku.title.clone().unwrap_or_default(),
                    )
                }
                None => (String::new(), String::new()),
            };
            items.push(SocialItem {
                product_id,
                sku_id,
                product_name,
                quantity: i64::from(line.quantity.units()),
                unit_price: format_price(line.unit_price.money()),
            });
        }
        let buyer_id = self.legacy.buyer_of_ref(order.buyer_id.as_str()).await?.unwrap_or_default();
        let a = &order.shipping_address;
        Ok(SocialOrder {
            order_id,
            shop_id: shop_id.to_owned(),
            buyer_id,
            status: LegacyStatus::from_core(order.status).code(),
            payment_method: payment_method_name(order.payment_method).to_owned(),
            total_amount: format_price(order.total),
            refunded_amount: format_price(order.refunded),
            items,
            recipient: SocialRecipient {
                name: a.recipient_name.clone(),
                phone: a.phone.as_str().to_owned(),
                address_detail: a.street.clone(),
                city: a.city.clone(),
                province: a.province.as_str().to_owned(),
                postal_code: a.postal_code.clone(),
            },
            payment: parts.payment.as_ref().map(social_payment),
            create_time: order.created_at.unix_ms() / 1000,
            update_time: order.updated_at.unix_ms() / 1000,
        })
    }

    async fn payment_of(&self, order: &OrderRecord) -> Result<Option<SocialPayment>, CoreError> {
        let payment = self.core.store().payment_of_checkout(order.checkout_id).await?;
        Ok(payment.map(|p| social_payment(&p)))
    }

    async fn core_product(&self, shop_id: &str, product: &ProductRecord) -> Result<SocialProduct, CoreError> {
        let store = self.core.store();
        let product_social = store.social_ids(IdKind::Product, vec![product.id.to_string()]).await?;
        let sku_social =
            store.social_ids(IdKind::Sku, product.skus.iter().map(|s| s.id.to_string()).collect()).await?;
        Ok(SocialProduct {
            product_id: product_social
                .first()
                .map_or_else(|| product.id.to_string(), |m| m.social_id.clone()),
            shop_id: shop_id.to_owned(),
            title: product.title.as_str().to_owned(),
            category: product.category.as_str().to_owned(),
            status: if product.listed {
                jembatan_store::legacy::PRODUCT_LIVE
            } else {
                jembatan_store::legacy::PRODUCT_DELISTED
            },
            skus: product
                .skus
                .iter()
                .map(|s| SocialSku {
                    sku_id: sku_social
                        .iter()
                        .find(|m| m.core_id == s.id.to_string())
                        .map_or_else(|| s.id.to_string(), |m| m.social_id.clone()),
                    seller_sku: s.code.as_str().to_owned(),
                    price: format_price(s.price.money()),
                    stock: i64::from(s.stock.units_on_hand() - s.stock.units_reserved()),
                })
                .collect(),
        })
    }

    async fn core_id<T: TypedId>(
        &self,
        kind: IdKind,
        social: &SocialId,
        merchant: MerchantId,
    ) -> Result<T, CoreError> {
        let mapped = self.core.store().core_ids(kind, vec![social.to_string()]).await?;
        match mapped.first() {
            Some(m) if m.merchant_id == merchant => parse_core_id(&m.core_id),
            _ => Err(not_found(kind.as_str(), social)),
        }
    }
}

/// What [`Gateway::move_shop`] did.
/// What a move copies, read from the legacy store and checked.
struct MovePlan {
    copies: Vec<SocialProductCopy>,
    /// Unpaid orders without a core twin: each gets one.
    unpaid: Vec<LegacyOrder>,
    /// Cancelled orders (their twins' units are settled by the flip).
    cancelled: Vec<String>,
    orders: usize,
}

/// A legacy order read as the core's checkout of it would be, refused if it cannot be.
struct TwinParts {
    method: jembatan_domain::PaymentMethod,
    address: ShippingAddress,
    buyer: SocialId,
    /// (social SKU id, units, unit price) per item, in item order.
    lines: Vec<(String, Quantity, Price)>,
}

fn twin_parts(order: &LegacyOrder) -> Result<TwinParts, CoreError> {
    let method = parse_payment_method(&order.payment_method)?;
    let address = ShippingAddress::parse(
        &order.recipient_name,
        &order.recipient_phone,
        &order.address_detail,
        &order.city,
        &order.province,
        &order.postal_code,
    )?;
    let buyer = SocialId::parse("buyer_id", &order.buyer_id)?;
    let mut lines = Vec::with_capacity(order.items.len());
    for item in &order.items {
        let price =
            parse_price(&item.unit_price).map_err(|p| p.into_error("unit_price", &item.unit_price))?;
        lines.push((item.sku_id.clone(), Quantity::new(item.quantity)?, Price::from_rupiah(price.rupiah())?));
    }
    if lines.is_empty() {
        return Err(DomainError::invalid("items", "an order without items cannot be paid").into());
    }
    Ok(TwinParts { method, address, buyer, lines })
}

#[derive(Debug, Clone, PartialEq, Eq)]
pub struct MoveReport {
    pub shop_id: String,
    pub merchant_id: MerchantId,
    pub products: usize,
    pub orders: usize,
    pub already_moved: bool,
}

/// A legacy product as the core would hold it, or why it cannot.
fn core_product_draft(
    merchant_id: MerchantId,
    p: &LegacyProduct,
) -> Result<jembatan_store::catalogue::NewProduct, String> {
    if let Some(problem) = &p.skus_problem {
        return Err(problem.clone());
    }
    let title = ProductTitle::parse(&p.title).map_err(|e| e.to_string())?;
    let category = Category::parse(&p.category).map_err(|e| e.to_string())?;
    let mut skus = Vec::with_capacity(p.skus.len());
    for s in &p.skus {
        let code =
            jembatan_domain::SkuCode::parse(&s.seller_sku).map_err(|e| format!("SKU {}: {e}", s.sku_id))?;
        let price = parse_price(&s.price)
            .map_err(|problem| format!("SKU {}: {}", s.sku_id, problem.explain(&s.price)))?;
        let price = Price::from_rupiah(price.rupiah()).map_err(|e| e.to_string())?;
        let stock =
            StockLevel::on_hand(s.stock).map_err(|e| format!("SKU {}: stock {}: {e}", s.sku_id, s.stock))?;
        if skus.iter().any(|k: &jembatan_domain::NewSku| k.code == code) {
            return Err(format!("SKU code `{}` appears twice", s.seller_sku));
        }
        skus.push(jembatan_domain::NewSku { code, price, stock });
    }
    Ok(jembatan_store::catalogue::NewProduct { merchant_id, title, category, skus })
}

/// Where an order was found. (Short-lived and one per request: not boxed.)
#[allow(clippy::large_enum_variant)]
enum Found {
    /// A shop the core owns: the core's order is the order.
    Core { shop_id: String, order: OrderRecord },
    /// A legacy shop's order, with its core twin once the buyer asked to pay.
    Legacy { order: LegacyOrder, twin: Option<OrderRecord> },
}

impl Found {
    fn shop_id(&self) -> &str {
        match self {
            Found::Core { shop_id, .. } => shop_id,
            Found::Legacy { order, .. } => &order.shop_id,
        }
    }
}

/// The legacy statuses an action moves from, and to.
fn legacy_step(
    action: OrderAction,
    has_twin: bool,
    order_id: &SocialId,
) -> Result<(Vec<LegacyStatus>, LegacyStatus), CoreError> {
    use LegacyStatus as L;
    Ok(match action {
        OrderAction::Ship => (vec![L::AwaitingShipment, L::AwaitingCollection], L::InTransit),
        OrderAction::Confirm => (vec![L::InTransit, L::Delivered], L::Completed),
        OrderAction::Cancel => (vec![L::Unpaid, L::AwaitingShipment, L::AwaitingCollection], L::Cancelled),
        OrderAction::Deliver => (vec![L::InTransit], L::Delivered),
        OrderAction::Pay if !has_twin => {
            return Err(DomainError::invalid(
                "order_id",
                format!("order {order_id} is paid through the provider"),
            )
            .into());
        }
        OrderAction::Pay => (vec![L::Unpaid], L::AwaitingShipment),
    })
}

/// When the core twin is ahead of the legacy row: the legacy statuses to move from, and to.
fn repair(legacy: i64, core: OrderStatus) -> Option<(Vec<LegacyStatus>, LegacyStatus)> {
    use LegacyStatus as L;
    let current = L::from_code(legacy).ok()?;
    let rank = |s: OrderStatus| match s {
        OrderStatus::AwaitingPayment => 0,
        OrderStatus::Paid => 1,
        OrderStatus::Shipped => 2,
        OrderStatus::Delivered => 3,
        OrderStatus::Completed => 4,
        OrderStatus::Cancelled => 5,
    };
    let here = current.to_core();
    if here == core || here == OrderStatus::Cancelled || here == OrderStatus::Completed {
        return None;
    }
    if core == OrderStatus::Cancelled || rank(core) > rank(here) {
        return Some((vec![current], L::from_core(core)));
    }
    None
}

fn legacy_product(p: &LegacyProduct) -> SocialProduct {
    SocialProduct {
        product_id: p.product_id.clone(),
        shop_id: p.shop_id.clone(),
        title: p.title.clone(),
        category: p.category.clone(),
        status: p.status,
        skus: p
            .skus
            .iter()
            .map(|s| SocialSku {
                sku_id: s.sku_id.clone(),
                seller_sku: s.seller_sku.clone(),
                price: parse_price(&s.price).map_or(s.price.clone(), format_price),
                stock: s.stock,
            })
            .collect(),
    }
}

fn social_payment(p: &PaymentRecord) -> SocialPayment {
    let i = &p.instructions;
    SocialPayment {
        payment_id: p.id.to_string(),
        method: payment_method_name(p.method).to_owned(),
        amount: format_price(p.amount),
        status: match p.status {
            PaymentStatus::Pending => "pending",
            PaymentStatus::Paid => "paid",
            PaymentStatus::Expired => "expired",
        }
        .to_owned(),
        bank_code: i.bank_code.clone(),
        va_number: i.va_number.clone(),
        qris_payload: i.qris_payload.clone(),
        ewallet_ref: i.ewallet_ref.clone(),
        redirect_url: i.redirect_url.clone(),
        expire_time: p.expires_at.map(|t| t.unix_ms() / 1000),
    }
}

pub(crate) fn parse_core_id<T: TypedId>(raw: &str) -> Result<T, CoreError> {
    T::parse(raw).map_err(|_| {
        CoreError::Store(StoreError::Conflict(format!("the id map holds `{raw}`, which is not a core id")))
    })
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn the_core_ahead_repairs_the_legacy_row_and_never_moves_it_back() {
        use LegacyStatus as L;
        assert_eq!(repair(100, OrderStatus::Paid), Some((vec![L::Unpaid], L::AwaitingShipment)));
        assert_eq!(repair(100, OrderStatus::Cancelled), Some((vec![L::Unpaid], L::Cancelled)));
        assert_eq!(repair(121, OrderStatus::Completed), Some((vec![L::InTransit], L::Completed)));
        assert_eq!(repair(112, OrderStatus::Paid), None, "awaiting collection is paid in the core");
        assert_eq!(repair(121, OrderStatus::Paid), None, "the legacy row is ahead: nothing to repair");
        assert_eq!(repair(140, OrderStatus::Paid), None);
        assert_eq!(repair(130, OrderStatus::Completed), None);
    }
}
