//! The JSON schema of one turn's reply, for constrained decoding.

use orket_core::tools::Tool;
use orket_core::Status;
use serde_json::{json, Value};

pub use orket_core::tools::MAX_CALLS_PER_TURN;

/// The schema of a turn's reply: `{"tool_calls": [{"tool": NAME, "args": {...}}, ...]}` with
/// 1 to 10 calls of the given tools (order kept, duplicates removed), each tool's arguments as
/// the tool contract (`orket_core::tools::TOOLS`) defines them, and `update_issue_status`
/// limited to the `reachable` statuses (left out when none is reachable). A target status
/// that needs a wait reason gets its own variant in which `wait_reason` is required. With no
/// tool, `tool_calls` must be empty.
pub fn turn_schema(tools: &[Tool], reachable: &[Status]) -> Value {
    let mut seen: Vec<Tool> = Vec::new();
    let mut variants = Vec::new();
    for &tool in tools {
        if seen.contains(&tool) {
            continue;
        }
        seen.push(tool);
        let (name, args) = (tool.name(), tool.spec().args_schema());
        if tool == Tool::UpdateIssueStatus {
            variants.extend(
                status_variants(args, reachable)
                    .into_iter()
                    .map(|args| call_variant(name, args)),
            );
        } else {
            variants.push(call_variant(name, args));
        }
    }
    let tool_calls = if variants.is_empty() {
        json!({"type": "array", "maxItems": 0})
    } else {
        json!({
            "type": "array",
            "minItems": 1,
            "maxItems": MAX_CALLS_PER_TURN,
            "items": {"anyOf": variants},
        })
    };
    json!({
        "type": "object",
        "properties": {"tool_calls": tool_calls},
        "required": ["tool_calls"],
        "additionalProperties": false,
    })
}

/// One `anyOf` entry: a call of `name` with arguments matching `args`.
fn call_variant(name: &str, args: Value) -> Value {
    json!({
        "type": "object",
        "properties": {"tool": {"const": name}, "args": args},
        "required": ["tool", "args"],
        "additionalProperties": false,
    })
}

/// The argument schemas of `update_issue_status` for the reachable statuses: one for the
/// statuses without a wait reason, one (with `wait_reason` required) for those that need one.
fn status_variants(args: Value, reachable: &[Status]) -> Vec<Value> {
    let mut statuses: Vec<Status> = Vec::new();
    for status in reachable {
        if !statuses.contains(status) {
            statuses.push(*status);
        }
    }
    let names = |waiting: bool| -> Vec<&'static str> {
        statuses
            .iter()
            .filter(|s| s.needs_wait_reason() == waiting)
            .map(|s| s.as_str())
            .collect()
    };
    let mut variants = Vec::new();
    let plain = names(false);
    if !plain.is_empty() {
        let mut schema = args.clone();
        schema["properties"]["status"]["enum"] = json!(plain);
        if let Some(properties) = schema["properties"].as_object_mut() {
            properties.remove("wait_reason");
        }
        variants.push(schema);
    }
    let waiting = names(true);
    if !waiting.is_empty() {
        let mut schema = args;
        schema["properties"]["status"]["enum"] = json!(waiting);
        schema["required"] = json!(["status", "wait_reason"]);
        variants.push(schema);
    }
    variants
}
