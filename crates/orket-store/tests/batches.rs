//! A batch of changes commits as one transaction: all of it, or nothing.

mod common;

use common::Backend;
use rstest::rstest;

use common::{full_turn, seed_issue, temp_store};
use orket_core::Status;
use orket_store::{Applied, Change, IssueUpdate, StoreError};

fn comment(issue_id: &str, content: &str) -> Change {
    Change::AddComment {
        build_id: "build-login".to_string(),
        issue_id: issue_id.to_string(),
        author: "coder".to_string(),
        content: content.to_string(),
    }
}

fn move_to(issue_id: &str, to: Status) -> Change {
    Change::UpdateIssue {
        build_id: "build-login".to_string(),
        id: issue_id.to_string(),
        update: IssueUpdate::by("coder").status(to),
    }
}

#[rstest]
#[case::sqlite(Backend::Sqlite)]
#[cfg_attr(feature = "postgres", case::postgres(Backend::Postgres))]
#[tokio::test(flavor = "multi_thread")]
async fn a_failing_change_rolls_back_the_whole_batch(#[case] backend: Backend) {
    let store = temp_store(backend).await;
    let before = seed_issue(&*store, "build-login", "ISSUE-0001").await;

    let batch = vec![
        Change::AppendTurn(full_turn("0a1b2c3d", 1)),
        comment("ISSUE-0001", "wrote the form"),
        move_to("ISSUE-0001", Status::InProgress),
        Change::AddCredits {
            build_id: "build-login".to_string(),
            id: "ISSUE-0001".to_string(),
            amount: 4.0,
            actor: "coder".to_string(),
        },
        Change::AppendEvent(common::turn_complete(Some("0a1b2c3d"), 1)),
        Change::Remember {
            content: "decided on JWT".to_string(),
            role: None,
            issue_id: None,
            run_id: None,
        },
        move_to("ISSUE-0404", Status::InProgress),
    ];
    let err = store.apply(batch).await.unwrap_err();
    assert!(
        matches!(&err, StoreError::NotFound { what: "issue", id } if id == "build-login/ISSUE-0404"),
        "{err}"
    );

    assert!(store.list_turns("0a1b2c3d").await.unwrap().is_empty());
    assert!(store
        .list_comments("build-login", "ISSUE-0001")
        .await
        .unwrap()
        .is_empty());
    assert!(store.list_events(None, 0, 100).await.unwrap().is_empty());
    assert!(store.search_memory("JWT", 5).await.unwrap().is_empty());
    assert!(store
        .list_card_transactions("build-login", "ISSUE-0001")
        .await
        .unwrap()
        .is_empty());
    assert_eq!(
        store.get_issue("build-login", "ISSUE-0001").await.unwrap(),
        Some(before)
    );
}

#[rstest]
#[case::sqlite(Backend::Sqlite)]
#[cfg_attr(feature = "postgres", case::postgres(Backend::Postgres))]
#[tokio::test(flavor = "multi_thread")]
async fn a_successful_batch_reports_each_change_in_order(#[case] backend: Backend) {
    let store = temp_store(backend).await;
    seed_issue(&*store, "build-login", "ISSUE-0001").await;
    let applied = store
        .apply(vec![
            Change::AppendTurn(full_turn("0a1b2c3d", 1)),
            comment("ISSUE-0001", "wrote the form"),
            move_to("ISSUE-0001", Status::InProgress),
            Change::AppendEvent(common::turn_complete(Some("0a1b2c3d"), 1)),
            Change::DeleteBuildIssues {
                build_id: "build-none".to_string(),
            },
        ])
        .await
        .unwrap();
    assert_eq!(applied.len(), 5);

    let turns = store.list_turns("0a1b2c3d").await.unwrap();
    assert_eq!(applied[0], Applied::Id(turns[0].id));
    let comments = store
        .list_comments("build-login", "ISSUE-0001")
        .await
        .unwrap();
    assert_eq!(applied[1], Applied::Comment(comments[0].clone()));
    let issue = store
        .get_issue("build-login", "ISSUE-0001")
        .await
        .unwrap()
        .unwrap();
    assert_eq!(issue.status, Status::InProgress);
    assert_eq!(applied[2], Applied::Issue(Box::new(issue)));
    let events = store.list_events(Some("0a1b2c3d"), 0, 10).await.unwrap();
    assert_eq!(applied[3].id(), Some(events[0].id));
    assert_eq!(applied[4], Applied::Done);

    assert!(store.apply(Vec::new()).await.unwrap().is_empty());
}

#[rstest]
#[case::sqlite(Backend::Sqlite)]
#[cfg_attr(feature = "postgres", case::postgres(Backend::Postgres))]
#[tokio::test(flavor = "multi_thread")]
async fn a_later_change_sees_an_earlier_one_in_the_same_batch(#[case] backend: Backend) {
    let store = temp_store(backend).await;
    let issue = orket_store::IssueRecord::new("build-login", "ISSUE-0007", "New", "lead_dev");
    let applied = store
        .apply(vec![
            Change::InsertIssue(issue),
            comment("ISSUE-0007", "created by the architect"),
            move_to("ISSUE-0007", Status::InProgress),
        ])
        .await
        .unwrap();
    match &applied[2] {
        Applied::Issue(issue) => assert_eq!(issue.status, Status::InProgress),
        other => panic!("expected the updated issue, got {other:?}"),
    }
    assert_eq!(
        store
            .list_comments("build-login", "ISSUE-0007")
            .await
            .unwrap()
            .len(),
        1
    );
}

#[rstest]
#[case::sqlite(Backend::Sqlite)]
#[cfg_attr(feature = "postgres", case::postgres(Backend::Postgres))]
#[tokio::test(flavor = "multi_thread")]
async fn the_store_keeps_working_after_a_failed_batch_and_holds_no_lock(#[case] backend: Backend) {
    let store = temp_store(backend).await;
    seed_issue(&*store, "build-login", "ISSUE-0001").await;
    for _ in 0..3 {
        let err = store
            .apply(vec![
                comment("ISSUE-0001", "lost"),
                move_to("ISSUE-0404", Status::InProgress),
            ])
            .await
            .unwrap_err();
        assert!(matches!(err, StoreError::NotFound { .. }), "{err}");
    }
    // Another handle (another process) gets the write lock at once: the failed batches did not
    // keep it.
    let other = store.reopen().await;
    let write = other.add_comment("build-login", "ISSUE-0001", "coder", "kept");
    tokio::time::timeout(std::time::Duration::from_secs(5), write)
        .await
        .expect("the write lock is free")
        .unwrap();
    store
        .apply(vec![comment("ISSUE-0001", "kept too")])
        .await
        .unwrap();
    let contents: Vec<String> = store
        .list_comments("build-login", "ISSUE-0001")
        .await
        .unwrap()
        .into_iter()
        .map(|c| c.content)
        .collect();
    assert_eq!(contents, ["kept", "kept too"]);
}
