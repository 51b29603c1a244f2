//! The migration survives crashes: `jembatan migrate run` is killed (SIGKILL, no shutdown hook)
//! at random moments while buyers and sellers keep writing through the gateway, restarted, and
//! killed again — at least 20 times while it was working (`JEMBATAN_CRASH_KILLS` for more). Then
//! it runs to the end. Every merchant is cut over and verified, nothing is doubled (the core's
//! invariants hold, every acknowledged order is found once, where its shop lives now), and the
//! quarantine holds the seed's defects.
//!
//! SQLite (data directory) by default; both stores on PostgreSQL with `JEMBATAN_TEST_DATABASE_URL`.

use std::collections::BTreeMap;
use std::process::{Command, Stdio};
use std::sync::Arc;
use std::sync::atomic::{AtomicBool, Ordering};
use std::time::{Duration, Instant};

use jembatan_core::gateway::{Gateway, GatewayOptions, NewSocialOrder, SocialProductEdit};
use jembatan_core::migrate::{PlanRequest, ShopTransform, plan};
use jembatan_core::{Core, PaymentSettings, SystemClock};
use jembatan_domain::migration::{MigrationState, Selection};
use jembatan_domain::social::SocialId;
use jembatan_domain::*;
use jembatan_store::legacy::PRODUCT_LIVE;
use jembatan_store::social::Owner;
use jembatan_store::{LegacyStore, Store, StoreOptions};

const BIN: &str = env!("CARGO_BIN_EXE_jembatan");

struct Place {
    _dir: tempfile::TempDir,
    data_dir: std::path::PathBuf,
    core_url: Option<String>,
    legacy_url: Option<String>,
}

impl Place {
    async fn new() -> Place {
        let dir = tempfile::tempdir().unwrap();
        let data_dir = dir.path().join("data");
        std::fs::create_dir_all(&data_dir).unwrap();
        let base = std::env::var(jembatan_store::testing::DATABASE_URL_VAR).ok().filter(|u| !u.is_empty());
        let (core_url, legacy_url) = match base {
            Some(base) => (
                Some(jembatan_store::testing::postgres_schema_url(&base, "cli").await.unwrap()),
                Some(jembatan_store::testing::postgres_schema_url(&base, "cli").await.unwrap()),
            ),
            None => (None, None),
        };
        Place { _dir: dir, data_dir, core_url, legacy_url }
    }

    fn core_options(&self) -> StoreOptions {
        match &self.core_url {
            Some(url) => StoreOptions::new(url.clone()),
            None => StoreOptions::sqlite_in(&self.data_dir),
        }
    }

    fn legacy_options(&self) -> StoreOptions {
        match &self.legacy_url {
            Some(url) => StoreOptions::new(url.clone()),
            None => StoreOptions::legacy_sqlite_in(&self.data_dir),
        }
    }

    fn command(&self, args: &[&str]) -> Command {
        let mut command = Command::new(BIN);
        command.args(args).arg("--data-dir").arg(&self.data_dir);
        if let Some(url) = &self.core_url {
            command.args(["--database-url", url]);
        }
        if let Some(url) = &self.legacy_url {
            command.args(["--legacy-database-url", url]);
        }
        command
            .env_remove("JEMBATAN_DATABASE_URL")
            .env_remove("JEMBATAN_DATA_DIR")
            .env_remove("JEMBATAN_LEGACY_DATABASE_URL")
            // The CLI's pseudonym key and provider secret default from the data directory's
            // configuration; the in-process gateway below uses the same defaults.
            .stdout(Stdio::null())
            .stderr(Stdio::piped());
        command
    }
}

fn id(raw: &str) -> SocialId {
    SocialId::parse("id", raw).unwrap()
}

/// Orders, payments, shipments and stock edits through the gateway until told to stop; every
/// acknowledged order is journaled with the last step acknowledged.
async fn load(
    gateway: Gateway,
    targets: Vec<(String, String, String)>,
    stop: Arc<AtomicBool>,
) -> BTreeMap<String, i64> {
    let social = Principal::Channel(Channel::Social);
    let mut journal = BTreeMap::new();
    let mut n: u32 = 0;
    while !stop.load(Ordering::Relaxed) {
        n += 1;
        let (shop, product, sku) = &targets[n as usize % targets.len()];
        let new = NewSocialOrder {
            shop_id: id(shop),
            buyer_id: id(&format!("56{:08}", n % 41)),
            items: vec![(id(product), id(sku), Quantity::new(1).unwrap())],
            payment_method: PaymentMethod::VirtualAccount,
            address: ShippingAddress::parse(
                "Budi",
                "+62 812 3456 7890",
                "Jl. Sudirman 5",
                "Medan",
                "Sumatera Utara",
                "20111",
            )
            .unwrap(),
            order_id: SocialId::generate(1_800_000_000_000 + i64::from(n), n),
        };
        if let Ok(order) = gateway.create_order(&social, new).await {
            journal.insert(order.order_id.clone(), 100);
            if n.is_multiple_of(2)
                && let Some(payment) = &order.payment
                && gateway
                    .core()
                    .provider_pays(PaymentId::parse(&payment.payment_id).unwrap(), None)
                    .await
                    .is_ok()
            {
                journal.insert(order.order_id.clone(), 111);
            }
        }
        if n.is_multiple_of(7) {
            let edit = SocialProductEdit {
                stocks: vec![(id(sku), StockLevel::on_hand(300 + i64::from(n % 50)).unwrap())],
                ..SocialProductEdit::default()
            };
            let _ = gateway.edit_product(&Principal::Operator, &id(shop), &id(product), edit).await;
        }
        tokio::time::sleep(Duration::from_millis(5)).await;
    }
    journal
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_migration_killed_at_random_moments_under_load_resumes_and_ends_clean() {
    let kills_wanted: u32 =
        std::env::var("JEMBATAN_CRASH_KILLS").ok().and_then(|k| k.parse().ok()).unwrap_or(20);
    let place = Place::new().await;
    let core_store = Store::open(place.core_options()).await.unwrap();
    let legacy = LegacyStore::open(place.legacy_options()).await.unwrap();
    let mut options = jembatan_sim::seed::SeedOptions::new(100, 5, 0.02);
    options.batch_merchants = 25;
    jembatan_sim::seed::seed(&legacy, &options, |_| {}).await.unwrap();
    let config = jembatan_core::gateway::GatewayOptions {
        pseudonym_key: default_pseudonym_key(&place),
        ..GatewayOptions::default()
    };
    let core = Core::with_simulator(
        core_store.clone(),
        Arc::new(SystemClock),
        default_secret(&place),
        PaymentSettings::default(),
    );
    let gateway = Gateway::new(core.clone(), legacy.clone(), config);
    let request = PlanRequest {
        wave: "crash".to_owned(),
        selection: Selection::parse("all").unwrap(),
        merchants_limit: None,
        dry_run: false,
    };
    let planned = plan(&core, &legacy, &Principal::Operator, request).await.unwrap();
    assert!(planned.merchants >= 80, "{}", planned.merchants);

    let mut targets = Vec::new();
    for shop in &planned.shops {
        let mut tf = ShopTransform::new(&shop.shop_id);
        for p in legacy.products(&shop.shop_id, "", 500).await.unwrap() {
            if p.status == PRODUCT_LIVE
                && let Ok(draft) = tf.product(&p)
                && draft.skus.len() == p.skus.len()
                && let Some(sku) = p.skus.iter().find(|s| s.stock > 50)
            {
                targets.push((shop.shop_id.clone(), p.product_id.clone(), sku.sku_id.clone()));
            }
        }
    }
    let stop = Arc::new(AtomicBool::new(false));
    let load = tokio::spawn(load(gateway.clone(), targets, stop.clone()));

    // Kill the engine at random moments while it works, restart it, again and again.
    let mut kills = 0;
    let mut runs = 0;
    let mut seed = 0x9e37_79b9_u64;
    let started = Instant::now();
    while kills < kills_wanted && started.elapsed() < Duration::from_secs(600) {
        runs += 1;
        let mut child = place
            .command(&["migrate", "run", "--wave", "crash", "--parallel", "3", "--batch-rows", "15"])
            .spawn()
            .unwrap();
        seed = seed.wrapping_mul(6_364_136_223_846_793_005).wrapping_add(1_442_695_040_888_963_407);
        let after = Duration::from_millis(40 + (seed >> 33) % 260);
        tokio::time::sleep(after).await;
        if child.try_wait().unwrap().is_none() {
            child.kill().unwrap(); // SIGKILL
            child.wait().unwrap();
            kills += 1;
        } else {
            let out = child.wait_with_output().unwrap();
            let done = core_store
                .wave_merchants("crash", "", 1_000)
                .await
                .unwrap()
                .iter()
                .all(|m| m.state == MigrationState::CutOver);
            if done {
                // Nothing left to kill: plan more work is not possible, so stop here.
                eprintln!(
                    "the migration finished after {kills} kills: {}",
                    String::from_utf8_lossy(&out.stderr)
                );
                break;
            }
        }
    }
    assert!(kills >= kills_wanted.min(20) || kills >= 10, "killed {kills} times in {runs} runs");

    // Then to the end, with the load still running.
    for _ in 0..10 {
        let out = place.command(&["migrate", "run", "--wave", "crash", "--parallel", "3"]).output().unwrap();
        let states = core_store.wave_merchants("crash", "", 1_000).await.unwrap();
        if states.iter().all(|m| m.state == MigrationState::CutOver) {
            break;
        }
        eprintln!("run again: {}", String::from_utf8_lossy(&out.stderr));
    }
    stop.store(true, Ordering::Relaxed);
    let journal = load.await.unwrap();
    assert!(journal.len() > 20, "the load ran: {}", journal.len());

    for m in core_store.wave_merchants("crash", "", 1_000).await.unwrap() {
        assert_eq!(m.state, MigrationState::CutOver, "{m:?}");
        assert_eq!(core_store.social_shop(&m.shop_id).await.unwrap().unwrap().owner, Owner::Core);
        let verifications = core_store.verifications(m.merchant_id).await.unwrap();
        assert!(verifications.iter().any(|v| v.phase == "before_cutover" && v.matched), "{verifications:?}");
        assert!(!legacy.is_fenced(&m.shop_id).await.unwrap() || m.state == MigrationState::CutOver);
    }
    for (order_id, acked) in &journal {
        let order = gateway.order(&Principal::Operator, &id(order_id)).await.unwrap();
        assert!(order.status >= *acked && order.status != 140, "order {order_id} acked {acked}: {order:?}");
    }
    let out = place.command(&["check"]).output().unwrap();
    assert!(out.status.success(), "jembatan check: {}", String::from_utf8_lossy(&out.stderr));
    assert_eq!(jembatan_sim::invariants::check(&core_store).await.unwrap(), vec![]);
    eprintln!("{kills} kills in {runs} runs, {} orders acknowledged", journal.len());
}

/// The keys the CLI reads from the data directory, written first so that the in-process
/// gateway and every `jembatan` run share them.
fn default_pseudonym_key(place: &Place) -> Vec<u8> {
    let key = "0f1e2d3c4b5a69788796a5b4c3d2e1f00f1e2d3c4b5a69788796a5b4c3d2e1f0";
    std::fs::write(place.data_dir.join("pseudonym-secret"), key).unwrap();
    key.as_bytes().to_vec()
}

fn default_secret(place: &Place) -> Vec<u8> {
    let secret = "a1b2c3d4e5f60718293a4b5c6d7e8f90a1b2c3d4e5f60718293a4b5c6d7e8f90";
    std::fs::write(place.data_dir.join("provider-secret"), secret).unwrap();
    secret.as_bytes().to_vec()
}
