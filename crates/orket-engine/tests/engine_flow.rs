//! The traction loop with recorded model turns (the replay provider) on the demo epic.

mod common;

use orket_core::assets::AssetTree;
use orket_core::{RunStatus, Status};
use orket_engine::{EngineError, RunOptions, RunOutcome, Target};
use orket_llm::ReplayProvider;
use orket_store::events::EventBus;
use orket_store::{SqliteStore, Store};
use serde_json::json;
use std::path::{Path, PathBuf};
use std::sync::Arc;

use common::{all_replies, copy_dir, reply, without_fixtures, write_and_review};

/// The same reply `n` times: a model that insists on a call the gate refuses is corrected
/// (twice, by default) before the refusal blocks its issue.
fn insist(issue: &str, role: &str, calls: serde_json::Value, n: usize) -> Vec<String> {
    vec![reply(issue, role, calls); n]
}

/// One offence and every correction the turn allows.
const OFFENCES: usize = 3;

struct Project {
    _dir: tempfile::TempDir,
    root: PathBuf,
    store: Arc<dyn Store>,
}

/// How a test changes the default run options (the provider comes from its replies).
type Tweak = fn(&mut RunOptions);

/// The engine of a test project with the options its runs get.
struct Engine {
    core: orket_engine::Engine,
    options: RunOptions,
}

impl Engine {
    /// Runs `name` to its end with the test's options.
    async fn run_card(&self, name: &str) -> Result<Vec<RunOutcome>, EngineError> {
        self.core.run(name, self.options.clone()).await
    }

    fn resolve(&self, name: &str) -> Option<Target> {
        self.core.resolve(name, "core")
    }
}

impl std::ops::Deref for Engine {
    type Target = orket_engine::Engine;
    fn deref(&self) -> &orket_engine::Engine {
        &self.core
    }
}

async fn project(replies: &[String]) -> (Project, Engine, EventBus) {
    project_with(replies, |_| {}, |_| {}).await
}

/// A copy of the demo, edited by `edit`, with an engine replaying `replies`.
async fn project_with(
    replies: &[String],
    edit: impl FnOnce(&Path),
    tweak: Tweak,
) -> (Project, Engine, EventBus) {
    let dir = tempfile::tempdir().unwrap();
    let root = dir.path().join("project");
    copy_dir(
        &PathBuf::from(env!("CARGO_MANIFEST_DIR")).join("../../demo"),
        &root,
    );
    without_fixtures(&root);
    edit(&root);
    let store: Arc<dyn Store> = Arc::new(
        SqliteStore::open(&root.join(".orket/orket.db"))
            .await
            .unwrap(),
    );
    let (engine, bus) = engine_for(&root, &store, replies, tweak);
    (
        Project {
            _dir: dir,
            root,
            store,
        },
        engine,
        bus,
    )
}

fn engine_for(
    root: &Path,
    store: &Arc<dyn Store>,
    replies: &[String],
    tweak: Tweak,
) -> (Engine, EventBus) {
    let replay = ReplayProvider::from_jsonl("replay.jsonl", &replies.join("\n")).unwrap();
    let bus = EventBus::default();
    let mut options = RunOptions {
        retry: orket_llm::RetryPolicy {
            attempts: 3,
            backoff: std::time::Duration::from_millis(1),
        },
        ..RunOptions::new(Arc::new(replay))
    };
    tweak(&mut options);
    let core = orket_engine::Engine::new(AssetTree::new(root), Arc::clone(store), bus.clone());
    (Engine { core, options }, bus)
}

/// Sets `process_rules.<key>` in the project's organization file.
fn set_rule(root: &Path, key: &str, value: serde_json::Value) {
    let path = root.join("config/organization.json");
    let mut org: serde_json::Value =
        serde_json::from_str(&std::fs::read_to_string(&path).unwrap()).unwrap();
    org["process_rules"][key] = value;
    std::fs::write(&path, org.to_string()).unwrap();
}

#[tokio::test(flavor = "multi_thread")]
async fn golden_flow_completes_the_demo_epic() {
    let mut replies = Vec::new();
    replies.extend(write_and_review(
        "DEMO-1",
        "hello.py",
        "print(\"Hello, Orket!\")\n",
    ));
    replies.extend(write_and_review(
        "DEMO-2",
        "README.md",
        "# Hello\n\nRun `python3 hello.py`.\n",
    ));
    replies.extend(write_and_review(
        "DEMO-3",
        "NOTES.md",
        "- greet by name\n- colours\n- i18n\n",
    ));
    let (p, engine, bus) = project(&replies).await;
    let mut rx = bus.subscribe();

    let outcomes = engine.run_card("hello_cli").await.unwrap();
    assert_eq!(outcomes.len(), 1);
    let outcome = &outcomes[0];
    assert_eq!(outcome.status, RunStatus::Completed, "{:?}", outcome.reason);
    assert_eq!(outcome.turns, 6);

    let issues = p.store.list_issues("build-hello_cli").await.unwrap();
    assert!(
        issues.iter().all(|i| i.status == Status::Done),
        "{issues:#?}"
    );
    let ws = p.root.join("workspace/hello_cli");
    assert_eq!(
        std::fs::read_to_string(ws.join("hello.py")).unwrap(),
        "print(\"Hello, Orket!\")\n"
    );
    assert!(ws.join("README.md").is_file() && ws.join("NOTES.md").is_file());

    // The build, the ledger, the transcript and the events are in the store.
    assert_eq!(
        p.store
            .get_build("build-hello_cli")
            .await
            .unwrap()
            .unwrap()
            .status,
        Status::Done
    );
    assert_eq!(
        p.store
            .list_success(Some("build-hello_cli"))
            .await
            .unwrap()
            .len(),
        1
    );
    let turns = p.store.list_turns(&outcome.run_id).await.unwrap();
    assert_eq!(turns.len(), 6);
    assert_eq!(
        turns.iter().map(|t| t.turn.seq).collect::<Vec<_>>(),
        vec![1, 2, 3, 4, 5, 6]
    );
    assert!(turns
        .iter()
        .any(|t| t.turn.review && t.turn.role == "integrity_guard"));
    let run = p.store.get_run(&outcome.run_id).await.unwrap().unwrap();
    assert_eq!(run.status, RunStatus::Completed);
    let events: Vec<String> = p
        .store
        .list_events(Some(&outcome.run_id), 0, 1000)
        .await
        .unwrap()
        .into_iter()
        .map(|e| e.event.name().to_string())
        .collect();
    for name in [
        "session_start",
        "orchestrator_tick",
        "turn_start",
        "turn_complete",
        "success_recorded",
        "session_end",
    ] {
        assert!(
            events.iter().any(|e| e == name),
            "{name} missing from {events:?}"
        );
    }
    assert_eq!(events.first().map(String::as_str), Some("session_start"));
    assert_eq!(events.last().map(String::as_str), Some("session_end"));
    // Every stored event went to the workspace log and the bus, in order.
    let log = std::fs::read_to_string(ws.join("orket.log")).unwrap();
    assert_eq!(log.lines().count(), events.len());
    let mut seen = Vec::new();
    while let Ok(e) = rx.try_recv() {
        seen.push(e.event.name().to_string());
    }
    assert_eq!(seen, events);
    // Audit rows: DEMO-1 went ready → in_progress → code_review → done.
    let audit: Vec<(Option<Status>, String)> = p
        .store
        .list_card_transactions("build-hello_cli", "DEMO-1")
        .await
        .unwrap()
        .into_iter()
        .filter(|t| t.action == "status_change")
        .map(|t| (t.to_status, t.role))
        .collect();
    assert_eq!(
        audit,
        vec![
            (Some(Status::InProgress), "orket".to_string()),
            (Some(Status::CodeReview), "coder".to_string()),
            (Some(Status::Done), "integrity_guard".to_string())
        ]
    );
}

/// Gives DEMO-1 a verification fixture that checks hello.py and puts the fixture in the
/// epic's workspace.
fn with_hello_fixture(root: &Path) {
    let path = root.join("model/core/epics/hello_cli.json");
    let mut epic: serde_json::Value =
        serde_json::from_str(&std::fs::read_to_string(&path).unwrap()).unwrap();
    epic["issues"][0]["verification"] = json!({
        "fixture_path": "verification/test_hello.py",
        "scenarios": [{"id": "greets", "description": "hello.py prints the greeting",
                       "input_data": null, "expected_output": "print(\"Hello, Orket!\")"}]
    });
    std::fs::write(&path, epic.to_string()).unwrap();
    let fixtures = root.join("workspace/hello_cli/verification");
    std::fs::create_dir_all(&fixtures).unwrap();
    std::fs::write(
        fixtures.join("test_hello.py"),
        "from pathlib import Path\n\ndef verify_greets(_):\n    return (Path(__file__).resolve().parent.parent / 'hello.py').read_text().strip()\n",
    )
    .unwrap();
}

/// An issue of the demo build as stored.
async fn stored(p: &Project, id: &str) -> orket_store::IssueRecord {
    p.store
        .get_issue("build-hello_cli", id)
        .await
        .unwrap()
        .unwrap_or_else(|| panic!("{id} is not in the build"))
}

/// The run's review turn of `issue`.
async fn review_turn(store: &Arc<dyn Store>, run_id: &str, issue: &str) -> orket_store::TurnRecord {
    let turns = store.list_turns(run_id).await.unwrap();
    turns
        .into_iter()
        .find(|t| t.turn.review && t.turn.issue_id == issue)
        .unwrap_or_else(|| panic!("no review turn of {issue}"))
}

async fn event_names(store: &Arc<dyn Store>, run_id: &str) -> Vec<String> {
    store
        .list_events(Some(run_id), 0, 1000)
        .await
        .unwrap()
        .into_iter()
        .map(|e| e.event.name().to_string())
        .collect()
}

#[tokio::test(flavor = "multi_thread")]
async fn a_developer_turn_draws_candidates_and_keeps_the_first_that_passes_the_fixture() {
    let write = |content: &str| {
        reply(
            "DEMO-1",
            "coder",
            json!([{"tool": "write_file", "args": {"path": "hello.py", "content": content}},
                   {"tool": "update_issue_status", "args": {"status": "code_review"}}]),
        )
    };
    let mut replies = vec![
        write("Hello, Orket!\n"),
        write("print(\"Hello, Orket!\")\n"),
        write("print(\"never drawn\")\n"),
        reply(
            "DEMO-1",
            "integrity_guard",
            json!({"tool": "update_issue_status", "args": {"status": "done"}}),
        ),
    ];
    replies.extend(write_and_review("DEMO-2", "README.md", "# r\n"));
    replies.extend(write_and_review("DEMO-3", "NOTES.md", "n\n"));
    let (p, engine, _bus) = project_with(
        &replies,
        |root| {
            with_hello_fixture(root);
            set_rule(root, "candidates", json!(3));
        },
        |_| {},
    )
    .await;
    let outcome = engine.run_card("hello_cli").await.unwrap().remove(0);
    assert_eq!(outcome.status, RunStatus::Completed, "{:?}", outcome.reason);
    // The second candidate passed: its file is the workspace's, and the review accepted it.
    let hello = p.root.join("workspace/hello_cli/hello.py");
    assert_eq!(
        std::fs::read_to_string(hello).unwrap(),
        "print(\"Hello, Orket!\")\n"
    );
    assert_eq!(stored(&p, "DEMO-1").await.status, Status::Done);
    let turns = p.store.list_turns(&outcome.run_id).await.unwrap();
    let first = developer_turn(&turns, "DEMO-1");
    let drawn: Vec<(u32, bool, usize, usize, bool)> = first
        .candidates
        .iter()
        .map(|c| (c.n, c.ok, c.passed, c.total, c.chosen))
        .collect();
    assert_eq!(drawn, [(1, false, 0, 1, false), (2, true, 1, 1, true)]);
    // The turn's steps are the chosen candidate's; the others' copies are gone.
    assert!(first.steps.iter().all(|s| s.candidate == Some(2)));
    let left = p.root.join(".orket/candidates").join(&outcome.run_id);
    assert!(!left.exists(), "{left:?}");
    // DEMO-2 and DEMO-3 have no fixture: one draw each.
    assert!(turns
        .iter()
        .filter(|t| t.turn.issue_id != "DEMO-1")
        .all(|t| t.turn.candidates.is_empty()));
}

/// A developer who names `path` only, the reply of the call that asks for its content, the
/// hand-over, and the review's `done`.
fn write_apart_and_review(issue: &str, path: &str, content_reply: &str) -> Vec<String> {
    vec![
        reply(
            issue,
            "coder",
            json!({"tool_calls": [{"tool": "write_file", "args": {"path": path}}]}),
        ),
        json!({"issue_id": issue, "role": "coder", "content": content_reply}).to_string(),
        reply(
            issue,
            "coder",
            json!({"tool_calls": [{"tool": "update_issue_status", "args": {"status": "code_review"}}]}),
        ),
        reply(
            issue,
            "integrity_guard",
            json!({"tool": "update_issue_status", "args": {"status": "done"}}),
        ),
    ]
}

/// The developer turn of `issue` (turns of issues drawn at once commit in either order).
fn developer_turn<'a>(
    turns: &'a [orket_store::TurnRecord],
    issue: &str,
) -> &'a orket_store::NewTurn {
    &turns
        .iter()
        .find(|t| t.turn.issue_id == issue && !t.turn.review)
        .unwrap_or_else(|| panic!("no developer turn of {issue}"))
        .turn
}

/// Gives the demo's model a profile that asks for files' content apart.
fn content_apart(root: &Path) {
    let models = root.join("model/core/models");
    std::fs::create_dir_all(&models).unwrap();
    std::fs::write(
        models.join("smollm2-135m-instruct.json"),
        json!({"file_content": "block"}).to_string(),
    )
    .unwrap();
}

#[tokio::test(flavor = "multi_thread")]
async fn a_profile_with_block_content_asks_for_the_file_apart_and_writes_its_fenced_block() {
    // The content call's reply: free text with the file in a fenced block.
    let mut replies = write_apart_and_review(
        "DEMO-1",
        "hello.py",
        "Here it is:\n```python\nprint(\"Hello, Orket!\")\n```\nIt greets.",
    );
    // A call that carries its content keeps it: no content call.
    replies.extend(write_and_review("DEMO-2", "README.md", "# r\n"));
    replies.extend(write_and_review("DEMO-3", "NOTES.md", "n\n"));
    let (p, engine, _bus) = project_with(&replies, content_apart, |_| {}).await;
    let outcome = engine.run_card("hello_cli").await.unwrap().remove(0);
    assert_eq!(outcome.status, RunStatus::Completed, "{:?}", outcome.reason);
    assert_eq!(
        std::fs::read_to_string(p.root.join("workspace/hello_cli/hello.py")).unwrap(),
        "print(\"Hello, Orket!\")\n"
    );
    let turns = p.store.list_turns(&outcome.run_id).await.unwrap();
    // DEMO-1's developer turn (DEMO-3's runs beside it, in either order).
    let first = developer_turn(&turns, "DEMO-1");
    let write = &first.steps[0];
    assert_eq!(
        write.call.as_ref().and_then(|c| c.str_arg("content")),
        Some("print(\"Hello, Orket!\")\n")
    );
    assert!(
        write
            .content_reply
            .as_deref()
            .is_some_and(|r| r.starts_with("Here it is")),
        "{write:?}"
    );
    // Every file the issue names is written: the next step may only hand the work over.
    let next = first.steps[1].prompt[0].content.lines().last().unwrap();
    assert_eq!(
        next,
        "Step 2: reply with one tool call: update_issue_status (status: code_review)."
    );
    let settings = first.settings.as_ref().unwrap();
    assert_eq!(settings["file_content"], "block");
    let readme = turns.iter().find(|t| t.turn.issue_id == "DEMO-2").unwrap();
    assert!(readme.turn.steps.iter().all(|s| s.content_reply.is_none()));
}

#[tokio::test(flavor = "multi_thread")]
async fn a_list_file_is_asked_for_as_its_items_and_written_one_line_each() {
    // The demo's DEMO-3 names `{"path": "NOTES.md", "list": 3}`.
    let mut replies = write_and_review("DEMO-1", "hello.py", "print(1)\n");
    replies.extend(write_and_review("DEMO-2", "README.md", "# r\n"));
    // The content call's reply: the list's items (a marker and a line break the model wrote
    // itself are tidied).
    replies.extend(write_apart_and_review(
        "DEMO-3",
        "NOTES.md",
        r#"{"items": ["Greet by name", "- Add a --shout flag", "Say\ngoodbye"]}"#,
    ));
    let (p, engine, _bus) = project_with(&replies, content_apart, |_| {}).await;
    let outcome = engine.run_card("hello_cli").await.unwrap().remove(0);
    assert_eq!(outcome.status, RunStatus::Completed, "{:?}", outcome.reason);
    assert_eq!(
        std::fs::read_to_string(p.root.join("workspace/hello_cli/NOTES.md")).unwrap(),
        "- Greet by name\n- Add a --shout flag\n- Say goodbye\n"
    );
    let turns = p.store.list_turns(&outcome.run_id).await.unwrap();
    let notes = developer_turn(&turns, "DEMO-3");
    assert!(
        notes.steps[0]
            .content_reply
            .as_deref()
            .is_some_and(|r| r.starts_with(r#"{"items""#)),
        "{:?}",
        notes.steps[0]
    );
}

#[tokio::test(flavor = "multi_thread")]
async fn a_failed_tool_is_a_result_and_the_turn_goes_on_to_its_move() {
    // The reviewer lists a file as a folder, reads it, then decides — in one turn.
    let mut replies = vec![
        reply(
            "DEMO-1",
            "coder",
            json!([{"tool": "write_file", "args": {"path": "hello.py", "content": "print(1)\n"}},
                   {"tool": "update_issue_status", "args": {"status": "code_review"}}]),
        ),
        reply(
            "DEMO-1",
            "integrity_guard",
            json!({"tool": "list_directory", "args": {"path": "hello.py"}}),
        ),
        reply(
            "DEMO-1",
            "integrity_guard",
            json!({"tool": "update_issue_status", "args": {"status": "done"}}),
        ),
    ];
    replies.extend(write_and_review("DEMO-2", "README.md", "# r\n"));
    replies.extend(write_and_review("DEMO-3", "NOTES.md", "n\n"));
    let (p, engine, _bus) = project(&replies).await;
    let outcome = engine.run_card("hello_cli").await.unwrap().remove(0);
    assert_eq!(outcome.status, RunStatus::Completed, "{:?}", outcome.reason);
    let issue = stored(&p, "DEMO-1").await;
    assert_eq!((issue.status, issue.retry_count), (Status::Done, 0));
    let review = review_turn(&p.store, &outcome.run_id, "DEMO-1").await;
    assert_eq!(review.turn.status, "complete");
    let steps = &review.turn.steps;
    assert_eq!(steps.len(), 2, "{steps:?}");
    let error = steps[0].result.as_ref().and_then(|r| r.error()).unwrap();
    assert!(error.contains("cannot list 'hello.py'"), "{error}");
    let told = steps[0].correction.as_deref().unwrap();
    assert!(
        told.contains("Step 2: reply with one tool call: update_issue_status (status: done or in_progress with a comment saying why)"),
        "{told}"
    );
    let events = p
        .store
        .list_events(Some(&outcome.run_id), 0, 1000)
        .await
        .unwrap();
    assert!(events.iter().any(|e| matches!(
        e.event,
        orket_core::Event::StepCorrected {
            kind: orket_core::events::CorrectionKind::ToolFailed,
            ..
        }
    )));
    assert!(!events
        .iter()
        .any(|e| e.event.name() == "turn_failed"
            || e.event.name() == "policy_violation_report_saved"));
}

#[tokio::test(flavor = "multi_thread")]
async fn work_that_never_passes_its_fixture_is_sent_back_until_its_retries_are_spent() {
    // max_retries 3: four attempts, each written, handed over, refused done and sent back.
    let mut replies = Vec::new();
    for _ in 0..4 {
        replies.extend(write_and_review("DEMO-1", "hello.py", "print(1)\n"));
    }
    replies.extend(write_and_review("DEMO-2", "README.md", "# r\n"));
    replies.extend(write_and_review("DEMO-3", "NOTES.md", "n\n"));
    let (p, engine, _bus) = project_with(&replies, with_hello_fixture, |_| {}).await;
    let outcome = engine.run_card("hello_cli").await.unwrap().remove(0);
    assert_eq!(outcome.status, RunStatus::Stalled, "{:?}", outcome.reason);
    let issue = stored(&p, "DEMO-1").await;
    assert_eq!(
        (issue.status, issue.wait_reason, issue.retry_count),
        (Status::Blocked, Some(orket_core::WaitReason::System), 4)
    );
    let names = event_names(&p.store, &outcome.run_id).await;
    let count = |name: &str| names.iter().filter(|n| *n == name).count();
    assert_eq!(count("done_refused"), 4);
    assert_eq!(count("retry_triggered"), 3);
    assert_eq!(count("catastrophic_failure"), 1);
    let comments = p
        .store
        .list_comments("build-hello_cli", "DEMO-1")
        .await
        .unwrap();
    assert!(comments.iter().any(|c| c.content
        == "catastrophic: 4 failed attempts (max_retries 3); last error: the verification failed and the work was sent back"));
}

#[tokio::test(flavor = "multi_thread")]
async fn a_review_accepts_done_when_the_verification_passes() {
    let mut replies = all_replies();
    replies.splice(
        0..2,
        write_and_review("DEMO-1", "hello.py", "print(\"Hello, Orket!\")\n"),
    );
    let (p, engine, _bus) = project_with(&replies, with_hello_fixture, |_| {}).await;
    let outcome = engine.run_card("hello_cli").await.unwrap().remove(0);
    assert_eq!(outcome.status, RunStatus::Completed, "{:?}", outcome.reason);

    let issue = stored(&p, "DEMO-1").await;
    assert_eq!(issue.status, Status::Done);
    let last_run = &issue.verification["last_run"];
    assert_eq!(last_run["ok"], json!(true), "{last_run:#}");
    assert_eq!(
        (last_run["passed"].as_u64(), last_run["total"].as_u64()),
        (Some(1), Some(1))
    );
    let comments = p
        .store
        .list_comments("build-hello_cli", "DEMO-1")
        .await
        .unwrap();
    assert!(
        comments.iter().any(|c| c.author == "orket"
            && c.content
                .contains("verification/test_hello.py: PASSED (1/1 scenarios passed")),
        "{comments:#?}"
    );
    // The reviewer saw the result in its prompt.
    let review = review_turn(&p.store, &outcome.run_id, "DEMO-1").await;
    assert!(
        review.turn.messages.to_string().contains("VERIFICATION:"),
        "{}",
        review.turn.messages
    );
    let events = event_names(&p.store, &outcome.run_id).await;
    for name in ["verification_started", "verification_completed"] {
        assert_eq!(
            events.iter().filter(|e| *e == name).count(),
            1,
            "{name}: {events:?}"
        );
    }
    // Issues without a fixture are not verified.
    let other = stored(&p, "DEMO-3").await;
    assert_eq!(other.verification, serde_json::Value::Null);
}

#[tokio::test(flavor = "multi_thread")]
async fn a_failing_verification_refuses_done_and_sends_the_issue_back() {
    // The developer writes the wrong greeting and the reviewer still says done: refused, the
    // issue goes back to the developer with the failure, who fixes it; then done is accepted.
    let mut replies = all_replies();
    replies.extend(write_and_review(
        "DEMO-1",
        "hello.py",
        "print(\"Hello, Orket!\")\n",
    ));
    let (p, engine, _bus) = project_with(&replies, with_hello_fixture, |_| {}).await;
    let outcome = engine.run_card("hello_cli").await.unwrap().remove(0);
    assert_eq!(outcome.status, RunStatus::Completed, "{:?}", outcome.reason);

    let issue = stored(&p, "DEMO-1").await;
    assert_eq!(issue.status, Status::Done);
    let comments = p
        .store
        .list_comments("build-hello_cli", "DEMO-1")
        .await
        .unwrap();
    assert!(
        comments.iter().any(|c| c
            .content
            .contains("FAILED (0/1 scenarios passed, 1 failed)")
            && c.content
                .contains("expected \"print(\\\"Hello, Orket!\\\")\", got \"print(1)\"")),
        "{comments:#?}"
    );
    assert!(
        comments.iter().any(|c| c.author == "orket"
            && c.content.starts_with("VERIFICATION_FAILED")
            && c.content.ends_with("Sent back to the developer.")),
        "{comments:#?}"
    );
    // The first review's done was refused (recorded in its results), the second passed.
    let turns = p.store.list_turns(&outcome.run_id).await.unwrap();
    let reviews: Vec<_> = turns
        .iter()
        .filter(|t| t.turn.review && t.turn.issue_id == "DEMO-1")
        .collect();
    assert_eq!(reviews.len(), 2);
    assert_eq!(
        reviews[0].turn.tool_results[0].code(),
        Some(orket_core::RefusalCode::VerificationFailed),
        "{:?}",
        reviews[0].turn.tool_results
    );
    assert_eq!(issue.verification["last_run"]["ok"], json!(true));
    // The audit trail: code_review -> in_progress by the reviewer, then done.
    let moves: Vec<(Option<Status>, Option<Status>, String)> = p
        .store
        .list_card_transactions("build-hello_cli", "DEMO-1")
        .await
        .unwrap()
        .into_iter()
        .map(|t| (t.from_status, t.to_status, t.role))
        .collect();
    assert!(
        moves.contains(&(
            Some(Status::CodeReview),
            Some(Status::InProgress),
            "integrity_guard".to_string()
        )),
        "{moves:?}"
    );
    let events = event_names(&p.store, &outcome.run_id).await;
    assert_eq!(
        events.iter().filter(|e| *e == "done_refused").count(),
        1,
        "{events:?}"
    );
    // Not a policy violation: no report, the issue was never blocked.
    assert!(!p
        .root
        .join("workspace/hello_cli/agent_output/policy_violation_DEMO-1.json")
        .exists());
    assert!(
        !moves.iter().any(|m| m.1 == Some(Status::Blocked)),
        "{moves:?}"
    );
}

#[tokio::test(flavor = "multi_thread")]
async fn an_agent_cannot_rewrite_its_fixture() {
    // The developer tries to make the verification pass by editing the fixture.
    let replies = insist(
        "DEMO-1",
        "coder",
        json!([{"tool": "write_file", "args": {"path": "verification/test_hello.py",
                "content": "def verify(_):\n    return 'print(\"Hello, Orket!\")'\n"}}]),
        OFFENCES,
    );
    let (p, engine, _bus) = project_with(&replies, with_hello_fixture, |_| {}).await;
    let fixture = p
        .root
        .join("workspace/hello_cli/verification/test_hello.py");
    let before = std::fs::read_to_string(&fixture).unwrap();
    let outcome = engine.run_card("DEMO-1").await.unwrap().remove(0);
    assert_ne!(outcome.status, RunStatus::Completed);
    assert_eq!(std::fs::read_to_string(&fixture).unwrap(), before);
    let issue = stored(&p, "DEMO-1").await;
    assert_eq!(issue.status, Status::Blocked);
    let turns = p.store.list_turns(&outcome.run_id).await.unwrap();
    let error = turns[0].turn.error.as_deref().unwrap();
    assert!(error.starts_with("PATH_PROTECTED"), "{error}");
    assert!(error.contains("verification/"), "{error}");
}

/// Sets the demo epic's `params`.
fn set_epic_params(root: &Path, params: serde_json::Value) {
    let path = root.join("model/core/epics/hello_cli.json");
    let mut epic: serde_json::Value =
        serde_json::from_str(&std::fs::read_to_string(&path).unwrap()).unwrap();
    epic["params"] = params;
    std::fs::write(&path, epic.to_string()).unwrap();
}

#[tokio::test(flavor = "multi_thread")]
async fn an_epic_that_asks_for_a_sandbox_records_a_failed_deploy_at_review_and_completes() {
    // No docker engine is reachable: the deploy (when the first issue reaches code_review,
    // the default sandbox policy) must fail cleanly, the run still completes.
    std::env::set_var("DOCKER_HOST", "unix:///nonexistent/orket-test/docker.sock");
    let (p, engine, _bus) = project_with(
        &all_replies(),
        |root| {
            set_epic_params(
                root,
                json!({"sandbox": true, "stack": "fastapi-react-postgres"}),
            )
        },
        |_| {},
    )
    .await;
    let outcome = engine.run_card("hello_cli").await.unwrap().remove(0);
    assert_eq!(outcome.status, RunStatus::Completed, "{:?}", outcome.reason);
    let sandboxes = p.store.list_sandboxes().await.unwrap();
    assert_eq!(sandboxes.len(), 1, "{sandboxes:#?}");
    let sandbox = &sandboxes[0];
    assert_eq!(sandbox.status, orket_store::SandboxStatus::Failed);
    assert_eq!(sandbox.run_id.as_deref(), Some(outcome.run_id.as_str()));
    assert_eq!(sandbox.stack, "fastapi-react-postgres");
    assert!(!sandbox.reason.as_deref().unwrap_or_default().is_empty());
    assert!(sandbox
        .compose_file
        .starts_with(&p.root.join(".orket/sandboxes").display().to_string()));
    let events = event_names(&p.store, &outcome.run_id).await;
    let created = events.iter().position(|e| e == "sandbox_created").unwrap();
    let failed = events
        .iter()
        .position(|e| e == "sandbox_deploy_failed")
        .unwrap();
    assert!(created < failed && failed < events.len() - 1, "{events:?}");
    // At review, while the run goes on: the review turn comes after the deploy.
    let last_turn = events.iter().rposition(|e| e == "turn_start").unwrap();
    assert!(failed < last_turn, "{events:?}");
    assert_eq!(events.last().map(String::as_str), Some("session_end"));
    // The run's log has them too.
    let log = std::fs::read_to_string(p.root.join("workspace/hello_cli/orket.log")).unwrap();
    assert!(log.contains("\"sandbox_deploy_failed\""));
}

#[tokio::test(flavor = "multi_thread")]
async fn sandboxes_are_opt_in_and_need_a_stack() {
    let (p, engine, _bus) = project_with(
        &all_replies(),
        |root| set_epic_params(root, json!({"sandbox": true})),
        |_| {},
    )
    .await;
    let outcome = engine.run_card("hello_cli").await.unwrap().remove(0);
    assert_eq!(outcome.status, RunStatus::Completed);
    assert!(p.store.list_sandboxes().await.unwrap().is_empty());
    let failed: Vec<_> = p
        .store
        .list_events(Some(&outcome.run_id), 0, 1000)
        .await
        .unwrap()
        .into_iter()
        .filter(|e| e.event == "sandbox_deploy_failed")
        .collect();
    assert_eq!(failed.len(), 1);
    assert!(failed[0].event.data()["reason"]
        .as_str()
        .unwrap()
        .contains("no params.stack"));

    // Without params.sandbox nothing is deployed.
    let (p, engine, _bus) = project(&all_replies()).await;
    let outcome = engine.run_card("hello_cli").await.unwrap().remove(0);
    assert_eq!(outcome.status, RunStatus::Completed);
    assert!(p.store.list_sandboxes().await.unwrap().is_empty());
    assert!(!event_names(&p.store, &outcome.run_id)
        .await
        .iter()
        .any(|e| e.starts_with("sandbox_")));
}

#[tokio::test(flavor = "multi_thread")]
async fn a_model_that_never_calls_a_tool_is_corrected_retried_then_blocked() {
    // Each turn: the first reply and two corrections; four turns (max_retries 3).
    let replies: Vec<String> = (0..12)
        .map(|_| json!({"issue_id": "DEMO-1", "role": "coder", "content": "I think we should write some code."}).to_string())
        .collect();
    let (p, engine, _bus) = project(&replies).await;
    let outcome = engine.run_card("DEMO-1").await.unwrap().remove(0);
    assert_eq!(outcome.status, RunStatus::Stalled, "{:?}", outcome.reason);
    let reason = outcome.reason.unwrap();
    assert!(reason.contains("DEMO-1: blocked (system)"), "{reason}");
    let issue = stored(&p, "DEMO-1").await;
    assert_eq!((issue.status, issue.retry_count), (Status::Blocked, 4));
    let events = p
        .store
        .list_events(Some(&outcome.run_id), 0, 1000)
        .await
        .unwrap();
    let corrections: Vec<_> = events
        .iter()
        .filter_map(|e| match &e.event {
            orket_core::Event::StepCorrected { kind, message, .. } => {
                Some((*kind, message.clone()))
            }
            _ => None,
        })
        .collect();
    assert_eq!(corrections.len(), 8, "two per turn: {corrections:?}");
    assert!(corrections.iter().all(
        |(k, m)| *k == orket_core::events::CorrectionKind::NoCall && m.contains("no tool call")
    ));
    // The correction the model read says what is legal now.
    let turns = p.store.list_turns(&outcome.run_id).await.unwrap();
    let told = turns[0].turn.steps[1].prompt[0].content.clone();
    assert!(
        told.starts_with("Step 1 went wrong: the reply held no tool call.")
            && told.contains("Step 2: reply with one tool call: write_file."),
        "{told}"
    );
    assert!(p.store.list_success(None).await.unwrap().is_empty());
}

#[tokio::test(flavor = "multi_thread")]
async fn a_path_escape_blocks_only_its_issue_and_leaves_a_report() {
    let mut replies = insist(
        "DEMO-3",
        "coder",
        json!({"tool": "write_file", "args": {"path": "../escape.txt", "content": "x"}}),
        OFFENCES,
    );
    replies.extend(write_and_review("DEMO-1", "hello.py", "print(1)\n"));
    replies.extend(write_and_review("DEMO-2", "README.md", "# r\n"));
    let (p, engine, _bus) = project(&replies).await;
    let outcome = engine.run_card("hello_cli").await.unwrap().remove(0);
    assert_eq!(outcome.status, RunStatus::Stalled);
    assert!(
        outcome
            .reason
            .as_deref()
            .unwrap()
            .contains("DEMO-3: blocked (system)"),
        "{:?}",
        outcome.reason
    );
    let status = |id: &str| {
        let store = Arc::clone(&p.store);
        let id = id.to_string();
        async move {
            store
                .get_issue("build-hello_cli", &id)
                .await
                .unwrap()
                .unwrap()
                .status
        }
    };
    assert_eq!(status("DEMO-1").await, Status::Done);
    assert_eq!(status("DEMO-2").await, Status::Done);
    assert_eq!(status("DEMO-3").await, Status::Blocked);
    let ws = p.root.join("workspace/hello_cli");
    assert!(!p.root.join("workspace/escape.txt").exists());
    let report: serde_json::Value = serde_json::from_str(
        &std::fs::read_to_string(ws.join("agent_output/policy_violation_DEMO-3.json")).unwrap(),
    )
    .unwrap();
    assert_eq!(report["code"], "PATH_ESCAPE");
    let comments = p
        .store
        .list_comments("build-hello_cli", "DEMO-3")
        .await
        .unwrap();
    assert!(
        comments
            .iter()
            .any(|c| c.content.starts_with("Blocked by the gate: PATH_ESCAPE")),
        "{comments:?}"
    );
}

/// Every refusal class blocks only its issue, leaves a report with its code, and the
/// independent issue of the epic still finishes.
#[tokio::test(flavor = "multi_thread")]
async fn each_refusal_class_blocks_only_its_issue() {
    let outside = tempfile::tempdir().unwrap();
    let outside_file = outside.path().join("x.txt");
    let classes: Vec<(&str, serde_json::Value)> = vec![
        (
            "PATH_ESCAPE",
            json!({"tool": "write_file", "args": {"path": "../x.txt", "content": "x"}}),
        ),
        (
            "PATH_ESCAPE",
            json!({"tool": "write_file", "args": {"path": outside_file.to_str().unwrap(), "content": "x"}}),
        ),
        (
            "PATH_ESCAPE",
            json!({"tool": "write_file", "args": {"path": "link/x.txt", "content": "x"}}),
        ),
        (
            "ILLEGAL_TRANSITION",
            json!({"tool": "update_issue_status", "args": {"status": "done"}}),
        ),
        (
            "UNKNOWN_TOOL",
            json!({"tool": "launch_missiles", "args": {}}),
        ),
        (
            "ROLE_TOOL",
            json!({"tool": "delete_file", "args": {"path": "hello.py", "confirm": true}}),
        ),
        (
            "WAIT_REASON_REQUIRED",
            json!({"tool": "update_issue_status", "args": {"status": "blocked"}}),
        ),
    ];
    for (code, call) in classes {
        let mut replies = insist("DEMO-1", "coder", call.clone(), OFFENCES);
        replies.extend(write_and_review("DEMO-3", "NOTES.md", "notes\n"));
        let (p, engine, _bus) = project(&replies).await;
        let ws = p.root.join("workspace/hello_cli");
        std::fs::create_dir_all(&ws).unwrap();
        std::os::unix::fs::symlink(outside.path(), ws.join("link")).unwrap();

        let outcome = engine.run_card("hello_cli").await.unwrap().remove(0);
        assert_eq!(
            outcome.status,
            RunStatus::Stalled,
            "{code}: {:?}",
            outcome.reason
        );
        let issue = |id: &'static str| {
            let store = Arc::clone(&p.store);
            async move {
                store
                    .get_issue("build-hello_cli", id)
                    .await
                    .unwrap()
                    .unwrap()
            }
        };
        assert_eq!(issue("DEMO-1").await.status, Status::Blocked, "{code}");
        assert_eq!(
            issue("DEMO-3").await.status,
            Status::Done,
            "{code}: the other issue must finish"
        );
        assert_eq!(
            issue("DEMO-2").await.status,
            Status::Ready,
            "{code}: waits on DEMO-1"
        );
        let report: serde_json::Value = serde_json::from_str(
            &std::fs::read_to_string(ws.join("agent_output/policy_violation_DEMO-1.json")).unwrap(),
        )
        .unwrap();
        assert_eq!(report["code"], code, "{call}");
        assert!(
            !outside_file.exists(),
            "{code}: nothing may be written outside"
        );
        let reason = outcome.reason.unwrap();
        assert!(
            reason.contains("DEMO-1: blocked (system)")
                && reason.contains("DEMO-2: waiting on DEMO-1 (blocked)"),
            "{reason}"
        );
    }
}

#[tokio::test(flavor = "multi_thread")]
async fn provider_failures_are_retried_then_catastrophic_fails_the_run() {
    // No recorded reply for DEMO-1: every model call fails.
    let (p, engine, _bus) = project(&[]).await;
    let outcome = engine.run_card("DEMO-1").await.unwrap().remove(0);
    assert_eq!(outcome.status, RunStatus::Failed);
    assert!(
        outcome
            .reason
            .as_deref()
            .unwrap()
            .contains("DEMO-1 failed 4 times (catastrophic)"),
        "{:?}",
        outcome.reason
    );
    let issue = p
        .store
        .get_issue("build-hello_cli", "DEMO-1")
        .await
        .unwrap()
        .unwrap();
    assert_eq!((issue.status, issue.retry_count), (Status::Blocked, 4));
    let events: Vec<String> = p
        .store
        .list_events(Some(&outcome.run_id), 0, 1000)
        .await
        .unwrap()
        .into_iter()
        .map(|e| e.event.name().to_string())
        .collect();
    assert_eq!(events.iter().filter(|e| *e == "retry_triggered").count(), 3);
    assert_eq!(
        events
            .iter()
            .filter(|e| *e == "catastrophic_failure")
            .count(),
        1
    );
    let turns = p.store.list_turns(&outcome.run_id).await.unwrap();
    assert_eq!(turns.len(), 4);
    assert!(turns.iter().all(|t| t.turn.status == "failed"
        && t.turn.error.as_deref().unwrap().contains("no more replies")));
}

#[tokio::test(flavor = "multi_thread")]
async fn a_reviewer_that_never_decides_is_retried_then_blocked() {
    let mut replies = vec![reply(
        "DEMO-1",
        "coder",
        json!([{"tool": "write_file", "args": {"path": "hello.py", "content": "print(1)\n"}}, {"tool": "update_issue_status", "args": {"status": "code_review"}}]),
    )];
    for n in 0..30 {
        replies.push(reply("DEMO-1", "integrity_guard", json!({"tool": "add_issue_comment", "args": {"comment": format!("still reading ({n})")}})));
    }
    let (p, engine, _bus) = project(&replies).await;
    let outcome = engine.run_card("DEMO-1").await.unwrap().remove(0);
    assert_eq!(outcome.status, RunStatus::Stalled, "{:?}", outcome.reason);
    assert!(outcome
        .reason
        .as_deref()
        .unwrap()
        .contains("DEMO-1: blocked (system)"));
    let issue = stored(&p, "DEMO-1").await;
    assert_eq!((issue.status, issue.retry_count), (Status::Blocked, 4));
    let turns = p.store.list_turns(&outcome.run_id).await.unwrap();
    let reviews: Vec<_> = turns.iter().filter(|t| t.turn.review).collect();
    assert_eq!(reviews.len(), 4);
    for review in &reviews {
        // Two comments (a review looks twice at most), then only a decision is offered: the
        // next two comments are corrected, the third ends the turn.
        let steps = &review.turn.steps;
        assert_eq!(steps.len(), 5, "{steps:?}");
        assert!(steps[..2].iter().all(|s| s.correction.is_none()));
        for step in &steps[2..4] {
            assert!(
                step.correction.as_deref().unwrap().contains(
                    "add_issue_comment is not offered at this step (offered: update_issue_status)"
                ),
                "{step:?}"
            );
        }
    }
    let failed = p
        .store
        .list_events(Some(&outcome.run_id), 0, 1000)
        .await
        .unwrap()
        .into_iter()
        .filter(|e| {
            matches!(
                e.event,
                orket_core::Event::TurnFailed {
                    kind: orket_core::events::TurnFailure::Steps,
                    code: Some(orket_core::RefusalCode::ToolBudget),
                    ..
                }
            )
        })
        .count();
    assert_eq!(failed, 4);
}

#[tokio::test(flavor = "multi_thread")]
async fn independent_issues_overlap_and_dependencies_wait() {
    let mut replies = Vec::new();
    replies.extend(write_and_review("DEMO-1", "hello.py", "print(1)\n"));
    replies.extend(write_and_review("DEMO-2", "README.md", "# r\n"));
    replies.extend(write_and_review("DEMO-3", "NOTES.md", "n\n"));
    let dir = tempfile::tempdir().unwrap();
    let root = dir.path().join("project");
    copy_dir(
        &PathBuf::from(env!("CARGO_MANIFEST_DIR")).join("../../demo"),
        &root,
    );
    without_fixtures(&root);
    let replay = ReplayProvider::from_jsonl("replay.jsonl", &replies.join("\n"))
        .unwrap()
        .with_delay(std::time::Duration::from_millis(150));
    let store: Arc<dyn Store> = Arc::new(
        SqliteStore::open(&root.join(".orket/orket.db"))
            .await
            .unwrap(),
    );
    let engine = orket_engine::Engine::new(
        AssetTree::new(&root),
        Arc::clone(&store),
        EventBus::default(),
    );
    let outcome = engine
        .run("hello_cli", RunOptions::new(Arc::new(replay)))
        .await
        .unwrap()
        .remove(0);
    assert_eq!(outcome.status, RunStatus::Completed);

    let turns = store.list_turns(&outcome.run_id).await.unwrap();
    let span = |issue: &str, review: bool| {
        let t = turns
            .iter()
            .find(|t| t.turn.issue_id == issue && t.turn.review == review)
            .unwrap();
        (t.turn.started_at.clone(), t.turn.ended_at.clone())
    };
    // Measured parallelism: the most turns in flight at one instant.
    let mut edges: Vec<(String, i32)> = turns
        .iter()
        .flat_map(|t| {
            [
                (t.turn.started_at.clone(), 1),
                (t.turn.ended_at.clone(), -1),
            ]
        })
        .collect();
    edges.sort_by(|a, b| a.0.cmp(&b.0).then(a.1.cmp(&b.1)));
    let (mut now, mut peak) = (0, 0);
    for (_, d) in edges {
        now += d;
        peak = peak.max(now);
    }
    assert!(peak > 1, "independent DEMO-1 and DEMO-3 should overlap");
    // DEMO-2 starts only after DEMO-1's review ended.
    assert!(span("DEMO-2", false).0 >= span("DEMO-1", true).1);
}

#[tokio::test(flavor = "multi_thread")]
async fn a_rock_runs_its_epics_in_their_own_workspaces_and_builds() {
    let (p, engine, _bus) = project(&all_replies()).await;
    let outcomes = engine.run_card("demo_launch").await.unwrap();
    assert_eq!(outcomes.len(), 1);
    assert_eq!(outcomes[0].status, RunStatus::Completed);
    assert!(p
        .root
        .join("workspace/demo_launch/hello_cli/hello.py")
        .is_file());
    let run = p.store.get_run(&outcomes[0].run_id).await.unwrap().unwrap();
    assert_eq!(run.kind, orket_core::RunKind::Rock);
    assert_eq!(
        p.store
            .get_build("rock-build-demo_launch")
            .await
            .unwrap()
            .unwrap()
            .status,
        Status::Done
    );
}

#[tokio::test(flavor = "multi_thread")]
async fn a_rerun_continues_the_build_and_reset_starts_over() {
    let (p, engine, _bus) = project(&all_replies()).await;
    assert_eq!(
        engine.run_card("hello_cli").await.unwrap()[0].status,
        RunStatus::Completed
    );
    // Continuing: everything is done, so the next run completes with no turn.
    let again = engine.run_card("hello_cli").await.unwrap().remove(0);
    assert_eq!((again.status, again.turns), (RunStatus::Completed, 0));
    // --reset seeds the build again from the files: the work is redone.
    let (reset_engine, _) = engine_for(&p.root, &p.store, &all_replies(), |o| {
        o.reset = true;
    });
    let redo = reset_engine.run_card("hello_cli").await.unwrap().remove(0);
    assert_eq!((redo.status, redo.turns), (RunStatus::Completed, 6));
    // A targeted reset resets only the target.
    let (target_engine, _) = engine_for(
        &p.root,
        &p.store,
        &write_and_review("DEMO-3", "NOTES.md", "again\n"),
        |o| {
            o.reset = true;
        },
    );
    let one = target_engine.run_card("DEMO-3").await.unwrap().remove(0);
    assert_eq!((one.status, one.turns), (RunStatus::Completed, 2));
    assert_eq!(
        std::fs::read_to_string(p.root.join("workspace/hello_cli/NOTES.md")).unwrap(),
        "again\n"
    );
    assert_eq!(
        p.store
            .get_issue("build-hello_cli", "DEMO-1")
            .await
            .unwrap()
            .unwrap()
            .status,
        Status::Done
    );
}

#[tokio::test(flavor = "multi_thread")]
async fn an_epic_over_the_idesign_threshold_is_refused() {
    let (_p, engine, _bus) = project_with(
        &[],
        |root| {
            let path = root.join("config/organization.json");
            let mut org: serde_json::Value =
                serde_json::from_str(&std::fs::read_to_string(&path).unwrap()).unwrap();
            org["architecture"]["idesign_threshold"] = json!(2);
            std::fs::write(&path, org.to_string()).unwrap();
        },
        |_| {},
    )
    .await;
    let err = engine.run_card("hello_cli").await.unwrap_err().to_string();
    assert!(
        err.contains("has 3 issues, more than the iDesign threshold of 2"),
        "{err}"
    );
}

#[tokio::test(flavor = "multi_thread")]
async fn halt_on_violation_fails_the_run_at_the_first_violation() {
    // Strict: the first refusal is not corrected, it fails the run.
    let mut replies = vec![reply(
        "DEMO-1",
        "coder",
        json!({"tool": "write_file", "args": {"path": "../x", "content": "x"}}),
    )];
    replies.extend(write_and_review("DEMO-3", "NOTES.md", "n\n"));
    let (_p, engine, _bus) = project_with(
        &replies,
        |root| set_rule(root, "halt_on_violation", json!(true)),
        |o| {
            o.concurrency = 1;
        },
    )
    .await;
    let outcome = engine.run_card("hello_cli").await.unwrap().remove(0);
    assert_eq!(outcome.status, RunStatus::Failed);
    assert!(
        outcome
            .reason
            .as_deref()
            .unwrap()
            .starts_with("halt_on_violation: DEMO-1 violated policy (PATH_ESCAPE"),
        "{:?}",
        outcome.reason
    );
}

#[tokio::test(flavor = "multi_thread")]
async fn a_tool_that_needs_approval_parks_the_issue_waiting_for_a_person() {
    let replies = vec![reply(
        "DEMO-1",
        "coder",
        json!({"tool": "write_file", "args": {"path": "hello.py", "content": "x"}}),
    )];
    let (p, engine, _bus) = project_with(
        &replies,
        |root| set_rule(root, "approval_required", json!(["write_file"])),
        |_| {},
    )
    .await;
    let outcome = engine.run_card("DEMO-1").await.unwrap().remove(0);
    assert_eq!(outcome.status, RunStatus::Stalled);
    let issue = p
        .store
        .get_issue("build-hello_cli", "DEMO-1")
        .await
        .unwrap()
        .unwrap();
    assert_eq!(
        (issue.status, issue.wait_reason),
        (
            Status::WaitingForDeveloper,
            Some(orket_core::WaitReason::Input)
        )
    );
    assert!(
        !p.root.join("workspace/hello_cli/hello.py").exists(),
        "nothing runs before approval"
    );
}

#[tokio::test(flavor = "multi_thread")]
async fn budgets_end_the_run_as_budget_exceeded() {
    let (_p, engine, _bus) = project_with(
        &all_replies(),
        |_| {},
        |o| {
            o.token_budget = Some(100);
        },
    )
    .await;
    let outcome = engine.run_card("hello_cli").await.unwrap().remove(0);
    assert_eq!(outcome.status, RunStatus::BudgetExceeded);
    assert!(
        outcome
            .reason
            .as_deref()
            .unwrap()
            .starts_with("token budget of 100 exceeded"),
        "{:?}",
        outcome.reason
    );
}

#[tokio::test(flavor = "multi_thread")]
async fn history_window_and_remembered_decisions_reach_the_prompt() {
    // Two reviews send the work back, the third accepts it: six turns of DEMO-1.
    let write = json!([{"tool": "write_file", "args": {"path": "hello.py", "content": "print(1)\n"}}, {"tool": "update_issue_status", "args": {"status": "code_review"}}]);
    let mut replies = Vec::new();
    for n in 0..2 {
        replies.push(reply("DEMO-1", "coder", write.clone()));
        replies.push(reply("DEMO-1", "integrity_guard", json!({"tool": "update_issue_status", "args": {"status": "in_progress", "comment": format!("We decided on Python 3 only, review {n}")}})));
    }
    replies.push(reply("DEMO-1", "coder", write));
    replies.push(reply(
        "DEMO-1",
        "integrity_guard",
        json!({"tool": "update_issue_status", "args": {"status": "done"}}),
    ));
    let (p, engine, _bus) = project_with(
        &replies,
        |_| {},
        |o| {
            o.context_window = 2;
        },
    )
    .await;
    let outcome = engine.run_card("DEMO-1").await.unwrap().remove(0);
    assert_eq!(outcome.status, RunStatus::Completed, "{:?}", outcome.reason);
    let turns = p.store.list_turns(&outcome.run_id).await.unwrap();
    assert_eq!(turns.len(), 6);
    let last = &turns.last().unwrap().turn;
    let messages = last.messages.as_array().unwrap();
    let assistants = messages.iter().filter(|m| m["role"] == "assistant").count();
    assert_eq!(assistants, 2, "ORKET_CONTEXT_WINDOW limits the history");
    let system = messages[0]["content"].as_str().unwrap();
    assert!(
        system.contains("### PROJECT CONTEXT (PAST DECISIONS)"),
        "{system}"
    );
    assert!(system.contains("We decided on Python 3 only"), "{system}");
    let user = messages[1]["content"].as_str().unwrap();
    assert!(user.contains("RECENT COMMENTS:"), "{user}");
    assert!(
        user.contains("We decided on Python 3 only, review 1"),
        "{user}"
    );
}

/// One thread: the spawned run cannot start before the halt is raised (the handle raises it
/// before its first await).
#[tokio::test]
async fn a_run_halted_at_once_starts_no_turn_and_ends_canceled_under_the_chosen_id() {
    let (p, engine, _bus) = project_with(
        &all_replies(),
        |_| {},
        |o| {
            o.run_id = Some("feed0001".to_string());
        },
    )
    .await;
    assert_eq!(
        engine.resolve("DEMO-2"),
        Some(Target::Issue {
            epic: "hello_cli".to_string()
        })
    );
    assert_eq!(engine.resolve("nope"), None);
    let handle = engine.spawn("hello_cli", engine.options.clone()).unwrap();
    assert_eq!(handle.id(), "feed0001");
    handle.halt().await.unwrap();
    let outcome = handle.join().await.unwrap().remove(0);
    assert_eq!(outcome.run_id, "feed0001");
    assert_eq!(
        (outcome.status, outcome.reason.as_deref(), outcome.turns),
        (RunStatus::Canceled, Some("halted by a person"), 0)
    );
    let run = p.store.get_run("feed0001").await.unwrap().unwrap();
    assert_eq!(run.status, RunStatus::Canceled);
    let events = p.store.list_events(Some("feed0001"), 0, 100).await.unwrap();
    let names: Vec<&str> = events.iter().map(|e| e.event.name()).collect();
    assert_eq!(names, ["session_start", "session_end"]);
}

#[tokio::test(flavor = "multi_thread")]
async fn an_approved_call_runs_and_a_rejected_one_resets_the_issue() {
    use orket_engine::approval::ApprovalDecision;
    let replies = vec![
        reply(
            "DEMO-1",
            "coder",
            json!({"tool": "write_file", "args": {"path": "hello.py", "content": "x\n"}}),
        ),
        reply(
            "DEMO-3",
            "coder",
            json!({"tool": "write_file", "args": {"path": "NOTES.md", "content": "n\n"}}),
        ),
    ];
    let (p, engine, _bus) = project_with(
        &replies,
        |root| set_rule(root, "approval_required", json!(["write_file"])),
        |_| {},
    )
    .await;
    let outcome = engine.run_card("hello_cli").await.unwrap().remove(0);
    assert_eq!(outcome.status, RunStatus::Stalled);
    let mut approvals = p.store.list_approvals(Some(&outcome.run_id)).await.unwrap();
    assert_eq!(approvals.len(), 2);
    // The two developer turns ran concurrently: take the approvals by issue.
    approvals.sort_by(|a, b| a.call.issue_id.cmp(&b.call.issue_id));
    assert_eq!(approvals[0].call.issue_id, "DEMO-1");
    assert_eq!(approvals[1].call.issue_id, "DEMO-3");
    assert_eq!(approvals[0].call.resume_status, Status::InProgress);
    let approved = engine
        .decide_approval(approvals[0].id, ApprovalDecision::Approve)
        .await
        .unwrap();
    assert_eq!(approved.status, "approved");
    assert_eq!(
        std::fs::read_to_string(p.root.join("workspace/hello_cli/hello.py")).unwrap(),
        "x\n"
    );
    let issue = |id: &'static str| {
        let store = Arc::clone(&p.store);
        async move {
            store
                .get_issue("build-hello_cli", id)
                .await
                .unwrap()
                .unwrap()
        }
    };
    assert_eq!(
        (
            issue("DEMO-1").await.status,
            issue("DEMO-1").await.wait_reason
        ),
        (Status::InProgress, None)
    );
    let rejected = engine
        .decide_approval(
            approvals[1].id,
            ApprovalDecision::Reject {
                reason: Some("not now".to_string()),
            },
        )
        .await
        .unwrap();
    assert_eq!(
        (rejected.status.as_str(), rejected.reason.as_deref()),
        ("rejected", Some("not now"))
    );
    assert_eq!(issue("DEMO-3").await.status, Status::Ready);
    assert!(!p.root.join("workspace/hello_cli/NOTES.md").exists());
    // The decisions' status changes start from where the issues waited.
    let events = p
        .store
        .list_events(Some(&outcome.run_id), 0, 1000)
        .await
        .unwrap();
    let moves: Vec<(String, String, String)> = events
        .iter()
        .filter(|e| e.event == "status_change" && e.role.as_deref() == Some("person"))
        .map(|e| {
            (
                e.issue_id.clone().unwrap_or_default(),
                e.event.data()["from"]
                    .as_str()
                    .unwrap_or_default()
                    .to_string(),
                e.event.data()["to"]
                    .as_str()
                    .unwrap_or_default()
                    .to_string(),
            )
        })
        .collect();
    assert_eq!(
        moves,
        [
            (
                "DEMO-1".into(),
                "waiting_for_developer".into(),
                "in_progress".into()
            ),
            (
                "DEMO-3".into(),
                "waiting_for_developer".into(),
                "ready".into()
            ),
        ]
    );
    let err = engine
        .decide_approval(approvals[1].id, ApprovalDecision::Approve)
        .await
        .unwrap_err();
    assert!(err.to_string().contains("already rejected"), "{err}");
}

/// What kind of change each change of a batch is (`AppendEvent(turn_start)` as `turn_start`).
fn kinds(batch: &[orket_store::Change]) -> Vec<String> {
    use orket_store::Change;
    batch
        .iter()
        .map(|c| match c {
            Change::AppendEvent(e) => e.event.name().to_string(),
            Change::AppendTurn(t) => format!("turn #{} review={}", t.seq, t.review),
            Change::UpdateIssue { update, .. } if update.verification.is_some() => {
                "verification result".to_string()
            }
            Change::UpdateIssue { .. } => "issue update".to_string(),
            Change::AddComment { author, .. } => format!("comment by {author}"),
            other => format!("{other:?}")
                .split([' ', '(', '{'])
                .next()
                .unwrap_or("?")
                .to_string(),
        })
        .collect()
}

#[tokio::test(flavor = "multi_thread")]
async fn a_turn_commits_its_changes_events_and_verification_whole_or_not_at_all() {
    use orket_store::{Change, Intercept, StoreError};
    use std::sync::atomic::{AtomicBool, Ordering};
    use std::sync::Mutex;
    let replies = write_and_review("DEMO-1", "hello.py", "print(\"Hello, Orket!\")\n");
    let (p, _engine, _bus) = project_with(&replies, with_hello_fixture, |_| {}).await;
    // The store refuses every batch holding a review turn while `refuse` is set, and keeps a
    // record of the batches it let through.
    let refuse = Arc::new(AtomicBool::new(true));
    let batches: Arc<Mutex<Vec<Vec<String>>>> = Arc::default();
    let (refusing, seen) = (Arc::clone(&refuse), Arc::clone(&batches));
    let store: Arc<dyn Store> = Arc::new(Intercept::new(
        Arc::clone(&p.store),
        Box::new(move |batch| {
            let review = batch
                .iter()
                .any(|c| matches!(c, Change::AppendTurn(t) if t.review));
            if review && refusing.load(Ordering::SeqCst) {
                return Err(StoreError::Unexpected("the disk is full".to_string()));
            }
            seen.lock().unwrap().push(kinds(batch));
            Ok(())
        }),
    ));
    let (engine, _) = engine_for(&p.root, &store, &replies, |_| {});

    // The review's batch cannot commit: the run fails, and nothing of the review is stored —
    // no verification result, no comment, no event, no turn row, no status change.
    let err = engine.run_card("DEMO-1").await.unwrap_err().to_string();
    assert!(err.contains("the disk is full"), "{err}");
    let issue = stored(&p, "DEMO-1").await;
    assert_eq!(
        issue.status,
        Status::CodeReview,
        "the developer's turn stands"
    );
    assert!(
        issue.verification["last_run"].is_null(),
        "{:#}",
        issue.verification
    );
    let comments = p
        .store
        .list_comments("build-hello_cli", "DEMO-1")
        .await
        .unwrap();
    assert!(
        comments.iter().all(|c| !c.content.contains("Verification")),
        "{comments:?}"
    );
    let run = p.store.list_runs(1).await.unwrap().remove(0);
    assert_eq!(run.status, RunStatus::Failed);
    let turns = p.store.list_turns(&run.id).await.unwrap();
    assert_eq!(turns.len(), 1, "only the developer's turn");
    let names = event_names(&p.store, &run.id).await;
    for absent in ["verification_started", "verification_completed"] {
        assert!(
            !names.contains(&absent.to_string()),
            "{absent} in {names:?}"
        );
    }
    assert_eq!(
        names.iter().filter(|n| *n == "turn_start").count(),
        1,
        "the review's turn_start went with its batch: {names:?}"
    );

    // Each turn is one batch: the developer's holds its dispatch, start, status changes and
    // row together.
    let developer = batches
        .lock()
        .unwrap()
        .iter()
        .find(|b| b.contains(&"turn #1 review=false".to_string()))
        .cloned()
        .unwrap();
    for part in [
        "orchestrator_dispatch",
        "turn_start",
        "status_change",
        "turn_complete",
    ] {
        assert!(
            developer.contains(&part.to_string()),
            "{part} in {developer:?}"
        );
    }

    // With the store working again, the next run's review (its reply given again: the failed
    // attempt used it) commits everything in one batch.
    refuse.store(false, Ordering::SeqCst);
    let (engine, _) = engine_for(&p.root, &store, &replies[1..], |_| {});
    let outcome = engine.run_card("DEMO-1").await.unwrap().remove(0);
    assert_eq!(outcome.status, RunStatus::Completed, "{:?}", outcome.reason);
    let review = batches
        .lock()
        .unwrap()
        .iter()
        .find(|b| b.iter().any(|k| k.ends_with("review=true")))
        .cloned()
        .unwrap();
    for part in [
        "orchestrator_dispatch",
        "turn_start",
        "verification_started",
        "verification result",
        "comment by orket",
        "verification_completed",
        "status_change",
        "turn_complete",
    ] {
        assert!(review.contains(&part.to_string()), "{part} in {review:?}");
    }
    let issue = stored(&p, "DEMO-1").await;
    assert_eq!(issue.status, Status::Done);
    assert_eq!(issue.verification["last_run"]["ok"], json!(true));
}

#[tokio::test(flavor = "multi_thread")]
async fn the_loops_lease_is_no_build_a_run_may_take() {
    let (_p, engine, _bus) = project(&all_replies()).await;
    let options = RunOptions {
        build: Some(orket_core::ids::LOOP_LEASE.to_string()),
        ..engine.options.clone()
    };
    let err = engine.core.run("hello_cli", options).await.unwrap_err();
    assert!(
        err.to_string()
            .contains("build \"loop\" is reserved for the organization loop's lease"),
        "{err}"
    );
}
