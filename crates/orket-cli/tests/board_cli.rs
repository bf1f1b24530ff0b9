//! `orket board`: from the files, then from the store once a build exists.

mod common;

use assert_cmd::Command;
use orket_core::Status;
use orket_store::{BuildRecord, IssueRecord, IssueUpdate, SqliteStore, Store};
use serde_json::Value;
use std::path::Path;

fn board_json(root: &Path, extra: &[&str], env_db: Option<&Path>) -> Value {
    let mut cmd = Command::cargo_bin("orket").unwrap();
    cmd.env_remove("ORKET_DB");
    if let Some(db) = env_db {
        cmd.env("ORKET_DB", db);
    }
    let out = cmd
        .args(["board", "--json", "--root"])
        .arg(root)
        .args(extra)
        .output()
        .unwrap();
    assert_eq!(
        out.status.code(),
        Some(0),
        "{}",
        String::from_utf8_lossy(&out.stderr)
    );
    serde_json::from_slice(&out.stdout).unwrap()
}

fn issue_statuses(epic: &Value) -> Vec<(String, String)> {
    epic["issues"]
        .as_array()
        .unwrap()
        .iter()
        .map(|i| {
            (
                i["id"].as_str().unwrap().to_string(),
                i["status"].as_str().unwrap().to_string(),
            )
        })
        .collect()
}

#[test]
fn board_from_files_lists_every_card_with_id_and_status() {
    let dir = tempfile::tempdir().unwrap();
    common::copy_project(&common::demo_dir(), dir.path());
    let board = board_json(dir.path(), &[], None);
    let rock = &board["rocks"][0];
    assert_eq!(rock["id"], "demo_launch");
    assert_eq!(rock["status"], "ready");
    let epic = &rock["epics"][0];
    assert_eq!(epic["id"], "hello_cli");
    assert_eq!(epic["source"], "files");
    assert_eq!(
        issue_statuses(epic),
        [
            ("DEMO-1".into(), "ready".into()),
            ("DEMO-2".into(), "ready".into()),
            ("DEMO-3".into(), "ready".into())
        ]
    );
    assert_eq!(
        board["epics"].as_array().unwrap().len(),
        0,
        "hello_cli belongs to the rock"
    );
    // A read-only command does not create the store.
    assert!(!dir.path().join(".orket").exists());

    let out = Command::cargo_bin("orket")
        .unwrap()
        .env_remove("ORKET_DB")
        .args(["board", "--root"])
        .arg(dir.path())
        .output()
        .unwrap();
    let text = String::from_utf8(out.stdout).unwrap();
    assert!(
        text.contains("Rock demo_launch — Demo launch [ready] (core)"),
        "{text}"
    );
    assert!(
        text.contains(
            "Epic hello_cli — Hello CLI [ready] (core, team demo_team, statuses from files)"
        ),
        "{text}"
    );
    assert!(
        text.lines()
            .any(|l| l.contains("DEMO-2") && l.contains("after DEMO-1")),
        "{text}"
    );
}

#[tokio::test(flavor = "multi_thread")]
async fn board_reads_statuses_from_the_store_of_the_root() {
    let dir = tempfile::tempdir().unwrap();
    let root = dir.path().join("project");
    common::copy_project(&common::demo_dir(), &root);
    {
        let store = SqliteStore::open(&root.join(".orket/orket.db"))
            .await
            .unwrap();
        let build = "build-hello_cli";
        store
            .upsert_build(BuildRecord::new(build, "epic", "hello_cli", "core"))
            .await
            .unwrap();
        for (id, name) in [
            ("DEMO-1", "Write hello.py"),
            ("DEMO-2", "Document"),
            ("DEMO-3", "Notes"),
            ("ISSUE-AB12", "Created by an agent"),
        ] {
            store
                .insert_issue(IssueRecord::new(build, id, name, "developer"))
                .await
                .unwrap();
        }
        for (status, actor) in [
            (Status::InProgress, "coder"),
            (Status::CodeReview, "coder"),
            (Status::Done, "integrity_guard"),
        ] {
            store
                .update_issue(build, "DEMO-1", IssueUpdate::by(actor).status(status))
                .await
                .unwrap();
        }
    }
    let board = board_json(&root, &[], None);
    let epic = &board["rocks"][0]["epics"][0];
    assert_eq!(epic["source"], "store");
    assert_eq!(epic["status"], "in_progress");
    assert_eq!(
        issue_statuses(epic),
        [
            ("DEMO-1".into(), "done".into()),
            ("DEMO-2".into(), "ready".into()),
            ("DEMO-3".into(), "ready".into()),
            ("ISSUE-AB12".into(), "ready".into())
        ]
    );
    assert_eq!(board["rocks"][0]["status"], "in_progress");

    // The same store named by ORKET_DB or --db from another root gives the same statuses.
    let db = root.join(".orket/orket.db");
    let other = dir.path().join("other");
    common::copy_project(&common::demo_dir(), &other);
    let via_env = board_json(&other, &[], Some(&db));
    assert_eq!(via_env["rocks"][0]["epics"][0]["source"], "store");
    let via_flag = board_json(&other, &["--db", db.to_str().unwrap()], None);
    assert_eq!(
        via_flag["rocks"][0]["epics"][0]["issues"][0]["status"],
        "done"
    );
    // Without them, the other root has no store: statuses come from its files.
    assert_eq!(
        board_json(&other, &[], None)["rocks"][0]["epics"][0]["source"],
        "files"
    );
}

/// Runs `orket board --root <root> <args>` without a store: (exit code, stdout, stderr).
fn board_output(root: &Path, args: &[&str]) -> (Option<i32>, String, String) {
    let out = Command::cargo_bin("orket")
        .unwrap()
        .env_remove("ORKET_DB")
        .args(["board", "--root"])
        .arg(root)
        .args(args)
        .output()
        .unwrap();
    (
        out.status.code(),
        String::from_utf8(out.stdout).unwrap(),
        String::from_utf8(out.stderr).unwrap(),
    )
}

#[test]
fn an_unknown_or_invalid_department_is_an_error() {
    let dir = tempfile::tempdir().unwrap();
    common::copy_project(&common::demo_dir(), dir.path());
    for json in [false, true] {
        let mut args = vec!["--department", "nowhere"];
        if json {
            args.push("--json");
        }
        let (code, stdout, stderr) = board_output(dir.path(), &args);
        assert_eq!(code, Some(1), "{stdout}");
        assert!(
            stderr
                .contains("error: department \"nowhere\" not found: model/nowhere/ does not exist"),
            "{stderr}"
        );
        assert!(!stdout.contains("No rocks or epics found"), "{stdout}");
    }
    let (code, stdout, stderr) = board_output(dir.path(), &["--department", "../../etc"]);
    assert_eq!(code, Some(1), "{stdout}");
    assert!(
        stderr.contains("error: invalid department name \"../../etc\""),
        "{stderr}"
    );
    assert!(stdout.is_empty(), "{stdout}");
}

#[test]
fn a_department_board_includes_core() {
    let dir = tempfile::tempdir().unwrap();
    common::copy_project(&common::demo_dir(), dir.path());
    let sales = dir.path().join("model/sales/epics");
    std::fs::create_dir_all(&sales).unwrap();
    let epic = std::fs::read_to_string(dir.path().join("model/core/epics/hello_cli.json"))
        .unwrap()
        .replace("Hello CLI", "Sales CLI");
    std::fs::write(sales.join("sales_cli.json"), epic).unwrap();
    let board = board_json(dir.path(), &["--department", "sales"], None);
    assert_eq!(board["rocks"][0]["id"], "demo_launch");
    assert_eq!(board["rocks"][0]["epics"][0]["id"], "hello_cli");
    let loose: Vec<(&str, &str)> = board["epics"]
        .as_array()
        .unwrap()
        .iter()
        .map(|e| (e["id"].as_str().unwrap(), e["department"].as_str().unwrap()))
        .collect();
    assert_eq!(loose, [("sales_cli", "sales")]);
    let (code, text, _) = board_output(dir.path(), &["--department", "sales"]);
    assert_eq!(code, Some(0));
    assert!(
        text.contains("Rock demo_launch — Demo launch [ready] (core)"),
        "{text}"
    );
    assert!(
        text.contains("Epic sales_cli — Sales CLI [ready] (sales"),
        "{text}"
    );
    // `core` itself is a department too.
    let core = board_json(dir.path(), &["--department", "core"], None);
    assert_eq!(core["rocks"][0]["id"], "demo_launch");
    assert!(core["epics"].as_array().unwrap().is_empty());
}

#[test]
fn a_broken_rock_is_shown_with_its_error() {
    let dir = tempfile::tempdir().unwrap();
    common::copy_project(&common::demo_dir(), dir.path());
    let rock = dir.path().join("model/core/rocks/demo_launch.json");
    let text = std::fs::read_to_string(&rock).unwrap().replace(
        "\"name\": \"Demo launch\",",
        "\"name\": \"Demo launch\", \"status\": \"bogus\",",
    );
    std::fs::write(&rock, text).unwrap();
    std::fs::write(
        dir.path().join("model/core/rocks/unreadable.json"),
        "{ not json",
    )
    .unwrap();

    let board = board_json(dir.path(), &[], None);
    let rocks = board["rocks"].as_array().unwrap();
    assert_eq!(rocks.len(), 2, "{board:#}");
    let broken = &rocks[0];
    assert_eq!(broken["id"], "demo_launch");
    let error = broken["error"].as_str().expect("the rock's error");
    assert!(
        error.contains("status") && error.contains("bogus"),
        "{error}"
    );
    // Its epics stay with it, not among the epics in no rock.
    assert_eq!(broken["epics"][0]["id"], "hello_cli");
    assert!(board["epics"].as_array().unwrap().is_empty(), "{board:#}");
    assert_eq!(rocks[1]["id"], "unreadable");
    assert!(rocks[1]["error"]
        .as_str()
        .unwrap()
        .contains("unreadable.json"));

    let (code, text, _) = board_output(dir.path(), &[]);
    assert_eq!(code, Some(0));
    assert!(
        text.contains("Rock demo_launch (core) cannot be loaded:"),
        "{text}"
    );
    assert!(
        text.lines()
            .any(|l| l.starts_with("    ") && l.contains("bogus")),
        "{text}"
    );
    assert!(
        text.contains("Rock unreadable (core) cannot be loaded:"),
        "{text}"
    );
    assert!(!text.contains("Epics in no rock"), "{text}");
    assert!(text.contains("Epic hello_cli — Hello CLI"), "{text}");
}
