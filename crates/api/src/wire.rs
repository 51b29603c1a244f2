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
use jembatan_store::catalogue::{NewProduct, ProductRecord, SkuRecord};
use jembatan_store::orders::{CheckoutRecord, OrderRecord};
use jembatan_store::payouts::{
    ConfirmationRecord, LineOutcome, MerchantBalance, NewPayout, PayoutBatchRecord, PayoutRecord,
    ResultLineRecord,
};
use jembatan_store::reconciliation::{ReconciliationRecord, RunSummary};
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
        }
    }
}

#[derive(Debug, Serialize, ToSchema)]
pub struct OrderPage {
    pub orders: Vec<OrderResponse>,
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
