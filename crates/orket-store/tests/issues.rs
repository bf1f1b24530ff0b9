//! Issue updates: partial patches, the audit trail, compare-and-set, comments, derived build
//! statuses, reset, and corrupt rows.

mod common;

use common::Backend;
use rstest::rstest;

use common::{full_issue, seed_issue, temp_store};
use orket_core::{Status, WaitReason};
use orket_store::{BuildRecord, IssueUpdate, StoreError};
use serde_json::json;

#[rstest]
#[case::sqlite(Backend::Sqlite)]
#[cfg_attr(feature = "postgres", case::postgres(Backend::Postgres))]
#[tokio::test(flavor = "multi_thread")]
async fn a_partial_update_leaves_every_other_field_alone(#[case] backend: Backend) {
    let store = temp_store(backend).await;
    let mut original = full_issue("build-login", "ISSUE-0001");
    original.status = Status::InProgress;
    original.wait_reason = None;
    store.insert_issue(original.clone()).await.unwrap();

    let update = IssueUpdate::by("coder")
        .status(Status::Blocked)
        .wait_reason(WaitReason::Input);
    let after = store
        .update_issue("build-login", "ISSUE-0001", update)
        .await
        .unwrap();

    assert_eq!(after.status, Status::Blocked);
    assert_eq!(after.wait_reason, Some(WaitReason::Input));
    assert_eq!(after.assignee.as_deref(), Some("coder"));
    assert_eq!(after.credits_spent, 12.25);
    assert_eq!(after.session_id.as_deref(), Some("a1b2c3d4"));
    assert_eq!(after.note.as_deref(), Some("waiting for the API"));
    assert_eq!(after.depends_on, ["ISSUE-0001", "ISSUE-0002"]);
    assert_eq!(after.verification, original.verification);
    assert_eq!(after.metrics, json!({"lines": 120, "score": 0.75}));
    assert_ne!(
        after.updated_at, original.updated_at,
        "updated_at is bumped"
    );
    // Nothing else moved: the whole record is the original plus the three changes.
    let expected = orket_store::IssueRecord {
        status: Status::Blocked,
        wait_reason: Some(WaitReason::Input),
        updated_at: after.updated_at.clone(),
        ..original
    };
    assert_eq!(after, expected);
    // What update_issue returned is what is stored.
    let stored = store.get_issue("build-login", "ISSUE-0001").await.unwrap();
    assert_eq!(stored, Some(after));
}

#[rstest]
#[case::sqlite(Backend::Sqlite)]
#[cfg_attr(feature = "postgres", case::postgres(Backend::Postgres))]
#[tokio::test(flavor = "multi_thread")]
async fn nullable_fields_can_be_cleared_and_set(#[case] backend: Backend) {
    let store = temp_store(backend).await;
    store
        .insert_issue(full_issue("build-login", "ISSUE-0001"))
        .await
        .unwrap();
    let update = IssueUpdate::by("orket")
        .clear_assignee()
        .clear_wait_reason()
        .clear_session_id()
        .sprint("Q2 S1")
        .retry_count(3u32)
        .labels(vec!["backend".to_string()]);
    let after = store
        .update_issue("build-login", "ISSUE-0001", update)
        .await
        .unwrap();
    assert_eq!(after.assignee, None);
    assert_eq!(after.wait_reason, None);
    assert_eq!(after.session_id, None);
    assert_eq!(after.sprint.as_deref(), Some("Q2 S1"));
    assert_eq!(after.retry_count, 3);
    assert_eq!(after.labels, ["backend"]);
    assert_eq!(after.note.as_deref(), Some("waiting for the API"));
    assert_eq!(after.credits_spent, 12.25);
    assert_eq!(after.status, Status::Blocked);
}

#[rstest]
#[case::sqlite(Backend::Sqlite)]
#[cfg_attr(feature = "postgres", case::postgres(Backend::Postgres))]
#[tokio::test(flavor = "multi_thread")]
async fn updating_a_missing_issue_is_not_found(#[case] backend: Backend) {
    let store = temp_store(backend).await;
    let err = store
        .update_issue(
            "build-login",
            "ISSUE-0404",
            IssueUpdate::by("coder").note("x"),
        )
        .await
        .unwrap_err();
    assert!(
        matches!(err, StoreError::NotFound { what: "issue", ref id } if id == "build-login/ISSUE-0404"),
        "{err}"
    );
    let err = store
        .add_credits("build-login", "ISSUE-0404", 1.0, "coder")
        .await
        .unwrap_err();
    assert_eq!(err.to_string(), "issue build-login/ISSUE-0404 not found");
}

#[rstest]
#[case::sqlite(Backend::Sqlite)]
#[cfg_attr(feature = "postgres", case::postgres(Backend::Postgres))]
#[tokio::test(flavor = "multi_thread")]
async fn status_changes_are_audited_in_order_and_other_updates_are_not(#[case] backend: Backend) {
    let store = temp_store(backend).await;
    seed_issue(&*store, "build-login", "ISSUE-0001").await;
    let moves = [
        ("coder", Status::InProgress, None),
        ("coder", Status::Blocked, Some(WaitReason::Dependency)),
        ("coder", Status::InProgress, None),
        ("coder", Status::CodeReview, None),
        ("integrity_guard", Status::Done, None),
    ];
    for (actor, to, reason) in moves {
        let mut update = IssueUpdate::by(actor).status(to);
        if let Some(reason) = reason {
            update = update.wait_reason(reason);
        }
        store
            .update_issue("build-login", "ISSUE-0001", update)
            .await
            .unwrap();
        // Updates that do not change the status add no audit row.
        let note = IssueUpdate::by(actor).note(format!("now {to}"));
        store
            .update_issue("build-login", "ISSUE-0001", note)
            .await
            .unwrap();
        let same = IssueUpdate::by(actor).status(to);
        store
            .update_issue("build-login", "ISSUE-0001", same)
            .await
            .unwrap();
    }
    let audit = store
        .list_card_transactions("build-login", "ISSUE-0001")
        .await
        .unwrap();
    let seen: Vec<(&str, &str, Option<Status>, Option<Status>)> = audit
        .iter()
        .map(|t| {
            (
                t.role.as_str(),
                t.action.as_str(),
                t.from_status,
                t.to_status,
            )
        })
        .collect();
    use Status::*;
    assert_eq!(
        seen,
        [
            ("coder", "status_change", Some(Ready), Some(InProgress)),
            ("coder", "status_change", Some(InProgress), Some(Blocked)),
            ("coder", "status_change", Some(Blocked), Some(InProgress)),
            ("coder", "status_change", Some(InProgress), Some(CodeReview)),
            (
                "integrity_guard",
                "status_change",
                Some(CodeReview),
                Some(Done)
            ),
        ]
    );
    assert_eq!(audit[1].detail, json!({"wait_reason": "dependency"}));
    assert!(audit.windows(2).all(|w| w[0].id < w[1].id));
    assert!(audit.iter().all(|t| t.build_id == "build-login"));
}

#[rstest]
#[case::sqlite(Backend::Sqlite)]
#[cfg_attr(feature = "postgres", case::postgres(Backend::Postgres))]
#[tokio::test(flavor = "multi_thread")]
async fn leaving_a_waiting_status_clears_the_wait_reason(#[case] backend: Backend) {
    let store = temp_store(backend).await;
    seed_issue(&*store, "build-login", "ISSUE-0001").await;
    for update in [
        IssueUpdate::by("coder").status(Status::InProgress),
        IssueUpdate::by("coder")
            .status(Status::Blocked)
            .wait_reason(WaitReason::Dependency),
    ] {
        store
            .update_issue("build-login", "ISSUE-0001", update)
            .await
            .unwrap();
    }
    // An update that keeps the status keeps the wait reason.
    let note = IssueUpdate::by("coder").note("still waiting");
    let kept = store
        .update_issue("build-login", "ISSUE-0001", note)
        .await
        .unwrap();
    assert_eq!(kept.wait_reason, Some(WaitReason::Dependency));

    let after = store
        .update_issue(
            "build-login",
            "ISSUE-0001",
            IssueUpdate::by("coder").status(Status::InProgress),
        )
        .await
        .unwrap();
    assert_eq!(after.status, Status::InProgress);
    assert_eq!(after.wait_reason, None, "no stale wait reason");
    let stored = store.get_issue("build-login", "ISSUE-0001").await.unwrap();
    assert_eq!(stored.unwrap().wait_reason, None);
    let audit = store
        .list_card_transactions("build-login", "ISSUE-0001")
        .await
        .unwrap();
    let last = audit.last().unwrap();
    assert_eq!(last.to_status, Some(Status::InProgress));
    assert_eq!(last.detail, json!({"wait_reason": null}));

    // Moving between waiting statuses keeps the reason unless the update sets one.
    for (to, reason) in [
        (Status::Blocked, Some(WaitReason::Review)),
        (Status::WaitingForDeveloper, None),
    ] {
        let mut update = IssueUpdate::by("coder").status(to);
        if let Some(reason) = reason {
            update = update.wait_reason(reason);
        }
        let after = store
            .update_issue("build-login", "ISSUE-0001", update)
            .await
            .unwrap();
        assert_eq!(after.wait_reason, Some(WaitReason::Review), "{to}");
    }
}

#[rstest]
#[case::sqlite(Backend::Sqlite)]
#[cfg_attr(feature = "postgres", case::postgres(Backend::Postgres))]
#[tokio::test(flavor = "multi_thread")]
async fn expect_status_mismatch_is_a_conflict_and_writes_nothing(#[case] backend: Backend) {
    let store = temp_store(backend).await;
    seed_issue(&*store, "build-login", "ISSUE-0001").await;
    let before = store
        .get_issue("build-login", "ISSUE-0001")
        .await
        .unwrap()
        .unwrap();

    let update = IssueUpdate::by("coder")
        .expecting(Status::InProgress)
        .status(Status::CodeReview)
        .assignee("coder")
        .credits_spent(9.0);
    let err = store
        .update_issue("build-login", "ISSUE-0001", update)
        .await
        .unwrap_err();
    match &err {
        StoreError::Conflict(message) => assert_eq!(
            message,
            "issue build-login/ISSUE-0001 is ready, not in_progress as expected; nothing was changed"
        ),
        other => panic!("expected a conflict, got {other:?}"),
    }
    let after = store.get_issue("build-login", "ISSUE-0001").await.unwrap();
    assert_eq!(after, Some(before));
    assert!(store
        .list_card_transactions("build-login", "ISSUE-0001")
        .await
        .unwrap()
        .is_empty());

    // With the right expectation it goes through.
    let update = IssueUpdate::by("coder")
        .expecting(Status::Ready)
        .status(Status::InProgress);
    let after = store
        .update_issue("build-login", "ISSUE-0001", update)
        .await
        .unwrap();
    assert_eq!(after.status, Status::InProgress);
}

#[rstest]
#[case::sqlite(Backend::Sqlite)]
#[cfg_attr(feature = "postgres", case::postgres(Backend::Postgres))]
#[tokio::test(flavor = "multi_thread")]
async fn credits_add_up_and_are_audited(#[case] backend: Backend) {
    let store = temp_store(backend).await;
    seed_issue(&*store, "build-login", "ISSUE-0001").await;
    store
        .add_credits("build-login", "ISSUE-0001", 1.5, "coder")
        .await
        .unwrap();
    let issue = store
        .add_credits("build-login", "ISSUE-0001", 2.25, "reviewer")
        .await
        .unwrap();
    assert_eq!(issue.credits_spent, 3.75);
    let audit = store
        .list_card_transactions("build-login", "ISSUE-0001")
        .await
        .unwrap();
    let rows: Vec<(&str, &str, serde_json::Value)> = audit
        .iter()
        .map(|t| (t.role.as_str(), t.action.as_str(), t.detail.clone()))
        .collect();
    assert_eq!(
        rows,
        [
            (
                "coder",
                "report_credits",
                json!({"amount": 1.5, "credits_spent": 1.5})
            ),
            (
                "reviewer",
                "report_credits",
                json!({"amount": 2.25, "credits_spent": 3.75})
            ),
        ]
    );
}

#[rstest]
#[case::sqlite(Backend::Sqlite)]
#[cfg_attr(feature = "postgres", case::postgres(Backend::Postgres))]
#[tokio::test(flavor = "multi_thread")]
async fn comments_come_back_in_insertion_order(#[case] backend: Backend) {
    let store = temp_store(backend).await;
    seed_issue(&*store, "build-login", "ISSUE-0001").await;
    seed_issue(&*store, "build-login", "ISSUE-0002").await;
    let mut written = Vec::new();
    for n in 0..20 {
        let author = if n % 2 == 0 { "coder" } else { "architect" };
        let comment = store
            .add_comment("build-login", "ISSUE-0001", author, &format!("note {n}"))
            .await
            .unwrap();
        written.push(comment);
        // Interleave comments on another issue: they must not show up.
        store
            .add_comment("build-login", "ISSUE-0002", "coder", "elsewhere")
            .await
            .unwrap();
    }
    let listed = store
        .list_comments("build-login", "ISSUE-0001")
        .await
        .unwrap();
    let contents: Vec<&str> = listed.iter().map(|c| c.content.as_str()).collect();
    let expected: Vec<String> = (0..20).map(|n| format!("note {n}")).collect();
    assert_eq!(contents, expected);
    assert_eq!(listed, written);
}

async fn build_status(store: &dyn orket_store::Store) -> Status {
    store
        .get_build("build-login")
        .await
        .unwrap()
        .expect("the build exists")
        .status
}

#[rstest]
#[case::sqlite(Backend::Sqlite)]
#[cfg_attr(feature = "postgres", case::postgres(Backend::Postgres))]
#[tokio::test(flavor = "multi_thread")]
async fn an_epic_builds_status_follows_its_issues(#[case] backend: Backend) {
    let store = temp_store(backend).await;
    let mut build = BuildRecord::new("build-login", "epic", "login", "core");
    build.status = Status::Done; // ignored: an epic build's status is derived
    store.upsert_build(build).await.unwrap();
    assert_eq!(build_status(&*store).await, Status::Ready);

    seed_issue(&*store, "build-login", "A").await;
    seed_issue(&*store, "build-login", "B").await;
    assert_eq!(build_status(&*store).await, Status::Ready);

    let mv = |actor: &str, to: Status| IssueUpdate::by(actor).status(to);
    store
        .update_issue("build-login", "A", mv("coder", Status::InProgress))
        .await
        .unwrap();
    assert_eq!(build_status(&*store).await, Status::InProgress);

    for id in ["A", "B"] {
        if id == "B" {
            store
                .update_issue("build-login", id, mv("coder", Status::InProgress))
                .await
                .unwrap();
        }
        store
            .update_issue("build-login", id, mv("coder", Status::CodeReview))
            .await
            .unwrap();
    }
    assert_eq!(build_status(&*store).await, Status::CodeReview);
    for id in ["A", "B"] {
        store
            .update_issue("build-login", id, mv("integrity_guard", Status::Done))
            .await
            .unwrap();
    }
    assert_eq!(build_status(&*store).await, Status::Done);

    // Each derived change is audited on the epic's card.
    let derived: Vec<(Option<Status>, Option<Status>, String)> = store
        .list_card_transactions("build-login", "login")
        .await
        .unwrap()
        .into_iter()
        .map(|t| (t.from_status, t.to_status, t.action))
        .collect();
    use Status::*;
    let d = || "status_derived".to_string();
    assert_eq!(
        derived,
        [
            (Some(Ready), Some(InProgress), d()),
            (Some(InProgress), Some(CodeReview), d()),
            (Some(CodeReview), Some(Done), d()),
        ]
    );

    // A new issue reopens the epic.
    seed_issue(&*store, "build-login", "C").await;
    assert_eq!(build_status(&*store).await, Status::InProgress);
}

#[rstest]
#[case::sqlite(Backend::Sqlite)]
#[cfg_attr(feature = "postgres", case::postgres(Backend::Postgres))]
#[tokio::test(flavor = "multi_thread")]
async fn rock_builds_and_issues_without_a_build_row_are_not_derived(#[case] backend: Backend) {
    let store = temp_store(backend).await;
    let mut rock = BuildRecord::new("rock-build-launch", "rock", "launch", "core");
    rock.status = Status::InProgress;
    store.upsert_build(rock).await.unwrap();
    seed_issue(&*store, "rock-build-launch", "A").await;
    store
        .update_issue(
            "rock-build-launch",
            "A",
            IssueUpdate::by("coder").status(Status::Canceled),
        )
        .await
        .unwrap();
    let rock = store.get_build("rock-build-launch").await.unwrap().unwrap();
    assert_eq!(rock.status, Status::InProgress);

    seed_issue(&*store, "build-orphan", "A").await;
    let moved = store
        .update_issue(
            "build-orphan",
            "A",
            IssueUpdate::by("coder").status(Status::InProgress),
        )
        .await
        .unwrap();
    assert_eq!(moved.status, Status::InProgress);
    assert_eq!(store.get_build("build-orphan").await.unwrap(), None);
}

#[rstest]
#[case::sqlite(Backend::Sqlite)]
#[cfg_attr(feature = "postgres", case::postgres(Backend::Postgres))]
#[tokio::test(flavor = "multi_thread")]
async fn deleting_a_builds_issues_removes_comments_and_keeps_the_audit(#[case] backend: Backend) {
    let store = temp_store(backend).await;
    store
        .upsert_build(BuildRecord::new("build-login", "epic", "login", "core"))
        .await
        .unwrap();
    seed_issue(&*store, "build-login", "A").await;
    seed_issue(&*store, "build-other", "A").await;
    store
        .add_comment("build-login", "A", "coder", "first")
        .await
        .unwrap();
    store
        .add_comment("build-other", "A", "coder", "kept")
        .await
        .unwrap();
    store
        .update_issue(
            "build-login",
            "A",
            IssueUpdate::by("coder").status(Status::InProgress),
        )
        .await
        .unwrap();

    store.delete_build_issues("build-login").await.unwrap();

    assert!(store.list_issues("build-login").await.unwrap().is_empty());
    assert!(store
        .list_comments("build-login", "A")
        .await
        .unwrap()
        .is_empty());
    assert_eq!(store.list_issues("build-other").await.unwrap().len(), 1);
    assert_eq!(
        store.list_comments("build-other", "A").await.unwrap().len(),
        1
    );
    assert_eq!(
        store
            .list_card_transactions("build-login", "A")
            .await
            .unwrap()
            .len(),
        1
    );
    let build = store.get_build("build-login").await.unwrap().unwrap();
    assert_eq!(build.status, Status::Ready);
    // Seeding again starts from scratch.
    seed_issue(&*store, "build-login", "A").await;
    let fresh = store.get_issue("build-login", "A").await.unwrap().unwrap();
    assert_eq!(fresh.status, Status::Ready);
}

#[rstest]
#[case::sqlite(Backend::Sqlite)]
#[cfg_attr(feature = "postgres", case::postgres(Backend::Postgres))]
#[tokio::test(flavor = "multi_thread")]
async fn a_corrupt_stored_value_is_an_error_naming_the_issue(#[case] backend: Backend) {
    let store = temp_store(backend).await;
    store
        .upsert_build(BuildRecord::new("build-login", "epic", "login", "core"))
        .await
        .unwrap();
    seed_issue(&*store, "build-login", "ISSUE-0001").await;
    seed_issue(&*store, "build-login", "ISSUE-0002").await;
    store
        .tamper(
            "UPDATE issues SET status = 'bogus' WHERE id = 'ISSUE-0001';
             UPDATE issues SET labels = '[not json' WHERE id = 'ISSUE-0002';",
        )
        .await;

    let err = store
        .get_issue("build-login", "ISSUE-0001")
        .await
        .unwrap_err();
    match &err {
        StoreError::Corrupt { what, message } => {
            assert_eq!(what, "issues.status of issue build-login/ISSUE-0001");
            assert!(message.starts_with("unknown status \"bogus\""), "{message}");
        }
        other => panic!("expected Corrupt, got {other:?}"),
    }
    assert!(err.to_string().contains("build-login/ISSUE-0001"));

    let err = store.list_issues("build-login").await.unwrap_err();
    assert!(
        matches!(&err, StoreError::Corrupt { what, .. } if what.contains("ISSUE-0001")),
        "{err}"
    );

    let err = store
        .get_issue("build-login", "ISSUE-0002")
        .await
        .unwrap_err();
    assert!(
        matches!(&err, StoreError::Corrupt { what, .. } if what == "issues.labels of issue build-login/ISSUE-0002"),
        "{err}"
    );
}

#[rstest]
#[case::sqlite(Backend::Sqlite)]
#[cfg_attr(feature = "postgres", case::postgres(Backend::Postgres))]
#[tokio::test(flavor = "multi_thread")]
async fn deriving_an_epics_status_from_a_corrupt_status_names_an_issue_that_has_it(
    #[case] backend: Backend,
) {
    let store = temp_store(backend).await;
    store
        .upsert_build(BuildRecord::new("build-login", "epic", "login", "core"))
        .await
        .unwrap();
    seed_issue(&*store, "build-login", "ISSUE-0001").await;
    seed_issue(&*store, "build-login", "ISSUE-0002").await;
    store
        .tamper("UPDATE issues SET status = 'bogus' WHERE id = 'ISSUE-0002'")
        .await;

    let err = store
        .update_issue(
            "build-login",
            "ISSUE-0001",
            IssueUpdate::by("coder").status(Status::InProgress),
        )
        .await
        .unwrap_err();
    assert!(
        matches!(&err, StoreError::Corrupt { what, .. } if what == "issues.status of issue build-login/ISSUE-0002"),
        "{err}"
    );
    // The batch was rolled back.
    let issue = store.get_issue("build-login", "ISSUE-0001").await.unwrap();
    assert_eq!(issue.unwrap().status, Status::Ready);
}

/// A batch's intermediate states are never visible, so an epic's status is derived once per
/// batch, from the state the batch leaves, and audited once with the actor of the batch's last
/// change of that build. (Before the rusqlite store it was derived after every change.)
#[rstest]
#[case::sqlite(Backend::Sqlite)]
#[cfg_attr(feature = "postgres", case::postgres(Backend::Postgres))]
#[tokio::test(flavor = "multi_thread")]
async fn a_batch_derives_its_epics_status_once_from_the_state_it_leaves(#[case] backend: Backend) {
    let store = temp_store(backend).await;
    store
        .upsert_build(BuildRecord::new("build-login", "epic", "login", "core"))
        .await
        .unwrap();
    seed_issue(&*store, "build-login", "A").await;
    seed_issue(&*store, "build-login", "B").await;
    let mv = |id: &str, actor: &str, to: Status| orket_store::Change::UpdateIssue {
        build_id: "build-login".to_string(),
        id: id.to_string(),
        update: IssueUpdate::by(actor).status(to),
    };
    store
        .apply(vec![
            mv("A", "coder", Status::InProgress),
            mv("A", "coder", Status::CodeReview),
            mv("B", "coder", Status::InProgress),
            mv("B", "reviewer", Status::CodeReview),
        ])
        .await
        .unwrap();
    assert_eq!(build_status(&*store).await, Status::CodeReview);
    let derived: Vec<(String, Option<Status>, Option<Status>, String)> = store
        .list_card_transactions("build-login", "login")
        .await
        .unwrap()
        .into_iter()
        .map(|t| (t.role, t.from_status, t.to_status, t.action))
        .collect();
    assert_eq!(
        derived,
        [(
            "reviewer".to_string(),
            Some(Status::Ready),
            Some(Status::CodeReview),
            "status_derived".to_string()
        )]
    );
    // Every issue's own status changes are still audited one by one.
    let a = store
        .list_card_transactions("build-login", "A")
        .await
        .unwrap();
    assert_eq!(a.len(), 2);

    // A build row written later in a batch sees the statuses derived before it.
    store
        .apply(vec![
            mv("A", "coder", Status::InProgress),
            orket_store::Change::UpsertBuild(BuildRecord::new(
                "build-login",
                "epic",
                "login",
                "core",
            )),
        ])
        .await
        .unwrap();
    let last = store
        .list_card_transactions("build-login", "login")
        .await
        .unwrap()
        .pop()
        .unwrap();
    assert_eq!(
        (last.action.as_str(), last.role.as_str(), last.to_status),
        ("status_derived", "coder", Some(Status::InProgress))
    );
}
