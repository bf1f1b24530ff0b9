//! The table of actions holds the schema and the parser together: every action of `ACTIONS`,
//! written with only its required fields or with all of them, is accepted by the driver's
//! schema (checked with a real JSON Schema validator) and read back by `parse_action` as the
//! same action, every field given reaching the action; an unknown field is refused by both.

use orket_core::assets::AssetTree;
use orket_driver::{
    driver_schema, parse_action, ActionSpec, Driver, DriverOptions, Field, Layout, Names, Shape,
    ACTIONS,
};
use orket_llm::ReplayProvider;
use serde_json::{json, Map, Value};
use std::path::PathBuf;
use std::sync::Arc;

/// The schema of the demo tree (teams `demo_team`, epic `hello_cli` with `DEMO-1`...).
fn demo_schema() -> Value {
    let root = PathBuf::from(env!("CARGO_MANIFEST_DIR")).join("../../demo");
    let provider = ReplayProvider::from_jsonl("none.jsonl", "").unwrap();
    let driver = Driver::new(
        AssetTree::new(root),
        Arc::new(provider),
        DriverOptions::default(),
    );
    driver_schema(&driver.facts())
}

/// A name of the demo of kind `names` (`Any`: a text naming the field).
fn sample(names: Names, field: &Field) -> Value {
    match names {
        Names::Any => json!(format!("the {} given", field.name)),
        Names::Departments => json!("core"),
        Names::Teams => json!("demo_team"),
        Names::Environments => json!("local"),
        Names::Seats => json!("developer"),
        Names::Epics => json!("hello_cli"),
        Names::IssueIds => json!("DEMO-2"),
    }
}

/// A value of `field`'s shape; `full`: lists have an item, objects every field.
fn value(field: &Field, full: bool) -> Value {
    match field.shape {
        Shape::Text(names) => sample(names, field),
        Shape::Priority => json!("High"),
        Shape::List { of, min_items } => {
            let count = if full { min_items.max(1) } else { min_items };
            Value::Array(vec![sample(of, field); count])
        }
        Shape::Objects(fields) if full => json!([object(fields, true)]),
        Shape::Objects(_) => json!([]),
    }
}

/// An object of `fields`: the required ones, or (`full`) all.
fn object(fields: &[Field], full: bool) -> Map<String, Value> {
    fields
        .iter()
        .filter(|f| full || f.required)
        .map(|f| (f.name.to_string(), value(f, full)))
        .collect()
}

/// The action `spec` with its required fields, or (`full`) all its fields.
fn action(spec: &ActionSpec, full: bool) -> Value {
    let fields = object(spec.fields, full);
    let mut action = Map::new();
    action.insert("action".into(), json!(spec.name));
    match spec.layout {
        Layout::Args => {
            action.insert("args".into(), Value::Object(fields));
        }
        Layout::Inline => action.extend(fields),
    }
    Value::Object(action)
}

/// Every string of `value`, recursively.
fn strings(value: &Value, out: &mut Vec<String>) {
    match value {
        Value::String(s) => out.push(s.clone()),
        Value::Array(items) => items.iter().for_each(|v| strings(v, out)),
        Value::Object(map) => map.values().for_each(|v| strings(v, out)),
        _ => {}
    }
}

#[test]
fn every_action_round_trips_through_the_schema_and_the_parser() {
    let schema = demo_schema();
    let validator = jsonschema::validator_for(&schema).unwrap_or_else(|e| panic!("{e}"));
    for spec in &ACTIONS {
        for full in [false, true] {
            let reply = action(spec, full);
            let problems: Vec<String> = validator
                .iter_errors(&reply)
                .map(|e| e.to_string())
                .collect();
            assert!(
                problems.is_empty(),
                "the schema refuses {reply}: {problems:?}"
            );
            let parsed =
                parse_action(&reply.to_string()).unwrap_or_else(|e| panic!("{reply}: {e}"));
            assert_eq!(parsed.kind(), spec.kind, "{reply}");
            assert_eq!(parsed.name(), spec.name);
            let read = format!("{parsed:?}");
            let mut given = Vec::new();
            strings(&reply, &mut given);
            for text in given.iter().filter(|s| *s != spec.name) {
                assert!(
                    read.contains(text.as_str()),
                    "{text} of {reply} is lost: {read}"
                );
            }
        }
    }
}

#[test]
fn an_unknown_field_is_refused_by_the_schema_and_the_parser() {
    let schema = demo_schema();
    let validator = jsonschema::validator_for(&schema).unwrap_or_else(|e| panic!("{e}"));
    for spec in ACTIONS.iter().filter(|s| s.layout == Layout::Args) {
        let mut reply = action(spec, false);
        reply["args"]["colour"] = json!("red");
        assert!(!validator.is_valid(&reply), "the schema takes {reply}");
        let err = parse_action(&reply.to_string())
            .err()
            .map(|e| e.to_string())
            .unwrap_or_default();
        assert!(
            err.contains(&format!("{}: args.colour: unknown field", spec.name)),
            "{reply}: {err}"
        );
    }
}

#[test]
fn the_schema_has_one_variant_per_action_in_the_tables_order() {
    let schema = demo_schema();
    let names: Vec<&str> = schema["oneOf"]
        .as_array()
        .map(|variants| {
            variants
                .iter()
                .filter_map(|v| v["properties"]["action"]["const"].as_str())
                .collect()
        })
        .unwrap_or_default();
    let table: Vec<&str> = ACTIONS.iter().map(|s| s.name).collect();
    assert_eq!(names, table);
}
