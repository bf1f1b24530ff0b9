//! Child processes with a wall-time limit: stdin written, stdout and stderr collected (capped),
//! the whole process group killed when the time is up. Blocking; async callers run it on
//! `tokio::task::spawn_blocking` so the executor's threads keep serving other turns.

use std::io::{Read, Write};
use std::os::unix::process::{CommandExt, ExitStatusExt};
use std::process::{Command, ExitStatus, Stdio};
use std::thread;
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

fn read_capped(mut from: impl Read) -> Vec<u8> {
    let mut kept = Vec::new();
    let mut buf = [0u8; 8192];
    loop {
        match from.read(&mut buf) {
            Ok(0) | Err(_) => break,
            Ok(n) => {
                let room = OUTPUT_CAP.saturating_sub(kept.len());
                kept.extend_from_slice(&buf[..n.min(room)]);
            }
        }
    }
    kept
}

/// Runs `command` in its own process group with `input` on stdin; kills the group after
/// `timeout`. Spawn errors (program missing, a failing `pre_exec`) are returned as is.
pub fn run(mut command: Command, input: &[u8], timeout: Duration) -> std::io::Result<Finished> {
    command
        .stdin(Stdio::piped())
        .stdout(Stdio::piped())
        .stderr(Stdio::piped())
        .process_group(0);
    let started = Instant::now();
    let mut child = command.spawn()?;
    let pid = child.id() as libc::pid_t;
    let stdin = child.stdin.take();
    let input = input.to_vec();
    let writer = thread::spawn(move || {
        if let Some(mut stdin) = stdin {
            // A child that exits without reading its input is not an error here.
            let _ = stdin.write_all(&input);
        }
    });
    let stdout = child.stdout.take();
    let stderr = child.stderr.take();
    let out_reader = thread::spawn(move || stdout.map(read_capped).unwrap_or_default());
    let err_reader = thread::spawn(move || stderr.map(read_capped).unwrap_or_default());

    let mut timed_out = false;
    loop {
        if exited_unreaped(pid) {
            break;
        }
        if started.elapsed() >= timeout {
            timed_out = true;
            break;
        }
        thread::sleep(Duration::from_millis(5));
    }
    // The leader is not reaped yet, so its group id cannot have been reused: kill the group
    // (on a timeout, and any process the child left behind holding the pipes), then reap.
    // SAFETY: kill(2) on our own child's process group; no memory is touched.
    unsafe {
        libc::kill(-pid, libc::SIGKILL);
    }
    let status = child.wait().ok();
    let _ = writer.join();
    let stdout = out_reader.join().unwrap_or_default();
    let stderr = err_reader.join().unwrap_or_default();
    Ok(Finished {
        status,
        stdout,
        stderr,
        timed_out,
        elapsed: started.elapsed(),
    })
}
