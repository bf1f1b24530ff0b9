//! Every field of every record comes back as it was written.

mod common;

use common::Backend;
use rstest::rstest;

use common::{full_issue, full_run, full_turn, temp_store};
use orket_core::Event;
use orket_core::{RunKind, RunStatus, Status};
use orket_store::{ledger, BuildRecord, EventRecord, NewEvent, RunUpdate, StoreError, TurnRecord};
use serde_json::json;

#[rstest]
#[case::sqlite(Backend::Sqlite)]
#[cfg_attr(feature = "postgres", case::postgres(Backend::Postgres))]
#[tokio::test(flavor = "multi_thread")]
async fn issue_round_trips_every_field(#[case] backend: Backend) {
    let store = temp_store(backend).await;
    let issue = full_issue("build-login", "ISSUE-0003");
    store.insert_issue(issue.clone()).await.unwrap();
    let stored = store.get_issue("build-login", "ISSUE-0003").await.unwrap();
    assert_eq!(stored, Some(issue.clone()));
    assert_eq!(
        store.list_issues("build-login").await.unwrap(),
        vec![issue.clone()]
    );
    assert_eq!(store.find_issues("ISSUE-0003").await.unwrap(), vec![issue]);
    assert_eq!(
        store.get_issue("build-login", "ISSUE-9999").await.unwrap(),
        None
    );
}

#[rstest]
#[case::sqlite(Backend::Sqlite)]
#[cfg_attr(feature = "postgres", case::postgres(Backend::Postgres))]
#[tokio::test(flavor = "multi_thread")]
async fn issue_defaults_round_trip_including_nulls(#[case] backend: Backend) {
    let store = temp_store(backend).await;
    let issue = orket_store::IssueRecord::new("build-login", "ISSUE-0001", "Plain", "dev");
    store.insert_issue(issue.clone()).await.unwrap();
    let stored = store
        .get_issue("build-login", "ISSUE-0001")
        .await
        .unwrap()
        .unwrap();
    assert_eq!(stored, issue);
    assert_eq!(stored.verification, serde_json::Value::Null);
    assert_eq!(stored.metrics, json!({}));
}

#[rstest]
#[case::sqlite(Backend::Sqlite)]
#[cfg_attr(feature = "postgres", case::postgres(Backend::Postgres))]
#[tokio::test(flavor = "multi_thread")]
async fn issues_list_in_insertion_order_and_are_found_in_every_build(#[case] backend: Backend) {
    let store = temp_store(backend).await;
    for id in ["Z-1", "A-2", "M-3"] {
        common::seed_issue(&*store, "build-a", id).await;
    }
    common::seed_issue(&*store, "build-b", "A-2").await;
    let ids: Vec<String> = store
        .list_issues("build-a")
        .await
        .unwrap()
        .into_iter()
        .map(|i| i.id)
        .collect();
    assert_eq!(ids, ["Z-1", "A-2", "M-3"]);
    let builds: Vec<String> = store
        .find_issues("A-2")
        .await
        .unwrap()
        .into_iter()
        .map(|i| i.build_id)
        .collect();
    assert_eq!(builds, ["build-a", "build-b"]);
}

#[rstest]
#[case::sqlite(Backend::Sqlite)]
#[cfg_attr(feature = "postgres", case::postgres(Backend::Postgres))]
#[tokio::test(flavor = "multi_thread")]
async fn inserting_an_existing_issue_is_a_conflict(#[case] backend: Backend) {
    let store = temp_store(backend).await;
    let first = common::seed_issue(&*store, "build-a", "ISSUE-1").await;
    let mut again = full_issue("build-a", "ISSUE-1");
    again.name = "Another".to_string();
    let err = store.insert_issue(again).await.unwrap_err();
    assert!(
        matches!(&err, StoreError::Conflict(m) if m.contains("issue build-a/ISSUE-1 already exists")),
        "{err}"
    );
    assert_eq!(
        store.get_issue("build-a", "ISSUE-1").await.unwrap(),
        Some(first)
    );
}

#[rstest]
#[case::sqlite(Backend::Sqlite)]
#[cfg_attr(feature = "postgres", case::postgres(Backend::Postgres))]
#[tokio::test(flavor = "multi_thread")]
async fn build_round_trips_every_field(#[case] backend: Backend) {
    let store = temp_store(backend).await;
    let build = BuildRecord {
        id: "rock-build-launch".to_string(),
        kind: "rock".to_string(),
        card: "launch".to_string(),
        department: "product".to_string(),
        status: Status::InProgress,
        created_at: "2026-01-01T00:00:00.001Z".to_string(),
        updated_at: "2026-01-01T00:00:00.002Z".to_string(),
    };
    store.upsert_build(build.clone()).await.unwrap();
    assert_eq!(
        store.get_build("rock-build-launch").await.unwrap(),
        Some(build.clone())
    );

    // Upserting again replaces it (keeping created_at) and audits the status change.
    let replaced = BuildRecord {
        department: "core".to_string(),
        status: Status::Done,
        created_at: "2030-01-01T00:00:00.000Z".to_string(),
        updated_at: "2026-01-02T00:00:00.000Z".to_string(),
        ..build.clone()
    };
    store.upsert_build(replaced.clone()).await.unwrap();
    let expected = BuildRecord {
        created_at: build.created_at.clone(),
        ..replaced
    };
    assert_eq!(store.list_builds().await.unwrap(), vec![expected]);
    let audit = store
        .list_card_transactions("rock-build-launch", "launch")
        .await
        .unwrap();
    assert_eq!(audit.len(), 1);
    assert_eq!(audit[0].from_status, Some(Status::InProgress));
    assert_eq!(audit[0].to_status, Some(Status::Done));
    assert_eq!(store.get_build("build-nothing").await.unwrap(), None);
}

#[rstest]
#[case::sqlite(Backend::Sqlite)]
#[cfg_attr(feature = "postgres", case::postgres(Backend::Postgres))]
#[tokio::test(flavor = "multi_thread")]
async fn run_round_trips_every_field_and_updates(#[case] backend: Backend) {
    let store = temp_store(backend).await;
    let run = full_run("0a1b2c3d");
    store.create_run(run.clone()).await.unwrap();
    assert_eq!(store.get_run("0a1b2c3d").await.unwrap(), Some(run.clone()));

    let err = store.create_run(run.clone()).await.unwrap_err();
    assert!(
        matches!(&err, StoreError::Conflict(m) if m.contains("run 0a1b2c3d already exists")),
        "{err}"
    );

    // Resuming clears ended_at; a final status sets it; unset fields stay.
    let resumed = RunUpdate {
        status: Some(RunStatus::Running),
        reason: Some(None),
        params: None,
    };
    store.update_run("0a1b2c3d", resumed).await.unwrap();
    let now = store.get_run("0a1b2c3d").await.unwrap().unwrap();
    assert_eq!(now.status, RunStatus::Running);
    assert_eq!(now.reason, None);
    assert_eq!(now.ended_at, None);
    assert_eq!(now.params, run.params);
    assert_ne!(now.updated_at, run.updated_at);

    store
        .update_run(
            "0a1b2c3d",
            RunUpdate::finish(RunStatus::Completed, "all done"),
        )
        .await
        .unwrap();
    let done = store.get_run("0a1b2c3d").await.unwrap().unwrap();
    assert_eq!(done.status, RunStatus::Completed);
    assert_eq!(done.reason.as_deref(), Some("all done"));
    assert_eq!(done.ended_at.as_deref(), Some(done.updated_at.as_str()));
    assert_eq!((done.kind, done.target.as_str()), (RunKind::Rock, "launch"));

    let err = store
        .update_run("ffffffff", RunUpdate::default())
        .await
        .unwrap_err();
    assert!(matches!(err, StoreError::NotFound { what: "run", ref id } if id == "ffffffff"));
}

#[rstest]
#[case::sqlite(Backend::Sqlite)]
#[cfg_attr(feature = "postgres", case::postgres(Backend::Postgres))]
#[tokio::test(flavor = "multi_thread")]
async fn runs_list_newest_first(#[case] backend: Backend) {
    let store = temp_store(backend).await;
    for (id, started) in [
        ("00000001", "2026-01-01T00:00:00.000Z"),
        ("00000003", "2026-01-03T00:00:00.000Z"),
        ("00000002", "2026-01-02T00:00:00.000Z"),
    ] {
        let mut run = full_run(id);
        run.started_at = started.to_string();
        store.create_run(run).await.unwrap();
    }
    let ids: Vec<String> = store
        .list_runs(2)
        .await
        .unwrap()
        .into_iter()
        .map(|r| r.id)
        .collect();
    assert_eq!(ids, ["00000003", "00000002"]);
}

#[rstest]
#[case::sqlite(Backend::Sqlite)]
#[cfg_attr(feature = "postgres", case::postgres(Backend::Postgres))]
#[tokio::test(flavor = "multi_thread")]
async fn turn_round_trips_every_field(#[case] backend: Backend) {
    let store = temp_store(backend).await;
    store.create_run(full_run("0a1b2c3d")).await.unwrap();
    assert_eq!(store.last_turn_seq("0a1b2c3d").await.unwrap(), None);
    let second = full_turn("0a1b2c3d", 2);
    let first = orket_store::NewTurn {
        review: false,
        error: None,
        status: "complete".to_string(),
        ..full_turn("0a1b2c3d", 1)
    };
    let id2 = store.append_turn(second.clone()).await.unwrap();
    let id1 = store.append_turn(first.clone()).await.unwrap();
    // Each turn is chained to the turn committed before it (here the second, committed first).
    let h2 = ledger::turn_hash(ledger::GENESIS, &second);
    let h1 = ledger::turn_hash(&h2, &first);
    let turns = store.list_turns("0a1b2c3d").await.unwrap();
    assert_eq!(
        turns,
        vec![
            TurnRecord {
                id: id1,
                turn: first,
                prev_hash: Some(h2.clone()),
                hash: Some(h1.clone()),
                worker: None,
            },
            TurnRecord {
                id: id2,
                turn: second.clone(),
                prev_hash: Some(String::new()),
                hash: Some(h2),
                worker: None,
            },
        ]
    );
    let head = store.ledger_head("0a1b2c3d").await.unwrap();
    assert_eq!(head.as_deref(), Some(h1.as_str()));
    let chain = ledger::check(&turns, head.as_deref()).expect("read back, the turns hash the same");
    assert_eq!((chain.turns, chain.head), (2, h1));
    assert_eq!(store.last_turn_seq("0a1b2c3d").await.unwrap(), Some(2));
    let err = store.append_turn(second).await.unwrap_err();
    assert!(
        matches!(&err, StoreError::Conflict(m) if m.contains("run 0a1b2c3d already has a turn with seq 2")),
        "{err}"
    );
}

#[rstest]
#[case::sqlite(Backend::Sqlite)]
#[cfg_attr(feature = "postgres", case::postgres(Backend::Postgres))]
#[tokio::test(flavor = "multi_thread")]
async fn event_round_trips_every_field_and_lists_by_run(#[case] backend: Backend) {
    let store = temp_store(backend).await;
    let full = NewEvent {
        run_id: Some("0a1b2c3d".to_string()),
        role: Some("coder".to_string()),
        event: Event::ApprovalRequested {
            tool: "write_file".to_string(),
            args: json!({"path": "a.py", "content": "x"})
                .as_object()
                .cloned()
                .unwrap(),
        },
        issue_id: Some("ISSUE-0001".to_string()),
        timestamp: Some("2026-05-06T07:08:09.010Z".to_string()),
    };
    let id = common::append_event(&*store, full.clone()).await;
    let other = common::append_event(&*store, common::turn_complete(Some("ffffffff"), 1)).await;
    let bare = common::append_event(&*store, NewEvent::new(None, Event::HaltRequested {})).await;
    let later = common::append_event(
        &*store,
        NewEvent {
            timestamp: None,
            ..common::turn_complete(Some("0a1b2c3d"), 2)
        },
    )
    .await;

    let events = store.list_events(Some("0a1b2c3d"), 0, 100).await.unwrap();
    assert_eq!(events.len(), 2);
    assert_eq!(
        events[0],
        EventRecord {
            id,
            run_id: full.run_id,
            timestamp: "2026-05-06T07:08:09.010Z".to_string(),
            role: full.role,
            issue_id: full.issue_id,
            event: full.event,
        }
    );
    assert_eq!(events[1].id, later);
    // A missing timestamp is "now", in the stored format.
    assert_eq!(events[1].timestamp.len(), "2026-05-06T07:08:09.010Z".len());
    assert!(events[1].timestamp.ends_with('Z'));

    let all: Vec<i64> = store
        .list_events(None, 0, 100)
        .await
        .unwrap()
        .iter()
        .map(|e| e.id)
        .collect();
    assert_eq!(all, [id, other, bare, later]);
    let page: Vec<i64> = store
        .list_events(None, id, 2)
        .await
        .unwrap()
        .iter()
        .map(|e| e.id)
        .collect();
    assert_eq!(page, [other, bare]);
}

#[rstest]
#[case::sqlite(Backend::Sqlite)]
#[cfg_attr(feature = "postgres", case::postgres(Backend::Postgres))]
#[tokio::test(flavor = "multi_thread")]
async fn comment_round_trips(#[case] backend: Backend) {
    let store = temp_store(backend).await;
    common::seed_issue(&*store, "build-login", "ISSUE-0001").await;
    let comment = store
        .add_comment(
            "build-login",
            "ISSUE-0001",
            "architect",
            "Use JWT, not sessions.",
        )
        .await
        .unwrap();
    assert_eq!(comment.author, "architect");
    assert_eq!(comment.content, "Use JWT, not sessions.");
    assert_eq!(
        store
            .list_comments("build-login", "ISSUE-0001")
            .await
            .unwrap(),
        vec![comment]
    );
    let err = store
        .add_comment("build-login", "ISSUE-0404", "architect", "hello")
        .await
        .unwrap_err();
    assert_eq!(err.to_string(), "issue build-login/ISSUE-0404 not found");
}

#[rstest]
#[case::sqlite(Backend::Sqlite)]
#[cfg_attr(feature = "postgres", case::postgres(Backend::Postgres))]
#[tokio::test(flavor = "multi_thread")]
async fn snapshots_and_success_rows_round_trip(#[case] backend: Backend) {
    let store = temp_store(backend).await;
    assert_eq!(store.latest_snapshot("0a1b2c3d").await.unwrap(), None);
    store
        .save_snapshot("0a1b2c3d", json!({"iteration": 1}))
        .await
        .unwrap();
    let id = store
        .save_snapshot("0a1b2c3d", json!({"iteration": 2}))
        .await
        .unwrap();
    let latest = store.latest_snapshot("0a1b2c3d").await.unwrap().unwrap();
    assert_eq!((latest.id, latest.data), (id, json!({"iteration": 2})));
    assert_eq!(latest.run_id, "0a1b2c3d");

    let a = store
        .record_success("0a1b2c3d", "build-login", "login", json!({"issues": 3}))
        .await
        .unwrap();
    let b = store
        .record_success("11111111", "build-shop", "shop", json!({"issues": 1}))
        .await
        .unwrap();
    let login = store.list_success(Some("build-login")).await.unwrap();
    assert_eq!(login.len(), 1);
    assert_eq!(
        (
            login[0].id,
            login[0].run_id.as_str(),
            login[0].card.as_str()
        ),
        (a, "0a1b2c3d", "login")
    );
    assert_eq!(login[0].data, json!({"issues": 3}));
    let all: Vec<i64> = store
        .list_success(None)
        .await
        .unwrap()
        .iter()
        .map(|s| s.id)
        .collect();
    assert_eq!(all, [a, b]);
}
