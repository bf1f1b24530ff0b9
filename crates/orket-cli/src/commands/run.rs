//! `orket run` and `orket resume`: drive the traction loop with live progress.

use crate::project::Project;
use anyhow::{bail, Context, Result};
use orket_core::Event;
use orket_engine::{Engine, RunHandle, RunOptions, RunOutcome};
use orket_llm::models::{demo_model, fetch, find_local, DemoModel, DEMO_MODELS};
use orket_llm::{provider_by_name, Provider, RecordingProvider};
use orket_store::events::EventBus;
use orket_store::{EventRecord, Store};
use std::path::PathBuf;
use std::process::ExitCode;
use std::sync::Arc;
use std::time::Duration;

/// How the model side of a run is chosen.
#[derive(Debug, Clone, clap::Args)]
pub struct ProviderArgs {
    /// The model provider: `ollama` (OLLAMA_HOST), `openai` (ORKET_OPENAI_BASE_URL,
    /// ORKET_OPENAI_API_KEY) or `replay` (--replay FILE).
    #[arg(long, env = "ORKET_PROVIDER", value_name = "NAME")]
    pub provider: Option<String>,
    /// Also write every model reply to FILE, a replay file for `--provider replay`.
    #[arg(long, value_name = "FILE")]
    pub record: Option<PathBuf>,
    /// The replay file for `--provider replay` (JSON Lines of recorded replies).
    #[arg(long, value_name = "FILE")]
    pub replay: Option<PathBuf>,
    /// Simulated model time per replayed reply, in milliseconds.
    #[arg(long, value_name = "MS", default_value_t = 0)]
    pub replay_delay_ms: u64,
    /// The GGUF file for `--provider embedded` [default: the demo model in the model cache].
    #[arg(long, env = "ORKET_MODEL_PATH", value_name = "FILE")]
    pub model_path: Option<PathBuf>,
}

/// Options of `orket run`.
#[derive(Debug, Clone, clap::Args)]
pub struct RunArgs {
    /// The epic or rock name, or an issue id.
    pub target: String,
    /// The department to look the target up in.
    #[arg(long, value_name = "D", default_value = "core")]
    pub department: String,
    /// The folder runs write into [default: <root>/workspace]; an epic works in <DIR>/<epic>.
    #[arg(long, value_name = "DIR")]
    pub workspace: Option<PathBuf>,
    /// A model for every turn, over the epic's and environment's choice.
    #[arg(long, value_name = "MODEL")]
    pub model: Option<String>,
    /// Start the build over (a targeted run resets only the target).
    #[arg(long)]
    pub reset: bool,
    /// Turns in flight at once.
    #[arg(long, value_name = "N", default_value_t = 3)]
    pub concurrency: usize,
    /// Ticks before the run ends `exhausted`.
    #[arg(long, value_name = "N", default_value_t = 20)]
    pub max_iterations: usize,
    /// Work on this build instead of `build-<epic>` (epic and issue runs).
    #[arg(long, value_name = "ID")]
    pub build: Option<String>,
    /// End the run `budget_exceeded` past this many tokens.
    #[arg(long, value_name = "N")]
    pub token_budget: Option<u64>,
    /// End the run `budget_exceeded` past this many seconds.
    #[arg(long, value_name = "SECS")]
    pub time_budget: Option<u64>,
    /// The run's sampling seed, over the environment's: the same seed, model and files give
    /// the same run.
    #[arg(long, value_name = "N")]
    pub seed: Option<i64>,
    /// Hand the turns to the fleet's workers (`orket worker`) instead of running them here;
    /// needs a PostgreSQL store (--db postgres://...). `--concurrency` turns are queued at once.
    #[arg(long)]
    pub fleet: bool,
    #[command(flatten)]
    pub provider: ProviderArgs,
}

/// The provider `args` ask for, wrapped in a recorder with `--record`.
pub fn provider(args: &ProviderArgs) -> Result<Arc<dyn Provider>> {
    let inner = base_provider(args)?;
    Ok(match &args.record {
        Some(path) => Arc::new(RecordingProvider::new(inner, path)?),
        None => inner,
    })
}

fn base_provider(args: &ProviderArgs) -> Result<Arc<dyn Provider>> {
    match args.provider.as_deref() {
        Some("embedded") => embedded_provider(args),
        Some("replay") if args.replay.is_none() => {
            bail!("--provider replay needs --replay FILE (JSON Lines: {{\"issue_id\", \"role\", \"content\"}} per line)")
        }
        Some(name) => provider_by_name(
            name,
            args.replay.as_deref(),
            Duration::from_millis(args.replay_delay_ms),
        )
        .map_err(anyhow::Error::msg),
        None => bail!(
            "no model provider: pass --provider ollama|openai, or --provider replay --replay FILE"
        ),
    }
}

/// The embedded GGUF model: `--model-path` / `ORKET_MODEL_PATH`, else the demo model in the
/// model cache, fetched on first use.
#[cfg(feature = "embedded")]
fn embedded_provider(args: &ProviderArgs) -> Result<Arc<dyn Provider>> {
    use orket_llm::embedded::{EmbeddedOptions, EmbeddedProvider};
    let path = match &args.model_path {
        Some(path) => path.clone(),
        None => demo_model_path(known_demo_model("smollm2")?)?,
    };
    // Status on stderr: stdout may be a report (`orket conformance --json`).
    eprintln!("Loading {} ...", path.display());
    Ok(Arc::new(EmbeddedProvider::load(
        &path,
        EmbeddedOptions::default(),
    )?))
}

/// The demo model called `name` (`smollm2`, `gemma3-270m`), or an error naming the known ones.
pub fn known_demo_model(name: &str) -> Result<&'static DemoModel> {
    demo_model(name).with_context(|| {
        let known: Vec<&str> = DEMO_MODELS.iter().map(|m| m.name).collect();
        format!(
            "no demo model is called '{name}' (known: {})",
            known.join(", ")
        )
    })
}

/// The GGUF file of a demo model in the model cache, fetched once when it is missing.
pub fn demo_model_path(model: &DemoModel) -> Result<PathBuf> {
    if let Some(path) = find_local(model.name) {
        return Ok(path);
    }
    eprintln!(
        "The demo model {} is not installed yet: fetching it once.",
        model.name
    );
    Ok(fetch(model, |step| eprintln!("  {step}"))?)
}

/// Without the `embedded` feature there is no in-process model.
#[cfg(not(feature = "embedded"))]
fn embedded_provider(_args: &ProviderArgs) -> Result<Arc<dyn Provider>> {
    bail!(
        "this orket was built without the embedded model: rebuild with `cargo build --release -p orket-cli --features embedded` (needs cmake, clang, libclang-dev), or use --provider ollama|openai"
    )
}

/// The engine of the project, on its store, publishing on `bus`.
pub(crate) async fn engine(project: &Project, bus: EventBus) -> Result<Engine> {
    let tree = project.tree()?;
    let store = project
        .open_store()
        .await
        .with_context(|| format!("opening the store {}", project.store_name()))?;
    Ok(Engine::new(tree, store, bus).with_clock(crate::project::clock()?))
}

/// Runs an epic, a rock or an issue; exit 0 when every run completed.
pub async fn run(project: &Project, args: RunArgs) -> Result<ExitCode> {
    let outcomes = run_with(project, args).await?;
    Ok(exit_code(&outcomes))
}

fn exit_code(outcomes: &[RunOutcome]) -> ExitCode {
    if outcomes
        .iter()
        .all(|o| o.status == orket_core::RunStatus::Completed)
    {
        ExitCode::SUCCESS
    } else {
        ExitCode::FAILURE
    }
}

/// Runs with live progress and prints each run's summary.
pub async fn run_with(project: &Project, args: RunArgs) -> Result<Vec<RunOutcome>> {
    let options = RunOptions {
        department: args.department.clone(),
        workspace_base: args.workspace.clone(),
        model: args.model.clone(),
        reset: args.reset,
        concurrency: args.concurrency.max(1),
        max_iterations: args.max_iterations.max(1),
        build: args.build.clone(),
        token_budget: args.token_budget,
        time_budget: args.time_budget.map(Duration::from_secs),
        seed: args.seed,
        ..RunOptions::from_env(run_provider(&args)?)
    };
    let options = with_fleet(project, options, args.fleet).await?;
    let bus = EventBus::default();
    let engine = engine(project, bus.clone()).await?;
    let handle = engine.start(&args.target, options).await?;
    let outcomes = follow(handle, bus).await?;
    report(engine.store().as_ref(), &outcomes).await?;
    Ok(outcomes)
}

/// The provider of the run's own turns: a fleet run's model calls happen on the workers, so it
/// needs none (its routing failures call no model).
fn run_provider(args: &RunArgs) -> Result<Arc<dyn Provider>> {
    if args.fleet && args.provider.provider.is_none() {
        return fleet_provider();
    }
    provider(&args.provider)
}

/// The provider `fleet`: a run whose turns call their models on the fleet's workers has none
/// of its own (a call is an error naming why).
fn fleet_provider() -> Result<Arc<dyn Provider>> {
    Ok(Arc::new(orket_llm::FleetProvider))
}

/// `options` handing the turns to the fleet, when asked.
#[cfg(feature = "postgres")]
async fn with_fleet(project: &Project, mut options: RunOptions, fleet: bool) -> Result<RunOptions> {
    if fleet {
        let store = project.postgres_store().await?;
        options.fleet = Some(Arc::new(orket_store::PgFleet::connect(&store).await?));
    }
    Ok(options)
}

#[cfg(not(feature = "postgres"))]
async fn with_fleet(_project: &Project, options: RunOptions, fleet: bool) -> Result<RunOptions> {
    if fleet {
        bail!("--fleet needs PostgreSQL, and this orket was built without it: rebuild with `cargo build --release -p orket-cli --features postgres`");
    }
    Ok(options)
}

/// Continues an interrupted run.
pub async fn resume(
    project: &Project,
    run_id: &str,
    provider_args: &ProviderArgs,
) -> Result<ExitCode> {
    let options = RunOptions::from_env(provider(provider_args)?);
    let bus = EventBus::default();
    let engine = engine(project, bus.clone()).await?;
    let handle = engine.spawn_resume(run_id, options).await?;
    let outcomes = follow(handle, bus).await?;
    report(engine.store().as_ref(), &outcomes).await?;
    Ok(exit_code(&outcomes))
}

/// Prints the run's progress until it ends; Ctrl-C halts it at the next turn boundary.
async fn follow(handle: RunHandle, bus: EventBus) -> Result<Vec<RunOutcome>> {
    let progress = tokio::spawn(show_progress(bus));
    let (id, halter) = (handle.id().to_string(), handle.halter());
    let join = handle.join();
    tokio::pin!(join);
    let outcomes = loop {
        tokio::select! {
            result = &mut join => break result,
            _ = tokio::signal::ctrl_c() => {
                println!("halting run {id} at the next turn boundary (turns in flight are committed) ...");
                if let Err(e) = halter.halt().await {
                    println!("  cannot record the halt: {e}");
                }
            }
        }
    };
    progress.abort();
    Ok(outcomes?)
}

/// Prints one line per event worth seeing while the run goes.
pub(crate) async fn show_progress(bus: EventBus) {
    let mut rx = bus.subscribe();
    loop {
        match rx.recv().await {
            Ok(event) => {
                if let Some(line) = progress_line(&event) {
                    println!("{line}");
                }
            }
            Err(tokio::sync::broadcast::error::RecvError::Lagged(n)) => {
                println!("  ({n} events not shown)");
            }
            Err(_) => break,
        }
    }
}

/// The line of an event worth seeing while a run goes (`None` for the others).
pub(crate) fn progress_line(e: &EventRecord) -> Option<String> {
    let issue = e.issue_id.as_deref().unwrap_or("-");
    let role = e.role.as_deref().unwrap_or("-");
    Some(match &e.event {
        Event::SessionStart { epic, .. } => {
            format!("run {} started: {epic}", e.run_id.as_deref().unwrap_or("?"))
        }
        Event::OrchestratorTick { tick, candidates } => format!(
            "tick {tick}: {}",
            serde_json::to_string(candidates).unwrap_or_default()
        ),
        Event::TurnStart { seq, seat } => format!("  {issue} turn #{seq} by {seat} ({role})"),
        Event::TurnQueued { seq, model, .. } => {
            format!("  {issue} turn #{seq} queued for a worker serving {model}")
        }
        Event::TurnClaimed {
            seq,
            worker,
            host,
            attempt,
        } => match attempt {
            1 => format!("  turn #{seq} on worker {worker} ({host})"),
            n => format!("  turn #{seq} on worker {worker} ({host}), take {n}: redone after a worker was lost"),
        },
        Event::TurnWaiting {
            seq,
            model,
            waited_secs,
        } => format!(
            "  turn #{seq} has waited {waited_secs} s: no worker serving {model} took it (start one: orket worker --model {model})"
        ),
        Event::TurnCommitRefused { seq, worker, .. } => {
            format!("  turn #{seq} of worker {worker} refused: it had lost the job")
        }
        Event::TurnComplete {
            status,
            calls,
            tokens_in,
            tokens_out,
            ..
        } => format!(
            "  {issue} -> {} ({calls} calls, {tokens_in} tokens in / {tokens_out} out)",
            status.map_or("?", |s| s.as_str())
        ),
        Event::TurnFailed { kind, error, .. } => format!("  {issue} failed ({kind}): {error}"),
        Event::StepCorrected {
            step,
            kind,
            message,
            ..
        } => format!(
            "  {issue} step {step} corrected ({kind}): {}",
            message.chars().take(160).collect::<String>()
        ),
        Event::RetryTriggered {
            retry_count,
            max_retries,
            ..
        } => format!("  {issue} retry {retry_count}/{max_retries}"),
        Event::CatastrophicFailure { error, .. } => {
            format!("  {issue} catastrophic failure: {error}")
        }
        Event::PolicyViolationReportSaved { path, .. } => {
            format!("  {issue} policy violation report: {path}")
        }
        Event::VerificationCompleted {
            ok,
            passed,
            total,
            error,
            ..
        } => format!(
            "  {issue} verification {}: {passed}/{total} scenarios passed{}",
            if *ok { "PASSED" } else { "FAILED" },
            error
                .as_deref()
                .map(|e| format!(" ({e})"))
                .unwrap_or_default()
        ),
        Event::DoneRefused { code, .. } => {
            format!("  {issue} done refused ({code}): sent back to the developer")
        }
        Event::SandboxDeployed {
            sandbox_id, ports, ..
        } => format!(
            "sandbox {sandbox_id} running: api http://127.0.0.1:{}",
            ports["api"]
        ),
        Event::SandboxDeployFailed { reason, .. } => format!("sandbox deploy failed: {reason}"),
        Event::ModelTimeoutRetry { error, .. } | Event::ModelConnectionRetry { error, .. } => {
            format!("  {issue} {}: {error}", e.event.name())
        }
        Event::HaltRequested {} => {
            "halt requested: the run stops at its next turn boundary".to_string()
        }
        Event::BugFixPhaseStarted {
            rock, planned_end, ..
        } => format!(
            "rock {rock}: every epic is done; its bug-fix phase started, planned to end {planned_end} (orket rock status {rock})"
        ),
        Event::BugFixPhaseExtended {
            rock,
            planned_end,
            reason,
            ..
        } => format!("rock {rock}: bug-fix phase extended to {planned_end} ({reason})"),
        Event::BugFixPhaseEnded {
            rock, next_rock, ..
        } => match next_rock {
            Some(next) => format!("rock {rock}: bug-fix phase ended; its open bugs moved to rock {next}"),
            None => format!("rock {rock}: bug-fix phase ended with no bug open"),
        },
        _ => return None,
    })
}

async fn report(store: &dyn Store, outcomes: &[RunOutcome]) -> Result<()> {
    for outcome in outcomes {
        println!();
        println!(
            "run {}: {}{}",
            outcome.run_id,
            outcome.status,
            outcome
                .reason
                .as_deref()
                .map(|r| format!(" — {r}"))
                .unwrap_or_default()
        );
        println!(
            "  turns: {}   files: {}",
            outcome.turns,
            outcome.workspace.display()
        );
        for issue in store.list_issues(&outcome.build_id).await? {
            println!(
                "  {:<21} {}  {}",
                issue.status.as_str(),
                issue.id,
                issue.name
            );
        }
    }
    Ok(())
}
