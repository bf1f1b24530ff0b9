//! `orket worker`: takes the turn jobs of the models it serves, one at a time, and runs each
//! in its own copy of the run's project — brought to the store's state first (only what changed
//! since it last did) — then commits the turn with the files it wrote, the job's outcome and
//! the job's acknowledgement in one transaction, while a heartbeat keeps the job's lease.

use super::files;
use super::remote::JobOutcome;
use crate::assets::RunAssets;
use crate::drive::committed_replies;
use crate::error::EngineError;
use crate::policy::PolicyRegistry;
use crate::run::{Halt, RunCtx, RunIdentity, RunOptions};
use crate::turn::{self, TurnOutcome};
use orket_core::assets::AssetTree;
use orket_core::{Event, Status};
use orket_isolate::verify::VerifyLimits;
use orket_llm::Provider;
use orket_store::events::Recorder;
use orket_store::{Change, Claim, NewEvent, PgFleet, Store, StoreError, StoreResult};
use std::collections::{BTreeMap, HashMap};
use std::path::PathBuf;
use std::sync::atomic::{AtomicBool, Ordering};
use std::sync::{Arc, Mutex};
use std::time::Duration;

/// How a worker works.
#[derive(Clone)]
pub struct WorkerOptions {
    /// Its name in the registry (unique in the fleet).
    pub name: String,
    /// The machine it runs on.
    pub host: String,
    /// The models it serves: it takes only their turns.
    pub models: Vec<String>,
    /// The provider its turns call.
    pub provider: Arc<dyn Provider>,
    /// Where it keeps its copies of the runs' projects (`<dir>/<run id>`).
    pub dir: PathBuf,
    /// How long a job is held without a heartbeat before another worker may take it.
    pub lease: Duration,
    /// How long it waits before looking again when no job is queued.
    pub idle: Duration,
    /// Limits of verification fixtures.
    pub verify: VerifyLimits,
    /// Turns of an issue's history sent with its prompt.
    pub context_window: usize,
}

/// What a worker did, when it stopped.
#[derive(Debug, Default, Clone, PartialEq, Eq)]
pub struct WorkerReport {
    /// Turns committed.
    pub committed: usize,
    /// Turns whose commit was refused (the job was lost).
    pub refused: usize,
    /// Turns that failed here (left to be taken again).
    pub failed: usize,
    /// Jobs dropped because their run had ended.
    pub dropped: usize,
}

/// What became of a job this worker took.
enum Done {
    /// Its turn was committed.
    Committed,
    /// Its run had ended: the job was dropped.
    Dropped,
}

/// The job a worker's run context runs one turn of (see [`RunCtx::commit_turn`]).
pub(crate) struct Claimed {
    fleet: Arc<PgFleet>,
    claim: Claim,
    /// The run's workspace files as materialized, by hash: what the turn changed is the rest.
    baseline: BTreeMap<String, String>,
    /// Whether the turn was committed (a skipped turn is acknowledged without one).
    committed: AtomicBool,
}

impl Claimed {
    /// Commits the turn with its job (see [`PgFleet::commit`]).
    pub(crate) async fn commit(
        &self,
        ctx: &RunCtx,
        changes: Vec<Change>,
        outcome: &TurnOutcome,
    ) -> StoreResult<()> {
        let written = files::read_tree(&ctx.root, ctx.workspace.root())
            .map_err(|err| StoreError::Unexpected(err.to_string()))?;
        let files = files::changes(&self.baseline, written);
        let outcome = JobOutcome {
            outcome: outcome.clone(),
            tokens: ctx.tokens.load(Ordering::SeqCst),
        };
        let outcome = serde_json::to_value(&outcome)
            .map_err(|err| StoreError::Unexpected(err.to_string()))?;
        self.fleet
            .commit(&self.claim, changes, &files, &outcome)
            .await?;
        self.committed.store(true, Ordering::SeqCst);
        Ok(())
    }
}

/// How long a worker waits before trying the database again.
const RETRY: Duration = Duration::from_secs(1);

/// A worker's copies of the runs it worked on: the write number each was brought to.
#[derive(Default)]
struct Copies(Mutex<HashMap<String, i64>>);

impl Copies {
    /// Drops the copy of `run_id` (removed from disk; the next job materializes it whole).
    fn forget(&self, dir: &std::path::Path, run_id: &str) {
        self.0
            .lock()
            .unwrap_or_else(|e| e.into_inner())
            .remove(run_id);
        if let Ok(root) = files::inside(dir, run_id) {
            let _ = std::fs::remove_dir_all(root);
        }
    }
}

/// Works until `stop` is raised (between turns: the turn in flight is finished first).
pub async fn run_worker(
    fleet: Arc<PgFleet>,
    options: WorkerOptions,
    stop: Halt,
) -> Result<WorkerReport, EngineError> {
    fleet
        .register(&options.name, &options.host, &options.models)
        .await?;
    let copies = Copies::default();
    let mut report = WorkerReport::default();
    while !stop.is_raised() {
        let claim = match fleet
            .claim(&options.name, &options.models, options.lease)
            .await
        {
            Ok(claim) => claim,
            // The database may come back: a worker waits for it rather than dying.
            Err(err) => {
                eprintln!("worker {}: cannot take a job: {err}", options.name);
                tokio::time::sleep(RETRY).await;
                continue;
            }
        };
        let Some(claim) = claim else {
            if let Err(err) = fleet.seen(&options.name).await {
                eprintln!("worker {}: cannot say it is alive: {err}", options.name);
            }
            tokio::time::sleep(options.idle).await;
            continue;
        };
        match run_job(&fleet, &options, &copies, claim.clone()).await {
            Ok(Done::Committed) => report.committed += 1,
            Ok(Done::Dropped) => report.dropped += 1,
            Err(err) => {
                // What the turn wrote was not committed: the copy starts over next time.
                copies.forget(&options.dir, &claim.job.run_id);
                match err {
                    EngineError::Store(StoreError::Conflict(reason))
                        if reason.contains(" lost turn ") =>
                    {
                        report.refused += 1;
                        if let Err(err) = refused(&fleet, &claim, &reason).await {
                            eprintln!("worker {}: {reason}; cannot record it: {err}", options.name);
                        }
                    }
                    // The job stays queued: once its lease runs out it is taken again (by
                    // this worker or another), and given up after `MAX_ATTEMPTS` takes.
                    err => {
                        report.failed += 1;
                        eprintln!(
                            "worker {}: turn {} of run {} failed, left to be taken again: {err}",
                            options.name, claim.job.seq, claim.job.run_id
                        );
                    }
                }
            }
        }
    }
    fleet.stopped(&options.name).await?;
    Ok(report)
}

/// Runs one job's turn under a heartbeat that keeps its lease.
async fn run_job(
    fleet: &Arc<PgFleet>,
    options: &WorkerOptions,
    copies: &Copies,
    claim: Claim,
) -> Result<Done, EngineError> {
    let beat = {
        let (fleet, claim, lease) = (Arc::clone(fleet), claim.clone(), options.lease);
        tokio::spawn(async move {
            loop {
                tokio::time::sleep(lease / 3).await;
                match fleet.extend(&claim, lease).await {
                    Ok(true) => {}
                    // Lost: the commit will be refused; nothing else to do here.
                    Ok(false) => break,
                    Err(err) => tracing::warn!("worker {}: heartbeat failed: {err}", claim.worker),
                }
            }
        })
    };
    let ran = run_turn(fleet, options, copies, claim).await;
    beat.abort();
    ran
}

/// Brings the run's copy up to date, rebuilds the run's context around the job and runs its
/// turn.
async fn run_turn(
    fleet: &Arc<PgFleet>,
    options: &WorkerOptions,
    copies: &Copies,
    claim: Claim,
) -> Result<Done, EngineError> {
    let store: Arc<dyn Store> = Arc::new(fleet.store().clone());
    let job = claim.job.clone();
    let run = store
        .get_run(&job.run_id)
        .await?
        .ok_or_else(|| EngineError::NotFound(format!("run {} not found", job.run_id)))?;
    if run.status.is_final() {
        // The run ended (halted, failed) while its job waited: nothing to do but drop it.
        let why = format!("run {} ended ({}) before its turn ran", run.id, run.status);
        fleet.drop_job(&claim, &why).await?;
        return Ok(Done::Dropped);
    }
    let root = files::inside(&options.dir, &job.run_id)?;
    bring_up_to_date(fleet, copies, &root, &job.run_id).await?;
    let root = root.canonicalize().map_err(|err| EngineError::Workspace {
        path: root.display().to_string(),
        message: err.to_string(),
    })?;

    let epic = run.params["epic"]
        .as_str()
        .unwrap_or(&run.target)
        .to_string();
    let tree = AssetTree::new(&root);
    let assets = RunAssets::load(&tree, &PolicyRegistry::default(), &epic, &run.department)?;
    let mut run_options = RunOptions::new(Arc::clone(&options.provider));
    run_options.department = run.department.clone();
    run_options.model = run.params["model"].as_str().map(str::to_string);
    run_options.context_window = options.context_window;
    run_options.verify = options.verify;
    run_options.seed = run.params["seed"].as_i64();
    let turns = store.list_turns(&job.run_id).await?;
    for ((issue, role), n) in committed_replies(&turns) {
        options.provider.resume_after(&issue, &role, n);
    }
    let identity = RunIdentity {
        run_id: job.run_id.clone(),
        build_id: job.build_id.clone(),
        target: run.params["target"].as_str().map(str::to_string),
        workspace: files::inside(&root, &job.workspace)?,
    };
    let recorder = Recorder::for_store(Arc::clone(&store));
    let mut ctx = RunCtx::new(&recorder, &root, identity, assets, run_options, Halt::new())?;
    ctx.seq.store(job.seq - 1, Ordering::SeqCst);
    let baseline = files::hashes(&files::read_tree(&root, ctx.workspace.root())?);
    ctx.claimed = Some(Claimed {
        fleet: Arc::clone(fleet),
        claim: claim.clone(),
        baseline,
        committed: AtomicBool::new(false),
    });
    ctx.defer(ctx.event(Event::TurnClaimed {
        seq: job.seq,
        worker: options.name.clone(),
        host: options.host.clone(),
        attempt: claim.attempt,
    }));

    let issue = store
        .get_issue(&job.build_id, &job.issue_id)
        .await?
        .ok_or_else(|| EngineError::NotFound(format!("issue {} not found", job.issue_id)))?;
    let snapshot: HashMap<String, Status> = job
        .snapshot
        .iter()
        .filter_map(|(id, status)| Some((id.clone(), status.parse().ok()?)))
        .collect();
    let outcome = turn::run_turn(&ctx, &issue, Arc::new(snapshot)).await?;
    let claimed = ctx.claimed.as_ref().expect("set above");
    if !claimed.committed.load(Ordering::SeqCst) {
        // Nothing to commit (the issue was no longer workable): the job is done all the same.
        claimed.commit(&ctx, Vec::new(), &outcome).await?;
    }
    Ok(Done::Committed)
}

/// Writes what changed in the run's files since this worker last looked into its copy.
async fn bring_up_to_date(
    fleet: &PgFleet,
    copies: &Copies,
    root: &std::path::Path,
    run_id: &str,
) -> Result<(), EngineError> {
    let after = copies
        .0
        .lock()
        .unwrap_or_else(|e| e.into_inner())
        .get(run_id)
        .copied()
        .unwrap_or(0);
    let changed = fleet.files_since(run_id, after).await?;
    if let Some(rev) = files::materialize(root, &changed)? {
        copies
            .0
            .lock()
            .unwrap_or_else(|e| e.into_inner())
            .insert(run_id.to_string(), rev);
    }
    Ok(())
}

/// Records that the worker's turn was refused (its job was lost), in the run's events.
async fn refused(fleet: &PgFleet, claim: &Claim, reason: &str) -> Result<(), EngineError> {
    let event = NewEvent::new(
        Some(&claim.job.run_id),
        Event::TurnCommitRefused {
            seq: claim.job.seq,
            worker: claim.worker.clone(),
            reason: reason.to_string(),
        },
    );
    fleet
        .store()
        .apply(vec![Change::AppendEvent(event)])
        .await?;
    Ok(())
}
