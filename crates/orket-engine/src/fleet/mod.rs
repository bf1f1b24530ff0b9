//! The worker fleet (feature `postgres`): a run on a PostgreSQL store hands its turns to
//! workers on other machines (`remote`), and `orket worker` runs them (`worker`), the files
//! of the run travelling through the store (`files`).
//!
//! The run plans its ticks as always; each turn that has a seat becomes a job on the pgmq
//! queue of its model, with the turn's seq. A worker serving that model takes it for a lease
//! it keeps with heartbeats, brings its copy of the run's project to the store's state, runs
//! the turn as the run would have (the same `turn::run_turn`, the same gate and verification),
//! and commits in one transaction: the check that it still holds the job, the turn's batch,
//! the files the turn wrote (content-addressed), the job's outcome and its acknowledgement. A
//! worker killed mid-turn loses only that turn: once the lease runs out, another worker takes
//! the job and redoes the turn, with the same seq, from the last committed state.

mod files;
pub(crate) mod remote;
mod worker;

pub(crate) use worker::Claimed;
pub use worker::{run_worker, WorkerOptions, WorkerReport};
