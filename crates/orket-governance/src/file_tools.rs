//! The file tools: `read_file`, `write_file`, `list_directory`, `delete_file`.
//!
//! Each returns a [`ToolResult`] (`{"ok": true, ...}` or `{"ok": false, "error": "..."}`) and
//! never fails otherwise. Every call re-checks path confinement itself, so the tools stay inside the
//! workspace even when called without the gate. Writes are atomic (temporary file in the same
//! folder, then rename) and serialized per path; different paths proceed in parallel.
//! Only regular files are read, a listing holds at most [`MAX_LIST_ENTRIES`] entries, and
//! deleting a symlink removes the link, not its target.

use crate::confine::Confinement;
use crate::gate::MAX_CONTENT_BYTES;
use crate::refusal::Refusal;
use orket_core::tools::{Tool, ToolResult};
use orket_core::ToolCall;
use serde_json::json;
use std::collections::HashMap;
use std::hash::{BuildHasher, Hasher};
use std::io::ErrorKind;
use std::path::{Path, PathBuf};
use std::sync::atomic::{AtomicU64, Ordering};
use std::sync::{Arc, Mutex};
use tokio::fs;
use tokio::io::AsyncWriteExt;

/// At most this many entries are listed; a longer listing says `"truncated": true` and gives
/// the `total`.
pub const MAX_LIST_ENTRIES: usize = 1000;

/// How many fresh temporary names one write tries before giving up.
const TEMP_ATTEMPTS: usize = 64;

/// Mixed into each temporary name, so two names of one process never repeat.
static TEMP_COUNTER: AtomicU64 = AtomicU64::new(0);

/// The file tools of one workspace, with the per-path write locks.
#[derive(Debug)]
pub struct FileTools {
    workspace: Arc<Confinement>,
    locks: Mutex<HashMap<PathBuf, Arc<tokio::sync::Mutex<()>>>>,
}

fn failure(error: impl Into<String>) -> ToolResult {
    ToolResult::failed(error)
}

fn refused(refusal: Refusal) -> ToolResult {
    ToolResult::refused(refusal.code, refusal.to_string())
}

impl FileTools {
    /// The file tools of `workspace`.
    pub fn new(workspace: Arc<Confinement>) -> FileTools {
        FileTools {
            workspace,
            locks: Mutex::new(HashMap::new()),
        }
    }

    /// The workspace these tools are confined to.
    pub fn workspace(&self) -> &Arc<Confinement> {
        &self.workspace
    }

    /// Runs a call of the file tool `tool` (`path` defaults to `.` for `list_directory`);
    /// `None` when `tool` is no file tool.
    pub async fn run(&self, tool: Tool, call: &ToolCall) -> Option<ToolResult> {
        let path = call.str_arg("path");
        let missing = |key: &str| failure(format!("{}: argument '{key}' is required", call.name));
        Some(match tool {
            Tool::ReadFile => match path {
                Some(p) => self.read_file(p).await,
                None => missing("path"),
            },
            Tool::WriteFile => match (path, call.str_arg("content")) {
                (Some(p), Some(c)) => self.write_file(p, c).await,
                (None, _) => missing("path"),
                (_, None) => missing("content"),
            },
            Tool::ListDirectory => self.list_directory(path.unwrap_or(".")).await,
            Tool::DeleteFile => match path {
                Some(p) => self.delete_file(p).await,
                None => missing("path"),
            },
            Tool::CreateIssue
            | Tool::UpdateIssueStatus
            | Tool::AddIssueComment
            | Tool::GetIssueContext
            | Tool::RequestExcuse
            | Tool::ReportCredits
            | Tool::ResetIssue
            | Tool::NominateCard
            | Tool::RefinementProposal
            | Tool::ArchiveEval
            | Tool::PromotePrompt
            | Tool::ImageAnalyze
            | Tool::ImageGenerate => return None,
        })
    }

    /// Reads a UTF-8 text file: `{ok, path, content}`.
    pub async fn read_file(&self, path: &str) -> ToolResult {
        let real = match self.workspace.resolve_read(path) {
            Ok(real) => real,
            Err(r) => return refused(r),
        };
        let meta = match fs::metadata(&real).await {
            Ok(meta) => meta,
            Err(e) => return failure(format!("read_file: cannot read '{path}': {e}")),
        };
        if meta.is_dir() {
            return failure(format!(
                "read_file: '{path}' is a folder; use list_directory to see its entries"
            ));
        }
        if !meta.is_file() {
            // A FIFO would block the read forever; devices and sockets are no text files either.
            return failure(format!(
                "read_file: '{path}' is not a regular file (a pipe, socket or device); \
                 only regular files are read"
            ));
        }
        if meta.len() > MAX_CONTENT_BYTES as u64 {
            return failure(format!(
                "read_file: '{path}' is {} bytes; at most {MAX_CONTENT_BYTES} bytes (1 MiB) are read",
                meta.len()
            ));
        }
        let bytes = match fs::read(&real).await {
            Ok(bytes) => bytes,
            Err(e) => return failure(format!("read_file: cannot read '{path}': {e}")),
        };
        if bytes.len() > MAX_CONTENT_BYTES {
            return failure(format!(
                "read_file: '{path}' is over {MAX_CONTENT_BYTES} bytes (1 MiB)"
            ));
        }
        match String::from_utf8(bytes) {
            Ok(content) => ToolResult::ok(json!({
                "path": self.workspace.display_path(&real),
                "content": content,
            })),
            Err(e) => failure(format!(
                "read_file: '{path}' is not UTF-8 text (invalid byte at offset {})",
                e.utf8_error().valid_up_to()
            )),
        }
    }

    /// Writes `content` atomically, creating parent folders: `{ok, path, bytes}`.
    pub async fn write_file(&self, path: &str, content: &str) -> ToolResult {
        if path.ends_with('/') || path.ends_with("/.") {
            return failure(format!(
                "write_file: '{path}' ends in '/', which names a folder; name a file to write \
                 (for example '{}/file.txt')",
                path.trim_end_matches(['/', '.'])
            ));
        }
        let real = match self.workspace.resolve_write(path) {
            Ok(real) => real,
            Err(r) => return refused(r),
        };
        if content.len() > MAX_CONTENT_BYTES {
            return failure(format!(
                "write_file: the content for '{path}' is {} bytes; at most {MAX_CONTENT_BYTES} \
                 bytes (1 MiB) may be written",
                content.len()
            ));
        }
        if fs::metadata(&real).await.is_ok_and(|m| m.is_dir()) {
            return failure(format!(
                "write_file: '{path}' is a folder; name a file to write"
            ));
        }
        let lock = self.lock_for(&real);
        let result = {
            let _guard = lock.lock().await;
            write_atomically(&real, content.as_bytes()).await
        };
        drop(lock);
        self.release(&real);
        match result {
            Ok(()) => ToolResult::ok(json!({
                "path": self.workspace.display_path(&real),
                "bytes": content.len(),
            })),
            Err(e) => failure(format!("write_file: cannot write '{path}': {e}")),
        }
    }

    /// Lists a folder: `{ok, path, entries}` with names sorted, folders ending in `/`. Past
    /// [`MAX_LIST_ENTRIES`] entries the first ones are given, with `"truncated": true` and the
    /// `total` count.
    pub async fn list_directory(&self, path: &str) -> ToolResult {
        let real = match self.workspace.resolve_read(path) {
            Ok(real) => real,
            Err(r) => return refused(r),
        };
        match list(&real).await {
            Ok(mut entries) => {
                let mut result = json!({
                    "path": self.workspace.display_path(&real),
                });
                let total = entries.len();
                if total > MAX_LIST_ENTRIES {
                    entries.truncate(MAX_LIST_ENTRIES);
                    result["truncated"] = json!(true);
                    result["total"] = json!(total);
                }
                result["entries"] = json!(entries);
                ToolResult::ok(result)
            }
            Err(e) => failure(format!("list_directory: cannot list '{path}': {e}")),
        }
    }

    /// Deletes one file (never a folder): `{ok, path}`. A symlink is deleted itself; its
    /// target stays.
    pub async fn delete_file(&self, path: &str) -> ToolResult {
        let real = match self.workspace.resolve_delete(path) {
            Ok(real) => real,
            Err(r) => return refused(r),
        };
        let lock = self.lock_for(&real);
        let result = {
            let _guard = lock.lock().await;
            match fs::symlink_metadata(&real).await {
                Ok(meta) if meta.is_dir() => Err(format!(
                    "delete_file: '{path}' is a folder; delete_file removes files only"
                )),
                Ok(_) => fs::remove_file(&real)
                    .await
                    .map_err(|e| format!("delete_file: cannot delete '{path}': {e}")),
                Err(e) => Err(format!("delete_file: cannot delete '{path}': {e}")),
            }
        };
        drop(lock);
        self.release(&real);
        match result {
            Ok(()) => ToolResult::ok(json!({"path": self.workspace.display_path(&real)})),
            Err(e) => failure(e),
        }
    }

    /// The lock of one real path (created on first use).
    fn lock_for(&self, real: &Path) -> Arc<tokio::sync::Mutex<()>> {
        let mut locks = self.locks.lock().unwrap_or_else(|e| e.into_inner());
        locks.entry(real.to_path_buf()).or_default().clone()
    }

    /// Forgets the lock of `real` once nobody holds or waits for it.
    fn release(&self, real: &Path) {
        let mut locks = self.locks.lock().unwrap_or_else(|e| e.into_inner());
        if locks.get(real).is_some_and(|l| Arc::strong_count(l) == 1) {
            locks.remove(real);
        }
    }
}

/// Writes `bytes` to a temporary file beside `target`, then renames it over `target`, so a
/// reader sees the old content or the new one, never a part. The temporary file gets a fresh
/// random name and is created exclusively (an existing file or link of that name is never
/// opened, so nothing planted there can redirect the write); it takes over the permissions of
/// the file it replaces.
pub async fn write_atomically(target: &Path, bytes: &[u8]) -> std::io::Result<()> {
    let parent = target
        .parent()
        .ok_or_else(|| std::io::Error::other("the path has no parent folder"))?;
    if target.file_name().is_none() {
        return Err(std::io::Error::other("the path names no file"));
    }
    fs::create_dir_all(parent).await?;
    let (temp, mut file) = create_temp(parent).await?;
    let written = async {
        file.write_all(bytes).await?;
        // Finish every write before the rename, so readers never see a part.
        file.flush().await?;
        if let Ok(meta) = fs::metadata(target).await {
            file.set_permissions(meta.permissions()).await?;
        }
        drop(file);
        fs::rename(&temp, target).await
    }
    .await;
    if written.is_err() {
        let _ = fs::remove_file(&temp).await;
    }
    written
}

/// Creates a new temporary file `.orket-tmp-<16 hex digits>` in `folder`, retrying with a new
/// name when one exists already.
async fn create_temp(folder: &Path) -> std::io::Result<(PathBuf, fs::File)> {
    for _ in 0..TEMP_ATTEMPTS {
        let temp = folder.join(format!(".orket-tmp-{:016x}", random_u64()));
        match fs::OpenOptions::new()
            .write(true)
            .create_new(true)
            .open(&temp)
            .await
        {
            Ok(file) => return Ok((temp, file)),
            Err(e) if e.kind() == ErrorKind::AlreadyExists => continue,
            Err(e) => return Err(e),
        }
    }
    Err(std::io::Error::new(
        ErrorKind::AlreadyExists,
        format!("no free temporary file name in {}", folder.display()),
    ))
}

/// An unpredictable number: std's randomly keyed hasher over a counter, the process id and the
/// time.
fn random_u64() -> u64 {
    let mut hasher = std::collections::hash_map::RandomState::new().build_hasher();
    hasher.write_u64(TEMP_COUNTER.fetch_add(1, Ordering::Relaxed));
    hasher.write_u32(std::process::id());
    if let Ok(now) = std::time::SystemTime::now().duration_since(std::time::UNIX_EPOCH) {
        hasher.write_u128(now.as_nanos());
    }
    hasher.finish()
}

/// The sorted entry names of a folder, folders (also through links) with a trailing `/`.
async fn list(real: &Path) -> std::io::Result<Vec<String>> {
    let mut dir = fs::read_dir(real).await?;
    let mut entries = Vec::new();
    while let Some(entry) = dir.next_entry().await? {
        let mut name = entry.file_name().to_string_lossy().into_owned();
        let is_dir = match fs::metadata(entry.path()).await {
            Ok(meta) => meta.is_dir(),
            Err(_) => false,
        };
        if is_dir {
            name.push('/');
        }
        entries.push(name);
    }
    entries.sort();
    Ok(entries)
}
