//! `[events]`: the license and product events (docs/events.md): how long the feed keeps them,
//! the lead time of `license.expiring_soon`, how often expiry is scheduled; and
//! `[events.nats]`, the NATS JetStream publisher (off unless `url` is set).

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
    }
}
