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

mod looper;
mod pick;

pub use pick::Pick;

use crate::engine::Engine;
use crate::error::EngineError;
use crate::lease::Heartbeat;
use crate::run::{Halt, RunOptions};
use orket_core::ids::LOOP_LEASE;
use orket_core::{Event, RunStatus};
use orket_store::events::Recorder;
use serde::{Deserialize, Serialize};
use std::sync::{Arc, Mutex};
use std::time::Duration;
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
            busy,
        } => format!(
            "nothing is ready: sleeping {sleep_secs} s between looks{}",
            waiting(*set_aside, *busy)
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

/// What waits besides: ` (2 set aside until they change, 1 busy in another run)`, or nothing.
fn waiting(set_aside: usize, busy: usize) -> String {
    let mut parts = Vec::new();
    if set_aside > 0 {
        parts.push(format!("{set_aside} set aside until they change"));
    }
    if busy > 0 {
        parts.push(format!("{busy} busy in another run"));
    }
    if parts.is_empty() {
        String::new()
    } else {
        format!(" ({})", parts.join(", "))
    }
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
    if let Err(e) = looper::begin(engine, &control, &options).await {
        control.update(|s| s.running = false);
        return Err(e);
    }
    let heartbeat = Heartbeat::start(
        Arc::clone(engine.store()),
        LOOP_LEASE.to_string(),
        control.halt.clone(),
    );
    let task = tokio::spawn(looper::work(
        engine.clone(),
        control.clone(),
        options,
        heartbeat,
    ));
    Ok(LoopHandle { control, task })
}
