//! The OpenAI-compatible provider against a canned HTTP/1.1 server on 127.0.0.1: the exact
//! request body, the API key, the response-format fallback, and the errors a user sees.

use orket_llm::{
    ChatMessage, ModelReply, ModelRequest, OpenAiProvider, Provider, ProviderError, SchemaFormat,
};
use serde_json::{json, Value};
use std::time::{Duration, Instant};
use tokio::net::TcpListener;

mod common;
use common::*;

fn request(schema: Option<Value>) -> ModelRequest {
    ModelRequest {
        model: "qwen2.5-coder-7b-instruct".into(),
        messages: vec![
            ChatMessage::system("You are a coder."),
            ChatMessage::user("ISSUE-1: write hello.py"),
        ],
        temperature: 0.2,
        seed: Some(7),
        timeout: Duration::from_secs(30),
        max_tokens: Some(1024),
        top_p: Some(0.9),
        context_window: Some(8192),
        repeat_penalty: None,
        tool_schema: schema,
        issue_id: "ISSUE-1".into(),
        role: "coder".into(),
    }
}

fn schema() -> Value {
    json!({
        "type": "object",
        "properties": {"tool_calls": {"type": "array", "maxItems": 10}},
        "required": ["tool_calls"],
        "additionalProperties": false
    })
}

fn completion(content: &str) -> Value {
    json!({
        "id": "chatcmpl-1",
        "object": "chat.completion",
        "model": "qwen2.5-coder-7b-instruct",
        "choices": [{
            "index": 0,
            "message": {"role": "assistant", "content": content},
            "finish_reason": "stop"
        }],
        "usage": {"prompt_tokens": 120, "completion_tokens": 15, "total_tokens": 135}
    })
}

/// The body expected for `request(Some(schema()))` with the schema sent in `format`: `top_p`
/// is sent, `context_window` has no field in the chat API.
fn expected_body(format: SchemaFormat) -> Value {
    let mut body = json!({
        "model": "qwen2.5-coder-7b-instruct",
        "messages": [
            {"role": "system", "content": "You are a coder."},
            {"role": "user", "content": "ISSUE-1: write hello.py"}
        ],
        "temperature": 0.2,
        "seed": 7,
        "max_tokens": 1024,
        "top_p": 0.9
    });
    let response_format = match format {
        SchemaFormat::JsonSchema => json!({
            "type": "json_schema",
            "json_schema": {"name": "tool_calls", "schema": schema(), "strict": true}
        }),
        SchemaFormat::JsonObject => json!({"type": "json_object", "schema": schema()}),
        SchemaFormat::Plain => return body,
    };
    if let Some(object) = body.as_object_mut() {
        object.insert("response_format".into(), response_format);
    }
    body
}

#[tokio::test]
async fn sends_the_schema_as_a_strict_response_format_with_the_key() {
    let server = serve(vec![reply(200, completion("{\"tool_calls\": []}"))]).await;
    let provider = OpenAiProvider::new(&format!("{}/v1/", server.base), Some("sk-test".into()));
    assert_eq!(provider.name(), "openai");
    assert_eq!(provider.base_url(), format!("{}/v1", server.base));
    let got = provider.complete(&request(Some(schema()))).await;
    assert_eq!(
        got,
        Ok(ModelReply {
            content: "{\"tool_calls\": []}".into(),
            tokens_in: 120,
            tokens_out: 15,
            model: "qwen2.5-coder-7b-instruct".into(),
        })
    );
    let seen = server.seen();
    assert_eq!(seen.len(), 1);
    assert_eq!(seen[0].method, "POST");
    assert_eq!(seen[0].path, "/v1/chat/completions");
    assert_eq!(seen[0].header("authorization"), Some("Bearer sk-test"));
    assert_eq!(seen[0].header("content-type"), Some("application/json"));
    assert_eq!(seen[0].json(), expected_body(SchemaFormat::JsonSchema));
    assert!(!provider.is_plain());
}

#[tokio::test]
async fn without_a_key_or_schema_the_request_is_plain() {
    let mut body = completion("TOOL: write_file");
    // A server that reports no usage counts zero tokens.
    if let Some(object) = body.as_object_mut() {
        object.remove("usage");
    }
    let server = serve(vec![reply(200, body)]).await;
    let provider = OpenAiProvider::new(&format!("{}/v1", server.base), None);
    let got = provider.complete(&request(None)).await;
    assert_eq!(
        got.map(|r| (r.content, r.tokens_in, r.tokens_out)),
        Ok(("TOOL: write_file".to_string(), 0, 0))
    );
    let seen = server.seen();
    assert_eq!(seen[0].header("authorization"), None);
    assert_eq!(seen[0].json(), expected_body(SchemaFormat::Plain));
}

#[tokio::test]
async fn without_top_p_or_seed_or_max_tokens_those_keys_are_absent() {
    let server = serve(vec![reply(200, completion("{\"tool_calls\": []}"))]).await;
    let provider = OpenAiProvider::new(&format!("{}/v1", server.base), None);
    let mut plain = request(None);
    plain.top_p = None;
    plain.context_window = None;
    plain.seed = None;
    plain.max_tokens = None;
    let got = provider.complete(&plain).await;
    assert!(got.is_ok(), "{got:?}");
    assert_eq!(
        server.seen()[0].json(),
        json!({
            "model": "qwen2.5-coder-7b-instruct",
            "messages": [
                {"role": "system", "content": "You are a coder."},
                {"role": "user", "content": "ISSUE-1: write hello.py"}
            ],
            "temperature": 0.2
        })
    );
}

#[tokio::test]
async fn a_refused_json_schema_falls_back_to_a_json_object_with_the_schema_for_good() {
    // What llama-cpp-python's server answers to a `json_schema` response format.
    let server = serve(vec![
        reply(
            500,
            json!({"error": {"message": "1 validation error:\n  {'type': 'literal_error', \
                'loc': ('body', 'response_format', 'type'), 'msg': \"Input should be 'text' or \
                'json_object'\", 'input': 'json_schema'}",
                "type": "internal_server_error", "param": null, "code": null}}),
        ),
        reply(200, completion("{\"tool_calls\": []}")),
        reply(200, completion("{\"tool_calls\": []}")),
    ])
    .await;
    let provider = OpenAiProvider::new(&format!("{}/v1", server.base), None);
    let first = provider.complete(&request(Some(schema()))).await;
    assert_eq!(
        first.map(|r| r.content),
        Ok("{\"tool_calls\": []}".to_string())
    );
    assert_eq!(provider.schema_format(), SchemaFormat::JsonObject);
    provider
        .complete(&request(Some(schema())))
        .await
        .expect("second reply");
    let seen = server.seen();
    assert_eq!(seen.len(), 3, "one refusal, then json_object twice");
    assert_eq!(seen[0].json(), expected_body(SchemaFormat::JsonSchema));
    assert_eq!(seen[1].json(), expected_body(SchemaFormat::JsonObject));
    assert_eq!(seen[2].json(), expected_body(SchemaFormat::JsonObject));
}

#[tokio::test]
async fn a_server_refusing_every_response_format_gets_plain_text_for_good() {
    let server = serve(vec![
        reply(
            400,
            json!({"error": {"message": "response_format json_schema is not supported"}}),
        ),
        reply(
            400,
            json!({"error": {"message": "response_format json_object is not supported"}}),
        ),
        reply(200, completion("TOOL: write_file\nPATH: a.py")),
        reply(200, completion("{\"tool_calls\": []}")),
    ])
    .await;
    let provider = OpenAiProvider::new(&format!("{}/v1", server.base), None);
    let first = provider.complete(&request(Some(schema()))).await;
    assert_eq!(
        first.map(|r| r.content),
        Ok("TOOL: write_file\nPATH: a.py".to_string())
    );
    assert!(provider.is_plain());
    let seen = server.seen();
    assert_eq!(seen.len(), 3, "two refusals, one plain retry");
    assert_eq!(seen[0].json(), expected_body(SchemaFormat::JsonSchema));
    assert_eq!(seen[1].json(), expected_body(SchemaFormat::JsonObject));
    assert_eq!(seen[2].json(), expected_body(SchemaFormat::Plain));

    let second = provider.complete(&request(Some(schema()))).await;
    assert_eq!(
        second.map(|r| r.content),
        Ok("{\"tool_calls\": []}".to_string())
    );
    let seen = server.seen();
    assert_eq!(seen.len(), 4, "the next request goes plain directly");
    assert_eq!(seen[3].json(), expected_body(SchemaFormat::Plain));
}

#[tokio::test]
async fn other_bad_requests_are_not_retried() {
    let server = serve(vec![reply(
        400,
        json!({"error": {"message": "messages must not be empty", "type": "invalid_request_error"}}),
    )])
    .await;
    let provider = OpenAiProvider::new(&server.base, None);
    let err = provider.complete(&request(Some(schema()))).await;
    assert_eq!(
        err,
        Err(ProviderError::Other(
            "openai: the server answered HTTP 400 Bad Request: messages must not be empty".into()
        ))
    );
    assert_eq!(server.seen().len(), 1);
    assert!(!provider.is_plain());
}

#[tokio::test]
async fn a_missing_model_is_model_not_found() {
    let server = serve(vec![reply(
        404,
        json!({"error": {
            "message": "The model `gpt-x` does not exist or you do not have access to it.",
            "type": "invalid_request_error",
            "code": "model_not_found"
        }}),
    )])
    .await;
    let base = format!("{}/v1", server.base);
    let provider = OpenAiProvider::new(&base, Some("k".into()));
    let mut req = request(None);
    req.model = "gpt-x".into();
    let err = provider.complete(&req).await;
    assert_eq!(
        err,
        Err(ProviderError::ModelNotFound {
            model: "gpt-x".into(),
            hint: format!("load it on the server at {base} or pick another model"),
        })
    );
    assert!(err.is_err_and(|e| !e.is_retryable() && e.to_string().contains("\"gpt-x\"")));
}

#[tokio::test]
async fn a_refused_connection_names_the_base_url_and_is_retryable() {
    let listener = TcpListener::bind("127.0.0.1:0")
        .await
        .unwrap_or_else(|e| panic!("{e}"));
    let port = listener
        .local_addr()
        .unwrap_or_else(|e| panic!("{e}"))
        .port();
    drop(listener);
    let provider = OpenAiProvider::new(&format!("127.0.0.1:{port}/v1"), None);
    let err = provider.complete(&request(Some(schema()))).await;
    assert_eq!(
        err,
        Err(ProviderError::Connection {
            provider: "openai".into(),
            detail: format!(
                "OpenAI-compatible server at http://127.0.0.1:{port}/v1 not reachable: connection refused — start it or set ORKET_OPENAI_BASE_URL"
            ),
        })
    );
    assert!(err.is_err_and(|e| e.is_retryable()));
}

#[tokio::test]
async fn a_slow_server_times_out() {
    let mut slow = reply(200, completion("late"));
    slow.delay = Duration::from_secs(10);
    let server = serve(vec![slow]).await;
    let provider = OpenAiProvider::new(&server.base, None);
    let mut req = request(None);
    req.timeout = Duration::from_millis(500);
    let started = Instant::now();
    let err = provider.complete(&req).await;
    assert!(started.elapsed() < Duration::from_secs(5));
    assert_eq!(
        err,
        Err(ProviderError::Timeout {
            provider: "openai".into(),
            after_secs: 1,
        })
    );
}

#[tokio::test]
async fn an_unexpected_reply_names_the_missing_field() {
    let server = serve(vec![
        reply(200, json!({"choices": []})),
        reply(
            200,
            json!({"choices": [{"message": {"role": "assistant", "content": null}}]}),
        ),
    ])
    .await;
    let provider = OpenAiProvider::new(&server.base, None);
    for _ in 0..2 {
        let err = provider.complete(&request(None)).await;
        assert!(
            matches!(&err, Err(ProviderError::Other(m))
                if m.starts_with("openai: unexpected reply from http://127.0.0.1:")
                    && m.contains("no \"choices[0].message.content\"")),
            "{err:?}"
        );
    }
}
