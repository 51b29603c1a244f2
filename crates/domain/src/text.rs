//! Small text value types shared by several aggregates.

use crate::error::DomainError;

/// Trims `raw` and checks its length in characters; the shared rule of every free-text field.
pub(crate) fn bounded_text(field: &'static str, raw: &str, chars_max: usize) -> Result<String, DomainError> {
    let trimmed = raw.trim();
    if trimmed.is_empty() {
        return Err(DomainError::invalid(field, "must not be empty"));
    }
    let chars = trimmed.chars().count();
    if chars > chars_max {
        return Err(DomainError::invalid(
            field,
            format!("must be at most {chars_max} characters, got {chars}"),
        ));
    }
    if trimmed.chars().any(char::is_control) {
        return Err(DomainError::invalid(field, "must not contain control characters"));
    }
    Ok(trimmed.to_owned())
}

/// An Indonesian mobile number in E.164 form (`+628…`). Accepts the three ways people write
/// them: `08…`, `628…` and `+628…`, with spaces or dashes between digit groups.
#[derive(Debug, Clone, PartialEq, Eq, Hash)]
pub struct PhoneNumber(String);

impl PhoneNumber {
    pub fn parse(field: &'static str, raw: &str) -> Result<PhoneNumber, DomainError> {
        let compact: String = raw.chars().filter(|c| !matches!(c, ' ' | '-')).collect();
        let national = if let Some(rest) = compact.strip_prefix("+62") {
            rest
        } else if let Some(rest) = compact.strip_prefix("62") {
            rest
        } else if let Some(rest) = compact.strip_prefix('0') {
            rest
        } else {
            return Err(DomainError::invalid(field, "must be an Indonesian number: 08…, 628… or +628…"));
        };
        // Mobile numbers: 8 then 8 to 11 more digits (9 to 12 national digits).
        if !national.starts_with('8')
            || !(9..=12).contains(&national.len())
            || !national.bytes().all(|b| b.is_ascii_digit())
        {
            return Err(DomainError::invalid(
                field,
                "must be an Indonesian mobile number of 10 to 13 digits starting 08",
            ));
        }
        Ok(PhoneNumber(format!("+62{national}")))
    }

    pub fn as_str(&self) -> &str {
        &self.0
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn phone_numbers_in_all_three_forms_normalise_to_e164() {
        for raw in ["081234567890", "6281234567890", "+6281234567890", "0812-3456-7890", "+62 812 3456 7890"]
        {
            assert_eq!(PhoneNumber::parse("phone", raw).unwrap().as_str(), "+6281234567890", "{raw}");
        }
        for raw in ["", "12345", "0212345678", "+6581234567", "08123", "08123456789012345", "08abc4567890"] {
            assert!(PhoneNumber::parse("phone", raw).is_err(), "{raw}");
        }
    }

    #[test]
    fn bounded_text_trims_and_limits() {
        assert_eq!(bounded_text("t", "  a  ", 5).unwrap(), "a");
        assert!(bounded_text("t", "   ", 5).is_err());
        assert!(bounded_text("t", "abcdef", 5).is_err());
        assert!(bounded_text("t", "a\u{0}b", 5).is_err());
    }
}
