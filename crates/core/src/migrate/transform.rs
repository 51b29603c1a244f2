//! The one translation of legacy rows into the core's model (DESIGN.md §5 → §4): a shop into
//! its merchant, a product into the core's product draft, an order into an order draft — or,
//! for a row the core cannot take, *every* problem it has, each a [`Defect`] with a stable
//! kind, the field, the raw legacy value and a reason a person can act on. The planner counts
//! these as expected defects, the copy quarantines them.
//!
//! SKU codes are unique per merchant in the core (`UNIQUE (merchant_id, code)`), so duplicate
//! codes are found across the whole shop: feed a shop's products, then its orders, to one
//! [`ShopTransform`]. The first SKU (in product id, then SKU order) keeps a code; every later
//! one is the defect. Deleted products are not moved (the core has no deleted products): an
//! order item pointing at one is a dangling reference.

use std::collections::{HashMap, HashSet};

use jembatan_domain::social::{
    LegacyStatus, PriceProblem, parse_payment_method, parse_price, parse_seller_type,
};
use jembatan_domain::{
    Category, DomainError, Merchant, MerchantId, MerchantName, Money, NewSku, Nib, OrderStatus, Origin,
    PaymentMethod, Price, ProductTitle, Province, Quantity, ShippingAddress, SkuCode, StockLevel, Timestamp,
};
use jembatan_store::catalogue::NewProduct;
use jembatan_store::legacy::{LegacyOrder, LegacyProduct, LegacyShop, PRODUCT_DELETED};
use jembatan_store::legacy_facts::{ProductRow, ShopSizes};

/// Which legacy row a defect belongs to.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, PartialOrd, Ord)]
pub enum Entity {
    Shop,
    Product,
    Order,
}

impl Entity {
    pub fn as_str(self) -> &'static str {
        match self {
            Entity::Shop => "shop",
            Entity::Product => "product",
            Entity::Order => "order",
        }
    }
}

macro_rules! defect_kinds {
    ($($variant:ident => $text:literal),* $(,)?) => {
        /// What is wrong with a legacy value. The text is stable: reports and quarantine keep it.
        #[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, PartialOrd, Ord)]
        pub enum DefectKind { $($variant),* }

        impl DefectKind {
            pub const ALL: &'static [DefectKind] = &[$(DefectKind::$variant),*];

            pub fn as_str(self) -> &'static str {
                match self { $(DefectKind::$variant => $text),* }
            }

            pub fn parse(raw: &str) -> Option<DefectKind> {
                match raw { $($text => Some(DefectKind::$variant),)* _ => None }
            }
        }
    };
}

defect_kinds! {
    UnknownSellerType => "unknown-seller-type",
    UnknownProvince => "unknown-province",
    BadNib => "bad-nib",
    EmptyTitle => "empty-title",
    BadTitle => "bad-title",
    UnknownCategory => "unknown-category",
    BadSkuJson => "bad-sku-json",
    NoSkus => "no-skus",
    TooManySkus => "too-many-skus",
    BadSkuId => "bad-sku-id",
    DuplicateSkuId => "duplicate-sku-id",
    BadSkuCode => "bad-sku-code",
    DuplicateSkuCode => "duplicate-sku-code",
    NegativeStock => "negative-stock",
    StockOutOfRange => "stock-out-of-range",
    AmbiguousPrice => "ambiguous-price",
    UnparseablePrice => "unparseable-price",
    FractionalPrice => "fractional-price",
    PriceOutOfRange => "price-out-of-range",
    UnknownStatus => "unknown-status",
    UnknownPaymentMethod => "unknown-payment-method",
    BadPhone => "bad-phone",
    BadAddress => "bad-address",
    NoItems => "no-items",
    BadQuantity => "bad-quantity",
    DanglingProduct => "dangling-product",
    MissingSku => "missing-sku",
    TotalMismatch => "total-mismatch",
}

impl DefectKind {
    fn of_price(problem: &PriceProblem) -> DefectKind {
        match problem {
            PriceProblem::Ambiguous { .. } => DefectKind::AmbiguousPrice,
            PriceProblem::Unparseable => DefectKind::UnparseablePrice,
            PriceProblem::Fractional => DefectKind::FractionalPrice,
            PriceProblem::OutOfRange => DefectKind::PriceOutOfRange,
        }
    }
}

/// One problem of one legacy row.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Defect {
    pub entity: Entity,
    /// The legacy id of the row (shop, product or order id).
    pub entity_id: String,
    pub kind: DefectKind,
    /// Where in the row, e.g. `skus[2].price` or `items[1].product_id`.
    pub field: String,
    /// The value as the legacy store holds it.
    pub raw: String,
    pub reason: String,
}

fn defect(
    entity: Entity,
    id: &str,
    kind: DefectKind,
    field: String,
    raw: &str,
    reason: impl Into<String>,
) -> Defect {
    Defect { entity, entity_id: id.to_owned(), kind, field, raw: raw.to_owned(), reason: reason.into() }
}

/// The reason of a domain refusal without the field name it repeats.
fn reason_of(error: &DomainError) -> String {
    match error {
        DomainError::InvalidField { reason, .. } => reason.clone(),
        other => other.to_string(),
    }
}

// ---- shops ----------------------------------------------------------------------------------

/// What of a legacy shop makes its merchant.
#[derive(Debug, Clone, Copy)]
pub struct ShopIdentity<'a> {
    pub shop_id: &'a str,
    pub shop_name: &'a str,
    pub seller_type: &'a str,
    pub province: &'a str,
    pub nib: &'a str,
}

impl<'a> From<&'a LegacyShop> for ShopIdentity<'a> {
    fn from(s: &'a LegacyShop) -> Self {
        ShopIdentity {
            shop_id: &s.shop_id,
            shop_name: &s.shop_name,
            seller_type: &s.seller_type,
            province: &s.province,
            nib: &s.nib,
        }
    }
}

impl<'a> From<&'a ShopSizes> for ShopIdentity<'a> {
    fn from(s: &'a ShopSizes) -> Self {
        ShopIdentity {
            shop_id: &s.shop_id,
            shop_name: &s.shop_name,
            seller_type: &s.seller_type,
            province: &s.province,
            nib: &s.nib,
        }
    }
}

/// The core merchant of a legacy shop: a local seller in an Indonesian province with its NIB,
/// a cross-border one overseas. A shop name the core refuses becomes `Toko <shop id>`.
pub fn merchant(shop: ShopIdentity<'_>, id: MerchantId, now: Timestamp) -> Result<Merchant, Vec<Defect>> {
    let mut defects = Vec::new();
    let bad = |kind, field: &str, raw: &str, reason: String| {
        defect(Entity::Shop, shop.shop_id, kind, field.to_owned(), raw, reason)
    };
    let origin = match parse_seller_type(shop.seller_type) {
        Ok(origin) => Some(origin),
        Err(e) => {
            defects.push(bad(DefectKind::UnknownSellerType, "seller_type", shop.seller_type, reason_of(&e)));
            None
        }
    };
    let province = match (origin, Province::parse(shop.province)) {
        (Some(Origin::CrossBorder), _) => Some(Province::OVERSEAS),
        (_, Ok(p)) if p != Province::OVERSEAS => Some(p),
        _ => {
            let reason = "a local seller must be in one of the 38 Indonesian provinces (e.g. `Jawa Barat`)";
            defects.push(bad(DefectKind::UnknownProvince, "province", shop.province, reason.to_owned()));
            None
        }
    };
    let nib = match (origin, Nib::parse(shop.nib)) {
        (_, Ok(nib)) => Some(nib),
        (Some(Origin::CrossBorder), Err(_)) => None,
        (_, Err(e)) => {
            let reason =
                format!("{}: a local seller needs it before the core can hold its money", reason_of(&e));
            defects.push(bad(DefectKind::BadNib, "nib", shop.nib, reason));
            None
        }
    };
    let (Some(origin), Some(province)) = (origin, province) else {
        return Err(defects);
    };
    if !defects.is_empty() {
        return Err(defects);
    }
    let name = MerchantName::parse(shop.shop_name)
        .or_else(|_| MerchantName::parse(&format!("Toko {}", shop.shop_id)))
        .map_err(|e| vec![bad(DefectKind::BadTitle, "shop_name", shop.shop_name, reason_of(&e))])?;
    Merchant::new(id, name, origin, province, nib, now)
        .map_err(|e| vec![bad(DefectKind::BadNib, "nib", shop.nib, reason_of(&e))])
}

// ---- products -------------------------------------------------------------------------------

/// A legacy product as the core will hold it, before it has a merchant and ids.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct ProductDraft {
    pub social_product_id: String,
    pub title: ProductTitle,
    pub category: Category,
    /// (social SKU id, the SKU), in the legacy order.
    pub skus: Vec<(String, NewSku)>,
}

impl ProductDraft {
    pub fn into_new_product(self, merchant_id: MerchantId) -> NewProduct {
        NewProduct {
            merchant_id,
            title: self.title,
            category: self.category,
            skus: self.skus.into_iter().map(|(_, sku)| sku).collect(),
        }
    }
}

/// A product's own problems, without the shop (duplicate codes and SKU ids are not checked):
/// what a single product edit can be checked with.
pub fn product(p: &LegacyProduct) -> Result<ProductDraft, Vec<Defect>> {
    ShopTransform::new(&p.shop_id).product(p)
}

/// What an order item may point at: a product (moved or deleted) and its SKU ids.
#[derive(Debug, Default)]
struct Listed {
    deleted: bool,
    sku_ids: HashSet<String>,
}

/// The transform of one shop: its products first (every status, in id order), then its orders.
/// Holds what must be unique across the shop (SKU codes, SKU ids) and what orders point at.
#[derive(Debug)]
pub struct ShopTransform {
    shop_id: String,
    /// Code → the product holding it, SKU id → its product: a product transformed again (a
    /// change caught up) first gives back what it held.
    codes: HashMap<String, String>,
    sku_ids: HashMap<String, String>,
    products: HashMap<String, Listed>,
}

impl ShopTransform {
    pub fn new(shop_id: &str) -> ShopTransform {
        ShopTransform {
            shop_id: shop_id.to_owned(),
            codes: HashMap::new(),
            sku_ids: HashMap::new(),
            products: HashMap::new(),
        }
    }

    pub fn shop_id(&self) -> &str {
        &self.shop_id
    }

    /// A product row as the planner reads it: `None` for a deleted product (not moved; kept
    /// for the orders that point at it), else its draft or every defect — an unreadable SKU
    /// list among them.
    pub fn product_row(&mut self, row: &ProductRow) -> Option<Result<ProductDraft, Vec<Defect>>> {
        debug_assert_eq!(row.shop_id, self.shop_id, "a shop's transform takes that shop's rows");
        let skus = match &row.skus {
            Ok(skus) => skus.clone(),
            Err(reason) => {
                let listed = self.products.entry(row.product_id.clone()).or_default();
                listed.deleted = row.is_deleted();
                if row.is_deleted() {
                    return None;
                }
                let mut defects = vec![defect(
                    Entity::Product,
                    &row.product_id,
                    DefectKind::BadSkuJson,
                    "skus".to_owned(),
                    &row.skus_raw,
                    format!("the SKU list cannot be read: {reason}"),
                )];
                defects.extend(
                    self.head_defects(&row.product_id, &row.title, &row.category).err().unwrap_or_default(),
                );
                return Some(Err(defects));
            }
        };
        let product = LegacyProduct {
            shop_id: row.shop_id.clone(),
            product_id: row.product_id.clone(),
            title: row.title.clone(),
            category: row.category.clone(),
            description: String::new(),
            skus,
            skus_problem: None,
            status: row.status,
            create_time: 0,
            update_time: 0,
        };
        if row.is_deleted() {
            self.products.insert(
                product.product_id.clone(),
                Listed { deleted: true, sku_ids: product.skus.iter().map(|s| s.sku_id.clone()).collect() },
            );
            return None;
        }
        Some(self.product(&product))
    }

    /// Gives back the codes and SKU ids a product held (before it is transformed again, or
    /// when it is deleted).
    pub fn forget(&mut self, product_id: &str) {
        self.codes.retain(|_, owner| owner != product_id);
        self.sku_ids.retain(|_, owner| owner != product_id);
    }

    /// Marks a product deleted (orders pointing at it are dangling from now on).
    pub fn deleted(&mut self, product_id: &str) {
        self.forget(product_id);
        self.products.entry(product_id.to_owned()).or_default().deleted = true;
    }

    /// A product that moves (not deleted): its draft, or every problem it has.
    pub fn product(&mut self, p: &LegacyProduct) -> Result<ProductDraft, Vec<Defect>> {
        debug_assert_ne!(p.status, PRODUCT_DELETED, "deleted products are not moved");
        let id = p.product_id.as_str();
        self.forget(id);
        let listed = Listed { deleted: false, sku_ids: p.skus.iter().map(|s| s.sku_id.clone()).collect() };
        self.products.insert(p.product_id.clone(), listed);
        let head = self.head_defects(id, &p.title, &p.category);
        let mut defects = head.as_ref().err().cloned().unwrap_or_default();
        if let Some(problem) = &p.skus_problem {
            defects.push(defect(
                Entity::Product,
                id,
                DefectKind::BadSkuJson,
                "skus".to_owned(),
                "",
                format!("the SKU list cannot be read whole: {problem}"),
            ));
        }
        if p.skus.is_empty() && p.skus_problem.is_none() {
            defects.push(defect(
                Entity::Product,
                id,
                DefectKind::NoSkus,
                "skus".to_owned(),
                "[]",
                "a product needs at least one SKU",
            ));
        }
        if p.skus.len() > jembatan_domain::limits::PRODUCT_SKUS_MAX {
            defects.push(defect(
                Entity::Product,
                id,
                DefectKind::TooManySkus,
                "skus".to_owned(),
                &p.skus.len().to_string(),
                format!("a product has at most {} SKUs", jembatan_domain::limits::PRODUCT_SKUS_MAX),
            ));
        }
        let mut skus = Vec::with_capacity(p.skus.len());
        for (index, s) in p.skus.iter().enumerate() {
            let field = |name: &str| format!("skus[{index}].{name}");
            let mut sku_ok = true;
            let mut bad = |kind, name: &str, raw: &str, reason: String| {
                sku_ok = false;
                defects.push(defect(Entity::Product, id, kind, field(name), raw, reason));
            };
            if jembatan_domain::social::SocialId::parse("sku_id", &s.sku_id).is_err() {
                bad(DefectKind::BadSkuId, "sku_id", &s.sku_id, "a SKU id is 1 to 20 digits".to_owned());
            } else if self.sku_ids.get(&s.sku_id).is_some_and(|owner| owner != id)
                || p.skus[..index].iter().any(|earlier| earlier.sku_id == s.sku_id)
            {
                bad(
                    DefectKind::DuplicateSkuId,
                    "sku_id",
                    &s.sku_id,
                    "another SKU of the shop has this id".to_owned(),
                );
            }
            let code = match SkuCode::parse(&s.seller_sku) {
                Ok(code)
                    if self.codes.get(code.as_str()).is_some_and(|owner| owner != id)
                        || p.skus[..index].iter().any(|earlier| {
                            SkuCode::parse(&earlier.seller_sku).is_ok_and(|c| c.as_str() == code.as_str())
                        }) =>
                {
                    bad(
                        DefectKind::DuplicateSkuCode,
                        "seller_sku",
                        &s.seller_sku,
                        "another SKU of the shop has this code, and codes are unique per merchant: give this one its own".to_owned(),
                    );
                    None
                }
                Ok(code) => Some(code),
                Err(e) => {
                    bad(DefectKind::BadSkuCode, "seller_sku", &s.seller_sku, reason_of(&e));
                    None
                }
            };
            let price = match parse_price(&s.price) {
                Ok(money) => match Price::from_rupiah(money.rupiah()) {
                    Ok(price) => Some(price),
                    Err(e) => {
                        bad(DefectKind::PriceOutOfRange, "price", &s.price, reason_of(&e));
                        None
                    }
                },
                Err(problem) => {
                    bad(DefectKind::of_price(&problem), "price", &s.price, problem.explain(&s.price));
                    None
                }
            };
            let stock = match StockLevel::on_hand(s.stock) {
                Ok(stock) => Some(stock),
                Err(e) => {
                    let kind =
                        if s.stock < 0 { DefectKind::NegativeStock } else { DefectKind::StockOutOfRange };
                    bad(kind, "stock", &s.stock.to_string(), reason_of(&e));
                    None
                }
            };
            if let (Some(code), Some(price), Some(stock), true) = (code, price, stock, sku_ok) {
                skus.push((s.sku_id.clone(), NewSku { code, price, stock }));
            }
        }
        match head {
            Ok((title, category)) if defects.is_empty() => {
                debug_assert_eq!(skus.len(), p.skus.len());
                // Only a product that moves holds its codes and ids: one quarantined does not
                // keep another from moving.
                for (sku_id, sku) in &skus {
                    self.sku_ids.insert(sku_id.clone(), id.to_owned());
                    self.codes.insert(sku.code.as_str().to_owned(), id.to_owned());
                }
                Ok(ProductDraft { social_product_id: p.product_id.clone(), title, category, skus })
            }
            _ => Err(defects),
        }
    }

    fn head_defects(
        &self,
        id: &str,
        title: &str,
        category: &str,
    ) -> Result<(ProductTitle, Category), Vec<Defect>> {
        let mut defects = Vec::new();
        let title = ProductTitle::parse(title).map_err(|e| {
            let kind = if title.trim().is_empty() { DefectKind::EmptyTitle } else { DefectKind::BadTitle };
            defects.push(defect(Entity::Product, id, kind, "title".to_owned(), title, reason_of(&e)));
        });
        let category = Category::parse(category).map_err(|e| {
            defects.push(defect(
                Entity::Product,
                id,
                DefectKind::UnknownCategory,
                "category".to_owned(),
                category,
                reason_of(&e),
            ));
        });
        match (title, category) {
            (Ok(title), Ok(category)) => Ok((title, category)),
            _ => Err(defects),
        }
    }

    // ---- orders ---------------------------------------------------------------------------

    /// An order of the shop (after all its products): its draft, or every problem it has.
    pub fn order(&self, o: &LegacyOrder) -> Result<OrderDraft, Vec<Defect>> {
        debug_assert_eq!(o.shop_id, self.shop_id, "a shop's transform takes that shop's rows");
        let id = o.order_id.as_str();
        let mut defects = Vec::new();
        let mut bad = |kind, field: String, raw: &str, reason: String| {
            defects.push(defect(Entity::Order, id, kind, field, raw, reason));
        };
        let status = LegacyStatus::from_code(o.status)
            .map_err(|e| {
                bad(DefectKind::UnknownStatus, "status".to_owned(), &o.status.to_string(), reason_of(&e))
            })
            .ok();
        let payment_method = parse_payment_method(&o.payment_method)
            .map_err(|e| {
                bad(
                    DefectKind::UnknownPaymentMethod,
                    "payment_method".to_owned(),
                    &o.payment_method,
                    reason_of(&e),
                )
            })
            .ok();
        let address = match jembatan_domain::PhoneNumber::parse("recipient_phone", &o.recipient_phone) {
            Err(e) => {
                bad(DefectKind::BadPhone, "recipient_phone".to_owned(), &o.recipient_phone, reason_of(&e));
                None
            }
            Ok(_) => ShippingAddress::parse(
                &o.recipient_name,
                &o.recipient_phone,
                &o.address_detail,
                &o.city,
                &o.province,
                &o.postal_code,
            )
            .map_err(|e| {
                let (field, raw) = match &e {
                    DomainError::InvalidField { field, .. } => {
                        let raw = match *field {
                            "shipping_address.province" => &o.province,
                            "shipping_address.postal_code" => &o.postal_code,
                            "shipping_address.city" => &o.city,
                            "shipping_address.street" => &o.address_detail,
                            _ => &o.recipient_name,
                        };
                        ((*field).to_owned(), raw.as_str())
                    }
                    _ => ("shipping_address".to_owned(), ""),
                };
                bad(DefectKind::BadAddress, field, raw, reason_of(&e));
            })
            .ok(),
        };
        let total = match parse_price(&o.total_amount) {
            Ok(total) => Some(total),
            Err(problem) => {
                bad(
                    DefectKind::of_price(&problem),
                    "total_amount".to_owned(),
                    &o.total_amount,
                    problem.explain(&o.total_amount),
                );
                None
            }
        };
        if o.items.is_empty() {
            bad(DefectKind::NoItems, "items".to_owned(), "[]", "an order has at least one item".to_owned());
        }
        let mut lines = Vec::with_capacity(o.items.len());
        let mut sum = Some(Money::ZERO);
        for (index, item) in o.items.iter().enumerate() {
            let field = |name: &str| format!("items[{index}].{name}");
            match self.products.get(&item.product_id) {
                None => bad(
                    DefectKind::DanglingProduct,
                    field("product_id"),
                    &item.product_id,
                    format!("product {} is not in the shop", item.product_id),
                ),
                Some(listed) if listed.deleted => bad(
                    DefectKind::DanglingProduct,
                    field("product_id"),
                    &item.product_id,
                    format!("product {} was deleted, so it does not move to the core", item.product_id),
                ),
                Some(_) => {}
            }
            if let Some(listed) = self.products.get(&item.product_id)
                && !listed.sku_ids.contains(&item.sku_id)
            {
                bad(
                    DefectKind::MissingSku,
                    field("sku_id"),
                    &item.sku_id,
                    format!("product {} has no SKU {}", item.product_id, item.sku_id),
                );
            }
            let quantity = Quantity::new(item.quantity)
                .map_err(|e| {
                    bad(DefectKind::BadQuantity, field("quantity"), &item.quantity.to_string(), reason_of(&e))
                })
                .ok();
            let price = match parse_price(&item.unit_price).map(|m| Price::from_rupiah(m.rupiah())) {
                Ok(Ok(price)) => Some(price),
                Ok(Err(e)) => {
                    bad(DefectKind::PriceOutOfRange, field("unit_price"), &item.unit_price, reason_of(&e));
                    None
                }
                Err(problem) => {
                    bad(
                        DefectKind::of_price(&problem),
                        field("unit_price"),
                        &item.unit_price,
                        problem.explain(&item.unit_price),
                    );
                    None
                }
            };
            match (quantity, price) {
                (Some(quantity), Some(price)) => {
                    let line_total = price.money().checked_mul(quantity.units());
                    sum = match (sum, &line_total) {
                        (Some(sum), Ok(line)) => sum.checked_add(*line).ok(),
                        _ => None,
                    };
                    if let Ok(line_total) = line_total {
                        lines.push(OrderLineDraft {
                            social_product_id: item.product_id.clone(),
                            social_sku_id: item.sku_id.clone(),
                            quantity,
                            unit_price: price,
                            line_total,
                        });
                    }
                }
                _ => sum = None,
            }
        }
        // Only when every amount read: a broken price is its own defect, not a mismatch too.
        if let (Some(total), Some(sum)) = (total, sum)
            && !o.items.is_empty()
            && total != sum
        {
            bad(
                DefectKind::TotalMismatch,
                "total_amount".to_owned(),
                &o.total_amount,
                format!("the total is Rp{} but the items come to Rp{}", total.rupiah(), sum.rupiah()),
            );
        }
        match (status, payment_method, address, total) {
            (Some(status), Some(payment_method), Some(address), Some(total)) if defects.is_empty() => {
                Ok(OrderDraft {
                    social_order_id: o.order_id.clone(),
                    legacy_status: status,
                    status: status.to_core(),
                    payment_method,
                    address,
                    total,
                    lines,
                })
            }
            _ => Err(defects),
        }
    }
}

/// A legacy order as the core will hold it, before ids are mapped.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct OrderDraft {
    pub social_order_id: String,
    pub legacy_status: LegacyStatus,
    pub status: OrderStatus,
    pub payment_method: PaymentMethod,
    /// The phone in E.164 form.
    pub address: ShippingAddress,
    pub total: Money,
    pub lines: Vec<OrderLineDraft>,
}

#[derive(Debug, Clone, PartialEq, Eq)]
pub struct OrderLineDraft {
    pub social_product_id: String,
    pub social_sku_id: String,
    pub quantity: Quantity,
    pub unit_price: Price,
    pub line_total: Money,
}

/// Whether a legacy status counts toward GMV: paid and not cancelled.
pub fn counts_toward_gmv(status: i64) -> bool {
    matches!(
        LegacyStatus::from_code(status),
        Ok(LegacyStatus::AwaitingShipment
            | LegacyStatus::AwaitingCollection
            | LegacyStatus::InTransit
            | LegacyStatus::Delivered
            | LegacyStatus::Completed)
    )
}

#[cfg(test)]
mod tests {
    use super::*;
    use jembatan_store::legacy::{LegacyItem, LegacySku, PRODUCT_LIVE};

    fn sku(id: &str, code: &str, price: &str, stock: i64) -> LegacySku {
        LegacySku {
            sku_id: id.into(),
            seller_sku: code.into(),
            name: String::new(),
            price: price.into(),
            stock,
        }
    }

    fn product(id: &str, title: &str, skus: Vec<LegacySku>) -> LegacyProduct {
        LegacyProduct {
            shop_id: "1".into(),
            product_id: id.into(),
            title: title.into(),
            category: "fashion".into(),
            description: String::new(),
            skus,
            skus_problem: None,
            status: PRODUCT_LIVE,
            create_time: 0,
            update_time: 0,
        }
    }

    fn row(p: &LegacyProduct, skus: Result<Vec<LegacySku>, String>, raw: &str) -> ProductRow {
        ProductRow {
            shop_id: p.shop_id.clone(),
            product_id: p.product_id.clone(),
            title: p.title.clone(),
            category: p.category.clone(),
            status: p.status,
            skus,
            skus_raw: raw.into(),
        }
    }

    fn kinds(result: Result<impl std::fmt::Debug, Vec<Defect>>) -> Vec<(&'static str, String)> {
        result.expect_err("defects").into_iter().map(|d| (d.kind.as_str(), d.field)).collect()
    }

    /// One check per case: a product in a fresh shop, and the defects (kind, field) it has.
    fn check(p: LegacyProduct, expected: &[(&str, &str)]) {
        let mut shop = ShopTransform::new("1");
        let found = kinds(shop.product(&p));
        let expected: Vec<(&str, String)> = expected.iter().map(|(k, f)| (*k, (*f).to_owned())).collect();
        assert_eq!(found, expected, "{}", p.product_id);
    }

    #[test]
    fn a_clean_product_becomes_the_cores_draft() {
        let p = product(
            "10",
            "Kaos Polos",
            vec![sku("101", "KP-1", "149.000", 3), sku("102", "KP-2", "150000", 0)],
        );
        let draft = ShopTransform::new("1").product(&p).unwrap();
        assert_eq!(draft.title.as_str(), "Kaos Polos");
        assert_eq!(draft.skus.len(), 2);
        assert_eq!(draft.skus[0].1.price.money().rupiah(), 149_000);
        assert_eq!(draft.skus[1].0, "102");
        let merchant_id: MerchantId = jembatan_store::new_id();
        let new = draft.into_new_product(merchant_id);
        assert_eq!((new.merchant_id, new.skus[0].code.as_str()), (merchant_id, "KP-1"));
    }

    #[test]
    fn every_problem_of_a_product_is_reported_with_its_kind() {
        check(product("1", "", vec![sku("11", "A", "1000", 1)]), &[("empty-title", "title")]);
        check(product("2", &"x".repeat(201), vec![sku("21", "A", "1000", 1)]), &[("bad-title", "title")]);
        let mut unknown = product("3", "Teh", vec![sku("31", "A", "1000", 1)]);
        unknown.category = "groceries".into();
        check(unknown, &[("unknown-category", "category")]);
        check(product("4", "Teh", vec![]), &[("no-skus", "skus")]);
        check(
            product(
                "5",
                "Teh",
                (0..101).map(|i| sku(&format!("5{i:03}"), &format!("C{i}"), "1000", 1)).collect(),
            ),
            &[("too-many-skus", "skus")],
        );
        check(product("6", "Teh", vec![sku("6a", "A", "1000", 1)]), &[("bad-sku-id", "skus[0].sku_id")]);
        check(
            product("7", "Teh", vec![sku("71", "A B", "1000", 1)]),
            &[("bad-sku-code", "skus[0].seller_sku")],
        );
        check(product("8", "Teh", vec![sku("81", "A", "1000", -3)]), &[("negative-stock", "skus[0].stock")]);
        check(
            product("9", "Teh", vec![sku("91", "A", "1000", 20_000_000)]),
            &[("stock-out-of-range", "skus[0].stock")],
        );
        check(
            product("10", "Teh", vec![sku("101", "A", "1.500", 1)]),
            &[("ambiguous-price", "skus[0].price")],
        );
        check(
            product("11", "Teh", vec![sku("111", "A", "149rb", 1)]),
            &[("unparseable-price", "skus[0].price")],
        );
        check(
            product("12", "Teh", vec![sku("121", "A", "149.000,50", 1)]),
            &[("fractional-price", "skus[0].price")],
        );
        check(
            product("13", "Teh", vec![sku("131", "A", "2000000000", 1)]),
            &[("price-out-of-range", "skus[0].price")],
        );
        check(
            product("14", "Teh", vec![sku("141", "A", "0", 1)]),
            &[("price-out-of-range", "skus[0].price")],
        );
        // Several at once: all of them, not the first.
        check(
            product("15", " ", vec![sku("151", "A", "1.500", -1), sku("151", "A", "abc", 1)]),
            &[
                ("empty-title", "title"),
                ("ambiguous-price", "skus[0].price"),
                ("negative-stock", "skus[0].stock"),
                ("duplicate-sku-id", "skus[1].sku_id"),
                ("duplicate-sku-code", "skus[1].seller_sku"),
                ("unparseable-price", "skus[1].price"),
            ],
        );
    }

    #[test]
    fn duplicate_codes_are_found_across_the_shop_and_the_first_keeps_its_code() {
        let mut shop = ShopTransform::new("1");
        assert!(shop.product(&product("1", "Teh", vec![sku("11", "TEH-1", "1000", 1)])).is_ok());
        let second = kinds(shop.product(&product(
            "2",
            "Kopi",
            vec![sku("21", "KOPI-1", "1000", 1), sku("22", "TEH-1", "1000", 1)],
        )));
        assert_eq!(second, vec![("duplicate-sku-code", "skus[1].seller_sku".to_owned())]);
        let third = kinds(shop.product(&product("3", "Susu", vec![sku("11", "SUSU-1", "1000", 1)])));
        assert_eq!(third, vec![("duplicate-sku-id", "skus[0].sku_id".to_owned())]);
        // Another shop has its own codes.
        assert!(
            ShopTransform::new("2")
                .product(&product("4", "Teh", vec![sku("41", "TEH-1", "1000", 1)]))
                .is_ok()
        );
    }

    #[test]
    fn an_unreadable_sku_list_is_a_defect_and_deleted_products_do_not_move() {
        let mut shop = ShopTransform::new("1");
        let p = product("1", "", vec![]);
        let found = kinds(shop.product_row(&row(&p, Err("not JSON".into()), "{")).unwrap());
        assert_eq!(found, vec![("bad-sku-json", "skus".to_owned()), ("empty-title", "title".to_owned())]);
        let mut deleted = product("2", "", vec![sku("21", "A", "1.500", -1)]);
        deleted.status = PRODUCT_DELETED;
        assert!(
            shop.product_row(&row(&deleted, Ok(deleted.skus.clone()), "[]")).is_none(),
            "not moved, no defects"
        );
    }

    fn order(items: Vec<LegacyItem>, total: &str) -> LegacyOrder {
        LegacyOrder {
            shop_id: "1".into(),
            order_id: "900".into(),
            buyer_id: "5".into(),
            status: 130,
            payment_method: "QRIS".into(),
            total_amount: total.into(),
            recipient_name: "Siti Rahayu".into(),
            recipient_phone: "0812-3456-7890".into(),
            address_detail: "Jl. Melati No. 4".into(),
            city: "Denpasar".into(),
            province: "Bali".into(),
            postal_code: "80111".into(),
            create_time: 0,
            update_time: 0,
            items,
        }
    }

    fn item(product_id: &str, sku_id: &str, quantity: i64, price: &str) -> LegacyItem {
        LegacyItem {
            item_no: 1,
            product_id: product_id.into(),
            sku_id: sku_id.into(),
            product_title: "Teh".into(),
            quantity,
            unit_price: price.into(),
        }
    }

    fn shop_with_products() -> ShopTransform {
        let mut shop = ShopTransform::new("1");
        shop.product(&product("1", "Teh", vec![sku("11", "TEH-1", "10.000", 5)])).unwrap();
        let mut deleted = product("2", "Kopi", vec![sku("21", "KOPI-1", "20000", 5)]);
        deleted.status = PRODUCT_DELETED;
        assert!(shop.product_row(&row(&deleted, Ok(deleted.skus.clone()), "[]")).is_none());
        shop
    }

    fn check_order(o: LegacyOrder, expected: &[(&str, &str)]) {
        let found = kinds(shop_with_products().order(&o));
        let expected: Vec<(&str, String)> = expected.iter().map(|(k, f)| (*k, (*f).to_owned())).collect();
        assert_eq!(found, expected);
    }

    #[test]
    fn a_clean_order_becomes_a_draft_with_its_core_status_and_e164_phone() {
        let draft = shop_with_products().order(&order(vec![item("1", "11", 2, "10000")], "20.000")).unwrap();
        assert_eq!(draft.status, OrderStatus::Completed);
        assert_eq!(draft.total.rupiah(), 20_000);
        assert_eq!(draft.address.phone.as_str(), "+6281234567890");
        assert_eq!(draft.lines[0].line_total.rupiah(), 20_000);
    }

    #[test]
    fn every_problem_of_an_order_is_reported_with_its_kind() {
        check_order(
            order(vec![item("2", "21", 1, "20000")], "20000"),
            &[("dangling-product", "items[0].product_id")],
        );
        check_order(
            order(vec![item("3", "31", 1, "20000")], "20000"),
            &[("dangling-product", "items[0].product_id")],
        );
        check_order(order(vec![item("1", "19", 1, "10000")], "10000"), &[("missing-sku", "items[0].sku_id")]);
        check_order(
            order(vec![item("1", "11", 1, "1.500")], "1500"),
            &[("ambiguous-price", "items[0].unit_price")],
        );
        check_order(
            order(vec![item("1", "11", 1, "10000")], "Rp10.000"),
            &[("unparseable-price", "total_amount")],
        );
        check_order(
            order(vec![item("1", "11", 0, "10000")], "10000"),
            &[("bad-quantity", "items[0].quantity")],
        );
        check_order(order(vec![item("1", "11", 1, "10000")], "15000"), &[("total-mismatch", "total_amount")]);
        check_order(order(vec![], "10000"), &[("no-items", "items")]);
        let mut o = order(vec![item("1", "11", 1, "10000")], "10000");
        o.status = 999;
        o.payment_method = "CASH".into();
        o.recipient_phone = "12345".into();
        check_order(
            o,
            &[
                ("unknown-status", "status"),
                ("unknown-payment-method", "payment_method"),
                ("bad-phone", "recipient_phone"),
            ],
        );
        let mut o = order(vec![item("1", "11", 1, "10000")], "10000");
        o.postal_code = "801".into();
        check_order(o, &[("bad-address", "shipping_address.postal_code")]);
    }

    #[test]
    fn a_shop_becomes_its_merchant_or_says_why_not() {
        let shop = LegacyShop {
            shop_id: "1".into(),
            shop_name: "Toko Melati".into(),
            seller_type: "LOCAL".into(),
            province: "Bali".into(),
            city: "Denpasar".into(),
            contact_phone: "081234567890".into(),
            nib: "9100000000001".into(),
            create_time: 0,
            update_time: 0,
        };
        let now = Timestamp::from_unix_ms(0);
        let id: MerchantId = jembatan_store::new_id();
        let merchant = merchant((&shop).into(), id, now).unwrap();
        assert_eq!((merchant.origin, merchant.province.as_str()), (Origin::Local, "Bali"));
        let abroad = LegacyShop {
            seller_type: "CROSS_BORDER".into(),
            province: "Overseas".into(),
            nib: String::new(),
            ..shop.clone()
        };
        assert_eq!(merchant_kinds(&abroad), Vec::<&str>::new());
        let no_nib = LegacyShop { nib: "123".into(), ..shop.clone() };
        assert_eq!(merchant_kinds(&no_nib), vec!["bad-nib"]);
        let nowhere = LegacyShop { province: "Atlantis".into(), nib: String::new(), ..shop.clone() };
        assert_eq!(merchant_kinds(&nowhere), vec!["unknown-province", "bad-nib"]);
        let odd = LegacyShop { seller_type: "GLOBAL".into(), ..shop };
        assert_eq!(merchant_kinds(&odd), vec!["unknown-seller-type"]);
        assert!(DefectKind::ALL.iter().all(|k| DefectKind::parse(k.as_str()) == Some(*k)));
    }

    fn merchant_kinds(shop: &LegacyShop) -> Vec<&'static str> {
        match merchant(shop.into(), jembatan_store::new_id(), Timestamp::from_unix_ms(0)) {
            Ok(_) => Vec::new(),
            Err(defects) => defects.into_iter().map(|d| d.kind.as_str()).collect(),
        }
    }
}
