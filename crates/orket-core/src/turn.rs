//! What a turn is made of, as it is recorded: the chat messages it sends, its steps (one model
//! reply and one tool call each) and, for a developer turn drawn several times, its candidates.

use crate::tools::{ToolCall, ToolResult};
use serde::{Deserialize, Serialize};

/// Who wrote a chat message.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, Serialize, Deserialize)]
#[serde(rename_all = "lowercase")]
pub enum ChatRole {
    /// The system prompt.
    System,
    /// The user (the engine speaking for the card).
    User,
    /// The model.
    Assistant,
}

/// One message of a chat conversation.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct ChatMessage {
    /// Who wrote it.
    pub role: ChatRole,
    /// Its text.
    pub content: String,
}

impl ChatMessage {
    /// A system message.
    pub fn system(content: impl Into<String>) -> Self {
        ChatMessage {
            role: ChatRole::System,
            content: content.into(),
        }
    }

    /// A user message.
    pub fn user(content: impl Into<String>) -> Self {
        ChatMessage {
            role: ChatRole::User,
            content: content.into(),
        }
    }

    /// An assistant (model) message.
    pub fn assistant(content: impl Into<String>) -> Self {
        ChatMessage {
            role: ChatRole::Assistant,
            content: content.into(),
        }
    }
}

/// One step of a turn: the messages sent before its model call (the previous step's result or
/// correction), the model's reply, the one call taken from it, the call's result and what the
/// engine answered when the step went wrong. A reply holding several calls (a model not held
/// to the step's schema) gives one step per call; the later ones have no reply of their own.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct TurnStep {
    /// Its place in the turn, from 1.
    pub n: u32,
    /// The candidate it belongs to (from 1), when the turn drew candidates.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub candidate: Option<u32>,
    /// Messages added to the conversation before this step's model call.
    #[serde(default, skip_serializing_if = "Vec::is_empty")]
    pub prompt: Vec<ChatMessage>,
    /// The model's reply (none when the call came from an earlier reply, or the call failed).
    #[serde(default)]
    pub reply: Option<String>,
    /// The sampling seed of its model call.
    #[serde(default)]
    pub seed: Option<i64>,
    /// The reply that gave its `write_file` call's content, when the content was asked for
    /// apart (a model profile's `file_content: "block"`): free text holding a fenced block.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub content_reply: Option<String>,
    /// The call taken.
    #[serde(default)]
    pub call: Option<ToolCall>,
    /// What the call returned (or why it was refused).
    #[serde(default)]
    pub result: Option<ToolResult>,
    /// What the engine told the model because the step went wrong.
    #[serde(default)]
    pub correction: Option<String>,
    /// Prompt tokens of its model call.
    #[serde(default)]
    pub tokens_in: u64,
    /// Reply tokens of its model call.
    #[serde(default)]
    pub tokens_out: u64,
}

impl TurnStep {
    /// Step `n`, with nothing in it yet.
    pub fn new(n: u32, candidate: Option<u32>) -> Self {
        TurnStep {
            n,
            candidate,
            prompt: Vec::new(),
            reply: None,
            seed: None,
            content_reply: None,
            call: None,
            result: None,
            correction: None,
            tokens_in: 0,
            tokens_out: 0,
        }
    }
}

/// One candidate of a developer turn drawn several times: how it did against the issue's
/// fixture, and whether it was the one committed.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct Candidate {
    /// Its number, from 1.
    pub n: u32,
    /// The seed its model calls started from.
    pub seed: Option<i64>,
    /// Its steps.
    pub steps: usize,
    /// Fixture scenarios it passed.
    pub passed: usize,
    /// Fixture scenarios in all.
    pub total: usize,
    /// Every scenario passed.
    pub ok: bool,
    /// It was committed.
    pub chosen: bool,
    /// Why its fixture run failed as a whole, if it did.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub error: Option<String>,
}
