//! `Idempotency-Key` on every POST (DESIGN.md §9): a replay returns the first response byte for
//! byte, the same key with another body is 422, a concurrent duplicate is 409. The key is scoped
//! to the caller, so two callers never collide.

use std::future::Future;
use std::sync::{Arc, Mutex};

use axum::http::{HeaderMap, HeaderValue, StatusCode};
use axum::response::{IntoResponse, Response};
use jembatan_core::CoreError;
use jembatan_domain::Principal;
use jembatan_store::idempotency::Claim;
use jembatan_store::{Idem, StoreError, StoredResponse};
use serde::Serialize;
use sha2::{Digest, Sha256};

use crate::AppState;
use crate::problem::{Problem, raw_response};

pub const HEADER: &str = "idempotency-key";
pub const KEY_CHARS_MAX: usize = 255;

type Slot = Arc<Mutex<Option<StoredResponse>>>;

/// Runs a write behind the request's idempotency key (if it sent one) and renders its answer.
// Each argument is one part of the fingerprint, the stored answer or the work; a struct to hold
// them would only move the list to every call site.
#[allow(clippy::too_many_arguments)]
pub async fn run<T, W, F, Fut>(
    state: &AppState,
    who: &Principal,
    headers: &HeaderMap,
    route: &str,
    body: &[u8],
    success: StatusCode,
    to_wire: fn(&T) -> W,
    op: F,
) -> Response
where
    T: Send + 'static,
    W: Serialize + 'static,
    F: FnOnce(Option<Idem<T>>) -> Fut + Send + 'static,
    Fut: Future<Output = Result<T, CoreError>> + Send + 'static,
{
    let key = match headers.get(HEADER).map(|v| v.to_str().map(str::to_owned)) {
        None => None,
        Some(Ok(key))
            if (1..=KEY_CHARS_MAX).contains(&key.len()) && key.bytes().all(|b| b.is_ascii_graphic()) =>
        {
            Some(key)
        }
        Some(_) => {
            return Problem::new(
                StatusCode::BAD_REQUEST,
                "invalid-idempotency-key",
                format!(
                    "Idempotency-Key must be 1 to {KEY_CHARS_MAX} visible ASCII characters (a UUID is ideal)"
                ),
            )
            .into_response();
        }
    };
    let Some(key) = key else {
        return match op(None).await {
            Ok(value) => raw_response(success, json(&to_wire(&value))),
            Err(error) => Problem::from(error).into_response(),
        };
    };
    let scope = format!("{}:{}", who.role().as_str(), who.subject());
    let mut hasher = Sha256::new();
    hasher.update(route.as_bytes());
    hasher.update([0]);
    hasher.update(body);
    let fingerprint = hex::encode(hasher.finalize());
    let now = state.core.clock().now();
    let store = state.core.store().clone();
    let stale_ms = state.limits.idempotency_stale_ms;
    // Claim, work and the end of the claim run in a task of their own: if the client goes
    // away, the handler's future is dropped, but a claim once taken must end after its work
    // does (or a retry would meet a claim that nobody will ever end).
    let keyed =
        tokio::spawn(keyed(store, Claimant { scope, key, fingerprint, now, stale_ms }, success, to_wire, op));
    keyed.await.unwrap_or_else(|_| {
        Problem::new(
            StatusCode::INTERNAL_SERVER_ERROR,
            "internal",
            "an internal error occurred; it was logged",
        )
        .into_response()
    })
}

/// Who claims which key, for [`keyed`].
struct Claimant {
    scope: String,
    key: String,
    fingerprint: String,
    now: jembatan_domain::Timestamp,
    stale_ms: i64,
}

async fn keyed<T, W, F, Fut>(
    store: jembatan_store::Store,
    claimant: Claimant,
    success: StatusCode,
    to_wire: fn(&T) -> W,
    op: F,
) -> Response
where
    T: Send + 'static,
    W: Serialize + 'static,
    F: FnOnce(Option<Idem<T>>) -> Fut,
    Fut: Future<Output = Result<T, CoreError>>,
{
    let Claimant { scope, key, fingerprint, now, stale_ms } = claimant;
    let claim = store.claim_idempotency_key(&scope, &key, &fingerprint, now, stale_ms).await;
    match claim {
        Err(error) => Problem::from(error).into_response(),
        Ok(Claim::Replay(stored)) => {
            let mut response = raw_response(
                StatusCode::from_u16(stored.status).unwrap_or(StatusCode::INTERNAL_SERVER_ERROR),
                stored.body,
            );
            response.headers_mut().insert("idempotency-replayed", HeaderValue::from_static("true"));
            response
        }
        Ok(Claim::Mismatch) => Problem::new(
            StatusCode::UNPROCESSABLE_ENTITY,
            "idempotency-key-reused",
            "this Idempotency-Key was already used with a different request; use a new key for a new request",
        )
        .into_response(),
        Ok(Claim::InProgress) => Problem::new(
            StatusCode::CONFLICT,
            "idempotency-in-progress",
            "a request with this Idempotency-Key is still being processed; retry after it finishes",
        )
        .into_response(),
        Ok(Claim::Fresh) => {
            let slot: Slot = Arc::new(Mutex::new(None));
            let filled = slot.clone();
            let render = Box::new(move |outcome: Result<&T, &StoreError>| {
                let stored = match outcome {
                    Ok(value) => StoredResponse { status: success.as_u16(), body: json(&to_wire(value)) },
                    Err(error) => {
                        let problem = Problem::from(error);
                        if problem.status >= 500 {
                            return None;
                        }
                        StoredResponse { status: problem.status, body: problem.body() }
                    }
                };
                *filled.lock().expect("response slot") = Some(stored.clone());
                Some(stored)
            });
            let idem = Idem { scope: scope.clone(), key: key.clone(), fingerprint, now, render };
            let outcome = op(Some(idem)).await;
            let stored = slot.lock().expect("response slot").take();
            let (response, completed) = match (outcome, stored) {
                (Ok(_), Some(stored)) => (raw_response(success, stored.body), true),
                (Ok(value), None) => (raw_response(success, json(&to_wire(&value))), false),
                // The unit's own refusal, stored with its effects (none). A server-side failure
                // after it (the commit failed) stored nothing: the last arm.
                (Err(error), Some(stored)) if stored.status >= 400 && Problem::from(&error).status < 500 => {
                    let status = StatusCode::from_u16(stored.status).unwrap_or(StatusCode::CONFLICT);
                    (raw_response(status, stored.body), true)
                }
                // Refused before its unit ran, or failed on the server: nothing was stored, so
                // the key is free for a retry.
                (Err(error), _) => (Problem::from(error).into_response(), false),
            };
            if let Err(error) = store.end_idempotency_claim(&scope, &key, completed).await {
                tracing::warn!(%error, "could not end the idempotency claim");
            }
            response
        }
    }
}

fn json<W: Serialize>(value: &W) -> String {
    serde_json::to_string(value).expect("wire types serialise")
}
