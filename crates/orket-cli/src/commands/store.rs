//! `orket store copy`: a project's history from its SQLite file into PostgreSQL.

use anyhow::{bail, Result};
use std::path::Path;
use std::process::ExitCode;

/// Copies the SQLite store `from` into the PostgreSQL database `to`; prints the rows copied.
#[cfg(feature = "postgres")]
pub async fn copy(from: &Path, to: &str) -> Result<ExitCode> {
    use anyhow::Context;
    if !crate::project::is_postgres_url(to) {
        bail!("--to {to} is not a PostgreSQL URL (postgres://user@host:port/db)");
    }
    let shown = orket_store::url_without_password(to);
    let target = orket_store::PgStore::open(to)
        .await
        .with_context(|| format!("opening the store {shown}"))?;
    let report = orket_store::copy_sqlite_to_postgres(from, &target)
        .await
        .with_context(|| format!("copying {} into {shown}", from.display()))?;
    target.close().await;
    let rows: usize = report.tables.iter().map(|(_, n)| n).sum();
    println!("Copied {rows} rows from {} into {shown}:", from.display());
    for (table, n) in &report.tables {
        println!("  {table:<20} {n:>8}");
    }
    println!("Use it with --db {shown} (or ORKET_DB).");
    Ok(ExitCode::SUCCESS)
}

/// Without the feature: says how to get it.
#[cfg(not(feature = "postgres"))]
pub async fn copy(_from: &Path, _to: &str) -> Result<ExitCode> {
    bail!(
        "this orket was built without PostgreSQL: rebuild with \
         `cargo build --release -p orket-cli --features postgres`"
    )
}
