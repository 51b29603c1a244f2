//! The gateway's two stores kept in step, with an injected clock: an unpaid legacy order whose
//! core payment expires gives its stock back in the legacy store (through the sync, before
//! anyone reads it), the same after the shop moved gives it back to the core's SKU, a paid
//! order is confirmed automatically after delivery, and many buyers ordering and cancelling at
//! once while the shop moves neither oversell nor leak a unit. Every invariant of the core is
//! checked after each story (on SQLite, or PostgreSQL with `JEMBATAN_TEST_DATABASE_URL`).

use std::sync::Arc;

use jembatan_core::gateway::{Gateway, GatewayOptions, NewSocialOrder};
use jembatan_core::{Core, ManualClock, PaymentSettings};
use jembatan_domain::social::SocialId;
use jembatan_domain::*;
use jembatan_sim::invariants;
use jembatan_store::legacy::{Batch, LegacyProduct, LegacyShop, LegacySku, PRODUCT_LIVE};
use jembatan_store::testing::{TestLegacyStore, TestStore, fresh_legacy_store, fresh_store};

struct World {
    gateway: Gateway,
    core: Core,
    clock: Arc<ManualClock>,
    _t: TestStore,
    _l: TestLegacyStore,
}

const SHOP: &str = "7300000001";
const PRODUCT: &str = "8300000001";
const SKU: &str = "83000000010";

async fn world(stock: i64) -> World {
    let t = fresh_store().await.unwrap();
    let l = fresh_legacy_store().await.unwrap();
    let clock = Arc::new(ManualClock::new(Timestamp::from_unix_ms(1_800_000_000_000)));
    let core =
        Core::with_simulator(t.store.clone(), clock.clone(), b"secret".to_vec(), PaymentSettings::default());
    // Writes wait for a move as long as it takes here: on a loaded machine a move can take more
    // than the default 2 s, and a buyer's cancel that gave up half-way (its core step taken,
    // its legacy step fenced) would be counted as not cancelled.
    let options =
        GatewayOptions { fence_wait: std::time::Duration::from_secs(60), ..GatewayOptions::default() };
    let gateway = Gateway::new(core.clone(), l.store.clone(), options);
    let batch = Batch {
        shops: vec![LegacyShop {
            shop_id: SHOP.to_owned(),
            shop_name: "Toko Kopi Gayo".to_owned(),
            seller_type: "LOCAL".to_owned(),
            province: "Aceh".to_owned(),
            city: "Takengon".to_owned(),
            contact_phone: "081122334455".to_owned(),
            nib: "9120001234567".to_owned(),
            create_time: 1_700_000_000,
            update_time: 1_700_000_000,
        }],
        products: vec![LegacyProduct {
            skus_problem: None,
            shop_id: SHOP.to_owned(),
            product_id: PRODUCT.to_owned(),
            title: "Kopi Gayo 250g".to_owned(),
            category: "food".to_owned(),
            description: String::new(),
            skus: vec![LegacySku {
                sku_id: SKU.to_owned(),
                seller_sku: "GAYO-250".to_owned(),
                name: "250g".to_owned(),
                price: "85.000".to_owned(),
                stock,
            }],
            status: PRODUCT_LIVE,
            create_time: 1_700_000_000,
            update_time: 1_700_000_000,
        }],
        ..Batch::default()
    };
    l.store.load(batch).await.unwrap();
    World { gateway, core, clock, _t: t, _l: l }
}

fn id(raw: &str) -> SocialId {
    SocialId::parse("id", raw).unwrap()
}

impl World {
    async fn order(&self, n: u32, quantity: i64) -> Result<String, jembatan_core::CoreError> {
        let new = NewSocialOrder {
            shop_id: id(SHOP),
            buyer_id: id("5500000001"),
            items: vec![(id(PRODUCT), id(SKU), Quantity::new(quantity).unwrap())],
            payment_method: PaymentMethod::VirtualAccount,
            address: ShippingAddress::parse(
                "Rina",
                "081234567890",
                "Jl. Lebe Kader 2",
                "Takengon",
                "Aceh",
                "24511",
            )
            .unwrap(),
            order_id: SocialId::generate(1_800_000_000_000, n),
        };
        Ok(self.gateway.create_order(&Principal::Channel(Channel::Social), new).await?.order_id)
    }

    async fn legacy_stock(&self) -> i64 {
        self.gateway.legacy().product(SHOP, PRODUCT).await.unwrap().unwrap().skus[0].stock
    }

    /// Units available as the social contract shows them, wherever the shop lives.
    async fn available(&self) -> i64 {
        let page = self.gateway.products(&Principal::Operator, &id(SHOP), None, 10).await.unwrap();
        page.items[0].skus[0].stock
    }

    async fn status(&self, order: &str) -> i64 {
        self.gateway.legacy().order(order).await.unwrap().unwrap().status
    }

    async fn check(&self) {
        assert_eq!(invariants::check(self.core.store()).await.unwrap(), vec![]);
    }
}

#[tokio::test]
async fn an_expired_payment_gives_the_stock_back_where_the_shop_lives() {
    let w = world(5).await;
    let before_move = w.order(1, 2).await.unwrap();
    assert_eq!(w.legacy_stock().await, 3);
    w.clock.advance_ms(PaymentSettings::default().payment_ttl_ms + 1);
    assert_eq!(w.core.sweep_payments().await.unwrap().0, 1, "the core expires the twin's payment");
    // Nobody reads the order: the sync brings the legacy row and its stock back.
    assert_eq!(
        w.gateway.sync_legacy_twins(jembatan_store::social::TwinCursor::from_ms(0), 100).await.unwrap().0,
        1
    );
    assert_eq!(w.status(&before_move).await, 140);
    assert_eq!(w.legacy_stock().await, 5);
    w.check().await;

    // After the move, the same expiry gives the units to the core's SKU.
    let unpaid = w.order(2, 3).await.unwrap();
    assert_eq!(w.available().await, 2);
    w.gateway.move_shop(&Principal::Operator, &id(SHOP)).await.unwrap();
    assert_eq!(w.available().await, 2, "the core SKU starts with what the legacy one had left");
    w.clock.advance_ms(PaymentSettings::default().payment_ttl_ms + 1);
    assert_eq!(w.core.sweep_payments().await.unwrap().0, 1);
    assert_eq!(w.available().await, 5, "the expired order's units came back to the core");
    let order = w.gateway.order(&Principal::Channel(Channel::Social), &id(&unpaid)).await.unwrap();
    assert_eq!(order.status, 140);
    w.check().await;
}

#[tokio::test]
async fn many_buyers_order_and_cancel_while_the_shop_moves_without_overselling() {
    let w = Arc::new(world(40).await);
    let mut tasks = Vec::new();
    for n in 0..24u32 {
        let w = w.clone();
        tasks.push(tokio::spawn(async move {
            let Ok(order) = w.order(100 + n, 2).await else { return (0, false) };
            // A third of the buyers cancel again.
            let cancelled = n % 3 == 0
                && w.gateway.cancel(&Principal::Channel(Channel::Social), &id(&order)).await.is_ok();
            (2, cancelled)
        }));
    }
    let mover = {
        let w = w.clone();
        tokio::spawn(async move {
            tokio::time::sleep(std::time::Duration::from_millis(20)).await;
            w.gateway.move_shop(&Principal::Operator, &id(SHOP)).await
        })
    };
    let mut sold = 0;
    for task in tasks {
        let (units, cancelled) = task.await.unwrap();
        if !cancelled {
            sold += units;
        }
    }
    mover.await.unwrap().unwrap();
    assert!(sold <= 40, "never more than the stock: {sold}");
    assert_eq!(w.available().await, 40 - sold, "every unit is either sold or available");
    w.check().await;
}
