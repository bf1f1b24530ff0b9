//! `orket loop` with recorded model turns, as a user leaves it running: two departments worked
//! in critical-path order, an epic added while it sleeps, Ctrl-C, `orket halt --loop`, a second
//! loop refused, and a SIGKILL followed by a loop that resumes the interrupted run first.

mod common;

use orket_core::{Event, RunKind, RunStatus, Status};
use orket_store::{EventRecord, RunRecord, SqliteStore, Store};
use serde_json::json;
use std::path::{Path, PathBuf};
use std::process::{Child, Command, ExitStatus, Stdio};
use std::time::{Duration, Instant};

fn orket() -> Command {
    let mut cmd = Command::new(assert_cmd::cargo::cargo_bin("orket"));
    cmd.env_remove("ORKET_DB").env_remove("ORKET_PROVIDER");
    cmd
}

/// An issue of a test epic: id, priority, dependencies and the file it writes.
type Spec = (
    &'static str,
    &'static str,
    &'static [&'static str],
    &'static str,
);

/// The second department's epic: OPS-1 unblocks two issues (score 5.0, over DEMO-1's 4.0).
const OPS: [Spec; 3] = [
    ("OPS-1", "High", &[], "runbook.md"),
    ("OPS-2", "Medium", &["OPS-1"], "alerts.md"),
    ("OPS-3", "Low", &["OPS-1"], "oncall.md"),
];

/// The epic added while the loop sleeps.
const LATE: [Spec; 1] = [("LATE-1", "High", &[], "late.md")];

/// The order the loop must pick the demo's and the second department's issues in: by score
/// (OPS-1 5.0, DEMO-1 4.0, then 2.0 and 1.0), ties in the board's order (the demo's epic is in
/// a rock, so it comes first).
const ORDER: [&str; 6] = ["OPS-1", "DEMO-1", "DEMO-2", "OPS-2", "DEMO-3", "OPS-3"];

/// Writes an epic of `issues` to `model/<dept>/epics/<name>.json` (the demo's team and
/// environment, no fixture).
fn write_epic(root: &Path, dept: &str, name: &str, issues: &[Spec]) {
    let issues: Vec<_> = issues
        .iter()
        .map(|(id, priority, deps, file)| {
            json!({"id": id, "summary": format!("Write {file}"), "seat": "developer",
                "max_retries": 1, "priority": priority, "depends_on": deps,
                "description": format!("Create {file}"), "files": [file]})
        })
        .collect();
    let epic = json!({"name": name, "description": "A test epic.", "team": "demo_team",
        "environment": "local", "issues": issues});
    let folder = root.join("model").join(dept).join("epics");
    std::fs::create_dir_all(&folder).unwrap();
    // Written whole, then moved in: the loop never reads half a file.
    let part = root.join(format!("{name}.json.part"));
    std::fs::write(&part, epic.to_string()).unwrap();
    std::fs::rename(&part, folder.join(format!("{name}.json"))).unwrap();
}

/// A demo copy with the department `ops` and replies for every issue (the late epic's too).
fn two_departments() -> (tempfile::TempDir, PathBuf, PathBuf) {
    let (dir, root, replay) = common::demo_with_replay();
    common::one_candidate(&root);
    write_epic(&root, "ops", "ops_tasks", &OPS);
    let mut lines = std::fs::read_to_string(&replay).unwrap();
    for (id, _, _, file) in OPS.iter().chain(LATE.iter()) {
        let dev = json!([
            {"tool": "write_file", "args": {"path": file, "content": format!("# {id}\n")}},
            {"tool": "update_issue_status", "args": {"status": "code_review"}}
        ]);
        let review = json!({"tool": "update_issue_status", "args": {"status": "done"}});
        for (role, content) in [("coder", dev), ("integrity_guard", review)] {
            lines.push('\n');
            lines.push_str(
                &json!({"issue_id": id, "role": role, "content": content.to_string()}).to_string(),
            );
        }
    }
    std::fs::write(&replay, lines).unwrap();
    (dir, root, replay)
}

/// `orket loop` in `root` with `args`, its output going to `<root>/../<name>.out`.
fn start_loop(root: &Path, replay: &Path, name: &str, args: &[&str]) -> (Child, PathBuf) {
    let out = root.with_file_name(format!("{name}.out"));
    let child = orket()
        .arg("loop")
        .args(args)
        .args(["--provider", "replay", "--replay"])
        .arg(replay)
        .arg("--root")
        .arg(root)
        .stdout(std::fs::File::create(&out).unwrap())
        .stderr(Stdio::null())
        .spawn()
        .unwrap();
    (child, out)
}

/// Waits up to a minute for `done` to find what it looks for in the runs and events (the
/// store opened afresh each look).
async fn wait_for<T>(
    root: &Path,
    what: &str,
    mut done: impl FnMut(Vec<RunRecord>, Vec<EventRecord>) -> Option<T>,
) -> T {
    let db = root.join(".orket/orket.db");
    let deadline = Instant::now() + Duration::from_secs(60);
    loop {
        if db.exists() {
            let store = SqliteStore::open(&db).await.unwrap();
            let runs = store.list_runs(1000).await.unwrap();
            let events = store.list_events(None, 0, 100_000).await.unwrap();
            if let Some(found) = done(runs, events) {
                return found;
            }
        }
        assert!(Instant::now() < deadline, "timed out waiting for {what}");
        tokio::time::sleep(Duration::from_millis(50)).await;
    }
}

/// The loop rows, oldest first.
fn loops(runs: &[RunRecord]) -> Vec<&RunRecord> {
    runs.iter()
        .rev()
        .filter(|r| r.kind == RunKind::Loop)
        .collect()
}

/// The issues the loop `id` picked, in order.
fn picked(events: &[EventRecord], id: &str) -> Vec<String> {
    events
        .iter()
        .filter(|e| e.run_id.as_deref() == Some(id))
        .filter_map(|e| match &e.event {
            Event::LoopPicked { issue, .. } => Some(issue.clone()),
            _ => None,
        })
        .collect()
}

/// Position of the first event of loop `id` named `name`.
fn position(events: &[EventRecord], id: &str, name: &str) -> Option<usize> {
    events
        .iter()
        .position(|e| e.run_id.as_deref() == Some(id) && e.event.name() == name)
}

fn count(events: &[EventRecord], id: &str, name: &str) -> usize {
    events
        .iter()
        .filter(|e| e.run_id.as_deref() == Some(id) && e.event.name() == name)
        .count()
}

/// Sends SIGINT, as Ctrl-C does, and waits for the process to end.
fn interrupt(child: &mut Child) -> ExitStatus {
    let sent = Command::new("kill")
        .args(["-INT", &child.id().to_string()])
        .status()
        .unwrap();
    assert!(sent.success());
    wait_exit(child)
}

fn wait_exit(child: &mut Child) -> ExitStatus {
    let started = Instant::now();
    loop {
        if let Some(status) = child.try_wait().unwrap() {
            return status;
        }
        assert!(
            started.elapsed() < Duration::from_secs(60),
            "the loop did not stop"
        );
        std::thread::sleep(Duration::from_millis(50));
    }
}

async fn open(root: &Path) -> SqliteStore {
    SqliteStore::open(&root.join(".orket/orket.db"))
        .await
        .unwrap()
}

/// Every issue of `build` done.
async fn assert_all_done(store: &SqliteStore, build: &str, ids: &[&str]) {
    let issues = store.list_issues(build).await.unwrap();
    let mut done: Vec<&str> = issues
        .iter()
        .filter(|i| i.status == Status::Done)
        .map(|i| i.id.as_str())
        .collect();
    done.sort();
    let mut want = ids.to_vec();
    want.sort();
    assert_eq!(done, want, "{build}: {issues:#?}");
}

#[tokio::test(flavor = "multi_thread")]
async fn the_loop_works_two_departments_in_score_order_sleeps_and_picks_up_a_new_epic() {
    let (_dir, root, replay) = two_departments();
    let (mut child, out) = start_loop(&root, &replay, "loop", &["--idle-sleep", "1"]);

    // All six issues run to completion in score order, then the loop sleeps.
    let id = wait_for(&root, "the loop to go idle", |runs, events| {
        let id = loops(&runs).first()?.id.clone();
        (count(&events, &id, "loop_idle") == 1).then_some(id)
    })
    .await;
    let store = open(&root).await;
    let events = store.list_events(None, 0, 100_000).await.unwrap();
    assert_eq!(picked(&events, &id), ORDER);
    let first = events
        .iter()
        .find_map(|e| match &e.event {
            Event::LoopPicked {
                issue,
                epic,
                department,
                score,
                downstream,
                ..
            } => Some((
                issue.clone(),
                epic.clone(),
                department.clone(),
                *score,
                *downstream,
            )),
            _ => None,
        })
        .unwrap();
    assert_eq!(
        first,
        ("OPS-1".into(), "ops_tasks".into(), "ops".into(), 5.0, 2)
    );
    assert_all_done(&store, "build-hello_cli", &["DEMO-1", "DEMO-2", "DEMO-3"]).await;
    assert_all_done(&store, "build-ops_tasks", &["OPS-1", "OPS-2", "OPS-3"]).await;

    // An epic written while it sleeps is picked at its next look.
    write_epic(&root, "ops", "late", &LATE);
    wait_for(
        &root,
        "the new epic to be done and the loop idle again",
        |runs, events| {
            let id = loops(&runs).first()?.id.clone();
            (count(&events, &id, "loop_idle") == 2).then_some(())
        },
    )
    .await;
    let events = store.list_events(None, 0, 100_000).await.unwrap();
    let mut order = ORDER.to_vec();
    order.push("LATE-1");
    assert_eq!(picked(&events, &id), order);
    assert_all_done(&store, "build-late", &["LATE-1"]).await;

    // Ctrl-C stops it cleanly: exit 0, `loop_stopped`, nothing left running, the lease free.
    let status = interrupt(&mut child);
    let stdout = std::fs::read_to_string(&out).unwrap();
    assert_eq!(status.code(), Some(0), "{stdout}");
    assert!(
        stdout.contains("loop: picked OPS-1 of ops_tasks: score 5.0, 2 downstream"),
        "{stdout}"
    );
    assert!(
        stdout.contains("loop: nothing is ready: sleeping 1 s between looks"),
        "{stdout}"
    );
    assert!(
        stdout.contains(&format!("loop {id}: canceled — halted by a person")),
        "{stdout}"
    );
    assert!(stdout.contains("cards: 7"), "{stdout}");
    let events = store.list_events(Some(&id), 0, 100_000).await.unwrap();
    let stopped = events.iter().find_map(|e| match &e.event {
        Event::LoopStopped { status, cards, .. } => Some((*status, *cards)),
        _ => None,
    });
    assert_eq!(stopped, Some((RunStatus::Canceled, 7)));
    let runs = store.list_runs(100).await.unwrap();
    assert!(
        runs.iter().all(|r| r.status != RunStatus::Running),
        "{runs:#?}"
    );
    assert_eq!(runs.iter().filter(|r| r.kind == RunKind::Issue).count(), 7);
    assert!(store.get_lease("loop").await.unwrap().is_none());
}

#[tokio::test(flavor = "multi_thread")]
async fn a_killed_loop_is_resumed_by_the_next_without_repeating_a_committed_turn() {
    let (_dir, root, replay) = two_departments();
    let (mut child, _out) = start_loop(
        &root,
        &replay,
        "killed",
        &["--replay-delay-ms", "800", "--concurrency", "1"],
    );
    let first = wait_for(&root, "the loop to start", |runs, _| {
        loops(&runs).first().map(|r| r.id.clone())
    })
    .await;

    // A second loop is refused, naming the one that runs.
    let second = orket()
        .args(["loop", "--once", "--provider", "replay", "--replay"])
        .arg(&replay)
        .arg("--root")
        .arg(&root)
        .output()
        .unwrap();
    let stderr = String::from_utf8_lossy(&second.stderr);
    assert_eq!(second.status.code(), Some(1), "{stderr}");
    assert!(
        stderr.contains(&format!(
            "a loop is already running in this project: loop {first} (process {} on ",
            child.id()
        )),
        "{stderr}"
    );

    // Killed while a card's run has committed its first turn and not its second.
    let interrupted = wait_for(&root, "a card's run between its turns", |runs, events| {
        let run = runs
            .iter()
            .find(|r| r.kind == RunKind::Issue && r.status == RunStatus::Running)?;
        let turns = events
            .iter()
            .filter(|e| e.run_id.as_deref() == Some(&run.id))
            .filter(|e| matches!(e.event, Event::TurnComplete { .. }))
            .count();
        (turns == 1).then(|| run.id.clone())
    })
    .await;
    child.kill().unwrap();
    child.wait().unwrap();
    let store = open(&root).await;
    let before = store.list_turns(&interrupted).await.unwrap();
    assert_eq!(before.len(), 1, "killed between the card's two turns");
    assert_eq!(
        store.get_run(&interrupted).await.unwrap().unwrap().status,
        RunStatus::Running
    );

    // The next loop resumes that run before it picks anything, then finishes the rest.
    let (mut next, out) = start_loop(&root, &replay, "next", &["--once"]);
    let status = wait_exit(&mut next);
    let stdout = std::fs::read_to_string(&out).unwrap();
    assert_eq!(status.code(), Some(0), "{stdout}");
    assert!(
        stdout.contains(&format!("loop: resuming run {interrupted} (")),
        "{stdout}"
    );
    let runs = store.list_runs(100).await.unwrap();
    let second = loops(&runs)[1].id.clone();
    let events = store.list_events(None, 0, 100_000).await.unwrap();
    let resumed = position(&events, &second, "loop_resumed").expect("a loop_resumed event");
    assert!(position(&events, &second, "loop_picked").is_none_or(|p| resumed < p));
    assert!(stdout.contains("completed — nothing is ready"), "{stdout}");

    // The first loop's row is ended; the interrupted run completed from its second turn.
    let first_row = store.get_run(&first).await.unwrap().unwrap();
    assert_eq!(first_row.status, RunStatus::Failed);
    assert!(
        first_row
            .reason
            .as_deref()
            .is_some_and(|r| r.contains(&format!("loop {second} took over"))),
        "{first_row:?}"
    );
    let turns = store.list_turns(&interrupted).await.unwrap();
    assert_eq!(turns.iter().map(|t| t.turn.seq).collect::<Vec<_>>(), [1, 2]);
    assert_eq!(turns[0].turn.started_at, before[0].turn.started_at);
    assert_eq!(
        store.get_run(&interrupted).await.unwrap().unwrap().status,
        RunStatus::Completed
    );
    // Every issue developed once and reviewed once, over all the runs: no turn repeated.
    let mut pairs = Vec::new();
    for run in runs.iter().filter(|r| r.kind == RunKind::Issue) {
        for t in store.list_turns(&run.id).await.unwrap() {
            pairs.push((t.turn.issue_id.clone(), t.turn.review));
        }
    }
    pairs.sort();
    let mut want: Vec<(String, bool)> = ORDER
        .iter()
        .flat_map(|id| [(id.to_string(), false), (id.to_string(), true)])
        .collect();
    want.sort();
    assert_eq!(pairs, want);
    assert_all_done(&store, "build-hello_cli", &["DEMO-1", "DEMO-2", "DEMO-3"]).await;
    assert_all_done(&store, "build-ops_tasks", &["OPS-1", "OPS-2", "OPS-3"]).await;
    assert!(runs.iter().all(|r| r.status != RunStatus::Running));
    // The demo's rock has its epics done: the loop's next look started its bug-fix phase.
    let phase = store.get_bug_fix_phase("demo_launch").await.unwrap();
    assert!(
        phase.is_some_and(|p| p.status == orket_store::PhaseStatus::Active),
        "the rock's bug-fix phase started"
    );
}

#[tokio::test(flavor = "multi_thread")]
async fn halt_loop_stops_the_loop_from_another_process() {
    let (_dir, root, replay) = two_departments();
    // A department with nothing to do: the loop sleeps at once.
    std::fs::create_dir_all(root.join("model/quiet")).unwrap();
    let (mut child, out) = start_loop(
        &root,
        &replay,
        "quiet",
        &["--department", "quiet", "--idle-sleep", "60"],
    );
    let id = wait_for(&root, "the loop to go idle", |runs, events| {
        let id = loops(&runs).first()?.id.clone();
        (count(&events, &id, "loop_idle") == 1).then_some(id)
    })
    .await;
    let halt = orket()
        .args(["halt", "--loop", "--root"])
        .arg(&root)
        .output()
        .unwrap();
    let said = String::from_utf8_lossy(&halt.stdout);
    assert_eq!(halt.status.code(), Some(0), "{said}");
    assert!(
        said.contains(&format!(
            "halt requested for loop {id} (process {} on ",
            child.id()
        )),
        "{said}"
    );
    // It stops well before its 60 s sleep is over.
    let status = wait_exit(&mut child);
    let stdout = std::fs::read_to_string(&out).unwrap();
    assert_eq!(status.code(), Some(0), "{stdout}");
    assert!(
        stdout.contains("loop: loop started over department quiet"),
        "{stdout}"
    );
    assert!(stdout.contains("canceled — halted by a person"), "{stdout}");
    let store = open(&root).await;
    assert!(picked(&store.list_events(None, 0, 1000).await.unwrap(), &id).is_empty());

    let again = orket()
        .args(["halt", "--loop", "--root"])
        .arg(&root)
        .output()
        .unwrap();
    assert_eq!(again.status.code(), Some(1));
    assert!(String::from_utf8_lossy(&again.stderr)
        .contains("error: no loop is running in this project"));
    // A loop is no run to resume.
    let resume = orket()
        .args(["resume", &id, "--provider", "replay", "--replay"])
        .arg(&replay)
        .arg("--root")
        .arg(&root)
        .output()
        .unwrap();
    assert_eq!(resume.status.code(), Some(1));
    assert!(String::from_utf8_lossy(&resume.stderr).contains(&format!(
        "run {id} is an organization loop, not a run to resume"
    )));
    // An unknown department is refused before anything starts.
    let unknown = orket()
        .args([
            "loop",
            "--department",
            "nowhere",
            "--provider",
            "replay",
            "--replay",
        ])
        .arg(&replay)
        .arg("--root")
        .arg(&root)
        .output()
        .unwrap();
    assert_eq!(unknown.status.code(), Some(1));
    assert!(String::from_utf8_lossy(&unknown.stderr)
        .contains("department \"nowhere\" not found: model/nowhere/ does not exist"));
}

/// The `loop_set_aside` events of loop `id`: issue and reason.
fn set_aside(events: &[EventRecord], id: &str) -> Vec<(String, String)> {
    events
        .iter()
        .filter(|e| e.run_id.as_deref() == Some(id))
        .filter_map(|e| match &e.event {
            Event::LoopSetAside { issue, reason, .. } => Some((issue.clone(), reason.clone())),
            _ => None,
        })
        .collect()
}

#[tokio::test(flavor = "multi_thread")]
async fn an_issue_its_card_did_not_finish_is_set_aside_until_it_changes() {
    let (_dir, root, replay) = two_departments();
    // One token per card: every card's run ends `budget_exceeded` after its first turn.
    let (mut child, _out) = start_loop(
        &root,
        &replay,
        "aside",
        &[
            "--department",
            "core",
            "--card-token-budget",
            "1",
            "--idle-sleep",
            "1",
        ],
    );
    let id = wait_for(&root, "the loop to go idle", |runs, events| {
        let id = loops(&runs).first()?.id.clone();
        (count(&events, &id, "loop_idle") == 1).then_some(id)
    })
    .await;
    let store = open(&root).await;
    let events = store.list_events(Some(&id), 0, 10_000).await.unwrap();
    // DEMO-1 and DEMO-3 each ran once and were set aside; the loop sleeps instead of
    // picking them again.
    assert_eq!(picked(&events, &id), ["DEMO-1", "DEMO-3"]);
    let aside = set_aside(&events, &id);
    assert_eq!(aside.len(), 2, "{aside:?}");
    for ((issue, reason), want) in aside.iter().zip(["DEMO-1", "DEMO-3"]) {
        assert_eq!(issue, want);
        assert!(
            reason.contains("ended budget_exceeded: token budget of 1 exceeded"),
            "{reason}"
        );
    }
    let idle = events.iter().find_map(|e| match &e.event {
        Event::LoopIdle { set_aside, .. } => Some(*set_aside),
        _ => None,
    });
    assert_eq!(idle, Some(2));
    let issue = store
        .get_issue("build-hello_cli", "DEMO-1")
        .await
        .unwrap()
        .unwrap();
    assert_eq!(issue.status, Status::CodeReview);

    // A person changes DEMO-1 (a directive in its note): it is picked again, its review
    // finishes it, and DEMO-2, ready now, gets its turn.
    store
        .update_issue(
            "build-hello_cli",
            "DEMO-1",
            orket_store::IssueUpdate::by("person").note("Review it again."),
        )
        .await
        .unwrap();
    wait_for(&root, "the loop to go idle again", |_, events| {
        (count(&events, &id, "loop_idle") == 2).then_some(())
    })
    .await;
    let events = store.list_events(Some(&id), 0, 10_000).await.unwrap();
    assert_eq!(
        picked(&events, &id),
        ["DEMO-1", "DEMO-3", "DEMO-1", "DEMO-2"]
    );
    let issue = store
        .get_issue("build-hello_cli", "DEMO-1")
        .await
        .unwrap()
        .unwrap();
    assert_eq!(issue.status, Status::Done);
    // DEMO-1 finished, so only DEMO-2 joined the issues set aside.
    let aside: Vec<String> = set_aside(&events, &id)
        .into_iter()
        .map(|(i, _)| i)
        .collect();
    assert_eq!(aside, ["DEMO-1", "DEMO-3", "DEMO-2"]);
    assert_eq!(interrupt(&mut child).code(), Some(0));
}

#[tokio::test(flavor = "multi_thread")]
async fn the_loops_token_budget_stops_it_and_bounds_its_cards() {
    let (_dir, root, replay) = two_departments();
    let (mut child, out) = start_loop(
        &root,
        &replay,
        "budget",
        &["--department", "core", "--token-budget", "100"],
    );
    let status = wait_exit(&mut child);
    let stdout = std::fs::read_to_string(&out).unwrap();
    assert_eq!(status.code(), Some(1), "{stdout}");
    assert!(
        stdout.contains("loop: the loop's token budget of 100 is used up ("),
        "{stdout}"
    );
    assert!(
        stdout.contains(": budget_exceeded — the loop's token budget"),
        "{stdout}"
    );
    let store = open(&root).await;
    let runs = store.list_runs(100).await.unwrap();
    let id = loops(&runs)[0].id.clone();
    let events = store.list_events(Some(&id), 0, 10_000).await.unwrap();
    // The one card ran under what was left of the loop's budget.
    assert_eq!(picked(&events, &id), ["DEMO-1"]);
    let card = runs.iter().find(|r| r.kind == RunKind::Issue).unwrap();
    assert_eq!(card.status, RunStatus::BudgetExceeded);
    assert!(
        card.reason
            .as_deref()
            .is_some_and(|r| r.starts_with("token budget of 100 exceeded")),
        "{card:?}"
    );
    assert!(position(&events, &id, "loop_budget_exceeded").is_some());
    let stopped = events.iter().find_map(|e| match &e.event {
        Event::LoopStopped { status, cards, .. } => Some((*status, *cards)),
        _ => None,
    });
    assert_eq!(stopped, Some((RunStatus::BudgetExceeded, 1)));
}

/// One HTTP/1.1 request to a loopback server without a key: its status code and JSON body.
fn http(port: u16, method: &str, path: &str) -> (u16, serde_json::Value) {
    use std::io::{Read, Write};
    let mut stream = std::net::TcpStream::connect(("127.0.0.1", port)).unwrap();
    stream
        .set_read_timeout(Some(Duration::from_secs(30)))
        .unwrap();
    let body = if method == "POST" { "{}" } else { "" };
    let kind = if method == "POST" {
        "Content-Type: application/json\r\n"
    } else {
        ""
    };
    let request = format!(
        "{method} {path} HTTP/1.1\r\nHost: 127.0.0.1:{port}\r\n{kind}Content-Length: {}\r\nConnection: close\r\n\r\n{body}",
        body.len()
    );
    stream.write_all(request.as_bytes()).unwrap();
    let mut text = String::new();
    let _ = stream.read_to_string(&mut text);
    let status = text
        .split_whitespace()
        .nth(1)
        .and_then(|s| s.parse().ok())
        .unwrap_or_else(|| panic!("no status in {text:?}"));
    let json = text
        .split_once("\r\n\r\n")
        .and_then(|(_, b)| serde_json::from_str(b).ok())
        .unwrap_or(serde_json::Value::Null);
    (status, json)
}

#[tokio::test(flavor = "multi_thread")]
async fn a_server_shows_and_stops_the_loop_another_process_runs() {
    let (_dir, root, replay) = two_departments();
    std::fs::create_dir_all(root.join("model/quiet")).unwrap();
    let (mut child, out) = start_loop(
        &root,
        &replay,
        "beside",
        &["--department", "quiet", "--idle-sleep", "60"],
    );
    let id = wait_for(&root, "the loop to go idle", |runs, events| {
        let id = loops(&runs).first()?.id.clone();
        (count(&events, &id, "loop_idle") == 1).then_some(id)
    })
    .await;
    let mut serve = orket();
    serve.args(["serve", "--port", "0", "--root"]).arg(&root);
    let server = common::Server::start(serve);
    let port = server.port();

    let (status, view) = http(port, "GET", "/v1/loop");
    assert_eq!(status, 200, "{view}");
    assert_eq!(view["running"], true, "{view}");
    assert_eq!(view["here"], false, "{view}");
    assert_eq!(view["id"], id.as_str(), "{view}");
    assert_eq!(view["department"], "quiet", "{view}");
    assert_eq!(view["holder"]["pid"], child.id(), "{view}");
    assert_eq!(
        view["last_decision"], "nothing is ready: sleeping 60 s between looks",
        "{view}"
    );
    let (status, refused) = http(port, "POST", "/v1/loop/start");
    assert_eq!(status, 409, "{refused}");
    assert!(
        refused["error"].as_str().unwrap().starts_with(&format!(
            "a loop is already running in this project: loop {id} (process {} on ",
            child.id()
        )),
        "{refused}"
    );

    let (status, halting) = http(port, "POST", "/v1/loop/stop");
    assert_eq!(status, 202, "{halting}");
    assert_eq!(halting["id"], id.as_str());
    let exit = wait_exit(&mut child);
    let stdout = std::fs::read_to_string(&out).unwrap();
    assert_eq!(exit.code(), Some(0), "{stdout}");
    assert!(stdout.contains("canceled — halted by a person"), "{stdout}");
    let (_, view) = http(port, "GET", "/v1/loop");
    assert_eq!(view["running"], false, "{view}");
    let (status, _) = http(port, "POST", "/v1/loop/stop");
    assert_eq!(status, 404);
}

#[tokio::test(flavor = "multi_thread")]
async fn the_loops_time_budget_cuts_its_sleep_and_stops_it() {
    let (_dir, root, replay) = two_departments();
    std::fs::create_dir_all(root.join("model/quiet")).unwrap();
    let started = Instant::now();
    let (mut child, out) = start_loop(
        &root,
        &replay,
        "timed",
        &[
            "--department",
            "quiet",
            "--idle-sleep",
            "600",
            "--time-budget",
            "1",
        ],
    );
    let status = wait_exit(&mut child);
    let stdout = std::fs::read_to_string(&out).unwrap();
    assert_eq!(status.code(), Some(1), "{stdout}");
    assert!(
        started.elapsed() < Duration::from_secs(30),
        "it slept past its budget"
    );
    assert!(
        stdout.contains("budget_exceeded — the loop's time budget of 1s is used up"),
        "{stdout}"
    );
}

#[tokio::test(flavor = "multi_thread")]
async fn the_loop_leaves_alone_a_build_another_run_works_on() {
    let (_dir, root, replay) = two_departments();
    let mut run = orket()
        .args([
            "run",
            "hello_cli",
            "--concurrency",
            "1",
            "--replay-delay-ms",
            "800",
        ])
        .args(["--provider", "replay", "--replay"])
        .arg(&replay)
        .arg("--root")
        .arg(&root)
        .stdout(Stdio::null())
        .spawn()
        .unwrap();
    wait_for(&root, "the run to hold its build", |runs, _| {
        runs.iter()
            .any(|r| r.kind == RunKind::Epic && r.status == RunStatus::Running)
            .then_some(())
    })
    .await;
    let (mut child, out) = start_loop(
        &root,
        &replay,
        "beside-run",
        &["--department", "core", "--once"],
    );
    let status = wait_exit(&mut child);
    let stdout = std::fs::read_to_string(&out).unwrap();
    run.kill().unwrap();
    run.wait().unwrap();
    assert_eq!(status.code(), Some(0), "{stdout}");
    assert!(
        stdout.contains("completed — nothing is ready ("),
        "{stdout}"
    );
    assert!(stdout.contains("busy in another run)"), "{stdout}");
    assert!(!stdout.contains("picked"), "{stdout}");
    assert!(!stdout.contains("set aside"), "{stdout}");
}

#[tokio::test(flavor = "multi_thread")]
async fn a_loop_whose_lease_was_taken_over_ends_failed_naming_the_new_holder() {
    let (_dir, root, replay) = two_departments();
    std::fs::create_dir_all(root.join("model/quiet")).unwrap();
    let (mut child, out) = start_loop(
        &root,
        &replay,
        "taken",
        &["--department", "quiet", "--idle-sleep", "60"],
    );
    let id = wait_for(&root, "the loop to go idle", |runs, events| {
        let id = loops(&runs).first()?.id.clone();
        (count(&events, &id, "loop_idle") == 1).then_some(id)
    })
    .await;
    // Another process takes the loop's lease over, as one does that believes this loop's
    // process gone.
    let store = open(&root).await;
    let lease = store
        .get_lease(orket_core::ids::LOOP_LEASE)
        .await
        .unwrap()
        .expect("the loop holds its lease");
    let other = orket_store::LeaseHolder {
        token: "elsewhere/boot/pidns/4242/1".to_string(),
        pid: 4242,
        host: "elsewhere".to_string(),
    };
    store
        .apply(vec![orket_store::Change::TakeLease(
            orket_store::LeaseRequest {
                build_id: orket_core::ids::LOOP_LEASE.to_string(),
                run_id: "otherloop".to_string(),
                holder: other,
                stale_after: Duration::from_secs(30),
                replacing: Some(lease.holder.token.clone()),
            },
        )])
        .await
        .unwrap();
    // Its next heartbeat finds the lease gone: it stops, and says why.
    let status = wait_exit(&mut child);
    let stdout = std::fs::read_to_string(&out).unwrap();
    assert_eq!(status.code(), Some(1), "{stdout}");
    let row = store.get_run(&id).await.unwrap().unwrap();
    assert_eq!(row.status, RunStatus::Failed, "{row:?}");
    let reason = row.reason.unwrap_or_default();
    assert!(
        reason.contains(
            "the loop's lease was taken over by run otherloop (process 4242 on elsewhere"
        ),
        "{reason}"
    );
    assert!(!stdout.contains("halted by a person"), "{stdout}");
}
