//! Store scenarios on the backend the environment selects (SQLite, or PostgreSQL when
//! `JEMBATAN_TEST_DATABASE_URL` is set): the whole order flow, and stock under concurrency.

use jembatan_domain::*;
use jembatan_store::catalogue::NewProduct;
use jembatan_store::payments::CallbackOutcome;
use jembatan_store::testing::{fresh_store, pay, test_payment};
use jembatan_store::{Store, StoreError, WriteCtx, new_id};

fn ctx(actor: Principal) -> WriteCtx {
    WriteCtx { actor, now: Timestamp::from_unix_ms(1_733_000_000_000) }
}

async fn merchant(store: &Store) -> MerchantId {
    let m = Merchant::new(
        new_id(),
        MerchantName::parse("Toko Sari").unwrap(),
        Origin::Local,
        Province::parse("Bali").unwrap(),
        Some(Nib::parse("1234567890123").unwrap()),
        Timestamp::from_unix_ms(0),
    )
    .unwrap();
    store.create_merchant(ctx(Principal::Operator), m, None).await.unwrap().id
}

async fn sku(store: &Store, merchant_id: MerchantId, code: &str, price: i64, stock: i64) -> SkuId {
    let product = NewProduct {
        merchant_id,
        title: ProductTitle::parse("Kopi Gayo 250g").unwrap(),
        category: Category::Food,
        skus: vec![NewSku {
            code: SkuCode::parse(code).unwrap(),
            price: Price::from_rupiah(price).unwrap(),
            stock: StockLevel::on_hand(stock).unwrap(),
        }],
    };
    store.create_product(ctx(Principal::Merchant(merchant_id)), product, None).await.unwrap().skus[0].id
}

fn cart(items: &[(SkuId, i64)]) -> CheckoutRequest {
    let lines = items
        .iter()
        .map(|(s, q)| CheckoutLine { sku_id: *s, quantity: Quantity::new(*q).unwrap() })
        .collect();
    CheckoutRequest::new(
        Channel::Social,
        BuyerId::parse("buyer-1").unwrap(),
        lines,
        ShippingAddress::parse("Siti", "081234567890", "Jl. Braga 1", "Bandung", "Jawa Barat", "40111")
            .unwrap(),
        PaymentMethod::Qris,
    )
    .unwrap()
}

#[tokio::test]
async fn order_flow_moves_stock_and_journals_every_change() {
    let t = fresh_store().await.unwrap();
    let store = &t.store;
    let (m1, m2) = (merchant(store).await, merchant(store).await);
    let (a, b) = (sku(store, m1, "A", 10_000, 5).await, sku(store, m2, "B", 2_500, 3).await);
    let channel = ctx(Principal::Channel(Channel::Social));
    let checkout =
        store.checkout(channel.clone(), cart(&[(a, 2), (b, 3)]), test_payment(), None).await.unwrap();
    assert_eq!(checkout.orders.len(), 2, "one order per merchant");
    assert_eq!(checkout.total.rupiah(), 2 * 10_000 + 3 * 2_500);
    assert_eq!(store.sku(a).await.unwrap().unwrap().stock.units_reserved(), 2);

    // Not enough stock left of B: nothing of the checkout is written.
    let before = jembatan_store::journal::counts(store).await.unwrap();
    let err =
        store.checkout(channel.clone(), cart(&[(a, 1), (b, 1)]), test_payment(), None).await.unwrap_err();
    assert!(
        matches!(err, StoreError::Domain(DomainError::InsufficientStock { available: 0, requested: 1, .. })),
        "{err:?}"
    );
    assert_eq!(store.sku(a).await.unwrap().unwrap().stock.units_reserved(), 2, "A's reservation rolled back");
    assert_eq!(jembatan_store::journal::counts(store).await.unwrap(), before);

    pay(store, ctx(Principal::Provider), &checkout).await.unwrap();
    let order_a = checkout.orders.iter().find(|o| o.merchant_id == m1).unwrap().id;
    let order_b = checkout.orders.iter().find(|o| o.merchant_id == m2).unwrap().id;
    let merchant_ctx = ctx(Principal::Merchant(m1));
    let shipped =
        store.transition_order(merchant_ctx.clone(), order_a, OrderAction::Ship, None).await.unwrap();
    assert_eq!(shipped.status, OrderStatus::Shipped);
    let stock_a = store.sku(a).await.unwrap().unwrap().stock;
    assert_eq!(
        (stock_a.units_on_hand(), stock_a.units_reserved()),
        (3, 0),
        "shipping takes units out of stock"
    );
    let err = store.transition_order(merchant_ctx, order_a, OrderAction::Cancel, None).await.unwrap_err();
    assert!(matches!(err, StoreError::Domain(DomainError::IllegalTransition { .. })));
    store.transition_order(channel, order_b, OrderAction::Cancel, None).await.unwrap();
    let stock_b = store.sku(b).await.unwrap().unwrap().stock;
    assert_eq!((stock_b.units_on_hand(), stock_b.units_reserved()), (3, 0), "cancelling returns the units");

    let page = store.orders_of_merchant(m1, None, None, 10).await.unwrap();
    assert_eq!(page.len(), 1);
    assert_eq!(page[0].lines.len(), 1);
    let (events, audits) = jembatan_store::journal::counts(store).await.unwrap();
    assert_eq!(events, audits, "every change has its event and its audit entry");
}

#[tokio::test]
async fn concurrent_checkouts_never_oversell() {
    let t = fresh_store().await.unwrap();
    let store = t.store.clone();
    let m = merchant(&store).await;
    // A has enough for every cart; B is scarce. (If A were scarce too, a cart failing on A would
    // never ask for B, and how much B sells would depend on the interleaving.)
    let (a, b) = (sku(&store, m, "A", 1_000, 80).await, sku(&store, m, "B", 1_000, 23).await);
    let mut tasks = Vec::new();
    for i in 0..80 {
        let store = store.clone();
        // Opposite line orders in the cart must not deadlock: the store sorts them.
        let items = if i % 2 == 0 { vec![(a, 1), (b, 1)] } else { vec![(b, 1), (a, 1)] };
        let only_a = i % 3 == 0;
        tasks.push(tokio::spawn(async move {
            let items = if only_a { vec![(a, 1)] } else { items };
            store.checkout(ctx(Principal::Channel(Channel::Social)), cart(&items), test_payment(), None).await
        }));
    }
    let mut reserved_a = 0;
    let mut reserved_b = 0;
    for task in tasks {
        match task.await.unwrap() {
            Ok(c) => {
                for l in c.orders.iter().flat_map(|o| &o.lines) {
                    if l.sku_id == a { reserved_a += 1 } else { reserved_b += 1 }
                }
            }
            Err(StoreError::Domain(DomainError::InsufficientStock { .. })) => {}
            Err(other) => panic!("unexpected {other:?}"),
        }
    }
    let (sa, sb) = (store.sku(a).await.unwrap().unwrap().stock, store.sku(b).await.unwrap().unwrap().stock);
    assert_eq!(sa.units_reserved(), reserved_a);
    assert_eq!(sb.units_reserved(), reserved_b);
    assert!(sa.units_reserved() <= 80 && sb.units_reserved() <= 23);
    assert_eq!(sb.units_reserved(), 23, "53 carts want more B than there is: all of it sells, no more");
    // 27 carts want only A and all get it; of the 53 that want both, the 23 that got B got A.
    assert_eq!(sa.units_reserved(), 27 + 23, "a cart failing on B keeps none of its A");
}

#[tokio::test]
async fn idempotent_responses_replay_until_they_expire() {
    use jembatan_store::idempotency::Claim;
    use jembatan_store::{Idem, StoredResponse};
    let t = fresh_store().await.unwrap();
    let store = &t.store;
    let m = merchant(store).await;
    let a = sku(store, m, "A", 5_000, 10).await;
    let at = Timestamp::from_unix_ms(1_733_000_000_000);
    let claim = |key: &'static str| store.claim_idempotency_key("channel:social", key, "f1", at, 60_000);
    assert_eq!(claim("k1").await.unwrap(), Claim::Fresh);
    assert_eq!(claim("k1").await.unwrap(), Claim::InProgress, "a duplicate while the first runs");
    let idem = Idem {
        scope: "channel:social".to_owned(),
        key: "k1".to_owned(),
        fingerprint: "f1".to_owned(),
        now: at,
        render: Box::new(|outcome: Result<&_, &StoreError>| {
            let checkout: &jembatan_store::orders::CheckoutRecord = outcome.ok()?;
            Some(StoredResponse { status: 201, body: checkout.id.to_string() })
        }),
    };
    let checkout = store
        .checkout(ctx(Principal::Channel(Channel::Social)), cart(&[(a, 1)]), test_payment(), Some(idem))
        .await
        .unwrap();
    store.end_idempotency_claim("channel:social", "k1", true).await.unwrap();
    let replay = Claim::Replay(StoredResponse { status: 201, body: checkout.id.to_string() });
    assert_eq!(claim("k1").await.unwrap(), replay);
    assert_eq!(
        store.claim_idempotency_key("channel:social", "k1", "other", at, 60_000).await.unwrap(),
        Claim::Mismatch
    );

    // Not yet expired: nothing goes. Expired: the key is forgotten and may be used again.
    assert_eq!(store.purge_idempotency_keys(at, at, 100).await.unwrap(), 0);
    assert_eq!(claim("k1").await.unwrap(), replay);
    assert_eq!(store.purge_idempotency_keys(at.plus_ms(1), at, 100).await.unwrap(), 1);
    assert_eq!(claim("k1").await.unwrap(), Claim::Fresh);
    store.end_idempotency_claim("channel:social", "k1", false).await.unwrap();

    // Keys completed at three times; a purge between the second and third takes the first two,
    // in batches of one.
    for (n, key) in ["k2", "k3", "k4"].into_iter().enumerate() {
        let done = at.plus_ms(100 * n as i64);
        assert_eq!(
            store.claim_idempotency_key("channel:social", key, "f", done, 60_000).await.unwrap(),
            Claim::Fresh
        );
        let idem = Idem {
            scope: "channel:social".to_owned(),
            key: key.to_owned(),
            fingerprint: "f".to_owned(),
            now: done,
            render: Box::new(|_: Result<&_, &StoreError>| {
                Some(StoredResponse { status: 201, body: "{}".to_owned() })
            }),
        };
        store
            .checkout(ctx(Principal::Channel(Channel::Social)), cart(&[(a, 1)]), test_payment(), Some(idem))
            .await
            .unwrap();
        store.end_idempotency_claim("channel:social", key, true).await.unwrap();
    }
    let cutoff = at.plus_ms(150);
    assert_eq!(store.purge_idempotency_keys(cutoff, at, 1).await.unwrap(), 1);
    assert_eq!(store.purge_idempotency_keys(cutoff, at, 1).await.unwrap(), 1);
    assert_eq!(store.purge_idempotency_keys(cutoff, at, 1).await.unwrap(), 0);
    let kept = store.claim_idempotency_key("channel:social", "k4", "f", at, 60_000).await.unwrap();
    assert!(matches!(kept, Claim::Replay(_)), "the key within retention stays: {kept:?}");
}

/// A unit that panics (a broken assertion) fails alone: the store keeps serving writes.
#[tokio::test]
async fn a_panicking_unit_does_not_take_the_store_down() {
    let t = fresh_store().await.unwrap();
    let store = t.store.clone();
    let doomed = tokio::spawn(async move {
        store
            .write::<()>(None, |conn| {
                Box::pin(async move {
                    jembatan_store::q("INSERT INTO checkouts (checkout_id, channel, buyer_id, payment_method, total_idr, orders_count, created_at_ms) VALUES ('chk_x', 'social', 'b', 'qris', 0, 0, 0)")
                        .execute(conn)
                        .await?;
                    panic!("a broken assertion inside a unit");
                })
            })
            .await
    });
    // SQLite answers the caller `Unavailable`; on PostgreSQL the panic stays in the caller's task.
    match doomed.await {
        Ok(outcome) => assert!(matches!(outcome, Err(StoreError::Unavailable)), "{outcome:?}"),
        Err(join) => assert!(join.is_panic()),
    }
    let m = merchant(&t.store).await;
    assert!(t.store.merchant(m).await.unwrap().is_some(), "writes go on after the panic");
    let leftovers = t
        .store
        .read(|conn| {
            Box::pin(async move {
                Ok(jembatan_store::q("SELECT checkout_id FROM checkouts").fetch_all(conn).await?)
            })
        })
        .await
        .unwrap();
    assert!(leftovers.is_empty(), "the panicking unit's write was rolled back");
}

/// The payment of a checkout arrives after one of its orders was cancelled: the other orders
/// become paid, the cancelled one stays cancelled, and a repeated report changes nothing.
#[tokio::test]
async fn a_payment_after_a_partial_cancellation_pays_what_is_left() {
    let t = fresh_store().await.unwrap();
    let store = &t.store;
    let (m1, m2) = (merchant(store).await, merchant(store).await);
    let (a, b) = (sku(store, m1, "A", 10_000, 5).await, sku(store, m2, "B", 2_500, 3).await);
    let checkout = store
        .checkout(ctx(Principal::Channel(Channel::Social)), cart(&[(a, 1), (b, 1)]), test_payment(), None)
        .await
        .unwrap();
    let order_b = checkout.orders.iter().find(|o| o.merchant_id == m2).unwrap().id;
    store.transition_order(ctx(Principal::Merchant(m2)), order_b, OrderAction::Cancel, None).await.unwrap();
    for attempt in 0..2 {
        let result = pay(store, ctx(Principal::Provider), &checkout).await.unwrap();
        let expected = if attempt == 0 { CallbackOutcome::Applied } else { CallbackOutcome::AlreadyApplied };
        assert_eq!(result.outcome, expected);
        let paid = store.checkout_record(checkout.id).await.unwrap().unwrap();
        let statuses: Vec<(MerchantId, OrderStatus)> =
            paid.orders.iter().map(|o| (o.merchant_id, o.status)).collect();
        assert!(
            statuses.contains(&(m1, OrderStatus::Paid)) && statuses.contains(&(m2, OrderStatus::Cancelled)),
            "{statuses:?}"
        );
    }
}

/// Money follows the order: paid → held in escrow; confirmed → escrow released to the merchant
/// (total − fee) and the platform (fee); cancelled after payment → refunded to the buyer.
#[tokio::test]
async fn escrow_holds_then_releases_or_returns_the_money() {
    use jembatan_domain::ledger::{AccountKind, merchant_balance_account, platform_account};
    let t = fresh_store().await.unwrap();
    let store = &t.store;
    let m = merchant(store).await;
    // Food: 6.5% fee. 2 × Rp10,000 → fee Rp1,300, merchant Rp18,700.
    let a = sku(store, m, "A", 10_000, 10).await;
    let balance = |id| async move { store.ledger_account(id).await.unwrap().unwrap().balances };
    let escrow = platform_account(AccountKind::Escrow);
    let channel = ctx(Principal::Channel(Channel::Social));
    let kept = store.checkout(channel.clone(), cart(&[(a, 2)]), test_payment(), None).await.unwrap();
    let returned = store.checkout(channel.clone(), cart(&[(a, 1)]), test_payment(), None).await.unwrap();
    assert_eq!(kept.orders[0].fee.rupiah(), 1_300);
    for c in [&kept, &returned] {
        pay(store, ctx(Principal::Provider), c).await.unwrap();
    }
    assert_eq!(balance(escrow).await.credits_pending, 30_000, "both payments held in escrow");

    store.transition_order(channel.clone(), returned.orders[0].id, OrderAction::Cancel, None).await.unwrap();
    // The cancelled order's money goes back to the buyer: the hold is posted and refunded.
    assert_eq!(balance(escrow).await.credits_pending, 20_000, "only the kept order is held");
    let cancelled = store.order(returned.orders[0].id).await.unwrap().unwrap();
    assert_eq!((cancelled.held.rupiah(), cancelled.refunded.rupiah()), (0, 10_000));

    let order = kept.orders[0].id;
    let seller = ctx(Principal::Merchant(m));
    store.transition_order(seller.clone(), order, OrderAction::Ship, None).await.unwrap();
    store.transition_order(seller, order, OrderAction::Deliver, None).await.unwrap();
    assert_eq!(balance(merchant_balance_account(m)).await.credit_balance(), 0, "nothing before confirmation");
    store.transition_order(channel, order, OrderAction::Confirm, None).await.unwrap();
    let e = balance(escrow).await;
    assert_eq!(
        (e.credits_pending, e.credits_posted, e.debits_posted),
        (0, 30_000, 30_000),
        "escrow released in full (20,000) and refunded (10,000)"
    );
    assert_eq!(balance(merchant_balance_account(m)).await.credit_balance(), 18_700);
    assert_eq!(balance(platform_account(AccountKind::PlatformFeeRevenue)).await.credit_balance(), 1_300);
}

/// The migration's batch import: orders new to the core go in together, an order the batch
/// carries twice ends as its last version, a replay changes nothing, an in-flight order has
/// its escrow held, and what the core cannot hold is refused with its reason.
#[tokio::test]
async fn a_batch_of_legacy_orders_imports_once_in_one_unit() {
    use jembatan_store::import::{Imported, ImportedOrder};
    let t = fresh_store().await.unwrap();
    let store = &t.store;
    let merchant_id = merchant(store).await;
    let sku_id = sku(store, merchant_id, "KOPI-250", 50_000, 10).await;
    let priced = vec![PricedSku {
        sku_id,
        merchant_id,
        price: Price::from_rupiah(50_000).unwrap(),
        category: Category::Food,
    }];
    let order = |id: &str, status: OrderStatus, method: PaymentMethod| {
        let mut request = cart(&[(sku_id, 2)]);
        request.payment_method = method;
        ImportedOrder {
            social_order_id: id.to_owned(),
            request,
            priced: priced.clone(),
            status,
            placed_at: Timestamp::from_unix_ms(1_700_000_000_000),
        }
    };
    let batch = vec![
        order("9001", OrderStatus::Completed, PaymentMethod::Qris),
        order("9002", OrderStatus::Paid, PaymentMethod::Qris),
        order("9003", OrderStatus::Shipped, PaymentMethod::CashOnDelivery),
        order("9004", OrderStatus::Paid, PaymentMethod::Qris),
        order("9004", OrderStatus::Completed, PaymentMethod::Qris),
    ];
    let outcomes =
        store.import_legacy_orders(ctx(Principal::Operator), merchant_id, batch.clone()).await.unwrap();
    assert_eq!(outcomes[0], Imported::Inserted);
    assert_eq!(outcomes[1], Imported::Inserted);
    assert!(matches!(&outcomes[2], Imported::Refused(reason) if reason.contains("cash on delivery")));
    assert_eq!(outcomes[3], Imported::Inserted);
    assert_eq!(outcomes[4], Imported::Advanced(OrderStatus::Paid, OrderStatus::Completed));
    let orders = store.orders_of_merchant(merchant_id, None, None, 100).await.unwrap();
    assert_eq!(orders.len(), 3, "9001, 9002 and 9004 once each; 9003 refused");
    let escrow = jembatan_domain::ledger::platform_account(jembatan_domain::ledger::AccountKind::Escrow);
    let held = || async move { store.ledger_account(escrow).await.unwrap().unwrap().balances };
    assert_eq!(held().await.credits_pending, 100_000, "only 9002 is in flight: 2 × 50,000 held in escrow");

    let again = store.import_legacy_orders(ctx(Principal::Operator), merchant_id, batch).await.unwrap();
    assert_eq!(again[0], Imported::Unchanged);
    assert_eq!(
        store.orders_of_merchant(merchant_id, None, None, 100).await.unwrap().len(),
        3,
        "a replay adds nothing"
    );
    assert_eq!(held().await.credits_pending, 100_000, "nor holds anything twice");
    let (events, audits) = jembatan_store::journal::counts(store).await.unwrap();
    assert_eq!(events, audits, "every change journaled with its audit entry");
}
