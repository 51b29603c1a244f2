//! Webhook bookkeeping in the store, on the backend the environment selects: fan-out matches
//! owners and filters and is idempotent, claims lease, attempts are recorded only under their
//! lease, and a replay makes a delivery due again with a fresh round of retries.

use jembatan_domain::*;
use jembatan_store::testing::fresh_store;
use jembatan_store::webhooks::{AttemptOutcome, NextStep, SubscriptionRecord};
use jembatan_store::{Store, WriteCtx, new_id, q};

const NOW_MS: i64 = 1_733_000_000_000;

fn at(ms: i64) -> Timestamp {
    Timestamp::from_unix_ms(NOW_MS + ms)
}

fn ctx(actor: Principal) -> WriteCtx {
    WriteCtx { actor, now: at(0) }
}

async fn merchant(store: &Store) -> MerchantId {
    let m = Merchant::new(
        new_id(),
        MerchantName::parse("Toko Sari").unwrap(),
        Origin::Local,
        Province::parse("Bali").unwrap(),
        Some(Nib::parse("1234567890123").unwrap()),
        at(0),
    )
    .unwrap();
    store.create_merchant(ctx(Principal::Operator), m, None).await.unwrap().id
}

async fn subscribe(store: &Store, owner: WebhookOwner, events: &[&str]) -> SubscriptionRecord {
    let types: Vec<String> = events.iter().map(|e| (*e).to_owned()).collect();
    let subscription = SubscriptionRecord {
        id: new_id(),
        owner,
        url: "https://hooks.example.com/in".to_owned(),
        secret: WebhookSecret::from_key([9; 32]),
        events: EventFilter::from_list(&types).unwrap(),
        active: true,
        created_at: at(0),
    };
    store.create_webhook_subscription(ctx(Principal::Operator), subscription, None).await.unwrap()
}

/// An outbox event as a unit of the core would write it (straight into the table: the store
/// tests of orders cover how units write them).
async fn event(
    store: &Store,
    event_type: &str,
    merchant: Option<MerchantId>,
    channel: Option<Channel>,
) -> EventId {
    let id: EventId = new_id();
    let (id_text, event_type) = (id.to_string(), event_type.to_owned());
    let (merchant, channel) = (merchant.map(|m| m.to_string()), channel.map(|c| c.as_str().to_owned()));
    store
        .write(None, move |conn| {
            Box::pin(async move {
                q("INSERT INTO outbox (event_id, event_type, entity_type, entity_id, merchant_id, channel, payload, created_at_ms)
                   VALUES ($1, $2, 'order', 'ord_x', $3, $4, '{\"n\":1}', $5)")
                .bind(id_text)
                .bind(event_type)
                .bind(merchant)
                .bind(channel)
                .bind(at(0).unix_ms())
                .execute(conn)
                .await?;
                Ok(())
            })
        })
        .await
        .unwrap();
    id
}

fn failed_attempt(started: Timestamp, next: NextStep) -> AttemptOutcome {
    AttemptOutcome {
        started_at: started,
        duration_ms: 3,
        status_code: Some(500),
        error: Some("HTTP 500".into()),
        next,
    }
}

#[tokio::test]
async fn fan_out_matches_owners_and_filters_once() {
    let t = fresh_store().await.unwrap();
    let store = &t.store;
    let (m1, m2) = (merchant(store).await, merchant(store).await);
    let all_of_m1 = subscribe(store, WebhookOwner::Merchant(m1), &["*"]).await;
    let paid_of_m1 = subscribe(store, WebhookOwner::Merchant(m1), &["order.paid"]).await;
    let social = subscribe(store, WebhookOwner::Channel(Channel::Social), &["*"]).await;
    // Fan out what merchant creation and subscriptions wrote: none of it is delivered.
    store.fan_out_webhooks(at(0), 1_000).await.unwrap();

    event(store, "order.created", Some(m1), Some(Channel::Social)).await;
    event(store, "order.paid", Some(m1), Some(Channel::Marketplace)).await;
    event(store, "order.paid", Some(m2), Some(Channel::Marketplace)).await;
    event(store, "token.issued", Some(m1), None).await;
    // Two events per unit: the batch limit holds, and the rest waits for the next unit.
    assert_eq!(store.fan_out_webhooks(at(1), 2).await.unwrap(), (2, 4));
    assert_eq!(store.fan_out_webhooks(at(1), 100).await.unwrap(), (2, 0));
    assert_eq!(store.fan_out_webhooks(at(2), 100).await.unwrap(), (0, 0), "all published");

    let log = |id| store.webhook_deliveries(id, None, 100);
    let types = |d: Vec<jembatan_store::webhooks::DeliveryRecord>| {
        let mut t: Vec<String> = d.into_iter().map(|d| d.event_type).collect();
        t.sort();
        t
    };
    assert_eq!(types(log(all_of_m1.id).await.unwrap()), ["order.created", "order.paid"]);
    assert_eq!(types(log(paid_of_m1.id).await.unwrap()), ["order.paid"]);
    assert_eq!(types(log(social.id).await.unwrap()), ["order.created"]);

    // Fanning out the same events again (another server's pass) adds nothing.
    t.store
        .write(None, |conn| {
            Box::pin(async move { Ok(q("UPDATE outbox SET published_at_ms = NULL").execute(conn).await?) })
        })
        .await
        .unwrap();
    let (events, created) = store.fan_out_webhooks(at(3), 1_000).await.unwrap();
    assert!(events >= 4);
    assert_eq!(created, 0, "one delivery per (subscription, event)");

    // A subscription made after an event does not receive it.
    let earlier = event(store, "order.shipped", Some(m1), None).await;
    let mut late = subscribe(store, WebhookOwner::Merchant(m1), &["*"]).await;
    late.created_at = at(1);
    store.delete_webhook_subscription(ctx(Principal::Operator), late.id).await.unwrap();
    late.id = new_id();
    let late = store.create_webhook_subscription(ctx(Principal::Operator), late, None).await.unwrap();
    store.fan_out_webhooks(at(3), 1_000).await.unwrap();
    assert!(log(late.id).await.unwrap().is_empty(), "the late subscription got {earlier}");
    assert_eq!(types(log(all_of_m1.id).await.unwrap()), ["order.created", "order.paid", "order.shipped"]);
}

#[tokio::test]
async fn claims_lease_attempts_count_and_replays_restart() {
    let t = fresh_store().await.unwrap();
    let store = &t.store;
    let m = merchant(store).await;
    let subscription = subscribe(store, WebhookOwner::Merchant(m), &["*"]).await;
    event(store, "order.paid", Some(m), None).await;
    store.fan_out_webhooks(at(0), 100).await.unwrap();

    let claimed = store.claim_webhook_deliveries(at(10), 60_000, 10).await.unwrap();
    assert_eq!(claimed.len(), 1);
    let due = &claimed[0];
    assert_eq!(due.secret, subscription.secret);
    assert_eq!(due.delivery.payload, "{\"n\":1}");
    assert!(store.claim_webhook_deliveries(at(20), 60_000, 10).await.unwrap().is_empty(), "leased");

    // A failure schedules the retry; the log shows the attempt.
    let retry_at = at(5_000);
    assert!(
        store
            .record_webhook_attempt(
                due.delivery.id,
                due.lease_until,
                failed_attempt(at(10), NextStep::RetryAt(retry_at))
            )
            .await
            .unwrap()
    );
    assert!(
        !store
            .record_webhook_attempt(
                due.delivery.id,
                due.lease_until,
                failed_attempt(at(10), NextStep::GiveUp)
            )
            .await
            .unwrap(),
        "the lease was used up"
    );
    assert!(store.claim_webhook_deliveries(at(4_999), 60_000, 10).await.unwrap().is_empty(), "not yet due");
    let again = store.claim_webhook_deliveries(at(5_000), 60_000, 10).await.unwrap();
    assert_eq!(again.len(), 1);
    assert_eq!(again[0].delivery.attempts_since_replay, 1);
    store
        .record_webhook_attempt(
            again[0].delivery.id,
            again[0].lease_until,
            failed_attempt(at(5_000), NextStep::GiveUp),
        )
        .await
        .unwrap();

    let log = store.webhook_deliveries(subscription.id, None, 10).await.unwrap();
    assert_eq!(log[0].status, DeliveryStatus::Failed);
    assert_eq!((log[0].attempts, log[0].last_status_code), (2, Some(500)));
    let numbers: Vec<u32> = log[0].recent_attempts.iter().map(|a| a.attempt_no).collect();
    assert_eq!(numbers, [2, 1], "newest first");
    assert!(
        store.claim_webhook_deliveries(at(1_000_000), 60_000, 10).await.unwrap().is_empty(),
        "failed stays"
    );

    // A replay: due now, a fresh round of retries, the attempt count goes on.
    let journal = jembatan_store::journal::counts(store).await.unwrap();
    let replayed = store.replay_webhook_delivery(ctx(Principal::Merchant(m)), log[0].id, None).await.unwrap();
    assert_eq!(
        (replayed.status, replayed.attempts_since_replay, replayed.attempts),
        (DeliveryStatus::Pending, 0, 2)
    );
    let after = jembatan_store::journal::counts(store).await.unwrap();
    assert_eq!((after.0 - journal.0, after.1 - journal.1), (1, 1), "a replay is journaled");
    let third = store.claim_webhook_deliveries(at(0), 60_000, 10).await.unwrap();
    assert_eq!(third.len(), 1);
    let ok =
        AttemptOutcome { status_code: Some(204), error: None, ..failed_attempt(at(0), NextStep::Delivered) };
    assert!(store.record_webhook_attempt(third[0].delivery.id, third[0].lease_until, ok).await.unwrap());
    let (delivery, owner) = store.webhook_delivery(third[0].delivery.id).await.unwrap().unwrap();
    assert_eq!(
        (delivery.status, delivery.attempts, owner),
        (DeliveryStatus::Delivered, 3, WebhookOwner::Merchant(m))
    );

    // Deleting the subscription takes its log with it.
    store.delete_webhook_subscription(ctx(Principal::Operator), subscription.id).await.unwrap();
    assert!(store.webhook_subscription(subscription.id).await.unwrap().is_none());
    assert!(store.webhook_delivery(delivery.id).await.unwrap().is_none());
}

#[tokio::test]
async fn subscriptions_page_by_owner() {
    let t = fresh_store().await.unwrap();
    let store = &t.store;
    let (m1, m2) = (merchant(store).await, merchant(store).await);
    let mut mine = Vec::new();
    for _ in 0..5 {
        mine.push(subscribe(store, WebhookOwner::Merchant(m1), &["*"]).await.id);
    }
    subscribe(store, WebhookOwner::Merchant(m2), &["*"]).await;
    let first = store.webhook_subscriptions(Some(WebhookOwner::Merchant(m1)), None, 3).await.unwrap();
    let rest =
        store.webhook_subscriptions(Some(WebhookOwner::Merchant(m1)), Some(first[2].id), 3).await.unwrap();
    let paged: Vec<_> = first.iter().chain(&rest).map(|s| s.id).collect();
    mine.reverse();
    assert_eq!(paged, mine, "newest first, no gap, no duplicate, only m1's");
    assert_eq!(store.webhook_subscriptions(None, None, 100).await.unwrap().len(), 6, "everyone's");
}
