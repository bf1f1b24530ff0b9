//! The seccomp filter of a fixture process: no unix-domain sockets of its own making.
//!
//! The network namespace hides abstract unix sockets only, and Landlock does not govern
//! `connect(2)` to a socket file: without this filter a fixture could talk to any socket file
//! the user running Orket can reach (the docker socket, a database's, the session bus). The
//! filter answers EPERM to
//! - `socket(AF_UNIX, …)`;
//! - `socketpair(…, SOCK_DGRAM, …)`: a datagram socket can `sendto` any socket file by its
//!   path (a stream or seqpacket pair is connected to itself and reaches nothing else, so it
//!   stays allowed: Python's `socket.socketpair()` and asyncio use it);
//! - `io_uring_setup`: io_uring creates sockets without the `socket` system call.
//!
//! and allows everything else. A system call of another architecture (32-bit compat on
//! x86_64) kills the process, as seccompiler's filters do; x32 numbers are refused alike. The
//! program is built in the parent; the child only installs it between fork and exec.

use seccompiler::{
    BpfProgram, SeccompAction, SeccompCmpArgLen, SeccompCmpOp, SeccompCondition, SeccompFilter,
    SeccompRule, TargetArch,
};
use std::collections::BTreeMap;
use std::os::unix::process::CommandExt;
use std::process::Command;
use std::sync::OnceLock;

/// The bits of `socketpair`'s type argument that name the type (the rest are flags).
const SOCK_TYPE_MASK: u64 = 0xf;

/// x86_64's x32 system calls: the same numbers with this bit set, under the same audit arch.
const X32_SYSCALL_BIT: i64 = 0x4000_0000;

/// The filter for this machine's architecture, built once per process; the error says why
/// there is none.
pub(crate) fn program() -> Result<BpfProgram, String> {
    static PROGRAM: OnceLock<Result<BpfProgram, String>> = OnceLock::new();
    PROGRAM
        .get_or_init(|| {
            let program = build().map_err(|e| format!("cannot build the seccomp filter: {e}"))?;
            probe(&program)?;
            Ok(program)
        })
        .clone()
}

fn build() -> Result<BpfProgram, seccompiler::BackendError> {
    let arch = TargetArch::try_from(std::env::consts::ARCH)?;
    let unix = SeccompCondition::new(
        0,
        SeccompCmpArgLen::Dword,
        SeccompCmpOp::Eq,
        libc::AF_UNIX as u64,
    )?;
    let datagram = SeccompCondition::new(
        1,
        SeccompCmpArgLen::Dword,
        SeccompCmpOp::MaskedEq(SOCK_TYPE_MASK),
        libc::SOCK_DGRAM as u64,
    )?;
    let mut refused: Vec<(i64, Vec<SeccompRule>)> = vec![
        (libc::SYS_socket, vec![SeccompRule::new(vec![unix])?]),
        (
            libc::SYS_socketpair,
            vec![SeccompRule::new(vec![datagram])?],
        ),
        // No conditions: refused whatever its arguments.
        (libc::SYS_io_uring_setup, vec![]),
    ];
    if arch == TargetArch::x86_64 {
        let x32: Vec<_> = refused
            .iter()
            .map(|(nr, rules)| (nr | X32_SYSCALL_BIT, rules.clone()))
            .collect();
        refused.extend(x32);
    }
    let filter = SeccompFilter::new(
        refused.into_iter().collect::<BTreeMap<_, _>>(),
        SeccompAction::Allow,
        SeccompAction::Errno(libc::EPERM as u32),
        arch,
    )?;
    filter.try_into()
}

/// Installs `program` on the calling process (and what it starts), setting no_new_privs first
/// as the kernel requires of an unprivileged process (Landlock set it already when it is
/// there). Meant for a child between fork and exec: two system calls, no allocation.
pub(crate) fn install(program: &BpfProgram) -> std::io::Result<()> {
    match seccompiler::apply_filter(program) {
        Ok(()) => Ok(()),
        Err(seccompiler::Error::Prctl(e) | seccompiler::Error::Seccomp(e)) => Err(e),
        Err(_) => Err(std::io::Error::from_raw_os_error(libc::EINVAL)),
    }
}

/// Ok when a shell runs with `program` installed (the kernel has seccomp filters and lets
/// this process install one).
fn probe(program: &BpfProgram) -> Result<(), String> {
    let mut probe = Command::new("/bin/sh");
    probe.args(["-c", "exit 0"]).env_clear();
    let program = program.clone();
    // SAFETY: the closure only installs a program built before the fork (prctl(2) and
    // seccomp(2)), allocating nothing.
    unsafe {
        probe.pre_exec(move || install(&program));
    }
    match probe.status() {
        Ok(s) if s.success() => Ok(()),
        Ok(s) => Err(format!("a process with the seccomp filter ended with {s}")),
        Err(e) => Err(format!("the kernel refused the seccomp filter: {e}")),
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn the_filter_builds_for_this_machine() {
        let program = build().unwrap();
        assert!(!program.is_empty());
    }
}
