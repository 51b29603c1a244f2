//! Payments of checkouts and the money rules of refunds (DESIGN.md §4).
//!
//! A checkout has one payment covering its orders. The payment is `pending` until the provider's
//! signed callback reports it paid, or `expired` when its time runs out unpaid (its orders are
//! cancelled, their stock returns). Cash on delivery never expires: its orders are accepted at
//! once and the courier's remittance, reported by the same callback, puts the money in escrow.
//!
//! Refunds: the platform fee follows what the merchant keeps. After refunds totalling `r` of an
//! order of total `t` and fee `f`, the fee kept is `f − round_half_up(f × r / t)`; each refund
//! gives back the difference of that figure before and after it, so several partial refunds give
//! back exactly the fee of what was refunded, never more than `f` in all.

use crate::error::DomainError;
use crate::money::Money;

#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash)]
pub enum PaymentStatus {
    Pending,
    Paid,
    Expired,
}

impl PaymentStatus {
    pub fn as_str(self) -> &'static str {
        match self {
            PaymentStatus::Pending => "pending",
            PaymentStatus::Paid => "paid",
            PaymentStatus::Expired => "expired",
        }
    }

    pub fn parse(raw: &str) -> Result<PaymentStatus, DomainError> {
        match raw {
            "pending" => Ok(PaymentStatus::Pending),
            "paid" => Ok(PaymentStatus::Paid),
            "expired" => Ok(PaymentStatus::Expired),
            _ => Err(DomainError::invalid("status", "must be pending, paid or expired")),
        }
    }
}

/// What the buyer needs to pay, as the provider issued it; which fields are set depends on the
/// method (VA: bank code and number; QRIS: the payload; e-wallet: reference and redirect).
#[derive(Debug, Clone, PartialEq, Eq, Default)]
pub struct PaymentInstructions {
    /// The provider's reference of the payment: callbacks and settlement reports name it.
    pub provider_ref: String,
    pub bank_code: Option<String>,
    pub va_number: Option<String>,
    pub qris_payload: Option<String>,
    pub ewallet_ref: Option<String>,
    pub redirect_url: Option<String>,
}

/// The fee the platform keeps of an order of `total` with `fee` once `refunded` has gone back
/// to the buyer (see the module documentation).
pub fn fee_kept(total: Money, fee: Money, refunded: Money) -> Result<Money, DomainError> {
    if refunded > total || fee > total {
        return Err(DomainError::invalid("amount", "refunds may not exceed what was paid"));
    }
    if total == Money::ZERO {
        return Ok(Money::ZERO);
    }
    // i128: fee, refunded ≤ 10^15, so the product cannot overflow.
    let scaled = i128::from(fee.rupiah()) * i128::from(refunded.rupiah());
    let total = i128::from(total.rupiah());
    let given_back = (2 * scaled + total) / (2 * total);
    fee.checked_sub(Money::from_rupiah(given_back as i64)?)
}

/// How a refund of `amount` is funded, given what was refunded before.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct RefundSplit {
    /// The part of the platform fee given back (after release: paid by fee revenue).
    pub fee_reversed: Money,
    /// The rest (after release: paid by the merchant's balance).
    pub from_merchant: Money,
}

/// Checks a refund against what was paid and splits it between the fee and the merchant.
pub fn split_refund(
    total: Money,
    fee: Money,
    refunded_before: Money,
    amount: Money,
) -> Result<RefundSplit, DomainError> {
    if amount == Money::ZERO {
        return Err(DomainError::invalid("amount", "must be at least Rp1"));
    }
    let refundable = total.checked_sub(refunded_before)?;
    if amount > refundable {
        return Err(DomainError::RefundExceedsPaid { refundable, requested: amount });
    }
    let before = fee_kept(total, fee, refunded_before)?;
    let after = fee_kept(total, fee, refunded_before.checked_add(amount)?)?;
    let fee_reversed = before.checked_sub(after)?;
    Ok(RefundSplit { fee_reversed, from_merchant: amount.checked_sub(fee_reversed)? })
}

#[cfg(test)]
mod tests {
    use super::*;
    use proptest::prelude::*;

    fn rp(n: i64) -> Money {
        Money::from_rupiah(n).unwrap()
    }

    #[test]
    fn refunds_give_back_the_fee_of_what_was_refunded() {
        // Rp10,000 order, fee Rp675: refunding half gives back Rp338 (337.5 rounds up).
        let split = split_refund(rp(10_000), rp(675), Money::ZERO, rp(5_000)).unwrap();
        assert_eq!(split, RefundSplit { fee_reversed: rp(338), from_merchant: rp(4_662) });
        // The other half gives back the rest of the fee exactly.
        let split = split_refund(rp(10_000), rp(675), rp(5_000), rp(5_000)).unwrap();
        assert_eq!(split.fee_reversed, rp(337));
        assert!(matches!(
            split_refund(rp(10_000), rp(675), rp(5_000), rp(5_001)),
            Err(DomainError::RefundExceedsPaid { .. })
        ));
        assert!(split_refund(rp(10_000), rp(675), Money::ZERO, Money::ZERO).is_err());
    }

    proptest! {
        /// Any sequence of partial refunds up to the total gives back exactly the fee (never
        /// more), and each refund's parts add up to it.
        #[test]
        fn partial_refunds_add_up(total in 1i64..10_000_000, fee_pct in 0i64..=100, cuts in proptest::collection::vec(1i64..1_000_000, 1..8)) {
            let fee = total * fee_pct / 100;
            let mut refunded = 0i64;
            let mut reversed = 0i64;
            for cut in cuts {
                let amount = cut.min(total - refunded);
                if amount == 0 { break; }
                let split = split_refund(rp(total), rp(fee), rp(refunded), rp(amount)).unwrap();
                prop_assert_eq!(split.fee_reversed.rupiah() + split.from_merchant.rupiah(), amount);
                refunded += amount;
                reversed += split.fee_reversed.rupiah();
                prop_assert!(reversed <= fee);
            }
            let rest = total - refunded;
            if rest > 0 {
                let split = split_refund(rp(total), rp(fee), rp(refunded), rp(rest)).unwrap();
                reversed += split.fee_reversed.rupiah();
            }
            prop_assert_eq!(reversed, fee);
        }
    }
}
