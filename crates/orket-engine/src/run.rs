//! One run's options, its halt flag, its outcome, and the context its turns share.

use crate::assets::RunAssets;
use crate::error::EngineError;
use crate::lease::Heartbeat;
use crate::policy::{LoopChoice, LoopSettings};
use orket_core::{Event, RunStatus};
use orket_governance::confine::Confinement;
use orket_governance::file_tools::FileTools;
use orket_isolate::verify::VerifyLimits;
use orket_llm::{Provider, RetryPolicy};
use orket_store::events::{EventLog, Recorder};
use orket_store::{Applied, Change, NewEvent, StoreResult};
use std::path::{Path, PathBuf};
use std::sync::atomic::{AtomicBool, AtomicI64, AtomicU64, Ordering};
use std::sync::{Arc, Mutex};
use std::time::Duration;

/// The reason a halted run ends with.
pub const HALTED_REASON: &str = "halted by a person";

/// How a run is carried out.
#[derive(Clone)]
pub struct RunOptions {
    /// The model provider of every turn.
    pub provider: Arc<dyn Provider>,
    /// The department to look assets up in.
    pub department: String,
    /// The folder runs write into (`<root>/workspace` by default); an epic works in
    /// `<base>/<epic>`.
    pub workspace_base: Option<PathBuf>,
    /// Turns in flight at once (default 3).
    pub concurrency: usize,
    /// Ticks before the run ends `exhausted` (default 20).
    pub max_iterations: usize,
    /// Ticks in a row without progress before the run ends `stalled` (default 3).
    pub no_progress_limit: usize,
    /// Turns of an issue's history sent with its prompt (`ORKET_CONTEXT_WINDOW`, default 10).
    pub context_window: usize,
    /// Steps per turn, over the model profile's and `process_rules.max_steps` (unset: those).
    pub steps: Option<usize>,
    /// Corrections per turn, over the model profile's and `process_rules.max_corrections`.
    pub corrections: Option<usize>,
    /// A model for every turn, over every other choice.
    pub model: Option<String>,
    /// Start the build over instead of continuing it.
    pub reset: bool,
    /// How a failed model call is retried.
    pub retry: RetryPolicy,
    /// The build to work on instead of `build-<epic>` (epic and issue runs).
    pub build: Option<String>,
    /// Tokens (prompt + completion) a run may use before it ends `budget_exceeded`.
    pub token_budget: Option<u64>,
    /// Wall-clock time a run may take before it ends `budget_exceeded`.
    pub time_budget: Option<Duration>,
    /// The id of the first run (chosen by the caller so it can be handed out before the run
    /// begins); later runs (a rock's next epics) get fresh ids.
    pub run_id: Option<String>,
    /// Limits of verification fixture runs (`ORKET_VERIFY_*`).
    pub verify: VerifyLimits,
    /// The run's sampling seed, over the environment's (`orket demo --seed`).
    pub seed: Option<i64>,
    /// Hand the turns to the fleet's workers instead of running them here (a PostgreSQL
    /// store; `orket run --fleet`).
    #[cfg(feature = "postgres")]
    pub fleet: Option<Arc<orket_store::PgFleet>>,
}

impl RunOptions {
    /// The defaults, with `provider`.
    pub fn new(provider: Arc<dyn Provider>) -> Self {
        RunOptions {
            provider,
            department: "core".to_string(),
            workspace_base: None,
            concurrency: 3,
            max_iterations: 20,
            no_progress_limit: 3,
            context_window: 10,
            steps: None,
            corrections: None,
            model: None,
            reset: false,
            retry: RetryPolicy::default(),
            build: None,
            token_budget: None,
            time_budget: None,
            run_id: None,
            verify: VerifyLimits::default(),
            seed: None,
            #[cfg(feature = "postgres")]
            fleet: None,
        }
    }

    /// The defaults with `ORKET_CONTEXT_WINDOW` applied when it is a number, and the
    /// `ORKET_VERIFY_*` limits.
    pub fn from_env(provider: Arc<dyn Provider>) -> Self {
        let mut options = RunOptions {
            verify: VerifyLimits::from_env(),
            ..RunOptions::new(provider)
        };
        if let Some(n) = std::env::var("ORKET_CONTEXT_WINDOW")
            .ok()
            .and_then(|v| v.parse().ok())
        {
            options.context_window = n;
        }
        options
    }
}

/// A request to stop a run at the next turn boundary, raised in this process (the run's
/// handle) or seen in the store (`orket halt` from anywhere). Turns in flight finish and are
/// committed; no new turn starts; the run ends `canceled` ("halted by a person").
#[derive(Debug, Clone, Default)]
pub struct Halt(Arc<AtomicBool>);

impl Halt {
    /// A signal not raised yet.
    pub fn new() -> Self {
        Halt::default()
    }

    /// Asks the run to stop at the next turn boundary.
    pub fn raise(&self) {
        self.0.store(true, Ordering::SeqCst);
    }

    /// Whether a halt was asked for.
    pub fn is_raised(&self) -> bool {
        self.0.load(Ordering::SeqCst)
    }
}

/// How a run ended.
#[derive(Debug, Clone, PartialEq)]
pub struct RunOutcome {
    /// The run id.
    pub run_id: String,
    /// Its final status.
    pub status: RunStatus,
    /// Why.
    pub reason: Option<String>,
    /// Turns committed by this invocation.
    pub turns: usize,
    /// The build it worked on.
    pub build_id: String,
    /// Where its files went.
    pub workspace: PathBuf,
}

/// Everything the turns of one epic run share.
pub(crate) struct RunCtx {
    /// The project root.
    pub root: PathBuf,
    pub run_id: String,
    pub build_id: String,
    pub target: Option<String>,
    pub assets: RunAssets,
    pub workspace: Arc<Confinement>,
    pub files: FileTools,
    /// Commits to the store, then writes `<workspace>/orket.log` and publishes.
    pub recorder: Recorder,
    pub options: RunOptions,
    pub halt: Halt,
    /// The last turn seq handed out.
    pub seq: AtomicI64,
    /// Tokens used so far.
    pub tokens: AtomicU64,
    pub halt_on_violation: bool,
    pub approval_required: Vec<String>,
    /// Events of the run waiting for its next commit (a tick's event goes with its first
    /// turn, so a tick costs no write of its own).
    pending: Mutex<Vec<NewEvent>>,
    /// The run holds its build's lease: each commit renews it first (see [`crate::lease`]).
    pub leased: AtomicBool,
    /// The lease's heartbeat while the run holds it.
    heartbeat: Mutex<Option<Heartbeat>>,
    /// On a fleet worker: the job this context runs one turn of, which its commit goes with.
    #[cfg(feature = "postgres")]
    pub claimed: Option<crate::fleet::Claimed>,
    /// In a fleet run: the last write of the run's files brought into the local copy.
    #[cfg(feature = "postgres")]
    pub synced: tokio::sync::Mutex<i64>,
}

/// `options` with the traction loop's settings the `loop` policy chooses for the run.
fn paced(assets: &RunAssets, options: RunOptions) -> RunOptions {
    let settings = assets.policies.loop_policy.settings(&LoopChoice {
        org: &assets.org,
        epic: &assets.epic,
        given: LoopSettings {
            concurrency: options.concurrency,
            max_iterations: options.max_iterations,
            no_progress_limit: options.no_progress_limit,
            context_window: options.context_window,
            steps: options.steps,
            corrections: options.corrections,
        },
    });
    RunOptions {
        concurrency: settings.concurrency.max(1),
        max_iterations: settings.max_iterations.max(1),
        no_progress_limit: settings.no_progress_limit.max(1),
        context_window: settings.context_window,
        steps: settings.steps,
        corrections: settings.corrections,
        ..options
    }
}

/// Who a run is: ids, target and where it works.
pub(crate) struct RunIdentity {
    pub run_id: String,
    pub build_id: String,
    pub target: Option<String>,
    pub workspace: PathBuf,
}

impl RunCtx {
    /// The context of run `id` working in `id.workspace` (created if missing), with the epic's
    /// references (relative to the project `root`) readable by its tools.
    pub fn new(
        recorder: &Recorder,
        root: &Path,
        id: RunIdentity,
        assets: RunAssets,
        options: RunOptions,
        halt: Halt,
    ) -> Result<RunCtx, EngineError> {
        let references: Vec<PathBuf> = assets
            .epic
            .card
            .references
            .iter()
            .map(|r| root.join(r))
            .collect();
        let workspace = Arc::new(Confinement::workspace(&id.workspace, &references).map_err(
            |e| EngineError::Workspace {
                path: id.workspace.display().to_string(),
                message: e.to_string(),
            },
        )?);
        let log = Arc::new(EventLog::for_workspace(workspace.root()));
        let options = paced(&assets, options);
        Ok(RunCtx {
            root: root.to_path_buf(),
            run_id: id.run_id,
            build_id: id.build_id,
            target: id.target,
            halt_on_violation: assets.halt_on_violation(),
            approval_required: assets.approval_required(),
            assets,
            files: FileTools::new(Arc::clone(&workspace)),
            workspace,
            recorder: recorder.with_log(log),
            options,
            halt,
            seq: AtomicI64::new(0),
            tokens: AtomicU64::new(0),
            pending: Mutex::new(Vec::new()),
            leased: AtomicBool::new(false),
            heartbeat: Mutex::new(None),
            #[cfg(feature = "postgres")]
            claimed: None,
            #[cfg(feature = "postgres")]
            synced: tokio::sync::Mutex::new(0),
        })
    }

    /// `event` of this run, stamped now.
    pub fn event(&self, event: Event) -> NewEvent {
        NewEvent::new(Some(&self.run_id), event)
    }

    /// Applies the deferred events and `changes` as one batch, then logs and publishes its
    /// events.
    /// A batch the store refuses gives the deferred events back for the next commit.
    /// While the run holds its build, the batch first renews the lease: a process that lost
    /// it has the batch refused (`StoreError::Held`).
    pub async fn commit(&self, changes: Vec<Change>) -> StoreResult<Vec<Applied>> {
        let deferred = std::mem::take(&mut *self.pending());
        let renewal = self
            .leased
            .load(Ordering::SeqCst)
            .then(|| crate::lease::renewal(&self.build_id));
        let mut batch: Vec<Change> = renewal.into_iter().collect();
        let skip = batch.len();
        batch.extend(deferred.iter().cloned().map(Change::AppendEvent));
        batch.extend(changes);
        let committed = self.recorder.commit(batch).await;
        if committed.is_err() {
            self.pending().splice(0..0, deferred);
        }
        committed.map(|mut applied| applied.split_off(skip))
    }

    /// Commits a turn's `changes` and gives back its `outcome`: here, or on a fleet worker
    /// with its job (the job's check, the turn, its files, its outcome and the job's
    /// acknowledgement in one transaction).
    pub(crate) async fn commit_turn(
        &self,
        changes: Vec<Change>,
        outcome: crate::turn::TurnOutcome,
    ) -> StoreResult<crate::turn::TurnOutcome> {
        #[cfg(feature = "postgres")]
        if let Some(claimed) = &self.claimed {
            let mut batch: Vec<Change> = self
                .take_pending()
                .into_iter()
                .map(Change::AppendEvent)
                .collect();
            batch.extend(changes);
            claimed.commit(self, batch, &outcome).await?;
            return Ok(outcome);
        }
        self.commit(changes).await?;
        Ok(outcome)
    }

    /// The deferred events, taken.
    #[cfg(feature = "postgres")]
    pub fn take_pending(&self) -> Vec<NewEvent> {
        std::mem::take(&mut *self.pending())
    }

    /// Keeps the lease's heartbeat going for as long as the run holds its build.
    pub fn keep_alive(&self, heartbeat: Heartbeat) {
        *self.heartbeat.lock().unwrap_or_else(|e| e.into_inner()) = Some(heartbeat);
    }

    /// Stops the lease's heartbeat (before the batch that gives the build back, so no renewal
    /// queued behind it finds the lease gone and halts the run).
    pub fn stop_heartbeat(&self) {
        self.heartbeat
            .lock()
            .unwrap_or_else(|e| e.into_inner())
            .take();
    }

    /// The run gave its build back (in its last commit): no renewal, no heartbeat.
    pub fn released(&self) {
        self.stop_heartbeat();
        self.leased.store(false, Ordering::SeqCst);
    }

    /// Records `event` with the run's next commit.
    pub fn defer(&self, event: NewEvent) {
        self.pending().push(event);
    }

    /// The deferred events (a panic elsewhere while holding them leaves them usable).
    fn pending(&self) -> std::sync::MutexGuard<'_, Vec<NewEvent>> {
        self.pending.lock().unwrap_or_else(|e| e.into_inner())
    }

    /// Records `events` (after any deferred ones) as one batch.
    pub async fn record(&self, events: Vec<NewEvent>) -> StoreResult<()> {
        self.commit(events.into_iter().map(Change::AppendEvent).collect())
            .await
            .map(drop)
    }

    /// The next turn seq.
    pub fn next_seq(&self) -> i64 {
        self.seq.fetch_add(1, Ordering::SeqCst) + 1
    }
}
