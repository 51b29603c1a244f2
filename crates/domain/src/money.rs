//! `Money`: an amount of Indonesian rupiah as an integer. Rupiah has no minor unit in practice,
//! so one unit is one rupiah. No float ever touches it; arithmetic is checked.

use crate::error::DomainError;

/// A non-negative amount of rupiah, at most [`Money::RUPIAH_MAX`].
#[derive(Debug, Clone, Copy, PartialEq, Eq, PartialOrd, Ord, Hash, Default)]
pub struct Money(i64);

impl Money {
    /// One quadrillion rupiah: far above any single amount the platform handles, far below
    /// `i64::MAX`, so that sums of many amounts are still checked rather than wrapped.
    pub const RUPIAH_MAX: i64 = 1_000_000_000_000_000;
    pub const ZERO: Money = Money(0);
    pub const CURRENCY: &'static str = "IDR";

    pub fn from_rupiah(amount: i64) -> Result<Money, DomainError> {
        if amount < 0 {
            return Err(DomainError::invalid("amount", "must not be negative"));
        }
        if amount > Self::RUPIAH_MAX {
            return Err(DomainError::MoneyOverflow);
        }
        Ok(Money(amount))
    }

    pub fn rupiah(self) -> i64 {
        self.0
    }

    pub fn checked_add(self, other: Money) -> Result<Money, DomainError> {
        let sum = self.0.checked_add(other.0).ok_or(DomainError::MoneyOverflow)?;
        Money::from_rupiah(sum)
    }

    /// Subtraction that refuses to go below zero.
    pub fn checked_sub(self, other: Money) -> Result<Money, DomainError> {
        if other.0 > self.0 {
            return Err(DomainError::invalid("amount", "would become negative"));
        }
        Ok(Money(self.0 - other.0))
    }

    pub fn checked_mul(self, units: u32) -> Result<Money, DomainError> {
        let product = self.0.checked_mul(i64::from(units)).ok_or(DomainError::MoneyOverflow)?;
        Money::from_rupiah(product)
    }
}

/// Digits grouped by thousands with `separator`: `group_digits(1250000, '.')` is `1.250.000`
/// (how Indonesians write rupiah), with `','` `1,250,000` (a report in English).
pub fn group_digits(n: u64, separator: char) -> String {
    let digits = n.to_string();
    let mut out = String::with_capacity(digits.len() + digits.len() / 3);
    for (i, c) in digits.chars().enumerate() {
        if i > 0 && (digits.len() - i).is_multiple_of(3) {
            out.push(separator);
        }
        out.push(c);
    }
    out
}

impl std::fmt::Display for Money {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        write!(f, "Rp{}", self.0)
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use proptest::prelude::*;

    #[test]
    fn digits_group_by_thousands() {
        for (n, dots, commas) in [
            (0, "0", "0"),
            (999, "999", "999"),
            (1_000, "1.000", "1,000"),
            (1_250_000, "1.250.000", "1,250,000"),
            (u64::MAX, "18.446.744.073.709.551.615", "18,446,744,073,709,551,615"),
        ] {
            assert_eq!((group_digits(n, '.'), group_digits(n, ',')), (dots.to_owned(), commas.to_owned()));
        }
    }

    #[test]
    fn rejects_negative_and_overflow() {
        assert!(Money::from_rupiah(-1).is_err());
        assert_eq!(Money::from_rupiah(Money::RUPIAH_MAX + 1), Err(DomainError::MoneyOverflow));
        let max = Money::from_rupiah(Money::RUPIAH_MAX).unwrap();
        assert_eq!(max.checked_add(Money::from_rupiah(1).unwrap()), Err(DomainError::MoneyOverflow));
        assert_eq!(max.checked_mul(2), Err(DomainError::MoneyOverflow));
        assert!(Money::ZERO.checked_sub(Money::from_rupiah(1).unwrap()).is_err());
    }

    proptest! {
        #[test]
        fn add_then_sub_is_identity(a in 0..Money::RUPIAH_MAX / 2, b in 0..Money::RUPIAH_MAX / 2) {
            let a = Money::from_rupiah(a).unwrap();
            let b = Money::from_rupiah(b).unwrap();
            prop_assert_eq!(a.checked_add(b).unwrap().checked_sub(b).unwrap(), a);
        }

        #[test]
        fn mul_is_repeated_add(a in 0..1_000_000_000i64, n in 0u32..50) {
            let a = Money::from_rupiah(a).unwrap();
            let mut sum = Money::ZERO;
            for _ in 0..n { sum = sum.checked_add(a).unwrap(); }
            prop_assert_eq!(a.checked_mul(n).unwrap(), sum);
        }
    }
}
