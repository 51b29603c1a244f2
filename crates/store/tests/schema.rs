//! Schema migrations: a version missing below the highest one recorded is still applied (the
//! branches number their migrations independently), and a version this binary does not know
//! is refused. On SQLite, or PostgreSQL with `JEMBATAN_TEST_DATABASE_URL`.

use jembatan_store::testing::{fresh_store, raw_execute};
use jembatan_store::{Store, StoreError, StoreOptions, q};

async fn versions(store: &Store) -> Vec<i64> {
    store
        .read(|conn| {
            Box::pin(async move {
                let rows =
                    q("SELECT version FROM schema_migrations ORDER BY version").fetch_all(conn).await?;
                Ok(rows.iter().map(|r| r.int("version")).collect::<Result<Vec<_>, _>>()?)
            })
        })
        .await
        .unwrap()
}

#[tokio::test]
async fn a_missing_version_below_the_highest_is_applied_and_an_unknown_one_refused() {
    let t = fresh_store().await.unwrap();
    let all = versions(&t.store).await;
    assert_eq!(all, (1..=17).collect::<Vec<i64>>());
    // Version 2 (an index, on PostgreSQL only) goes missing while the later ones stay recorded.
    if t.url.starts_with("postgres") {
        raw_execute(&t.url, "DROP INDEX idempotency_keys_by_completion").await.unwrap();
    }
    assert_eq!(raw_execute(&t.url, "DELETE FROM schema_migrations WHERE version = 2").await.unwrap(), 1);
    let reopened = Store::open(StoreOptions::new(t.url.clone())).await.unwrap();
    assert_eq!(versions(&reopened).await, all, "version 2 applied again");

    raw_execute(
        &t.url,
        "INSERT INTO schema_migrations (version, name, applied_at_ms) VALUES (0, 'unknown', 0)",
    )
    .await
    .unwrap();
    match Store::open(StoreOptions::new(t.url.clone())).await {
        Err(StoreError::Conflict(reason)) => assert!(reason.contains("version 0"), "{reason}"),
        Err(other) => panic!("expected a conflict naming version 0, got {other:?}"),
        Ok(_) => panic!("a database with an unknown schema version was opened"),
    }
}
