//! The writes behind `Change`, each run inside the batch's write transaction.

use super::rows;
use crate::change::{Applied, Change};
use crate::error::{StoreError, StoreResult};
use crate::records::{
    BuildRecord, ColumnValue, Comment, IssueRecord, IssueUpdate, NewEvent, NewTurn, RunRecord,
    RunUpdate,
};
use crate::sandbox::SandboxRecord;
use crate::words::memory_words;
use orket_core::lifecycle::derive_epic_status;
use orket_core::time::now_timestamp;
use orket_core::Status;
use serde_json::{json, Value};
use sqlx::{QueryBuilder, Sqlite, SqliteConnection};

/// The next version of a build's issues (closed with the build id and `)`): every change to an
/// issue gives it this, so `Store::tick_state` can read only what changed.
const NEXT_VERSION: &str = "(SELECT COALESCE(MAX(version), 0) + 1 FROM issues WHERE build_id = ";

/// The role recorded for changes the engine makes without an acting seat.
const ENGINE_ROLE: &str = "orket";

/// Applies one change of a batch.
pub(super) async fn apply_change(
    conn: &mut SqliteConnection,
    change: Change,
) -> StoreResult<Applied> {
    Ok(match change {
        Change::UpsertBuild(build) => {
            upsert_build(conn, &build).await?;
            Applied::Done
        }
        Change::InsertIssue(issue) => {
            insert_issue(conn, &issue).await?;
            Applied::Done
        }
        Change::UpdateIssue {
            build_id,
            id,
            update,
        } => Applied::Issue(Box::new(update_issue(conn, &build_id, &id, &update).await?)),
        Change::AddCredits {
            build_id,
            id,
            amount,
            actor,
        } => Applied::Issue(Box::new(
            add_credits(conn, &build_id, &id, amount, &actor).await?,
        )),
        Change::AddComment {
            build_id,
            issue_id,
            author,
            content,
        } => Applied::Comment(add_comment(conn, build_id, issue_id, author, content).await?),
        Change::DeleteBuildIssues { build_id } => {
            delete_build_issues(conn, &build_id).await?;
            Applied::Done
        }
        Change::CreateRun(run) => {
            create_run(conn, &run).await?;
            Applied::Done
        }
        Change::UpdateRun { id, update } => {
            update_run(conn, &id, &update).await?;
            Applied::Done
        }
        Change::RequestHalt { run_id } => {
            request_halt(conn, &run_id).await?;
            Applied::Done
        }
        Change::AppendTurn(turn) => Applied::Id(append_turn(conn, &turn).await?),
        Change::AppendEvent(event) => Applied::Id(append_event(conn, event).await?),
        Change::SaveSnapshot { run_id, data } => Applied::Id(
            sqlx::query_scalar(
                "INSERT INTO session_snapshots (run_id, created_at, data) \
                 VALUES (?, ?, ?) RETURNING id",
            )
            .bind(run_id)
            .bind(now_timestamp())
            .bind(data.to_string())
            .fetch_one(&mut *conn)
            .await?,
        ),
        Change::RecordSuccess {
            run_id,
            build_id,
            card,
            data,
        } => Applied::Id(
            sqlx::query_scalar(
                "INSERT INTO success_ledger (run_id, build_id, card, recorded_at, data) \
                 VALUES (?, ?, ?, ?, ?) RETURNING id",
            )
            .bind(run_id)
            .bind(build_id)
            .bind(card)
            .bind(now_timestamp())
            .bind(data.to_string())
            .fetch_one(&mut *conn)
            .await?,
        ),
        Change::Remember {
            content,
            role,
            issue_id,
            run_id,
        } => Applied::Id(remember(conn, content, role, issue_id, run_id).await?),
        Change::RequestApproval(call) => Applied::Id(
            sqlx::query_scalar(
                "INSERT INTO pending_approvals (run_id, build_id, issue_id, role, seat, tool, \
                 args, resume_status, status, created_at) \
                 VALUES (?, ?, ?, ?, ?, ?, ?, ?, 'pending', ?) RETURNING id",
            )
            .bind(call.run_id)
            .bind(call.build_id)
            .bind(call.issue_id)
            .bind(call.role)
            .bind(call.seat)
            .bind(call.tool)
            .bind(call.args.to_string())
            .bind(call.resume_status.as_str())
            .bind(now_timestamp())
            .fetch_one(&mut *conn)
            .await?,
        ),
        Change::ClaimApproval { id } => {
            move_approval(conn, id, "pending", "deciding").await?;
            Applied::Done
        }
        Change::ReleaseApproval { id } => {
            move_approval(conn, id, "deciding", "pending").await?;
            Applied::Done
        }
        Change::DecideApproval {
            id,
            status,
            reason,
            result,
        } => {
            decide_approval(conn, id, &status, reason, result).await?;
            Applied::Done
        }
        Change::InsertSandbox(sandbox) => {
            insert_sandbox(conn, &sandbox).await?;
            Applied::Done
        }
        Change::UpdateSandbox { id, status, reason } => {
            let done = sqlx::query(
                "UPDATE sandboxes SET status = ?, reason = ?, updated_at = ? WHERE id = ?",
            )
            .bind(status.as_str())
            .bind(reason)
            .bind(now_timestamp())
            .bind(&id)
            .execute(&mut *conn)
            .await
            .map_err(|e| {
                conflict_on_duplicate(e, || {
                    format!("sandbox {id}: its port slot is held by another sandbox")
                })
            })?;
            if done.rows_affected() == 0 {
                return Err(StoreError::NotFound {
                    what: "sandbox",
                    id,
                });
            }
            Applied::Done
        }
    })
}

/// Why a compare-and-set on approval `id` matched no row: `NotFound`, or a `Conflict` naming
/// its status.
async fn approval_refusal(conn: &mut SqliteConnection, id: i64) -> StoreResult<StoreError> {
    let current: Option<String> =
        sqlx::query_scalar("SELECT status FROM pending_approvals WHERE id = ?")
            .bind(id)
            .fetch_optional(&mut *conn)
            .await?;
    Ok(match current.as_deref() {
        None => StoreError::NotFound {
            what: "approval",
            id: id.to_string(),
        },
        Some("deciding") => {
            StoreError::Conflict(format!("approval {id} is being decided right now"))
        }
        Some(other) => StoreError::Conflict(format!("approval {id} is already {other}")),
    })
}

/// Moves approval `id` from `from` to `to` in one statement (compare and set).
async fn move_approval(
    conn: &mut SqliteConnection,
    id: i64,
    from: &str,
    to: &str,
) -> StoreResult<()> {
    let done = sqlx::query("UPDATE pending_approvals SET status = ? WHERE id = ? AND status = ?")
        .bind(to)
        .bind(id)
        .bind(from)
        .execute(&mut *conn)
        .await?;
    if done.rows_affected() == 0 {
        return Err(approval_refusal(conn, id).await?);
    }
    Ok(())
}

/// Decides a claimed (`deciding`) approval; refuses one not claimed or already decided.
async fn decide_approval(
    conn: &mut SqliteConnection,
    id: i64,
    status: &str,
    reason: Option<String>,
    result: Option<Value>,
) -> StoreResult<()> {
    let done = sqlx::query(
        "UPDATE pending_approvals SET status = ?, reason = ?, result = ?, decided_at = ? \
         WHERE id = ? AND status = 'deciding'",
    )
    .bind(status)
    .bind(reason)
    .bind(result.map(|r| r.to_string()))
    .bind(now_timestamp())
    .bind(id)
    .execute(&mut *conn)
    .await?;
    if done.rows_affected() == 0 {
        return Err(match approval_refusal(conn, id).await? {
            StoreError::Conflict(m) if m.ends_with("pending") => StoreError::Conflict(format!(
                "approval {id} is pending: claim it (ClaimApproval) before deciding it"
            )),
            other => other,
        });
    }
    Ok(())
}

/// An issue as stored, read inside the current transaction.
pub(super) async fn get_issue(
    conn: &mut SqliteConnection,
    build_id: &str,
    id: &str,
) -> StoreResult<Option<IssueRecord>> {
    sqlx::query("SELECT * FROM issues WHERE build_id = ? AND id = ?")
        .bind(build_id)
        .bind(id)
        .fetch_optional(&mut *conn)
        .await?
        .as_ref()
        .map(rows::issue)
        .transpose()
}

async fn require_issue(
    conn: &mut SqliteConnection,
    build_id: &str,
    id: &str,
) -> StoreResult<IssueRecord> {
    get_issue(conn, build_id, id)
        .await?
        .ok_or_else(|| issue_not_found(build_id, id))
}

fn issue_not_found(build_id: &str, id: &str) -> StoreError {
    StoreError::NotFound {
        what: "issue",
        id: format!("{build_id}/{id}"),
    }
}

async fn insert_sandbox(conn: &mut SqliteConnection, s: &SandboxRecord) -> StoreResult<()> {
    sqlx::query(
        "INSERT INTO sandboxes (id, run_id, build_id, epic, stack, slot, api_port, frontend_port, \
         db_port, admin_port, status, reason, project_name, compose_file, workspace, created_at, \
         updated_at) VALUES (?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?)",
    )
    .bind(&s.id)
    .bind(&s.run_id)
    .bind(&s.build_id)
    .bind(&s.epic)
    .bind(&s.stack)
    .bind(i64::from(s.slot))
    .bind(i64::from(s.ports.api))
    .bind(i64::from(s.ports.frontend))
    .bind(i64::from(s.ports.db))
    .bind(i64::from(s.ports.admin))
    .bind(s.status.as_str())
    .bind(&s.reason)
    .bind(&s.project_name)
    .bind(&s.compose_file)
    .bind(&s.workspace)
    .bind(&s.created_at)
    .bind(&s.updated_at)
    .execute(&mut *conn)
    .await
    .map_err(|e| {
        conflict_on_duplicate(e, || {
            format!(
                "sandbox {}: its id exists or slot {} (ports {:?}) is held by another sandbox",
                s.id,
                s.slot,
                s.ports.all()
            )
        })
    })?;
    Ok(())
}

/// Turns a unique-key violation into a `Conflict` described by `message`.
fn conflict_on_duplicate(err: sqlx::Error, message: impl FnOnce() -> String) -> StoreError {
    match &err {
        sqlx::Error::Database(db) if db.is_unique_violation() => StoreError::Conflict(message()),
        _ => StoreError::Database(err),
    }
}

fn push_value(qb: &mut QueryBuilder<'_, Sqlite>, value: ColumnValue) {
    match value {
        ColumnValue::Null => qb.push_bind(None::<String>),
        ColumnValue::Text(text) => qb.push_bind(text),
        ColumnValue::Real(real) => qb.push_bind(real),
        ColumnValue::Int(int) => qb.push_bind(int),
    };
}

/// One audit row.
struct Audit<'a> {
    build_id: &'a str,
    card_id: &'a str,
    role: &'a str,
    action: &'a str,
    from: Option<Status>,
    to: Option<Status>,
    detail: Value,
}

async fn audit(conn: &mut SqliteConnection, row: Audit<'_>) -> StoreResult<()> {
    sqlx::query(
        "INSERT INTO card_transactions \
         (build_id, card_id, role, action, from_status, to_status, detail, timestamp) \
         VALUES (?, ?, ?, ?, ?, ?, ?, ?)",
    )
    .bind(row.build_id)
    .bind(row.card_id)
    .bind(row.role)
    .bind(row.action)
    .bind(row.from.map(Status::as_str))
    .bind(row.to.map(Status::as_str))
    .bind(row.detail.to_string())
    .bind(now_timestamp())
    .execute(&mut *conn)
    .await?;
    Ok(())
}

/// The status an epic build derives from its issues. The derivation depends only on which
/// statuses occur, so one row per distinct status is read (a large build stays cheap).
async fn derived_status(conn: &mut SqliteConnection, build_id: &str) -> StoreResult<Status> {
    let issues = sqlx::query(
        "SELECT build_id, MIN(id) AS id, status FROM issues WHERE build_id = ? GROUP BY status",
    )
    .bind(build_id)
    .fetch_all(&mut *conn)
    .await?;
    Ok(derive_epic_status(&rows::all(&issues, rows::issue_status)?))
}

/// Derives an epic build's status from its issues again; audits and stores it when it changes.
/// Builds of other kinds, and missing builds, are left alone.
async fn refresh_build_status(
    conn: &mut SqliteConnection,
    build_id: &str,
    actor: &str,
) -> StoreResult<()> {
    let build: Option<(String, String, String)> =
        sqlx::query_as("SELECT kind, card, status FROM builds WHERE id = ?")
            .bind(build_id)
            .fetch_optional(&mut *conn)
            .await?;
    let Some((kind, card, stored)) = build else {
        return Ok(());
    };
    if kind != "epic" {
        return Ok(());
    }
    let derived = derived_status(conn, build_id).await?;
    if stored == derived.as_str() {
        return Ok(());
    }
    sqlx::query("UPDATE builds SET status = ?, updated_at = ? WHERE id = ?")
        .bind(derived.as_str())
        .bind(now_timestamp())
        .bind(build_id)
        .execute(&mut *conn)
        .await?;
    let audit_row = Audit {
        build_id,
        card_id: &card,
        role: actor,
        action: "status_derived",
        from: stored.parse().ok(),
        to: Some(derived),
        detail: json!({ "build": build_id }),
    };
    audit(conn, audit_row).await
}

/// Creates or replaces a build; an epic build takes the status derived from its issues.
/// A changed status of an existing build is audited.
async fn upsert_build(conn: &mut SqliteConnection, build: &BuildRecord) -> StoreResult<()> {
    let previous: Option<String> = sqlx::query_scalar("SELECT status FROM builds WHERE id = ?")
        .bind(&build.id)
        .fetch_optional(&mut *conn)
        .await?;
    let status = if build.kind == "epic" {
        derived_status(conn, &build.id).await?
    } else {
        build.status
    };
    sqlx::query(
        "INSERT INTO builds (id, kind, card, department, status, created_at, updated_at) \
         VALUES (?, ?, ?, ?, ?, ?, ?) \
         ON CONFLICT (id) DO UPDATE SET kind = excluded.kind, card = excluded.card, \
         department = excluded.department, status = excluded.status, \
         updated_at = excluded.updated_at",
    )
    .bind(&build.id)
    .bind(&build.kind)
    .bind(&build.card)
    .bind(&build.department)
    .bind(status.as_str())
    .bind(&build.created_at)
    .bind(&build.updated_at)
    .execute(&mut *conn)
    .await?;
    match previous {
        Some(previous) if previous != status.as_str() => {
            let audit_row = Audit {
                build_id: &build.id,
                card_id: &build.card,
                role: ENGINE_ROLE,
                action: "status_change",
                from: previous.parse().ok(),
                to: Some(status),
                detail: json!({ "build": build.id }),
            };
            audit(conn, audit_row).await
        }
        _ => Ok(()),
    }
}

async fn insert_issue(conn: &mut SqliteConnection, issue: &IssueRecord) -> StoreResult<()> {
    if get_issue(conn, &issue.build_id, &issue.id).await?.is_some() {
        return Err(StoreError::Conflict(format!(
            "issue {}/{} already exists in issues",
            issue.build_id, issue.id
        )));
    }
    let columns = issue.columns();
    let mut qb = QueryBuilder::<Sqlite>::new("INSERT INTO issues (");
    for (column, _) in &columns {
        qb.push(*column).push(", ");
    }
    qb.push("position, version) VALUES (");
    for (_, value) in columns {
        push_value(&mut qb, value);
        qb.push(", ");
    }
    qb.push("(SELECT COALESCE(MAX(position), 0) + 1 FROM issues WHERE build_id = ")
        .push_bind(&issue.build_id)
        .push("), ")
        .push(NEXT_VERSION)
        .push_bind(&issue.build_id)
        .push("))");
    qb.build().execute(&mut *conn).await?;
    refresh_build_status(conn, &issue.build_id, ENGINE_ROLE).await
}

/// Writes the fields the patch sets (and `updated_at`); audits a status change and derives the
/// build's status again. A change to a status that needs no wait reason clears the stored one
/// unless the patch sets it. Returns the issue as it now stands.
async fn update_issue(
    conn: &mut SqliteConnection,
    build_id: &str,
    id: &str,
    update: &IssueUpdate,
) -> StoreResult<IssueRecord> {
    let current = require_issue(conn, build_id, id).await?;
    if let Some(expected) = update.expect_status {
        if expected != current.status {
            return Err(StoreError::Conflict(format!(
                "issue {build_id}/{id} is {}, not {expected} as expected; nothing was changed",
                current.status
            )));
        }
    }
    let clears_wait_reason = update.wait_reason.is_none()
        && update
            .status
            .is_some_and(|to| to != current.status && !to.needs_wait_reason());
    let mut qb = QueryBuilder::<Sqlite>::new("UPDATE issues SET updated_at = ");
    qb.push_bind(now_timestamp());
    qb.push(", version = ")
        .push(NEXT_VERSION)
        .push_bind(build_id)
        .push(")");
    for (column, value) in update.assignments() {
        qb.push(", ").push(column).push(" = ");
        push_value(&mut qb, value);
    }
    if clears_wait_reason {
        qb.push(", wait_reason = NULL");
    }
    qb.push(" WHERE build_id = ")
        .push_bind(build_id)
        .push(" AND id = ")
        .push_bind(id);
    qb.build().execute(&mut *conn).await?;

    if let Some(to) = update.status.filter(|to| *to != current.status) {
        let wait_reason = if clears_wait_reason {
            None
        } else {
            update.wait_reason.unwrap_or(current.wait_reason)
        };
        let audit_row = Audit {
            build_id,
            card_id: id,
            role: &update.actor,
            action: "status_change",
            from: Some(current.status),
            to: Some(to),
            detail: json!({ "wait_reason": wait_reason }),
        };
        audit(conn, audit_row).await?;
        refresh_build_status(conn, build_id, &update.actor).await?;
    }
    require_issue(conn, build_id, id).await
}

async fn add_credits(
    conn: &mut SqliteConnection,
    build_id: &str,
    id: &str,
    amount: f64,
    actor: &str,
) -> StoreResult<IssueRecord> {
    let updated = sqlx::query(
        "UPDATE issues SET credits_spent = credits_spent + ?, updated_at = ?, \
         version = (SELECT COALESCE(MAX(version), 0) + 1 FROM issues WHERE build_id = ?) \
         WHERE build_id = ? AND id = ?",
    )
    .bind(amount)
    .bind(now_timestamp())
    .bind(build_id)
    .bind(build_id)
    .bind(id)
    .execute(&mut *conn)
    .await?;
    if updated.rows_affected() == 0 {
        return Err(issue_not_found(build_id, id));
    }
    let issue = require_issue(conn, build_id, id).await?;
    let audit_row = Audit {
        build_id,
        card_id: id,
        role: actor,
        action: "report_credits",
        from: None,
        to: None,
        detail: json!({ "amount": amount, "credits_spent": issue.credits_spent }),
    };
    audit(conn, audit_row).await?;
    Ok(issue)
}

async fn add_comment(
    conn: &mut SqliteConnection,
    build_id: String,
    issue_id: String,
    author: String,
    content: String,
) -> StoreResult<Comment> {
    let exists: Option<i64> =
        sqlx::query_scalar("SELECT 1 FROM issues WHERE build_id = ? AND id = ?")
            .bind(&build_id)
            .bind(&issue_id)
            .fetch_optional(&mut *conn)
            .await?;
    if exists.is_none() {
        return Err(issue_not_found(&build_id, &issue_id));
    }
    let created_at = now_timestamp();
    let id = sqlx::query_scalar(
        "INSERT INTO comments (build_id, issue_id, author, content, created_at) \
         VALUES (?, ?, ?, ?, ?) RETURNING id",
    )
    .bind(&build_id)
    .bind(&issue_id)
    .bind(&author)
    .bind(&content)
    .bind(&created_at)
    .fetch_one(&mut *conn)
    .await?;
    Ok(Comment {
        id,
        build_id,
        issue_id,
        author,
        content,
        created_at,
    })
}

async fn delete_build_issues(conn: &mut SqliteConnection, build_id: &str) -> StoreResult<()> {
    for sql in [
        "DELETE FROM comments WHERE build_id = ?",
        "DELETE FROM issues WHERE build_id = ?",
    ] {
        sqlx::query(sql).bind(build_id).execute(&mut *conn).await?;
    }
    refresh_build_status(conn, build_id, ENGINE_ROLE).await
}

async fn create_run(conn: &mut SqliteConnection, run: &RunRecord) -> StoreResult<()> {
    sqlx::query(
        "INSERT INTO sessions (id, kind, target, build_id, department, workspace, status, \
         reason, params, started_at, updated_at, ended_at, halt_requested_at) \
         VALUES (?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?)",
    )
    .bind(&run.id)
    .bind(run.kind.as_str())
    .bind(&run.target)
    .bind(&run.build_id)
    .bind(&run.department)
    .bind(&run.workspace)
    .bind(run.status.as_str())
    .bind(&run.reason)
    .bind(run.params.to_string())
    .bind(&run.started_at)
    .bind(&run.updated_at)
    .bind(&run.ended_at)
    .bind(&run.halt_requested_at)
    .execute(&mut *conn)
    .await
    .map_err(|err| {
        conflict_on_duplicate(err, || format!("run {} already exists in sessions", run.id))
    })?;
    Ok(())
}

/// Marks a running run as asked to halt; a run that ended or does not exist is refused.
async fn request_halt(conn: &mut SqliteConnection, id: &str) -> StoreResult<()> {
    let done = sqlx::query(
        "UPDATE sessions SET halt_requested_at = COALESCE(halt_requested_at, ?) \
         WHERE id = ? AND status = 'running'",
    )
    .bind(now_timestamp())
    .bind(id)
    .execute(&mut *conn)
    .await?;
    if done.rows_affected() > 0 {
        return Ok(());
    }
    let status: Option<String> = sqlx::query_scalar("SELECT status FROM sessions WHERE id = ?")
        .bind(id)
        .fetch_optional(&mut *conn)
        .await?;
    Err(match status {
        None => StoreError::NotFound {
            what: "run",
            id: id.to_string(),
        },
        Some(status) => StoreError::Conflict(format!("run {id} already ended ({status})")),
    })
}

async fn update_run(conn: &mut SqliteConnection, id: &str, update: &RunUpdate) -> StoreResult<()> {
    let now = now_timestamp();
    let mut qb = QueryBuilder::<Sqlite>::new("UPDATE sessions SET updated_at = ");
    qb.push_bind(now.clone());
    if let Some(status) = update.status {
        qb.push(", status = ").push_bind(status.as_str());
        qb.push(", ended_at = ")
            .push_bind(status.is_final().then_some(now));
    }
    if let Some(reason) = &update.reason {
        qb.push(", reason = ").push_bind(reason.clone());
    }
    if let Some(params) = &update.params {
        qb.push(", params = ").push_bind(params.to_string());
    }
    qb.push(" WHERE id = ").push_bind(id);
    if qb.build().execute(&mut *conn).await?.rows_affected() == 0 {
        return Err(StoreError::NotFound {
            what: "run",
            id: id.to_string(),
        });
    }
    Ok(())
}

async fn append_turn(conn: &mut SqliteConnection, turn: &NewTurn) -> StoreResult<i64> {
    sqlx::query_scalar(
        "INSERT INTO turns (run_id, seq, build_id, issue_id, seat, role, model, review, \
         messages, content, tool_calls, tool_results, tokens_in, tokens_out, status, error, \
         started_at, ended_at) \
         VALUES (?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?) RETURNING id",
    )
    .bind(&turn.run_id)
    .bind(turn.seq)
    .bind(&turn.build_id)
    .bind(&turn.issue_id)
    .bind(&turn.seat)
    .bind(&turn.role)
    .bind(&turn.model)
    .bind(turn.review)
    .bind(turn.messages.to_string())
    .bind(&turn.content)
    .bind(rows::to_json(&turn.tool_calls))
    .bind(rows::to_json(&turn.tool_results))
    .bind(turn.tokens_in)
    .bind(turn.tokens_out)
    .bind(&turn.status)
    .bind(&turn.error)
    .bind(&turn.started_at)
    .bind(&turn.ended_at)
    .fetch_one(&mut *conn)
    .await
    .map_err(|err| {
        conflict_on_duplicate(err, || {
            format!(
                "turns: run {} already has a turn with seq {}",
                turn.run_id, turn.seq
            )
        })
    })
}

async fn append_event(conn: &mut SqliteConnection, event: NewEvent) -> StoreResult<i64> {
    let id = sqlx::query_scalar(
        "INSERT INTO events (run_id, timestamp, role, event, issue_id, data) \
         VALUES (?, ?, ?, ?, ?, ?) RETURNING id",
    )
    .bind(event.run_id)
    .bind(event.timestamp.unwrap_or_else(now_timestamp))
    .bind(event.role)
    .bind(event.event.name())
    .bind(event.issue_id)
    .bind(event.event.data().to_string())
    .fetch_one(&mut *conn)
    .await?;
    Ok(id)
}

async fn remember(
    conn: &mut SqliteConnection,
    content: String,
    role: Option<String>,
    issue_id: Option<String>,
    run_id: Option<String>,
) -> StoreResult<i64> {
    let words = memory_words(&content);
    let id: i64 = sqlx::query_scalar(
        "INSERT INTO memory (content, role, issue_id, run_id, created_at) \
         VALUES (?, ?, ?, ?, ?) RETURNING id",
    )
    .bind(content)
    .bind(role)
    .bind(issue_id)
    .bind(run_id)
    .bind(now_timestamp())
    .fetch_one(&mut *conn)
    .await?;
    for word in words {
        sqlx::query("INSERT INTO memory_words (memory_id, word) VALUES (?, ?)")
            .bind(id)
            .bind(word)
            .execute(&mut *conn)
            .await?;
    }
    Ok(id)
}
