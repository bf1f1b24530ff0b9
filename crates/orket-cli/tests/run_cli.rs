//! `orket run` / `orket resume` with recorded model turns, as a user runs them.

mod common;

use assert_cmd::Command;
use orket_store::{SqliteStore, Store};
use serde_json::json;
use std::time::{Duration, Instant};

fn orket() -> Command {
    let mut cmd = Command::cargo_bin("orket").unwrap();
    cmd.env_remove("ORKET_DB").env_remove("ORKET_PROVIDER");
    cmd
}

#[test]
fn run_completes_the_demo_and_prints_a_summary() {
    let (_dir, root, replay) = common::demo_with_replay();
    let out = orket()
        .args(["run", "hello_cli", "--provider", "replay", "--replay"])
        .arg(&replay)
        .arg("--root")
        .arg(&root)
        .output()
        .unwrap();
    let stdout = String::from_utf8(out.stdout).unwrap();
    assert_eq!(
        out.status.code(),
        Some(0),
        "{stdout}\n{}",
        String::from_utf8_lossy(&out.stderr)
    );
    assert!(
        stdout.contains("tick 1: [\"DEMO-1\",\"DEMO-3\"]"),
        "{stdout}"
    );
    assert!(stdout.contains("DEMO-1 -> code_review"), "{stdout}");
    assert!(
        stdout.contains(": completed — all 3 issues are done or canceled"),
        "{stdout}"
    );
    assert!(stdout.contains("turns: 6"), "{stdout}");
    assert!(root.join("workspace/hello_cli/hello.py").is_file());
}

#[test]
fn a_failing_fixture_is_shown_refuses_done_and_sends_the_issue_back() {
    let (_dir, root, replay) = common::demo_with_replay();
    // The developer's second attempt writes what the fixture expects; the reviewer says done
    // again.
    let mut lines = std::fs::read_to_string(&replay).unwrap();
    for (role, calls) in [
        (
            "coder",
            json!([
                {"tool": "write_file", "args": {"path": "hello.py", "content": "Hello, Orket!\n"}},
                {"tool": "update_issue_status", "args": {"status": "code_review"}}
            ]),
        ),
        (
            "integrity_guard",
            json!({"tool": "update_issue_status", "args": {"status": "done"}}),
        ),
    ] {
        lines.push('\n');
        lines.push_str(
            &json!({"issue_id": "DEMO-1", "role": role, "content": calls.to_string()}).to_string(),
        );
    }
    std::fs::write(&replay, lines).unwrap();
    let epic_file = root.join("model/core/epics/hello_cli.json");
    let mut epic: serde_json::Value =
        serde_json::from_str(&std::fs::read_to_string(&epic_file).unwrap()).unwrap();
    epic["issues"][0]["verification"] = json!({
        "fixture_path": "verification/test_hello.py",
        "scenarios": [{"id": "greets", "input_data": null, "expected_output": "Hello, Orket!"}]
    });
    std::fs::write(&epic_file, epic.to_string()).unwrap();
    // The review, not the draw of candidates, is to catch the failure.
    common::one_candidate(&root);
    let fixtures = root.join("workspace/hello_cli/verification");
    std::fs::create_dir_all(&fixtures).unwrap();
    std::fs::write(
        fixtures.join("test_hello.py"),
        "from pathlib import Path\ndef verify(_):\n    return (Path(__file__).resolve().parent.parent / 'hello.py').read_text().strip()\n",
    )
    .unwrap();
    let out = orket()
        .env("ORKET_VERIFY_MEM_MB", "300")
        .args(["run", "hello_cli", "--provider", "replay", "--replay"])
        .arg(&replay)
        .arg("--root")
        .arg(&root)
        .output()
        .unwrap();
    let stdout = String::from_utf8(out.stdout).unwrap();
    assert_eq!(out.status.code(), Some(0), "{stdout}");
    assert!(
        stdout.contains("DEMO-1 verification FAILED: 0/1 scenarios passed"),
        "{stdout}"
    );
    // The refused review sends DEMO-1 back; the fixed version passes and is done.
    let failed_at = stdout.find("DEMO-1 verification FAILED").unwrap_or(0);
    let back = stdout[failed_at..].find("DEMO-1 -> in_progress");
    let passed = stdout[failed_at..].find("DEMO-1 verification PASSED: 1/1 scenarios passed");
    assert!(
        matches!((back, passed), (Some(b), Some(p)) if b < p),
        "{stdout}"
    );
    assert!(
        stdout.contains("DEMO-1 done refused (VERIFICATION_FAILED): sent back to the developer"),
        "{stdout}"
    );
    let runtime = tokio::runtime::Runtime::new().unwrap();
    let issue = runtime.block_on(async {
        let store = SqliteStore::open(&root.join(".orket/orket.db"))
            .await
            .unwrap();
        store
            .get_issue("build-hello_cli", "DEMO-1")
            .await
            .unwrap()
            .unwrap()
    });
    assert_eq!(issue.status.to_string(), "done");
    let last_run = &issue.verification["last_run"];
    assert_eq!(
        last_run["isolation"]["limits"]["mem_mb"], 300,
        "{last_run:#}"
    );
    assert_eq!(
        (last_run["passed"].as_u64(), last_run["failed"].as_u64()),
        (Some(1), Some(0))
    );
}

#[test]
fn run_without_a_provider_or_with_an_unknown_target_is_a_clear_error() {
    let (_dir, root, replay) = common::demo_with_replay();
    let out = orket()
        .args(["run", "hello_cli", "--root"])
        .arg(&root)
        .output()
        .unwrap();
    assert_eq!(out.status.code(), Some(1));
    assert!(String::from_utf8_lossy(&out.stderr)
        .contains("error: no model provider: pass --provider ollama|openai, or --provider replay --replay FILE"));
    let out = orket()
        .args(["run", "nothing_here", "--provider", "replay", "--replay"])
        .arg(&replay)
        .arg("--root")
        .arg(&root)
        .output()
        .unwrap();
    assert_eq!(out.status.code(), Some(1));
    let stderr = String::from_utf8_lossy(&out.stderr);
    assert!(stderr.contains("\"nothing_here\" is no epic, rock or issue of department \"core\" (epics: hello_cli; rocks: demo_launch)"), "{stderr}");
}

#[tokio::test(flavor = "multi_thread")]
async fn a_killed_run_resumes_without_losing_or_repeating_a_turn() {
    let (_dir, root, replay) = common::demo_with_replay();
    let bin = assert_cmd::cargo::cargo_bin("orket");
    let mut child = std::process::Command::new(&bin)
        .args([
            "run",
            "hello_cli",
            "--concurrency",
            "1",
            "--replay-delay-ms",
            "400",
            "--provider",
            "replay",
            "--replay",
        ])
        .arg(&replay)
        .arg("--root")
        .arg(&root)
        .env_remove("ORKET_DB")
        .stdout(std::process::Stdio::null())
        .spawn()
        .unwrap();

    // Wait for two committed turns, then kill the process in the middle of the run.
    let db = root.join(".orket/orket.db");
    let deadline = Instant::now() + Duration::from_secs(60);
    let run_id = loop {
        assert!(
            Instant::now() < deadline,
            "the run never committed two turns"
        );
        tokio::time::sleep(Duration::from_millis(50)).await;
        if !db.exists() {
            continue;
        }
        let store = SqliteStore::open(&db).await.unwrap();
        if let Some(run) = store.list_runs(1).await.unwrap().into_iter().next() {
            if store.list_turns(&run.id).await.unwrap().len() >= 2 {
                break run.id;
            }
        }
    };
    // While it runs, another process can neither run its build nor resume its run: both are
    // refused naming who holds the build, and change nothing.
    let holder = format!(
        "build build-hello_cli is being run by run {run_id} (process {} on ",
        child.id()
    );
    for args in [vec!["run", "hello_cli"], vec!["resume", run_id.as_str()]] {
        let out = orket()
            .args(&args)
            .args(["--provider", "replay", "--replay"])
            .arg(&replay)
            .arg("--root")
            .arg(&root)
            .output()
            .unwrap();
        let stderr = String::from_utf8_lossy(&out.stderr);
        assert_eq!(out.status.code(), Some(1), "{args:?}: {stderr}");
        assert!(stderr.contains(&holder), "{args:?}: {stderr}");
    }
    let store = SqliteStore::open(&db).await.unwrap();
    assert_eq!(store.list_runs(10).await.unwrap().len(), 1, "no second run");

    child.kill().unwrap();
    child.wait().unwrap();

    let run = store.get_run(&run_id).await.unwrap().unwrap();
    assert_eq!(
        run.status,
        orket_core::RunStatus::Running,
        "a killed run stays running"
    );
    let before = store.list_turns(&run_id).await.unwrap().len();
    assert!((2..6).contains(&before), "{before}");

    let out = orket()
        .args(["resume", &run_id, "--provider", "replay", "--replay"])
        .arg(&replay)
        .arg("--root")
        .arg(&root)
        .output()
        .unwrap();
    let stdout = String::from_utf8(out.stdout).unwrap();
    assert_eq!(
        out.status.code(),
        Some(0),
        "{stdout}\n{}",
        String::from_utf8_lossy(&out.stderr)
    );
    assert!(
        stdout.contains(&format!("run {run_id}: completed")),
        "{stdout}"
    );

    let turns = store.list_turns(&run_id).await.unwrap();
    common::assert_every_turn_once(&turns);
    assert!(turns.iter().all(|t| t.turn.status == "complete"));
    for file in ["hello.py", "README.md", "NOTES.md"] {
        assert!(
            root.join("workspace/hello_cli").join(file).is_file(),
            "{file}"
        );
    }
    assert_eq!(
        store.get_run(&run_id).await.unwrap().unwrap().status,
        orket_core::RunStatus::Completed
    );
    // The killed process's lease was taken over at once (its process is gone), and given back
    // at the end.
    let events = store.list_events(Some(&run_id), 0, 1000).await.unwrap();
    let takeover = events.iter().find_map(|e| match &e.event {
        orket_core::Event::BuildTakenOver { from_run, pid, .. } => Some((from_run, *pid)),
        _ => None,
    });
    assert_eq!(
        takeover,
        Some((&run_id, child.id())),
        "the resume records taking the build over"
    );
    assert!(store.get_lease("build-hello_cli").await.unwrap().is_none());
}

#[test]
fn an_unreachable_ollama_is_retried_then_fails_the_issue_with_a_clear_reason() {
    let (_dir, root, _replay) = common::demo_with_replay();
    // A port nobody listens on.
    let port = std::net::TcpListener::bind("127.0.0.1:0")
        .unwrap()
        .local_addr()
        .unwrap()
        .port();
    let out = orket()
        .args(["run", "DEMO-1", "--provider", "ollama", "--root"])
        .arg(&root)
        .env("OLLAMA_HOST", format!("127.0.0.1:{port}"))
        .output()
        .unwrap();
    let stdout = String::from_utf8(out.stdout).unwrap();
    assert_eq!(out.status.code(), Some(1), "{stdout}");
    assert!(stdout.contains("model_connection_retry"), "{stdout}");
    assert!(
        stdout.contains(&format!("Ollama at http://127.0.0.1:{port} not reachable")),
        "{stdout}"
    );
    assert!(
        // The demo's issues allow one retry (max_retries 1).
        stdout.contains(": failed — DEMO-1 failed 2 times (catastrophic)"),
        "{stdout}"
    );
}

#[test]
fn record_writes_a_replay_file_that_replays_the_run() {
    let (dir, root, replay) = common::demo_with_replay();
    let recorded = dir.path().join("recorded.jsonl");
    let out = orket()
        .args(["run", "hello_cli", "--provider", "replay", "--replay"])
        .arg(&replay)
        .arg("--record")
        .arg(&recorded)
        .arg("--root")
        .arg(&root)
        .output()
        .unwrap();
    assert_eq!(
        out.status.code(),
        Some(0),
        "{}\n{}",
        String::from_utf8_lossy(&out.stdout),
        String::from_utf8_lossy(&out.stderr)
    );
    let lines: Vec<serde_json::Value> = std::fs::read_to_string(&recorded)
        .unwrap()
        .lines()
        .map(|l| serde_json::from_str(l).unwrap())
        .collect();
    assert_eq!(lines.len(), 6);
    // The recording drives a fresh run to the same end.
    let out = orket()
        .args([
            "run",
            "hello_cli",
            "--reset",
            "--provider",
            "replay",
            "--replay",
        ])
        .arg(&recorded)
        .arg("--root")
        .arg(&root)
        .output()
        .unwrap();
    assert_eq!(
        out.status.code(),
        Some(0),
        "{}",
        String::from_utf8_lossy(&out.stdout)
    );
}

#[tokio::test(flavor = "multi_thread")]
async fn orket_halt_stops_a_run_that_another_process_executes() {
    let (_dir, root, replay) = common::demo_with_replay();
    let bin = assert_cmd::cargo::cargo_bin("orket");
    let child = std::process::Command::new(&bin)
        .args([
            "run",
            "hello_cli",
            "--concurrency",
            "1",
            "--replay-delay-ms",
            "300",
            "--provider",
            "replay",
            "--replay",
        ])
        .arg(&replay)
        .arg("--root")
        .arg(&root)
        .env_remove("ORKET_DB")
        .stdout(std::process::Stdio::piped())
        .stderr(std::process::Stdio::piped())
        .spawn()
        .unwrap();

    // Once the other process has committed a turn, halt its run from here.
    let db = root.join(".orket/orket.db");
    let deadline = Instant::now() + Duration::from_secs(60);
    let run_id = loop {
        assert!(Instant::now() < deadline, "the run never committed a turn");
        tokio::time::sleep(Duration::from_millis(50)).await;
        if !db.exists() {
            continue;
        }
        let store = SqliteStore::open(&db).await.unwrap();
        if let Some(run) = store.list_runs(1).await.unwrap().into_iter().next() {
            if !store.list_turns(&run.id).await.unwrap().is_empty() {
                break run.id;
            }
        }
    };
    let out = orket()
        .args(["halt", &run_id, "--root"])
        .arg(&root)
        .output()
        .unwrap();
    let said = String::from_utf8_lossy(&out.stdout).to_string();
    assert_eq!(out.status.code(), Some(0), "{said}");
    assert!(
        said.contains(&format!("halt requested for run {run_id}")),
        "{said}"
    );

    // The other process ends the run canceled at a turn boundary, with exit 1.
    let finished = child.wait_with_output().unwrap();
    let stdout = String::from_utf8_lossy(&finished.stdout);
    assert_eq!(finished.status.code(), Some(1), "{stdout}");
    assert!(
        stdout.contains(&format!("run {run_id}: canceled — halted by a person")),
        "{stdout}"
    );
    let store = SqliteStore::open(&db).await.unwrap();
    let run = store.get_run(&run_id).await.unwrap().unwrap();
    assert_eq!(run.status, orket_core::RunStatus::Canceled);
    assert!(run.halt_requested_at.is_some());
    let turns = store.list_turns(&run_id).await.unwrap().len();
    assert!(turns < 6, "the run stopped before its end ({turns} turns)");
    let events = store.list_events(Some(&run_id), 0, 1000).await.unwrap();
    assert!(events.iter().any(|e| e.event == "halt_requested"));

    // A run that ended cannot be halted again; an unknown one is not found.
    let again = orket()
        .args(["halt", &run_id, "--root"])
        .arg(&root)
        .output()
        .unwrap();
    assert_eq!(again.status.code(), Some(1));
    assert!(
        String::from_utf8_lossy(&again.stderr).contains("already ended (canceled)"),
        "{}",
        String::from_utf8_lossy(&again.stderr)
    );
    let unknown = orket()
        .args(["halt", "deadbeef", "--root"])
        .arg(&root)
        .output()
        .unwrap();
    assert_eq!(unknown.status.code(), Some(1));
    assert!(String::from_utf8_lossy(&unknown.stderr).contains("run deadbeef not found"));
}
