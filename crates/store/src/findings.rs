//! Compliance findings (issue 6) and the facts the bulk scan reads to find them.

use jembatan_domain::{FindingId, Timestamp};

use crate::db::{Conn, Row, q};
use crate::error::StoreError;
use crate::exec::{Store, WriteCtx};
use crate::journal::{self, Change};
use crate::{new_id, rows};

/// A finding about to be recorded.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct NewFinding {
    /// Empty for a finding of the platform itself.
    pub merchant_id: String,
    pub rule_id: String,
    pub article: String,
    pub severity: String,
    pub entity_type: String,
    pub entity_id: String,
    /// What shows it, as JSON text (no personal data: the regulator reads it).
    pub evidence: String,
}

#[derive(Debug, Clone, PartialEq, Eq)]
pub struct FindingRecord {
    pub id: FindingId,
    pub finding: NewFinding,
    pub state: String,
    pub found_at: Timestamp,
    pub updated_at: Timestamp,
}

/// A listed SKU as the scan checks it.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct ListingFacts {
    pub merchant_id: String,
    pub sku_id: String,
    pub product_id: String,
    pub category: String,
    pub price_idr: i64,
    pub origin: String,
}

/// An order of the social channel the core holds as paid (or further) without a payment.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct UnpaidSocialOrder {
    pub merchant_id: String,
    pub order_id: String,
    pub status: String,
    pub total_idr: i64,
}

fn decode(r: &Row) -> Result<FindingRecord, StoreError> {
    Ok(FindingRecord {
        id: rows::id(r, "finding_id")?,
        finding: NewFinding {
            merchant_id: rows::text(r, "merchant_id")?,
            rule_id: rows::text(r, "rule_id")?,
            article: rows::text(r, "article")?,
            severity: rows::text(r, "severity")?,
            entity_type: rows::text(r, "entity_type")?,
            entity_id: rows::text(r, "entity_id")?,
            evidence: rows::text(r, "evidence")?,
        },
        state: rows::text(r, "state")?,
        found_at: Timestamp::from_unix_ms(rows::int(r, "found_at_ms")?),
        updated_at: Timestamp::from_unix_ms(rows::int(r, "updated_at_ms")?),
    })
}

async fn insert(conn: &mut dyn Conn, ctx: &WriteCtx, f: NewFinding) -> Result<bool, StoreError> {
    let id: FindingId = new_id();
    let inserted = q(
        "INSERT INTO findings (finding_id, merchant_id, rule_id, article, severity, entity_type, entity_id,
                          evidence, state, found_at_ms, updated_at_ms)
                      VALUES ($1, $2, $3, $4, $5, $6, $7, $8, 'open', $9, $9) ON CONFLICT DO NOTHING",
    )
    .bind(id.to_string())
    .bind(f.merchant_id.clone())
    .bind(f.rule_id.clone())
    .bind(f.article.clone())
    .bind(f.severity.clone())
    .bind(f.entity_type.clone())
    .bind(f.entity_id.clone())
    .bind(f.evidence.clone())
    .bind(ctx.now.unix_ms())
    .execute(&mut *conn)
    .await?;
    if inserted == 1 {
        journal::record(
            conn,
            ctx,
            Change {
                event_type: "finding.opened",
                action: "finding.open",
                entity_type: "finding",
                entity_id: id.to_string(),
                merchant_id: f.merchant_id.parse().ok(),
                channel: None,
                payload: serde_json::json!({
                    "finding_id": id.to_string(),
                    "rule": f.rule_id,
                    "entity_type": f.entity_type,
                    "entity_id": f.entity_id,
                    "merchant_id": f.merchant_id,
                }),
            },
        )
        .await?;
    }
    Ok(inserted == 1)
}

impl Store {
    /// Records findings in one unit; one already recorded for the same rule and entity is
    /// left as it is. How many are new.
    pub async fn record_findings(&self, ctx: WriteCtx, findings: Vec<NewFinding>) -> Result<u64, StoreError> {
        self.write(None, move |conn| {
            let findings = findings.clone();
            Box::pin(async move {
                let mut new = 0;
                for f in findings {
                    new += u64::from(insert(conn, &ctx, f).await?);
                }
                Ok(new)
            })
        })
        .await
    }

    /// Findings, newest first, optionally of one merchant, rule or state, before the cursor.
    pub async fn findings(
        &self,
        merchant_id: Option<String>,
        rule_id: Option<String>,
        state: Option<String>,
        before: Option<String>,
        limit: u32,
    ) -> Result<Vec<FindingRecord>, StoreError> {
        self.read(move |conn| {
            Box::pin(async move {
                let merchant = if merchant_id.is_some() { "merchant_id = $1" } else { "$1 = ''" };
                q(format!(
                    "SELECT * FROM findings WHERE {merchant} AND ($2 = '' OR rule_id = $2) AND ($3 = '' OR state = $3)
                       AND ($4 = '' OR finding_id < $4) ORDER BY finding_id DESC LIMIT $5"
                ))
                .bind(merchant_id.unwrap_or_default())
                .bind(rule_id.unwrap_or_default())
                .bind(state.unwrap_or_default())
                .bind(before.unwrap_or_default())
                .bind(i64::from(limit))
                .fetch_all(conn)
                .await?
                .iter()
                .map(decode)
                .collect()
            })
        })
        .await
    }

    /// Listed SKUs after (merchant id, SKU id), with their merchant's origin.
    pub async fn listing_facts(
        &self,
        after: (String, String),
        limit: u32,
    ) -> Result<Vec<ListingFacts>, StoreError> {
        self.read(move |conn| {
            Box::pin(async move {
                q("SELECT k.merchant_id, k.sku_id, k.product_id, k.category, k.price_idr, m.origin
                   FROM skus k JOIN merchants m ON m.merchant_id = k.merchant_id
                   WHERE k.listed = 1 AND k.merchant_id >= $1 AND (k.merchant_id > $1 OR k.sku_id > $2)
                   ORDER BY k.merchant_id, k.sku_id LIMIT $3")
                .bind(after.0)
                .bind(after.1)
                .bind(i64::from(limit))
                .fetch_all(conn)
                .await?
                .iter()
                .map(|r| {
                    Ok(ListingFacts {
                        merchant_id: rows::text(r, "merchant_id")?,
                        sku_id: rows::text(r, "sku_id")?,
                        product_id: rows::text(r, "product_id")?,
                        category: rows::text(r, "category")?,
                        price_idr: rows::int(r, "price_idr")?,
                        origin: rows::text(r, "origin")?,
                    })
                })
                .collect()
            })
        })
        .await
    }

    /// Orders the core placed for the social channel that are paid or further along but have
    /// no payment in the core (cash on delivery aside: the courier collects it and remits it
    /// to the core). Orders copied from the legacy store are history and not included.
    pub async fn social_orders_without_payment(
        &self,
        limit: u32,
    ) -> Result<Vec<UnpaidSocialOrder>, StoreError> {
        self.read(move |conn| {
            Box::pin(async move {
                q("SELECT o.merchant_id, o.order_id, o.status, o.total_idr FROM orders o
                   WHERE o.channel = 'social' AND o.origin = 'core' AND o.payment_method <> 'cod'
                     AND o.status IN ('paid', 'shipped', 'delivered', 'completed')
                     AND NOT EXISTS (SELECT 1 FROM payments p WHERE p.checkout_id = o.checkout_id)
                   ORDER BY o.merchant_id, o.order_id LIMIT $1")
                .bind(i64::from(limit))
                .fetch_all(conn)
                .await?
                .iter()
                .map(|r| {
                    Ok(UnpaidSocialOrder {
                        merchant_id: rows::text(r, "merchant_id")?,
                        order_id: rows::text(r, "order_id")?,
                        status: rows::text(r, "status")?,
                        total_idr: rows::int(r, "total_idr")?,
                    })
                })
                .collect()
            })
        })
        .await
    }

    /// Social profiles held without a standing consent: (buyer reference, consent id).
    pub async fn profiles_without_consent(&self, limit: u32) -> Result<Vec<(String, String)>, StoreError> {
        self.read(move |conn| {
            Box::pin(async move {
                q("SELECT b.buyer_ref, b.consent_id FROM buyer_profiles b
                   LEFT JOIN consents c ON c.consent_id = b.consent_id
                   WHERE c.consent_id IS NULL OR c.withdrawn_at_ms IS NOT NULL
                   ORDER BY b.buyer_ref LIMIT $1")
                .bind(i64::from(limit))
                .fetch_all(conn)
                .await?
                .iter()
                .map(|r| Ok((rows::text(r, "buyer_ref")?, rows::text(r, "consent_id")?)))
                .collect()
            })
        })
        .await
    }
}

/// One line of the transaction report: orders paid (or further) and their GMV, by the day
/// they were placed (Western Indonesian Time, UTC+7), channel, and the merchant's origin and
/// province.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct ReportLine {
    /// Days since 1970-01-01 in WIB.
    pub day: i64,
    pub channel: String,
    pub origin: String,
    pub province: String,
    pub orders: i64,
    pub gmv_idr: i64,
}

/// WIB is UTC+7 all year.
pub const WIB_OFFSET_MS: i64 = 7 * 60 * 60 * 1000;

impl Store {
    /// The transaction report of WIB days `from_day..=to_day` (days since 1970-01-01).
    pub async fn transaction_report(
        &self,
        from_day: i64,
        to_day: i64,
    ) -> Result<Vec<ReportLine>, StoreError> {
        self.read(move |conn| {
            Box::pin(async move {
                let from_ms = from_day * 86_400_000 - WIB_OFFSET_MS;
                let to_ms = (to_day + 1) * 86_400_000 - WIB_OFFSET_MS;
                // WIB's offset is written into the SQL (25,200,000 ms), not bound: PostgreSQL
                // matches a GROUP BY expression to the select list by its text.
                q("SELECT t.day, t.channel, m.origin, m.province,
                          CAST(SUM(t.orders) AS BIGINT) AS orders, CAST(SUM(t.gmv) AS BIGINT) AS gmv
                   FROM (SELECT (o.created_at_ms + 25200000) / 86400000 AS day, o.merchant_id, o.channel,
                                COUNT(*) AS orders, SUM(o.total_idr) AS gmv
                         FROM orders o
                         WHERE o.created_at_ms >= $1 AND o.created_at_ms < $2
                           AND o.status IN ('paid', 'shipped', 'delivered', 'completed')
                         GROUP BY (o.created_at_ms + 25200000) / 86400000, o.merchant_id, o.channel) t
                   JOIN merchants m ON m.merchant_id = t.merchant_id
                   GROUP BY t.day, t.channel, m.origin, m.province
                   ORDER BY t.day, t.channel, m.origin, m.province")
                .bind(from_ms)
                .bind(to_ms)
                .fetch_all(conn)
                .await?
                .iter()
                .map(|r| {
                    Ok(ReportLine {
                        day: rows::int(r, "day")?,
                        channel: rows::text(r, "channel")?,
                        origin: rows::text(r, "origin")?,
                        province: rows::text(r, "province")?,
                        orders: rows::int(r, "orders")?,
                        gmv_idr: rows::int(r, "gmv")?,
                    })
                })
                .collect()
            })
        })
        .await
    }
}

impl Store {
    /// Moves a finding forward: `open → acknowledged → resolved` (or `open → resolved`), with
    /// the operator's note, journaled. A move backwards or to the same state is a conflict.
    pub async fn set_finding_state(
        &self,
        ctx: WriteCtx,
        id: FindingId,
        to: &'static str,
        note: String,
    ) -> Result<FindingRecord, StoreError> {
        self.write(None, move |conn| {
            let (ctx, note) = (ctx.clone(), note.clone());
            Box::pin(async move {
                let row = q("SELECT * FROM findings WHERE finding_id = $1")
                    .bind(id.to_string())
                    .fetch_optional(&mut *conn)
                    .await?
                    .ok_or_else(|| StoreError::not_found("finding", id))?;
                let current = decode(&row)?;
                let allowed = matches!((current.state.as_str(), to), ("open", "acknowledged" | "resolved") | ("acknowledged", "resolved"));
                if !allowed {
                    return Err(StoreError::Conflict(format!("the finding is {}: it cannot become {to}", current.state)));
                }
                q("UPDATE findings SET state = $2, updated_at_ms = $3 WHERE finding_id = $1 AND state = $4")
                    .bind(id.to_string())
                    .bind(to)
                    .bind(ctx.now.unix_ms())
                    .bind(current.state.clone())
                    .execute(&mut *conn)
                    .await?;
                let (event_type, action) = match to {
                    "acknowledged" => ("finding.acknowledged", "finding.acknowledge"),
                    _ => ("finding.resolved", "finding.resolve"),
                };
                journal::record(
                    conn,
                    &ctx,
                    Change {
                        event_type,
                        action,
                        entity_type: "finding",
                        entity_id: id.to_string(),
                        merchant_id: current.finding.merchant_id.parse().ok(),
                        channel: None,
                        payload: serde_json::json!({"finding_id": id.to_string(), "from": current.state, "to": to, "note": note}),
                    },
                )
                .await?;
                Ok(FindingRecord { state: to.to_owned(), updated_at: ctx.now, ..current })
            })
        })
        .await
    }
}
