//! The reads on PostgreSQL, each on one connection of the pool. A read of several statements
//! (`tick_state`, `turn_inputs`) runs in one `REPEATABLE READ` read-only transaction, so it
//! sees one state of the database. Text is ordered `COLLATE "C"` (by bytes), as SQLite orders
//! it, whatever the database's collation.

use super::rows;
use crate::bugfix::BugFixPhaseRecord;
use crate::error::StoreResult;
use crate::lease::LeaseRecord;
use crate::records::{
    ApprovalRecord, BuildRecord, CardTransaction, Comment, EventRecord, IssueRecord, MemoryRecord,
    PastTurn, RunRecord, SnapshotRecord, SuccessRecord, TickState, TurnInputs, TurnQuery,
    TurnRecord,
};
use crate::review::{DeliveryRecord, PullRequestRecord, ReviewCycle};
use crate::sandbox::SandboxRecord;
use crate::words::memory_words;
use sqlx::postgres::{PgArguments, PgRow};
use sqlx::query::Query;
use sqlx::{PgConnection, PgPool, Postgres, Transaction};

/// A statement with its values bound.
type Statement<'q> = Query<'q, Postgres, PgArguments>;

/// Every row `statement` returns, mapped with `map`; stops at the first failure.
async fn all<T>(
    conn: &mut PgConnection,
    statement: Statement<'_>,
    map: fn(&PgRow) -> StoreResult<T>,
) -> StoreResult<Vec<T>> {
    statement.fetch_all(conn).await?.iter().map(map).collect()
}

/// The first row `statement` returns, if any, mapped with `map`.
async fn optional<T>(
    conn: &mut PgConnection,
    statement: Statement<'_>,
    map: fn(&PgRow) -> StoreResult<T>,
) -> StoreResult<Option<T>> {
    statement
        .fetch_optional(conn)
        .await?
        .as_ref()
        .map(map)
        .transpose()
}

/// A transaction on `pool` that reads one state of the database and writes nothing.
async fn begin_read(pool: &PgPool) -> StoreResult<Transaction<'static, Postgres>> {
    let mut tx = pool.begin().await?;
    sqlx::query("SET TRANSACTION ISOLATION LEVEL REPEATABLE READ, READ ONLY")
        .execute(&mut *tx)
        .await?;
    Ok(tx)
}

/// A build (`Store::get_build`).
pub(super) async fn build(conn: &mut PgConnection, id: &str) -> StoreResult<Option<BuildRecord>> {
    optional(
        conn,
        sqlx::query("SELECT * FROM builds WHERE id = $1").bind(id),
        rows::build,
    )
    .await
}

/// Every build, by id.
pub(super) async fn builds(conn: &mut PgConnection) -> StoreResult<Vec<BuildRecord>> {
    all(
        conn,
        sqlx::query(r#"SELECT * FROM builds ORDER BY id COLLATE "C""#),
        rows::build,
    )
    .await
}

/// An issue of a build.
pub(super) async fn issue(
    conn: &mut PgConnection,
    build_id: &str,
    id: &str,
) -> StoreResult<Option<IssueRecord>> {
    optional(
        conn,
        sqlx::query("SELECT * FROM issues WHERE build_id = $1 AND id = $2")
            .bind(build_id)
            .bind(id),
        rows::issue,
    )
    .await
}

/// A build's issues, in insertion order.
pub(super) async fn issues(
    conn: &mut PgConnection,
    build_id: &str,
) -> StoreResult<Vec<IssueRecord>> {
    all(
        conn,
        sqlx::query("SELECT * FROM issues WHERE build_id = $1 ORDER BY position").bind(build_id),
        rows::issue,
    )
    .await
}

/// Every issue with this id, whatever its build.
pub(super) async fn issues_with_id(
    conn: &mut PgConnection,
    id: &str,
) -> StoreResult<Vec<IssueRecord>> {
    all(
        conn,
        sqlx::query(
            r#"SELECT * FROM issues WHERE id = $1 ORDER BY build_id COLLATE "C", position"#,
        )
        .bind(id),
        rows::issue,
    )
    .await
}

/// An issue's comments, in insertion order.
pub(super) async fn comments(
    conn: &mut PgConnection,
    build_id: &str,
    issue_id: &str,
) -> StoreResult<Vec<Comment>> {
    all(
        conn,
        sqlx::query("SELECT * FROM comments WHERE build_id = $1 AND issue_id = $2 ORDER BY id")
            .bind(build_id)
            .bind(issue_id),
        rows::comment,
    )
    .await
}

/// The last `limit` comments of an issue, oldest first.
async fn latest_comments(
    conn: &mut PgConnection,
    build_id: &str,
    issue_id: &str,
    limit: i64,
) -> StoreResult<Vec<Comment>> {
    all(
        conn,
        sqlx::query(
            "SELECT * FROM (SELECT * FROM comments WHERE build_id = $1 AND issue_id = $2 \
             ORDER BY id DESC LIMIT $3) AS latest ORDER BY id",
        )
        .bind(build_id)
        .bind(issue_id)
        .bind(limit),
        rows::comment,
    )
    .await
}

/// A card's audit rows, in order.
pub(super) async fn card_transactions(
    conn: &mut PgConnection,
    build_id: &str,
    card_id: &str,
) -> StoreResult<Vec<CardTransaction>> {
    all(
        conn,
        sqlx::query(
            "SELECT * FROM card_transactions WHERE build_id = $1 AND card_id = $2 ORDER BY id",
        )
        .bind(build_id)
        .bind(card_id),
        rows::card_transaction,
    )
    .await
}

/// A run.
pub(super) async fn run(conn: &mut PgConnection, id: &str) -> StoreResult<Option<RunRecord>> {
    optional(
        conn,
        sqlx::query("SELECT * FROM sessions WHERE id = $1").bind(id),
        rows::run,
    )
    .await
}

/// The `limit` most recent runs, newest first.
pub(super) async fn runs(conn: &mut PgConnection, limit: i64) -> StoreResult<Vec<RunRecord>> {
    all(
        conn,
        sqlx::query(
            r#"SELECT * FROM sessions ORDER BY started_at COLLATE "C" DESC, rowid DESC LIMIT $1"#,
        )
        .bind(limit),
        rows::run,
    )
    .await
}

/// A run's turns, by seq.
pub(super) async fn turns(conn: &mut PgConnection, run_id: &str) -> StoreResult<Vec<TurnRecord>> {
    all(
        conn,
        sqlx::query("SELECT * FROM turns WHERE run_id = $1 ORDER BY seq").bind(run_id),
        rows::turn,
    )
    .await
}

/// The last `limit` turns of one issue in a run as its next prompt sees them, oldest first.
async fn past_turns(
    conn: &mut PgConnection,
    run_id: &str,
    issue_id: &str,
    limit: i64,
) -> StoreResult<Vec<PastTurn>> {
    all(
        conn,
        sqlx::query(
            "SELECT * FROM (SELECT seq, review, content, tool_calls, tool_results FROM turns \
             WHERE run_id = $1 AND issue_id = $2 ORDER BY seq DESC LIMIT $3) AS latest \
             ORDER BY seq",
        )
        .bind(run_id)
        .bind(issue_id)
        .bind(limit),
        rows::past_turn,
    )
    .await
}

/// The highest turn seq of a run.
pub(super) async fn last_turn_seq(
    conn: &mut PgConnection,
    run_id: &str,
) -> StoreResult<Option<i64>> {
    Ok(
        sqlx::query_scalar("SELECT MAX(seq) FROM turns WHERE run_id = $1")
            .bind(run_id)
            .fetch_one(conn)
            .await?,
    )
}

/// Up to `limit` events with an id above `after_id`, by id; of one run or of all.
pub(super) async fn events(
    conn: &mut PgConnection,
    run_id: Option<&str>,
    after_id: i64,
    limit: i64,
) -> StoreResult<Vec<EventRecord>> {
    let statement = match run_id {
        Some(run_id) => {
            sqlx::query("SELECT * FROM events WHERE run_id = $1 AND id > $2 ORDER BY id LIMIT $3")
                .bind(run_id)
                .bind(after_id)
                .bind(limit)
        }
        None => sqlx::query("SELECT * FROM events WHERE id > $1 ORDER BY id LIMIT $2")
            .bind(after_id)
            .bind(limit),
    };
    all(conn, statement, rows::event).await
}

/// A run's most recent snapshot.
pub(super) async fn latest_snapshot(
    conn: &mut PgConnection,
    run_id: &str,
) -> StoreResult<Option<SnapshotRecord>> {
    optional(
        conn,
        sqlx::query("SELECT * FROM session_snapshots WHERE run_id = $1 ORDER BY id DESC LIMIT 1")
            .bind(run_id),
        rows::snapshot,
    )
    .await
}

/// Success-ledger rows, of one build or of all, in order.
pub(super) async fn success(
    conn: &mut PgConnection,
    build_id: Option<&str>,
) -> StoreResult<Vec<SuccessRecord>> {
    let statement = match build_id {
        Some(build_id) => {
            sqlx::query("SELECT * FROM success_ledger WHERE build_id = $1 ORDER BY id")
                .bind(build_id)
        }
        None => sqlx::query("SELECT * FROM success_ledger ORDER BY id"),
    };
    all(conn, statement, rows::success).await
}

/// A sandbox.
pub(super) async fn sandbox(
    conn: &mut PgConnection,
    id: &str,
) -> StoreResult<Option<SandboxRecord>> {
    optional(
        conn,
        sqlx::query("SELECT * FROM sandboxes WHERE id = $1").bind(id),
        rows::sandbox,
    )
    .await
}

/// A rock's bug-fix phase.
pub(super) async fn bug_fix_phase(
    conn: &mut PgConnection,
    rock: &str,
) -> StoreResult<Option<BugFixPhaseRecord>> {
    optional(
        conn,
        sqlx::query("SELECT * FROM bug_fix_phases WHERE rock = $1").bind(rock),
        rows::bug_fix_phase,
    )
    .await
}

/// Every sandbox, newest first.
pub(super) async fn sandboxes(conn: &mut PgConnection) -> StoreResult<Vec<SandboxRecord>> {
    all(
        conn,
        sqlx::query(r#"SELECT * FROM sandboxes ORDER BY created_at COLLATE "C" DESC, rowid DESC"#),
        rows::sandbox,
    )
    .await
}

/// Memory entries sharing words with `query`: most shared first, then newest. The words are
/// bound as one text array.
pub(super) async fn search_memory(
    conn: &mut PgConnection,
    query: &str,
    limit: usize,
) -> StoreResult<Vec<MemoryRecord>> {
    let words = memory_words(query);
    if words.is_empty() || limit == 0 {
        return Ok(Vec::new());
    }
    let words: Vec<String> = words.into_iter().collect();
    let limit = i64::try_from(limit).unwrap_or(i64::MAX);
    all(
        conn,
        sqlx::query(
            "SELECT m.*, COUNT(*) AS score FROM memory m \
             JOIN memory_words w ON w.memory_id = m.id WHERE w.word = ANY($1) \
             GROUP BY m.id ORDER BY score DESC, m.id DESC LIMIT $2",
        )
        .bind(words)
        .bind(limit),
        rows::memory,
    )
    .await
}

/// An approval.
pub(super) async fn approval(
    conn: &mut PgConnection,
    id: i64,
) -> StoreResult<Option<ApprovalRecord>> {
    optional(
        conn,
        sqlx::query("SELECT * FROM pending_approvals WHERE id = $1").bind(id),
        rows::approval,
    )
    .await
}

/// Approvals, of one run or of all, by id.
pub(super) async fn approvals(
    conn: &mut PgConnection,
    run_id: Option<&str>,
) -> StoreResult<Vec<ApprovalRecord>> {
    let statement = match run_id {
        Some(run_id) => {
            sqlx::query("SELECT * FROM pending_approvals WHERE run_id = $1 ORDER BY id")
                .bind(run_id)
        }
        None => sqlx::query("SELECT * FROM pending_approvals ORDER BY id"),
    };
    all(conn, statement, rows::approval).await
}

/// A tick's reads, in one read-only transaction.
pub(super) async fn tick_state(
    pool: &PgPool,
    run_id: &str,
    build_id: &str,
    since: i64,
) -> StoreResult<TickState> {
    let mut tx = begin_read(pool).await?;
    let version: i64 =
        sqlx::query_scalar("SELECT COALESCE(MAX(version), 0) FROM issues WHERE build_id = $1")
            .bind(build_id)
            .fetch_one(&mut *tx)
            .await?;
    let changed = all(
        &mut tx,
        sqlx::query("SELECT * FROM issues WHERE build_id = $1 AND version > $2 ORDER BY position")
            .bind(build_id)
            .bind(since),
        rows::issue,
    )
    .await?;
    let halt_requested_at: Option<Option<String>> =
        sqlx::query_scalar("SELECT halt_requested_at FROM sessions WHERE id = $1")
            .bind(run_id)
            .fetch_optional(&mut *tx)
            .await?;
    tx.commit().await?;
    Ok(TickState {
        version,
        changed,
        halt_requested_at: halt_requested_at.flatten(),
    })
}

/// A turn's reads, in one read-only transaction.
pub(super) async fn turn_inputs(pool: &PgPool, q: &TurnQuery) -> StoreResult<TurnInputs> {
    let count = |n: usize| i64::try_from(n).unwrap_or(i64::MAX);
    let mut tx = begin_read(pool).await?;
    let inputs = TurnInputs {
        issue: issue(&mut tx, &q.build_id, &q.issue_id).await?,
        comments: latest_comments(&mut tx, &q.build_id, &q.issue_id, count(q.comments)).await?,
        memory: search_memory(&mut tx, &q.memory_query, q.memory).await?,
        history: past_turns(&mut tx, &q.run_id, &q.issue_id, count(q.history)).await?,
    };
    tx.commit().await?;
    Ok(inputs)
}

/// The run's ledger head (`Store::ledger_head`).
pub(super) async fn ledger_head(
    conn: &mut PgConnection,
    run_id: &str,
) -> StoreResult<Option<String>> {
    let head: Option<Option<String>> =
        sqlx::query_scalar("SELECT ledger_head FROM sessions WHERE id = $1")
            .bind(run_id)
            .fetch_optional(conn)
            .await?;
    Ok(head.flatten())
}

/// A build's lease, if it is held.
pub(super) async fn lease(
    conn: &mut PgConnection,
    build_id: &str,
) -> StoreResult<Option<LeaseRecord>> {
    optional(
        conn,
        sqlx::query("SELECT * FROM build_leases WHERE build_id = $1").bind(build_id),
        rows::lease,
    )
    .await
}

/// The `limit` most recent webhook deliveries, newest first.
pub(super) async fn deliveries(
    conn: &mut PgConnection,
    limit: i64,
) -> StoreResult<Vec<DeliveryRecord>> {
    all(
        conn,
        sqlx::query("SELECT * FROM webhook_deliveries ORDER BY id DESC LIMIT $1").bind(limit),
        rows::delivery,
    )
    .await
}

/// Every pull request, most recently changed first.
pub(super) async fn pull_requests(conn: &mut PgConnection) -> StoreResult<Vec<PullRequestRecord>> {
    all(
        conn,
        sqlx::query(
            "SELECT * FROM pull_requests \
             ORDER BY updated_at COLLATE \"C\" DESC, repository COLLATE \"C\", number",
        ),
        rows::pull_request,
    )
    .await
}

/// A pull request's review cycles, every epoch, in order.
pub(super) async fn review_cycles(
    conn: &mut PgConnection,
    repository: &str,
    number: i64,
) -> StoreResult<Vec<ReviewCycle>> {
    all(
        conn,
        sqlx::query(
            "SELECT * FROM pr_review_cycles WHERE repository = $1 AND number = $2 \
             ORDER BY epoch, cycle",
        )
        .bind(repository)
        .bind(number),
        rows::review_cycle,
    )
    .await
}
