//! Errors of the domain rules. Each variant has a stable `code` that the API turns into the
//! problem `type`; messages are lowercase and tell a person what to change.

use crate::order::{OrderAction, OrderStatus};

#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
pub enum DomainError {
    /// A field does not parse; `field` names it as the client wrote it.
    #[error("{field}: {reason}")]
    InvalidField { field: &'static str, reason: String },
    #[error("money overflow: the amount exceeds the largest supported value")]
    MoneyOverflow,
    #[error("not enough stock{}: {available} available, {requested} requested", sku.as_ref().map(|s| format!(" of {s}")).unwrap_or_default())]
    InsufficientStock { sku: Option<String>, available: u32, requested: u32 },
    #[error("stock on hand cannot go below the {reserved} units reserved for open orders")]
    StockBelowReserved { reserved: u32 },
    #[error("an order that is {from} cannot be {action}")]
    IllegalTransition { from: OrderStatus, action: OrderAction },
    #[error("a refund of {requested} exceeds the {refundable} still refundable on this order")]
    RefundExceedsPaid { refundable: crate::money::Money, requested: crate::money::Money },
    #[error("the balance does not cover this: Rp{available} available, Rp{requested} requested")]
    InsufficientBalance { available: i64, requested: i64 },
    /// A payout cannot take this step (a contradictory confirmation, nothing to export…).
    #[error("{0}")]
    PayoutConflict(String),
}

impl DomainError {
    pub fn invalid(field: &'static str, reason: impl Into<String>) -> Self {
        DomainError::InvalidField { field, reason: reason.into() }
    }

    /// Stable machine-readable code of the error kind.
    pub fn code(&self) -> &'static str {
        match self {
            DomainError::InvalidField { .. } => "validation",
            DomainError::MoneyOverflow => "money-overflow",
            DomainError::InsufficientStock { .. } => "insufficient-stock",
            DomainError::StockBelowReserved { .. } => "stock-below-reserved",
            DomainError::IllegalTransition { .. } => "illegal-transition",
            DomainError::RefundExceedsPaid { .. } => "refund-exceeds-paid",
            DomainError::InsufficientBalance { .. } => "insufficient-balance",
            DomainError::PayoutConflict(_) => "payout-conflict",
        }
    }
}
