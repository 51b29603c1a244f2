//! The bulk compliance scan over the core's catalogue (issue 6): a cross-border listing under
//! the USD 100 floor (R2) and a listing far below its category's reference price (R7) become
//! findings once, whatever the number of scans; a compliant listing does not. Only the
//! operator scans. On SQLite, or PostgreSQL with `JEMBATAN_TEST_DATABASE_URL`.

use std::sync::Arc;

use jembatan_core::oversight::scan;
use jembatan_core::policy::{BUILT_IN, load};
use jembatan_core::{Core, SystemClock};
use jembatan_domain::*;
use jembatan_store::catalogue::NewProduct;
use jembatan_store::testing::fresh_store;
use jembatan_store::{WriteCtx, new_id};

async fn merchant(core: &Core, origin: Origin, name: &str) -> MerchantId {
    let nib = (origin == Origin::Local).then(|| Nib::parse("1234567890123").unwrap());
    let m = Merchant::new(
        new_id(),
        MerchantName::parse(name).unwrap(),
        origin,
        Province::parse("Bali").unwrap(),
        nib,
        Timestamp::from_unix_ms(0),
    )
    .unwrap();
    let ctx = WriteCtx { actor: Principal::Operator, now: Timestamp::from_unix_ms(1_765_000_000_000) };
    core.store().create_merchant(ctx, m, None).await.unwrap().id
}

async fn listing(core: &Core, merchant_id: MerchantId, category: Category, code: &str, price: i64) -> SkuId {
    let product = NewProduct {
        merchant_id,
        title: ProductTitle::parse("Barang").unwrap(),
        category,
        skus: vec![NewSku {
            code: SkuCode::parse(code).unwrap(),
            price: Price::from_rupiah(price).unwrap(),
            stock: StockLevel::on_hand(5).unwrap(),
        }],
    };
    let ctx =
        WriteCtx { actor: Principal::Merchant(merchant_id), now: Timestamp::from_unix_ms(1_765_000_000_000) };
    core.store().create_product(ctx, product, None).await.unwrap().skus[0].id
}

#[tokio::test]
async fn the_scan_records_each_violation_once_and_names_its_rule_and_article() {
    let t = fresh_store().await.unwrap();
    let core = Core::new(t.store.clone(), Arc::new(SystemClock));
    let policy = load(BUILT_IN).unwrap();
    let day = ::time::macros::date!(2026 - 12 - 08); // Rp16,100.00 per USD in the built-in table
    let abroad = merchant(&core, Origin::CrossBorder, "Global Toys").await;
    let local = merchant(&core, Origin::Local, "Toko Elektronik").await;
    let cheap_import = listing(&core, abroad, Category::Toys, "T-1", 1_609_999).await; // USD 99.99
    listing(&core, abroad, Category::Toys, "T-2", 1_610_000).await; // USD 100.00
    let too_cheap = listing(&core, local, Category::Electronics, "E-1", 89_999).await; // > 70% under 300,000
    listing(&core, local, Category::Electronics, "E-2", 90_000).await;

    assert!(matches!(
        scan(&core, &Principal::Regulator, &policy, day).await,
        Err(jembatan_core::CoreError::Forbidden(_))
    ));
    let first = scan(&core, &Principal::Operator, &policy, day).await.unwrap();
    assert_eq!(first.listings, 4);
    assert_eq!(first.found.get("R2"), Some(&1), "{first:?}");
    assert_eq!(first.found.get("R7"), Some(&1), "{first:?}");
    assert_eq!(first.new, 2);
    assert!(first.not_checked.iter().any(|(rule, _)| rule == "R4"), "what is not checked is said");

    let findings = core.store().findings(None, None, None, None, 10).await.unwrap();
    assert_eq!(findings.len(), 2);
    let r2 = findings.iter().find(|f| f.finding.rule_id == "R2").unwrap();
    assert_eq!(r2.finding.entity_id, cheap_import.to_string());
    assert_eq!(r2.finding.merchant_id, abroad.to_string());
    assert_eq!(r2.finding.article, "Permendag 31/2023 art. 19(1)-(3)");
    assert!(r2.finding.evidence.contains("USD 99.99"), "{}", r2.finding.evidence);
    assert_eq!(r2.state, "open");
    let r7 = findings.iter().find(|f| f.finding.rule_id == "R7").unwrap();
    assert_eq!(r7.finding.entity_id, too_cheap.to_string());
    assert_eq!(r7.finding.severity, "review");

    let again = scan(&core, &Principal::Operator, &policy, day).await.unwrap();
    assert_eq!((again.found.values().sum::<u64>(), again.new), (2, 0), "found again, recorded once");
    let of_local = core.store().findings(Some(local.to_string()), None, None, None, 10).await.unwrap();
    assert_eq!(of_local.len(), 1);
}
