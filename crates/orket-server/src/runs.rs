//! Runs over the API: start one in this process (`POST /v1/system/run-active`), list them,
//! their backlog, per-role metrics, transcript and snapshot, and halt one at a turn boundary.

use crate::error::{ApiError, ApiQuery, ApiResult};
use crate::{body_department, body_number, body_text, body_value, AppState, ProviderChoice};
use axum::body::Bytes;
use axum::extract::rejection::BytesRejection;
use axum::extract::{Path, State};
use axum::http::StatusCode;
use axum::Json;
use futures::FutureExt;
use orket_core::ids::{epic_build_id, new_run_id, rock_build_id};
use orket_core::{RunKind, RunStatus, Status};
use orket_engine::engine::{Engine, EngineOptions, Halt, Target};
use orket_governance::confine::{Confinement, Rules};
use orket_store::{Change, EventRecord, IssueRecord, NewEvent, RunRecord, RunUpdate, TurnRecord};
use serde::{Deserialize, Serialize};
use serde_json::{json, Map, Value};
use std::collections::BTreeMap;
use std::panic::AssertUnwindSafe;
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
    /// The parsed tool calls.
    #[schema(value_type = Object)]
    pub tool_calls: Value,
    /// Their results.
    #[schema(value_type = Object)]
    pub tool_results: Value,
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
    pub target: String,
    /// The department to look it up in (`core`).
    pub department: Option<String>,
    /// `embedded`, `ollama`, `openai` or `replay` (default `$ORKET_PROVIDER`, or `replay` when
    /// a replay file is given).
    pub provider: Option<String>,
    /// The replay file, relative to the project root.
    pub replay: Option<String>,
    /// Simulated model time per replayed reply, in milliseconds.
    pub replay_delay_ms: Option<u64>,
    /// A model for every turn.
    pub model: Option<String>,
    /// Start the build over.
    pub reset: Option<bool>,
    /// Turns in flight at once (1–64, default 3).
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
        active: state.halt_of(&run.id).is_some(),
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
        let calls = t
            .turn
            .tool_calls
            .as_array()
            .map(Vec::as_slice)
            .unwrap_or_default();
        let results = t
            .turn
            .tool_results
            .as_array()
            .map(Vec::as_slice)
            .unwrap_or_default();
        m.tool_calls += calls.len();
        for (call, result) in calls.iter().zip(results) {
            if call["name"] == "write_file" && result["ok"] == true {
                m.lines_written += call["args"]["content"]
                    .as_str()
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
            .map(|t| {
                let t = t.turn;
                TurnView {
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

/// Asks a run executing in this server to stop at the next turn boundary.
#[utoipa::path(post, path = "/v1/runs/{id}/halt", params(("id" = String, Path, description = "run id")),
    responses((status = 202, body = Halting), (status = 404), (status = 409)))]
pub async fn halt(
    State(state): State<AppState>,
    Path(id): Path<String>,
) -> ApiResult<(StatusCode, Json<Halting>)> {
    if let Some(halt) = state.halt_of(&id) {
        halt.halt();
        return Ok((
            StatusCode::ACCEPTED,
            Json(Halting {
                id,
                status: "halting".to_string(),
            }),
        ));
    }
    let run = find_run(&state, &id).await?;
    Err(ApiError::conflict(format!(
        "run {id} is not executing in this server (status {})",
        run.status
    )))
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

/// Starts a run in this server and answers at once with its id.
#[utoipa::path(post, path = "/v1/system/run-active", request_body = RunRequest,
    responses((status = 202, body = Started), (status = 400), (status = 404), (status = 413)))]
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
    let halt = Halt::new();
    let mut options = EngineOptions::from_env();
    options.department = plan.department.clone();
    options.model = plan.model;
    options.reset = plan.reset;
    options.concurrency = plan.concurrency;
    options.run_id = Some(run_id.clone());
    options.halt = halt.clone();
    let engine = Engine::new(
        state.tree().clone(),
        std::sync::Arc::clone(state.store()),
        provider,
        state.bus().clone(),
        options,
    );
    let Some(kind) = engine.resolve(&plan.target) else {
        return Err(ApiError::not_found(format!(
            "target: \"{}\" is no epic, rock or issue of department \"{}\"",
            plan.target, plan.department
        )));
    };
    // Two runs of one build at once would race on its issues (and a `reset` would delete
    // them under the live run).
    let builds = builds_of(&state, &plan.target, &plan.department, &kind);
    let guard = state
        .claim_builds(&run_id, halt, builds)
        .map_err(|(other, build)| {
            ApiError::conflict(format!(
                "target: build {build} of \"{}\" is being run by run {other} in this server; \
                 wait for it to end or halt it (POST /v1/runs/{other}/halt)",
                plan.target
            ))
        })?;
    let task_state = state.clone();
    let id = run_id.clone();
    tokio::spawn(async move {
        // Released however the task ends (normally, with an error, by a panic, or dropped).
        let _active = guard;
        let outcome = AssertUnwindSafe(engine.run_card(&plan.target))
            .catch_unwind()
            .await;
        let error = match outcome {
            Ok(Ok(_)) => return,
            Ok(Err(err)) => err.to_string(),
            Err(panic) => format!("the run panicked: {}", panic_message(panic.as_ref())),
        };
        tracing::warn!("run {id} ({}) failed: {error}", plan.target);
        if let Err(e) = record_failure(
            &task_state,
            &id,
            &plan.target,
            &plan.department,
            &kind,
            &error,
        )
        .await
        {
            tracing::error!("cannot record the failure of run {id}: {e}");
        }
    });
    Ok((StatusCode::ACCEPTED, Json(Started { session_id: run_id })))
}

/// The builds a run of `target` works on: its epic's, or a rock's own and its epics'.
fn builds_of(state: &AppState, target: &str, department: &str, kind: &Target) -> Vec<String> {
    match kind {
        Target::Epic => vec![epic_build_id(target)],
        Target::Issue { epic } => vec![epic_build_id(epic)],
        Target::Rock => {
            let mut builds = vec![rock_build_id(target)];
            if let Ok(rock) = state.tree().load_rock(target, department) {
                builds[0] = rock_build_id(&rock.stem);
                builds.extend(rock.epics.iter().map(|e| epic_build_id(&e.epic)));
            }
            builds
        }
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

/// A run that failed before it could end on its own (assets that do not load, a store error):
/// its row is created or ended `failed` with the error, and a `session_end` event published.
async fn record_failure(
    state: &AppState,
    run_id: &str,
    target: &str,
    department: &str,
    kind: &Target,
    error: &str,
) -> Result<(), orket_store::StoreError> {
    let store = state.store();
    let mut changes = Vec::new();
    match store.get_run(run_id).await? {
        Some(run) if run.status.is_final() => return Ok(()),
        Some(_) => {}
        None => {
            let (run_kind, build) = match kind {
                Target::Epic => (RunKind::Epic, epic_build_id(target)),
                Target::Rock => (RunKind::Rock, rock_build_id(target)),
                Target::Issue { epic } => (RunKind::Issue, epic_build_id(epic)),
            };
            changes.push(Change::CreateRun(RunRecord::new(
                run_id, run_kind, target, build, department, "",
            )));
        }
    }
    changes.push(Change::UpdateRun {
        id: run_id.to_string(),
        update: RunUpdate::finish(RunStatus::Failed, error),
    });
    let event = NewEvent {
        run_id: Some(run_id.to_string()),
        role: None,
        event: orket_store::events::names::SESSION_END.to_string(),
        issue_id: None,
        data: Value::Object(Map::from_iter([
            ("status".to_string(), json!(RunStatus::Failed)),
            ("reason".to_string(), json!(error)),
            ("turns".to_string(), json!(0)),
        ])),
        timestamp: Some(orket_store::now_timestamp()),
    };
    changes.push(Change::AppendEvent(event.clone()));
    let applied = store.apply(changes).await?;
    if let Some(id) = applied.last().and_then(|a| a.id()) {
        state.bus().publish(EventRecord {
            id,
            run_id: event.run_id,
            timestamp: event.timestamp.unwrap_or_default(),
            role: None,
            event: event.event,
            issue_id: None,
            data: event.data,
        });
    }
    Ok(())
}
