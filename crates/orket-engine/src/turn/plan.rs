//! The turn's first stages: plan (the seat it is routed to, its acting roles, model, dialect
//! and tools) and prompt (the compiled messages and the model request). The turn and
//! [`crate::preview`] both go through here, so a preview shows exactly what a turn would send.

use crate::assets::RunAssets;
use crate::policy::ModelChoice;
use crate::prompt::{compile, CompiledPrompt, PromptInput};
use orket_core::assets::{Dialect, Role, Seat};
use orket_core::lifecycle::allowed_targets;
use orket_core::CardKind;
use orket_core::{Status, INTEGRITY_GUARD};
use orket_governance::gate::AllowedTools;
use orket_llm::{turn_schema, ChatMessage, ModelRequest};
use orket_store::{Comment, IssueRecord, MemoryRecord, TurnInputs, TurnQuery};
use serde_json::Value;
use std::time::Duration;

/// How many recent comments a prompt shows.
const PROMPT_COMMENTS: usize = 5;
/// How many remembered decisions a prompt shows.
const PROMPT_MEMORIES: usize = 5;

/// Who acts in a turn and with what.
pub(crate) struct SeatPlan<'a> {
    /// The seat the turn is routed to.
    pub seat: &'a Seat,
    /// The acting role names, the primary one first.
    pub role_names: Vec<String>,
    /// Their definitions, in the same order.
    pub roles: Vec<Role>,
    /// The model the turn calls.
    pub model: String,
    /// The dialect of the model's family.
    pub dialect: &'a Dialect,
    /// The tools the turn may call.
    pub tools: AllowedTools,
    /// The status the issue has while the turn works on it.
    pub working_status: Status,
}

impl SeatPlan<'_> {
    /// The primary acting role.
    pub fn primary(&self) -> &str {
        &self.role_names[0]
    }
}

/// Routes `issue` to a seat (a review to the first seat holding integrity_guard) and picks the
/// roles, model, dialect and tools; an error says why the issue cannot be worked on.
pub(crate) fn plan_seat<'a>(
    assets: &'a RunAssets,
    explicit_model: Option<&str>,
    issue: &IssueRecord,
    review: bool,
) -> Result<SeatPlan<'a>, String> {
    let Some(seat) = assets
        .policies
        .router
        .route(&assets.team, &issue.seat, review)
    else {
        return Err(if review {
            format!(
                "team \"{}\" has no seat holding {INTEGRITY_GUARD}: the review cannot be routed",
                assets.team.name
            )
        } else {
            format!(
                "seat \"{}\" is not a seat of team \"{}\" (seats: {})",
                issue.seat,
                assets.team.name,
                assets
                    .team
                    .seats
                    .iter()
                    .map(|s| s.key.as_str())
                    .collect::<Vec<_>>()
                    .join(", ")
            )
        });
    };
    let mut role_names: Vec<String> = Vec::new();
    if review {
        role_names.push(INTEGRITY_GUARD.to_string());
    }
    for r in &seat.roles {
        if !role_names.contains(r) {
            role_names.push(r.clone());
        }
    }
    let mut roles = Vec::new();
    for name in &role_names {
        match assets.roles.get(name) {
            Some(r) => roles.push(r.clone()),
            None => {
                return Err(format!(
                    "role \"{name}\" of seat \"{}\" has no definition",
                    seat.key
                ))
            }
        }
    }
    if !roles
        .iter()
        .any(|r| r.issue_types.contains(&issue.issue_type))
    {
        return Err(format!(
            "no acting role ({}) handles issues of type \"{}\"",
            role_names.join(", "),
            issue.issue_type
        ));
    }
    let strategy = &assets.policies.prompt_strategy;
    let model = strategy.model(&ModelChoice {
        explicit: explicit_model,
        epic: &assets.epic,
        role: &role_names[0],
        user: &assets.user_settings,
        environment: &assets.env.model,
        org: &assets.org,
    });
    let family = strategy.dialect(&model);
    let Some(dialect) = assets
        .dialects
        .get(family)
        .or_else(|| assets.dialects.get("generic"))
    else {
        return Err(format!(
            "no dialect for model \"{model}\" (family {family}) and no generic dialect"
        ));
    };
    let tools = AllowedTools::from_names(&assets.policies.tool_strategy.tools(&roles));
    Ok(SeatPlan {
        seat,
        role_names,
        roles,
        model,
        dialect,
        tools,
        working_status: if review {
            Status::CodeReview
        } else {
            Status::InProgress
        },
    })
}

/// What a turn of `issue` in run `run_id` reads before its model call: its latest comments, the
/// decisions remembered about its words, its last `history` turns.
pub(crate) fn turn_query(run_id: &str, issue: &IssueRecord, history: usize) -> TurnQuery {
    TurnQuery {
        run_id: run_id.to_string(),
        build_id: issue.build_id.clone(),
        issue_id: issue.id.clone(),
        comments: PROMPT_COMMENTS,
        memory_query: format!("{} {}", issue.name, issue.description),
        memory: PROMPT_MEMORIES,
        history,
    }
}

/// The model request of the turn `plan` describes: the compiled prompt, the issue's history
/// in this run (each reply and its tool results), the environment's sampling settings and the
/// reply's JSON schema (only the tools the seat may call, only statuses reachable from where
/// the turn finds the issue).
pub(crate) fn model_request(
    assets: &RunAssets,
    plan: &SeatPlan<'_>,
    issue: &IssueRecord,
    inputs: &TurnInputs,
    verification: Option<&str>,
) -> ModelRequest {
    let prompt = compile_turn_prompt(
        assets,
        plan,
        issue,
        &inputs.comments,
        &inputs.memory,
        verification,
    );
    let mut messages = vec![
        ChatMessage::system(prompt.system),
        ChatMessage::user(prompt.user),
    ];
    for t in &inputs.history {
        messages.push(ChatMessage::assistant(t.content.clone()));
        messages.push(ChatMessage::user(format!(
            "Tool results: {}",
            serde_json::to_string(&t.tool_results).unwrap_or_default()
        )));
    }
    let env = &assets.env;
    ModelRequest {
        model: plan.model.clone(),
        messages,
        temperature: env.temperature,
        seed: env.seed,
        timeout: Duration::from_secs(env.timeout),
        max_tokens: env
            .params
            .get("max_tokens")
            .and_then(Value::as_u64)
            .map(|n| n as u32),
        top_p: None,
        context_window: None,
        tool_schema: Some(turn_schema(
            &plan.tools.offered(),
            allowed_targets(CardKind::Issue, plan.working_status),
        )),
        issue_id: issue.id.clone(),
        role: plan.primary().to_string(),
    }
}

/// The system and user messages of the turn `plan` describes; the issue is shown in the
/// status it has while the turn works on it.
pub(crate) fn compile_turn_prompt(
    assets: &RunAssets,
    plan: &SeatPlan<'_>,
    issue: &IssueRecord,
    comments: &[Comment],
    memory: &[MemoryRecord],
    verification: Option<&str>,
) -> CompiledPrompt {
    let mut shown = issue.clone();
    shown.status = plan.working_status;
    compile(&PromptInput {
        org: &assets.org,
        roles: &plan.roles,
        seat: &plan.seat.name,
        dialect: plan.dialect,
        epic: &assets.epic,
        issue: &shown,
        comments,
        memory,
        tools: &plan.tools.offered(),
        review: plan.working_status == Status::CodeReview,
        verification,
    })
}
