//! Orket's persistence: the [`Store`] trait and its SQLite implementation, [`SqliteStore`].
//!
//! The store records what the engine decided. Writes are [`Change`]s applied in atomic batches
//! ([`Store::apply`]) so that a whole model turn commits as one transaction; every issue status
//! change appends an audit row, and an epic build's status is derived from its issues.
//! Timestamps are RFC 3339 UTC strings with milliseconds (`2026-11-22T04:16:22.123Z`).

#![forbid(unsafe_code)]
#![warn(missing_docs)]

mod board;
pub mod bugfix;
pub mod bundle;
mod change;
mod error;
pub mod events;
pub mod fleet;
mod intercept;
mod lease;
pub mod ledger;
#[cfg(feature = "postgres")]
mod postgres;
mod records;
mod review;
mod sandbox;
mod sqlite;
mod store;
mod url;
mod words;

pub use board::overlay_builds;
pub use bugfix::{BugFixPhaseRecord, PhaseBug, PhaseStatus};
pub use change::{Applied, Change};
pub use error::{StoreError, StoreResult};
pub use intercept::{BatchHook, Intercept};
pub use lease::{LeaseHolder, LeaseRecord, LeaseRequest};
pub use orket_core::time::now_timestamp;
#[cfg(feature = "postgres")]
pub use postgres::{
    copy_sqlite_to_postgres, queue_for, Claim, CopyReport, PgFleet, PgStore, MAX_ATTEMPTS,
};
pub use records::{
    ApprovalRecord, BuildRecord, CardTransaction, Comment, EventRecord, IssueRecord, IssueUpdate,
    MemoryRecord, NewApproval, NewEvent, NewTurn, PastTurn, RunRecord, RunUpdate, SnapshotRecord,
    SuccessRecord, TickState, TurnInputs, TurnQuery, TurnRecord,
};
pub use review::{DeliveryRecord, NewDelivery, PullRequestChange, PullRequestRecord, ReviewCycle};
pub use sandbox::{SandboxPorts, SandboxRecord, SandboxStatus, PORT_BASES};
pub use sqlite::SqliteStore;
pub use store::Store;
pub use url::{url_with_database, url_without_password};
