//! Path confinement (SPEC §7 "Paths"): where a tool call may read and write.
//!
//! Relative paths resolve against the workspace root; `..` is refused outright; absolute paths
//! are allowed only when their real location (after following every symlink, dangling ones
//! included) lies inside the root — or, for reads, inside one of the epic's references. Writes
//! to protected places (`.git`, `.env`, secret-looking names, `verification/`) are refused.
//!
//! The check happens before the tool runs; a link swapped in between check and use is not
//! guarded against (agents only act through the tools, which re-check every call).

use crate::gate::{codes, Refusal};
use std::fs;
use std::io;
use std::path::{Component, Path, PathBuf};

/// How many symlinks one resolution may follow before it gives up (as the OS does).
const MAX_LINK_HOPS: usize = 40;

/// Words that mark a file name as holding secrets; such files are never written by agents.
const SECRET_WORDS: [&str; 3] = ["secret", "credential", "password"];

/// The folder of verification fixtures at the workspace root, not writable by agents.
const VERIFICATION_DIR: &str = "verification";

/// A workspace root and the read-only references of an epic, canonicalized.
#[derive(Debug, Clone)]
pub struct Workspace {
    root: PathBuf,
    references: Vec<PathBuf>,
}

/// Whether a path is resolved for reading (root or references) or writing (root only).
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
enum Access {
    Read,
    Write,
}

impl Workspace {
    /// Creates `root` if needed and canonicalizes it and the references that exist (references
    /// that do not exist yet are kept as absolute paths). An empty reference, or one that cannot
    /// be made absolute, is skipped: it would otherwise be a prefix of every path.
    pub fn new(root: &Path, references: &[PathBuf]) -> io::Result<Workspace> {
        fs::create_dir_all(root)?;
        let root = fs::canonicalize(root)?;
        let references = references
            .iter()
            .filter(|r| !r.as_os_str().is_empty())
            .filter_map(|r| match fs::canonicalize(r) {
                Ok(real) => Some(real),
                Err(_) => std::path::absolute(r).ok().map(|abs| normalize(&abs)),
            })
            .filter(|r| r.is_absolute())
            .collect();
        Ok(Workspace { root, references })
    }

    /// The canonical workspace root.
    pub fn root(&self) -> &Path {
        &self.root
    }

    /// The references reads may also use (canonical when they existed at creation).
    pub fn references(&self) -> &[PathBuf] {
        &self.references
    }

    /// Resolves `path` for reading: the real location, inside the root or a reference.
    pub fn resolve_read(&self, path: &str) -> Result<PathBuf, Refusal> {
        self.resolve(path, Access::Read)
    }

    /// Resolves `path` for writing: the real location, inside the root and not protected.
    pub fn resolve_write(&self, path: &str) -> Result<PathBuf, Refusal> {
        let real = self.resolve(path, Access::Write)?;
        // Both the path as written and where it really points must be unprotected.
        let lexical = self.lexical(path);
        self.check_unprotected(path, [&lexical, &real])?;
        Ok(real)
    }

    /// Refuses `path` when any of `candidates` (absolute) is a protected place in the root.
    fn check_unprotected(&self, path: &str, candidates: [&PathBuf; 2]) -> Result<(), Refusal> {
        for candidate in candidates {
            if let Ok(rel) = candidate.strip_prefix(&self.root) {
                if let Some(why) = protected_reason(rel) {
                    return Err(Refusal::new(
                        codes::PATH_PROTECTED,
                        format!("writing '{path}' is refused: {why}"),
                    ));
                }
            }
        }
        Ok(())
    }

    /// Resolves `path` for deleting. Like [`Workspace::resolve_write`], except that when the
    /// path names a symlink, the link itself is returned (in its parent folder's real location,
    /// which must lie inside the root): deleting a link removes the link, never its target.
    pub fn resolve_delete(&self, path: &str) -> Result<PathBuf, Refusal> {
        check_syntax(path)?;
        let lexical = self.lexical(path);
        let is_link = fs::symlink_metadata(&lexical).is_ok_and(|m| m.file_type().is_symlink());
        let (Some(parent), Some(name)) = (lexical.parent(), lexical.file_name()) else {
            return self.resolve_write(path);
        };
        if !is_link {
            return self.resolve_write(path);
        }
        let parent_real = self.confine(path, parent, Access::Write)?;
        let link = parent_real.join(name);
        self.check_unprotected(path, [&lexical, &link])?;
        Ok(link)
    }

    /// `real` relative to the root with `/` separators (`.` for the root itself), or the full
    /// path when it lies outside (a reference).
    pub fn display_path(&self, real: &Path) -> String {
        match real.strip_prefix(&self.root) {
            Ok(rel) if rel.as_os_str().is_empty() => ".".to_string(),
            Ok(rel) => rel
                .components()
                .map(|c| c.as_os_str().to_string_lossy().into_owned())
                .collect::<Vec<_>>()
                .join("/"),
            Err(_) => real.display().to_string(),
        }
    }

    /// The path as written, made absolute against the root (no link followed).
    fn lexical(&self, path: &str) -> PathBuf {
        let p = Path::new(path);
        if p.is_absolute() {
            normalize(p)
        } else {
            normalize(&self.root.join(p))
        }
    }

    fn resolve(&self, path: &str, access: Access) -> Result<PathBuf, Refusal> {
        check_syntax(path)?;
        self.confine(path, &self.lexical(path), access)
    }

    /// The real location of `lexical` (the absolute form of `path`, as written), refused unless
    /// it lies inside the root (reads: or a reference).
    fn confine(&self, path: &str, lexical: &Path, access: Access) -> Result<PathBuf, Refusal> {
        let real = real_location(lexical).map_err(|e| {
            Refusal::new(
                codes::PATH_ESCAPE,
                format!("path '{path}' is refused: its real location cannot be resolved ({e})"),
            )
        })?;
        let inside_root = real.starts_with(&self.root);
        let inside_ref =
            access == Access::Read && self.references.iter().any(|r| real.starts_with(r));
        if inside_root || inside_ref {
            return Ok(real);
        }
        let allowed = match access {
            Access::Read if !self.references.is_empty() => format!(
                "the workspace {} or its references ({})",
                self.root.display(),
                self.references
                    .iter()
                    .map(|r| r.display().to_string())
                    .collect::<Vec<_>>()
                    .join(", ")
            ),
            Access::Read => format!("the workspace {}", self.root.display()),
            Access::Write => format!(
                "the workspace {} (writes may not go elsewhere)",
                self.root.display()
            ),
        };
        let message = if real != lexical {
            format!(
                "path '{path}' really points to {} (symlinks followed), outside {allowed}",
                real.display()
            )
        } else {
            format!("path '{path}' lies outside {allowed}")
        };
        Err(Refusal::new(codes::PATH_ESCAPE, message))
    }
}

/// Refuses a path that is empty, holds a NUL byte or has a `..` component.
fn check_syntax(path: &str) -> Result<(), Refusal> {
    if path.trim().is_empty() {
        return Err(Refusal::new(
            codes::BAD_ARGS,
            "the path is empty; name a file or folder inside the workspace",
        ));
    }
    if path.contains('\0') {
        return Err(Refusal::new(
            codes::BAD_ARGS,
            format!("the path {path:?} contains a NUL byte"),
        ));
    }
    if Path::new(path)
        .components()
        .any(|c| c == Component::ParentDir)
    {
        return Err(Refusal::new(
            codes::PATH_ESCAPE,
            format!("path '{path}' is refused: '..' components may leave the workspace"),
        ));
    }
    Ok(())
}

/// Why writing to `rel` (relative to the root) is refused, if it is.
fn protected_reason(rel: &Path) -> Option<String> {
    let parts: Vec<String> = rel
        .components()
        .filter_map(|c| match c {
            Component::Normal(s) => Some(s.to_string_lossy().into_owned()),
            _ => None,
        })
        .collect();
    if parts.iter().any(|p| p.eq_ignore_ascii_case(".git")) {
        return Some("files inside .git are protected".to_string());
    }
    if parts
        .first()
        .is_some_and(|p| p.eq_ignore_ascii_case(VERIFICATION_DIR))
    {
        return Some(format!(
            "{VERIFICATION_DIR}/ holds the verification fixtures, which agents may not write"
        ));
    }
    let name = parts.last()?;
    let lower = name.to_lowercase();
    if lower == ".env" || lower.starts_with(".env.") {
        return Some(format!(
            "'{name}' is an environment file and may hold secrets"
        ));
    }
    if let Some(word) = SECRET_WORDS.iter().find(|w| lower.contains(**w)) {
        return Some(format!(
            "the file name '{name}' contains '{word}' and may hold secrets"
        ));
    }
    None
}

/// Removes `.` components and applies `..` lexically (only used where no link can interfere:
/// on parts that do not exist, or on a path already refused for containing `..`).
fn normalize(path: &Path) -> PathBuf {
    let mut out = PathBuf::new();
    for c in path.components() {
        match c {
            Component::CurDir => {}
            Component::ParentDir => {
                if !out.pop() {
                    out.push(c);
                }
            }
            other => out.push(other),
        }
    }
    out
}

/// Where an absolute path really is: the longest existing prefix canonicalized (dangling
/// symlinks followed by hand), then the rest, which does not exist and so holds no link.
fn real_location(path: &Path) -> io::Result<PathBuf> {
    let mut current = normalize(path);
    for _ in 0..MAX_LINK_HOPS {
        if let Ok(real) = fs::canonicalize(&current) {
            return Ok(real);
        }
        let comps: Vec<Component> = current.components().collect();
        let mut next = None;
        for i in (0..comps.len()).rev() {
            let prefix: PathBuf = comps[..=i].iter().collect();
            let rest: PathBuf = comps[i + 1..].iter().collect();
            let Ok(meta) = fs::symlink_metadata(&prefix) else {
                continue;
            };
            if let Ok(real) = fs::canonicalize(&prefix) {
                return Ok(normalize(&real.join(rest)));
            }
            if meta.file_type().is_symlink() {
                // A dangling link: follow it by hand from its parent's real location.
                let target = fs::read_link(&prefix)?;
                let parent = prefix.parent().unwrap_or(Path::new("/"));
                let parent_real = fs::canonicalize(parent)?;
                next = Some(normalize(&parent_real.join(target).join(rest)));
                break;
            }
            return Err(io::Error::other(format!(
                "{} exists but cannot be canonicalized",
                prefix.display()
            )));
        }
        match next {
            Some(n) => current = n,
            None => return Ok(current),
        }
    }
    Err(io::Error::other("too many levels of symbolic links"))
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn normalize_drops_dots_and_applies_parents() {
        assert_eq!(normalize(Path::new("/a/./b/../c")), PathBuf::from("/a/c"));
        assert_eq!(normalize(Path::new("/a/b/")), PathBuf::from("/a/b"));
    }

    #[test]
    fn protected_names() {
        assert!(protected_reason(Path::new(".git/config")).is_some());
        assert!(protected_reason(Path::new("sub/.git/HEAD")).is_some());
        assert!(protected_reason(Path::new(".env")).is_some());
        assert!(protected_reason(Path::new("app/.env.local")).is_some());
        assert!(protected_reason(Path::new("DB_Password.txt")).is_some());
        assert!(protected_reason(Path::new("my_secrets.json")).is_some());
        assert!(protected_reason(Path::new("aws_credentials")).is_some());
        assert!(protected_reason(Path::new("verification/test_x.py")).is_some());
        assert!(protected_reason(Path::new("src/verification_notes.md")).is_none());
        assert!(protected_reason(Path::new("environment.md")).is_none());
        assert!(protected_reason(Path::new("src/app.py")).is_none());
    }
}
