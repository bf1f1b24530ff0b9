//! The turn schema for constrained decoding, checked with a real JSON Schema validator.

use orket_core::tools::Tool;
use orket_core::Status;
use orket_llm::{parse_tool_calls, turn_schema, ToolCall};
use serde_json::{json, Value};

/// The tools named (every name a real tool).
fn tools(names: &[&str]) -> Vec<Tool> {
    names
        .iter()
        .map(|n| Tool::from_name(n).unwrap_or_else(|| panic!("no tool {n}")))
        .collect()
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
fn a_good_reply_validates() {
    let reply = json!({"tool_calls": [
        {"tool": "write_file", "args": {"path": "src/lib.rs", "content": "pub fn f() {}\n"}},
        {"tool": "add_issue_comment", "args": {"comment": "Implemented f"}},
        {"tool": "create_issue", "args": {"seat": "coder", "summary": "Write tests", "priority": "High", "depends_on": ["ISSUE-0001"]}},
        {"tool": "create_issue", "args": {"seat": "coder", "summary": "Write docs", "priority": 2.5}},
        {"tool": "update_issue_status", "args": {"status": "code_review"}},
        {"tool": "update_issue_status", "args": {"status": "blocked", "wait_reason": "dependency", "issue_id": "ISSUE-0002"}}
    ]});
    assert!(valid(&developer_schema(), &reply));
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
fn one_to_ten_calls() {
    let schema = developer_schema();
    let call = json!({"tool": "read_file", "args": {"path": "a"}});
    let calls = |n: usize| json!({"tool_calls": vec![call.clone(); n]});
    assert!(valid(&schema, &calls(1)));
    assert!(valid(&schema, &calls(10)));
    assert!(!valid(&schema, &calls(11)));
    assert!(!valid(&schema, &calls(0)));
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
        {"tool": "write_file", "args": {"path": "a.rs", "content": "fn a() { \"}\" }"}},
        {"tool": "update_issue_status", "args": {"status": "code_review"}}
    ]});
    assert!(valid(&developer_schema(), &reply));
    for text in [
        reply.to_string(),
        serde_json::to_string_pretty(&reply).unwrap_or_default(),
    ] {
        assert_eq!(
            parse_tool_calls(&text),
            vec![
                ToolCall::new(
                    "write_file",
                    json!({"path": "a.rs", "content": "fn a() { \"}\" }"})
                ),
                ToolCall::new("update_issue_status", json!({"status": "code_review"})),
            ]
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
