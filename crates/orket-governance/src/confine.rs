//! Path confinement: the one place that decides where a path may lead.
//!
//! A [`Confinement`] is a root folder and a set of [`Rules`]. Every path is resolved the same
//! way: `..` is refused outright; the path is made absolute against the root; every symlink on
//! the way is followed (dangling ones by hand) and the real location must lie inside the root —
//! or, for reads, inside one of the read-only references. The rules add what each caller needs:
//!
//! - the agents' workspace ([`Confinement::workspace`], [`Rules::AGENT`]): absolute paths are
//!   accepted when they lead inside; writes to `.git`, `.env*`, secret-looking names and
//!   `verification/` are refused;
//! - the project's own folders ([`ProjectFolders`], [`Rules::PROJECT`]): paths relative to the
//!   project root whose first component names an allowed folder (`model/`, `config/`,
//!   `workspace/`), each folder its own boundary, no component — as written or where links lead
//!   — starting with `.` (so `.env`, `.git` and `.orket/` stay out of reach). The server's file
//!   routes and the driver's writes go through it; the driver also never writes through a link
//!   ([`Rules::no_linked_files`]);
//! - a file named by a person inside the project (a replay file): [`Confinement::folder`] with
//!   [`Rules::PROJECT`].
//!
//! The check happens before the file is used; a link swapped in between check and use is not
//! guarded against (agents only act through the tools, which re-check every call).

use crate::refusal::{Refusal, RefusalCode};
use orket_core::tools::VERIFICATION_DIR;
use std::fs;
use std::io;
use std::path::{Component, Path, PathBuf};

/// How many symlinks one resolution may follow before it gives up (as the OS does).
const MAX_LINK_HOPS: usize = 40;

/// Words that mark a file name as holding secrets; such files are never written by agents.
const SECRET_WORDS: [&str; 3] = ["secret", "credential", "password"];

/// What a confinement refuses beyond leaving its root.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct Rules {
    /// Absolute paths are accepted when they lead inside the root; otherwise only relative
    /// paths are.
    pub absolute_paths: bool,
    /// Writes to the places agents may not write are refused: `.git`, `.env*`, names with
    /// `secret`, `credential` or `password`, and the verification folder.
    pub agent_protection: bool,
    /// A path with a component starting with `.` (as written, or where its links lead) is
    /// refused, and so is a backslash.
    pub no_dotfiles: bool,
    /// A write never goes through a link: the file itself may not be a symlink.
    pub no_linked_files: bool,
}

impl Rules {
    /// The agents' workspace.
    pub const AGENT: Rules = Rules {
        absolute_paths: true,
        agent_protection: true,
        no_dotfiles: false,
        no_linked_files: false,
    };

    /// Files a person names inside the project: relative paths, no dotfiles.
    pub const PROJECT: Rules = Rules {
        absolute_paths: false,
        agent_protection: false,
        no_dotfiles: true,
        no_linked_files: false,
    };
}

/// Whether a path is resolved for reading (root or references) or writing (root only).
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Access {
    /// Reading or listing.
    Read,
    /// Writing or creating.
    Write,
}

/// A root folder, its read-only references and the rules paths obey, canonicalized.
#[derive(Debug, Clone)]
pub struct Confinement {
    root: PathBuf,
    references: Vec<PathBuf>,
    rules: Rules,
    /// How refusals name the root ("the workspace /srv/ws", "the project's model/").
    label: String,
}

impl Confinement {
    /// The agents' workspace: creates `root` if needed and canonicalizes it and the references
    /// that exist (references that do not exist yet are kept as absolute paths). An empty
    /// reference, or one that cannot be made absolute, is skipped: it would otherwise be a
    /// prefix of every path.
    pub fn workspace(root: &Path, references: &[PathBuf]) -> io::Result<Confinement> {
        fs::create_dir_all(root)?;
        let references = references
            .iter()
            .filter(|r| !r.as_os_str().is_empty())
            .filter_map(|r| match fs::canonicalize(r) {
                Ok(real) => Some(real),
                Err(_) => std::path::absolute(r).ok().map(|abs| normalize(&abs)),
            })
            .filter(|r| r.is_absolute())
            .collect();
        let root = fs::canonicalize(root)?;
        Ok(Confinement {
            label: format!("the workspace {}", root.display()),
            root,
            references,
            rules: Rules::AGENT,
        })
    }

    /// An existing folder with `rules` and no references, named `label` in refusals.
    pub fn folder(root: &Path, rules: Rules, label: impl Into<String>) -> io::Result<Confinement> {
        Ok(Confinement {
            root: fs::canonicalize(root)?,
            references: Vec::new(),
            rules,
            label: label.into(),
        })
    }

    /// The same confinement (references, rules) around another existing folder: a copy of the
    /// workspace a candidate works in.
    pub fn moved_to(&self, root: &Path) -> io::Result<Confinement> {
        let root = fs::canonicalize(root)?;
        Ok(Confinement {
            label: format!("the workspace {}", root.display()),
            root,
            references: self.references.clone(),
            rules: self.rules,
        })
    }

    /// The canonical root.
    pub fn root(&self) -> &Path {
        &self.root
    }

    /// The references reads may also use (canonical when they existed at creation).
    pub fn references(&self) -> &[PathBuf] {
        &self.references
    }

    /// Resolves `path` for `access`.
    pub fn resolve(&self, path: &str, access: Access) -> Result<PathBuf, Refusal> {
        match access {
            Access::Read => self.resolve_read(path),
            Access::Write => self.resolve_write(path),
        }
    }

    /// Resolves `path` for reading: the real location, inside the root or a reference.
    pub fn resolve_read(&self, path: &str) -> Result<PathBuf, Refusal> {
        self.check_syntax(path)?;
        let real = self.confine(path, &self.lexical(path), Access::Read)?;
        self.check_no_dotfiles(path, &real)?;
        Ok(real)
    }

    /// Resolves `path` for writing: the real location, inside the root and not protected.
    pub fn resolve_write(&self, path: &str) -> Result<PathBuf, Refusal> {
        self.check_syntax(path)?;
        let lexical = self.lexical(path);
        if self.rules.no_linked_files
            && fs::symlink_metadata(&lexical).is_ok_and(|m| m.file_type().is_symlink())
        {
            return Err(Refusal::new(
                RefusalCode::PathProtected,
                format!("writing '{path}' is refused: it is a link, and links are never written through"),
            ));
        }
        let real = self.confine(path, &lexical, Access::Write)?;
        self.check_no_dotfiles(path, &real)?;
        // Both the path as written and where it really points must be unprotected.
        self.check_unprotected(path, [&lexical, &real])?;
        Ok(real)
    }

    /// Resolves `path` for deleting. Like [`Confinement::resolve_write`], except that when
    /// the path names a symlink, the link itself is returned (in its parent folder's real
    /// location, which must lie inside the root): deleting a link removes the link, never its
    /// target.
    pub fn resolve_delete(&self, path: &str) -> Result<PathBuf, Refusal> {
        self.check_syntax(path)?;
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
            Ok(rel) => slash_path(rel),
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

    /// Empty, NUL, `..`; absolute paths and dot components as the rules say.
    fn check_syntax(&self, path: &str) -> Result<(), Refusal> {
        check_syntax(path, &self.label)?;
        let p = Path::new(path);
        if !self.rules.absolute_paths && (p.is_absolute() || p.has_root()) {
            return Err(Refusal::new(
                RefusalCode::PathEscape,
                format!("path '{path}' is refused: absolute paths are not allowed; give a path relative to {}", self.root.display()),
            ));
        }
        if self.rules.no_dotfiles {
            if path.contains('\\') {
                return Err(Refusal::new(
                    RefusalCode::PathEscape,
                    format!("path '{path}' is refused: it contains a backslash"),
                ));
            }
            if let Some(dot) = dot_component(p) {
                return Err(Refusal::new(
                    RefusalCode::PathProtected,
                    format!("path '{path}' is refused: '{dot}' is a dotfile or dot folder (.env, .git, .orket, ...), which are never used"),
                ));
            }
        }
        Ok(())
    }

    /// Under [`Rules::no_dotfiles`], refuses a real location that is a dotfile or lies in a
    /// dot folder of the root (a link may lead there).
    fn check_no_dotfiles(&self, path: &str, real: &Path) -> Result<(), Refusal> {
        if !self.rules.no_dotfiles {
            return Ok(());
        }
        let inside = real.strip_prefix(&self.root).unwrap_or(real);
        match dot_component(inside) {
            Some(dot) => Err(Refusal::new(
                RefusalCode::PathProtected,
                format!("path '{path}' is refused: it leads to the dotfile or dot folder '{dot}'"),
            )),
            None => Ok(()),
        }
    }

    /// Under [`Rules::agent_protection`], refuses `path` when any of `candidates` (absolute)
    /// is a protected place in the root.
    fn check_unprotected(&self, path: &str, candidates: [&PathBuf; 2]) -> Result<(), Refusal> {
        if !self.rules.agent_protection {
            return Ok(());
        }
        for candidate in candidates {
            if let Ok(rel) = candidate.strip_prefix(&self.root) {
                if let Some(why) = protected_reason(rel) {
                    return Err(Refusal::new(
                        RefusalCode::PathProtected,
                        format!("writing '{path}' is refused: {why}"),
                    ));
                }
            }
        }
        Ok(())
    }

    /// The real location of `lexical` (the absolute form of `path`, as written), refused unless
    /// it lies inside the root (reads: or a reference).
    fn confine(&self, path: &str, lexical: &Path, access: Access) -> Result<PathBuf, Refusal> {
        let real = real_location(lexical).map_err(|e| {
            Refusal::new(
                RefusalCode::PathEscape,
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
                "{} or its references ({})",
                self.label,
                self.references
                    .iter()
                    .map(|r| r.display().to_string())
                    .collect::<Vec<_>>()
                    .join(", ")
            ),
            _ => self.label.clone(),
        };
        // Where a link leads is not named: a refusal never tells what lies outside.
        let message = if real != lexical {
            format!("path '{path}' is refused: it leads through a link to outside {allowed}")
        } else {
            format!("path '{path}' is refused: it lies outside {allowed}")
        };
        Err(Refusal::new(RefusalCode::PathEscape, message))
    }
}

/// A path of the project resolved by [`ProjectFolders`].
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Resolved {
    /// Where it really is.
    pub real: PathBuf,
    /// The path relative to the project root, with `/` separators (`./` dropped).
    pub display: String,
}

/// Why [`ProjectFolders`] cannot resolve a path.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum FolderError {
    /// The path is refused (its syntax, a dotfile, a link leading out of its folder).
    Refused(Refusal),
    /// The path is empty, or its folder does not exist in the project.
    NotFound(String),
}

impl std::fmt::Display for FolderError {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        match self {
            FolderError::Refused(refusal) => write!(f, "{}", refusal.message),
            FolderError::NotFound(message) => f.write_str(message),
        }
    }
}

/// Some of the project's own top folders (`model/`, `config/`, `workspace/`), each its own
/// confinement with the same rules: a path relative to the project root must start with one
/// of them and, links followed, stay inside that folder (a link from `model/` into
/// `workspace/` is refused too).
#[derive(Debug, Clone)]
pub struct ProjectFolders {
    root: PathBuf,
    tops: &'static [&'static str],
    rules: Rules,
}

impl ProjectFolders {
    /// The folders `tops` of the project at `root` (which must exist), with `rules`.
    pub fn new(
        root: &Path,
        tops: &'static [&'static str],
        rules: Rules,
    ) -> io::Result<ProjectFolders> {
        Ok(ProjectFolders {
            root: fs::canonicalize(root)?,
            tops,
            rules,
        })
    }

    /// The top folders, in order.
    pub fn tops(&self) -> &'static [&'static str] {
        self.tops
    }

    /// Resolves `path` (relative to the project root) for `access`.
    pub fn resolve(&self, path: &str, access: Access) -> Result<Resolved, FolderError> {
        let refused =
            |message: String| FolderError::Refused(Refusal::new(RefusalCode::PathEscape, message));
        let project = Confinement {
            root: self.root.clone(),
            references: Vec::new(),
            rules: self.rules,
            label: "the project".to_string(),
        };
        project.check_syntax(path).map_err(FolderError::Refused)?;
        let names: Vec<String> = Path::new(path)
            .components()
            .filter_map(|c| match c {
                Component::Normal(name) => Some(name.to_string_lossy().into_owned()),
                _ => None,
            })
            .collect();
        let display = names.join("/");
        let (top, rest) = match names.split_first() {
            Some((top, rest)) => (top.as_str(), rest.join("/")),
            None => ("", String::new()),
        };
        let Some(top) = self.tops.iter().copied().find(|t| *t == top) else {
            return Err(refused(format!(
                "path '{path}' is refused: only {} are used",
                self.tops
                    .iter()
                    .map(|t| format!("{t}/"))
                    .collect::<Vec<_>>()
                    .join(", ")
            )));
        };
        let top_dir = self.root.join(top);
        if !top_dir.is_dir() {
            return Err(FolderError::NotFound(format!(
                "{top}/ does not exist in the project {}",
                self.root.display()
            )));
        }
        let folder = Confinement::folder(&top_dir, self.rules, format!("the project's {top}/"))
            .map_err(|e| FolderError::NotFound(format!("{}: {e}", top_dir.display())))?;
        if !folder.root.starts_with(&self.root) {
            return Err(refused(format!(
                "path '{path}' is refused: {top}/ is a link out of the project"
            )));
        }
        let real = if rest.is_empty() {
            folder.root.clone()
        } else {
            folder
                .resolve(&rest, access)
                .map_err(|r| FolderError::Refused(r.renamed(&rest, path)))?
        };
        Ok(Resolved { real, display })
    }
}

impl Refusal {
    /// The same refusal naming `to` where its message named the path `from`.
    fn renamed(self, from: &str, to: &str) -> Refusal {
        Refusal {
            code: self.code,
            message: self
                .message
                .replace(&format!("'{from}'"), &format!("'{to}'")),
        }
    }
}

/// The first name in `path` that starts with `.` (`..` is refused earlier; `./` is no name).
fn dot_component(path: &Path) -> Option<String> {
    path.components().find_map(|c| match c {
        Component::Normal(name) if name.to_string_lossy().starts_with('.') => {
            Some(name.to_string_lossy().into_owned())
        }
        _ => None,
    })
}

/// `rel` with `/` separators.
fn slash_path(rel: &Path) -> String {
    rel.components()
        .map(|c| c.as_os_str().to_string_lossy().into_owned())
        .collect::<Vec<_>>()
        .join("/")
}

/// Refuses a path that is empty, holds a NUL byte or has a `..` component (`label` names the
/// root it may not leave).
fn check_syntax(path: &str, label: &str) -> Result<(), Refusal> {
    if path.trim().is_empty() {
        return Err(Refusal::new(
            RefusalCode::BadArgs,
            format!("path '{path}' is refused: it is empty; name a file or folder inside {label}"),
        ));
    }
    if path.contains('\0') {
        return Err(Refusal::new(
            RefusalCode::BadArgs,
            format!("path {path:?} is refused: it contains a NUL byte"),
        ));
    }
    if Path::new(path)
        .components()
        .any(|c| c == Component::ParentDir)
    {
        return Err(Refusal::new(
            RefusalCode::PathEscape,
            format!("path '{path}' is refused: '..' may lead out of {label}"),
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
