//! Payouts and reconciliation over HTTP: a merchant withdraws its balance, the operator exports
//! the batch for the bank and records the bank's answers, a settlement report is matched
//! against the ledger. Refused requests leave no trace; other merchants' payouts are not found;
//! the regulator reads but never writes.

mod common;

use common::*;
use hyper::StatusCode;
use jembatan_domain::{MerchantId, PayoutId, TypedId};
use jembatan_store::{Conn, StoreError, new_id, q};
use serde_json::{Value, json};
use time::OffsetDateTime;
use time::format_description::well_known::Rfc3339;

const PRICE: i64 = 149_000;

/// A merchant whose balance holds one completed order's proceeds; returns it and the amount.
async fn merchant_with_balance(app: &App, name: &str) -> (Merchant, i64) {
    let merchant = app.new_merchant(name).await;
    let sku = app.list_product(&merchant, &[("BATIK-M", PRICE, 10)]).await.sku_ids[0].clone();
    app.order_in(&app.social, &sku, "completed").await;
    let balance = app.balance(&merchant).await;
    let available = balance["available"]["amount"].as_i64().expect("an amount");
    assert!(available > 0 && available <= PRICE, "{balance}");
    assert_eq!(balance["pending_payouts"]["amount"], 0);
    (merchant, available)
}

fn amount(value: &Value) -> i64 {
    value["amount"].as_i64().unwrap_or_else(|| panic!("not money: {value}"))
}

fn rfc3339_ms(ms: i64) -> String {
    OffsetDateTime::from_unix_timestamp_nanos(i128::from(ms) * 1_000_000).unwrap().format(&Rfc3339).unwrap()
}

fn now_ms() -> i64 {
    (OffsetDateTime::now_utc().unix_timestamp_nanos() / 1_000_000) as i64
}

#[tokio::test]
async fn a_merchant_withdraws_and_the_bank_answers_paid_and_failed() {
    let app = App::start().await;
    let (merchant, available) = merchant_with_balance(&app, "Toko Batik Sari").await;

    // A retried request (same Idempotency-Key) is answered again and holds the money once.
    let path = format!("/v1/merchants/{}/payouts", merchant.id);
    let keyed = || {
        app.post(&path).token(&merchant.token).idempotency_key("payout-1").json(&payout_body(60_000, "014"))
    };
    let first = keyed().send().await.expect(StatusCode::CREATED);
    let retry = keyed().send().await.expect(StatusCode::CREATED);
    assert!(retry.replayed());
    assert_eq!(retry.body, first.body);
    let first = first.json();
    assert_eq!(first["status"], "requested");
    assert_eq!(first["merchant_id"], merchant.id.as_str());
    assert_eq!(first["account_number"], "1234567890");
    let second = app.request_payout(&merchant, 10_000).await.expect(StatusCode::CREATED).json();
    let (first_id, second_id) = (text(&first["id"]), text(&second["id"]));
    let balance = app.balance(&merchant).await;
    assert_eq!(amount(&balance["available"]), available - 70_000);
    assert_eq!(amount(&balance["pending_payouts"]), 70_000);

    let mine = app.get(&format!("/v1/payouts/{first_id}")).token(&merchant.token).send().await;
    assert_eq!(mine.expect(StatusCode::OK).json()["amount"]["amount"], 60_000);
    let list = app
        .get(&format!("/v1/merchants/{}/payouts?limit=1", merchant.id))
        .token(&merchant.token)
        .send()
        .await;
    let list = list.expect(StatusCode::OK).json();
    assert_eq!(list["payouts"][0]["id"], second_id.as_str(), "newest first");
    let cursor = text(&list["next_cursor"]);
    let rest = app
        .get(&format!("/v1/merchants/{}/payouts?cursor={cursor}", merchant.id))
        .token(&merchant.token)
        .send()
        .await
        .expect(StatusCode::OK)
        .json();
    assert_eq!(rest["payouts"].as_array().unwrap().len(), 1);
    assert_eq!(rest["payouts"][0]["id"], first_id.as_str());

    // The operator exports both in one batch, and can fetch the file again later.
    let batch = app
        .post("/v1/ops/payout-batches")
        .token(&app.operator)
        .send()
        .await
        .expect(StatusCode::CREATED)
        .json();
    assert_eq!(batch["payouts_count"], 2);
    assert_eq!(amount(&batch["total"]), 70_000);
    let file = app.get(&text(&batch["file_url"])).token(&app.operator).send().await.expect(StatusCode::OK);
    assert!(file.content_type().starts_with("text/csv"), "{}", file.content_type());
    let lines: Vec<&str> = file.text().lines().collect();
    assert_eq!(lines[0], "payout_id,bank_code,account_number,account_holder,amount,reference");
    assert_eq!(lines.len(), 3);
    let batch_id = text(&batch["id"]);
    assert!(
        lines.contains(&format!("{first_id},014,1234567890,{RECIPIENT_NAME},60000,{batch_id}").as_str()),
        "{lines:?}"
    );
    let exported = app.get(&format!("/v1/payouts/{second_id}")).token(&merchant.token).send().await;
    assert_eq!(exported.expect(StatusCode::OK).json()["status"], "exported");
    app.post("/v1/ops/payout-batches")
        .token(&app.operator)
        .send()
        .await
        .problem(StatusCode::CONFLICT, "payout-conflict");

    // The first is paid; saying so again changes nothing and says so.
    let confirm = format!("/v1/ops/payouts/{first_id}/confirm");
    let paid = app.post(&confirm).token(&app.operator).json(&json!({"status": "paid"})).send().await;
    let paid = paid.expect(StatusCode::OK).json();
    assert_eq!((paid["changed"].clone(), paid["payout"]["status"].clone()), (json!(true), json!("paid")));
    let before = app.snapshot().await;
    let again = app.post(&confirm).token(&app.operator).json(&json!({"status": "paid"})).send().await;
    assert_eq!(again.expect(StatusCode::OK).json()["changed"], false);
    app.assert_unchanged(&before, "a repeated confirmation").await;

    // The bank's result file: the second failed; a contradictory line for the first changes nothing.
    let results =
        format!("payout_id,status,reason\n{second_id},failed,rekening ditutup\n{first_id},failed,salah\n");
    let reply = app.post("/v1/ops/payout-results").token(&app.operator).raw("text/csv", results).send().await;
    let reply = reply.expect(StatusCode::OK).json();
    assert_eq!((reply["applied"].clone(), reply["refused"].clone()), (json!(1), json!(1)), "{reply}");
    assert_eq!(reply["lines"][0]["outcome"], "applied");
    assert_eq!(reply["lines"][0]["status"], "failed");
    assert_eq!(reply["lines"][1]["outcome"], "conflict");
    assert_eq!(reply["lines"][1]["line"], 3);
    let before = app.snapshot().await;
    app.post(&confirm)
        .token(&app.operator)
        .json(&json!({"status": "failed", "reason": "salah"}))
        .send()
        .await
        .problem(StatusCode::CONFLICT, "payout-conflict");
    app.assert_unchanged(&before, "paid, then failed").await;

    let failed = app
        .get(&format!("/v1/payouts/{second_id}"))
        .token(&merchant.token)
        .send()
        .await
        .expect(StatusCode::OK)
        .json();
    assert_eq!(
        (failed["status"].clone(), failed["failure_reason"].clone()),
        (json!("failed"), json!("rekening ditutup"))
    );
    let balance = app.balance(&merchant).await;
    assert_eq!(amount(&balance["available"]), available - 60_000, "the failed payout's money returned");
    assert_eq!(amount(&balance["pending_payouts"]), 0);
    assert_eq!(amount(&balance["paid_out_total"]), 60_000);

    // The regulator reads payouts with the bank details masked, and the batch file.
    let seen = app
        .get(&format!("/v1/payouts/{first_id}"))
        .token(&app.regulator)
        .send()
        .await
        .expect(StatusCode::OK)
        .json();
    assert_eq!(seen["account_number"], "******7890");
    assert_ne!(seen["account_holder"], RECIPIENT_NAME);
    app.get(&text(&batch["file_url"])).token(&app.regulator).send().await.expect(StatusCode::OK);

    // An operator can watch the flow.
    let metrics = app.get("/metrics").send().await.expect(StatusCode::OK);
    for series in [
        "jembatan_payout_requests_total",
        "jembatan_payouts_exported_total",
        "jembatan_payouts_confirmed_total",
    ] {
        assert!(metrics.text().contains(series), "{series} missing from /metrics");
    }
}

#[tokio::test]
async fn bad_payout_requests_get_a_problem_and_change_nothing() {
    let app = App::start().await;
    let (merchant, available) = merchant_with_balance(&app, "Toko Batik Sari").await;
    let path = format!("/v1/merchants/{}/payouts", merchant.id);
    let with = |field: &str, value: Value| {
        let mut body = payout_body(10_000, "014");
        body[field] = value;
        body
    };
    let cases: Vec<(&str, Value, StatusCode, &str)> = vec![
        (
            "bank code of two digits",
            with("bank_code", json!("14")),
            StatusCode::UNPROCESSABLE_ENTITY,
            "validation",
        ),
        (
            "bank code by name",
            with("bank_code", json!("BCA")),
            StatusCode::UNPROCESSABLE_ENTITY,
            "validation",
        ),
        ("amount 0", payout_body(0, "014"), StatusCode::UNPROCESSABLE_ENTITY, "validation"),
        ("negative amount", payout_body(-5_000, "014"), StatusCode::UNPROCESSABLE_ENTITY, "validation"),
        ("over the balance", payout_body(available + 1, "014"), StatusCode::CONFLICT, "insufficient-balance"),
        (
            "short account number",
            with("account_number", json!("12345")),
            StatusCode::UNPROCESSABLE_ENTITY,
            "validation",
        ),
        (
            "account number with letters",
            with("account_number", json!("12345678ab")),
            StatusCode::UNPROCESSABLE_ENTITY,
            "validation",
        ),
        ("empty holder", with("account_holder", json!("  ")), StatusCode::UNPROCESSABLE_ENTITY, "validation"),
        (
            "formula as holder",
            with("account_holder", json!("=HYPERLINK(1)")),
            StatusCode::UNPROCESSABLE_ENTITY,
            "validation",
        ),
        (
            "another currency",
            with("amount", json!({"amount": 10, "currency": "USD"})),
            StatusCode::UNPROCESSABLE_ENTITY,
            "validation",
        ),
        ("unknown field", with("note", json!("x")), StatusCode::UNPROCESSABLE_ENTITY, "validation"),
    ];
    let before = app.snapshot().await;
    for (case, body, status, kind) in &cases {
        let reply = app.post(&path).token(&merchant.token).json(body).send().await;
        let problem = reply.problem_in(case, *status, kind);
        if *kind == "insufficient-balance" {
            assert!(text(&problem["detail"]).contains(&available.to_string()), "{case}: {problem}");
        }
        app.assert_unchanged(&before, case).await;
    }
    let problem =
        app.post(&path).token(&merchant.token).json(&with("bank_code", json!("14"))).send().await.json();
    assert_eq!(problem["field"], "bank_code");

    // Files that do not parse are refused whole, naming the line.
    let payout = new_id::<PayoutId>();
    let files = [
        ("/v1/ops/payout-results", format!("payout_id,status,reason\n{payout},paid,\n{payout},failed,\n"), "line 3"),
        ("/v1/ops/payout-results", "payout,status\n".to_owned(), "header"),
        ("/v1/ops/reconciliations", "provider_ref,type,amount,settled_at\nQR-1,payment,1000,2026-12-01\nQR-2,payment,1.500,2026-12-01\n".to_owned(), "line 3"),
        ("/v1/ops/reconciliations", "provider_ref,type,amount,settled_at\nQR-1,payment,\"1,500\",2026-12-01\n".to_owned(), "line 2"),
    ];
    for (path, file, needle) in files {
        let reply = app.post(path).token(&app.operator).raw("text/csv", file).send().await;
        let problem = reply.problem_in(path, StatusCode::UNPROCESSABLE_ENTITY, "validation");
        assert!(text(&problem["detail"]).contains(needle), "{path}: {problem}");
        app.assert_unchanged(&before, path).await;
    }
    let as_json = app.post("/v1/ops/reconciliations").token(&app.operator).json(&json!({})).send().await;
    as_json.problem(StatusCode::UNSUPPORTED_MEDIA_TYPE, "unsupported-media-type");
    app.assert_unchanged(&before, "a report sent as JSON").await;

    // The same request within the balance goes through.
    app.post(&path)
        .token(&merchant.token)
        .json(&payout_body(available, "002"))
        .send()
        .await
        .expect(StatusCode::CREATED);
}

#[tokio::test]
async fn payouts_of_another_merchant_are_not_found_and_the_regulator_writes_none() {
    let app = App::start().await;
    let (a, _) = merchant_with_balance(&app, "Toko Batik Sari").await;
    let (b, _) = merchant_with_balance(&app, "Kopi Gayo Aceh").await;
    let b_payout = text(&app.request_payout(&b, 10_000).await.expect(StatusCode::CREATED).json()["id"]);
    let ghost_merchant = new_id::<MerchantId>().to_string();
    let ghost_payout = new_id::<PayoutId>().to_string();

    let before = app.snapshot().await;
    for (real, ghost) in [
        (format!("/v1/payouts/{b_payout}"), format!("/v1/payouts/{ghost_payout}")),
        (format!("/v1/merchants/{}/balance", b.id), format!("/v1/merchants/{ghost_merchant}/balance")),
        (format!("/v1/merchants/{}/payouts", b.id), format!("/v1/merchants/{ghost_merchant}/payouts")),
    ] {
        let hidden =
            app.get(&real).token(&a.token).send().await.problem_in(&real, StatusCode::NOT_FOUND, "not-found");
        let missing = app.get(&ghost).token(&a.token).send().await.problem_in(
            &ghost,
            StatusCode::NOT_FOUND,
            "not-found",
        );
        assert_eq!(hidden, missing, "{real}: B's is told apart from none");
        app.get(&real).token(&b.token).send().await.expect(StatusCode::OK);
    }
    let withdraw_for_b = app
        .post(&format!("/v1/merchants/{}/payouts", b.id))
        .token(&a.token)
        .json(&payout_body(1_000, "014"))
        .send()
        .await;
    withdraw_for_b.problem(StatusCode::NOT_FOUND, "not-found");
    app.assert_unchanged(&before, "A withdrawing B's balance").await;

    // The regulator writes nothing; merchants do not run the operator's work.
    let writes = [
        ("/v1/ops/payout-batches", None),
        (&*format!("/v1/ops/payouts/{b_payout}/confirm"), Some(json!({"status": "failed", "reason": "x"}))),
        (&*format!("/v1/merchants/{}/payouts", b.id), Some(payout_body(1_000, "014"))),
    ];
    for (path, body) in &writes {
        for (who, token) in [("regulator", &app.regulator), ("merchant", &b.token)] {
            if who == "merchant" && path.contains("/merchants/") {
                continue;
            }
            let call = app.post(path).token(token);
            let reply = match body {
                Some(body) => call.json(body).send().await,
                None => call.send().await,
            };
            reply.problem_in(&format!("{who} {path}"), StatusCode::FORBIDDEN, "forbidden");
            app.assert_unchanged(&before, path).await;
        }
    }
    let report = "provider_ref,type,amount,settled_at\nQR-1,payment,1000,2026-12-01\n";
    for token in [&app.regulator, &b.token] {
        let reply = app.post("/v1/ops/reconciliations").token(token).raw("text/csv", report).send().await;
        reply.problem(StatusCode::FORBIDDEN, "forbidden");
    }
    app.assert_unchanged(&before, "reconciliation by the regulator or a merchant").await;
}

/// Our side of a reconciliation that only the payments and refunds work writes: rows put in
/// directly, as that work's callbacks would leave them.
async fn paid_payment(app: &App, provider_ref: &str, rupiah: i64, paid_at_ms: i64) {
    let provider_ref = provider_ref.to_owned();
    let payment_id = format!("pym_{}", new_id::<PayoutId>().uuid().simple());
    app.store()
        .write(None, move |conn: &mut dyn Conn| {
            Box::pin(async move {
                q("INSERT INTO payments (payment_id, checkout_id, method, amount_idr, status, provider, provider_ref,
                       expires_at_ms, paid_at_ms, created_at_ms, updated_at_ms)
                   VALUES ($1, $1, 'qris', $2, 'paid', 'test', $3, 0, $4, $4, $4)")
                .bind(payment_id)
                .bind(rupiah)
                .bind(provider_ref)
                .bind(paid_at_ms)
                .execute(conn)
                .await
                .map_err(StoreError::from)
            })
        })
        .await
        .expect("a paid payment");
}

async fn refund(app: &App, refund_id: &str, rupiah: i64, at_ms: i64) {
    let refund_id = refund_id.to_owned();
    app.store()
        .write(None, move |conn: &mut dyn Conn| {
            Box::pin(async move {
                q("INSERT INTO refunds (merchant_id, refund_id, order_id, amount_idr, fee_reversed_idr, stage, reason, created_at_ms)
                   VALUES ('mer_test', $1, 'ord_test', $2, 0, 'before_release', 'test', $3)")
                .bind(refund_id)
                .bind(rupiah)
                .bind(at_ms)
                .execute(conn)
                .await
                .map_err(StoreError::from)
            })
        })
        .await
        .expect("a refund");
}

#[tokio::test]
async fn a_settlement_report_is_matched_with_one_finding_of_each_kind() {
    let app = App::start().await;
    let started = now_ms();
    let (merchant, _) = merchant_with_balance(&app, "Toko Batik Sari").await;
    let payout = text(&app.request_payout(&merchant, 20_000).await.expect(StatusCode::CREATED).json()["id"]);
    app.post("/v1/ops/payout-batches").token(&app.operator).send().await.expect(StatusCode::CREATED);
    let confirm = format!("/v1/ops/payouts/{payout}/confirm");
    app.post(&confirm)
        .token(&app.operator)
        .json(&json!({"status": "paid"}))
        .send()
        .await
        .expect(StatusCode::OK);
    paid_payment(&app, "QR-A", 149_000, started).await;
    paid_payment(&app, "QR-B", 85_000, started).await;
    paid_payment(&app, "QR-C", 50_000, started).await; // not in the report
    refund(&app, "rfd_1", 25_000, started).await;

    let (early, late) = (rfc3339_ms(started - 3_600_000), rfc3339_ms(now_ms() + 3_600_000));
    let report = format!(
        "provider_ref,type,amount,settled_at\n\
         QR-A,payment,149000,{early}\n\
         QR-B,payment,85001,{early}\n\
         QR-X,payment,1000,{early}\n\
         rfd_1,refund,25000,{early}\n\
         {payout},payout,20000,{late}\n\
         QR-A,payment,149000,{late}\n"
    );
    let before = app.snapshot().await;
    let reply =
        app.post("/v1/ops/reconciliations").token(&app.operator).raw("text/csv", report.clone()).send().await;
    let run = reply.expect(StatusCode::CREATED).json();
    // Missing in the report: QR-C, and the payment (through the provider simulator) of the order
    // that funded the merchant's balance.
    assert_eq!(
        run["summary"],
        json!({"matched": 3, "missing_in_ledger": 1, "missing_in_report": 2, "amount_mismatch": 1, "duplicate_in_report": 1}),
        "{run}"
    );
    assert_eq!(run["clean"], false);
    assert_eq!(run["lines"], 6);
    let find = |outcome: &str| -> Value {
        run["items"]
            .as_array()
            .unwrap()
            .iter()
            .find(|i| i["outcome"] == outcome)
            .cloned()
            .unwrap_or_else(|| panic!("no {outcome} in {run}"))
    };
    let mismatch = find("amount_mismatch");
    assert_eq!(
        (mismatch["reference"].clone(), mismatch["report_amount"].clone(), mismatch["ledger_amount"].clone()),
        (json!("QR-B"), json!(85_001), json!(85_000))
    );
    assert_eq!(
        (find("missing_in_ledger")["reference"].clone(), find("missing_in_ledger")["line"].clone()),
        (json!("QR-X"), json!(4))
    );
    let missing = find("missing_in_report");
    assert_eq!(
        (missing["reference"].clone(), missing["ledger_amount"].clone(), missing["line"].clone()),
        (json!("QR-C"), json!(50_000), Value::Null)
    );
    assert_eq!(
        (find("duplicate_in_report")["reference"].clone(), find("duplicate_in_report")["line"].clone()),
        (json!("QR-A"), json!(7))
    );
    let matched: Vec<&Value> =
        run["items"].as_array().unwrap().iter().filter(|i| i["outcome"] == "matched").collect();
    let kinds: Vec<&str> = matched.iter().map(|i| i["type"].as_str().unwrap()).collect();
    assert_eq!(kinds, vec!["payment", "refund", "payout"]);
    // Money did not move: only the run and its journal entry were written.
    let after = app.snapshot().await;
    for table in ["ledger_transfers", "ledger_accounts", "payouts"] {
        assert_eq!(after.tables[table], before.tables[table], "{table}");
    }
    assert_eq!(after.journal.0, before.journal.0 + 1);

    // The run can be read again, by the operator and the regulator.
    let id = text(&run["id"]);
    for token in [&app.operator, &app.regulator] {
        let stored = app
            .get(&format!("/v1/ops/reconciliations/{id}"))
            .token(token)
            .send()
            .await
            .expect(StatusCode::OK)
            .json();
        assert_eq!(stored, run);
    }
    app.get(&format!("/v1/ops/reconciliations/{id}"))
        .token(&merchant.token)
        .send()
        .await
        .problem(StatusCode::FORBIDDEN, "forbidden");
    // The same file again is a second run.
    let second =
        app.post("/v1/ops/reconciliations").token(&app.operator).raw("text/csv", report).send().await;
    let second = second.expect(StatusCode::CREATED).json();
    assert_ne!(second["id"], run["id"]);
    assert_eq!(second["summary"], run["summary"]);

    // Runs are listed newest first, a page at a time.
    let page = app
        .get("/v1/ops/reconciliations?limit=1")
        .token(&app.operator)
        .send()
        .await
        .expect(StatusCode::OK)
        .json();
    assert_eq!(page["reconciliations"][0]["id"], second["id"]);
    assert_eq!(page["reconciliations"][0]["summary"], run["summary"]);
    assert_eq!(page["reconciliations"][0]["clean"], false);
    let cursor = text(&page["next_cursor"]);
    let rest = app
        .get(&format!("/v1/ops/reconciliations?cursor={cursor}"))
        .token(&app.regulator)
        .send()
        .await
        .expect(StatusCode::OK)
        .json();
    assert_eq!(rest["reconciliations"].as_array().unwrap().len(), 1);
    assert_eq!(rest["reconciliations"][0]["id"], run["id"]);
    assert!(rest["next_cursor"].is_null());
}
