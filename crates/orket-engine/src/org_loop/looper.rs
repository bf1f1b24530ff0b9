//! One loop's work: [`begin`] takes the project's loop lease with the batch that creates the
//! loop's row; [`work`] resumes what a killed process left running, then picks and runs cards
//! until the loop is halted, out of budget or (with `once`) out of ready work, and ends it.

use super::pick::{self, EpicWork, Pick};
use super::{decision, LoopCard, LoopControl, LoopOptions, LoopOutcome, HALT_POLL, RECENT_RUNS};
use crate::engine::Engine;
use crate::error::EngineError;
use crate::lease::{holder, holder_is_gone, renewal, Heartbeat, STALE_AFTER};
use crate::run::{RunOptions, RunOutcome, HALTED_REASON};
use crate::supervise::RunHandle;
use orket_core::ids::LOOP_LEASE;
use orket_core::{Event, RunKind, RunStatus};
use orket_store::{Change, LeaseRequest, NewEvent, RunRecord, RunUpdate, StoreError};
use std::collections::HashMap;
use std::time::{Duration, Instant};

/// The body of a loop's task: its work, then its end (whatever ended it), the lease's
/// heartbeat stopped first.
pub(super) async fn work(
    engine: Engine,
    control: LoopControl,
    options: LoopOptions,
    heartbeat: Heartbeat,
) -> Result<LoopOutcome, EngineError> {
    let mut looper = Looper {
        engine: &engine,
        control: &control,
        options: &options,
        started: Instant::now(),
        set_aside: HashMap::new(),
        unsettled: None,
    };
    let (status, reason) = match looper.run().await {
        Ok(end) => end,
        Err(e) => {
            tracing::error!("loop {} failed: {e}", control.id);
            (RunStatus::Failed, e.to_string())
        }
    };
    drop(heartbeat);
    looper.finish(status, reason).await
}

/// Takes the project's loop lease with the batch that creates the loop's row and records
/// `loop_started`; a lease whose process is gone is taken over, one held by a live process
/// refuses the loop naming it.
pub(super) async fn begin(
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
    /// (with `once`) out of ready work: the loop's end and why. Before each look, the rocks'
    /// bug-fix phases are brought up to date.
    async fn run(&mut self) -> Result<(RunStatus, String), EngineError> {
        for run in self.interrupted().await? {
            if self.halted().await {
                return Ok(self.why_halted().await);
            }
            self.resume(run).await?;
        }
        loop {
            if self.halted().await {
                return Ok(self.why_halted().await);
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
            // Rocks whose epics are done enter (or leave) their bug-fix phase before the
            // look: a phase that ends writes the `<rock>-phase2` rock this look then sees.
            for (rock, e) in self.engine.advance_bug_fix_phases().await.failed {
                tracing::warn!("loop {}: rock {rock}'s bug-fix phase: {e}", self.control.id);
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
            let (next, busy) = self.choose(&work).await?;
            match next {
                Some(pick) => {
                    self.unsettled = Some(false);
                    self.set_aside
                        .remove(&(pick.build_id.clone(), pick.issue.clone()));
                    self.run_card(pick).await?;
                }
                None if self.options.once => {
                    return Ok((RunStatus::Completed, self.nothing_ready(busy)));
                }
                None => {
                    if self.unsettled != Some(true) {
                        self.unsettled = Some(true);
                        let event = Event::LoopIdle {
                            sleep_secs: self.options.idle_sleep.as_secs(),
                            set_aside: self.set_aside.len(),
                            busy,
                        };
                        self.note(event, None).await?;
                    }
                    self.sleep(self.idle_sleep()).await;
                }
            }
        }
    }

    /// The best ready issue that is not set aside and whose build no other run works on (in
    /// another process, or in this one: a server's), and how many ready issues were passed
    /// over because their build is busy.
    async fn choose(&self, work: &[EpicWork]) -> Result<(Option<Pick>, usize), EngineError> {
        let mut busy_builds: HashMap<String, bool> = HashMap::new();
        let mut busy = 0;
        for pick in pick::ranked(work) {
            let key = (pick.build_id.clone(), pick.issue.clone());
            let seen = self.set_aside.get(&key);
            if seen.is_some_and(|seen| seen.as_deref() == Some(pick.fingerprint.as_str())) {
                continue;
            }
            let held = match busy_builds.get(&pick.build_id) {
                Some(held) => *held,
                None => {
                    let held = self.build_busy(&pick.build_id).await?;
                    busy_builds.insert(pick.build_id.clone(), held);
                    held
                }
            };
            if held {
                busy += 1;
                continue;
            }
            return Ok((Some(pick), busy));
        }
        Ok((None, busy))
    }

    /// Whether another run works on `build` now: its lease held by a live process, or by a
    /// run executing in this one.
    async fn build_busy(&self, build: &str) -> Result<bool, EngineError> {
        let Some(lease) = self.engine.store().get_lease(build).await? else {
            return Ok(false);
        };
        if lease.holder.token == holder().token {
            return Ok(self.engine.is_active(&lease.run_id));
        }
        Ok(!(lease.is_stale(STALE_AFTER) || holder_is_gone(&lease)))
    }

    /// Why a `once` loop ends.
    fn nothing_ready(&self, busy: usize) -> String {
        format!(
            "nothing is ready{}",
            super::waiting(self.set_aside.len(), busy)
        )
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
        // A card halted with the loop is picked again by the next loop, not set aside; an
        // issue its run finished (done, canceled) needs no setting aside either.
        if self.control.halt.is_raised() || self.finished(&pick).await? {
            return Ok(());
        }
        if let Some(reason) = ended {
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

    /// Whether `pick`'s issue is done or canceled now.
    async fn finished(&self, pick: &Pick) -> Result<bool, EngineError> {
        let issue = self
            .engine
            .store()
            .get_issue(&pick.build_id, &pick.issue)
            .await?;
        Ok(issue.is_some_and(|i| i.status.is_terminal()))
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

    /// The end of a halted loop: `canceled` when a person (or the server shutting down)
    /// halted it; `failed`, naming the new holder, when its lease was taken over (its
    /// heartbeat raises the halt then).
    async fn why_halted(&self) -> (RunStatus, String) {
        match self.engine.store().get_lease(LOOP_LEASE).await {
            Ok(Some(lease)) if lease.run_id != self.control.id => (
                RunStatus::Failed,
                format!("the loop's lease was taken over by {}", lease.describe()),
            ),
            _ => halted(),
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
