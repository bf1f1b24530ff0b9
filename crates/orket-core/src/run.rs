//! Runs (sessions): their kinds and outcomes.

use serde::{Deserialize, Serialize};
use std::fmt;
use std::str::FromStr;

/// What a run executes.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, Serialize, Deserialize)]
#[serde(rename_all = "snake_case")]
pub enum RunKind {
    /// Every issue of an epic.
    Epic,
    /// The epics of a rock, in order.
    Rock,
    /// One issue of an epic.
    Issue,
    /// The organization loop (`orket loop`): no build of its own; its row holds its state, its
    /// halt request and its `loop_*` events, while the issue runs it starts are runs of their
    /// own.
    Loop,
}

impl RunKind {
    /// The canonical name.
    pub fn as_str(self) -> &'static str {
        match self {
            RunKind::Epic => "epic",
            RunKind::Rock => "rock",
            RunKind::Issue => "issue",
            RunKind::Loop => "loop",
        }
    }
}

impl fmt::Display for RunKind {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(self.as_str())
    }
}

impl FromStr for RunKind {
    type Err = String;
    fn from_str(s: &str) -> Result<Self, Self::Err> {
        match s {
            "epic" => Ok(RunKind::Epic),
            "rock" => Ok(RunKind::Rock),
            "issue" => Ok(RunKind::Issue),
            "loop" => Ok(RunKind::Loop),
            other => Err(format!(
                "unknown run kind \"{other}\" (expected epic, rock, issue or loop)"
            )),
        }
    }
}

/// The state of a run: `running` while it goes, then one outcome.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, Serialize, Deserialize)]
#[serde(rename_all = "snake_case")]
pub enum RunStatus {
    /// Still going (or interrupted: `orket resume` continues it).
    Running,
    /// Every issue is done or canceled.
    Completed,
    /// No candidate is left but some issues are not final.
    Stalled,
    /// A catastrophic failure (retries exhausted, a violation under `halt_on_violation`).
    Failed,
    /// `max_iterations` reached.
    Exhausted,
    /// Halted by a person.
    Canceled,
    /// A token or wall-clock budget ran out.
    BudgetExceeded,
}

impl RunStatus {
    /// Every run status.
    pub const ALL: [RunStatus; 7] = [
        RunStatus::Running,
        RunStatus::Completed,
        RunStatus::Stalled,
        RunStatus::Failed,
        RunStatus::Exhausted,
        RunStatus::Canceled,
        RunStatus::BudgetExceeded,
    ];

    /// The canonical name.
    pub fn as_str(self) -> &'static str {
        match self {
            RunStatus::Running => "running",
            RunStatus::Completed => "completed",
            RunStatus::Stalled => "stalled",
            RunStatus::Failed => "failed",
            RunStatus::Exhausted => "exhausted",
            RunStatus::Canceled => "canceled",
            RunStatus::BudgetExceeded => "budget_exceeded",
        }
    }

    /// True once the run has ended.
    pub fn is_final(self) -> bool {
        self != RunStatus::Running
    }
}

impl fmt::Display for RunStatus {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(self.as_str())
    }
}

impl FromStr for RunStatus {
    type Err = String;
    fn from_str(s: &str) -> Result<Self, Self::Err> {
        RunStatus::ALL
            .into_iter()
            .find(|r| r.as_str() == s)
            .ok_or_else(|| format!("unknown run status \"{s}\""))
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn names_round_trip() {
        for s in RunStatus::ALL {
            assert_eq!(s.as_str().parse::<RunStatus>(), Ok(s));
            assert_eq!(s.is_final(), s != RunStatus::Running);
        }
        for k in [RunKind::Epic, RunKind::Rock, RunKind::Issue, RunKind::Loop] {
            assert_eq!(k.as_str().parse::<RunKind>(), Ok(k));
        }
        assert!("bogus".parse::<RunStatus>().is_err());
    }
}
