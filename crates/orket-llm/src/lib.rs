//! Orket's model side: the [`Provider`] trait every model backend implements, the replay
//! provider (recorded replies), the JSON schema of a turn's reply for constrained decoding,
//! and the tolerant tool-call parser.
//!
//! Start with [`provider`]; [`parse::parse_tool_calls`] turns any reply text into calls and
//! [`schema::step_schema`] tells a provider which replies a step allows.

#![forbid(unsafe_code)]

pub mod block;
#[cfg(feature = "embedded")]
pub mod embedded;
pub mod http;
pub mod models;
pub mod ollama;
pub mod openai;
pub mod parse;
pub mod provider;
pub mod record;
pub mod replay;
pub mod retry;
pub mod schema;
pub mod select;

pub use block::{block_language, fenced_block, list_content, list_schema};
pub use ollama::OllamaProvider;
pub use openai::{OpenAiProvider, SchemaFormat};
pub use orket_core::ToolCall;
pub use parse::parse_tool_calls;
pub use provider::{ChatMessage, ChatRole, ModelReply, ModelRequest, Provider, ProviderError};
pub use record::RecordingProvider;
pub use replay::ReplayProvider;
pub use retry::{RetryNotice, RetryPolicy, Retrying};
pub use schema::{step_schema, StepChoices};
pub use select::{provider_by_name, FleetProvider, PROVIDER_NAMES};
