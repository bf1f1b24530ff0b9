//! `orket conformance MODEL`: how well a model works on this engine. The demo epic is run
//! from scratch once per seed (1..=N), each in a folder of its own, and every step of every
//! turn is scored from the store: a legal call, the right tool for a direct ask, a review
//! decided within the step budget, the epic completed.

use crate::commands::demo::write_demo;
use crate::commands::run::{
    demo_model_path, engine, known_demo_model, provider, show_progress, ProviderArgs,
};
use crate::project::Project;
use anyhow::{bail, Context, Result};
use orket_core::assets::Epic;
use orket_core::tools::{is_known_tool, Tool, ToolResult};
use orket_core::{RefusalCode, RunStatus, Status};
use orket_engine::RunOptions;
use orket_llm::models::demo_model;
use orket_llm::parse_tool_calls;
use orket_store::events::EventBus;
use orket_store::TurnRecord;
use serde::Serialize;
use std::path::{Path, PathBuf};
use std::process::ExitCode;
use std::time::Instant;

/// The epic every run works on.
const EPIC: &str = "hello_cli";

/// Options of `orket conformance`.
#[derive(Debug, Clone, clap::Args)]
pub struct ConformanceArgs {
    /// The model: a demo model (smollm2, gemma3-270m) or a GGUF file for the embedded
    /// provider; the model's name as the server knows it for ollama or openai.
    pub model: String,
    /// Runs of the demo epic, with seeds 1..=N.
    #[arg(long, value_name = "N", default_value_t = 3)]
    pub runs: u32,
    /// Print the report as JSON instead of a table.
    #[arg(long)]
    pub json: bool,
    /// Also write the JSON report to FILE.
    #[arg(long, value_name = "FILE")]
    pub out: Option<PathBuf>,
    /// Keep each run's project folder (its files and store) under DIR instead of a temporary
    /// folder that is removed.
    #[arg(long, value_name = "DIR")]
    pub keep: Option<PathBuf>,
    /// The provider [default: embedded].
    #[command(flatten)]
    pub provider: ProviderArgs,
}

/// A count of cases and how many went right.
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq, Serialize)]
pub struct Score {
    /// Cases that went right.
    pub ok: usize,
    /// Cases.
    pub of: usize,
}

impl Score {
    fn add(&mut self, ok: bool) {
        self.of += 1;
        self.ok += usize::from(ok);
    }

    fn show(self) -> String {
        if self.of == 0 {
            return "-".to_string();
        }
        format!(
            "{}/{} ({:.0}%)",
            self.ok,
            self.of,
            100.0 * self.ok as f64 / self.of as f64
        )
    }
}

/// What the turns of one run show about the model.
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq, Serialize)]
pub struct StepScores {
    /// Steps whose model reply is one or more calls of known tools, none refused by the gate
    /// (a review's `done` refused because the work failed its fixture is the work's fault,
    /// not the call's).
    pub legal_calls: Score,
    /// Developer turns whose first step writes one of the files the issue names.
    pub right_tool: Score,
    /// Review turns that decide (call `update_issue_status`) within their steps.
    pub reviews_decided: Score,
}

impl std::ops::AddAssign for Score {
    fn add_assign(&mut self, other: Score) {
        self.ok += other.ok;
        self.of += other.of;
    }
}

impl std::ops::AddAssign for StepScores {
    fn add_assign(&mut self, other: StepScores) {
        self.legal_calls += other.legal_calls;
        self.right_tool += other.right_tool;
        self.reviews_decided += other.reviews_decided;
    }
}

/// Scores the turns of a run of `epic`.
fn score_turns(turns: &[TurnRecord], epic: &Epic) -> StepScores {
    let mut scores = StepScores::default();
    for record in turns {
        let turn = &record.turn;
        for step in &turn.steps {
            let Some(reply) = step.reply.as_deref() else {
                continue;
            };
            let calls = parse_tool_calls(reply);
            let known = !calls.is_empty() && calls.iter().all(|c| is_known_tool(&c.name));
            let refused = matches!(
                step.result,
                Some(ToolResult::Failed { code: Some(code), .. })
                    if code != RefusalCode::VerificationFailed
            );
            scores.legal_calls.add(known && !refused);
        }
        if turn.review {
            let decided = turn.steps.iter().any(|s| {
                s.call
                    .as_ref()
                    .is_some_and(|c| c.name == Tool::UpdateIssueStatus.name())
            });
            scores.reviews_decided.add(decided);
            continue;
        }
        let named = epic.issue(&turn.issue_id).map_or(&[][..], |i| &i.files);
        if named.is_empty() {
            continue;
        }
        // Each candidate's first step is a direct ask: "write these files".
        for first in turn.steps.iter().filter(|s| s.n == 1) {
            let wrote_named = first.call.as_ref().is_some_and(|c| {
                c.name == Tool::WriteFile.name()
                    && c.args
                        .get("path")
                        .and_then(|p| p.as_str())
                        .is_some_and(|p| named.iter().any(|f| f == p))
            });
            scores.right_tool.add(wrote_named);
        }
    }
    scores
}

/// One run of the demo epic.
#[derive(Debug, Clone, Serialize)]
pub struct RunScore {
    /// Its sampling seed.
    pub seed: i64,
    /// The run id in its store.
    pub run_id: String,
    /// How it ended.
    pub status: RunStatus,
    /// Issues done, of all.
    pub issues_done: Score,
    /// Whether every issue is done (and so every fixture passed).
    pub completed: bool,
    /// Turns committed.
    pub turns: usize,
    /// Wall-clock minutes, model loading included.
    pub minutes: f64,
    /// Its step scores.
    pub steps: StepScores,
}

/// The whole report.
#[derive(Debug, Clone, Serialize)]
pub struct Report {
    /// The model as given.
    pub model: String,
    /// The provider that served it.
    pub provider: String,
    /// Each run.
    pub runs: Vec<RunScore>,
    /// The step scores of all runs together.
    pub steps: StepScores,
    /// Runs that completed the epic, of all.
    pub completed: Score,
    /// Mean turns per run.
    pub mean_turns: f64,
    /// Mean minutes per run.
    pub mean_minutes: f64,
}

/// Runs the suite and prints the report; exit 0 when it ran (whatever the scores).
pub async fn run(args: ConformanceArgs) -> Result<ExitCode> {
    if args.runs == 0 {
        bail!("--runs must be at least 1");
    }
    let mut provider_args = args.provider.clone();
    let provider_name = provider_args
        .provider
        .get_or_insert_with(|| "embedded".to_string())
        .clone();
    // A demo model's turns use its own name (which picks its profile); any other model is
    // used as given.
    let model_name = demo_model(&args.model)
        .map_or(args.model.as_str(), |m| m.turn_name)
        .to_string();
    if provider_name == "embedded" && provider_args.model_path.is_none() {
        provider_args.model_path = Some(if Path::new(&args.model).is_file() {
            PathBuf::from(&args.model)
        } else {
            let model = known_demo_model(&args.model)
                .context("the embedded provider needs a demo model or a GGUF file")?;
            demo_model_path(model)?
        });
    }
    let scratch = match &args.keep {
        Some(dir) => Scratch::Kept(dir.clone()),
        None => Scratch::Temporary(tempfile::tempdir().context("creating a temporary folder")?),
    };
    let mut runs = Vec::new();
    for seed in 1..=i64::from(args.runs) {
        let root = scratch.path().join(format!("seed-{seed}"));
        if !args.json {
            println!(
                "run {seed}/{} (seed {seed}) in {} ...",
                args.runs,
                root.display()
            );
        }
        let score = run_once(&root, seed, &model_name, &provider_args, !args.json).await?;
        if !args.json {
            println!(
                "  {}: {} issues done, {} turns, {:.1} min; legal calls {}",
                score.status,
                score.issues_done.show(),
                score.turns,
                score.minutes,
                score.steps.legal_calls.show()
            );
        }
        runs.push(score);
    }
    let report = summarize(args.model.clone(), provider_name, runs);
    let json = serde_json::to_string_pretty(&report)?;
    if let Some(out) = &args.out {
        std::fs::write(out, &json).with_context(|| format!("writing {}", out.display()))?;
    }
    if args.json {
        println!("{json}");
    } else {
        print_table(&report);
    }
    Ok(ExitCode::SUCCESS)
}

/// Where the runs' projects go.
enum Scratch {
    Kept(PathBuf),
    Temporary(tempfile::TempDir),
}

impl Scratch {
    fn path(&self) -> &Path {
        match self {
            Scratch::Kept(dir) => dir,
            Scratch::Temporary(dir) => dir.path(),
        }
    }
}

/// One run of the demo epic from scratch in `root`, with its own provider (a replay starts
/// over; the embedded model loads again, in about a second); with `progress`, the run's
/// progress is printed as `orket run` prints it.
async fn run_once(
    root: &Path,
    seed: i64,
    model: &str,
    provider_args: &ProviderArgs,
    progress: bool,
) -> Result<RunScore> {
    if root.join(".orket").exists() {
        bail!(
            "{} already holds a run: choose an empty folder for --keep",
            root.display()
        );
    }
    write_demo(root)?;
    let project = Project::new(root.to_path_buf(), Some(root.join(".orket/orket.db")));
    let tree = project.tree()?;
    let epic = tree
        .load_epic(EPIC, "core")
        .with_context(|| format!("loading the demo epic in {}", root.display()))?;
    let options = RunOptions {
        model: Some(model.to_string()),
        reset: true,
        concurrency: 1,
        max_iterations: 12,
        seed: Some(seed),
        ..RunOptions::from_env(provider(provider_args)?)
    };
    let started = Instant::now();
    let bus = EventBus::default();
    let engine = engine(&project, bus.clone()).await?;
    let shown = progress.then(|| tokio::spawn(show_progress(bus)));
    let outcome = engine.spawn(EPIC, options)?.join().await;
    if let Some(shown) = shown {
        shown.abort();
    }
    let outcome = outcome?
        .into_iter()
        .next()
        .context("the demo epic's run gave no outcome")?;
    let minutes = started.elapsed().as_secs_f64() / 60.0;
    let store = engine.store();
    let mut issues_done = Score::default();
    for issue in store.list_issues(&outcome.build_id).await? {
        issues_done.add(issue.status == Status::Done);
    }
    let turns = store.list_turns(&outcome.run_id).await?;
    Ok(RunScore {
        seed,
        run_id: outcome.run_id,
        status: outcome.status,
        completed: issues_done.of > 0 && issues_done.ok == issues_done.of,
        issues_done,
        turns: turns.len(),
        minutes,
        steps: score_turns(&turns, &epic),
    })
}

fn summarize(model: String, provider: String, runs: Vec<RunScore>) -> Report {
    let n = runs.len().max(1) as f64;
    let mut completed = Score::default();
    let mut steps = StepScores::default();
    for run in &runs {
        completed.add(run.completed);
        steps += run.steps;
    }
    Report {
        model,
        provider,
        steps,
        completed,
        mean_turns: runs.iter().map(|r| r.turns as f64).sum::<f64>() / n,
        mean_minutes: runs.iter().map(|r| r.minutes).sum::<f64>() / n,
        runs,
    }
}

fn print_table(report: &Report) {
    println!();
    let runs = report.runs.len();
    println!(
        "Conformance of {} ({}), {runs} run{} of the demo epic",
        report.model,
        report.provider,
        if runs == 1 { "" } else { "s" }
    );
    let rows = [
        ("legal call per step", report.steps.legal_calls.show()),
        (
            "right tool for a direct ask",
            report.steps.right_tool.show(),
        ),
        (
            "review decided within its steps",
            report.steps.reviews_decided.show(),
        ),
        ("demo epic completed", report.completed.show()),
        ("mean turns per run", format!("{:.1}", report.mean_turns)),
        (
            "mean minutes per run",
            format!("{:.1}", report.mean_minutes),
        ),
    ];
    for (name, value) in rows {
        println!("  {name:<34} {value}");
    }
}
