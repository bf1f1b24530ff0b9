//! A rock's bug-fix phase on PostgreSQL (see [`crate::bugfix`]): started once per rock, updated
//! only over the revision that was read. The writes run inside a batch's transaction (under its
//! advisory lock, so the checks read what the batch before committed).

use super::read;
use crate::bugfix::BugFixPhaseRecord;
use crate::error::{StoreError, StoreResult};
use orket_core::time::now_timestamp;
use sqlx::PgConnection;

/// The JSON text of a list column.
fn json<T: serde::Serialize>(value: &T) -> StoreResult<String> {
    serde_json::to_string(value)
        .map_err(|e| StoreError::Unexpected(format!("cannot encode a bug-fix phase: {e}")))
}

/// Starts a phase; `Conflict` when the rock has one.
pub(super) async fn start(conn: &mut PgConnection, phase: &BugFixPhaseRecord) -> StoreResult<()> {
    if let Some(stored) = read::bug_fix_phase(conn, &phase.rock).await? {
        return Err(StoreError::Conflict(format!(
            "rock {} already has a bug-fix phase ({})",
            phase.rock, stored.status
        )));
    }
    sqlx::query(
        "INSERT INTO bug_fix_phases (rock, department, status, started_at, planned_end, \
         extensions, last_extension_window, bugs, baseline, ended_at, next_rock, revision, \
         updated_at) \
         VALUES ($1, $2, $3, $4, $5, $6, $7, $8, $9, $10, $11, 0, $12)",
    )
    .bind(&phase.rock)
    .bind(&phase.department)
    .bind(phase.status.as_str())
    .bind(&phase.started_at)
    .bind(&phase.planned_end)
    .bind(i64::from(phase.extensions))
    .bind(phase.last_extension_window.map(i64::from))
    .bind(json(&phase.bugs)?)
    .bind(json(&phase.baseline)?)
    .bind(&phase.ended_at)
    .bind(&phase.next_rock)
    .bind(now_timestamp())
    .execute(conn)
    .await?;
    Ok(())
}

/// Writes `phase` over the stored row if that is still at `phase.revision`, giving it the next
/// revision; `Conflict` when it moved on, `NotFound` when the rock has no phase.
pub(super) async fn update(conn: &mut PgConnection, phase: &BugFixPhaseRecord) -> StoreResult<()> {
    let updated = sqlx::query(
        "UPDATE bug_fix_phases SET department = $1, status = $2, planned_end = $3, \
         extensions = $4, last_extension_window = $5, bugs = $6, baseline = $7, ended_at = $8, \
         next_rock = $9, revision = revision + 1, updated_at = $10 WHERE rock = $11 AND \
         revision = $12",
    )
    .bind(&phase.department)
    .bind(phase.status.as_str())
    .bind(&phase.planned_end)
    .bind(i64::from(phase.extensions))
    .bind(phase.last_extension_window.map(i64::from))
    .bind(json(&phase.bugs)?)
    .bind(json(&phase.baseline)?)
    .bind(&phase.ended_at)
    .bind(&phase.next_rock)
    .bind(now_timestamp())
    .bind(&phase.rock)
    .bind(phase.revision)
    .execute(&mut *conn)
    .await?;
    if updated.rows_affected() > 0 {
        return Ok(());
    }
    Err(match read::bug_fix_phase(conn, &phase.rock).await? {
        None => StoreError::NotFound {
            what: "bug-fix phase",
            id: phase.rock.clone(),
        },
        Some(stored) => StoreError::Conflict(format!(
            "the bug-fix phase of rock {} changed since it was read (revision {}, not {}); \
             nothing was changed",
            phase.rock, stored.revision, phase.revision
        )),
    })
}
