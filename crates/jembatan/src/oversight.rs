//! `jembatan oversight …`: the compliance rules as loaded, the bulk scan, the findings.

use clap::Subcommand;
use jembatan_domain::Principal;

use crate::{StoreFlags, load_config, open_core};

#[derive(Subcommand)]
pub enum OversightCommand {
    /// Print the compliance rules in force (the built-in policy, or `policy_file`), each with
    /// the article it comes from and its severity.
    Rules {
        #[command(flatten)]
        store: StoreFlags,
    },
    /// Check everything the core holds against the rules; record findings (once per rule and
    /// entity). Exits zero whatever is found; prints the counts by rule.
    Scan {
        #[command(flatten)]
        store: StoreFlags,
        /// The day whose rates and lists apply (UTC, YYYY-MM-DD); today by default.
        #[arg(long)]
        day: Option<String>,
    },
    /// Transactions and GMV per WIB day, channel, merchant origin and province, as CSV.
    Report {
        #[command(flatten)]
        store: StoreFlags,
        /// First day (WIB, YYYY-MM-DD).
        #[arg(long)]
        from: String,
        /// Last day (WIB, YYYY-MM-DD), at most 366 days after `from`.
        #[arg(long)]
        to: String,
    },
    /// List findings, newest first.
    Findings {
        #[command(flatten)]
        store: StoreFlags,
        #[arg(long)]
        rule: Option<String>,
        #[arg(long)]
        merchant: Option<String>,
        #[arg(long, default_value_t = 50)]
        limit: u32,
    },
}

pub async fn run(command: OversightCommand) -> anyhow::Result<()> {
    match command {
        OversightCommand::Rules { store } => {
            let policy = load_config(&store, None)?.policy()?;
            for rule in policy.rules.values() {
                println!("{}  [{}]  {}  ({})", rule.id, rule.severity.as_str(), rule.title, rule.article);
                println!("    {}", rule.checks);
            }
            Ok(())
        }
        OversightCommand::Scan { store, day } => {
            let config = load_config(&store, None)?;
            let policy = config.policy()?;
            let core = open_core(&config).await?;
            let day = match day {
                Some(raw) => jembatan_domain::time::parse_day("--day", &raw)?,
                None => time::OffsetDateTime::now_utc().date(),
            };
            let started = std::time::Instant::now();
            let report = jembatan_core::oversight::scan(&core, &Principal::Operator, &policy, day).await?;
            println!(
                "scanned {} listings, {} unpaid social orders, {} shared profiles as of {day} in {:.2} s: {} new findings",
                report.listings,
                report.orders,
                report.profiles,
                started.elapsed().as_secs_f64(),
                report.new
            );
            for (rule, count) in &report.found {
                println!("  {rule}: {count}");
            }
            for (rule, why) in &report.not_checked {
                println!("  {rule} not checked: {why}");
            }
            Ok(())
        }
        OversightCommand::Report { store, from, to } => {
            let core = open_core(&load_config(&store, None)?).await?;
            let day = jembatan_domain::time::parse_day;
            let (from, to) = (day("--from", &from)?, day("--to", &to)?);
            let lines = jembatan_core::oversight::transactions(&core, &Principal::Operator, from, to).await?;
            println!("day,channel,merchant_origin,province,orders,gmv_idr");
            for l in lines {
                println!(
                    "{},{},{},{},{},{}",
                    jembatan_core::oversight::day_text(l.day),
                    l.channel,
                    l.origin,
                    jembatan_domain::csv::field(&l.province),
                    l.orders,
                    l.gmv_idr
                );
            }
            Ok(())
        }
        OversightCommand::Findings { store, rule, merchant, limit } => {
            let core = open_core(&load_config(&store, None)?).await?;
            for f in core.store().findings(merchant, rule, None, None, limit).await? {
                println!(
                    "{}  {}  {}  {} {}  merchant {}  {}",
                    f.id,
                    f.finding.rule_id,
                    f.state,
                    f.finding.entity_type,
                    f.finding.entity_id,
                    if f.finding.merchant_id.is_empty() { "-" } else { &f.finding.merchant_id },
                    f.finding.evidence
                );
            }
            Ok(())
        }
    }
}
