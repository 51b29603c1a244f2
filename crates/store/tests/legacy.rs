//! The social shop's legacy store on SQLite or PostgreSQL: every write lands in the changelog
//! in order, a fenced shop's writes are refused inside their own transaction, orders take and
//! give back stock, defective legacy rows are storable.

use jembatan_domain::social::LegacyStatus;
use jembatan_store::StoreError;
use jembatan_store::legacy::*;
use jembatan_store::testing::fresh_legacy_store;

fn shop(id: &str) -> LegacyShop {
    LegacyShop {
        shop_id: id.to_owned(),
        shop_name: "Toko Batik Sari".to_owned(),
        seller_type: "LOCAL".to_owned(),
        province: "Jawa Tengah".to_owned(),
        city: "Surakarta".to_owned(),
        contact_phone: "0812-3456-7890".to_owned(),
        nib: "9120001234567".to_owned(),
        create_time: 1_700_000_000,
        update_time: 1_700_000_000,
    }
}

fn product(shop_id: &str, id: &str, price: &str, stock: i64) -> LegacyProduct {
    LegacyProduct {
        skus_problem: None,
        shop_id: shop_id.to_owned(),
        product_id: id.to_owned(),
        title: "Kemeja batik".to_owned(),
        category: "fashion".to_owned(),
        description: String::new(),
        skus: vec![LegacySku {
            sku_id: format!("{id}01"),
            seller_sku: "BTK-M".to_owned(),
            name: "M".to_owned(),
            price: price.to_owned(),
            stock,
        }],
        status: PRODUCT_LIVE,
        create_time: 1_700_000_000,
        update_time: 1_700_000_000,
    }
}

fn order(shop_id: &str, id: &str, product_id: &str, quantity: i64) -> NewLegacyOrder {
    NewLegacyOrder {
        shop_id: shop_id.to_owned(),
        order_id: id.to_owned(),
        buyer_id: "555".to_owned(),
        payment_method: "VA".to_owned(),
        recipient_name: "Ayu".to_owned(),
        recipient_phone: "081234567890".to_owned(),
        address_detail: "Jl. Slamet Riyadi 1".to_owned(),
        city: "Surakarta".to_owned(),
        province: "Jawa Tengah".to_owned(),
        postal_code: "57111".to_owned(),
        items: vec![NewItem {
            product_id: product_id.to_owned(),
            sku_id: format!("{product_id}01"),
            quantity,
        }],
        now_s: 1_700_000_100,
    }
}

#[tokio::test]
async fn writes_are_captured_in_order_and_fences_refuse_writes() {
    let legacy = fresh_legacy_store().await.unwrap().store;
    let batch = Batch {
        shops: vec![shop("11"), shop("12")],
        products: vec![product("11", "2101", "149.000", 5), product("12", "2201", "1.500", -3)],
        ..Batch::default()
    };
    legacy.load(batch).await.unwrap();
    let start = legacy.changes_since(0, 100).await.unwrap();
    assert_eq!(start.len(), 4, "{start:?}");

    // An order prices itself from the SKU ("149.000" = Rp149,000) and takes the stock.
    let created = legacy.create_order(order("11", "9001", "2101", 2)).await.unwrap();
    assert_eq!(created.total_amount, "298000");
    assert_eq!(created.status, 100);
    assert_eq!(legacy.product("11", "2101").await.unwrap().unwrap().skus[0].stock, 3);
    // Not more than is there; an ambiguous price is refused with the reason.
    assert!(matches!(
        legacy.create_order(order("11", "9002", "2101", 4)).await,
        Err(StoreError::Domain(jembatan_domain::DomainError::InsufficientStock { .. }))
    ));
    let ambiguous = legacy.create_order(order("12", "9003", "2201", 1)).await.unwrap_err();
    assert!(ambiguous.to_string().contains("ambiguous"), "{ambiguous}");

    let changes = legacy.changes_since(start.last().unwrap().position, 100).await.unwrap();
    let tables: Vec<&str> = changes.iter().map(|c| c.table_name.as_str()).collect();
    assert_eq!(tables, ["products", "orders", "order_items"], "{changes:?}");
    assert!(changes.windows(2).all(|w| w[0].position < w[1].position));

    // Fenced: every write of that shop is refused inside its transaction, others go on.
    legacy.fence("11", "moving to core", 1).await.unwrap();
    let refused =
        legacy.set_order_status("9001", vec![LegacyStatus::Unpaid], LegacyStatus::Cancelled, 2).await;
    assert!(matches!(refused, Err(StoreError::Fenced(_))), "{refused:?}");
    let refused = legacy.create_order(order("11", "9004", "2101", 1)).await;
    assert!(matches!(refused, Err(StoreError::Fenced(_))), "{refused:?}");
    legacy
        .edit_product("12", "2201", ProductEdit { title: Some("Sarung".into()), ..Default::default() }, 3)
        .await
        .unwrap();
    let after_fence = legacy.changes_since(changes.last().unwrap().position, 100).await.unwrap();
    assert_eq!(after_fence.len(), 1);
    assert_eq!(after_fence[0].shop_id, "12");
    assert_eq!(legacy.order("9001").await.unwrap().unwrap().status, 100, "nothing of a refused write stays");
    assert_eq!(legacy.product("11", "2101").await.unwrap().unwrap().skus[0].stock, 3);

    legacy.unfence("11").await.unwrap();
    let cancelled = legacy
        .set_order_status("9001", vec![LegacyStatus::Unpaid], LegacyStatus::Cancelled, 4)
        .await
        .unwrap();
    assert_eq!(cancelled.status, 140);
    assert_eq!(legacy.product("11", "2101").await.unwrap().unwrap().skus[0].stock, 5, "stock given back");
}

#[tokio::test]
async fn capture_can_be_removed_for_a_bulk_load_and_installed_again() {
    let legacy = fresh_legacy_store().await.unwrap().store;
    remove_capture(legacy.store()).await.unwrap();
    legacy.load(Batch { shops: vec![shop("31")], ..Batch::default() }).await.unwrap();
    assert!(legacy.changes_since(0, 10).await.unwrap().is_empty());
    install_capture(legacy.store()).await.unwrap();
    install_capture(legacy.store()).await.unwrap();
    legacy.load(Batch { shops: vec![shop("32")], ..Batch::default() }).await.unwrap();
    assert_eq!(legacy.changes_since(0, 10).await.unwrap().len(), 1);
}

/// The migration engine tails one shop by its own change number and checkpoints the last one
/// seen. With writers committing concurrently (a pool on PostgreSQL, where global positions
/// are handed out before commit), a tailer that only ever asks for numbers above its
/// checkpoint must still see every change exactly once.
#[tokio::test]
async fn a_shop_tailed_by_its_own_numbers_loses_no_change_under_concurrent_writers() {
    let legacy = fresh_legacy_store().await.unwrap().store;
    let stock = 1_000;
    legacy
        .load(Batch {
            shops: vec![shop("41"), shop("42")],
            products: vec![product("41", "4101", "10000", stock), product("42", "4201", "10000", stock)],
            ..Batch::default()
        })
        .await
        .unwrap();
    let head = legacy.shop_head("41").await.unwrap();
    assert_eq!(head, 2, "the shop and its product");
    let writers = 8;
    let per_writer = 15;
    let done = std::sync::Arc::new(std::sync::atomic::AtomicBool::new(false));
    let tailer = {
        let legacy = legacy.clone();
        let done = done.clone();
        tokio::spawn(async move {
            let mut checkpoint = head;
            let mut seen = Vec::new();
            loop {
                let finished = done.load(std::sync::atomic::Ordering::SeqCst);
                let changes = legacy.shop_changes("41", checkpoint, 7).await.unwrap();
                for change in &changes {
                    assert_eq!(change.shop_id, "41");
                    assert_eq!(change.shop_seq, checkpoint + 1, "numbers follow commit order, none skipped");
                    checkpoint = change.shop_seq;
                    seen.push(change.position);
                }
                if changes.is_empty() {
                    if finished {
                        return seen;
                    }
                    tokio::task::yield_now().await;
                }
            }
        })
    };
    let mut tasks = Vec::new();
    for w in 0..writers {
        let legacy = legacy.clone();
        tasks.push(tokio::spawn(async move {
            for i in 0..per_writer {
                // Shop 41 gets orders (an order row, its items, the product's stock); shop 42
                // interleaves its own writes.
                let id = format!("{}", 900_000 + w * 1_000 + i);
                legacy.create_order(order("41", &id, "4101", 1)).await.unwrap();
                legacy.create_order(order("42", &format!("{id}2"), "4201", 1)).await.unwrap();
            }
        }));
    }
    for task in tasks {
        task.await.unwrap();
    }
    done.store(true, std::sync::atomic::Ordering::SeqCst);
    let seen = tailer.await.unwrap();
    let all: Vec<i64> = {
        let mut all = Vec::new();
        let mut after = head;
        loop {
            let page = legacy.shop_changes("41", after, 500).await.unwrap();
            let Some(last) = page.last() else { break };
            after = last.shop_seq;
            all.extend(page.iter().map(|c| c.position));
        }
        all
    };
    assert_eq!(all.len(), (writers * per_writer * 3) as usize, "orders, items, stock");
    assert_eq!(seen, all, "the tailer saw every change once, in number order");
    assert_eq!(legacy.shop_head("41").await.unwrap(), head + all.len() as i64);
}
