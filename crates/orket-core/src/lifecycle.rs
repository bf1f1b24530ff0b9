//! The card lifecycle: transition tables per card kind, the wait-reason and integrity_guard
//! rules, and the statuses of epics and rocks derived from their children.

use crate::refusal::RefusalCode;
use crate::status::{CardKind, Status, WaitReason};
use std::fmt;

/// The role that alone may move an issue to `done`.
pub const INTEGRITY_GUARD: &str = "integrity_guard";

/// The roles that may change issues other than their turn's own.
pub const LEAD_ROLES: [&str; 2] = ["lead_architect", "operations_lead"];

/// The statuses a card of this kind may hold.
pub fn valid_statuses(kind: CardKind) -> &'static [Status] {
    use Status::*;
    match kind {
        CardKind::Rock => &[Ready, InProgress, Done, Canceled],
        CardKind::Epic => &[Ready, InProgress, CodeReview, Done, Canceled],
        CardKind::Issue | CardKind::Utility | CardKind::App => &Status::ALL,
    }
}

/// The statuses a card of this kind may move to from `from` (empty for terminal statuses).
pub fn allowed_targets(kind: CardKind, from: Status) -> &'static [Status] {
    use Status::*;
    match kind {
        CardKind::Issue | CardKind::Utility | CardKind::App => match from {
            Ready => &[InProgress, Canceled],
            InProgress => &[
                Blocked,
                WaitingForDeveloper,
                ReadyForTesting,
                CodeReview,
                Canceled,
            ],
            Blocked => &[InProgress, Canceled],
            WaitingForDeveloper => &[InProgress, Canceled],
            ReadyForTesting => &[CodeReview, InProgress, Canceled],
            CodeReview => &[Done, InProgress, ReadyForTesting],
            Done | Canceled | Archived => &[],
        },
        CardKind::Epic => match from {
            Ready => &[InProgress, Canceled],
            InProgress => &[CodeReview, Done, Canceled],
            CodeReview => &[Done, InProgress],
            _ => &[],
        },
        CardKind::Rock => match from {
            Ready => &[InProgress, Canceled],
            InProgress => &[Done, Canceled],
            _ => &[],
        },
    }
}

/// True when the table of `kind` allows `from → to`.
pub fn is_allowed(kind: CardKind, from: Status, to: Status) -> bool {
    allowed_targets(kind, from).contains(&to)
}

/// A requested status change, with who asks for it.
#[derive(Debug, Clone)]
pub struct TransitionRequest<'a> {
    /// The kind of the card.
    pub kind: CardKind,
    /// The card's id (named in refusal messages).
    pub card_id: &'a str,
    /// Its current status.
    pub from: Status,
    /// The status asked for.
    pub to: Status,
    /// The wait reason given with the request, if any.
    pub wait_reason: Option<WaitReason>,
    /// The roles of the acting seat (for the integrity_guard rule).
    pub roles: &'a [String],
}

/// Why a status change is refused. `code()` is stable; `Display` is the message a user reads.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum TransitionError {
    /// The card is already in the requested status.
    AlreadyInStatus {
        /// The card.
        card_id: String,
        /// Its status.
        status: Status,
    },
    /// The transition table does not allow the move.
    Illegal {
        /// The card's kind.
        kind: CardKind,
        /// The card.
        card_id: String,
        /// Current status.
        from: Status,
        /// Requested status.
        to: Status,
    },
    /// Moving to blocked / waiting_for_developer without a wait reason.
    WaitReasonRequired {
        /// The card.
        card_id: String,
        /// Requested status.
        to: Status,
    },
    /// Moving an issue to done without the integrity_guard role.
    DoneRequiresIntegrityGuard {
        /// The card.
        card_id: String,
        /// The roles that asked.
        roles: Vec<String>,
    },
}

impl TransitionError {
    /// The stable refusal code.
    pub fn code(&self) -> RefusalCode {
        match self {
            TransitionError::AlreadyInStatus { .. } | TransitionError::Illegal { .. } => {
                RefusalCode::IllegalTransition
            }
            TransitionError::WaitReasonRequired { .. } => RefusalCode::WaitReasonRequired,
            TransitionError::DoneRequiresIntegrityGuard { .. } => {
                RefusalCode::DoneRequiresIntegrityGuard
            }
        }
    }
}

impl fmt::Display for TransitionError {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match self {
            TransitionError::AlreadyInStatus { card_id, status } => {
                write!(f, "{card_id} is already {status}; nothing to change")
            }
            TransitionError::Illegal {
                kind,
                card_id,
                from,
                to,
            } => {
                let targets = allowed_targets(*kind, *from);
                if targets.is_empty() {
                    write!(
                        f,
                        "{card_id}: cannot move {} {kind} from {from} to {to}: {from} is final for {kind}s",
                        article(*kind)
                    )
                } else {
                    write!(
                        f,
                        "{card_id}: cannot move {} {kind} from {from} to {to} (from {from} it may go to: {})",
                        article(*kind),
                        Status::names(targets)
                    )
                }
            }
            TransitionError::WaitReasonRequired { card_id, to } => write!(
                f,
                "{card_id}: moving to {to} needs a wait_reason (one of: resource, dependency, review, input, system)"
            ),
            TransitionError::DoneRequiresIntegrityGuard { card_id, roles } => {
                let roles = if roles.is_empty() {
                    "none".to_string()
                } else {
                    roles.join(", ")
                };
                write!(
                    f,
                    "{card_id}: only {INTEGRITY_GUARD} may move an issue to done (acting roles: {roles})"
                )
            }
        }
    }
}

impl std::error::Error for TransitionError {}

fn article(kind: CardKind) -> &'static str {
    match kind {
        CardKind::Epic | CardKind::Issue | CardKind::App => "an",
        CardKind::Rock | CardKind::Utility => "a",
    }
}

/// Checks a status change against the table of its kind and the lifecycle rules, in this
/// order: same status, table, wait reason, integrity_guard-only done (issues).
pub fn check_transition(req: &TransitionRequest<'_>) -> Result<(), TransitionError> {
    if req.from == req.to {
        return Err(TransitionError::AlreadyInStatus {
            card_id: req.card_id.to_string(),
            status: req.from,
        });
    }
    if !is_allowed(req.kind, req.from, req.to) {
        return Err(TransitionError::Illegal {
            kind: req.kind,
            card_id: req.card_id.to_string(),
            from: req.from,
            to: req.to,
        });
    }
    if req.to.needs_wait_reason() && req.wait_reason.is_none() {
        return Err(TransitionError::WaitReasonRequired {
            card_id: req.card_id.to_string(),
            to: req.to,
        });
    }
    let issue_like = !matches!(req.kind, CardKind::Epic | CardKind::Rock);
    if issue_like && req.to == Status::Done && !req.roles.iter().any(|r| r == INTEGRITY_GUARD) {
        return Err(TransitionError::DoneRequiresIntegrityGuard {
            card_id: req.card_id.to_string(),
            roles: req.roles.to_vec(),
        });
    }
    Ok(())
}

/// The status of an epic derived from its issues' statuses: `ready` while nothing started,
/// `done` when all are final and one is done, `canceled` when all are canceled or archived,
/// `code_review` when every open issue awaits review or testing, else `in_progress`.
pub fn derive_epic_status(issues: &[Status]) -> Status {
    if issues.is_empty() || issues.iter().all(|s| *s == Status::Ready) {
        return Status::Ready;
    }
    if issues.iter().all(|s| s.is_terminal()) {
        return if issues.contains(&Status::Done) {
            Status::Done
        } else {
            Status::Canceled
        };
    }
    let open_all_in_review = issues
        .iter()
        .filter(|s| !s.is_terminal())
        .all(|s| matches!(s, Status::CodeReview | Status::ReadyForTesting));
    if open_all_in_review {
        Status::CodeReview
    } else {
        Status::InProgress
    }
}

/// The status of a rock derived from its epics' statuses: `ready` while nothing started,
/// `done`/`canceled` when every epic is final, else `in_progress`.
pub fn derive_rock_status(epics: &[Status]) -> Status {
    if epics.is_empty() || epics.iter().all(|s| *s == Status::Ready) {
        return Status::Ready;
    }
    if epics.iter().all(|s| s.is_terminal()) {
        return if epics.contains(&Status::Done) {
            Status::Done
        } else {
            Status::Canceled
        };
    }
    Status::InProgress
}

#[cfg(test)]
mod tests {
    use super::*;
    use Status::*;

    /// The reference's tables, written out independently of `allowed_targets`.
    fn spec_table(kind: CardKind) -> Vec<(Status, Vec<Status>)> {
        match kind {
            CardKind::Epic => vec![
                (Ready, vec![InProgress, Canceled]),
                (InProgress, vec![CodeReview, Done, Canceled]),
                (CodeReview, vec![Done, InProgress]),
            ],
            CardKind::Rock => vec![
                (Ready, vec![InProgress, Canceled]),
                (InProgress, vec![Done, Canceled]),
            ],
            _ => vec![
                (Ready, vec![InProgress, Canceled]),
                (
                    InProgress,
                    vec![
                        Blocked,
                        WaitingForDeveloper,
                        ReadyForTesting,
                        CodeReview,
                        Canceled,
                    ],
                ),
                (Blocked, vec![InProgress, Canceled]),
                (WaitingForDeveloper, vec![InProgress, Canceled]),
                (ReadyForTesting, vec![CodeReview, InProgress, Canceled]),
                (CodeReview, vec![Done, InProgress, ReadyForTesting]),
            ],
        }
    }

    fn guard() -> Vec<String> {
        vec![INTEGRITY_GUARD.to_string()]
    }

    /// Every cell of every table: allowed cells pass (given a wait reason and the guard role),
    /// all other cells are refused with ILLEGAL_TRANSITION.
    #[test]
    fn every_cell_of_every_table() {
        let roles = guard();
        let mut allowed_count = 0;
        let mut refused_count = 0;
        for kind in [CardKind::Issue, CardKind::Epic, CardKind::Rock] {
            let table = spec_table(kind);
            for from in Status::ALL {
                let expected: Vec<Status> = table
                    .iter()
                    .find(|(f, _)| *f == from)
                    .map(|(_, t)| t.clone())
                    .unwrap_or_default();
                for to in Status::ALL {
                    let req = TransitionRequest {
                        kind,
                        card_id: "C-1",
                        from,
                        to,
                        wait_reason: Some(WaitReason::Dependency),
                        roles: &roles,
                    };
                    let result = check_transition(&req);
                    if expected.contains(&to) {
                        assert_eq!(result, Ok(()), "{kind}: {from} -> {to} should be allowed");
                        allowed_count += 1;
                    } else {
                        let err = result.expect_err(&format!("{kind}: {from} -> {to}"));
                        assert_eq!(
                            err.code().as_str(),
                            "ILLEGAL_TRANSITION",
                            "{kind}: {from} -> {to}"
                        );
                        refused_count += 1;
                    }
                }
            }
        }
        // 17 issue + 7 epic + 4 rock cells are allowed; the rest of 3 * 81 are refused.
        assert_eq!(allowed_count, 28);
        assert_eq!(refused_count, 3 * 81 - 28);
    }

    #[test]
    fn illegal_messages_name_card_statuses_and_options() {
        let roles = guard();
        let req = TransitionRequest {
            kind: CardKind::Issue,
            card_id: "ISSUE-7",
            from: Ready,
            to: Done,
            wait_reason: None,
            roles: &roles,
        };
        assert_eq!(
            check_transition(&req).unwrap_err().to_string(),
            "ISSUE-7: cannot move an issue from ready to done (from ready it may go to: in_progress, canceled)"
        );
        let req = TransitionRequest {
            from: Done,
            to: InProgress,
            ..req
        };
        assert_eq!(
            check_transition(&req).unwrap_err().to_string(),
            "ISSUE-7: cannot move an issue from done to in_progress: done is final for issues"
        );
        let req = TransitionRequest {
            from: CodeReview,
            to: CodeReview,
            ..req
        };
        assert_eq!(
            check_transition(&req).unwrap_err().to_string(),
            "ISSUE-7 is already code_review; nothing to change"
        );
    }

    #[test]
    fn blocked_and_waiting_need_a_wait_reason() {
        let roles = vec!["coder".to_string()];
        for to in [Blocked, WaitingForDeveloper] {
            let req = TransitionRequest {
                kind: CardKind::Issue,
                card_id: "ISSUE-1",
                from: InProgress,
                to,
                wait_reason: None,
                roles: &roles,
            };
            let err = check_transition(&req).unwrap_err();
            assert_eq!(err.code().as_str(), "WAIT_REASON_REQUIRED");
            assert_eq!(
                err.to_string(),
                format!("ISSUE-1: moving to {to} needs a wait_reason (one of: resource, dependency, review, input, system)")
            );
            for reason in WaitReason::ALL {
                let ok = TransitionRequest {
                    wait_reason: Some(reason),
                    ..req.clone()
                };
                assert_eq!(check_transition(&ok), Ok(()));
            }
        }
        // Other targets do not need one.
        let req = TransitionRequest {
            kind: CardKind::Issue,
            card_id: "ISSUE-1",
            from: InProgress,
            to: CodeReview,
            wait_reason: None,
            roles: &roles,
        };
        assert_eq!(check_transition(&req), Ok(()));
    }

    #[test]
    fn only_integrity_guard_moves_an_issue_to_done() {
        let coder = vec!["coder".to_string(), "reviewer".to_string()];
        let req = TransitionRequest {
            kind: CardKind::Issue,
            card_id: "ISSUE-2",
            from: CodeReview,
            to: Done,
            wait_reason: None,
            roles: &coder,
        };
        let err = check_transition(&req).unwrap_err();
        assert_eq!(err.code().as_str(), "DONE_REQUIRES_INTEGRITY_GUARD");
        assert_eq!(
            err.to_string(),
            "ISSUE-2: only integrity_guard may move an issue to done (acting roles: coder, reviewer)"
        );
        let none: Vec<String> = vec![];
        let err = check_transition(&TransitionRequest {
            roles: &none,
            ..req.clone()
        })
        .unwrap_err();
        assert!(err.to_string().ends_with("(acting roles: none)"));
        let guard_second = vec!["reviewer".to_string(), INTEGRITY_GUARD.to_string()];
        assert_eq!(
            check_transition(&TransitionRequest {
                roles: &guard_second,
                ..req.clone()
            }),
            Ok(())
        );
        // Epics are not bound by the rule (their status is derived).
        assert_eq!(
            check_transition(&TransitionRequest {
                kind: CardKind::Epic,
                ..req
            }),
            Ok(())
        );
    }

    #[test]
    fn valid_statuses_per_kind() {
        assert_eq!(
            valid_statuses(CardKind::Rock),
            &[Ready, InProgress, Done, Canceled]
        );
        assert_eq!(
            valid_statuses(CardKind::Epic),
            &[Ready, InProgress, CodeReview, Done, Canceled]
        );
        assert_eq!(valid_statuses(CardKind::Issue).len(), 9);
    }

    #[test]
    fn derived_epic_status() {
        assert_eq!(derive_epic_status(&[]), Ready);
        assert_eq!(derive_epic_status(&[Ready, Ready]), Ready);
        assert_eq!(derive_epic_status(&[Ready, InProgress]), InProgress);
        assert_eq!(derive_epic_status(&[Done, Ready]), InProgress);
        assert_eq!(derive_epic_status(&[Done, CodeReview]), CodeReview);
        assert_eq!(
            derive_epic_status(&[ReadyForTesting, CodeReview]),
            CodeReview
        );
        assert_eq!(derive_epic_status(&[Done, Blocked]), InProgress);
        assert_eq!(derive_epic_status(&[Done, Canceled]), Done);
        assert_eq!(derive_epic_status(&[Canceled, Archived]), Canceled);
    }

    #[test]
    fn derived_rock_status() {
        assert_eq!(derive_rock_status(&[]), Ready);
        assert_eq!(derive_rock_status(&[Ready, CodeReview]), InProgress);
        assert_eq!(derive_rock_status(&[Done, Done]), Done);
        assert_eq!(derive_rock_status(&[Canceled]), Canceled);
    }
}
