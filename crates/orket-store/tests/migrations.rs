//! Opening migrates once; applied migrations are checked against their files.

mod common;

use common::{db_path, raw, seed_issue, temp_sqlite};
use orket_store::{SqliteStore, Store, StoreError};

type MigrationRow = (i64, String, String, String);

fn migration_rows(path: &std::path::Path) -> Vec<MigrationRow> {
    let conn = raw(path);
    let mut statement = conn
        .prepare(
            "SELECT version, name, checksum, applied_at FROM _schema_migrations ORDER BY version",
        )
        .unwrap();
    let rows = statement
        .query_map([], |row| {
            Ok((row.get(0)?, row.get(1)?, row.get(2)?, row.get(3)?))
        })
        .unwrap();
    rows.collect::<Result<_, _>>().unwrap()
}

#[tokio::test(flavor = "multi_thread")]
async fn opening_creates_the_file_and_applies_the_migrations_once() {
    let (dir, store) = temp_sqlite().await;
    let path = db_path(&dir);
    assert!(path.exists(), "the file and its directory are created");
    assert_eq!(store.path(), path);
    assert_eq!(store.schema_version().await.unwrap(), 10);
    let rows = migration_rows(&path);
    assert_eq!(rows.len(), 10);
    let names: Vec<(i64, &str)> = rows.iter().map(|r| (r.0, r.1.as_str())).collect();
    assert_eq!(
        names,
        [
            (1, "init"),
            (2, "turn_and_status_indexes"),
            (3, "sandboxes"),
            (4, "pending_approvals"),
            (5, "halts_and_issue_versions"),
            (6, "turn_steps"),
            (7, "build_leases"),
            (8, "turn_ledger"),
            (9, "gitea_reviews"),
            (10, "bug_fix_phases")
        ]
    );
    let (_, _, checksum, applied_at) = &rows[0];
    assert_eq!(checksum.len(), 64);
    assert!(checksum.chars().all(|c| c.is_ascii_hexdigit()));
    assert!(applied_at.ends_with('Z'));

    let journal: String = raw(&path)
        .query_row("PRAGMA journal_mode", [], |row| row.get(0))
        .unwrap();
    assert_eq!(journal, "wal");

    seed_issue(&store, "build-login", "ISSUE-0001").await;
    let before = store.get_issue("build-login", "ISSUE-0001").await.unwrap();
    assert_eq!(store.migrate().await.unwrap(), 0);
    store.close().await;

    let reopened = SqliteStore::open(&path).await.unwrap();
    assert_eq!(migration_rows(&path), rows);
    assert_eq!(reopened.migrate().await.unwrap(), 0);
    assert_eq!(reopened.schema_version().await.unwrap(), 10);
    assert_eq!(
        reopened
            .get_issue("build-login", "ISSUE-0001")
            .await
            .unwrap(),
        before
    );
    assert!(before.is_some());
}

#[tokio::test(flavor = "multi_thread")]
async fn a_changed_migration_is_refused() {
    let (dir, store) = temp_sqlite().await;
    store.close().await;
    let path = db_path(&dir);
    raw(&path)
        .execute(
            "UPDATE _schema_migrations SET checksum = 'deadbeef' WHERE version = 1",
            [],
        )
        .unwrap();

    let err = SqliteStore::open(&path).await.unwrap_err();
    match &err {
        StoreError::Migration { version, message } => {
            assert_eq!(*version, 1);
            assert!(
                message.starts_with("migration 1 (init) was changed after it was applied"),
                "{message}"
            );
        }
        other => panic!("expected a migration error, got {other:?}"),
    }
}

#[tokio::test(flavor = "multi_thread")]
async fn a_database_newer_than_the_build_is_refused() {
    let (dir, store) = temp_sqlite().await;
    store.close().await;
    let path = db_path(&dir);
    raw(&path)
        .execute(
            "INSERT INTO _schema_migrations (version, name, checksum, applied_at) \
             VALUES (99, 'future', 'abc', '2030-01-01T00:00:00.000Z')",
            [],
        )
        .unwrap();

    let err = SqliteStore::open(&path).await.unwrap_err();
    assert!(
        matches!(err, StoreError::Migration { version: 99, .. }),
        "{err:?}"
    );
    assert!(err.to_string().contains("schema version 99"), "{err}");
}

#[tokio::test(flavor = "multi_thread")]
async fn concurrent_opens_of_a_new_file_migrate_once() {
    let dir = tempfile::tempdir().unwrap();
    let path = db_path(&dir);
    let opens: Vec<_> = (0..4)
        .map(|_| {
            let path = path.clone();
            tokio::spawn(async move { SqliteStore::open(&path).await })
        })
        .collect();
    for open in opens {
        open.await.unwrap().expect("open");
    }
    assert_eq!(migration_rows(&path).len(), 10);
}

#[tokio::test(flavor = "multi_thread")]
async fn a_file_that_cannot_be_a_database_is_an_open_error_naming_it() {
    let dir = tempfile::tempdir().unwrap();
    // A directory where the file should be.
    let err = SqliteStore::open(dir.path()).await.unwrap_err();
    match &err {
        StoreError::Open { path, .. } => assert_eq!(path, dir.path()),
        other => panic!("expected an open error, got {other:?}"),
    }
    assert!(
        err.to_string()
            .starts_with(&format!("cannot open store {}: ", dir.path().display())),
        "{err}"
    );
    // A file where its directory should be.
    let file = dir.path().join("plain.txt");
    std::fs::write(&file, "not a directory").unwrap();
    let path = file.join("orket.db");
    let err = SqliteStore::open(&path).await.unwrap_err();
    assert!(
        matches!(&err, StoreError::Open { path: p, message } if *p == path && message.starts_with("cannot create")),
        "{err:?}"
    );
    // Not a database at all.
    let garbage = dir.path().join("garbage.db");
    std::fs::write(&garbage, vec![7u8; 8192]).unwrap();
    let err = SqliteStore::open(&garbage).await.unwrap_err();
    assert!(
        matches!(&err, StoreError::Open { path: p, .. } if *p == garbage),
        "{err:?}"
    );
}

#[tokio::test(flavor = "multi_thread")]
async fn issues_stored_before_issue_versions_are_read_by_a_first_tick() {
    let (dir, store) = temp_sqlite().await;
    seed_issue(&store, "build-login", "ISSUE-0001").await;
    store.close().await;
    let path = db_path(&dir);
    // The file as a build before migration 5 left it.
    raw(&path)
        .execute_batch(
            "DROP INDEX issues_build_version;
             ALTER TABLE issues DROP COLUMN version;
             ALTER TABLE sessions DROP COLUMN halt_requested_at;
             DELETE FROM _schema_migrations WHERE version = 5;",
        )
        .unwrap();

    let upgraded = SqliteStore::open(&path).await.unwrap();
    assert_eq!(upgraded.schema_version().await.unwrap(), 10);
    let tick = upgraded.tick_state("r1", "build-login", 0).await.unwrap();
    let ids: Vec<&str> = tick.changed.iter().map(|i| i.id.as_str()).collect();
    assert_eq!(ids, ["ISSUE-0001"], "a first tick reads every issue");
    assert_eq!(tick.version, 1);
}
