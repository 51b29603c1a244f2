//! The rules of the double-entry ledger, after TigerBeetle's model (DESIGN.md §3, invariants
//! 1–4): accounts with debit and credit balances, immutable transfers between two accounts,
//! two-phase transfers (pending, then posted — fully or partly — voided, or expired), linked
//! transfers that succeed or fail together, balance limits per account, and the transfer id as
//! idempotency key.
//!
//! [`Ledger`] is the state machine; the store runs it over the accounts a batch touches, inside
//! the batch's transaction, and persists what changed. The property tests below hold it to a
//! naive reference that recomputes every balance from the list of transfers.

use std::collections::BTreeMap;

use crate::error::DomainError;
use crate::id::{AccountId, MerchantId, TransferId, TypedId};
use crate::money::Money;
use crate::time::Timestamp;

/// What an account is for (DESIGN.md §3, ledger).
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, PartialOrd, Ord)]
pub enum AccountKind {
    /// Money the payment provider holds for us: debited when buyers pay.
    ProviderClearing,
    /// Buyer money held until the buyer has the goods.
    Escrow,
    /// What the platform owes a merchant.
    MerchantBalance,
    PlatformFeeRevenue,
    /// Money on its way to merchants' banks.
    PayoutClearing,
    /// Money on its way back to buyers.
    Refunds,
}

impl AccountKind {
    pub const ALL: [AccountKind; 6] = [
        AccountKind::ProviderClearing,
        AccountKind::Escrow,
        AccountKind::MerchantBalance,
        AccountKind::PlatformFeeRevenue,
        AccountKind::PayoutClearing,
        AccountKind::Refunds,
    ];

    pub fn as_str(self) -> &'static str {
        match self {
            AccountKind::ProviderClearing => "provider_clearing",
            AccountKind::Escrow => "escrow",
            AccountKind::MerchantBalance => "merchant_balance",
            AccountKind::PlatformFeeRevenue => "platform_fee_revenue",
            AccountKind::PayoutClearing => "payout_clearing",
            AccountKind::Refunds => "refunds",
        }
    }

    pub fn parse(raw: &str) -> Result<AccountKind, DomainError> {
        AccountKind::ALL.into_iter().find(|k| k.as_str() == raw).ok_or_else(|| {
            DomainError::invalid("kind", "must be provider_clearing, escrow, merchant_balance, platform_fee_revenue, payout_clearing or refunds")
        })
    }
}

/// The platform's own account of a kind (one each; merchant balances are per merchant).
/// Ids are fixed, so every process and every store agrees on them.
pub fn platform_account(kind: AccountKind) -> AccountId {
    let n = AccountKind::ALL.iter().position(|k| *k == kind).expect("a known kind") as u128;
    AccountId::from_uuid(uuid::Uuid::from_u128(0x6a65_6d62_6174_616e_0000_0000_0000_0000 + n + 1))
}

/// A merchant's balance account: the merchant's own UUID under the account prefix.
pub fn merchant_balance_account(merchant: MerchantId) -> AccountId {
    AccountId::from_uuid(merchant.uuid())
}

/// Why money moves for an order; each purpose derives its own transfer id from the order id.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Purpose {
    /// Provider clearing → escrow, pending, when the order is paid.
    EscrowHold = 1,
    /// Posts the hold when the buyer confirms.
    EscrowPost = 2,
    /// Escrow → merchant balance (total − fee).
    ReleaseToMerchant = 3,
    /// Escrow → platform fee revenue.
    PlatformFee = 4,
    /// Voids the hold when a paid order is cancelled before shipping.
    EscrowVoid = 5,
    /// Merchant balance → payout clearing, pending, when a merchant asks for a payout.
    PayoutHold = 6,
    /// Posts the hold when the bank confirms the payout paid.
    PayoutPost = 7,
    /// Payout clearing → provider clearing (linked to the post): the money left the platform.
    PayoutSend = 8,
    /// Voids the hold when the bank reports the payout failed: the money returns.
    PayoutVoid = 9,
    /// Escrow → refunds: a refund before release (ids derived from the refund id).
    RefundFromEscrow = 10,
    /// Merchant balance → refunds: a refund after release, the merchant's part.
    RefundFromMerchant = 11,
    /// Platform fee revenue → refunds: the fee given back with a refund after release.
    RefundFeeReversal = 12,
    /// Refunds → provider clearing: the provider sends the money back to the buyer.
    RefundToBuyer = 13,
    /// Provider clearing → escrow, at once: money paid for an order cancelled before its
    /// payment arrived, on its way straight back to the buyer.
    RefundReceived = 14,
}

/// The transfer id of `purpose` for an entity other than an order (a refund, a payout), by the
/// same rule as [`order_transfer_id`].
pub fn entity_transfer_id(entity: uuid::Uuid, purpose: Purpose) -> TransferId {
    TransferId::from_uuid(uuid::Uuid::from_u128(entity.as_u128() ^ (0xA0 | purpose as u128)))
}

/// The transfer id of `purpose` for an order: the order's UUID with its last byte xor-ed with
/// the purpose, so the id is the same on every retry (the ledger's idempotency key) and two
/// purposes of one order never share an id. (Two orders could only collide if their random
/// bits differed in exactly those bits: 1 in 2^74 per pair.)
pub fn order_transfer_id(order: crate::id::OrderId, purpose: Purpose) -> TransferId {
    entity_transfer_id(order.uuid(), purpose)
}

/// The transfer id of `purpose` for a payout, derived as [`order_transfer_id`] derives an
/// order's: a retried confirmation can never move the money twice.
pub fn payout_transfer_id(payout: crate::id::PayoutId, purpose: Purpose) -> TransferId {
    TransferId::from_uuid(uuid::Uuid::from_u128(payout.uuid().as_u128() ^ (0xA0 | purpose as u128)))
}

/// Balance limits of an account.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Default)]
pub struct AccountFlags {
    /// Debits (pending + posted) may never exceed posted credits: a balance that cannot go
    /// below zero, such as a merchant's.
    pub debits_must_not_exceed_credits: bool,
    /// Credits (pending + posted) may never exceed posted debits.
    pub credits_must_not_exceed_debits: bool,
}

/// Sums of an account's transfers, in rupiah.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Default)]
pub struct Balances {
    pub debits_pending: i64,
    pub debits_posted: i64,
    pub credits_pending: i64,
    pub credits_posted: i64,
}

impl Balances {
    /// Credits minus debits, posted only: what a credit-normal account (a merchant balance)
    /// holds.
    pub fn credit_balance(&self) -> i64 {
        self.credits_posted - self.debits_posted
    }
}

#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Account {
    pub id: AccountId,
    pub kind: AccountKind,
    pub merchant: Option<MerchantId>,
    pub flags: AccountFlags,
    pub balances: Balances,
}

/// What a transfer does.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum TransferKind {
    /// Moves money at once.
    Single,
    /// Reserves money (pending); expires after `timeout_ms` unless posted or voided
    /// (0 = never expires).
    Pending { timeout_ms: i64 },
    /// Posts a pending transfer: `amount` of it (`None`: all of it); the rest returns.
    Post { pending: TransferId, amount: Option<Money> },
    /// Voids a pending transfer: all of it returns.
    Void { pending: TransferId },
}

/// A transfer as a caller asks for it. For `Post` and `Void`, `debit`, `credit` and `amount`
/// must be the pending transfer's (`amount` may be less for a partial post).
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct NewTransfer {
    pub id: TransferId,
    pub debit: AccountId,
    pub credit: AccountId,
    pub amount: Money,
    pub kind: TransferKind,
    /// Linked to the next transfer of the batch: they succeed or fail together.
    pub linked: bool,
    /// What the transfer is for (payment, escrow release, fee, refund, payout…).
    pub code: u16,
}

/// A transfer as recorded: immutable.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct Transfer {
    pub new: NewTransfer,
    /// What reached posted balances: the amount of a single transfer, the posted part of a
    /// post, zero for pending and void transfers.
    pub amount_posted: Money,
    pub timestamp: Timestamp,
}

/// Where a pending transfer stands.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum PendingState {
    Pending,
    Posted,
    Voided,
    Expired,
}

impl PendingState {
    pub fn as_str(self) -> &'static str {
        match self {
            PendingState::Pending => "pending",
            PendingState::Posted => "posted",
            PendingState::Voided => "voided",
            PendingState::Expired => "expired",
        }
    }

    pub fn parse(raw: &str) -> Result<PendingState, DomainError> {
        [PendingState::Pending, PendingState::Posted, PendingState::Voided, PendingState::Expired]
            .into_iter()
            .find(|s| s.as_str() == raw)
            .ok_or_else(|| DomainError::invalid("pending_state", "unknown pending state"))
    }
}

/// Why a transfer was refused. A refused transfer changes nothing.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, thiserror::Error)]
pub enum TransferError {
    #[error("another transfer of the linked chain failed")]
    LinkedEventFailed,
    #[error("the batch ends inside a linked chain")]
    LinkedChainOpen,
    #[error("a transfer with this id exists with other fields")]
    ExistsWithDifferentFields,
    #[error("the amount must be positive")]
    AmountMustNotBeZero,
    #[error("the debit and credit accounts must differ")]
    AccountsMustBeDifferent,
    #[error("the debit account does not exist")]
    DebitAccountNotFound,
    #[error("the credit account does not exist")]
    CreditAccountNotFound,
    #[error("the pending transfer does not exist")]
    PendingTransferNotFound,
    #[error("the referenced transfer is not a pending transfer")]
    PendingTransferNotPending,
    #[error("the accounts differ from the pending transfer's")]
    PendingTransferHasDifferentAccounts,
    #[error("the pending transfer was already posted")]
    PendingTransferAlreadyPosted,
    #[error("the pending transfer was already voided")]
    PendingTransferAlreadyVoided,
    #[error("the pending transfer expired")]
    PendingTransferExpired,
    #[error("the amount exceeds the pending transfer's")]
    ExceedsPendingTransferAmount,
    #[error("the debit account's debits would exceed its credits")]
    ExceedsCredits,
    #[error("the credit account's credits would exceed its debits")]
    ExceedsDebits,
    #[error("a balance would overflow")]
    Overflow,
}

impl TransferError {
    pub fn code(self) -> &'static str {
        match self {
            TransferError::LinkedEventFailed => "linked_event_failed",
            TransferError::LinkedChainOpen => "linked_chain_open",
            TransferError::ExistsWithDifferentFields => "exists_with_different_fields",
            TransferError::AmountMustNotBeZero => "amount_must_not_be_zero",
            TransferError::AccountsMustBeDifferent => "accounts_must_be_different",
            TransferError::DebitAccountNotFound => "debit_account_not_found",
            TransferError::CreditAccountNotFound => "credit_account_not_found",
            TransferError::PendingTransferNotFound => "pending_transfer_not_found",
            TransferError::PendingTransferNotPending => "pending_transfer_not_pending",
            TransferError::PendingTransferHasDifferentAccounts => "pending_transfer_has_different_accounts",
            TransferError::PendingTransferAlreadyPosted => "pending_transfer_already_posted",
            TransferError::PendingTransferAlreadyVoided => "pending_transfer_already_voided",
            TransferError::PendingTransferExpired => "pending_transfer_expired",
            TransferError::ExceedsPendingTransferAmount => "exceeds_pending_transfer_amount",
            TransferError::ExceedsCredits => "exceeds_credits",
            TransferError::ExceedsDebits => "exceeds_debits",
            TransferError::Overflow => "overflow",
        }
    }
}

/// The outcome of one accepted transfer.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Created {
    Created,
    /// The same transfer (same id, same fields) was already recorded: nothing changed.
    Exists,
}

/// A ledger's state, complete or (in the store) the part a batch touches.
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub struct Ledger {
    pub accounts: BTreeMap<AccountId, Account>,
    pub transfers: BTreeMap<TransferId, Transfer>,
    pub pending: BTreeMap<TransferId, PendingState>,
}

impl Ledger {
    /// Applies a batch in order; one result per transfer. Linked chains apply entirely or not
    /// at all.
    pub fn create_transfers(
        &mut self,
        batch: &[NewTransfer],
        now: Timestamp,
    ) -> Vec<Result<Created, TransferError>> {
        let mut results = Vec::with_capacity(batch.len());
        let mut start = 0;
        while start < batch.len() {
            let end = batch[start..].iter().position(|t| !t.linked).map_or(batch.len(), |i| start + i + 1);
            let chain = &batch[start..end];
            if chain.last().is_some_and(|t| t.linked) {
                results.extend(chain.iter().map(|_| Err(TransferError::LinkedChainOpen)));
                break;
            }
            // Events of the chain apply one by one; if one fails, the undo log takes the
            // chain's earlier events back.
            let mut undo = Undo::default();
            let mut chain_results = Vec::with_capacity(chain.len());
            let mut failed_at = None;
            for (i, transfer) in chain.iter().enumerate() {
                let result = self.apply(transfer, now, &mut undo);
                if result.is_err() {
                    failed_at = Some(i);
                }
                chain_results.push(result);
                if failed_at.is_some() {
                    break;
                }
            }
            match failed_at {
                None => results.extend(chain_results),
                Some(failed) => {
                    self.roll_back(undo);
                    let error = chain_results[failed].expect_err("failed event has an error");
                    for i in 0..chain.len() {
                        results.push(Err(if i == failed { error } else { TransferError::LinkedEventFailed }));
                    }
                }
            }
            start = end;
        }
        results
    }

    /// Applies one transfer. It either changes nothing (an error, or `Exists`) or records in
    /// `undo` everything it changed.
    fn apply(&mut self, t: &NewTransfer, now: Timestamp, undo: &mut Undo) -> Result<Created, TransferError> {
        if let Some(existing) = self.transfers.get(&t.id) {
            return if existing.new == *t {
                Ok(Created::Exists)
            } else {
                Err(TransferError::ExistsWithDifferentFields)
            };
        }
        if t.debit == t.credit {
            return Err(TransferError::AccountsMustBeDifferent);
        }
        let (mut debit, mut credit) = match (self.accounts.get(&t.debit), self.accounts.get(&t.credit)) {
            (None, _) => return Err(TransferError::DebitAccountNotFound),
            (_, None) => return Err(TransferError::CreditAccountNotFound),
            (Some(d), Some(c)) => (d.balances, c.balances),
        };
        let amount = t.amount.rupiah();
        let mut amount_posted = t.amount;
        let mut resolves = None;
        match t.kind {
            TransferKind::Single | TransferKind::Pending { .. } if amount == 0 => {
                return Err(TransferError::AmountMustNotBeZero);
            }
            TransferKind::Single => {
                debit.debits_posted = add(debit.debits_posted, amount)?;
                credit.credits_posted = add(credit.credits_posted, amount)?;
            }
            TransferKind::Pending { .. } => {
                debit.debits_pending = add(debit.debits_pending, amount)?;
                credit.credits_pending = add(credit.credits_pending, amount)?;
                amount_posted = Money::ZERO;
            }
            TransferKind::Post { pending, amount: posted } => {
                let held = self.pending_to_resolve(t, pending, now)?;
                let posted = posted.unwrap_or(held);
                if posted > held {
                    return Err(TransferError::ExceedsPendingTransferAmount);
                }
                if posted.rupiah() == 0 {
                    return Err(TransferError::AmountMustNotBeZero);
                }
                debit.debits_pending -= held.rupiah();
                credit.credits_pending -= held.rupiah();
                debit.debits_posted = add(debit.debits_posted, posted.rupiah())?;
                credit.credits_posted = add(credit.credits_posted, posted.rupiah())?;
                amount_posted = posted;
                resolves = Some((pending, PendingState::Posted));
            }
            TransferKind::Void { pending } => {
                let held = self.pending_to_resolve(t, pending, now)?;
                debit.debits_pending -= held.rupiah();
                credit.credits_pending -= held.rupiah();
                amount_posted = Money::ZERO;
                resolves = Some((pending, PendingState::Voided));
            }
        }
        let debit_flags = self.accounts[&t.debit].flags;
        let credit_flags = self.accounts[&t.credit].flags;
        if debit_flags.debits_must_not_exceed_credits
            && add(debit.debits_pending, debit.debits_posted)? > debit.credits_posted
        {
            return Err(TransferError::ExceedsCredits);
        }
        if credit_flags.credits_must_not_exceed_debits
            && add(credit.credits_pending, credit.credits_posted)? > credit.debits_posted
        {
            return Err(TransferError::ExceedsDebits);
        }
        for (id, balances) in [(t.debit, debit), (t.credit, credit)] {
            if let Some(account) = self.accounts.get_mut(&id) {
                undo.balances.push((id, account.balances));
                account.balances = balances;
            }
        }
        if let Some((pending, state)) = resolves {
            undo.pending.push((pending, self.pending.insert(pending, state)));
        }
        if matches!(t.kind, TransferKind::Pending { .. }) {
            undo.pending.push((t.id, self.pending.insert(t.id, PendingState::Pending)));
        }
        self.transfers.insert(t.id, Transfer { new: *t, amount_posted, timestamp: now });
        undo.transfers.push(t.id);
        Ok(Created::Created)
    }

    /// Takes back what a failed chain's earlier events changed, newest first.
    fn roll_back(&mut self, undo: Undo) {
        for (id, balances) in undo.balances.into_iter().rev() {
            if let Some(account) = self.accounts.get_mut(&id) {
                account.balances = balances;
            }
        }
        for (id, state) in undo.pending.into_iter().rev() {
            match state {
                Some(state) => self.pending.insert(id, state),
                None => self.pending.remove(&id),
            };
        }
        for id in undo.transfers {
            self.transfers.remove(&id);
        }
    }

    /// Checks that `t` may post or void `pending`; returns the amount it holds.
    fn pending_to_resolve(
        &self,
        t: &NewTransfer,
        pending: TransferId,
        now: Timestamp,
    ) -> Result<Money, TransferError> {
        let held = self.transfers.get(&pending).ok_or(TransferError::PendingTransferNotFound)?;
        let TransferKind::Pending { timeout_ms } = held.new.kind else {
            return Err(TransferError::PendingTransferNotPending);
        };
        if held.new.debit != t.debit || held.new.credit != t.credit {
            return Err(TransferError::PendingTransferHasDifferentAccounts);
        }
        match self.pending.get(&pending) {
            Some(PendingState::Posted) => return Err(TransferError::PendingTransferAlreadyPosted),
            Some(PendingState::Voided) => return Err(TransferError::PendingTransferAlreadyVoided),
            Some(PendingState::Expired) => return Err(TransferError::PendingTransferExpired),
            Some(PendingState::Pending) | None => {}
        }
        if timeout_ms > 0 && now >= held.timestamp.plus_ms(timeout_ms) {
            return Err(TransferError::PendingTransferExpired);
        }
        Ok(held.new.amount)
    }

    /// Pending transfers whose timeout has passed at `now` and that are still pending.
    pub fn expired(&self, now: Timestamp) -> Vec<TransferId> {
        self.pending
            .iter()
            .filter(|(_, state)| **state == PendingState::Pending)
            .filter_map(|(id, _)| self.transfers.get(id))
            .filter(|t| matches!(t.new.kind, TransferKind::Pending { timeout_ms } if timeout_ms > 0 && now >= t.timestamp.plus_ms(timeout_ms)))
            .map(|t| t.new.id)
            .collect()
    }

    /// Expires one pending transfer: its amount returns to both accounts.
    pub fn expire(&mut self, id: TransferId, now: Timestamp) -> bool {
        if !self.expired(now).contains(&id) {
            return false;
        }
        let held = self.transfers[&id].new;
        for (account, debit_side) in [(held.debit, true), (held.credit, false)] {
            if let Some(a) = self.accounts.get_mut(&account) {
                if debit_side {
                    a.balances.debits_pending -= held.amount.rupiah();
                } else {
                    a.balances.credits_pending -= held.amount.rupiah();
                }
            }
        }
        self.pending.insert(id, PendingState::Expired);
        true
    }
}

/// What a chain changed, to take back if a later event of it fails.
#[derive(Default)]
struct Undo {
    balances: Vec<(AccountId, Balances)>,
    pending: Vec<(TransferId, Option<PendingState>)>,
    transfers: Vec<TransferId>,
}

fn add(a: i64, b: i64) -> Result<i64, TransferError> {
    a.checked_add(b).ok_or(TransferError::Overflow)
}

#[cfg(test)]
mod tests {
    use super::*;
    use proptest::prelude::*;
    use uuid::Uuid;

    fn account_id(n: u128) -> AccountId {
        AccountId::from_uuid(Uuid::from_u128(n))
    }

    fn transfer_id(n: u128) -> TransferId {
        TransferId::from_uuid(Uuid::from_u128(1_000 + n))
    }

    /// Accounts 0..4: 0 provider clearing (no limit), 1 escrow, 2 merchant (may not go below
    /// zero), 3 fee revenue.
    fn ledger() -> Ledger {
        let mut ledger = Ledger::default();
        for (n, kind) in [
            AccountKind::ProviderClearing,
            AccountKind::Escrow,
            AccountKind::MerchantBalance,
            AccountKind::PlatformFeeRevenue,
        ]
        .into_iter()
        .enumerate()
        {
            let flags = AccountFlags {
                debits_must_not_exceed_credits: kind == AccountKind::MerchantBalance,
                ..Default::default()
            };
            ledger.accounts.insert(
                account_id(n as u128),
                Account {
                    id: account_id(n as u128),
                    kind,
                    merchant: None,
                    flags,
                    balances: Balances::default(),
                },
            );
        }
        ledger
    }

    fn t(id: u128, debit: u128, credit: u128, amount: i64, kind: TransferKind) -> NewTransfer {
        NewTransfer {
            id: transfer_id(id),
            debit: account_id(debit),
            credit: account_id(credit),
            amount: Money::from_rupiah(amount).unwrap(),
            kind,
            linked: false,
            code: 1,
        }
    }

    #[test]
    fn two_phase_post_void_expire() {
        let mut l = ledger();
        let now = Timestamp::from_unix_ms(0);
        let hold = t(1, 0, 1, 10_000, TransferKind::Pending { timeout_ms: 1_000 });
        assert_eq!(l.create_transfers(&[hold], now), vec![Ok(Created::Created)]);
        assert_eq!(l.accounts[&account_id(1)].balances.credits_pending, 10_000);
        // Same id, same fields: exists; other fields: refused.
        assert_eq!(l.create_transfers(&[hold], now), vec![Ok(Created::Exists)]);
        let other = NewTransfer { code: 2, ..hold };
        assert_eq!(l.create_transfers(&[other], now), vec![Err(TransferError::ExistsWithDifferentFields)]);
        // Partial post: 6,000 of 10,000; the rest returns.
        let post = t(
            2,
            0,
            1,
            10_000,
            TransferKind::Post { pending: hold.id, amount: Some(Money::from_rupiah(6_000).unwrap()) },
        );
        assert_eq!(l.create_transfers(&[post], now.plus_ms(10)), vec![Ok(Created::Created)]);
        let escrow = l.accounts[&account_id(1)].balances;
        assert_eq!((escrow.credits_pending, escrow.credits_posted), (0, 6_000));
        let void = t(3, 0, 1, 10_000, TransferKind::Void { pending: hold.id });
        assert_eq!(l.create_transfers(&[void], now), vec![Err(TransferError::PendingTransferAlreadyPosted)]);
        // A pending transfer past its timeout can neither be posted nor voided, and expires.
        let late = t(4, 0, 1, 500, TransferKind::Pending { timeout_ms: 1_000 });
        l.create_transfers(&[late], now);
        let post_late = t(5, 0, 1, 500, TransferKind::Post { pending: late.id, amount: None });
        assert_eq!(
            l.create_transfers(&[post_late], now.plus_ms(1_000)),
            vec![Err(TransferError::PendingTransferExpired)]
        );
        assert_eq!(l.expired(now.plus_ms(1_000)), vec![late.id]);
        assert!(l.expire(late.id, now.plus_ms(1_000)));
        assert_eq!(l.accounts[&account_id(1)].balances.credits_pending, 0);
    }

    #[test]
    fn linked_chains_apply_whole_or_not_at_all() {
        let mut l = ledger();
        let now = Timestamp::from_unix_ms(0);
        let a = NewTransfer { linked: true, ..t(1, 0, 1, 1_000, TransferKind::Single) };
        let b = t(2, 2, 3, 1, TransferKind::Single); // the merchant has nothing: exceeds credits
        assert_eq!(
            l.create_transfers(&[a, b], now),
            vec![Err(TransferError::LinkedEventFailed), Err(TransferError::ExceedsCredits)]
        );
        assert_eq!(l, ledger(), "nothing of a failed chain stays");
        assert_eq!(l.create_transfers(&[a], now), vec![Err(TransferError::LinkedChainOpen)]);
    }

    /// The naive reference: balances recomputed from the list of recorded transfers.
    fn recompute(l: &Ledger) -> BTreeMap<AccountId, Balances> {
        let mut b: BTreeMap<AccountId, Balances> =
            l.accounts.keys().map(|k| (*k, Balances::default())).collect();
        for t in l.transfers.values() {
            let n = t.new;
            // Posted balances take `amount_posted` of every transfer (as the store's check does);
            // pending balances take the amount of transfers still pending.
            let held = match n.kind {
                TransferKind::Pending { .. } if l.pending.get(&n.id) == Some(&PendingState::Pending) => {
                    n.amount.rupiah()
                }
                _ => 0,
            };
            let (dp, dq, cp, cq) = (held, t.amount_posted.rupiah(), held, t.amount_posted.rupiah());
            let d = b.get_mut(&n.debit).unwrap();
            d.debits_pending += dp;
            d.debits_posted += dq;
            let c = b.get_mut(&n.credit).unwrap();
            c.credits_pending += cp;
            c.credits_posted += cq;
        }
        b
    }

    fn transfer_strategy() -> impl Strategy<Value = (u8, u128, u128, i64, u128, bool, i64)> {
        (0u8..4, 0u128..5, 0u128..5, 0i64..5_000, 0u128..60, any::<bool>(), 0i64..3)
    }

    proptest! {
        /// Random batches: cached balances always equal the recomputed ones, debits equal
        /// credits, limits hold, and refused chains leave nothing behind.
        #[test]
        fn balances_equal_the_sum_of_transfers(batches in prop::collection::vec(prop::collection::vec(transfer_strategy(), 1..8), 1..12)) {
            let mut l = ledger();
            let mut now = Timestamp::from_unix_ms(0);
            let mut next_id = 0u128;
            for batch in batches {
                now = now.plus_ms(400);
                let transfers: Vec<NewTransfer> = batch.iter().map(|&(kind, debit, credit, amount, target, linked, timeout)| {
                    next_id += 1;
                    // Ids sometimes repeat an earlier one, to exercise idempotency.
                    let id = if target % 7 == 0 && next_id > 1 { transfer_id(target % next_id + 100) } else { transfer_id(next_id + 100) };
                    let kind = match kind {
                        0 => TransferKind::Single,
                        1 => TransferKind::Pending { timeout_ms: timeout * 500 },
                        2 => TransferKind::Post { pending: transfer_id(target + 100), amount: if amount % 2 == 0 { None } else { Some(Money::from_rupiah(amount / 3).unwrap()) } },
                        _ => TransferKind::Void { pending: transfer_id(target + 100) },
                    };
                    // Posts and voids name the pending transfer's accounts when it exists.
                    let (debit, credit) = match kind {
                        TransferKind::Post { pending, .. } | TransferKind::Void { pending } => l.transfers.get(&pending).map_or((account_id(debit), account_id(credit)), |p| (p.new.debit, p.new.credit)),
                        _ => (account_id(debit), account_id(credit)),
                    };
                    NewTransfer { id, debit, credit, amount: Money::from_rupiah(amount).unwrap(), kind, linked, code: 1 }
                }).collect();
                let before = l.clone();
                let results = l.create_transfers(&transfers, now);
                prop_assert_eq!(results.len(), transfers.len());
                if results.iter().all(|r| r.is_err()) {
                    prop_assert_eq!(&l, &before);
                }
                for id in l.expired(now) {
                    l.expire(id, now);
                }
                let recomputed = recompute(&l);
                let (mut debits, mut credits) = (0i64, 0i64);
                for (id, account) in &l.accounts {
                    prop_assert_eq!(account.balances, recomputed[id]);
                    debits += account.balances.debits_posted + account.balances.debits_pending;
                    credits += account.balances.credits_posted + account.balances.credits_pending;
                    if account.flags.debits_must_not_exceed_credits {
                        prop_assert!(account.balances.debits_posted + account.balances.debits_pending <= account.balances.credits_posted);
                    }
                }
                prop_assert_eq!(debits, credits);
            }
        }
    }
}
