//! Webhooks out (issue 3 point 8): the subscription use cases, the address rules that keep
//! webhooks off the platform's own network, and the dispatcher that delivers the outbox.
//!
//! The dispatcher loops: fan out new outbox events into deliveries, lease the due ones, send
//! them concurrently (bounded), and record each attempt. A 2xx marks a delivery delivered; any
//! other answer, a timeout or a refused address schedules a retry after the next delay of the
//! schedule (plus up to 20 % jitter, so receivers coming back are not hit all at once), until
//! `max_attempts`, then it is failed. A delivery is marked delivered only after its 2xx, and a
//! lease lost in a crash ends, so every delivery is sent at least once.
//!
//! Addresses are checked when a subscription is made and again at every delivery: a host
//! name is resolved by our own resolver, which refuses internal addresses, and the request
//! connects only to the addresses it checked (no second lookup that DNS rebinding could
//! answer differently). Redirects are not followed.
//!
//! The body sent is the Standard Webhooks envelope `{"type", "timestamp", "data"}`; it is
//! the one JSON wire shape outside the api crate, because the dispatcher is its only writer.

use std::net::{IpAddr, SocketAddr};
use std::time::{Duration, Instant};

use futures::StreamExt;
use jembatan_domain::webhook::{SECRET_BYTES, URL_CHARS_MAX, address_refusal};
use jembatan_domain::{
    EventFilter, Principal, Timestamp, WebhookDeliveryId, WebhookOwner, WebhookSecret, WebhookSubscriptionId,
};
use jembatan_store::webhooks::{AttemptOutcome, DeliveryRecord, DueDelivery, NextStep, SubscriptionRecord};
use jembatan_store::{Idem, StoreError};
use rand::Rng;
use reqwest::Url;

use crate::authz::{self, Access};
use crate::{Core, CoreError, not_found};

/// How webhooks are checked and delivered (`[webhooks]` in the configuration).
#[derive(Debug, Clone)]
pub struct WebhookOptions {
    /// Lets subscriptions point at loopback and private addresses (development, tests).
    pub allow_private_urls: bool,
    /// Attempts of one delivery (since its last replay) before it is failed.
    pub max_attempts: u32,
    /// One request, connection and answer included.
    pub timeout: Duration,
    /// Pause between dispatcher passes when there was nothing to do.
    pub poll_interval: Duration,
    /// Delay before retry n (the last repeats), before jitter.
    pub retry_delays_ms: Vec<i64>,
    /// Requests in flight at once.
    pub concurrency_max: usize,
    /// Outbox events fanned out per unit.
    pub fan_out_events_max: u32,
}

impl Default for WebhookOptions {
    fn default() -> Self {
        WebhookOptions {
            allow_private_urls: false,
            max_attempts: 8,
            timeout: Duration::from_secs(10),
            poll_interval: Duration::from_secs(1),
            // 5 s, 30 s, 2 min, 10 min, 1 h, 3 h, 6 h: about 10 h from the first to the last try.
            retry_delays_ms: vec![5_000, 30_000, 120_000, 600_000, 3_600_000, 10_800_000, 21_600_000],
            concurrency_max: 8,
            fan_out_events_max: 500,
        }
    }
}

impl WebhookOptions {
    /// The delay before the next attempt, after `attempts_made` (≥ 1) attempts, with jitter
    /// `jitter_per_mille` (0..=200) of the delay added.
    pub fn retry_delay_ms(&self, attempts_made: u32, jitter_per_mille: i64) -> i64 {
        assert!(attempts_made >= 1 && (0..=200).contains(&jitter_per_mille));
        let index = (attempts_made as usize - 1).min(self.retry_delays_ms.len().saturating_sub(1));
        let delay = self.retry_delays_ms.get(index).copied().unwrap_or(5_000).max(1);
        delay + delay * jitter_per_mille / 1_000
    }

    /// How long a claimed delivery stays leased: longer than any request may take.
    fn lease_ms(&self) -> i64 {
        self.timeout.as_millis() as i64 + 30_000
    }
}

/// What the caller asks for when subscribing.
#[derive(Debug, Clone)]
pub struct NewSubscription {
    /// Whose events: the caller's own when `None` (the operator must name an owner).
    pub owner: Option<WebhookOwner>,
    pub url: String,
    pub events: EventFilter,
}

/// What one dispatcher pass did.
#[derive(Debug, Default, Clone, Copy, PartialEq, Eq)]
pub struct PassSummary {
    pub events_fanned_out: u32,
    pub deliveries_created: u32,
    pub attempts: u32,
    pub delivered: u32,
}

/// The owner a caller's subscriptions belong to, if it can own any.
fn own_owner(who: &Principal) -> Option<WebhookOwner> {
    match who {
        Principal::Merchant(id) => Some(WebhookOwner::Merchant(*id)),
        Principal::Channel(channel) => Some(WebhookOwner::Channel(*channel)),
        _ => None,
    }
}

/// An owner for role-phase probes, which never compare it.
fn any_owner() -> WebhookOwner {
    WebhookOwner::Merchant(authz::anyone())
}

impl Core {
    pub fn webhook_options(&self) -> &WebhookOptions {
        &self.webhooks
    }

    #[tracing::instrument(level = "debug", skip_all, fields(who = ?who))]
    pub async fn create_webhook_subscription(
        &self,
        who: &Principal,
        input: NewSubscription,
        idem: Option<Idem<SubscriptionRecord>>,
    ) -> Result<SubscriptionRecord, CoreError> {
        authz::check_role(who, Access::ManageWebhooks(any_owner()))?;
        let owner = match (input.owner, own_owner(who)) {
            (Some(owner), _) | (None, Some(owner)) => owner,
            (None, None) => {
                return Err(jembatan_domain::DomainError::invalid(
                    "merchant_id",
                    "name the merchant (merchant_id) or channel (channel) the subscription is for",
                )
                .into());
            }
        };
        authz::check(who, Access::ManageWebhooks(owner))?;
        if let WebhookOwner::Merchant(id) = owner
            && self.store.merchant(id).await?.is_none()
        {
            return Err(not_found("merchant", id));
        }
        let url = check_url(&input.url, self.webhooks.allow_private_urls).await?;
        let mut key = [0u8; SECRET_BYTES];
        rand::rng().fill(&mut key);
        let subscription = SubscriptionRecord {
            id: jembatan_store::new_id(),
            owner,
            url: url.to_string(),
            secret: WebhookSecret::from_key(key),
            events: input.events,
            active: true,
            created_at: self.clock.now(),
        };
        Ok(self.store.create_webhook_subscription(self.ctx(who), subscription, idem).await?)
    }

    /// The caller's subscriptions (everyone's for the operator and the regulator), newest first.
    pub async fn webhook_subscriptions(
        &self,
        who: &Principal,
        before: Option<WebhookSubscriptionId>,
        limit: u32,
    ) -> Result<Vec<SubscriptionRecord>, CoreError> {
        let owner = own_owner(who);
        authz::check(who, Access::ReadWebhooks(owner.unwrap_or_else(any_owner)))?;
        Ok(self.store.webhook_subscriptions(owner, before, limit).await?)
    }

    pub async fn webhook_subscription(
        &self,
        who: &Principal,
        id: WebhookSubscriptionId,
    ) -> Result<SubscriptionRecord, CoreError> {
        authz::check_role(who, Access::ReadWebhooks(any_owner()))?;
        let subscription = self
            .store
            .webhook_subscription(id)
            .await?
            .ok_or_else(|| not_found("webhook subscription", id))?;
        authz::check(who, Access::ReadWebhooks(subscription.owner))?;
        Ok(subscription)
    }

    pub async fn delete_webhook_subscription(
        &self,
        who: &Principal,
        id: WebhookSubscriptionId,
    ) -> Result<SubscriptionRecord, CoreError> {
        authz::check_role(who, Access::ManageWebhooks(any_owner()))?;
        let subscription = self
            .store
            .webhook_subscription(id)
            .await?
            .ok_or_else(|| not_found("webhook subscription", id))?;
        authz::check(who, Access::ManageWebhooks(subscription.owner))?;
        Ok(self.store.delete_webhook_subscription(self.ctx(who), id).await?)
    }

    /// The delivery log of one subscription, newest first.
    pub async fn webhook_deliveries(
        &self,
        who: &Principal,
        subscription_id: WebhookSubscriptionId,
        before: Option<WebhookDeliveryId>,
        limit: u32,
    ) -> Result<Vec<DeliveryRecord>, CoreError> {
        self.webhook_subscription(who, subscription_id).await?;
        Ok(self.store.webhook_deliveries(subscription_id, before, limit).await?)
    }

    /// Sends a delivery again, now, with a fresh round of retries.
    pub async fn replay_webhook_delivery(
        &self,
        who: &Principal,
        id: WebhookDeliveryId,
        idem: Option<Idem<DeliveryRecord>>,
    ) -> Result<DeliveryRecord, CoreError> {
        authz::check_role(who, Access::ReplayWebhook(any_owner()))?;
        let (_, owner) =
            self.store.webhook_delivery(id).await?.ok_or_else(|| not_found("webhook delivery", id))?;
        authz::check(who, Access::ReplayWebhook(owner))?;
        Ok(self.store.replay_webhook_delivery(self.ctx(who), id, idem).await?)
    }

    /// Runs the dispatcher until the task is dropped.
    pub async fn run_webhooks(self) {
        let client = match http_client(&self.webhooks) {
            Ok(client) => client,
            Err(error) => {
                tracing::error!(%error, "webhooks are not delivered: the HTTP client cannot start");
                return;
            }
        };
        loop {
            let busy = match self.webhook_pass(&client).await {
                Ok(summary) => summary.events_fanned_out > 0 || summary.attempts > 0,
                Err(error) => {
                    tracing::warn!(%error, "webhook dispatcher pass failed");
                    false
                }
            };
            if !busy {
                tokio::time::sleep(self.webhooks.poll_interval).await;
            }
        }
    }

    /// One pass: fan out a batch of new events, then send the due deliveries (at most
    /// `concurrency_max` at once) and record each outcome.
    pub async fn webhook_pass(&self, client: &reqwest::Client) -> Result<PassSummary, CoreError> {
        let options = &self.webhooks;
        let (events, created) =
            self.store.fan_out_webhooks(self.clock.now(), options.fan_out_events_max).await?;
        let due = self
            .store
            .claim_webhook_deliveries(self.clock.now(), options.lease_ms(), options.concurrency_max as u32)
            .await?;
        metrics::counter!("jembatan_webhook_deliveries_created_total").increment(u64::from(created));
        let mut summary =
            PassSummary { events_fanned_out: events, deliveries_created: created, ..Default::default() };
        let outcomes: Vec<Result<bool, CoreError>> = futures::stream::iter(due)
            .map(|due| self.deliver(client, due))
            .buffer_unordered(options.concurrency_max.max(1))
            .collect()
            .await;
        for outcome in outcomes {
            summary.attempts += 1;
            summary.delivered += u32::from(outcome?);
        }
        Ok(summary)
    }

    /// Sends one leased delivery once and records the attempt; true if it was delivered.
    async fn deliver(&self, client: &reqwest::Client, due: DueDelivery) -> Result<bool, CoreError> {
        let options = &self.webhooks;
        let delivery = &due.delivery;
        let started_at = self.clock.now();
        let started = Instant::now();
        let answer = send(client, &due, started_at, options.allow_private_urls).await;
        let duration_ms = started.elapsed().as_millis() as i64;
        let (status_code, error) = match answer {
            Ok(status) if (200..300).contains(&status) => (Some(status), None),
            Ok(status) => (Some(status), Some(format!("the receiver answered HTTP {status}"))),
            Err(error) => (None, Some(error)),
        };
        let delivered = error.is_none();
        let attempts_made = delivery.attempts_since_replay + 1;
        let next = if delivered {
            NextStep::Delivered
        } else if attempts_made >= options.max_attempts {
            NextStep::GiveUp
        } else {
            let jitter = rand::rng().random_range(0..=200);
            NextStep::RetryAt(self.clock.now().plus_ms(options.retry_delay_ms(attempts_made, jitter)))
        };
        let outcome_label = match next {
            NextStep::Delivered => "delivered",
            NextStep::RetryAt(_) => "retry",
            NextStep::GiveUp => "failed",
        };
        metrics::counter!("jembatan_webhook_attempts_total", "outcome" => outcome_label).increment(1);
        metrics::histogram!("jembatan_webhook_attempt_seconds").record(duration_ms as f64 / 1_000.0);
        tracing::info!(delivery_id = %delivery.id, event_type = %delivery.event_type, status_code, error, outcome = outcome_label, "webhook attempt");
        let outcome = AttemptOutcome { started_at, duration_ms, status_code, error, next };
        let recorded = self.store.record_webhook_attempt(delivery.id, due.lease_until, outcome).await?;
        if !recorded {
            tracing::info!(delivery_id = %delivery.id, "delivery replayed or deleted while in flight; attempt not recorded");
        }
        Ok(delivered && recorded)
    }
}

/// The Standard Webhooks body of a delivery: the same bytes on every attempt.
pub fn envelope(delivery: &DeliveryRecord) -> String {
    let data: serde_json::Value = serde_json::from_str(&delivery.payload)
        .unwrap_or_else(|_| serde_json::Value::String(delivery.payload.clone()));
    let timestamp = time::OffsetDateTime::from_unix_timestamp_nanos(
        i128::from(delivery.event_created_at.unix_ms()) * 1_000_000,
    )
    .ok()
    .and_then(|t| t.format(&time::format_description::well_known::Rfc3339).ok())
    .unwrap_or_default();
    serde_json::json!({"type": delivery.event_type, "timestamp": timestamp, "data": data}).to_string()
}

/// Sends a delivery; the receiver's status, or why there was none.
async fn send(
    client: &reqwest::Client,
    due: &DueDelivery,
    now: Timestamp,
    allow_private: bool,
) -> Result<u16, String> {
    // Host names are checked by the client's resolver; literal addresses never reach it.
    let url = parse_url(&due.url).map_err(|e| e.to_string())?;
    if let Some(address) = literal_address(&url)
        && !allow_private
        && let Some(reason) = address_refusal(address)
    {
        return Err(format!("refused: {address} is {reason}"));
    }
    let body = envelope(&due.delivery);
    let message_id = due.delivery.id.to_string();
    let timestamp_s = now.unix_ms().div_euclid(1_000);
    let signature = due.secret.sign(&message_id, timestamp_s, body.as_bytes());
    let response = client
        .post(url)
        .header("content-type", "application/json")
        .header("webhook-id", &message_id)
        .header("webhook-timestamp", timestamp_s.to_string())
        .header("webhook-signature", signature)
        .body(body)
        .send()
        .await
        .map_err(|error| describe(&error))?;
    Ok(response.status().as_u16())
}

/// A request error with its causes (the resolver's refusal is among them), for the log.
fn describe(error: &reqwest::Error) -> String {
    let mut text = if error.is_timeout() { "timed out".to_owned() } else { error.to_string() };
    let mut source = std::error::Error::source(error);
    while let Some(cause) = source {
        text.push_str(": ");
        text.push_str(&cause.to_string());
        source = cause.source();
    }
    text.chars().take(500).collect()
}

/// The dispatcher's HTTP client: our resolver, a timeout, no redirects, no proxy.
pub fn http_client(options: &WebhookOptions) -> Result<reqwest::Client, CoreError> {
    // rustls is built with ring only; a second install (tests start many clients) is a no-op.
    let _ = rustls::crypto::ring::default_provider().install_default();
    reqwest::Client::builder()
        .dns_resolver(CheckedResolver { allow_private: options.allow_private_urls })
        .timeout(options.timeout)
        .connect_timeout(options.timeout)
        .redirect(reqwest::redirect::Policy::none())
        .no_proxy()
        .user_agent(concat!("jembatan-webhooks/", env!("CARGO_PKG_VERSION")))
        .build()
        .map_err(|e| CoreError::Store(StoreError::Conflict(format!("webhook HTTP client: {e}"))))
}

/// Resolves host names for the dispatcher and refuses those with an internal address.
struct CheckedResolver {
    allow_private: bool,
}

impl reqwest::dns::Resolve for CheckedResolver {
    fn resolve(&self, name: reqwest::dns::Name) -> reqwest::dns::Resolving {
        let allow_private = self.allow_private;
        let host = name.as_str().to_owned();
        Box::pin(async move {
            let addresses = resolve_checked(&host, allow_private).await.map_err(|e| e.to_string())?;
            Ok(Box::new(addresses.into_iter()) as reqwest::dns::Addrs)
        })
    }
}

/// How long a host name may take to resolve.
const RESOLVE_TIMEOUT: Duration = Duration::from_secs(5);

/// Every address of `host`, or why the host is refused: it does not resolve, or one of its
/// addresses is internal (one is enough: the client might connect to any of them).
async fn resolve_checked(host: &str, allow_private: bool) -> Result<Vec<SocketAddr>, CoreError> {
    let lookup = tokio::time::timeout(RESOLVE_TIMEOUT, tokio::net::lookup_host((host, 0))).await;
    let addresses: Vec<SocketAddr> = match lookup {
        Ok(Ok(addresses)) => addresses.collect(),
        Ok(Err(error)) => return Err(refused(format!("the host `{host}` does not resolve: {error}"))),
        Err(_) => return Err(refused(format!("the host `{host}` did not resolve within 5 s"))),
    };
    if addresses.is_empty() {
        return Err(refused(format!("the host `{host}` has no address")));
    }
    if !allow_private {
        for address in &addresses {
            if let Some(reason) = address_refusal(address.ip()) {
                return Err(refused(format!("the host `{host}` resolves to {}, {reason}", address.ip())));
            }
        }
    }
    Ok(addresses)
}

fn refused(reason: String) -> CoreError {
    CoreError::WebhookUrlRefused(reason)
}

fn parse_url(raw: &str) -> Result<Url, CoreError> {
    if raw.len() > URL_CHARS_MAX {
        return Err(refused(format!("the URL is longer than {URL_CHARS_MAX} characters")));
    }
    let url = Url::parse(raw).map_err(|e| refused(format!("not a URL: {e}")))?;
    if !matches!(url.scheme(), "http" | "https") {
        return Err(refused(format!("the scheme must be https or http, not `{}`", url.scheme())));
    }
    if url.host().is_none() {
        return Err(refused("the URL has no host".to_owned()));
    }
    if !url.username().is_empty() || url.password().is_some() {
        return Err(refused("the URL may not carry credentials; the signature authenticates us".to_owned()));
    }
    Ok(url)
}

fn literal_address(url: &Url) -> Option<IpAddr> {
    match url.host()? {
        url::Host::Ipv4(v4) => Some(IpAddr::V4(v4)),
        url::Host::Ipv6(v6) => Some(IpAddr::V6(v6)),
        url::Host::Domain(_) => None,
    }
}

/// Checks a subscription URL: http(s) with a host, and unless `allow_private`, no address
/// of it (literal or resolved now) internal.
pub async fn check_url(raw: &str, allow_private: bool) -> Result<Url, CoreError> {
    let url = parse_url(raw)?;
    if let Some(address) = literal_address(&url) {
        if !allow_private && let Some(reason) = address_refusal(address) {
            return Err(refused(format!("{address} is {reason}")));
        }
        return Ok(url);
    }
    let host = url.host_str().unwrap_or_default();
    resolve_checked(host, allow_private).await?;
    Ok(url)
}

#[cfg(test)]
mod tests {
    use super::*;
    use jembatan_domain::TypedId;

    #[tokio::test]
    async fn urls_are_refused_with_the_reason() {
        let cases: &[(&str, &str)] = &[
            ("ftp://example.com/x", "scheme"),
            ("https://user:pw@93.184.215.14/x", "credentials"),
            ("not a url", "not a URL"),
            ("http://127.0.0.1:9000/hook", "loopback"),
            ("http://[::1]/hook", "loopback"),
            ("https://10.0.0.8/hook", "private"),
            ("https://169.254.169.254/latest/meta-data", "link-local"),
            ("https://100.64.1.1/", "CGNAT"),
            ("https://[fd12::1]/", "unique local"),
            ("http://localhost:8080/hook", "loopback"),
        ];
        for (url, reason) in cases {
            match check_url(url, false).await {
                Err(CoreError::WebhookUrlRefused(text)) => assert!(text.contains(reason), "{url}: {text}"),
                other => panic!("{url}: {other:?}"),
            }
        }
        assert!(check_url("https://93.184.215.14/hooks", false).await.is_ok());
        assert!(check_url("http://127.0.0.1:9000/hook", true).await.is_ok(), "allowed by the operator");
        assert!(check_url("ftp://127.0.0.1/", true).await.is_err(), "the scheme rule stays");
    }

    #[test]
    fn retry_delays_follow_the_schedule_with_bounded_jitter() {
        let options = WebhookOptions::default();
        assert_eq!(options.retry_delay_ms(1, 0), 5_000);
        assert_eq!(options.retry_delay_ms(2, 0), 30_000);
        assert_eq!(options.retry_delay_ms(2, 200), 36_000);
        assert_eq!(options.retry_delay_ms(7, 0), 21_600_000);
        assert_eq!(options.retry_delay_ms(50, 0), 21_600_000, "the last delay repeats");
    }

    #[test]
    fn the_envelope_is_the_standard_webhooks_shape() {
        let delivery = DeliveryRecord {
            id: WebhookDeliveryId::from_uuid(uuid::Uuid::from_u128(1)),
            subscription_id: WebhookSubscriptionId::from_uuid(uuid::Uuid::from_u128(2)),
            event_id: jembatan_domain::EventId::from_uuid(uuid::Uuid::from_u128(3)),
            event_type: "order.paid".to_owned(),
            event_created_at: Timestamp::from_unix_ms(1_614_265_330_123),
            payload: r#"{"order_id":"ord_1"}"#.to_owned(),
            status: jembatan_domain::DeliveryStatus::Pending,
            attempts: 0,
            attempts_since_replay: 0,
            next_attempt_at: Timestamp::from_unix_ms(0),
            last_status_code: None,
            last_error: None,
            created_at: Timestamp::from_unix_ms(0),
            updated_at: Timestamp::from_unix_ms(0),
            recent_attempts: Vec::new(),
        };
        let body: serde_json::Value = serde_json::from_str(&envelope(&delivery)).unwrap();
        assert_eq!(
            body,
            serde_json::json!({"type": "order.paid", "timestamp": "2021-02-25T15:02:10.123Z", "data": {"order_id": "ord_1"}})
        );
        assert_eq!(envelope(&delivery), envelope(&delivery), "every attempt sends the same bytes");
    }
}
