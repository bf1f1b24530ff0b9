//! The Gitea review loop's rows: a delivery recorded once (by id and by body), outcomes,
//! pull requests, and review cycles counted per epoch.

mod common;

use common::Backend;
use rstest::rstest;

use common::temp_store;
use orket_store::{Applied, Change, NewDelivery, PullRequestChange, StoreError};

fn delivery(id: &str, body_sha: &str) -> NewDelivery {
    NewDelivery {
        delivery_id: id.to_string(),
        event: "pull_request".to_string(),
        event_type: Some("pull_request".to_string()),
        repository: Some("team/app".to_string()),
        pr_number: Some(7),
        body_sha256: body_sha.to_string(),
        outcome: "received".to_string(),
    }
}

#[rstest]
#[case::sqlite(Backend::Sqlite)]
#[cfg_attr(feature = "postgres", case::postgres(Backend::Postgres))]
#[tokio::test(flavor = "multi_thread")]
async fn a_delivery_is_recorded_once_by_its_id_and_by_its_bytes(#[case] backend: Backend) {
    let store = temp_store(backend).await;
    let applied = store
        .apply(vec![Change::RecordDelivery(delivery("d-1", "aaa"))])
        .await
        .unwrap();
    let Applied::Id(id) = applied[0] else {
        panic!("{applied:?}")
    };
    // The same id again, or the same bytes under a new id (Gitea's "redeliver").
    for again in [delivery("d-1", "bbb"), delivery("d-2", "aaa")] {
        let err = store
            .apply(vec![Change::RecordDelivery(again)])
            .await
            .unwrap_err();
        assert!(matches!(err, StoreError::Duplicate(_)), "{err:?}");
    }
    let err = store
        .apply(vec![Change::RecordDelivery(delivery("d-2", "aaa"))])
        .await
        .unwrap_err();
    assert!(
        err.to_string().contains("the same body was received at")
            && err.to_string().contains("as delivery d-1"),
        "{err}"
    );
    store
        .apply(vec![Change::SetDeliveryOutcome {
            id,
            outcome: "ignored".into(),
            detail: Some("no card in the title".into()),
        }])
        .await
        .unwrap();
    let listed = store.list_deliveries(10).await.unwrap();
    assert_eq!(listed.len(), 1);
    assert_eq!(
        (
            listed[0].delivery.outcome.as_str(),
            listed[0].detail.as_deref()
        ),
        ("ignored", Some("no card in the title"))
    );
}

#[rstest]
#[case::sqlite(Backend::Sqlite)]
#[cfg_attr(feature = "postgres", case::postgres(Backend::Postgres))]
#[tokio::test(flavor = "multi_thread")]
async fn cycles_count_per_epoch_and_a_new_epoch_starts_over(#[case] backend: Backend) {
    let store = temp_store(backend).await;
    let cycle = |reason: &str| Change::AddReviewCycle {
        repository: "team/app".into(),
        number: 7,
        reason: reason.into(),
        head_sha: Some("abc".into()),
    };
    let err = store.apply(vec![cycle("early")]).await.unwrap_err();
    assert!(matches!(err, StoreError::NotFound { .. }), "{err:?}");
    store
        .apply(vec![Change::UpsertPullRequest(PullRequestChange {
            repository: "team/app".into(),
            number: 7,
            title: "[DEMO-1] hello".into(),
            card_id: Some("DEMO-1".into()),
            build_id: Some("build-hello_cli".into()),
            state: "open".into(),
            head_sha: Some("abc".into()),
        })])
        .await
        .unwrap();
    let mut numbers = Vec::new();
    for reason in ["too long", "no tests"] {
        let applied = store.apply(vec![cycle(reason)]).await.unwrap();
        numbers.push(applied[0].id().unwrap());
    }
    assert_eq!(numbers, [1, 2]);
    store
        .apply(vec![Change::NewReviewEpoch {
            repository: "team/app".into(),
            number: 7,
        }])
        .await
        .unwrap();
    let applied = store.apply(vec![cycle("again")]).await.unwrap();
    assert_eq!(applied[0].id(), Some(1), "a new epoch counts from 1");
    let cycles = store.review_cycles("team/app", 7).await.unwrap();
    let seen: Vec<(i64, i64, &str)> = cycles
        .iter()
        .map(|c| (c.epoch, c.cycle, c.reason.as_str()))
        .collect();
    assert_eq!(
        seen,
        [(1, 1, "too long"), (1, 2, "no tests"), (2, 1, "again")]
    );
    store
        .apply(vec![Change::RecordReview {
            repository: "team/app".into(),
            number: 7,
            review: "rejected: again".into(),
        }])
        .await
        .unwrap();
    let prs = store.list_pull_requests().await.unwrap();
    assert_eq!(prs.len(), 1);
    assert_eq!(prs[0].epoch, 2);
    assert_eq!(prs[0].last_review.as_deref(), Some("rejected: again"));
    assert_eq!(prs[0].pr.card_id.as_deref(), Some("DEMO-1"));
}
