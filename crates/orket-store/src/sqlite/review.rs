//! The Gitea review loop's rows on SQLite (see [`crate::review`]): deliveries recorded once,
//! pull requests, review cycles. The writes run inside a batch's transaction.

use crate::error::{StoreError, StoreResult};
use crate::review::{
    DeliveryRecord, NewDelivery, PullRequestChange, PullRequestRecord, ReviewCycle,
};
use orket_core::time::now_timestamp;
use rusqlite::{params, Connection, OptionalExtension, Row};

/// Records a delivery; a delivery id or a body seen before is `StoreError::Duplicate`.
pub(super) fn record_delivery(conn: &Connection, d: &NewDelivery) -> StoreResult<i64> {
    let seen: Option<(String, String)> = conn
        .prepare_cached(
            "SELECT delivery_id, received_at FROM webhook_deliveries \
             WHERE delivery_id = ? OR body_sha256 = ? LIMIT 1",
        )?
        .query_row(params![d.delivery_id, d.body_sha256], |r| {
            Ok((r.get(0)?, r.get(1)?))
        })
        .optional()?;
    if let Some((id, at)) = seen {
        let what = if id == d.delivery_id {
            format!("delivery {id} was received at {at}")
        } else {
            format!("the same body was received at {at} as delivery {id}")
        };
        return Err(StoreError::Duplicate(what));
    }
    conn.prepare_cached(
        "INSERT INTO webhook_deliveries (delivery_id, event, event_type, repository, pr_number, \
         body_sha256, outcome, received_at) VALUES (?, ?, ?, ?, ?, ?, ?, ?)",
    )?
    .execute(params![
        d.delivery_id,
        d.event,
        d.event_type,
        d.repository,
        d.pr_number,
        d.body_sha256,
        d.outcome,
        now_timestamp()
    ])?;
    Ok(conn.last_insert_rowid())
}

/// Sets what a delivery did.
pub(super) fn set_outcome(
    conn: &Connection,
    id: i64,
    outcome: &str,
    detail: Option<&str>,
) -> StoreResult<()> {
    let updated = conn
        .prepare_cached("UPDATE webhook_deliveries SET outcome = ?, detail = ? WHERE id = ?")?
        .execute(params![outcome, detail, id])?;
    if updated == 0 {
        return Err(StoreError::NotFound {
            what: "webhook delivery",
            id: id.to_string(),
        });
    }
    Ok(())
}

/// Creates or updates a pull request, keeping its epoch and last review.
pub(super) fn upsert_pull_request(conn: &Connection, pr: &PullRequestChange) -> StoreResult<()> {
    conn.prepare_cached(
        "INSERT INTO pull_requests (repository, number, title, card_id, build_id, state, \
         head_sha, updated_at) VALUES (?, ?, ?, ?, ?, ?, ?, ?) \
         ON CONFLICT (repository, number) DO UPDATE SET title = excluded.title, \
         card_id = excluded.card_id, build_id = excluded.build_id, state = excluded.state, \
         head_sha = COALESCE(excluded.head_sha, head_sha), updated_at = excluded.updated_at",
    )?
    .execute(params![
        pr.repository,
        pr.number,
        pr.title,
        pr.card_id,
        pr.build_id,
        pr.state,
        pr.head_sha,
        now_timestamp()
    ])?;
    Ok(())
}

/// The pull request's current epoch, or `NotFound`.
fn epoch(conn: &Connection, repository: &str, number: i64) -> StoreResult<i64> {
    conn.prepare_cached("SELECT epoch FROM pull_requests WHERE repository = ? AND number = ?")?
        .query_row(params![repository, number], |r| r.get(0))
        .optional()?
        .ok_or_else(|| StoreError::NotFound {
            what: "pull request",
            id: format!("{repository}#{number}"),
        })
}

/// Starts the pull request's next epoch of review cycles.
pub(super) fn new_epoch(conn: &Connection, repository: &str, number: i64) -> StoreResult<()> {
    epoch(conn, repository, number)?;
    conn.prepare_cached(
        "UPDATE pull_requests SET epoch = epoch + 1, updated_at = ? \
         WHERE repository = ? AND number = ?",
    )?
    .execute(params![now_timestamp(), repository, number])?;
    Ok(())
}

/// Records the pull request's last review.
pub(super) fn record_review(
    conn: &Connection,
    repository: &str,
    number: i64,
    review: &str,
) -> StoreResult<()> {
    epoch(conn, repository, number)?;
    conn.prepare_cached(
        "UPDATE pull_requests SET last_review = ?, updated_at = ? \
         WHERE repository = ? AND number = ?",
    )?
    .execute(params![review, now_timestamp(), repository, number])?;
    Ok(())
}

/// Adds a change request to the current epoch; returns its cycle number.
pub(super) fn add_cycle(
    conn: &Connection,
    repository: &str,
    number: i64,
    reason: &str,
    head_sha: Option<&str>,
) -> StoreResult<i64> {
    let epoch = epoch(conn, repository, number)?;
    let cycle: i64 = conn
        .prepare_cached(
            "SELECT COALESCE(MAX(cycle), 0) + 1 FROM pr_review_cycles \
             WHERE repository = ? AND number = ? AND epoch = ?",
        )?
        .query_row(params![repository, number, epoch], |r| r.get(0))?;
    conn.prepare_cached(
        "INSERT INTO pr_review_cycles (repository, number, epoch, cycle, reason, head_sha, \
         created_at) VALUES (?, ?, ?, ?, ?, ?, ?)",
    )?
    .execute(params![
        repository,
        number,
        epoch,
        cycle,
        reason,
        head_sha,
        now_timestamp()
    ])?;
    Ok(cycle)
}

fn delivery(r: &Row) -> rusqlite::Result<DeliveryRecord> {
    Ok(DeliveryRecord {
        id: r.get("id")?,
        delivery: NewDelivery {
            delivery_id: r.get("delivery_id")?,
            event: r.get("event")?,
            event_type: r.get("event_type")?,
            repository: r.get("repository")?,
            pr_number: r.get("pr_number")?,
            body_sha256: r.get("body_sha256")?,
            outcome: r.get("outcome")?,
        },
        detail: r.get("detail")?,
        received_at: r.get("received_at")?,
    })
}

/// The `limit` most recent deliveries, newest first.
pub(super) fn deliveries(conn: &Connection, limit: i64) -> StoreResult<Vec<DeliveryRecord>> {
    let mut statement =
        conn.prepare_cached("SELECT * FROM webhook_deliveries ORDER BY id DESC LIMIT ?")?;
    let rows = statement.query_map([limit], delivery)?;
    Ok(rows.collect::<rusqlite::Result<_>>()?)
}

fn pull_request(r: &Row) -> rusqlite::Result<PullRequestRecord> {
    Ok(PullRequestRecord {
        pr: PullRequestChange {
            repository: r.get("repository")?,
            number: r.get("number")?,
            title: r.get("title")?,
            card_id: r.get("card_id")?,
            build_id: r.get("build_id")?,
            state: r.get("state")?,
            head_sha: r.get("head_sha")?,
        },
        epoch: r.get("epoch")?,
        last_review: r.get("last_review")?,
        updated_at: r.get("updated_at")?,
    })
}

/// Every pull request, most recently changed first.
pub(super) fn pull_requests(conn: &Connection) -> StoreResult<Vec<PullRequestRecord>> {
    let mut statement = conn.prepare_cached(
        "SELECT * FROM pull_requests ORDER BY updated_at DESC, repository, number",
    )?;
    let rows = statement.query_map([], pull_request)?;
    Ok(rows.collect::<rusqlite::Result<_>>()?)
}

/// A pull request's cycles, every epoch, in order.
pub(super) fn cycles(
    conn: &Connection,
    repository: &str,
    number: i64,
) -> StoreResult<Vec<ReviewCycle>> {
    let mut statement = conn.prepare_cached(
        "SELECT cycle, epoch, reason, head_sha, created_at FROM pr_review_cycles \
         WHERE repository = ? AND number = ? ORDER BY epoch, cycle",
    )?;
    let rows = statement.query_map(params![repository, number], |r| {
        Ok(ReviewCycle {
            cycle: r.get(0)?,
            epoch: r.get(1)?,
            reason: r.get(2)?,
            head_sha: r.get(3)?,
            created_at: r.get(4)?,
        })
    })?;
    Ok(rows.collect::<rusqlite::Result<_>>()?)
}
