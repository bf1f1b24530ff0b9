//! Build leases: one run per build across processes. The process running a build holds its
//! lease (who: a token unique to the process, its pid and host; when: taken, last heartbeat).
//! The lease is taken by [`crate::Change::TakeLease`] in the same batch that starts or resumes
//! the run, renewed by [`crate::Change::RenewLease`] (heartbeats, and every commit of the run,
//! so a process that lost its lease cannot commit a late turn), and released by
//! [`crate::Change::ReleaseLease`] when the run ends.

use serde::Serialize;
use std::time::Duration;

/// The process holding, or asking for, a lease.
#[derive(Debug, Clone, PartialEq, Eq, Serialize)]
pub struct LeaseHolder {
    /// Unique to one process: its host, the kernel's boot id, its PID namespace, pid and start
    /// time (`host/boot/pidns/pid/start`).
    pub token: String,
    /// Its process id.
    pub pid: u32,
    /// Its host name.
    pub host: String,
}

/// A build's lease as stored.
#[derive(Debug, Clone, PartialEq, Eq, Serialize)]
pub struct LeaseRecord {
    /// The build.
    pub build_id: String,
    /// The run holding it.
    pub run_id: String,
    /// The process holding it.
    pub holder: LeaseHolder,
    /// When it was taken (by this holder).
    pub taken_at: String,
    /// The holder's last heartbeat.
    pub heartbeat_at: String,
}

impl LeaseRecord {
    /// "run R (process P on host H, last heartbeat T)".
    pub fn describe(&self) -> String {
        format!(
            "run {} (process {} on {}, last heartbeat {})",
            self.run_id, self.holder.pid, self.holder.host, self.heartbeat_at
        )
    }

    /// True when its last heartbeat is more than `stale_after` ago (or cannot be read).
    pub fn is_stale(&self, stale_after: Duration) -> bool {
        let Ok(at) = chrono::DateTime::parse_from_rfc3339(&self.heartbeat_at) else {
            return true;
        };
        let age = chrono::Utc::now().signed_duration_since(at);
        age.to_std().is_ok_and(|age| age > stale_after)
    }
}

/// How a run asks for a build's lease.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct LeaseRequest {
    /// The build.
    pub build_id: String,
    /// The run that will hold it.
    pub run_id: String,
    /// The process asking.
    pub holder: LeaseHolder,
    /// A lease whose last heartbeat is older than this is free to take.
    pub stale_after: Duration,
    /// The token of a holder the caller knows is gone (its process no longer exists): its
    /// lease is taken over whatever its heartbeat says.
    pub replacing: Option<String>,
}
