//! Idempotency records.

use diesel::prelude::*;
use licenses_app::ports::{Conflict, IdempotencyRecord, StoreError};
use licenses_domain::Timestamp;

use crate::connection::{AnyConnection, on_backend};
use crate::error::{Error, is_unique_violation, violation_mentions};
use crate::models::IdempotencyRow;
use crate::repo::insert_rows;
use crate::schema::idempotency_keys;

/// Keeps a record; [`Conflict::IdempotencyKeyTaken`] when the (scope, key) is recorded.
pub(crate) fn insert(conn: &mut AnyConnection, record: &IdempotencyRecord) -> Result<(), Error> {
    let row = IdempotencyRow::from_domain(record);
    insert_rows!(conn, idempotency_keys::table, &row)
        .map_err(|e| key_taken(e).unwrap_or_else(Error::Db))?;
    Ok(())
}

/// [`Conflict::IdempotencyKeyTaken`] when `e` refused a (scope, key) already recorded, from
/// this insert or from a statement that holds it; else `e` back.
pub(crate) fn key_taken(e: diesel::result::Error) -> Result<Error, diesel::result::Error> {
    if is_unique_violation(&e) && violation_mentions(&e, "idempotency_keys") {
        Ok(Error::Store(StoreError::Conflict(
            Conflict::IdempotencyKeyTaken,
        )))
    } else {
        Err(e)
    }
}

pub(crate) fn find(
    conn: &mut AnyConnection,
    scope: &str,
    key: &str,
) -> Result<Option<IdempotencyRecord>, Error> {
    on_backend!(conn, |c| idempotency_keys::table
        .filter(idempotency_keys::scope.eq(scope))
        .filter(idempotency_keys::key.eq(key))
        .select(IdempotencyRow::as_select())
        .first(c)
        .optional())?
    .map(IdempotencyRow::into_domain)
    .transpose()
}

/// Deletes the records created before `before`; how many.
pub(crate) fn prune(conn: &mut AnyConnection, before: Timestamp) -> Result<u64, Error> {
    let n = diesel::delete(
        idempotency_keys::table.filter(idempotency_keys::created_at.lt(before.unix())),
    )
    .execute(conn)?;
    Ok(u64::try_from(n).unwrap_or(u64::MAX))
}
