//! Typed, prefixed, time-sortable ids in the TypeID format: `ord_01jd9x…` is the prefix, an
//! underscore and the 128-bit UUIDv7 in 26 characters of lowercase Crockford base32. Because the
//! UUIDv7 starts with the creation time in milliseconds, ids sort by creation time as strings too,
//! which keeps B-tree inserts at the right edge and gives cursor pagination a stable order.
//!
//! The domain only parses and formats ids; making a fresh one (clock + randomness) happens at the
//! edge through [`TypedId::from_uuid`].

use crate::error::DomainError;
use uuid::Uuid;

const ALPHABET: &[u8; 32] = b"0123456789abcdefghjkmnpqrstvwxyz";
const SUFFIX_CHARS: usize = 26;

fn encode(value: u128) -> String {
    let mut out = [0u8; SUFFIX_CHARS];
    for (i, slot) in out.iter_mut().enumerate() {
        let shift = 5 * (SUFFIX_CHARS - 1 - i);
        *slot = ALPHABET[((value >> shift) & 0x1f) as usize];
    }
    out.iter().map(|b| *b as char).collect()
}

fn decode(suffix: &str) -> Option<u128> {
    if suffix.len() != SUFFIX_CHARS {
        return None;
    }
    let bytes = suffix.as_bytes();
    // 26 characters carry 130 bits; the first may only use the low 3.
    if bytes[0] > b'7' {
        return None;
    }
    let mut value: u128 = 0;
    for &b in bytes {
        let digit = ALPHABET.iter().position(|&a| a == b)? as u128;
        value = (value << 5) | digit;
    }
    Some(value)
}

/// Behaviour shared by every id type of the registry below.
pub trait TypedId: Sized + Copy + Eq + std::fmt::Display {
    const PREFIX: &'static str;
    fn from_uuid(uuid: Uuid) -> Self;
    fn uuid(self) -> Uuid;
    fn parse(text: &str) -> Result<Self, DomainError>;
}

macro_rules! typed_ids {
    ($( $(#[$doc:meta])* $name:ident => $prefix:literal, $field:literal; )*) => {$(
        $(#[$doc])*
        #[derive(Debug, Clone, Copy, PartialEq, Eq, PartialOrd, Ord, Hash)]
        pub struct $name(Uuid);

        impl TypedId for $name {
            const PREFIX: &'static str = $prefix;

            fn from_uuid(uuid: Uuid) -> Self {
                $name(uuid)
            }

            fn uuid(self) -> Uuid {
                self.0
            }

            fn parse(text: &str) -> Result<Self, DomainError> {
                let suffix = text
                    .strip_prefix(concat!($prefix, "_"))
                    .ok_or_else(|| DomainError::invalid($field, concat!("must start with `", $prefix, "_`")))?;
                let value = decode(suffix).ok_or_else(|| {
                    DomainError::invalid($field, "must be the prefix and 26 lowercase base32 characters")
                })?;
                Ok($name(Uuid::from_u128(value)))
            }
        }

        impl std::fmt::Display for $name {
            fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
                write!(f, "{}_{}", $prefix, encode(self.0.as_u128()))
            }
        }

        impl std::str::FromStr for $name {
            type Err = DomainError;
            fn from_str(s: &str) -> Result<Self, DomainError> {
                <$name as TypedId>::parse(s)
            }
        }
    )*};
}

typed_ids! {
    /// A seller on the marketplace core.
    MerchantId => "mer", "merchant_id";
    /// A product of a merchant's catalogue.
    ProductId => "prd", "product_id";
    /// A stock-keeping unit: one sellable variant of a product.
    SkuId => "sku", "sku_id";
    /// One buyer checkout, which becomes one order per merchant.
    CheckoutId => "chk", "checkout_id";
    /// One merchant's part of a checkout.
    OrderId => "ord", "order_id";
    /// An outbox event.
    EventId => "evt", "event_id";
    /// An audit entry.
    AuditId => "aud", "audit_id";
    /// A compliance finding.
    FindingId => "fnd", "finding_id";
    /// A data subject's request under UU PDP (an export, a consent withdrawal).
    PdpRequestId => "pdp", "request_id";
    /// An API token (its public id; the secret is never stored).
    TokenId => "tok", "token_id";
    /// A ledger account.
    AccountId => "acc", "account_id";
    /// A ledger transfer; also its idempotency key.
    TransferId => "trf", "transfer_id";
    /// The payment of a checkout.
    PaymentId => "pay", "payment_id";
    /// A refund of (part of) an order.
    RefundId => "rfd", "refund_id";
    /// A provider callback as received.
    CallbackId => "cbk", "callback_id";
    /// A merchant's or channel's webhook subscription.
    WebhookSubscriptionId => "whs", "subscription_id";
    /// One event's delivery to one subscription; also its Standard Webhooks `webhook-id`.
    WebhookDeliveryId => "msg", "delivery_id";
    /// A merchant's withdrawal from its balance to its bank.
    PayoutId => "pyt", "payout_id";
    /// A file of payouts handed to the bank.
    PayoutBatchId => "pbt", "batch_id";
    /// One import of a provider's settlement report, matched against the ledger.
    ReconciliationId => "rcn", "reconciliation_id";
    /// A social-app user's consent to share data with the marketplace (rule R6).
    ConsentId => "cns", "consent_id";
}

#[cfg(test)]
mod tests {
    use super::*;
    use proptest::prelude::*;

    proptest! {
        #[test]
        fn format_then_parse_round_trips(value: u128) {
            let id = OrderId::from_uuid(Uuid::from_u128(value));
            let text = id.to_string();
            prop_assert_eq!(text.len(), 4 + SUFFIX_CHARS);
            prop_assert_eq!(OrderId::parse(&text).unwrap(), id);
        }

        #[test]
        fn string_order_is_numeric_order(a: u128, b: u128) {
            let (x, y) = (SkuId::from_uuid(Uuid::from_u128(a)), SkuId::from_uuid(Uuid::from_u128(b)));
            prop_assert_eq!(x.to_string().cmp(&y.to_string()), a.cmp(&b));
        }
    }

    #[test]
    fn rejects_wrong_prefix_length_and_alphabet() {
        let good = OrderId::from_uuid(Uuid::from_u128(12345)).to_string();
        assert!(MerchantId::parse(&good).is_err());
        assert!(OrderId::parse(&good[..good.len() - 1]).is_err());
        assert!(OrderId::parse(&good.replace('0', "u")).is_err());
        assert!(OrderId::parse("ord_8zzzzzzzzzzzzzzzzzzzzzzzzz").is_err());
        assert!(OrderId::parse("").is_err());
    }
}
