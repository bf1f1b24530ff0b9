//! Pending approvals: parked in a batch, listed per run, decided once.

mod common;

use common::Backend;
use rstest::rstest;

use common::temp_store;
use orket_core::Status;
use orket_store::{Change, NewApproval, StoreError};
use serde_json::json;

fn call(run: &str, issue: &str) -> NewApproval {
    NewApproval {
        run_id: run.to_string(),
        build_id: "build-demo".to_string(),
        issue_id: issue.to_string(),
        role: "coder".to_string(),
        seat: "developer".to_string(),
        tool: "write_file".to_string(),
        args: json!({"path": "a.py", "content": "x"}),
        resume_status: Status::InProgress,
    }
}

#[rstest]
#[case::sqlite(Backend::Sqlite)]
#[cfg_attr(feature = "postgres", case::postgres(Backend::Postgres))]
#[tokio::test(flavor = "multi_thread")]
async fn approvals_round_trip_and_are_decided_once(#[case] backend: Backend) {
    let store = temp_store(backend).await;
    let applied = store
        .apply(vec![
            Change::RequestApproval(call("run00001", "A-1")),
            Change::RequestApproval(call("run00002", "B-1")),
        ])
        .await
        .unwrap();
    let first = applied[0].id().unwrap();
    let second = applied[1].id().unwrap();
    assert!(second > first);

    let pending = store.get_approval(first).await.unwrap().unwrap();
    assert_eq!(pending.call, call("run00001", "A-1"));
    assert_eq!(pending.status, "pending");
    assert_eq!(
        (pending.reason, pending.result, pending.decided_at),
        (None, None, None)
    );
    assert!(pending.created_at.ends_with('Z'));
    assert_eq!(store.list_approvals(None).await.unwrap().len(), 2);
    let of_run = store.list_approvals(Some("run00002")).await.unwrap();
    assert_eq!(of_run.len(), 1);
    assert_eq!(of_run[0].id, second);
    assert!(store.list_approvals(Some("nope")).await.unwrap().is_empty());

    let decide = |id: i64| Change::DecideApproval {
        id,
        status: "approved".to_string(),
        reason: None,
        result: Some(json!({"ok": true})),
    };
    // A decision needs a claim first.
    let unclaimed = store.apply(vec![decide(first)]).await.unwrap_err();
    assert!(
        matches!(unclaimed, StoreError::Conflict(ref m) if m.contains("is pending: claim it")),
        "{unclaimed}"
    );
    // One claim wins; a second claim, or a release of an unclaimed approval, conflicts.
    let release = store
        .apply(vec![Change::ReleaseApproval { id: first }])
        .await
        .unwrap_err();
    assert!(
        matches!(release, StoreError::Conflict(ref m) if m.contains("already pending")),
        "{release}"
    );
    store
        .apply(vec![Change::ClaimApproval { id: first }])
        .await
        .unwrap();
    assert_eq!(
        store.get_approval(first).await.unwrap().unwrap().status,
        "deciding"
    );
    let twice = store
        .apply(vec![Change::ClaimApproval { id: first }])
        .await
        .unwrap_err();
    assert!(
        matches!(twice, StoreError::Conflict(ref m) if m.contains("being decided")),
        "{twice}"
    );
    // Released, it is pending again and can be claimed anew.
    store
        .apply(vec![Change::ReleaseApproval { id: first }])
        .await
        .unwrap();
    assert_eq!(
        store.get_approval(first).await.unwrap().unwrap().status,
        "pending"
    );
    store
        .apply(vec![Change::ClaimApproval { id: first }, decide(first)])
        .await
        .unwrap();
    let missing_claim = store
        .apply(vec![Change::ClaimApproval { id: 999 }])
        .await
        .unwrap_err();
    assert!(matches!(
        missing_claim,
        StoreError::NotFound {
            what: "approval",
            ..
        }
    ));
    let decided = store.get_approval(first).await.unwrap().unwrap();
    assert_eq!(decided.status, "approved");
    assert_eq!(decided.result, Some(json!({"ok": true})));
    assert!(decided.decided_at.is_some());

    let again = store
        .apply(vec![Change::DecideApproval {
            id: first,
            status: "rejected".to_string(),
            reason: Some("late".to_string()),
            result: None,
        }])
        .await
        .unwrap_err();
    assert!(
        matches!(again, StoreError::Conflict(ref m) if m.contains("already approved")),
        "{again}"
    );
    let missing = store
        .apply(vec![Change::DecideApproval {
            id: 999,
            status: "approved".to_string(),
            reason: None,
            result: None,
        }])
        .await
        .unwrap_err();
    assert!(matches!(
        missing,
        StoreError::NotFound {
            what: "approval",
            ..
        }
    ));
    // The refused decision changed nothing.
    assert_eq!(store.get_approval(first).await.unwrap().unwrap(), decided);
}
