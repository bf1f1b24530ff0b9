//! The JSON schema of one step's reply, for constrained decoding.

use orket_core::tools::Tool;
use orket_core::Status;
use serde_json::{json, Value};

/// What one step of a turn may do: which tools it may call and, for `update_issue_status`,
/// which moves it may make.
#[derive(Debug, Clone, Copy)]
pub struct StepChoices<'a> {
    /// The tools (order kept, duplicates removed).
    pub tools: &'a [Tool],
    /// The statuses `update_issue_status` may move the issue to (the tool is left out when
    /// there is none).
    pub moves: &'a [Status],
    /// The moves that must say why, in a non-empty `comment` (a review sending work back).
    pub explained: &'a [Status],
    /// The paths `write_file` may write, when the issue names its files (empty: any path).
    pub paths: &'a [String],
    /// The most characters a file's content or a comment may have in one reply, so that a
    /// reply ends (and is valid JSON) within the model's token budget; `None`: no limit.
    pub max_text: Option<u32>,
    /// `write_file` names its path only: the content is asked for apart, as a fenced block
    /// (see [`crate::fenced_block`]).
    pub content_apart: bool,
}

/// The schema of a step's reply: `{"tool_calls": [{"tool": NAME, "args": {...}}]}` with exactly
/// one call of the given tools, each tool's arguments as the tool contract
/// (`orket_core::tools::TOOLS`) defines them, `write_file` limited to the issue's files when it
/// names them (and without its `content` when that is asked for apart), texts limited to
/// `max_text` characters, and `update_issue_status` limited to the step's moves. A move that needs a wait reason gets its own variant in which `wait_reason` is
/// required, and so does a move that must be explained (its `comment` required, not empty).
/// With no tool, `tool_calls` must be empty.
pub fn step_schema(choices: &StepChoices<'_>) -> Value {
    let mut seen: Vec<Tool> = Vec::new();
    let mut variants = Vec::new();
    for &tool in choices.tools {
        if seen.contains(&tool) {
            continue;
        }
        seen.push(tool);
        let (name, mut args) = (tool.name(), tool.spec().args_schema());
        let properties = args.get_mut("properties").and_then(Value::as_object_mut);
        if let (Some(max), Some(properties)) = (choices.max_text, properties) {
            for key in ["content", "comment"] {
                if let Some(text) = properties.get_mut(key) {
                    text["maxLength"] = json!(max);
                }
            }
        }
        if tool == Tool::UpdateIssueStatus {
            variants.extend(
                move_variants(args, choices)
                    .into_iter()
                    .map(|args| call_variant(name, args)),
            );
        } else if tool == Tool::WriteFile {
            if !choices.paths.is_empty() {
                args["properties"]["path"]["enum"] = json!(choices.paths);
            }
            if choices.content_apart {
                if let Some(properties) = args["properties"].as_object_mut() {
                    properties.remove("content");
                }
                args["required"] = json!(["path"]);
            }
            variants.push(call_variant(name, args));
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
            "maxItems": 1,
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

/// The argument schemas of `update_issue_status` for the step's moves, grouped by what each
/// move requires besides its status: nothing, a wait reason, or an explaining comment.
fn move_variants(args: Value, choices: &StepChoices<'_>) -> Vec<Value> {
    let mut moves: Vec<Status> = Vec::new();
    for status in choices.moves {
        if !moves.contains(status) {
            moves.push(*status);
        }
    }
    let group = |waiting: bool, explained: bool| -> Vec<&'static str> {
        moves
            .iter()
            .filter(|s| {
                s.needs_wait_reason() == waiting && choices.explained.contains(s) == explained
            })
            .map(|s| s.as_str())
            .collect()
    };
    let mut variants = Vec::new();
    for (waiting, explained) in [(false, false), (true, false), (false, true), (true, true)] {
        let statuses = group(waiting, explained);
        if statuses.is_empty() {
            continue;
        }
        let mut schema = args.clone();
        schema["properties"]["status"]["enum"] = json!(statuses);
        let mut required = vec!["status"];
        let properties = schema["properties"].as_object_mut();
        if let Some(properties) = properties {
            if waiting {
                required.push("wait_reason");
            } else {
                properties.remove("wait_reason");
            }
            if explained {
                required.push("comment");
                if let Some(comment) = properties.get_mut("comment") {
                    comment["minLength"] = json!(1);
                }
            }
        }
        schema["required"] = json!(required);
        variants.push(schema);
    }
    variants
}
