//! Keyword memory: scored by shared distinct words, newest first on ties.

mod common;

use common::Backend;
use rstest::rstest;

use common::temp_store;
use orket_store::{MemoryRecord, Store};

async fn ids_and_scores(store: &dyn Store, query: &str, limit: usize) -> Vec<(i64, usize)> {
    store
        .search_memory(query, limit)
        .await
        .unwrap()
        .into_iter()
        .map(|m| (m.id, m.score))
        .collect()
}

#[rstest]
#[case::sqlite(Backend::Sqlite)]
#[cfg_attr(feature = "postgres", case::postgres(Backend::Postgres))]
#[tokio::test(flavor = "multi_thread")]
async fn search_scores_by_shared_words_newest_first_on_ties(#[case] backend: Backend) {
    let store = temp_store(backend).await;
    let jwt = store
        .remember(
            "Use JWT tokens for the login API",
            Some("architect"),
            Some("ISSUE-0001"),
            Some("0a1b2c3d"),
        )
        .await
        .unwrap();
    let react = store
        .remember("The login page uses React", None, None, None)
        .await
        .unwrap();
    let _migrations = store
        .remember("Database migrations run at start", None, None, None)
        .await
        .unwrap();
    let expiry = store
        .remember(
            "JWT login decision: TOKENS expire after one hour; jwt jwt",
            Some("architect"),
            None,
            None,
        )
        .await
        .unwrap();

    // "login", "jwt", "tokens" (case-insensitive, each counted once): jwt and expiry share 3,
    // react shares 1 ("uses" is not "use"), migrations none.
    assert_eq!(
        ids_and_scores(&*store, "Login? JWT tokens, login!", 10).await,
        [(expiry, 3), (jwt, 3), (react, 1)]
    );
    assert_eq!(
        ids_and_scores(&*store, "login JWT tokens", 2).await,
        [(expiry, 3), (jwt, 3)]
    );
    assert_eq!(
        ids_and_scores(&*store, "login", 10).await,
        [(expiry, 1), (react, 1), (jwt, 1)]
    );
    // Words shorter than 3 characters are ignored; no shared word, no result.
    assert!(ids_and_scores(&*store, "to a UI db", 10).await.is_empty());
    assert!(ids_and_scores(&*store, "kubernetes", 10).await.is_empty());
    assert!(ids_and_scores(&*store, "login", 0).await.is_empty());

    let first = store.search_memory("api", 5).await.unwrap();
    assert_eq!(first.len(), 1);
    let MemoryRecord {
        id,
        content,
        role,
        issue_id,
        run_id,
        created_at,
        score,
    } = first[0].clone();
    assert_eq!(id, jwt);
    assert_eq!(content, "Use JWT tokens for the login API");
    assert_eq!(role.as_deref(), Some("architect"));
    assert_eq!(issue_id.as_deref(), Some("ISSUE-0001"));
    assert_eq!(run_id.as_deref(), Some("0a1b2c3d"));
    assert!(created_at.ends_with('Z'));
    assert_eq!(score, 1);
}
