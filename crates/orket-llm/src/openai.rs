//! The OpenAI-compatible provider: `POST {base}/chat/completions` on llama.cpp's server, vLLM,
//! LM Studio or any other server speaking the OpenAI chat API, with the turn's JSON schema as a
//! strict `json_schema` response format. A server that refuses it gets the schema as a
//! `json_object` response format with a `schema` (the dialect of llama-cpp-python's server),
//! and a server that refuses that too gets plain text (the tolerant parser reads the reply);
//! each step down holds from then on.

use crate::http::{build_client, normalize_base_url, Endpoint};
use crate::provider::{ModelReply, ModelRequest, Provider, ProviderError};
use async_trait::async_trait;
use serde_json::{json, Map, Value};
use std::sync::atomic::{AtomicU8, Ordering};

/// The server's base URL when `ORKET_OPENAI_BASE_URL` is not set (llama.cpp's server).
pub const DEFAULT_OPENAI_BASE_URL: &str = "http://127.0.0.1:8080/v1";

/// The name the turn's schema goes by in `response_format.json_schema.name`.
pub const RESPONSE_SCHEMA_NAME: &str = "tool_calls";

/// A model backend talking to an OpenAI-compatible chat completions API.
#[derive(Debug)]
pub struct OpenAiProvider {
    /// The API's base URL (`http://127.0.0.1:8080/v1`), without a trailing slash.
    base_url: String,
    /// The bearer token, when the server wants one.
    api_key: Option<String>,
    /// The HTTP client, or why it could not be built (reported by every call).
    client: Result<reqwest::Client, String>,
    /// The [`SchemaFormat`] this server accepts, as its `u8`; it only steps down.
    format: AtomicU8,
}

/// How the turn's JSON schema travels to the server.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum SchemaFormat {
    /// `response_format: {type: "json_schema", json_schema: {name, schema, strict}}` (OpenAI,
    /// llama.cpp's own server, vLLM, LM Studio).
    JsonSchema = 0,
    /// `response_format: {type: "json_object", schema}` (llama-cpp-python's server).
    JsonObject = 1,
    /// No response format: the reply is free text for the tolerant parser.
    Plain = 2,
}

impl SchemaFormat {
    /// The format of its `u8`.
    fn from_u8(value: u8) -> Self {
        match value {
            0 => SchemaFormat::JsonSchema,
            1 => SchemaFormat::JsonObject,
            _ => SchemaFormat::Plain,
        }
    }

    /// The next format to try when a server refuses this one.
    fn fallback(self) -> Self {
        match self {
            SchemaFormat::JsonSchema => SchemaFormat::JsonObject,
            SchemaFormat::JsonObject | SchemaFormat::Plain => SchemaFormat::Plain,
        }
    }
}

impl OpenAiProvider {
    /// A provider for the API at `base_url` (`http://127.0.0.1:8080/v1`; a bare `host:port/v1`
    /// gets `http://`), sending `Authorization: Bearer <api_key>` when a key is given.
    pub fn new(base_url: &str, api_key: Option<String>) -> Self {
        let base_url = if base_url.trim().is_empty() {
            DEFAULT_OPENAI_BASE_URL.to_string()
        } else {
            normalize_base_url(base_url)
        };
        let client = build_client(&base_url);
        OpenAiProvider {
            base_url,
            api_key: api_key.filter(|key| !key.trim().is_empty()),
            client,
            format: AtomicU8::new(SchemaFormat::JsonSchema as u8),
        }
    }

    /// A provider for `ORKET_OPENAI_BASE_URL` (else [`DEFAULT_OPENAI_BASE_URL`]) with the key
    /// in `ORKET_OPENAI_API_KEY`, if any.
    pub fn from_env() -> Self {
        let base_url = std::env::var("ORKET_OPENAI_BASE_URL").unwrap_or_default();
        Self::new(&base_url, std::env::var("ORKET_OPENAI_API_KEY").ok())
    }

    /// The API's base URL.
    pub fn base_url(&self) -> &str {
        &self.base_url
    }

    /// The way the turn's schema is sent now (it steps down each time the server refuses).
    pub fn schema_format(&self) -> SchemaFormat {
        SchemaFormat::from_u8(self.format.load(Ordering::Relaxed))
    }

    /// True once the server refused every response format and requests go in plain text.
    pub fn is_plain(&self) -> bool {
        self.schema_format() == SchemaFormat::Plain
    }

    /// The body of the `/chat/completions` request for `request`, with the turn's schema (when
    /// it has one) as a response format in `format`.
    /// The chat API has no field for `context_window`: the server's own context applies.
    pub fn request_body(request: &ModelRequest, format: SchemaFormat) -> Value {
        let mut body = Map::new();
        body.insert("model".into(), json!(request.model));
        body.insert("messages".into(), json!(request.messages));
        body.insert("temperature".into(), json!(request.temperature));
        if let Some(seed) = request.seed {
            body.insert("seed".into(), json!(seed));
        }
        if let Some(max_tokens) = request.max_tokens {
            body.insert("max_tokens".into(), json!(max_tokens));
        }
        if let Some(top_p) = request.top_p {
            body.insert("top_p".into(), json!(top_p));
        }
        if let Some(schema) = &request.tool_schema {
            let response_format = match format {
                SchemaFormat::JsonSchema => Some(json!({
                    "type": "json_schema",
                    "json_schema": {
                        "name": RESPONSE_SCHEMA_NAME,
                        "schema": schema,
                        "strict": true,
                    },
                })),
                SchemaFormat::JsonObject => Some(json!({"type": "json_object", "schema": schema})),
                SchemaFormat::Plain => None,
            };
            if let Some(response_format) = response_format {
                body.insert("response_format".into(), response_format);
            }
        }
        Value::Object(body)
    }

    /// How this provider names its server in error messages.
    fn endpoint(&self) -> Endpoint<'_> {
        Endpoint {
            provider: "openai",
            server: "OpenAI-compatible server",
            base_url: &self.base_url,
            unreachable_hint: "start it or set ORKET_OPENAI_BASE_URL",
        }
    }

    /// Sends one request; `Ok` carries the status and the body text of any HTTP reply.
    async fn send(
        &self,
        request: &ModelRequest,
        format: SchemaFormat,
    ) -> Result<(reqwest::StatusCode, String), ProviderError> {
        let endpoint = self.endpoint();
        let client = self
            .client
            .as_ref()
            .map_err(|e| ProviderError::Other(format!("openai: {e}")))?;
        let mut builder = client
            .post(format!("{}/chat/completions", self.base_url))
            .timeout(request.timeout)
            .json(&Self::request_body(request, format));
        if let Some(key) = &self.api_key {
            builder = builder.bearer_auth(key);
        }
        let response = builder
            .send()
            .await
            .map_err(|e| endpoint.transport_error(&e, request.timeout))?;
        let status = response.status();
        let body = response
            .text()
            .await
            .map_err(|e| endpoint.transport_error(&e, request.timeout))?;
        Ok((status, body))
    }

    /// Reads an error reply: a 404 about the model is `ModelNotFound`, a 401/403 points at
    /// the API key, anything else is `Other` with the status and the server's words.
    fn status_error(&self, model: &str, status: reqwest::StatusCode, body: &str) -> ProviderError {
        let raw = body.to_lowercase();
        if status == reqwest::StatusCode::NOT_FOUND
            && (raw.contains("model_not_found")
                || raw.contains("does not exist")
                || (raw.contains("model") && raw.contains("not found")))
        {
            return ProviderError::ModelNotFound {
                model: model.to_string(),
                hint: format!(
                    "load it on the server at {} or pick another model",
                    self.base_url
                ),
            };
        }
        let error = self.endpoint().status_error(status, body);
        match (status.as_u16(), error) {
            (401 | 403, ProviderError::Other(message)) => ProviderError::Other(format!(
                "{message} (check ORKET_OPENAI_API_KEY{})",
                if self.api_key.is_some() {
                    ""
                } else {
                    ", which is not set"
                }
            )),
            (_, error) => error,
        }
    }
}

/// Whether an error reply says the server cannot do the response format it was sent.
fn refuses_response_format(status: reqwest::StatusCode, body: &str) -> bool {
    if !matches!(status.as_u16(), 400 | 422 | 500) {
        return false;
    }
    let text = body.to_lowercase();
    [
        "response_format",
        "response format",
        "json_schema",
        "json_object",
        "grammar",
    ]
    .iter()
    .any(|needle| text.contains(needle))
}

/// A token count of `usage`; a server that reports none counts as zero.
fn usage_count(value: &Value, field: &str) -> u64 {
    value
        .get("usage")
        .and_then(|usage| usage.get(field))
        .and_then(Value::as_u64)
        .unwrap_or(0)
}

#[async_trait]
impl Provider for OpenAiProvider {
    /// Until the server refused both schema formats.
    fn constrains_replies(&self) -> bool {
        self.schema_format() != SchemaFormat::Plain
    }

    fn name(&self) -> &str {
        "openai"
    }

    async fn complete(&self, request: &ModelRequest) -> Result<ModelReply, ProviderError> {
        let mut format = self.schema_format();
        let (mut status, mut body) = self.send(request, format).await?;
        while request.tool_schema.is_some()
            && format != SchemaFormat::Plain
            && refuses_response_format(status, &body)
        {
            format = format.fallback();
            self.format.fetch_max(format as u8, Ordering::Relaxed);
            (status, body) = self.send(request, format).await?;
        }
        if !status.is_success() {
            return Err(self.status_error(&request.model, status, &body));
        }
        let endpoint = self.endpoint();
        let value: Value = serde_json::from_str(&body)
            .map_err(|e| endpoint.bad_reply(&format!("not JSON ({e})"), &body))?;
        let Some(content) = value
            .get("choices")
            .and_then(|choices| choices.get(0))
            .and_then(|choice| choice.get("message"))
            .and_then(|message| message.get("content"))
            .and_then(Value::as_str)
        else {
            return Err(endpoint.bad_reply("no \"choices[0].message.content\"", &body));
        };
        Ok(ModelReply {
            content: content.to_string(),
            tokens_in: usage_count(&value, "prompt_tokens"),
            tokens_out: usage_count(&value, "completion_tokens"),
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
    use reqwest::StatusCode;

    #[test]
    fn base_urls_default_and_normalize() {
        assert_eq!(
            OpenAiProvider::new("", None).base_url(),
            DEFAULT_OPENAI_BASE_URL
        );
        assert_eq!(
            OpenAiProvider::new("localhost:1234/v1/", None).base_url(),
            "http://localhost:1234/v1"
        );
        assert!(OpenAiProvider::new("x:1", Some("  ".into()))
            .api_key
            .is_none());
    }

    #[test]
    fn response_format_refusals_are_recognized() {
        let refusal = r#"{"error":{"message":"response_format json_schema is not supported"}}"#;
        assert!(refuses_response_format(StatusCode::BAD_REQUEST, refusal));
        assert!(refuses_response_format(
            StatusCode::INTERNAL_SERVER_ERROR,
            "failed to parse grammar"
        ));
        assert!(refuses_response_format(
            StatusCode::UNPROCESSABLE_ENTITY,
            "unknown field json_schema"
        ));
        assert!(!refuses_response_format(StatusCode::NOT_FOUND, refusal));
        assert!(!refuses_response_format(
            StatusCode::BAD_REQUEST,
            r#"{"error":{"message":"messages must not be empty"}}"#
        ));
    }

    #[test]
    fn error_text_is_used_for_other_statuses() {
        let provider = OpenAiProvider::new("http://127.0.0.1:9/v1", None);
        let err = provider.status_error(
            "m",
            StatusCode::UNAUTHORIZED,
            r#"{"error":{"message":"Invalid API key"}}"#,
        );
        assert_eq!(
            err,
            ProviderError::Other(
                "openai: the server answered HTTP 401 Unauthorized: Invalid API key \
                 (check ORKET_OPENAI_API_KEY, which is not set)"
                    .into()
            )
        );
    }
}
