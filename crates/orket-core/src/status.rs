//! Card kinds, statuses and wait reasons, with their canonical (snake_case) names.

use serde::{Deserialize, Serialize};
use std::fmt;
use std::str::FromStr;

/// The kind of a card: the three levels of work, plus the kinds roles and utilities carry.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, Serialize, Deserialize)]
#[serde(rename_all = "snake_case")]
pub enum CardKind {
    /// A milestone made of epics.
    Rock,
    /// A deliverable made of issues.
    Epic,
    /// A unit of work.
    Issue,
    /// A utility card (roles use it).
    Utility,
    /// An application card.
    App,
}

impl CardKind {
    /// Every kind, in declaration order.
    pub const ALL: [CardKind; 5] = [
        CardKind::Rock,
        CardKind::Epic,
        CardKind::Issue,
        CardKind::Utility,
        CardKind::App,
    ];

    /// The canonical name.
    pub fn as_str(self) -> &'static str {
        match self {
            CardKind::Rock => "rock",
            CardKind::Epic => "epic",
            CardKind::Issue => "issue",
            CardKind::Utility => "utility",
            CardKind::App => "app",
        }
    }
}

impl fmt::Display for CardKind {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(self.as_str())
    }
}

/// The status of a card. Issues may take every value; epics and rocks a subset (see `lifecycle`).
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, PartialOrd, Ord, Serialize, Deserialize)]
#[serde(rename_all = "snake_case")]
pub enum Status {
    /// Waiting to be picked up.
    Ready,
    /// Being worked on.
    InProgress,
    /// Stopped, with a wait reason.
    Blocked,
    /// Waiting for a person, with a wait reason.
    WaitingForDeveloper,
    /// Implemented, waiting for tests.
    ReadyForTesting,
    /// Waiting for the integrity guard's review.
    CodeReview,
    /// Finished and verified (terminal).
    Done,
    /// Abandoned (terminal).
    Canceled,
    /// Put away (terminal).
    Archived,
}

impl Status {
    /// Every status, in lifecycle order.
    pub const ALL: [Status; 9] = [
        Status::Ready,
        Status::InProgress,
        Status::Blocked,
        Status::WaitingForDeveloper,
        Status::ReadyForTesting,
        Status::CodeReview,
        Status::Done,
        Status::Canceled,
        Status::Archived,
    ];

    /// What the status means, one line (the generated reference).
    pub fn description(self) -> &'static str {
        match self {
            Status::Ready => "waiting to be picked up",
            Status::InProgress => "being worked on by its developer seat",
            Status::Blocked => "stopped, with a wait reason",
            Status::WaitingForDeveloper => "waiting for a person, with a wait reason",
            Status::ReadyForTesting => "implemented, waiting for tests",
            Status::CodeReview => "waiting for the integrity guard's review",
            Status::Done => "finished and verified (terminal)",
            Status::Canceled => "abandoned (terminal)",
            Status::Archived => "put away (terminal)",
        }
    }

    /// The canonical name, as stored and as written in asset files.
    pub fn as_str(self) -> &'static str {
        match self {
            Status::Ready => "ready",
            Status::InProgress => "in_progress",
            Status::Blocked => "blocked",
            Status::WaitingForDeveloper => "waiting_for_developer",
            Status::ReadyForTesting => "ready_for_testing",
            Status::CodeReview => "code_review",
            Status::Done => "done",
            Status::Canceled => "canceled",
            Status::Archived => "archived",
        }
    }

    /// True for statuses nothing leaves: done, canceled, archived.
    pub fn is_terminal(self) -> bool {
        matches!(self, Status::Done | Status::Canceled | Status::Archived)
    }

    /// True for statuses that need a wait reason: blocked, waiting_for_developer.
    pub fn needs_wait_reason(self) -> bool {
        matches!(self, Status::Blocked | Status::WaitingForDeveloper)
    }

    /// The list of canonical names, comma separated (for error messages).
    pub fn names(list: &[Status]) -> String {
        list.iter()
            .map(|s| s.as_str())
            .collect::<Vec<_>>()
            .join(", ")
    }
}

impl fmt::Display for Status {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(self.as_str())
    }
}

/// Normalizes a user-written name: trimmed, lower-cased, spaces and dashes as `_`.
pub fn normalize_name(raw: &str) -> String {
    raw.trim()
        .to_lowercase()
        .chars()
        .map(|c| if c == ' ' || c == '-' { '_' } else { c })
        .collect()
}

/// Error for a status or wait reason name that does not exist.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
#[error("unknown {what} \"{value}\" (expected one of: {expected})")]
pub struct UnknownName {
    /// What was being parsed ("status", "wait reason").
    pub what: &'static str,
    /// The value as written.
    pub value: String,
    /// The accepted names.
    pub expected: String,
}

impl FromStr for Status {
    type Err = UnknownName;

    /// Accepts the canonical names case-insensitively, with spaces or dashes for `_`
    /// (`"In Progress"`, `"code-review"`) and the spelling `cancelled`.
    fn from_str(raw: &str) -> Result<Self, Self::Err> {
        let name = normalize_name(raw);
        let name = if name == "cancelled" {
            "canceled"
        } else {
            &name
        };
        Status::ALL
            .into_iter()
            .find(|s| s.as_str() == name)
            .ok_or_else(|| UnknownName {
                what: "status",
                value: raw.to_string(),
                expected: Status::names(&Status::ALL),
            })
    }
}

/// Why a card waits: required when it moves to blocked or waiting_for_developer.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, Serialize, Deserialize)]
#[serde(rename_all = "snake_case")]
pub enum WaitReason {
    /// Waiting for a resource (a model slot, a machine).
    Resource,
    /// Waiting for another card.
    Dependency,
    /// Waiting for a review.
    Review,
    /// Waiting for a person's input.
    Input,
    /// Waiting for the system (a failure, a policy).
    System,
}

impl WaitReason {
    /// Every wait reason.
    pub const ALL: [WaitReason; 5] = [
        WaitReason::Resource,
        WaitReason::Dependency,
        WaitReason::Review,
        WaitReason::Input,
        WaitReason::System,
    ];

    /// What the reason means, one line (the generated reference).
    pub fn description(self) -> &'static str {
        match self {
            WaitReason::Resource => "waiting for a resource (a model slot, a machine)",
            WaitReason::Dependency => "waiting for another card",
            WaitReason::Review => "waiting for a review",
            WaitReason::Input => "waiting for a person's input",
            WaitReason::System => "waiting for the system (a failure, a policy)",
        }
    }

    /// The canonical name.
    pub fn as_str(self) -> &'static str {
        match self {
            WaitReason::Resource => "resource",
            WaitReason::Dependency => "dependency",
            WaitReason::Review => "review",
            WaitReason::Input => "input",
            WaitReason::System => "system",
        }
    }
}

impl fmt::Display for WaitReason {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(self.as_str())
    }
}

impl FromStr for WaitReason {
    type Err = UnknownName;

    fn from_str(raw: &str) -> Result<Self, Self::Err> {
        let name = normalize_name(raw);
        WaitReason::ALL
            .into_iter()
            .find(|w| w.as_str() == name)
            .ok_or_else(|| UnknownName {
                what: "wait reason",
                value: raw.to_string(),
                expected: WaitReason::ALL
                    .iter()
                    .map(|w| w.as_str())
                    .collect::<Vec<_>>()
                    .join(", "),
            })
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn statuses_round_trip_and_accept_human_spellings() {
        for s in Status::ALL {
            assert_eq!(s.as_str().parse::<Status>().unwrap(), s);
            assert_eq!(
                serde_json::to_string(&s).unwrap(),
                format!("\"{}\"", s.as_str())
            );
        }
        assert_eq!("In Progress".parse::<Status>().unwrap(), Status::InProgress);
        assert_eq!("Code_Review".parse::<Status>().unwrap(), Status::CodeReview);
        assert_eq!("cancelled".parse::<Status>().unwrap(), Status::Canceled);
        let err = "active".parse::<Status>().unwrap_err();
        assert_eq!(
            err.to_string(),
            "unknown status \"active\" (expected one of: ready, in_progress, blocked, \
             waiting_for_developer, ready_for_testing, code_review, done, canceled, archived)"
        );
    }

    #[test]
    fn wait_reasons_parse() {
        for w in WaitReason::ALL {
            assert_eq!(w.as_str().parse::<WaitReason>().unwrap(), w);
        }
        assert!("later".parse::<WaitReason>().is_err());
    }

    #[test]
    fn terminal_and_wait_reason_statuses() {
        let terminal: Vec<_> = Status::ALL
            .into_iter()
            .filter(|s| s.is_terminal())
            .collect();
        assert_eq!(terminal, [Status::Done, Status::Canceled, Status::Archived]);
        let waiting: Vec<_> = Status::ALL
            .into_iter()
            .filter(|s| s.needs_wait_reason())
            .collect();
        assert_eq!(waiting, [Status::Blocked, Status::WaitingForDeveloper]);
    }
}
