//! License and product events (docs/events.md): what the rest of the platform learns of every
//! change, without calling back.
//!
//! The store writes each event in the transaction of the change that makes it (so an event
//! exists exactly when its change committed), then a sequencer gives the committed events
//! their `position` in commit order and each user's next `user_seq`. Readers — the feed, the
//! NATS and webhook publishers — see only sequenced events, in position order: a cursor never
//! passes an event that commits later. Expiry events are written by a scheduler in the
//! workers, at most one of each kind per license whatever the number of instances.

use std::sync::Arc;
use std::time::Duration;

use async_trait::async_trait;
use licenses_domain::{License, Product, Timestamp, UserId};

use crate::App;
use crate::error::AppError;
use crate::ports::StoreError;

/// Largest page of the feed.
pub const MAX_EVENT_PAGE: u32 = 1_000;

/// What happened.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, PartialOrd, Ord)]
pub enum EventType {
    /// A license was created (granted, bought, imported; or the copy of a suspension or a
    /// reinstatement by the support staff, which replaces the old license by a new id).
    LicenseCreated,
    /// A license was deleted (revoked; or replaced by a suspension or a reinstatement).
    LicenseDeleted,
    /// A PROCESSING license became ACTIVE: its Irdeto entitlement was delivered.
    LicenseActivated,
    /// A PROCESSING license became ORDER_ERROR: Irdeto refused its entitlement.
    LicenseOrderError,
    /// A PROCESSING license took its requested status other than ACTIVE (SUSPENDED) once its
    /// entitlement was delivered.
    LicenseUpdated,
    /// A license reached its stop date (its status reads EXPIRED from then on).
    LicenseExpired,
    /// A license reaches its stop date within the configured lead time.
    LicenseExpiringSoon,
    ProductCreated,
    ProductUpdated,
    ProductDeleted,
}

impl EventType {
    pub const ALL: [EventType; 10] = [
        Self::LicenseCreated,
        Self::LicenseDeleted,
        Self::LicenseActivated,
        Self::LicenseOrderError,
        Self::LicenseUpdated,
        Self::LicenseExpired,
        Self::LicenseExpiringSoon,
        Self::ProductCreated,
        Self::ProductUpdated,
        Self::ProductDeleted,
    ];

    /// The name consumers see (`type` of the event, last token of its NATS subject).
    pub fn as_str(self) -> &'static str {
        match self {
            Self::LicenseCreated => "license.created",
            Self::LicenseDeleted => "license.deleted",
            Self::LicenseActivated => "license.activated",
            Self::LicenseOrderError => "license.order_error",
            Self::LicenseUpdated => "license.updated",
            Self::LicenseExpired => "license.expired",
            Self::LicenseExpiringSoon => "license.expiring_soon",
            Self::ProductCreated => "product.created",
            Self::ProductUpdated => "product.updated",
            Self::ProductDeleted => "product.deleted",
        }
    }

    /// The type of a name; `None` for a name that is not one of ours.
    pub fn parse(name: &str) -> Option<Self> {
        Self::ALL.into_iter().find(|t| t.as_str() == name)
    }

    /// Whether it is about a license (and so about a user).
    pub fn is_license(self) -> bool {
        !matches!(
            self,
            Self::ProductCreated | Self::ProductUpdated | Self::ProductDeleted
        )
    }
}

impl std::fmt::Display for EventType {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.write_str(self.as_str())
    }
}

/// The resource an event is about, as it was when the event happened (for a deletion: as it
/// was deleted).
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum EventSubject {
    License(License),
    Product(Product),
}

/// A sequenced event.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Event {
    /// Stable and unique (a UUID): what consumers dedupe by.
    pub id: String,
    /// The commit order: strictly increasing along the feed.
    pub position: i64,
    /// The user's own sequence: 1, 2, 3… along that user's events, kept when old events are
    /// pruned. `None` for product events.
    pub user_seq: Option<i64>,
    pub kind: EventType,
    pub occurred_at: Timestamp,
    pub subject: EventSubject,
}

impl Event {
    /// The user of a license event.
    pub fn user(&self) -> Option<&UserId> {
        match &self.subject {
            EventSubject::License(l) => Some(l.user()),
            EventSubject::Product(_) => None,
        }
    }
}

/// Which events to read.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct EventQuery {
    /// Only events after this position (a previous page's cursor).
    pub after: Option<i64>,
    pub user: Option<UserId>,
    /// Any of these types; empty: all.
    pub types: Vec<EventType>,
    /// At most this many.
    pub limit: u32,
}

/// A page of the feed.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct EventPage {
    /// In position order.
    pub events: Vec<Event>,
    /// The cursor to read on from: the last position of this page, or the query's own cursor
    /// when the page is empty (no event yet: ask again later with it).
    pub next: Option<i64>,
}

/// Why a page cannot be read.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
pub enum FeedError {
    /// The cursor points before events already pruned: the consumer missed events and must
    /// start over (from an empty cursor, after rebuilding its state).
    #[error("the cursor {after} is older than the events kept (pruned through {pruned_through})")]
    CursorExpired { after: i64, pruned_through: i64 },
    #[error(transparent)]
    Store(#[from] StoreError),
}

/// What the sequencer did in one call.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Default)]
pub struct Sequenced {
    pub events: u32,
    /// Whether another instance holds the sequencer (nothing was done here).
    pub busy: bool,
}

/// The events outbox.
///
/// Errors: [`StoreError::Unavailable`] and [`StoreError::Internal`] from every method.
#[cfg_attr(feature = "mock", mockall::automock)]
#[async_trait]
pub trait EventStore: Send + Sync {
    /// Gives positions (and users' sequence numbers) to up to `limit` committed events that
    /// have none, in the order they were written. One sequencer at a time across instances:
    /// another one's call answers `busy` at once.
    async fn sequence(&self, limit: u32) -> Result<Sequenced, StoreError>;

    /// The sequenced events of `query`, in position order.
    /// [`FeedError::CursorExpired`] when `query.after` is older than what is kept.
    async fn page(&self, query: &EventQuery) -> Result<EventPage, FeedError>;

    /// Deletes the sequenced events that occurred before `before`; how many.
    async fn prune_events(&self, before: Timestamp) -> Result<u64, StoreError>;

    /// Writes `license.expired` for the licenses whose stop date has passed at `now`, and
    /// `license.expiring_soon` for those whose stop date falls before `now + lead`, at most
    /// `limit` of each, once per license and kind whatever the number of callers. Licenses
    /// whose stop date had passed before the first call get no event. How many were written.
    async fn schedule_expiry(
        &self,
        now: Timestamp,
        lead: Duration,
        limit: u32,
    ) -> Result<u64, StoreError>;

    /// The position a publisher (`nats`, `webhooks`) has handled everything up to; 0 when it
    /// never ran.
    async fn mark(&self, name: &str) -> Result<i64, StoreError>;

    /// Moves a publisher's mark forward to `position` (never back).
    async fn advance(&self, name: &str, position: i64) -> Result<(), StoreError>;

    /// Events written and not sequenced yet, and the position of the last sequenced one.
    async fn event_backlog(&self) -> Result<EventBacklog, StoreError>;
}

/// How far the outbox got.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Default)]
pub struct EventBacklog {
    pub unsequenced: u64,
    pub last_position: i64,
}

/// The events outbox, for the use cases: its port, and how to wake the sequencer of this
/// instance after a write (workers poll too, so a lost wake-up only delays an event).
#[derive(Clone)]
pub struct Events {
    pub store: Arc<dyn EventStore>,
    pub wake: Arc<dyn Fn() + Send + Sync>,
}

impl std::fmt::Debug for Events {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.write_str("Events")
    }
}

impl App {
    /// The use cases with the events outbox read by the feed ([`App::event_page`]) and woken
    /// after every write.
    pub fn with_events(mut self, events: Events) -> Self {
        self.events = Some(events);
        self
    }

    /// Wakes the sequencer after a write (every license and product write makes events).
    pub(crate) fn events_written(&self) {
        if let Some(events) = &self.events {
            (events.wake)();
        }
    }

    /// A page of the feed. Without an events outbox ([`App::with_events`]) the feed is empty.
    pub async fn event_page(&self, query: &EventQuery) -> Result<EventPage, EventPageError> {
        let Some(events) = &self.events else {
            return Ok(EventPage {
                events: Vec::new(),
                next: query.after,
            });
        };
        let query = EventQuery {
            limit: query.limit.clamp(1, MAX_EVENT_PAGE),
            ..query.clone()
        };
        events.store.page(&query).await.map_err(|e| match e {
            FeedError::CursorExpired {
                after,
                pruned_through,
            } => EventPageError::CursorExpired {
                after,
                pruned_through,
            },
            FeedError::Store(e) => EventPageError::App(e.into()),
        })
    }
}

/// Why [`App::event_page`] has no page.
#[derive(Debug, thiserror::Error)]
pub enum EventPageError {
    /// See [`FeedError::CursorExpired`]; answered 410.
    #[error("the cursor {after} is older than the events kept (pruned through {pruned_through})")]
    CursorExpired { after: i64, pruned_through: i64 },
    #[error(transparent)]
    App(#[from] AppError),
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn every_type_parses_back_from_its_name() {
        for t in EventType::ALL {
            assert_eq!(EventType::parse(t.as_str()), Some(t));
        }
        assert_eq!(EventType::parse("license.renamed"), None);
        assert!(EventType::LicenseExpired.is_license());
        assert!(!EventType::ProductDeleted.is_license());
    }
}
