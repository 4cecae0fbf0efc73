//! One connection type over both backends, the r2d2 manager that opens it, and the write
//! transaction every port method that writes runs in.

use std::cell::Cell;
use std::time::Duration;

use diesel::connection::{AnsiTransactionManager, CacheSize, SimpleConnection, TransactionManager};
use diesel::r2d2::R2D2Connection;
use diesel::result::Error as DieselError;
use diesel::{Connection, PgConnection, SqliteConnection};

use crate::config::{Target, one_line};
use crate::error::Error;

/// A connection to either backend. Repository functions take `&mut AnyConnection`, so that
/// several compose into one transaction; a query only one backend can express matches on the
/// variant.
#[derive(diesel::MultiConnection)]
pub enum AnyConnection {
    Postgresql(PgConnection),
    Sqlite(SqliteConnection),
}

impl std::fmt::Debug for AnyConnection {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.write_str(match self {
            Self::Postgresql(_) => "AnyConnection::Postgresql",
            Self::Sqlite(_) => "AnyConnection::Sqlite",
        })
    }
}

/// Runs `$body` with `$c` bound to the backend's own connection: the same diesel code in both
/// arms. For the hot statements: through the derived `MultiConnection`, every call renders
/// the statement's SQL again and collects its binds through a second query builder, even when
/// the statement is already prepared; on the backend's connection a statement with a static
/// query id is looked up by its type and only its binds are collected.
macro_rules! on_backend {
    ($conn:expr, |$c:ident| $body:expr) => {
        match $conn {
            $crate::connection::AnyConnection::Postgresql($c) => $body,
            $crate::connection::AnyConnection::Sqlite($c) => $body,
        }
    };
}
pub(crate) use on_backend;

/// `query`, planned for its bind values each time it runs: diesel sends it as an unnamed
/// statement instead of keeping it prepared. For a batch's `= ANY($1)` over ids: PostgreSQL
/// switches a prepared statement to a generic plan after five runs and keeps it until the
/// table's statistics change. A generic plan made while the table was small (a new database,
/// the first batches of an import) reads every row and compares it with every id of the
/// array: 0.7 s a chunk of 1,000 at 40,000 licenses, where a plan for the actual array takes
/// 5 ms. Planning each time costs a fraction of a millisecond a chunk. The hot, one-id
/// statements stay prepared.
pub(crate) fn unprepared<Q>(query: Q) -> Unprepared<Q> {
    Unprepared(query)
}

/// See [`unprepared`].
#[derive(Debug, Clone, Copy)]
pub(crate) struct Unprepared<Q>(Q);

impl<Q: diesel::query_builder::Query> diesel::query_builder::Query for Unprepared<Q> {
    type SqlType = Q::SqlType;
}

impl<Q> diesel::query_builder::QueryId for Unprepared<Q> {
    type QueryId = ();
    const HAS_STATIC_QUERY_ID: bool = false;
}

impl<DB, Q> diesel::query_builder::QueryFragment<DB> for Unprepared<Q>
where
    DB: diesel::backend::Backend,
    Q: diesel::query_builder::QueryFragment<DB>,
{
    fn walk_ast<'b>(
        &'b self,
        mut out: diesel::query_builder::AstPass<'_, 'b, DB>,
    ) -> diesel::QueryResult<()> {
        out.unsafe_to_cache_prepared();
        self.0.walk_ast(out.reborrow())
    }
}

impl<Q, Conn> diesel::RunQueryDsl<Conn> for Unprepared<Q> {}

/// Opens connections of the variant the URL's scheme names. (diesel's own
/// `ConnectionManager<AnyConnection>` would try each backend in turn, and SQLite accepts any
/// string as a file name.)
#[derive(Debug)]
pub(crate) struct Manager {
    pub(crate) target: Target,
    /// How long an SQLite writer waits for the lock before giving up (SQLITE_BUSY).
    pub(crate) busy_timeout: Duration,
    /// PostgreSQL connections keep their statements prepared.
    pub(crate) prepared_statements: bool,
}

/// A connection that could not be opened or no longer answers.
#[derive(Debug, thiserror::Error)]
pub(crate) enum ConnectError {
    #[error("{}", one_line(&.0.to_string()))]
    Connect(#[from] diesel::ConnectionError),
    #[error("{}", one_line(&.0.to_string()))]
    Query(#[from] DieselError),
}

impl Manager {
    pub(crate) fn open(&self) -> Result<AnyConnection, ConnectError> {
        match &self.target {
            Target::Postgres { url, .. } => {
                let mut conn = PgConnection::establish(url)?;
                if !self.prepared_statements {
                    conn.set_prepared_statement_cache_size(CacheSize::Disabled);
                }
                Ok(AnyConnection::Postgresql(conn))
            }
            Target::Sqlite { path } => {
                let path = path.to_str().ok_or_else(|| {
                    diesel::ConnectionError::InvalidConnectionUrl(
                        "the SQLite path is not UTF-8".into(),
                    )
                })?;
                let mut conn = SqliteConnection::establish(path)?;
                // busy_timeout first: switching to WAL needs the lock. foreign_keys is off by
                // default in SQLite and is per connection. synchronous stays FULL: a commit
                // the API acknowledged survives a power loss.
                conn.batch_execute(&format!(
                    "PRAGMA busy_timeout = {};
                     PRAGMA foreign_keys = ON;
                     PRAGMA journal_mode = WAL;",
                    self.busy_timeout.as_millis()
                ))?;
                Ok(AnyConnection::Sqlite(conn))
            }
        }
    }
}

/// A pooled connection, and whether a call on it saw the server gone.
///
/// Connections are not tested at checkout (that cost a round trip per store call): a
/// connection a database restart broke fails its next call, which then answers
/// [`StoreError::Unavailable`](licenses_app::ports::StoreError::Unavailable), is marked lost
/// here, and the pool drops it rather than handing it out again.
#[derive(Debug)]
pub(crate) struct Pooled {
    pub(crate) conn: AnyConnection,
    pub(crate) lost: bool,
}

impl Pooled {
    /// Marks the connection lost when `error` says the server closed it or cannot be reached,
    /// or when the call went on past such an error ([`went_on_without`]).
    pub(crate) fn notice<T>(&mut self, result: &Result<T, Error>) {
        let went_on = LOST_UNSAID.take();
        if went_on || result.as_ref().err().is_some_and(is_lost) {
            self.lost = true;
        }
    }
}

fn is_lost(error: &Error) -> bool {
    matches!(error, Error::Db(e) if crate::error::is_lost_connection(e))
}

thread_local! {
    /// A call on this thread lost its connection but did not fail for it: a store call runs
    /// on one blocking thread, from checkout to [`Pooled::notice`].
    static LOST_UNSAID: Cell<bool> = const { Cell::new(false) };
}

/// For a call that handles `error` and goes on (a write that committed before its
/// connection was lost still answers): when the error lost the connection, the pool drops
/// it all the same, rather than hand it to the next call to fail on.
pub(crate) fn went_on_without(error: &Error) {
    if is_lost(error) {
        LOST_UNSAID.set(true);
    }
}

impl r2d2::ManageConnection for Manager {
    type Connection = Pooled;
    type Error = ConnectError;

    fn connect(&self) -> Result<Pooled, ConnectError> {
        Ok(Pooled {
            conn: self.open()?,
            lost: false,
        })
    }

    /// Only used when the pool tests connections (it does not: see [`Pooled`]).
    fn is_valid(&self, pooled: &mut Pooled) -> Result<(), ConnectError> {
        pooled.conn.ping().map_err(ConnectError::from)
    }

    /// Run when a connection comes back to the pool: one whose server went away, or whose
    /// transaction could not be ended, is dropped and replaced.
    fn has_broken(&self, pooled: &mut Pooled) -> bool {
        pooled.lost || pooled.conn.is_broken()
    }
}

/// Logs what the pool could not do in the background (it retries by itself), naming the
/// database (its URL without password).
#[derive(Debug)]
pub(crate) struct LogErrors {
    pub(crate) database: String,
    pub(crate) role: Role,
}

/// What a pool's database is to the service.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub(crate) enum Role {
    /// `database.url`: a failure is news.
    Primary,
    /// One of `database.replicas`: the probes already log it going out and coming back
    /// once each, so the pool's retries while it is out go to debug.
    Replica,
}

impl r2d2::HandleError<ConnectError> for LogErrors {
    fn handle_error(&self, error: ConnectError) {
        let database = &self.database;
        match self.role {
            Role::Primary => tracing::warn!(database, %error, "database connection failed"),
            Role::Replica => tracing::debug!(database, %error, "replica connection failed"),
        }
    }
}

/// Runs `f` in a transaction: committed when it returns `Ok`, rolled back otherwise.
///
/// On SQLite the transaction is `BEGIN IMMEDIATE`: it takes the write lock up front (waiting
/// up to `busy_timeout`) instead of failing with SQLITE_BUSY when a read turns into a write
/// while another connection writes.
pub(crate) fn write_transaction<T>(
    conn: &mut AnyConnection,
    f: impl FnOnce(&mut AnyConnection) -> Result<T, Error>,
) -> Result<T, Error> {
    match conn {
        AnyConnection::Sqlite(c) => {
            AnsiTransactionManager::begin_transaction_sql(c, "BEGIN IMMEDIATE")?;
        }
        AnyConnection::Postgresql(c) => {
            <AnsiTransactionManager as TransactionManager<PgConnection>>::begin_transaction(c)?;
        }
    }
    match f(conn) {
        Ok(value) => {
            <AnyConnection as TransactionManager<AnyConnection>>::commit_transaction(conn)?;
            Ok(value)
        }
        Err(error) => {
            match <AnyConnection as TransactionManager<AnyConnection>>::rollback_transaction(conn) {
                Ok(()) | Err(DieselError::BrokenTransactionManager) => Err(error),
                Err(rollback) => {
                    tracing::warn!(%rollback, "rollback failed");
                    Err(error)
                }
            }
        }
    }
}
