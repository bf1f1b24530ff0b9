//! The [`Provider`] trait every model backend implements, and the data it exchanges.

use async_trait::async_trait;
use serde::{Deserialize, Serialize};
use std::time::Duration;

/// A model backend: Ollama, an OpenAI-compatible server, an embedded GGUF model, a replay file.
#[async_trait]
pub trait Provider: Send + Sync {
    /// The backend's short name (`"replay"`, `"ollama"`, ...), used in errors and events.
    fn name(&self) -> &str;

    /// Runs one model call and returns the model's reply.
    async fn complete(&self, request: &ModelRequest) -> Result<ModelReply, ProviderError>;

    /// True when this provider answers for every seat of a run whatever serves the seat
    /// elsewhere: a replay file holds every seat's replies, a fleet run's workers call the
    /// seats' models, a preview calls none. False unless the provider says so.
    fn serves_every_seat(&self) -> bool {
        false
    }

    /// True for a model run in this process (the embedded model), which a seat's
    /// `embedded` client means. False unless the provider says so.
    fn in_process(&self) -> bool {
        false
    }

    /// A seat's own provider as this run's provider would have it called: a recorder records
    /// the seat's replies to the same replay file; others hand it back as it is.
    fn alongside(&self, seat: std::sync::Arc<dyn Provider>) -> std::sync::Arc<dyn Provider> {
        seat
    }

    /// True when replies are held to the request's schema (constrained decoding), so a prompt
    /// need not spell out the reply's shape. False unless the provider says so.
    fn constrains_replies(&self) -> bool {
        false
    }

    /// Resume support: committed turns used the first `replies` replies to `issue_id` as
    /// `role`, so a provider that plays recorded replies skips them (others ignore this).
    fn resume_after(&self, _issue_id: &str, _role: &str, _replies: usize) {}
}

pub use orket_core::turn::{ChatMessage, ChatRole};

/// One model call: the model, the conversation, the sampling settings and the turn it serves.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct ModelRequest {
    /// The model's name as the provider knows it (`qwen2.5-coder:7b`).
    pub model: String,
    /// The conversation: system prompt, user message, history.
    pub messages: Vec<ChatMessage>,
    /// Sampling temperature.
    pub temperature: f64,
    /// Sampling seed, when the environment fixes one.
    pub seed: Option<i64>,
    /// How long the call may take.
    pub timeout: Duration,
    /// The most tokens the reply may have.
    pub max_tokens: Option<u32>,
    /// Nucleus sampling: pick only among the most likely tokens whose probabilities add up to
    /// this, in (0, 1] (unset: the backend's default).
    pub top_p: Option<f64>,
    /// Holds back tokens the reply used recently: 1.0 none, up to 2.0 (unset: the backend's
    /// default).
    pub repeat_penalty: Option<f64>,
    /// The most tokens of context the call may use, prompt and reply together (unset: the
    /// backend's own limit).
    pub context_window: Option<u32>,
    /// The turn's reply schema for constrained decoding (see [`crate::step_schema`]).
    pub tool_schema: Option<serde_json::Value>,
    /// The issue this turn works on.
    pub issue_id: String,
    /// The acting role (`coder`, `integrity_guard`).
    pub role: String,
}

/// A model's reply with its token counts.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct ModelReply {
    /// The raw reply text (tool calls are parsed from it by [`crate::parse_tool_calls`]).
    pub content: String,
    /// Tokens of the prompt.
    pub tokens_in: u64,
    /// Tokens of the reply.
    pub tokens_out: u64,
    /// The model that answered.
    pub model: String,
}

/// Why a model call failed, worded so a user knows what to do about it.
#[derive(Debug, Clone, PartialEq, thiserror::Error)]
pub enum ProviderError {
    /// The call took longer than its timeout (retryable).
    #[error("{provider}: no reply after {after_secs} s (raise the environment's timeout or use a smaller model)")]
    Timeout {
        /// The provider's name.
        provider: String,
        /// The timeout that expired, in seconds.
        after_secs: u64,
    },
    /// The backend could not be reached (retryable).
    #[error("{provider}: {detail}")]
    Connection {
        /// The provider's name.
        provider: String,
        /// What the connection attempt reported.
        detail: String,
    },
    /// The backend does not have the model.
    #[error("model \"{model}\" not found on the server — {hint}")]
    ModelNotFound {
        /// The model asked for.
        model: String,
        /// How to get it (`ollama pull qwen2.5-coder:7b`).
        hint: String,
    },
    /// The prompt does not fit the model's context.
    #[error("the prompt has {tokens} tokens but the model's context holds {limit} (lower ORKET_CONTEXT_WINDOW or use a model with a larger context)")]
    PromptTooLong {
        /// Tokens of the prompt.
        tokens: u64,
        /// The model's context size.
        limit: u64,
    },
    /// A replay file has no reply left for this issue and role.
    #[error(
        "replay file {file} has no more replies for issue {issue_id} as role {role} ({used} used)"
    )]
    ReplayExhausted {
        /// The replay file.
        file: String,
        /// The issue asked for.
        issue_id: String,
        /// The role asked for.
        role: String,
        /// How many replies of this issue and role were already played.
        used: usize,
    },
    /// A replay file cannot be read or has a bad line.
    #[error("{file}{}: {message}", line.map(|l| format!(":{l}")).unwrap_or_default())]
    Replay {
        /// The replay file.
        file: String,
        /// The 1-based line at fault, when one is.
        line: Option<usize>,
        /// What is wrong.
        message: String,
    },
    /// Anything else the backend reported.
    #[error("{0}")]
    Other(String),
}

impl ProviderError {
    /// True for failures worth retrying with backoff: timeouts and connection errors.
    pub fn is_retryable(&self) -> bool {
        matches!(
            self,
            ProviderError::Timeout { .. } | ProviderError::Connection { .. }
        )
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn only_timeouts_and_connection_errors_are_retryable() {
        let timeout = ProviderError::Timeout {
            provider: "ollama".into(),
            after_secs: 30,
        };
        let connection = ProviderError::Connection {
            provider: "ollama".into(),
            detail: "connection refused".into(),
        };
        assert!(timeout.is_retryable());
        assert!(connection.is_retryable());
        assert!(!ProviderError::Other("boom".into()).is_retryable());
        assert!(!ProviderError::ModelNotFound {
            model: "m".into(),
            hint: "pull it".into()
        }
        .is_retryable());
        assert_eq!(
            timeout.to_string(),
            "ollama: no reply after 30 s (raise the environment's timeout or use a smaller model)"
        );
    }

    #[test]
    fn replay_errors_name_file_and_line() {
        let with_line = ProviderError::Replay {
            file: "turns.jsonl".into(),
            line: Some(3),
            message: "missing \"role\"".into(),
        };
        assert_eq!(with_line.to_string(), "turns.jsonl:3: missing \"role\"");
        let without = ProviderError::Replay {
            file: "turns.jsonl".into(),
            line: None,
            message: "cannot read: not found".into(),
        };
        assert_eq!(without.to_string(), "turns.jsonl: cannot read: not found");
        let exhausted = ProviderError::ReplayExhausted {
            file: "turns.jsonl".into(),
            issue_id: "ISSUE-1".into(),
            role: "coder".into(),
            used: 2,
        };
        assert_eq!(
            exhausted.to_string(),
            "replay file turns.jsonl has no more replies for issue ISSUE-1 as role coder (2 used)"
        );
    }

    #[test]
    fn chat_roles_serialize_lowercase() {
        let message = ChatMessage::assistant("hi");
        let json = serde_json::to_value(&message).unwrap_or_default();
        assert_eq!(
            json,
            serde_json::json!({"role": "assistant", "content": "hi"})
        );
        let back: ChatMessage =
            serde_json::from_value(serde_json::json!({"role": "system", "content": "x"}))
                .unwrap_or_else(|e| panic!("{e}"));
        assert_eq!(back, ChatMessage::system("x"));
    }
}
