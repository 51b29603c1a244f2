//! Stock of one SKU: units on hand and units reserved for open orders.
//!
//! Invariant (DESIGN.md §8.5): `reserved <= on_hand`, both non-negative. A checkout reserves,
//! shipping takes the reserved units out of stock, cancellation or payment expiry releases them.
//! The store carries out the same rules as conditional SQL updates (a `WHERE` clause per rule);
//! these functions are the reference model the property tests hold both to.

use crate::error::DomainError;
use crate::limits::{LINE_QUANTITY_MAX, STOCK_UNITS_MAX};

/// Units of one SKU in one order line: 1 to [`LINE_QUANTITY_MAX`].
#[derive(Debug, Clone, Copy, PartialEq, Eq, PartialOrd, Ord, Hash)]
pub struct Quantity(u32);

impl Quantity {
    pub fn new(units: i64) -> Result<Quantity, DomainError> {
        if units < 1 || units > i64::from(LINE_QUANTITY_MAX) {
            return Err(DomainError::invalid(
                "quantity",
                format!("must be between 1 and {LINE_QUANTITY_MAX}"),
            ));
        }
        Ok(Quantity(units as u32))
    }

    pub fn units(self) -> u32 {
        self.0
    }
}

#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct StockLevel {
    on_hand: u32,
    reserved: u32,
}

impl StockLevel {
    /// A fresh level with nothing reserved, as a merchant lists or sets it.
    pub fn on_hand(units: i64) -> Result<StockLevel, DomainError> {
        if units < 0 || units > i64::from(STOCK_UNITS_MAX) {
            return Err(DomainError::invalid("stock", format!("must be between 0 and {STOCK_UNITS_MAX}")));
        }
        Ok(StockLevel { on_hand: units as u32, reserved: 0 })
    }

    /// Rebuilds a level read back from the store, asserting the invariant held there.
    pub fn from_stored(on_hand: i64, reserved: i64) -> StockLevel {
        assert!(
            reserved >= 0 && reserved <= on_hand,
            "stored stock breaks invariant: on_hand={on_hand} reserved={reserved}"
        );
        assert!(on_hand <= i64::from(STOCK_UNITS_MAX));
        StockLevel { on_hand: on_hand as u32, reserved: reserved as u32 }
    }

    pub fn units_on_hand(self) -> u32 {
        self.on_hand
    }

    pub fn units_reserved(self) -> u32 {
        self.reserved
    }

    pub fn units_available(self) -> u32 {
        self.on_hand - self.reserved
    }

    pub fn reserve(self, quantity: Quantity) -> Result<StockLevel, DomainError> {
        if self.units_available() < quantity.units() {
            return Err(DomainError::InsufficientStock {
                sku: None,
                available: self.units_available(),
                requested: quantity.units(),
            });
        }
        Ok(StockLevel { reserved: self.reserved + quantity.units(), ..self })
    }

    /// Gives reserved units back (cancellation, payment expiry). Releasing more than is reserved
    /// is a programmer error: the order that reserved them is the only one releasing them.
    pub fn release(self, quantity: Quantity) -> StockLevel {
        assert!(
            self.reserved >= quantity.units(),
            "release of {} exceeds reserved {}",
            quantity.units(),
            self.reserved
        );
        StockLevel { reserved: self.reserved - quantity.units(), ..self }
    }

    /// Reserved units leave the warehouse (shipping).
    pub fn commit_sale(self, quantity: Quantity) -> StockLevel {
        assert!(
            self.reserved >= quantity.units(),
            "sale of {} exceeds reserved {}",
            quantity.units(),
            self.reserved
        );
        StockLevel { on_hand: self.on_hand - quantity.units(), reserved: self.reserved - quantity.units() }
    }

    /// The merchant counts the shelf again. The count may not fall below what open orders hold.
    pub fn set_on_hand(self, units: i64) -> Result<StockLevel, DomainError> {
        let fresh = StockLevel::on_hand(units)?;
        if fresh.on_hand < self.reserved {
            return Err(DomainError::StockBelowReserved { reserved: self.reserved });
        }
        Ok(StockLevel { on_hand: fresh.on_hand, reserved: self.reserved })
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use proptest::prelude::*;

    #[derive(Debug, Clone)]
    enum Step {
        Reserve(u32),
        Release(usize),
        Ship(usize),
        Set(i64),
    }

    fn step() -> impl Strategy<Value = Step> {
        prop_oneof![
            (1u32..20).prop_map(Step::Reserve),
            any::<usize>().prop_map(Step::Release),
            any::<usize>().prop_map(Step::Ship),
            (-5i64..60).prop_map(Step::Set),
        ]
    }

    proptest! {
        /// Any interleaving of checkouts, cancellations, shipments and recounts keeps the
        /// invariant, never sells a unit twice, and accounts for every unit.
        #[test]
        fn interleavings_never_oversell(initial in 0i64..50, steps in prop::collection::vec(step(), 0..200)) {
            let mut level = StockLevel::on_hand(initial).unwrap();
            let mut open: Vec<Quantity> = Vec::new();
            let mut shipped: u64 = 0;
            let mut supplied: u64 = initial as u64;
            for s in steps {
                match s {
                    Step::Reserve(q) => {
                        let q = Quantity::new(q.into()).unwrap();
                        match level.reserve(q) {
                            Ok(next) => { level = next; open.push(q); }
                            Err(DomainError::InsufficientStock { available, requested, .. }) => {
                                prop_assert!(available < requested);
                            }
                            Err(e) => prop_assert!(false, "unexpected {e}"),
                        }
                    }
                    Step::Release(i) if !open.is_empty() => {
                        let q = open.swap_remove(i % open.len());
                        level = level.release(q);
                    }
                    Step::Ship(i) if !open.is_empty() => {
                        let q = open.swap_remove(i % open.len());
                        level = level.commit_sale(q);
                        shipped += u64::from(q.units());
                    }
                    Step::Set(n) => {
                        let before = level.units_on_hand();
                        if let Ok(next) = level.set_on_hand(n) {
                            supplied = supplied + u64::from(next.units_on_hand()) - u64::from(before);
                            level = next;
                        } else {
                            prop_assert!(n < 0 || n < i64::from(level.units_reserved()));
                        }
                    }
                    _ => {}
                }
                prop_assert!(level.units_reserved() <= level.units_on_hand());
                let held: u32 = open.iter().map(|q| q.units()).sum();
                prop_assert_eq!(held, level.units_reserved());
                prop_assert_eq!(supplied, shipped + u64::from(level.units_on_hand()));
            }
        }
    }

    #[test]
    fn quantity_limits() {
        assert!(Quantity::new(0).is_err());
        assert!(Quantity::new(1).is_ok());
        assert!(Quantity::new(i64::from(LINE_QUANTITY_MAX)).is_ok());
        assert!(Quantity::new(i64::from(LINE_QUANTITY_MAX) + 1).is_err());
        assert!(StockLevel::on_hand(-1).is_err());
    }
}
