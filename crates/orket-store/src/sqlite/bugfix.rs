//! A rock's bug-fix phase on SQLite (see [`crate::bugfix`]): started once per rock, updated
//! only over the revision that was read. The writes run inside a batch's transaction.

use super::rows::Json;
use crate::bugfix::BugFixPhaseRecord;
use crate::error::{StoreError, StoreResult};
use orket_core::time::now_timestamp;
use rusqlite::{params, Connection, OptionalExtension};

/// Starts a phase; `Conflict` when the rock has one.
pub(super) fn start(conn: &Connection, phase: &BugFixPhaseRecord) -> StoreResult<()> {
    let exists: Option<String> = conn
        .prepare_cached("SELECT status FROM bug_fix_phases WHERE rock = ?")?
        .query_row([&phase.rock], |row| row.get(0))
        .optional()?;
    if let Some(status) = exists {
        return Err(StoreError::Conflict(format!(
            "rock {} already has a bug-fix phase ({status})",
            phase.rock
        )));
    }
    conn.prepare_cached(
        "INSERT INTO bug_fix_phases (rock, department, status, started_at, planned_end, \
         extensions, last_extension_window, bugs, baseline, ended_at, next_rock, revision, \
         updated_at) VALUES (?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?, 0, ?)",
    )?
    .execute(params![
        phase.rock,
        phase.department,
        phase.status.as_str(),
        phase.started_at,
        phase.planned_end,
        phase.extensions,
        phase.last_extension_window,
        Json(&phase.bugs),
        Json(&phase.baseline),
        phase.ended_at,
        phase.next_rock,
        now_timestamp(),
    ])?;
    Ok(())
}

/// Writes `phase` over the stored row if that is still at `phase.revision`, giving it the next
/// revision; `Conflict` when it moved on, `NotFound` when the rock has no phase.
pub(super) fn update(conn: &Connection, phase: &BugFixPhaseRecord) -> StoreResult<()> {
    let updated = conn
        .prepare_cached(
            "UPDATE bug_fix_phases SET department = ?, status = ?, planned_end = ?, \
             extensions = ?, last_extension_window = ?, bugs = ?, baseline = ?, ended_at = ?, next_rock = ?, revision = revision + 1, \
             updated_at = ? WHERE rock = ? AND revision = ?",
        )?
        .execute(params![
            phase.department,
            phase.status.as_str(),
            phase.planned_end,
            phase.extensions,
            phase.last_extension_window,
            Json(&phase.bugs),
            Json(&phase.baseline),
            phase.ended_at,
            phase.next_rock,
            now_timestamp(),
            phase.rock,
            phase.revision,
        ])?;
    if updated > 0 {
        return Ok(());
    }
    let stored: Option<i64> = conn
        .prepare_cached("SELECT revision FROM bug_fix_phases WHERE rock = ?")?
        .query_row([&phase.rock], |row| row.get(0))
        .optional()?;
    Err(match stored {
        None => StoreError::NotFound {
            what: "bug-fix phase",
            id: phase.rock.clone(),
        },
        Some(revision) => StoreError::Conflict(format!(
            "the bug-fix phase of rock {} changed since it was read (revision {revision}, \
             not {}); nothing was changed",
            phase.rock, phase.revision
        )),
    })
}
