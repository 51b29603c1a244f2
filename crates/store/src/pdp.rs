//! Data subjects' requests under UU PDP No. 27/2022 (issue 6): what the core holds about a
//! buyer (its pseudonymous reference), and the requests tracked with their 3 × 24-hour deadline.

use crate::db::{Conn, Row, q};
use crate::error::StoreError;
use crate::exec::{Store, WriteCtx};
use crate::journal::{self, Change};
use crate::{new_id, rows};

/// The law's window to answer a data subject: 3 × 24 hours.
pub const PDP_DEADLINE_MS: i64 = 3 * 24 * 60 * 60 * 1000;

#[derive(Debug, Clone, PartialEq, Eq)]
pub struct PdpRequest {
    pub request_id: String,
    pub buyer_ref: String,
    /// `export` or `withdrawal`.
    pub kind: String,
    pub detail: String,
    pub received_at_ms: i64,
    pub due_at_ms: i64,
    pub completed_at_ms: Option<i64>,
}

/// Everything the core holds about one buyer, and what was done with it.
#[derive(Debug, Clone, PartialEq)]
pub struct BuyerExport {
    pub consents: Vec<serde_json::Value>,
    pub profile: Option<serde_json::Value>,
    pub orders: Vec<serde_json::Value>,
    /// The audit entries about the buyer's orders and consents: the processing record.
    pub processing: Vec<serde_json::Value>,
}

fn decode(r: &Row) -> Result<PdpRequest, StoreError> {
    Ok(PdpRequest {
        request_id: rows::text(r, "request_id")?,
        buyer_ref: rows::text(r, "buyer_ref")?,
        kind: rows::text(r, "kind")?,
        detail: rows::text(r, "detail")?,
        received_at_ms: rows::int(r, "received_at_ms")?,
        due_at_ms: rows::int(r, "due_at_ms")?,
        completed_at_ms: r.opt_int("completed_at_ms")?,
    })
}

/// Records a request answered in the same unit (completed now), journaled.
pub(crate) async fn record_completed(
    conn: &mut dyn Conn,
    ctx: &WriteCtx,
    buyer_ref: &str,
    kind: &'static str,
    detail: &str,
) -> Result<(), StoreError> {
    let id = new_id::<jembatan_domain::id::PdpRequestId>().to_string();
    let now = ctx.now.unix_ms();
    q("INSERT INTO pdp_requests (request_id, buyer_ref, kind, detail, received_at_ms, due_at_ms, completed_at_ms)
       VALUES ($1, $2, $3, $4, $5, $6, $5)")
    .bind(id.clone())
    .bind(buyer_ref)
    .bind(kind)
    .bind(detail)
    .bind(now)
    .bind(now + PDP_DEADLINE_MS)
    .execute(&mut *conn)
    .await?;
    journal::record(
        conn,
        ctx,
        Change {
            event_type: "pdp.request_completed",
            action: "pdp.complete",
            entity_type: "pdp_request",
            entity_id: id.clone(),
            merchant_id: None,
            channel: None,
            payload: serde_json::json!({"request_id": id, "kind": kind, "detail": detail}),
        },
    )
    .await
}

impl Store {
    /// What the core holds about a buyer, read and recorded as an answered export request in
    /// one unit.
    pub async fn export_buyer(&self, ctx: WriteCtx, buyer_ref: String) -> Result<BuyerExport, StoreError> {
        self.write(None, move |conn| {
            let (ctx, buyer_ref) = (ctx.clone(), buyer_ref.clone());
            Box::pin(async move {
                let consent_rows = q("SELECT * FROM consents WHERE buyer_ref = $1 ORDER BY consent_id")
                    .bind(buyer_ref.clone())
                    .fetch_all(&mut *conn)
                    .await?;
                let consents = consent_rows
                    .iter()
                    .map(|r| {
                        Ok(serde_json::json!({
                            "purpose": rows::text(r, "purpose")?, "text_version": rows::text(r, "text_version")?,
                            "granted_at_ms": rows::int(r, "granted_at_ms")?, "withdrawn_at_ms": r.opt_int("withdrawn_at_ms")?,
                        }))
                    })
                    .collect::<Result<Vec<_>, StoreError>>()?;
                let profile = q("SELECT nickname, email, updated_at_ms FROM buyer_profiles WHERE buyer_ref = $1")
                    .bind(buyer_ref.clone())
                    .fetch_optional(&mut *conn)
                    .await?
                    .map(|r| {
                        Ok::<_, StoreError>(serde_json::json!({
                            "nickname": rows::text(&r, "nickname")?, "email": rows::text(&r, "email")?,
                            "updated_at_ms": rows::int(&r, "updated_at_ms")?,
                        }))
                    })
                    .transpose()?;
                let order_rows = q("SELECT order_id, merchant_id, status, total_idr, recipient_name, recipient_phone,
                                           street, city, province, postal_code, created_at_ms
                                    FROM orders WHERE buyer_id = $1 ORDER BY order_id")
                .bind(buyer_ref.clone())
                .fetch_all(&mut *conn)
                .await?;
                let mut orders = Vec::with_capacity(order_rows.len());
                let mut entities = vec![buyer_ref.clone()];
                for r in &consent_rows {
                    entities.push(rows::text(r, "consent_id")?);
                }
                for r in &order_rows {
                    entities.push(rows::text(r, "order_id")?);
                    orders.push(serde_json::json!({
                        "order_id": rows::text(r, "order_id")?, "merchant_id": rows::text(r, "merchant_id")?,
                        "status": rows::text(r, "status")?, "total_idr": rows::int(r, "total_idr")?,
                        "recipient_name": rows::text(r, "recipient_name")?, "recipient_phone": rows::text(r, "recipient_phone")?,
                        "street": rows::text(r, "street")?, "city": rows::text(r, "city")?,
                        "province": rows::text(r, "province")?, "postal_code": rows::text(r, "postal_code")?,
                        "created_at_ms": rows::int(r, "created_at_ms")?,
                    }));
                }
                let mut processing = Vec::new();
                for chunk in entities.chunks(500) {
                    let list: Vec<String> = (0..chunk.len()).map(|i| format!("${}", i + 1)).collect();
                    let mut query = q(format!(
                        "SELECT at_ms, actor_role, action, entity_type, entity_id FROM audit_log
                         WHERE entity_id IN ({}) ORDER BY audit_id",
                        list.join(", ")
                    ));
                    for e in chunk {
                        query = query.bind(e.clone());
                    }
                    for r in query.fetch_all(&mut *conn).await? {
                        processing.push(serde_json::json!({
                            "at_ms": rows::int(&r, "at_ms")?, "by": rows::text(&r, "actor_role")?,
                            "action": rows::text(&r, "action")?, "entity_type": rows::text(&r, "entity_type")?,
                            "entity_id": rows::text(&r, "entity_id")?,
                        }));
                    }
                }
                let detail = format!("{} orders, {} consents", orders.len(), consents.len());
                record_completed(conn, &ctx, &buyer_ref, "export", &detail).await?;
                Ok(BuyerExport { consents, profile, orders, processing })
            })
        })
        .await
    }

    /// Data subjects' requests, newest first.
    pub async fn pdp_requests(&self, limit: u32) -> Result<Vec<PdpRequest>, StoreError> {
        self.read(move |conn| {
            Box::pin(async move {
                q("SELECT * FROM pdp_requests ORDER BY request_id DESC LIMIT $1")
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
}
