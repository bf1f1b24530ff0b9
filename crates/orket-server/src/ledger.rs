//! `GET /v1/ledger`: the success ledger — what was finished, when, by which run.

use crate::error::{ApiQuery, ApiResult};
use crate::AppState;
use axum::extract::State;
use axum::Json;
use orket_store::SuccessRecord;
use serde::Deserialize;
use utoipa::IntoParams;

/// `?build=`.
#[derive(Debug, Deserialize, IntoParams)]
#[into_params(parameter_in = Query)]
pub struct LedgerQuery {
    /// Only this build's rows.
    pub build: Option<String>,
}

/// The success ledger: each run that finished its card (run, build, card, when, details),
/// oldest first.
#[utoipa::path(get, path = "/v1/ledger", params(LedgerQuery),
    responses((status = 200, description = "what was finished, when, by which run", body = Vec<Object>)))]
pub async fn list(
    State(state): State<AppState>,
    ApiQuery(query): ApiQuery<LedgerQuery>,
) -> ApiResult<Json<Vec<SuccessRecord>>> {
    let build = query.build.as_deref().filter(|b| !b.is_empty());
    Ok(Json(state.store().list_success(build).await?))
}
