//! What a driver message gives back: the outcome of the action applied, or why none was.

use orket_llm::ProviderError;
use serde::Serialize;

/// What one driver message did.
#[derive(Debug, Clone, PartialEq, Serialize)]
pub struct DriverOutcome {
    /// The action applied (`create_epic`, ..., or `reply`).
    pub action: String,
    /// The model's message (`reply`) or what the action did, for a person.
    pub reply: String,
    /// The files written, relative to the project root with `/` separators.
    pub changed_files: Vec<String>,
    /// The model's raw reply (kept for the conversation's history).
    #[serde(skip)]
    pub model_reply: String,
}

/// Why a driver message did not apply an action.
#[derive(Debug, Clone, PartialEq, thiserror::Error)]
pub enum DriverError {
    /// The model call failed (after retries for timeouts and connection errors).
    #[error("the model call failed: {0}")]
    Model(ProviderError),
    /// The model's reply is not one action.
    #[error("the model's reply is not an action: {message}")]
    BadReply {
        /// What is wrong with it.
        message: String,
        /// The reply as received.
        model_reply: String,
    },
    /// The action was refused by validation; nothing was written. The message names the
    /// action, the field and, where one is concerned, the file.
    #[error("{message}")]
    Refused {
        /// The action refused.
        action: String,
        /// Why.
        message: String,
    },
    /// Reading or writing the tree failed (nothing is left half-written).
    #[error("{0}")]
    Io(String),
}

/// What an applied action did, before the action's name is put in front.
#[derive(Debug)]
pub(crate) struct Done {
    /// What it did, for a person.
    pub reply: String,
    /// The files written.
    pub changed_files: Vec<String>,
}

impl Done {
    /// The outcome of the action `action`.
    pub fn outcome(self, action: &str) -> DriverOutcome {
        DriverOutcome {
            action: action.to_string(),
            reply: self.reply,
            changed_files: self.changed_files,
            model_reply: String::new(),
        }
    }
}

/// Why an action failed, before the action's name is put in front.
#[derive(Debug)]
pub(crate) enum Fail {
    /// Validation refused it; nothing was written.
    Refused(String),
    /// Reading or writing a file failed.
    Io(String),
}

impl Fail {
    /// The driver error of the action `action` (its name in front of the message).
    pub fn for_action(self, action: &str) -> DriverError {
        match self {
            Fail::Refused(message) => DriverError::Refused {
                action: action.to_string(),
                message: format!("{action}: {message}"),
            },
            Fail::Io(message) => DriverError::Io(format!("{action}: {message}")),
        }
    }
}

/// A refusal with `message`.
pub(crate) fn refuse<T>(message: impl Into<String>) -> Result<T, Fail> {
    Err(Fail::Refused(message.into()))
}

impl Fail {
    /// The same failure with `more` after its message.
    pub fn and(self, more: &str) -> Fail {
        match self {
            Fail::Refused(message) => Fail::Refused(format!("{message}; {more}")),
            Fail::Io(message) => Fail::Io(format!("{message}; {more}")),
        }
    }
}
