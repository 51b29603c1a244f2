//! Request extractors that answer in problem+json: the authenticated caller, and JSON bodies
//! read under a size limit with their raw bytes kept for idempotency fingerprints.

use axum::body::Bytes;
use axum::extract::{FromRequest, FromRequestParts, Request};
use axum::http::request::Parts;
use axum::http::{StatusCode, header};
use jembatan_domain::Principal;
use serde::de::DeserializeOwned;

use crate::AppState;
use crate::problem::Problem;

/// The principal the auth middleware attached to the request.
#[derive(Debug, Clone)]
pub struct Caller(pub Principal);

impl FromRequestParts<AppState> for Caller {
    type Rejection = Problem;

    async fn from_request_parts(parts: &mut Parts, _: &AppState) -> Result<Self, Self::Rejection> {
        parts.extensions.get::<Principal>().cloned().map(Caller).ok_or_else(Problem::unauthenticated)
    }
}

/// A JSON body of at most `body_bytes_max`, parsed into `T`.
pub struct JsonBody<T> {
    pub value: T,
    pub bytes: Bytes,
}

impl<T: DeserializeOwned> FromRequest<AppState> for JsonBody<T> {
    type Rejection = Problem;

    async fn from_request(request: Request, state: &AppState) -> Result<Self, Self::Rejection> {
        let is_json = request
            .headers()
            .get(header::CONTENT_TYPE)
            .and_then(|v| v.to_str().ok())
            .is_some_and(|v| v.trim_start().to_ascii_lowercase().starts_with("application/json"));
        if !is_json {
            return Err(Problem::new(
                StatusCode::UNSUPPORTED_MEDIA_TYPE,
                "unsupported-media-type",
                "send the body as JSON with `Content-Type: application/json`",
            ));
        }
        let limit = state.limits.body_bytes_max;
        let bytes = axum::body::to_bytes(request.into_body(), limit).await.map_err(|_| {
            Problem::new(
                StatusCode::PAYLOAD_TOO_LARGE,
                "payload-too-large",
                format!("the request body exceeds the limit of {limit} bytes"),
            )
        })?;
        let value = serde_json::from_slice::<T>(&bytes).map_err(|error| {
            use serde_json::error::Category;
            match error.classify() {
                Category::Data => Problem::new(
                    StatusCode::UNPROCESSABLE_ENTITY,
                    "validation",
                    format!("invalid body: {error}"),
                ),
                Category::Syntax | Category::Eof | Category::Io => Problem::new(
                    StatusCode::BAD_REQUEST,
                    "malformed-json",
                    format!("the body is not valid JSON: {error}"),
                ),
            }
        })?;
        Ok(JsonBody { value, bytes })
    }
}

/// A CSV file sent as the body (`Content-Type: text/csv`), UTF-8, of at most
/// `csv_body_bytes_max`.
pub struct CsvBody {
    pub text: String,
    pub bytes: Bytes,
}

impl FromRequest<AppState> for CsvBody {
    type Rejection = Problem;

    async fn from_request(request: Request, state: &AppState) -> Result<Self, Self::Rejection> {
        let is_csv = request
            .headers()
            .get(header::CONTENT_TYPE)
            .and_then(|v| v.to_str().ok())
            .is_some_and(|v| v.trim_start().to_ascii_lowercase().starts_with("text/csv"));
        if !is_csv {
            return Err(Problem::new(
                StatusCode::UNSUPPORTED_MEDIA_TYPE,
                "unsupported-media-type",
                "send the file as the body with `Content-Type: text/csv`",
            ));
        }
        let limit = state.limits.csv_body_bytes_max;
        let bytes = axum::body::to_bytes(request.into_body(), limit).await.map_err(|_| {
            Problem::new(
                StatusCode::PAYLOAD_TOO_LARGE,
                "payload-too-large",
                format!("the file exceeds the limit of {limit} bytes; split it"),
            )
        })?;
        let text = String::from_utf8(bytes.to_vec()).map_err(|_| {
            Problem::new(StatusCode::UNPROCESSABLE_ENTITY, "validation", "the file is not UTF-8 text")
                .with_field("file")
        })?;
        Ok(CsvBody { text, bytes })
    }
}
