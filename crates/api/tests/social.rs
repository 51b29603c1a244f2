//! The seamless proof (issue 4): one suite of `/social/v1` scenarios — browse, seller edits,
//! order, pay, ship, confirm, cancel, refund, bad input — runs against a shop while the legacy
//! store owns it and again against a shop the core owns, and the two transcripts must be
//! identical except for the fields named in [`normalise`]. Then orders placed before a shop's
//! move are fetched, confirmed and refunded after it; payments of legacy shops are the core's;
//! the core holds no social profile data without consent; writes held by a move wait, never fail.

mod common;

use std::collections::HashMap;

use common::*;
use hyper::StatusCode;
use jembatan_domain::{MerchantId, Principal, TypedId};
use jembatan_store::legacy::{Batch, LegacyProduct, LegacySku, PRODUCT_LIVE};
use jembatan_store::q;
use jembatan_store::testing::raw_execute;
use serde_json::{Value, json};

async fn move_shop(app: &App, shop: &SocialShop) -> Value {
    app.post(&format!("/v1/ops/social/shops/{}/move", shop.shop_id))
        .token(&app.operator)
        .send()
        .await
        .expect(StatusCode::OK)
        .json()
}

/// One step of the transcript: what was asked, the status, the normalised body.
type Transcript = Vec<(String, u16, Value)>;

struct Recorder<'a> {
    app: &'a App,
    transcript: Transcript,
}

impl Recorder<'_> {
    async fn record(&mut self, step: &str, reply: Reply) -> Value {
        let body = if reply.body.is_empty() { Value::Null } else { reply.json() };
        self.transcript.push((step.to_owned(), reply.status.as_u16(), body.clone()));
        body
    }

    async fn get(&mut self, step: &str, token: &str, path: &str) -> Value {
        let reply = self.app.get(path).token(token).send().await;
        self.record(step, reply).await
    }

    async fn post(&mut self, step: &str, token: &str, path: &str, body: Option<Value>) -> Value {
        let call = self.app.post(path).token(token);
        let reply = match body {
            Some(body) => call.json(&body).send().await,
            None => call.send().await,
        };
        self.record(step, reply).await
    }
}

/// The scenarios, as the social app and the seller tools call them.
async fn contract_suite(app: &App, shop: &SocialShop, other_seller: &str) -> Transcript {
    let mut r = Recorder { app, transcript: Vec::new() };
    let s = &shop.shop_id;
    let buyer = app.social.clone();
    let seller = shop.token.clone();
    let (p0, p1) = (&shop.products[0].0, &shop.products[1].0);
    let sku = |p: usize, i: usize| shop.products[p].1[i].clone();

    // Browse and seller edits.
    r.get("list products", &seller, &format!("/social/v1/shops/{s}/products?page_size=1")).await;
    r.get(
        "list products page 2",
        &seller,
        &format!("/social/v1/shops/{s}/products?page_size=1&page_token={p0}"),
    )
    .await;
    let edit =
        json!({"title": "Kemeja Batik Parang Premium", "skus": [{"sku_id": sku(0, 0), "price": "155.000"}]});
    r.post("edit title and price", &seller, &format!("/social/v1/shops/{s}/products/{p0}"), Some(edit)).await;
    let stock = json!({"skus": [{"sku_id": sku(1, 0), "stock": 7}]});
    r.post("set stock", &seller, &format!("/social/v1/shops/{s}/products/{p1}/stock"), Some(stock)).await;
    r.get("list products after edits", &seller, &format!("/social/v1/shops/{s}/products")).await;

    // Order, pay, ship, confirm.
    let order = r
        .post(
            "create order",
            &buyer,
            "/social/v1/orders",
            Some(social_order_body(shop, &[(0, 0, 2), (1, 0, 1)], "VA")),
        )
        .await;
    let o1 = text(&order["order_id"]);
    r.get("get unpaid order", &buyer, &format!("/social/v1/orders/{o1}")).await;
    let paying = r.post("pay", &buyer, &format!("/social/v1/orders/{o1}/pay"), None).await;
    r.post("ship before payment", &seller, &format!("/social/v1/orders/{o1}/ship"), None).await;
    app.simulate_payment(&text(&paying["payment"]["payment_id"]), json!({})).await.expect(StatusCode::OK);
    r.get("get paid order", &buyer, &format!("/social/v1/orders/{o1}")).await;
    r.get("seller lists awaiting shipment", &seller, &format!("/social/v1/shops/{s}/orders?status=111"))
        .await;
    r.get("stock after the sale", &seller, &format!("/social/v1/shops/{s}/products")).await;
    r.post("ship", &seller, &format!("/social/v1/orders/{o1}/ship"), None).await;
    r.post("ship again", &seller, &format!("/social/v1/orders/{o1}/ship"), None).await;
    r.post("cancel after shipping", &buyer, &format!("/social/v1/orders/{o1}/cancel"), None).await;
    r.post(
        "buyer refund after shipment",
        &buyer,
        &format!("/social/v1/orders/{o1}/refund"),
        Some(json!({"amount": "50.000", "reason": "satu kemeja cacat"})),
    )
    .await;
    r.post(
        "seller refunds part before receipt",
        &seller,
        &format!("/social/v1/orders/{o1}/refund"),
        Some(json!({"amount": "50.000", "reason": "satu kemeja cacat"})),
    )
    .await;
    r.post("confirm receipt", &buyer, &format!("/social/v1/orders/{o1}/confirm"), None).await;
    r.post(
        "buyer refund after completion",
        &buyer,
        &format!("/social/v1/orders/{o1}/refund"),
        Some(json!({"amount": "1000", "reason": "terlambat"})),
    )
    .await;
    r.post(
        "refund more than paid",
        &seller,
        &format!("/social/v1/orders/{o1}/refund"),
        Some(json!({"amount": "99999999", "reason": "salah"})),
    )
    .await;
    r.get("refunds of the order", &buyer, &format!("/social/v1/orders/{o1}/refunds")).await;
    r.get("seller lists completed", &seller, &format!("/social/v1/shops/{s}/orders?status=130")).await;

    // A second order: paid by QRIS, cancelled before shipping — refunded, stock back.
    let order = r
        .post(
            "create QRIS order",
            &buyer,
            "/social/v1/orders",
            Some(social_order_body(shop, &[(1, 1, 1)], "QRIS")),
        )
        .await;
    let o2 = text(&order["order_id"]);
    let paying = r.post("pay QRIS", &buyer, &format!("/social/v1/orders/{o2}/pay"), None).await;
    app.simulate_payment(&text(&paying["payment"]["payment_id"]), json!({})).await.expect(StatusCode::OK);
    r.post("cancel paid order", &buyer, &format!("/social/v1/orders/{o2}/cancel"), None).await;
    r.get("cancelled order", &buyer, &format!("/social/v1/orders/{o2}")).await;
    r.get("stock after the cancel", &seller, &format!("/social/v1/shops/{s}/products")).await;

    // Cash on delivery: accepted at once.
    let order = r
        .post(
            "create COD order",
            &buyer,
            "/social/v1/orders",
            Some(social_order_body(shop, &[(0, 1, 1)], "COD")),
        )
        .await;
    let o3 = text(&order["order_id"]);
    r.get("COD order", &buyer, &format!("/social/v1/orders/{o3}")).await;
    r.get("all orders", &seller, &format!("/social/v1/shops/{s}/orders")).await;

    // Bad input: a clear problem each, nothing changed.
    r.post(
        "more than in stock",
        &buyer,
        "/social/v1/orders",
        Some(social_order_body(shop, &[(0, 0, 999)], "VA")),
    )
    .await;
    r.post(
        "unknown payment method",
        &buyer,
        "/social/v1/orders",
        Some(social_order_body(shop, &[(0, 0, 1)], "CASH")),
    )
    .await;
    r.get("malformed order id", &buyer, "/social/v1/orders/12ab").await;
    r.get("unknown order", &buyer, "/social/v1/orders/12345").await;
    r.get("unknown status code", &seller, &format!("/social/v1/shops/{s}/orders?status=999")).await;
    r.get("status that is not a number", &seller, &format!("/social/v1/shops/{s}/orders?status=paid")).await;
    let ambiguous = json!({"skus": [{"sku_id": sku(0, 0), "price": "1.500"}]});
    r.post("ambiguous price", &seller, &format!("/social/v1/shops/{s}/products/{p0}"), Some(ambiguous)).await;
    let fraction = json!({"skus": [{"sku_id": sku(0, 0), "price": "149.000,50"}]});
    r.post("fraction of a rupiah", &seller, &format!("/social/v1/shops/{s}/products/{p0}"), Some(fraction))
        .await;
    r.post(
        "negative stock",
        &seller,
        &format!("/social/v1/shops/{s}/products/{p1}/stock"),
        Some(json!({"skus": [{"sku_id": sku(1, 0), "stock": -1}]})),
    )
    .await;
    r.get("unknown shop", &seller, "/social/v1/shops/999999/products").await;
    r.get("list products after bad input", &seller, &format!("/social/v1/shops/{s}/products")).await;

    // Tenancy: another seller sees nothing of this shop; the regulator reads, masked, never writes.
    r.get("another seller's products", other_seller, &format!("/social/v1/shops/{s}/products")).await;
    r.get("another seller's orders", other_seller, &format!("/social/v1/shops/{s}/orders")).await;
    r.post("another seller ships", other_seller, &format!("/social/v1/orders/{o3}/ship"), None).await;
    r.get("another seller reads an order", other_seller, &format!("/social/v1/orders/{o3}")).await;
    r.get("another seller reads refunds", other_seller, &format!("/social/v1/orders/{o1}/refunds")).await;
    let refund = json!({"amount": "1000", "reason": "x"});
    r.post("another seller refunds", other_seller, &format!("/social/v1/orders/{o3}/refund"), Some(refund))
        .await;
    let edit = json!({"title": "Punya orang lain"});
    r.post(
        "another seller edits a product",
        other_seller,
        &format!("/social/v1/shops/{s}/products/{p0}"),
        Some(edit),
    )
    .await;
    let stock = json!({"skus": [{"sku_id": sku(1, 0), "stock": 0}]});
    r.post(
        "another seller sets stock",
        other_seller,
        &format!("/social/v1/shops/{s}/products/{p1}/stock"),
        Some(stock),
    )
    .await;
    r.get("products after the other seller tried", &seller, &format!("/social/v1/shops/{s}/products")).await;
    r.get("regulator reads an order", &app.regulator, &format!("/social/v1/orders/{o3}")).await;
    r.post("regulator ships", &app.regulator, &format!("/social/v1/orders/{o3}/ship"), None).await;
    r.post(
        "a channel edits a product",
        &buyer,
        &format!("/social/v1/shops/{s}/products/{p0}"),
        Some(json!({"title": "x"})),
    )
    .await;
    r.transcript
}

/// What may differ between two runs, and why:
/// - ids (`order_id`, `shop_id`, `product_id`, `sku_id`, `payment_id`, `refund_id`,
///   `next_page_token`): each run has its own shop and creates its own objects. Ids are
///   replaced by placeholders in order of first appearance, so the *same* id must still appear
///   in the same places in both runs.
/// - times (`create_time`, `update_time`, `expire_time`): each run happens at its own time.
/// - what the provider issued (`va_number`, `qris_payload`, `ewallet_ref`, `redirect_url`):
///   derived from each payment's own id; their presence is compared, not their value.
/// - digits in a problem's `detail` that name one of those ids.
///
/// Nothing else: statuses, amounts, prices, stock, items, recipients, payment state, problem
/// types and codes are compared as they are.
fn normalise(transcript: &Transcript) -> Transcript {
    let mut ids: HashMap<String, String> = HashMap::new();
    transcript
        .iter()
        .map(|(step, status, body)| (step.clone(), *status, walk(body, None, &mut ids)))
        .collect()
}

fn walk(value: &Value, key: Option<&str>, ids: &mut HashMap<String, String>) -> Value {
    const ID_FIELDS: &[&str] =
        &["order_id", "shop_id", "product_id", "sku_id", "payment_id", "refund_id", "next_page_token"];
    const TIME_FIELDS: &[&str] = &["create_time", "update_time", "expire_time"];
    const PROVIDER_FIELDS: &[&str] = &["va_number", "qris_payload", "ewallet_ref", "redirect_url"];
    match (value, key) {
        (Value::Object(map), _) => {
            Value::Object(map.iter().map(|(k, v)| (k.clone(), walk(v, Some(k), ids))).collect())
        }
        (Value::Array(items), _) => Value::Array(items.iter().map(|v| walk(v, key, ids)).collect()),
        (Value::String(s), Some(k)) if ID_FIELDS.contains(&k) => {
            let next = format!("<id{}>", ids.len());
            Value::String(ids.entry(s.clone()).or_insert(next).clone())
        }
        (Value::Number(_), Some(k)) if TIME_FIELDS.contains(&k) => Value::String("<time>".to_owned()),
        (Value::String(_), Some(k)) if PROVIDER_FIELDS.contains(&k) => Value::String("<issued>".to_owned()),
        (Value::String(s), Some("detail")) => {
            let mut out = String::new();
            let mut digits = String::new();
            for c in s.chars().chain(std::iter::once(' ')) {
                if c.is_ascii_digit() {
                    digits.push(c);
                    continue;
                }
                if digits.len() >= 9 {
                    let next = format!("<id{}>", ids.len());
                    out.push_str(ids.entry(digits.clone()).or_insert(next));
                } else {
                    out.push_str(&digits);
                }
                digits.clear();
                out.push(c);
            }
            out.pop();
            Value::String(out)
        }
        (other, _) => other.clone(),
    }
}

#[tokio::test]
async fn the_social_contract_answers_the_same_whoever_owns_the_shop() {
    let app = App::start().await;
    let other = seed_social_shop(&app, 9).await;

    let legacy_shop = seed_social_shop(&app, 1).await;
    let legacy_run = contract_suite(&app, &legacy_shop, &other.token).await;

    let core_shop = seed_social_shop(&app, 2).await;
    let moved = move_shop(&app, &core_shop).await;
    assert_eq!(moved["products_copied"], 2);
    let core_run = contract_suite(&app, &core_shop, &other.token).await;

    // The shops are owned as intended while their suites ran.
    assert_eq!(
        app.store().social_shop(&legacy_shop.shop_id).await.unwrap().unwrap().owner.as_str(),
        "legacy"
    );
    assert_eq!(app.store().social_shop(&core_shop.shop_id).await.unwrap().unwrap().owner.as_str(), "core");
    // The core shop's orders are in the core, the legacy shop's in the legacy store.
    assert!(app.legacy.store.orders(&core_shop.shop_id, None, "", 10).await.unwrap().is_empty());
    assert_eq!(app.legacy.store.orders(&legacy_shop.shop_id, None, "", 10).await.unwrap().len(), 3);

    let (a, b) = (normalise(&legacy_run), normalise(&core_run));
    assert_eq!(a.len(), b.len());
    for ((step, status_a, body_a), (_, status_b, body_b)) in a.iter().zip(&b) {
        assert_eq!(
            (status_a, body_a),
            (status_b, body_b),
            "step `{step}` differs between the legacy-owned and the core-owned shop"
        );
    }

    // Spot checks that the transcript says what the suite means (and is not trivially equal).
    let step = |name: &str| legacy_run.iter().find(|(s, ..)| s == name).unwrap_or_else(|| panic!("{name}"));
    assert_eq!(step("create order").1, 201);
    assert_eq!(step("create order").2["status"], 100);
    assert_eq!(step("create order").2["total_amount"], "399000", "2 × Rp155,000 + Rp89,000");
    assert_eq!(step("get paid order").2["status"], 111);
    assert_eq!(step("ship").2["status"], 121);
    assert_eq!(step("confirm receipt").2["status"], 130);
    assert_eq!(step("confirm receipt").2["refunded_amount"], "50000");
    assert_eq!(step("ship before payment").1, 409);
    assert_eq!(step("cancel after shipping").1, 409);
    assert_eq!(step("buyer refund after shipment").1, 403);
    assert_eq!(step("seller refunds part before receipt").1, 201);
    assert_eq!(step("buyer refund after completion").1, 403);
    assert_eq!(step("refund more than paid").2["type"], format!("{PROBLEM_BASE}refund-exceeds-paid"));
    assert_eq!(step("cancelled order").2["status"], 140);
    assert_eq!(step("cancelled order").2["refunded_amount"], "1250000");
    assert_eq!(step("COD order").2["status"], 111);
    assert_eq!(step("more than in stock").2["type"], format!("{PROBLEM_BASE}insufficient-stock"));
    assert_eq!(step("malformed order id").2["type"], format!("{PROBLEM_BASE}malformed-id"));
    assert_eq!(step("unknown order").1, 404);
    assert_eq!(step("unknown status code").1, 422);
    assert_eq!(step("ambiguous price").2["type"], format!("{PROBLEM_BASE}ambiguous-price"));
    assert_eq!(step("fraction of a rupiah").2["type"], format!("{PROBLEM_BASE}fractional-price"));
    assert_eq!(step("another seller's products").1, 404);
    for case in [
        "another seller ships",
        "another seller reads an order",
        "another seller reads refunds",
        "another seller refunds",
        "another seller edits a product",
        "another seller sets stock",
    ] {
        assert_eq!(step(case).1, 404, "{case}: another seller's objects do not exist for it");
    }
    assert_eq!(step("products after the other seller tried").2, step("list products after bad input").2);
    // Escrow, stock, the id map and the journal hold up in the core.
    assert_eq!(jembatan_sim::invariants::check(app.store()).await.unwrap(), vec![]);
    assert_eq!(step("regulator ships").1, 403);
    assert_eq!(step("a channel edits a product").1, 403);
    let masked = &step("regulator reads an order").2;
    assert_eq!(masked["buyer_id"], "66********");
    assert!(masked["recipient"]["phone"].as_str().unwrap().contains('*'));
    let products = &step("list products after bad input").2["products"];
    assert_eq!(products[0]["skus"][0]["price"], "155000", "the refused edits changed nothing");
    assert_eq!(products[0]["skus"][0]["stock"], 8, "10 − 2 sold");
    assert_eq!(products[1]["skus"][1]["stock"], 10, "the cancelled unit came back");
    assert_eq!(products[0]["skus"][1]["stock"], 9, "one unit to the COD order");
}

#[tokio::test]
async fn orders_placed_before_a_move_are_fetched_confirmed_and_refunded_after_it() {
    let app = App::start().await;
    let shop = seed_social_shop(&app, 3).await;
    let buyer = app.social.clone();
    let create = |items: &[(usize, usize, i64)]| social_order_body(&shop, items, "VA");
    // Shipped, paid, and unpaid orders while the legacy store owns the shop.
    let shipped = paid_order(&app, create(&[(0, 0, 1)])).await;
    app.post(&format!("/social/v1/orders/{shipped}/ship"))
        .token(&shop.token)
        .send()
        .await
        .expect(StatusCode::OK);
    let paid = paid_order(&app, create(&[(1, 0, 2)])).await;
    let unpaid = app
        .post("/social/v1/orders")
        .token(&buyer)
        .json(&create(&[(1, 1, 1)]))
        .send()
        .await
        .expect(StatusCode::CREATED)
        .json();
    let unpaid_id = text(&unpaid["order_id"]);
    let before: Vec<Value> = futures_join(&app, &[&shipped, &paid, &unpaid_id]).await;

    // R1: the legacy store holds the orders, the core holds their payments.
    let legacy_columns = app.legacy.store.order(&paid).await.unwrap().unwrap();
    assert_eq!(legacy_columns.status, 111);
    let core_payments = app
        .store()
        .read(|conn| {
            Box::pin(
                async move { Ok(q("SELECT COUNT(*) AS n FROM payments").fetch_one(conn).await?.int("n")?) },
            )
        })
        .await
        .unwrap();
    assert_eq!(core_payments, 3);

    let moved = move_shop(&app, &shop).await;
    assert_eq!(moved["orders"], 3);
    // Same ids, same answers after the move.
    let after: Vec<Value> = futures_join(&app, &[&shipped, &paid, &unpaid_id]).await;
    for (b, a) in before.iter().zip(&after) {
        let mut b = b.clone();
        let mut a = a.clone();
        // The legacy row's update time is the last legacy write; the core's is its own.
        b["update_time"] = Value::Null;
        a["update_time"] = Value::Null;
        assert_eq!(b, a);
    }
    // A seller token, product ids and old links keep working.
    let products = app
        .get(&format!("/social/v1/shops/{}/products", shop.shop_id))
        .token(&shop.token)
        .send()
        .await
        .expect(StatusCode::OK)
        .json();
    assert_eq!(text(&products["products"][0]["product_id"]), shop.products[0].0);
    assert_eq!(products["products"][0]["skus"][0]["stock"], 9);

    // Confirm the order shipped before the move: the escrow is released to the seller.
    let done = app
        .post(&format!("/social/v1/orders/{shipped}/confirm"))
        .token(&buyer)
        .send()
        .await
        .expect(StatusCode::OK)
        .json();
    assert_eq!(done["status"], 130);
    // Refund part of the order paid before the move, then cancel the rest.
    let refund = app
        .post(&format!("/social/v1/orders/{paid}/refund"))
        .token(&buyer)
        .json(&json!({"amount": "89000", "reason": "satu rusak"}))
        .send()
        .await
        .expect(StatusCode::CREATED)
        .json();
    assert_eq!(refund["amount"], "89000");
    let cancelled = app
        .post(&format!("/social/v1/orders/{paid}/cancel"))
        .token(&buyer)
        .send()
        .await
        .expect(StatusCode::OK)
        .json();
    assert_eq!(cancelled["status"], 140);
    assert_eq!(cancelled["refunded_amount"], "178000");
    // The order left unpaid before the move is paid after it, through the core.
    app.simulate_payment(&text(&unpaid["payment"]["payment_id"]), json!({})).await.expect(StatusCode::OK);
    let now_paid = app
        .get(&format!("/social/v1/orders/{unpaid_id}"))
        .token(&buyer)
        .send()
        .await
        .expect(StatusCode::OK)
        .json();
    assert_eq!(now_paid["status"], 111);
    // The cancel gave its two units back to the core's SKU (the legacy store had taken them).
    let products = app
        .get(&format!("/social/v1/shops/{}/products", shop.shop_id))
        .token(&shop.token)
        .send()
        .await
        .expect(StatusCode::OK)
        .json();
    assert_eq!(products["products"][1]["skus"][0]["stock"], 10);

    // The legacy store refuses any write for the moved shop; the gateway never sends one.
    let refused = app
        .legacy
        .store
        .set_order_status(
            &unpaid_id,
            vec![jembatan_domain::social::LegacyStatus::Unpaid],
            jembatan_domain::social::LegacyStatus::Cancelled,
            1,
        )
        .await;
    assert!(matches!(refused, Err(jembatan_store::StoreError::Fenced(_))), "{refused:?}");
    // The seller's balance holds the released order's money, minus the fee.
    let balance = app
        .get(&format!("/v1/merchants/{}/balance", shop.merchant_id))
        .token(&shop.token)
        .send()
        .await
        .expect(StatusCode::OK)
        .json();
    assert_eq!(balance["available"]["amount"], 149_000 - 11_175, "fee 7.5 % of Rp149,000 kept: {balance}");
    assert_eq!(jembatan_sim::invariants::check(app.store()).await.unwrap(), vec![]);
}

/// The buyer orders and pays (through the provider simulator); returns the order id.
async fn paid_order(app: &App, body: Value) -> String {
    let order = app
        .post("/social/v1/orders")
        .token(&app.social)
        .json(&body)
        .send()
        .await
        .expect(StatusCode::CREATED)
        .json();
    let payment = text(&order["payment"]["payment_id"]);
    app.simulate_payment(&payment, json!({})).await.expect(StatusCode::OK);
    text(&order["order_id"])
}

async fn futures_join(app: &App, ids: &[&String]) -> Vec<Value> {
    let mut out = Vec::new();
    for id in ids {
        out.push(
            app.get(&format!("/social/v1/orders/{id}"))
                .token(&app.social)
                .send()
                .await
                .expect(StatusCode::OK)
                .json(),
        );
    }
    out
}

#[tokio::test]
async fn the_core_holds_no_social_profile_field_without_consent() {
    let app = App::start().await;
    let shop = seed_social_shop(&app, 1).await;
    let body = social_order_body(&shop, &[(0, 0, 1)], "EWALLET");
    app.post("/social/v1/orders").token(&app.social).json(&body).send().await.expect(StatusCode::CREATED);
    let profile = ["putri.cantik88", "putri88@contoh.co.id", "1999-04-12", SOCIAL_BUYER, "6281211112222"];
    let found = core_text_containing(&app, &profile).await;
    assert!(found.is_empty(), "social profile data in the core without consent: {found:?}");

    // Sharing without consent is refused and writes nothing.
    let refused =
        app.post(&format!("/social/v1/buyers/{SOCIAL_BUYER}/profile-share")).token(&app.social).send().await;
    refused.problem(StatusCode::CONFLICT, "conflict");
    // With a recorded consent (purpose, text version, time) the profile fields may go.
    let consent = app
        .post(&format!("/social/v1/buyers/{SOCIAL_BUYER}/consents"))
        .token(&app.social)
        .json(&json!({"purpose": "profile_sharing", "text_version": "2024-01"}))
        .send()
        .await
        .expect(StatusCode::CREATED)
        .json();
    assert_eq!(consent["purpose"], "profile_sharing");
    assert!(consent["grant_time"].as_i64().unwrap() > 1_700_000_000);
    app.post(&format!("/social/v1/buyers/{SOCIAL_BUYER}/profile-share"))
        .token(&app.social)
        .send()
        .await
        .expect(StatusCode::CREATED);
    let found = core_text_containing(&app, &profile).await;
    assert_eq!(found.len(), 2, "nickname and email only, under the consent: {found:?}");
    assert!(found.iter().all(|(table, _)| table == "buyer_profiles"));
    // Withdrawn: the shared fields are deleted.
    app.delete(&format!("/social/v1/buyers/{SOCIAL_BUYER}/consents/profile_sharing"))
        .token(&app.social)
        .send()
        .await
        .expect(StatusCode::NO_CONTENT);
    assert!(core_text_containing(&app, &profile).await.is_empty());
    let consents = app
        .get(&format!("/social/v1/buyers/{SOCIAL_BUYER}/consents"))
        .token(&app.social)
        .send()
        .await
        .expect(StatusCode::OK)
        .json();
    assert!(consents["consents"][0]["withdraw_time"].is_i64());
    // A seller cannot read a user's consents.
    app.get(&format!("/social/v1/buyers/{SOCIAL_BUYER}/consents"))
        .token(&shop.token)
        .send()
        .await
        .problem(StatusCode::FORBIDDEN, "forbidden");
}

/// (table, column) of every text value in the core's database that contains one of `needles`.
async fn core_text_containing(app: &App, needles: &[&str]) -> Vec<(String, String)> {
    let needles: Vec<String> = needles.iter().map(|s| (*s).to_owned()).collect();
    app.store()
        .read(move |conn| {
            Box::pin(async move {
                let tables = if conn.is_postgres() {
                    q("SELECT table_name AS name FROM information_schema.tables WHERE table_schema = current_schema()")
                        .fetch_all(&mut *conn)
                        .await?
                } else {
                    q("SELECT name FROM sqlite_master WHERE type = 'table'").fetch_all(&mut *conn).await?
                };
                let mut found = Vec::new();
                for table in tables {
                    let table = table.text("name")?;
                    for row in q(format!("SELECT * FROM {table}")).fetch_all(&mut *conn).await? {
                        for needle in &needles {
                            if format!("{row:?}").contains(needle.as_str()) {
                                found.push((table.clone(), needle.clone()));
                            }
                        }
                    }
                }
                Ok(found)
            })
        })
        .await
        .unwrap()
}

#[tokio::test]
async fn a_write_held_by_a_move_waits_and_lands_on_the_new_owner() {
    let app = App::start().await;
    let shop = seed_social_shop(&app, 4).await;
    // The move starts: owner `migrating` and the fence up, as the migration engine does.
    let ctx = jembatan_store::WriteCtx { actor: Principal::Operator, now: app.core.clock().now() };
    use jembatan_store::social::Owner;
    app.store().set_shop_owner(ctx, &shop.shop_id, Owner::Legacy, Owner::Migrating).await.unwrap();
    app.legacy.store.fence(&shop.shop_id, "test", 0).await.unwrap();
    let edit = json!({"skus": [{"sku_id": shop.products[0].1[0], "price": "160000"}]});
    let path = format!("/social/v1/shops/{}/products/{}", shop.shop_id, shop.products[0].0);
    let started = std::time::Instant::now();
    let (reply, ()) = tokio::join!(app.post(&path).token(&shop.token).json(&edit).send(), async {
        tokio::time::sleep(std::time::Duration::from_millis(300)).await;
        // The mover finishes: products copied, owner flipped.
        app.gateway
            .move_shop(
                &Principal::Operator,
                &jembatan_domain::social::SocialId::parse("s", &shop.shop_id).unwrap(),
            )
            .await
            .unwrap();
    });
    let product = reply.expect(StatusCode::OK).json();
    assert!(started.elapsed() >= std::time::Duration::from_millis(300), "the write waited for the move");
    assert_eq!(product["skus"][0]["price"], "160000");
    // It landed on the core: the legacy row kept the old price.
    let legacy = app.legacy.store.product(&shop.shop_id, &shop.products[0].0).await.unwrap().unwrap();
    assert_eq!(legacy.skus[0].price, "149.000");

    // A move that outlasts the wait: 503 shop-moving, nothing written.
    let other = seed_social_shop(&app, 5).await;
    let ctx = jembatan_store::WriteCtx { actor: Principal::Operator, now: app.core.clock().now() };
    app.store().set_shop_owner(ctx, &other.shop_id, Owner::Legacy, Owner::Migrating).await.unwrap();
    let path = format!("/social/v1/shops/{}/products/{}", other.shop_id, other.products[0].0);
    let edit = json!({"skus": [{"sku_id": other.products[0].1[0], "price": "160000"}]});
    app.post(&path)
        .token(&other.token)
        .json(&edit)
        .send()
        .await
        .problem(StatusCode::SERVICE_UNAVAILABLE, "shop-moving");
    let legacy = app.legacy.store.product(&other.shop_id, &other.products[0].0).await.unwrap().unwrap();
    assert_eq!(legacy.skus[0].price, "149.000");
}

#[tokio::test]
async fn a_payment_reaches_the_legacy_sellers_list_without_anyone_reading_the_order() {
    let app = App::start().await;
    let shop = seed_social_shop(&app, 6).await;
    let order = app
        .post("/social/v1/orders")
        .token(&app.social)
        .json(&social_order_body(&shop, &[(0, 0, 1)], "VA"))
        .send()
        .await
        .expect(StatusCode::CREATED)
        .json();
    app.simulate_payment(&text(&order["payment"]["payment_id"]), json!({})).await.expect(StatusCode::OK);
    let awaiting = format!("/social/v1/shops/{}/orders?status=111", shop.shop_id);
    let listed = app.get(&awaiting).token(&shop.token).send().await.expect(StatusCode::OK).json();
    assert_eq!(
        listed["orders"].as_array().unwrap().len(),
        0,
        "the legacy row has not heard of the payment yet"
    );
    // The sync `jembatan serve` runs every second.
    let (moved, _, more) =
        app.gateway.sync_legacy_twins(jembatan_store::social::TwinCursor::from_ms(0), 100).await.unwrap();
    assert_eq!((moved, more), (1, false));
    let listed = app.get(&awaiting).token(&shop.token).send().await.expect(StatusCode::OK).json();
    assert_eq!(listed["orders"][0]["order_id"], order["order_id"]);
    // Nothing more to do the second time.
    assert_eq!(
        app.gateway.sync_legacy_twins(jembatan_store::social::TwinCursor::from_ms(0), 100).await.unwrap().0,
        0
    );
}

/// A product of social shop `n` beyond the two `seed_social_shop` lists.
fn extra_product(shop: &SocialShop, k: u64, codes: [&str; 2], status: i64) -> LegacyProduct {
    let product_id = format!("{}{k:02}", &shop.products[0].0[..shop.products[0].0.len() - 2]);
    LegacyProduct {
        skus_problem: None,
        shop_id: shop.shop_id.clone(),
        product_id: product_id.clone(),
        title: format!("Produk {k}"),
        category: "home".to_owned(),
        description: String::new(),
        skus: codes
            .iter()
            .enumerate()
            .map(|(i, code)| LegacySku {
                sku_id: format!("{product_id}{i}"),
                seller_sku: (*code).to_owned(),
                name: String::new(),
                price: "25000".to_owned(),
                stock: 5,
            })
            .collect(),
        status,
        create_time: 1_700_000_000,
        update_time: 1_700_000_000,
    }
}

fn batch_of(products: Vec<LegacyProduct>, orders: Vec<jembatan_store::legacy::LegacyOrder>) -> Batch {
    Batch { shops: Vec::new(), products, buyers: Vec::new(), orders }
}

/// The core's id for a social id.
async fn core_id_of(app: &App, kind: jembatan_store::social::IdKind, social: &str) -> String {
    app.store().core_ids(kind, vec![social.to_owned()]).await.unwrap()[0].core_id.clone()
}

#[tokio::test]
async fn a_shop_moves_whole_or_not_at_all_and_a_stopped_move_goes_back() {
    use jembatan_store::social::{IdKind, Owner};
    let app = App::start().await;
    let shop = seed_social_shop(&app, 20).await;
    let s = shop.shop_id.clone();
    // A SKU code another product of the shop uses, a delisted product, a damaged SKU list.
    let duplicate = extra_product(&shop, 3, ["SKU-1-0", "SKU-3-1"], PRODUCT_LIVE);
    let delisted = extra_product(&shop, 4, ["SKU-4-0", "SKU-4-1"], 2);
    let damaged = extra_product(&shop, 5, ["SKU-5-0", "SKU-5-1"], PRODUCT_LIVE);
    let damaged_id = damaged.product_id.clone();
    app.legacy
        .store
        .load(batch_of(vec![duplicate.clone(), delisted.clone(), damaged], Vec::new()))
        .await
        .unwrap();
    let broken = format!(
        r#"[{{"sku_id": "{damaged_id}0", "seller_sku": "SKU-5-0", "price": "25000", "stock": 5}}, {{"sku_id": "{damaged_id}1", "seller_sku": "SKU-5-1", "price": "25000", "stock": "lima"}}]"#
    );
    raw_execute(
        &app.legacy.url,
        &format!("UPDATE products SET skus = '{broken}' WHERE product_id = '{damaged_id}'"),
    )
    .await
    .unwrap();

    // The damaged row is listed with the SKU that could be read, and refuses to change.
    let listed = app
        .get(&format!("/social/v1/shops/{s}/products"))
        .token(&shop.token)
        .send()
        .await
        .expect(StatusCode::OK)
        .json();
    let products = listed["products"].as_array().unwrap();
    assert_eq!(products.len(), 5);
    let shown = products.iter().find(|p| p["product_id"] == damaged_id.as_str()).unwrap();
    assert_eq!(shown["skus"].as_array().unwrap().len(), 1, "the unreadable SKU is not shown as 0 units");
    app.post(&format!("/social/v1/shops/{s}/products/{damaged_id}"))
        .token(&shop.token)
        .json(&json!({"title": "Baru"}))
        .send()
        .await
        .problem(StatusCode::CONFLICT, "conflict");

    // The move is refused before anything changes, naming every row.
    let refused = app
        .post(&format!("/v1/ops/social/shops/{s}/move"))
        .token(&app.operator)
        .send()
        .await
        .problem(StatusCode::CONFLICT, "conflict");
    let detail = text(&refused["detail"]);
    assert!(detail.contains("SKU code `SKU-1-0` is also used"), "{detail}");
    assert!(detail.contains("stock `\"lima\"` is not a whole number"), "{detail}");
    assert_eq!(app.store().social_shop(&s).await.unwrap().unwrap().owner, Owner::Legacy);
    assert!(!app.legacy.store.is_fenced(&s).await.unwrap());
    let merchant = MerchantId::parse(&shop.merchant_id).unwrap();
    assert!(app.store().products_of_merchant(merchant, None, 10).await.unwrap().is_empty());

    // The seller repairs the rows.
    let repaired = broken.replace("\"lima\"", "5");
    raw_execute(
        &app.legacy.url,
        &format!("UPDATE products SET skus = '{repaired}' WHERE product_id = '{damaged_id}'"),
    )
    .await
    .unwrap();
    raw_execute(
        &app.legacy.url,
        &format!("UPDATE products SET status = 3 WHERE product_id = '{}'", duplicate.product_id),
    )
    .await
    .unwrap();

    // A mover that died mid-move: owner `migrating`, fence up, one product copied with what
    // has changed since.
    let ctx = jembatan_store::WriteCtx { actor: Principal::Operator, now: app.core.clock().now() };
    app.store().set_shop_owner(ctx.clone(), &s, Owner::Legacy, Owner::Migrating).await.unwrap();
    app.legacy.store.fence(&s, "test", 0).await.unwrap();
    let stale = jembatan_store::catalogue::SocialProductCopy {
        product: jembatan_store::catalogue::NewProduct {
            merchant_id: merchant,
            title: jembatan_domain::ProductTitle::parse("Judul Lama").unwrap(),
            category: jembatan_domain::Category::Fashion,
            skus: vec![jembatan_domain::NewSku {
                code: jembatan_domain::SkuCode::parse("LAMA-1").unwrap(),
                price: jembatan_domain::Price::from_rupiah(1_000).unwrap(),
                stock: jembatan_domain::StockLevel::on_hand(99).unwrap(),
            }],
        },
        ids: jembatan_store::catalogue::SocialProductIds {
            product_id: jembatan_store::new_id(),
            social_product_id: shop.products[0].0.clone(),
            sku_ids: vec![jembatan_store::new_id()],
            social_sku_ids: vec![shop.products[0].1[0].clone()],
        },
        listed: true,
    };
    app.store().put_social_products(ctx.clone(), vec![stale]).await.unwrap();
    let stale_sku = core_id_of(&app, IdKind::Sku, &shop.products[0].1[0]).await;
    // The operator gives the shop back; its writes go to the legacy store again.
    let back = app
        .post(&format!("/v1/ops/social/shops/{s}/abort-move"))
        .token(&app.operator)
        .send()
        .await
        .expect(StatusCode::OK)
        .json();
    assert_eq!(back["owner"], "legacy");
    assert!(!app.legacy.store.is_fenced(&s).await.unwrap());
    let stock = json!({"skus": [{"sku_id": shop.products[1].1[0], "stock": 6}]});
    app.post(&format!("/social/v1/shops/{s}/products/{}/stock", shop.products[1].0))
        .token(&shop.token)
        .json(&stock)
        .send()
        .await
        .expect(StatusCode::OK);

    // Invariant 6 on /v1: the legacy store owns this merchant, so the core takes none of its
    // catalogue writes or checkouts, even of rows a stopped move left there.
    let before = app.snapshot().await;
    app.post(&format!("/v1/merchants/{}/products", shop.merchant_id))
        .token(&shop.token)
        .json(&product_body(&[("BARU-1", 10_000, 1)]))
        .send()
        .await
        .problem(StatusCode::CONFLICT, "merchant-not-on-core");
    app.put(&format!("/v1/skus/{stale_sku}/stock"))
        .token(&shop.token)
        .json(&json!({"stock_on_hand": 40}))
        .send()
        .await
        .problem(StatusCode::CONFLICT, "merchant-not-on-core");
    app.post("/v1/checkouts")
        .token(&app.marketplace)
        .json(&checkout_body(&[(&stale_sku, 1)]))
        .send()
        .await
        .problem(StatusCode::CONFLICT, "merchant-not-on-core");
    app.assert_state_unchanged(&before, "writes for a legacy-owned merchant").await;

    // The move now goes through and brings the stale copy up to the legacy rows.
    let moved = move_shop(&app, &shop).await;
    assert_eq!(moved["products_copied"], 4, "deleted products stay behind");
    let listed = app
        .get(&format!("/social/v1/shops/{s}/products"))
        .token(&shop.token)
        .send()
        .await
        .expect(StatusCode::OK)
        .json();
    let find =
        |id: &str| listed["products"].as_array().unwrap().iter().find(|p| p["product_id"] == id).cloned();
    let first = find(&shop.products[0].0).unwrap();
    assert_eq!(first["title"], "Kemeja Batik Parang");
    assert_eq!(first["skus"][0]["seller_sku"], "SKU-1-0");
    assert_eq!(first["skus"][0]["price"], "149000");
    assert_eq!(first["skus"][0]["stock"], 10);
    assert_eq!(core_id_of(&app, IdKind::Sku, &shop.products[0].1[0]).await, stale_sku, "ids are kept");
    assert_eq!(find(&shop.products[1].0).unwrap()["skus"][0]["stock"], 6);
    assert_eq!(find(&delisted.product_id).unwrap()["status"], 2, "a delisted product moves unlisted");
    assert!(find(&duplicate.product_id).is_none());

    // Unlisted in the core means not for sale, on either storefront.
    let delisted_sku = core_id_of(&app, IdKind::Sku, &delisted.skus[0].sku_id).await;
    app.post("/v1/checkouts")
        .token(&app.marketplace)
        .json(&checkout_body(&[(&delisted_sku, 1)]))
        .send()
        .await
        .problem(StatusCode::UNPROCESSABLE_ENTITY, "validation");
    let mut body = social_order_body(&shop, &[(0, 0, 1)], "VA");
    body["items"][0]["product_id"] = json!(delisted.product_id);
    body["items"][0]["sku_id"] = json!(delisted.skus[0].sku_id);
    let reply = app.post("/social/v1/orders").token(&app.social).json(&body).send().await;
    assert!(reply.status.is_client_error(), "{}", reply.text());
    // And the core takes the merchant's own writes now.
    app.post(&format!("/v1/merchants/{}/products", shop.merchant_id))
        .token(&shop.token)
        .json(&product_body(&[("BARU-1", 10_000, 1)]))
        .send()
        .await
        .expect(StatusCode::CREATED);
    // A finished move is not aborted.
    app.post(&format!("/v1/ops/social/shops/{s}/abort-move"))
        .token(&app.operator)
        .send()
        .await
        .problem(StatusCode::CONFLICT, "conflict");
}

#[tokio::test]
async fn a_legacy_shops_orders_change_only_through_the_gateway() {
    use jembatan_store::social::IdKind;
    let app = App::start().await;
    let shop = seed_social_shop(&app, 21).await;
    // An order paid before payments moved to the core: no money of it in the core.
    let template = app
        .post("/social/v1/orders")
        .token(&app.social)
        .json(&social_order_body(&shop, &[(0, 0, 1)], "VA"))
        .send()
        .await
        .expect(StatusCode::CREATED)
        .json();
    let mut history = app.legacy.store.order(&text(&template["order_id"])).await.unwrap().unwrap();
    history.order_id = "990000000001".to_owned();
    history.status = 111;
    app.legacy.store.load(batch_of(Vec::new(), vec![history.clone()])).await.unwrap();
    let refused = app
        .post(&format!("/social/v1/orders/{}/cancel", history.order_id))
        .token(&app.social)
        .send()
        .await
        .problem(StatusCode::CONFLICT, "conflict");
    assert!(text(&refused["detail"]).contains("paid before payments moved"), "{refused}");
    assert_eq!(app.legacy.store.order(&history.order_id).await.unwrap().unwrap().status, 111);

    // The seller's /v1 routes do not move a legacy shop's order behind the legacy row's back.
    let order = text(&template["order_id"]);
    app.post(&format!("/social/v1/orders/{order}/pay"))
        .token(&app.social)
        .send()
        .await
        .expect(StatusCode::OK);
    let twin = core_id_of(&app, IdKind::Order, &order).await;
    app.post(&format!("/v1/orders/{twin}/cancel"))
        .token(&shop.token)
        .send()
        .await
        .problem(StatusCode::CONFLICT, "merchant-not-on-core");
    let fetched = app
        .get(&format!("/social/v1/orders/{order}"))
        .token(&app.social)
        .send()
        .await
        .expect(StatusCode::OK)
        .json();
    assert_eq!(fetched["status"], 100);
    // Through the gateway the cancel reaches both the legacy row and the twin.
    let cancelled = app
        .post(&format!("/social/v1/orders/{order}/cancel"))
        .token(&app.social)
        .send()
        .await
        .expect(StatusCode::OK)
        .json();
    assert_eq!(cancelled["status"], 140);
    assert_eq!(app.order(&twin).await["status"], "cancelled");
}

/// UU PDP: the social channel asks, for a user, everything the core holds about it — its
/// orders with their shipping details, its consents and profile, and what was done with them —
/// and withdraws a consent; both are answered at once and tracked with their 3 × 24-hour
/// deadline, which the regulator reads without the user's name.
#[tokio::test]
async fn a_users_data_export_and_consent_withdrawal_are_answered_within_the_deadline() {
    let app = App::start().await;
    let shop = seed_social_shop(&app, 1).await;
    let body = social_order_body(&shop, &[(0, 0, 1)], "EWALLET");
    app.post("/social/v1/orders").token(&app.social).json(&body).send().await.expect(StatusCode::CREATED);
    let consents = format!("/social/v1/buyers/{SOCIAL_BUYER}/consents");
    let consent = json!({"purpose": "profile_sharing", "text_version": "2024-01"});
    app.post(&consents).token(&app.social).json(&consent).send().await.expect(StatusCode::CREATED);
    app.post(&format!("/social/v1/buyers/{SOCIAL_BUYER}/profile-share"))
        .token(&app.social)
        .send()
        .await
        .expect(StatusCode::CREATED);

    let export = format!("/social/v1/buyers/{SOCIAL_BUYER}/data-export");
    let data = app.get(&export).token(&app.social).send().await.expect(StatusCode::OK).json();
    assert!(data["buyer_ref"].as_str().unwrap().starts_with("sb_"), "{data}");
    assert_eq!(data["orders"].as_array().unwrap().len(), 1, "{data}");
    assert_eq!(data["orders"][0]["recipient_name"], "Putri Lestari", "{data}");
    assert_eq!(data["consents"][0]["purpose"], "profile_sharing");
    assert_eq!(data["profile"]["nickname"], "putri.cantik88", "{data}");
    let actions: Vec<&str> =
        data["processing"].as_array().unwrap().iter().map(|p| p["action"].as_str().unwrap()).collect();
    for action in ["order.create", "consent.grant", "buyer_profile.share"] {
        assert!(actions.contains(&action), "{action} in {actions:?}");
    }
    // Not the seller's to ask, nor the regulator's.
    for token in [&shop.token, &app.regulator] {
        assert_eq!(app.get(&export).token(token).send().await.status, StatusCode::FORBIDDEN);
    }

    app.delete(&format!("{consents}/profile_sharing"))
        .token(&app.social)
        .send()
        .await
        .expect(StatusCode::NO_CONTENT);
    let after = app.get(&export).token(&app.social).send().await.expect(StatusCode::OK).json();
    assert_eq!(after["profile"], Value::Null, "the withdrawal stopped the sharing it covered");

    let requests = app.get("/v1/oversight/pdp-requests").token(&app.regulator).send().await;
    let requests = requests.expect(StatusCode::OK).json();
    let kinds: Vec<&str> =
        requests["requests"].as_array().unwrap().iter().map(|r| r["kind"].as_str().unwrap()).collect();
    assert_eq!(kinds, ["export", "withdrawal", "export"], "newest first");
    for r in requests["requests"].as_array().unwrap() {
        assert_eq!(r["on_time"], true, "{r}");
        let received = ::time::OffsetDateTime::parse(
            r["received_at"].as_str().unwrap(),
            &::time::format_description::well_known::Rfc3339,
        )
        .unwrap();
        let due = ::time::OffsetDateTime::parse(
            r["due_at"].as_str().unwrap(),
            &::time::format_description::well_known::Rfc3339,
        )
        .unwrap();
        assert_eq!(due - received, ::time::Duration::hours(72), "{r}");
    }
    assert!(!requests.to_string().contains(SOCIAL_BUYER), "the regulator sees pseudonyms, not users");
    app.get("/v1/oversight/pdp-requests")
        .token(&app.social)
        .send()
        .await
        .problem(StatusCode::FORBIDDEN, "forbidden");
}
