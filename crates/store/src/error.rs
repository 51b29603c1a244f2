//! Errors of the store: what was not found or conflicts, domain rules the data broke, and
//! database failures (which the API reports as 5xx without their cause).

use jembatan_domain::DomainError;

pub use crate::db::DbError;

#[derive(Debug, thiserror::Error)]
pub enum StoreError {
    #[error("{entity} {id} not found")]
    NotFound { entity: &'static str, id: String },
    #[error("{0}")]
    Conflict(String),
    #[error(transparent)]
    Domain(#[from] DomainError),
    #[error("database error")]
    Database(DbError),
    #[error("the store is shutting down")]
    Unavailable,
    /// The social shop's legacy store refused a write because the shop is fenced for its move
    /// to the core (DESIGN.md §6): the write belongs to whichever system owns the shop next.
    #[error("shop {0} is being moved: its writes are held until the move commits")]
    Fenced(String),
    /// A write for a merchant the core does not own (yet): the social shop's legacy backend
    /// serves it until its move, and takes its writes through `/social/v1` (invariant 6).
    #[error(
        "merchant {merchant_id} is served by the {owner} backend: write through /social/v1 until it moves"
    )]
    NotOwner { merchant_id: String, owner: &'static str },
}

impl From<DbError> for StoreError {
    /// A unique constraint that refused a write means a concurrent request won a race for the
    /// same key: a conflict the client can act on, not a server failure.
    fn from(error: DbError) -> Self {
        if let Some(shop) = error.fenced_shop() {
            return StoreError::Fenced(shop);
        }
        if error.unique_violation {
            tracing::info!(%error, "unique constraint refused a concurrent write");
            return StoreError::Conflict(
                "a concurrent request created the same record first; read it again and retry".to_owned(),
            );
        }
        if error.retryable {
            tracing::warn!(%error, "the database aborted a transaction to resolve a deadlock");
            return StoreError::Conflict(RETRY_ABORT.to_owned());
        }
        StoreError::Database(error)
    }
}

/// The conflict a transaction the database aborted (a deadlock, a serialisation failure) is
/// answered with: that transaction wrote nothing and may be run again.
pub const RETRY_ABORT: &str = "the database aborted this request to resolve a conflict with a concurrent one; nothing was written: retry";

impl StoreError {
    /// The database aborted the transaction to resolve a conflict: running it again is safe.
    pub fn is_retry_abort(&self) -> bool {
        matches!(self, StoreError::Conflict(message) if message == RETRY_ABORT)
    }

    pub fn not_found(entity: &'static str, id: impl ToString) -> StoreError {
        StoreError::NotFound { entity, id: id.to_string() }
    }
}
