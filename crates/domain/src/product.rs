//! Catalogue values: product titles, categories, SKU codes and prices.

use crate::error::DomainError;
use crate::money::Money;
use crate::stock::StockLevel;
use crate::text::bounded_text;

#[derive(Debug, Clone, PartialEq, Eq)]
pub struct ProductTitle(String);

impl ProductTitle {
    pub const CHARS_MAX: usize = 200;

    pub fn parse(raw: &str) -> Result<ProductTitle, DomainError> {
        bounded_text("title", raw, Self::CHARS_MAX).map(ProductTitle)
    }

    pub fn as_str(&self) -> &str {
        &self.0
    }
}

macro_rules! categories {
    ($($variant:ident => $text:literal),* $(,)?) => {
        /// Product categories of the catalogue (they drive fee rates and compliance rules).
        #[derive(Debug, Clone, Copy, PartialEq, Eq, Hash)]
        pub enum Category { $($variant),* }

        impl Category {
            pub const ALL: &'static [Category] = &[$(Category::$variant),*];

            pub fn as_str(self) -> &'static str {
                match self { $(Category::$variant => $text),* }
            }

            pub fn parse(raw: &str) -> Result<Category, DomainError> {
                match raw {
                    $($text => Ok(Category::$variant),)*
                    _ => Err(DomainError::invalid("category", concat!("must be one of:" $(, " ", $text)*))),
                }
            }
        }
    };
}

impl Category {
    /// The platform fee rate of the category. Defaults modelled on Indonesian marketplaces'
    /// published seller fees (2024): low-margin electronics lowest, fashion and beauty highest.
    pub fn fee_rate(self) -> crate::fee::RateBps {
        let bps = match self {
            Category::Electronics => 400,
            Category::Automotive => 500,
            Category::Books => 500,
            Category::Food => 650,
            Category::Home => 650,
            Category::Health => 650,
            Category::Sports => 650,
            Category::Toys => 650,
            Category::Fashion => 750,
            Category::Beauty => 750,
        };
        crate::fee::RateBps::new(bps).expect("the table holds valid rates")
    }
}

categories! {
    Fashion => "fashion",
    Beauty => "beauty",
    Food => "food",
    Electronics => "electronics",
    Books => "books",
    Home => "home",
    Health => "health",
    Sports => "sports",
    Toys => "toys",
    Automotive => "automotive",
}

/// A merchant's own code for a SKU: 1 to 64 of `A-Z a-z 0-9 - _ .`, unique within the merchant.
#[derive(Debug, Clone, PartialEq, Eq, Hash, PartialOrd, Ord)]
pub struct SkuCode(String);

impl SkuCode {
    pub const CHARS_MAX: usize = 64;

    pub fn parse(raw: &str) -> Result<SkuCode, DomainError> {
        let ok_chars = raw.bytes().all(|b| b.is_ascii_alphanumeric() || matches!(b, b'-' | b'_' | b'.'));
        if raw.is_empty() || raw.len() > Self::CHARS_MAX || !ok_chars {
            return Err(DomainError::invalid(
                "code",
                "must be 1 to 64 characters of A-Z, a-z, 0-9, `-`, `_` or `.`",
            ));
        }
        Ok(SkuCode(raw.to_owned()))
    }

    pub fn as_str(&self) -> &str {
        &self.0
    }
}

/// A unit price: positive money, at most one billion rupiah per unit.
#[derive(Debug, Clone, Copy, PartialEq, Eq, PartialOrd, Ord, Hash)]
pub struct Price(Money);

impl Price {
    pub const RUPIAH_MAX: i64 = 1_000_000_000;

    pub fn from_rupiah(amount: i64) -> Result<Price, DomainError> {
        if amount <= 0 {
            return Err(DomainError::invalid("price", "must be a positive amount of rupiah"));
        }
        if amount > Self::RUPIAH_MAX {
            return Err(DomainError::invalid("price", "must be at most Rp1,000,000,000 per unit"));
        }
        Ok(Price(Money::from_rupiah(amount)?))
    }

    pub fn money(self) -> Money {
        self.0
    }
}

/// A SKU as a merchant lists it, before it has an id.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct NewSku {
    pub code: SkuCode,
    pub price: Price,
    pub stock: StockLevel,
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn values_parse_or_explain() {
        assert!(Price::from_rupiah(0).is_err());
        assert!(Price::from_rupiah(-5).is_err());
        assert!(Price::from_rupiah(Price::RUPIAH_MAX + 1).is_err());
        assert_eq!(Price::from_rupiah(149_000).unwrap().money().rupiah(), 149_000);
        assert!(SkuCode::parse("KAOS-M.merah_1").is_ok());
        assert!(SkuCode::parse("kaos merah").is_err());
        assert!(SkuCode::parse("").is_err());
        assert_eq!(Category::parse("books").unwrap(), Category::Books);
        let err = Category::parse("weapons").unwrap_err().to_string();
        assert!(err.contains("fashion") && err.contains("automotive"), "{err}");
        for c in Category::ALL {
            assert_eq!(Category::parse(c.as_str()).unwrap(), *c);
        }
    }
}
