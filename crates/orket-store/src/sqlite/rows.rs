//! Rows and records: for each table, the function that reads a row into its record (every
//! stored value checked, `Corrupt` naming the row on failure) and the one that writes a record
//! as a row. JSON columns are decoded by [`Cols::json`] and encoded by [`Json`], nowhere else
//! (an issue's columns, and a patch's, are given by `IssueRecord::columns` and
//! `IssueUpdate::assignments`).

use crate::bugfix::BugFixPhaseRecord;
use crate::error::{StoreError, StoreResult};
use crate::records::{
    ApprovalRecord, BuildRecord, CardTransaction, ColumnValue, Comment, EventRecord, IssueRecord,
    MemoryRecord, NewApproval, NewEvent, NewTurn, PastTurn, RunRecord, SnapshotRecord,
    SuccessRecord, TurnRecord,
};
use crate::sandbox::{SandboxPorts, SandboxRecord};
use orket_core::time::now_timestamp;
use orket_core::{Event, Status, WaitReason};
use rusqlite::types::{FromSql, ToSqlOutput, ValueRef};
use rusqlite::{params, Connection, Row, ToSql};
use serde::de::DeserializeOwned;
use serde::Serialize;
use serde_json::Value;
use std::cell::{Cell, RefCell};
use std::collections::BTreeSet;
use std::fmt::Display;
use std::str::FromStr;

/// Typed access to one row's columns; failures name the table, column and row.
///
/// rusqlite's lookup of a column by name compares the name with every column's, which made
/// reading a 30-column issue row cost about as much as running its query. So the columns are
/// found by position: where the query's first row taught the [`Layout`] they are, or else the
/// column after the previous one read (`SELECT *` gives table order, which is the order the
/// row functions read in), or the one after that (a record skips a column now and then, as an
/// issue skips `position`), checked by name; the lookup by name is the last resort.
struct Cols<'a, 'r> {
    row: &'a Row<'r>,
    layout: &'a Layout,
    table: &'static str,
    owner: Owner<'a>,
    /// Reads so far (the next read's place in the layout).
    reads: Cell<usize>,
    /// The column after the previous one read.
    next: Cell<usize>,
}

/// Where the columns a row function reads are in one query's rows, learned on its first row:
/// the n-th read of a row function asks for the same column in every row of a query, so later
/// rows are read by position without comparing names (comparing them was a third of the cost
/// of listing issues). One per query; a fresh one for a single row.
#[derive(Default)]
pub(super) struct Layout(RefCell<Vec<(&'static str, usize)>>);

/// The row an error names, formatted only when there is an error.
enum Owner<'a> {
    /// Before its key is read: `an issue`.
    Unknown(&'static str),
    /// `build build-login`, `comment 7`.
    Key(&'static str, &'a dyn Display),
    /// `issue build-login/ISSUE-1`.
    Issue(&'a str, &'a str),
}

impl Display for Owner<'_> {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        match self {
            Owner::Unknown(what) => f.write_str(what),
            Owner::Key(what, key) => write!(f, "{what} {key}"),
            Owner::Issue(build_id, id) => write!(f, "issue {build_id}/{id}"),
        }
    }
}

impl<'a, 'r> Cols<'a, 'r> {
    fn new(
        row: &'a Row<'r>,
        layout: &'a Layout,
        table: &'static str,
        unknown: &'static str,
    ) -> Self {
        Cols {
            row,
            layout,
            table,
            owner: Owner::Unknown(unknown),
            reads: Cell::new(0),
            next: Cell::new(0),
        }
    }

    /// The same row, named `what key` in error messages.
    fn of(self, what: &'static str, key: &'a dyn Display) -> Self {
        Cols {
            owner: Owner::Key(what, key),
            ..self
        }
    }

    /// The same row, named as issue `build_id/id` in error messages.
    fn of_issue(self, build_id: &'a str, id: &'a str) -> Self {
        Cols {
            owner: Owner::Issue(build_id, id),
            ..self
        }
    }

    fn corrupt(&self, column: &str, message: impl Display) -> StoreError {
        StoreError::Corrupt {
            what: format!("{}.{column} of {}", self.table, self.owner),
            message: message.to_string(),
        }
    }

    /// The index of `column` in the row.
    fn index(&self, column: &'static str) -> StoreResult<usize> {
        let read = self.reads.get();
        self.reads.set(read + 1);
        let learned = self.layout.0.borrow().get(read).copied();
        let index = match learned {
            Some((name, index)) if name == column => index,
            _ => {
                let index = self.find(column)?;
                let mut layout = self.layout.0.borrow_mut();
                layout.truncate(read);
                layout.push((column, index));
                index
            }
        };
        self.next.set(index + 1);
        Ok(index)
    }

    /// Finds `column`: the column after the previous one read, or the one after that, or
    /// wherever its name is.
    fn find(&self, column: &str) -> StoreResult<usize> {
        let statement = self.row.as_ref();
        let next = self.next.get();
        match (next..next + 2).find(|&i| statement.column_name(i).is_ok_and(|name| name == column))
        {
            Some(index) => Ok(index),
            None => statement
                .column_index(column)
                .map_err(|err| self.corrupt(column, err)),
        }
    }

    fn get<T: FromSql>(&self, column: &'static str) -> StoreResult<T> {
        let index = self.index(column)?;
        self.row.get(index).map_err(|err| self.corrupt(column, err))
    }

    /// A TEXT column's value, borrowed from the row.
    fn text(&self, column: &'static str) -> StoreResult<Option<&'a str>> {
        let index = self.index(column)?;
        let value = self
            .row
            .get_ref(index)
            .map_err(|err| self.corrupt(column, err))?;
        match value {
            ValueRef::Null => Ok(None),
            value => value
                .as_str()
                .map(Some)
                .map_err(|err| self.corrupt(column, err)),
        }
    }

    fn parse<T: FromStr>(&self, column: &'static str) -> StoreResult<T>
    where
        T::Err: Display,
    {
        let raw: String = self.get(column)?;
        raw.parse().map_err(|err| self.corrupt(column, err))
    }

    fn parse_opt<T: FromStr>(&self, column: &'static str) -> StoreResult<Option<T>>
    where
        T::Err: Display,
    {
        let raw: Option<String> = self.get(column)?;
        raw.map(|raw| raw.parse().map_err(|err| self.corrupt(column, err)))
            .transpose()
    }

    /// A JSON column (the one place JSON is decoded).
    fn json_opt<T: DeserializeOwned>(&self, column: &'static str) -> StoreResult<Option<T>> {
        self.text(column)?
            .map(|raw| {
                serde_json::from_str(raw)
                    .map_err(|err| self.corrupt(column, format!("invalid JSON {raw:?}: {err}")))
            })
            .transpose()
    }

    fn json<T: DeserializeOwned>(&self, column: &'static str) -> StoreResult<T> {
        self.json_opt(column)?
            .ok_or_else(|| self.corrupt(column, "NULL where JSON is expected"))
    }

    fn count<T: TryFrom<i64>>(&self, column: &'static str) -> StoreResult<T> {
        let n: i64 = self.get(column)?;
        T::try_from(n).map_err(|_| self.corrupt(column, format!("{n} is out of range")))
    }
}

/// A value written to a JSON column (the one place JSON is encoded).
pub(super) struct Json<'a, T: ?Sized>(pub &'a T);

impl<T: Serialize + ?Sized> ToSql for Json<'_, T> {
    fn to_sql(&self) -> rusqlite::Result<ToSqlOutput<'_>> {
        serde_json::to_string(self.0)
            .map(ToSqlOutput::from)
            .map_err(|err| rusqlite::Error::ToSqlConversionFailure(Box::new(err)))
    }
}

impl ToSql for ColumnValue {
    fn to_sql(&self) -> rusqlite::Result<ToSqlOutput<'_>> {
        Ok(match self {
            ColumnValue::Null => ToSqlOutput::from(rusqlite::types::Null),
            ColumnValue::Text(text) => ToSqlOutput::from(text.as_str()),
            ColumnValue::Real(real) => ToSqlOutput::from(*real),
            ColumnValue::Int(int) => ToSqlOutput::from(*int),
        })
    }
}

/// A `builds` row.
pub(super) fn build(row: &Row, layout: &Layout) -> StoreResult<BuildRecord> {
    let c = Cols::new(row, layout, "builds", "a build");
    let id: String = c.get("id")?;
    let c = c.of("build", &id);
    Ok(BuildRecord {
        kind: c.get("kind")?,
        card: c.get("card")?,
        department: c.get("department")?,
        status: c.parse("status")?,
        created_at: c.get("created_at")?,
        updated_at: c.get("updated_at")?,
        id,
    })
}

/// Writes a build with `status`, replacing the row of its id.
pub(super) fn upsert_build(
    conn: &Connection,
    build: &BuildRecord,
    status: Status,
) -> rusqlite::Result<()> {
    conn.prepare_cached(
        "INSERT INTO builds (id, kind, card, department, status, created_at, updated_at) \
         VALUES (?, ?, ?, ?, ?, ?, ?) \
         ON CONFLICT (id) DO UPDATE SET kind = excluded.kind, card = excluded.card, \
         department = excluded.department, status = excluded.status, \
         updated_at = excluded.updated_at",
    )?
    .execute(params![
        build.id,
        build.kind,
        build.card,
        build.department,
        status.as_str(),
        build.created_at,
        build.updated_at,
    ])?;
    Ok(())
}

/// An `issues` row.
pub(super) fn issue(row: &Row, layout: &Layout) -> StoreResult<IssueRecord> {
    let c = Cols::new(row, layout, "issues", "an issue");
    let build_id: String = c.get("build_id")?;
    let id: String = c.get("id")?;
    let c = c.of_issue(&build_id, &id);
    Ok(IssueRecord {
        session_id: c.get("session_id")?,
        name: c.get("name")?,
        description: c.get("description")?,
        issue_type: c.get("issue_type")?,
        status: c.parse("status")?,
        priority: c.get("priority")?,
        seat: c.get("seat")?,
        assignee: c.get("assignee")?,
        sprint: c.get("sprint")?,
        note: c.get("note")?,
        requirements: c.get("requirements")?,
        wait_reason: c.parse_opt("wait_reason")?,
        depends_on: c.json("depends_on")?,
        retry_count: c.count("retry_count")?,
        max_retries: c.count("max_retries")?,
        verification: c.json("verification")?,
        metrics: c.json("metrics")?,
        credits_spent: c.get("credits_spent")?,
        parent_id: c.get("parent_id")?,
        owner_department: c.get("owner_department")?,
        labels: c.json("labels")?,
        params: c.json("params")?,
        references: c.json("refs")?,
        created_at: c.get("created_at")?,
        updated_at: c.get("updated_at")?,
        severity: c.parse_opt("severity")?,
        build_id,
        id,
    })
}

/// The status of an `issues` row read as `build_id, id, status`.
pub(super) fn issue_status(row: &Row, layout: &Layout) -> StoreResult<Status> {
    let c = Cols::new(row, layout, "issues", "an issue");
    let build_id: String = c.get("build_id")?;
    let id: String = c.get("id")?;
    c.of_issue(&build_id, &id).parse("status")
}

/// The status and wait reason of an `issues` row read as `build_id, id, status, wait_reason`.
pub(super) fn issue_state(row: &Row, layout: &Layout) -> StoreResult<(Status, Option<WaitReason>)> {
    let c = Cols::new(row, layout, "issues", "an issue");
    let build_id: String = c.get("build_id")?;
    let id: String = c.get("id")?;
    let c = c.of_issue(&build_id, &id);
    Ok((c.parse("status")?, c.parse_opt("wait_reason")?))
}

/// A `comments` row.
pub(super) fn comment(row: &Row, layout: &Layout) -> StoreResult<Comment> {
    let c = Cols::new(row, layout, "comments", "a comment");
    let id: i64 = c.get("id")?;
    let c = c.of("comment", &id);
    Ok(Comment {
        id,
        build_id: c.get("build_id")?,
        issue_id: c.get("issue_id")?,
        author: c.get("author")?,
        content: c.get("content")?,
        created_at: c.get("created_at")?,
    })
}

/// Writes a comment (its `id` is ignored); returns the new row id.
pub(super) fn insert_comment(conn: &Connection, comment: &Comment) -> rusqlite::Result<i64> {
    conn.prepare_cached(
        "INSERT INTO comments (build_id, issue_id, author, content, created_at) \
         VALUES (?, ?, ?, ?, ?)",
    )?
    .execute(params![
        comment.build_id,
        comment.issue_id,
        comment.author,
        comment.content,
        comment.created_at,
    ])
    .map(|_| conn.last_insert_rowid())
}

/// A `card_transactions` row.
pub(super) fn card_transaction(row: &Row, layout: &Layout) -> StoreResult<CardTransaction> {
    let c = Cols::new(row, layout, "card_transactions", "an audit row");
    let id: i64 = c.get("id")?;
    let c = c.of("audit row", &id);
    Ok(CardTransaction {
        id,
        build_id: c.get("build_id")?,
        card_id: c.get("card_id")?,
        role: c.get("role")?,
        action: c.get("action")?,
        from_status: c.parse_opt("from_status")?,
        to_status: c.parse_opt("to_status")?,
        detail: c.json("detail")?,
        timestamp: c.get("timestamp")?,
    })
}

/// One audit row to write, stamped now.
pub(super) struct Audit<'a> {
    pub build_id: &'a str,
    pub card_id: &'a str,
    pub role: &'a str,
    pub action: &'a str,
    pub from: Option<Status>,
    pub to: Option<Status>,
    pub detail: Value,
}

/// Writes an audit row.
pub(super) fn insert_card_transaction(conn: &Connection, row: &Audit) -> rusqlite::Result<()> {
    conn.prepare_cached(
        "INSERT INTO card_transactions \
         (build_id, card_id, role, action, from_status, to_status, detail, timestamp) \
         VALUES (?, ?, ?, ?, ?, ?, ?, ?)",
    )?
    .execute(params![
        row.build_id,
        row.card_id,
        row.role,
        row.action,
        row.from.map(Status::as_str),
        row.to.map(Status::as_str),
        Json(&row.detail),
        now_timestamp(),
    ])?;
    Ok(())
}

/// A `sessions` row.
pub(super) fn run(row: &Row, layout: &Layout) -> StoreResult<RunRecord> {
    let c = Cols::new(row, layout, "sessions", "a run");
    let id: String = c.get("id")?;
    let c = c.of("run", &id);
    Ok(RunRecord {
        kind: c.parse("kind")?,
        target: c.get("target")?,
        build_id: c.get("build_id")?,
        department: c.get("department")?,
        workspace: c.get("workspace")?,
        status: c.parse("status")?,
        reason: c.get("reason")?,
        params: c.json("params")?,
        started_at: c.get("started_at")?,
        updated_at: c.get("updated_at")?,
        ended_at: c.get("ended_at")?,
        halt_requested_at: c.get("halt_requested_at")?,
        id,
    })
}

/// Writes a run.
pub(super) fn insert_run(conn: &Connection, run: &RunRecord) -> rusqlite::Result<()> {
    conn.prepare_cached(
        "INSERT INTO sessions (id, kind, target, build_id, department, workspace, status, \
         reason, params, started_at, updated_at, ended_at, halt_requested_at) \
         VALUES (?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?)",
    )?
    .execute(params![
        run.id,
        run.kind.as_str(),
        run.target,
        run.build_id,
        run.department,
        run.workspace,
        run.status.as_str(),
        run.reason,
        Json(&run.params),
        run.started_at,
        run.updated_at,
        run.ended_at,
        run.halt_requested_at,
    ])?;
    Ok(())
}

/// A `turns` row.
pub(super) fn turn(row: &Row, layout: &Layout) -> StoreResult<TurnRecord> {
    let c = Cols::new(row, layout, "turns", "a turn");
    let id: i64 = c.get("id")?;
    let c = c.of("turn", &id);
    Ok(TurnRecord {
        id,
        turn: NewTurn {
            run_id: c.get("run_id")?,
            seq: c.get("seq")?,
            build_id: c.get("build_id")?,
            issue_id: c.get("issue_id")?,
            seat: c.get("seat")?,
            role: c.get("role")?,
            model: c.get("model")?,
            review: c.get("review")?,
            messages: c.json("messages")?,
            content: c.get("content")?,
            tool_calls: c.json("tool_calls")?,
            tool_results: c.json("tool_results")?,
            tokens_in: c.get("tokens_in")?,
            tokens_out: c.get("tokens_out")?,
            status: c.get("status")?,
            error: c.get("error")?,
            started_at: c.get("started_at")?,
            ended_at: c.get("ended_at")?,
            steps: c.json("steps")?,
            candidates: c.json("candidates")?,
            settings: c.json_opt("settings")?,
        },
        prev_hash: c.get("prev_hash")?,
        hash: c.get("hash")?,
        // Only the PostgreSQL store has fleet workers.
        worker: None,
    })
}

/// A turn's `seq`, `content` and `tool_results`.
pub(super) fn past_turn(row: &Row, layout: &Layout) -> StoreResult<PastTurn> {
    let c = Cols::new(row, layout, "turns", "a turn");
    let seq: i64 = c.get("seq")?;
    let c = c.of("turn with seq", &seq);
    Ok(PastTurn {
        seq,
        review: c.get("review")?,
        content: c.get("content")?,
        tool_calls: c.json("tool_calls")?,
        tool_results: c.json("tool_results")?,
    })
}

/// Writes a turn; returns its row id.
pub(super) fn insert_turn(
    conn: &Connection,
    turn: &NewTurn,
    prev_hash: &str,
    hash: &str,
) -> rusqlite::Result<i64> {
    conn.prepare_cached(
        "INSERT INTO turns (run_id, seq, build_id, issue_id, seat, role, model, review, \
         messages, content, tool_calls, tool_results, tokens_in, tokens_out, status, error, \
         started_at, ended_at, steps, candidates, settings, prev_hash, hash) \
         VALUES (?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?)",
    )?
    .execute(params![
        turn.run_id,
        turn.seq,
        turn.build_id,
        turn.issue_id,
        turn.seat,
        turn.role,
        turn.model,
        turn.review,
        Json(&turn.messages),
        turn.content,
        Json(&turn.tool_calls),
        Json(&turn.tool_results),
        turn.tokens_in,
        turn.tokens_out,
        turn.status,
        turn.error,
        turn.started_at,
        turn.ended_at,
        Json(&turn.steps),
        Json(&turn.candidates),
        turn.settings.as_ref().map(Json),
        prev_hash,
        hash,
    ])
    .map(|_| conn.last_insert_rowid())
}

/// An `events` row.
pub(super) fn event(row: &Row, layout: &Layout) -> StoreResult<EventRecord> {
    let c = Cols::new(row, layout, "events", "an event");
    let id: i64 = c.get("id")?;
    let c = c.of("event", &id);
    let name: String = c.get("event")?;
    let data: Value = c.json("data")?;
    Ok(EventRecord {
        id,
        run_id: c.get("run_id")?,
        timestamp: c.get("timestamp")?,
        role: c.get("role")?,
        issue_id: c.get("issue_id")?,
        event: Event::from_parts(&name, data).map_err(|e| c.corrupt("data", e))?,
    })
}

/// Writes an event (stamped now unless it has a timestamp); returns its row id.
pub(super) fn insert_event(conn: &Connection, event: &NewEvent) -> rusqlite::Result<i64> {
    let timestamp = event.timestamp.clone().unwrap_or_else(now_timestamp);
    conn.prepare_cached(
        "INSERT INTO events (run_id, timestamp, role, event, issue_id, data) \
         VALUES (?, ?, ?, ?, ?, ?)",
    )?
    .execute(params![
        event.run_id,
        timestamp,
        event.role,
        event.event.name(),
        event.issue_id,
        Json(&event.event.data()),
    ])
    .map(|_| conn.last_insert_rowid())
}

/// A `session_snapshots` row.
pub(super) fn snapshot(row: &Row, layout: &Layout) -> StoreResult<SnapshotRecord> {
    let c = Cols::new(row, layout, "session_snapshots", "a snapshot");
    let id: i64 = c.get("id")?;
    let c = c.of("snapshot", &id);
    Ok(SnapshotRecord {
        id,
        run_id: c.get("run_id")?,
        created_at: c.get("created_at")?,
        data: c.json("data")?,
    })
}

/// Writes a snapshot of a run, stamped now; returns its row id.
pub(super) fn insert_snapshot(
    conn: &Connection,
    run_id: &str,
    data: &Value,
) -> rusqlite::Result<i64> {
    conn.prepare_cached(
        "INSERT INTO session_snapshots (run_id, created_at, data) VALUES (?, ?, ?)",
    )?
    .execute(params![run_id, now_timestamp(), Json(data)])
    .map(|_| conn.last_insert_rowid())
}

/// A `success_ledger` row.
pub(super) fn success(row: &Row, layout: &Layout) -> StoreResult<SuccessRecord> {
    let c = Cols::new(row, layout, "success_ledger", "a success row");
    let id: i64 = c.get("id")?;
    let c = c.of("success row", &id);
    Ok(SuccessRecord {
        id,
        run_id: c.get("run_id")?,
        build_id: c.get("build_id")?,
        card: c.get("card")?,
        recorded_at: c.get("recorded_at")?,
        data: c.json("data")?,
    })
}

/// Writes a success-ledger row, stamped now; returns its row id.
pub(super) fn insert_success(
    conn: &Connection,
    run_id: &str,
    build_id: &str,
    card: &str,
    data: &Value,
) -> rusqlite::Result<i64> {
    conn.prepare_cached(
        "INSERT INTO success_ledger (run_id, build_id, card, recorded_at, data) \
         VALUES (?, ?, ?, ?, ?)",
    )?
    .execute(params![run_id, build_id, card, now_timestamp(), Json(data)])
    .map(|_| conn.last_insert_rowid())
}

/// A `memory` row joined with its `score` (shared words with a query).
pub(super) fn memory(row: &Row, layout: &Layout) -> StoreResult<MemoryRecord> {
    let c = Cols::new(row, layout, "memory", "a memory entry");
    let id: i64 = c.get("id")?;
    let c = c.of("memory entry", &id);
    Ok(MemoryRecord {
        id,
        content: c.get("content")?,
        role: c.get("role")?,
        issue_id: c.get("issue_id")?,
        run_id: c.get("run_id")?,
        created_at: c.get("created_at")?,
        score: c.count("score")?,
    })
}

/// Writes a memory entry, stamped now, and its words; returns its row id.
pub(super) fn insert_memory(
    conn: &Connection,
    content: &str,
    role: Option<&str>,
    issue_id: Option<&str>,
    run_id: Option<&str>,
    words: &BTreeSet<String>,
) -> rusqlite::Result<i64> {
    let id: i64 = conn
        .prepare_cached(
            "INSERT INTO memory (content, role, issue_id, run_id, created_at) \
             VALUES (?, ?, ?, ?, ?)",
        )?
        .execute(params![content, role, issue_id, run_id, now_timestamp()])
        .map(|_| conn.last_insert_rowid())?;
    let mut insert_word =
        conn.prepare_cached("INSERT INTO memory_words (memory_id, word) VALUES (?, ?)")?;
    for word in words {
        insert_word.execute(params![id, word])?;
    }
    Ok(id)
}

/// A `pending_approvals` row.
pub(super) fn approval(row: &Row, layout: &Layout) -> StoreResult<ApprovalRecord> {
    let c = Cols::new(row, layout, "pending_approvals", "an approval");
    let id: i64 = c.get("id")?;
    let c = c.of("approval", &id);
    Ok(ApprovalRecord {
        id,
        call: NewApproval {
            run_id: c.get("run_id")?,
            build_id: c.get("build_id")?,
            issue_id: c.get("issue_id")?,
            role: c.get("role")?,
            seat: c.get("seat")?,
            tool: c.get("tool")?,
            args: c.json("args")?,
            resume_status: c.parse("resume_status")?,
        },
        status: c.get("status")?,
        reason: c.get("reason")?,
        result: c.json_opt("result")?,
        created_at: c.get("created_at")?,
        decided_at: c.get("decided_at")?,
    })
}

/// Writes a parked call, `pending` and stamped now; returns its row id.
pub(super) fn insert_approval(conn: &Connection, call: &NewApproval) -> rusqlite::Result<i64> {
    conn.prepare_cached(
        "INSERT INTO pending_approvals (run_id, build_id, issue_id, role, seat, tool, \
         args, resume_status, status, created_at) \
         VALUES (?, ?, ?, ?, ?, ?, ?, ?, 'pending', ?)",
    )?
    .execute(params![
        call.run_id,
        call.build_id,
        call.issue_id,
        call.role,
        call.seat,
        call.tool,
        Json(&call.args),
        call.resume_status.as_str(),
        now_timestamp(),
    ])
    .map(|_| conn.last_insert_rowid())
}

/// A `sandboxes` row.
pub(super) fn sandbox(row: &Row, layout: &Layout) -> StoreResult<SandboxRecord> {
    let c = Cols::new(row, layout, "sandboxes", "a sandbox");
    let id: String = c.get("id")?;
    let c = c.of("sandbox", &id);
    Ok(SandboxRecord {
        run_id: c.get("run_id")?,
        build_id: c.get("build_id")?,
        epic: c.get("epic")?,
        stack: c.get("stack")?,
        slot: c.count("slot")?,
        ports: SandboxPorts {
            api: c.count("api_port")?,
            frontend: c.count("frontend_port")?,
            db: c.count("db_port")?,
            admin: c.count("admin_port")?,
        },
        status: c.parse("status")?,
        reason: c.get("reason")?,
        project_name: c.get("project_name")?,
        compose_file: c.get("compose_file")?,
        workspace: c.get("workspace")?,
        created_at: c.get("created_at")?,
        updated_at: c.get("updated_at")?,
        id,
    })
}

/// Writes a sandbox.
pub(super) fn insert_sandbox(conn: &Connection, s: &SandboxRecord) -> rusqlite::Result<()> {
    conn.prepare_cached(
        "INSERT INTO sandboxes (id, run_id, build_id, epic, stack, slot, api_port, frontend_port, \
         db_port, admin_port, status, reason, project_name, compose_file, workspace, created_at, \
         updated_at) VALUES (?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?)",
    )?
    .execute(params![
        s.id,
        s.run_id,
        s.build_id,
        s.epic,
        s.stack,
        s.slot,
        s.ports.api,
        s.ports.frontend,
        s.ports.db,
        s.ports.admin,
        s.status.as_str(),
        s.reason,
        s.project_name,
        s.compose_file,
        s.workspace,
        s.created_at,
        s.updated_at,
    ])?;
    Ok(())
}

/// A `bug_fix_phases` row (the counts of bugs and critical bugs are read from its `bugs`).
pub(super) fn bug_fix_phase(row: &Row, layout: &Layout) -> StoreResult<BugFixPhaseRecord> {
    let c = Cols::new(row, layout, "bug_fix_phases", "a bug-fix phase");
    let rock: String = c.get("rock")?;
    let c = c.of("bug-fix phase of rock", &rock);
    let window: Option<i64> = c.get("last_extension_window")?;
    let last_extension_window = window
        .map(|w| {
            u32::try_from(w)
                .map_err(|_| c.corrupt("last_extension_window", format!("{w} is out of range")))
        })
        .transpose()?;
    Ok(BugFixPhaseRecord {
        department: c.get("department")?,
        status: c.parse("status")?,
        started_at: c.get("started_at")?,
        planned_end: c.get("planned_end")?,
        extensions: c.count("extensions")?,
        last_extension_window,
        bugs: c.json("bugs")?,
        baseline: c.json("baseline")?,
        ended_at: c.get("ended_at")?,
        next_rock: c.get("next_rock")?,
        revision: c.get("revision")?,
        updated_at: c.get("updated_at")?,
        rock,
    })
}

#[cfg(test)]
mod tests {
    use super::*;

    /// Reads every row of `sql` with one layout, as `read::all` does.
    fn comments(conn: &Connection, sql: &str) -> StoreResult<Vec<Comment>> {
        let mut statement = conn.prepare(sql)?;
        let mut found = statement.query([])?;
        let layout = Layout::default();
        let mut out = Vec::new();
        while let Some(row) = found.next()? {
            out.push(comment(row, &layout)?);
        }
        Ok(out)
    }

    #[test]
    fn columns_are_found_in_any_order_and_a_bad_one_names_its_row() {
        let conn = Connection::open_in_memory().unwrap();
        conn.execute_batch(
            "CREATE TABLE c (content TEXT, extra TEXT, id INTEGER, author TEXT, issue_id TEXT, \
             created_at TEXT, build_id TEXT);
             INSERT INTO c VALUES ('one', 'x', 1, 'coder', 'I-1', 't1', 'b');
             INSERT INTO c VALUES ('two', 'x', 2, 'guard', 'I-2', 't2', 'b');
             INSERT INTO c VALUES ('three', 'x', 3, 'coder', 'I-3', 't3', 'b');",
        )
        .unwrap();
        let expected = |id: i64, content: &str, author: &str| Comment {
            id,
            build_id: "b".to_string(),
            issue_id: format!("I-{id}"),
            author: author.to_string(),
            content: content.to_string(),
            created_at: format!("t{id}"),
        };
        let all = vec![
            expected(1, "one", "coder"),
            expected(2, "two", "guard"),
            expected(3, "three", "coder"),
        ];
        // Table order differs from the record's, and from the next query's.
        assert_eq!(comments(&conn, "SELECT * FROM c ORDER BY id").unwrap(), all);
        assert_eq!(
            comments(
                &conn,
                "SELECT id, build_id, issue_id, author, content, created_at FROM c ORDER BY id"
            )
            .unwrap(),
            all
        );

        // A value that does not decode in a later row names that row.
        conn.execute("UPDATE c SET author = NULL WHERE id = 3", [])
            .unwrap();
        let err = comments(&conn, "SELECT * FROM c ORDER BY id").unwrap_err();
        assert!(
            matches!(&err, StoreError::Corrupt { what, .. } if what == "comments.author of comment 3"),
            "{err}"
        );
        // A missing column is named too.
        let err = comments(&conn, "SELECT id, build_id FROM c").unwrap_err();
        assert!(
            matches!(&err, StoreError::Corrupt { what, .. } if what == "comments.issue_id of comment 1"),
            "{err}"
        );
    }
}
