//! A person's decision on a tool call parked by the approval policy
//! (`process_rules.approval_required`, SPEC §7). The turn that made the call stored it as a
//! pending approval and left its issue in `waiting_for_developer` (reason `input`).
//!
//! - Approve: the call passes the gate again (without the approval rule) and runs in the run's
//!   workspace as the turn would have run it; the issue goes back to the status it had when it
//!   was parked (`in_progress`, or `code_review` for a review turn) unless the call moved it.
//! - Reject: the reason becomes a comment and the issue goes back to `ready`, so the next run
//!   gives the agent another turn with the rejection in its prompt (like `reset_issue`, a
//!   person's reset is not bound by the agents' transition table).
//!
//! Everything a decision changes — the tool's effects, the issue, the comment, the approval
//! row and an `approval_decided` event — is applied as one batch.
//!
//! A decision first claims the approval (`pending` → `deciding`, one compare-and-set in the
//! store), so of two concurrent decisions (a double click, approve racing reject) exactly one
//! runs and the other gets a `Conflict` before anything happened. The batch then requires the
//! claim; a decision that fails gives the claim back (`pending`).

use crate::engine::{event, Engine, EngineError, EngineOptions};
use crate::turn::{self, TurnState};
use orket_core::assets::AssetTree;
use orket_core::tools::ToolResult;
use orket_core::{Status, ToolCall};
use orket_governance::gate::{self, AllowedTools, GateContext};
use orket_llm::{ModelReply, ModelRequest, Provider, ProviderError};
use orket_store::events::names;
use orket_store::events::EventBus;
use orket_store::{ApprovalRecord, Change, IssueUpdate, Store, StoreError};
use serde_json::json;
use std::collections::HashMap;
use std::path::PathBuf;
use std::sync::Arc;

/// Who decisions are recorded as.
const PERSON: &str = "person";

/// A person's decision on a pending approval.
#[derive(Debug, Clone, PartialEq)]
pub enum ApprovalDecision {
    /// Run the parked call.
    Approve,
    /// Do not run it; the reason is recorded as a comment.
    Reject {
        /// Why (optional).
        reason: Option<String>,
    },
}

/// The provider of an engine that only decides approvals: a decision runs at most the parked
/// tool call, never a model turn, so a call here is a bug reported as an error.
struct NoModel;

#[async_trait::async_trait]
impl Provider for NoModel {
    fn name(&self) -> &str {
        "none"
    }

    async fn complete(&self, _request: &ModelRequest) -> Result<ModelReply, ProviderError> {
        Err(ProviderError::Other(
            "an approval decision calls no model".to_string(),
        ))
    }
}

impl Engine {
    /// An engine for [`Engine::decide_approval`] alone (the CLI's `orket approval` and the
    /// server's approval routes): it has no model.
    pub fn for_decisions(tree: AssetTree, store: Arc<dyn Store>, bus: EventBus) -> Engine {
        Engine::new(
            tree,
            store,
            Arc::new(NoModel),
            bus,
            EngineOptions::from_env(),
        )
    }

    /// Applies a person's decision to pending approval `id` and returns the approval as it now
    /// stands. `NotFound` for an unknown approval; a store `Conflict` when it was already
    /// decided, is being decided by another request, or its issue no longer waits for it.
    pub async fn decide_approval(
        &self,
        id: i64,
        decision: ApprovalDecision,
    ) -> Result<ApprovalRecord, EngineError> {
        let store = self.store();
        store
            .apply(vec![Change::ClaimApproval { id }])
            .await
            .map_err(|e| match e {
                StoreError::NotFound { .. } => {
                    EngineError::NotFound(format!("approval {id} not found"))
                }
                other => other.into(),
            })?;
        match self.decide_claimed(id, decision).await {
            Ok(approval) => Ok(approval),
            Err(err) => {
                if let Err(e) = store.apply(vec![Change::ReleaseApproval { id }]).await {
                    tracing::warn!("approval {id}: cannot give the claim back: {e}");
                }
                Err(err)
            }
        }
    }

    /// The decision on approval `id`, claimed (`deciding`) by this caller.
    async fn decide_claimed(
        &self,
        id: i64,
        decision: ApprovalDecision,
    ) -> Result<ApprovalRecord, EngineError> {
        let store = self.store();
        let approval = store
            .get_approval(id)
            .await?
            .ok_or_else(|| EngineError::NotFound(format!("approval {id} not found")))?;
        let call = &approval.call;
        let run = store
            .get_run(&call.run_id)
            .await?
            .ok_or_else(|| EngineError::NotFound(format!("run {} not found", call.run_id)))?;
        let issue = store
            .get_issue(&call.build_id, &call.issue_id)
            .await?
            .ok_or_else(|| {
                EngineError::NotFound(format!(
                    "issue {} of build {} not found",
                    call.issue_id, call.build_id
                ))
            })?;
        if issue.status != Status::WaitingForDeveloper {
            return Err(StoreError::Conflict(format!(
                "issue {} is {}, no longer waiting for approval {id}",
                issue.id, issue.status
            ))
            .into());
        }
        let epic_name = run.params["epic"]
            .as_str()
            .unwrap_or(&run.target)
            .to_string();
        let assets = self.prepare(&epic_name, &run.department)?;
        let ctx = self.run_ctx(
            run.id.clone(),
            run.build_id.clone(),
            run.params["target"].as_str(),
            assets,
            &PathBuf::from(&run.workspace),
        )?;
        let snapshot: HashMap<String, Status> = store
            .list_issues(&call.build_id)
            .await?
            .into_iter()
            .map(|i| (i.id, i.status))
            .collect();
        let mut state = TurnState::new(Arc::new(snapshot));
        let issue_id = call.issue_id.as_str();
        let (status, reason, result, note, back) = match decision {
            ApprovalDecision::Approve => {
                // The call is judged as if the issue were back where the turn had it.
                state.set_status(issue_id, call.resume_status);
                let seat = ctx.assets.team.seats.iter().find(|s| s.key == call.seat);
                let mut role_names = vec![call.role.clone()];
                for r in seat.map(|s| s.roles.as_slice()).unwrap_or_default() {
                    if !role_names.contains(r) {
                        role_names.push(r.clone());
                    }
                }
                let roles: Vec<_> = role_names
                    .iter()
                    .filter_map(|n| ctx.assets.roles.get(n).cloned())
                    .collect();
                let tools =
                    AllowedTools::from_names(&ctx.assets.policies.tool_strategy.tools(&roles));
                let tool_call = ToolCall {
                    name: call.tool.clone(),
                    args: call.args.as_object().cloned().unwrap_or_default(),
                };
                let status_of = |id: &str| state.status(id);
                let gate_ctx = GateContext {
                    issue_id,
                    roles: &role_names,
                    allowed_tools: &tools,
                    workspace: &ctx.workspace,
                    idesign: ctx.assets.epic.idesign,
                    approval_required: &[],
                    status_of: &status_of,
                };
                let verdict = gate::check_call(&gate_ctx, &tool_call);
                let result = match verdict {
                    Ok(checked) => {
                        let seat_name = seat.map(|s| s.name.as_str()).unwrap_or(&call.seat);
                        turn::execute(
                            self,
                            &ctx,
                            &mut state,
                            checked.tool,
                            &tool_call,
                            issue_id,
                            &call.role,
                            seat_name,
                        )
                        .await?
                    }
                    Err(refusal) => ToolResult::refused(refusal.code, refusal.to_string()),
                };
                // A call that did not move the issue puts it back where it was parked.
                let back = (state.status(issue_id) == Some(call.resume_status))
                    .then_some(call.resume_status);
                let outcome = match result.error() {
                    None => "ran".to_string(),
                    Some(error) => format!("failed: {error}"),
                };
                let note = format!("Approved by a person: {} {outcome}", call.tool);
                ("approved", None, Some(result.to_value()), note, back)
            }
            ApprovalDecision::Reject { reason } => {
                let text = reason
                    .as_deref()
                    .map(str::trim)
                    .filter(|r| !r.is_empty())
                    .unwrap_or("no reason given");
                let note = format!(
                    "Rejected by a person: {} was not run ({text}). Do the work another way.",
                    call.tool
                );
                ("rejected", reason, None, note, Some(Status::Ready))
            }
        };
        turn::comment(&mut state, &ctx, issue_id, PERSON, &note);
        if let Some(to) = back {
            // Its real status until now (the gate judged the call as if it were `to`).
            state.set_status(issue_id, Status::WaitingForDeveloper);
            turn::move_issue(&mut state, &ctx, issue_id, to, None, PERSON);
            clear_wait_reason(&mut state, &ctx.build_id, issue_id);
        }
        state.changes.push(Change::DecideApproval {
            id,
            status: status.to_string(),
            reason: reason.clone(),
            result: result.clone(),
        });
        state.events.push(event(
            &ctx,
            names::APPROVAL_DECIDED,
            Some(PERSON),
            Some(issue_id),
            json!({"approval": id, "tool": call.tool, "status": status, "reason": reason, "result": result}),
        ));
        turn::commit_state(self, &ctx, state).await?;
        store
            .get_approval(id)
            .await?
            .ok_or_else(|| EngineError::NotFound(format!("approval {id} not found")))
    }
}

fn clear_wait_reason(state: &mut TurnState, build_id: &str, issue_id: &str) {
    state.changes.push(Change::UpdateIssue {
        build_id: build_id.to_string(),
        id: issue_id.to_string(),
        update: IssueUpdate::by(PERSON).clear_wait_reason(),
    });
}
