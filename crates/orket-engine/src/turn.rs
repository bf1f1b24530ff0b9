//! One issue's turn (SPEC §6): route to a seat, compile the prompt, call the model (with
//! retries), parse the tool calls, gate and execute each, evaluate, and commit the turn, its
//! tool results, status changes and events as one transaction.

use crate::engine::{event, Engine, EngineError, RunCtx};
use crate::policy::TurnReport;
use crate::turn_prompt::{compile_turn_prompt, plan_seat, prompt_context, SeatPlan};
use orket_core::lifecycle::allowed_targets;
use orket_core::priority::parse_priority;
use orket_core::tools::{Tool, ToolKind, ToolResult};
use orket_core::{CardKind, Status, ToolCall, WaitReason};
use orket_governance::gate::{self, Checked, Decision, GateContext, Refusal, RefusalCode};
use orket_isolate::verify::{self, VerificationResult};
use orket_llm::{
    parse_tool_calls, turn_schema, ChatMessage, ModelRequest, Provider, ProviderError, Retrying,
};
use orket_store::events::names;
use orket_store::{Change, IssueRecord, IssueUpdate, NewApproval, NewEvent, NewTurn};
use serde_json::{json, Value};
use std::collections::HashMap;
use std::sync::atomic::Ordering;
use std::sync::{Arc, Mutex};
use std::time::Duration;

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

pub(crate) struct TurnState {
    /// The build's statuses when the tick began.
    snapshot: Arc<HashMap<String, Status>>,
    /// The statuses this turn changed (and issues it created).
    statuses: Arc<Mutex<HashMap<String, Status>>>,
    pub(crate) changes: Vec<Change>,
    pub(crate) events: Vec<orket_store::NewEvent>,
    results: Vec<ToolResult>,
    wrote_files: bool,
    progress: bool,
}

impl TurnState {
    pub(crate) fn new(snapshot: Arc<HashMap<String, Status>>) -> Self {
        TurnState {
            snapshot,
            statuses: Arc::new(Mutex::new(HashMap::new())),
            changes: Vec::new(),
            events: Vec::new(),
            results: Vec::new(),
            wrote_files: false,
            progress: false,
        }
    }

    pub(crate) fn status(&self, id: &str) -> Option<Status> {
        status_in(&self.statuses, &self.snapshot, id)
    }

    pub(crate) fn set_status(&self, id: &str, status: Status) {
        if let Ok(mut m) = self.statuses.lock() {
            m.insert(id.to_string(), status);
        }
    }
}

/// The status of an issue: as changed by this turn, else as it was when the tick began.
fn status_in(
    changed: &Mutex<HashMap<String, Status>>,
    snapshot: &HashMap<String, Status>,
    id: &str,
) -> Option<Status> {
    changed
        .lock()
        .ok()
        .and_then(|m| m.get(id).copied())
        .or_else(|| snapshot.get(id).copied())
}

/// Runs one turn of `issue_id` and commits it; `snapshot` holds the build's statuses at the
/// start of the tick (the gate checks dependencies and lead moves against it).
pub(crate) async fn run_turn(
    engine: &Engine,
    ctx: &RunCtx,
    issue_id: &str,
    snapshot: Arc<HashMap<String, Status>>,
) -> Result<TurnOutcome, EngineError> {
    let store = engine.store();
    let Some(issue) = store.get_issue(&ctx.build_id, issue_id).await? else {
        return Ok(TurnOutcome::Skipped);
    };
    if !matches!(
        issue.status,
        Status::Ready | Status::InProgress | Status::CodeReview
    ) {
        return Ok(TurnOutcome::Skipped);
    }
    let review = issue.status == Status::CodeReview;

    // Routing, roles, model, dialect and tools (shared with `preview`).
    let plan = match plan_seat(
        &ctx.assets,
        engine.options().model.as_deref(),
        &issue,
        review,
    ) {
        Ok(plan) => plan,
        Err(reason) => return fail_issue(engine, ctx, &issue, &reason).await,
    };
    let SeatPlan {
        seat,
        ref role_names,
        ref roles,
        ref model,
        ref tools,
        working_status,
        ..
    } = plan;
    let (model, tools) = (model.clone(), tools.clone());
    let primary = plan.primary().to_string();

    // A review runs the issue's verification fixture first (SPEC §9).
    let verdict = if review && verify::has_fixture(&issue.verification) {
        Some(run_verification(engine, ctx, &issue, &primary).await?)
    } else {
        None
    };
    let verdict_summary = verdict.as_ref().map(|v| v.summary());
    let failed_verification = verdict
        .as_ref()
        .filter(|v| !v.ok)
        .and(verdict_summary.as_deref());

    let (recent, memory) = prompt_context(store.as_ref(), &issue).await?;
    let prompt = compile_turn_prompt(
        &ctx.assets,
        &plan,
        &issue,
        &recent,
        &memory,
        verdict_summary.as_deref(),
    );
    let mut messages = vec![
        ChatMessage::system(prompt.system),
        ChatMessage::user(prompt.user),
    ];
    let window = i64::try_from(engine.options().context_window).unwrap_or(i64::MAX);
    for t in store
        .recent_issue_turns(&ctx.run_id, issue_id, window)
        .await?
    {
        messages.push(ChatMessage::assistant(t.turn.content.clone()));
        messages.push(ChatMessage::user(format!(
            "Tool results: {}",
            t.turn.tool_results
        )));
    }

    let reachable = allowed_targets(CardKind::Issue, working_status);
    let request = ModelRequest {
        model: model.clone(),
        messages: messages.clone(),
        temperature: ctx.assets.env.temperature,
        seed: ctx.assets.env.seed,
        timeout: Duration::from_secs(ctx.assets.env.timeout),
        max_tokens: ctx
            .assets
            .env
            .params
            .get("max_tokens")
            .and_then(Value::as_u64)
            .map(|n| n as u32),
        tool_schema: Some(turn_schema(&tools.offered(), reachable)),
        issue_id: issue_id.to_string(),
        role: primary.clone(),
    };
    let seq = ctx.seq.fetch_add(1, Ordering::SeqCst) + 1;
    let started_at = orket_store::now_timestamp();
    engine
        .commit_events(
            ctx,
            vec![
                event(
                    ctx,
                    names::ORCHESTRATOR_DISPATCH,
                    Some(&primary),
                    Some(issue_id),
                    json!({"seat": seat.key, "review": review, "model": model}),
                ),
                event(
                    ctx,
                    names::TURN_START,
                    Some(&primary),
                    Some(issue_id),
                    json!({"seq": seq, "seat": seat.key}),
                ),
            ],
        )
        .await?;

    let turn_row = |content: String,
                    calls: Value,
                    results: Value,
                    tokens: (u64, u64),
                    status: &str,
                    error: Option<String>| NewTurn {
        run_id: ctx.run_id.clone(),
        seq,
        build_id: ctx.build_id.clone(),
        issue_id: issue_id.to_string(),
        seat: seat.key.clone(),
        role: primary.clone(),
        model: model.clone(),
        review,
        messages: serde_json::to_value(&messages).unwrap_or(Value::Null),
        content,
        tool_calls: calls,
        tool_results: results,
        tokens_in: tokens.0 as i64,
        tokens_out: tokens.1 as i64,
        status: status.to_string(),
        error,
        started_at: started_at.clone(),
        ended_at: orket_store::now_timestamp(),
    };

    // The model call, retried on timeouts and connection errors.
    let (reply, retries) = call_model(engine, ctx, &request).await;
    let reply = match reply {
        Ok(reply) => reply,
        Err(err) => {
            let message = err.to_string();
            // The turn never started: the issue keeps its status, only the failed row is kept.
            let mut state = TurnState::new(Arc::clone(&snapshot));
            state.events.extend(retries);
            state.changes.push(Change::AppendTurn(turn_row(
                String::new(),
                json!([]),
                json!([]),
                (0, 0),
                "failed",
                Some(message.clone()),
            )));
            return retry_or_fail(engine, ctx, &issue, &primary, state, &message, review).await;
        }
    };

    ctx.tokens
        .fetch_add(reply.tokens_in + reply.tokens_out, Ordering::SeqCst);

    // The turn happened: a developer turn takes the issue in progress, in the same batch.
    let mut state = TurnState::new(Arc::clone(&snapshot));
    state.events.extend(retries);
    if !review {
        let mut start = IssueUpdate::by("orket")
            .assignee(seat.name.clone())
            .session_id(ctx.run_id.clone());
        if issue.status == Status::Ready {
            start = start.status(Status::InProgress);
            state.events.push(event(
                ctx,
                "status_change",
                Some("orket"),
                Some(issue_id),
                json!({"from": Status::Ready, "to": Status::InProgress}),
            ));
            state.progress = true;
        }
        state.changes.push(Change::UpdateIssue {
            build_id: ctx.build_id.clone(),
            id: issue_id.to_string(),
            update: start,
        });
        state.set_status(issue_id, Status::InProgress);
    }

    // Tool calls: gate, then execute, one by one; the first refusal or failed tool stops.
    let calls = parse_tool_calls(&reply.content);
    let mut violation: Option<(Refusal, Option<ToolCall>)> = None;
    if let Err(refusal) = gate::check_budget(&calls) {
        violation = Some((refusal, None));
    } else {
        let (statuses, snapshot) = (Arc::clone(&state.statuses), Arc::clone(&state.snapshot));
        let status_of = move |id: &str| status_in(&statuses, &snapshot, id);
        for call in &calls {
            let gate_ctx = GateContext {
                issue_id,
                roles: role_names,
                allowed_tools: &tools,
                workspace: &ctx.workspace,
                idesign: ctx.assets.epic.idesign,
                approval_required: &ctx.approval_required,
                status_of: &status_of,
            };
            let decision = gate::check_call(&gate_ctx, call).and_then(|d| {
                gate::check_verified_done(call, issue_id, failed_verification).map(|()| d)
            });
            let tool = match decision {
                Err(refusal) if refusal.code == RefusalCode::VerificationFailed => {
                    // Not a breach of policy but unfinished work: the review sends the issue
                    // back to its developer with the failures, the turn's other effects stand.
                    state
                        .results
                        .push(ToolResult::refused(refusal.code, refusal.to_string()));
                    move_issue(
                        &mut state,
                        ctx,
                        issue_id,
                        Status::InProgress,
                        None,
                        &primary,
                    );
                    comment(
                        &mut state,
                        ctx,
                        issue_id,
                        "orket",
                        &format!("{refusal} Sent back to the developer."),
                    );
                    state.events.push(event(
                        ctx,
                        names::DONE_REFUSED,
                        Some(&primary),
                        Some(issue_id),
                        json!({"code": refusal.code, "message": refusal.message}),
                    ));
                    break;
                }
                Err(refusal) => {
                    state
                        .results
                        .push(ToolResult::refused(refusal.code, refusal.to_string()));
                    violation = Some((refusal, Some(call.clone())));
                    break;
                }
                Ok(Checked {
                    decision: Decision::NeedsApproval,
                    ..
                }) => {
                    let message = format!(
                        "{} needs a person's approval (process_rules.approval_required); the issue waits for it",
                        call.name
                    );
                    state.results.push(ToolResult::refused(
                        RefusalCode::ApprovalRequired,
                        format!("APPROVAL_REQUIRED: {message}"),
                    ));
                    move_issue(
                        &mut state,
                        ctx,
                        issue_id,
                        Status::WaitingForDeveloper,
                        Some(WaitReason::Input),
                        "orket",
                    );
                    comment(&mut state, ctx, issue_id, "orket", &message);
                    state.changes.push(Change::RequestApproval(NewApproval {
                        run_id: ctx.run_id.clone(),
                        build_id: ctx.build_id.clone(),
                        issue_id: issue_id.to_string(),
                        role: primary.clone(),
                        seat: seat.key.clone(),
                        tool: call.name.clone(),
                        args: Value::Object(call.args.clone()),
                        resume_status: working_status,
                    }));
                    state.events.push(event(
                        ctx,
                        names::APPROVAL_REQUESTED,
                        Some(&primary),
                        Some(issue_id),
                        json!({"tool": call.name, "args": call.args}),
                    ));
                    break;
                }
                Ok(Checked {
                    tool,
                    decision: Decision::Allow,
                }) => tool,
            };
            let result = execute(
                engine, ctx, &mut state, tool, call, issue_id, &primary, &seat.name,
            )
            .await?;
            let failed = !result.is_ok() && tool.spec().kind != ToolKind::Unavailable;
            state.results.push(result.clone());
            if failed {
                let message = result.error().unwrap_or("the tool failed").to_string();
                let message = if message.starts_with(&format!("{}:", call.name)) {
                    message
                } else {
                    format!("{}: {message}", call.name)
                };
                violation = Some((
                    Refusal::new(RefusalCode::ToolFailed, message),
                    Some(call.clone()),
                ));
                break;
            }
        }
    }
    let calls_json = serde_json::to_value(&calls).unwrap_or(Value::Null);
    let results_json = serde_json::to_value(&state.results).unwrap_or(Value::Null);

    if let Some((refusal, call)) = violation {
        state.changes.push(Change::AppendTurn(turn_row(
            reply.content.clone(),
            calls_json,
            results_json,
            (reply.tokens_in, reply.tokens_out),
            "violation",
            Some(refusal.to_string()),
        )));
        return governance_failure(
            engine, ctx, &issue, &primary, &seat.key, seq, state, refusal, call,
        )
        .await;
    }

    // Evaluation: a developer turn that wrote files but did not hand over is promoted.
    let mut notes = Vec::new();
    if calls.is_empty() {
        notes.push("the reply had no tool call".to_string());
    }
    let status_now = state.status(issue_id).unwrap_or(working_status);
    let evaluation = ctx.assets.policies.evaluator.evaluate(&TurnReport {
        review,
        status: status_now,
        wrote_files: state.wrote_files,
        reply: &reply.content,
        roles,
    });
    if evaluation.promote {
        move_issue(&mut state, ctx, issue_id, Status::CodeReview, None, "orket");
        comment(
            &mut state,
            ctx,
            issue_id,
            "orket",
            "Promoted to code_review: the turn wrote files without moving the issue.",
        );
    } else if !review && status_now == Status::InProgress && !calls.is_empty() {
        notes.push("the issue stays in_progress".to_string());
    }
    if evaluation.remember {
        state.changes.push(Change::Remember {
            content: format!(
                "{} ({}): {}",
                issue.name,
                primary,
                truncate(&reply.content, 500)
            ),
            role: Some(primary.clone()),
            issue_id: Some(issue_id.to_string()),
            run_id: Some(ctx.run_id.clone()),
        });
    }
    state.changes.push(Change::AppendTurn(turn_row(
        reply.content.clone(),
        calls_json,
        results_json,
        (reply.tokens_in, reply.tokens_out),
        "complete",
        None,
    )));
    let final_status = state.status(issue_id);
    state.events.push(event(
        ctx,
        names::TURN_COMPLETE,
        Some(&primary),
        Some(issue_id),
        json!({"seq": seq, "calls": calls.len(), "status": final_status, "tokens_in": reply.tokens_in, "tokens_out": reply.tokens_out, "notes": notes}),
    ));
    let progress = state.progress;
    commit_state(engine, ctx, state).await?;
    Ok(TurnOutcome::Committed {
        turn: true,
        progress,
        stop_run: None,
    })
}

/// Runs the issue's fixture off the executor's threads and commits what it found: the result
/// as `verification.last_run`, a comment for the reviewer, and the events
/// (`verification_started`, `verification_completed`, `security_violation` for a fixture
/// outside `verification/`).
async fn run_verification(
    engine: &Engine,
    ctx: &RunCtx,
    issue: &IssueRecord,
    role: &str,
) -> Result<VerificationResult, EngineError> {
    let fixture = issue.verification["fixture_path"].clone();
    engine
        .commit_events(
            ctx,
            vec![event(
                ctx,
                names::VERIFICATION_STARTED,
                Some(role),
                Some(&issue.id),
                json!({"fixture_path": fixture, "limits": engine.options().verify}),
            )],
        )
        .await?;
    let result = verify::run_verification_async(
        ctx.workspace.root().to_path_buf(),
        issue.verification.clone(),
        engine.options().verify,
    )
    .await;
    let mut block = match &issue.verification {
        Value::Object(map) => map.clone(),
        _ => serde_json::Map::new(),
    };
    block.insert(
        "last_run".to_string(),
        serde_json::to_value(&result).unwrap_or(Value::Null),
    );
    let mut changes = vec![
        Change::UpdateIssue {
            build_id: ctx.build_id.clone(),
            id: issue.id.clone(),
            update: IssueUpdate::by("orket").verification(Value::Object(block)),
        },
        Change::AddComment {
            build_id: ctx.build_id.clone(),
            issue_id: issue.id.clone(),
            author: "orket".to_string(),
            content: result.summary(),
        },
    ];
    if result.security_violation {
        changes.push(Change::AppendEvent(event(
            ctx,
            names::SECURITY_VIOLATION,
            Some(role),
            Some(&issue.id),
            json!({"fixture_path": fixture, "error": result.error}),
        )));
    }
    changes.push(Change::AppendEvent(event(
        ctx,
        names::VERIFICATION_COMPLETED,
        Some(role),
        Some(&issue.id),
        json!({
            "fixture_path": fixture,
            "ok": result.ok,
            "passed": result.passed,
            "failed": result.failed,
            "total": result.total,
            "error": result.error,
            "isolation_weaker": result.isolation.as_ref().is_some_and(|i| i.weaker),
            "duration_ms": result.duration_ms,
        }),
    )));
    engine.commit(ctx, changes).await?;
    Ok(result)
}

/// Calls the model through [`Retrying`]: timeouts and connection errors are retried, and each
/// retry becomes a `model_timeout_retry` / `model_connection_retry` event of the turn.
async fn call_model(
    engine: &Engine,
    ctx: &RunCtx,
    request: &ModelRequest,
) -> (Result<orket_llm::ModelReply, ProviderError>, Vec<NewEvent>) {
    let retries = Arc::new(Mutex::new(Vec::new()));
    let seen = Arc::clone(&retries);
    let (run_id, role) = (ctx.run_id.clone(), request.role.clone());
    let provider = Retrying::new(Arc::clone(engine.provider()), engine.options().retry).on_retry(
        move |notice| {
            let name = match notice.error {
                ProviderError::Timeout { .. } => names::MODEL_TIMEOUT_RETRY,
                _ => names::MODEL_CONNECTION_RETRY,
            };
            let event = NewEvent {
                run_id: Some(run_id.clone()),
                role: Some(role.clone()),
                event: name.to_string(),
                issue_id: Some(notice.request.issue_id.clone()),
                data: json!({"attempt": notice.attempt, "error": notice.error.to_string()}),
                timestamp: Some(orket_store::now_timestamp()),
            };
            if let Ok(mut events) = seen.lock() {
                events.push(event);
            }
        },
    );
    let reply = provider.complete(request).await;
    let events = std::mem::take(&mut *retries.lock().unwrap_or_else(|e| e.into_inner()));
    (reply, events)
}

pub(crate) fn move_issue(
    state: &mut TurnState,
    ctx: &RunCtx,
    id: &str,
    to: Status,
    wait_reason: Option<WaitReason>,
    actor: &str,
) {
    let from = state.status(id);
    state.events.push(event(
        ctx,
        "status_change",
        Some(actor),
        Some(id),
        json!({"from": from, "to": to, "wait_reason": wait_reason}),
    ));
    let mut update = IssueUpdate::by(actor).status(to);
    if let Some(w) = wait_reason {
        update = update.wait_reason(w);
    }
    state.changes.push(Change::UpdateIssue {
        build_id: ctx.build_id.clone(),
        id: id.to_string(),
        update,
    });
    state.set_status(id, to);
    state.progress = true;
}

pub(crate) fn comment(state: &mut TurnState, ctx: &RunCtx, id: &str, author: &str, content: &str) {
    state.changes.push(Change::AddComment {
        build_id: ctx.build_id.clone(),
        issue_id: id.to_string(),
        author: author.to_string(),
        content: content.to_string(),
    });
    state.progress = true;
}

/// Executes an allowed call of `tool`: file tools on the workspace, card tools into the turn's
/// batch, recorded tools as events.
#[allow(clippy::too_many_arguments)]
pub(crate) async fn execute(
    engine: &Engine,
    ctx: &RunCtx,
    state: &mut TurnState,
    tool: Tool,
    call: &ToolCall,
    issue_id: &str,
    role: &str,
    seat_name: &str,
) -> Result<ToolResult, EngineError> {
    if let Some(result) = ctx.files.run(tool, call).await {
        if matches!(tool, Tool::WriteFile | Tool::DeleteFile) && result.is_ok() {
            state.wrote_files = true;
            state.progress = true;
        }
        return Ok(result);
    }
    let target = call.issue_or(issue_id).to_string();
    Ok(match tool {
        Tool::UpdateIssueStatus => {
            let status: Status = match call.str_arg("status").unwrap_or_default().parse() {
                Ok(s) => s,
                Err(e) => return Ok(ToolResult::failed(e.to_string())),
            };
            let wait = call.str_arg("wait_reason").and_then(|w| w.parse().ok());
            move_issue(state, ctx, &target, status, wait, role);
            ToolResult::ok(json!({"issue_id": target, "status": status}))
        }
        Tool::AddIssueComment => {
            let text = call.str_arg("comment").unwrap_or_default();
            comment(state, ctx, issue_id, seat_name, text);
            ToolResult::ok(json!({}))
        }
        Tool::GetIssueContext => {
            let found = engine.store().get_issue(&ctx.build_id, &target).await?;
            match found {
                Some(i) => {
                    let comments: Vec<Value> = engine
                        .store()
                        .list_comments(&ctx.build_id, &target)
                        .await?
                        .into_iter()
                        .map(|c| json!({"author": c.author, "comment": c.content}))
                        .collect();
                    ToolResult::ok(
                        json!({"issue_id": i.id, "status": state.status(&target).unwrap_or(i.status), "summary": i.name, "description": i.description, "comments": comments}),
                    )
                }
                None => ToolResult::failed(format!("unknown issue {target}")),
            }
        }
        Tool::CreateIssue => {
            let runtime = &ctx.assets.policies.execution_runtime;
            let mut id = runtime.issue_id();
            while state.status(&id).is_some() {
                id = runtime.issue_id();
            }
            let mut record = IssueRecord::new(
                &ctx.build_id,
                &id,
                call.str_arg("summary").unwrap_or_default(),
                call.str_arg("seat").unwrap_or_default(),
            );
            record.issue_type = call.str_arg("type").unwrap_or("issue").to_string();
            record.priority = parse_priority(call.args.get("priority")).unwrap_or(2.0);
            record.depends_on = match call.args.get("depends_on") {
                Some(Value::String(one)) => vec![one.clone()],
                Some(Value::Array(items)) => items
                    .iter()
                    .filter_map(|v| v.as_str().map(str::to_string))
                    .collect(),
                _ => Vec::new(),
            };
            record.parent_id = Some(issue_id.to_string());
            record.session_id = Some(ctx.run_id.clone());
            state.changes.push(Change::InsertIssue(record));
            state.set_status(&id, Status::Ready);
            state.progress = true;
            ToolResult::ok(json!({"issue_id": id}))
        }
        Tool::RequestExcuse => {
            let reason = call.str_arg("reason").unwrap_or_default();
            move_issue(
                state,
                ctx,
                issue_id,
                Status::WaitingForDeveloper,
                Some(WaitReason::Input),
                role,
            );
            comment(
                state,
                ctx,
                issue_id,
                seat_name,
                &format!("Excuse requested: {reason}"),
            );
            ToolResult::ok(json!({"status": Status::WaitingForDeveloper}))
        }
        Tool::ReportCredits => {
            let amount = call
                .args
                .get("amount")
                .and_then(orket_core::tools::as_number)
                .unwrap_or(0.0);
            state.changes.push(Change::AddCredits {
                build_id: ctx.build_id.clone(),
                id: issue_id.to_string(),
                amount,
                actor: role.to_string(),
            });
            ToolResult::ok(json!({"amount": amount}))
        }
        Tool::ResetIssue => {
            move_issue(state, ctx, &target, Status::Ready, None, role);
            state.changes.push(Change::UpdateIssue {
                build_id: ctx.build_id.clone(),
                id: target.clone(),
                update: IssueUpdate::by(role).retry_count(0u32).clear_wait_reason(),
            });
            ToolResult::ok(json!({"issue_id": target, "status": "ready"}))
        }
        Tool::NominateCard | Tool::RefinementProposal => {
            state.events.push(event(
                ctx,
                tool.name(),
                Some(role),
                Some(issue_id),
                Value::Object(call.args.clone()),
            ));
            ToolResult::ok(json!({"recorded": tool.name()}))
        }
        Tool::ArchiveEval | Tool::PromotePrompt | Tool::ImageAnalyze | Tool::ImageGenerate => {
            ToolResult::failed(format!("{tool} is not available in this build"))
        }
        // Served by the file tools above.
        Tool::ReadFile | Tool::WriteFile | Tool::ListDirectory | Tool::DeleteFile => {
            ToolResult::failed(format!("{tool}: not a card tool"))
        }
    })
}

/// A refused call or a failed tool: the issue is blocked with the reason, a report is written
/// to `<workspace>/agent_output/policy_violation_<issue>.json`, and the turn is committed.
#[allow(clippy::too_many_arguments)]
async fn governance_failure(
    engine: &Engine,
    ctx: &RunCtx,
    issue: &IssueRecord,
    role: &str,
    seat: &str,
    seq: i64,
    mut state: TurnState,
    refusal: Refusal,
    call: Option<ToolCall>,
) -> Result<TurnOutcome, EngineError> {
    let id = issue.id.as_str();
    let report = json!({
        "run_id": ctx.run_id,
        "issue_id": id,
        "seat": seat,
        "role": role,
        "turn": seq,
        "code": refusal.code,
        "message": refusal.message,
        "call": call,
        "timestamp": orket_store::now_timestamp(),
    });
    let dir = ctx.workspace.root().join("agent_output");
    let path = dir.join(format!("policy_violation_{id}.json"));
    let written = std::fs::create_dir_all(&dir).and_then(|_| {
        std::fs::write(
            &path,
            serde_json::to_vec_pretty(&report).unwrap_or_default(),
        )
    });
    move_issue(
        &mut state,
        ctx,
        id,
        Status::Blocked,
        Some(WaitReason::System),
        "orket",
    );
    comment(
        &mut state,
        ctx,
        id,
        "orket",
        &format!("Blocked by the gate: {refusal}"),
    );
    match written {
        Ok(()) => state.events.push(event(
            ctx,
            names::POLICY_VIOLATION_REPORT_SAVED,
            Some(role),
            Some(id),
            json!({"path": path, "code": refusal.code}),
        )),
        Err(e) => tracing::warn!("cannot write {}: {e}", path.display()),
    }
    state.events.push(event(
        ctx,
        names::TURN_FAILED,
        Some(role),
        Some(id),
        json!({"seq": seq, "kind": "governance", "code": refusal.code, "message": refusal.message}),
    ));
    commit_state(engine, ctx, state).await?;
    let stop_run = ctx
        .halt_on_violation
        .then(|| format!("halt_on_violation: {id} violated policy ({refusal})"));
    Ok(TurnOutcome::Committed {
        turn: true,
        progress: true,
        stop_run,
    })
}

/// A failed model call: retry_count + 1 and back to ready, or past max_retries blocked as
/// catastrophic (which fails the run).
async fn retry_or_fail(
    engine: &Engine,
    ctx: &RunCtx,
    issue: &IssueRecord,
    role: &str,
    mut state: TurnState,
    message: &str,
    review: bool,
) -> Result<TurnOutcome, EngineError> {
    let retries = issue.retry_count + 1;
    let id = issue.id.as_str();
    let mut stop_run = None;
    if retries > issue.max_retries {
        state.changes.push(Change::UpdateIssue {
            build_id: ctx.build_id.clone(),
            id: id.to_string(),
            update: IssueUpdate::by("orket")
                .status(Status::Blocked)
                .wait_reason(WaitReason::System)
                .retry_count(retries),
        });
        comment(
            &mut state,
            ctx,
            id,
            "orket",
            &format!(
                "catastrophic: {retries} failed attempts (max_retries {}); last error: {message}",
                issue.max_retries
            ),
        );
        state.events.push(event(
            ctx,
            names::CATASTROPHIC_FAILURE,
            Some(role),
            Some(id),
            json!({"retries": retries, "error": message}),
        ));
        stop_run = Some(format!(
            "{id} failed {retries} times (catastrophic): {message}"
        ));
    } else {
        let back = if review {
            Status::CodeReview
        } else {
            Status::Ready
        };
        state.changes.push(Change::UpdateIssue {
            build_id: ctx.build_id.clone(),
            id: id.to_string(),
            update: IssueUpdate::by("orket").status(back).retry_count(retries),
        });
        state.events.push(event(
            ctx,
            names::RETRY_TRIGGERED,
            Some(role),
            Some(id),
            json!({"retry_count": retries, "max_retries": issue.max_retries, "error": message}),
        ));
    }
    state.events.push(event(
        ctx,
        names::TURN_FAILED,
        Some(role),
        Some(id),
        json!({"kind": "model", "error": message}),
    ));
    commit_state(engine, ctx, state).await?;
    // A retry counts as progress: retry_count moved, and max_retries bounds the repeats.
    Ok(TurnOutcome::Committed {
        turn: true,
        progress: true,
        stop_run,
    })
}

/// An issue that cannot be worked on (unknown seat, missing role or dialect): blocked with
/// the reason as a comment.
async fn fail_issue(
    engine: &Engine,
    ctx: &RunCtx,
    issue: &IssueRecord,
    reason: &str,
) -> Result<TurnOutcome, EngineError> {
    let mut state = TurnState::new(Arc::new(HashMap::from([(issue.id.clone(), issue.status)])));
    move_issue(
        &mut state,
        ctx,
        &issue.id,
        Status::Blocked,
        Some(WaitReason::System),
        "orket",
    );
    comment(&mut state, ctx, &issue.id, "orket", reason);
    state.events.push(event(
        ctx,
        names::TURN_FAILED,
        None,
        Some(&issue.id),
        json!({"kind": "routing", "error": reason}),
    ));
    commit_state(engine, ctx, state).await?;
    Ok(TurnOutcome::Committed {
        turn: false,
        progress: true,
        stop_run: None,
    })
}

pub(crate) async fn commit_state(
    engine: &Engine,
    ctx: &RunCtx,
    state: TurnState,
) -> Result<(), EngineError> {
    let mut changes = state.changes;
    changes.extend(state.events.into_iter().map(Change::AppendEvent));
    engine.commit(ctx, changes).await?;
    Ok(())
}

fn truncate(text: &str, max_chars: usize) -> String {
    text.chars().take(max_chars).collect()
}
