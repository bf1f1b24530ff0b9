//! Orket's engine: the traction loop, the turn, approvals, the policies (decision nodes), the
//! prompt compiler and the asset preview.
//!
//! Start with [`engine::Engine`]: it spawns runs ([`engine::Engine::spawn`]) and supervises
//! them; a run holds its build's lease in the store, so one process at a time runs a build
//! ([`lease`]). A run is a loop of ticks (`drive`); each tick runs turns (`turn`), each turn a chain
//! of stages whose effects commit as one batch. The engine calls the other crates for the
//! rest: `orket-governance` judges every tool call and runs the file tools, `orket-isolate`
//! runs verification fixtures, `orket-sandbox` deploys what a run produced, `orket-store`
//! records every turn. The organization loop ([`org_loop`]) picks issues across departments and
//! runs them one after another.

#![forbid(unsafe_code)]

pub mod approval;
pub mod assets;
pub mod bugfix;
mod deploy;
mod drive;
pub mod engine;
pub mod error;
#[cfg(feature = "postgres")]
pub mod fleet;
pub mod lease;
pub mod org_loop;
pub mod policy;
pub mod preview;
pub mod prompt;
pub mod run;
pub mod supervise;
mod turn;

pub use assets::Target;
pub use engine::{Engine, MergeDeploy};
pub use error::EngineError;
pub use org_loop::{LoopControl, LoopHandle, LoopOptions, LoopOutcome, LoopState};
pub use run::{Halt, RunOptions, RunOutcome, HALTED_REASON};
pub use supervise::{request_halt, Halter, RunHandle};
