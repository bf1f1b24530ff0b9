//! Orket's process isolation: child processes with a wall-time limit and bounded output
//! ([`process`]), the Landlock ruleset of a verification fixture ([`landlock`]), what of the
//! Python interpreter a fixture may read (`interpreter`) and the verification runner itself
//! ([`verify`]).
//!
//! This is the only crate of Orket with `unsafe` code: `fork`/`exec` hooks (`pre_exec`),
//! `poll`, `pidfd`, `unshare`, `setrlimit` and the Landlock system calls. Everything here is
//! blocking; async callers use [`verify::run_verification_async`] or `spawn_blocking`.

mod interpreter;
pub mod landlock;
pub mod process;
pub mod verify;
