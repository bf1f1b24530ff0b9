//! The SQLite store: one file in WAL mode, one writer thread with its connection (every write
//! transaction starts with `BEGIN IMMEDIATE`) and one reader thread per core (2 to 4) with
//! theirs. Every store call is one hand-off to one of these threads: a whole batch, or a whole
//! read.

mod bugfix;
mod lease;
mod migrate;
mod read;
mod review;
mod rows;
mod tx;
mod worker;
mod write;

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
use async_trait::async_trait;
use rusqlite::{Connection, ErrorCode, OpenFlags};
use std::path::{Path, PathBuf};
use std::sync::Arc;
use std::time::{Duration, Instant};
use worker::Workers;

/// How long a connection waits for another connection's lock before failing.
const BUSY_TIMEOUT: Duration = Duration::from_secs(30);
/// At most this many reader connections (and threads).
const MAX_READERS: usize = 4;
/// Prepared statements kept per connection: every fixed statement, and the variants of the
/// statements built from a patch's fields.
const STATEMENT_CACHE: usize = 64;

/// A [`Store`] in one SQLite file; several processes may open the same file.
///
/// Clones share the same threads and connections; they are closed by [`SqliteStore::close`] or
/// when the last clone is dropped.
#[derive(Clone)]
pub struct SqliteStore {
    inner: Arc<Inner>,
}

struct Inner {
    path: PathBuf,
    writer: Workers,
    readers: Workers,
}

impl std::fmt::Debug for SqliteStore {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("SqliteStore")
            .field("path", &self.inner.path)
            .finish_non_exhaustive()
    }
}

impl SqliteStore {
    /// Opens (creating the file and its directories if missing) and migrates the store at `path`.
    pub async fn open(path: &Path) -> StoreResult<SqliteStore> {
        if let Some(parent) = path.parent().filter(|p| !p.as_os_str().is_empty()) {
            std::fs::create_dir_all(parent).map_err(|err| {
                open_error(path, format!("cannot create {}: {err}", parent.display()))
            })?;
        }
        let owned = path.to_path_buf();
        let connections = tokio::task::spawn_blocking(move || open_connections(&owned))
            .await
            .map_err(|err| open_error(path, format!("opening panicked: {err}")))??;
        let (writer, readers) = connections;
        Ok(SqliteStore {
            inner: Arc::new(Inner {
                path: path.to_path_buf(),
                writer: Workers::start("writer", vec![writer])?,
                readers: Workers::start("reader", readers)?,
            }),
        })
    }

    /// The database file.
    pub fn path(&self) -> &Path {
        &self.inner.path
    }

    /// Applies pending migrations (done by `open`); returns how many were applied now.
    pub async fn migrate(&self) -> StoreResult<usize> {
        self.inner.writer.call(migrate::run).await
    }

    /// The highest applied migration version.
    pub async fn schema_version(&self) -> StoreResult<i64> {
        self.read(|conn| migrate::version(conn)).await
    }

    /// Closes the store for every clone: the threads finish the calls already queued, close
    /// their connections and stop; this waits for them. Later calls fail.
    pub async fn close(&self) {
        let mut threads = self.inner.writer.close();
        threads.extend(self.inner.readers.close());
        let joined = tokio::task::spawn_blocking(move || {
            for thread in threads {
                let _ = thread.join();
            }
        });
        let _ = joined.await;
    }

    /// Runs `work` on a reader thread.
    async fn read<T, F>(&self, work: F) -> StoreResult<T>
    where
        T: Send + 'static,
        F: FnOnce(&mut Connection) -> StoreResult<T> + Send + 'static,
    {
        self.inner.readers.call(work).await
    }
}

fn open_error(path: &Path, message: String) -> StoreError {
    StoreError::Open {
        path: path.to_path_buf(),
        message,
    }
}

/// Opens the writer connection, migrates the file, and opens the reader connections.
fn open_connections(path: &Path) -> StoreResult<(Connection, Vec<Connection>)> {
    let mut writer = connect(path, Role::Writer)?;
    migrate::run(&mut writer)?;
    let readers = (0..reader_count())
        .map(|_| connect(path, Role::Reader))
        .collect::<StoreResult<Vec<_>>>()?;
    Ok((writer, readers))
}

/// One reader per core, from two to [`MAX_READERS`]: reads of a file in the page cache are CPU
/// work, so a reader thread beyond the cores only adds hand-offs (on two cores, four readers cost
/// the engine benchmark 8% of its turns per second).
fn reader_count() -> usize {
    std::thread::available_parallelism()
        .map_or(2, usize::from)
        .clamp(2, MAX_READERS)
}

/// What a connection is for.
#[derive(Clone, Copy)]
enum Role {
    /// Creates the file if missing, switches it to WAL, checks foreign keys.
    Writer,
    /// Read-only: a reader cannot write by mistake.
    Reader,
}

/// Opens a connection. A brand-new file that other processes open at the same moment can answer
/// "database is locked" while one of them switches it to WAL, without SQLite's busy handler
/// being asked; that is retried (every 50 ms, up to the busy timeout) like any other wait.
fn connect(path: &Path, role: Role) -> StoreResult<Connection> {
    let started = Instant::now();
    loop {
        match try_connect(path, role) {
            Err(err)
                if matches!(
                    err.sqlite_error_code(),
                    Some(ErrorCode::DatabaseBusy | ErrorCode::DatabaseLocked)
                ) && started.elapsed() < BUSY_TIMEOUT =>
            {
                std::thread::sleep(Duration::from_millis(50));
            }
            Err(err) => return Err(open_error(path, err.to_string())),
            Ok(conn) => return Ok(conn),
        }
    }
}

fn try_connect(path: &Path, role: Role) -> rusqlite::Result<Connection> {
    let flags = match role {
        Role::Writer => OpenFlags::SQLITE_OPEN_READ_WRITE | OpenFlags::SQLITE_OPEN_CREATE,
        Role::Reader => OpenFlags::SQLITE_OPEN_READ_ONLY,
    };
    let conn = Connection::open_with_flags(path, flags | OpenFlags::SQLITE_OPEN_NO_MUTEX)?;
    conn.busy_timeout(BUSY_TIMEOUT)?;
    conn.set_prepared_statement_cache_capacity(STATEMENT_CACHE);
    if let Role::Writer = role {
        // `journal_mode` answers with the mode now in force (a row), hence not `pragma_update`.
        let _mode: String = conn.query_row("PRAGMA journal_mode = WAL", [], |row| row.get(0))?;
        conn.pragma_update(None, "synchronous", "NORMAL")?;
        conn.pragma_update(None, "foreign_keys", "ON")?;
    }
    Ok(conn)
}

#[async_trait]
impl Store for SqliteStore {
    async fn apply(&self, changes: Vec<Change>) -> StoreResult<Vec<Applied>> {
        if changes.is_empty() {
            return Ok(Vec::new());
        }
        self.inner
            .writer
            .call(move |conn| write::apply(conn, changes))
            .await
    }

    async fn get_build(&self, id: &str) -> StoreResult<Option<BuildRecord>> {
        let id = id.to_string();
        self.read(move |conn| read::build(conn, &id)).await
    }

    async fn list_builds(&self) -> StoreResult<Vec<BuildRecord>> {
        self.read(|conn| read::builds(conn)).await
    }

    async fn get_issue(&self, build_id: &str, id: &str) -> StoreResult<Option<IssueRecord>> {
        let (build_id, id) = (build_id.to_string(), id.to_string());
        self.read(move |conn| read::issue(conn, &build_id, &id))
            .await
    }

    async fn list_issues(&self, build_id: &str) -> StoreResult<Vec<IssueRecord>> {
        let build_id = build_id.to_string();
        self.read(move |conn| read::issues(conn, &build_id)).await
    }

    async fn find_issues(&self, id: &str) -> StoreResult<Vec<IssueRecord>> {
        let id = id.to_string();
        self.read(move |conn| read::issues_with_id(conn, &id)).await
    }

    async fn list_comments(&self, build_id: &str, issue_id: &str) -> StoreResult<Vec<Comment>> {
        let (build_id, issue_id) = (build_id.to_string(), issue_id.to_string());
        self.read(move |conn| read::comments(conn, &build_id, &issue_id))
            .await
    }

    async fn list_card_transactions(
        &self,
        build_id: &str,
        card_id: &str,
    ) -> StoreResult<Vec<CardTransaction>> {
        let (build_id, card_id) = (build_id.to_string(), card_id.to_string());
        self.read(move |conn| read::card_transactions(conn, &build_id, &card_id))
            .await
    }

    async fn get_run(&self, id: &str) -> StoreResult<Option<RunRecord>> {
        let id = id.to_string();
        self.read(move |conn| read::run(conn, &id)).await
    }

    async fn list_runs(&self, limit: i64) -> StoreResult<Vec<RunRecord>> {
        self.read(move |conn| read::runs(conn, limit)).await
    }

    async fn list_turns(&self, run_id: &str) -> StoreResult<Vec<TurnRecord>> {
        let run_id = run_id.to_string();
        self.read(move |conn| read::turns(conn, &run_id)).await
    }

    async fn ledger_head(&self, run_id: &str) -> StoreResult<Option<String>> {
        let run_id = run_id.to_string();
        self.read(move |conn| read::ledger_head(conn, &run_id))
            .await
    }

    async fn last_turn_seq(&self, run_id: &str) -> StoreResult<Option<i64>> {
        let run_id = run_id.to_string();
        self.read(move |conn| read::last_turn_seq(conn, &run_id))
            .await
    }

    async fn list_events(
        &self,
        run_id: Option<&str>,
        after_id: i64,
        limit: i64,
    ) -> StoreResult<Vec<EventRecord>> {
        let run_id = run_id.map(str::to_string);
        self.read(move |conn| read::events(conn, run_id.as_deref(), after_id, limit))
            .await
    }

    async fn latest_snapshot(&self, run_id: &str) -> StoreResult<Option<SnapshotRecord>> {
        let run_id = run_id.to_string();
        self.read(move |conn| read::latest_snapshot(conn, &run_id))
            .await
    }

    async fn list_success(&self, build_id: Option<&str>) -> StoreResult<Vec<SuccessRecord>> {
        let build_id = build_id.map(str::to_string);
        self.read(move |conn| read::success(conn, build_id.as_deref()))
            .await
    }

    async fn search_memory(&self, query: &str, limit: usize) -> StoreResult<Vec<MemoryRecord>> {
        let query = query.to_string();
        self.read(move |conn| read::search_memory(conn, &query, limit))
            .await
    }

    async fn get_approval(&self, id: i64) -> StoreResult<Option<ApprovalRecord>> {
        self.read(move |conn| read::approval(conn, id)).await
    }

    async fn list_approvals(&self, run_id: Option<&str>) -> StoreResult<Vec<ApprovalRecord>> {
        let run_id = run_id.map(str::to_string);
        self.read(move |conn| read::approvals(conn, run_id.as_deref()))
            .await
    }

    async fn tick_state(&self, run_id: &str, build_id: &str, since: i64) -> StoreResult<TickState> {
        let (run_id, build_id) = (run_id.to_string(), build_id.to_string());
        self.read(move |conn| read::tick_state(conn, &run_id, &build_id, since))
            .await
    }

    async fn turn_inputs(&self, query: &TurnQuery) -> StoreResult<TurnInputs> {
        let query = query.clone();
        self.read(move |conn| read::turn_inputs(conn, &query)).await
    }

    async fn get_sandbox(&self, id: &str) -> StoreResult<Option<SandboxRecord>> {
        let id = id.to_string();
        self.read(move |conn| read::sandbox(conn, &id)).await
    }

    async fn get_bug_fix_phase(&self, rock: &str) -> StoreResult<Option<BugFixPhaseRecord>> {
        let rock = rock.to_string();
        self.read(move |conn| read::bug_fix_phase(conn, &rock))
            .await
    }

    async fn get_lease(&self, build_id: &str) -> StoreResult<Option<LeaseRecord>> {
        let build_id = build_id.to_string();
        self.read(move |conn| lease::get(conn, &build_id)).await
    }

    async fn list_deliveries(&self, limit: i64) -> StoreResult<Vec<DeliveryRecord>> {
        self.read(move |conn| review::deliveries(conn, limit)).await
    }

    async fn list_pull_requests(&self) -> StoreResult<Vec<PullRequestRecord>> {
        self.read(|conn| review::pull_requests(conn)).await
    }

    async fn review_cycles(&self, repository: &str, number: i64) -> StoreResult<Vec<ReviewCycle>> {
        let repository = repository.to_string();
        self.read(move |conn| review::cycles(conn, &repository, number))
            .await
    }

    async fn list_sandboxes(&self) -> StoreResult<Vec<SandboxRecord>> {
        self.read(|conn| read::sandboxes(conn)).await
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::records::IssueRecord;

    /// Compiles only if the inherent futures can be spawned on a multi-threaded runtime.
    #[allow(dead_code)]
    fn futures_are_send(store: &SqliteStore, path: &Path) {
        fn is_send<T: Send>(_: T) {}
        is_send(SqliteStore::open(path));
        is_send(store.migrate());
        is_send(store.schema_version());
        is_send(store.close());
    }

    async fn temp_store() -> (tempfile::TempDir, SqliteStore) {
        let dir = tempfile::tempdir().unwrap();
        let store = SqliteStore::open(&dir.path().join("orket.db"))
            .await
            .unwrap();
        (dir, store)
    }

    fn insert_build_row(conn: &Connection, id: &str) {
        conn.execute(
            "INSERT INTO builds (id, kind, card, department, status, created_at, updated_at) \
             VALUES (?, 'rock', 'c', 'core', 'ready', 't', 't')",
            [id],
        )
        .unwrap();
    }

    #[tokio::test(flavor = "multi_thread")]
    async fn a_job_that_panics_rolls_back_and_the_writer_goes_on() {
        let (_dir, store) = temp_store().await;
        // In a rusqlite transaction and in a `Tx` (each rolled back as it is dropped while
        // unwinding), and in one begun by hand (rolled back by the thread's loop).
        let in_transaction = store
            .inner
            .writer
            .call(|conn| -> StoreResult<()> {
                let tx = conn.transaction()?;
                insert_build_row(&tx, "build-a");
                panic!("a bug in a batch");
            })
            .await;
        let in_our_transaction = store
            .inner
            .writer
            .call(|conn| -> StoreResult<()> {
                let tx = tx::Tx::begin(conn, tx::Begin::Write)?;
                insert_build_row(&tx, "build-c");
                panic!("a bug in a batch");
            })
            .await;
        let by_hand = store
            .inner
            .writer
            .call(|conn| -> StoreResult<()> {
                conn.execute_batch("BEGIN IMMEDIATE")?;
                insert_build_row(conn, "build-b");
                panic!("a bug in a batch");
            })
            .await;
        for result in [in_transaction, in_our_transaction, by_hand] {
            let err = result.unwrap_err();
            assert!(
                matches!(&err, StoreError::Unexpected(m) if m.contains("panicked on the writer thread")),
                "{err}"
            );
        }
        assert!(store.list_builds().await.unwrap().is_empty());

        let issue = IssueRecord::new("build-d", "ISSUE-1", "works", "coder");
        store.insert_issue(issue.clone()).await.unwrap();
        assert_eq!(
            store.get_issue("build-d", "ISSUE-1").await.unwrap(),
            Some(issue)
        );
    }

    #[tokio::test(flavor = "multi_thread")]
    async fn a_call_whose_caller_stopped_waiting_is_skipped() {
        let (_dir, store) = temp_store().await;
        let (hold, held) = std::sync::mpsc::channel::<()>();
        // Keep the writer busy so that the next call waits in the queue.
        let busy = tokio::spawn({
            let store = store.clone();
            async move {
                store
                    .inner
                    .writer
                    .call(move |_| {
                        held.recv().ok();
                        Ok(())
                    })
                    .await
            }
        });
        tokio::time::sleep(Duration::from_millis(20)).await;
        let abandoned = store.inner.writer.call(|conn| {
            insert_build_row(conn, "build-abandoned");
            Ok(())
        });
        // Polled once (queued), then dropped before the writer takes it up.
        let _ = tokio::time::timeout(Duration::from_millis(10), abandoned).await;
        hold.send(()).unwrap();
        busy.await.unwrap().unwrap();
        assert!(store.get_build("build-abandoned").await.unwrap().is_none());
    }

    #[tokio::test(flavor = "multi_thread")]
    async fn closing_finishes_queued_calls_then_refuses_new_ones() {
        let (dir, store) = temp_store().await;
        let clone = store.clone();
        let queued: Vec<_> = (0..20)
            .map(|n| {
                let store = store.clone();
                tokio::spawn(async move {
                    let issue = IssueRecord::new("build-x", format!("ISSUE-{n}"), "n", "coder");
                    store.insert_issue(issue).await
                })
            })
            .collect();
        tokio::task::yield_now().await;
        store.close().await;
        store.close().await; // Closing again does nothing.
                             // A call queued before the close completed; one that came after is refused.
        let mut done = 0;
        for call in queued {
            match call.await.unwrap() {
                Ok(()) => done += 1,
                Err(StoreError::Database(m)) => assert_eq!(m.to_string(), "the store is closed"),
                Err(other) => panic!("{other}"),
            }
        }
        let err = clone.list_builds().await.unwrap_err();
        assert_eq!(err.to_string(), "database error: the store is closed");
        drop((store, clone));

        // Every connection was closed: the file opens again, holding what was written.
        let reopened = SqliteStore::open(&dir.path().join("orket.db"))
            .await
            .unwrap();
        assert_eq!(reopened.list_issues("build-x").await.unwrap().len(), done);
    }
}
