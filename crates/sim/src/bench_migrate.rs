//! `jembatan bench migrate`: the live migration's figures on a seeded social shop (issue 5).
//!
//! Fresh stores (SQLite files in a temporary directory, or fresh PostgreSQL schemas), a seed of
//! N merchants, a plan of all of them, then:
//! 1. **Baseline**: the same legacy rows (products, orders, order items) copied by the database
//!    alone — `INSERT INTO … SELECT` into a fresh database, what a raw `sqlite3` copy does —
//!    and, for a fairer second line, read and written row by row through the driver in
//!    transactions of 500 rows.
//! 2. **Live latency without migration**: an open-loop load through the gateway (order reads,
//!    catalogue reads, new orders) at a fixed rate, latency measured from each call's
//!    scheduled time.
//! 3. **Migration under the same load**: `migrate run` of every merchant (copy, catch-up,
//!    verify, cutover) while the load goes on; rows/s of the whole (copied + transformed +
//!    verified, over the plan's rows), the cutover pauses, and the load's latency during it.
//!
//! The report gives the migration's rows/s, its ratio to each baseline, the pause p50/p99/max
//! and the live p99 during the migration over the p99 without.

use std::sync::Arc;
use std::sync::atomic::{AtomicBool, Ordering};
use std::time::{Duration, Instant};

use jembatan_core::gateway::{Gateway, GatewayOptions, NewSocialOrder};
use jembatan_core::migrate::progress::progress;
use jembatan_core::migrate::{Engine, EngineOptions, PlanRequest, ShopTransform, plan};
use jembatan_core::{Core, PaymentSettings, SystemClock};
use jembatan_domain::migration::Selection;
use jembatan_domain::social::SocialId;
use jembatan_domain::{Channel, PaymentMethod, Principal, Quantity, ShippingAddress};
use jembatan_store::legacy::{LegacyStore, PRODUCT_LIVE};
use jembatan_store::{Store, StoreOptions};

#[derive(Debug, Clone)]
pub struct MigrateBenchOptions {
    /// `None`: SQLite files in a temporary directory; `postgres://…`: fresh schemas.
    pub database_url: Option<String>,
    pub merchants: u64,
    pub defect_rate: f64,
    pub parallel: usize,
    pub batch_rows: usize,
    /// Calls per second of the live load.
    pub load_rate_per_s: u32,
    /// Length of the load without migration.
    pub quiet: Duration,
}

impl Default for MigrateBenchOptions {
    fn default() -> Self {
        MigrateBenchOptions {
            database_url: None,
            merchants: 500,
            defect_rate: 0.01,
            parallel: 4,
            batch_rows: 500,
            load_rate_per_s: 100,
            quiet: Duration::from_secs(10),
        }
    }
}

#[derive(Debug, Clone, Default)]
pub struct Latency {
    pub calls: usize,
    pub errors: usize,
    pub p50_ms: f64,
    pub p99_ms: f64,
}

#[derive(Debug, Clone, Default)]
pub struct MigrateBenchReport {
    pub backend: &'static str,
    pub merchants: u64,
    /// Rows of the plan: products, SKUs, orders, order items.
    pub rows: u64,
    pub plan_s: f64,
    pub migrate_s: f64,
    pub rows_per_s: f64,
    /// Legacy rows (products, orders, items) the baselines copy.
    pub baseline_rows: u64,
    pub bulk_copy_s: f64,
    pub row_copy_s: f64,
    pub cut_over: u64,
    pub not_cut_over: u64,
    pub quarantined: u64,
    pub pause_p50_ms: Option<f64>,
    pub pause_p99_ms: Option<f64>,
    pub pause_max_ms: Option<f64>,
    pub load_rate_per_s: u32,
    /// Seconds all merchants spent in each phase, summed: start, copy, catch-up + verify, cutover.
    pub phase_s: [f64; 4],
    pub live_without: Latency,
    pub live_during: Latency,
}

impl MigrateBenchReport {
    pub fn render(&self) -> String {
        let ms = |v: Option<f64>| v.map_or_else(|| "-".to_owned(), |v| format!("{v:.1} ms"));
        let mut out = String::new();
        out.push_str(&format!(
            "migrate bench on {}: {} merchants, {} rows planned (products, SKUs, orders, items)\n",
            self.backend, self.merchants, self.rows
        ));
        out.push_str(&format!("  plan (all merchants): {:.2} s\n", self.plan_s));
        out.push_str(&format!(
            "  migration under load: {:.2} s, {:.0} rows/s (copied + transformed + verified), {} cut over, {} not, {} rows quarantined\n",
            self.migrate_s, self.rows_per_s, self.cut_over, self.not_cut_over, self.quarantined
        ));
        out.push_str(&format!(
            "  baseline, the database alone (INSERT … SELECT of {} legacy rows): {:.3} s; the migration takes {:.1}× as long ({:.1}% of its speed)\n",
            self.baseline_rows,
            self.bulk_copy_s,
            self.migrate_s / self.bulk_copy_s.max(1e-9),
            100.0 * self.bulk_copy_s / self.migrate_s.max(1e-9)
        ));
        out.push_str(&format!(
            "  baseline, row by row through the driver (500 rows a transaction): {:.3} s; the migration takes {:.1}× as long ({:.1}% of its speed)\n",
            self.row_copy_s,
            self.migrate_s / self.row_copy_s.max(1e-9),
            100.0 * self.row_copy_s / self.migrate_s.max(1e-9)
        ));
        out.push_str(&format!(
            "  merchant-seconds by phase (summed over merchants in parallel): start {:.1}, copy {:.1}, catch-up + verify {:.1}, cutover {:.1}\n",
            self.phase_s[0], self.phase_s[1], self.phase_s[2], self.phase_s[3]
        ));
        out.push_str(&format!(
            "  cutover pause: p50 {}, p99 {}, max {}\n",
            ms(self.pause_p50_ms),
            ms(self.pause_p99_ms),
            ms(self.pause_max_ms)
        ));
        out.push_str(&format!(
            "  live load ({} calls/s through the gateway): without migration p50 {:.2} ms p99 {:.2} ms ({} calls, {} errors); during p50 {:.2} ms p99 {:.2} ms ({} calls, {} errors); p99 ratio {:.2}×\n",
            self.load_rate_per_s,
            self.live_without.p50_ms,
            self.live_without.p99_ms,
            self.live_without.calls,
            self.live_without.errors,
            self.live_during.p50_ms,
            self.live_during.p99_ms,
            self.live_during.calls,
            self.live_during.errors,
            self.live_during.p99_ms / self.live_without.p99_ms.max(1e-9)
        ));
        out
    }
}

pub async fn migrate(options: &MigrateBenchOptions) -> anyhow::Result<MigrateBenchReport> {
    let dir = tempfile::tempdir()?;
    let (core_options, legacy_options, backend) = match &options.database_url {
        Some(url) => (
            StoreOptions::new(jembatan_store::testing::postgres_schema_url(url, "bench").await?),
            StoreOptions::new(jembatan_store::testing::postgres_schema_url(url, "bench").await?),
            "postgresql",
        ),
        None => (StoreOptions::sqlite_in(dir.path()), StoreOptions::legacy_sqlite_in(dir.path()), "sqlite"),
    };
    let legacy_url = legacy_options.url.clone();
    let store = Store::open(core_options).await?;
    let legacy = LegacyStore::open(legacy_options).await?;
    let seed = crate::seed::SeedOptions::new(options.merchants, 42, options.defect_rate);
    crate::seed::seed(&legacy, &seed, |_| {}).await?;
    let core = Core::with_simulator(
        store.clone(),
        Arc::new(SystemClock),
        b"bench".to_vec(),
        PaymentSettings::default(),
    );
    let gateway = Gateway::new(core.clone(), legacy.clone(), GatewayOptions::default());

    let started = Instant::now();
    let request = PlanRequest {
        wave: "bench".to_owned(),
        selection: Selection::parse("all").map_err(|e| anyhow::anyhow!("{e}"))?,
        merchants_limit: None,
        dry_run: false,
    };
    let planned = plan(&core, &legacy, &Principal::Operator, request).await?;
    let plan_s = started.elapsed().as_secs_f64();

    let (baseline_rows, bulk_copy_s, row_copy_s) = baseline(&legacy_url, dir.path(), options).await?;

    // The live load's targets: orders to read, shops to browse, products to order.
    let mut targets = Targets::default();
    for shop in planned.shops.iter().take(200) {
        let mut tf = ShopTransform::new(&shop.shop_id);
        for p in legacy.products(&shop.shop_id, "", 100).await? {
            if p.status == PRODUCT_LIVE
                && let Ok(draft) = tf.product(&p)
                && draft.skus.len() == p.skus.len()
                && let Some(sku) = p.skus.iter().find(|s| s.stock > 100)
            {
                targets.products.push((shop.shop_id.clone(), p.product_id.clone(), sku.sku_id.clone()));
            }
        }
        for o in legacy.orders(&shop.shop_id, None, "", 5).await? {
            targets.orders.push(o.order_id);
        }
        targets.shops.push(shop.shop_id.clone());
    }
    anyhow::ensure!(
        !targets.products.is_empty() && !targets.orders.is_empty(),
        "the seed has nothing to load"
    );
    let targets = Arc::new(targets);

    let live_without =
        open_loop(&gateway, &targets, options.load_rate_per_s, Stop::After(options.quiet), 0).await;

    let engine = Engine::new(
        gateway.clone(),
        EngineOptions { batch_rows: options.batch_rows, ..EngineOptions::default() },
    );
    let stop = Arc::new(AtomicBool::new(false));
    let load = {
        let (gateway, targets, stop) = (gateway.clone(), targets.clone(), stop.clone());
        let rate = options.load_rate_per_s;
        tokio::spawn(async move { open_loop(&gateway, &targets, rate, Stop::Flag(stop), 1_000_000).await })
    };
    let started = Instant::now();
    let mut runs = 0;
    let mut phase_s = [0f64; 4];
    loop {
        runs += 1;
        let report = engine.run(&Principal::Operator, Some("bench".to_owned()), options.parallel).await?;
        for m in &report.merchants {
            for (total, us) in phase_s.iter_mut().zip(m.phase_us) {
                *total += us as f64 / 1e6;
            }
        }
        if report.merchants.iter().all(|m| {
            m.state.is_final() || m.state.as_str() == "cut_over" || m.state.as_str() == "quarantined"
        }) || runs >= 5
        {
            break;
        }
    }
    let migrate_s = started.elapsed().as_secs_f64();
    stop.store(true, Ordering::Relaxed);
    let live_during = load.await?;

    let p = progress(&core, &legacy, &Principal::Operator).await?;
    let o = &p.overall;
    Ok(MigrateBenchReport {
        backend,
        merchants: planned.merchants,
        rows: planned.rows,
        plan_s,
        migrate_s,
        rows_per_s: planned.rows as f64 / migrate_s,
        baseline_rows,
        bulk_copy_s,
        row_copy_s,
        cut_over: o.merchants_moved,
        not_cut_over: o.merchants - o.merchants_moved,
        quarantined: p.quarantine.open + p.quarantine.accepted,
        pause_p50_ms: o.cutover_pause_p50_ms,
        pause_p99_ms: o.cutover_pause_p99_ms,
        pause_max_ms: o.cutover_pause_max_ms,
        load_rate_per_s: options.load_rate_per_s,
        phase_s,
        live_without,
        live_during,
    })
}

#[derive(Default)]
struct Targets {
    products: Vec<(String, String, String)>,
    orders: Vec<String>,
    shops: Vec<String>,
}

enum Stop {
    After(Duration),
    Flag(Arc<AtomicBool>),
}

/// Calls at a fixed rate, each on its own task, latency from its scheduled time: a third order
/// reads, a third catalogue reads, a third new orders.
async fn open_loop(gateway: &Gateway, targets: &Arc<Targets>, rate: u32, stop: Stop, salt: u32) -> Latency {
    let interval = Duration::from_secs_f64(1.0 / f64::from(rate.max(1)));
    let started = Instant::now();
    let mut tasks = Vec::new();
    let mut n: u32 = 0;
    loop {
        let done = match &stop {
            Stop::After(d) => started.elapsed() >= *d,
            Stop::Flag(f) => f.load(Ordering::Relaxed),
        };
        if done {
            break;
        }
        let scheduled = started + interval * n;
        tokio::time::sleep_until(scheduled.into()).await;
        n += 1;
        let (gateway, targets) = (gateway.clone(), targets.clone());
        tasks.push(tokio::spawn(async move {
            let ok = match n % 3 {
                0 => {
                    let order = &targets.orders[n as usize % targets.orders.len()];
                    gateway.order(&Principal::Operator, &sid(order)).await.is_ok()
                }
                1 => {
                    let shop = &targets.shops[n as usize % targets.shops.len()];
                    gateway.products(&Principal::Operator, &sid(shop), None, 20).await.is_ok()
                }
                _ => {
                    let (shop, product, sku) = &targets.products[n as usize % targets.products.len()];
                    let new = NewSocialOrder {
                        shop_id: sid(shop),
                        buyer_id: sid(&format!("57{:08}", n % 997)),
                        items: vec![(sid(product), sid(sku), Quantity::new(1).expect("one"))],
                        payment_method: PaymentMethod::VirtualAccount,
                        address: ShippingAddress::parse(
                            "Dewi",
                            "081298765432",
                            "Jl. Gajah Mada 3",
                            "Semarang",
                            "Jawa Tengah",
                            "50134",
                        )
                        .expect("a valid address"),
                        order_id: SocialId::generate(
                            1_800_000_000_000 + i64::from(salt),
                            n.wrapping_add(salt),
                        ),
                    };
                    gateway.create_order(&Principal::Channel(Channel::Social), new).await.is_ok()
                }
            };
            (scheduled.elapsed(), ok)
        }));
    }
    let mut latencies = Vec::with_capacity(tasks.len());
    let mut errors = 0;
    for task in tasks {
        if let Ok((latency, ok)) = task.await {
            latencies.push(latency.as_secs_f64() * 1000.0);
            if !ok {
                errors += 1;
            }
        }
    }
    latencies.sort_by(f64::total_cmp);
    let at = |q: f64| {
        if latencies.is_empty() {
            0.0
        } else {
            latencies[((q * latencies.len() as f64).ceil() as usize).clamp(1, latencies.len()) - 1]
        }
    };
    Latency { calls: latencies.len(), errors, p50_ms: at(0.5), p99_ms: at(0.99) }
}

fn sid(raw: &str) -> SocialId {
    SocialId::parse("id", raw).expect("a seeded id")
}

/// The legacy rows copied by the database alone, and row by row through the driver.
async fn baseline(
    legacy_url: &str,
    dir: &std::path::Path,
    options: &MigrateBenchOptions,
) -> anyhow::Result<(u64, f64, f64)> {
    const TABLES: [&str; 3] = ["products", "orders", "order_items"];
    match &options.database_url {
        None => {
            let legacy_path = legacy_url.trim_start_matches("sqlite://").to_owned();
            let dir = dir.to_owned();
            tokio::task::spawn_blocking(move || -> anyhow::Result<(u64, f64, f64)> {
                let mut rows = 0u64;
                // 1. INSERT … SELECT, as sqlite3 would.
                let bulk = rusqlite::Connection::open(dir.join("baseline-bulk.sqlite"))?;
                bulk.pragma_update(None, "journal_mode", "WAL")?;
                bulk.execute("ATTACH DATABASE ?1 AS legacy", [&legacy_path])?;
                let started = Instant::now();
                bulk.execute_batch("BEGIN")?;
                for table in TABLES {
                    bulk.execute_batch(&format!("CREATE TABLE {table} AS SELECT * FROM legacy.{table}"))?;
                    rows += bulk
                        .query_row(&format!("SELECT COUNT(*) FROM {table}"), [], |r| r.get::<_, i64>(0))?
                        as u64;
                }
                bulk.execute_batch("COMMIT")?;
                let bulk_s = started.elapsed().as_secs_f64();
                // 2. Row by row through the driver.
                let source = rusqlite::Connection::open(&legacy_path)?;
                let mut target = rusqlite::Connection::open(dir.join("baseline-rows.sqlite"))?;
                target.pragma_update(None, "journal_mode", "WAL")?;
                for table in TABLES {
                    let sql: String = source.query_row(
                        "SELECT sql FROM sqlite_master WHERE type = 'table' AND name = ?1",
                        [table],
                        |r| r.get(0),
                    )?;
                    target.execute_batch(&sql)?;
                }
                let started = Instant::now();
                for table in TABLES {
                    let mut read = source.prepare(&format!("SELECT * FROM {table}"))?;
                    let columns = read.column_count();
                    let insert = format!(
                        "INSERT INTO {table} VALUES ({})",
                        (1..=columns).map(|i| format!("?{i}")).collect::<Vec<_>>().join(", ")
                    );
                    let mut cursor = read.query([])?;
                    let mut tx = target.transaction()?;
                    let mut in_tx = 0;
                    while let Some(row) = cursor.next()? {
                        let values: Vec<rusqlite::types::Value> =
                            (0..columns).map(|i| row.get(i)).collect::<Result<_, _>>()?;
                        tx.prepare_cached(&insert)?.execute(rusqlite::params_from_iter(values))?;
                        in_tx += 1;
                        if in_tx == 500 {
                            tx.commit()?;
                            tx = target.transaction()?;
                            in_tx = 0;
                        }
                    }
                    tx.commit()?;
                }
                Ok((rows, bulk_s, started.elapsed().as_secs_f64()))
            })
            .await?
        }
        Some(url) => {
            use sqlx::Connection;
            let legacy_schema = legacy_url
                .split("search_path%3D")
                .nth(1)
                .or_else(|| legacy_url.split("search_path=").nth(1))
                .map(|s| s.split('&').next().unwrap_or(s).to_owned())
                .ok_or_else(|| anyhow::anyhow!("cannot tell the legacy schema from {legacy_url}"))?;
            let target_url = jembatan_store::testing::postgres_schema_url(url, "baseline").await?;
            let mut conn = sqlx::PgConnection::connect(&target_url).await?;
            let mut rows = 0u64;
            let started = Instant::now();
            let mut tx = conn.begin().await?;
            for table in TABLES {
                let done = sqlx::query(sqlx::AssertSqlSafe(format!(
                    "CREATE TABLE {table} AS SELECT * FROM {legacy_schema}.{table}"
                )))
                .execute(&mut *tx)
                .await?;
                rows += done.rows_affected();
            }
            tx.commit().await?;
            let bulk_s = started.elapsed().as_secs_f64();
            // Row by row on PostgreSQL is not measured: the bulk copy is the stricter line.
            Ok((rows, bulk_s, bulk_s))
        }
    }
}
