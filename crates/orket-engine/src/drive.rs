//! The traction loop of one epic run: seed the build, then tick — read what
//! changed (one store unit), plan by critical path, dispatch the candidates' turns
//! concurrently — until nothing is workable (`completed` / `stalled` with why each open issue
//! is stuck), a catastrophic failure or `halt_on_violation` (`failed`), `no_progress_limit`
//! idle ticks (`stalled`), a token/time budget (`budget_exceeded`), `max_iterations`
//! (`exhausted`) or a halt (`canceled`). Each tick reads only the issues changed since the
//! last one, so a long chain costs the same per turn as a short one.

use crate::assets::{seed_record, RunAssets};
use crate::error::EngineError;
use crate::policy::DeployMoment;
use crate::run::{Halt, RunCtx, RunIdentity, RunOptions, RunOutcome, HALTED_REASON};
use crate::turn::{self, TurnOutcome};
use orket_core::ids::epic_build_id;
use orket_core::plan::PlanCard;
use orket_core::{Event, RunKind, RunStatus, Status};
use orket_store::events::Recorder;
use orket_store::{
    BuildRecord, Change, IssueRecord, IssueUpdate, RunRecord, RunUpdate, TurnRecord,
};
use serde_json::json;
use std::collections::{BTreeMap, HashMap, HashSet};
use std::path::{Path, PathBuf};
use std::sync::atomic::Ordering;
use std::sync::Arc;
use std::time::{Duration, Instant};
use tokio::sync::Semaphore;

/// How often a tick with turns in flight looks for a halt asked through the store.
const HALT_POLL: Duration = Duration::from_millis(500);

/// An epic run to start.
pub(crate) struct EpicRun<'a> {
    pub epic: &'a str,
    pub department: &'a str,
    /// Only this issue (an issue run).
    pub target: Option<&'a str>,
    pub kind: RunKind,
    /// The run's workspace is `<base>/<epic>`.
    pub base: PathBuf,
    pub run_id: String,
}

/// Seeds the build (issues not yet in it, with their file status; `reset` starts it over, a
/// targeted reset resets only the target), creates the run row and records `session_start`,
/// all in one batch with taking the build's lease (so two processes never seed or run one
/// build at once), and returns the run's context.
pub(crate) async fn start(
    recorder: &Recorder,
    root: &Path,
    assets: RunAssets,
    run: EpicRun<'_>,
    options: RunOptions,
    halt: Halt,
) -> Result<RunCtx, EngineError> {
    let build_id = match (&options.build, run.kind) {
        (Some(build), RunKind::Epic | RunKind::Issue) => build.clone(),
        _ => epic_build_id(run.epic),
    };
    let workspace = run.base.join(run.epic);
    let existing: HashMap<String, IssueRecord> = recorder
        .store()
        .list_issues(&build_id)
        .await?
        .into_iter()
        .map(|i| (i.id.clone(), i))
        .collect();
    let mut seed = vec![Change::UpsertBuild(BuildRecord::new(
        &build_id,
        "epic",
        run.epic,
        run.department,
    ))];
    seed.extend(seed_changes(
        &assets,
        &build_id,
        &existing,
        run.target,
        options.reset,
    ));
    let mut record = RunRecord::new(
        &run.run_id,
        run.kind,
        run.target.unwrap_or(run.epic),
        &build_id,
        run.department,
        workspace.to_string_lossy(),
    );
    record.params = json!({
        "epic": run.epic,
        "target": run.target,
        "provider": options.provider.name(),
        "model": options.model,
        "concurrency": options.concurrency,
    });
    seed.push(Change::CreateRun(record));
    let provider = options.provider.name().to_string();
    let identity = RunIdentity {
        run_id: run.run_id,
        build_id,
        target: run.target.map(str::to_string),
        workspace: workspace.clone(),
    };
    let ctx = RunCtx::new(recorder, root, identity, assets, options, halt)?;
    seed.push(Change::AppendEvent(ctx.event(Event::SessionStart {
        epic: run.epic.to_string(),
        target: run.target.map(str::to_string),
        workspace: workspace.display().to_string(),
        provider,
    })));
    crate::lease::commit_taking_build(&ctx, seed).await?;
    Ok(ctx)
}

/// The changes that seed the build from the epic file.
fn seed_changes(
    assets: &RunAssets,
    build_id: &str,
    existing: &HashMap<String, IssueRecord>,
    target: Option<&str>,
    reset: bool,
) -> Vec<Change> {
    let reset_all = reset && target.is_none();
    let mut seed = Vec::new();
    if reset_all {
        seed.push(Change::DeleteBuildIssues {
            build_id: build_id.to_string(),
        });
    }
    for spec in &assets.epic.issues {
        match existing.get(&spec.card.id).filter(|_| !reset_all) {
            None => seed.push(Change::InsertIssue(seed_record(build_id, spec))),
            Some(stored)
                if reset
                    && target == Some(spec.card.id.as_str())
                    && stored.status != Status::Ready =>
            {
                seed.push(Change::UpdateIssue {
                    build_id: build_id.to_string(),
                    id: spec.card.id.clone(),
                    update: IssueUpdate::by(orket_core::ENGINE_ACTOR)
                        .status(Status::Ready)
                        .retry_count(0u32)
                        .clear_wait_reason(),
                });
            }
            Some(_) => {}
        }
    }
    seed
}

/// The context of an interrupted run, to drive on from its last committed turn: the provider
/// is told how many turns of each (issue, role) are committed, so a replay continues where it
/// was; `session_resumed` is recorded as the build's lease is taken (refused while another
/// live process runs it).
pub(crate) async fn resume(
    recorder: &Recorder,
    root: &Path,
    run: RunRecord,
    assets: RunAssets,
    options: RunOptions,
    halt: Halt,
) -> Result<RunCtx, EngineError> {
    let store = recorder.store();
    let turns = store.list_turns(&run.id).await?;
    for ((issue, role), n) in committed_replies(&turns) {
        options.provider.resume_after(&issue, &role, n);
    }
    let identity = RunIdentity {
        run_id: run.id.clone(),
        build_id: run.build_id.clone(),
        target: run.params["target"].as_str().map(str::to_string),
        workspace: PathBuf::from(&run.workspace),
    };
    let ctx = RunCtx::new(recorder, root, identity, assets, options, halt)?;
    let used: i64 = turns
        .iter()
        .map(|t| t.turn.tokens_in + t.turn.tokens_out)
        .sum();
    ctx.tokens.store(used.max(0) as u64, Ordering::SeqCst);
    ctx.seq.store(
        store.last_turn_seq(&run.id).await?.unwrap_or(0),
        Ordering::SeqCst,
    );
    let resumed = ctx.event(Event::SessionResumed {
        committed_turns: turns.len(),
    });
    crate::lease::commit_taking_build(&ctx, vec![Change::AppendEvent(resumed)]).await?;
    Ok(ctx)
}

/// How many model replies the committed `turns` used, per (issue, role): a provider told so
/// continues after them (a replay, where it was).
pub(crate) fn committed_replies(turns: &[TurnRecord]) -> BTreeMap<(String, String), usize> {
    let mut per_pair: BTreeMap<(String, String), usize> = BTreeMap::new();
    for t in turns {
        // Each step with a reply used one; a turn stored before steps existed used one.
        let replies = if t.turn.steps.is_empty() {
            1
        } else {
            t.turn.steps.iter().filter(|s| s.reply.is_some()).count()
        };
        *per_pair
            .entry((t.turn.issue_id.clone(), t.turn.role.clone()))
            .or_default() += replies;
    }
    per_pair
}

/// The build as the run last read it: every issue in insertion order, and the version it was
/// read at.
#[derive(Default)]
struct BuildView {
    version: i64,
    issues: Vec<IssueRecord>,
    index: HashMap<String, usize>,
}

impl BuildView {
    /// Takes in the issues changed since the last read.
    fn update(&mut self, version: i64, changed: Vec<IssueRecord>) {
        for issue in changed {
            match self.index.get(&issue.id) {
                Some(&at) => self.issues[at] = issue,
                None => {
                    self.index.insert(issue.id.clone(), self.issues.len());
                    self.issues.push(issue);
                }
            }
        }
        self.version = version;
    }

    /// Reads what changed since the last read; true when a halt was asked through the store.
    async fn refresh(&mut self, ctx: &RunCtx) -> Result<bool, EngineError> {
        let tick = ctx
            .recorder
            .store()
            .tick_state(&ctx.run_id, &ctx.build_id, self.version)
            .await?;
        self.update(tick.version, tick.changed);
        Ok(tick.halt_requested_at.is_some())
    }

    fn statuses(&self) -> HashMap<String, Status> {
        self.issues
            .iter()
            .map(|i| (i.id.clone(), i.status))
            .collect()
    }

    fn get(&self, id: &str) -> Option<&IssueRecord> {
        self.index.get(id).map(|&at| &self.issues[at])
    }
}

/// Sees the first issue this run moves to code_review (the moment a sandbox may be deployed
/// at): issues already in review when the run began do not count.
#[derive(Default)]
struct ReviewWatch {
    /// The issues in code_review at the run's first look.
    at_start: Option<HashSet<String>>,
    seen: bool,
}

impl ReviewWatch {
    /// True once: at the first look that finds an issue in review that was not at the start.
    fn first_new(&mut self, issues: &[IssueRecord]) -> bool {
        let in_review = issues.iter().filter(|i| i.status == Status::CodeReview);
        let at_start = self
            .at_start
            .get_or_insert_with(|| in_review.clone().map(|i| i.id.clone()).collect());
        if self.seen || !in_review.clone().any(|i| !at_start.contains(&i.id)) {
            return false;
        }
        self.seen = true;
        true
    }
}

/// The loop: tick until nothing is left to do, a guard trips, or a failure stops the run.
pub(crate) async fn drive(ctx: &RunCtx) -> Result<RunOutcome, EngineError> {
    let started = Instant::now();
    #[cfg(feature = "postgres")]
    if let Some(fleet) = &ctx.options.fleet {
        crate::fleet::remote::publish(ctx, fleet).await?;
    }
    let options = &ctx.options;
    let mut view = BuildView::default();
    let mut turns = 0usize;
    let mut idle_ticks = 0usize;
    let mut ended: Option<(RunStatus, String)> = None;
    let mut reviews = ReviewWatch::default();
    for tick in 1..=options.max_iterations {
        if view.refresh(ctx).await? {
            ctx.halt.raise();
        }
        if reviews.first_new(&view.issues) {
            crate::deploy::deploy_for_run(ctx, DeployMoment::CodeReview).await?;
        }
        if ctx.halt.is_raised() {
            ended = Some((RunStatus::Canceled, HALTED_REASON.to_string()));
            break;
        }
        let cards: Vec<PlanCard<'_>> = view
            .issues
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
            ended = Some(final_state(&view.issues, ctx.target.as_deref()));
            break;
        }
        ctx.defer(ctx.event(Event::OrchestratorTick {
            tick,
            candidates: candidates.clone(),
        }));
        let issues: Vec<IssueRecord> = candidates
            .iter()
            .filter_map(|id| view.get(id).cloned())
            .collect();
        let outcomes = dispatch(ctx, &issues, Arc::new(view.statuses())).await?;

        let mut progress = false;
        let mut failure: Option<String> = None;
        for outcome in outcomes {
            if let TurnOutcome::Committed {
                turn,
                progress: p,
                stop_run,
            } = outcome
            {
                turns += usize::from(turn);
                progress |= p;
                if let Some(reason) = stop_run {
                    failure.get_or_insert(reason);
                }
            }
        }
        if let Some(reason) = failure {
            ended = Some((RunStatus::Failed, reason));
            break;
        }
        if ctx.halt.is_raised() {
            ended = Some((RunStatus::Canceled, HALTED_REASON.to_string()));
            break;
        }
        if let Some(reason) = over_budget(ctx, started) {
            ended = Some((RunStatus::BudgetExceeded, reason));
            break;
        }
        idle_ticks = if progress { 0 } else { idle_ticks + 1 };
        if idle_ticks >= options.no_progress_limit {
            view.refresh(ctx).await?;
            let (_, stuck) = final_state(&view.issues, ctx.target.as_deref());
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
            options.max_iterations
        ),
    ));
    finish(ctx, status, &reason, turns).await
}

/// Runs the turns of `issues` concurrently (at most `concurrency` at once); a halt lets the
/// turns in flight finish but starts no new one. While turns run, a halt asked through the
/// store (from another process) is looked for every [`HALT_POLL`].
async fn dispatch(
    ctx: &RunCtx,
    issues: &[IssueRecord],
    snapshot: Arc<HashMap<String, Status>>,
) -> Result<Vec<TurnOutcome>, EngineError> {
    let semaphore = Semaphore::new(ctx.options.concurrency.max(1));
    let turns = futures::future::join_all(issues.iter().map(|issue| {
        let (semaphore, snapshot) = (&semaphore, Arc::clone(&snapshot));
        async move {
            let _permit = semaphore.acquire().await;
            if ctx.halt.is_raised() {
                return Ok(TurnOutcome::Skipped);
            }
            #[cfg(feature = "postgres")]
            if let Some(fleet) = &ctx.options.fleet {
                return crate::fleet::remote::run_turn(ctx, fleet, issue, snapshot).await;
            }
            turn::run_turn(ctx, issue, snapshot).await
        }
    }));
    tokio::pin!(turns);
    let results = loop {
        tokio::select! {
            results = &mut turns => break results,
            _ = tokio::time::sleep(HALT_POLL) => {
                // A failed look is only a missed chance to halt early: the turns in flight
                // must not be dropped for it (the next tick reads the request again).
                match ctx.recorder.store().get_run(&ctx.run_id).await {
                    Ok(Some(run)) if run.halt_requested_at.is_some() => {
                        ctx.halt.raise();
                    }
                    Ok(_) => {}
                    Err(err) => tracing::warn!("run {}: cannot look for a halt request: {err}", ctx.run_id),
                }
            }
        }
    };
    Ok(results.into_iter().collect::<Result<_, _>>()?)
}

/// Why the run is over its token or time budget, if it is.
fn over_budget(ctx: &RunCtx, started: Instant) -> Option<String> {
    let used = ctx.tokens.load(Ordering::SeqCst);
    if let Some(budget) = ctx.options.token_budget.filter(|b| used > *b) {
        return Some(format!(
            "token budget of {budget} exceeded ({used} tokens used)"
        ));
    }
    let elapsed = started.elapsed();
    ctx.options.time_budget.filter(|b| elapsed > *b).map(|b| {
        format!(
            "time budget of {}s exceeded ({}s elapsed)",
            b.as_secs_f64(),
            elapsed.as_secs_f64().round()
        )
    })
}

/// Ends the run: a completed run's sandbox, the success ledger when every issue is final, the
/// last snapshot and `session_end`, in one batch that gives the build's lease back.
async fn finish(
    ctx: &RunCtx,
    status: RunStatus,
    reason: &str,
    turns: usize,
) -> Result<RunOutcome, EngineError> {
    if status == RunStatus::Completed {
        crate::deploy::deploy_for_run(ctx, DeployMoment::EpicCompleted).await?;
    }
    crate::turn::candidates::clear_run_folder(ctx);
    let issues = ctx.recorder.store().list_issues(&ctx.build_id).await?;
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
        let epic = ctx.assets.epic.stem.clone();
        changes.push(Change::RecordSuccess {
            run_id: ctx.run_id.clone(),
            build_id: ctx.build_id.clone(),
            card: epic.clone(),
            data: json!({"issues": summary, "turns": turns}),
        });
        changes.push(Change::AppendEvent(
            ctx.event(Event::SuccessRecorded { epic: epic.clone() }),
        ));
        changes.push(Change::AppendEvent(
            ctx.event(Event::OrchestratorEpicComplete { epic }),
        ));
    }
    changes.push(Change::SaveSnapshot {
        run_id: ctx.run_id.clone(),
        data: json!({"status": status, "reason": reason, "issues": summary}),
    });
    changes.push(Change::AppendEvent(ctx.event(Event::SessionEnd {
        status,
        reason: reason.to_string(),
        turns,
    })));
    changes.push(crate::lease::release(&ctx.build_id));
    ctx.stop_heartbeat();
    ctx.commit(changes).await?;
    ctx.released();
    Ok(RunOutcome {
        run_id: ctx.run_id.clone(),
        status,
        reason: Some(reason.to_string()),
        turns,
        build_id: ctx.build_id.clone(),
        workspace: ctx.workspace.root().to_path_buf(),
    })
}

/// `completed` when every issue (or the target) is final, else `stalled` with why each open
/// issue is stuck.
fn final_state(issues: &[IssueRecord], target: Option<&str>) -> (RunStatus, String) {
    let status: HashMap<&str, Status> = issues.iter().map(|i| (i.id.as_str(), i.status)).collect();
    let open: Vec<&IssueRecord> = issues
        .iter()
        .filter(|i| target.is_none_or(|t| t == i.id))
        .filter(|i| !i.status.is_terminal())
        .collect();
    let relevant = issues
        .iter()
        .filter(|i| target.is_none_or(|t| t == i.id))
        .count();
    if open.is_empty() {
        return (
            RunStatus::Completed,
            format!("all {relevant} issues are done or canceled"),
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

#[cfg(test)]
mod tests {
    use super::*;

    fn issues(statuses: &[(&str, Status)]) -> Vec<IssueRecord> {
        statuses
            .iter()
            .map(|(id, status)| {
                let mut issue = IssueRecord::new("b", *id, "n", "developer");
                issue.status = *status;
                issue
            })
            .collect()
    }

    #[test]
    fn only_an_issue_the_run_moves_to_review_counts_once() {
        let mut watch = ReviewWatch::default();
        let start = issues(&[("A", Status::CodeReview), ("B", Status::Ready)]);
        assert!(!watch.first_new(&start), "A was in review before the run");
        let later = issues(&[("A", Status::Done), ("B", Status::InProgress)]);
        assert!(!watch.first_new(&later));
        let reviewed = issues(&[("A", Status::Done), ("B", Status::CodeReview)]);
        assert!(watch.first_new(&reviewed), "B reached review in this run");
        let again = issues(&[("A", Status::CodeReview), ("B", Status::CodeReview)]);
        assert!(!watch.first_new(&again), "once per run");
    }
}
