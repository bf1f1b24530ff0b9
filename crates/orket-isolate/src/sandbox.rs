//! The sandbox of one fixture process: prepared in the parent (the Landlock ruleset, the
//! seccomp program, the run's pids cgroup, the namespaces to enter), applied by the child
//! between fork and exec, and reported truthfully as an [`Isolation`].
//!
//! The child's steps, in this order (each needs the ones before it):
//! 1. the CPU, memory, file-size and core-dump rlimits;
//! 2. joining the run's pids cgroup, so everything it starts from here on is counted;
//! 3. `unshare`: the network namespace and the PID namespace (inside a user namespace when
//!    unprivileged);
//! 4. RLIMIT_NPROC when it is the process cap, after the user namespace exists (see
//!    [`crate::pids`]);
//! 5. Landlock `restrict_self`, which sets no_new_privs;
//! 6. the seccomp filter, which needs no_new_privs (it sets it itself when Landlock is absent);
//! 7. the PID namespace's anchor ([`crate::namespace`]), forked last so that it is counted by
//!    the cap and confined like the fixture.
//!
//! Everything between fork and exec is a system call on memory prepared before the fork: no
//! allocation, no lock.

use crate::landlock::{self, Access, Ruleset};
use crate::namespace::{namespaces, start_anchor, Namespaces};
use crate::pids::{self, Cap, RunCgroup};
use crate::seccomp;
use crate::verify::{FilesystemIsolation, Isolation, NetworkIsolation, ProcessCap, VerifyLimits};
use seccompiler::BpfProgram;
use std::os::fd::RawFd;
use std::os::unix::process::CommandExt;
use std::path::{Path, PathBuf};
use std::process::Command;

/// What every fixture may read and execute: the system's programs and libraries, and of
/// `/etc` only what the dynamic loader and Python need (never `/etc/shadow` and the like).
const SYSTEM_READ: [&str; 10] = [
    "/usr",
    "/lib",
    "/lib32",
    "/lib64",
    "/libx32",
    "/bin",
    "/sbin",
    "/etc/ld.so.cache",
    "/etc/localtime",
    "/etc/passwd",
];

/// Devices a fixture may read and write.
const DEVICES: [&str; 4] = ["/dev/null", "/dev/zero", "/dev/urandom", "/dev/random"];

/// The largest file a fixture may write (RLIMIT_FSIZE).
const FILE_SIZE_LIMIT: u64 = 64 * 1024 * 1024;

/// A fixture process's sandbox, from its preparation to the end of the run: dropping it
/// removes the run's pids cgroup (after killing what is left in it), so it must live until
/// the process has been waited for.
pub(crate) struct Sandbox {
    /// What the fixture gets, as stated in its result.
    pub isolation: Isolation,
    /// The child's steps, until [`Sandbox::confine`] hands them to the command.
    steps: Option<ChildSteps>,
    /// The run's pids cgroup, when that is the cap.
    _cgroup: Option<RunCgroup>,
}

/// What the child does between fork and exec; everything in it was prepared before the fork.
struct ChildSteps {
    limits: VerifyLimits,
    namespaces: Namespaces,
    /// `cgroup.procs` of the run's cgroup, open in the parent while the [`Sandbox`] lives.
    cgroup_procs: Option<RawFd>,
    nproc: Option<u64>,
    ruleset: Option<Ruleset>,
    seccomp: Option<BpfProgram>,
}

impl Sandbox {
    /// Prepares the sandbox of a fixture that may read the interpreter's `installation`
    /// folders and `workspace` and write `workdir`, under `limits`. What the OS refuses is
    /// left out and said in the isolation's note.
    pub fn prepare(
        limits: &VerifyLimits,
        installation: &[PathBuf],
        workspace: &Path,
        workdir: &Path,
    ) -> Sandbox {
        let namespaces = namespaces();
        let mut weaker = Vec::new();
        if namespaces.network == NetworkIsolation::None {
            weaker.push(
                "the OS refused a new network namespace (unshare), so the fixture shared the host's network"
                    .to_string(),
            );
        }
        let (ruleset, landlock_refused) = match confinement(installation, workspace, workdir) {
            Ok(r) => (r, None),
            Err(e) => (None, Some(e)),
        };
        if let Some(abi) = ruleset.as_ref().map(Ruleset::abi).filter(|abi| *abi < 6) {
            // Scoping arrived with ABI 6; the fixture's Python itself stays in the host's PID
            // namespace (only its children are in the new one).
            weaker.push(format!(
                "Landlock ABI {abi} cannot scope signals (6 can), so the fixture's Python could \
                 signal processes of the user running Orket"
            ));
        }
        if ruleset.is_none() {
            weaker.push(match landlock_refused {
                Some(e) => format!("Landlock could not be set up ({e}), so the fixture could read and write what the user running Orket can"),
                None => "the kernel has no Landlock, so the fixture could read and write what the user running Orket can".to_string(),
            });
        }
        // The anchor of the PID namespace is one more process than the fixture's own.
        let cap = pids::cap(
            limits.procs.saturating_add(u64::from(namespaces.pid)),
            namespaces,
        );
        if !namespaces.pid {
            weaker.push(format!(
                "the OS refused a PID namespace, so processes the fixture started in a session of their own could outlive it ({})",
                if matches!(cap, Cap::Cgroup(_)) {
                    "those left in its pids cgroup were killed after it"
                } else {
                    "only those still holding its output were killed"
                }
            ));
        }
        let process_cap = match &cap {
            Cap::Cgroup(_) => ProcessCap::PidsCgroup,
            Cap::Rlimit(_) => ProcessCap::Rlimit,
            Cap::None(why) => {
                weaker.push(format!("{why}, so a fork bomb was not stopped"));
                ProcessCap::None
            }
        };
        let seccomp = match seccomp::program() {
            Ok(p) => Some(p),
            Err(e) => {
                weaker.push(format!(
                    "{e}, so the fixture could connect to unix socket files on the host"
                ));
                None
            }
        };
        let isolation = Isolation {
            network: namespaces.network,
            filesystem: if ruleset.is_some() {
                FilesystemIsolation::Landlock
            } else {
                FilesystemIsolation::None
            },
            landlock_abi: ruleset.as_ref().map(Ruleset::abi),
            pid_namespace: namespaces.pid,
            process_cap,
            unix_sockets_refused: seccomp.is_some(),
            weaker: !weaker.is_empty(),
            note: (!weaker.is_empty()).then(|| format!("weaker isolation: {}", weaker.join("; "))),
            limits: *limits,
        };
        let (cgroup, nproc) = match cap {
            Cap::Cgroup(c) => (Some(c), None),
            Cap::Rlimit(n) => (None, Some(n)),
            Cap::None(_) => (None, None),
        };
        let steps = ChildSteps {
            limits: *limits,
            namespaces,
            cgroup_procs: cgroup.as_ref().map(RunCgroup::procs_fd),
            nproc,
            ruleset,
            seccomp,
        };
        Sandbox {
            isolation,
            steps: Some(steps),
            _cgroup: cgroup,
        }
    }

    /// Makes `command`'s child apply the sandbox between fork and exec (once).
    pub fn confine(&mut self, command: &mut Command) {
        let Some(mut steps) = self.steps.take() else {
            return;
        };
        // SAFETY: `ChildSteps::apply` makes only async-signal-safe system calls on memory
        // prepared before the fork, allocating nothing; the cgroup descriptor it writes to
        // stays open while `self` lives, past the spawn.
        unsafe {
            command.pre_exec(move || steps.apply());
        }
    }
}

impl ChildSteps {
    /// The steps of the module's documentation, in its order.
    fn apply(&mut self) -> std::io::Result<()> {
        set_limit(libc::RLIMIT_CPU, self.limits.cpu_sec, 1)?;
        set_limit(libc::RLIMIT_AS, self.limits.mem_mb * 1024 * 1024, 0)?;
        set_limit(libc::RLIMIT_FSIZE, FILE_SIZE_LIMIT, 0)?;
        set_limit(libc::RLIMIT_CORE, 0, 0)?;
        if let Some(procs) = self.cgroup_procs {
            pids::join(procs)?;
        }
        self.namespaces.enter()?;
        if let Some(max) = self.nproc {
            pids::limit_processes(max)?;
        }
        if let Some(ruleset) = &mut self.ruleset {
            ruleset.restrict_self()?;
        }
        if let Some(program) = &self.seccomp {
            seccomp::install(program)?;
        }
        if self.namespaces.pid {
            start_anchor()?;
        }
        Ok(())
    }
}

/// Sets a resource limit: `soft`, and a hard limit `slack` above it (for RLIMIT_CPU the kernel
/// sends SIGXCPU at the soft limit, SIGKILL at the hard one).
fn set_limit(resource: libc::__rlimit_resource_t, soft: u64, slack: u64) -> std::io::Result<()> {
    let limit = libc::rlimit {
        rlim_cur: soft as libc::rlim_t,
        rlim_max: soft.saturating_add(slack) as libc::rlim_t,
    };
    // SAFETY: setrlimit(2) reads `limit`, which lives on this stack frame.
    if unsafe { libc::setrlimit(resource, &limit) } != 0 {
        return Err(std::io::Error::last_os_error());
    }
    Ok(())
}

/// The Landlock ruleset of a fixture run (`Ok(None)` when the kernel has no Landlock): read the
/// system, the interpreter's `installation` folders (see `Installation::readable`) and
/// `workspace`; write `workdir` only.
fn confinement(
    installation: &[PathBuf],
    workspace: &Path,
    workdir: &Path,
) -> Result<Option<Ruleset>, String> {
    let Some(abi) = landlock::abi() else {
        return Ok(None);
    };
    let mut paths: Vec<(PathBuf, Access)> = SYSTEM_READ
        .iter()
        .map(|p| (PathBuf::from(p), Access::Read))
        .collect();
    paths.extend(installation.iter().map(|p| (p.clone(), Access::Read)));
    paths.extend(DEVICES.iter().map(|d| (PathBuf::from(d), Access::Device)));
    paths.push((workspace.to_path_buf(), Access::Read));
    paths.push((workdir.to_path_buf(), Access::ReadWrite));
    let borrowed: Vec<(&Path, Access)> = paths.iter().map(|(p, a)| (p.as_path(), *a)).collect();
    Ruleset::new(abi, &borrowed).map(Some)
}
