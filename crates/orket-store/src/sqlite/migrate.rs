//! The migration runner: versioned SQL files, recorded with their checksum in
//! `_schema_migrations`, each applied in one write transaction with its record.

use crate::error::{StoreError, StoreResult};
use orket_core::time::now_timestamp;
use rusqlite::{params, Connection, OptionalExtension, TransactionBehavior};

/// The migrations, in order: `(version, name, SQL)`. Versions only increase; a gap is allowed
/// (each version is applied when its row is missing, so a migration of a branch merged later
/// with a lower number still runs).
pub(super) static MIGRATIONS: &[(i64, &str, &str)] = &[
    (
        1,
        "init",
        include_str!("../../migrations/sqlite/0001_init.sql"),
    ),
    (
        2,
        "turn_and_status_indexes",
        include_str!("../../migrations/sqlite/0002_turn_and_status_indexes.sql"),
    ),
    (
        3,
        "sandboxes",
        include_str!("../../migrations/sqlite/0003_sandboxes.sql"),
    ),
    (
        4,
        "pending_approvals",
        include_str!("../../migrations/sqlite/0004_pending_approvals.sql"),
    ),
    (
        5,
        "halts_and_issue_versions",
        include_str!("../../migrations/sqlite/0005_halts_and_issue_versions.sql"),
    ),
    (
        6,
        "turn_steps",
        include_str!("../../migrations/sqlite/0006_turn_steps.sql"),
    ),
    (
        7,
        "build_leases",
        include_str!("../../migrations/sqlite/0007_build_leases.sql"),
    ),
    (
        8,
        "turn_ledger",
        include_str!("../../migrations/sqlite/0008_turn_ledger.sql"),
    ),
    (
        9,
        "gitea_reviews",
        include_str!("../../migrations/sqlite/0009_gitea_reviews.sql"),
    ),
    (
        10,
        "bug_fix_phases",
        include_str!("../../migrations/sqlite/0010_bug_fix_phases.sql"),
    ),
];

const CREATE_TABLE: &str = "CREATE TABLE IF NOT EXISTS _schema_migrations (
    version INTEGER PRIMARY KEY,
    name TEXT NOT NULL,
    checksum TEXT NOT NULL,
    applied_at TEXT NOT NULL
)";

/// The lower-case hex SHA-256 of a migration's SQL text, with line endings normalized to `\n`
/// (a checkout with CRLF line endings holds the same migration).
fn checksum(sql: &str) -> String {
    crate::ledger::sha256_hex(sql.replace("\r\n", "\n").as_bytes())
}

/// Applies the pending migrations; returns how many were applied now. Refuses a database whose
/// recorded migrations differ from the files, or that is newer than this build knows.
pub(super) fn run(conn: &mut Connection) -> StoreResult<usize> {
    let mut applied = 0;
    for &(version, name, sql) in MIGRATIONS {
        if apply(conn, version, name, sql)? {
            applied += 1;
        }
    }
    let newest = self::version(conn)?;
    let known = latest_known();
    if newest > known {
        return Err(StoreError::Migration {
            version: newest,
            message: format!(
                "the database has schema version {newest}, newer than this build knows ({known}); \
                 use a newer orket"
            ),
        });
    }
    Ok(applied)
}

/// Applies one migration with its record in one `BEGIN IMMEDIATE` transaction, unless it is
/// recorded already (then checks its checksum). Several processes opening one new file at once
/// take turns on the write lock, and each migration runs once. Returns whether it ran now.
fn apply(conn: &mut Connection, version: i64, name: &str, sql: &str) -> StoreResult<bool> {
    let expected = checksum(sql);
    let tx = conn.transaction_with_behavior(TransactionBehavior::Immediate)?;
    tx.execute_batch(CREATE_TABLE)?;
    let recorded: Option<String> = tx
        .query_row(
            "SELECT checksum FROM _schema_migrations WHERE version = ?",
            [version],
            |row| row.get(0),
        )
        .optional()?;
    match recorded {
        Some(recorded) if recorded != expected => {
            return Err(StoreError::Migration {
                version,
                message: format!(
                    "migration {version} ({name}) was changed after it was applied \
                     (recorded checksum {recorded}, file checksum {expected})"
                ),
            });
        }
        Some(_) => return Ok(false),
        None => {}
    }
    tx.execute_batch(sql).map_err(|err| StoreError::Migration {
        version,
        message: format!("migration {version} ({name}) failed: {err}"),
    })?;
    tx.execute(
        "INSERT INTO _schema_migrations (version, name, checksum, applied_at) \
         VALUES (?, ?, ?, ?)",
        params![version, name, expected, now_timestamp()],
    )?;
    tx.commit()?;
    Ok(true)
}

/// The highest version recorded in `_schema_migrations` (0 when none is).
pub(super) fn version(conn: &Connection) -> StoreResult<i64> {
    Ok(conn.query_row(
        "SELECT COALESCE(MAX(version), 0) FROM _schema_migrations",
        [],
        |row| row.get(0),
    )?)
}

/// The highest version among the migration files.
fn latest_known() -> i64 {
    MIGRATIONS.iter().map(|m| m.0).max().unwrap_or(0)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn versions_increase_from_one_with_unique_names() {
        let mut previous = 0;
        let mut names = std::collections::HashSet::new();
        for (version, name, sql) in MIGRATIONS {
            assert!(
                *version > previous,
                "migration {version} ({name}) is out of order"
            );
            assert!(names.insert(*name), "migration name {name} repeats");
            assert!(!sql.trim().is_empty(), "migration {name} is empty");
            previous = *version;
        }
        assert_eq!(MIGRATIONS[0].0, 1);
        assert_eq!(latest_known(), previous);
    }

    #[test]
    fn checksum_is_sha256_hex() {
        assert_eq!(
            checksum(""),
            "e3b0c44298fc1c149afbf4c8996fb92427ae41e4649b934ca495991b7852b855"
        );
    }

    #[test]
    fn checksum_ignores_crlf_line_endings() {
        assert_eq!(checksum("a;\r\nb;\r\n"), checksum("a;\nb;\n"));
        for (version, name, sql) in MIGRATIONS {
            let lf = sql.replace("\r\n", "\n");
            let crlf = lf.replace('\n', "\r\n");
            assert_eq!(
                checksum(&crlf),
                checksum(&lf),
                "migration {version} ({name}) checked out with CRLF"
            );
        }
        assert_ne!(checksum("a;\nb;\n"), checksum("a;\nc;\n"));
    }
}
