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
