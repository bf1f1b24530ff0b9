//! The rows of a rock's bug-fix phase (`bug_fix_phases`, migration 0010): when it started and
//! is planned to end (by the engine's clock), its extensions, the bugs found in it and, once
//! ended, the rock its open bugs moved to. The rule that moves a phase on is
//! `orket_core::bugfix`; the engine applies it.

use orket_core::bugfix::Severity;
use serde::{Deserialize, Serialize};
use std::fmt;
use std::str::FromStr;

/// Where a phase is.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, Serialize, Deserialize)]
#[serde(rename_all = "snake_case")]
pub enum PhaseStatus {
    /// Running: bugs found now count.
    Active,
    /// Over: its open bugs moved to the next phase's rock.
    Ended,
}

impl PhaseStatus {
    /// The stored name.
    pub fn as_str(self) -> &'static str {
        match self {
            PhaseStatus::Active => "active",
            PhaseStatus::Ended => "ended",
        }
    }
}

impl fmt::Display for PhaseStatus {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(self.as_str())
    }
}

impl FromStr for PhaseStatus {
    type Err = String;

    fn from_str(s: &str) -> Result<Self, Self::Err> {
        match s {
            "active" => Ok(PhaseStatus::Active),
            "ended" => Ok(PhaseStatus::Ended),
            other => Err(format!("unknown phase status \"{other}\" (active, ended)")),
        }
    }
}

/// A bug found in a phase: an issue of type `bug` in one of the rock's epic builds.
#[derive(Debug, Clone, PartialEq, Eq, Hash, PartialOrd, Ord, Serialize, Deserialize)]
pub struct PhaseBug {
    /// Its build.
    pub build_id: String,
    /// The issue.
    pub id: String,
    /// Its severity when it was found.
    pub severity: Severity,
}

impl PhaseBug {
    /// `build/id`.
    pub fn key(&self) -> String {
        format!("{}/{}", self.build_id, self.id)
    }
}

/// A rock's bug-fix phase (one per rock).
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct BugFixPhaseRecord {
    /// The rock's file stem.
    pub rock: String,
    /// The department the rock was found in.
    pub department: String,
    /// Active or ended.
    pub status: PhaseStatus,
    /// When it started, by the engine's clock.
    pub started_at: String,
    /// When it is planned to end.
    pub planned_end: String,
    /// How many times it was extended.
    pub extensions: u32,
    /// The seven-day window (from the start, 0 first) of its last extension.
    pub last_extension_window: Option<u32>,
    /// The bugs found in it, in the order found.
    pub bugs: Vec<PhaseBug>,
    /// The bugs (`build/id`) of the rock's epics that existed when it started: not counted.
    pub baseline: Vec<String>,
    /// When it ended, by the engine's clock.
    pub ended_at: Option<String>,
    /// The rock its open bugs moved to (none when no bug was open at the end).
    pub next_rock: Option<String>,
    /// Its compare-and-set: [`crate::Change::UpdateBugFixPhase`] writes only over this
    /// revision, and the stored row then has the next.
    pub revision: i64,
    /// When the row last changed (the system's time).
    pub updated_at: String,
}

impl BugFixPhaseRecord {
    /// An active phase of `rock` from `started_at` to `planned_end`, not counting `baseline`.
    pub fn new(
        rock: impl Into<String>,
        department: impl Into<String>,
        started_at: impl Into<String>,
        planned_end: impl Into<String>,
        baseline: Vec<String>,
    ) -> Self {
        BugFixPhaseRecord {
            rock: rock.into(),
            department: department.into(),
            status: PhaseStatus::Active,
            started_at: started_at.into(),
            planned_end: planned_end.into(),
            extensions: 0,
            last_extension_window: None,
            bugs: Vec::new(),
            baseline,
            ended_at: None,
            next_rock: None,
            revision: 0,
            updated_at: orket_core::time::now_timestamp(),
        }
    }

    /// How many bugs were found in it.
    pub fn bugs_found(&self) -> u32 {
        u32::try_from(self.bugs.len()).unwrap_or(u32::MAX)
    }

    /// How many of them are critical.
    pub fn critical_bugs(&self) -> u32 {
        let critical = self
            .bugs
            .iter()
            .filter(|b| b.severity == Severity::Critical)
            .count();
        u32::try_from(critical).unwrap_or(u32::MAX)
    }
}
