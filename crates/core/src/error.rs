//! Errors of the core's use cases: a refusal by authorisation, or what the store or domain said.

use jembatan_domain::DomainError;
use jembatan_store::StoreError;

#[derive(Debug, thiserror::Error)]
pub enum CoreError {
    /// The caller may not do this at all (its role never may). Ownership mismatches are
    /// reported as not found instead, so that ids of other merchants leak nothing.
    #[error("{0}")]
    Forbidden(String),
    /// A webhook subscription's URL is not one we send to; the reason says why.
    #[error("webhook URL refused: {0}")]
    WebhookUrlRefused(String),
    #[error(transparent)]
    Store(#[from] StoreError),
}

impl From<DomainError> for CoreError {
    fn from(error: DomainError) -> Self {
        CoreError::Store(StoreError::Domain(error))
    }
}
