//! `GET /v1/workers`: the fleet's workers (on a PostgreSQL store; none on SQLite).

use crate::error::ApiResult;
use crate::AppState;
use axum::extract::State;
use axum::Json;
use orket_store::fleet::WorkerRecord;

/// The fleet's workers by name: host, models served, last seen (or stopped), jobs held now
/// and turns committed.
#[utoipa::path(get, path = "/v1/workers",
    responses((status = 200, description = "the fleet's workers, by name (none on a SQLite store)", body = Vec<Object>)))]
pub async fn list(State(state): State<AppState>) -> ApiResult<Json<Vec<WorkerRecord>>> {
    Ok(Json(state.store().list_workers().await?))
}
