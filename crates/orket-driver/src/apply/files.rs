//! Writing asset files as one transaction: every file confined to the project's `model/` or
//! `config/`, written atomically, then every asset concerned loaded again with the asset
//! loader; a failed write or an asset that no longer loads puts every file back as it was.

use super::Editor;
use crate::outcome::{refuse, Fail};
use orket_core::assets::{Category, Epic};
use orket_governance::confine::{Access, ProjectFolders, Rules};
use orket_governance::file_tools::write_atomically;
use serde_json::Value;
use std::path::{Path, PathBuf};

/// The folders of the project the driver writes to.
const WRITABLE_FOLDERS: [&str; 2] = ["model", "config"];
/// How it writes there: relative names, no dotfiles, never through a link.
const WRITE_RULES: Rules = Rules {
    no_linked_files: true,
    ..Rules::PROJECT
};

/// A file about to be written.
struct Prepared {
    path: PathBuf,
    /// What it holds now; `None`: it does not exist yet.
    original: Option<Vec<u8>>,
    /// Its new text.
    text: String,
}

/// A file written, with what it held before (to put it back).
struct Written {
    path: PathBuf,
    original: Option<Vec<u8>>,
}

impl Editor<'_> {
    /// Writes the new asset `model/<dept>/<category>/<name>.json` and loads it again.
    pub(super) async fn write_new(
        &self,
        category: Category,
        name: &str,
        dept: &str,
        value: Value,
    ) -> Result<Vec<String>, Fail> {
        let path = self
            .look
            .tree
            .root()
            .join("model")
            .join(dept)
            .join(category.dir())
            .join(format!("{name}.json"));
        self.commit(vec![(path, value)], &[(category, name, dept)])
            .await
    }

    /// The JSON of the file at `path`.
    pub(super) fn read_value(&self, path: &Path) -> Result<Value, Fail> {
        let rel = self.look.tree.relative(path);
        let text = std::fs::read_to_string(path)
            .map_err(|e| Fail::Io(format!("{rel}: cannot read: {e}")))?;
        serde_json::from_str(&text).map_err(|e| Fail::Refused(format!("{rel}: invalid JSON: {e}")))
    }

    /// [`Self::commit`] of one edited epic file.
    pub(super) async fn commit_epic(
        &self,
        path: PathBuf,
        value: Value,
        epic: &Epic,
    ) -> Result<Vec<String>, Fail> {
        self.commit(
            vec![(path, value)],
            &[(Category::Epics, &epic.stem, &epic.department)],
        )
        .await
    }

    /// Writes every `(path, value)` atomically, then loads every `(category, name, dept)` of
    /// `reload` with the asset loader; when one does not load, or a write fails, every file is
    /// put back as it was. Returns the files written.
    pub(super) async fn commit(
        &self,
        files: Vec<(PathBuf, Value)>,
        reload: &[(Category, &str, &str)],
    ) -> Result<Vec<String>, Fail> {
        let prepared = files
            .into_iter()
            .map(|(path, value)| self.prepare(path, value))
            .collect::<Result<Vec<_>, _>>()?;
        let written = self.write_all(prepared).await?;
        self.reload_all(&written, reload).await?;
        Ok(written
            .iter()
            .map(|w| self.look.tree.relative(&w.path))
            .collect())
    }

    /// Checks where `path` is, keeps what it holds and serializes `value`.
    fn prepare(&self, path: PathBuf, value: Value) -> Result<Prepared, Fail> {
        self.confine(&path)?;
        let original = match std::fs::read(&path) {
            Ok(bytes) => Some(bytes),
            Err(e) if e.kind() == std::io::ErrorKind::NotFound => None,
            Err(e) => {
                return Err(Fail::Io(format!(
                    "{}: cannot read: {e}",
                    self.look.tree.relative(&path)
                )))
            }
        };
        let mut text = serde_json::to_string_pretty(&value)
            .map_err(|e| Fail::Io(format!("cannot serialize: {e}")))?;
        text.push('\n');
        Ok(Prepared {
            path,
            original,
            text,
        })
    }

    /// Writes every prepared file; on a failure, the files already written are put back.
    async fn write_all(&self, prepared: Vec<Prepared>) -> Result<Vec<Written>, Fail> {
        let mut written = Vec::new();
        for file in prepared {
            if let Err(fail) = self.write_one(&file).await {
                return Err(self.put_back(&written, fail).await);
            }
            written.push(Written {
                path: file.path,
                original: file.original,
            });
        }
        Ok(written)
    }

    /// Writes one file, creating its folder (and checking again where it leads).
    async fn write_one(&self, file: &Prepared) -> Result<(), Fail> {
        let rel = || self.look.tree.relative(&file.path);
        if let Some(folder) = file.path.parent() {
            std::fs::create_dir_all(folder)
                .map_err(|e| Fail::Io(format!("{}: cannot create its folder: {e}", rel())))?;
        }
        // The folder may have been created through a link: check again.
        self.confine(&file.path)?;
        write_atomically(&file.path, file.text.as_bytes())
            .await
            .map_err(|e| Fail::Io(format!("{}: cannot write: {e}", rel())))
    }

    /// Loads every asset of `reload`; when one does not load, every file is put back.
    async fn reload_all(
        &self,
        written: &[Written],
        reload: &[(Category, &str, &str)],
    ) -> Result<(), Fail> {
        for &(category, name, dept) in reload {
            let loaded = match category {
                Category::Epics => self.look.tree.load_epic(name, dept).map(drop),
                Category::Rocks => self.look.tree.load_rock(name, dept).map(drop),
                other => return refuse(format!("the driver does not write {}s", other.noun())),
            };
            if let Err(e) = loaded {
                let fail = Fail::Refused(format!(
                    "the edited asset does not load, so it was put back as it was: {e}"
                ));
                return Err(self.put_back(written, fail).await);
            }
        }
        Ok(())
    }

    /// Puts every file of `written` back as it was (the last first) and returns `fail`, with
    /// the files that could not be put back named after its message.
    async fn put_back(&self, written: &[Written], fail: Fail) -> Fail {
        let mut problems = Vec::new();
        for file in written.iter().rev() {
            let result = match &file.original {
                Some(bytes) => write_atomically(&file.path, bytes).await,
                None => std::fs::remove_file(&file.path),
            };
            if let Err(e) = result {
                let rel = self.look.tree.relative(&file.path);
                tracing::error!("cannot restore {rel}: {e}");
                problems.push(format!("{rel} could not be put back: {e}"));
            }
        }
        if problems.is_empty() {
            fail
        } else {
            fail.and(&problems.join("; "))
        }
    }

    /// A file the driver writes: under the project's own `model/` or `config/`
    /// (`orket-governance`'s [`ProjectFolders`]: plain relative names, no dotfiles, links
    /// followed the file stays inside that folder) and never itself a link.
    fn confine(&self, path: &Path) -> Result<(), Fail> {
        let root = self.look.tree.root();
        let outside = || {
            Fail::Refused(format!(
                "{}: outside the project's model/ and config/",
                path.display()
            ))
        };
        let rel = path.strip_prefix(root).map_err(|_| outside())?;
        let rel = rel.to_str().ok_or_else(outside)?;
        let folders = ProjectFolders::new(root, &WRITABLE_FOLDERS, WRITE_RULES)
            .map_err(|e| Fail::Io(format!("{}: {e}", root.display())))?;
        folders
            .resolve(rel, Access::Write)
            .map(drop)
            .map_err(|e| Fail::Refused(e.to_string()))
    }
}
