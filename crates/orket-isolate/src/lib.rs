//! Orket's process isolation: child processes with a wall-time limit and bounded output
//! ([`process`]), the Landlock ruleset of a verification fixture ([`landlock`]), what of the
//! Python interpreter a fixture may read (`interpreter`), the rest of a fixture's sandbox
//! (`sandbox`: namespaces, process cap, seccomp filter) and the verification runner itself
//! ([`verify`]).
//!
//! A fixture runs with a clean environment in its own folder, in new network and PID
//! namespaces (no network; every process it starts dies with it), under a process cap (a pids
//! cgroup of the run's own, or RLIMIT_NPROC), confined by Landlock on the filesystem, refused
//! unix-domain sockets by a seccomp filter (no socket file of the host is reachable), and
//! under CPU, memory and wall-time limits. Whatever of this the OS refuses is stated in the
//! result's [`verify::Isolation`].
//!
//! This is the only crate of Orket with `unsafe` code: `fork`/`exec` hooks (`pre_exec`),
//! `fork`, `poll`, `pidfd`, `unshare`, `setrlimit`, `prctl` and the probe of the Landlock ABI
//! (the Landlock ruleset is built and applied by the `landlock` crate, the seccomp program by
//! `seccompiler`). Everything here is blocking; async callers use
//! [`verify::run_verification_async`] or `spawn_blocking`.

mod interpreter;
pub mod landlock;
mod namespace;
mod pids;
pub mod process;
mod sandbox;
mod seccomp;
pub mod verify;
