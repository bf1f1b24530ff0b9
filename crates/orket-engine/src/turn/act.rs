//! A reply's calls, one by one: the gate, the approval policy, then the executor. The first
//! refusal or failed tool stops the turn: a gate refusal or failed tool is a governance
//! violation; a `done` refused because the verification failed sends the issue back to its
//! developer; a call that needs a person's approval parks the issue.

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

/// A gate refusal or failed tool: the violation that ends the turn, with the call.
pub(crate) struct Violation {
    pub refusal: Refusal,
    pub call: Option<ToolCall>,
}

/// Runs `calls` in order under `rules`; the violation that stopped them, if one did.
pub(crate) async fn act(
    rules: &Rules<'_>,
    executor: &Executor<'_>,
    effects: &mut TurnEffects,
    calls: &[ToolCall],
) -> StoreResult<Option<Violation>> {
    if let Err(refusal) = gate::check_budget(calls) {
        return Ok(Some(Violation {
            refusal,
            call: None,
        }));
    }
    let primary = rules.roles[0].as_str();
    let actor = Actor {
        issue_id: rules.issue_id,
        role: primary,
        seat_name: rules.seat_name,
    };
    for call in calls {
        let checked = check(rules, effects, call);
        let tool = match checked {
            Ok(Checked {
                tool,
                decision: Decision::Allow,
            }) => tool,
            Ok(Checked {
                decision: Decision::NeedsApproval,
                ..
            }) => {
                park(rules, effects, call);
                return Ok(None);
            }
            Err(refusal) if refusal.code == RefusalCode::VerificationFailed => {
                send_back(rules, effects, &refusal);
                return Ok(None);
            }
            Err(refusal) => {
                effects
                    .results
                    .push(ToolResult::refused(refusal.code, refusal.to_string()));
                return Ok(Some(Violation {
                    refusal,
                    call: Some(call.clone()),
                }));
            }
        };
        let result = executor.execute(effects, tool, call, &actor).await?;
        let failed = !result.is_ok() && tool.spec().kind != ToolKind::Unavailable;
        effects.results.push(result.clone());
        if failed {
            let error = result.error().unwrap_or("the tool failed");
            let message = if error.starts_with(&format!("{}:", call.name)) {
                error.to_string()
            } else {
                format!("{}: {error}", call.name)
            };
            return Ok(Some(Violation {
                refusal: Refusal::new(RefusalCode::ToolFailed, message),
                call: Some(call.clone()),
            }));
        }
    }
    Ok(None)
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
