//! `orket run` and `orket resume`: drive the traction loop with live progress.

use crate::project::Project;
use anyhow::{bail, Context, Result};
use orket_engine::engine::{Engine, EngineOptions, RunOutcome};
use orket_llm::{provider_by_name, Provider, RecordingProvider};
use orket_store::events::EventBus;
use orket_store::{EventRecord, SqliteStore, Store};
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
    use orket_llm::models::{demo_model, fetch, find_local};
    let path = match &args.model_path {
        Some(path) => path.clone(),
        None => match find_local("smollm2") {
            Some(path) => path,
            None => {
                let model = demo_model("smollm2").context("the demo model is not known")?;
                println!("The demo model is not installed yet: fetching it once.");
                fetch(model, |step| println!("  {step}"))?
            }
        },
    };
    println!("Loading {} ...", path.display());
    Ok(Arc::new(EmbeddedProvider::load(
        &path,
        EmbeddedOptions::default(),
    )?))
}

/// Without the `embedded` feature there is no in-process model.
#[cfg(not(feature = "embedded"))]
fn embedded_provider(_args: &ProviderArgs) -> Result<Arc<dyn Provider>> {
    bail!(
        "this orket was built without the embedded model: rebuild with `cargo build --release -p orket-cli --features embedded` (needs cmake, clang, libclang-dev), or use --provider ollama|openai"
    )
}

async fn engine(
    project: &Project,
    provider_args: &ProviderArgs,
    options: EngineOptions,
    bus: EventBus,
) -> Result<Engine> {
    let tree = project.tree()?;
    let provider = provider(provider_args)?;
    let store = SqliteStore::open(project.db_path())
        .await
        .with_context(|| format!("opening the store {}", project.db_path().display()))?;
    let store: Arc<dyn Store> = Arc::new(store);
    Ok(Engine::new(tree, store, provider, bus, options))
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
    let mut options = EngineOptions::from_env();
    options.department = args.department.clone();
    options.workspace_base = args.workspace.clone();
    options.model = args.model.clone();
    options.reset = args.reset;
    options.concurrency = args.concurrency.max(1);
    options.max_iterations = args.max_iterations.max(1);
    options.build = args.build.clone();
    options.token_budget = args.token_budget;
    options.time_budget = args.time_budget.map(Duration::from_secs);
    let bus = EventBus::default();
    let engine = engine(project, &args.provider, options, bus.clone()).await?;
    let progress = tokio::spawn(show_progress(bus));
    let result = engine.run_card(&args.target).await;
    progress.abort();
    let outcomes = result?;
    report(engine.store().as_ref(), &outcomes).await?;
    Ok(outcomes)
}

/// Continues an interrupted run.
pub async fn resume(
    project: &Project,
    run_id: &str,
    provider_args: &ProviderArgs,
) -> Result<ExitCode> {
    let bus = EventBus::default();
    let engine = engine(
        project,
        provider_args,
        EngineOptions::from_env(),
        bus.clone(),
    )
    .await?;
    let progress = tokio::spawn(show_progress(bus));
    let result = engine.resume(run_id).await;
    progress.abort();
    let outcome = result?;
    report(engine.store().as_ref(), std::slice::from_ref(&outcome)).await?;
    Ok(exit_code(&[outcome]))
}

/// Prints one line per event worth seeing while the run goes.
async fn show_progress(bus: EventBus) {
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

fn progress_line(e: &EventRecord) -> Option<String> {
    let issue = e.issue_id.as_deref().unwrap_or("-");
    let role = e.role.as_deref().unwrap_or("-");
    let d = &e.data;
    Some(match e.event.as_str() {
        "session_start" => format!(
            "run {} started: {}",
            e.run_id.as_deref().unwrap_or("?"),
            d["epic"].as_str().unwrap_or("")
        ),
        "orchestrator_tick" => format!("tick {}: {}", d["tick"], d["candidates"]),
        "turn_start" => format!(
            "  {issue} turn #{} by {} ({role})",
            d["seq"],
            d["seat"].as_str().unwrap_or("")
        ),
        "turn_complete" => format!(
            "  {issue} -> {} ({} calls, {} tokens in / {} out)",
            d["status"].as_str().unwrap_or("?"),
            d["calls"],
            d["tokens_in"],
            d["tokens_out"]
        ),
        "turn_failed" => format!(
            "  {issue} failed ({}): {}",
            d["kind"].as_str().unwrap_or("?"),
            d["message"].as_str().or(d["error"].as_str()).unwrap_or("")
        ),
        "retry_triggered" => format!("  {issue} retry {}/{}", d["retry_count"], d["max_retries"]),
        "catastrophic_failure" => format!(
            "  {issue} catastrophic failure: {}",
            d["error"].as_str().unwrap_or("")
        ),
        "policy_violation_report_saved" => format!(
            "  {issue} policy violation report: {}",
            d["path"].as_str().unwrap_or("")
        ),
        "verification_completed" => format!(
            "  {issue} verification {}: {}/{} scenarios passed{}",
            if d["ok"] == true { "PASSED" } else { "FAILED" },
            d["passed"],
            d["total"],
            d["error"]
                .as_str()
                .map(|e| format!(" ({e})"))
                .unwrap_or_default()
        ),
        "done_refused" => format!(
            "  {issue} done refused ({}): sent back to the developer",
            d["code"].as_str().unwrap_or("?")
        ),
        "sandbox_deployed" => format!(
            "sandbox {} running: api http://127.0.0.1:{}",
            d["sandbox_id"].as_str().unwrap_or("?"),
            d["ports"]["api"]
        ),
        "sandbox_deploy_failed" => format!(
            "sandbox deploy failed: {}",
            d["reason"].as_str().unwrap_or("")
        ),
        "model_timeout_retry" | "model_connection_retry" => format!(
            "  {issue} {}: {}",
            e.event,
            d["error"].as_str().unwrap_or("")
        ),
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
