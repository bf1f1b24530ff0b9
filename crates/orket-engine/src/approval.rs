//! A person's decision on a tool call parked by the approval policy
//! (`process_rules.approval_required`). The turn that made the call stored it as a
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

use crate::assets::RunAssets;
use crate::engine::Engine;
use crate::error::EngineError;
use crate::turn::effects::TurnEffects;
use crate::turn::execute::{Actor, Executor, StoreIssues};
use orket_core::tools::ToolResult;
use orket_core::{Event, Status, ToolCall};
use orket_governance::confine::Confinement;
use orket_governance::file_tools::FileTools;
use orket_governance::gate::{self, AllowedTools, GateContext};
use orket_store::events::EventLog;
use orket_store::{ApprovalRecord, Change, IssueUpdate, RunRecord, StoreError};
use std::collections::HashMap;
use std::path::PathBuf;
use std::sync::Arc;

/// Who decisions are recorded as.
const PERSON: &str = orket_core::PERSON_ACTOR;

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

impl Engine {
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
        let assets = RunAssets::load(self.tree(), self.registry(), &epic_name, &run.department)?;
        let snapshot: HashMap<String, Status> = store
            .list_issues(&call.build_id)
            .await?
            .into_iter()
            .map(|i| (i.id, i.status))
            .collect();
        let mut effects = TurnEffects::new(&run.id, &call.build_id, Arc::new(snapshot));
        let issue_id = call.issue_id.as_str();
        let workspace = workspace_of(self, &run, &assets)?;
        let (status, reason, result, note, back) = match decision {
            ApprovalDecision::Approve => {
                let result = self
                    .run_parked(&approval, &assets, &workspace, &mut effects)
                    .await?;
                // A call that did not move the issue puts it back where it was parked.
                let back = (effects.status(issue_id) == Some(call.resume_status))
                    .then_some(call.resume_status);
                let outcome = match result.error() {
                    None => "ran".to_string(),
                    Some(error) => format!("failed: {error}"),
                };
                let note = format!("Approved by a person: {} {outcome}", call.tool);
                ("approved", None, Some(result), note, back)
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
        effects.comment(issue_id, PERSON, &note);
        if let Some(to) = back {
            // Its real status until now (the gate judged the call as if it were `to`).
            effects.set_status(issue_id, Status::WaitingForDeveloper);
            effects.move_issue(issue_id, to, None, PERSON);
            effects.update(issue_id, IssueUpdate::by(PERSON).clear_wait_reason());
        }
        effects.changes.push(Change::DecideApproval {
            id,
            status: status.to_string(),
            reason: reason.clone(),
            result: result.as_ref().map(ToolResult::to_value),
        });
        effects.event(
            PERSON,
            issue_id,
            Event::ApprovalDecided {
                approval: id,
                tool: call.tool.clone(),
                status: status.to_string(),
                reason,
                result,
            },
        );
        let log = Arc::new(EventLog::for_workspace(workspace.root()));
        self.recorder()
            .with_log(log)
            .commit(effects.into_changes())
            .await?;
        store
            .get_approval(id)
            .await?
            .ok_or_else(|| EngineError::NotFound(format!("approval {id} not found")))
    }

    /// Runs the parked call as its turn would have: the gate again (without the approval
    /// rule), with the issue back in the status it was parked from, then the executor.
    async fn run_parked(
        &self,
        approval: &ApprovalRecord,
        assets: &RunAssets,
        workspace: &Arc<Confinement>,
        effects: &mut TurnEffects,
    ) -> Result<ToolResult, EngineError> {
        let call = &approval.call;
        let issue_id = call.issue_id.as_str();
        effects.set_status(issue_id, call.resume_status);
        let seat = assets.team.seats.iter().find(|s| s.key == call.seat);
        let mut role_names = vec![call.role.clone()];
        for r in seat.map(|s| s.roles.as_slice()).unwrap_or_default() {
            if !role_names.contains(r) {
                role_names.push(r.clone());
            }
        }
        let roles: Vec<_> = role_names
            .iter()
            .filter_map(|n| assets.roles.get(n).cloned())
            .collect();
        let tools = AllowedTools::from_names(&assets.policies.tool_strategy.tools(&roles));
        let tool_call = ToolCall {
            name: call.tool.clone(),
            args: call.args.as_object().cloned().unwrap_or_default(),
        };
        let checked = {
            let status_of = |id: &str| effects.status(id);
            let gate_ctx = GateContext {
                issue_id,
                roles: &role_names,
                allowed_tools: &tools,
                workspace,
                idesign: assets.epic.idesign,
                approval_required: &[],
                status_of: &status_of,
            };
            gate::check_call(&gate_ctx, &tool_call)
        };
        let checked = match checked {
            Ok(checked) => checked,
            Err(refusal) => return Ok(ToolResult::refused(refusal.code, refusal.to_string())),
        };
        let files = FileTools::new(Arc::clone(workspace));
        let executor = Executor {
            files: &files,
            issues: &StoreIssues(self.store().as_ref()),
            runtime: assets.policies.execution_runtime.as_ref(),
        };
        let actor = Actor {
            issue_id,
            role: &call.role,
            seat_name: seat.map(|s| s.name.as_str()).unwrap_or(&call.seat),
        };
        Ok(executor
            .execute(effects, checked.tool, &tool_call, &actor)
            .await?)
    }
}

/// The run's workspace, with the epic's references readable.
fn workspace_of(
    engine: &Engine,
    run: &RunRecord,
    assets: &RunAssets,
) -> Result<Arc<Confinement>, EngineError> {
    let references: Vec<PathBuf> = assets
        .epic
        .card
        .references
        .iter()
        .map(|r| engine.tree().root().join(r))
        .collect();
    let dir = PathBuf::from(&run.workspace);
    Confinement::workspace(&dir, &references)
        .map(Arc::new)
        .map_err(|e| EngineError::Workspace {
            path: dir.display().to_string(),
            message: e.to_string(),
        })
}
