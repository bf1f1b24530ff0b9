//! `orket approval list|approve|reject`: a person decides parked tool calls from the command
//! line, with what they see (lines, exit codes, files written, issue statuses).

mod common;

use assert_cmd::Command;
use orket_store::{SqliteStore, Store};
use serde_json::{json, Value};
use std::path::{Path, PathBuf};

fn orket(root: &Path) -> Command {
    let mut cmd = Command::cargo_bin("orket").unwrap();
    cmd.env_remove("ORKET_DB")
        .env_remove("ORKET_PROVIDER")
        .arg("--root")
        .arg(root);
    cmd
}

/// Runs `orket` with `args`: (exit code, stdout, stderr).
fn run(root: &Path, args: &[&str]) -> (i32, String, String) {
    let out = orket(root).args(args).output().unwrap();
    (
        out.status.code().unwrap_or(-1),
        String::from_utf8_lossy(&out.stdout).to_string(),
        String::from_utf8_lossy(&out.stderr).to_string(),
    )
}

/// A demo copy whose organization parks every `write_file`, run once with the recorded demo
/// replies: DEMO-1 and DEMO-3 wait for a person, the run stalls.
fn parked_project() -> (tempfile::TempDir, PathBuf) {
    let dir = tempfile::tempdir().unwrap();
    let root = dir.path().join("project");
    common::copy_project(&common::demo_dir(), &root);
    let org_path = root.join("config/organization.json");
    let mut org: Value =
        serde_json::from_str(&std::fs::read_to_string(&org_path).unwrap()).unwrap();
    org["process_rules"]["approval_required"] = json!(["write_file"]);
    std::fs::write(&org_path, org.to_string()).unwrap();
    let replay = common::demo_dir().join("replay/hello_cli.jsonl");
    let (code, stdout, stderr) = run(
        &root,
        &[
            "run",
            "hello_cli",
            "--provider",
            "replay",
            "--replay",
            replay.to_str().unwrap(),
        ],
    );
    assert_eq!(
        code, 1,
        "the run stalls on the parked calls:\n{stdout}\n{stderr}"
    );
    assert!(stdout.contains("stalled"), "{stdout}");
    (dir, root)
}

async fn status(root: &Path, issue: &str) -> String {
    let store = SqliteStore::open(&root.join(".orket/orket.db"))
        .await
        .unwrap();
    let issue = store
        .get_issue("build-hello_cli", issue)
        .await
        .unwrap()
        .unwrap();
    issue.status.as_str().to_string()
}

/// The approval id of `issue`'s parked call, from `orket approval list --json`.
fn approval_of(root: &Path, issue: &str) -> i64 {
    let (code, stdout, stderr) = run(root, &["approval", "list", "--json"]);
    assert_eq!(code, 0, "{stderr}");
    let all: Value = serde_json::from_str(&stdout).unwrap();
    all.as_array()
        .unwrap()
        .iter()
        .find(|a| a["issue_id"] == issue)
        .and_then(|a| a["id"].as_i64())
        .unwrap_or_else(|| panic!("no approval for {issue}: {stdout}"))
}

#[tokio::test(flavor = "multi_thread")]
async fn parked_calls_are_listed_approved_and_rejected_from_the_command_line() {
    let (_dir, root) = parked_project();
    let workspace = root.join("workspace/hello_cli");

    let (code, stdout, _) = run(&root, &["approval", "list"]);
    assert_eq!(code, 0);
    let pending: Vec<&str> = stdout.lines().filter(|l| l.contains("pending")).collect();
    assert_eq!(pending.len(), 2, "{stdout}");
    assert!(
        pending
            .iter()
            .any(|l| l.contains("DEMO-1") && l.contains("write_file")),
        "{stdout}"
    );
    assert!(pending.iter().any(|l| l.contains("DEMO-3")), "{stdout}");
    assert_eq!(status(&root, "DEMO-1").await, "waiting_for_developer");
    assert!(!workspace.join("hello.py").exists());

    // Approve: the parked write runs, the issue goes back in progress.
    let first = approval_of(&root, "DEMO-1");
    let (code, stdout, stderr) = run(&root, &["approval", "approve", &first.to_string()]);
    assert_eq!(code, 0, "{stdout}\n{stderr}");
    assert!(
        stdout.contains(&format!(
            "approval {first}: approved — write_file ran for DEMO-1"
        )),
        "{stdout}"
    );
    assert!(
        stdout.contains("continue the build with `orket run hello_cli`"),
        "{stdout}"
    );
    assert!(std::fs::read_to_string(workspace.join("hello.py"))
        .unwrap()
        .contains("Hello"));
    assert_eq!(status(&root, "DEMO-1").await, "in_progress");

    // A second decision on it is refused, naming the approval.
    let (code, _, stderr) = run(&root, &["approval", "approve", &first.to_string()]);
    assert_eq!(code, 1);
    assert!(
        stderr.contains(&format!("approval {first} is already approved")),
        "{stderr}"
    );
    assert_eq!(
        stderr.matches("already approved").count(),
        1,
        "said once: {stderr}"
    );

    // Reject: the reason becomes a comment, the issue goes back to ready, nothing is written.
    let second = approval_of(&root, "DEMO-3");
    let (code, stdout, stderr) = run(
        &root,
        &[
            "approval",
            "reject",
            &second.to_string(),
            "--reason",
            "write NOTES.md instead",
        ],
    );
    assert_eq!(code, 0, "{stdout}\n{stderr}");
    assert!(
        stdout.contains("DEMO-3 goes back to ready with the comment \"write NOTES.md instead\""),
        "{stdout}"
    );
    assert_eq!(status(&root, "DEMO-3").await, "ready");
    let store = SqliteStore::open(&root.join(".orket/orket.db"))
        .await
        .unwrap();
    let comments = store
        .list_comments("build-hello_cli", "DEMO-3")
        .await
        .unwrap();
    assert!(
        comments
            .iter()
            .any(|c| c.content.contains("write NOTES.md instead")),
        "{comments:?}"
    );

    let (_, stdout, _) = run(&root, &["approval", "list"]);
    assert!(!stdout.contains("pending"), "{stdout}");
    assert!(
        stdout.contains("approved") && stdout.contains("rejected"),
        "{stdout}"
    );

    let (code, _, stderr) = run(&root, &["approval", "approve", "999"]);
    assert_eq!(code, 1);
    assert!(stderr.contains("approval 999 not found"), "{stderr}");
}

#[test]
fn without_a_store_there_is_nothing_to_approve() {
    let dir = tempfile::tempdir().unwrap();
    let root = dir.path().join("project");
    common::copy_project(&common::demo_dir(), &root);
    let (code, _, stderr) = run(&root, &["approval", "list"]);
    assert_eq!(code, 1);
    assert!(stderr.contains("no store at"), "{stderr}");
    assert!(
        !root.join(".orket").exists(),
        "listing never creates the store"
    );
}
