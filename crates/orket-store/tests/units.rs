//! The reads a run makes as one unit: a tick's changed issues and halt request
//! (`tick_state`), a turn's inputs (`turn_inputs`), and halting a run through the store.

mod common;

use common::Backend;
use rstest::rstest;

use common::{full_turn, seed_issue, temp_store};
use orket_core::{RunKind, RunStatus, Status};
use orket_store::{IssueUpdate, RunRecord, RunUpdate, StoreError, TurnQuery};

#[rstest]
#[case::sqlite(Backend::Sqlite)]
#[cfg_attr(feature = "postgres", case::postgres(Backend::Postgres))]
#[tokio::test(flavor = "multi_thread")]
async fn a_tick_reads_only_the_issues_changed_since_its_last_version(#[case] backend: Backend) {
    let store = temp_store(backend).await;
    let run = RunRecord::new(
        "r1",
        RunKind::Epic,
        "login",
        "build-login",
        "core",
        "/tmp/ws",
    );
    store.create_run(run).await.unwrap();
    for id in ["A-1", "A-2", "A-3"] {
        seed_issue(&*store, "build-login", id).await;
    }
    seed_issue(&*store, "build-other", "B-1").await;

    let all = store.tick_state("r1", "build-login", 0).await.unwrap();
    let ids: Vec<&str> = all.changed.iter().map(|i| i.id.as_str()).collect();
    assert_eq!(
        ids,
        ["A-1", "A-2", "A-3"],
        "every issue of the build, in order"
    );
    assert_eq!(all.version, 3);
    assert_eq!(all.halt_requested_at, None);

    let none = store
        .tick_state("r1", "build-login", all.version)
        .await
        .unwrap();
    assert!(none.changed.is_empty());
    assert_eq!(none.version, all.version);

    // A status change, a comment (no issue change) and credits.
    store
        .update_issue(
            "build-login",
            "A-2",
            IssueUpdate::by("coder").status(Status::InProgress),
        )
        .await
        .unwrap();
    store
        .add_comment("build-login", "A-3", "coder", "looking at it")
        .await
        .unwrap();
    store
        .add_credits("build-login", "A-1", 1.5, "coder")
        .await
        .unwrap();
    let later = store
        .tick_state("r1", "build-login", all.version)
        .await
        .unwrap();
    let changed: Vec<(&str, Status)> = later
        .changed
        .iter()
        .map(|i| (i.id.as_str(), i.status))
        .collect();
    assert_eq!(
        changed,
        [("A-1", Status::Ready), ("A-2", Status::InProgress)]
    );
    assert_eq!(later.version, all.version + 2);
    // Another build's changes are not this build's.
    store
        .update_issue(
            "build-other",
            "B-1",
            IssueUpdate::by("coder").status(Status::InProgress),
        )
        .await
        .unwrap();
    let same = store
        .tick_state("r1", "build-login", later.version)
        .await
        .unwrap();
    assert!(same.changed.is_empty());
}

#[rstest]
#[case::sqlite(Backend::Sqlite)]
#[cfg_attr(feature = "postgres", case::postgres(Backend::Postgres))]
#[tokio::test(flavor = "multi_thread")]
async fn a_halt_asked_through_the_store_is_seen_by_the_next_tick(#[case] backend: Backend) {
    let store = temp_store(backend).await;
    let run = RunRecord::new(
        "r1",
        RunKind::Epic,
        "login",
        "build-login",
        "core",
        "/tmp/ws",
    );
    store.create_run(run).await.unwrap();
    common::request_halt(&*store, "r1").await.unwrap();
    let first = store
        .get_run("r1")
        .await
        .unwrap()
        .unwrap()
        .halt_requested_at;
    assert!(first.is_some());
    // Asking again keeps the first time.
    common::request_halt(&*store, "r1").await.unwrap();
    let tick = store.tick_state("r1", "build-login", 0).await.unwrap();
    assert_eq!(tick.halt_requested_at, first);

    store
        .update_run(
            "r1",
            RunUpdate::finish(RunStatus::Canceled, "halted by a person"),
        )
        .await
        .unwrap();
    match common::request_halt(&*store, "r1").await {
        Err(StoreError::Conflict(message)) => {
            assert_eq!(message, "run r1 already ended (canceled)")
        }
        other => panic!("expected a conflict, got {other:?}"),
    }
    assert!(matches!(
        common::request_halt(&*store, "nope").await,
        Err(StoreError::NotFound { what: "run", .. })
    ));
}

#[rstest]
#[case::sqlite(Backend::Sqlite)]
#[cfg_attr(feature = "postgres", case::postgres(Backend::Postgres))]
#[tokio::test(flavor = "multi_thread")]
async fn a_turn_reads_its_issue_comments_memory_and_history_at_once(#[case] backend: Backend) {
    let store = temp_store(backend).await;
    let mut issue = seed_issue(&*store, "build-login", "ISSUE-0001").await;
    issue.name = "Issue ISSUE-0001".to_string();
    for n in 1..=4 {
        store
            .add_comment("build-login", "ISSUE-0001", "coder", &format!("note {n}"))
            .await
            .unwrap();
    }
    store
        .remember(
            "We decided the login form uses email",
            Some("architect"),
            None,
            None,
        )
        .await
        .unwrap();
    for seq in 1..=3 {
        store.append_turn(full_turn("r1", seq)).await.unwrap();
    }
    let inputs = store
        .turn_inputs(&TurnQuery {
            run_id: "r1".to_string(),
            build_id: "build-login".to_string(),
            issue_id: "ISSUE-0001".to_string(),
            comments: 2,
            memory_query: "login form".to_string(),
            memory: 5,
            history: 2,
        })
        .await
        .unwrap();
    assert_eq!(inputs.issue.map(|i| i.name), Some(issue.name));
    let comments: Vec<&str> = inputs.comments.iter().map(|c| c.content.as_str()).collect();
    assert_eq!(comments, ["note 3", "note 4"], "the latest, oldest first");
    assert_eq!(inputs.memory.len(), 1);
    let seqs: Vec<i64> = inputs.history.iter().map(|t| t.seq).collect();
    assert_eq!(seqs, [2, 3], "the latest turns, oldest first");

    let gone = store
        .turn_inputs(&TurnQuery {
            run_id: "r1".to_string(),
            build_id: "build-login".to_string(),
            issue_id: "ISSUE-9999".to_string(),
            comments: 5,
            memory_query: String::new(),
            memory: 5,
            history: 10,
        })
        .await
        .unwrap();
    assert!(gone.issue.is_none() && gone.comments.is_empty() && gone.history.is_empty());
}
