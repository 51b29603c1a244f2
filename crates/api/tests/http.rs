//! Black-box scenarios of the HTTP API: each test starts the real server on a random port over
//! a fresh database and talks to it over the socket, as a storefront, a merchant, the payment
//! provider, the operator or the regulator would.
//!
//! A refused request must leave no trace: those tests compare a snapshot of every table and of
//! the journal before and after. Where a refusal could pass for the wrong reason (a mistyped
//! path also answers 404), the same request is then made by someone entitled to it and must
//! succeed.

mod common;

use std::collections::{BTreeMap, BTreeSet};
use std::sync::Arc;

use common::*;
use hyper::header::AUTHORIZATION;
use hyper::{Method, StatusCode};
use jembatan_domain::{
    AccountId, CheckoutId, MerchantId, OrderId, PayoutId, ProductId, SkuId, WebhookDeliveryId,
    WebhookSubscriptionId,
};
use jembatan_store::new_id;
use serde_json::{Value, json};

/// A public address (no DNS needed) that webhook subscriptions may use when private
/// addresses are refused; these tests never send to it.
const PUBLIC_URL: &str = "https://93.184.215.14/hooks/jembatan";

/// One request of a table of cases.
struct Attempt {
    case: &'static str,
    method: Method,
    path: String,
    body: Option<Value>,
    /// A CSV file as the body instead of JSON.
    csv: Option<String>,
}

impl Attempt {
    fn new(case: &'static str, method: Method, path: String, body: Option<Value>) -> Attempt {
        Attempt { case, method, path, body, csv: None }
    }

    async fn send(&self, app: &App, token: &str) -> Reply {
        let call = app.call(self.method.clone(), &self.path).token(token);
        match (&self.body, &self.csv) {
            (Some(body), _) => call.json(body).send().await,
            (None, Some(file)) => call.raw("text/csv", file.clone()).send().await,
            (None, None) => call.send().await,
        }
    }
}

// ----- tenancy -----

#[tokio::test]
async fn a_merchant_token_reaches_no_object_of_another_merchant() {
    let app = App::start().await;
    let a = app.new_merchant("Toko Batik Sari").await;
    let b = app.new_merchant("Kopi Gayo Aceh").await;
    app.list_product(&a, &[("BATIK-M", 149_000, 5)]).await;
    let b_product = app.list_product(&b, &[("KOPI-250", 85_000, 10)]).await;
    let b_sku = b_product.sku_ids[0].clone();
    // B's webhook subscription, with a delivery (of the orders below) in its log.
    let b_hooks = text(&app.subscribe(&b.token, PUBLIC_URL).await["id"]);
    // B's orders, each in the state where the action tried on it would be legal for B.
    let to_ship = app.order_in(&app.social, &b_sku, "paid").await;
    let to_cancel = app.order_in(&app.social, &b_sku, "paid").await;
    let to_deliver = app.order_in(&app.social, &b_sku, "shipped").await;
    let to_confirm = app.order_in(&app.social, &b_sku, "delivered").await;
    app.fan_out_webhooks().await;
    let b_delivery = app.delivery_ids(&b.token, &b_hooks).await[0].clone();
    // B's balance (one completed order) and one payout of it.
    app.order_in(&app.social, &b_sku, "completed").await;
    let b_payout = app.request_payout(&b, 10_000).await.expect(StatusCode::CREATED).json();
    let b_payout = text(&b_payout["id"]);
    // B's balance account: the merchant's own id under the account prefix.
    let b_account = b.id.replacen("mer_", "acc_", 1);

    let attempts = [
        Attempt::new("read merchant B", Method::GET, format!("/v1/merchants/{}", b.id), None),
        Attempt::new(
            "list a product for B",
            Method::POST,
            format!("/v1/merchants/{}/products", b.id),
            Some(product_body(&[("SELUNDUP-1", 1_000, 3)])),
        ),
        Attempt::new("read B's product", Method::GET, format!("/v1/products/{}", b_product.id), None),
        Attempt::new("read B's SKU", Method::GET, format!("/v1/skus/{b_sku}"), None),
        Attempt::new(
            "set B's stock",
            Method::PUT,
            format!("/v1/skus/{b_sku}/stock"),
            Some(json!({"stock_on_hand": 99})),
        ),
        Attempt::new("read B's order", Method::GET, format!("/v1/orders/{to_ship}"), None),
        Attempt::new("list B's orders", Method::GET, format!("/v1/merchants/{}/orders", b.id), None),
        Attempt::new("ship B's order", Method::POST, format!("/v1/orders/{to_ship}/ship"), None),
        Attempt::new("deliver B's order", Method::POST, format!("/v1/orders/{to_deliver}/deliver"), None),
        Attempt::new("cancel B's order", Method::POST, format!("/v1/orders/{to_cancel}/cancel"), None),
        Attempt::new("confirm B's order", Method::POST, format!("/v1/orders/{to_confirm}/confirm"), None),
        Attempt::new(
            "read B's webhook subscription",
            Method::GET,
            format!("/v1/webhooks/subscriptions/{b_hooks}"),
            None,
        ),
        Attempt::new(
            "read B's webhook delivery log",
            Method::GET,
            format!("/v1/webhooks/subscriptions/{b_hooks}/deliveries"),
            None,
        ),
        Attempt::new(
            "replay B's webhook delivery",
            Method::POST,
            format!("/v1/webhooks/deliveries/{b_delivery}/replay"),
            None,
        ),
        Attempt::new(
            "delete B's webhook subscription",
            Method::DELETE,
            format!("/v1/webhooks/subscriptions/{b_hooks}"),
            None,
        ),
        Attempt::new(
            "withdraw B's balance",
            Method::POST,
            format!("/v1/merchants/{}/payouts", b.id),
            Some(payout_body(5_000, "014")),
        ),
        Attempt::new("list B's payouts", Method::GET, format!("/v1/merchants/{}/payouts", b.id), None),
        Attempt::new("read B's payout", Method::GET, format!("/v1/payouts/{b_payout}"), None),
        Attempt::new("read B's balance", Method::GET, format!("/v1/merchants/{}/balance", b.id), None),
        Attempt::new(
            "refund B's order",
            Method::POST,
            format!("/v1/orders/{to_ship}/refunds"),
            Some(json!({"amount": {"amount": 1000, "currency": "IDR"}, "reason": "torn"})),
        ),
        Attempt::new("list B's refunds", Method::GET, format!("/v1/orders/{to_ship}/refunds"), None),
        Attempt::new(
            "read B's ledger account",
            Method::GET,
            format!("/v1/ledger/accounts/{b_account}"),
            None,
        ),
    ];
    // Ids of the same kinds that never existed: A must not be able to tell B's objects from them.
    let ghosts: BTreeMap<String, String> = [
        (b.id.clone(), new_id::<MerchantId>().to_string()),
        (b_product.id.clone(), new_id::<ProductId>().to_string()),
        (b_sku.clone(), new_id::<SkuId>().to_string()),
        (to_ship.clone(), new_id::<OrderId>().to_string()),
        (to_cancel.clone(), new_id::<OrderId>().to_string()),
        (to_deliver.clone(), new_id::<OrderId>().to_string()),
        (to_confirm.clone(), new_id::<OrderId>().to_string()),
        (b_hooks.clone(), new_id::<WebhookSubscriptionId>().to_string()),
        (b_delivery.clone(), new_id::<WebhookDeliveryId>().to_string()),
        (b_payout.clone(), new_id::<PayoutId>().to_string()),
        (b_account.clone(), new_id::<AccountId>().to_string()),
    ]
    .into();

    let b_stock_before = app.sku(&b_sku).await;
    let before = app.snapshot().await;
    for attempt in &attempts {
        let reply = attempt.send(&app, &a.token).await;
        let hidden = reply.problem_in(attempt.case, StatusCode::NOT_FOUND, "not-found");
        app.assert_unchanged(&before, attempt.case).await;

        let mut ghost =
            Attempt::new(attempt.case, attempt.method.clone(), attempt.path.clone(), attempt.body.clone());
        for (real, fake) in &ghosts {
            ghost.path = ghost.path.replace(real, fake);
        }
        assert_ne!(ghost.path, attempt.path, "{}: no id to replace", attempt.case);
        let missing =
            ghost.send(&app, &a.token).await.problem_in(attempt.case, StatusCode::NOT_FOUND, "not-found");
        assert_eq!(
            hidden, missing,
            "{}: B's object is told apart from one that does not exist",
            attempt.case
        );
    }
    assert_eq!(app.sku(&b_sku).await, b_stock_before, "B's stock");
    for (order, status) in
        [(&to_ship, "paid"), (&to_cancel, "paid"), (&to_deliver, "shipped"), (&to_confirm, "delivered")]
    {
        assert_eq!(app.order(order).await["status"], status, "B's order {order}");
    }

    // The same requests are B's (or, to confirm receipt, the buyer's channel's) to make.
    for attempt in &attempts {
        let owner = if attempt.path.ends_with("/confirm") { &app.social } else { &b.token };
        let reply = attempt.send(&app, owner).await;
        assert!(
            reply.status.is_success(),
            "{}, by its owner: {} {}",
            attempt.case,
            reply.status,
            reply.text()
        );
    }
}

#[tokio::test]
async fn a_channel_token_reaches_no_order_of_the_other_channel() {
    let app = App::start().await;
    let merchant = app.new_merchant("Toko Batik Sari").await;
    let sku = app.list_product(&merchant, &[("BATIK-M", 149_000, 5)]).await.sku_ids[0].clone();
    let social_order = app.order_in(&app.social, &sku, "awaiting_payment").await;
    let delivered = app.order_in(&app.social, &sku, "delivered").await;

    let attempts = [
        Attempt::new("read", Method::GET, format!("/v1/orders/{social_order}"), None),
        Attempt::new("cancel", Method::POST, format!("/v1/orders/{social_order}/cancel"), None),
        Attempt::new("confirm", Method::POST, format!("/v1/orders/{delivered}/confirm"), None),
    ];
    let before = app.snapshot().await;
    for attempt in &attempts {
        let hidden = attempt.send(&app, &app.marketplace).await.problem_in(
            attempt.case,
            StatusCode::NOT_FOUND,
            "not-found",
        );
        app.assert_unchanged(&before, attempt.case).await;
        let ghost_path = attempt.path.replace(&social_order, &new_id::<OrderId>().to_string());
        let ghost_path = ghost_path.replace(&delivered, &new_id::<OrderId>().to_string());
        let ghost = Attempt::new(attempt.case, attempt.method.clone(), ghost_path, None);
        let missing = ghost.send(&app, &app.marketplace).await.problem_in(
            attempt.case,
            StatusCode::NOT_FOUND,
            "not-found",
        );
        assert_eq!(hidden, missing, "{}: the social order is told apart from none", attempt.case);
    }
    for attempt in &attempts {
        let reply = attempt.send(&app, &app.social).await;
        assert!(reply.status.is_success(), "{}, by the social channel: {}", attempt.case, reply.text());
    }
    assert_eq!(app.order(&social_order).await["status"], "cancelled");
    assert_eq!(app.order(&delivered).await["status"], "completed");
}

// ----- the regulator -----

#[tokio::test]
async fn the_regulator_is_refused_every_write_the_api_document_lists() {
    let app = App::start().await;
    let merchant = app.new_merchant("Toko Batik Sari").await;
    let sku = app.list_product(&merchant, &[("BATIK-M", 149_000, 20)]).await.sku_ids[0].clone();
    let hooks = text(&app.subscribe(&merchant.token, PUBLIC_URL).await["id"]);
    let to_delete = text(&app.subscribe(&merchant.token, PUBLIC_URL).await["id"]);
    let unpaid = app.checkout(&app.social, &[(&sku, 1)]).await;
    let unpaid_order = text(&unpaid["orders"][0]["id"]);
    let paid = app.order_in(&app.social, &sku, "paid").await;
    let shipped = app.order_in(&app.social, &sku, "shipped").await;
    let delivered = app.order_in(&app.social, &sku, "delivered").await;
    app.fan_out_webhooks().await;
    let delivery = app.delivery_ids(&merchant.token, &hooks).await[0].clone();
    // Money for payouts, one payout exported and waiting for the bank's answer.
    app.order_in(&app.social, &sku, "completed").await;
    let exported = app.request_payout(&merchant, 20_000).await.expect(StatusCode::CREATED).json();
    let exported = text(&exported["id"]);
    app.post("/v1/ops/payout-batches").token(&app.operator).send().await.expect(StatusCode::CREATED);
    let results_file = format!("payout_id,status,reason\n{exported},paid,\n");
    let report = format!("provider_ref,type,amount,settled_at\n{exported},payout,20000,2026-12-01\n");

    // The social shop: shops to enrol and move, orders unpaid, paid and shipped, a consent.
    let shop = seed_social_shop(&app, 1).await;
    let to_move = seed_social_shop(&app, 2).await;
    // Two shops moved by the migration engine: one to roll back, one to finalize.
    let [to_roll_back, to_finalize] = migrated_shops(&app, [4, 5]).await;
    let social_order = |items: &[(usize, usize, i64)]| social_order_body(&shop, items, "VA");
    let mut social_orders = Vec::new();
    for paid in [false, false, true, true, true] {
        let order =
            app.post("/social/v1/orders").token(&app.social).json(&social_order(&[(0, 0, 1)])).send().await;
        let order = order.expect(StatusCode::CREATED).json();
        if paid {
            app.simulate_payment(&text(&order["payment"]["payment_id"]), json!({}))
                .await
                .expect(StatusCode::OK);
        }
        social_orders.push(text(&order["order_id"]));
    }
    let [to_cancel, to_pay, to_ship, to_refund, to_confirm] = <[String; 5]>::try_from(social_orders).unwrap();
    app.post(&format!("/social/v1/orders/{to_confirm}/ship"))
        .token(&shop.token)
        .send()
        .await
        .expect(StatusCode::OK);
    let consent = json!({"purpose": "profile_sharing", "text_version": "2024-01"});
    let consents = format!("/social/v1/buyers/{SOCIAL_BUYER}/consents");
    app.post(&consents).token(&app.social).json(&consent).send().await.expect(StatusCode::CREATED);
    // A shop loaded into the legacy store and not yet enrolled.
    let fresh_shop = seed_social_shop(&app, 3).await.shop_id;
    // Two open findings: one to acknowledge, one to resolve.
    let finding = |sku: &str| jembatan_store::findings::NewFinding {
        merchant_id: merchant.id.clone(),
        rule_id: "R7".to_owned(),
        article: "Permendag 31/2023 art. 13 (price manipulation)".to_owned(),
        severity: "review".to_owned(),
        entity_type: "sku".to_owned(),
        entity_id: sku.to_owned(),
        evidence: "{}".to_owned(),
    };
    let ctx =
        jembatan_store::WriteCtx { actor: jembatan_domain::Principal::Operator, now: app.core.clock().now() };
    app.store().record_findings(ctx, vec![finding("sku-a"), finding("sku-b")]).await.unwrap();
    let findings = app.store().findings(None, None, None, None, 10).await.unwrap();
    let (to_acknowledge, to_resolve) = (findings[0].id.to_string(), findings[1].id.to_string());

    let document = app.get("/openapi.json").send().await.expect(StatusCode::OK).json();
    let mut writes = Vec::new();
    for (template, operations) in document["paths"].as_object().expect("paths") {
        for method in operations.as_object().expect("path item").keys() {
            // Routes without bearer security (the provider's, authenticated by the signature
            // of each request) take no regulator token at all; they are tested with payments.
            let bearer = operations[method]["security"].is_array();
            if ["post", "put", "patch", "delete"].contains(&method.as_str()) && bearer {
                writes.push((method.to_uppercase(), template.clone()));
            }
        }
    }
    assert!(writes.len() >= 9, "the document lists only {writes:?}");

    let before = app.snapshot().await;
    let mut controls = Vec::new();
    for (method, template) in &writes {
        // A valid request with real ids, on an object in the state where it would succeed.
        let mut csv = None;
        let (path, body, entitled) = match template.as_str() {
            "/v1/merchants" => (
                template.clone(),
                Some(
                    json!({"name": "Toko Baru", "origin": "local", "province": "Bali", "nib": "9120001234567"}),
                ),
                &app.operator,
            ),
            "/v1/merchants/{merchant_id}/products" => (
                template.replace("{merchant_id}", &merchant.id),
                Some(product_body(&[("BARU-1", 10_000, 3)])),
                &app.operator,
            ),
            "/v1/skus/{sku_id}/stock" => {
                (template.replace("{sku_id}", &sku), Some(json!({"stock_on_hand": 40})), &app.operator)
            }
            "/v1/checkouts" => (template.clone(), Some(checkout_body(&[(&sku, 1)])), &app.social),
            "/v1/orders/{order_id}/refunds" => (
                template.replace("{order_id}", &paid),
                Some(json!({"amount": {"amount": 1000, "currency": "IDR"}, "reason": "damaged"})),
                &app.operator,
            ),
            "/v1/orders/{order_id}/ship" => (template.replace("{order_id}", &paid), None, &app.operator),
            "/v1/orders/{order_id}/deliver" => {
                (template.replace("{order_id}", &shipped), None, &app.operator)
            }
            "/v1/orders/{order_id}/confirm" => {
                (template.replace("{order_id}", &delivered), None, &app.operator)
            }
            "/v1/orders/{order_id}/cancel" => {
                (template.replace("{order_id}", &unpaid_order), None, &app.operator)
            }
            "/v1/webhooks/subscriptions" => {
                (template.clone(), Some(json!({"url": PUBLIC_URL})), &merchant.token)
            }
            "/v1/webhooks/subscriptions/{subscription_id}" => {
                (template.replace("{subscription_id}", &to_delete), None, &app.operator)
            }
            "/v1/webhooks/deliveries/{delivery_id}/replay" => {
                (template.replace("{delivery_id}", &delivery), None, &merchant.token)
            }
            "/v1/merchants/{merchant_id}/payouts" => (
                template.replace("{merchant_id}", &merchant.id),
                Some(payout_body(10_000, "008")),
                &merchant.token,
            ),
            "/v1/ops/payout-batches" => (template.clone(), None, &app.operator),
            "/v1/ops/payouts/{payout_id}/confirm" => {
                (template.replace("{payout_id}", &exported), Some(json!({"status": "paid"})), &app.operator)
            }
            "/v1/ops/payout-results" => {
                csv = Some(results_file.clone());
                (template.clone(), None, &app.operator)
            }
            "/v1/ops/reconciliations" => {
                csv = Some(report.clone());
                (template.clone(), None, &app.operator)
            }
            "/social/v1/shops/{shop_id}/products/{product_id}" => (
                format!("/social/v1/shops/{}/products/{}", shop.shop_id, shop.products[1].0),
                Some(json!({"title": "Serum Vitamin C 20 ml"})),
                &shop.token,
            ),
            "/social/v1/shops/{shop_id}/products/{product_id}/stock" => (
                format!("/social/v1/shops/{}/products/{}/stock", shop.shop_id, shop.products[1].0),
                Some(json!({"skus": [{"sku_id": shop.products[1].1[0], "stock": 4}]})),
                &shop.token,
            ),
            "/social/v1/orders" => (template.clone(), Some(social_order(&[(1, 1, 1)])), &app.social),
            "/social/v1/orders/{order_id}/ship" => {
                (template.replace("{order_id}", &to_ship), None, &shop.token)
            }
            "/social/v1/orders/{order_id}/pay" => {
                (template.replace("{order_id}", &to_pay), None, &app.social)
            }
            "/social/v1/orders/{order_id}/confirm" => {
                (template.replace("{order_id}", &to_confirm), None, &app.social)
            }
            "/social/v1/orders/{order_id}/cancel" => {
                (template.replace("{order_id}", &to_cancel), None, &app.social)
            }
            "/social/v1/orders/{order_id}/refund" => (
                template.replace("{order_id}", &to_refund),
                Some(json!({"amount": "1000", "reason": "rusak"})),
                &app.social,
            ),
            "/social/v1/buyers/{buyer_id}/consents" => {
                (template.replace("{buyer_id}", SOCIAL_BUYER), Some(consent.clone()), &app.social)
            }
            "/social/v1/buyers/{buyer_id}/consents/{purpose}" => (
                template.replace("{buyer_id}", SOCIAL_BUYER).replace("{purpose}", "marketing"),
                None,
                &app.social,
            ),
            "/social/v1/buyers/{buyer_id}/profile-share" => {
                (template.replace("{buyer_id}", SOCIAL_BUYER), None, &app.social)
            }
            "/v1/ops/social/shops/{shop_id}/enrol" => {
                (template.replace("{shop_id}", &fresh_shop), None, &app.operator)
            }
            "/v1/ops/social/shops/{shop_id}/move" | "/v1/ops/social/shops/{shop_id}/abort-move" => {
                (template.replace("{shop_id}", &to_move.shop_id), None, &app.operator)
            }
            "/v1/ops/migration/waves" => {
                (template.clone(), Some(json!({"wave": "regulator-check", "select": "all"})), &app.operator)
            }
            "/v1/ops/migration/runs" => (template.clone(), Some(json!({})), &app.operator),
            "/v1/ops/migration/merchants/{merchant_id}/accept-quarantine" => (
                template.replace("{merchant_id}", &to_finalize),
                Some(json!({"reason": "checked by hand"})),
                &app.operator,
            ),
            "/v1/ops/migration/merchants/{merchant_id}/rollback" => (
                template.replace("{merchant_id}", &to_roll_back),
                Some(json!({"reason": "a test"})),
                &app.operator,
            ),
            "/v1/ops/migration/merchants/{merchant_id}/finalize" => {
                (template.replace("{merchant_id}", &to_finalize), None, &app.operator)
            }
            "/v1/ops/migration/waves/{name}/pause" | "/v1/ops/migration/waves/{name}/resume" => {
                (template.replace("{name}", "engine-setup"), None, &app.operator)
            }
            "/v1/oversight/findings/{finding_id}/acknowledge" => (
                template.replace("{finding_id}", &to_acknowledge),
                Some(json!({"note": "the merchant was asked to explain its price"})),
                &app.operator,
            ),
            "/v1/oversight/findings/{finding_id}/resolve" => (
                template.replace("{finding_id}", &to_resolve),
                Some(json!({"note": "the price was a typo and is corrected"})),
                &app.operator,
            ),
            other => panic!("{method} {other} is new: give the regulator test a valid request for it"),
        };
        let method = Method::from_bytes(method.as_bytes()).expect("method");
        let case = format!("{method} {path}");
        let call = app.call(method.clone(), &path).token(&app.regulator).idempotency_key("regulator-1");
        let reply = match (&body, &csv) {
            (Some(body), _) => call.json(body).send().await,
            (None, Some(file)) => call.raw("text/csv", file.clone()).send().await,
            (None, None) => call.send().await,
        };
        let problem = reply.problem_in(&case, StatusCode::FORBIDDEN, "forbidden");
        assert!(text(&problem["type"]).ends_with("/forbidden"));
        app.assert_unchanged(&before, &case).await;
        let mut attempt = Attempt::new("the regulator's write, by whoever may make it", method, path, body);
        attempt.csv = csv;
        controls.push((attempt, entitled.clone()));
    }

    // Each of those requests goes through for whoever is entitled to it.
    for (attempt, entitled) in &controls {
        let reply = attempt.send(&app, entitled).await;
        assert!(
            reply.status.is_success(),
            "{} {}: {} {}",
            attempt.method,
            attempt.path,
            reply.status,
            reply.text()
        );
    }
}

#[tokio::test]
async fn the_regulator_reads_orders_with_personal_data_masked() {
    let app = App::start().await;
    let merchant = app.new_merchant("Toko Batik Sari").await;
    let sku = app.list_product(&merchant, &[("BATIK-M", 149_000, 5)]).await.sku_ids[0].clone();
    let order_id = app.order_in(&app.social, &sku, "paid").await;
    let personal = [RECIPIENT_NAME, PHONE_E164, STREET, BUYER_ID];

    let one = format!("/v1/orders/{order_id}");
    let list = format!("/v1/merchants/{}/orders", merchant.id);
    let regulator_one = app.get(&one).token(&app.regulator).send().await.expect(StatusCode::OK);
    let regulator_list = app.get(&list).token(&app.regulator).send().await.expect(StatusCode::OK);
    let listed = regulator_list.json()["orders"][0].clone();
    for (view, order) in [("one order", regulator_one.json()), ("order list", listed)] {
        assert_eq!(order["id"], order_id.as_str(), "{view}");
        assert_eq!(order["status"], "paid", "{view}: the regulator still sees the business facts");
        let address = &order["shipping_address"];
        for (field, original) in [
            (&address["recipient_name"], RECIPIENT_NAME),
            (&address["phone"], PHONE_E164),
            (&address["street"], STREET),
            (&address["postal_code"], POSTAL_CODE),
            (&order["buyer_id"], BUYER_ID),
        ] {
            let shown = text(field);
            assert!(
                !shown.is_empty() && shown != original,
                "{view}: `{original}` shown to the regulator as `{shown}`"
            );
        }
    }
    for reply in [&regulator_one, &regulator_list] {
        for original in personal {
            assert!(!reply.text().contains(original), "{}: `{original}` leaks: {}", reply.path, reply.text());
        }
    }

    let operator_one = app.get(&one).token(&app.operator).send().await.expect(StatusCode::OK).json();
    let operator_list = app.get(&list).token(&app.operator).send().await.expect(StatusCode::OK).json();
    for order in [&operator_one, &operator_list["orders"][0]] {
        let address = &order["shipping_address"];
        assert_eq!(address["recipient_name"], RECIPIENT_NAME);
        assert_eq!(address["phone"], PHONE_E164);
        assert_eq!(address["street"], STREET);
        assert_eq!(address["postal_code"], POSTAL_CODE);
        assert_eq!(order["buyer_id"], BUYER_ID);
    }
}

// ----- bad input -----

#[tokio::test]
async fn bad_requests_get_a_stable_problem_type_and_change_nothing() {
    let app = App::start().await;
    let a = app.new_merchant("Toko Batik Sari").await;
    let b = app.new_merchant("Kopi Gayo Aceh").await;
    let sku = app.list_product(&a, &[("BATIK-M", 149_000, 5)]).await.sku_ids[0].clone();
    let b_sku = app.list_product(&b, &[("KOPI-250", 85_000, 10)]).await.sku_ids[0].clone();
    let unpaid = app.order_in(&app.social, &b_sku, "awaiting_payment").await;
    let shipped = app.order_in(&app.social, &b_sku, "shipped").await;
    let ghost_sku = new_id::<SkuId>().to_string();
    let orders_of_a = format!("/v1/merchants/{}/orders", a.id);
    let unknown_token = format!("jbt_{}", "0".repeat(64));

    let checkout = |items: &[(&str, i64)]| checkout_body(items);
    let mut without_address = checkout(&[(&sku, 1)]);
    without_address.as_object_mut().expect("object").remove("shipping_address");
    let mut quantity_as_text = checkout(&[(&sku, 1)]);
    quantity_as_text["items"][0]["quantity"] = json!("two");
    let mut price_as_text = product_body(&[("BATIK-S", 1_000, 1)]);
    price_as_text["skus"][0]["price"]["amount"] = json!("149000");
    let padded = |body: &Value, bytes_total: usize| {
        let mut text = body.to_string();
        assert!(text.len() <= bytes_total);
        text.push_str(&" ".repeat(bytes_total - text.len()));
        text
    };
    let limit_bytes = jembatan_api::ApiLimits::default().body_bytes_max;
    assert_eq!(limit_bytes, 64 * 1024);

    use StatusCode as S;
    let cases: Vec<(&str, Call<'_>, StatusCode, &str, Option<&str>)> = vec![
        (
            "unknown SKU",
            app.post("/v1/checkouts").token(&app.social).json(&checkout(&[(&ghost_sku, 1)])),
            S::UNPROCESSABLE_ENTITY,
            "validation",
            Some("items.sku_id"),
        ),
        (
            "malformed SKU id",
            app.post("/v1/checkouts").token(&app.social).json(&checkout(&[("sku_nope", 1)])),
            S::UNPROCESSABLE_ENTITY,
            "validation",
            Some("items.sku_id"),
        ),
        (
            "quantity 0",
            app.post("/v1/checkouts").token(&app.social).json(&checkout(&[(&sku, 0)])),
            S::UNPROCESSABLE_ENTITY,
            "validation",
            Some("items.quantity"),
        ),
        (
            "quantity 1001",
            app.post("/v1/checkouts").token(&app.social).json(&checkout(&[(&sku, 1001)])),
            S::UNPROCESSABLE_ENTITY,
            "validation",
            Some("items.quantity"),
        ),
        (
            "more than the stock",
            app.post("/v1/checkouts").token(&app.social).json(&checkout(&[(&sku, 6)])),
            S::CONFLICT,
            "insufficient-stock",
            None,
        ),
        (
            // The first line can be reserved, the second cannot: neither may stay reserved.
            "a cart whose second line is short of stock",
            app.post("/v1/checkouts").token(&app.social).json(&checkout(&[(&sku, 1), (&b_sku, 100)])),
            S::CONFLICT,
            "insufficient-stock",
            None,
        ),
        (
            "a cart whose second line is not on sale",
            app.post("/v1/checkouts").token(&app.social).json(&checkout(&[(&sku, 1), (&ghost_sku, 1)])),
            S::UNPROCESSABLE_ENTITY,
            "validation",
            Some("items.sku_id"),
        ),
        (
            "no items",
            app.post("/v1/checkouts").token(&app.social).json(&checkout(&[])),
            S::UNPROCESSABLE_ENTITY,
            "validation",
            Some("items"),
        ),
        (
            "price 0",
            app.post(&format!("/v1/merchants/{}/products", a.id))
                .token(&a.token)
                .json(&product_body(&[("BATIK-S", 0, 1)])),
            S::UNPROCESSABLE_ENTITY,
            "validation",
            Some("skus.price"),
        ),
        (
            "negative price",
            app.post(&format!("/v1/merchants/{}/products", a.id))
                .token(&a.token)
                .json(&product_body(&[("BATIK-S", -149_000, 1)])),
            S::UNPROCESSABLE_ENTITY,
            "validation",
            Some("skus.price"),
        ),
        (
            "missing field",
            app.post("/v1/checkouts").token(&app.social).json(&without_address),
            S::UNPROCESSABLE_ENTITY,
            "validation",
            None,
        ),
        (
            "missing everything",
            app.post("/v1/merchants").token(&app.operator).json(&json!({})),
            S::UNPROCESSABLE_ENTITY,
            "validation",
            None,
        ),
        (
            "quantity as text",
            app.post("/v1/checkouts").token(&app.social).json(&quantity_as_text),
            S::UNPROCESSABLE_ENTITY,
            "validation",
            None,
        ),
        (
            "price as text",
            app.post(&format!("/v1/merchants/{}/products", a.id)).token(&a.token).json(&price_as_text),
            S::UNPROCESSABLE_ENTITY,
            "validation",
            None,
        ),
        (
            "stock as a list",
            app.put(&format!("/v1/skus/{sku}/stock")).token(&a.token).json(&json!({"stock_on_hand": [7]})),
            S::UNPROCESSABLE_ENTITY,
            "validation",
            None,
        ),
        (
            "a body one byte over the limit",
            app.post("/v1/checkouts")
                .token(&app.social)
                .raw("application/json", padded(&checkout(&[(&sku, 1)]), limit_bytes + 1)),
            S::PAYLOAD_TOO_LARGE,
            "payload-too-large",
            None,
        ),
        (
            // At the limit the body is read and judged on its content.
            "a body exactly at the limit",
            app.post("/v1/checkouts")
                .token(&app.social)
                .raw("application/json", padded(&checkout(&[(&sku, 0)]), limit_bytes)),
            S::UNPROCESSABLE_ENTITY,
            "validation",
            Some("items.quantity"),
        ),
        (
            "JSON sent as text/plain",
            app.post("/v1/checkouts")
                .token(&app.social)
                .raw("text/plain", checkout(&[(&sku, 1)]).to_string()),
            S::UNSUPPORTED_MEDIA_TYPE,
            "unsupported-media-type",
            None,
        ),
        (
            "a form",
            app.post("/v1/merchants")
                .token(&app.operator)
                .raw("application/x-www-form-urlencoded", "name=Toko&origin=local"),
            S::UNSUPPORTED_MEDIA_TYPE,
            "unsupported-media-type",
            None,
        ),
        (
            "malformed JSON",
            app.post("/v1/checkouts").token(&app.social).raw("application/json", "{\"buyer_id\": \"b\",,}"),
            S::BAD_REQUEST,
            "malformed-json",
            None,
        ),
        (
            "truncated JSON",
            app.post("/v1/checkouts")
                .token(&app.social)
                .raw("application/json", &checkout(&[(&sku, 1)]).to_string()[..40]),
            S::BAD_REQUEST,
            "malformed-json",
            None,
        ),
        (
            "a merchant setting another merchant's stock",
            app.put(&format!("/v1/skus/{b_sku}/stock")).token(&a.token).json(&json!({"stock_on_hand": 99})),
            S::NOT_FOUND,
            "not-found",
            None,
        ),
        (
            "shipping an unpaid order",
            app.post(&format!("/v1/orders/{unpaid}/ship")).token(&b.token),
            S::CONFLICT,
            "illegal-transition",
            None,
        ),
        (
            "cancelling a shipped order",
            app.post(&format!("/v1/orders/{shipped}/cancel")).token(&b.token),
            S::CONFLICT,
            "illegal-transition",
            None,
        ),
        (
            "confirming an unpaid order",
            app.post(&format!("/v1/orders/{unpaid}/confirm")).token(&app.social),
            S::CONFLICT,
            "illegal-transition",
            None,
        ),
        (
            "stock below the units reserved",
            app.put(&format!("/v1/skus/{b_sku}/stock")).token(&b.token).json(&json!({"stock_on_hand": 0})),
            S::CONFLICT,
            "stock-below-reserved",
            None,
        ),
        (
            "page limit 0",
            app.get(&format!("{orders_of_a}?limit=0")).token(&a.token),
            S::UNPROCESSABLE_ENTITY,
            "validation",
            Some("limit"),
        ),
        (
            "page limit 101",
            app.get(&format!("{orders_of_a}?limit=101")).token(&a.token),
            S::UNPROCESSABLE_ENTITY,
            "validation",
            Some("limit"),
        ),
        (
            "page limit not a number",
            app.get(&format!("{orders_of_a}?limit=ten")).token(&a.token),
            S::UNPROCESSABLE_ENTITY,
            "validation",
            None,
        ),
        (
            "bad cursor",
            app.get(&format!("{orders_of_a}?cursor=page-2")).token(&a.token),
            S::UNPROCESSABLE_ENTITY,
            "validation",
            Some("cursor"),
        ),
        (
            "cursor of another kind of id",
            app.get(&format!("{orders_of_a}?cursor={}", new_id::<CheckoutId>())).token(&a.token),
            S::UNPROCESSABLE_ENTITY,
            "validation",
            Some("cursor"),
        ),
        (
            "unknown status filter",
            app.get(&format!("{orders_of_a}?status=lost")).token(&a.token),
            S::UNPROCESSABLE_ENTITY,
            "validation",
            Some("status"),
        ),
        ("no token, reading", app.get(&orders_of_a), S::UNAUTHORIZED, "unauthenticated", None),
        (
            "no token, writing",
            app.post("/v1/checkouts").json(&checkout(&[(&sku, 1)])),
            S::UNAUTHORIZED,
            "unauthenticated",
            None,
        ),
        (
            "unknown token",
            app.post("/v1/checkouts").token(&unknown_token).json(&checkout(&[(&sku, 1)])),
            S::UNAUTHORIZED,
            "unauthenticated",
            None,
        ),
        ("garbage token", app.get(&orders_of_a).token("let-me-in"), S::UNAUTHORIZED, "unauthenticated", None),
        (
            "a token without the Bearer scheme",
            app.get(&orders_of_a).header(AUTHORIZATION, &a.token),
            S::UNAUTHORIZED,
            "unauthenticated",
            None,
        ),
        (
            "malformed order id",
            app.get("/v1/orders/12345").token(&app.operator),
            S::NOT_FOUND,
            "not-found",
            None,
        ),
        ("an unknown route", app.get("/v1/refunds").token(&app.operator), S::NOT_FOUND, "not-found", None),
    ];

    let before = app.snapshot().await;
    for (case, call, status, kind, field) in cases {
        let problem = call.send().await.problem_in(case, status, kind);
        if let Some(field) = field {
            assert_eq!(problem["field"], field, "{case}: {problem}");
        }
        app.assert_unchanged(&before, case).await;
    }

    // The refusals were about the requests, not the data: the valid neighbours of those
    // requests go through.
    let all_stock = app.checkout(&app.social, &[(&sku, 5)]).await;
    assert_eq!(all_stock["orders"].as_array().expect("orders").len(), 1);
    assert_eq!(app.sku(&sku).await["stock_available"], 0);
    app.post(&format!("/v1/merchants/{}/products", a.id))
        .token(&a.token)
        .json(&product_body(&[("BATIK-S", 1, 1)]))
        .send()
        .await
        .expect(StatusCode::CREATED);
    for limit in [1, 100] {
        app.get(&format!("{orders_of_a}?limit={limit}")).token(&a.token).send().await.expect(StatusCode::OK);
    }
}

// ----- idempotency keys -----

#[tokio::test]
async fn a_replayed_checkout_is_answered_byte_for_byte_and_reserves_stock_once() {
    let app = App::start().await;
    let merchant = app.new_merchant("Toko Batik Sari").await;
    let sku = app.list_product(&merchant, &[("BATIK-M", 149_000, 10)]).await.sku_ids[0].clone();
    let body = checkout_body(&[(&sku, 3)]);
    let checkout = || app.post("/v1/checkouts").token(&app.social).idempotency_key("cart-7f3a").json(&body);

    let first = checkout().send().await.expect(StatusCode::CREATED);
    assert!(!first.replayed());
    let again = checkout().send().await.expect(StatusCode::CREATED);
    assert!(again.replayed(), "a replay says so");
    assert_eq!(again.body, first.body, "a replay is the first response, byte for byte");
    assert_eq!(again.content_type(), first.content_type());
    assert_eq!(app.snapshot().await.tables["checkouts"].len(), 1);
    assert_eq!(app.sku(&sku).await["stock_reserved"], 3, "stock reserved once");

    let before = app.snapshot().await;
    let other_body = checkout_body(&[(&sku, 4)]);
    app.post("/v1/checkouts")
        .token(&app.social)
        .idempotency_key("cart-7f3a")
        .json(&other_body)
        .send()
        .await
        .problem(StatusCode::UNPROCESSABLE_ENTITY, "idempotency-key-reused");
    app.assert_unchanged(&before, "the key with another body").await;

    // Keys belong to their caller: the other channel's identical key is a new request.
    let theirs = app
        .post("/v1/checkouts")
        .token(&app.marketplace)
        .idempotency_key("cart-7f3a")
        .json(&body)
        .send()
        .await
        .expect(StatusCode::CREATED);
    assert!(!theirs.replayed());
    assert_ne!(theirs.json()["id"], first.json()["id"]);
    assert_eq!(app.sku(&sku).await["stock_reserved"], 6);
}

#[tokio::test]
async fn a_refused_checkout_is_replayed_as_refused() {
    let app = App::start().await;
    let merchant = app.new_merchant("Toko Batik Sari").await;
    let sku = app.list_product(&merchant, &[("BATIK-M", 149_000, 2)]).await.sku_ids[0].clone();
    let body = checkout_body(&[(&sku, 5)]);
    let checkout = |key: &str| app.post("/v1/checkouts").token(&app.social).idempotency_key(key).json(&body);

    let first = checkout("cart-9b1c").send().await;
    first.problem(StatusCode::CONFLICT, "insufficient-stock");
    assert!(!first.replayed());

    // Now there is stock enough; the key still answers what it answered.
    app.put(&format!("/v1/skus/{sku}/stock"))
        .token(&merchant.token)
        .json(&json!({"stock_on_hand": 50}))
        .send()
        .await
        .expect(StatusCode::OK);
    let before = app.snapshot().await;
    let again = checkout("cart-9b1c").send().await;
    again.problem(StatusCode::CONFLICT, "insufficient-stock");
    assert!(again.replayed());
    assert_eq!(again.body, first.body);
    app.assert_unchanged(&before, "the replayed refusal").await;

    // A new key is a new request, and it goes through.
    checkout("cart-9b1d").send().await.expect(StatusCode::CREATED);
    assert_eq!(app.sku(&sku).await["stock_reserved"], 5);
}

#[tokio::test(flavor = "multi_thread", worker_threads = 4)]
async fn concurrent_duplicates_reserve_stock_once() {
    const DUPLICATES: usize = 10;
    let app = Arc::new(App::start().await);
    let merchant = app.new_merchant("Toko Batik Sari").await;
    let sku = app.list_product(&merchant, &[("BATIK-M", 149_000, 100)]).await.sku_ids[0].clone();
    let body = checkout_body(&[(&sku, 2)]);

    let start = Arc::new(tokio::sync::Barrier::new(DUPLICATES));
    let mut requests = tokio::task::JoinSet::new();
    for _ in 0..DUPLICATES {
        let (app, body, start) = (app.clone(), body.clone(), start.clone());
        requests.spawn(async move {
            start.wait().await;
            app.post("/v1/checkouts")
                .token(&app.social)
                .idempotency_key("cart-burst")
                .json(&body)
                .send()
                .await
        });
    }
    let replies = requests.join_all().await;

    let originals: Vec<&Reply> =
        replies.iter().filter(|r| r.status == StatusCode::CREATED && !r.replayed()).collect();
    assert_eq!(originals.len(), 1, "exactly one request did the work");
    let original = originals[0];
    for reply in &replies {
        match (reply.status, reply.replayed()) {
            (StatusCode::CREATED, false) => {}
            (StatusCode::CREATED, true) => assert_eq!(reply.body, original.body, "a replay is byte for byte"),
            (StatusCode::CONFLICT, _) => {
                reply.problem(StatusCode::CONFLICT, "idempotency-in-progress");
            }
            (status, _) => panic!("unexpected answer to a duplicate: {status} {}", reply.text()),
        }
    }
    assert_eq!(app.snapshot().await.tables["checkouts"].len(), 1);
    let stock = app.sku(&sku).await;
    assert_eq!((stock["stock_on_hand"].clone(), stock["stock_reserved"].clone()), (json!(100), json!(2)));

    // Once the work is done, the key answers with it.
    let late =
        app.post("/v1/checkouts").token(&app.social).idempotency_key("cart-burst").json(&body).send().await;
    assert!(late.replayed());
    assert_eq!(late.body, original.body);
}

// ----- the day of a marketplace -----

#[tokio::test]
async fn two_merchants_sell_one_cart_from_listing_to_completed_orders() {
    let app = App::start().await;
    let batik = app.new_merchant("Toko Batik Sari").await;
    let kopi = app.new_merchant("Kopi Gayo Aceh").await;
    let shirts =
        app.list_product(&batik, &[("BATIK-M-BIRU", 149_000, 10), ("BATIK-L-BIRU", 159_000, 5)]).await;
    let coffee = app.list_product(&kopi, &[("KOPI-250", 85_000, 20)]).await;
    assert_eq!(shirts.sku_ids.len(), 2);
    let (shirt, beans) = (shirts.sku_ids[0].clone(), coffee.sku_ids[0].clone());

    // The social storefront checks out one cart holding both merchants' goods.
    let checkout = app.checkout(&app.social, &[(&shirt, 2), (&beans, 3)]).await;
    let orders = checkout["orders"].as_array().expect("orders").clone();
    assert_eq!(orders.len(), 2, "one order per merchant");
    assert_eq!(checkout["total"], json!({"amount": 2 * 149_000 + 3 * 85_000, "currency": "IDR"}));
    assert_eq!(checkout["channel"], "social");
    let order_of = |merchant: &Merchant| {
        orders
            .iter()
            .find(|o| o["merchant_id"] == merchant.id.as_str())
            .expect("an order per merchant")
            .clone()
    };
    let (batik_order, kopi_order) = (order_of(&batik), order_of(&kopi));
    assert_eq!(batik_order["total"], json!({"amount": 298_000, "currency": "IDR"}));
    assert_eq!(kopi_order["total"], json!({"amount": 255_000, "currency": "IDR"}));
    assert_eq!(kopi_order["lines"][0]["unit_price"], json!({"amount": 85_000, "currency": "IDR"}));
    for order in &orders {
        assert_eq!(order["status"], "awaiting_payment");
    }
    let stock = app.sku(&shirt).await;
    assert_eq!((stock["stock_on_hand"].clone(), stock["stock_reserved"].clone()), (json!(10), json!(2)));

    // The buyer pays; the provider's signed callback reports the whole cart paid.
    let paid = app.pay(&checkout).await;
    assert_eq!(paid["outcome"], "applied");
    assert_eq!(paid["payment"]["status"], "paid");
    for order in &orders {
        assert_eq!(app.order(&text(&order["id"])).await["status"], "paid");
    }

    // Each merchant ships and delivers its own order; the buyer's channel confirms receipt.
    for (merchant, order) in [(&batik, &batik_order), (&kopi, &kopi_order)] {
        let id = text(&order["id"]);
        let shipped = app.act(&merchant.token, &id, "ship").await.expect(StatusCode::OK).json();
        assert_eq!(shipped["status"], "shipped");
        let delivered = app.act(&merchant.token, &id, "deliver").await.expect(StatusCode::OK).json();
        assert_eq!(delivered["status"], "delivered");
        let confirmed = app.act(&app.social, &id, "confirm").await.expect(StatusCode::OK).json();
        assert_eq!(confirmed["status"], "completed");
        let seen = app.get(&format!("/v1/orders/{id}")).token(&merchant.token).send().await;
        assert_eq!(seen.expect(StatusCode::OK).json()["status"], "completed");
    }

    // Shipping sold the reserved units.
    let stock = app.sku(&shirt).await;
    assert_eq!((stock["stock_on_hand"].clone(), stock["stock_reserved"].clone()), (json!(8), json!(0)));
    let stock = app.sku(&beans).await;
    assert_eq!((stock["stock_on_hand"].clone(), stock["stock_reserved"].clone()), (json!(17), json!(0)));
    let untouched = app.sku(&shirts.sku_ids[1]).await;
    assert_eq!(
        (untouched["stock_on_hand"].clone(), untouched["stock_reserved"].clone()),
        (json!(5), json!(0))
    );

    let listed = app.get(&format!("/v1/merchants/{}/orders", kopi.id)).token(&kopi.token).send().await;
    let listed = listed.expect(StatusCode::OK).json();
    assert_eq!(listed["orders"].as_array().expect("orders").len(), 1);
    assert_eq!(listed["orders"][0]["id"], kopi_order["id"]);
    assert_eq!(listed["orders"][0]["status"], "completed");
}

#[tokio::test]
async fn a_merchants_orders_page_without_gaps_or_duplicates() {
    const ORDERS: usize = 7;
    let app = App::start().await;
    let merchant = app.new_merchant("Kopi Gayo Aceh").await;
    let other = app.new_merchant("Toko Batik Sari").await;
    let sku = app.list_product(&merchant, &[("KOPI-250", 85_000, 100)]).await.sku_ids[0].clone();
    let other_sku = app.list_product(&other, &[("BATIK-M", 149_000, 100)]).await.sku_ids[0].clone();
    let mut created = BTreeSet::new();
    let mut paid = String::new();
    for n in 0..ORDERS {
        let status = if n == 3 { "paid" } else { "awaiting_payment" };
        let id = app.order_in(&app.marketplace, &sku, status).await;
        if n == 3 {
            paid = id.clone();
        }
        created.insert(id);
        // Another merchant's orders interleave and must never show up.
        app.order_in(&app.social, &other_sku, "awaiting_payment").await;
    }

    let list = format!("/v1/merchants/{}/orders", merchant.id);
    let walk = |limit: usize| {
        let (app, list, token) = (&app, list.clone(), merchant.token.clone());
        async move {
            let mut pages: Vec<Vec<String>> = Vec::new();
            let mut cursor: Option<String> = None;
            loop {
                let path = match &cursor {
                    Some(cursor) => format!("{list}?limit={limit}&cursor={cursor}"),
                    None => format!("{list}?limit={limit}"),
                };
                let page = app.get(&path).token(&token).send().await.expect(StatusCode::OK).json();
                pages.push(
                    page["orders"].as_array().expect("orders").iter().map(|o| text(&o["id"])).collect(),
                );
                assert!(pages.len() <= ORDERS + 1, "the walk does not end");
                match &page["next_cursor"] {
                    Value::Null => break,
                    next => cursor = Some(text(next)),
                }
            }
            pages
        }
    };

    for (limit, sizes) in [(3, vec![3, 3, 1]), (7, vec![7]), (1, vec![1; 7]), (100, vec![7])] {
        let pages = walk(limit).await;
        assert_eq!(pages.iter().map(Vec::len).collect::<Vec<_>>(), sizes, "page sizes at limit {limit}");
        let seen: Vec<String> = pages.into_iter().flatten().collect();
        let unique: BTreeSet<String> = seen.iter().cloned().collect();
        assert_eq!(unique.len(), seen.len(), "an order shows up twice at limit {limit}");
        assert_eq!(unique, created, "orders missing or foreign at limit {limit}");
        let mut newest_first = seen.clone();
        newest_first.sort_by(|x, y| y.cmp(x));
        assert_eq!(seen, newest_first, "newest first at limit {limit}");
    }

    let default_page = app.get(&list).token(&merchant.token).send().await.expect(StatusCode::OK).json();
    assert_eq!(default_page["orders"].as_array().expect("orders").len(), ORDERS);
    assert_eq!(default_page["next_cursor"], Value::Null);
    let only_paid = app.get(&format!("{list}?status=paid")).token(&merchant.token).send().await;
    let only_paid = only_paid.expect(StatusCode::OK).json();
    let ids: Vec<String> =
        only_paid["orders"].as_array().expect("orders").iter().map(|o| text(&o["id"])).collect();
    assert_eq!(ids, vec![paid]);
}

// ----- operations -----

/// Every route of `routes.rs`, as the OpenAPI document must list it.
const ROUTES: &[(&str, &str)] = &[
    ("post", "/v1/merchants"),
    ("get", "/v1/merchants/{merchant_id}"),
    ("post", "/v1/merchants/{merchant_id}/products"),
    ("get", "/v1/products/{product_id}"),
    ("get", "/v1/skus/{sku_id}"),
    ("put", "/v1/skus/{sku_id}/stock"),
    ("post", "/v1/checkouts"),
    ("get", "/v1/payments/{payment_id}"),
    ("post", "/v1/payments/callbacks"),
    ("post", "/v1/provider-sim/payments/{payment_id}/pay"),
    ("post", "/v1/orders/{order_id}/refunds"),
    ("get", "/v1/orders/{order_id}/refunds"),
    ("get", "/v1/ledger/accounts/{account_id}"),
    ("get", "/v1/orders/{order_id}"),
    ("get", "/v1/merchants/{merchant_id}/orders"),
    ("post", "/v1/orders/{order_id}/ship"),
    ("post", "/v1/orders/{order_id}/deliver"),
    ("post", "/v1/orders/{order_id}/confirm"),
    ("post", "/v1/orders/{order_id}/cancel"),
    ("post", "/v1/webhooks/subscriptions"),
    ("get", "/v1/webhooks/subscriptions"),
    ("get", "/v1/webhooks/subscriptions/{subscription_id}"),
    ("delete", "/v1/webhooks/subscriptions/{subscription_id}"),
    ("get", "/v1/webhooks/subscriptions/{subscription_id}/deliveries"),
    ("post", "/v1/webhooks/deliveries/{delivery_id}/replay"),
    ("post", "/v1/merchants/{merchant_id}/payouts"),
    ("get", "/v1/merchants/{merchant_id}/payouts"),
    ("get", "/v1/payouts/{payout_id}"),
    ("get", "/v1/merchants/{merchant_id}/balance"),
    ("post", "/v1/ops/payout-batches"),
    ("get", "/v1/ops/payout-batches/{batch_id}/file"),
    ("post", "/v1/ops/payouts/{payout_id}/confirm"),
    ("post", "/v1/ops/payout-results"),
    ("post", "/v1/ops/reconciliations"),
    ("get", "/v1/ops/reconciliations"),
    ("get", "/v1/ops/reconciliations/{reconciliation_id}"),
    ("get", "/healthz"),
    ("get", "/metrics"),
    ("get", "/social/v1/shops/{shop_id}/products"),
    ("post", "/social/v1/shops/{shop_id}/products/{product_id}"),
    ("post", "/social/v1/shops/{shop_id}/products/{product_id}/stock"),
    ("get", "/social/v1/shops/{shop_id}/orders"),
    ("post", "/social/v1/orders"),
    ("get", "/social/v1/orders/{order_id}"),
    ("post", "/social/v1/orders/{order_id}/ship"),
    ("post", "/social/v1/orders/{order_id}/pay"),
    ("post", "/social/v1/orders/{order_id}/confirm"),
    ("post", "/social/v1/orders/{order_id}/cancel"),
    ("post", "/social/v1/orders/{order_id}/refund"),
    ("get", "/social/v1/orders/{order_id}/refunds"),
    ("post", "/social/v1/buyers/{buyer_id}/consents"),
    ("get", "/social/v1/buyers/{buyer_id}/consents"),
    ("delete", "/social/v1/buyers/{buyer_id}/consents/{purpose}"),
    ("post", "/social/v1/buyers/{buyer_id}/profile-share"),
    ("post", "/v1/ops/social/shops/{shop_id}/enrol"),
    ("post", "/v1/ops/social/shops/{shop_id}/move"),
    ("post", "/v1/ops/social/shops/{shop_id}/abort-move"),
    ("post", "/v1/ops/migration/waves"),
    ("get", "/v1/ops/migration/waves"),
    ("get", "/v1/ops/migration/waves/{name}"),
    ("post", "/v1/ops/migration/runs"),
    ("get", "/v1/ops/migration/progress"),
    ("get", "/v1/ops/migration/merchants"),
    ("get", "/v1/ops/migration/quarantine"),
    ("post", "/v1/ops/migration/merchants/{merchant_id}/accept-quarantine"),
    ("post", "/v1/ops/migration/merchants/{merchant_id}/rollback"),
    ("post", "/v1/ops/migration/merchants/{merchant_id}/finalize"),
    ("post", "/v1/ops/migration/waves/{name}/pause"),
    ("post", "/v1/ops/migration/waves/{name}/resume"),
    ("get", "/v1/oversight/rules"),
    ("get", "/v1/oversight/pdp-requests"),
    ("get", "/social/v1/buyers/{buyer_id}/data-export"),
    ("get", "/v1/oversight/reports/transactions"),
    ("get", "/v1/oversight/findings"),
    ("post", "/v1/oversight/findings/{finding_id}/acknowledge"),
    ("post", "/v1/oversight/findings/{finding_id}/resolve"),
    ("get", "/v1/oversight/audit/chain"),
    ("get", "/v1/oversight/audit/digests"),
    ("get", "/v1/oversight/audit/digests/{day}"),
    ("get", "/v1/oversight/audit/public-key"),
];

#[tokio::test]
async fn health_metrics_and_the_api_document_are_served() {
    let app = App::start().await;
    let health = app.get("/healthz").send().await.expect(StatusCode::OK).json();
    assert_eq!(health["status"], "ok");
    let backend = format!("{:?}", app.store().backend()).to_lowercase();
    assert_eq!(health["database"], backend.as_str());

    let metrics = app.get("/metrics").send().await.expect(StatusCode::OK);
    assert!(metrics.text().contains("jembatan_http_requests_total"), "{}", metrics.text());
    assert!(
        metrics.text().contains("route=\"/healthz\""),
        "requests are counted per route: {}",
        metrics.text()
    );

    let document = app.get("/openapi.json").send().await.expect(StatusCode::OK);
    assert_eq!(document.content_type(), "application/json");
    assert!(document.text().contains("\"openapi\": \"3.1"), "{}", &document.text()[..200]);
    let document = document.json();
    let mut listed = BTreeSet::new();
    for (path, operations) in document["paths"].as_object().expect("paths") {
        for method in operations.as_object().expect("path item").keys() {
            listed.insert((method.clone(), path.clone()));
        }
    }
    let expected: BTreeSet<(String, String)> =
        ROUTES.iter().map(|(method, path)| (method.to_string(), path.to_string())).collect();
    assert_eq!(listed, expected, "the document lists exactly the routes");

    // Every path written in routes.rs is in the table above, so a new route cannot slip past.
    let source = [
        include_str!("../src/routes.rs"),
        include_str!("../src/social.rs"),
        include_str!("../src/migration.rs"),
        include_str!("../src/migration_run.rs"),
        include_str!("../src/oversight.rs"),
    ]
    .concat();
    let in_source: BTreeSet<&str> =
        source.split('"').skip(1).step_by(2).filter(|s| s.starts_with('/')).collect();
    let in_table: BTreeSet<&str> = ROUTES.iter().map(|(_, path)| *path).collect();
    assert_eq!(in_source, in_table, "routes.rs and this test's table of routes");
}

// ----- the audit proofs -----

/// The regulator reads the chain's state, the public key and the signed digests, and verifies
/// a digest's signature itself; no other role reads them.
#[tokio::test]
async fn the_regulator_fetches_signed_digests_and_checks_them_with_the_public_key() {
    use jembatan_domain::audit::{DigestBody, public_key_hex, signing_key, verify_signature};
    let app = App::start().await;
    jembatan_core::audit::seal_all(app.store()).await.unwrap();
    let key = signing_key(&common::AUDIT_TEST_KEY);
    jembatan_core::audit::sign_digest(app.store(), &key, "2026-12-07", 0).await.unwrap();

    let chain = app.get("/v1/oversight/audit/chain").token(&app.regulator).send().await;
    assert_eq!(chain.status, StatusCode::OK, "{}", chain.text());
    let chain = chain.json();
    assert!(chain["verified"].as_i64().unwrap() >= 1, "the tokens issued are audited: {chain}");
    assert_eq!(chain["first_break"], Value::Null, "{chain}");

    let public = app.get("/v1/oversight/audit/public-key").token(&app.regulator).send().await.json();
    assert_eq!(public["public_key"], public_key_hex(&key));
    let digests = app.get("/v1/oversight/audit/digests").token(&app.regulator).send().await.json();
    let d = &digests["digests"][0];
    let body = DigestBody {
        day: d["day"].as_str().unwrap().to_owned(),
        last_seq: d["last_seq"].as_i64().unwrap(),
        last_hash: d["last_hash"].as_str().unwrap().to_owned(),
        entries: d["entries"].as_i64().unwrap(),
    };
    assert_eq!(body.last_hash, chain["head_hash"].as_str().unwrap());
    assert_eq!(
        verify_signature(public["public_key"].as_str().unwrap(), &body, d["signature"].as_str().unwrap()),
        Ok(())
    );
    let one = app.get("/v1/oversight/audit/digests/2026-12-07").token(&app.operator).send().await;
    assert_eq!(one.status, StatusCode::OK);
    let none = app.get("/v1/oversight/audit/digests/2026-01-01").token(&app.regulator).send().await;
    assert_eq!(none.status, StatusCode::NOT_FOUND);
    assert!(none.text().contains("YYYY-MM-DD"), "{}", none.text());

    let merchant = app.new_merchant("Toko Audit").await;
    let merchant = app.token_for(jembatan_domain::Principal::Merchant(merchant.id.parse().unwrap())).await;
    for path in ["chain", "digests", "digests/2026-12-07", "public-key"] {
        for token in [&merchant, &app.social, &app.provider] {
            let reply = app.get(&format!("/v1/oversight/audit/{path}")).token(token).send().await;
            assert_eq!(reply.status, StatusCode::FORBIDDEN, "{path}: {}", reply.text());
        }
    }
}

/// The regulator reads the rules in force and the findings of a scan, as JSON and as CSV;
/// bad filters are refused; merchants and channels read neither.
#[tokio::test]
async fn the_regulator_reads_the_rules_and_the_findings_as_json_and_csv() {
    let app = App::start().await;
    let rules = app.get("/v1/oversight/rules").token(&app.regulator).send().await;
    assert_eq!(rules.status, StatusCode::OK, "{}", rules.text());
    let rules = rules.json();
    let ids: Vec<&str> =
        rules["rules"].as_array().unwrap().iter().map(|r| r["id"].as_str().unwrap()).collect();
    assert_eq!(ids, ["R1", "R2", "R3", "R4", "R5", "R6", "R7"]);
    assert_eq!(rules["rules"][1]["article"], "Permendag 31/2023 art. 19(1)-(3)");

    // A cross-border shop lists a toy at Rp 50,000 (about USD 3): under the USD 100 floor.
    let body = json!({"name": "Global Toys", "origin": "cross_border", "province": "DKI Jakarta"});
    let reply = app.post("/v1/merchants").token(&app.operator).json(&body).send().await;
    let id = reply.expect(StatusCode::CREATED).json()["id"].as_str().unwrap().to_owned();
    let token = app.token_for(jembatan_domain::Principal::Merchant(id.parse().unwrap())).await;
    let abroad = Merchant { id, token };
    app.list_product(&abroad, &[("T-1", 50_000, 5)]).await;
    let policy = jembatan_core::policy::load(jembatan_core::policy::BUILT_IN).unwrap();
    let day = ::time::macros::date!(2026 - 12 - 08);
    let report =
        jembatan_core::oversight::scan(&app.core, &jembatan_domain::Principal::Operator, &policy, day)
            .await
            .unwrap();
    assert_eq!(report.found.get("R2"), Some(&1), "{report:?}");

    let page = app.get("/v1/oversight/findings?rule=R2").token(&app.regulator).send().await;
    assert_eq!(page.status, StatusCode::OK, "{}", page.text());
    let page = page.json();
    let f = &page["findings"][0];
    assert_eq!(
        (f["rule"].as_str(), f["merchant_id"].as_str(), f["state"].as_str()),
        (Some("R2"), Some(abroad.id.as_str()), Some("open"))
    );
    assert!(f["evidence"]["detail"].as_str().unwrap().contains("under the USD 100.00 floor"), "{f}");
    let csv = app.get("/v1/oversight/findings?format=csv").token(&app.operator).send().await;
    assert_eq!(csv.status, StatusCode::OK);
    assert!(csv.content_type().starts_with("text/csv"), "{}", csv.content_type());
    let lines: Vec<&str> = csv.text().lines().collect();
    assert_eq!(
        lines[0],
        "finding_id,rule,article,severity,merchant_id,entity_type,entity_id,state,found_at,evidence"
    );
    assert!(lines[1].contains(",R2,") && lines[1].contains(&abroad.id), "{}", lines[1]);

    // The operator acknowledges, then resolves; a finding never moves back; notes are required.
    let id = f["finding_id"].as_str().unwrap().to_owned();
    let path = |action: &str| format!("/v1/oversight/findings/{id}/{action}");
    let note = json!({"note": "asked the seller for the FOB invoice"});
    let reply = app.post(&path("acknowledge")).token(&app.operator).json(&note).send().await;
    assert_eq!(reply.expect(StatusCode::OK).json()["state"], "acknowledged");
    let empty = app.post(&path("resolve")).token(&app.operator).json(&json!({"note": " "})).send().await;
    assert_eq!(empty.status, StatusCode::UNPROCESSABLE_ENTITY, "{}", empty.text());
    let reply = app.post(&path("resolve")).token(&app.operator).json(&note).send().await;
    assert_eq!(reply.expect(StatusCode::OK).json()["state"], "resolved");
    let again = app.post(&path("acknowledge")).token(&app.operator).json(&note).send().await;
    assert_eq!(again.status, StatusCode::CONFLICT, "{}", again.text());
    let unknown =
        app.post("/v1/oversight/findings/fnd_nope/resolve").token(&app.operator).json(&note).send().await;
    assert_eq!(unknown.status, StatusCode::NOT_FOUND);
    let resolved = app.get("/v1/oversight/findings?state=resolved").token(&app.regulator).send().await.json();
    assert_eq!(resolved["findings"][0]["finding_id"], id.as_str());

    for bad in ["state=closed", "format=xml", "limit=0"] {
        let reply = app.get(&format!("/v1/oversight/findings?{bad}")).token(&app.regulator).send().await;
        assert_eq!(reply.status, StatusCode::UNPROCESSABLE_ENTITY, "{bad}: {}", reply.text());
    }
    let merchant = app.token_for(jembatan_domain::Principal::Merchant(abroad.id.parse().unwrap())).await;
    let open_one = app.get("/v1/oversight/findings?state=open").token(&app.regulator).send().await.json();
    let open_one = open_one["findings"].as_array().map(|f| f.len()).unwrap_or(0);
    assert_eq!(open_one, 0, "the only finding is resolved");
    for path in ["/v1/oversight/rules", "/v1/oversight/findings"] {
        for token in [&merchant, &app.social] {
            assert_eq!(app.get(path).token(token).send().await.status, StatusCode::FORBIDDEN, "{path}");
        }
    }
}

/// The regulator's transaction report: a paid social order counts on its WIB day under its
/// channel, the merchant's origin and province; an unpaid one does not. JSON and CSV; bad
/// ranges refused; merchants read nothing.
#[tokio::test]
async fn the_transaction_report_counts_paid_orders_by_day_channel_origin_and_province() {
    let app = App::start().await;
    let shop = app.new_merchant("Toko Laporan").await;
    let product = app.list_product(&shop, &[("R-1", 40_000, 10)]).await;
    let paid = app.checkout(&app.social, &[(&product.sku_ids[0], 2)]).await;
    app.pay(&paid).await;
    app.checkout(&app.social, &[(&product.sku_ids[0], 1)]).await; // never paid
    let now_ms = app.core.clock().now().unix_ms() + 7 * 3_600_000;
    let today = ::time::OffsetDateTime::from_unix_timestamp(now_ms / 1000).unwrap().date().to_string();

    let url = format!("/v1/oversight/reports/transactions?from={today}&to={today}");
    let report = app.get(&url).token(&app.regulator).send().await;
    assert_eq!(report.status, StatusCode::OK, "{}", report.text());
    let report = report.json();
    assert_eq!(report["total_orders"], 1, "{report}");
    assert_eq!(report["total_gmv_idr"], 80_000, "{report}");
    let line = &report["lines"][0];
    assert_eq!(
        (
            line["day"].as_str(),
            line["channel"].as_str(),
            line["merchant_origin"].as_str(),
            line["province"].as_str()
        ),
        (Some(today.as_str()), Some("social"), Some("local"), Some("Jawa Barat")),
        "{report}"
    );
    let csv = app.get(&format!("{url}&format=csv")).token(&app.operator).send().await;
    assert!(csv.content_type().starts_with("text/csv"));
    assert_eq!(
        csv.text().lines().collect::<Vec<_>>(),
        [
            "day,channel,merchant_origin,province,orders,gmv_idr",
            &format!("{today},social,local,Jawa Barat,1,80000")
        ]
    );
    for bad in [
        "from=2026-12-08&to=2026-12-01",
        "from=2025-01-01&to=2026-12-31",
        "from=08-12-2026&to=2026-12-08",
        "from=2026-12-08",
    ] {
        let reply =
            app.get(&format!("/v1/oversight/reports/transactions?{bad}")).token(&app.regulator).send().await;
        assert_eq!(reply.status, StatusCode::UNPROCESSABLE_ENTITY, "{bad}: {}", reply.text());
    }
    assert_eq!(app.get(&url).token(&shop.token).send().await.status, StatusCode::FORBIDDEN);
}
