//! `orket runs` and `orket show`: what a person sees of the runs a store holds.

use assert_cmd::Command;
use orket_core::Event;
use orket_core::{RunKind, RunStatus};
use orket_store::{Change, NewEvent, NewTurn, RunRecord, RunUpdate, SqliteStore, Store};
use serde_json::{json, Value};
use std::path::Path;

/// The default store of a project root.
fn default_db(root: &Path) -> std::path::PathBuf {
    root.join(".orket").join("orket.db")
}

/// `orket <args> --root <root>` with `$ORKET_DB` cleared (or set to `env_db`).
fn orket(root: &Path, args: &[&str], env_db: Option<&Path>) -> (i32, String, String) {
    let mut cmd = Command::cargo_bin("orket").unwrap();
    cmd.env_remove("ORKET_DB");
    if let Some(db) = env_db {
        cmd.env("ORKET_DB", db);
    }
    let out = cmd.args(args).arg("--root").arg(root).output().unwrap();
    (
        out.status.code().unwrap_or(-1),
        String::from_utf8(out.stdout).unwrap(),
        String::from_utf8(out.stderr).unwrap(),
    )
}

fn run_record(id: &str, kind: RunKind, target: &str, started_at: &str) -> RunRecord {
    let mut run = RunRecord::new(
        id,
        kind,
        target,
        format!("build-{target}"),
        "core",
        format!("/tmp/ws/{target}"),
    );
    run.started_at = started_at.to_string();
    run.updated_at = started_at.to_string();
    run
}

#[allow(clippy::too_many_arguments)]
fn turn(
    run_id: &str,
    seq: i64,
    issue: &str,
    seat_role: (&str, &str),
    review: bool,
    calls: Value,
    results: Value,
    started_at: &str,
) -> NewTurn {
    NewTurn {
        run_id: run_id.to_string(),
        seq,
        build_id: "build-hello_cli".to_string(),
        issue_id: issue.to_string(),
        seat: seat_role.0.to_string(),
        role: seat_role.1.to_string(),
        model: "qwen2.5-coder:7b".to_string(),
        review,
        messages: json!([{"role": "system", "content": "You are a developer."}]),
        content: "(reply)".to_string(),
        tool_calls: serde_json::from_value(calls).unwrap(),
        tool_results: serde_json::from_value(results).unwrap(),
        tokens_in: 1000 + seq,
        tokens_out: 100 + seq,
        status: "complete".to_string(),
        error: None,
        started_at: started_at.to_string(),
        ended_at: started_at.replace(".000Z", ".900Z"),
        steps: Vec::new(),
        candidates: Vec::new(),
        settings: None,
    }
}

fn event(run_id: &str, name: &str, issue: Option<&str>, data: Value, timestamp: &str) -> NewEvent {
    let mut event = NewEvent::new(Some(run_id), Event::from_parts(name, data).unwrap());
    event.issue_id = issue.map(str::to_string);
    event.timestamp = Some(timestamp.to_string());
    event
}

/// A long reason with multi-byte characters around where the table cuts it.
fn long_reason() -> String {
    format!(
        "stalled: {} blocked on a dependency that never came",
        "DEMO-2 → DEMO-3 ✓ ".repeat(5)
    )
}

/// Three runs: an epic run that completed (3 turns), a rock run that stalled (1 turn) and an
/// issue run still going (no turns), started in that order; plus another run's turn and events.
async fn seed(db: &Path) {
    let store = SqliteStore::open(db).await.unwrap();

    let mut done = run_record(
        "aaaa0001",
        RunKind::Epic,
        "hello_cli",
        "2026-11-22T04:16:00.000Z",
    );
    done.status = RunStatus::Completed;
    done.reason = Some("every issue is done".to_string());
    done.ended_at = Some("2026-11-22T04:19:05.000Z".to_string());
    store.create_run(done).await.unwrap();

    store
        .create_run(run_record(
            "bbbb0002",
            RunKind::Rock,
            "demo_launch",
            "2026-11-22T05:00:00.000Z",
        ))
        .await
        .unwrap();
    store
        .update_run(
            "bbbb0002",
            RunUpdate::finish(RunStatus::Stalled, long_reason()),
        )
        .await
        .unwrap();

    store
        .create_run(run_record(
            "cccc0003",
            RunKind::Issue,
            "DEMO-3",
            "2026-11-22T06:00:00.000Z",
        ))
        .await
        .unwrap();

    let r = "aaaa0001";
    let dev = ("coder", "developer");
    let rev = ("lead", "code_reviewer");
    // Appended out of order: `show` must print them by seq.
    store
        .append_turn(turn(
            r,
            3,
            "DEMO-1",
            rev,
            true,
            json!([{"name": "update_issue_status", "args": {"status": "done"}}]),
            json!([{"ok": true}]),
            "2026-11-22T04:18:00.000Z",
        ))
        .await
        .unwrap();
    store
        .append_turn(turn(
            r,
            1,
            "DEMO-1",
            dev,
            false,
            json!([
                {"name": "write_file", "args": {"path": "hello.py", "content": "print('hi')"}},
                {"name": "update_issue_status", "args": {"status": "done"}}
            ]),
            json!([
                {"ok": true, "path": "hello.py"},
                {"ok": false, "error": "ILLEGAL_TRANSITION: in_progress → done is not allowed"}
            ]),
            "2026-11-22T04:16:10.000Z",
        ))
        .await
        .unwrap();
    store
        .append_turn(turn(
            r,
            2,
            "DEMO-1",
            dev,
            false,
            json!([{"name": "update_issue_status", "args": {"status": "code_review"}}]),
            json!([{"ok": true}]),
            "2026-11-22T04:17:00.000Z",
        ))
        .await
        .unwrap();
    store
        .append_turn(turn(
            "bbbb0002",
            1,
            "DEMO-2",
            dev,
            false,
            json!([]),
            json!([]),
            "2026-11-22T05:00:10.000Z",
        ))
        .await
        .unwrap();

    let events = [
        event(
            r,
            "session_start",
            None,
            json!({"epic": "hello_cli", "workspace": "/ws", "provider": "replay"}),
            "2026-11-22T04:16:00.000Z",
        ),
        event(
            r,
            "turn_start",
            Some("DEMO-1"),
            json!({"seq": 1, "seat": "coder"}),
            "2026-11-22T04:16:10.000Z",
        ),
        event(
            r,
            "turn_complete",
            Some("DEMO-1"),
            json!({"seq": 1, "calls": 2, "tokens_in": 1001, "tokens_out": 101}),
            "2026-11-22T04:16:11.000Z",
        ),
        event(
            r,
            "status_change",
            Some("DEMO-1"),
            json!({"from": "in_progress", "to": "code_review"}),
            "2026-11-22T04:17:01.000Z",
        ),
        event(
            r,
            "status_change",
            Some("DEMO-1"),
            json!({"from": "code_review", "to": "done"}),
            "2026-11-22T04:18:01.000Z",
        ),
        event(
            r,
            "session_end",
            None,
            json!({"status": "completed", "reason": "all 3 issues are done or canceled", "turns": 3}),
            "2026-11-22T04:19:05.000Z",
        ),
        event(
            "bbbb0002",
            "catastrophic_failure",
            Some("DEMO-2"),
            json!({"retries": 4, "error": "model timed out"}),
            "2026-11-22T05:00:11.000Z",
        ),
    ];
    for e in events {
        store.apply(vec![Change::AppendEvent(e)]).await.unwrap();
    }
}

/// Index of the first line containing `needle`, failing with the whole output otherwise.
fn line_of(text: &str, needle: &str) -> usize {
    text.lines()
        .position(|l| l.contains(needle))
        .unwrap_or_else(|| panic!("no line contains {needle:?} in:\n{text}"))
}

#[tokio::test(flavor = "multi_thread")]
async fn runs_lists_runs_newest_first_with_status_duration_turns_and_reason() {
    let dir = tempfile::tempdir().unwrap();
    seed(&default_db(dir.path())).await;

    let (code, out, err) = orket(dir.path(), &["runs"], None);
    assert_eq!(code, 0, "{err}");
    let lines: Vec<&str> = out.lines().collect();
    assert_eq!(lines.len(), 4, "{out}");
    let header: Vec<&str> = lines[0].split_whitespace().collect();
    assert_eq!(
        header,
        ["ID", "KIND", "TARGET", "STATUS", "STARTED", "DURATION", "TURNS", "REASON"]
    );

    let running: Vec<&str> = lines[1].split_whitespace().collect();
    assert_eq!(
        running,
        [
            "cccc0003",
            "issue",
            "DEMO-3",
            "running",
            "2026-11-22",
            "06:00:00",
            "running",
            "0"
        ],
        "{out}"
    );

    let stalled = lines[2];
    let cells: Vec<&str> = stalled.split_whitespace().collect();
    assert_eq!(
        &cells[..4],
        ["bbbb0002", "rock", "demo_launch", "stalled"],
        "{out}"
    );
    assert_eq!(&cells[4..6], ["2026-11-22", "05:00:00"], "{out}");
    assert_ne!(cells[6], "running", "a finished run has a duration: {out}");
    assert_eq!(cells[7], "1", "{out}");
    let reason = &stalled[stalled.find("stalled: ").unwrap()..];
    assert_eq!(reason.chars().count(), 60, "{out}");
    assert!(reason.ends_with('…'), "{out}");
    assert!(long_reason().starts_with(reason.trim_end_matches('…')));

    let done: Vec<&str> = lines[3].split_whitespace().collect();
    assert_eq!(
        done,
        [
            "aaaa0001",
            "epic",
            "hello_cli",
            "completed",
            "2026-11-22",
            "04:16:00",
            "3m05s",
            "3",
            "every",
            "issue",
            "is",
            "done"
        ],
        "{out}"
    );

    let (code, out, _) = orket(dir.path(), &["runs", "--limit", "1"], None);
    assert_eq!(code, 0);
    assert_eq!(out.lines().count(), 2, "{out}");
    assert!(out.lines().nth(1).unwrap().starts_with("cccc0003"), "{out}");

    let (code, _, err) = orket(dir.path(), &["runs", "--limit", "0"], None);
    assert_eq!(code, 2, "a limit below 1 is a usage error");
    assert!(err.contains("--limit"), "{err}");
}

#[tokio::test(flavor = "multi_thread")]
async fn runs_json_is_an_array_of_run_records_with_turn_counts() {
    let dir = tempfile::tempdir().unwrap();
    seed(&default_db(dir.path())).await;

    let (code, out, err) = orket(dir.path(), &["runs", "--json"], None);
    assert_eq!(code, 0, "{err}");
    let runs: Value = serde_json::from_str(&out).unwrap();
    let runs = runs.as_array().unwrap();
    let summary: Vec<(&str, &str, &str, u64)> = runs
        .iter()
        .map(|r| {
            (
                r["id"].as_str().unwrap(),
                r["kind"].as_str().unwrap(),
                r["status"].as_str().unwrap(),
                r["turns"].as_u64().unwrap(),
            )
        })
        .collect();
    assert_eq!(
        summary,
        [
            ("cccc0003", "issue", "running", 0),
            ("bbbb0002", "rock", "stalled", 1),
            ("aaaa0001", "epic", "completed", 3),
        ]
    );
    let done = &runs[2];
    assert_eq!(done["target"], "hello_cli");
    assert_eq!(done["build_id"], "build-hello_cli");
    assert_eq!(done["workspace"], "/tmp/ws/hello_cli");
    assert_eq!(done["reason"], "every issue is done");
    assert_eq!(done["started_at"], "2026-11-22T04:16:00.000Z");
    assert_eq!(done["ended_at"], "2026-11-22T04:19:05.000Z");
    assert_eq!(
        runs[1]["reason"],
        long_reason(),
        "JSON keeps the whole reason"
    );
    assert!(runs[0]["ended_at"].is_null());
}

#[test]
fn without_a_store_runs_says_so_show_fails_and_neither_creates_it() {
    let dir = tempfile::tempdir().unwrap();
    let db = default_db(dir.path());

    let (code, out, err) = orket(dir.path(), &["runs"], None);
    assert_eq!(code, 0, "{err}");
    assert_eq!(
        out,
        format!("No runs yet (no store at {}).\n", db.display())
    );

    let (code, out, _) = orket(dir.path(), &["runs", "--json"], None);
    assert_eq!(code, 0);
    assert_eq!(serde_json::from_str::<Value>(&out).unwrap(), json!([]));

    let (code, out, err) = orket(dir.path(), &["show", "aaaa0001"], None);
    assert_eq!(code, 1);
    assert_eq!(out, "");
    assert_eq!(
        err,
        format!(
            "error: run aaaa0001 not found (no store at {})\n",
            db.display()
        )
    );

    assert!(!db.exists(), "a read-only command created the store");
    assert!(!dir.path().join(".orket").exists());
}

#[tokio::test(flavor = "multi_thread")]
async fn runs_on_an_empty_store_says_no_runs_yet() {
    let dir = tempfile::tempdir().unwrap();
    let db = default_db(dir.path());
    SqliteStore::open(&db).await.unwrap();
    let (code, out, err) = orket(dir.path(), &["runs"], None);
    assert_eq!(code, 0, "{err}");
    assert_eq!(out, "No runs yet.\n");
}

#[tokio::test(flavor = "multi_thread")]
async fn show_prints_the_header_then_turns_by_seq_with_tool_results_and_events() {
    let dir = tempfile::tempdir().unwrap();
    seed(&default_db(dir.path())).await;

    let (code, out, err) = orket(dir.path(), &["show", "aaaa0001"], None);
    assert_eq!(code, 0, "{err}");

    // Header.
    for expected in [
        "Run aaaa0001 — epic hello_cli [completed]",
        "  reason:    every issue is done",
        "  build:     build-hello_cli (core)",
        "  workspace: /tmp/ws/hello_cli",
        "  started:   2026-11-22 04:16:00",
        "  ended:     2026-11-22 04:19:05 (3m05s)",
        "  turns:     3, tokens 3006 in / 306 out",
    ] {
        assert!(
            out.lines().any(|l| l == expected),
            "{expected:?} in:\n{out}"
        );
    }

    // The timeline, in time order; turn_start / turn_complete are folded into the turn lines.
    let timeline: Vec<&str> = out.lines().skip_while(|l| !l.is_empty()).skip(1).collect();
    assert_eq!(
        timeline,
        [
            "  event session_start - {\"epic\":\"hello_cli\",\"target\":null,\"workspace\":\"/ws\",\"provider\":\"replay\"}",
            "#1 DEMO-1 coder/developer qwen2.5-coder:7b complete 1001 in / 101 out",
            "    write_file {\"path\":\"hello.py\",\"content\":\"print('hi')\"} → ok",
            "    update_issue_status {\"status\":\"done\"} → error: ILLEGAL_TRANSITION: in_progress → done is not allowed",
            "#2 DEMO-1 coder/developer qwen2.5-coder:7b complete 1002 in / 102 out",
            "    update_issue_status {\"status\":\"code_review\"} → ok",
            "  event status_change DEMO-1 {\"from\":\"in_progress\",\"to\":\"code_review\",\"wait_reason\":null}",
            "#3 DEMO-1 lead/code_reviewer qwen2.5-coder:7b review complete 1003 in / 103 out",
            "    update_issue_status {\"status\":\"done\"} → ok",
            "  event status_change DEMO-1 {\"from\":\"code_review\",\"to\":\"done\",\"wait_reason\":null}",
            "  event session_end - {\"status\":\"completed\",\"reason\":\"all 3 issues are done or canceled\",\"turns\":3}",
        ],
        "{out}"
    );
    assert!(!out.contains("turn_start") && !out.contains("turn_complete"));
    assert!(
        !out.contains("catastrophic_failure"),
        "another run's event leaked in:\n{out}"
    );

    // A run whose only turn called no tool.
    let (code, out, err) = orket(dir.path(), &["show", "bbbb0002"], None);
    assert_eq!(code, 0, "{err}");
    let first = line_of(&out, "#1 DEMO-2 coder/developer");
    assert_eq!(
        out.lines().nth(first + 1),
        Some("    no tool calls; reply: (reply)")
    );
    assert!(
        first < line_of(&out, "  event catastrophic_failure DEMO-2"),
        "{out}"
    );
    assert!(
        out.contains("Run bbbb0002 — rock demo_launch [stalled]"),
        "{out}"
    );
}

#[tokio::test(flavor = "multi_thread")]
async fn show_json_has_the_run_its_turns_by_seq_and_all_its_events() {
    let dir = tempfile::tempdir().unwrap();
    seed(&default_db(dir.path())).await;

    let (code, out, err) = orket(dir.path(), &["show", "aaaa0001", "--json"], None);
    assert_eq!(code, 0, "{err}");
    let doc: Value = serde_json::from_str(&out).unwrap();
    assert_eq!(doc["run"]["id"], "aaaa0001");
    assert_eq!(doc["run"]["status"], "completed");
    let seqs: Vec<i64> = doc["turns"]
        .as_array()
        .unwrap()
        .iter()
        .map(|t| t["seq"].as_i64().unwrap())
        .collect();
    assert_eq!(seqs, [1, 2, 3]);
    assert_eq!(
        doc["turns"][0]["tool_results"][1]["error"],
        "ILLEGAL_TRANSITION: in_progress → done is not allowed"
    );
    assert_eq!(doc["turns"][2]["review"], true);
    let names: Vec<&str> = doc["events"]
        .as_array()
        .unwrap()
        .iter()
        .map(|e| e["event"].as_str().unwrap())
        .collect();
    assert_eq!(
        names,
        [
            "session_start",
            "turn_start",
            "turn_complete",
            "status_change",
            "status_change",
            "session_end"
        ],
        "the JSON keeps every event of the run, and only those"
    );
}

#[tokio::test(flavor = "multi_thread")]
async fn show_of_an_unknown_run_fails_with_exit_1() {
    let dir = tempfile::tempdir().unwrap();
    seed(&default_db(dir.path())).await;
    for args in [
        &["show", "ffff9999"][..],
        &["show", "ffff9999", "--json"][..],
    ] {
        let (code, out, err) = orket(dir.path(), args, None);
        assert_eq!(code, 1, "{args:?}");
        assert_eq!(out, "", "{args:?}");
        assert_eq!(err, "error: run ffff9999 not found\n", "{args:?}");
    }
}

#[tokio::test(flavor = "multi_thread")]
async fn db_flag_and_orket_db_select_the_store() {
    let dir = tempfile::tempdir().unwrap();
    let root = dir.path().join("project");
    std::fs::create_dir_all(&root).unwrap();
    let elsewhere = dir.path().join("elsewhere.db");
    seed(&elsewhere).await;
    let missing = dir.path().join("missing.db");

    // Neither: the root's default store, which does not exist.
    let (code, out, _) = orket(&root, &["runs"], None);
    assert_eq!(code, 0);
    assert_eq!(
        out,
        format!(
            "No runs yet (no store at {}).\n",
            default_db(&root).display()
        )
    );

    // --db.
    let db = elsewhere.to_str().unwrap();
    let (code, out, err) = orket(&root, &["runs", "--db", db], None);
    assert_eq!(code, 0, "{err}");
    assert!(out.lines().nth(1).unwrap().starts_with("cccc0003"), "{out}");
    let (code, out, err) = orket(&root, &["show", "aaaa0001", "--db", db], None);
    assert_eq!(code, 0, "{err}");
    assert!(
        out.starts_with("Run aaaa0001 — epic hello_cli [completed]"),
        "{out}"
    );

    // $ORKET_DB.
    let (code, out, err) = orket(&root, &["runs"], Some(&elsewhere));
    assert_eq!(code, 0, "{err}");
    assert_eq!(out.lines().count(), 4, "{out}");
    let (code, out, err) = orket(&root, &["show", "bbbb0002"], Some(&elsewhere));
    assert_eq!(code, 0, "{err}");
    assert!(
        out.starts_with("Run bbbb0002 — rock demo_launch [stalled]"),
        "{out}"
    );

    // --db wins over $ORKET_DB.
    let (code, out, _) = orket(
        &root,
        &["runs", "--db", missing.to_str().unwrap()],
        Some(&elsewhere),
    );
    assert_eq!(code, 0);
    assert_eq!(
        out,
        format!("No runs yet (no store at {}).\n", missing.display())
    );
    assert!(!missing.exists());
    assert!(!root.join(".orket").exists());
}
