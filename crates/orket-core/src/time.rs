//! Timestamps as stored: RFC 3339, UTC, milliseconds, `Z`.

/// The current time as stored, e.g. `2026-11-22T04:16:22.123Z`.
pub fn now_timestamp() -> String {
    chrono::Utc::now()
        .format("%Y-%m-%dT%H:%M:%S%.3fZ")
        .to_string()
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
