//! Orket's engine: the gate every tool call passes (SPEC §7), path confinement to the
//! workspace, the iDesign architecture rules, the file tools (SPEC §8), events and their log
//! (SPEC §12), and the prompt compiler (SPEC §6.4). The traction loop that ties them together
//! lands with the rest of the engine issue.

pub mod approval;
pub mod engine;
pub mod events;
pub mod file_tools;
pub mod gate;
pub mod idesign;
pub mod policy;
pub mod prompt;
mod turn;
pub mod workspace;
