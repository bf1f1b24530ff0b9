//! Orket's governance: the gate every tool call passes ([`gate`]), path
//! confinement ([`confine`]), the iDesign architecture rules ([`idesign`]), the file tools
//! ([`file_tools`]) and the refusals they give ([`refusal`]).
//!
//! Nothing here talks to a model or a store: the gate judges a call against what the turn knows
//! (roles, tools, statuses), the file tools act on one confined folder.

#![forbid(unsafe_code)]

pub mod confine;
pub mod file_tools;
pub mod gate;
pub mod idesign;
pub mod refusal;

pub use refusal::{Refusal, RefusalCode};
