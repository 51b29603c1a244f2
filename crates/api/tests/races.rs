//! Races a client can start: going away mid-request, and two listings racing for one SKU code.

mod common;

use std::time::{Duration, Instant};

use common::*;
use hyper::StatusCode;
use tokio::io::AsyncWriteExt;

/// A client that sends a keyed checkout and disconnects at once must be able to retry with the
/// same key and get one answer: the work still finishes and the key is not left "in progress".
#[tokio::test]
async fn a_client_that_goes_away_does_not_strand_its_idempotency_key() {
    let app = App::start().await;
    let merchant = app.new_merchant("Toko Pergi").await;
    let product = app.list_product(&merchant, &[("PERGI-1", 12_000, 1_000)]).await;
    let sku = product.sku_ids[0].clone();
    let body = checkout_body(&[(&sku, 1)]);
    let text = body.to_string();
    for i in 0..20 {
        let key = format!("gone-{i}");
        let request = format!(
            "POST /v1/checkouts HTTP/1.1\r\nhost: x\r\nauthorization: Bearer {}\r\ncontent-type: application/json\r\nidempotency-key: {key}\r\ncontent-length: {}\r\n\r\n{text}",
            app.social,
            text.len()
        );
        let mut stream = tokio::net::TcpStream::connect(app.address()).await.unwrap();
        stream.write_all(request.as_bytes()).await.unwrap();
        drop(stream);
        // Retry until the key settles; a 409 is fine only while the first request still runs.
        let deadline = Instant::now() + Duration::from_secs(10);
        loop {
            let reply =
                app.post("/v1/checkouts").token(&app.social).idempotency_key(&key).json(&body).send().await;
            if reply.status == StatusCode::CREATED {
                break;
            }
            assert_eq!(reply.status, StatusCode::CONFLICT, "{}", reply.text());
            assert!(Instant::now() < deadline, "key {key} is stuck in progress");
            tokio::time::sleep(Duration::from_millis(10)).await;
        }
    }
    assert_eq!(app.sku(&sku).await["stock_reserved"], 20, "one checkout per key, no more, no less");
}

/// Two listings racing for the same SKU code: one wins, the other gets a 409 it can act on,
/// never a 500 (on PostgreSQL both pass the existence check before either inserts).
#[tokio::test]
async fn racing_listings_of_one_sku_code_get_a_conflict_not_a_server_error() {
    let app = App::start().await;
    let merchant = app.new_merchant("Toko Balap").await;
    for round in 0..10 {
        let code = format!("BALAP-{round}");
        let body = product_body(&[(&code, 9_000, 3)]);
        let path = format!("/v1/merchants/{}/products", merchant.id);
        let (a, b) = tokio::join!(
            app.post(&path).token(&merchant.token).json(&body).send(),
            app.post(&path).token(&merchant.token).json(&body).send(),
        );
        let mut statuses = [a.status.as_u16(), b.status.as_u16()];
        statuses.sort();
        assert_eq!(statuses, [201, 409], "round {round}: {} / {}", a.text(), b.text());
    }
}

/// A token whose role may never read orders gets the same answer for an order that exists and
/// for one that does not: the refusal reveals nothing about which ids exist.
#[tokio::test]
async fn refusals_do_not_reveal_whether_an_id_exists() {
    let app = App::start().await;
    let merchant = app.new_merchant("Toko Rahasia").await;
    let product = app.list_product(&merchant, &[("RAHASIA-1", 5_000, 10)]).await;
    let existing = app.order_in(&app.social, &product.sku_ids[0], "paid").await;
    let missing = jembatan_store::new_id::<jembatan_domain::OrderId>().to_string();
    let a = app.get(&format!("/v1/orders/{existing}")).token(&app.provider).send().await;
    let b = app.get(&format!("/v1/orders/{missing}")).token(&app.provider).send().await;
    assert_eq!((a.status, a.text()), (b.status, b.text()));
    assert_eq!(a.status, StatusCode::FORBIDDEN);
    let a = app.post(&format!("/v1/orders/{existing}/ship")).token(&app.social).send().await;
    let b = app.post(&format!("/v1/orders/{missing}/ship")).token(&app.social).send().await;
    assert_eq!((a.status, a.text()), (b.status, b.text()));
    assert_eq!(a.status, StatusCode::FORBIDDEN);
}
