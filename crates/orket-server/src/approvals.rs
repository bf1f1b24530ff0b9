//! Tool calls waiting for a person (`process_rules.approval_required`): list, approve (the
//! call runs and the issue goes back to where it was parked), reject (the reason becomes a
//! comment and the issue goes back to `ready`). See `orket_engine::approval`.

use crate::error::{ApiError, ApiQuery, ApiResult};
use crate::{body_value, AppState};
use axum::body::Bytes;
use axum::extract::rejection::BytesRejection;
use axum::extract::{Path, State};
use axum::Json;
use orket_engine::approval::ApprovalDecision;
use orket_store::{ApprovalRecord, Change};
use serde::{Deserialize, Serialize};
use serde_json::Value;
use std::sync::Arc;
use utoipa::{IntoParams, ToSchema};

/// A parked tool call and its decision.
#[derive(Debug, Serialize, ToSchema)]
pub struct ApprovalView {
    /// The approval id.
    pub id: i64,
    /// The run whose turn made the call.
    pub run_id: String,
    /// The issue's build.
    pub build_id: String,
    /// The issue.
    pub issue_id: String,
    /// The acting role.
    pub role: String,
    /// The seat that acted.
    pub seat: String,
    /// The tool.
    pub tool: String,
    /// Its arguments.
    #[schema(value_type = Object)]
    pub args: Value,
    /// `pending`, `approved` or `rejected`.
    pub status: String,
    /// The person's reason.
    pub reason: Option<String>,
    /// The tool's result, once approved.
    #[schema(value_type = Option<Object>)]
    pub result: Option<Value>,
    /// The issue's status when the call was parked.
    pub resume_status: String,
    /// When it was parked.
    pub created_at: String,
    /// When it was decided.
    pub decided_at: Option<String>,
}

impl From<ApprovalRecord> for ApprovalView {
    fn from(a: ApprovalRecord) -> Self {
        ApprovalView {
            id: a.id,
            run_id: a.call.run_id,
            build_id: a.call.build_id,
            issue_id: a.call.issue_id,
            role: a.call.role,
            seat: a.call.seat,
            tool: a.call.tool,
            args: a.call.args,
            status: a.status,
            reason: a.reason,
            result: a.result,
            resume_status: a.call.resume_status.to_string(),
            created_at: a.created_at,
            decided_at: a.decided_at,
        }
    }
}

/// `?run_id=`.
#[derive(Debug, Deserialize, IntoParams)]
#[into_params(parameter_in = Query)]
pub struct ApprovalQuery {
    /// Only this run's approvals.
    pub run_id: Option<String>,
}

/// `POST /v1/approvals/{id}/reject` body.
#[derive(Debug, Deserialize, ToSchema)]
pub struct RejectRequest {
    /// Why (shown to the agent as a comment).
    pub reason: Option<String>,
}

/// Approvals, pending and decided, by id.
#[utoipa::path(get, path = "/v1/approvals", params(ApprovalQuery),
    responses((status = 200, body = [ApprovalView])))]
pub async fn list(
    State(state): State<AppState>,
    ApiQuery(query): ApiQuery<ApprovalQuery>,
) -> ApiResult<Json<Vec<ApprovalView>>> {
    let run = query.run_id.as_deref().filter(|r| !r.is_empty());
    let approvals = state.store().list_approvals(run).await?;
    Ok(Json(
        approvals.into_iter().map(ApprovalView::from).collect(),
    ))
}

/// Runs the parked call and puts the issue back to where it was.
#[utoipa::path(post, path = "/v1/approvals/{id}/approve", params(("id" = i64, Path, description = "approval id")),
    responses((status = 200, body = ApprovalView), (status = 400), (status = 404), (status = 409)))]
pub async fn approve(
    State(state): State<AppState>,
    Path(id): Path<String>,
) -> ApiResult<Json<ApprovalView>> {
    decide(&state, &id, ApprovalDecision::Approve).await
}

/// Refuses the parked call; the reason becomes a comment and the issue goes back to ready.
#[utoipa::path(post, path = "/v1/approvals/{id}/reject", params(("id" = i64, Path, description = "approval id")),
    request_body = RejectRequest,
    responses((status = 200, body = ApprovalView), (status = 400), (status = 404), (status = 409)))]
pub async fn reject(
    State(state): State<AppState>,
    Path(id): Path<String>,
    body: Result<Bytes, BytesRejection>,
) -> ApiResult<Json<ApprovalView>> {
    let reason = match body_value(body)? {
        Value::Null => None,
        Value::Object(map) => match map.get("reason") {
            None | Some(Value::Null) => None,
            Some(Value::String(s)) => Some(s.clone()),
            Some(other) => {
                return Err(ApiError::bad_request(format!(
                    "reason: expected a string, found {other}"
                )))
            }
        },
        other => {
            return Err(ApiError::bad_request(format!(
                "body: expected a JSON object like {{\"reason\": \"...\"}}, found {other}"
            )))
        }
    };
    decide(&state, &id, ApprovalDecision::Reject { reason }).await
}

async fn decide(
    state: &AppState,
    id: &str,
    decision: ApprovalDecision,
) -> ApiResult<Json<ApprovalView>> {
    let id: i64 = id.parse().map_err(|_| {
        ApiError::bad_request(format!("id: \"{id}\" is not an approval id (a number)"))
    })?;
    let engine = state.engine().clone();
    // In its own task: a client that goes away mid-decision must not stop it between the
    // claim and the decision (the approval would stay `deciding`).
    let task = tokio::spawn(async move { engine.decide_approval(id, decision).await });
    let approval = match task.await {
        Ok(decided) => decided?,
        Err(panic) => {
            let store = Arc::clone(state.store());
            if let Err(e) = store.apply(vec![Change::ReleaseApproval { id }]).await {
                tracing::warn!("approval {id}: cannot give the claim back: {e}");
            }
            return Err(ApiError::internal(format!(
                "approval {id}: the decision failed: {panic}"
            )));
        }
    };
    Ok(Json(approval.into()))
}
