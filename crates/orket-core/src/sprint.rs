//! Sprint labels: one-week sprints, `Q<q> S<s>`, 13 sprints a quarter; Monday 2026-02-02 is
//! Q1 S6.

use chrono::NaiveDate;

/// The sprint label of a date (`"Q1 S6"`).
pub fn sprint_label(date: NaiveDate) -> String {
    // Q1 S1 began on Monday 2025-12-29, five weeks before the anchor 2026-02-02 (Q1 S6).
    let start = NaiveDate::from_ymd_opt(2025, 12, 29).unwrap_or(NaiveDate::MIN);
    let days = date.signed_duration_since(start).num_days();
    let week = days.div_euclid(7);
    let quarter = week.div_euclid(13).rem_euclid(4) + 1;
    let sprint = week.rem_euclid(13) + 1;
    format!("Q{quarter} S{sprint}")
}

/// The sprint label of today (UTC).
pub fn current_sprint() -> String {
    sprint_label(chrono::Utc::now().date_naive())
}

#[cfg(test)]
mod tests {
    use super::*;

    fn d(y: i32, m: u32, day: u32) -> NaiveDate {
        NaiveDate::from_ymd_opt(y, m, day).unwrap()
    }

    #[test]
    fn anchor_and_neighbours() {
        assert_eq!(sprint_label(d(2026, 2, 2)), "Q1 S6");
        assert_eq!(sprint_label(d(2026, 2, 8)), "Q1 S6"); // the Sunday after
        assert_eq!(sprint_label(d(2026, 2, 9)), "Q1 S7");
        assert_eq!(sprint_label(d(2026, 2, 1)), "Q1 S5");
        assert_eq!(sprint_label(d(2025, 12, 29)), "Q1 S1");
        assert_eq!(sprint_label(d(2025, 12, 28)), "Q4 S13");
        assert_eq!(sprint_label(d(2026, 3, 30)), "Q2 S1"); // 13 weeks after Q1 S1
        assert_eq!(sprint_label(d(2026, 12, 28)), "Q1 S1"); // 52 weeks: a new cycle
    }
}
