//! `jembatan bench gateway`: what the gateway of `/social/v1` adds to a call (issue 4).
//!
//! One fresh core store and one fresh legacy store behind a real server on loopback, with three
//! shops seeded through the API: a social shop the legacy store owns, a social shop moved to the
//! core, and a core-native merchant (the baseline). Each has products and paid orders. Then, one
//! route at a time, the same call is measured on each:
//! - **read**: `GET /social/v1/orders/{id}` on the legacy shop and on the core shop, against
//!   the core's own `GET /v1/orders/{id}`;
//! - **write**: `POST /social/v1/shops/{s}/products/{p}/stock` on both shops, against the
//!   core's own `PUT /v1/skus/{sku_id}/stock`.
//!
//! For each route: latency at a fixed moderate rate (open loop, measured from the scheduled send
//! time, so queueing is not hidden) and requests/s at saturation (closed loop). The report
//! gives the latency each social route adds to its `/v1` counterpart and the ratio of their
//! throughputs.

use std::sync::Arc;
use std::time::{Duration, Instant};

use anyhow::Context;
use http_body_util::{BodyExt, Full};
use hyper::body::Bytes;
use hyper::{Method, StatusCode};
use hyper_util::client::legacy::Client;
use hyper_util::client::legacy::connect::HttpConnector;
use hyper_util::rt::TokioExecutor;
use jembatan_api::{ApiLimits, AppState};
use jembatan_core::gateway::{Gateway, GatewayOptions};
use jembatan_core::{Core, SystemClock};
use jembatan_domain::{Channel, MerchantId, Principal, TypedId};
use jembatan_store::legacy::{
    Batch, LegacyBuyer, LegacyProduct, LegacyShop, LegacySku, LegacyStore, PRODUCT_LIVE,
};
use jembatan_store::{Store, StoreOptions};
use serde_json::{Value, json};

#[derive(Debug, Clone)]
pub struct GatewayBenchOptions {
    /// `None`: fresh SQLite files in a temporary directory. `postgres://…`: fresh schemas.
    pub database_url: Option<String>,
    /// The legacy store's server; `None`: beside the core store (same engine, own file/schema).
    pub legacy_database_url: Option<String>,
    /// How long each phase (one route, one load shape) runs.
    pub phase: Duration,
    /// Workers of the closed loop.
    pub concurrency: usize,
    /// Rate of the open loop.
    pub rate_per_s: u32,
    /// Paid orders per shop; reads cycle over them.
    pub orders_per_shop: usize,
}

impl Default for GatewayBenchOptions {
    fn default() -> Self {
        GatewayBenchOptions {
            database_url: None,
            legacy_database_url: None,
            phase: Duration::from_secs(5),
            concurrency: 32,
            rate_per_s: 200,
            orders_per_shop: 8,
        }
    }
}

/// Latency and throughput of one load shape on one route.
#[derive(Debug, Clone, Default)]
pub struct Load {
    pub requests: usize,
    pub errors: usize,
    pub per_s: f64,
    pub p50_ms: f64,
    pub p99_ms: f64,
    pub max_ms: f64,
}

#[derive(Debug, Clone)]
pub struct RouteFigures {
    pub name: &'static str,
    /// At the fixed rate.
    pub open: Load,
    /// At saturation.
    pub closed: Load,
}

/// Three routes measured the same way: the legacy shop's, the core shop's, the core's own.
#[derive(Debug, Clone)]
pub struct Comparison {
    pub what: &'static str,
    pub legacy_shop: RouteFigures,
    pub core_shop: RouteFigures,
    pub baseline: RouteFigures,
}

#[derive(Debug, Clone)]
pub struct GatewayBenchReport {
    pub backend: String,
    pub read: Comparison,
    pub write: Comparison,
}

impl GatewayBenchReport {
    /// Every route's figures, and what each social route adds to its `/v1` baseline.
    pub fn render(&self, options: &GatewayBenchOptions) -> String {
        let mut out = format!(
            "backend: {}; open loop at {}/s, closed loop {} workers, {:.1} s per phase\n\n",
            self.backend,
            options.rate_per_s,
            options.concurrency,
            options.phase.as_secs_f64()
        );
        out.push_str(&format!(
            "{:<58} {:>9} {:>9} {:>9} {:>10} {:>7}\n",
            "route", "p50 ms", "p99 ms", "max ms", "req/s sat", "errors"
        ));
        for comparison in [&self.read, &self.write] {
            for route in [&comparison.legacy_shop, &comparison.core_shop, &comparison.baseline] {
                out.push_str(&format!(
                    "{:<58} {:>9.3} {:>9.3} {:>9.1} {:>10.0} {:>7}\n",
                    route.name,
                    route.open.p50_ms,
                    route.open.p99_ms,
                    route.open.max_ms,
                    route.closed.per_s,
                    route.open.errors + route.closed.errors
                ));
            }
        }
        out.push_str("\nadded by the gateway (social route − /v1 route; req/s as a share of /v1's):\n");
        for comparison in [&self.read, &self.write] {
            for (shop, route) in
                [("legacy shop", &comparison.legacy_shop), ("core shop", &comparison.core_shop)]
            {
                let base = &comparison.baseline;
                out.push_str(&format!(
                    "{:<6} {:<12} p50 {:+.3} ms, p99 {:+.3} ms, req/s {:.0}%\n",
                    comparison.what,
                    shop,
                    route.open.p50_ms - base.open.p50_ms,
                    route.open.p99_ms - base.open.p99_ms,
                    100.0 * route.closed.per_s / base.closed.per_s.max(1.0)
                ));
            }
        }
        out
    }

    /// Requests that did not answer 200, over every phase.
    pub fn errors(&self) -> usize {
        [&self.read, &self.write]
            .iter()
            .flat_map(|c| [&c.legacy_shop, &c.core_shop, &c.baseline])
            .map(|r| r.open.errors + r.closed.errors)
            .sum()
    }
}

/// One route under load: the same call on a cycle of targets.
struct Probe {
    method: Method,
    /// The paths the calls cycle over (orders to read, or the one SKU's stock).
    paths: Vec<String>,
    token: String,
    body: BodyShape,
}

#[derive(Clone, Copy)]
enum BodyShape {
    None,
    /// `{"skus":[{"sku_id": …, "stock": n}]}` of the social contract.
    SocialStock,
    /// `{"stock_on_hand": n}` of `PUT /v1/skus/{id}/stock`.
    CoreStock,
}

impl Probe {
    fn request(&self, i: u64, base: &str, sku: &str) -> anyhow::Result<hyper::Request<Full<Bytes>>> {
        // Stock moves between 1,000 and 1,099: always above what the paid orders reserved.
        let units = 1_000 + i % 100;
        let body = match self.body {
            BodyShape::None => String::new(),
            BodyShape::SocialStock => json!({"skus": [{"sku_id": sku, "stock": units}]}).to_string(),
            BodyShape::CoreStock => json!({"stock_on_hand": units}).to_string(),
        };
        let path = &self.paths[(i % self.paths.len() as u64) as usize];
        let mut request = hyper::Request::builder()
            .method(self.method.clone())
            .uri(format!("{base}{path}"))
            .header("authorization", format!("Bearer {}", self.token));
        if !body.is_empty() {
            request = request.header("content-type", "application/json");
        }
        Ok(request.body(Full::new(Bytes::from(body)))?)
    }
}

struct Target {
    client: Client<HttpConnector, Full<Bytes>>,
    base: String,
    probe: Probe,
    /// The social SKU id a social stock write names (unused by the other shapes).
    sku: String,
}

impl Target {
    async fn send(&self, i: u64) -> anyhow::Result<bool> {
        let response = self.client.request(self.probe.request(i, &self.base, &self.sku)?).await?;
        let status = response.status();
        response.into_body().collect().await?;
        Ok(status == StatusCode::OK)
    }
}

pub async fn gateway(options: &GatewayBenchOptions) -> anyhow::Result<GatewayBenchReport> {
    let dir = tempfile::tempdir()?;
    let (store_options, backend) = match &options.database_url {
        Some(url) => (
            StoreOptions::new(jembatan_store::testing::postgres_schema_url(url, "benchgw").await?),
            "postgresql",
        ),
        None => (StoreOptions::sqlite_in(dir.path()), "sqlite"),
    };
    let legacy_options = match options.legacy_database_url.as_ref().or(options.database_url.as_ref()) {
        Some(url) => {
            StoreOptions::new(jembatan_store::testing::postgres_schema_url(url, "benchgwlegacy").await?)
        }
        None => StoreOptions::legacy_sqlite_in(dir.path()),
    };
    let store = Store::open(store_options).await?;
    let legacy = LegacyStore::open(legacy_options).await?;
    let core = Core::new(store, Arc::new(SystemClock));
    let gateway = Gateway::new(core.clone(), legacy.clone(), GatewayOptions::default());
    let state = AppState::new(core.clone(), ApiLimits::default()).with_gateway(gateway);
    let listener = tokio::net::TcpListener::bind("127.0.0.1:0").await?;
    let address = listener.local_addr()?;
    let server = tokio::spawn(jembatan_api::serve(listener, state, std::future::pending()));
    let client = Client::builder(TokioExecutor::new()).pool_max_idle_per_host(1024).build_http();
    let api = Api { client: client.clone(), base: format!("http://{address}"), core: core.clone() };

    let seeded = seed(&api, &legacy, options.orders_per_shop).await?;
    let target = |probe: Probe, sku: &str| {
        Arc::new(Target { client: client.clone(), base: api.base.clone(), probe, sku: sku.to_owned() })
    };
    let reads = |paths: Vec<String>| Probe {
        method: Method::GET,
        paths,
        token: seeded.social_token.clone(),
        body: BodyShape::None,
    };
    let social_stock = |shop: &SeededShop| Probe {
        method: Method::POST,
        paths: vec![format!("/social/v1/shops/{}/products/{}/stock", shop.shop_id, shop.product_id)],
        token: shop.token.clone(),
        body: BodyShape::SocialStock,
    };
    let read_targets = [
        target(reads(seeded.legacy.orders.iter().map(|o| format!("/social/v1/orders/{o}")).collect()), ""),
        target(reads(seeded.core.orders.iter().map(|o| format!("/social/v1/orders/{o}")).collect()), ""),
        target(reads(seeded.native.orders.iter().map(|o| format!("/v1/orders/{o}")).collect()), ""),
    ];
    let write_targets = [
        target(social_stock(&seeded.legacy), &seeded.legacy.sku_id),
        target(social_stock(&seeded.core), &seeded.core.sku_id),
        target(
            Probe {
                method: Method::PUT,
                paths: vec![format!("/v1/skus/{}/stock", seeded.native.sku_id)],
                token: seeded.native.token.clone(),
                body: BodyShape::CoreStock,
            },
            "",
        ),
    ];
    // Every route answers 200 before anything is timed (and a legacy row behind its twin's
    // payment is repaired by this first read, not during the measurement).
    for target in read_targets.iter().chain(write_targets.iter()) {
        for i in 0..target.probe.paths.len() as u64 {
            anyhow::ensure!(
                target.send(i).await?,
                "{} answered other than 200",
                target.probe.paths[i as usize]
            );
        }
    }
    let names = [
        "GET /social/v1/orders/{id} (legacy shop)",
        "GET /social/v1/orders/{id} (core shop)",
        "GET /v1/orders/{id} (core merchant)",
        "POST /social/v1/shops/{s}/products/{p}/stock (legacy)",
        "POST /social/v1/shops/{s}/products/{p}/stock (core)",
        "PUT /v1/skus/{id}/stock (core merchant)",
    ];
    let mut figures = Vec::with_capacity(6);
    for (target, name) in read_targets.iter().chain(write_targets.iter()).zip(names) {
        // Warm up the connections of this route's pattern.
        closed_loop(target, options.concurrency, options.phase.min(Duration::from_secs(1)) / 2).await?;
        let open = open_loop(target, options.rate_per_s, options.phase).await?;
        let closed = closed_loop(target, options.concurrency, options.phase).await?;
        figures.push(RouteFigures { name, open, closed });
    }
    server.abort();
    let mut figures = figures.into_iter();
    let mut next = || figures.next().expect("six routes measured");
    Ok(GatewayBenchReport {
        backend: backend.to_owned(),
        read: Comparison { what: "read", legacy_shop: next(), core_shop: next(), baseline: next() },
        write: Comparison { what: "write", legacy_shop: next(), core_shop: next(), baseline: next() },
    })
}

// ---- seeding, through the API as its users do ----------------------------------------------

struct Api {
    client: Client<HttpConnector, Full<Bytes>>,
    base: String,
    core: Core,
}

impl Api {
    /// Sends a request and returns its JSON body, failing unless the status is `expected`.
    async fn call(
        &self,
        method: Method,
        path: &str,
        token: Option<&str>,
        headers: &[(&str, String)],
        body: Option<Value>,
        expected: StatusCode,
    ) -> anyhow::Result<Value> {
        let mut request =
            hyper::Request::builder().method(method.clone()).uri(format!("{}{path}", self.base));
        if let Some(token) = token {
            request = request.header("authorization", format!("Bearer {token}"));
        }
        for (name, value) in headers {
            request = request.header(*name, value);
        }
        let body = match body {
            Some(body) => {
                request = request.header("content-type", "application/json");
                body.to_string()
            }
            None => String::new(),
        };
        let response = self.client.request(request.body(Full::new(Bytes::from(body)))?).await?;
        let status = response.status();
        let bytes = response.into_body().collect().await?.to_bytes();
        anyhow::ensure!(
            status == expected,
            "{method} {path}: {status} (expected {expected}): {}",
            String::from_utf8_lossy(&bytes)
        );
        Ok(if bytes.is_empty() { Value::Null } else { serde_json::from_slice(&bytes)? })
    }

    async fn token(&self, subject: Principal) -> anyhow::Result<String> {
        Ok(self.core.issue_token(&Principal::Operator, subject, "bench gateway").await?.0)
    }

    /// The provider simulator reports the payment paid (what `jembatan provider pay` asks).
    async fn pay(&self, payment_id: &str) -> anyhow::Result<()> {
        let body = "{}";
        let simulator = self.core.simulator().context("the simulator is the provider")?;
        let message = jembatan_core::payments::simulator_request_message(payment_id, body.as_bytes());
        let (timestamp, _) = simulator.sign(body, self.core.clock().now());
        let signature = jembatan_core::payments::sign(simulator.secret(), &timestamp, &message);
        let headers = [("x-callback-timestamp", timestamp), ("x-callback-signature", signature)];
        self.call(
            Method::POST,
            &format!("/v1/provider-sim/payments/{payment_id}/pay"),
            None,
            &headers,
            Some(json!({})),
            StatusCode::OK,
        )
        .await?;
        Ok(())
    }
}

/// A shop (or merchant) ready to be measured.
struct SeededShop {
    shop_id: String,
    /// The seller's (merchant's) token.
    token: String,
    /// The product whose stock the writes set, and its first SKU.
    product_id: String,
    sku_id: String,
    /// Paid orders (social ids for social shops, core ids for the merchant).
    orders: Vec<String>,
}

struct Seeded {
    social_token: String,
    legacy: SeededShop,
    core: SeededShop,
    native: SeededShop,
}

const SOCIAL_BUYER: &str = "6600112233";

async fn seed(api: &Api, legacy: &LegacyStore, orders: usize) -> anyhow::Result<Seeded> {
    let operator = api.token(Principal::Operator).await?;
    let social = api.token(Principal::Channel(Channel::Social)).await?;
    let legacy_shop = seed_social_shop(api, legacy, &operator, &social, 1, orders, false).await?;
    let core_shop = seed_social_shop(api, legacy, &operator, &social, 2, orders, true).await?;
    let native = seed_native_merchant(api, &operator, &social, orders).await?;
    Ok(Seeded { social_token: social, legacy: legacy_shop, core: core_shop, native })
}

/// A social shop in the legacy store (two products of two SKUs), enrolled; with `moved`, half
/// its orders are placed before the move and half after, so both kinds are read.
async fn seed_social_shop(
    api: &Api,
    legacy: &LegacyStore,
    operator: &str,
    social: &str,
    n: u64,
    orders: usize,
    moved: bool,
) -> anyhow::Result<SeededShop> {
    let shop_id = format!("{}", 7_100_000_000 + n);
    let products: Vec<LegacyProduct> = (1..=2u64)
        .map(|k| {
            let product_id = format!("{}", 8_200_000_000 + n * 100 + k);
            LegacyProduct {
                skus_problem: None,
                shop_id: shop_id.clone(),
                product_id: product_id.clone(),
                title: ["Kemeja Batik Parang", "Serum Vitamin C"][k as usize - 1].to_owned(),
                category: ["fashion", "beauty"][k as usize - 1].to_owned(),
                description: "Dikirim dari Bandung".to_owned(),
                skus: (0..2)
                    .map(|i| LegacySku {
                        sku_id: format!("{product_id}{i}"),
                        seller_sku: format!("SKU-{k}-{i}"),
                        name: ["M", "L"][i as usize].to_owned(),
                        price: ["149.000", "89000"][i as usize].to_owned(),
                        stock: 10_000,
                    })
                    .collect(),
                status: PRODUCT_LIVE,
                create_time: 1_700_000_000,
                update_time: 1_700_000_000,
            }
        })
        .collect();
    let batch = Batch {
        shops: vec![LegacyShop {
            shop_id: shop_id.clone(),
            shop_name: format!("Toko Batik Sari {n}"),
            seller_type: "LOCAL".to_owned(),
            province: "Jawa Barat".to_owned(),
            city: "Bandung".to_owned(),
            contact_phone: "0812-2233-4455".to_owned(),
            nib: "9120001234567".to_owned(),
            create_time: 1_690_000_000,
            update_time: 1_690_000_000,
        }],
        products: products.clone(),
        buyers: if n == 1 {
            vec![LegacyBuyer {
                buyer_id: SOCIAL_BUYER.to_owned(),
                nickname: "putri.cantik88".to_owned(),
                phone: "+6281211112222".to_owned(),
                email: "putri88@contoh.co.id".to_owned(),
                birth_date: "1999-04-12".to_owned(),
                gender: "F".to_owned(),
                follower_count: 1204,
                create_time: 1_650_000_000,
            }]
        } else {
            Vec::new()
        },
        orders: Vec::new(),
    };
    legacy.load(batch).await?;
    let enrolled = api
        .call(
            Method::POST,
            &format!("/v1/ops/social/shops/{shop_id}/enrol"),
            Some(operator),
            &[],
            None,
            StatusCode::OK,
        )
        .await?;
    let merchant_id = MerchantId::parse(enrolled["merchant_id"].as_str().context("merchant_id")?)?;
    let token = api.token(Principal::Merchant(merchant_id)).await?;
    let order_body = json!({
        "shop_id": shop_id,
        "buyer_id": SOCIAL_BUYER,
        "payment_method": "QRIS",
        "items": [
            {"product_id": products[0].product_id, "sku_id": products[0].skus[0].sku_id, "quantity": 1},
            {"product_id": products[1].product_id, "sku_id": products[1].skus[1].sku_id, "quantity": 2},
        ],
        "recipient": {"name": "Putri Lestari", "phone": "0813 9988 7766", "address_detail": "Jl. Dago No. 5",
                      "city": "Bandung", "province": "jawa barat", "postal_code": "40135"},
    });
    let mut order_ids = Vec::with_capacity(orders);
    for i in 0..orders {
        if moved && i == orders / 2 {
            api.call(
                Method::POST,
                &format!("/v1/ops/social/shops/{shop_id}/move"),
                Some(operator),
                &[],
                None,
                StatusCode::OK,
            )
            .await?;
        }
        let order = api
            .call(
                Method::POST,
                "/social/v1/orders",
                Some(social),
                &[],
                Some(order_body.clone()),
                StatusCode::CREATED,
            )
            .await?;
        let order_id = order["order_id"].as_str().context("order_id")?.to_owned();
        let paying = api
            .call(
                Method::POST,
                &format!("/social/v1/orders/{order_id}/pay"),
                Some(social),
                &[],
                None,
                StatusCode::OK,
            )
            .await?;
        api.pay(paying["payment"]["payment_id"].as_str().context("payment_id")?).await?;
        order_ids.push(order_id);
    }
    if moved && orders < 2 {
        api.call(
            Method::POST,
            &format!("/v1/ops/social/shops/{shop_id}/move"),
            Some(operator),
            &[],
            None,
            StatusCode::OK,
        )
        .await?;
    }
    Ok(SeededShop {
        shop_id,
        token,
        product_id: products[0].product_id.clone(),
        sku_id: products[0].skus[0].sku_id.clone(),
        orders: order_ids,
    })
}

/// A merchant of the core itself, with the same shape of catalogue and orders (two lines, paid),
/// bought through the social channel.
async fn seed_native_merchant(
    api: &Api,
    operator: &str,
    social: &str,
    orders: usize,
) -> anyhow::Result<SeededShop> {
    let body = json!({"name": "Toko Batik Sari Inti", "origin": "local", "province": "Jawa Barat", "nib": "9120001234567"});
    let merchant =
        api.call(Method::POST, "/v1/merchants", Some(operator), &[], Some(body), StatusCode::CREATED).await?;
    let merchant_id = merchant["id"].as_str().context("merchant id")?.to_owned();
    let token = api.token(Principal::Merchant(MerchantId::parse(&merchant_id)?)).await?;
    let mut products = Vec::new();
    for (title_n, (title, category, prices)) in [
        ("Kemeja Batik Parang", "fashion", [149_000, 150_000]),
        ("Serum Vitamin C", "beauty", [89_000, 1_250_000]),
    ]
    .into_iter()
    .enumerate()
    {
        let skus: Vec<Value> = prices
            .iter()
            .enumerate()
            .map(|(i, price)| {
                json!({"code": format!("SKU-{title_n}-{i}"), "price": {"amount": price, "currency": "IDR"}, "stock": 10_000})
            })
            .collect();
        let product = api
            .call(
                Method::POST,
                &format!("/v1/merchants/{merchant_id}/products"),
                Some(&token),
                &[],
                Some(json!({"title": title, "category": category, "skus": skus})),
                StatusCode::CREATED,
            )
            .await?;
        products.push(product);
    }
    let sku = |p: usize, i: usize| products[p]["skus"][i]["id"].as_str().unwrap_or_default().to_owned();
    let checkout_body = json!({
        "buyer_id": "sb_bench",
        "items": [{"sku_id": sku(0, 0), "quantity": 1}, {"sku_id": sku(1, 1), "quantity": 2}],
        "shipping_address": {"recipient_name": "Putri Lestari", "phone": "081399887766", "street": "Jl. Dago No. 5",
                             "city": "Bandung", "province": "Jawa Barat", "postal_code": "40135"},
        "payment_method": "qris",
    });
    let mut order_ids = Vec::with_capacity(orders);
    for _ in 0..orders {
        let checkout = api
            .call(
                Method::POST,
                "/v1/checkouts",
                Some(social),
                &[],
                Some(checkout_body.clone()),
                StatusCode::CREATED,
            )
            .await?;
        api.pay(checkout["payment"]["id"].as_str().context("payment id")?).await?;
        order_ids.push(checkout["orders"][0]["id"].as_str().context("order id")?.to_owned());
    }
    Ok(SeededShop {
        shop_id: merchant_id,
        token,
        product_id: products[0]["id"].as_str().context("product id")?.to_owned(),
        sku_id: sku(0, 0),
        orders: order_ids,
    })
}

// ---- load shapes --------------------------------------------------------------------------------

fn summarise(mut latencies_ms: Vec<f64>, errors: usize, elapsed: Duration) -> Load {
    latencies_ms.sort_by(|a, b| a.total_cmp(b));
    let at = |q: f64| -> f64 {
        if latencies_ms.is_empty() {
            return 0.0;
        }
        latencies_ms[((latencies_ms.len() as f64 - 1.0) * q).round() as usize]
    };
    Load {
        requests: latencies_ms.len(),
        errors,
        per_s: latencies_ms.len() as f64 / elapsed.as_secs_f64(),
        p50_ms: at(0.50),
        p99_ms: at(0.99),
        max_ms: latencies_ms.last().copied().unwrap_or(0.0),
    }
}

/// `workers` each send their next call when the last one is answered.
async fn closed_loop(target: &Arc<Target>, workers: usize, duration: Duration) -> anyhow::Result<Load> {
    let started = Instant::now();
    let deadline = started + duration;
    let mut tasks = Vec::with_capacity(workers);
    for w in 0..workers {
        let target = target.clone();
        tasks.push(tokio::spawn(async move {
            let (mut latencies, mut errors, mut i) = (Vec::new(), 0usize, w as u64);
            while Instant::now() < deadline {
                let sent = Instant::now();
                match target.send(i).await {
                    Ok(true) => latencies.push(sent.elapsed().as_secs_f64() * 1e3),
                    _ => errors += 1,
                }
                i += workers as u64;
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
    Ok(summarise(latencies, errors, started.elapsed()))
}

/// Calls leave on a fixed schedule whatever the answers do; latency counts from the schedule.
async fn open_loop(target: &Arc<Target>, rate_per_s: u32, duration: Duration) -> anyhow::Result<Load> {
    let interval = Duration::from_secs_f64(1.0 / f64::from(rate_per_s.max(1)));
    let started = tokio::time::Instant::now();
    let total = (duration.as_secs_f64() * f64::from(rate_per_s)).max(1.0) as u64;
    let mut tasks = Vec::with_capacity(total as usize);
    for i in 0..total {
        let scheduled = started + interval.mul_f64(i as f64);
        tokio::time::sleep_until(scheduled).await;
        let target = target.clone();
        tasks.push(tokio::spawn(async move {
            let ok = matches!(target.send(i).await, Ok(true));
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
    Ok(summarise(latencies, errors, started.elapsed()))
}
