//! The Gitea review loop's writes on PostgreSQL (see [`crate::review`]): deliveries recorded
//! once, pull requests, review cycles, inside a batch's transaction.

use crate::error::{StoreError, StoreResult};
use crate::review::{NewDelivery, PullRequestChange};
use orket_core::time::now_timestamp;
use sqlx::PgConnection;

/// Records a delivery; a delivery id or a body seen before is `StoreError::Duplicate`.
pub(super) async fn record_delivery(conn: &mut PgConnection, d: &NewDelivery) -> StoreResult<i64> {
    let seen: Option<(String, String)> = sqlx::query_as(
        "SELECT delivery_id, received_at FROM webhook_deliveries \
         WHERE delivery_id = $1 OR body_sha256 = $2 LIMIT 1",
    )
    .bind(&d.delivery_id)
    .bind(&d.body_sha256)
    .fetch_optional(&mut *conn)
    .await?;
    if let Some((id, at)) = seen {
        let what = if id == d.delivery_id {
            format!("delivery {id} was received at {at}")
        } else {
            format!("the same body was received at {at} as delivery {id}")
        };
        return Err(StoreError::Duplicate(what));
    }
    Ok(sqlx::query_scalar(
        "INSERT INTO webhook_deliveries (delivery_id, event, event_type, repository, pr_number, \
         body_sha256, outcome, received_at) VALUES ($1, $2, $3, $4, $5, $6, $7, $8) RETURNING id",
    )
    .bind(&d.delivery_id)
    .bind(&d.event)
    .bind(&d.event_type)
    .bind(&d.repository)
    .bind(d.pr_number)
    .bind(&d.body_sha256)
    .bind(&d.outcome)
    .bind(now_timestamp())
    .fetch_one(conn)
    .await?)
}

/// Sets what a delivery did.
pub(super) async fn set_outcome(
    conn: &mut PgConnection,
    id: i64,
    outcome: &str,
    detail: Option<&str>,
) -> StoreResult<()> {
    let updated =
        sqlx::query("UPDATE webhook_deliveries SET outcome = $1, detail = $2 WHERE id = $3")
            .bind(outcome)
            .bind(detail)
            .bind(id)
            .execute(conn)
            .await?;
    if updated.rows_affected() == 0 {
        return Err(StoreError::NotFound {
            what: "webhook delivery",
            id: id.to_string(),
        });
    }
    Ok(())
}

/// Creates or updates a pull request, keeping its epoch and last review.
pub(super) async fn upsert_pull_request(
    conn: &mut PgConnection,
    pr: &PullRequestChange,
) -> StoreResult<()> {
    sqlx::query(
        "INSERT INTO pull_requests (repository, number, title, card_id, build_id, state, \
         head_sha, updated_at) VALUES ($1, $2, $3, $4, $5, $6, $7, $8) \
         ON CONFLICT (repository, number) DO UPDATE SET title = excluded.title, \
         card_id = excluded.card_id, build_id = excluded.build_id, state = excluded.state, \
         head_sha = COALESCE(excluded.head_sha, pull_requests.head_sha), \
         updated_at = excluded.updated_at",
    )
    .bind(&pr.repository)
    .bind(pr.number)
    .bind(&pr.title)
    .bind(&pr.card_id)
    .bind(&pr.build_id)
    .bind(&pr.state)
    .bind(&pr.head_sha)
    .bind(now_timestamp())
    .execute(conn)
    .await?;
    Ok(())
}

/// The pull request's current epoch, or `NotFound`.
async fn epoch(conn: &mut PgConnection, repository: &str, number: i64) -> StoreResult<i64> {
    sqlx::query_scalar("SELECT epoch FROM pull_requests WHERE repository = $1 AND number = $2")
        .bind(repository)
        .bind(number)
        .fetch_optional(conn)
        .await?
        .ok_or_else(|| StoreError::NotFound {
            what: "pull request",
            id: format!("{repository}#{number}"),
        })
}

/// Starts the pull request's next epoch of review cycles.
pub(super) async fn new_epoch(
    conn: &mut PgConnection,
    repository: &str,
    number: i64,
) -> StoreResult<()> {
    epoch(conn, repository, number).await?;
    sqlx::query(
        "UPDATE pull_requests SET epoch = epoch + 1, updated_at = $1 \
         WHERE repository = $2 AND number = $3",
    )
    .bind(now_timestamp())
    .bind(repository)
    .bind(number)
    .execute(conn)
    .await?;
    Ok(())
}

/// Records the pull request's last review.
pub(super) async fn record_review(
    conn: &mut PgConnection,
    repository: &str,
    number: i64,
    review: &str,
) -> StoreResult<()> {
    epoch(conn, repository, number).await?;
    sqlx::query(
        "UPDATE pull_requests SET last_review = $1, updated_at = $2 \
         WHERE repository = $3 AND number = $4",
    )
    .bind(review)
    .bind(now_timestamp())
    .bind(repository)
    .bind(number)
    .execute(conn)
    .await?;
    Ok(())
}

/// Adds a change request to the current epoch; returns its cycle number.
pub(super) async fn add_cycle(
    conn: &mut PgConnection,
    repository: &str,
    number: i64,
    reason: &str,
    head_sha: Option<&str>,
) -> StoreResult<i64> {
    let epoch = epoch(conn, repository, number).await?;
    let cycle: i64 = sqlx::query_scalar(
        "SELECT COALESCE(MAX(cycle), 0) + 1 FROM pr_review_cycles \
         WHERE repository = $1 AND number = $2 AND epoch = $3",
    )
    .bind(repository)
    .bind(number)
    .bind(epoch)
    .fetch_one(&mut *conn)
    .await?;
    sqlx::query(
        "INSERT INTO pr_review_cycles (repository, number, epoch, cycle, reason, head_sha, \
         created_at) VALUES ($1, $2, $3, $4, $5, $6, $7)",
    )
    .bind(repository)
    .bind(number)
    .bind(epoch)
    .bind(cycle)
    .bind(reason)
    .bind(head_sha)
    .bind(now_timestamp())
    .execute(conn)
    .await?;
    Ok(cycle)
}
