//! Timestamps as stored: RFC 3339, UTC, milliseconds, `Z`.

/// The current time as stored, e.g. `2026-11-22T04:16:22.123Z`.
pub fn now_timestamp() -> String {
    // The fixed RFC 3339 writer, not `format`: a format string is parsed on every call.
    chrono::Utc::now().to_rfc3339_opts(chrono::SecondsFormat::Millis, true)
}

#[cfg(test)]
mod tests {
    #[test]
    fn shape() {
        let ts = super::now_timestamp();
        assert_eq!(ts.len(), "2026-11-22T04:16:22.123Z".len(), "{ts}");
        assert!(ts.ends_with('Z') && ts.as_bytes()[10] == b'T' && ts.as_bytes()[19] == b'.');
    }
}
