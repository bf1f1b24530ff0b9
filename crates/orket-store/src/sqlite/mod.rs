//! The SQLite store: one file in WAL mode, a single-connection writer pool (every write
//! transaction starts with `BEGIN IMMEDIATE`) and a small reader pool.

mod migrate;
mod rows;
mod write;

use crate::change::{Applied, Change};
use crate::error::{StoreError, StoreResult};
use crate::records::{
    ApprovalRecord, BuildRecord, CardTransaction, Comment, EventRecord, IssueRecord, MemoryRecord,
    RunRecord, SnapshotRecord, SuccessRecord, TickState, TurnInputs, TurnQuery, TurnRecord,
};
use crate::sandbox::SandboxRecord;
use crate::store::Store;
use crate::words::memory_words;
use async_trait::async_trait;
use sqlx::sqlite::{
    SqliteArguments, SqliteConnectOptions, SqliteJournalMode, SqlitePoolOptions, SqliteRow,
    SqliteSynchronous,
};
use sqlx::{QueryBuilder, Sqlite, SqlitePool};
use std::path::{Path, PathBuf};
use std::time::Duration;

/// How long a connection waits for another writer's lock before failing.
const BUSY_TIMEOUT: Duration = Duration::from_secs(30);
/// How long a caller waits for a pooled connection (writes queue on the single writer).
const ACQUIRE_TIMEOUT: Duration = Duration::from_secs(120);
/// Reader connections.
const READERS: u32 = 4;

/// A query with its bound arguments.
type SqliteQuery<'q> = sqlx::query::Query<'q, Sqlite, SqliteArguments<'q>>;

/// A [`Store`] in one SQLite file; several processes may open the same file.
#[derive(Debug, Clone)]
pub struct SqliteStore {
    path: PathBuf,
    writer: SqlitePool,
    reader: SqlitePool,
}

impl SqliteStore {
    /// Opens (creating the file and its directories if missing) and migrates the store at `path`.
    pub async fn open(path: &Path) -> StoreResult<SqliteStore> {
        if let Some(parent) = path.parent().filter(|p| !p.as_os_str().is_empty()) {
            std::fs::create_dir_all(parent).map_err(|err| {
                open_error(path, format!("cannot create {}: {err}", parent.display()))
            })?;
        }
        let options = SqliteConnectOptions::new()
            .filename(path)
            .create_if_missing(true)
            .journal_mode(SqliteJournalMode::Wal)
            .synchronous(SqliteSynchronous::Normal)
            .foreign_keys(true)
            .busy_timeout(BUSY_TIMEOUT);
        let writer = connect(path, options.clone(), 1).await?;
        migrate::run(&writer).await?;
        let reader = connect(path, options, READERS).await?;
        Ok(SqliteStore {
            path: path.to_path_buf(),
            writer,
            reader,
        })
    }

    /// The database file.
    pub fn path(&self) -> &Path {
        &self.path
    }

    /// Applies pending migrations (done by `open`); returns how many were applied now.
    pub async fn migrate(&self) -> StoreResult<usize> {
        migrate::run(&self.writer).await
    }

    /// The highest applied migration version.
    pub async fn schema_version(&self) -> StoreResult<i64> {
        migrate::version(&self.reader).await
    }

    /// Closes both pools, waiting for connections to be returned.
    pub async fn close(&self) {
        self.writer.close().await;
        self.reader.close().await;
    }

    async fn fetch_all<'q, T>(
        &self,
        query: SqliteQuery<'q>,
        map: fn(&SqliteRow) -> StoreResult<T>,
    ) -> StoreResult<Vec<T>> {
        rows::all(&query.fetch_all(&self.reader).await?, map)
    }

    async fn fetch_optional<'q, T>(
        &self,
        query: SqliteQuery<'q>,
        map: fn(&SqliteRow) -> StoreResult<T>,
    ) -> StoreResult<Option<T>> {
        query
            .fetch_optional(&self.reader)
            .await?
            .as_ref()
            .map(map)
            .transpose()
    }
}

fn open_error(path: &Path, message: String) -> StoreError {
    StoreError::Open {
        path: path.to_path_buf(),
        message,
    }
}

/// A pool of up to `max` connections to the file.
/// Opens a pool. A brand-new file that other processes open at the same moment can answer
/// "database is locked" while one of them switches it to WAL, without SQLite's busy handler
/// being asked; that is retried (every 50 ms, up to the busy timeout) like any other wait.
async fn connect(path: &Path, options: SqliteConnectOptions, max: u32) -> StoreResult<SqlitePool> {
    let started = std::time::Instant::now();
    loop {
        let attempt = SqlitePoolOptions::new()
            .max_connections(max)
            .acquire_timeout(ACQUIRE_TIMEOUT)
            .connect_with(options.clone())
            .await;
        match attempt {
            Ok(pool) => return Ok(pool),
            Err(sqlx::Error::Database(db))
                if db.code().as_deref() == Some("5") && started.elapsed() < BUSY_TIMEOUT =>
            {
                tokio::time::sleep(Duration::from_millis(50)).await;
            }
            Err(err) => return Err(open_error(path, err.to_string())),
        }
    }
}

#[async_trait]
impl Store for SqliteStore {
    async fn apply(&self, changes: Vec<Change>) -> StoreResult<Vec<Applied>> {
        if changes.is_empty() {
            return Ok(Vec::new());
        }
        let mut tx = self.writer.begin_with("BEGIN IMMEDIATE").await?;
        let mut applied = Vec::with_capacity(changes.len());
        for change in changes {
            applied.push(write::apply_change(&mut tx, change).await?);
        }
        tx.commit().await?;
        Ok(applied)
    }

    async fn get_build(&self, id: &str) -> StoreResult<Option<BuildRecord>> {
        let query = sqlx::query("SELECT * FROM builds WHERE id = ?").bind(id);
        self.fetch_optional(query, rows::build).await
    }

    async fn list_builds(&self) -> StoreResult<Vec<BuildRecord>> {
        let query = sqlx::query("SELECT * FROM builds ORDER BY id");
        self.fetch_all(query, rows::build).await
    }

    async fn get_issue(&self, build_id: &str, id: &str) -> StoreResult<Option<IssueRecord>> {
        let mut conn = self.reader.acquire().await?;
        write::get_issue(&mut conn, build_id, id).await
    }

    async fn list_issues(&self, build_id: &str) -> StoreResult<Vec<IssueRecord>> {
        let query =
            sqlx::query("SELECT * FROM issues WHERE build_id = ? ORDER BY position").bind(build_id);
        self.fetch_all(query, rows::issue).await
    }

    async fn find_issues(&self, id: &str) -> StoreResult<Vec<IssueRecord>> {
        let query =
            sqlx::query("SELECT * FROM issues WHERE id = ? ORDER BY build_id, position").bind(id);
        self.fetch_all(query, rows::issue).await
    }

    async fn list_comments(&self, build_id: &str, issue_id: &str) -> StoreResult<Vec<Comment>> {
        let query =
            sqlx::query("SELECT * FROM comments WHERE build_id = ? AND issue_id = ? ORDER BY id")
                .bind(build_id)
                .bind(issue_id);
        self.fetch_all(query, rows::comment).await
    }

    async fn list_card_transactions(
        &self,
        build_id: &str,
        card_id: &str,
    ) -> StoreResult<Vec<CardTransaction>> {
        let query = sqlx::query(
            "SELECT * FROM card_transactions WHERE build_id = ? AND card_id = ? ORDER BY id",
        )
        .bind(build_id)
        .bind(card_id);
        self.fetch_all(query, rows::card_transaction).await
    }

    async fn get_run(&self, id: &str) -> StoreResult<Option<RunRecord>> {
        let query = sqlx::query("SELECT * FROM sessions WHERE id = ?").bind(id);
        self.fetch_optional(query, rows::run).await
    }

    async fn list_runs(&self, limit: i64) -> StoreResult<Vec<RunRecord>> {
        let query =
            sqlx::query("SELECT * FROM sessions ORDER BY started_at DESC, rowid DESC LIMIT ?")
                .bind(limit);
        self.fetch_all(query, rows::run).await
    }

    async fn list_turns(&self, run_id: &str) -> StoreResult<Vec<TurnRecord>> {
        let query = sqlx::query("SELECT * FROM turns WHERE run_id = ? ORDER BY seq").bind(run_id);
        self.fetch_all(query, rows::turn).await
    }

    async fn recent_issue_turns(
        &self,
        run_id: &str,
        issue_id: &str,
        limit: i64,
    ) -> StoreResult<Vec<TurnRecord>> {
        let query = sqlx::query(
            "SELECT * FROM (SELECT * FROM turns WHERE run_id = ? AND issue_id = ? \
             ORDER BY seq DESC LIMIT ?) ORDER BY seq",
        )
        .bind(run_id)
        .bind(issue_id)
        .bind(limit);
        self.fetch_all(query, rows::turn).await
    }

    async fn last_turn_seq(&self, run_id: &str) -> StoreResult<Option<i64>> {
        let seq = sqlx::query_scalar("SELECT MAX(seq) FROM turns WHERE run_id = ?")
            .bind(run_id)
            .fetch_one(&self.reader)
            .await?;
        Ok(seq)
    }

    async fn list_events(
        &self,
        run_id: Option<&str>,
        after_id: i64,
        limit: i64,
    ) -> StoreResult<Vec<EventRecord>> {
        let query = match run_id {
            Some(run_id) => {
                sqlx::query("SELECT * FROM events WHERE run_id = ? AND id > ? ORDER BY id LIMIT ?")
                    .bind(run_id)
            }
            None => sqlx::query("SELECT * FROM events WHERE id > ? ORDER BY id LIMIT ?"),
        };
        self.fetch_all(query.bind(after_id).bind(limit), rows::event)
            .await
    }

    async fn latest_snapshot(&self, run_id: &str) -> StoreResult<Option<SnapshotRecord>> {
        let query = sqlx::query(
            "SELECT * FROM session_snapshots WHERE run_id = ? ORDER BY id DESC LIMIT 1",
        )
        .bind(run_id);
        self.fetch_optional(query, rows::snapshot).await
    }

    async fn list_success(&self, build_id: Option<&str>) -> StoreResult<Vec<SuccessRecord>> {
        let query = match build_id {
            Some(build_id) => {
                sqlx::query("SELECT * FROM success_ledger WHERE build_id = ? ORDER BY id")
                    .bind(build_id)
            }
            None => sqlx::query("SELECT * FROM success_ledger ORDER BY id"),
        };
        self.fetch_all(query, rows::success).await
    }

    async fn get_sandbox(&self, id: &str) -> StoreResult<Option<SandboxRecord>> {
        let query = sqlx::query("SELECT * FROM sandboxes WHERE id = ?").bind(id);
        self.fetch_optional(query, rows::sandbox).await
    }

    async fn list_sandboxes(&self) -> StoreResult<Vec<SandboxRecord>> {
        let query = sqlx::query("SELECT * FROM sandboxes ORDER BY created_at DESC, rowid DESC");
        self.fetch_all(query, rows::sandbox).await
    }

    async fn search_memory(&self, query: &str, limit: usize) -> StoreResult<Vec<MemoryRecord>> {
        let words = memory_words(query);
        if words.is_empty() || limit == 0 {
            return Ok(Vec::new());
        }
        let mut qb = QueryBuilder::<Sqlite>::new(
            "SELECT m.*, COUNT(*) AS score FROM memory m \
             JOIN memory_words w ON w.memory_id = m.id WHERE w.word IN (",
        );
        let mut list = qb.separated(", ");
        for word in words {
            list.push_bind(word);
        }
        qb.push(") GROUP BY m.id ORDER BY score DESC, m.id DESC LIMIT ")
            .push_bind(i64::try_from(limit).unwrap_or(i64::MAX));
        rows::all(&qb.build().fetch_all(&self.reader).await?, rows::memory)
    }

    async fn tick_state(&self, run_id: &str, build_id: &str, since: i64) -> StoreResult<TickState> {
        let mut conn = self.reader.acquire().await?;
        let version: i64 =
            sqlx::query_scalar("SELECT COALESCE(MAX(version), 0) FROM issues WHERE build_id = ?")
                .bind(build_id)
                .fetch_one(&mut *conn)
                .await?;
        let changed = sqlx::query(
            "SELECT * FROM issues WHERE build_id = ? AND version > ? ORDER BY position",
        )
        .bind(build_id)
        .bind(since)
        .fetch_all(&mut *conn)
        .await?;
        let halt_requested_at: Option<String> =
            sqlx::query_scalar("SELECT halt_requested_at FROM sessions WHERE id = ?")
                .bind(run_id)
                .fetch_optional(&mut *conn)
                .await?
                .flatten();
        Ok(TickState {
            version,
            changed: rows::all(&changed, rows::issue)?,
            halt_requested_at,
        })
    }

    async fn turn_inputs(&self, q: &TurnQuery) -> StoreResult<TurnInputs> {
        let issue = self.get_issue(&q.build_id, &q.issue_id).await?;
        let mut comments = self.list_comments(&q.build_id, &q.issue_id).await?;
        let comments = comments.split_off(comments.len().saturating_sub(q.comments));
        let memory = self.search_memory(&q.memory_query, q.memory).await?;
        let history = self
            .recent_issue_turns(
                &q.run_id,
                &q.issue_id,
                i64::try_from(q.history).unwrap_or(i64::MAX),
            )
            .await?;
        Ok(TurnInputs {
            issue,
            comments,
            memory,
            history,
        })
    }

    async fn get_approval(&self, id: i64) -> StoreResult<Option<ApprovalRecord>> {
        let query = sqlx::query("SELECT * FROM pending_approvals WHERE id = ?").bind(id);
        self.fetch_optional(query, rows::approval).await
    }

    async fn list_approvals(&self, run_id: Option<&str>) -> StoreResult<Vec<ApprovalRecord>> {
        let query = match run_id {
            Some(run_id) => {
                sqlx::query("SELECT * FROM pending_approvals WHERE run_id = ? ORDER BY id")
                    .bind(run_id)
            }
            None => sqlx::query("SELECT * FROM pending_approvals ORDER BY id"),
        };
        self.fetch_all(query, rows::approval).await
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    /// Compiles only if the inherent futures can be spawned on a multi-threaded runtime.
    #[allow(dead_code)]
    fn futures_are_send(store: &SqliteStore, path: &Path) {
        fn is_send<T: Send>(_: T) {}
        is_send(SqliteStore::open(path));
        is_send(store.migrate());
        is_send(store.schema_version());
        is_send(store.close());
    }
}
