//! `jembatan seed` on SQLite, or on PostgreSQL with `JEMBATAN_TEST_DATABASE_URL`: the same seed
//! gives the same rows (through either load path), another seed other rows; the data has what
//! the legacy shop has (every status, every phone form, both seller types, digit ids); defects
//! appear at the rate asked, each kind countable by a query, and none at rate 0; the change
//! capture is back after the seed.

use std::collections::{BTreeMap, HashMap, HashSet};
use std::hash::{Hash, Hasher};

use jembatan_domain::social::{PriceProblem, parse_price};
use jembatan_sim::seed::{Defects, LoadPath, SeedOptions, SeedReport, seed};
use jembatan_store::legacy::{LegacySku, LegacyStore, ProductEdit, parse_skus};
use jembatan_store::testing::{TestLegacyStore, fresh_legacy_store};
use jembatan_store::{Row, StoreError, q};

async fn seeded(merchants: u64, seed_value: u64, rate: f64, path: LoadPath) -> (TestLegacyStore, SeedReport) {
    let test = fresh_legacy_store().await.unwrap();
    let mut options = SeedOptions::new(merchants, seed_value, rate);
    options.batch_merchants = 16; // several batches even in small tests
    options.load_path = path;
    let report = seed(&test.store, &options, |_| {}).await.unwrap();
    (test, report)
}

async fn rows(store: &LegacyStore, sql: &'static str) -> Vec<Row> {
    store
        .store()
        .read(move |conn| Box::pin(async move { Ok::<_, StoreError>(q(sql).fetch_all(conn).await?) }))
        .await
        .unwrap()
}

async fn count(store: &LegacyStore, sql: &'static str) -> i64 {
    rows(store, sql).await[0].int("n").unwrap()
}

/// Every table, every column, in key order (ids are digits: the order is the same under any
/// collation).
const TABLES: &[(&str, &[&str])] = &[
    (
        "SELECT * FROM shops ORDER BY shop_id",
        &[
            "shop_id",
            "shop_name",
            "seller_type",
            "province",
            "city",
            "contact_phone",
            "create_time",
            "update_time",
        ],
    ),
    (
        "SELECT * FROM products ORDER BY shop_id, product_id",
        &[
            "shop_id",
            "product_id",
            "title",
            "category",
            "description",
            "skus",
            "status",
            "create_time",
            "update_time",
        ],
    ),
    (
        "SELECT * FROM buyers ORDER BY buyer_id",
        &["buyer_id", "nickname", "phone", "email", "birth_date", "gender", "follower_count", "create_time"],
    ),
    (
        "SELECT * FROM orders ORDER BY shop_id, order_id",
        &[
            "shop_id",
            "order_id",
            "buyer_id",
            "status",
            "payment_method",
            "total_amount",
            "recipient_name",
            "recipient_phone",
            "address_detail",
            "city",
            "province",
            "postal_code",
            "create_time",
            "update_time",
        ],
    ),
    (
        "SELECT * FROM order_items ORDER BY shop_id, order_id, item_no",
        &[
            "shop_id",
            "order_id",
            "item_no",
            "product_id",
            "sku_id",
            "product_title",
            "quantity",
            "unit_price",
        ],
    ),
];

async fn checksum(store: &LegacyStore) -> (u64, usize) {
    let mut hasher = std::hash::DefaultHasher::new();
    let mut total = 0;
    for (sql, columns) in TABLES {
        let rows = rows(store, sql).await;
        total += rows.len();
        for row in &rows {
            for column in *columns {
                format!("{:?}", row.value(column).unwrap()).hash(&mut hasher);
            }
        }
    }
    (hasher.finish(), total)
}

#[tokio::test]
async fn the_same_seed_gives_the_same_rows_and_another_seed_other_rows() {
    let (a, report_a) = seeded(40, 5, 0.05, LoadPath::Bulk).await;
    let (b, report_b) = seeded(40, 5, 0.05, LoadPath::Generic).await;
    let (c, _) = seeded(40, 6, 0.05, LoadPath::Bulk).await;
    let (sum_a, rows_a) = checksum(&a.store).await;
    assert_eq!(rows_a as u64, report_a.generated.rows());
    assert_eq!(checksum(&b.store).await, (sum_a, rows_a), "the bulk and generic paths write the same rows");
    assert_eq!(report_a.defects, report_b.defects);
    assert_ne!(checksum(&c.store).await.0, sum_a);
}

#[tokio::test]
async fn the_data_looks_like_the_legacy_shop() {
    let (test, report) = seeded(60, 42, 0.01, LoadPath::Bulk).await;
    let store = &test.store;
    let counts: HashMap<&str, i64> = report.counts.iter().copied().collect();
    assert_eq!(counts["shops"], 60);
    assert_eq!(counts["products"] as u64, report.generated.products);
    assert_eq!(counts["orders"] as u64, report.generated.orders);
    assert_eq!(counts["order_items"] as u64, report.generated.order_items);
    assert!(
        report.generated.products > 60 * 5 && report.generated.orders > 60 * 15,
        "{:?}",
        report.generated
    );

    let statuses: HashSet<i64> = rows(store, "SELECT DISTINCT status FROM orders")
        .await
        .iter()
        .map(|r| r.int("status").unwrap())
        .collect();
    assert_eq!(statuses, HashSet::from([100, 111, 112, 121, 122, 130, 140]));
    let methods: HashSet<String> = rows(store, "SELECT DISTINCT payment_method FROM orders")
        .await
        .iter()
        .map(|r| r.text("payment_method").unwrap())
        .collect();
    assert_eq!(methods, ["VA", "QRIS", "EWALLET", "COD"].map(String::from).into());
    for form in [
        "SELECT COUNT(*) AS n FROM buyers WHERE phone LIKE '08%'",
        "SELECT COUNT(*) AS n FROM buyers WHERE phone LIKE '628%'",
        "SELECT COUNT(*) AS n FROM buyers WHERE phone LIKE '+628%'",
    ] {
        assert!(count(store, form).await > 0, "{form}");
    }
    let sellers: HashSet<String> = rows(store, "SELECT DISTINCT seller_type FROM shops")
        .await
        .iter()
        .map(|r| r.text("seller_type").unwrap())
        .collect();
    assert_eq!(sellers, ["LOCAL", "CROSS_BORDER"].map(String::from).into());
    assert_eq!(
        count(
            store,
            "SELECT COUNT(*) AS n FROM shops WHERE seller_type = 'CROSS_BORDER' AND province <> 'Overseas'"
        )
        .await,
        0
    );
    assert_eq!(count(store, "SELECT COUNT(*) AS n FROM orders WHERE update_time < create_time").await, 0);
    assert_eq!(count(store, "SELECT COUNT(*) AS n FROM products WHERE update_time < create_time").await, 0);
    // Every item is of a product of the order's own shop.
    assert_eq!(
        count(
            store,
            "SELECT COUNT(*) AS n FROM order_items i LEFT JOIN products p
               ON p.shop_id = i.shop_id AND p.product_id = i.product_id WHERE p.product_id IS NULL"
        )
        .await,
        0
    );
    assert_eq!(
        count(store, "SELECT COUNT(*) AS n FROM order_items WHERE item_no NOT BETWEEN 1 AND 3").await,
        0
    );

    // Ids: digits, unique across every kind.
    let mut ids = HashSet::new();
    for (sql, column) in [
        ("SELECT shop_id AS id FROM shops", "id"),
        ("SELECT product_id AS id FROM products", "id"),
        ("SELECT buyer_id AS id FROM buyers", "id"),
        ("SELECT order_id AS id FROM orders", "id"),
    ] {
        for row in rows(store, sql).await {
            let id = row.text(column).unwrap();
            assert!(!id.is_empty() && id.len() <= 20 && id.bytes().all(|b| b.is_ascii_digit()), "{id}");
            assert!(ids.insert(id.clone()), "{id} twice");
        }
    }
    for (_, skus) in products(store).await {
        for sku in skus {
            assert!(sku.sku_id.bytes().all(|b| b.is_ascii_digit()), "{}", sku.sku_id);
            assert!(ids.insert(sku.sku_id.clone()), "{} twice", sku.sku_id);
        }
    }

    // The seed is the history before capture; capture works after it.
    assert!(store.changes_since(0, 10).await.unwrap().is_empty());
    let shop =
        rows(store, "SELECT shop_id, product_id FROM products WHERE status = 1 ORDER BY product_id").await;
    let (shop_id, product_id) = (shop[0].text("shop_id").unwrap(), shop[0].text("product_id").unwrap());
    let edit = ProductEdit { title: Some("Kemeja Batik Baru".into()), ..Default::default() };
    store.edit_product(&shop_id, &product_id, edit, 1_800_000_000).await.unwrap();
    let changes = store.changes_since(0, 10).await.unwrap();
    assert_eq!(changes.len(), 1);
    assert_eq!((changes[0].row_key.as_str(), changes[0].op.as_str()), (product_id.as_str(), "U"));
}

/// (shop id, SKUs) of every product.
async fn products(store: &LegacyStore) -> Vec<(String, Vec<LegacySku>)> {
    rows(store, "SELECT shop_id, skus FROM products ORDER BY shop_id, product_id")
        .await
        .iter()
        .map(|r| (r.text("shop_id").unwrap(), parse_skus(&r.text("skus").unwrap()).unwrap()))
        .collect()
}

/// Counts each defect kind from the stored rows alone.
async fn defects_found(store: &LegacyStore) -> Defects {
    let mut found = Defects::default();
    let mut codes: HashMap<(String, String), u64> = HashMap::new();
    let mut skus_of: HashMap<String, HashSet<String>> = HashMap::new();
    for row in rows(store, "SELECT shop_id, product_id, skus FROM products").await {
        let (shop_id, product_id) = (row.text("shop_id").unwrap(), row.text("product_id").unwrap());
        for sku in parse_skus(&row.text("skus").unwrap()).unwrap() {
            *codes.entry((shop_id.clone(), sku.seller_sku.clone())).or_default() += 1;
            found.negative_stock += u64::from(sku.stock < 0);
            match parse_price(&sku.price) {
                Err(PriceProblem::Ambiguous { .. }) => found.ambiguous_price += 1,
                Err(PriceProblem::Unparseable) => found.unparseable_price += 1,
                Err(other) => panic!("{}: {other:?}", sku.price),
                Ok(_) => {}
            }
            skus_of.entry(product_id.clone()).or_default().insert(sku.sku_id);
        }
    }
    found.duplicate_sku_code = codes.values().map(|n| n - 1).sum();
    found.empty_title = count(store, "SELECT COUNT(*) AS n FROM products WHERE title = ''").await as u64;
    found.order_of_deleted_product = count(
        store,
        "SELECT COUNT(DISTINCT i.order_id) AS n FROM order_items i JOIN products p
           ON p.shop_id = i.shop_id AND p.product_id = i.product_id WHERE p.status = 3",
    )
    .await as u64;
    let mut missing: HashSet<String> = HashSet::new();
    for row in rows(store, "SELECT order_id, product_id, sku_id FROM order_items").await {
        let known = skus_of.get(&row.text("product_id").unwrap());
        if !known.is_some_and(|skus| skus.contains(&row.text("sku_id").unwrap())) {
            missing.insert(row.text("order_id").unwrap());
        }
    }
    found.order_of_missing_sku = missing.len() as u64;
    found
}

#[tokio::test]
async fn every_defect_kind_appears_at_a_high_rate_and_is_counted_right() {
    let (test, report) = seeded(40, 3, 0.3, LoadPath::Bulk).await;
    for (kind, n) in report.defects.kinds() {
        assert!(n > 0, "no {kind}");
    }
    assert_eq!(defects_found(&test.store).await, report.defects);
}

#[tokio::test]
async fn rate_zero_gives_clean_consistent_data() {
    let (test, report) = seeded(50, 11, 0.0, LoadPath::Bulk).await;
    let store = &test.store;
    assert_eq!(report.defects, Defects::default());
    assert_eq!(defects_found(store).await, Defects::default());
    for (_, skus) in products(store).await {
        for sku in skus {
            assert!((0..=500).contains(&sku.stock), "{}", sku.stock);
        }
    }
    // Every amount reads, and each total is the sum of its items.
    let mut totals: BTreeMap<String, i64> = BTreeMap::new();
    for item in rows(store, "SELECT order_id, quantity, unit_price FROM order_items").await {
        let price = parse_price(&item.text("unit_price").unwrap()).unwrap().rupiah();
        *totals.entry(item.text("order_id").unwrap()).or_default() += price * item.int("quantity").unwrap();
    }
    let orders = rows(store, "SELECT order_id, total_amount FROM orders").await;
    assert_eq!(orders.len(), totals.len());
    let mut formats = HashSet::new();
    for order in orders {
        let written = order.text("total_amount").unwrap();
        formats.insert(if written.ends_with(".00") {
            "decimals"
        } else if written.contains('.') {
            "grouped"
        } else {
            "plain"
        });
        assert_eq!(
            parse_price(&written).unwrap().rupiah(),
            totals[&order.text("order_id").unwrap()],
            "{written}"
        );
    }
    assert_eq!(formats.len(), 3, "prices are written the three ways");
}

#[tokio::test]
async fn a_store_with_rows_is_refused_and_bad_options_say_why() {
    let (test, _) = seeded(3, 1, 0.01, LoadPath::Bulk).await;
    let again = seed(&test.store, &SeedOptions::new(3, 1, 0.01), |_| {}).await;
    let message = again.err().expect("a second seed is refused").to_string();
    assert!(message.contains("not empty"), "{message}");
    for (options, says) in [
        (SeedOptions::new(0, 1, 0.01), "--merchants"),
        (SeedOptions::new(1, 1, 1.5), "--defect-rate"),
        (SeedOptions::new(1, 1, -0.1), "--defect-rate"),
        (SeedOptions::new(1, 1, f64::NAN), "--defect-rate"),
    ] {
        let message = options.validate().expect_err("refused").to_string();
        assert!(message.contains(says), "{message}");
    }
}
