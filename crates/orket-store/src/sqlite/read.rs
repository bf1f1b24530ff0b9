//! The reads, each run whole on a reader thread. A read of several statements (`tick_state`,
//! `turn_inputs`) runs inside one read transaction, so it sees one state of the file.

use super::rows::{self, Layout};
use super::tx::{Begin, Tx};
use crate::bugfix::BugFixPhaseRecord;
use crate::error::StoreResult;
use crate::records::{
    ApprovalRecord, BuildRecord, CardTransaction, Comment, EventRecord, IssueRecord, MemoryRecord,
    PastTurn, RunRecord, SnapshotRecord, SuccessRecord, TickState, TurnInputs, TurnQuery,
    TurnRecord,
};
use crate::sandbox::SandboxRecord;
use crate::words::memory_words;
use rusqlite::{params, Connection, OptionalExtension, Params, Row};

/// Every row `sql` returns, mapped with `map`; stops at the first failure.
fn all<T>(
    conn: &Connection,
    sql: &str,
    params: impl Params,
    map: fn(&Row, &Layout) -> StoreResult<T>,
) -> StoreResult<Vec<T>> {
    let mut statement = conn.prepare_cached(sql)?;
    let mut found = statement.query(params)?;
    let layout = Layout::default();
    let mut out = Vec::new();
    while let Some(row) = found.next()? {
        out.push(map(row, &layout)?);
    }
    Ok(out)
}

/// The first row `sql` returns, if any, mapped with `map`.
fn optional<T>(
    conn: &Connection,
    sql: &str,
    params: impl Params,
    map: fn(&Row, &Layout) -> StoreResult<T>,
) -> StoreResult<Option<T>> {
    let mut statement = conn.prepare_cached(sql)?;
    let mut found = statement.query(params)?;
    found
        .next()?
        .map(|row| map(row, &Layout::default()))
        .transpose()
}

/// The single value `sql` returns (for aggregates).
fn scalar<T: rusqlite::types::FromSql>(
    conn: &Connection,
    sql: &str,
    params: impl Params,
) -> StoreResult<T> {
    Ok(conn
        .prepare_cached(sql)?
        .query_row(params, |row| row.get(0))?)
}

/// Runs `read` inside one read transaction.
fn in_one_unit<T>(
    conn: &Connection,
    read: impl FnOnce(&Connection) -> StoreResult<T>,
) -> StoreResult<T> {
    let tx = Tx::begin(conn, Begin::Read)?;
    let out = read(&tx)?;
    tx.commit()?;
    Ok(out)
}

/// A build (`Store::get_build`).
pub(super) fn build(conn: &Connection, id: &str) -> StoreResult<Option<BuildRecord>> {
    optional(conn, "SELECT * FROM builds WHERE id = ?", [id], rows::build)
}

/// Every build, by id.
pub(super) fn builds(conn: &Connection) -> StoreResult<Vec<BuildRecord>> {
    all(conn, "SELECT * FROM builds ORDER BY id", [], rows::build)
}

/// An issue of a build.
pub(super) fn issue(
    conn: &Connection,
    build_id: &str,
    id: &str,
) -> StoreResult<Option<IssueRecord>> {
    optional(
        conn,
        "SELECT * FROM issues WHERE build_id = ? AND id = ?",
        [build_id, id],
        rows::issue,
    )
}

/// A build's issues, in insertion order.
pub(super) fn issues(conn: &Connection, build_id: &str) -> StoreResult<Vec<IssueRecord>> {
    all(
        conn,
        "SELECT * FROM issues WHERE build_id = ? ORDER BY position",
        [build_id],
        rows::issue,
    )
}

/// Every issue with this id, whatever its build.
pub(super) fn issues_with_id(conn: &Connection, id: &str) -> StoreResult<Vec<IssueRecord>> {
    all(
        conn,
        "SELECT * FROM issues WHERE id = ? ORDER BY build_id, position",
        [id],
        rows::issue,
    )
}

/// An issue's comments, in insertion order.
pub(super) fn comments(
    conn: &Connection,
    build_id: &str,
    issue_id: &str,
) -> StoreResult<Vec<Comment>> {
    all(
        conn,
        "SELECT * FROM comments WHERE build_id = ? AND issue_id = ? ORDER BY id",
        [build_id, issue_id],
        rows::comment,
    )
}

/// The last `limit` comments of an issue, oldest first.
fn latest_comments(
    conn: &Connection,
    build_id: &str,
    issue_id: &str,
    limit: i64,
) -> StoreResult<Vec<Comment>> {
    all(
        conn,
        "SELECT * FROM (SELECT * FROM comments WHERE build_id = ? AND issue_id = ? \
         ORDER BY id DESC LIMIT ?) ORDER BY id",
        params![build_id, issue_id, limit],
        rows::comment,
    )
}

/// A card's audit rows, in order.
pub(super) fn card_transactions(
    conn: &Connection,
    build_id: &str,
    card_id: &str,
) -> StoreResult<Vec<CardTransaction>> {
    all(
        conn,
        "SELECT * FROM card_transactions WHERE build_id = ? AND card_id = ? ORDER BY id",
        [build_id, card_id],
        rows::card_transaction,
    )
}

/// A run.
pub(super) fn run(conn: &Connection, id: &str) -> StoreResult<Option<RunRecord>> {
    optional(conn, "SELECT * FROM sessions WHERE id = ?", [id], rows::run)
}

/// The `limit` most recent runs, newest first.
pub(super) fn runs(conn: &Connection, limit: i64) -> StoreResult<Vec<RunRecord>> {
    all(
        conn,
        "SELECT * FROM sessions ORDER BY started_at DESC, rowid DESC LIMIT ?",
        [limit],
        rows::run,
    )
}

/// A run's turns, by seq.
pub(super) fn turns(conn: &Connection, run_id: &str) -> StoreResult<Vec<TurnRecord>> {
    all(
        conn,
        "SELECT * FROM turns WHERE run_id = ? ORDER BY seq",
        [run_id],
        rows::turn,
    )
}

/// The last `limit` turns of one issue in a run as its next prompt sees them, oldest first.
fn past_turns(
    conn: &Connection,
    run_id: &str,
    issue_id: &str,
    limit: i64,
) -> StoreResult<Vec<PastTurn>> {
    all(
        conn,
        "SELECT * FROM (SELECT seq, review, content, tool_calls, tool_results FROM turns \
         WHERE run_id = ? AND issue_id = ? ORDER BY seq DESC LIMIT ?) ORDER BY seq",
        params![run_id, issue_id, limit],
        rows::past_turn,
    )
}

/// The highest turn seq of a run.
pub(super) fn last_turn_seq(conn: &Connection, run_id: &str) -> StoreResult<Option<i64>> {
    scalar(
        conn,
        "SELECT MAX(seq) FROM turns WHERE run_id = ?",
        [run_id],
    )
}

/// Up to `limit` events with an id above `after_id`, by id; of one run or of all.
pub(super) fn events(
    conn: &Connection,
    run_id: Option<&str>,
    after_id: i64,
    limit: i64,
) -> StoreResult<Vec<EventRecord>> {
    match run_id {
        Some(run_id) => all(
            conn,
            "SELECT * FROM events WHERE run_id = ? AND id > ? ORDER BY id LIMIT ?",
            params![run_id, after_id, limit],
            rows::event,
        ),
        None => all(
            conn,
            "SELECT * FROM events WHERE id > ? ORDER BY id LIMIT ?",
            [after_id, limit],
            rows::event,
        ),
    }
}

/// A run's most recent snapshot.
pub(super) fn latest_snapshot(
    conn: &Connection,
    run_id: &str,
) -> StoreResult<Option<SnapshotRecord>> {
    optional(
        conn,
        "SELECT * FROM session_snapshots WHERE run_id = ? ORDER BY id DESC LIMIT 1",
        [run_id],
        rows::snapshot,
    )
}

/// Success-ledger rows, of one build or of all, in order.
pub(super) fn success(
    conn: &Connection,
    build_id: Option<&str>,
) -> StoreResult<Vec<SuccessRecord>> {
    match build_id {
        Some(build_id) => all(
            conn,
            "SELECT * FROM success_ledger WHERE build_id = ? ORDER BY id",
            [build_id],
            rows::success,
        ),
        None => all(
            conn,
            "SELECT * FROM success_ledger ORDER BY id",
            [],
            rows::success,
        ),
    }
}

/// A sandbox.
pub(super) fn sandbox(conn: &Connection, id: &str) -> StoreResult<Option<SandboxRecord>> {
    optional(
        conn,
        "SELECT * FROM sandboxes WHERE id = ?",
        [id],
        rows::sandbox,
    )
}

/// A rock's bug-fix phase.
pub(super) fn bug_fix_phase(
    conn: &Connection,
    rock: &str,
) -> StoreResult<Option<BugFixPhaseRecord>> {
    optional(
        conn,
        "SELECT * FROM bug_fix_phases WHERE rock = ?",
        [rock],
        rows::bug_fix_phase,
    )
}

/// Every sandbox, newest first.
pub(super) fn sandboxes(conn: &Connection) -> StoreResult<Vec<SandboxRecord>> {
    all(
        conn,
        "SELECT * FROM sandboxes ORDER BY created_at DESC, rowid DESC",
        [],
        rows::sandbox,
    )
}

/// Memory entries sharing words with `query`: most shared first, then newest. One statement
/// per number of words (the `IN` list has a placeholder per word).
pub(super) fn search_memory(
    conn: &Connection,
    query: &str,
    limit: usize,
) -> StoreResult<Vec<MemoryRecord>> {
    let words = memory_words(query);
    if words.is_empty() || limit == 0 {
        return Ok(Vec::new());
    }
    let sql = format!(
        "SELECT m.*, COUNT(*) AS score FROM memory m \
         JOIN memory_words w ON w.memory_id = m.id WHERE w.word IN ({}) \
         GROUP BY m.id ORDER BY score DESC, m.id DESC LIMIT ?",
        vec!["?"; words.len()].join(", ")
    );
    let limit = i64::try_from(limit).unwrap_or(i64::MAX);
    let mut values: Vec<&dyn rusqlite::ToSql> =
        words.iter().map(|w| w as &dyn rusqlite::ToSql).collect();
    values.push(&limit);
    all(conn, &sql, values.as_slice(), rows::memory)
}

/// An approval.
pub(super) fn approval(conn: &Connection, id: i64) -> StoreResult<Option<ApprovalRecord>> {
    optional(
        conn,
        "SELECT * FROM pending_approvals WHERE id = ?",
        [id],
        rows::approval,
    )
}

/// Approvals, of one run or of all, by id.
pub(super) fn approvals(
    conn: &Connection,
    run_id: Option<&str>,
) -> StoreResult<Vec<ApprovalRecord>> {
    match run_id {
        Some(run_id) => all(
            conn,
            "SELECT * FROM pending_approvals WHERE run_id = ? ORDER BY id",
            [run_id],
            rows::approval,
        ),
        None => all(
            conn,
            "SELECT * FROM pending_approvals ORDER BY id",
            [],
            rows::approval,
        ),
    }
}

/// A tick's reads, in one read transaction.
pub(super) fn tick_state(
    conn: &Connection,
    run_id: &str,
    build_id: &str,
    since: i64,
) -> StoreResult<TickState> {
    in_one_unit(conn, |conn| {
        Ok(TickState {
            version: scalar(
                conn,
                "SELECT COALESCE(MAX(version), 0) FROM issues WHERE build_id = ?",
                [build_id],
            )?,
            changed: all(
                conn,
                "SELECT * FROM issues WHERE build_id = ? AND version > ? ORDER BY position",
                params![build_id, since],
                rows::issue,
            )?,
            halt_requested_at: conn
                .prepare_cached("SELECT halt_requested_at FROM sessions WHERE id = ?")?
                .query_row([run_id], |row| row.get(0))
                .optional()?
                .flatten(),
        })
    })
}

/// A turn's reads, in one read transaction.
pub(super) fn turn_inputs(conn: &Connection, q: &TurnQuery) -> StoreResult<TurnInputs> {
    let count = |n: usize| i64::try_from(n).unwrap_or(i64::MAX);
    in_one_unit(conn, |conn| {
        Ok(TurnInputs {
            issue: issue(conn, &q.build_id, &q.issue_id)?,
            comments: latest_comments(conn, &q.build_id, &q.issue_id, count(q.comments))?,
            memory: search_memory(conn, &q.memory_query, q.memory)?,
            history: past_turns(conn, &q.run_id, &q.issue_id, count(q.history))?,
        })
    })
}

/// The run's ledger head (`Store::ledger_head`).
pub(super) fn ledger_head(conn: &Connection, run_id: &str) -> StoreResult<Option<String>> {
    Ok(conn
        .prepare_cached("SELECT ledger_head FROM sessions WHERE id = ?")?
        .query_row([run_id], |row| row.get::<_, Option<String>>(0))
        .optional()?
        .flatten())
}
