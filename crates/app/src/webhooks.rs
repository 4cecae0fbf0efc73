//! Webhooks (docs/events.md, "Webhooks"): endpoints registered through the management API
//! receive the events their filter takes, signed as Standard Webhooks has it.
//!
//! The store queues one delivery per event and endpoint (the fan-out, from the `webhooks`
//! mark, in the transaction that moves it), and the workers of any instance claim due
//! deliveries with a lease, send them, and record each attempt: its status and answer, the
//! next attempt on the retry schedule, or the end (delivered, or failed once the schedule is
//! spent). A user's deliveries to one endpoint are made in order: a later one waits while an
//! earlier one is pending. The sending itself (HTTP, signatures, the schedule) is the
//! service's worker's, over [`WebhookStore`].

use async_trait::async_trait;
use licenses_domain::Timestamp;
use licenses_webhooks::{EndpointError, WebhookSecret, check_public_host, validate_endpoint};

use crate::App;
use crate::error::{AppError, Problem};
use crate::events::{Event, EventType};
use crate::ports::StoreError;

/// The longest description kept.
pub const MAX_DESCRIPTION_LEN: usize = 1024;
/// Endpoints one service holds: each costs a delivery per event, so a runaway script
/// registering endpoints is stopped early.
pub const MAX_ENDPOINTS: usize = 100;
/// Largest page of deliveries.
pub const MAX_DELIVERY_PAGE: u32 = 1_000;

/// Why an endpoint no longer receives deliveries.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum DisabledReason {
    /// A PATCH with `enabled: false`.
    Manual,
    /// The receiver answered 410 Gone.
    Gone,
    /// Every attempt failed for `webhooks.disable_after_days`.
    Failing,
}

impl DisabledReason {
    pub fn as_str(self) -> &'static str {
        match self {
            Self::Manual => "manual",
            Self::Gone => "gone",
            Self::Failing => "failing",
        }
    }

    pub fn parse(s: &str) -> Option<Self> {
        [Self::Manual, Self::Gone, Self::Failing]
            .into_iter()
            .find(|r| r.as_str() == s)
    }
}

/// A registered endpoint (its secret is not part of it: shown once, when created).
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct WebhookEndpoint {
    pub id: String,
    pub url: String,
    /// The types delivered; empty: every type.
    pub event_types: Vec<EventType>,
    pub description: String,
    /// When and why it was disabled; `None` while enabled.
    pub disabled: Option<(i64, DisabledReason)>,
    /// The first failed attempt since the last delivered one (unix ms).
    pub failing_since_ms: Option<i64>,
    pub created_at: Timestamp,
    pub updated_at: Timestamp,
}

impl WebhookEndpoint {
    pub fn takes(&self, kind: EventType) -> bool {
        self.event_types.is_empty() || self.event_types.contains(&kind)
    }
}

/// An endpoint to store: checked, with its new secret (which `Debug` leaves out).
#[derive(Clone, PartialEq, Eq)]
pub struct NewWebhook {
    pub id: String,
    pub url: String,
    pub secret: String,
    pub event_types: Vec<EventType>,
    pub description: String,
    pub at: Timestamp,
}

impl std::fmt::Debug for NewWebhook {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("NewWebhook")
            .field("id", &self.id)
            .field("url", &self.url)
            .field("event_types", &self.event_types)
            .finish_non_exhaustive()
    }
}

/// A webhook as the management API reads it from a request: what is there, unchecked.
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub struct WebhookDraft {
    pub url: Option<String>,
    pub event_types: Option<Vec<String>>,
    pub description: Option<String>,
    pub enabled: Option<bool>,
}

/// A checked change of an endpoint; `None`: unchanged.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct WebhookChange {
    pub url: Option<String>,
    pub event_types: Option<Vec<EventType>>,
    pub description: Option<String>,
    pub enabled: Option<bool>,
    pub at: Timestamp,
    /// `at`, in unix ms (when disabled by this change).
    pub at_ms: i64,
}

/// Where a delivery is.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum DeliveryState {
    /// Not delivered yet: due at `next_attempt_ms`.
    Pending,
    Delivered,
    /// Given up (the schedule spent, or the receiver answered 410); replayable.
    Failed,
}

impl DeliveryState {
    pub fn as_str(self) -> &'static str {
        match self {
            Self::Pending => "pending",
            Self::Delivered => "delivered",
            Self::Failed => "failed",
        }
    }

    pub fn parse(s: &str) -> Option<Self> {
        [Self::Pending, Self::Delivered, Self::Failed]
            .into_iter()
            .find(|r| r.as_str() == s)
    }
}

/// One event's delivery to one endpoint, with its last attempt.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct WebhookDelivery {
    pub id: i64,
    pub endpoint_id: String,
    pub position: i64,
    pub event_id: String,
    pub event_type: EventType,
    pub state: DeliveryState,
    pub attempts: u32,
    pub next_attempt_ms: i64,
    pub last_attempt_ms: Option<i64>,
    pub last_status: Option<u16>,
    /// The receiver's answer (or the transport error), cut to a kilobyte.
    pub last_answer: Option<String>,
}

/// Which deliveries of an endpoint to list: by state, after a delivery id, newest last.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct DeliveryQuery {
    pub endpoint_id: String,
    pub state: Option<DeliveryState>,
    pub after: Option<i64>,
    pub limit: u32,
}

/// A delivery a worker claimed, with what it needs to send it (`Debug` leaves out the
/// secret).
#[derive(Clone, PartialEq, Eq)]
pub struct DueDelivery {
    pub delivery: WebhookDelivery,
    /// Proves the claim when the attempt is recorded.
    pub lease_token: String,
    pub url: String,
    pub secret: String,
    /// `None` when the event was pruned before it could be delivered.
    pub event: Option<Event>,
}

impl std::fmt::Debug for DueDelivery {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("DueDelivery")
            .field("delivery", &self.delivery)
            .field("url", &self.url)
            .finish_non_exhaustive()
    }
}

/// What an attempt decided.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum AttemptResult {
    Delivered,
    /// Failed; tried again at this time (unix ms).
    RetryAt(i64),
    /// Failed, and the schedule is spent (or the event is gone): the delivery fails.
    GiveUp,
    /// The receiver answered 410: the delivery fails and the endpoint is disabled.
    Gone,
}

/// One attempt, to record.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct AttemptRecord {
    pub delivery_id: i64,
    pub lease_token: String,
    pub at_ms: i64,
    pub status: Option<u16>,
    pub answer: String,
    pub result: AttemptResult,
    /// An endpoint failing since before this (unix ms) is disabled (`failing`).
    pub disable_failing_since_before_ms: i64,
}

/// What one fan-out call did.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Default)]
pub struct FanOut {
    /// Events read past the mark.
    pub events: u32,
    /// Deliveries queued.
    pub deliveries: u64,
    /// Another instance was fanning out (nothing was done here).
    pub busy: bool,
    /// `(mark, pruned)`: the events after the mark up to `pruned` were pruned before they
    /// were fanned out (the fan-out was behind longer than the retention): never delivered.
    pub skipped: Option<(i64, i64)>,
}

/// Endpoints and deliveries.
///
/// Errors: [`StoreError::Unavailable`] and [`StoreError::Internal`] from every method.
#[cfg_attr(feature = "mock", mockall::automock)]
#[async_trait]
pub trait WebhookStore: Send + Sync {
    /// Stores a new endpoint, to receive the events sequenced from now on.
    async fn create_endpoint(&self, new: &NewWebhook) -> Result<WebhookEndpoint, StoreError>;

    async fn endpoint(&self, id: &str) -> Result<Option<WebhookEndpoint>, StoreError>;

    /// Every endpoint, oldest first.
    async fn endpoints(&self) -> Result<Vec<WebhookEndpoint>, StoreError>;

    /// Applies `change`; `None` when there is no such endpoint. Enabling a disabled endpoint
    /// clears its failures and delivers the events sequenced from then on (and the pending
    /// deliveries it had).
    async fn update_endpoint(
        &self,
        id: &str,
        change: &WebhookChange,
    ) -> Result<Option<WebhookEndpoint>, StoreError>;

    /// Deletes an endpoint and its deliveries; whether there was one.
    async fn delete_endpoint(&self, id: &str) -> Result<bool, StoreError>;

    async fn deliveries(&self, query: &DeliveryQuery) -> Result<Vec<WebhookDelivery>, StoreError>;

    /// Makes the failed deliveries of an endpoint (one, or all of them) pending again, due
    /// at `now_ms` with a fresh schedule; how many.
    async fn replay(
        &self,
        endpoint_id: &str,
        delivery_id: Option<i64>,
        now_ms: i64,
    ) -> Result<u64, StoreError>;

    /// Queues the deliveries of up to `limit` sequenced events past the `webhooks` mark, and
    /// moves the mark over them, in one transaction; one fan-out at a time across instances.
    async fn fan_out(&self, limit: u32, now_ms: i64) -> Result<FanOut, StoreError>;

    /// Claims up to `limit` due deliveries of enabled endpoints, each the oldest pending of
    /// its user for its endpoint, until `now_ms + lease_ms`.
    async fn claim(
        &self,
        now_ms: i64,
        lease_ms: i64,
        limit: u32,
    ) -> Result<Vec<DueDelivery>, StoreError>;

    /// Records attempts in one transaction, each if its claim is still the caller's; how
    /// many were.
    async fn record(&self, attempts: &[AttemptRecord]) -> Result<u64, StoreError>;

    /// Deletes delivered and failed deliveries whose last attempt was before `before_ms`.
    async fn prune_deliveries(&self, before_ms: i64) -> Result<u64, StoreError>;

    /// Pending deliveries, and failed ones.
    async fn webhook_backlog(&self) -> Result<WebhookBacklog, StoreError>;
}

/// How many deliveries wait, and how many failed.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Default)]
pub struct WebhookBacklog {
    pub pending: u64,
    pub failed: u64,
}

/// Where webhooks may go (`webhooks.allow_http`, `webhooks.allow_private_networks`).
#[derive(Debug, Clone, Copy, PartialEq, Eq, Default)]
pub struct WebhookPolicy {
    pub allow_http: bool,
    pub allow_private_networks: bool,
}

/// The webhooks of the use cases: the store and where endpoints may point.
#[derive(Clone)]
pub struct Webhooks {
    pub store: std::sync::Arc<dyn WebhookStore>,
    pub policy: WebhookPolicy,
}

impl std::fmt::Debug for Webhooks {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("Webhooks")
            .field("policy", &self.policy)
            .finish_non_exhaustive()
    }
}

const ATTRIBUTES: &str = "/data/attributes";

fn url_problem(e: &EndpointError) -> Problem {
    Problem::new(Some(format!("{ATTRIBUTES}/url")), e.code(), e.to_string())
}

impl WebhookPolicy {
    /// The endpoint URL, normalized, or why it is refused.
    pub fn check_url(&self, url: &str) -> Result<String, Problem> {
        let parsed = validate_endpoint(url, self.allow_http).map_err(|e| url_problem(&e))?;
        if !self.allow_private_networks {
            check_public_host(&parsed).map_err(|e| url_problem(&e))?;
        }
        Ok(parsed.into())
    }
}

/// The event types of a filter, each checked; duplicates dropped.
fn event_types(given: &[String], problems: &mut Vec<Problem>) -> Vec<EventType> {
    let mut types = Vec::new();
    for (i, name) in given.iter().enumerate() {
        match EventType::parse(name) {
            Some(t) if !types.contains(&t) => types.push(t),
            Some(_) => {}
            None => problems.push(Problem::new(
                Some(format!("{ATTRIBUTES}/event_types/{i}")),
                "unknown_event_type",
                format!(
                    "{name:?} is not an event type; known: {}",
                    EventType::ALL.map(EventType::as_str).join(", ")
                ),
            )),
        }
    }
    types.sort();
    types
}

fn description(given: &str, problems: &mut Vec<Problem>) -> String {
    if given.chars().count() > MAX_DESCRIPTION_LEN {
        problems.push(Problem::new(
            Some(format!("{ATTRIBUTES}/description")),
            "too_long",
            format!("a description holds at most {MAX_DESCRIPTION_LEN} characters"),
        ));
    }
    given.to_owned()
}

impl App {
    /// The use cases with webhooks ([`App::create_webhook`] and the rest).
    pub fn with_webhooks(mut self, webhooks: Webhooks) -> Self {
        self.webhooks = Some(webhooks);
        self
    }

    fn webhooks(&self) -> Result<&Webhooks, AppError> {
        self.webhooks
            .as_ref()
            .ok_or_else(|| AppError::Internal("webhooks are not wired".into()))
    }

    fn now_ms(&self) -> i64 {
        self.ports.clock.now().unix().saturating_mul(1000)
    }

    /// Registers an endpoint: its URL checked against the policy, its types known. Answers
    /// the endpoint and its new `whsec_` secret (stored, and never shown again).
    pub async fn create_webhook(
        &self,
        draft: WebhookDraft,
    ) -> Result<(WebhookEndpoint, String), AppError> {
        let webhooks = self.webhooks()?;
        let mut problems = Vec::new();
        let url = match &draft.url {
            None => {
                problems.push(Problem::new(
                    Some(format!("{ATTRIBUTES}/url")),
                    "required",
                    "a webhook needs the url of its receiver",
                ));
                String::new()
            }
            Some(url) => webhooks.policy.check_url(url).unwrap_or_else(|p| {
                problems.push(p);
                String::new()
            }),
        };
        let types = event_types(
            draft.event_types.as_deref().unwrap_or_default(),
            &mut problems,
        );
        let description = description(draft.description.as_deref().unwrap_or(""), &mut problems);
        if !problems.is_empty() {
            return Err(AppError::Invalid(problems));
        }
        if webhooks.store.endpoints().await?.len() >= MAX_ENDPOINTS {
            return Err(AppError::Conflict(vec![Problem::new(
                None,
                "too_many_webhooks",
                format!("at most {MAX_ENDPOINTS} endpoints; delete one first"),
            )]));
        }
        let secret = WebhookSecret::generate();
        let new = NewWebhook {
            id: uuid::Uuid::now_v7().to_string(),
            url,
            secret: secret.as_str().to_owned(),
            event_types: types,
            description,
            at: self.ports.clock.now(),
        };
        let mut endpoint = webhooks.store.create_endpoint(&new).await?;
        if draft.enabled == Some(false) {
            // Registered disabled: its deliveries wait for a PATCH `enabled: true`.
            let change = WebhookChange {
                url: None,
                event_types: None,
                description: None,
                enabled: Some(false),
                at: new.at,
                at_ms: self.now_ms(),
            };
            if let Some(disabled) = webhooks
                .store
                .update_endpoint(&endpoint.id, &change)
                .await?
            {
                endpoint = disabled;
            }
        }
        Ok((endpoint, new.secret))
    }

    pub async fn webhook(&self, id: &str) -> Result<WebhookEndpoint, AppError> {
        self.webhooks()?
            .store
            .endpoint(id)
            .await?
            .ok_or_else(|| AppError::not_found("webhook"))
    }

    pub async fn list_webhooks(&self) -> Result<Vec<WebhookEndpoint>, AppError> {
        Ok(self.webhooks()?.store.endpoints().await?)
    }

    /// Changes an endpoint: what the draft holds, checked as on creation.
    pub async fn update_webhook(
        &self,
        id: &str,
        draft: WebhookDraft,
    ) -> Result<WebhookEndpoint, AppError> {
        let webhooks = self.webhooks()?;
        let mut problems = Vec::new();
        let url = draft.url.as_deref().and_then(|u| {
            webhooks
                .policy
                .check_url(u)
                .map_err(|p| problems.push(p))
                .ok()
        });
        let event_types = draft
            .event_types
            .as_deref()
            .map(|t| event_types(t, &mut problems));
        let description = draft
            .description
            .as_deref()
            .map(|d| description(d, &mut problems));
        if !problems.is_empty() {
            return Err(AppError::Invalid(problems));
        }
        let change = WebhookChange {
            url,
            event_types,
            description,
            enabled: draft.enabled,
            at: self.ports.clock.now(),
            at_ms: self.now_ms(),
        };
        webhooks
            .store
            .update_endpoint(id, &change)
            .await?
            .ok_or_else(|| AppError::not_found("webhook"))
    }

    pub async fn delete_webhook(&self, id: &str) -> Result<(), AppError> {
        if self.webhooks()?.store.delete_endpoint(id).await? {
            Ok(())
        } else {
            Err(AppError::not_found("webhook"))
        }
    }

    /// A page of an endpoint's deliveries (404 for an unknown endpoint).
    pub async fn webhook_deliveries(
        &self,
        query: &DeliveryQuery,
    ) -> Result<Vec<WebhookDelivery>, AppError> {
        self.webhook(&query.endpoint_id).await?;
        let query = DeliveryQuery {
            limit: query.limit.clamp(1, MAX_DELIVERY_PAGE),
            ..query.clone()
        };
        Ok(self.webhooks()?.store.deliveries(&query).await?)
    }

    /// Replays one failed delivery (404 when the endpoint has no such delivery, 409 when it
    /// is not failed), or every failed one of the endpoint: how many.
    pub async fn replay_webhook(
        &self,
        endpoint_id: &str,
        delivery_id: Option<i64>,
    ) -> Result<u64, AppError> {
        let endpoint = self.webhook(endpoint_id).await?;
        let store = &self.webhooks()?.store;
        let replayed = store
            .replay(&endpoint.id, delivery_id, self.now_ms())
            .await?;
        let Some(delivery_id) = delivery_id else {
            return Ok(replayed);
        };
        if replayed == 0 {
            let query = DeliveryQuery {
                endpoint_id: endpoint.id,
                state: None,
                after: Some(delivery_id - 1),
                limit: 1,
            };
            return match store.deliveries(&query).await?.first() {
                Some(d) if d.id == delivery_id => Err(AppError::Conflict(vec![Problem::new(
                    None,
                    "not_failed",
                    format!(
                        "the delivery is {}: only failed ones are replayed",
                        d.state.as_str()
                    ),
                )])),
                _ => Err(AppError::not_found("delivery")),
            };
        }
        Ok(replayed)
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn policy(allow_http: bool, allow_private_networks: bool) -> WebhookPolicy {
        WebhookPolicy {
            allow_http,
            allow_private_networks,
        }
    }

    #[test]
    fn the_policy_takes_public_https_only_by_default() {
        let strict = WebhookPolicy::default();
        assert_eq!(
            strict.check_url("https://hooks.example.com/in"),
            Ok("https://hooks.example.com/in".into())
        );
        for (url, code) in [
            ("http://hooks.example.com/in", "endpoint_not_https"),
            ("https://127.0.0.1/in", "endpoint_private_address"),
            ("https://169.254.169.254/latest", "endpoint_private_address"),
            ("https://localhost:8443/in", "endpoint_private_address"),
            ("not a url", "endpoint_invalid"),
        ] {
            let p = strict.check_url(url).expect_err(url);
            assert_eq!(p.code, code, "{url}");
            assert_eq!(p.pointer.as_deref(), Some("/data/attributes/url"));
        }
        let dev = policy(true, true);
        assert!(dev.check_url("http://127.0.0.1:9000/in").is_ok());
        assert_eq!(
            policy(true, false)
                .check_url("http://10.0.0.1/in")
                .expect_err("private")
                .code,
            "endpoint_private_address"
        );
    }

    #[test]
    fn event_types_are_checked_each_at_its_pointer() {
        let mut problems = Vec::new();
        let types = event_types(
            &[
                "license.deleted".into(),
                "license.renamed".into(),
                "license.created".into(),
                "license.deleted".into(),
            ],
            &mut problems,
        );
        assert_eq!(
            types,
            [EventType::LicenseCreated, EventType::LicenseDeleted]
        );
        assert_eq!(problems.len(), 1);
        assert_eq!(
            problems[0].pointer.as_deref(),
            Some("/data/attributes/event_types/1")
        );
        assert_eq!(problems[0].code, "unknown_event_type");
    }

    #[test]
    fn an_empty_filter_takes_every_type() {
        let mut endpoint = WebhookEndpoint {
            id: "w".into(),
            url: "https://example.com".into(),
            event_types: vec![],
            description: String::new(),
            disabled: None,
            failing_since_ms: None,
            created_at: Timestamp::from_unix(0),
            updated_at: Timestamp::from_unix(0),
        };
        assert!(EventType::ALL.iter().all(|t| endpoint.takes(*t)));
        endpoint.event_types = vec![EventType::LicenseCreated];
        assert!(endpoint.takes(EventType::LicenseCreated));
        assert!(!endpoint.takes(EventType::ProductUpdated));
    }
}
