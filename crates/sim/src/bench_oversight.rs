//! `jembatan bench oversight`: what the regulator's proofs and the rules cost (issue 6).
//!
//! - **Inline rule check**: the policy's listing check (R2 with the dated rate and positive
//!   list, R4, R5, R7) per call, median of rounds of 100,000 calls over a mix of listings.
//! - **Audit chain**: N audit entries written through the journal (1,000 per unit), then
//!   sealed onto the chain (entries/s), then verified from the first entry (entries/s), against
//!   the baseline of reading the same rows alone.

use std::time::Instant;

use jembatan_core::audit::{seal_all, verify_chain};
use jembatan_domain::merchant::Origin;
use jembatan_domain::policy::Listing;
use jembatan_domain::{Category, MerchantId, Money, Principal, Timestamp, TypedId};
use jembatan_store::journal::{Change, record_many};
use jembatan_store::{Store, StoreOptions, WriteCtx, q};

pub struct OversightBenchOptions {
    pub database_url: Option<String>,
    pub entries: usize,
}

pub struct OversightReport {
    pub backend: &'static str,
    pub rule_check_ns: Vec<f64>,
    pub entries: usize,
    pub write_s: f64,
    pub seal_s: f64,
    pub verify_s: f64,
    pub read_s: f64,
}

fn median(mut v: Vec<f64>) -> f64 {
    v.sort_by(f64::total_cmp);
    v[v.len() / 2]
}

impl OversightReport {
    pub fn render(&self) -> String {
        let per_s = |s: f64| self.entries as f64 / s.max(1e-9);
        format!(
            "oversight bench on {}\n  inline listing check: median {:.0} ns per listing over {} rounds of 100,000 (target ≤ 10 µs)\n  audit chain of {} entries: written {:.0}/s, sealed {:.0} entries/s, verified {:.0} entries/s\n  baseline, reading the same rows alone: {:.0} rows/s; verify runs at {:.0}% of it\n",
            self.backend,
            median(self.rule_check_ns.clone()),
            self.rule_check_ns.len(),
            self.entries,
            per_s(self.write_s),
            per_s(self.seal_s),
            per_s(self.verify_s),
            per_s(self.read_s),
            100.0 * self.read_s / self.verify_s.max(1e-9)
        )
    }
}

pub async fn oversight(options: &OversightBenchOptions) -> anyhow::Result<OversightReport> {
    // The rule check, in memory.
    let policy = jembatan_core::policy::load(jembatan_core::policy::BUILT_IN).map_err(anyhow::Error::msg)?;
    let day = time::macros::date!(2026 - 12 - 08);
    let merchant = MerchantId::from_uuid(uuid::Uuid::from_u128(7));
    let listings: Vec<Listing> = (0..64)
        .map(|i| Listing {
            merchant_id: merchant,
            origin: if i % 3 == 0 { Origin::CrossBorder } else { Origin::Local },
            category: Category::ALL[i % Category::ALL.len()],
            unit_price: Money::from_rupiah(10_000 + (i as i64) * 37_000).expect("a price"),
            fob_usd_cents: None,
            hs_code: (i % 5 == 0).then(|| "490199".to_owned()),
            bpom_number: (i % 2 == 0).then(|| "MD 224510001234".to_owned()),
            halal_certificate: None,
            sni_mark: None,
            own_produce: false,
        })
        .collect();
    let mut rule_check_ns = Vec::new();
    let mut violations = 0usize;
    for _ in 0..9 {
        let started = Instant::now();
        for i in 0..100_000 {
            violations +=
                std::hint::black_box(policy.check_listing(&listings[i % listings.len()], day)).len();
        }
        rule_check_ns.push(started.elapsed().as_nanos() as f64 / 100_000.0);
    }
    std::hint::black_box(violations);

    // The audit chain.
    let dir = tempfile::tempdir()?;
    let (backend, store_options) = match &options.database_url {
        Some(url) => (
            "postgresql",
            StoreOptions::new(jembatan_store::testing::postgres_schema_url(url, "bench").await?),
        ),
        None => ("sqlite", StoreOptions::sqlite_in(dir.path())),
    };
    let store = Store::open(store_options).await?;
    seal_all(&store).await?;
    let ctx = WriteCtx { actor: Principal::Operator, now: Timestamp::from_unix_ms(1_765_000_000_000) };
    let started = Instant::now();
    let mut written = 0;
    while written < options.entries {
        let n = (options.entries - written).min(1_000);
        let ctx = ctx.clone();
        store
            .write(None, move |conn| {
                let ctx = ctx.clone();
                Box::pin(async move {
                    let changes = (0..n)
                        .map(|i| Change {
                            event_type: "order.shipped",
                            action: "order.ship",
                            entity_type: "order",
                            entity_id: format!("ord_bench_{i}"),
                            merchant_id: None,
                            channel: None,
                            payload: serde_json::json!({"status": "shipped", "total": 150_000}),
                        })
                        .collect();
                    record_many(conn, &ctx, changes).await
                })
            })
            .await?;
        written += n;
    }
    let write_s = started.elapsed().as_secs_f64();
    let started = Instant::now();
    seal_all(&store).await?;
    let seal_s = started.elapsed().as_secs_f64();
    let started = Instant::now();
    let report = verify_chain(&store, None).await?;
    let verify_s = started.elapsed().as_secs_f64();
    anyhow::ensure!(report.first_break.is_none(), "the chain does not verify: {:?}", report.first_break);
    anyhow::ensure!(
        report.verified as usize >= options.entries,
        "verified {} of {}",
        report.verified,
        options.entries
    );
    // Baseline: the same rows read in the same pages, nothing computed.
    let started = Instant::now();
    let mut after = 0i64;
    loop {
        let rows = store
            .read(move |conn| {
                Box::pin(async move {
                    Ok(q("SELECT * FROM audit_log WHERE chain_seq > $1 ORDER BY chain_seq LIMIT 5000")
                        .bind(after)
                        .fetch_all(conn)
                        .await?)
                })
            })
            .await?;
        let Some(last) = rows.last() else { break };
        after = last.int("chain_seq")?;
    }
    let read_s = started.elapsed().as_secs_f64();
    Ok(OversightReport {
        backend,
        rule_check_ns,
        entries: options.entries,
        write_s,
        seal_s,
        verify_s,
        read_s,
    })
}
