//! Webhooks out (DESIGN.md §3, §9): who may subscribe, to which events, and how a delivery is
//! signed per the Standard Webhooks specification (<https://www.standardwebhooks.com>).
//!
//! Pure rules only: the signature is an HMAC of its inputs, the address rules classify an IP
//! address. Making a secret (randomness), resolving a host name and sending a request happen
//! at the edge (`jembatan_core::webhooks`).

use std::net::{IpAddr, Ipv4Addr, Ipv6Addr};

use base64::Engine;
use base64::engine::general_purpose::STANDARD as BASE64;
use hmac::{Hmac, KeyInit, Mac};
use sha2::Sha256;

use crate::checkout::Channel;
use crate::error::DomainError;
use crate::id::MerchantId;

/// The prefix of a Standard Webhooks signing secret.
pub const SECRET_PREFIX: &str = "whsec_";
/// Bytes of key in a secret we make (the specification asks for 24 to 64).
pub const SECRET_BYTES: usize = 32;
const SECRET_BYTES_MIN: usize = 24;
const SECRET_BYTES_MAX: usize = 64;
/// Event types one subscription may list.
pub const EVENT_TYPES_MAX: usize = 32;
/// Characters of a subscription URL.
pub const URL_CHARS_MAX: usize = 2_048;
/// The event families sent to subscribers: orders and payments (issue 3, point 8). Events of
/// the platform's own bookkeeping (tokens, ledger internals, webhook administration) are not.
pub const DELIVERED_FAMILIES: &[&str] = &["order", "checkout", "payment", "refund", "payout", "settlement"];

/// Who a subscription belongs to, and whose events it receives: a merchant gets the events of
/// its own merchant, a channel those of its own channel.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash)]
pub enum WebhookOwner {
    Merchant(MerchantId),
    Channel(Channel),
}

impl WebhookOwner {
    /// `merchant` or `channel`, as stored.
    pub fn role(self) -> &'static str {
        match self {
            WebhookOwner::Merchant(_) => "merchant",
            WebhookOwner::Channel(_) => "channel",
        }
    }

    /// The merchant id or the channel name, as stored.
    pub fn subject(self) -> String {
        match self {
            WebhookOwner::Merchant(id) => id.to_string(),
            WebhookOwner::Channel(channel) => channel.as_str().to_owned(),
        }
    }

    pub fn from_parts(role: &str, subject: &str) -> Result<WebhookOwner, DomainError> {
        use crate::id::TypedId;
        match role {
            "merchant" => Ok(WebhookOwner::Merchant(MerchantId::parse(subject)?)),
            "channel" => Ok(WebhookOwner::Channel(Channel::parse(subject)?)),
            _ => Err(DomainError::invalid("owner_role", "must be merchant or channel")),
        }
    }
}

/// Where a delivery stands: waiting to be sent (or sent again), received with a 2xx, or given up
/// after its last retry. A replay makes any delivery pending again.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum DeliveryStatus {
    Pending,
    Delivered,
    Failed,
}

impl DeliveryStatus {
    pub fn as_str(self) -> &'static str {
        match self {
            DeliveryStatus::Pending => "pending",
            DeliveryStatus::Delivered => "delivered",
            DeliveryStatus::Failed => "failed",
        }
    }

    pub fn parse(raw: &str) -> Result<DeliveryStatus, DomainError> {
        match raw {
            "pending" => Ok(DeliveryStatus::Pending),
            "delivered" => Ok(DeliveryStatus::Delivered),
            "failed" => Ok(DeliveryStatus::Failed),
            _ => Err(DomainError::invalid("status", "must be pending, delivered or failed")),
        }
    }
}

/// A signing secret: `whsec_` and the base64 of 24 to 64 random bytes. Its `Debug` shows
/// nothing of the key.
#[derive(Clone, PartialEq, Eq)]
pub struct WebhookSecret {
    text: String,
    key: Vec<u8>,
}

impl WebhookSecret {
    pub fn parse(text: &str) -> Result<WebhookSecret, DomainError> {
        let encoded = text
            .strip_prefix(SECRET_PREFIX)
            .ok_or_else(|| DomainError::invalid("secret", "must start with `whsec_`"))?;
        let key = BASE64
            .decode(encoded)
            .map_err(|_| DomainError::invalid("secret", "must be `whsec_` and standard base64"))?;
        if !(SECRET_BYTES_MIN..=SECRET_BYTES_MAX).contains(&key.len()) {
            return Err(DomainError::invalid(
                "secret",
                format!("must hold {SECRET_BYTES_MIN} to {SECRET_BYTES_MAX} bytes of key"),
            ));
        }
        Ok(WebhookSecret { text: text.to_owned(), key })
    }

    /// A secret of these key bytes (random ones, made by the caller).
    pub fn from_key(key: [u8; SECRET_BYTES]) -> WebhookSecret {
        WebhookSecret { text: format!("{SECRET_PREFIX}{}", BASE64.encode(key)), key: key.to_vec() }
    }

    /// The secret as shown to its owner once and as stored.
    pub fn expose(&self) -> &str {
        &self.text
    }

    /// The `webhook-signature` header value of a message: `v1,` and the base64 of
    /// HMAC-SHA256(key, "{id}.{timestamp}.{body}").
    pub fn sign(&self, message_id: &str, timestamp_s: i64, body: &[u8]) -> String {
        let mut mac = Hmac::<Sha256>::new_from_slice(&self.key).expect("HMAC takes a key of any length");
        mac.update(message_id.as_bytes());
        mac.update(b".");
        mac.update(timestamp_s.to_string().as_bytes());
        mac.update(b".");
        mac.update(body);
        format!("v1,{}", BASE64.encode(mac.finalize().into_bytes()))
    }
}

impl std::fmt::Debug for WebhookSecret {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.write_str("WebhookSecret(whsec_[redacted])")
    }
}

/// The event types a subscription receives: every delivered one (`*`), or those listed.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct EventFilter(Option<Vec<String>>);

impl EventFilter {
    pub fn all() -> EventFilter {
        EventFilter(None)
    }

    /// `["*"]` or a list of event types such as `order.paid`, each of a delivered family.
    pub fn from_list(types: &[String]) -> Result<EventFilter, DomainError> {
        const FIELD: &str = "event_types";
        if types.len() == 1 && types[0] == "*" {
            return Ok(EventFilter::all());
        }
        if types.is_empty() || types.len() > EVENT_TYPES_MAX {
            return Err(DomainError::invalid(
                FIELD,
                format!("must list 1 to {EVENT_TYPES_MAX} event types, or be [\"*\"]"),
            ));
        }
        let mut listed: Vec<String> = Vec::with_capacity(types.len());
        for event_type in types {
            let (family, name) = event_type.split_once('.').unwrap_or(("", ""));
            let well_formed = !name.is_empty()
                && event_type.len() <= 64
                && event_type.bytes().all(|b| b.is_ascii_lowercase() || b == b'_' || b == b'.')
                && !name.contains('.');
            if !well_formed {
                return Err(DomainError::invalid(
                    FIELD,
                    format!("`{event_type}` is not an event type such as `order.paid`"),
                ));
            }
            if !DELIVERED_FAMILIES.contains(&family) {
                return Err(DomainError::invalid(
                    FIELD,
                    format!(
                        "`{event_type}` is not delivered; event families are {}",
                        DELIVERED_FAMILIES.join(", ")
                    ),
                ));
            }
            if !listed.contains(event_type) {
                listed.push(event_type.clone());
            }
        }
        Ok(EventFilter(Some(listed)))
    }

    /// The stored form: `*` or the types joined by commas.
    pub fn to_stored(&self) -> String {
        match &self.0 {
            None => "*".to_owned(),
            Some(types) => types.join(","),
        }
    }

    pub fn from_stored(stored: &str) -> Result<EventFilter, DomainError> {
        let types: Vec<String> = stored.split(',').map(str::to_owned).collect();
        EventFilter::from_list(&types)
    }

    /// The listed types, or `["*"]`.
    pub fn types(&self) -> Vec<String> {
        self.0.clone().unwrap_or_else(|| vec!["*".to_owned()])
    }

    pub fn matches(&self, event_type: &str) -> bool {
        is_delivered(event_type) && self.0.as_ref().is_none_or(|types| types.iter().any(|t| t == event_type))
    }
}

/// Whether an event of this type is ever sent to subscribers.
pub fn is_delivered(event_type: &str) -> bool {
    event_type.split_once('.').is_some_and(|(family, _)| DELIVERED_FAMILIES.contains(&family))
}

/// Why a webhook may not be sent to this address, or `None` if it may: loopback, private,
/// link-local, unspecified, shared (CGNAT), multicast and broadcast addresses, and IPv6 unique
/// local ones, reach the platform's own network instead of a subscriber's (SSRF).
pub fn address_refusal(address: IpAddr) -> Option<&'static str> {
    match address {
        IpAddr::V4(v4) => v4_refusal(v4),
        IpAddr::V6(v6) => match v6.to_ipv4_mapped() {
            Some(v4) => v4_refusal(v4),
            None => v6_refusal(v6),
        },
    }
}

fn v4_refusal(v4: Ipv4Addr) -> Option<&'static str> {
    let [a, b, ..] = v4.octets();
    if v4.is_loopback() {
        Some("a loopback address")
    } else if v4.is_private() {
        Some("a private address (RFC 1918)")
    } else if v4.is_link_local() {
        Some("a link-local address")
    } else if v4.is_unspecified() || a == 0 {
        Some("an unspecified address")
    } else if a == 100 && (64..128).contains(&b) {
        Some("a shared address (CGNAT, 100.64.0.0/10)")
    } else if v4.is_multicast() || v4.is_broadcast() || a >= 240 {
        Some("a multicast, broadcast or reserved address")
    } else {
        None
    }
}

fn v6_refusal(v6: Ipv6Addr) -> Option<&'static str> {
    let first = v6.segments()[0];
    if v6.is_loopback() {
        Some("a loopback address")
    } else if v6.is_unspecified() {
        Some("an unspecified address")
    } else if first & 0xfe00 == 0xfc00 {
        Some("a unique local address (fc00::/7)")
    } else if first & 0xffc0 == 0xfe80 {
        Some("a link-local address")
    } else if v6.is_multicast() {
        Some("a multicast address")
    } else {
        None
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    /// The test vector published with the Standard Webhooks reference libraries.
    #[test]
    fn signs_the_specifications_test_vector() {
        let secret = WebhookSecret::parse("whsec_MfKQ9r8GKYqrTwjUPD8ILPZIo2LaLaSw").unwrap();
        let signature = secret.sign("msg_p5jXN8AQM9LWM0D4loKWxJek", 1614265330, br#"{"test": 2432232314}"#);
        assert_eq!(signature, "v1,g0hM9SsE+OTPJTGt/tmIKtSyZlE3uFJELVlNIOLJ1OE=");
        // Any change of id, time or body changes the signature.
        assert_ne!(
            secret.sign("msg_p5jXN8AQM9LWM0D4loKWxJek", 1614265331, br#"{"test": 2432232314}"#),
            signature
        );
        assert_ne!(
            secret.sign("msg_p5jXN8AQM9LWM0D4loKWxJel", 1614265330, br#"{"test": 2432232314}"#),
            signature
        );
        assert_ne!(
            secret.sign("msg_p5jXN8AQM9LWM0D4loKWxJek", 1614265330, br#"{"test": 2432232315}"#),
            signature
        );
    }

    #[test]
    fn secrets_parse_and_never_print() {
        let made = WebhookSecret::from_key([7; SECRET_BYTES]);
        assert!(made.expose().starts_with("whsec_"));
        assert_eq!(WebhookSecret::parse(made.expose()).unwrap(), made);
        assert!(!format!("{made:?}").contains(&made.expose()[6..]));
        for bad in ["MfKQ9r8GKYqrTwjUPD8ILPZIo2LaLaSw", "whsec_!!!", "whsec_c2hvcnQ=", ""] {
            assert!(WebhookSecret::parse(bad).is_err(), "{bad}");
        }
    }

    #[test]
    fn filters_parse_and_match() {
        let list = |items: &[&str]| items.iter().map(|s| (*s).to_owned()).collect::<Vec<_>>();
        let all = EventFilter::from_list(&list(&["*"])).unwrap();
        assert!(all.matches("order.paid") && all.matches("checkout.created"));
        assert!(!all.matches("token.issued") && !all.matches("ledger.transfers_created"));
        let paid = EventFilter::from_list(&list(&["order.paid", "order.paid", "order.cancelled"])).unwrap();
        assert_eq!(paid.to_stored(), "order.paid,order.cancelled");
        assert_eq!(EventFilter::from_stored(&paid.to_stored()).unwrap(), paid);
        assert!(paid.matches("order.paid") && !paid.matches("order.created"));
        for bad in
            [&[][..], &["token.issued"], &["order"], &["Order.Paid"], &["*", "order.paid"], &["order.a.b"]]
        {
            assert!(EventFilter::from_list(&list(bad)).is_err(), "{bad:?}");
        }
    }

    #[test]
    fn internal_addresses_are_refused_and_public_ones_pass() {
        let refused = [
            "127.0.0.1",
            "10.1.2.3",
            "172.16.0.1",
            "192.168.1.1",
            "169.254.169.254",
            "0.0.0.0",
            "100.64.0.1",
            "100.127.255.255",
            "224.0.0.1",
            "255.255.255.255",
            "::1",
            "::",
            "fd00::1",
            "fe80::1",
            "::ffff:127.0.0.1",
            "::ffff:10.0.0.1",
        ];
        for address in refused {
            assert!(address_refusal(address.parse().unwrap()).is_some(), "{address} passed");
        }
        for address in ["93.184.215.14", "100.63.255.255", "100.128.0.1", "8.8.8.8", "2606:4700::1111"] {
            assert_eq!(address_refusal(address.parse().unwrap()), None, "{address}");
        }
    }
}
