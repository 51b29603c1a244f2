//! Legacy orders entering the core through the migration engine (issue 5), and the cutover
//! unit that applies the last changes and flips the owner in one transaction.
//!
//! Every write here is an upsert keyed by the legacy row: importing the same order twice, or
//! again after a crash, finds it by its social id and changes nothing more, so no row, stock
//! level or balance is ever doubled. An order already in the core is only moved *forward* to
//! the legacy row's status, along the core's own transitions (money moves as on any core
//! order); a change the core's state machine has no path for is refused with its reason, for
//! the engine to quarantine.

use jembatan_domain::{
    CheckoutId, CheckoutRequest, DomainError, MerchantId, OrderAction, OrderDraft, OrderStatus,
    PaymentMethod, PricedSku, Timestamp, TypedId, plan_orders,
};

use crate::catalogue::SocialProductCopy;
use std::collections::HashMap;

use crate::db::{Conn, insert_many, q};
use crate::error::StoreError;
use crate::exec::{Store, WriteCtx};
use crate::new_id;
use crate::orders::{OrderRecord, Placed, insert_orders, load_order, transition_loaded};
use crate::social::{IdKind, IdMapping, lookup};

/// A legacy order as the core will hold it.
#[derive(Debug, Clone)]
pub struct ImportedOrder {
    pub social_order_id: String,
    /// The order as a checkout of the social channel (buyer reference, lines, address, method).
    pub request: CheckoutRequest,
    /// Each line's SKU with the legacy price the order was sold at.
    pub priced: Vec<PricedSku>,
    pub status: OrderStatus,
    pub placed_at: Timestamp,
}

/// What importing one order did.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Imported {
    Inserted,
    /// Moved forward from the first status to the second.
    Advanced(OrderStatus, OrderStatus),
    Unchanged,
    /// The order has a core twin whose payment is the core's: the gateway keeps it in step.
    Twin,
    /// The core cannot follow this change (no path in its state machine, or an order it cannot
    /// hold): nothing of the order was written.
    Refused(String),
}

impl Store {
    /// Imports (or brings forward) legacy orders of one merchant, in one unit.
    pub async fn import_legacy_orders(
        &self,
        ctx: WriteCtx,
        merchant_id: MerchantId,
        orders: Vec<ImportedOrder>,
    ) -> Result<Vec<Imported>, StoreError> {
        self.write(None, move |conn| {
            Box::pin(async move { import_orders(conn, &ctx, merchant_id, orders).await })
        })
        .await
    }

    /// The cutover of one shop, in one unit: the last products and orders applied, then the
    /// owner flipped to `core` (see [`crate::social::complete_move`]). Either all of it commits
    /// or none.
    pub async fn cut_over(
        &self,
        ctx: WriteCtx,
        shop_id: &str,
        merchant_id: MerchantId,
        products: Vec<SocialProductCopy>,
        orders: Vec<ImportedOrder>,
        legacy_cancelled: Vec<String>,
    ) -> Result<Vec<Imported>, StoreError> {
        let shop_id = shop_id.to_owned();
        self.write(None, move |conn| {
            Box::pin(async move {
                crate::catalogue::put_social_products(conn, &ctx, products).await?;
                let outcomes = import_orders(conn, &ctx, merchant_id, orders).await?;
                crate::social::complete_move(conn, &ctx, &shop_id, legacy_cancelled).await?;
                Ok(outcomes)
            })
        })
        .await
    }
}

/// The core transitions from `from` to `to`, or `None` if the core has no such path.
pub fn path(from: OrderStatus, to: OrderStatus) -> Option<Vec<OrderAction>> {
    use OrderAction as A;
    use OrderStatus as S;
    if from == to {
        return Some(Vec::new());
    }
    let forward = [S::Paid, S::Shipped, S::Delivered, S::Completed];
    let steps = [A::Ship, A::Deliver, A::Confirm];
    match (forward.iter().position(|s| *s == from), forward.iter().position(|s| *s == to)) {
        (Some(a), Some(b)) if a < b => Some(steps[a..b].to_vec()),
        _ if to == S::Cancelled && from.apply(A::Cancel).is_ok() => Some(vec![A::Cancel]),
        _ => None,
    }
}

/// Imports orders in the caller's unit, one outcome per order in their order. The id map is
/// read once for the whole batch; orders new to the core are written with multi-row
/// statements (checkouts, orders, lines, id map, journal), and the in-flight ones among them
/// then have their escrow held one by one.
pub(crate) async fn import_orders(
    conn: &mut dyn Conn,
    ctx: &WriteCtx,
    merchant_id: MerchantId,
    orders: Vec<ImportedOrder>,
) -> Result<Vec<Imported>, StoreError> {
    let keys: Vec<String> = orders.iter().map(|o| o.social_order_id.clone()).collect();
    let mapped: HashMap<String, IdMapping> = lookup(conn, IdKind::Order, "social_id", &keys)
        .await?
        .into_iter()
        .map(|m| (m.social_id.clone(), m))
        .collect();
    let mut outcomes: Vec<Option<Imported>> = Vec::with_capacity(orders.len());
    let mut new = Vec::new();
    // An order a batch carries twice: its second version moves the first forward, after.
    let mut again = Vec::new();
    let mut seen = std::collections::HashSet::new();
    for (index, order) in orders.into_iter().enumerate() {
        outcomes.push(None);
        if let Some(mapping) = mapped.get(&order.social_order_id) {
            outcomes[index] = Some(advance_mapped(conn, ctx, mapping, order.status).await?);
            continue;
        }
        if !seen.insert(order.social_order_id.clone()) {
            again.push((index, order));
            continue;
        }
        match draft_of(merchant_id, &order)? {
            Ok(draft) => new.push((index, order, draft)),
            Err(reason) => outcomes[index] = Some(Imported::Refused(reason)),
        }
    }
    let mut checkouts = Vec::with_capacity(new.len());
    let mut ids = Vec::with_capacity(new.len());
    let mut inserts = Vec::with_capacity(new.len());
    for (_, order, draft) in &new {
        let checkout_id: CheckoutId = new_id();
        checkouts.push(vec![
            checkout_id.to_string().into(),
            order.request.channel.as_str().into(),
            order.request.buyer_id.as_str().into(),
            order.request.payment_method.as_str().into(),
            draft.total.rupiah().into(),
            1i64.into(),
            order.placed_at.unix_ms().into(),
        ]);
        let placed = Placed::Imported { status: order.status, placed_at: order.placed_at };
        inserts.push((&order.request, checkout_id, draft.clone(), placed));
    }
    insert_many(
        conn,
        "INSERT INTO checkouts (checkout_id, channel, buyer_id, payment_method, total_idr, orders_count, created_at_ms)",
        7,
        checkouts,
        "",
    )
    .await?;
    let records = insert_orders(conn, ctx, inserts).await?;
    for ((_, order, _), record) in new.iter().zip(&records) {
        ids.push((IdKind::Order, order.social_order_id.clone(), record.id.to_string()));
    }
    crate::social::insert_ids_once(conn, merchant_id, ids).await?;
    for ((index, order, _), mut record) in new.into_iter().zip(records) {
        // In flight: the buyer's money moves with the order, into the core's escrow.
        if matches!(order.status, OrderStatus::Paid | OrderStatus::Shipped | OrderStatus::Delivered) {
            crate::orders::hold(conn, ctx, &mut record).await?;
        }
        outcomes[index] = Some(Imported::Inserted);
    }
    for (index, order) in again {
        let mapped =
            lookup(conn, IdKind::Order, "social_id", std::slice::from_ref(&order.social_order_id)).await?;
        outcomes[index] = Some(match mapped.first() {
            Some(mapping) => advance_mapped(conn, ctx, mapping, order.status).await?,
            // Its first version was refused: so is this one, for its own reason.
            None => match draft_of(merchant_id, &order)? {
                Err(reason) => Imported::Refused(reason),
                Ok(_) => Imported::Refused(
                    "an earlier version of this order in the same batch was refused".to_owned(),
                ),
            },
        });
    }
    Ok(outcomes.into_iter().map(|o| o.expect("every order has its outcome")).collect())
}

/// Moves the core order an id-map row points at forward to `to`.
async fn advance_mapped(
    conn: &mut dyn Conn,
    ctx: &WriteCtx,
    mapping: &IdMapping,
    to: OrderStatus,
) -> Result<Imported, StoreError> {
    let id = jembatan_domain::OrderId::parse(&mapping.core_id).map_err(|_| {
        StoreError::Conflict(format!("the id map holds `{}`, not an order id", mapping.core_id))
    })?;
    let existing =
        load_order(conn, id, true).await?.ok_or_else(|| StoreError::not_found("order", &mapping.core_id))?;
    advance(conn, ctx, existing, to).await
}

/// The core order a legacy order new to the core becomes, or why the core cannot take it.
fn draft_of(
    merchant_id: MerchantId,
    order: &ImportedOrder,
) -> Result<Result<OrderDraft, String>, StoreError> {
    if order.request.payment_method == PaymentMethod::CashOnDelivery
        && matches!(order.status, OrderStatus::Paid | OrderStatus::Shipped | OrderStatus::Delivered)
    {
        return Ok(Err(
            "cash on delivery in flight: the legacy courier collects its money, which the core cannot hold yet".to_owned(),
        ));
    }
    if order.status == OrderStatus::AwaitingPayment {
        return Ok(Err(
            "an unpaid order moves with its core payment (the gateway opens it), not as history".to_owned()
        ));
    }
    let drafts = match plan_orders(&order.request, &order.priced) {
        Ok(drafts) => drafts,
        Err(error) => return Ok(Err(error.to_string())),
    };
    let [draft] = <[_; 1]>::try_from(drafts)
        .map_err(|_| StoreError::Conflict("an imported order belongs to one merchant".to_owned()))?;
    if draft.merchant_id != merchant_id {
        return Err(StoreError::Conflict(format!(
            "order {} is not merchant {merchant_id}'s",
            order.social_order_id
        )));
    }
    Ok(Ok(draft))
}

/// Moves an imported order forward to `to` along the core's transitions.
async fn advance(
    conn: &mut dyn Conn,
    ctx: &WriteCtx,
    existing: OrderRecord,
    to: OrderStatus,
) -> Result<Imported, StoreError> {
    let has_payment = !q("SELECT 1 AS one FROM payments WHERE checkout_id = $1")
        .bind(existing.checkout_id.to_string())
        .fetch_all(&mut *conn)
        .await?
        .is_empty();
    if has_payment {
        return Ok(Imported::Twin);
    }
    let from = existing.status;
    let Some(steps) = path(from, to) else {
        return Ok(Imported::Refused(format!(
            "the legacy order went from {} to {}, which the core has no transition for",
            from.as_str(),
            to.as_str()
        )));
    };
    if steps.is_empty() {
        return Ok(Imported::Unchanged);
    }
    let mut order = existing;
    for step in steps {
        order = transition_loaded(conn, ctx.clone(), order, step).await.map_err(|e| match e {
            StoreError::Domain(DomainError::IllegalTransition { .. }) => {
                StoreError::Conflict(format!("imported order cannot {}: {e}", step.as_str()))
            }
            other => other,
        })?;
    }
    Ok(Imported::Advanced(from, to))
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn the_core_follows_a_legacy_order_forward_only() {
        use OrderAction as A;
        use OrderStatus as S;
        assert_eq!(path(S::Paid, S::Completed), Some(vec![A::Ship, A::Deliver, A::Confirm]));
        assert_eq!(path(S::Shipped, S::Delivered), Some(vec![A::Deliver]));
        assert_eq!(path(S::Paid, S::Paid), Some(vec![]));
        assert_eq!(path(S::Paid, S::Cancelled), Some(vec![A::Cancel]));
        assert_eq!(path(S::Completed, S::Shipped), None, "never backwards");
        assert_eq!(path(S::Cancelled, S::Paid), None);
        assert_eq!(path(S::Completed, S::Cancelled), None);
    }
}
