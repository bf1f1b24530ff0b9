//! A step's schema for constrained decoding, checked with a real JSON Schema validator.

use orket_core::tools::Tool;
use orket_core::Status;
use orket_llm::{parse_tool_calls, step_schema, StepChoices, ToolCall};
use serde_json::{json, Value};

/// The tools named (every name a real tool).
fn tools(names: &[&str]) -> Vec<Tool> {
    names
        .iter()
        .map(|n| Tool::from_name(n).unwrap_or_else(|| panic!("no tool {n}")))
        .collect()
}

/// The schema of a step that may call `tools` and make `moves`, none explained.
fn turn_schema(tools: &[Tool], moves: &[Status]) -> Value {
    step_schema(&StepChoices {
        tools,
        moves,
        explained: &[],
        paths: &[],
        max_text: None,
        content_apart: false,
    })
}

fn developer_schema() -> Value {
    turn_schema(
        &tools(&[
            "write_file",
            "read_file",
            "update_issue_status",
            "add_issue_comment",
            "create_issue",
        ]),
        &[
            Status::Blocked,
            Status::WaitingForDeveloper,
            Status::ReadyForTesting,
            Status::CodeReview,
            Status::Canceled,
        ],
    )
}

/// Every call of `calls` is a valid one-call reply of `schema`.
fn each_valid(schema: &Value, calls: &[Value]) -> bool {
    calls
        .iter()
        .all(|call| valid(schema, &json!({"tool_calls": [call]})))
}

fn valid(schema: &Value, reply: &Value) -> bool {
    match jsonschema::validator_for(schema) {
        Ok(validator) => validator.is_valid(reply),
        Err(e) => panic!("not a valid schema: {e}"),
    }
}

/// The `tool` constants of the schema's variants, in order.
fn variant_tools(schema: &Value) -> Vec<String> {
    schema["properties"]["tool_calls"]["items"]["anyOf"]
        .as_array()
        .map(|variants| {
            variants
                .iter()
                .filter_map(|v| v["properties"]["tool"]["const"].as_str())
                .map(str::to_string)
                .collect()
        })
        .unwrap_or_default()
}

/// Every keyword a schema uses (keys in schema position), recursively.
fn keywords(schema: &Value, out: &mut Vec<String>) {
    let Value::Object(map) = schema else { return };
    for (key, value) in map {
        out.push(key.clone());
        match (key.as_str(), value) {
            ("properties", Value::Object(props)) => props.values().for_each(|p| keywords(p, out)),
            ("items", item) => keywords(item, out),
            ("anyOf", Value::Array(list)) => list.iter().for_each(|p| keywords(p, out)),
            _ => {}
        }
    }
}

#[test]
fn the_schema_is_valid_and_in_the_grammar_subset() {
    for schema in [
        developer_schema(),
        turn_schema(&Tool::ALL, &Status::ALL),
        turn_schema(&[], &[]),
    ] {
        assert!(jsonschema::meta::is_valid(&schema), "{schema}");
        let mut used = Vec::new();
        keywords(&schema, &mut used);
        for keyword in used {
            assert!(
                !["$ref", "oneOf", "patternProperties", "if", "allOf", "not"]
                    .contains(&keyword.as_str()),
                "{keyword}"
            );
        }
    }
}

#[test]
fn good_calls_validate() {
    let calls = [
        json!({"tool": "write_file", "args": {"path": "src/lib.rs", "content": "pub fn f() {}\n"}}),
        json!({"tool": "add_issue_comment", "args": {"comment": "Implemented f"}}),
        json!({"tool": "create_issue", "args": {"seat": "coder", "summary": "Write tests", "priority": "High", "depends_on": ["ISSUE-0001"]}}),
        json!({"tool": "create_issue", "args": {"seat": "coder", "summary": "Write docs", "priority": 2.5}}),
        json!({"tool": "update_issue_status", "args": {"status": "code_review"}}),
        json!({"tool": "update_issue_status", "args": {"status": "code_review", "comment": "ready"}}),
        json!({"tool": "update_issue_status", "args": {"status": "blocked", "wait_reason": "dependency", "issue_id": "ISSUE-0002"}}),
    ];
    assert!(each_valid(&developer_schema(), &calls));
}

#[test]
fn unknown_or_unlisted_tools_do_not_validate() {
    let schema = developer_schema();
    for tool in ["rm_rf", "delete_file", "reset_issue"] {
        let reply = json!({"tool_calls": [{"tool": tool, "args": {"path": "a", "confirm": true, "issue_id": "I"}}]});
        assert!(!valid(&schema, &reply), "{tool}");
    }
}

#[test]
fn unreachable_statuses_do_not_validate() {
    let schema = developer_schema();
    for status in ["done", "ready", "in_progress", "archived", "finished"] {
        let reply =
            json!({"tool_calls": [{"tool": "update_issue_status", "args": {"status": status}}]});
        assert!(!valid(&schema, &reply), "{status}");
    }
    // A status that needs a wait reason must carry a valid one.
    for args in [
        json!({"status": "blocked"}),
        json!({"status": "waiting_for_developer", "wait_reason": "coffee"}),
    ] {
        let reply = json!({"tool_calls": [{"tool": "update_issue_status", "args": args}]});
        assert!(!valid(&schema, &reply), "{reply}");
    }
}

#[test]
fn extra_fields_do_not_validate() {
    let schema = developer_schema();
    let call = json!({"tool": "read_file", "args": {"path": "a"}});
    assert!(valid(&schema, &json!({"tool_calls": [call]})));
    for reply in [
        json!({"tool_calls": [call], "thoughts": "hmm"}),
        json!({"tool_calls": [{"tool": "read_file", "args": {"path": "a"}, "why": "x"}]}),
        json!({"tool_calls": [{"tool": "read_file", "args": {"path": "a", "mode": "r"}}]}),
        json!({"tool_calls": [{"tool": "read_file", "args": {}}]}),
        json!({"tool_calls": [{"tool": "read_file"}]}),
        json!({"tool_calls": [{"tool": "create_issue", "args": {"seat": "coder", "summary": "abc"}}]}),
        json!({"tool_calls": [{"tool": "create_issue", "args": {"seat": "coder", "summary": "abcde", "priority": "Urgent"}}]}),
        json!({"calls": [call]}),
    ] {
        assert!(!valid(&schema, &reply), "{reply}");
    }
}

#[test]
fn a_step_is_exactly_one_call() {
    let schema = developer_schema();
    let call = json!({"tool": "read_file", "args": {"path": "a"}});
    let calls = |n: usize| json!({"tool_calls": vec![call.clone(); n]});
    assert!(valid(&schema, &calls(1)));
    assert!(!valid(&schema, &calls(2)));
    assert!(!valid(&schema, &calls(0)));
}

#[test]
fn an_explained_move_needs_a_comment() {
    let schema = step_schema(&StepChoices {
        tools: &tools(&["update_issue_status"]),
        moves: &[Status::Done, Status::InProgress],
        explained: &[Status::InProgress],
        paths: &[],
        max_text: None,
        content_apart: false,
    });
    let reply =
        |args: Value| json!({"tool_calls": [{"tool": "update_issue_status", "args": args}]});
    assert!(valid(&schema, &reply(json!({"status": "done"}))));
    assert!(valid(
        &schema,
        &reply(json!({"status": "in_progress", "comment": "hello.py prints nothing"}))
    ));
    for args in [
        json!({"status": "in_progress"}),
        json!({"status": "in_progress", "comment": ""}),
        json!({"status": "code_review", "comment": "x"}),
    ] {
        assert!(!valid(&schema, &reply(args.clone())), "{args}");
    }
}

#[test]
fn tools_are_ordered_and_deduplicated() {
    let schema = turn_schema(
        &tools(&[
            "read_file",
            "write_file",
            "read_file",
            "update_issue_status",
        ]),
        &[Status::CodeReview, Status::Blocked, Status::CodeReview],
    );
    assert_eq!(
        variant_tools(&schema),
        [
            "read_file",
            "write_file",
            "update_issue_status",
            "update_issue_status"
        ]
    );
    let variants = &schema["properties"]["tool_calls"]["items"]["anyOf"];
    assert_eq!(
        variants[2]["properties"]["args"]["properties"]["status"]["enum"],
        json!(["code_review"])
    );
    assert_eq!(
        variants[3]["properties"]["args"]["properties"]["status"]["enum"],
        json!(["blocked"])
    );
    assert_eq!(
        variants[3]["properties"]["args"]["required"],
        json!(["status", "wait_reason"])
    );
}

#[test]
fn no_reachable_status_leaves_update_issue_status_out() {
    let schema = turn_schema(&tools(&["update_issue_status", "add_issue_comment"]), &[]);
    assert_eq!(variant_tools(&schema), ["add_issue_comment"]);
    let reply =
        json!({"tool_calls": [{"tool": "update_issue_status", "args": {"status": "done"}}]});
    assert!(!valid(&schema, &reply));
}

#[test]
fn no_tool_admits_only_an_empty_list() {
    let schema = turn_schema(&[], &Status::ALL);
    assert!(valid(&schema, &json!({"tool_calls": []})));
    assert!(!valid(
        &schema,
        &json!({"tool_calls": [{"tool": "rm_rf", "args": {}}]})
    ));
}

#[test]
fn a_schema_valid_reply_parses_into_its_calls() {
    let reply = json!({"tool_calls": [
        {"tool": "write_file", "args": {"path": "a.rs", "content": "fn a() { \"}\" }"}}
    ]});
    assert!(valid(&developer_schema(), &reply));
    for text in [
        reply.to_string(),
        serde_json::to_string_pretty(&reply).unwrap_or_default(),
    ] {
        assert_eq!(
            parse_tool_calls(&text),
            vec![ToolCall::new(
                "write_file",
                json!({"path": "a.rs", "content": "fn a() { \"}\" }"})
            ),]
        );
    }
}

#[test]
fn free_form_tools_take_any_object() {
    let schema = turn_schema(&tools(&["nominate_card"]), &[]);
    let reply = json!({"tool_calls": [{"tool": "nominate_card", "args": {"card": "ISSUE-1", "why": ["fast"]}}]});
    assert!(valid(&schema, &reply));
    let not_object = json!({"tool_calls": [{"tool": "nominate_card", "args": "ISSUE-1"}]});
    assert!(!valid(&schema, &not_object));
}

#[test]
fn an_issue_s_files_and_the_text_limit_narrow_the_arguments() {
    let files = ["NOTES.md".to_string()];
    let schema = step_schema(&StepChoices {
        tools: &tools(&["write_file", "add_issue_comment", "update_issue_status"]),
        moves: &[Status::InProgress],
        explained: &[Status::InProgress],
        paths: &files,
        max_text: Some(10),
        content_apart: false,
    });
    let call = |tool: &str, args: Value| json!({"tool_calls": [{"tool": tool, "args": args}]});
    assert!(valid(
        &schema,
        &call(
            "write_file",
            json!({"path": "NOTES.md", "content": "- a\n- b"})
        )
    ));
    // Another path, or a longer text, is outside the schema.
    assert!(!valid(
        &schema,
        &call("write_file", json!({"path": "hello.py", "content": "x"}))
    ));
    assert!(!valid(
        &schema,
        &call(
            "write_file",
            json!({"path": "NOTES.md", "content": "12345678901"})
        )
    ));
    assert!(!valid(
        &schema,
        &call("add_issue_comment", json!({"comment": "12345678901"}))
    ));
    assert!(!valid(
        &schema,
        &call(
            "update_issue_status",
            json!({"status": "in_progress", "comment": "12345678901"})
        )
    ));
    assert!(valid(
        &schema,
        &call(
            "update_issue_status",
            json!({"status": "in_progress", "comment": "prints no"})
        )
    ));
}

#[test]
fn content_asked_for_apart_leaves_write_file_with_its_path_only() {
    let files = ["hello.py".to_string()];
    let schema = step_schema(&StepChoices {
        tools: &tools(&["write_file", "update_issue_status"]),
        moves: &[Status::CodeReview],
        explained: &[],
        paths: &files,
        max_text: Some(10),
        content_apart: true,
    });
    let call = |args: Value| json!({"tool_calls": [{"tool": "write_file", "args": args}]});
    assert!(valid(&schema, &call(json!({"path": "hello.py"}))));
    // The content comes in a reply of its own: the call may not carry one, nor another path.
    assert!(!valid(
        &schema,
        &call(json!({"path": "hello.py", "content": "print(1)"}))
    ));
    assert!(!valid(&schema, &call(json!({"path": "other.py"}))));
    assert!(!valid(&schema, &call(json!({}))));
}
