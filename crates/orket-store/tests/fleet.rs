//! The fleet's queue and leases on a real PostgreSQL: jobs go only to workers serving their
//! model, a lease that ran out lets another worker take the job and refuses the first worker's
//! commit, a commit is the turn, its files, the job's outcome and its acknowledgement at once.
#![cfg(feature = "postgres")]

mod common;

use common::full_turn;
use common::pg::TestDatabase;
use orket_store::fleet::{FileChange, TurnJob};
use orket_store::{Change, PgFleet, Store, StoreError, MAX_ATTEMPTS};
use serde_json::json;
use std::time::{Duration, Instant};

fn job(seq: i64, model: &str) -> TurnJob {
    TurnJob {
        job: format!("r1-{seq}"),
        run_id: "r1".into(),
        build_id: "build-login".into(),
        issue_id: "ISSUE-0001".into(),
        seq,
        model: model.into(),
        snapshot: [("ISSUE-0001".to_string(), "ready".to_string())].into(),
        workspace: "workspace/login".into(),
        holder: PLANNER.into(),
    }
}

/// The lease token of the process that plans the jobs.
const PLANNER: &str = "planner/1/1";

/// Run `id` started by the planning process: running, holding its build's lease.
async fn start(store: &dyn Store, id: &str) {
    store.create_run(running(id)).await.unwrap();
    let lease = Change::TakeLease(orket_store::LeaseRequest {
        build_id: "build-login".into(),
        run_id: id.into(),
        holder: orket_store::LeaseHolder {
            token: PLANNER.into(),
            pid: 1,
            host: "planner".into(),
        },
        stale_after: Duration::from_secs(30),
        replacing: None,
    });
    store.apply(vec![lease]).await.unwrap();
}

/// A run still running (its turns can commit).
fn running(id: &str) -> orket_store::RunRecord {
    orket_store::RunRecord::new(
        id,
        orket_core::RunKind::Epic,
        "login",
        "build-login",
        "core",
        "/tmp/ws",
    )
}

fn file(path: &str, content: &str) -> FileChange {
    FileChange {
        path: path.into(),
        content: Some(content.as_bytes().to_vec()),
    }
}

#[tokio::test(flavor = "multi_thread")]
async fn a_job_goes_to_a_worker_of_its_model_and_commits_whole() {
    let db = TestDatabase::create().await;
    let store = db.open().await;
    start(&store, "r1").await;
    // Processes installing pgmq at the same time all succeed.
    let other = db.open().await;
    let (fleet, again) = tokio::join!(PgFleet::connect(&store), PgFleet::connect(&other));
    let fleet = fleet.unwrap();
    again.unwrap();
    let (coder, guard) = (
        vec!["qwen-coder".to_string()],
        vec!["llama-guard".to_string()],
    );
    fleet.register("box-a", "host-a", &coder).await.unwrap();
    fleet.register("box-b", "host-b", &guard).await.unwrap();
    fleet.enqueue(&job(1, "qwen-coder")).await.unwrap();

    let lease = Duration::from_secs(30);
    assert!(fleet.claim("box-b", &guard, lease).await.unwrap().is_none());
    let claim = fleet.claim("box-a", &coder, lease).await.unwrap().unwrap();
    assert_eq!((claim.job.seq, claim.attempt), (1, 1));
    assert!(
        fleet.claim("box-a", &coder, lease).await.unwrap().is_none(),
        "held"
    );
    let workers = store.list_workers().await.unwrap();
    assert_eq!(workers[0].name, "box-a");
    assert_eq!((workers[0].jobs_held, workers[1].jobs_held), (1, 0));
    assert!(fleet.extend(&claim, lease).await.unwrap());

    let files = [file("workspace/login/app.py", "print(1)\n")];
    let turn = Change::AppendTurn(full_turn("r1", 1));
    fleet
        .commit(&claim, vec![turn], &files, &json!({"turn": true}))
        .await
        .unwrap();
    let turns = store.list_turns("r1").await.unwrap();
    assert_eq!(turns[0].worker.as_deref(), Some("box-a"));
    let record = fleet.job("r1-1").await.unwrap().unwrap();
    assert_eq!(record.state, "done");
    assert_eq!(record.outcome, Some(json!({"turn": true})));
    let stored = fleet.files_since("r1", 0).await.unwrap();
    assert_eq!(stored.len(), 1);
    assert_eq!(stored[0].change, files[0]);
    assert_eq!(stored[0].seq, 1);
    assert!(fleet
        .files_since("r1", stored[0].rev)
        .await
        .unwrap()
        .is_empty());
    let workers = store.list_workers().await.unwrap();
    assert_eq!((workers[0].jobs_held, workers[0].turns_done), (0, 1));
    // The message is gone: nobody takes the job again, and the lease cannot be extended.
    assert!(fleet.claim("box-a", &coder, lease).await.unwrap().is_none());
    assert!(!fleet.extend(&claim, lease).await.unwrap());

    // A turn of a run that ended meanwhile is refused, and nothing of it kept.
    fleet.enqueue(&job(2, "qwen-coder")).await.unwrap();
    let late = fleet.claim("box-a", &coder, lease).await.unwrap().unwrap();
    let update = orket_store::RunUpdate::finish(orket_core::RunStatus::Canceled, "halted");
    store.update_run("r1", update).await.unwrap();
    let err = fleet
        .commit(
            &late,
            vec![Change::AppendTurn(full_turn("r1", 2))],
            &[],
            &json!({}),
        )
        .await
        .unwrap_err();
    assert!(
        err.to_string()
            .contains("its run is no longer running (canceled)"),
        "{err}"
    );
    assert_eq!(store.list_turns("r1").await.unwrap().len(), 1);
}

#[tokio::test(flavor = "multi_thread")]
async fn a_worker_that_lost_its_lease_has_its_commit_refused() {
    let db = TestDatabase::create().await;
    let store = db.open().await;
    start(&store, "r1").await;
    let fleet = PgFleet::connect(&store).await.unwrap();
    let models = vec!["m".to_string()];
    fleet.enqueue(&job(1, "m")).await.unwrap();
    let first = fleet
        .claim("box-a", &models, Duration::from_secs(1))
        .await
        .unwrap()
        .unwrap();
    // box-a stalls past its lease; box-b takes the job as soon as it is visible again.
    let started = Instant::now();
    let second = loop {
        if let Some(claim) = fleet
            .claim("box-b", &models, Duration::from_secs(30))
            .await
            .unwrap()
        {
            break claim;
        }
        assert!(
            started.elapsed() < Duration::from_secs(20),
            "the lease never ran out"
        );
        tokio::time::sleep(Duration::from_millis(100)).await;
    };
    assert_eq!(second.attempt, 2);
    assert!(!fleet.extend(&first, Duration::from_secs(30)).await.unwrap());

    let late = Change::AppendTurn(full_turn("r1", 1));
    let files = [file("workspace/x.py", "late")];
    let err = fleet
        .commit(&first, vec![late.clone()], &files, &json!({}))
        .await
        .unwrap_err();
    assert!(
        matches!(&err, StoreError::Conflict(m) if m.contains("worker box-a lost turn 1 of run r1: another worker took its job")),
        "{err}"
    );
    assert!(
        store.list_turns("r1").await.unwrap().is_empty(),
        "nothing kept"
    );
    assert!(fleet.files_since("r1", 0).await.unwrap().is_empty());

    fleet
        .commit(&second, vec![late.clone()], &[], &json!({"turn": true}))
        .await
        .unwrap();
    let turns = store.list_turns("r1").await.unwrap();
    assert_eq!(turns.len(), 1);
    assert_eq!(turns[0].worker.as_deref(), Some("box-b"));
    // After the job was committed, a late commit finds no job at all.
    let err = fleet
        .commit(&first, vec![late], &[], &json!({}))
        .await
        .unwrap_err();
    assert!(err.to_string().contains("no longer queued"), "{err}");

    // A job planned by a process that no longer runs its run (resumed by another) is refused.
    fleet.enqueue(&job(2, "m")).await.unwrap();
    let stale = fleet
        .claim("box-b", &models, Duration::from_secs(30))
        .await
        .unwrap()
        .unwrap();
    let resumed = Change::TakeLease(orket_store::LeaseRequest {
        build_id: "build-login".into(),
        run_id: "r1".into(),
        holder: orket_store::LeaseHolder {
            token: "resumer/2/2".into(),
            pid: 2,
            host: "resumer".into(),
        },
        stale_after: Duration::from_secs(30),
        replacing: Some(PLANNER.into()),
    });
    store.apply(vec![resumed]).await.unwrap();
    let err = fleet
        .commit(
            &stale,
            vec![Change::AppendTurn(full_turn("r1", 2))],
            &[],
            &json!({}),
        )
        .await
        .unwrap_err();
    assert!(err.to_string().contains("resumed elsewhere"), "{err}");
    assert_eq!(store.list_turns("r1").await.unwrap().len(), 1);
    // That job is dropped, not offered again.
    assert_eq!(fleet.job("r1-2").await.unwrap().unwrap().state, "dropped");
    let again = fleet
        .claim("box-b", &models, Duration::from_secs(1))
        .await
        .unwrap();
    assert!(again.is_none());
}

#[tokio::test(flavor = "multi_thread")]
async fn a_job_taken_too_often_fails_instead_of_running_again() {
    let db = TestDatabase::create().await;
    let store = db.open().await;
    let fleet = PgFleet::connect(&store).await.unwrap();
    let models = vec!["m".to_string()];
    fleet.enqueue(&job(3, "m")).await.unwrap();
    let queue = orket_store::queue_for("m");
    db.execute(&format!(
        "UPDATE pgmq.q_{queue} SET read_ct = {MAX_ATTEMPTS}"
    ))
    .await;
    assert!(fleet
        .claim("box-a", &models, Duration::from_secs(30))
        .await
        .unwrap()
        .is_none());
    let record = fleet.job("r1-3").await.unwrap().unwrap();
    assert_eq!(record.state, "failed");
    let why = record.outcome.unwrap()["failed"]
        .as_str()
        .unwrap()
        .to_string();
    assert!(
        why.contains("was taken 5 times and never committed"),
        "{why}"
    );
}
