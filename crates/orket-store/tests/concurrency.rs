//! Many writers at once: no lost update, no busy error, within one handle and across handles.

mod common;

use common::Backend;
use rstest::rstest;

use common::{seed_issue, temp_store};
use orket_store::{Change, IssueUpdate};
use std::collections::BTreeSet;
use std::sync::Arc;

/// The fields the even-numbered tasks set, one per task in turn.
const FIELDS: [&str; 5] = ["note", "assignee", "sprint", "requirements", "session_id"];

fn set_field(field: &str, value: String) -> IssueUpdate {
    let update = IssueUpdate::by("coder");
    match field {
        "note" => update.note(value),
        "assignee" => update.assignee(value),
        "sprint" => update.sprint(value),
        "requirements" => update.requirements(value),
        _ => update.session_id(value),
    }
}

#[rstest]
#[case::sqlite(Backend::Sqlite)]
#[cfg_attr(feature = "postgres", case::postgres(Backend::Postgres))]
#[tokio::test(flavor = "multi_thread")]
async fn fifty_concurrent_turns_on_one_issue_lose_nothing(#[case] backend: Backend) {
    let store = temp_store(backend).await;
    seed_issue(&*store, "build-login", "ISSUE-0001").await;
    let store = store.shared();

    let mut tasks = Vec::new();
    for n in 0..50 {
        let store = Arc::clone(&store);
        tasks.push(tokio::spawn(async move {
            let mut batch = vec![
                Change::AddCredits {
                    build_id: "build-login".to_string(),
                    id: "ISSUE-0001".to_string(),
                    amount: 1.0,
                    actor: format!("seat-{n}"),
                },
                Change::AddComment {
                    build_id: "build-login".to_string(),
                    issue_id: "ISSUE-0001".to_string(),
                    author: format!("seat-{n}"),
                    content: format!("comment {n}"),
                },
            ];
            if n % 2 == 0 {
                let field = FIELDS[(n / 2) % FIELDS.len()];
                batch.push(Change::UpdateIssue {
                    build_id: "build-login".to_string(),
                    id: "ISSUE-0001".to_string(),
                    update: set_field(field, format!("{field}-{n}")),
                });
            }
            store.apply(batch).await
        }));
    }
    for task in tasks {
        task.await.expect("task ran").expect("batch applied");
    }

    let issue = store
        .get_issue("build-login", "ISSUE-0001")
        .await
        .unwrap()
        .unwrap();
    assert_eq!(issue.credits_spent, 50.0);
    let comments = store
        .list_comments("build-login", "ISSUE-0001")
        .await
        .unwrap();
    let contents: BTreeSet<String> = comments.into_iter().map(|c| c.content).collect();
    assert_eq!(contents, (0..50).map(|n| format!("comment {n}")).collect());
    let audit = store
        .list_card_transactions("build-login", "ISSUE-0001")
        .await
        .unwrap();
    assert_eq!(audit.len(), 50);

    // Every field some task set holds one of the values written for it: none was lost.
    let stored = [
        ("note", issue.note),
        ("assignee", issue.assignee),
        ("sprint", issue.sprint),
        ("requirements", issue.requirements),
        ("session_id", issue.session_id),
    ];
    for (field, value) in stored {
        let value = value.unwrap_or_else(|| panic!("{field} was lost"));
        let n: usize = value
            .strip_prefix(&format!("{field}-"))
            .and_then(|n| n.parse().ok())
            .unwrap_or_else(|| panic!("{field} = {value}"));
        assert!(
            n % 2 == 0 && FIELDS[(n / 2) % FIELDS.len()] == field,
            "{field} = {value}"
        );
    }
}

#[rstest]
#[case::sqlite(Backend::Sqlite)]
#[cfg_attr(feature = "postgres", case::postgres(Backend::Postgres))]
#[tokio::test(flavor = "multi_thread")]
async fn two_handles_on_one_file_write_concurrently(#[case] backend: Backend) {
    let first = temp_store(backend).await;
    seed_issue(&*first, "build-login", "ISSUE-0001").await;
    let second = first.reopen().await;

    let mut tasks = Vec::new();
    for (name, handle) in [("first", first.shared()), ("second", second.clone())] {
        for n in 0..25 {
            let handle = handle.clone();
            tasks.push(tokio::spawn(async move {
                let content = format!("{name} {n}");
                handle
                    .add_comment("build-login", "ISSUE-0001", name, &content)
                    .await?;
                handle
                    .add_credits("build-login", "ISSUE-0001", 0.5, name)
                    .await
            }));
        }
    }
    for task in tasks {
        task.await.expect("task ran").expect("write succeeded");
    }

    for handle in [first.shared(), second.clone()] {
        let comments = handle
            .list_comments("build-login", "ISSUE-0001")
            .await
            .unwrap();
        assert_eq!(comments.len(), 50);
        let issue = handle
            .get_issue("build-login", "ISSUE-0001")
            .await
            .unwrap()
            .unwrap();
        assert_eq!(issue.credits_spent, 25.0);
    }
}

/// Batches of several changes from many tasks on two handles of one file (as two processes
/// would), with one-unit reads going on: every batch commits whole, none waits forever.
#[rstest]
#[case::sqlite(Backend::Sqlite)]
#[cfg_attr(feature = "postgres", case::postgres(Backend::Postgres))]
#[tokio::test(flavor = "multi_thread")]
async fn batches_from_two_handles_and_reads_meanwhile_lose_nothing(#[case] backend: Backend) {
    let first = temp_store(backend).await;
    for id in ["A", "B"] {
        seed_issue(&*first, "build-login", id).await;
    }
    let second = first.reopen().await;
    let run = orket_store::RunRecord::new(
        "r1",
        orket_core::RunKind::Epic,
        "login",
        "build-login",
        "core",
        "/tmp/ws",
    );
    first.create_run(run).await.unwrap();

    let mut tasks = Vec::new();
    for (handle_no, handle) in [first.shared(), second.clone()].into_iter().enumerate() {
        for task in 0..4 {
            let handle = handle.clone();
            tasks.push(tokio::spawn(async move {
                for n in 0..25 {
                    let issue = if (task + n) % 2 == 0 { "A" } else { "B" };
                    let batch = vec![
                        Change::AddCredits {
                            build_id: "build-login".to_string(),
                            id: issue.to_string(),
                            amount: 1.0,
                            actor: format!("seat-{handle_no}-{task}"),
                        },
                        Change::UpdateIssue {
                            build_id: "build-login".to_string(),
                            id: issue.to_string(),
                            update: IssueUpdate::by("coder")
                                .note(format!("{handle_no}/{task}/{n}")),
                        },
                        Change::AppendEvent(common::turn_complete(
                            Some("r1"),
                            (handle_no * 1000 + task * 100 + n) as i64,
                        )),
                    ];
                    handle.apply(batch).await?;
                    let tick = handle.tick_state("r1", "build-login", 0).await?;
                    assert_eq!(tick.changed.len(), 2);
                }
                Ok::<_, orket_store::StoreError>(())
            }));
        }
    }
    let all = async {
        for task in tasks {
            task.await.expect("task ran").expect("batches applied");
        }
    };
    tokio::time::timeout(std::time::Duration::from_secs(120), all)
        .await
        .expect("no batch waited forever");

    for handle in [first.shared(), second.clone()] {
        let issues = handle.list_issues("build-login").await.unwrap();
        let credits: f64 = issues.iter().map(|i| i.credits_spent).sum();
        assert_eq!(credits, 200.0);
        assert_eq!(
            handle.list_events(Some("r1"), 0, 1000).await.unwrap().len(),
            200
        );
        // Every change gave its issue a new version of the build: 2 seeds + 200 batches × 2.
        let tick = handle.tick_state("r1", "build-login", 0).await.unwrap();
        assert_eq!(tick.version, 2 + 400);
    }
}
