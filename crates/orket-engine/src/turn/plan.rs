//! The turn's first stages: plan (the seat it is routed to, its acting roles, model, dialect
//! and tools) and prompt (the compiled messages and the model request). The turn and
//! [`crate::preview`] both go through here, so a preview shows exactly what a turn would send.

use crate::assets::RunAssets;
use crate::policy::{ClientChoice, ModelChoice, Served};
use crate::prompt::{compile, CompiledPrompt, PromptInput};
use crate::turn::settings::TurnSettings;
use orket_core::assets::{Dialect, Role, Seat};
use orket_core::tools::Tool;
use orket_core::{Status, INTEGRITY_GUARD};
use orket_governance::confine::Confinement;
use orket_governance::gate::AllowedTools;
use orket_llm::{ChatMessage, ModelRequest, Provider};
use orket_store::{Comment, IssueRecord, MemoryRecord, PastTurn, TurnInputs, TurnQuery};
use std::sync::Arc;
use std::time::Duration;

/// How many recent comments a prompt shows.
const PROMPT_COMMENTS: usize = 5;
/// How many remembered decisions a prompt shows.
const PROMPT_MEMORIES: usize = 5;
/// How many of the files a developer wrote a review is shown.
const WORK_FILES: usize = 4;
/// How much of each file a review is shown, in characters.
const WORK_CHARS: usize = 2000;

/// What a turn's prompt shows besides the issue.
#[derive(Debug, Clone, Copy, Default)]
pub(crate) struct PromptExtras<'a> {
    /// The review's verification result.
    pub verification: Option<&'a str>,
    /// The work to review (see [`work_to_review`]).
    pub work: Option<&'a str>,
    /// The model is held to each step's schema, so the prompt need not spell out the reply's
    /// shape.
    pub constrained: bool,
}

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
    /// The provider that serves the seat (the `model_client` policy's choice).
    pub served: Served,
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
    run_provider: &Arc<dyn Provider>,
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
    let served = assets.policies.model_client.serve(&ClientChoice {
        seat,
        env: &assets.env,
        run_provider,
    })?;
    let strategy = &assets.policies.prompt_strategy;
    let model = strategy.model(&ModelChoice {
        explicit: explicit_model,
        epic: &assets.epic,
        seat: served.model.as_deref(),
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
        served,
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

/// The first request of the turn `plan` describes (the compiled prompt, the issue's history
/// in this run, each turn's replies and tool results, and the turn's sampling settings; each
/// step sets its own schema and seed), with the issue's brief for content asked for apart.
pub(crate) fn model_request(
    assets: &RunAssets,
    plan: &SeatPlan<'_>,
    issue: &IssueRecord,
    inputs: &TurnInputs,
    settings: &TurnSettings,
    extras: &PromptExtras<'_>,
) -> (ModelRequest, String) {
    let prompt = compile_turn_prompt(
        assets,
        plan,
        issue,
        &inputs.comments,
        &inputs.memory,
        extras,
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
    let request = ModelRequest {
        model: plan.model.clone(),
        messages,
        temperature: settings.temperature,
        seed: settings.seed,
        timeout: Duration::from_secs(assets.env.timeout),
        max_tokens: settings.max_tokens,
        top_p: settings.top_p,
        repeat_penalty: settings.repeat_penalty,
        context_window: settings.context_window,
        tool_schema: None,
        issue_id: issue.id.clone(),
        role: plan.primary().to_string(),
    };
    (request, prompt.brief)
}

/// The work a review judges, as the workspace holds it now: the files the issue names, else
/// each file the developer's last turn in this run wrote (cut to [`WORK_CHARS`] each, at most
/// [`WORK_FILES`] files).
pub(crate) fn work_to_review(
    files: &[String],
    history: &[PastTurn],
    workspace: &Confinement,
) -> Option<String> {
    let mut paths: Vec<&str> = files.iter().map(String::as_str).collect();
    let last = history.iter().rev().find(|t| !t.review);
    let written = last.map_or(&[][..], |t| t.tool_calls.as_slice());
    for call in written.iter().filter(|_| files.is_empty()) {
        if Tool::from_name(&call.name) == Some(Tool::WriteFile) {
            if let Some(path) = call.str_arg("path").filter(|p| !paths.contains(p)) {
                paths.push(path);
            }
        }
    }
    let mut out = String::new();
    for path in paths.into_iter().take(WORK_FILES) {
        let text = match workspace
            .resolve_read(path)
            .map_err(|refusal| refusal.to_string())
            .and_then(|real| std::fs::read_to_string(real).map_err(|e| e.to_string()))
        {
            Ok(text) if text.chars().count() > WORK_CHARS => {
                let cut: String = text.chars().take(WORK_CHARS).collect();
                format!("{cut}\n… (cut)")
            }
            Ok(text) => text,
            Err(why) => format!("(cannot be read: {why})"),
        };
        out.push_str(&format!("--- {path} ---\n{}\n", text.trim_end()));
    }
    (!out.is_empty()).then_some(out)
}

/// The system and user messages of the turn `plan` describes; the issue is shown in the
/// status it has while the turn works on it.
pub(crate) fn compile_turn_prompt(
    assets: &RunAssets,
    plan: &SeatPlan<'_>,
    issue: &IssueRecord,
    comments: &[Comment],
    memory: &[MemoryRecord],
    extras: &PromptExtras<'_>,
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
        verification: extras.verification,
        work: extras.work,
        files: assets.issue_files(&issue.id),
        constrained: extras.constrained,
    })
}
