//! The ports: what the use cases need from the outside world.
//!
//! Every storage port shares one error type, [`StoreError`], whose rustdoc is the contract:
//! adapters translate their infrastructure errors into it (a unique violation becomes a
//! [`Conflict`], an unreachable database [`StoreError::Unavailable`]), and nothing above the
//! adapter ever sees a driver error. Every write takes a [`Change`]: the audit trail and the
//! idempotency record are written in the same transaction as the change itself, so that a
//! failure half-way leaves nothing half-written.

use async_trait::async_trait;
use licenses_domain::{
    License, LicenseId, LicenseStatus, OrderId, Product, ProductId, Timestamp, UserId,
};

/// The error contract of every storage port.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
pub enum StoreError {
    /// The one resource the call names does not exist.
    #[error("not found")]
    NotFound,
    /// Items of a batch name resources that do not exist: their positions in the batch.
    #[error("batch items not found: {0:?}")]
    MissingItems(Vec<usize>),
    /// The write would break a uniqueness or reference rule; nothing was written.
    #[error("conflict: {0:?}")]
    Conflict(Conflict),
    /// The database could not be reached, or no connection was free within the checkout
    /// timeout. Nothing was written (or, for a commit whose answer was lost, the caller
    /// cannot know: it retries with the same idempotency key). Answered 503 + Retry-After.
    #[error("storage unavailable: {0}")]
    Unavailable(String),
    /// Anything else: a bug, corrupt data or an unexpected database error. The message is
    /// for the logs, never for a client.
    #[error("storage failure: {0}")]
    Internal(String),
}

/// Which rule a refused write would have broken.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Conflict {
    /// The id is already taken.
    DuplicateId,
    /// Licenses of the batch reuse an `order_id` already stored for their user: their
    /// positions (empty when the store could only tell that one of them did).
    DuplicateOrders(Vec<usize>),
    /// The idempotency key of the [`Change`] was recorded meanwhile by another request.
    IdempotencyKeyTaken,
    /// The product still has licenses: how many.
    ProductInUse { licenses: u64 },
    /// A license names a product that was deleted meanwhile.
    ProductGone,
}

/// Who makes a change, for the audit trail.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Actor {
    /// The BSS, through the management API, by the name of its key.
    ManagementKey(String),
    /// A user, through the user API.
    User(UserId),
    /// The service itself (`import`, `irdeto`).
    System(&'static str),
}

impl std::fmt::Display for Actor {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        match self {
            Self::ManagementKey(name) => write!(f, "key:{name}"),
            Self::User(id) => write!(f, "user:{id}"),
            Self::System(what) => write!(f, "system:{what}"),
        }
    }
}

/// What the audit trail records of a resource (`audit_log.action`).
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash)]
pub enum AuditAction {
    Create,
    Update,
    Delete,
    /// The support staff suspended a license: it was replaced by a SUSPENDEDADMIN copy.
    Suspend,
    /// The support staff lifted their suspension: the SUSPENDEDADMIN license was replaced by
    /// an ACTIVE (or PROCESSING) copy.
    Reinstate,
    /// The operator made a failed entitlement job of the license due again.
    DrmRetry,
}

impl AuditAction {
    pub const ALL: [AuditAction; 6] = [
        Self::Create,
        Self::Update,
        Self::Delete,
        Self::Suspend,
        Self::Reinstate,
        Self::DrmRetry,
    ];

    /// The stored code.
    pub fn as_str(self) -> &'static str {
        match self {
            Self::Create => "create",
            Self::Update => "update",
            Self::Delete => "delete",
            Self::Suspend => "suspend",
            Self::Reinstate => "reinstate",
            Self::DrmRetry => "drm_retry",
        }
    }

    /// The action of a stored code; `None` for a code that is not one of ours.
    pub fn parse(code: &str) -> Option<Self> {
        Self::ALL.into_iter().find(|a| a.as_str() == code)
    }
}

impl std::fmt::Display for AuditAction {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.write_str(self.as_str())
    }
}

/// One row of a license's audit trail.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct AuditEntry {
    pub at: Timestamp,
    pub action: AuditAction,
    /// Who, as [`Actor`] shows itself: `key:NAME`, `user:ID`, `system:WHAT`.
    pub actor: String,
    /// The other license of a replacement: for [`AuditAction::Suspend`] and
    /// [`AuditAction::Reinstate`], the license that replaced this one; for the
    /// [`AuditAction::Create`] of a replacement, the license it replaced. `None` otherwise.
    pub related: Option<LicenseId>,
}

/// A stored answer to replay for a repeated idempotency key.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct StoredResponse {
    pub status: u16,
    pub body: Vec<u8>,
}

/// An idempotency key, the fingerprint of the request it came with, and the response given.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct IdempotencyRecord {
    /// Whose key it is (`key:NAME`, `user:ID`): one client cannot replay another's.
    pub scope: String,
    pub key: String,
    /// A digest of method, path and body: the same key with another request is refused.
    pub fingerprint: String,
    pub response: StoredResponse,
    pub created_at: Timestamp,
}

/// The context of a write: who, when, and the idempotency record to keep with it.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Change {
    pub actor: Actor,
    pub at: Timestamp,
    pub idempotency: Option<IdempotencyRecord>,
}

/// The catalogue.
///
/// Errors: [`StoreError::Unavailable`] and [`StoreError::Internal`] from every method, plus
/// those named on each.
#[cfg_attr(feature = "mock", mockall::automock)]
#[async_trait]
pub trait ProductStore: Send + Sync {
    /// Every product, in id order.
    async fn list(&self) -> Result<Vec<Product>, StoreError>;

    /// The catalogue's change marker: a number that every write to the products, by any
    /// writer, moves (a one-row read). Equal numbers mean an unchanged catalogue.
    async fn version(&self) -> Result<i64, StoreError>;

    async fn get(&self, id: &ProductId) -> Result<Option<Product>, StoreError>;

    /// The products among `ids` that exist, in id order; missing ids are left out.
    async fn get_many(&self, ids: &[ProductId]) -> Result<Vec<Product>, StoreError>;

    /// Stores a new product. [`Conflict::DuplicateId`] if its id is taken;
    /// [`Conflict::IdempotencyKeyTaken`].
    async fn create(&self, product: &Product, change: &Change) -> Result<(), StoreError>;

    /// Replaces a product by the one with the same id. [`StoreError::NotFound`] if it is gone.
    async fn update(&self, product: &Product, change: &Change) -> Result<(), StoreError>;

    /// Deletes a product. [`StoreError::NotFound`]; [`Conflict::ProductInUse`] while any
    /// license refers to it; [`Conflict::IdempotencyKeyTaken`].
    async fn delete(&self, id: &ProductId, change: &Change) -> Result<(), StoreError>;
}

/// Which licenses to list, and which page.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct LicenseQuery {
    pub user: Option<UserId>,
    pub product: Option<ProductId>,
    /// Any of these statuses, as read at `now` (EXPIRED derived); empty: any status.
    pub statuses: Vec<LicenseStatus>,
    /// Only licenses effective at this time ([`License::is_effective_at`]).
    pub active_at: Option<Timestamp>,
    /// The time at which EXPIRED is derived.
    pub now: Timestamp,
    /// Keyset cursor: only licenses whose id sorts after this one.
    pub after: Option<LicenseId>,
    /// At most this many licenses.
    pub limit: u32,
}

/// The kind of an Irdeto entitlement job.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash)]
pub enum JobKind {
    Grant,
    Revoke,
}

/// An entitlement job to queue in the outbox, in the transaction of the license change.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct NewEntitlementJob {
    pub kind: JobKind,
    /// Also the Irdeto entitlement id, so that a retry can never create a second one.
    pub license: LicenseId,
    pub user: UserId,
    /// The Irdeto product the license's product maps to.
    pub irdeto_product: String,
    pub valid_from: Timestamp,
    pub valid_until: Option<Timestamp>,
}

/// A queued entitlement job, as claimed by a worker.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct EntitlementJob {
    pub id: i64,
    pub job: NewEntitlementJob,
    /// Deliveries tried so far.
    pub attempts: u32,
}

/// How many jobs wait, retry or have failed for good.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Default)]
pub struct Backlog {
    pub due: u64,
    pub retrying: u64,
    pub failed: u64,
}

/// Licenses. Immutable: there is no update, only create and delete (and the status changes
/// of the entitlement workflow, through [`EntitlementJobs`]).
///
/// Errors: [`StoreError::Unavailable`] and [`StoreError::Internal`] from every method, plus
/// those named on each.
#[cfg_attr(feature = "mock", mockall::automock)]
#[async_trait]
pub trait LicenseStore: Send + Sync {
    async fn get(&self, id: &LicenseId) -> Result<Option<License>, StoreError>;

    /// The licenses matching `query`, in id order, after `query.after`, at most `query.limit`.
    /// Pages never skip nor repeat a license that existed when the first page was read.
    async fn find(&self, query: &LicenseQuery) -> Result<Vec<License>, StoreError>;

    /// The licenses among `ids` that exist, in any order; missing ids are left out.
    async fn find_by_ids(&self, ids: &[LicenseId]) -> Result<Vec<License>, StoreError> {
        let mut found = Vec::with_capacity(ids.len());
        for id in ids {
            if let Some(license) = self.get(id).await? {
                found.push(license);
            }
        }
        Ok(found)
    }

    /// Stores every license and queues every job in one transaction: all or nothing.
    /// [`Conflict::DuplicateOrders`] when an `order_id` is already stored for its user;
    /// [`Conflict::DuplicateId`]; [`Conflict::ProductGone`]; [`Conflict::IdempotencyKeyTaken`].
    async fn create(
        &self,
        licenses: &[License],
        jobs: &[NewEntitlementJob],
        change: &Change,
    ) -> Result<(), StoreError>;

    /// Read-only: the positions (ascending) of the `(user, order id)` pairs of `orders` that
    /// are already stored. Writes nothing; a later [`Self::create`] checks again, so a pair
    /// stored in between is still refused there. For dry runs of an import.
    async fn existing_orders(&self, orders: &[(UserId, OrderId)])
    -> Result<Vec<usize>, StoreError>;

    /// Brings the query planner's statistics of the licenses up to date, after many were
    /// written at once (PostgreSQL: `ANALYZE licenses`; the autovacuum daemon would do it
    /// later, or never where it is off). Without them a young table is planned as a tiny one.
    async fn refresh_statistics(&self) -> Result<(), StoreError>;

    /// Deletes every license and queues every job in one transaction: all or nothing.
    /// [`StoreError::MissingItems`] with the positions of ids that do not exist;
    /// [`Conflict::IdempotencyKeyTaken`].
    async fn delete(
        &self,
        ids: &[LicenseId],
        jobs: &[NewEntitlementJob],
        change: &Change,
    ) -> Result<(), StoreError>;

    /// Replaces the license `old` by `new` (a copy under a new id: a suspension or a
    /// reinstatement) and queues every job, in one transaction: all or nothing. `old` is
    /// deleted first, so `new` may keep its user and order id. Audited as
    /// [`AuditAction::Suspend`] when `new` is SUSPENDEDADMIN, [`AuditAction::Reinstate`]
    /// otherwise, on `old` (related: `new`), and as [`AuditAction::Create`] on `new` (related:
    /// `old`). [`StoreError::NotFound`] if `old` is gone (revoked meanwhile): nothing is
    /// written. [`Conflict::DuplicateId`] if `new`'s id is taken;
    /// [`Conflict::IdempotencyKeyTaken`].
    async fn replace(
        &self,
        old: &LicenseId,
        new: &License,
        jobs: &[NewEntitlementJob],
        change: &Change,
    ) -> Result<(), StoreError>;

    /// The audit trail of a license, oldest first: every change of it, also once it is
    /// deleted or replaced. Empty for an id never audited.
    async fn audit_trail(&self, license: &LicenseId) -> Result<Vec<AuditEntry>, StoreError>;
}

/// Idempotency records (the records themselves are written with the [`Change`] of a write).
///
/// Errors: [`StoreError::Unavailable`] and [`StoreError::Internal`].
#[cfg_attr(feature = "mock", mockall::automock)]
#[async_trait]
pub trait IdempotencyStore: Send + Sync {
    async fn find(&self, scope: &str, key: &str) -> Result<Option<IdempotencyRecord>, StoreError>;

    /// Deletes the records created before `before`; how many.
    async fn prune(&self, before: Timestamp) -> Result<u64, StoreError>;
}

/// The outbox of Irdeto entitlement jobs, written with the license changes.
///
/// Errors: [`StoreError::Unavailable`] and [`StoreError::Internal`] from every method, plus
/// those named on each.
#[cfg_attr(feature = "mock", mockall::automock)]
#[async_trait]
pub trait EntitlementJobs: Send + Sync {
    /// Claims up to `limit` jobs due at `now`, hidden from other workers until `lease_until`
    /// (a worker that dies leaves its jobs to be claimed again when the lease ends).
    async fn claim(
        &self,
        now: Timestamp,
        limit: u32,
        lease_until: Timestamp,
    ) -> Result<Vec<EntitlementJob>, StoreError>;

    /// The job was delivered. `settled` is the license after its status change (PROCESSING →
    /// ACTIVE, SUSPENDED or ORDER_ERROR), stored in the same transaction; `None` for a revoke.
    /// [`StoreError::NotFound`] if the job is gone.
    async fn complete(&self, job: i64, settled: Option<License>) -> Result<(), StoreError>;

    /// [`Self::complete`] for many jobs in one transaction (a worker's round); jobs that are
    /// gone are skipped.
    async fn complete_many(&self, done: &[(i64, Option<License>)]) -> Result<(), StoreError>;

    /// A transient failure: try again at `at`.
    async fn retry(&self, job: i64, at: Timestamp, error: &str) -> Result<(), StoreError>;

    /// Gives up on the job, keeping `error` for the operator.
    async fn park(&self, job: i64, error: &str) -> Result<(), StoreError>;

    async fn backlog(&self, now: Timestamp) -> Result<Backlog, StoreError>;

    /// Gives up on the job for good (the far end refused it), keeping `error`, and stores
    /// `settled` (PROCESSING → ORDER_ERROR) in the same transaction. [`StoreError::NotFound`]
    /// if the job is gone.
    async fn refuse(
        &self,
        job: i64,
        error: &str,
        settled: Option<License>,
    ) -> Result<(), StoreError>;

    /// Queues jobs outside a license change (`licenses irdeto resync`), due at `at`.
    async fn enqueue(&self, jobs: &[NewEntitlementJob], at: Timestamp) -> Result<(), StoreError>;

    /// Makes a parked (failed) job due again at `change.at`, with its attempts reset: the
    /// operator's retry, audited as [`AuditAction::DrmRetry`] of the job's license by
    /// `change.actor` in the same transaction. [`StoreError::NotFound`] unless the job exists
    /// and is parked: nothing is written.
    async fn requeue(&self, job: i64, change: &Change) -> Result<(), StoreError>;

    /// Parked jobs, newest first, at most `limit`: what the operator may retry.
    async fn failed(&self, limit: u32) -> Result<Vec<FailedJob>, StoreError>;

    /// Deletes the delivered (DONE) jobs last due before `before`; how many. Pending and
    /// parked jobs are kept whatever their age.
    async fn prune_delivered(&self, before: Timestamp) -> Result<u64, StoreError>;

    /// The jobs of `licenses` not delivered yet (pending, retrying or parked), in id order
    /// (the order they were written): what a license waits for. Ids without a job are left
    /// out.
    async fn open_jobs_of(&self, licenses: &[LicenseId]) -> Result<Vec<OpenJob>, StoreError>;
}

/// Where a job not delivered yet stands.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash)]
pub enum OpenJobState {
    /// Waiting for its first try (or for the first try since the operator's retry), or
    /// being tried.
    Pending,
    /// A try failed for a reason that may pass: it waits for `due_at` to be tried again.
    Retrying,
    /// Given up on (failed for good): waits for the operator's retry.
    Parked,
}

/// A job not delivered yet, for the explanation of a license waiting for its entitlement.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct OpenJob {
    pub id: i64,
    pub kind: JobKind,
    pub license: LicenseId,
    pub state: OpenJobState,
    /// Deliveries tried so far (since the operator's last retry).
    pub attempts: u32,
    pub last_error: Option<String>,
    /// When it is (or was) due to be tried.
    pub due_at: Timestamp,
}

/// A job given up on, for the operator.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct FailedJob {
    pub id: i64,
    pub kind: JobKind,
    pub license: LicenseId,
    pub attempts: u32,
    pub last_error: Option<String>,
}

/// Why an entitlement call did not succeed.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
pub enum DeliveryError {
    /// It may succeed later: a timeout, a connection error, a 5xx, a 429. `retry_after` is
    /// the far end's own hint, when it gave one.
    #[error("transient: {reason}")]
    Transient {
        reason: String,
        retry_after: Option<std::time::Duration>,
    },
    /// It can never succeed as sent: a 4xx other than the ones the contract calls success.
    #[error("permanent: {reason}")]
    Permanent { reason: String },
}

/// Irdeto's entitlements (docs/irdeto.md). Both calls are idempotent: the entitlement id is
/// the license id, so a retried call never creates a second entitlement.
///
/// Errors: [`DeliveryError`]. Granting what is already granted, and revoking what is already
/// gone, are `Ok`.
#[cfg_attr(feature = "mock", mockall::automock)]
#[async_trait]
pub trait EntitlementGateway: Send + Sync {
    /// Creates (or confirms) the entitlement of a GRANT job.
    async fn grant(&self, job: &NewEntitlementJob) -> Result<(), DeliveryError>;

    /// Deletes the entitlement of `license`.
    async fn revoke(&self, license: &LicenseId) -> Result<(), DeliveryError>;
}

/// Whether the storage answers, for the readiness probe.
#[cfg_attr(feature = "mock", mockall::automock)]
#[async_trait]
pub trait StoreHealth: Send + Sync {
    /// `Ok` when a connection can be had and answers a trivial query, and no migration is
    /// pending.
    async fn ready(&self) -> Result<(), StoreError>;
}

/// The time, injected so that tests control it.
#[cfg_attr(feature = "mock", mockall::automock)]
pub trait Clock: Send + Sync {
    fn now(&self) -> Timestamp;
}

/// New ids for licenses and products.
#[cfg_attr(feature = "mock", mockall::automock)]
pub trait IdSource: Send + Sync {
    fn license_id(&self) -> LicenseId;
    fn product_id(&self) -> ProductId;
}
