//! RFC 9457 problem details: every error the API returns, with a stable `type` per kind.
//! 5xx bodies say nothing internal; the cause goes to the log.

use axum::http::{HeaderValue, StatusCode, header};
use axum::response::{IntoResponse, Response};
use jembatan_core::CoreError;
use jembatan_domain::DomainError;
use jembatan_store::StoreError;
use serde::Serialize;
use utoipa::ToSchema;

pub const TYPE_BASE: &str = "https://jembatan.dev/problems/";

/// An RFC 9457 problem document.
#[derive(Debug, Clone, Serialize, ToSchema)]
pub struct Problem {
    /// Stable URI of the kind of problem, e.g. `https://jembatan.dev/problems/insufficient-stock`.
    #[serde(rename = "type")]
    pub type_uri: String,
    pub title: String,
    pub status: u16,
    /// What went wrong and what to do about it.
    pub detail: String,
    /// The request field at fault, where there is one.
    #[serde(skip_serializing_if = "Option::is_none")]
    pub field: Option<String>,
}

impl Problem {
    pub fn new(status: StatusCode, code: &str, detail: impl Into<String>) -> Problem {
        Problem {
            type_uri: format!("{TYPE_BASE}{code}"),
            title: status.canonical_reason().unwrap_or("Error").to_owned(),
            status: status.as_u16(),
            detail: detail.into(),
            field: None,
        }
    }

    pub fn with_field(mut self, field: &str) -> Problem {
        self.field = Some(field.to_owned());
        self
    }

    pub fn status(&self) -> StatusCode {
        StatusCode::from_u16(self.status).unwrap_or(StatusCode::INTERNAL_SERVER_ERROR)
    }

    pub fn body(&self) -> String {
        serde_json::to_string(self).expect("problem serialises")
    }

    pub fn unauthenticated() -> Problem {
        Problem::new(
            StatusCode::UNAUTHORIZED,
            "unauthenticated",
            "send a valid token as `Authorization: Bearer jbt_…` (issue one with `jembatan token issue`)",
        )
    }

    pub fn not_found(what: &str) -> Problem {
        Problem::new(StatusCode::NOT_FOUND, "not-found", format!("{what} was not found"))
    }
}

impl IntoResponse for Problem {
    fn into_response(self) -> Response {
        let status = self.status();
        raw_response(status, self.body())
    }
}

/// A response with a JSON body already rendered; errors get the problem media type.
pub fn raw_response(status: StatusCode, body: String) -> Response {
    let content_type = if status.is_client_error() || status.is_server_error() {
        "application/problem+json"
    } else {
        "application/json"
    };
    let mut response = (status, body).into_response();
    response.headers_mut().insert(header::CONTENT_TYPE, HeaderValue::from_static(content_type));
    response
}

impl From<DomainError> for Problem {
    fn from(error: DomainError) -> Problem {
        Problem::from(&error)
    }
}

impl From<StoreError> for Problem {
    fn from(error: StoreError) -> Problem {
        Problem::from(&error)
    }
}

impl From<CoreError> for Problem {
    fn from(error: CoreError) -> Problem {
        Problem::from(&error)
    }
}

impl From<&DomainError> for Problem {
    fn from(error: &DomainError) -> Problem {
        let status = match &error {
            DomainError::InvalidField { .. } | DomainError::MoneyOverflow => StatusCode::UNPROCESSABLE_ENTITY,
            DomainError::InsufficientStock { .. }
            | DomainError::StockBelowReserved { .. }
            | DomainError::IllegalTransition { .. }
            | DomainError::InsufficientBalance { .. }
            | DomainError::PayoutConflict(_) => StatusCode::CONFLICT,
            DomainError::RefundExceedsPaid { .. } => StatusCode::UNPROCESSABLE_ENTITY,
        };
        let problem = Problem::new(status, error.code(), error.to_string());
        match error {
            DomainError::InvalidField { field, .. } => problem.with_field(field),
            _ => problem,
        }
    }
}

impl From<&StoreError> for Problem {
    fn from(error: &StoreError) -> Problem {
        match error {
            // One wording for "does not exist" and "belongs to someone else" (authz hides the
            // latter as not found): a detail naming the object would tell the two apart.
            StoreError::NotFound { .. } => Problem::new(
                StatusCode::NOT_FOUND,
                "not-found",
                "the requested object was not found among those this token may see",
            ),
            StoreError::Conflict(reason) => Problem::new(StatusCode::CONFLICT, "conflict", reason.clone()),
            StoreError::Domain(error) => error.into(),
            StoreError::Unavailable => Problem::new(
                StatusCode::SERVICE_UNAVAILABLE,
                "unavailable",
                "the service is shutting down; retry",
            ),
            // The gateway waits out a fence; this is what is left when the move takes longer
            // than its bounded wait.
            StoreError::Fenced(_) => Problem::new(
                StatusCode::SERVICE_UNAVAILABLE,
                "shop-moving",
                "this shop is being moved to the marketplace core and its writes are held for a moment; retry in a few seconds",
            ),
            StoreError::NotOwner { merchant_id, owner } => Problem::new(
                StatusCode::CONFLICT,
                "merchant-not-on-core",
                format!(
                    "merchant {merchant_id} is still served by the social shop's {owner} backend: its catalogue and orders change through /social/v1 until the shop moves to the core"
                ),
            ),
            StoreError::Database(error) => {
                tracing::error!(error = %error, cause = ?error, "database error");
                Problem::new(
                    StatusCode::INTERNAL_SERVER_ERROR,
                    "internal",
                    "an internal error occurred; it was logged",
                )
            }
        }
    }
}

impl From<&CoreError> for Problem {
    fn from(error: &CoreError) -> Problem {
        match error {
            CoreError::Forbidden(reason) => Problem::new(StatusCode::FORBIDDEN, "forbidden", reason.clone()),
            CoreError::WebhookUrlRefused(_) => {
                Problem::new(StatusCode::UNPROCESSABLE_ENTITY, "webhook-url-refused", error.to_string())
                    .with_field("url")
            }
            CoreError::Store(error) => error.into(),
        }
    }
}
