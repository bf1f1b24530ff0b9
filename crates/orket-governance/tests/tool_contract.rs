//! One tool contract: what the model is told (a step's JSON schema, `orket_llm::step_schema`)
//! and what the gate enforces (its argument check, `ToolSpec::check_args`, then its rules) are
//! derived from the one table in `orket_core::tools`. For every tool: arguments the schema
//! accepts pass the gate's argument check, and arguments the gate refuses for their shape are
//! refused by the schema. Changing how either side reads the table, alone, breaks this test.

use orket_core::tools::{Args, Tool, TOOLS};
use orket_core::{RefusalCode, Status, ToolCall};
use orket_governance::confine::Confinement;
use orket_governance::gate::{check_call, AllowedTools, GateContext};
use orket_llm::{step_schema, StepChoices};
use proptest::prelude::*;
use serde_json::{json, Map, Value};

/// The codes the argument check gives (a value's type or rule); every other code is a rule of
/// the gate applied to well-shaped arguments (paths, transitions, ...).
const SHAPE_CODES: [RefusalCode; 6] = [
    RefusalCode::BadArgs,
    RefusalCode::ConfirmRequired,
    RefusalCode::SummaryTooShort,
    RefusalCode::UnknownStatus,
    RefusalCode::UnknownIssueType,
    RefusalCode::UnknownSeverity,
];

/// The reply a model would give to call `tool` with `args`, judged by a step's schema with
/// every status reachable.
fn schema_accepts(tool: Tool, args: &Map<String, Value>) -> bool {
    let schema = step_schema(&StepChoices {
        tools: &[tool],
        moves: &Status::ALL,
        explained: &[],
        paths: &[],
        max_text: None,
        content_apart: false,
    });
    let reply = json!({"tool_calls": [{"tool": tool.name(), "args": args}]});
    jsonschema::validator_for(&schema)
        .unwrap_or_else(|e| panic!("{tool}: not a valid schema: {e}"))
        .is_valid(&reply)
}

/// The gate's argument check: `Ok` or the refusal code it gives.
fn gate_check(tool: Tool, args: &Map<String, Value>) -> Result<(), RefusalCode> {
    tool.spec().check_args(args).map_err(|p| p.code)
}

/// Strings that hit the rules: empty, short, names of statuses and wait reasons, priorities,
/// numbers in text, paths.
fn text() -> impl Strategy<Value = String> {
    prop_oneof![
        prop::sample::select(vec![
            "",
            " ",
            "a",
            "fix",
            "abcd",
            "abcde",
            "Add login",
            "done",
            "code_review",
            "blocked",
            "finished",
            "input",
            "later",
            "High",
            "low",
            "Urgent",
            "bug",
            "story",
            "critical",
            "medium",
            "3",
            "-1",
            "2.5",
            "x.txt",
            "src/app.py",
            ".",
        ])
        .prop_map(str::to_string),
        "[a-z_ ]{0,9}",
    ]
}

/// Any JSON value an argument might be given: mostly scalars (the rules' boundaries), now
/// and then a list or an object.
fn value() -> impl Strategy<Value = Value> {
    let scalar = prop_oneof![
        1 => Just(Value::Null),
        1 => any::<bool>().prop_map(Value::Bool),
        1 => (-3i64..4).prop_map(|n| json!(n)),
        1 => (-2.5f64..2.5).prop_map(|n| json!(n)),
        3 => text().prop_map(Value::String),
    ];
    prop_oneof![
        6 => scalar.clone(),
        1 => prop::collection::vec(text().prop_map(Value::String), 0..3).prop_map(Value::Array),
        1 => prop::collection::vec(scalar.clone(), 1..3).prop_map(Value::Array),
        1 => prop::collection::btree_map("[a-z]{1,3}", scalar, 0..2)
            .prop_map(|m| Value::Object(m.into_iter().collect())),
    ]
}

/// A tool and arguments near its boundary: its minimal well-shaped arguments with one to three
/// of them (or an unknown one) removed or given another value.
fn call() -> impl Strategy<Value = (Tool, Map<String, Value>)> {
    (0..TOOLS.len()).prop_flat_map(|i| {
        let spec = &TOOLS[i];
        let mut names: Vec<&'static str> = match spec.args {
            Args::Fixed(args) => args.iter().map(|a| a.name).collect(),
            Args::Free => Vec::new(),
        };
        names.push("extra");
        let edits = prop::collection::vec(
            (
                prop::sample::select(names),
                prop::option::weighted(0.85, value()),
            ),
            1..4,
        );
        (Just(spec.tool), edits).prop_map(|(tool, edits)| {
            let mut args = minimal(tool);
            for (name, value) in edits {
                match value {
                    Some(value) => args.insert(name.to_string(), value),
                    None => args.remove(name),
                };
            }
            (tool, args)
        })
    })
}

proptest! {
    #![proptest_config(ProptestConfig::with_cases(3000))]

    #[test]
    fn what_the_schema_accepts_the_gate_accepts((tool, args) in call()) {
        let accepted = schema_accepts(tool, &args);
        let checked = gate_check(tool, &args);
        if accepted {
            prop_assert!(
                checked.is_ok(),
                "{tool} {}: the schema accepts it, the gate refuses it ({checked:?})",
                Value::Object(args.clone())
            );
        }
        if let Err(code) = checked {
            prop_assert!(SHAPE_CODES.contains(&code), "{tool}: {code} is no shape code");
            prop_assert!(
                !accepted,
                "{tool} {}: the gate refuses it ({code}), the schema accepts it",
                Value::Object(args.clone())
            );
        }
    }
}

/// The least a call of `tool` needs: each required argument with a value of its kind.
fn minimal(tool: Tool) -> Map<String, Value> {
    use orket_core::tools::ArgKind;
    let Args::Fixed(args) = tool.spec().args else {
        return Map::new();
    };
    args.iter()
        .filter(|a| a.required)
        .map(|a| {
            let value = match a.kind {
                ArgKind::Text | ArgKind::TextAtLeast(_) => json!("notes/today.md"),
                ArgKind::Amount => json!(1),
                ArgKind::Status => json!("code_review"),
                ArgKind::WaitReason => json!("input"),
                ArgKind::Priority => json!("High"),
                ArgKind::TextList => json!([]),
                ArgKind::Confirm => json!(true),
                ArgKind::OneOf(names) => json!(names[0]),
            };
            (a.name.to_string(), value)
        })
        .collect()
}

#[test]
fn every_required_argument_is_required_on_both_sides() {
    for spec in &TOOLS {
        let args = minimal(spec.tool);
        assert!(schema_accepts(spec.tool, &args), "{}: {args:?}", spec.name);
        assert_eq!(gate_check(spec.tool, &args), Ok(()), "{}", spec.name);
        for key in args.keys() {
            let mut without = args.clone();
            without.remove(key);
            assert!(
                !schema_accepts(spec.tool, &without),
                "{}: the schema lets '{key}' out",
                spec.name
            );
            assert!(
                gate_check(spec.tool, &without).is_err(),
                "{}: the gate lets '{key}' out",
                spec.name
            );
        }
    }
}

#[test]
fn the_real_gate_lets_well_shaped_minimal_calls_through_its_argument_check() {
    let dir = tempfile::tempdir().unwrap();
    let workspace = Confinement::workspace(dir.path(), &[]).unwrap();
    std::fs::write(dir.path().join("notes"), "").ok();
    let roles = vec!["integrity_guard".to_string(), "lead_architect".to_string()];
    let status_of = |_: &str| Some(Status::InProgress);
    let ctx = GateContext {
        issue_id: "notes/today.md",
        roles: &roles,
        allowed_tools: &AllowedTools::Any,
        workspace: &workspace,
        idesign: false,
        approval_required: &[],
        status_of: &status_of,
    };
    for spec in &TOOLS {
        let call = ToolCall {
            name: spec.name.to_string(),
            args: minimal(spec.tool),
        };
        if let Err(refusal) = check_call(&ctx, &call) {
            assert!(
                !SHAPE_CODES.contains(&refusal.code),
                "{}: refused for its shape: {refusal}",
                spec.name
            );
        }
    }
}
