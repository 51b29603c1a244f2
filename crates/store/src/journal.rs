//! The outbox event and the audit entry of a state change, written by the same unit (and so in
//! the same transaction) as the change itself. Hash-chaining of the audit log comes with
//! oversight; entries are already append-only and time-ordered by their UUIDv7 ids.

use crate::db::{Conn, q};
use jembatan_domain::{AuditId, Channel, EventId, MerchantId};

use crate::error::StoreError;
use crate::exec::WriteCtx;
use crate::new_id;

/// One state change as the outside world hears of it.
pub struct Change {
    /// Outbox event type, e.g. `order.shipped`.
    pub event_type: &'static str,
    /// Audit action, e.g. `order.ship`.
    pub action: &'static str,
    pub entity_type: &'static str,
    pub entity_id: String,
    pub merchant_id: Option<MerchantId>,
    pub channel: Option<Channel>,
    /// Event body (no personal data: webhooks and reports read it).
    pub payload: serde_json::Value,
}

pub async fn record(conn: &mut dyn Conn, ctx: &WriteCtx, change: Change) -> Result<(), StoreError> {
    let payload = change.payload.to_string();
    let merchant = change.merchant_id.map(|m| m.to_string());
    let channel = change.channel.map(|c| c.as_str());
    q(
        "INSERT INTO outbox (event_id, event_type, entity_type, entity_id, merchant_id, channel, payload, created_at_ms)
         VALUES ($1, $2, $3, $4, $5, $6, $7, $8)",
    )
    .bind(new_id::<EventId>().to_string())
    .bind(change.event_type)
    .bind(change.entity_type)
    .bind(&change.entity_id)
    .bind(merchant.clone())
    .bind(channel)
    .bind(&payload)
    .bind(ctx.now.unix_ms())
    .execute(&mut *conn)
    .await?;
    q(
        "INSERT INTO audit_log (audit_id, at_ms, actor_role, actor_subject, action, entity_type, entity_id, merchant_id, detail)
         VALUES ($1, $2, $3, $4, $5, $6, $7, $8, $9)",
    )
    .bind(new_id::<AuditId>().to_string())
    .bind(ctx.now.unix_ms())
    .bind(ctx.actor.role().as_str())
    .bind(ctx.actor.subject())
    .bind(change.action)
    .bind(change.entity_type)
    .bind(&change.entity_id)
    .bind(merchant)
    .bind(&payload)
    .execute(&mut *conn)
    .await?;
    Ok(())
}

/// Counts of the journal, for tests and the invariant checker.
pub async fn counts(store: &crate::Store) -> Result<(i64, i64), StoreError> {
    store
        .read(|conn| {
            Box::pin(async move {
                let row = q("SELECT (SELECT COUNT(*) FROM outbox) AS events, (SELECT COUNT(*) FROM audit_log) AS audits")
                    .fetch_one(conn)
                    .await?;
                Ok((row.int("events")?, row.int("audits")?))
            })
        })
        .await
}
