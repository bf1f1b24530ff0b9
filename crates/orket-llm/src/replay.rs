//! The replay provider: plays recorded model replies from a JSON Lines file.
//!
//! Each non-blank line is `{"issue_id": "...", "role": "...", "content": "<raw reply>"}`;
//! replies are consumed in file order, separately for each (issue id, role) pair.

use crate::provider::{ModelReply, ModelRequest, Provider, ProviderError};
use async_trait::async_trait;
use orket_core::priority::json_kind;
use serde_json::Value;
use std::collections::HashMap;
use std::path::Path;
use std::sync::{Mutex, MutexGuard};

/// A (issue id, role) pair.
type Key = (String, String);

/// Plays recorded replies, in file order per (issue id, role); safe to share between turns.
#[derive(Debug)]
pub struct ReplayProvider {
    /// The file the replies came from (for error messages).
    file: String,
    /// The recorded replies of each pair, in file order.
    replies: HashMap<Key, Vec<String>>,
    /// How many replies of each pair were played.
    cursors: Mutex<HashMap<Key, usize>>,
    /// How long each reply takes (simulated model time; zero by default).
    delay: std::time::Duration,
}

impl ReplayProvider {
    /// Reads a replay file; a missing or unreadable file or a bad line is a `Replay` error.
    pub fn open(path: impl AsRef<Path>) -> Result<Self, ProviderError> {
        let path = path.as_ref();
        let file = path.display().to_string();
        let text = std::fs::read_to_string(path).map_err(|e| ProviderError::Replay {
            file: file.clone(),
            line: None,
            message: format!("cannot read the replay file: {e}"),
        })?;
        Self::from_jsonl(file, &text)
    }

    /// Makes every reply take `delay`, like a model would (for demos, benchmarks and tests that
    /// need turns in flight).
    pub fn with_delay(mut self, delay: std::time::Duration) -> Self {
        self.delay = delay;
        self
    }

    /// Builds a provider from JSON Lines text; `file` names it in error messages.
    pub fn from_jsonl(file: impl Into<String>, text: &str) -> Result<Self, ProviderError> {
        let file = file.into();
        let mut replies: HashMap<Key, Vec<String>> = HashMap::new();
        for (index, raw) in text.lines().enumerate() {
            let line = raw.trim_start_matches('\u{feff}').trim();
            if line.is_empty() {
                continue;
            }
            let bad = |message: String| ProviderError::Replay {
                file: file.clone(),
                line: Some(index + 1),
                message,
            };
            let value: Value =
                serde_json::from_str(line).map_err(|e| bad(format!("not a JSON object: {e}")))?;
            let Value::Object(record) = value else {
                return Err(bad(format!(
                    "expected an object with \"issue_id\", \"role\" and \"content\", found {}",
                    json_kind(&value)
                )));
            };
            let field = |name: &str| -> Result<String, ProviderError> {
                match record.get(name) {
                    Some(Value::String(s)) => Ok(s.clone()),
                    Some(other) => Err(bad(format!(
                        "\"{name}\" must be a string, found {}",
                        json_kind(other)
                    ))),
                    None => Err(bad(format!("missing \"{name}\""))),
                }
            };
            let issue_id = field("issue_id")?;
            let role = field("role")?;
            let content = field("content")?;
            replies.entry((issue_id, role)).or_default().push(content);
        }
        Ok(ReplayProvider {
            file,
            replies,
            cursors: Mutex::new(HashMap::new()),
            delay: std::time::Duration::ZERO,
        })
    }

    /// The file the replies came from.
    pub fn file(&self) -> &str {
        &self.file
    }

    /// How many replies of `issue_id` as `role` were played (or skipped by `resume_after`).
    pub fn used(&self, issue_id: &str, role: &str) -> usize {
        self.cursors()
            .get(&(issue_id.to_string(), role.to_string()))
            .copied()
            .unwrap_or(0)
    }

    /// How many replies of `issue_id` as `role` are left.
    pub fn remaining(&self, issue_id: &str, role: &str) -> usize {
        let total = self
            .replies
            .get(&(issue_id.to_string(), role.to_string()))
            .map_or(0, Vec::len);
        total.saturating_sub(self.used(issue_id, role))
    }

    /// The cursors, even if a panicking thread poisoned the lock (they stay consistent).
    fn cursors(&self) -> MutexGuard<'_, HashMap<Key, usize>> {
        self.cursors.lock().unwrap_or_else(|e| e.into_inner())
    }
}

/// The number of whitespace-separated words of `text` (the replay provider's token count).
fn words(text: &str) -> u64 {
    text.split_whitespace().count() as u64
}

#[async_trait]
impl Provider for ReplayProvider {
    fn name(&self) -> &str {
        "replay"
    }

    fn serves_every_seat(&self) -> bool {
        true
    }

    async fn complete(&self, request: &ModelRequest) -> Result<ModelReply, ProviderError> {
        let key = (request.issue_id.clone(), request.role.clone());
        let content = {
            let mut cursors = self.cursors();
            let cursor = cursors.entry(key.clone()).or_insert(0);
            match self.replies.get(&key).and_then(|list| list.get(*cursor)) {
                Some(content) => {
                    *cursor += 1;
                    content.clone()
                }
                None => {
                    return Err(ProviderError::ReplayExhausted {
                        file: self.file.clone(),
                        issue_id: key.0,
                        role: key.1,
                        used: *cursor,
                    })
                }
            }
        };
        if !self.delay.is_zero() {
            tokio::time::sleep(self.delay).await;
        }
        Ok(ModelReply {
            tokens_in: request.messages.iter().map(|m| words(&m.content)).sum(),
            tokens_out: words(&content),
            content,
            model: request.model.clone(),
        })
    }

    fn resume_after(&self, issue_id: &str, role: &str, replies: usize) {
        let mut cursors = self.cursors();
        let cursor = cursors
            .entry((issue_id.to_string(), role.to_string()))
            .or_insert(0);
        *cursor = (*cursor).max(replies);
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::provider::ChatMessage;
    use std::sync::Arc;
    use std::time::Duration;

    fn request(issue_id: &str, role: &str) -> ModelRequest {
        ModelRequest {
            model: "qwen2.5-coder:7b".into(),
            messages: vec![
                ChatMessage::system("You are a coder."),
                ChatMessage::user("Write  the\nfile"),
            ],
            temperature: 0.2,
            seed: Some(42),
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

    const RECORDING: &str = r#"{"issue_id": "ISSUE-1", "role": "coder", "content": "first reply"}

{"issue_id": "ISSUE-2", "role": "coder", "content": "other issue"}
{"issue_id": "ISSUE-1", "role": "integrity_guard", "content": "review"}
{"issue_id": "ISSUE-1", "role": "coder", "content": "second  reply\nhere", "tokens": 7}
"#;

    fn provider() -> ReplayProvider {
        ReplayProvider::from_jsonl("turns.jsonl", RECORDING).unwrap_or_else(|e| panic!("{e}"))
    }

    #[tokio::test]
    async fn replies_come_in_file_order_per_issue_and_role() {
        let replay = provider();
        assert_eq!(replay.name(), "replay");
        let first = replay.complete(&request("ISSUE-1", "coder")).await;
        assert_eq!(
            first,
            Ok(ModelReply {
                content: "first reply".into(),
                tokens_in: 7,
                tokens_out: 2,
                model: "qwen2.5-coder:7b".into(),
            })
        );
        let review = replay
            .complete(&request("ISSUE-1", "integrity_guard"))
            .await;
        assert_eq!(review.map(|r| r.content), Ok("review".to_string()));
        let second = replay.complete(&request("ISSUE-1", "coder")).await;
        assert_eq!(
            second.as_ref().map(|r| (r.content.as_str(), r.tokens_out)),
            Ok(("second  reply\nhere", 3))
        );
        let other = replay.complete(&request("ISSUE-2", "coder")).await;
        assert_eq!(other.map(|r| r.content), Ok("other issue".to_string()));
        assert_eq!(replay.used("ISSUE-1", "coder"), 2);
        assert_eq!(replay.remaining("ISSUE-1", "coder"), 0);
    }

    #[tokio::test]
    async fn exhausted_pairs_say_which_and_how_many() {
        let replay = provider();
        for _ in 0..2 {
            assert!(replay.complete(&request("ISSUE-1", "coder")).await.is_ok());
        }
        let err = replay.complete(&request("ISSUE-1", "coder")).await;
        assert_eq!(
            err.map_err(|e| e.to_string()),
            Err("replay file turns.jsonl has no more replies for issue ISSUE-1 as role coder (2 used)".to_string())
        );
        let unknown = replay.complete(&request("ISSUE-9", "architect")).await;
        assert_eq!(
            unknown,
            Err(ProviderError::ReplayExhausted {
                file: "turns.jsonl".into(),
                issue_id: "ISSUE-9".into(),
                role: "architect".into(),
                used: 0,
            })
        );
    }

    #[tokio::test]
    async fn resume_after_skips_committed_turns_idempotently() {
        let replay = provider();
        replay.resume_after("ISSUE-1", "coder", 1);
        replay.resume_after("ISSUE-1", "coder", 1);
        replay.resume_after("ISSUE-1", "coder", 0);
        let next = replay.complete(&request("ISSUE-1", "coder")).await;
        assert_eq!(
            next.map(|r| r.content),
            Ok("second  reply\nhere".to_string())
        );
        // The cursor never moves back.
        replay.resume_after("ISSUE-1", "coder", 1);
        assert_eq!(replay.used("ISSUE-1", "coder"), 2);
        assert!(replay.complete(&request("ISSUE-1", "coder")).await.is_err());
        // Other pairs are untouched.
        assert_eq!(replay.remaining("ISSUE-1", "integrity_guard"), 1);
    }

    #[test]
    fn bad_lines_name_the_line_and_the_field() {
        let cases = [
            (
                "{\"issue_id\": \"I\", \"role\": \"coder\"}",
                1,
                "missing \"content\"",
            ),
            (
                "\n\n{\"issue_id\": 3, \"role\": \"coder\", \"content\": \"x\"}",
                3,
                "\"issue_id\" must be a string, found a number",
            ),
            (
                "{\"issue_id\": \"I\", \"role\": \"coder\", \"content\": \"x\"}\n[1]",
                2,
                "expected an object with \"issue_id\", \"role\" and \"content\", found an array",
            ),
            (
                "{\"issue_id\": \"I\", \"role\": null, \"content\": \"x\"}",
                1,
                "\"role\" must be a string, found null",
            ),
        ];
        for (text, line, message) in cases {
            let err = ReplayProvider::from_jsonl("t.jsonl", text).map(|_| ());
            assert_eq!(
                err,
                Err(ProviderError::Replay {
                    file: "t.jsonl".into(),
                    line: Some(line),
                    message: message.into(),
                }),
                "{text}"
            );
        }
        let broken = ReplayProvider::from_jsonl("t.jsonl", "\n{\"issue_id\": ").map(|_| ());
        assert!(
            matches!(&broken, Err(ProviderError::Replay { line: Some(2), message, .. }) if message.starts_with("not a JSON object")),
            "{broken:?}"
        );
    }

    #[test]
    fn open_reads_a_file_and_names_a_missing_one() {
        let dir = tempfile::tempdir().unwrap_or_else(|e| panic!("{e}"));
        let path = dir.path().join("turns.jsonl");
        std::fs::write(&path, RECORDING).unwrap_or_else(|e| panic!("{e}"));
        let replay = ReplayProvider::open(&path).unwrap_or_else(|e| panic!("{e}"));
        assert_eq!(replay.remaining("ISSUE-1", "coder"), 2);
        assert_eq!(replay.file(), path.display().to_string());

        let missing = dir.path().join("nope.jsonl");
        let err = ReplayProvider::open(&missing)
            .map(|_| ())
            .map_err(|e| e.to_string());
        let message = err.err().unwrap_or_default();
        assert!(
            message.starts_with(&missing.display().to_string()),
            "{message}"
        );
        assert!(message.contains("cannot read the replay file"), "{message}");
    }

    #[tokio::test(flavor = "multi_thread", worker_threads = 2)]
    async fn concurrent_turns_each_get_a_distinct_reply() {
        let text: String = (0..50)
            .map(|i| format!("{{\"issue_id\": \"ISSUE-1\", \"role\": \"coder\", \"content\": \"reply {i}\"}}\n"))
            .collect();
        let replay = Arc::new(
            ReplayProvider::from_jsonl("t.jsonl", &text).unwrap_or_else(|e| panic!("{e}")),
        );
        let mut tasks = Vec::new();
        for _ in 0..60 {
            let replay = Arc::clone(&replay);
            tasks.push(tokio::spawn(async move {
                replay.complete(&request("ISSUE-1", "coder")).await
            }));
        }
        let mut got = Vec::new();
        let mut exhausted = 0;
        for task in tasks {
            match task.await {
                Ok(Ok(reply)) => got.push(reply.content),
                Ok(Err(ProviderError::ReplayExhausted { used: 50, .. })) => exhausted += 1,
                other => panic!("unexpected {other:?}"),
            }
        }
        got.sort();
        got.dedup();
        assert_eq!(got.len(), 50);
        assert_eq!(exhausted, 10);
    }
}
