//! The `jembatan` command: a thin binary that parses arguments, loads the configuration and
//! wires the library crates together. `main` calls `run`, which returns a `Result`.

mod audit;
mod config;
mod migrate;
mod oversight;

use std::path::PathBuf;
use std::process::ExitCode;
use std::sync::Arc;

use anyhow::Context;
use clap::{Args, Parser, Subcommand};
use jembatan_core::{Core, SystemClock};
use jembatan_domain::{Channel, MerchantId, Principal, Role, TypedId};

#[derive(Parser)]
#[command(name = "jembatan", version, about = "One order, payment and settlement core for two storefronts")]
struct Cli {
    #[command(subcommand)]
    command: Command,
}

#[derive(Args, Clone, Default)]
pub(crate) struct StoreFlags {
    /// Directory of the embedded SQLite store (created on first start).
    #[arg(long, env = "JEMBATAN_DATA_DIR")]
    data_dir: Option<PathBuf>,
    /// PostgreSQL URL (`postgres://…`) to use instead of the data directory.
    #[arg(long, env = "JEMBATAN_DATABASE_URL", hide_env_values = true)]
    database_url: Option<String>,
    /// PostgreSQL URL of the social shop's legacy store, instead of `<data-dir>/legacy.sqlite`.
    #[arg(long, env = "JEMBATAN_LEGACY_DATABASE_URL", hide_env_values = true)]
    legacy_database_url: Option<String>,
    /// Configuration file (TOML); default `jembatan.toml` if present.
    #[arg(long)]
    config: Option<PathBuf>,
}

#[derive(Subcommand)]
enum Command {
    /// Run the service.
    Serve {
        #[command(flatten)]
        store: StoreFlags,
        /// Address to listen on, e.g. 127.0.0.1:8080.
        #[arg(long)]
        listen: Option<String>,
    },
    /// Quick start: serve on the embedded store, with a demo shop in a fresh data directory.
    Up {
        #[command(flatten)]
        store: StoreFlags,
        #[arg(long)]
        listen: Option<String>,
    },
    /// Manage API tokens.
    Token {
        #[command(subcommand)]
        command: TokenCommand,
    },
    /// Print the OpenAPI document.
    Openapi,
    /// Check the invariants of the store (stock, totals, journal); exits non-zero on a violation.
    Check {
        #[command(flatten)]
        store: StoreFlags,
        /// Also verify a `jembatan load` journal: every acknowledged write present exactly once,
        /// at least as far as it was acknowledged, wherever its shop lives now.
        #[arg(long)]
        journal: Option<PathBuf>,
    },
    /// Drive realistic traffic of both storefronts against a running server (`/social/v1` and
    /// `/v1`), journal every acknowledged write, report throughput and latency.
    Load {
        #[command(flatten)]
        store: StoreFlags,
        /// The server (default: the configured `listen`).
        #[arg(long)]
        url: Option<String>,
        /// Calls per second.
        #[arg(long, default_value_t = 50)]
        rate: u32,
        /// Seconds to run.
        #[arg(long, default_value_t = 30)]
        duration: u64,
        /// Where the acknowledged writes go (JSON lines), for `jembatan check --journal`.
        #[arg(long, default_value = "jembatan-load.journal")]
        journal: PathBuf,
        /// Social shops to work on.
        #[arg(long, default_value_t = 50)]
        shops: usize,
    },
    /// The built-in payment provider simulator.
    Provider {
        #[command(subcommand)]
        command: ProviderCommand,
    },
    /// Payouts: the batch file for the bank, and the bank's answers.
    Payouts {
        #[command(subcommand)]
        command: PayoutsCommand,
    },
    /// Match a provider settlement report (CSV: provider_ref,type,amount,settled_at) against the
    /// ledger and store the run; exits non-zero when anything does not match.
    Reconcile {
        #[command(flatten)]
        store: StoreFlags,
        /// The report.
        file: PathBuf,
        /// Print the run as JSON (the API's shape) instead of a table.
        #[arg(long)]
        json: bool,
    },
    /// Generate a realistic legacy social shop (deterministic from the seed) into an empty
    /// legacy store: shops, products with SKUs, buyers and orders, with defects at a set rate.
    Seed {
        #[command(flatten)]
        store: StoreFlags,
        /// Number of merchants (shops); about 20 products and 50 orders each on average.
        #[arg(long)]
        merchants: u64,
        /// The same seed (with the same merchants and defect rate) gives the same data.
        #[arg(long, default_value_t = jembatan_sim::seed::SEED_DEFAULT)]
        seed: u64,
        /// Probability of each kind of defect per eligible row (0 to 1).
        #[arg(long, default_value_t = jembatan_sim::seed::DEFECT_RATE_DEFAULT)]
        defect_rate: f64,
        /// For measurements: `bulk` (default), `generic` (the store's generic write path) or
        /// `generate-only` (writes nothing).
        #[arg(long, default_value = "bulk", hide = true)]
        load_path: String,
    },
    /// The live migration of the social shop's merchants onto the core.
    Migrate {
        #[command(subcommand)]
        command: migrate::MigrateRun,
    },
    /// The tamper-evident audit chain: seal, verify, sign and verify daily digests.
    Audit {
        #[command(subcommand)]
        command: audit::AuditCommand,
    },
    /// Compliance: the rules in force, the bulk scan, the findings.
    Oversight {
        #[command(subcommand)]
        command: oversight::OversightCommand,
    },
    /// Benchmarks that print their figures.
    Bench {
        #[command(subcommand)]
        command: BenchCommand,
    },
}

#[derive(Subcommand)]
enum TokenCommand {
    /// Issue a token and print it (alone) on stdout.
    Issue {
        #[command(flatten)]
        store: StoreFlags,
        /// operator, merchant, channel, regulator or provider.
        #[arg(long)]
        role: String,
        /// The merchant a merchant token acts for.
        #[arg(long)]
        merchant: Option<String>,
        /// The channel a channel token acts for: social or marketplace.
        #[arg(long)]
        channel: Option<String>,
        #[arg(long, default_value = "issued by the command line")]
        label: String,
    },
}

#[derive(Subcommand)]
enum ProviderCommand {
    /// The buyer paid: the simulator sends the core the signed callback a provider would.
    Pay {
        #[command(flatten)]
        store: StoreFlags,
        /// The payment's id (`pay_…`, from the checkout's `payment`).
        payment_id: String,
        /// The server (default: the `listen` address of the configuration).
        #[arg(long)]
        url: Option<String>,
        /// Claim this amount was paid instead of the payment's own (to see a refusal).
        #[arg(long)]
        amount: Option<i64>,
    },
}

#[derive(Subcommand)]
enum PayoutsCommand {
    /// Export every requested payout in one batch and write its CSV file for the bank (to
    /// stdout unless --out).
    Batch {
        #[command(flatten)]
        store: StoreFlags,
        /// Write the file here instead of stdout.
        #[arg(long)]
        out: Option<PathBuf>,
    },
    /// Apply the bank's result file (CSV: payout_id,status,reason); exits non-zero when a line
    /// was refused (a contradiction or an unknown payout).
    Confirm {
        #[command(flatten)]
        store: StoreFlags,
        file: PathBuf,
    },
}

#[derive(Subcommand)]
enum BenchCommand {
    /// Concurrent checkouts over HTTP against a fresh store, and the raw-database baseline.
    Checkout {
        /// Run against PostgreSQL (a fresh schema) instead of a fresh SQLite file.
        #[arg(long)]
        database_url: Option<String>,
        #[arg(long, default_value_t = 10)]
        duration_s: u64,
        #[arg(long, default_value_t = 64)]
        concurrency: usize,
        /// Rate of the fixed-rate (open loop) phase.
        #[arg(long, default_value_t = 1000)]
        rate_per_s: u32,
        #[arg(long, default_value_t = 5000)]
        baseline_checkouts: usize,
    },
    /// The inline rule check per listing, and the audit chain's seal and verify rates.
    Oversight {
        /// Run against PostgreSQL (a fresh schema) instead of a fresh SQLite file.
        #[arg(long)]
        database_url: Option<String>,
        #[arg(long, default_value_t = 200_000)]
        entries: usize,
        /// Orders written for the transaction report (0 skips it).
        #[arg(long, default_value_t = 0)]
        orders: usize,
    },
    /// Ledger transfers/s in process, batched, and the raw baseline of the same writes.
    Ledger {
        /// Run against PostgreSQL (a fresh schema) instead of a fresh SQLite file.
        #[arg(long)]
        database_url: Option<String>,
        #[arg(long, default_value_t = 200_000)]
        transfers: usize,
        #[arg(long, default_value_t = 8_190)]
        batch: usize,
        #[arg(long, default_value_t = 1_000)]
        accounts: usize,
    },
    /// What the gateway of /social/v1 adds to a read and a write, against the core's own routes.
    Gateway {
        /// Run against PostgreSQL (fresh schemas) instead of fresh SQLite files.
        #[arg(long)]
        database_url: Option<String>,
        /// The legacy store's PostgreSQL server (default: beside the core store).
        #[arg(long)]
        legacy_database_url: Option<String>,
        /// Length of each phase (one route, one load shape).
        #[arg(long, default_value_t = 5)]
        duration_s: u64,
        /// Workers of the closed loop (saturation).
        #[arg(long, default_value_t = 32)]
        concurrency: usize,
        /// Rate of the fixed-rate (open loop) phase.
        #[arg(long, alias = "rate", default_value_t = 200)]
        rate_per_s: u32,
    },
    /// The live migration on a fresh seed: rows/s copied, transformed and verified against the
    /// database copying the same rows alone, cutover pauses, live latency with and without.
    Migrate {
        /// Run against PostgreSQL (fresh schemas) instead of fresh SQLite files.
        #[arg(long)]
        database_url: Option<String>,
        #[arg(long, default_value_t = 500)]
        merchants: u64,
        #[arg(long, default_value_t = 0.01)]
        defect_rate: f64,
        #[arg(long, default_value_t = 4)]
        parallel: usize,
        #[arg(long, default_value_t = 500)]
        batch_rows: usize,
        /// Calls per second of the live load through the gateway.
        #[arg(long, default_value_t = 100)]
        rate_per_s: u32,
        /// Seconds of live load measured before the migration starts.
        #[arg(long, default_value_t = 10)]
        quiet_s: u64,
    },
}

fn main() -> ExitCode {
    match run() {
        Ok(()) => ExitCode::SUCCESS,
        Err(error) => {
            eprintln!("error: {error:#}");
            ExitCode::FAILURE
        }
    }
}

fn run() -> anyhow::Result<()> {
    let cli = Cli::parse();
    let runtime = tokio::runtime::Builder::new_multi_thread().enable_all().build()?;
    runtime.block_on(async move {
        match cli.command {
            Command::Serve { store, listen } => {
                let config = load_config(&store, listen)?;
                init_tracing(&config.log);
                serve(config, false).await
            }
            Command::Up { store, listen } => {
                let config = load_config(&store, listen)?;
                init_tracing(&config.log);
                serve(config, true).await
            }
            Command::Token { command: TokenCommand::Issue { store, role, merchant, channel, label } } => {
                let config = load_config(&store, None)?;
                let subject = subject(&role, merchant.as_deref(), channel.as_deref())?;
                let core = open_core(&config).await?;
                let (secret, _) = core.issue_token(&Principal::Operator, subject, &label).await?;
                println!("{secret}");
                Ok(())
            }
            Command::Check { store, journal } => {
                let config = load_config(&store, None)?;
                let core = open_core(&config).await?;
                let violations = jembatan_sim::invariants::check(core.store()).await?;
                for v in &violations {
                    println!("violated: {}: {}", v.invariant, v.detail);
                }
                let mut problems = 0;
                if let Some(journal) = journal {
                    let entries = jembatan_sim::load::read_journal(&read_text(&journal)?)?;
                    let gateway = migrate::open_gateway(&store).await?;
                    let found = jembatan_sim::load::check_journal(&gateway, &entries).await?;
                    for problem in &found {
                        println!("journal: {problem}");
                    }
                    problems = found.len();
                    if problems == 0 {
                        println!(
                            "every acknowledged write of the journal is there, once ({} entries)",
                            entries.len()
                        );
                    }
                }
                anyhow::ensure!(violations.is_empty(), "{} invariant violations", violations.len());
                anyhow::ensure!(problems == 0, "{problems} journal problems");
                println!("all invariants hold");
                Ok(())
            }
            Command::Load { store, url, rate, duration, journal, shops } => {
                init_tracing("warn");
                let config = load_config(&store, None)?;
                let gateway = migrate::open_gateway(&store).await?;
                let plan = jembatan_sim::load::prepare(gateway.core(), gateway.legacy(), shops).await?;
                let file = std::fs::OpenOptions::new()
                    .create(true)
                    .append(true)
                    .open(&journal)
                    .with_context(|| format!("cannot open the journal {}", journal.display()))?;
                let options = jembatan_sim::load::LoadOptions {
                    url: url.unwrap_or_else(|| format!("http://{}", config.listen)),
                    rate_per_s: rate.max(1),
                    duration: std::time::Duration::from_secs(duration),
                    provider_secret: config.provider_secret()?,
                    shops_max: shops,
                };
                let report = jembatan_sim::load::run(options, plan, Box::new(file)).await?;
                print!("{}", report.render());
                println!("journal: {}", journal.display());
                Ok(())
            }
            Command::Provider { command: ProviderCommand::Pay { store, payment_id, url, amount } } => {
                let config = load_config(&store, None)?;
                provider_pay(&config, &payment_id, url, amount).await
            }
            Command::Payouts { command: PayoutsCommand::Batch { store, out } } => {
                let config = load_config(&store, None)?;
                let core = open_core(&config).await?;
                payouts_batch(&core, out.as_deref()).await
            }
            Command::Payouts { command: PayoutsCommand::Confirm { store, file } } => {
                let config = load_config(&store, None)?;
                let text = read_text(&file)?;
                let lines = jembatan_domain::payout::parse_result_file(&text)?;
                let core = open_core(&config).await?;
                let results = core.apply_payout_results(&Principal::Operator, lines, None).await?;
                let summary = jembatan_api::wire::PayoutResultsResponse::new(&results);
                for line in &summary.lines {
                    let what = line.status.as_deref().or(line.detail.as_deref()).unwrap_or("");
                    println!("line {:<5} {}  {:<10} {what}", line.line, line.payout_id, line.outcome);
                }
                println!(
                    "applied {}, unchanged {}, refused {}",
                    summary.applied, summary.unchanged, summary.refused
                );
                anyhow::ensure!(summary.refused == 0, "{} lines were refused", summary.refused);
                Ok(())
            }
            Command::Reconcile { store, file, json } => {
                let config = load_config(&store, None)?;
                let text = read_text(&file)?;
                let report = jembatan_domain::reconcile::parse_report(&text)?;
                let core = open_core(&config).await?;
                let run = core.reconcile(&Principal::Operator, report, None).await?;
                let wire = jembatan_api::wire::ReconciliationResponse::from(&run);
                if json {
                    println!("{}", serde_json::to_string_pretty(&wire)?);
                } else {
                    print_reconciliation(&wire);
                }
                anyhow::ensure!(wire.clean, "the report does not match the ledger");
                Ok(())
            }
            Command::Seed { store, merchants, seed, defect_rate, load_path } => {
                init_tracing("warn");
                let config = load_config(&store, None)?;
                let mut options = jembatan_sim::seed::SeedOptions::new(merchants, seed, defect_rate);
                options.load_path = jembatan_sim::seed::LoadPath::parse(&load_path)?;
                seed_legacy(&config, options).await
            }
            Command::Bench {
                command:
                    BenchCommand::Migrate {
                        database_url,
                        merchants,
                        defect_rate,
                        parallel,
                        batch_rows,
                        rate_per_s,
                        quiet_s,
                    },
            } => {
                init_tracing("warn");
                let options = jembatan_sim::bench_migrate::MigrateBenchOptions {
                    database_url,
                    merchants,
                    defect_rate,
                    parallel,
                    batch_rows,
                    load_rate_per_s: rate_per_s,
                    quiet: std::time::Duration::from_secs(quiet_s),
                };
                let report = jembatan_sim::bench_migrate::migrate(&options).await?;
                print!("{}", report.render());
                Ok(())
            }
            Command::Oversight { command } => {
                init_tracing("warn");
                oversight::run(command).await
            }
            Command::Audit { command } => {
                init_tracing("warn");
                audit::run(command).await
            }
            Command::Migrate { command } => {
                init_tracing("warn");
                migrate::run(command).await
            }
            Command::Openapi => {
                print!("{}", jembatan_api::openapi_json());
                Ok(())
            }
            Command::Bench {
                command:
                    BenchCommand::Checkout {
                        database_url,
                        duration_s,
                        concurrency,
                        rate_per_s,
                        baseline_checkouts,
                    },
            } => {
                init_tracing("warn");
                let options = jembatan_sim::bench::BenchOptions {
                    database_url,
                    duration_s,
                    concurrency,
                    rate_per_s,
                    baseline_checkouts,
                    ..Default::default()
                };
                let report = jembatan_sim::bench::checkout(&options).await?;
                print!("{}", report.render(&options));
                Ok(())
            }
            Command::Bench { command: BenchCommand::Oversight { database_url, entries, orders } } => {
                init_tracing("warn");
                let options =
                    jembatan_sim::bench_oversight::OversightBenchOptions { database_url, entries, orders };
                let report = jembatan_sim::bench_oversight::oversight(&options).await?;
                print!("{}", report.render());
                Ok(())
            }
            Command::Bench { command: BenchCommand::Ledger { database_url, transfers, batch, accounts } } => {
                init_tracing("warn");
                anyhow::ensure!((1..=8_190).contains(&batch), "--batch must be between 1 and 8190");
                anyhow::ensure!(accounts >= 2, "--accounts must be at least 2");
                let options = jembatan_sim::bench_ledger::LedgerBenchOptions {
                    database_url,
                    transfers,
                    batch,
                    accounts,
                };
                let report = jembatan_sim::bench_ledger::ledger(&options).await?;
                print!("{}", report.render(&options));
                Ok(())
            }
            Command::Bench {
                command:
                    BenchCommand::Gateway {
                        database_url,
                        legacy_database_url,
                        duration_s,
                        concurrency,
                        rate_per_s,
                    },
            } => {
                init_tracing("warn");
                let options = jembatan_sim::bench_gateway::GatewayBenchOptions {
                    database_url,
                    legacy_database_url,
                    phase: std::time::Duration::from_secs(duration_s),
                    concurrency,
                    rate_per_s,
                    ..Default::default()
                };
                let report = jembatan_sim::bench_gateway::gateway(&options).await?;
                print!("{}", report.render(&options));
                anyhow::ensure!(report.errors() == 0, "{} requests did not answer 200", report.errors());
                Ok(())
            }
        }
    })
}

/// Reads a file the operator named, saying which one on failure.
fn read_text(path: &std::path::Path) -> anyhow::Result<String> {
    std::fs::read_to_string(path).with_context(|| format!("cannot read {}", path.display()))
}

/// `jembatan seed`: fills an empty legacy store, with a progress bar on a terminal.
async fn seed_legacy(
    config: &config::Config,
    options: jembatan_sim::seed::SeedOptions,
) -> anyhow::Result<()> {
    options.validate()?;
    if config.legacy_database_url.is_none() {
        std::fs::create_dir_all(&config.data_dir)
            .with_context(|| format!("cannot create data directory {}", config.data_dir.display()))?;
    }
    let store = jembatan_store::LegacyStore::open(config.legacy_store_options())
        .await
        .context("opening the legacy store")?;
    let bar = if std::io::IsTerminal::is_terminal(&std::io::stderr()) {
        indicatif::ProgressBar::new(options.merchants)
    } else {
        indicatif::ProgressBar::hidden()
    };
    bar.set_style(
        indicatif::ProgressStyle::with_template(
            "{elapsed_precise} [{bar:40}] {pos}/{len} merchants, {msg} ({eta} left)",
        )?
        .progress_chars("=> "),
    );
    let started = std::time::Instant::now();
    let report = jembatan_sim::seed::seed(&store, &options, |progress| {
        bar.set_position(progress.merchants_done);
        let rate = progress.rows_written as f64 / started.elapsed().as_secs_f64().max(1e-9);
        bar.set_message(format!("{} rows, {rate:.0} rows/s", progress.rows_written));
    })
    .await;
    bar.finish_and_clear();
    print!("{}", report?.render(&options));
    Ok(())
}

async fn payouts_batch(core: &Core, out: Option<&std::path::Path>) -> anyhow::Result<()> {
    use jembatan_core::CoreError;
    use jembatan_domain::DomainError;
    use jembatan_store::StoreError;
    let batch = match core.create_payout_batch(&Principal::Operator, None).await {
        Ok(batch) => batch,
        // Nothing waiting is not a failure of a scheduled export: say so and write no file.
        Err(CoreError::Store(StoreError::Domain(DomainError::PayoutConflict(reason)))) => {
            eprintln!("{reason}");
            return Ok(());
        }
        Err(other) => return Err(other.into()),
    };
    let summary =
        format!("batch {}: {} payouts, Rp{} in total", batch.id, batch.payouts.len(), batch.total.rupiah());
    match out {
        Some(path) => {
            std::fs::write(path, batch.file()).with_context(|| format!("cannot write {}", path.display()))?;
            println!("{summary}, written to {}", path.display());
        }
        None => {
            print!("{}", batch.file());
            eprintln!("{summary}");
        }
    }
    Ok(())
}

fn print_reconciliation(run: &jembatan_api::wire::ReconciliationResponse) {
    let amount = |a: Option<i64>| a.map_or_else(|| "-".to_owned(), |a| a.to_string());
    println!(
        "reconciliation {}  period {} .. {}  lines {}",
        run.id, run.period_from, run.period_to, run.lines
    );
    println!(
        "{:<20} {:<8} {:<40} {:>15} {:>15} {:>6}",
        "outcome", "type", "reference", "report", "ledger", "line"
    );
    for item in &run.items {
        println!(
            "{:<20} {:<8} {:<40} {:>15} {:>15} {:>6}",
            item.outcome,
            item.kind,
            item.reference,
            amount(item.report_amount),
            amount(item.ledger_amount),
            item.line.map_or_else(|| "-".to_owned(), |l| l.to_string())
        );
    }
    let s = &run.summary;
    println!(
        "matched {}, missing in ledger {}, missing in report {}, amount mismatch {}, duplicate in report {}",
        s.matched, s.missing_in_ledger, s.missing_in_report, s.amount_mismatch, s.duplicate_in_report
    );
}

/// `jembatan migrate plan`: parses the selection (a bad one names its term), plans or previews
/// the wave over both stores, prints the report.
pub(crate) async fn migrate_plan(
    config: &config::Config,
    wave: String,
    select: &str,
    limit: Option<u64>,
    dry_run: bool,
    json: bool,
) -> anyhow::Result<()> {
    let selection = jembatan_domain::migration::Selection::parse(select)?;
    let core = open_core(config).await?;
    let legacy = jembatan_store::LegacyStore::open(config.legacy_store_options())
        .await
        .context("opening the social shop's legacy store")?;
    let request = jembatan_core::migrate::PlanRequest { wave, selection, merchants_limit: limit, dry_run };
    let report = jembatan_core::migrate::plan(&core, &legacy, &Principal::Operator, request).await?;
    let wire = jembatan_api::migration::PlanReportWire::from(&report);
    if json {
        println!("{}", serde_json::to_string_pretty(&wire)?);
    } else {
        print_plan(&wire);
    }
    Ok(())
}

fn print_plan(plan: &jembatan_api::migration::PlanReportWire) {
    let limit = plan.limit.map_or_else(|| "none".to_owned(), thousands);
    let what = if plan.dry_run { "dry run, nothing written" } else { "planned" };
    println!("wave {} ({what}): selection `{}`, limit {limit}", plan.wave, plan.selection);
    let planned = if plan.dry_run { "would be planned" } else { "planned now" };
    println!(
        "matched {} shops: {} merchants {planned}, {} skipped",
        thousands(plan.matched),
        thousands(plan.merchants),
        thousands(plan.skipped_total)
    );
    let sizes = &plan.sizes;
    for (label, n) in [
        ("merchants", plan.merchants),
        ("products", sizes.products),
        ("skus", sizes.skus),
        ("orders", sizes.orders),
        ("order items", sizes.order_items),
        ("rows", sizes.rows),
    ] {
        println!("  {label:<12} {:>20}", thousands(n));
    }
    let gmv = u64::try_from(sizes.gmv.amount).unwrap_or_default();
    println!("  {:<12} {:>20}", "GMV", format!("Rp{}", thousands(gmv)));
    println!("defects: {} in all", thousands(plan.defects_total));
    for d in &plan.defects {
        println!("  {:<8} {:<24} {:>10}", d.entity, d.kind, thousands(d.count));
    }
    if !plan.skipped_by_code.is_empty() {
        println!("skipped:");
        for s in &plan.skipped_by_code {
            println!("  {:<33} {:>10}", s.code, thousands(s.shops));
        }
    }
    if !plan.defect_examples.is_empty() || !plan.skipped.is_empty() {
        println!("examples:");
    }
    for d in plan.defect_examples.iter().take(PRINTED_EXAMPLES_MAX) {
        println!("  {} {} {} `{}` ({}): {}", d.entity, d.entity_id, d.field, d.raw, d.kind, d.reason);
    }
    for s in plan.skipped.iter().take(PRINTED_EXAMPLES_MAX) {
        println!("  shop {} skipped ({}): {}", s.shop_id, s.code, s.reason);
    }
}

/// Defects and skipped shops printed as examples by `migrate plan` (of each; `--json` has more).
const PRINTED_EXAMPLES_MAX: usize = 10;

/// `1234567` → `1,234,567`.
fn thousands(n: u64) -> String {
    jembatan_domain::money::group_digits(n, ',')
}

pub(crate) fn load_config(flags: &StoreFlags, listen: Option<String>) -> anyhow::Result<config::Config> {
    let overrides = config::Overrides {
        listen,
        data_dir: flags.data_dir.clone(),
        database_url: flags.database_url.clone(),
        legacy_database_url: flags.legacy_database_url.clone(),
    };
    config::load(flags.config.as_deref(), &overrides)
}

fn init_tracing(filter: &str) {
    let filter = tracing_subscriber::EnvFilter::try_from_env("RUST_LOG")
        .unwrap_or_else(|_| tracing_subscriber::EnvFilter::new(filter));
    let _ = tracing_subscriber::fmt()
        .with_env_filter(filter)
        .with_writer(std::io::stderr)
        .with_ansi(std::io::IsTerminal::is_terminal(&std::io::stderr()))
        .try_init();
}

fn subject(role: &str, merchant: Option<&str>, channel: Option<&str>) -> anyhow::Result<Principal> {
    let role = Role::parse(role)?;
    let principal = match (role, merchant, channel) {
        (Role::Merchant, Some(m), None) => Principal::Merchant(MerchantId::parse(m)?),
        (Role::Merchant, _, _) => {
            anyhow::bail!("a merchant token needs --merchant MERCHANT_ID (and no --channel)")
        }
        (Role::Channel, None, Some(c)) => Principal::Channel(Channel::parse(c)?),
        (Role::Channel, _, _) => {
            anyhow::bail!("a channel token needs --channel social|marketplace (and no --merchant)")
        }
        (_, Some(_), _) | (_, _, Some(_)) => {
            anyhow::bail!("--merchant and --channel only apply to merchant and channel tokens")
        }
        (Role::Operator, ..) => Principal::Operator,
        (Role::Regulator, ..) => Principal::Regulator,
        (Role::Provider, ..) => Principal::Provider,
    };
    Ok(principal)
}

pub(crate) async fn open_core(config: &config::Config) -> anyhow::Result<Core> {
    if config.database_url.is_none() {
        std::fs::create_dir_all(&config.data_dir)
            .with_context(|| format!("cannot create data directory {}", config.data_dir.display()))?;
    }
    let store = jembatan_store::Store::open(config.store_options()).await.context("opening the store")?;
    let secret = config.provider_secret()?;
    Ok(Core::with_simulator(store, Arc::new(SystemClock), secret, config.payment_settings())
        .with_webhook_options(config.webhooks()))
}

/// `jembatan provider pay`: asks the server's provider simulator, with a request signed by the
/// provider secret, to send the signed "paid" callback for a payment; prints the core's answer.
async fn provider_pay(
    config: &config::Config,
    payment_id: &str,
    url: Option<String>,
    amount: Option<i64>,
) -> anyhow::Result<()> {
    let base = url.unwrap_or_else(|| format!("http://{}", config.listen));
    let secret = config.provider_secret()?;
    let body = match amount {
        Some(amount) => serde_json::json!({ "amount": amount }).to_string(),
        None => "{}".to_owned(),
    };
    let now = std::time::SystemTime::now().duration_since(std::time::UNIX_EPOCH)?.as_secs().to_string();
    let message = jembatan_core::payments::simulator_request_message(payment_id, body.as_bytes());
    let signature = jembatan_core::payments::sign(&secret, &now, &message);
    let target = format!("{}/v1/provider-sim/payments/{payment_id}/pay", base.trim_end_matches('/'));
    let (status, answer) = jembatan_core::payments::send_callback(&target, &now, &signature, body)
        .await
        .map_err(|e| anyhow::anyhow!("cannot reach the server: {e}"))?;
    println!("{answer}");
    anyhow::ensure!((200..300).contains(&status), "the core answered {status}");
    Ok(())
}

async fn serve(config: config::Config, demo: bool) -> anyhow::Result<()> {
    let core = open_core(&config).await?;
    let listener = tokio::net::TcpListener::bind(&config.listen)
        .await
        .with_context(|| format!("cannot listen on {}", config.listen))?;
    let url = format!("http://{}", listener.local_addr()?);
    if demo {
        let fresh = core.store().merchants(None, 1).await?.is_empty();
        if fresh {
            let summary = jembatan_sim::demo::seed(&core).await.context("seeding the demo shop")?;
            let mut tokens = Vec::new();
            for (label, subject) in [
                ("operator", Principal::Operator),
                ("channel social", Principal::Channel(Channel::Social)),
                ("channel marketplace", Principal::Channel(Channel::Marketplace)),
                ("regulator", Principal::Regulator),
                ("provider", Principal::Provider),
                (summary.merchants[0].1.as_str(), Principal::Merchant(summary.merchants[0].0)),
            ] {
                let (secret, _) =
                    core.issue_token(&Principal::Operator, subject, &format!("demo {label}")).await?;
                tokens.push((label.to_owned(), secret));
            }
            println!("Demo shop created in {}:", config.data_dir.display());
            for (id, name) in &summary.merchants {
                println!("  merchant {id}  {name}");
            }
            let states: Vec<String> =
                summary.orders_by_status.iter().map(|(s, n)| format!("{n} {s}")).collect();
            println!("  orders: {}", states.join(", "));
            if let Some(payment) = summary.unpaid_payments.first() {
                println!(
                    "  pay an unpaid checkout as its buyer would: jembatan provider pay {payment} --data-dir {}",
                    config.data_dir.display()
                );
            }
            println!("Demo tokens (shown once; stored only as hashes):");
            for (label, secret) in &tokens {
                println!("  {label:<28} {secret}");
            }
        }
        let data_dir = config.data_dir.display();
        println!("Jembatan is serving at {url}");
        println!(
            "  try: curl -H 'Authorization: Bearer <operator token>' {url}/v1/merchants/<merchant id>/orders"
        );
        println!("  API document: {url}/openapi.json   health: {url}/healthz   metrics: {url}/metrics");
        println!("  more tokens: jembatan token issue --data-dir {data_dir} --role operator");
    } else {
        tracing::info!(%url, backend = ?core.store().backend(), "serving");
    }
    let maintenance = tokio::spawn(core.clone().run_maintenance(config.maintenance()));
    let sweep_interval = std::time::Duration::from_millis(config.payments.sweep_interval_ms);
    let sweeps = tokio::spawn(core.clone().run_payment_sweeps(sweep_interval));
    // Webhooks leave from the outbox in the background; a delivery cut short by the shutdown
    // is sent again after its lease ends (at least once).
    let webhooks = tokio::spawn(core.clone().run_webhooks());
    let legacy = jembatan_store::LegacyStore::open(config.legacy_store_options())
        .await
        .context("opening the social shop's legacy store")?;
    let gateway = jembatan_core::gateway::Gateway::new(core.clone(), legacy, config.gateway_options()?);
    let sync_interval = std::time::Duration::from_millis(config.social.sync_interval_ms);
    let legacy_sync =
        tokio::spawn(gateway.clone().run_legacy_sync(sync_interval, std::time::Duration::from_secs(5)));
    // Cut-over merchants' core writes flow back to the legacy store until they are finalized.
    let reverse_sync = tokio::spawn(
        jembatan_core::migrate::Engine::new(
            gateway.clone(),
            jembatan_core::migrate::EngineOptions::default(),
        )
        .run_reverse_sync(sync_interval),
    );
    // The audit chain: entries sealed every second, each ended day's digest signed.
    let audit_key = config.audit_signing_key()?;
    let audit_public_key = jembatan_domain::audit::public_key_hex(&audit_key);
    let sealer = tokio::spawn(jembatan_core::audit::run_sealer(
        core.store().clone(),
        audit_key,
        std::time::Duration::from_secs(1),
        core.clock().clone(),
    ));
    let state = jembatan_api::AppState::new(core, config.api_limits())
        .with_gateway(gateway)
        .with_audit_public_key(audit_public_key)
        .with_policy(config.policy()?);
    jembatan_api::serve(listener, state, shutdown_signal()).await?;
    sealer.abort();
    maintenance.abort();
    legacy_sync.abort();
    reverse_sync.abort();
    sweeps.abort();
    webhooks.abort();
    Ok(())
}

async fn shutdown_signal() {
    let ctrl_c = async {
        let _ = tokio::signal::ctrl_c().await;
    };
    #[cfg(unix)]
    let terminate = async {
        if let Ok(mut signal) = tokio::signal::unix::signal(tokio::signal::unix::SignalKind::terminate()) {
            signal.recv().await;
        }
    };
    #[cfg(not(unix))]
    let terminate = std::future::pending::<()>();
    tokio::select! { _ = ctrl_c => {}, _ = terminate => {} }
    tracing::info!("shutting down");
}
