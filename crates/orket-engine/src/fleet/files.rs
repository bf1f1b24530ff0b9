//! A run's files between the store and a folder: what a fleet run ships of its project, what
//! a turn changed in its workspace, and a folder brought to the store's state.
//!
//! Paths are relative to the project root and `/`-separated. Orket's own folder (`.orket`),
//! every dot entry, the runs' `orket.log` files and links are never shipped; a stored path that
//! is not a plain relative path is refused before anything is written.

use crate::error::EngineError;
use orket_store::fleet::{FileChange, RunFile};
use orket_store::ledger::sha256_hex;
use std::collections::BTreeMap;
use std::path::{Component, Path, PathBuf};

/// The most bytes a run's project may hold to be shipped to the fleet.
pub(crate) const MAX_PROJECT_BYTES: u64 = 256 * 1024 * 1024;

/// Every file under `dir` that a fleet ships, by its path from `root`, with its content.
pub(crate) fn read_tree(root: &Path, dir: &Path) -> Result<BTreeMap<String, Vec<u8>>, EngineError> {
    // One form for both (a workspace is known by its real path).
    let real = |p: &Path| p.canonicalize().unwrap_or_else(|_| p.to_path_buf());
    let (root, dir) = (&real(root), &real(dir));
    let mut files = BTreeMap::new();
    let mut total = 0u64;
    walk(root, dir, &mut files, &mut total)?;
    Ok(files)
}

fn walk(
    root: &Path,
    dir: &Path,
    files: &mut BTreeMap<String, Vec<u8>>,
    total: &mut u64,
) -> Result<(), EngineError> {
    let entries = match std::fs::read_dir(dir) {
        Ok(entries) => entries,
        Err(err) if err.kind() == std::io::ErrorKind::NotFound => return Ok(()),
        Err(err) => return Err(io_error(dir, &err)),
    };
    for entry in entries {
        let entry = entry.map_err(|err| io_error(dir, &err))?;
        let name = entry.file_name();
        let name = name.to_string_lossy();
        if name.starts_with('.') || name == "orket.log" || name.starts_with("orket.log.") {
            continue;
        }
        let path = entry.path();
        let kind = entry.file_type().map_err(|err| io_error(&path, &err))?;
        if kind.is_dir() {
            walk(root, &path, files, total)?;
        } else if kind.is_file() {
            let content = std::fs::read(&path).map_err(|err| io_error(&path, &err))?;
            *total += content.len() as u64;
            if *total > MAX_PROJECT_BYTES {
                return Err(EngineError::Workspace {
                    path: root.display().to_string(),
                    message: format!(
                        "the project holds more than {} MiB of files; a fleet run ships at most that",
                        MAX_PROJECT_BYTES / (1024 * 1024)
                    ),
                });
            }
            files.insert(relative(root, &path)?, content);
        }
    }
    Ok(())
}

/// `path` from `root`, `/`-separated.
fn relative(root: &Path, path: &Path) -> Result<String, EngineError> {
    let rel = path
        .strip_prefix(root)
        .map_err(|_| EngineError::Workspace {
            path: path.display().to_string(),
            message: format!("not inside the project {}", root.display()),
        })?;
    Ok(rel
        .components()
        .map(|c| c.as_os_str().to_string_lossy())
        .collect::<Vec<_>>()
        .join("/"))
}

/// What each file's content hashes to.
pub(crate) fn hashes(files: &BTreeMap<String, Vec<u8>>) -> BTreeMap<String, String> {
    files
        .iter()
        .map(|(path, content)| (path.clone(), sha256_hex(content)))
        .collect()
}

/// The changes from `before` (hashes) to `after` (contents): new and changed files with their
/// content, removed ones without.
pub(crate) fn changes(
    before: &BTreeMap<String, String>,
    after: BTreeMap<String, Vec<u8>>,
) -> Vec<FileChange> {
    let mut out: Vec<FileChange> = before
        .keys()
        .filter(|path| !after.contains_key(*path))
        .map(|path| FileChange {
            path: path.clone(),
            content: None,
        })
        .collect();
    for (path, content) in after {
        if before.get(&path) != Some(&sha256_hex(&content)) {
            out.push(FileChange {
                path,
                content: Some(content),
            });
        }
    }
    out
}

/// The files of `tree` as changes (a whole project, shipped).
pub(crate) fn as_changes(tree: BTreeMap<String, Vec<u8>>) -> Vec<FileChange> {
    tree.into_iter()
        .map(|(path, content)| FileChange {
            path,
            content: Some(content),
        })
        .collect()
}

/// Writes (or removes) each stored file under `root`; returns the highest write number among
/// them. Every path is checked before anything is written, and no write goes through a link
/// already in the folder.
pub(crate) fn materialize(root: &Path, files: &[RunFile]) -> Result<Option<i64>, EngineError> {
    let paths = files
        .iter()
        .map(|file| inside(root, &file.change.path))
        .collect::<Result<Vec<_>, _>>()?;
    let mut highest = None;
    for (file, path) in files.iter().zip(paths) {
        no_link_on_the_way(root, &path)?;
        match &file.change.content {
            Some(content) => {
                if let Some(parent) = path.parent() {
                    std::fs::create_dir_all(parent).map_err(|err| io_error(parent, &err))?;
                }
                std::fs::write(&path, content).map_err(|err| io_error(&path, &err))?;
            }
            None => match std::fs::remove_file(&path) {
                Err(err) if err.kind() != std::io::ErrorKind::NotFound => {
                    return Err(io_error(&path, &err))
                }
                _ => {}
            },
        }
        highest = highest.max(Some(file.rev));
    }
    Ok(highest)
}

/// Refuses `path` when it, or a folder on the way to it from `root`, is a link.
fn no_link_on_the_way(root: &Path, path: &Path) -> Result<(), EngineError> {
    let mut at = root.to_path_buf();
    for part in path.strip_prefix(root).unwrap_or(path).components() {
        at.push(part);
        match std::fs::symlink_metadata(&at) {
            Ok(meta) if meta.file_type().is_symlink() => {
                return Err(EngineError::Workspace {
                    path: at.display().to_string(),
                    message: "is a link: a stored file is never written through one".to_string(),
                })
            }
            Ok(_) => {}
            Err(_) => break,
        }
    }
    Ok(())
}

/// `rel` under `root`, refused unless it is a plain relative path without dot entries.
pub(crate) fn inside(root: &Path, rel: &str) -> Result<PathBuf, EngineError> {
    let path = Path::new(rel);
    let plain = !rel.is_empty()
        && path.components().all(|c| match c {
            Component::Normal(name) => !name.to_string_lossy().starts_with('.'),
            _ => false,
        });
    if !plain {
        return Err(EngineError::Workspace {
            path: rel.to_string(),
            message: "a stored file's path must be plain and relative; nothing was written"
                .to_string(),
        });
    }
    Ok(root.join(path))
}

fn io_error(path: &Path, err: &std::io::Error) -> EngineError {
    EngineError::Workspace {
        path: path.display().to_string(),
        message: err.to_string(),
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn a_tree_ships_without_dot_entries_logs_and_links_and_comes_back_whole() {
        let dir = tempfile::tempdir().unwrap();
        let root = dir.path().join("project");
        std::fs::create_dir_all(root.join("model/core")).unwrap();
        std::fs::create_dir_all(root.join(".orket")).unwrap();
        std::fs::create_dir_all(root.join("workspace/e")).unwrap();
        std::fs::write(root.join("model/core/org.json"), "{}").unwrap();
        std::fs::write(root.join(".orket/orket.db"), "db").unwrap();
        std::fs::write(root.join("workspace/e/orket.log"), "log").unwrap();
        std::fs::write(root.join("workspace/e/a.py"), "a").unwrap();
        std::os::unix::fs::symlink("/etc/passwd", root.join("workspace/e/link")).unwrap();
        let tree = read_tree(&root, &root).unwrap();
        assert_eq!(
            tree.keys().collect::<Vec<_>>(),
            ["model/core/org.json", "workspace/e/a.py"]
        );

        let before = hashes(&tree);
        std::fs::write(root.join("workspace/e/a.py"), "a2").unwrap();
        std::fs::write(root.join("workspace/e/b.py"), "b").unwrap();
        std::fs::remove_file(root.join("model/core/org.json")).unwrap();
        let changed = changes(&before, read_tree(&root, &root).unwrap());
        let summary: Vec<(&str, bool)> = changed
            .iter()
            .map(|c| (c.path.as_str(), c.content.is_some()))
            .collect();
        assert_eq!(
            summary,
            [
                ("model/core/org.json", false),
                ("workspace/e/a.py", true),
                ("workspace/e/b.py", true)
            ]
        );

        let elsewhere = dir.path().join("worker");
        let stored: Vec<RunFile> = changed
            .into_iter()
            .map(|change| RunFile {
                change,
                seq: 4,
                rev: 9,
            })
            .collect();
        assert_eq!(materialize(&elsewhere, &stored).unwrap(), Some(9));
        assert_eq!(
            std::fs::read_to_string(elsewhere.join("workspace/e/a.py")).unwrap(),
            "a2"
        );
    }

    #[test]
    fn a_stored_path_that_leaves_the_folder_is_refused() {
        let dir = tempfile::tempdir().unwrap();
        for bad in ["../x", "/etc/x", "a/../../x", ".orket/x", ""] {
            let file = RunFile {
                change: FileChange {
                    path: bad.to_string(),
                    content: Some(b"x".to_vec()),
                },
                seq: 1,
                rev: 1,
            };
            let err = materialize(dir.path(), &[file]).unwrap_err();
            assert!(
                err.to_string().contains("plain and relative"),
                "{bad}: {err}"
            );
        }
        assert_eq!(std::fs::read_dir(dir.path()).unwrap().count(), 0);
        // A bad path anywhere in a batch refuses the whole batch.
        let batch: Vec<RunFile> = ["ok.txt", "../escape"]
            .iter()
            .map(|path| RunFile {
                change: FileChange {
                    path: path.to_string(),
                    content: Some(b"x".to_vec()),
                },
                seq: 1,
                rev: 1,
            })
            .collect();
        assert!(materialize(dir.path(), &batch).is_err());
        assert_eq!(std::fs::read_dir(dir.path()).unwrap().count(), 0);
    }

    #[test]
    fn a_stored_file_is_never_written_through_a_link() {
        let dir = tempfile::tempdir().unwrap();
        let outside = dir.path().join("outside");
        std::fs::create_dir_all(&outside).unwrap();
        let root = dir.path().join("copy");
        std::fs::create_dir_all(root.join("ws")).unwrap();
        std::os::unix::fs::symlink(outside.join("target.txt"), root.join("ws/a.txt")).unwrap();
        std::os::unix::fs::symlink(&outside, root.join("linked")).unwrap();
        for path in ["ws/a.txt", "linked/b.txt"] {
            let file = RunFile {
                change: FileChange {
                    path: path.to_string(),
                    content: Some(b"x".to_vec()),
                },
                seq: 1,
                rev: 1,
            };
            let err = materialize(&root, &[file]).unwrap_err();
            assert!(err.to_string().contains("is a link"), "{path}: {err}");
        }
        assert_eq!(std::fs::read_dir(&outside).unwrap().count(), 0);
    }
}
