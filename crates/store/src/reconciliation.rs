//! Reconciliation runs: a provider's settlement report matched against our side
//! ([`jembatan_domain::reconcile`]) and stored with every finding, so runs can be read later.
//! A run is a report, not a change to money: importing the same file twice makes two runs.
//!
//! Our side: payments by `provider_ref` that are paid (at `paid_at_ms`), refunds by
//! `refund_id` (at `created_at_ms`), payouts by `payout_id` that are paid (at
//! `confirmed_at_ms`).

use std::collections::BTreeMap;

use jembatan_domain::reconcile::{EntryKind, Item, LedgerEntry, Outcome, Report, reconcile};
use jembatan_domain::{Money, ReconciliationId, Timestamp};

use crate::db::{Conn, Row, q};
use crate::error::StoreError;
use crate::exec::{Idem, Store, WriteCtx};
use crate::journal::{self, Change};
use crate::{new_id, rows};

/// References looked up per statement (bound parameters stay far below either engine's limit).
const LOOKUP_CHUNK_REFERENCES: usize = 500;
/// Items inserted per statement.
const INSERT_CHUNK_ITEMS: usize = 200;

#[derive(Debug, Clone, PartialEq, Eq)]
pub struct ReconciliationRecord {
    pub id: ReconciliationId,
    pub created_at: Timestamp,
    pub period: (Timestamp, Timestamp),
    pub lines_count: usize,
    pub items: Vec<Item>,
}

impl ReconciliationRecord {
    pub fn count(&self, outcome: Outcome) -> usize {
        self.items.iter().filter(|i| i.outcome == outcome).count()
    }

    /// Everything matched.
    pub fn is_clean(&self) -> bool {
        self.items.iter().all(|i| i.outcome == Outcome::Matched)
    }
}

/// A stored run without its items, for listings.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct RunSummary {
    pub id: ReconciliationId,
    pub created_at: Timestamp,
    pub period: (Timestamp, Timestamp),
    pub lines_count: usize,
    pub counts: BTreeMap<Outcome, usize>,
}

impl RunSummary {
    pub fn count(&self, outcome: Outcome) -> usize {
        self.counts.get(&outcome).copied().unwrap_or(0)
    }

    pub fn is_clean(&self) -> bool {
        Outcome::ALL.iter().filter(|o| **o != Outcome::Matched).all(|o| self.count(*o) == 0)
    }
}

/// (kind, SQL selecting `reference`, `amount_idr`, `at_ms`; `{filter}` is replaced by the
/// reference or the period condition).
const SOURCES: [(EntryKind, &str, &str); 3] = [
    (
        EntryKind::Payment,
        "SELECT provider_ref AS reference, COALESCE(collected_idr, amount_idr) AS amount_idr, COALESCE(paid_at_ms, updated_at_ms) AS at_ms FROM payments
         WHERE status = 'paid' AND ",
        "provider_ref",
    ),
    (
        EntryKind::Refund,
        "SELECT refund_id AS reference, amount_idr, created_at_ms AS at_ms FROM refunds WHERE ",
        "refund_id",
    ),
    (
        EntryKind::Payout,
        "SELECT payout_id AS reference, amount_idr, confirmed_at_ms AS at_ms FROM payouts WHERE status = 'paid' AND ",
        "payout_id",
    ),
];

const TIME_COLUMNS: [&str; 3] = ["paid_at_ms", "created_at_ms", "confirmed_at_ms"];

impl Store {
    /// Matches `report` against our side and stores the run with its findings.
    pub async fn reconcile(
        &self,
        ctx: WriteCtx,
        report: Report,
        idem: Option<Idem<ReconciliationRecord>>,
    ) -> Result<ReconciliationRecord, StoreError> {
        let run = self.write(idem, move |conn| Box::pin(reconcile_unit(conn, ctx, report))).await?;
        for outcome in Outcome::ALL {
            metrics::counter!("jembatan_reconciliation_items_total", "outcome" => outcome.as_str())
                .increment(run.count(outcome) as u64);
        }
        Ok(run)
    }

    /// Stored runs, newest first, after the cursor `before`.
    pub async fn reconciliations(
        &self,
        before: Option<ReconciliationId>,
        limit: u32,
    ) -> Result<Vec<RunSummary>, StoreError> {
        let before = before.map(|b| b.to_string()).unwrap_or_default();
        self.read(move |conn| {
            Box::pin(async move {
                let rows = q("SELECT reconciliation_id, created_at_ms, period_from_ms, period_to_ms, lines_count,
                        matched_count, missing_in_ledger_count, missing_in_report_count, amount_mismatch_count,
                        duplicate_in_report_count
                     FROM reconciliation_runs WHERE ($1 = '' OR reconciliation_id < $1)
                     ORDER BY reconciliation_id DESC LIMIT $2")
                .bind(before)
                .bind(i64::from(limit))
                .fetch_all(conn)
                .await?;
                rows.iter().map(decode_summary).collect()
            })
        })
        .await
    }

    pub async fn reconciliation(
        &self,
        id: ReconciliationId,
    ) -> Result<Option<ReconciliationRecord>, StoreError> {
        self.read(move |conn| {
            Box::pin(async move {
                let row =
                    q("SELECT reconciliation_id, created_at_ms, period_from_ms, period_to_ms, lines_count
                     FROM reconciliation_runs WHERE reconciliation_id = $1")
                    .bind(id.to_string())
                    .fetch_optional(&mut *conn)
                    .await?;
                let Some(row) = row else { return Ok(None) };
                let items =
                    q("SELECT outcome, kind, reference, report_amount_idr, ledger_amount_idr, line_no
                     FROM reconciliation_items WHERE reconciliation_id = $1 ORDER BY item_no")
                    .bind(id.to_string())
                    .fetch_all(&mut *conn)
                    .await?
                    .iter()
                    .map(decode_item)
                    .collect::<Result<Vec<_>, _>>()?;
                Ok(Some(ReconciliationRecord {
                    id,
                    created_at: Timestamp::from_unix_ms(rows::int(&row, "created_at_ms")?),
                    period: (
                        Timestamp::from_unix_ms(rows::int(&row, "period_from_ms")?),
                        Timestamp::from_unix_ms(rows::int(&row, "period_to_ms")?),
                    ),
                    lines_count: rows::int(&row, "lines_count")? as usize,
                    items,
                }))
            })
        })
        .await
    }
}

async fn reconcile_unit(
    conn: &mut dyn Conn,
    ctx: WriteCtx,
    report: Report,
) -> Result<ReconciliationRecord, StoreError> {
    let ours = our_side(conn, &report).await?;
    let items = reconcile(&report, &ours);
    let id: ReconciliationId = new_id();
    let record = ReconciliationRecord {
        id,
        created_at: ctx.now,
        period: report.period,
        lines_count: report.lines.len(),
        items,
    };
    q("INSERT INTO reconciliation_runs (reconciliation_id, created_at_ms, period_from_ms, period_to_ms, lines_count,
           matched_count, missing_in_ledger_count, missing_in_report_count, amount_mismatch_count, duplicate_in_report_count)
       VALUES ($1, $2, $3, $4, $5, $6, $7, $8, $9, $10)")
    .bind(id.to_string())
    .bind(ctx.now.unix_ms())
    .bind(record.period.0.unix_ms())
    .bind(record.period.1.unix_ms())
    .bind(record.lines_count as i64)
    .bind(record.count(Outcome::Matched) as i64)
    .bind(record.count(Outcome::MissingInLedger) as i64)
    .bind(record.count(Outcome::MissingInReport) as i64)
    .bind(record.count(Outcome::AmountMismatch) as i64)
    .bind(record.count(Outcome::DuplicateInReport) as i64)
    .execute(&mut *conn)
    .await?;
    for (chunk_no, chunk) in record.items.chunks(INSERT_CHUNK_ITEMS).enumerate() {
        let values: Vec<String> = (0..chunk.len())
            .map(|i| {
                let p = i * 8;
                format!(
                    "(${}, ${}, ${}, ${}, ${}, ${}, ${}, ${})",
                    p + 1,
                    p + 2,
                    p + 3,
                    p + 4,
                    p + 5,
                    p + 6,
                    p + 7,
                    p + 8
                )
            })
            .collect();
        let mut insert = q(format!(
            "INSERT INTO reconciliation_items (reconciliation_id, item_no, outcome, kind, reference, report_amount_idr,
                 ledger_amount_idr, line_no) VALUES {}",
            values.join(", ")
        ));
        for (i, item) in chunk.iter().enumerate() {
            insert = insert
                .bind(id.to_string())
                .bind((chunk_no * INSERT_CHUNK_ITEMS + i + 1) as i64)
                .bind(item.outcome.as_str())
                .bind(item.kind.as_str())
                .bind(item.reference.as_str())
                .bind(item.report_amount.map(Money::rupiah))
                .bind(item.ledger_amount.map(Money::rupiah))
                .bind(item.line_no.map(|n| n as i64));
        }
        insert.execute(&mut *conn).await?;
    }
    let summary: serde_json::Map<String, serde_json::Value> =
        Outcome::ALL.iter().map(|o| (o.as_str().to_owned(), serde_json::json!(record.count(*o)))).collect();
    journal::record(
        conn,
        &ctx,
        Change {
            event_type: "reconciliation.completed",
            action: "reconciliation.import",
            entity_type: "reconciliation",
            entity_id: id.to_string(),
            merchant_id: None,
            channel: None,
            payload: serde_json::json!({
                "reconciliation_id": id.to_string(),
                "lines": record.lines_count,
                "outcomes": summary,
            }),
        },
    )
    .await?;
    Ok(record)
}

/// Our entries the report names, and every entry of ours inside the report's period.
async fn our_side(conn: &mut dyn Conn, report: &Report) -> Result<Vec<LedgerEntry>, StoreError> {
    let mut found: BTreeMap<(EntryKind, String), LedgerEntry> = BTreeMap::new();
    for ((kind, select, reference_column), time_column) in SOURCES.iter().zip(TIME_COLUMNS) {
        let references: Vec<&str> =
            report.lines.iter().filter(|l| l.kind == *kind).map(|l| l.reference.as_str()).collect();
        for chunk in references.chunks(LOOKUP_CHUNK_REFERENCES) {
            let placeholders: Vec<String> = (1..=chunk.len()).map(|i| format!("${i}")).collect();
            let mut query = q(format!("{select}{reference_column} IN ({})", placeholders.join(", ")));
            for reference in chunk {
                query = query.bind(*reference);
            }
            for row in query.fetch_all(&mut *conn).await? {
                let entry = decode_entry(*kind, &row)?;
                found.insert((entry.kind, entry.reference.clone()), entry);
            }
        }
        let in_period = q(format!("{select}{time_column} BETWEEN $1 AND $2"))
            .bind(report.period.0.unix_ms())
            .bind(report.period.1.unix_ms())
            .fetch_all(&mut *conn)
            .await?;
        for row in in_period {
            let entry = decode_entry(*kind, &row)?;
            found.insert((entry.kind, entry.reference.clone()), entry);
        }
    }
    Ok(found.into_values().collect())
}

fn decode_summary(row: &Row) -> Result<RunSummary, StoreError> {
    let mut counts = BTreeMap::new();
    for outcome in Outcome::ALL {
        let column = format!("{}_count", outcome.as_str());
        counts.insert(outcome, rows::int(row, &column)? as usize);
    }
    Ok(RunSummary {
        id: rows::id(row, "reconciliation_id")?,
        created_at: Timestamp::from_unix_ms(rows::int(row, "created_at_ms")?),
        period: (
            Timestamp::from_unix_ms(rows::int(row, "period_from_ms")?),
            Timestamp::from_unix_ms(rows::int(row, "period_to_ms")?),
        ),
        lines_count: rows::int(row, "lines_count")? as usize,
        counts,
    })
}

fn decode_entry(kind: EntryKind, row: &Row) -> Result<LedgerEntry, StoreError> {
    Ok(LedgerEntry {
        kind,
        reference: rows::text(row, "reference")?,
        amount: rows::parsed("amount_idr", Money::from_rupiah(rows::int(row, "amount_idr")?))?,
        at: Timestamp::from_unix_ms(rows::opt_int(row, "at_ms")?.unwrap_or(0)),
    })
}

fn decode_item(row: &Row) -> Result<Item, StoreError> {
    let money = |column: &str| -> Result<Option<Money>, StoreError> {
        rows::opt_int(row, column)?.map(|v| rows::parsed(column, Money::from_rupiah(v))).transpose()
    };
    Ok(Item {
        outcome: rows::parsed("outcome", Outcome::parse(&rows::text(row, "outcome")?))?,
        kind: rows::parsed("kind", EntryKind::parse(&rows::text(row, "kind")?))?,
        reference: rows::text(row, "reference")?,
        report_amount: money("report_amount_idr")?,
        ledger_amount: money("ledger_amount_idr")?,
        line_no: rows::opt_int(row, "line_no")?.map(|n| n as usize),
    })
}
