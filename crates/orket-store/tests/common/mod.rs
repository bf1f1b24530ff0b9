//! Helpers shared by the store's integration tests.
//!
//! The behaviour suite runs on every backend: a test takes a [`Backend`], one `rstest` case per
//! backend the build has (`#[case::sqlite(Backend::Sqlite)]` and, with the feature,
//! `#[cfg_attr(feature = "postgres", case::postgres(Backend::Postgres))]`), and opens its store
//! with [`temp_store`]. With the feature
//! `postgres`, each PostgreSQL case gets a database of its own on the test server
//! (`ORKET_TEST_POSTGRES_URL`, else the URL `bash .ci/postgres` wrote to `target/postgres-url`).
#![allow(dead_code)]

#[cfg(feature = "postgres")]
pub mod pg;

use orket_core::tools::{ToolCall, ToolResult};
use orket_core::turn::{Candidate, ChatMessage, TurnStep};
use orket_core::{Event, RunKind, RunStatus, Status, WaitReason};
use orket_store::{IssueRecord, NewEvent, NewTurn, RunRecord, SqliteStore, Store};
use rusqlite::Connection;
use serde_json::json;
use std::ops::Deref;
use std::path::{Path, PathBuf};
use std::sync::Arc;
use tempfile::TempDir;

/// Where a test's store lives.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Backend {
    /// A file in a temporary directory.
    Sqlite,
    /// A database of its own on the test PostgreSQL server.
    #[cfg(feature = "postgres")]
    Postgres,
}

/// A test's store and what keeps it alive (the directory, the database).
pub struct TestStore {
    store: Arc<dyn Store>,
    place: Place,
}

enum Place {
    Sqlite(TempDir),
    #[cfg(feature = "postgres")]
    Postgres(pg::TestDatabase),
}

impl Deref for TestStore {
    type Target = dyn Store;

    fn deref(&self) -> &(dyn Store + 'static) {
        &*self.store
    }
}

impl TestStore {
    /// The store as an `Arc`, to share with tasks.
    pub fn shared(&self) -> Arc<dyn Store> {
        Arc::clone(&self.store)
    }

    /// Another handle on the same database (as another process opens it).
    pub async fn reopen(&self) -> Arc<dyn Store> {
        match &self.place {
            Place::Sqlite(dir) => Arc::new(SqliteStore::open(&db_path(dir)).await.expect("reopen")),
            #[cfg(feature = "postgres")]
            Place::Postgres(db) => Arc::new(db.open().await),
        }
    }

    /// Runs `sql` on the database behind the store's back (to tamper with it).
    pub async fn tamper(&self, sql: &str) {
        match &self.place {
            Place::Sqlite(dir) => raw(&db_path(dir)).execute_batch(sql).expect("tamper"),
            #[cfg(feature = "postgres")]
            Place::Postgres(db) => db.execute(sql).await,
        }
    }
}

/// A store on `backend`, fresh and empty.
pub async fn temp_store(backend: Backend) -> TestStore {
    match backend {
        Backend::Sqlite => {
            let dir = tempfile::tempdir().expect("temp dir");
            let store = SqliteStore::open(&db_path(&dir)).await.expect("open store");
            TestStore {
                store: Arc::new(store),
                place: Place::Sqlite(dir),
            }
        }
        #[cfg(feature = "postgres")]
        Backend::Postgres => {
            let db = pg::TestDatabase::create().await;
            TestStore {
                store: Arc::new(db.open().await),
                place: Place::Postgres(db),
            }
        }
    }
}

/// A SQLite store in a fresh temporary directory (for the SQLite-only tests).
pub async fn temp_sqlite() -> (TempDir, SqliteStore) {
    let dir = tempfile::tempdir().expect("temp dir");
    let store = SqliteStore::open(&db_path(&dir)).await.expect("open store");
    (dir, store)
}

/// Where `temp_store` puts the database (a subdirectory that does not exist yet).
pub fn db_path(dir: &TempDir) -> PathBuf {
    dir.path().join("state").join("orket.db")
}

/// A plain connection to the file, for reading or tampering with it behind the store's back.
pub fn raw(path: &Path) -> Connection {
    let conn = Connection::open(path).expect("raw connection");
    conn.busy_timeout(std::time::Duration::from_secs(30))
        .expect("busy timeout");
    conn
}

/// An issue with every field set to something other than its default.
pub fn full_issue(build_id: &str, id: &str) -> IssueRecord {
    IssueRecord {
        build_id: build_id.to_string(),
        id: id.to_string(),
        session_id: Some("a1b2c3d4".to_string()),
        name: "Login form".to_string(),
        description: "A form with a user name and a password".to_string(),
        issue_type: "story".to_string(),
        severity: Some(orket_core::bugfix::Severity::High),
        status: Status::Blocked,
        priority: 3.5,
        seat: "lead_dev".to_string(),
        assignee: Some("coder".to_string()),
        sprint: Some("Q1 S2".to_string()),
        note: Some("waiting for the API".to_string()),
        requirements: Some("must validate input".to_string()),
        wait_reason: Some(WaitReason::Dependency),
        depends_on: vec!["ISSUE-0001".to_string(), "ISSUE-0002".to_string()],
        retry_count: 2,
        max_retries: 5,
        verification: json!({
            "fixture_path": "verification/login.py",
            "scenarios": [{"id": "s1", "input_data": {"u": "x"}, "expected_output": true}],
            "last_run": null
        }),
        metrics: json!({"lines": 120, "score": 0.75}),
        credits_spent: 12.25,
        parent_id: Some("login-epic".to_string()),
        owner_department: "product".to_string(),
        labels: vec!["frontend".to_string(), "auth".to_string()],
        params: json!({"model_overrides": {"coder": "qwen2.5-coder:7b"}}),
        references: vec!["docs/api".to_string()],
        created_at: "2026-01-02T03:04:05.678Z".to_string(),
        updated_at: "2026-01-02T03:04:06.789Z".to_string(),
    }
}

/// A finished run with every field set.
pub fn full_run(id: &str) -> RunRecord {
    RunRecord {
        id: id.to_string(),
        kind: RunKind::Rock,
        target: "launch".to_string(),
        build_id: "rock-build-launch".to_string(),
        department: "product".to_string(),
        workspace: "/tmp/ws/launch".to_string(),
        status: RunStatus::Stalled,
        reason: Some("2 issues blocked".to_string()),
        params: json!({"max_iterations": 40, "seed": 7}),
        started_at: "2026-03-04T05:06:07.001Z".to_string(),
        updated_at: "2026-03-04T05:16:07.002Z".to_string(),
        ended_at: Some("2026-03-04T05:16:07.003Z".to_string()),
        halt_requested_at: Some("2026-03-04T05:15:00.000Z".to_string()),
    }
}

/// A turn of `run_id` with every field set.
pub fn full_turn(run_id: &str, seq: i64) -> NewTurn {
    NewTurn {
        run_id: run_id.to_string(),
        seq,
        build_id: "build-login".to_string(),
        issue_id: "ISSUE-0001".to_string(),
        seat: "lead_dev".to_string(),
        role: "coder".to_string(),
        model: "qwen2.5-coder:7b".to_string(),
        review: true,
        messages: json!([{"role": "system", "content": "You are a coder."}]),
        content: "```json\n{\"tool\": \"write_file\"}\n```".to_string(),
        tool_calls: vec![ToolCall::new("write_file", json!({"path": "a.py"}))],
        tool_results: vec![ToolResult::ok(json!({"path": "a.py"}))],
        tokens_in: 1234,
        tokens_out: 567,
        status: "failed".to_string(),
        error: Some("model timed out".to_string()),
        started_at: "2026-03-04T05:06:08.000Z".to_string(),
        ended_at: "2026-03-04T05:06:09.500Z".to_string(),
        steps: vec![TurnStep {
            prompt: vec![ChatMessage::user("Result of read_file: a.py is empty")],
            reply: Some("{\"tool\": \"write_file\"}".to_string()),
            seed: Some(7),
            call: Some(ToolCall::new("write_file", json!({"path": "a.py"}))),
            result: Some(ToolResult::ok(json!({"path": "a.py"}))),
            correction: Some("repeat".to_string()),
            tokens_in: 1234,
            tokens_out: 567,
            ..TurnStep::new(2, Some(1))
        }],
        candidates: vec![Candidate {
            n: 1,
            seed: Some(7),
            steps: 1,
            passed: 1,
            total: 2,
            ok: false,
            chosen: true,
            error: Some("fixture crashed".to_string()),
        }],
        settings: Some(json!({"temperature": 0.2, "steps": 6})),
    }
}

/// An event of `run_id`: a turn of `seq` completed.
pub fn turn_complete(run_id: Option<&str>, seq: i64) -> NewEvent {
    NewEvent::new(
        run_id,
        Event::TurnComplete {
            seq,
            calls: 1,
            status: Some(Status::CodeReview),
            tokens_in: 10,
            tokens_out: 2,
            notes: Vec::new(),
        },
    )
}

/// Inserts a ready issue and returns it as stored.
pub async fn seed_issue(store: &dyn Store, build_id: &str, id: &str) -> IssueRecord {
    let issue = IssueRecord::new(build_id, id, format!("Issue {id}"), "lead_dev");
    store.insert_issue(issue.clone()).await.expect("insert");
    issue
}

/// Asks run `run_id` to halt (one `RequestHalt` batch, as the engine's halt writes it).
pub async fn request_halt(store: &dyn Store, run_id: &str) -> orket_store::StoreResult<()> {
    let change = orket_store::Change::RequestHalt {
        run_id: run_id.to_string(),
    };
    store.apply(vec![change]).await.map(drop)
}

/// Appends one event in its own batch; returns its row id.
pub async fn append_event(store: &dyn Store, event: NewEvent) -> i64 {
    match store
        .apply(vec![orket_store::Change::AppendEvent(event)])
        .await
        .expect("append the event")
        .as_slice()
    {
        [orket_store::Applied::Id(id)] => *id,
        other => panic!("expected one row id, got {other:?}"),
    }
}
