//! A rock's bug-fix phase as a rule over numbers and a clock: when a rock's epics are done it
//! runs for `initial_duration_days`; the bugs found in it (issues of type `bug`) give a
//! discovery rate, bugs per whole day elapsed (at least one day); a rate over
//! `bug_discovery_high_rate`, or more critical bugs than `bug_critical_threshold`, extends the
//! phase by [`EXTENSION_DAYS`], at most once per seven-day window of the phase and never past
//! `max_duration_days`; at its planned end it ends, and its open bugs move to the next phase's
//! rock ([`next_phase_rock`]). [`assess`] is the rule; the engine keeps the phase's row and
//! applies what it decides.

use chrono::{DateTime, Duration, Utc};
use serde::{Deserialize, Serialize};
use std::fmt;
use std::str::FromStr;

/// The issue type of a bug.
pub const BUG_TYPE: &str = "bug";

/// The days one extension adds, and the length of the windows that allow one extension each.
pub const EXTENSION_DAYS: i64 = 7;

/// How bad a bug is.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, PartialOrd, Ord, Serialize, Deserialize)]
#[serde(rename_all = "snake_case")]
pub enum Severity {
    /// Cosmetic, or with an easy workaround.
    Low,
    /// Wrong, with a workaround (a bug's severity when none is given).
    Medium,
    /// Wrong, without a workaround.
    High,
    /// Breaks the deliverable or loses data; counted against `bug_critical_threshold`.
    Critical,
}

impl Severity {
    /// Every severity, least first.
    pub const ALL: [Severity; 4] = [
        Severity::Low,
        Severity::Medium,
        Severity::High,
        Severity::Critical,
    ];

    /// Every severity's name, least first (the tool table's `severity` values).
    pub const NAMES: [&'static str; 4] = ["low", "medium", "high", "critical"];

    /// The severity of a bug created without one.
    pub const DEFAULT_FOR_BUGS: Severity = Severity::Medium;

    /// Its name (`critical`).
    pub fn as_str(self) -> &'static str {
        Self::NAMES[self as usize]
    }
}

impl fmt::Display for Severity {
    /// Its name, padded to the formatter's width.
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.pad(self.as_str())
    }
}

impl FromStr for Severity {
    type Err = String;

    fn from_str(s: &str) -> Result<Self, Self::Err> {
        Severity::ALL
            .into_iter()
            .find(|v| v.as_str() == s)
            .ok_or_else(|| {
                format!(
                    "unknown severity \"{s}\" (expected one of: {})",
                    Severity::NAMES.join(", ")
                )
            })
    }
}

/// The numbers of the rule (`process_rules.bug_fix_phase` of the organization).
#[derive(Debug, Clone, Copy, PartialEq, Serialize)]
pub struct BugFixRules {
    /// How long a phase is planned to last at first, in days (default 7).
    pub initial_duration_days: u32,
    /// The longest a phase may last with its extensions, in days (default 28).
    pub max_duration_days: u32,
    /// Bugs per day above which the phase is extended (default 5).
    pub bug_discovery_high_rate: f64,
    /// Critical bugs above which the phase is extended (default 3).
    pub bug_critical_threshold: u32,
}

impl Default for BugFixRules {
    fn default() -> Self {
        BugFixRules {
            initial_duration_days: 7,
            max_duration_days: 28,
            bug_discovery_high_rate: 5.0,
            bug_critical_threshold: 3,
        }
    }
}

/// The most days a phase may be set to last.
pub const MAX_PHASE_DAYS: u64 = 365;

/// What the rule reads of a phase.
#[derive(Debug, Clone, Copy, PartialEq)]
pub struct PhaseFacts {
    /// When the phase started.
    pub started_at: DateTime<Utc>,
    /// When it is planned to end now.
    pub planned_end: DateTime<Utc>,
    /// Bugs found in it so far.
    pub bugs_found: u32,
    /// Critical bugs among them.
    pub critical_bugs: u32,
    /// The seven-day window of the last extension (0 for the phase's first week), if any.
    pub last_extension_window: Option<u32>,
}

/// What the rule decides for a phase at a time.
#[derive(Debug, Clone, PartialEq)]
pub enum Verdict {
    /// Nothing to do.
    Continue,
    /// Extend it.
    Extend(Extension),
    /// It reached its planned end.
    End,
}

/// An extension and the evidence for it.
#[derive(Debug, Clone, PartialEq)]
pub struct Extension {
    /// The new planned end.
    pub planned_end: DateTime<Utc>,
    /// The seven-day window it is granted in.
    pub window: u32,
    /// Whole days elapsed since the start.
    pub days_elapsed: i64,
    /// The discovery rate, bugs per day.
    pub rate: f64,
    /// The critical bugs.
    pub critical_bugs: u32,
    /// Why, in words (`discovery rate 6.00 bugs/day > 5`).
    pub reason: String,
}

/// Whole days from `start` to `now` (0 before the first day is over, and before the start).
pub fn days_elapsed(start: DateTime<Utc>, now: DateTime<Utc>) -> i64 {
    (now - start).num_days().max(0)
}

/// Bugs per day over `days` whole days, counting at least one day.
pub fn discovery_rate(bugs: u32, days: i64) -> f64 {
    f64::from(bugs) / days.max(1) as f64
}

/// When a phase that starts at `start` is planned to end at first.
pub fn initial_end(start: DateTime<Utc>, rules: &BugFixRules) -> DateTime<Utc> {
    start
        + Duration::days(i64::from(
            rules.initial_duration_days.min(rules.max_duration_days),
        ))
}

/// The rule: at or past the planned end the phase ends; before it, a high discovery rate or
/// too many critical bugs extend it by [`EXTENSION_DAYS`] (capped at the maximum), unless it
/// was already extended in this seven-day window (or a later one) — so checking again and
/// again on the same evidence extends it once — or it already reaches the maximum.
pub fn assess(facts: &PhaseFacts, rules: &BugFixRules, now: DateTime<Utc>) -> Verdict {
    if now >= facts.planned_end {
        return Verdict::End;
    }
    let days = days_elapsed(facts.started_at, now);
    let rate = discovery_rate(facts.bugs_found, days);
    let mut reasons = Vec::new();
    if rate > rules.bug_discovery_high_rate {
        reasons.push(format!(
            "discovery rate {rate:.2} bugs/day > {}",
            rules.bug_discovery_high_rate
        ));
    }
    if facts.critical_bugs > rules.bug_critical_threshold {
        reasons.push(format!(
            "{} critical bugs > {}",
            facts.critical_bugs, rules.bug_critical_threshold
        ));
    }
    let window = u32::try_from(days / EXTENSION_DAYS).unwrap_or(u32::MAX);
    let extended_here = facts.last_extension_window.is_some_and(|w| w >= window);
    let max_end = facts.started_at + Duration::days(i64::from(rules.max_duration_days));
    if reasons.is_empty() || extended_here || facts.planned_end >= max_end {
        return Verdict::Continue;
    }
    Verdict::Extend(Extension {
        planned_end: (facts.planned_end + Duration::days(EXTENSION_DAYS)).min(max_end),
        window,
        days_elapsed: days,
        rate,
        critical_bugs: facts.critical_bugs,
        reason: reasons.join(" and "),
    })
}

/// The rock that collects the open bugs when `rock`'s phase ends: `<rock>-phase2`, and for a
/// phase rock the next number (`launch-phase2` → `launch-phase3`).
pub fn next_phase_rock(rock: &str) -> String {
    if let Some((base, suffix)) = rock.rsplit_once("-phase") {
        match suffix.parse::<u32>() {
            Ok(n) if n >= 2 && n.to_string() == suffix => {
                return format!("{base}-phase{}", n.saturating_add(1));
            }
            _ => {}
        }
    }
    format!("{rock}-phase2")
}

#[cfg(test)]
mod tests {
    use super::*;

    fn at(day: i64, hour: i64) -> DateTime<Utc> {
        let start = DateTime::parse_from_rfc3339("2030-01-01T00:00:00Z")
            .unwrap()
            .with_timezone(&Utc);
        start + Duration::days(day) + Duration::hours(hour)
    }

    fn facts(bugs: u32, critical: u32, planned_end_day: i64, last: Option<u32>) -> PhaseFacts {
        PhaseFacts {
            started_at: at(0, 0),
            planned_end: at(planned_end_day, 0),
            bugs_found: bugs,
            critical_bugs: critical,
            last_extension_window: last,
        }
    }

    fn extension(verdict: Verdict) -> Extension {
        match verdict {
            Verdict::Extend(e) => e,
            other => panic!("expected an extension, got {other:?}"),
        }
    }

    #[test]
    fn the_rate_counts_whole_days_and_at_least_one() {
        assert_eq!(days_elapsed(at(0, 0), at(0, 23)), 0);
        assert_eq!(days_elapsed(at(0, 0), at(2, 5)), 2);
        assert_eq!(days_elapsed(at(3, 0), at(1, 0)), 0, "before the start");
        assert_eq!(discovery_rate(6, 0), 6.0);
        assert_eq!(discovery_rate(6, 1), 6.0);
        assert_eq!(discovery_rate(6, 4), 1.5);
        let rules = BugFixRules::default();
        assert_eq!(initial_end(at(0, 0), &rules), at(7, 0));
    }

    #[test]
    fn a_high_rate_extends_by_seven_days() {
        let rules = BugFixRules::default();
        let e = extension(assess(&facts(6, 0, 7, None), &rules, at(1, 2)));
        assert_eq!(e.planned_end, at(14, 0));
        assert_eq!((e.window, e.days_elapsed, e.rate), (0, 1, 6.0));
        assert_eq!(e.reason, "discovery rate 6.00 bugs/day > 5");
        // Exactly the threshold is not over it.
        assert_eq!(
            assess(&facts(10, 0, 7, None), &rules, at(2, 0)),
            Verdict::Continue
        );
        // Over the day, the same bugs are a lower rate.
        assert_eq!(
            assess(&facts(6, 0, 7, None), &rules, at(2, 0)),
            Verdict::Continue
        );
    }

    #[test]
    fn critical_bugs_over_the_threshold_extend_too() {
        let rules = BugFixRules::default();
        assert_eq!(
            assess(&facts(3, 3, 7, None), &rules, at(3, 0)),
            Verdict::Continue
        );
        let e = extension(assess(&facts(4, 4, 7, None), &rules, at(3, 0)));
        assert_eq!(e.reason, "4 critical bugs > 3");
        assert_eq!(e.critical_bugs, 4);
        let both = extension(assess(&facts(8, 4, 7, None), &rules, at(1, 0)));
        assert_eq!(
            both.reason,
            "discovery rate 8.00 bugs/day > 5 and 4 critical bugs > 3"
        );
    }

    #[test]
    fn one_extension_per_window_and_never_past_the_maximum() {
        let rules = BugFixRules::default();
        // Extended in the first week: the same evidence later that week changes nothing.
        assert_eq!(
            assess(&facts(40, 9, 14, Some(0)), &rules, at(6, 23)),
            Verdict::Continue
        );
        // The next week may extend again.
        let e = extension(assess(&facts(40, 9, 14, Some(0)), &rules, at(7, 0)));
        assert_eq!((e.window, e.planned_end), (1, at(21, 0)));
        // Capped at 28 days.
        let capped = BugFixRules {
            max_duration_days: 24,
            ..rules
        };
        let e = extension(assess(&facts(40, 9, 21, Some(1)), &capped, at(14, 0)));
        assert_eq!(e.planned_end, at(24, 0));
        assert_eq!(
            assess(&facts(400, 90, 28, Some(2)), &rules, at(21, 0)),
            Verdict::Continue,
            "at the maximum already"
        );
    }

    #[test]
    fn the_planned_end_ends_the_phase_whatever_the_bugs() {
        let rules = BugFixRules::default();
        assert_eq!(
            assess(&facts(0, 0, 7, None), &rules, at(7, 0)),
            Verdict::End
        );
        assert_eq!(
            assess(&facts(99, 99, 7, None), &rules, at(30, 0)),
            Verdict::End
        );
        assert_eq!(
            assess(&facts(0, 0, 7, None), &rules, at(6, 23)),
            Verdict::Continue
        );
    }

    #[test]
    fn severities_and_phase_names() {
        for s in Severity::ALL {
            assert_eq!(s.as_str().parse::<Severity>(), Ok(s));
            assert_eq!(
                serde_json::to_value(s).unwrap(),
                serde_json::json!(s.as_str())
            );
        }
        assert!("urgent"
            .parse::<Severity>()
            .unwrap_err()
            .contains("low, medium, high, critical"));
        assert_eq!(next_phase_rock("launch"), "launch-phase2");
        assert_eq!(next_phase_rock("launch-phase2"), "launch-phase3");
        assert_eq!(next_phase_rock("launch-phase9"), "launch-phase10");
        assert_eq!(next_phase_rock("launch-phase1"), "launch-phase1-phase2");
        assert_eq!(next_phase_rock("launch-phasex"), "launch-phasex-phase2");
        assert_eq!(next_phase_rock("launch-phase02"), "launch-phase02-phase2");
    }
}
