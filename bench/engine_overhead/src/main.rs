//! `engine_overhead`: how much time Orket's traction loop itself spends per turn.
//!
//! Every scenario generates a fresh project (see [`project`]) in a temporary folder, opens a
//! fresh SQLite store in it, and runs its epic with [`Engine::run`] against a
//! [`ReplayProvider`] that answers instantly (or after a fixed delay, to compare the engine's
//! overhead with model time). The wall time of `Engine::run` is all engine: planning, prompts, the
//! gate, file tools, the store, the event log. The results are printed as Markdown and written
//! to `bench/RESULTS.md` (unless `--no-write` is given).
//!
//! The process exits non-zero when a run does not end `completed`. Timings are reported, never
//! asserted.

#![forbid(unsafe_code)]

mod project;
mod report;
mod timed_store;

use anyhow::{Context, Result};
use orket_core::assets::AssetTree;
use orket_core::Event;
use orket_core::RunStatus;
use orket_engine::{Engine, RunOptions};
use orket_llm::ReplayProvider;
use orket_store::events::EventBus;
use orket_store::{SqliteStore, Store};
use project::Shape;
use report::Measured;
use std::path::Path;
use std::sync::Arc;
use std::time::{Duration, Instant};
use timed_store::TimedStore;

/// The engine's default concurrency (a label names any other).
const DEFAULT_CONCURRENCY: usize = 3;

/// The simulated model time of the "model time" variants.
const MODEL_DELAY: Duration = Duration::from_millis(20);

/// A per-run safety net, so a pathological slowdown ends the run (`budget_exceeded`, reported
/// and turned into a non-zero exit) instead of hanging the benchmark.
const TIME_BUDGET: Duration = Duration::from_secs(150);

/// One benchmark configuration.
#[derive(Debug, Clone, Copy)]
struct Scenario {
    /// How the issues depend on each other.
    shape: Shape,
    /// How many issues the epic has.
    issues: usize,
    /// `EngineOptions::concurrency`.
    concurrency: usize,
    /// The replay provider's delay per reply (`None`: instant).
    delay: Option<Duration>,
}

impl Scenario {
    /// A short, unique name: `epic-100`, `chain-100`, with `/c8` for a concurrency other than
    /// the default 3 and `/20ms` for a model delay (`epic-1000/c8`, `epic-100/20ms`).
    fn label(&self) -> String {
        let shape = match self.shape {
            Shape::Independent => "epic",
            Shape::Chain => "chain",
        };
        let mut label = format!("{shape}-{}", self.issues);
        if self.concurrency != DEFAULT_CONCURRENCY {
            label.push_str(&format!("/c{}", self.concurrency));
        }
        if let Some(delay) = self.delay {
            label.push_str(&format!("/{}ms", delay.as_millis()));
        }
        label
    }
}

/// The scenarios, smallest first (the peak RSS column is the process peak so far).
fn scenarios() -> Vec<Scenario> {
    let s = |shape, issues, concurrency, delay| Scenario {
        shape,
        issues,
        concurrency,
        delay,
    };
    vec![
        s(Shape::Independent, 10, 3, None),
        s(Shape::Independent, 100, 3, None),
        s(Shape::Independent, 100, 3, Some(MODEL_DELAY)),
        s(Shape::Chain, 100, 3, None),
        s(Shape::Chain, 100, 3, Some(MODEL_DELAY)),
        // Not in the original brief: shows how a chain's cost per turn grows with its length.
        s(Shape::Chain, 300, 3, None),
        s(Shape::Independent, 1000, 3, None),
        s(Shape::Independent, 1000, 8, None),
    ]
}

/// Generates the scenario's project, runs its epic once and measures it; with `keep`, the
/// project (and its store) is left on disk for inspection.
async fn run_scenario(scenario: Scenario, keep: bool) -> Result<Measured> {
    let setup_started = Instant::now();
    let dir = tempfile::tempdir().context("cannot create a temporary folder")?;
    let root = dir.path().join("project");
    project::write_project(&root, scenario.issues, scenario.shape)?;
    let sqlite = Arc::new(
        SqliteStore::open(&root.join(".orket/orket.db"))
            .await
            .context("cannot open the store")?,
    );
    let timed = Arc::new(TimedStore::new(Arc::clone(&sqlite) as Arc<dyn Store>));
    let mut replay =
        ReplayProvider::from_jsonl("bench.jsonl", &project::replay_jsonl(scenario.issues))
            .context("cannot build the replay provider")?;
    if let Some(delay) = scenario.delay {
        replay = replay.with_delay(delay);
    }
    let options = RunOptions {
        concurrency: scenario.concurrency,
        // Two ticks per dependency level (write, review), plus slack.
        max_iterations: 2 * scenario.issues + 10,
        retry: orket_llm::RetryPolicy {
            attempts: 3,
            backoff: Duration::from_millis(1),
        },
        time_budget: Some(TIME_BUDGET),
        ..RunOptions::new(Arc::new(replay))
    };
    let engine = Engine::new(
        AssetTree::new(&root),
        Arc::clone(&timed) as Arc<dyn Store>,
        EventBus::default(),
    );
    let setup = setup_started.elapsed();

    let cpu_before = process_cpu_time();
    let started = Instant::now();
    let outcomes = engine
        .run(project::EPIC, options)
        .await
        .with_context(|| format!("{}: the run failed", scenario.label()))?;
    let wall = started.elapsed();
    let cpu = process_cpu_time()
        .zip(cpu_before)
        .map(|(after, before)| after.saturating_sub(before));
    let peak_rss_kib = proc_status_kib("VmHWM");

    let outcome = outcomes
        .into_iter()
        .next()
        .context("the run gave no outcome")?;
    let tick_sizes = tick_sizes(sqlite.as_ref(), &outcome.run_id).await?;
    let store_stats = timed.stats();
    drop(engine);
    sqlite.close().await;
    if keep {
        let kept = dir.keep();
        eprintln!("  kept the project in {}", kept.join("project").display());
    }

    Ok(Measured {
        label: scenario.label(),
        issues: scenario.issues,
        concurrency: scenario.concurrency,
        delay: scenario.delay,
        status: outcome.status,
        reason: outcome.reason,
        turns: outcome.turns,
        tick_sizes,
        setup,
        wall,
        cpu,
        peak_rss_kib,
        store: store_stats,
    })
}

/// The number of candidates of each tick of the run, from its `orchestrator_tick` events
/// (every candidate of a tick gets a turn).
async fn tick_sizes(store: &dyn Store, run_id: &str) -> Result<Vec<usize>> {
    let mut sizes = Vec::new();
    let mut after = 0;
    loop {
        let page = store.list_events(Some(run_id), after, 1000).await?;
        let Some(last) = page.last() else { break };
        after = last.id;
        sizes.extend(page.iter().filter_map(|e| match &e.event {
            Event::OrchestratorTick { candidates, .. } => Some(candidates.len()),
            _ => None,
        }));
    }
    Ok(sizes)
}

/// The 1, 5 and 15 minute load averages of `/proc/loadavg`, when readable (a busy machine
/// makes every number slower).
fn load_average() -> Option<String> {
    let text = std::fs::read_to_string("/proc/loadavg").ok()?;
    let fields: Vec<&str> = text.split_whitespace().take(3).collect();
    (fields.len() == 3).then(|| fields.join(", "))
}

/// The CPU time (user + system, all threads) the process used so far, from `/proc/self/stat`
/// (in clock ticks of 10 ms, Linux's `USER_HZ`), when readable.
fn process_cpu_time() -> Option<Duration> {
    let stat = std::fs::read_to_string("/proc/self/stat").ok()?;
    // The fields after the command name, which is in parentheses and may contain spaces:
    // state is field 3 of the file, utime field 14, stime field 15.
    let rest = &stat[stat.rfind(')')? + 1..];
    let fields: Vec<&str> = rest.split_whitespace().collect();
    let utime: u64 = fields.get(11)?.parse().ok()?;
    let stime: u64 = fields.get(12)?.parse().ok()?;
    Some(Duration::from_millis((utime + stime) * 10))
}

/// A `kB` field of `/proc/self/status` (`VmHWM` is the peak resident set size), when readable.
fn proc_status_kib(field: &str) -> Option<u64> {
    let status = std::fs::read_to_string("/proc/self/status").ok()?;
    status.lines().find_map(|line| {
        let rest = line.strip_prefix(field)?.strip_prefix(':')?;
        rest.trim().trim_end_matches("kB").trim().parse().ok()
    })
}

/// The command line: `[--no-write] [--verbose] [--keep] [--only LABEL]...`.
#[derive(Debug)]
struct Args {
    /// Write `bench/RESULTS.md` (off with `--no-write` or `--only`).
    write: bool,
    /// Print every store method's calls and time to stderr.
    verbose: bool,
    /// Keep each generated project (and its store) instead of deleting it.
    keep: bool,
    /// Run only the scenarios with these labels (`epic-100`, `chain-100`, ...).
    only: Vec<String>,
    /// Runs of each scenario; the one with the median wall time is reported.
    runs: usize,
}

impl Args {
    fn parse() -> Result<Args> {
        let mut args = Args {
            write: true,
            verbose: false,
            keep: false,
            only: Vec::new(),
            runs: 3,
        };
        let mut it = std::env::args().skip(1);
        while let Some(arg) = it.next() {
            match arg.as_str() {
                "--no-write" => args.write = false,
                "--verbose" => args.verbose = true,
                "--keep" => args.keep = true,
                "--only" => {
                    args.only
                        .push(it.next().context("--only needs a scenario label")?);
                    args.write = false;
                }
                "--runs" => {
                    let runs = it.next().context("--runs needs a number")?;
                    args.runs = runs
                        .parse()
                        .ok()
                        .filter(|&n| n > 0)
                        .with_context(|| format!("--runs: expected a positive number, found {runs:?}"))?;
                }
                other => anyhow::bail!(
                    "unknown argument {other:?} (expected --no-write, --verbose, --keep, --runs N or --only LABEL)"
                ),
            }
        }
        Ok(args)
    }
}

#[tokio::main]
async fn main() -> Result<()> {
    let args = Args::parse()?;
    let load = load_average();
    let started = Instant::now();
    let mut results = Vec::new();
    // Every run that did not complete, reported (and failing the benchmark) at the end.
    let mut failed: Vec<String> = Vec::new();
    let chosen: Vec<Scenario> = scenarios()
        .into_iter()
        .filter(|s| args.only.is_empty() || args.only.contains(&s.label()))
        .collect();
    if chosen.is_empty() {
        anyhow::bail!("no scenario is called {}", args.only.join(" or "));
    }
    for scenario in chosen {
        eprintln!(
            "running {} (concurrency {}, model delay {})...",
            scenario.label(),
            scenario.concurrency,
            scenario
                .delay
                .map_or("none".to_string(), |d| format!("{} ms", d.as_millis()))
        );
        let mut runs = Vec::with_capacity(args.runs);
        for _ in 0..args.runs {
            let measured = run_scenario(scenario, args.keep).await?;
            eprintln!(
                "  {}: {} turns in {:.3} s",
                measured.status,
                measured.turns,
                measured.wall.as_secs_f64()
            );
            runs.push(measured);
        }
        // The median run by wall time: one busy moment of a shared machine does not make the row.
        runs.sort_by_key(|m| m.wall);
        failed.extend(
            runs.iter()
                .filter(|m| m.status != RunStatus::Completed)
                .map(|m| {
                    format!(
                        "{} ended {}: {}",
                        m.label,
                        m.status,
                        m.reason.as_deref().unwrap_or("no reason")
                    )
                }),
        );
        let measured = runs.swap_remove(runs.len() / 2);
        if measured.turns != 2 * measured.issues {
            eprintln!(
                "  warning: expected {} turns (a write and a review per issue)",
                2 * measured.issues
            );
        }
        if args.verbose {
            // Every store method, not only the ones in the table.
            for (method, stats) in &measured.store {
                eprintln!(
                    "    {method:<24} {:>7} calls {:>10.3} ms",
                    stats.calls,
                    stats.total.as_secs_f64() * 1000.0
                );
            }
        }
        results.push(measured);
    }
    let total = started.elapsed();
    let load = Some(format!(
        "{} at the start, {} at the end",
        load.as_deref().unwrap_or("unknown"),
        load_average().as_deref().unwrap_or("unknown")
    ));

    let tables = report::tables(&results);
    println!("{tables}");
    if args.write {
        let path = Path::new(env!("CARGO_MANIFEST_DIR")).join("../RESULTS.md");
        let previous = std::fs::read_to_string(&path).ok();
        let text = report::results_md(
            &tables,
            args.runs,
            total,
            load.as_deref(),
            previous.as_deref(),
        );
        std::fs::write(&path, text).with_context(|| format!("cannot write {}", path.display()))?;
        eprintln!("wrote {}", path.display());
    }

    if !failed.is_empty() {
        for failure in &failed {
            eprintln!("error: {failure}");
        }
        std::process::exit(1);
    }
    Ok(())
}
