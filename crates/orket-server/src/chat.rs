//! `POST /v1/system/chat-driver`: one message to the driver, the operations-lead
//! model whose answer is one action on the asset tree (or a reply).

use crate::error::{ApiError, ApiResult};
use crate::{body_department, body_text, body_value, runs, AppState};
use axum::body::Bytes;
use axum::extract::rejection::BytesRejection;
use axum::extract::State;
use axum::http::StatusCode;
use axum::Json;
use orket_driver::{Driver, DriverError, DriverOptions};
use orket_llm::ChatMessage;
use orket_store::events::{EventSink, Recorder};
use serde::{Deserialize, Serialize};
use serde_json::Value;
use std::sync::Arc;
use utoipa::ToSchema;

/// One driver message at a time in this server: an action reads, edits and re-checks files, so
/// two at once could lose one's edit.
static DRIVER_LOCK: tokio::sync::Mutex<()> = tokio::sync::Mutex::const_new(());

/// The body of `POST /v1/system/chat-driver`.
#[derive(Debug, Deserialize, ToSchema)]
pub struct ChatRequest {
    /// The person's message.
    #[schema(min_length = 1, pattern = r"\S")]
    pub message: String,
    /// The conversation so far, oldest first (`role` `user` or `assistant`).
    pub history: Option<Vec<ChatTurn>>,
    /// `embedded`, `ollama`, `openai` or `replay` (default `$ORKET_PROVIDER`, or `replay` when
    /// a replay file is given).
    pub provider: Option<String>,
    /// The model [default: the organization's `process_rules.default_llm`].
    pub model: Option<String>,
    /// The replay file, relative to the project root (replies keyed issue `driver`, role
    /// `operations_lead`).
    pub replay: Option<String>,
    /// The department new epics and rocks go to (`core`).
    pub department: Option<String>,
}

/// One earlier message of the conversation.
#[derive(Debug, Deserialize, ToSchema)]
pub struct ChatTurn {
    /// `user` or `assistant`.
    pub role: String,
    /// Its text.
    pub content: String,
}

/// What the driver did.
#[derive(Debug, Serialize, ToSchema)]
pub struct ChatReply {
    /// The action applied (`create_epic`, ..., or `reply`).
    pub action: String,
    /// The model's message (`reply`) or what the action did.
    pub reply: String,
    /// The files written, relative to the project root.
    pub changed_files: Vec<String>,
}

/// Sends a message to the driver and applies the action it answers with.
#[utoipa::path(post, path = "/v1/system/chat-driver", request_body = ChatRequest,
    responses((status = 200, body = ChatReply), (status = 400, description = "bad body (names the field)"),
        (status = 422, description = "the action was refused by validation; nothing was written"),
        (status = 502, description = "the model call failed or its reply was not an action")))]
pub async fn chat_driver(
    State(state): State<AppState>,
    body: Result<Bytes, BytesRejection>,
) -> ApiResult<Json<ChatReply>> {
    let body = body_value(body)?;
    let Value::Object(map) = &body else {
        return Err(ApiError::bad_request(
            "body: expected a JSON object with at least \"message\"",
        ));
    };
    let message = body_text(map, "message")?
        .ok_or_else(|| ApiError::bad_request("message: required (what you ask the driver)"))?;
    let history = history(map.get("history"))?;
    let options = DriverOptions {
        model: body_text(map, "model")?,
        department: body_department(map)?,
        ..DriverOptions::default()
    };
    let choice = runs::provider_choice(&state, map)?;
    let provider = (state.config().providers)(&choice)
        .map_err(|e| ApiError::bad_request(format!("provider: {e}")))?;
    let driver = Driver::new(state.tree().clone(), provider, options).with_recorder(Recorder::new(
        Arc::clone(state.store()),
        EventSink::new(state.bus().clone(), None),
    ));
    let _one_at_a_time = DRIVER_LOCK.lock().await;
    match driver.handle(&history, &message).await {
        Ok(outcome) => Ok(Json(ChatReply {
            action: outcome.action,
            reply: outcome.reply,
            changed_files: outcome.changed_files,
        })),
        Err(err @ DriverError::Refused { .. }) => Err(ApiError::new(
            StatusCode::UNPROCESSABLE_ENTITY,
            err.to_string(),
        )),
        Err(err @ (DriverError::Model(_) | DriverError::BadReply { .. })) => {
            Err(ApiError::new(StatusCode::BAD_GATEWAY, err.to_string()))
        }
        Err(err @ DriverError::Io(_)) => Err(ApiError::internal(err.to_string())),
    }
}

/// `history`: a list of `{role: user|assistant, content}`; a 400 names the entry and field.
fn history(value: Option<&Value>) -> ApiResult<Vec<ChatMessage>> {
    let items = match value {
        None | Some(Value::Null) => return Ok(Vec::new()),
        Some(Value::Array(items)) => items,
        Some(other) => {
            return Err(ApiError::bad_request(format!(
                "history: expected a list of {{\"role\", \"content\"}}, found {other}"
            )))
        }
    };
    items
        .iter()
        .enumerate()
        .map(|(i, item)| {
            let content = match item.get("content") {
                Some(Value::String(s)) => s.clone(),
                _ => {
                    return Err(ApiError::bad_request(format!(
                        "history[{i}].content: expected a string"
                    )))
                }
            };
            match item.get("role").and_then(Value::as_str) {
                Some("user") => Ok(ChatMessage::user(content)),
                Some("assistant") => Ok(ChatMessage::assistant(content)),
                _ => Err(ApiError::bad_request(format!(
                    "history[{i}].role: expected \"user\" or \"assistant\""
                ))),
            }
        })
        .collect()
}
