//! The organization loop over the API: `POST /v1/loop/start` runs it in this server (the
//! engine's `org_loop`, as `orket loop` does), `POST /v1/loop/stop` halts it — or the loop
//! another process runs, through the store —, `GET /v1/loop` shows its state, read from the
//! loop's row when another process runs it.

use crate::error::{ApiError, ApiResult};
use crate::runs::provider_choice;
use crate::{body_number, body_text, body_value, AppState};
use axum::body::Bytes;
use axum::extract::rejection::BytesRejection;
use axum::extract::State;
use axum::http::StatusCode;
use axum::Json;
use orket_core::ids::LOOP_LEASE;
use orket_engine::lease::{holder, holder_is_gone, STALE_AFTER};
use orket_engine::org_loop::LoopCard;
use orket_engine::{EngineError, LoopOptions, LoopState, RunOptions};
use orket_store::{LeaseRecord, StoreError};
use serde::{Deserialize, Serialize};
use serde_json::{Map, Value};
use std::time::Duration;
use utoipa::ToSchema;

/// The largest budget a request may give (tokens or seconds).
const MAX_BUDGET: u64 = 1_000_000_000;

/// `POST /v1/loop/start` body (every field optional).
#[derive(Debug, Deserialize, ToSchema)]
pub struct LoopRequest {
    /// Pick only this department's epics (default: every department's).
    pub department: Option<String>,
    /// Stop once nothing is ready instead of sleeping.
    pub once: Option<bool>,
    /// Seconds to sleep between looks when nothing is ready (1–86400, default 30).
    #[schema(minimum = 1, maximum = 86_400)]
    pub idle_sleep: Option<u64>,
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
    /// Turns in flight at once within a card's run (1–64, default 3).
    #[schema(minimum = 1, maximum = 64)]
    pub concurrency: Option<usize>,
    /// Tokens the loop's cards may use in all.
    #[schema(maximum = 1_000_000_000)]
    pub token_budget: Option<u64>,
    /// Seconds the loop may run.
    #[schema(maximum = 1_000_000_000)]
    pub time_budget: Option<u64>,
    /// Tokens each card's run may use.
    #[schema(maximum = 1_000_000_000)]
    pub card_token_budget: Option<u64>,
    /// Seconds each card's run may take.
    #[schema(maximum = 1_000_000_000)]
    pub card_time_budget: Option<u64>,
}

/// `{"id"}` of a started loop.
#[derive(Debug, Serialize, ToSchema)]
pub struct LoopStarted {
    /// The loop's id (its row: `orket show <id>`).
    pub id: String,
}

/// `{"id", "status": "halting"}`.
#[derive(Debug, Serialize, ToSchema)]
pub struct LoopHalting {
    /// The loop's id.
    pub id: String,
    /// `halting`.
    pub status: String,
}

/// The card a loop is running.
#[derive(Debug, Serialize, ToSchema)]
pub struct LoopCardView {
    /// Its run.
    pub run: String,
    /// The issue (for a resumed run, the run's target).
    pub issue: String,
    /// Its epic.
    pub epic: String,
    /// Its department.
    pub department: String,
    /// Its critical-path score when picked (null for a resumed run).
    pub score: Option<f64>,
    /// How many issues waited on it (null for a resumed run).
    pub downstream: Option<usize>,
}

/// The process running a loop.
#[derive(Debug, Serialize, ToSchema)]
pub struct LoopHolder {
    /// Its pid.
    pub pid: u32,
    /// Its host.
    pub host: String,
    /// Its last heartbeat.
    pub heartbeat_at: String,
}

/// `GET /v1/loop`: the loop running in this project (here or in another process), else the
/// last one this server ran, else `{"running": false}`.
#[derive(Debug, Default, Serialize, ToSchema)]
pub struct LoopView {
    /// Whether a loop runs.
    pub running: bool,
    /// Whether it runs (or ran) in this server.
    pub here: bool,
    /// Its id.
    pub id: Option<String>,
    /// When it started.
    pub since: Option<String>,
    /// The department it picks from (null: every department).
    pub department: Option<String>,
    /// Whether it stops once nothing is ready.
    pub once: Option<bool>,
    /// Seconds it sleeps between looks when nothing is ready.
    pub idle_sleep_secs: Option<u64>,
    /// The card it runs now.
    pub current: Option<LoopCardView>,
    /// Cards it ran to their end.
    pub cards: Option<usize>,
    /// Tokens their turns used.
    pub tokens: Option<u64>,
    /// Its latest decision, in words.
    pub last_decision: Option<String>,
    /// How it ended (`completed`, `canceled`, `budget_exceeded`, `failed`), once it has.
    pub status: Option<String>,
    /// Why.
    pub reason: Option<String>,
    /// The process running it.
    pub holder: Option<LoopHolder>,
}

impl LoopView {
    fn of(state: LoopState, here: bool, lease: Option<&LeaseRecord>) -> LoopView {
        LoopView {
            running: state.running,
            here,
            id: Some(state.id),
            since: Some(state.since),
            department: state.department,
            once: Some(state.once),
            idle_sleep_secs: Some(state.idle_sleep_secs),
            current: state.current.map(card_view),
            cards: Some(state.cards),
            tokens: Some(state.tokens),
            last_decision: state.last_decision,
            status: state.status.map(|s| s.to_string()),
            reason: state.reason,
            holder: lease.map(|l| LoopHolder {
                pid: l.holder.pid,
                host: l.holder.host.clone(),
                heartbeat_at: l.heartbeat_at.clone(),
            }),
        }
    }
}

fn card_view(card: LoopCard) -> LoopCardView {
    LoopCardView {
        run: card.run,
        issue: card.issue,
        epic: card.epic,
        department: card.department,
        score: card.score,
        downstream: card.downstream,
    }
}

/// The project's loop lease, when a live loop holds it: another live process's, or this
/// process's while its loop of that id runs (a lease left behind by a loop of this process
/// whose end could not be recorded holds nothing).
async fn live_lease(state: &AppState) -> ApiResult<Option<LeaseRecord>> {
    let lease = state.store().get_lease(LOOP_LEASE).await?;
    let here = state
        .engine()
        .current_loop()
        .filter(|c| c.is_running())
        .map(|c| c.id().to_string());
    Ok(lease.filter(|l| {
        if l.holder.token == holder().token {
            here.as_deref() == Some(l.run_id.as_str())
        } else {
            !(l.is_stale(STALE_AFTER) || holder_is_gone(l))
        }
    }))
}

/// The loop's state: here, or read from the row of the loop another process runs.
#[utoipa::path(get, path = "/v1/loop", responses((status = 200, body = LoopView)))]
pub async fn status(State(state): State<AppState>) -> ApiResult<Json<LoopView>> {
    let here = state.engine().current_loop();
    let lease = live_lease(&state).await?;
    if let Some(control) = here.as_ref().filter(|c| c.is_running()) {
        return Ok(Json(LoopView::of(control.state(), true, lease.as_ref())));
    }
    if let Some(lease) = &lease {
        if let Some(run) = state.store().get_run(&lease.run_id).await? {
            if let Ok(mut loop_state) = serde_json::from_value::<LoopState>(run.params) {
                loop_state.running = true;
                return Ok(Json(LoopView::of(loop_state, false, Some(lease))));
            }
        }
    }
    Ok(Json(match here {
        Some(control) => LoopView::of(control.state(), true, None),
        None => LoopView::default(),
    }))
}

/// Starts the organization loop in this server: 202 with its id; 409 while a loop runs (here
/// or in another process, named); 400 naming a bad field or an unknown department.
#[utoipa::path(post, path = "/v1/loop/start", request_body = LoopRequest,
    responses((status = 202, body = LoopStarted), (status = 400), (status = 409), (status = 413)))]
pub async fn start(
    State(state): State<AppState>,
    body: Result<Bytes, BytesRejection>,
) -> ApiResult<(StatusCode, Json<LoopStarted>)> {
    let body = body_value(body)?;
    let empty = Map::new();
    let map = match &body {
        Value::Object(map) => map,
        Value::Null => &empty,
        _ => return Err(ApiError::bad_request("body: expected a JSON object")),
    };
    // A loop that runs already is the answer, whatever the body says.
    if let Some(control) = state.engine().current_loop().filter(|c| c.is_running()) {
        return Err(running(EngineError::LoopRunning(control.id().to_string())));
    }
    if let Some(lease) = live_lease(&state).await? {
        return Err(running(EngineError::LoopHeld(Box::new(lease))));
    }
    let options = loop_options(&state, map)?;
    let handle = state
        .engine()
        .start_loop(options)
        .await
        .map_err(|err| match err {
            EngineError::LoopHeld(_) | EngineError::LoopRunning(_) => running(err),
            EngineError::NotFound(message) => {
                ApiError::bad_request(format!("department: {message}"))
            }
            other => other.into(),
        })?;
    let id = handle.control().id().to_string();
    tokio::spawn(async move {
        if let Err(e) = handle.join().await {
            tracing::error!("the loop could not end cleanly: {e}");
        }
    });
    Ok((StatusCode::ACCEPTED, Json(LoopStarted { id })))
}

/// 409 for a loop that runs already, naming it.
fn running(err: EngineError) -> ApiError {
    ApiError::conflict(format!("{err}; stop it first (POST /v1/loop/stop)"))
}

/// The loop's options from a request body, read field by field so a 400 names the field.
fn loop_options(state: &AppState, map: &Map<String, Value>) -> ApiResult<LoopOptions> {
    let department = body_text(map, "department")?;
    if let Some(d) = department
        .as_deref()
        .filter(|d| !orket_core::assets::is_plain_name(d))
    {
        return Err(ApiError::bad_request(format!(
            "department: \"{d}\" is not a plain folder name"
        )));
    }
    let once = match map.get("once") {
        None | Some(Value::Null) => false,
        Some(Value::Bool(b)) => *b,
        Some(other) => {
            return Err(ApiError::bad_request(format!(
                "once: expected true or false, found {other}"
            )))
        }
    };
    let idle_sleep = match body_number(map, "idle_sleep", 86_400)? {
        Some(0) => return Err(ApiError::bad_request("idle_sleep: must be at least 1")),
        Some(n) => n,
        None => 30,
    };
    let concurrency = match body_number(map, "concurrency", 64)? {
        Some(0) => return Err(ApiError::bad_request("concurrency: must be at least 1")),
        Some(n) => n as usize,
        None => 3,
    };
    let budget = |name| body_number(map, name, MAX_BUDGET);
    let seconds = |name| budget(name).map(|n| n.map(Duration::from_secs));
    let provider = provider_choice(state, map)?;
    let provider = (state.config().providers)(&provider)
        .map_err(|e| ApiError::bad_request(format!("provider: {e}")))?;
    let card = RunOptions {
        model: body_text(map, "model")?,
        concurrency,
        token_budget: budget("card_token_budget")?,
        time_budget: seconds("card_time_budget")?,
        ..state.config().run_options(provider)
    };
    Ok(LoopOptions {
        department,
        once,
        idle_sleep: Duration::from_secs(idle_sleep),
        token_budget: budget("token_budget")?,
        time_budget: seconds("time_budget")?,
        card,
    })
}

/// Asks the loop to stop — this server's, or the one another process runs (through the
/// store) —: its card in flight halts at its next turn boundary, then the loop ends. 202; 404
/// when no loop runs.
#[utoipa::path(post, path = "/v1/loop/stop",
    responses((status = 202, body = LoopHalting), (status = 404)))]
pub async fn stop(State(state): State<AppState>) -> ApiResult<(StatusCode, Json<LoopHalting>)> {
    let id = match state.engine().current_loop().filter(|c| c.is_running()) {
        Some(control) => {
            control.halt().await?;
            control.id().to_string()
        }
        None => {
            let lease = live_lease(&state)
                .await?
                .ok_or_else(|| ApiError::not_found("no loop is running in this project"))?;
            match orket_engine::request_halt(state.recorder(), &lease.run_id).await {
                // It ended since the lease was read.
                Err(EngineError::NotFound(_) | EngineError::Store(StoreError::Conflict(_))) => {
                    return Err(ApiError::not_found("no loop is running in this project"))
                }
                other => other?,
            }
            lease.run_id
        }
    };
    Ok((
        StatusCode::ACCEPTED,
        Json(LoopHalting {
            id,
            status: "halting".to_string(),
        }),
    ))
}
