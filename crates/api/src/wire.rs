//! JSON wire types of `/v1`: the only place that knows JSON shapes. Requests are parsed into
//! domain values here; responses are built from store records.

use jembatan_domain::payout::{
    AccountHolder, AccountNumber, BankAccount, BankCode, PayoutOutcome, payout_amount,
};
use jembatan_domain::reconcile::Outcome;
use jembatan_domain::{
    BuyerId, Category, Channel, CheckoutLine, CheckoutRequest, DomainError, Merchant, MerchantId,
    MerchantName, Money, NewSku, Nib, Origin, PaymentMethod, Price, ProductTitle, Province, Quantity,
    ShippingAddress, SkuCode, SkuId, StockLevel, Timestamp, TypedId,
};
use jembatan_domain::{DeliveryStatus, EventFilter, WebhookOwner};
use jembatan_store::catalogue::{NewProduct, ProductRecord, SkuRecord};
use jembatan_store::orders::{CheckoutRecord, OrderRecord};
use jembatan_store::payments::{PaymentRecord, RefundRecord};
use jembatan_store::payouts::{
    ConfirmationRecord, LineOutcome, MerchantBalance, NewPayout, PayoutBatchRecord, PayoutRecord,
    ResultLineRecord,
};
use jembatan_store::reconciliation::{ReconciliationRecord, RunSummary};
use jembatan_store::webhooks::{DeliveryRecord, SubscriptionRecord};
use serde::{Deserialize, Serialize};
use time::OffsetDateTime;
use time::format_description::well_known::Rfc3339;
use utoipa::ToSchema;

/// An amount of money: integer rupiah.
#[derive(Debug, Clone, Serialize, Deserialize, ToSchema)]
#[serde(deny_unknown_fields)]
pub struct MoneyWire {
    #[schema(example = 149000)]
    pub amount: i64,
    #[schema(example = "IDR")]
    pub currency: String,
}

impl From<Money> for MoneyWire {
    fn from(money: Money) -> Self {
        MoneyWire { amount: money.rupiah(), currency: Money::CURRENCY.to_owned() }
    }
}

impl MoneyWire {
    fn to_price(&self, field: &'static str) -> Result<Price, DomainError> {
        if self.currency != Money::CURRENCY {
            return Err(DomainError::invalid(field, "currency must be IDR"));
        }
        Price::from_rupiah(self.amount).map_err(|e| match e {
            DomainError::InvalidField { reason, .. } => DomainError::invalid(field, reason),
            other => other,
        })
    }
}

pub fn rfc3339(at: Timestamp) -> String {
    let nanos = i128::from(at.unix_ms()) * 1_000_000;
    OffsetDateTime::from_unix_timestamp_nanos(nanos)
        .ok()
        .and_then(|t| t.format(&Rfc3339).ok())
        .unwrap_or_default()
}

pub fn parse_id<T: TypedId>(raw: &str) -> Result<T, DomainError> {
    T::parse(raw)
}

#[derive(Debug, Deserialize, ToSchema)]
#[serde(deny_unknown_fields)]
pub struct CreateMerchantRequest {
    #[schema(example = "Toko Batik Sari")]
    pub name: String,
    /// `local` or `cross_border`.
    #[schema(example = "local")]
    pub origin: String,
    /// One of the 38 provinces, or `overseas` for cross-border sellers.
    #[schema(example = "Jawa Barat")]
    pub province: String,
    /// 13-digit Nomor Induk Berusaha; required for local merchants.
    #[schema(example = "9120001234567")]
    pub nib: Option<String>,
}

impl CreateMerchantRequest {
    pub fn parse(&self) -> Result<jembatan_core::NewMerchant, DomainError> {
        Ok(jembatan_core::NewMerchant {
            name: MerchantName::parse(&self.name)?,
            origin: Origin::parse(&self.origin)?,
            province: Province::parse(&self.province)?,
            nib: self.nib.as_deref().map(Nib::parse).transpose()?,
        })
    }
}

#[derive(Debug, Serialize, ToSchema)]
pub struct MerchantResponse {
    pub id: String,
    pub name: String,
    pub origin: String,
    pub province: String,
    pub nib: Option<String>,
    pub created_at: String,
}

impl From<&Merchant> for MerchantResponse {
    fn from(m: &Merchant) -> Self {
        MerchantResponse {
            id: m.id.to_string(),
            name: m.name.as_str().to_owned(),
            origin: m.origin.as_str().to_owned(),
            province: m.province.as_str().to_owned(),
            nib: m.nib.as_ref().map(|n| n.as_str().to_owned()),
            created_at: rfc3339(m.created_at),
        }
    }
}

#[derive(Debug, Deserialize, ToSchema)]
#[serde(deny_unknown_fields)]
pub struct NewSkuRequest {
    #[schema(example = "BATIK-M-BIRU")]
    pub code: String,
    pub price: MoneyWire,
    /// Units on hand.
    #[schema(example = 25)]
    pub stock: i64,
}

#[derive(Debug, Deserialize, ToSchema)]
#[serde(deny_unknown_fields)]
pub struct CreateProductRequest {
    #[schema(example = "Kemeja Batik Pria Lengan Panjang")]
    pub title: String,
    #[schema(example = "fashion")]
    pub category: String,
    pub skus: Vec<NewSkuRequest>,
}

impl CreateProductRequest {
    pub fn parse(&self, merchant_id: MerchantId) -> Result<NewProduct, DomainError> {
        use jembatan_domain::limits::PRODUCT_SKUS_MAX;
        if self.skus.is_empty() || self.skus.len() > PRODUCT_SKUS_MAX {
            return Err(DomainError::invalid("skus", format!("must hold 1 to {PRODUCT_SKUS_MAX} SKUs")));
        }
        let skus = self
            .skus
            .iter()
            .map(|s| {
                Ok(NewSku {
                    code: SkuCode::parse(&s.code).map_err(|e| rename(e, "skus.code"))?,
                    price: s.price.to_price("skus.price")?,
                    stock: StockLevel::on_hand(s.stock).map_err(|e| rename(e, "skus.stock"))?,
                })
            })
            .collect::<Result<Vec<_>, DomainError>>()?;
        Ok(NewProduct {
            merchant_id,
            title: ProductTitle::parse(&self.title)?,
            category: Category::parse(&self.category)?,
            skus,
        })
    }
}

fn rename(error: DomainError, field: &'static str) -> DomainError {
    match error {
        DomainError::InvalidField { reason, .. } => DomainError::invalid(field, reason),
        other => other,
    }
}

#[derive(Debug, Serialize, ToSchema)]
pub struct SkuResponse {
    pub id: String,
    pub product_id: String,
    pub merchant_id: String,
    pub code: String,
    pub price: MoneyWire,
    pub stock_on_hand: u32,
    pub stock_reserved: u32,
    pub stock_available: u32,
}

impl From<&SkuRecord> for SkuResponse {
    fn from(s: &SkuRecord) -> Self {
        SkuResponse {
            id: s.id.to_string(),
            product_id: s.product_id.to_string(),
            merchant_id: s.merchant_id.to_string(),
            code: s.code.as_str().to_owned(),
            price: s.price.money().into(),
            stock_on_hand: s.stock.units_on_hand(),
            stock_reserved: s.stock.units_reserved(),
            stock_available: s.stock.units_available(),
        }
    }
}

#[derive(Debug, Serialize, ToSchema)]
pub struct ProductResponse {
    pub id: String,
    pub merchant_id: String,
    pub title: String,
    pub category: String,
    pub created_at: String,
    pub skus: Vec<SkuResponse>,
}

impl From<&ProductRecord> for ProductResponse {
    fn from(p: &ProductRecord) -> Self {
        ProductResponse {
            id: p.id.to_string(),
            merchant_id: p.merchant_id.to_string(),
            title: p.title.as_str().to_owned(),
            category: p.category.as_str().to_owned(),
            created_at: rfc3339(p.created_at),
            skus: p.skus.iter().map(SkuResponse::from).collect(),
        }
    }
}

#[derive(Debug, Deserialize, ToSchema)]
#[serde(deny_unknown_fields)]
pub struct SetStockRequest {
    /// New count of units on hand; may not fall below the units reserved by open orders.
    #[schema(example = 40)]
    pub stock_on_hand: i64,
}

#[derive(Debug, Deserialize, ToSchema)]
#[serde(deny_unknown_fields)]
pub struct CheckoutItem {
    pub sku_id: String,
    #[schema(example = 2)]
    pub quantity: i64,
}

#[derive(Debug, Clone, Serialize, Deserialize, ToSchema)]
#[serde(deny_unknown_fields)]
pub struct AddressWire {
    #[schema(example = "Siti Rahayu")]
    pub recipient_name: String,
    /// `08…`, `628…` or `+628…`; answered in E.164.
    #[schema(example = "081234567890")]
    pub phone: String,
    #[schema(example = "Jl. Braga No. 12")]
    pub street: String,
    #[schema(example = "Bandung")]
    pub city: String,
    #[schema(example = "Jawa Barat")]
    pub province: String,
    #[schema(example = "40111")]
    pub postal_code: String,
}

impl From<&ShippingAddress> for AddressWire {
    fn from(a: &ShippingAddress) -> Self {
        AddressWire {
            recipient_name: a.recipient_name.clone(),
            phone: a.phone.as_str().to_owned(),
            street: a.street.clone(),
            city: a.city.clone(),
            province: a.province.as_str().to_owned(),
            postal_code: a.postal_code.clone(),
        }
    }
}

#[derive(Debug, Deserialize, ToSchema)]
#[serde(deny_unknown_fields)]
pub struct CreateCheckoutRequest {
    #[schema(example = "buyer-8f2c")]
    pub buyer_id: String,
    pub items: Vec<CheckoutItem>,
    pub shipping_address: AddressWire,
    /// `virtual_account`, `qris`, `ewallet` or `cod`.
    #[schema(example = "qris")]
    pub payment_method: String,
}

impl CreateCheckoutRequest {
    pub fn parse(&self, channel: Channel) -> Result<CheckoutRequest, DomainError> {
        use jembatan_domain::limits::CHECKOUT_LINES_MAX;
        if self.items.len() > CHECKOUT_LINES_MAX {
            return Err(DomainError::invalid(
                "items",
                format!("must hold at most {CHECKOUT_LINES_MAX} items"),
            ));
        }
        let lines = self
            .items
            .iter()
            .map(|i| {
                Ok(CheckoutLine {
                    sku_id: SkuId::parse(&i.sku_id).map_err(|e| rename(e, "items.sku_id"))?,
                    quantity: Quantity::new(i.quantity).map_err(|e| rename(e, "items.quantity"))?,
                })
            })
            .collect::<Result<Vec<_>, DomainError>>()?;
        let a = &self.shipping_address;
        let address = ShippingAddress::parse(
            &a.recipient_name,
            &a.phone,
            &a.street,
            &a.city,
            &a.province,
            &a.postal_code,
        )?;
        CheckoutRequest::new(
            channel,
            BuyerId::parse(&self.buyer_id)?,
            lines,
            address,
            PaymentMethod::parse(&self.payment_method)?,
        )
    }
}

#[derive(Debug, Serialize, ToSchema)]
pub struct OrderLineResponse {
    pub line_no: u32,
    pub sku_id: String,
    pub quantity: u32,
    pub unit_price: MoneyWire,
    pub line_total: MoneyWire,
}

#[derive(Debug, Serialize, ToSchema)]
pub struct OrderResponse {
    pub id: String,
    pub checkout_id: String,
    pub merchant_id: String,
    pub channel: String,
    pub buyer_id: String,
    /// `awaiting_payment`, `paid`, `shipped`, `delivered`, `completed` or `cancelled`.
    pub status: String,
    pub payment_method: String,
    pub total: MoneyWire,
    /// The platform fee fixed at the sale; the merchant receives `total − fee` on release.
    pub fee: MoneyWire,
    /// Refunded to the buyer so far.
    pub refunded: MoneyWire,
    /// Held in escrow now (paid, not yet released to the merchant, not refunded).
    pub held_in_escrow: MoneyWire,
    pub shipping_address: AddressWire,
    pub lines: Vec<OrderLineResponse>,
    pub created_at: String,
    pub updated_at: String,
}

impl OrderResponse {
    /// The order as `masked` callers (the regulator) see it: personal data hidden.
    pub fn new(o: &OrderRecord, masked: bool) -> OrderResponse {
        let mut address = AddressWire::from(&o.shipping_address);
        let mut buyer_id = o.buyer_id.as_str().to_owned();
        if masked {
            address.recipient_name = mask_keep(&address.recipient_name, 1, 0);
            address.phone = mask_keep(&address.phone, 5, 3);
            address.street = "***".to_owned();
            address.postal_code = mask_keep(&address.postal_code, 2, 0);
            buyer_id = mask_keep(&buyer_id, 2, 0);
        }
        OrderResponse {
            id: o.id.to_string(),
            checkout_id: o.checkout_id.to_string(),
            merchant_id: o.merchant_id.to_string(),
            channel: o.channel.as_str().to_owned(),
            buyer_id,
            status: o.status.as_str().to_owned(),
            payment_method: o.payment_method.as_str().to_owned(),
            total: o.total.into(),
            fee: o.fee.into(),
            refunded: o.refunded.into(),
            held_in_escrow: o.held.into(),
            shipping_address: address,
            lines: o
                .lines
                .iter()
                .map(|l| OrderLineResponse {
                    line_no: l.line_no,
                    sku_id: l.sku_id.to_string(),
                    quantity: l.quantity.units(),
                    unit_price: l.unit_price.money().into(),
                    line_total: l.line_total.into(),
                })
                .collect(),
            created_at: rfc3339(o.created_at),
            updated_at: rfc3339(o.updated_at),
        }
    }
}

/// Keeps the first `head` and last `tail` characters and stars the rest.
pub fn mask_keep(text: &str, head: usize, tail: usize) -> String {
    let chars: Vec<char> = text.chars().collect();
    if chars.len() <= head + tail {
        return "*".repeat(chars.len().max(1));
    }
    let middle = chars.len() - head - tail;
    let mut out: String = chars[..head].iter().collect();
    out.push_str(&"*".repeat(middle));
    out.extend(&chars[chars.len() - tail..]);
    out
}

#[derive(Debug, Serialize, ToSchema)]
pub struct CheckoutResponse {
    pub id: String,
    pub channel: String,
    pub buyer_id: String,
    pub payment_method: String,
    pub total: MoneyWire,
    pub created_at: String,
    pub orders: Vec<OrderResponse>,
    /// What the buyer pays, and how.
    pub payment: Option<PaymentResponse>,
}

/// A checkout's payment and what the buyer needs to pay it.
#[derive(Debug, Serialize, ToSchema)]
pub struct PaymentResponse {
    pub id: String,
    pub checkout_id: String,
    /// `virtual_account`, `qris`, `ewallet` or `cod`.
    pub method: String,
    pub amount: MoneyWire,
    /// `pending`, `paid` or `expired`.
    pub status: String,
    pub provider: String,
    /// The provider's reference (callbacks and settlement reports name it).
    pub provider_ref: String,
    /// Virtual account: the bank's code (e.g. `014` BCA) and the number to transfer to.
    #[serde(skip_serializing_if = "Option::is_none")]
    pub bank_code: Option<String>,
    #[serde(skip_serializing_if = "Option::is_none")]
    pub va_number: Option<String>,
    /// QRIS: the EMVCo payload to render as a QR code.
    #[serde(skip_serializing_if = "Option::is_none")]
    pub qris_payload: Option<String>,
    /// E-wallet: the reference and where to send the buyer.
    #[serde(skip_serializing_if = "Option::is_none")]
    pub ewallet_ref: Option<String>,
    #[serde(skip_serializing_if = "Option::is_none")]
    pub redirect_url: Option<String>,
    /// When an unpaid checkout expires (absent for cash on delivery).
    pub expires_at: Option<String>,
    pub paid_at: Option<String>,
    pub created_at: String,
}

impl From<&PaymentRecord> for PaymentResponse {
    fn from(p: &PaymentRecord) -> Self {
        let i = &p.instructions;
        PaymentResponse {
            id: p.id.to_string(),
            checkout_id: p.checkout_id.to_string(),
            method: p.method.as_str().to_owned(),
            amount: p.amount.into(),
            status: p.status.as_str().to_owned(),
            provider: p.provider.clone(),
            provider_ref: i.provider_ref.clone(),
            bank_code: i.bank_code.clone(),
            va_number: i.va_number.clone(),
            qris_payload: i.qris_payload.clone(),
            ewallet_ref: i.ewallet_ref.clone(),
            redirect_url: i.redirect_url.clone(),
            expires_at: p.expires_at.map(rfc3339),
            paid_at: p.paid_at.map(rfc3339),
            created_at: rfc3339(p.created_at),
        }
    }
}

/// What a provider's callback did.
#[derive(Debug, Serialize, ToSchema)]
pub struct CallbackResponse {
    /// `applied` or `already_applied` (a repeat: nothing changed).
    pub outcome: String,
    pub detail: String,
    pub payment: Option<PaymentResponse>,
}

#[derive(Debug, Deserialize, ToSchema)]
#[serde(deny_unknown_fields)]
pub struct CreateRefundRequest {
    /// Rupiah to give back; at most what was paid and not yet refunded.
    pub amount: MoneyWire,
    /// Why (shown to the buyer and kept in the audit log), 1 to 500 characters.
    pub reason: String,
}

impl CreateRefundRequest {
    pub fn parse(&self) -> Result<(Money, String), DomainError> {
        if self.amount.currency != Money::CURRENCY {
            return Err(DomainError::invalid("amount", "currency must be IDR"));
        }
        if self.amount.amount <= 0 {
            return Err(DomainError::invalid("amount", "must be at least Rp1"));
        }
        let amount = Money::from_rupiah(self.amount.amount)
            .map_err(|_| DomainError::invalid("amount", "is too large"))?;
        let reason = self.reason.trim();
        if reason.is_empty() || reason.chars().count() > 500 {
            return Err(DomainError::invalid("reason", "must be 1 to 500 characters"));
        }
        Ok((amount, reason.to_owned()))
    }
}

#[derive(Debug, Serialize, ToSchema)]
pub struct RefundResponse {
    pub id: String,
    pub order_id: String,
    pub merchant_id: String,
    pub amount: MoneyWire,
    /// The part of the platform fee given back (refunds after release).
    pub fee_reversed: MoneyWire,
    /// `before_release` (paid back from escrow) or `after_release` (from the merchant's balance).
    pub stage: String,
    pub reason: String,
    pub created_at: String,
}

impl From<&RefundRecord> for RefundResponse {
    fn from(r: &RefundRecord) -> Self {
        RefundResponse {
            id: r.id.to_string(),
            order_id: r.order_id.to_string(),
            merchant_id: r.merchant_id.to_string(),
            amount: r.amount.into(),
            fee_reversed: r.fee_reversed.into(),
            stage: r.stage.to_owned(),
            reason: r.reason.clone(),
            created_at: rfc3339(r.created_at),
        }
    }
}

#[derive(Debug, Serialize, ToSchema)]
pub struct RefundList {
    pub refunds: Vec<RefundResponse>,
}

/// One ledger transfer as an account's history shows it.
#[derive(Debug, Serialize, ToSchema)]
pub struct TransferResponse {
    pub id: String,
    pub debit_account_id: String,
    pub credit_account_id: String,
    pub amount: MoneyWire,
    /// What reached posted balances (0 for pending and void transfers).
    pub amount_posted: MoneyWire,
    /// `single`, `pending`, `post` or `void`.
    pub kind: String,
    pub pending_id: Option<String>,
    pub code: u16,
    pub timestamp: String,
}

impl From<&jembatan_domain::ledger::Transfer> for TransferResponse {
    fn from(t: &jembatan_domain::ledger::Transfer) -> Self {
        use jembatan_domain::ledger::TransferKind;
        let (kind, pending_id) = match t.new.kind {
            TransferKind::Single => ("single", None),
            TransferKind::Pending { .. } => ("pending", None),
            TransferKind::Post { pending, .. } => ("post", Some(pending.to_string())),
            TransferKind::Void { pending } => ("void", Some(pending.to_string())),
        };
        TransferResponse {
            id: t.new.id.to_string(),
            debit_account_id: t.new.debit.to_string(),
            credit_account_id: t.new.credit.to_string(),
            amount: t.new.amount.into(),
            amount_posted: t.amount_posted.into(),
            kind: kind.to_owned(),
            pending_id,
            code: t.new.code,
            timestamp: rfc3339(t.timestamp),
        }
    }
}

/// A ledger account: balances derived from its transfers, and a page of its history.
#[derive(Debug, Serialize, ToSchema)]
pub struct LedgerAccountResponse {
    pub id: String,
    /// `provider_clearing`, `escrow`, `merchant_balance`, `platform_fee_revenue`, `payout_clearing` or `refunds`.
    pub kind: String,
    pub merchant_id: Option<String>,
    pub debits_pending: i64,
    pub debits_posted: i64,
    pub credits_pending: i64,
    pub credits_posted: i64,
    /// Posted credits minus posted debits, in rupiah.
    pub credit_balance: i64,
    pub transfers: Vec<TransferResponse>,
    pub next_cursor: Option<String>,
}

#[derive(Debug, Deserialize, ToSchema, Default)]
#[serde(deny_unknown_fields)]
pub struct SimulatePaymentRequest {
    /// Claim this amount was paid instead of the payment's own (to see a wrong amount refused).
    pub amount: Option<i64>,
}

impl From<&CheckoutRecord> for CheckoutResponse {
    fn from(c: &CheckoutRecord) -> Self {
        CheckoutResponse {
            id: c.id.to_string(),
            channel: c.channel.as_str().to_owned(),
            buyer_id: c.buyer_id.as_str().to_owned(),
            payment_method: c.payment_method.as_str().to_owned(),
            total: c.total.into(),
            created_at: rfc3339(c.created_at),
            orders: c.orders.iter().map(|o| OrderResponse::new(o, false)).collect(),
            payment: c.payment.as_ref().map(PaymentResponse::from),
        }
    }
}

#[derive(Debug, Serialize, ToSchema)]
pub struct OrderPage {
    pub orders: Vec<OrderResponse>,
    /// Pass as `cursor` to get the next page; absent on the last page.
    pub next_cursor: Option<String>,
}

#[derive(Debug, Deserialize, ToSchema)]
#[serde(deny_unknown_fields)]
pub struct CreateSubscriptionRequest {
    /// Where to POST the events: `https://…` (or `http://…`); loopback and private addresses
    /// are refused unless the operator allows them.
    #[schema(example = "https://seller-erp.example.com/hooks/jembatan")]
    pub url: String,
    /// Event types to receive, e.g. `["order.paid", "order.cancelled"]`; `["*"]` (the default)
    /// for every order and payment event.
    pub event_types: Option<Vec<String>>,
    /// Operator only: the merchant whose events the subscription receives.
    pub merchant_id: Option<String>,
    /// Operator only: the channel (`social` or `marketplace`) whose events it receives.
    pub channel: Option<String>,
}

impl CreateSubscriptionRequest {
    pub fn parse(&self) -> Result<jembatan_core::webhooks::NewSubscription, DomainError> {
        let owner = match (&self.merchant_id, &self.channel) {
            (None, None) => None,
            (Some(merchant), None) => Some(WebhookOwner::Merchant(MerchantId::parse(merchant)?)),
            (None, Some(channel)) => Some(WebhookOwner::Channel(Channel::parse(channel)?)),
            (Some(_), Some(_)) => {
                return Err(DomainError::invalid("channel", "name a merchant_id or a channel, not both"));
            }
        };
        let events = match &self.event_types {
            None => EventFilter::all(),
            Some(types) => EventFilter::from_list(types)?,
        };
        Ok(jembatan_core::webhooks::NewSubscription { owner, url: self.url.clone(), events })
    }
}

#[derive(Debug, Serialize, ToSchema)]
pub struct SubscriptionResponse {
    pub id: String,
    /// `merchant` or `channel`.
    pub owner_role: String,
    /// The merchant id or the channel name.
    pub owner_subject: String,
    pub url: String,
    pub event_types: Vec<String>,
    pub active: bool,
    pub created_at: String,
    /// The signing secret (`whsec_…`), shown only in the answer that created the subscription.
    /// Verify each delivery's `webhook-signature` with it (Standard Webhooks).
    #[serde(skip_serializing_if = "Option::is_none")]
    pub secret: Option<String>,
}

impl SubscriptionResponse {
    pub fn new(s: &SubscriptionRecord, with_secret: bool) -> SubscriptionResponse {
        SubscriptionResponse {
            id: s.id.to_string(),
            owner_role: s.owner.role().to_owned(),
            owner_subject: s.owner.subject(),
            url: s.url.clone(),
            event_types: s.events.types(),
            active: s.active,
            created_at: rfc3339(s.created_at),
            secret: with_secret.then(|| s.secret.expose().to_owned()),
        }
    }
}

#[derive(Debug, Serialize, ToSchema)]
pub struct SubscriptionPage {
    pub subscriptions: Vec<SubscriptionResponse>,
    /// Pass as `cursor` to get the next page; absent on the last page.
    pub next_cursor: Option<String>,
}

#[derive(Debug, Serialize, ToSchema)]
pub struct AttemptResponse {
    /// 1 for the first attempt of the delivery; replays continue the count.
    pub attempt: u32,
    pub started_at: String,
    pub duration_ms: i64,
    /// The receiver's HTTP status; absent when no answer came.
    pub status_code: Option<u16>,
    /// Why the attempt failed, if it did.
    pub error: Option<String>,
}

#[derive(Debug, Serialize, ToSchema)]
pub struct DeliveryResponse {
    /// Also the `webhook-id` header of every attempt: receivers deduplicate on it.
    pub id: String,
    pub subscription_id: String,
    pub event_id: String,
    pub event_type: String,
    /// The event's data, as sent in the body's `data`.
    #[schema(value_type = Object)]
    pub data: serde_json::Value,
    /// `pending`, `delivered` or `failed` (no retry left; replay sends it again).
    pub status: String,
    pub attempts: u32,
    /// When a pending delivery is sent next.
    pub next_attempt_at: Option<String>,
    pub last_status_code: Option<u16>,
    pub last_error: Option<String>,
    pub created_at: String,
    pub updated_at: String,
    /// The latest attempts, newest first (at most 20).
    pub recent_attempts: Vec<AttemptResponse>,
}

impl From<&DeliveryRecord> for DeliveryResponse {
    fn from(d: &DeliveryRecord) -> Self {
        DeliveryResponse {
            id: d.id.to_string(),
            subscription_id: d.subscription_id.to_string(),
            event_id: d.event_id.to_string(),
            event_type: d.event_type.clone(),
            data: serde_json::from_str(&d.payload).unwrap_or(serde_json::Value::Null),
            status: d.status.as_str().to_owned(),
            attempts: d.attempts,
            next_attempt_at: (d.status == DeliveryStatus::Pending).then(|| rfc3339(d.next_attempt_at)),
            last_status_code: d.last_status_code,
            last_error: d.last_error.clone(),
            created_at: rfc3339(d.created_at),
            updated_at: rfc3339(d.updated_at),
            recent_attempts: d
                .recent_attempts
                .iter()
                .map(|a| AttemptResponse {
                    attempt: a.attempt_no,
                    started_at: rfc3339(a.started_at),
                    duration_ms: a.duration_ms,
                    status_code: a.status_code,
                    error: a.error.clone(),
                })
                .collect(),
        }
    }
}

#[derive(Debug, Serialize, ToSchema)]
pub struct DeliveryPage {
    pub deliveries: Vec<DeliveryResponse>,
    /// Pass as `cursor` to get the next page; absent on the last page.
    pub next_cursor: Option<String>,
}

#[derive(Debug, Serialize, ToSchema)]
pub struct Health {
    pub status: String,
    pub database: String,
}

// ----- payouts -----

#[derive(Debug, Deserialize, ToSchema)]
#[serde(deny_unknown_fields)]
pub struct CreatePayoutRequest {
    pub amount: MoneyWire,
    /// The bank's 3-digit code: 014 BCA, 008 Mandiri, 009 BNI, 002 BRI…
    #[schema(example = "014")]
    pub bank_code: String,
    /// 6 to 20 digits.
    #[schema(example = "1234567890")]
    pub account_number: String,
    #[schema(example = "Siti Rahayu")]
    pub account_holder: String,
}

impl CreatePayoutRequest {
    pub fn parse(&self, merchant_id: MerchantId) -> Result<NewPayout, DomainError> {
        if self.amount.currency != Money::CURRENCY {
            return Err(DomainError::invalid("amount", "currency must be IDR"));
        }
        Ok(NewPayout {
            merchant_id,
            amount: payout_amount(self.amount.amount)?,
            account: BankAccount {
                bank_code: BankCode::parse(&self.bank_code)?,
                account_number: AccountNumber::parse(&self.account_number)?,
                holder: AccountHolder::parse(&self.account_holder)?,
            },
        })
    }
}

#[derive(Debug, Serialize, ToSchema)]
pub struct PayoutResponse {
    pub id: String,
    pub merchant_id: String,
    pub amount: MoneyWire,
    pub bank_code: String,
    pub account_number: String,
    pub account_holder: String,
    /// `requested`, `exported`, `paid` or `failed`.
    pub status: String,
    pub batch_id: Option<String>,
    /// The bank's reason, for a failed payout.
    pub failure_reason: Option<String>,
    pub created_at: String,
    pub updated_at: String,
    pub confirmed_at: Option<String>,
}

impl PayoutResponse {
    /// The payout as `masked` callers (the regulator) see it: bank details hidden.
    pub fn new(p: &PayoutRecord, masked: bool) -> PayoutResponse {
        let mut account_number = p.account.account_number.as_str().to_owned();
        let mut account_holder = p.account.holder.as_str().to_owned();
        if masked {
            account_number = mask_keep(&account_number, 0, 4);
            account_holder = mask_keep(&account_holder, 1, 0);
        }
        PayoutResponse {
            id: p.id.to_string(),
            merchant_id: p.merchant_id.to_string(),
            amount: p.amount.into(),
            bank_code: p.account.bank_code.as_str().to_owned(),
            account_number,
            account_holder,
            status: p.status.as_str().to_owned(),
            batch_id: p.batch_id.map(|b| b.to_string()),
            failure_reason: p.failure_reason.as_ref().map(|r| r.as_str().to_owned()),
            created_at: rfc3339(p.created_at),
            updated_at: rfc3339(p.updated_at),
            confirmed_at: p.confirmed_at.map(rfc3339),
        }
    }
}

#[derive(Debug, Serialize, ToSchema)]
pub struct PayoutPage {
    pub payouts: Vec<PayoutResponse>,
    /// Pass as `cursor` to get the next page; absent on the last page.
    pub next_cursor: Option<String>,
}

/// A merchant's money, computed from its ledger account.
#[derive(Debug, Serialize, ToSchema)]
pub struct BalanceResponse {
    pub merchant_id: String,
    /// Posted credits − posted debits − pending debits: what the merchant may withdraw now.
    pub available: MoneyWire,
    /// Held for payouts the bank has not confirmed yet.
    pub pending_payouts: MoneyWire,
    /// Everything confirmed paid out.
    pub paid_out_total: MoneyWire,
}

impl BalanceResponse {
    pub fn new(merchant_id: MerchantId, b: &MerchantBalance) -> BalanceResponse {
        BalanceResponse {
            merchant_id: merchant_id.to_string(),
            available: b.available.into(),
            pending_payouts: b.pending_payouts.into(),
            paid_out_total: b.paid_out_total.into(),
        }
    }
}

#[derive(Debug, Serialize, ToSchema)]
pub struct PayoutBatchResponse {
    pub id: String,
    pub created_at: String,
    pub payouts_count: usize,
    pub total: MoneyWire,
    pub payout_ids: Vec<String>,
    /// The CSV file for the bank (`text/csv`), fetchable again at any time.
    #[schema(example = "/v1/ops/payout-batches/pbt_01jd9x…/file")]
    pub file_url: String,
}

impl From<&PayoutBatchRecord> for PayoutBatchResponse {
    fn from(b: &PayoutBatchRecord) -> Self {
        PayoutBatchResponse {
            id: b.id.to_string(),
            created_at: rfc3339(b.created_at),
            payouts_count: b.payouts.len(),
            total: b.total.into(),
            payout_ids: b.payouts.iter().map(|p| p.id.to_string()).collect(),
            file_url: crate::routes::batch_file_url(b.id),
        }
    }
}

#[derive(Debug, Deserialize, ToSchema)]
#[serde(deny_unknown_fields)]
pub struct ConfirmPayoutRequest {
    /// `paid` or `failed`.
    #[schema(example = "paid")]
    pub status: String,
    /// The bank's reason; required when `failed`.
    pub reason: Option<String>,
}

impl ConfirmPayoutRequest {
    pub fn parse(&self) -> Result<PayoutOutcome, DomainError> {
        PayoutOutcome::parse(&self.status, self.reason.as_deref())
    }
}

#[derive(Debug, Serialize, ToSchema)]
pub struct ConfirmationResponse {
    /// False when the same answer had already been applied: nothing changed.
    pub changed: bool,
    pub payout: PayoutResponse,
}

impl From<&ConfirmationRecord> for ConfirmationResponse {
    fn from(c: &ConfirmationRecord) -> Self {
        ConfirmationResponse { changed: c.changed, payout: PayoutResponse::new(&c.payout, false) }
    }
}

#[derive(Debug, Serialize, ToSchema)]
pub struct PayoutResultLineResponse {
    /// The line of the file.
    pub line: usize,
    pub payout_id: String,
    /// `applied`, `unchanged` (the same answer was applied before), `conflict` or `not_found`.
    pub outcome: String,
    /// The payout's status after the line.
    pub status: Option<String>,
    pub detail: Option<String>,
}

#[derive(Debug, Serialize, ToSchema)]
pub struct PayoutResultsResponse {
    pub applied: usize,
    pub unchanged: usize,
    /// Lines that changed nothing because they contradict the payout or name none.
    pub refused: usize,
    pub lines: Vec<PayoutResultLineResponse>,
}

impl PayoutResultsResponse {
    pub fn new(lines: &[ResultLineRecord]) -> PayoutResultsResponse {
        let lines: Vec<PayoutResultLineResponse> = lines
            .iter()
            .map(|l| {
                let (outcome, status, detail) = match &l.outcome {
                    LineOutcome::Applied(p) => ("applied", Some(p.status.as_str().to_owned()), None),
                    LineOutcome::Unchanged(p) => ("unchanged", Some(p.status.as_str().to_owned()), None),
                    LineOutcome::Conflict(reason) => ("conflict", None, Some(reason.clone())),
                    LineOutcome::NotFound => ("not_found", None, Some("no such payout".to_owned())),
                };
                PayoutResultLineResponse {
                    line: l.line_no,
                    payout_id: l.payout_id.to_string(),
                    outcome: outcome.to_owned(),
                    status,
                    detail,
                }
            })
            .collect();
        let count = |name: &str| lines.iter().filter(|l| l.outcome == name).count();
        PayoutResultsResponse {
            applied: count("applied"),
            unchanged: count("unchanged"),
            refused: count("conflict") + count("not_found"),
            lines,
        }
    }
}

// ----- reconciliation -----

#[derive(Debug, Serialize, ToSchema)]
pub struct ReconciliationSummary {
    pub matched: usize,
    pub missing_in_ledger: usize,
    pub missing_in_report: usize,
    pub amount_mismatch: usize,
    pub duplicate_in_report: usize,
}

impl ReconciliationSummary {
    fn new(count: impl Fn(Outcome) -> usize) -> ReconciliationSummary {
        ReconciliationSummary {
            matched: count(Outcome::Matched),
            missing_in_ledger: count(Outcome::MissingInLedger),
            missing_in_report: count(Outcome::MissingInReport),
            amount_mismatch: count(Outcome::AmountMismatch),
            duplicate_in_report: count(Outcome::DuplicateInReport),
        }
    }
}

/// A stored run without its items.
#[derive(Debug, Serialize, ToSchema)]
pub struct ReconciliationRunResponse {
    pub id: String,
    pub created_at: String,
    pub period_from: String,
    pub period_to: String,
    pub lines: usize,
    pub clean: bool,
    pub summary: ReconciliationSummary,
}

impl From<&RunSummary> for ReconciliationRunResponse {
    fn from(r: &RunSummary) -> Self {
        ReconciliationRunResponse {
            id: r.id.to_string(),
            created_at: rfc3339(r.created_at),
            period_from: rfc3339(r.period.0),
            period_to: rfc3339(r.period.1),
            lines: r.lines_count,
            clean: r.is_clean(),
            summary: ReconciliationSummary::new(|o| r.count(o)),
        }
    }
}

#[derive(Debug, Serialize, ToSchema)]
pub struct ReconciliationPage {
    pub reconciliations: Vec<ReconciliationRunResponse>,
    /// Pass as `cursor` to get the next page; absent on the last page.
    pub next_cursor: Option<String>,
}

#[derive(Debug, Serialize, ToSchema)]
pub struct ReconciliationItemResponse {
    /// `matched`, `missing_in_ledger`, `missing_in_report`, `amount_mismatch` or `duplicate_in_report`.
    pub outcome: String,
    /// `payment`, `refund` or `payout`.
    #[serde(rename = "type")]
    pub kind: String,
    pub reference: String,
    /// Integer rupiah as the report has it.
    pub report_amount: Option<i64>,
    /// Integer rupiah as our side has it.
    pub ledger_amount: Option<i64>,
    /// The report's line.
    pub line: Option<usize>,
}

#[derive(Debug, Serialize, ToSchema)]
pub struct ReconciliationResponse {
    pub id: String,
    pub created_at: String,
    /// The report's period: its earliest and latest settlement.
    pub period_from: String,
    pub period_to: String,
    pub lines: usize,
    /// True when everything matched.
    pub clean: bool,
    pub summary: ReconciliationSummary,
    pub items: Vec<ReconciliationItemResponse>,
}

impl From<&ReconciliationRecord> for ReconciliationResponse {
    fn from(r: &ReconciliationRecord) -> Self {
        ReconciliationResponse {
            id: r.id.to_string(),
            created_at: rfc3339(r.created_at),
            period_from: rfc3339(r.period.0),
            period_to: rfc3339(r.period.1),
            lines: r.lines_count,
            clean: r.is_clean(),
            summary: ReconciliationSummary::new(|o| r.count(o)),
            items: r
                .items
                .iter()
                .map(|i| ReconciliationItemResponse {
                    outcome: i.outcome.as_str().to_owned(),
                    kind: i.kind.as_str().to_owned(),
                    reference: i.reference.clone(),
                    report_amount: i.report_amount.map(Money::rupiah),
                    ledger_amount: i.ledger_amount.map(Money::rupiah),
                    line: i.line_no,
                })
                .collect(),
        }
    }
}
