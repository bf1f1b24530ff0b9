//! Runs over the API: start one in this process (`POST /v1/system/run-active`), list them,
//! their backlog, per-role metrics, transcript and snapshot, and halt one at a turn boundary.

use crate::error::{ApiError, ApiQuery, ApiResult};
use crate::{body_department, body_number, body_text, body_value, AppState, ProviderChoice};
use axum::body::Bytes;
use axum::extract::rejection::BytesRejection;
use axum::extract::{Path, State};
use axum::http::StatusCode;
use axum::Json;
use orket_core::ids::new_run_id;
use orket_core::tools::{Tool, ToolCall, ToolResult};
use orket_core::Status;
use orket_engine::{EngineError, RunOptions};
use orket_governance::confine::{Confinement, Rules};
use orket_store::{IssueRecord, RunRecord, TurnRecord};
use serde::{Deserialize, Serialize};
use serde_json::{json, Value};
use std::collections::BTreeMap;
use std::time::Duration;
use utoipa::{IntoParams, ToSchema};

/// Done and total issues of a run's build.
#[derive(Debug, Serialize, ToSchema)]
pub struct Progress {
    /// Issues `done` or `canceled`.
    pub done: usize,
    /// All issues of the build.
    pub total: usize,
}

/// A run, as listed.
#[derive(Debug, Serialize, ToSchema)]
pub struct RunView {
    /// 8 hex characters.
    pub id: String,
    /// `epic`, `rock` or `issue`.
    pub kind: String,
    /// The epic, rock or issue it runs.
    pub target: String,
    /// Its build.
    pub build_id: String,
    /// Its department.
    pub department: String,
    /// Its workspace folder.
    pub workspace: String,
    /// `running`, then its outcome.
    pub status: String,
    /// Why it ended so.
    pub reason: Option<String>,
    /// When it started.
    pub started_at: String,
    /// When it last changed.
    pub updated_at: String,
    /// When it ended.
    pub ended_at: Option<String>,
    /// Issues of its build done so far.
    pub progress: Progress,
    /// Executing in this server now.
    pub active: bool,
}

/// An issue of a run's build.
#[derive(Debug, Serialize, ToSchema)]
pub struct BacklogItem {
    /// The issue id.
    pub id: String,
    /// Its name.
    pub name: String,
    /// Its status.
    pub status: String,
    /// Its seat.
    pub seat: String,
    /// Its priority.
    pub priority: f64,
    /// The issues it depends on.
    pub depends_on: Vec<String>,
    /// Why it waits.
    pub wait_reason: Option<String>,
    /// Failed attempts so far.
    pub retry_count: u32,
    /// The stored verification block (`{}` when none).
    #[schema(value_type = Object)]
    pub verification: Value,
    /// Who holds it.
    pub assignee: Option<String>,
}

/// A turn of a run's transcript.
#[derive(Debug, Serialize, ToSchema)]
pub struct TurnView {
    /// Its position in the run.
    pub seq: i64,
    /// The issue.
    pub issue_id: String,
    /// The seat that acted.
    pub seat: String,
    /// The role it acted as.
    pub role: String,
    /// The model.
    pub model: String,
    /// A review turn.
    pub review: bool,
    /// The parsed tool calls (`{name, args}`).
    #[schema(value_type = Vec<Object>)]
    pub tool_calls: Vec<ToolCall>,
    /// Their results, in order (`{ok: true, ...}` or `{ok: false, error, code?}`).
    #[schema(value_type = Vec<Object>)]
    pub tool_results: Vec<ToolResult>,
    /// `complete`, `violation`, `failed`.
    pub status: String,
    /// The error of a failed turn.
    pub error: Option<String>,
    /// Prompt tokens.
    pub tokens_in: i64,
    /// Completion tokens.
    pub tokens_out: i64,
    /// When it started.
    pub started_at: String,
    /// When it ended.
    pub ended_at: String,
    /// The fleet worker that ran it (absent: the process that ran the run).
    #[serde(skip_serializing_if = "Option::is_none")]
    pub worker: Option<String>,
}

/// A run with its transcript.
#[derive(Debug, Serialize, ToSchema)]
pub struct SessionView {
    /// The run.
    pub run: RunView,
    /// Its turns, by seq.
    pub turns: Vec<TurnView>,
}

/// What one role did in a run.
#[derive(Debug, Default, Serialize, ToSchema)]
pub struct RoleMetrics {
    /// Turns.
    pub turns: usize,
    /// Prompt tokens.
    pub tokens_in: i64,
    /// Completion tokens.
    pub tokens_out: i64,
    /// Tool calls made.
    pub tool_calls: usize,
    /// Lines of content of successful `write_file` calls.
    pub lines_written: usize,
}

/// `GET /v1/runs/{id}/metrics`.
#[derive(Debug, Serialize, ToSchema)]
pub struct RunMetrics {
    /// The run.
    pub run_id: String,
    /// Per role, by name.
    pub roles: BTreeMap<String, RoleMetrics>,
}

/// `POST /v1/system/run-active` body (only `target` is required).
#[derive(Debug, Deserialize, ToSchema)]
pub struct RunRequest {
    /// An epic or rock name, or an issue id.
    #[schema(min_length = 1, pattern = r"\S")]
    pub target: String,
    /// The department to look it up in (`core`).
    pub department: Option<String>,
    /// `embedded`, `ollama`, `openai` or `replay` (default `$ORKET_PROVIDER`, or `replay` when
    /// a replay file is given).
    pub provider: Option<String>,
    /// The replay file, relative to the project root.
    pub replay: Option<String>,
    /// Simulated model time per replayed reply, in milliseconds (at most 600000).
    #[schema(maximum = 600_000)]
    pub replay_delay_ms: Option<u64>,
    /// A model for every turn.
    pub model: Option<String>,
    /// Start the build over.
    pub reset: Option<bool>,
    /// Turns in flight at once (1–64, default 3).
    #[schema(minimum = 1, maximum = 64)]
    pub concurrency: Option<usize>,
}

/// `{"session_id"}` of a started run.
#[derive(Debug, Serialize, ToSchema)]
pub struct Started {
    /// The run id.
    pub session_id: String,
}

/// `{"id", "status": "halting"}`.
#[derive(Debug, Serialize, ToSchema)]
pub struct Halting {
    /// The run id.
    pub id: String,
    /// `halting`.
    pub status: String,
}

/// `?limit=`.
#[derive(Debug, Deserialize, IntoParams)]
#[into_params(parameter_in = Query)]
pub struct ListQuery {
    /// How many runs (default 50, at most 1000).
    pub limit: Option<i64>,
}

/// The snapshot of a run.
#[derive(Debug, Serialize, ToSchema)]
pub struct SnapshotView {
    /// Row id.
    pub id: i64,
    /// The run.
    pub run_id: String,
    /// When it was saved.
    pub created_at: String,
    /// Status, reason and every issue's status when saved.
    #[schema(value_type = Object)]
    pub data: Value,
}

/// Done and total issues of a build.
async fn progress(state: &AppState, build_id: &str) -> ApiResult<Progress> {
    let issues = state.store().list_issues(build_id).await?;
    let done = issues
        .iter()
        .filter(|i| matches!(i.status, Status::Done | Status::Canceled))
        .count();
    Ok(Progress {
        done,
        total: issues.len(),
    })
}

async fn run_view(state: &AppState, run: RunRecord) -> ApiResult<RunView> {
    let progress = progress(state, &run.build_id).await?;
    Ok(view_with(state, run, progress))
}

fn view_with(state: &AppState, run: RunRecord, progress: Progress) -> RunView {
    RunView {
        active: state.engine().is_active(&run.id),
        id: run.id,
        kind: run.kind.to_string(),
        target: run.target,
        build_id: run.build_id,
        department: run.department,
        workspace: run.workspace,
        status: run.status.to_string(),
        reason: run.reason,
        started_at: run.started_at,
        updated_at: run.updated_at,
        ended_at: run.ended_at,
        progress,
    }
}

async fn find_run(state: &AppState, id: &str) -> ApiResult<RunRecord> {
    state
        .store()
        .get_run(id)
        .await?
        .ok_or_else(|| ApiError::not_found(format!("run {id} not found")))
}

/// The most recent runs, newest first.
#[utoipa::path(get, path = "/v1/runs", params(ListQuery),
    responses((status = 200, body = [RunView])))]
pub async fn list(
    State(state): State<AppState>,
    ApiQuery(query): ApiQuery<ListQuery>,
) -> ApiResult<Json<Vec<RunView>>> {
    let limit = query.limit.unwrap_or(50).clamp(1, 1000);
    // Runs of one build share its progress: one read per build, not per run.
    let mut builds: std::collections::HashMap<String, (usize, usize)> = Default::default();
    let mut out = Vec::new();
    for run in state.store().list_runs(limit).await? {
        let (done, total) = match builds.get(&run.build_id) {
            Some(known) => *known,
            None => {
                let p = progress(&state, &run.build_id).await?;
                builds.insert(run.build_id.clone(), (p.done, p.total));
                (p.done, p.total)
            }
        };
        out.push(view_with(&state, run, Progress { done, total }));
    }
    Ok(Json(out))
}

/// The issues of the run's build.
#[utoipa::path(get, path = "/v1/runs/{id}/backlog", params(("id" = String, Path, description = "run id")),
    responses((status = 200, body = [BacklogItem]), (status = 404)))]
pub async fn backlog(
    State(state): State<AppState>,
    Path(id): Path<String>,
) -> ApiResult<Json<Vec<BacklogItem>>> {
    let run = find_run(&state, &id).await?;
    let issues = state.store().list_issues(&run.build_id).await?;
    Ok(Json(issues.into_iter().map(backlog_item).collect()))
}

fn backlog_item(i: IssueRecord) -> BacklogItem {
    BacklogItem {
        id: i.id,
        name: i.name,
        status: i.status.to_string(),
        seat: i.seat,
        priority: i.priority,
        depends_on: i.depends_on,
        wait_reason: i.wait_reason.map(|w| w.to_string()),
        retry_count: i.retry_count,
        verification: if i.verification.is_null() {
            json!({})
        } else {
            i.verification
        },
        assignee: i.assignee,
    }
}

/// Per role: turns, tokens, tool calls and lines written.
#[utoipa::path(get, path = "/v1/runs/{id}/metrics", params(("id" = String, Path, description = "run id")),
    responses((status = 200, body = RunMetrics), (status = 404)))]
pub async fn metrics(
    State(state): State<AppState>,
    Path(id): Path<String>,
) -> ApiResult<Json<RunMetrics>> {
    let run = find_run(&state, &id).await?;
    let turns = state.store().list_turns(&run.id).await?;
    Ok(Json(RunMetrics {
        run_id: run.id,
        roles: role_metrics(&turns),
    }))
}

/// Sums the turns per role.
pub fn role_metrics(turns: &[TurnRecord]) -> BTreeMap<String, RoleMetrics> {
    let mut roles: BTreeMap<String, RoleMetrics> = BTreeMap::new();
    for t in turns {
        let m = roles.entry(t.turn.role.clone()).or_default();
        m.turns += 1;
        m.tokens_in += t.turn.tokens_in;
        m.tokens_out += t.turn.tokens_out;
        m.tool_calls += t.turn.tool_calls.len();
        for (call, result) in t.turn.tool_calls.iter().zip(&t.turn.tool_results) {
            if Tool::from_name(&call.name) == Some(Tool::WriteFile) && result.is_ok() {
                m.lines_written += call
                    .str_arg("content")
                    .map(|c| c.lines().count())
                    .unwrap_or(0);
            }
        }
    }
    roles
}

/// A run with its transcript.
#[utoipa::path(get, path = "/v1/sessions/{id}", params(("id" = String, Path, description = "run id")),
    responses((status = 200, body = SessionView), (status = 404)))]
pub async fn session(
    State(state): State<AppState>,
    Path(id): Path<String>,
) -> ApiResult<Json<SessionView>> {
    let run = find_run(&state, &id).await?;
    let turns = state.store().list_turns(&run.id).await?;
    Ok(Json(SessionView {
        run: run_view(&state, run).await?,
        turns: turns
            .into_iter()
            .map(|record| {
                let t = record.turn;
                TurnView {
                    worker: record.worker,
                    seq: t.seq,
                    issue_id: t.issue_id,
                    seat: t.seat,
                    role: t.role,
                    model: t.model,
                    review: t.review,
                    tool_calls: t.tool_calls,
                    tool_results: t.tool_results,
                    status: t.status,
                    error: t.error,
                    tokens_in: t.tokens_in,
                    tokens_out: t.tokens_out,
                    started_at: t.started_at,
                    ended_at: t.ended_at,
                }
            })
            .collect(),
    }))
}

/// The run's latest snapshot (saved when it ends).
#[utoipa::path(get, path = "/v1/sessions/{id}/snapshot", params(("id" = String, Path, description = "run id")),
    responses((status = 200, body = SnapshotView), (status = 404)))]
pub async fn snapshot(
    State(state): State<AppState>,
    Path(id): Path<String>,
) -> ApiResult<Json<SnapshotView>> {
    let run = find_run(&state, &id).await?;
    let snapshot = state
        .store()
        .latest_snapshot(&run.id)
        .await?
        .ok_or_else(|| {
            ApiError::not_found(format!(
                "run {id} has no snapshot yet (it is saved when the run ends)"
            ))
        })?;
    Ok(Json(SnapshotView {
        id: snapshot.id,
        run_id: snapshot.run_id,
        created_at: snapshot.created_at,
        data: snapshot.data,
    }))
}

/// Asks a run to stop at its next turn boundary, whichever process executes it (this
/// server, or an `orket run` beside it): 202; 404 for an unknown run, 409 for one that ended.
#[utoipa::path(post, path = "/v1/runs/{id}/halt", params(("id" = String, Path, description = "run id")),
    responses((status = 202, body = Halting), (status = 404), (status = 409)))]
pub async fn halt(
    State(state): State<AppState>,
    Path(id): Path<String>,
) -> ApiResult<(StatusCode, Json<Halting>)> {
    state.engine().halt(&id).await?;
    Ok((
        StatusCode::ACCEPTED,
        Json(Halting {
            id,
            status: "halting".to_string(),
        }),
    ))
}

/// A checked run request.
struct Plan {
    target: String,
    department: String,
    provider: ProviderChoice,
    model: Option<String>,
    reset: bool,
    concurrency: usize,
}

/// Reads the body field by field so that a 400 names the field.
fn plan(state: &AppState, body: &Value) -> ApiResult<Plan> {
    let Value::Object(map) = body else {
        return Err(ApiError::bad_request(
            "body: expected a JSON object with at least \"target\"",
        ));
    };
    let target = body_text(map, "target")?.ok_or_else(|| {
        ApiError::bad_request("target: required (an epic or rock name, or an issue id)")
    })?;
    let department = body_department(map)?;
    let concurrency = match body_number(map, "concurrency", 64)? {
        Some(0) => return Err(ApiError::bad_request("concurrency: must be at least 1")),
        Some(n) => n as usize,
        None => 3,
    };
    let reset = match map.get("reset") {
        None | Some(Value::Null) => false,
        Some(Value::Bool(b)) => *b,
        Some(other) => {
            return Err(ApiError::bad_request(format!(
                "reset: expected true or false, found {other}"
            )))
        }
    };
    let model = body_text(map, "model")?;
    let provider = provider_choice(state, map)?;
    Ok(Plan {
        target,
        department,
        provider,
        model,
        reset,
        concurrency,
    })
}

/// The provider a request body asks for, read from its `provider`, `replay` and
/// `replay_delay_ms` fields (a 400 names the field): `provider`, else the server's
/// `ORKET_PROVIDER`, else `replay` when a replay file is given.
pub(crate) fn provider_choice(
    state: &AppState,
    map: &serde_json::Map<String, Value>,
) -> ApiResult<ProviderChoice> {
    let replay_delay_ms = body_number(map, "replay_delay_ms", 600_000)?.unwrap_or(0);
    let replay = body_text(map, "replay")?;
    let name = match body_text(map, "provider")? {
        Some(name) => name,
        None => match (&state.config().default_provider, &replay) {
            (Some(default), _) => default.clone(),
            (None, Some(_)) => "replay".to_string(),
            (None, None) => {
                return Err(ApiError::bad_request(
                    "provider: none given and the server has no ORKET_PROVIDER (embedded, ollama, openai or replay)",
                ))
            }
        },
    };
    if !orket_llm::PROVIDER_NAMES.contains(&name.as_str()) {
        return Err(ApiError::bad_request(format!(
            "provider: unknown \"{name}\" (known: {})",
            orket_llm::PROVIDER_NAMES.join(", ")
        )));
    }
    let replay =
        match (name.as_str(), replay) {
            ("replay", None) => return Err(ApiError::bad_request(
                "replay: the replay provider needs a replay file (relative to the project root)",
            )),
            (_, Some(file)) => Some(replay_file(state, &file)?),
            (_, None) => None,
        };
    Ok(ProviderChoice {
        name,
        replay,
        replay_delay: Duration::from_millis(replay_delay_ms),
    })
}

/// The replay file: relative to the project root and, links followed, inside it, with no
/// dotfile or dot folder as written or where a link leads (`.env`, `.orket/...`, `.git/...`
/// are never read): the project rules of `orket-governance`'s [`Confinement`].
fn replay_file(state: &AppState, file: &str) -> ApiResult<std::path::PathBuf> {
    let project = Confinement::folder(state.root(), Rules::PROJECT, "the project")
        .map_err(|e| ApiError::internal(format!("{}: {e}", state.root().display())))?;
    let real = project
        .resolve_read(file)
        .map_err(|refusal| ApiError::bad_request(format!("replay: {}", refusal.message)))?;
    if !real.is_file() {
        return Err(ApiError::bad_request(format!(
            "replay: \"{file}\" is not a file in the project"
        )));
    }
    Ok(real)
}

/// Starts a run in this server (supervised by the engine) and answers at once with its id.
#[utoipa::path(post, path = "/v1/system/run-active", request_body = RunRequest,
    responses((status = 202, body = Started), (status = 400), (status = 404), (status = 409),
        (status = 413)))]
pub async fn run_active(
    State(state): State<AppState>,
    body: Result<Bytes, BytesRejection>,
) -> ApiResult<(StatusCode, Json<Started>)> {
    let plan = plan(&state, &body_value(body)?)?;
    let provider = (state.config().providers)(&plan.provider)
        .map_err(|e| ApiError::bad_request(format!("provider: {e}")))?;
    let mut run_id = new_run_id();
    while state.store().get_run(&run_id).await?.is_some() {
        run_id = new_run_id();
    }
    let options = RunOptions {
        department: plan.department.clone(),
        model: plan.model,
        reset: plan.reset,
        concurrency: plan.concurrency,
        run_id: Some(run_id.clone()),
        ..state.config().run_options(provider)
    };
    // Two runs of one build at once would race on its issues (and a `reset` would delete
    // them under the live run): the engine refuses the second.
    let handle = state
        .engine()
        .start(&plan.target, options)
        .await
        .map_err(|err| match err {
            EngineError::NotFound(_) => ApiError::not_found(format!(
                "target: \"{}\" is no epic, rock or issue of department \"{}\"",
                plan.target, plan.department
            )),
            EngineError::Busy { build, run } => ApiError::conflict(format!(
                "target: build {build} of \"{}\" is being run by run {run} in this server; \
                 wait for it to end or halt it (POST /v1/runs/{run}/halt)",
                plan.target
            )),
            EngineError::AlreadyRunning(run) => ApiError::conflict(format!(
                "session_id: run {run} is already executing in this server"
            )),
            other => other.into(),
        })?;
    Ok((
        StatusCode::ACCEPTED,
        Json(Started {
            session_id: handle.id().to_string(),
        }),
    ))
}
