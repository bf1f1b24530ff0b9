//! The tolerant tool-call parser: every reply shape the parser accepts, and garbage.

use orket_core::tools::Tool;
use orket_core::ToolCall;
use orket_llm::parse_tool_calls;
use proptest::prelude::*;
use serde_json::{json, Map, Value};

fn call(name: &str, args: Value) -> ToolCall {
    ToolCall::new(name, args)
}

#[test]
fn fenced_json_call() {
    let reply = "```json\n{\"tool\": \"read_file\", \"args\": {\"path\": \"src/main.rs\"}}\n```";
    assert_eq!(
        parse_tool_calls(reply),
        vec![call("read_file", json!({"path": "src/main.rs"}))]
    );
    let plain_fence = "```\n{\"tool\": \"list_directory\"}\n```";
    assert_eq!(
        parse_tool_calls(plain_fence),
        vec![call("list_directory", json!({}))]
    );
}

#[test]
fn prose_around_a_call() {
    let reply = "I will write the file now. {\"tool\": \"write_file\", \"args\": {\"path\": \"a.txt\", \"content\": \"hi\"}} Then I am done.";
    assert_eq!(
        parse_tool_calls(reply),
        vec![call(
            "write_file",
            json!({"path": "a.txt", "content": "hi"})
        )]
    );
}

#[test]
fn several_calls_in_order() {
    let reply = r#"First:
```json
{"tool": "write_file", "args": {"path": "a.py", "content": "x = 1\n"}}
```
then the status {"tool": "update_issue_status", "args": {"status": "code_review"}}
and a comment: {"name": "add_issue_comment", "arguments": {"comment": "done"}}"#;
    assert_eq!(
        parse_tool_calls(reply),
        vec![
            call("write_file", json!({"path": "a.py", "content": "x = 1\n"})),
            call("update_issue_status", json!({"status": "code_review"})),
            call("add_issue_comment", json!({"comment": "done"})),
        ]
    );
}

#[test]
fn arrays_of_calls() {
    let reply = r#"[{"tool": "read_file", "args": {"path": "a"}}, {"tool": "read_file", "args": {"path": "b"}}]"#;
    assert_eq!(
        parse_tool_calls(reply),
        vec![
            call("read_file", json!({"path": "a"})),
            call("read_file", json!({"path": "b"})),
        ]
    );
    // Non-calls in an array are skipped, calls kept.
    let mixed = r#"[1, "x", {"tool": "get_issue_context"}, {"note": "no"}]"#;
    assert_eq!(
        parse_tool_calls(mixed),
        vec![call("get_issue_context", json!({}))]
    );
}

#[test]
fn openai_and_function_shapes() {
    let openai = r#"{"id": "call_1", "type": "function", "function": {"name": "read_file", "arguments": "{\"path\": \"README.md\"}"}}"#;
    assert_eq!(
        parse_tool_calls(openai),
        vec![call("read_file", json!({"path": "README.md"}))]
    );
    let object_arguments =
        r#"{"function": {"name": "report_credits", "arguments": {"amount": 2.5}}}"#;
    assert_eq!(
        parse_tool_calls(object_arguments),
        vec![call("report_credits", json!({"amount": 2.5}))]
    );
    let message = r#"{"role": "assistant", "content": "", "tool_calls": [
        {"id": "a", "type": "function", "function": {"name": "list_directory", "arguments": ""}},
        {"function": {"name": "request_excuse", "arguments": {"reason": "need a key"}}}
    ]}"#;
    assert_eq!(
        parse_tool_calls(message),
        vec![
            call("list_directory", json!({})),
            call("request_excuse", json!({"reason": "need a key"})),
        ]
    );
    let llama3 = r#"{"name": "get_issue_context", "parameters": {"issue_id": "ISSUE-0001"}}"#;
    assert_eq!(
        parse_tool_calls(llama3),
        vec![call("get_issue_context", json!({"issue_id": "ISSUE-0001"}))]
    );
}

#[test]
fn arguments_as_a_json_string() {
    let reply = r#"{"name": "write_file", "arguments": "{\"path\": \"x.rs\", \"content\": \"fn f() { \\\"q\\\" }\"}"}"#;
    assert_eq!(
        parse_tool_calls(reply),
        vec![call(
            "write_file",
            json!({"path": "x.rs", "content": "fn f() { \"q\" }"})
        )]
    );
    // A string that does not hold an object is not a call.
    assert_eq!(
        parse_tool_calls(r#"{"name": "write_file", "arguments": "path=x.rs"}"#),
        vec![]
    );
    // Nor is a `name` without arguments (too common in ordinary JSON).
    assert_eq!(parse_tool_calls(r#"{"name": "Ada", "age": 36}"#), vec![]);
}

#[test]
fn tool_calls_wrapper_is_the_constrained_shape() {
    let reply = r#"{"tool_calls": [{"tool": "add_issue_comment", "args": {"comment": "ok"}}, {"tool": "update_issue_status", "args": {"status": "blocked", "wait_reason": "dependency"}}]}"#;
    assert_eq!(
        parse_tool_calls(reply),
        vec![
            call("add_issue_comment", json!({"comment": "ok"})),
            call(
                "update_issue_status",
                json!({"status": "blocked", "wait_reason": "dependency"})
            ),
        ]
    );
}

#[test]
fn braces_and_escaped_quotes_inside_content() {
    let content = "fn main() { println!(\"{}\", \"}\"); }\n// a \\\" quote and a [ bracket\n";
    let encoded =
        json!({"tool": "write_file", "args": {"path": "src/main.rs", "content": content}});
    let reply = format!("Here it is: {encoded} and nothing else.");
    assert_eq!(
        parse_tool_calls(&reply),
        vec![call(
            "write_file",
            json!({"path": "src/main.rs", "content": content})
        )]
    );
    // Unbalanced brackets inside strings.
    for content in ["}", "{", "]]", "[{", "\"}\"", "\\", "\\\"{"] {
        let encoded = json!({"tool": "write_file", "args": {"path": "p", "content": content}});
        assert_eq!(
            parse_tool_calls(&format!("x {encoded} y")),
            vec![call("write_file", json!({"path": "p", "content": content}))],
            "{encoded}"
        );
    }
    // The exact case that broke the original's scanner.
    let reply =
        r#"{"tool": "write_file", "args": {"path": "main.rs", "content": "fn main() { }"}}"#;
    assert_eq!(
        parse_tool_calls(reply),
        vec![call(
            "write_file",
            json!({"path": "main.rs", "content": "fn main() { }"})
        )]
    );
}

#[test]
fn nested_objects_are_not_counted_twice() {
    // The args hold an object that itself looks like a call: one call only.
    let reply = r#"{"tool": "write_file", "args": {"path": "calls.json", "content": "x", "meta": {"tool": "delete_file", "args": {"path": "/"}}}}"#;
    let calls = parse_tool_calls(reply);
    assert_eq!(calls.len(), 1);
    assert_eq!(calls[0].name, "write_file");
    // A JSON value that is not a call is skipped whole, with the calls inside it.
    let wrapper = r#"{"plan": {"tool": "delete_file", "args": {"path": "a"}}}"#;
    assert_eq!(parse_tool_calls(wrapper), vec![]);
}

#[test]
fn a_broken_candidate_does_not_hide_a_later_call() {
    let reply = r#"Thinking {about "it {"tool": "read_file", "args": {"path": "a"}} ok"#;
    assert_eq!(
        parse_tool_calls(reply),
        vec![call("read_file", json!({"path": "a"}))]
    );
    let reply = r#"{ my plan: {"tool": "read_file", "args": {"path": "b"}} }"#;
    assert_eq!(
        parse_tool_calls(reply),
        vec![call("read_file", json!({"path": "b"}))]
    );
    let reply =
        "[write_file] is what I'll use: {\"tool\": \"read_file\", \"args\": {\"path\": \"c\"}}";
    assert_eq!(
        parse_tool_calls(reply),
        vec![call("read_file", json!({"path": "c"}))]
    );
}

#[test]
fn unusable_arguments_are_not_a_call() {
    assert_eq!(
        parse_tool_calls(r#"{"tool": "read_file", "args": 3}"#),
        vec![]
    );
    assert_eq!(parse_tool_calls(r#"{"tool": "  ", "args": {}}"#), vec![]);
    assert_eq!(
        parse_tool_calls(r#"{"tool": " read_file ", "args": null}"#),
        vec![call("read_file", json!({}))]
    );
}

#[test]
fn legacy_tool_blocks() {
    let reply = "I'll write it.\nTOOL: write_file\nPATH: src/lib.rs\nCONTENT:\npub fn f() -> u8 {\n    1\n}\n\nTOOL: update_issue_status\nSTATUS: code_review\nCOMMENT: Implemented f\n";
    assert_eq!(
        parse_tool_calls(reply),
        vec![
            call(
                "write_file",
                json!({"path": "src/lib.rs", "content": "pub fn f() -> u8 {\n    1\n}\n\n"})
            ),
            call(
                "update_issue_status",
                json!({"status": "code_review", "comment": "Implemented f"})
            ),
        ]
    );
}

#[test]
fn bracketed_prose_is_not_a_call() {
    assert!(parse_tool_calls("[Summary]\nI looked at the code.\n[Next steps]\nNone.").is_empty());
}

#[test]
fn legacy_bracket_blocks_and_fences() {
    let reply = "```\n[write_file]\nPATH: app.js\nCONTENT:\nconst o = { a: \"}\" };\nif (x) { y(); }\n```\n";
    assert_eq!(
        parse_tool_calls(reply),
        vec![call(
            "write_file",
            json!({"path": "app.js", "content": "const o = { a: \"}\" };\nif (x) { y(); }\n"})
        )]
    );
    // Content with its own fence pair loses the pair; a TOML section is not a block start.
    let reply = "[write_file]\nPATH: Cargo.toml\nCONTENT:\n```toml\n[package]\nname = \"x\"\n```\n[update_issue_status]\nSTATUS: blocked\nWAIT_REASON: input\nISSUE_ID: ISSUE-0002\n[delete_file]\nPATH: old.txt\nCONFIRM: true\n";
    assert_eq!(
        parse_tool_calls(reply),
        vec![
            call(
                "write_file",
                json!({"path": "Cargo.toml", "content": "[package]\nname = \"x\"\n"})
            ),
            call(
                "update_issue_status",
                json!({"status": "blocked", "wait_reason": "input", "issue_id": "ISSUE-0002"})
            ),
            call("delete_file", json!({"path": "old.txt", "confirm": true})),
        ]
    );
    // `CONTENT: text` on one line keeps that text; no trailing newline at the end of input.
    assert_eq!(
        parse_tool_calls("TOOL: write_file\nPATH: a\nCONTENT: one\ntwo"),
        vec![call(
            "write_file",
            json!({"path": "a", "content": "one\ntwo"})
        )]
    );
    assert_eq!(
        parse_tool_calls("TOOL: report_credits\nAMOUNT: 3\nREASON: tokens"),
        vec![call(
            "report_credits",
            json!({"amount": 3.0, "reason": "tokens"})
        )]
    );
}

#[test]
fn legacy_blocks_only_when_no_json_call() {
    let reply = "TOOL: read_file\nPATH: a\n{\"tool\": \"read_file\", \"args\": {\"path\": \"b\"}}";
    assert_eq!(
        parse_tool_calls(reply),
        vec![call("read_file", json!({"path": "b"}))]
    );
    // A header needs an identifier.
    assert_eq!(parse_tool_calls("[1 2]\nTOOL: not a name\n[x-y]\n"), vec![]);
}

#[test]
fn garbage_gives_no_call() {
    for reply in [
        "",
        "   ",
        "no calls here",
        "{",
        "}",
        "[[[",
        "]]]}}}",
        "{\"tool\": \"read_file\", \"args\": {\"path\": \"a\"}",
        "{\"tool\": \"read_file\", \"args\": {\"path\": \"a\\\"}}",
        "\"{\\\"tool\\\": \\\"x\\\"}\"",
        "{'tool': 'read_file', 'args': {'path': 'a'}}",
        "\\{\"\u{0}\"}",
        "TOOL:",
        "[]",
    ] {
        assert_eq!(parse_tool_calls(reply), vec![], "{reply:?}");
    }
}

#[test]
fn huge_and_deep_input_does_not_hang_or_panic() {
    for unit in ["{", "[", "{\"", "{\"a\":", "[\"\\", "{\"{\"", "}{"] {
        let reply = unit.repeat(200_000 / unit.len());
        assert_eq!(parse_tool_calls(&reply), vec![], "{unit}");
    }
    let deep = format!("{}{}", "[".repeat(100_000), "]".repeat(100_000));
    assert_eq!(parse_tool_calls(&deep), vec![]);
    // A call after a megabyte of unbalanced braces is still found.
    let reply = format!(
        "{}{}",
        "{ ".repeat(500_000),
        r#"{"tool": "read_file", "args": {"path": "a"}}"#
    );
    assert_eq!(
        parse_tool_calls(&reply),
        vec![call("read_file", json!({"path": "a"}))]
    );
}

#[test]
fn unicode_everywhere() {
    let reply = "Voilà — 日本語 {\"tool\": \"add_issue_comment\", \"args\": {\"comment\": \"très bien ✓ {ok} \\\"ß\\\"\"}} 🎉";
    assert_eq!(
        parse_tool_calls(reply),
        vec![call(
            "add_issue_comment",
            json!({"comment": "très bien ✓ {ok} \"ß\""})
        )]
    );
    assert_eq!(
        parse_tool_calls("TOOL: add_issue_comment\nCOMMENT: ünïcödé ✓\n"),
        vec![call("add_issue_comment", json!({"comment": "ünïcödé ✓"}))]
    );
    assert_eq!(parse_tool_calls("{é[ü\"\u{10FFFF}"), vec![]);
}

/// A JSON value for arguments: strings with braces, quotes and newlines, numbers, nesting.
fn arg_value() -> impl Strategy<Value = Value> {
    let leaf = prop_oneof![
        any::<String>().prop_map(Value::String),
        "[{}\\[\\]\"\\\\\n a-z:,]{0,40}".prop_map(Value::String),
        any::<i64>().prop_map(Value::from),
        any::<bool>().prop_map(Value::Bool),
        Just(Value::Null),
    ];
    leaf.prop_recursive(3, 16, 4, |inner| {
        prop_oneof![
            prop::collection::vec(inner.clone(), 0..4).prop_map(Value::Array),
            prop::collection::btree_map("[a-z_]{1,8}", inner, 0..4)
                .prop_map(|m| Value::Object(m.into_iter().collect())),
        ]
    })
}

/// A call in one of the accepted shapes, serialized.
fn encode(name: &str, args: &Map<String, Value>, shape: u8) -> String {
    let args = Value::Object(args.clone());
    match shape % 5 {
        0 => json!({"tool": name, "args": args}),
        1 => json!({"name": name, "arguments": args}),
        2 => json!({"name": name, "arguments": args.to_string()}),
        3 => json!({"id": "c1", "type": "function", "function": {"name": name, "arguments": args.to_string()}}),
        _ => json!({"tool_calls": [{"tool": name, "args": args}]}),
    }
    .to_string()
}

proptest! {
    #![proptest_config(ProptestConfig::with_cases(512))]

    #[test]
    fn any_call_between_any_prose_is_found(
        tool in 0..Tool::ALL.len(),
        args in prop::collection::btree_map("[a-z_]{1,10}", arg_value(), 0..5),
        shape in any::<u8>(),
        before in any::<String>(),
        after in any::<String>(),
        fenced in any::<bool>(),
    ) {
        let name = Tool::ALL[tool].name();
        let args: Map<String, Value> = args.into_iter().collect();
        let encoded = encode(name, &args, shape);
        let body = if fenced { format!("```json\n{encoded}\n```") } else { encoded };
        let reply = format!("{before}{body}{after}");
        let calls = parse_tool_calls(&reply);
        let expected = ToolCall { name: name.to_string(), args };
        prop_assert!(calls.contains(&expected), "{reply:?} gave {calls:?}");
    }

    #[test]
    fn a_call_between_brace_free_prose_is_the_only_call(
        tool in 0..Tool::ALL.len(),
        args in prop::collection::btree_map("[a-z_]{1,10}", arg_value(), 0..5),
        shape in any::<u8>(),
        before in "[^\\[{]*",
        after in "[^\\[{]*",
    ) {
        let name = Tool::ALL[tool].name();
        let args: Map<String, Value> = args.into_iter().collect();
        let reply = format!("{before}{}{after}", encode(name, &args, shape));
        let expected = ToolCall { name: name.to_string(), args };
        prop_assert_eq!(parse_tool_calls(&reply), vec![expected]);
    }

    #[test]
    fn never_panics(text in any::<String>()) {
        let _ = parse_tool_calls(&text);
    }

    #[test]
    fn never_panics_on_json_ish_text(text in "[{}\\[\\]\"\\\\:,a-z \n`]{0,200}") {
        let _ = parse_tool_calls(&text);
    }
}

#[test]
fn raw_newlines_inside_strings_are_read_as_escaped() {
    // llama-cpp-python's `json_object` + schema grammar lets a model put a literal newline in a
    // string (its string rule excludes only `"` and `\`): the reply seen from SmolLM2.
    let reply = "{ \"tool_calls\": [ { \"tool\" : \"write_file\", \"args\": {\"path\": \"hello.py\", \"content\": \"print(\\\"Hello\\\")\n\tdone\" } }] }";
    assert!(
        serde_json::from_str::<Value>(reply).is_err(),
        "strict JSON refuses it"
    );
    assert_eq!(
        parse_tool_calls(reply),
        vec![call(
            "write_file",
            json!({"path": "hello.py", "content": "print(\"Hello\")\n\tdone"})
        )]
    );
    // A newline between tokens (outside strings) stays plain whitespace.
    let spaced = "{\n\"tool\": \"read_file\",\n\"args\": {\"path\": \"a\nb\"}\n}";
    assert_eq!(
        parse_tool_calls(spaced),
        vec![call("read_file", json!({"path": "a\nb"}))]
    );
}
