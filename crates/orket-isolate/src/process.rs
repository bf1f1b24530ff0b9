//! Child processes with a wall-time limit: stdin written, stdout and stderr collected (capped),
//! the whole process group killed when the time is up, and the pipes never waited for past a
//! bounded grace (processes the child left in their own session can hold them open). Blocking; async callers run it on
//! `tokio::task::spawn_blocking` so the executor's threads keep serving other turns.

use std::fs::File;
use std::io::{ErrorKind, Read, Write};
use std::os::fd::{AsRawFd, FromRawFd, OwnedFd};
use std::os::unix::process::{CommandExt, ExitStatusExt};
use std::process::{Command, ExitStatus, Stdio};
use std::time::{Duration, Instant};

/// The most output kept of one stream; the rest is read and dropped.
pub const OUTPUT_CAP: usize = 1024 * 1024;

/// How a child process ended.
#[derive(Debug)]
pub struct Finished {
    /// Its exit status (`None` only if waiting for it failed after a kill).
    pub status: Option<ExitStatus>,
    /// What it wrote to stdout (at most [`OUTPUT_CAP`] bytes).
    pub stdout: Vec<u8>,
    /// What it wrote to stderr (at most [`OUTPUT_CAP`] bytes).
    pub stderr: Vec<u8>,
    /// It ran out of wall time and was killed.
    pub timed_out: bool,
    /// Its stdout or stderr was still open [`DRAIN_GRACE`] after it ended (and past the
    /// deadline): it left processes running outside its process group (started in their own
    /// session) that held them. The output may be incomplete.
    pub left_running: bool,
    /// How many of those were found holding its pipes and killed.
    pub leftovers_killed: usize,
    /// How long it ran.
    pub elapsed: Duration,
}

impl Finished {
    /// "exit code N", "killed by signal N (NAME)" or "timed out after S s".
    pub fn describe(&self) -> String {
        if self.timed_out {
            return format!("timed out after {:.1} s", self.elapsed.as_secs_f64());
        }
        match self.status {
            Some(s) => match (s.code(), s.signal()) {
                (Some(code), _) => format!("exit code {code}"),
                (None, Some(sig)) => format!("killed by signal {sig} ({})", signal_name(sig)),
                _ => "ended without a status".to_string(),
            },
            None => "its status could not be read".to_string(),
        }
    }

    /// True when it exited with code 0 in time.
    pub fn success(&self) -> bool {
        !self.timed_out && self.status.is_some_and(|s| s.success())
    }

    /// The last `max` characters of stderr, lossily decoded.
    pub fn stderr_tail(&self, max: usize) -> String {
        tail(&String::from_utf8_lossy(&self.stderr), max)
    }
}

/// The last `max` characters of `text`, trimmed.
pub fn tail(text: &str, max: usize) -> String {
    let chars: Vec<char> = text.trim().chars().collect();
    let start = chars.len().saturating_sub(max);
    chars[start..].iter().collect()
}

fn signal_name(sig: i32) -> &'static str {
    match sig {
        libc::SIGKILL => "SIGKILL",
        libc::SIGXCPU => "SIGXCPU: CPU time limit",
        libc::SIGSEGV => "SIGSEGV",
        libc::SIGABRT => "SIGABRT",
        libc::SIGTERM => "SIGTERM",
        _ => "signal",
    }
}

/// True once the child has exited; it stays a zombie (not reaped) so its pid and process
/// group id stay reserved.
fn exited_unreaped(pid: libc::pid_t) -> bool {
    // SAFETY: waitid(2) writes only into `info`, which lives on this stack frame.
    unsafe {
        let mut info: libc::siginfo_t = std::mem::zeroed();
        let r = libc::waitid(
            libc::P_PID,
            pid as libc::id_t,
            &mut info,
            libc::WEXITED | libc::WNOHANG | libc::WNOWAIT,
        );
        // An error (no such child) means there is nothing left to wait for.
        r != 0 || info.si_pid() != 0
    }
}

/// How long after the child ends its output pipes may stay open at the least (the grace runs
/// to the wall-time deadline when that is later).
pub const DRAIN_GRACE: Duration = Duration::from_secs(1);

/// How often the loop looks whether the child has ended.
const TICK_MS: libc::c_int = 5;

fn set_nonblocking(file: &File) -> std::io::Result<()> {
    let fd = file.as_raw_fd();
    // SAFETY: fcntl(2) on a descriptor this function borrows; no memory is touched.
    unsafe {
        let flags = libc::fcntl(fd, libc::F_GETFL);
        if flags < 0 || libc::fcntl(fd, libc::F_SETFL, flags | libc::O_NONBLOCK) < 0 {
            return Err(std::io::Error::last_os_error());
        }
    }
    Ok(())
}

/// One of the child's output pipes, read without blocking.
struct Sink {
    file: Option<File>,
    kept: Vec<u8>,
}

impl Sink {
    fn new(from: Option<impl Into<OwnedFd>>) -> std::io::Result<Self> {
        let file = from.map(|f| File::from(f.into()));
        if let Some(f) = &file {
            set_nonblocking(f)?;
        }
        Ok(Sink {
            file,
            kept: Vec::new(),
        })
    }

    /// Reads what is there; closes the pipe at its end (or on an error).
    fn drain(&mut self) {
        let Some(file) = self.file.as_mut() else {
            return;
        };
        let mut buf = [0u8; 8192];
        loop {
            match file.read(&mut buf) {
                Ok(0) => break,
                Ok(n) => {
                    let room = OUTPUT_CAP.saturating_sub(self.kept.len());
                    self.kept.extend_from_slice(&buf[..n.min(room)]);
                }
                Err(e) if e.kind() == ErrorKind::Interrupted => {}
                Err(e) if e.kind() == ErrorKind::WouldBlock => return,
                Err(_) => break,
            }
        }
        self.file = None;
    }
}

/// The child's stdin, written without blocking and closed once everything is written.
struct Feed {
    file: Option<File>,
    input: Vec<u8>,
    written: usize,
}

impl Feed {
    fn write(&mut self) {
        let Some(file) = self.file.as_mut() else {
            return;
        };
        while self.written < self.input.len() {
            match file.write(&self.input[self.written..]) {
                Ok(0) => break,
                Ok(n) => self.written += n,
                Err(e) if e.kind() == ErrorKind::Interrupted => {}
                Err(e) if e.kind() == ErrorKind::WouldBlock => return,
                // A child that exits without reading its input is not an error here.
                Err(_) => break,
            }
        }
        self.file = None;
    }
}

/// Waits up to `ms` for the open pipes to be ready and serves them.
fn pump(feed: &mut Feed, out: &mut Sink, err: &mut Sink, ms: libc::c_int) {
    let mut fds = Vec::with_capacity(3);
    if let Some(f) = &feed.file {
        fds.push(libc::pollfd {
            fd: f.as_raw_fd(),
            events: libc::POLLOUT,
            revents: 0,
        });
    }
    for sink in [&*out, &*err] {
        if let Some(f) = &sink.file {
            fds.push(libc::pollfd {
                fd: f.as_raw_fd(),
                events: libc::POLLIN,
                revents: 0,
            });
        }
    }
    // SAFETY: poll(2) reads and writes only `fds`, which outlives the call; with no
    // descriptors it just sleeps.
    let ready = unsafe { libc::poll(fds.as_mut_ptr(), fds.len() as libc::nfds_t, ms) };
    if ready > 0 {
        // Serving a pipe that is not ready returns at once (they do not block).
        feed.write();
        out.drain();
        err.drain();
    }
}

/// The pipe inode of `file` (what `/proc/<pid>/fd/*` names as `pipe:[inode]`).
fn pipe_inode(file: &File) -> Option<u64> {
    use std::os::unix::fs::MetadataExt;
    file.metadata().ok().map(|m| m.ino())
}

/// True when process `pid` has a descriptor on one of the pipes `links` (`pipe:[inode]`).
fn holds_pipe(pid: libc::pid_t, links: &[String]) -> bool {
    let Ok(fds) = std::fs::read_dir(format!("/proc/{pid}/fd")) else {
        return false;
    };
    fds.flatten().any(|fd| {
        std::fs::read_link(fd.path())
            .is_ok_and(|target| links.iter().any(|l| target.as_os_str() == l.as_str()))
    })
}

/// Kills `pid` with SIGKILL if `still_it` holds once a pidfd names it: the pidfd pins the
/// process that had `pid` when it was opened, so checking again after opening it proves the
/// signal reaches the process that was chosen, never one that got its pid since. True when
/// the signal was sent.
pub(crate) fn kill_confirmed(pid: libc::pid_t, still_it: impl Fn() -> bool) -> bool {
    // SAFETY: pidfd_open(2) takes a pid and flags and returns a new descriptor we own.
    let pidfd = unsafe { libc::syscall(libc::SYS_pidfd_open, pid, 0) };
    if pidfd < 0 {
        return false;
    }
    // SAFETY: `pidfd` was just returned by pidfd_open and is owned only here.
    let pidfd = unsafe { OwnedFd::from_raw_fd(pidfd as libc::c_int) };
    if !still_it() {
        return false;
    }
    // SAFETY: pidfd_send_signal(2) with a descriptor we own, no siginfo, no flags.
    let r = unsafe {
        libc::syscall(
            libc::SYS_pidfd_send_signal,
            pidfd.as_raw_fd(),
            libc::SIGKILL,
            std::ptr::null::<libc::siginfo_t>(),
            0,
        )
    };
    r == 0
}

/// Kills the processes (other than this one) that still hold the child's output pipes: what
/// the child left running outside its process group (a new session). Precise: a process is
/// chosen only because it has one of these very pipes open, and it is signalled through a
/// pidfd opened before that is checked again, so a reused pid is never hit. Returns how many
/// were killed.
fn kill_pipe_holders(sinks: &[&Sink]) -> usize {
    let links: Vec<String> = sinks
        .iter()
        .filter_map(|s| s.file.as_ref().and_then(pipe_inode))
        .map(|ino| format!("pipe:[{ino}]"))
        .collect();
    let Ok(procs) = std::fs::read_dir("/proc") else {
        return 0;
    };
    let me = std::process::id() as libc::pid_t;
    let mut killed = 0;
    for entry in procs.flatten() {
        let Some(pid) = entry
            .file_name()
            .to_str()
            .and_then(|n| n.parse::<libc::pid_t>().ok())
        else {
            continue;
        };
        if pid == me || !holds_pipe(pid, &links) {
            continue;
        }
        if kill_confirmed(pid, || holds_pipe(pid, &links)) {
            killed += 1;
        }
    }
    killed
}

/// Runs `command` in its own process group with `input` on stdin; kills the group after
/// `timeout`. Once the child has ended (or was killed) its output is read for at most
/// [`DRAIN_GRACE`] or until the deadline, whichever is later: processes it started in their
/// own session (out of reach of the group kill) and left holding the pipes are killed then
/// and reported in [`Finished::left_running`], never waited for. Spawn errors (program
/// missing, a failing `pre_exec`) are returned as is.
pub fn run(mut command: Command, input: &[u8], timeout: Duration) -> std::io::Result<Finished> {
    command
        .stdin(Stdio::piped())
        .stdout(Stdio::piped())
        .stderr(Stdio::piped())
        .process_group(0);
    let started = Instant::now();
    let deadline = started + timeout;
    let mut child = command.spawn()?;
    let pid = child.id() as libc::pid_t;
    let pipes = (|| -> std::io::Result<(Feed, Sink, Sink)> {
        let stdin = child.stdin.take().map(|s| File::from(OwnedFd::from(s)));
        if let Some(f) = &stdin {
            set_nonblocking(f)?;
        }
        let feed = Feed {
            file: stdin,
            input: input.to_vec(),
            written: 0,
        };
        Ok((
            feed,
            Sink::new(child.stdout.take())?,
            Sink::new(child.stderr.take())?,
        ))
    })();
    let (mut feed, mut out, mut err) = match pipes {
        Ok(p) => p,
        Err(e) => {
            // SAFETY: kill(2) on our own child's process group, not reaped yet.
            unsafe {
                libc::kill(-pid, libc::SIGKILL);
            }
            let _ = child.wait();
            return Err(e);
        }
    };
    feed.write();

    let mut timed_out = false;
    let mut ended: Option<(Option<ExitStatus>, Duration, Instant)> = None;
    let mut left_running = false;
    let mut leftovers_killed = 0;
    loop {
        if ended.is_none() {
            let exited = exited_unreaped(pid);
            if !exited && Instant::now() >= deadline {
                timed_out = true;
            }
            if exited || timed_out {
                // The leader is not reaped yet, so its group id cannot have been reused: kill
                // the group (on a timeout, and any process the child left behind in it), then
                // reap.
                // SAFETY: kill(2) on our own child's process group; no memory is touched.
                unsafe {
                    libc::kill(-pid, libc::SIGKILL);
                }
                let ran = started.elapsed();
                let status = child.wait().ok();
                // Nobody is left to read the rest of the input.
                feed.file = None;
                let drain_until = deadline.max(Instant::now() + DRAIN_GRACE);
                ended = Some((status, ran, drain_until));
            }
        }
        if let Some((_, _, drain_until)) = ended {
            if out.file.is_none() && err.file.is_none() {
                break;
            }
            if Instant::now() >= drain_until {
                left_running = true;
                leftovers_killed = kill_pipe_holders(&[&out, &err]);
                tracing::warn!(
                    "process {pid} ended but its output stayed open past the grace period: \
                     it left processes running in their own session ({leftovers_killed} killed)"
                );
                break;
            }
        }
        pump(&mut feed, &mut out, &mut err, TICK_MS);
    }
    let (status, elapsed, _) = ended.expect("the loop ends only after the child ended");
    Ok(Finished {
        status,
        stdout: out.kept,
        stderr: err.kept,
        timed_out,
        left_running,
        leftovers_killed,
        elapsed,
    })
}

#[cfg(test)]
mod tests {
    use super::*;

    /// Without a PID namespace (this runs none), a process left in a session of its own and
    /// holding the output is found by its pipe and killed after the grace, never waited for.
    #[test]
    fn a_process_left_holding_the_output_is_killed_not_waited_for() {
        let python = crate::interpreter::python().unwrap();
        let mut command = Command::new(python);
        command.args([
            "-c",
            "import subprocess; p = subprocess.Popen(['sleep', '30'], start_new_session=True); print(p.pid)",
        ]);
        let started = Instant::now();
        let finished = run(command, &[], Duration::from_secs(1)).unwrap();
        assert!(started.elapsed() < Duration::from_secs(5), "{finished:?}");
        assert!(finished.success(), "{finished:?}");
        assert!(
            finished.left_running && finished.leftovers_killed == 1,
            "{finished:?}"
        );
        let pid: libc::pid_t = String::from_utf8_lossy(&finished.stdout)
            .trim()
            .parse()
            .unwrap();
        // Killed, so it ends (a zombie until the system reaps it).
        let ended = || {
            std::fs::read_to_string(format!("/proc/{pid}/stat")).map_or(true, |stat| {
                !stat.contains("(sleep)")
                    || stat
                        .rsplit(')')
                        .next()
                        .unwrap_or("")
                        .trim_start()
                        .starts_with('Z')
            })
        };
        let until = Instant::now() + Duration::from_secs(5);
        while !ended() && Instant::now() < until {
            std::thread::sleep(Duration::from_millis(20));
        }
        assert!(ended(), "sleep {pid} still running");
    }
}
