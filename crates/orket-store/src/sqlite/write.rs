//! The writes behind `Change`: a batch runs on the writer thread as one `BEGIN IMMEDIATE`
//! transaction, with its audit rows and the derived statuses of the epic builds it touched.

use super::review;
use super::rows::{self, Audit, Layout};
use super::tx::{Begin, Tx};
use crate::change::{Applied, Change};
use crate::error::{StoreError, StoreResult};
use crate::ledger;
use crate::records::{ColumnValue, Comment, IssueRecord, IssueUpdate, RunUpdate};
use crate::words::memory_words;
use orket_core::lifecycle::derive_epic_status;
use orket_core::time::now_timestamp;
use orket_core::Status;
use rusqlite::{params, Connection, ErrorCode, OptionalExtension, ToSql};
use serde_json::{json, Value};

/// The next version of a build's issues (bound to the build id): every change to an issue gives
/// it this, so `Store::tick_state` can read only what changed.
const NEXT_VERSION: &str = "(SELECT COALESCE(MAX(version), 0) + 1 FROM issues WHERE build_id = ?)";

/// The role recorded for changes the engine makes without an acting seat.
const ENGINE_ROLE: &str = orket_core::ENGINE_ACTOR;

/// Applies `changes` in order as one transaction and returns what each produced. Taking the
/// write lock at `BEGIN` (`IMMEDIATE`) means two processes writing one file wait for each other
/// instead of failing to upgrade a read lock. Any error rolls the whole batch back.
pub(super) fn apply(conn: &Connection, changes: Vec<Change>) -> StoreResult<Vec<Applied>> {
    let tx = Tx::begin(conn, Begin::Write)?;
    let mut batch = Batch {
        conn: &tx,
        stale_builds: Vec::new(),
    };
    let mut applied = Vec::with_capacity(changes.len());
    for change in changes {
        applied.push(batch.apply(change)?);
    }
    batch.derive_build_statuses()?;
    tx.commit()?;
    Ok(applied)
}

/// A batch being applied inside its transaction.
struct Batch<'c> {
    conn: &'c Connection,
    /// Builds whose issues changed in a way that can change an epic build's derived status,
    /// with the actor of the last such change. Their statuses are derived once, at the end of
    /// the batch (and before a change that writes a build row): a transaction's intermediate
    /// states are never seen by anyone, so neither are their derived statuses.
    stale_builds: Vec<(String, String)>,
}

impl Batch<'_> {
    /// Applies one change of the batch.
    fn apply(&mut self, change: Change) -> StoreResult<Applied> {
        let conn = self.conn;
        Ok(match change {
            Change::UpsertBuild(build) => {
                self.derive_build_statuses()?;
                upsert_build(conn, &build)?;
                Applied::Done
            }
            Change::InsertIssue(issue) => {
                insert_issue(conn, &issue)?;
                self.stale(&issue.build_id, ENGINE_ROLE);
                Applied::Done
            }
            Change::UpdateIssue {
                build_id,
                id,
                update,
            } => {
                let (issue, status_changed) = update_issue(conn, &build_id, &id, &update)?;
                if status_changed {
                    self.stale(&build_id, &update.actor);
                }
                Applied::Issue(Box::new(issue))
            }
            Change::AddCredits {
                build_id,
                id,
                amount,
                actor,
            } => Applied::Issue(Box::new(add_credits(conn, &build_id, &id, amount, &actor)?)),
            Change::AddComment {
                build_id,
                issue_id,
                author,
                content,
            } => Applied::Comment(add_comment(conn, build_id, issue_id, author, content)?),
            Change::DeleteBuildIssues { build_id } => {
                for sql in [
                    "DELETE FROM comments WHERE build_id = ?",
                    "DELETE FROM issues WHERE build_id = ?",
                ] {
                    conn.prepare_cached(sql)?.execute([&build_id])?;
                }
                self.stale(&build_id, ENGINE_ROLE);
                Applied::Done
            }
            Change::CreateRun(run) => {
                rows::insert_run(conn, &run).map_err(|err| {
                    conflict_on_duplicate(err, || {
                        format!("run {} already exists in sessions", run.id)
                    })
                })?;
                Applied::Done
            }
            Change::UpdateRun { id, update } => {
                update_run(conn, &id, &update)?;
                Applied::Done
            }
            Change::RequestHalt { run_id } => {
                request_halt(conn, &run_id)?;
                Applied::Done
            }
            Change::AppendTurn(turn) => Applied::Id(append_turn(conn, &turn)?),
            Change::AppendEvent(event) => Applied::Id(rows::insert_event(conn, &event)?),
            Change::SaveSnapshot { run_id, data } => {
                Applied::Id(rows::insert_snapshot(conn, &run_id, &data)?)
            }
            Change::RecordSuccess {
                run_id,
                build_id,
                card,
                data,
            } => Applied::Id(rows::insert_success(
                conn, &run_id, &build_id, &card, &data,
            )?),
            Change::Remember {
                content,
                role,
                issue_id,
                run_id,
            } => Applied::Id(rows::insert_memory(
                conn,
                &content,
                role.as_deref(),
                issue_id.as_deref(),
                run_id.as_deref(),
                &memory_words(&content),
            )?),
            Change::RequestApproval(call) => Applied::Id(rows::insert_approval(conn, &call)?),
            Change::ClaimApproval { id } => {
                move_approval(conn, id, "pending", "deciding")?;
                Applied::Done
            }
            Change::ReleaseApproval { id } => {
                move_approval(conn, id, "deciding", "pending")?;
                Applied::Done
            }
            Change::DecideApproval {
                id,
                status,
                reason,
                result,
            } => {
                decide_approval(conn, id, &status, reason, result)?;
                Applied::Done
            }
            Change::TakeLease(request) => {
                super::lease::take(conn, &request)?;
                Applied::Done
            }
            Change::RenewLease { build_id, token } => {
                super::lease::renew(conn, &build_id, &token)?;
                Applied::Done
            }
            Change::ReleaseLease { build_id, token } => {
                super::lease::release(conn, &build_id, &token)?;
                Applied::Done
            }
            Change::RecordDelivery(delivery) => {
                Applied::Id(review::record_delivery(conn, &delivery)?)
            }
            Change::SetDeliveryOutcome {
                id,
                outcome,
                detail,
            } => {
                review::set_outcome(conn, id, &outcome, detail.as_deref())?;
                Applied::Done
            }
            Change::UpsertPullRequest(pr) => {
                review::upsert_pull_request(conn, &pr)?;
                Applied::Done
            }
            Change::NewReviewEpoch { repository, number } => {
                review::new_epoch(conn, &repository, number)?;
                Applied::Done
            }
            Change::RecordReview {
                repository,
                number,
                review: text,
            } => {
                review::record_review(conn, &repository, number, &text)?;
                Applied::Done
            }
            Change::AddReviewCycle {
                repository,
                number,
                reason,
                head_sha,
            } => Applied::Id(review::add_cycle(
                conn,
                &repository,
                number,
                &reason,
                head_sha.as_deref(),
            )?),
            Change::StartBugFixPhase(phase) => {
                super::bugfix::start(conn, &phase)?;
                Applied::Done
            }
            Change::UpdateBugFixPhase(phase) => {
                super::bugfix::update(conn, &phase)?;
                Applied::Done
            }
            Change::InsertSandbox(s) => {
                rows::insert_sandbox(conn, &s).map_err(|err| {
                    conflict_on_duplicate(err, || {
                        format!(
                            "sandbox {}: its id exists or slot {} (ports {:?}) is held by \
                             another sandbox",
                            s.id,
                            s.slot,
                            s.ports.all()
                        )
                    })
                })?;
                Applied::Done
            }
            Change::UpdateSandbox { id, status, reason } => {
                let updated = conn
                    .prepare_cached(
                        "UPDATE sandboxes SET status = ?, reason = ?, updated_at = ? WHERE id = ?",
                    )?
                    .execute(params![status.as_str(), reason, now_timestamp(), id])
                    .map_err(|err| {
                        conflict_on_duplicate(err, || {
                            format!("sandbox {id}: its port slot is held by another sandbox")
                        })
                    })?;
                if updated == 0 {
                    return Err(StoreError::NotFound {
                        what: "sandbox",
                        id,
                    });
                }
                Applied::Done
            }
        })
    }

    /// Notes that `build_id`'s derived status may have changed by `actor`'s change.
    fn stale(&mut self, build_id: &str, actor: &str) {
        match self.stale_builds.iter_mut().find(|(b, _)| b == build_id) {
            Some((_, last_actor)) => actor.clone_into(last_actor),
            None => self
                .stale_builds
                .push((build_id.to_string(), actor.to_string())),
        }
    }

    /// Derives the status of every stale build again.
    fn derive_build_statuses(&mut self) -> StoreResult<()> {
        for (build_id, actor) in std::mem::take(&mut self.stale_builds) {
            refresh_build_status(self.conn, &build_id, &actor)?;
        }
        Ok(())
    }
}

/// Whether `err` is a unique-key (or primary-key) violation.
fn is_unique_violation(err: &rusqlite::Error) -> bool {
    matches!(err, rusqlite::Error::SqliteFailure(e, _)
        if e.extended_code == rusqlite::ffi::SQLITE_CONSTRAINT_UNIQUE
            || e.extended_code == rusqlite::ffi::SQLITE_CONSTRAINT_PRIMARYKEY)
}

/// Whether `err` is a foreign-key violation.
fn is_foreign_key_violation(err: &rusqlite::Error) -> bool {
    matches!(err, rusqlite::Error::SqliteFailure(e, _)
        if e.code == ErrorCode::ConstraintViolation
            && e.extended_code == rusqlite::ffi::SQLITE_CONSTRAINT_FOREIGNKEY)
}

/// Turns a unique-key violation into a `Conflict` described by `message`.
fn conflict_on_duplicate(err: rusqlite::Error, message: impl FnOnce() -> String) -> StoreError {
    if is_unique_violation(&err) {
        StoreError::Conflict(message())
    } else {
        err.into()
    }
}

fn issue_not_found(build_id: &str, id: &str) -> StoreError {
    StoreError::NotFound {
        what: "issue",
        id: format!("{build_id}/{id}"),
    }
}

/// Why a compare-and-set on approval `id` matched no row: `NotFound`, or a `Conflict` naming
/// its status.
fn approval_refusal(conn: &Connection, id: i64) -> StoreResult<StoreError> {
    let current: Option<String> = conn
        .prepare_cached("SELECT status FROM pending_approvals WHERE id = ?")?
        .query_row([id], |row| row.get(0))
        .optional()?;
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
fn move_approval(conn: &Connection, id: i64, from: &str, to: &str) -> StoreResult<()> {
    let updated = conn
        .prepare_cached("UPDATE pending_approvals SET status = ? WHERE id = ? AND status = ?")?
        .execute(params![to, id, from])?;
    if updated == 0 {
        return Err(approval_refusal(conn, id)?);
    }
    Ok(())
}

/// Decides a claimed (`deciding`) approval; refuses one not claimed or already decided.
fn decide_approval(
    conn: &Connection,
    id: i64,
    status: &str,
    reason: Option<String>,
    result: Option<Value>,
) -> StoreResult<()> {
    let updated = conn
        .prepare_cached(
            "UPDATE pending_approvals SET status = ?, reason = ?, result = ?, decided_at = ? \
             WHERE id = ? AND status = 'deciding'",
        )?
        .execute(params![
            status,
            reason,
            result.as_ref().map(rows::Json),
            now_timestamp(),
            id
        ])?;
    if updated == 0 {
        return Err(match approval_refusal(conn, id)? {
            StoreError::Conflict(m) if m.ends_with("pending") => StoreError::Conflict(format!(
                "approval {id} is pending: claim it (ClaimApproval) before deciding it"
            )),
            other => other,
        });
    }
    Ok(())
}

fn audit(conn: &Connection, row: &Audit) -> StoreResult<()> {
    Ok(rows::insert_card_transaction(conn, row)?)
}

/// The distinct statuses of a build's issues, found by jumping along the index
/// `issues_build_status (build_id, status)` from one status to the next (a loose index scan):
/// a handful of index seeks whatever the build's size, where `GROUP BY status` visits every
/// issue of the build.
const BUILD_STATUSES: &str = "WITH RECURSIVE found(status) AS ( \
     SELECT MIN(status) FROM issues WHERE build_id = ?1 \
     UNION ALL \
     SELECT (SELECT MIN(status) FROM issues WHERE build_id = ?1 AND status > found.status) \
     FROM found WHERE found.status IS NOT NULL) \
     SELECT status FROM found WHERE status IS NOT NULL";

/// The status an epic build derives from its issues. The derivation depends only on which
/// statuses occur, so only those are read (a large build stays cheap).
fn derived_status(conn: &Connection, build_id: &str) -> StoreResult<Status> {
    let mut statement = conn.prepare_cached(BUILD_STATUSES)?;
    let mut found = statement.query([build_id])?;
    let mut statuses = Vec::new();
    while let Some(row) = found.next()? {
        let raw: String = row.get(0)?;
        match raw.parse() {
            Ok(status) => statuses.push(status),
            Err(_) => return Err(corrupt_status(conn, build_id, &raw)),
        }
    }
    Ok(derive_epic_status(&statuses))
}

/// The error for an unknown stored status, naming an issue that has it.
fn corrupt_status(conn: &Connection, build_id: &str, raw: &str) -> StoreError {
    let named = conn
        .prepare_cached(
            "SELECT build_id, id, status FROM issues WHERE build_id = ? AND status = ? LIMIT 1",
        )
        .and_then(|mut statement| {
            statement.query_row([build_id, raw], |row| {
                Ok(rows::issue_status(row, &Layout::default()))
            })
        });
    match named {
        Ok(Err(err)) => err,
        Ok(Ok(_)) => StoreError::Unexpected(format!("status {raw:?} parsed on second reading")),
        Err(err) => err.into(),
    }
}

/// Derives an epic build's status from its issues again; audits and stores it when it changes.
/// Builds of other kinds, and missing builds, are left alone.
fn refresh_build_status(conn: &Connection, build_id: &str, actor: &str) -> StoreResult<()> {
    let build: Option<(String, String, String)> = conn
        .prepare_cached("SELECT kind, card, status FROM builds WHERE id = ?")?
        .query_row([build_id], |row| {
            Ok((row.get(0)?, row.get(1)?, row.get(2)?))
        })
        .optional()?;
    let Some((kind, card, stored)) = build else {
        return Ok(());
    };
    if kind != "epic" {
        return Ok(());
    }
    let derived = derived_status(conn, build_id)?;
    if stored == derived.as_str() {
        return Ok(());
    }
    conn.prepare_cached("UPDATE builds SET status = ?, updated_at = ? WHERE id = ?")?
        .execute(params![derived.as_str(), now_timestamp(), build_id])?;
    let audit_row = Audit {
        build_id,
        card_id: &card,
        role: actor,
        action: "status_derived",
        from: stored.parse().ok(),
        to: Some(derived),
        detail: json!({ "build": build_id }),
    };
    audit(conn, &audit_row)
}

/// Creates or replaces a build; an epic build takes the status derived from its issues.
/// A changed status of an existing build is audited.
fn upsert_build(conn: &Connection, build: &crate::records::BuildRecord) -> StoreResult<()> {
    let previous: Option<String> = conn
        .prepare_cached("SELECT status FROM builds WHERE id = ?")?
        .query_row([&build.id], |row| row.get(0))
        .optional()?;
    let status = if build.kind == "epic" {
        derived_status(conn, &build.id)?
    } else {
        build.status
    };
    rows::upsert_build(conn, build, status)?;
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
            audit(conn, &audit_row)
        }
        _ => Ok(()),
    }
}

/// Adds an issue at the end of its build with the build's next version; the primary key
/// refuses one that exists.
fn insert_issue(conn: &Connection, issue: &IssueRecord) -> StoreResult<()> {
    let columns = issue.columns();
    let mut sql = String::from("INSERT INTO issues (");
    for (column, _) in &columns {
        sql.push_str(column);
        sql.push_str(", ");
    }
    sql.push_str("position, version) VALUES (");
    sql.push_str(&"?, ".repeat(columns.len()));
    sql.push_str("(SELECT COALESCE(MAX(position), 0) + 1 FROM issues WHERE build_id = ?), ");
    sql.push_str(NEXT_VERSION);
    sql.push(')');
    let mut values: Vec<&dyn ToSql> = columns.iter().map(|(_, v)| v as &dyn ToSql).collect();
    values.extend([&issue.build_id as &dyn ToSql, &issue.build_id]);
    conn.prepare_cached(&sql)?
        .execute(values.as_slice())
        .map_err(|err| {
            conflict_on_duplicate(err, || {
                format!(
                    "issue {}/{} already exists in issues",
                    issue.build_id, issue.id
                )
            })
        })?;
    Ok(())
}

/// Writes the fields the patch sets (and `updated_at`, and the build's next version); audits a
/// status change. A change to a status that needs no wait reason clears the stored one unless
/// the patch sets it. Returns the issue as it now stands, and whether its status changed.
fn update_issue(
    conn: &Connection,
    build_id: &str,
    id: &str,
    update: &IssueUpdate,
) -> StoreResult<(IssueRecord, bool)> {
    // The stored status is needed only to check an expected one or to audit a change.
    let current = if update.expect_status.is_some() || update.status.is_some() {
        let state = conn
            .prepare_cached(
                "SELECT build_id, id, status, wait_reason FROM issues \
                 WHERE build_id = ? AND id = ?",
            )?
            .query_row([build_id, id], |row| {
                Ok(rows::issue_state(row, &Layout::default()))
            })
            .optional()?
            .transpose()?;
        Some(state.ok_or_else(|| issue_not_found(build_id, id))?)
    } else {
        None
    };
    if let (Some(expected), Some((stored, _))) = (update.expect_status, current) {
        if expected != stored {
            return Err(StoreError::Conflict(format!(
                "issue {build_id}/{id} is {stored}, not {expected} as expected; nothing was changed"
            )));
        }
    }
    let moved_to = match (update.status, current) {
        (Some(to), Some((from, wait_reason))) if to != from => Some((from, to, wait_reason)),
        _ => None,
    };
    let clears_wait_reason =
        update.wait_reason.is_none() && moved_to.is_some_and(|(_, to, _)| !to.needs_wait_reason());

    let issue = write_patch(conn, build_id, id, update, clears_wait_reason)?;
    if let Some((from, to, stored_reason)) = moved_to {
        let wait_reason = if clears_wait_reason {
            None
        } else {
            update.wait_reason.unwrap_or(stored_reason)
        };
        let audit_row = Audit {
            build_id,
            card_id: id,
            role: &update.actor,
            action: "status_change",
            from: Some(from),
            to: Some(to),
            detail: json!({ "wait_reason": wait_reason }),
        };
        audit(conn, &audit_row)?;
    }
    Ok((issue, moved_to.is_some()))
}

/// The `UPDATE` of a patch; returns the issue as it now stands (`NotFound` if it does not
/// exist).
fn write_patch(
    conn: &Connection,
    build_id: &str,
    id: &str,
    update: &IssueUpdate,
    clears_wait_reason: bool,
) -> StoreResult<IssueRecord> {
    let assignments = update.assignments();
    let mut sql = format!("UPDATE issues SET updated_at = ?, version = {NEXT_VERSION}");
    for (column, _) in &assignments {
        sql.push_str(", ");
        sql.push_str(column);
        sql.push_str(" = ?");
    }
    if clears_wait_reason {
        sql.push_str(", wait_reason = NULL");
    }
    sql.push_str(" WHERE build_id = ? AND id = ?");
    let now = ColumnValue::Text(now_timestamp());
    let mut values: Vec<&dyn ToSql> = vec![&now, &build_id];
    values.extend(assignments.iter().map(|(_, v)| v as &dyn ToSql));
    values.extend([&build_id as &dyn ToSql, &id]);
    let updated = conn.prepare_cached(&sql)?.execute(values.as_slice())?;
    updated_issue(conn, updated, build_id, id)
}

/// Adds credits to an issue in one statement (and gives it the build's next version); audits
/// them. Returns the issue as it now stands.
fn add_credits(
    conn: &Connection,
    build_id: &str,
    id: &str,
    amount: f64,
    actor: &str,
) -> StoreResult<IssueRecord> {
    let updated = conn
        .prepare_cached(&format!(
            "UPDATE issues SET credits_spent = credits_spent + ?, updated_at = ?, \
             version = {NEXT_VERSION} WHERE build_id = ? AND id = ?"
        ))?
        .execute(params![amount, now_timestamp(), build_id, build_id, id])?;
    let issue = updated_issue(conn, updated, build_id, id)?;
    let audit_row = Audit {
        build_id,
        card_id: id,
        role: actor,
        action: "report_credits",
        from: None,
        to: None,
        detail: json!({ "amount": amount, "credits_spent": issue.credits_spent }),
    };
    audit(conn, &audit_row)?;
    Ok(issue)
}

/// The issue an `UPDATE` of `updated` rows changed, read back (`NotFound` if it changed none).
/// A separate `SELECT` rather than `UPDATE ... RETURNING *`: SQLite runs a statement with
/// `RETURNING` to its end into a temporary table first, which made it the slower of the two.
fn updated_issue(
    conn: &Connection,
    updated: usize,
    build_id: &str,
    id: &str,
) -> StoreResult<IssueRecord> {
    let issue = match updated {
        0 => None,
        _ => super::read::issue(conn, build_id, id)?,
    };
    issue.ok_or_else(|| issue_not_found(build_id, id))
}

/// Adds a comment; the foreign key to its issue refuses one on a missing issue (`NotFound`).
fn add_comment(
    conn: &Connection,
    build_id: String,
    issue_id: String,
    author: String,
    content: String,
) -> StoreResult<Comment> {
    let mut comment = Comment {
        id: 0,
        build_id,
        issue_id,
        author,
        content,
        created_at: now_timestamp(),
    };
    comment.id = rows::insert_comment(conn, &comment).map_err(|err| {
        if is_foreign_key_violation(&err) {
            issue_not_found(&comment.build_id, &comment.issue_id)
        } else {
            err.into()
        }
    })?;
    Ok(comment)
}

/// Marks a running run as asked to halt; a run that ended or does not exist is refused.
fn request_halt(conn: &Connection, id: &str) -> StoreResult<()> {
    let updated = conn
        .prepare_cached(
            "UPDATE sessions SET halt_requested_at = COALESCE(halt_requested_at, ?) \
             WHERE id = ? AND status = 'running'",
        )?
        .execute(params![now_timestamp(), id])?;
    if updated > 0 {
        return Ok(());
    }
    let status: Option<String> = conn
        .prepare_cached("SELECT status FROM sessions WHERE id = ?")?
        .query_row([id], |row| row.get(0))
        .optional()?;
    Err(match status {
        None => StoreError::NotFound {
            what: "run",
            id: id.to_string(),
        },
        Some(status) => StoreError::Conflict(format!("run {id} already ended ({status})")),
    })
}

/// Appends a turn chained to the hash of the run's turn committed last, and makes the turn's
/// hash the run's ledger head.
fn append_turn(conn: &Connection, turn: &crate::records::NewTurn) -> StoreResult<i64> {
    let last: Option<String> = conn
        .prepare_cached(
            "SELECT hash FROM turns WHERE id = (SELECT MAX(id) FROM turns WHERE run_id = ?)",
        )?
        .query_row([&turn.run_id], |row| row.get(0))
        .optional()?
        .flatten();
    let prev = last.unwrap_or_else(|| ledger::GENESIS.to_string());
    let hash = ledger::turn_hash(&prev, turn);
    let id = rows::insert_turn(conn, turn, &prev, &hash).map_err(|err| {
        conflict_on_duplicate(err, || {
            format!(
                "turns: run {} already has a turn with seq {}",
                turn.run_id, turn.seq
            )
        })
    })?;
    conn.prepare_cached("UPDATE sessions SET ledger_head = ? WHERE id = ?")?
        .execute(params![hash, turn.run_id])?;
    Ok(id)
}

/// Patches a run; a status sets `ended_at` (cleared unless the status is final).
fn update_run(conn: &Connection, id: &str, update: &RunUpdate) -> StoreResult<()> {
    let now = now_timestamp();
    let status = update.status.map(|status| status.as_str());
    let ended_at = update
        .status
        .map(|status| status.is_final().then(|| now.clone()));
    let params = update.params.as_ref().map(rows::Json);
    let mut sql = String::from("UPDATE sessions SET updated_at = ?");
    let mut values: Vec<&dyn ToSql> = vec![&now];
    if let (Some(status), Some(ended_at)) = (&status, &ended_at) {
        sql.push_str(", status = ?, ended_at = ?");
        values.extend([status as &dyn ToSql, ended_at]);
    }
    if let Some(reason) = &update.reason {
        sql.push_str(", reason = ?");
        values.push(reason);
    }
    if let Some(params) = &params {
        sql.push_str(", params = ?");
        values.push(params);
    }
    sql.push_str(" WHERE id = ?");
    values.push(&id);
    let updated = conn.prepare_cached(&sql)?.execute(values.as_slice())?;
    if updated == 0 {
        return Err(StoreError::NotFound {
            what: "run",
            id: id.to_string(),
        });
    }
    Ok(())
}
