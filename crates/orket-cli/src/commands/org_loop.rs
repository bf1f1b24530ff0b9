//! `orket loop`: the organization loop — across the departments, pick the ready issue with the
//! best critical-path score, run its card, pick again; sleep when nothing is ready (or, with
//! `--once`, stop). Each decision is printed as it is recorded; Ctrl-C finishes the turns in
//! flight and stops.

use super::run::{engine, progress_line, provider, ProviderArgs};
use crate::project::Project;
use anyhow::Result;
use orket_core::{Event, RunStatus};
use orket_engine::org_loop::decision;
use orket_engine::{LoopOptions, LoopOutcome, RunOptions};
use orket_store::events::EventBus;
use std::process::ExitCode;
use std::time::Duration;
use tokio::sync::broadcast::{error::RecvError, Receiver};

/// Options of `orket loop`.
#[derive(Debug, Clone, clap::Args)]
pub struct LoopArgs {
    /// Pick only this department's epics [default: every department's].
    #[arg(long, value_name = "D")]
    pub department: Option<String>,
    /// Stop once nothing is ready instead of sleeping (exit 0).
    #[arg(long)]
    pub once: bool,
    /// Seconds to sleep between looks when nothing is ready.
    #[arg(long, value_name = "SECS", default_value_t = 30, value_parser = clap::value_parser!(u64).range(1..=86_400))]
    pub idle_sleep: u64,
    /// Stop the loop once its cards have used this many tokens in all.
    #[arg(long, value_name = "N")]
    pub token_budget: Option<u64>,
    /// Stop the loop after this many seconds.
    #[arg(long, value_name = "SECS")]
    pub time_budget: Option<u64>,
    /// End a card's run `budget_exceeded` past this many tokens.
    #[arg(long, value_name = "N")]
    pub card_token_budget: Option<u64>,
    /// End a card's run `budget_exceeded` past this many seconds.
    #[arg(long, value_name = "SECS")]
    pub card_time_budget: Option<u64>,
    /// A model for every turn, over the epic's and environment's choice.
    #[arg(long, value_name = "MODEL")]
    pub model: Option<String>,
    /// Turns in flight at once within a card's run.
    #[arg(long, value_name = "N", default_value_t = 3)]
    pub concurrency: usize,
    /// Ticks before a card's run ends `exhausted`.
    #[arg(long, value_name = "N", default_value_t = 20)]
    pub max_iterations: usize,
    #[command(flatten)]
    pub provider: ProviderArgs,
}

/// Runs the loop until it stops: exit 0 when a person stopped it or (`--once`) nothing was
/// left ready, 1 when a budget ran out or it failed.
pub async fn run(project: &Project, args: LoopArgs) -> Result<ExitCode> {
    let card = RunOptions {
        model: args.model.clone(),
        concurrency: args.concurrency.max(1),
        max_iterations: args.max_iterations.max(1),
        token_budget: args.card_token_budget,
        time_budget: args.card_time_budget.map(Duration::from_secs),
        ..RunOptions::from_env(provider(&args.provider)?)
    };
    let options = LoopOptions {
        department: args.department.clone(),
        once: args.once,
        idle_sleep: Duration::from_secs(args.idle_sleep),
        token_budget: args.token_budget,
        time_budget: args.time_budget.map(Duration::from_secs),
        card,
    };
    let bus = EventBus::default();
    let progress = tokio::spawn(show(bus.subscribe()));
    let engine = engine(project, bus).await?;
    let handle = engine.start_loop(options).await?;
    let control = handle.control().clone();
    println!(
        "loop {} on {} (Ctrl-C, or `orket halt --loop` from anywhere, finishes the turns in \
         flight and stops)",
        control.id(),
        project.store_name()
    );
    let join = handle.join();
    tokio::pin!(join);
    let outcome = loop {
        tokio::select! {
            outcome = &mut join => break outcome,
            _ = tokio::signal::ctrl_c() => {
                println!("stopping the loop: the card in flight halts at its next turn boundary ...");
                if let Err(e) = control.halt().await {
                    println!("  cannot record the halt: {e}");
                }
            }
        }
    };
    // The printer stops after `loop_stopped` (the loop's last event).
    if tokio::time::timeout(Duration::from_secs(2), progress)
        .await
        .is_err()
    {
        println!("  (the last events are not shown)");
    }
    let outcome = outcome?;
    report(&outcome);
    Ok(exit_code(&outcome))
}

/// 0 for a loop a person stopped or that ran out of ready work (`--once`), else 1.
fn exit_code(outcome: &LoopOutcome) -> ExitCode {
    match outcome.status {
        RunStatus::Completed | RunStatus::Canceled => ExitCode::SUCCESS,
        _ => ExitCode::FAILURE,
    }
}

fn report(outcome: &LoopOutcome) {
    println!();
    println!(
        "loop {}: {} — {}",
        outcome.id, outcome.status, outcome.reason
    );
    println!("  cards: {}   tokens: {}", outcome.cards, outcome.tokens);
}

/// Prints each loop decision, and the progress of the cards' runs, as they are committed,
/// until this loop's `loop_stopped` (the first `loop_started` seen is this loop's; another
/// loop's events — a killed loop's row being ended — are marked with its id).
async fn show(mut events: Receiver<std::sync::Arc<orket_store::EventRecord>>) {
    let mut this: Option<String> = None;
    loop {
        match events.recv().await {
            Ok(event) => {
                if matches!(event.event, Event::LoopStarted { .. }) && this.is_none() {
                    this = event.run_id.clone();
                }
                let ours = event.run_id.is_some() && event.run_id == this;
                if let Some(line) = decision(&event.event) {
                    match (ours, &event.run_id) {
                        (false, Some(other)) => println!("loop {other}: {line}"),
                        _ => println!("loop: {line}"),
                    }
                } else if let Some(line) = progress_line(&event) {
                    println!("{line}");
                }
                if ours && matches!(event.event, Event::LoopStopped { .. }) {
                    break;
                }
            }
            Err(RecvError::Lagged(n)) => println!("  ({n} events not shown)"),
            Err(RecvError::Closed) => break,
        }
    }
}
