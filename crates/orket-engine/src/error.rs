//! Why a run could not start or go on.

use orket_core::assets::AssetError;
use orket_store::StoreError;

/// Why a run could not start or go on.
#[derive(Debug, thiserror::Error)]
pub enum EngineError {
    /// The name is no epic, rock or issue (or the run is unknown).
    #[error("{0}")]
    NotFound(String),
    /// An asset could not be loaded.
    #[error(transparent)]
    Asset(#[from] AssetError),
    /// The epic is too large for its governance.
    #[error("{0}")]
    Complexity(String),
    /// The store failed (not `#[from]`: the message holds the cause, so it is not also its
    /// `source()`, which a printed error chain would repeat).
    #[error("store: {0}")]
    Store(StoreError),
    /// The workspace could not be prepared.
    #[error("workspace {path}: {message}")]
    Workspace {
        /// The folder.
        path: String,
        /// What went wrong.
        message: String,
    },
    /// `config/user_settings.json` cannot be read.
    #[error("{0}")]
    Settings(String),
    /// A run that cannot be resumed.
    #[error("{0}")]
    Resume(String),
    /// A build is being run by another run of this process.
    #[error("build {build} is being run by run {run}; wait for it to end or halt it")]
    Busy {
        /// The build.
        build: String,
        /// The run holding it.
        run: String,
    },
    /// A build is being run by another process (its lease is held and heartbeating).
    #[error(
        "build {} is being run by {}; wait for it to end or halt it (orket halt {})",
        .0.build_id, .0.describe(), .0.run_id
    )]
    Held(Box<orket_store::LeaseRecord>),
    /// Another process runs the project's organization loop (its lease is held and
    /// heartbeating).
    #[error(
        "a loop is already running in this project: loop {} (process {} on {}, last heartbeat {}); stop it with `orket halt --loop`",
        .0.run_id, .0.holder.pid, .0.holder.host, .0.heartbeat_at
    )]
    LoopHeld(Box<orket_store::LeaseRecord>),
    /// This process already runs the project's organization loop.
    #[error("a loop is already running in this process: loop {0}")]
    LoopRunning(String),
    /// A run with this id already executes in this process.
    #[error("run {0} is already executing in this process")]
    AlreadyRunning(String),
    /// A rock's bug-fix phase could not move on (its next rock's files could not be written).
    #[error("bug-fix phase of rock {rock}: {message}")]
    BugFixPhase {
        /// The rock.
        rock: String,
        /// What went wrong.
        message: String,
    },
    /// The run's task panicked (recorded as the run's failure).
    #[error("the run panicked: {0}")]
    Panicked(String),
}

impl From<StoreError> for EngineError {
    fn from(e: StoreError) -> Self {
        match e {
            StoreError::Held(lease) => EngineError::Held(lease),
            e => EngineError::Store(e),
        }
    }
}
