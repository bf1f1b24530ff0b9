//! What the review loop recorded, behind the API key: `GET /v1/webhooks` (deliveries and what
//! each did) and `GET /v1/prs` (pull requests with their cycles).

use crate::error::{ApiQuery, ApiResult};
use crate::AppState;
use axum::extract::State;
use axum::Json;
use orket_store::{DeliveryRecord, PullRequestRecord, ReviewCycle};
use serde::{Deserialize, Serialize};
use utoipa::{IntoParams, ToSchema};

/// `?limit=`.
#[derive(Debug, Deserialize, IntoParams)]
#[into_params(parameter_in = Query)]
pub struct LimitQuery {
    /// How many deliveries (default 50, at most 1000).
    pub limit: Option<i64>,
}

/// A pull request with its review cycles.
#[derive(Debug, Serialize, ToSchema)]
pub struct PullRequestView {
    /// The pull request.
    #[serde(flatten)]
    #[schema(value_type = Object)]
    pub pr: PullRequestRecord,
    /// Changes requested in its current epoch.
    pub cycles: usize,
    /// Every cycle, every epoch, in order.
    #[schema(value_type = Vec<Object>)]
    pub history: Vec<ReviewCycle>,
}

/// The most recent webhook deliveries, newest first: event, repository, pull request, body
/// SHA-256, outcome and why.
#[utoipa::path(get, path = "/v1/webhooks", params(LimitQuery),
    responses((status = 200, description = "deliveries, newest first", body = Vec<Object>)))]
pub async fn deliveries(
    State(state): State<AppState>,
    ApiQuery(query): ApiQuery<LimitQuery>,
) -> ApiResult<Json<Vec<DeliveryRecord>>> {
    let limit = query.limit.unwrap_or(50).clamp(1, 1000);
    Ok(Json(state.store().list_deliveries(limit).await?))
}

/// The pull requests Orket knows of, with their card, state, last review and cycles.
#[utoipa::path(get, path = "/v1/prs",
    responses((status = 200, description = "pull requests, most recently changed first", body = Vec<PullRequestView>)))]
pub async fn pull_requests(State(state): State<AppState>) -> ApiResult<Json<Vec<PullRequestView>>> {
    let store = state.store();
    let mut views = Vec::new();
    for pr in store.list_pull_requests().await? {
        let history = store.review_cycles(&pr.pr.repository, pr.pr.number).await?;
        let cycles = history.iter().filter(|c| c.epoch == pr.epoch).count();
        views.push(PullRequestView {
            pr,
            cycles,
            history,
        });
    }
    Ok(Json(views))
}
