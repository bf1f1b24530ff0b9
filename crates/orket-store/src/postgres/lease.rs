//! Build leases on PostgreSQL (see [`crate::lease`]): the writes of `build_leases`, run inside a
//! batch's transaction, so a lease is taken or renewed together with what the batch commits.
//! The batch's advisory lock makes the read-then-write of `take` safe across processes.

use super::read;
use crate::error::{StoreError, StoreResult};
use crate::lease::LeaseRequest;
use orket_core::time::now_timestamp;
use sqlx::PgConnection;

/// Takes the lease of `request.build_id` (see [`crate::Change::TakeLease`]).
pub(super) async fn take(conn: &mut PgConnection, request: &LeaseRequest) -> StoreResult<()> {
    let now = now_timestamp();
    let holder = &request.holder;
    if let Some(held) = read::lease(conn, &request.build_id).await? {
        let ours = held.holder.token == holder.token;
        let stale = held.is_stale(request.stale_after);
        let gone = request.replacing.as_deref() == Some(held.holder.token.as_str());
        if !(ours || stale || gone) {
            return Err(StoreError::Held(Box::new(held)));
        }
        if ours && held.run_id == request.run_id {
            return renew(conn, &request.build_id, &holder.token).await;
        }
    }
    sqlx::query(
        "INSERT INTO build_leases (build_id, run_id, holder, pid, host, taken_at, heartbeat_at) \
         VALUES ($1, $2, $3, $4, $5, $6, $6) \
         ON CONFLICT (build_id) DO UPDATE SET run_id = excluded.run_id, \
         holder = excluded.holder, pid = excluded.pid, host = excluded.host, \
         taken_at = excluded.taken_at, heartbeat_at = excluded.heartbeat_at",
    )
    .bind(&request.build_id)
    .bind(&request.run_id)
    .bind(&holder.token)
    .bind(i64::from(holder.pid))
    .bind(&holder.host)
    .bind(now)
    .execute(conn)
    .await?;
    Ok(())
}

/// Renews the lease `token` holds on `build_id` (see [`crate::Change::RenewLease`]).
pub(super) async fn renew(conn: &mut PgConnection, build_id: &str, token: &str) -> StoreResult<()> {
    let renewed = sqlx::query(
        "UPDATE build_leases SET heartbeat_at = $1 WHERE build_id = $2 AND holder = $3",
    )
    .bind(now_timestamp())
    .bind(build_id)
    .bind(token)
    .execute(&mut *conn)
    .await?;
    if renewed.rows_affected() > 0 {
        return Ok(());
    }
    match read::lease(conn, build_id).await? {
        Some(held) => Err(StoreError::Held(Box::new(held))),
        None => Err(StoreError::Conflict(format!(
            "build {build_id}: its lease was released; this process no longer runs it"
        ))),
    }
}

/// Releases the lease `token` holds on `build_id`, if it does.
pub(super) async fn release(
    conn: &mut PgConnection,
    build_id: &str,
    token: &str,
) -> StoreResult<()> {
    sqlx::query("DELETE FROM build_leases WHERE build_id = $1 AND holder = $2")
        .bind(build_id)
        .bind(token)
        .execute(conn)
        .await?;
    Ok(())
}
