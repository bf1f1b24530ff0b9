//! `WS /ws/events?run_id=`: every committed event as a JSON text frame, optionally of one run.
//! Each client has its own bounded receiver on the bus: a slow client never blocks a run; when
//! it falls behind it receives `{"event": "lagged", "data": {"skipped": n}}` and goes on.

use crate::error::ApiQuery;
use crate::AppState;
use axum::extract::ws::{Message, WebSocket, WebSocketUpgrade};
use axum::extract::State;
use axum::response::Response;
use futures::{SinkExt, StreamExt};
use orket_core::Event;
use serde::Deserialize;
use serde_json::json;
use tokio::sync::broadcast::error::RecvError;
use utoipa::IntoParams;

/// `?run_id=` (and `?api_key=`, read by the key check).
#[derive(Debug, Deserialize, IntoParams)]
#[into_params(parameter_in = Query)]
pub struct EventsQuery {
    /// Only this run's events.
    pub run_id: Option<String>,
    /// The API key, for clients that cannot send headers (browsers).
    pub api_key: Option<String>,
}

/// Upgrades to a WebSocket streaming the events.
#[utoipa::path(get, path = "/ws/events", params(EventsQuery),
    responses((status = 101, description = "WebSocket of events: {id, timestamp, run_id, role, event, issue_id, data} per text frame"),
        (status = 401), (status = 403)))]
pub async fn events(
    State(state): State<AppState>,
    ApiQuery(query): ApiQuery<EventsQuery>,
    upgrade: WebSocketUpgrade,
) -> Response {
    let run_id = query.run_id.filter(|r| !r.is_empty());
    // Subscribe before the upgrade completes, so no event after the answer is missed.
    let rx = state.bus().subscribe();
    upgrade.on_upgrade(move |socket| stream(socket, rx, run_id))
}

async fn stream(
    socket: WebSocket,
    mut rx: tokio::sync::broadcast::Receiver<std::sync::Arc<orket_store::EventRecord>>,
    run_id: Option<String>,
) {
    let (mut sink, mut incoming) = socket.split();
    loop {
        tokio::select! {
            received = rx.recv() => {
                let frame = match received {
                    Ok(event) => {
                        if run_id.is_some() && event.run_id != run_id {
                            continue;
                        }
                        match serde_json::to_string(event.as_ref()) {
                            Ok(text) => text,
                            Err(e) => {
                                tracing::warn!("event {} cannot be sent: {e}", event.id);
                                continue;
                            }
                        }
                    }
                    Err(RecvError::Lagged(skipped)) => {
                        // Not a stored event: no row id.
                        let lagged = Event::Lagged { skipped };
                        json!({
                            "timestamp": orket_store::now_timestamp(),
                            "run_id": run_id,
                            "role": null,
                            "event": lagged.name(),
                            "issue_id": null,
                            "data": lagged.data(),
                        })
                        .to_string()
                    }
                    Err(RecvError::Closed) => break,
                };
                if sink.send(Message::Text(frame.into())).await.is_err() {
                    break;
                }
            }
            message = incoming.next() => match message {
                Some(Ok(Message::Close(_))) | None | Some(Err(_)) => break,
                Some(Ok(_)) => {}
            },
        }
    }
}
