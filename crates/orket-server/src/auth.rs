//! The API key: `X-API-Key` (or `?api_key=` on the WebSocket, which browsers cannot give
//! headers), compared in constant time. Missing → 401, wrong → 403.

use crate::error::ApiError;
use crate::AppState;
use axum::extract::{Request, State};
use axum::http::StatusCode;
use axum::middleware::Next;
use axum::response::{IntoResponse, Response};
use subtle::ConstantTimeEq;

/// Whether a path needs the API key: everything under `/v1` and `/ws`.
pub fn needs_key(path: &str) -> bool {
    path.starts_with("/v1/") || path.starts_with("/ws/")
}

/// The header carrying the key.
pub const API_KEY_HEADER: &str = "x-api-key";

/// Whether `given` is `expected`, in time independent of where they differ (the length of
/// the expected key may leak, its content does not).
pub fn key_matches(given: &[u8], expected: &[u8]) -> bool {
    given.ct_eq(expected).into()
}

/// The `api_key` query parameter, percent-decoded.
fn query_key(query: &str) -> Option<String> {
    query.split('&').find_map(|pair| {
        let (name, value) = pair.split_once('=')?;
        (name == "api_key").then(|| percent_decode(value))
    })
}

/// Decodes `%XX` escapes and `+` (a value that is not valid UTF-8 afterwards is kept lossy).
pub(crate) fn percent_decode(value: &str) -> String {
    let bytes = value.as_bytes();
    let mut out = Vec::with_capacity(bytes.len());
    let mut i = 0;
    while i < bytes.len() {
        match bytes[i] {
            b'%' if i + 2 < bytes.len() => {
                let hex = std::str::from_utf8(&bytes[i + 1..i + 3]).ok();
                match hex.and_then(|h| u8::from_str_radix(h, 16).ok()) {
                    Some(b) => {
                        out.push(b);
                        i += 3;
                    }
                    None => {
                        out.push(b'%');
                        i += 1;
                    }
                }
            }
            b'+' => {
                out.push(b' ');
                i += 1;
            }
            b => {
                out.push(b);
                i += 1;
            }
        }
    }
    String::from_utf8_lossy(&out).into_owned()
}

/// Lets the request through when no key is configured or the right key is given.
pub async fn require_key(State(state): State<AppState>, request: Request, next: Next) -> Response {
    let Some(expected) = state.api_key() else {
        return next.run(request).await;
    };
    let given = request
        .headers()
        .get(API_KEY_HEADER)
        .map(|v| v.as_bytes().to_vec())
        .or_else(|| {
            let is_ws = request.uri().path().starts_with("/ws/");
            is_ws
                .then(|| request.uri().query().and_then(query_key))
                .flatten()
                .map(String::into_bytes)
        });
    match given {
        None => ApiError::new(
            StatusCode::UNAUTHORIZED,
            "missing API key: send the X-API-Key header (ORKET_API_KEY of the server)",
        )
        .into_response(),
        Some(given) if key_matches(&given, expected.as_bytes()) => next.run(request).await,
        Some(_) => ApiError::forbidden("wrong API key (X-API-Key)").into_response(),
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn keys_and_queries() {
        assert!(key_matches(b"s3cret", b"s3cret"));
        assert!(!key_matches(b"s3cres", b"s3cret"));
        assert!(!key_matches(b"s3cre", b"s3cret"));
        assert!(!key_matches(b"", b"s3cret"));
        assert_eq!(query_key("run_id=a&api_key=k%20y").as_deref(), Some("k y"));
        assert_eq!(query_key("run_id=a"), None);
        assert_eq!(percent_decode("%2e%2E/x%"), "../x%");
        assert_eq!(percent_decode("%zz"), "%zz");
    }
}
