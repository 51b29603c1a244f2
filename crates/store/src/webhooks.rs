//! Webhooks out: subscriptions, the fan-out of outbox events into deliveries, and the delivery
//! log (deliveries and their attempts).
//!
//! - **Fan-out** takes the oldest unpublished outbox events (`published_at_ms IS NULL`, in
//!   event id order), inserts one delivery per matching active subscription made no later
//!   than the event, and marks the events published, in one unit. (`published_at_ms` means
//!   "handed to the webhooks"; events no one subscribes to are published to no one.) `UNIQUE (subscription_id, event_id)` with `ON CONFLICT DO
//!   NOTHING` makes a repeated fan-out (two servers on one PostgreSQL) harmless.
//! - **Claim** leases due deliveries to one dispatcher: their `next_attempt_at_ms` moves to the
//!   end of the lease, so nobody else sends them meanwhile, and a dispatcher that dies mid-send
//!   leaves them due again when the lease ends (at least once).
//! - **Record** writes the attempt's outcome only if the lease is still the one claimed (a
//!   replay in between wins), and logs the attempt.
//!
//! Subscription changes and replays are journaled like every other change. The outbox's own
//! delivery bookkeeping (fan-out, claims, attempts) is not: an event about a delivery would be
//! fanned out into another delivery, without end. The delivery log is its record.

use std::collections::HashMap;

use jembatan_domain::{
    DeliveryStatus, EventFilter, EventId, Timestamp, WebhookDeliveryId, WebhookOwner, WebhookSecret,
    WebhookSubscriptionId,
};

use crate::db::{Conn, Row, q};
use crate::error::StoreError;
use crate::exec::{Idem, Store, WriteCtx};
use crate::journal::{self, Change};
use crate::{new_id, rows};

/// Attempts listed with each delivery of the log, the latest first.
pub const ATTEMPTS_SHOWN_MAX: i64 = 20;

#[derive(Debug, Clone, PartialEq, Eq)]
pub struct SubscriptionRecord {
    pub id: WebhookSubscriptionId,
    pub owner: WebhookOwner,
    pub url: String,
    pub secret: WebhookSecret,
    pub events: EventFilter,
    pub active: bool,
    pub created_at: Timestamp,
}

#[derive(Debug, Clone, PartialEq, Eq)]
pub struct AttemptRecord {
    pub attempt_no: u32,
    pub started_at: Timestamp,
    pub duration_ms: i64,
    /// The receiver's HTTP status; `None` when no response came.
    pub status_code: Option<u16>,
    pub error: Option<String>,
}

#[derive(Debug, Clone, PartialEq, Eq)]
pub struct DeliveryRecord {
    /// Also the `webhook-id` header: the same on every retry and replay.
    pub id: WebhookDeliveryId,
    pub subscription_id: WebhookSubscriptionId,
    pub event_id: EventId,
    pub event_type: String,
    pub event_created_at: Timestamp,
    /// The event's payload, JSON text.
    pub payload: String,
    pub status: DeliveryStatus,
    /// Attempts made, ever.
    pub attempts: u32,
    /// Attempts made since the last replay (those the retry limit counts).
    pub attempts_since_replay: u32,
    pub next_attempt_at: Timestamp,
    pub last_status_code: Option<u16>,
    pub last_error: Option<String>,
    pub created_at: Timestamp,
    pub updated_at: Timestamp,
    /// The latest attempts (at most [`ATTEMPTS_SHOWN_MAX`]), newest first; empty where not loaded.
    pub recent_attempts: Vec<AttemptRecord>,
}

/// A delivery leased to a dispatcher, with what it needs to send it.
#[derive(Debug, Clone)]
pub struct DueDelivery {
    pub delivery: DeliveryRecord,
    pub url: String,
    pub secret: WebhookSecret,
    /// The lease: the outcome is recorded only while the delivery still carries it.
    pub lease_until: Timestamp,
}

/// What to do after an attempt.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum NextStep {
    Delivered,
    RetryAt(Timestamp),
    GiveUp,
}

/// What the dispatcher saw when it sent a delivery once.
#[derive(Debug, Clone)]
pub struct AttemptOutcome {
    pub started_at: Timestamp,
    pub duration_ms: i64,
    pub status_code: Option<u16>,
    pub error: Option<String>,
    pub next: NextStep,
}

const SUBSCRIPTION_COLUMNS: &str =
    "subscription_id, owner_role, owner_subject, url, secret, event_types, active, created_at_ms";
const DELIVERY_COLUMNS: &str = "delivery_id, subscription_id, event_id, event_type, event_created_at_ms, payload, status, \
     attempts, attempts_at_replay, next_attempt_at_ms, last_status_code, last_error, created_at_ms, updated_at_ms";

impl Store {
    pub async fn create_webhook_subscription(
        &self,
        ctx: WriteCtx,
        subscription: SubscriptionRecord,
        idem: Option<Idem<SubscriptionRecord>>,
    ) -> Result<SubscriptionRecord, StoreError> {
        self.write(idem, move |conn| {
            Box::pin(async move {
                q("INSERT INTO webhook_subscriptions (subscription_id, owner_role, owner_subject, url, secret, event_types, active, created_at_ms)
                     VALUES ($1, $2, $3, $4, $5, $6, $7, $8)")
                .bind(subscription.id.to_string())
                .bind(subscription.owner.role())
                .bind(subscription.owner.subject())
                .bind(subscription.url.as_str())
                .bind(subscription.secret.expose())
                .bind(subscription.events.to_stored())
                .bind(i64::from(subscription.active))
                .bind(subscription.created_at.unix_ms())
                .execute(&mut *conn)
                .await?;
                let change = subscription_change(
                    &subscription,
                    "webhook_subscription.created",
                    "webhook_subscription.create",
                );
                journal::record(conn, &ctx, change).await?;
                Ok(subscription)
            })
        })
        .await
    }

    pub async fn webhook_subscription(
        &self,
        id: WebhookSubscriptionId,
    ) -> Result<Option<SubscriptionRecord>, StoreError> {
        self.read(move |conn| {
            Box::pin(async move {
                let sql = format!(
                    "SELECT {SUBSCRIPTION_COLUMNS} FROM webhook_subscriptions WHERE subscription_id = $1"
                );
                let row = q(sql).bind(id.to_string()).fetch_optional(conn).await?;
                row.as_ref().map(decode_subscription).transpose()
            })
        })
        .await
    }

    /// Subscriptions of `owner` (every owner's if `None`), newest first, after the cursor
    /// `before`, at most `limit`.
    pub async fn webhook_subscriptions(
        &self,
        owner: Option<WebhookOwner>,
        before: Option<WebhookSubscriptionId>,
        limit: u32,
    ) -> Result<Vec<SubscriptionRecord>, StoreError> {
        let before = before.map(|b| b.to_string()).unwrap_or_default();
        let (role, subject) = owner.map(|o| (o.role(), o.subject())).unwrap_or_default();
        self.read(move |conn| {
            Box::pin(async move {
                let sql = format!(
                    "SELECT {SUBSCRIPTION_COLUMNS} FROM webhook_subscriptions
                     WHERE ($1 = '' OR (owner_role = $1 AND owner_subject = $2)) AND ($3 = '' OR subscription_id < $3)
                     ORDER BY subscription_id DESC LIMIT $4"
                );
                let rows = q(sql)
                    .bind(role)
                    .bind(subject)
                    .bind(before)
                    .bind(i64::from(limit))
                    .fetch_all(conn)
                    .await?;
                rows.iter().map(decode_subscription).collect()
            })
        })
        .await
    }

    /// Deletes a subscription with its deliveries and their attempts (the audit log keeps
    /// that it existed); nothing more is sent to it.
    pub async fn delete_webhook_subscription(
        &self,
        ctx: WriteCtx,
        id: WebhookSubscriptionId,
    ) -> Result<SubscriptionRecord, StoreError> {
        self.write(None, move |conn| {
            Box::pin(async move {
                let sql = format!(
                    "SELECT {SUBSCRIPTION_COLUMNS} FROM webhook_subscriptions WHERE subscription_id = $1"
                );
                let row = q(sql).bind(id.to_string()).fetch_optional(&mut *conn).await?;
                let subscription = row
                    .as_ref()
                    .map(decode_subscription)
                    .transpose()?
                    .ok_or_else(|| StoreError::not_found("webhook subscription", id))?;
                q("DELETE FROM webhook_attempts WHERE delivery_id IN
                     (SELECT delivery_id FROM webhook_deliveries WHERE subscription_id = $1)")
                .bind(id.to_string())
                .execute(&mut *conn)
                .await?;
                q("DELETE FROM webhook_deliveries WHERE subscription_id = $1")
                    .bind(id.to_string())
                    .execute(&mut *conn)
                    .await?;
                let deleted = q("DELETE FROM webhook_subscriptions WHERE subscription_id = $1")
                    .bind(id.to_string())
                    .execute(&mut *conn)
                    .await?;
                if deleted != 1 {
                    return Err(StoreError::not_found("webhook subscription", id));
                }
                let change = subscription_change(
                    &subscription,
                    "webhook_subscription.deleted",
                    "webhook_subscription.delete",
                );
                journal::record(conn, &ctx, change).await?;
                Ok(subscription)
            })
        })
        .await
    }

    /// The delivery log of a subscription: newest first, after the cursor `before`, each with
    /// its latest attempts.
    pub async fn webhook_deliveries(
        &self,
        subscription_id: WebhookSubscriptionId,
        before: Option<WebhookDeliveryId>,
        limit: u32,
    ) -> Result<Vec<DeliveryRecord>, StoreError> {
        let before = before.map(|b| b.to_string()).unwrap_or_default();
        self.read(move |conn| {
            Box::pin(async move {
                let page = "SELECT delivery_id FROM webhook_deliveries
                     WHERE subscription_id = $1 AND ($2 = '' OR delivery_id < $2)
                     ORDER BY delivery_id DESC LIMIT $3";
                let sql = format!("SELECT {DELIVERY_COLUMNS} FROM webhook_deliveries WHERE delivery_id IN ({page}) ORDER BY delivery_id DESC");
                let rows = q(sql)
                    .bind(subscription_id.to_string())
                    .bind(before.clone())
                    .bind(i64::from(limit))
                    .fetch_all(&mut *conn)
                    .await?;
                let mut deliveries = rows.iter().map(decode_delivery).collect::<Result<Vec<_>, _>>()?;
                let attempts = format!(
                    "SELECT delivery_id, attempt_no, started_at_ms, duration_ms, status_code, error FROM (
                         SELECT a.*, ROW_NUMBER() OVER (PARTITION BY a.delivery_id ORDER BY a.attempt_no DESC) AS recent
                         FROM webhook_attempts a WHERE a.delivery_id IN ({page})) shown
                     WHERE recent <= $4 ORDER BY delivery_id, attempt_no DESC"
                );
                let rows = q(attempts)
                    .bind(subscription_id.to_string())
                    .bind(before)
                    .bind(i64::from(limit))
                    .bind(ATTEMPTS_SHOWN_MAX)
                    .fetch_all(&mut *conn)
                    .await?;
                let mut by_delivery: HashMap<String, Vec<AttemptRecord>> = HashMap::new();
                for row in &rows {
                    by_delivery.entry(rows::text(row, "delivery_id")?).or_default().push(decode_attempt(row)?);
                }
                for delivery in &mut deliveries {
                    delivery.recent_attempts = by_delivery.remove(&delivery.id.to_string()).unwrap_or_default();
                }
                Ok(deliveries)
            })
        })
        .await
    }

    /// One delivery with the owner of its subscription (for authorisation).
    pub async fn webhook_delivery(
        &self,
        id: WebhookDeliveryId,
    ) -> Result<Option<(DeliveryRecord, WebhookOwner)>, StoreError> {
        self.read(move |conn| Box::pin(async move { load_delivery(conn, id).await })).await
    }

    /// Makes a delivery pending and due now, with a fresh round of retries, whatever its status.
    pub async fn replay_webhook_delivery(
        &self,
        ctx: WriteCtx,
        id: WebhookDeliveryId,
        idem: Option<Idem<DeliveryRecord>>,
    ) -> Result<DeliveryRecord, StoreError> {
        self.write(idem, move |conn| {
            Box::pin(async move {
                let done = q("UPDATE webhook_deliveries SET status = 'pending', next_attempt_at_ms = $2,
                         attempts_at_replay = attempts, updated_at_ms = $2 WHERE delivery_id = $1")
                .bind(id.to_string())
                .bind(ctx.now.unix_ms())
                .execute(&mut *conn)
                .await?;
                if done != 1 {
                    return Err(StoreError::not_found("webhook delivery", id));
                }
                let (delivery, owner) = load_delivery(conn, id)
                    .await?
                    .ok_or_else(|| StoreError::not_found("webhook delivery", id))?;
                let (merchant_id, channel) = owner_columns(owner);
                let change = Change {
                    event_type: "webhook_delivery.replayed",
                    action: "webhook_delivery.replay",
                    entity_type: "webhook_delivery",
                    entity_id: id.to_string(),
                    merchant_id,
                    channel,
                    payload: serde_json::json!({
                        "delivery_id": id.to_string(),
                        "subscription_id": delivery.subscription_id.to_string(),
                        "event_id": delivery.event_id.to_string(),
                    }),
                };
                journal::record(conn, &ctx, change).await?;
                Ok(delivery)
            })
        })
        .await
    }

    /// Turns at most `events_max` unpublished outbox events into deliveries to the active
    /// subscriptions they match, and marks them published. Returns (events, deliveries).
    pub async fn fan_out_webhooks(&self, now: Timestamp, events_max: u32) -> Result<(u32, u32), StoreError> {
        self.write(None, move |conn| Box::pin(fan_out_unit(conn, now, events_max))).await
    }

    /// Leases at most `deliveries_max` due deliveries until `now + lease_ms`.
    pub async fn claim_webhook_deliveries(
        &self,
        now: Timestamp,
        lease_ms: i64,
        deliveries_max: u32,
    ) -> Result<Vec<DueDelivery>, StoreError> {
        assert!(lease_ms > 0, "a lease must end after it starts");
        self.write(None, move |conn| {
            Box::pin(async move {
                let lock = if conn.is_postgres() { " FOR UPDATE SKIP LOCKED" } else { "" };
                let sql = format!(
                    "SELECT delivery_id FROM webhook_deliveries WHERE status = 'pending' AND next_attempt_at_ms <= $1
                     ORDER BY next_attempt_at_ms, delivery_id LIMIT $2{lock}"
                );
                let due = q(sql).bind(now.unix_ms()).bind(i64::from(deliveries_max)).fetch_all(&mut *conn).await?;
                let lease_until = now.plus_ms(lease_ms);
                let mut claimed = Vec::with_capacity(due.len());
                for row in &due {
                    let id: WebhookDeliveryId = rows::id(row, "delivery_id")?;
                    let leased = q("UPDATE webhook_deliveries SET next_attempt_at_ms = $2
                         WHERE delivery_id = $1 AND status = 'pending' AND next_attempt_at_ms <= $3")
                    .bind(id.to_string())
                    .bind(lease_until.unix_ms())
                    .bind(now.unix_ms())
                    .execute(&mut *conn)
                    .await?;
                    if leased != 1 {
                        continue;
                    }
                    let sql = format!(
                        "SELECT s.url, s.secret, {} FROM webhook_deliveries d JOIN webhook_subscriptions s
                         ON s.subscription_id = d.subscription_id WHERE d.delivery_id = $1",
                        prefixed("d", DELIVERY_COLUMNS)
                    );
                    let row = q(sql).bind(id.to_string()).fetch_one(&mut *conn).await?;
                    let delivery = decode_delivery(&row)?;
                    debug_assert_eq!(delivery.next_attempt_at, lease_until);
                    claimed.push(DueDelivery {
                        delivery,
                        url: rows::text(&row, "url")?,
                        secret: rows::parsed("secret", WebhookSecret::parse(&rows::text(&row, "secret")?))?,
                        lease_until,
                    });
                }
                Ok(claimed)
            })
        })
        .await
    }

    /// Records one attempt of a leased delivery. Returns false (and records nothing) when the
    /// lease was lost: the delivery was replayed or deleted meanwhile.
    pub async fn record_webhook_attempt(
        &self,
        id: WebhookDeliveryId,
        lease_until: Timestamp,
        outcome: AttemptOutcome,
    ) -> Result<bool, StoreError> {
        self.write(None, move |conn| {
            Box::pin(async move {
                let finished = outcome.started_at.plus_ms(outcome.duration_ms);
                let (status, next_at) = match outcome.next {
                    NextStep::Delivered => (DeliveryStatus::Delivered, finished),
                    NextStep::GiveUp => (DeliveryStatus::Failed, finished),
                    NextStep::RetryAt(at) => (DeliveryStatus::Pending, at),
                };
                let updated = q("UPDATE webhook_deliveries SET status = $3, attempts = attempts + 1, next_attempt_at_ms = $4,
                         last_status_code = $5, last_error = $6, updated_at_ms = $7
                     WHERE delivery_id = $1 AND status = 'pending' AND next_attempt_at_ms = $2
                     RETURNING attempts")
                .bind(id.to_string())
                .bind(lease_until.unix_ms())
                .bind(status.as_str())
                .bind(next_at.unix_ms())
                .bind(outcome.status_code.map(i64::from))
                .bind(outcome.error.clone())
                .bind(finished.unix_ms())
                .fetch_optional(&mut *conn)
                .await?;
                let Some(row) = updated else { return Ok(false) };
                q("INSERT INTO webhook_attempts (delivery_id, attempt_no, started_at_ms, duration_ms, status_code, error)
                     VALUES ($1, $2, $3, $4, $5, $6)")
                .bind(id.to_string())
                .bind(rows::int(&row, "attempts")?)
                .bind(outcome.started_at.unix_ms())
                .bind(outcome.duration_ms)
                .bind(outcome.status_code.map(i64::from))
                .bind(outcome.error)
                .execute(&mut *conn)
                .await?;
                Ok(true)
            })
        })
        .await
    }
}

/// A subscription as fan-out matches it: (subscription id, filter, created at ms).
type Matcher = (String, EventFilter, i64);

async fn fan_out_unit(
    conn: &mut dyn Conn,
    now: Timestamp,
    events_max: u32,
) -> Result<(u32, u32), StoreError> {
    let lock = if conn.is_postgres() { " FOR UPDATE SKIP LOCKED" } else { "" };
    let sql = format!(
        "SELECT event_id, event_type, merchant_id, channel, payload, created_at_ms FROM outbox
         WHERE published_at_ms IS NULL ORDER BY event_id LIMIT $1{lock}"
    );
    let events = q(sql).bind(i64::from(events_max)).fetch_all(&mut *conn).await?;
    // Subscriptions per owner, loaded once per batch.
    let mut subscriptions: HashMap<(&'static str, String), Vec<Matcher>> = HashMap::new();
    let mut created = 0u32;
    for event in &events {
        let event_id = rows::text(event, "event_id")?;
        let event_type = rows::text(event, "event_type")?;
        let owners = [("merchant", event.opt_text("merchant_id")?), ("channel", event.opt_text("channel")?)];
        for (role, subject) in owners {
            let Some(subject) = subject else { continue };
            if !jembatan_domain::webhook::is_delivered(&event_type) {
                continue;
            }
            let key = (role, subject);
            if !subscriptions.contains_key(&key) {
                let rows = q("SELECT subscription_id, event_types, created_at_ms FROM webhook_subscriptions
                     WHERE owner_role = $1 AND owner_subject = $2 AND active = 1")
                .bind(role)
                .bind(key.1.as_str())
                .fetch_all(&mut *conn)
                .await?;
                let loaded = rows
                    .iter()
                    .map(|r| {
                        let filter = rows::parsed(
                            "event_types",
                            EventFilter::from_stored(&rows::text(r, "event_types")?),
                        )?;
                        Ok((rows::text(r, "subscription_id")?, filter, rows::int(r, "created_at_ms")?))
                    })
                    .collect::<Result<Vec<_>, StoreError>>()?;
                subscriptions.insert(key.clone(), loaded);
            }
            let event_at_ms = rows::int(event, "created_at_ms")?;
            for (subscription_id, filter, subscribed_at_ms) in &subscriptions[&key] {
                // A subscription hears of what happens from its creation on, not of a backlog.
                if !filter.matches(&event_type) || *subscribed_at_ms > event_at_ms {
                    continue;
                }
                created += q("INSERT INTO webhook_deliveries (delivery_id, subscription_id, event_id, event_type, event_created_at_ms,
                         payload, status, attempts, attempts_at_replay, next_attempt_at_ms, created_at_ms, updated_at_ms)
                     VALUES ($1, $2, $3, $4, $5, $6, 'pending', 0, 0, $7, $7, $7)
                     ON CONFLICT (subscription_id, event_id) DO NOTHING")
                .bind(new_id::<WebhookDeliveryId>().to_string())
                .bind(subscription_id.as_str())
                .bind(event_id.as_str())
                .bind(event_type.as_str())
                .bind(event_at_ms)
                .bind(rows::text(event, "payload")?)
                .bind(now.unix_ms())
                .execute(&mut *conn)
                .await? as u32;
            }
        }
        let published =
            q("UPDATE outbox SET published_at_ms = $2 WHERE event_id = $1 AND published_at_ms IS NULL")
                .bind(event_id.as_str())
                .bind(now.unix_ms())
                .execute(&mut *conn)
                .await?;
        debug_assert!(published <= 1);
    }
    Ok((events.len() as u32, created))
}

async fn load_delivery(
    conn: &mut dyn Conn,
    id: WebhookDeliveryId,
) -> Result<Option<(DeliveryRecord, WebhookOwner)>, StoreError> {
    let sql = format!(
        "SELECT s.owner_role, s.owner_subject, {} FROM webhook_deliveries d JOIN webhook_subscriptions s
         ON s.subscription_id = d.subscription_id WHERE d.delivery_id = $1",
        prefixed("d", DELIVERY_COLUMNS)
    );
    let Some(row) = q(sql).bind(id.to_string()).fetch_optional(conn).await? else { return Ok(None) };
    let owner = rows::parsed(
        "owner",
        WebhookOwner::from_parts(&rows::text(&row, "owner_role")?, &rows::text(&row, "owner_subject")?),
    )?;
    Ok(Some((decode_delivery(&row)?, owner)))
}

fn prefixed(table: &str, columns: &str) -> String {
    columns.split(',').map(|c| format!("{table}.{}", c.trim())).collect::<Vec<_>>().join(", ")
}

fn owner_columns(
    owner: WebhookOwner,
) -> (Option<jembatan_domain::MerchantId>, Option<jembatan_domain::Channel>) {
    match owner {
        WebhookOwner::Merchant(id) => (Some(id), None),
        WebhookOwner::Channel(channel) => (None, Some(channel)),
    }
}

/// The journal entry of a subscription change: never the secret.
fn subscription_change(
    subscription: &SubscriptionRecord,
    event_type: &'static str,
    action: &'static str,
) -> Change {
    let (merchant_id, channel) = owner_columns(subscription.owner);
    Change {
        event_type,
        action,
        entity_type: "webhook_subscription",
        entity_id: subscription.id.to_string(),
        merchant_id,
        channel,
        payload: serde_json::json!({
            "subscription_id": subscription.id.to_string(),
            "owner_role": subscription.owner.role(),
            "owner_subject": subscription.owner.subject(),
            "url": subscription.url,
            "event_types": subscription.events.types(),
        }),
    }
}

fn decode_subscription(row: &Row) -> Result<SubscriptionRecord, StoreError> {
    Ok(SubscriptionRecord {
        id: rows::id(row, "subscription_id")?,
        owner: rows::parsed(
            "owner",
            WebhookOwner::from_parts(&rows::text(row, "owner_role")?, &rows::text(row, "owner_subject")?),
        )?,
        url: rows::text(row, "url")?,
        secret: rows::parsed("secret", WebhookSecret::parse(&rows::text(row, "secret")?))?,
        events: rows::parsed("event_types", EventFilter::from_stored(&rows::text(row, "event_types")?))?,
        active: rows::int(row, "active")? == 1,
        created_at: Timestamp::from_unix_ms(rows::int(row, "created_at_ms")?),
    })
}

fn status_code(row: &Row, column: &str) -> Result<Option<u16>, StoreError> {
    match row.value(column)? {
        crate::db::Value::Int(code) => Ok(Some(rows::parsed(
            column,
            u16::try_from(*code)
                .map_err(|_| jembatan_domain::DomainError::invalid("status_code", "out of range")),
        )?)),
        _ => Ok(None),
    }
}

fn decode_delivery(row: &Row) -> Result<DeliveryRecord, StoreError> {
    let attempts = rows::int(row, "attempts")?;
    let attempts_at_replay = rows::int(row, "attempts_at_replay")?;
    Ok(DeliveryRecord {
        id: rows::id(row, "delivery_id")?,
        subscription_id: rows::id(row, "subscription_id")?,
        event_id: rows::id(row, "event_id")?,
        event_type: rows::text(row, "event_type")?,
        event_created_at: Timestamp::from_unix_ms(rows::int(row, "event_created_at_ms")?),
        payload: rows::text(row, "payload")?,
        status: rows::parsed("status", DeliveryStatus::parse(&rows::text(row, "status")?))?,
        attempts: attempts as u32,
        attempts_since_replay: (attempts - attempts_at_replay) as u32,
        next_attempt_at: Timestamp::from_unix_ms(rows::int(row, "next_attempt_at_ms")?),
        last_status_code: status_code(row, "last_status_code")?,
        last_error: row.opt_text("last_error")?,
        created_at: Timestamp::from_unix_ms(rows::int(row, "created_at_ms")?),
        updated_at: Timestamp::from_unix_ms(rows::int(row, "updated_at_ms")?),
        recent_attempts: Vec::new(),
    })
}

fn decode_attempt(row: &Row) -> Result<AttemptRecord, StoreError> {
    Ok(AttemptRecord {
        attempt_no: rows::int(row, "attempt_no")? as u32,
        started_at: Timestamp::from_unix_ms(rows::int(row, "started_at_ms")?),
        duration_ms: rows::int(row, "duration_ms")?,
        status_code: status_code(row, "status_code")?,
        error: row.opt_text("error")?,
    })
}
