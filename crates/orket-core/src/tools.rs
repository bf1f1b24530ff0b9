//! The names of the tools agents may call (SPEC §8), known to the asset validator and the gate.

/// Every tool the engine knows.
pub const KNOWN_TOOLS: [&str; 17] = [
    "read_file",
    "write_file",
    "list_directory",
    "delete_file",
    "create_issue",
    "update_issue_status",
    "add_issue_comment",
    "get_issue_context",
    "request_excuse",
    "report_credits",
    "reset_issue",
    "nominate_card",
    "refinement_proposal",
    "archive_eval",
    "promote_prompt",
    "image_analyze",
    "image_generate",
];

/// True when `name` is a tool the engine knows.
pub fn is_known_tool(name: &str) -> bool {
    KNOWN_TOOLS.contains(&name)
}

/// One tool call as a model asked for it: the tool's name and its arguments.
#[derive(Debug, Clone, PartialEq, serde::Serialize, serde::Deserialize)]
pub struct ToolCall {
    /// The tool's name (`write_file`).
    pub name: String,
    /// Its arguments, as a JSON object.
    pub args: serde_json::Map<String, serde_json::Value>,
}

impl ToolCall {
    /// A call of `name` with `args` (a JSON object; anything else gives no arguments).
    pub fn new(name: impl Into<String>, args: serde_json::Value) -> Self {
        ToolCall {
            name: name.into(),
            args: match args {
                serde_json::Value::Object(map) => map,
                _ => serde_json::Map::new(),
            },
        }
    }

    /// The argument `key` as text, if it is a string.
    pub fn str_arg(&self, key: &str) -> Option<&str> {
        self.args.get(key).and_then(serde_json::Value::as_str)
    }
}
