//! Database threads: each owns one SQLite connection and runs, one at a time, the closures the
//! store sends it; a closure answers its caller through a `tokio::sync::oneshot`.
//!
//! Why this plumbing is written here: rusqlite is synchronous, and its `Connection` is `Send`
//! but not `Sync`. sqlx bridges the same gap by sending every SQL statement to a worker thread
//! and waiting for its answer, which costs two thread wake-ups per statement (a model turn's
//! batch is a dozen statements). Here the unit sent is a whole store call — a batch with its
//! transaction, or every read of a one-unit read — so a call costs two wake-ups whatever it does.
//!
//! The queue is a `crossbeam-channel`: the reader threads share one queue and the first idle
//! one takes the next read, which needs a multi-consumer channel (`std::sync::mpmc` is not
//! stable; a `Mutex<mpsc::Receiver>` would wake a second thread for every job, to take over the
//! lock). std's `mpsc` is a port of the same channel, so the writer uses the same type.

use crate::error::{StoreError, StoreResult};
use crossbeam_channel::{Receiver, Sender};
use rusqlite::Connection;
use std::panic::{catch_unwind, AssertUnwindSafe};
use std::sync::{Mutex, PoisonError, RwLock};
use std::thread::JoinHandle;
use tokio::sync::oneshot;

/// Work for a database thread: runs with the thread's connection.
type Job = Box<dyn FnOnce(&mut Connection) + Send>;

/// A set of threads, one per connection, serving one queue of jobs.
pub(super) struct Workers {
    /// What the threads are, for errors and thread names (`writer`, `reader`).
    role: &'static str,
    /// The queue; `None` once closed. Dropping the last sender lets the threads finish the
    /// jobs already queued and stop.
    jobs: RwLock<Option<Sender<Job>>>,
    /// The threads, until joined.
    threads: Mutex<Vec<JoinHandle<()>>>,
}

impl Workers {
    /// Starts one thread per connection.
    pub(super) fn start(role: &'static str, connections: Vec<Connection>) -> StoreResult<Self> {
        let (sender, receiver) = crossbeam_channel::unbounded::<Job>();
        let mut threads = Vec::with_capacity(connections.len());
        for (n, connection) in connections.into_iter().enumerate() {
            let receiver = receiver.clone();
            let thread = std::thread::Builder::new()
                .name(format!("orket-store-{role}-{n}"))
                .spawn(move || serve(connection, &receiver))
                .map_err(|err| {
                    StoreError::Database(format!("cannot start a {role} thread: {err}").into())
                })?;
            threads.push(thread);
        }
        Ok(Workers {
            role,
            jobs: RwLock::new(Some(sender)),
            threads: Mutex::new(threads),
        })
    }

    /// Runs `work` on the next free thread and returns its result. A call whose caller stops
    /// waiting before a thread takes it up is skipped; one already running completes.
    pub(super) async fn call<T, F>(&self, work: F) -> StoreResult<T>
    where
        T: Send + 'static,
        F: FnOnce(&mut Connection) -> StoreResult<T> + Send + 'static,
    {
        let (answer, result) = oneshot::channel();
        let job: Job = Box::new(move |connection| {
            if !answer.is_closed() {
                // The caller may have gone meanwhile; its result is then dropped.
                let _ = answer.send(work(connection));
            }
        });
        self.send(job)?;
        result.await.map_err(|_| {
            StoreError::Unexpected(format!(
                "a store call panicked on the {} thread; its transaction was rolled back",
                self.role
            ))
        })?
    }

    fn send(&self, job: Job) -> StoreResult<()> {
        let jobs = self.jobs.read().unwrap_or_else(PoisonError::into_inner);
        match jobs.as_ref().map(|jobs| jobs.send(job)) {
            Some(Ok(())) => Ok(()),
            _ => Err(StoreError::Database("the store is closed".into())),
        }
    }

    /// Closes the queue: the threads finish the jobs already queued, close their connections
    /// and stop. Returns the threads to join (none after the first call).
    pub(super) fn close(&self) -> Vec<JoinHandle<()>> {
        self.jobs
            .write()
            .unwrap_or_else(PoisonError::into_inner)
            .take();
        std::mem::take(&mut *self.threads.lock().unwrap_or_else(PoisonError::into_inner))
    }
}

impl Drop for Workers {
    /// Closes the queue and waits for the threads, so that the connections are closed when the
    /// store is dropped. No caller is left to queue work, so this waits at most for a job
    /// already running.
    fn drop(&mut self) {
        for thread in self.close() {
            if thread.thread().id() != std::thread::current().id() {
                let _ = thread.join();
            }
        }
    }
}

/// A thread's loop: runs jobs until the queue is closed and empty. A job that panics has
/// dropped its answer (its caller gets an error); its open transaction is rolled back and the
/// thread goes on with the next job.
fn serve(mut connection: Connection, jobs: &Receiver<Job>) {
    for job in jobs {
        let ran = catch_unwind(AssertUnwindSafe(|| job(&mut connection)));
        if ran.is_err() && !connection.is_autocommit() {
            // A rusqlite `Transaction` rolls back when dropped while unwinding; this covers a
            // transaction begun without one.
            let _ = connection.execute_batch("ROLLBACK");
        }
    }
}
