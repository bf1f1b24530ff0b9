//! The worker fleet as a team runs it: `orket worker` processes, each in a folder of its own
//! with nothing but the database URL (and its model), and `orket run --fleet` planning the
//! demo epic on a real PostgreSQL. Replies are recorded (a replay file), so the outcome is
//! exact: every turn once, every file present, each turn on a worker serving its model.
#![cfg(feature = "postgres")]

mod common;

#[path = "../../orket-store/tests/common/pg.rs"]
#[allow(dead_code)]
mod pg;

use orket_store::{PgStore, Store};
use std::collections::BTreeSet;
use std::path::Path;
use std::process::{Child, Command, Output, Stdio};
use std::time::{Duration, Instant};

/// The demo's model (its environment's), served by the workers.
const DEMO_MODEL: &str = "smollm2-135m-instruct";

fn orket(root: &Path, db: &str) -> Command {
    let mut cmd = Command::new(assert_cmd::cargo::cargo_bin("orket"));
    cmd.env_remove("ORKET_DB")
        .env_remove("ORKET_PROVIDER")
        .arg("--root")
        .arg(root)
        .arg("--db")
        .arg(db);
    cmd
}

/// A worker process in a folder of its own serving `model`, each reply taking `delay_ms`.
fn worker(
    db: &str,
    name: &str,
    model: &str,
    replay: &Path,
    delay_ms: u64,
) -> (tempfile::TempDir, Child) {
    let home = tempfile::tempdir().unwrap();
    let child = orket(home.path(), db)
        .args(["worker", "--name", name, "--model", model, "--lease", "2"])
        .args(["--provider", "replay", "--replay"])
        .arg(replay)
        .args(["--replay-delay-ms", &delay_ms.to_string()])
        .stdout(Stdio::piped())
        .stderr(Stdio::piped())
        .spawn()
        .unwrap();
    (home, child)
}

/// Stops a worker as Ctrl-C does and returns what it printed.
fn stop(mut child: Child) -> Output {
    Command::new("kill")
        .args(["-INT", &child.id().to_string()])
        .status()
        .unwrap();
    let started = Instant::now();
    while child.try_wait().unwrap().is_none() {
        assert!(
            started.elapsed() < Duration::from_secs(30),
            "the worker did not stop"
        );
        std::thread::sleep(Duration::from_millis(50));
    }
    child.wait_with_output().unwrap()
}

fn said(out: &Output) -> String {
    format!(
        "{}{}",
        String::from_utf8_lossy(&out.stdout),
        String::from_utf8_lossy(&out.stderr)
    )
}

/// `orket run hello_cli --fleet` in `root`, started now.
fn fleet_run(root: &Path, db: &str) -> Child {
    orket(root, db)
        .args(["run", "hello_cli", "--fleet", "--concurrency", "2"])
        .stdout(Stdio::piped())
        .stderr(Stdio::piped())
        .spawn()
        .unwrap()
}

/// Waits for the run to end and checks it completed with every turn once and every file.
async fn completed_whole(run: Child, root: &Path, store: &PgStore) -> Vec<orket_store::TurnRecord> {
    let out = run.wait_with_output().unwrap();
    assert_eq!(out.status.code(), Some(0), "{}", said(&out));
    let runs = store.list_runs(5).await.unwrap();
    assert_eq!(runs.len(), 1);
    assert_eq!(
        runs[0].status,
        orket_core::RunStatus::Completed,
        "{:?}",
        runs[0].reason
    );
    let turns = store.list_turns(&runs[0].id).await.unwrap();
    common::assert_every_turn_once(&turns);
    for (issue, path, content) in common::PASSING_WORK {
        let file = root.join("workspace/hello_cli").join(path);
        let written = std::fs::read_to_string(&file)
            .unwrap_or_else(|e| panic!("{issue}: {} is missing: {e}", file.display()));
        assert_eq!(written, content, "{issue}: {path}");
    }
    turns
}

#[tokio::test(flavor = "multi_thread")]
async fn two_workers_in_their_own_folders_run_the_demo_epic() {
    let (_dir, root, replay) = common::demo_with_replay();
    let db = pg::TestDatabase::create().await;
    let url = db.url();
    let (home_a, a) = worker(&url, "box-a", DEMO_MODEL, &replay, 100);
    let (home_b, b) = worker(&url, "box-b", DEMO_MODEL, &replay, 100);

    let run = fleet_run(&root, &url);
    let store = PgStore::open(&url).await.unwrap();
    let turns = completed_whole(run, &root, &store).await;
    let ran: BTreeSet<&str> = turns.iter().filter_map(|t| t.worker.as_deref()).collect();
    assert!(ran.is_subset(&["box-a", "box-b"].into()), "{ran:?}");
    assert_eq!(turns.iter().filter(|t| t.worker.is_some()).count(), 6);

    // The workers worked in their own folders: each that ran turns holds the run's project.
    let run_id = &turns[0].turn.run_id;
    for (home, name) in [(&home_a, "box-a"), (&home_b, "box-b")] {
        if ran.contains(name) {
            let copy = home.path().join(".orket/worker").join(name).join(run_id);
            assert!(
                copy.join("workspace/hello_cli/hello.py").is_file(),
                "{}",
                copy.display()
            );
        }
    }
    let shown = orket(&root, &url)
        .args(["show", &turns[0].turn.run_id])
        .output()
        .unwrap();
    let shown = said(&shown);
    assert!(shown.contains(" on worker box-"), "{shown}");
    let listed = orket(&root, &url).args(["workers"]).output().unwrap();
    let listed = said(&listed);
    assert!(
        listed.contains("box-a") && listed.contains("box-b"),
        "{listed}"
    );
    let workers = store.list_workers().await.unwrap();
    assert_eq!(workers.iter().map(|w| w.turns_done).sum::<i64>(), 6);
    assert!(workers.iter().all(|w| w.models == [DEMO_MODEL]));
    // The API serves the same, from the same database.
    let mut serve = orket(&root, &url);
    serve
        .args(["serve", "--port", "0"])
        .env_remove("ORKET_API_KEY");
    let server = common::Server::start(serve);
    let listed: serde_json::Value = reqwest::get(format!("http://{}/v1/workers", server.address))
        .await
        .unwrap()
        .json()
        .await
        .unwrap();
    let names: Vec<&str> = listed
        .as_array()
        .unwrap()
        .iter()
        .filter_map(|w| w["name"].as_str())
        .collect();
    assert_eq!(names, ["box-a", "box-b"], "{listed}");
    drop(server);

    for child in [a, b] {
        let out = stop(child);
        assert_eq!(out.status.code(), Some(0), "{}", said(&out));
        assert!(said(&out).contains("stopped:"), "{}", said(&out));
    }
    let workers = store.list_workers().await.unwrap();
    assert!(workers.iter().all(|w| w.stopped_at.is_some()));
}

#[tokio::test(flavor = "multi_thread")]
async fn a_worker_killed_mid_turn_loses_only_that_turn() {
    let (_dir, root, replay) = common::demo_with_replay();
    let db = pg::TestDatabase::create().await;
    let url = db.url();
    let store = PgStore::open(&url).await.unwrap();
    // A slow worker takes the first turn; it is killed while the turn is in flight.
    let (_home_a, mut slow) = worker(&url, "box-slow", DEMO_MODEL, &replay, 3_000);
    let run = fleet_run(&root, &url);
    wait_for_a_held_job(&store).await;
    slow.kill().unwrap();
    slow.wait().unwrap();
    let (_home_b, fast) = worker(&url, "box-fast", DEMO_MODEL, &replay, 50);

    let turns = completed_whole(run, &root, &store).await;
    assert!(turns
        .iter()
        .all(|t| t.worker.as_deref() == Some("box-fast")));
    // The killed turn was taken again: a second take of one job.
    let events = store.list_events(None, 0, 10_000).await.unwrap();
    let retaken = events
        .iter()
        .any(|e| e.event.name() == "turn_claimed" && e.event.data()["attempt"].as_i64() == Some(2));
    assert!(retaken, "no job was taken twice");
    stop(fast);
}

#[tokio::test(flavor = "multi_thread")]
async fn workers_get_only_the_turns_of_the_models_they_serve() {
    let (_dir, root, replay) = common::demo_with_replay();
    // Reviews use another model than development.
    std::fs::write(
        root.join("config/user_settings.json"),
        r#"{"preferred_reviewer": "gemma3-270m"}"#,
    )
    .unwrap();
    let db = pg::TestDatabase::create().await;
    let url = db.url();
    let (_home_a, coder) = worker(&url, "box-coder", DEMO_MODEL, &replay, 20);
    let (_home_b, guard) = worker(&url, "box-guard", "gemma3-270m", &replay, 20);
    let run = fleet_run(&root, &url);
    let store = PgStore::open(&url).await.unwrap();
    let turns = completed_whole(run, &root, &store).await;
    for t in &turns {
        let expected = if t.turn.review {
            "box-guard"
        } else {
            "box-coder"
        };
        assert_eq!(t.worker.as_deref(), Some(expected), "turn {}", t.turn.seq);
        let model = if t.turn.review {
            "gemma3-270m"
        } else {
            DEMO_MODEL
        };
        assert_eq!(t.turn.model, model, "turn {}", t.turn.seq);
    }
    stop(coder);
    stop(guard);
}

/// Waits until a worker holds a job (or fails after a minute).
async fn wait_for_a_held_job(store: &PgStore) {
    let started = Instant::now();
    while !store
        .list_workers()
        .await
        .unwrap()
        .iter()
        .any(|w| w.jobs_held > 0)
    {
        assert!(
            started.elapsed() < Duration::from_secs(60),
            "no job was taken"
        );
        tokio::time::sleep(Duration::from_millis(50)).await;
    }
}

/// Sends `signal` (`STOP`, `CONT`) to a process.
fn signal(child: &Child, signal: &str) {
    let sent = Command::new("kill")
        .args([&format!("-{signal}"), &child.id().to_string()])
        .status()
        .unwrap();
    assert!(sent.success());
}

/// Waits until `found` holds of the store's events (or fails after a minute).
async fn wait_for_event(
    store: &PgStore,
    what: &str,
    found: impl Fn(&orket_store::EventRecord) -> bool,
) {
    let started = Instant::now();
    while !store
        .list_events(None, 0, 10_000)
        .await
        .unwrap()
        .iter()
        .any(&found)
    {
        assert!(
            started.elapsed() < Duration::from_secs(60),
            "never saw {what}"
        );
        tokio::time::sleep(Duration::from_millis(50)).await;
    }
}

#[tokio::test(flavor = "multi_thread")]
async fn a_paused_worker_whose_job_was_taken_over_has_its_commit_refused() {
    let (_dir, root, replay) = common::demo_with_replay();
    let db = pg::TestDatabase::create().await;
    let url = db.url();
    let store = PgStore::open(&url).await.unwrap();
    let (_home_a, paused) = worker(&url, "box-paused", DEMO_MODEL, &replay, 3_000);
    let run = fleet_run(&root, &url);
    wait_for_a_held_job(&store).await;
    // Paused past its lease (2 s): its heartbeat stops, and another worker takes the job.
    signal(&paused, "STOP");
    let (_home_b, other) = worker(&url, "box-other", DEMO_MODEL, &replay, 20);
    wait_for_event(&store, "the paused worker's job taken again", |e| {
        e.event.name() == "turn_claimed"
            && e.event.data()["worker"] == "box-other"
            && e.event.data()["attempt"] == 2
    })
    .await;
    signal(&paused, "CONT");

    let turns = completed_whole(run, &root, &store).await;
    let started = Instant::now();
    let refused_seq = loop {
        let events = store.list_events(None, 0, 10_000).await.unwrap();
        let refused = events.iter().find(|e| {
            e.event.name() == "turn_commit_refused" && e.event.data()["worker"] == "box-paused"
        });
        if let Some(event) = refused {
            break event.event.data()["seq"].as_i64().unwrap();
        }
        if started.elapsed() > Duration::from_secs(60) {
            panic!(
                "no refusal recorded; the paused worker said: {}",
                said(&stop(paused))
            );
        }
        tokio::time::sleep(Duration::from_millis(50)).await;
    };
    // Nothing of the paused worker's late turn was kept: that turn is the other worker's.
    let redone = turns.iter().find(|t| t.turn.seq == refused_seq).unwrap();
    assert_eq!(redone.worker.as_deref(), Some("box-other"));
    let out = stop(paused);
    assert!(said(&out).contains("1 refused"), "{}", said(&out));
    stop(other);
}

#[tokio::test(flavor = "multi_thread")]
async fn a_run_started_through_the_api_of_a_fleet_server_runs_on_the_workers() {
    let (_dir, root, replay) = common::demo_with_replay();
    let db = pg::TestDatabase::create().await;
    let url = db.url();
    let (_home, box_a) = worker(&url, "box-a", DEMO_MODEL, &replay, 20);
    let mut serve = orket(&root, &url);
    serve
        .args(["serve", "--port", "0", "--fleet"])
        .env_remove("ORKET_API_KEY");
    let server = common::Server::start(serve);
    let answer = reqwest::Client::new()
        .post(format!("http://{}/v1/system/run-active", server.address))
        .header("content-type", "application/json")
        .body(r#"{"target": "hello_cli"}"#)
        .send()
        .await
        .unwrap();
    assert_eq!(answer.status().as_u16(), 202);
    let started: serde_json::Value = answer.json().await.unwrap();
    let run_id = started["session_id"].as_str().unwrap().to_string();

    let store = PgStore::open(&url).await.unwrap();
    let begun = Instant::now();
    let run = loop {
        // The API answers before the run's row is written.
        let run = store.get_run(&run_id).await.unwrap();
        if let Some(run) = run.filter(|r| r.status.is_final()) {
            break run;
        }
        assert!(
            begun.elapsed() < Duration::from_secs(60),
            "the run never ended"
        );
        tokio::time::sleep(Duration::from_millis(50)).await;
    };
    assert_eq!(
        run.status,
        orket_core::RunStatus::Completed,
        "{:?}",
        run.reason
    );
    let turns = store.list_turns(&run_id).await.unwrap();
    common::assert_every_turn_once(&turns);
    assert!(turns.iter().all(|t| t.worker.as_deref() == Some("box-a")));
    for (_, path, content) in common::PASSING_WORK {
        let written = std::fs::read_to_string(root.join("workspace/hello_cli").join(path)).unwrap();
        assert_eq!(written, content, "{path}");
    }
    drop(server);
    stop(box_a);
}

#[tokio::test(flavor = "multi_thread")]
async fn a_turn_no_worker_serves_is_said_then_taken_when_one_starts() {
    let (_dir, root, replay) = common::demo_with_replay();
    let db = pg::TestDatabase::create().await;
    let url = db.url();
    let store = PgStore::open(&url).await.unwrap();
    // Only a worker of another model at first.
    let (_home_a, other) = worker(&url, "box-other-model", "gemma3-270m", &replay, 20);
    let run = orket(&root, &url)
        .args(["run", "hello_cli", "--fleet"])
        .env("ORKET_FLEET_WAIT_NOTICE_SECS", "1")
        .stdout(Stdio::piped())
        .stderr(Stdio::piped())
        .spawn()
        .unwrap();
    wait_for_event(&store, "turn_waiting", |e| {
        e.event.name() == "turn_waiting" && e.event.data()["model"] == DEMO_MODEL
    })
    .await;
    let (_home_b, served) = worker(&url, "box-demo", DEMO_MODEL, &replay, 20);
    let out = run.wait_with_output().unwrap();
    let printed = said(&out);
    assert_eq!(out.status.code(), Some(0), "{printed}");
    assert!(
        printed.contains(&format!(
            "no worker serving {DEMO_MODEL} took it (start one: orket worker --model {DEMO_MODEL})"
        )),
        "{printed}"
    );
    let runs = store.list_runs(1).await.unwrap();
    let turns = store.list_turns(&runs[0].id).await.unwrap();
    common::assert_every_turn_once(&turns);
    assert!(turns
        .iter()
        .all(|t| t.worker.as_deref() == Some("box-demo")));
    stop(other);
    stop(served);
}

#[tokio::test(flavor = "multi_thread")]
async fn a_halted_fleet_run_takes_back_the_jobs_nobody_took() {
    let (_dir, root, _replay) = common::demo_with_replay();
    let db = pg::TestDatabase::create().await;
    let url = db.url();
    let store = PgStore::open(&url).await.unwrap();
    // No worker at all: the turns wait on their queue.
    let run = fleet_run(&root, &url);
    wait_for_event(&store, "turn_queued", |e| e.event.name() == "turn_queued").await;
    signal(&run, "INT");
    let out = run.wait_with_output().unwrap();
    assert_eq!(out.status.code(), Some(1), "{}", said(&out));
    let runs = store.list_runs(1).await.unwrap();
    assert_eq!(runs[0].status, orket_core::RunStatus::Canceled);
    assert!(store.list_turns(&runs[0].id).await.unwrap().is_empty());
    // The queue is empty: a worker started now finds nothing to do.
    let fleet = orket_store::PgFleet::connect(&store).await.unwrap();
    let taken = fleet
        .claim("late", &[DEMO_MODEL.to_string()], Duration::from_secs(5))
        .await
        .unwrap();
    assert!(taken.is_none(), "{taken:?}");
}
