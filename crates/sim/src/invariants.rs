//! The invariant checker of DESIGN.md §8, run by crash tests after a restart and by
//! `jembatan check`. Each check is one SQL query that returns the rows breaking the rule, so
//! the same checks work on SQLite and PostgreSQL and scale with the data.

use jembatan_domain::ledger::{AccountKind, platform_account};
use jembatan_store::{Store, StoreError, q};

/// One broken rule, with the offending entity.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Violation {
    pub invariant: &'static str,
    pub detail: String,
}

/// (invariant, query returning one `detail` text column per violation).
const CHECKS: &[(&str, &str)] = &[
    (
        "5: stock on hand >= 0 and reserved <= on hand",
        "SELECT sku_id AS detail FROM skus WHERE stock_on_hand < 0 OR stock_reserved < 0 OR stock_reserved > stock_on_hand",
    ),
    (
        "5: reserved stock equals the units of open orders",
        "SELECT s.sku_id AS detail FROM skus s
         LEFT JOIN (SELECT l.merchant_id, l.sku_id, CAST(SUM(l.quantity) AS BIGINT) AS units
                    FROM order_lines l JOIN orders o ON o.merchant_id = l.merchant_id AND o.order_id = l.order_id
                    WHERE o.status IN ('awaiting_payment', 'paid') AND o.origin = 'core'
                    GROUP BY l.merchant_id, l.sku_id) open_units
           ON open_units.merchant_id = s.merchant_id AND open_units.sku_id = s.sku_id
         WHERE s.stock_reserved <> COALESCE(open_units.units, 0)",
    ),
    (
        "social: every legacy-origin order is the twin of one social order",
        "SELECT o.order_id AS detail FROM orders o
         LEFT JOIN social_ids s ON s.kind = 'order' AND s.core_id = o.order_id
         WHERE o.origin = 'legacy' AND s.social_id IS NULL",
    ),
    (
        "social: the id map points at orders that exist, of the shop's merchant",
        "SELECT s.social_id AS detail FROM social_ids s
         LEFT JOIN orders o ON o.order_id = s.core_id AND o.merchant_id = s.merchant_id
         WHERE s.kind = 'order' AND o.order_id IS NULL",
    ),
    (
        "money: an order's total is the sum of its lines",
        "SELECT o.order_id AS detail FROM orders o
         LEFT JOIN (SELECT merchant_id, order_id, CAST(SUM(line_total_idr) AS BIGINT) AS total, COUNT(*) AS lines
                    FROM order_lines GROUP BY merchant_id, order_id) l
           ON l.merchant_id = o.merchant_id AND l.order_id = o.order_id
         WHERE l.lines IS NULL OR l.total <> o.total_idr",
    ),
    (
        "money: a checkout's total is the sum of its orders",
        "SELECT c.checkout_id AS detail FROM checkouts c
         LEFT JOIN (SELECT checkout_id, CAST(SUM(total_idr) AS BIGINT) AS total, COUNT(*) AS orders
                    FROM orders GROUP BY checkout_id) o ON o.checkout_id = c.checkout_id
         WHERE o.orders IS NULL OR o.total <> c.total_idr OR o.orders <> c.orders_count",
    ),
    (
        "journal: every state change has its outbox event and its audit entry",
        "SELECT CAST(e.n AS TEXT) || ' events, ' || CAST(a.n AS TEXT) || ' audit entries' AS detail
         FROM (SELECT COUNT(*) AS n FROM outbox) e, (SELECT COUNT(*) AS n FROM audit_log) a WHERE e.n <> a.n",
    ),
    (
        "journal: every order has its order.created (or, moved from the legacy store, order.imported) event",
        "SELECT o.order_id AS detail FROM orders o
         WHERE NOT EXISTS (SELECT 1 FROM outbox e WHERE e.entity_id = o.order_id AND e.event_type IN ('order.created', 'order.imported'))",
    ),
    (
        "1: the ledger balances: total debits equal total credits",
        "SELECT 'debits ' || CAST(d AS TEXT) || ', credits ' || CAST(c AS TEXT) AS detail FROM
           (SELECT CAST(COALESCE(SUM(debits_posted + debits_pending), 0) AS BIGINT) AS d,
                   CAST(COALESCE(SUM(credits_posted + credits_pending), 0) AS BIGINT) AS c FROM ledger_accounts) totals
         WHERE d <> c",
    ),
    (
        "1: every account's balances equal the sum of its transfers",
        "SELECT a.account_id AS detail FROM ledger_accounts a
         WHERE a.debits_posted <> (SELECT CAST(COALESCE(SUM(t.amount_posted_idr), 0) AS BIGINT) FROM ledger_transfers t WHERE t.debit_account_id = a.account_id)
            OR a.credits_posted <> (SELECT CAST(COALESCE(SUM(t.amount_posted_idr), 0) AS BIGINT) FROM ledger_transfers t WHERE t.credit_account_id = a.account_id)
            OR a.debits_pending <> (SELECT CAST(COALESCE(SUM(t.amount_idr), 0) AS BIGINT) FROM ledger_transfers t
                                    JOIN ledger_pending p ON p.transfer_id = t.transfer_id AND p.state = 'pending'
                                    WHERE t.debit_account_id = a.account_id)
            OR a.credits_pending <> (SELECT CAST(COALESCE(SUM(t.amount_idr), 0) AS BIGINT) FROM ledger_transfers t
                                     JOIN ledger_pending p ON p.transfer_id = t.transfer_id AND p.state = 'pending'
                                     WHERE t.credit_account_id = a.account_id)",
    ),
    (
        "1: no account breaks its balance limit",
        "SELECT account_id AS detail FROM ledger_accounts
         WHERE (debits_must_not_exceed_credits <> 0 AND debits_pending + debits_posted > credits_posted)
            OR (credits_must_not_exceed_debits <> 0 AND credits_pending + credits_posted > debits_posted)",
    ),
    (
        "2: an order holds in escrow what was paid for it and not yet released or refunded",
        "SELECT o.order_id || ' holds ' || CAST(o.held_idr AS TEXT) AS detail
         FROM orders o JOIN payments p ON p.checkout_id = o.checkout_id
         WHERE o.held_idr <> CASE WHEN o.status IN ('paid', 'shipped', 'delivered') AND p.status = 'paid'
                                  THEN o.total_idr - o.refunded_idr ELSE 0 END",
    ),
    (
        "2: refunds never exceed what was paid, and an order's refunded total is its refunds",
        "SELECT o.order_id AS detail FROM orders o
         LEFT JOIN (SELECT merchant_id, order_id, CAST(SUM(amount_idr) AS BIGINT) AS total FROM refunds
                    GROUP BY merchant_id, order_id) r ON r.merchant_id = o.merchant_id AND r.order_id = o.order_id
         WHERE o.refunded_idr > o.total_idr OR o.refunded_idr <> COALESCE(r.total, 0)",
    ),
    (
        "2: a payment is for its checkout's total, and its orders follow it",
        "SELECT p.payment_id AS detail FROM payments p JOIN checkouts c ON c.checkout_id = p.checkout_id
         WHERE p.amount_idr <> c.total_idr
            OR (p.status IN ('paid', 'expired') AND EXISTS (SELECT 1 FROM orders o WHERE o.checkout_id = p.checkout_id AND o.status = 'awaiting_payment'))
            OR (p.status = 'expired' AND EXISTS (SELECT 1 FROM orders o WHERE o.checkout_id = p.checkout_id AND o.status <> 'cancelled'))",
    ),
    (
        "2: money paid for an order cancelled afterwards, or before it arrived, went back to the buyer",
        "SELECT o.order_id AS detail FROM orders o JOIN payments p ON p.checkout_id = o.checkout_id
         WHERE p.status = 'paid' AND p.method <> 'cod' AND o.status = 'cancelled' AND o.refunded_idr <> o.total_idr",
    ),
    (
        "4: no payment is applied twice",
        "SELECT payment_id AS detail FROM payment_callbacks WHERE outcome = 'applied'
         GROUP BY payment_id HAVING COUNT(*) > 1",
    ),
    (
        "4: a completed idempotency key holds its response",
        "SELECT scope || ' ' || idem_key AS detail FROM idempotency_keys
         WHERE state = 'completed' AND (status_code IS NULL OR response_body IS NULL)",
    ),
    (
        "webhooks: a delivery belongs to a subscription, its attempts are all logged, and a delivered one got a 2xx",
        "SELECT d.delivery_id AS detail FROM webhook_deliveries d
         LEFT JOIN webhook_subscriptions s ON s.subscription_id = d.subscription_id
         LEFT JOIN (SELECT delivery_id, COUNT(*) AS n FROM webhook_attempts GROUP BY delivery_id) a
           ON a.delivery_id = d.delivery_id
         WHERE s.subscription_id IS NULL OR d.attempts <> COALESCE(a.n, 0)
            OR (d.status = 'delivered' AND (d.last_status_code IS NULL OR d.last_status_code < 200 OR d.last_status_code > 299))",
    ),
];

const ESCROW_INVARIANT: &str = "2: escrow holds exactly the paid, unsettled, unrefunded orders";
/// The escrow account's balance (pending and posted credits less debits) is the sum of what
/// the orders hold (each checked above against its payment, status and refunds).
const ESCROW_CHECK: &str = "SELECT 'escrow holds ' || CAST(a.credits_pending + a.credits_posted - a.debits_posted - a.debits_pending AS TEXT)
         || ', orders hold ' || CAST(o.held AS TEXT) AS detail
     FROM ledger_accounts a,
          (SELECT CAST(COALESCE(SUM(held_idr), 0) AS BIGINT) AS held FROM orders) o
     WHERE a.account_id = $1 AND a.credits_pending + a.credits_posted - a.debits_posted - a.debits_pending <> o.held";

const PAYOUT_INVARIANT: &str = "2: payout clearing holds exactly the payouts not yet confirmed";
/// Payout clearing's pending credits are the amounts of payouts requested or exported, and
/// everything posted into it (paid payouts) has gone on to provider clearing.
const PAYOUT_CHECK: &str = "SELECT 'payout clearing pending ' || CAST(a.credits_pending AS TEXT) || ', open payouts ' || CAST(p.total AS TEXT)
         || ', posted in ' || CAST(a.credits_posted AS TEXT) || ', out ' || CAST(a.debits_posted AS TEXT) AS detail
     FROM ledger_accounts a,
          (SELECT CAST(COALESCE(SUM(amount_idr), 0) AS BIGINT) AS total FROM payouts WHERE status IN ('requested', 'exported')) p
     WHERE a.account_id = $1 AND (a.credits_pending <> p.total OR a.credits_posted <> a.debits_posted)";

pub async fn check(store: &Store) -> Result<Vec<Violation>, StoreError> {
    let mut violations = check_tables(store).await?;
    // Invariant 8: the sealed audit chain verifies from its first entry to its last.
    if let Some(found) = jembatan_core::audit::verify_chain(store, None).await?.first_break {
        violations.push(Violation {
            invariant: "audit: the chain verifies from the first entry",
            detail: found.describe(),
        });
    }
    Ok(violations)
}

async fn check_tables(store: &Store) -> Result<Vec<Violation>, StoreError> {
    store
        .read(|conn| {
            Box::pin(async move {
                let mut violations = Vec::new();
                for (invariant, sql) in CHECKS {
                    for row in q(*sql).fetch_all(&mut *conn).await? {
                        violations.push(Violation { invariant, detail: row.text("detail")? });
                    }
                }
                let escrow = platform_account(AccountKind::Escrow).to_string();
                for row in q(ESCROW_CHECK).bind(escrow).fetch_all(&mut *conn).await? {
                    violations.push(Violation { invariant: ESCROW_INVARIANT, detail: row.text("detail")? });
                }
                let clearing = platform_account(AccountKind::PayoutClearing).to_string();
                for row in q(PAYOUT_CHECK).bind(clearing).fetch_all(&mut *conn).await? {
                    violations.push(Violation { invariant: PAYOUT_INVARIANT, detail: row.text("detail")? });
                }
                Ok(violations)
            })
        })
        .await
}
