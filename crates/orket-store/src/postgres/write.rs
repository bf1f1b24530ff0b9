//! The writes behind `Change` on PostgreSQL: a batch is one transaction that first takes the
//! store's advisory lock (batches apply one at a time across every process, as on SQLite's one
//! writer), with its audit rows and the derived statuses of the epic builds it touched.

use super::{lease, read, review, rows};
use crate::change::{Applied, Change};
use crate::error::{StoreError, StoreResult};
use crate::ledger;
use crate::records::{
    BuildRecord, ColumnValue, Comment, IssueRecord, IssueUpdate, NewApproval, NewEvent, NewTurn,
    RunRecord, RunUpdate,
};
use crate::sandbox::SandboxRecord;
use crate::words::memory_words;
use orket_core::lifecycle::derive_epic_status;
use orket_core::time::now_timestamp;
use orket_core::Status;
use serde::Serialize;
use serde_json::{json, Value};
use sqlx::{PgConnection, PgPool, Postgres, QueryBuilder};

/// The key of the advisory lock every batch holds until it commits ("orket" in ASCII).
pub(super) const BATCH_LOCK: i64 = 0x006f_726b_6574;

/// The role recorded for changes the engine makes without an acting seat.
const ENGINE_ROLE: &str = orket_core::ENGINE_ACTOR;

/// Applies `changes` in order as one transaction and returns what each produced. Any error
/// rolls the whole batch back (the transaction is dropped uncommitted).
pub(super) async fn apply(pool: &PgPool, changes: Vec<Change>) -> StoreResult<Vec<Applied>> {
    let mut tx = pool.begin().await?;
    let applied = apply_in(&mut tx, changes).await?;
    tx.commit().await?;
    Ok(applied)
}

/// Applies `changes` inside the open transaction `conn` (taking the batch lock first), for a
/// caller that commits more in the same transaction (a fleet worker's turn).
pub(super) async fn apply_in(
    conn: &mut PgConnection,
    changes: Vec<Change>,
) -> StoreResult<Vec<Applied>> {
    sqlx::query("SELECT pg_advisory_xact_lock($1)")
        .bind(BATCH_LOCK)
        .execute(&mut *conn)
        .await?;
    let mut batch = Batch {
        conn,
        stale_builds: Vec::new(),
    };
    let mut applied = Vec::with_capacity(changes.len());
    for change in changes {
        applied.push(batch.apply(change).await?);
    }
    batch.derive_build_statuses().await?;
    Ok(applied)
}

/// A batch being applied inside its transaction.
struct Batch<'c> {
    conn: &'c mut PgConnection,
    /// Builds whose issues changed in a way that can change an epic build's derived status,
    /// with the actor of the last such change; derived once at the end of the batch (and
    /// before a change that writes a build row), as on SQLite.
    stale_builds: Vec<(String, String)>,
}

impl Batch<'_> {
    /// Applies one change of the batch.
    async fn apply(&mut self, change: Change) -> StoreResult<Applied> {
        Ok(match change {
            Change::UpsertBuild(build) => {
                self.derive_build_statuses().await?;
                upsert_build(self.conn, &build).await?;
                Applied::Done
            }
            Change::InsertIssue(issue) => {
                insert_issue(self.conn, &issue).await?;
                self.stale(&issue.build_id, ENGINE_ROLE);
                Applied::Done
            }
            Change::UpdateIssue {
                build_id,
                id,
                update,
            } => {
                let (issue, status_changed) =
                    update_issue(self.conn, &build_id, &id, &update).await?;
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
            } => Applied::Issue(Box::new(
                add_credits(self.conn, &build_id, &id, amount, &actor).await?,
            )),
            Change::AddComment {
                build_id,
                issue_id,
                author,
                content,
            } => {
                Applied::Comment(add_comment(self.conn, build_id, issue_id, author, content).await?)
            }
            Change::DeleteBuildIssues { build_id } => {
                for sql in [
                    "DELETE FROM comments WHERE build_id = $1",
                    "DELETE FROM issues WHERE build_id = $1",
                ] {
                    sqlx::query(sql)
                        .bind(&build_id)
                        .execute(&mut *self.conn)
                        .await?;
                }
                self.stale(&build_id, ENGINE_ROLE);
                Applied::Done
            }
            Change::CreateRun(run) => {
                insert_run(self.conn, &run).await.map_err(|err| {
                    conflict_on_duplicate(err, || {
                        format!("run {} already exists in sessions", run.id)
                    })
                })?;
                Applied::Done
            }
            Change::UpdateRun { id, update } => {
                update_run(self.conn, &id, &update).await?;
                Applied::Done
            }
            Change::RequestHalt { run_id } => {
                request_halt(self.conn, &run_id).await?;
                Applied::Done
            }
            Change::AppendTurn(turn) => Applied::Id(append_turn(self.conn, &turn).await?),
            Change::AppendEvent(event) => Applied::Id(insert_event(self.conn, &event).await?),
            Change::SaveSnapshot { run_id, data } => Applied::Id(
                returning_id(
                    sqlx::query_scalar(
                        "INSERT INTO session_snapshots (run_id, created_at, data) \
                         VALUES ($1, $2, $3) RETURNING id",
                    )
                    .bind(run_id)
                    .bind(now_timestamp())
                    .bind(json_text(&data)?),
                    self.conn,
                )
                .await?,
            ),
            Change::RecordSuccess {
                run_id,
                build_id,
                card,
                data,
            } => Applied::Id(
                returning_id(
                    sqlx::query_scalar(
                        "INSERT INTO success_ledger (run_id, build_id, card, recorded_at, data) \
                         VALUES ($1, $2, $3, $4, $5) RETURNING id",
                    )
                    .bind(run_id)
                    .bind(build_id)
                    .bind(card)
                    .bind(now_timestamp())
                    .bind(json_text(&data)?),
                    self.conn,
                )
                .await?,
            ),
            Change::Remember {
                content,
                role,
                issue_id,
                run_id,
            } => Applied::Id(remember(self.conn, &content, role, issue_id, run_id).await?),
            Change::RequestApproval(call) => Applied::Id(insert_approval(self.conn, &call).await?),
            Change::ClaimApproval { id } => {
                move_approval(self.conn, id, "pending", "deciding").await?;
                Applied::Done
            }
            Change::ReleaseApproval { id } => {
                move_approval(self.conn, id, "deciding", "pending").await?;
                Applied::Done
            }
            Change::DecideApproval {
                id,
                status,
                reason,
                result,
            } => {
                decide_approval(self.conn, id, &status, reason, result).await?;
                Applied::Done
            }
            Change::TakeLease(request) => {
                lease::take(self.conn, &request).await?;
                Applied::Done
            }
            Change::RenewLease { build_id, token } => {
                lease::renew(self.conn, &build_id, &token).await?;
                Applied::Done
            }
            Change::ReleaseLease { build_id, token } => {
                lease::release(self.conn, &build_id, &token).await?;
                Applied::Done
            }
            Change::RecordDelivery(delivery) => {
                Applied::Id(review::record_delivery(self.conn, &delivery).await?)
            }
            Change::SetDeliveryOutcome {
                id,
                outcome,
                detail,
            } => {
                review::set_outcome(self.conn, id, &outcome, detail.as_deref()).await?;
                Applied::Done
            }
            Change::UpsertPullRequest(pr) => {
                review::upsert_pull_request(self.conn, &pr).await?;
                Applied::Done
            }
            Change::NewReviewEpoch { repository, number } => {
                review::new_epoch(self.conn, &repository, number).await?;
                Applied::Done
            }
            Change::RecordReview {
                repository,
                number,
                review: text,
            } => {
                review::record_review(self.conn, &repository, number, &text).await?;
                Applied::Done
            }
            Change::AddReviewCycle {
                repository,
                number,
                reason,
                head_sha,
            } => Applied::Id(
                review::add_cycle(self.conn, &repository, number, &reason, head_sha.as_deref())
                    .await?,
            ),
            Change::StartBugFixPhase(phase) => {
                super::bugfix::start(self.conn, &phase).await?;
                Applied::Done
            }
            Change::UpdateBugFixPhase(phase) => {
                super::bugfix::update(self.conn, &phase).await?;
                Applied::Done
            }
            Change::InsertSandbox(s) => {
                insert_sandbox(self.conn, &s).await.map_err(|err| {
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
                let updated = sqlx::query(
                    "UPDATE sandboxes SET status = $1, reason = $2, updated_at = $3 WHERE id = $4",
                )
                .bind(status.as_str())
                .bind(reason)
                .bind(now_timestamp())
                .bind(&id)
                .execute(&mut *self.conn)
                .await
                .map_err(|err| {
                    conflict_on_duplicate(err, || {
                        format!("sandbox {id}: its port slot is held by another sandbox")
                    })
                })?;
                if updated.rows_affected() == 0 {
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
    async fn derive_build_statuses(&mut self) -> StoreResult<()> {
        for (build_id, actor) in std::mem::take(&mut self.stale_builds) {
            refresh_build_status(self.conn, &build_id, &actor).await?;
        }
        Ok(())
    }
}

/// The id an `INSERT ... RETURNING id` gives.
async fn returning_id<'q>(
    query: sqlx::query::QueryScalar<'q, Postgres, i64, sqlx::postgres::PgArguments>,
    conn: &mut PgConnection,
) -> StoreResult<i64> {
    Ok(query.fetch_one(conn).await?)
}

/// A value written to a JSON column (the one place JSON is encoded on PostgreSQL).
pub(super) fn json_text<T: Serialize + ?Sized>(value: &T) -> StoreResult<String> {
    serde_json::to_string(value)
        .map_err(|err| StoreError::Unexpected(format!("a value does not encode as JSON: {err}")))
}

/// Whether `err` is a unique-key (or primary-key) violation.
fn is_unique_violation(err: &sqlx::Error) -> bool {
    err.as_database_error()
        .is_some_and(|e| e.is_unique_violation())
}

/// Turns a unique-key violation into a `Conflict` described by `message`.
pub(super) fn conflict_on_duplicate(
    err: sqlx::Error,
    message: impl FnOnce() -> String,
) -> StoreError {
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

/// Binds a column value of a record or a patch.
fn push_column(query: &mut QueryBuilder<'_, Postgres>, value: &ColumnValue) {
    match value {
        ColumnValue::Null => query.push_bind(None::<String>),
        ColumnValue::Text(text) => query.push_bind(text.clone()),
        ColumnValue::Real(real) => query.push_bind(*real),
        ColumnValue::Int(int) => query.push_bind(*int),
    };
}

/// The next version of a build's issues: every change to an issue gives it this, so
/// `Store::tick_state` can read only what changed.
fn push_next_version(query: &mut QueryBuilder<'_, Postgres>, build_id: &str) {
    query.push("(SELECT COALESCE(MAX(version), 0) + 1 FROM issues WHERE build_id = ");
    query.push_bind(build_id.to_string());
    query.push(")");
}

/// One audit row to write, stamped now.
struct Audit<'a> {
    build_id: &'a str,
    card_id: &'a str,
    role: &'a str,
    action: &'a str,
    from: Option<Status>,
    to: Option<Status>,
    detail: Value,
}

async fn audit(conn: &mut PgConnection, row: &Audit<'_>) -> StoreResult<()> {
    sqlx::query(
        "INSERT INTO card_transactions \
         (build_id, card_id, role, action, from_status, to_status, detail, timestamp) \
         VALUES ($1, $2, $3, $4, $5, $6, $7, $8)",
    )
    .bind(row.build_id)
    .bind(row.card_id)
    .bind(row.role)
    .bind(row.action)
    .bind(row.from.map(Status::as_str))
    .bind(row.to.map(Status::as_str))
    .bind(json_text(&row.detail)?)
    .bind(now_timestamp())
    .execute(conn)
    .await?;
    Ok(())
}

/// The status an epic build derives from its issues (only which statuses occur matters).
async fn derived_status(conn: &mut PgConnection, build_id: &str) -> StoreResult<Status> {
    let found: Vec<String> =
        sqlx::query_scalar("SELECT DISTINCT status FROM issues WHERE build_id = $1")
            .bind(build_id)
            .fetch_all(&mut *conn)
            .await?;
    let mut statuses = Vec::with_capacity(found.len());
    for raw in found {
        match raw.parse() {
            Ok(status) => statuses.push(status),
            Err(_) => return Err(corrupt_status(conn, build_id, &raw).await),
        }
    }
    Ok(derive_epic_status(&statuses))
}

/// The error for an unknown stored status, naming an issue that has it.
async fn corrupt_status(conn: &mut PgConnection, build_id: &str, raw: &str) -> StoreError {
    let named = sqlx::query(
        "SELECT build_id, id, status FROM issues WHERE build_id = $1 AND status = $2 LIMIT 1",
    )
    .bind(build_id)
    .bind(raw)
    .fetch_one(conn)
    .await;
    match named {
        Ok(row) => match rows::issue_status(&row) {
            Err(err) => err,
            Ok(_) => StoreError::Unexpected(format!("status {raw:?} parsed on second reading")),
        },
        Err(err) => err.into(),
    }
}

/// Derives an epic build's status from its issues again; audits and stores it when it changes.
/// Builds of other kinds, and missing builds, are left alone.
async fn refresh_build_status(
    conn: &mut PgConnection,
    build_id: &str,
    actor: &str,
) -> StoreResult<()> {
    let build: Option<(String, String, String)> =
        sqlx::query_as("SELECT kind, card, status FROM builds WHERE id = $1")
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
    sqlx::query("UPDATE builds SET status = $1, updated_at = $2 WHERE id = $3")
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
    audit(conn, &audit_row).await
}

/// Creates or replaces a build; an epic build takes the status derived from its issues.
/// A changed status of an existing build is audited.
async fn upsert_build(conn: &mut PgConnection, build: &BuildRecord) -> StoreResult<()> {
    let previous: Option<String> = sqlx::query_scalar("SELECT status FROM builds WHERE id = $1")
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
         VALUES ($1, $2, $3, $4, $5, $6, $7) \
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
            audit(conn, &audit_row).await
        }
        _ => Ok(()),
    }
}

/// Adds an issue at the end of its build with the build's next version; the primary key
/// refuses one that exists.
async fn insert_issue(conn: &mut PgConnection, issue: &IssueRecord) -> StoreResult<()> {
    let columns = issue.columns();
    let mut query = QueryBuilder::<Postgres>::new("INSERT INTO issues (");
    for (column, _) in &columns {
        query.push(column).push(", ");
    }
    query.push("position, version) VALUES (");
    for (_, value) in &columns {
        push_column(&mut query, value);
        query.push(", ");
    }
    query.push("(SELECT COALESCE(MAX(position), 0) + 1 FROM issues WHERE build_id = ");
    query.push_bind(issue.build_id.clone());
    query.push("), ");
    push_next_version(&mut query, &issue.build_id);
    query.push(")");
    query.build().execute(conn).await.map_err(|err| {
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
async fn update_issue(
    conn: &mut PgConnection,
    build_id: &str,
    id: &str,
    update: &IssueUpdate,
) -> StoreResult<(IssueRecord, bool)> {
    // The stored status is needed only to check an expected one or to audit a change.
    let current = if update.expect_status.is_some() || update.status.is_some() {
        let row = sqlx::query(
            "SELECT build_id, id, status, wait_reason FROM issues \
             WHERE build_id = $1 AND id = $2",
        )
        .bind(build_id)
        .bind(id)
        .fetch_optional(&mut *conn)
        .await?;
        let row = row.ok_or_else(|| issue_not_found(build_id, id))?;
        Some(rows::issue_state(&row)?)
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

    let issue = write_patch(conn, build_id, id, update, clears_wait_reason).await?;
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
        audit(conn, &audit_row).await?;
    }
    Ok((issue, moved_to.is_some()))
}

/// The `UPDATE` of a patch; returns the issue as it now stands (`NotFound` if it does not
/// exist).
async fn write_patch(
    conn: &mut PgConnection,
    build_id: &str,
    id: &str,
    update: &IssueUpdate,
    clears_wait_reason: bool,
) -> StoreResult<IssueRecord> {
    let mut query = QueryBuilder::<Postgres>::new("UPDATE issues SET updated_at = ");
    query.push_bind(now_timestamp());
    query.push(", version = ");
    push_next_version(&mut query, build_id);
    for (column, value) in update.assignments() {
        query.push(", ").push(column).push(" = ");
        push_column(&mut query, &value);
    }
    if clears_wait_reason {
        query.push(", wait_reason = NULL");
    }
    query.push(" WHERE build_id = ");
    query.push_bind(build_id.to_string());
    query.push(" AND id = ");
    query.push_bind(id.to_string());
    let updated = query.build().execute(&mut *conn).await?.rows_affected();
    updated_issue(conn, updated, build_id, id).await
}

/// Adds credits to an issue in one statement (and gives it the build's next version); audits
/// them. Returns the issue as it now stands.
async fn add_credits(
    conn: &mut PgConnection,
    build_id: &str,
    id: &str,
    amount: f64,
    actor: &str,
) -> StoreResult<IssueRecord> {
    let updated = sqlx::query(
        "UPDATE issues SET credits_spent = credits_spent + $1, updated_at = $2, \
         version = (SELECT COALESCE(MAX(version), 0) + 1 FROM issues WHERE build_id = $3) \
         WHERE build_id = $3 AND id = $4",
    )
    .bind(amount)
    .bind(now_timestamp())
    .bind(build_id)
    .bind(id)
    .execute(&mut *conn)
    .await?
    .rows_affected();
    let issue = updated_issue(conn, updated, build_id, id).await?;
    let audit_row = Audit {
        build_id,
        card_id: id,
        role: actor,
        action: "report_credits",
        from: None,
        to: None,
        detail: json!({ "amount": amount, "credits_spent": issue.credits_spent }),
    };
    audit(conn, &audit_row).await?;
    Ok(issue)
}

/// The issue an `UPDATE` of `updated` rows changed, read back (`NotFound` if it changed none).
async fn updated_issue(
    conn: &mut PgConnection,
    updated: u64,
    build_id: &str,
    id: &str,
) -> StoreResult<IssueRecord> {
    let issue = match updated {
        0 => None,
        _ => read::issue(conn, build_id, id).await?,
    };
    issue.ok_or_else(|| issue_not_found(build_id, id))
}

/// Adds a comment; one on a missing issue is `NotFound` (checked first: in PostgreSQL a failed
/// statement aborts the whole transaction, so the foreign key is the last line, not the test).
async fn add_comment(
    conn: &mut PgConnection,
    build_id: String,
    issue_id: String,
    author: String,
    content: String,
) -> StoreResult<Comment> {
    let created_at = now_timestamp();
    let id: Option<i64> = sqlx::query_scalar(
        "INSERT INTO comments (build_id, issue_id, author, content, created_at) \
         SELECT build_id, id, $3, $4, $5 FROM issues WHERE build_id = $1 AND id = $2 \
         RETURNING id",
    )
    .bind(&build_id)
    .bind(&issue_id)
    .bind(&author)
    .bind(&content)
    .bind(&created_at)
    .fetch_optional(conn)
    .await?;
    let id = id.ok_or_else(|| issue_not_found(&build_id, &issue_id))?;
    Ok(Comment {
        id,
        build_id,
        issue_id,
        author,
        content,
        created_at,
    })
}

/// Writes a run.
async fn insert_run(conn: &mut PgConnection, run: &RunRecord) -> Result<(), sqlx::Error> {
    let params = serde_json::to_string(&run.params).map_err(|e| sqlx::Error::Encode(e.into()))?;
    sqlx::query(
        "INSERT INTO sessions (id, kind, target, build_id, department, workspace, status, \
         reason, params, started_at, updated_at, ended_at, halt_requested_at) \
         VALUES ($1, $2, $3, $4, $5, $6, $7, $8, $9, $10, $11, $12, $13)",
    )
    .bind(&run.id)
    .bind(run.kind.as_str())
    .bind(&run.target)
    .bind(&run.build_id)
    .bind(&run.department)
    .bind(&run.workspace)
    .bind(run.status.as_str())
    .bind(&run.reason)
    .bind(params)
    .bind(&run.started_at)
    .bind(&run.updated_at)
    .bind(&run.ended_at)
    .bind(&run.halt_requested_at)
    .execute(conn)
    .await?;
    Ok(())
}

/// Patches a run; a status sets `ended_at` (cleared unless the status is final).
async fn update_run(conn: &mut PgConnection, id: &str, update: &RunUpdate) -> StoreResult<()> {
    let now = now_timestamp();
    let mut query = QueryBuilder::<Postgres>::new("UPDATE sessions SET updated_at = ");
    query.push_bind(now.clone());
    if let Some(status) = update.status {
        query.push(", status = ").push_bind(status.as_str());
        query
            .push(", ended_at = ")
            .push_bind(status.is_final().then_some(now));
    }
    if let Some(reason) = &update.reason {
        query.push(", reason = ").push_bind(reason.clone());
    }
    if let Some(params) = &update.params {
        query.push(", params = ").push_bind(json_text(params)?);
    }
    query.push(" WHERE id = ").push_bind(id.to_string());
    if query.build().execute(conn).await?.rows_affected() == 0 {
        return Err(StoreError::NotFound {
            what: "run",
            id: id.to_string(),
        });
    }
    Ok(())
}

/// Marks a running run as asked to halt; a run that ended or does not exist is refused.
async fn request_halt(conn: &mut PgConnection, id: &str) -> StoreResult<()> {
    let updated = sqlx::query(
        "UPDATE sessions SET halt_requested_at = COALESCE(halt_requested_at, $1) \
         WHERE id = $2 AND status = 'running'",
    )
    .bind(now_timestamp())
    .bind(id)
    .execute(&mut *conn)
    .await?;
    if updated.rows_affected() > 0 {
        return Ok(());
    }
    let status: Option<String> = sqlx::query_scalar("SELECT status FROM sessions WHERE id = $1")
        .bind(id)
        .fetch_optional(conn)
        .await?;
    Err(match status {
        None => StoreError::NotFound {
            what: "run",
            id: id.to_string(),
        },
        Some(status) => StoreError::Conflict(format!("run {id} already ended ({status})")),
    })
}

/// Appends a turn chained to the hash of the run's turn committed last, and makes the turn's
/// hash the run's ledger head. A seq the run has is `Conflict` (checked first: a failed
/// statement would abort the transaction).
async fn append_turn(conn: &mut PgConnection, turn: &NewTurn) -> StoreResult<i64> {
    let taken: Option<i64> =
        sqlx::query_scalar("SELECT id FROM turns WHERE run_id = $1 AND seq = $2")
            .bind(&turn.run_id)
            .bind(turn.seq)
            .fetch_optional(&mut *conn)
            .await?;
    if taken.is_some() {
        return Err(StoreError::Conflict(format!(
            "turns: run {} already has a turn with seq {}",
            turn.run_id, turn.seq
        )));
    }
    let last: Option<Option<String>> =
        sqlx::query_scalar("SELECT hash FROM turns WHERE run_id = $1 ORDER BY id DESC LIMIT 1")
            .bind(&turn.run_id)
            .fetch_optional(&mut *conn)
            .await?;
    let prev = last
        .flatten()
        .unwrap_or_else(|| ledger::GENESIS.to_string());
    let hash = ledger::turn_hash(&prev, turn);
    let id: i64 = sqlx::query_scalar(
        "INSERT INTO turns (run_id, seq, build_id, issue_id, seat, role, model, review, \
         messages, content, tool_calls, tool_results, tokens_in, tokens_out, status, error, \
         started_at, ended_at, steps, candidates, settings, prev_hash, hash) \
         VALUES ($1, $2, $3, $4, $5, $6, $7, $8, $9, $10, $11, $12, $13, $14, $15, $16, $17, \
         $18, $19, $20, $21, $22, $23) RETURNING id",
    )
    .bind(&turn.run_id)
    .bind(turn.seq)
    .bind(&turn.build_id)
    .bind(&turn.issue_id)
    .bind(&turn.seat)
    .bind(&turn.role)
    .bind(&turn.model)
    .bind(i64::from(turn.review))
    .bind(json_text(&turn.messages)?)
    .bind(&turn.content)
    .bind(json_text(&turn.tool_calls)?)
    .bind(json_text(&turn.tool_results)?)
    .bind(turn.tokens_in)
    .bind(turn.tokens_out)
    .bind(&turn.status)
    .bind(&turn.error)
    .bind(&turn.started_at)
    .bind(&turn.ended_at)
    .bind(json_text(&turn.steps)?)
    .bind(json_text(&turn.candidates)?)
    .bind(turn.settings.as_ref().map(json_text).transpose()?)
    .bind(&prev)
    .bind(&hash)
    .fetch_one(&mut *conn)
    .await?;
    sqlx::query("UPDATE sessions SET ledger_head = $1 WHERE id = $2")
        .bind(&hash)
        .bind(&turn.run_id)
        .execute(conn)
        .await?;
    Ok(id)
}

/// Writes an event (stamped now unless it carries its time); returns its row id.
async fn insert_event(conn: &mut PgConnection, event: &NewEvent) -> StoreResult<i64> {
    let timestamp = event.timestamp.clone().unwrap_or_else(now_timestamp);
    Ok(sqlx::query_scalar(
        "INSERT INTO events (run_id, timestamp, role, event, issue_id, data) \
         VALUES ($1, $2, $3, $4, $5, $6) RETURNING id",
    )
    .bind(&event.run_id)
    .bind(timestamp)
    .bind(&event.role)
    .bind(event.event.name())
    .bind(&event.issue_id)
    .bind(json_text(&event.event.data())?)
    .fetch_one(conn)
    .await?)
}

/// Writes a memory entry, stamped now, and its words; returns its row id.
async fn remember(
    conn: &mut PgConnection,
    content: &str,
    role: Option<String>,
    issue_id: Option<String>,
    run_id: Option<String>,
) -> StoreResult<i64> {
    let id: i64 = sqlx::query_scalar(
        "INSERT INTO memory (content, role, issue_id, run_id, created_at) \
         VALUES ($1, $2, $3, $4, $5) RETURNING id",
    )
    .bind(content)
    .bind(role)
    .bind(issue_id)
    .bind(run_id)
    .bind(now_timestamp())
    .fetch_one(&mut *conn)
    .await?;
    let words: Vec<String> = memory_words(content).into_iter().collect();
    sqlx::query("INSERT INTO memory_words (memory_id, word) SELECT $1, unnest($2::text[])")
        .bind(id)
        .bind(words)
        .execute(conn)
        .await?;
    Ok(id)
}

/// Writes a parked call, `pending` and stamped now; returns its row id.
async fn insert_approval(conn: &mut PgConnection, call: &NewApproval) -> StoreResult<i64> {
    Ok(sqlx::query_scalar(
        "INSERT INTO pending_approvals (run_id, build_id, issue_id, role, seat, tool, \
         args, resume_status, status, created_at) \
         VALUES ($1, $2, $3, $4, $5, $6, $7, $8, 'pending', $9) RETURNING id",
    )
    .bind(&call.run_id)
    .bind(&call.build_id)
    .bind(&call.issue_id)
    .bind(&call.role)
    .bind(&call.seat)
    .bind(&call.tool)
    .bind(json_text(&call.args)?)
    .bind(call.resume_status.as_str())
    .bind(now_timestamp())
    .fetch_one(conn)
    .await?)
}

/// Why a compare-and-set on approval `id` matched no row: `NotFound`, or a `Conflict` naming
/// its status.
async fn approval_refusal(conn: &mut PgConnection, id: i64) -> StoreResult<StoreError> {
    let current: Option<String> =
        sqlx::query_scalar("SELECT status FROM pending_approvals WHERE id = $1")
            .bind(id)
            .fetch_optional(conn)
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
async fn move_approval(conn: &mut PgConnection, id: i64, from: &str, to: &str) -> StoreResult<()> {
    let updated =
        sqlx::query("UPDATE pending_approvals SET status = $1 WHERE id = $2 AND status = $3")
            .bind(to)
            .bind(id)
            .bind(from)
            .execute(&mut *conn)
            .await?;
    if updated.rows_affected() == 0 {
        return Err(approval_refusal(conn, id).await?);
    }
    Ok(())
}

/// Decides a claimed (`deciding`) approval; refuses one not claimed or already decided.
async fn decide_approval(
    conn: &mut PgConnection,
    id: i64,
    status: &str,
    reason: Option<String>,
    result: Option<Value>,
) -> StoreResult<()> {
    let updated = sqlx::query(
        "UPDATE pending_approvals SET status = $1, reason = $2, result = $3, decided_at = $4 \
         WHERE id = $5 AND status = 'deciding'",
    )
    .bind(status)
    .bind(reason)
    .bind(result.as_ref().map(json_text).transpose()?)
    .bind(now_timestamp())
    .bind(id)
    .execute(&mut *conn)
    .await?;
    if updated.rows_affected() == 0 {
        return Err(match approval_refusal(conn, id).await? {
            StoreError::Conflict(m) if m.ends_with("pending") => StoreError::Conflict(format!(
                "approval {id} is pending: claim it (ClaimApproval) before deciding it"
            )),
            other => other,
        });
    }
    Ok(())
}

/// Writes a sandbox.
async fn insert_sandbox(conn: &mut PgConnection, s: &SandboxRecord) -> Result<(), sqlx::Error> {
    sqlx::query(
        "INSERT INTO sandboxes (id, run_id, build_id, epic, stack, slot, api_port, frontend_port, \
         db_port, admin_port, status, reason, project_name, compose_file, workspace, created_at, \
         updated_at) VALUES ($1, $2, $3, $4, $5, $6, $7, $8, $9, $10, $11, $12, $13, $14, $15, \
         $16, $17)",
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
    .execute(conn)
    .await?;
    Ok(())
}
