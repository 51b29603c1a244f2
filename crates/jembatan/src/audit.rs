//! `jembatan audit …`: seal the audit chain, verify it, sign a day's digest, and verify a
//! digest with the platform's public key, as a regulator does (issue 6).

use std::path::PathBuf;

use anyhow::Context;
use clap::Subcommand;
use jembatan_core::audit::{seal_all, sign_digest, verify_chain, verify_digest};
use jembatan_domain::audit::{DigestBody, public_key_hex};
use jembatan_store::audit::DigestRecord;

use crate::{StoreFlags, load_config, open_core};

#[derive(Subcommand)]
pub enum AuditCommand {
    /// Seal every audit entry written so far onto the chain (`serve` does it every second).
    Seal {
        #[command(flatten)]
        store: StoreFlags,
    },
    /// Recompute the chain from its first entry; name the first entry that does not match (an
    /// edited, deleted or reordered row). Reads only. Exits non-zero on a break.
    Verify {
        #[command(flatten)]
        store: StoreFlags,
        #[arg(long)]
        json: bool,
    },
    /// Sign the chain's head as a day's digest with the platform's Ed25519 key
    /// (`<data-dir>/audit-signing-key`, created on first use). A day is signed once.
    Digest {
        #[command(flatten)]
        store: StoreFlags,
        /// The day (UTC, YYYY-MM-DD); today by default.
        #[arg(long)]
        day: Option<String>,
    },
    /// Print the platform's public key (hex), for the regulator.
    PublicKey {
        #[command(flatten)]
        store: StoreFlags,
    },
    /// Verify a digest against the chain as it is now, with a public key the regulator holds:
    /// fails if the signature is not that key's, or if the history was rewritten or cut after
    /// the digest was signed. Exits non-zero on failure.
    VerifyDigest {
        #[command(flatten)]
        store: StoreFlags,
        /// The stored digest of this day…
        #[arg(long, conflicts_with = "digest")]
        day: Option<String>,
        /// …or a digest as fetched from `GET /v1/oversight/audit/digests` (JSON file).
        #[arg(long)]
        digest: Option<PathBuf>,
        /// The public key (hex) to verify with.
        #[arg(long)]
        public_key: String,
    },
}

pub async fn run(command: AuditCommand) -> anyhow::Result<()> {
    match command {
        AuditCommand::Seal { store } => {
            let core = open_core(&load_config(&store, None)?).await?;
            let sealed = seal_all(core.store()).await?;
            let (seq, hash, _) = core.store().audit_head().await?;
            println!("sealed {sealed} entries; the chain has {seq}, head {hash}");
            Ok(())
        }
        AuditCommand::Verify { store, json } => {
            let core = open_core(&load_config(&store, None)?).await?;
            let started = std::time::Instant::now();
            let report = verify_chain(core.store(), None).await?;
            let seconds = started.elapsed().as_secs_f64();
            if json {
                println!(
                    "{}",
                    serde_json::json!({
                        "verified": report.verified,
                        "head_hash": report.head_hash,
                        "unsealed": report.unsealed,
                        "first_break": report.first_break.as_ref().map(|b| serde_json::json!({
                            "seq": b.seq(), "problem": b.describe(),
                        })),
                        "entries_per_s": (report.verified as f64 / seconds.max(1e-9)).round(),
                    })
                );
            } else {
                println!(
                    "verified {} entries in {:.3} s ({:.0} entries/s); head {}; {} not sealed yet",
                    report.verified,
                    seconds,
                    report.verified as f64 / seconds.max(1e-9),
                    report.head_hash,
                    report.unsealed
                );
                if let Some(found) = &report.first_break {
                    println!("BROKEN at entry {}: {}", found.seq(), found.describe());
                }
            }
            anyhow::ensure!(report.first_break.is_none(), "the audit chain does not verify");
            Ok(())
        }
        AuditCommand::Digest { store, day } => {
            let config = load_config(&store, None)?;
            let key = config.audit_signing_key()?;
            let core = open_core(&config).await?;
            let now = time::OffsetDateTime::now_utc();
            let day = match day {
                Some(day) => parse_day(&day)?,
                None => now.date().to_string(),
            };
            let digest =
                sign_digest(core.store(), &key, &day, (now.unix_timestamp_nanos() / 1_000_000) as i64)
                    .await?;
            println!("{}", serde_json::to_string_pretty(&digest_json(&digest))?);
            Ok(())
        }
        AuditCommand::PublicKey { store } => {
            let config = load_config(&store, None)?;
            println!("{}", public_key_hex(&config.audit_signing_key()?));
            Ok(())
        }
        AuditCommand::VerifyDigest { store, day, digest, public_key } => {
            let core = open_core(&load_config(&store, None)?).await?;
            let digest = match (day, digest) {
                (Some(day), _) => core
                    .store()
                    .audit_digest(&parse_day(&day)?)
                    .await?
                    .with_context(|| format!("no digest is stored for {day}"))?,
                (None, Some(path)) => {
                    let text = std::fs::read_to_string(&path)
                        .with_context(|| format!("cannot read {}", path.display()))?;
                    digest_from_json(&serde_json::from_str(&text).context("the digest file is not JSON")?)?
                }
                (None, None) => anyhow::bail!("give --day or --digest"),
            };
            match verify_digest(core.store(), &digest, public_key.trim()).await? {
                Ok(()) => {
                    println!(
                        "the digest of {} verifies: signed by this key, and the chain reaches {} at entry {}",
                        digest.body.day, digest.body.last_hash, digest.body.last_seq
                    );
                    Ok(())
                }
                Err(reason) => anyhow::bail!("the digest of {} does not verify: {reason}", digest.body.day),
            }
        }
    }
}

fn parse_day(day: &str) -> anyhow::Result<String> {
    Ok(jembatan_domain::time::parse_day("--day", day)?.to_string())
}

/// A digest as the API and the CLI print it.
pub fn digest_json(d: &DigestRecord) -> serde_json::Value {
    serde_json::json!({
        "day": d.body.day,
        "last_seq": d.body.last_seq,
        "last_hash": d.body.last_hash,
        "entries": d.body.entries,
        "public_key": d.public_key,
        "signature": d.signature,
        "signed_at_ms": d.signed_at_ms,
    })
}

fn digest_from_json(v: &serde_json::Value) -> anyhow::Result<DigestRecord> {
    let text = |k: &str| v[k].as_str().map(str::to_owned).with_context(|| format!("the digest has no `{k}`"));
    let int = |k: &str| v[k].as_i64().with_context(|| format!("the digest has no integer `{k}`"));
    Ok(DigestRecord {
        body: DigestBody {
            day: text("day")?,
            last_seq: int("last_seq")?,
            last_hash: text("last_hash")?,
            entries: int("entries")?,
        },
        public_key: text("public_key")?,
        signature: text("signature")?,
        signed_at_ms: int("signed_at_ms")?,
    })
}
