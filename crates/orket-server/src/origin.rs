//! Cross-site and DNS-rebinding protection on `/v1` and `/ws`, with or without an API key.
//!
//! A web page on another site can send "simple" requests (no preflight) to a loopback server
//! and open WebSockets to it (browsers apply no CORS to WebSockets), and a DNS-rebinding page
//! talks to it under its own host name. So, before the key check:
//!
//! - without a key, the `Host` must be a loopback name (`localhost` or a loopback address
//!   such as `127.0.0.1` or `[::1]`), else **403** `Host not allowed`;
//! - an `Origin`, when present, must be the server's own (`http://<Host>` or
//!   `https://<Host>`) or listed in `ORKET_ALLOWED_ORIGINS`, else **403**;
//! - a `POST` with a body must say `Content-Type: application/json`, else **415** (HTML forms
//!   cannot send that type without a preflight).

use crate::error::ApiError;
use crate::AppState;
use axum::body::HttpBody;
use axum::extract::{Request, State};
use axum::http::{header, Method, StatusCode};
use axum::middleware::Next;
use axum::response::{IntoResponse, Response};
use std::net::IpAddr;

/// The host name of a `Host` value (`name[:port]`, `[v6][:port]`), lowercased.
fn host_name(host: &str) -> String {
    let host = host.trim();
    let name = if host.starts_with('[') {
        match host.find(']') {
            Some(end) => &host[..=end],
            None => host,
        }
    } else {
        host.rsplit_once(':').map_or(host, |(name, _)| name)
    };
    name.to_ascii_lowercase()
}

/// Whether a host name is a loopback name: `localhost`, or a loopback IPv4/IPv6 address.
pub fn is_loopback_name(name: &str) -> bool {
    if name == "localhost" {
        return true;
    }
    let bare = name
        .strip_prefix('[')
        .and_then(|n| n.strip_suffix(']'))
        .unwrap_or(name);
    match bare.parse::<IpAddr>() {
        Ok(IpAddr::V4(v4)) => !name.starts_with('[') && v4.is_loopback(),
        Ok(IpAddr::V6(v6)) => {
            name.starts_with('[')
                && (v6.is_loopback() || v6.to_ipv4_mapped().is_some_and(|v4| v4.is_loopback()))
        }
        Err(_) => false,
    }
}

/// Whether `origin` is the server's own origin for `host`, or one of `allowed`.
fn origin_allowed(origin: &str, host: Option<&str>, allowed: &[String]) -> bool {
    let origin = origin.trim().trim_end_matches('/');
    if allowed.iter().any(|a| a.eq_ignore_ascii_case(origin)) {
        return true;
    }
    let Some(host) = host.map(str::trim).filter(|h| !h.is_empty()) else {
        return false;
    };
    ["http://", "https://"].iter().any(|scheme| {
        origin
            .strip_prefix(scheme)
            .is_some_and(|rest| rest.eq_ignore_ascii_case(host))
    })
}

/// Whether a `Content-Type` value is JSON (`application/json`, parameters allowed).
fn is_json(content_type: &str) -> bool {
    content_type
        .split(';')
        .next()
        .is_some_and(|t| t.trim().eq_ignore_ascii_case("application/json"))
}

/// Refuses foreign hosts (without a key), foreign origins and non-JSON bodies.
pub async fn same_origin_only(
    State(state): State<AppState>,
    request: Request,
    next: Next,
) -> Response {
    let headers = request.headers();
    // HTTP/2 carries the host in the URI's authority instead of a header.
    let host = headers
        .get(header::HOST)
        .and_then(|h| h.to_str().ok())
        .map(str::to_string)
        .or_else(|| request.uri().authority().map(|a| a.as_str().to_string()));
    if state.api_key().is_none() {
        let allowed = host
            .as_deref()
            .is_some_and(|h| is_loopback_name(&host_name(h)));
        if !allowed {
            let shown = host.as_deref().unwrap_or("(none)");
            return ApiError::forbidden(format!(
                "Host not allowed: \"{shown}\" is not a loopback name (localhost, 127.0.0.1, \
                 [::1]); without ORKET_API_KEY the server answers only requests addressed to \
                 loopback"
            ))
            .into_response();
        }
    }
    if let Some(origin) = headers.get(header::ORIGIN) {
        let origin = origin.to_str().unwrap_or("");
        if !origin_allowed(origin, host.as_deref(), &state.config().allowed_origins) {
            return ApiError::forbidden(format!(
                "Origin: cross-origin request refused (\"{origin}\" is not this server's origin \
                 and not in ORKET_ALLOWED_ORIGINS)"
            ))
            .into_response();
        }
    }
    if request.method() == Method::POST && request.body().size_hint().upper() != Some(0) {
        let content_type = headers
            .get(header::CONTENT_TYPE)
            .and_then(|v| v.to_str().ok())
            .unwrap_or("");
        if !is_json(content_type) {
            let shown = if content_type.is_empty() {
                "none".to_string()
            } else {
                format!("\"{content_type}\"")
            };
            return ApiError::new(
                StatusCode::UNSUPPORTED_MEDIA_TYPE,
                format!("Content-Type: expected application/json, found {shown}"),
            )
            .into_response();
        }
    }
    next.run(request).await
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn loopback_names() {
        for host in [
            "127.0.0.1:8082",
            "localhost",
            "LOCALHOST:1",
            "[::1]:8082",
            "127.0.0.2",
        ] {
            assert!(is_loopback_name(&host_name(host)), "{host}");
        }
        for host in [
            "evil.example",
            "evil.example:8082",
            "localhost.evil.example",
            "10.0.0.1:8082",
            "::1",
            "[::1",
            "",
        ] {
            assert!(!is_loopback_name(&host_name(host)), "{host}");
        }
    }

    #[test]
    fn origins_and_content_types() {
        let allowed = vec!["http://board.local:3000".to_string()];
        let host = Some("127.0.0.1:8082");
        assert!(origin_allowed("http://127.0.0.1:8082", host, &[]));
        assert!(origin_allowed("https://127.0.0.1:8082", host, &[]));
        assert!(origin_allowed("http://board.local:3000", host, &allowed));
        assert!(!origin_allowed("http://127.0.0.1:8083", host, &[]));
        assert!(!origin_allowed("http://evil.example", host, &allowed));
        assert!(!origin_allowed("null", host, &[]));
        assert!(!origin_allowed("http://127.0.0.1:8082", None, &[]));
        assert!(is_json("application/json"));
        assert!(is_json("Application/JSON; charset=utf-8"));
        assert!(!is_json("text/plain"));
        assert!(!is_json("application/x-www-form-urlencoded"));
        assert!(!is_json(""));
    }
}
