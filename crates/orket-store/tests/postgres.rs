//! What only the PostgreSQL store has: sqlx's migrator, connection errors that never show a
//! password, and `copy_sqlite_to_postgres` (the behaviour suite runs on both backends in the
//! other files).
#![cfg(feature = "postgres")]

mod common;

use common::pg::{server_url, TestDatabase};
use common::{full_issue, full_run, full_turn, seed_issue, temp_sqlite, turn_complete};
use orket_core::Status;
use orket_store::{
    copy_sqlite_to_postgres, ledger, Change, IssueUpdate, NewApproval, PgStore, Store, StoreError,
};
use serde_json::json;

/// How many migrations the PostgreSQL store has (its files).
fn migrations() -> i64 {
    let dir = concat!(env!("CARGO_MANIFEST_DIR"), "/migrations/postgres");
    std::fs::read_dir(dir).unwrap().count() as i64
}

#[tokio::test(flavor = "multi_thread")]
async fn opening_migrates_once_and_concurrent_opens_agree() {
    let db = TestDatabase::create().await;
    let opens: Vec<_> = (0..4)
        .map(|_| {
            let url = db.url();
            tokio::spawn(async move { PgStore::open(&url).await })
        })
        .collect();
    for open in opens {
        let store = open.await.unwrap().expect("every concurrent open succeeds");
        assert_eq!(store.schema_version().await.unwrap(), migrations());
    }
    let store = db.open().await;
    seed_issue(&store, "build-login", "ISSUE-0001").await;
    let raw = sqlx::PgPool::connect(&db.url()).await.unwrap();
    let applied = || async {
        let rows: Vec<(i64, String)> = sqlx::query_as(
            "SELECT version, installed_on::text FROM _sqlx_migrations ORDER BY version",
        )
        .fetch_all(&raw)
        .await
        .unwrap();
        rows
    };
    let first = applied().await;
    assert_eq!(first.len(), migrations() as usize);
    // Reopening applies nothing again and keeps what was written.
    let reopened = db.open().await;
    assert!(reopened
        .get_issue("build-login", "ISSUE-0001")
        .await
        .unwrap()
        .is_some());
    assert_eq!(applied().await, first);
    raw.close().await;
}

#[tokio::test(flavor = "multi_thread")]
async fn a_changed_migration_is_refused_naming_its_version() {
    let db = TestDatabase::create().await;
    db.open().await.close().await;
    db.execute("UPDATE _sqlx_migrations SET checksum = '\\x00' WHERE version = 1")
        .await;
    let err = PgStore::open(&db.url()).await.unwrap_err();
    match &err {
        StoreError::Migration { version, message } => {
            assert_eq!(*version, 1);
            assert!(message.contains("migration 1"), "{message}");
        }
        other => panic!("expected a migration error, got {other:?}"),
    }
}

#[tokio::test(flavor = "multi_thread")]
async fn a_database_that_cannot_be_reached_is_named_without_its_password() {
    let url = orket_store::url_with_database(&server_url(), "orket_no_such_database");
    let err = PgStore::open(&url).await.unwrap_err();
    let message = err.to_string();
    assert!(
        message.starts_with("cannot open store postgres://"),
        "{message}"
    );
    assert!(message.contains("orket_no_such_database"), "{message}");

    // A password never appears in a message.
    let secret = "postgres://orket:hunter2secret@127.0.0.1:1/orket";
    let err = PgStore::open(secret).await.unwrap_err().to_string();
    assert!(!err.contains("hunter2secret"), "{err}");
    assert!(
        err.contains("postgres://orket:***@127.0.0.1:1/orket"),
        "{err}"
    );

    let err = PgStore::open("postgres://[::1")
        .await
        .unwrap_err()
        .to_string();
    assert!(err.contains("not a PostgreSQL URL"), "{err}");
}

/// A SQLite project with something in every kind of table.
async fn a_project_with_history(store: &dyn Store) {
    let mut issue = full_issue("build-login", "ISSUE-0001");
    issue.status = Status::Ready;
    issue.wait_reason = None;
    store.insert_issue(issue).await.unwrap();
    store
        .upsert_build(orket_store::BuildRecord::new(
            "build-login",
            "epic",
            "login",
            "core",
        ))
        .await
        .unwrap();
    store
        .update_issue(
            "build-login",
            "ISSUE-0001",
            IssueUpdate::by("coder").status(Status::InProgress),
        )
        .await
        .unwrap();
    store
        .add_comment("build-login", "ISSUE-0001", "coder", "started")
        .await
        .unwrap();
    let run = full_run("r1");
    store.create_run(run).await.unwrap();
    for seq in 1..=3 {
        store
            .apply(vec![
                Change::AppendTurn(full_turn("r1", seq)),
                Change::AppendEvent(turn_complete(Some("r1"), seq)),
            ])
            .await
            .unwrap();
    }
    store.save_snapshot("r1", json!({"tick": 3})).await.unwrap();
    store
        .record_success("r1", "build-login", "login", json!({"turns": 3}))
        .await
        .unwrap();
    store
        .remember(
            "use argon2 for passwords",
            Some("architect"),
            None,
            Some("r1"),
        )
        .await
        .unwrap();
    store
        .apply(vec![Change::RequestApproval(NewApproval {
            run_id: "r1".into(),
            build_id: "build-login".into(),
            issue_id: "ISSUE-0001".into(),
            role: "coder".into(),
            seat: "lead_dev".into(),
            tool: "write_file".into(),
            args: json!({"path": "a.py"}),
            resume_status: Status::InProgress,
        })])
        .await
        .unwrap();
}

#[tokio::test(flavor = "multi_thread")]
async fn a_sqlite_project_copies_into_postgres_row_for_row() {
    let (dir, sqlite) = temp_sqlite().await;
    a_project_with_history(&sqlite).await;
    sqlite.close().await;
    let db = TestDatabase::create().await;
    let pg = db.open().await;

    let report = copy_sqlite_to_postgres(&common::db_path(&dir), &pg)
        .await
        .unwrap();
    let rows = |table: &str| {
        report
            .tables
            .iter()
            .find(|(t, _)| t == table)
            .map(|(_, n)| *n)
    };
    assert_eq!(rows("turns"), Some(3));
    assert_eq!(rows("issues"), Some(1));
    assert_eq!(rows("memory_words").map(|n| n > 0), Some(true));

    // Everything reads back the same from both.
    let sqlite = orket_store::SqliteStore::open(&common::db_path(&dir))
        .await
        .unwrap();
    let both: [&dyn Store; 2] = [&sqlite, &pg];
    let [a, b] = both;
    assert_eq!(
        a.list_builds().await.unwrap(),
        b.list_builds().await.unwrap()
    );
    assert_eq!(
        a.list_issues("build-login").await.unwrap(),
        b.list_issues("build-login").await.unwrap()
    );
    assert_eq!(
        a.list_card_transactions("build-login", "ISSUE-0001")
            .await
            .unwrap(),
        b.list_card_transactions("build-login", "ISSUE-0001")
            .await
            .unwrap()
    );
    assert_eq!(
        a.get_run("r1").await.unwrap(),
        b.get_run("r1").await.unwrap()
    );
    assert_eq!(
        a.list_turns("r1").await.unwrap(),
        b.list_turns("r1").await.unwrap()
    );
    assert_eq!(
        a.list_events(None, 0, 100).await.unwrap(),
        b.list_events(None, 0, 100).await.unwrap()
    );
    assert_eq!(
        a.search_memory("argon2", 5).await.unwrap(),
        b.search_memory("argon2", 5).await.unwrap()
    );
    assert_eq!(
        a.list_approvals(None).await.unwrap(),
        b.list_approvals(None).await.unwrap()
    );
    // The ledger holds on the copy.
    let turns = b.list_turns("r1").await.unwrap();
    let head = b.ledger_head("r1").await.unwrap();
    assert!(head.is_some());
    ledger::check(&turns, head.as_deref()).expect("the copied ledger is intact");

    // Ids continue after the copied ones.
    let next = b
        .add_comment("build-login", "ISSUE-0001", "coder", "after")
        .await
        .unwrap();
    let first = a.list_comments("build-login", "ISSUE-0001").await.unwrap()[0].id;
    assert!(next.id > first, "{} after {first}", next.id);
    let event = common::append_event(b, turn_complete(Some("r1"), 4)).await;
    assert!(event > 3);

    // A second copy into the same database is refused and changes nothing.
    let err = copy_sqlite_to_postgres(&common::db_path(&dir), &pg)
        .await
        .unwrap_err();
    assert!(
        err.to_string()
            .contains("already holds a project (1 builds, 1 runs"),
        "{err}"
    );
    assert_eq!(b.list_turns("r1").await.unwrap().len(), 3);
}
