//! A checkout: a buyer's cart from one storefront channel, split into one order per merchant.

use std::collections::BTreeMap;

use crate::error::DomainError;
use crate::fee::platform_fee;
use crate::id::{MerchantId, SkuId};
use crate::limits::CHECKOUT_LINES_MAX;
use crate::merchant::Province;
use crate::money::Money;
use crate::product::Category;
use crate::product::Price;
use crate::stock::Quantity;
use crate::text::{PhoneNumber, bounded_text};

/// The storefront a checkout comes through.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, PartialOrd, Ord)]
pub enum Channel {
    Social,
    Marketplace,
}

impl Channel {
    pub fn as_str(self) -> &'static str {
        match self {
            Channel::Social => "social",
            Channel::Marketplace => "marketplace",
        }
    }

    pub fn parse(raw: &str) -> Result<Channel, DomainError> {
        match raw {
            "social" => Ok(Channel::Social),
            "marketplace" => Ok(Channel::Marketplace),
            _ => Err(DomainError::invalid("channel", "must be `social` or `marketplace`")),
        }
    }
}

/// Payment methods of the Indonesian market (DESIGN.md §4).
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash)]
pub enum PaymentMethod {
    VirtualAccount,
    Qris,
    Ewallet,
    CashOnDelivery,
}

impl PaymentMethod {
    pub fn as_str(self) -> &'static str {
        match self {
            PaymentMethod::VirtualAccount => "virtual_account",
            PaymentMethod::Qris => "qris",
            PaymentMethod::Ewallet => "ewallet",
            PaymentMethod::CashOnDelivery => "cod",
        }
    }

    pub fn parse(raw: &str) -> Result<PaymentMethod, DomainError> {
        match raw {
            "virtual_account" => Ok(PaymentMethod::VirtualAccount),
            "qris" => Ok(PaymentMethod::Qris),
            "ewallet" => Ok(PaymentMethod::Ewallet),
            "cod" => Ok(PaymentMethod::CashOnDelivery),
            _ => Err(DomainError::invalid("payment_method", "must be virtual_account, qris, ewallet or cod")),
        }
    }
}

/// A pseudonymous buyer id chosen by the channel: 1 to 64 visible ASCII characters.
#[derive(Debug, Clone, PartialEq, Eq, Hash)]
pub struct BuyerId(String);

impl BuyerId {
    pub fn parse(raw: &str) -> Result<BuyerId, DomainError> {
        if raw.is_empty() || raw.len() > 64 || !raw.bytes().all(|b| b.is_ascii_graphic()) {
            return Err(DomainError::invalid("buyer_id", "must be 1 to 64 visible ASCII characters"));
        }
        Ok(BuyerId(raw.to_owned()))
    }

    pub fn as_str(&self) -> &str {
        &self.0
    }
}

/// Where the goods go. Personal data: masked for the regulator.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct ShippingAddress {
    pub recipient_name: String,
    pub phone: PhoneNumber,
    pub street: String,
    pub city: String,
    pub province: Province,
    pub postal_code: String,
}

impl ShippingAddress {
    pub fn parse(
        recipient_name: &str,
        phone: &str,
        street: &str,
        city: &str,
        province: &str,
        postal_code: &str,
    ) -> Result<ShippingAddress, DomainError> {
        let province = Province::parse(province).map_err(|_| {
            DomainError::invalid("shipping_address.province", "must be one of the 38 Indonesian provinces")
        })?;
        if province == Province::OVERSEAS {
            return Err(DomainError::invalid("shipping_address.province", "must be an Indonesian province"));
        }
        if postal_code.len() != 5 || !postal_code.bytes().all(|b| b.is_ascii_digit()) {
            return Err(DomainError::invalid("shipping_address.postal_code", "must be 5 digits"));
        }
        Ok(ShippingAddress {
            recipient_name: bounded_text("shipping_address.recipient_name", recipient_name, 100)?,
            phone: PhoneNumber::parse("shipping_address.phone", phone)?,
            street: bounded_text("shipping_address.street", street, 200)?,
            city: bounded_text("shipping_address.city", city, 100)?,
            province,
            postal_code: postal_code.to_owned(),
        })
    }
}

#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct CheckoutLine {
    pub sku_id: SkuId,
    pub quantity: Quantity,
}

/// A parsed checkout. Lines are merged per SKU and sorted by SKU id: that order is the order in
/// which the store locks stock rows, so two concurrent checkouts never wait on each other in a
/// cycle.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct CheckoutRequest {
    pub channel: Channel,
    pub buyer_id: BuyerId,
    lines: Vec<CheckoutLine>,
    pub shipping_address: ShippingAddress,
    pub payment_method: PaymentMethod,
}

impl CheckoutRequest {
    pub fn new(
        channel: Channel,
        buyer_id: BuyerId,
        lines: Vec<CheckoutLine>,
        shipping_address: ShippingAddress,
        payment_method: PaymentMethod,
    ) -> Result<CheckoutRequest, DomainError> {
        if lines.is_empty() {
            return Err(DomainError::invalid("items", "must hold at least one item"));
        }
        if lines.len() > CHECKOUT_LINES_MAX {
            return Err(DomainError::invalid(
                "items",
                format!("must hold at most {CHECKOUT_LINES_MAX} items"),
            ));
        }
        let mut merged: BTreeMap<SkuId, u32> = BTreeMap::new();
        for line in &lines {
            *merged.entry(line.sku_id).or_default() += line.quantity.units();
        }
        let lines = merged
            .into_iter()
            .map(|(sku_id, units)| Ok(CheckoutLine { sku_id, quantity: Quantity::new(units.into())? }))
            .collect::<Result<Vec<_>, DomainError>>()?;
        Ok(CheckoutRequest { channel, buyer_id, lines, shipping_address, payment_method })
    }

    /// Lines in SKU id order, one per SKU.
    pub fn lines(&self) -> &[CheckoutLine] {
        &self.lines
    }
}

/// What the store knows of a SKU when a checkout prices it.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct PricedSku {
    pub sku_id: SkuId,
    pub merchant_id: MerchantId,
    pub price: Price,
    /// The product's category, which sets the platform fee rate.
    pub category: Category,
}

#[derive(Debug, Clone, PartialEq, Eq)]
pub struct OrderDraftLine {
    pub sku_id: SkuId,
    pub quantity: Quantity,
    pub unit_price: Price,
    pub line_total: Money,
    /// The platform fee on this line, fixed at the sale (see `fee`).
    pub fee: Money,
}

/// One merchant's part of a checkout, before it has an id.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct OrderDraft {
    pub merchant_id: MerchantId,
    pub lines: Vec<OrderDraftLine>,
    pub total: Money,
    /// Sum of the lines' fees: what the platform keeps when the escrow is released.
    pub fee: Money,
}

/// Splits a checkout into one order per merchant, in merchant id order, pricing each line.
/// `priced` must hold every SKU of the checkout; a missing one is reported as unknown.
pub fn plan_orders(request: &CheckoutRequest, priced: &[PricedSku]) -> Result<Vec<OrderDraft>, DomainError> {
    let mut by_merchant: BTreeMap<MerchantId, OrderDraft> = BTreeMap::new();
    for line in request.lines() {
        let sku = priced.iter().find(|p| p.sku_id == line.sku_id).ok_or_else(|| {
            DomainError::invalid("items.sku_id", format!("{} is not a SKU on sale", line.sku_id))
        })?;
        let line_total = sku.price.money().checked_mul(line.quantity.units())?;
        let fee = platform_fee(line_total, Money::ZERO, sku.category.fee_rate())?;
        let draft = by_merchant.entry(sku.merchant_id).or_insert_with(|| OrderDraft {
            merchant_id: sku.merchant_id,
            lines: Vec::new(),
            total: Money::ZERO,
            fee: Money::ZERO,
        });
        draft.total = draft.total.checked_add(line_total)?;
        draft.fee = draft.fee.checked_add(fee)?;
        draft.lines.push(OrderDraftLine {
            sku_id: sku.sku_id,
            quantity: line.quantity,
            unit_price: sku.price,
            line_total,
            fee,
        });
    }
    Ok(by_merchant.into_values().collect())
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::id::TypedId;
    use proptest::prelude::*;
    use uuid::Uuid;

    fn address() -> ShippingAddress {
        ShippingAddress::parse("Siti", "081234567890", "Jl. Merdeka 1", "Bandung", "Jawa Barat", "40111")
            .unwrap()
    }

    fn request(lines: Vec<(u128, i64)>) -> Result<CheckoutRequest, DomainError> {
        let lines = lines
            .into_iter()
            .map(|(s, q)| {
                Ok(CheckoutLine { sku_id: SkuId::from_uuid(Uuid::from_u128(s)), quantity: Quantity::new(q)? })
            })
            .collect::<Result<Vec<_>, DomainError>>()?;
        CheckoutRequest::new(
            Channel::Social,
            BuyerId::parse("b-1").unwrap(),
            lines,
            address(),
            PaymentMethod::Qris,
        )
    }

    #[test]
    fn merges_duplicates_and_rejects_empty_or_excess() {
        let r = request(vec![(2, 1), (1, 3), (2, 4)]).unwrap();
        let units: Vec<(u128, u32)> =
            r.lines().iter().map(|l| (l.sku_id.uuid().as_u128(), l.quantity.units())).collect();
        assert_eq!(units, vec![(1, 3), (2, 5)]);
        assert!(request(vec![]).is_err());
        assert!(request(vec![(1, 600), (1, 600)]).is_err());
        assert!(request((0..51).map(|i| (i, 1)).collect()).is_err());
    }

    proptest! {
        /// Every line lands in exactly one order, of its SKU's merchant, and the orders' totals
        /// add up to the sum of price × quantity.
        #[test]
        fn split_per_merchant(lines in prop::collection::vec((0u128..30, 1i64..20), 1..20), merchants in 1u128..5) {
            let r = request(lines).unwrap();
            let priced: Vec<PricedSku> = (0u128..30).map(|s| PricedSku {
                sku_id: SkuId::from_uuid(Uuid::from_u128(s)),
                merchant_id: MerchantId::from_uuid(Uuid::from_u128(s % merchants)),
                price: Price::from_rupiah(1_000 + (s as i64) * 500).unwrap(),
                category: Category::ALL[(s as usize) % Category::ALL.len()],
            }).collect();
            let orders = plan_orders(&r, &priced).unwrap();
            let expected: i64 = r.lines().iter().map(|l| {
                let p = priced.iter().find(|p| p.sku_id == l.sku_id).unwrap();
                p.price.money().rupiah() * i64::from(l.quantity.units())
            }).sum();
            prop_assert_eq!(orders.iter().map(|o| o.total.rupiah()).sum::<i64>(), expected);
            for o in &orders {
                prop_assert_eq!(o.fee.rupiah(), o.lines.iter().map(|l| l.fee.rupiah()).sum::<i64>());
                prop_assert!(o.fee <= o.total);
            }
            prop_assert_eq!(orders.iter().map(|o| o.lines.len()).sum::<usize>(), r.lines().len());
            for o in &orders {
                for l in &o.lines {
                    let p = priced.iter().find(|p| p.sku_id == l.sku_id).unwrap();
                    prop_assert_eq!(p.merchant_id, o.merchant_id);
                }
            }
            prop_assert!(orders.windows(2).all(|w| w[0].merchant_id < w[1].merchant_id));
        }
    }
}
