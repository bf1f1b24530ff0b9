//! The tamper-evident ledger as a user checks it: `orket verify <run>`, `orket export`,
//! `orket verify --bundle`, each change after the fact named; and a run killed with SIGKILL
//! at random points, resumed each time, that ends with every turn once and its ledger intact.

mod common;

use assert_cmd::Command;
use orket_store::{SqliteStore, Store};
use std::collections::BTreeSet;
use std::path::Path;
use std::process::Output;
use std::time::{Duration, Instant, SystemTime};

fn orket(root: &Path) -> Command {
    let mut cmd = Command::cargo_bin("orket").unwrap();
    cmd.env_remove("ORKET_DB")
        .env_remove("ORKET_PROVIDER")
        .arg("--root")
        .arg(root);
    cmd
}

fn said(out: &Output) -> String {
    format!(
        "{}{}",
        String::from_utf8_lossy(&out.stdout),
        String::from_utf8_lossy(&out.stderr)
    )
}

/// Runs `orket` with `args` and returns its exit code and everything it printed.
fn call(root: &Path, args: &[&str]) -> (Option<i32>, String) {
    let out = orket(root).args(args).output().unwrap();
    (out.status.code(), said(&out))
}

/// A plain connection to the project's store, to change it behind Orket's back.
fn raw(root: &Path) -> rusqlite::Connection {
    rusqlite::Connection::open(root.join(".orket/orket.db")).unwrap()
}

#[test]
fn verify_and_export_show_a_run_unchanged_and_name_the_first_change() {
    let (dir, root, replay) = common::demo_with_replay();
    let replay = replay.to_str().unwrap();
    let (code, out) = call(
        &root,
        &[
            "run",
            "hello_cli",
            "--provider",
            "replay",
            "--replay",
            replay,
        ],
    );
    assert_eq!(code, Some(0), "{out}");
    let run_id: String = raw(&root)
        .query_row("SELECT id FROM sessions", [], |r| r.get(0))
        .unwrap();

    let (code, out) = call(&root, &["verify", &run_id]);
    assert_eq!(code, Some(0), "{out}");
    assert!(
        out.starts_with(&format!("run {run_id}: ledger intact — 6 turns, head ")),
        "{out}"
    );
    // The success ledger: what was finished, when, by which run.
    let (code, out) = call(&root, &["ledger"]);
    assert_eq!(code, Some(0), "{out}");
    assert!(out.starts_with("FINISHED "), "{out}");
    assert!(
        out.contains(&run_id) && out.contains("build-hello_cli") && out.contains("hello_cli\n"),
        "{out}"
    );
    let (_, json) = call(&root, &["ledger", "--json"]);
    let rows: serde_json::Value = serde_json::from_str(&json).unwrap();
    assert_eq!(rows[0]["run_id"], run_id.as_str());
    assert_eq!(rows.as_array().unwrap().len(), 1);
    let (code, out) = call(&root, &["ledger", "--build", "build-other"]);
    assert_eq!((code, out.as_str()), (Some(0), "Nothing finished yet.\n"));

    // The bundle checks offline, from anywhere.
    let bundle = dir.path().join("run.bundle.json");
    let (code, out) = call(&root, &["export", &run_id, bundle.to_str().unwrap()]);
    assert_eq!(code, Some(0), "{out}");
    assert!(out.contains(&format!("run {run_id}, 6 turns, ")), "{out}");
    let elsewhere = tempfile::tempdir().unwrap();
    let check = |file: &Path| {
        call(
            elsewhere.path(),
            &["verify", "--bundle", file.to_str().unwrap()],
        )
    };
    let (code, out) = check(&bundle);
    assert_eq!(code, Some(0), "{out}");
    assert!(out.contains("intact — 6 turns,"), "{out}");
    let doc: serde_json::Value =
        serde_json::from_str(&std::fs::read_to_string(&bundle).unwrap()).unwrap();
    let files: BTreeSet<&str> = doc["files"]
        .as_array()
        .unwrap()
        .iter()
        .map(|f| f["path"].as_str().unwrap())
        .collect();
    for file in ["hello.py", "README.md", "NOTES.md"] {
        assert!(files.contains(file), "{files:?}");
    }

    // A turn's reply changed in the bundle: named by its seq.
    let mut changed = doc.clone();
    let third = changed["turns"]
        .as_array_mut()
        .unwrap()
        .iter_mut()
        .find(|t| t["seq"] == 3)
        .unwrap();
    third["content"] = serde_json::json!("I approve everything.");
    let tampered = dir.path().join("turn.bundle.json");
    std::fs::write(&tampered, changed.to_string()).unwrap();
    let (code, out) = check(&tampered);
    assert_eq!(code, Some(1), "{out}");
    assert!(out.contains("broken: turn 3 (row "), "{out}");
    assert!(out.contains("was changed after it was committed"), "{out}");

    // A file's bytes changed in the bundle: named by its path.
    let mut changed = doc.clone();
    let file = changed["files"]
        .as_array_mut()
        .unwrap()
        .iter_mut()
        .find(|f| f["path"] == "hello.py")
        .unwrap();
    file["content_base64"] = serde_json::json!("cHJpbnQoJ293bmVkJykK");
    std::fs::write(&tampered, changed.to_string()).unwrap();
    let (code, out) = check(&tampered);
    assert_eq!(code, Some(1), "{out}");
    assert!(out.contains("broken: file hello.py: its content"), "{out}");

    // Not a bundle: named.
    std::fs::write(&tampered, "{}").unwrap();
    let (code, out) = check(&tampered);
    assert_eq!(code, Some(1), "{out}");
    assert!(out.contains("not an Orket run bundle"), "{out}");

    // In the store: a result edited, then the last turn removed.
    raw(&root)
        .execute(
            "UPDATE turns SET tool_results = '[]' WHERE run_id = ?1 AND seq = 2",
            [&run_id],
        )
        .unwrap();
    let (code, out) = call(&root, &["verify", &run_id]);
    assert_eq!(code, Some(1), "{out}");
    assert!(
        out.contains(&format!("run {run_id}: ledger broken: turn 2 (row ")),
        "{out}"
    );
    let mut db = raw(&root);
    let tx = db.transaction().unwrap();
    tx.execute("DELETE FROM turns WHERE run_id = ?1 AND seq = 2", [&run_id])
        .unwrap();
    tx.commit().unwrap();
    let (code, out) = call(&root, &["verify", &run_id]);
    assert_eq!(code, Some(1), "{out}");
    assert!(
        out.contains("does not follow the turn before it: a turn was removed"),
        "{out}"
    );
    let (code, out) = call(&root, &["verify", "deadbeef"]);
    assert_eq!(code, Some(1), "{out}");
    assert!(out.contains("run deadbeef not found"), "{out}");
}

/// A small pseudo-random sequence (xorshift), seeded from the clock and printed, so a failing
/// pattern of kills can be replayed by fixing the seed.
struct Draws(u64);

impl Draws {
    fn next(&mut self, below: u64) -> u64 {
        self.0 ^= self.0 << 13;
        self.0 ^= self.0 >> 7;
        self.0 ^= self.0 << 17;
        self.0 % below
    }
}

/// How many times the chaos test kills a run's process.
const KILLS: usize = 10;

#[tokio::test(flavor = "multi_thread")]
async fn a_run_killed_ten_times_at_random_points_ends_with_every_turn_once() {
    let seed = std::env::var("ORKET_CHAOS_SEED")
        .ok()
        .and_then(|s| s.parse().ok())
        .unwrap_or_else(|| {
            SystemTime::now()
                .duration_since(SystemTime::UNIX_EPOCH)
                .unwrap()
                .as_nanos() as u64
                | 1
        });
    eprintln!("kill pattern seed: ORKET_CHAOS_SEED={seed}");
    let mut draws = Draws(seed);
    // A run that completes before all the kills were made is checked, and the kills go on
    // with a new run: KILLS kills in all, every run checked.
    let mut kills = 0;
    while kills < KILLS {
        kills += kill_and_resume_to_the_end(KILLS - kills, &mut draws).await;
    }
}

/// Runs the demo epic, killing its process with SIGKILL up to `kills` times at random points
/// (each after the process took the build) and resuming it each time, then resumes it to its
/// end and checks it: completed, every turn once, every file written, the ledger intact.
/// Returns how many kills it made.
async fn kill_and_resume_to_the_end(kills: usize, draws: &mut Draws) -> usize {
    let (_dir, root, replay) = common::demo_with_replay();
    let bin = assert_cmd::cargo::cargo_bin("orket");
    let db = root.join(".orket/orket.db");
    let start = |args: &[&str]| {
        std::process::Command::new(&bin)
            .args(args)
            .args([
                "--provider",
                "replay",
                "--replay-delay-ms",
                "300",
                "--replay",
            ])
            .arg(&replay)
            .arg("--root")
            .arg(&root)
            .env_remove("ORKET_DB")
            .stdout(std::process::Stdio::null())
            .stderr(std::process::Stdio::null())
            .spawn()
            .unwrap()
    };
    let mut run_id: Option<String> = None;
    let mut made = 0;
    let mut committed = Vec::new();
    while made < kills {
        let mut child = match &run_id {
            None => start(&["run", "hello_cli", "--concurrency", "1"]),
            Some(id) => start(&["resume", id]),
        };
        let Some(holding) = wait_for_lease(&db, &mut child).await else {
            break; // It ended (the run completed) before it was seen holding the build.
        };
        run_id.get_or_insert(holding);
        let wait = draws.next(900);
        eprintln!("kill in {wait} ms");
        tokio::time::sleep(Duration::from_millis(wait)).await;
        if child.try_wait().unwrap().is_some() {
            break; // It ended before the kill.
        }
        child.kill().unwrap();
        child.wait().unwrap();
        made += 1;
        let store = SqliteStore::open(&db).await.unwrap();
        let id = run_id.as_deref().unwrap();
        committed.push(store.list_turns(id).await.unwrap().len());
    }
    eprintln!("{made} kills; turns committed after each: {committed:?}");

    let store = SqliteStore::open(&db).await.unwrap();
    let run_id = match run_id {
        Some(id) => id,
        None => store.list_runs(1).await.unwrap()[0].id.clone(),
    };
    if store.get_run(&run_id).await.unwrap().unwrap().status != orket_core::RunStatus::Completed {
        let replay = replay.to_str().unwrap();
        let (code, out) = call(
            &root,
            &[
                "resume",
                &run_id,
                "--provider",
                "replay",
                "--replay",
                replay,
            ],
        );
        assert_eq!(code, Some(0), "{out}");
    }
    let run = store.get_run(&run_id).await.unwrap().unwrap();
    assert_eq!(run.status, orket_core::RunStatus::Completed, "{run:?}");
    let turns = store.list_turns(&run_id).await.unwrap();
    common::assert_every_turn_once(&turns);
    for (_, file, content) in common::PASSING_WORK {
        let written = std::fs::read_to_string(root.join("workspace/hello_cli").join(file));
        assert_eq!(written.ok().as_deref(), Some(content), "{file}");
    }
    let (code, out) = call(&root, &["verify", &run_id]);
    assert_eq!(code, Some(0), "{out}");
    assert!(out.contains("ledger intact — 6 turns"), "{out}");
    made
}

/// Waits until `child` holds a build's lease (it has started or resumed its run) and returns
/// the run holding it; `None` when the child ended first.
async fn wait_for_lease(db: &Path, child: &mut std::process::Child) -> Option<String> {
    let deadline = Instant::now() + Duration::from_secs(60);
    loop {
        assert!(
            Instant::now() < deadline,
            "process {} never took the build",
            child.id()
        );
        if db.exists() {
            let store = SqliteStore::open(db).await.unwrap();
            if let Some(lease) = store.get_lease("build-hello_cli").await.unwrap() {
                if lease.holder.pid == child.id() {
                    return Some(lease.run_id);
                }
            }
        }
        if child.try_wait().unwrap().is_some() {
            return None;
        }
        tokio::time::sleep(Duration::from_millis(20)).await;
    }
}
