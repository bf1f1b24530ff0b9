//! `orket store copy`: a project's whole history from a SQLite file into an empty PostgreSQL
//! database, row for row.
//!
//! The two schemas have the same tables and columns on purpose, so the copy is derived from the
//! SQLite file itself: its tables in the order they were created (a table comes after the ones
//! its foreign keys name), every column it has, every row in row order, with its id. Values are
//! bound as the PostgreSQL column's type. Ids keep their numbers and the identity sequences
//! continue after them; the ledger's hashes, computed from the copied values, stay valid. The
//! whole copy is one transaction: an error leaves the target as it was.

use super::PgStore;
use crate::error::{StoreError, StoreResult};
use crate::sqlite::SqliteStore;
use rusqlite::types::Value as SqlValue;
use rusqlite::{Connection, OpenFlags};
use sqlx::{PgConnection, Postgres, QueryBuilder};
use std::collections::HashMap;
use std::path::Path;

/// Rows per `INSERT` (PostgreSQL takes at most 65,535 parameters in one statement).
const ROWS_PER_INSERT: usize = 500;

/// How many rows of each table were copied, in copy order.
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub struct CopyReport {
    /// `(table, rows)`.
    pub tables: Vec<(String, usize)>,
}

/// One SQLite table read whole.
struct Table {
    name: String,
    columns: Vec<String>,
    rows: Vec<Vec<SqlValue>>,
}

/// Copies the store in the SQLite file `from` into the PostgreSQL database `to` (which must
/// hold no project yet: no builds, runs or events).
pub async fn copy_sqlite_to_postgres(from: &Path, to: &PgStore) -> StoreResult<CopyReport> {
    if !from.is_file() {
        return Err(StoreError::Open {
            path: from.to_path_buf(),
            message: "no such file".to_string(),
        });
    }
    // Opening migrates the file to the schema the copy expects.
    SqliteStore::open(from).await?.close().await;
    let owned = from.to_path_buf();
    let tables = tokio::task::spawn_blocking(move || read_tables(&owned))
        .await
        .map_err(|err| StoreError::Unexpected(format!("reading the SQLite file: {err}")))??;

    let mut tx = to.pool.begin().await?;
    refuse_a_used_target(&mut tx).await?;
    let mut report = CopyReport::default();
    for table in &tables {
        let types = column_types(&mut tx, &table.name).await?;
        insert_rows(&mut tx, table, &types).await?;
        continue_identity(&mut tx, &table.name, &types).await?;
        report.tables.push((table.name.clone(), table.rows.len()));
    }
    tx.commit().await?;
    Ok(report)
}

/// Every table of the file but the migration runner's, in creation order, read whole.
fn read_tables(path: &Path) -> StoreResult<Vec<Table>> {
    let conn = Connection::open_with_flags(path, OpenFlags::SQLITE_OPEN_READ_ONLY)?;
    let names: Vec<String> = conn
        .prepare(
            "SELECT name FROM sqlite_master WHERE type = 'table' \
             AND name NOT LIKE 'sqlite_%' AND name <> '_schema_migrations' ORDER BY rowid",
        )?
        .query_map([], |row| row.get(0))?
        .collect::<Result<_, _>>()?;
    names
        .into_iter()
        .map(|name| {
            let mut statement =
                conn.prepare(&format!("SELECT * FROM \"{name}\" ORDER BY rowid"))?;
            let columns: Vec<String> = statement
                .column_names()
                .into_iter()
                .map(str::to_string)
                .collect();
            let width = columns.len();
            let rows = statement
                .query_map([], |row| {
                    (0..width)
                        .map(|i| row.get::<_, SqlValue>(i))
                        .collect::<Result<Vec<_>, _>>()
                })?
                .collect::<Result<_, _>>()?;
            Ok(Table {
                name,
                columns,
                rows,
            })
        })
        .collect()
}

/// Refuses a target that already holds a project: copying would mix two histories.
async fn refuse_a_used_target(conn: &mut PgConnection) -> StoreResult<()> {
    let used: (i64, i64, i64) = sqlx::query_as(
        "SELECT (SELECT COUNT(*) FROM builds), (SELECT COUNT(*) FROM sessions), \
         (SELECT COUNT(*) FROM events)",
    )
    .fetch_one(conn)
    .await?;
    if used != (0, 0, 0) {
        return Err(StoreError::Conflict(format!(
            "the target database already holds a project ({} builds, {} runs, {} events); \
             copy into an empty database",
            used.0, used.1, used.2
        )));
    }
    Ok(())
}

/// The PostgreSQL types of `table`'s columns (`text`, `bigint`, `double precision`), and
/// whether each is an identity column.
async fn column_types(
    conn: &mut PgConnection,
    table: &str,
) -> StoreResult<HashMap<String, (String, bool)>> {
    let rows: Vec<(String, String, String)> = sqlx::query_as(
        "SELECT column_name::text, data_type::text, is_identity::text \
         FROM information_schema.columns \
         WHERE table_schema = current_schema() AND table_name = $1",
    )
    .bind(table)
    .fetch_all(conn)
    .await?;
    if rows.is_empty() {
        return Err(StoreError::Unexpected(format!(
            "table {table} of the SQLite file has no counterpart in PostgreSQL"
        )));
    }
    Ok(rows
        .into_iter()
        .map(|(name, kind, identity)| (name, (kind, identity == "YES")))
        .collect())
}

/// Inserts the table's rows, `ROWS_PER_INSERT` at a time, each value as its column's type.
async fn insert_rows(
    conn: &mut PgConnection,
    table: &Table,
    types: &HashMap<String, (String, bool)>,
) -> StoreResult<()> {
    let kinds = table
        .columns
        .iter()
        .map(|column| {
            types
                .get(column)
                .map(|(kind, _)| kind.as_str())
                .ok_or_else(|| {
                    StoreError::Unexpected(format!(
                        "column {}.{column} of the SQLite file has no counterpart in PostgreSQL",
                        table.name
                    ))
                })
        })
        .collect::<StoreResult<Vec<_>>>()?;
    for chunk in table.rows.chunks(ROWS_PER_INSERT) {
        let mut query = QueryBuilder::<Postgres>::new(format!(
            "INSERT INTO {} ({}) OVERRIDING SYSTEM VALUE ",
            table.name,
            table.columns.join(", ")
        ));
        let mut bad = None;
        query.push_values(chunk, |mut row, values| {
            for ((column, kind), value) in table.columns.iter().zip(&kinds).zip(values) {
                if let Err(message) = bind(&mut row, kind, value) {
                    bad.get_or_insert_with(|| format!("{}.{column}: {message}", table.name));
                }
            }
        });
        if let Some(message) = bad {
            return Err(StoreError::Corrupt {
                what: message,
                message: "does not fit its PostgreSQL column".to_string(),
            });
        }
        query.build().execute(&mut *conn).await?;
    }
    Ok(())
}

/// Binds one SQLite value as a PostgreSQL column of type `kind`.
fn bind(
    row: &mut sqlx::query_builder::Separated<'_, '_, Postgres, &'static str>,
    kind: &str,
    value: &SqlValue,
) -> Result<(), String> {
    match (kind, value) {
        ("bigint", SqlValue::Integer(n)) => row.push_bind(*n),
        ("bigint", SqlValue::Null) => row.push_bind(None::<i64>),
        ("double precision", SqlValue::Real(x)) => row.push_bind(*x),
        // SQLite stores a REAL with no fractional part given as an integer as an INTEGER.
        ("double precision", SqlValue::Integer(n)) => row.push_bind(*n as f64),
        ("double precision", SqlValue::Null) => row.push_bind(None::<f64>),
        ("text", SqlValue::Text(text)) => row.push_bind(text.clone()),
        ("text", SqlValue::Null) => row.push_bind(None::<String>),
        (kind, other) => return Err(format!("a {other:?} where {kind} is stored")),
    };
    Ok(())
}

/// Makes the table's identity columns continue after the copied ids.
async fn continue_identity(
    conn: &mut PgConnection,
    table: &str,
    types: &HashMap<String, (String, bool)>,
) -> StoreResult<()> {
    for (column, _) in types.iter().filter(|(_, (_, identity))| *identity) {
        sqlx::query(&format!(
            "SELECT setval(pg_get_serial_sequence('{table}', '{column}'), \
             COALESCE((SELECT MAX({column}) FROM {table}), 0) + 1, false)"
        ))
        .execute(&mut *conn)
        .await?;
    }
    Ok(())
}
