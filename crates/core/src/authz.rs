//! The one place that decides who may do what (DESIGN.md §2, invariant 7).
//!
//! Rules, in order:
//! 1. The regulator reads everything and writes nothing (403 on every write).
//! 2. The operator may do everything (and every action is audited by the store).
//! 3. A merchant reaches only its own merchant's objects; another merchant's object is
//!    reported as not found (404), never as forbidden, so existence does not leak.
//! 4. A channel checks out on its own channel and reads or acts on its own channel's orders.
//! 5. The payment provider reads its payments (it confirms them by signed callback, not by
//!    token); payments are read by the checkout's channel, never by a merchant (a payment
//!    spans merchants).
//! 6. Refunds are issued by the order's merchant (or the operator).
//! 7. Webhook subscriptions and their deliveries belong to a merchant or a channel: each
//!    manages only its own (another's is not found); the operator manages all.
//! 8. The migration's waves are the operator's: planned and, for now, read by the operator
//!    alone. The regulator will read the migration's progress (DESIGN.md §6, the "75% done"
//!    figure) once that report exists; until then it is refused like every other role.

use jembatan_domain::{Channel, MerchantId, OrderAction, Principal, WebhookOwner};
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
    /// A checkout's payment, with the checkout's channel (`None`: the role phase).
    ReadPayment(Option<Channel>),
    Refund(MerchantId),
    /// A ledger account with its merchant (`None`: a platform account).
    ReadLedger(Option<MerchantId>),
    IssueToken,
    /// Read the subscriptions (and delivery log) of this owner.
    ReadWebhooks(WebhookOwner),
    /// Create or delete a subscription of this owner.
    ManageWebhooks(WebhookOwner),
    /// Send a delivery of this owner's subscription again.
    ReplayWebhook(WebhookOwner),
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
    /// Planning a wave of the migration (operator only).
    PlanMigration,
    /// The migration's waves and their merchants (operator only, for now: see rule 8).
    ReadMigration,
}

impl Access {
    fn is_write(self) -> bool {
        matches!(
            self,
            Access::CreateMerchant
                | Access::WriteCatalogue(_)
                | Access::Checkout(_)
                | Access::TransitionOrder { .. }
                | Access::Refund(_)
                | Access::IssueToken
                | Access::ManageWebhooks(_)
                | Access::ReplayWebhook(_)
                | Access::RequestPayout(_)
                | Access::ManagePayouts
                | Access::Reconcile
                | Access::PlanMigration
        )
    }

    /// The owner of the webhook object, for the not-found rule.
    fn webhook_owner(self) -> Option<WebhookOwner> {
        match self {
            Access::ReadWebhooks(o) | Access::ManageWebhooks(o) | Access::ReplayWebhook(o) => Some(o),
            _ => None,
        }
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
            | Access::TransitionOrder { merchant: m, .. }
            | Access::Refund(m)
            | Access::ReadLedger(Some(m)) => Some(m),
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
        Principal::Regulator if access == A::ReadMigration => Err(forbidden(
            "the migration's waves are the operator's for now; the regulator will read its progress report",
        )),
        Principal::Regulator | Principal::Operator => Ok(()),
        Principal::Merchant(me) => {
            if access.merchant().is_some_and(|owner| owner != *me) {
                return Err(Refusal::Hidden);
            }
            if access.webhook_owner().is_some_and(|owner| owner != WebhookOwner::Merchant(*me)) {
                return Err(Refusal::Hidden);
            }
            match access {
                A::ReadWebhooks(_) | A::ManageWebhooks(_) | A::ReplayWebhook(_) => Ok(()),
                A::ReadMerchant(_) | A::ReadCatalogue(_) | A::WriteCatalogue(_) | A::ListOrders(_) => Ok(()),
                A::ReadOrder { .. }
                | A::Refund(_)
                | A::ReadLedger(Some(_))
                | A::RequestPayout(_)
                | A::ReadPayouts(_) => Ok(()),
                A::ReadLedger(None) => {
                    Err(forbidden("platform accounts are the operator's and the regulator's"))
                }
                A::TransitionOrder { action, .. } => match action {
                    OrderAction::Ship | OrderAction::Deliver | OrderAction::Cancel => Ok(()),
                    OrderAction::Confirm => Err(forbidden("only the buyer's channel confirms receipt")),
                    OrderAction::Pay => Err(forbidden("only the payment provider confirms payment")),
                },
                _ => Err(forbidden("a merchant token cannot do this")),
            }
        }
        Principal::Channel(mine) => match access {
            A::ReadWebhooks(owner) | A::ManageWebhooks(owner) | A::ReplayWebhook(owner) => {
                if owner == WebhookOwner::Channel(*mine) { Ok(()) } else { Err(Refusal::Hidden) }
            }
            A::Checkout(channel) if channel == *mine => Ok(()),
            A::Checkout(_) => Err(forbidden("a channel checks out on its own channel only")),
            A::ReadOrder { channel, .. } | A::TransitionOrder { channel, .. } if channel != *mine => {
                Err(Refusal::Hidden)
            }
            A::ReadPayment(Some(channel)) if channel != *mine => Err(Refusal::Hidden),
            A::ReadOrder { .. } | A::ReadCatalogue(_) | A::ReadMerchant(_) | A::ReadPayment(_) => Ok(()),
            A::TransitionOrder { action: OrderAction::Confirm | OrderAction::Cancel, .. } => Ok(()),
            A::TransitionOrder { .. } => Err(forbidden("a channel may only confirm or cancel orders")),
            _ => Err(forbidden("a channel token cannot do this")),
        },
        Principal::Provider => match access {
            A::ReadPayment(_) => Ok(()),
            _ => Err(forbidden("a provider token only reads payments")),
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
            (&Principal::Provider, Access::ReadPayment(Some(Channel::Social)), Ok(())),
            (&Principal::Provider, read_1, Err(())),
            (&Principal::Provider, Access::Refund(m(1)), Err(())),
            (&social, Access::ReadPayment(Some(Channel::Social)), Ok(())),
            (&social, Access::ReadPayment(Some(Channel::Marketplace)), Err(())),
            (&social, Access::Refund(m(1)), Err(())),
            (&a, Access::ReadPayment(Some(Channel::Social)), Err(())),
            (&a, Access::Refund(m(1)), Ok(())),
            (&a, Access::Refund(m(2)), Err(())),
            (&Principal::Regulator, Access::Refund(m(1)), Err(())),
            (&Principal::Regulator, Access::ReadPayment(Some(Channel::Social)), Ok(())),
            (&a, Access::ReadLedger(Some(m(1))), Ok(())),
            (&a, Access::ReadLedger(Some(m(2))), Err(())),
            (&a, Access::ReadLedger(None), Err(())),
            (&social, Access::ReadLedger(None), Err(())),
            (&Principal::Regulator, Access::ReadLedger(None), Ok(())),
            // The migration: the operator's alone, for now.
            (&Principal::Operator, Access::PlanMigration, Ok(())),
            (&Principal::Operator, Access::ReadMigration, Ok(())),
            (&Principal::Regulator, Access::PlanMigration, Err(())),
            (&Principal::Regulator, Access::ReadMigration, Err(())),
            (&a, Access::PlanMigration, Err(())),
            (&a, Access::ReadMigration, Err(())),
            (&social, Access::PlanMigration, Err(())),
            (&social, Access::ReadMigration, Err(())),
            (&Principal::Provider, Access::ReadMigration, Err(())),
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

    /// Webhooks: each merchant and channel reaches only its own subscriptions and deliveries.
    #[test]
    fn webhook_decisions() {
        use Refusal::{Forbidden, Hidden};
        let (a, b) = (Principal::Merchant(m(1)), Principal::Merchant(m(2)));
        let social = Principal::Channel(Channel::Social);
        let of_a = WebhookOwner::Merchant(m(1));
        let of_social = WebhookOwner::Channel(Channel::Social);
        let of_marketplace = WebhookOwner::Channel(Channel::Marketplace);
        type Want = Result<(), fn(&Refusal) -> bool>;
        let ok: Want = Ok(());
        let hidden: Want = Err(|r| *r == Hidden);
        let forbidden: Want = Err(|r| matches!(r, Forbidden(_)));
        let cases: Vec<(&Principal, Access, Want)> = vec![
            (&a, Access::ReadWebhooks(of_a), ok),
            (&a, Access::ManageWebhooks(of_a), ok),
            (&a, Access::ReplayWebhook(of_a), ok),
            (&b, Access::ReadWebhooks(of_a), hidden),
            (&b, Access::ManageWebhooks(of_a), hidden),
            (&b, Access::ReplayWebhook(of_a), hidden),
            (&a, Access::ReadWebhooks(of_social), hidden),
            (&social, Access::ManageWebhooks(of_social), ok),
            (&social, Access::ReplayWebhook(of_social), ok),
            (&social, Access::ReadWebhooks(of_marketplace), hidden),
            (&social, Access::ManageWebhooks(of_a), hidden),
            (&Principal::Operator, Access::ManageWebhooks(of_a), ok),
            (&Principal::Operator, Access::ReplayWebhook(of_marketplace), ok),
            (&Principal::Regulator, Access::ReadWebhooks(of_a), ok),
            (&Principal::Regulator, Access::ManageWebhooks(of_a), forbidden),
            (&Principal::Regulator, Access::ReplayWebhook(of_a), forbidden),
            (&Principal::Provider, Access::ReadWebhooks(of_a), forbidden),
            (&Principal::Provider, Access::ManageWebhooks(of_a), forbidden),
        ];
        for (who, access, want) in cases {
            match (decide(who, access), want) {
                (Ok(()), Ok(())) => {}
                (Err(refusal), Err(expected)) if expected(&refusal) => {}
                (got, _) => panic!("{who:?} {access:?}: got {got:?}"),
            }
        }
        // The role phase: the regulator and the provider are refused before any lookup.
        let probe = Access::ManageWebhooks(WebhookOwner::Merchant(anyone()));
        assert!(matches!(check_role(&Principal::Regulator, probe), Err(CoreError::Forbidden(_))));
        assert!(matches!(check_role(&Principal::Provider, probe), Err(CoreError::Forbidden(_))));
        assert!(check_role(&social, probe).is_ok(), "a channel manages its own");
        assert!(check_role(&a, probe).is_ok());
    }
}
