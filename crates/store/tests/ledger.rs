//! The ledger in the store against the domain's `Ledger` as a reference model, and under
//! concurrency; on SQLite, or PostgreSQL with `JEMBATAN_TEST_DATABASE_URL`.

use jembatan_domain::ledger::*;
use jembatan_domain::*;
use jembatan_store::testing::fresh_store;
use jembatan_store::{Store, WriteCtx, new_id};
use proptest::prelude::*;

fn ctx(now: Timestamp) -> WriteCtx {
    WriteCtx { actor: Principal::Operator, now }
}

/// Four accounts: provider clearing, escrow, a merchant balance (never below zero), fees.
async fn accounts(store: &Store, model: &mut Ledger) -> Vec<AccountId> {
    let mut ids = Vec::new();
    for kind in [
        AccountKind::ProviderClearing,
        AccountKind::Escrow,
        AccountKind::MerchantBalance,
        AccountKind::PlatformFeeRevenue,
    ] {
        let flags = AccountFlags {
            debits_must_not_exceed_credits: kind == AccountKind::MerchantBalance,
            ..Default::default()
        };
        let account = store
            .create_ledger_account(ctx(Timestamp::from_unix_ms(0)), new_id(), kind, None, flags)
            .await
            .unwrap();
        model.accounts.insert(account.id, account.clone());
        ids.push(account.id);
    }
    ids
}

#[derive(Debug, Clone)]
struct Spec {
    kind: u8,
    debit: usize,
    credit: usize,
    amount: i64,
    target: usize,
    linked: bool,
    timeout: i64,
}

fn spec() -> impl Strategy<Value = Spec> {
    (0u8..4, 0usize..4, 0usize..4, 0i64..4_000, 0usize..40, prop::bool::weighted(0.25), 0i64..3).prop_map(
        |(kind, debit, credit, amount, target, linked, timeout)| Spec {
            kind,
            debit,
            credit,
            amount,
            target,
            linked,
            timeout,
        },
    )
}

async fn run(batches: Vec<Vec<Spec>>) -> Result<(), TestCaseError> {
    let t = fresh_store().await.unwrap();
    let store = &t.store;
    let mut model = Ledger::default();
    let ids = accounts(store, &mut model).await;
    let mut issued: Vec<TransferId> = Vec::new();
    let mut now = Timestamp::from_unix_ms(1_000_000);
    for batch in batches {
        now = now.plus_ms(700);
        let transfers: Vec<NewTransfer> = batch
            .iter()
            .map(|s| {
                let reuse = s.target % 5 == 0 && !issued.is_empty();
                let id = if reuse { issued[s.target % issued.len()] } else { new_id() };
                let pending = if issued.is_empty() { new_id() } else { issued[s.target % issued.len()] };
                let kind = match s.kind {
                    0 => TransferKind::Single,
                    1 => TransferKind::Pending { timeout_ms: s.timeout * 1_000 },
                    2 => TransferKind::Post {
                        pending,
                        amount: (s.amount % 2 == 1).then(|| Money::from_rupiah(s.amount / 2).unwrap()),
                    },
                    _ => TransferKind::Void { pending },
                };
                let (debit, credit) = match kind {
                    TransferKind::Post { pending, .. } | TransferKind::Void { pending } => model
                        .transfers
                        .get(&pending)
                        .map_or((ids[s.debit], ids[s.credit]), |p| (p.new.debit, p.new.credit)),
                    _ => (ids[s.debit], ids[s.credit]),
                };
                issued.push(id);
                NewTransfer {
                    id,
                    debit,
                    credit,
                    amount: Money::from_rupiah(s.amount).unwrap(),
                    kind,
                    linked: s.linked,
                    code: 7,
                }
            })
            .collect();
        let want = model.create_transfers(&transfers, now);
        let got = store.create_transfers(ctx(now), transfers.clone()).await.unwrap();
        prop_assert_eq!(&got, &want, "batch {:?}", transfers);
        for id in &ids {
            let stored = store.ledger_account(*id).await.unwrap().unwrap();
            prop_assert_eq!(stored.balances, model.accounts[id].balances);
        }
        // Expiry: the store's maintenance and the model agree.
        let due = model.expired(now);
        for id in &due {
            model.expire(*id, now);
        }
        let expired = store.expire_pending_transfers(ctx(now), 1_000).await.unwrap();
        prop_assert_eq!(expired as usize, due.len());
    }
    Ok(())
}

proptest! {
    #![proptest_config(ProptestConfig { cases: 16, ..ProptestConfig::default() })]
    #[test]
    fn the_stored_ledger_follows_the_model(batches in prop::collection::vec(prop::collection::vec(spec(), 1..6), 1..10)) {
        let runtime = tokio::runtime::Runtime::new().unwrap();
        runtime.block_on(run(batches))?;
    }
}

/// Many tasks move money at once between a buyer-funded escrow and merchants whose balances
/// may not go below zero; afterwards every balance equals its transfers, debits equal credits,
/// and no merchant balance is negative.
#[tokio::test]
async fn concurrent_batches_keep_the_ledger_balanced() {
    let t = fresh_store().await.unwrap();
    let store = t.store.clone();
    let mut model = Ledger::default();
    let ids = accounts(&store, &mut model).await;
    let (provider, escrow, merchant, fees) = (ids[0], ids[1], ids[2], ids[3]);
    let mut tasks = Vec::new();
    for task in 0..8u32 {
        let store = store.clone();
        tasks.push(tokio::spawn(async move {
            let mut refused = 0;
            for i in 0..25u32 {
                let now = Timestamp::from_unix_ms(2_000_000 + i64::from(i));
                let amount = Money::from_rupiah(1_000 + i64::from(task * 25 + i)).unwrap();
                // Pay into escrow and release to the merchant and the fee account together.
                let hold = NewTransfer {
                    id: new_id(),
                    debit: provider,
                    credit: escrow,
                    amount,
                    kind: TransferKind::Single,
                    linked: true,
                    code: 1,
                };
                let fee = Money::from_rupiah(amount.rupiah() / 10).unwrap();
                let to_merchant = NewTransfer {
                    id: new_id(),
                    debit: escrow,
                    credit: merchant,
                    amount: amount.checked_sub(fee).unwrap(),
                    kind: TransferKind::Single,
                    linked: true,
                    code: 2,
                };
                let to_fees = NewTransfer {
                    id: new_id(),
                    debit: escrow,
                    credit: fees,
                    amount: fee,
                    kind: TransferKind::Single,
                    linked: false,
                    code: 3,
                };
                // And try to pay the merchant out more than it may have: some of these must fail.
                let payout = NewTransfer {
                    id: new_id(),
                    debit: merchant,
                    credit: provider,
                    amount: Money::from_rupiah(2_500).unwrap(),
                    kind: TransferKind::Single,
                    linked: false,
                    code: 4,
                };
                let results = store
                    .create_transfers(
                        WriteCtx { actor: Principal::Operator, now },
                        vec![hold, to_merchant, to_fees, payout],
                    )
                    .await
                    .unwrap();
                assert!(results[..3].iter().all(|r| r.is_ok()), "{results:?}");
                if results[3] == Err(TransferError::ExceedsCredits) {
                    refused += 1;
                }
            }
            refused
        }));
    }
    let mut refused = 0;
    for task in tasks {
        refused += task.await.unwrap();
    }
    let mut debits = 0;
    let mut credits = 0;
    for id in &ids {
        let b = store.ledger_account(*id).await.unwrap().unwrap().balances;
        debits += b.debits_posted + b.debits_pending;
        credits += b.credits_posted + b.credits_pending;
    }
    assert_eq!(debits, credits, "the ledger balances");
    let m = store.ledger_account(merchant).await.unwrap().unwrap().balances;
    assert!(m.credits_posted >= m.debits_posted, "the merchant balance never goes below zero: {m:?}");
    assert!(refused > 0, "some payouts had to be refused");
    assert!(refused < 200, "most payouts went through");
    let violations = balances_disagreeing_with_transfers(&store).await;
    assert!(violations.is_empty(), "{violations:?}");
}

/// Cached balances against the transfers, recomputed in SQL.
async fn balances_disagreeing_with_transfers(store: &Store) -> Vec<String> {
    store
        .read(|conn| {
            Box::pin(async move {
                let rows = jembatan_store::q(
                    "SELECT a.account_id AS id FROM ledger_accounts a
                     WHERE a.debits_posted <> (SELECT CAST(COALESCE(SUM(amount_posted_idr), 0) AS BIGINT) FROM ledger_transfers t WHERE t.debit_account_id = a.account_id)
                        OR a.credits_posted <> (SELECT CAST(COALESCE(SUM(amount_posted_idr), 0) AS BIGINT) FROM ledger_transfers t WHERE t.credit_account_id = a.account_id)",
                )
                .fetch_all(conn)
                .await?;
                Ok(rows.iter().map(|r| r.text("id").unwrap()).collect())
            })
        })
        .await
        .unwrap()
}
