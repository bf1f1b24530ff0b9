//! The engine: the project's assets, its store and event bus, the policies, and the runs it
//! supervises. [`Engine::spawn`] starts a run (an epic, a rock's epics in order, or an issue
//! with its epic) as a task and hands back its [`RunHandle`] at once; `orket run` and
//! `orket serve` both start runs this way. [`Engine::halt`] stops a run started by any process
//! at its next turn boundary.

use crate::assets::{self, RunAssets, Target};
use crate::drive::{self, EpicRun};
use crate::error::EngineError;
use crate::lease;
use crate::org_loop::{self, LoopControl, LoopHandle, LoopOptions, LoopSlot};
use crate::policy::{DeployMoment, ExecutionRuntime, PolicyRegistry};
use crate::run::{Halt, RunOptions, RunOutcome};
use crate::supervise::{self, Claim, RunHandle, Runs, Spawned};
use orket_core::assets::{AssetTree, Epic, Rock};
use orket_core::ids::{epic_build_id, rock_build_id};
use orket_core::time::Clock;
use orket_core::{RunKind, RunStatus, Status};
use orket_sandbox::SandboxManager;
use orket_store::events::{EventBus, EventSink, Recorder};
use orket_store::{BuildRecord, Store};
use std::path::PathBuf;
use std::sync::Arc;

/// What [`Engine::deploy_epic`] did after a merge.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum MergeDeploy {
    /// The epic asks for no sandbox.
    NotAsked,
    /// The `sandbox_policy` deploys this epic at other moments.
    NotOnMerge,
    /// The sandbox runs, at these URLs (`api http://...`).
    Running(Vec<String>),
}

/// The engine of one project.
#[derive(Clone)]
pub struct Engine {
    tree: AssetTree,
    recorder: Recorder,
    registry: Arc<PolicyRegistry>,
    runs: Arc<Runs>,
    /// The organization loop running here (or the last one that did).
    org_loop: Arc<LoopSlot>,
    clock: Clock,
}

impl Engine {
    /// An engine over the project at `tree`, recording to `store` and publishing on `bus`.
    pub fn new(tree: AssetTree, store: Arc<dyn Store>, bus: EventBus) -> Self {
        Engine {
            tree,
            recorder: Recorder::new(store, EventSink::new(bus, None)),
            registry: Arc::new(PolicyRegistry::default()),
            runs: Arc::new(Runs::default()),
            org_loop: Arc::new(LoopSlot::default()),
            clock: Clock::System,
        }
    }

    /// The same engine reading the time of day-counting rules (a rock's bug-fix phase) from
    /// `clock`.
    pub fn with_clock(mut self, clock: Clock) -> Self {
        self.clock = clock;
        self
    }

    /// The clock of day-counting rules.
    pub fn clock(&self) -> &Clock {
        &self.clock
    }

    /// Brings every rock's bug-fix phase up to date by the engine's clock (see
    /// [`crate::bugfix::advance`]); an organization loop calls it on each pick.
    pub async fn advance_bug_fix_phases(&self) -> crate::bugfix::AdvanceReport {
        crate::bugfix::advance(&self.recorder, &self.tree, &self.clock).await
    }

    /// The same engine with `registry` (an embedding program's own policies registered).
    pub fn with_policies(mut self, registry: PolicyRegistry) -> Self {
        self.registry = Arc::new(registry);
        self
    }

    /// The store.
    pub fn store(&self) -> &Arc<dyn Store> {
        self.recorder.store()
    }

    /// The event bus.
    pub fn bus(&self) -> &EventBus {
        self.recorder.sink().bus()
    }

    /// The asset tree.
    pub fn tree(&self) -> &AssetTree {
        &self.tree
    }

    /// The policy registry.
    pub fn registry(&self) -> &PolicyRegistry {
        &self.registry
    }

    /// The recorder of the engine: commits to its store, then publishes on its bus.
    pub fn recorder(&self) -> &Recorder {
        &self.recorder
    }

    /// The sandboxes of this engine's store, their files kept in `<root>/.orket/sandboxes`.
    pub fn sandboxes(&self) -> SandboxManager {
        crate::deploy::sandboxes(self.store(), self.tree.root())
    }

    /// What `name` is in department `dept`: an epic, a rock, or an issue of an epic (looked
    /// up in that order, as [`Engine::spawn`] does); `None` when it is none of them.
    pub fn resolve(&self, name: &str, dept: &str) -> Option<Target> {
        assets::resolve(&self.tree, name, dept)
    }

    /// Whether run `id` executes in this process.
    pub fn is_active(&self, id: &str) -> bool {
        self.runs.halt_of(id).is_some()
    }

    /// How many runs execute in this process.
    pub fn active_runs(&self) -> usize {
        self.runs.count()
    }

    /// Asks every run executing in this process, and the loop, to stop at the next turn
    /// boundary (a server shutting down); returns how many runs were asked.
    pub fn halt_all(&self) -> usize {
        if let Some(control) = self.org_loop.current().filter(LoopControl::is_running) {
            control.raise();
        }
        self.runs.halt_all()
    }

    /// Starts the organization loop (see [`org_loop`]) as a task: refused while a loop runs in
    /// this process (`LoopRunning`) or in another live one (`LoopHeld`, naming it).
    pub async fn start_loop(&self, options: LoopOptions) -> Result<LoopHandle, EngineError> {
        org_loop::start(self, &self.org_loop, options).await
    }

    /// The loop running in this process, or the last one that ran here.
    pub fn current_loop(&self) -> Option<LoopControl> {
        self.org_loop.current()
    }

    /// What a run of `name` (an epic, a rock, or an issue id) is and the builds it works on.
    fn plan(
        &self,
        name: &str,
        options: &RunOptions,
    ) -> Result<(Target, RunKind, Vec<String>), EngineError> {
        if options.build.as_deref() == Some(orket_core::ids::LOOP_LEASE) {
            return Err(EngineError::Settings(format!(
                "build \"{}\" is reserved for the organization loop's lease: name another build",
                orket_core::ids::LOOP_LEASE
            )));
        }
        let dept = &options.department;
        let target = self
            .resolve(name, dept)
            .ok_or_else(|| assets::not_found(&self.tree, name, dept))?;
        let (kind, builds) = match &target {
            Target::Epic => (RunKind::Epic, vec![self.epic_build(name, options)]),
            Target::Issue { epic } => (RunKind::Issue, vec![self.epic_build(epic, options)]),
            Target::Rock => {
                let rock = self.tree.load_rock(name, dept)?;
                let mut builds = vec![rock_build_id(&rock.stem)];
                builds.extend(rock.epics.iter().map(|e| epic_build_id(&e.epic)));
                (RunKind::Rock, builds)
            }
        };
        Ok((target, kind, builds))
    }

    /// [`Engine::spawn`], refused at once (`EngineError::Held`) when another process is
    /// running one of the run's builds. (The run takes each build's lease as it starts its
    /// epic, atomically; this check only answers early.)
    pub async fn start(&self, name: &str, options: RunOptions) -> Result<RunHandle, EngineError> {
        let plan = self.plan(name, &options)?;
        if let Some(lease) = lease::held_elsewhere(self.store().as_ref(), &plan.2).await? {
            return Err(EngineError::Held(Box::new(lease)));
        }
        self.spawn_planned(name, options, plan)
    }

    /// [`Engine::start`] for issue `issue` of epic `epic` (in `options.department`), the epic
    /// given rather than looked up: the organization loop's card, whose issue id another epic
    /// may share.
    pub async fn start_issue(
        &self,
        epic: &str,
        issue: &str,
        options: RunOptions,
    ) -> Result<RunHandle, EngineError> {
        let target = Target::Issue {
            epic: epic.to_string(),
        };
        let builds = vec![self.epic_build(epic, &options)];
        if let Some(lease) = lease::held_elsewhere(self.store().as_ref(), &builds).await? {
            return Err(EngineError::Held(Box::new(lease)));
        }
        self.spawn_planned(issue, options, (target, RunKind::Issue, builds))
    }

    /// Starts a run of `name` (an epic, a rock, or an issue id) as a task. Refused at once
    /// when the name is unknown, or a run of this process works on one of its builds; a
    /// build another process runs refuses the run as it starts (see [`Engine::start`]).
    pub fn spawn(&self, name: &str, options: RunOptions) -> Result<RunHandle, EngineError> {
        let plan = self.plan(name, &options)?;
        self.spawn_planned(name, options, plan)
    }

    /// [`Engine::spawn`] with what [`Engine::plan`] found.
    fn spawn_planned(
        &self,
        name: &str,
        options: RunOptions,
        (target, kind, builds): (Target, RunKind, Vec<String>),
    ) -> Result<RunHandle, EngineError> {
        let dept = options.department.clone();
        let id = match &options.run_id {
            Some(id) => id.clone(),
            None => self.runtime()?.run_id(),
        };
        let halt = Halt::new();
        let claim = self.runs.claim(&id, halt.clone(), builds.clone())?;
        let what = Spawned {
            target: name.to_string(),
            department: dept,
            kind,
            builds,
        };
        let (engine, name) = (self.clone(), name.to_string());
        let options = RunOptions {
            run_id: Some(id.clone()),
            ..options
        };
        let run_halt = halt.clone();
        Ok(supervise::spawn(
            self.recorder.clone(),
            id,
            halt,
            claim,
            what,
            move |claim| async move {
                engine
                    .execute(&name, target, options, run_halt, &claim)
                    .await
            },
        ))
    }

    /// Runs `name` to its end (a spawned run, joined).
    pub async fn run(
        &self,
        name: &str,
        options: RunOptions,
    ) -> Result<Vec<RunOutcome>, EngineError> {
        self.spawn(name, options)?.join().await
    }

    /// Continues an interrupted run (a killed process) from its last committed turn, as a
    /// task, with the concurrency (and, unless `options` names one, the model) it was started
    /// with. Refused (`EngineError::Held`) while another live process runs its build.
    pub async fn spawn_resume(
        &self,
        run_id: &str,
        mut options: RunOptions,
    ) -> Result<RunHandle, EngineError> {
        let run = self
            .store()
            .get_run(run_id)
            .await?
            .ok_or_else(|| EngineError::NotFound(format!("run {run_id} not found")))?;
        if run.kind == RunKind::Loop {
            return Err(EngineError::Resume(format!(
                "run {run_id} is an organization loop, not a run to resume: start `orket loop` \
                 (it ends a loop whose process is gone, then resumes the runs it left)"
            )));
        }
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
        // The run goes on as it was started: its concurrency, and its model unless another is
        // asked for now.
        if let Some(n) = run.params["concurrency"].as_u64().filter(|n| *n > 0) {
            options.concurrency = n as usize;
        }
        if options.model.is_none() {
            options.model = run.params["model"].as_str().map(str::to_string);
        }
        let builds = vec![run.build_id.clone()];
        if let Some(lease) = lease::held_elsewhere(self.store().as_ref(), &builds).await? {
            return Err(EngineError::Held(Box::new(lease)));
        }
        let halt = Halt::new();
        let claim = self.runs.claim(run_id, halt.clone(), builds)?;
        let what = Spawned {
            target: run.target.clone(),
            department: run.department.clone(),
            kind: run.kind,
            builds: vec![run.build_id.clone()],
        };
        let engine = self.clone();
        let run_halt = halt.clone();
        Ok(supervise::spawn(
            self.recorder.clone(),
            run_id.to_string(),
            halt,
            claim,
            what,
            move |_claim| async move {
                let epic = run.params["epic"]
                    .as_str()
                    .unwrap_or(&run.target)
                    .to_string();
                let assets =
                    RunAssets::load(&engine.tree, &engine.registry, &epic, &run.department)?;
                let ctx = drive::resume(
                    &engine.recorder,
                    engine.tree.root(),
                    run,
                    assets,
                    options,
                    run_halt,
                )
                .await?;
                Ok(vec![drive::drive(&ctx).await?])
            },
        ))
    }

    /// Continues an interrupted run to its end.
    pub async fn resume(
        &self,
        run_id: &str,
        options: RunOptions,
    ) -> Result<RunOutcome, EngineError> {
        let mut outcomes = self.spawn_resume(run_id, options).await?.join().await?;
        outcomes
            .pop()
            .ok_or_else(|| EngineError::Resume(format!("run {run_id} gave no outcome")))
    }

    /// Asks run `run_id` to halt at its next turn boundary, whichever process executes it.
    pub async fn halt(&self, run_id: &str) -> Result<(), EngineError> {
        let here = self.runs.halt_of(run_id);
        supervise::halt_run(&self.recorder, run_id, here.as_ref()).await
    }

    /// After a merge: deploys `epic`'s workspace (`<root>/workspace/<epic>`) to a sandbox when
    /// the epic (or its environment) asks for one and the `sandbox_policy` deploys on merges;
    /// the reason when it failed (recorded on the sandbox with its event as well).
    pub async fn deploy_epic(&self, epic: &Epic) -> Result<MergeDeploy, String> {
        let org = self.tree.organization().map_err(|e| e.to_string())?;
        let (policies, _) = self.registry.resolve(&org, &|k| std::env::var(k).ok());
        let env = self
            .tree
            .load_environment(&epic.environment, &epic.department)
            .map_err(|e| e.to_string())?;
        let epic_params = serde_json::Value::Object(epic.card.params.clone());
        let env_params = serde_json::Value::Object(env.params.clone());
        let stack = match orket_sandbox::requested_stack(&epic_params, &env_params) {
            None => return Ok(MergeDeploy::NotAsked),
            Some(Err(reason)) => return Err(format!("epic \"{}\": {reason}", epic.stem)),
            Some(Ok(_))
                if !policies
                    .sandbox_policy
                    .deploys(DeployMoment::PullRequestMerged, epic) =>
            {
                return Ok(MergeDeploy::NotOnMerge)
            }
            Some(Ok(stack)) => stack,
        };
        let request = orket_sandbox::DeployRequest {
            epic: epic.stem.clone(),
            stack,
            workspace: self.tree.root().join("workspace").join(&epic.stem),
            run_id: None,
            build_id: Some(epic_build_id(&epic.stem)),
        };
        let manager = self.sandboxes().with_sink(self.recorder.sink().clone());
        let record = manager.deploy(&request).await.map_err(|e| e.to_string())?;
        if record.status != orket_store::SandboxStatus::Running {
            return Err(record
                .reason
                .unwrap_or_else(|| format!("the sandbox ended {}", record.status)));
        }
        let info = manager.info(&record.id).await.map_err(|e| e.to_string())?;
        let urls = info
            .urls
            .as_object()
            .map(|m| {
                m.iter()
                    .map(|(k, v)| format!("{k} {}", v.as_str().unwrap_or_default()))
                    .collect()
            })
            .unwrap_or_default();
        Ok(MergeDeploy::Running(urls))
    }

    /// The build of an epic run: `--build` when given, else `build-<epic>`.
    fn epic_build(&self, epic: &str, options: &RunOptions) -> String {
        options.build.clone().unwrap_or_else(|| epic_build_id(epic))
    }

    /// The id maker of the project's policies.
    pub(crate) fn runtime(&self) -> Result<Arc<dyn ExecutionRuntime>, EngineError> {
        let org = self.tree.organization()?;
        let (policies, _) = self.registry.resolve(&org, &|k| std::env::var(k).ok());
        Ok(policies.execution_runtime)
    }

    /// The body of a spawned run.
    async fn execute(
        &self,
        name: &str,
        target: Target,
        options: RunOptions,
        halt: Halt,
        claim: &Claim,
    ) -> Result<Vec<RunOutcome>, EngineError> {
        let dept = options.department.clone();
        let base = options
            .workspace_base
            .clone()
            .unwrap_or_else(|| self.tree.root().join("workspace"));
        let first = options.run_id.clone().unwrap_or_default();
        match target {
            Target::Epic => {
                let run = EpicRun {
                    epic: name,
                    department: &dept,
                    target: None,
                    kind: RunKind::Epic,
                    base,
                    run_id: first,
                };
                Ok(vec![self.run_epic(run, options, halt).await?])
            }
            Target::Issue { epic } => {
                let run = EpicRun {
                    epic: &epic,
                    department: &dept,
                    target: Some(name),
                    kind: RunKind::Issue,
                    base,
                    run_id: first,
                };
                Ok(vec![self.run_epic(run, options, halt).await?])
            }
            Target::Rock => {
                let rock = self.tree.load_rock(name, &dept)?;
                self.run_rock(&rock, base.join(&rock.stem), first, options, halt, claim)
                    .await
            }
        }
    }

    /// A rock's epics in order, each in `<base>/<epic>` with its own build and run; the rock's
    /// build row follows its epics. Stops at the first epic run that does not complete.
    async fn run_rock(
        &self,
        rock: &Rock,
        base: PathBuf,
        first: String,
        options: RunOptions,
        halt: Halt,
        claim: &Claim,
    ) -> Result<Vec<RunOutcome>, EngineError> {
        let rock_build = rock_build_id(&rock.stem);
        let mut outcomes = Vec::new();
        let mut run_id = Some(first);
        for entry in &rock.epics {
            let id = match run_id.take() {
                Some(id) => id,
                None => self.runtime()?.run_id(),
            };
            claim.started(&id);
            let run = EpicRun {
                epic: &entry.epic,
                department: &entry.department,
                target: None,
                kind: RunKind::Rock,
                base: base.clone(),
                run_id: id,
            };
            let outcome = self.run_epic(run, options.clone(), halt.clone()).await?;
            let stop = outcome.status != RunStatus::Completed;
            outcomes.push(outcome);
            self.update_rock_build(rock, &rock_build).await?;
            if stop {
                break;
            }
        }
        self.rock_run_ended(rock).await;
        Ok(outcomes)
    }

    /// At the end of a rock's run, its bug-fix phase brought up to date (started when its
    /// epics are now all done). The run's outcome stands whatever happens here: a failure is
    /// logged, and `orket rock status` tries again.
    async fn rock_run_ended(&self, rock: &Rock) {
        let advanced = crate::bugfix::advance_rock(
            &self.recorder,
            &self.tree,
            &rock.stem,
            &rock.department,
            &self.clock,
        )
        .await;
        if let Err(err) = advanced {
            tracing::warn!("rock {}: {err}", rock.stem);
        }
    }

    async fn run_epic(
        &self,
        run: EpicRun<'_>,
        options: RunOptions,
        halt: Halt,
    ) -> Result<RunOutcome, EngineError> {
        let assets = RunAssets::load(&self.tree, &self.registry, run.epic, run.department)?;
        let ctx =
            drive::start(&self.recorder, self.tree.root(), assets, run, options, halt).await?;
        drive::drive(&ctx).await
    }

    /// Keeps the rock's build row current: its status derived from its epics' builds.
    async fn update_rock_build(&self, rock: &Rock, id: &str) -> Result<(), EngineError> {
        let store = self.store();
        let mut statuses = Vec::new();
        for entry in &rock.epics {
            let status = store
                .get_build(&epic_build_id(&entry.epic))
                .await?
                .map(|b| b.status)
                .unwrap_or(Status::Ready);
            statuses.push(status);
        }
        let mut build = BuildRecord::new(id, "rock", &rock.stem, &rock.department);
        if let Some(existing) = store.get_build(id).await? {
            build.created_at = existing.created_at;
        }
        build.status = orket_core::lifecycle::derive_rock_status(&statuses);
        store.upsert_build(build).await?;
        Ok(())
    }
}
