//! The executor: what an allowed call does. File tools act on the workspace through
//! `orket-governance`'s file tools; card tools become changes of the turn's batch; recorded
//! tools become events. The dispatch is an exhaustive `match` on [`Tool`], so a new tool in
//! the contract does not compile until it is served here. Turns and approval decisions both
//! execute through [`Executor::execute`].

use crate::policy::ExecutionRuntime;
use crate::turn::effects::TurnEffects;
use async_trait::async_trait;
use orket_core::bugfix::{Severity, BUG_TYPE};
use orket_core::priority::parse_priority;
use orket_core::tools::{as_number, Tool, ToolResult};
use orket_core::{Event, Status, ToolCall, WaitReason};
use orket_governance::file_tools::FileTools;
use orket_store::{Change, Comment, IssueRecord, IssueUpdate, Store, StoreResult};
use serde_json::{json, Value};

/// Reads another issue for `get_issue_context`.
#[async_trait]
pub(crate) trait IssueReader: Send + Sync {
    /// Issue `id` of `build_id` with its comments, oldest first.
    async fn issue_context(
        &self,
        build_id: &str,
        id: &str,
    ) -> StoreResult<Option<(IssueRecord, Vec<Comment>)>>;
}

/// Reads issues from a store.
pub(crate) struct StoreIssues<'a>(pub &'a dyn Store);

#[async_trait]
impl IssueReader for StoreIssues<'_> {
    async fn issue_context(
        &self,
        build_id: &str,
        id: &str,
    ) -> StoreResult<Option<(IssueRecord, Vec<Comment>)>> {
        match self.0.get_issue(build_id, id).await? {
            Some(issue) => Ok(Some((issue, self.0.list_comments(build_id, id).await?))),
            None => Ok(None),
        }
    }
}

/// Who acts: the turn's issue, role and seat.
pub(crate) struct Actor<'a> {
    /// The turn's issue.
    pub issue_id: &'a str,
    /// The acting role (audited as the actor of status changes).
    pub role: &'a str,
    /// The seat's display name (signs comments).
    pub seat_name: &'a str,
}

/// What allowed calls act on.
#[derive(Clone)]
pub(crate) struct Executor<'a> {
    /// The workspace's file tools.
    pub files: &'a FileTools,
    /// Other issues, for `get_issue_context`.
    pub issues: &'a dyn IssueReader,
    /// New issue ids.
    pub runtime: &'a dyn ExecutionRuntime,
}

impl Executor<'_> {
    /// Executes an allowed call of `tool`, recording its effects in `effects`.
    pub async fn execute(
        &self,
        effects: &mut TurnEffects,
        tool: Tool,
        call: &ToolCall,
        actor: &Actor<'_>,
    ) -> StoreResult<ToolResult> {
        if let Some(result) = self.files.run(tool, call).await {
            if matches!(tool, Tool::WriteFile | Tool::DeleteFile) && result.is_ok() {
                effects.wrote_files = true;
                effects.progress = true;
            }
            return Ok(result);
        }
        let own = actor.issue_id;
        let target = call.issue_or(own).to_string();
        Ok(match tool {
            Tool::UpdateIssueStatus => {
                let status: Status = match call.str_arg("status").unwrap_or_default().parse() {
                    Ok(s) => s,
                    Err(e) => return Ok(ToolResult::failed(e.to_string())),
                };
                let wait = call.str_arg("wait_reason").and_then(|w| w.parse().ok());
                effects.move_issue(&target, status, wait, actor.role);
                if let Some(comment) = call.str_arg("comment").filter(|c| !c.trim().is_empty()) {
                    effects.comment(&target, actor.seat_name, comment);
                }
                ToolResult::ok(json!({"issue_id": target, "status": status}))
            }
            Tool::AddIssueComment => {
                let text = call.str_arg("comment").unwrap_or_default();
                effects.comment(own, actor.seat_name, text);
                ToolResult::ok(json!({}))
            }
            Tool::GetIssueContext => {
                match self
                    .issues
                    .issue_context(effects.build_id(), &target)
                    .await?
                {
                    Some((issue, comments)) => {
                        let comments: Vec<Value> = comments
                            .into_iter()
                            .map(|c| json!({"author": c.author, "comment": c.content}))
                            .collect();
                        let status = effects.status(&target).unwrap_or(issue.status);
                        ToolResult::ok(json!({
                            "issue_id": issue.id, "status": status, "summary": issue.name,
                            "description": issue.description, "comments": comments,
                        }))
                    }
                    None => ToolResult::failed(format!("unknown issue {target}")),
                }
            }
            Tool::CreateIssue => self.create_issue(effects, call, actor),
            Tool::RequestExcuse => {
                let reason = call.str_arg("reason").unwrap_or_default();
                effects.move_issue(
                    own,
                    Status::WaitingForDeveloper,
                    Some(WaitReason::Input),
                    actor.role,
                );
                effects.comment(own, actor.seat_name, &format!("Excuse requested: {reason}"));
                ToolResult::ok(json!({"status": Status::WaitingForDeveloper}))
            }
            Tool::ReportCredits => {
                let amount = call.args.get("amount").and_then(as_number).unwrap_or(0.0);
                effects.changes.push(Change::AddCredits {
                    build_id: effects.build_id().to_string(),
                    id: own.to_string(),
                    amount,
                    actor: actor.role.to_string(),
                });
                ToolResult::ok(json!({"amount": amount}))
            }
            Tool::ResetIssue => {
                effects.move_issue(&target, Status::Ready, None, actor.role);
                effects.update(
                    &target,
                    IssueUpdate::by(actor.role)
                        .retry_count(0u32)
                        .clear_wait_reason(),
                );
                ToolResult::ok(json!({"issue_id": target, "status": Status::Ready}))
            }
            Tool::NominateCard => {
                let args = call.args.clone();
                effects.event(actor.role, own, Event::NominateCard { args });
                ToolResult::ok(json!({"recorded": tool.name()}))
            }
            Tool::RefinementProposal => {
                let args = call.args.clone();
                effects.event(actor.role, own, Event::RefinementProposal { args });
                ToolResult::ok(json!({"recorded": tool.name()}))
            }
            Tool::ArchiveEval | Tool::PromotePrompt | Tool::ImageAnalyze | Tool::ImageGenerate => {
                ToolResult::failed(format!("{tool} is not available in this build"))
            }
            // Served by the file tools above.
            Tool::ReadFile | Tool::WriteFile | Tool::ListDirectory | Tool::DeleteFile => {
                ToolResult::failed(format!("{tool}: not a card tool"))
            }
        })
    }

    /// A new issue in the build, with a fresh id, depending on what the call names.
    fn create_issue(
        &self,
        effects: &mut TurnEffects,
        call: &ToolCall,
        actor: &Actor<'_>,
    ) -> ToolResult {
        let mut id = self.runtime.issue_id();
        while effects.status(&id).is_some() {
            id = self.runtime.issue_id();
        }
        let mut record = IssueRecord::new(
            effects.build_id(),
            &id,
            call.str_arg("summary").unwrap_or_default(),
            call.str_arg("seat").unwrap_or_default(),
        );
        record.issue_type = call.str_arg("type").unwrap_or("issue").to_string();
        let severity = call
            .str_arg("severity")
            .and_then(|s| s.parse::<Severity>().ok());
        record.severity = severity
            .or_else(|| (record.issue_type == BUG_TYPE).then_some(Severity::DEFAULT_FOR_BUGS));
        record.priority = parse_priority(call.args.get("priority")).unwrap_or(2.0);
        record.depends_on = call.names_arg("depends_on");
        record.parent_id = Some(actor.issue_id.to_string());
        record.session_id = Some(effects.run_id().to_string());
        let (issue_type, record_severity) = (record.issue_type.clone(), record.severity);
        effects.changes.push(Change::InsertIssue(record));
        effects.set_status(&id, Status::Ready);
        effects.progress = true;
        ToolResult::ok(match record_severity {
            Some(severity) => json!({"issue_id": id, "type": issue_type, "severity": severity}),
            None => json!({"issue_id": id, "type": issue_type}),
        })
    }
}
