//! The commands on a PostgreSQL store, as a user types them: `--db postgres://...` for a run
//! and everything that reads it, and `orket store copy` moving a SQLite project's history.
#![cfg(feature = "postgres")]

mod common;

#[path = "../../orket-store/tests/common/pg.rs"]
#[allow(dead_code)]
mod pg;

use assert_cmd::Command;
use orket_store::{PgStore, Store};
use std::path::Path;

/// `orket --root <root> --db <db> <args>`: its exit code and everything it printed.
fn call(root: &Path, db: &str, args: &[&str]) -> (Option<i32>, String) {
    let out = Command::cargo_bin("orket")
        .unwrap()
        .env_remove("ORKET_DB")
        .env_remove("ORKET_PROVIDER")
        .arg("--root")
        .arg(root)
        .arg("--db")
        .arg(db)
        .args(args)
        .output()
        .unwrap();
    let said = format!(
        "{}{}",
        String::from_utf8_lossy(&out.stdout),
        String::from_utf8_lossy(&out.stderr)
    );
    (out.status.code(), said)
}

/// The id of the one run in the store.
async fn only_run(store: &dyn Store) -> String {
    let runs = store.list_runs(10).await.unwrap();
    assert_eq!(runs.len(), 1, "{runs:?}");
    runs[0].id.clone()
}

#[tokio::test(flavor = "multi_thread")]
async fn the_demo_epic_runs_on_postgres_and_every_command_reads_it() {
    let (_dir, root, replay) = common::demo_with_replay();
    let db = pg::TestDatabase::create().await;
    let url = db.url();
    let (code, out) = call(
        &root,
        &url,
        &[
            "run",
            "hello_cli",
            "--provider",
            "replay",
            "--replay",
            replay.to_str().unwrap(),
        ],
    );
    assert_eq!(code, Some(0), "{out}");
    assert!(
        !root.join(".orket/orket.db").exists(),
        "no SQLite file was made"
    );

    let store = PgStore::open(&url).await.unwrap();
    let run_id = only_run(&store).await;
    let run = store.get_run(&run_id).await.unwrap().unwrap();
    assert_eq!(run.status, orket_core::RunStatus::Completed);
    common::assert_every_turn_once(&store.list_turns(&run_id).await.unwrap());
    for issue in store.list_issues(&run.build_id).await.unwrap() {
        assert_eq!(issue.status, orket_core::Status::Done, "{}", issue.id);
    }
    assert!(store.get_lease(&run.build_id).await.unwrap().is_none());

    let (code, out) = call(&root, &url, &["verify", &run_id]);
    assert_eq!(code, Some(0), "{out}");
    assert!(out.contains("ledger intact — 6 turns"), "{out}");
    let (code, out) = call(&root, &url, &["runs"]);
    assert_eq!(code, Some(0), "{out}");
    assert!(out.contains(&run_id) && out.contains("completed"), "{out}");
    let (code, out) = call(&root, &url, &["show", &run_id]);
    assert_eq!(code, Some(0), "{out}");
    assert!(out.contains("#6 DEMO-2 integrity_guard"), "{out}");
    let (code, out) = call(&root, &url, &["board"]);
    assert_eq!(code, Some(0), "{out}");
    assert!(out.contains("done"), "{out}");
}

#[tokio::test(flavor = "multi_thread")]
async fn the_loop_works_the_demo_on_postgres_and_a_second_finds_nothing_ready() {
    let (_dir, root, replay) = common::demo_with_replay();
    let db = pg::TestDatabase::create().await;
    let url = db.url();
    let replay = replay.to_str().unwrap();
    let args = ["loop", "--once", "--provider", "replay", "--replay", replay];
    let (code, out) = call(&root, &url, &args);
    assert_eq!(code, Some(0), "{out}");
    assert!(
        out.contains("loop: picked DEMO-1 of hello_cli: score 4.0, 1 downstream"),
        "{out}"
    );
    assert!(out.contains(": completed — nothing is ready"), "{out}");
    let store = PgStore::open(&url).await.unwrap();
    let runs = store.list_runs(10).await.unwrap();
    let loops: Vec<_> = runs
        .iter()
        .filter(|r| r.kind == orket_core::RunKind::Loop)
        .collect();
    assert_eq!(loops.len(), 1, "{runs:?}");
    assert_eq!(loops[0].status, orket_core::RunStatus::Completed);
    let cards: Vec<_> = runs
        .iter()
        .filter(|r| r.kind == orket_core::RunKind::Issue)
        .collect();
    assert_eq!(cards.len(), 3, "{runs:?}");
    assert!(cards
        .iter()
        .all(|r| r.status == orket_core::RunStatus::Completed));
    for issue in store.list_issues("build-hello_cli").await.unwrap() {
        assert_eq!(issue.status, orket_core::Status::Done, "{}", issue.id);
    }
    assert!(store.get_lease("loop").await.unwrap().is_none());

    let (code, out) = call(&root, &url, &args);
    assert_eq!(code, Some(0), "{out}");
    assert!(out.contains("cards: 0"), "{out}");
    let (code, out) = call(&root, &url, &["runs"]);
    assert_eq!(code, Some(0), "{out}");
    assert!(out.contains(&loops[0].id), "{out}");
}

#[tokio::test(flavor = "multi_thread")]
async fn store_copy_moves_a_sqlite_project_to_postgres() {
    let (_dir, root, replay) = common::demo_with_replay();
    let file = root.join(".orket/orket.db");
    let file = file.to_str().unwrap();
    let (code, out) = call(
        &root,
        file,
        &[
            "run",
            "hello_cli",
            "--provider",
            "replay",
            "--replay",
            replay.to_str().unwrap(),
        ],
    );
    assert_eq!(code, Some(0), "{out}");
    let db = pg::TestDatabase::create().await;
    let url = db.url();

    let (code, out) = call(
        &root,
        file,
        &["store", "copy", "--from", file, "--to", &url],
    );
    assert_eq!(code, Some(0), "{out}");
    assert!(out.starts_with("Copied "), "{out}");
    assert!(out.contains("turns") && out.contains("6"), "{out}");

    let sqlite = orket_store::SqliteStore::open(Path::new(file))
        .await
        .unwrap();
    let run_id = only_run(&sqlite).await;
    let pg = PgStore::open(&url).await.unwrap();
    assert_eq!(
        sqlite.list_turns(&run_id).await.unwrap(),
        pg.list_turns(&run_id).await.unwrap()
    );
    let (code, out) = call(&root, &url, &["verify", &run_id]);
    assert_eq!(code, Some(0), "{out}");
    assert!(out.contains("ledger intact — 6 turns"), "{out}");

    // Copying again would mix two histories: refused, naming what is there.
    let (code, out) = call(
        &root,
        file,
        &["store", "copy", "--from", file, "--to", &url],
    );
    assert_eq!(code, Some(1), "{out}");
    assert!(out.contains("already holds a project"), "{out}");
    // A target that is not a URL is named.
    let (code, out) = call(
        &root,
        file,
        &["store", "copy", "--from", file, "--to", "/tmp/x.db"],
    );
    assert_eq!(code, Some(1), "{out}");
    assert!(
        out.contains("--to /tmp/x.db is not a PostgreSQL URL"),
        "{out}"
    );
}
