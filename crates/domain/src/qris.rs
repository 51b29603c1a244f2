//! QRIS: the Indonesian standard for QR payments, an EMVCo merchant-presented QR payload.
//! A payload is a list of TLV fields (two-digit tag, two-digit length, value) ending with the
//! CRC (tag 63), a CRC-16/CCITT-FALSE over everything before the CRC's value, `6304` included.
//!
//! Fields written for a dynamic (per-payment) QR: 00 payload format `01`; 01 point of
//! initiation `12` (dynamic); 51 the national merchant account template (00 `ID.CO.QRIS.WWW`,
//! 02 the NMID, 03 the merchant criteria); 52 merchant category code; 53 currency `360` (IDR);
//! 54 amount; 58 country `ID`; 59 merchant name; 60 city; 62 additional data (01 bill number);
//! 63 CRC.

use crate::error::DomainError;
use crate::money::Money;

pub const GLOBALLY_UNIQUE_ID: &str = "ID.CO.QRIS.WWW";

/// CRC-16/CCITT-FALSE: polynomial 0x1021, initial value 0xFFFF, no reflection, no final xor.
pub fn crc16_ccitt_false(bytes: &[u8]) -> u16 {
    let mut crc: u16 = 0xFFFF;
    for &byte in bytes {
        crc ^= u16::from(byte) << 8;
        for _ in 0..8 {
            crc = if crc & 0x8000 != 0 { (crc << 1) ^ 0x1021 } else { crc << 1 };
        }
    }
    crc
}

/// What a QRIS payload says.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Qris {
    /// `11` static, `12` dynamic.
    pub point_of_initiation: String,
    /// National Merchant ID (from the merchant account template, tag 51.02).
    pub nmid: String,
    /// Merchant criteria (tag 51.03): UMI, UKE, UME, UBE.
    pub criteria: String,
    pub merchant_category_code: String,
    pub amount: Option<Money>,
    pub merchant_name: String,
    pub merchant_city: String,
    pub bill_number: Option<String>,
}

fn field(tag: &str, value: &str) -> Result<String, DomainError> {
    if value.len() > 99 || !value.is_ascii() {
        return Err(DomainError::invalid("qris", format!("field {tag} must be at most 99 ASCII characters")));
    }
    Ok(format!("{tag}{:02}{value}", value.len()))
}

/// Builds the payload of a dynamic QRIS for one payment.
pub fn encode(qris: &Qris) -> Result<String, DomainError> {
    let text = |field_name: &'static str, value: &str, max: usize| -> Result<(), DomainError> {
        if value.is_empty() || value.len() > max || !value.is_ascii() {
            return Err(DomainError::invalid(field_name, format!("must be 1 to {max} ASCII characters")));
        }
        Ok(())
    };
    text("merchant_name", &qris.merchant_name, 25)?;
    text("merchant_city", &qris.merchant_city, 15)?;
    text("nmid", &qris.nmid, 30)?;
    if qris.merchant_category_code.len() != 4
        || !qris.merchant_category_code.bytes().all(|b| b.is_ascii_digit())
    {
        return Err(DomainError::invalid("merchant_category_code", "must be 4 digits"));
    }
    let account =
        [field("00", GLOBALLY_UNIQUE_ID)?, field("02", &qris.nmid)?, field("03", &qris.criteria)?].concat();
    let mut payload = [
        field("00", "01")?,
        field("01", &qris.point_of_initiation)?,
        field("51", &account)?,
        field("52", &qris.merchant_category_code)?,
        field("53", "360")?,
    ]
    .concat();
    if let Some(amount) = qris.amount {
        payload.push_str(&field("54", &amount.rupiah().to_string())?);
    }
    payload.push_str(&field("58", "ID")?);
    payload.push_str(&field("59", &qris.merchant_name)?);
    payload.push_str(&field("60", &qris.merchant_city)?);
    if let Some(bill) = &qris.bill_number {
        text("bill_number", bill, 25)?;
        payload.push_str(&field("62", &field("01", bill)?)?);
    }
    payload.push_str("6304");
    let crc = crc16_ccitt_false(payload.as_bytes());
    payload.push_str(&format!("{crc:04X}"));
    Ok(payload)
}

/// Splits TLV fields; refuses truncated or malformed ones.
fn fields(text: &str) -> Result<Vec<(&str, &str)>, DomainError> {
    let bad = |why: String| DomainError::invalid("qris", why);
    let mut out = Vec::new();
    let mut rest = text;
    while !rest.is_empty() {
        if rest.len() < 4 || !rest.is_char_boundary(4) {
            return Err(bad("a field is cut short".to_owned()));
        }
        let (tag, len) = (&rest[..2], &rest[2..4]);
        if !tag.bytes().all(|b| b.is_ascii_digit()) || !len.bytes().all(|b| b.is_ascii_digit()) {
            return Err(bad(format!("`{tag}{len}` is not a tag and a length")));
        }
        let len: usize = len.parse().map_err(|_| bad("bad length".to_owned()))?;
        if rest.len() < 4 + len || !rest.is_char_boundary(4 + len) {
            return Err(bad(format!("field {tag} claims {len} characters but the payload ends")));
        }
        out.push((tag, &rest[4..4 + len]));
        rest = &rest[4 + len..];
    }
    Ok(out)
}

/// Parses and checks a payload: TLV structure, the CRC, and the fields QRIS requires.
pub fn decode(payload: &str) -> Result<Qris, DomainError> {
    let bad = |why: &str| DomainError::invalid("qris", why.to_owned());
    if !payload.is_ascii() || payload.len() < 8 {
        return Err(bad("a QRIS payload is ASCII and ends with the CRC field 6304XXXX"));
    }
    let (body, crc_text) = payload.split_at(payload.len() - 4);
    if !body.ends_with("6304") {
        return Err(bad("the payload must end with the CRC field 6304XXXX"));
    }
    let stated =
        u16::from_str_radix(crc_text, 16).map_err(|_| bad("the CRC must be 4 hexadecimal digits"))?;
    if stated != crc16_ccitt_false(body.as_bytes()) {
        return Err(bad("the CRC does not match the payload (damaged or altered)"));
    }
    let all = fields(payload)?;
    let get = |tag: &str| all.iter().find(|(t, _)| *t == tag).map(|(_, v)| *v);
    if get("00") != Some("01") {
        return Err(bad("field 00 (payload format) must be 01"));
    }
    if get("53") != Some("360") {
        return Err(bad("field 53 (currency) must be 360 (IDR)"));
    }
    if get("58") != Some("ID") {
        return Err(bad("field 58 (country) must be ID"));
    }
    let account = fields(get("51").ok_or_else(|| bad("field 51 (QRIS merchant account) is missing"))?)?;
    let sub = |tag: &str| account.iter().find(|(t, _)| *t == tag).map(|(_, v)| (*v).to_owned());
    if sub("00").as_deref() != Some(GLOBALLY_UNIQUE_ID) {
        return Err(bad("field 51.00 must be ID.CO.QRIS.WWW"));
    }
    let amount = get("54")
        .map(|a| {
            a.parse::<i64>()
                .map_err(|_| bad("field 54 (amount) must be whole rupiah"))
                .and_then(Money::from_rupiah)
        })
        .transpose()?;
    let bill_number = get("62")
        .map(fields)
        .transpose()?
        .and_then(|f| f.iter().find(|(t, _)| *t == "01").map(|(_, v)| (*v).to_owned()));
    Ok(Qris {
        point_of_initiation: get("01").unwrap_or("11").to_owned(),
        nmid: sub("02").ok_or_else(|| bad("field 51.02 (NMID) is missing"))?,
        criteria: sub("03").unwrap_or_default(),
        merchant_category_code: get("52")
            .ok_or_else(|| bad("field 52 (merchant category) is missing"))?
            .to_owned(),
        amount,
        merchant_name: get("59").ok_or_else(|| bad("field 59 (merchant name) is missing"))?.to_owned(),
        merchant_city: get("60").ok_or_else(|| bad("field 60 (merchant city) is missing"))?.to_owned(),
        bill_number,
    })
}

#[cfg(test)]
mod tests {
    use super::*;
    use proptest::prelude::*;

    fn sample(amount: i64, bill: &str) -> Qris {
        Qris {
            point_of_initiation: "12".to_owned(),
            nmid: "ID1023270112345".to_owned(),
            criteria: "UMI".to_owned(),
            merchant_category_code: "5999".to_owned(),
            amount: Some(Money::from_rupiah(amount).unwrap()),
            merchant_name: "JEMBATAN MARKETPLACE".to_owned(),
            merchant_city: "JAKARTA".to_owned(),
            bill_number: Some(bill.to_owned()),
        }
    }

    #[test]
    fn crc_matches_the_standard_check_value() {
        // The catalogued check value of CRC-16/CCITT-FALSE over "123456789".
        assert_eq!(crc16_ccitt_false(b"123456789"), 0x29B1);
    }

    #[test]
    fn a_dynamic_payload_has_the_required_fields_in_order() {
        let payload = encode(&sample(149_000, "pay_01abc")).unwrap();
        assert!(payload.starts_with("000201010212"), "{payload}");
        assert!(payload.contains("0014ID.CO.QRIS.WWW"));
        assert!(payload.contains("5303360") && payload.contains("5406149000") && payload.contains("5802ID"));
        assert!(payload.contains("62130109pay_01abc"));
        let crc = &payload[payload.len() - 4..];
        assert_eq!(
            u16::from_str_radix(crc, 16).unwrap(),
            crc16_ccitt_false(&payload.as_bytes()[..payload.len() - 4])
        );
        assert_eq!(decode(&payload).unwrap(), sample(149_000, "pay_01abc"));
    }

    #[test]
    fn damaged_payloads_are_refused() {
        let payload = encode(&sample(149_000, "pay_01abc")).unwrap();
        let wrong_crc = format!(
            "{}{}",
            &payload[..payload.len() - 4],
            if payload.ends_with("0000") { "0001" } else { "0000" }
        );
        assert!(decode(&wrong_crc).unwrap_err().to_string().contains("CRC does not match"));
        let altered = payload.replace("149000", "149900");
        assert!(decode(&altered).is_err(), "an altered amount breaks the CRC");
        assert!(decode("").is_err());
        assert!(decode("00020163").is_err());
    }

    proptest! {
        #[test]
        fn round_trips_and_any_single_change_is_caught(amount in 1i64..1_000_000_000, bill in "[A-Za-z0-9_]{1,25}", position in any::<prop::sample::Index>(), replacement in "[0-9A-Z]") {
            let qris = sample(amount, &bill);
            let payload = encode(&qris).unwrap();
            prop_assert_eq!(decode(&payload).unwrap(), qris);
            let at = position.index(payload.len());
            let mut changed = payload.clone().into_bytes();
            if changed[at] != replacement.as_bytes()[0] {
                changed[at] = replacement.as_bytes()[0];
                let changed = String::from_utf8(changed).unwrap();
                prop_assert!(decode(&changed).is_err(), "{changed} was accepted");
            }
        }
    }
}
