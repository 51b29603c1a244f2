//! `jembatan bench checkout`: concurrent checkouts over HTTP on loopback against a fresh store,
//! and in the same run the baseline — the same rows written by a minimal loop straight into the
//! database (one transaction per checkout, same durability settings, no HTTP, no JSON).
//!
//! Two load shapes: *closed loop* (N workers, each sends its next checkout when the last one is
//! answered) gives the throughput; *open loop* at a fixed rate (requests leave on a schedule
//! whatever the answers do, latency measured from the scheduled time so queueing is not
//! hidden) gives the latency at that rate.

use std::sync::Arc;
use std::time::{Duration, Instant};

use anyhow::Context;
use http_body_util::{BodyExt, Full};
use hyper::body::Bytes;
use hyper_util::client::legacy::Client;
use hyper_util::client::legacy::connect::HttpConnector;
use hyper_util::rt::TokioExecutor;
use jembatan_api::{ApiLimits, AppState};
use jembatan_core::{Core, NewMerchant, SystemClock};
use jembatan_domain::*;
use jembatan_store::catalogue::NewProduct;
use jembatan_store::{Store, StoreOptions, q};
use rand::Rng;
use rand::SeedableRng;
use rand::rngs::StdRng;

#[derive(Debug, Clone)]
pub struct BenchOptions {
    /// `None`: a fresh SQLite store in a temporary directory. `postgres://…`: a fresh schema.
    pub database_url: Option<String>,
    pub duration_s: u64,
    pub concurrency: usize,
    pub rate_per_s: u32,
    pub merchants: usize,
    pub skus_per_merchant: usize,
    pub baseline_checkouts: usize,
}

impl Default for BenchOptions {
    fn default() -> Self {
        BenchOptions {
            database_url: None,
            duration_s: 10,
            concurrency: 64,
            rate_per_s: 1_000,
            merchants: 20,
            skus_per_merchant: 50,
            baseline_checkouts: 5_000,
        }
    }
}

#[derive(Debug, Clone)]
pub struct LoadFigures {
    pub checkouts: usize,
    pub errors: usize,
    pub per_s: f64,
    pub p50_ms: f64,
    pub p99_ms: f64,
    pub max_ms: f64,
}

#[derive(Debug, Clone)]
pub struct BenchReport {
    pub backend: String,
    pub closed_loop: LoadFigures,
    pub open_loop: LoadFigures,
    pub baseline_per_s: f64,
    /// The same loop with 64 checkouts per transaction: what batching alone reaches.
    pub batched_baseline_per_s: f64,
    /// Closed loop of paid checkouts: each worker checks out, then the provider's signed
    /// callback pays it (two requests; latency of the pair).
    pub paid: LoadFigures,
}

impl BenchReport {
    pub fn render(&self, options: &BenchOptions) -> String {
        let c = &self.closed_loop;
        let o = &self.open_loop;
        format!(
            "backend: {backend}\n\
             closed loop, {conc} workers, {dur} s: {cps:.0} checkouts/s, p50 {p50:.2} ms, p99 {p99:.2} ms, max {max:.1} ms ({n} ok, {e} errors)\n\
             open loop at {rate}/s, {dur} s: achieved {ocps:.0}/s, p50 {op50:.2} ms, p99 {op99:.2} ms, max {omax:.1} ms ({on} ok, {oe} errors)\n\
             baseline (raw {backend}, same rows, one transaction per checkout): {base:.0} checkouts/s\n\
             batched ceiling (raw {backend}, same rows, 64 checkouts per transaction): {batched:.0} checkouts/s\n\
             ratio (closed loop / baseline): {ratio:.0}%; (closed loop / batched ceiling): {ratio_batched:.0}%\n\
             paid checkouts (checkout + signed callback), {conc} workers, {dur} s: {pps:.0}/s, p50 {pp50:.2} ms, p99 {pp99:.2} ms ({pn} ok, {pe} errors)\n",
            backend = self.backend,
            conc = options.concurrency,
            dur = options.duration_s,
            cps = c.per_s,
            p50 = c.p50_ms,
            p99 = c.p99_ms,
            max = c.max_ms,
            n = c.checkouts,
            e = c.errors,
            rate = options.rate_per_s,
            ocps = o.per_s,
            op50 = o.p50_ms,
            op99 = o.p99_ms,
            omax = o.max_ms,
            on = o.checkouts,
            oe = o.errors,
            base = self.baseline_per_s,
            ratio = 100.0 * c.per_s / self.baseline_per_s.max(1.0),
            batched = self.batched_baseline_per_s,
            ratio_batched = 100.0 * c.per_s / self.batched_baseline_per_s.max(1.0),
            pps = self.paid.per_s,
            pp50 = self.paid.p50_ms,
            pp99 = self.paid.p99_ms,
            pn = self.paid.checkouts,
            pe = self.paid.errors,
        )
    }
}

struct Target {
    client: Client<HttpConnector, Full<Bytes>>,
    url: String,
    token: String,
    skus: Vec<SkuId>,
    callback_url: String,
    simulator: Arc<jembatan_core::SimulatedProvider>,
}

pub async fn checkout(options: &BenchOptions) -> anyhow::Result<BenchReport> {
    let dir = tempfile::tempdir()?;
    let (store_options, backend) = match &options.database_url {
        Some(url) => (
            StoreOptions::new(jembatan_store::testing::postgres_schema_url(url, "bench").await?),
            "postgresql",
        ),
        None => (StoreOptions::sqlite_in(dir.path()), "sqlite"),
    };
    let store = Store::open(store_options.clone()).await?;
    let core = Core::new(store, Arc::new(SystemClock));
    let skus = seed_catalogue(&core, options.merchants, options.skus_per_merchant).await?;
    let (token, _) =
        core.issue_token(&Principal::Operator, Principal::Channel(Channel::Marketplace), "bench").await?;
    let listener = tokio::net::TcpListener::bind("127.0.0.1:0").await?;
    let address = listener.local_addr()?;
    let simulator = core.simulator().context("the simulator is the provider")?.clone();
    let state = AppState::new(core, ApiLimits::default());
    let server = tokio::spawn(jembatan_api::serve(listener, state, std::future::pending()));
    let client = Client::builder(TokioExecutor::new()).pool_max_idle_per_host(1024).build_http();
    let target = Arc::new(Target {
        client,
        url: format!("http://{address}/v1/checkouts"),
        token,
        skus,
        callback_url: format!("http://{address}/v1/payments/callbacks"),
        simulator,
    });

    // Warm up connections and caches.
    closed_loop(&target, options.concurrency, Duration::from_secs(1), false).await?;
    let duration = Duration::from_secs(options.duration_s);
    let closed = closed_loop(&target, options.concurrency, duration, false).await?;
    let open = open_loop(&target, options.rate_per_s, duration).await?;
    let paid = closed_loop(&target, options.concurrency, duration, true).await?;
    server.abort();

    let (baseline_per_s, batched_baseline_per_s) = match &options.database_url {
        Some(url) => (baseline_postgres(url, options, 1).await?, baseline_postgres(url, options, 64).await?),
        None => {
            (baseline_sqlite(dir.path(), options, 1).await?, baseline_sqlite(dir.path(), options, 64).await?)
        }
    };
    Ok(BenchReport {
        backend: backend.to_owned(),
        closed_loop: closed,
        open_loop: open,
        baseline_per_s,
        batched_baseline_per_s,
        paid,
    })
}

/// Checks out, then pays by the provider's signed callback; true if both succeeded.
async fn checkout_and_pay(target: &Target, body: String, key: String) -> anyhow::Result<bool> {
    let request = hyper::Request::post(&target.url)
        .header("authorization", format!("Bearer {}", target.token))
        .header("content-type", "application/json")
        .header("idempotency-key", key)
        .body(Full::new(Bytes::from(body)))?;
    let response = target.client.request(request).await?;
    if response.status() != hyper::StatusCode::CREATED {
        return Ok(false);
    }
    let created: serde_json::Value =
        serde_json::from_slice(&response.into_body().collect().await?.to_bytes())?;
    let payment = &created["payment"];
    let callback = serde_json::json!({
        "event": "payment.paid",
        "payment_id": payment["id"],
        "provider_ref": payment["provider_ref"],
        "amount": payment["amount"]["amount"],
    })
    .to_string();
    let now = Timestamp::from_unix_ms(
        std::time::SystemTime::now().duration_since(std::time::UNIX_EPOCH)?.as_millis() as i64,
    );
    let (timestamp, signature) = target.simulator.sign(&callback, now);
    let request = hyper::Request::post(&target.callback_url)
        .header("content-type", "application/json")
        .header(jembatan_core::payments::TIMESTAMP_HEADER, timestamp)
        .header(jembatan_core::payments::SIGNATURE_HEADER, signature)
        .body(Full::new(Bytes::from(callback)))?;
    let response = target.client.request(request).await?;
    let status = response.status();
    response.into_body().collect().await?;
    Ok(status == hyper::StatusCode::OK)
}

async fn seed_catalogue(
    core: &Core,
    merchants: usize,
    skus_per_merchant: usize,
) -> anyhow::Result<Vec<SkuId>> {
    let mut skus = Vec::new();
    for m in 0..merchants {
        let merchant = core
            .create_merchant(
                &Principal::Operator,
                NewMerchant {
                    name: MerchantName::parse(&format!("Toko Bench {m:03}"))?,
                    origin: Origin::Local,
                    province: Province::parse(merchant::PROVINCES[m % merchant::PROVINCES.len()])?,
                    nib: Some(Nib::parse(&format!("{:013}", 9_120_000_000_000u64 + m as u64))?),
                },
                None,
            )
            .await?;
        let product = NewProduct {
            merchant_id: merchant.id,
            title: ProductTitle::parse("Kaos Polos Katun Combed 30s")?,
            category: Category::Fashion,
            skus: (0..skus_per_merchant)
                .map(|i| {
                    Ok(NewSku {
                        code: SkuCode::parse(&format!("KAOS-{i:03}"))?,
                        price: Price::from_rupiah(35_000 + 1_000 * i as i64)?,
                        stock: StockLevel::on_hand(i64::from(limits::STOCK_UNITS_MAX))?,
                    })
                })
                .collect::<Result<_, DomainError>>()?,
        };
        let record = core.create_product(&Principal::Merchant(merchant.id), product, None).await?;
        skus.extend(record.skus.iter().map(|s| s.id));
    }
    Ok(skus)
}

fn cart_body(rng: &mut StdRng, skus: &[SkuId]) -> String {
    let lines = rng.random_range(1..=3);
    let items: Vec<String> = (0..lines)
        .map(|_| {
            format!(
                r#"{{"sku_id":"{}","quantity":{}}}"#,
                skus[rng.random_range(0..skus.len())],
                rng.random_range(1..=3)
            )
        })
        .collect();
    format!(
        r#"{{"buyer_id":"bench-{}","items":[{}],"shipping_address":{{"recipient_name":"Siti Rahayu","phone":"081234567890","street":"Jl. Braga No. 12","city":"Bandung","province":"Jawa Barat","postal_code":"40111"}},"payment_method":"qris"}}"#,
        rng.random_range(0..100_000),
        items.join(",")
    )
}

/// Sends one checkout; returns whether it was created.
async fn send(target: &Target, body: String, key: String) -> anyhow::Result<bool> {
    let request = hyper::Request::post(&target.url)
        .header("authorization", format!("Bearer {}", target.token))
        .header("content-type", "application/json")
        .header("idempotency-key", key)
        .body(Full::new(Bytes::from(body)))?;
    let response = target.client.request(request).await?;
    let status = response.status();
    response.into_body().collect().await?;
    Ok(status == hyper::StatusCode::CREATED)
}

fn figures(mut latencies_ms: Vec<f64>, errors: usize, elapsed: Duration) -> LoadFigures {
    latencies_ms.sort_by(|a, b| a.total_cmp(b));
    let at = |q: f64| -> f64 {
        if latencies_ms.is_empty() {
            return 0.0;
        }
        latencies_ms[((latencies_ms.len() as f64 - 1.0) * q).round() as usize]
    };
    LoadFigures {
        checkouts: latencies_ms.len(),
        errors,
        per_s: latencies_ms.len() as f64 / elapsed.as_secs_f64(),
        p50_ms: at(0.50),
        p99_ms: at(0.99),
        max_ms: latencies_ms.last().copied().unwrap_or(0.0),
    }
}

/// `workers` each send their next request when the last one is answered: a checkout, or with
/// `paid` a checkout and then its signed payment callback.
async fn closed_loop(
    target: &Arc<Target>,
    workers: usize,
    duration: Duration,
    paid: bool,
) -> anyhow::Result<LoadFigures> {
    let started = Instant::now();
    let deadline = started + duration;
    let mut tasks = Vec::with_capacity(workers);
    for w in 0..workers {
        let target = target.clone();
        tasks.push(tokio::spawn(async move {
            let mut rng = StdRng::seed_from_u64(w as u64 + rand::rng().random::<u64>());
            let (mut latencies, mut errors) = (Vec::new(), 0usize);
            while Instant::now() < deadline {
                let body = cart_body(&mut rng, &target.skus);
                let sent = Instant::now();
                let key = format!("bench-{}", rng.random::<u128>());
                let done = if paid {
                    checkout_and_pay(&target, body, key).await
                } else {
                    send(&target, body, key).await
                };
                match done {
                    Ok(true) => latencies.push(sent.elapsed().as_secs_f64() * 1e3),
                    _ => errors += 1,
                }
            }
            (latencies, errors)
        }));
    }
    let (mut latencies, mut errors) = (Vec::new(), 0);
    for task in tasks {
        let (l, e) = task.await.context("bench worker")?;
        latencies.extend(l);
        errors += e;
    }
    Ok(figures(latencies, errors, started.elapsed()))
}

async fn open_loop(target: &Arc<Target>, rate_per_s: u32, duration: Duration) -> anyhow::Result<LoadFigures> {
    let interval = Duration::from_secs_f64(1.0 / f64::from(rate_per_s.max(1)));
    let started = tokio::time::Instant::now();
    let total = (duration.as_secs_f64() * f64::from(rate_per_s)) as u64;
    let mut rng = StdRng::seed_from_u64(rand::rng().random());
    let mut tasks = Vec::with_capacity(total as usize);
    for i in 0..total {
        let scheduled = started + interval.mul_f64(i as f64);
        tokio::time::sleep_until(scheduled).await;
        let target = target.clone();
        let body = cart_body(&mut rng, &target.skus);
        let key = format!("bench-open-{}", rng.random::<u128>());
        tasks.push(tokio::spawn(async move {
            let ok = matches!(send(&target, body, key).await, Ok(true));
            (ok, scheduled.elapsed().as_secs_f64() * 1e3)
        }));
    }
    let (mut latencies, mut errors) = (Vec::new(), 0);
    for task in tasks {
        match task.await.context("bench request")? {
            (true, ms) => latencies.push(ms),
            (false, _) => errors += 1,
        }
    }
    Ok(figures(latencies, errors, started.elapsed()))
}

/// The rows of one checkout as the core writes them: reserve each line, the checkout, one order
/// with its lines, an outbox event and an audit entry per order and for the checkout, the
/// idempotency record, and the checkout's payment.
const BASELINE_SQL: [&str; 8] = [
    "UPDATE skus SET stock_reserved = stock_reserved + $1 WHERE sku_id = $2 AND stock_on_hand - stock_reserved >= $1 RETURNING merchant_id, price_idr",
    "INSERT INTO checkouts (checkout_id, channel, buyer_id, payment_method, total_idr, orders_count, created_at_ms) VALUES ($1, 'marketplace', 'b', 'qris', $2, 1, $3)",
    "INSERT INTO orders (merchant_id, order_id, checkout_id, channel, buyer_id, status, payment_method, total_idr, recipient_name, recipient_phone, street, city, province, postal_code, created_at_ms, updated_at_ms, version) VALUES ($1, $2, $3, 'marketplace', 'b', 'awaiting_payment', 'qris', $4, 'Siti Rahayu', '+6281234567890', 'Jl. Braga No. 12', 'Bandung', 'Jawa Barat', '40111', $5, $5, 1)",
    "INSERT INTO order_lines (merchant_id, order_id, line_no, sku_id, quantity, unit_price_idr, line_total_idr) VALUES ($1, $2, $3, $4, $5, $6, $7)",
    "INSERT INTO outbox (event_id, event_type, entity_type, entity_id, merchant_id, channel, payload, created_at_ms) VALUES ($1, 'order.created', 'order', $2, $3, 'marketplace', '{}', $4)",
    "INSERT INTO audit_log (audit_id, at_ms, actor_role, actor_subject, action, entity_type, entity_id, merchant_id, detail) VALUES ($1, $2, 'channel', 'marketplace', 'order.create', 'order', $3, $4, '{}')",
    "INSERT INTO idempotency_keys (scope, idem_key, request_sha256, state, status_code, response_body, created_at_ms) VALUES ('channel:marketplace', $1, 'x', 'completed', 201, '{}', $2)",
    "INSERT INTO payments (payment_id, checkout_id, method, amount_idr, status, provider, provider_ref, qris_payload, expires_at_ms, created_at_ms, updated_at_ms) VALUES ($1, $2, 'qris', 70000, 'pending', 'simulator', $1, '000201010212', $3, $3, $3)",
];

async fn sku_rows(store: &Store) -> anyhow::Result<Vec<(String, String)>> {
    let rows = store
        .read(|conn| {
            Box::pin(async move { Ok(q("SELECT merchant_id, sku_id FROM skus").fetch_all(conn).await?) })
        })
        .await?;
    rows.iter().map(|r| Ok((r.text("merchant_id")?, r.text("sku_id")?))).collect()
}

/// A fresh store of the same schema and catalogue, for the baseline to write into.
async fn baseline_store(
    options: &BenchOptions,
    store_options: StoreOptions,
) -> anyhow::Result<Vec<(String, String)>> {
    let store = Store::open(store_options).await?;
    let core = Core::new(store.clone(), Arc::new(SystemClock));
    seed_catalogue(&core, options.merchants, options.skus_per_merchant).await?;
    sku_rows(&store).await
}

/// The minimal loop on SQLite: rusqlite, cached statements, the same pragmas as the store
/// (WAL, synchronous=FULL), `per_transaction` checkouts per transaction (1 is the baseline; a
/// larger group shows the ceiling that batching alone reaches).
async fn baseline_sqlite(
    dir: &std::path::Path,
    options: &BenchOptions,
    per_transaction: usize,
) -> anyhow::Result<f64> {
    let baseline_dir = dir.join(format!("baseline-{per_transaction}"));
    std::fs::create_dir_all(&baseline_dir)?;
    let skus = baseline_store(options, StoreOptions::sqlite_in(&baseline_dir)).await?;
    let path = baseline_dir.join("core.sqlite");
    let checkouts = options.baseline_checkouts;
    tokio::task::spawn_blocking(move || -> anyhow::Result<f64> {
        let mut conn = rusqlite::Connection::open(path)?;
        conn.pragma_update(None, "journal_mode", "WAL")?;
        conn.pragma_update(None, "synchronous", "FULL")?;
        let mut rng = StdRng::seed_from_u64(7);
        let started = Instant::now();
        let mut i = 0;
        while i < checkouts {
            let tx = conn.transaction_with_behavior(rusqlite::TransactionBehavior::Immediate)?;
            for _ in 0..per_transaction.min(checkouts - i) {
                let now = i as i64;
                let (merchant, sku) = &skus[rng.random_range(0..skus.len())];
                let (checkout, order) = (format!("chk_{i}"), format!("ord_{i}"));
                tx.prepare_cached(BASELINE_SQL[0])?.query_row(rusqlite::params![2i64, sku], |_| Ok(()))?;
                tx.prepare_cached(BASELINE_SQL[1])?.execute(rusqlite::params![checkout, 70_000i64, now])?;
                tx.prepare_cached(BASELINE_SQL[2])?
                    .execute(rusqlite::params![merchant, order, checkout, 70_000i64, now])?;
                tx.prepare_cached(BASELINE_SQL[3])?
                    .execute(rusqlite::params![merchant, order, 1i64, sku, 2i64, 35_000i64, 70_000i64])?;
                for (event, entity) in [(format!("evt_o{i}"), &order), (format!("evt_c{i}"), &checkout)] {
                    tx.prepare_cached(BASELINE_SQL[4])?
                        .execute(rusqlite::params![event, entity, merchant, now])?;
                    tx.prepare_cached(BASELINE_SQL[5])?.execute(rusqlite::params![
                        event.replace("evt", "aud"),
                        now,
                        entity,
                        merchant
                    ])?;
                }
                tx.prepare_cached(BASELINE_SQL[6])?.execute(rusqlite::params![format!("key-{i}"), now])?;
                tx.prepare_cached(BASELINE_SQL[7])?.execute(rusqlite::params![
                    format!("pay_{i}"),
                    checkout,
                    now
                ])?;
                i += 1;
            }
            tx.commit()?;
        }
        Ok(checkouts as f64 / started.elapsed().as_secs_f64())
    })
    .await?
}

/// The minimal loop on PostgreSQL: one connection, the same statements, one transaction per
/// checkout.
async fn baseline_postgres(url: &str, options: &BenchOptions, per_transaction: usize) -> anyhow::Result<f64> {
    use sqlx::Connection;
    let schema_url = jembatan_store::testing::postgres_schema_url(url, "baseline").await?;
    let skus = baseline_store(options, StoreOptions::new(schema_url.clone())).await?;
    let mut conn = sqlx::PgConnection::connect(&schema_url).await?;
    let mut rng = StdRng::seed_from_u64(7);
    let started = Instant::now();
    let mut tx = conn.begin().await?;
    for i in 0..options.baseline_checkouts {
        let now = i as i64;
        if i > 0 && i % per_transaction == 0 {
            tx.commit().await?;
            tx = conn.begin().await?;
        }
        let (merchant, sku) = &skus[rng.random_range(0..skus.len())];
        let (checkout, order) = (format!("chk_{i}"), format!("ord_{i}"));
        sqlx::query(BASELINE_SQL[0]).bind(2i64).bind(sku).fetch_one(&mut *tx).await?;
        sqlx::query(BASELINE_SQL[1]).bind(&checkout).bind(70_000i64).bind(now).execute(&mut *tx).await?;
        sqlx::query(BASELINE_SQL[2])
            .bind(merchant)
            .bind(&order)
            .bind(&checkout)
            .bind(70_000i64)
            .bind(now)
            .execute(&mut *tx)
            .await?;
        sqlx::query(BASELINE_SQL[3])
            .bind(merchant)
            .bind(&order)
            .bind(1i64)
            .bind(sku)
            .bind(2i64)
            .bind(35_000i64)
            .bind(70_000i64)
            .execute(&mut *tx)
            .await?;
        for (event, entity) in [(format!("evt_o{i}"), &order), (format!("evt_c{i}"), &checkout)] {
            sqlx::query(BASELINE_SQL[4])
                .bind(&event)
                .bind(entity)
                .bind(merchant)
                .bind(now)
                .execute(&mut *tx)
                .await?;
            sqlx::query(BASELINE_SQL[5])
                .bind(event.replace("evt", "aud"))
                .bind(now)
                .bind(entity)
                .bind(merchant)
                .execute(&mut *tx)
                .await?;
        }
        sqlx::query(BASELINE_SQL[6]).bind(format!("key-{i}")).bind(now).execute(&mut *tx).await?;
        sqlx::query(BASELINE_SQL[7])
            .bind(format!("pay_{i}"))
            .bind(&checkout)
            .bind(now)
            .execute(&mut *tx)
            .await?;
    }
    tx.commit().await?;
    Ok(options.baseline_checkouts as f64 / started.elapsed().as_secs_f64())
}
