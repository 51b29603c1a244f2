//! `migrate run` end to end on a seeded social shop (with defects), on SQLite or PostgreSQL
//! (`JEMBATAN_TEST_DATABASE_URL`): every merchant copied, caught up, verified and cut over while
//! buyers and sellers keep ordering, paying, shipping and editing through the gateway; every
//! acknowledged order is found afterwards where the shop now lives, the quarantine holds each
//! defective row with its reason and raw value, every verification matched, the core's
//! invariants hold, and running again changes nothing. A core row corrupted behind the
//! engine's back is caught by verification before the cutover, with a report naming the row
//! and the field.

use std::collections::BTreeMap;
use std::sync::Arc;
use std::sync::atomic::{AtomicBool, Ordering};

use jembatan_core::gateway::{Gateway, GatewayOptions, NewSocialOrder, SocialProductEdit};
use jembatan_core::migrate::{Engine, EngineOptions, PlanRequest, ShopTransform, plan};
use jembatan_core::{Core, ManualClock, PaymentSettings};
use jembatan_domain::migration::{MigrationState, Selection};
use jembatan_domain::social::SocialId;
use jembatan_domain::*;
use jembatan_sim::invariants;
use jembatan_sim::seed::{SeedOptions, seed};
use jembatan_store::legacy::PRODUCT_LIVE;
use jembatan_store::social::Owner;
use jembatan_store::testing::{TestLegacyStore, TestStore, fresh_legacy_store, fresh_store, raw_execute};

struct World {
    gateway: Gateway,
    core: Core,
    t: TestStore,
    _l: TestLegacyStore,
}

async fn world(merchants: u64, rate: f64) -> World {
    let t = fresh_store().await.unwrap();
    let l = fresh_legacy_store().await.unwrap();
    let mut options = SeedOptions::new(merchants, 11, rate);
    options.batch_merchants = 4;
    seed(&l.store, &options, |_| {}).await.unwrap();
    let clock = Arc::new(ManualClock::new(Timestamp::from_unix_ms(1_800_000_000_000)));
    let core = Core::with_simulator(t.store.clone(), clock, b"secret".to_vec(), PaymentSettings::default());
    let gateway = Gateway::new(core.clone(), l.store.clone(), GatewayOptions::default());
    World { gateway, core, t, _l: l }
}

impl World {
    async fn plan(&self, wave: &str) -> u64 {
        let request = PlanRequest {
            wave: wave.to_owned(),
            selection: Selection::parse("all").unwrap(),
            merchants_limit: None,
            dry_run: false,
        };
        plan(&self.core, self.gateway.legacy(), &Principal::Operator, request).await.unwrap().merchants
    }

    fn engine(&self) -> Engine {
        Engine::new(self.gateway.clone(), EngineOptions { batch_rows: 40, ..EngineOptions::default() })
    }

    async fn merchants(&self, wave: &str) -> Vec<jembatan_store::migration::MigrationMerchantRecord> {
        self.core.store().wave_merchants(wave, "", 1_000).await.unwrap()
    }

    /// Products of the wave's shops a buyer can order: live, clean by the migration's own
    /// transform, with stock.
    async fn orderable(&self, wave: &str) -> Vec<(String, String, String)> {
        let mut out = Vec::new();
        for m in self.merchants(wave).await {
            let mut tf = ShopTransform::new(&m.shop_id);
            for p in self.gateway.legacy().products(&m.shop_id, "", 500).await.unwrap() {
                if p.status != PRODUCT_LIVE {
                    continue;
                }
                if let Ok(draft) = tf.product(&p)
                    && let Some(sku) = p.skus.iter().find(|s| s.stock > 20)
                    && draft.skus.len() == p.skus.len()
                {
                    out.push((m.shop_id.clone(), p.product_id.clone(), sku.sku_id.clone()));
                }
            }
        }
        out
    }
}

fn id(raw: &str) -> SocialId {
    SocialId::parse("id", raw).unwrap()
}

/// What the load acknowledged: order id → the last step it was told succeeded.
type Journal = BTreeMap<String, &'static str>;

/// Buyers order, pay and the seller ships and edits stock, through the gateway, until told to
/// stop. Every acknowledged step is journaled.
async fn load(
    gateway: Gateway,
    core: Core,
    targets: Vec<(String, String, String)>,
    stop: Arc<AtomicBool>,
) -> (Journal, u64) {
    let social = Principal::Channel(Channel::Social);
    let mut journal = Journal::new();
    let mut edits = 0;
    let mut n: u32 = 0;
    while !stop.load(Ordering::Relaxed) || n < 20 {
        n += 1;
        let (shop, product, sku) = &targets[n as usize % targets.len()];
        let new = NewSocialOrder {
            shop_id: id(shop),
            buyer_id: id(&format!("55{:08}", n % 37)),
            items: vec![(id(product), id(sku), Quantity::new(1).unwrap())],
            payment_method: PaymentMethod::VirtualAccount,
            address: ShippingAddress::parse(
                "Rina",
                "0812-3456-7890",
                "Jl. Merdeka 1",
                "Bandung",
                "Jawa Barat",
                "40111",
            )
            .unwrap(),
            order_id: SocialId::generate(1_800_000_000_000, n),
        };
        let Ok(order) = gateway.create_order(&social, new).await else { continue };
        journal.insert(order.order_id.clone(), "created");
        if n.is_multiple_of(2) {
            let Some(payment) = order.payment.as_ref() else { continue };
            let payment_id = PaymentId::parse(&payment.payment_id).unwrap();
            if core.provider_pays(payment_id, None).await.is_ok() {
                journal.insert(order.order_id.clone(), "paid");
                if n.is_multiple_of(4)
                    && gateway.ship(&Principal::Operator, &id(&order.order_id)).await.is_ok()
                {
                    journal.insert(order.order_id.clone(), "shipped");
                }
            }
        }
        if n.is_multiple_of(5) {
            let edit = SocialProductEdit {
                stocks: vec![(id(sku), StockLevel::on_hand(500 + i64::from(n)).unwrap())],
                ..SocialProductEdit::default()
            };
            if gateway.edit_product(&Principal::Operator, &id(shop), &id(product), edit).await.is_ok() {
                edits += 1;
            }
        }
        tokio::task::yield_now().await;
    }
    (journal, edits)
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn seeded_shops_move_live_under_load_verified_with_defects_quarantined() {
    let w = world(8, 0.05).await;
    let planned = w.plan("w1").await;
    assert!(planned >= 6, "most seeded shops can be enrolled: {planned}");
    let targets = w.orderable("w1").await;
    assert!(!targets.is_empty());

    let stop = Arc::new(AtomicBool::new(false));
    let load = tokio::spawn(load(w.gateway.clone(), w.core.clone(), targets, stop.clone()));
    let engine = w.engine();
    let first = engine.run(&Principal::Operator, Some("w1".to_owned()), 2).await.unwrap();
    assert_eq!(first.failed, vec![], "{first:?}");
    stop.store(true, Ordering::Relaxed);
    let (journal, edits) = load.await.unwrap();
    assert!(journal.len() >= 20 && edits > 0, "the load ran: {} orders, {edits} edits", journal.len());
    // A merchant left catching up (its cutover over budget on a busy machine) finishes later.
    for _ in 0..5 {
        engine.run(&Principal::Operator, Some("w1".to_owned()), 2).await.unwrap();
    }

    let store = w.core.store();
    for m in w.merchants("w1").await {
        if m.state != MigrationState::CutOver {
            let reports = store.verifications(m.merchant_id).await.unwrap();
            panic!("{m:?} {:#}", reports.first().map(|r| r.report.clone()).unwrap_or_default());
        }
        assert!(m.cutover_pause_us.is_some_and(|p| p > 0), "the pause is measured: {m:?}");
        let shop = store.social_shop(&m.shop_id).await.unwrap().unwrap();
        assert_eq!(shop.owner, Owner::Core);
        let verifications = store.verifications(m.merchant_id).await.unwrap();
        assert!(verifications.iter().all(|v| v.matched), "{verifications:?}");
        assert!(verifications.iter().any(|v| v.phase == "before_cutover"));
        assert!(verifications.iter().any(|v| v.phase == "after_cutover"));
    }
    // The defects are in the quarantine, each with its reason and raw row.
    let quarantined = store.quarantined(None, None, Default::default(), 1_000).await.unwrap();
    assert!(!quarantined.is_empty(), "the seed's defects are quarantined");
    for q in &quarantined {
        assert!(!q.reason.is_empty() && !q.kinds.is_empty(), "{q:?}");
        assert!(q.raw.contains(&q.legacy_key), "the raw legacy row is kept: {q:?}");
    }
    // Every acknowledged order is found where the shop lives now, at least as far as acked.
    for (order_id, step) in &journal {
        let order = w.gateway.order(&Principal::Operator, &id(order_id)).await.unwrap();
        let at_least = match *step {
            "created" => 100,
            "paid" => 111,
            _ => 121,
        };
        assert!(order.status >= at_least && order.status != 140, "order {order_id} acked {step}: {order:?}");
    }
    assert_eq!(invariants::check(store).await.unwrap(), vec![]);

    // Nothing left to do: a run changes nothing.
    let before = raw_counts(&w.t.url).await;
    let again = engine.run(&Principal::Operator, Some("w1".to_owned()), 2).await.unwrap();
    assert_eq!(again.merchants.len() + again.failed.len(), 0);
    assert_eq!(raw_counts(&w.t.url).await, before);
}

#[tokio::test]
async fn a_core_row_corrupted_behind_the_engine_is_caught_before_the_cutover() {
    let w = world(3, 0.0).await;
    assert!(w.plan("w1").await >= 1);
    let engine = w.engine();
    let m = w.merchants("w1").await.remove(0);
    let run = engine.advance(m.clone(), Some(MigrationState::CatchingUp)).await.unwrap();
    assert_eq!(run.state, MigrationState::CatchingUp);
    // One SKU's price changes in the core, behind the engine's back.
    let sku = w
        .core
        .store()
        .migration_core_view(m.merchant_id)
        .await
        .unwrap()
        .products
        .into_iter()
        .find(|p| !p.skus.is_empty())
        .unwrap();
    let social_sku = sku.skus[0].0.clone();
    let sql = format!(
        "UPDATE skus SET price_idr = price_idr + 1 WHERE sku_id = (SELECT core_id FROM social_ids WHERE kind = 'sku' AND social_id = '{social_sku}')"
    );
    assert_eq!(raw_execute(&w.t.url, &sql).await.unwrap(), 1);

    let record = w.core.store().migration_merchant(m.merchant_id).await.unwrap().unwrap();
    let run = engine.migrate(record).await.unwrap();
    assert_eq!(run.state, MigrationState::Quarantined, "{run:?}");
    let shop = w.core.store().social_shop(&m.shop_id).await.unwrap().unwrap();
    assert_eq!(shop.owner, Owner::Legacy, "a merchant that does not verify is not cut over");
    let report = &w.core.store().verifications(m.merchant_id).await.unwrap()[0];
    assert!(!report.matched && report.differences == 1, "{report:?}");
    let difference = &report.report["differences"][0];
    assert_eq!(difference["key"], sku.social_product_id.as_str(), "{difference}");
    assert_eq!(difference["fields"][0]["field"], "skus", "{difference}");
    assert_eq!(report.report["entities"]["product"]["legacy_sha256"].as_str().map(str::len), Some(64));
    assert_ne!(
        report.report["entities"]["product"]["legacy_sha256"],
        report.report["entities"]["product"]["core_sha256"]
    );
}

/// Rows per core table, to show a run that has nothing to do writes nothing.
async fn raw_counts(url: &str) -> Vec<(String, i64)> {
    let store = jembatan_store::Store::open(jembatan_store::StoreOptions::new(url.to_owned())).await.unwrap();
    let mut out = Vec::new();
    for table in [
        "orders",
        "skus",
        "products",
        "outbox",
        "audit_log",
        "migration_verifications",
        "migration_quarantine",
    ] {
        let sql = format!("SELECT COUNT(*) AS n FROM {table}");
        let n = store
            .read(move |conn| {
                Box::pin(async move { Ok(jembatan_store::q(sql).fetch_one(conn).await?.int("n")?) })
            })
            .await
            .unwrap();
        out.push((table.to_owned(), n));
    }
    out
}

/// Products and orders of a shop as the social app sees them (SKU names are the legacy
/// store's own, which the core never held: left out).
async fn social_view(w: &World, shop: &str, orders: &[String]) -> (Vec<String>, Vec<String>) {
    let page = w.gateway.products(&Principal::Operator, &id(shop), None, 200).await.unwrap();
    let products = page
        .items
        .iter()
        .map(|p| {
            let skus: Vec<String> = p
                .skus
                .iter()
                .map(|s| format!("{}:{}:{}:{}", s.sku_id, s.seller_sku, s.price, s.stock))
                .collect();
            format!("{} {} {} {} [{}]", p.product_id, p.title, p.category, p.status, skus.join(","))
        })
        .collect();
    let mut views = Vec::new();
    for order in orders {
        let o = w.gateway.order(&Principal::Operator, &id(order)).await.unwrap();
        views.push(format!(
            "{} {} {} {} {:?}",
            o.order_id, o.status, o.total_amount, o.payment_method, o.items
        ));
    }
    (products, views)
}

#[tokio::test]
async fn a_rollback_after_cutover_gives_the_legacy_store_everything_done_on_the_core() {
    let w = world(3, 0.0).await;
    assert!(w.plan("w1").await >= 1);
    let engine = w.engine();
    let m = w.merchants("w1").await.remove(0);
    assert_eq!(engine.migrate(m.clone()).await.unwrap().state, MigrationState::CutOver);
    let targets: Vec<_> = w.orderable("w1").await.into_iter().filter(|(s, ..)| *s == m.shop_id).collect();
    assert!(targets.len() >= 2, "{targets:?}");

    // The shop sells on the core: new orders, one paid, one paid and shipped, one unpaid; a
    // stock level and a price changed by the seller.
    let social = Principal::Channel(Channel::Social);
    let mut orders = Vec::new();
    for n in 0..3u32 {
        let (shop, product, sku) = &targets[n as usize % targets.len()];
        let new = NewSocialOrder {
            shop_id: id(shop),
            buyer_id: id("5512345678"),
            items: vec![(id(product), id(sku), Quantity::new(2).unwrap())],
            payment_method: PaymentMethod::Qris,
            address: ShippingAddress::parse(
                "Sari",
                "081311112222",
                "Jl. Asia Afrika 8",
                "Bandung",
                "Jawa Barat",
                "40112",
            )
            .unwrap(),
            order_id: SocialId::generate(1_800_000_100_000, 900 + n),
        };
        let order = w.gateway.create_order(&social, new).await.unwrap();
        if n < 2 {
            let payment = PaymentId::parse(&order.payment.as_ref().unwrap().payment_id).unwrap();
            w.core.provider_pays(payment, None).await.unwrap();
        }
        if n == 1 {
            w.gateway.ship(&Principal::Operator, &id(&order.order_id)).await.unwrap();
        }
        orders.push(order.order_id);
    }
    let (shop, product, sku) = &targets[1];
    let edit = SocialProductEdit {
        prices: vec![(id(sku), Price::from_rupiah(123_000).unwrap())],
        stocks: vec![(id(sku), StockLevel::on_hand(77).unwrap())],
        ..SocialProductEdit::default()
    };
    w.gateway.edit_product(&Principal::Operator, &id(shop), &id(product), edit).await.unwrap();

    // The reverse sync keeps the legacy store current while the core owns the shop.
    let synced = engine.reverse_sync_all(Some("w1".to_owned())).await.unwrap();
    assert_eq!(synced.orders_inserted, 3, "{synced:?}");
    let legacy_order = w.gateway.legacy().order(&orders[1]).await.unwrap().unwrap();
    assert_eq!(legacy_order.status, 121, "shipped on the core, in transit in the legacy store");
    let before = social_view(&w, &m.shop_id, &orders).await;

    let (record, _) =
        engine.rollback(&Principal::Operator, m.merchant_id, "a test of the way back").await.unwrap();
    assert_eq!(record.state, MigrationState::RolledBack);
    let store = w.core.store();
    assert_eq!(store.social_shop(&m.shop_id).await.unwrap().unwrap().owner, Owner::Legacy);
    assert!(!w.gateway.legacy().is_fenced(&m.shop_id).await.unwrap());
    // Seamless: the social app sees the same shop from the legacy store.
    assert_eq!(social_view(&w, &m.shop_id, &orders).await, before);
    let legacy_sku = w.gateway.legacy().product(shop, product).await.unwrap().unwrap();
    let edited = legacy_sku.skus.iter().find(|s| s.sku_id == *sku).unwrap();
    assert_eq!((edited.price.as_str(), edited.stock), ("123000", 77));

    // The shop goes on selling from the legacy store: the paid order ships, the unpaid one is
    // cancelled and its units come back there.
    let stock_before = w.gateway.legacy().product(&targets[2].0, &targets[2].1).await.unwrap().unwrap();
    w.gateway.ship(&Principal::Operator, &id(&orders[0])).await.unwrap();
    assert_eq!(w.gateway.order(&social, &id(&orders[0])).await.unwrap().status, 121);
    w.gateway.cancel(&social, &id(&orders[2])).await.unwrap();
    let stock_after = w.gateway.legacy().product(&targets[2].0, &targets[2].1).await.unwrap().unwrap();
    let units = |p: &jembatan_store::legacy::LegacyProduct| {
        p.skus.iter().find(|s| s.sku_id == targets[2].2).unwrap().stock
    };
    assert_eq!(units(&stock_after), units(&stock_before) + 2);
    assert_eq!(invariants::check(store).await.unwrap(), vec![]);

    // Planned again, it moves again, and verifies.
    assert_eq!(w.plan("w2").await, 1);
    let again = w.merchants("w2").await.remove(0);
    assert_eq!(again.merchant_id, m.merchant_id);
    let run = engine.migrate(again).await.unwrap();
    assert_eq!(run.state, MigrationState::CutOver, "{run:?}");
    assert_eq!(invariants::check(store).await.unwrap(), vec![]);
    // Finalized only once its open quarantine is accepted (audited).
    let open =
        store.quarantined(Some(m.merchant_id), Some("open".into()), Default::default(), 100).await.unwrap();
    if !open.is_empty() {
        let refused = engine.finalize(&Principal::Operator, m.merchant_id).await.unwrap_err();
        assert!(refused.to_string().contains("open quarantined rows"), "{refused}");
        let accepted = w
            .core
            .accept_quarantine(
                &Principal::Operator,
                m.merchant_id,
                "cash-on-delivery history stays behind".into(),
            )
            .await
            .unwrap();
        assert_eq!(accepted as usize, open.len());
    }
    let done = engine.finalize(&Principal::Operator, m.merchant_id).await.unwrap();
    assert_eq!(done.state, MigrationState::Finalized);
    assert!(engine.rollback(&Principal::Operator, m.merchant_id, "too late").await.is_err());
}

#[tokio::test]
async fn slow_live_calls_slow_the_copy_down() {
    use jembatan_core::migrate::throttle::{LatencyWindow, Throttle};
    let w = world(2, 0.0).await;
    assert!(w.plan("w1").await >= 1);
    let window = Arc::new(LatencyWindow::new(std::time::Duration::from_secs(60)));
    for _ in 0..100 {
        window.record(std::time::Duration::from_millis(40));
    }
    let throttle = Throttle::new(window.clone(), std::time::Duration::from_millis(30), false);
    let options =
        EngineOptions { batch_rows: 40, throttle: Some(throttle.clone()), ..EngineOptions::default() };
    let engine = Engine::new(w.gateway.clone(), options);
    let m = w.merchants("w1").await.remove(0);
    let run = engine.migrate(m).await.unwrap();
    assert_eq!(run.state, MigrationState::CutOver);
    // 10 ms over the target: each batch waited 4 × 10 ms — the products' and the orders' at
    // least (how many batches a shop makes depends on its size).
    assert!(throttle.waited() >= std::time::Duration::from_millis(80), "{:?}", throttle.waited());
    assert_eq!(throttle.waited().as_millis() % 40, 0, "whole waits of 40 ms: {:?}", throttle.waited());
    // Fast again: no more waiting.
    for _ in 0..10_000 {
        window.record(std::time::Duration::from_millis(1));
    }
    assert_eq!(throttle.wait(), std::time::Duration::ZERO);
}
