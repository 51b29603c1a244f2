//! The demo shop seeds on a fresh store with orders in every state, and every invariant of
//! DESIGN.md §8 that the checker knows holds afterwards (on SQLite, or on PostgreSQL when
//! `JEMBATAN_TEST_DATABASE_URL` is set).

use std::sync::Arc;

use jembatan_core::{Core, SystemClock};
use jembatan_domain::OrderStatus;
use jembatan_sim::{demo, invariants};
use jembatan_store::testing::fresh_store;

#[tokio::test]
async fn demo_shop_has_every_state_and_keeps_the_invariants() {
    let t = fresh_store().await.unwrap();
    let core = Core::new(t.store.clone(), Arc::new(SystemClock));
    let summary = demo::seed(&core).await.unwrap();
    assert!(summary.merchants.len() >= 4);
    for status in OrderStatus::ALL {
        let n = summary.orders_by_status.iter().find(|(s, _)| *s == status).map_or(0, |(_, n)| *n);
        assert!(n > 0, "no demo order is {status}");
    }
    assert_eq!(invariants::check(&t.store).await.unwrap(), vec![]);
}

#[tokio::test]
async fn the_checker_finds_a_broken_reservation() {
    let t = fresh_store().await.unwrap();
    let core = Core::new(t.store.clone(), Arc::new(SystemClock));
    demo::seed(&core).await.unwrap();
    // Corrupt one SKU behind the store's back, as a buggy release or a manual edit would.
    let sql =
        "UPDATE skus SET stock_reserved = stock_reserved + 1 WHERE sku_id = (SELECT MIN(sku_id) FROM skus)";
    assert_eq!(jembatan_store::testing::raw_execute(&t.url, sql).await.unwrap(), 1);
    let violations = invariants::check(&t.store).await.unwrap();
    assert_eq!(violations.len(), 1, "{violations:?}");
    assert!(violations[0].invariant.contains("reserved stock equals"));
}

#[tokio::test]
async fn the_checker_finds_a_ledger_balance_that_disagrees_with_its_transfers() {
    use jembatan_domain::ledger::{AccountFlags, AccountKind, NewTransfer, TransferKind};
    use jembatan_domain::{Money, Principal, Timestamp};
    use jembatan_store::{WriteCtx, new_id};
    let t = fresh_store().await.unwrap();
    let ctx = WriteCtx { actor: Principal::Operator, now: Timestamp::from_unix_ms(0) };
    let flags = AccountFlags::default();
    let a = t
        .store
        .create_ledger_account(ctx.clone(), new_id(), AccountKind::ProviderClearing, None, flags)
        .await
        .unwrap();
    let b =
        t.store.create_ledger_account(ctx.clone(), new_id(), AccountKind::Escrow, None, flags).await.unwrap();
    let hold = NewTransfer {
        id: new_id(),
        debit: a.id,
        credit: b.id,
        amount: Money::from_rupiah(5_000).unwrap(),
        kind: TransferKind::Pending { timeout_ms: 0 },
        linked: false,
        code: 1,
    };
    let pay = NewTransfer { id: new_id(), kind: TransferKind::Single, ..hold };
    let results = t.store.create_transfers(ctx, vec![hold, pay]).await.unwrap();
    assert!(results.iter().all(|r| r.is_ok()));
    assert_eq!(invariants::check(&t.store).await.unwrap(), vec![]);
    let sql = format!(
        "UPDATE ledger_accounts SET credits_posted = credits_posted + 1 WHERE account_id = '{}'",
        b.id
    );
    assert_eq!(jembatan_store::testing::raw_execute(&t.url, &sql).await.unwrap(), 1);
    let found: Vec<&str> =
        invariants::check(&t.store).await.unwrap().iter().map(|v| v.invariant).collect::<Vec<_>>();
    assert_eq!(
        found,
        vec![
            "1: the ledger balances: total debits equal total credits",
            "1: every account's balances equal the sum of its transfers"
        ]
    );
}

#[tokio::test]
async fn the_checker_finds_a_webhook_delivery_whose_attempts_are_not_logged() {
    use jembatan_domain::{Principal, WebhookOwner};
    use jembatan_store::webhooks::{AttemptOutcome, NextStep};
    let t = fresh_store().await.unwrap();
    let core = Core::new(t.store.clone(), Arc::new(SystemClock));
    let summary = demo::seed(&core).await.unwrap();
    let merchant = summary.merchants[0].0;
    let now = core.clock().now();
    let subscription = jembatan_store::webhooks::SubscriptionRecord {
        id: jembatan_store::new_id(),
        owner: WebhookOwner::Merchant(merchant),
        url: "https://93.184.215.14/hooks".to_owned(),
        secret: jembatan_domain::WebhookSecret::from_key([1; 32]),
        events: jembatan_domain::EventFilter::all(),
        active: true,
        created_at: now.plus_ms(-1_000_000_000),
    };
    let ctx = jembatan_store::WriteCtx { actor: Principal::Operator, now };
    t.store.create_webhook_subscription(ctx, subscription, None).await.unwrap();
    t.store.fan_out_webhooks(now, 10_000).await.unwrap();
    let due = t.store.claim_webhook_deliveries(now, 60_000, 1).await.unwrap();
    assert_eq!(due.len(), 1, "the demo's orders were fanned out to the subscription");
    let ok = AttemptOutcome {
        started_at: now,
        duration_ms: 1,
        status_code: Some(200),
        error: None,
        next: NextStep::Delivered,
    };
    assert!(t.store.record_webhook_attempt(due[0].delivery.id, due[0].lease_until, ok).await.unwrap());
    assert_eq!(
        invariants::check(&t.store).await.unwrap(),
        vec![],
        "a delivered, logged delivery keeps the rules"
    );

    let sql = format!("DELETE FROM webhook_attempts WHERE delivery_id = '{}'", due[0].delivery.id);
    assert_eq!(jembatan_store::testing::raw_execute(&t.url, &sql).await.unwrap(), 1);
    let violations = invariants::check(&t.store).await.unwrap();
    assert_eq!(violations.len(), 1, "{violations:?}");
    assert!(violations[0].invariant.starts_with("webhooks:"));
    assert_eq!(violations[0].detail, due[0].delivery.id.to_string());
}
