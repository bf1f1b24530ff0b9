//! Build leases: one holder at a time, taken with the batch that carries it, renewed,
//! released, taken over when stale or when its holder is known gone.

mod common;

use common::Backend;
use rstest::rstest;

use common::{seed_issue, temp_store};
use orket_store::{Change, IssueUpdate, LeaseHolder, LeaseRequest, StoreError};
use std::time::Duration;

fn holder(name: &str, pid: u32) -> LeaseHolder {
    LeaseHolder {
        token: format!("{name}/{pid}/1"),
        pid,
        host: name.to_string(),
    }
}

fn take(run: &str, who: &LeaseHolder, replacing: Option<&str>) -> Change {
    Change::TakeLease(LeaseRequest {
        build_id: "build-login".to_string(),
        run_id: run.to_string(),
        holder: who.clone(),
        stale_after: Duration::from_secs(30),
        replacing: replacing.map(str::to_string),
    })
}

fn note(text: &str) -> Change {
    Change::UpdateIssue {
        build_id: "build-login".to_string(),
        id: "ISSUE-0001".to_string(),
        update: IssueUpdate::by("coder").note(text.to_string()),
    }
}

#[rstest]
#[case::sqlite(Backend::Sqlite)]
#[cfg_attr(feature = "postgres", case::postgres(Backend::Postgres))]
#[tokio::test(flavor = "multi_thread")]
async fn a_held_build_refuses_another_holder_and_its_whole_batch(#[case] backend: Backend) {
    let store = temp_store(backend).await;
    seed_issue(&*store, "build-login", "ISSUE-0001").await;
    let (a, b) = (holder("alpha", 100), holder("beta", 200));
    store
        .apply(vec![take("run-a", &a, None), note("from a")])
        .await
        .unwrap();

    let err = store
        .apply(vec![take("run-b", &b, None), note("from b")])
        .await
        .unwrap_err();
    let StoreError::Held(lease) = &err else {
        panic!("{err:?}")
    };
    assert_eq!((lease.run_id.as_str(), lease.holder.pid), ("run-a", 100));
    let said = err.to_string();
    assert!(
        said.starts_with(
            "build build-login is being run by run run-a (process 100 on alpha, last heartbeat 20"
        ),
        "{said}"
    );
    assert!(said.ends_with("halt it (orket halt run-a)"), "{said}");
    let issue = store
        .get_issue("build-login", "ISSUE-0001")
        .await
        .unwrap()
        .unwrap();
    assert_eq!(
        issue.note.as_deref(),
        Some("from a"),
        "b's batch was not applied"
    );

    // The holder renews it and takes it again (re-entrant, the next run of a rock).
    store
        .apply(vec![Change::RenewLease {
            build_id: "build-login".into(),
            token: a.token.clone(),
        }])
        .await
        .unwrap();
    store.apply(vec![take("run-a2", &a, None)]).await.unwrap();
    assert_eq!(
        store
            .get_lease("build-login")
            .await
            .unwrap()
            .unwrap()
            .run_id,
        "run-a2"
    );
    // A renewal by b, which does not hold it, is refused naming a.
    let err = store
        .apply(vec![
            Change::RenewLease {
                build_id: "build-login".into(),
                token: b.token.clone(),
            },
            note("late b"),
        ])
        .await
        .unwrap_err();
    assert!(matches!(err, StoreError::Held(_)), "{err:?}");

    // b's release does nothing; a's frees the build for b.
    for who in [&b, &a] {
        store
            .apply(vec![Change::ReleaseLease {
                build_id: "build-login".into(),
                token: who.token.clone(),
            }])
            .await
            .unwrap();
    }
    assert!(store.get_lease("build-login").await.unwrap().is_none());
    store.apply(vec![take("run-b", &b, None)]).await.unwrap();
    // And after release, a's renewal says the build is no longer its own.
    let err = store
        .apply(vec![Change::RenewLease {
            build_id: "build-login".into(),
            token: a.token.clone(),
        }])
        .await
        .unwrap_err();
    assert!(matches!(err, StoreError::Held(_)), "{err:?}");
}

#[rstest]
#[case::sqlite(Backend::Sqlite)]
#[cfg_attr(feature = "postgres", case::postgres(Backend::Postgres))]
#[tokio::test(flavor = "multi_thread")]
async fn a_stale_lease_or_one_whose_holder_is_gone_is_taken_over(#[case] backend: Backend) {
    let store = temp_store(backend).await;
    let (a, b, c) = (
        holder("alpha", 100),
        holder("beta", 200),
        holder("gamma", 300),
    );
    store.apply(vec![take("run-a", &a, None)]).await.unwrap();

    // Naming a gone holder other than the one holding it changes nothing.
    let err = store
        .apply(vec![take("run-b", &b, Some("someone/else/1"))])
        .await
        .unwrap_err();
    assert!(matches!(err, StoreError::Held(_)), "{err:?}");
    // Naming the holder as gone takes it over.
    store
        .apply(vec![take("run-b", &b, Some(&a.token))])
        .await
        .unwrap();
    let lease = store.get_lease("build-login").await.unwrap().unwrap();
    assert_eq!((lease.run_id.as_str(), lease.holder.pid), ("run-b", 200));

    // A heartbeat older than the limit is free to take.
    store
        .tamper("UPDATE build_leases SET heartbeat_at = '2026-01-01T00:00:00.000Z'")
        .await;
    store.apply(vec![take("run-c", &c, None)]).await.unwrap();
    let lease = store.get_lease("build-login").await.unwrap().unwrap();
    assert_eq!(lease.run_id, "run-c");
    assert!(!lease.is_stale(Duration::from_secs(30)));
}
