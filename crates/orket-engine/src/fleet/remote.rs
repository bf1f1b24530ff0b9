//! The run's side of a fleet run (`orket run --fleet`): the run plans its ticks as always, and
//! each turn that has a seat and a model becomes a job on that model's queue; the run waits for
//! the job's outcome, then brings its own copy of the files up to date (for people, and for
//! the next tick's reviews of work).

use super::files;
use crate::error::EngineError;
use crate::run::RunCtx;
use crate::turn::{self, plan::plan_seat, TurnOutcome};
use orket_core::{Event, Status};
use orket_store::fleet::TurnJob;
use orket_store::{IssueRecord, PgFleet, Store, StoreError, StoreResult};
use serde::{Deserialize, Serialize};
use std::collections::HashMap;
use std::sync::atomic::Ordering;
use std::sync::Arc;
use std::time::{Duration, Instant};

/// How often the run looks for its jobs' outcomes.
const POLL: Duration = Duration::from_millis(50);
/// How long a job may wait untaken before the run says no worker serves its model
/// (`ORKET_FLEET_WAIT_NOTICE_SECS`, default 30).
fn unclaimed() -> Duration {
    let secs = std::env::var("ORKET_FLEET_WAIT_NOTICE_SECS")
        .ok()
        .and_then(|v| v.parse().ok())
        .unwrap_or(30);
    Duration::from_secs(secs)
}

/// What a worker commits as its job's outcome.
#[derive(Debug, Serialize, Deserialize)]
pub(crate) struct JobOutcome {
    /// What the turn gave.
    pub outcome: TurnOutcome,
    /// Tokens its model calls used.
    pub tokens: u64,
}

/// Ships the project to the store as the run finds it (seq 0) — or, for a run that shipped it
/// before (a resumed run), brings the local copy to the store's state.
pub(crate) async fn publish(ctx: &RunCtx, fleet: &PgFleet) -> Result<(), EngineError> {
    let stored = fleet.files_since(&ctx.run_id, 0).await?;
    if stored.is_empty() {
        workspace_in_root(ctx)?;
        let tree = files::read_tree(&ctx.root, &ctx.root)?;
        let rev = fleet
            .put_files(&ctx.run_id, 0, &files::as_changes(tree))
            .await?;
        *ctx.synced.lock().await = rev;
        return Ok(());
    }
    let written: Vec<_> = stored.iter().filter(|f| f.seq > 0).cloned().collect();
    files::materialize(&ctx.root, &written)?;
    *ctx.synced.lock().await = stored.iter().map(|f| f.rev).max().unwrap_or(0);
    Ok(())
}

/// The run's workspace, from the project root (a fleet ships the project; the workspace must
/// be in it).
fn workspace_in_root(ctx: &RunCtx) -> Result<String, EngineError> {
    let workspace = ctx.workspace.root();
    let root = ctx.root.canonicalize().unwrap_or_else(|_| ctx.root.clone());
    workspace
        .strip_prefix(&root)
        .or_else(|_| workspace.strip_prefix(&ctx.root))
        .map(|rel| rel.to_string_lossy().into_owned())
        .map_err(|_| EngineError::Workspace {
            path: workspace.display().to_string(),
            message: format!(
                "a fleet run needs its workspace inside the project {} (drop --workspace)",
                ctx.root.display()
            ),
        })
}

/// Runs `issue`'s turn on the fleet: a turn that cannot be routed fails here, as always; any
/// other is queued for a worker serving its model, and its outcome awaited.
pub(crate) async fn run_turn(
    ctx: &RunCtx,
    fleet: &PgFleet,
    issue: &IssueRecord,
    snapshot: Arc<HashMap<String, Status>>,
) -> StoreResult<TurnOutcome> {
    let review = issue.status == Status::CodeReview;
    let plan = match plan_seat(
        &ctx.assets,
        &ctx.options.provider,
        ctx.options.model.as_deref(),
        issue,
        review,
    ) {
        Ok(plan) => plan,
        Err(_) => return turn::run_turn(ctx, issue, snapshot).await,
    };
    let seq = ctx.next_seq();
    let job = TurnJob {
        job: format!("{}-{seq}", ctx.run_id),
        run_id: ctx.run_id.clone(),
        build_id: ctx.build_id.clone(),
        issue_id: issue.id.clone(),
        seq,
        model: plan.model.clone(),
        snapshot: snapshot
            .iter()
            .map(|(id, status)| (id.clone(), status.as_str().to_string()))
            .collect(),
        workspace: workspace_in_root(ctx).map_err(|e| StoreError::Unexpected(e.to_string()))?,
        holder: crate::lease::holder().token.clone(),
    };
    fleet.enqueue(&job).await?;
    let queued = ctx.event(Event::TurnQueued {
        seq,
        issue: issue.id.clone(),
        model: job.model.clone(),
    });
    ctx.record(vec![queued.issue(&issue.id)]).await?;
    let outcome = wait(ctx, fleet, &job).await?;
    ctx.tokens.fetch_add(outcome.tokens, Ordering::SeqCst);
    sync(ctx, fleet).await?;
    Ok(outcome.outcome)
}

/// The job's outcome, once a worker committed it (or the fleet gave it up); the events its
/// commit recorded go to the run's log and live view as the run's own do.
async fn wait(ctx: &RunCtx, fleet: &PgFleet, job: &TurnJob) -> StoreResult<JobOutcome> {
    let (queued, notice) = (Instant::now(), unclaimed());
    let mut told = false;
    loop {
        // A halted run takes back the jobs nobody took yet; the others finish.
        if ctx.halt.is_raised() && fleet.cancel(&job.job).await? {
            return Ok(JobOutcome {
                outcome: TurnOutcome::Skipped,
                tokens: 0,
            });
        }
        if let Some(record) = fleet.job(&job.job).await? {
            if let (Some((first, last)), "done") = (record.events, record.state.as_str()) {
                let events = fleet
                    .store()
                    .list_events(Some(&ctx.run_id), first - 1, last - first + 1)
                    .await?;
                if let Err(err) = ctx.recorder.sink().deliver(events) {
                    tracing::warn!("run {}: cannot write its log: {err}", ctx.run_id);
                }
            }
            let outcome = record.outcome.unwrap_or_default();
            match record.state.as_str() {
                "done" => {
                    return serde_json::from_value(outcome).map_err(|err| StoreError::Corrupt {
                        what: format!("turn_jobs.outcome of job {}", job.job),
                        message: err.to_string(),
                    })
                }
                "failed" => {
                    let why = outcome["failed"].as_str().unwrap_or("the fleet gave it up");
                    return Ok(JobOutcome {
                        outcome: TurnOutcome::Committed {
                            turn: false,
                            progress: false,
                            stop_run: Some(why.to_string()),
                        },
                        tokens: 0,
                    });
                }
                // Taken off (the run was halted, ended or moved on): no turn.
                "canceled" | "dropped" => {
                    return Ok(JobOutcome {
                        outcome: TurnOutcome::Skipped,
                        tokens: 0,
                    })
                }
                "queued" if !told && queued.elapsed() >= notice => {
                    told = true;
                    let waiting = ctx.event(Event::TurnWaiting {
                        seq: job.seq,
                        model: job.model.clone(),
                        waited_secs: queued.elapsed().as_secs(),
                    });
                    ctx.record(vec![waiting.issue(&job.issue_id)]).await?;
                }
                _ => {}
            }
        }
        tokio::time::sleep(POLL).await;
    }
}

/// Writes the files turns committed since the last sync into the run's own copy (one sync at
/// a time, so an older write never lands after a newer one).
pub(crate) async fn sync(ctx: &RunCtx, fleet: &PgFleet) -> StoreResult<()> {
    let mut synced = ctx.synced.lock().await;
    let changed = fleet.files_since(&ctx.run_id, *synced).await?;
    let highest = files::materialize(&ctx.root, &changed)
        .map_err(|err| StoreError::Unexpected(err.to_string()))?;
    if let Some(rev) = highest {
        *synced = rev.max(*synced);
    }
    Ok(())
}
