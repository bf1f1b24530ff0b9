//! The project a command works on: its root and its store (a SQLite file or a PostgreSQL URL).

use anyhow::{bail, Context, Result};
use orket_core::assets::AssetTree;
use orket_core::time::Clock;
use orket_store::Store;
use std::path::{Path, PathBuf};
use std::sync::Arc;

/// A project root and where its store lives.
#[derive(Debug, Clone)]
pub struct Project {
    root: PathBuf,
    db: PathBuf,
}

/// The clock of day-counting rules (a rock's bug-fix phase): `ORKET_NOW` (an RFC 3339 time,
/// for tests and rehearsals) when set, else the system's.
pub fn clock() -> Result<Clock> {
    let setting = std::env::var("ORKET_NOW").ok();
    Clock::from_setting(setting.as_deref()).map_err(|e| anyhow::anyhow!("ORKET_NOW: {e}"))
}

/// Whether `db` names a PostgreSQL database rather than a file.
pub fn is_postgres_url(db: &str) -> bool {
    db.starts_with("postgres://") || db.starts_with("postgresql://")
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

    /// The store's PostgreSQL URL, when it is one.
    fn postgres_url(&self) -> Option<&str> {
        self.db.to_str().filter(|db| is_postgres_url(db))
    }

    /// The store as messages name it: the file, or the URL without its password.
    pub fn store_name(&self) -> String {
        match self.postgres_url() {
            Some(url) => orket_store::url_without_password(url),
            None => self.db.display().to_string(),
        }
    }

    /// Whether the store exists (a database server is assumed to).
    pub fn store_exists(&self) -> bool {
        self.postgres_url().is_some() || self.db.is_file()
    }

    /// The store, created (a file) and migrated if needed.
    pub async fn open_store(&self) -> Result<Arc<dyn Store>> {
        let store: Arc<dyn Store> = match self.postgres_url() {
            Some(url) => open_postgres(url).await?,
            None => Arc::new(orket_store::SqliteStore::open(&self.db).await?),
        };
        Ok(store)
    }

    /// The store as PostgreSQL (the fleet needs it): an error when it is a file.
    #[cfg(feature = "postgres")]
    pub async fn postgres_store(&self) -> Result<orket_store::PgStore> {
        let Some(url) = self.postgres_url() else {
            bail!(
                "the fleet needs a PostgreSQL store: pass --db postgres://user@host:port/db (or set ORKET_DB); {} is a SQLite file",
                self.store_name()
            );
        };
        orket_store::PgStore::open(url)
            .await
            .with_context(|| format!("opening the store {}", self.store_name()))
    }

    /// The store, when it exists: read-only commands never create one (`None` when the file is
    /// missing; an error names the store when it cannot be opened).
    pub async fn existing_store(&self) -> Result<Option<Arc<dyn Store>>> {
        if !self.store_exists() {
            return Ok(None);
        }
        let store = self
            .open_store()
            .await
            .with_context(|| format!("opening the store {}", self.store_name()))?;
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
        let registry = orket_engine::policy::PolicyRegistry::default();
        let (tree, warnings) = registry
            .load_tree(&self.root, &|k| std::env::var(k).ok())
            .map_err(anyhow::Error::msg)?;
        for warning in warnings {
            eprintln!("warning: {warning}");
        }
        Ok(tree)
    }
}

#[cfg(feature = "postgres")]
async fn open_postgres(url: &str) -> Result<Arc<dyn Store>> {
    Ok(Arc::new(orket_store::PgStore::open(url).await?))
}

#[cfg(not(feature = "postgres"))]
async fn open_postgres(url: &str) -> Result<Arc<dyn Store>> {
    bail!(
        "the store {} is a PostgreSQL database, and this orket was built without PostgreSQL: \
         rebuild with `cargo build --release -p orket-cli --features postgres`",
        orket_store::url_without_password(url)
    )
}
