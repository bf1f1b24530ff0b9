//! A database of its own on the test PostgreSQL server, for one test.
//!
//! The server is found at `ORKET_TEST_POSTGRES_URL`, else at the URL `bash .ci/postgres` wrote
//! to `target/postgres-url` (`bash .ci/setup` starts it). Without one the test fails, naming
//! the command that starts it: the PostgreSQL cases exist only in builds with the feature
//! `postgres`, which is asking for them.

use orket_store::PgStore;
use sqlx::Connection;
use std::sync::atomic::{AtomicUsize, Ordering};

/// A database created for one test and dropped when the test ends.
pub struct TestDatabase {
    /// The server's administrative URL (its `postgres` database).
    admin: String,
    /// This database's name.
    name: String,
}

/// The test server's URL.
pub fn server_url() -> String {
    if let Some(url) = std::env::var("ORKET_TEST_POSTGRES_URL")
        .ok()
        .filter(|u| !u.is_empty())
    {
        return url;
    }
    let file = concat!(env!("CARGO_MANIFEST_DIR"), "/../../target/postgres-url");
    match std::fs::read_to_string(file) {
        Ok(url) if !url.trim().is_empty() => url.trim().to_string(),
        _ => panic!(
            "no PostgreSQL server for the tests: run `bash .ci/postgres` (it starts one on \
             loopback and writes target/postgres-url) or set ORKET_TEST_POSTGRES_URL"
        ),
    }
}

impl TestDatabase {
    /// Creates an empty database with a name no other test uses.
    pub async fn create() -> TestDatabase {
        static NEXT: AtomicUsize = AtomicUsize::new(0);
        let admin = server_url();
        let name = format!(
            "orket_test_{}_{}_{}",
            std::process::id(),
            NEXT.fetch_add(1, Ordering::Relaxed),
            std::time::SystemTime::now()
                .duration_since(std::time::UNIX_EPOCH)
                .map_or(0, |d| d.subsec_nanos())
        );
        let mut conn = sqlx::PgConnection::connect(&admin)
            .await
            .unwrap_or_else(|err| panic!("cannot reach the test PostgreSQL at {admin}: {err}"));
        sqlx::raw_sql(&format!("CREATE DATABASE {name}"))
            .execute(&mut conn)
            .await
            .expect("create the test database");
        conn.close().await.ok();
        TestDatabase { admin, name }
    }

    /// Its URL.
    pub fn url(&self) -> String {
        orket_store::url_with_database(&self.admin, &self.name)
    }

    /// A store on it (migrating it the first time).
    pub async fn open(&self) -> PgStore {
        PgStore::open(&self.url())
            .await
            .expect("open the PostgreSQL store")
    }

    /// Runs `sql` on it behind the store's back.
    pub async fn execute(&self, sql: &str) {
        let mut conn = sqlx::PgConnection::connect(&self.url())
            .await
            .expect("connect to the test database");
        sqlx::raw_sql(sql).execute(&mut conn).await.expect("tamper");
        conn.close().await.ok();
    }
}

impl Drop for TestDatabase {
    /// Drops the database (closing whatever connections the test left open), on a thread of
    /// its own: a test's runtime may be shutting down.
    fn drop(&mut self) {
        let (admin, name) = (self.admin.clone(), self.name.clone());
        let dropped = std::thread::spawn(move || {
            let runtime = tokio::runtime::Builder::new_current_thread()
                .enable_all()
                .build()
                .expect("a runtime");
            runtime.block_on(async move {
                if let Ok(mut conn) = sqlx::PgConnection::connect(&admin).await {
                    let sql = format!("DROP DATABASE IF EXISTS {name} WITH (FORCE)");
                    let _ = sqlx::raw_sql(&sql).execute(&mut conn).await;
                    conn.close().await.ok();
                }
            });
        });
        let _ = dropped.join();
    }
}
