//! `Timestamp`: milliseconds since the Unix epoch, UTC. The domain never reads a clock; callers
//! pass the time in, so tests can inject one.

#[derive(Debug, Clone, Copy, PartialEq, Eq, PartialOrd, Ord, Hash)]
pub struct Timestamp(i64);

impl Timestamp {
    pub fn from_unix_ms(ms: i64) -> Timestamp {
        Timestamp(ms)
    }

    pub fn unix_ms(self) -> i64 {
        self.0
    }

    pub fn plus_ms(self, ms: i64) -> Timestamp {
        Timestamp(self.0.saturating_add(ms))
    }
}

/// A calendar day written `YYYY-MM-DD` (report ranges, digests, dated policy entries).
pub fn parse_day(field: &'static str, raw: &str) -> Result<time::Date, crate::DomainError> {
    let format = time::macros::format_description!("[year]-[month]-[day]");
    time::Date::parse(raw, format)
        .map_err(|_| crate::DomainError::invalid(field, format!("`{raw}` is not a day as YYYY-MM-DD")))
}
