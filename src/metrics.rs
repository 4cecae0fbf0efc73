//! `GET /metrics`: Prometheus text exposition, on the management listener only (or the one
//! listener that serves both APIs), without authentication. docs/operations.md ("Metrics")
//! lists every series.
//!
//! Request series are recorded by a middleware on every listener, labelled with the matched
//! route pattern (never the raw path: ids would make one series each). The pool, the road to
//! the blocking pool and the Irdeto outbox are read when scraped: the pool from the store's
//! counters, the outbox with one store call (one statement, three counts) when Irdeto is enabled,
//! the events' backlog and head with one more.
//!
//! Each [`Application`](crate::Application) has a registry of its own (the `prometheus`
//! crate, no global recorder), so that several in one process, as in the tests, do not mix.

use std::sync::Arc;
use std::time::Instant;

use actix_web::body::MessageBody;
use actix_web::dev::{ServiceRequest, ServiceResponse};
use actix_web::http::Method;
use actix_web::middleware::Next;
use actix_web::{HttpResponse, web};
use licenses_app::SystemClock;
use licenses_app::events::EventStore;
use licenses_app::ports::{
    Clock, DeliveryError, EntitlementGateway, EntitlementJobs, NewEntitlementJob,
};
use licenses_app::webhooks::WebhookStore;
use licenses_domain::LicenseId;
use licenses_store::Store;
use prometheus::{
    Encoder, GaugeVec, HistogramOpts, HistogramVec, IntCounterVec, IntGauge, IntGaugeVec, Opts,
    Registry, TextEncoder,
};

/// The route label of a request no route matched.
pub const UNMATCHED: &str = "unmatched";

/// Latency buckets, in seconds: from a cached catalogue read to a 10,000-license batch.
const LATENCY_BUCKETS: &[f64] = &[
    0.001, 0.0025, 0.005, 0.01, 0.025, 0.05, 0.1, 0.25, 0.5, 1.0, 2.5, 5.0, 10.0, 30.0,
];

/// The service's metrics and what the scrape reads. Shared by every listener and worker.
pub struct Metrics {
    registry: Registry,
    requests: IntCounterVec,
    latency: HistogramVec,
    pool_connections: IntGaugeVec,
    pool_max: IntGauge,
    pool_waiting: IntGauge,
    store_calls: IntGaugeVec,
    outbox_jobs: IntGaugeVec,
    irdeto_calls: IntCounterVec,
    events_unsequenced: IntGauge,
    events_head: IntGauge,
    events_nats: IntGauge,
    webhook_deliveries: IntGaugeVec,
    store_reads: IntCounterVec,
    replica_up: IntGaugeVec,
    replica_lag: GaugeVec,
    store: Store,
    outbox: bool,
    nats: bool,
}

impl std::fmt::Debug for Metrics {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("Metrics")
            .field("outbox", &self.outbox)
            .finish_non_exhaustive()
    }
}

impl Metrics {
    /// The metrics of a service over `store`; `outbox` when Irdeto is enabled (else the
    /// outbox series are not exported), `nats` when events are published to NATS.
    pub fn new(store: Store, outbox: bool, nats: bool) -> Result<Self, prometheus::Error> {
        let registry = Registry::new();
        let requests = IntCounterVec::new(
            Opts::new(
                "licenses_http_requests_total",
                "HTTP requests answered, by method, matched route pattern and status",
            ),
            &["method", "route", "status"],
        )?;
        let latency = HistogramVec::new(
            HistogramOpts::new(
                "licenses_http_request_duration_seconds",
                "Time from a request's arrival to its answer, by method and route pattern",
            )
            .buckets(LATENCY_BUCKETS.to_vec()),
            &["method", "route"],
        )?;
        let pool_connections = IntGaugeVec::new(
            Opts::new(
                "licenses_db_pool_connections",
                "Database connections open, by state (idle, in_use)",
            ),
            &["state"],
        )?;
        let pool_max = IntGauge::new(
            "licenses_db_pool_max_connections",
            "Connections the pool may open (database.pool_size)",
        )?;
        let pool_waiting = IntGauge::new(
            "licenses_db_pool_waiting",
            "Store calls on the blocking pool waiting for a database connection",
        )?;
        let store_calls = IntGaugeVec::new(
            Opts::new(
                "licenses_store_calls",
                "Store calls by state: running (on the blocking pool, at most \
                 database.pool_size) or queued (waiting for their turn, at most \
                 database.checkout_timeout_ms)",
            ),
            &["state"],
        )?;
        let outbox_jobs = IntGaugeVec::new(
            Opts::new(
                "licenses_irdeto_outbox_jobs",
                "Irdeto entitlement jobs by state: due, retrying (waiting for a later try), \
                 failed (given up on; see GET /irdeto/backlog)",
            ),
            &["state"],
        )?;
        let irdeto_calls = IntCounterVec::new(
            Opts::new(
                "licenses_irdeto_calls_total",
                "Calls to Irdeto by call (grant, revoke) and outcome (ok, transient: retried \
                 later, permanent: refused for good)",
            ),
            &["call", "outcome"],
        )?;
        let events_unsequenced = IntGauge::new(
            "licenses_events_unsequenced",
            "License and product events committed and not yet given a feed position (the \
             sequencer's backlog; stays near 0 while every instance's sequencer runs)",
        )?;
        let events_head = IntGauge::new(
            "licenses_events_head_position",
            "The position of the newest event of the feed (GET /events); a consumer's lag is \
             this minus its cursor",
        )?;
        let events_nats = IntGauge::new(
            "licenses_events_nats_position",
            "The position up to which every event was acknowledged by NATS JetStream; the \
             publisher's backlog is licenses_events_head_position minus this",
        )?;
        let webhook_deliveries = IntGaugeVec::new(
            Opts::new(
                "licenses_webhook_deliveries",
                "Webhook deliveries by state: pending (queued or retrying) and failed (given \
                 up, replayable)",
            ),
            &["state"],
        )?;
        let store_reads = IntCounterVec::new(
            Opts::new(
                "licenses_store_reads_total",
                "Store reads by where they were served: primary (database.url) or replica \
                 (database.replicas)",
            ),
            &["target"],
        )?;
        let replica_up = IntGaugeVec::new(
            Opts::new(
                "licenses_db_replica_up",
                "1 while a replica is read from (it answers, is a standby and lags at most \
                 database.replica_max_lag_ms), else 0; by its place in database.replicas \
                 (1, 2, …)",
            ),
            &["replica"],
        )?;
        let replica_lag = GaugeVec::new(
            Opts::new(
                "licenses_db_replica_lag_seconds",
                "How far behind the primary a replica was at its last probe",
            ),
            &["replica"],
        )?;
        if store.has_replicas() {
            registry.register(Box::new(store_reads.clone()))?;
            registry.register(Box::new(replica_up.clone()))?;
            registry.register(Box::new(replica_lag.clone()))?;
        }
        registry.register(Box::new(webhook_deliveries.clone()))?;
        registry.register(Box::new(requests.clone()))?;
        registry.register(Box::new(events_unsequenced.clone()))?;
        if nats {
            registry.register(Box::new(events_nats.clone()))?;
        }
        registry.register(Box::new(events_head.clone()))?;
        registry.register(Box::new(latency.clone()))?;
        registry.register(Box::new(pool_connections.clone()))?;
        registry.register(Box::new(pool_max.clone()))?;
        registry.register(Box::new(pool_waiting.clone()))?;
        registry.register(Box::new(store_calls.clone()))?;
        if outbox {
            registry.register(Box::new(outbox_jobs.clone()))?;
            registry.register(Box::new(irdeto_calls.clone()))?;
        }
        Ok(Self {
            registry,
            requests,
            latency,
            pool_connections,
            pool_max,
            pool_waiting,
            store_calls,
            outbox_jobs,
            irdeto_calls,
            events_unsequenced,
            events_head,
            events_nats,
            webhook_deliveries,
            store_reads,
            replica_up,
            replica_lag,
            store,
            outbox,
            nats,
        })
    }

    /// Counts one answered request.
    fn observe(&self, method: &Method, route: &str, status: u16, seconds: f64) {
        let method = method_label(method);
        self.requests
            .with_label_values(&[method, route, &status.to_string()])
            .inc();
        self.latency
            .with_label_values(&[method, route])
            .observe(seconds);
    }

    /// Reads the gauges: the store's counters, and the outbox (one store call, bounded by
    /// `database.checkout_timeout_ms`; on failure the last values stay).
    async fn refresh(&self) {
        let pool = self.store.pool_state();
        let gauge = |n: u32| i64::from(n);
        let count = |n: usize| i64::try_from(n).unwrap_or(i64::MAX);
        self.pool_max.set(gauge(pool.max_connections));
        self.pool_connections
            .with_label_values(&["idle"])
            .set(gauge(pool.idle));
        self.pool_connections
            .with_label_values(&["in_use"])
            .set(gauge(pool.in_use()));
        let in_use = usize::try_from(pool.in_use()).unwrap_or(usize::MAX);
        self.pool_waiting
            .set(count(pool.calls_running.saturating_sub(in_use)));
        self.store_calls
            .with_label_values(&["running"])
            .set(count(pool.calls_running));
        self.store_calls
            .with_label_values(&["queued"])
            .set(count(pool.calls_waiting));
        if self.store.has_replicas() {
            let reads = self.store.read_counts();
            for (target, n) in [("primary", reads.primary), ("replica", reads.replica)] {
                let counter = self.store_reads.with_label_values(&[target]);
                counter.inc_by(n.saturating_sub(counter.get()));
            }
            for (i, replica) in self.store.replica_states().iter().enumerate() {
                let label = (i + 1).to_string();
                self.replica_up
                    .with_label_values(&[&label])
                    .set(i64::from(replica.up));
                if let Some(lag) = replica.lag {
                    self.replica_lag
                        .with_label_values(&[&label])
                        .set(lag.as_secs_f64());
                }
            }
        }
        match EventStore::event_backlog(&self.store).await {
            Ok(backlog) => {
                self.events_unsequenced
                    .set(i64::try_from(backlog.unsequenced).unwrap_or(i64::MAX));
                self.events_head.set(backlog.last_position);
            }
            Err(error) => tracing::warn!(%error, "metrics: cannot count the events"),
        }
        match WebhookStore::webhook_backlog(&self.store).await {
            Ok(backlog) => {
                for (state, n) in [("pending", backlog.pending), ("failed", backlog.failed)] {
                    self.webhook_deliveries
                        .with_label_values(&[state])
                        .set(i64::try_from(n).unwrap_or(i64::MAX));
                }
            }
            Err(error) => tracing::warn!(%error, "metrics: cannot count the webhook deliveries"),
        }
        if self.nats {
            match EventStore::mark(&self.store, crate::nats_publisher::MARK).await {
                Ok(position) => self.events_nats.set(position),
                Err(error) => tracing::warn!(%error, "metrics: cannot read the NATS mark"),
            }
        }
        if self.outbox {
            match EntitlementJobs::backlog(&self.store, SystemClock.now()).await {
                Ok(backlog) => {
                    for (state, n) in [
                        ("due", backlog.due),
                        ("retrying", backlog.retrying),
                        ("failed", backlog.failed),
                    ] {
                        self.outbox_jobs
                            .with_label_values(&[state])
                            .set(i64::try_from(n).unwrap_or(i64::MAX));
                    }
                }
                Err(error) => tracing::warn!(%error, "metrics: cannot count the outbox"),
            }
        }
    }

    /// The text exposition of every series.
    fn render(&self) -> Vec<u8> {
        let mut out = Vec::new();
        if let Err(error) = TextEncoder::new().encode(&self.registry.gather(), &mut out) {
            tracing::error!(%error, "metrics: cannot encode");
        }
        out
    }
}

/// The method label: the standard methods by name, anything else as `other`, so that a
/// client cannot make new series.
fn method_label(method: &Method) -> &'static str {
    match *method {
        Method::GET => "GET",
        Method::POST => "POST",
        Method::PUT => "PUT",
        Method::PATCH => "PATCH",
        Method::DELETE => "DELETE",
        Method::HEAD => "HEAD",
        Method::OPTIONS => "OPTIONS",
        _ => "other",
    }
}

/// Mounts `GET /metrics`.
pub(crate) fn routes(cfg: &mut web::ServiceConfig) {
    cfg.route("/metrics", web::get().to(scrape));
}

async fn scrape(metrics: web::Data<Metrics>) -> HttpResponse {
    metrics.refresh().await;
    HttpResponse::Ok()
        .content_type(prometheus::TEXT_FORMAT)
        .body(metrics.render())
}

/// Middleware: counts every answer, by the route pattern that matched.
pub(crate) async fn record(
    req: ServiceRequest,
    next: Next<impl MessageBody + 'static>,
) -> Result<ServiceResponse<impl MessageBody>, actix_web::Error> {
    let started = Instant::now();
    let metrics = req.app_data::<web::Data<Metrics>>().cloned();
    let method = req.method().clone();
    let response = next.call(req).await?;
    if let Some(metrics) = metrics {
        let route = response.request().match_pattern();
        metrics.observe(
            &method,
            route.as_deref().unwrap_or(UNMATCHED),
            response.status().as_u16(),
            started.elapsed().as_secs_f64(),
        );
    }
    Ok(response)
}

/// The Irdeto gateway, counting each call's outcome in `licenses_irdeto_calls_total`.
pub struct MeteredGateway {
    inner: Arc<dyn EntitlementGateway>,
    metrics: Arc<Metrics>,
}

impl std::fmt::Debug for MeteredGateway {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("MeteredGateway").finish_non_exhaustive()
    }
}

impl MeteredGateway {
    pub fn new(inner: Arc<dyn EntitlementGateway>, metrics: Arc<Metrics>) -> Self {
        Self { inner, metrics }
    }

    fn count(&self, call: &str, result: &Result<(), DeliveryError>) {
        let outcome = match result {
            Ok(()) => "ok",
            Err(DeliveryError::Transient { .. }) => "transient",
            Err(DeliveryError::Permanent { .. }) => "permanent",
        };
        self.metrics
            .irdeto_calls
            .with_label_values(&[call, outcome])
            .inc();
    }
}

#[async_trait::async_trait]
impl EntitlementGateway for MeteredGateway {
    async fn grant(&self, job: &NewEntitlementJob) -> Result<(), DeliveryError> {
        let result = self.inner.grant(job).await;
        self.count("grant", &result);
        result
    }

    async fn revoke(&self, license: &LicenseId) -> Result<(), DeliveryError> {
        let result = self.inner.revoke(license).await;
        self.count("revoke", &result);
        result
    }
}
