//! The traction loop (SPEC §5–6): `run_card` dispatch, seeding and build continuation, the
//! complexity gate, ticks that plan by critical path and dispatch turns concurrently, and the
//! stop rules (completed, stalled with reasons, failed, exhausted). `resume` continues a run
//! from its last committed turn.

use crate::policy::{Policies, PolicyRegistry};
use crate::turn::{self, TurnOutcome};
use orket_core::assets::{
    AssetError, AssetTree, Category, Dialect, Environment, Epic, Organization, Role, Team,
    MODEL_FAMILIES,
};
use orket_core::ids::{epic_build_id, rock_build_id};
use orket_core::plan::PlanCard;
use orket_core::{RunKind, RunStatus, Status, INTEGRITY_GUARD};
use orket_governance::confine::Confinement;
use orket_governance::file_tools::FileTools;
use orket_isolate::verify::VerifyLimits;
use orket_llm::{Provider, RetryPolicy};
use orket_sandbox::SandboxManager;
use orket_store::events::{names, EventBus, EventLog, EventSink};
use orket_store::{
    Applied, BuildRecord, Change, EventRecord, IssueRecord, IssueUpdate, NewEvent, RunRecord,
    RunUpdate, Store, StoreError,
};
use serde_json::json;
use std::collections::{BTreeMap, HashMap};
use std::path::PathBuf;
use std::sync::atomic::{AtomicBool, AtomicI64, AtomicU64, Ordering};
use std::sync::Arc;
use std::time::Duration;
use tokio::sync::Semaphore;

/// Why a run could not start or go on.
#[derive(Debug, thiserror::Error)]
pub enum EngineError {
    /// The name is no epic, rock or issue.
    #[error("{0}")]
    NotFound(String),
    /// An asset could not be loaded.
    #[error(transparent)]
    Asset(#[from] AssetError),
    /// The epic is too large for its governance.
    #[error("{0}")]
    Complexity(String),
    /// The store failed (not `#[from]`: the message holds the cause, so it is not also its
    /// `source()`, which a printed error chain would repeat).
    #[error("store: {0}")]
    Store(StoreError),
    /// The workspace could not be prepared.
    #[error("workspace {path}: {message}")]
    Workspace {
        /// The folder.
        path: String,
        /// What went wrong.
        message: String,
    },
    /// `config/user_settings.json` cannot be read.
    #[error("{0}")]
    Settings(String),
    /// A run that cannot be resumed.
    #[error("{0}")]
    Resume(String),
}

impl From<StoreError> for EngineError {
    fn from(e: StoreError) -> Self {
        EngineError::Store(e)
    }
}

/// A request to stop a run at the next turn boundary, shared between the engine and whoever
/// may halt it (the server's `POST /v1/runs/{id}/halt`). Turns in flight finish and are
/// committed; no new turn starts; the run ends `canceled` ("halted by a person").
#[derive(Debug, Clone, Default)]
pub struct Halt(Arc<AtomicBool>);

impl Halt {
    /// A signal not raised yet.
    pub fn new() -> Self {
        Halt::default()
    }

    /// Asks the run to stop at the next turn boundary.
    pub fn halt(&self) {
        self.0.store(true, Ordering::SeqCst);
    }

    /// Whether a halt was asked for.
    pub fn is_halted(&self) -> bool {
        self.0.load(Ordering::SeqCst)
    }
}

/// The reason a halted run ends with.
pub const HALTED_REASON: &str = "halted by a person";

/// How a run is carried out.
#[derive(Debug, Clone)]
pub struct EngineOptions {
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
    /// The id of the first run this engine starts (chosen by the caller so it can be handed
    /// out before the run begins); later runs (a rock's next epics) get fresh ids.
    pub run_id: Option<String>,
    /// Raised to stop the engine's runs at the next turn boundary.
    pub halt: Halt,
    /// Limits of verification fixture runs (`ORKET_VERIFY_*`).
    pub verify: VerifyLimits,
}

impl Default for EngineOptions {
    fn default() -> Self {
        EngineOptions {
            department: "core".to_string(),
            workspace_base: None,
            concurrency: 3,
            max_iterations: 20,
            no_progress_limit: 3,
            context_window: 10,
            model: None,
            reset: false,
            retry: RetryPolicy::default(),
            build: None,
            token_budget: None,
            time_budget: None,
            run_id: None,
            halt: Halt::new(),
            verify: VerifyLimits::default(),
        }
    }
}

impl EngineOptions {
    /// The defaults with `ORKET_CONTEXT_WINDOW` applied when it is a number, and the
    /// `ORKET_VERIFY_*` limits.
    pub fn from_env() -> Self {
        let mut options = EngineOptions {
            verify: VerifyLimits::from_env(),
            ..EngineOptions::default()
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

/// What a name given to [`Engine::run_card`] is.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Target {
    /// An epic (by file stem).
    Epic,
    /// A rock (by file stem).
    Rock,
    /// An issue, run with its epic.
    Issue {
        /// The epic holding it.
        epic: String,
    },
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

/// The engine: assets, store, model provider and event bus.
pub struct Engine {
    tree: AssetTree,
    store: Arc<dyn Store>,
    provider: Arc<dyn Provider>,
    bus: EventBus,
    options: EngineOptions,
    registry: PolicyRegistry,
    /// `options.run_id`, until the first run takes it.
    first_run_id: std::sync::Mutex<Option<String>>,
}

/// The assets an epic run needs, loaded and checked, and the policies chosen for it.
pub(crate) struct RunAssets {
    pub org: Organization,
    pub epic: Epic,
    pub team: Team,
    pub env: Environment,
    pub roles: HashMap<String, Role>,
    pub dialects: HashMap<String, Dialect>,
    pub policies: Policies,
    pub user_settings: HashMap<String, String>,
}

/// Everything the turns of one epic run share.
pub(crate) struct RunCtx {
    pub run_id: String,
    pub build_id: String,
    pub target: Option<String>,
    pub assets: RunAssets,
    pub workspace: Arc<Confinement>,
    pub files: FileTools,
    pub sink: EventSink,
    pub seq: AtomicI64,
    pub tokens: AtomicU64,
    pub halt_on_violation: bool,
    pub approval_required: Vec<String>,
}

impl Engine {
    /// An engine over the project at `tree`.
    pub fn new(
        tree: AssetTree,
        store: Arc<dyn Store>,
        provider: Arc<dyn Provider>,
        bus: EventBus,
        options: EngineOptions,
    ) -> Self {
        Engine {
            tree,
            store,
            provider,
            bus,
            first_run_id: std::sync::Mutex::new(options.run_id.clone()),
            options,
            registry: PolicyRegistry::default(),
        }
    }

    /// The same engine with `registry` (an embedding program's own policies registered).
    pub fn with_policies(mut self, registry: PolicyRegistry) -> Self {
        self.registry = registry;
        self
    }

    /// The store.
    pub fn store(&self) -> &Arc<dyn Store> {
        &self.store
    }

    /// The sandboxes of this engine's store, their files kept in `<root>/.orket/sandboxes`.
    pub fn sandboxes(&self) -> SandboxManager {
        SandboxManager::new(
            Arc::clone(&self.store),
            self.tree.root().join(".orket").join("sandboxes"),
        )
    }

    /// The provider.
    pub(crate) fn provider(&self) -> &Arc<dyn Provider> {
        &self.provider
    }

    /// The options.
    pub(crate) fn options(&self) -> &EngineOptions {
        &self.options
    }

    /// What `name` is in the engine's department: an epic, a rock, or an issue of an epic
    /// (looked up in that order, as `run_card` does); `None` when it is none of them.
    pub fn resolve(&self, name: &str) -> Option<Target> {
        let dept = &self.options.department;
        if self.tree.find(Category::Epics, name, dept).is_ok() {
            return Some(Target::Epic);
        }
        if self.tree.find(Category::Rocks, name, dept).is_ok() {
            return Some(Target::Rock);
        }
        self.tree
            .list(Category::Epics, dept)
            .into_iter()
            .find(|epic_name| {
                self.tree
                    .load_epic(epic_name, dept)
                    .is_ok_and(|epic| epic.issue(name).is_some())
            })
            .map(|epic| Target::Issue { epic })
    }

    /// Runs an epic by name, a rock by name, or one issue (with its epic) by id.
    pub async fn run_card(&self, name: &str) -> Result<Vec<RunOutcome>, EngineError> {
        let dept = self.options.department.clone();
        match self.resolve(name) {
            Some(Target::Epic) => Ok(vec![
                self.run_epic(name, &dept, None, RunKind::Epic, None)
                    .await?,
            ]),
            Some(Target::Rock) => {
                let rock = self.tree.load_rock(name, &dept)?;
                let rock_build = rock_build_id(&rock.stem);
                let mut outcomes = Vec::new();
                for entry in &rock.epics {
                    let base = self.workspace_base().join(&rock.stem);
                    let outcome = self
                        .run_epic(
                            &entry.epic,
                            &entry.department,
                            None,
                            RunKind::Rock,
                            Some(base),
                        )
                        .await?;
                    let stop = outcome.status != RunStatus::Completed;
                    outcomes.push(outcome);
                    self.update_rock_build(&rock, &rock_build).await?;
                    if stop {
                        break;
                    }
                }
                Ok(outcomes)
            }
            Some(Target::Issue { epic }) => Ok(vec![
                self.run_epic(&epic, &dept, Some(name), RunKind::Issue, None)
                    .await?,
            ]),
            None => Err(Self::not_found(&self.tree, name, &dept)),
        }
    }

    /// The error for a name that is no epic, rock or issue (it lists what exists).
    pub(crate) fn not_found(tree: &AssetTree, name: &str, dept: &str) -> EngineError {
        EngineError::NotFound(format!(
            "\"{name}\" is no epic, rock or issue of department \"{dept}\" (epics: {}; rocks: {})",
            tree.list(Category::Epics, dept).join(", "),
            tree.list(Category::Rocks, dept).join(", ")
        ))
    }

    /// Keeps the rock's build row current: its status derived from its epics' builds.
    async fn update_rock_build(
        &self,
        rock: &orket_core::assets::Rock,
        id: &str,
    ) -> Result<(), EngineError> {
        let mut statuses = Vec::new();
        for entry in &rock.epics {
            let status = self
                .store
                .get_build(&epic_build_id(&entry.epic))
                .await?
                .map(|b| b.status)
                .unwrap_or(Status::Ready);
            statuses.push(status);
        }
        let mut build = BuildRecord::new(id, "rock", &rock.stem, &rock.department);
        if let Some(existing) = self.store.get_build(id).await? {
            build.created_at = existing.created_at;
        }
        build.status = orket_core::lifecycle::derive_rock_status(&statuses);
        self.store.upsert_build(build).await?;
        Ok(())
    }

    fn workspace_base(&self) -> PathBuf {
        self.options
            .workspace_base
            .clone()
            .unwrap_or_else(|| self.tree.root().join("workspace"))
    }

    /// Loads what an epic run needs and refuses epics over the complexity threshold.
    pub(crate) fn prepare(&self, epic_name: &str, dept: &str) -> Result<RunAssets, EngineError> {
        Self::prepare_assets(&self.tree, &self.registry, epic_name, dept)
    }

    /// [`Engine::prepare`] without an engine (also used by `preview`).
    pub(crate) fn prepare_assets(
        tree: &AssetTree,
        registry: &PolicyRegistry,
        epic_name: &str,
        dept: &str,
    ) -> Result<RunAssets, EngineError> {
        let org = tree.organization()?;
        let epic = tree.load_epic(epic_name, dept)?;
        if epic.issues.len() > org.idesign_threshold && !epic.idesign {
            return Err(EngineError::Complexity(format!(
                "epic \"{epic_name}\" has {} issues, more than the iDesign threshold of {} (architecture.idesign_threshold), and architecture_governance.idesign is off: turn it on or split the epic",
                epic.issues.len(),
                org.idesign_threshold
            )));
        }
        let team = tree.load_team(&epic.team, dept)?;
        let env = tree.load_environment(&epic.environment, dept)?;
        let mut roles = HashMap::new();
        let names = team
            .seats
            .iter()
            .flat_map(|s| s.roles.iter().cloned())
            .chain(std::iter::once(INTEGRITY_GUARD.to_string()));
        for name in names {
            if roles.contains_key(&name) {
                continue;
            }
            match tree.load_role(&name, dept, Some(&team)) {
                Ok(role) => {
                    roles.insert(name, role);
                }
                // A missing integrity_guard role only matters if a review turn needs it.
                Err(AssetError::NotFound { .. }) if name == INTEGRITY_GUARD => {}
                Err(e) => return Err(e.into()),
            }
        }
        let dialects = MODEL_FAMILIES
            .iter()
            .filter_map(|f| tree.load_dialect(f, dept).ok().map(|d| (f.to_string(), d)))
            .collect();
        let (policies, warnings) = registry.resolve(&org, &|k| std::env::var(k).ok());
        for warning in &warnings {
            tracing::warn!("{warning}");
        }
        Ok(RunAssets {
            org,
            epic,
            team,
            env,
            roles,
            dialects,
            policies,
            user_settings: Self::user_settings(tree)?,
        })
    }

    /// `config/user_settings.json` (`preferred_coder`, `preferred_architect`,
    /// `preferred_reviewer`, ...), when present.
    fn user_settings(tree: &AssetTree) -> Result<HashMap<String, String>, EngineError> {
        let path = tree.root().join("config").join("user_settings.json");
        if !path.is_file() {
            return Ok(HashMap::new());
        }
        let invalid =
            |message: String| EngineError::Settings(format!("{}: {message}", path.display()));
        let text = std::fs::read_to_string(&path).map_err(|e| invalid(e.to_string()))?;
        let value: serde_json::Value =
            serde_json::from_str(&text).map_err(|e| invalid(format!("invalid JSON: {e}")))?;
        Ok(value
            .as_object()
            .map(|m| {
                m.iter()
                    .filter_map(|(k, v)| v.as_str().map(|s| (k.clone(), s.to_string())))
                    .collect()
            })
            .unwrap_or_default())
    }

    async fn run_epic(
        &self,
        epic_name: &str,
        dept: &str,
        target: Option<&str>,
        kind: RunKind,
        base: Option<PathBuf>,
    ) -> Result<RunOutcome, EngineError> {
        let assets = self.prepare(epic_name, dept)?;
        let build_id = match (&self.options.build, kind) {
            (Some(build), RunKind::Epic | RunKind::Issue) => build.clone(),
            _ => epic_build_id(epic_name),
        };
        let workspace_dir = base
            .unwrap_or_else(|| self.workspace_base())
            .join(epic_name);
        let epic = &assets.epic;
        let run_id = self
            .first_run_id
            .lock()
            .ok()
            .and_then(|mut id| id.take())
            .unwrap_or_else(|| assets.policies.execution_runtime.run_id());

        let existing: HashMap<String, IssueRecord> = self
            .store
            .list_issues(&build_id)
            .await?
            .into_iter()
            .map(|i| (i.id.clone(), i))
            .collect();
        let mut seed = vec![Change::UpsertBuild(BuildRecord::new(
            &build_id, "epic", epic_name, dept,
        ))];
        let reset_all = self.options.reset && target.is_none();
        if reset_all {
            seed.push(Change::DeleteBuildIssues {
                build_id: build_id.clone(),
            });
        }
        for spec in &epic.issues {
            let known = existing.get(&spec.card.id).filter(|_| !reset_all);
            match known {
                None => seed.push(Change::InsertIssue(seed_record(&build_id, spec))),
                Some(stored)
                    if self.options.reset
                        && target == Some(spec.card.id.as_str())
                        && stored.status != Status::Ready =>
                {
                    seed.push(Change::UpdateIssue {
                        build_id: build_id.clone(),
                        id: spec.card.id.clone(),
                        update: IssueUpdate::by("orket")
                            .status(Status::Ready)
                            .retry_count(0u32)
                            .clear_wait_reason(),
                    });
                }
                Some(_) => {}
            }
        }
        let mut run = RunRecord::new(
            &run_id,
            kind,
            target.unwrap_or(epic_name),
            &build_id,
            dept,
            workspace_dir.to_string_lossy(),
        );
        run.params = json!({
            "epic": epic_name,
            "target": target,
            "provider": self.provider.name(),
            "model": self.options.model,
            "concurrency": self.options.concurrency,
        });
        seed.push(Change::CreateRun(run));
        self.store.apply(seed).await?;

        let ctx = self.run_ctx(run_id, build_id, target, assets, &workspace_dir)?;
        self.commit_events(
            &ctx,
            vec![event(&ctx, names::SESSION_START, None, None, json!({
                "epic": epic_name, "target": target, "workspace": workspace_dir, "provider": self.provider.name()
            }))],
        )
        .await?;
        self.drive(&ctx).await
    }

    /// Continues an interrupted run from its last committed turn.
    pub async fn resume(&self, run_id: &str) -> Result<RunOutcome, EngineError> {
        let run = self
            .store
            .get_run(run_id)
            .await?
            .ok_or_else(|| EngineError::NotFound(format!("run {run_id} not found")))?;
        if run.status.is_final() {
            return Err(EngineError::Resume(format!(
                "run {run_id} already ended ({}{}); start a new run instead",
                run.status,
                run.reason
                    .as_deref()
                    .map(|r| format!(": {r}"))
                    .unwrap_or_default()
            )));
        }
        let epic_name = run.params["epic"]
            .as_str()
            .unwrap_or(&run.target)
            .to_string();
        let target = run.params["target"].as_str().map(str::to_string);
        let assets = self.prepare(&epic_name, &run.department)?;
        let turns = self.store.list_turns(run_id).await?;
        let mut per_pair: BTreeMap<(String, String), usize> = BTreeMap::new();
        for t in &turns {
            *per_pair
                .entry((t.turn.issue_id.clone(), t.turn.role.clone()))
                .or_default() += 1;
        }
        for ((issue, role), n) in per_pair {
            self.provider.resume_after(&issue, &role, n);
        }
        let ctx = self.run_ctx(
            run.id.clone(),
            run.build_id.clone(),
            target.as_deref(),
            assets,
            &PathBuf::from(&run.workspace),
        )?;
        let used: i64 = turns
            .iter()
            .map(|t| t.turn.tokens_in + t.turn.tokens_out)
            .sum();
        ctx.tokens.store(used.max(0) as u64, Ordering::SeqCst);
        ctx.seq.store(
            self.store.last_turn_seq(run_id).await?.unwrap_or(0),
            Ordering::SeqCst,
        );
        self.commit_events(
            &ctx,
            vec![event(
                &ctx,
                "session_resumed",
                None,
                None,
                json!({"committed_turns": turns.len()}),
            )],
        )
        .await?;
        self.drive(&ctx).await
    }

    pub(crate) fn run_ctx(
        &self,
        run_id: String,
        build_id: String,
        target: Option<&str>,
        assets: RunAssets,
        workspace_dir: &std::path::Path,
    ) -> Result<RunCtx, EngineError> {
        let references: Vec<PathBuf> = assets
            .epic
            .card
            .references
            .iter()
            .map(|r| self.tree.root().join(r))
            .collect();
        let workspace = Arc::new(Confinement::workspace(workspace_dir, &references).map_err(
            |e| EngineError::Workspace {
                path: workspace_dir.display().to_string(),
                message: e.to_string(),
            },
        )?);
        let log = Arc::new(EventLog::for_workspace(workspace.root()));
        let halt_on_violation = assets
            .org
            .process_rules
            .get("halt_on_violation")
            .and_then(|v| v.as_bool())
            .unwrap_or(false);
        let approval_required = assets
            .org
            .process_rules
            .get("approval_required")
            .and_then(|v| v.as_array())
            .map(|a| {
                a.iter()
                    .filter_map(|v| v.as_str().map(str::to_string))
                    .collect()
            })
            .unwrap_or_default();
        Ok(RunCtx {
            run_id,
            build_id,
            target: target.map(str::to_string),
            assets,
            files: FileTools::new(Arc::clone(&workspace)),
            workspace,
            sink: EventSink::new(self.bus.clone(), Some(log)),
            seq: AtomicI64::new(0),
            tokens: AtomicU64::new(0),
            halt_on_violation,
            approval_required,
        })
    }

    /// The loop: tick until nothing is left to do, a guard trips, or a failure stops the run.
    async fn drive(&self, ctx: &RunCtx) -> Result<RunOutcome, EngineError> {
        let started = std::time::Instant::now();
        let mut turns = 0usize;
        let mut idle_ticks = 0usize;
        let mut ended: Option<(RunStatus, String)> = None;
        for tick in 1..=self.options.max_iterations {
            if self.options.halt.is_halted() {
                ended = Some((RunStatus::Canceled, HALTED_REASON.to_string()));
                break;
            }
            let issues = self.store.list_issues(&ctx.build_id).await?;
            let cards: Vec<PlanCard<'_>> = issues
                .iter()
                .map(|i| PlanCard {
                    id: &i.id,
                    status: i.status,
                    priority: i.priority,
                    depends_on: &i.depends_on,
                })
                .collect();
            let candidates = ctx
                .assets
                .policies
                .planner
                .plan(&cards, ctx.target.as_deref());
            if candidates.is_empty() {
                ended = Some(final_state(&issues, ctx.target.as_deref()));
                break;
            }
            self.commit_events(
                ctx,
                vec![event(
                    ctx,
                    names::ORCHESTRATOR_TICK,
                    None,
                    None,
                    json!({"tick": tick, "candidates": candidates}),
                )],
            )
            .await?;

            let snapshot: Arc<HashMap<String, Status>> =
                Arc::new(issues.iter().map(|i| (i.id.clone(), i.status)).collect());
            let semaphore = Arc::new(Semaphore::new(self.options.concurrency.max(1)));
            let results = futures::future::join_all(candidates.iter().map(|id| {
                let semaphore = Arc::clone(&semaphore);
                let snapshot = Arc::clone(&snapshot);
                async move {
                    let _permit = semaphore.acquire().await;
                    // A halt lets the turns in flight finish but starts no new one.
                    if self.options.halt.is_halted() {
                        return Ok(TurnOutcome::Skipped);
                    }
                    turn::run_turn(self, ctx, id, snapshot).await
                }
            }))
            .await;

            let mut progress = false;
            let mut failure: Option<String> = None;
            for result in results {
                match result? {
                    TurnOutcome::Committed {
                        turn,
                        progress: p,
                        stop_run,
                    } => {
                        turns += usize::from(turn);
                        progress |= p;
                        if let Some(reason) = stop_run {
                            failure.get_or_insert(reason);
                        }
                    }
                    TurnOutcome::Skipped => {}
                }
            }
            if let Some(reason) = failure {
                ended = Some((RunStatus::Failed, reason));
                break;
            }
            if self.options.halt.is_halted() {
                ended = Some((RunStatus::Canceled, HALTED_REASON.to_string()));
                break;
            }
            if let Some(reason) = self.over_budget(ctx, started) {
                ended = Some((RunStatus::BudgetExceeded, reason));
                break;
            }
            idle_ticks = if progress { 0 } else { idle_ticks + 1 };
            if idle_ticks >= self.options.no_progress_limit {
                let issues = self.store.list_issues(&ctx.build_id).await?;
                let (_, stuck) = final_state(&issues, ctx.target.as_deref());
                ended = Some((
                    RunStatus::Stalled,
                    format!("no progress in {idle_ticks} ticks (turns made no tool calls or changed nothing); {stuck}"),
                ));
                break;
            }
        }
        let (status, reason) = ended.unwrap_or((
            RunStatus::Exhausted,
            format!(
                "max_iterations ({}) reached with work left",
                self.options.max_iterations
            ),
        ));
        self.finish(ctx, status, &reason, turns).await
    }

    /// Why the run is over its token or time budget, if it is.
    fn over_budget(&self, ctx: &RunCtx, started: std::time::Instant) -> Option<String> {
        let used = ctx.tokens.load(Ordering::SeqCst);
        if let Some(budget) = self.options.token_budget.filter(|b| used > *b) {
            return Some(format!(
                "token budget of {budget} exceeded ({used} tokens used)"
            ));
        }
        let elapsed = started.elapsed();
        self.options.time_budget.filter(|b| elapsed > *b).map(|b| {
            format!(
                "time budget of {}s exceeded ({}s elapsed)",
                b.as_secs_f64(),
                elapsed.as_secs_f64().round()
            )
        })
    }

    async fn finish(
        &self,
        ctx: &RunCtx,
        status: RunStatus,
        reason: &str,
        turns: usize,
    ) -> Result<RunOutcome, EngineError> {
        if status == RunStatus::Completed {
            crate::deploy::deploy_for_run(self, ctx).await?;
        }
        let issues = self.store.list_issues(&ctx.build_id).await?;
        let mut changes = vec![Change::UpdateRun {
            id: ctx.run_id.clone(),
            update: RunUpdate::finish(status, reason),
        }];
        let summary: Vec<_> = issues
            .iter()
            .map(|i| json!({"id": i.id, "status": i.status}))
            .collect();
        let all_final = !issues.is_empty()
            && issues
                .iter()
                .all(|i| matches!(i.status, Status::Done | Status::Canceled));
        if all_final && status == RunStatus::Completed {
            changes.push(Change::RecordSuccess {
                run_id: ctx.run_id.clone(),
                build_id: ctx.build_id.clone(),
                card: ctx.assets.epic.stem.clone(),
                data: json!({"issues": summary, "turns": turns}),
            });
            changes.push(Change::AppendEvent(event(
                ctx,
                names::SUCCESS_RECORDED,
                None,
                None,
                json!({"epic": ctx.assets.epic.stem}),
            )));
            changes.push(Change::AppendEvent(event(
                ctx,
                names::ORCHESTRATOR_EPIC_COMPLETE,
                None,
                None,
                json!({"epic": ctx.assets.epic.stem}),
            )));
        }
        changes.push(Change::SaveSnapshot {
            run_id: ctx.run_id.clone(),
            data: json!({"status": status, "reason": reason, "issues": summary}),
        });
        changes.push(Change::AppendEvent(event(
            ctx,
            names::SESSION_END,
            None,
            None,
            json!({"status": status, "reason": reason, "turns": turns}),
        )));
        self.commit(ctx, changes).await?;
        Ok(RunOutcome {
            run_id: ctx.run_id.clone(),
            status,
            reason: Some(reason.to_string()),
            turns,
            build_id: ctx.build_id.clone(),
            workspace: ctx.workspace.root().to_path_buf(),
        })
    }

    /// Applies a batch atomically, then delivers its events to the log and the bus.
    pub(crate) async fn commit(
        &self,
        ctx: &RunCtx,
        changes: Vec<Change>,
    ) -> Result<Vec<Applied>, StoreError> {
        let events: Vec<Option<NewEvent>> = changes
            .iter()
            .map(|c| match c {
                Change::AppendEvent(e) => Some(e.clone()),
                _ => None,
            })
            .collect();
        let applied = self.store.apply(changes).await?;
        let records: Vec<EventRecord> = events
            .into_iter()
            .zip(applied.iter())
            .filter_map(|(e, a)| Some((e?, a.id()?)))
            .map(|(e, id)| EventRecord {
                id,
                run_id: e.run_id,
                timestamp: e.timestamp.unwrap_or_default(),
                role: e.role,
                event: e.event,
                issue_id: e.issue_id,
                data: e.data,
            })
            .collect();
        if let Err(err) = ctx.sink.deliver(records) {
            tracing::warn!(
                "cannot write {}: {err}",
                ctx.workspace.root().join("orket.log").display()
            );
        }
        Ok(applied)
    }

    pub(crate) async fn commit_events(
        &self,
        ctx: &RunCtx,
        events: Vec<NewEvent>,
    ) -> Result<(), StoreError> {
        self.commit(ctx, events.into_iter().map(Change::AppendEvent).collect())
            .await?;
        Ok(())
    }
}

/// A stamped event of the run.
pub(crate) fn event(
    ctx: &RunCtx,
    name: &str,
    role: Option<&str>,
    issue_id: Option<&str>,
    data: serde_json::Value,
) -> NewEvent {
    NewEvent {
        run_id: Some(ctx.run_id.clone()),
        role: role.map(str::to_string),
        event: name.to_string(),
        issue_id: issue_id.map(str::to_string),
        data,
        timestamp: Some(orket_store::now_timestamp()),
    }
}

/// The store row an issue of the epic file is seeded as (its file status is kept).
pub(crate) fn seed_record(build_id: &str, spec: &orket_core::assets::IssueSpec) -> IssueRecord {
    let mut r = IssueRecord::new(build_id, &spec.card.id, &spec.card.name, &spec.seat);
    r.description = spec.card.description.clone();
    r.issue_type = spec.card.card_type.clone();
    r.status = spec.card.status;
    r.priority = spec.card.priority;
    r.assignee = spec.assignee.clone();
    r.sprint = spec.sprint.clone();
    r.note = spec.card.note.clone();
    r.requirements = spec.requirements.clone();
    r.wait_reason = spec.card.wait_reason;
    r.depends_on = spec.depends_on.clone();
    r.retry_count = spec.retry_count;
    r.max_retries = spec.max_retries;
    r.verification = spec
        .verification
        .as_ref()
        .and_then(|v| serde_json::to_value(v).ok())
        .unwrap_or(serde_json::Value::Null);
    r.metrics = serde_json::Value::Object(spec.metrics.clone());
    r.parent_id = spec.card.parent_id.clone();
    r.owner_department = spec.card.owner_department.clone();
    r.labels = spec.card.labels.clone();
    r.params = serde_json::Value::Object(spec.card.params.clone());
    r.references = spec.card.references.clone();
    r
}

/// `completed` when every issue (or the target) is final, else `stalled` with why each open
/// issue is stuck.
fn final_state(issues: &[IssueRecord], target: Option<&str>) -> (RunStatus, String) {
    let status: HashMap<&str, Status> = issues.iter().map(|i| (i.id.as_str(), i.status)).collect();
    let relevant: Vec<&IssueRecord> = issues
        .iter()
        .filter(|i| target.is_none_or(|t| t == i.id))
        .collect();
    let open: Vec<&&IssueRecord> = relevant
        .iter()
        .filter(|i| !i.status.is_terminal())
        .collect();
    if open.is_empty() {
        return (
            RunStatus::Completed,
            format!("all {} issues are done or canceled", relevant.len()),
        );
    }
    let reasons: Vec<String> = open
        .iter()
        .map(|i| {
            let why = match i.status {
                Status::Ready => {
                    let waiting: Vec<String> = i
                        .depends_on
                        .iter()
                        .filter(|d| status.get(d.as_str()) != Some(&Status::Done))
                        .map(|d| match status.get(d.as_str()) {
                            Some(s) => format!("{d} ({s})"),
                            None => format!("{d} (unknown)"),
                        })
                        .collect();
                    format!("waiting on {}", waiting.join(", "))
                }
                Status::Blocked => format!(
                    "blocked ({})",
                    i.wait_reason
                        .map(|w| w.to_string())
                        .unwrap_or_else(|| "no reason".into())
                ),
                Status::WaitingForDeveloper => "waiting for a person".to_string(),
                other => format!("left {other}"),
            };
            format!("{}: {why}", i.id)
        })
        .collect();
    (RunStatus::Stalled, format!("stuck: {}", reasons.join("; ")))
}
