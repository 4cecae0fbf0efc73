//! Repository functions. Each takes `&mut AnyConnection`, so that several compose into one
//! transaction ([`crate::connection::write_transaction`]); none opens a transaction itself.

pub(crate) mod events;
pub(crate) mod idempotency;
pub(crate) mod jobs;
pub(crate) mod licenses;
pub(crate) mod products;
pub(crate) mod together;
pub(crate) mod webhooks;

use diesel::prelude::*;
use licenses_app::ports::{AuditEntry, Change, NewEntitlementJob};

use crate::connection::{AnyConnection, on_backend};
use crate::error::Error;
use crate::listen::Written;
use crate::models::{
    AUDIT_COLUMNS, Action, AuditRow, JOB_COLUMNS, NewAuditRow, NewJobRow, Resource,
};
use crate::schema::{audit_log, entitlement_jobs};

/// Bind parameters per statement: well under PostgreSQL's 65,535 and SQLite's 32,766.
pub(crate) const MAX_BIND_PARAMS: usize = 30_000;

/// Ids per `= ANY(…)` list. Each chunk's statement runs
/// [`unprepared`](crate::connection::unprepared): planned for its ids, never on a generic plan.
pub(crate) const IN_LIST_CHUNK: usize = 1_000;

/// One multi-row `INSERT` of `rows` into `table`. The derived `MultiConnection` cannot batch
/// inserts (SQLite's batch insert is its own implementation), so this one statement runs on
/// the backend's connection ([`on_backend`]). The rows' `None`s are bound as NULL
/// (`treat_none_as_default_value = false`): SQLite then takes all rows in one statement.
macro_rules! insert_rows {
    ($conn:expr, $table:expr, $rows:expr) => {
        $crate::connection::on_backend!($conn, |c| diesel::insert_into($table)
            .values($rows)
            .execute(c))
    };
}
pub(crate) use insert_rows;

/// Many rows into `table` (a batch): on PostgreSQL one `COPY … FROM STDIN` in the binary
/// format (diesel's `copy_from`), on SQLite one multi-row `INSERT` ([`insert_rows`]). COPY
/// streams the rows: no statement to parse and plan, no bind parameters to collect.
/// Constraint violations come back as from an `INSERT` (unique, foreign key), and a failed
/// COPY aborts the caller's transaction like a failed statement. `$rows` are `Insertable`
/// with `treat_none_as_default_value = false`, as COPY needs. A connection lost mid-COPY is
/// reported as lost ([`lost_mid_copy`](crate::error::lost_mid_copy)).
macro_rules! copy_rows {
    ($conn:expr, $table:expr, $rows:expr) => {
        match $conn {
            $crate::connection::AnyConnection::Postgresql(c) => diesel::copy_from($table)
                .from_insertable($rows)
                .execute(c)
                .map_err(|e| $crate::error::lost_mid_copy(e, c)),
            $crate::connection::AnyConnection::Sqlite(c) => {
                diesel::insert_into($table).values($rows).execute(c)
            }
        }
    };
}
pub(crate) use copy_rows;

/// Rows per multi-row INSERT of a table with `columns` columns.
pub(crate) const fn rows_per_insert(columns: usize) -> usize {
    MAX_BIND_PARAMS / columns
}

/// `ANALYZE table`: its planner statistics brought up to date (SQLite keeps them in
/// `sqlite_stat1`). A role that does not own the table gets a warning from PostgreSQL, not an
/// error, and nothing changes.
pub(crate) fn analyze(conn: &mut AnyConnection, table: &'static str) -> Result<(), Error> {
    let sql = format!("ANALYZE {table}");
    on_backend!(conn, |c| diesel::sql_query(&sql).execute(c))?;
    Ok(())
}

/// Appends one audit row per resource id, in multi-row INSERTs.
pub(crate) fn audit<'a>(
    conn: &mut AnyConnection,
    action: Action,
    resource: Resource,
    ids: impl IntoIterator<Item = &'a str>,
    change: &Change,
) -> Result<(), Error> {
    let actor = change.actor.to_string();
    let rows: Vec<NewAuditRow> = ids
        .into_iter()
        .map(|id| NewAuditRow::new(action, resource, id, change.at, &actor))
        .collect();
    if let [row] = rows.as_slice() {
        // One row (a purchase): a statement diesel keeps prepared, unlike a slice's.
        insert_rows!(conn, audit_log::table, row)?;
        return Ok(());
    }
    for chunk in rows.chunks(rows_per_insert(AUDIT_COLUMNS)) {
        copy_rows!(conn, audit_log::table, chunk)?;
    }
    Ok(())
}

/// Audits the replacement of license `old` by `new`: `action` (suspend, reinstate) on `old`,
/// `create` on `new`, each naming the other.
pub(crate) fn audit_replacement(
    conn: &mut AnyConnection,
    action: Action,
    old: &str,
    new: &str,
    change: &Change,
) -> Result<(), Error> {
    let actor = change.actor.to_string();
    let rows = [
        NewAuditRow::new(action, Resource::License, old, change.at, &actor).related(new),
        NewAuditRow::new(Action::Create, Resource::License, new, change.at, &actor).related(old),
    ];
    insert_rows!(conn, audit_log::table, &rows[..])?;
    Ok(())
}

/// The audit trail of one license, oldest first (in the order written within one second).
pub(crate) fn license_trail(conn: &mut AnyConnection, id: &str) -> Result<Vec<AuditEntry>, Error> {
    let rows: Vec<AuditRow> = on_backend!(conn, |c| audit_log::table
        .filter(audit_log::resource_type.eq(Resource::License.as_str()))
        .filter(audit_log::resource_id.eq(id))
        .order((audit_log::occurred_at.asc(), audit_log::id.asc()))
        .select(AuditRow::as_select())
        .load(c))?;
    rows.into_iter().map(AuditRow::into_entry).collect()
}

/// Queues entitlement jobs, due at once, in multi-row INSERTs.
pub(crate) fn queue_jobs(
    conn: &mut AnyConnection,
    jobs: &[NewEntitlementJob],
    change: &Change,
) -> Result<(), Error> {
    let rows: Vec<NewJobRow> = jobs.iter().map(|j| NewJobRow::new(j, change.at)).collect();
    if !rows.is_empty() {
        Written::jobs();
    }
    if let [row] = rows.as_slice() {
        insert_rows!(conn, entitlement_jobs::table, row)?;
        return Ok(());
    }
    for chunk in rows.chunks(rows_per_insert(JOB_COLUMNS)) {
        copy_rows!(conn, entitlement_jobs::table, chunk)?;
    }
    Ok(())
}
