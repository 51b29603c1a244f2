//! The outbox event and the audit entry of a state change, written by the same unit (and so in
//! the same transaction) as the change itself. Hash-chaining of the audit log comes with
//! oversight; entries are already append-only and time-ordered by their UUIDv7 ids.

use crate::db::{Conn, Value, insert_many, q};
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
    record_many(conn, ctx, vec![change]).await
}

/// The events and audit entries of several changes of one unit, in multi-row statements (the
/// migration's batches write hundreds at a time).
pub async fn record_many(
    conn: &mut dyn Conn,
    ctx: &WriteCtx,
    changes: Vec<Change>,
) -> Result<(), StoreError> {
    if changes.is_empty() {
        return Ok(());
    }
    let now = Value::Int(ctx.now.unix_ms());
    let mut events = Vec::with_capacity(changes.len());
    let mut audits = Vec::with_capacity(changes.len());
    for change in changes {
        let payload = change.payload.to_string();
        let merchant: Value = change.merchant_id.map(|m| m.to_string()).into();
        events.push(vec![
            new_id::<EventId>().to_string().into(),
            change.event_type.into(),
            change.entity_type.into(),
            change.entity_id.clone().into(),
            merchant.clone(),
            change.channel.map(|c| c.as_str()).into(),
            payload.clone().into(),
            now.clone(),
        ]);
        audits.push(vec![
            new_id::<AuditId>().to_string().into(),
            now.clone(),
            ctx.actor.role().as_str().into(),
            ctx.actor.subject().into(),
            change.action.into(),
            change.entity_type.into(),
            change.entity_id.into(),
            merchant,
            payload.into(),
        ]);
    }
    insert_many(
        conn,
        "INSERT INTO outbox (event_id, event_type, entity_type, entity_id, merchant_id, channel, payload, created_at_ms)",
        8,
        events,
        "",
    )
    .await?;
    insert_many(
        conn,
        "INSERT INTO audit_log (audit_id, at_ms, actor_role, actor_subject, action, entity_type, entity_id, merchant_id, detail)",
        9,
        audits,
        "",
    )
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
