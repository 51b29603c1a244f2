//! Payments of checkouts, provider callbacks, expiry of unpaid checkouts, automatic
//! confirmation after delivery, and refunds — each one unit with its ledger transfers, outbox
//! event and audit entry.
//!
//! [`complete_payment_unit`] is the one path by which a payment becomes paid, whoever reports it
//! (a provider's signed callback, the provider simulator, a test). It records every callback it
//! is given — applied, repeated, or refused with its reason — in `payment_callbacks`.

use jembatan_domain::ledger::{
    AccountKind, NewTransfer, Purpose, TransferKind, entity_transfer_id, merchant_balance_account,
    order_transfer_id, platform_account,
};
use jembatan_domain::payment::split_refund;
use jembatan_domain::{
    CallbackId, Channel, CheckoutId, DomainError, MerchantId, Money, OrderAction, OrderId, OrderStatus,
    PaymentId, PaymentInstructions, PaymentMethod, PaymentStatus, RefundId, Timestamp, TypedId,
};

use crate::db::{Conn, Row, q};
use crate::error::StoreError;
use crate::exec::{Idem, Store, WriteCtx};
use crate::journal::{self, Change};
use crate::orders::{OrderRecord, load_checkout_orders, load_order, transition_loaded};
use crate::{new_id, rows};

#[derive(Debug, Clone, PartialEq, Eq)]
pub struct PaymentRecord {
    pub id: PaymentId,
    pub checkout_id: CheckoutId,
    pub method: PaymentMethod,
    pub amount: Money,
    pub status: PaymentStatus,
    pub provider: String,
    pub instructions: PaymentInstructions,
    /// `None`: never expires (cash on delivery).
    pub expires_at: Option<Timestamp>,
    pub paid_at: Option<Timestamp>,
    pub created_at: Timestamp,
}

/// Issues what the buyer needs to pay, once the checkout's amount is known (inside its unit, so
/// it must not block: a gateway that needs a network call creates the payment after commit).
pub type Instruct = Box<dyn FnOnce(PaymentId, Money) -> Result<PaymentInstructions, DomainError> + Send>;

/// The payment a checkout opens.
pub struct NewPayment {
    pub provider: String,
    /// Unpaid after this long, the checkout expires (ignored for cash on delivery).
    pub ttl_ms: i64,
    pub instruct: Instruct,
}

/// A provider's report that a payment was paid, after its signature was verified.
#[derive(Debug, Clone)]
pub struct PaymentNotice {
    pub provider: String,
    pub payment_id: Option<PaymentId>,
    pub provider_ref: Option<String>,
    pub amount: Option<Money>,
    /// The body as received, kept with the record of the callback.
    pub body: String,
}

/// What a callback did.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum CallbackOutcome {
    /// The payment became paid now.
    Applied,
    /// It was paid before; nothing changed.
    AlreadyApplied,
    /// No such payment.
    RefusedUnknown,
    /// The amount is not the payment's.
    RefusedAmount,
    /// The payment expired before the callback; its orders are cancelled. The money must go
    /// back to the buyer (the settlement report's reconciliation lists it).
    RefusedExpired,
    /// Signature missing or wrong.
    RefusedSignature,
    /// Timestamp outside the tolerance.
    RefusedTimestamp,
    /// The body does not parse.
    RefusedMalformed,
}

impl CallbackOutcome {
    pub fn as_str(self) -> &'static str {
        match self {
            CallbackOutcome::Applied => "applied",
            CallbackOutcome::AlreadyApplied => "already_applied",
            CallbackOutcome::RefusedUnknown => "refused_unknown_payment",
            CallbackOutcome::RefusedAmount => "refused_wrong_amount",
            CallbackOutcome::RefusedExpired => "refused_expired_payment",
            CallbackOutcome::RefusedSignature => "refused_signature",
            CallbackOutcome::RefusedTimestamp => "refused_timestamp",
            CallbackOutcome::RefusedMalformed => "refused_malformed",
        }
    }

    pub fn changed_nothing(self) -> bool {
        self != CallbackOutcome::Applied
    }
}

#[derive(Debug, Clone)]
pub struct CallbackResult {
    pub callback_id: CallbackId,
    pub outcome: CallbackOutcome,
    pub detail: String,
    pub payment: Option<PaymentRecord>,
}

#[derive(Debug, Clone, PartialEq, Eq)]
pub struct RefundRecord {
    pub id: RefundId,
    pub order_id: OrderId,
    pub merchant_id: MerchantId,
    pub amount: Money,
    pub fee_reversed: Money,
    /// `before_release` (paid from escrow) or `after_release` (from the merchant's balance).
    pub stage: &'static str,
    pub reason: String,
    pub created_at: Timestamp,
}

const PAYMENT_COLUMNS: &str = "payment_id, checkout_id, method, amount_idr, status, provider, provider_ref, bank_code, va_number, \
     qris_payload, ewallet_ref, redirect_url, expires_at_ms, paid_at_ms, created_at_ms";

impl Store {
    pub async fn payment(&self, id: PaymentId) -> Result<Option<PaymentRecord>, StoreError> {
        self.read(move |conn| Box::pin(load_payment(conn, id, false))).await
    }

    /// The payment of a checkout (a checkout has at most one).
    pub async fn payment_of_checkout(
        &self,
        checkout_id: CheckoutId,
    ) -> Result<Option<PaymentRecord>, StoreError> {
        self.read(move |conn| Box::pin(load_payment_of_checkout(conn, checkout_id))).await
    }

    /// A payment with the channel of its checkout (who may read it), in one query.
    pub async fn payment_with_channel(
        &self,
        id: PaymentId,
    ) -> Result<Option<(PaymentRecord, Channel)>, StoreError> {
        self.read(move |conn| {
            Box::pin(async move {
                let columns = PAYMENT_COLUMNS.split(", ").map(|c| format!("p.{c}")).collect::<Vec<_>>().join(", ");
                let sql = format!(
                    "SELECT {columns}, c.channel FROM payments p JOIN checkouts c ON c.checkout_id = p.checkout_id
                     WHERE p.payment_id = $1"
                );
                let Some(row) = q(sql).bind(id.to_string()).fetch_optional(conn).await? else { return Ok(None) };
                let channel = rows::parsed("channel", Channel::parse(&rows::text(&row, "channel")?))?;
                Ok(Some((decode_payment(&row)?, channel)))
            })
        })
        .await
    }

    /// Applies a verified provider notice (see the module documentation); records it whatever
    /// the outcome.
    pub async fn complete_payment(
        &self,
        ctx: WriteCtx,
        notice: PaymentNotice,
    ) -> Result<CallbackResult, StoreError> {
        self.write(None, move |conn| Box::pin(complete_payment_unit(conn, ctx, notice))).await
    }

    /// Records a callback refused before it could be matched to a payment (bad signature, stale
    /// timestamp, unparseable body).
    pub async fn record_refused_callback(
        &self,
        ctx: WriteCtx,
        provider: String,
        outcome: CallbackOutcome,
        detail: String,
        body: String,
    ) -> Result<CallbackId, StoreError> {
        self.write(None, move |conn| {
            Box::pin(async move {
                let notice =
                    PaymentNotice { provider, payment_id: None, provider_ref: None, amount: None, body };
                record_callback(conn, &ctx, &notice, None, outcome, &detail).await
            })
        })
        .await
    }

    /// The callbacks received for a payment, oldest first.
    pub async fn payment_callbacks(
        &self,
        id: PaymentId,
    ) -> Result<Vec<(CallbackId, String, String, Timestamp)>, StoreError> {
        self.read(move |conn| {
            Box::pin(async move {
                let rows = q("SELECT callback_id, outcome, detail, received_at_ms FROM payment_callbacks
                     WHERE payment_id = $1 ORDER BY callback_id")
                .bind(id.to_string())
                .fetch_all(conn)
                .await?;
                rows.iter()
                    .map(|r| {
                        Ok((
                            rows::id(r, "callback_id")?,
                            rows::text(r, "outcome")?,
                            rows::text(r, "detail")?,
                            Timestamp::from_unix_ms(rows::int(r, "received_at_ms")?),
                        ))
                    })
                    .collect()
            })
        })
        .await
    }

    /// Pending payments whose time ran out by `now` (at most `limit`).
    pub async fn expired_payments(&self, now: Timestamp, limit: i64) -> Result<Vec<PaymentId>, StoreError> {
        self.read(move |conn| {
            Box::pin(async move {
                let rows = q("SELECT payment_id FROM payments
                     WHERE status = 'pending' AND expires_at_ms > 0 AND expires_at_ms <= $1
                     ORDER BY expires_at_ms LIMIT $2")
                .bind(now.unix_ms())
                .bind(limit)
                .fetch_all(conn)
                .await?;
                rows.iter().map(|r| rows::id(r, "payment_id")).collect()
            })
        })
        .await
    }

    /// Expires an unpaid payment: its orders still awaiting payment are cancelled and their
    /// stock released. Returns false if it was paid or expired meanwhile.
    pub async fn expire_payment(&self, ctx: WriteCtx, id: PaymentId) -> Result<bool, StoreError> {
        self.write(None, move |conn| Box::pin(expire_payment_unit(conn, ctx, id))).await
    }

    /// Delivered orders whose auto-confirm period ended by `delivered_before`.
    pub async fn orders_due_for_auto_confirm(
        &self,
        delivered_before: Timestamp,
        limit: i64,
    ) -> Result<Vec<OrderId>, StoreError> {
        self.read(move |conn| {
            Box::pin(async move {
                let rows = q("SELECT order_id FROM orders
                     WHERE status = 'delivered' AND delivered_at_ms <= $1
                     ORDER BY delivered_at_ms LIMIT $2")
                .bind(delivered_before.unix_ms())
                .bind(limit)
                .fetch_all(conn)
                .await?;
                rows.iter().map(|r| rows::id(r, "order_id")).collect()
            })
        })
        .await
    }

    /// Refunds `amount` of an order to its buyer: from escrow before release, from the
    /// merchant's balance (and the fee revenue's share) after it.
    pub async fn refund(
        &self,
        ctx: WriteCtx,
        order_id: OrderId,
        amount: Money,
        reason: String,
        idem: Option<Idem<RefundRecord>>,
    ) -> Result<RefundRecord, StoreError> {
        self.write(idem, move |conn| {
            Box::pin(async move {
                let order = load_order(conn, order_id, true)
                    .await?
                    .ok_or_else(|| StoreError::not_found("order", order_id))?;
                refund_unit(conn, &ctx, &order, amount, &reason).await
            })
        })
        .await
    }

    pub async fn refunds_of_order(&self, order: &OrderRecord) -> Result<Vec<RefundRecord>, StoreError> {
        let (merchant_id, order_id) = (order.merchant_id, order.id);
        self.read(move |conn| {
            Box::pin(async move {
                let rows = q("SELECT refund_id, order_id, merchant_id, amount_idr, fee_reversed_idr, stage, reason, created_at_ms
                     FROM refunds WHERE merchant_id = $1 AND order_id = $2 ORDER BY refund_id")
                .bind(merchant_id.to_string())
                .bind(order_id.to_string())
                .fetch_all(conn)
                .await?;
                rows.iter().map(decode_refund).collect()
            })
        })
        .await
    }
}

/// Writes the payment of a new checkout (inside the checkout's unit).
pub(crate) async fn insert_payment(
    conn: &mut dyn Conn,
    ctx: &WriteCtx,
    checkout_id: CheckoutId,
    method: PaymentMethod,
    amount: Money,
    new: NewPayment,
) -> Result<PaymentRecord, StoreError> {
    let id: PaymentId = new_id();
    let instructions = (new.instruct)(id, amount)?;
    let expires_at = (method != PaymentMethod::CashOnDelivery).then(|| ctx.now.plus_ms(new.ttl_ms));
    q(
        "INSERT INTO payments (payment_id, checkout_id, method, amount_idr, status, provider, provider_ref, bank_code,
             va_number, qris_payload, ewallet_ref, redirect_url, expires_at_ms, created_at_ms, updated_at_ms)
         VALUES ($1, $2, $3, $4, 'pending', $5, $6, $7, $8, $9, $10, $11, $12, $13, $13)",
    )
    .bind(id.to_string())
    .bind(checkout_id.to_string())
    .bind(method.as_str())
    .bind(amount.rupiah())
    .bind(&new.provider)
    .bind(&instructions.provider_ref)
    .bind(instructions.bank_code.clone())
    .bind(instructions.va_number.clone())
    .bind(instructions.qris_payload.clone())
    .bind(instructions.ewallet_ref.clone())
    .bind(instructions.redirect_url.clone())
    .bind(expires_at.map_or(0, |t| t.unix_ms()))
    .bind(ctx.now.unix_ms())
    .execute(&mut *conn)
    .await?;
    Ok(PaymentRecord {
        id,
        checkout_id,
        method,
        amount,
        status: PaymentStatus::Pending,
        provider: new.provider,
        instructions,
        expires_at,
        paid_at: None,
        created_at: ctx.now,
    })
}

pub(crate) async fn load_payment(
    conn: &mut dyn Conn,
    id: PaymentId,
    for_update: bool,
) -> Result<Option<PaymentRecord>, StoreError> {
    let lock = crate::db::lock_clause(conn, for_update);
    let sql = format!("SELECT {PAYMENT_COLUMNS} FROM payments WHERE payment_id = $1{lock}");
    let row = q(sql).bind(id.to_string()).fetch_optional(conn).await?;
    row.as_ref().map(decode_payment).transpose()
}

pub(crate) async fn load_payment_of_checkout(
    conn: &mut dyn Conn,
    checkout_id: CheckoutId,
) -> Result<Option<PaymentRecord>, StoreError> {
    let sql = format!("SELECT {PAYMENT_COLUMNS} FROM payments WHERE checkout_id = $1");
    let row = q(sql).bind(checkout_id.to_string()).fetch_optional(conn).await?;
    row.as_ref().map(decode_payment).transpose()
}

async fn load_payment_by_ref(
    conn: &mut dyn Conn,
    provider_ref: &str,
) -> Result<Option<PaymentRecord>, StoreError> {
    let lock = crate::db::lock_clause(conn, true);
    let sql = format!("SELECT {PAYMENT_COLUMNS} FROM payments WHERE provider_ref = $1{lock}");
    let row = q(sql).bind(provider_ref).fetch_optional(conn).await?;
    row.as_ref().map(decode_payment).transpose()
}

fn decode_payment(row: &Row) -> Result<PaymentRecord, StoreError> {
    let expires = rows::int(row, "expires_at_ms")?;
    Ok(PaymentRecord {
        id: rows::id(row, "payment_id")?,
        checkout_id: rows::id(row, "checkout_id")?,
        method: rows::parsed("method", PaymentMethod::parse(&rows::text(row, "method")?))?,
        amount: rows::parsed("amount_idr", Money::from_rupiah(rows::int(row, "amount_idr")?))?,
        status: rows::parsed("status", PaymentStatus::parse(&rows::text(row, "status")?))?,
        provider: rows::text(row, "provider")?,
        instructions: PaymentInstructions {
            provider_ref: rows::text(row, "provider_ref")?,
            bank_code: row.opt_text("bank_code")?,
            va_number: row.opt_text("va_number")?,
            qris_payload: row.opt_text("qris_payload")?,
            ewallet_ref: row.opt_text("ewallet_ref")?,
            redirect_url: row.opt_text("redirect_url")?,
        },
        expires_at: (expires > 0).then(|| Timestamp::from_unix_ms(expires)),
        paid_at: row.opt_int("paid_at_ms")?.map(Timestamp::from_unix_ms),
        created_at: Timestamp::from_unix_ms(rows::int(row, "created_at_ms")?),
    })
}

async fn record_callback(
    conn: &mut dyn Conn,
    ctx: &WriteCtx,
    notice: &PaymentNotice,
    payment: Option<&PaymentRecord>,
    outcome: CallbackOutcome,
    detail: &str,
) -> Result<CallbackId, StoreError> {
    let id: CallbackId = new_id();
    q("INSERT INTO payment_callbacks (callback_id, received_at_ms, provider, payment_id, provider_ref, amount_idr, outcome, detail, body)
         VALUES ($1, $2, $3, $4, $5, $6, $7, $8, $9)")
    .bind(id.to_string())
    .bind(ctx.now.unix_ms())
    .bind(&notice.provider)
    .bind(payment.map(|p| p.id.to_string()).or_else(|| notice.payment_id.map(|p| p.to_string())))
    .bind(notice.provider_ref.clone())
    .bind(notice.amount.map(|a| a.rupiah()))
    .bind(outcome.as_str())
    .bind(detail)
    .bind(&notice.body)
    .execute(&mut *conn)
    .await?;
    journal::record(
        conn,
        ctx,
        Change {
            event_type: if outcome == CallbackOutcome::Applied {
                "payment.callback_applied"
            } else {
                "payment.callback_refused"
            },
            action: "payment.callback",
            entity_type: "payment_callback",
            entity_id: id.to_string(),
            merchant_id: None,
            channel: None,
            payload: serde_json::json!({
                "callback_id": id.to_string(),
                "payment_id": payment.map(|p| p.id.to_string()),
                "outcome": outcome.as_str(),
                "detail": detail,
            }),
        },
    )
    .await?;
    Ok(id)
}

pub(crate) async fn complete_payment_unit(
    conn: &mut dyn Conn,
    ctx: WriteCtx,
    notice: PaymentNotice,
) -> Result<CallbackResult, StoreError> {
    let payment = match (&notice.payment_id, &notice.provider_ref) {
        (Some(id), _) => load_payment(conn, *id, true).await?,
        (None, Some(reference)) => load_payment_by_ref(conn, reference).await?,
        (None, None) => None,
    };
    let refuse = |outcome: CallbackOutcome, detail: String| (outcome, detail);
    let decision = match &payment {
        None => {
            Some(refuse(CallbackOutcome::RefusedUnknown, "no payment has this id or reference".to_owned()))
        }
        Some(p) if p.provider != notice.provider => Some(refuse(
            CallbackOutcome::RefusedUnknown,
            format!("payment {} is not one of provider {}", p.id, notice.provider),
        )),
        Some(p) if notice.provider_ref.as_deref().is_some_and(|r| r != p.instructions.provider_ref) => Some(
            refuse(CallbackOutcome::RefusedUnknown, format!("the reference does not match payment {}", p.id)),
        ),
        Some(p) if p.status == PaymentStatus::Paid => Some(refuse(
            CallbackOutcome::AlreadyApplied,
            format!("payment {} was already paid; nothing changed", p.id),
        )),
        Some(p) if p.status == PaymentStatus::Expired => Some(refuse(
            CallbackOutcome::RefusedExpired,
            format!("payment {} expired before it was paid; its orders were cancelled", p.id),
        )),
        Some(_) => None,
    };
    if let Some((outcome, detail)) = decision {
        let callback_id = record_callback(conn, &ctx, &notice, payment.as_ref(), outcome, &detail).await?;
        return Ok(CallbackResult { callback_id, outcome, detail, payment });
    }
    let mut payment = payment.expect("decided above");
    let mut orders = load_checkout_orders(conn, payment.checkout_id, true).await?;
    // What is due: all of it before payment; for cash on delivery, the orders not cancelled
    // (the courier collects only what was delivered).
    let due = amount_due(&payment, &orders)?;
    if notice.amount != Some(due) {
        let detail = format!(
            "amount {} is not the {due} due for payment {}",
            notice.amount.map_or("missing".to_owned(), |a| a.to_string()),
            payment.id
        );
        let outcome = CallbackOutcome::RefusedAmount;
        let callback_id = record_callback(conn, &ctx, &notice, Some(&payment), outcome, &detail).await?;
        return Ok(CallbackResult { callback_id, outcome, detail, payment: Some(payment) });
    }
    let moved =
        q("UPDATE payments SET status = 'paid', paid_at_ms = $2, updated_at_ms = $2, collected_idr = $3
         WHERE payment_id = $1 AND status = 'pending'")
        .bind(payment.id.to_string())
        .bind(ctx.now.unix_ms())
        .bind(due.rupiah())
        .execute(&mut *conn)
        .await?;
    if moved != 1 {
        return Err(StoreError::Conflict(format!(
            "payment {} changed while being completed; retry",
            payment.id
        )));
    }
    payment.status = PaymentStatus::Paid;
    payment.paid_at = Some(ctx.now);
    let mut unallocated = Money::ZERO;
    for order in &mut orders {
        match (payment.method, order.status) {
            (PaymentMethod::CashOnDelivery, OrderStatus::Cancelled) => {}
            // Cash on delivery: the orders were accepted at checkout; the money now enters escrow.
            (PaymentMethod::CashOnDelivery, _) => hold_cod(conn, &ctx, order).await?,
            (_, OrderStatus::AwaitingPayment) => {
                *order = transition_loaded(conn, ctx.clone(), order.clone(), OrderAction::Pay).await?;
            }
            // Cancelled before the money came: that part goes straight back to the buyer, as a
            // refund the provider carries out and the settlement report lists.
            (_, _) => {
                let total = order.total;
                refund_with(
                    conn,
                    &ctx,
                    order,
                    total,
                    "order cancelled before its payment arrived",
                    Source::Unheld,
                )
                .await?;
                unallocated = unallocated.checked_add(total)?;
            }
        }
    }
    let detail = if unallocated > Money::ZERO {
        format!("paid; {unallocated} of orders cancelled before payment is refunded to the buyer")
    } else {
        "paid".to_owned()
    };
    journal::record(
        conn,
        &ctx,
        Change {
            event_type: "payment.paid",
            action: "payment.complete",
            entity_type: "payment",
            entity_id: payment.id.to_string(),
            merchant_id: None,
            // The checkout's channel hears of its payment (merchants hear of their orders).
            channel: orders.first().map(|o| o.channel),
            payload: serde_json::json!({
                "payment_id": payment.id.to_string(),
                "checkout_id": payment.checkout_id.to_string(),
                "amount": due.rupiah(),
                "returned": unallocated.rupiah(),
            }),
        },
    )
    .await?;
    let outcome = CallbackOutcome::Applied;
    let callback_id = record_callback(conn, &ctx, &notice, Some(&payment), outcome, &detail).await?;
    Ok(CallbackResult { callback_id, outcome, detail, payment: Some(payment) })
}

/// What the buyer owes on a payment: all of it when paid in advance; for cash on delivery, the
/// orders not cancelled (the courier collects only what it delivers).
pub fn amount_due(payment: &PaymentRecord, orders: &[OrderRecord]) -> Result<Money, DomainError> {
    if payment.method != PaymentMethod::CashOnDelivery {
        return Ok(payment.amount);
    }
    let mut due = Money::ZERO;
    for order in orders.iter().filter(|o| o.status != OrderStatus::Cancelled) {
        due = due.checked_add(order.total)?;
    }
    Ok(due)
}

/// Cash on delivery: the courier's remittance puts an accepted order's money in escrow.
async fn hold_cod(conn: &mut dyn Conn, ctx: &WriteCtx, order: &mut OrderRecord) -> Result<(), StoreError> {
    if order.held > Money::ZERO {
        return Ok(());
    }
    crate::orders::hold(conn, ctx, order).await
}

/// Writes an order's escrow cache (`held_idr`, `refunded_idr`).
pub(crate) async fn set_held(
    conn: &mut dyn Conn,
    order: &mut OrderRecord,
    held: Money,
    refunded: Money,
) -> Result<(), StoreError> {
    q("UPDATE orders SET held_idr = $3, refunded_idr = $4 WHERE merchant_id = $1 AND order_id = $2")
        .bind(order.merchant_id.to_string())
        .bind(order.id.to_string())
        .bind(held.rupiah())
        .bind(refunded.rupiah())
        .execute(&mut *conn)
        .await?;
    order.held = held;
    order.refunded = refunded;
    Ok(())
}

async fn expire_payment_unit(conn: &mut dyn Conn, ctx: WriteCtx, id: PaymentId) -> Result<bool, StoreError> {
    let moved = q("UPDATE payments SET status = 'expired', updated_at_ms = $2
         WHERE payment_id = $1 AND status = 'pending' AND expires_at_ms > 0 AND expires_at_ms <= $2")
    .bind(id.to_string())
    .bind(ctx.now.unix_ms())
    .execute(&mut *conn)
    .await?;
    if moved != 1 {
        return Ok(false);
    }
    let payment = load_payment(conn, id, true).await?.ok_or_else(|| StoreError::not_found("payment", id))?;
    let orders = load_checkout_orders(conn, payment.checkout_id, true).await?;
    let channel = orders.first().map(|o| o.channel);
    for order in orders.into_iter().filter(|o| o.status == OrderStatus::AwaitingPayment) {
        transition_loaded(conn, ctx.clone(), order, OrderAction::Cancel).await?;
    }
    journal::record(
        conn,
        &ctx,
        Change {
            event_type: "payment.expired",
            action: "payment.expire",
            entity_type: "payment",
            entity_id: id.to_string(),
            merchant_id: None,
            channel,
            payload: serde_json::json!({"payment_id": id.to_string(), "checkout_id": payment.checkout_id.to_string()}),
        },
    )
    .await?;
    Ok(true)
}

/// Where the money of a refund is.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub(crate) enum Source {
    /// Held in escrow (before release).
    Held,
    /// Released to the merchant's balance and the fee revenue.
    Released,
    /// Received for an order cancelled before its payment arrived: never held.
    Unheld,
}

/// A refund of an order loaded in this unit (see [`Store::refund`]): from escrow before
/// release, from the merchant's balance after it.
pub(crate) async fn refund_unit(
    conn: &mut dyn Conn,
    ctx: &WriteCtx,
    order: &OrderRecord,
    amount: Money,
    reason: &str,
) -> Result<RefundRecord, StoreError> {
    // A completed order was released (confirmation waits for cash on delivery's remittance,
    // and a fully refunded order has nothing left to refund).
    let source = if order.status == OrderStatus::Completed { Source::Released } else { Source::Held };
    if source == Source::Held && order.held == Money::ZERO {
        return Err(DomainError::invalid(
            "order_id",
            format!(
                "order {} holds no money to refund (it is {} and its payment has not arrived)",
                order.id, order.status
            ),
        )
        .into());
    }
    let mut order = order.clone();
    refund_with(conn, ctx, &mut order, amount, reason, source).await
}

pub(crate) async fn refund_with(
    conn: &mut dyn Conn,
    ctx: &WriteCtx,
    order: &mut OrderRecord,
    amount: Money,
    reason: &str,
    source: Source,
) -> Result<RefundRecord, StoreError> {
    let released = source == Source::Released;
    let split = split_refund(order.total, order.fee, order.refunded, amount)?;
    let refund_id: RefundId = new_id();
    let transfer = |purpose: Purpose, debit, credit, amount: Money, kind| NewTransfer {
        id: entity_transfer_id(refund_id.uuid(), purpose),
        debit,
        credit,
        amount,
        kind,
        linked: true,
        code: purpose as u16,
    };
    let escrow = platform_account(AccountKind::Escrow);
    let refunds = platform_account(AccountKind::Refunds);
    let provider = platform_account(AccountKind::ProviderClearing);
    let mut batch = Vec::new();
    if released {
        if split.from_merchant > Money::ZERO {
            let merchant = merchant_balance_account(order.merchant_id);
            batch.push(transfer(
                Purpose::RefundFromMerchant,
                merchant,
                refunds,
                split.from_merchant,
                TransferKind::Single,
            ));
        }
        if split.fee_reversed > Money::ZERO {
            let fees = platform_account(AccountKind::PlatformFeeRevenue);
            batch.push(transfer(
                Purpose::RefundFeeReversal,
                fees,
                refunds,
                split.fee_reversed,
                TransferKind::Single,
            ));
        }
    } else if source == Source::Unheld {
        batch.push(transfer(Purpose::RefundReceived, provider, escrow, amount, TransferKind::Single));
        batch.push(transfer(Purpose::RefundFromEscrow, escrow, refunds, amount, TransferKind::Single));
    } else {
        if order.refunded == Money::ZERO {
            // The first refund before release posts the hold: escrow then holds posted money
            // it can pay back from, and the release later pays out what is left.
            let hold = order_transfer_id(order.id, Purpose::EscrowHold);
            batch.push(NewTransfer {
                id: order_transfer_id(order.id, Purpose::EscrowPost),
                debit: provider,
                credit: escrow,
                amount: order.total,
                kind: TransferKind::Post { pending: hold, amount: None },
                linked: true,
                code: Purpose::EscrowPost as u16,
            });
        }
        batch.push(transfer(Purpose::RefundFromEscrow, escrow, refunds, amount, TransferKind::Single));
    }
    batch.push(NewTransfer {
        linked: false,
        ..transfer(Purpose::RefundToBuyer, refunds, provider, amount, TransferKind::Single)
    });
    // A refund after release that the merchant's balance cannot fund is refused
    // (insufficient-balance), with nothing written.
    crate::ledger::apply_all(conn, ctx, batch).await?;
    let refunded = order.refunded.checked_add(amount)?;
    let held = if source == Source::Held { order.held.checked_sub(amount)? } else { Money::ZERO };
    set_held(conn, order, held, refunded).await?;
    let stage = if released { "after_release" } else { "before_release" };
    q("INSERT INTO refunds (merchant_id, refund_id, order_id, amount_idr, fee_reversed_idr, stage, reason, created_at_ms)
         VALUES ($1, $2, $3, $4, $5, $6, $7, $8)")
    .bind(order.merchant_id.to_string())
    .bind(refund_id.to_string())
    .bind(order.id.to_string())
    .bind(amount.rupiah())
    .bind(if released { split.fee_reversed.rupiah() } else { 0 })
    .bind(stage)
    .bind(reason)
    .bind(ctx.now.unix_ms())
    .execute(&mut *conn)
    .await?;
    journal::record(
        conn,
        ctx,
        Change {
            event_type: "refund.created",
            action: "refund.create",
            entity_type: "refund",
            entity_id: refund_id.to_string(),
            merchant_id: Some(order.merchant_id),
            channel: Some(order.channel),
            payload: serde_json::json!({
                "refund_id": refund_id.to_string(),
                "order_id": order.id.to_string(),
                "merchant_id": order.merchant_id.to_string(),
                "amount": amount.rupiah(),
                "stage": stage,
                "refunded_total": refunded.rupiah(),
            }),
        },
    )
    .await?;
    Ok(RefundRecord {
        id: refund_id,
        order_id: order.id,
        merchant_id: order.merchant_id,
        amount,
        fee_reversed: if released { split.fee_reversed } else { Money::ZERO },
        stage,
        reason: reason.to_owned(),
        created_at: ctx.now,
    })
}

fn decode_refund(row: &Row) -> Result<RefundRecord, StoreError> {
    let money = |column: &str| rows::parsed(column, Money::from_rupiah(rows::int(row, column)?));
    Ok(RefundRecord {
        id: rows::id(row, "refund_id")?,
        order_id: rows::id(row, "order_id")?,
        merchant_id: rows::id(row, "merchant_id")?,
        amount: money("amount_idr")?,
        fee_reversed: money("fee_reversed_idr")?,
        stage: if rows::text(row, "stage")? == "after_release" { "after_release" } else { "before_release" },
        reason: rows::text(row, "reason")?,
        created_at: Timestamp::from_unix_ms(rows::int(row, "created_at_ms")?),
    })
}
