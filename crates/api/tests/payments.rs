//! Payments over HTTP, black box on a random port: what a checkout tells the buyer to pay, the
//! provider's signed callbacks (applied once, repeats change nothing, every refusal recorded and
//! changing nothing), refunds with their access rules, and who may read a payment.

mod common;

use common::*;
use hyper::StatusCode;
use hyper::header::HeaderName;
use serde_json::{Value, json};

fn checkout_with(items: &[(&str, i64)], method: &str) -> Value {
    let mut body = checkout_body(items);
    body["payment_method"] = json!(method);
    body
}

async fn callback(app: &App, body: &str, timestamp: &str, signature: &str) -> Reply {
    app.post("/v1/payments/callbacks")
        .header(HeaderName::from_static("x-callback-timestamp"), timestamp)
        .header(HeaderName::from_static("x-callback-signature"), signature)
        .raw("application/json", body.to_owned())
        .send()
        .await
}

async fn recorded_callbacks(app: &App) -> Vec<String> {
    app.store()
        .read(|conn| {
            Box::pin(async move {
                let rows = jembatan_store::q("SELECT outcome FROM payment_callbacks ORDER BY callback_id")
                    .fetch_all(conn)
                    .await?;
                rows.iter().map(|r| Ok(r.text("outcome")?)).collect()
            })
        })
        .await
        .unwrap()
}

#[tokio::test]
async fn a_checkout_says_how_to_pay_by_each_method() {
    let app = App::start().await;
    let merchant = app.new_merchant("Toko Batik Sari").await;
    let sku = app.list_product(&merchant, &[("BATIK-M", 149_000, 20)]).await.sku_ids[0].clone();
    for method in ["virtual_account", "qris", "ewallet", "cod"] {
        let checkout = app
            .post("/v1/checkouts")
            .token(&app.social)
            .json(&checkout_with(&[(&sku, 2)], method))
            .send()
            .await
            .expect(StatusCode::CREATED)
            .json();
        let payment = &checkout["payment"];
        assert_eq!(payment["method"], method);
        assert_eq!(payment["amount"], json!({"amount": 298_000, "currency": "IDR"}));
        assert_eq!(payment["status"], "pending");
        match method {
            "virtual_account" => {
                assert_eq!(payment["bank_code"], "014");
                let number = text(&payment["va_number"]);
                assert!(number.len() == 16 && number.bytes().all(|b| b.is_ascii_digit()), "{number}");
                assert!(payment["expires_at"].is_string());
            }
            "qris" => {
                let qris =
                    jembatan_domain::qris::decode(&text(&payment["qris_payload"])).expect("a valid QRIS");
                assert_eq!(qris.amount.map(|a| a.rupiah()), Some(298_000));
                assert_eq!(qris.point_of_initiation, "12", "dynamic");
            }
            "ewallet" => {
                assert!(text(&payment["redirect_url"]).contains(&text(&payment["ewallet_ref"])));
            }
            _ => {
                assert!(payment["expires_at"].is_null(), "cash on delivery never expires");
                assert_eq!(checkout["orders"][0]["status"], "paid", "accepted at once");
            }
        }
        // The checkout's channel reads it; the other channel does not see it; a merchant may not.
        let id = text(&payment["id"]);
        let read = app.get(&format!("/v1/payments/{id}")).token(&app.social).send().await;
        assert_eq!(read.expect(StatusCode::OK).json()["id"], payment["id"]);
        let other = app.get(&format!("/v1/payments/{id}")).token(&app.marketplace).send().await;
        other.problem(StatusCode::NOT_FOUND, "not-found");
        let by_merchant = app.get(&format!("/v1/payments/{id}")).token(&merchant.token).send().await;
        by_merchant.problem(StatusCode::FORBIDDEN, "forbidden");
        app.get(&format!("/v1/payments/{id}")).token(&app.regulator).send().await.expect(StatusCode::OK);
    }
}

#[tokio::test]
async fn callbacks_are_verified_applied_once_and_every_refusal_changes_nothing() {
    let app = App::start().await;
    let merchant = app.new_merchant("Toko Batik Sari").await;
    let sku = app.list_product(&merchant, &[("BATIK-M", 149_000, 20)]).await.sku_ids[0].clone();
    let checkout = app.checkout(&app.social, &[(&sku, 1)]).await;
    let payment = &checkout["payment"];
    let order_id = text(&checkout["orders"][0]["id"]);
    let paid_body = |amount: i64, reference: &str| {
        json!({"event": "payment.paid", "provider_ref": reference, "amount": amount}).to_string()
    };
    let reference = text(&payment["provider_ref"]);
    let good = paid_body(149_000, &reference);

    let before = app.snapshot().await;
    let now = jembatan_core::Clock::now(app.core.clock().as_ref());
    let simulator = app.core.simulator().unwrap().clone();
    let stale = simulator.sign(&good, now.plus_ms(-10 * 60 * 1000));
    type Case<'a> = (&'a str, String, (String, String), StatusCode, &'a str);
    let refusals: Vec<Case> = vec![
        (
            "a forged signature",
            good.clone(),
            (app.sign(&good).0, "v1=00ff".to_owned()),
            StatusCode::UNAUTHORIZED,
            "bad-signature",
        ),
        (
            "a tampered amount",
            paid_body(1, &reference),
            app.sign(&good),
            StatusCode::UNAUTHORIZED,
            "bad-signature",
        ),
        ("a replay ten minutes late", good.clone(), stale, StatusCode::UNAUTHORIZED, "stale-callback"),
        (
            "an unknown payment",
            paid_body(149_000, "SIM-NOPE"),
            app.sign(&paid_body(149_000, "SIM-NOPE")),
            StatusCode::NOT_FOUND,
            "unknown-payment",
        ),
        (
            "a wrong amount",
            paid_body(148_999, &reference),
            app.sign(&paid_body(148_999, &reference)),
            StatusCode::UNPROCESSABLE_ENTITY,
            "wrong-amount",
        ),
        (
            "not JSON",
            "paid!".to_owned(),
            app.sign("paid!"),
            StatusCode::UNPROCESSABLE_ENTITY,
            "malformed-callback",
        ),
    ];
    for (case, body, (timestamp, signature), status, kind) in &refusals {
        let reply = callback(&app, body, timestamp, signature).await;
        let problem = reply.problem_in(case, *status, kind);
        // Signed callbacks are recorded whatever they say; unauthenticated ones are only logged
        // and counted, so that nobody without the secret can fill the store.
        let signed = !["bad-signature", "stale-callback"].contains(kind);
        assert_eq!(text(&problem["detail"]).contains("recorded"), signed, "{case}: {problem}");
        app.assert_state_unchanged(&before, case).await;
    }
    let missing = app.post("/v1/payments/callbacks").raw("application/json", good.clone()).send().await;
    missing.problem(StatusCode::UNAUTHORIZED, "bad-signature");
    assert_eq!(
        recorded_callbacks(&app).await,
        ["refused_unknown_payment", "refused_wrong_amount", "refused_malformed"]
    );
    let metrics = app.get("/metrics").send().await.expect(StatusCode::OK);
    assert!(metrics.text().contains("jembatan_payment_callbacks_refused_total"), "refusals are counted");
    assert_eq!(app.order(&order_id).await["status"], "awaiting_payment");

    // The real one applies; the same callback again answers 200 and changes nothing.
    let (timestamp, signature) = app.sign(&good);
    let applied = callback(&app, &good, &timestamp, &signature).await.expect(StatusCode::OK).json();
    assert_eq!(applied["outcome"], "applied");
    assert_eq!(applied["payment"]["status"], "paid");
    let order = app.order(&order_id).await;
    assert_eq!(order["status"], "paid");
    assert_eq!(order["held_in_escrow"]["amount"], 149_000);
    let after_payment = app.snapshot().await;
    let repeat = callback(&app, &good, &timestamp, &signature).await.expect(StatusCode::OK).json();
    assert_eq!(repeat["outcome"], "already_applied");
    let via_simulator = app.simulate_payment(&text(&payment["id"]), json!({})).await;
    assert_eq!(via_simulator.expect(StatusCode::OK).json()["outcome"], "already_applied");
    app.assert_state_unchanged(&after_payment, "a repeated callback").await;

    // A signed request to the simulator cannot be replayed against another payment: the
    // signature covers the path.
    let other = app.checkout(&app.social, &[(&sku, 1)]).await;
    let other_id = text(&other["payment"]["id"]);
    let body = "{}";
    let message = jembatan_core::payments::simulator_request_message(&text(&payment["id"]), body.as_bytes());
    let (timestamp, _) = app.sign(body);
    let signature =
        jembatan_core::payments::sign(app.core.simulator().unwrap().secret(), &timestamp, &message);
    let replayed = app
        .post(&format!("/v1/provider-sim/payments/{other_id}/pay"))
        .header(HeaderName::from_static("x-callback-timestamp"), &timestamp)
        .header(HeaderName::from_static("x-callback-signature"), &signature)
        .raw("application/json", body)
        .send()
        .await;
    replayed.problem(StatusCode::UNAUTHORIZED, "bad-signature");
    assert_eq!(app.order(&text(&other["orders"][0]["id"])).await["status"], "awaiting_payment");

    // The simulator route itself takes only requests signed with the provider secret.
    let unsigned = app.post(&format!("/v1/provider-sim/payments/{}/pay", text(&payment["id"]))).send().await;
    unsigned.problem(StatusCode::UNAUTHORIZED, "bad-signature");
}

#[tokio::test]
async fn refunds_follow_the_money_and_the_access_rules() {
    let app = App::start().await;
    let merchant = app.new_merchant("Toko Batik Sari").await;
    let stranger = app.new_merchant("Toko Lain").await;
    let sku = app.list_product(&merchant, &[("BATIK-M", 100_000, 20)]).await.sku_ids[0].clone();
    let order_id = app.order_in(&app.social, &sku, "delivered").await;
    let refund =
        |amount: i64| json!({"amount": {"amount": amount, "currency": "IDR"}, "reason": "torn seam"});
    let path = format!("/v1/orders/{order_id}/refunds");

    let before = app.snapshot().await;
    let refused = [
        (
            "another merchant",
            app.post(&path).token(&stranger.token).json(&refund(1_000)),
            StatusCode::NOT_FOUND,
            "not-found",
        ),
        (
            "the buyer's channel",
            app.post(&path).token(&app.social).json(&refund(1_000)),
            StatusCode::FORBIDDEN,
            "forbidden",
        ),
        (
            "the regulator",
            app.post(&path).token(&app.regulator).json(&refund(1_000)),
            StatusCode::FORBIDDEN,
            "forbidden",
        ),
        (
            "more than was paid",
            app.post(&path).token(&merchant.token).json(&refund(100_001)),
            StatusCode::UNPROCESSABLE_ENTITY,
            "refund-exceeds-paid",
        ),
        (
            "nothing",
            app.post(&path).token(&merchant.token).json(&refund(0)),
            StatusCode::UNPROCESSABLE_ENTITY,
            "validation",
        ),
        (
            "a negative amount",
            app.post(&path).token(&merchant.token).json(&refund(-5)),
            StatusCode::UNPROCESSABLE_ENTITY,
            "validation",
        ),
        (
            "no reason",
            app.post(&path)
                .token(&merchant.token)
                .json(&json!({"amount": {"amount": 5, "currency": "IDR"}, "reason": " "})),
            StatusCode::UNPROCESSABLE_ENTITY,
            "validation",
        ),
        (
            "another currency",
            app.post(&path)
                .token(&merchant.token)
                .json(&json!({"amount": {"amount": 5, "currency": "USD"}, "reason": "x"})),
            StatusCode::UNPROCESSABLE_ENTITY,
            "validation",
        ),
    ];
    for (case, call, status, kind) in refused {
        call.send().await.problem_in(case, status, kind);
        app.assert_unchanged(&before, case).await;
    }
    let unpaid = app.order_in(&app.social, &sku, "awaiting_payment").await;
    let nothing_paid = app
        .post(&format!("/v1/orders/{unpaid}/refunds"))
        .token(&merchant.token)
        .json(&refund(1))
        .send()
        .await;
    nothing_paid.problem(StatusCode::UNPROCESSABLE_ENTITY, "validation");

    // Before release, from escrow; the release then pays the merchant what is left less its fee.
    let first = app.post(&path).token(&merchant.token).json(&refund(40_000)).send().await;
    let first = first.expect(StatusCode::CREATED).json();
    assert_eq!(first["stage"], "before_release");
    let order = app.order(&order_id).await;
    assert_eq!(
        (order["refunded"]["amount"].clone(), order["held_in_escrow"]["amount"].clone()),
        (json!(40_000), json!(60_000))
    );
    app.act(&app.social, &order_id, "confirm").await.expect(StatusCode::OK);
    let second = app.post(&path).token(&app.operator).json(&refund(60_000)).send().await;
    let second = second.expect(StatusCode::CREATED).json();
    assert_eq!(second["stage"], "after_release");
    let listed = app.get(&path).token(&merchant.token).send().await.expect(StatusCode::OK).json();
    assert_eq!(listed["refunds"].as_array().unwrap().len(), 2);
    app.get(&path).token(&stranger.token).send().await.problem(StatusCode::NOT_FOUND, "not-found");
    let fully = app.post(&path).token(&merchant.token).json(&refund(1)).send().await;
    fully.problem(StatusCode::UNPROCESSABLE_ENTITY, "refund-exceeds-paid");

    // The merchant's balance account, derived from its transfers: released 60,000 less the fee
    // kept (fashion 7.5% of 100,000 = 7,500, of which 60% kept = 4,500), then the refund after
    // release took it back down to zero. Newest transfer first, paged.
    let account = merchant.id.replacen("mer_", "acc_", 1);
    let ledger = |token: &str, query: &str| {
        app.get(&format!("/v1/ledger/accounts/{account}{query}")).token(token).send()
    };
    let view = ledger(&merchant.token, "?limit=1").await.expect(StatusCode::OK).json();
    assert_eq!((view["kind"].clone(), view["credit_balance"].clone()), (json!("merchant_balance"), json!(0)));
    assert_eq!(view["credits_posted"], 55_500);
    assert_eq!(view["transfers"].as_array().unwrap().len(), 1);
    let cursor = text(&view["next_cursor"]);
    let older = ledger(&merchant.token, &format!("?cursor={cursor}")).await.expect(StatusCode::OK).json();
    assert_eq!(older["transfers"][0]["amount"]["amount"], 55_500, "the release, before the refund");
    ledger(&stranger.token, "").await.problem(StatusCode::NOT_FOUND, "not-found");
    ledger(&app.social, "").await.problem(StatusCode::FORBIDDEN, "forbidden");
    app.get(&format!("/v1/ledger/accounts/{account}"))
        .token(&app.regulator)
        .send()
        .await
        .expect(StatusCode::OK);
    let escrow =
        jembatan_domain::ledger::platform_account(jembatan_domain::ledger::AccountKind::Escrow).to_string();
    let platform = app.get(&format!("/v1/ledger/accounts/{escrow}")).token(&merchant.token).send().await;
    platform.problem(StatusCode::FORBIDDEN, "forbidden");
    let escrow_view = app.get(&format!("/v1/ledger/accounts/{escrow}")).token(&app.operator).send().await;
    assert_eq!(escrow_view.expect(StatusCode::OK).json()["credit_balance"], 0, "nothing left in escrow");
    assert_eq!(jembatan_sim::invariants::check(app.store()).await.unwrap(), vec![]);
}
