//! Rows into records on PostgreSQL: for each table, the function that reads a row into its
//! record, every stored value checked and `Corrupt` naming the row on failure. Columns are
//! looked up by name; JSON columns are decoded by [`Cols::json`], statuses and other names by
//! [`Cols::parse`], nowhere else.

use crate::bugfix::BugFixPhaseRecord;
use crate::error::{StoreError, StoreResult};
use crate::lease::{LeaseHolder, LeaseRecord};
use crate::records::{
    ApprovalRecord, BuildRecord, CardTransaction, Comment, EventRecord, IssueRecord, MemoryRecord,
    NewApproval, NewTurn, PastTurn, RunRecord, SnapshotRecord, SuccessRecord, TurnRecord,
};
use crate::review::{
    DeliveryRecord, NewDelivery, PullRequestChange, PullRequestRecord, ReviewCycle,
};
use crate::sandbox::{SandboxPorts, SandboxRecord};
use orket_core::{Event, Status, WaitReason};
use serde::de::DeserializeOwned;
use serde_json::Value;
use sqlx::postgres::PgRow;
use sqlx::{Decode, Postgres, Row, Type};
use std::fmt::Display;
use std::str::FromStr;

/// Typed access to one row's columns; failures name the table, column and row.
struct Cols<'a> {
    row: &'a PgRow,
    table: &'static str,
    owner: Owner<'a>,
}

/// The row an error names, formatted only when there is an error.
enum Owner<'a> {
    /// Before its key is read: `an issue`.
    Unknown(&'static str),
    /// `build build-login`, `comment 7`.
    Key(&'static str, &'a dyn Display),
    /// `issue build-login/ISSUE-1`.
    Issue(&'a str, &'a str),
    /// `pull request org/app#5`.
    PullRequest(&'a str, i64),
}

impl Display for Owner<'_> {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        match self {
            Owner::Unknown(what) => f.write_str(what),
            Owner::Key(what, key) => write!(f, "{what} {key}"),
            Owner::Issue(build_id, id) => write!(f, "issue {build_id}/{id}"),
            Owner::PullRequest(repository, number) => {
                write!(f, "pull request {repository}#{number}")
            }
        }
    }
}

impl<'a> Cols<'a> {
    fn new(row: &'a PgRow, table: &'static str, unknown: &'static str) -> Self {
        Cols {
            row,
            table,
            owner: Owner::Unknown(unknown),
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

    /// The same row, named as pull request `repository#number` in error messages.
    fn of_pull_request(self, repository: &'a str, number: i64) -> Self {
        Cols {
            owner: Owner::PullRequest(repository, number),
            ..self
        }
    }

    fn corrupt(&self, column: &str, message: impl Display) -> StoreError {
        StoreError::Corrupt {
            what: format!("{}.{column} of {}", self.table, self.owner),
            message: message.to_string(),
        }
    }

    /// A column's value: a missing column, a NULL where none is allowed or a value of another
    /// type is `Corrupt`.
    fn get<T: Decode<'a, Postgres> + Type<Postgres>>(
        &self,
        column: &'static str,
    ) -> StoreResult<T> {
        self.row
            .try_get(column)
            .map_err(|err| self.corrupt(column, err))
    }

    /// A TEXT column holding a name (a status, a kind).
    fn parse<T: FromStr>(&self, column: &'static str) -> StoreResult<T>
    where
        T::Err: Display,
    {
        let raw: &str = self.get(column)?;
        raw.parse().map_err(|err| self.corrupt(column, err))
    }

    /// A TEXT column holding a name, or NULL.
    fn parse_opt<T: FromStr>(&self, column: &'static str) -> StoreResult<Option<T>>
    where
        T::Err: Display,
    {
        let raw: Option<&str> = self.get(column)?;
        raw.map(|raw| raw.parse().map_err(|err| self.corrupt(column, err)))
            .transpose()
    }

    /// A JSON column, or NULL (the one place JSON is decoded).
    fn json_opt<T: DeserializeOwned>(&self, column: &'static str) -> StoreResult<Option<T>> {
        let raw: Option<&str> = self.get(column)?;
        raw.map(|raw| {
            serde_json::from_str(raw)
                .map_err(|err| self.corrupt(column, format!("invalid JSON {raw:?}: {err}")))
        })
        .transpose()
    }

    /// A JSON column.
    fn json<T: DeserializeOwned>(&self, column: &'static str) -> StoreResult<T> {
        self.json_opt(column)?
            .ok_or_else(|| self.corrupt(column, "NULL where JSON is expected"))
    }

    /// A BIGINT column holding a count, a port or a pid, checked to fit `T`.
    fn count<T: TryFrom<i64>>(&self, column: &'static str) -> StoreResult<T> {
        let n: i64 = self.get(column)?;
        T::try_from(n).map_err(|_| self.corrupt(column, format!("{n} is out of range")))
    }

    /// A BIGINT column holding a boolean: 0 is false, any other value true (as SQLite reads
    /// an INTEGER into a `bool`).
    fn flag(&self, column: &'static str) -> StoreResult<bool> {
        let n: i64 = self.get(column)?;
        Ok(n != 0)
    }
}

/// A `builds` row.
pub(super) fn build(row: &PgRow) -> StoreResult<BuildRecord> {
    let c = Cols::new(row, "builds", "a build");
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

/// An `issues` row.
pub(super) fn issue(row: &PgRow) -> StoreResult<IssueRecord> {
    let c = Cols::new(row, "issues", "an issue");
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
pub(super) fn issue_status(row: &PgRow) -> StoreResult<Status> {
    let c = Cols::new(row, "issues", "an issue");
    let build_id: String = c.get("build_id")?;
    let id: String = c.get("id")?;
    c.of_issue(&build_id, &id).parse("status")
}

/// The status and wait reason of an `issues` row read as `build_id, id, status, wait_reason`.
pub(super) fn issue_state(row: &PgRow) -> StoreResult<(Status, Option<WaitReason>)> {
    let c = Cols::new(row, "issues", "an issue");
    let build_id: String = c.get("build_id")?;
    let id: String = c.get("id")?;
    let c = c.of_issue(&build_id, &id);
    Ok((c.parse("status")?, c.parse_opt("wait_reason")?))
}

/// A `comments` row.
pub(super) fn comment(row: &PgRow) -> StoreResult<Comment> {
    let c = Cols::new(row, "comments", "a comment");
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

/// A `card_transactions` row.
pub(super) fn card_transaction(row: &PgRow) -> StoreResult<CardTransaction> {
    let c = Cols::new(row, "card_transactions", "an audit row");
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

/// A `sessions` row.
pub(super) fn run(row: &PgRow) -> StoreResult<RunRecord> {
    let c = Cols::new(row, "sessions", "a run");
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

/// A `turns` row.
pub(super) fn turn(row: &PgRow) -> StoreResult<TurnRecord> {
    let c = Cols::new(row, "turns", "a turn");
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
            review: c.flag("review")?,
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
        worker: c.get("worker")?,
    })
}

/// A turn's `seq`, `review`, `content`, `tool_calls` and `tool_results`.
pub(super) fn past_turn(row: &PgRow) -> StoreResult<PastTurn> {
    let c = Cols::new(row, "turns", "a turn");
    let seq: i64 = c.get("seq")?;
    let c = c.of("turn with seq", &seq);
    Ok(PastTurn {
        seq,
        review: c.flag("review")?,
        content: c.get("content")?,
        tool_calls: c.json("tool_calls")?,
        tool_results: c.json("tool_results")?,
    })
}

/// An `events` row.
pub(super) fn event(row: &PgRow) -> StoreResult<EventRecord> {
    let c = Cols::new(row, "events", "an event");
    let id: i64 = c.get("id")?;
    let c = c.of("event", &id);
    let name: &str = c.get("event")?;
    let data: Value = c.json("data")?;
    Ok(EventRecord {
        id,
        run_id: c.get("run_id")?,
        timestamp: c.get("timestamp")?,
        role: c.get("role")?,
        issue_id: c.get("issue_id")?,
        event: Event::from_parts(name, data).map_err(|e| c.corrupt("data", e))?,
    })
}

/// A `session_snapshots` row.
pub(super) fn snapshot(row: &PgRow) -> StoreResult<SnapshotRecord> {
    let c = Cols::new(row, "session_snapshots", "a snapshot");
    let id: i64 = c.get("id")?;
    let c = c.of("snapshot", &id);
    Ok(SnapshotRecord {
        id,
        run_id: c.get("run_id")?,
        created_at: c.get("created_at")?,
        data: c.json("data")?,
    })
}

/// A `success_ledger` row.
pub(super) fn success(row: &PgRow) -> StoreResult<SuccessRecord> {
    let c = Cols::new(row, "success_ledger", "a success row");
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

/// A `memory` row joined with its `score` (shared words with a query).
pub(super) fn memory(row: &PgRow) -> StoreResult<MemoryRecord> {
    let c = Cols::new(row, "memory", "a memory entry");
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

/// A `pending_approvals` row.
pub(super) fn approval(row: &PgRow) -> StoreResult<ApprovalRecord> {
    let c = Cols::new(row, "pending_approvals", "an approval");
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

/// A `sandboxes` row.
pub(super) fn sandbox(row: &PgRow) -> StoreResult<SandboxRecord> {
    let c = Cols::new(row, "sandboxes", "a sandbox");
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

/// A `build_leases` row.
pub(super) fn lease(row: &PgRow) -> StoreResult<LeaseRecord> {
    let c = Cols::new(row, "build_leases", "a lease");
    let build_id: String = c.get("build_id")?;
    let c = c.of("lease of build", &build_id);
    Ok(LeaseRecord {
        run_id: c.get("run_id")?,
        holder: LeaseHolder {
            token: c.get("holder")?,
            pid: c.count("pid")?,
            host: c.get("host")?,
        },
        taken_at: c.get("taken_at")?,
        heartbeat_at: c.get("heartbeat_at")?,
        build_id,
    })
}

/// A `webhook_deliveries` row.
pub(super) fn delivery(row: &PgRow) -> StoreResult<DeliveryRecord> {
    let c = Cols::new(row, "webhook_deliveries", "a delivery");
    let id: i64 = c.get("id")?;
    let c = c.of("delivery", &id);
    Ok(DeliveryRecord {
        id,
        delivery: NewDelivery {
            delivery_id: c.get("delivery_id")?,
            event: c.get("event")?,
            event_type: c.get("event_type")?,
            repository: c.get("repository")?,
            pr_number: c.get("pr_number")?,
            body_sha256: c.get("body_sha256")?,
            outcome: c.get("outcome")?,
        },
        detail: c.get("detail")?,
        received_at: c.get("received_at")?,
    })
}

/// A `pull_requests` row.
pub(super) fn pull_request(row: &PgRow) -> StoreResult<PullRequestRecord> {
    let c = Cols::new(row, "pull_requests", "a pull request");
    let repository: String = c.get("repository")?;
    let number: i64 = c.get("number")?;
    let c = c.of_pull_request(&repository, number);
    Ok(PullRequestRecord {
        epoch: c.get("epoch")?,
        last_review: c.get("last_review")?,
        updated_at: c.get("updated_at")?,
        pr: PullRequestChange {
            title: c.get("title")?,
            card_id: c.get("card_id")?,
            build_id: c.get("build_id")?,
            state: c.get("state")?,
            head_sha: c.get("head_sha")?,
            repository,
            number,
        },
    })
}

/// A `pr_review_cycles` row.
pub(super) fn review_cycle(row: &PgRow) -> StoreResult<ReviewCycle> {
    let c = Cols::new(row, "pr_review_cycles", "a review cycle");
    let id: i64 = c.get("id")?;
    let c = c.of("review cycle", &id);
    Ok(ReviewCycle {
        cycle: c.get("cycle")?,
        epoch: c.get("epoch")?,
        reason: c.get("reason")?,
        head_sha: c.get("head_sha")?,
        created_at: c.get("created_at")?,
    })
}

/// A `bug_fix_phases` row (the counts of bugs and critical bugs are read from its `bugs`).
pub(super) fn bug_fix_phase(row: &PgRow) -> StoreResult<BugFixPhaseRecord> {
    let c = Cols::new(row, "bug_fix_phases", "a bug-fix phase");
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
