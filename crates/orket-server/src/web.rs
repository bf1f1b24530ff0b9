//! The web board: three static files compiled into the binary, served without the API key
//! (the page asks for the key and sends it with its `/v1` and `/ws` requests).

use axum::http::header;
use axum::response::IntoResponse;

const INDEX_HTML: &str = include_str!("../web/index.html");
const APP_JS: &str = include_str!("../web/app.js");
const STYLE_CSS: &str = include_str!("../web/style.css");

/// The board page.
#[utoipa::path(get, path = "/", responses((status = 200, description = "the board page", content_type = "text/html")))]
pub async fn index() -> impl IntoResponse {
    (
        [
            (header::CONTENT_TYPE, "text/html; charset=utf-8"),
            // The board may not be framed by another site (clickjacking its buttons).
            (header::CONTENT_SECURITY_POLICY, "frame-ancestors 'none'"),
            (header::X_FRAME_OPTIONS, "DENY"),
        ],
        INDEX_HTML,
    )
}

/// The board's script.
#[utoipa::path(get, path = "/app.js", responses((status = 200, description = "the board's script", content_type = "text/javascript")))]
pub async fn app_js() -> impl IntoResponse {
    (
        [(header::CONTENT_TYPE, "text/javascript; charset=utf-8")],
        APP_JS,
    )
}

/// The board's style sheet.
#[utoipa::path(get, path = "/style.css", responses((status = 200, description = "the board's style sheet", content_type = "text/css")))]
pub async fn style_css() -> impl IntoResponse {
    (
        [(header::CONTENT_TYPE, "text/css; charset=utf-8")],
        STYLE_CSS,
    )
}
