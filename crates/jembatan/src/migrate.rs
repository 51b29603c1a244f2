//! `jembatan migrate plan|run|status|quarantine|accept|retry|pause|resume`: the live migration from
//! the command line (the engine is `jembatan_core::migrate`).

use std::io::IsTerminal;
use std::sync::Arc;
use std::time::Duration;

use anyhow::Context;
use clap::Subcommand;
use jembatan_core::gateway::Gateway;
use jembatan_core::migrate::progress::{MigrationProgress, progress};
use jembatan_core::migrate::throttle::{LatencyWindow, Throttle};
use jembatan_core::migrate::{Engine, EngineOptions};
use jembatan_domain::{MerchantId, Principal, TypedId};

use crate::StoreFlags;

#[derive(Subcommand)]
pub enum MigrateRun {
    /// Choose merchants into a wave by a selection and report what moving them means (rows,
    /// GMV, the defects the copy will meet); `--dry-run` writes nothing.
    Plan {
        #[command(flatten)]
        store: StoreFlags,
        /// The wave's name (1 to 64 of A-Z a-z 0-9 - _ .); planning it again with the same
        /// selection and limit adds the shops not yet in it.
        #[arg(long)]
        wave: String,
        /// `all`, or terms joined by commas, e.g. `seller_type=LOCAL,province=Bali,orders<1000`
        /// (fields: seller_type, province, city, shop_id, orders, products, gmv).
        #[arg(long)]
        select: String,
        /// Most merchants the wave takes (in shop id order).
        #[arg(long)]
        limit: Option<u64>,
        /// Count and check only: write nothing to either store.
        #[arg(long)]
        dry_run: bool,
        /// Print the report as JSON (the API's shape) instead of a table.
        #[arg(long)]
        json: bool,
    },
    /// Move the planned merchants (of one wave, or all): copy, catch up, verify, fence, cut
    /// over. Resumes from the stored state after any stop; running it again is harmless.
    Run {
        #[command(flatten)]
        store: StoreFlags,
        /// Only this wave's merchants.
        #[arg(long)]
        wave: Option<String>,
        /// Merchants moved at the same time.
        #[arg(long, default_value_t = 4)]
        parallel: usize,
        /// Longest pause of a merchant's writes at its cutover, in milliseconds; over it the
        /// cutover aborts back to the legacy store and is tried again.
        #[arg(long, default_value_t = 500)]
        cutover_budget_ms: u64,
        /// Legacy rows written per unit.
        #[arg(long, default_value_t = 500)]
        batch_rows: usize,
        /// Slow the copy while the live read path's p99 (probed after each batch, over 10 s)
        /// is above this many milliseconds; 0: never.
        #[arg(long, default_value_t = 100)]
        throttle_p99_ms: u64,
        /// Print the per-merchant outcome as JSON lines.
        #[arg(long)]
        json: bool,
    },
    /// Where the migration stands: per wave and overall, from stored state.
    Status {
        #[command(flatten)]
        store: StoreFlags,
        #[arg(long)]
        json: bool,
    },
    /// Rows the core could not take, with their reason and raw legacy value.
    Quarantine {
        #[command(flatten)]
        store: StoreFlags,
        /// Only this merchant's.
        #[arg(long)]
        merchant: Option<String>,
        /// `open`, `resolved` or `accepted`.
        #[arg(long)]
        state: Option<String>,
        #[arg(long)]
        json: bool,
    },
    /// Accept moving a merchant without its open quarantined rows (audited with the reason).
    Accept {
        #[command(flatten)]
        store: StoreFlags,
        merchant: String,
        #[arg(long)]
        reason: String,
    },
    /// Copy a stopped merchant again (after its rows were fixed at the source).
    Retry {
        #[command(flatten)]
        store: StoreFlags,
        merchant: String,
    },
    /// Give cut-over merchants back to the legacy store, with everything the core did for them
    /// since their cutover (one merchant, or a whole wave).
    Rollback {
        #[command(flatten)]
        store: StoreFlags,
        /// The merchant id.
        merchant: Option<String>,
        #[arg(long, conflicts_with = "merchant")]
        wave: Option<String>,
        /// Why (recorded with the merchant's state).
        #[arg(long, default_value = "operator's rollback")]
        reason: String,
    },
    /// End cut-over merchants' migration for good: the reverse sync stops. Refused for a
    /// merchant with open quarantined rows (fix them, or `migrate accept` them).
    Finalize {
        #[command(flatten)]
        store: StoreFlags,
        merchant: Option<String>,
        #[arg(long, conflicts_with = "merchant")]
        wave: Option<String>,
    },
    /// Write cut-over merchants' core changes back to the legacy store now (`serve` does it
    /// continuously).
    ReverseSync {
        #[command(flatten)]
        store: StoreFlags,
        #[arg(long)]
        wave: Option<String>,
    },
    /// Start no more merchants of a wave.
    Pause {
        #[command(flatten)]
        store: StoreFlags,
        #[arg(long)]
        wave: String,
    },
    /// Let the engine take a paused wave's merchants again.
    Resume {
        #[command(flatten)]
        store: StoreFlags,
        #[arg(long)]
        wave: String,
    },
}

pub async fn run(command: MigrateRun) -> anyhow::Result<()> {
    match command {
        MigrateRun::Plan { store, wave, select, limit, dry_run, json } => {
            let config = crate::load_config(&store, None)?;
            crate::migrate_plan(&config, wave, &select, limit, dry_run, json).await
        }
        MigrateRun::Run { store, wave, parallel, cutover_budget_ms, batch_rows, throttle_p99_ms, json } => {
            let gateway = open_gateway(&store).await?;
            let throttle = (throttle_p99_ms > 0).then(|| {
                let window = Arc::new(LatencyWindow::new(Duration::from_secs(10)));
                Throttle::new(window, Duration::from_millis(throttle_p99_ms), true)
            });
            let options = EngineOptions {
                batch_rows: batch_rows.max(1),
                cutover_budget: Duration::from_millis(cutover_budget_ms),
                throttle,
                ..EngineOptions::default()
            };
            let engine = Engine::new(gateway.clone(), options);
            let before = progress(gateway.core(), gateway.legacy(), &Principal::Operator).await?;
            let waiting = before.overall.merchants - before.overall.merchants_moved;
            let bar = if std::io::stderr().is_terminal() && !json {
                indicatif::ProgressBar::new(waiting)
            } else {
                indicatif::ProgressBar::hidden()
            };
            bar.set_style(
                indicatif::ProgressStyle::with_template(
                    "{elapsed_precise} [{bar:40}] {pos}/{len} merchants {msg}",
                )?
                .progress_chars("=> "),
            );
            let bar = Arc::new(bar);
            let report = engine
                .run_with(&Principal::Operator, wave, parallel, |outcome| {
                    bar.inc(1);
                    match outcome {
                        Ok(run) => {
                            if json {
                                println!(
                                    "{}",
                                    serde_json::json!({
                                        "merchant_id": run.merchant_id.to_string(), "shop_id": run.shop_id,
                                        "state": run.state.as_str(), "rows": run.rows, "quarantined": run.quarantined,
                                        "cutover_pause_ms": run.cutover_pause_us.map(|p| p as f64 / 1000.0),
                                        "note": run.note,
                                    })
                                );
                            }
                            bar.set_message(format!("last: shop {} {}", run.shop_id, run.state));
                        }
                        Err(error) => bar.println(format!("failed: {error}")),
                    }
                })
                .await?;
            bar.finish_and_clear();
            // Cut-over merchants' core writes reach the legacy store (until they are finalized).
            engine.reverse_sync_all(None).await?;
            let after = progress(gateway.core(), gateway.legacy(), &Principal::Operator).await?;
            if !json {
                println!(
                    "ran {} merchants ({} failed); {}",
                    report.merchants.len() + report.failed.len(),
                    report.failed.len(),
                    line(&after)
                );
                for m in report.merchants.iter().filter(|m| m.note.is_some()) {
                    println!("  shop {} ({}): {}", m.shop_id, m.state, m.note.as_deref().unwrap_or(""));
                }
            }
            for (merchant, error) in &report.failed {
                eprintln!("merchant {merchant}: {error}");
            }
            anyhow::ensure!(
                report.failed.is_empty(),
                "{} merchants failed (run again to resume)",
                report.failed.len()
            );
            Ok(())
        }
        MigrateRun::Status { store, json } => {
            let gateway = open_gateway(&store).await?;
            let p = progress(gateway.core(), gateway.legacy(), &Principal::Operator).await?;
            if json {
                println!("{}", serde_json::to_string_pretty(&p)?);
            } else {
                print_status(&p);
            }
            Ok(())
        }
        MigrateRun::Quarantine { store, merchant, state, json } => {
            let gateway = open_gateway(&store).await?;
            let merchant = merchant.map(|m| MerchantId::parse(&m)).transpose()?;
            if let Some(state) = &state {
                anyhow::ensure!(
                    matches!(state.as_str(), "open" | "resolved" | "accepted"),
                    "--state is one of open, resolved, accepted"
                );
            }
            let store = gateway.core().store();
            let mut after = (String::new(), String::new(), String::new());
            let mut total = 0;
            loop {
                let page = store.quarantined(merchant, state.clone(), after.clone(), 1_000).await?;
                for q in &page {
                    total += 1;
                    if json {
                        println!(
                            "{}",
                            serde_json::json!({
                                "merchant_id": q.merchant_id.to_string(), "shop_id": q.shop_id,
                                "entity": q.entity.as_str(), "legacy_key": q.legacy_key, "kinds": q.kinds,
                                "reason": q.reason, "state": q.state,
                                "raw": serde_json::from_str::<serde_json::Value>(&q.raw).unwrap_or_else(|_| q.raw.clone().into()),
                            })
                        );
                    } else {
                        println!(
                            "{:<9} shop {:<14} {:<7} {:<20} {:<28} {}",
                            q.state,
                            q.shop_id,
                            q.entity.as_str(),
                            q.legacy_key,
                            q.kinds,
                            q.reason
                        );
                    }
                }
                match page.last() {
                    Some(last) if page.len() == 1_000 => {
                        after = (
                            last.merchant_id.to_string(),
                            last.entity.as_str().to_owned(),
                            last.legacy_key.clone(),
                        )
                    }
                    _ => break,
                }
            }
            if !json {
                println!("{total} quarantined rows");
            }
            Ok(())
        }
        MigrateRun::Accept { store, merchant, reason } => {
            anyhow::ensure!(
                !reason.trim().is_empty(),
                "--reason says why the rows may stay behind (it is audited)"
            );
            let gateway = open_gateway(&store).await?;
            let merchant = MerchantId::parse(&merchant)?;
            let n = gateway.core().accept_quarantine(&Principal::Operator, merchant, reason).await?;
            println!("accepted {n} open quarantined rows of merchant {merchant}");
            Ok(())
        }
        MigrateRun::Retry { store, merchant } => {
            let gateway = open_gateway(&store).await?;
            let engine = Engine::new(gateway, EngineOptions::default());
            let record = engine.retry(&Principal::Operator, MerchantId::parse(&merchant)?).await?;
            println!(
                "merchant {} (shop {}) is {} again; `jembatan migrate run` moves it",
                record.merchant_id, record.shop_id, record.state
            );
            Ok(())
        }
        MigrateRun::Rollback { store, merchant, wave, reason } => {
            let gateway = open_gateway(&store).await?;
            let engine = Engine::new(gateway.clone(), EngineOptions::default());
            let merchants = chosen(&gateway, merchant, wave).await?;
            let mut failed = 0;
            for merchant_id in merchants {
                match engine.rollback(&Principal::Operator, merchant_id, &reason).await {
                    Ok((record, synced)) => println!(
                        "merchant {merchant_id} (shop {}) is back on the legacy store: {} products, {} orders written back ({} new)",
                        record.shop_id,
                        synced.products,
                        synced.orders_inserted + synced.orders_updated,
                        synced.orders_inserted
                    ),
                    Err(error) => {
                        failed += 1;
                        eprintln!("merchant {merchant_id}: {error}");
                    }
                }
            }
            anyhow::ensure!(failed == 0, "{failed} merchants were not rolled back");
            Ok(())
        }
        MigrateRun::Finalize { store, merchant, wave } => {
            let gateway = open_gateway(&store).await?;
            let engine = Engine::new(gateway.clone(), EngineOptions::default());
            let merchants = chosen(&gateway, merchant, wave).await?;
            let mut failed = 0;
            for merchant_id in merchants {
                match engine.finalize(&Principal::Operator, merchant_id).await {
                    Ok(record) => println!("merchant {merchant_id} (shop {}) is finalized", record.shop_id),
                    Err(error) => {
                        failed += 1;
                        eprintln!("merchant {merchant_id}: {error}");
                    }
                }
            }
            anyhow::ensure!(failed == 0, "{failed} merchants were not finalized");
            Ok(())
        }
        MigrateRun::ReverseSync { store, wave } => {
            let gateway = open_gateway(&store).await?;
            let engine = Engine::new(gateway, EngineOptions::default());
            let done = engine.reverse_sync_all(wave).await?;
            println!(
                "written back: {} products, {} orders inserted, {} orders updated",
                done.products, done.orders_inserted, done.orders_updated
            );
            Ok(())
        }
        MigrateRun::Pause { store, wave } => pause(&store, wave, true).await,
        MigrateRun::Resume { store, wave } => pause(&store, wave, false).await,
    }
}

async fn pause(store: &StoreFlags, wave: String, paused: bool) -> anyhow::Result<()> {
    let gateway = open_gateway(store).await?;
    gateway.core().pause_wave(&Principal::Operator, wave.clone(), paused).await?;
    println!("wave {wave} {}", if paused { "paused" } else { "resumed" });
    Ok(())
}

/// The cut-over merchants a rollback or finalize names: one merchant, or a wave's.
async fn chosen(
    gateway: &Gateway,
    merchant: Option<String>,
    wave: Option<String>,
) -> anyhow::Result<Vec<MerchantId>> {
    match (merchant, wave) {
        (Some(merchant), None) => Ok(vec![MerchantId::parse(&merchant)?]),
        (None, Some(wave)) => {
            let store = gateway.core().store();
            anyhow::ensure!(store.wave(&wave).await?.is_some(), "no wave `{wave}`");
            let mut out = Vec::new();
            let mut after = String::new();
            loop {
                let page = store
                    .migration_in_state(
                        jembatan_domain::migration::MigrationState::CutOver,
                        Some(wave.clone()),
                        after.clone(),
                        500,
                    )
                    .await?;
                let Some(last) = page.last() else { return Ok(out) };
                after = last.merchant_id.to_string();
                out.extend(page.iter().map(|m| m.merchant_id));
            }
        }
        _ => anyhow::bail!("name a MERCHANT or --wave NAME"),
    }
}

pub async fn open_gateway(store: &StoreFlags) -> anyhow::Result<Gateway> {
    let config = crate::load_config(store, None)?;
    let core = crate::open_core(&config).await?;
    let legacy = jembatan_store::LegacyStore::open(config.legacy_store_options())
        .await
        .context("opening the social shop's legacy store")?;
    Ok(Gateway::new(core, legacy, config.gateway_options()?))
}

fn line(p: &MigrationProgress) -> String {
    let o = &p.overall;
    format!(
        "{}/{} merchants moved ({}%), {}% by GMV, {}% by rows; quarantine {} open",
        o.merchants_moved,
        o.merchants,
        o.percent_by_merchants,
        o.percent_by_gmv,
        o.percent_by_rows,
        p.quarantine.open
    )
}

fn ms(v: Option<f64>) -> String {
    v.map_or_else(|| "-".to_owned(), |v| format!("{v:.1} ms"))
}

fn print_status(p: &MigrationProgress) {
    println!(
        "{:<16} {:>9} {:>7} {:>8} {:>7} {:>7} {:>10} {:>9} {:>10} {:>10} {:>10}",
        "wave",
        "merchants",
        "moved",
        "%merch",
        "%gmv",
        "%rows",
        "rows/s",
        "eta",
        "pause p50",
        "pause p99",
        "pause max"
    );
    for w in p.waves.iter().chain(std::iter::once(&p.overall)) {
        println!(
            "{:<16} {:>9} {:>7} {:>8} {:>7} {:>7} {:>10} {:>9} {:>10} {:>10} {:>10}{}",
            w.wave,
            w.merchants,
            w.merchants_moved,
            w.percent_by_merchants,
            w.percent_by_gmv,
            w.percent_by_rows,
            w.rows_per_s,
            w.eta_s.map_or_else(|| "-".to_owned(), |s| format!("{s:.0} s")),
            ms(w.cutover_pause_p50_ms),
            ms(w.cutover_pause_p99_ms),
            ms(w.cutover_pause_max_ms),
            if w.paused { "  (paused)" } else { "" }
        );
    }
    let states: Vec<String> =
        p.overall.by_state.iter().filter(|(_, n)| **n > 0).map(|(s, n)| format!("{n} {s}")).collect();
    println!(
        "merchants by state: {}",
        if states.is_empty() { "none planned".to_owned() } else { states.join(", ") }
    );
    println!(
        "quarantine: {} open, {} resolved, {} accepted",
        p.quarantine.open, p.quarantine.resolved, p.quarantine.accepted
    );
    println!("integration: {:.1}% done", p.integration_percent);
    for w in &p.workstreams {
        println!("  {:<26} {:>5.1}%  {}", w.name, w.percent, w.detail);
    }
}
