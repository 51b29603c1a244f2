//! Typed, layered configuration: built-in defaults, then a TOML file (`--config`, default
//! `jembatan.toml` if present), then `JEMBATAN_…` environment variables (`JEMBATAN_LISTEN`,
//! `JEMBATAN_DATABASE_URL`, `JEMBATAN_API__BODY_BYTES_MAX`, …), then command-line flags.

use std::path::{Path, PathBuf};

use figment::Figment;
use figment::providers::{Env, Format, Serialized, Toml};
use serde::{Deserialize, Serialize};

/// A database URL, which may carry a password: never printed.
#[derive(Clone, Serialize, Deserialize, PartialEq, Eq)]
#[serde(transparent)]
pub struct SecretUrl(String);

impl SecretUrl {
    pub fn expose(&self) -> &str {
        &self.0
    }
}

impl std::fmt::Debug for SecretUrl {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        let scheme = self.0.split("://").next().unwrap_or("?");
        write!(f, "{scheme}://[redacted]")
    }
}

#[derive(Debug, Clone, Serialize, Deserialize)]
pub struct ApiConfig {
    pub body_bytes_max: usize,
    /// CSV files posted to the API (bank results, settlement reports).
    pub csv_body_bytes_max: usize,
    pub page_size_default: u32,
    pub page_size_max: u32,
    pub idempotency_stale_ms: i64,
    /// How long a completed idempotency key is remembered (retries within it are replayed).
    pub idempotency_retention_ms: i64,
    /// How often expired keys are purged.
    pub maintenance_interval_ms: u64,
}

#[derive(Debug, Clone, Serialize, Deserialize)]
pub struct StoreConfig {
    pub read_connections_max: u32,
    pub write_connections_max: u32,
    pub group_commit_units_max: usize,
    pub write_queue_units_max: usize,
}

/// `[webhooks]`: how deliveries are checked, sent and retried.
#[derive(Debug, Clone, Serialize, Deserialize)]
pub struct WebhooksConfig {
    /// Lets subscriptions point at loopback, private and link-local addresses (development).
    pub allow_private_urls: bool,
    /// Attempts of one delivery before it is failed (a replay gives it as many again).
    pub max_attempts: u32,
    /// One request, from connecting to the answer.
    pub timeout_ms: u64,
    /// Pause of the dispatcher when it found nothing to do.
    pub poll_interval_ms: u64,
    /// Delay before each retry (the last repeats); up to 20 % jitter is added.
    pub retry_delays_ms: Vec<i64>,
    /// Requests in flight at once.
    pub concurrency_max: usize,
    /// Outbox events turned into deliveries per unit.
    pub fan_out_events_max: u32,
}

#[derive(Debug, Clone, Serialize, Deserialize)]
pub struct PaymentsConfig {
    /// The provider's shared secret for signed callbacks. Unset: a random one kept in
    /// `<data_dir>/provider-secret` (created on first use).
    pub provider_secret: Option<SecretUrl>,
    pub payment_ttl_ms: i64,
    pub auto_confirm_after_ms: i64,
    pub callback_tolerance_s: i64,
    pub sweep_interval_ms: u64,
}

#[derive(Debug, Clone, Serialize, Deserialize)]
pub struct Config {
    pub listen: String,
    pub data_dir: PathBuf,
    /// When set, the core lives in this database (PostgreSQL) instead of the data dir.
    pub database_url: Option<SecretUrl>,
    /// When set, the social shop's legacy store lives in this database (PostgreSQL) instead of
    /// `<data_dir>/legacy.sqlite`.
    pub legacy_database_url: Option<SecretUrl>,
    /// `tracing` filter, e.g. `info,jembatan_store=debug`.
    pub log: String,
    pub api: ApiConfig,
    pub store: StoreConfig,
    pub payments: PaymentsConfig,
    pub webhooks: WebhooksConfig,
    pub social: SocialConfig,
    /// A compliance policy file replacing the built-in `policy/rules.toml` (same shape).
    #[serde(default)]
    pub policy_file: Option<PathBuf>,
}

/// The social storefront's gateway.
#[derive(Debug, Clone, Serialize, Deserialize)]
pub struct SocialConfig {
    /// How long a write for a shop being moved waits for the move before a 503.
    pub fence_wait_ms: u64,
    pub fence_poll_ms: u64,
    /// How often legacy rows are brought up to their core twins (payments confirmed, expiries).
    pub sync_interval_ms: u64,
    /// Key of the pseudonymous buyer references the core receives; default
    /// `<data_dir>/pseudonym-secret` (created on first use).
    pub pseudonym_secret: Option<SecretUrl>,
}

impl Default for Config {
    fn default() -> Self {
        let api = jembatan_api::ApiLimits::default();
        let store = jembatan_store::StoreOptions::new("");
        let webhooks = jembatan_core::WebhookOptions::default();
        Config {
            listen: "127.0.0.1:8080".to_owned(),
            data_dir: PathBuf::from("./jembatan-data"),
            database_url: None,
            legacy_database_url: None,
            policy_file: None,
            log: "info".to_owned(),
            api: ApiConfig {
                body_bytes_max: api.body_bytes_max,
                csv_body_bytes_max: api.csv_body_bytes_max,
                page_size_default: api.page_size_default,
                page_size_max: api.page_size_max,
                idempotency_stale_ms: api.idempotency_stale_ms,
                idempotency_retention_ms: 24 * 60 * 60 * 1000,
                maintenance_interval_ms: 10 * 60 * 1000,
            },
            store: StoreConfig {
                read_connections_max: store.read_connections_max,
                write_connections_max: store.write_connections_max,
                group_commit_units_max: store.group_commit_units_max,
                write_queue_units_max: store.write_queue_units_max,
            },
            payments: {
                let p = jembatan_core::PaymentSettings::default();
                PaymentsConfig {
                    provider_secret: None,
                    payment_ttl_ms: p.payment_ttl_ms,
                    auto_confirm_after_ms: p.auto_confirm_after_ms,
                    callback_tolerance_s: p.callback_tolerance_s,
                    sweep_interval_ms: 5_000,
                }
            },
            social: SocialConfig {
                fence_wait_ms: 2_000,
                fence_poll_ms: 20,
                sync_interval_ms: 1_000,
                pseudonym_secret: None,
            },
            webhooks: WebhooksConfig {
                allow_private_urls: webhooks.allow_private_urls,
                max_attempts: webhooks.max_attempts,
                timeout_ms: webhooks.timeout.as_millis() as u64,
                poll_interval_ms: webhooks.poll_interval.as_millis() as u64,
                retry_delays_ms: webhooks.retry_delays_ms,
                concurrency_max: webhooks.concurrency_max,
                fan_out_events_max: webhooks.fan_out_events_max,
            },
        }
    }
}

/// Flags that override the file and the environment when given.
#[derive(Debug, Default, Clone, Serialize)]
pub struct Overrides {
    #[serde(skip_serializing_if = "Option::is_none")]
    pub listen: Option<String>,
    #[serde(skip_serializing_if = "Option::is_none")]
    pub data_dir: Option<PathBuf>,
    #[serde(skip_serializing_if = "Option::is_none")]
    pub database_url: Option<String>,
    #[serde(skip_serializing_if = "Option::is_none")]
    pub legacy_database_url: Option<String>,
}

pub fn load(file: Option<&Path>, overrides: &Overrides) -> anyhow::Result<Config> {
    let mut figment = Figment::from(Serialized::defaults(Config::default()));
    match file {
        Some(path) => {
            anyhow::ensure!(path.exists(), "config file {} does not exist", path.display());
            figment = figment.merge(Toml::file(path));
        }
        None => figment = figment.merge(Toml::file("jembatan.toml")),
    }
    figment = figment.merge(Env::prefixed("JEMBATAN_").split("__")).merge(Serialized::defaults(overrides));
    let config: Config = figment.extract().map_err(|e| anyhow::anyhow!("configuration: {e}"))?;
    validate(&config)?;
    Ok(config)
}

/// Limits that would break the service are refused at start, with the key to fix.
fn validate(config: &Config) -> anyhow::Result<()> {
    let (api, store, webhooks) = (&config.api, &config.store, &config.webhooks);
    let payments = &config.payments;
    let checks: [(bool, &str); 25] = [
        (config.social.sync_interval_ms >= 10, "social.sync_interval_ms must be at least 10"),
        (config.social.fence_wait_ms <= 60_000, "social.fence_wait_ms must be at most 60000"),
        (
            (1..=1_000).contains(&config.social.fence_poll_ms),
            "social.fence_poll_ms must be between 1 and 1000",
        ),
        (payments.payment_ttl_ms >= 1_000, "payments.payment_ttl_ms must be at least 1000"),
        (payments.auto_confirm_after_ms >= 0, "payments.auto_confirm_after_ms must be 0 or more"),
        (
            (1..=3_600).contains(&payments.callback_tolerance_s),
            "payments.callback_tolerance_s must be between 1 and 3600",
        ),
        (payments.sweep_interval_ms >= 100, "payments.sweep_interval_ms must be at least 100"),
        (
            payments.provider_secret.as_ref().is_none_or(|s| s.expose().len() >= 16),
            "payments.provider_secret must be at least 16 characters",
        ),
        (api.body_bytes_max >= 1024, "api.body_bytes_max must be at least 1024"),
        (api.csv_body_bytes_max >= 1024, "api.csv_body_bytes_max must be at least 1024"),
        (api.page_size_max >= 1, "api.page_size_max must be at least 1"),
        (
            (1..=api.page_size_max).contains(&api.page_size_default),
            "api.page_size_default must be between 1 and api.page_size_max",
        ),
        (api.idempotency_stale_ms >= 1_000, "api.idempotency_stale_ms must be at least 1000"),
        (
            api.idempotency_retention_ms >= api.idempotency_stale_ms,
            "api.idempotency_retention_ms must be at least api.idempotency_stale_ms",
        ),
        (store.read_connections_max >= 1, "store.read_connections_max must be at least 1"),
        (store.write_connections_max >= 1, "store.write_connections_max must be at least 1"),
        (store.group_commit_units_max >= 1, "store.group_commit_units_max must be at least 1"),
        (store.write_queue_units_max >= 1, "store.write_queue_units_max must be at least 1"),
        ((1..=100).contains(&webhooks.max_attempts), "webhooks.max_attempts must be between 1 and 100"),
        (
            (100..=120_000).contains(&webhooks.timeout_ms),
            "webhooks.timeout_ms must be between 100 and 120000",
        ),
        (
            (10..=60_000).contains(&webhooks.poll_interval_ms),
            "webhooks.poll_interval_ms must be between 10 and 60000",
        ),
        (!webhooks.retry_delays_ms.is_empty(), "webhooks.retry_delays_ms must list at least one delay"),
        (
            webhooks.retry_delays_ms.iter().all(|d| (1..=7 * 24 * 3_600_000).contains(d)),
            "webhooks.retry_delays_ms must each be between 1 ms and 7 days",
        ),
        ((1..=256).contains(&webhooks.concurrency_max), "webhooks.concurrency_max must be between 1 and 256"),
        (
            (1..=10_000).contains(&webhooks.fan_out_events_max),
            "webhooks.fan_out_events_max must be between 1 and 10000",
        ),
    ];
    for (ok, message) in checks {
        anyhow::ensure!(ok, "configuration: {message}");
    }
    Ok(())
}

impl Config {
    pub fn store_options(&self) -> jembatan_store::StoreOptions {
        let mut options = match &self.database_url {
            Some(url) => jembatan_store::StoreOptions::new(url.expose()),
            None => jembatan_store::StoreOptions::sqlite_in(&self.data_dir),
        };
        options.read_connections_max = self.store.read_connections_max;
        options.write_connections_max = self.store.write_connections_max;
        options.group_commit_units_max = self.store.group_commit_units_max;
        options.write_queue_units_max = self.store.write_queue_units_max;
        options
    }

    /// Where the social shop's legacy store lives.
    pub fn legacy_store_options(&self) -> jembatan_store::StoreOptions {
        let options = match &self.legacy_database_url {
            Some(url) => jembatan_store::StoreOptions::new(url.expose()),
            None => jembatan_store::StoreOptions::legacy_sqlite_in(&self.data_dir),
        };
        options.with_schema(jembatan_store::Schema::Legacy)
    }

    pub fn payment_settings(&self) -> jembatan_core::PaymentSettings {
        jembatan_core::PaymentSettings {
            payment_ttl_ms: self.payments.payment_ttl_ms,
            auto_confirm_after_ms: self.payments.auto_confirm_after_ms,
            callback_tolerance_s: self.payments.callback_tolerance_s,
        }
    }

    /// The provider's shared secret: configured, or kept in the data directory (created with
    /// owner-only permissions on first use).
    pub fn provider_secret(&self) -> anyhow::Result<Vec<u8>> {
        self.secret(self.payments.provider_secret.as_ref(), "provider-secret")
    }

    /// The gateway's settings: the fence wait and the key of pseudonymous buyer references
    /// (configured, or `<data_dir>/pseudonym-secret`).
    pub fn gateway_options(&self) -> anyhow::Result<jembatan_core::gateway::GatewayOptions> {
        Ok(jembatan_core::gateway::GatewayOptions {
            fence_wait: std::time::Duration::from_millis(self.social.fence_wait_ms),
            fence_poll: std::time::Duration::from_millis(self.social.fence_poll_ms),
            pseudonym_key: self.secret(self.social.pseudonym_secret.as_ref(), "pseudonym-secret")?,
        })
    }

    /// The compliance policy: the configured file, or the built-in one. A bad file is refused
    /// with what is wrong in it.
    pub fn policy(&self) -> anyhow::Result<jembatan_domain::policy::Policy> {
        let text = match &self.policy_file {
            Some(path) => std::fs::read_to_string(path)
                .map_err(|e| anyhow::anyhow!("cannot read the policy file {}: {e}", path.display()))?,
            None => jembatan_core::policy::BUILT_IN.to_owned(),
        };
        jembatan_core::policy::load(&text).map_err(|e| anyhow::anyhow!("{e}"))
    }

    /// The platform's Ed25519 key that signs the audit chain's daily digests
    /// (`<data_dir>/audit-signing-key`, 32 bytes of hex, owner-only, created on first use).
    pub fn audit_signing_key(&self) -> anyhow::Result<ed25519_dalek::SigningKey> {
        let text = self.secret(None, "audit-signing-key")?;
        let bytes: [u8; 32] = hex::decode(&text)
            .ok()
            .and_then(|b| b.try_into().ok())
            .ok_or_else(|| anyhow::anyhow!("audit-signing-key is not 32 bytes of hex"))?;
        Ok(jembatan_domain::audit::signing_key(&bytes))
    }

    fn secret(&self, configured: Option<&SecretUrl>, file: &str) -> anyhow::Result<Vec<u8>> {
        if let Some(secret) = configured {
            return Ok(secret.expose().as_bytes().to_vec());
        }
        let path = self.data_dir.join(file);
        if let Ok(existing) = std::fs::read_to_string(&path) {
            return Ok(existing.trim().as_bytes().to_vec());
        }
        std::fs::create_dir_all(&self.data_dir)?;
        let secret = hex::encode(rand::random::<[u8; 32]>());
        let mut options = std::fs::OpenOptions::new();
        options.write(true).create_new(true);
        #[cfg(unix)]
        std::os::unix::fs::OpenOptionsExt::mode(&mut options, 0o600);
        use std::io::Write;
        match options.open(&path) {
            Ok(mut file) => file.write_all(secret.as_bytes())?,
            // Another process created it first: use theirs.
            Err(e) if e.kind() == std::io::ErrorKind::AlreadyExists => {
                return Ok(std::fs::read_to_string(&path)?.trim().as_bytes().to_vec());
            }
            Err(e) => return Err(anyhow::anyhow!("cannot write {}: {e}", path.display())),
        }
        Ok(secret.into_bytes())
    }

    pub fn maintenance(&self) -> jembatan_core::MaintenanceOptions {
        jembatan_core::MaintenanceOptions {
            idempotency_retention_ms: self.api.idempotency_retention_ms,
            idempotency_stale_ms: self.api.idempotency_stale_ms,
            interval: std::time::Duration::from_millis(self.api.maintenance_interval_ms.max(1_000)),
        }
    }

    pub fn webhooks(&self) -> jembatan_core::WebhookOptions {
        let w = &self.webhooks;
        jembatan_core::WebhookOptions {
            allow_private_urls: w.allow_private_urls,
            max_attempts: w.max_attempts,
            timeout: std::time::Duration::from_millis(w.timeout_ms),
            poll_interval: std::time::Duration::from_millis(w.poll_interval_ms),
            retry_delays_ms: w.retry_delays_ms.clone(),
            concurrency_max: w.concurrency_max,
            fan_out_events_max: w.fan_out_events_max,
        }
    }

    pub fn api_limits(&self) -> jembatan_api::ApiLimits {
        jembatan_api::ApiLimits {
            body_bytes_max: self.api.body_bytes_max,
            csv_body_bytes_max: self.api.csv_body_bytes_max,
            page_size_default: self.api.page_size_default,
            page_size_max: self.api.page_size_max,
            idempotency_stale_ms: self.api.idempotency_stale_ms,
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    // figment's own Jail API fixes the closure's error type.
    #[allow(clippy::result_large_err)]
    fn layers_apply_in_order_and_secrets_do_not_print() {
        figment::Jail::expect_with(|jail| {
            jail.create_file("jembatan.toml", "listen = \"127.0.0.1:9000\"\n[api]\npage_size_max = 50\n")?;
            jail.set_env("JEMBATAN_API__PAGE_SIZE_MAX", "70");
            jail.set_env("JEMBATAN_DATABASE_URL", "postgres://user:hunter2@db/x");
            let config = load(None, &Overrides::default()).unwrap();
            assert_eq!(config.listen, "127.0.0.1:9000");
            assert_eq!(config.api.page_size_max, 70, "environment beats the file");
            assert!(!format!("{config:?}").contains("hunter2"));
            let flags = Overrides { listen: Some("0.0.0.0:1".into()), ..Default::default() };
            assert_eq!(load(None, &flags).unwrap().listen, "0.0.0.0:1", "flags beat everything");
            jail.set_env("JEMBATAN_STORE__WRITE_QUEUE_UNITS_MAX", "0");
            let refused = load(None, &flags).unwrap_err().to_string();
            assert!(refused.contains("store.write_queue_units_max"), "{refused}");
            jail.set_env("JEMBATAN_STORE__WRITE_QUEUE_UNITS_MAX", "4096");
            assert!(
                !load(None, &flags).unwrap().webhooks.allow_private_urls,
                "private addresses refused by default"
            );
            jail.set_env("JEMBATAN_WEBHOOKS__ALLOW_PRIVATE_URLS", "true");
            assert!(load(None, &flags).unwrap().webhooks().allow_private_urls);
            jail.set_env("JEMBATAN_WEBHOOKS__MAX_ATTEMPTS", "0");
            let refused = load(None, &flags).unwrap_err().to_string();
            assert!(refused.contains("webhooks.max_attempts"), "{refused}");
            Ok(())
        });
    }
}
