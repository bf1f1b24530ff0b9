//! A refused tool call: a stable [`RefusalCode`] and a message a person (or the model) can act
//! on. The codes are defined once, in `orket_core::refusal`, because events, tool results and
//! the transition table carry them too.

pub use orket_core::RefusalCode;
use serde::Serialize;
use std::fmt;

/// Why a tool call is refused: a stable code and a message naming the tool and the path,
/// issue or status concerned.
#[derive(Debug, Clone, PartialEq, Eq, Serialize)]
pub struct Refusal {
    /// The stable code.
    pub code: RefusalCode,
    /// What was refused and why.
    pub message: String,
}

impl Refusal {
    /// A refusal with `code` and `message`.
    pub fn new(code: RefusalCode, message: impl Into<String>) -> Refusal {
        Refusal {
            code,
            message: message.into(),
        }
    }

    /// The same refusal with `prefix: ` put before its message (to name the tool).
    pub fn within(self, prefix: &str) -> Refusal {
        Refusal {
            code: self.code,
            message: format!("{prefix}: {}", self.message),
        }
    }
}

impl fmt::Display for Refusal {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(f, "{}: {}", self.code, self.message)
    }
}

impl std::error::Error for Refusal {}
