//! Reading a PostgreSQL database behind the back of the code under test: waiting for a row,
//! and counting what was stored.

use std::time::{Duration, Instant};

use diesel::{Connection, PgConnection, RunQueryDsl};

/// Runs `sql` against the PostgreSQL database at `url` every few milliseconds, on one
/// connection, until it returns a row (true) or `within` has passed (false): how a test
/// waits for a state of the database it cannot see through the service.
///
/// # Panics
/// When the database does not answer or the query fails.
pub fn wait_for_row(url: &str, sql: &str, within: Duration) -> bool {
    let mut conn =
        PgConnection::establish(url).unwrap_or_else(|e| panic!("cannot connect to {url}: {e}"));
    let deadline = Instant::now() + within;
    while Instant::now() < deadline {
        let rows = diesel::sql_query(sql)
            .execute(&mut conn)
            .unwrap_or_else(|e| panic!("{sql}: {e}"));
        if rows > 0 {
            return true;
        }
        std::thread::sleep(Duration::from_millis(1));
    }
    false
}

/// The column `value` (text) of every row `sql` returns (`SELECT order_id AS value …`), from
/// the PostgreSQL database at `url`: how a test counts what was stored, behind the service's
/// back.
///
/// # Panics
/// When the database does not answer or the query fails.
pub fn query_strings(url: &str, sql: &str) -> Vec<String> {
    #[derive(diesel::QueryableByName)]
    struct Row {
        #[diesel(sql_type = diesel::sql_types::Text)]
        value: String,
    }
    let mut conn =
        PgConnection::establish(url).unwrap_or_else(|e| panic!("cannot connect to {url}: {e}"));
    diesel::sql_query(sql)
        .load::<Row>(&mut conn)
        .unwrap_or_else(|e| panic!("{sql}: {e}"))
        .into_iter()
        .map(|r| r.value)
        .collect()
}
