//! `[events]`: the license and product events (docs/events.md): how long the feed keeps them,
//! the lead time of `license.expiring_soon`, how often expiry is scheduled.

use std::time::Duration;

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
}

impl Default for EventsSettings {
    fn default() -> Self {
        Self {
            retention_days: 7,
            expiring_soon_hours: 72,
            scheduler_interval_ms: 60_000,
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
    }
}
