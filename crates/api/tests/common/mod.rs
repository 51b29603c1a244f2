//! The harness of the black-box HTTP tests: a real server on a random port over a fresh store
//! (SQLite, or PostgreSQL when `JEMBATAN_TEST_DATABASE_URL` is set), a plain HTTP/1.1 client,
//! and the few story-level helpers (a merchant, a product, a checkout) that let each test read
//! like what its user does.
//!
//! Everything goes over the socket; the core is touched only to issue tokens (there is no HTTP
//! route for that), the store only to fan the outbox out into webhook deliveries where no
//! dispatcher runs, and the database only to take snapshots that prove a refused request left
//! no trace.

// Each test binary (http.rs, races.rs) uses its own part of this harness.
#![allow(dead_code)]

use std::collections::BTreeMap;
use std::net::SocketAddr;
use std::sync::Arc;

use http_body_util::{BodyExt, Full};
use hyper::body::Bytes;
use hyper::header::{AUTHORIZATION, CONTENT_TYPE, HeaderMap, HeaderName, HeaderValue};
use hyper::{Method, Request, StatusCode};
use hyper_util::client::legacy::Client;
use hyper_util::client::legacy::connect::HttpConnector;
use hyper_util::rt::TokioExecutor;
use jembatan_api::{ApiLimits, AppState};
use jembatan_core::{Core, SystemClock, WebhookOptions};
use jembatan_domain::{Channel, MerchantId, Principal, TypedId};
use jembatan_store::legacy::{Batch, LegacyBuyer, LegacyProduct, LegacyShop, LegacySku, PRODUCT_LIVE};
use jembatan_store::testing::{TestLegacyStore, TestStore, fresh_legacy_store, fresh_store};
use jembatan_store::{Store, q};
use serde_json::{Value, json};

pub const PROBLEM_BASE: &str = "https://jembatan.dev/problems/";
pub const BUYER_ID: &str = "buyer-8f2c";
pub const RECIPIENT_NAME: &str = "Siti Rahayu";
pub const PHONE: &str = "081234567890";
pub const PHONE_E164: &str = "+6281234567890";
pub const STREET: &str = "Jl. Braga No. 12";
pub const POSTAL_CODE: &str = "40111";

/// A running server with its store and one token of every fixed role.
/// The secret of the key the test apps sign audit digests with.
pub const AUDIT_TEST_KEY: [u8; 32] = [9; 32];

pub struct App {
    pub core: Core,
    pub operator: String,
    pub regulator: String,
    pub provider: String,
    pub social: String,
    pub marketplace: String,
    address: SocketAddr,
    client: Client<HttpConnector, Full<Bytes>>,
    server: tokio::task::JoinHandle<std::io::Result<()>>,
    /// The webhook dispatcher, where the test runs one.
    dispatcher: Option<tokio::task::JoinHandle<()>>,
    test_store: TestStore,
    /// The social shop's legacy store, behind the gateway of `/social/v1`.
    pub legacy: TestLegacyStore,
    pub gateway: jembatan_core::gateway::Gateway,
}

impl Drop for App {
    fn drop(&mut self) {
        self.server.abort();
        if let Some(dispatcher) = &self.dispatcher {
            dispatcher.abort();
        }
    }
}

impl App {
    /// The server alone: webhook subscriptions follow the default rules, nothing is sent.
    pub async fn start() -> App {
        App::start_with(WebhookOptions::default(), false).await
    }

    /// The server with these webhook rules and, if `dispatch`, the webhook dispatcher that
    /// `jembatan serve` runs beside it.
    pub async fn start_with(webhooks: WebhookOptions, dispatch: bool) -> App {
        let test_store = fresh_store().await.expect("a fresh store");
        let core = Core::new(test_store.store.clone(), Arc::new(SystemClock)).with_webhook_options(webhooks);
        let dispatcher = dispatch.then(|| tokio::spawn(core.clone().run_webhooks()));
        let legacy = fresh_legacy_store().await.expect("a fresh legacy store");
        let gateway = jembatan_core::gateway::Gateway::new(
            core.clone(),
            legacy.store.clone(),
            jembatan_core::gateway::GatewayOptions::default(),
        );
        let state = AppState::new(core.clone(), ApiLimits::default())
            .with_gateway(gateway.clone())
            .with_audit_public_key(jembatan_domain::audit::public_key_hex(
                &jembatan_domain::audit::signing_key(&AUDIT_TEST_KEY),
            ));
        let listener = tokio::net::TcpListener::bind("127.0.0.1:0").await.expect("bind a random port");
        let address = listener.local_addr().expect("bound address");
        let server = tokio::spawn(jembatan_api::serve(listener, state, std::future::pending()));
        // A connection per request: a test that sends a refused body must not poison the next
        // request with a half-read keep-alive connection.
        let client = Client::builder(TokioExecutor::new()).pool_max_idle_per_host(0).build_http();
        App {
            operator: issue(&core, Principal::Operator).await,
            regulator: issue(&core, Principal::Regulator).await,
            provider: issue(&core, Principal::Provider).await,
            social: issue(&core, Principal::Channel(Channel::Social)).await,
            marketplace: issue(&core, Principal::Channel(Channel::Marketplace)).await,
            core,
            address,
            client,
            server,
            dispatcher,
            test_store,
            legacy,
            gateway,
        }
    }

    /// Where the server listens, for tests that speak raw TCP.
    pub fn address(&self) -> SocketAddr {
        self.address
    }

    pub fn store(&self) -> &Store {
        &self.test_store.store
    }

    /// Issues a bearer token for `subject`, as `jembatan token issue` does.
    pub async fn token_for(&self, subject: Principal) -> String {
        issue(&self.core, subject).await
    }

    pub fn call(&self, method: Method, path: &str) -> Call<'_> {
        Call { app: self, method, path: path.to_owned(), headers: Vec::new(), body: None }
    }

    pub fn get(&self, path: &str) -> Call<'_> {
        self.call(Method::GET, path)
    }

    pub fn delete(&self, path: &str) -> Call<'_> {
        self.call(Method::DELETE, path)
    }

    pub fn post(&self, path: &str) -> Call<'_> {
        self.call(Method::POST, path)
    }

    pub fn put(&self, path: &str) -> Call<'_> {
        self.call(Method::PUT, path)
    }

    // ----- story helpers -----

    /// The operator registers a local merchant; the merchant gets a token of its own.
    pub async fn new_merchant(&self, name: &str) -> Merchant {
        let body = json!({"name": name, "origin": "local", "province": "Jawa Barat", "nib": "9120001234567"});
        let reply = self.post("/v1/merchants").token(&self.operator).json(&body).send().await;
        let merchant = reply.expect(StatusCode::CREATED).json();
        let id = text(&merchant["id"]);
        let merchant_id = MerchantId::parse(&id).expect("a merchant id");
        let token = self.token_for(Principal::Merchant(merchant_id)).await;
        Merchant { id, token }
    }

    /// The merchant lists a product with one SKU per `(code, price_rupiah, stock)`.
    pub async fn list_product(&self, merchant: &Merchant, skus: &[(&str, i64, i64)]) -> Product {
        let reply = self
            .post(&format!("/v1/merchants/{}/products", merchant.id))
            .token(&merchant.token)
            .json(&product_body(skus))
            .send()
            .await;
        let product = reply.expect(StatusCode::CREATED).json();
        let sku_ids = product["skus"].as_array().expect("skus").iter().map(|s| text(&s["id"])).collect();
        Product { id: text(&product["id"]), sku_ids }
    }

    /// A channel checks out `(sku_id, quantity)` lines for the standard buyer.
    pub async fn checkout(&self, channel_token: &str, items: &[(&str, i64)]) -> Value {
        self.post("/v1/checkouts")
            .token(channel_token)
            .json(&checkout_body(items))
            .send()
            .await
            .expect(StatusCode::CREATED)
            .json()
    }

    /// The buyer pays the checkout: the provider simulator sends its signed callback to the
    /// core (over HTTP); returns the core's answer to the callback.
    pub async fn pay(&self, checkout: &Value) -> Value {
        let payment_id = text(&checkout["payment"]["id"]);
        self.simulate_payment(&payment_id, json!({})).await.expect(StatusCode::OK).json()
    }

    /// Asks the provider simulator to report `payment_id` paid (`body` may claim an amount).
    pub async fn simulate_payment(&self, payment_id: &str, body: Value) -> Reply {
        let body = body.to_string();
        let message = jembatan_core::payments::simulator_request_message(payment_id, body.as_bytes());
        let simulator = self.core.simulator().expect("the simulator is the provider");
        let now = self.core.clock().now();
        let (timestamp, _) = simulator.sign(&body, now);
        let signature = jembatan_core::payments::sign(simulator.secret(), &timestamp, &message);
        self.post(&format!("/v1/provider-sim/payments/{payment_id}/pay"))
            .header(HeaderName::from_static("x-callback-timestamp"), &timestamp)
            .header(HeaderName::from_static("x-callback-signature"), &signature)
            .raw("application/json", body)
            .send()
            .await
    }

    /// Signs `body` as the payment provider does, now.
    pub fn sign(&self, body: &str) -> (String, String) {
        let simulator = self.core.simulator().expect("the simulator is the provider");
        simulator.sign(body, self.core.clock().now())
    }

    /// `action` (`ship`, `deliver`, `confirm`, `cancel`) on an order, by the holder of `token`.
    pub async fn act(&self, token: &str, order_id: &str, action: &str) -> Reply {
        self.post(&format!("/v1/orders/{order_id}/{action}")).token(token).send().await
    }

    /// A one-line order of `sku_id` through `channel_token`, brought (by the operator and the
    /// provider) to `status`; returns its id.
    pub async fn order_in(&self, channel_token: &str, sku_id: &str, status: &str) -> String {
        let checkout = self.checkout(channel_token, &[(sku_id, 1)]).await;
        let order_id = text(&checkout["orders"][0]["id"]);
        let path: &[&str] = match status {
            "awaiting_payment" => &[],
            "paid" => &["pay"],
            "shipped" => &["pay", "ship"],
            "delivered" => &["pay", "ship", "deliver"],
            "completed" => &["pay", "ship", "deliver", "confirm"],
            "cancelled" => &["cancel"],
            other => panic!("no way to an order that is {other}"),
        };
        for step in path {
            if *step == "pay" {
                self.pay(&checkout).await;
            } else {
                self.act(&self.operator, &order_id, step).await.expect(StatusCode::OK);
            }
        }
        assert_eq!(self.order(&order_id).await["status"], status);
        order_id
    }

    /// The operator's view of an order.
    pub async fn order(&self, order_id: &str) -> Value {
        self.get(&format!("/v1/orders/{order_id}"))
            .token(&self.operator)
            .send()
            .await
            .expect(StatusCode::OK)
            .json()
    }

    /// The operator's view of a SKU.
    pub async fn sku(&self, sku_id: &str) -> Value {
        self.get(&format!("/v1/skus/{sku_id}"))
            .token(&self.operator)
            .send()
            .await
            .expect(StatusCode::OK)
            .json()
    }

    /// `owner_token` subscribes to every event at `url`; returns the subscription's id.
    pub async fn subscribe(&self, owner_token: &str, url: &str) -> Value {
        self.post("/v1/webhooks/subscriptions")
            .token(owner_token)
            .json(&json!({"url": url}))
            .send()
            .await
            .expect(StatusCode::CREATED)
            .json()
    }

    /// Turns the outbox into webhook deliveries, as the dispatcher's first step does (this
    /// harness runs no dispatcher, so nothing is sent).
    pub async fn fan_out_webhooks(&self) {
        let now = self.core.clock().now();
        while self.store().fan_out_webhooks(now, 1_000).await.expect("fan-out").0 > 0 {}
    }

    /// The ids of the deliveries of a subscription, as its owner sees them.
    pub async fn delivery_ids(&self, owner_token: &str, subscription_id: &str) -> Vec<String> {
        let page = self
            .get(&format!("/v1/webhooks/subscriptions/{subscription_id}/deliveries"))
            .token(owner_token)
            .send()
            .await
            .expect(StatusCode::OK)
            .json();
        page["deliveries"].as_array().expect("deliveries").iter().map(|d| text(&d["id"])).collect()
    }

    /// The merchant asks to withdraw `rupiah` to a BCA account.
    pub async fn request_payout(&self, merchant: &Merchant, rupiah: i64) -> Reply {
        self.post(&format!("/v1/merchants/{}/payouts", merchant.id))
            .token(&merchant.token)
            .json(&payout_body(rupiah, "014"))
            .send()
            .await
    }

    /// The merchant's balance as the merchant sees it.
    pub async fn balance(&self, merchant: &Merchant) -> Value {
        self.get(&format!("/v1/merchants/{}/balance", merchant.id))
            .token(&merchant.token)
            .send()
            .await
            .expect(StatusCode::OK)
            .json()
    }

    // ----- database snapshots -----

    /// Every row of every table a request could change, as text, plus the journal counts.
    pub async fn snapshot(&self) -> Snapshot {
        const TABLES: &[(&str, &[&str])] = &[
            ("merchants", &["merchant_id", "name", "origin", "province", "nib", "created_at_ms"]),
            ("products", &["merchant_id", "product_id", "title", "category", "created_at_ms"]),
            (
                "skus",
                &[
                    "merchant_id",
                    "sku_id",
                    "product_id",
                    "code",
                    "price_idr",
                    "stock_on_hand",
                    "stock_reserved",
                ],
            ),
            (
                "checkouts",
                &["checkout_id", "channel", "buyer_id", "payment_method", "total_idr", "orders_count"],
            ),
            (
                "orders",
                &[
                    "merchant_id",
                    "order_id",
                    "checkout_id",
                    "status",
                    "total_idr",
                    "updated_at_ms",
                    "version",
                    "held_idr",
                    "refunded_idr",
                ],
            ),
            ("payments", &["payment_id", "status", "amount_idr", "paid_at_ms", "updated_at_ms"]),
            ("refunds", &["refund_id", "order_id", "amount_idr", "stage"]),
            ("ledger_transfers", &["transfer_id", "amount_idr", "amount_posted_idr"]),
            ("ledger_pending", &["transfer_id", "state"]),
            (
                "ledger_accounts",
                &["account_id", "debits_pending", "debits_posted", "credits_pending", "credits_posted"],
            ),
            ("order_lines", &["merchant_id", "order_id", "line_no", "sku_id", "quantity", "line_total_idr"]),
            ("outbox", &["event_id", "event_type", "entity_id"]),
            ("audit_log", &["audit_id", "actor_role", "action", "entity_id"]),
            ("idempotency_keys", &["scope", "idem_key", "state", "status_code"]),
            (
                "payouts",
                &[
                    "merchant_id",
                    "payout_id",
                    "amount_idr",
                    "status",
                    "batch_id",
                    "failure_reason",
                    "updated_at_ms",
                ],
            ),
            ("payout_batches", &["batch_id", "payouts_count", "total_idr"]),
            ("reconciliation_runs", &["reconciliation_id", "lines_count"]),
            ("ledger_transfers", &["transfer_id", "amount_idr", "amount_posted_idr"]),
            ("ledger_pending", &["transfer_id", "state"]),
            (
                "ledger_accounts",
                &["account_id", "debits_pending", "debits_posted", "credits_pending", "credits_posted"],
            ),
            ("api_tokens", &["token_id", "role", "subject", "revoked_at_ms"]),
            ("webhook_subscriptions", &["subscription_id", "owner_role", "owner_subject", "url", "active"]),
            (
                "webhook_deliveries",
                &[
                    "delivery_id",
                    "subscription_id",
                    "status",
                    "attempts",
                    "attempts_at_replay",
                    "next_attempt_at_ms",
                ],
            ),
            ("webhook_attempts", &["delivery_id", "attempt_no", "status_code"]),
        ];
        let queries: Vec<(&'static str, String)> = TABLES
            .iter()
            .map(|(table, columns)| {
                let row = columns
                    .iter()
                    .map(|c| format!("COALESCE(CAST({c} AS TEXT), '-')"))
                    .collect::<Vec<_>>()
                    .join(" || '|' || ");
                (*table, format!("SELECT {row} AS r FROM {table} ORDER BY r"))
            })
            .collect();
        let tables = self
            .store()
            .read(move |conn| {
                Box::pin(async move {
                    let mut tables = BTreeMap::new();
                    for (table, sql) in queries {
                        let rows = q(sql).fetch_all(&mut *conn).await?;
                        let rows = rows.iter().map(|r| r.text("r")).collect::<Result<Vec<_>, _>>()?;
                        tables.insert(table, rows);
                    }
                    Ok(tables)
                })
            })
            .await
            .expect("snapshot of the tables");
        let journal = jembatan_store::journal::counts(self.store()).await.expect("journal counts");
        Snapshot { journal, tables }
    }

    /// Fails naming `case` and the tables that differ if anything changed since `before`.
    pub async fn assert_unchanged(&self, before: &Snapshot, case: &str) {
        let after = self.snapshot().await;
        assert_eq!(after.journal, before.journal, "{case}: journal (outbox, audit) counts changed");
        self.assert_state_unchanged(before, case).await;
    }

    /// Like [`App::assert_unchanged`], for requests that are recorded (a refused provider
    /// callback has its record and audit entry) but must change no state.
    pub async fn assert_state_unchanged(&self, before: &Snapshot, case: &str) {
        let after = self.snapshot().await;
        let journal = ["outbox", "audit_log"];
        for (table, rows) in before.tables.iter().filter(|(t, _)| !journal.contains(t)) {
            assert_eq!(&after.tables[table], rows, "{case}: table `{table}` changed");
        }
    }
}

async fn issue(core: &Core, subject: Principal) -> String {
    let (secret, _) =
        core.issue_token(&Principal::Operator, subject, "http test").await.expect("issue a token");
    secret
}

/// The database as the tests compare it.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Snapshot {
    /// (outbox events, audit entries)
    pub journal: (i64, i64),
    pub tables: BTreeMap<&'static str, Vec<String>>,
}

pub struct Merchant {
    pub id: String,
    pub token: String,
}

pub struct Product {
    pub id: String,
    pub sku_ids: Vec<String>,
}

pub fn product_body(skus: &[(&str, i64, i64)]) -> Value {
    let skus: Vec<Value> = skus
        .iter()
        .map(|(code, price, stock)| {
            json!({"code": code, "price": {"amount": price, "currency": "IDR"}, "stock": stock})
        })
        .collect();
    json!({"title": "Kemeja Batik Pria Lengan Panjang", "category": "fashion", "skus": skus})
}

pub fn payout_body(rupiah: i64, bank_code: &str) -> Value {
    json!({
        "amount": {"amount": rupiah, "currency": "IDR"},
        "bank_code": bank_code,
        "account_number": "1234567890",
        "account_holder": RECIPIENT_NAME,
    })
}

pub fn checkout_body(items: &[(&str, i64)]) -> Value {
    let items: Vec<Value> =
        items.iter().map(|(sku, quantity)| json!({"sku_id": sku, "quantity": quantity})).collect();
    json!({
        "buyer_id": BUYER_ID,
        "items": items,
        "shipping_address": {
            "recipient_name": RECIPIENT_NAME,
            "phone": PHONE,
            "street": STREET,
            "city": "Bandung",
            "province": "Jawa Barat",
            "postal_code": POSTAL_CODE,
        },
        "payment_method": "qris",
    })
}

/// A JSON string value, or a failure saying what it was instead.
pub fn text(value: &Value) -> String {
    value.as_str().unwrap_or_else(|| panic!("expected a string, got {value}")).to_owned()
}

/// One request being put together.
pub struct Call<'a> {
    app: &'a App,
    method: Method,
    path: String,
    headers: Vec<(HeaderName, String)>,
    body: Option<Vec<u8>>,
}

impl Call<'_> {
    pub fn token(self, secret: &str) -> Self {
        self.header(AUTHORIZATION, &format!("Bearer {secret}"))
    }

    pub fn idempotency_key(self, key: &str) -> Self {
        self.header(HeaderName::from_static("idempotency-key"), key)
    }

    pub fn header(mut self, name: HeaderName, value: &str) -> Self {
        self.headers.push((name, value.to_owned()));
        self
    }

    pub fn json(self, value: &Value) -> Self {
        self.raw("application/json", value.to_string().into_bytes())
    }

    /// A body sent exactly as given, with its content type.
    pub fn raw(mut self, content_type: &str, body: impl Into<Vec<u8>>) -> Self {
        self.body = Some(body.into());
        self.header(CONTENT_TYPE, content_type)
    }

    pub async fn send(self) -> Reply {
        let uri = format!("http://{}{}", self.app.address, self.path);
        let mut request = Request::builder().method(self.method.clone()).uri(&uri);
        for (name, value) in &self.headers {
            request = request.header(name, HeaderValue::from_str(value).expect("header value"));
        }
        let body = Full::new(Bytes::from(self.body.unwrap_or_default()));
        let request = request.body(body).expect("request");
        let response = self.app.client.request(request).await.unwrap_or_else(|e| panic!("{uri}: {e:?}"));
        let status = response.status();
        let headers = response.headers().clone();
        let body = response.into_body().collect().await.expect("response body").to_bytes();
        Reply { method: self.method, path: self.path, status, headers, body }
    }
}

/// A response, with what was asked so that failures say which request it answered.
pub struct Reply {
    pub method: Method,
    pub path: String,
    pub status: StatusCode,
    pub headers: HeaderMap,
    pub body: Bytes,
}

impl Reply {
    pub fn text(&self) -> &str {
        std::str::from_utf8(&self.body).expect("a UTF-8 body")
    }

    pub fn json(&self) -> Value {
        serde_json::from_slice(&self.body).unwrap_or_else(|e| {
            panic!("{} {}: body is not JSON ({e}): {}", self.method, self.path, self.text())
        })
    }

    pub fn content_type(&self) -> &str {
        self.headers.get(CONTENT_TYPE).and_then(|v| v.to_str().ok()).unwrap_or("")
    }

    /// True when the server answered from its idempotency record.
    pub fn replayed(&self) -> bool {
        self.headers.get("idempotency-replayed").is_some_and(|v| v == "true")
    }

    /// Asserts the status, showing the body otherwise.
    #[track_caller]
    pub fn expect(self, status: StatusCode) -> Self {
        assert_eq!(self.status, status, "{} {}: {}", self.method, self.path, self.text());
        self
    }

    /// Asserts an RFC 9457 problem of `status` and stable kind `kind`; returns its document.
    #[track_caller]
    pub fn problem(&self, status: StatusCode, kind: &str) -> Value {
        self.problem_in("", status, kind)
    }

    /// [`Reply::problem`], naming the `case` of a table of cases in its failure message.
    #[track_caller]
    pub fn problem_in(&self, case: &str, status: StatusCode, kind: &str) -> Value {
        let what = format!("{case} {} {}: {}", self.method, self.path, self.text());
        assert_eq!(self.status, status, "{what}");
        assert_eq!(self.content_type(), "application/problem+json", "{what}");
        let problem = self.json();
        assert_eq!(problem["type"], format!("{PROBLEM_BASE}{kind}"), "{what}");
        assert_eq!(problem["status"], status.as_u16(), "{what}");
        assert!(problem["title"].is_string() && problem["detail"].is_string(), "{what}");
        problem
    }
}

// ----- the social shop -----

pub const SOCIAL_BUYER: &str = "6600112233";

/// A social shop as the legacy store holds it, enrolled with the core, with its seller's token.
pub struct SocialShop {
    pub shop_id: String,
    pub token: String,
    pub merchant_id: String,
    /// (product id, its SKU ids).
    pub products: Vec<(String, Vec<String>)>,
}

/// Seeds social shop number `n` into the legacy store: two live products of two SKUs each, prices
/// written the ways legacy rows have them, and the buyer's social profile.
pub async fn seed_social_shop(app: &App, n: u64) -> SocialShop {
    let shop_id = format!("{}", 7_100_000_000 + n);
    let product = |k: u64, title: &str, category: &str, prices: [&str; 2]| {
        let product_id = format!("{}", 8_200_000_000 + n * 100 + k);
        LegacyProduct {
            skus_problem: None,
            shop_id: shop_id.clone(),
            product_id: product_id.clone(),
            title: title.to_owned(),
            category: category.to_owned(),
            description: "Dikirim dari Bandung".to_owned(),
            skus: (0..2)
                .map(|i| LegacySku {
                    sku_id: format!("{product_id}{i}"),
                    seller_sku: format!("SKU-{k}-{i}"),
                    name: ["M", "L"][i as usize].to_owned(),
                    price: prices[i as usize].to_owned(),
                    stock: 10,
                })
                .collect(),
            status: PRODUCT_LIVE,
            create_time: 1_700_000_000,
            update_time: 1_700_000_000,
        }
    };
    let products = vec![
        product(1, "Kemeja Batik Parang", "fashion", ["149.000", "150000.00"]),
        product(2, "Serum Vitamin C", "beauty", ["89000", "1.250.000"]),
    ];
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
    app.legacy.store.load(batch).await.expect("load the shop");
    let enrolled = app
        .post(&format!("/v1/ops/social/shops/{shop_id}/enrol"))
        .token(&app.operator)
        .send()
        .await
        .expect(StatusCode::OK)
        .json();
    assert_eq!(enrolled["owner"], "legacy");
    let merchant_id = text(&enrolled["merchant_id"]);
    let token = app.token_for(Principal::Merchant(MerchantId::parse(&merchant_id).unwrap())).await;
    SocialShop {
        shop_id,
        token,
        merchant_id,
        products: products
            .iter()
            .map(|p| (p.product_id.clone(), p.skus.iter().map(|s| s.sku_id.clone()).collect()))
            .collect(),
    }
}

/// A `/social/v1` order body for `shop`: `(product index, SKU index, quantity)` items.
pub fn social_order_body(shop: &SocialShop, items: &[(usize, usize, i64)], method: &str) -> Value {
    json!({
        "shop_id": shop.shop_id,
        "buyer_id": SOCIAL_BUYER,
        "payment_method": method,
        "items": items.iter().map(|(p, s, q)| json!({
            "product_id": shop.products[*p].0, "sku_id": shop.products[*p].1[*s], "quantity": q
        })).collect::<Vec<_>>(),
        "recipient": {"name": "Putri Lestari", "phone": "0813 9988 7766", "address_detail": "Jl. Dago No. 5",
                      "city": "Bandung", "province": "jawa barat", "postal_code": "40135"},
    })
}

/// Social shops numbered `ns` loaded into the legacy store, planned into the wave
/// `engine-setup` and moved to the core by the migration engine, all over the API: their
/// merchant ids, in the order given.
pub async fn migrated_shops<const N: usize>(app: &App, ns: [u64; N]) -> [String; N] {
    let mut shops = Vec::with_capacity(N);
    for n in ns {
        shops.push(seed_social_shop(app, n).await.shop_id);
    }
    let wave = json!({"wave": "engine-setup", "select": format!("shop_id={}", shops.join("|"))});
    app.post("/v1/ops/migration/waves")
        .token(&app.operator)
        .json(&wave)
        .send()
        .await
        .expect(StatusCode::CREATED);
    let run = json!({"wave": "engine-setup", "parallel": 2});
    app.post("/v1/ops/migration/runs")
        .token(&app.operator)
        .json(&run)
        .send()
        .await
        .expect(StatusCode::ACCEPTED);
    wait_for_run(app).await;
    let page = app
        .get("/v1/ops/migration/merchants?wave=engine-setup")
        .token(&app.operator)
        .send()
        .await
        .expect(StatusCode::OK)
        .json();
    let merchants = page["merchants"].as_array().expect("merchants");
    let ids: Vec<String> = shops
        .iter()
        .map(|shop| {
            let m =
                merchants.iter().find(|m| m["shop_id"] == shop.as_str()).expect("the shop is in the wave");
            assert_eq!(m["state"], "cut_over", "{m}");
            text(&m["merchant_id"])
        })
        .collect();
    ids.try_into().expect("one merchant per shop")
}

/// Waits until the migration run started over the API is over (at most a minute).
pub async fn wait_for_run(app: &App) -> serde_json::Value {
    let started = std::time::Instant::now();
    loop {
        let progress = app
            .get("/v1/ops/migration/progress")
            .token(&app.operator)
            .send()
            .await
            .expect(StatusCode::OK)
            .json();
        if progress["running"] == false {
            return progress;
        }
        assert!(started.elapsed() < std::time::Duration::from_secs(60), "the run did not end: {progress}");
        tokio::time::sleep(std::time::Duration::from_millis(50)).await;
    }
}
