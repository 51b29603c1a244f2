//! Fresh stores for tests, on the backend the environment selects: PostgreSQL when
//! `JEMBATAN_TEST_DATABASE_URL` is set (each store in a schema of its own, so tests run in
//! parallel on one database), SQLite in a temporary directory otherwise.

use crate::error::StoreError;
use crate::exec::{Store, StoreOptions};

pub const DATABASE_URL_VAR: &str = "JEMBATAN_TEST_DATABASE_URL";

/// A store and what keeps it alive (the temporary directory of a SQLite store).
pub struct TestStore {
    pub store: Store,
    pub url: String,
    _dir: Option<tempfile::TempDir>,
}

pub async fn fresh_store() -> Result<TestStore, StoreError> {
    match std::env::var(DATABASE_URL_VAR) {
        Ok(base) if !base.is_empty() => {
            let url = postgres_schema_url(&base, "t").await?;
            let store = Store::open(StoreOptions::new(url.clone())).await?;
            Ok(TestStore { store, url, _dir: None })
        }
        _ => {
            let dir =
                tempfile::tempdir().map_err(|e| StoreError::Conflict(format!("temporary directory: {e}")))?;
            let options = StoreOptions::sqlite_in(dir.path());
            let url = options.url.clone();
            let store = Store::open(options).await?;
            Ok(TestStore { store, url, _dir: Some(dir) })
        }
    }
}

/// Creates a fresh schema `PREFIX_…` on the PostgreSQL server of `base` and returns a URL whose
/// connections use it, so that a test or benchmark starts from an empty database.
pub async fn postgres_schema_url(base: &str, prefix: &str) -> Result<String, StoreError> {
    use sqlx::Connection;
    let schema = format!("{prefix}_{}", uuid::Uuid::now_v7().simple());
    let mut admin = sqlx::PgConnection::connect(base).await.map_err(crate::db::DbError::from)?;
    crate::db::q(format!("CREATE SCHEMA {schema}")).execute(&mut admin).await?;
    let separator = if base.contains('?') { '&' } else { '?' };
    Ok(format!("{base}{separator}options=-c%20search_path%3D{schema}"))
}

/// Runs one statement on the database of `url` over a connection of its own, behind the
/// store's back: tests use it to corrupt or inspect data the way an outside tool would.
pub async fn raw_execute(url: &str, sql: &str) -> Result<u64, StoreError> {
    use crate::db::Conn;
    if let Some(path) = url.strip_prefix("sqlite://") {
        let mut conn = crate::db::sqlite::SqliteConn::open(std::path::Path::new(path), false)?;
        return Ok(conn.execute(sql, Vec::new()).await?);
    }
    use sqlx::Connection;
    let mut conn = sqlx::PgConnection::connect(url).await.map_err(crate::db::DbError::from)?;
    Ok(conn.execute(sql, Vec::new()).await?)
}

/// A payment as a test provider opens it: its reference is its id.
pub fn test_payment() -> crate::payments::NewPayment {
    crate::payments::NewPayment {
        provider: "test".to_owned(),
        ttl_ms: 60 * 60 * 1000,
        instruct: Box::new(|id, _| {
            Ok(jembatan_domain::PaymentInstructions { provider_ref: id.to_string(), ..Default::default() })
        }),
    }
}

/// The test provider reports `checkout` paid in full, through the one completion path.
pub async fn pay(
    store: &Store,
    ctx: crate::WriteCtx,
    checkout: &crate::orders::CheckoutRecord,
) -> Result<crate::payments::CallbackResult, crate::StoreError> {
    let payment = checkout.payment.as_ref().expect("a checkout opens its payment");
    let notice = crate::payments::PaymentNotice {
        provider: payment.provider.clone(),
        payment_id: Some(payment.id),
        provider_ref: None,
        amount: Some(payment.amount),
        body: String::new(),
    };
    store.complete_payment(ctx, notice).await
}

/// A fresh legacy store (the social shop's database) on the backend the environment selects.
pub struct TestLegacyStore {
    pub store: crate::legacy::LegacyStore,
    pub url: String,
    _dir: Option<tempfile::TempDir>,
}

pub async fn fresh_legacy_store() -> Result<TestLegacyStore, StoreError> {
    match std::env::var(DATABASE_URL_VAR) {
        Ok(base) if !base.is_empty() => {
            let url = postgres_schema_url(&base, "l").await?;
            let store = crate::legacy::LegacyStore::open(StoreOptions::new(url.clone())).await?;
            Ok(TestLegacyStore { store, url, _dir: None })
        }
        _ => {
            let dir =
                tempfile::tempdir().map_err(|e| StoreError::Conflict(format!("temporary directory: {e}")))?;
            let options = StoreOptions::legacy_sqlite_in(dir.path());
            let url = options.url.clone();
            let store = crate::legacy::LegacyStore::open(options).await?;
            Ok(TestLegacyStore { store, url, _dir: Some(dir) })
        }
    }
}
