//! Migrations are applied by version: a database that records a version this binary does not
//! know is refused (it is newer than the binary), whatever gaps the numbering has.

use jembatan_store::testing::{fresh_store, raw_execute};
use jembatan_store::{Store, StoreOptions, q};

#[tokio::test]
async fn every_known_migration_is_recorded_and_an_unknown_one_is_refused() {
    let t = fresh_store().await.unwrap();
    let versions = t
        .store
        .read(|conn| {
            Box::pin(async move {
                let rows =
                    q("SELECT version FROM schema_migrations ORDER BY version").fetch_all(conn).await?;
                Ok(rows.iter().map(|r| r.int("version").unwrap()).collect::<Vec<_>>())
            })
        })
        .await
        .unwrap();
    // 5 belongs to the payments branch and may or may not be here yet.
    assert!(versions.starts_with(&[1, 2, 3, 4]) && versions.contains(&6), "{versions:?}");
    // Reopening applies nothing twice.
    drop(Store::open(StoreOptions::new(t.url.clone())).await.unwrap());

    raw_execute(
        &t.url,
        "INSERT INTO schema_migrations (version, name, applied_at_ms) VALUES (99, 'future', 0)",
    )
    .await
    .unwrap();
    let refused =
        Store::open(StoreOptions::new(t.url.clone())).await.err().expect("a newer database is refused");
    assert!(refused.to_string().contains("migration 99"), "{refused}");
}
