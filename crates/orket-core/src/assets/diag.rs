//! Diagnostics: one problem found in an asset file, with the file, the JSON path and what was
//! expected.

use serde::Serialize;
use std::fmt;

/// How bad a problem is: errors fail `orket check` (and refuse to load), warnings do not.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, PartialOrd, Ord, Serialize)]
#[serde(rename_all = "lowercase")]
pub enum Severity {
    /// The asset cannot be used as written.
    Error,
    /// Ignored or suspicious, but usable.
    Warning,
}

/// One problem: `file: path: message`.
#[derive(Debug, Clone, PartialEq, Eq, Serialize)]
pub struct Diagnostic {
    /// Error or warning.
    pub severity: Severity,
    /// The file, relative to the project root, with `/` separators.
    pub file: String,
    /// The JSON path of the field (`issues[2].depends_on[0]`); empty for the whole file.
    pub path: String,
    /// What is wrong and what was expected.
    pub message: String,
}

impl Diagnostic {
    /// An error at `file` / `path`.
    pub fn error(
        file: impl Into<String>,
        path: impl Into<String>,
        message: impl Into<String>,
    ) -> Self {
        Diagnostic {
            severity: Severity::Error,
            file: file.into(),
            path: path.into(),
            message: message.into(),
        }
    }

    /// A warning at `file` / `path`.
    pub fn warning(
        file: impl Into<String>,
        path: impl Into<String>,
        message: impl Into<String>,
    ) -> Self {
        Diagnostic {
            severity: Severity::Warning,
            ..Diagnostic::error(file, path, message)
        }
    }

    /// True for errors.
    pub fn is_error(&self) -> bool {
        self.severity == Severity::Error
    }
}

impl fmt::Display for Diagnostic {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        if self.path.is_empty() {
            write!(f, "{}: {}", self.file, self.message)
        } else {
            write!(f, "{}: {}: {}", self.file, self.path, self.message)
        }
    }
}

/// The JSON path of `key` inside `path`.
pub fn at(path: &str, key: &str) -> String {
    if path.is_empty() {
        key.to_string()
    } else {
        format!("{path}.{key}")
    }
}

/// The JSON path of element `index` of the array at `path`.
pub fn idx(path: &str, index: usize) -> String {
    format!("{path}[{index}]")
}
