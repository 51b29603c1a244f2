//! The ledger in the store: [`jembatan_domain::ledger::Ledger`] run over the accounts a batch
//! touches, inside the batch's unit, and what changed written back.
//!
//! A batch loads its accounts (on PostgreSQL locked `FOR UPDATE` in id order, so concurrent
//! batches serialise per account and cannot deadlock), the transfers its ids name (for
//! idempotency) and the pending transfers it posts or voids; applies the domain rules; then
//! inserts the new transfers, updates the balances and the pending states, and journals the
//! batch — one transaction. Balances are a cache of the transfers, checked by `jembatan check`.

use std::collections::{BTreeMap, BTreeSet};

use jembatan_domain::ledger::{
    Account, AccountFlags, AccountKind, Balances, Created, Ledger, NewTransfer, PendingState, Transfer,
    TransferError, TransferKind,
};
use jembatan_domain::{AccountId, DomainError, MerchantId, Money, Timestamp, TransferId};

use crate::db::{Conn, Row, q};
use crate::error::StoreError;
use crate::exec::{Store, WriteCtx};
use crate::journal::{self, Change};
use crate::rows;

/// Transfers in one batch at most.
pub const BATCH_TRANSFERS_MAX: usize = 8_190;

const ACCOUNT_COLUMNS: &str = "account_id, kind, merchant_id, debits_must_not_exceed_credits, credits_must_not_exceed_debits, \
     debits_pending, debits_posted, credits_pending, credits_posted";
const TRANSFER_COLUMNS: &str = "transfer_id, debit_account_id, credit_account_id, amount_idr, amount_posted_idr, kind, \
     pending_id, timeout_ms, post_amount_idr, linked, code, timestamp_ms";
const INSERT_TRANSFER: &str = "INSERT INTO ledger_transfers (transfer_id, debit_account_id, credit_account_id, amount_idr, \
     amount_posted_idr, kind, pending_id, timeout_ms, post_amount_idr, linked, code, timestamp_ms) \
     VALUES ($1, $2, $3, $4, $5, $6, $7, $8, $9, $10, $11, $12)";

impl Store {
    /// Creates an account with zero balances. Creating the same account again is a no-op;
    /// the same id with other fields is a conflict.
    pub async fn create_ledger_account(
        &self,
        ctx: WriteCtx,
        id: AccountId,
        kind: AccountKind,
        merchant: Option<MerchantId>,
        flags: AccountFlags,
    ) -> Result<Account, StoreError> {
        self.write(None, move |conn| {
            Box::pin(async move {
                let wanted = Account { id, kind, merchant, flags, balances: Balances::default() };
                if let Some(existing) = load_accounts(conn, &[id], false).await?.pop() {
                    let same =
                        existing.kind == kind && existing.merchant == merchant && existing.flags == flags;
                    return if same {
                        Ok(existing)
                    } else {
                        Err(StoreError::Conflict(format!("ledger account {id} exists with other fields")))
                    };
                }
                ensure_accounts(conn, &ctx, &[(id, kind, merchant, flags)]).await?;
                Ok(wanted)
            })
        })
        .await
    }

    /// Applies a batch of transfers in one transaction; one result per transfer, in order.
    pub async fn create_transfers(
        &self,
        ctx: WriteCtx,
        batch: Vec<NewTransfer>,
    ) -> Result<Vec<Result<Created, TransferError>>, StoreError> {
        if batch.len() > BATCH_TRANSFERS_MAX {
            return Err(StoreError::Conflict(format!(
                "a batch holds at most {BATCH_TRANSFERS_MAX} transfers"
            )));
        }
        self.write(None, move |conn| Box::pin(create_transfers_unit(conn, ctx, batch))).await
    }

    pub async fn ledger_account(&self, id: AccountId) -> Result<Option<Account>, StoreError> {
        self.read(move |conn| Box::pin(async move { Ok(load_accounts(conn, &[id], false).await?.pop()) }))
            .await
    }

    /// An account's transfers, newest first, after the cursor `before`.
    pub async fn ledger_transfers_of_account(
        &self,
        account: AccountId,
        before: Option<TransferId>,
        limit: u32,
    ) -> Result<Vec<Transfer>, StoreError> {
        let before = before.map(|b| b.to_string()).unwrap_or_default();
        self.read(move |conn| {
            Box::pin(async move {
                // Two index range scans (debit side, credit side) merged, not one OR over both.
                let sql = format!(
                    "SELECT {TRANSFER_COLUMNS} FROM (
                       SELECT {TRANSFER_COLUMNS} FROM ledger_transfers WHERE debit_account_id = $1 AND ($2 = '' OR transfer_id < $2)
                       UNION ALL
                       SELECT {TRANSFER_COLUMNS} FROM ledger_transfers WHERE credit_account_id = $1 AND ($2 = '' OR transfer_id < $2)
                     ) t ORDER BY transfer_id DESC LIMIT $3"
                );
                let rows =
                    q(sql).bind(account.to_string()).bind(before).bind(i64::from(limit)).fetch_all(conn).await?;
                rows.iter().map(decode_transfer).collect()
            })
        })
        .await
    }

    pub async fn ledger_transfer(
        &self,
        id: TransferId,
    ) -> Result<Option<(Transfer, Option<PendingState>)>, StoreError> {
        self.read(move |conn| {
            Box::pin(async move {
                let transfer = load_transfers(conn, &[id]).await?.pop();
                let state = load_pending(conn, &[id]).await?.remove(&id);
                Ok(transfer.map(|t| (t, state)))
            })
        })
        .await
    }

    /// Expires pending transfers whose timeout passed before `now` (at most `rows_max`);
    /// returns how many.
    pub async fn expire_pending_transfers(&self, ctx: WriteCtx, rows_max: i64) -> Result<u64, StoreError> {
        self.write(None, move |conn| {
            Box::pin(async move {
                let due: Vec<TransferId> = q("SELECT transfer_id FROM ledger_pending
                     WHERE state = 'pending' AND expires_at_ms > 0 AND expires_at_ms <= $1
                     ORDER BY expires_at_ms LIMIT $2")
                .bind(ctx.now.unix_ms())
                .bind(rows_max)
                .fetch_all(&mut *conn)
                .await?
                .iter()
                .map(|r| rows::id(r, "transfer_id"))
                .collect::<Result<_, _>>()?;
                if due.is_empty() {
                    return Ok(0);
                }
                let transfers = load_transfers(conn, &due).await?;
                let accounts: Vec<AccountId> = transfers
                    .iter()
                    .flat_map(|t| [t.new.debit, t.new.credit])
                    .collect::<BTreeSet<_>>()
                    .into_iter()
                    .collect();
                let mut ledger = Ledger {
                    accounts: load_accounts(conn, &accounts, true)
                        .await?
                        .into_iter()
                        .map(|a| (a.id, a))
                        .collect(),
                    transfers: transfers.into_iter().map(|t| (t.new.id, t)).collect(),
                    pending: load_pending(conn, &due).await?,
                };
                let before = ledger.clone();
                let expired = due.iter().filter(|id| ledger.expire(**id, ctx.now)).count();
                persist(conn, &before, &ledger, ctx.now).await?;
                journal::record(
                    conn,
                    &ctx,
                    Change {
                        event_type: "ledger.pending_expired",
                        action: "ledger.expire_pending",
                        entity_type: "ledger_batch",
                        entity_id: due[0].to_string(),
                        merchant_id: None,
                        channel: None,
                        payload: serde_json::json!({"expired": expired}),
                    },
                )
                .await?;
                Ok(expired as u64)
            })
        })
        .await
    }
}

pub(crate) async fn create_transfers_unit(
    conn: &mut dyn Conn,
    ctx: WriteCtx,
    batch: Vec<NewTransfer>,
) -> Result<Vec<Result<Created, TransferError>>, StoreError> {
    let account_ids: Vec<AccountId> =
        batch.iter().flat_map(|t| [t.debit, t.credit]).collect::<BTreeSet<_>>().into_iter().collect();
    let pending_ids: BTreeSet<TransferId> = batch
        .iter()
        .filter_map(|t| match t.kind {
            TransferKind::Post { pending, .. } | TransferKind::Void { pending } => Some(pending),
            _ => None,
        })
        .collect();
    let transfer_ids: Vec<TransferId> = batch
        .iter()
        .map(|t| t.id)
        .chain(pending_ids.iter().copied())
        .collect::<BTreeSet<_>>()
        .into_iter()
        .collect();
    // Lock accounts first (in id order), then read what the batch refers to.
    let accounts = load_accounts(conn, &account_ids, true).await?;
    let transfers = load_transfers(conn, &transfer_ids).await?;
    // Pending states matter only for the transfers a post or void names, and for pending
    // transfers already recorded (not for every new id: reading those would be a wasted index
    // probe per transfer).
    let pending_of_interest: Vec<TransferId> = pending_ids
        .iter()
        .copied()
        .chain(
            transfers.iter().filter(|t| matches!(t.new.kind, TransferKind::Pending { .. })).map(|t| t.new.id),
        )
        .collect::<BTreeSet<_>>()
        .into_iter()
        .collect();
    let mut ledger = Ledger {
        accounts: accounts.into_iter().map(|a| (a.id, a)).collect(),
        transfers: transfers.into_iter().map(|t| (t.new.id, t)).collect(),
        pending: load_pending(conn, &pending_of_interest).await?,
    };
    let before = ledger.clone();
    let results = ledger.create_transfers(&batch, ctx.now);
    let created = results.iter().filter(|r| matches!(r, Ok(Created::Created))).count();
    if created > 0 {
        persist(conn, &before, &ledger, ctx.now).await?;
        journal::record(
            conn,
            &ctx,
            Change {
                event_type: "ledger.transfers_created",
                action: "ledger.create_transfers",
                entity_type: "ledger_batch",
                entity_id: batch[0].id.to_string(),
                merchant_id: None,
                channel: None,
                payload: serde_json::json!({"created": created, "batch": batch.len()}),
            },
        )
        .await?;
    }
    Ok(results)
}

/// Writes the difference between two states of a partial ledger.
async fn persist(
    conn: &mut dyn Conn,
    before: &Ledger,
    after: &Ledger,
    now: Timestamp,
) -> Result<(), StoreError> {
    // New transfers, one row per statement with one constant SQL text (the prepared-statement
    // cache then hits every time; measured faster on SQLite than 64-row statements, whose
    // parameter binding and text building cost more than the round trips they save).
    for transfer in
        after.transfers.iter().filter(|(id, _)| !before.transfers.contains_key(id)).map(|(_, t)| t)
    {
        let t = transfer.new;
        let (kind, pending_id, timeout_ms, post_amount) = match t.kind {
            TransferKind::Single => ("single", None, 0, None),
            TransferKind::Pending { timeout_ms } => ("pending", None, timeout_ms, None),
            TransferKind::Post { pending, amount } => ("post", Some(pending), 0, amount.map(Money::rupiah)),
            TransferKind::Void { pending } => ("void", Some(pending), 0, None),
        };
        q(INSERT_TRANSFER)
            .bind(t.id.to_string())
            .bind(t.debit.to_string())
            .bind(t.credit.to_string())
            .bind(t.amount.rupiah())
            .bind(transfer.amount_posted.rupiah())
            .bind(kind)
            .bind(pending_id.map(|p| p.to_string()))
            .bind(timeout_ms)
            .bind(post_amount)
            .bind(i64::from(t.linked))
            .bind(i64::from(t.code))
            .bind(transfer.timestamp.unix_ms())
            .execute(&mut *conn)
            .await?;
    }
    for (id, state) in &after.pending {
        if before.pending.get(id) == Some(state) {
            continue;
        }
        let expires_at = match after.transfers.get(id).map(|t| (t.new.kind, t.timestamp)) {
            Some((TransferKind::Pending { timeout_ms }, at)) if timeout_ms > 0 => {
                at.plus_ms(timeout_ms).unix_ms()
            }
            _ => 0,
        };
        q("INSERT INTO ledger_pending (transfer_id, state, expires_at_ms, updated_at_ms) VALUES ($1, $2, $3, $4)
           ON CONFLICT (transfer_id) DO UPDATE SET state = excluded.state, updated_at_ms = excluded.updated_at_ms")
        .bind(id.to_string())
        .bind(state.as_str())
        .bind(expires_at)
        .bind(now.unix_ms())
        .execute(&mut *conn)
        .await?;
    }
    for (id, account) in &after.accounts {
        let old = before.accounts.get(id).map(|a| a.balances);
        if old == Some(account.balances) {
            continue;
        }
        let b = account.balances;
        // The store's own check of the domain's limits, at the last moment.
        assert!(b.debits_pending >= 0 && b.credits_pending >= 0, "negative pending balance on {id}");
        let updated = q("UPDATE ledger_accounts SET debits_pending = $2, debits_posted = $3, credits_pending = $4, credits_posted = $5
               WHERE account_id = $1")
        .bind(id.to_string())
        .bind(b.debits_pending)
        .bind(b.debits_posted)
        .bind(b.credits_pending)
        .bind(b.credits_posted)
        .execute(&mut *conn)
        .await?;
        assert_eq!(updated, 1, "ledger account {id} vanished during its batch");
    }
    Ok(())
}

async fn load_accounts(
    conn: &mut dyn Conn,
    ids: &[AccountId],
    lock: bool,
) -> Result<Vec<Account>, StoreError> {
    if ids.is_empty() {
        return Ok(Vec::new());
    }
    let lock = crate::db::lock_clause(conn, lock);
    let sql = format!(
        "SELECT {ACCOUNT_COLUMNS} FROM ledger_accounts WHERE account_id IN ({}) ORDER BY account_id{lock}",
        placeholders(ids.len())
    );
    let mut query = q(sql);
    for id in ids {
        query = query.bind(id.to_string());
    }
    query.fetch_all(conn).await?.iter().map(decode_account).collect()
}

async fn load_transfers(conn: &mut dyn Conn, ids: &[TransferId]) -> Result<Vec<Transfer>, StoreError> {
    if ids.is_empty() {
        return Ok(Vec::new());
    }
    let sql = format!(
        "SELECT {TRANSFER_COLUMNS} FROM ledger_transfers WHERE transfer_id IN ({})",
        placeholders(ids.len())
    );
    let mut query = q(sql);
    for id in ids {
        query = query.bind(id.to_string());
    }
    query.fetch_all(conn).await?.iter().map(decode_transfer).collect()
}

async fn load_pending(
    conn: &mut dyn Conn,
    ids: &[TransferId],
) -> Result<BTreeMap<TransferId, PendingState>, StoreError> {
    if ids.is_empty() {
        return Ok(BTreeMap::new());
    }
    let sql = format!(
        "SELECT transfer_id, state FROM ledger_pending WHERE transfer_id IN ({})",
        placeholders(ids.len())
    );
    let mut query = q(sql);
    for id in ids {
        query = query.bind(id.to_string());
    }
    query
        .fetch_all(conn)
        .await?
        .iter()
        .map(|r| {
            Ok((
                rows::id(r, "transfer_id")?,
                rows::parsed("state", PendingState::parse(&rows::text(r, "state")?))?,
            ))
        })
        .collect()
}

fn placeholders(n: usize) -> String {
    (1..=n).map(|i| format!("${i}")).collect::<Vec<_>>().join(", ")
}

fn decode_account(row: &Row) -> Result<Account, StoreError> {
    Ok(Account {
        id: rows::id(row, "account_id")?,
        kind: rows::parsed("kind", AccountKind::parse(&rows::text(row, "kind")?))?,
        merchant: row.opt_text("merchant_id")?.map(|m| rows::parsed("merchant_id", m.parse())).transpose()?,
        flags: AccountFlags {
            debits_must_not_exceed_credits: rows::int(row, "debits_must_not_exceed_credits")? != 0,
            credits_must_not_exceed_debits: rows::int(row, "credits_must_not_exceed_debits")? != 0,
        },
        balances: Balances {
            debits_pending: rows::int(row, "debits_pending")?,
            debits_posted: rows::int(row, "debits_posted")?,
            credits_pending: rows::int(row, "credits_pending")?,
            credits_posted: rows::int(row, "credits_posted")?,
        },
    })
}

fn decode_transfer(row: &Row) -> Result<Transfer, StoreError> {
    let money = |column: &str| -> Result<Money, StoreError> {
        rows::parsed(column, Money::from_rupiah(rows::int(row, column)?))
    };
    let pending = || -> Result<TransferId, StoreError> {
        let raw = row.opt_text("pending_id")?.unwrap_or_default();
        rows::parsed("pending_id", raw.parse())
    };
    let kind = match rows::text(row, "kind")?.as_str() {
        "single" => TransferKind::Single,
        "pending" => TransferKind::Pending { timeout_ms: rows::int(row, "timeout_ms")? },
        "post" => {
            let amount = match row.value("post_amount_idr")? {
                crate::db::Value::Int(v) => Some(rows::parsed("post_amount_idr", Money::from_rupiah(*v))?),
                _ => None,
            };
            TransferKind::Post { pending: pending()?, amount }
        }
        "void" => TransferKind::Void { pending: pending()? },
        other => {
            return Err(StoreError::Database(crate::db::DbError::new(format!(
                "unknown transfer kind {other}"
            ))));
        }
    };
    Ok(Transfer {
        new: NewTransfer {
            id: rows::id(row, "transfer_id")?,
            debit: rows::id(row, "debit_account_id")?,
            credit: rows::id(row, "credit_account_id")?,
            amount: money("amount_idr")?,
            kind,
            linked: rows::int(row, "linked")? != 0,
            code: u16::try_from(rows::int(row, "code")?).unwrap_or(u16::MAX),
        },
        amount_posted: money("amount_posted_idr")?,
        timestamp: Timestamp::from_unix_ms(rows::int(row, "timestamp_ms")?),
    })
}

/// The platform's accounts with their limits: escrow can never pay out more than it holds.
pub fn platform_accounts() -> Vec<(AccountId, AccountKind, Option<MerchantId>, AccountFlags)> {
    AccountKind::ALL
        .into_iter()
        .filter(|k| *k != AccountKind::MerchantBalance)
        .map(|kind| {
            let flags = AccountFlags {
                debits_must_not_exceed_credits: kind == AccountKind::Escrow,
                ..Default::default()
            };
            (jembatan_domain::ledger::platform_account(kind), kind, None, flags)
        })
        .collect()
}

/// A merchant's balance account: it may never go below zero.
pub fn merchant_account(merchant: MerchantId) -> (AccountId, AccountKind, Option<MerchantId>, AccountFlags) {
    let flags = AccountFlags { debits_must_not_exceed_credits: true, ..Default::default() };
    (
        jembatan_domain::ledger::merchant_balance_account(merchant),
        AccountKind::MerchantBalance,
        Some(merchant),
        flags,
    )
}

/// Creates whichever of `wanted` do not exist yet (with their journal entries).
pub(crate) async fn ensure_accounts(
    conn: &mut dyn Conn,
    ctx: &WriteCtx,
    wanted: &[(AccountId, AccountKind, Option<MerchantId>, AccountFlags)],
) -> Result<(), StoreError> {
    let ids: Vec<AccountId> = wanted.iter().map(|w| w.0).collect();
    let existing: BTreeSet<AccountId> =
        load_accounts(conn, &ids, false).await?.into_iter().map(|a| a.id).collect();
    for (id, kind, merchant, flags) in wanted.iter().filter(|w| !existing.contains(&w.0)) {
        q("INSERT INTO ledger_accounts (account_id, kind, merchant_id, debits_must_not_exceed_credits,
               credits_must_not_exceed_debits, debits_pending, debits_posted, credits_pending, credits_posted, created_at_ms)
           VALUES ($1, $2, $3, $4, $5, 0, 0, 0, 0, $6) ON CONFLICT (account_id) DO NOTHING")
        .bind(id.to_string())
        .bind(kind.as_str())
        .bind(merchant.map(|m| m.to_string()))
        .bind(i64::from(flags.debits_must_not_exceed_credits))
        .bind(i64::from(flags.credits_must_not_exceed_debits))
        .bind(ctx.now.unix_ms())
        .execute(&mut *conn)
        .await?;
        journal::record(
            conn,
            ctx,
            Change {
                event_type: "ledger.account_created",
                action: "ledger.create_account",
                entity_type: "ledger_account",
                entity_id: id.to_string(),
                merchant_id: *merchant,
                channel: None,
                payload: serde_json::json!({"account_id": id.to_string(), "kind": kind.as_str()}),
            },
        )
        .await?;
    }
    Ok(())
}

/// Applies transfers that must all succeed, inside the caller's unit: a refusal is an error
/// that rolls the whole unit back. (An identical transfer already recorded counts as done.)
pub(crate) async fn apply_all(
    conn: &mut dyn Conn,
    ctx: &WriteCtx,
    batch: Vec<NewTransfer>,
) -> Result<(), StoreError> {
    let sides: Vec<(TransferId, AccountId, Money)> =
        batch.iter().map(|t| (t.id, t.debit, t.amount)).collect();
    let results = create_transfers_unit(conn, ctx.clone(), batch).await?;
    for ((id, debit, amount), result) in sides.into_iter().zip(results) {
        if let Err(error) = result {
            if matches!(error, TransferError::ExceedsCredits) {
                // A balance limit (a merchant balance below zero): the caller asked for more
                // than the account holds, not a broken ledger. Say how much it holds.
                let account = q("SELECT credits_posted - debits_posted - debits_pending AS available
                     FROM ledger_accounts WHERE account_id = $1")
                .bind(debit.to_string())
                .fetch_one(&mut *conn)
                .await?;
                return Err(DomainError::InsufficientBalance {
                    available: rows::int(&account, "available")?,
                    requested: amount.rupiah(),
                }
                .into());
            }
            tracing::error!(transfer_id = %id, %error, "the ledger refused a transfer that must succeed");
            return Err(StoreError::Conflict(format!("the ledger refused transfer {id}: {error}")));
        }
    }
    Ok(())
}

impl Store {
    /// Creates the platform's accounts if they are missing; run when the store opens.
    pub async fn ensure_platform_accounts(&self, ctx: WriteCtx) -> Result<(), StoreError> {
        self.write(None, move |conn| {
            Box::pin(async move { ensure_accounts(conn, &ctx, &platform_accounts()).await })
        })
        .await
    }
}
