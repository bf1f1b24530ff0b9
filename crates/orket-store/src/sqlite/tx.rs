//! Transactions begun and ended with cached statements.
//!
//! rusqlite's `Transaction` does the same, but runs `BEGIN` and `COMMIT` with
//! `execute_batch`, which parses them again every time; here they are `prepare_cached` like every
//! other statement of the store (a small saving: about 3 k instructions per batch under
//! callgrind, 0.3 % of the epic-100 benchmark's). As with rusqlite's, a transaction dropped
//! without `commit` (an error, a panic) is rolled back.

use rusqlite::Connection;
use std::ops::Deref;

/// How a transaction takes its locks.
#[derive(Clone, Copy)]
pub(super) enum Begin {
    /// `BEGIN IMMEDIATE`: the write lock at once, so two writers wait for each other instead of
    /// failing to upgrade a read lock.
    Write,
    /// `BEGIN`: a read snapshot from the first read on.
    Read,
}

/// An open transaction on `conn`; rolled back when dropped uncommitted.
pub(super) struct Tx<'c> {
    conn: &'c Connection,
    open: bool,
}

impl<'c> Tx<'c> {
    /// Begins a transaction.
    pub(super) fn begin(conn: &'c Connection, begin: Begin) -> rusqlite::Result<Self> {
        let sql = match begin {
            Begin::Write => "BEGIN IMMEDIATE",
            Begin::Read => "BEGIN",
        };
        conn.prepare_cached(sql)?.execute([])?;
        Ok(Tx { conn, open: true })
    }

    /// Commits (a failed commit is rolled back when the transaction is dropped).
    pub(super) fn commit(mut self) -> rusqlite::Result<()> {
        self.conn.prepare_cached("COMMIT")?.execute([])?;
        self.open = false;
        Ok(())
    }
}

impl Deref for Tx<'_> {
    type Target = Connection;

    fn deref(&self) -> &Connection {
        self.conn
    }
}

impl Drop for Tx<'_> {
    fn drop(&mut self) {
        if self.open && !self.conn.is_autocommit() {
            let rollback = self.conn.prepare_cached("ROLLBACK");
            // Nothing to report to: a failed rollback leaves the transaction open, and the
            // thread's next `BEGIN` fails, naming the problem.
            let _ = rollback.and_then(|mut statement| statement.execute([]));
        }
    }
}
