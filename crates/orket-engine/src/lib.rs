//! Orket's engine: the gate every tool call passes (SPEC §7), path confinement to the
//! workspace, the iDesign architecture rules, the file tools (SPEC §8), events and their log
//! (SPEC §12), the prompt compiler (SPEC §6.4), the traction loop that ties them together
//! (SPEC §5–6), verification fixtures in an isolated process (SPEC §9), docker compose
//! sandboxes (SPEC §10), the asset preview (SPEC §14) and the driver that edits the asset tree
//! from a conversation with an operations-lead model (SPEC §13).

pub mod approval;
pub mod driver;
pub mod engine;
pub mod events;
pub mod file_tools;
pub mod gate;
pub mod idesign;
pub mod landlock;
pub mod policy;
pub mod preview;
mod process;
pub mod prompt;
pub mod sandbox;
mod turn;
mod turn_prompt;
pub mod verify;
pub mod workspace;
