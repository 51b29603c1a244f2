//! The platform fee of a sale: `(price − seller discount) × category rate`, in rupiah, rounded
//! half up to the whole rupiah (a half rupiah goes to the platform). Rates are basis points
//! (1/100 of a percent: 7.5% = 750), never floats.
//!
//! Example from the payments issue: Rp10,000 with a Rp1,000 seller discount at 7.5% →
//! 9,000 × 750 / 10,000 = Rp675.

use crate::error::DomainError;
use crate::money::Money;

/// A fee rate in basis points, 0 to 10,000 (0% to 100%).
#[derive(Debug, Clone, Copy, PartialEq, Eq, PartialOrd, Ord)]
pub struct RateBps(u32);

impl RateBps {
    pub fn new(bps: u32) -> Result<RateBps, DomainError> {
        if bps > 10_000 {
            return Err(DomainError::invalid("rate_bps", "must be between 0 and 10000 (0% to 100%)"));
        }
        Ok(RateBps(bps))
    }

    pub fn bps(self) -> u32 {
        self.0
    }
}

/// The fee on `price` after `seller_discount` (which may not exceed the price).
pub fn platform_fee(price: Money, seller_discount: Money, rate: RateBps) -> Result<Money, DomainError> {
    let base = price
        .checked_sub(seller_discount)
        .map_err(|_| DomainError::invalid("seller_discount", "may not exceed the price"))?;
    // i128: base ≤ 10^15 and rate ≤ 10^4, so the product cannot overflow.
    let scaled = i128::from(base.rupiah()) * i128::from(rate.bps());
    let fee = (scaled + 5_000) / 10_000;
    Money::from_rupiah(i64::try_from(fee).map_err(|_| DomainError::MoneyOverflow)?)
}

#[cfg(test)]
mod tests {
    use super::*;
    use proptest::prelude::*;

    fn rp(n: i64) -> Money {
        Money::from_rupiah(n).unwrap()
    }

    #[test]
    fn the_documented_example_and_the_rounding_rule() {
        assert_eq!(platform_fee(rp(10_000), rp(1_000), RateBps::new(750).unwrap()).unwrap(), rp(675));
        // 1,001 × 5% = 50.05 → 50; 1,010 × 5% = 50.5 → 51 (half up); 1,030 × 5% = 51.5 → 52.
        let five = RateBps::new(500).unwrap();
        assert_eq!(platform_fee(rp(1_001), Money::ZERO, five).unwrap(), rp(50));
        assert_eq!(platform_fee(rp(1_010), Money::ZERO, five).unwrap(), rp(51));
        assert_eq!(platform_fee(rp(1_030), Money::ZERO, five).unwrap(), rp(52));
        assert!(platform_fee(rp(100), rp(101), five).is_err());
        assert!(RateBps::new(10_001).is_err());
    }

    proptest! {
        /// The fee never exceeds the discounted price, grows with the price and the rate, and
        /// is within half a rupiah of the exact product.
        #[test]
        fn bounded_monotone_and_exact_to_half_a_rupiah(price in 0i64..1_000_000_000_000, discount_part in 0u32..=100, bps in 0u32..=10_000) {
            let discount = price / 100 * i64::from(discount_part);
            let rate = RateBps::new(bps).unwrap();
            let fee = platform_fee(rp(price), rp(discount), rate).unwrap().rupiah();
            let base = price - discount;
            prop_assert!(fee <= base);
            let exact_times_10k = i128::from(base) * i128::from(bps);
            prop_assert!((i128::from(fee) * 10_000 - exact_times_10k).abs() <= 5_000);
            if bps < 10_000 {
                let higher = platform_fee(rp(price), rp(discount), RateBps::new(bps + 1).unwrap()).unwrap().rupiah();
                prop_assert!(higher >= fee);
            }
            let more = platform_fee(rp(price + 1), rp(discount), rate).unwrap().rupiah();
            prop_assert!(more >= fee);
        }
    }
}
