//! The worker fleet on PostgreSQL: turn jobs on pgmq queues (one per model), the workers'
//! registry, and the runs' files as content-addressed blobs (see [`crate::fleet`]).
//!
//! A job's lease is its pgmq message's visibility timeout: `claim` reads the message for
//! `lease` seconds (its `read_ct` goes up by one), `extend` pushes the timeout on while the
//! reading is still the message's last, and `commit` — in one transaction — checks that the
//! message is still there with the same `read_ct` (no other worker took it since), applies the
//! turn's batch, stores the files it wrote, records the job's outcome and deletes the message.
//! A worker that was paused or cut off past its lease finds another reading there: its commit
//! is refused and nothing of its turn is kept.

use super::{write, PgStore};
use crate::change::{Applied, Change};
use crate::error::{StoreError, StoreResult};
use crate::fleet::{FileChange, JobRecord, RunFile, TurnJob, WorkerRecord};
use crate::ledger::sha256_hex;
use orket_core::time::now_timestamp;
use pgmq::PGMQueueExt;
use serde_json::Value;
use sqlx::{PgConnection, Row};
use std::collections::HashSet;
use std::sync::Mutex;
use std::time::Duration;

/// The advisory lock held while pgmq's SQL is installed (two processes starting at once).
const INSTALL_LOCK: i64 = 0x006f_726b_6571;

/// A taken job gives up after this many takes (each a worker that died or lost it).
pub const MAX_ATTEMPTS: i32 = 5;

/// The fleet's operations on one PostgreSQL store.
pub struct PgFleet {
    store: PgStore,
    queue: PGMQueueExt,
    /// Queues known to exist.
    created: Mutex<HashSet<String>>,
}

/// A job a worker holds: the turn, and the reading of its message that is its lease.
#[derive(Debug, Clone)]
pub struct Claim {
    /// The turn to run.
    pub job: TurnJob,
    /// The worker holding it.
    pub worker: String,
    /// Which take this is (1 for the first).
    pub attempt: i32,
    queue: String,
    msg_id: i64,
}

/// The pgmq queue of a model's turns: `orket_` and a hash of the name (queue names are short
/// identifiers; model names are not).
pub fn queue_for(model: &str) -> String {
    format!("orket_{}", &sha256_hex(model.as_bytes())[..16])
}

impl PgFleet {
    /// The fleet of `store`, installing pgmq's SQL (from the crate, no server extension) the
    /// first time.
    pub async fn connect(store: &PgStore) -> StoreResult<PgFleet> {
        let queue = PGMQueueExt::new_with_pool(store.pool.clone()).await;
        let mut conn = store.pool.acquire().await?;
        sqlx::query("SELECT pg_advisory_lock($1)")
            .bind(INSTALL_LOCK)
            .execute(&mut *conn)
            .await?;
        let installed = queue.install_sql_from_embedded().await.map_err(pgmq_error);
        sqlx::query("SELECT pg_advisory_unlock($1)")
            .bind(INSTALL_LOCK)
            .execute(&mut *conn)
            .await?;
        installed?;
        Ok(PgFleet {
            store: store.clone(),
            queue,
            created: Mutex::new(HashSet::new()),
        })
    }

    /// The store.
    pub fn store(&self) -> &PgStore {
        &self.store
    }

    /// Creates `name`'s queue unless it is known to exist.
    async fn ensure_queue(&self, name: &str) -> StoreResult<()> {
        if self.known(name) {
            return Ok(());
        }
        self.queue.create(name).await.map_err(pgmq_error)?;
        self.created
            .lock()
            .unwrap_or_else(|e| e.into_inner())
            .insert(name.to_string());
        Ok(())
    }

    fn known(&self, name: &str) -> bool {
        self.created
            .lock()
            .unwrap_or_else(|e| e.into_inner())
            .contains(name)
    }

    /// Puts `job` on its model's queue and records it `queued`, in one transaction.
    pub async fn enqueue(&self, job: &TurnJob) -> StoreResult<()> {
        let queue = queue_for(&job.model);
        self.ensure_queue(&queue).await?;
        let mut tx = self.store.pool.begin().await?;
        let msg_id = self
            .queue
            .send_with_cxn(&queue, job, &mut *tx)
            .await
            .map_err(pgmq_error)?;
        sqlx::query(
            "INSERT INTO turn_jobs (job, run_id, seq, issue_id, model, queue, msg_id, state, \
             enqueued_at) VALUES ($1, $2, $3, $4, $5, $6, $7, 'queued', $8) \
             ON CONFLICT (job) DO UPDATE SET queue = excluded.queue, msg_id = excluded.msg_id, \
             state = 'queued', worker = NULL, outcome = NULL, enqueued_at = excluded.enqueued_at",
        )
        .bind(&job.job)
        .bind(&job.run_id)
        .bind(job.seq)
        .bind(&job.issue_id)
        .bind(&job.model)
        .bind(&queue)
        .bind(msg_id)
        .bind(now_timestamp())
        .execute(&mut *tx)
        .await?;
        tx.commit().await?;
        Ok(())
    }

    /// A job as the store knows it.
    pub async fn job(&self, job: &str) -> StoreResult<Option<JobRecord>> {
        let row = sqlx::query(
            "SELECT job, run_id, seq, issue_id, model, state, worker, attempts, outcome, \
             first_event, last_event FROM turn_jobs WHERE job = $1",
        )
        .bind(job)
        .fetch_optional(&self.store.pool)
        .await?;
        row.map(|row| job_record(&row)).transpose()
    }

    /// Takes the next job of one of `models`' queues for `lease` (`None` when there is none).
    /// A job taken more than [`MAX_ATTEMPTS`] times is failed instead of run again.
    pub async fn claim(
        &self,
        worker: &str,
        models: &[String],
        lease: Duration,
    ) -> StoreResult<Option<Claim>> {
        for model in models {
            let queue = queue_for(model);
            self.ensure_queue(&queue).await?;
            let read = self
                .queue
                .read::<Value>(&queue, lease_secs(lease))
                .await
                .map_err(pgmq_error)?;
            let Some(message) = read else { continue };
            // A message this Orket cannot read (another version's) is set aside, not retried.
            let Ok(job) = serde_json::from_value::<TurnJob>(message.message) else {
                self.queue
                    .archive(&queue, message.msg_id)
                    .await
                    .map_err(pgmq_error)?;
                continue;
            };
            let claim = Claim {
                job,
                worker: worker.to_string(),
                attempt: message.read_ct,
                queue,
                msg_id: message.msg_id,
            };
            if claim.attempt > MAX_ATTEMPTS {
                self.give_up(&claim).await?;
                continue;
            }
            sqlx::query(
                "UPDATE turn_jobs SET state = 'running', worker = $2, attempts = $3, \
                 started_at = $4 WHERE job = $1",
            )
            .bind(&claim.job.job)
            .bind(worker)
            .bind(i64::from(claim.attempt))
            .bind(now_timestamp())
            .execute(&self.store.pool)
            .await?;
            return Ok(Some(claim));
        }
        Ok(None)
    }

    /// Fails a job taken too many times: its message is archived, its outcome says why.
    async fn give_up(&self, claim: &Claim) -> StoreResult<()> {
        let why = format!(
            "turn {} of run {} was taken {} times and never committed (workers died or lost it)",
            claim.job.seq,
            claim.job.run_id,
            claim.attempt - 1
        );
        let mut tx = self.store.pool.begin().await?;
        self.queue
            .archive_with_cxn(&claim.queue, claim.msg_id, &mut *tx)
            .await
            .map_err(pgmq_error)?;
        finish_job(
            &mut tx,
            claim,
            "failed",
            &serde_json::json!({ "failed": why }),
        )
        .await?;
        tx.commit().await?;
        Ok(())
    }

    /// Takes a job nobody has taken yet off its queue (a halted run): `false` when a worker
    /// holds or ran it (the run then waits for its outcome).
    pub async fn cancel(&self, job: &str) -> StoreResult<bool> {
        let mut tx = self.store.pool.begin().await?;
        let row: Option<(String, i64, String)> =
            sqlx::query_as("SELECT queue, msg_id, state FROM turn_jobs WHERE job = $1 FOR UPDATE")
                .bind(job)
                .fetch_optional(&mut *tx)
                .await?;
        let Some((queue, msg_id, _)) = row.filter(|(_, _, state)| state == "queued") else {
            return Ok(false);
        };
        // Only a message never read: a read one is a worker's, whatever its lease says.
        let deleted = sqlx::query(&format!(
            "DELETE FROM pgmq.q_{queue} WHERE msg_id = $1 AND read_ct = 0"
        ))
        .bind(msg_id)
        .execute(&mut *tx)
        .await?;
        if deleted.rows_affected() == 0 {
            return Ok(false);
        }
        sqlx::query("UPDATE turn_jobs SET state = 'canceled', finished_at = $2 WHERE job = $1")
            .bind(job)
            .bind(now_timestamp())
            .execute(&mut *tx)
            .await?;
        tx.commit().await?;
        Ok(true)
    }

    /// Extends the claim's lease by `lease`: `false` when the claim was lost (another worker
    /// took the job, or it was committed or given up).
    pub async fn extend(&self, claim: &Claim, lease: Duration) -> StoreResult<bool> {
        let updated = sqlx::query(&format!(
            "UPDATE pgmq.q_{} SET vt = clock_timestamp() + make_interval(secs => $3) \
             WHERE msg_id = $1 AND read_ct = $2",
            claim.queue
        ))
        .bind(claim.msg_id)
        .bind(claim.attempt)
        .bind(lease.as_secs_f64())
        .execute(&self.store.pool)
        .await?;
        Ok(updated.rows_affected() == 1)
    }

    /// Commits a claimed turn in one transaction: checks the claim still holds, applies
    /// `changes`, stores `files` (written by the turn `claim.job.seq`), names the worker on the
    /// turn row, records the job `done` with `outcome` and deletes its message. A lost claim is
    /// `StoreError::Conflict` and nothing is written.
    pub async fn commit(
        &self,
        claim: &Claim,
        changes: Vec<Change>,
        files: &[FileChange],
        outcome: &Value,
    ) -> StoreResult<Vec<Applied>> {
        let mut tx = self.store.pool.begin().await?;
        let read_ct: Option<i32> = sqlx::query_scalar(&format!(
            "SELECT read_ct FROM pgmq.q_{} WHERE msg_id = $1 FOR UPDATE",
            claim.queue
        ))
        .bind(claim.msg_id)
        .fetch_optional(&mut *tx)
        .await?;
        let run: Option<String> = sqlx::query_scalar("SELECT status FROM sessions WHERE id = $1")
            .bind(&claim.job.run_id)
            .fetch_optional(&mut *tx)
            .await?;
        let planner: Option<String> = sqlx::query_scalar(
            "SELECT holder FROM build_leases WHERE build_id = $1 AND run_id = $2",
        )
        .bind(&claim.job.build_id)
        .bind(&claim.job.run_id)
        .fetch_optional(&mut *tx)
        .await?;
        let why = match (read_ct, run.as_deref()) {
            (Some(n), _) if n != claim.attempt => Some(format!(
                "another worker took its job after its lease ran out (take {n}, this was take {})",
                claim.attempt
            )),
            (None, _) => {
                Some("its job is no longer queued (another worker committed it)".to_string())
            }
            (_, Some("running")) if planner.as_deref() == Some(claim.job.holder.as_str()) => None,
            (_, Some("running")) => Some(
                "the process that planned it no longer runs its run (it was resumed elsewhere)"
                    .to_string(),
            ),
            (_, status) => Some(format!(
                "its run is no longer running ({})",
                status.unwrap_or("unknown")
            )),
        };
        if let Some(why) = why {
            // A job no run will ever want again (its run ended or moved on) is dropped with
            // the refusal; one another worker holds is left to it.
            if read_ct == Some(claim.attempt) {
                self.drop_in(&mut tx, claim, &why).await?;
                tx.commit().await?;
            }
            return Err(StoreError::Conflict(format!(
                "worker {} lost turn {} of run {}: {why}",
                claim.worker, claim.job.seq, claim.job.run_id
            )));
        }
        let events: Vec<bool> = changes
            .iter()
            .map(|c| matches!(c, Change::AppendEvent(_)))
            .collect();
        let applied = write::apply_in(&mut tx, changes).await?;
        let ids: Vec<i64> = applied
            .iter()
            .zip(&events)
            .filter(|(_, event)| **event)
            .filter_map(|(a, _)| a.id())
            .collect();
        sqlx::query("UPDATE turn_jobs SET first_event = $2, last_event = $3 WHERE job = $1")
            .bind(&claim.job.job)
            .bind(ids.iter().min())
            .bind(ids.iter().max())
            .execute(&mut *tx)
            .await?;
        put_files(&mut tx, &claim.job.run_id, claim.job.seq, files).await?;
        sqlx::query("UPDATE turns SET worker = $3 WHERE run_id = $1 AND seq = $2")
            .bind(&claim.job.run_id)
            .bind(claim.job.seq)
            .bind(&claim.worker)
            .execute(&mut *tx)
            .await?;
        sqlx::query(
            "UPDATE workers SET turns_done = turns_done + 1, last_seen = $2 WHERE name = $1",
        )
        .bind(&claim.worker)
        .bind(now_timestamp())
        .execute(&mut *tx)
        .await?;
        finish_job(&mut tx, claim, "done", outcome).await?;
        self.queue
            .delete_with_cxn(&claim.queue, claim.msg_id, &mut *tx)
            .await
            .map_err(pgmq_error)?;
        tx.commit().await?;
        Ok(applied)
    }

    /// Drops a claimed job no run wants any more (its run ended): archived, recorded
    /// `dropped` with `why`.
    pub async fn drop_job(&self, claim: &Claim, why: &str) -> StoreResult<()> {
        let mut tx = self.store.pool.begin().await?;
        self.drop_in(&mut tx, claim, why).await?;
        tx.commit().await?;
        Ok(())
    }

    async fn drop_in(&self, conn: &mut PgConnection, claim: &Claim, why: &str) -> StoreResult<()> {
        self.queue
            .archive_with_cxn(&claim.queue, claim.msg_id, &mut *conn)
            .await
            .map_err(pgmq_error)?;
        finish_job(
            conn,
            claim,
            "dropped",
            &serde_json::json!({ "dropped": why }),
        )
        .await
    }

    /// Stores files of run `run_id` as written by turn `seq` (0: the project as the run found
    /// it), outside any turn (under the batch lock, as a turn's files are); returns the last
    /// write number.
    pub async fn put_files(
        &self,
        run_id: &str,
        seq: i64,
        files: &[FileChange],
    ) -> StoreResult<i64> {
        let mut tx = self.store.pool.begin().await?;
        sqlx::query("SELECT pg_advisory_xact_lock($1)")
            .bind(write::BATCH_LOCK)
            .execute(&mut *tx)
            .await?;
        let rev = put_files(&mut tx, run_id, seq, files).await?;
        tx.commit().await?;
        Ok(rev)
    }

    /// The run's files written after write number `after` (every file for 0), with their
    /// content, in commit order.
    pub async fn files_since(&self, run_id: &str, after: i64) -> StoreResult<Vec<RunFile>> {
        let rows = sqlx::query(
            "SELECT f.path, f.seq, f.rev, b.content FROM run_files f \
             LEFT JOIN blobs b ON b.sha256 = f.sha256 \
             WHERE f.run_id = $1 AND f.rev > $2 ORDER BY f.rev",
        )
        .bind(run_id)
        .bind(after)
        .fetch_all(&self.store.pool)
        .await?;
        rows.iter()
            .map(|row| {
                Ok(RunFile {
                    change: FileChange {
                        path: row.try_get("path")?,
                        content: row.try_get("content")?,
                    },
                    seq: row.try_get("seq")?,
                    rev: row.try_get("rev")?,
                })
            })
            .collect::<Result<_, sqlx::Error>>()
            .map_err(StoreError::from)
    }

    /// Registers (or re-registers) a worker serving `models`.
    pub async fn register(&self, name: &str, host: &str, models: &[String]) -> StoreResult<()> {
        let now = now_timestamp();
        sqlx::query(
            "INSERT INTO workers (name, host, models, started_at, last_seen) \
             VALUES ($1, $2, $3, $4, $4) ON CONFLICT (name) DO UPDATE SET host = excluded.host, \
             models = excluded.models, started_at = excluded.started_at, \
             last_seen = excluded.last_seen, stopped_at = NULL",
        )
        .bind(name)
        .bind(host)
        .bind(write::json_text(models)?)
        .bind(now)
        .execute(&self.store.pool)
        .await?;
        Ok(())
    }

    /// Notes that a worker is alive.
    pub async fn seen(&self, name: &str) -> StoreResult<()> {
        sqlx::query("UPDATE workers SET last_seen = $2 WHERE name = $1")
            .bind(name)
            .bind(now_timestamp())
            .execute(&self.store.pool)
            .await?;
        Ok(())
    }

    /// Notes that a worker stopped.
    pub async fn stopped(&self, name: &str) -> StoreResult<()> {
        let now = now_timestamp();
        sqlx::query("UPDATE workers SET last_seen = $2, stopped_at = $2 WHERE name = $1")
            .bind(name)
            .bind(now)
            .execute(&self.store.pool)
            .await?;
        Ok(())
    }
}

/// The store's workers with the jobs each holds now (`Store::list_workers`).
pub(super) async fn workers(conn: &mut PgConnection) -> StoreResult<Vec<WorkerRecord>> {
    let rows = sqlx::query(
        "SELECT w.*, (SELECT COUNT(*) FROM turn_jobs j WHERE j.worker = w.name \
         AND j.state = 'running') AS jobs_held FROM workers w ORDER BY w.name",
    )
    .fetch_all(conn)
    .await?;
    rows.iter()
        .map(|row| {
            let name: String = row.try_get("name")?;
            let models: String = row.try_get("models")?;
            Ok(WorkerRecord {
                models: serde_json::from_str(&models).map_err(|err| StoreError::Corrupt {
                    what: format!("workers.models of worker {name}"),
                    message: err.to_string(),
                })?,
                name,
                host: row.try_get("host")?,
                started_at: row.try_get("started_at")?,
                last_seen: row.try_get("last_seen")?,
                stopped_at: row.try_get("stopped_at")?,
                jobs_held: row.try_get("jobs_held")?,
                turns_done: row.try_get("turns_done")?,
            })
        })
        .collect()
}

/// Stores `files` as blobs and as the run's files of turn `seq`; returns the last write number
/// (0 for none).
async fn put_files(
    conn: &mut PgConnection,
    run_id: &str,
    seq: i64,
    files: &[FileChange],
) -> StoreResult<i64> {
    let mut last = 0;
    for file in files {
        let hash = match &file.content {
            Some(content) => {
                let hash = sha256_hex(content);
                sqlx::query(
                    "INSERT INTO blobs (sha256, size, content) VALUES ($1, $2, $3) \
                     ON CONFLICT (sha256) DO NOTHING",
                )
                .bind(&hash)
                .bind(i64::try_from(content.len()).unwrap_or(i64::MAX))
                .bind(content)
                .execute(&mut *conn)
                .await?;
                Some(hash)
            }
            None => None,
        };
        last = sqlx::query_scalar(
            "INSERT INTO run_files (run_id, path, sha256, seq, rev) \
             VALUES ($1, $2, $3, $4, nextval('run_files_rev')) \
             ON CONFLICT (run_id, path) DO UPDATE SET sha256 = excluded.sha256, \
             seq = excluded.seq, rev = excluded.rev RETURNING rev",
        )
        .bind(run_id)
        .bind(&file.path)
        .bind(hash)
        .bind(seq)
        .fetch_one(&mut *conn)
        .await?;
    }
    Ok(last)
}

/// Records the claim's job as ended (`done` or `failed`) with `outcome`.
async fn finish_job(
    conn: &mut PgConnection,
    claim: &Claim,
    state: &str,
    outcome: &Value,
) -> StoreResult<()> {
    sqlx::query("UPDATE turn_jobs SET state = $2, outcome = $3, finished_at = $4 WHERE job = $1")
        .bind(&claim.job.job)
        .bind(state)
        .bind(write::json_text(outcome)?)
        .bind(now_timestamp())
        .execute(conn)
        .await?;
    Ok(())
}

fn job_record(row: &sqlx::postgres::PgRow) -> StoreResult<JobRecord> {
    let job: String = row.try_get("job")?;
    let outcome: Option<String> = row.try_get("outcome")?;
    Ok(JobRecord {
        outcome: outcome
            .map(|raw| serde_json::from_str(&raw))
            .transpose()
            .map_err(|err| StoreError::Corrupt {
                what: format!("turn_jobs.outcome of job {job}"),
                message: err.to_string(),
            })?,
        run_id: row.try_get("run_id")?,
        seq: row.try_get("seq")?,
        issue_id: row.try_get("issue_id")?,
        model: row.try_get("model")?,
        state: row.try_get("state")?,
        worker: row.try_get("worker")?,
        attempts: row.try_get("attempts")?,
        events: match (row.try_get("first_event")?, row.try_get("last_event")?) {
            (Some(first), Some(last)) => Some((first, last)),
            _ => None,
        },
        job,
    })
}

/// A lease as pgmq's whole seconds (at least one).
fn lease_secs(lease: Duration) -> i32 {
    i32::try_from(lease.as_secs().max(1)).unwrap_or(i32::MAX)
}

fn pgmq_error(err: pgmq::PgmqError) -> StoreError {
    StoreError::Database(Box::new(err))
}
