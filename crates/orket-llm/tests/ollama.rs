//! The Ollama provider against a canned HTTP/1.1 server on 127.0.0.1: the exact request body,
//! reply parsing, and the errors a user sees.

use orket_llm::{ChatMessage, ModelReply, ModelRequest, OllamaProvider, Provider, ProviderError};
use serde_json::{json, Value};
use std::time::{Duration, Instant};
use tokio::net::TcpListener;

mod common;
use common::*;

fn request(schema: Option<Value>) -> ModelRequest {
    ModelRequest {
        model: "qwen2.5-coder:7b".into(),
        messages: vec![
            ChatMessage::system("You are a coder."),
            ChatMessage::user("ISSUE-1: write hello.py"),
            ChatMessage::assistant("{\"tool_calls\": []}"),
            ChatMessage::user("Go on."),
        ],
        temperature: 0.2,
        seed: Some(42),
        timeout: Duration::from_secs(30),
        max_tokens: Some(512),
        top_p: Some(0.95),
        context_window: Some(4096),
        repeat_penalty: None,
        tool_schema: schema,
        issue_id: "ISSUE-1".into(),
        role: "coder".into(),
    }
}

fn chat_reply(content: &str) -> Value {
    json!({
        "model": "qwen2.5-coder:7b",
        "created_at": "2026-01-01T00:00:00Z",
        "message": {"role": "assistant", "content": content},
        "done": true,
        "done_reason": "stop",
        "prompt_eval_count": 42,
        "eval_count": 7
    })
}

fn schema() -> Value {
    json!({
        "type": "object",
        "properties": {"tool_calls": {"type": "array", "maxItems": 10}},
        "required": ["tool_calls"]
    })
}

#[tokio::test]
async fn sends_the_native_chat_request_with_schema_and_options() {
    let server = serve(vec![reply(200, chat_reply("{\"tool_calls\": []}"))]).await;
    let provider = OllamaProvider::new(&server.base);
    assert_eq!(provider.name(), "ollama");
    let got = provider.complete(&request(Some(schema()))).await;
    assert_eq!(
        got,
        Ok(ModelReply {
            content: "{\"tool_calls\": []}".into(),
            tokens_in: 42,
            tokens_out: 7,
            model: "qwen2.5-coder:7b".into(),
        })
    );
    let seen = server.seen();
    assert_eq!(seen.len(), 1);
    assert_eq!(seen[0].method, "POST");
    assert_eq!(seen[0].path, "/api/chat");
    assert_eq!(seen[0].header("content-type"), Some("application/json"));
    assert_eq!(seen[0].header("authorization"), None);
    assert_eq!(
        seen[0].json(),
        json!({
            "model": "qwen2.5-coder:7b",
            "messages": [
                {"role": "system", "content": "You are a coder."},
                {"role": "user", "content": "ISSUE-1: write hello.py"},
                {"role": "assistant", "content": "{\"tool_calls\": []}"},
                {"role": "user", "content": "Go on."}
            ],
            "stream": false,
            "format": schema(),
            "options": {
                "temperature": 0.2,
                "seed": 42,
                "num_predict": 512,
                "top_p": 0.95,
                "num_ctx": 4096
            }
        })
    );
}

#[tokio::test]
async fn without_schema_seed_max_tokens_top_p_or_context_window_those_keys_are_absent() {
    let mut reply_body = chat_reply("TOOL: write_file");
    // A cached prompt has no prompt_eval_count: it counts as zero.
    if let Some(object) = reply_body.as_object_mut() {
        object.remove("prompt_eval_count");
    }
    let server = serve(vec![reply(200, reply_body)]).await;
    // A bare host:port works like OLLAMA_HOST does.
    let bare = server.base.trim_start_matches("http://").to_string();
    let provider = OllamaProvider::new(&bare);
    assert_eq!(provider.host(), server.base);
    let mut plain = request(None);
    plain.seed = None;
    plain.max_tokens = None;
    plain.top_p = None;
    plain.context_window = None;
    plain.messages.truncate(1);
    let got = provider.complete(&plain).await;
    assert_eq!(
        got.map(|r| (r.content, r.tokens_in, r.tokens_out)),
        Ok(("TOOL: write_file".to_string(), 0, 7))
    );
    let body = server.seen()[0].json();
    assert_eq!(
        body,
        json!({
            "model": "qwen2.5-coder:7b",
            "messages": [{"role": "system", "content": "You are a coder."}],
            "stream": false,
            "options": {"temperature": 0.2}
        })
    );
    assert!(body.get("format").is_none());
}

#[tokio::test]
async fn a_missing_model_says_how_to_pull_it() {
    let server = serve(vec![reply(
        404,
        json!({"error": "model \"x\" not found, try pulling it first"}),
    )])
    .await;
    let provider = OllamaProvider::new(&server.base);
    let mut req = request(None);
    req.model = "x".into();
    let err = provider.complete(&req).await;
    assert_eq!(
        err,
        Err(ProviderError::ModelNotFound {
            model: "x".into(),
            hint: "pull it with `ollama pull x` or pick another model".into(),
        })
    );
    let err = err
        .err()
        .unwrap_or_else(|| ProviderError::Other(String::new()));
    assert!(!err.is_retryable());
    let message = err.to_string();
    assert!(message.contains("model \"x\""), "{message}");
    assert!(message.contains("ollama pull x"), "{message}");
}

#[tokio::test]
async fn a_refused_connection_names_the_host_and_is_retryable() {
    let listener = TcpListener::bind("127.0.0.1:0")
        .await
        .unwrap_or_else(|e| panic!("{e}"));
    let port = listener
        .local_addr()
        .unwrap_or_else(|e| panic!("{e}"))
        .port();
    drop(listener);
    let provider = OllamaProvider::new(&format!("http://127.0.0.1:{port}"));
    let err = provider.complete(&request(None)).await;
    let expected = format!(
        "Ollama at http://127.0.0.1:{port} not reachable: connection refused — start it with `ollama serve` or set OLLAMA_HOST"
    );
    assert_eq!(
        err,
        Err(ProviderError::Connection {
            provider: "ollama".into(),
            detail: expected.clone(),
        })
    );
    let err = err
        .err()
        .unwrap_or_else(|| ProviderError::Other(String::new()));
    assert!(err.is_retryable());
    assert!(err.to_string().contains(&expected), "{err}");

    let listed = provider.list_models().await;
    assert!(
        matches!(&listed, Err(ProviderError::Connection { detail, .. }) if detail == &expected),
        "{listed:?}"
    );
}

#[tokio::test]
async fn a_slow_server_times_out() {
    let mut slow = reply(200, chat_reply("late"));
    slow.delay = Duration::from_secs(10);
    let server = serve(vec![slow]).await;
    let provider = OllamaProvider::new(&server.base);
    let mut req = request(None);
    req.timeout = Duration::from_secs(1);
    let started = Instant::now();
    let err = provider.complete(&req).await;
    assert!(started.elapsed() < Duration::from_secs(5));
    assert_eq!(
        err,
        Err(ProviderError::Timeout {
            provider: "ollama".into(),
            after_secs: 1,
        })
    );
    assert!(err.is_err_and(|e| e.is_retryable()));
}

#[tokio::test]
async fn other_errors_quote_the_status_and_the_server() {
    let long = "é".repeat(500);
    let server = serve(vec![
        reply(
            500,
            json!({"error": "model runner has unexpectedly stopped"}),
        ),
        reply(400, json!({ "error": long })),
        reply(200, json!({"model": "m", "done": true})),
        reply(200, json!("not an object")),
    ])
    .await;
    let provider = OllamaProvider::new(&server.base);
    let err = provider.complete(&request(None)).await;
    assert_eq!(
        err,
        Err(ProviderError::Other(
            "ollama: the server answered HTTP 500 Internal Server Error: model runner has unexpectedly stopped".into()
        ))
    );
    let truncated = provider.complete(&request(None)).await;
    let Err(ProviderError::Other(message)) = truncated else {
        panic!("{truncated:?}");
    };
    assert!(message.starts_with("ollama: the server answered HTTP 400 Bad Request: éé"));
    assert!(message.ends_with("é…"), "{message}");
    assert!(message.chars().count() < 400, "{message}");

    for _ in 0..2 {
        let bad = provider.complete(&request(None)).await;
        assert!(
            matches!(&bad, Err(ProviderError::Other(m)) if m.contains("no \"message.content\"")),
            "{bad:?}"
        );
    }
}

#[tokio::test]
async fn list_models_reads_the_tags() {
    let server = serve(vec![reply(
        200,
        json!({"models": [
            {"name": "qwen2.5-coder:7b", "size": 4683087332u64},
            {"name": "llama3.2:3b", "size": 2019393189u64}
        ]}),
    )])
    .await;
    let provider = OllamaProvider::new(&server.base);
    assert_eq!(
        provider.list_models().await,
        Ok(vec![
            "qwen2.5-coder:7b".to_string(),
            "llama3.2:3b".to_string()
        ])
    );
    let seen = server.seen();
    assert_eq!(
        (seen[0].method.as_str(), seen[0].path.as_str()),
        ("GET", "/api/tags")
    );

    let empty = serve(vec![reply(200, json!({"models": []}))]).await;
    assert_eq!(
        OllamaProvider::new(&empty.base).list_models().await,
        Ok(vec![])
    );
    let broken = serve(vec![reply(200, json!({"tags": []}))]).await;
    let err = OllamaProvider::new(&broken.base).list_models().await;
    assert!(
        matches!(&err, Err(ProviderError::Other(m)) if m.contains("no \"models\" array")),
        "{err:?}"
    );
}
