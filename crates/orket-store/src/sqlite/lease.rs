//! Build leases on SQLite (see [`crate::lease`]): the reads and writes of `build_leases`, run
//! inside a batch's write transaction, so a lease is taken or renewed together with what the
//! batch commits.

use crate::error::{StoreError, StoreResult};
use crate::lease::{LeaseHolder, LeaseRecord, LeaseRequest};
use orket_core::time::now_timestamp;
use rusqlite::{params, Connection, OptionalExtension, Row};

/// A build's lease, if it is held.
pub(super) fn get(conn: &Connection, build_id: &str) -> StoreResult<Option<LeaseRecord>> {
    Ok(conn
        .prepare_cached(
            "SELECT build_id, run_id, holder, pid, host, taken_at, heartbeat_at \
             FROM build_leases WHERE build_id = ?",
        )?
        .query_row([build_id], record)
        .optional()?)
}

fn record(row: &Row) -> rusqlite::Result<LeaseRecord> {
    Ok(LeaseRecord {
        build_id: row.get(0)?,
        run_id: row.get(1)?,
        holder: LeaseHolder {
            token: row.get(2)?,
            pid: row.get(3)?,
            host: row.get(4)?,
        },
        taken_at: row.get(5)?,
        heartbeat_at: row.get(6)?,
    })
}

/// Takes the lease of `request.build_id` (see [`crate::Change::TakeLease`]).
pub(super) fn take(conn: &Connection, request: &LeaseRequest) -> StoreResult<()> {
    let now = now_timestamp();
    let holder = &request.holder;
    if let Some(held) = get(conn, &request.build_id)? {
        let ours = held.holder.token == holder.token;
        let stale = held.is_stale(request.stale_after);
        let gone = request.replacing.as_deref() == Some(held.holder.token.as_str());
        if !(ours || stale || gone) {
            return Err(StoreError::Held(Box::new(held)));
        }
        if ours && held.run_id == request.run_id {
            return renew(conn, &request.build_id, &holder.token);
        }
    }
    conn.prepare_cached(
        "INSERT INTO build_leases (build_id, run_id, holder, pid, host, taken_at, heartbeat_at) \
         VALUES (?, ?, ?, ?, ?, ?, ?) \
         ON CONFLICT (build_id) DO UPDATE SET run_id = excluded.run_id, \
         holder = excluded.holder, pid = excluded.pid, host = excluded.host, \
         taken_at = excluded.taken_at, heartbeat_at = excluded.heartbeat_at",
    )?
    .execute(params![
        request.build_id,
        request.run_id,
        holder.token,
        holder.pid,
        holder.host,
        now,
        now
    ])?;
    Ok(())
}

/// Renews the lease `token` holds on `build_id` (see [`crate::Change::RenewLease`]).
pub(super) fn renew(conn: &Connection, build_id: &str, token: &str) -> StoreResult<()> {
    let renewed = conn
        .prepare_cached(
            "UPDATE build_leases SET heartbeat_at = ? WHERE build_id = ? AND holder = ?",
        )?
        .execute(params![now_timestamp(), build_id, token])?;
    if renewed > 0 {
        return Ok(());
    }
    match get(conn, build_id)? {
        Some(held) => Err(StoreError::Held(Box::new(held))),
        None => Err(StoreError::Conflict(format!(
            "build {build_id}: its lease was released; this process no longer runs it"
        ))),
    }
}

/// Releases the lease `token` holds on `build_id`, if it does.
pub(super) fn release(conn: &Connection, build_id: &str, token: &str) -> StoreResult<()> {
    conn.prepare_cached("DELETE FROM build_leases WHERE build_id = ? AND holder = ?")?
        .execute(params![build_id, token])?;
    Ok(())
}
