//! The store's error type.

/// Everything a store operation can fail with. Messages name the table and row concerned.
#[derive(Debug, thiserror::Error)]
pub enum StoreError {
    /// The row an operation needs does not exist.
    #[error("{what} {id} not found")]
    NotFound {
        /// What was looked for ("issue", "run").
        what: &'static str,
        /// Its id (`<build>/<issue>` for issues).
        id: String,
    },
    /// The write contradicts what is stored: an expected status differs, an id already exists.
    #[error("conflict: {0}")]
    Conflict(String),
    /// The row was recorded before (a webhook delivery seen again): what matched.
    #[error("duplicate: {0}")]
    Duplicate(String),
    /// The build's lease is held by another process's run.
    #[error(
        "build {} is being run by {}; wait for it to end or halt it (orket halt {})",
        .0.build_id, .0.describe(), .0.run_id
    )]
    Held(Box<crate::lease::LeaseRecord>),
    /// A migration could not be applied, or an applied one no longer matches its file.
    #[error("{message}")]
    Migration {
        /// The migration's version.
        version: i64,
        /// What went wrong, naming the migration.
        message: String,
    },
    /// A stored value does not parse (an unknown status, invalid JSON).
    #[error("corrupt {what}: {message}")]
    Corrupt {
        /// The column and row (`issues.status of issue build-login/ISSUE-1`).
        what: String,
        /// Why it does not parse.
        message: String,
    },
    /// A store implementation returned a result that does not fit the change (a bug).
    #[error("unexpected store result: {0}")]
    Unexpected(String),
    /// The database file could not be created or opened.
    #[error("cannot open store {}: {message}", path.display())]
    Open {
        /// The database file.
        path: std::path::PathBuf,
        /// Why.
        message: String,
    },
    /// The database failed; the error of the database library (`rusqlite::Error` for
    /// [`crate::SqliteStore`]) is kept for `downcast_ref`.
    #[error("database error: {0}")]
    Database(Box<dyn std::error::Error + Send + Sync>),
}

// Not `#[from]`: the message already holds the cause, so it is not also its `source()` (an
// error chain printed whole, as `orket` does, would repeat it).
impl From<rusqlite::Error> for StoreError {
    fn from(e: rusqlite::Error) -> Self {
        StoreError::Database(Box::new(e))
    }
}

/// The result of a store operation.
pub type StoreResult<T> = Result<T, StoreError>;
