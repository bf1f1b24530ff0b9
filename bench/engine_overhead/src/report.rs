//! The benchmark's Markdown: the results table, the store breakdown, and `RESULTS.md` with the
//! environment it was measured in.

use crate::timed_store::MethodStats;
use orket_core::RunStatus;
use std::collections::BTreeMap;
use std::fmt::Write as _;
use std::path::Path;
use std::process::Command;
use std::time::Duration;

/// The command that produces `RESULTS.md`.
pub const COMMAND: &str = "cargo run --release -p orket-bench --bin engine_overhead";

/// The line after which `RESULTS.md` holds hand-written notes, kept when the file is rewritten.
const NOTES_MARKER: &str =
    "<!-- Notes below this line are written by hand and kept when the benchmark rewrites this file. -->";

/// What one scenario measured.
#[derive(Debug, Clone)]
pub struct Measured {
    /// The scenario's short name (`epic-100`, `chain-100`).
    pub label: String,
    /// Issues in the epic.
    pub issues: usize,
    /// Turns in flight at once.
    pub concurrency: usize,
    /// Simulated model time per reply (`None`: instant).
    pub delay: Option<Duration>,
    /// How the run ended.
    pub status: RunStatus,
    /// Why it ended so.
    pub reason: Option<String>,
    /// Turns committed.
    pub turns: usize,
    /// Candidates (turns dispatched) of each tick.
    pub tick_sizes: Vec<usize>,
    /// Project generation, store opening (migrations) and engine construction; not in `wall`.
    pub setup: Duration,
    /// The wall time of `Engine::run`.
    pub wall: Duration,
    /// CPU time (user + system, every thread of the process) during `Engine::run`, 10 ms
    /// resolution; unlike the wall time it hardly changes when the machine is busy.
    pub cpu: Option<Duration>,
    /// `VmHWM` of the process after the run: the peak resident set size so far, in KiB.
    pub peak_rss_kib: Option<u64>,
    /// Calls and time per store method during the run.
    pub store: BTreeMap<&'static str, MethodStats>,
}

impl Measured {
    /// The wall time a zero-overhead engine would need with the same schedule: each tick runs
    /// its `k` turns `concurrency` at a time, so it lasts `ceil(k / concurrency) × delay`.
    /// `None` for the instant provider.
    pub fn ideal(&self) -> Option<Duration> {
        let delay = self.delay?;
        let waves: usize = self
            .tick_sizes
            .iter()
            .map(|k| k.div_ceil(self.concurrency.max(1)))
            .sum();
        Some(delay * u32::try_from(waves).unwrap_or(u32::MAX))
    }

    /// Wall time not explained by model time: all of it for the instant provider.
    pub fn overhead(&self) -> Duration {
        self.wall
            .saturating_sub(self.ideal().unwrap_or(Duration::ZERO))
    }

    /// Engine overhead per turn, in milliseconds.
    pub fn overhead_per_turn_ms(&self) -> f64 {
        ms(self.overhead()) / self.turns.max(1) as f64
    }

    /// Completed turns per second of wall time.
    pub fn turns_per_second(&self) -> f64 {
        self.turns as f64 / self.wall.as_secs_f64().max(f64::EPSILON)
    }

    /// The summed time of all store calls.
    pub fn store_total(&self) -> Duration {
        self.store.values().map(|s| s.total).sum()
    }
}

fn ms(d: Duration) -> f64 {
    d.as_secs_f64() * 1000.0
}

/// The results table and the store breakdown, as Markdown.
pub fn tables(results: &[Measured]) -> String {
    let mut out = String::new();
    out.push_str(
        "| Scenario | Issues | Concurrency | Model delay | Turns | Ticks | Wall (s) | Turns/s | Overhead/turn (ms) | CPU/turn (ms) | Ideal (s) | Overhead % | Peak RSS (MiB) | Status |\n",
    );
    out.push_str("|---|---:|---:|---:|---:|---:|---:|---:|---:|---:|---:|---:|---:|---|\n");
    for m in results {
        let delay = m
            .delay
            .map_or("instant".to_string(), |d| format!("{} ms", d.as_millis()));
        let (ideal, share) = match m.ideal() {
            Some(ideal) => (
                format!("{:.3}", ideal.as_secs_f64()),
                format!(
                    "{:.1}",
                    100.0 * m.overhead().as_secs_f64() / m.wall.as_secs_f64().max(f64::EPSILON)
                ),
            ),
            None => ("—".to_string(), "100 (no model time)".to_string()),
        };
        let cpu = m.cpu.map_or("?".to_string(), |c| {
            format!("{:.2}", ms(c) / m.turns.max(1) as f64)
        });
        let rss = m
            .peak_rss_kib
            .map_or("?".to_string(), |k| format!("{:.1}", k as f64 / 1024.0));
        let _ = writeln!(
            out,
            "| {} | {} | {} | {} | {} | {} | {:.3} | {:.1} | {:.3} | {} | {} | {} | {} | {} |",
            m.label,
            m.issues,
            m.concurrency,
            delay,
            m.turns,
            m.tick_sizes.len(),
            m.wall.as_secs_f64(),
            m.turns_per_second(),
            m.overhead_per_turn_ms(),
            cpu,
            ideal,
            share,
            rss,
            m.status
        );
    }

    out.push_str("\nStore calls per turn (time includes waiting for the single writer connection; summed over concurrent turns):\n\n");
    out.push_str("| Scenario | Concurrency | Model delay | Setup (s) | Store Σ / wall |");
    for name in STORE_COLUMNS {
        let _ = write!(out, " {name} ms/turn (calls) |");
    }
    out.push_str(" other ms/turn (calls) |\n|---|---:|---:|---:|---:|");
    out.push_str(&"---:|".repeat(STORE_COLUMNS.len() + 1));
    out.push('\n');
    for m in results {
        let turns = m.turns.max(1) as f64;
        let cell =
            |s: MethodStats| format!("{:.3} ({:.2})", ms(s.total) / turns, s.calls as f64 / turns);
        let other = m
            .store
            .iter()
            .filter(|(k, _)| !STORE_COLUMNS.contains(k))
            .fold(MethodStats::default(), |acc, (_, s)| MethodStats {
                calls: acc.calls + s.calls,
                total: acc.total + s.total,
            });
        let delay = m
            .delay
            .map_or("instant".to_string(), |d| format!("{} ms", d.as_millis()));
        let _ = write!(
            out,
            "| {} | {} | {} | {:.3} | {:.2} |",
            m.label,
            m.concurrency,
            delay,
            m.setup.as_secs_f64(),
            m.store_total().as_secs_f64() / m.wall.as_secs_f64().max(f64::EPSILON),
        );
        for name in STORE_COLUMNS {
            let stats = m.store.get(name).copied().unwrap_or_default();
            let _ = write!(out, " {} |", cell(stats));
        }
        let _ = writeln!(out, " {} |", cell(other));
    }
    out
}

/// The store methods of a turn and a tick, each given its own column of the store table.
const STORE_COLUMNS: [&str; 3] = ["apply", "turn_inputs", "tick_state"];

/// `RESULTS.md`: how and where it was measured (`load`: `/proc/loadavg` when the benchmark
/// started and ended), the tables, how to read them, and the notes of `previous` (the file being
/// replaced) below [`NOTES_MARKER`].
pub fn results_md(
    tables: &str,
    runs: usize,
    total: Duration,
    load: Option<&str>,
    previous: Option<&str>,
) -> String {
    let nproc = std::thread::available_parallelism().map_or(0, |n| n.get());
    let commit = git_commit().unwrap_or_else(|| "unknown".to_string());
    let rustc = command_line("rustc", &["--version"]).unwrap_or_else(|| "unknown".to_string());
    let date = chrono::Utc::now().format("%Y-%m-%d %H:%M UTC");
    let notes = previous
        .and_then(|text| text.find(NOTES_MARKER).map(|at| &text[at..]))
        .map_or_else(
            || format!("{NOTES_MARKER}\n\n## Notes\n\n(none yet)\n"),
            str::to_string,
        );
    format!(
        "# Engine overhead: results

Measured with `{COMMAND}` on {date}; each scenario ran {runs} times and each row is its run
with the median wall time.

- `nproc`: {nproc}
- git commit: {commit}
- {rustc}
- load average (1, 5, 15 min; the benchmark itself keeps about 2 cores busy): {load}
- whole benchmark (all scenarios and runs, setup included): {total:.1} s

{tables}
## How to read the tables

- **Turns**: model turns committed (two per issue: the coder's and the integrity guard's).
  **Ticks**: ticks that dispatched turns (the final, empty tick is not counted).
- **Wall**: the time of `Engine::run` alone; generating the project and opening (migrating)
  the store are in **Setup**.
- **Overhead/turn**: with the instant provider, `wall / turns` (everything is engine). With a
  model delay, `(wall − ideal) / turns`.
- **CPU/turn**: CPU time of the whole process (user + system, all threads, SQLite's worker
  threads included) during `Engine::run`, divided by the turns; 10 ms resolution. It hardly moves
  when other programs compete for the cores, so compare it when wall times look noisy.
- **Ideal**: the wall time a zero-overhead engine would need with the same schedule:
  `Σ over ticks of ceil(turns in the tick / concurrency) × delay` (a tick dispatches all its
  candidates under a semaphore of `concurrency` and waits for all of them). For the chain that
  is `ticks × delay`.
- With a model delay the overhead also holds what waiting costs: each sleep ends on the timer's
  next millisecond or later, and the parked threads are woken again for every turn.
- **Overhead %**: `(wall − ideal) / wall`, the share of the wall time that is not model time.
- **Peak RSS**: `VmHWM` of `/proc/self/status` read after the scenario: the peak of the whole
  process so far, so it never decreases down the table.
- **Store Σ / wall**: time summed over all store calls, divided by the wall time; above 1 means
  concurrent turns were in (or waiting for) the store at the same time.

{notes}",
        total = total.as_secs_f64(),
        load = load.unwrap_or("unknown")
    )
}

/// `git rev-parse --short HEAD` of the workspace, marked when tracked files have changes.
fn git_commit() -> Option<String> {
    let commit = command_line("git", &["rev-parse", "--short", "HEAD"])?;
    let dirty = command_line("git", &["status", "--porcelain", "--untracked-files=no"])
        .is_some_and(|s| !s.is_empty());
    Some(if dirty {
        format!("{commit} (with uncommitted changes to tracked files)")
    } else {
        commit
    })
}

/// The trimmed standard output of a successful command run in the workspace.
fn command_line(program: &str, args: &[&str]) -> Option<String> {
    let output = Command::new(program)
        .args(args)
        .current_dir(Path::new(env!("CARGO_MANIFEST_DIR")))
        .output()
        .ok()?;
    output
        .status
        .success()
        .then(|| String::from_utf8_lossy(&output.stdout).trim().to_string())
}

#[cfg(test)]
mod tests {
    use super::*;

    fn measured(delay: Option<Duration>, concurrency: usize, tick_sizes: Vec<usize>) -> Measured {
        Measured {
            label: "epic-100".to_string(),
            issues: 100,
            concurrency,
            delay,
            status: RunStatus::Completed,
            reason: None,
            turns: tick_sizes.iter().sum(),
            tick_sizes,
            setup: Duration::ZERO,
            wall: Duration::from_secs(2),
            cpu: None,
            peak_rss_kib: None,
            store: BTreeMap::new(),
        }
    }

    #[test]
    fn ideal_counts_waves_of_concurrency_per_tick() {
        let m = measured(Some(Duration::from_millis(20)), 3, vec![100, 100]);
        // ceil(100 / 3) = 34 waves per tick, two ticks.
        assert_eq!(m.ideal(), Some(Duration::from_millis(20 * 68)));
        assert_eq!(m.overhead(), Duration::from_millis(2000 - 1360));
        let chain = measured(Some(Duration::from_millis(20)), 3, vec![1; 200]);
        assert_eq!(chain.ideal(), Some(Duration::from_millis(4000)));
        let instant = measured(None, 3, vec![100, 100]);
        assert_eq!(instant.ideal(), None);
        assert_eq!(instant.overhead(), Duration::from_secs(2));
    }

    #[test]
    fn rewriting_results_keeps_the_notes_once() {
        let first = results_md("TABLE ONE\n", 3, Duration::from_secs(1), None, None);
        assert!(first.contains(NOTES_MARKER) && first.contains("(none yet)"));
        let edited = first.replace("(none yet)", "hand-written analysis");
        let second = results_md(
            "TABLE TWO\n",
            3,
            Duration::from_secs(1),
            None,
            Some(&edited),
        );
        assert!(second.contains("TABLE TWO") && !second.contains("TABLE ONE"));
        assert!(second.contains("hand-written analysis"));
        assert_eq!(second.matches(NOTES_MARKER).count(), 1);
    }
}
