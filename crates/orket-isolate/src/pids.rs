//! The process cap of a fixture run: how many processes and threads it may have at once, so a
//! fork bomb stops at the cap (`fork` fails with EAGAIN) instead of filling the machine.
//!
//! Where this process may create a cgroup in the cgroup v1 `pids` hierarchy (as root, where it
//! is mounted writable), each run gets its own `orket-verify-<pid>-<n>` below this process's
//! cgroup with `pids.max` set; the child joins it between fork and exec by writing "0" to its
//! `cgroup.procs` (opened before the fork), and the folder is removed after the run, once
//! whatever was left in it is killed. Otherwise RLIMIT_NPROC is the cap, but only where a probe
//! shows that it binds the fixture's processes alone: the kernel ignores it for real uid 0 and
//! for a process with CAP_SYS_ADMIN or CAP_SYS_RESOURCE, and outside a new user namespace it
//! counts every process of the user (a busy user's fixture could not fork at all).

use crate::namespace::Namespaces;
use crate::process::kill_confirmed;
use std::fs::{File, OpenOptions};
use std::os::fd::{AsRawFd, RawFd};
use std::os::unix::process::CommandExt;
use std::path::{Path, PathBuf};
use std::process::Command;
use std::sync::atomic::{AtomicU64, Ordering};
use std::sync::OnceLock;
use std::time::{Duration, Instant};

/// Where the cgroup v1 `pids` hierarchy is mounted.
const PIDS_HIERARCHY: &str = "/sys/fs/cgroup/pids";

/// How long removing a run's cgroup may wait for its processes to be gone.
const REMOVE_WITHIN: Duration = Duration::from_secs(2);

/// What caps a run's processes.
#[derive(Debug)]
pub(crate) enum Cap {
    /// A pids cgroup of its own.
    Cgroup(RunCgroup),
    /// RLIMIT_NPROC, set after entering the namespaces.
    Rlimit(u64),
    /// Nothing: why not.
    None(String),
}

/// The cap for a run allowed `max` processes and threads at once (`0`: none asked) in `ns`.
pub(crate) fn cap(max: u64, ns: Namespaces) -> Cap {
    if max == 0 {
        return Cap::None("no process cap was set (ORKET_VERIFY_PROCS is 0)".to_string());
    }
    let no_cgroup = match RunCgroup::create(max) {
        Ok(cgroup) => return Cap::Cgroup(cgroup),
        Err(why) => why,
    };
    if rlimit_binds_alone(ns) {
        return Cap::Rlimit(max);
    }
    Cap::None(format!(
        "no process cap: no pids cgroup ({no_cgroup}), and RLIMIT_NPROC does not bind here (the kernel ignores it for root and for CAP_SYS_ADMIN or CAP_SYS_RESOURCE, and outside a user namespace it counts every process of the user)"
    ))
}

/// A pids cgroup of one run, removed (after killing what is left in it) when dropped.
#[derive(Debug)]
pub(crate) struct RunCgroup {
    dir: PathBuf,
    procs: File,
}

impl RunCgroup {
    /// Creates `orket-verify-<pid>-<n>` below this process's cgroup of the pids hierarchy,
    /// with `pids.max` = `max`; the error says what failed.
    fn create(max: u64) -> Result<RunCgroup, String> {
        static NEXT: AtomicU64 = AtomicU64::new(0);
        let parent = own_pids_cgroup()?;
        remove_stale(&parent);
        let dir = loop {
            let n = NEXT.fetch_add(1, Ordering::Relaxed);
            let dir = parent.join(format!("orket-verify-{}-{n}", std::process::id()));
            match std::fs::create_dir(&dir) {
                Ok(()) => break dir,
                // Left by an earlier process with the same pid: take the next name.
                Err(e) if e.kind() == std::io::ErrorKind::AlreadyExists => continue,
                Err(e) => return Err(format!("cannot create {}: {e}", dir.display())),
            }
        };
        let opened = std::fs::write(dir.join("pids.max"), format!("{max}\n"))
            .map_err(|e| format!("cannot write {}/pids.max: {e}", dir.display()))
            .and_then(|()| {
                OpenOptions::new()
                    .write(true)
                    .open(dir.join("cgroup.procs"))
                    .map_err(|e| format!("cannot open {}/cgroup.procs: {e}", dir.display()))
            });
        match opened {
            Ok(procs) => Ok(RunCgroup { dir, procs }),
            Err(e) => {
                let _ = std::fs::remove_dir(&dir);
                Err(e)
            }
        }
    }

    /// The descriptor of its `cgroup.procs`, open for writing (close-on-exec); valid while
    /// `self` lives, which is past the spawn of the child that joins it.
    pub fn procs_fd(&self) -> RawFd {
        self.procs.as_raw_fd()
    }

    /// The processes in it (pids as this process sees them).
    fn members(&self) -> Vec<libc::pid_t> {
        std::fs::read_to_string(self.dir.join("cgroup.procs"))
            .unwrap_or_default()
            .lines()
            .filter_map(|l| l.trim().parse().ok())
            .collect()
    }

    /// Kills what is still in it (each pid confirmed a member once a pidfd pins it), then
    /// removes it, retrying while it is busy with processes still exiting.
    fn remove(&self) {
        let deadline = Instant::now() + REMOVE_WITHIN;
        loop {
            match std::fs::remove_dir(&self.dir) {
                Ok(()) => return,
                Err(e) if e.raw_os_error() == Some(libc::EBUSY) && Instant::now() < deadline => {
                    for pid in self.members() {
                        kill_confirmed(pid, || self.members().contains(&pid));
                    }
                    std::thread::sleep(Duration::from_millis(10));
                }
                Err(e) => {
                    tracing::warn!(
                        "cannot remove the fixture's cgroup {}: {e}",
                        self.dir.display()
                    );
                    return;
                }
            }
        }
    }
}

impl Drop for RunCgroup {
    fn drop(&mut self) {
        self.remove();
    }
}

/// Removes the empty run cgroups in `parent` whose process is gone: a process that ended in
/// the middle of a run (killed, or exiting without unwinding) never removed its own. Only
/// `rmdir`, which the kernel refuses while processes are in one.
fn remove_stale(parent: &Path) {
    let Ok(entries) = std::fs::read_dir(parent) else {
        return;
    };
    for entry in entries.flatten() {
        let name = entry.file_name();
        let owner = name
            .to_str()
            .and_then(|n| n.strip_prefix("orket-verify-"))
            .and_then(|rest| rest.split('-').next())
            .and_then(|pid| pid.parse::<u32>().ok());
        if owner.is_some_and(|pid| !Path::new(&format!("/proc/{pid}")).exists()) {
            let _ = std::fs::remove_dir(entry.path());
        }
    }
}

/// This process's own cgroup folder in the pids hierarchy (from `/proc/self/cgroup`).
fn own_pids_cgroup() -> Result<PathBuf, String> {
    let hierarchy = Path::new(PIDS_HIERARCHY);
    if !hierarchy.join("cgroup.procs").exists() {
        return Err(format!(
            "{PIDS_HIERARCHY} is not a mounted cgroup v1 pids hierarchy"
        ));
    }
    let own = std::fs::read_to_string("/proc/self/cgroup")
        .map_err(|e| format!("cannot read /proc/self/cgroup: {e}"))?;
    // Lines are "<id>:<controllers>:<path>".
    let path = own
        .lines()
        .filter_map(|l| {
            let mut parts = l.splitn(3, ':');
            let (_, controllers, path) = (parts.next()?, parts.next()?, parts.next()?);
            controllers.split(',').any(|c| c == "pids").then_some(path)
        })
        .next()
        .ok_or("this process is in no cgroup of the pids hierarchy")?;
    Ok(hierarchy.join(path.trim_start_matches('/')))
}

/// Moves the calling process into the cgroup whose `cgroup.procs` is open as `procs` ("0"
/// names the writer). One write(2): meant for a child between fork and exec.
pub(crate) fn join(procs: RawFd) -> std::io::Result<()> {
    // SAFETY: write(2) reads one byte of a static string; `procs` is open while the parent's
    // RunCgroup lives, which is past the fork.
    if unsafe { libc::write(procs, b"0".as_ptr().cast(), 1) } != 1 {
        return Err(std::io::Error::last_os_error());
    }
    Ok(())
}

/// Sets RLIMIT_NPROC (soft and hard) to `max`. Meant for a child between fork and exec, after
/// it entered its user namespace: set before, the new namespace would record `max` as the
/// limit of the user's processes outside it, and count them all.
pub(crate) fn limit_processes(max: u64) -> std::io::Result<()> {
    let limit = libc::rlimit {
        rlim_cur: max as libc::rlim_t,
        rlim_max: max as libc::rlim_t,
    };
    // SAFETY: setrlimit(2) reads `limit`, which lives on this stack frame.
    if unsafe { libc::setrlimit(libc::RLIMIT_NPROC, &limit) } != 0 {
        return Err(std::io::Error::last_os_error());
    }
    Ok(())
}

/// True when RLIMIT_NPROC, set inside `ns`, caps the fixture's own processes and nothing
/// else, probed once per process: with a limit of 2 a child in `ns` must be able to fork once
/// (other processes of the user are not counted) and not twice (the kernel enforces it).
fn rlimit_binds_alone(ns: Namespaces) -> bool {
    static BINDS: OnceLock<bool> = OnceLock::new();
    *BINDS.get_or_init(|| {
        let mut probe = Command::new("/bin/sh");
        probe.args(["-c", "exit 0"]).env_clear();
        // SAFETY: the closure makes only system calls (unshare, setrlimit, fork, kill,
        // waitpid, pause) and allocates nothing.
        unsafe {
            probe.pre_exec(move || {
                ns.enter()?;
                limit_processes(2)?;
                only_one_more_fork()
            });
        }
        probe.status().is_ok_and(|s| s.success())
    })
}

/// Ok when this process can fork one idle child but not a second one (EAGAIN).
fn only_one_more_fork() -> std::io::Result<()> {
    let first = fork_idle()?;
    let second = fork_idle();
    // The second child first: in a new PID namespace the first is its PID 1, whose exit waits
    // until every other process of the namespace is reaped, and only this process can reap
    // the second (ending the first before it would wait forever).
    if let Ok(pid) = second {
        end(pid);
    }
    end(first);
    match second {
        Ok(_) => Err(std::io::Error::from_raw_os_error(libc::EPERM)),
        Err(e) if e.raw_os_error() == Some(libc::EAGAIN) => Ok(()),
        Err(e) => Err(e),
    }
}

/// Forks a child that waits to be killed.
fn fork_idle() -> std::io::Result<libc::pid_t> {
    // SAFETY: fork(2) in the single thread of a child between fork and exec; the new child
    // only calls pause(2) until it is killed.
    match unsafe { libc::fork() } {
        -1 => Err(std::io::Error::last_os_error()),
        0 => loop {
            // SAFETY: pause(2) takes no arguments.
            unsafe { libc::pause() };
        },
        pid => Ok(pid),
    }
}

/// Kills and reaps a child of this process.
fn end(pid: libc::pid_t) {
    // SAFETY: kill(2) and waitpid(2) on this process's own unreaped child; no memory but a
    // null status pointer.
    unsafe {
        libc::kill(pid, libc::SIGKILL);
        libc::waitpid(pid, std::ptr::null_mut(), 0);
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    /// A pid that no process has (a child that has been reaped).
    fn dead_pid() -> u32 {
        let mut child = Command::new("/bin/sh")
            .args(["-c", "exit 0"])
            .spawn()
            .unwrap();
        let pid = child.id();
        child.wait().unwrap();
        pid
    }

    #[test]
    fn rlimit_nproc_is_the_cap_only_where_it_binds() {
        let ns = crate::namespace::namespaces();
        // SAFETY: getuid(2) takes no arguments.
        let root = unsafe { libc::getuid() } == 0;
        if root && !ns.user() {
            // The kernel does not count root's processes against RLIMIT_NPROC: hence the cgroup.
            assert!(!rlimit_binds_alone(ns));
        } else if !root && ns.user() {
            assert!(rlimit_binds_alone(ns));
        }
        match cap(0, ns) {
            Cap::None(why) => assert!(why.contains("ORKET_VERIFY_PROCS is 0"), "{why}"),
            other => panic!("no cap was asked: {other:?}"),
        }
    }

    #[test]
    fn a_run_cgroup_caps_removes_itself_and_sweeps_the_ones_left_by_dead_processes() {
        let parent = match own_pids_cgroup() {
            Ok(p) if RunCgroup::create(1).is_ok() => p,
            why => {
                // CI runs as root on a machine with the pids hierarchy: it must be writable.
                // SAFETY: getuid(2) takes no arguments.
                let root = unsafe { libc::getuid() } == 0;
                assert!(
                    !root || std::env::var("CI").as_deref() != Ok("true"),
                    "a writable pids cgroup is needed as root under CI: {why:?}"
                );
                return;
            }
        };
        let stale = parent.join(format!("orket-verify-{}-0", dead_pid()));
        std::fs::create_dir(&stale).unwrap();
        let cgroup = RunCgroup::create(17).unwrap();
        assert!(!stale.exists(), "{} was swept", stale.display());
        let max = std::fs::read_to_string(cgroup.dir.join("pids.max")).unwrap();
        assert_eq!(max.trim(), "17");
        let dir = cgroup.dir.clone();
        assert!(dir.starts_with(&parent) && dir.exists());
        drop(cgroup);
        assert!(!dir.exists(), "{} removed with the run", dir.display());
    }
}
