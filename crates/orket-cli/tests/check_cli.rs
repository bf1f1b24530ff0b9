//! `orket check` as a user runs it: exit codes and what it prints.

mod common;

use assert_cmd::Command;
use std::path::PathBuf;

fn repo() -> PathBuf {
    PathBuf::from(env!("CARGO_MANIFEST_DIR")).join("../..")
}

fn orket() -> Command {
    let mut cmd = Command::cargo_bin("orket").unwrap();
    cmd.env_remove("ORKET_DB");
    cmd
}

#[test]
fn demo_passes() {
    let out = orket()
        .args(["check", "--root"])
        .arg(repo().join("demo"))
        .output()
        .unwrap();
    let stdout = String::from_utf8(out.stdout).unwrap();
    assert_eq!(out.status.code(), Some(0), "{stdout}");
    assert!(
        stdout
            .trim_end()
            .ends_with("13 files checked, 0 errors, 0 warnings"),
        "{stdout}"
    );
}

#[test]
fn broken_tree_lists_every_problem_and_exits_1() {
    let root = repo().join("crates/orket-core/tests/fixtures/broken_tree");
    let out = orket()
        .args(["check", "--root"])
        .arg(&root)
        .output()
        .unwrap();
    let stdout = String::from_utf8(out.stdout).unwrap();
    assert_eq!(out.status.code(), Some(1), "{stdout}");
    let expected = [
        "error: model/core/epics/broken_json.json: invalid JSON at line 7, column 3",
        "error: model/core/epics/ghost_team.json: team: team \"ghosts\" not found",
        "error: model/core/epics/main.json: issues[0].depends_on: dependency cycle: M-1 -> M-3 -> M-2 -> M-1",
        "error: model/core/epics/main.json: issues[3].depends_on[0]: unknown issue id \"NOPE-9\"",
        "error: model/core/epics/main.json: issues[4].status: unknown status \"finished\"",
        "error: model/core/epics/main.json: issues[5].seat: seat \"designer\" is not a seat of team \"crew\"",
        "error: model/core/epics/main.json: issues[6].priority: expected High, Medium, Low or a number, found \"Urgent\"",
        "error: model/core/epics/main.json: environment: environment \"mars\" not found",
        "error: model/core/teams/crew.json: seats.tester.roles[0]: role \"tester\" has no file",
        "error: model/core/dialects/phi.json: no dialect for model family \"phi\"",
        "error: model/core/dialects/llama3.json: hallucination_guard: required field is missing",
        "error: model/core/epics/too_big.json: issues: 8 issues exceed the iDesign threshold of 7",
        "error: model/core/epics/no_environment.json: environment: required field is missing",
        "error: model/core/rocks/launch.json: epics[1].epic: epic \"vanished_epic\" not found in department \"core\"",
    ];
    for line in expected {
        assert!(
            stdout.lines().any(|l| l.starts_with(line)),
            "missing {line}\n{stdout}"
        );
    }
    assert_eq!(
        stdout.lines().filter(|l| l.starts_with("error: ")).count(),
        expected.len(),
        "{stdout}"
    );
    assert!(stdout.contains(", 14 errors,"), "{stdout}");
}

#[test]
fn json_report() {
    let root = repo().join("crates/orket-core/tests/fixtures/broken_tree");
    let out = orket()
        .args(["check", "--json", "--root"])
        .arg(&root)
        .output()
        .unwrap();
    assert_eq!(out.status.code(), Some(1));
    let report: serde_json::Value = serde_json::from_slice(&out.stdout).unwrap();
    assert_eq!(report["ok"], false);
    assert_eq!(report["errors"], 14);
    let first = &report["diagnostics"][0];
    assert!(first["file"].is_string() && first["path"].is_string() && first["message"].is_string());
    assert!(first["severity"] == "error" || first["severity"] == "warning");
}

#[test]
fn missing_root_and_non_project_are_clear_errors() {
    let out = orket()
        .args(["check", "--root", "/nonexistent/orket"])
        .output()
        .unwrap();
    assert_eq!(out.status.code(), Some(1));
    let stderr = String::from_utf8(out.stderr).unwrap();
    assert!(
        stderr.contains("error: project root /nonexistent/orket does not exist"),
        "{stderr}"
    );

    let empty = tempfile::tempdir().unwrap();
    let out = orket()
        .args(["check", "--root"])
        .arg(empty.path())
        .output()
        .unwrap();
    assert_eq!(out.status.code(), Some(1));
    let stderr = String::from_utf8(out.stderr).unwrap();
    assert!(
        stderr.contains("is not an Orket project: it has neither model/ nor config/"),
        "{stderr}"
    );
}

#[test]
fn unknown_department_fails() {
    let out = orket()
        .args(["check", "--department", "nowhere", "--root"])
        .arg(repo().join("demo"))
        .output()
        .unwrap();
    assert_eq!(out.status.code(), Some(1));
    let stdout = String::from_utf8(out.stdout).unwrap();
    assert!(
        stdout.contains("error: model/nowhere: department \"nowhere\" not found"),
        "{stdout}"
    );
}

#[test]
fn a_bad_model_profile_names_each_bad_field() {
    let dir = tempfile::tempdir().unwrap();
    common::copy_project(&common::demo_dir(), dir.path());
    std::fs::write(
        dir.path().join("model/core/models/bad-model.json"),
        r#"{"temperature": 3, "top_p": 0, "seed_policy": "always", "max_tokens": 0,
            "context_window": 100, "steps": 30, "corrections": -1, "candidates": 0}"#,
    )
    .unwrap();
    let out = orket()
        .args(["check", "--root"])
        .arg(dir.path())
        .output()
        .unwrap();
    let stdout = String::from_utf8(out.stdout).unwrap();
    assert_eq!(out.status.code(), Some(1), "{stdout}");
    let file = "error: model/core/models/bad-model.json";
    let expected = [
        format!("{file}: temperature: expected a number from 0.0 to 2.0, found 3"),
        format!("{file}: top_p: expected a number greater than 0 and at most 1, found 0"),
        format!("{file}: seed_policy: unknown seed policy \"always\" (expected \"fixed\" or \"per_call\")"),
        format!("{file}: max_tokens: expected a whole number of at least 1, found 0"),
        format!("{file}: context_window: expected a whole number of at least 256, found 100"),
        format!("{file}: steps: expected a whole number from 1 to 20, found 30"),
        format!("{file}: corrections: expected a non-negative whole number, found a number"),
        format!("{file}: candidates: expected a whole number from 1 to 10, found 0"),
    ];
    let errors: Vec<&str> = stdout
        .lines()
        .filter(|l| l.starts_with("error: "))
        .collect();
    assert_eq!(errors, expected, "{stdout}");
    assert!(
        stdout
            .trim_end()
            .ends_with("14 files checked, 8 errors, 0 warnings"),
        "{stdout}"
    );
}
