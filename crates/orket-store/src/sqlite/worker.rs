//! Database threads: each owns one SQLite connection and runs, one at a time, the closures the
//! store sends it; a closure answers its caller through a `tokio::sync::oneshot`.
//!
//! Why this plumbing is written here: rusqlite is synchronous, and its `Connection` is `Send`
//! but not `Sync`. sqlx bridges the same gap by sending every SQL statement to a worker thread
//! and waiting for its answer, which costs two thread wake-ups per statement (a model turn's
//! batch is a dozen statements). Here the unit sent is a whole store call — a batch with its
//! transaction, or every read of a one-unit read — so a call costs two wake-ups whatever it does.
//!
//! The queue is a `Mutex<VecDeque>` with a `Condvar` rather than a channel crate. The reader
//! threads share one queue (the first idle one takes the next read), so it must have several
//! consumers, which `std::sync::mpsc` has not; and both `crossbeam-channel` and std's channel
//! spin and `sched_yield` a while before a receiver sleeps. In a ping-pong measurement on the
//! 2-core machine the engine benchmark runs on (send a job, await its oneshot answer, 30 000
//! times from a `#[tokio::main]` task, other people's builds running), a round trip cost 9–20 µs
//! of wall time and 14–20 µs of CPU with `crossbeam-channel`, 20 µs and 14 µs with std's
//! channel, 17–29 µs and 15–22 µs with `tokio::task::spawn_blocking`, and 7 µs and 7 µs with
//! this queue, whose threads sleep at once and leave the cores to the engine. (On the whole
//! engine benchmark the difference was within its noise.)

use crate::error::{StoreError, StoreResult};
use rusqlite::Connection;
use std::collections::VecDeque;
use std::panic::{catch_unwind, AssertUnwindSafe};
use std::sync::{Arc, Condvar, Mutex, MutexGuard, PoisonError};
use std::thread::JoinHandle;
use tokio::sync::oneshot;

/// Work for a database thread: runs with the thread's connection.
type Job = Box<dyn FnOnce(&mut Connection) + Send>;

/// A set of threads, one per connection, serving one queue of jobs.
pub(super) struct Workers {
    /// What the threads are, for errors and thread names (`writer`, `reader`).
    role: &'static str,
    queue: Arc<Queue>,
    /// The threads, until joined.
    threads: Mutex<Vec<JoinHandle<()>>>,
}

/// The jobs waiting for a thread.
struct Queue {
    state: Mutex<Waiting>,
    /// Signalled when a job arrives or the queue closes.
    changed: Condvar,
}

struct Waiting {
    jobs: VecDeque<Job>,
    /// No job is taken any more; the threads stop when `jobs` is empty.
    closed: bool,
}

impl Queue {
    fn lock(&self) -> MutexGuard<'_, Waiting> {
        // A job never runs while the lock is held, so a poisoned lock guards consistent data.
        self.state.lock().unwrap_or_else(PoisonError::into_inner)
    }

    /// Queues `job`; gives it back when the queue is closed.
    fn push(&self, job: Job) -> Result<(), Job> {
        let mut waiting = self.lock();
        if waiting.closed {
            return Err(job);
        }
        waiting.jobs.push_back(job);
        drop(waiting);
        self.changed.notify_one();
        Ok(())
    }

    /// The next job, waiting for one; `None` once the queue is closed and empty.
    fn pop(&self) -> Option<Job> {
        let mut waiting = self.lock();
        loop {
            if let Some(job) = waiting.jobs.pop_front() {
                return Some(job);
            }
            if waiting.closed {
                return None;
            }
            waiting = self
                .changed
                .wait(waiting)
                .unwrap_or_else(PoisonError::into_inner);
        }
    }

    fn close(&self) {
        self.lock().closed = true;
        self.changed.notify_all();
    }
}

impl Workers {
    /// Starts one thread per connection.
    pub(super) fn start(role: &'static str, connections: Vec<Connection>) -> StoreResult<Self> {
        let queue = Arc::new(Queue {
            state: Mutex::new(Waiting {
                jobs: VecDeque::new(),
                closed: false,
            }),
            changed: Condvar::new(),
        });
        let workers = Workers {
            role,
            queue,
            threads: Mutex::new(Vec::with_capacity(connections.len())),
        };
        for (n, connection) in connections.into_iter().enumerate() {
            let queue = Arc::clone(&workers.queue);
            let thread = std::thread::Builder::new()
                .name(format!("orket-store-{role}-{n}"))
                .spawn(move || serve(connection, &queue))
                .map_err(|err| {
                    StoreError::Database(format!("cannot start a {role} thread: {err}").into())
                })?;
            workers.lock_threads().push(thread);
        }
        Ok(workers)
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
        if self.queue.push(job).is_err() {
            return Err(StoreError::Database("the store is closed".into()));
        }
        result.await.map_err(|_| {
            StoreError::Unexpected(format!(
                "a store call panicked on the {} thread; its transaction was rolled back",
                self.role
            ))
        })?
    }

    /// Closes the queue: the threads finish the jobs already queued, close their connections
    /// and stop. Returns the threads to join (none after the first call).
    pub(super) fn close(&self) -> Vec<JoinHandle<()>> {
        self.queue.close();
        std::mem::take(&mut *self.lock_threads())
    }

    fn lock_threads(&self) -> MutexGuard<'_, Vec<JoinHandle<()>>> {
        self.threads.lock().unwrap_or_else(PoisonError::into_inner)
    }
}

impl Drop for Workers {
    /// Closes the queue and waits for the threads, so that the connections are closed when the
    /// store is dropped. No caller is left to queue work, so this waits at most for a job
    /// already running (a queued job whose caller is gone is skipped).
    fn drop(&mut self) {
        for thread in self.close() {
            if thread.thread().id() != std::thread::current().id() {
                let _ = thread.join();
            }
        }
    }
}

/// A thread's loop: runs jobs until the queue is closed and empty. A job that panics has
/// dropped its answer (its caller gets an error). No job leaves a transaction open for the
/// next: one still open after a job (a panic, a rollback that failed) is rolled back here; if
/// even that fails, it is logged and tried again after the next job.
fn serve(mut connection: Connection, queue: &Queue) {
    while let Some(job) = queue.pop() {
        // A panic's answer is already dropped: nothing more to do with it here.
        let _ = catch_unwind(AssertUnwindSafe(|| job(&mut connection)));
        if !connection.is_autocommit() {
            if let Err(err) = connection.execute_batch("ROLLBACK") {
                tracing::error!("store: cannot roll back a transaction left open: {err}");
            }
        }
    }
}
