//! Payouts through the core and the store, on SQLite or PostgreSQL (with
//! `JEMBATAN_TEST_DATABASE_URL`): concurrent requests never take more than the balance, a
//! failed payout returns its money, a paid one reaches provider clearing, repeated answers
//! change nothing, and every invariant of the checker holds throughout.

use std::sync::Arc;

use jembatan_core::{Core, CoreError, NewMerchant, SystemClock};
use jembatan_domain::ledger::{AccountKind, NewTransfer, TransferKind, platform_account};
use jembatan_domain::payout::{
    AccountHolder, AccountNumber, BankAccount, BankCode, FailureReason, PayoutOutcome, PayoutStatus,
    ResultLine, payout_amount,
};
use jembatan_domain::{
    DomainError, MerchantId, MerchantName, Money, Origin, PayoutId, Principal, Province, Timestamp,
    TransferId,
};
use jembatan_sim::invariants;
use jembatan_store::payouts::{LineOutcome, NewPayout};
use jembatan_store::{StoreError, WriteCtx, new_id};

const FUNDED_RUPIAH: i64 = 1_000_000;
const PAYOUT_RUPIAH: i64 = 70_000;
const REQUESTS: usize = 40;

fn account() -> BankAccount {
    BankAccount {
        bank_code: BankCode::parse("014").unwrap(),
        account_number: AccountNumber::parse("1234567890").unwrap(),
        holder: AccountHolder::parse("Siti Rahayu").unwrap(),
    }
}

fn payout_of(merchant_id: MerchantId, rupiah: i64) -> NewPayout {
    NewPayout { merchant_id, amount: payout_amount(rupiah).unwrap(), account: account() }
}

/// A merchant whose balance holds `FUNDED_RUPIAH`, credited straight from provider clearing.
async fn funded_merchant(core: &Core) -> MerchantId {
    let input = NewMerchant {
        name: MerchantName::parse("Toko Batik Sari").unwrap(),
        origin: Origin::Local,
        province: Province::parse("Jawa Barat").unwrap(),
        nib: Some(jembatan_domain::Nib::parse("9120001234567").unwrap()),
    };
    let merchant = core.create_merchant(&Principal::Operator, input, None).await.unwrap();
    let credit = NewTransfer {
        id: new_id::<TransferId>(),
        debit: platform_account(AccountKind::ProviderClearing),
        credit: jembatan_domain::ledger::merchant_balance_account(merchant.id),
        amount: Money::from_rupiah(FUNDED_RUPIAH).unwrap(),
        kind: TransferKind::Single,
        linked: false,
        code: 3,
    };
    let ctx = WriteCtx { actor: Principal::Operator, now: Timestamp::from_unix_ms(1) };
    let results = core.store().create_transfers(ctx, vec![credit]).await.unwrap();
    assert!(results[0].is_ok(), "{results:?}");
    merchant.id
}

async fn assert_invariants(core: &Core, when: &str) {
    let violations = invariants::check(core.store()).await.unwrap();
    assert!(violations.is_empty(), "{when}: {violations:?}");
}

#[tokio::test(flavor = "multi_thread", worker_threads = 4)]
async fn concurrent_payouts_never_exceed_the_balance_and_confirmations_move_the_money_once() {
    let t = jembatan_store::testing::fresh_store().await.unwrap();
    let core = Core::new(t.store.clone(), Arc::new(SystemClock));
    let merchant_id = funded_merchant(&core).await;
    let merchant = Principal::Merchant(merchant_id);

    // Many tasks ask at once for more than the balance holds in total.
    let tasks: Vec<_> = (0..REQUESTS)
        .map(|_| {
            let (core, merchant) = (core.clone(), merchant.clone());
            tokio::spawn(async move {
                core.request_payout(&merchant, payout_of(merchant_id, PAYOUT_RUPIAH), None).await
            })
        })
        .collect();
    let mut granted = Vec::new();
    for task in tasks {
        match task.await.unwrap() {
            Ok(payout) => granted.push(payout),
            Err(CoreError::Store(StoreError::Domain(DomainError::InsufficientBalance {
                available,
                requested,
            }))) => {
                assert!(available < requested, "refused with Rp{available} available for Rp{requested}");
            }
            Err(other) => panic!("unexpected refusal: {other:?}"),
        }
    }
    let fits = (FUNDED_RUPIAH / PAYOUT_RUPIAH) as usize;
    assert_eq!(granted.len(), fits, "every payout that fits is granted, and no more");
    let held: i64 = granted.iter().map(|p| p.amount.rupiah()).sum();
    assert!(held <= FUNDED_RUPIAH);
    let balance = core.merchant_balance(&merchant, merchant_id).await.unwrap();
    assert_eq!(balance.available.rupiah(), FUNDED_RUPIAH - held);
    assert_eq!(balance.pending_payouts.rupiah(), held);
    assert_eq!(balance.paid_out_total, Money::ZERO);
    let listed = core.payouts_of_merchant(&merchant, merchant_id, None, 100).await.unwrap();
    assert_eq!(listed.len(), fits, "refused requests left no payout behind");
    assert_invariants(&core, "after the requests").await;

    // The operator exports them all in one batch; a second batch finds nothing to export.
    let batch = core.create_payout_batch(&Principal::Operator, None).await.unwrap();
    assert_eq!(batch.payouts.len(), fits);
    assert_eq!(batch.total.rupiah(), held);
    assert!(batch.payouts.iter().all(|p| p.status == PayoutStatus::Exported && p.batch_id == Some(batch.id)));
    let again = core.create_payout_batch(&Principal::Operator, None).await;
    assert!(matches!(again, Err(CoreError::Store(StoreError::Domain(DomainError::PayoutConflict(_))))));
    let file = core.payout_batch(&Principal::Operator, batch.id).await.unwrap().file();
    assert_eq!(file.lines().count(), fits + 1, "{file}");

    // The bank pays all but four; those fail and their money returns.
    let failed_count = 4;
    let reason = FailureReason::parse("rekening tidak aktif").unwrap();
    for (i, payout) in batch.payouts.iter().enumerate() {
        let outcome =
            if i < failed_count { PayoutOutcome::Failed(reason.clone()) } else { PayoutOutcome::Paid };
        let confirmed = core.confirm_payout(&Principal::Operator, payout.id, outcome, None).await.unwrap();
        assert!(confirmed.changed);
    }
    let paid_total = PAYOUT_RUPIAH * (fits - failed_count) as i64;
    let balance = core.merchant_balance(&merchant, merchant_id).await.unwrap();
    assert_eq!(balance.available.rupiah(), FUNDED_RUPIAH - paid_total, "failed payouts returned");
    assert_eq!(balance.pending_payouts, Money::ZERO);
    assert_eq!(balance.paid_out_total.rupiah(), paid_total);
    let clearing =
        t.store.ledger_account(platform_account(AccountKind::PayoutClearing)).await.unwrap().unwrap();
    assert_eq!(clearing.balances.credits_posted, paid_total);
    assert_eq!(clearing.balances.debits_posted, paid_total, "paid money went on to provider clearing");
    assert_eq!(clearing.balances.credits_pending, 0);
    assert_invariants(&core, "after the confirmations").await;

    // Repeated answers change nothing and say so; contradictions are refused.
    let journal = jembatan_store::journal::counts(&t.store).await.unwrap();
    let (failed, paid) = (batch.payouts[0].id, batch.payouts[failed_count].id);
    let repeat = core.confirm_payout(&Principal::Operator, paid, PayoutOutcome::Paid, None).await.unwrap();
    assert!(!repeat.changed && repeat.payout.status == PayoutStatus::Paid);
    let repeat = core
        .confirm_payout(&Principal::Operator, failed, PayoutOutcome::Failed(reason.clone()), None)
        .await
        .unwrap();
    assert!(!repeat.changed && repeat.payout.status == PayoutStatus::Failed);
    for (id, outcome) in [(paid, PayoutOutcome::Failed(reason.clone())), (failed, PayoutOutcome::Paid)] {
        let refused = core.confirm_payout(&Principal::Operator, id, outcome, None).await;
        assert!(matches!(refused, Err(CoreError::Store(StoreError::Domain(DomainError::PayoutConflict(_))))));
    }
    assert_eq!(jembatan_store::journal::counts(&t.store).await.unwrap(), journal, "nothing was written");
    assert_eq!(core.merchant_balance(&merchant, merchant_id).await.unwrap(), balance);

    // A result file: one new answer, one repeat, one contradiction, one unknown payout.
    let fresh = core.request_payout(&merchant, payout_of(merchant_id, 50_000), None).await.unwrap();
    core.create_payout_batch(&Principal::Operator, None).await.unwrap();
    let unknown = new_id::<PayoutId>();
    let lines = vec![
        ResultLine { line_no: 2, payout_id: fresh.id, outcome: PayoutOutcome::Paid },
        ResultLine { line_no: 3, payout_id: paid, outcome: PayoutOutcome::Paid },
        ResultLine { line_no: 4, payout_id: failed, outcome: PayoutOutcome::Paid },
        ResultLine { line_no: 5, payout_id: unknown, outcome: PayoutOutcome::Paid },
        ResultLine { line_no: 6, payout_id: fresh.id, outcome: PayoutOutcome::Paid },
    ];
    let results = core.apply_payout_results(&Principal::Operator, lines, None).await.unwrap();
    assert!(matches!(&results[0].outcome, LineOutcome::Applied(p) if p.status == PayoutStatus::Paid));
    assert!(matches!(&results[1].outcome, LineOutcome::Unchanged(_)));
    assert!(matches!(&results[2].outcome, LineOutcome::Conflict(_)));
    assert_eq!(results[3].outcome, LineOutcome::NotFound);
    assert!(
        matches!(&results[4].outcome, LineOutcome::Unchanged(_)),
        "the same file line twice moves money once"
    );
    let balance = core.merchant_balance(&merchant, merchant_id).await.unwrap();
    assert_eq!(balance.paid_out_total.rupiah(), paid_total + 50_000);
    assert_eq!(balance.available.rupiah(), FUNDED_RUPIAH - paid_total - 50_000);
    assert_invariants(&core, "after the result file").await;

    // Who may do what: another merchant sees nothing of it, the regulator writes nothing.
    let other = Principal::Merchant(new_id::<MerchantId>());
    assert!(matches!(core.payout(&other, paid).await, Err(CoreError::Store(StoreError::NotFound { .. }))));
    assert!(matches!(
        core.merchant_balance(&other, merchant_id).await,
        Err(CoreError::Store(StoreError::NotFound { .. }))
    ));
    let by_regulator = core.request_payout(&Principal::Regulator, payout_of(merchant_id, 1_000), None).await;
    assert!(matches!(by_regulator, Err(CoreError::Forbidden(_))));
    assert!(matches!(core.create_payout_batch(&merchant, None).await, Err(CoreError::Forbidden(_))));
}

#[tokio::test]
async fn a_payout_above_the_balance_writes_nothing() {
    let t = jembatan_store::testing::fresh_store().await.unwrap();
    let core = Core::new(t.store.clone(), Arc::new(SystemClock));
    let merchant_id = funded_merchant(&core).await;
    let merchant = Principal::Merchant(merchant_id);
    let journal = jembatan_store::journal::counts(&t.store).await.unwrap();
    let refused = core.request_payout(&merchant, payout_of(merchant_id, FUNDED_RUPIAH + 1), None).await;
    match refused {
        Err(CoreError::Store(StoreError::Domain(DomainError::InsufficientBalance {
            available,
            requested,
        }))) => {
            assert_eq!((available, requested), (FUNDED_RUPIAH, FUNDED_RUPIAH + 1));
        }
        other => panic!("expected insufficient balance, got {other:?}"),
    }
    assert_eq!(jembatan_store::journal::counts(&t.store).await.unwrap(), journal);
    assert!(core.payouts_of_merchant(&merchant, merchant_id, None, 10).await.unwrap().is_empty());
    // Exactly the balance is fine.
    core.request_payout(&merchant, payout_of(merchant_id, FUNDED_RUPIAH), None).await.unwrap();
    assert_eq!(core.merchant_balance(&merchant, merchant_id).await.unwrap().available, Money::ZERO);
    assert_invariants(&core, "after the payouts").await;
}

#[tokio::test]
async fn the_checker_finds_a_payout_whose_amount_disagrees_with_its_hold() {
    let t = jembatan_store::testing::fresh_store().await.unwrap();
    let core = Core::new(t.store.clone(), Arc::new(SystemClock));
    let merchant_id = funded_merchant(&core).await;
    core.request_payout(&Principal::Merchant(merchant_id), payout_of(merchant_id, 40_000), None)
        .await
        .unwrap();
    assert_invariants(&core, "before the corruption").await;
    // A manual edit behind the store's back: the payout no longer matches the money held.
    let sql = "UPDATE payouts SET amount_idr = amount_idr + 1";
    assert_eq!(jembatan_store::testing::raw_execute(&t.url, sql).await.unwrap(), 1);
    let violations = invariants::check(&t.store).await.unwrap();
    assert_eq!(violations.len(), 1, "{violations:?}");
    assert!(violations[0].invariant.contains("payout clearing"), "{violations:?}");
}
