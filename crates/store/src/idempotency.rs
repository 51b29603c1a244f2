//! Idempotency keys (DESIGN.md §9). A request first *claims* its key in a short transaction of
//! its own; the unit that does the work then *completes* it with the response in the work's own
//! transaction. So a replay finds either the finished response (returned byte for byte), a
//! claim still in progress (a concurrent duplicate: 409), or another request's fingerprint (422).
//! A claim whose holder died (crash) is taken over after `stale_after_ms`.

use crate::db::{Conn, q};
use jembatan_domain::Timestamp;

use crate::error::StoreError;
use crate::exec::{Store, StoredResponse};

#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Claim {
    /// The key is ours: do the work.
    Fresh,
    /// The same request already finished: return this.
    Replay(StoredResponse),
    /// The key was used for a different request.
    Mismatch,
    /// The same key is being worked on right now.
    InProgress,
}

impl Store {
    pub async fn claim_idempotency_key(
        &self,
        scope: &str,
        key: &str,
        request_sha256: &str,
        now: Timestamp,
        stale_after_ms: i64,
    ) -> Result<Claim, StoreError> {
        let (scope, key, fingerprint) = (scope.to_owned(), key.to_owned(), request_sha256.to_owned());
        self.write(None, move |conn| {
            Box::pin(async move { claim(conn, &scope, &key, &fingerprint, now, stale_after_ms).await })
        })
        .await
    }
}

async fn claim(
    conn: &mut dyn Conn,
    scope: &str,
    key: &str,
    fingerprint: &str,
    now: Timestamp,
    stale_after_ms: i64,
) -> Result<Claim, StoreError> {
    let inserted = q("INSERT INTO idempotency_keys (scope, idem_key, request_sha256, state, created_at_ms)
         VALUES ($1, $2, $3, 'in_progress', $4) ON CONFLICT (scope, idem_key) DO NOTHING")
    .bind(scope)
    .bind(key)
    .bind(fingerprint)
    .bind(now.unix_ms())
    .execute(&mut *conn)
    .await?;
    if inserted == 1 {
        return Ok(Claim::Fresh);
    }
    let row = q("SELECT request_sha256, state, status_code, response_body, created_at_ms
         FROM idempotency_keys WHERE scope = $1 AND idem_key = $2")
    .bind(scope)
    .bind(key)
    .fetch_one(&mut *conn)
    .await?;
    if row.text("request_sha256")? != fingerprint {
        return Ok(Claim::Mismatch);
    }
    if row.text("state")? == "completed" {
        let status: i64 = row.int("status_code")?;
        return Ok(Claim::Replay(StoredResponse {
            status: u16::try_from(status).unwrap_or(500),
            body: row.text("response_body")?,
        }));
    }
    let created: i64 = row.int("created_at_ms")?;
    if now.unix_ms() - created < stale_after_ms {
        return Ok(Claim::InProgress);
    }
    // The holder died without finishing (its work rolled back with it): take the key over.
    let taken = q("UPDATE idempotency_keys SET created_at_ms = $3
         WHERE scope = $1 AND idem_key = $2 AND state = 'in_progress' AND created_at_ms = $4")
    .bind(scope)
    .bind(key)
    .bind(now.unix_ms())
    .bind(created)
    .execute(&mut *conn)
    .await?;
    Ok(if taken == 1 { Claim::Fresh } else { Claim::InProgress })
}

pub(crate) async fn complete(
    conn: &mut dyn Conn,
    scope: &str,
    key: &str,
    response: &StoredResponse,
) -> Result<(), StoreError> {
    let done = q(
        "UPDATE idempotency_keys SET state = 'completed', status_code = $3, response_body = $4, completed_at_ms = created_at_ms
         WHERE scope = $1 AND idem_key = $2 AND state = 'in_progress'",
    )
    .bind(scope)
    .bind(key)
    .bind(i64::from(response.status))
    .bind(&response.body)
    .execute(&mut *conn)
    .await?;
    if done != 1 {
        return Err(StoreError::Conflict(format!("idempotency key {key} was not claimed by this request")));
    }
    Ok(())
}

pub(crate) async fn release(conn: &mut dyn Conn, scope: &str, key: &str) -> Result<(), StoreError> {
    q("DELETE FROM idempotency_keys WHERE scope = $1 AND idem_key = $2 AND state = 'in_progress'")
        .bind(scope)
        .bind(key)
        .execute(&mut *conn)
        .await?;
    Ok(())
}

impl Store {
    /// Gives a claimed key back without a response (the request failed before its unit ran).
    pub async fn release_idempotency_key(&self, scope: &str, key: &str) -> Result<(), StoreError> {
        let (scope, key) = (scope.to_owned(), key.to_owned());
        self.write(None, move |conn| Box::pin(async move { release(conn, &scope, &key).await })).await
    }
}
