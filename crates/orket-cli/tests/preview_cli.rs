//! `orket preview`: the flattened view with each seat's prompts, as text and JSON.

mod common;

use assert_cmd::Command;
use serde_json::Value;
use std::path::PathBuf;

fn orket(args: &[&str]) -> std::process::Output {
    let dir = tempfile::tempdir().unwrap();
    let demo = PathBuf::from(env!("CARGO_MANIFEST_DIR")).join("../../demo");
    let out = Command::cargo_bin("orket")
        .unwrap()
        .env_remove("ORKET_DB")
        .args(args)
        .arg("--root")
        .arg(&demo)
        .arg("--db")
        .arg(dir.path().join("none.db"))
        .output()
        .unwrap();
    assert!(
        !dir.path().join("none.db").exists(),
        "preview never creates the store"
    );
    out
}

#[test]
fn preview_json_lists_each_issue_with_its_seats_and_prompts() {
    let out = orket(&["preview", "hello_cli", "--json"]);
    assert_eq!(
        out.status.code(),
        Some(0),
        "{}",
        String::from_utf8_lossy(&out.stderr)
    );
    let view: Value = serde_json::from_slice(&out.stdout).unwrap();
    assert_eq!(view["kind"], "epic");
    let issues = view["epics"][0]["issues"].as_array().unwrap();
    assert_eq!(issues.len(), 3);
    for issue in issues {
        let turns = issue["turns"].as_array().unwrap();
        assert_eq!(turns.len(), 2);
        assert_eq!(turns[0]["seat"], "developer");
        assert_eq!(turns[1]["roles"][0], "integrity_guard");
        assert!(turns[0]["system_prompt"]
            .as_str()
            .unwrap()
            .contains("### CARD SYSTEM PROTOCOL"));
    }
}

#[test]
fn preview_text_shows_the_prompts() {
    let out = orket(&["preview", "DEMO-3", "--model", "qwen2.5-coder:7b"]);
    assert_eq!(out.status.code(), Some(0));
    let text = String::from_utf8(out.stdout).unwrap();
    assert!(
        text.starts_with("Preview of issue DEMO-3 (department core)"),
        "{text}"
    );
    assert!(
        text.contains("== DEMO-3 Write NOTES.md [ready, from the file]"),
        "{text}"
    );
    assert!(text.contains(
        "-- developer turn: seat developer (Developer), roles coder, model qwen2.5-coder:7b served by the run's provider, dialect qwen"
    ), "{text}");
    assert!(text.contains("-- review turn: seat"), "{text}");
    assert!(text.contains("[system]\n### IDENTITY\n"));
    assert!(!text.contains("== DEMO-1"));
}

#[test]
fn preview_shows_the_client_serving_each_seat() {
    let dir = tempfile::tempdir().unwrap();
    let root = dir.path().join("project");
    common::copy_project(&common::demo_dir(), &root);
    let env_file = root.join("model/core/environments/local.json");
    let mut env: Value =
        serde_json::from_str(&std::fs::read_to_string(&env_file).unwrap()).unwrap();
    env["seat_model_clients"] = serde_json::json!({"integrity_guard": {
        "provider": "openai", "model": "qwen2.5-7b-instruct", "base_url": "http://127.0.0.1:8081/v1"}});
    std::fs::write(&env_file, env.to_string()).unwrap();
    let out = Command::cargo_bin("orket")
        .unwrap()
        .env_remove("ORKET_DB")
        .args(["preview", "DEMO-1", "--json", "--root"])
        .arg(&root)
        .output()
        .unwrap();
    assert_eq!(
        out.status.code(),
        Some(0),
        "{}",
        String::from_utf8_lossy(&out.stderr)
    );
    let view: Value = serde_json::from_slice(&out.stdout).unwrap();
    let turns = &view["epics"][0]["issues"][0]["turns"];
    assert_eq!(turns[0]["client"], "the run's provider");
    assert_eq!(turns[0]["model"], "smollm2-135m-instruct");
    assert_eq!(turns[1]["client"], "openai http://127.0.0.1:8081/v1");
    assert_eq!(turns[1]["model"], "qwen2.5-7b-instruct");
    assert_eq!(turns[1]["dialect"], "qwen");
}

#[test]
fn an_unknown_card_fails_with_its_name() {
    let out = orket(&["preview", "NOPE-9"]);
    assert_eq!(out.status.code(), Some(1));
    let err = String::from_utf8(out.stderr).unwrap();
    assert!(
        err.contains("\"NOPE-9\" is no epic, rock or issue of department \"core\""),
        "{err}"
    );
}
