//! One issue's turn, as stages: read (the turn's inputs, one store unit) → plan
//! (route, seat, roles, model, tools: [`plan`]) → verify (a review runs the fixture first:
//! [`verification`]) → prompt ([`plan::model_request`]) → steps (a bounded loop of model
//! replies, one tool call each, each held to what it may do: [`steps`], [`shape`]; per call:
//! gate, approval, execute: [`act`], [`execute`]) → evaluate (policy) → commit. Everything the
//! turn did — dispatch and start events, the verification result, the issue's move to
//! `in_progress`, its steps, tool results and status changes, comments, new issues, the turn
//! row — is collected in [`effects::TurnEffects`] and committed as one batch, so a turn is in
//! the store whole or not at all.

pub(crate) mod act;
pub(crate) mod candidates;
mod content;
pub(crate) mod effects;
pub(crate) mod execute;
mod failure;
pub(crate) mod plan;
pub(crate) mod settings;
mod shape;
mod steps;
mod verification;

use crate::policy::TurnReport;
use crate::run::RunCtx;
use act::{Rules, Violation, ORKET};
use effects::TurnEffects;
use execute::{Executor, StoreIssues};
use failure::{Offender, Stuck};
use orket_core::assets::FileContent;
use orket_core::tools::ToolResult;
use orket_core::{Event, Status};
use orket_isolate::verify::has_fixture;
use orket_llm::ModelRequest;
use orket_store::{Change, IssueRecord, IssueUpdate, NewTurn, StoreResult};
use plan::{model_request, plan_seat, turn_query, work_to_review, PromptExtras, SeatPlan};
use settings::TurnSettings;
use shape::Shape;
use std::collections::HashMap;
use std::sync::Arc;
use steps::{End, StepLimits, Stepper, Steps};

/// What a dispatched issue gave (carried from a fleet worker to the run as JSON).
#[derive(Debug, Clone, serde::Serialize, serde::Deserialize)]
pub(crate) enum TurnOutcome {
    /// Something was committed.
    Committed {
        /// A model turn was recorded (not just a routing failure).
        turn: bool,
        /// Anything changed: a status, a file, a comment, a new issue.
        progress: bool,
        /// The run must stop (catastrophic failure, or a violation under halt_on_violation).
        stop_run: Option<String>,
    },
    /// The issue was no longer workable when its turn came.
    Skipped,
}

/// Runs one turn of `issue` (as the tick saw it) and commits it; `snapshot` holds the build's
/// statuses at the start of the tick (the gate checks dependencies and lead moves against it).
pub(crate) async fn run_turn(
    ctx: &RunCtx,
    issue: &IssueRecord,
    snapshot: Arc<HashMap<String, Status>>,
) -> StoreResult<TurnOutcome> {
    let store = ctx.recorder.store();
    let query = turn_query(&ctx.run_id, issue, ctx.options.context_window);
    let inputs = store.turn_inputs(&query).await?;
    let Some(issue) = inputs.issue.clone().filter(|i| {
        matches!(
            i.status,
            Status::Ready | Status::InProgress | Status::CodeReview
        )
    }) else {
        return Ok(TurnOutcome::Skipped);
    };
    let review = issue.status == Status::CodeReview;
    let mut effects = TurnEffects::new(&ctx.run_id, &ctx.build_id, snapshot);

    // Plan: who acts, with which model and tools.
    let plan = match plan_seat(
        &ctx.assets,
        &ctx.options.provider,
        ctx.options.model.as_deref(),
        &issue,
        review,
    ) {
        Ok(plan) => plan,
        Err(reason) => {
            failure::routing_failure(&issue, &reason, &mut effects);
            let outcome = TurnOutcome::Committed {
                turn: false,
                progress: true,
                stop_run: None,
            };
            return ctx.commit_turn(effects.into_changes(), outcome).await;
        }
    };
    let seq = ctx.next_seq();
    let started_at = orket_store::now_timestamp();
    announce(&mut effects, &plan, &issue, seq, review);

    // Verify: a review runs the issue's fixture before the model sees anything.
    let verdict = if review && has_fixture(&issue.verification) {
        Some(
            verification::verify(
                ctx.workspace.root(),
                &issue,
                plan.primary(),
                ctx.options.verify,
                &mut effects,
            )
            .await,
        )
    } else {
        None
    };
    let summary = verdict.as_ref().map(|v| v.summary());

    // Prompt, then the steps.
    let settings = TurnSettings::resolve(&ctx.assets, &ctx.options, &plan.model, &plan.served);
    let work = review
        .then(|| {
            work_to_review(
                ctx.assets.issue_files(&issue.id),
                &inputs.history,
                &ctx.workspace,
            )
        })
        .flatten();
    let extras = PromptExtras {
        verification: summary.as_deref(),
        work: work.as_deref(),
        constrained: plan.served.provider.constrains_replies(),
    };
    let (request, brief) = model_request(&ctx.assets, &plan, &issue, &inputs, &settings, &extras);
    let row = TurnRow {
        ctx,
        plan: &plan,
        issue_id: &issue.id,
        seq,
        review,
        request: &request,
        settings: &settings,
        started_at,
    };
    let before = effects.mark();
    if !review {
        take_issue(ctx, &issue, &plan, &mut effects);
    }
    let failed_verification = verdict.as_ref().filter(|v| !v.ok).and(summary.as_deref());
    let seed = |step: u32| settings.seed_for(seq, 1, step);
    let stepper = Stepper {
        ctx,
        provider: &plan.served.provider,
        seq,
        request: request.clone(),
        brief: &brief,
        shape: Shape {
            issue_id: &issue.id,
            review,
            roles: &plan.role_names,
            offered: plan.tools.offered(),
            from: plan.working_status,
            retried: issue.retry_count > 0,
            files: ctx.assets.issue_files(&issue.id),
            max_text: settings
                .max_tokens
                .map(|t| t.saturating_mul(shape::TEXT_CHARS_PER_TOKEN)),
            content_apart: settings.file_content == FileContent::Block,
        },
        rules: Rules {
            issue_id: &issue.id,
            roles: &plan.role_names,
            tools: &plan.tools,
            seat: &plan.seat.key,
            seat_name: &plan.seat.name,
            workspace: &ctx.workspace,
            idesign: ctx.assets.epic.idesign,
            approval_required: &ctx.approval_required,
            working_status: plan.working_status,
            failed_verification,
        },
        executor: Executor {
            files: &ctx.files,
            issues: &StoreIssues(store.as_ref()),
            runtime: ctx.assets.policies.execution_runtime.as_ref(),
        },
        limits: StepLimits {
            steps: settings.steps,
            corrections: settings.corrections,
        },
        seed: &seed,
        candidate: None,
        strict: ctx.halt_on_violation,
    };
    let draws = !review && has_fixture(&issue.verification) && settings.candidates > 1;
    let drawn = if draws {
        let seed = |n: u32, step: u32| settings.seed_for(seq, n, step);
        candidates::draw(ctx, &issue, &stepper, settings.candidates, &seed, &effects).await?
    } else {
        None
    };
    let steps = match drawn {
        Some(drawn) => {
            effects = drawn.effects;
            drawn.steps
        }
        None => stepper.run(&mut effects).await?,
    };
    if let End::ModelFailed(message) = &steps.end {
        if !steps.answered() {
            // The turn never started: the issue keeps its status; the failed row and the
            // model's retries are kept.
            effects.rewind(before);
            effects.events.extend(steps.retries.iter().cloned());
            effects.changes.push(row.failed(message, &steps));
            let stuck = Stuck::model(message);
            let stop_run = failure::retry_or_fail(&issue, plan.primary(), &stuck, &mut effects);
            let outcome = TurnOutcome::Committed {
                turn: true,
                progress: true,
                stop_run,
            };
            return ctx.commit_turn(effects.into_changes(), outcome).await;
        }
    }
    effects.events.extend(steps.retries.iter().cloned());
    finish(ctx, &issue, &row, steps, effects).await
}

/// The turn's first events: whom it was dispatched to, that it started.
fn announce(
    effects: &mut TurnEffects,
    plan: &SeatPlan<'_>,
    issue: &IssueRecord,
    seq: i64,
    review: bool,
) {
    let primary = plan.primary().to_string();
    effects.event(
        &primary,
        &issue.id,
        Event::OrchestratorDispatch {
            seat: plan.seat.key.clone(),
            review,
            model: plan.model.clone(),
        },
    );
    effects.event(
        &primary,
        &issue.id,
        Event::TurnStart {
            seq,
            seat: plan.seat.key.clone(),
        },
    );
}

/// Ends a turn whose model answered: a violation blocks the issue; otherwise the evaluator
/// judges the turn, a turn that left its issue where it was goes through the retry path, and
/// everything commits as one batch.
async fn finish(
    ctx: &RunCtx,
    issue: &IssueRecord,
    row: &TurnRow<'_>,
    mut steps: Steps,
    mut effects: TurnEffects,
) -> StoreResult<TurnOutcome> {
    let plan = row.plan;
    let end = std::mem::replace(&mut steps.end, End::Moved);
    let sent_back = matches!(end, End::SentBack);
    let stuck = match end {
        End::Violation(violation) => {
            let stop_run = ctx.halt_on_violation.then(|| {
                format!(
                    "halt_on_violation: {} violated policy ({})",
                    issue.id, violation.refusal
                )
            });
            return governance_failure(ctx, issue, row, &steps, violation, effects, stop_run).await;
        }
        End::Moved | End::SentBack => None,
        End::StepsSpent => Some(Stuck::steps(format!(
            "{} steps spent without moving {}",
            steps.steps.len(),
            issue.id
        ))),
        End::Corrections(why) => Some(Stuck::steps(format!("{why}, with no correction left"))),
        End::ModelFailed(why) => Some(Stuck::model(&why)),
    };
    let mut notes = evaluate(ctx, issue, plan, row.review, &steps, &mut effects);
    let mut stop_run = None;
    if sent_back {
        failure::count_send_back(issue, plan.primary(), &mut effects);
    }
    if let Some(stuck) = stuck.filter(|_| effects.status(&issue.id) == Some(plan.working_status)) {
        notes.push(stuck.error.clone());
        stop_run = failure::retry_or_fail(issue, plan.primary(), &stuck, &mut effects);
    }
    effects.changes.push(row.complete(&steps, &effects.results));
    let status = effects.status(&issue.id);
    effects.event(
        plan.primary(),
        &issue.id,
        Event::TurnComplete {
            seq: row.seq,
            calls: steps.steps.iter().filter(|s| s.call.is_some()).count(),
            status,
            tokens_in: steps.tokens_in,
            tokens_out: steps.tokens_out,
            notes,
        },
    );
    let outcome = TurnOutcome::Committed {
        turn: true,
        progress: effects.progress,
        stop_run,
    };
    ctx.commit_turn(effects.into_changes(), outcome).await
}

/// A developer turn takes the issue: assigned to the seat, in this run, `in_progress`.
fn take_issue(ctx: &RunCtx, issue: &IssueRecord, plan: &SeatPlan<'_>, effects: &mut TurnEffects) {
    let mut start = IssueUpdate::by(ORKET)
        .assignee(plan.seat.name.clone())
        .session_id(ctx.run_id.clone());
    if issue.status == Status::Ready {
        start = start.status(Status::InProgress);
        effects.event(
            ORKET,
            &issue.id,
            Event::StatusChange {
                from: Some(Status::Ready),
                to: Status::InProgress,
                wait_reason: None,
            },
        );
        effects.progress = true;
    }
    effects.update(&issue.id, start);
    effects.set_status(&issue.id, Status::InProgress);
}

/// The evaluator's judgement of a turn that went through: a developer turn that wrote files
/// but did not hand over is promoted; a decision is remembered. Returns the turn's notes.
fn evaluate(
    ctx: &RunCtx,
    issue: &IssueRecord,
    plan: &SeatPlan<'_>,
    review: bool,
    steps: &Steps,
    effects: &mut TurnEffects,
) -> Vec<String> {
    let mut notes = Vec::new();
    let called = steps.steps.iter().any(|s| s.call.is_some());
    if !called {
        notes.push("no step made a tool call".to_string());
    }
    let reply = steps.replies.join("\n");
    let status_now = effects.status(&issue.id).unwrap_or(plan.working_status);
    let evaluation = ctx.assets.policies.evaluator.evaluate(&TurnReport {
        review,
        status: status_now,
        wrote_files: effects.wrote_files,
        reply: &reply,
        roles: &plan.roles,
    });
    if evaluation.promote {
        effects.move_issue(&issue.id, Status::CodeReview, None, ORKET);
        effects.comment(
            &issue.id,
            ORKET,
            "Promoted to code_review: the turn wrote files without moving the issue.",
        );
    }
    if evaluation.remember {
        effects.changes.push(Change::Remember {
            content: format!(
                "{} ({}): {}",
                issue.name,
                plan.primary(),
                reply.chars().take(500).collect::<String>()
            ),
            role: Some(plan.primary().to_string()),
            issue_id: Some(issue.id.clone()),
            run_id: Some(ctx.run_id.clone()),
        });
    }
    notes
}

/// A violation: the issue is blocked, the report written, the turn committed.
async fn governance_failure(
    ctx: &RunCtx,
    issue: &IssueRecord,
    row: &TurnRow<'_>,
    steps: &Steps,
    violation: Violation,
    mut effects: TurnEffects,
    stop_run: Option<String>,
) -> StoreResult<TurnOutcome> {
    effects
        .changes
        .push(row.violation(steps, &effects.results, &violation));
    let who = Offender {
        run_id: &ctx.run_id,
        role: row.plan.primary(),
        seat: &row.plan.seat.key,
        seq: row.seq,
    };
    failure::governance_failure(ctx.workspace.root(), issue, &who, violation, &mut effects);
    let outcome = TurnOutcome::Committed {
        turn: true,
        progress: true,
        stop_run,
    };
    ctx.commit_turn(effects.into_changes(), outcome).await
}

/// The turn row's fixed part; each ending adds what the steps and the tools gave.
struct TurnRow<'a> {
    ctx: &'a RunCtx,
    plan: &'a SeatPlan<'a>,
    issue_id: &'a str,
    seq: i64,
    review: bool,
    request: &'a ModelRequest,
    settings: &'a TurnSettings,
    started_at: String,
}

impl TurnRow<'_> {
    fn row(
        &self,
        steps: &Steps,
        results: &[ToolResult],
        status: &str,
        error: Option<String>,
    ) -> Change {
        Change::AppendTurn(NewTurn {
            run_id: self.ctx.run_id.clone(),
            seq: self.seq,
            build_id: self.ctx.build_id.clone(),
            issue_id: self.issue_id.to_string(),
            seat: self.plan.seat.key.clone(),
            role: self.plan.primary().to_string(),
            model: self.plan.model.clone(),
            review: self.review,
            messages: serde_json::to_value(&self.request.messages)
                .unwrap_or(serde_json::Value::Null),
            content: steps.replies.join("\n"),
            tool_calls: steps.steps.iter().filter_map(|s| s.call.clone()).collect(),
            tool_results: results.to_vec(),
            tokens_in: steps.tokens_in as i64,
            tokens_out: steps.tokens_out as i64,
            status: status.to_string(),
            error,
            started_at: self.started_at.clone(),
            ended_at: orket_store::now_timestamp(),
            steps: steps.steps.clone(),
            candidates: steps.candidates.clone(),
            settings: serde_json::to_value(self.settings).ok(),
        })
    }

    fn failed(&self, message: &str, steps: &Steps) -> Change {
        self.row(steps, &[], "failed", Some(message.to_string()))
    }

    fn complete(&self, steps: &Steps, results: &[ToolResult]) -> Change {
        self.row(steps, results, "complete", None)
    }

    fn violation(&self, steps: &Steps, results: &[ToolResult], violation: &Violation) -> Change {
        self.row(
            steps,
            results,
            "violation",
            Some(violation.refusal.to_string()),
        )
    }
}
