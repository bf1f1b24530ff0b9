//! The driver: a person talks to an operations-lead model that answers with one
//! structured action, and the action edits the asset tree.
//!
//! [`Driver::handle`] compiles a system prompt describing the organization (departments, teams
//! with their seats, environments, epics with their issues, rocks), sends it with the
//! conversation and a JSON schema that admits exactly one action ([`driver_schema`]: a `oneOf`
//! per action, so a provider with constrained decoding only produces legal actions), parses the
//! reply ([`parse_action`]), validates it against the tree and applies it. The actions are
//! defined once, in [`ACTIONS`]; the action names, the prompt's examples, the schema and the
//! parser's dispatch are derived from that table.
//!
//! Every write stays under the project's own `model/` or `config/` (names are single path
//! components, a linked file is never written, a folder that leads elsewhere through a link is
//! refused), is atomic (`orket_governance::file_tools`'s temporary file renamed over the target), keeps the file's other fields (the JSON is edited as a `serde_json::Value`) and is
//! re-loaded with the asset loader afterwards: when the asset no longer loads, the original is
//! put back and the action is refused with the loader's error. A refused action writes nothing.
//!
//! Choices: `assign_team` is refused when the epic's issues use seats the new team lacks;
//! `turn_directive` appends the directive to the issue's `note` (which the turn prompt shows as
//! `NOTE:`), in the epic file and, when the driver has a store, in the issue's row of the epic's
//! build; `adopt_issue` is refused when the issue depends on issues that stay behind or issues
//! that stay behind depend on it (store rows already seeded are not moved).
//!
//! Modules, one job each: `action` (the table and the action types), `driver` (the model call
//! and the events), `facts` (what the model is told about the tree), `prompt`, `schema`,
//! `parse`, `lookup` (finding teams, epics and issues), `apply` (validating and writing an
//! action, one file per family), `outcome` (what a message gives back), `names`.

#![forbid(unsafe_code)]

mod action;
mod apply;
mod driver;
mod facts;
mod lookup;
mod names;
mod outcome;
mod parse;
mod prompt;
mod schema;

pub use action::{
    action_names, ActionKind, ActionSpec, DriverAction, Field, Layout, Names, NewIssue, Shape,
    ACTIONS,
};
pub use driver::{Driver, DriverOptions, DRIVER_ISSUE_ID, DRIVER_ROLE};
pub use facts::Facts;
pub use outcome::{DriverError, DriverOutcome};
pub use parse::parse_action;
pub use schema::driver_schema;
