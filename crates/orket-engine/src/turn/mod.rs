//! One issue's turn, as stages: read (the turn's inputs, one store unit) → plan
//! (route, seat, roles, model, tools: [`plan`]) → verify (a review runs the fixture first:
//! [`verification`]) → prompt ([`plan::model_request`]) → model call (retried by
//! `orket_llm::Retrying`) → act (per call: gate, approval, execute: [`act`], [`execute`]) →
//! evaluate (policy) → commit. Everything the turn did — dispatch and start events, the
//! verification result, the issue's move to `in_progress`, its tool results and status
//! changes, comments, new issues, the turn row — is collected in [`effects::TurnEffects`] and
//! committed as one batch, so a turn is in the store whole or not at all.

pub(crate) mod act;
pub(crate) mod effects;
pub(crate) mod execute;
mod failure;
pub(crate) mod plan;
mod verification;

use crate::policy::TurnReport;
use crate::run::RunCtx;
use act::{act, Rules, Violation, ORKET};
use effects::TurnEffects;
use execute::{Executor, StoreIssues};
use failure::Offender;
use orket_core::{Event, Status, ToolCall};
use orket_isolate::verify::has_fixture;
use orket_llm::{parse_tool_calls, ModelReply, ModelRequest, Provider, ProviderError, Retrying};
use orket_store::{Change, IssueRecord, IssueUpdate, NewEvent, NewTurn, StoreResult};
use plan::{model_request, plan_seat, turn_query, SeatPlan};
use std::collections::HashMap;
use std::sync::atomic::Ordering;
use std::sync::{Arc, Mutex};

/// What a dispatched issue gave.
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
    let plan = match plan_seat(&ctx.assets, ctx.options.model.as_deref(), &issue, review) {
        Ok(plan) => plan,
        Err(reason) => {
            failure::routing_failure(&issue, &reason, &mut effects);
            ctx.commit(effects.into_changes()).await?;
            return Ok(TurnOutcome::Committed {
                turn: false,
                progress: true,
                stop_run: None,
            });
        }
    };
    let primary = plan.primary().to_string();
    let seq = ctx.next_seq();
    let started_at = orket_store::now_timestamp();
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

    // Verify: a review runs the issue's fixture before the model sees anything.
    let verdict = if review && has_fixture(&issue.verification) {
        Some(
            verification::verify(
                ctx.workspace.root(),
                &issue,
                &primary,
                ctx.options.verify,
                &mut effects,
            )
            .await,
        )
    } else {
        None
    };
    let summary = verdict.as_ref().map(|v| v.summary());

    // Prompt, then the model.
    let request = model_request(&ctx.assets, &plan, &issue, &inputs, summary.as_deref());
    let row = TurnRow {
        ctx,
        plan: &plan,
        issue_id: &issue.id,
        seq,
        review,
        request: &request,
        started_at,
    };
    let (reply, retries) = call_model(ctx, &request).await;
    effects.events.extend(retries);
    let reply = match reply {
        Ok(reply) => reply,
        Err(err) => {
            let message = err.to_string();
            // The turn never started: the issue keeps its status, only the failed row is kept.
            effects.changes.push(row.failed(&message));
            let stop_run = failure::retry_or_fail(&issue, &primary, &message, review, &mut effects);
            ctx.commit(effects.into_changes()).await?;
            return Ok(TurnOutcome::Committed {
                turn: true,
                progress: true,
                stop_run,
            });
        }
    };
    ctx.tokens
        .fetch_add(reply.tokens_in + reply.tokens_out, Ordering::SeqCst);

    // Act: the reply's calls through the gate and the executor.
    if !review {
        take_issue(ctx, &issue, &plan, &mut effects);
    }
    let calls = parse_tool_calls(&reply.content);
    let failed_verification = verdict.as_ref().filter(|v| !v.ok).and(summary.as_deref());
    let rules = Rules {
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
    };
    let executor = Executor {
        files: &ctx.files,
        issues: &StoreIssues(store.as_ref()),
        runtime: ctx.assets.policies.execution_runtime.as_ref(),
    };
    let violation = act(&rules, &executor, &mut effects, &calls).await?;
    if let Some(violation) = violation {
        let stop_run = ctx.halt_on_violation.then(|| {
            format!(
                "halt_on_violation: {} violated policy ({})",
                issue.id, violation.refusal
            )
        });
        return governance_failure(
            ctx, &issue, &row, &reply, &calls, violation, effects, stop_run,
        )
        .await;
    }

    // Evaluate, then commit everything as one batch.
    let notes = evaluate(ctx, &issue, &plan, review, &reply, &calls, &mut effects);
    effects
        .changes
        .push(row.complete(&reply, &calls, &effects.results));
    let status = effects.status(&issue.id);
    effects.event(
        &primary,
        &issue.id,
        Event::TurnComplete {
            seq,
            calls: calls.len(),
            status,
            tokens_in: reply.tokens_in,
            tokens_out: reply.tokens_out,
            notes,
        },
    );
    let progress = effects.progress;
    ctx.commit(effects.into_changes()).await?;
    Ok(TurnOutcome::Committed {
        turn: true,
        progress,
        stop_run: None,
    })
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
    reply: &ModelReply,
    calls: &[ToolCall],
    effects: &mut TurnEffects,
) -> Vec<String> {
    let mut notes = Vec::new();
    if calls.is_empty() {
        notes.push("the reply had no tool call".to_string());
    }
    let status_now = effects.status(&issue.id).unwrap_or(plan.working_status);
    let evaluation = ctx.assets.policies.evaluator.evaluate(&TurnReport {
        review,
        status: status_now,
        wrote_files: effects.wrote_files,
        reply: &reply.content,
        roles: &plan.roles,
    });
    if evaluation.promote {
        effects.move_issue(&issue.id, Status::CodeReview, None, ORKET);
        effects.comment(
            &issue.id,
            ORKET,
            "Promoted to code_review: the turn wrote files without moving the issue.",
        );
    } else if !review && status_now == Status::InProgress && !calls.is_empty() {
        notes.push("the issue stays in_progress".to_string());
    }
    if evaluation.remember {
        effects.changes.push(Change::Remember {
            content: format!(
                "{} ({}): {}",
                issue.name,
                plan.primary(),
                reply.content.chars().take(500).collect::<String>()
            ),
            role: Some(plan.primary().to_string()),
            issue_id: Some(issue.id.clone()),
            run_id: Some(ctx.run_id.clone()),
        });
    }
    notes
}

/// A violation: the issue is blocked, the report written, the turn committed.
#[allow(clippy::too_many_arguments)]
async fn governance_failure(
    ctx: &RunCtx,
    issue: &IssueRecord,
    row: &TurnRow<'_>,
    reply: &ModelReply,
    calls: &[ToolCall],
    violation: Violation,
    mut effects: TurnEffects,
    stop_run: Option<String>,
) -> StoreResult<TurnOutcome> {
    effects
        .changes
        .push(row.violation(reply, calls, &effects.results, &violation));
    let who = Offender {
        run_id: &ctx.run_id,
        role: row.plan.primary(),
        seat: &row.plan.seat.key,
        seq: row.seq,
    };
    failure::governance_failure(ctx.workspace.root(), issue, &who, violation, &mut effects);
    ctx.commit(effects.into_changes()).await?;
    Ok(TurnOutcome::Committed {
        turn: true,
        progress: true,
        stop_run,
    })
}

/// Calls the model through [`Retrying`]: timeouts and connection errors are retried, and each
/// retry becomes a `model_timeout_retry` / `model_connection_retry` event of the turn.
async fn call_model(
    ctx: &RunCtx,
    request: &ModelRequest,
) -> (Result<ModelReply, ProviderError>, Vec<NewEvent>) {
    let retries = Arc::new(Mutex::new(Vec::new()));
    let seen = Arc::clone(&retries);
    let run_id = ctx.run_id.clone();
    let provider = Retrying::new(Arc::clone(&ctx.options.provider), ctx.options.retry).on_retry(
        move |notice| {
            let error = notice.error.to_string();
            let attempt = notice.attempt;
            let event = match notice.error {
                ProviderError::Timeout { .. } => Event::ModelTimeoutRetry { attempt, error },
                _ => Event::ModelConnectionRetry { attempt, error },
            };
            let event = NewEvent::new(Some(&run_id), event)
                .role(notice.request.role.clone())
                .issue(notice.request.issue_id.clone());
            if let Ok(mut events) = seen.lock() {
                events.push(event);
            }
        },
    );
    let reply = provider.complete(request).await;
    let events = std::mem::take(&mut *retries.lock().unwrap_or_else(|e| e.into_inner()));
    (reply, events)
}

/// The turn row's fixed part; each ending adds what the model and the tools gave.
struct TurnRow<'a> {
    ctx: &'a RunCtx,
    plan: &'a SeatPlan<'a>,
    issue_id: &'a str,
    seq: i64,
    review: bool,
    request: &'a ModelRequest,
    started_at: String,
}

impl TurnRow<'_> {
    fn row(
        &self,
        reply: Option<&ModelReply>,
        calls: &[ToolCall],
        results: &[orket_core::tools::ToolResult],
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
            content: reply.map(|r| r.content.clone()).unwrap_or_default(),
            tool_calls: calls.to_vec(),
            tool_results: results.to_vec(),
            tokens_in: reply.map_or(0, |r| r.tokens_in as i64),
            tokens_out: reply.map_or(0, |r| r.tokens_out as i64),
            status: status.to_string(),
            error,
            started_at: self.started_at.clone(),
            ended_at: orket_store::now_timestamp(),
        })
    }

    fn failed(&self, message: &str) -> Change {
        self.row(None, &[], &[], "failed", Some(message.to_string()))
    }

    fn complete(
        &self,
        reply: &ModelReply,
        calls: &[ToolCall],
        results: &[orket_core::tools::ToolResult],
    ) -> Change {
        self.row(Some(reply), calls, results, "complete", None)
    }

    fn violation(
        &self,
        reply: &ModelReply,
        calls: &[ToolCall],
        results: &[orket_core::tools::ToolResult],
        violation: &Violation,
    ) -> Change {
        self.row(
            Some(reply),
            calls,
            results,
            "violation",
            Some(violation.refusal.to_string()),
        )
    }
}
