//! The store: a connection pool, the bounded road to the blocking pool, and the ports.

use std::sync::Arc;
use std::sync::atomic::{AtomicUsize, Ordering};
use std::time::{Duration, Instant};

use async_trait::async_trait;
use diesel::RunQueryDsl;
use licenses_app::events::{
    EventBacklog, EventPage, EventQuery, EventStore, EventType, FeedError, Sequenced,
};
use licenses_app::ports::{
    AuditEntry, Backlog, Change, EntitlementJob, EntitlementJobs, FailedJob, IdempotencyRecord,
    IdempotencyStore, JobKind, LicenseQuery, LicenseStore, NewEntitlementJob, OpenJob,
    ProductStore, StoreError, StoreHealth,
};
use licenses_app::webhooks::{
    AttemptRecord, DeliveryQuery, DueDelivery, FanOut, NewWebhook, WebhookBacklog, WebhookChange,
    WebhookDelivery, WebhookEndpoint, WebhookStore,
};
use licenses_domain::{
    License, LicenseId, LicenseStatus, OrderId, Product, ProductId, Timestamp, UserId,
};
use tokio::sync::Semaphore;

use crate::config::{Backend, OpenError, StoreConfig, Target};
use crate::connection::{AnyConnection, LogErrors, Manager, write_transaction};
use crate::error::Error;
use crate::gather::Gather;
use crate::migrate;
use crate::models::{Action, Resource};
use crate::repo::{
    audit, audit_replacement, events, idempotency, jobs, license_trail, licenses, products,
    queue_jobs, webhooks,
};

/// How long an SQLite writer waits for the lock, at least.
const MIN_BUSY_TIMEOUT: Duration = Duration::from_secs(5);

/// The storage adapter. Cheap to clone: clones share the pool.
///
/// Every call runs its diesel work on tokio's blocking pool, never on an async worker:
/// checking out the connection and the queries go together into one `spawn_blocking`. At most
/// `pool_size` calls do so at once (a semaphore), each waiting at most `checkout_timeout` for
/// its turn and its connection; past that the call answers [`StoreError::Unavailable`]
/// rather than queueing. A database that goes down answers `Unavailable` too, and the pool
/// replaces broken connections by itself when it is back: connections are not tested at
/// checkout (a round trip per call), so each pooled connection the outage broke fails one
/// call with `Unavailable` and is then dropped (see [`crate::connection::Pooled`]).
#[derive(Clone)]
pub struct Store {
    inner: Arc<Inner>,
}

struct Inner {
    pool: r2d2::Pool<Manager>,
    permits: Arc<Semaphore>,
    /// Calls waiting for a permit: the queue in front of the blocking pool.
    waiting: AtomicUsize,
    /// Users' first pages of licenses, waiting to be read together.
    gather: Gather,
    checkout_timeout: Duration,
    backend: Backend,
    shown: String,
}

impl std::fmt::Debug for Store {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("Store")
            .field("database", &self.inner.shown)
            .field("backend", &self.inner.backend)
            .field("pool_size", &self.inner.pool.max_size())
            .field("checkout_timeout", &self.inner.checkout_timeout)
            .finish()
    }
}

impl Store {
    /// Builds the pool and checks that one connection can be opened. SQLite: creates the
    /// file's directory, and the file. Synchronous: call it before serving.
    pub fn open(config: &StoreConfig) -> Result<Store, OpenError> {
        if config.pool_size == 0 {
            return Err(OpenError::InvalidConfig(
                "database.pool_size must be at least 1".into(),
            ));
        }
        if config.checkout_timeout.is_zero() {
            return Err(OpenError::InvalidConfig(
                "database.checkout_timeout_ms must be at least 1".into(),
            ));
        }
        let target = Target::parse(&config.url, config.checkout_timeout)?;
        let shown = target.shown();
        if let Target::Sqlite { path } = &target
            && let Some(dir) = path.parent().filter(|d| !d.as_os_str().is_empty())
        {
            std::fs::create_dir_all(dir).map_err(|e| {
                OpenError::Unreachable(format!("{shown}: cannot create {}: {e}", dir.display()))
            })?;
        }
        let backend = target.backend();
        let manager = Manager {
            target,
            busy_timeout: config.checkout_timeout.max(MIN_BUSY_TIMEOUT),
        };
        manager
            .open()
            .map_err(|e| OpenError::Unreachable(format!("{shown}: {e}")))?;
        let pool = r2d2::Pool::builder()
            .max_size(config.pool_size)
            .min_idle(Some(1))
            .connection_timeout(config.checkout_timeout)
            .test_on_check_out(false)
            .error_handler(Box::new(LogErrors))
            .build_unchecked(manager);
        let permits = usize::try_from(config.pool_size).unwrap_or(Semaphore::MAX_PERMITS);
        Ok(Store {
            inner: Arc::new(Inner {
                pool,
                permits: Arc::new(Semaphore::new(permits.min(Semaphore::MAX_PERMITS))),
                waiting: AtomicUsize::new(0),
                gather: Gather::default(),
                checkout_timeout: config.checkout_timeout,
                backend,
                shown,
            }),
        })
    }

    pub fn backend(&self) -> Backend {
        self.inner.backend
    }

    /// The pool and the road to the blocking pool, now: for the metrics. Reads counters only,
    /// never the database.
    pub fn pool_state(&self) -> PoolState {
        let pool = self.inner.pool.state();
        let max_calls = usize::try_from(self.inner.pool.max_size()).unwrap_or(usize::MAX);
        PoolState {
            max_connections: self.inner.pool.max_size(),
            connections: pool.connections,
            idle: pool.idle_connections,
            calls_running: max_calls.saturating_sub(self.inner.permits.available_permits()),
            calls_waiting: self.inner.waiting.load(Ordering::Relaxed),
        }
    }

    /// Applies the pending migrations and returns their names. On PostgreSQL it holds a
    /// session advisory lock meanwhile, so that two instances starting at once never both
    /// migrate; on SQLite, a `BEGIN IMMEDIATE` transaction.
    pub async fn migrate(&self) -> Result<Vec<String>, StoreError> {
        // Migrating may wait for another instance's migration: no checkout budget applies
        // to that wait, only to getting the connection.
        self.run(migrate::migrate).await
    }

    /// How many migrations are not applied yet.
    pub async fn pending_migrations(&self) -> Result<usize, StoreError> {
        self.run(migrate::pending).await
    }

    /// Runs `f` with a pooled connection on the blocking pool, under the same limits as the
    /// ports' methods. For work the ports do not cover (tests, maintenance commands).
    pub async fn with_connection<T, F>(&self, f: F) -> Result<T, StoreError>
    where
        F: FnOnce(&mut AnyConnection) -> T + Send + 'static,
        T: Send + 'static,
    {
        self.run(move |conn| Ok(f(conn))).await
    }

    /// The one road to the database: a permit (at most `pool_size` calls at once), then a
    /// connection and the work together on the blocking pool, all within `checkout_timeout`.
    async fn run<T, F>(&self, f: F) -> Result<T, StoreError>
    where
        F: FnOnce(&mut AnyConnection) -> Result<T, Error> + Send + 'static,
        T: Send + 'static,
    {
        let started = Instant::now();
        let budget = self.inner.checkout_timeout;
        let busy = || {
            StoreError::Unavailable(format!(
                "no database connection free within {} ms",
                budget.as_millis()
            ))
        };
        let permit = {
            let _waiting = Waiting::new(&self.inner.waiting);
            tokio::time::timeout(budget, Arc::clone(&self.inner.permits).acquire_owned())
                .await
                .map_err(|_| busy())?
                .map_err(|_| StoreError::Internal("the store is closed".into()))?
        };
        let remaining = budget
            .saturating_sub(started.elapsed())
            .max(Duration::from_millis(1));
        let pool = self.inner.pool.clone();
        let task = tokio::task::spawn_blocking(move || {
            let _permit = permit;
            let mut pooled = pool.get_timeout(remaining).map_err(|e| {
                Error::Store(StoreError::Unavailable(format!(
                    "no database connection: {}",
                    crate::config::one_line(&e.to_string())
                )))
            })?;
            let result = f(&mut pooled.conn);
            pooled.notice(&result);
            result
        });
        match task.await {
            Ok(result) => result.map_err(StoreError::from),
            Err(e) => Err(StoreError::Internal(format!("storage task failed: {e}"))),
        }
    }

    /// The first page of one user's licenses (no cursor, no product or status filter), read
    /// together with the others waiting ([`crate::gather`]).
    async fn gathered(&self, query: LicenseQuery) -> Result<Vec<License>, StoreError> {
        let (answer, start_reader) = self.inner.gather.push(query);
        if start_reader {
            // A task of its own: the reader answers every read waiting, so the request that
            // started it going away must not stop it.
            let store = self.clone();
            tokio::spawn(async move {
                let inner = Arc::clone(&store.inner);
                if let Err(error) = store.run(move |c| inner.gather.read(c)).await {
                    store.inner.gather.ended(&error);
                }
            });
        }
        answer.await.unwrap_or_else(|_| {
            Err(StoreError::Internal(
                "the reader of this read ended without an answer".into(),
            ))
        })
    }

    /// Runs `f` in one write transaction.
    async fn write<T, F>(&self, f: F) -> Result<T, StoreError>
    where
        F: FnOnce(&mut AnyConnection) -> Result<T, Error> + Send + 'static,
        T: Send + 'static,
    {
        self.run(move |conn| write_transaction(conn, f)).await
    }
}

/// What [`Store::pool_state`] reports.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct PoolState {
    /// `pool_size`.
    pub max_connections: u32,
    /// Connections open, idle or in use.
    pub connections: u32,
    /// Open connections nobody uses.
    pub idle: u32,
    /// Calls holding a permit: on the blocking pool, with or waiting for a connection.
    pub calls_running: usize,
    /// Calls waiting for a permit (at most `checkout_timeout` each, then 503).
    pub calls_waiting: usize,
}

impl PoolState {
    /// Connections checked out.
    pub fn in_use(&self) -> u32 {
        self.connections.saturating_sub(self.idle)
    }
}

/// Counts a call among the waiting ones for as long as it lives (dropped, too, when the call
/// is cancelled).
struct Waiting<'a>(&'a AtomicUsize);

impl<'a> Waiting<'a> {
    fn new(count: &'a AtomicUsize) -> Self {
        count.fetch_add(1, Ordering::Relaxed);
        Self(count)
    }
}

impl Drop for Waiting<'_> {
    fn drop(&mut self) {
        self.0.fetch_sub(1, Ordering::Relaxed);
    }
}

/// Keeps the idempotency record of a change, first: a key taken meanwhile is reported as
/// such whatever else the write would break.
fn keep_idempotency(conn: &mut AnyConnection, change: &Change) -> Result<(), Error> {
    match &change.idempotency {
        Some(record) => idempotency::insert(conn, record),
        None => Ok(()),
    }
}

/// Queues the jobs of deleted licenses. A GRANT never handed to Irdeto is cancelled with its
/// REVOKE: neither is sent.
fn queue_revokes(
    conn: &mut AnyConnection,
    jobs: &[NewEntitlementJob],
    change: &Change,
) -> Result<(), Error> {
    let revoked: Vec<&str> = jobs
        .iter()
        .filter(|j| j.kind == JobKind::Revoke)
        .map(|j| j.license.as_str())
        .collect();
    let unneeded = jobs::cancel_untried_grants(conn, &revoked)?;
    let needed: Vec<NewEntitlementJob> = jobs
        .iter()
        .filter(|j| j.kind != JobKind::Revoke || !unneeded.contains(j.license.as_str()))
        .cloned()
        .collect();
    queue_jobs(conn, &needed, change)
}

#[async_trait]
impl ProductStore for Store {
    async fn list(&self) -> Result<Vec<Product>, StoreError> {
        self.run(products::list).await
    }

    async fn version(&self) -> Result<i64, StoreError> {
        self.run(products::version).await
    }

    async fn get(&self, id: &ProductId) -> Result<Option<Product>, StoreError> {
        let id = id.clone();
        self.run(move |c| products::get(c, &id)).await
    }

    async fn get_many(&self, ids: &[ProductId]) -> Result<Vec<Product>, StoreError> {
        if ids.is_empty() {
            return Ok(Vec::new());
        }
        let ids = ids.to_vec();
        self.run(move |c| products::get_many(c, &ids)).await
    }

    async fn create(&self, product: &Product, change: &Change) -> Result<(), StoreError> {
        let (product, change) = (product.clone(), change.clone());
        self.write(move |c| {
            keep_idempotency(c, &change)?;
            products::insert(c, &product, change.at)?;
            events::record_product(c, EventType::ProductCreated, &product, change.at)?;
            audit(
                c,
                Action::Create,
                Resource::Product,
                [product.id().as_str()],
                &change,
            )
        })
        .await
    }

    async fn update(&self, product: &Product, change: &Change) -> Result<(), StoreError> {
        let (product, change) = (product.clone(), change.clone());
        self.write(move |c| {
            keep_idempotency(c, &change)?;
            products::update(c, &product, change.at)?;
            events::record_product(c, EventType::ProductUpdated, &product, change.at)?;
            audit(
                c,
                Action::Update,
                Resource::Product,
                [product.id().as_str()],
                &change,
            )
        })
        .await
    }

    async fn delete(&self, id: &ProductId, change: &Change) -> Result<(), StoreError> {
        let (id, change) = (id.clone(), change.clone());
        self.write(move |c| {
            keep_idempotency(c, &change)?;
            let gone = products::get(c, &id)?.ok_or(StoreError::NotFound)?;
            products::delete(c, &id)?;
            events::record_product(c, EventType::ProductDeleted, &gone, change.at)?;
            audit(c, Action::Delete, Resource::Product, [id.as_str()], &change)
        })
        .await
    }
}

#[async_trait]
impl LicenseStore for Store {
    async fn get(&self, id: &LicenseId) -> Result<Option<License>, StoreError> {
        let id = id.clone();
        self.run(move |c| licenses::get(c, &id)).await
    }

    async fn find(&self, query: &LicenseQuery) -> Result<Vec<License>, StoreError> {
        if query.limit == 0 {
            return Ok(Vec::new());
        }
        let query = query.clone();
        if query.user.is_some()
            && query.product.is_none()
            && query.statuses.is_empty()
            && query.after.is_none()
        {
            return self.gathered(query).await;
        }
        self.run(move |c| licenses::find(c, &query)).await
    }

    async fn find_by_ids(&self, ids: &[LicenseId]) -> Result<Vec<License>, StoreError> {
        if ids.is_empty() {
            return Ok(Vec::new());
        }
        let ids = ids.to_vec();
        self.run(move |c| licenses::find_by_ids(c, &ids)).await
    }

    async fn create(
        &self,
        batch: &[License],
        jobs: &[NewEntitlementJob],
        change: &Change,
    ) -> Result<(), StoreError> {
        let (batch, jobs, change) = (batch.to_vec(), jobs.to_vec(), change.clone());
        self.write(move |c| {
            keep_idempotency(c, &change)?;
            licenses::insert(c, &batch, change.at)?;
            events::record_licenses(c, EventType::LicenseCreated, &batch, change.at)?;
            queue_jobs(c, &jobs, &change)?;
            audit(
                c,
                Action::Create,
                Resource::License,
                batch.iter().map(|l| l.id().as_str()),
                &change,
            )
        })
        .await
    }

    async fn existing_orders(
        &self,
        orders: &[(UserId, OrderId)],
    ) -> Result<Vec<usize>, StoreError> {
        if orders.is_empty() {
            return Ok(Vec::new());
        }
        let orders = orders.to_vec();
        self.run(move |c| licenses::existing_orders(c, &orders))
            .await
    }

    async fn delete(
        &self,
        ids: &[LicenseId],
        jobs: &[NewEntitlementJob],
        change: &Change,
    ) -> Result<(), StoreError> {
        let (ids, jobs, change) = (ids.to_vec(), jobs.to_vec(), change.clone());
        self.write(move |c| {
            keep_idempotency(c, &change)?;
            let deleted = licenses::delete(c, &ids)?;
            events::record_license_rows(c, EventType::LicenseDeleted, &deleted, change.at)?;
            queue_revokes(c, &jobs, &change)?;
            audit(
                c,
                Action::Delete,
                Resource::License,
                deleted.iter().map(|row| row.id.as_str()),
                &change,
            )
        })
        .await
    }

    async fn replace(
        &self,
        old: &LicenseId,
        new: &License,
        jobs: &[NewEntitlementJob],
        change: &Change,
    ) -> Result<(), StoreError> {
        let (old, new, jobs, change) = (old.clone(), new.clone(), jobs.to_vec(), change.clone());
        let action = if new.state().status() == LicenseStatus::SuspendedAdmin {
            Action::Suspend
        } else {
            Action::Reinstate
        };
        self.write(move |c| {
            keep_idempotency(c, &change)?;
            // The old row goes first: the copy keeps its (user, order id).
            let gone = licenses::delete(c, std::slice::from_ref(&old)).map_err(|e| match e {
                Error::Store(StoreError::MissingItems(_)) => Error::Store(StoreError::NotFound),
                e => e,
            })?;
            licenses::insert(c, std::slice::from_ref(&new), change.at)?;
            events::record_license_rows(c, EventType::LicenseDeleted, &gone, change.at)?;
            events::record_licenses(
                c,
                EventType::LicenseCreated,
                std::slice::from_ref(&new),
                change.at,
            )?;
            queue_revokes(c, &jobs, &change)?;
            audit_replacement(c, action, old.as_str(), new.id().as_str(), &change)
        })
        .await
    }

    async fn audit_trail(&self, license: &LicenseId) -> Result<Vec<AuditEntry>, StoreError> {
        let license = license.clone();
        self.run(move |c| license_trail(c, license.as_str())).await
    }
}

#[async_trait]
impl EntitlementJobs for Store {
    async fn claim(
        &self,
        now: Timestamp,
        limit: u32,
        lease_until: Timestamp,
    ) -> Result<Vec<EntitlementJob>, StoreError> {
        if limit == 0 {
            return Ok(Vec::new());
        }
        self.write(move |c| jobs::claim(c, now, limit, lease_until))
            .await
    }

    async fn complete(&self, job: i64, settled: Option<License>) -> Result<(), StoreError> {
        self.write(move |c| jobs::complete(c, job, settled.as_ref()))
            .await
    }

    async fn complete_many(&self, done: &[(i64, Option<License>)]) -> Result<(), StoreError> {
        if done.is_empty() {
            return Ok(());
        }
        let done = done.to_vec();
        self.write(move |c| jobs::complete_many(c, &done)).await
    }

    async fn retry(&self, job: i64, at: Timestamp, error: &str) -> Result<(), StoreError> {
        let error = error.to_owned();
        self.write(move |c| jobs::retry(c, job, at, &error)).await
    }

    async fn park(&self, job: i64, error: &str) -> Result<(), StoreError> {
        let error = error.to_owned();
        self.write(move |c| jobs::park(c, job, &error)).await
    }

    async fn backlog(&self, now: Timestamp) -> Result<Backlog, StoreError> {
        self.run(move |c| jobs::backlog(c, now)).await
    }

    async fn refuse(
        &self,
        job: i64,
        error: &str,
        settled: Option<License>,
    ) -> Result<(), StoreError> {
        let error = error.to_owned();
        self.write(move |c| jobs::refuse(c, job, &error, settled.as_ref()))
            .await
    }

    async fn enqueue(&self, new: &[NewEntitlementJob], at: Timestamp) -> Result<(), StoreError> {
        if new.is_empty() {
            return Ok(());
        }
        let new = new.to_vec();
        self.write(move |c| {
            let change = Change {
                actor: licenses_app::ports::Actor::System("irdeto"),
                at,
                idempotency: None,
            };
            queue_jobs(c, &new, &change)
        })
        .await
    }

    async fn requeue(&self, job: i64, change: &Change) -> Result<(), StoreError> {
        let change = change.clone();
        self.write(move |c| {
            keep_idempotency(c, &change)?;
            let license = jobs::requeue(c, job, change.at)?;
            audit(
                c,
                Action::DrmRetry,
                Resource::License,
                [license.as_str()],
                &change,
            )
        })
        .await
    }

    async fn failed(&self, limit: u32) -> Result<Vec<FailedJob>, StoreError> {
        self.run(move |c| jobs::failed(c, limit)).await
    }

    async fn prune_delivered(&self, before: Timestamp) -> Result<u64, StoreError> {
        self.write(move |c| jobs::prune_delivered(c, before)).await
    }

    async fn open_jobs_of(&self, licenses: &[LicenseId]) -> Result<Vec<OpenJob>, StoreError> {
        if licenses.is_empty() {
            return Ok(Vec::new());
        }
        let licenses = licenses.to_vec();
        self.run(move |c| jobs::open_jobs_of(c, &licenses)).await
    }
}

#[async_trait]
impl EventStore for Store {
    async fn sequence(&self, limit: u32) -> Result<Sequenced, StoreError> {
        self.write(move |c| events::sequence(c, limit)).await
    }

    async fn page(&self, query: &EventQuery) -> Result<EventPage, FeedError> {
        let query = query.clone();
        self.run(move |c| events::page(c, &query)).await?
    }

    async fn prune_events(&self, before: Timestamp) -> Result<u64, StoreError> {
        self.write(move |c| events::prune(c, before)).await
    }

    async fn schedule_expiry(
        &self,
        now: Timestamp,
        lead: Duration,
        limit: u32,
    ) -> Result<u64, StoreError> {
        self.write(move |c| events::schedule_expiry(c, now, lead, limit))
            .await
    }

    async fn mark(&self, name: &str) -> Result<i64, StoreError> {
        let name = name.to_owned();
        self.run(move |c| events::mark(c, &name)).await
    }

    async fn advance(&self, name: &str, position: i64) -> Result<(), StoreError> {
        let name = name.to_owned();
        self.write(move |c| events::advance(c, &name, position))
            .await
    }

    async fn event_backlog(&self) -> Result<EventBacklog, StoreError> {
        self.run(events::backlog).await
    }
}

#[async_trait]
impl WebhookStore for Store {
    async fn create_endpoint(&self, new: &NewWebhook) -> Result<WebhookEndpoint, StoreError> {
        let new = new.clone();
        self.write(move |c| webhooks::create(c, &new)).await
    }

    async fn endpoint(&self, id: &str) -> Result<Option<WebhookEndpoint>, StoreError> {
        let id = id.to_owned();
        self.run(move |c| webhooks::endpoint(c, &id)).await
    }

    async fn endpoints(&self) -> Result<Vec<WebhookEndpoint>, StoreError> {
        self.run(webhooks::endpoints).await
    }

    async fn update_endpoint(
        &self,
        id: &str,
        change: &WebhookChange,
    ) -> Result<Option<WebhookEndpoint>, StoreError> {
        let (id, change) = (id.to_owned(), change.clone());
        self.write(move |c| webhooks::update(c, &id, &change)).await
    }

    async fn delete_endpoint(&self, id: &str) -> Result<bool, StoreError> {
        let id = id.to_owned();
        self.write(move |c| webhooks::delete(c, &id)).await
    }

    async fn deliveries(&self, query: &DeliveryQuery) -> Result<Vec<WebhookDelivery>, StoreError> {
        let query = query.clone();
        self.run(move |c| webhooks::list(c, &query)).await
    }

    async fn replay(
        &self,
        endpoint_id: &str,
        delivery_id: Option<i64>,
        now_ms: i64,
    ) -> Result<u64, StoreError> {
        let endpoint_id = endpoint_id.to_owned();
        self.write(move |c| webhooks::replay(c, &endpoint_id, delivery_id, now_ms))
            .await
    }

    async fn fan_out(&self, limit: u32, now_ms: i64) -> Result<FanOut, StoreError> {
        self.write(move |c| webhooks::fan_out(c, limit, now_ms))
            .await
    }

    async fn claim(
        &self,
        now_ms: i64,
        lease_ms: i64,
        limit: u32,
    ) -> Result<Vec<DueDelivery>, StoreError> {
        self.write(move |c| webhooks::claim(c, now_ms, lease_ms, limit))
            .await
    }

    async fn record(&self, attempts: &[AttemptRecord]) -> Result<u64, StoreError> {
        let attempts = attempts.to_vec();
        self.write(move |c| {
            let mut recorded = 0;
            for attempt in &attempts {
                recorded += u64::from(webhooks::record(c, attempt)?);
            }
            Ok(recorded)
        })
        .await
    }

    async fn prune_deliveries(&self, before_ms: i64) -> Result<u64, StoreError> {
        self.write(move |c| webhooks::prune(c, before_ms)).await
    }

    async fn webhook_backlog(&self) -> Result<WebhookBacklog, StoreError> {
        self.run(webhooks::backlog).await
    }
}

#[async_trait]
impl IdempotencyStore for Store {
    async fn find(&self, scope: &str, key: &str) -> Result<Option<IdempotencyRecord>, StoreError> {
        let (scope, key) = (scope.to_owned(), key.to_owned());
        self.run(move |c| idempotency::find(c, &scope, &key)).await
    }

    async fn prune(&self, before: Timestamp) -> Result<u64, StoreError> {
        self.run(move |c| idempotency::prune(c, before)).await
    }
}

#[async_trait]
impl StoreHealth for Store {
    async fn ready(&self) -> Result<(), StoreError> {
        self.run(|c| {
            diesel::sql_query("SELECT 1").execute(c)?;
            match migrate::pending(c)? {
                0 => Ok(()),
                n => Err(StoreError::Unavailable(format!("{n} migrations pending")).into()),
            }
        })
        .await
    }
}
