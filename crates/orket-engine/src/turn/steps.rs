//! A turn's steps: a bounded loop of model replies, one tool call each. What a read-only call
//! returns goes back to the model in the next step; the turn ends when the seat moves its
//! issue, when its steps are spent, or when a step goes wrong once more than its corrections
//! allow. Each step's reply is held to what the step may do ([`Shape`]); a step that goes wrong
//! (no call, a refused call, a failed tool, a repeat, a move that is not legal now) is answered
//! with a correction saying what happened and what is legal now.

use crate::run::RunCtx;
use crate::turn::act::{act_one, CallOutcome, Rules, Violation};
use crate::turn::content::{path_without_content, ContentAsk};
use crate::turn::effects::TurnEffects;
use crate::turn::execute::Executor;
use crate::turn::shape::{is_look, Shape, StepState};
use orket_core::events::CorrectionKind;
use orket_core::tools::{Tool, ToolResult};
use orket_core::turn::{Candidate, ChatMessage, TurnStep};
use orket_core::{Event, Status, ToolCall};
use orket_governance::gate::Refusal;
use orket_llm::{parse_tool_calls, ModelReply, ModelRequest, Provider, ProviderError, Retrying};
use orket_store::{NewEvent, StoreResult};
use std::collections::VecDeque;
use std::sync::atomic::Ordering;
use std::sync::{Arc, Mutex};

/// How much of a call's result a step shows the model.
const RESULT_CHARS: usize = 1500;
/// How many of the turn's step messages (replies, results, corrections) a model call is sent
/// besides the turn's first two: the latest, so a long turn fits a small model's context.
const KEPT_STEP_MESSAGES: usize = 6;
/// What a reply that held no tool call is replaced with in the conversation: its text (often a
/// reply cut off at its token budget) would only teach the model to do it again.
const NO_CALL_REPLY: &str = "(a reply with no tool call)";

/// How many steps and corrections a turn has.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub(crate) struct StepLimits {
    /// Steps (model replies' calls) at most.
    pub steps: u32,
    /// Corrections at most; one more problem ends the turn.
    pub corrections: u32,
}

/// How a turn's steps ended.
pub(crate) enum End {
    /// The seat moved its issue (a status change, a wait, a parked call).
    Moved,
    /// A review's `done` was refused because the verification failed: the work went back to
    /// its developer (a failed attempt of the issue).
    SentBack,
    /// The steps were spent without a move.
    StepsSpent,
    /// A step went wrong with no correction left (not a gate refusal): why.
    Corrections(String),
    /// The gate refused a call with no correction left.
    Violation(Violation),
    /// A model call failed (after its retries): why.
    ModelFailed(String),
}

/// What a turn's steps did.
pub(crate) struct Steps {
    /// Every step, in order.
    pub steps: Vec<TurnStep>,
    /// How they ended.
    pub end: End,
    /// The model's replies, in order.
    pub replies: Vec<String>,
    /// Prompt tokens of all model calls.
    pub tokens_in: u64,
    /// Reply tokens of all model calls.
    pub tokens_out: u64,
    /// The retry events of the model calls.
    pub retries: Vec<NewEvent>,
    /// Every candidate's outcome, when the turn drew several (see `turn::candidates`).
    pub candidates: Vec<Candidate>,
}

impl Steps {
    /// True when at least one model call answered.
    pub fn answered(&self) -> bool {
        !self.replies.is_empty()
    }
}

/// Everything a turn's steps run with.
#[derive(Clone)]
pub(crate) struct Stepper<'a> {
    /// The run (retry policy, ids).
    pub ctx: &'a RunCtx,
    /// The provider serving the turn's seat.
    pub provider: &'a Arc<dyn Provider>,
    /// The turn's seq (named in correction events).
    pub seq: i64,
    /// The first step's request (the conversation so far; its schema is set per step).
    pub request: ModelRequest,
    /// What each step may do.
    pub shape: Shape<'a>,
    /// The issue's own words, for a file's content asked for apart.
    pub brief: &'a str,
    /// What the calls are judged against.
    pub rules: Rules<'a>,
    /// What allowed calls act on.
    pub executor: Executor<'a>,
    /// The turn's step and correction budget.
    pub limits: StepLimits,
    /// The seed of step `n` (from 1).
    pub seed: &'a (dyn Fn(u32) -> Option<i64> + Sync),
    /// The candidate these steps draw (from 1), when the turn draws several.
    pub candidate: Option<u32>,
    /// `process_rules.halt_on_violation`: a gate refusal is not corrected, it ends the turn.
    pub strict: bool,
}

/// The loop's own state.
struct Progress {
    messages: Vec<ChatMessage>,
    queue: VecDeque<ToolCall>,
    /// Sent before the next model call: the last step's result or correction.
    feedback: Option<String>,
    /// The last call that ran (a refused call may be asked again, and is refused again).
    last_run: Option<ToolCall>,
    corrections: u32,
    /// Read-only calls that ran.
    looked: u32,
    /// Tools withdrawn for the rest of the turn.
    withdrawn: Vec<Tool>,
    /// The paths this turn wrote.
    written: Vec<String>,
    out: Steps,
}

impl Stepper<'_> {
    /// Runs the turn's steps, recording their effects in `effects`.
    pub async fn run(&self, effects: &mut TurnEffects) -> StoreResult<Steps> {
        let mut p = Progress {
            messages: self.request.messages.clone(),
            queue: VecDeque::new(),
            feedback: None,
            last_run: None,
            corrections: 0,
            looked: 0,
            withdrawn: Vec::new(),
            written: Vec::new(),
            out: Steps {
                steps: Vec::new(),
                end: End::StepsSpent,
                replies: Vec::new(),
                tokens_in: 0,
                tokens_out: 0,
                retries: Vec::new(),
                candidates: Vec::new(),
            },
        };
        for n in 1..=self.limits.steps {
            let state = self.state(n, &p, effects);
            let mut step = TurnStep::new(n, self.candidate);
            if p.queue.is_empty() {
                if let Err(error) = self.ask(&state, &mut step, &mut p).await {
                    p.out.steps.push(step);
                    p.out.end = End::ModelFailed(error);
                    return Ok(p.out);
                }
            }
            let end = self.take_call(&state, &mut step, &mut p, effects).await?;
            p.out.steps.push(step);
            if let Some(end) = end {
                p.out.end = end;
                return Ok(p.out);
            }
        }
        Ok(p.out)
    }

    /// Where the turn is as step `n` begins.
    fn state(&self, n: u32, p: &Progress, effects: &TurnEffects) -> StepState {
        StepState {
            n,
            last: n == self.limits.steps,
            wrote: effects.wrote_files,
            troubled: p.corrections > 0,
            looked: p.looked,
            withdrawn: p.withdrawn.clone(),
        }
    }

    /// Asks the model for step `state`: the pending feedback is sent first, the reply's calls
    /// are queued. `Err` is the failed model call.
    async fn ask(
        &self,
        state: &StepState,
        step: &mut TurnStep,
        p: &mut Progress,
    ) -> Result<(), String> {
        if let Some(text) = p.feedback.take() {
            let message = ChatMessage::user(text);
            p.messages.push(message.clone());
            step.prompt.push(message);
        }
        let request = ModelRequest {
            messages: window(&p.messages),
            tool_schema: Some(self.shape.schema(state)),
            seed: (self.seed)(state.n),
            ..self.request.clone()
        };
        step.seed = request.seed;
        let (reply, retries) = call_model(self.ctx, self.provider, &request).await;
        p.out.retries.extend(retries);
        let reply: ModelReply = reply.map_err(|e| e.to_string())?;
        self.tally(&reply, step, &mut p.out);
        step.reply = Some(reply.content.clone());
        p.messages
            .push(ChatMessage::assistant(reply.content.clone()));
        p.queue = parse_tool_calls(&reply.content).into();
        p.out.replies.push(reply.content);
        if self.shape.content_apart {
            self.ask_content(&request, step, p).await?;
        }
        Ok(())
    }

    /// Counts a model call's tokens for the run, the turn and the step.
    fn tally(&self, reply: &ModelReply, step: &mut TurnStep, out: &mut Steps) {
        self.ctx
            .tokens
            .fetch_add(reply.tokens_in + reply.tokens_out, Ordering::SeqCst);
        out.tokens_in += reply.tokens_in;
        out.tokens_out += reply.tokens_out;
        step.tokens_in += reply.tokens_in;
        step.tokens_out += reply.tokens_out;
    }

    /// When the step's call is a `write_file` without content (its schema left the content
    /// out), asks for the content apart (see `turn::content`) and puts it in the call.
    async fn ask_content(
        &self,
        request: &ModelRequest,
        step: &mut TurnStep,
        p: &mut Progress,
    ) -> Result<(), String> {
        let Some(call) = p.queue.front_mut() else {
            return Ok(());
        };
        let Some(path) = path_without_content(call) else {
            return Ok(());
        };
        let shape = self.ctx.assets.file_shape(self.shape.issue_id, &path);
        let ask = ContentAsk::new(request, self.brief, &path, shape);
        let (reply, retries) = call_model(self.ctx, self.provider, &ask.request).await;
        p.out.retries.extend(retries);
        let reply: ModelReply = reply.map_err(|e| e.to_string())?;
        self.tally(&reply, step, &mut p.out);
        let content = ask.content(&reply.content);
        call.args
            .insert("content".to_string(), serde_json::Value::String(content));
        step.content_reply = Some(reply.content);
        Ok(())
    }

    /// Takes the next queued call of step `state` and judges and runs it; the turn's end, if
    /// this step ends it.
    async fn take_call(
        &self,
        state: &StepState,
        step: &mut TurnStep,
        p: &mut Progress,
        effects: &mut TurnEffects,
    ) -> StoreResult<Option<End>> {
        let Some(call) = p.queue.pop_front() else {
            if let Some(reply) = p.messages.last_mut() {
                *reply = ChatMessage::assistant(NO_CALL_REPLY);
            }
            let why = "the reply held no tool call".to_string();
            return Ok(self.correct(
                state,
                step,
                p,
                effects,
                Problem::plain(CorrectionKind::NoCall, why),
            ));
        };
        step.call = Some(call.clone());
        if p.last_run.as_ref() == Some(&call) {
            withdraw(p, &call);
            let why = format!(
                "{} repeats the previous step's call exactly; it was not run again",
                call.name
            );
            return Ok(self.correct(
                state,
                step,
                p,
                effects,
                Problem::plain(CorrectionKind::Repeated, why),
            ));
        }
        let legal = |call: &ToolCall| self.shape.admits(state, call);
        let outcome = act_one(&self.rules, &self.executor, effects, &call, &legal).await?;
        Ok(match outcome {
            CallOutcome::NotLegal(why) => {
                let why = format!("{}: {why}", call.name);
                self.correct(
                    state,
                    step,
                    p,
                    effects,
                    Problem::plain(CorrectionKind::NotLegal, why),
                )
            }
            CallOutcome::Parked => {
                step.result = effects.results.last().cloned();
                Some(End::Moved)
            }
            CallOutcome::SentBack => {
                step.result = effects.results.last().cloned();
                Some(End::SentBack)
            }
            CallOutcome::Refused(refusal) => {
                step.result = effects.results.last().cloned();
                self.correct(state, step, p, effects, Problem::refused(refusal, &call))
            }
            CallOutcome::Failed(result) => {
                p.last_run = Some(call.clone());
                withdraw(p, &call);
                let why = result.error().unwrap_or("the tool failed").to_string();
                step.result = Some(result);
                self.correct(
                    state,
                    step,
                    p,
                    effects,
                    Problem::plain(CorrectionKind::ToolFailed, why),
                )
            }
            CallOutcome::Ran(result) => {
                p.last_run = Some(call.clone());
                if Tool::from_name(&call.name).is_some_and(is_look) {
                    p.looked += 1;
                }
                self.note_written(p, &call);
                step.result = Some(result.clone());
                if self.moved(effects) {
                    Some(End::Moved)
                } else {
                    let next = self.state(state.n + 1, p, effects);
                    p.feedback = Some(format!(
                        "Step {} result of {}: {}\n{}",
                        state.n,
                        call.name,
                        shown(&result),
                        self.legal_now(&next)
                    ));
                    None
                }
            }
        })
    }

    /// Notes a file `call` wrote; once every file the issue names is written, every tool but
    /// the move is withdrawn for the rest of the turn: what is left is to hand the work over
    /// (a small model otherwise writes the same file again, or lists it as a folder).
    fn note_written(&self, p: &mut Progress, call: &ToolCall) {
        if call.name != Tool::WriteFile.name() {
            return;
        }
        if let Some(path) = call.str_arg("path") {
            p.written.push(path.to_string());
        }
        let files = self.shape.files;
        if !files.is_empty() && files.iter().all(|f| p.written.contains(f)) {
            for &tool in &self.shape.offered {
                if tool != Tool::UpdateIssueStatus {
                    withdraw_tool(p, tool);
                }
            }
        }
    }

    /// The issue left the status the turn works in: the seat made its move.
    fn moved(&self, effects: &TurnEffects) -> bool {
        effects.status(self.rules.issue_id) != Some(self.shape.from)
    }

    /// Answers a step that went wrong: a correction for the next step while any is left (the
    /// queued calls of the reply are dropped), else the end of the turn.
    fn correct(
        &self,
        state: &StepState,
        step: &mut TurnStep,
        p: &mut Progress,
        effects: &mut TurnEffects,
        problem: Problem,
    ) -> Option<End> {
        p.queue.clear();
        let strict = self.strict && problem.refusal.is_some();
        if strict || p.corrections >= self.limits.corrections {
            return Some(match problem.refusal {
                Some(refusal) => End::Violation(Violation {
                    refusal,
                    call: step.call.clone(),
                }),
                None => End::Corrections(problem.message),
            });
        }
        p.corrections += 1;
        let next = self.state(state.n + 1, p, effects);
        let text = format!(
            "Step {} went wrong: {}.\n{}",
            state.n,
            problem.message,
            self.legal_now(&next)
        );
        effects.event(
            self.rules.roles[0].as_str(),
            self.rules.issue_id,
            Event::StepCorrected {
                seq: self.seq,
                step: state.n,
                kind: problem.kind,
                code: problem.refusal.as_ref().map(|r| r.code),
                message: problem.message,
            },
        );
        step.correction = Some(text.clone());
        p.feedback = Some(text);
        None
    }

    /// What the model may do in step `next`, in words.
    fn legal_now(&self, next: &StepState) -> String {
        let choices = self.shape.choices(next);
        let tools: Vec<String> = choices
            .tools
            .iter()
            .map(|&tool| {
                if tool == Tool::UpdateIssueStatus {
                    format!(
                        "{tool} (status: {})",
                        choices
                            .moves
                            .iter()
                            .map(|s| describe_move(*s, &choices.explained))
                            .collect::<Vec<_>>()
                            .join(" or ")
                    )
                } else {
                    tool.to_string()
                }
            })
            .collect();
        if next.n > self.limits.steps {
            return "No step is left.".to_string();
        }
        let last = if next.last { " (the last step)" } else { "" };
        format!(
            "Step {}{last}: reply with one tool call: {}.",
            next.n,
            tools.join(", ")
        )
    }
}

/// The messages a model call is sent: the turn's first two (system, task) and its latest
/// [`KEPT_STEP_MESSAGES`].
fn window(messages: &[ChatMessage]) -> Vec<ChatMessage> {
    let head = messages.len().min(2);
    let tail = messages.len().saturating_sub(KEPT_STEP_MESSAGES).max(head);
    messages[..head]
        .iter()
        .chain(&messages[tail..])
        .cloned()
        .collect()
}

/// Withdraws the tool of `call` for the rest of the turn.
fn withdraw(p: &mut Progress, call: &ToolCall) {
    if let Some(tool) = Tool::from_name(&call.name) {
        withdraw_tool(p, tool);
    }
}

/// Withdraws `tool` for the rest of the turn.
fn withdraw_tool(p: &mut Progress, tool: Tool) {
    if !p.withdrawn.contains(&tool) {
        p.withdrawn.push(tool);
    }
}

/// A move as the model is told about it.
fn describe_move(status: Status, explained: &[Status]) -> String {
    if explained.contains(&status) {
        format!("{status} with a comment saying why")
    } else if status.needs_wait_reason() {
        format!("{status} with a wait_reason")
    } else {
        status.to_string()
    }
}

/// A call's result as a step shows it: its output or its error, cut to [`RESULT_CHARS`].
fn shown(result: &ToolResult) -> String {
    let text = result.to_value().to_string();
    if text.chars().count() <= RESULT_CHARS {
        text
    } else {
        let cut: String = text.chars().take(RESULT_CHARS).collect();
        format!("{cut}… (cut)")
    }
}

/// What went wrong in a step.
struct Problem {
    kind: CorrectionKind,
    message: String,
    /// The gate's refusal, when it refused.
    refusal: Option<Refusal>,
}

impl Problem {
    fn plain(kind: CorrectionKind, message: String) -> Self {
        Problem {
            kind,
            message,
            refusal: None,
        }
    }

    fn refused(refusal: Refusal, call: &ToolCall) -> Self {
        let message = if refusal.message.starts_with(&call.name) {
            format!("{} ({})", refusal.message, refusal.code)
        } else {
            format!("{}: {} ({})", call.name, refusal.message, refusal.code)
        };
        Problem {
            kind: CorrectionKind::Refused,
            message,
            refusal: Some(refusal),
        }
    }
}

/// Calls the model through [`Retrying`]: timeouts and connection errors are retried, and each
/// retry becomes a `model_timeout_retry` / `model_connection_retry` event of the turn.
pub(crate) async fn call_model(
    ctx: &RunCtx,
    provider: &Arc<dyn Provider>,
    request: &ModelRequest,
) -> (Result<ModelReply, ProviderError>, Vec<NewEvent>) {
    let retries = Arc::new(Mutex::new(Vec::new()));
    let seen = Arc::clone(&retries);
    let run_id = ctx.run_id.clone();
    let provider = Retrying::new(Arc::clone(provider), ctx.options.retry).on_retry(move |notice| {
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
    });
    let reply = provider.complete(request).await;
    let events = std::mem::take(&mut *retries.lock().unwrap_or_else(|e| e.into_inner()));
    (reply, events)
}
