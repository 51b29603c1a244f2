//! The pure domain of the Jembatan core: money, typed ids, merchants, catalogue, stock, checkouts
//! and the order state machine.
//!
//! Architecture invariant: nothing here does I/O, is async, knows SQL or JSON, or reads a clock.
//! Every value type parses instead of validating: a private field, one fallible constructor that
//! enforces every rule, no setters. Callers (store, core, api) hold these types, never raw strings.

pub mod audit;
pub mod checkout;
pub mod csv;
pub mod error;
pub mod fee;
pub mod id;
pub mod ledger;
pub mod merchant;
pub mod migration;
pub mod money;
pub mod order;
pub mod payment;
pub mod payout;
pub mod policy;
pub mod principal;
pub mod product;
pub mod qris;
pub mod reconcile;
pub mod social;
pub mod stock;
pub mod text;
pub mod time;
pub mod webhook;

pub use checkout::{
    BuyerId, Channel, CheckoutLine, CheckoutRequest, OrderDraft, OrderDraftLine, PaymentMethod, PricedSku,
    ShippingAddress, plan_orders,
};
pub use error::DomainError;
pub use id::{
    AccountId, AuditId, CallbackId, CheckoutId, ConsentId, EventId, FindingId, MerchantId, OrderId,
    PaymentId, PayoutBatchId, PayoutId, ProductId, ReconciliationId, RefundId, SkuId, TokenId, TransferId,
    TypedId, WebhookDeliveryId, WebhookSubscriptionId,
};
pub use merchant::{Merchant, MerchantName, Nib, Origin, Province};
pub use money::Money;
pub use order::{OrderAction, OrderStatus, StockEffect};
pub use payment::{PaymentInstructions, PaymentStatus};
pub use principal::{Principal, Role};
pub use product::{Category, NewSku, Price, ProductTitle, SkuCode};
pub use stock::{Quantity, StockLevel};
pub use text::PhoneNumber;
pub use time::Timestamp;
pub use webhook::{DeliveryStatus, EventFilter, WebhookOwner, WebhookSecret};

/// Limits of the domain, named with their unit. The API enforces the same numbers.
pub mod limits {
    /// Distinct SKUs in one checkout.
    pub const CHECKOUT_LINES_MAX: usize = 50;
    /// Units of one SKU in one checkout line.
    pub const LINE_QUANTITY_MAX: u32 = 1_000;
    /// SKUs of one product.
    pub const PRODUCT_SKUS_MAX: usize = 100;
    /// Stock on hand of one SKU.
    pub const STOCK_UNITS_MAX: u32 = 10_000_000;
}
