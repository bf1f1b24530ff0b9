//! Row mapping: one function per record, every stored value checked (`Corrupt` on failure).

use crate::error::{StoreError, StoreResult};
use crate::records::{
    ApprovalRecord, BuildRecord, CardTransaction, Comment, EventRecord, IssueRecord, MemoryRecord,
    NewApproval, NewTurn, RunRecord, SnapshotRecord, SuccessRecord, TurnRecord,
};
use crate::sandbox::{SandboxPorts, SandboxRecord};
use orket_core::{Event, Status};
use serde::de::DeserializeOwned;
use sqlx::sqlite::SqliteRow;
use sqlx::{Decode, Row, Sqlite, Type};
use std::fmt::Display;
use std::str::FromStr;

/// `value` as JSON text, for a JSON column.
pub(super) fn to_json<T: serde::Serialize>(value: &T) -> String {
    serde_json::to_string(value).unwrap_or_else(|_| "null".to_string())
}

/// Typed access to one row's columns; failures name the table, column and row.
struct Cols<'r> {
    row: &'r SqliteRow,
    table: &'static str,
    owner: String,
}

impl<'r> Cols<'r> {
    fn new(row: &'r SqliteRow, table: &'static str, owner: impl Into<String>) -> Self {
        Cols {
            row,
            table,
            owner: owner.into(),
        }
    }

    /// The same row, described as `owner` in error messages.
    fn of(self, owner: impl Into<String>) -> Self {
        Cols::new(self.row, self.table, owner)
    }

    fn corrupt(&self, column: &str, message: impl Display) -> StoreError {
        StoreError::Corrupt {
            what: format!("{}.{column} of {}", self.table, self.owner),
            message: message.to_string(),
        }
    }

    fn get<T: Decode<'r, Sqlite> + Type<Sqlite>>(&self, column: &str) -> StoreResult<T> {
        self.row
            .try_get(column)
            .map_err(|err| self.corrupt(column, err))
    }

    fn parse<T: FromStr>(&self, column: &str) -> StoreResult<T>
    where
        T::Err: Display,
    {
        let raw: String = self.get(column)?;
        raw.parse().map_err(|err| self.corrupt(column, err))
    }

    fn parse_opt<T: FromStr>(&self, column: &str) -> StoreResult<Option<T>>
    where
        T::Err: Display,
    {
        let raw: Option<String> = self.get(column)?;
        raw.map(|raw| raw.parse().map_err(|err| self.corrupt(column, err)))
            .transpose()
    }

    fn json<T: DeserializeOwned>(&self, column: &str) -> StoreResult<T> {
        let raw: String = self.get(column)?;
        serde_json::from_str(&raw)
            .map_err(|err| self.corrupt(column, format!("invalid JSON {raw:?}: {err}")))
    }

    fn count<T: TryFrom<i64>>(&self, column: &str) -> StoreResult<T> {
        let n: i64 = self.get(column)?;
        T::try_from(n).map_err(|_| self.corrupt(column, format!("{n} is out of range")))
    }
}

/// A `builds` row.
pub(super) fn build(row: &SqliteRow) -> StoreResult<BuildRecord> {
    let c = Cols::new(row, "builds", "a build");
    let id: String = c.get("id")?;
    let c = c.of(format!("build {id}"));
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

/// An `issues` row.
pub(super) fn issue(row: &SqliteRow) -> StoreResult<IssueRecord> {
    let c = Cols::new(row, "issues", "an issue");
    let build_id: String = c.get("build_id")?;
    let id: String = c.get("id")?;
    let c = c.of(format!("issue {build_id}/{id}"));
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
        build_id,
        id,
    })
}

/// The status of an `issues` row read as `build_id, id, status`.
pub(super) fn issue_status(row: &SqliteRow) -> StoreResult<Status> {
    let c = Cols::new(row, "issues", "an issue");
    let build_id: String = c.get("build_id")?;
    let id: String = c.get("id")?;
    c.of(format!("issue {build_id}/{id}")).parse("status")
}

/// A `comments` row.
pub(super) fn comment(row: &SqliteRow) -> StoreResult<Comment> {
    let c = Cols::new(row, "comments", "a comment");
    let id: i64 = c.get("id")?;
    let c = c.of(format!("comment {id}"));
    Ok(Comment {
        id,
        build_id: c.get("build_id")?,
        issue_id: c.get("issue_id")?,
        author: c.get("author")?,
        content: c.get("content")?,
        created_at: c.get("created_at")?,
    })
}

/// A `card_transactions` row.
pub(super) fn card_transaction(row: &SqliteRow) -> StoreResult<CardTransaction> {
    let c = Cols::new(row, "card_transactions", "an audit row");
    let id: i64 = c.get("id")?;
    let c = c.of(format!("audit row {id}"));
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

/// A `sessions` row.
pub(super) fn run(row: &SqliteRow) -> StoreResult<RunRecord> {
    let c = Cols::new(row, "sessions", "a run");
    let id: String = c.get("id")?;
    let c = c.of(format!("run {id}"));
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

/// A `turns` row.
pub(super) fn turn(row: &SqliteRow) -> StoreResult<TurnRecord> {
    let c = Cols::new(row, "turns", "a turn");
    let id: i64 = c.get("id")?;
    let c = c.of(format!("turn {id}"));
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
        },
    })
}

/// An `events` row.
pub(super) fn event(row: &SqliteRow) -> StoreResult<EventRecord> {
    let c = Cols::new(row, "events", "an event");
    let id: i64 = c.get("id")?;
    let c = c.of(format!("event {id}"));
    let name: String = c.get("event")?;
    let data: serde_json::Value = c.json("data")?;
    Ok(EventRecord {
        id,
        run_id: c.get("run_id")?,
        timestamp: c.get("timestamp")?,
        role: c.get("role")?,
        issue_id: c.get("issue_id")?,
        event: Event::from_parts(&name, data).map_err(|e| c.corrupt("data", e))?,
    })
}

/// A `session_snapshots` row.
pub(super) fn snapshot(row: &SqliteRow) -> StoreResult<SnapshotRecord> {
    let c = Cols::new(row, "session_snapshots", "a snapshot");
    let id: i64 = c.get("id")?;
    let c = c.of(format!("snapshot {id}"));
    Ok(SnapshotRecord {
        id,
        run_id: c.get("run_id")?,
        created_at: c.get("created_at")?,
        data: c.json("data")?,
    })
}

/// A `success_ledger` row.
pub(super) fn success(row: &SqliteRow) -> StoreResult<SuccessRecord> {
    let c = Cols::new(row, "success_ledger", "a success row");
    let id: i64 = c.get("id")?;
    let c = c.of(format!("success row {id}"));
    Ok(SuccessRecord {
        id,
        run_id: c.get("run_id")?,
        build_id: c.get("build_id")?,
        card: c.get("card")?,
        recorded_at: c.get("recorded_at")?,
        data: c.json("data")?,
    })
}

/// A `memory` row joined with its `score` (shared words with a query).
pub(super) fn memory(row: &SqliteRow) -> StoreResult<MemoryRecord> {
    let c = Cols::new(row, "memory", "a memory entry");
    let id: i64 = c.get("id")?;
    let c = c.of(format!("memory entry {id}"));
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

/// A `pending_approvals` row.
pub(super) fn approval(row: &SqliteRow) -> StoreResult<ApprovalRecord> {
    let c = Cols::new(row, "pending_approvals", "an approval");
    let id: i64 = c.get("id")?;
    let c = c.of(format!("approval {id}"));
    let result: Option<String> = c.get("result")?;
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
        result: match result {
            Some(raw) => Some(
                serde_json::from_str(&raw)
                    .map_err(|err| c.corrupt("result", format!("invalid JSON {raw:?}: {err}")))?,
            ),
            None => None,
        },
        created_at: c.get("created_at")?,
        decided_at: c.get("decided_at")?,
    })
}

/// Maps every row with `map`, stopping at the first failure.
pub(super) fn all<T>(
    rows: &[SqliteRow],
    map: fn(&SqliteRow) -> StoreResult<T>,
) -> StoreResult<Vec<T>> {
    rows.iter().map(map).collect()
}

/// A `sandboxes` row.
pub(super) fn sandbox(row: &SqliteRow) -> StoreResult<SandboxRecord> {
    let c = Cols::new(row, "sandboxes", "a sandbox");
    let id: String = c.get("id")?;
    let c = c.of(format!("sandbox {id}"));
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
