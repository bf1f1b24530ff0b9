//! Orket's domain: card kinds, statuses and the lifecycle rules, priorities and the ready
//! queue, ids and sprint labels, and the asset tree (loading, layered lookup, validation).
//!
//! Pure and synchronous: no async runtime, no SQL, no HTTP. Start with [`lifecycle`] for the
//! rules a card obeys and [`assets`] for how a project's JSON files become typed assets.

#![forbid(unsafe_code)]

pub mod assets;
pub mod bugfix;
pub mod events;
pub mod ids;
pub mod lifecycle;
pub mod plan;
pub mod priority;
pub mod reference;
pub mod refusal;
pub mod run;
pub mod sprint;
pub mod status;
pub mod time;
pub mod tools;
pub mod turn;

pub use events::Event;
pub use lifecycle::{check_transition, TransitionError, TransitionRequest, INTEGRITY_GUARD};
pub use refusal::RefusalCode;
pub use run::{RunKind, RunStatus};
pub use status::{CardKind, Status, WaitReason};
pub use tools::ToolCall;

/// The actor recorded for what the engine does on its own (status moves it makes, events of
/// its sandboxes, derived epic statuses).
pub const ENGINE_ACTOR: &str = "orket";

/// The actor recorded for a person's decisions (approvals, halts).
pub const PERSON_ACTOR: &str = "person";
