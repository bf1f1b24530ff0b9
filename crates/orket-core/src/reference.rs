//! The generated parts of the user reference in `docs/`: the lifecycle (statuses, wait reasons
//! and the transition table), the events, the refusal codes and the tools, each rendered as
//! Markdown from the definitions the code runs on. A test compares `docs/` with these texts
//! (and rewrites them with `ORKET_WRITE_DOCS=1`), so the reference cannot drift from the code.

use crate::events::Event;
use crate::lifecycle::{allowed_targets, INTEGRITY_GUARD, LEAD_ROLES};
use crate::refusal::RefusalCode;
use crate::status::{CardKind, Status, WaitReason};
use crate::tools::{
    ArgKind, Args, ToolKind, DEFAULT_MAX_CORRECTIONS, DEFAULT_MAX_STEPS, MAX_CONTENT_BYTES, TOOLS,
};
use std::fmt::Write;

/// The line every generated page starts with.
pub const GENERATED: &str =
    "<!-- Generated from the code by `ORKET_WRITE_DOCS=1 cargo test`; do not edit by hand. -->";

/// `docs/lifecycle.md`: statuses, wait reasons and the transition table of each card kind.
pub fn lifecycle_md() -> String {
    let mut out = format!("{GENERATED}\n\n# Statuses and transitions\n\n");
    out.push_str("A card's status moves only along its kind's transition table; every move is audited (`card_transactions`), and an epic's or rock's status is derived from its issues or epics.\n\n## Statuses\n\n| status | meaning |\n|---|---|\n");
    for status in Status::ALL {
        let _ = writeln!(out, "| `{}` | {} |", status.as_str(), status.description());
    }
    out.push_str("\n## Wait reasons\n\nMoving an issue to `blocked` or `waiting_for_developer` needs one.\n\n| reason | meaning |\n|---|---|\n");
    for reason in WaitReason::ALL {
        let _ = writeln!(out, "| `{}` | {} |", reason.as_str(), reason.description());
    }
    for kind in [CardKind::Issue, CardKind::Epic, CardKind::Rock] {
        let _ = write!(
            out,
            "\n## {} transitions\n\n| from | allowed to |\n|---|---|\n",
            capitalized(kind.as_str())
        );
        for from in Status::ALL {
            let to = allowed_targets(kind, from);
            if to.is_empty() && !from.is_terminal() {
                continue;
            }
            let allowed = if to.is_empty() {
                "nothing (terminal)".to_string()
            } else {
                codes(to.iter().map(|s| s.as_str()))
            };
            let _ = writeln!(out, "| `{}` | {allowed} |", from.as_str());
        }
    }
    let _ = write!(
        out,
        "\n## Rules\n\n- Only a turn whose roles include `{INTEGRITY_GUARD}` may move an issue to `done` (`DONE_REQUIRES_INTEGRITY_GUARD`).\n- A tool may change only its own turn's issue unless a role is a lead ({}) (`FOREIGN_ISSUE`).\n- A status equal to the current one is no move (`ILLEGAL_TRANSITION`).\n",
        codes(LEAD_ROLES.iter().copied())
    );
    out
}

/// `docs/events.md`: every event with its fields.
pub fn events_md() -> String {
    let mut out = format!("{GENERATED}\n\n# Events\n\n");
    out.push_str("Every event is recorded in the store, written to the run's `<workspace>/orket.log` (JSON lines, rotated at 10 MB) and sent to WebSocket subscribers, in this envelope:\n\n```json\n{\"id\": 42, \"timestamp\": \"2026-11-22T04:16:22.123Z\", \"run_id\": \"3f9c01ab\", \"role\": \"coder\",\n \"event\": \"status_change\", \"issue_id\": \"DEMO-1\", \"data\": {\"from\": \"ready\", \"to\": \"in_progress\", \"wait_reason\": null}}\n```\n\n`data` holds the event's fields below (an optional field is `null` when unset). The events of one turn are committed together with the turn.\n\n| event | meaning | data |\n|---|---|---|\n");
    for doc in Event::CATALOG {
        let fields = if doc.fields.is_empty() {
            "—".to_string()
        } else {
            doc.fields
                .iter()
                .map(|(name, ty)| format!("`{name}`: {}", type_name(ty)))
                .collect::<Vec<_>>()
                .join(", ")
        };
        let _ = writeln!(
            out,
            "| `{}` | {} | {fields} |",
            doc.name,
            doc.description.trim()
        );
    }
    out
}

/// `docs/refusals.md`: every refusal code.
pub fn refusals_md() -> String {
    let mut out = format!("{GENERATED}\n\n# Refusal codes\n\n");
    out.push_str("A refused tool call's result is `{\"ok\": false, \"error\": \"CODE: message\", \"code\": \"CODE\"}`; the message says what was refused and why. A gate refusal is a governance violation (the issue is blocked, `agent_output/policy_violation_<issue>.json` is written); `VERIFICATION_FAILED` sends the issue back to its developer, `APPROVAL_REQUIRED` parks it for a person, `TOOL_FAILED` is a tool's own failure.\n\n| code | meaning |\n|---|---|\n");
    for code in RefusalCode::ALL {
        let _ = writeln!(out, "| `{}` | {} |", code.as_str(), code.description());
    }
    out
}

/// `docs/tools.md`: every tool with its arguments.
pub fn tools_md() -> String {
    let mut out = format!("{GENERATED}\n\n# Tools\n\n");
    let _ = write!(
        out,
        "The tools agents call. A role's `tools` list limits its seats to those tools (a role without one may call every tool marked *served*). A turn is a loop of steps, one tool call each, at most `max_steps` ({DEFAULT_MAX_STEPS} unless the model's profile or `process_rules.max_steps` says otherwise); the results of a step's call come back to the model in the next step, and the turn ends when the seat moves its issue. A step whose reply has no call, whose call the gate refuses or whose tool fails is answered with a correction (at most `max_corrections`, default {DEFAULT_MAX_CORRECTIONS}). `write_file` and `read_file` handle at most {MAX_CONTENT_BYTES} bytes. Each step's reply must match a schema holding exactly one call of the tools and moves legal at that point (see `lifecycle.md`); the gate checks the same arguments again (see `refusals.md`).\n\n"
    );
    for spec in &TOOLS {
        let kind = match spec.kind {
            ToolKind::File => "workspace files",
            ToolKind::Card => "the build's issues",
            ToolKind::Record => "recorded as an event",
            ToolKind::Unavailable => "not served: answers \"not available\"",
        };
        let read = if spec.read_only { ", read-only" } else { "" };
        let _ = write!(
            out,
            "## `{}`\n\n{} ({kind}{read})\n\n",
            spec.name, spec.description
        );
        match spec.args {
            Args::Free => out.push_str("Arguments: any JSON object, recorded as given.\n\n"),
            Args::Fixed([]) => out.push_str("No arguments.\n\n"),
            Args::Fixed(args) => {
                out.push_str("| argument | type | required | default | refused with |\n|---|---|---|---|---|\n");
                for arg in args {
                    let _ = writeln!(
                        out,
                        "| `{}` | {} | {} | {} | `{}` |",
                        arg.name,
                        kind_name(arg.kind),
                        if arg.required { "yes" } else { "no" },
                        arg.default.map_or("—".to_string(), |d| format!("`{d}`")),
                        arg.refusal
                    );
                }
                out.push('\n');
            }
        }
    }
    out
}

fn kind_name(kind: ArgKind) -> String {
    match kind {
        ArgKind::Text => "string".to_string(),
        ArgKind::TextAtLeast(n) => format!("string, at least {n} characters"),
        ArgKind::Amount => "number, 0 or more".to_string(),
        ArgKind::Status => "a status (see `lifecycle.md`)".to_string(),
        ArgKind::WaitReason => "a wait reason (see `lifecycle.md`)".to_string(),
        ArgKind::Priority => "`High`, `Medium`, `Low` or a number".to_string(),
        ArgKind::TextList => "list of strings (or one string)".to_string(),
        ArgKind::Confirm => "`true`".to_string(),
        ArgKind::OneOf(names) => codes(names.iter().copied()),
    }
}

/// A Rust type as a reader of JSON sees it.
fn type_name(ty: &str) -> String {
    let ty = ty.replace(' ', "");
    let simple = match ty.as_str() {
        "String" => "string",
        "bool" => "boolean",
        "usize" | "u32" | "u64" | "i64" => "integer",
        "f64" => "number",
        "Value" => "JSON",
        "Status" => "status",
        "RunStatus" => "run status",
        "RefusalCode" => "refusal code",
        "TurnFailure" => "`governance`, `model` or `routing`",
        "Map<String,Value>" => "object",
        "ToolResult" => "tool result",
        _ => "",
    };
    if !simple.is_empty() {
        return simple.to_string();
    }
    if let Some(inner) = ty.strip_prefix("Option<").and_then(|t| t.strip_suffix('>')) {
        return format!("{} or null", type_name(inner));
    }
    if let Some(inner) = ty.strip_prefix("Vec<").and_then(|t| t.strip_suffix('>')) {
        return format!("list of {}", type_name(inner));
    }
    match ty.as_str() {
        "WaitReason" => "wait reason".to_string(),
        other => format!("`{other}`"),
    }
}

fn codes<'a>(names: impl Iterator<Item = &'a str>) -> String {
    names
        .map(|n| format!("`{n}`"))
        .collect::<Vec<_>>()
        .join(", ")
}

fn capitalized(word: &str) -> String {
    let mut chars = word.chars();
    match chars.next() {
        Some(first) => first.to_uppercase().chain(chars).collect(),
        None => String::new(),
    }
}
