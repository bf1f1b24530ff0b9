//! The route table: every route once, with its method, path and handler. [`build`] makes the
//! router from it and the OpenAPI test compares it with the document, so the two cannot drift.

use crate::error::ApiError;
use crate::{
    approvals, auth, chat, files, gitea, ledger, org_loop, origin, runs, sandboxes, system, web,
    workers, ws, AppState, MAX_BODY_BYTES,
};
use axum::extract::DefaultBodyLimit;
use axum::http::{header, HeaderName, HeaderValue, Method};
use axum::response::IntoResponse;
use axum::routing::{get, post, MethodRouter};
use axum::{middleware, Router};
use tower_http::cors::{AllowOrigin, CorsLayer};
use tower_http::timeout::RequestBodyTimeoutLayer;

/// One route: method, path (axum and OpenAPI share the `{param}` syntax) and handler.
pub struct Route {
    /// The HTTP method.
    pub method: Method,
    /// The path.
    pub path: &'static str,
    /// The handler.
    pub handler: MethodRouter<AppState>,
}

fn route(method: Method, path: &'static str, handler: MethodRouter<AppState>) -> Route {
    Route {
        method,
        path,
        handler,
    }
}

pub use crate::auth::needs_key;

/// Every route of the server.
pub fn table() -> Vec<Route> {
    use Method as M;
    vec![
        route(M::GET, "/", get(web::index)),
        route(M::GET, "/app.js", get(web::app_js)),
        route(M::GET, "/style.css", get(web::style_css)),
        route(M::GET, "/health", get(system::health)),
        route(M::GET, "/openapi.json", get(crate::openapi::document)),
        route(M::GET, "/v1/version", get(system::version)),
        route(M::GET, "/v1/system/heartbeat", get(system::heartbeat)),
        route(M::GET, "/v1/system/metrics", get(system::metrics)),
        route(M::GET, "/v1/system/calendar", get(system::calendar)),
        route(M::GET, "/v1/system/board", get(system::board)),
        route(M::GET, "/v1/system/explorer", get(files::explorer)),
        route(M::GET, "/v1/system/read", get(files::read)),
        route(M::POST, "/v1/system/save", post(files::save)),
        route(M::POST, "/v1/system/run-active", post(runs::run_active)),
        route(M::POST, "/v1/system/chat-driver", post(chat::chat_driver)),
        route(M::GET, "/v1/runs", get(runs::list)),
        route(M::GET, "/v1/runs/{id}/backlog", get(runs::backlog)),
        route(M::GET, "/v1/runs/{id}/metrics", get(runs::metrics)),
        route(M::POST, "/v1/runs/{id}/halt", post(runs::halt)),
        route(M::GET, "/v1/loop", get(org_loop::status)),
        route(M::POST, "/v1/loop/start", post(org_loop::start)),
        route(M::POST, "/v1/loop/stop", post(org_loop::stop)),
        route(M::GET, "/v1/sessions/{id}", get(runs::session)),
        route(M::GET, "/v1/sessions/{id}/snapshot", get(runs::snapshot)),
        route(M::GET, "/v1/approvals", get(approvals::list)),
        route(
            M::POST,
            "/v1/approvals/{id}/approve",
            post(approvals::approve),
        ),
        route(
            M::POST,
            "/v1/approvals/{id}/reject",
            post(approvals::reject),
        ),
        route(
            M::GET,
            "/v1/system/preview-asset",
            get(sandboxes::preview_asset),
        ),
        route(M::GET, "/v1/sandboxes", get(sandboxes::list)),
        route(M::POST, "/v1/sandboxes/{id}/stop", post(sandboxes::stop)),
        route(M::GET, "/v1/sandboxes/{id}/logs", get(sandboxes::logs)),
        route(M::GET, "/v1/sandboxes/{id}/health", get(sandboxes::health)),
        route(M::GET, "/ws/events", get(ws::events)),
        route(M::POST, "/webhook/gitea", post(gitea::webhook)),
        route(M::GET, "/v1/webhooks", get(gitea::views::deliveries)),
        route(M::GET, "/v1/prs", get(gitea::views::pull_requests)),
        route(M::GET, "/v1/workers", get(workers::list)),
        route(M::GET, "/v1/ledger", get(ledger::list)),
    ]
}

/// The router of [`table`]: the host / origin / content-type check and the key check on `/v1`
/// and `/ws`, the 1 MiB body limit, JSON errors for unknown routes, and CORS for
/// `ORKET_ALLOWED_ORIGINS`.
pub fn build(state: AppState) -> Router {
    let mut open = Router::new();
    let mut guarded = Router::new();
    for r in table() {
        if needs_key(r.path) {
            guarded = guarded.route(r.path, r.handler);
        } else {
            open = open.route(r.path, r.handler);
        }
    }
    // Layers run outside in: the origin check first, then the key, then the body's timeout
    // (innermost, so the origin check still sees whether the body is empty).
    let guarded = guarded
        .route_layer(RequestBodyTimeoutLayer::new(
            state.config().limits.body_timeout,
        ))
        .route_layer(middleware::from_fn_with_state(
            state.clone(),
            auth::require_key,
        ))
        .route_layer(middleware::from_fn_with_state(
            state.clone(),
            origin::same_origin_only,
        ));
    // The public routes' bodies (the Gitea webhook's) get the same timeout.
    let open = open.route_layer(RequestBodyTimeoutLayer::new(
        state.config().limits.body_timeout,
    ));
    let mut app = open
        .merge(guarded)
        .fallback(|| async { ApiError::not_found("no such route (see /openapi.json)") })
        .method_not_allowed_fallback(|| async {
            ApiError::new(
                axum::http::StatusCode::METHOD_NOT_ALLOWED,
                "method not allowed for this route (see /openapi.json)",
            )
        })
        .layer(DefaultBodyLimit::max(MAX_BODY_BYTES))
        .layer(middleware::from_fn(refuse_oversized_bodies))
        .with_state(state.clone());
    let origins: Vec<HeaderValue> = state
        .config()
        .allowed_origins
        .iter()
        .filter_map(|o| HeaderValue::from_str(o).ok())
        .collect();
    if !origins.is_empty() {
        app = app.layer(
            CorsLayer::new()
                .allow_origin(AllowOrigin::list(origins))
                .allow_methods([Method::GET, Method::POST])
                .allow_headers([
                    header::CONTENT_TYPE,
                    HeaderName::from_static(auth::API_KEY_HEADER),
                ]),
        );
    }
    app
}

/// 413 at once for a request whose `Content-Length` is over [`MAX_BODY_BYTES`], before its body
/// is read (axum's limit counts the bytes as they arrive, so a client that declares 100 GB and
/// sends two bytes would be waited for). tower-http's `RequestBodyLimitLayer` does the same
/// with a bare body; the API's errors are JSON.
async fn refuse_oversized_bodies(
    request: axum::extract::Request,
    next: middleware::Next,
) -> axum::response::Response {
    let declared = request
        .headers()
        .get(header::CONTENT_LENGTH)
        .and_then(|v| v.to_str().ok())
        .and_then(|v| v.trim().parse::<u128>().ok());
    match declared {
        Some(length) if length > MAX_BODY_BYTES as u128 => ApiError::new(
            axum::http::StatusCode::PAYLOAD_TOO_LARGE,
            format!("the body is {length} bytes; at most {MAX_BODY_BYTES} are accepted"),
        )
        .into_response(),
        _ => next.run(request).await,
    }
}
