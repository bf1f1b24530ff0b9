//! The runs executing in this process: one run per build at a time, a handle to halt and join
//! each, halts through the store (so a run started by any process stops at its next turn
//! boundary), and a run that errors or panics recorded as `failed` with the message.

use crate::error::EngineError;
use crate::run::{Halt, RunOutcome};
use futures::FutureExt;
use orket_core::ids::{epic_build_id, rock_build_id};
use orket_core::{Event, RunKind, RunStatus};
use orket_store::events::Recorder;
use orket_store::{Change, NewEvent, RunRecord, RunUpdate, StoreError};
use std::collections::HashMap;
use std::panic::AssertUnwindSafe;
use std::sync::{Arc, Mutex};
use tokio::task::JoinHandle;

/// A run executing in this process.
struct Active {
    /// Raised to stop it.
    halt: Halt,
    /// The builds it works on.
    builds: Vec<String>,
    /// The ids of its runs so far (a rock starts one run per epic).
    runs: Vec<String>,
}

/// The runs executing in this process, by the id of their first run.
#[derive(Default)]
pub(crate) struct Runs {
    active: Mutex<HashMap<String, Active>>,
}

impl Runs {
    fn lock(&self) -> std::sync::MutexGuard<'_, HashMap<String, Active>> {
        self.active.lock().unwrap_or_else(|e| e.into_inner())
    }

    /// Registers run `id` on `builds`; refused while another run of this process holds one.
    pub fn claim(
        self: &Arc<Self>,
        id: &str,
        halt: Halt,
        builds: Vec<String>,
    ) -> Result<Claim, EngineError> {
        let mut active = self.lock();
        if active.values().any(|run| run.runs.iter().any(|r| r == id)) {
            return Err(EngineError::AlreadyRunning(id.to_string()));
        }
        for (other, run) in active.iter() {
            if let Some(build) = builds.iter().find(|b| run.builds.contains(b)) {
                return Err(EngineError::Busy {
                    build: build.clone(),
                    run: other.clone(),
                });
            }
        }
        active.insert(
            id.to_string(),
            Active {
                halt,
                builds,
                runs: vec![id.to_string()],
            },
        );
        Ok(Claim {
            runs: Arc::clone(self),
            id: id.to_string(),
            current: Arc::new(Mutex::new(id.to_string())),
        })
    }

    /// The halt of run `id` (any run of an active rock), when it executes here.
    pub fn halt_of(&self, id: &str) -> Option<Halt> {
        self.lock()
            .values()
            .find(|a| a.runs.iter().any(|r| r == id))
            .map(|a| a.halt.clone())
    }

    /// How many runs execute here.
    pub fn count(&self) -> usize {
        self.lock().len()
    }

    /// Raises the halt of every run executing here; returns how many there are.
    pub fn halt_all(&self) -> usize {
        let active = self.lock();
        for run in active.values() {
            run.halt.raise();
        }
        active.len()
    }
}

/// A run's hold on its builds, released when it is dropped (however the run ends).
pub(crate) struct Claim {
    runs: Arc<Runs>,
    id: String,
    /// The run executing now (a rock's current epic run).
    current: Arc<Mutex<String>>,
}

impl Claim {
    /// Run `run_id` of this claim starts (the next epic of a rock).
    pub fn started(&self, run_id: &str) {
        if let Some(active) = self.runs.lock().get_mut(&self.id) {
            if !active.runs.iter().any(|r| r == run_id) {
                active.runs.push(run_id.to_string());
            }
        }
        *self.current.lock().unwrap_or_else(|e| e.into_inner()) = run_id.to_string();
    }

    /// The run executing now.
    fn current(&self) -> String {
        self.current
            .lock()
            .unwrap_or_else(|e| e.into_inner())
            .clone()
    }
}

impl Drop for Claim {
    fn drop(&mut self) {
        self.runs.lock().remove(&self.id);
    }
}

/// A run started by [`crate::engine::Engine::spawn`]: its id, a halt, and its end.
pub struct RunHandle {
    halter: Halter,
    task: JoinHandle<Result<Vec<RunOutcome>, EngineError>>,
}

/// Halts one run (a clone of its handle's halt, usable while the handle is joined).
#[derive(Clone)]
pub struct Halter {
    id: String,
    halt: Halt,
    recorder: Recorder,
}

impl Halter {
    /// Asks the run to stop at its next turn boundary (and records the request in the store).
    pub async fn halt(&self) -> Result<(), EngineError> {
        halt_run(&self.recorder, &self.id, Some(&self.halt)).await
    }
}

impl RunHandle {
    /// The id of the (first) run.
    pub fn id(&self) -> &str {
        &self.halter.id
    }

    /// What halts the run.
    pub fn halter(&self) -> Halter {
        self.halter.clone()
    }

    /// Asks the run to stop at its next turn boundary (and records the request in the store).
    pub async fn halt(&self) -> Result<(), EngineError> {
        self.halter.halt().await
    }

    /// Waits for the run to end: its outcomes (one per epic of a rock), or why it failed.
    pub async fn join(self) -> Result<Vec<RunOutcome>, EngineError> {
        match self.task.await {
            Ok(result) => result,
            Err(e) => Err(EngineError::Panicked(e.to_string())),
        }
    }
}

/// Asks run `run_id` to halt at its next turn boundary, whichever process executes it:
/// `NotFound` for an unknown run, a `Conflict` for one that ended. Records `halt_requested`.
/// Halts run `run_id`: raises `here` (its flag, when it executes in this process), then asks
/// through the store. When the flag was raised, a run not stored yet (it stops at its first
/// tick) or already ended (a rock whose first run ended) is halted all the same; otherwise
/// those are `NotFound` and `Conflict`.
pub(crate) async fn halt_run(
    recorder: &Recorder,
    run_id: &str,
    here: Option<&Halt>,
) -> Result<(), EngineError> {
    let Some(halt) = here else {
        return request_halt(recorder, run_id).await;
    };
    halt.raise();
    match request_halt(recorder, run_id).await {
        Err(EngineError::NotFound(_) | EngineError::Store(StoreError::Conflict(_))) => Ok(()),
        other => other,
    }
}

/// Records a halt request for run `run_id` in the store, with its `halt_requested` event.
pub async fn request_halt(recorder: &Recorder, run_id: &str) -> Result<(), EngineError> {
    let event = NewEvent::new(Some(run_id), Event::HaltRequested {}).role(orket_core::PERSON_ACTOR);
    recorder
        .commit(vec![
            Change::RequestHalt {
                run_id: run_id.to_string(),
            },
            Change::AppendEvent(event),
        ])
        .await
        .map_err(|e| match e {
            StoreError::NotFound { .. } => EngineError::NotFound(format!("run {run_id} not found")),
            other => other.into(),
        })?;
    Ok(())
}

/// What a spawned run is, to record its failure.
pub(crate) struct Spawned {
    pub target: String,
    pub department: String,
    pub kind: RunKind,
    pub builds: Vec<String>,
}

/// Starts `run` as a task holding `claim`: its panic or error is recorded as the failure of
/// the run executing at the time.
pub(crate) fn spawn<F>(
    recorder: Recorder,
    id: String,
    halt: Halt,
    claim: Claim,
    what: Spawned,
    run: impl FnOnce(Arc<Claim>) -> F,
) -> RunHandle
where
    F: std::future::Future<Output = Result<Vec<RunOutcome>, EngineError>> + Send + 'static,
{
    let claim = Arc::new(claim);
    let body = run(Arc::clone(&claim));
    let failures = recorder.clone();
    let task = tokio::spawn(async move {
        let result = match AssertUnwindSafe(body).catch_unwind().await {
            Ok(result) => result,
            Err(panic) => Err(EngineError::Panicked(panic_message(panic.as_ref()))),
        };
        if let Err(err) = &result {
            let run_id = claim.current();
            tracing::warn!("run {run_id} ({}) failed: {err}", what.target);
            let message = err.to_string();
            if let Err(e) = record_failure(&failures, &run_id, &what, &message).await {
                tracing::error!("cannot record the failure of run {run_id}: {e}");
            }
        }
        drop(claim);
        result
    });
    RunHandle {
        halter: Halter { id, halt, recorder },
        task,
    }
}

/// The message of a panic payload (`panic!` with a literal or a formatted string).
fn panic_message(payload: &(dyn std::any::Any + Send)) -> String {
    if let Some(text) = payload.downcast_ref::<&str>() {
        text.to_string()
    } else if let Some(text) = payload.downcast_ref::<String>() {
        text.clone()
    } else {
        "(no message)".to_string()
    }
}

/// A run that failed before it could end on its own (assets that do not load, a store error,
/// a panic): its row is created or ended `failed` with the error, `session_end` recorded and
/// its builds' leases given back. A run refused because another process holds its build
/// leaves the run alone when that process runs this very run (a resume elsewhere); a run whose
/// build another run took is ended `failed` with why.
async fn record_failure(
    recorder: &Recorder,
    run_id: &str,
    what: &Spawned,
    error: &str,
) -> Result<(), StoreError> {
    let store = recorder.store();
    for build in &what.builds {
        if let Some(lease) = store.get_lease(build).await? {
            if lease.run_id == run_id && lease.holder.token != crate::lease::holder().token {
                tracing::info!(
                    "run {run_id} goes on in {}; nothing recorded here",
                    lease.describe()
                );
                return Ok(());
            }
        }
    }
    let mut changes = Vec::new();
    // The turns committed before the failure (other turns of the tick may have been).
    let committed_turns = recorder.store().list_turns(run_id).await?.len();
    match recorder.store().get_run(run_id).await? {
        Some(run) if run.status.is_final() => return Ok(()),
        Some(_) => {}
        None => {
            let build = what
                .builds
                .first()
                .cloned()
                .unwrap_or_else(|| match what.kind {
                    RunKind::Rock => rock_build_id(&what.target),
                    _ => epic_build_id(&what.target),
                });
            changes.push(Change::CreateRun(RunRecord::new(
                run_id,
                what.kind,
                &what.target,
                build,
                &what.department,
                "",
            )));
        }
    }
    changes.push(Change::UpdateRun {
        id: run_id.to_string(),
        update: RunUpdate::finish(RunStatus::Failed, error),
    });
    changes.push(Change::AppendEvent(NewEvent::new(
        Some(run_id),
        Event::SessionEnd {
            status: RunStatus::Failed,
            reason: error.to_string(),
            turns: committed_turns,
        },
    )));
    // Released only where this process holds them (the token must match).
    changes.extend(what.builds.iter().map(|b| crate::lease::release(b)));
    recorder.commit(changes).await.map(drop)
}
