//! `[events]`: the license and product events (docs/events.md): how long the feed keeps them,
//! the lead time of `license.expiring_soon`, how often expiry is scheduled;
//! `[events.nats]`, the NATS JetStream publisher (off unless `url` is set); and
//! `[events.webhooks]`, where and how webhooks are delivered.

use std::time::Duration;

use secrecy::SecretString;
use serde::Deserialize;

use super::Problem;

/// `[events]`; all defaults when the section is left out.
#[derive(Debug, Clone, Deserialize)]
#[serde(deny_unknown_fields, default)]
pub struct EventsSettings {
    /// How long the feed keeps an event, in days (1..=365; 7). Older events are pruned, and a
    /// cursor older than the oldest kept event is answered 410.
    pub retention_days: u32,
    /// How long before a license's stop date its `license.expiring_soon` event is written, in
    /// hours (1..=8760; 72).
    pub expiring_soon_hours: u32,
    /// How often each instance writes the expiry events that came due and prunes old events,
    /// in milliseconds (100..=3,600,000; 60,000). An expiry event is written at most this late.
    pub scheduler_interval_ms: u64,
    /// `[events.nats]`: publishing to NATS JetStream.
    pub nats: NatsSettings,
    /// `[events.webhooks]`: delivering to the endpoints of `/webhooks`.
    pub webhooks: WebhookSettings,
}

/// `[events.webhooks]`: every instance delivers the events to the endpoints registered
/// through `/webhooks`; these say where endpoints may point and how deliveries go.
#[derive(Debug, Clone, Deserialize)]
#[serde(deny_unknown_fields, default)]
pub struct WebhookSettings {
    /// Whether `http://` endpoints are taken (false: `https://` only).
    pub allow_http: bool,
    /// Whether endpoints may be private addresses (loopback, RFC 1918, link-local, …):
    /// false refuses them at registration and at each connection (SSRF).
    pub allow_private_networks: bool,
    /// The bound of one attempt, connection to answer, in milliseconds (100..=60000; 10000).
    pub timeout_ms: u64,
    /// Deliveries one instance sends at once (1..=256; 16).
    pub concurrency: u32,
    /// An endpoint whose every attempt failed for this many days is disabled (1..=30; 5).
    pub disable_after_days: u32,
    /// Multiplies every wait of the retry schedule (0.0001..=1; 1): for drills and tests
    /// that cannot wait hours. Production keeps 1.
    pub retry_scale: f64,
}

impl Default for WebhookSettings {
    fn default() -> Self {
        Self {
            allow_http: false,
            allow_private_networks: false,
            timeout_ms: 10_000,
            concurrency: 16,
            disable_after_days: 5,
            retry_scale: 1.0,
        }
    }
}

impl WebhookSettings {
    pub fn timeout(&self) -> Duration {
        Duration::from_millis(self.timeout_ms)
    }

    pub fn disable_after(&self) -> Duration {
        Duration::from_secs(u64::from(self.disable_after_days) * 86_400)
    }

    fn validate(&self, problems: &mut Vec<Problem>) {
        if !(100..=60_000).contains(&self.timeout_ms) {
            problems.push(Problem::new(
                "events.webhooks.timeout_ms",
                "must be between 100 and 60000 milliseconds",
            ));
        }
        if !(1..=256).contains(&self.concurrency) {
            problems.push(Problem::new(
                "events.webhooks.concurrency",
                "must be between 1 and 256",
            ));
        }
        if !(1..=30).contains(&self.disable_after_days) {
            problems.push(Problem::new(
                "events.webhooks.disable_after_days",
                "must be between 1 and 30 days",
            ));
        }
        if !(0.0001..=1.0).contains(&self.retry_scale) {
            problems.push(Problem::new(
                "events.webhooks.retry_scale",
                "must be between 0.0001 and 1",
            ));
        }
    }
}

/// `[events.nats]`: the workers publish each event to `{subject_prefix}.{type}` of a JetStream
/// stream, with `Nats-Msg-Id` = the event id. Off while `url` is unset.
#[derive(Debug, Clone, Deserialize)]
#[serde(deny_unknown_fields, default)]
pub struct NatsSettings {
    /// The server(s), `nats://host:4222` (several: comma separated). Secret: it may hold
    /// credentials (`nats://user:password@host:4222`). Unset: no publishing.
    pub url: Option<SecretString>,
    /// The stream, created or updated at start ("LICENSES_EVENTS").
    pub stream: String,
    /// The subjects' prefix ("licenses.events"): `licenses.events.license.created`.
    pub subject_prefix: String,
    /// How long JetStream drops a repeated event id, in seconds (10..=86400; 120).
    pub duplicate_window_secs: u64,
    /// The bound of a connection attempt and of each publish's acknowledgement, in
    /// milliseconds (100..=60000; 5000).
    pub timeout_ms: u64,
}

impl Default for NatsSettings {
    fn default() -> Self {
        Self {
            url: None,
            stream: "LICENSES_EVENTS".to_owned(),
            subject_prefix: "licenses.events".to_owned(),
            duplicate_window_secs: 120,
            timeout_ms: 5_000,
        }
    }
}

impl NatsSettings {
    pub fn timeout(&self) -> Duration {
        Duration::from_millis(self.timeout_ms)
    }

    pub fn duplicate_window(&self) -> Duration {
        Duration::from_secs(self.duplicate_window_secs)
    }

    fn validate(&self, problems: &mut Vec<Problem>) {
        let name = |s: &str, dots: bool| {
            !s.is_empty()
                && s.len() <= 128
                && s.split('.').all(|part| !part.is_empty())
                && s.bytes().all(|b| {
                    b.is_ascii_alphanumeric() || b == b'_' || b == b'-' || (dots && b == b'.')
                })
        };
        if !name(&self.stream, false) {
            problems.push(Problem::new(
                "events.nats.stream",
                "must be 1 to 128 letters, digits, '_' or '-'",
            ));
        }
        if !name(&self.subject_prefix, true) {
            problems.push(Problem::new(
                "events.nats.subject_prefix",
                "must be dot-separated tokens of letters, digits, '_' or '-' (no wildcards)",
            ));
        }
        if !(10..=86_400).contains(&self.duplicate_window_secs) {
            problems.push(Problem::new(
                "events.nats.duplicate_window_secs",
                "must be between 10 and 86400 seconds",
            ));
        }
        if !(100..=60_000).contains(&self.timeout_ms) {
            problems.push(Problem::new(
                "events.nats.timeout_ms",
                "must be between 100 and 60000 milliseconds",
            ));
        }
    }
}

impl Default for EventsSettings {
    fn default() -> Self {
        Self {
            retention_days: 7,
            expiring_soon_hours: 72,
            scheduler_interval_ms: 60_000,
            nats: NatsSettings::default(),
            webhooks: WebhookSettings::default(),
        }
    }
}

impl EventsSettings {
    pub fn retention(&self) -> Duration {
        Duration::from_secs(u64::from(self.retention_days) * 86_400)
    }

    pub fn expiring_soon(&self) -> Duration {
        Duration::from_secs(u64::from(self.expiring_soon_hours) * 3_600)
    }

    pub fn scheduler_every(&self) -> Duration {
        Duration::from_millis(self.scheduler_interval_ms)
    }

    /// The problems of `events.*`.
    pub(super) fn validate(&self, problems: &mut Vec<Problem>) {
        if !(1..=365).contains(&self.retention_days) {
            problems.push(Problem::new(
                "events.retention_days",
                "must be between 1 and 365 (days the feed keeps an event)",
            ));
        }
        if !(1..=8_760).contains(&self.expiring_soon_hours) {
            problems.push(Problem::new(
                "events.expiring_soon_hours",
                "must be between 1 and 8760 (hours before the stop date)",
            ));
        }
        if !(100..=3_600_000).contains(&self.scheduler_interval_ms) {
            problems.push(Problem::new(
                "events.scheduler_interval_ms",
                "must be between 100 and 3600000 milliseconds",
            ));
        }
        self.nats.validate(problems);
        self.webhooks.validate(problems);
    }
}
