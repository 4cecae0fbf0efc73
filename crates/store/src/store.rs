//! The store: a connection pool, the bounded road to the blocking pool, and the ports.

use std::sync::Arc;
use std::sync::atomic::{AtomicU64, AtomicUsize, Ordering};
use std::time::{Duration, Instant};

use async_trait::async_trait;
use diesel::RunQueryDsl;
use licenses_app::events::{
    EventBacklog, EventPage, EventQuery, EventStore, EventType, FeedError, Sequenced,
};
use licenses_app::ports::{
    AuditEntry, Backlog, Change, Conflict, EntitlementJob, EntitlementJobs, FailedJob,
    IdempotencyRecord, IdempotencyStore, JobKind, LicenseQuery, LicenseStore, NewEntitlementJob,
    OpenJob, ProductStore, StoreError, StoreHealth,
};
use licenses_app::webhooks::{
    AttemptRecord, DeliveryQuery, DueDelivery, FanOut, NewWebhook, WebhookBacklog, WebhookChange,
    WebhookDelivery, WebhookEndpoint, WebhookStore,
};
use licenses_domain::{
    License, LicenseId, LicenseStatus, OrderId, Product, ProductId, Timestamp, UserId,
};

use crate::config::{Backend, OpenError, StoreConfig, Target};
use crate::connection::{AnyConnection, Manager, Role, write_transaction};
use crate::consistency::{Lsn, ReadScope, ReadTarget};
use crate::error::Error;
use crate::gather::{Claim, Gather};
use crate::listen::{Instance, Written};
use crate::migrate;
use crate::models::{Action, Resource};
use crate::replicas::{self, Health, Positions, Replica};
use crate::repo::{
    analyze, audit, audit_replacement, events, idempotency, jobs, license_trail, licenses,
    products, queue_jobs, webhooks,
};
use crate::road::Road;

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
    /// The primary (`database.url`): every write, and every read outside a [`ReadScope`]
    /// that allows replicas.
    primary: Road,
    /// `database.replicas`, in their order.
    replicas: Vec<Replica>,
    /// The primary's recent positions, to measure the replicas' lag against.
    positions: Positions,
    replica_max_lag: Duration,
    /// Where the next replica read starts looking: reads take turns.
    next_replica: AtomicUsize,
    /// Reads served by the primary and by a replica, since the store opened.
    reads_primary: AtomicU64,
    reads_replica: AtomicU64,
    /// Users' first pages of licenses, waiting to be read together: on the primary, and on a
    /// replica (those of GET requests that need no position).
    gather: Gather,
    gather_replica: Gather,
    /// When the webhook queue's planner statistics are refreshed.
    queue_statistics: webhooks::QueueStatistics,
    checkout_timeout: Duration,
    backend: Backend,
    shown: String,
    /// Where the primary's connections go: the listener's too, unless told otherwise.
    target: Target,
    /// Signs this store's notifications; its listener passes over them ([`crate::listen`]).
    instance: Instance,
}

impl std::fmt::Debug for Store {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("Store")
            .field("database", &self.inner.shown)
            .field("backend", &self.inner.backend)
            .field("pool_size", &self.inner.primary.pool.max_size())
            .field("replicas", &self.inner.replicas.len())
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
        let busy_timeout = config.checkout_timeout.max(MIN_BUSY_TIMEOUT);
        let manager = Manager {
            target: target.clone(),
            busy_timeout,
            prepared_statements: config.prepared_statements,
        };
        manager
            .open()
            .map_err(|e| OpenError::Unreachable(format!("{shown}: {e}")))?;
        let mut replicas = Vec::with_capacity(config.replicas.len());
        for url in &config.replicas {
            let target = Target::parse(url, config.checkout_timeout)?;
            if backend != Backend::Postgres || target.backend() != Backend::Postgres {
                return Err(OpenError::InvalidConfig(
                    "database.replicas are PostgreSQL streaming replicas of a PostgreSQL \
                     database.url"
                        .into(),
                ));
            }
            let shown = target.shown();
            // Not opened here: a replica that is down at start costs no error, and is read
            // from once a probe finds it answering.
            let manager = Manager {
                target,
                busy_timeout,
                prepared_statements: config.prepared_statements,
            };
            replicas.push(Replica::new(
                Road::new(
                    manager,
                    Role::Replica,
                    config.pool_size,
                    config.checkout_timeout,
                ),
                shown,
            ));
        }
        Ok(Store {
            inner: Arc::new(Inner {
                primary: Road::new(
                    manager,
                    Role::Primary,
                    config.pool_size,
                    config.checkout_timeout,
                ),
                replicas,
                positions: Positions::default(),
                replica_max_lag: config.replica_max_lag,
                next_replica: AtomicUsize::new(0),
                reads_primary: AtomicU64::new(0),
                reads_replica: AtomicU64::new(0),
                gather: Gather::default(),
                gather_replica: Gather::default(),
                queue_statistics: webhooks::QueueStatistics::default(),
                checkout_timeout: config.checkout_timeout,
                backend,
                shown,
                target,
                instance: Instance::new(),
            }),
        })
    }

    pub fn backend(&self) -> Backend {
        self.inner.backend
    }

    /// The pool and the road to the blocking pool, now: for the metrics. Reads counters only,
    /// never the database.
    pub fn pool_state(&self) -> PoolState {
        let road = &self.inner.primary;
        let pool = road.pool.state();
        let max_calls = usize::try_from(road.pool.max_size()).unwrap_or(usize::MAX);
        PoolState {
            max_connections: road.pool.max_size(),
            connections: pool.connections,
            idle: pool.idle_connections,
            calls_running: max_calls.saturating_sub(road.permits.available_permits()),
            calls_waiting: road.waiting.load(Ordering::Relaxed),
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

    /// The road to the primary: a permit (at most `pool_size` calls at once), then a
    /// connection and the work together on the blocking pool, all within `checkout_timeout`.
    async fn run<T, F>(&self, f: F) -> Result<T, StoreError>
    where
        F: FnOnce(&mut AnyConnection) -> Result<T, Error> + Send + 'static,
        T: Send + 'static,
    {
        self.inner.primary.run(self.inner.checkout_timeout, f).await
    }

    /// A read: from a replica when the task's [`ReadScope`] allows it and one is in (and,
    /// when the scope names a position, has replayed it), else from the primary. A replica
    /// that fails the read is taken out and the primary answers instead.
    async fn read<T, F>(&self, f: F) -> Result<T, StoreError>
    where
        F: Fn(&mut AnyConnection) -> Result<T, Error> + Send + Sync + 'static,
        T: Send + 'static,
    {
        let target = if self.inner.replicas.is_empty() {
            ReadTarget::Primary
        } else {
            ReadScope::current_read()
        };
        let f = Arc::new(f);
        if target != ReadTarget::Primary
            && let Some(replica) = self.pick_replica(target)
        {
            // Known to have replayed far enough, or asked on the connection that reads.
            let check = match target {
                ReadTarget::ReplicaAt(lsn) if replica.replayed() < lsn => Some(lsn),
                _ => None,
            };
            let read = Arc::clone(&f);
            let answer = self
                .on_replica(replica, move |c| {
                    let replayed = match check {
                        Some(lsn) => match replicas::replay_position(c)? {
                            (_, replayed) if replayed < lsn => return Ok((replayed, None)),
                            (_, replayed) => replayed,
                        },
                        None => Lsn(0),
                    };
                    Ok((replayed, Some(read(c)?)))
                })
                .await;
            match answer {
                Ok((replayed, Some(value))) => {
                    replica.saw_replayed(replayed);
                    self.inner.reads_replica.fetch_add(1, Ordering::Relaxed);
                    return Ok(value);
                }
                // Not there yet: the primary has it.
                Ok((replayed, None)) => replica.saw_replayed(replayed),
                Err(StoreError::Unavailable(error)) => {
                    replica.set(&Health::Unreachable(error));
                }
                Err(error) => {
                    // E.g. a query cancelled by a recovery conflict: the primary answers.
                    tracing::debug!(replica = %replica.shown, %error, "a replica read failed");
                }
            }
        }
        self.inner.reads_primary.fetch_add(1, Ordering::Relaxed);
        self.run(move |c| f(c)).await
    }

    /// The next replica in turn that is in, unless the read must go to the primary.
    fn pick_replica(&self, target: ReadTarget) -> Option<&Replica> {
        if target == ReadTarget::Primary {
            return None;
        }
        let replicas = &self.inner.replicas;
        let start = self.inner.next_replica.fetch_add(1, Ordering::Relaxed);
        (0..replicas.len())
            .map(|i| &replicas[(start + i) % replicas.len()])
            .find(|r| r.is_up())
    }

    /// A call on `replica`: its turn and connection within [`REPLICA_WAIT`], and its answer
    /// within `checkout_timeout`, else [`StoreError::Unavailable`]. A host that hangs without
    /// closing its connections (a paused VM) answers nothing and resets nothing: without the
    /// deadline the request, and every probe after it, would wait for it. The work left
    /// behind finishes or fails on the blocking pool with its permit, so a frozen replica
    /// ties up at most its own pool.
    async fn on_replica<T, F>(&self, replica: &Replica, f: F) -> Result<T, StoreError>
    where
        F: FnOnce(&mut AnyConnection) -> Result<T, Error> + Send + 'static,
        T: Send + 'static,
    {
        let deadline = self.inner.checkout_timeout;
        let wait = deadline.min(REPLICA_WAIT);
        within(deadline, replica.road.run(wait, f)).await
    }

    /// Starts the wake-up listener on PostgreSQL ([`crate::listen`]): each notification of a
    /// channel of `wakes` notifies its [`Notify`]. `url` is `database.listen_url`, a direct
    /// connection to the primary where `database.url` goes through pgbouncer; `None` listens
    /// on `database.url`. SQLite has no listener (`Ok(None)`): one instance's own writes wake
    /// its workers in process.
    ///
    /// [`Notify`]: tokio::sync::Notify
    pub fn listen(
        &self,
        url: Option<&str>,
        wakes: Vec<(&'static str, Arc<tokio::sync::Notify>)>,
    ) -> Result<Option<crate::listen::Listener>, OpenError> {
        if self.inner.backend != Backend::Postgres {
            return Ok(None);
        }
        let target = match url {
            Some(url) => Target::parse(url, self.inner.checkout_timeout)?,
            None => self.inner.target.clone(),
        };
        if target.backend() != Backend::Postgres {
            return Err(OpenError::InvalidConfig(
                "database.listen_url must be a postgres:// URL of the primary".into(),
            ));
        }
        crate::listen::Listener::spawn(target, wakes, self.inner.instance.clone())
            .map(Some)
            .map_err(|e| OpenError::Unreachable(format!("cannot start the listener: {e}")))
    }

    /// Whether `database.replicas` names any.
    pub fn has_replicas(&self) -> bool {
        !self.inner.replicas.is_empty()
    }

    /// Whether writes have positions to answer with (`Licenses-Consistency`): PostgreSQL's,
    /// in its write-ahead log. The embedded SQLite store has none, and needs none: one
    /// process reads and writes it, and every read sees every write.
    pub fn has_positions(&self) -> bool {
        self.inner.backend == Backend::Postgres
    }

    /// Whether the call running now reads the primary's position for its request: the
    /// answer's consistency token, and the position its later reads must see.
    fn position_for_request(&self) -> bool {
        self.has_positions() && ReadScope::in_scope()
    }

    /// Probes the primary's position and every replica: takes in those that answer, are
    /// standbys and lag at most `replica_max_lag`, and takes out the others. The service
    /// runs it every [`PROBE_EVERY`]; a replica is out until a probe took it in.
    pub async fn probe_replicas(&self) {
        if self.inner.replicas.is_empty() {
            return;
        }
        match within(
            self.inner.checkout_timeout,
            self.run(replicas::current_position),
        )
        .await
        {
            Ok(lsn) => self.inner.positions.push(Instant::now(), lsn),
            // The replicas are measured against the positions already known.
            Err(error) => tracing::debug!(%error, "the primary's position is unknown"),
        }
        let probes = self.inner.replicas.iter().map(|replica| async move {
            let answer = self
                .on_replica(replica, replicas::replay_position)
                .await
                .map_err(|e| e.to_string());
            let health = replicas::judge(
                replica,
                &self.inner.positions,
                answer,
                self.inner.replica_max_lag,
                Instant::now(),
            );
            replica.set(&health);
        });
        futures_util::future::join_all(probes).await;
    }

    /// The replicas as the last probe found them, for the metrics.
    pub fn replica_states(&self) -> Vec<ReplicaState> {
        self.inner
            .replicas
            .iter()
            .map(|r| ReplicaState {
                replica: r.shown.clone(),
                up: r.is_up(),
                lag: r.lag(),
            })
            .collect()
    }

    /// Reads served by the primary and by the replicas since the store opened.
    pub fn read_counts(&self) -> ReadCounts {
        ReadCounts {
            primary: self.inner.reads_primary.load(Ordering::Relaxed),
            replica: self.inner.reads_replica.load(Ordering::Relaxed),
        }
    }

    /// The first page of one user's licenses (no cursor, no product or status filter), read
    /// together with the others waiting ([`crate::gather`]): on a replica that is in when
    /// `on_replica`, and by the primary when none is or the replica fails the batch.
    async fn gathered(
        &self,
        query: LicenseQuery,
        on_replica: bool,
    ) -> Result<Vec<License>, StoreError> {
        let gather = if on_replica {
            &self.inner.gather_replica
        } else {
            &self.inner.gather
        };
        // A replica that stops answering holds the batch its reader took: the read is then
        // read again, alone, by the primary.
        let alone = on_replica.then(|| query.clone());
        let (answer, start_reader) = gather.push(query);
        if start_reader {
            // A task of its own: the reader answers every read waiting, so the request that
            // started it going away must not stop it.
            let store = self.clone();
            tokio::spawn(async move { store.gather_reader(on_replica).await });
        }
        let answer = async {
            answer.await.unwrap_or_else(|_| {
                Err(StoreError::Internal(
                    "the reader of this read ended without an answer".into(),
                ))
            })
        };
        let Some(query) = alone else {
            return answer.await;
        };
        match tokio::time::timeout(self.inner.checkout_timeout, answer).await {
            Ok(answer) => answer,
            Err(_) => {
                tracing::debug!("a gathered read got no answer in time: the primary reads it");
                self.inner.reads_primary.fetch_add(1, Ordering::Relaxed);
                self.run(move |c| licenses::find(c, &query)).await
            }
        }
    }

    /// A reader of gathered reads, on a replica first when `on_replica`.
    async fn gather_reader(&self, on_replica: bool) {
        let inner = Arc::clone(&self.inner);
        if on_replica && let Some(replica) = self.pick_replica(ReadTarget::AnyReplica) {
            let reader = Arc::clone(&inner);
            let claim = Arc::new(Claim::default());
            let call = Arc::clone(&claim);
            let read = self
                .on_replica(replica, move |c| {
                    reader
                        .gather_replica
                        .read_or_give_back(c, &reader.reads_replica, &call)
                })
                .await;
            match read {
                Ok(()) => return,
                Err(StoreError::Unavailable(error)) => {
                    replica.set(&Health::Unreachable(error));
                }
                Err(error) => {
                    tracing::debug!(replica = %replica.shown, %error, "a replica read failed");
                }
            }
            if !inner.gather_replica.abandon(&claim) {
                // It answered every read just as its deadline passed.
                return;
            }
        }
        let reader = Arc::clone(&inner);
        let gather = move |c: &mut AnyConnection| match on_replica {
            true => reader.gather_replica.read(c, &reader.reads_primary),
            false => reader.gather.read(c, &reader.reads_primary),
        };
        match self.run(gather).await {
            Ok(()) => {}
            Err(error) if on_replica => inner.gather_replica.ended(&error),
            Err(error) => inner.gather.ended(&error),
        }
    }

    /// Runs `f` in one write transaction.
    async fn write<T, F>(&self, f: F) -> Result<T, StoreError>
    where
        F: FnOnce(&mut AnyConnection) -> Result<T, Error> + Send + 'static,
        T: Send + 'static,
    {
        self.write_atomically(move |conn| write_transaction(conn, f))
            .await
    }

    /// Runs `f`, which writes all or nothing by itself: in a transaction of its own, or in one
    /// statement. Then, as after every write, the notifications and the position.
    async fn write_atomically<T, F>(&self, f: F) -> Result<T, StoreError>
    where
        F: FnOnce(&mut AnyConnection) -> Result<T, Error> + Send + 'static,
        T: Send + 'static,
    {
        let position = self.position_for_request();
        let instance = self.inner.instance.clone();
        let (value, lsn) = self
            .run(move |conn| {
                Written::take();
                let value = f(conn)?;
                let lsn = crate::listen::after_commit(conn, Written::take(), &instance, position);
                Ok((value, lsn))
            })
            .await?;
        if let Some(lsn) = lsn {
            ReadScope::record_write(lsn);
        }
        Ok(value)
    }
}

/// How long a replica read waits for a connection at most before the primary answers it.
const REPLICA_WAIT: Duration = Duration::from_millis(250);

/// `call`'s answer, or [`StoreError::Unavailable`] once `deadline` has passed.
async fn within<T>(
    deadline: Duration,
    call: impl Future<Output = Result<T, StoreError>>,
) -> Result<T, StoreError> {
    tokio::time::timeout(deadline, call)
        .await
        .unwrap_or_else(|_| {
            Err(StoreError::Unavailable(format!(
                "no answer within {} ms",
                deadline.as_millis()
            )))
        })
}

/// How often the service probes its replicas ([`Store::probe_replicas`]).
pub const PROBE_EVERY: Duration = Duration::from_millis(500);

/// A replica as the last probe found it.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct ReplicaState {
    /// Its URL, without a password.
    pub replica: String,
    /// Read from.
    pub up: bool,
    /// How far behind the primary it was, when it answered.
    pub lag: Option<Duration>,
}

/// Reads served by the primary and by the replicas.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Default)]
pub struct ReadCounts {
    pub primary: u64,
    pub replica: u64,
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
        self.read(products::list).await
    }

    async fn version(&self) -> Result<i64, StoreError> {
        self.read(products::version).await
    }

    async fn get(&self, id: &ProductId) -> Result<Option<Product>, StoreError> {
        let id = id.clone();
        self.read(move |c| products::get(c, &id)).await
    }

    async fn get_many(&self, ids: &[ProductId]) -> Result<Vec<Product>, StoreError> {
        if ids.is_empty() {
            return Ok(Vec::new());
        }
        let ids = ids.to_vec();
        self.read(move |c| products::get_many(c, &ids)).await
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
        self.read(move |c| licenses::get(c, &id)).await
    }

    async fn find(&self, query: &LicenseQuery) -> Result<Vec<License>, StoreError> {
        if query.limit == 0 {
            return Ok(Vec::new());
        }
        let query = query.clone();
        // First pages are gathered, on a replica when any will do; a read that needs a
        // position goes alone, to a replica that has replayed it or to the primary.
        if query.user.is_some()
            && query.product.is_none()
            && query.statuses.is_empty()
            && query.after.is_none()
        {
            match self.has_replicas().then(ReadScope::current_read) {
                None | Some(ReadTarget::Primary) => return self.gathered(query, false).await,
                Some(ReadTarget::AnyReplica) => return self.gathered(query, true).await,
                Some(ReadTarget::ReplicaAt(_)) => {}
            }
        }
        self.read(move |c| licenses::find(c, &query)).await
    }

    async fn find_by_ids(&self, ids: &[LicenseId]) -> Result<Vec<License>, StoreError> {
        if ids.is_empty() {
            return Ok(Vec::new());
        }
        let ids = ids.to_vec();
        self.read(move |c| licenses::find_by_ids(c, &ids)).await
    }

    async fn create(
        &self,
        batch: &[License],
        jobs: &[NewEntitlementJob],
        change: &Change,
    ) -> Result<(), StoreError> {
        let (batch, jobs, change) = (Arc::new(batch.to_vec()), jobs.to_vec(), change.clone());
        let writing = Arc::clone(&batch);
        let written = self
            .write_atomically(move |c| match (c, writing.as_slice()) {
                // A purchase, a POST /licenses: one statement, atomic by itself.
                (AnyConnection::Postgresql(pg), [license]) => {
                    licenses::create_alone(pg, license, &jobs, &change)
                }
                (c, _) => write_transaction(c, |c| {
                    keep_idempotency(c, &change)?;
                    licenses::insert(c, &writing, change.at)?;
                    events::record_licenses(c, EventType::LicenseCreated, &writing, change.at)?;
                    queue_jobs(c, &jobs, &change)?;
                    audit(
                        c,
                        Action::Create,
                        Resource::License,
                        writing.iter().map(|l| l.id().as_str()),
                        &change,
                    )
                }),
            })
            .await;
        match written {
            // A batch refused for a reused order: which ones, read once it is rolled back
            // (those another writer took meanwhile included).
            Err(StoreError::Conflict(Conflict::DuplicateOrders(positions)))
                if positions.is_empty() && batch.len() > 1 =>
            {
                let positions = self
                    .run(move |c| licenses::duplicate_orders(c, &batch))
                    .await?;
                Err(StoreError::Conflict(Conflict::DuplicateOrders(positions)))
            }
            written => written,
        }
    }

    async fn refresh_statistics(&self) -> Result<(), StoreError> {
        self.run(|c| analyze(c, "licenses")).await
    }

    async fn existing_orders(
        &self,
        orders: &[(UserId, OrderId)],
    ) -> Result<Vec<usize>, StoreError> {
        if orders.is_empty() {
            return Ok(Vec::new());
        }
        let orders = orders.to_vec();
        self.read(move |c| licenses::existing_orders(c, &orders))
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
        self.read(move |c| license_trail(c, license.as_str())).await
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
        self.read(move |c| jobs::failed(c, limit)).await
    }

    async fn prune_delivered(&self, before: Timestamp) -> Result<u64, StoreError> {
        self.write(move |c| jobs::prune_delivered(c, before)).await
    }

    async fn open_jobs_of(&self, licenses: &[LicenseId]) -> Result<Vec<OpenJob>, StoreError> {
        if licenses.is_empty() {
            return Ok(Vec::new());
        }
        let licenses = licenses.to_vec();
        self.read(move |c| jobs::open_jobs_of(c, &licenses)).await
    }
}

#[async_trait]
impl EventStore for Store {
    async fn sequence(&self, limit: u32) -> Result<Sequenced, StoreError> {
        self.write(move |c| events::sequence(c, limit)).await
    }

    async fn page(&self, query: &EventQuery) -> Result<EventPage, FeedError> {
        let query = query.clone();
        self.read(move |c| events::page(c, &query)).await?
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
        self.read(move |c| webhooks::endpoint(c, &id)).await
    }

    async fn endpoints(&self) -> Result<Vec<WebhookEndpoint>, StoreError> {
        self.read(webhooks::endpoints).await
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
        self.read(move |c| webhooks::list(c, &query)).await
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
        let fanned = self
            .write(move |c| webhooks::fan_out(c, limit, now_ms))
            .await?;
        if self
            .inner
            .queue_statistics
            .due(fanned.deliveries, Instant::now())
        {
            // Only the speed of the claims depends on it: said, not fatal.
            if let Err(error) = self.run(|c| analyze(c, "webhook_deliveries")).await {
                tracing::warn!(%error, "cannot refresh the webhook queue's statistics");
            }
        }
        Ok(fanned)
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
    /// A stored answer found here is given again in place of a write: in a request's scope,
    /// on PostgreSQL, the request then carries the primary's position as a write would, so
    /// that a retried purchase's token (and its window) shows the license.
    async fn find(&self, scope: &str, key: &str) -> Result<Option<IdempotencyRecord>, StoreError> {
        let (scope, key) = (scope.to_owned(), key.to_owned());
        let position = self.position_for_request();
        let (record, lsn) = self
            .run(move |c| {
                let record = idempotency::find(c, &scope, &key)?;
                let lsn = match (&record, position) {
                    (Some(_), true) => Some(replicas::current_position(c)?),
                    _ => None,
                };
                Ok((record, lsn))
            })
            .await?;
        if let Some(lsn) = lsn {
            ReadScope::record_write(lsn);
        }
        Ok(record)
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
