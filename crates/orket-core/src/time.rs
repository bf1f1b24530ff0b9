//! Timestamps as stored (RFC 3339, UTC, milliseconds, `Z`) and the [`Clock`] that rules
//! about days (a rock's bug-fix phase) read, so tests and rehearsals can fix the time.

use chrono::{DateTime, SecondsFormat, Utc};

/// The current time as stored, e.g. `2026-11-22T04:16:22.123Z`.
pub fn now_timestamp() -> String {
    timestamp(Utc::now())
}

/// `at` as stored, e.g. `2026-11-22T04:16:22.123Z`.
pub fn timestamp(at: DateTime<Utc>) -> String {
    // The fixed RFC 3339 writer, not `format`: a format string is parsed on every call.
    at.to_rfc3339_opts(SecondsFormat::Millis, true)
}

/// A stored (or any RFC 3339) timestamp, in UTC; the error names the text.
pub fn parse_timestamp(text: &str) -> Result<DateTime<Utc>, String> {
    DateTime::parse_from_rfc3339(text.trim())
        .map(|at| at.with_timezone(&Utc))
        .map_err(|e| {
            format!("\"{text}\" is not an RFC 3339 time such as 2030-01-01T09:00:00Z: {e}")
        })
}

/// Where "now" comes from for rules that count days: the system's clock, or a fixed time
/// (tests, and rehearsals of what a rule will do in a week: `ORKET_NOW` in the CLI).
#[derive(Debug, Clone, Copy, PartialEq, Eq, Default)]
pub enum Clock {
    /// The system's clock.
    #[default]
    System,
    /// Always this time.
    Fixed(DateTime<Utc>),
}

impl Clock {
    /// The clock a setting names: unset or empty → the system's, else the fixed RFC 3339 time
    /// it holds (an error names the text).
    pub fn from_setting(setting: Option<&str>) -> Result<Clock, String> {
        match setting.map(str::trim).filter(|s| !s.is_empty()) {
            None => Ok(Clock::System),
            Some(text) => parse_timestamp(text).map(Clock::Fixed),
        }
    }

    /// The time now, by this clock.
    pub fn now(&self) -> DateTime<Utc> {
        match self {
            Clock::System => Utc::now(),
            Clock::Fixed(at) => *at,
        }
    }

    /// The time now, by this clock, as stored.
    pub fn timestamp(&self) -> String {
        timestamp(self.now())
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn shape() {
        let ts = super::now_timestamp();
        assert_eq!(ts.len(), "2026-11-22T04:16:22.123Z".len(), "{ts}");
        assert!(ts.ends_with('Z') && ts.as_bytes()[10] == b'T' && ts.as_bytes()[19] == b'.');
    }

    #[test]
    fn clocks_read_their_setting() {
        assert_eq!(Clock::from_setting(None), Ok(Clock::System));
        assert_eq!(Clock::from_setting(Some(" ")), Ok(Clock::System));
        let fixed = Clock::from_setting(Some("2030-01-02T03:04:05+01:00")).unwrap();
        assert_eq!(fixed.timestamp(), "2030-01-02T02:04:05.000Z");
        assert_eq!(fixed.now(), fixed.now(), "a fixed clock stands still");
        let err = Clock::from_setting(Some("next tuesday")).unwrap_err();
        assert!(
            err.contains("next tuesday") && err.contains("RFC 3339"),
            "{err}"
        );
        let back = parse_timestamp(&fixed.timestamp()).unwrap();
        assert_eq!(Clock::Fixed(back), fixed);
    }
}
