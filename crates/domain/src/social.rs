//! The social shop's legacy formats (DESIGN.md §5): ids of digits, prices as decimal strings
//! (some written the Indonesian way), numeric order status codes, seller types. The gateway
//! and the migration engine read and write these; the core never stores them.
//!
//! Prices: rupiah has no minor unit in practice, so a price must come to whole rupiah.
//! - `149000`, `149000.00`, `149000,00`: plain digits, optionally with zero decimals.
//! - `149.000`, `1.250.000`, `149.000,00`: dots group thousands (the Indonesian way).
//! - Ambiguous: one dot followed by exactly three digits that are not `000` (`1.500`): the
//!   legacy app stored both Indonesian thousands and English decimals that way, so `1.500`
//!   may be Rp1,500 or Rp1.5. It is refused with that explanation rather than guessed.
//!   `149.000` is not ambiguous: nobody writes Rp149 as `149.000`.
//! - Refused: fractions of a rupiah (`149.000,50`), signs, letters, empty strings, mixed
//!   separators that read neither way (`1,500.00`, `1.50.0`).

use crate::checkout::PaymentMethod;
use crate::error::DomainError;
use crate::merchant::Origin;
use crate::money::Money;
use crate::order::OrderStatus;

/// Longest social id: a 64-bit number has at most 20 digits.
pub const SOCIAL_ID_DIGITS_MAX: usize = 20;

/// A legacy id: 1 to 20 ASCII digits (shop, product, SKU, order, buyer).
#[derive(Debug, Clone, PartialEq, Eq, Hash, PartialOrd, Ord)]
pub struct SocialId(String);

impl SocialId {
    pub fn parse(field: &'static str, raw: &str) -> Result<SocialId, DomainError> {
        if raw.is_empty() || raw.len() > SOCIAL_ID_DIGITS_MAX || !raw.bytes().all(|b| b.is_ascii_digit()) {
            return Err(DomainError::invalid(
                field,
                "must be a social shop id: 1 to 20 digits, e.g. `7311234567890123`",
            ));
        }
        Ok(SocialId(raw.to_owned()))
    }

    /// A new id the way the social shop makes them: milliseconds since 2020-01-01 in the high
    /// bits (so ids sort by creation time) and 22 random bits below. `now_ms` and `random`
    /// come from the caller (the domain reads no clock and no randomness).
    pub fn generate(now_ms: i64, random: u32) -> SocialId {
        const EPOCH_MS: i64 = 1_577_836_800_000;
        let high = (now_ms - EPOCH_MS).max(0) as u64;
        SocialId(((high << 22) | u64::from(random & 0x3f_ffff)).to_string())
    }

    pub fn as_str(&self) -> &str {
        &self.0
    }
}

impl std::fmt::Display for SocialId {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.write_str(&self.0)
    }
}

/// Why a legacy price does not read as an amount of rupiah.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum PriceProblem {
    /// Could be thousands or decimals (`1.500`).
    Ambiguous { thousands: i64 },
    /// Not a number in either way of writing (`abc`, `1,500.00`, `-5`).
    Unparseable,
    /// Comes to a fraction of a rupiah (`149.000,50`).
    Fractional,
    /// Zero, or more than the largest supported amount.
    OutOfRange,
}

impl PriceProblem {
    /// A stable code (problem `type`, quarantine reason).
    pub fn code(&self) -> &'static str {
        match self {
            PriceProblem::Ambiguous { .. } => "ambiguous-price",
            PriceProblem::Unparseable => "unparseable-price",
            PriceProblem::Fractional => "fractional-price",
            PriceProblem::OutOfRange => "price-out-of-range",
        }
    }

    pub fn explain(&self, raw: &str) -> String {
        match self {
            PriceProblem::Ambiguous { thousands } => format!(
                "`{raw}` is ambiguous: it reads as Rp{thousands} (dots group thousands) or as a decimal fraction; write `{thousands}` for whole rupiah"
            ),
            PriceProblem::Unparseable => {
                format!(
                    "`{raw}` is not a price: write whole rupiah as digits (`149000`) or grouped the Indonesian way (`149.000`)"
                )
            }
            PriceProblem::Fractional => format!("`{raw}` is a fraction of a rupiah: prices are whole rupiah"),
            PriceProblem::OutOfRange => {
                format!("`{raw}` must be at least Rp1 and at most Rp{}", Money::RUPIAH_MAX)
            }
        }
    }

    pub fn into_error(self, field: &'static str, raw: &str) -> DomainError {
        DomainError::invalid(field, self.explain(raw))
    }
}

/// Reads a legacy price string as whole rupiah (rules in the module docs). Zero is refused.
pub fn parse_price(raw: &str) -> Result<Money, PriceProblem> {
    let s = raw.trim();
    if s.is_empty() || !s.bytes().all(|b| b.is_ascii_digit() || b == b'.' || b == b',') {
        return Err(PriceProblem::Unparseable);
    }
    let dots = s.bytes().filter(|&b| b == b'.').count();
    let commas = s.bytes().filter(|&b| b == b',').count();
    let (whole, fraction): (String, &str) = match (dots, commas) {
        (0, 0) => (s.to_owned(), ""),
        // `149000,00`: a decimal comma.
        (0, 1) => split_decimal(s, ',')?,
        // `149000.00` (English decimals, one or two digits) or `149.000` (one thousands group).
        (1, 0) => {
            let (head, tail) = s.split_once('.').ok_or(PriceProblem::Unparseable)?;
            if tail.len() == 3 && (1..=3).contains(&head.len()) && !head.is_empty() {
                if tail == "000" {
                    (format!("{head}{tail}"), "")
                } else {
                    let thousands =
                        format!("{head}{tail}").parse::<i64>().map_err(|_| PriceProblem::Unparseable)?;
                    return Err(PriceProblem::Ambiguous { thousands });
                }
            } else if (1..=2).contains(&tail.len()) && !head.is_empty() {
                (head.to_owned(), tail)
            } else {
                return Err(PriceProblem::Unparseable);
            }
        }
        // `1.250.000` or `149.000,50`: Indonesian grouping, optional decimal comma.
        (_, 0 | 1) => {
            let (grouped, fraction) = match s.split_once(',') {
                Some((grouped, fraction)) => (grouped, fraction),
                None => (s, ""),
            };
            if commas == 1 && !(1..=2).contains(&fraction.len()) {
                return Err(PriceProblem::Unparseable);
            }
            (ungroup(grouped)?, fraction)
        }
        _ => return Err(PriceProblem::Unparseable),
    };
    if whole.is_empty() || whole.len() > 19 {
        return Err(if whole.is_empty() { PriceProblem::Unparseable } else { PriceProblem::OutOfRange });
    }
    if fraction.bytes().any(|b| b != b'0') {
        return Err(PriceProblem::Fractional);
    }
    let rupiah: i64 = whole.parse().map_err(|_| PriceProblem::OutOfRange)?;
    if rupiah == 0 {
        return Err(PriceProblem::OutOfRange);
    }
    Money::from_rupiah(rupiah).map_err(|_| PriceProblem::OutOfRange)
}

fn split_decimal(s: &str, separator: char) -> Result<(String, &str), PriceProblem> {
    let (head, tail) = s.split_once(separator).ok_or(PriceProblem::Unparseable)?;
    if head.is_empty() || !(1..=2).contains(&tail.len()) || head.contains('.') {
        return Err(PriceProblem::Unparseable);
    }
    Ok((head.to_owned(), tail))
}

/// `1.250.000` → `1250000`: first group 1 to 3 digits, every other group exactly 3.
fn ungroup(grouped: &str) -> Result<String, PriceProblem> {
    let mut groups = grouped.split('.');
    let first = groups.next().unwrap_or("");
    if !(1..=3).contains(&first.len()) || first.contains(',') {
        return Err(PriceProblem::Unparseable);
    }
    let mut whole = first.to_owned();
    for group in groups {
        if group.len() != 3 || group.contains(',') {
            return Err(PriceProblem::Unparseable);
        }
        whole.push_str(group);
    }
    Ok(whole)
}

/// How the social contract writes an amount: whole rupiah as a decimal string (`"149000"`).
pub fn format_price(amount: Money) -> String {
    amount.rupiah().to_string()
}

/// The legacy order status codes and what each means in the core's state machine.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash)]
pub enum LegacyStatus {
    Unpaid,
    AwaitingShipment,
    AwaitingCollection,
    InTransit,
    Delivered,
    Completed,
    Cancelled,
}

impl LegacyStatus {
    pub const ALL: [LegacyStatus; 7] = [
        LegacyStatus::Unpaid,
        LegacyStatus::AwaitingShipment,
        LegacyStatus::AwaitingCollection,
        LegacyStatus::InTransit,
        LegacyStatus::Delivered,
        LegacyStatus::Completed,
        LegacyStatus::Cancelled,
    ];

    pub fn code(self) -> i64 {
        match self {
            LegacyStatus::Unpaid => 100,
            LegacyStatus::AwaitingShipment => 111,
            LegacyStatus::AwaitingCollection => 112,
            LegacyStatus::InTransit => 121,
            LegacyStatus::Delivered => 122,
            LegacyStatus::Completed => 130,
            LegacyStatus::Cancelled => 140,
        }
    }

    pub fn from_code(code: i64) -> Result<LegacyStatus, DomainError> {
        LegacyStatus::ALL.into_iter().find(|s| s.code() == code).ok_or_else(|| {
            DomainError::invalid(
                "status",
                format!(
                    "{code} is not an order status code: use 100 unpaid, 111 awaiting shipment, 112 awaiting collection, 121 in transit, 122 delivered, 130 completed or 140 cancelled"
                ),
            )
        })
    }

    /// The core status of an order in this legacy status. Awaiting collection (the seller
    /// booked the courier, who has not picked the parcel up) is still `paid` in the core.
    pub fn to_core(self) -> OrderStatus {
        match self {
            LegacyStatus::Unpaid => OrderStatus::AwaitingPayment,
            LegacyStatus::AwaitingShipment | LegacyStatus::AwaitingCollection => OrderStatus::Paid,
            LegacyStatus::InTransit => OrderStatus::Shipped,
            LegacyStatus::Delivered => OrderStatus::Delivered,
            LegacyStatus::Completed => OrderStatus::Completed,
            LegacyStatus::Cancelled => OrderStatus::Cancelled,
        }
    }

    pub fn from_core(status: OrderStatus) -> LegacyStatus {
        match status {
            OrderStatus::AwaitingPayment => LegacyStatus::Unpaid,
            OrderStatus::Paid => LegacyStatus::AwaitingShipment,
            OrderStatus::Shipped => LegacyStatus::InTransit,
            OrderStatus::Delivered => LegacyStatus::Delivered,
            OrderStatus::Completed => LegacyStatus::Completed,
            OrderStatus::Cancelled => LegacyStatus::Cancelled,
        }
    }
}

/// `LOCAL` or `CROSS_BORDER`, as the legacy shop row writes the seller type.
pub fn parse_seller_type(raw: &str) -> Result<Origin, DomainError> {
    match raw {
        "LOCAL" => Ok(Origin::Local),
        "CROSS_BORDER" => Ok(Origin::CrossBorder),
        _ => Err(DomainError::invalid("seller_type", "must be `LOCAL` or `CROSS_BORDER`")),
    }
}

pub fn seller_type(origin: Origin) -> &'static str {
    match origin {
        Origin::Local => "LOCAL",
        Origin::CrossBorder => "CROSS_BORDER",
    }
}

/// The legacy payment method names (`VA`, `QRIS`, `EWALLET`, `COD`).
pub fn parse_payment_method(raw: &str) -> Result<PaymentMethod, DomainError> {
    match raw {
        "VA" => Ok(PaymentMethod::VirtualAccount),
        "QRIS" => Ok(PaymentMethod::Qris),
        "EWALLET" => Ok(PaymentMethod::Ewallet),
        "COD" => Ok(PaymentMethod::CashOnDelivery),
        _ => Err(DomainError::invalid("payment_method", "must be `VA`, `QRIS`, `EWALLET` or `COD`")),
    }
}

pub fn payment_method_name(method: PaymentMethod) -> &'static str {
    match method {
        PaymentMethod::VirtualAccount => "VA",
        PaymentMethod::Qris => "QRIS",
        PaymentMethod::Ewallet => "EWALLET",
        PaymentMethod::CashOnDelivery => "COD",
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use proptest::prelude::*;

    fn rp(raw: &str) -> Result<i64, PriceProblem> {
        parse_price(raw).map(Money::rupiah)
    }

    #[test]
    fn prices_read_both_ways_of_writing() {
        assert_eq!(rp("149000"), Ok(149_000));
        assert_eq!(rp("149000.00"), Ok(149_000));
        assert_eq!(rp("149000,00"), Ok(149_000));
        assert_eq!(rp("149.000"), Ok(149_000));
        assert_eq!(rp("1.250.000"), Ok(1_250_000));
        assert_eq!(rp("149.000,00"), Ok(149_000));
        assert_eq!(rp(" 25000 "), Ok(25_000));
    }

    #[test]
    fn bad_prices_say_why() {
        assert_eq!(rp("1.500"), Err(PriceProblem::Ambiguous { thousands: 1500 }));
        assert_eq!(rp("149.000,50"), Err(PriceProblem::Fractional));
        assert_eq!(rp("149000.5"), Err(PriceProblem::Fractional));
        assert_eq!(rp("1,500.00"), Err(PriceProblem::Unparseable));
        assert_eq!(rp("1.50.0"), Err(PriceProblem::Unparseable));
        assert_eq!(rp("-5"), Err(PriceProblem::Unparseable));
        assert_eq!(rp("abc"), Err(PriceProblem::Unparseable));
        assert_eq!(rp(""), Err(PriceProblem::Unparseable));
        assert_eq!(rp("0"), Err(PriceProblem::OutOfRange));
        assert_eq!(rp("99999999999999999999"), Err(PriceProblem::OutOfRange));
        assert!(PriceProblem::Ambiguous { thousands: 1500 }.explain("1.500").contains("Rp1500"));
    }

    #[test]
    fn status_codes_round_trip() {
        for status in LegacyStatus::ALL {
            assert_eq!(LegacyStatus::from_code(status.code()), Ok(status));
        }
        assert!(LegacyStatus::from_code(999).is_err());
        for status in OrderStatus::ALL {
            assert_eq!(LegacyStatus::from_core(status).to_core(), status);
        }
    }

    #[test]
    fn social_ids_are_digits() {
        assert!(SocialId::parse("id", "7311234567890123").is_ok());
        assert!(SocialId::parse("id", "").is_err());
        assert!(SocialId::parse("id", "12a").is_err());
        assert!(SocialId::parse("id", "123456789012345678901").is_err());
        let a = SocialId::generate(1_800_000_000_000, 5);
        let b = SocialId::generate(1_800_000_000_001, 0);
        assert!(a.as_str().len() <= SOCIAL_ID_DIGITS_MAX);
        assert!(a.as_str().parse::<u64>().unwrap() < b.as_str().parse::<u64>().unwrap());
    }

    proptest! {
        /// Every whole amount written either way reads back as itself.
        #[test]
        fn formatted_prices_read_back(rupiah in 1i64..=1_000_000_000_000) {
            let plain = rupiah.to_string();
            prop_assert_eq!(rp(&plain), Ok(rupiah));
            prop_assert_eq!(rp(&format!("{plain}.00")), Ok(rupiah));
            let digits: Vec<char> = plain.chars().collect();
            let mut grouped = String::new();
            for (i, c) in digits.iter().enumerate() {
                if i > 0 && (digits.len() - i).is_multiple_of(3) { grouped.push('.'); }
                grouped.push(*c);
            }
            let read = rp(&grouped);
            // One group of three that is not `000` is the ambiguous case, by rule.
            if grouped.matches('.').count() == 1 && !grouped.ends_with(".000") {
                prop_assert_eq!(read, Err(PriceProblem::Ambiguous { thousands: rupiah }));
            } else {
                prop_assert_eq!(read, Ok(rupiah));
            }
        }

        /// No string makes the parser panic, and what it accepts is a positive amount.
        #[test]
        fn any_string_is_read_or_refused(raw in "[0-9.,a -]{0,24}") {
            if let Ok(money) = parse_price(&raw) { prop_assert!(money.rupiah() > 0); }
        }
    }
}
