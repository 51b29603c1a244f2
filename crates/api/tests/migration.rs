//! `/v1/ops/migration/waves` end to end, on a random port over fresh stores (SQLite, or
//! PostgreSQL with `JEMBATAN_TEST_DATABASE_URL`) whose legacy store the seed generator filled:
//! the operator previews a wave (200, nothing written), plans it (201), lists and reads it;
//! every other role is refused; a bad selection is a 400 naming its term; an unknown wave 404.

mod common;

use common::*;
use hyper::StatusCode;
use jembatan_sim::seed::{SeedOptions, seed};
use serde_json::{Value, json};

const MERCHANTS: u64 = 24;
const WAVES: &str = "/v1/ops/migration/waves";

/// A server whose legacy store holds `MERCHANTS` seeded shops, with defects.
async fn seeded_app() -> App {
    let app = App::start().await;
    let mut options = SeedOptions::new(MERCHANTS, 42, 0.05);
    options.batch_merchants = 8;
    seed(&app.legacy.store, &options, |_| {}).await.expect("the seed");
    app
}

async fn plan(app: &App, body: Value, status: StatusCode) -> Value {
    app.post(WAVES).token(&app.operator).json(&body).send().await.expect(status).json()
}

/// A page of the list of waves, as the operator reads it.
async fn list(app: &App, query: &str) -> Value {
    app.get(&format!("{WAVES}{query}")).token(&app.operator).send().await.expect(StatusCode::OK).json()
}

fn count(value: &Value) -> u64 {
    value.as_u64().unwrap_or_else(|| panic!("expected a count, got {value}"))
}

/// The figures a dry run and the real plan must agree on.
fn figures(report: &Value) -> Vec<Value> {
    ["merchants", "products", "skus", "orders", "order_items", "rows", "gmv", "defects_total", "defects"]
        .iter()
        .map(|field| report[field].clone())
        .collect()
}

#[tokio::test]
async fn the_operator_previews_plans_lists_and_reads_waves() {
    let app = seeded_app().await;
    let before = app.snapshot().await;
    let local = json!({"wave": "local-1", "select": "seller_type=LOCAL", "dry_run": true});
    let dry = plan(&app, local, StatusCode::OK).await;
    app.assert_unchanged(&before, "a dry run").await;
    assert_eq!((dry["dry_run"].clone(), dry["selection"].clone()), (json!(true), json!("seller_type=LOCAL")));
    let merchants = count(&dry["merchants"]);
    assert!(merchants > 0 && merchants < MERCHANTS, "{dry}");
    assert_eq!(dry["gmv"]["currency"], "IDR");
    assert!(count(&dry["gmv"]["amount"]) > 0);
    assert!(count(&dry["defects_total"]) > 0, "the seed made defects: {dry}");
    let first_defect = &dry["defects"][0];
    assert!(first_defect["entity"].is_string() && first_defect["kind"].is_string(), "{dry}");
    assert!(dry["defect_examples"][0]["raw"].is_string(), "{dry}");
    let shops = dry["shops"].as_array().expect("shops");
    assert_eq!(shops.len() as u64, merchants);
    assert!(shops.iter().all(|s| s["merchant_id"].is_null()), "a dry run enrols nobody");
    let unknown = app.get(&format!("{WAVES}/local-1")).token(&app.operator).send().await;
    unknown.problem(StatusCode::NOT_FOUND, "not-found");

    let real =
        plan(&app, json!({"wave": "local-1", "select": "seller_type=LOCAL"}), StatusCode::CREATED).await;
    assert_eq!(real["dry_run"], false);
    assert_eq!(figures(&real), figures(&dry), "the plan is what the dry run showed");
    assert!(real["shops"].as_array().unwrap().iter().all(|s| text(&s["merchant_id"]).starts_with("mer_")));

    let wave =
        app.get(&format!("{WAVES}/local-1")).token(&app.operator).send().await.expect(StatusCode::OK).json();
    assert_eq!(
        (wave["name"].clone(), wave["selection"].clone()),
        (json!("local-1"), json!("seller_type=LOCAL"))
    );
    assert_eq!((wave["limit"].clone(), wave["paused"].clone()), (Value::Null, json!(false)));
    assert_eq!(count(&wave["merchants"]), merchants);
    assert_eq!(wave["rows_planned"], real["rows"]);
    assert_eq!(wave["gmv_planned"], real["gmv"]);
    assert_eq!(wave["defects_expected"], real["defects_total"]);
    let by_state = wave["merchants_by_state"].as_object().expect("merchants_by_state");
    assert_eq!(by_state.len(), 9, "every state is counted: {wave}");
    for (state, n) in by_state {
        assert_eq!(count(n), if state == "legacy" { merchants } else { 0 }, "{state}");
    }
    assert!(text(&wave["created_at"]).ends_with('Z'));

    // A second wave takes the rest and says which shops it skipped.
    let rest = plan(&app, json!({"wave": "rest", "select": "all", "limit": 1000}), StatusCode::CREATED).await;
    assert_eq!(count(&rest["merchants"]), MERCHANTS - merchants);
    assert_eq!(rest["skipped_by_code"], json!([{"code": "in-wave", "shops": merchants}]));
    assert_eq!(rest["skipped"][0]["code"], "in-wave");

    // The list, in name order, a page at a time.
    let page = list(&app, "?limit=1").await;
    assert_eq!(page["waves"].as_array().unwrap().len(), 1);
    assert_eq!(
        (page["waves"][0]["name"].clone(), page["next_cursor"].clone()),
        (json!("local-1"), json!("local-1"))
    );
    let next = list(&app, "?limit=1&cursor=local-1").await;
    assert_eq!(next["waves"][0]["name"], "rest");
    assert_eq!(next["waves"][0]["limit"], 1000);
    assert_eq!(next["next_cursor"], Value::Null);
    let whole = list(&app, "").await;
    let names: Vec<String> = whole["waves"].as_array().unwrap().iter().map(|w| text(&w["name"])).collect();
    assert_eq!(names, ["local-1", "rest"]);
    app.get(&format!("{WAVES}?limit=0"))
        .token(&app.operator)
        .send()
        .await
        .problem(StatusCode::UNPROCESSABLE_ENTITY, "validation");

    // The same name with another selection is a conflict; repeating it adds nothing.
    let other = json!({"wave": "local-1", "select": "seller_type=CROSS_BORDER"});
    let conflict = app.post(WAVES).token(&app.operator).json(&other).send().await;
    assert!(
        text(&conflict.problem(StatusCode::CONFLICT, "conflict")["detail"]).contains("seller_type=LOCAL")
    );
    let again =
        plan(&app, json!({"wave": "local-1", "select": "seller_type=LOCAL"}), StatusCode::CREATED).await;
    assert_eq!(again["merchants"], 0);
}

#[tokio::test]
async fn only_the_operator_plans_or_reads_waves() {
    let app = seeded_app().await;
    plan(&app, json!({"wave": "w1", "select": "all", "limit": 2}), StatusCode::CREATED).await;
    let merchant = app.new_merchant("Toko Batik Sari").await;
    let before = app.snapshot().await;
    let body = json!({"wave": "w2", "select": "all"});
    for (role, token) in [
        ("merchant", &merchant.token),
        ("regulator", &app.regulator),
        ("social channel", &app.social),
        ("marketplace channel", &app.marketplace),
        ("provider", &app.provider),
    ] {
        for (method, path) in
            [("POST", WAVES.to_owned()), ("GET", WAVES.to_owned()), ("GET", format!("{WAVES}/w1"))]
        {
            let case = format!("{role}: {method} {path}");
            let reply = match method {
                "POST" => app.post(&path).token(token).json(&body).send().await,
                _ => app.get(&path).token(token).send().await,
            };
            reply.problem_in(&case, StatusCode::FORBIDDEN, "forbidden");
            app.assert_unchanged(&before, &case).await;
        }
    }
    let anonymous = app.post(WAVES).json(&body).send().await;
    anonymous.problem(StatusCode::UNAUTHORIZED, "unauthenticated");
    app.assert_unchanged(&before, "no token").await;
}

#[tokio::test]
async fn bad_requests_say_what_to_change_and_change_nothing() {
    let app = seeded_app().await;
    let before = app.snapshot().await;
    for (select, term) in [
        ("colour=red", "colour=red"),
        ("seller_type=LOCAL,orders<many", "orders<many"),
        ("province<Bali", "province<Bali"),
        ("seller_type=LOKAL", "seller_type=LOKAL"),
        ("", ""),
    ] {
        for dry_run in [true, false] {
            let body = json!({"wave": "w", "select": select, "dry_run": dry_run});
            let reply = app.post(WAVES).token(&app.operator).json(&body).send().await;
            let problem = reply.problem_in(select, StatusCode::BAD_REQUEST, "bad-selection");
            let detail = text(&problem["detail"]);
            assert!(detail.contains(&format!("selection term `{term}`")), "{detail}");
            assert!(
                detail.contains("known fields: seller_type, province, city, shop_id, orders, products, gmv"),
                "{detail}"
            );
            assert_eq!(problem["field"], "select");
        }
    }
    for (body, field) in [
        (json!({"wave": "no spaces", "select": "all"}), "name"),
        (json!({"wave": "", "select": "all"}), "name"),
        (json!({"wave": "w", "select": "all", "limit": 0}), "limit"),
    ] {
        let reply = app.post(WAVES).token(&app.operator).json(&body).send().await;
        let problem = reply.problem_in(&body.to_string(), StatusCode::UNPROCESSABLE_ENTITY, "validation");
        assert_eq!(problem["field"], field, "{body}");
    }
    let reply = app.post(WAVES).token(&app.operator).json(&json!({"select": "all"})).send().await;
    reply.problem(StatusCode::UNPROCESSABLE_ENTITY, "validation");
    app.assert_unchanged(&before, "refused plans").await;

    let unknown = app.get(&format!("{WAVES}/no-such-wave")).token(&app.operator).send().await;
    unknown.problem(StatusCode::NOT_FOUND, "not-found");
}

/// The migration run over the API: started in the server, followed by its progress (which the
/// regulator reads too), its merchants and quarantine listed, one merchant rolled back, another
/// finalized once its quarantine is accepted, a wave paused and resumed. Every other role is
/// refused.
#[tokio::test]
async fn the_operator_runs_follows_rolls_back_and_finalizes_a_migration_over_the_api() {
    let app = seeded_app().await;
    plan(&app, json!({"wave": "run-1", "select": "all", "limit": 5}), StatusCode::CREATED).await;
    let merchant = app.new_merchant("Toko Lain").await;
    for token in [&merchant.token, &app.social, &app.marketplace] {
        app.post("/v1/ops/migration/runs")
            .token(token)
            .json(&json!({}))
            .send()
            .await
            .problem(StatusCode::FORBIDDEN, "forbidden");
        app.get("/v1/ops/migration/progress")
            .token(token)
            .send()
            .await
            .problem(StatusCode::FORBIDDEN, "forbidden");
    }
    for path in ["/v1/ops/migration/quarantine", "/v1/ops/migration/merchants"] {
        app.get(path).token(&app.regulator).send().await.problem(StatusCode::FORBIDDEN, "forbidden");
    }
    let bad =
        app.post("/v1/ops/migration/runs").token(&app.operator).json(&json!({"parallel": 0})).send().await;
    bad.problem(StatusCode::UNPROCESSABLE_ENTITY, "validation");
    let unknown =
        app.post("/v1/ops/migration/runs").token(&app.operator).json(&json!({"wave": "nope"})).send().await;
    unknown.problem(StatusCode::NOT_FOUND, "not-found");

    let started = app
        .post("/v1/ops/migration/runs")
        .token(&app.operator)
        .json(&json!({"wave": "run-1", "parallel": 2}))
        .send()
        .await
        .expect(StatusCode::ACCEPTED)
        .json();
    assert_eq!(started["wave"], "run-1");
    let progress = wait_for_run(&app).await;
    let wave = progress["waves"].as_array().unwrap().iter().find(|w| w["wave"] == "run-1").unwrap().clone();
    assert_eq!((count(&wave["merchants"]), count(&wave["merchants_moved"])), (5, 5), "{progress}");
    assert_eq!(wave["percent_by_merchants"], 100.0);
    assert_eq!(wave["by_state"]["cut_over"], 5);
    assert!(wave["cutover_pause_max_ms"].as_f64().is_some_and(|p| p > 0.0), "{wave}");
    let streams: Vec<&str> =
        progress["workstreams"].as_array().unwrap().iter().map(|w| w["name"].as_str().unwrap()).collect();
    assert_eq!(streams, ["payments_through_core", "user_data_separated", "merchant_operations_moved"]);
    // The regulator reads the same progress.
    let seen = app
        .get("/v1/ops/migration/progress")
        .token(&app.regulator)
        .send()
        .await
        .expect(StatusCode::OK)
        .json();
    assert_eq!(seen["overall"], progress["overall"]);

    let merchants = app
        .get("/v1/ops/migration/merchants?wave=run-1&limit=2")
        .token(&app.operator)
        .send()
        .await
        .expect(StatusCode::OK)
        .json();
    assert_eq!(merchants["merchants"].as_array().unwrap().len(), 2);
    assert!(merchants["next_cursor"].is_string());
    let all = app
        .get("/v1/ops/migration/merchants?wave=run-1")
        .token(&app.operator)
        .send()
        .await
        .expect(StatusCode::OK)
        .json();
    let ids: Vec<String> =
        all["merchants"].as_array().unwrap().iter().map(|m| text(&m["merchant_id"])).collect();
    assert_eq!(ids.len(), 5);

    // The seed's defects are in the quarantine, with their raw legacy rows.
    let open = app
        .get("/v1/ops/migration/quarantine?state=open")
        .token(&app.operator)
        .send()
        .await
        .expect(StatusCode::OK)
        .json();
    let rows = open["rows"].as_array().unwrap();
    assert!(!rows.is_empty(), "{open}");
    assert!(
        rows.iter().all(|r| r["raw"].is_object()
            && !r["kinds"].as_array().unwrap().is_empty()
            && r["state"] == "open")
    );
    let bad_state = app.get("/v1/ops/migration/quarantine?state=maybe").token(&app.operator).send().await;
    bad_state.problem(StatusCode::UNPROCESSABLE_ENTITY, "validation");

    // A merchant with open rows is finalized only once they are accepted.
    let held = text(&rows[0]["merchant_id"]);
    let refused =
        app.post(&format!("/v1/ops/migration/merchants/{held}/finalize")).token(&app.operator).send().await;
    let problem = refused.problem(StatusCode::CONFLICT, "conflict");
    assert!(text(&problem["detail"]).contains("open quarantined rows"), "{problem}");
    let accepted = app
        .post(&format!("/v1/ops/migration/merchants/{held}/accept-quarantine"))
        .token(&app.operator)
        .json(&json!({"reason": "the seller re-lists these by hand"}))
        .send()
        .await
        .expect(StatusCode::OK)
        .json();
    assert!(count(&accepted["accepted"]) > 0);
    let finalized = app
        .post(&format!("/v1/ops/migration/merchants/{held}/finalize"))
        .token(&app.operator)
        .send()
        .await
        .expect(StatusCode::OK)
        .json();
    assert_eq!(finalized["state"], "finalized");

    // Another is rolled back; twice is a conflict; a finalized one cannot be.
    let other = ids.iter().find(|id| **id != held).unwrap();
    let back = app
        .post(&format!("/v1/ops/migration/merchants/{other}/rollback"))
        .token(&app.operator)
        .json(&json!({"reason": "seller asked"}))
        .send()
        .await
        .expect(StatusCode::OK)
        .json();
    assert_eq!(back["merchant"]["state"], "rolled_back");
    for id in [other, &held] {
        let again = app
            .post(&format!("/v1/ops/migration/merchants/{id}/rollback"))
            .token(&app.operator)
            .json(&json!({"reason": "again"}))
            .send()
            .await;
        again.problem(StatusCode::CONFLICT, "conflict");
    }
    let nobody = app
        .post("/v1/ops/migration/merchants/mer_01m8t60rnaemwr1v90nh9g3mjv/rollback")
        .token(&app.operator)
        .json(&json!({"reason": "x"}))
        .send()
        .await;
    nobody.problem(StatusCode::NOT_FOUND, "not-found");

    // Pause and resume.
    app.post(&format!("{WAVES}/run-1/pause"))
        .token(&app.operator)
        .send()
        .await
        .expect(StatusCode::NO_CONTENT);
    let paused =
        app.get(&format!("{WAVES}/run-1")).token(&app.operator).send().await.expect(StatusCode::OK).json();
    assert_eq!(paused["paused"], true);
    app.post(&format!("{WAVES}/run-1/resume"))
        .token(&app.operator)
        .send()
        .await
        .expect(StatusCode::NO_CONTENT);
    app.post(&format!("{WAVES}/nope/pause"))
        .token(&app.operator)
        .send()
        .await
        .problem(StatusCode::NOT_FOUND, "not-found");
    app.post(&format!("{WAVES}/run-1/pause"))
        .token(&app.regulator)
        .send()
        .await
        .problem(StatusCode::FORBIDDEN, "forbidden");
    assert_eq!(jembatan_sim::invariants::check(app.store()).await.unwrap(), vec![]);
}
