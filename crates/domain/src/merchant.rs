//! Merchants: sellers of either origin, with the identity the regulator asks for.

use crate::error::DomainError;
use crate::id::MerchantId;
use crate::text::bounded_text;
use crate::time::Timestamp;

/// Where a merchant sells from. Cross-border sellers ship directly from abroad and fall under
/// the import rules of the trade regulation.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash)]
pub enum Origin {
    Local,
    CrossBorder,
}

impl Origin {
    pub fn as_str(self) -> &'static str {
        match self {
            Origin::Local => "local",
            Origin::CrossBorder => "cross_border",
        }
    }

    pub fn parse(raw: &str) -> Result<Origin, DomainError> {
        match raw {
            "local" => Ok(Origin::Local),
            "cross_border" => Ok(Origin::CrossBorder),
            _ => Err(DomainError::invalid("origin", "must be `local` or `cross_border`")),
        }
    }
}

/// The 38 provinces of Indonesia, as written by the statistics bureau.
pub const PROVINCES: [&str; 38] = [
    "Aceh",
    "Sumatera Utara",
    "Sumatera Barat",
    "Riau",
    "Jambi",
    "Sumatera Selatan",
    "Bengkulu",
    "Lampung",
    "Kepulauan Bangka Belitung",
    "Kepulauan Riau",
    "DKI Jakarta",
    "Jawa Barat",
    "Jawa Tengah",
    "DI Yogyakarta",
    "Jawa Timur",
    "Banten",
    "Bali",
    "Nusa Tenggara Barat",
    "Nusa Tenggara Timur",
    "Kalimantan Barat",
    "Kalimantan Tengah",
    "Kalimantan Selatan",
    "Kalimantan Timur",
    "Kalimantan Utara",
    "Sulawesi Utara",
    "Sulawesi Tengah",
    "Sulawesi Selatan",
    "Sulawesi Tenggara",
    "Gorontalo",
    "Sulawesi Barat",
    "Maluku",
    "Maluku Utara",
    "Papua",
    "Papua Barat",
    "Papua Selatan",
    "Papua Tengah",
    "Papua Pegunungan",
    "Papua Barat Daya",
];

/// One of [`PROVINCES`], matched case-insensitively. A cross-border merchant has `Overseas`.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash)]
pub struct Province(Option<&'static str>);

impl Province {
    pub const OVERSEAS: Province = Province(None);

    pub fn parse(raw: &str) -> Result<Province, DomainError> {
        let raw = raw.trim();
        if raw.eq_ignore_ascii_case("overseas") {
            return Ok(Province::OVERSEAS);
        }
        PROVINCES.iter().find(|p| p.eq_ignore_ascii_case(raw)).map(|p| Province(Some(p))).ok_or_else(|| {
            DomainError::invalid(
                "province",
                "must be one of the 38 Indonesian provinces (e.g. `Jawa Barat`) or `overseas`",
            )
        })
    }

    pub fn as_str(self) -> &'static str {
        self.0.unwrap_or("overseas")
    }
}

/// Nomor Induk Berusaha: the 13-digit business identification number of the OSS system.
#[derive(Debug, Clone, PartialEq, Eq, Hash)]
pub struct Nib(String);

impl Nib {
    pub fn parse(raw: &str) -> Result<Nib, DomainError> {
        let raw = raw.trim();
        if raw.len() != 13 || !raw.bytes().all(|b| b.is_ascii_digit()) {
            return Err(DomainError::invalid("nib", "must be the 13-digit Nomor Induk Berusaha"));
        }
        Ok(Nib(raw.to_owned()))
    }

    pub fn as_str(&self) -> &str {
        &self.0
    }
}

#[derive(Debug, Clone, PartialEq, Eq)]
pub struct MerchantName(String);

impl MerchantName {
    pub const CHARS_MAX: usize = 100;

    pub fn parse(raw: &str) -> Result<MerchantName, DomainError> {
        bounded_text("name", raw, Self::CHARS_MAX).map(MerchantName)
    }

    pub fn as_str(&self) -> &str {
        &self.0
    }
}

#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Merchant {
    pub id: MerchantId,
    pub name: MerchantName,
    pub origin: Origin,
    pub province: Province,
    /// Cross-border sellers have no Indonesian business number.
    pub nib: Option<Nib>,
    pub created_at: Timestamp,
}

impl Merchant {
    /// Builds a merchant, checking the rules that tie fields together: a local merchant is in an
    /// Indonesian province and has an NIB; a cross-border one is overseas.
    pub fn new(
        id: MerchantId,
        name: MerchantName,
        origin: Origin,
        province: Province,
        nib: Option<Nib>,
        created_at: Timestamp,
    ) -> Result<Merchant, DomainError> {
        match origin {
            Origin::Local if province == Province::OVERSEAS => {
                return Err(DomainError::invalid(
                    "province",
                    "a local merchant must be in an Indonesian province",
                ));
            }
            Origin::Local if nib.is_none() => {
                return Err(DomainError::invalid("nib", "a local merchant must have its 13-digit NIB"));
            }
            _ => {}
        }
        Ok(Merchant { id, name, origin, province, nib, created_at })
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::id::TypedId;
    use uuid::Uuid;

    #[test]
    fn merchant_rules() {
        let id = MerchantId::from_uuid(Uuid::from_u128(1));
        let name = MerchantName::parse("Toko Batik Sari").unwrap();
        let t = Timestamp::from_unix_ms(0);
        let nib = Some(Nib::parse("1234567890123").unwrap());
        let bali = Province::parse("bali").unwrap();
        assert_eq!(bali.as_str(), "Bali");
        assert!(Merchant::new(id, name.clone(), Origin::Local, bali, nib.clone(), t).is_ok());
        assert!(Merchant::new(id, name.clone(), Origin::Local, bali, None, t).is_err());
        assert!(Merchant::new(id, name.clone(), Origin::Local, Province::OVERSEAS, nib, t).is_err());
        assert!(Merchant::new(id, name, Origin::CrossBorder, Province::OVERSEAS, None, t).is_ok());
        assert!(Province::parse("Atlantis").is_err());
        assert!(Nib::parse("12345").is_err());
    }
}
