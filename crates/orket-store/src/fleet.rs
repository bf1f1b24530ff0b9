//! The worker fleet's records (the fleet itself needs the PostgreSQL store: `PgFleet`).
//!
//! A run on a PostgreSQL store can hand its turns to workers (`orket run --fleet`): each turn is
//! a [`TurnJob`] on the queue of its model; a worker serving that model claims it for a lease,
//! runs the turn in its own copy of the run's files, and commits the turn, the files it wrote,
//! the job's acknowledgement and its [`JobRecord::outcome`] in one transaction.

use serde::{Deserialize, Serialize};
use serde_json::Value;
use std::collections::BTreeMap;

/// One turn to run: what the planning process decided, all a worker needs besides the store.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct TurnJob {
    /// Unique: `<run>-<seq>`.
    pub job: String,
    /// The run.
    pub run_id: String,
    /// Its build.
    pub build_id: String,
    /// The issue the turn works on.
    pub issue_id: String,
    /// The turn's seq (the same when the job is redone).
    pub seq: i64,
    /// The model the turn's seat uses (its queue).
    pub model: String,
    /// The build's statuses at the start of the tick (the gate checks moves against them).
    pub snapshot: BTreeMap<String, String>,
    /// The run's workspace, relative to the project root.
    pub workspace: String,
    /// The lease holder of the process that planned it (its build's lease): a job whose run
    /// another process has taken over since (a resumed run) is not committed.
    pub holder: String,
}

/// A job as the store knows it.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct JobRecord {
    /// The job.
    pub job: String,
    /// Its run.
    pub run_id: String,
    /// Its turn's seq.
    pub seq: i64,
    /// Its issue.
    pub issue_id: String,
    /// Its model.
    pub model: String,
    /// `queued`, `running`, `done`, `failed`, `canceled` (a halted run's, never taken) or
    /// `dropped` (its run ended or was resumed by another process before it was committed).
    pub state: String,
    /// The worker that holds it or ran it.
    pub worker: Option<String>,
    /// How many times it was taken.
    pub attempts: i64,
    /// What the turn gave, once done (or why it failed).
    pub outcome: Option<Value>,
    /// The ids of the first and last event its commit recorded.
    pub events: Option<(i64, i64)>,
}

/// A file a turn wrote (`content: None`: removed), by its path from the project root.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct FileChange {
    /// Relative to the project root, `/`-separated.
    pub path: String,
    /// Its bytes, or `None` when the file was removed.
    pub content: Option<Vec<u8>>,
}

/// A run's file as of the turn that last wrote it.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct RunFile {
    /// The file.
    pub change: FileChange,
    /// The seq of the turn that wrote it (0: the project as the run found it).
    pub seq: i64,
    /// The write's number, in commit order across the run's turns (see `files_since`).
    pub rev: i64,
}

/// A worker of the fleet.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct WorkerRecord {
    /// Its name (unique).
    pub name: String,
    /// The machine it runs on.
    pub host: String,
    /// The models it serves.
    pub models: Vec<String>,
    /// When it (last) registered.
    pub started_at: String,
    /// When it was last heard of (a heartbeat every few seconds while it runs).
    pub last_seen: String,
    /// When it stopped (Ctrl-C), if it did.
    pub stopped_at: Option<String>,
    /// Jobs it holds now.
    pub jobs_held: i64,
    /// Turns it committed.
    pub turns_done: i64,
}
