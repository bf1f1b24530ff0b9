//! The Ollama provider: native `POST {OLLAMA_HOST}/api/chat`, non-streaming, with the turn's
//! JSON schema as `format` (constrained decoding) and the sampling settings in `options`.

use crate::http::{build_client, normalize_base_url, Endpoint};
use crate::provider::{ModelReply, ModelRequest, Provider, ProviderError};
use async_trait::async_trait;
use serde_json::{json, Map, Value};
use std::time::Duration;

/// Where Ollama listens when `OLLAMA_HOST` is not set.
pub const DEFAULT_OLLAMA_HOST: &str = "http://127.0.0.1:11434";

/// Ollama's port, added to an `OLLAMA_HOST` without scheme or port (`ollama.lan`).
const DEFAULT_OLLAMA_PORT: u16 = 11434;

/// How long [`OllamaProvider::list_models`] waits for the server.
pub const LIST_MODELS_TIMEOUT: Duration = Duration::from_secs(10);

/// A model backend talking to an Ollama server over its native chat API.
#[derive(Debug)]
pub struct OllamaProvider {
    /// The server's base URL (`http://127.0.0.1:11434`), without a trailing slash.
    host: String,
    /// The HTTP client, or why it could not be built (reported by every call).
    client: Result<reqwest::Client, String>,
}

/// Normalizes an `OLLAMA_HOST` value the way Ollama reads it: empty → the default, a bare
/// `host:port` gets `http://`, a bare host gets `http://` and port 11434.
pub fn normalize_ollama_host(host: &str) -> String {
    let trimmed = host.trim();
    if trimmed.is_empty() {
        return DEFAULT_OLLAMA_HOST.to_string();
    }
    if trimmed.contains("://") {
        return normalize_base_url(trimmed);
    }
    let host_port = trimmed.split('/').next().unwrap_or(trimmed);
    let has_port = if host_port.starts_with('[') {
        host_port.contains("]:")
    } else {
        host_port.contains(':')
    };
    if has_port {
        normalize_base_url(trimmed)
    } else {
        let rest = &trimmed[host_port.len()..];
        normalize_base_url(&format!("{host_port}:{DEFAULT_OLLAMA_PORT}{rest}"))
    }
}

impl OllamaProvider {
    /// A provider for the Ollama server at `host` (`http://127.0.0.1:11434`, or a bare
    /// `host:port`).
    pub fn new(host: &str) -> Self {
        let host = normalize_ollama_host(host);
        let client = build_client(&host);
        OllamaProvider { host, client }
    }

    /// A provider for the server named by `OLLAMA_HOST`, else [`DEFAULT_OLLAMA_HOST`].
    pub fn from_env() -> Self {
        Self::new(&std::env::var("OLLAMA_HOST").unwrap_or_default())
    }

    /// The server's base URL.
    pub fn host(&self) -> &str {
        &self.host
    }

    /// The body of the `/api/chat` request for `request`.
    pub fn request_body(request: &ModelRequest) -> Value {
        let mut options = Map::new();
        options.insert("temperature".into(), json!(request.temperature));
        if let Some(seed) = request.seed {
            options.insert("seed".into(), json!(seed));
        }
        if let Some(max_tokens) = request.max_tokens {
            options.insert("num_predict".into(), json!(max_tokens));
        }
        if let Some(top_p) = request.top_p {
            options.insert("top_p".into(), json!(top_p));
        }
        if let Some(penalty) = request.repeat_penalty {
            options.insert("repeat_penalty".into(), json!(penalty));
        }
        if let Some(context_window) = request.context_window {
            options.insert("num_ctx".into(), json!(context_window));
        }
        let mut body = Map::new();
        body.insert("model".into(), json!(request.model));
        body.insert("messages".into(), json!(request.messages));
        body.insert("stream".into(), json!(false));
        if let Some(schema) = &request.tool_schema {
            body.insert("format".into(), schema.clone());
        }
        body.insert("options".into(), Value::Object(options));
        Value::Object(body)
    }

    /// The models the server has (`GET /api/tags` → `models[].name`), in the server's order.
    pub async fn list_models(&self) -> Result<Vec<String>, ProviderError> {
        let endpoint = self.endpoint();
        let client = self.client()?;
        let url = format!("{}/api/tags", self.host);
        let response = client
            .get(&url)
            .timeout(LIST_MODELS_TIMEOUT)
            .send()
            .await
            .map_err(|e| endpoint.transport_error(&e, LIST_MODELS_TIMEOUT))?;
        let status = response.status();
        let body = response
            .text()
            .await
            .map_err(|e| endpoint.transport_error(&e, LIST_MODELS_TIMEOUT))?;
        if !status.is_success() {
            return Err(endpoint.status_error(status, &body));
        }
        let value: Value = serde_json::from_str(&body)
            .map_err(|e| endpoint.bad_reply(&format!("not JSON ({e})"), &body))?;
        let Some(models) = value.get("models").and_then(Value::as_array) else {
            return Err(endpoint.bad_reply("no \"models\" array", &body));
        };
        models
            .iter()
            .map(|model| {
                model
                    .get("name")
                    .and_then(Value::as_str)
                    .map(str::to_string)
                    .ok_or_else(|| endpoint.bad_reply("a model without \"name\"", &body))
            })
            .collect()
    }

    /// How this provider names its server in error messages.
    fn endpoint(&self) -> Endpoint<'_> {
        Endpoint {
            provider: "ollama",
            server: "Ollama",
            base_url: &self.host,
            unreachable_hint: "start it with `ollama serve` or set OLLAMA_HOST",
        }
    }

    /// The HTTP client, or an error saying why there is none.
    fn client(&self) -> Result<&reqwest::Client, ProviderError> {
        self.client
            .as_ref()
            .map_err(|e| ProviderError::Other(format!("ollama: {e}")))
    }
}

/// Reads an Ollama error reply: a 404 about a model is `ModelNotFound`, anything else `Other`.
fn status_error(
    endpoint: &Endpoint<'_>,
    model: &str,
    status: reqwest::StatusCode,
    body: &str,
) -> ProviderError {
    let text = crate::http::error_text(body).to_lowercase();
    if status == reqwest::StatusCode::NOT_FOUND
        && text.contains("model")
        && text.contains("not found")
    {
        return ProviderError::ModelNotFound {
            model: model.to_string(),
            hint: format!("pull it with `ollama pull {model}` or pick another model"),
        };
    }
    endpoint.status_error(status, body)
}

/// A token count field of a reply; Ollama leaves some out (a cached prompt has no
/// `prompt_eval_count`), which counts as zero.
fn count(value: &Value, field: &str) -> u64 {
    value.get(field).and_then(Value::as_u64).unwrap_or(0)
}

#[async_trait]
impl Provider for OllamaProvider {
    /// The schema goes as `format`, which Ollama decodes under.
    fn constrains_replies(&self) -> bool {
        true
    }

    fn name(&self) -> &str {
        "ollama"
    }

    async fn complete(&self, request: &ModelRequest) -> Result<ModelReply, ProviderError> {
        let endpoint = self.endpoint();
        let client = self.client()?;
        let url = format!("{}/api/chat", self.host);
        let response = client
            .post(&url)
            .timeout(request.timeout)
            .json(&Self::request_body(request))
            .send()
            .await
            .map_err(|e| endpoint.transport_error(&e, request.timeout))?;
        let status = response.status();
        let body = response
            .text()
            .await
            .map_err(|e| endpoint.transport_error(&e, request.timeout))?;
        if !status.is_success() {
            return Err(status_error(&endpoint, &request.model, status, &body));
        }
        let value: Value = serde_json::from_str(&body)
            .map_err(|e| endpoint.bad_reply(&format!("not JSON ({e})"), &body))?;
        if let Some(error) = value.get("error").and_then(Value::as_str) {
            return Err(endpoint.status_error(status, &json!({ "error": error }).to_string()));
        }
        let Some(content) = value
            .get("message")
            .and_then(|m| m.get("content"))
            .and_then(Value::as_str)
        else {
            return Err(endpoint.bad_reply("no \"message.content\"", &body));
        };
        Ok(ModelReply {
            content: content.to_string(),
            tokens_in: count(&value, "prompt_eval_count"),
            tokens_out: count(&value, "eval_count"),
            model: value
                .get("model")
                .and_then(Value::as_str)
                .unwrap_or(&request.model)
                .to_string(),
        })
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn hosts_are_normalized_like_ollama_reads_them() {
        assert_eq!(normalize_ollama_host(""), DEFAULT_OLLAMA_HOST);
        assert_eq!(normalize_ollama_host("  "), DEFAULT_OLLAMA_HOST);
        assert_eq!(
            normalize_ollama_host("127.0.0.1:11500"),
            "http://127.0.0.1:11500"
        );
        assert_eq!(normalize_ollama_host("gpu-box"), "http://gpu-box:11434");
        assert_eq!(normalize_ollama_host("[::1]"), "http://[::1]:11434");
        assert_eq!(normalize_ollama_host("[::1]:9000/"), "http://[::1]:9000");
        assert_eq!(
            normalize_ollama_host("https://ollama.example.com/"),
            "https://ollama.example.com"
        );
        assert_eq!(OllamaProvider::new("h:1").host(), "http://h:1");
    }
}
