//! A run's self-contained bundle (`orket export`): the run, its ledger head, its turns with
//! their hashes, its events, and the files of its workspace as blobs with their SHA-256.
//! [`Bundle::check`] verifies it offline (`orket verify --bundle`): the turns' chain ends at
//! the recorded head, and every blob hashes to its recorded SHA-256.

use crate::ledger::{self, Break, Chain};
use crate::records::{EventRecord, RunRecord, TurnRecord};
use base64::Engine as _;
use serde::{Deserialize, Serialize};

/// The format name and version a bundle declares.
pub const FORMAT: &str = "orket-run-bundle/1";

/// A file of the run's workspace.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct FileBlob {
    /// Its path inside the workspace, with `/`.
    pub path: String,
    /// The lower-case hex SHA-256 of its bytes.
    pub sha256: String,
    /// Its size in bytes.
    pub size: u64,
    /// Its bytes, base64 (standard alphabet, padded).
    pub content_base64: String,
}

impl FileBlob {
    /// The blob of `bytes` at `path`.
    pub fn new(path: String, bytes: &[u8]) -> FileBlob {
        FileBlob {
            path,
            sha256: ledger::sha256_hex(bytes),
            size: bytes.len() as u64,
            content_base64: base64::engine::general_purpose::STANDARD.encode(bytes),
        }
    }
}

/// A run's bundle.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct Bundle {
    /// [`FORMAT`].
    pub format: String,
    /// When it was written.
    pub exported_at: String,
    /// The run.
    pub run: RunRecord,
    /// The hash of the run's last turn, as the store recorded it.
    pub ledger_head: Option<String>,
    /// Its turns, with their ledger hashes.
    pub turns: Vec<TurnRecord>,
    /// Its events.
    pub events: Vec<EventRecord>,
    /// The files of its workspace.
    pub files: Vec<FileBlob>,
    /// Files of the workspace left out (links, other kinds, too large), with why.
    #[serde(default)]
    pub skipped: Vec<String>,
}

/// What a bundle's check found wrong.
#[derive(Debug, Clone, PartialEq, thiserror::Error)]
pub enum BundleError {
    /// Not a bundle of this format.
    #[error("not an Orket run bundle: format {0:?}, expected {FORMAT:?}")]
    Format(String),
    /// The turns' chain breaks.
    #[error("{0}")]
    Ledger(#[from] Break),
    /// A file's blob does not give its recorded hash (or is not base64).
    #[error("file {path}: {why}")]
    File {
        /// The file.
        path: String,
        /// What is wrong.
        why: String,
    },
}

impl Bundle {
    /// Checks the bundle: its format, the turns' chain up to the recorded head, every blob's
    /// SHA-256. Returns the chain.
    pub fn check(&self) -> Result<Chain, BundleError> {
        if self.format != FORMAT {
            return Err(BundleError::Format(self.format.clone()));
        }
        let chain = ledger::check(&self.turns, self.ledger_head.as_deref())?;
        for file in &self.files {
            let bytes = base64::engine::general_purpose::STANDARD
                .decode(&file.content_base64)
                .map_err(|e| BundleError::File {
                    path: file.path.clone(),
                    why: format!("its content is not base64: {e}"),
                })?;
            let found = ledger::sha256_hex(&bytes);
            if found != file.sha256 || bytes.len() as u64 != file.size {
                return Err(BundleError::File {
                    path: file.path.clone(),
                    why: format!(
                        "its content ({} bytes) hashes to {found}, the bundle recorded {} ({} bytes)",
                        bytes.len(),
                        file.sha256,
                        file.size
                    ),
                });
            }
        }
        Ok(chain)
    }
}
