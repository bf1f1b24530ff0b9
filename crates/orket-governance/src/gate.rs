//! The gate: every tool call is checked here before it executes.
//!
//! [`check_call`] runs the checks in a fixed order — known tool, role tools, the arguments
//! against the tool contract (`orket_core::tools`: the same table the model's schema is made
//! from), then the tool's own rules (paths, size, iDesign, status changes, issue creation) and
//! finally the approval policy. Every refusal
//! carries a stable [`RefusalCode`] and a message naming the tool and the path, issue or status
//! concerned.

use crate::confine::Confinement;
use crate::idesign::check_idesign;
pub use crate::refusal::{Refusal, RefusalCode};
use orket_core::lifecycle::{check_transition, TransitionRequest, LEAD_ROLES};
use orket_core::tools::{tool_names, ArgKind, Tool, ToolKind};
pub use orket_core::tools::{MAX_CONTENT_BYTES, MIN_SUMMARY_CHARS};
use orket_core::{CardKind, Status, ToolCall, WaitReason};
use serde::Serialize;
use serde_json::Value;

/// What the gate lets a call do.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize)]
#[serde(rename_all = "snake_case")]
pub enum Decision {
    /// Execute the call now.
    Allow,
    /// The call is allowed but a person must approve it first (`process_rules.approval_required`).
    NeedsApproval,
}

/// A call the gate let through: which tool it is and what may happen now.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct Checked {
    /// The tool called.
    pub tool: Tool,
    /// Execute now, or wait for a person.
    pub decision: Decision,
}

/// The tools a turn may call: the union of the acting roles' `tools`, or any tool when no
/// role lists one.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum AllowedTools {
    /// No role restricts the tools.
    Any,
    /// Only these (names the roles list that are no tool are left out: `orket check` warns
    /// about them).
    Only(Vec<Tool>),
}

impl AllowedTools {
    /// The tools of roles whose `tools` lists are `names` (empty: no restriction).
    pub fn from_names(names: &[String]) -> AllowedTools {
        if names.is_empty() {
            return AllowedTools::Any;
        }
        let mut tools = Vec::new();
        for tool in names.iter().filter_map(|n| Tool::from_name(n)) {
            if !tools.contains(&tool) {
                tools.push(tool);
            }
        }
        AllowedTools::Only(tools)
    }

    /// Whether `tool` may be called.
    pub fn allows(&self, tool: Tool) -> bool {
        match self {
            AllowedTools::Any => true,
            AllowedTools::Only(tools) => tools.contains(&tool),
        }
    }

    /// The tools a model is offered, in order: the listed ones, or every tool that is served
    /// here.
    pub fn offered(&self) -> Vec<Tool> {
        match self {
            AllowedTools::Any => Tool::ALL
                .into_iter()
                .filter(|t| t.spec().kind != ToolKind::Unavailable)
                .collect(),
            AllowedTools::Only(tools) => tools.clone(),
        }
    }
}

/// What the gate knows about the turn a call belongs to.
#[derive(Clone, Copy)]
pub struct GateContext<'a> {
    /// The issue of this turn.
    pub issue_id: &'a str,
    /// The acting roles (review turns start with `integrity_guard`).
    pub roles: &'a [String],
    /// The tools the acting roles may call.
    pub allowed_tools: &'a AllowedTools,
    /// The workspace paths are confined to.
    pub workspace: &'a Confinement,
    /// True when the epic has `architecture_governance.idesign` on.
    pub idesign: bool,
    /// The tools that need a person's approval (`process_rules.approval_required`).
    pub approval_required: &'a [String],
    /// The current status of an issue of the build (as changed so far in this turn).
    pub status_of: &'a (dyn Fn(&str) -> Option<Status> + Sync),
}

/// Refuses moving `issue_id` to `done` while the verification run for this review failed;
/// `failed` is that run's summary (`None` when it passed or the issue has no fixture).
pub fn check_verified_done(
    call: &ToolCall,
    issue_id: &str,
    failed: Option<&str>,
) -> Result<(), Refusal> {
    let Some(summary) = failed else {
        return Ok(());
    };
    if Tool::from_name(&call.name) == Some(Tool::UpdateIssueStatus)
        && call.issue_or(issue_id) == issue_id
        && call.status_arg() == Some(Status::Done)
    {
        return Err(Refusal::new(
            RefusalCode::VerificationFailed,
            format!("update_issue_status: {issue_id} cannot move to done: its verification failed. {summary}"),
        ));
    }
    Ok(())
}

/// Checks one tool call before it executes; see the module doc for the order of checks.
pub fn check_call(ctx: &GateContext, call: &ToolCall) -> Result<Checked, Refusal> {
    let name = call.name.as_str();
    let Some(tool) = Tool::from_name(name) else {
        return Err(Refusal::new(
            RefusalCode::UnknownTool,
            format!("unknown tool '{name}' (known tools: {})", tool_names()),
        ));
    };
    if !ctx.allowed_tools.allows(tool) {
        return Err(Refusal::new(
            RefusalCode::RoleTool,
            format!(
                "tool '{name}' is not allowed for role(s) {} (their tools: {})",
                list_or_none(ctx.roles),
                list_or_none(
                    &ctx.allowed_tools
                        .offered()
                        .iter()
                        .map(|t| t.name().to_string())
                        .collect::<Vec<_>>()
                )
            ),
        ));
    }
    check_args(ctx, tool, call)?;
    match tool {
        Tool::ReadFile | Tool::ListDirectory => {
            let path = call.str_arg("path").unwrap_or(".");
            ctx.workspace
                .resolve_read(path)
                .map_err(|r| r.within(name))?;
        }
        Tool::WriteFile => check_write(ctx, call)?,
        Tool::DeleteFile => {
            let path = call.str_arg("path").unwrap_or_default();
            ctx.workspace
                .resolve_delete(path)
                .map_err(|r| r.within(name))?;
        }
        Tool::ResetIssue => {
            let target = call.issue_or(ctx.issue_id);
            check_may_change(ctx, name, target)?;
            known_status(ctx, name, target)?;
        }
        Tool::UpdateIssueStatus => check_status_change(ctx, call)?,
        Tool::CreateIssue => check_create_issue(ctx, call)?,
        Tool::GetIssueContext => {
            known_status(ctx, name, call.issue_or(ctx.issue_id))?;
        }
        Tool::RequestExcuse => {
            let from = known_status(ctx, name, ctx.issue_id)?;
            let req = TransitionRequest {
                kind: CardKind::Issue,
                card_id: ctx.issue_id,
                from,
                to: Status::WaitingForDeveloper,
                wait_reason: Some(WaitReason::Input),
                roles: ctx.roles,
            };
            check_transition(&req).map_err(|e| Refusal::new(e.code(), format!("{name}: {e}")))?;
        }
        // Their arguments are all there is to check.
        Tool::AddIssueComment
        | Tool::ReportCredits
        | Tool::NominateCard
        | Tool::RefinementProposal
        | Tool::ArchiveEval
        | Tool::PromotePrompt
        | Tool::ImageAnalyze
        | Tool::ImageGenerate => {}
    }
    let decision = if ctx.approval_required.iter().any(|t| t == name) {
        Decision::NeedsApproval
    } else {
        Decision::Allow
    };
    Ok(Checked { tool, decision })
}

/// The call's arguments against the tool contract; a missing or wrong `confirm` says what
/// the destructive call would have done.
fn check_args(ctx: &GateContext, tool: Tool, call: &ToolCall) -> Result<(), Refusal> {
    let Err(problem) = tool.spec().check_args(&call.args) else {
        return Ok(());
    };
    if problem.arg.kind != ArgKind::Confirm {
        return Err(Refusal::new(problem.code, problem.message));
    }
    let what = match tool {
        Tool::DeleteFile => format!("deleting '{}'", call.str_arg("path").unwrap_or_default()),
        _ => format!("resetting {}", call.issue_or(ctx.issue_id)),
    };
    let got = match call.args.get("confirm") {
        None | Some(Value::Null) => "no confirm argument".to_string(),
        Some(v) => format!("confirm was {v}"),
    };
    Err(Refusal::new(
        problem.code,
        format!(
            "{}: {what} is destructive and needs confirm: true ({got})",
            tool.name()
        ),
    ))
}

fn list_or_none(items: &[String]) -> String {
    if items.is_empty() {
        "none".to_string()
    } else {
        items.join(", ")
    }
}

fn has_lead_role(roles: &[String]) -> bool {
    roles.iter().any(|r| LEAD_ROLES.contains(&r.as_str()))
}

/// FOREIGN_ISSUE when `target` is not the turn's issue and no acting role is a lead.
fn check_may_change(ctx: &GateContext, tool: &str, target: &str) -> Result<(), Refusal> {
    if target != ctx.issue_id && !has_lead_role(ctx.roles) {
        return Err(Refusal::new(
            RefusalCode::ForeignIssue,
            format!(
                "{tool}: {target} is not this turn's issue ({}); only a lead role ({}) may change \
                 another issue (acting roles: {})",
                ctx.issue_id,
                LEAD_ROLES.join(", "),
                list_or_none(ctx.roles)
            ),
        ));
    }
    Ok(())
}

/// The current status of `issue`, or UNKNOWN_ISSUE.
fn known_status(ctx: &GateContext, tool: &str, issue: &str) -> Result<Status, Refusal> {
    (ctx.status_of)(issue).ok_or_else(|| {
        Refusal::new(
            RefusalCode::UnknownIssue,
            format!("{tool}: there is no issue {issue} in this build"),
        )
    })
}

fn check_write(ctx: &GateContext, call: &ToolCall) -> Result<(), Refusal> {
    let tool = call.name.as_str();
    let path = call.str_arg("path").unwrap_or_default();
    let content = call.str_arg("content").unwrap_or_default();
    let real = ctx
        .workspace
        .resolve_write(path)
        .map_err(|r| r.within(tool))?;
    if content.len() > MAX_CONTENT_BYTES {
        return Err(Refusal::new(
            RefusalCode::ContentTooLarge,
            format!(
                "{tool}: the content for '{path}' is {} bytes; at most {MAX_CONTENT_BYTES} bytes \
                 (1 MiB) may be written at once",
                content.len()
            ),
        ));
    }
    if ctx.idesign {
        let rel = ctx.workspace.display_path(&real);
        check_idesign(&rel, content).map_err(|r| r.within(tool))?;
    }
    Ok(())
}

/// The transition table, the wait-reason and integrity-guard rules, and who may move whom.
/// The status and wait reason were checked as arguments already.
fn check_status_change(ctx: &GateContext, call: &ToolCall) -> Result<(), Refusal> {
    let tool = call.name.as_str();
    let target = call.issue_or(ctx.issue_id);
    check_may_change(ctx, tool, target)?;
    let from = known_status(ctx, tool, target)?;
    let to: Status = call
        .str_arg("status")
        .unwrap_or_default()
        .parse()
        .map_err(|e| {
            Refusal::new(
                RefusalCode::UnknownStatus,
                format!("{tool} of {target}: {e}"),
            )
        })?;
    let wait_reason = call
        .str_arg("wait_reason")
        .and_then(|raw| raw.trim().parse::<WaitReason>().ok());
    let req = TransitionRequest {
        kind: CardKind::Issue,
        card_id: target,
        from,
        to,
        wait_reason,
        roles: ctx.roles,
    };
    check_transition(&req).map_err(|e| Refusal::new(e.code(), format!("{tool}: {e}")))
}

/// Every issue a new one depends on must be in the build.
fn check_create_issue(ctx: &GateContext, call: &ToolCall) -> Result<(), Refusal> {
    let tool = call.name.as_str();
    for dep in call.names_arg("depends_on") {
        if (ctx.status_of)(&dep).is_none() {
            return Err(Refusal::new(
                RefusalCode::UnknownIssue,
                format!("{tool}: depends_on names {dep}, which is not an issue of this build"),
            ));
        }
    }
    Ok(())
}
