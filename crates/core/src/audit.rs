//! The audit chain's use cases: seal, verify, sign a day's digest, verify a digest (issue 6).
//! The hashing and checks are `jembatan_domain::audit`; the rows are `jembatan_store::audit`.

use ed25519_dalek::SigningKey;
use jembatan_domain::audit::{ChainBreak, ChainVerifier, DigestBody, public_key_hex, sign, verify_signature};
use jembatan_store::audit::DigestRecord;
use jembatan_store::{Store, StoreError};

/// Entries read per page when verifying.
const PAGE: u32 = 5_000;
/// Entries sealed per unit.
const SEAL_BATCH: u32 = 2_000;

/// What verifying the chain found.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct ChainReport {
    /// Entries verified from the first on (up to the first break).
    pub verified: i64,
    /// The hash of the last verified entry.
    pub head_hash: String,
    /// Entries written but not sealed yet (the sealer runs every second inside `serve`).
    pub unsealed: i64,
    pub first_break: Option<ChainBreak>,
}

/// Seals every entry written so far; how many.
pub async fn seal_all(store: &Store) -> Result<u64, StoreError> {
    let mut total = 0;
    loop {
        let sealed = store.seal_audit(SEAL_BATCH).await?;
        total += sealed;
        if sealed < u64::from(SEAL_BATCH) {
            return Ok(total);
        }
    }
}

/// Recomputes the chain from its first entry, up to `upto` (a seq) or its end; stops at the
/// first entry that does not verify and names it.
pub async fn verify_chain(store: &Store, upto: Option<i64>) -> Result<ChainReport, StoreError> {
    let (_, _, unsealed) = store.audit_head().await?;
    let mut verifier = ChainVerifier::default();
    let mut after = 0;
    loop {
        let page = store.audit_chain(after, PAGE).await?;
        let Some(last) = page.last() else { break };
        after = last.seq;
        for entry in &page {
            if upto.is_some_and(|upto| entry.seq > upto) {
                return Ok(report(&verifier, unsealed, None));
            }
            if let Err(found) = verifier.check(entry) {
                return Ok(report(&verifier, unsealed, Some(found)));
            }
        }
        if (page.len() as u32) < PAGE {
            break;
        }
    }
    Ok(report(&verifier, unsealed, None))
}

fn report(verifier: &ChainVerifier, unsealed: i64, first_break: Option<ChainBreak>) -> ChainReport {
    ChainReport {
        verified: verifier.verified(),
        head_hash: verifier.head_hash().to_owned(),
        unsealed,
        first_break,
    }
}

/// Seals what is waiting and signs the chain's head as `day`'s digest. A day is signed once:
/// signing it again returns the digest already stored.
pub async fn sign_digest(
    store: &Store,
    key: &SigningKey,
    day: &str,
    now_ms: i64,
) -> Result<DigestRecord, StoreError> {
    if let Some(existing) = store.audit_digest(day).await? {
        return Ok(existing);
    }
    seal_all(store).await?;
    let (last_seq, last_hash, _) = store.audit_head().await?;
    let previous = store.audit_digests(1).await?.into_iter().next().map(|d| d.body.last_seq).unwrap_or(0);
    let entries = store.audit_sealed_between(previous.min(last_seq), last_seq).await?;
    let body = DigestBody { day: day.to_owned(), last_seq, last_hash, entries };
    let signature = sign(key, &body);
    store
        .put_audit_digest(DigestRecord {
            body,
            public_key: public_key_hex(key),
            signature,
            signed_at_ms: now_ms,
        })
        .await
}

/// Verifies a digest against the chain as it stands now, with the public key the regulator
/// holds (not the one stored beside the digest): the signature must be that key's, and the
/// chain recomputed from its first entry must reach the signed hash at the signed seq. A
/// history rewritten after signing — even with every later hash recomputed — fails here.
pub async fn verify_digest(
    store: &Store,
    digest: &DigestRecord,
    public_key: &str,
) -> Result<Result<(), String>, StoreError> {
    if let Err(reason) = verify_signature(public_key, &digest.body, &digest.signature) {
        return Ok(Err(reason));
    }
    let report = verify_chain(store, Some(digest.body.last_seq)).await?;
    if let Some(found) = report.first_break {
        return Ok(Err(found.describe()));
    }
    if report.verified != digest.body.last_seq {
        return Ok(Err(format!(
            "the digest of {} covers {} entries but the chain has {}: entries were deleted",
            digest.body.day, digest.body.last_seq, report.verified
        )));
    }
    if report.head_hash != digest.body.last_hash {
        return Ok(Err(format!(
            "entry {} hashes to {} but the digest of {} signed {}: the history was rewritten",
            digest.body.last_seq, report.head_hash, digest.body.day, digest.body.last_hash
        )));
    }
    Ok(Ok(()))
}

/// Inside `serve`: seals the entries written every `interval`, and signs the digest of each
/// day that ended (UTC) once its last entries are sealed. Errors are logged and retried.
pub async fn run_sealer(
    store: Store,
    key: SigningKey,
    interval: std::time::Duration,
    clock: std::sync::Arc<dyn crate::clock::Clock>,
) {
    let mut ticker = tokio::time::interval(interval);
    loop {
        ticker.tick().await;
        if let Err(error) = seal_all(&store).await {
            tracing::warn!(%error, "sealing the audit chain failed");
            continue;
        }
        let now = clock.now();
        let today = day_of(now.unix_ms());
        let yesterday = day_of(now.unix_ms() - 86_400_000);
        match store.audit_digest(&yesterday).await {
            Ok(Some(_)) => {}
            Ok(None) => match sign_digest(&store, &key, &yesterday, now.unix_ms()).await {
                Ok(digest) => {
                    tracing::info!(day = %digest.body.day, last_seq = digest.body.last_seq, %today, "audit digest signed")
                }
                Err(error) => tracing::warn!(%error, "signing the audit digest failed"),
            },
            Err(error) => tracing::warn!(%error, "reading the audit digests failed"),
        }
    }
}

/// The UTC day (`YYYY-MM-DD`) of a time in unix milliseconds.
pub fn day_of(unix_ms: i64) -> String {
    time::OffsetDateTime::from_unix_timestamp(unix_ms.div_euclid(1000))
        .map(|t| t.date().to_string())
        .unwrap_or_else(|_| "1970-01-01".to_owned())
}

/// The audit proofs are read by the regulator and the operator, nobody else.
pub fn may_read_proofs(who: &jembatan_domain::Principal) -> Result<(), crate::CoreError> {
    use jembatan_domain::Principal;
    match who {
        Principal::Operator | Principal::Regulator => Ok(()),
        _ => Err(crate::CoreError::Forbidden(
            "the audit proofs are the regulator's and the operator's".to_owned(),
        )),
    }
}
