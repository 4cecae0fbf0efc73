//! Translation of infrastructure errors into the ports' [`StoreError`].

use diesel::result::{DatabaseErrorKind, Error as DieselError};
use licenses_app::ports::StoreError;

use crate::config::one_line;

/// An error inside the adapter: a driver error not yet translated, or a translated one.
#[derive(Debug)]
pub(crate) enum Error {
    Db(DieselError),
    Store(StoreError),
}

impl From<DieselError> for Error {
    fn from(e: DieselError) -> Self {
        Self::Db(e)
    }
}

impl From<StoreError> for Error {
    fn from(e: StoreError) -> Self {
        Self::Store(e)
    }
}

impl From<Error> for StoreError {
    fn from(e: Error) -> Self {
        match e {
            Error::Store(e) => e,
            Error::Db(e) => translate(&e),
        }
    }
}

impl Error {
    /// The port's error for this one, leaving it whole (for the pool to judge the
    /// connection by it afterwards).
    pub(crate) fn to_store_error(&self) -> StoreError {
        match self {
            Error::Store(e) => e.clone(),
            Error::Db(e) => translate(e),
        }
    }
}

/// A row that no longer maps to a domain value: corrupt data, never a panic.
pub(crate) fn corrupt(what: impl std::fmt::Display) -> Error {
    Error::Store(StoreError::Internal(format!("corrupt row: {what}")))
}

/// The translation every error gets unless its call site knows better (a unique violation
/// there becomes the [`Conflict`](licenses_app::ports::Conflict) it means).
///
/// A lost connection, a failed send, a serialization failure (retryable) and a busy SQLite
/// database are [`StoreError::Unavailable`]; anything else is [`StoreError::Internal`].
pub(crate) fn translate(e: &DieselError) -> StoreError {
    match e {
        DieselError::DatabaseError(
            DatabaseErrorKind::ClosedConnection
            | DatabaseErrorKind::UnableToSendCommand
            | DatabaseErrorKind::SerializationFailure,
            info,
        ) => StoreError::Unavailable(one_line(info.message())),
        DieselError::DatabaseError(_, info) if is_busy(info.message()) => {
            StoreError::Unavailable(one_line(info.message()))
        }
        _ => StoreError::Internal(one_line(&e.to_string())),
    }
}

/// Whether `e` says the server closed the connection or cannot be reached: the connection is
/// gone, and the pool must not hand it out again.
pub(crate) fn is_lost_connection(e: &DieselError) -> bool {
    matches!(
        e,
        DieselError::DatabaseError(
            DatabaseErrorKind::ClosedConnection | DatabaseErrorKind::UnableToSendCommand,
            _,
        )
    )
}

/// `e`, or the connection's own loss when `e` hid it. diesel reports a connection lost while
/// a COPY's rows are being sent as an unknown error (libpq's "server closed the connection
/// unexpectedly", from sending), where its statements look at the connection and say
/// [`DatabaseErrorKind::ClosedConnection`]. After an unknown error this asks the connection:
/// when it is gone, the answer is that error, which [`translate`] reads as unavailable (503,
/// try again) rather than internal. A live connection answers, or refuses while its
/// transaction is aborted: then `e` stands.
pub(crate) fn lost_mid_copy(e: DieselError, conn: &mut diesel::PgConnection) -> DieselError {
    use diesel::RunQueryDsl;
    if !matches!(e, DieselError::DatabaseError(DatabaseErrorKind::Unknown, _)) {
        return e;
    }
    match diesel::sql_query("SELECT 1").execute(conn) {
        Err(lost) if is_lost_connection(&lost) => lost,
        _ => e,
    }
}

/// SQLite's SQLITE_BUSY and SQLITE_LOCKED, which diesel reports as unknown errors.
fn is_busy(message: &str) -> bool {
    message.contains("database is locked")
        || message.contains("database table is locked")
        || message.contains("database is busy")
}

/// Whether `e` is a unique violation.
pub(crate) fn is_unique_violation(e: &DieselError) -> bool {
    matches!(
        e,
        DieselError::DatabaseError(DatabaseErrorKind::UniqueViolation, _)
    )
}

/// Whether `e` is a foreign key violation.
pub(crate) fn is_foreign_key_violation(e: &DieselError) -> bool {
    matches!(
        e,
        DieselError::DatabaseError(DatabaseErrorKind::ForeignKeyViolation, _)
    )
}

/// Whether a unique violation is about the given column (PostgreSQL names the constraint,
/// SQLite the columns: `UNIQUE constraint failed: licenses.user_id, licenses.order_id`).
pub(crate) fn violation_mentions(e: &DieselError, column: &str) -> bool {
    match e {
        DieselError::DatabaseError(_, info) => {
            info.constraint_name().is_some_and(|c| c.contains(column))
                || info.message().contains(column)
        }
        _ => false,
    }
}

#[cfg(test)]
pub(crate) mod tests {
    use diesel::{Connection, PgConnection, RunQueryDsl};
    use licenses_testkit::TestDatabase;

    use super::*;

    /// The server process of `conn`'s session.
    pub(crate) fn backend_pid(conn: &mut PgConnection) -> i32 {
        #[derive(diesel::QueryableByName)]
        struct Pid {
            #[diesel(sql_type = diesel::sql_types::Integer)]
            pid: i32,
        }
        diesel::sql_query("SELECT pg_backend_pid() AS pid")
            .get_result::<Pid>(conn)
            .expect("its pid")
            .pid
    }

    #[test]
    fn a_session_ended_by_the_server_is_unavailable_not_internal() {
        let db = TestDatabase::postgres();
        let mut victim = PgConnection::establish(db.url()).expect("a session");
        let pid = backend_pid(&mut victim);
        let url = db.url().to_owned();
        // What a fast shutdown or restart sends every session: 57P01, admin_shutdown. diesel
        // drains the results before it looks at the connection, so it sees the socket closed
        // and reports ClosedConnection rather than an unknown error.
        let terminator = std::thread::spawn(move || {
            let mut admin = PgConnection::establish(&url).expect("another session");
            std::thread::sleep(std::time::Duration::from_millis(300));
            diesel::sql_query(format!("SELECT pg_terminate_backend({pid})"))
                .execute(&mut admin)
                .expect("terminated");
        });
        let cut = diesel::sql_query("SELECT pg_sleep(30)")
            .execute(&mut victim)
            .expect_err("the session is ended meanwhile");
        terminator.join().expect("the terminator");
        assert!(
            matches!(translate(&cut), StoreError::Unavailable(_)),
            "a session ended by the server"
        );
    }

    /// What diesel's COPY says when sending its rows fails: an unknown error, whatever the
    /// cause. The connection is asked: alive, the error stands (a 500 if nothing else knows
    /// better); gone, it is the loss (a 503).
    #[test]
    fn an_unknown_error_of_a_lost_connection_is_its_loss() {
        let db = TestDatabase::postgres();
        let mut conn = PgConnection::establish(db.url()).expect("a session");
        let unknown = || {
            DieselError::DatabaseError(
                DatabaseErrorKind::Unknown,
                Box::new("server closed the connection unexpectedly".to_owned()),
            )
        };
        let alive = lost_mid_copy(unknown(), &mut conn);
        assert!(
            matches!(translate(&alive), StoreError::Internal(_)),
            "a live connection: {alive:?}"
        );
        let pid = backend_pid(&mut conn);
        let mut admin = PgConnection::establish(db.url()).expect("another session");
        diesel::sql_query(format!("SELECT pg_terminate_backend({pid})"))
            .execute(&mut admin)
            .expect("terminated");
        let lost = lost_mid_copy(unknown(), &mut conn);
        assert!(
            matches!(translate(&lost), StoreError::Unavailable(_)),
            "a lost connection: {lost:?}"
        );
    }
}
