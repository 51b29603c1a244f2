//! The one place that decides who may do what (DESIGN.md §2, invariant 7).
//!
//! Rules, in order:
//! 1. The regulator reads everything and writes nothing (403 on every write).
//! 2. The operator may do everything (and every action is audited by the store).
//! 3. A merchant reaches only its own merchant's objects; another merchant's object is
//!    reported as not found (404), never as forbidden, so existence does not leak.
//! 4. A channel checks out on its own channel and reads or acts on its own channel's orders.
//! 5. The payment provider confirms payments and nothing else.

use jembatan_domain::{Channel, MerchantId, OrderAction, Principal};
use jembatan_store::StoreError;

use crate::error::CoreError;

/// Everything a caller can ask for, with the owner of the object it touches.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Access {
    CreateMerchant,
    ReadMerchant(MerchantId),
    ReadCatalogue(MerchantId),
    WriteCatalogue(MerchantId),
    Checkout(Channel),
    ReadOrder {
        merchant: MerchantId,
        channel: Channel,
    },
    ListOrders(MerchantId),
    TransitionOrder {
        merchant: MerchantId,
        channel: Channel,
        action: OrderAction,
    },
    ConfirmPayment,
    IssueToken,
    /// A merchant withdraws from its balance.
    RequestPayout(MerchantId),
    /// A merchant's payouts and balance.
    ReadPayouts(MerchantId),
    /// Batches for the bank and the bank's answers: the operator's work.
    ManagePayouts,
    /// A batch and its file (bank details of many merchants).
    ReadPayoutBatch,
    /// Importing a settlement report.
    Reconcile,
    ReadReconciliation,
}

impl Access {
    fn is_write(self) -> bool {
        matches!(
            self,
            Access::CreateMerchant
                | Access::WriteCatalogue(_)
                | Access::Checkout(_)
                | Access::TransitionOrder { .. }
                | Access::ConfirmPayment
                | Access::IssueToken
                | Access::RequestPayout(_)
                | Access::ManagePayouts
                | Access::Reconcile
        )
    }

    /// The merchant that owns the object, for the not-found rule.
    fn merchant(self) -> Option<MerchantId> {
        match self {
            Access::ReadMerchant(m)
            | Access::ReadCatalogue(m)
            | Access::WriteCatalogue(m)
            | Access::ListOrders(m)
            | Access::RequestPayout(m)
            | Access::ReadPayouts(m)
            | Access::ReadOrder { merchant: m, .. }
            | Access::TransitionOrder { merchant: m, .. } => Some(m),
            _ => None,
        }
    }
}

pub fn check(who: &Principal, access: Access) -> Result<(), CoreError> {
    decide(who, access).map_err(|refusal| match refusal {
        Refusal::Hidden => {
            CoreError::Store(StoreError::NotFound { entity: "object", id: "requested".to_owned() })
        }
        Refusal::Forbidden(reason) => CoreError::Forbidden(reason),
    })
}

/// The role phase, run before the object is loaded: refuses what the caller's role may never do
/// to any object, so the answer cannot depend on whether the object exists (a provider token
/// asking for an order gets 403 whether or not the id exists). Merchants and the operator pass:
/// their answers depend on the object (a merchant's own object or someone else's, which is 404).
pub fn check_role(who: &Principal, access: Access) -> Result<(), CoreError> {
    let probe = match who {
        Principal::Merchant(_) | Principal::Operator => return Ok(()),
        // A channel's own orders are the ones it could act on.
        Principal::Channel(mine) => match access {
            Access::ReadOrder { merchant, .. } => Access::ReadOrder { merchant, channel: *mine },
            Access::TransitionOrder { merchant, action, .. } => {
                Access::TransitionOrder { merchant, channel: *mine, action }
            }
            other => other,
        },
        Principal::Regulator | Principal::Provider => access,
    };
    match decide(who, probe) {
        Err(Refusal::Forbidden(reason)) => Err(CoreError::Forbidden(reason)),
        Err(Refusal::Hidden) | Ok(()) => Ok(()),
    }
}

/// An owner for role-phase probes, which never compare it.
pub fn anyone() -> MerchantId {
    use jembatan_domain::TypedId;
    MerchantId::from_uuid(uuid::Uuid::nil())
}

#[derive(Debug, PartialEq, Eq)]
pub enum Refusal {
    /// Report as 404: the object belongs to someone else.
    Hidden,
    /// Report as 403 with the reason.
    Forbidden(String),
}

pub fn decide(who: &Principal, access: Access) -> Result<(), Refusal> {
    use Access as A;
    match who {
        Principal::Regulator if access.is_write() => {
            Err(Refusal::Forbidden("the regulator has read-only access".to_owned()))
        }
        Principal::Regulator | Principal::Operator => Ok(()),
        Principal::Merchant(me) => {
            if access.merchant().is_some_and(|owner| owner != *me) {
                return Err(Refusal::Hidden);
            }
            match access {
                A::ReadMerchant(_) | A::ReadCatalogue(_) | A::WriteCatalogue(_) | A::ListOrders(_) => Ok(()),
                A::ReadOrder { .. } | A::RequestPayout(_) | A::ReadPayouts(_) => Ok(()),
                A::TransitionOrder { action, .. } => match action {
                    OrderAction::Ship | OrderAction::Deliver | OrderAction::Cancel => Ok(()),
                    OrderAction::Confirm => Err(forbidden("only the buyer's channel confirms receipt")),
                    OrderAction::Pay => Err(forbidden("only the payment provider confirms payment")),
                },
                _ => Err(forbidden("a merchant token cannot do this")),
            }
        }
        Principal::Channel(mine) => match access {
            A::Checkout(channel) if channel == *mine => Ok(()),
            A::Checkout(_) => Err(forbidden("a channel checks out on its own channel only")),
            A::ReadOrder { channel, .. } | A::TransitionOrder { channel, .. } if channel != *mine => {
                Err(Refusal::Hidden)
            }
            A::ReadOrder { .. } | A::ReadCatalogue(_) | A::ReadMerchant(_) => Ok(()),
            A::TransitionOrder { action: OrderAction::Confirm | OrderAction::Cancel, .. } => Ok(()),
            A::TransitionOrder { .. } => Err(forbidden("a channel may only confirm or cancel orders")),
            _ => Err(forbidden("a channel token cannot do this")),
        },
        Principal::Provider => match access {
            A::ConfirmPayment => Ok(()),
            _ => Err(forbidden("a provider token only confirms payments")),
        },
    }
}

fn forbidden(reason: &str) -> Refusal {
    Refusal::Forbidden(reason.to_owned())
}

#[cfg(test)]
mod tests {
    use super::*;
    use jembatan_domain::TypedId;
    use uuid::Uuid;

    fn m(n: u128) -> MerchantId {
        MerchantId::from_uuid(Uuid::from_u128(n))
    }

    /// The whole table in one place: (who, access, expected).
    #[test]
    fn decisions() {
        let a = Principal::Merchant(m(1));
        let social = Principal::Channel(Channel::Social);
        let order_of_1 =
            |action| Access::TransitionOrder { merchant: m(1), channel: Channel::Social, action };
        let read_1 = Access::ReadOrder { merchant: m(1), channel: Channel::Social };
        let read_2 = Access::ReadOrder { merchant: m(2), channel: Channel::Marketplace };
        let cases: Vec<(&Principal, Access, Result<(), ()>)> = vec![
            // Payouts and reconciliation: the merchant its own, the operator everything, the
            // regulator reads only, channels and the provider nothing.
            (&a, Access::RequestPayout(m(1)), Ok(())),
            (&a, Access::ReadPayouts(m(1)), Ok(())),
            (&a, Access::ManagePayouts, Err(())),
            (&a, Access::ReadPayoutBatch, Err(())),
            (&a, Access::Reconcile, Err(())),
            (&a, Access::ReadReconciliation, Err(())),
            (&Principal::Operator, Access::RequestPayout(m(2)), Ok(())),
            (&Principal::Operator, Access::ManagePayouts, Ok(())),
            (&Principal::Operator, Access::Reconcile, Ok(())),
            (&Principal::Regulator, Access::RequestPayout(m(1)), Err(())),
            (&Principal::Regulator, Access::ManagePayouts, Err(())),
            (&Principal::Regulator, Access::Reconcile, Err(())),
            (&Principal::Regulator, Access::ReadPayouts(m(1)), Ok(())),
            (&Principal::Regulator, Access::ReadPayoutBatch, Ok(())),
            (&Principal::Regulator, Access::ReadReconciliation, Ok(())),
            (&social, Access::ReadPayouts(m(1)), Err(())),
            (&social, Access::RequestPayout(m(1)), Err(())),
            (&Principal::Provider, Access::ManagePayouts, Err(())),
            (&Principal::Provider, Access::ReadReconciliation, Err(())),
            (&Principal::Operator, Access::CreateMerchant, Ok(())),
            (&Principal::Regulator, Access::CreateMerchant, Err(())),
            (&Principal::Regulator, read_2, Ok(())),
            (&Principal::Regulator, order_of_1(OrderAction::Cancel), Err(())),
            (&a, Access::WriteCatalogue(m(1)), Ok(())),
            (&a, read_1, Ok(())),
            (&a, order_of_1(OrderAction::Ship), Ok(())),
            (&a, order_of_1(OrderAction::Confirm), Err(())),
            (&a, Access::CreateMerchant, Err(())),
            (&social, Access::Checkout(Channel::Social), Ok(())),
            (&social, Access::Checkout(Channel::Marketplace), Err(())),
            (&social, read_1, Ok(())),
            (&social, order_of_1(OrderAction::Confirm), Ok(())),
            (&social, order_of_1(OrderAction::Ship), Err(())),
            (&Principal::Provider, Access::ConfirmPayment, Ok(())),
            (&Principal::Provider, read_1, Err(())),
        ];
        for (who, access, want) in cases {
            assert_eq!(decide(who, access).map_err(|_| ()), want, "{who:?} {access:?}");
        }
        // The role phase refuses a provider whatever the order (so a missing id and an existing
        // one get the same 403), and lets merchants through to the object phase.
        let any_order = Access::ReadOrder { merchant: anyone(), channel: Channel::Marketplace };
        assert!(matches!(check_role(&Principal::Provider, any_order), Err(CoreError::Forbidden(_))));
        assert!(check_role(&a, any_order).is_ok());
        assert!(check_role(&social, any_order).is_ok(), "a channel may read its own channel's orders");
        let ship = Access::TransitionOrder {
            merchant: anyone(),
            channel: Channel::Marketplace,
            action: OrderAction::Ship,
        };
        assert!(matches!(check_role(&social, ship), Err(CoreError::Forbidden(_))));
        // Another merchant's objects, and another channel's orders, are hidden, not forbidden.
        assert_eq!(decide(&a, Access::WriteCatalogue(m(2))), Err(Refusal::Hidden));
        assert_eq!(decide(&a, read_2), Err(Refusal::Hidden));
        assert_eq!(decide(&social, read_2), Err(Refusal::Hidden));
        assert_eq!(decide(&a, Access::RequestPayout(m(2))), Err(Refusal::Hidden));
        assert_eq!(decide(&a, Access::ReadPayouts(m(2))), Err(Refusal::Hidden));
        // The role phase: a regulator asking for any payout write gets 403 before any lookup.
        assert!(matches!(
            check_role(&Principal::Regulator, Access::RequestPayout(anyone())),
            Err(CoreError::Forbidden(_))
        ));
        assert!(check_role(&a, Access::ReadPayouts(anyone())).is_ok());
    }
}
