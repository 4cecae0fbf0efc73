//! Storage adapter: diesel + r2d2 on PostgreSQL (production) and SQLite (embedded).
//!
//! [`Store`] implements the storage ports of `licenses_app::ports` ([`ProductStore`],
//! [`LicenseStore`], [`IdempotencyStore`], [`StoreHealth`]) over one connection type,
//! [`AnyConnection`], and one [`schema`] shared by both backends. The variant is chosen from
//! the scheme of `database.url`: `sqlite://PATH` or `postgres://…` / `postgresql://…`.
//!
//! - Every diesel call runs on tokio's blocking pool, at most `pool_size` at once, and
//!   answers [`StoreError::Unavailable`] once `checkout_timeout` has passed without a
//!   connection: an exhausted pool or a database that is down never hangs a request.
//! - Every write is one transaction, with its audit rows (`audit_log`, append-only), its
//!   idempotency record and its entitlement jobs.
//! - Migrations are embedded, one set per backend ([`Store::migrate`]).
//!
//! [`ProductStore`]: licenses_app::ports::ProductStore
//! [`LicenseStore`]: licenses_app::ports::LicenseStore
//! [`IdempotencyStore`]: licenses_app::ports::IdempotencyStore
//! [`StoreHealth`]: licenses_app::ports::StoreHealth
//! [`StoreError::Unavailable`]: licenses_app::ports::StoreError::Unavailable

mod config;
mod connection;
pub mod consistency;
mod error;
mod gather;
pub mod listen;
mod migrate;
mod models;
mod replicas;
mod repo;
mod road;
pub mod schema;
mod store;

pub use config::{Backend, OpenError, StoreConfig};
pub use connection::AnyConnection;
pub use consistency::{InvalidLsn, Lsn, ReadScope};
pub use migrate::{POSTGRES_MIGRATIONS, SQLITE_MIGRATIONS};
pub use replicas::HISTORY as REPLICA_LAG_HISTORY;
pub use store::{PROBE_EVERY, PoolState, ReadCounts, ReplicaState, Store};
