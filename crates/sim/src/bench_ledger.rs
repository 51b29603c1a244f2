//! `jembatan bench ledger`: transfers/s through the store's ledger (in process, batched), and
//! in the same run the raw baseline — the same rows (one transfer row, two balance updates per
//! transfer) written by a minimal loop straight into the database, one transaction per batch.

use std::sync::Arc;
use std::time::Instant;

use jembatan_domain::ledger::{AccountFlags, AccountKind, NewTransfer, TransferKind};
use jembatan_domain::{AccountId, Money, Principal, Timestamp, TransferId, TypedId};
use jembatan_store::{Store, StoreOptions, WriteCtx, new_id};
use rand::rngs::StdRng;
use rand::{Rng, SeedableRng};

#[derive(Debug, Clone)]
pub struct LedgerBenchOptions {
    pub database_url: Option<String>,
    pub transfers: usize,
    pub batch: usize,
    pub accounts: usize,
}

impl Default for LedgerBenchOptions {
    fn default() -> Self {
        LedgerBenchOptions { database_url: None, transfers: 200_000, batch: 8_190, accounts: 1_000 }
    }
}

pub struct LedgerReport {
    pub backend: &'static str,
    pub per_s: f64,
    pub baseline_per_s: f64,
}

impl LedgerReport {
    pub fn render(&self, options: &LedgerBenchOptions) -> String {
        format!(
            "backend: {}\nledger, {} transfers in batches of {} over {} accounts: {:.0} transfers/s\n\
             baseline (raw {}, same rows, one transaction per batch): {:.0} transfers/s\n\
             ratio: {:.0}%\n",
            self.backend,
            options.transfers,
            options.batch,
            options.accounts,
            self.per_s,
            self.backend,
            self.baseline_per_s,
            100.0 * self.per_s / self.baseline_per_s.max(1.0)
        )
    }
}

async fn open(options: &LedgerBenchOptions, dir: &std::path::Path, prefix: &str) -> anyhow::Result<Store> {
    let store_options = match &options.database_url {
        Some(url) => StoreOptions::new(jembatan_store::testing::postgres_schema_url(url, prefix).await?),
        None => {
            let sub = dir.join(prefix);
            std::fs::create_dir_all(&sub)?;
            StoreOptions::sqlite_in(&sub)
        }
    };
    Ok(Store::open(store_options).await?)
}

async fn accounts(store: &Store, n: usize) -> anyhow::Result<Vec<AccountId>> {
    let ctx = WriteCtx { actor: Principal::Operator, now: Timestamp::from_unix_ms(0) };
    let mut ids = Vec::with_capacity(n);
    for _ in 0..n {
        let account = store
            .create_ledger_account(
                ctx.clone(),
                new_id(),
                AccountKind::MerchantBalance,
                None,
                AccountFlags::default(),
            )
            .await?;
        ids.push(account.id);
    }
    Ok(ids)
}

fn batch(rng: &mut StdRng, accounts: &[AccountId], size: usize) -> Vec<NewTransfer> {
    (0..size)
        .map(|_| {
            let debit = accounts[rng.random_range(0..accounts.len())];
            let mut credit = accounts[rng.random_range(0..accounts.len())];
            while credit == debit {
                credit = accounts[rng.random_range(0..accounts.len())];
            }
            NewTransfer {
                id: TransferId::from_uuid(uuid::Uuid::now_v7()),
                debit,
                credit,
                amount: Money::from_rupiah(rng.random_range(1_000..500_000)).expect("amount"),
                kind: TransferKind::Single,
                linked: false,
                code: 1,
            }
        })
        .collect()
}

pub async fn ledger(options: &LedgerBenchOptions) -> anyhow::Result<LedgerReport> {
    let dir = tempfile::tempdir()?;
    let store = open(options, dir.path(), "ledger").await?;
    let ids = accounts(&store, options.accounts).await?;
    let mut rng = StdRng::seed_from_u64(11);
    let batches: Vec<Vec<NewTransfer>> = (0..options.transfers.div_ceil(options.batch))
        .map(|_| batch(&mut rng, &ids, options.batch))
        .collect();
    let started = Instant::now();
    let mut done = 0;
    for (n, transfers) in batches.into_iter().enumerate() {
        let ctx = WriteCtx { actor: Principal::Operator, now: Timestamp::from_unix_ms(1_000 + n as i64) };
        let len = transfers.len();
        let results = store.create_transfers(ctx, transfers).await?;
        anyhow::ensure!(results.iter().all(|r| r.is_ok()), "a bench transfer was refused");
        done += len;
    }
    let per_s = done as f64 / started.elapsed().as_secs_f64();

    let baseline_store = open(options, dir.path(), "ledger_baseline").await?;
    let baseline_ids = accounts(&baseline_store, options.accounts).await?;
    let mut rng = StdRng::seed_from_u64(11);
    let batches: Vec<Vec<NewTransfer>> = (0..options.transfers.div_ceil(options.batch))
        .map(|_| batch(&mut rng, &baseline_ids, options.batch))
        .collect();
    let baseline_per_s = match &options.database_url {
        None => {
            let path = baseline_store.sqlite_path().expect("sqlite").to_owned();
            drop(baseline_store);
            tokio::task::spawn_blocking(move || baseline_sqlite(&path, batches)).await??
        }
        Some(_) => baseline_postgres(&baseline_store, batches).await?,
    };
    Ok(LedgerReport {
        backend: if options.database_url.is_some() { "postgresql" } else { "sqlite" },
        per_s,
        baseline_per_s,
    })
}

const INSERT: &str = "INSERT INTO ledger_transfers (transfer_id, debit_account_id, credit_account_id, amount_idr, amount_posted_idr, kind, pending_id, timeout_ms, post_amount_idr, linked, code, timestamp_ms) VALUES ($1, $2, $3, $4, $4, 'single', NULL, 0, NULL, 0, 1, $5)";
const DEBIT: &str = "UPDATE ledger_accounts SET debits_posted = debits_posted + $2 WHERE account_id = $1";
const CREDIT: &str = "UPDATE ledger_accounts SET credits_posted = credits_posted + $2 WHERE account_id = $1";

fn baseline_sqlite(path: &std::path::Path, batches: Vec<Vec<NewTransfer>>) -> anyhow::Result<f64> {
    let mut conn = rusqlite::Connection::open(path)?;
    conn.pragma_update(None, "journal_mode", "WAL")?;
    conn.pragma_update(None, "synchronous", "FULL")?;
    let started = Instant::now();
    let mut done = 0;
    for transfers in batches {
        let tx = conn.transaction_with_behavior(rusqlite::TransactionBehavior::Immediate)?;
        for t in &transfers {
            let (id, debit, credit) = (t.id.to_string(), t.debit.to_string(), t.credit.to_string());
            tx.prepare_cached(&INSERT.replace('$', "?"))?.execute(rusqlite::params![
                id,
                debit,
                credit,
                t.amount.rupiah(),
                0i64
            ])?;
            tx.prepare_cached(&DEBIT.replace('$', "?"))?
                .execute(rusqlite::params![debit, t.amount.rupiah()])?;
            tx.prepare_cached(&CREDIT.replace('$', "?"))?
                .execute(rusqlite::params![credit, t.amount.rupiah()])?;
        }
        tx.commit()?;
        done += transfers.len();
    }
    Ok(done as f64 / started.elapsed().as_secs_f64())
}

async fn baseline_postgres(store: &Store, batches: Vec<Vec<NewTransfer>>) -> anyhow::Result<f64> {
    let started = Instant::now();
    let mut done = 0;
    let batches = Arc::new(batches);
    for index in 0..batches.len() {
        let batches = batches.clone();
        let len = batches[index].len();
        // A unit is exactly a transaction on PostgreSQL: the same statements, nothing else.
        store
            .write(None, move |conn| {
                Box::pin(async move {
                    for t in &batches[index] {
                        jembatan_store::q(INSERT)
                            .bind(t.id.to_string())
                            .bind(t.debit.to_string())
                            .bind(t.credit.to_string())
                            .bind(t.amount.rupiah())
                            .bind(0i64)
                            .execute(&mut *conn)
                            .await?;
                        jembatan_store::q(DEBIT)
                            .bind(t.debit.to_string())
                            .bind(t.amount.rupiah())
                            .execute(&mut *conn)
                            .await?;
                        jembatan_store::q(CREDIT)
                            .bind(t.credit.to_string())
                            .bind(t.amount.rupiah())
                            .execute(&mut *conn)
                            .await?;
                    }
                    Ok(())
                })
            })
            .await?;
        done += len;
    }
    Ok(done as f64 / started.elapsed().as_secs_f64())
}
