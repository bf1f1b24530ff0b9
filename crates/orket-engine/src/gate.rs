//! The gate (SPEC §7): every tool call is checked here before it executes.
//!
//! [`check_call`] runs the checks in a fixed order — known tool, role tools, argument shapes,
//! then the tool's own rules (paths, size, confirmation, iDesign, status changes, issue
//! creation) and finally the approval policy. [`check_budget`] caps the calls of one turn.
//! Every refusal carries a stable code (see [`codes`]) and a message naming the tool and the
//! path, issue or status concerned.

use crate::idesign::check_idesign;
use crate::workspace::Workspace;
use orket_core::lifecycle::{check_transition, TransitionRequest};
use orket_core::priority::{json_kind, parse_priority};
use orket_core::tools::{is_known_tool, KNOWN_TOOLS};
use orket_core::{CardKind, Status, ToolCall, WaitReason};
use serde::Serialize;
use serde_json::Value;
use std::fmt;

/// The stable refusal codes of the gate.
pub mod codes {
    /// The tool is not one the engine knows.
    pub const UNKNOWN_TOOL: &str = "UNKNOWN_TOOL";
    /// The tool is not in the acting roles' `tools`.
    pub const ROLE_TOOL: &str = "ROLE_TOOL";
    /// A required argument is missing, or an argument has the wrong type or value.
    pub const BAD_ARGS: &str = "BAD_ARGS";
    /// The path leaves the workspace (or, for reads, its references).
    pub const PATH_ESCAPE: &str = "PATH_ESCAPE";
    /// The path is protected from writes (`.git`, `.env`, secrets, `verification/`).
    pub const PATH_PROTECTED: &str = "PATH_PROTECTED";
    /// The content to write is over [`super::MAX_CONTENT_BYTES`].
    pub const CONTENT_TOO_LARGE: &str = "CONTENT_TOO_LARGE";
    /// A destructive tool was called without `confirm: true`.
    pub const CONFIRM_REQUIRED: &str = "CONFIRM_REQUIRED";
    /// The call changes an issue other than the turn's own without a lead role.
    pub const FOREIGN_ISSUE: &str = "FOREIGN_ISSUE";
    /// The issue is not part of the build.
    pub const UNKNOWN_ISSUE: &str = "UNKNOWN_ISSUE";
    /// The status name does not exist.
    pub const UNKNOWN_STATUS: &str = "UNKNOWN_STATUS";
    /// The transition table does not allow the move (or nothing would change).
    pub const ILLEGAL_TRANSITION: &str = "ILLEGAL_TRANSITION";
    /// Moving to blocked / waiting_for_developer without a wait reason.
    pub const WAIT_REASON_REQUIRED: &str = "WAIT_REASON_REQUIRED";
    /// Moving an issue to done without the integrity_guard role.
    pub const DONE_REQUIRES_INTEGRITY_GUARD: &str = "DONE_REQUIRES_INTEGRITY_GUARD";
    /// A new issue's summary is shorter than 5 characters.
    pub const SUMMARY_TOO_SHORT: &str = "SUMMARY_TOO_SHORT";
    /// The turn made more than [`super::MAX_CALLS_PER_TURN`] tool calls.
    pub const TOOL_BUDGET: &str = "TOOL_BUDGET";
    /// iDesign: a source file at the workspace root.
    pub const IDESIGN_ROOT_FILE: &str = "IDESIGN_ROOT_FILE";
    /// iDesign: a source file outside the allowed first folders.
    pub const IDESIGN_FOLDER: &str = "IDESIGN_FOLDER";
    /// iDesign: a manager/engine/accessor file without that word in its name.
    pub const IDESIGN_NAMING: &str = "IDESIGN_NAMING";
    /// iDesign: a Python class in such a file without the layer's suffix.
    pub const IDESIGN_CLASS_SUFFIX: &str = "IDESIGN_CLASS_SUFFIX";
    /// iDesign: an accessor importing managers/engines, or an engine importing managers.
    pub const IDESIGN_IMPORT: &str = "IDESIGN_IMPORT";
    /// iDesign: a Python file with a syntax error.
    pub const IDESIGN_SYNTAX: &str = "IDESIGN_SYNTAX";
    /// Moving an issue to done while its verification (run by this review) failed.
    pub const VERIFICATION_FAILED: &str = "VERIFICATION_FAILED";
}

/// At most this many tool calls per turn.
pub const MAX_CALLS_PER_TURN: usize = 10;

/// The largest content `write_file` accepts, in bytes (1 MiB).
pub const MAX_CONTENT_BYTES: usize = 1_048_576;

/// The roles that may change issues other than their turn's own.
pub const LEAD_ROLES: [&str; 2] = ["lead_architect", "operations_lead"];

/// The shortest summary (trimmed, in characters) a new issue may have.
pub const MIN_SUMMARY_CHARS: usize = 5;

/// Why a tool call is refused: a stable code and a message a person can act on.
#[derive(Debug, Clone, PartialEq, Eq, Serialize)]
pub struct Refusal {
    /// The stable code (one of [`codes`]).
    pub code: &'static str,
    /// What was refused and why.
    pub message: String,
}

impl Refusal {
    /// A refusal with `code` and `message`.
    pub fn new(code: &'static str, message: impl Into<String>) -> Refusal {
        Refusal {
            code,
            message: message.into(),
        }
    }

    /// The same refusal with `prefix: ` put before its message (to name the tool).
    fn within(self, prefix: &str) -> Refusal {
        Refusal {
            code: self.code,
            message: format!("{prefix}: {}", self.message),
        }
    }
}

impl fmt::Display for Refusal {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(f, "{}: {}", self.code, self.message)
    }
}

impl std::error::Error for Refusal {}

/// What the gate lets a call do.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize)]
#[serde(rename_all = "snake_case")]
pub enum Decision {
    /// Execute the call now.
    Allow,
    /// The call is allowed but a person must approve it first (`process_rules.approval_required`).
    NeedsApproval,
}

/// What the gate knows about the turn a call belongs to.
#[derive(Clone, Copy)]
pub struct GateContext<'a> {
    /// The issue of this turn.
    pub issue_id: &'a str,
    /// The acting roles (review turns start with `integrity_guard`).
    pub roles: &'a [String],
    /// The union of the acting roles' `tools`; empty means no role restriction.
    pub allowed_tools: &'a [String],
    /// The workspace paths are confined to.
    pub workspace: &'a Workspace,
    /// True when the epic has `architecture_governance.idesign` on.
    pub idesign: bool,
    /// The tools that need a person's approval (`process_rules.approval_required`).
    pub approval_required: &'a [String],
    /// The current status of an issue of the build (as changed so far in this turn).
    pub status_of: &'a (dyn Fn(&str) -> Option<Status> + Sync),
}

/// Refuses a turn that made more than [`MAX_CALLS_PER_TURN`] tool calls.
pub fn check_budget(calls: &[ToolCall]) -> Result<(), Refusal> {
    if calls.len() > MAX_CALLS_PER_TURN {
        return Err(Refusal::new(
            codes::TOOL_BUDGET,
            format!(
                "the turn made {} tool calls; at most {MAX_CALLS_PER_TURN} are allowed per turn",
                calls.len()
            ),
        ));
    }
    Ok(())
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
    let target = call.str_arg("issue_id").unwrap_or(issue_id);
    if call.name == "update_issue_status"
        && target == issue_id
        && call.str_arg("status") == Some("done")
    {
        return Err(Refusal::new(
            codes::VERIFICATION_FAILED,
            format!("update_issue_status: {issue_id} cannot move to done: its verification failed. {summary}"),
        ));
    }
    Ok(())
}

/// Checks one tool call before it executes; see the module doc for the order of checks.
pub fn check_call(ctx: &GateContext, call: &ToolCall) -> Result<Decision, Refusal> {
    let tool = call.name.as_str();
    if !is_known_tool(tool) {
        return Err(Refusal::new(
            codes::UNKNOWN_TOOL,
            format!(
                "unknown tool '{tool}' (known tools: {})",
                KNOWN_TOOLS.join(", ")
            ),
        ));
    }
    if !ctx.allowed_tools.is_empty() && !ctx.allowed_tools.iter().any(|t| t == tool) {
        return Err(Refusal::new(
            codes::ROLE_TOOL,
            format!(
                "tool '{tool}' is not allowed for role(s) {} (their tools: {})",
                list_or_none(ctx.roles),
                ctx.allowed_tools.join(", ")
            ),
        ));
    }
    check_arg_types(call)?;
    match tool {
        "read_file" => {
            let path = call.str_arg("path").unwrap_or_default();
            ctx.workspace
                .resolve_read(path)
                .map_err(|r| r.within(tool))?;
        }
        "list_directory" => {
            let path = call.str_arg("path").unwrap_or(".");
            ctx.workspace
                .resolve_read(path)
                .map_err(|r| r.within(tool))?;
        }
        "write_file" => check_write(ctx, call)?,
        "delete_file" => {
            let path = call.str_arg("path").unwrap_or_default();
            ctx.workspace
                .resolve_delete(path)
                .map_err(|r| r.within(tool))?;
            require_confirm(call, &format!("deleting '{path}'"))?;
        }
        "reset_issue" => {
            let target = target_issue(ctx, call);
            require_confirm(call, &format!("resetting {target}"))?;
            check_may_change(ctx, tool, target)?;
            known_status(ctx, tool, target)?;
        }
        "update_issue_status" => check_status_change(ctx, call)?,
        "create_issue" => check_create_issue(ctx, call)?,
        "get_issue_context" => {
            let target = target_issue(ctx, call);
            known_status(ctx, tool, target)?;
        }
        "add_issue_comment" => require_text(call, "comment")?,
        "request_excuse" => {
            require_text(call, "reason")?;
            let from = known_status(ctx, tool, ctx.issue_id)?;
            let req = TransitionRequest {
                kind: CardKind::Issue,
                card_id: ctx.issue_id,
                from,
                to: Status::WaitingForDeveloper,
                wait_reason: Some(WaitReason::Input),
                roles: ctx.roles,
            };
            check_transition(&req).map_err(|e| Refusal::new(e.code(), format!("{tool}: {e}")))?;
        }
        "report_credits" => {
            let amount = number_arg(call, "amount").unwrap_or(f64::NAN);
            if !(amount.is_finite() && amount >= 0.0) {
                return Err(Refusal::new(
                    codes::BAD_ARGS,
                    format!("{tool}: argument 'amount' must be a number of credits, 0 or more (got {amount})"),
                ));
            }
        }
        _ => {}
    }
    if ctx.approval_required.iter().any(|t| t == tool) {
        return Ok(Decision::NeedsApproval);
    }
    Ok(Decision::Allow)
}

/// The type an argument must have.
#[derive(Clone, Copy)]
enum Kind {
    /// A JSON string.
    Str,
    /// A number, or a string holding one.
    Number,
    /// A string or an array of strings.
    StrList,
    /// Anything (checked by the tool's own rule).
    Any,
}

/// The arguments of each tool: name, type, required.
fn schema(tool: &str) -> &'static [(&'static str, Kind, bool)] {
    use Kind::*;
    match tool {
        "read_file" => &[("path", Str, true)],
        "list_directory" => &[("path", Str, false)],
        "write_file" => &[("path", Str, true), ("content", Str, true)],
        "delete_file" => &[("path", Str, true), ("confirm", Any, false)],
        "create_issue" => &[
            ("seat", Str, true),
            ("summary", Str, true),
            ("type", Str, false),
            ("priority", Any, false),
            ("depends_on", StrList, false),
        ],
        "update_issue_status" => &[
            ("status", Str, true),
            ("issue_id", Str, false),
            ("wait_reason", Str, false),
        ],
        "add_issue_comment" => &[("comment", Str, true)],
        "get_issue_context" => &[("issue_id", Str, false)],
        "request_excuse" => &[("reason", Str, true)],
        "report_credits" => &[("amount", Number, true)],
        "reset_issue" => &[("issue_id", Str, false), ("confirm", Any, false)],
        _ => &[],
    }
}

/// BAD_ARGS for a missing required argument or an argument of the wrong type (`null` counts
/// as missing).
fn check_arg_types(call: &ToolCall) -> Result<(), Refusal> {
    let tool = call.name.as_str();
    for (key, kind, required) in schema(tool) {
        let value = match call.args.get(*key) {
            None | Some(Value::Null) => {
                if *required {
                    return Err(Refusal::new(
                        codes::BAD_ARGS,
                        format!(
                            "{tool}: argument '{key}' is required ({})",
                            kind_name(*kind)
                        ),
                    ));
                }
                continue;
            }
            Some(v) => v,
        };
        let ok = match kind {
            Kind::Str => value.is_string(),
            Kind::Number => as_number(value).is_some(),
            Kind::StrList => match value {
                Value::String(_) => true,
                Value::Array(items) => items.iter().all(Value::is_string),
                _ => false,
            },
            Kind::Any => true,
        };
        if !ok {
            return Err(Refusal::new(
                codes::BAD_ARGS,
                format!(
                    "{tool}: argument '{key}' must be {}, found {}",
                    kind_name(*kind),
                    json_kind(value)
                ),
            ));
        }
    }
    Ok(())
}

fn kind_name(kind: Kind) -> &'static str {
    match kind {
        Kind::Str => "a string",
        Kind::Number => "a number",
        Kind::StrList => "a string or an array of strings",
        Kind::Any => "a value",
    }
}

fn as_number(value: &Value) -> Option<f64> {
    match value {
        Value::Number(n) => n.as_f64(),
        Value::String(s) => s.trim().parse::<f64>().ok(),
        _ => None,
    }
}

fn number_arg(call: &ToolCall, key: &str) -> Option<f64> {
    call.args.get(key).and_then(as_number)
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

/// The issue a call names with `issue_id`, or the turn's own issue.
fn target_issue<'c>(ctx: &GateContext<'c>, call: &'c ToolCall) -> &'c str {
    match call.str_arg("issue_id").map(str::trim) {
        Some(id) if !id.is_empty() => id,
        _ => ctx.issue_id,
    }
}

/// CONFIRM_REQUIRED unless the call carries `confirm: true`.
fn require_confirm(call: &ToolCall, what: &str) -> Result<(), Refusal> {
    if call.args.get("confirm") == Some(&Value::Bool(true)) {
        return Ok(());
    }
    let got = match call.args.get("confirm") {
        None => "no confirm argument".to_string(),
        Some(v) => format!("confirm was {v}"),
    };
    Err(Refusal::new(
        codes::CONFIRM_REQUIRED,
        format!(
            "{}: {what} is destructive and needs confirm: true ({got})",
            call.name
        ),
    ))
}

/// BAD_ARGS when the text argument `key` is empty.
fn require_text(call: &ToolCall, key: &str) -> Result<(), Refusal> {
    if call.str_arg(key).unwrap_or_default().trim().is_empty() {
        return Err(Refusal::new(
            codes::BAD_ARGS,
            format!("{}: argument '{key}' is empty", call.name),
        ));
    }
    Ok(())
}

/// FOREIGN_ISSUE when `target` is not the turn's issue and no acting role is a lead.
fn check_may_change(ctx: &GateContext, tool: &str, target: &str) -> Result<(), Refusal> {
    if target != ctx.issue_id && !has_lead_role(ctx.roles) {
        return Err(Refusal::new(
            codes::FOREIGN_ISSUE,
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
            codes::UNKNOWN_ISSUE,
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
            codes::CONTENT_TOO_LARGE,
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

fn check_status_change(ctx: &GateContext, call: &ToolCall) -> Result<(), Refusal> {
    let tool = call.name.as_str();
    let target = target_issue(ctx, call);
    check_may_change(ctx, tool, target)?;
    let from = known_status(ctx, tool, target)?;
    let raw_status = call.str_arg("status").unwrap_or_default();
    let to: Status = raw_status
        .parse()
        .map_err(|e| Refusal::new(codes::UNKNOWN_STATUS, format!("{tool} of {target}: {e}")))?;
    let wait_reason = match call.str_arg("wait_reason").map(str::trim) {
        Some(raw) if !raw.is_empty() => Some(raw.parse::<WaitReason>().map_err(|e| {
            Refusal::new(
                codes::BAD_ARGS,
                format!("{tool} of {target}: argument 'wait_reason': {e}"),
            )
        })?),
        _ => None,
    };
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

fn check_create_issue(ctx: &GateContext, call: &ToolCall) -> Result<(), Refusal> {
    let tool = call.name.as_str();
    let summary = call.str_arg("summary").unwrap_or_default().trim();
    let chars = summary.chars().count();
    if chars < MIN_SUMMARY_CHARS {
        return Err(Refusal::new(
            codes::SUMMARY_TOO_SHORT,
            format!(
                "{tool}: the summary \"{summary}\" has {chars} characters; a new issue needs at \
                 least {MIN_SUMMARY_CHARS}"
            ),
        ));
    }
    parse_priority(call.args.get("priority"))
        .map_err(|e| Refusal::new(codes::BAD_ARGS, format!("{tool}: argument 'priority': {e}")))?;
    let deps: Vec<&str> = match call.args.get("depends_on") {
        Some(Value::String(s)) => vec![s.as_str()],
        Some(Value::Array(items)) => items.iter().filter_map(Value::as_str).collect(),
        _ => Vec::new(),
    };
    for dep in deps.into_iter().map(str::trim).filter(|d| !d.is_empty()) {
        if (ctx.status_of)(dep).is_none() {
            return Err(Refusal::new(
                codes::UNKNOWN_ISSUE,
                format!("{tool}: depends_on names {dep}, which is not an issue of this build"),
            ));
        }
    }
    Ok(())
}
