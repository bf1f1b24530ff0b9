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

/// A string property.
fn string() -> serde_json::Value {
    serde_json::json!({"type": "string"})
}

/// A fixed-shape object schema: these properties, these required, nothing else.
fn object(properties: serde_json::Value, required: &[&str]) -> serde_json::Value {
    serde_json::json!({
        "type": "object",
        "properties": properties,
        "required": required,
        "additionalProperties": false,
    })
}

/// The JSON Schema of a known tool's arguments (SPEC §8), or `None` for an unknown tool.
///
/// Uses only the subset llama.cpp's `json_schema_to_grammar` supports (`type`, `properties`,
/// `required`, `enum`, `const`, `items`, `minLength`, `anyOf`, `additionalProperties`), so the
/// schema can drive constrained decoding. `default` documents what the tool assumes when an
/// optional argument is missing.
pub fn tool_args_schema(name: &str) -> Option<serde_json::Value> {
    use serde_json::json;
    let statuses: Vec<&str> = crate::Status::ALL.iter().map(|s| s.as_str()).collect();
    let wait_reasons: Vec<&str> = crate::WaitReason::ALL.iter().map(|w| w.as_str()).collect();
    let any_object = json!({"type": "object"});
    let schema = match name {
        "read_file" => object(json!({"path": string()}), &["path"]),
        "write_file" => object(
            json!({"path": string(), "content": string()}),
            &["path", "content"],
        ),
        "list_directory" => object(json!({"path": {"type": "string", "default": "."}}), &[]),
        "delete_file" => object(
            json!({"path": string(), "confirm": {"type": "boolean"}}),
            &["path", "confirm"],
        ),
        "create_issue" => object(
            json!({
                "seat": string(),
                "summary": {"type": "string", "minLength": 5},
                "type": {"type": "string", "default": "issue"},
                "priority": {
                    "anyOf": [
                        {"type": "string", "enum": ["High", "Medium", "Low"]},
                        {"type": "number"}
                    ],
                    "default": "Medium"
                },
                "depends_on": {"type": "array", "items": string()},
            }),
            &["seat", "summary"],
        ),
        "update_issue_status" => object(
            json!({
                "status": {"type": "string", "enum": statuses},
                "issue_id": string(),
                "wait_reason": {"type": "string", "enum": wait_reasons},
            }),
            &["status"],
        ),
        "add_issue_comment" => object(json!({"comment": string()}), &["comment"]),
        "get_issue_context" => object(json!({"issue_id": string()}), &[]),
        "request_excuse" => object(json!({"reason": string()}), &["reason"]),
        "report_credits" => object(json!({"amount": {"type": "number"}}), &["amount"]),
        "reset_issue" => object(
            json!({"issue_id": string(), "confirm": {"type": "boolean"}}),
            &["issue_id", "confirm"],
        ),
        "nominate_card"
        | "refinement_proposal"
        | "archive_eval"
        | "promote_prompt"
        | "image_analyze"
        | "image_generate" => any_object,
        _ => return None,
    };
    Some(schema)
}

/// A one-line description of a known tool, shown to the model in the prompt's TOOLS section.
pub fn tool_description(name: &str) -> Option<&'static str> {
    Some(match name {
        "read_file" => "Read a text file of the workspace (or the epic's references) and return its text.",
        "write_file" => "Write `content` to the file at `path` in the workspace, creating parent folders; returns the path.",
        "list_directory" => "List the entries of a workspace folder (default \".\"), sorted.",
        "delete_file" => "Delete a workspace file; requires `confirm: true`.",
        "create_issue" => "Create a new issue in the current build for `seat`, with a summary of at least 5 characters.",
        "update_issue_status" => "Move an issue (default: this turn's issue) to `status`; blocked and waiting_for_developer need a `wait_reason`.",
        "add_issue_comment" => "Add a comment to this turn's issue, signed by your seat.",
        "get_issue_context" => "Return the status, summary, description and comments of an issue (default: this turn's issue).",
        "request_excuse" => "Ask a person for help: moves this turn's issue to waiting_for_developer with your reason as a comment.",
        "report_credits" => "Add `amount` to the credits spent on this turn's issue.",
        "reset_issue" => "Reset an issue to ready; requires `confirm: true`.",
        "nominate_card" => "Nominate a card for attention; recorded as an event.",
        "refinement_proposal" => "Propose a refinement of the work; recorded as an event.",
        "archive_eval" => "Archive an evaluation inside the project.",
        "promote_prompt" => "Promote a prompt version inside the project.",
        "image_analyze" => "Analyze an image (reports \"not available\" unless a provider supports it).",
        "image_generate" => "Generate an image (reports \"not available\" unless a provider supports it).",
        _ => return None,
    })
}

#[cfg(test)]
mod tests {
    use super::*;
    use serde_json::Value;

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
    fn every_known_tool_has_a_schema_and_a_description() {
        for name in KNOWN_TOOLS {
            let schema = tool_args_schema(name).unwrap_or_else(|| panic!("no schema for {name}"));
            assert_eq!(schema["type"], "object", "{name}");
            let description =
                tool_description(name).unwrap_or_else(|| panic!("no description for {name}"));
            assert!(
                !description.is_empty() && !description.contains('\n'),
                "{name}"
            );
        }
        assert_eq!(tool_args_schema("rm_rf"), None);
        assert_eq!(tool_description("rm_rf"), None);
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
            "anyOf",
            "additionalProperties",
            "default",
        ];
        for name in KNOWN_TOOLS {
            let mut used = Vec::new();
            keywords(&tool_args_schema(name).unwrap_or_default(), &mut used);
            for keyword in used {
                assert!(allowed.contains(&keyword.as_str()), "{name} uses {keyword}");
            }
        }
    }

    #[test]
    fn required_fields_exist_and_fixed_shapes_refuse_extras() {
        let free = [
            "nominate_card",
            "refinement_proposal",
            "archive_eval",
            "promote_prompt",
            "image_analyze",
            "image_generate",
        ];
        for name in KNOWN_TOOLS {
            let schema = tool_args_schema(name).unwrap_or_default();
            if free.contains(&name) {
                assert_eq!(schema, serde_json::json!({"type": "object"}), "{name}");
                continue;
            }
            assert_eq!(schema["additionalProperties"], false, "{name}");
            let props = schema["properties"]
                .as_object()
                .cloned()
                .unwrap_or_default();
            for required in schema["required"].as_array().cloned().unwrap_or_default() {
                let key = required.as_str().unwrap_or_default();
                assert!(
                    props.contains_key(key),
                    "{name}: required {key} not a property"
                );
            }
        }
        let required = |name: &str| tool_args_schema(name).unwrap_or_default()["required"].clone();
        assert_eq!(required("read_file"), serde_json::json!(["path"]));
        assert_eq!(
            required("write_file"),
            serde_json::json!(["path", "content"])
        );
        assert_eq!(
            required("delete_file"),
            serde_json::json!(["path", "confirm"])
        );
        assert_eq!(
            required("reset_issue"),
            serde_json::json!(["issue_id", "confirm"])
        );
        assert_eq!(
            required("create_issue"),
            serde_json::json!(["seat", "summary"])
        );
        assert_eq!(
            required("update_issue_status"),
            serde_json::json!(["status"])
        );
        assert_eq!(required("list_directory"), serde_json::json!([]));
        assert_eq!(required("report_credits"), serde_json::json!(["amount"]));
    }

    #[test]
    fn status_and_wait_reason_enums_list_every_name() {
        let schema = tool_args_schema("update_issue_status").unwrap_or_default();
        let statuses = &schema["properties"]["status"]["enum"];
        assert_eq!(statuses.as_array().map(Vec::len), Some(9));
        for status in crate::Status::ALL {
            assert!(statuses
                .as_array()
                .is_some_and(|l| l.contains(&Value::from(status.as_str()))));
        }
        assert_eq!(
            schema["properties"]["wait_reason"]["enum"],
            serde_json::json!(["resource", "dependency", "review", "input", "system"])
        );
        let create = tool_args_schema("create_issue").unwrap_or_default();
        assert_eq!(create["properties"]["summary"]["minLength"], 5);
        assert_eq!(
            create["properties"]["depends_on"]["items"]["type"],
            "string"
        );
    }
}
