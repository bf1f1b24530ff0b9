//! The organization loop (`orket loop`, and `orket serve`'s `POST /v1/loop/start`): across the
//! departments, pick the ready issue with the best critical-path score ([`pick`]), run its card
//! (an issue run in its epic's build), wait for it to end, pick again; sleep when nothing is
//! ready; every decision a `loop_*` event.
//!
//! A loop is a session row of kind `loop` (its state in the row's params, its halt request, its
//! events), and holds the project's reserved lease [`LOOP_LEASE`] as a run holds its build's: a
//! second loop, in this process or another, is refused naming the holder, and a loop whose
//! process is gone is taken over. Before it picks anything a loop resumes the runs a killed
//! process left `running` (their build's lease names them and their process is gone). A halt —
//! the handle's, or one asked through the store on the loop's row (`orket halt --loop`) —
//! halts the card in flight (its turns in flight are committed) and stops the loop `canceled`.
//! An issue whose run ended without finishing it is set aside until it changes, so the loop
//! cannot spin on it.

mod pick;

pub use pick::Pick;

use crate::engine::Engine;
use crate::error::EngineError;
use crate::lease::{holder, holder_is_gone, renewal, Heartbeat, STALE_AFTER};
use crate::run::{Halt, RunOptions, RunOutcome, HALTED_REASON};
use crate::supervise::RunHandle;
use orket_core::ids::LOOP_LEASE;
use orket_core::{Event, RunKind, RunStatus};
use orket_store::events::Recorder;
use orket_store::{Change, LeaseRequest, NewEvent, RunRecord, RunUpdate, StoreError};
use serde::{Deserialize, Serialize};
use std::collections::HashMap;
use std::sync::{Arc, Mutex};
use std::time::{Duration, Instant};
use tokio::task::JoinHandle;

/// How often a loop looks for a halt asked through the store while a card runs or it sleeps.
const HALT_POLL: Duration = Duration::from_millis(500);

/// How many of the most recent runs a starting loop looks through for interrupted ones.
const RECENT_RUNS: i64 = 10_000;

/// How a loop works.
#[derive(Clone)]
pub struct LoopOptions {
    /// Pick only this department's epics (none: every department's).
    pub department: Option<String>,
    /// Stop once nothing is ready instead of sleeping.
    pub once: bool,
    /// How long to sleep between looks when nothing is ready.
    pub idle_sleep: Duration,
    /// Tokens the loop's cards may use in all.
    pub token_budget: Option<u64>,
    /// Wall-clock time the loop may run.
    pub time_budget: Option<Duration>,
    /// The options of each card's run: provider, model, concurrency, and the card's own token
    /// and time budgets (`token_budget`, `time_budget`). Department, run id, build and reset
    /// are the loop's to set.
    pub card: RunOptions,
}

impl LoopOptions {
    /// Every department, forever, 30 s of sleep when idle, no budgets; cards run with `card`.
    pub fn new(card: RunOptions) -> Self {
        LoopOptions {
            department: None,
            once: false,
            idle_sleep: Duration::from_secs(30),
            token_budget: None,
            time_budget: None,
            card,
        }
    }
}

/// The card a loop is running.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct LoopCard {
    /// Its run.
    pub run: String,
    /// The issue (for a resumed run, the run's target).
    pub issue: String,
    /// Its epic.
    pub epic: String,
    /// Its department.
    pub department: String,
    /// Its critical-path score when picked (none for a resumed run).
    pub score: Option<f64>,
    /// How many issues waited on it when picked (none for a resumed run).
    pub downstream: Option<usize>,
}

/// A loop's state, kept in its session row's params (so any process can show it).
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct LoopState {
    /// The loop's id (its session row).
    pub id: String,
    /// Whether it still runs.
    pub running: bool,
    /// When it started.
    pub since: String,
    /// The department it picks from (none: every department).
    pub department: Option<String>,
    /// Whether it stops once nothing is ready.
    pub once: bool,
    /// Seconds it sleeps between looks when nothing is ready.
    pub idle_sleep_secs: u64,
    /// The card it is running now.
    pub current: Option<LoopCard>,
    /// Cards (runs) it has run to their end.
    pub cards: usize,
    /// Tokens their turns used.
    pub tokens: u64,
    /// Its latest decision, in words.
    pub last_decision: Option<String>,
    /// How it ended (once it has).
    pub status: Option<RunStatus>,
    /// Why.
    pub reason: Option<String>,
}

/// How a loop ended.
#[derive(Debug, Clone, PartialEq)]
pub struct LoopOutcome {
    /// The loop's id.
    pub id: String,
    /// `completed` (nothing left ready with `once`), `canceled` (halted), `budget_exceeded`
    /// or `failed`.
    pub status: RunStatus,
    /// Why.
    pub reason: String,
    /// Cards it ran.
    pub cards: usize,
    /// Tokens they used.
    pub tokens: u64,
}

/// What stops a loop and shows its state (a clone of its handle's).
#[derive(Clone)]
pub struct LoopControl {
    id: String,
    halt: Halt,
    recorder: Recorder,
    state: Arc<Mutex<LoopState>>,
}

impl LoopControl {
    /// The loop's id.
    pub fn id(&self) -> &str {
        &self.id
    }

    /// Its state now.
    pub fn state(&self) -> LoopState {
        self.state.lock().unwrap_or_else(|e| e.into_inner()).clone()
    }

    /// Whether it still runs.
    pub fn is_running(&self) -> bool {
        self.state().running
    }

    /// Asks the loop to stop: the card in flight is halted at its next turn boundary (its
    /// turns in flight are committed), then the loop ends `canceled`. Recorded in the store.
    pub async fn halt(&self) -> Result<(), EngineError> {
        crate::supervise::halt_run(&self.recorder, &self.id, Some(&self.halt)).await
    }

    /// Raises the loop's halt in this process only (nothing recorded): a server shutting down.
    pub fn raise(&self) {
        self.halt.raise();
    }

    fn update(&self, change: impl FnOnce(&mut LoopState)) -> LoopState {
        let mut state = self.state.lock().unwrap_or_else(|e| e.into_inner());
        change(&mut state);
        state.clone()
    }
}

/// A started loop: its control and its end.
pub struct LoopHandle {
    control: LoopControl,
    task: JoinHandle<Result<LoopOutcome, EngineError>>,
}

impl LoopHandle {
    /// What stops it and shows its state.
    pub fn control(&self) -> &LoopControl {
        &self.control
    }

    /// Waits for the loop to end.
    pub async fn join(self) -> Result<LoopOutcome, EngineError> {
        match self.task.await {
            Ok(result) => result,
            Err(e) => Err(EngineError::Panicked(e.to_string())),
        }
    }
}

/// The loop of an engine (one at a time), and the last one after it ended.
#[derive(Default)]
pub(crate) struct LoopSlot(Mutex<Option<LoopControl>>);

impl LoopSlot {
    fn lock(&self) -> std::sync::MutexGuard<'_, Option<LoopControl>> {
        self.0.lock().unwrap_or_else(|e| e.into_inner())
    }

    /// The loop running here, or the last one that did.
    pub fn current(&self) -> Option<LoopControl> {
        self.lock().clone()
    }

    /// Takes the slot for `control`; refused while another loop runs here.
    fn reserve(&self, control: &LoopControl) -> Result<(), EngineError> {
        let mut slot = self.lock();
        if let Some(other) = slot.as_ref().filter(|c| c.is_running()) {
            return Err(EngineError::LoopRunning(other.id.clone()));
        }
        *slot = Some(control.clone());
        Ok(())
    }
}

/// The words of a loop event (`picked DEMO-4 of hello_cli: score 5.0, 3 downstream`); `None`
/// for any other event.
pub fn decision(event: &Event) -> Option<String> {
    Some(match event {
        Event::LoopStarted {
            department,
            once,
            idle_sleep_secs,
            ..
        } => format!(
            "loop started over {}{}",
            department
                .as_deref()
                .map_or("every department".to_string(), |d| format!(
                    "department {d}"
                )),
            if *once {
                ", until nothing is ready".to_string()
            } else {
                format!(", sleeping {idle_sleep_secs} s when nothing is ready")
            }
        ),
        Event::LoopResumed { run, target } => {
            format!("resuming run {run} ({target}), left running by a process that is gone")
        }
        Event::LoopPicked {
            issue,
            epic,
            score,
            downstream,
            ..
        } => format!("picked {issue} of {epic}: score {score:.1}, {downstream} downstream"),
        Event::LoopCardEnded {
            issue,
            run,
            status,
            tokens,
        } => format!("run {run} of {issue} ended {status} ({tokens} tokens)"),
        Event::LoopSetAside {
            issue,
            epic,
            reason,
            ..
        } => format!("{issue} of {epic} set aside until it changes: {reason}"),
        Event::LoopIdle {
            sleep_secs,
            set_aside,
        } => format!(
            "nothing is ready: sleeping {sleep_secs} s between looks{}",
            match set_aside {
                0 => String::new(),
                n => format!(" ({n} set aside until they change)"),
            }
        ),
        Event::LoopBudgetExceeded { reason, .. } => reason.clone(),
        Event::LoopStopped {
            status,
            reason,
            cards,
            tokens,
        } => format!("loop stopped {status}: {reason} ({cards} cards, {tokens} tokens)"),
        _ => return None,
    })
}

/// Starts a loop on `engine` as a task: refused while another loop runs in this process
/// (`LoopRunning`) or another live process holds the project's loop lease (`LoopHeld`), and for
/// a department that does not exist.
pub(crate) async fn start(
    engine: &Engine,
    slot: &LoopSlot,
    options: LoopOptions,
) -> Result<LoopHandle, EngineError> {
    if let Some(d) = &options.department {
        if !engine.tree().departments().contains(d) {
            return Err(EngineError::NotFound(format!(
                "department \"{d}\" not found: model/{d}/ does not exist"
            )));
        }
    }
    let id = engine.runtime()?.run_id();
    let state = LoopState {
        id: id.clone(),
        running: true,
        since: orket_store::now_timestamp(),
        department: options.department.clone(),
        once: options.once,
        idle_sleep_secs: options.idle_sleep.as_secs(),
        current: None,
        cards: 0,
        tokens: 0,
        last_decision: None,
        status: None,
        reason: None,
    };
    let control = LoopControl {
        id,
        halt: Halt::new(),
        recorder: engine.recorder().clone(),
        state: Arc::new(Mutex::new(state)),
    };
    slot.reserve(&control)?;
    if let Err(e) = begin(engine, &control, &options).await {
        control.update(|s| s.running = false);
        return Err(e);
    }
    let heartbeat = Heartbeat::start(
        Arc::clone(engine.store()),
        LOOP_LEASE.to_string(),
        control.halt.clone(),
    );
    let (engine, looper_control) = (engine.clone(), control.clone());
    let task = tokio::spawn(async move {
        let mut looper = Looper {
            engine: &engine,
            control: &looper_control,
            options: &options,
            started: Instant::now(),
            set_aside: HashMap::new(),
            unsettled: None,
        };
        let (status, reason) = match looper.run().await {
            Ok(end) => end,
            Err(e) => {
                tracing::error!("loop {} failed: {e}", looper_control.id);
                (RunStatus::Failed, e.to_string())
            }
        };
        drop(heartbeat);
        looper.finish(status, reason).await
    });
    Ok(LoopHandle { control, task })
}

/// Takes the project's loop lease with the batch that creates the loop's row and records
/// `loop_started`; a lease whose process is gone is taken over, one held by a live process
/// refuses the loop naming it.
async fn begin(
    engine: &Engine,
    control: &LoopControl,
    options: &LoopOptions,
) -> Result<(), EngineError> {
    let state = control.state();
    let mut record = RunRecord::new(
        &control.id,
        RunKind::Loop,
        options.department.as_deref().unwrap_or("all departments"),
        LOOP_LEASE,
        options.department.as_deref().unwrap_or("*"),
        engine.tree().root().join("workspace").to_string_lossy(),
    );
    record.params = serde_json::to_value(&state).unwrap_or_default();
    let started = Event::LoopStarted {
        department: options.department.clone(),
        once: options.once,
        idle_sleep_secs: options.idle_sleep.as_secs(),
        token_budget: options.token_budget,
        time_budget_secs: options.time_budget.map(|t| t.as_secs()),
        card_token_budget: options.card.token_budget,
        card_time_budget_secs: options.card.time_budget.map(|t| t.as_secs()),
    };
    control.update(|s| s.last_decision = decision(&started));
    let take = |replacing: Option<String>| {
        Change::TakeLease(LeaseRequest {
            build_id: LOOP_LEASE.to_string(),
            run_id: control.id.clone(),
            holder: holder().clone(),
            stale_after: STALE_AFTER,
            replacing,
        })
    };
    let rest = vec![
        Change::CreateRun(record),
        Change::AppendEvent(NewEvent::new(Some(&control.id), started)),
    ];
    let recorder = engine.recorder();
    let first: Vec<Change> = std::iter::once(take(None))
        .chain(rest.iter().cloned())
        .collect();
    match recorder.commit(first).await {
        Ok(_) => Ok(()),
        Err(StoreError::Held(lease)) if holder_is_gone(&lease) => {
            tracing::warn!(
                "taking the loop over from loop {} (process {} on {}), whose process is gone",
                lease.run_id,
                lease.holder.pid,
                lease.holder.host
            );
            let batch = std::iter::once(take(Some(lease.holder.token.clone())))
                .chain(rest)
                .collect();
            recorder.commit(batch).await.map(drop).map_err(loop_error)
        }
        Err(e) => Err(loop_error(e)),
    }
}

/// A store error of the loop's lease as the loop's own.
fn loop_error(e: StoreError) -> EngineError {
    match e {
        StoreError::Held(lease) => EngineError::LoopHeld(lease),
        other => other.into(),
    }
}

/// An issue set aside, and its fingerprint then (`None` until the next look reads it).
type SetAside = HashMap<(String, String), Option<String>>;

/// One loop's work.
struct Looper<'a> {
    engine: &'a Engine,
    control: &'a LoopControl,
    options: &'a LoopOptions,
    started: Instant,
    /// Issues whose runs ended without finishing them, by (build, issue).
    set_aside: SetAside,
    /// Whether the last look found nothing (a `loop_idle` is said once per idle stretch).
    unsettled: Option<bool>,
}

impl Looper<'_> {
    /// Resumes the interrupted runs, then picks and runs cards until halted, out of budget or
    /// (with `once`) out of ready work: the loop's end and why.
    async fn run(&mut self) -> Result<(RunStatus, String), EngineError> {
        for run in self.interrupted().await? {
            if self.halted().await {
                return Ok(halted());
            }
            self.resume(run).await?;
        }
        loop {
            if self.halted().await {
                return Ok(halted());
            }
            if let Some((budget, reason)) = self.over_budget() {
                self.note(
                    Event::LoopBudgetExceeded {
                        budget: budget.to_string(),
                        reason: reason.clone(),
                    },
                    None,
                )
                .await?;
                return Ok((RunStatus::BudgetExceeded, reason));
            }
            let work = match pick::gather(
                self.engine.tree(),
                self.engine.store().as_ref(),
                self.options.department.as_deref(),
            )
            .await
            {
                Ok(work) => work,
                Err(e) if !self.options.once => {
                    tracing::warn!("loop {}: cannot look for work: {e}", self.control.id);
                    self.sleep(self.options.idle_sleep).await;
                    continue;
                }
                Err(e) => return Err(e),
            };
            for ((build, issue), seen) in self.set_aside.iter_mut() {
                if seen.is_none() {
                    *seen = Some(
                        pick::find(&work, build, issue)
                            .map_or_else(String::new, |i| i.fingerprint.clone()),
                    );
                }
            }
            let next = pick::ranked(&work).into_iter().find(|p| {
                self.set_aside
                    .get(&(p.build_id.clone(), p.issue.clone()))
                    .is_none_or(|seen| seen.as_deref() != Some(p.fingerprint.as_str()))
            });
            match next {
                Some(pick) => {
                    self.unsettled = Some(false);
                    self.set_aside
                        .remove(&(pick.build_id.clone(), pick.issue.clone()));
                    self.run_card(pick).await?;
                }
                None if self.options.once => {
                    return Ok((RunStatus::Completed, self.nothing_ready()));
                }
                None => {
                    if self.unsettled != Some(true) {
                        self.unsettled = Some(true);
                        let event = Event::LoopIdle {
                            sleep_secs: self.options.idle_sleep.as_secs(),
                            set_aside: self.set_aside.len(),
                        };
                        self.note(event, None).await?;
                    }
                    self.sleep(self.idle_sleep()).await;
                }
            }
        }
    }

    /// Why a `once` loop ends.
    fn nothing_ready(&self) -> String {
        match self.set_aside.len() {
            0 => "nothing is ready".to_string(),
            n => format!("nothing is ready ({n} set aside until they change)"),
        }
    }

    /// The idle sleep, cut to what is left of the time budget.
    fn idle_sleep(&self) -> Duration {
        match self.options.time_budget {
            Some(budget) => self
                .options
                .idle_sleep
                .min(budget.saturating_sub(self.started.elapsed())),
            None => self.options.idle_sleep,
        }
    }

    /// Runs `pick`'s card to its end; an issue it did not finish is set aside.
    async fn run_card(&mut self, pick: Pick) -> Result<(), EngineError> {
        let run = self.engine.runtime()?.run_id();
        let card = LoopCard {
            run: run.clone(),
            issue: pick.issue.clone(),
            epic: pick.epic.clone(),
            department: pick.department.clone(),
            score: Some(pick.score),
            downstream: Some(pick.downstream),
        };
        self.control.update(|s| s.current = Some(card.clone()));
        let picked = Event::LoopPicked {
            issue: pick.issue.clone(),
            epic: pick.epic.clone(),
            department: pick.department.clone(),
            score: pick.score,
            downstream: pick.downstream,
            run: run.clone(),
        };
        self.note(picked, Some(&pick.issue)).await?;
        let options = self.card_options(&pick.department, Some(run));
        let ended = match self
            .engine
            .start_issue(&pick.epic, &pick.issue, options)
            .await
        {
            Ok(handle) => self.follow(&card, handle).await?,
            Err(e) => Some(format!("its run could not start: {e}")),
        };
        // A card halted with the loop is picked again by the next loop, not set aside.
        if let Some(reason) = ended.filter(|_| !self.control.halt.is_raised()) {
            self.set_aside
                .insert((pick.build_id.clone(), pick.issue.clone()), None);
            let event = Event::LoopSetAside {
                issue: pick.issue.clone(),
                epic: pick.epic.clone(),
                department: pick.department.clone(),
                reason,
            };
            self.note(event, Some(&pick.issue)).await?;
        }
        Ok(())
    }

    /// Continues a run a killed process left running, to its end.
    async fn resume(&mut self, run: RunRecord) -> Result<(), EngineError> {
        let card = LoopCard {
            run: run.id.clone(),
            issue: run.target.clone(),
            epic: run.params["epic"]
                .as_str()
                .unwrap_or(&run.target)
                .to_string(),
            department: run.department.clone(),
            score: None,
            downstream: None,
        };
        self.control.update(|s| s.current = Some(card.clone()));
        let resumed = Event::LoopResumed {
            run: run.id.clone(),
            target: run.target.clone(),
        };
        self.note(resumed, None).await?;
        let options = self.card_options(&run.department, None);
        match self.engine.spawn_resume(&run.id, options).await {
            Ok(handle) => {
                self.follow(&card, handle).await?;
            }
            Err(e) => {
                tracing::warn!(
                    "loop {}: cannot resume run {}: {e}",
                    self.control.id,
                    run.id
                );
                self.control.update(|s| s.current = None);
            }
        }
        Ok(())
    }

    /// Waits for a card's run to end, halting it when the loop is halted, then records how it
    /// ended: `None` when it finished its issue, else why not.
    async fn follow(
        &mut self,
        card: &LoopCard,
        handle: RunHandle,
    ) -> Result<Option<String>, EngineError> {
        let halter = handle.halter();
        let join = handle.join();
        tokio::pin!(join);
        let mut asked = false;
        let ended = loop {
            tokio::select! {
                ended = &mut join => break ended,
                _ = tokio::time::sleep(HALT_POLL) => {
                    if !asked && self.halted().await {
                        asked = true;
                        if let Err(e) = halter.halt().await {
                            tracing::warn!("loop {}: cannot halt run {}: {e}", self.control.id, card.run);
                        }
                    }
                }
            }
        };
        let outcomes: Vec<(String, RunStatus, Option<String>)> = match ended {
            Ok(outcomes) => outcomes.into_iter().map(outcome_line).collect(),
            Err(e) => vec![(card.run.clone(), RunStatus::Failed, Some(e.to_string()))],
        };
        let mut unfinished = None;
        for (run, status, reason) in outcomes {
            let tokens = self.run_tokens(&run).await?;
            self.control.update(|s| {
                s.cards += 1;
                s.tokens += tokens;
            });
            let event = Event::LoopCardEnded {
                issue: card.issue.clone(),
                run: run.clone(),
                status,
                tokens,
            };
            self.note(event, Some(&card.issue)).await?;
            if status != RunStatus::Completed {
                unfinished.get_or_insert(format!(
                    "its run {run} ended {status}{}",
                    reason.map(|r| format!(": {r}")).unwrap_or_default()
                ));
            }
        }
        self.control.update(|s| s.current = None);
        Ok(unfinished)
    }

    /// The tokens run `run`'s committed turns used.
    async fn run_tokens(&self, run: &str) -> Result<u64, EngineError> {
        let turns = self.engine.store().list_turns(run).await?;
        Ok(turns
            .iter()
            .map(|t| (t.turn.tokens_in + t.turn.tokens_out).max(0) as u64)
            .sum())
    }

    /// The options of a card's run: the loop's card options in `department`, with the card's
    /// budgets cut to what is left of the loop's.
    fn card_options(&self, department: &str, run_id: Option<String>) -> RunOptions {
        let mut card = self.options.card.clone();
        card.department = department.to_string();
        card.run_id = run_id;
        card.build = None;
        card.reset = false;
        let state = self.control.state();
        if let Some(budget) = self.options.token_budget {
            let left = budget.saturating_sub(state.tokens);
            card.token_budget = Some(card.token_budget.map_or(left, |b| b.min(left)));
        }
        if let Some(budget) = self.options.time_budget {
            let left = budget.saturating_sub(self.started.elapsed());
            card.time_budget = Some(card.time_budget.map_or(left, |b| b.min(left)));
        }
        card
    }

    /// Which of the loop's budgets ran out, and why.
    fn over_budget(&self) -> Option<(&'static str, String)> {
        let used = self.control.state().tokens;
        if let Some(budget) = self.options.token_budget.filter(|b| used >= *b) {
            return Some((
                "tokens",
                format!("the loop's token budget of {budget} is used up ({used} tokens used)"),
            ));
        }
        let elapsed = self.started.elapsed();
        self.options.time_budget.filter(|b| elapsed >= *b).map(|b| {
            (
                "time",
                format!(
                    "the loop's time budget of {}s is used up ({}s elapsed)",
                    b.as_secs(),
                    elapsed.as_secs()
                ),
            )
        })
    }

    /// Whether the loop was asked to stop: its halt raised here, or asked through the store.
    async fn halted(&self) -> bool {
        if self.control.halt.is_raised() {
            return true;
        }
        match self.engine.store().get_run(&self.control.id).await {
            Ok(Some(run)) if run.halt_requested_at.is_some() => {
                self.control.halt.raise();
                true
            }
            Ok(_) => false,
            Err(e) => {
                tracing::warn!(
                    "loop {}: cannot look for a halt request: {e}",
                    self.control.id
                );
                false
            }
        }
    }

    /// Sleeps `total`, looking for a halt every [`HALT_POLL`].
    async fn sleep(&self, total: Duration) {
        let until = Instant::now() + total;
        while !self.halted().await {
            let left = until.saturating_duration_since(Instant::now());
            if left.is_zero() {
                return;
            }
            tokio::time::sleep(left.min(HALT_POLL)).await;
        }
    }

    /// The runs a killed process left running, oldest first: their build's lease still names
    /// them and its holder is gone (or stopped heartbeating). Loop rows left running by a
    /// killed loop are ended on the way (this loop holds the lease now).
    async fn interrupted(&self) -> Result<Vec<RunRecord>, EngineError> {
        let store = self.engine.store();
        let mut found = Vec::new();
        for run in store.list_runs(RECENT_RUNS).await? {
            if run.status != RunStatus::Running || run.id == self.control.id {
                continue;
            }
            if run.kind == RunKind::Loop {
                self.end_dead_loop(&run).await?;
                continue;
            }
            let in_scope = self
                .options
                .department
                .as_deref()
                .is_none_or(|d| d == run.department);
            if !in_scope || self.engine.is_active(&run.id) {
                continue;
            }
            let Some(lease) = store.get_lease(&run.build_id).await? else {
                continue;
            };
            let gone = lease.holder.token != holder().token
                && (lease.is_stale(STALE_AFTER) || holder_is_gone(&lease));
            if lease.run_id == run.id && gone {
                found.push(run);
            }
        }
        found.reverse();
        Ok(found)
    }

    /// Ends a loop row its killed process left running.
    async fn end_dead_loop(&self, run: &RunRecord) -> Result<(), EngineError> {
        let reason = format!(
            "its process stopped without ending it (loop {} took over)",
            self.control.id
        );
        let cards = run.params["cards"].as_u64().unwrap_or(0) as usize;
        let tokens = run.params["tokens"].as_u64().unwrap_or(0);
        let stopped = Event::LoopStopped {
            status: RunStatus::Failed,
            reason: reason.clone(),
            cards,
            tokens,
        };
        self.control
            .recorder
            .commit(vec![
                Change::UpdateRun {
                    id: run.id.clone(),
                    update: RunUpdate::finish(RunStatus::Failed, reason),
                },
                Change::AppendEvent(NewEvent::new(Some(&run.id), stopped)),
            ])
            .await?;
        Ok(())
    }

    /// Records a decision: its event, and the loop's state in its row, with the loop's lease
    /// renewed first (a loop that lost it has the batch refused).
    async fn note(&self, event: Event, issue: Option<&str>) -> Result<(), EngineError> {
        let state = self.control.update(|s| s.last_decision = decision(&event));
        let mut new = NewEvent::new(Some(&self.control.id), event);
        if let Some(issue) = issue {
            new = new.issue(issue);
        }
        self.control
            .recorder
            .commit(vec![
                renewal(LOOP_LEASE),
                Change::AppendEvent(new),
                Change::UpdateRun {
                    id: self.control.id.clone(),
                    update: RunUpdate {
                        params: Some(serde_json::to_value(&state).unwrap_or_default()),
                        ..RunUpdate::default()
                    },
                },
            ])
            .await
            .map_err(loop_error)?;
        Ok(())
    }

    /// Ends the loop: its row, `loop_stopped` and the lease given back, in one batch.
    async fn finish(&self, status: RunStatus, reason: String) -> Result<LoopOutcome, EngineError> {
        let before = self.control.state();
        let stopped = Event::LoopStopped {
            status,
            reason: reason.clone(),
            cards: before.cards,
            tokens: before.tokens,
        };
        let state = self.control.update(|s| {
            s.last_decision = decision(&stopped);
            s.current = None;
            s.status = Some(status);
            s.reason = Some(reason.clone());
        });
        let committed = self
            .control
            .recorder
            .commit(vec![
                Change::UpdateRun {
                    id: self.control.id.clone(),
                    update: RunUpdate {
                        params: Some(serde_json::to_value(&state).unwrap_or_default()),
                        ..RunUpdate::finish(status, reason.clone())
                    },
                },
                Change::AppendEvent(NewEvent::new(Some(&self.control.id), stopped)),
                crate::lease::release(LOOP_LEASE),
            ])
            .await;
        self.control.update(|s| s.running = false);
        committed.map_err(loop_error)?;
        Ok(LoopOutcome {
            id: self.control.id.clone(),
            status,
            reason,
            cards: state.cards,
            tokens: state.tokens,
        })
    }
}

/// A halted loop's end.
fn halted() -> (RunStatus, String) {
    (RunStatus::Canceled, HALTED_REASON.to_string())
}

/// A run outcome's id, status and reason.
fn outcome_line(outcome: RunOutcome) -> (String, RunStatus, Option<String>) {
    (outcome.run_id, outcome.status, outcome.reason)
}
