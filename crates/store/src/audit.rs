//! The audit chain's rows (issue 6; the hashing and checking are `jembatan_domain::audit`).
//!
//! An audit entry is written by its change's own unit without a place in the chain; the sealer
//! ([`Store::seal_audit`]) gives entries their `chain_seq`, previous hash and own hash in the
//! order it finds them (by id among the unsealed), in a unit of its own. So no business write
//! waits on a lock over the chain's head — on PostgreSQL such a lock would serialise every
//! write of the platform — and a chain is still total and gap-free: two sealers racing for the
//! same `chain_seq` meet the unique index, and one of them rolls back. Sealing is bookkeeping
//! of the audit log itself and writes no journal entry of its own (an entry about sealing would
//! need sealing without end).

use jembatan_domain::audit::{AuditFields, ChainedEntry, DigestBody, GENESIS_HASH, entry_hash};

use crate::db::{Conn, Row, q};
use crate::error::StoreError;
use crate::exec::Store;
use crate::rows;

/// A signed digest as stored.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct DigestRecord {
    pub body: DigestBody,
    /// Hex of the Ed25519 public key that signed it, and the signature (hex).
    pub public_key: String,
    pub signature: String,
    pub signed_at_ms: i64,
}

const FIELDS: &str =
    "audit_id, at_ms, actor_role, actor_subject, action, entity_type, entity_id, merchant_id, detail";

fn fields(r: &Row) -> Result<AuditFields, StoreError> {
    Ok(AuditFields {
        audit_id: rows::text(r, "audit_id")?,
        at_ms: rows::int(r, "at_ms")?,
        actor_role: rows::text(r, "actor_role")?,
        actor_subject: rows::text(r, "actor_subject")?,
        action: rows::text(r, "action")?,
        entity_type: rows::text(r, "entity_type")?,
        entity_id: rows::text(r, "entity_id")?,
        merchant_id: r.opt_text("merchant_id")?,
        detail: rows::text(r, "detail")?,
    })
}

async fn head(conn: &mut dyn Conn) -> Result<(i64, String), StoreError> {
    let row = q("SELECT chain_seq, entry_hash FROM audit_log WHERE chain_seq IS NOT NULL ORDER BY chain_seq DESC LIMIT 1")
        .fetch_optional(conn)
        .await?;
    Ok(match row {
        Some(r) => (rows::int(&r, "chain_seq")?, rows::text(&r, "entry_hash")?),
        None => (0, GENESIS_HASH.to_owned()),
    })
}

impl Store {
    /// Seals up to `limit` unsealed entries onto the chain, in one unit; how many it sealed.
    pub async fn seal_audit(&self, limit: u32) -> Result<u64, StoreError> {
        self.write(None, move |conn| {
            Box::pin(async move {
                let (mut seq, mut prev) = head(conn).await?;
                let unsealed = q(format!(
                    "SELECT {FIELDS} FROM audit_log WHERE chain_seq IS NULL ORDER BY audit_id LIMIT $1"
                ))
                .bind(i64::from(limit))
                .fetch_all(&mut *conn)
                .await?;
                for row in &unsealed {
                    let f = fields(row)?;
                    seq += 1;
                    let hash = entry_hash(&prev, seq, &f);
                    let sealed = q("UPDATE audit_log SET chain_seq = $2, prev_hash = $3, entry_hash = $4
                                    WHERE audit_id = $1 AND chain_seq IS NULL")
                    .bind(f.audit_id.clone())
                    .bind(seq)
                    .bind(prev.clone())
                    .bind(hash.clone())
                    .execute(&mut *conn)
                    .await?;
                    if sealed != 1 {
                        return Err(StoreError::Conflict(
                            "another sealer sealed this entry first".to_owned(),
                        ));
                    }
                    prev = hash;
                }
                Ok(unsealed.len() as u64)
            })
        })
        .await
    }

    /// The chain's head: last seq (0 when empty) and its hash, and the entries not yet sealed.
    pub async fn audit_head(&self) -> Result<(i64, String, i64), StoreError> {
        self.read(|conn| {
            Box::pin(async move {
                let (seq, hash) = head(conn).await?;
                let unsealed =
                    q("SELECT COUNT(*) AS n FROM audit_log WHERE chain_seq IS NULL").fetch_one(conn).await?;
                Ok((seq, hash, rows::int(&unsealed, "n")?))
            })
        })
        .await
    }

    /// Sealed entries after `after_seq`, in chain order.
    pub async fn audit_chain(&self, after_seq: i64, limit: u32) -> Result<Vec<ChainedEntry>, StoreError> {
        self.read(move |conn| {
            Box::pin(async move {
                q(format!(
                    "SELECT chain_seq, prev_hash, entry_hash, {FIELDS} FROM audit_log
                     WHERE chain_seq > $1 ORDER BY chain_seq LIMIT $2"
                ))
                .bind(after_seq)
                .bind(i64::from(limit))
                .fetch_all(conn)
                .await?
                .iter()
                .map(|r| {
                    Ok(ChainedEntry {
                        seq: rows::int(r, "chain_seq")?,
                        fields: fields(r)?,
                        prev_hash: rows::text(r, "prev_hash")?,
                        entry_hash: rows::text(r, "entry_hash")?,
                    })
                })
                .collect()
            })
        })
        .await
    }

    /// Entries sealed after `after_seq` up to `to_seq`.
    pub async fn audit_sealed_between(&self, after_seq: i64, to_seq: i64) -> Result<i64, StoreError> {
        self.read(move |conn| {
            Box::pin(async move {
                let row = q("SELECT COUNT(*) AS n FROM audit_log WHERE chain_seq > $1 AND chain_seq <= $2")
                    .bind(after_seq)
                    .bind(to_seq)
                    .fetch_one(conn)
                    .await?;
                rows::int(&row, "n")
            })
        })
        .await
    }

    /// Stores a day's digest; a day is signed once: if it has one, that one is returned.
    pub async fn put_audit_digest(&self, digest: DigestRecord) -> Result<DigestRecord, StoreError> {
        let day = digest.body.day.clone();
        self.write(None, move |conn| {
            let digest = digest.clone();
            Box::pin(async move {
                q("INSERT INTO audit_digests (day, last_seq, last_hash, entries, public_key, signature, signed_at_ms)
                   VALUES ($1, $2, $3, $4, $5, $6, $7) ON CONFLICT DO NOTHING")
                .bind(digest.body.day.clone())
                .bind(digest.body.last_seq)
                .bind(digest.body.last_hash.clone())
                .bind(digest.body.entries)
                .bind(digest.public_key.clone())
                .bind(digest.signature.clone())
                .bind(digest.signed_at_ms)
                .execute(&mut *conn)
                .await?;
                Ok(())
            })
        })
        .await?;
        self.audit_digest(&day).await?.ok_or_else(|| StoreError::not_found("audit digest", &day))
    }

    pub async fn audit_digest(&self, day: &str) -> Result<Option<DigestRecord>, StoreError> {
        let day = day.to_owned();
        self.read(move |conn| {
            Box::pin(async move {
                q("SELECT * FROM audit_digests WHERE day = $1")
                    .bind(day)
                    .fetch_optional(conn)
                    .await?
                    .map(|r| decode_digest(&r))
                    .transpose()
            })
        })
        .await
    }

    /// Digests, newest day first.
    pub async fn audit_digests(&self, limit: u32) -> Result<Vec<DigestRecord>, StoreError> {
        self.read(move |conn| {
            Box::pin(async move {
                q("SELECT * FROM audit_digests ORDER BY day DESC LIMIT $1")
                    .bind(i64::from(limit))
                    .fetch_all(conn)
                    .await?
                    .iter()
                    .map(decode_digest)
                    .collect()
            })
        })
        .await
    }
}

fn decode_digest(r: &Row) -> Result<DigestRecord, StoreError> {
    Ok(DigestRecord {
        body: DigestBody {
            day: rows::text(r, "day")?,
            last_seq: rows::int(r, "last_seq")?,
            last_hash: rows::text(r, "last_hash")?,
            entries: rows::int(r, "entries")?,
        },
        public_key: rows::text(r, "public_key")?,
        signature: rows::text(r, "signature")?,
        signed_at_ms: rows::int(r, "signed_at_ms")?,
    })
}
