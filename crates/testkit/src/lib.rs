//! Test support: a fresh database per test, dropped afterwards; PostgreSQL clusters a test may
//! stop; free ports; reading a database behind the service's back; and the `licenses` binary
//! started as a service.
//!
//! - `database`: [`TestDatabase`], a PostgreSQL database or SQLite file of the test's own;
//! - `cluster`: PostgreSQL clusters started from the installed binaries, [`PrivateCluster`],
//!   and streaming replicas of them ([`PrivateCluster::replica_of`]);
//! - `ports`: [`free_port`], a free TCP port on 127.0.0.1;
//! - `queries`: [`wait_for_row`] and [`query_strings`], the database behind the service's back;
//! - `service`: [`ServiceProcess`], the `licenses` binary serving on free ports, ready, killed
//!   when dropped; [`isolated_command`] for its one-shot commands;
//! - `haproxy`: [`Haproxy`], a real haproxy balancing over service instances;
//! - `pgbouncer`: [`Pgbouncer`], a real pgbouncer in transaction mode in front of a cluster;
//! - `nats`: [`NatsServer`], a real `nats-server -js` on a free port with its own store,
//!   which a test may kill and restart;
//! - `tls`: [`TestCa`], a certificate authority of the test's own and the server and client
//!   certificates it issues (rcgen), for TLS tests.
//!
//! ```no_run
//! let db = licenses_testkit::TestDatabase::postgres(); // or ::sqlite()
//! let url: &str = db.url(); // give it to the code under test
//! // dropped at the end of the test: DROP DATABASE … WITH (FORCE) / the file is removed
//! ```
//!
//! How PostgreSQL is found, once per test process:
//! 1. `DATABASE_URL` (default `postgres://postgres@localhost:5432/postgres`), if that server
//!    answers: each test database is created there with `CREATE DATABASE test_<random>`.
//! 2. Otherwise, if PostgreSQL is installed (`initdb` and `postgres` on `PATH` or under
//!    `/usr/lib/postgresql/*/bin`), a private throwaway cluster: a temporary directory, a
//!    free port on 127.0.0.1, trust authentication, its unix socket in that directory. A small
//!    watchdog stops it and removes the directory once the test process is gone. As root, the
//!    cluster runs as the `postgres` user (initdb and postgres refuse to run as root).
//! 3. Otherwise the test panics with one line saying how to get PostgreSQL.
//!
//! Outage tests need a server they may stop: [`PrivateCluster`] is a cluster of the test's
//! own (initdb + pg_ctl, its own directory and port), never the shared server.

mod cluster;
mod database;
mod haproxy;
mod nats;
mod pgbouncer;
mod ports;
mod queries;
mod service;
mod tls;

pub use cluster::{Frozen, PrivateCluster};
pub use database::{DEFAULT_DATABASE_URL, NO_POSTGRES, TestDatabase};
pub use haproxy::Haproxy;
pub use nats::NatsServer;
pub use pgbouncer::Pgbouncer;
pub use ports::free_port;
pub use queries::{query_strings, wait_for_row};
pub use service::{ServiceBuilder, ServiceProcess, isolated_command};
pub use tls::{CertifiedKey, TestCa};
