//! Shared HTTP plumbing of the network providers ([`crate::ollama`], [`crate::openai`]):
//! base URL normalization, the HTTP client, and turning transport failures and error replies
//! into [`ProviderError`]s a user can act on.

use crate::provider::ProviderError;
use serde_json::Value;
use std::time::Duration;

/// The longest piece of a server's error text quoted in an error message, in characters.
pub const MAX_ERROR_TEXT_CHARS: usize = 300;

/// Normalizes a server address: trims whitespace and trailing slashes and adds `http://` when
/// the address has no scheme (`127.0.0.1:8080/v1` → `http://127.0.0.1:8080/v1`).
pub fn normalize_base_url(address: &str) -> String {
    let trimmed = address.trim().trim_end_matches('/');
    if trimmed.contains("://") {
        trimmed.to_string()
    } else {
        format!("http://{trimmed}")
    }
}

/// Whether `url` points at this machine (`localhost`, `127.0.0.0/8`, `::1`); such requests
/// never go through an HTTP proxy.
pub fn is_loopback_url(url: &str) -> bool {
    let Ok(parsed) = reqwest::Url::parse(url) else {
        return false;
    };
    let Some(host) = parsed.host_str() else {
        return false;
    };
    let host = host.trim_start_matches('[').trim_end_matches(']');
    host.eq_ignore_ascii_case("localhost")
        || host
            .parse::<std::net::IpAddr>()
            .is_ok_and(|ip| ip.is_loopback())
}

/// Builds the HTTP client for a server at `base_url` (no proxy for loopback servers); the
/// error text says why the client could not be built.
pub fn build_client(base_url: &str) -> Result<reqwest::Client, String> {
    let mut builder = reqwest::Client::builder();
    if is_loopback_url(base_url) {
        builder = builder.no_proxy();
    }
    builder
        .build()
        .map_err(|e| format!("cannot set up the HTTP client: {}", error_chain(&e)))
}

/// A timeout in whole seconds for error messages, rounded up so a sub-second timeout never
/// reads as "0 s".
pub fn timeout_secs(timeout: Duration) -> u64 {
    let secs = timeout.as_secs();
    if timeout.subsec_nanos() > 0 {
        secs + 1
    } else {
        secs
    }
}

/// The messages of `error` and of every error it wraps, joined with `: `, skipping a message
/// that repeats the previous one.
pub fn error_chain(error: &(dyn std::error::Error + 'static)) -> String {
    let mut parts: Vec<String> = Vec::new();
    let mut current: Option<&(dyn std::error::Error + 'static)> = Some(error);
    while let Some(err) = current {
        let text = err.to_string();
        if parts.last() != Some(&text) {
            parts.push(text);
        }
        current = err.source();
    }
    parts.join(": ")
}

/// A short description of why a connection failed: `connection refused`, `connection reset`,
/// `cannot resolve the host name (...)`, or the transport's own words.
pub fn connection_detail(error: &reqwest::Error) -> String {
    let mut current: Option<&(dyn std::error::Error + 'static)> = Some(error);
    let mut dns = false;
    let mut innermost = error.to_string();
    while let Some(err) = current {
        if let Some(io) = err.downcast_ref::<std::io::Error>() {
            use std::io::ErrorKind;
            match io.kind() {
                ErrorKind::ConnectionRefused => return "connection refused".to_string(),
                ErrorKind::ConnectionReset => return "connection reset".to_string(),
                ErrorKind::ConnectionAborted => return "connection aborted".to_string(),
                ErrorKind::BrokenPipe => return "connection closed (broken pipe)".to_string(),
                ErrorKind::UnexpectedEof => return "the server closed the connection".to_string(),
                _ => {}
            }
        }
        let text = err.to_string();
        if text.contains("dns error") {
            dns = true;
        }
        innermost = text;
        current = err.source();
    }
    if dns {
        format!("cannot resolve the host name ({innermost})")
    } else if innermost.contains("connection closed before message completed") {
        "the server closed the connection".to_string()
    } else {
        innermost
    }
}

/// Where a network provider sends its requests, for error messages.
#[derive(Debug, Clone, Copy)]
pub struct Endpoint<'a> {
    /// The provider's short name (`ollama`).
    pub provider: &'a str,
    /// The server's display name (`Ollama`).
    pub server: &'a str,
    /// The server's base URL.
    pub base_url: &'a str,
    /// What to do when the server cannot be reached (`start it with ...`).
    pub unreachable_hint: &'a str,
}

impl Endpoint<'_> {
    /// Maps a transport failure (no HTTP reply, or a reply body that could not be read) to a
    /// `Timeout`, `Connection` or `Other` error.
    pub fn transport_error(&self, error: &reqwest::Error, timeout: Duration) -> ProviderError {
        if error.is_timeout() {
            return ProviderError::Timeout {
                provider: self.provider.to_string(),
                after_secs: timeout_secs(timeout),
            };
        }
        if error.is_connect() || error.is_request() || error.is_body() {
            return ProviderError::Connection {
                provider: self.provider.to_string(),
                detail: format!(
                    "{} at {} not reachable: {} — {}",
                    self.server,
                    self.base_url,
                    connection_detail(error),
                    self.unreachable_hint
                ),
            };
        }
        ProviderError::Other(format!(
            "{}: request to {} failed: {}",
            self.provider,
            self.base_url,
            error_chain(error)
        ))
    }

    /// The error for a non-2xx reply that has no more specific meaning: the status and the
    /// server's error text, truncated.
    pub fn status_error(&self, status: reqwest::StatusCode, body: &str) -> ProviderError {
        let text = error_text(body);
        let mut message = format!("{}: the server answered HTTP {status}", self.provider);
        if !text.is_empty() {
            message.push_str(": ");
            message.push_str(&text);
        }
        ProviderError::Other(message)
    }

    /// The error for a 2xx reply that is not what the API promises: `what` names the missing
    /// or malformed part.
    pub fn bad_reply(&self, what: &str, body: &str) -> ProviderError {
        ProviderError::Other(format!(
            "{}: unexpected reply from {}: {what} (reply: {})",
            self.provider,
            self.base_url,
            truncate_chars(body.trim(), MAX_ERROR_TEXT_CHARS)
        ))
    }
}

/// The server's error message from an error body: `{"error": "..."}`,
/// `{"error": {"message": "..."}}`, `{"message": "..."}`, `{"detail": "..."}`, else the raw
/// text; truncated to [`MAX_ERROR_TEXT_CHARS`] characters.
pub fn error_text(body: &str) -> String {
    let extracted = serde_json::from_str::<Value>(body)
        .ok()
        .and_then(|value| message_of(&value));
    let text = extracted.unwrap_or_else(|| body.trim().to_string());
    truncate_chars(&text, MAX_ERROR_TEXT_CHARS)
}

/// The message field of a JSON error body, when it has one.
fn message_of(value: &Value) -> Option<String> {
    let object = value.as_object()?;
    for key in ["error", "message", "detail"] {
        match object.get(key) {
            Some(Value::String(text)) => return Some(text.clone()),
            Some(nested @ Value::Object(_)) => {
                if let Some(text) = message_of(nested) {
                    return Some(text);
                }
            }
            _ => {}
        }
    }
    None
}

/// The first `max` characters of `text` (cut on a character boundary), with `…` when cut.
pub fn truncate_chars(text: &str, max: usize) -> String {
    match text.char_indices().nth(max) {
        Some((cut, _)) => format!("{}…", &text[..cut]),
        None => text.to_string(),
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn base_urls_get_a_scheme_and_lose_trailing_slashes() {
        assert_eq!(
            normalize_base_url("127.0.0.1:8080/v1/"),
            "http://127.0.0.1:8080/v1"
        );
        assert_eq!(
            normalize_base_url(" https://example.com/v1 "),
            "https://example.com/v1"
        );
    }

    #[test]
    fn loopback_urls_are_recognized() {
        assert!(is_loopback_url("http://127.0.0.1:11434"));
        assert!(is_loopback_url("http://localhost:8080/v1"));
        assert!(is_loopback_url("http://[::1]:8080"));
        assert!(!is_loopback_url("http://10.0.0.2:8080"));
        assert!(!is_loopback_url("http://example.com"));
        assert!(!is_loopback_url("not a url"));
    }

    #[test]
    fn error_text_reads_common_shapes_and_truncates_on_char_boundaries() {
        assert_eq!(
            error_text(r#"{"error":"model \"x\" not found"}"#),
            "model \"x\" not found"
        );
        assert_eq!(
            error_text(r#"{"error":{"message":"bad schema","code":400}}"#),
            "bad schema"
        );
        assert_eq!(error_text(r#"{"detail":"nope"}"#), "nope");
        assert_eq!(error_text("  plain text \n"), "plain text");
        let long = "é".repeat(400);
        let cut = error_text(&long);
        assert_eq!(cut.chars().count(), MAX_ERROR_TEXT_CHARS + 1);
        assert!(cut.ends_with('…'));
        assert_eq!(truncate_chars("short", 300), "short");
    }

    #[test]
    fn sub_second_timeouts_round_up() {
        assert_eq!(timeout_secs(Duration::from_millis(300)), 1);
        assert_eq!(timeout_secs(Duration::from_secs(30)), 30);
        assert_eq!(timeout_secs(Duration::from_millis(30_500)), 31);
    }
}
