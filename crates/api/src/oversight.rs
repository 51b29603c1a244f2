//! `/v1/oversight`: the regulator's window (issue 6). So far the audit proofs: the chain
//! verified on request, the signed daily digests and the public key to check them with.
//! Regulator and operator only; read-only for everyone (every route is a GET).

use axum::extract::{Path, State};
use axum::http::StatusCode;
use jembatan_core::audit::{may_read_proofs, verify_chain};
use jembatan_store::audit::DigestRecord;
use serde::Serialize;
use utoipa::ToSchema;

use crate::AppState;
use crate::extract::Caller;
use crate::problem::Problem;
use crate::routes::ok;

type Answer = Result<axum::response::Response, Problem>;

/// What recomputing the audit chain found.
#[derive(Serialize, ToSchema)]
pub struct ChainWire {
    /// Entries verified, from the first on.
    pub verified: i64,
    /// SHA-256 (hex) of the last verified entry.
    pub head_hash: String,
    /// Entries written but not sealed onto the chain yet (sealed every second).
    pub unsealed: i64,
    /// The first entry that does not verify (edited, deleted or reordered), if any.
    pub first_break: Option<BreakWire>,
}

#[derive(Serialize, ToSchema)]
pub struct BreakWire {
    pub seq: i64,
    pub problem: String,
}

/// A day's digest: the chain's head, signed with the platform's Ed25519 key. The signed bytes
/// are `jembatan-audit-digest/v1\nday=…\nlast_seq=…\nlast_hash=…\nentries=…\n`.
#[derive(Serialize, ToSchema)]
pub struct DigestWire {
    pub day: String,
    pub last_seq: i64,
    pub last_hash: String,
    pub entries: i64,
    /// Hex of the Ed25519 public key that signed it (check it against the one you hold).
    pub public_key: String,
    /// Hex of the Ed25519 signature.
    pub signature: String,
    pub signed_at_ms: i64,
}

impl From<&DigestRecord> for DigestWire {
    fn from(d: &DigestRecord) -> Self {
        DigestWire {
            day: d.body.day.clone(),
            last_seq: d.body.last_seq,
            last_hash: d.body.last_hash.clone(),
            entries: d.body.entries,
            public_key: d.public_key.clone(),
            signature: d.signature.clone(),
            signed_at_ms: d.signed_at_ms,
        }
    }
}

#[derive(Serialize, ToSchema)]
pub struct DigestList {
    /// Newest day first (at most 366).
    pub digests: Vec<DigestWire>,
}

#[derive(Serialize, ToSchema)]
pub struct PublicKeyWire {
    pub algorithm: String,
    /// Hex of the 32-byte Ed25519 public key.
    pub public_key: String,
}

#[utoipa::path(get, path = "/v1/oversight/audit/chain", tag = "oversight",
    responses((status = 200, body = ChainWire), (status = 403, body = Problem)),
    security(("bearer" = [])))]
/// Recomputes the audit chain from its first entry and names the first entry that does not
/// match. Regulator and operator.
pub async fn get_chain(State(state): State<AppState>, Caller(who): Caller) -> Answer {
    may_read_proofs(&who)?;
    let report = verify_chain(state.core.store(), None).await.map_err(jembatan_core::CoreError::from)?;
    ok(
        StatusCode::OK,
        &ChainWire {
            verified: report.verified,
            head_hash: report.head_hash,
            unsealed: report.unsealed,
            first_break: report.first_break.map(|b| BreakWire { seq: b.seq(), problem: b.describe() }),
        },
    )
}

#[utoipa::path(get, path = "/v1/oversight/audit/digests", tag = "oversight",
    responses((status = 200, body = DigestList), (status = 403, body = Problem)),
    security(("bearer" = [])))]
/// The signed daily digests, newest first. Verify one with `jembatan audit verify-digest
/// --digest FILE --public-key KEY` or any Ed25519 library. Regulator and operator.
pub async fn list_digests(State(state): State<AppState>, Caller(who): Caller) -> Answer {
    may_read_proofs(&who)?;
    let digests = state.core.store().audit_digests(366).await.map_err(jembatan_core::CoreError::from)?;
    ok(StatusCode::OK, &DigestList { digests: digests.iter().map(DigestWire::from).collect() })
}

#[utoipa::path(get, path = "/v1/oversight/audit/digests/{day}", tag = "oversight",
    params(("day" = String, Path, description = "UTC day, YYYY-MM-DD")),
    responses((status = 200, body = DigestWire), (status = 403, body = Problem), (status = 404, body = Problem)),
    security(("bearer" = [])))]
/// One day's signed digest. Regulator and operator.
pub async fn get_digest(
    State(state): State<AppState>,
    Caller(who): Caller,
    Path(day): Path<String>,
) -> Answer {
    may_read_proofs(&who)?;
    match state.core.store().audit_digest(&day).await.map_err(jembatan_core::CoreError::from)? {
        Some(d) => ok(StatusCode::OK, &DigestWire::from(&d)),
        None => Err(Problem::not_found(&format!(
            "the digest of `{day}` (days are YYYY-MM-DD; a day is signed after it ends)"
        ))),
    }
}

#[utoipa::path(get, path = "/v1/oversight/audit/public-key", tag = "oversight",
    responses((status = 200, body = PublicKeyWire), (status = 403, body = Problem), (status = 503, body = Problem)),
    security(("bearer" = [])))]
/// The platform's public key for the digests. Regulator and operator; a regulator should
/// also hold it from a channel other than this API.
pub async fn get_public_key(State(state): State<AppState>, Caller(who): Caller) -> Answer {
    may_read_proofs(&who)?;
    let key = state.audit_public_key.clone().ok_or_else(|| {
        Problem::new(
            StatusCode::SERVICE_UNAVAILABLE,
            "unavailable",
            "this server was started without the audit signing key".to_owned(),
        )
    })?;
    ok(StatusCode::OK, &PublicKeyWire { algorithm: "Ed25519".to_owned(), public_key: key })
}
