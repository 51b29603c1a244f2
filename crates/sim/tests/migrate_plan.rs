//! `migrate plan` over a legacy shop made by the seed generator (with defects), on SQLite, or on
//! PostgreSQL with `JEMBATAN_TEST_DATABASE_URL`: a dry run changes nothing in either store (every
//! table's rows compared before and after); a real plan records the wave and its merchants in
//! state `legacy` with the dry run's figures, and the defects the transform finds; each kind of
//! selection term picks exactly the shops a query of the legacy rows picks; planning a wave
//! again adds nothing, and a second wave skips the shops of the first.

use std::collections::{BTreeMap, BTreeSet, HashMap};
use std::hash::{Hash, Hasher};
use std::sync::Arc;

use jembatan_core::migrate::plan::PlannedShop;
use jembatan_core::migrate::{PlanReport, PlanRequest, ShopTransform, plan};
use jembatan_core::{Core, CoreError, SystemClock};
use jembatan_domain::Principal;
use jembatan_domain::migration::{MigrationState, Selection};
use jembatan_sim::seed::{SeedOptions, seed};
use jembatan_store::legacy_facts::PAGE_ROWS_MAX;
use jembatan_store::testing::{TestLegacyStore, TestStore, fresh_legacy_store, fresh_store};
use jembatan_store::{Backend, Row, Store, StoreError, q};

const MERCHANTS: u64 = 40;

/// A core store and a legacy store seeded with `MERCHANTS` shops at a defect rate of 5 %.
struct Stores {
    core: Core,
    legacy: TestLegacyStore,
    _core_store: TestStore,
}

async fn seeded() -> Stores {
    let legacy = fresh_legacy_store().await.unwrap();
    let mut options = SeedOptions::new(MERCHANTS, 7, 0.05);
    options.batch_merchants = 16;
    let report = seed(&legacy.store, &options, |_| {}).await.unwrap();
    assert!(report.defects.total() > 0, "the seed made defects to find");
    let core_store = fresh_store().await.unwrap();
    let core = Core::new(core_store.store.clone(), Arc::new(SystemClock));
    Stores { core, legacy, _core_store: core_store }
}

impl Stores {
    async fn plan(&self, wave: &str, select: &str, limit: Option<u64>, dry_run: bool) -> PlanReport {
        self.try_plan(wave, select, limit, dry_run).await.unwrap_or_else(|e| panic!("{wave} `{select}`: {e}"))
    }

    async fn try_plan(
        &self,
        wave: &str,
        select: &str,
        limit: Option<u64>,
        dry_run: bool,
    ) -> Result<PlanReport, CoreError> {
        let request = PlanRequest {
            wave: wave.to_owned(),
            selection: Selection::parse(select).unwrap(),
            merchants_limit: limit,
            dry_run,
        };
        plan(&self.core, &self.legacy.store, &Principal::Operator, request).await
    }

    /// Every table of both stores.
    async fn tables(&self) -> (Tables, Tables) {
        (tables(self.core.store()).await, tables(self.legacy.store.store()).await)
    }

    /// The legacy shop ids a query of the legacy store's own rows returns, in id order.
    async fn shop_ids(&self, sql: &str) -> Vec<String> {
        rows(self.legacy.store.store(), sql.to_owned())
            .await
            .iter()
            .map(|r| r.text("shop_id").unwrap())
            .collect()
    }
}

async fn rows(store: &Store, sql: String) -> Vec<Row> {
    store
        .read(move |conn| Box::pin(async move { Ok::<_, StoreError>(q(sql).fetch_all(conn).await?) }))
        .await
        .unwrap()
}

/// Table name → (rows, digest of every row with every column, independent of row order).
type Tables = BTreeMap<String, (usize, u64)>;

async fn tables(store: &Store) -> Tables {
    let postgres = store.backend() == Backend::Postgres;
    let names = if postgres {
        "SELECT table_name AS name FROM information_schema.tables
         WHERE table_schema = current_schema() AND table_type = 'BASE TABLE'"
    } else {
        "SELECT name FROM sqlite_master WHERE type = 'table'"
    };
    let mut out = Tables::new();
    for name in rows(store, names.to_owned()).await.iter().map(|r| r.text("name").unwrap()) {
        // PostgreSQL renders any column type as JSON text; SQLite's are integers and text.
        let sql = if postgres {
            format!("SELECT CAST(row_to_json(t) AS TEXT) AS r FROM {name} t")
        } else {
            format!("SELECT * FROM {name}")
        };
        let mut lines: Vec<String> = rows(store, sql).await.iter().map(|r| format!("{r:?}")).collect();
        lines.sort();
        let mut hasher = std::hash::DefaultHasher::new();
        lines.hash(&mut hasher);
        out.insert(name, (lines.len(), hasher.finish()));
    }
    assert!(out.len() > 5, "tables found: {out:?}");
    out
}

fn counts(tables: &Tables) -> BTreeMap<&str, usize> {
    tables.iter().map(|(name, (rows, _))| (name.as_str(), *rows)).collect()
}

fn ids(report: &PlanReport) -> Vec<String> {
    report.shops.iter().map(|s| s.shop_id.clone()).collect()
}

/// A shop's figures without its merchant id (a dry run has none for a shop not enrolled).
fn figures(shop: &PlannedShop) -> PlannedShop {
    PlannedShop { merchant_id: None, ..shop.clone() }
}

/// The defects of every shop, counted by (entity, kind), and per shop: the transform run over
/// each shop's rows read in one pass (no chunks, the largest pages).
async fn defects_by_transform(
    stores: &Stores,
    shop_ids: &[String],
) -> (BTreeMap<(&'static str, &'static str), u64>, HashMap<String, u64>) {
    let legacy = &stores.legacy.store;
    let mut transforms: HashMap<String, ShopTransform> =
        shop_ids.iter().map(|id| (id.clone(), ShopTransform::new(id))).collect();
    let (mut by_kind, mut by_shop) = (BTreeMap::new(), HashMap::<String, u64>::new());
    let mut count = |shop: &str, defects: Vec<jembatan_core::migrate::Defect>| {
        *by_shop.entry(shop.to_owned()).or_default() += defects.len() as u64;
        for d in defects {
            *by_kind.entry((d.entity.as_str(), d.kind.as_str())).or_default() += 1;
        }
    };
    let mut after = (String::new(), String::new());
    loop {
        let page = legacy.products_of_shops(shop_ids.to_vec(), after.clone(), PAGE_ROWS_MAX).await.unwrap();
        for row in &page {
            if let Some(Err(defects)) = transforms.get_mut(&row.shop_id).unwrap().product_row(row) {
                count(&row.shop_id, defects);
            }
        }
        match page.last() {
            Some(last) if page.len() as u32 == PAGE_ROWS_MAX => {
                after = (last.shop_id.clone(), last.product_id.clone())
            }
            _ => break,
        }
    }
    let mut after = (String::new(), String::new());
    loop {
        let page = legacy.orders_of_shops(shop_ids.to_vec(), after.clone(), PAGE_ROWS_MAX).await.unwrap();
        for order in &page {
            if let Err(defects) = transforms[&order.shop_id].order(order) {
                count(&order.shop_id, defects);
            }
        }
        match page.last() {
            Some(last) if page.len() as u32 == PAGE_ROWS_MAX => {
                after = (last.shop_id.clone(), last.order_id.clone())
            }
            _ => break,
        }
    }
    (by_kind, by_shop)
}

#[tokio::test]
async fn a_dry_run_writes_nothing_and_a_real_plan_records_what_it_showed() {
    let stores = seeded().await;
    let before = stores.tables().await;
    let dry = stores.plan("first", "all", None, true).await;
    assert_eq!(stores.tables().await, before, "a dry run changes no row of either store");
    assert!(stores.core.store().wave("first").await.unwrap().is_none());

    let all = stores.shop_ids("SELECT shop_id FROM shops ORDER BY shop_id").await;
    assert_eq!(all.len() as u64, MERCHANTS);
    assert_eq!((dry.matched, dry.merchants, dry.skipped_total), (MERCHANTS, MERCHANTS, 0));
    assert_eq!(ids(&dry), all);
    assert!(dry.shops.iter().all(|s| s.merchant_id.is_none()), "a dry run enrols nobody");
    assert_eq!(dry.rows, dry.products + dry.skus + dry.orders + dry.order_items);
    let legacy_counts = counts(&before.1);
    assert_eq!(dry.orders, legacy_counts["orders"] as u64);
    assert_eq!(dry.order_items, legacy_counts["order_items"] as u64);
    let live =
        rows(stores.legacy.store.store(), "SELECT COUNT(*) AS n FROM products WHERE status <> 3".into())
            .await;
    assert_eq!(dry.products, live[0].int("n").unwrap() as u64, "deleted products do not move");
    assert!(dry.gmv.rupiah() > 0);

    // The defects: exactly what the transform finds in the same rows, by kind and by shop.
    let (by_kind, by_shop) = defects_by_transform(&stores, &all).await;
    let reported: BTreeMap<(&str, &str), u64> =
        dry.defects.iter().map(|d| ((d.entity.as_str(), d.kind.as_str()), d.count)).collect();
    assert_eq!(reported, by_kind);
    assert_eq!(dry.defects_total, by_kind.values().sum::<u64>());
    assert!(dry.defects_total > 0 && !dry.defect_examples.is_empty());
    for shop in &dry.shops {
        assert_eq!(shop.defects, by_shop.get(&shop.shop_id).copied().unwrap_or(0), "shop {}", shop.shop_id);
    }
    for kind in ["empty-title", "negative-stock", "duplicate-sku-code", "ambiguous-price", "dangling-product"]
    {
        assert!(by_kind.keys().any(|(_, k)| *k == kind), "the seed's {kind} defects are found: {by_kind:?}");
    }

    // For real: the same figures, the wave and its merchants recorded, the legacy store untouched.
    let real = stores.plan("first", "all", None, false).await;
    assert_eq!(
        (real.merchants, real.products, real.skus, real.orders, real.order_items, real.rows, real.gmv),
        (dry.merchants, dry.products, dry.skus, dry.orders, dry.order_items, dry.rows, dry.gmv)
    );
    assert_eq!((real.defects.clone(), real.defects_total), (dry.defects.clone(), dry.defects_total));
    assert_eq!(
        real.shops.iter().map(figures).collect::<Vec<_>>(),
        dry.shops.iter().map(figures).collect::<Vec<_>>()
    );
    assert!(real.shops.iter().all(|s| s.merchant_id.is_some()), "a real plan enrols every shop");
    let after = stores.tables().await;
    assert_eq!(after.1, before.1, "planning writes nothing to the legacy store");
    assert_ne!(after.0, before.0, "the digest sees the plan in the core");

    let store = stores.core.store();
    let wave = store.wave("first").await.unwrap().expect("the wave is recorded");
    assert_eq!((wave.selection.as_str(), wave.merchants_limit), ("all", None));
    assert_eq!(
        (wave.merchants, wave.rows_planned, wave.gmv_planned, wave.defects_expected),
        (dry.merchants, dry.rows, dry.gmv, dry.defects_total)
    );
    assert_eq!(wave.by_state, vec![(MigrationState::Legacy, MERCHANTS)]);
    let merchants = store.wave_merchants("first", "", 1_000).await.unwrap();
    assert_eq!(merchants.len() as u64, MERCHANTS);
    let planned: HashMap<&str, &PlannedShop> = real.shops.iter().map(|s| (s.shop_id.as_str(), s)).collect();
    for m in &merchants {
        let shop = planned[m.shop_id.as_str()];
        assert_eq!(m.state, MigrationState::Legacy);
        assert_eq!(Some(m.merchant_id), shop.merchant_id);
        assert_eq!(
            (m.rows_planned, m.gmv_planned, m.defects_expected),
            (shop.rows(), shop.gmv, shop.defects)
        );
        let enrolled = store.social_shop(&m.shop_id).await.unwrap().expect("the shop is enrolled");
        assert_eq!((enrolled.merchant_id, enrolled.owner.as_str()), (m.merchant_id, "legacy"));
    }
    let core_counts = counts(&after.0);
    assert_eq!(core_counts["migration_merchants"] as u64, MERCHANTS);
    assert_eq!(core_counts["migration_waves"], 1);
    assert_eq!(core_counts["social_shops"] as u64, MERCHANTS);

    // The same wave again adds nothing: every shop is skipped as in the wave already.
    let again = stores.plan("first", "all", None, false).await;
    assert_eq!((again.merchants, again.skipped_total), (0, MERCHANTS));
    assert_eq!(again.skipped_by_code, vec![("in-wave", MERCHANTS)]);
    assert_eq!(counts(&stores.tables().await.0), core_counts, "no row added");
    // Another selection or limit under the same name is a conflict.
    let conflict = stores.try_plan("first", "seller_type=LOCAL", None, false).await.unwrap_err();
    assert!(matches!(conflict, CoreError::Store(StoreError::Conflict(_))), "{conflict}");
    let conflict = stores.try_plan("first", "all", Some(5), true).await.unwrap_err();
    assert!(matches!(conflict, CoreError::Store(StoreError::Conflict(_))), "{conflict}");
}

#[tokio::test]
async fn selection_terms_pick_exactly_the_shops_a_query_picks() {
    let stores = seeded().await;
    let before = stores.tables().await;
    let local =
        stores.shop_ids("SELECT shop_id FROM shops WHERE seller_type = 'LOCAL' ORDER BY shop_id").await;
    let cross = stores
        .shop_ids("SELECT shop_id FROM shops WHERE seller_type = 'CROSS_BORDER' ORDER BY shop_id")
        .await;
    assert!(!local.is_empty() && !cross.is_empty(), "both seller types are seeded");

    // The province of most local shops, written in capitals (matched ignoring case).
    let provinces = rows(
        stores.legacy.store.store(),
        "SELECT province, COUNT(*) AS n FROM shops WHERE seller_type = 'LOCAL' GROUP BY province ORDER BY n DESC, province"
            .into(),
    )
    .await;
    let province = provinces[0].text("province").unwrap();
    let in_province = stores
        .shop_ids(&format!("SELECT shop_id FROM shops WHERE province = '{province}' ORDER BY shop_id"))
        .await;

    // The median order count: about half the shops are below it.
    let order_counts = rows(
        stores.legacy.store.store(),
        "SELECT s.shop_id, COUNT(o.order_id) AS n FROM shops s LEFT JOIN orders o ON o.shop_id = s.shop_id
         GROUP BY s.shop_id ORDER BY s.shop_id"
            .into(),
    )
    .await;
    let orders_of: BTreeMap<String, i64> =
        order_counts.iter().map(|r| (r.text("shop_id").unwrap(), r.int("n").unwrap())).collect();
    let mut sorted: Vec<i64> = orders_of.values().copied().collect();
    sorted.sort();
    let median = sorted[sorted.len() / 2];
    let below: Vec<String> =
        orders_of.iter().filter(|(_, n)| **n < median).map(|(id, _)| id.clone()).collect();
    assert!(!below.is_empty() && below.len() < MERCHANTS as usize);
    let local_below: Vec<String> = below.iter().filter(|id| local.contains(id)).cloned().collect();

    let all = stores.shop_ids("SELECT shop_id FROM shops ORDER BY shop_id").await;
    let (a, b) = (all[3].clone(), all[17].clone());
    let cases: Vec<(String, Option<u64>, Vec<String>)> = vec![
        ("seller_type=LOCAL".into(), None, local.clone()),
        ("seller_type=cross_border".into(), None, cross),
        (format!("province={}", province.to_uppercase()), None, in_province),
        (format!("orders<{median}"), None, below),
        (format!("shop_id={b}|{a}"), None, vec![a.clone(), b.clone()]),
        (format!("seller_type=LOCAL,orders<{median}"), None, local_below),
        ("all".into(), Some(5), all[..5].to_vec()),
        ("seller_type=LOCAL".into(), Some(3), local[..3].to_vec()),
        ("shop_id=1".into(), None, Vec::new()),
    ];
    for (select, limit, expected) in cases {
        let report = stores.plan("preview", &select, limit, true).await;
        assert_eq!(ids(&report), expected, "`{select}` limit {limit:?}");
        assert_eq!(report.merchants, expected.len() as u64, "`{select}`");
        assert_eq!(report.skipped_total, 0, "`{select}`");
    }
    assert_eq!(stores.tables().await, before, "previews change nothing");
}

#[tokio::test]
async fn a_second_wave_skips_the_shops_of_the_first() {
    let stores = seeded().await;
    let local =
        stores.shop_ids("SELECT shop_id FROM shops WHERE seller_type = 'LOCAL' ORDER BY shop_id").await;
    let first = stores.plan("first", "seller_type=LOCAL", Some(10), false).await;
    assert_eq!(ids(&first), local[..10].to_vec());
    let after_first = stores.tables().await.0;
    let counts_after_first = counts(&after_first);

    // Repeated with its selection and limit: full already, nothing added.
    let again = stores.plan("first", "seller_type=LOCAL", Some(10), false).await;
    assert_eq!(again.merchants, 0);
    assert_eq!(counts(&stores.tables().await.0), counts_after_first);

    // A dry run of the second wave already says which shops it skips, and why.
    let preview = stores.plan("second", "all", None, true).await;
    let second = stores.plan("second", "all", None, false).await;
    for report in [&preview, &second] {
        assert_eq!(report.merchants, MERCHANTS - 10);
        assert_eq!(report.skipped_by_code, vec![("in-wave", 10)]);
        let skipped: Vec<&str> = report.skipped.iter().map(|s| s.shop_id.as_str()).collect();
        assert_eq!(skipped, local[..10].iter().map(String::as_str).collect::<Vec<_>>());
        for s in &report.skipped {
            assert_eq!(s.code, "in-wave");
            assert!(s.reason.contains("wave `first` (legacy)"), "{}", s.reason);
        }
    }
    let store = stores.core.store();
    let in_first: BTreeSet<String> =
        store.wave_merchants("first", "", 1_000).await.unwrap().into_iter().map(|m| m.shop_id).collect();
    let in_second: BTreeSet<String> =
        store.wave_merchants("second", "", 1_000).await.unwrap().into_iter().map(|m| m.shop_id).collect();
    assert!(in_first.is_disjoint(&in_second));
    assert_eq!(in_first.len() + in_second.len(), MERCHANTS as usize);
    let waves = store.waves("", 10).await.unwrap();
    let listed: Vec<(&str, u64)> = waves.iter().map(|w| (w.name.as_str(), w.merchants)).collect();
    assert_eq!(listed, vec![("first", 10), ("second", MERCHANTS - 10)]);
}
