//! Idempotency keys (DESIGN.md §9). A request first *claims* its key; the unit that does the
//! work then *completes* it with the response in the work's own transaction. So a replay finds
//! either the finished response (returned byte for byte), a claim still in progress (a
//! concurrent duplicate: 409), or another request's fingerprint (422).
//!
//! Where claims live:
//! - **PostgreSQL**: several server processes may share the database, so a claim is a row
//!   (`state = 'in_progress'`) committed in a short transaction of its own. A claim whose holder
//!   died (crash) is taken over after `stale_after_ms`.
//! - **SQLite**: one process owns the file, so claims are kept in that process's memory and
//!   only completed keys are written, by the work's own unit. A claim cannot outlive a crash,
//!   and each request costs the writer one unit instead of two.

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
        let Some(claims) = self.memory_claims() else {
            return self
                .write(None, move |conn| {
                    Box::pin(
                        async move { claim(conn, &scope, &key, &fingerprint, now, stale_after_ms).await },
                    )
                })
                .await;
        };
        {
            let mut claims = claims.lock().expect("idempotency claims");
            if let Some(holder) = claims.get(&(scope.clone(), key.clone())) {
                return Ok(if *holder == fingerprint { Claim::InProgress } else { Claim::Mismatch });
            }
            claims.insert((scope.clone(), key.clone()), fingerprint.clone());
        }
        let (s, k) = (scope.clone(), key.clone());
        let stored = self
            .read(move |conn| {
                Box::pin(async move {
                    Ok(q("SELECT request_sha256, status_code, response_body FROM idempotency_keys
                          WHERE scope = $1 AND idem_key = $2 AND state = 'completed'")
                    .bind(s)
                    .bind(k)
                    .fetch_optional(conn)
                    .await?)
                })
            })
            .await;
        let outcome = match stored {
            Ok(None) => return Ok(Claim::Fresh),
            Ok(Some(row)) => replay_or_mismatch(&row, &fingerprint),
            Err(error) => Err(error),
        };
        claims.lock().expect("idempotency claims").remove(&(scope, key));
        outcome
    }

    /// Ends a `Fresh` claim once the request's unit has finished, whatever its outcome.
    /// `completed`: the unit stored a response under the key.
    pub async fn end_idempotency_claim(
        &self,
        scope: &str,
        key: &str,
        completed: bool,
    ) -> Result<(), StoreError> {
        if let Some(claims) = self.memory_claims() {
            claims.lock().expect("idempotency claims").remove(&(scope.to_owned(), key.to_owned()));
            return Ok(());
        }
        if completed {
            return Ok(());
        }
        let (scope, key) = (scope.to_owned(), key.to_owned());
        self.write(None, move |conn| Box::pin(async move { release(conn, &scope, &key).await })).await
    }
}

fn replay_or_mismatch(row: &crate::db::Row, fingerprint: &str) -> Result<Claim, StoreError> {
    if row.text("request_sha256")? != fingerprint {
        return Ok(Claim::Mismatch);
    }
    let status = row.int("status_code")?;
    Ok(Claim::Replay(StoredResponse {
        status: u16::try_from(status).unwrap_or(500),
        body: row.text("response_body")?,
    }))
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
        return replay_or_mismatch(&row, fingerprint);
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

/// Stores the response under a key: updates this request's claim row (PostgreSQL) or inserts
/// the completed key (SQLite, whose claims are in memory). Never overwrites a completed key.
pub(crate) async fn complete(
    conn: &mut dyn Conn,
    scope: &str,
    key: &str,
    fingerprint: &str,
    now: Timestamp,
    response: &StoredResponse,
) -> Result<(), StoreError> {
    let done = q("INSERT INTO idempotency_keys
             (scope, idem_key, request_sha256, state, status_code, response_body, created_at_ms, completed_at_ms)
         VALUES ($1, $2, $3, 'completed', $4, $5, $6, $6)
         ON CONFLICT (scope, idem_key) DO UPDATE SET state = 'completed', status_code = excluded.status_code,
             response_body = excluded.response_body, completed_at_ms = excluded.completed_at_ms
         WHERE idempotency_keys.state = 'in_progress' AND idempotency_keys.request_sha256 = excluded.request_sha256")
    .bind(scope)
    .bind(key)
    .bind(fingerprint)
    .bind(i64::from(response.status))
    .bind(response.body.as_str())
    .bind(now.unix_ms())
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
    /// Deletes at most `rows_max` completed keys that completed before `completed_before`, and
    /// claims left in progress since before `abandoned_before` (their holder died). Returns how
    /// many rows went; call again while it returns `rows_max`.
    pub async fn purge_idempotency_keys(
        &self,
        completed_before: Timestamp,
        abandoned_before: Timestamp,
        rows_max: i64,
    ) -> Result<u64, StoreError> {
        self.write(None, move |conn| {
            Box::pin(async move {
                let mut deleted = if conn.is_postgres() {
                    q("DELETE FROM idempotency_keys WHERE (scope, idem_key) IN (
                        SELECT scope, idem_key FROM idempotency_keys
                        WHERE state = 'completed' AND completed_at_ms < $1 LIMIT $2)")
                    .bind(completed_before.unix_ms())
                    .bind(rows_max)
                    .execute(&mut *conn)
                    .await?
                } else {
                    // SQLite stores completed keys only, in completion order: walk them in rowid
                    // order up to the first one still within retention (no index needed).
                    q("DELETE FROM idempotency_keys WHERE rowid IN (
                        SELECT rowid FROM idempotency_keys
                        WHERE rowid < COALESCE((SELECT rowid FROM idempotency_keys WHERE completed_at_ms >= $1 ORDER BY rowid LIMIT 1), 9223372036854775807)
                          AND completed_at_ms < $1
                        ORDER BY rowid LIMIT $2)")
                    .bind(completed_before.unix_ms())
                    .bind(rows_max)
                    .execute(&mut *conn)
                    .await?
                };
                if conn.is_postgres() {
                    // Claims are rows only on PostgreSQL.
                    deleted += q("DELETE FROM idempotency_keys WHERE (scope, idem_key) IN (
                            SELECT scope, idem_key FROM idempotency_keys
                            WHERE state = 'in_progress' AND created_at_ms < $1 LIMIT $2)")
                    .bind(abandoned_before.unix_ms())
                    .bind(rows_max)
                    .execute(&mut *conn)
                    .await?;
                }
                Ok(deleted)
            })
        })
        .await
    }
}
