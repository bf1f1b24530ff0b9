//! The tool contract: every tool agents may call, defined once.
//!
//! [`Tool`] names the tools; [`TOOLS`] is the one table of their specs ([`ToolSpec`]: name,
//! description, what kind of tool it is, its arguments). Everything else is derived from it:
//! the JSON schema a model's reply must match ([`ToolSpec::args_schema`], wrapped per turn by
//! `orket_llm::step_schema`), the prompt's TOOLS section, the gate's argument check
//! ([`ToolSpec::check_args`]) and the executor's dispatch (an exhaustive `match` on [`Tool`]).
//! The limits every side shares are here too.

use crate::assets::ISSUE_TYPES;
use crate::bugfix::Severity;
use crate::refusal::RefusalCode;
use crate::status::{Status, WaitReason};
use serde::{Deserialize, Serialize};
use serde_json::{json, Map, Value};
use std::fmt;

/// The steps (one tool call each) a turn takes when neither the model's profile nor
/// `process_rules.max_steps` sets them.
pub const DEFAULT_MAX_STEPS: usize = 6;

/// The most steps any setting may give a turn.
pub const MAX_STEPS: usize = 20;

/// The corrections a turn may send when neither the model's profile nor
/// `process_rules.max_corrections` sets them.
pub const DEFAULT_MAX_CORRECTIONS: usize = 2;

/// The largest content `write_file` writes and `read_file` reads, in bytes (1 MiB).
pub const MAX_CONTENT_BYTES: usize = 1_048_576;

/// The shortest summary (in characters) a new issue may have.
pub const MIN_SUMMARY_CHARS: usize = 5;

/// The folder of verification fixtures at a workspace's root: people put fixtures there, agents
/// may not write to it, and a fixture path must resolve inside it.
pub const VERIFICATION_DIR: &str = "verification";

/// Every tool the engine knows.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, PartialOrd, Ord, Serialize, Deserialize)]
#[serde(rename_all = "snake_case")]
pub enum Tool {
    /// `read_file`.
    ReadFile,
    /// `write_file`.
    WriteFile,
    /// `list_directory`.
    ListDirectory,
    /// `delete_file`.
    DeleteFile,
    /// `create_issue`.
    CreateIssue,
    /// `update_issue_status`.
    UpdateIssueStatus,
    /// `add_issue_comment`.
    AddIssueComment,
    /// `get_issue_context`.
    GetIssueContext,
    /// `request_excuse`.
    RequestExcuse,
    /// `report_credits`.
    ReportCredits,
    /// `reset_issue`.
    ResetIssue,
    /// `nominate_card`.
    NominateCard,
    /// `refinement_proposal`.
    RefinementProposal,
    /// `archive_eval`.
    ArchiveEval,
    /// `promote_prompt`.
    PromotePrompt,
    /// `image_analyze`.
    ImageAnalyze,
    /// `image_generate`.
    ImageGenerate,
}

/// What a tool acts on.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize)]
#[serde(rename_all = "snake_case")]
pub enum ToolKind {
    /// Files of the workspace (confined to it).
    File,
    /// Issues of the build (their changes join the turn's batch).
    Card,
    /// Recorded as an event, nothing else.
    Record,
    /// Known but not served here: answers "not available" without failing the turn.
    Unavailable,
}

/// The type and rule of one argument.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum ArgKind {
    /// A string.
    Text,
    /// A string of at least this many characters.
    TextAtLeast(usize),
    /// A number, 0 or more (a string holding one is accepted too).
    Amount,
    /// One of the status names.
    Status,
    /// One of the wait reason names.
    WaitReason,
    /// `High`, `Medium`, `Low` or a number.
    Priority,
    /// A list of strings (a lone string is accepted as a list of one).
    TextList,
    /// Literally `true`: the caller confirms a destructive call.
    Confirm,
    /// One of these names.
    OneOf(&'static [&'static str]),
}

/// One argument of a tool.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct Arg {
    /// Its name.
    pub name: &'static str,
    /// Its type and rule.
    pub kind: ArgKind,
    /// A call without it is refused.
    pub required: bool,
    /// What the tool assumes without it (JSON), shown in the schema.
    pub default: Option<&'static str>,
    /// The refusal code of a value that breaks the rule.
    pub refusal: RefusalCode,
}

/// A tool's arguments.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Args {
    /// Exactly these (others are refused by the schema, ignored by the gate).
    Fixed(&'static [Arg]),
    /// Any JSON object (recorded as given).
    Free,
}

/// A tool, as the model is told about it and as the engine treats it.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct ToolSpec {
    /// The tool.
    pub tool: Tool,
    /// Its name on the wire (`write_file`).
    pub name: &'static str,
    /// One line for the prompt's TOOLS section.
    pub description: &'static str,
    /// What it acts on.
    pub kind: ToolKind,
    /// It only reads (the workspace or the build): calling it changes nothing.
    pub read_only: bool,
    /// Its arguments.
    pub args: Args,
}

const fn arg(name: &'static str, kind: ArgKind, required: bool) -> Arg {
    Arg {
        name,
        kind,
        required,
        default: None,
        refusal: RefusalCode::BadArgs,
    }
}

const fn optional(name: &'static str, kind: ArgKind, default: &'static str) -> Arg {
    Arg {
        default: Some(default),
        ..arg(name, kind, false)
    }
}

const PATH: Arg = arg("path", ArgKind::TextAtLeast(1), true);
const OWN_ISSUE: Arg = arg("issue_id", ArgKind::Text, false);
const CONFIRM: Arg = Arg {
    refusal: RefusalCode::ConfirmRequired,
    ..arg("confirm", ArgKind::Confirm, true)
};

const fn spec(
    tool: Tool,
    name: &'static str,
    kind: ToolKind,
    read_only: bool,
    args: Args,
    description: &'static str,
) -> ToolSpec {
    ToolSpec {
        tool,
        name,
        description,
        kind,
        read_only,
        args,
    }
}

/// The one table of tools, in the order the prompt lists them.
pub const TOOLS: [ToolSpec; 17] = {
    use ArgKind::*;
    use ToolKind::*;
    [
        spec(Tool::ReadFile, "read_file", File, true, Args::Fixed(&[PATH]),
            "Read a text file of the workspace (or the epic's references) and return its text."),
        spec(Tool::WriteFile, "write_file", File, false,
            Args::Fixed(&[PATH, arg("content", Text, true)]),
            "Write `content` to the file at `path` in the workspace, creating parent folders; returns the path."),
        spec(Tool::ListDirectory, "list_directory", File, true,
            Args::Fixed(&[optional("path", TextAtLeast(1), "\".\"")]),
            "List the entries of a workspace folder (default \".\"), sorted."),
        spec(Tool::DeleteFile, "delete_file", File, false, Args::Fixed(&[PATH, CONFIRM]),
            "Delete a workspace file; requires `confirm: true`."),
        spec(Tool::CreateIssue, "create_issue", Card, false,
            Args::Fixed(&[
                arg("seat", Text, true),
                Arg {
                    refusal: RefusalCode::SummaryTooShort,
                    ..arg("summary", TextAtLeast(MIN_SUMMARY_CHARS), true)
                },
                Arg {
                    refusal: RefusalCode::UnknownIssueType,
                    ..optional("type", OneOf(&ISSUE_TYPES), "\"issue\"")
                },
                optional("priority", Priority, "\"Medium\""),
                arg("depends_on", TextList, false),
                Arg {
                    refusal: RefusalCode::UnknownSeverity,
                    ..arg("severity", OneOf(&Severity::NAMES), false)
                },
            ]),
            "Create a new issue in the current build for `seat`, with a summary of at least 5 characters; a `bug` gets a `severity` (default medium)."),
        spec(Tool::UpdateIssueStatus, "update_issue_status", Card, false,
            Args::Fixed(&[
                Arg {
                    refusal: RefusalCode::UnknownStatus,
                    ..arg("status", Status, true)
                },
                OWN_ISSUE,
                arg("wait_reason", WaitReason, false),
                arg("comment", Text, false),
            ]),
            "Move an issue (default: this turn's issue) to `status`, with an optional `comment` added to it; blocked and waiting_for_developer need a `wait_reason`."),
        spec(Tool::AddIssueComment, "add_issue_comment", Card, false,
            Args::Fixed(&[arg("comment", TextAtLeast(1), true)]),
            "Add a comment to this turn's issue, signed by your seat."),
        spec(Tool::GetIssueContext, "get_issue_context", Card, true, Args::Fixed(&[OWN_ISSUE]),
            "Return the status, summary, description and comments of an issue (default: this turn's issue)."),
        spec(Tool::RequestExcuse, "request_excuse", Card, false,
            Args::Fixed(&[arg("reason", TextAtLeast(1), true)]),
            "Ask a person for help: moves this turn's issue to waiting_for_developer with your reason as a comment."),
        spec(Tool::ReportCredits, "report_credits", Card, false,
            Args::Fixed(&[arg("amount", Amount, true)]),
            "Add `amount` to the credits spent on this turn's issue."),
        spec(Tool::ResetIssue, "reset_issue", Card, false, Args::Fixed(&[OWN_ISSUE, CONFIRM]),
            "Reset an issue (default: this turn's issue) to ready; requires `confirm: true`."),
        spec(Tool::NominateCard, "nominate_card", Record, false, Args::Free,
            "Nominate a card for attention; recorded as an event."),
        spec(Tool::RefinementProposal, "refinement_proposal", Record, false, Args::Free,
            "Propose a refinement of the work; recorded as an event."),
        spec(Tool::ArchiveEval, "archive_eval", Unavailable, false, Args::Free,
            "Archive an evaluation inside the project (reports \"not available\" in this build)."),
        spec(Tool::PromotePrompt, "promote_prompt", Unavailable, false, Args::Free,
            "Promote a prompt version inside the project (reports \"not available\" in this build)."),
        spec(Tool::ImageAnalyze, "image_analyze", Unavailable, false, Args::Free,
            "Analyze an image (reports \"not available\" unless a provider supports it)."),
        spec(Tool::ImageGenerate, "image_generate", Unavailable, false, Args::Free,
            "Generate an image (reports \"not available\" unless a provider supports it)."),
    ]
};

impl Tool {
    /// Every tool, in the table's order.
    pub const ALL: [Tool; 17] = {
        let mut all = [Tool::ReadFile; 17];
        let mut i = 0;
        while i < TOOLS.len() {
            all[i] = TOOLS[i].tool;
            i += 1;
        }
        all
    };

    /// The tool called `name`, if the engine knows one.
    pub fn from_name(name: &str) -> Option<Tool> {
        TOOLS.iter().find(|s| s.name == name).map(|s| s.tool)
    }

    /// Its spec in [`TOOLS`].
    pub fn spec(self) -> &'static ToolSpec {
        // The table lists every tool in declaration order (a test holds it so).
        &TOOLS[self as usize]
    }

    /// Its name on the wire.
    pub fn name(self) -> &'static str {
        self.spec().name
    }
}

impl fmt::Display for Tool {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(self.name())
    }
}

/// The names of every tool, comma-separated (for messages).
pub fn tool_names() -> String {
    TOOLS.iter().map(|s| s.name).collect::<Vec<_>>().join(", ")
}

/// True when `name` is a tool the engine knows.
pub fn is_known_tool(name: &str) -> bool {
    Tool::from_name(name).is_some()
}

/// Why a call's arguments do not fit its tool: the argument and the refusal code its rule
/// gives.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct ArgProblem {
    /// The argument.
    pub arg: &'static Arg,
    /// The stable code.
    pub code: RefusalCode,
    /// What is wrong (`argument 'path' is required (a string)`).
    pub message: String,
}

impl ToolSpec {
    /// The names of its arguments, an optional one marked `?` (`path, content`; `...` for a
    /// tool taking any object).
    pub fn arg_names(&self) -> Vec<String> {
        match self.args {
            Args::Fixed(args) => args
                .iter()
                .map(|a| {
                    if a.required {
                        a.name.to_string()
                    } else {
                        format!("{}?", a.name)
                    }
                })
                .collect(),
            Args::Free => vec!["...".to_string()],
        }
    }

    /// The JSON schema of the tool's arguments: only the subset llama.cpp's
    /// `json_schema_to_grammar` supports (`type`, `properties`, `required`, `enum`, `const`,
    /// `items`, `minLength`, `minimum`, `anyOf`, `additionalProperties`; `default` documents).
    pub fn args_schema(&self) -> Value {
        let Args::Fixed(args) = self.args else {
            return json!({"type": "object"});
        };
        let properties: Map<String, Value> = args
            .iter()
            .map(|a| {
                let mut schema = kind_schema(a.kind);
                if let (Some(default), Value::Object(map)) = (a.default, &mut schema) {
                    map.insert(
                        "default".to_string(),
                        serde_json::from_str(default).unwrap_or(Value::Null),
                    );
                }
                (a.name.to_string(), schema)
            })
            .collect();
        let required: Vec<&str> = args.iter().filter(|a| a.required).map(|a| a.name).collect();
        json!({
            "type": "object",
            "properties": properties,
            "required": required,
            "additionalProperties": false,
        })
    }

    /// Checks `args` against the table: every required argument present (`null` counts as
    /// missing), every known one of its type and rule; unknown arguments are ignored (the
    /// schema refuses them, the tolerant parser may bring them). The first problem, in the
    /// table's order.
    pub fn check_args(&self, args: &Map<String, Value>) -> Result<(), ArgProblem> {
        let Args::Fixed(specs) = self.args else {
            return Ok(());
        };
        for spec in specs {
            match args.get(spec.name) {
                None | Some(Value::Null) if spec.required => {
                    let mut problem = self.problem(
                        spec,
                        format!(
                            "argument '{}' is required ({})",
                            spec.name,
                            kind_name(spec.kind)
                        ),
                    );
                    // A missing argument is bad arguments, except a missing confirmation.
                    if spec.kind != ArgKind::Confirm {
                        problem.code = RefusalCode::BadArgs;
                    }
                    return Err(problem);
                }
                None | Some(Value::Null) => {}
                Some(value) => {
                    if let Err(why) = check_kind(spec.kind, value) {
                        return Err(self.problem(
                            spec,
                            format!(
                                "argument '{}' must be {}, {why}",
                                spec.name,
                                kind_name(spec.kind)
                            ),
                        ));
                    }
                }
            }
        }
        Ok(())
    }

    fn problem(&self, arg: &'static Arg, message: String) -> ArgProblem {
        ArgProblem {
            arg,
            code: arg.refusal,
            message: format!("{}: {message}", self.name),
        }
    }
}

/// The schema of one argument's kind.
fn kind_schema(kind: ArgKind) -> Value {
    match kind {
        ArgKind::Text => json!({"type": "string"}),
        ArgKind::TextAtLeast(n) => json!({"type": "string", "minLength": n}),
        ArgKind::Amount => json!({"type": "number", "minimum": 0}),
        ArgKind::Status => {
            json!({"type": "string", "enum": Status::ALL.map(Status::as_str)})
        }
        ArgKind::WaitReason => {
            json!({"type": "string", "enum": WaitReason::ALL.map(WaitReason::as_str)})
        }
        ArgKind::Priority => json!({"anyOf": [
            {"type": "string", "enum": ["High", "Medium", "Low"]},
            {"type": "number"},
        ]}),
        ArgKind::TextList => json!({"type": "array", "items": {"type": "string"}}),
        ArgKind::Confirm => json!({"type": "boolean", "const": true}),
        ArgKind::OneOf(names) => json!({"type": "string", "enum": names}),
    }
}

/// What a value of `kind` must be, for messages.
fn kind_name(kind: ArgKind) -> String {
    match kind {
        ArgKind::Text => "a string".to_string(),
        ArgKind::TextAtLeast(1) => "a non-empty string".to_string(),
        ArgKind::TextAtLeast(n) => format!("a string of at least {n} characters"),
        ArgKind::Amount => "a number, 0 or more".to_string(),
        ArgKind::Status => format!("a status ({})", Status::ALL.map(Status::as_str).join(", ")),
        ArgKind::WaitReason => format!(
            "a wait reason ({})",
            WaitReason::ALL.map(WaitReason::as_str).join(", ")
        ),
        ArgKind::Priority => "High, Medium, Low or a number".to_string(),
        ArgKind::TextList => "a string or a list of strings".to_string(),
        ArgKind::Confirm => "true".to_string(),
        ArgKind::OneOf(names) => format!("one of: {}", names.join(", ")),
    }
}

/// Whether `value` is of `kind` and keeps its rule; the error says what it is instead.
fn check_kind(kind: ArgKind, value: &Value) -> Result<(), String> {
    let found = || format!("found {}", crate::priority::json_kind(value));
    match kind {
        ArgKind::Text => value.is_string().then_some(()).ok_or_else(found),
        ArgKind::TextAtLeast(n) => match value.as_str() {
            Some(text) if text.chars().count() >= n => Ok(()),
            Some(text) => Err(format!(
                "found {text:?} ({} characters)",
                text.chars().count()
            )),
            None => Err(found()),
        },
        ArgKind::Amount => match as_number(value) {
            Some(n) if n.is_finite() && n >= 0.0 => Ok(()),
            Some(n) => Err(format!("found {n}")),
            None => Err(found()),
        },
        ArgKind::Status => match value.as_str() {
            Some(name) => name.parse::<Status>().map(drop).map_err(|e| e.to_string()),
            None => Err(found()),
        },
        ArgKind::WaitReason => match value.as_str() {
            Some(name) => name
                .parse::<WaitReason>()
                .map(drop)
                .map_err(|e| e.to_string()),
            None => Err(found()),
        },
        ArgKind::Priority => crate::priority::parse_priority(Some(value))
            .map(drop)
            .map_err(|e| e.to_string()),
        ArgKind::TextList => match value {
            Value::String(_) => Ok(()),
            Value::Array(items) if items.iter().all(Value::is_string) => Ok(()),
            _ => Err(found()),
        },
        ArgKind::Confirm => match value {
            Value::Bool(true) => Ok(()),
            other => Err(format!("found {other}")),
        },
        ArgKind::OneOf(names) => match value.as_str() {
            Some(name) if names.contains(&name) => Ok(()),
            Some(name) => Err(format!("found {name:?}")),
            None => Err(found()),
        },
    }
}

/// A number, or a string holding one.
pub fn as_number(value: &Value) -> Option<f64> {
    match value {
        Value::Number(n) => n.as_f64(),
        Value::String(s) => s.trim().parse::<f64>().ok(),
        _ => None,
    }
}

/// What a tool call gave, as recorded with the turn and shown to the model: on the wire
/// `{"ok": true, ...output}` or `{"ok": false, "error": "...", "code": "PATH_ESCAPE"}` (the
/// code when the gate refused the call).
#[derive(Debug, Clone, PartialEq)]
pub enum ToolResult {
    /// It ran; what it returns (`path`, `content`, `entries`, ...).
    Ok(Map<String, Value>),
    /// It was refused or failed.
    Failed {
        /// What went wrong (a refusal's text starts with its code).
        error: String,
        /// The refusal code, when there is one.
        code: Option<RefusalCode>,
    },
}

impl ToolResult {
    /// A result with `output` (an object; anything else gives no fields).
    pub fn ok(output: Value) -> ToolResult {
        match output {
            Value::Object(map) => ToolResult::Ok(map),
            _ => ToolResult::Ok(Map::new()),
        }
    }

    /// A failure without a code (the tool's own error).
    pub fn failed(error: impl Into<String>) -> ToolResult {
        ToolResult::Failed {
            error: error.into(),
            code: None,
        }
    }

    /// A refusal: `error` is the whole text (`CODE: message`).
    pub fn refused(code: RefusalCode, error: impl Into<String>) -> ToolResult {
        ToolResult::Failed {
            error: error.into(),
            code: Some(code),
        }
    }

    /// It ran.
    pub fn is_ok(&self) -> bool {
        matches!(self, ToolResult::Ok(_))
    }

    /// What went wrong, for a failure.
    pub fn error(&self) -> Option<&str> {
        match self {
            ToolResult::Ok(_) => None,
            ToolResult::Failed { error, .. } => Some(error),
        }
    }

    /// The refusal code of a refused call.
    pub fn code(&self) -> Option<RefusalCode> {
        match self {
            ToolResult::Failed { code, .. } => *code,
            ToolResult::Ok(_) => None,
        }
    }

    /// An output field of a result that ran.
    pub fn get(&self, key: &str) -> Option<&Value> {
        match self {
            ToolResult::Ok(map) => map.get(key),
            ToolResult::Failed { .. } => None,
        }
    }

    /// The wire form.
    pub fn to_value(&self) -> Value {
        let mut map = Map::new();
        map.insert("ok".to_string(), Value::Bool(self.is_ok()));
        match self {
            ToolResult::Ok(output) => {
                map.extend(output.iter().map(|(k, v)| (k.clone(), v.clone())));
            }
            ToolResult::Failed { error, code } => {
                map.insert("error".to_string(), Value::String(error.clone()));
                if let Some(code) = code {
                    map.insert("code".to_string(), Value::String(code.as_str().to_string()));
                }
            }
        }
        Value::Object(map)
    }

    /// Reads the wire form (`ok` other than `true` is a failure).
    pub fn from_value(value: Value) -> ToolResult {
        let Value::Object(mut map) = value else {
            return ToolResult::failed(format!("not a tool result: {value}"));
        };
        if map.remove("ok") == Some(Value::Bool(true)) {
            return ToolResult::Ok(map);
        }
        let error = match map.remove("error") {
            Some(Value::String(text)) => text,
            Some(other) => other.to_string(),
            None => "the tool failed".to_string(),
        };
        let code = map
            .get("code")
            .and_then(Value::as_str)
            .and_then(|c| c.parse().ok());
        ToolResult::Failed { error, code }
    }
}

impl Serialize for ToolResult {
    fn serialize<S: serde::Serializer>(&self, serializer: S) -> Result<S::Ok, S::Error> {
        self.to_value().serialize(serializer)
    }
}

impl<'de> Deserialize<'de> for ToolResult {
    fn deserialize<D: serde::Deserializer<'de>>(deserializer: D) -> Result<Self, D::Error> {
        Value::deserialize(deserializer).map(ToolResult::from_value)
    }
}

/// One tool call as a model asked for it: the tool's name and its arguments.
#[derive(Debug, Clone, PartialEq, serde::Serialize, serde::Deserialize)]
pub struct ToolCall {
    /// The tool's name (`write_file`).
    pub name: String,
    /// Its arguments, as a JSON object.
    pub args: Map<String, Value>,
}

impl ToolCall {
    /// A call of `name` with `args` (a JSON object; anything else gives no arguments).
    pub fn new(name: impl Into<String>, args: Value) -> Self {
        ToolCall {
            name: name.into(),
            args: match args {
                Value::Object(map) => map,
                _ => Map::new(),
            },
        }
    }

    /// The argument `key` as text, if it is a string.
    pub fn str_arg(&self, key: &str) -> Option<&str> {
        self.args.get(key).and_then(Value::as_str)
    }

    /// The argument `key` as a list of names: one string or an array of strings, each
    /// trimmed, empty ones left out (`depends_on`: the gate checks and the executor stores
    /// exactly these).
    pub fn names_arg(&self, key: &str) -> Vec<String> {
        let items: Vec<&str> = match self.args.get(key) {
            Some(Value::String(one)) => vec![one.as_str()],
            Some(Value::Array(items)) => items.iter().filter_map(Value::as_str).collect(),
            _ => Vec::new(),
        };
        items
            .into_iter()
            .map(str::trim)
            .filter(|name| !name.is_empty())
            .map(str::to_string)
            .collect()
    }

    /// The status the call's `status` argument names (as `Status` parses it), if any.
    pub fn status_arg(&self) -> Option<crate::Status> {
        self.str_arg("status").and_then(|s| s.parse().ok())
    }

    /// The issue the call names with `issue_id` (trimmed, not empty), else `own`.
    pub fn issue_or<'a>(&'a self, own: &'a str) -> &'a str {
        match self.str_arg("issue_id").map(str::trim) {
            Some(id) if !id.is_empty() => id,
            _ => own,
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn names_arg_reads_one_or_many_names_trimmed() {
        let one = ToolCall::new(
            "create_issue",
            serde_json::json!({"depends_on": " ISSUE-1 "}),
        );
        assert_eq!(one.names_arg("depends_on"), ["ISSUE-1"]);
        let many = ToolCall::new(
            "create_issue",
            serde_json::json!({"depends_on": ["ISSUE-1", " ", "", " ISSUE-2"]}),
        );
        assert_eq!(many.names_arg("depends_on"), ["ISSUE-1", "ISSUE-2"]);
        assert!(many.names_arg("missing").is_empty());
    }

    /// Every keyword a schema uses, recursively (object keys in schema position).
    fn keywords(schema: &Value, out: &mut Vec<String>) {
        if let Value::Object(map) = schema {
            for (key, value) in map {
                out.push(key.clone());
                match key.as_str() {
                    "properties" => {
                        if let Value::Object(props) = value {
                            props.values().for_each(|p| keywords(p, out));
                        }
                    }
                    "items" => keywords(value, out),
                    "anyOf" => {
                        if let Value::Array(list) = value {
                            list.iter().for_each(|p| keywords(p, out));
                        }
                    }
                    _ => {}
                }
            }
        }
    }

    #[test]
    fn tool_results_keep_their_wire_form() {
        let ok = ToolResult::ok(json!({"path": "a.txt", "bytes": 3}));
        assert_eq!(
            ok.to_value(),
            json!({"ok": true, "path": "a.txt", "bytes": 3})
        );
        let refused = ToolResult::refused(RefusalCode::PathEscape, "PATH_ESCAPE: no");
        assert_eq!(
            serde_json::to_value(&refused).unwrap(),
            json!({"ok": false, "error": "PATH_ESCAPE: no", "code": "PATH_ESCAPE"})
        );
        for result in [ok, refused, ToolResult::failed("read_file: gone")] {
            let back: ToolResult =
                serde_json::from_value(serde_json::to_value(&result).unwrap()).unwrap();
            assert_eq!(back, result);
        }
        // Rows written before codes were recorded read as failures without one.
        assert_eq!(
            ToolResult::from_value(json!({"ok": false, "error": "x"})),
            ToolResult::failed("x")
        );
    }

    #[test]
    fn the_table_lists_every_tool_once_in_declaration_order() {
        for (i, spec) in TOOLS.iter().enumerate() {
            assert_eq!(spec.tool as usize, i, "{}", spec.name);
            assert_eq!(Tool::from_name(spec.name), Some(spec.tool));
            assert_eq!(spec.tool.name(), spec.name);
            assert_eq!(
                serde_json::to_value(spec.tool).unwrap(),
                json!(spec.name),
                "the serde name is the wire name"
            );
            assert!(!spec.description.is_empty() && !spec.description.contains('\n'));
        }
        assert_eq!(Tool::ALL.len(), TOOLS.len());
        assert_eq!(Tool::from_name("rm_rf"), None);
    }

    #[test]
    fn schemas_stay_in_the_grammar_subset() {
        let allowed = [
            "type",
            "properties",
            "required",
            "enum",
            "const",
            "items",
            "minItems",
            "maxItems",
            "minLength",
            "minimum",
            "anyOf",
            "additionalProperties",
            "default",
        ];
        for spec in &TOOLS {
            let mut used = Vec::new();
            keywords(&spec.args_schema(), &mut used);
            for keyword in used {
                assert!(
                    allowed.contains(&keyword.as_str()),
                    "{} uses {keyword}",
                    spec.name
                );
            }
        }
    }

    #[test]
    fn required_fields_are_the_tables() {
        let required = |tool: Tool| tool.spec().args_schema()["required"].clone();
        assert_eq!(required(Tool::ReadFile), json!(["path"]));
        assert_eq!(required(Tool::WriteFile), json!(["path", "content"]));
        assert_eq!(required(Tool::DeleteFile), json!(["path", "confirm"]));
        assert_eq!(required(Tool::ResetIssue), json!(["confirm"]));
        assert_eq!(required(Tool::CreateIssue), json!(["seat", "summary"]));
        assert_eq!(required(Tool::UpdateIssueStatus), json!(["status"]));
        assert_eq!(required(Tool::ListDirectory), json!([]));
        assert_eq!(required(Tool::ReportCredits), json!(["amount"]));
        assert_eq!(
            Tool::NominateCard.spec().args_schema(),
            json!({"type": "object"})
        );
        let create = Tool::CreateIssue.spec().args_schema();
        assert_eq!(
            create["properties"]["summary"]["minLength"],
            MIN_SUMMARY_CHARS
        );
        assert_eq!(create["properties"]["priority"]["default"], "Medium");
        assert_eq!(create["properties"]["type"]["enum"], json!(ISSUE_TYPES));
        assert_eq!(create["properties"]["type"]["default"], "issue");
        assert_eq!(
            create["properties"]["severity"]["enum"],
            json!(["low", "medium", "high", "critical"])
        );
        let status = Tool::UpdateIssueStatus.spec().args_schema();
        assert_eq!(
            status["properties"]["status"]["enum"]
                .as_array()
                .map(Vec::len),
            Some(Status::ALL.len())
        );
    }

    #[test]
    fn argument_problems_name_the_tool_the_argument_and_the_code() {
        let check = |tool: Tool, args: Value| {
            tool.spec()
                .check_args(args.as_object().unwrap())
                .map_err(|p| (p.code, p.message))
        };
        assert_eq!(check(Tool::ReadFile, json!({"path": "a"})), Ok(()));
        assert_eq!(
            check(Tool::ReadFile, json!({"path": null})),
            Err((
                RefusalCode::BadArgs,
                "read_file: argument 'path' is required (a non-empty string)".to_string()
            ))
        );
        let (code, message) = check(Tool::DeleteFile, json!({"path": "a"})).unwrap_err();
        assert_eq!(code, RefusalCode::ConfirmRequired, "{message}");
        let (code, _) =
            check(Tool::DeleteFile, json!({"path": "a", "confirm": "yes"})).unwrap_err();
        assert_eq!(code, RefusalCode::ConfirmRequired);
        let (code, message) =
            check(Tool::CreateIssue, json!({"seat": "s", "summary": "abc"})).unwrap_err();
        assert_eq!(code, RefusalCode::SummaryTooShort);
        assert!(
            message.contains("found \"abc\" (3 characters)"),
            "{message}"
        );
        let (code, _) = check(Tool::UpdateIssueStatus, json!({"status": "finished"})).unwrap_err();
        assert_eq!(code, RefusalCode::UnknownStatus);
        let bug = json!({"seat": "s", "summary": "Crash on start", "type": "bug", "severity": "critical"});
        assert_eq!(check(Tool::CreateIssue, bug), Ok(()));
        let (code, message) = check(
            Tool::CreateIssue,
            json!({"seat": "s", "summary": "Crash on start", "type": "defect"}),
        )
        .unwrap_err();
        assert_eq!(code, RefusalCode::UnknownIssueType);
        assert!(
            message.contains("one of: issue, story, bug, task, utility, app")
                && message.contains("\"defect\""),
            "{message}"
        );
        let (code, message) = check(
            Tool::CreateIssue,
            json!({"seat": "s", "summary": "Crash on start", "type": "bug", "severity": "urgent"}),
        )
        .unwrap_err();
        assert_eq!(code, RefusalCode::UnknownSeverity);
        assert!(message.contains("low, medium, high, critical"), "{message}");
        let (code, message) = check(Tool::ReportCredits, json!({"amount": -1})).unwrap_err();
        assert_eq!(code, RefusalCode::BadArgs);
        assert!(message.contains("0 or more"), "{message}");
        assert_eq!(check(Tool::ReportCredits, json!({"amount": "2.5"})), Ok(()));
        assert_eq!(
            check(
                Tool::CreateIssue,
                json!({"seat": "s", "summary": "Write it", "depends_on": "A-1"})
            ),
            Ok(())
        );
        // Unknown arguments are the schema's business; free tools take anything.
        assert_eq!(
            check(Tool::ReadFile, json!({"path": "a", "mode": 1})),
            Ok(())
        );
        assert_eq!(check(Tool::NominateCard, json!({"x": [1]})), Ok(()));
    }
}
