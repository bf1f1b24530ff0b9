//! The PostgreSQL store (feature `postgres`): the same tables and the same semantics as the
//! SQLite store, for several processes and machines sharing one database.
//!
//! Every batch is one transaction that first takes a transaction-scoped advisory lock, so
//! batches are applied one at a time across every process, exactly as SQLite's single writer
//! applies them: the derived statuses, the issue versions of a build and the checks of a lease
//! or an approval read what the batch before committed. Reads of several statements
//! (`tick_state`, `turn_inputs`) run in one `REPEATABLE READ` read-only transaction, so they see
//! one state of the database. The schema is migrated by sqlx's migrator
//! (`migrations/postgres/`, checksummed, itself guarded by an advisory lock).

mod bugfix;
mod copy;
mod fleet;
mod lease;
mod read;
mod review;
mod rows;
mod write;

pub use copy::{copy_sqlite_to_postgres, CopyReport};
pub use fleet::{queue_for, Claim, PgFleet, MAX_ATTEMPTS};

use crate::bugfix::BugFixPhaseRecord;
use crate::change::{Applied, Change};
use crate::error::{StoreError, StoreResult};
use crate::lease::LeaseRecord;
use crate::records::{
    ApprovalRecord, BuildRecord, CardTransaction, Comment, EventRecord, IssueRecord, MemoryRecord,
    RunRecord, SnapshotRecord, SuccessRecord, TickState, TurnInputs, TurnQuery, TurnRecord,
};
use crate::review::{DeliveryRecord, PullRequestRecord, ReviewCycle};
use crate::sandbox::SandboxRecord;
use crate::store::Store;
use crate::url::url_without_password;
use async_trait::async_trait;
use sqlx::pool::PoolConnection;
use sqlx::postgres::{PgConnectOptions, PgPoolOptions};
use sqlx::{Connection, PgConnection, PgPool, Postgres};
use std::str::FromStr;
use std::time::Duration;

/// The migrations, embedded in the binary at build time.
static MIGRATOR: sqlx::migrate::Migrator = sqlx::migrate!("migrations/postgres");

/// How long a call waits for a free connection, or for the database to answer a connect.
const ACQUIRE_TIMEOUT: Duration = Duration::from_secs(30);
/// Connections per process: the engine's reads and one writer at a time (batches are serialized
/// anyway), with room for a server's concurrent requests.
const MAX_CONNECTIONS: u32 = 8;

/// A [`Store`] in a PostgreSQL database, given by a `postgres://` URL.
///
/// Clones share one connection pool; it is closed by [`PgStore::close`] or when the last clone
/// is dropped.
#[derive(Clone)]
pub struct PgStore {
    pool: PgPool,
    /// The URL without its password, for messages.
    shown: String,
}

impl std::fmt::Debug for PgStore {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("PgStore")
            .field("url", &self.shown)
            .finish_non_exhaustive()
    }
}

impl PgStore {
    /// Connects to the database at `url` (`postgres://user@host:port/db`) and migrates it.
    pub async fn open(url: &str) -> StoreResult<PgStore> {
        let shown = url_without_password(url);
        let options = PgConnectOptions::from_str(url)
            .map_err(|err| open_error(&shown, format!("not a PostgreSQL URL: {err}")))?
            .application_name("orket");
        // One connection first: a wrong URL, host or password fails at once with the server's
        // answer (the pool would retry it until its acquire timeout).
        PgConnection::connect_with(&options)
            .await
            .map_err(|err| open_error(&shown, err.to_string()))?
            .close()
            .await?;
        let pool = PgPoolOptions::new()
            .max_connections(MAX_CONNECTIONS)
            .acquire_timeout(ACQUIRE_TIMEOUT)
            .connect_with(options)
            .await
            .map_err(|err| open_error(&shown, err.to_string()))?;
        MIGRATOR.run(&pool).await.map_err(migration_error)?;
        Ok(PgStore { pool, shown })
    }

    /// The database's URL, without its password.
    pub fn url(&self) -> &str {
        &self.shown
    }

    /// The highest applied migration version.
    pub async fn schema_version(&self) -> StoreResult<i64> {
        let version: Option<i64> =
            sqlx::query_scalar("SELECT MAX(version) FROM _sqlx_migrations WHERE success")
                .fetch_one(&self.pool)
                .await?;
        Ok(version.unwrap_or(0))
    }

    /// Closes the pool for every clone: waits for the connections in use to be given back.
    pub async fn close(&self) {
        self.pool.close().await;
    }

    /// A connection of the pool.
    async fn conn(&self) -> StoreResult<PoolConnection<Postgres>> {
        Ok(self.pool.acquire().await?)
    }
}

fn open_error(shown: &str, message: String) -> StoreError {
    StoreError::Open {
        path: shown.into(),
        message,
    }
}

fn migration_error(err: sqlx::migrate::MigrateError) -> StoreError {
    use sqlx::migrate::MigrateError;
    let version = match &err {
        MigrateError::VersionMissing(v)
        | MigrateError::VersionMismatch(v)
        | MigrateError::VersionNotPresent(v)
        | MigrateError::VersionTooOld(v, _)
        | MigrateError::VersionTooNew(v, _)
        | MigrateError::Dirty(v) => *v,
        _ => 0,
    };
    StoreError::Migration {
        version,
        message: format!("migrating the PostgreSQL store: {err}"),
    }
}

// Not `#[from]`, as for rusqlite: the message already holds the cause.
impl From<sqlx::Error> for StoreError {
    fn from(e: sqlx::Error) -> Self {
        StoreError::Database(Box::new(e))
    }
}

#[async_trait]
impl Store for PgStore {
    async fn apply(&self, changes: Vec<Change>) -> StoreResult<Vec<Applied>> {
        if changes.is_empty() {
            return Ok(Vec::new());
        }
        write::apply(&self.pool, changes).await
    }

    async fn get_build(&self, id: &str) -> StoreResult<Option<BuildRecord>> {
        read::build(&mut *self.conn().await?, id).await
    }

    async fn list_builds(&self) -> StoreResult<Vec<BuildRecord>> {
        read::builds(&mut *self.conn().await?).await
    }

    async fn get_issue(&self, build_id: &str, id: &str) -> StoreResult<Option<IssueRecord>> {
        read::issue(&mut *self.conn().await?, build_id, id).await
    }

    async fn list_issues(&self, build_id: &str) -> StoreResult<Vec<IssueRecord>> {
        read::issues(&mut *self.conn().await?, build_id).await
    }

    async fn find_issues(&self, id: &str) -> StoreResult<Vec<IssueRecord>> {
        read::issues_with_id(&mut *self.conn().await?, id).await
    }

    async fn list_comments(&self, build_id: &str, issue_id: &str) -> StoreResult<Vec<Comment>> {
        read::comments(&mut *self.conn().await?, build_id, issue_id).await
    }

    async fn list_card_transactions(
        &self,
        build_id: &str,
        card_id: &str,
    ) -> StoreResult<Vec<CardTransaction>> {
        read::card_transactions(&mut *self.conn().await?, build_id, card_id).await
    }

    async fn get_run(&self, id: &str) -> StoreResult<Option<RunRecord>> {
        read::run(&mut *self.conn().await?, id).await
    }

    async fn list_runs(&self, limit: i64) -> StoreResult<Vec<RunRecord>> {
        read::runs(&mut *self.conn().await?, limit).await
    }

    async fn list_turns(&self, run_id: &str) -> StoreResult<Vec<TurnRecord>> {
        read::turns(&mut *self.conn().await?, run_id).await
    }

    async fn last_turn_seq(&self, run_id: &str) -> StoreResult<Option<i64>> {
        read::last_turn_seq(&mut *self.conn().await?, run_id).await
    }

    async fn ledger_head(&self, run_id: &str) -> StoreResult<Option<String>> {
        read::ledger_head(&mut *self.conn().await?, run_id).await
    }

    async fn list_events(
        &self,
        run_id: Option<&str>,
        after_id: i64,
        limit: i64,
    ) -> StoreResult<Vec<EventRecord>> {
        read::events(&mut *self.conn().await?, run_id, after_id, limit).await
    }

    async fn latest_snapshot(&self, run_id: &str) -> StoreResult<Option<SnapshotRecord>> {
        read::latest_snapshot(&mut *self.conn().await?, run_id).await
    }

    async fn list_success(&self, build_id: Option<&str>) -> StoreResult<Vec<SuccessRecord>> {
        read::success(&mut *self.conn().await?, build_id).await
    }

    async fn search_memory(&self, query: &str, limit: usize) -> StoreResult<Vec<MemoryRecord>> {
        read::search_memory(&mut *self.conn().await?, query, limit).await
    }

    async fn get_approval(&self, id: i64) -> StoreResult<Option<ApprovalRecord>> {
        read::approval(&mut *self.conn().await?, id).await
    }

    async fn list_approvals(&self, run_id: Option<&str>) -> StoreResult<Vec<ApprovalRecord>> {
        read::approvals(&mut *self.conn().await?, run_id).await
    }

    async fn tick_state(&self, run_id: &str, build_id: &str, since: i64) -> StoreResult<TickState> {
        read::tick_state(&self.pool, run_id, build_id, since).await
    }

    async fn turn_inputs(&self, query: &TurnQuery) -> StoreResult<TurnInputs> {
        read::turn_inputs(&self.pool, query).await
    }

    async fn get_sandbox(&self, id: &str) -> StoreResult<Option<SandboxRecord>> {
        read::sandbox(&mut *self.conn().await?, id).await
    }

    async fn get_lease(&self, build_id: &str) -> StoreResult<Option<LeaseRecord>> {
        read::lease(&mut *self.conn().await?, build_id).await
    }

    async fn list_deliveries(&self, limit: i64) -> StoreResult<Vec<DeliveryRecord>> {
        read::deliveries(&mut *self.conn().await?, limit).await
    }

    async fn list_pull_requests(&self) -> StoreResult<Vec<PullRequestRecord>> {
        read::pull_requests(&mut *self.conn().await?).await
    }

    async fn review_cycles(&self, repository: &str, number: i64) -> StoreResult<Vec<ReviewCycle>> {
        read::review_cycles(&mut *self.conn().await?, repository, number).await
    }

    async fn list_sandboxes(&self) -> StoreResult<Vec<SandboxRecord>> {
        read::sandboxes(&mut *self.conn().await?).await
    }

    async fn get_bug_fix_phase(&self, rock: &str) -> StoreResult<Option<BugFixPhaseRecord>> {
        read::bug_fix_phase(&mut *self.conn().await?, rock).await
    }

    async fn list_workers(&self) -> StoreResult<Vec<crate::fleet::WorkerRecord>> {
        fleet::workers(&mut *self.conn().await?).await
    }
}
