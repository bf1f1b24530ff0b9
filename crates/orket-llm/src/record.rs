//! The recording provider: wraps any provider and appends each successful reply to a replay
//! file, one JSON line `{"issue_id", "role", "content"}` per reply — the format
//! [`crate::ReplayProvider`] plays back.

use crate::provider::{ModelReply, ModelRequest, Provider, ProviderError};
use async_trait::async_trait;
use serde_json::json;
use std::fs::{File, OpenOptions};
use std::io::Write;
use std::path::{Path, PathBuf};
use std::sync::{Arc, Mutex};

/// Records the replies of an inner provider to a replay file; safe to share between turns.
pub struct RecordingProvider {
    /// The provider that answers.
    inner: Arc<dyn Provider>,
    /// `record(<inner>)`.
    name: String,
    /// The replay file, for error messages.
    path: PathBuf,
    /// The replay file, opened for appending; the lock keeps concurrent turns' lines whole
    /// (shared with the recorders of the seats' own providers, see [`Provider::alongside`]).
    file: Arc<Mutex<File>>,
}

impl std::fmt::Debug for RecordingProvider {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("RecordingProvider")
            .field("name", &self.name)
            .field("path", &self.path)
            .finish_non_exhaustive()
    }
}

impl RecordingProvider {
    /// Wraps `inner`, appending its replies to `path` (created with its parent folders when
    /// missing; existing lines are kept). A file that cannot be opened is a `Replay` error.
    pub fn new(inner: Arc<dyn Provider>, path: impl AsRef<Path>) -> Result<Self, ProviderError> {
        let path = path.as_ref().to_path_buf();
        let fail = |message: String| ProviderError::Replay {
            file: path.display().to_string(),
            line: None,
            message,
        };
        if let Some(parent) = path.parent().filter(|p| !p.as_os_str().is_empty()) {
            std::fs::create_dir_all(parent)
                .map_err(|e| fail(format!("cannot create the recording's folder: {e}")))?;
        }
        let file = OpenOptions::new()
            .create(true)
            .append(true)
            .open(&path)
            .map_err(|e| fail(format!("cannot open the recording file: {e}")))?;
        Ok(RecordingProvider {
            name: format!("record({})", inner.name()),
            inner,
            path,
            file: Arc::new(Mutex::new(file)),
        })
    }

    /// The replay file the replies go to.
    pub fn path(&self) -> &Path {
        &self.path
    }

    /// Appends one reply as a whole line and flushes it.
    fn append(&self, request: &ModelRequest, reply: &ModelReply) -> Result<(), ProviderError> {
        let mut line = json!({
            "issue_id": request.issue_id,
            "role": request.role,
            "content": reply.content,
        })
        .to_string();
        line.push('\n');
        let mut file = self.file.lock().unwrap_or_else(|e| e.into_inner());
        file.write_all(line.as_bytes())
            .and_then(|()| file.flush())
            .map_err(|e| ProviderError::Replay {
                file: self.path.display().to_string(),
                line: None,
                message: format!("cannot append the reply to the recording: {e}"),
            })
    }
}

#[async_trait]
impl Provider for RecordingProvider {
    fn name(&self) -> &str {
        &self.name
    }

    async fn complete(&self, request: &ModelRequest) -> Result<ModelReply, ProviderError> {
        let reply = self.inner.complete(request).await?;
        self.append(request, &reply)?;
        Ok(reply)
    }

    fn serves_every_seat(&self) -> bool {
        self.inner.serves_every_seat()
    }

    fn in_process(&self) -> bool {
        self.inner.in_process()
    }

    fn alongside(&self, seat: Arc<dyn Provider>) -> Arc<dyn Provider> {
        Arc::new(RecordingProvider {
            name: format!("record({})", seat.name()),
            inner: seat,
            path: self.path.clone(),
            file: Arc::clone(&self.file),
        })
    }

    fn constrains_replies(&self) -> bool {
        self.inner.constrains_replies()
    }

    fn resume_after(&self, issue_id: &str, role: &str, replies: usize) {
        self.inner.resume_after(issue_id, role, replies);
    }
}
