//! Payouts: a merchant's withdrawal from its balance to its bank, through payout clearing.
//!
//! Each step is one unit with its ledger transfers, outbox event and audit entry:
//! - request: a pending transfer merchant balance → payout clearing holds the amount (the
//!   balance account may not go below zero, so the ledger itself refuses a payout above what
//!   is available, and the unit writes nothing);
//! - batch: every requested payout becomes exported, listed in one file for the bank;
//! - confirmation: paid posts the hold and (linked) moves payout clearing → provider clearing:
//!   the money left the platform; failed voids the hold: the money is back in the balance.
//!
//! Transfer ids derive from the payout id and purpose, so no retry moves money twice.

use jembatan_domain::ledger::{
    AccountKind, NewTransfer, Purpose, TransferError, TransferKind, merchant_balance_account,
    payout_transfer_id, platform_account,
};
use jembatan_domain::payout::{
    AccountHolder, AccountNumber, BATCH_PAYOUTS_MAX, BankAccount, BankCode, BatchLine, Confirmation,
    FailureReason, PayoutOutcome, PayoutStatus, ResultLine, batch_file,
};
use jembatan_domain::{DomainError, MerchantId, Money, PayoutBatchId, PayoutId, Timestamp};

use crate::db::{Conn, Row, q};
use crate::error::StoreError;
use crate::exec::{Idem, Store, WriteCtx};
use crate::journal::{self, Change};
use crate::{new_id, rows};

/// What a merchant asks to withdraw, parsed.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct NewPayout {
    pub merchant_id: MerchantId,
    pub amount: Money,
    pub account: BankAccount,
}

#[derive(Debug, Clone, PartialEq, Eq)]
pub struct PayoutRecord {
    pub id: PayoutId,
    pub merchant_id: MerchantId,
    pub amount: Money,
    pub account: BankAccount,
    pub status: PayoutStatus,
    pub batch_id: Option<PayoutBatchId>,
    pub failure_reason: Option<FailureReason>,
    pub created_at: Timestamp,
    pub updated_at: Timestamp,
    pub confirmed_at: Option<Timestamp>,
}

#[derive(Debug, Clone, PartialEq, Eq)]
pub struct PayoutBatchRecord {
    pub id: PayoutBatchId,
    pub created_at: Timestamp,
    pub total: Money,
    pub payouts: Vec<PayoutRecord>,
}

impl PayoutBatchRecord {
    /// The CSV file for the bank.
    pub fn file(&self) -> String {
        let lines: Vec<BatchLine<'_>> = self
            .payouts
            .iter()
            .map(|p| BatchLine { payout_id: p.id, account: &p.account, amount: p.amount })
            .collect();
        batch_file(self.id, &lines)
    }
}

/// A confirmation's result: the payout, and whether this confirmation changed it (a repeated
/// one does not).
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct ConfirmationRecord {
    pub payout: PayoutRecord,
    pub changed: bool,
}

/// What one line of a bank result file did.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum LineOutcome {
    Applied(PayoutRecord),
    /// The same answer was applied before: nothing changed.
    Unchanged(PayoutRecord),
    /// The answer contradicts the payout's state; nothing changed.
    Conflict(String),
    NotFound,
}

#[derive(Debug, Clone, PartialEq, Eq)]
pub struct ResultLineRecord {
    pub line_no: usize,
    pub payout_id: PayoutId,
    pub outcome: LineOutcome,
}

/// A merchant's money as the ledger has it.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct MerchantBalance {
    /// Posted credits − posted debits − pending debits of the balance account.
    pub available: Money,
    /// Held for payouts not yet confirmed.
    pub pending_payouts: Money,
    /// Everything confirmed paid out so far.
    pub paid_out_total: Money,
}

const COLUMNS: &str = "merchant_id, payout_id, amount_idr, bank_code, account_number, account_holder, status, batch_id, \
     failure_reason, created_at_ms, updated_at_ms, confirmed_at_ms";

impl Store {
    /// Holds `amount` of the merchant's balance for a payout; refused (and nothing written)
    /// when the balance does not cover it.
    pub async fn request_payout(
        &self,
        ctx: WriteCtx,
        payout: NewPayout,
        idem: Option<Idem<PayoutRecord>>,
    ) -> Result<PayoutRecord, StoreError> {
        let outcome = self.write(idem, move |conn| Box::pin(request_unit(conn, ctx, payout))).await;
        // Counted after the commit, so only what happened is counted.
        let result = match &outcome {
            Ok(_) => "held",
            Err(StoreError::Domain(DomainError::InsufficientBalance { .. })) => "insufficient_balance",
            Err(_) => "failed",
        };
        metrics::counter!("jembatan_payout_requests_total", "result" => result).increment(1);
        outcome
    }

    pub async fn payout(&self, id: PayoutId) -> Result<Option<PayoutRecord>, StoreError> {
        self.read(move |conn| Box::pin(load_payout(conn, id))).await
    }

    /// One merchant's payouts, newest first, after the cursor `before`.
    pub async fn payouts_of_merchant(
        &self,
        merchant_id: MerchantId,
        before: Option<PayoutId>,
        limit: u32,
    ) -> Result<Vec<PayoutRecord>, StoreError> {
        let before = before.map(|b| b.to_string()).unwrap_or_default();
        self.read(move |conn| {
            Box::pin(async move {
                let sql = format!(
                    "SELECT {COLUMNS} FROM payouts WHERE merchant_id = $1 AND ($2 = '' OR payout_id < $2)
                     ORDER BY payout_id DESC LIMIT $3"
                );
                let rows = q(sql)
                    .bind(merchant_id.to_string())
                    .bind(before)
                    .bind(i64::from(limit))
                    .fetch_all(conn)
                    .await?;
                rows.iter().map(decode).collect()
            })
        })
        .await
    }

    /// Exports every requested payout (at most [`BATCH_PAYOUTS_MAX`], oldest first) in one
    /// batch; refused when none is waiting.
    pub async fn create_payout_batch(
        &self,
        ctx: WriteCtx,
        idem: Option<Idem<PayoutBatchRecord>>,
    ) -> Result<PayoutBatchRecord, StoreError> {
        let batch = self.write(idem, move |conn| Box::pin(batch_unit(conn, ctx))).await?;
        metrics::counter!("jembatan_payouts_exported_total").increment(batch.payouts.len() as u64);
        Ok(batch)
    }

    pub async fn payout_batch(&self, id: PayoutBatchId) -> Result<Option<PayoutBatchRecord>, StoreError> {
        self.read(move |conn| {
            Box::pin(async move {
                let row =
                    q("SELECT batch_id, created_at_ms, total_idr FROM payout_batches WHERE batch_id = $1")
                        .bind(id.to_string())
                        .fetch_optional(&mut *conn)
                        .await?;
                let Some(row) = row else { return Ok(None) };
                let sql = format!("SELECT {COLUMNS} FROM payouts WHERE batch_id = $1 ORDER BY payout_id");
                let payouts = q(sql)
                    .bind(id.to_string())
                    .fetch_all(&mut *conn)
                    .await?
                    .iter()
                    .map(decode)
                    .collect::<Result<Vec<_>, _>>()?;
                Ok(Some(PayoutBatchRecord {
                    id,
                    created_at: Timestamp::from_unix_ms(rows::int(&row, "created_at_ms")?),
                    total: money(&row, "total_idr")?,
                    payouts,
                }))
            })
        })
        .await
    }

    /// Applies the bank's answer about one payout. A repeated answer changes nothing (and says
    /// so); a contradictory one is a conflict.
    pub async fn confirm_payout(
        &self,
        ctx: WriteCtx,
        id: PayoutId,
        outcome: PayoutOutcome,
        idem: Option<Idem<ConfirmationRecord>>,
    ) -> Result<ConfirmationRecord, StoreError> {
        let confirmation = self
            .write(idem, move |conn| {
                Box::pin(async move {
                    let (payout, changed) = confirm_in_unit(conn, &ctx, id, &outcome).await?;
                    Ok(ConfirmationRecord { payout, changed })
                })
            })
            .await?;
        if confirmation.changed {
            count_confirmed(&confirmation.payout);
        }
        Ok(confirmation)
    }

    /// Applies a bank result file in one unit, line by line: each line is applied, found
    /// already applied, or reported (a contradiction, an unknown payout) without changing it.
    pub async fn apply_payout_results(
        &self,
        ctx: WriteCtx,
        lines: Vec<ResultLine>,
        idem: Option<Idem<Vec<ResultLineRecord>>>,
    ) -> Result<Vec<ResultLineRecord>, StoreError> {
        let results = self
            .write(idem, move |conn| {
                Box::pin(async move {
                    let mut results = Vec::with_capacity(lines.len());
                    for line in lines {
                        let outcome = match confirm_in_unit(conn, &ctx, line.payout_id, &line.outcome).await {
                            Ok((payout, true)) => LineOutcome::Applied(payout),
                            Ok((payout, false)) => LineOutcome::Unchanged(payout),
                            Err(StoreError::Domain(DomainError::PayoutConflict(reason))) => {
                                LineOutcome::Conflict(reason)
                            }
                            Err(StoreError::NotFound { .. }) => LineOutcome::NotFound,
                            Err(other) => return Err(other),
                        };
                        results.push(ResultLineRecord {
                            line_no: line.line_no,
                            payout_id: line.payout_id,
                            outcome,
                        });
                    }
                    Ok(results)
                })
            })
            .await?;
        for line in &results {
            if let LineOutcome::Applied(payout) = &line.outcome {
                count_confirmed(payout);
            }
        }
        Ok(results)
    }

    /// The merchant's balance, pending payouts and total paid out, from its ledger account and
    /// transfers.
    pub async fn merchant_balance(&self, merchant_id: MerchantId) -> Result<MerchantBalance, StoreError> {
        self.read(move |conn| {
            Box::pin(async move {
                let account = merchant_balance_account(merchant_id).to_string();
                let row = q("SELECT
                        (SELECT CAST(COALESCE(SUM(credits_posted - debits_posted - debits_pending), 0) AS BIGINT)
                           FROM ledger_accounts WHERE account_id = $1) AS available,
                        (SELECT CAST(COALESCE(SUM(t.amount_idr), 0) AS BIGINT) FROM ledger_transfers t
                           JOIN ledger_pending p ON p.transfer_id = t.transfer_id AND p.state = 'pending'
                           WHERE t.debit_account_id = $1 AND t.code = $2) AS pending_payouts,
                        (SELECT CAST(COALESCE(SUM(amount_posted_idr), 0) AS BIGINT) FROM ledger_transfers
                           WHERE debit_account_id = $1 AND code = $3) AS paid_out_total")
                .bind(account)
                .bind(Purpose::PayoutHold as i64)
                .bind(Purpose::PayoutPost as i64)
                .fetch_one(conn)
                .await?;
                Ok(MerchantBalance {
                    available: money(&row, "available")?,
                    pending_payouts: money(&row, "pending_payouts")?,
                    paid_out_total: money(&row, "paid_out_total")?,
                })
            })
        })
        .await
    }
}

/// Payouts the bank answered, by answer, with their amount.
fn count_confirmed(payout: &PayoutRecord) {
    let status = payout.status.as_str();
    metrics::counter!("jembatan_payouts_confirmed_total", "status" => status).increment(1);
    metrics::counter!("jembatan_payouts_confirmed_rupiah_total", "status" => status)
        .increment(payout.amount.rupiah().unsigned_abs());
}

async fn request_unit(
    conn: &mut dyn Conn,
    ctx: WriteCtx,
    new: NewPayout,
) -> Result<PayoutRecord, StoreError> {
    let merchant = q("SELECT merchant_id FROM merchants WHERE merchant_id = $1")
        .bind(new.merchant_id.to_string())
        .fetch_optional(&mut *conn)
        .await?;
    if merchant.is_none() {
        return Err(StoreError::not_found("merchant", new.merchant_id));
    }
    crate::ledger::ensure_accounts(conn, &ctx, &[crate::ledger::merchant_account(new.merchant_id)]).await?;
    let id: PayoutId = new_id();
    let balance = merchant_balance_account(new.merchant_id);
    let hold = NewTransfer {
        id: payout_transfer_id(id, Purpose::PayoutHold),
        debit: balance,
        credit: platform_account(AccountKind::PayoutClearing),
        amount: new.amount,
        kind: TransferKind::Pending { timeout_ms: 0 },
        linked: false,
        code: Purpose::PayoutHold as u16,
    };
    let result = crate::ledger::create_transfers_unit(conn, ctx.clone(), vec![hold]).await?.pop();
    match result {
        Some(Ok(_)) => {}
        Some(Err(TransferError::ExceedsCredits)) => {
            // The ledger refused: read what is available, for the message, and write nothing.
            let account = q("SELECT credits_posted - debits_posted - debits_pending AS available
                 FROM ledger_accounts WHERE account_id = $1")
            .bind(balance.to_string())
            .fetch_one(&mut *conn)
            .await?;
            return Err(DomainError::InsufficientBalance {
                available: rows::int(&account, "available")?,
                requested: new.amount.rupiah(),
            }
            .into());
        }
        Some(Err(error)) => {
            tracing::error!(payout_id = %id, %error, "the ledger refused a payout hold");
            return Err(StoreError::Conflict(format!("the ledger refused the payout's hold: {error}")));
        }
        None => unreachable!("one transfer, one result"),
    }
    q("INSERT INTO payouts (merchant_id, payout_id, amount_idr, bank_code, account_number, account_holder, status,
           batch_id, failure_reason, created_at_ms, updated_at_ms, confirmed_at_ms)
       VALUES ($1, $2, $3, $4, $5, $6, 'requested', NULL, NULL, $7, $7, NULL)")
    .bind(new.merchant_id.to_string())
    .bind(id.to_string())
    .bind(new.amount.rupiah())
    .bind(new.account.bank_code.as_str())
    .bind(new.account.account_number.as_str())
    .bind(new.account.holder.as_str())
    .bind(ctx.now.unix_ms())
    .execute(&mut *conn)
    .await?;
    journal::record(
        conn,
        &ctx,
        Change {
            event_type: "payout.requested",
            action: "payout.request",
            entity_type: "payout",
            entity_id: id.to_string(),
            merchant_id: Some(new.merchant_id),
            channel: None,
            // No bank details: events reach webhooks and reports.
            payload: serde_json::json!({
                "payout_id": id.to_string(),
                "merchant_id": new.merchant_id.to_string(),
                "amount": new.amount.rupiah(),
                "status": PayoutStatus::Requested.as_str(),
            }),
        },
    )
    .await?;
    Ok(PayoutRecord {
        id,
        merchant_id: new.merchant_id,
        amount: new.amount,
        account: new.account,
        status: PayoutStatus::Requested,
        batch_id: None,
        failure_reason: None,
        created_at: ctx.now,
        updated_at: ctx.now,
        confirmed_at: None,
    })
}

async fn batch_unit(conn: &mut dyn Conn, ctx: WriteCtx) -> Result<PayoutBatchRecord, StoreError> {
    let sql = format!("SELECT {COLUMNS} FROM payouts WHERE status = 'requested' ORDER BY payout_id LIMIT $1");
    let waiting = q(sql)
        .bind(BATCH_PAYOUTS_MAX as i64)
        .fetch_all(&mut *conn)
        .await?
        .iter()
        .map(decode)
        .collect::<Result<Vec<_>, _>>()?;
    if waiting.is_empty() {
        return Err(DomainError::PayoutConflict("no payout is waiting to be exported".to_owned()).into());
    }
    let batch_id: PayoutBatchId = new_id();
    let mut total = Money::ZERO;
    let mut payouts = Vec::with_capacity(waiting.len());
    for payout in waiting {
        total = total.checked_add(payout.amount)?;
        let moved = q("UPDATE payouts SET status = 'exported', batch_id = $3, updated_at_ms = $4
             WHERE merchant_id = $1 AND payout_id = $2 AND status = 'requested'")
        .bind(payout.merchant_id.to_string())
        .bind(payout.id.to_string())
        .bind(batch_id.to_string())
        .bind(ctx.now.unix_ms())
        .execute(&mut *conn)
        .await?;
        if moved != 1 {
            return Err(StoreError::Conflict(format!(
                "payout {} changed while being exported: create the batch again",
                payout.id
            )));
        }
        journal::record(
            conn,
            &ctx,
            Change {
                event_type: "payout.exported",
                action: "payout.export",
                entity_type: "payout",
                entity_id: payout.id.to_string(),
                merchant_id: Some(payout.merchant_id),
                channel: None,
                payload: serde_json::json!({
                    "payout_id": payout.id.to_string(),
                    "batch_id": batch_id.to_string(),
                    "status": PayoutStatus::Exported.as_str(),
                }),
            },
        )
        .await?;
        payouts.push(PayoutRecord {
            status: PayoutStatus::Exported,
            batch_id: Some(batch_id),
            updated_at: ctx.now,
            ..payout
        });
    }
    q("INSERT INTO payout_batches (batch_id, created_at_ms, payouts_count, total_idr) VALUES ($1, $2, $3, $4)")
        .bind(batch_id.to_string())
        .bind(ctx.now.unix_ms())
        .bind(payouts.len() as i64)
        .bind(total.rupiah())
        .execute(&mut *conn)
        .await?;
    journal::record(
        conn,
        &ctx,
        Change {
            event_type: "payout_batch.created",
            action: "payout_batch.create",
            entity_type: "payout_batch",
            entity_id: batch_id.to_string(),
            merchant_id: None,
            channel: None,
            payload: serde_json::json!({
                "batch_id": batch_id.to_string(),
                "payouts": payouts.len(),
                "total": total.rupiah(),
            }),
        },
    )
    .await?;
    Ok(PayoutBatchRecord { id: batch_id, created_at: ctx.now, total, payouts })
}

/// One confirmation inside the caller's unit; returns the payout and whether it changed. A
/// refusal (unknown payout, contradiction) happens before anything is written.
async fn confirm_in_unit(
    conn: &mut dyn Conn,
    ctx: &WriteCtx,
    id: PayoutId,
    outcome: &PayoutOutcome,
) -> Result<(PayoutRecord, bool), StoreError> {
    let payout = load_payout(conn, id).await?.ok_or_else(|| StoreError::not_found("payout", id))?;
    let next = match payout.status.confirm(outcome)? {
        Confirmation::AlreadyConfirmed => return Ok((payout, false)),
        Confirmation::Apply(next) => next,
    };
    let reason = match outcome {
        PayoutOutcome::Failed(reason) => Some(reason.clone()),
        PayoutOutcome::Paid => None,
    };
    let moved =
        q("UPDATE payouts SET status = $3, failure_reason = $4, updated_at_ms = $5, confirmed_at_ms = $5
         WHERE merchant_id = $1 AND payout_id = $2 AND status = $6")
        .bind(payout.merchant_id.to_string())
        .bind(id.to_string())
        .bind(next.as_str())
        .bind(reason.as_ref().map(|r| r.as_str().to_owned()))
        .bind(ctx.now.unix_ms())
        .bind(payout.status.as_str())
        .execute(&mut *conn)
        .await?;
    if moved != 1 {
        return Err(StoreError::Conflict(format!("payout {id} changed while being confirmed: retry")));
    }
    let balance = merchant_balance_account(payout.merchant_id);
    let clearing = platform_account(AccountKind::PayoutClearing);
    let hold = payout_transfer_id(id, Purpose::PayoutHold);
    let transfer = |purpose: Purpose, debit, credit, kind, linked| NewTransfer {
        id: payout_transfer_id(id, purpose),
        debit,
        credit,
        amount: payout.amount,
        kind,
        linked,
        code: purpose as u16,
    };
    let batch = match next {
        PayoutStatus::Paid => vec![
            transfer(
                Purpose::PayoutPost,
                balance,
                clearing,
                TransferKind::Post { pending: hold, amount: None },
                true,
            ),
            transfer(
                Purpose::PayoutSend,
                clearing,
                platform_account(AccountKind::ProviderClearing),
                TransferKind::Single,
                false,
            ),
        ],
        PayoutStatus::Failed => {
            vec![transfer(
                Purpose::PayoutVoid,
                balance,
                clearing,
                TransferKind::Void { pending: hold },
                false,
            )]
        }
        other => unreachable!("a confirmation never moves a payout to {other:?}"),
    };
    crate::ledger::apply_all(conn, ctx, batch).await?;
    let (event_type, action) = match next {
        PayoutStatus::Paid => ("payout.paid", "payout.confirm_paid"),
        _ => ("payout.failed", "payout.confirm_failed"),
    };
    journal::record(
        conn,
        ctx,
        Change {
            event_type,
            action,
            entity_type: "payout",
            entity_id: id.to_string(),
            merchant_id: Some(payout.merchant_id),
            channel: None,
            payload: serde_json::json!({
                "payout_id": id.to_string(),
                "merchant_id": payout.merchant_id.to_string(),
                "amount": payout.amount.rupiah(),
                "from": payout.status.as_str(),
                "status": next.as_str(),
                "reason": reason.as_ref().map(|r| r.as_str()),
            }),
        },
    )
    .await?;
    let confirmed = PayoutRecord {
        status: next,
        failure_reason: reason,
        updated_at: ctx.now,
        confirmed_at: Some(ctx.now),
        ..payout
    };
    Ok((confirmed, true))
}

async fn load_payout(conn: &mut dyn Conn, id: PayoutId) -> Result<Option<PayoutRecord>, StoreError> {
    let sql = format!("SELECT {COLUMNS} FROM payouts WHERE payout_id = $1");
    let row = q(sql).bind(id.to_string()).fetch_optional(conn).await?;
    row.map(|r| decode(&r)).transpose()
}

fn money(row: &Row, column: &str) -> Result<Money, StoreError> {
    rows::parsed(column, Money::from_rupiah(rows::int(row, column)?))
}

fn decode(row: &Row) -> Result<PayoutRecord, StoreError> {
    let text = |column: &str| rows::text(row, column);
    Ok(PayoutRecord {
        id: rows::id(row, "payout_id")?,
        merchant_id: rows::id(row, "merchant_id")?,
        amount: money(row, "amount_idr")?,
        account: BankAccount {
            bank_code: rows::parsed("bank_code", BankCode::parse(&text("bank_code")?))?,
            account_number: rows::parsed("account_number", AccountNumber::parse(&text("account_number")?))?,
            holder: rows::parsed("account_holder", AccountHolder::parse(&text("account_holder")?))?,
        },
        status: rows::parsed("status", PayoutStatus::parse(&text("status")?))?,
        batch_id: row.opt_text("batch_id")?.map(|b| rows::parsed("batch_id", b.parse())).transpose()?,
        failure_reason: row
            .opt_text("failure_reason")?
            .map(|r| rows::parsed("failure_reason", FailureReason::parse(&r)))
            .transpose()?,
        created_at: Timestamp::from_unix_ms(rows::int(row, "created_at_ms")?),
        updated_at: Timestamp::from_unix_ms(rows::int(row, "updated_at_ms")?),
        confirmed_at: rows::opt_int(row, "confirmed_at_ms")?.map(Timestamp::from_unix_ms),
    })
}
