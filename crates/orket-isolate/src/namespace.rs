//! The namespaces of a fixture process: a new network namespace (no network but a down
//! loopback) and a new PID namespace, so that nothing the fixture starts outlives it.
//!
//! `unshare(CLONE_NEWPID)` moves the caller's future children, never the caller: the fixture's
//! Python stays an ordinary process where it was, and the first process it has in the new
//! namespace becomes that namespace's PID 1. That first process is an *anchor* forked between
//! fork and exec ([`start_anchor`]): it does nothing but wait, and when it dies the kernel
//! kills every process left in the namespace, whatever session or process group they moved to.
//! It dies with the fixture: it shares the fixture's process group (the group kill of
//! [`crate::process::run`] reaches it), and its parent-death signal is SIGKILL.
//!
//! Python itself is kept out of PID 1 on purpose: a namespace's PID 1 ignores every signal it
//! has no handler for, the kernel's SIGXCPU at the CPU limit included, and its exit status is
//! what [`crate::process::Finished`] reports.

use crate::verify::NetworkIsolation;
use std::os::unix::process::CommandExt;
use std::process::Command;
use std::sync::OnceLock;

/// The namespaces a fixture process enters.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub(crate) struct Namespaces {
    /// How it is cut off from the network.
    pub network: NetworkIsolation,
    /// Whether its children live in a new PID namespace held by an anchor.
    pub pid: bool,
}

impl Namespaces {
    /// None at all: the host's network and PIDs.
    const NONE: Namespaces = Namespaces {
        network: NetworkIsolation::None,
        pid: false,
    };

    /// The `unshare(2)` flags; a user namespace when unprivileged (it grants the others).
    fn flags(self) -> libc::c_int {
        let network = match self.network {
            NetworkIsolation::Namespace => libc::CLONE_NEWNET,
            NetworkIsolation::UserNamespace => libc::CLONE_NEWUSER | libc::CLONE_NEWNET,
            NetworkIsolation::None => 0,
        };
        network | if self.pid { libc::CLONE_NEWPID } else { 0 }
    }

    /// True when they include a user namespace (where RLIMIT_NPROC counts only the fixture's
    /// processes).
    #[cfg(test)]
    pub fn user(self) -> bool {
        self.network == NetworkIsolation::UserNamespace
    }

    /// Enters them: `unshare(2)`. Meant for a child between fork and exec (one system call).
    pub fn enter(self) -> std::io::Result<()> {
        let flags = self.flags();
        if flags == 0 {
            return Ok(());
        }
        // SAFETY: unshare(2) takes flags only.
        if unsafe { libc::unshare(flags) } != 0 {
            return Err(std::io::Error::last_os_error());
        }
        Ok(())
    }

    /// Enters them and, with a PID namespace, starts its anchor: everything a fixture process
    /// does with them between fork and exec. Allocation-free.
    pub fn enter_and_anchor(self) -> std::io::Result<()> {
        self.enter()?;
        if self.pid {
            start_anchor()?;
        }
        Ok(())
    }
}

/// The namespaces this machine allows, probed once per process: a PID namespace with the
/// network one where the OS allows both (as root `CLONE_NEWNET|CLONE_NEWPID`, unprivileged
/// inside a new user namespace), else the network namespace alone, else none.
pub(crate) fn namespaces() -> Namespaces {
    static FOUND: OnceLock<Namespaces> = OnceLock::new();
    *FOUND.get_or_init(|| {
        let candidates = [
            (NetworkIsolation::Namespace, true),
            (NetworkIsolation::UserNamespace, true),
            (NetworkIsolation::Namespace, false),
            (NetworkIsolation::UserNamespace, false),
        ];
        candidates
            .into_iter()
            .map(|(network, pid)| Namespaces { network, pid })
            .find(|ns| works(*ns))
            .unwrap_or(Namespaces::NONE)
    })
}

/// True when a shell started in `ns` (and its anchor) runs.
fn works(ns: Namespaces) -> bool {
    let mut probe = Command::new("/bin/sh");
    probe.args(["-c", "exit 0"]).env_clear();
    // SAFETY: the closure calls only unshare(2) and start_anchor, which are async-signal-safe
    // and allocate nothing.
    unsafe {
        probe.pre_exec(move || ns.enter_and_anchor());
    }
    probe.status().is_ok_and(|s| s.success())
}

/// Forks the anchor of a new PID namespace (its PID 1) from a process that has just unshared
/// `CLONE_NEWPID`, and returns once the anchor is armed (its parent-death signal set), so the
/// anchor dies with this process even if it exits at once. Meant for a child between fork and
/// exec: it makes system calls only, allocates nothing, and leaves no descriptor open in the
/// caller (the pipe it uses is close-on-exec and closed before it returns).
pub(crate) fn start_anchor() -> std::io::Result<()> {
    let mut ends: [libc::c_int; 2] = [-1, -1];
    // SAFETY: pipe2(2) writes two descriptors into `ends`, which lives on this frame.
    if unsafe { libc::pipe2(ends.as_mut_ptr(), libc::O_CLOEXEC) } != 0 {
        return Err(std::io::Error::last_os_error());
    }
    let [armed, arming] = ends;
    // SAFETY: the caller is the single thread of a child between fork and exec; the new child
    // runs `anchor`, which never returns and makes only async-signal-safe system calls.
    let pid = unsafe { libc::fork() };
    if pid == 0 {
        anchor();
    }
    let forked = if pid < 0 {
        Err(std::io::Error::last_os_error())
    } else {
        Ok(())
    };
    // SAFETY: close(2) and read(2) on the two descriptors pipe2 just returned, owned here.
    unsafe {
        libc::close(arming);
        if forked.is_ok() {
            // End of file once the anchor closed its copy of `arming`, after arming itself
            // (or died).
            let mut byte = 0u8;
            while libc::read(armed, (&mut byte as *mut u8).cast(), 1) < 0
                && std::io::Error::last_os_error().raw_os_error() == Some(libc::EINTR)
            {}
        }
        libc::close(armed);
    }
    forked
}

/// The anchor: PID 1 of the fixture's namespace. It arms its parent-death signal, lets the
/// kernel reap the orphans it inherits (SIGCHLD ignored), closes every descriptor (it holds
/// none of the fixture's pipes; closing its end of the arming pipe tells the parent it is
/// armed) and waits to be killed.
fn anchor() -> ! {
    // SAFETY: prctl(2), signal(2), close_range(2), close(2) and pause(2) take integers only
    // and are async-signal-safe; nothing here touches memory of the parent.
    unsafe {
        // If arming failed the anchor still dies with the fixture's process group.
        libc::prctl(libc::PR_SET_PDEATHSIG, libc::SIGKILL, 0, 0, 0);
        libc::signal(libc::SIGCHLD, libc::SIG_IGN);
        if libc::syscall(libc::SYS_close_range, 0u32, u32::MAX, 0u32) != 0 {
            // Kernels before 5.9: close what an ordinary process can have open.
            for fd in 0..65536 {
                libc::close(fd);
            }
        }
        loop {
            libc::pause();
        }
    }
}
