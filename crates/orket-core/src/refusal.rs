//! The stable codes of refused tool calls. The gate (`orket-governance`) gives them
//! with a message; the transition table ([`crate::lifecycle`]) gives three of them; events and
//! tool results carry them on the wire as their `SCREAMING_SNAKE_CASE` names. The one list
//! below defines the names, their descriptions (the generated reference in `docs/`) and
//! [`RefusalCode::ALL`].

use serde::{Deserialize, Serialize};
use std::fmt;
use std::str::FromStr;

macro_rules! refusal_codes {
    ($($(#[doc = $doc:literal])* $variant:ident = $name:literal,)*) => {
        /// Why a tool call was refused, as a stable code.
        #[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, PartialOrd, Ord, Serialize, Deserialize)]
        pub enum RefusalCode {
            $($(#[doc = $doc])* #[serde(rename = $name)] $variant,)*
        }

        impl RefusalCode {
            /// Every code, in the order of the reference.
            pub const ALL: &'static [RefusalCode] = &[$(RefusalCode::$variant,)*];

            /// The stable name on the wire (`PATH_ESCAPE`).
            pub fn as_str(self) -> &'static str {
                match self {
                    $(RefusalCode::$variant => $name,)*
                }
            }

            /// What the code means, one sentence.
            pub fn description(self) -> &'static str {
                match self {
                    $(RefusalCode::$variant => concat!($($doc),*).trim_ascii(),)*
                }
            }
        }
    };
}

refusal_codes! {
    /// The tool is not one the engine knows.
    UnknownTool = "UNKNOWN_TOOL",
    /// The tool is not in the acting roles' `tools`.
    RoleTool = "ROLE_TOOL",
    /// A required argument is missing, or an argument has the wrong type or value.
    BadArgs = "BAD_ARGS",
    /// The path leaves the workspace (or, for reads, its references), also through a link.
    PathEscape = "PATH_ESCAPE",
    /// The path is protected from writes (`.git`, `.env`, secret-looking names, `verification/`).
    PathProtected = "PATH_PROTECTED",
    /// The content to write is over 1 MiB.
    ContentTooLarge = "CONTENT_TOO_LARGE",
    /// A destructive tool (`delete_file`, `reset_issue`) was called without `confirm: true`.
    ConfirmRequired = "CONFIRM_REQUIRED",
    /// The call changes an issue other than the turn's own without a lead role.
    ForeignIssue = "FOREIGN_ISSUE",
    /// The issue is not part of the build.
    UnknownIssue = "UNKNOWN_ISSUE",
    /// The status name does not exist.
    UnknownStatus = "UNKNOWN_STATUS",
    /// The transition table does not allow the move (or nothing would change).
    IllegalTransition = "ILLEGAL_TRANSITION",
    /// Moving to `blocked` or `waiting_for_developer` without a wait reason.
    WaitReasonRequired = "WAIT_REASON_REQUIRED",
    /// Moving an issue to `done` without the `integrity_guard` role.
    DoneRequiresIntegrityGuard = "DONE_REQUIRES_INTEGRITY_GUARD",
    /// A new issue's summary is shorter than the minimum.
    SummaryTooShort = "SUMMARY_TOO_SHORT",
    /// A new issue's `type` is not one a card may have (`issue`, `story`, `bug`, `task`,
    /// `utility`, `app`).
    UnknownIssueType = "UNKNOWN_ISSUE_TYPE",
    /// A new issue's `severity` is not `low`, `medium`, `high` or `critical`.
    UnknownSeverity = "UNKNOWN_SEVERITY",
    /// The turn spent its steps (`max_steps`) or its corrections without the seat's move.
    ToolBudget = "TOOL_BUDGET",
    /// iDesign: a source file at the workspace root.
    IdesignRootFile = "IDESIGN_ROOT_FILE",
    /// iDesign: a source file outside the allowed first folders.
    IdesignFolder = "IDESIGN_FOLDER",
    /// iDesign: a manager, engine or accessor file without that word in its name.
    IdesignNaming = "IDESIGN_NAMING",
    /// iDesign: a Python class in such a file without the layer's suffix.
    IdesignClassSuffix = "IDESIGN_CLASS_SUFFIX",
    /// iDesign: an accessor importing managers or engines, or an engine importing managers.
    IdesignImport = "IDESIGN_IMPORT",
    /// iDesign: a Python file with a syntax error.
    IdesignSyntax = "IDESIGN_SYNTAX",
    /// Moving an issue to `done` while the verification run by this review failed (the issue goes back to its developer; not a violation).
    VerificationFailed = "VERIFICATION_FAILED",
    /// A tool that the gate allowed failed when it ran (a missing file, a folder where a file was expected).
    ToolFailed = "TOOL_FAILED",
    /// The tool needs a person's approval (`process_rules.approval_required`); the issue waits for it (not a violation).
    ApprovalRequired = "APPROVAL_REQUIRED",
}

impl fmt::Display for RefusalCode {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(self.as_str())
    }
}

impl PartialEq<&str> for RefusalCode {
    fn eq(&self, other: &&str) -> bool {
        self.as_str() == *other
    }
}

impl FromStr for RefusalCode {
    type Err = String;

    fn from_str(s: &str) -> Result<Self, Self::Err> {
        RefusalCode::ALL
            .iter()
            .copied()
            .find(|c| c.as_str() == s)
            .ok_or_else(|| format!("unknown refusal code \"{s}\""))
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn names_round_trip_and_are_unique() {
        let mut seen = std::collections::HashSet::new();
        for code in RefusalCode::ALL {
            assert!(seen.insert(code.as_str()), "{code} twice");
            assert_eq!(code.as_str().parse::<RefusalCode>(), Ok(*code));
            assert_eq!(
                serde_json::to_value(code).unwrap(),
                serde_json::json!(code.as_str())
            );
            assert!(!code.description().is_empty(), "{code}");
        }
        assert_eq!(RefusalCode::PathEscape.to_string(), "PATH_ESCAPE");
    }
}
