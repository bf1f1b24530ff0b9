//! Orket's engine: the traction loop (SPEC §5–6), the turn, approvals, the policies (SPEC §16),
//! the prompt compiler (SPEC §6.4) and the asset preview (SPEC §14).
//!
//! The engine calls the other crates for the rest: `orket-governance` judges every tool call
//! and runs the file tools, `orket-isolate` runs verification fixtures, `orket-sandbox`
//! deploys what a run produced, `orket-store` records every turn.

#![forbid(unsafe_code)]

pub mod approval;
mod deploy;
pub mod engine;
pub mod policy;
pub mod preview;
pub mod prompt;
mod turn;
mod turn_prompt;
