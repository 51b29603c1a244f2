//! Persistence of the Jembatan core on SQLite (the embedded default) and PostgreSQL (the
//! scale-out target), through one SQL dialect both run.
//!
//! Architecture invariants:
//! - This crate owns all SQL. Callers hand it domain values and get domain values back.
//! - Every write runs in one transaction together with its outbox event and audit entry
//!   ([`journal`]); there is no way to write state without them.
//! - Stock changes are conditional `UPDATE … WHERE` statements that encode the stock rule, never
//!   read-modify-write, and a checkout touches its SKU rows in SKU id order.
//! - `merchant_id` leads the primary key of every merchant-owned table (the distribution key on
//!   Citus-style engines); no hot path depends on a global sequence.
//! - On SQLite all writes go through one writer task that commits them in groups
//!   ([`exec`]); on PostgreSQL each write is its own transaction on the pool.

pub mod audit;
pub mod catalogue;
pub mod db;
pub mod error;
pub mod exec;
pub mod findings;
pub mod idempotency;
pub mod import;
pub mod journal;
pub mod ledger;
pub mod legacy;
pub mod legacy_facts;
pub mod merchants;
pub mod migration;
pub mod migration_run;
pub mod orders;
pub mod payments;
pub mod payouts;
pub mod pdp;
pub mod reconciliation;
mod rows;
pub mod schema;
pub mod social;
pub mod testing;
pub mod tokens;
pub mod webhooks;

pub use db::{Conn, Row, Value, q};
pub use error::StoreError;
pub use exec::{Backend, Idem, Store, StoreOptions, StoredResponse, WriteCtx};
pub use legacy::LegacyStore;
pub use schema::Schema;

use jembatan_domain::TypedId;

/// A fresh time-sortable id. Kept here, at the edge, because it reads the clock and randomness.
pub fn new_id<T: TypedId>() -> T {
    T::from_uuid(uuid::Uuid::now_v7())
}
