//! `jembatan load`: realistic traffic of both storefronts against a running server, over HTTP —
//! `/social/v1` (browse, order, pay through the provider simulator, ship, confirm, seller stock
//! edits) and `/v1` (marketplace checkouts, paid, read back) — at a fixed rate (open loop,
//! latency measured from each call's scheduled time). Every acknowledged write goes to a
//! journal (JSON lines) that `jembatan check --journal` verifies afterwards: each write present
//! exactly once, at least as far as it was acknowledged, wherever its shop lives by then.

use std::collections::{BTreeMap, VecDeque};
use std::io::Write;
use std::sync::{Arc, Mutex};
use std::time::{Duration, Instant};

use http_body_util::{BodyExt, Full};
use hyper::body::Bytes;
use hyper::{Method, StatusCode};
use hyper_util::client::legacy::Client;
use hyper_util::client::legacy::connect::HttpConnector;
use hyper_util::rt::TokioExecutor;
use jembatan_core::Core;
use jembatan_domain::{Channel, Principal};
use jembatan_store::legacy::{LegacyStore, PRODUCT_LIVE};
use jembatan_store::social::Owner;
use serde::{Deserialize, Serialize};
use serde_json::{Value, json};

#[derive(Debug, Clone)]
pub struct LoadOptions {
    /// The server, e.g. `http://127.0.0.1:8080`.
    pub url: String,
    pub rate_per_s: u32,
    pub duration: Duration,
    /// The provider simulator's secret (the server's), to pay as a buyer would.
    pub provider_secret: Vec<u8>,
    /// Social shops the load works on (the first ones with orderable products).
    pub shops_max: usize,
}

/// One acknowledged write.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
#[serde(tag = "op", rename_all = "snake_case")]
pub enum Entry {
    /// `POST /social/v1/orders` answered 201: the order exists, unpaid at least.
    SocialOrder {
        order_id: String,
        shop_id: String,
        payment_id: Option<String>,
    },
    /// Its payment was applied.
    SocialPaid {
        order_id: String,
    },
    SocialShipped {
        order_id: String,
    },
    SocialCompleted {
        order_id: String,
    },
    /// `POST /v1/checkouts` answered 201 with these orders.
    Checkout {
        checkout_id: String,
        order_ids: Vec<String>,
        payment_id: Option<String>,
    },
    CheckoutPaid {
        checkout_id: String,
    },
}

#[derive(Debug, Clone, Default)]
pub struct OpFigures {
    pub calls: usize,
    pub errors: usize,
    pub p50_ms: f64,
    pub p99_ms: f64,
    pub max_ms: f64,
}

#[derive(Debug, Clone, Default)]
pub struct LoadReport {
    pub seconds: f64,
    pub calls: usize,
    pub errors: usize,
    pub per_s: f64,
    pub ops: BTreeMap<&'static str, OpFigures>,
    pub journaled: usize,
}

impl LoadReport {
    pub fn render(&self) -> String {
        let mut out = format!(
            "{} calls in {:.1} s ({:.0}/s), {} errors, {} writes journaled\n{:<18} {:>7} {:>7} {:>9} {:>9} {:>9}\n",
            self.calls,
            self.seconds,
            self.per_s,
            self.errors,
            self.journaled,
            "operation",
            "calls",
            "errors",
            "p50 ms",
            "p99 ms",
            "max ms"
        );
        for (op, f) in &self.ops {
            out.push_str(&format!(
                "{op:<18} {:>7} {:>7} {:>9.2} {:>9.2} {:>9.1}\n",
                f.calls, f.errors, f.p50_ms, f.p99_ms, f.max_ms
            ));
        }
        out
    }
}

/// What the load works on, and its tokens.
pub struct Plan {
    social_token: String,
    marketplace_token: String,
    operator_token: String,
    /// (shop, product, SKU) of the social shops.
    social: Vec<(String, String, String)>,
    /// Core SKU ids of merchants the core owns.
    marketplace: Vec<String>,
}

/// Issues the load's tokens and finds what it can order, from the stores of the server.
pub async fn prepare(core: &Core, legacy: &LegacyStore, shops_max: usize) -> anyhow::Result<Plan> {
    let issue = |subject: Principal, label: &'static str| async move {
        Ok::<_, anyhow::Error>(core.issue_token(&Principal::Operator, subject, label).await?.0)
    };
    let social_token = issue(Principal::Channel(Channel::Social), "load social").await?;
    let marketplace_token = issue(Principal::Channel(Channel::Marketplace), "load marketplace").await?;
    let operator_token = issue(Principal::Operator, "load operator").await?;
    let mut social = Vec::new();
    let mut after = String::new();
    'shops: loop {
        let shops = legacy.shop_ids(&after, 200).await?;
        let Some(last) = shops.last() else { break };
        after = last.clone();
        for shop in shops {
            if social.len() >= shops_max * 3 {
                break 'shops;
            }
            for p in legacy.products(&shop, "", 20).await? {
                if p.status == PRODUCT_LIVE
                    && p.skus_problem.is_none()
                    && !p.title.trim().is_empty()
                    && let Some(sku) = p
                        .skus
                        .iter()
                        .find(|s| s.stock > 20 && jembatan_domain::social::parse_price(&s.price).is_ok())
                {
                    social.push((shop.clone(), p.product_id.clone(), sku.sku_id.clone()));
                    break;
                }
            }
        }
    }
    let mut marketplace = Vec::new();
    for merchant in core.store().merchants(None, 200).await? {
        let owned = match core.store().social_shop_of_merchant(merchant.id).await? {
            Some(shop) => shop.owner == Owner::Core,
            None => true,
        };
        if !owned {
            continue;
        }
        for product in core.store().products_of_merchant(merchant.id, None, 10).await? {
            if let Some(sku) = product.skus.iter().find(|s| s.stock.units_available() > 20) {
                marketplace.push(sku.id.to_string());
            }
        }
        if marketplace.len() >= 50 {
            break;
        }
    }
    anyhow::ensure!(
        !social.is_empty() || !marketplace.is_empty(),
        "nothing to order: seed a legacy shop (`jembatan seed`) or start the demo (`jembatan up`)"
    );
    Ok(Plan { social_token, marketplace_token, operator_token, social, marketplace })
}

type HttpClient = Client<HttpConnector, Full<Bytes>>;

struct Shared {
    client: HttpClient,
    options: LoadOptions,
    plan: Plan,
    /// Orders acknowledged, by how far they got: unpaid (with payment id), paid, shipped.
    unpaid: Mutex<VecDeque<(String, String)>>,
    paid: Mutex<VecDeque<String>>,
    shipped: Mutex<VecDeque<String>>,
    journal: Mutex<Box<dyn Write + Send>>,
    journaled: Mutex<usize>,
    latencies: Mutex<BTreeMap<&'static str, (Vec<f64>, usize)>>,
}

impl Shared {
    async fn call(
        &self,
        method: Method,
        path: &str,
        token: &str,
        body: Option<Value>,
        key: Option<String>,
    ) -> (StatusCode, Value) {
        let mut request = hyper::Request::builder()
            .method(method)
            .uri(format!("{}{path}", self.options.url.trim_end_matches('/')))
            .header("authorization", format!("Bearer {token}"));
        if body.is_some() {
            request = request.header("content-type", "application/json");
        }
        if let Some(key) = key {
            request = request.header("idempotency-key", key);
        }
        let body = body.map(|b| b.to_string()).unwrap_or_default();
        let Ok(request) = request.body(Full::new(Bytes::from(body))) else {
            return (StatusCode::BAD_REQUEST, Value::Null);
        };
        match self.client.request(request).await {
            Ok(response) => {
                let status = response.status();
                let bytes = response.into_body().collect().await.map(|b| b.to_bytes()).unwrap_or_default();
                (status, serde_json::from_slice(&bytes).unwrap_or(Value::Null))
            }
            Err(_) => (StatusCode::SERVICE_UNAVAILABLE, Value::Null),
        }
    }

    /// The simulator pays a payment as the buyer would (signed with the provider secret).
    async fn pay(&self, payment_id: &str) -> bool {
        let body = "{}";
        let now = std::time::SystemTime::now()
            .duration_since(std::time::UNIX_EPOCH)
            .map(|d| d.as_secs())
            .unwrap_or(0);
        let message = jembatan_core::payments::simulator_request_message(payment_id, body.as_bytes());
        let signature =
            jembatan_core::payments::sign(&self.options.provider_secret, &now.to_string(), &message);
        let target =
            format!("{}/v1/provider-sim/payments/{payment_id}/pay", self.options.url.trim_end_matches('/'));
        matches!(
            jembatan_core::payments::send_callback(&target, &now.to_string(), &signature, body.to_owned()).await,
            Ok((status, _)) if (200..300).contains(&status)
        )
    }

    fn record(&self, op: &'static str, latency: Duration, ok: bool) {
        let mut all = self.latencies.lock().unwrap_or_else(|e| e.into_inner());
        let entry = all.entry(op).or_default();
        entry.0.push(latency.as_secs_f64() * 1000.0);
        if !ok {
            entry.1 += 1;
        }
    }

    fn journal(&self, entry: &Entry) {
        let line = serde_json::to_string(entry).expect("journal entries serialise");
        let mut journal = self.journal.lock().unwrap_or_else(|e| e.into_inner());
        // Flushed line by line: an entry is on disk before the next call is made.
        let _ = writeln!(journal, "{line}").and_then(|_| journal.flush());
        *self.journaled.lock().unwrap_or_else(|e| e.into_inner()) += 1;
    }
}

/// Runs the load; every acknowledged write is written to `journal` as it is acknowledged.
pub async fn run(
    options: LoadOptions,
    plan: Plan,
    journal: Box<dyn Write + Send>,
) -> anyhow::Result<LoadReport> {
    let client: HttpClient = Client::builder(TokioExecutor::new()).build_http();
    let shared = Arc::new(Shared {
        client,
        options: options.clone(),
        plan,
        unpaid: Mutex::default(),
        paid: Mutex::default(),
        shipped: Mutex::default(),
        journal: Mutex::new(journal),
        journaled: Mutex::new(0),
        latencies: Mutex::default(),
    });
    let interval = Duration::from_secs_f64(1.0 / f64::from(options.rate_per_s.max(1)));
    let started = Instant::now();
    let mut tasks = Vec::new();
    let mut n: u64 = 0;
    while started.elapsed() < options.duration {
        let scheduled = started + interval.mul_f64(n as f64);
        tokio::time::sleep_until(scheduled.into()).await;
        n += 1;
        let shared = shared.clone();
        tasks.push(tokio::spawn(async move { step(&shared, n, scheduled).await }));
        tasks.retain(|t| !t.is_finished());
    }
    for task in tasks {
        let _ = task.await;
    }
    let seconds = started.elapsed().as_secs_f64();
    let latencies = shared.latencies.lock().unwrap_or_else(|e| e.into_inner()).clone();
    let mut report = LoadReport {
        seconds,
        journaled: *shared.journaled.lock().unwrap_or_else(|e| e.into_inner()),
        ..LoadReport::default()
    };
    for (op, (mut values, errors)) in latencies {
        values.sort_by(f64::total_cmp);
        let at = |q: f64| values[((q * values.len() as f64).ceil() as usize).clamp(1, values.len()) - 1];
        report.calls += values.len();
        report.errors += errors;
        report.ops.insert(
            op,
            OpFigures {
                calls: values.len(),
                errors,
                p50_ms: at(0.5),
                p99_ms: at(0.99),
                max_ms: *values.last().unwrap_or(&0.0),
            },
        );
    }
    report.per_s = report.calls as f64 / seconds;
    Ok(report)
}

/// One call of the mix: the n-th, scheduled at `scheduled`.
async fn step(s: &Shared, n: u64, scheduled: Instant) {
    let plan = &s.plan;
    let pick = n % 20;
    let social = !plan.social.is_empty();
    let market = !plan.marketplace.is_empty();
    let (op, ok) = match pick {
        // Browse a shop.
        0..=4 if social => {
            let (shop, ..) = &plan.social[n as usize % plan.social.len()];
            let path = format!("/social/v1/shops/{shop}/products?page_size=20");
            (
                "social_browse",
                s.call(Method::GET, &path, &plan.social_token, None, None).await.0 == StatusCode::OK,
            )
        }
        // Order.
        5..=8 if social => {
            let (shop, product, sku) = &plan.social[(n as usize / 7) % plan.social.len()];
            let body = json!({
                "shop_id": shop, "buyer_id": format!("59{:08}", n % 5_000), "payment_method": "VA",
                "items": [{"product_id": product, "sku_id": sku, "quantity": 1}],
                "recipient": {"name": "Rahmat Hidayat", "phone": "0812 3456 7890", "address_detail": "Jl. Pemuda No. 12",
                              "city": "Surabaya", "province": "Jawa Timur", "postal_code": "60271"},
            });
            let key = format!("load-{}-{n}", std::process::id());
            let (status, order) =
                s.call(Method::POST, "/social/v1/orders", &plan.social_token, Some(body), Some(key)).await;
            let ok = status == StatusCode::CREATED;
            if ok && let Some(order_id) = order["order_id"].as_str() {
                let payment_id = order["payment"]["payment_id"].as_str().map(str::to_owned);
                s.journal(&Entry::SocialOrder {
                    order_id: order_id.to_owned(),
                    shop_id: shop.clone(),
                    payment_id: payment_id.clone(),
                });
                if let Some(payment_id) = payment_id {
                    s.unpaid
                        .lock()
                        .unwrap_or_else(|e| e.into_inner())
                        .push_back((order_id.to_owned(), payment_id));
                }
            }
            ("social_order", ok)
        }
        // Pay an unpaid order.
        9..=11 => {
            let next = s.unpaid.lock().unwrap_or_else(|e| e.into_inner()).pop_front();
            match next {
                Some((order_id, payment_id)) => {
                    let ok = s.pay(&payment_id).await;
                    if ok {
                        s.journal(&Entry::SocialPaid { order_id: order_id.clone() });
                        s.paid.lock().unwrap_or_else(|e| e.into_inner()).push_back(order_id);
                    }
                    ("social_pay", ok)
                }
                None => return,
            }
        }
        // The seller ships a paid order.
        12..=13 => {
            let next = s.paid.lock().unwrap_or_else(|e| e.into_inner()).pop_front();
            let Some(order_id) = next else { return };
            let path = format!("/social/v1/orders/{order_id}/ship");
            let ok = s.call(Method::POST, &path, &plan.operator_token, None, None).await.0 == StatusCode::OK;
            if ok {
                s.journal(&Entry::SocialShipped { order_id: order_id.clone() });
                s.shipped.lock().unwrap_or_else(|e| e.into_inner()).push_back(order_id);
            }
            ("social_ship", ok)
        }
        // The buyer confirms receipt.
        14 => {
            let next = s.shipped.lock().unwrap_or_else(|e| e.into_inner()).pop_front();
            let Some(order_id) = next else { return };
            let path = format!("/social/v1/orders/{order_id}/confirm");
            let ok = s.call(Method::POST, &path, &plan.social_token, None, None).await.0 == StatusCode::OK;
            if ok {
                s.journal(&Entry::SocialCompleted { order_id });
            }
            ("social_confirm", ok)
        }
        // The seller sets a stock level.
        15 if social => {
            let (shop, product, sku) = &plan.social[(n as usize / 3) % plan.social.len()];
            let path = format!("/social/v1/shops/{shop}/products/{product}/stock");
            let body = json!({"skus": [{"sku_id": sku, "stock": 200 + n % 100}]});
            (
                "social_stock",
                s.call(Method::POST, &path, &plan.operator_token, Some(body), None).await.0 == StatusCode::OK,
            )
        }
        // A marketplace checkout, paid.
        16..=19 if market => {
            let sku = &plan.marketplace[n as usize % plan.marketplace.len()];
            let body = json!({
                "buyer_id": format!("buyer-load-{}", n % 1_000), "payment_method": "qris",
                "items": [{"sku_id": sku, "quantity": 1}],
                "shipping_address": {"recipient_name": "Sinta", "phone": "081399887766", "street": "Jl. Malioboro 7",
                                     "city": "Yogyakarta", "province": "DI Yogyakarta", "postal_code": "55213"},
            });
            let key = format!("load-checkout-{}-{n}", std::process::id());
            let (status, checkout) =
                s.call(Method::POST, "/v1/checkouts", &plan.marketplace_token, Some(body), Some(key)).await;
            let ok = status == StatusCode::CREATED;
            if ok && let Some(checkout_id) = checkout["id"].as_str() {
                let order_ids = checkout["orders"]
                    .as_array()
                    .map(|o| o.iter().filter_map(|o| o["id"].as_str().map(str::to_owned)).collect())
                    .unwrap_or_default();
                let payment_id = checkout["payment"]["id"].as_str().map(str::to_owned);
                s.journal(&Entry::Checkout {
                    checkout_id: checkout_id.to_owned(),
                    order_ids,
                    payment_id: payment_id.clone(),
                });
                if let Some(payment_id) = payment_id
                    && s.pay(&payment_id).await
                {
                    s.journal(&Entry::CheckoutPaid { checkout_id: checkout_id.to_owned() });
                }
            }
            ("checkout", ok)
        }
        _ if market => {
            let sku = &plan.marketplace[n as usize % plan.marketplace.len()];
            let ok =
                s.call(Method::GET, &format!("/v1/skus/{sku}"), &plan.marketplace_token, None, None).await.0
                    == StatusCode::OK;
            ("marketplace_browse", ok)
        }
        _ => return,
    };
    s.record(op, scheduled.elapsed(), ok);
}

/// Reads a journal file back.
pub fn read_journal(text: &str) -> anyhow::Result<Vec<Entry>> {
    text.lines()
        .filter(|l| !l.trim().is_empty())
        .enumerate()
        .map(|(i, line)| {
            serde_json::from_str(line).map_err(|e| anyhow::anyhow!("journal line {}: {e}", i + 1))
        })
        .collect()
}

/// What `jembatan check --journal` found wrong, one line per problem.
pub async fn check_journal(
    gateway: &jembatan_core::gateway::Gateway,
    entries: &[Entry],
) -> anyhow::Result<Vec<String>> {
    let mut problems = Vec::new();
    // The furthest step acknowledged per social order, and per checkout.
    let mut social: BTreeMap<&str, i64> = BTreeMap::new();
    let mut checkouts: BTreeMap<&str, (&[String], bool)> = BTreeMap::new();
    for entry in entries {
        match entry {
            Entry::SocialOrder { order_id, .. } => {
                social.entry(order_id).or_insert(100);
            }
            Entry::SocialPaid { order_id } => bump(&mut social, order_id, 111),
            Entry::SocialShipped { order_id } => bump(&mut social, order_id, 121),
            Entry::SocialCompleted { order_id } => bump(&mut social, order_id, 130),
            Entry::Checkout { checkout_id, order_ids, .. } => {
                checkouts.insert(checkout_id, (order_ids, false));
            }
            Entry::CheckoutPaid { checkout_id } => {
                if let Some(c) = checkouts.get_mut(checkout_id.as_str()) {
                    c.1 = true;
                }
            }
        }
    }
    let store = gateway.core().store();
    for (order_id, acked) in &social {
        let legacy_rows = gateway.legacy().order_rows(order_id).await?;
        let (mapped, _) = store.journal_counts(Some((*order_id).to_owned()), None).await?;
        if legacy_rows > 1 || mapped > 1 {
            problems.push(format!("social order {order_id}: {legacy_rows} legacy rows and {mapped} core orders (one of each at most)"));
        }
        let id = jembatan_domain::social::SocialId::parse("order_id", order_id)?;
        match gateway.order(&Principal::Operator, &id).await {
            Err(error) => problems
                .push(format!("social order {order_id} (acknowledged up to {acked}) is missing: {error}")),
            Ok(order) => {
                // An unpaid order may expire (cancelled, 140); one paid is never cancelled here.
                let expired = *acked == 100 && order.status == 140;
                if order.status < *acked && !expired || (*acked > 100 && order.status == 140) {
                    problems.push(format!(
                        "social order {order_id} was acknowledged up to {acked} but is {}",
                        order.status
                    ));
                }
            }
        }
    }
    for (checkout_id, (order_ids, paid)) in &checkouts {
        let (_, orders) = store.journal_counts(None, Some((*checkout_id).to_owned())).await?;
        if orders != order_ids.len() as i64 {
            problems.push(format!(
                "checkout {checkout_id}: {orders} orders in the core, {} acknowledged",
                order_ids.len()
            ));
        }
        for order_id in order_ids.iter() {
            let id: jembatan_domain::OrderId = jembatan_domain::TypedId::parse(order_id)
                .map_err(|e| anyhow::anyhow!("journal: order id {order_id}: {e}"))?;
            match store.order(id).await? {
                None => problems.push(format!("order {order_id} of checkout {checkout_id} is missing")),
                Some(order) if *paid && order.status.as_str() == "awaiting_payment" => {
                    problems.push(format!("order {order_id} was acknowledged paid but awaits payment"))
                }
                Some(_) => {}
            }
        }
    }
    Ok(problems)
}

fn bump<'a>(social: &mut BTreeMap<&'a str, i64>, order_id: &'a str, step: i64) {
    let at = social.entry(order_id).or_insert(step);
    *at = (*at).max(step);
}
