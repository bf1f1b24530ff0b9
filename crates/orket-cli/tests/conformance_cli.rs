//! `orket conformance` with recorded replies: the demo epic from scratch once per seed, every
//! step scored from the store, as a user reads the table or the JSON.

mod common;

use assert_cmd::Command;
use serde_json::{json, Value};
use std::path::Path;

fn orket() -> Command {
    let mut cmd = Command::cargo_bin("orket").unwrap();
    cmd.env_remove("ORKET_DB").env_remove("ORKET_PROVIDER");
    cmd
}

/// `orket conformance smollm2 --runs N --provider replay --replay FILE`.
fn conformance(replay: &Path, runs: &str) -> Command {
    let mut cmd = orket();
    cmd.args([
        "conformance",
        "smollm2",
        "--runs",
        runs,
        "--provider",
        "replay",
    ])
    .arg("--replay")
    .arg(replay);
    cmd
}

fn line(issue: &str, role: &str, calls: Value) -> String {
    json!({"issue_id": issue, "role": role, "content": calls.to_string()}).to_string()
}

/// Replies that complete the demo epic; DEMO-1's developer
/// first reads the file it should write when `detour` is set.
fn replay(dir: &Path, detour: bool) -> std::path::PathBuf {
    let mut lines = Vec::new();
    for (issue, path, content) in common::PASSING_WORK {
        if detour && issue == "DEMO-1" {
            lines.push(line(
                issue,
                "coder",
                json!({"tool": "read_file", "args": {"path": path}}),
            ));
        }
        lines.push(line(
            issue,
            "coder",
            json!([
                {"tool": "write_file", "args": {"path": path, "content": content}},
                {"tool": "update_issue_status", "args": {"status": "code_review"}}
            ]),
        ));
        lines.push(line(
            issue,
            "integrity_guard",
            json!({"tool": "update_issue_status", "args": {"status": "done"}}),
        ));
    }
    let file = dir.join("replay.jsonl");
    std::fs::write(&file, lines.join("\n")).unwrap();
    file
}

#[test]
fn a_model_that_completes_the_demo_scores_full_marks_in_every_run() {
    let dir = tempfile::tempdir().unwrap();
    let file = replay(dir.path(), false);
    let out = conformance(&file, "2")
        .arg("--json")
        .arg("--keep")
        .arg(dir.path().join("runs"))
        .output()
        .unwrap();
    assert!(
        out.status.success(),
        "{}",
        String::from_utf8_lossy(&out.stderr)
    );
    let report: Value = serde_json::from_slice(&out.stdout).unwrap();
    assert_eq!(report["provider"], "replay");
    assert_eq!(report["completed"], json!({"ok": 2, "of": 2}));
    let runs = report["runs"].as_array().unwrap();
    assert_eq!(runs.len(), 2);
    for (i, run) in runs.iter().enumerate() {
        assert_eq!(run["seed"], i + 1);
        assert_eq!(run["status"], "completed");
        assert_eq!(run["issues_done"], json!({"ok": 3, "of": 3}));
        assert_eq!(run["turns"], 6);
        // Each run has its own project, kept where --keep said.
        let store = dir
            .path()
            .join(format!("runs/seed-{}/.orket/orket.db", i + 1));
        assert!(store.is_file(), "{store:?}");
    }
    assert_eq!(
        report["steps"],
        json!({
            "legal_calls": {"ok": 12, "of": 12},
            "right_tool": {"ok": 6, "of": 6},
            "reviews_decided": {"ok": 6, "of": 6}
        })
    );
}

#[test]
fn a_developer_that_reads_before_writing_loses_the_direct_ask_and_the_table_says_so() {
    let dir = tempfile::tempdir().unwrap();
    let file = replay(dir.path(), true);
    let out = conformance(&file, "1")
        .arg("--out")
        .arg(dir.path().join("report.json"))
        .output()
        .unwrap();
    let stdout = String::from_utf8_lossy(&out.stdout);
    assert!(out.status.success(), "{stdout}");
    // The read of a missing file is a legal call whose tool failed: a correction, not a
    // refusal. The epic still completes.
    for row in [
        "Conformance of smollm2 (replay), 1 run of the demo epic",
        "legal call per step                7/7 (100%)",
        "right tool for a direct ask        2/3 (67%)",
        "review decided within its steps    3/3 (100%)",
        "demo epic completed                1/1 (100%)",
    ] {
        assert!(stdout.contains(row), "{row}\n{stdout}");
    }
    let written: Value =
        serde_json::from_str(&std::fs::read_to_string(dir.path().join("report.json")).unwrap())
            .unwrap();
    assert_eq!(written["steps"]["right_tool"], json!({"ok": 2, "of": 3}));
}

#[test]
fn bad_arguments_are_refused_with_the_reason() {
    let out = orket()
        .args(["conformance", "smollm2", "--runs", "0"])
        .output()
        .unwrap();
    assert_eq!(out.status.code(), Some(1));
    assert!(String::from_utf8_lossy(&out.stderr).contains("--runs must be at least 1"));

    let out = orket().args(["conformance", "nope"]).output().unwrap();
    assert_eq!(out.status.code(), Some(1));
    let stderr = String::from_utf8_lossy(&out.stderr);
    assert!(
        stderr.contains("no demo model is called 'nope' (known: smollm2, gemma3-270m)"),
        "{stderr}"
    );

    let dir = tempfile::tempdir().unwrap();
    let file = replay(dir.path(), false);
    let keep = dir.path().join("runs");
    let run = |keep: &Path| {
        conformance(&file, "1")
            .arg("--keep")
            .arg(keep)
            .output()
            .unwrap()
    };
    assert!(run(&keep).status.success());
    let again = run(&keep);
    assert_eq!(again.status.code(), Some(1));
    assert!(
        String::from_utf8_lossy(&again.stderr).contains("already holds a run"),
        "{}",
        String::from_utf8_lossy(&again.stderr)
    );
}
