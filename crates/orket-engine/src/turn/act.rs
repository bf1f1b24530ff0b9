//! One call of a step: the gate, the approval policy, then the executor. A gate refusal is a
//! governance matter (the turn corrects the model, and blocks the issue when it cannot); a tool
//! that fails on its own terms is only a result; a `done` refused because the verification
//! failed sends the issue back to its developer; a call that needs a person's approval parks
//! the issue.

use crate::turn::effects::TurnEffects;
use crate::turn::execute::{Actor, Executor};
use orket_core::tools::{ToolKind, ToolResult};
use orket_core::{Event, RefusalCode, Status, ToolCall, WaitReason};
use orket_governance::confine::Confinement;
use orket_governance::gate::{self, AllowedTools, Checked, Decision, GateContext, Refusal};
use orket_store::{Change, NewApproval, StoreResult};
use serde_json::Value;

/// Who engine-made changes are recorded as.
pub(crate) const ORKET: &str = orket_core::ENGINE_ACTOR;

/// What the calls of one turn are judged against.
#[derive(Clone)]
pub(crate) struct Rules<'a> {
    /// The turn's issue.
    pub issue_id: &'a str,
    /// The acting role names, the primary one first.
    pub roles: &'a [String],
    /// The tools they may call.
    pub tools: &'a AllowedTools,
    /// The seat's key (recorded with a parked call).
    pub seat: &'a str,
    /// The seat's display name (signs comments).
    pub seat_name: &'a str,
    /// The workspace paths are confined to.
    pub workspace: &'a Confinement,
    /// The epic has iDesign on.
    pub idesign: bool,
    /// The tools whose calls wait for a person.
    pub approval_required: &'a [String],
    /// The status the issue has while the turn works on it.
    pub working_status: Status,
    /// The summary of this review's failed verification, if it failed.
    pub failed_verification: Option<&'a str>,
}

/// A gate refusal the turn could not correct: the violation that ends it, with the call.
pub(crate) struct Violation {
    pub refusal: Refusal,
    pub call: Option<ToolCall>,
}

/// What became of one call.
pub(crate) enum CallOutcome {
    /// The tool ran and did its job.
    Ran(ToolResult),
    /// The tool ran and failed on its own terms (a missing file, a folder read as a file): its
    /// error goes back to the model as the call's result.
    Failed(ToolResult),
    /// The gate refused the call; it did not run.
    Refused(Refusal),
    /// The call waits for a person's approval: the issue is parked.
    Parked,
    /// A `done` refused because the verification failed: the work went back to its developer.
    SentBack,
    /// The gate allows the call, but it is not a move that makes progress from where the turn
    /// is (see `turn::shape`): why. It did not run.
    NotLegal(String),
}

/// Judges `call` under `rules` (the gate, the verification rule, the approval policy), then by
/// `legal` (what the step may do), and runs it when both allow it; its result is added to the
/// turn's. The gate judges first: a breach of policy is recorded as one even when the step
/// would not have allowed the call either.
pub(crate) async fn act_one(
    rules: &Rules<'_>,
    executor: &Executor<'_>,
    effects: &mut TurnEffects,
    call: &ToolCall,
    legal: &(dyn Fn(&ToolCall) -> Result<(), String> + Sync),
) -> StoreResult<CallOutcome> {
    let tool = match check(rules, effects, call) {
        Ok(Checked {
            tool,
            decision: Decision::Allow,
        }) => tool,
        Ok(Checked {
            decision: Decision::NeedsApproval,
            ..
        }) => {
            park(rules, effects, call);
            return Ok(CallOutcome::Parked);
        }
        Err(refusal) if refusal.code == RefusalCode::VerificationFailed => {
            send_back(rules, effects, &refusal);
            return Ok(CallOutcome::SentBack);
        }
        Err(refusal) => {
            effects
                .results
                .push(ToolResult::refused(refusal.code, refusal.to_string()));
            return Ok(CallOutcome::Refused(refusal));
        }
    };
    if let Err(why) = legal(call) {
        return Ok(CallOutcome::NotLegal(why));
    }
    let actor = Actor {
        issue_id: rules.issue_id,
        role: rules.roles[0].as_str(),
        seat_name: rules.seat_name,
    };
    let result = executor.execute(effects, tool, call, &actor).await?;
    effects.results.push(result.clone());
    let failed = !result.is_ok() && tool.spec().kind != ToolKind::Unavailable;
    Ok(if failed {
        CallOutcome::Failed(result)
    } else {
        CallOutcome::Ran(result)
    })
}

/// The gate's verdict on `call`, then the verification rule for `done`.
fn check(rules: &Rules<'_>, effects: &TurnEffects, call: &ToolCall) -> Result<Checked, Refusal> {
    let status_of = |id: &str| effects.status(id);
    let gate_ctx = GateContext {
        issue_id: rules.issue_id,
        roles: rules.roles,
        allowed_tools: rules.tools,
        workspace: rules.workspace,
        idesign: rules.idesign,
        approval_required: rules.approval_required,
        status_of: &status_of,
    };
    let checked = gate::check_call(&gate_ctx, call)?;
    gate::check_verified_done(call, rules.issue_id, rules.failed_verification)?;
    Ok(checked)
}

/// Not a breach of policy but unfinished work: the review sends the issue back to its
/// developer with the failures; the turn's other effects stand.
fn send_back(rules: &Rules<'_>, effects: &mut TurnEffects, refusal: &Refusal) {
    let primary = rules.roles[0].as_str();
    effects
        .results
        .push(ToolResult::refused(refusal.code, refusal.to_string()));
    effects.move_issue(rules.issue_id, Status::InProgress, None, primary);
    effects.comment(
        rules.issue_id,
        ORKET,
        &format!("{refusal} Sent back to the developer."),
    );
    effects.event(
        primary,
        rules.issue_id,
        Event::DoneRefused {
            code: refusal.code,
            message: refusal.message.clone(),
        },
    );
}

/// Parks `call` for a person's decision: the issue waits in `waiting_for_developer`.
fn park(rules: &Rules<'_>, effects: &mut TurnEffects, call: &ToolCall) {
    let primary = rules.roles[0].as_str();
    let message = format!(
        "{} needs a person's approval (process_rules.approval_required); the issue waits for it",
        call.name
    );
    effects.results.push(ToolResult::refused(
        RefusalCode::ApprovalRequired,
        format!("APPROVAL_REQUIRED: {message}"),
    ));
    effects.move_issue(
        rules.issue_id,
        Status::WaitingForDeveloper,
        Some(WaitReason::Input),
        ORKET,
    );
    effects.comment(rules.issue_id, ORKET, &message);
    effects.changes.push(Change::RequestApproval(NewApproval {
        run_id: effects.run_id().to_string(),
        build_id: effects.build_id().to_string(),
        issue_id: rules.issue_id.to_string(),
        role: primary.to_string(),
        seat: rules.seat.to_string(),
        tool: call.name.clone(),
        args: Value::Object(call.args.clone()),
        resume_status: rules.working_status,
    }));
    effects.event(
        primary,
        rules.issue_id,
        Event::ApprovalRequested {
            tool: call.name.clone(),
            args: call.args.clone(),
        },
    );
}
