//! The fleet on a real PostgreSQL, in one run: turns per second of an epic with 1, 2 and 4
//! workers whose model takes 200 ms per reply, and the engine's overhead per turn on
//! PostgreSQL against SQLite (turns run in-process, instant replies). Writes
//! `bench/FLEET_RESULTS.md`.
//!
//! `cargo run --release -p orket-bench --features postgres --bin fleet` with a PostgreSQL
//! server at `ORKET_BENCH_POSTGRES_URL`, else the URL `bash .ci/postgres` wrote to
//! `target/postgres-url`. Each measurement gets a database of its own, dropped after it.
//! The workers are tasks of this process (the same `run_worker` as `orket worker`), each with
//! its own folder and its own replay provider.

#[path = "project.rs"]
mod project;

use anyhow::{bail, Context, Result};
use orket_core::assets::AssetTree;
use orket_engine::fleet::{run_worker, WorkerOptions};
use orket_engine::{Engine, Halt, RunOptions};
use orket_llm::ReplayProvider;
use orket_store::events::EventBus;
use orket_store::{PgFleet, PgStore, SqliteStore, Store};
use project::Shape;
use sqlx::Connection;
use std::path::Path;
use std::sync::Arc;
use std::time::{Duration, Instant};

/// The model's time per reply in the fleet measurement.
const MODEL_DELAY: Duration = Duration::from_millis(200);
/// Issues of the fleet measurement's epic (two turns each).
const FLEET_ISSUES: usize = 16;
/// Jobs the run keeps queued at once (more than the largest fleet, so no worker waits on it).
const QUEUED: usize = 8;
/// Issues of the overhead measurement's epic.
const OVERHEAD_ISSUES: usize = 100;
const COMMAND: &str = "cargo run --release -p orket-bench --features postgres --bin fleet";

/// One measured run.
struct Row {
    label: String,
    turns: usize,
    wall: Duration,
}

impl Row {
    fn turns_per_second(&self) -> f64 {
        self.turns as f64 / self.wall.as_secs_f64().max(f64::EPSILON)
    }

    fn ms_per_turn(&self) -> f64 {
        self.wall.as_secs_f64() * 1000.0 / self.turns.max(1) as f64
    }
}

/// A database of its own on the server, dropped afterwards.
struct Database {
    admin: String,
    name: String,
}

impl Database {
    async fn create(admin: &str, name: &str) -> Result<Database> {
        let mut conn = sqlx::PgConnection::connect(admin)
            .await
            .with_context(|| format!("cannot reach PostgreSQL at {admin}"))?;
        sqlx::raw_sql(&format!("DROP DATABASE IF EXISTS {name} WITH (FORCE)"))
            .execute(&mut conn)
            .await?;
        sqlx::raw_sql(&format!("CREATE DATABASE {name}"))
            .execute(&mut conn)
            .await?;
        Ok(Database {
            admin: admin.to_string(),
            name: name.to_string(),
        })
    }

    fn url(&self) -> String {
        orket_store::url_with_database(&self.admin, &self.name)
    }

    async fn drop_it(self) -> Result<()> {
        let mut conn = sqlx::PgConnection::connect(&self.admin).await?;
        sqlx::raw_sql(&format!(
            "DROP DATABASE IF EXISTS {} WITH (FORCE)",
            self.name
        ))
        .execute(&mut conn)
        .await?;
        Ok(())
    }
}

fn server_url() -> Result<String> {
    if let Ok(url) = std::env::var("ORKET_BENCH_POSTGRES_URL") {
        return Ok(url);
    }
    let file = concat!(env!("CARGO_MANIFEST_DIR"), "/../../target/postgres-url");
    std::fs::read_to_string(file)
        .map(|u| u.trim().to_string())
        .context("no PostgreSQL: set ORKET_BENCH_POSTGRES_URL or run `bash .ci/postgres`")
}

fn replay(issues: usize, delay: Duration) -> Result<Arc<ReplayProvider>> {
    Ok(Arc::new(
        ReplayProvider::from_jsonl("bench.jsonl", &project::replay_jsonl(issues))?
            .with_delay(delay),
    ))
}

/// The epic run by `workers` workers of the fleet.
async fn fleet_run(admin: &str, workers: usize) -> Result<Row> {
    let dir = tempfile::tempdir()?;
    let root = dir.path().join("project");
    project::write_project(&root, FLEET_ISSUES, Shape::Independent)?;
    let db = Database::create(admin, &format!("orket_bench_fleet_{workers}")).await?;
    let store = PgStore::open(&db.url()).await?;
    let fleet = Arc::new(PgFleet::connect(&store).await?);
    let stop = Halt::new();
    let tasks: Vec<_> = (0..workers)
        .map(|n| {
            let options = WorkerOptions {
                name: format!("bench-{n}"),
                host: "bench".to_string(),
                models: vec!["smollm2-135m-instruct".to_string()],
                provider: replay(FLEET_ISSUES, MODEL_DELAY).expect("the replay file"),
                dir: dir.path().join(format!("worker-{n}")),
                lease: Duration::from_secs(30),
                idle: Duration::from_millis(20),
                verify: Default::default(),
                context_window: 10,
            };
            tokio::spawn(run_worker(Arc::clone(&fleet), options, stop.clone()))
        })
        .collect();
    let options = RunOptions {
        concurrency: QUEUED,
        max_iterations: 2 * FLEET_ISSUES + 10,
        fleet: Some(Arc::clone(&fleet)),
        ..RunOptions::new(replay(0, Duration::ZERO)?)
    };
    let engine = Engine::new(
        AssetTree::new(&root),
        Arc::new(store.clone()) as Arc<dyn Store>,
        EventBus::default(),
    );
    let started = Instant::now();
    let outcome = engine.run(project::EPIC, options).await?;
    let wall = started.elapsed();
    stop.raise();
    for task in tasks {
        task.await??;
    }
    let outcome = outcome.into_iter().next().context("no outcome")?;
    if outcome.status != orket_core::RunStatus::Completed {
        bail!(
            "the fleet run ended {:?}: {:?}",
            outcome.status,
            outcome.reason
        );
    }
    store.close().await;
    db.drop_it().await?;
    Ok(Row {
        label: format!("{workers} worker{}", if workers == 1 { "" } else { "s" }),
        turns: outcome.turns,
        wall,
    })
}

/// The epic run in-process (instant replies) on `store`.
async fn local_run(label: &str, root: &Path, store: Arc<dyn Store>) -> Result<Row> {
    let options = RunOptions {
        max_iterations: 2 * OVERHEAD_ISSUES + 10,
        ..RunOptions::new(replay(OVERHEAD_ISSUES, Duration::ZERO)?)
    };
    let engine = Engine::new(AssetTree::new(root), store, EventBus::default());
    let started = Instant::now();
    let outcome = engine.run(project::EPIC, options).await?;
    let wall = started.elapsed();
    let outcome = outcome.into_iter().next().context("no outcome")?;
    if outcome.status != orket_core::RunStatus::Completed {
        bail!("{label} ended {:?}: {:?}", outcome.status, outcome.reason);
    }
    Ok(Row {
        label: label.to_string(),
        turns: outcome.turns,
        wall,
    })
}

async fn overhead(admin: &str) -> Result<(Row, Row)> {
    let dir = tempfile::tempdir()?;
    let sqlite_root = dir.path().join("sqlite");
    project::write_project(&sqlite_root, OVERHEAD_ISSUES, Shape::Independent)?;
    let sqlite = SqliteStore::open(&sqlite_root.join(".orket/orket.db")).await?;
    let on_sqlite = local_run("SQLite", &sqlite_root, Arc::new(sqlite.clone())).await?;
    sqlite.close().await;

    let pg_root = dir.path().join("postgres");
    project::write_project(&pg_root, OVERHEAD_ISSUES, Shape::Independent)?;
    let db = Database::create(admin, "orket_bench_overhead").await?;
    let pg = PgStore::open(&db.url()).await?;
    let on_pg = local_run("PostgreSQL", &pg_root, Arc::new(pg.clone())).await?;
    pg.close().await;
    db.drop_it().await?;
    Ok((on_sqlite, on_pg))
}

fn load_average() -> String {
    std::fs::read_to_string("/proc/loadavg")
        .map(|l| l.split_whitespace().take(3).collect::<Vec<_>>().join(", "))
        .unwrap_or_else(|_| "unknown".to_string())
}

#[tokio::main]
async fn main() -> Result<()> {
    let admin = server_url()?;
    let load_before = load_average();
    let started = Instant::now();
    let mut fleet = Vec::new();
    for workers in [1, 2, 4] {
        eprintln!("fleet: {workers} worker(s) ...");
        fleet.push(fleet_run(&admin, workers).await?);
    }
    eprintln!("overhead: SQLite, then PostgreSQL ...");
    let (sqlite, pg) = overhead(&admin).await?;
    let total = started.elapsed();

    let base = fleet[0].turns_per_second();
    let mut fleet_table = String::from(
        "| Workers | Turns | Wall (s) | Turns/s | × 1 worker | Ideal turns/s |\n|---|---:|---:|---:|---:|---:|\n",
    );
    for (row, workers) in fleet.iter().zip([1usize, 2, 4]) {
        // Every turn is one reply for the guard and one for the coder: 200 ms of model each.
        let ideal = workers as f64 / MODEL_DELAY.as_secs_f64();
        fleet_table.push_str(&format!(
            "| {} | {} | {:.2} | {:.2} | {:.2} | {:.1} |\n",
            row.label,
            row.turns,
            row.wall.as_secs_f64(),
            row.turns_per_second(),
            row.turns_per_second() / base,
            ideal
        ));
    }
    let overhead_table = format!(
        "| Store | Turns | Wall (s) | ms/turn |\n|---|---:|---:|---:|\n| {} | {} | {:.3} | {:.3} |\n| {} | {} | {:.3} | {:.3} |\n\nPostgreSQL / SQLite, per turn: **{:.2}×**\n",
        sqlite.label,
        sqlite.turns,
        sqlite.wall.as_secs_f64(),
        sqlite.ms_per_turn(),
        pg.label,
        pg.turns,
        pg.wall.as_secs_f64(),
        pg.ms_per_turn(),
        pg.ms_per_turn() / sqlite.ms_per_turn()
    );
    let commit = std::process::Command::new("git")
        .args(["rev-parse", "--short", "HEAD"])
        .output()
        .ok()
        .map(|o| String::from_utf8_lossy(&o.stdout).trim().to_string())
        .unwrap_or_default();
    let nproc = std::thread::available_parallelism().map_or(0, |n| n.get());
    let text = format!(
        "# The fleet: results\n\nMeasured with `{COMMAND}` on {date}, in one run ({total:.1} s),\n\
         against PostgreSQL {server} on loopback (`bash .ci/postgres`: fsync off).\n\n\
         - `nproc`: {nproc}; git commit: {commit}\n\
         - load average (1, 5, 15 min): {load_before} at the start, {load_after} at the end\n\n\
         ## Turns per second with 1, 2 and 4 workers\n\n\
         An epic of {FLEET_ISSUES} independent issues ({turns} turns), `orket run --fleet` keeping {QUEUED} jobs\n\
         queued; each worker's model takes {delay} ms per reply (a replay with a delay). Ideal: every\n\
         worker always busy, one reply per turn.\n\n{fleet_table}\n\
         ## Engine overhead per turn: PostgreSQL against SQLite\n\n\
         The same epic of {OVERHEAD_ISSUES} issues run in-process with instant replies (so the time is\n\
         the engine's and the store's), concurrency 3, on each store.\n\n{overhead_table}",
        date = chrono::Utc::now().format("%Y-%m-%d %H:%M UTC"),
        total = total.as_secs_f64(),
        server = "15",
        turns = fleet[0].turns,
        delay = MODEL_DELAY.as_millis(),
        load_after = load_average(),
    );
    let out = concat!(env!("CARGO_MANIFEST_DIR"), "/../FLEET_RESULTS.md");
    std::fs::write(out, &text)?;
    print!("{text}");
    Ok(())
}
