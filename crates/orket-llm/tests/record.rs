//! The recording provider: what it writes is a replay file that plays back the same replies.

use orket_llm::{
    ChatMessage, ModelRequest, Provider, ProviderError, RecordingProvider, ReplayProvider,
};
use std::sync::Arc;
use std::time::Duration;

fn request(issue_id: &str, role: &str) -> ModelRequest {
    ModelRequest {
        model: "qwen2.5-coder:7b".into(),
        messages: vec![
            ChatMessage::system("You are a coder."),
            ChatMessage::user("go"),
        ],
        temperature: 0.2,
        seed: None,
        timeout: Duration::from_secs(30),
        max_tokens: None,
        top_p: None,
        context_window: None,
        repeat_penalty: None,
        tool_schema: None,
        issue_id: issue_id.into(),
        role: role.into(),
    }
}

/// Replies with quotes, braces, newlines and non-ASCII text, which must survive the round trip.
const SOURCE: &str = r#"{"issue_id": "ISSUE-1", "role": "coder", "content": "{\"tool_calls\": [{\"tool\": \"write_file\", \"args\": {\"path\": \"a.py\", \"content\": \"print('}')\\n\"}}]}"}
{"issue_id": "ISSUE-1", "role": "integrity_guard", "content": "TOOL: update_issue_status\nSTATUS: done — «ok»"}
{"issue_id": "ISSUE-1", "role": "coder", "content": "third"}
"#;

fn inner() -> Arc<dyn Provider> {
    Arc::new(ReplayProvider::from_jsonl("source.jsonl", SOURCE).unwrap_or_else(|e| panic!("{e}")))
}

#[tokio::test]
async fn recorded_replies_replay_identically() {
    let dir = tempfile::tempdir().unwrap_or_else(|e| panic!("{e}"));
    let path = dir.path().join("runs").join("recorded.jsonl");
    let recorder = RecordingProvider::new(inner(), &path).unwrap_or_else(|e| panic!("{e}"));
    assert_eq!(recorder.name(), "record(replay)");
    assert_eq!(recorder.path(), path.as_path());

    let first = recorder
        .complete(&request("ISSUE-1", "coder"))
        .await
        .unwrap_or_else(|e| panic!("{e}"));
    let second = recorder
        .complete(&request("ISSUE-1", "integrity_guard"))
        .await
        .unwrap_or_else(|e| panic!("{e}"));

    let text = std::fs::read_to_string(&path).unwrap_or_else(|e| panic!("{e}"));
    let lines: Vec<&str> = text.lines().collect();
    assert_eq!(lines.len(), 2, "{text}");
    assert!(text.ends_with('\n'));
    let parsed: Vec<serde_json::Value> = lines
        .iter()
        .map(|l| serde_json::from_str(l).unwrap_or_else(|e| panic!("{e}: {l}")))
        .collect();
    assert_eq!(
        parsed[1],
        serde_json::json!({
            "issue_id": "ISSUE-1",
            "role": "integrity_guard",
            "content": "TOOL: update_issue_status\nSTATUS: done — «ok»"
        })
    );

    let replay = ReplayProvider::open(&path).unwrap_or_else(|e| panic!("{e}"));
    assert_eq!(
        replay.complete(&request("ISSUE-1", "coder")).await,
        Ok(first)
    );
    assert_eq!(
        replay
            .complete(&request("ISSUE-1", "integrity_guard"))
            .await,
        Ok(second)
    );
    assert_eq!(replay.remaining("ISSUE-1", "coder"), 0);
}

#[tokio::test]
async fn errors_pass_through_unrecorded_and_resume_is_forwarded() {
    let dir = tempfile::tempdir().unwrap_or_else(|e| panic!("{e}"));
    let path = dir.path().join("recorded.jsonl");
    let recorder = RecordingProvider::new(inner(), &path).unwrap_or_else(|e| panic!("{e}"));

    // The inner replay skips the first committed coder turn.
    recorder.resume_after("ISSUE-1", "coder", 1);
    let reply = recorder.complete(&request("ISSUE-1", "coder")).await;
    assert_eq!(reply.map(|r| r.content), Ok("third".to_string()));

    let err = recorder.complete(&request("ISSUE-1", "coder")).await;
    assert!(
        matches!(err, Err(ProviderError::ReplayExhausted { used: 2, .. })),
        "{err:?}"
    );
    let text = std::fs::read_to_string(&path).unwrap_or_else(|e| panic!("{e}"));
    assert_eq!(
        text,
        "{\"issue_id\":\"ISSUE-1\",\"role\":\"coder\",\"content\":\"third\"}\n"
    );

    // A second recorder appends to the same file instead of truncating it.
    let again = RecordingProvider::new(inner(), &path).unwrap_or_else(|e| panic!("{e}"));
    let _ = again.complete(&request("ISSUE-1", "integrity_guard")).await;
    let text = std::fs::read_to_string(&path).unwrap_or_else(|e| panic!("{e}"));
    assert_eq!(text.lines().count(), 2, "{text}");
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn concurrent_turns_write_whole_lines() {
    let source: String = (0..40)
        .map(|i| {
            format!(
                "{{\"issue_id\": \"ISSUE-{}\", \"role\": \"coder\", \"content\": \"{}\"}}\n",
                i % 4,
                format!("reply {i} ").repeat(200)
            )
        })
        .collect();
    let inner: Arc<dyn Provider> = Arc::new(
        ReplayProvider::from_jsonl("source.jsonl", &source).unwrap_or_else(|e| panic!("{e}")),
    );
    let dir = tempfile::tempdir().unwrap_or_else(|e| panic!("{e}"));
    let path = dir.path().join("recorded.jsonl");
    let recorder = Arc::new(RecordingProvider::new(inner, &path).unwrap_or_else(|e| panic!("{e}")));
    let mut tasks = Vec::new();
    for i in 0..40 {
        let recorder = Arc::clone(&recorder);
        tasks.push(tokio::spawn(async move {
            recorder
                .complete(&request(&format!("ISSUE-{}", i % 4), "coder"))
                .await
        }));
    }
    for task in tasks {
        assert!(matches!(task.await, Ok(Ok(_))));
    }
    let replay = ReplayProvider::open(&path).unwrap_or_else(|e| panic!("{e}"));
    for issue in 0..4 {
        assert_eq!(replay.remaining(&format!("ISSUE-{issue}"), "coder"), 10);
    }
}

#[test]
fn an_unopenable_file_is_a_replay_error() {
    let dir = tempfile::tempdir().unwrap_or_else(|e| panic!("{e}"));
    // A folder cannot be opened for appending.
    let err = RecordingProvider::new(inner(), dir.path()).map(|_| ());
    assert!(
        matches!(&err, Err(ProviderError::Replay { line: None, message, .. })
            if message.starts_with("cannot open the recording file")),
        "{err:?}"
    );
}

#[tokio::test]
async fn a_seats_own_provider_is_recorded_to_the_same_file() {
    let dir = tempfile::tempdir().unwrap_or_else(|e| panic!("{e}"));
    let path = dir.path().join("recorded.jsonl");
    let recorder = RecordingProvider::new(inner(), &path).unwrap_or_else(|e| panic!("{e}"));
    assert!(
        recorder.serves_every_seat(),
        "a recorder of a replay still replays every seat"
    );
    assert!(!recorder.in_process());
    let guard: Arc<dyn Provider> = Arc::new(
        ReplayProvider::from_jsonl(
            "guard.jsonl",
            r#"{"issue_id": "ISSUE-2", "role": "integrity_guard", "content": "from the guard's server"}"#,
        )
        .unwrap_or_else(|e| panic!("{e}")),
    );
    let seat = recorder.alongside(guard);
    assert_eq!(seat.name(), "record(replay)");
    recorder
        .complete(&request("ISSUE-1", "coder"))
        .await
        .unwrap_or_else(|e| panic!("{e}"));
    seat.complete(&request("ISSUE-2", "integrity_guard"))
        .await
        .unwrap_or_else(|e| panic!("{e}"));
    let replay = ReplayProvider::open(&path).unwrap_or_else(|e| panic!("{e}"));
    let reply = replay
        .complete(&request("ISSUE-2", "integrity_guard"))
        .await
        .unwrap_or_else(|e| panic!("{e}"));
    assert_eq!(reply.content, "from the guard's server");
    assert_eq!(
        std::fs::read_to_string(&path)
            .unwrap_or_default()
            .lines()
            .count(),
        2
    );
}
