//! Webhooks out, end to end: the API and its dispatcher on a random port, a receiver on
//! another, and the deliveries it gets checked by an independent implementation of the
//! Standard Webhooks specification (the reference Python package, `webhook_verify.py`).
//!
//! The receiver answers over the socket like a merchant's system would; each request it gets
//! is handed to the test through a channel, so the test waits for events, not for time.

mod common;

use std::collections::BTreeMap;
use std::path::Path;
use std::sync::Arc;
use std::sync::atomic::{AtomicU32, Ordering};
use std::time::Duration;

use axum::body::Bytes;
use axum::http::{HeaderMap, StatusCode as AxumStatus};
use common::*;
use hyper::StatusCode;
use jembatan_core::WebhookOptions;
use jembatan_domain::TypedId;
use serde_json::{Value, json};
use tokio::sync::mpsc;

/// How long a test waits for a delivery or a log entry before it fails.
const WAIT: Duration = Duration::from_secs(15);

/// One request the receiver got.
#[derive(Debug, Clone)]
struct Captured {
    headers: BTreeMap<String, String>,
    body: String,
    /// What the receiver answered.
    status: u16,
}

/// A webhook receiver on a random port that fails its first `failures` requests with 500.
struct Receiver {
    url: String,
    inbox: mpsc::UnboundedReceiver<Captured>,
    server: tokio::task::JoinHandle<()>,
}

impl Drop for Receiver {
    fn drop(&mut self) {
        self.server.abort();
    }
}

impl Receiver {
    async fn start(failures: u32) -> Receiver {
        let (sender, inbox) = mpsc::unbounded_channel();
        let failures_left = Arc::new(AtomicU32::new(failures));
        let handler = move |headers: HeaderMap, body: Bytes| {
            let (sender, failures_left) = (sender.clone(), failures_left.clone());
            async move {
                let failing =
                    failures_left.fetch_update(Ordering::SeqCst, Ordering::SeqCst, |n| n.checked_sub(1));
                let status =
                    if failing.is_ok() { AxumStatus::INTERNAL_SERVER_ERROR } else { AxumStatus::NO_CONTENT };
                let headers = headers
                    .iter()
                    .map(|(k, v)| (k.as_str().to_owned(), v.to_str().unwrap_or("").to_owned()))
                    .collect();
                let body = String::from_utf8(body.to_vec()).expect("a UTF-8 body");
                let _ = sender.send(Captured { headers, body, status: status.as_u16() });
                status
            }
        };
        let router = axum::Router::new().route("/hooks", axum::routing::post(handler));
        let listener = tokio::net::TcpListener::bind("127.0.0.1:0").await.expect("bind the receiver");
        let url = format!("http://{}/hooks", listener.local_addr().expect("receiver address"));
        let server = tokio::spawn(async move {
            axum::serve(listener, router).await.expect("the receiver serves");
        });
        Receiver { url, inbox, server }
    }

    /// The next request, or a failure after [`WAIT`].
    async fn next(&mut self, what: &str) -> Captured {
        tokio::time::timeout(WAIT, self.inbox.recv())
            .await
            .unwrap_or_else(|_| panic!("no webhook arrived: {what}"))
            .expect("the receiver runs")
    }

    /// Fails if a request arrives within a short while (nothing more was due).
    fn assert_empty(&mut self, what: &str) {
        if let Ok(extra) = self.inbox.try_recv() {
            panic!("{what}: an unexpected delivery arrived: {extra:?}");
        }
    }
}

/// Webhook rules for tests: the receiver is on loopback, retries come fast.
fn fast_webhooks() -> WebhookOptions {
    WebhookOptions {
        allow_private_urls: true,
        max_attempts: 5,
        timeout: Duration::from_secs(5),
        poll_interval: Duration::from_millis(20),
        retry_delays_ms: vec![50, 100],
        ..WebhookOptions::default()
    }
}

/// Polls `check` until it returns a value (the delivery log is written after the receiver
/// answers, so there is no event to wait for), failing after [`WAIT`].
async fn eventually<F, Fut>(what: &str, mut check: F) -> Value
where
    F: FnMut() -> Fut,
    Fut: std::future::Future<Output = Option<Value>>,
{
    let deadline = tokio::time::Instant::now() + WAIT;
    loop {
        if let Some(value) = check().await {
            return value;
        }
        assert!(tokio::time::Instant::now() < deadline, "gave up waiting: {what}");
        tokio::time::sleep(Duration::from_millis(25)).await;
    }
}

/// The delivery log of a subscription as its owner sees it.
async fn log(app: &App, token: &str, subscription_id: &str) -> Vec<Value> {
    let page = app
        .get(&format!("/v1/webhooks/subscriptions/{subscription_id}/deliveries"))
        .token(token)
        .send()
        .await
        .expect(StatusCode::OK)
        .json();
    page["deliveries"].as_array().expect("deliveries").clone()
}

/// Runs `webhook_verify.py` on `deliveries`; its exit code and output.
fn verify_independently(deliveries: &[(String, Captured)]) -> (i32, String) {
    let file = tempfile::NamedTempFile::new().expect("a temporary file");
    let items: Vec<Value> = deliveries
        .iter()
        .map(|(secret, c)| json!({"secret": secret, "headers": c.headers, "body": c.body}))
        .collect();
    std::fs::write(file.path(), serde_json::to_vec(&items).unwrap()).expect("write the deliveries");
    let script = Path::new(env!("CARGO_MANIFEST_DIR")).join("tests/webhook_verify.py");
    let output =
        std::process::Command::new("python3").arg(&script).arg(file.path()).output().unwrap_or_else(|e| {
            panic!("cannot run python3 ({e}): install Python 3 and `python3 -m pip install standardwebhooks`")
        });
    let text =
        format!("{}{}", String::from_utf8_lossy(&output.stdout), String::from_utf8_lossy(&output.stderr));
    let code = output.status.code().unwrap_or(-1);
    assert_ne!(code, 3, "{text}");
    assert_ne!(code, 2, "the verifier was misused: {text}");
    (code, text)
}

#[tokio::test]
async fn a_merchant_gets_signed_order_events_retried_logged_and_replayed() {
    let app = App::start_with(fast_webhooks(), true).await;
    let mut receiver = Receiver::start(2).await;
    let merchant = app.new_merchant("Toko Batik Sari").await;
    let sku = app.list_product(&merchant, &[("BATIK-M", 149_000, 10)]).await.sku_ids[0].clone();
    let subscription = app
        .post("/v1/webhooks/subscriptions")
        .token(&merchant.token)
        .json(&json!({"url": receiver.url, "event_types": ["order.created", "order.paid"]}))
        .send()
        .await
        .expect(StatusCode::CREATED)
        .json();
    let subscription_id = text(&subscription["id"]);
    let secret = text(&subscription["secret"]);
    assert!(secret.starts_with("whsec_"), "{subscription}");
    assert_eq!(subscription["owner_role"], "merchant");
    assert_eq!(subscription["owner_subject"], merchant.id.as_str());
    let shown = app
        .get(&format!("/v1/webhooks/subscriptions/{subscription_id}"))
        .token(&merchant.token)
        .send()
        .await
        .expect(StatusCode::OK)
        .json();
    assert!(shown.get("secret").is_none(), "the secret is shown once: {shown}");

    // A checkout makes an order of this merchant: its order.created arrives after two refusals.
    let checkout = app.checkout(&app.social, &[(&sku, 1)]).await;
    let order_id = text(&checkout["orders"][0]["id"]);
    let tries = [
        receiver.next("first try").await,
        receiver.next("second try").await,
        receiver.next("third try").await,
    ];
    assert_eq!(tries.iter().map(|c| c.status).collect::<Vec<_>>(), [500, 500, 204]);
    let first = &tries[0];
    for attempt in &tries {
        assert_eq!(
            attempt.headers["webhook-id"], first.headers["webhook-id"],
            "one message id for every retry"
        );
        assert_eq!(attempt.body, first.body, "the same body on every retry");
        assert!(attempt.headers["webhook-signature"].starts_with("v1,"));
        assert!(attempt.headers["webhook-timestamp"].parse::<i64>().is_ok());
        assert_eq!(attempt.headers["content-type"], "application/json");
    }
    let body: Value = serde_json::from_str(&first.body).expect("a JSON body");
    assert_eq!(body["type"], "order.created");
    assert_eq!(body["data"]["order_id"], order_id.as_str());
    assert!(body["timestamp"].as_str().is_some_and(|t| t.ends_with('Z')), "{body}");
    let message_id = first.headers["webhook-id"].clone();
    assert!(message_id.starts_with("msg_"));

    // The log shows the three attempts, newest first, once the last one is recorded.
    let delivered = eventually("the delivery log shows the delivery", || async {
        let entries = log(&app, &merchant.token, &subscription_id).await;
        entries.into_iter().find(|d| d["id"] == message_id.as_str() && d["status"] == "delivered")
    })
    .await;
    assert_eq!(delivered["attempts"], 3);
    assert_eq!(delivered["last_status_code"], 204);
    assert_eq!(delivered["event_type"], "order.created");
    let attempts: Vec<(u64, Value)> = delivered["recent_attempts"]
        .as_array()
        .unwrap()
        .iter()
        .map(|a| (a["attempt"].as_u64().unwrap(), a["status_code"].clone()))
        .collect();
    assert_eq!(attempts, [(3, json!(204)), (2, json!(500)), (1, json!(500))]);

    // Payment: order.paid arrives at once; checkout.created (not the merchant's) and
    // order.shipped (not subscribed) never do.
    app.pay(&checkout).await;
    let paid = receiver.next("order.paid").await;
    assert_eq!(serde_json::from_str::<Value>(&paid.body).unwrap()["type"], "order.paid");
    assert_ne!(paid.headers["webhook-id"], message_id);
    app.act(&merchant.token, &order_id, "ship").await.expect(StatusCode::OK);

    // A replay sends the same message again (same id and body, a fresh signature).
    let replayed = app
        .post(&format!("/v1/webhooks/deliveries/{message_id}/replay"))
        .token(&merchant.token)
        .send()
        .await
        .expect(StatusCode::ACCEPTED)
        .json();
    assert_eq!(replayed["status"], "pending");
    let again = receiver.next("the replay").await;
    assert_eq!((&again.headers["webhook-id"], &again.body), (&message_id, &first.body));
    eventually("the replay is logged", || async {
        let entries = log(&app, &merchant.token, &subscription_id).await;
        entries
            .into_iter()
            .find(|d| d["id"] == message_id.as_str() && d["attempts"] == 4 && d["status"] == "delivered")
    })
    .await;
    let entries = log(&app, &merchant.token, &subscription_id).await;
    let mut types: Vec<String> = entries.iter().map(|d| text(&d["event_type"])).collect();
    types.sort();
    assert_eq!(types, ["order.created", "order.paid"], "only the subscribed events of this merchant");
    receiver.assert_empty("after the replay");

    // Every request received, refused ones included, verifies with the reference
    // implementation; a tampered body does not.
    let captured: Vec<(String, Captured)> =
        tries.iter().chain([&paid, &again]).map(|c| (secret.clone(), c.clone())).collect();
    let (code, output) = verify_independently(&captured);
    assert_eq!(code, 0, "standardwebhooks refused our signatures: {output}");
    let mut tampered = captured[0].clone();
    tampered.1.body = tampered.1.body.replace(&order_id, "ord_00000000000000000000000000");
    assert_ne!(tampered.1.body, captured[0].1.body);
    let (code, output) = verify_independently(&[tampered]);
    assert_eq!(code, 1, "a tampered body must not verify: {output}");
    let mut wrong_secret = captured[0].clone();
    wrong_secret.0 = "whsec_MfKQ9r8GKYqrTwjUPD8ILPZIo2LaLaSw".to_owned();
    assert_eq!(verify_independently(&[wrong_secret]).0, 1, "another secret must not verify");

    // The owner deletes the subscription; nothing of it remains to read.
    app.delete(&format!("/v1/webhooks/subscriptions/{subscription_id}"))
        .token(&merchant.token)
        .send()
        .await
        .expect(StatusCode::NO_CONTENT);
    app.get(&format!("/v1/webhooks/subscriptions/{subscription_id}"))
        .token(&merchant.token)
        .send()
        .await
        .problem(StatusCode::NOT_FOUND, "not-found");
}

#[tokio::test]
async fn another_tenant_cannot_reach_a_subscription_and_the_regulator_only_reads() {
    let app = App::start_with(fast_webhooks(), false).await;
    let receiver = Receiver::start(0).await;
    let owner = app.new_merchant("Toko Batik Sari").await;
    let other = app.new_merchant("Kopi Gayo Aceh").await;
    let sku = app.list_product(&owner, &[("BATIK-M", 149_000, 10)]).await.sku_ids[0].clone();
    let subscription_id = text(&app.subscribe(&owner.token, &receiver.url).await["id"]);
    app.checkout(&app.social, &[(&sku, 1)]).await;
    app.fan_out_webhooks().await;
    let delivery_id = app.delivery_ids(&owner.token, &subscription_id).await[0].clone();
    let subscription = format!("/v1/webhooks/subscriptions/{subscription_id}");
    let deliveries = format!("{subscription}/deliveries");
    let replay = format!("/v1/webhooks/deliveries/{delivery_id}/replay");

    let before = app.snapshot().await;
    // Another merchant, and a channel, get not found for every route of it.
    for token in [&other.token, &app.social] {
        for (case, reply) in [
            ("read", app.get(&subscription).token(token).send().await),
            ("log", app.get(&deliveries).token(token).send().await),
            ("replay", app.post(&replay).token(token).send().await),
            ("delete", app.delete(&subscription).token(token).send().await),
        ] {
            reply.problem_in(case, StatusCode::NOT_FOUND, "not-found");
        }
        let listed =
            app.get("/v1/webhooks/subscriptions").token(token).send().await.expect(StatusCode::OK).json();
        assert_eq!(listed["subscriptions"], json!([]), "another tenant lists none of them");
    }
    // Nor may a merchant subscribe to another merchant's events.
    app.post("/v1/webhooks/subscriptions")
        .token(&other.token)
        .json(&json!({"url": receiver.url, "merchant_id": owner.id}))
        .send()
        .await
        .problem(StatusCode::NOT_FOUND, "not-found");
    // The regulator reads, and is refused every write.
    app.get(&subscription).token(&app.regulator).send().await.expect(StatusCode::OK);
    app.get(&deliveries).token(&app.regulator).send().await.expect(StatusCode::OK);
    let body = json!({"url": receiver.url, "merchant_id": owner.id});
    for (case, reply) in [
        ("replay", app.post(&replay).token(&app.regulator).send().await),
        ("delete", app.delete(&subscription).token(&app.regulator).send().await),
        ("subscribe", app.post("/v1/webhooks/subscriptions").token(&app.regulator).json(&body).send().await),
    ] {
        reply.problem_in(case, StatusCode::FORBIDDEN, "forbidden");
    }
    // The payment provider has no business with webhooks at all.
    app.get(&subscription).token(&app.provider).send().await.problem(StatusCode::FORBIDDEN, "forbidden");
    app.assert_unchanged(&before, "refused webhook requests").await;

    // The operator manages every subscription, on anyone's behalf.
    app.post(&replay).token(&app.operator).send().await.expect(StatusCode::ACCEPTED);
    let made = app
        .post("/v1/webhooks/subscriptions")
        .token(&app.operator)
        .json(&json!({"url": receiver.url, "channel": "marketplace"}))
        .send()
        .await
        .expect(StatusCode::CREATED)
        .json();
    assert_eq!((&made["owner_role"], &made["owner_subject"]), (&json!("channel"), &json!("marketplace")));
    let marketplace = app.get("/v1/webhooks/subscriptions").token(&app.marketplace).send().await.json();
    assert_eq!(marketplace["subscriptions"][0]["id"], made["id"], "the channel sees its own");
    app.delete(&subscription).token(&app.operator).send().await.expect(StatusCode::NO_CONTENT);
}

#[tokio::test]
async fn a_channel_receives_its_own_channels_events() {
    let app = App::start_with(fast_webhooks(), true).await;
    let mut receiver = Receiver::start(0).await;
    let merchant = app.new_merchant("Toko Batik Sari").await;
    let sku = app.list_product(&merchant, &[("BATIK-M", 149_000, 10)]).await.sku_ids[0].clone();
    let secret = text(&app.subscribe(&app.marketplace, &receiver.url).await["secret"]);
    app.checkout(&app.social, &[(&sku, 1)]).await;
    let checkout = app.checkout(&app.marketplace, &[(&sku, 1)]).await;
    let mut seen = Vec::new();
    for n in 0..2 {
        let captured = receiver.next(&format!("marketplace event {n}")).await;
        let body: Value = serde_json::from_str(&captured.body).unwrap();
        seen.push((text(&body["type"]), body["data"]["checkout_id"].clone()));
        assert_eq!(verify_independently(&[(secret.clone(), captured)]).0, 0);
    }
    seen.sort_by(|a, b| a.0.cmp(&b.0));
    assert_eq!(
        seen,
        [
            ("checkout.created".to_owned(), checkout["id"].clone()),
            ("order.created".to_owned(), checkout["id"].clone())
        ],
        "the marketplace's checkout and order, not the social one's"
    );
    // The social checkout's events were fanned out too, to no one: once the marketplace's
    // have arrived, nothing more comes.
    receiver.assert_empty("the social channel's events");
}

#[tokio::test]
async fn internal_addresses_and_bad_subscriptions_are_refused_and_change_nothing() {
    let app = App::start().await;
    let merchant = app.new_merchant("Toko Batik Sari").await;
    let before = app.snapshot().await;
    let cases: &[(&str, Value, StatusCode, &str, &str)] = &[
        (
            "loopback",
            json!({"url": "http://127.0.0.1:8080/hooks"}),
            StatusCode::UNPROCESSABLE_ENTITY,
            "webhook-url-refused",
            "loopback",
        ),
        (
            "localhost",
            json!({"url": "http://localhost/hooks"}),
            StatusCode::UNPROCESSABLE_ENTITY,
            "webhook-url-refused",
            "loopback",
        ),
        (
            "IPv6 loopback",
            json!({"url": "http://[::1]/hooks"}),
            StatusCode::UNPROCESSABLE_ENTITY,
            "webhook-url-refused",
            "loopback",
        ),
        (
            "private",
            json!({"url": "https://192.168.1.20/hooks"}),
            StatusCode::UNPROCESSABLE_ENTITY,
            "webhook-url-refused",
            "private",
        ),
        (
            "metadata service",
            json!({"url": "http://169.254.169.254/latest"}),
            StatusCode::UNPROCESSABLE_ENTITY,
            "webhook-url-refused",
            "link-local",
        ),
        (
            "CGNAT",
            json!({"url": "https://100.100.1.1/"}),
            StatusCode::UNPROCESSABLE_ENTITY,
            "webhook-url-refused",
            "CGNAT",
        ),
        (
            "scheme",
            json!({"url": "ftp://93.184.215.14/x"}),
            StatusCode::UNPROCESSABLE_ENTITY,
            "webhook-url-refused",
            "scheme",
        ),
        (
            "unknown event",
            json!({"url": "https://93.184.215.14/", "event_types": ["token.issued"]}),
            StatusCode::UNPROCESSABLE_ENTITY,
            "validation",
            "not delivered",
        ),
        (
            "no events",
            json!({"url": "https://93.184.215.14/", "event_types": []}),
            StatusCode::UNPROCESSABLE_ENTITY,
            "validation",
            "event_types",
        ),
        (
            "unknown field",
            json!({"url": "https://93.184.215.14/", "secret": "mine"}),
            StatusCode::UNPROCESSABLE_ENTITY,
            "validation",
            "secret",
        ),
    ];
    for (case, body, status, kind, reason) in cases {
        let reply = app.post("/v1/webhooks/subscriptions").token(&merchant.token).json(body).send().await;
        let problem = reply.problem_in(case, *status, kind);
        assert!(text(&problem["detail"]).contains(reason), "{case}: {problem}");
        app.assert_unchanged(&before, case).await;
    }
    // The operator must say whose events a subscription is for.
    app.post("/v1/webhooks/subscriptions")
        .token(&app.operator)
        .json(&json!({"url": "https://93.184.215.14/"}))
        .send()
        .await
        .problem(StatusCode::UNPROCESSABLE_ENTITY, "validation");
    // A public address is accepted (nothing is sent: no dispatcher runs here).
    let made = app.subscribe(&merchant.token, "https://93.184.215.14/hooks").await;
    assert_eq!(made["event_types"], json!(["*"]));
    // With an Idempotency-Key, a retried subscription is answered byte for byte (the same id
    // and secret) and makes no second subscription.
    let keyed = || {
        app.post("/v1/webhooks/subscriptions")
            .token(&merchant.token)
            .idempotency_key("subscribe-1")
            .json(&json!({"url": "https://93.184.215.14/other", "event_types": ["order.paid"]}))
    };
    let first = keyed().send().await.expect(StatusCode::CREATED);
    let again = keyed().send().await.expect(StatusCode::CREATED);
    assert!(again.replayed() && again.body == first.body, "{}", again.text());
    let listed = app.get("/v1/webhooks/subscriptions").token(&merchant.token).send().await.json();
    assert_eq!(listed["subscriptions"].as_array().unwrap().len(), 2, "{listed}");
}

#[tokio::test]
async fn an_internal_address_is_refused_again_at_delivery() {
    // Subscriptions made while the operator allowed private addresses, delivered after the
    // rule was switched back on: the dispatcher checks again (a host name, through its own
    // resolver, as DNS rebinding would need; a literal address, directly) and sends nothing.
    let app = App::start_with(WebhookOptions { allow_private_urls: false, ..fast_webhooks() }, true).await;
    let mut receiver = Receiver::start(0).await;
    let merchant = app.new_merchant("Toko Batik Sari").await;
    let merchant_id = jembatan_domain::MerchantId::parse(&merchant.id).unwrap();
    let sku = app.list_product(&merchant, &[("BATIK-M", 149_000, 10)]).await.sku_ids[0].clone();
    let mut subscriptions = Vec::new();
    for url in [receiver.url.replace("127.0.0.1", "localhost"), receiver.url.clone()] {
        let subscription = jembatan_store::webhooks::SubscriptionRecord {
            id: jembatan_store::new_id(),
            owner: jembatan_domain::WebhookOwner::Merchant(merchant_id),
            url,
            secret: jembatan_domain::WebhookSecret::from_key([3; 32]),
            events: jembatan_domain::EventFilter::all(),
            active: true,
            created_at: app.core.clock().now(),
        };
        let ctx = jembatan_store::WriteCtx {
            actor: jembatan_domain::Principal::Operator,
            now: app.core.clock().now(),
        };
        // Straight into the store: the API would refuse this URL now.
        subscriptions.push(
            app.store().create_webhook_subscription(ctx, subscription, None).await.unwrap().id.to_string(),
        );
    }
    app.checkout(&app.social, &[(&sku, 1)]).await;
    for subscription_id in &subscriptions {
        let refused = eventually("a refused attempt is logged", || async {
            let entries = log(&app, &merchant.token, subscription_id).await;
            entries.into_iter().find(|d| d["attempts"].as_u64().is_some_and(|n| n >= 1))
        })
        .await;
        assert_eq!(refused["status"], "pending", "refused attempts are retried like failures: {refused}");
        assert!(refused["last_status_code"].is_null(), "{refused}");
        assert!(text(&refused["last_error"]).contains("loopback"), "{refused}");
    }
    receiver.assert_empty("nothing reaches a refused address");
}
