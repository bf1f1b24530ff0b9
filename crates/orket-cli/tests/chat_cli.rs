//! `orket chat`: the driver from the command line with recorded replies (the replay key is
//! issue `driver`, role `operations_lead`).

mod common;

use assert_cmd::Command;
use serde_json::{json, Value};
use std::path::{Path, PathBuf};

/// A copy of the demo and a replay file of the driver's `replies` (a JSON string is the raw
/// reply text).
fn project(replies: &[Value]) -> (tempfile::TempDir, PathBuf, PathBuf) {
    let dir = tempfile::tempdir().unwrap();
    let root = dir.path().join("demo");
    common::copy_project(&common::demo_dir(), &root);
    let replay = dir.path().join("driver.jsonl");
    let text: String = replies
        .iter()
        .map(|r| {
            let content = match r {
                Value::String(text) => text.clone(),
                other => other.to_string(),
            };
            json!({"issue_id": "driver", "role": "operations_lead", "content": content}).to_string()
                + "\n"
        })
        .collect();
    std::fs::write(&replay, text).unwrap();
    (dir, root, replay)
}

fn chat(root: &Path, replay: &Path, extra: &[&str], stdin: Option<&str>) -> std::process::Output {
    let mut cmd = Command::cargo_bin("orket").unwrap();
    cmd.env_remove("ORKET_DB")
        .env_remove("ORKET_PROVIDER")
        .arg("chat")
        .arg("--root")
        .arg(root)
        .args(["--provider", "replay", "--replay"])
        .arg(replay)
        .args(extra);
    if let Some(input) = stdin {
        cmd.write_stdin(input);
    }
    cmd.timeout(std::time::Duration::from_secs(60))
        .output()
        .unwrap()
}

fn text(bytes: &[u8]) -> String {
    String::from_utf8_lossy(bytes).to_string()
}

#[test]
fn one_message_creates_an_epic_and_names_the_file() {
    let (_dir, root, replay) = project(&[
        json!({"action": "create_epic", "args": {"name": "docs_site", "team": "demo_team"}}),
    ]);
    let out = chat(
        &root,
        &replay,
        &[
            "--message",
            "Create an epic named docs_site for team demo_team",
        ],
        None,
    );
    let stdout = text(&out.stdout);
    assert_eq!(
        out.status.code(),
        Some(0),
        "{stdout}\n{}",
        text(&out.stderr)
    );
    assert!(
        stdout.contains("create_epic: created epic docs_site"),
        "{stdout}"
    );
    assert!(
        stdout.contains("wrote model/core/epics/docs_site.json"),
        "{stdout}"
    );
    let epic: Value = serde_json::from_str(
        &std::fs::read_to_string(root.join("model/core/epics/docs_site.json")).unwrap(),
    )
    .unwrap();
    assert_eq!(epic["team"], "demo_team");
    assert!(
        !root.join(".orket/orket.db").exists(),
        "chat never creates the store"
    );
    let check = Command::cargo_bin("orket")
        .unwrap()
        .arg("check")
        .arg("--root")
        .arg(&root)
        .output()
        .unwrap();
    assert_eq!(check.status.code(), Some(0), "{}", text(&check.stdout));
}

#[test]
fn a_refused_action_exits_1_with_the_reason_on_stderr() {
    let (_dir, root, replay) = project(&[json!({"action": "create_issue", "args": {
        "epic": "hello_cli", "summary": "Test everything", "seat": "qa"}})]);
    let before = std::fs::read(root.join("model/core/epics/hello_cli.json")).unwrap();
    let out = chat(&root, &replay, &["--message", "add a qa issue"], None);
    assert_eq!(out.status.code(), Some(1), "{}", text(&out.stdout));
    let stderr = text(&out.stderr);
    assert!(
        stderr.contains(
            "create_issue: seat: \"qa\" is not a seat of team \"demo_team\" (seats: developer, integrity_guard)"
        ),
        "{stderr}"
    );
    assert_eq!(
        before,
        std::fs::read(root.join("model/core/epics/hello_cli.json")).unwrap()
    );
}

#[test]
fn the_repl_answers_each_line_goes_on_after_a_refusal_and_ends_at_exit() {
    let (_dir, root, replay) = project(&[
        json!({"action": "reply", "message": "The demo has one epic, hello_cli."}),
        json!({"action": "create_issue", "args": {
            "epic": "hello_cli", "summary": "Test everything", "seat": "qa"}}),
        json!({"action": "create_issue", "args": {
            "epic": "hello_cli", "summary": "Add a --name flag", "seat": "developer"}}),
        json!({"action": "reply", "message": "never asked"}),
    ]);
    let out = chat(
        &root,
        &replay,
        &[],
        Some("what epics are there?\nadd a qa issue\nadd a name flag issue\nexit\nthis is not read\n"),
    );
    let stdout = text(&out.stdout);
    let stderr = text(&out.stderr);
    assert_eq!(out.status.code(), Some(0), "{stdout}\n{stderr}");
    assert!(
        stderr.contains("refused: create_issue: seat: \"qa\" is not a seat of team \"demo_team\""),
        "{stderr}"
    );
    assert!(
        stdout.contains("The demo has one epic, hello_cli."),
        "{stdout}"
    );
    assert!(
        stdout.contains("create_issue: created issue DEMO-4"),
        "{stdout}"
    );
    assert!(
        stdout.contains("wrote model/core/epics/hello_cli.json"),
        "{stdout}"
    );
    assert!(!stdout.contains("never asked"), "exit ends the session");
}

#[test]
fn a_reply_that_is_no_action_or_a_failed_model_call_exits_1() {
    let (_dir, root, replay) = project(&[json!("I am not sure what to do.")]);
    let out = chat(&root, &replay, &["--message", "do something"], None);
    assert_eq!(out.status.code(), Some(1), "{}", text(&out.stdout));
    let stderr = text(&out.stderr);
    assert!(
        stderr.contains("error: the model's reply is not an action: no JSON object found"),
        "{stderr}"
    );
    // The replay file has no reply left: the model call fails.
    let (_dir, root, replay) = project(&[]);
    let out = chat(&root, &replay, &["--message", "anything"], None);
    assert_eq!(out.status.code(), Some(1), "{}", text(&out.stdout));
    let stderr = text(&out.stderr);
    assert!(stderr.contains("error: the model call failed"), "{stderr}");
    assert!(text(&out.stdout).is_empty());
}
