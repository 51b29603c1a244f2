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
    /// Orders for the transaction report (0: no report).
    pub orders: usize,
}

pub struct OversightReport {
    pub backend: &'static str,
    pub rule_check_ns: Vec<f64>,
    pub entries: usize,
    pub write_s: f64,
    pub seal_s: f64,
    pub verify_s: f64,
    pub read_s: f64,
    pub orders: usize,
    pub report_s: Vec<f64>,
    pub report_lines: usize,
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
        ) + &if self.orders > 0 {
            format!(
                "  transaction report over {} orders (a year, by day, channel, origin, province: {} lines): median {:.2} s of {} runs (target ≤ 2 s)\n",
                self.orders,
                self.report_lines,
                median(self.report_s.clone()),
                self.report_s.len()
            )
        } else {
            String::new()
        }
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
    let (report_s, report_lines) = transaction_report(&store, options.orders).await?;
    Ok(OversightReport {
        backend,
        rule_check_ns,
        entries: options.entries,
        write_s,
        seal_s,
        verify_s,
        read_s,
        orders: options.orders,
        report_s,
        report_lines,
    })
}

/// `orders` orders over 2026 by 2,000 merchants (of 6 provinces, a tenth cross-border), both
/// channels, every status, written straight into the tables; then the year's report, 3 times.
async fn transaction_report(store: &Store, orders: usize) -> anyhow::Result<(Vec<f64>, usize)> {
    if orders == 0 {
        return Ok((Vec::new(), 0));
    }
    const MERCHANTS: usize = 2_000;
    const PROVINCES: [&str; 6] = ["Aceh", "Bali", "DKI Jakarta", "Jawa Barat", "Jawa Timur", "Papua"];
    let merchant = |i: usize| format!("mer_bench{i:06}");
    for chunk in (0..MERCHANTS).collect::<Vec<_>>().chunks(500) {
        let chunk = chunk.to_vec();
        store
            .write(None, move |conn| {
                let chunk = chunk.clone();
                Box::pin(async move {
                    for i in chunk {
                        q("INSERT INTO merchants (merchant_id, name, origin, province, nib, created_at_ms)
                           VALUES ($1, $2, $3, $4, NULL, 0)")
                        .bind(merchant(i))
                        .bind(format!("Toko {i}"))
                        .bind(if i % 10 == 0 { "cross_border" } else { "local" })
                        .bind(PROVINCES[i % PROVINCES.len()])
                        .execute(&mut *conn)
                        .await?;
                    }
                    Ok(())
                })
            })
            .await?;
    }
    const STATUSES: [&str; 6] =
        ["awaiting_payment", "paid", "shipped", "delivered", "completed", "cancelled"];
    let year_start_ms: i64 = 1_767_200_400_000; // 2026-01-01 00:00 WIB
    let mut written = 0;
    while written < orders {
        let n = (orders - written).min(5_000);
        let base = written;
        store
            .write(None, move |conn| {
                Box::pin(async move {
                    for rows in (base..base + n).collect::<Vec<_>>().chunks(64) {
                        let mut tuples = Vec::new();
                        for k in 0..rows.len() {
                            let p = k * 6;
                            tuples.push(format!(
                                "(${}, ${}, ${}, ${}, 'buyer', ${}, 'qris', ${}, 'x', '+6281200000000', 'x', 'x', 'Bali', '80000', ${}, ${}, 1, 0, 'core')",
                                p + 1, p + 2, p + 2, p + 3, p + 4, p + 5, p + 6, p + 6
                            ));
                        }
                        let sql = format!(
                            "INSERT INTO orders (merchant_id, order_id, checkout_id, channel, buyer_id, status, payment_method, total_idr,
                             recipient_name, recipient_phone, street, city, province, postal_code, created_at_ms, updated_at_ms, version, fee_idr, origin)
                             VALUES {}",
                            tuples.join(", ")
                        );
                        let mut query = q(sql);
                        for &i in rows {
                            query = query
                                .bind(merchant(i.wrapping_mul(7919) % MERCHANTS))
                                .bind(format!("ord_bench{i:09}"))
                                .bind(if i % 3 == 0 { "marketplace" } else { "social" })
                                .bind(STATUSES[i % STATUSES.len()])
                                .bind(10_000 + (i as i64 % 97) * 1_500)
                                .bind(year_start_ms + (i as i64).wrapping_mul(2_654_435_761) % (365 * 86_400_000));
                        }
                        query.execute(&mut *conn).await?;
                    }
                    Ok(())
                })
            })
            .await?;
        written += n;
    }
    let mut times = Vec::new();
    let mut lines = 0;
    // 2026-01-01 ..= 2026-12-31 as days since 1970-01-01.
    let (from, to) = (20_454, 20_454 + 364);
    for _ in 0..3 {
        let started = Instant::now();
        lines = store.transaction_report(from, to).await?.len();
        times.push(started.elapsed().as_secs_f64());
    }
    Ok((times, lines))
}
