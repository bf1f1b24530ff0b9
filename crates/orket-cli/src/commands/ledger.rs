//! `orket verify <run-id>`, `orket verify --bundle FILE` and `orket export <run-id> FILE`: the
//! run's tamper-evident ledger (see `orket_store::ledger`) checked in the store or offline in
//! a bundle, and the bundle written.

use super::show::all_events;
use crate::project::Project;
use anyhow::{bail, Context, Result};
use orket_store::bundle::{Bundle, FileBlob, FORMAT};
use orket_store::{ledger, now_timestamp, RunRecord, Store};
use std::path::{Path, PathBuf};
use std::process::ExitCode;
use std::sync::Arc;

/// A workspace file larger than this is left out of a bundle (and named in `skipped`).
const MAX_BLOB: u64 = 16 * 1024 * 1024;

/// The most file bytes one bundle carries; files past it are left out (and named).
const MAX_BUNDLE: u64 = 256 * 1024 * 1024;

/// The store and run `run_id`, or an error naming what is missing.
async fn run_in_store(project: &Project, run_id: &str) -> Result<(Arc<dyn Store>, RunRecord)> {
    let Some(store) = project.existing_store().await? else {
        let path = project.store_name();
        bail!("run {run_id} not found (no store at {path})");
    };
    let Some(run) = store.get_run(run_id).await? else {
        bail!("run {run_id} not found");
    };
    Ok((store, run))
}

/// Recomputes the run's chain in the store: exit 0 when it holds, else an error naming the
/// first turn that does not match.
pub async fn verify_run(project: &Project, run_id: &str) -> Result<ExitCode> {
    let (store, _) = run_in_store(project, run_id).await?;
    let turns = store.list_turns(run_id).await?;
    let head = store.ledger_head(run_id).await?;
    match ledger::check(&turns, head.as_deref()) {
        Ok(chain) => {
            println!(
                "run {run_id}: ledger intact — {} turns, head {}",
                chain.turns,
                shown(&chain.head)
            );
            Ok(ExitCode::SUCCESS)
        }
        Err(broken) => bail!("run {run_id}: ledger broken: {broken}"),
    }
}

/// Checks a bundle offline: exit 0 when its chain and every file hold.
pub fn verify_bundle(file: &Path) -> Result<ExitCode> {
    let text = std::fs::read_to_string(file)
        .with_context(|| format!("reading the bundle {}", file.display()))?;
    let bundle: Bundle = serde_json::from_str(&text)
        .with_context(|| format!("{}: not an Orket run bundle ({FORMAT})", file.display()))?;
    match bundle.check() {
        Ok(chain) => {
            println!(
                "bundle {} (run {}): intact — {} turns, {} events, {} files, head {}",
                file.display(),
                bundle.run.id,
                chain.turns,
                bundle.events.len(),
                bundle.files.len(),
                shown(&chain.head)
            );
            // Everything checked travels in the file: whoever rewrites it can recompute it.
            println!(
                "  the bundle agrees with itself; it is the run you kept if this head is the one \
                 `orket verify {}` printed where the run took place",
                bundle.run.id
            );
            Ok(ExitCode::SUCCESS)
        }
        Err(broken) => bail!(
            "bundle {} (run {}): broken: {broken}",
            file.display(),
            bundle.run.id
        ),
    }
}

/// Writes the run's bundle to `file` (through a temporary file beside it, renamed into place).
pub async fn export(project: &Project, run_id: &str, file: &Path) -> Result<ExitCode> {
    let (store, run) = run_in_store(project, run_id).await?;
    let turns = store.list_turns(run_id).await?;
    let ledger_head = store.ledger_head(run_id).await?;
    let events = all_events(&*store, run_id).await?;
    let (files, skipped) = workspace_blobs(Path::new(&run.workspace))?;
    let bundle = Bundle {
        format: FORMAT.to_string(),
        exported_at: now_timestamp(),
        run,
        ledger_head,
        turns,
        events,
        files,
        skipped,
    };
    let text = serde_json::to_string_pretty(&bundle)?;
    write_through_temp(file, text.as_bytes())?;
    println!(
        "wrote {}: run {run_id}, {} turns, {} events, {} files ({} bytes), head {}",
        file.display(),
        bundle.turns.len(),
        bundle.events.len(),
        bundle.files.len(),
        text.len(),
        shown(bundle.ledger_head.as_deref().unwrap_or(ledger::GENESIS))
    );
    for why in &bundle.skipped {
        println!("  left out: {why}");
    }
    Ok(ExitCode::SUCCESS)
}

/// A head as shown: the hash, or "(no turns)".
fn shown(head: &str) -> &str {
    if head.is_empty() {
        "(no turns)"
    } else {
        head
    }
}

/// Every regular file under `workspace` as a blob, by path. Left out, and named in the second
/// list: links (never followed, also not when one is swapped in while reading: files are opened
/// with `O_NOFOLLOW`), dotfiles and dot folders (`.env`, `.git`: never bundled), files over
/// [`MAX_BLOB`], files past [`MAX_BUNDLE`] in all, and files that cannot be read. A workspace
/// that is gone gives none.
fn workspace_blobs(workspace: &Path) -> Result<(Vec<FileBlob>, Vec<String>)> {
    let (mut blobs, mut skipped) = (Vec::new(), Vec::new());
    if !workspace.is_dir() {
        skipped.push(format!("the workspace {} is gone", workspace.display()));
        return Ok((blobs, skipped));
    }
    let mut total = 0u64;
    let mut folders: Vec<PathBuf> = vec![workspace.to_path_buf()];
    while let Some(folder) = folders.pop() {
        let entries = match std::fs::read_dir(&folder) {
            Ok(entries) => entries,
            Err(e) => {
                skipped.push(format!("{}: {e}", folder.display()));
                continue;
            }
        };
        for entry in entries.flatten() {
            let path = entry.path();
            let relative = path
                .strip_prefix(workspace)
                .unwrap_or(&path)
                .to_string_lossy()
                .replace('\\', "/");
            if entry.file_name().to_string_lossy().starts_with('.') {
                skipped.push(format!("{relative}: a dotfile, never bundled"));
                continue;
            }
            let Ok(kind) = entry.file_type() else {
                skipped.push(format!("{relative}: its kind cannot be read"));
                continue;
            };
            if kind.is_dir() {
                folders.push(path);
                continue;
            }
            if !kind.is_file() {
                skipped.push(format!("{relative}: a link or special file, not followed"));
                continue;
            }
            match read_no_follow(&path, MAX_BLOB) {
                Ok(bytes) if total + bytes.len() as u64 > MAX_BUNDLE => {
                    skipped.push(format!("{relative}: past the bundle's {MAX_BUNDLE} bytes"));
                }
                Ok(bytes) => {
                    total += bytes.len() as u64;
                    blobs.push(FileBlob::new(relative, &bytes));
                }
                Err(why) => skipped.push(format!("{relative}: {why}")),
            }
        }
    }
    blobs.sort_by(|a, b| a.path.cmp(&b.path));
    skipped.sort();
    Ok((blobs, skipped))
}

/// The bytes of the regular file at `path`, opened without following a link, at most `max`.
fn read_no_follow(path: &Path, max: u64) -> std::result::Result<Vec<u8>, String> {
    use std::io::Read;
    use std::os::unix::fs::OpenOptionsExt;
    let file = std::fs::OpenOptions::new()
        .read(true)
        .custom_flags(libc::O_NOFOLLOW)
        .open(path)
        .map_err(|e| format!("cannot be opened ({e})"))?;
    let meta = file.metadata().map_err(|e| e.to_string())?;
    if !meta.is_file() {
        return Err("not a regular file".to_string());
    }
    if meta.len() > max {
        return Err(format!("{} bytes, over {max}", meta.len()));
    }
    let mut bytes = Vec::with_capacity(meta.len() as usize);
    file.take(max + 1)
        .read_to_end(&mut bytes)
        .map_err(|e| format!("cannot be read ({e})"))?;
    if bytes.len() as u64 > max {
        return Err(format!("grew past {max} bytes while read"));
    }
    Ok(bytes)
}

/// Writes `bytes` to `file` whole or not at all: a temporary file in the same folder, synced,
/// renamed over it.
fn write_through_temp(file: &Path, bytes: &[u8]) -> Result<()> {
    use std::io::Write;
    let folder = match file.parent() {
        Some(p) if !p.as_os_str().is_empty() => p,
        _ => Path::new("."),
    };
    let mut temp = tempfile::NamedTempFile::new_in(folder)
        .with_context(|| format!("creating a file in {}", folder.display()))?;
    temp.write_all(bytes)
        .and_then(|()| temp.as_file().sync_all())
        .with_context(|| format!("writing {}", file.display()))?;
    temp.persist(file)
        .with_context(|| format!("writing {}", file.display()))?;
    Ok(())
}
