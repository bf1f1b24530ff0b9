//! The project a command works on: its root and its store file.

use anyhow::{bail, Context, Result};
use orket_core::assets::AssetTree;
use std::path::{Path, PathBuf};

/// A project root and where its store lives.
#[derive(Debug, Clone)]
pub struct Project {
    root: PathBuf,
    db: PathBuf,
}

impl Project {
    /// The project at `root`; the store is `--db`, else `$ORKET_DB`, else
    /// `<root>/.orket/orket.db`.
    pub fn new(root: PathBuf, db: Option<PathBuf>) -> Self {
        let db = db
            .or_else(|| {
                std::env::var_os("ORKET_DB")
                    .filter(|v| !v.is_empty())
                    .map(PathBuf::from)
            })
            .unwrap_or_else(|| root.join(".orket").join("orket.db"));
        Project { root, db }
    }

    /// The project root as given.
    pub fn root(&self) -> &Path {
        &self.root
    }

    /// The store file.
    pub fn db_path(&self) -> &Path {
        &self.db
    }

    /// The store, when it exists: read-only commands never create one (`None` when the file is
    /// missing; an error names the file when it cannot be opened).
    pub async fn existing_store(&self) -> Result<Option<orket_store::SqliteStore>> {
        if !self.db.is_file() {
            return Ok(None);
        }
        let store = orket_store::SqliteStore::open(&self.db)
            .await
            .with_context(|| format!("opening the store {}", self.db.display()))?;
        Ok(Some(store))
    }

    /// The asset tree, after checking the root looks like an Orket project.
    pub fn tree(&self) -> Result<AssetTree> {
        if !self.root.is_dir() {
            bail!(
                "project root {} does not exist or is not a folder",
                self.root.display()
            );
        }
        if !self.root.join("model").is_dir() && !self.root.join("config").is_dir() {
            bail!(
                "{} is not an Orket project: it has neither model/ nor config/ (pass --root DIR)",
                self.root.display()
            );
        }
        Ok(AssetTree::new(&self.root))
    }
}
