//! How a turn that did not go through ends: a governance violation blocks the issue and
//! writes a report; a turn whose model call failed, or whose steps or corrections ran out
//! without the seat's move, is retried by the next tick (or, past `max_retries`, blocks the
//! issue as catastrophic and fails the run); an issue that cannot be routed is blocked with the
//! reason. Each adds to the turn's effects; the turn commits them.

use crate::turn::act::{Violation, ORKET};
use crate::turn::effects::TurnEffects;
use orket_core::events::TurnFailure;
use orket_core::{Event, RefusalCode, Status, WaitReason};
use orket_store::{IssueRecord, IssueUpdate};
use serde_json::json;
use std::path::Path;

/// Who violated the policy, for the report.
pub(crate) struct Offender<'a> {
    pub run_id: &'a str,
    pub role: &'a str,
    pub seat: &'a str,
    pub seq: i64,
}

/// A refused call or a failed tool: the issue is blocked with the reason, a report is written
/// to `<workspace>/agent_output/policy_violation_<issue>.json`.
pub(crate) fn governance_failure(
    workspace: &Path,
    issue: &IssueRecord,
    who: &Offender<'_>,
    violation: Violation,
    effects: &mut TurnEffects,
) {
    let id = issue.id.as_str();
    let refusal = violation.refusal;
    let report = json!({
        "run_id": who.run_id,
        "issue_id": id,
        "seat": who.seat,
        "role": who.role,
        "turn": who.seq,
        "code": refusal.code,
        "message": refusal.message,
        "call": violation.call,
        "timestamp": orket_store::now_timestamp(),
    });
    let dir = workspace.join("agent_output");
    let path = dir.join(format!("policy_violation_{id}.json"));
    let written = std::fs::create_dir_all(&dir).and_then(|_| {
        std::fs::write(
            &path,
            serde_json::to_vec_pretty(&report).unwrap_or_default(),
        )
    });
    effects.move_issue(id, Status::Blocked, Some(WaitReason::System), ORKET);
    effects.comment(id, ORKET, &format!("Blocked by the gate: {refusal}"));
    match written {
        Ok(()) => effects.event(
            who.role,
            id,
            Event::PolicyViolationReportSaved {
                path: path.display().to_string(),
                code: refusal.code,
            },
        ),
        Err(e) => tracing::warn!("cannot write {}: {e}", path.display()),
    }
    effects.event(
        who.role,
        id,
        Event::TurnFailed {
            seq: Some(who.seq),
            kind: TurnFailure::Governance,
            code: Some(refusal.code),
            error: refusal.message,
        },
    );
}

/// Why a turn left its issue where it was.
pub(crate) struct Stuck {
    /// What kind of failure.
    pub kind: TurnFailure,
    /// Its code, when it has one.
    pub code: Option<RefusalCode>,
    /// What happened.
    pub error: String,
}

impl Stuck {
    /// The model call failed (after its retries).
    pub fn model(error: &str) -> Stuck {
        Stuck {
            kind: TurnFailure::Model,
            code: None,
            error: error.to_string(),
        }
    }

    /// The steps or the corrections ran out before the seat's move.
    pub fn steps(error: String) -> Stuck {
        Stuck {
            kind: TurnFailure::Steps,
            code: Some(RefusalCode::ToolBudget),
            error,
        }
    }
}

/// A turn that left its issue where it was: `retry_count + 1` and back where the turn found
/// it, or past `max_retries` blocked as catastrophic. Returns why the run must stop, if it must
/// (only a model that keeps failing stops it).
/// A review whose verification failed sent the work back to its developer: that counts as a
/// failed attempt of the issue (else a model that never passes would be sent back forever);
/// past `max_retries` the issue is blocked as catastrophic.
pub(crate) fn count_send_back(issue: &IssueRecord, role: &str, effects: &mut TurnEffects) {
    let retries = issue.retry_count + 1;
    let message = "the verification failed and the work was sent back";
    if retries > issue.max_retries {
        give_up(issue, role, retries, message, effects);
    } else {
        effects.update(&issue.id, IssueUpdate::by(ORKET).retry_count(retries));
        effects.event(
            role,
            &issue.id,
            Event::RetryTriggered {
                retry_count: retries,
                max_retries: issue.max_retries,
                error: message.to_string(),
            },
        );
    }
}

/// Blocks the issue after `retries` failed attempts, saying why.
fn give_up(
    issue: &IssueRecord,
    role: &str,
    retries: u32,
    message: &str,
    effects: &mut TurnEffects,
) {
    let id = issue.id.as_str();
    effects.move_issue(id, Status::Blocked, Some(WaitReason::System), ORKET);
    effects.update(id, IssueUpdate::by(ORKET).retry_count(retries));
    effects.comment(
        id,
        ORKET,
        &format!(
            "catastrophic: {retries} failed attempts (max_retries {}); last error: {message}",
            issue.max_retries
        ),
    );
    effects.event(
        role,
        id,
        Event::CatastrophicFailure {
            retries,
            error: message.to_string(),
        },
    );
}

pub(crate) fn retry_or_fail(
    issue: &IssueRecord,
    role: &str,
    stuck: &Stuck,
    effects: &mut TurnEffects,
) -> Option<String> {
    let message = stuck.error.as_str();
    let retries = issue.retry_count + 1;
    let id = issue.id.as_str();
    let mut stop_run = None;
    if retries > issue.max_retries {
        give_up(issue, role, retries, message, effects);
        // A model that keeps failing fails every issue alike: the run stops. An issue whose
        // turns keep ending without a move is only its own problem: the run goes on without it.
        if stuck.kind == TurnFailure::Model {
            stop_run = Some(format!(
                "{id} failed {retries} times (catastrophic): {message}"
            ));
        }
    } else {
        if effects.status(id) != Some(issue.status) {
            effects.move_issue(id, issue.status, None, ORKET);
        }
        effects.update(id, IssueUpdate::by(ORKET).retry_count(retries));
        effects.event(
            role,
            id,
            Event::RetryTriggered {
                retry_count: retries,
                max_retries: issue.max_retries,
                error: message.to_string(),
            },
        );
    }
    effects.event(
        role,
        id,
        Event::TurnFailed {
            seq: None,
            kind: stuck.kind,
            code: stuck.code,
            error: message.to_string(),
        },
    );
    // A retry counts as progress: retry_count moved, and max_retries bounds the repeats.
    effects.progress = true;
    stop_run
}

/// An issue that cannot be worked on (unknown seat, missing role or dialect): blocked with
/// the reason as a comment.
pub(crate) fn routing_failure(issue: &IssueRecord, reason: &str, effects: &mut TurnEffects) {
    effects.move_issue(&issue.id, Status::Blocked, Some(WaitReason::System), ORKET);
    effects.comment(&issue.id, ORKET, reason);
    effects.events.push(
        orket_store::NewEvent::new(
            Some(effects.run_id()),
            Event::TurnFailed {
                seq: None,
                kind: TurnFailure::Routing,
                code: None,
                error: reason.to_string(),
            },
        )
        .issue(issue.id.clone()),
    );
}
