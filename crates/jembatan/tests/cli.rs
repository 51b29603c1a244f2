//! The `jembatan` command as a user types it: the quick start, token issue, the OpenAPI
//! document, and a crash (SIGKILL) in the middle of checkouts followed by a restart that finds
//! every acknowledged checkout and every invariant intact.
//!
//! Runs on SQLite, or on PostgreSQL (a fresh schema) when `JEMBATAN_TEST_DATABASE_URL` is set.

use std::io::{BufRead, BufReader, Read, Write};
use std::net::TcpStream;
use std::path::Path;
use std::process::{Child, Command, Stdio};
use std::sync::{Arc, Mutex};
use std::time::{Duration, Instant};

const BIN: &str = env!("CARGO_BIN_EXE_jembatan");

/// Where a test's store lives: `--data-dir DIR`, plus `--database-url` on PostgreSQL.
struct Place {
    dir: tempfile::TempDir,
    database_url: Option<String>,
}

impl Place {
    fn new() -> Place {
        let database_url = std::env::var(jembatan_store::testing::DATABASE_URL_VAR)
            .ok()
            .filter(|u| !u.is_empty())
            .map(|base| {
                tokio::runtime::Runtime::new()
                    .unwrap()
                    .block_on(jembatan_store::testing::postgres_schema_url(&base, "cli"))
                    .unwrap()
            });
        Place { dir: tempfile::tempdir().unwrap(), database_url }
    }

    fn args(&self) -> Vec<String> {
        let mut args = vec!["--data-dir".to_owned(), self.dir.path().join("data").display().to_string()];
        if let Some(url) = &self.database_url {
            args.extend(["--database-url".to_owned(), url.clone()]);
        }
        args
    }
}

fn jembatan(args: &[&str], place: &Place) -> std::process::Output {
    let mut command = Command::new(BIN);
    command.args(args);
    if args.first() != Some(&"openapi") {
        command.args(place.args());
    }
    command
        .env_remove("JEMBATAN_DATABASE_URL")
        .env_remove("JEMBATAN_LEGACY_DATABASE_URL")
        .env_remove("JEMBATAN_DATA_DIR")
        .output()
        .unwrap()
}

fn issue(place: &Place, extra: &[&str]) -> String {
    let mut args = vec!["token", "issue"];
    args.extend(extra);
    let out = jembatan(&args, place);
    assert!(out.status.success(), "token issue failed: {}", String::from_utf8_lossy(&out.stderr));
    String::from_utf8(out.stdout).unwrap().trim().to_owned()
}

/// A running server and the address it listens on.
struct Server {
    child: Child,
    address: String,
}

impl Server {
    fn start(place: &Place) -> Server {
        let mut child = Command::new(BIN)
            .arg("serve")
            .args(place.args())
            .args(["--listen", "127.0.0.1:0"])
            .env("RUST_LOG", "info")
            .env_remove("JEMBATAN_DATABASE_URL")
            .stdout(Stdio::null())
            .stderr(Stdio::piped())
            .spawn()
            .unwrap();
        let mut lines = BufReader::new(child.stderr.take().unwrap()).lines();
        let address = loop {
            let line = lines.next().expect("server exited before listening").unwrap();
            if let Some(rest) = line.split("url=http://").nth(1) {
                break rest.split_whitespace().next().unwrap().to_owned();
            }
        };
        // Keep draining the log so the server never blocks on a full pipe.
        std::thread::spawn(move || for _ in lines {});
        Server { child, address }
    }

    fn kill(mut self) {
        // SIGKILL: no shutdown hook runs, as in a crash.
        self.child.kill().unwrap();
        self.child.wait().unwrap();
    }
}

impl Drop for Server {
    fn drop(&mut self) {
        let _ = self.child.kill();
        let _ = self.child.wait();
    }
}

/// One HTTP/1.1 request; returns the status and the body.
fn http(
    address: &str,
    method: &str,
    path: &str,
    token: &str,
    headers: &[(&str, &str)],
    body: &str,
) -> (u16, String) {
    let mut stream = TcpStream::connect(address).unwrap();
    stream.set_read_timeout(Some(Duration::from_secs(30))).unwrap();
    let mut request = format!(
        "{method} {path} HTTP/1.1\r\nhost: {address}\r\nconnection: close\r\ncontent-length: {}\r\n",
        body.len()
    );
    if !token.is_empty() {
        request.push_str(&format!("authorization: Bearer {token}\r\n"));
    }
    if !body.is_empty() {
        request.push_str("content-type: application/json\r\n");
    }
    for (name, value) in headers {
        request.push_str(&format!("{name}: {value}\r\n"));
    }
    request.push_str("\r\n");
    request.push_str(body);
    stream.write_all(request.as_bytes()).unwrap();
    let mut response = String::new();
    stream.read_to_string(&mut response).unwrap();
    let status = response[9..12].parse().unwrap();
    let body = response.split_once("\r\n\r\n").map(|(_, b)| b.to_owned()).unwrap_or_default();
    (status, body)
}

fn json(text: &str) -> serde_json::Value {
    serde_json::from_str(text).unwrap_or_else(|e| panic!("not JSON ({e}): {text}"))
}

#[test]
fn token_issue_prints_the_token_alone_and_refuses_bad_arguments() {
    let place = Place::new();
    let token = issue(&place, &["--role", "operator"]);
    assert!(token.starts_with("jbt_") && token.len() == 68 && !token.contains('\n'), "{token:?}");
    assert_ne!(issue(&place, &["--role", "operator"]), token, "every token is new");
    issue(&place, &["--role", "channel", "--channel", "social"]);
    for bad in [
        vec!["--role", "king"],
        vec!["--role", "merchant"],
        vec!["--role", "channel", "--channel", "tv"],
        vec!["--role", "operator", "--merchant", "mer_01m8qtwd0retr9r2ktefptxxew"],
        vec!["--role", "merchant", "--merchant", "mer_01m8qtwd0retr9r2ktefptxxew"],
    ] {
        let mut args = vec!["token", "issue"];
        args.extend(&bad);
        let out = jembatan(&args, &place);
        assert!(!out.status.success(), "{bad:?} should fail");
        assert!(out.stdout.is_empty(), "{bad:?} printed a token");
        assert!(String::from_utf8_lossy(&out.stderr).starts_with("error: "), "{bad:?}");
    }
}

#[test]
fn the_committed_openapi_document_is_current() {
    let out = jembatan(&["openapi"], &Place { dir: tempfile::tempdir().unwrap(), database_url: None });
    let generated = String::from_utf8(out.stdout).unwrap();
    let committed = std::fs::read_to_string(Path::new(env!("CARGO_MANIFEST_DIR")).join("../../openapi.json"))
        .unwrap_or_default();
    assert!(
        generated == committed,
        "openapi.json is stale: run `cargo run -p jembatan -- openapi > openapi.json` and commit it"
    );
    assert!(generated.contains("\"openapi\": \"3.1"));
}

#[test]
fn up_serves_a_demo_shop_with_working_tokens() {
    let place = Place::new();
    let mut child = Command::new(BIN)
        .arg("up")
        .args(place.args())
        .args(["--listen", "127.0.0.1:0"])
        .env_remove("JEMBATAN_DATABASE_URL")
        .stdout(Stdio::piped())
        .stderr(Stdio::null())
        .spawn()
        .unwrap();
    let mut lines = BufReader::new(child.stdout.take().unwrap()).lines();
    let (mut operator, mut merchant, mut address) = (String::new(), String::new(), String::new());
    for line in lines.by_ref() {
        let line = line.unwrap();
        let words: Vec<&str> = line.split_whitespace().collect();
        match words.as_slice() {
            ["operator", token] => operator = token.to_string(),
            ["merchant", id, ..] if merchant.is_empty() => merchant = id.to_string(),
            _ => {}
        }
        if let Some(url) = line.strip_prefix("Jembatan is serving at http://") {
            address = url.to_owned();
            break;
        }
    }
    std::thread::spawn(move || for _ in lines {});
    assert!(operator.starts_with("jbt_") && merchant.starts_with("mer_") && !address.is_empty());
    let (status, body) = http(&address, "GET", "/healthz", "", &[], "");
    assert_eq!(status, 200, "{body}");
    let (status, body) =
        http(&address, "GET", &format!("/v1/merchants/{merchant}/orders?limit=100"), &operator, &[], "");
    assert_eq!(status, 200, "{body}");
    assert!(!json(&body)["orders"].as_array().unwrap().is_empty(), "the demo has orders");
    child.kill().unwrap();
    child.wait().unwrap();
    let out = jembatan(&["check"], &place);
    assert!(out.status.success(), "{}", String::from_utf8_lossy(&out.stdout));
}

/// Checkouts run from several threads; the server is killed with SIGKILL in the middle. After a
/// restart every acknowledged checkout is there with its orders, a retry with the same
/// idempotency key returns the same answer, and all invariants hold.
#[test]
fn a_crash_mid_checkout_loses_no_acknowledged_write() {
    let place = Place::new();
    let operator = issue(&place, &["--role", "operator"]);
    let channel = issue(&place, &["--role", "channel", "--channel", "marketplace"]);
    let server = Server::start(&place);
    let address = server.address.clone();
    let (status, body) = http(
        &address,
        "POST",
        "/v1/merchants",
        &operator,
        &[],
        r#"{"name":"Toko Crash","origin":"local","province":"Bali","nib":"1234567890123"}"#,
    );
    assert_eq!(status, 201, "{body}");
    let merchant = json(&body)["id"].as_str().unwrap().to_owned();
    let merchant_token = issue(&place, &["--role", "merchant", "--merchant", &merchant]);
    let (status, body) = http(
        &address,
        "POST",
        &format!("/v1/merchants/{merchant}/products"),
        &merchant_token,
        &[],
        r#"{"title":"Sambal Bawang 200g","category":"food","skus":[{"code":"SB-1","price":{"amount":25000,"currency":"IDR"},"stock":100000},{"code":"SB-2","price":{"amount":27000,"currency":"IDR"},"stock":100000}]}"#,
    );
    assert_eq!(status, 201, "{body}");
    let skus: Vec<String> = json(&body)["skus"]
        .as_array()
        .unwrap()
        .iter()
        .map(|s| s["id"].as_str().unwrap().to_owned())
        .collect();

    let acknowledged: Arc<Mutex<Vec<(String, String, String)>>> = Arc::default();
    let stop_at = Instant::now() + Duration::from_secs(20);
    let mut workers = Vec::new();
    for w in 0..4 {
        let (address, channel, skus, acknowledged) =
            (address.clone(), channel.clone(), skus.clone(), acknowledged.clone());
        workers.push(std::thread::spawn(move || {
            for i in 0.. {
                if Instant::now() > stop_at {
                    break;
                }
                let key = format!("crash-{w}-{i}");
                let body = format!(
                    r#"{{"buyer_id":"b-{w}","items":[{{"sku_id":"{}","quantity":{}}},{{"sku_id":"{}","quantity":1}}],"shipping_address":{{"recipient_name":"Siti","phone":"081234567890","street":"Jl. Braga 1","city":"Bandung","province":"Jawa Barat","postal_code":"40111"}},"payment_method":"qris"}}"#,
                    skus[0], 1 + i % 3, skus[1]
                );
                let result = std::panic::catch_unwind(|| http(&address, "POST", "/v1/checkouts", &channel, &[("idempotency-key", &key)], &body));
                match result {
                    Ok((201, answer)) => acknowledged.lock().unwrap().push((key, body, answer)),
                    // The server is gone: stop this worker.
                    _ => break,
                }
            }
        }));
    }
    while acknowledged.lock().unwrap().len() < 150 && Instant::now() < stop_at {
        std::thread::sleep(Duration::from_millis(5));
    }
    server.kill();
    for worker in workers {
        worker.join().unwrap();
    }
    let acknowledged = acknowledged.lock().unwrap().clone();
    assert!(acknowledged.len() >= 150, "only {} checkouts before the deadline", acknowledged.len());

    let server = Server::start(&place);
    for (key, body, answer) in acknowledged.iter().step_by(7) {
        let first = json(answer);
        for order in first["orders"].as_array().unwrap() {
            let (status, got) = http(
                &server.address,
                "GET",
                &format!("/v1/orders/{}", order["id"].as_str().unwrap()),
                &channel,
                &[],
                "",
            );
            assert_eq!(status, 200, "acknowledged order lost after the crash: {got}");
        }
        let (status, replay) =
            http(&server.address, "POST", "/v1/checkouts", &channel, &[("idempotency-key", key)], body);
        assert_eq!(
            (status, replay.as_str()),
            (201, answer.as_str()),
            "the retry must return the first answer"
        );
    }
    let acknowledged_orders = acknowledged.len();
    let (status, page) = http(
        &server.address,
        "GET",
        &format!("/v1/merchants/{merchant}/orders?limit=100"),
        &operator,
        &[],
        "",
    );
    assert_eq!(status, 200);
    assert!(!json(&page)["orders"].as_array().unwrap().is_empty() && acknowledged_orders > 0);
    drop(server);
    let out = jembatan(&["check"], &place);
    assert!(out.status.success(), "invariants after the crash: {}", String::from_utf8_lossy(&out.stdout));
}

/// A merchant with one food SKU (stock for the whole test) on a running server; returns the
/// merchant id, its token and the SKU id.
fn shop(place: &Place, server: &Server, operator: &str) -> (String, String, String) {
    let (status, body) = http(
        &server.address,
        "POST",
        "/v1/merchants",
        operator,
        &[],
        r#"{"name":"Toko Bayar","origin":"local","province":"Bali","nib":"1234567890123"}"#,
    );
    assert_eq!(status, 201, "{body}");
    let merchant = json(&body)["id"].as_str().unwrap().to_owned();
    let token = issue(place, &["--role", "merchant", "--merchant", &merchant]);
    let (status, body) = http(
        &server.address,
        "POST",
        &format!("/v1/merchants/{merchant}/products"),
        &token,
        &[],
        r#"{"title":"Kopi Gayo 250g","category":"food","skus":[{"code":"KG-1","price":{"amount":10000,"currency":"IDR"},"stock":1000000}]}"#,
    );
    assert_eq!(status, 201, "{body}");
    let sku = json(&body)["skus"][0]["id"].as_str().unwrap().to_owned();
    (merchant, token, sku)
}

fn checkout(address: &str, channel: &str, sku: &str, quantity: u32) -> serde_json::Value {
    let body = format!(
        r#"{{"buyer_id":"b-1","items":[{{"sku_id":"{sku}","quantity":{quantity}}}],"shipping_address":{{"recipient_name":"Siti","phone":"081234567890","street":"Jl. Braga 1","city":"Bandung","province":"Jawa Barat","postal_code":"40111"}},"payment_method":"virtual_account"}}"#
    );
    let (status, answer) = http(address, "POST", "/v1/checkouts", channel, &[], &body);
    assert_eq!(status, 201, "{answer}");
    json(&answer)
}

/// The provider secret the server and the CLI share (kept in the data directory by default).
fn provider_secret(place: &Place) -> Vec<u8> {
    std::fs::read_to_string(place.dir.path().join("data").join("provider-secret"))
        .unwrap()
        .trim()
        .as_bytes()
        .to_vec()
}

/// A provider callback signed with the shared secret, as a payment gateway sends it.
fn signed_callback(address: &str, secret: &[u8], body: &str) -> (u16, String) {
    let now =
        std::time::SystemTime::now().duration_since(std::time::UNIX_EPOCH).unwrap().as_secs().to_string();
    let signature = jembatan_core::payments::sign(secret, &now, body.as_bytes());
    http(
        address,
        "POST",
        "/v1/payments/callbacks",
        "",
        &[("x-callback-timestamp", &now), ("x-callback-signature", &signature)],
        body,
    )
}

#[test]
fn provider_pay_sends_the_signed_callback_once() {
    let place = Place::new();
    let operator = issue(&place, &["--role", "operator"]);
    let channel = issue(&place, &["--role", "channel", "--channel", "social"]);
    let server = Server::start(&place);
    let (_, _, sku) = shop(&place, &server, &operator);
    let paying = checkout(&server.address, &channel, &sku, 2);
    let payment = paying["payment"]["id"].as_str().unwrap();
    let url = format!("http://{}", server.address);
    let wrong = jembatan(&["provider", "pay", payment, "--url", &url, "--amount", "1"], &place);
    assert!(!wrong.status.success(), "a wrong amount must fail");
    assert!(String::from_utf8_lossy(&wrong.stdout).contains("wrong-amount"));
    let paid = jembatan(&["provider", "pay", payment, "--url", &url], &place);
    assert!(paid.status.success(), "{}", String::from_utf8_lossy(&paid.stderr));
    assert_eq!(json(&String::from_utf8_lossy(&paid.stdout))["outcome"], "applied");
    let again = jembatan(&["provider", "pay", payment, "--url", &url], &place);
    assert_eq!(json(&String::from_utf8_lossy(&again.stdout))["outcome"], "already_applied");
    let order = paying["orders"][0]["id"].as_str().unwrap();
    let (status, seen) = http(&server.address, "GET", &format!("/v1/orders/{order}"), &channel, &[], "");
    assert_eq!((status, json(&seen)["status"].clone()), (200, serde_json::json!("paid")));
}

/// Payment callbacks (each payment reported twice, from two threads) and refunds run from
/// several threads; the server is killed with SIGKILL in the middle. After a restart every
/// acknowledged payment is paid, every acknowledged refund is there (and its retry answers the
/// same), and `jembatan check` finds the ledger, escrow and every other invariant intact.
#[test]
fn a_crash_during_a_storm_of_callbacks_and_refunds_loses_and_doubles_nothing() {
    let place = Place::new();
    let operator = issue(&place, &["--role", "operator"]);
    let channel = issue(&place, &["--role", "channel", "--channel", "social"]);
    let server = Server::start(&place);
    let (_, merchant_token, sku) = shop(&place, &server, &operator);
    let secret = provider_secret(&place);
    let checkouts: Vec<serde_json::Value> =
        (0..160).map(|i| checkout(&server.address, &channel, &sku, 1 + i % 3)).collect();

    let paid: Arc<Mutex<Vec<String>>> = Arc::default();
    // (order, idempotency key, body, first answer) of each acknowledged refund.
    type Acknowledged = Arc<Mutex<Vec<(String, String, String, String)>>>;
    let refunded: Acknowledged = Arc::default();
    let stop_at = Instant::now() + Duration::from_secs(25);
    let mut workers = Vec::new();
    for w in 0..4usize {
        let (address, secret, merchant_token) =
            (server.address.clone(), secret.clone(), merchant_token.clone());
        let (paid, refunded) = (paid.clone(), refunded.clone());
        // Workers w and w+2 report the same payments: every payment is reported twice at once.
        let mine: Vec<serde_json::Value> = checkouts.iter().skip(w % 2).step_by(2).cloned().collect();
        workers.push(std::thread::spawn(move || {
            for (i, c) in mine.iter().enumerate() {
                if Instant::now() > stop_at {
                    break;
                }
                let payment = &c["payment"];
                let body = format!(
                    r#"{{"event":"payment.paid","payment_id":"{}","amount":{}}}"#,
                    payment["id"].as_str().unwrap(),
                    payment["amount"]["amount"]
                );
                let Ok((status, answer)) =
                    std::panic::catch_unwind(|| signed_callback(&address, &secret, &body))
                else {
                    break;
                };
                assert!(status == 200, "callback answered {status}: {answer}");
                paid.lock().unwrap().push(payment["id"].as_str().unwrap().to_owned());
                if w >= 2 || i % 2 == 1 {
                    continue;
                }
                let order = c["orders"][0]["id"].as_str().unwrap().to_owned();
                let key = format!("refund-{w}-{i}");
                let body = r#"{"amount":{"amount":2500,"currency":"IDR"},"reason":"one bag was crushed"}"#;
                let path = format!("/v1/orders/{order}/refunds");
                let result = std::panic::catch_unwind(|| {
                    http(&address, "POST", &path, &merchant_token, &[("idempotency-key", &key)], body)
                });
                match result {
                    Ok((201, answer)) => refunded.lock().unwrap().push((order, key, body.to_owned(), answer)),
                    Ok((status, answer)) => panic!("refund answered {status}: {answer}"),
                    Err(_) => break,
                }
            }
        }));
    }
    while (paid.lock().unwrap().len() < 120 || refunded.lock().unwrap().len() < 20)
        && Instant::now() < stop_at
    {
        std::thread::sleep(Duration::from_millis(2));
    }
    server.kill();
    for worker in workers {
        let _ = worker.join();
    }
    let (paid, refunded) = (paid.lock().unwrap().clone(), refunded.lock().unwrap().clone());
    assert!(
        paid.len() >= 60 && !refunded.is_empty(),
        "too little work before the crash: {} {}",
        paid.len(),
        refunded.len()
    );

    let server = Server::start(&place);
    for payment in paid.iter().step_by(3) {
        let (status, got) =
            http(&server.address, "GET", &format!("/v1/payments/{payment}"), &channel, &[], "");
        assert_eq!((status, json(&got)["status"].clone()), (200, serde_json::json!("paid")), "{got}");
    }
    for (order, key, body, answer) in &refunded {
        let path = format!("/v1/orders/{order}/refunds");
        let (status, list) = http(&server.address, "GET", &path, &merchant_token, &[], "");
        assert_eq!(status, 200);
        let first = json(answer);
        let listed = json(&list)["refunds"].as_array().unwrap().iter().any(|r| r["id"] == first["id"]);
        assert!(listed, "acknowledged refund {} lost after the crash", first["id"]);
        let (status, replay) =
            http(&server.address, "POST", &path, &merchant_token, &[("idempotency-key", key)], body);
        assert_eq!(
            (status, replay.as_str()),
            (201, answer.as_str()),
            "the retry must return the first answer"
        );
    }
    drop(server);
    let out = jembatan(&["check"], &place);
    assert!(out.status.success(), "invariants after the crash: {}", String::from_utf8_lossy(&out.stdout));
}

/// A merchant with Rp1,000,000 in its balance and two payouts requested, written through the
/// library on the place's store; returns the two payout ids.
fn two_requested_payouts(place: &Place) -> (String, String) {
    use jembatan_domain::ledger::{
        AccountKind, NewTransfer, TransferKind, merchant_balance_account, platform_account,
    };
    use jembatan_domain::payout::{AccountHolder, AccountNumber, BankAccount, BankCode, payout_amount};
    use jembatan_domain::{Merchant, MerchantName, Money, Origin, Principal, Province, Timestamp};
    use jembatan_store::payouts::NewPayout;
    use jembatan_store::{Store, StoreOptions, WriteCtx, new_id};
    let options = match &place.database_url {
        Some(url) => StoreOptions::new(url.clone()),
        None => {
            std::fs::create_dir_all(place.dir.path().join("data")).unwrap();
            StoreOptions::sqlite_in(&place.dir.path().join("data"))
        }
    };
    tokio::runtime::Runtime::new().unwrap().block_on(async move {
        let store = Store::open(options).await.unwrap();
        let ctx = WriteCtx { actor: Principal::Operator, now: Timestamp::from_unix_ms(1_796_083_200_000) };
        let merchant = Merchant::new(
            new_id(),
            MerchantName::parse("Toko Batik Sari").unwrap(),
            Origin::CrossBorder,
            Province::parse("overseas").unwrap(),
            None,
            ctx.now,
        )
        .unwrap();
        let merchant = store.create_merchant(ctx.clone(), merchant, None).await.unwrap();
        let fund = NewTransfer {
            id: new_id(),
            debit: platform_account(AccountKind::ProviderClearing),
            credit: merchant_balance_account(merchant.id),
            amount: Money::from_rupiah(1_000_000).unwrap(),
            kind: TransferKind::Single,
            linked: false,
            code: 3,
        };
        assert!(store.create_transfers(ctx.clone(), vec![fund]).await.unwrap()[0].is_ok());
        let mut ids = Vec::new();
        for rupiah in [300_000, 200_000] {
            let account = BankAccount {
                bank_code: BankCode::parse("009").unwrap(),
                account_number: AccountNumber::parse("0012345678").unwrap(),
                holder: AccountHolder::parse("Sari Wulandari").unwrap(),
            };
            let payout =
                NewPayout { merchant_id: merchant.id, amount: payout_amount(rupiah).unwrap(), account };
            ids.push(store.request_payout(ctx.clone(), payout, None).await.unwrap().id.to_string());
        }
        (ids[0].clone(), ids[1].clone())
    })
}

#[test]
fn payouts_batch_and_confirm_then_reconcile_from_the_command_line() {
    let place = Place::new();
    let (paid, failed) = two_requested_payouts(&place);
    let file = place.dir.path().join("batch.csv");
    let out = jembatan(&["payouts", "batch", "--out", file.to_str().unwrap()], &place);
    assert!(out.status.success(), "{}", String::from_utf8_lossy(&out.stderr));
    assert!(String::from_utf8_lossy(&out.stdout).contains("2 payouts, Rp500000"));
    let batch = std::fs::read_to_string(&file).unwrap();
    assert_eq!(batch.lines().count(), 3, "{batch}");
    assert!(
        batch.lines().any(|l| l.starts_with(&format!("{paid},009,0012345678,Sari Wulandari,300000,pbt_"))),
        "{batch}"
    );
    let out = jembatan(&["payouts", "batch"], &place);
    assert!(out.status.success() && out.stdout.is_empty(), "nothing waiting is not a failure");
    assert!(String::from_utf8_lossy(&out.stderr).contains("no payout is waiting"));

    let results = place.dir.path().join("results.csv");
    std::fs::write(
        &results,
        format!("payout_id,status,reason\n{paid},paid,\n{failed},failed,rekening ditutup\n"),
    )
    .unwrap();
    let confirm = ["payouts", "confirm", results.to_str().unwrap()];
    let out = jembatan(&confirm, &place);
    assert!(out.status.success(), "{}", String::from_utf8_lossy(&out.stderr));
    assert!(String::from_utf8_lossy(&out.stdout).contains("applied 2, unchanged 0, refused 0"));
    let out = jembatan(&confirm, &place);
    assert!(
        String::from_utf8_lossy(&out.stdout).contains("applied 0, unchanged 2, refused 0"),
        "a repeat changes nothing"
    );
    std::fs::write(&results, format!("payout_id,status,reason\n{paid},failed,salah\n")).unwrap();
    let out = jembatan(&confirm, &place);
    assert!(!out.status.success(), "a contradiction exits non-zero");
    assert!(String::from_utf8_lossy(&out.stdout).contains("conflict"));

    let report = place.dir.path().join("report.csv");
    std::fs::write(
        &report,
        format!("provider_ref,type,amount,settled_at\n{paid},payout,300000,2026-12-01\n"),
    )
    .unwrap();
    let out = jembatan(&["reconcile", report.to_str().unwrap()], &place);
    assert!(
        out.status.success(),
        "{}{}",
        String::from_utf8_lossy(&out.stdout),
        String::from_utf8_lossy(&out.stderr)
    );
    assert!(String::from_utf8_lossy(&out.stdout).contains("matched 1, missing in ledger 0"));
    std::fs::write(
        &report,
        format!("provider_ref,type,amount,settled_at\n{paid},payout,300001,2026-12-01\n"),
    )
    .unwrap();
    let out = jembatan(&["reconcile", report.to_str().unwrap(), "--json"], &place);
    assert!(!out.status.success(), "a mismatch exits non-zero");
    let run = json(&String::from_utf8_lossy(&out.stdout));
    assert_eq!(run["summary"]["amount_mismatch"], 1, "{run}");
    std::fs::write(&report, "provider_ref,type,amount,settled_at\nQR-1,payment,1.000,2026-12-01\n").unwrap();
    let out = jembatan(&["reconcile", report.to_str().unwrap()], &place);
    assert!(!out.status.success() && String::from_utf8_lossy(&out.stderr).contains("line 2"));

    let out = jembatan(&["check"], &place);
    assert!(out.status.success(), "{}", String::from_utf8_lossy(&out.stdout));
}

#[test]
fn seed_fills_an_empty_legacy_store_once() {
    let dir = tempfile::tempdir().unwrap();
    let mut args: Vec<String> = ["seed", "--data-dir"].map(String::from).into();
    args.push(dir.path().join("data").display().to_string());
    // On PostgreSQL the legacy store gets a fresh schema of its own.
    if let Some(base) =
        std::env::var(jembatan_store::testing::DATABASE_URL_VAR).ok().filter(|u| !u.is_empty())
    {
        let url = tokio::runtime::Runtime::new()
            .unwrap()
            .block_on(jembatan_store::testing::postgres_schema_url(&base, "seed"))
            .unwrap();
        args.extend(["--legacy-database-url".to_owned(), url]);
    }
    args.extend(["--merchants", "20"].map(String::from));
    let seed = || {
        Command::new(BIN)
            .args(&args)
            .env_remove("JEMBATAN_LEGACY_DATABASE_URL")
            .env_remove("JEMBATAN_DATA_DIR")
            .output()
            .unwrap()
    };
    let first = seed();
    let stdout = String::from_utf8_lossy(&first.stdout);
    assert!(first.status.success(), "{stdout}{}", String::from_utf8_lossy(&first.stderr));
    assert!(stdout.contains("seeded 20 merchants (seed 42, defect rate 0.01)"), "{stdout}");
    assert!(stdout.contains("rows/s"), "{stdout}");
    let shops = stdout.lines().find(|l| l.trim_start().starts_with("shops")).unwrap_or_default();
    assert_eq!(shops.split_whitespace().collect::<Vec<_>>(), ["shops", "20"], "{stdout}");
    assert!(stdout.contains("defects:") && stdout.contains("ambiguous prices"), "{stdout}");
    // No progress bar when stderr is not a terminal.
    assert!(first.stderr.is_empty(), "{}", String::from_utf8_lossy(&first.stderr));

    let second = seed();
    assert!(!second.status.success());
    let stderr = String::from_utf8_lossy(&second.stderr);
    assert!(stderr.contains("the legacy store is not empty (20 shops"), "{stderr}");

    let bad = Command::new(BIN).args(["seed", "--merchants", "0"]).args(&args[1..3]).output().unwrap();
    assert!(!bad.status.success());
    assert!(String::from_utf8_lossy(&bad.stderr).contains("--merchants must be between 1"));
}

#[test]
fn migrate_plan_previews_then_plans_a_wave_of_seeded_shops() {
    let place = Place::new();
    // On PostgreSQL the legacy store gets a schema of its own beside the core's.
    let legacy = place.database_url.as_ref().map(|_| {
        let base = std::env::var(jembatan_store::testing::DATABASE_URL_VAR).unwrap();
        tokio::runtime::Runtime::new()
            .unwrap()
            .block_on(jembatan_store::testing::postgres_schema_url(&base, "legacy"))
            .unwrap()
    });
    let run = |args: &[&str]| {
        let mut args: Vec<&str> = args.to_vec();
        if let Some(url) = &legacy {
            args.extend(["--legacy-database-url", url]);
        }
        jembatan(&args, &place)
    };
    let json = |out: &std::process::Output| -> serde_json::Value {
        assert!(out.status.success(), "{}", String::from_utf8_lossy(&out.stderr));
        serde_json::from_slice(&out.stdout).expect("the report as JSON")
    };
    let seeded = run(&["seed", "--merchants", "12", "--defect-rate", "0.05"]);
    assert!(seeded.status.success(), "{}", String::from_utf8_lossy(&seeded.stderr));

    let plan = ["migrate", "plan", "--wave", "small-1", "--select", "orders<30", "--json"];
    let dry = json(&run(&[&plan[..], &["--dry-run"]].concat()));
    assert_eq!(dry["dry_run"], true);
    let merchants = dry["merchants"].as_u64().unwrap();
    assert!((1..12).contains(&merchants), "{dry}");
    assert!(dry["defects_total"].as_u64().unwrap() > 0, "{dry}");
    assert!(dry["shops"].as_array().unwrap().iter().all(|s| s["merchant_id"].is_null()));

    let bad = run(&["migrate", "plan", "--wave", "small-1", "--select", "colour=red", "--dry-run"]);
    assert!(!bad.status.success());
    let stderr = String::from_utf8_lossy(&bad.stderr);
    assert!(stderr.contains("selection term `colour=red`: unknown field `colour`"), "{stderr}");
    assert!(
        stderr.contains("known fields: seller_type, province, city, shop_id, orders, products, gmv"),
        "{stderr}"
    );

    let real = json(&run(&plan));
    assert_eq!(real["dry_run"], false);
    for field in ["merchants", "products", "skus", "orders", "order_items", "rows", "gmv", "defects"] {
        assert_eq!(real[field], dry[field], "{field}");
    }
    assert!(real["shops"].as_array().unwrap().iter().all(|s| s["merchant_id"].is_string()));
    let again = json(&run(&plan));
    assert_eq!((again["merchants"].as_u64(), again["skipped_total"].as_u64()), (Some(0), Some(merchants)));

    // The table: the rest of the shops, the wave's shops skipped.
    let table = run(&["migrate", "plan", "--wave", "rest", "--select", "all", "--dry-run"]);
    let stdout = String::from_utf8_lossy(&table.stdout);
    assert!(table.status.success(), "{stdout}{}", String::from_utf8_lossy(&table.stderr));
    assert!(
        stdout.starts_with("wave rest (dry run, nothing written): selection `all`, limit none"),
        "{stdout}"
    );
    let rest = 12 - merchants;
    assert!(
        stdout.contains(&format!("matched 12 shops: {rest} merchants would be planned, {merchants} skipped")),
        "{stdout}"
    );
    for line in ["  merchants", "  order items", "  GMV", "defects: ", "skipped:", "  in-wave", "examples:"] {
        assert!(stdout.contains(line), "{line}: {stdout}");
    }
    let gmv = stdout.lines().find(|l| l.trim_start().starts_with("GMV")).unwrap();
    assert!(gmv.split_whitespace().last().unwrap().starts_with("Rp"), "{gmv}");
}

/// The whole live migration as an operator runs it: a seeded social shop (with defects)
/// planned, the server serving both storefronts, `jembatan load` driving traffic through both
/// and journaling every acknowledged write, the migration started inside the server and
/// followed to the end while the load goes on; then `jembatan check --journal` finds every
/// acknowledged write exactly once and every invariant holding.
#[test]
fn a_seeded_shop_migrates_inside_the_server_under_load_and_its_journal_checks_clean() {
    let place = Place::new();
    let out = jembatan(&["seed", "--merchants", "16", "--defect-rate", "0.03"], &place);
    assert!(out.status.success(), "seed: {}", String::from_utf8_lossy(&out.stderr));
    let out = jembatan(&["migrate", "plan", "--wave", "live", "--select", "all"], &place);
    assert!(out.status.success(), "plan: {}", String::from_utf8_lossy(&out.stderr));
    let server = Server::start(&place);
    let operator = issue(&place, &["--role", "operator"]);
    let journal = place.dir.path().join("load.journal");
    let load = Command::new(BIN)
        .args(["load", "--url", &format!("http://{}", server.address), "--rate", "40", "--duration", "8"])
        .arg("--journal")
        .arg(&journal)
        .args(place.args())
        .env_remove("JEMBATAN_DATABASE_URL")
        .env_remove("JEMBATAN_DATA_DIR")
        .stdout(Stdio::piped())
        .stderr(Stdio::piped())
        .spawn()
        .unwrap();
    std::thread::sleep(Duration::from_millis(1_500));
    let (status, body) = http(
        &server.address,
        "POST",
        "/v1/ops/migration/runs",
        &operator,
        &[],
        r#"{"wave": "live", "parallel": 2}"#,
    );
    assert_eq!(status, 202, "{body}");
    let started = Instant::now();
    let progress = loop {
        let (status, body) = http(&server.address, "GET", "/v1/ops/migration/progress", &operator, &[], "");
        assert_eq!(status, 200, "{body}");
        let progress: serde_json::Value = serde_json::from_str(&body).unwrap();
        if progress["running"] == false {
            break progress;
        }
        assert!(started.elapsed() < Duration::from_secs(180), "the run did not end: {progress}");
        std::thread::sleep(Duration::from_millis(200));
    };
    let overall = &progress["overall"];
    assert_eq!(overall["merchants_moved"], overall["merchants"], "{progress}");
    let load = load.wait_with_output().unwrap();
    let report = String::from_utf8_lossy(&load.stdout);
    assert!(load.status.success(), "load: {report} {}", String::from_utf8_lossy(&load.stderr));
    assert!(report.contains("social_order") && report.contains("writes journaled"), "{report}");
    let journaled = std::fs::read_to_string(&journal).unwrap().lines().count();
    assert!(journaled >= 20, "{journaled} writes journaled: {report}");

    let check = jembatan(&["check", "--journal", journal.to_str().unwrap()], &place);
    let said = String::from_utf8_lossy(&check.stdout);
    assert!(check.status.success(), "check: {said} {}", String::from_utf8_lossy(&check.stderr));
    assert!(said.contains("every acknowledged write of the journal is there, once"), "{said}");
    drop(server);
}

/// The regulator's audit proofs from the command line: the chain verifies, a day's digest is
/// signed and verifies with the printed public key; an entry edited in the database afterwards
/// is named by `audit verify`, and the digest no longer verifies.
#[test]
fn audit_verify_names_an_edited_entry_and_the_signed_digest_stops_verifying() {
    let place = Place::new();
    for label in ["a", "b", "c"] {
        issue(&place, &["--role", "operator", "--label", label]);
    }
    let run = |args: &[&str]| {
        let out = jembatan(args, &place);
        (
            out.status.success(),
            String::from_utf8_lossy(&out.stdout).into_owned() + &String::from_utf8_lossy(&out.stderr),
        )
    };
    let (ok, text) = run(&["audit", "seal"]);
    assert!(ok && text.contains("sealed"), "{text}");
    let (ok, text) = run(&["audit", "verify"]);
    assert!(ok && text.contains("verified") && text.contains("entries/s"), "{text}");
    let (ok, digest) = run(&["audit", "digest", "--day", "2026-12-08"]);
    assert!(ok, "{digest}");
    let digest = json(&digest);
    assert!(digest["last_seq"].as_i64().unwrap() >= 3, "{digest}");
    let (ok, public_key) = run(&["audit", "public-key"]);
    assert!(ok && public_key.trim().len() == 64, "{public_key}");
    let (ok, text) =
        run(&["audit", "verify-digest", "--day", "2026-12-08", "--public-key", public_key.trim()]);
    assert!(ok && text.contains("verifies"), "{text}");
    let (ok, text) = run(&["audit", "digest", "--day", "8-12-2026"]);
    assert!(!ok && text.contains("YYYY-MM-DD"), "{text}");

    let url = place.database_url.clone().unwrap_or_else(|| {
        format!("sqlite://{}", place.dir.path().join("data").join("core.sqlite").display())
    });
    let edited = tokio::runtime::Runtime::new()
        .unwrap()
        .block_on(jembatan_store::testing::raw_execute(
            &url,
            "UPDATE audit_log SET actor_subject = 'someone else' WHERE chain_seq = 2",
        ))
        .unwrap();
    assert_eq!(edited, 1);
    let (ok, text) = run(&["audit", "verify"]);
    assert!(!ok && text.contains("BROKEN at entry 2"), "{text}");
    let (ok, text) =
        run(&["audit", "verify-digest", "--day", "2026-12-08", "--public-key", public_key.trim()]);
    assert!(!ok && text.contains("does not verify") && text.contains("entry 2"), "{text}");
}
