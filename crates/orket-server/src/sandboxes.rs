//! Sandboxes and the asset preview, over the engine's
//! `SandboxManager` and `preview`: list (never passwords), stop, logs; an epic, rock or issue
//! flattened with each seat's compiled prompt.

use crate::error::{ApiError, ApiQuery, ApiResult};
use crate::AppState;
use axum::extract::{Path, State};
use axum::Json;
use orket_engine::preview::{preview, AssetPreview, PreviewOptions};
use orket_sandbox::{SandboxError, SandboxInfo, SandboxManager};
use orket_store::events::EventSink;
use orket_store::SandboxRecord;
use serde::{Deserialize, Serialize};
use std::sync::Arc;
use utoipa::{IntoParams, ToSchema};

/// The most log lines one request returns.
const MAX_TAIL: usize = 10_000;

fn manager(state: &AppState) -> SandboxManager {
    SandboxManager::for_project(Arc::clone(state.store()), state.root())
        .with_sink(EventSink::new(state.bus().clone(), None))
}

impl From<SandboxError> for ApiError {
    fn from(err: SandboxError) -> Self {
        match err {
            SandboxError::NotFound(_) => ApiError::not_found(err.to_string()),
            SandboxError::NoFreePorts => ApiError::conflict(err.to_string()),
            SandboxError::Store(store) => store.into(),
            SandboxError::Compose { .. } => {
                ApiError::new(axum::http::StatusCode::BAD_GATEWAY, err.to_string())
            }
            other => ApiError::internal(other.to_string()),
        }
    }
}

/// The sandboxes, newest first, with their URLs (never a password).
#[utoipa::path(get, path = "/v1/sandboxes",
    responses((status = 200, description = "the sandboxes: registry rows with their urls", body = [Object])))]
pub async fn list(State(state): State<AppState>) -> ApiResult<Json<Vec<SandboxInfo>>> {
    Ok(Json(manager(&state).list().await?))
}

/// Stops a sandbox (`docker compose down`) and releases its ports.
#[utoipa::path(post, path = "/v1/sandboxes/{id}/stop", params(("id" = String, Path, description = "sandbox id")),
    responses((status = 200, description = "the sandbox as stopped", body = Object), (status = 404), (status = 502)))]
pub async fn stop(
    State(state): State<AppState>,
    Path(id): Path<String>,
) -> ApiResult<Json<SandboxRecord>> {
    Ok(Json(manager(&state).stop(&id).await?))
}

/// `?tail=`.
#[derive(Debug, Deserialize, IntoParams)]
#[into_params(parameter_in = Query)]
pub struct LogsQuery {
    /// How many last lines (default 200, at most 10000).
    pub tail: Option<usize>,
}

/// A sandbox's container logs.
#[derive(Debug, Serialize, ToSchema)]
pub struct Logs {
    /// The sandbox.
    pub id: String,
    /// The last lines of its containers' logs.
    pub logs: String,
}

/// The last lines of a sandbox's container logs.
#[utoipa::path(get, path = "/v1/sandboxes/{id}/logs", params(("id" = String, Path, description = "sandbox id"), LogsQuery),
    responses((status = 200, body = Logs), (status = 404), (status = 502)))]
pub async fn logs(
    State(state): State<AppState>,
    Path(id): Path<String>,
    ApiQuery(query): ApiQuery<LogsQuery>,
) -> ApiResult<Json<Logs>> {
    let tail = query.tail.unwrap_or(200).clamp(1, MAX_TAIL);
    let logs = manager(&state).logs(&id, tail).await?;
    Ok(Json(Logs { id, logs }))
}

/// A sandbox's health: whether its containers run, and what `ps` said.
#[derive(Debug, Serialize, ToSchema)]
pub struct SandboxHealthView {
    /// The sandbox.
    pub id: String,
    /// Its containers run.
    pub healthy: bool,
    /// What `docker compose ps` said, or why it failed.
    pub detail: String,
}

/// Checks a sandbox's containers and records `sandbox_health`.
#[utoipa::path(get, path = "/v1/sandboxes/{id}/health", params(("id" = String, Path, description = "sandbox id")),
    responses((status = 200, body = SandboxHealthView), (status = 404)))]
pub async fn health(
    State(state): State<AppState>,
    Path(id): Path<String>,
) -> ApiResult<Json<SandboxHealthView>> {
    let health = manager(&state).health(&id).await?;
    Ok(Json(SandboxHealthView {
        id: health.id,
        healthy: health.healthy,
        detail: health.detail,
    }))
}

/// `?name=&dept=&model=`.
#[derive(Debug, Deserialize, IntoParams)]
#[into_params(parameter_in = Query)]
pub struct PreviewQuery {
    /// An epic or rock name, or an issue id.
    // Required: an `Option` only so that a missing one gets this API's own 400 naming it.
    #[param(required = true, min_length = 1)]
    pub name: Option<String>,
    /// The department (`core` when absent or empty).
    pub dept: Option<String>,
    /// A model for every seat (changes the dialect).
    pub model: Option<String>,
}

/// An epic, rock or issue flattened, with each seat's compiled prompt.
#[utoipa::path(get, path = "/v1/system/preview-asset", params(PreviewQuery),
    responses((status = 200, description = "the preview", body = Object), (status = 400), (status = 404)))]
pub async fn preview_asset(
    State(state): State<AppState>,
    ApiQuery(query): ApiQuery<PreviewQuery>,
) -> ApiResult<Json<AssetPreview>> {
    let name = query
        .name
        .as_deref()
        .map(str::trim)
        .filter(|n| !n.is_empty())
        .ok_or_else(|| {
            ApiError::bad_request("name: required (an epic or rock name, or an issue id)")
        })?;
    let dept = query
        .dept
        .filter(|d| !d.is_empty())
        .unwrap_or_else(|| "core".to_string());
    if !orket_core::assets::is_plain_name(&dept) {
        return Err(ApiError::bad_request(format!(
            "dept: \"{dept}\" is not a plain folder name"
        )));
    }
    let options = PreviewOptions {
        department: dept,
        model: query.model.filter(|m| !m.trim().is_empty()),
        ..PreviewOptions::default()
    };
    let view = preview(
        state.tree(),
        Some(state.store().as_ref()),
        &options,
        state.engine().registry(),
        name,
    )
    .await?;
    Ok(Json(view))
}
