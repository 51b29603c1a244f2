//! The store against the domain's reference model: random sequences of checkouts,
//! cancellations, shipments and recounts run on a real store (SQLite, or PostgreSQL with
//! `JEMBATAN_TEST_DATABASE_URL`) and on `StockLevel`, and must agree at every step — same
//! successes, same refusals, same stock. The SQL encodes the stock rules as conditional
//! updates; this checks it encodes the same rules.

use jembatan_domain::*;
use jembatan_store::catalogue::NewProduct;
use jembatan_store::testing::fresh_store;
use jembatan_store::{StoreError, WriteCtx, new_id};
use proptest::prelude::*;

#[derive(Debug, Clone)]
enum Step {
    Checkout { sku: usize, quantity: i64 },
    Cancel { order: usize },
    PayAndShip { order: usize },
    Recount { sku: usize, on_hand: i64 },
}

fn step() -> impl Strategy<Value = Step> {
    prop_oneof![
        4 => (0usize..2, 1i64..6).prop_map(|(sku, quantity)| Step::Checkout { sku, quantity }),
        2 => any::<usize>().prop_map(|order| Step::Cancel { order }),
        2 => any::<usize>().prop_map(|order| Step::PayAndShip { order }),
        1 => (0usize..2, 0i64..15).prop_map(|(sku, on_hand)| Step::Recount { sku, on_hand }),
    ]
}

fn ctx(actor: Principal) -> WriteCtx {
    WriteCtx { actor, now: Timestamp::from_unix_ms(1_733_000_000_000) }
}

async fn run(initial: [i64; 2], steps: Vec<Step>) -> Result<(), TestCaseError> {
    let t = fresh_store().await.unwrap();
    let store = &t.store;
    let merchant = Merchant::new(
        new_id(),
        MerchantName::parse("Toko Model").unwrap(),
        Origin::Local,
        Province::parse("Bali").unwrap(),
        Some(Nib::parse("1234567890123").unwrap()),
        Timestamp::from_unix_ms(0),
    )
    .unwrap();
    let m = store.create_merchant(ctx(Principal::Operator), merchant, None).await.unwrap().id;
    let product = NewProduct {
        merchant_id: m,
        title: ProductTitle::parse("Teh Melati").unwrap(),
        category: Category::Food,
        skus: (0..2)
            .map(|i| NewSku {
                code: SkuCode::parse(&format!("T{i}")).unwrap(),
                price: Price::from_rupiah(3_000).unwrap(),
                stock: StockLevel::on_hand(initial[i]).unwrap(),
            })
            .collect(),
    };
    let record = store.create_product(ctx(Principal::Merchant(m)), product, None).await.unwrap();
    let skus: Vec<SkuId> = record.skus.iter().map(|s| s.id).collect();
    let mut model: Vec<StockLevel> = skus
        .iter()
        .map(|id| {
            let i = record.skus.iter().position(|s| s.id == *id).unwrap();
            StockLevel::on_hand(record.skus[i].stock.units_on_hand().into()).unwrap()
        })
        .collect();
    // Open orders: (order id, sku index, quantity).
    let mut open: Vec<(OrderId, usize, Quantity)> = Vec::new();
    let address =
        ShippingAddress::parse("Ayu", "081234567890", "Jl. Kartini 5", "Denpasar", "Bali", "80111").unwrap();
    for step in steps {
        match step {
            Step::Checkout { sku, quantity } => {
                let q = Quantity::new(quantity).unwrap();
                let request = CheckoutRequest::new(
                    Channel::Marketplace,
                    BuyerId::parse("b").unwrap(),
                    vec![CheckoutLine { sku_id: skus[sku], quantity: q }],
                    address.clone(),
                    PaymentMethod::VirtualAccount,
                )
                .unwrap();
                let got = store
                    .checkout(
                        ctx(Principal::Channel(Channel::Marketplace)),
                        request,
                        jembatan_store::testing::test_payment(),
                        None,
                    )
                    .await;
                match (model[sku].reserve(q), got) {
                    (Ok(next), Ok(checkout)) => {
                        model[sku] = next;
                        open.push((checkout.orders[0].id, sku, q));
                    }
                    (
                        Err(DomainError::InsufficientStock { .. }),
                        Err(StoreError::Domain(DomainError::InsufficientStock { .. })),
                    ) => {}
                    (want, got) => prop_assert!(false, "checkout: model {want:?}, store {got:?}"),
                }
            }
            Step::Cancel { order } if !open.is_empty() => {
                let (id, sku, q) = open.swap_remove(order % open.len());
                store
                    .transition_order(
                        ctx(Principal::Channel(Channel::Marketplace)),
                        id,
                        OrderAction::Cancel,
                        None,
                    )
                    .await
                    .unwrap();
                model[sku] = model[sku].release(q);
            }
            Step::PayAndShip { order } if !open.is_empty() => {
                let (id, sku, q) = open.swap_remove(order % open.len());
                store.transition_order(ctx(Principal::Provider), id, OrderAction::Pay, None).await.unwrap();
                store
                    .transition_order(ctx(Principal::Merchant(m)), id, OrderAction::Ship, None)
                    .await
                    .unwrap();
                model[sku] = model[sku].commit_sale(q);
            }
            Step::Recount { sku, on_hand } => {
                let got = store
                    .set_stock(
                        ctx(Principal::Merchant(m)),
                        m,
                        skus[sku],
                        StockLevel::on_hand(on_hand).unwrap(),
                        None,
                    )
                    .await;
                match (model[sku].set_on_hand(on_hand), got) {
                    (Ok(next), Ok(_)) => model[sku] = next,
                    (
                        Err(DomainError::StockBelowReserved { .. }),
                        Err(StoreError::Domain(DomainError::StockBelowReserved { .. })),
                    ) => {}
                    (want, got) => prop_assert!(false, "recount: model {want:?}, store {got:?}"),
                }
            }
            _ => {}
        }
        for (i, id) in skus.iter().enumerate() {
            let stored = store.sku(*id).await.unwrap().unwrap().stock;
            prop_assert_eq!(stored, model[i], "sku {} after {} open orders", i, open.len());
        }
    }
    Ok(())
}

proptest! {
    #![proptest_config(ProptestConfig { cases: 24, ..ProptestConfig::default() })]
    #[test]
    fn the_store_keeps_the_stock_rules_of_the_model(
        initial in [0i64..12, 0i64..12],
        steps in prop::collection::vec(step(), 1..25),
    ) {
        let runtime = tokio::runtime::Runtime::new().unwrap();
        runtime.block_on(run(initial, steps))?;
    }
}
