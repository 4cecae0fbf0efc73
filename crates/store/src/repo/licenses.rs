//! Licenses.

use std::collections::HashSet;

use diesel::prelude::*;
use diesel::sql_types::Bool;
use licenses_app::events::EventType;
use licenses_app::ports::{Change, Conflict, LicenseQuery, NewEntitlementJob, StoreError};
use licenses_domain::{License, LicenseId, LicenseStatus, OrderId, Timestamp, UserId};

use crate::connection::{AnyConnection, on_backend, unprepared};
use crate::error::{Error, is_foreign_key_violation, is_unique_violation, violation_mentions};
use crate::listen::Written;
use crate::models::{
    Action, IdempotencyRow, LICENSE_COLUMNS, LicenseRow, NewAuditRow, NewJobRow, Resource,
};
use crate::repo::events::NewEventRow;
use crate::repo::idempotency;
use crate::repo::together::Together;
use crate::repo::{IN_LIST_CHUNK, copy_rows, insert_rows, rows_per_insert};
use crate::schema::{audit_log, entitlement_jobs, events, idempotency_keys, licenses};

type Db = <AnyConnection as diesel::Connection>::Backend;
type Condition = Box<dyn BoxableExpression<licenses::table, Db, SqlType = Bool>>;

pub(crate) fn get(conn: &mut AnyConnection, id: &LicenseId) -> Result<Option<License>, Error> {
    on_backend!(conn, |c| licenses::table
        .find(id.as_str())
        .select(LicenseRow::as_select())
        .first(c)
        .optional())?
    .map(LicenseRow::into_domain)
    .transpose()
}

/// The licenses among `ids` that exist, in chunks of [`IN_LIST_CHUNK`].
pub(crate) fn find_by_ids(
    conn: &mut AnyConnection,
    ids: &[LicenseId],
) -> Result<Vec<License>, Error> {
    let ids: Vec<&str> = ids.iter().map(LicenseId::as_str).collect();
    let mut found = Vec::with_capacity(ids.len());
    for chunk in ids.chunks(IN_LIST_CHUNK) {
        let rows: Vec<LicenseRow> = unprepared(
            licenses::table
                .filter(licenses::id.eq_any(chunk))
                .select(LicenseRow::as_select()),
        )
        .load(conn)?;
        for row in rows {
            found.push(row.into_domain()?);
        }
    }
    Ok(found)
}

/// Every license of `users`, by user and in id order, in one statement (a prepared
/// `= ANY($1)` on PostgreSQL, read in the order of the `(user_id, id)` index, with no sort);
/// `None` when they are more than `max_rows`.
pub(crate) fn of_users(
    conn: &mut AnyConnection,
    users: &[&str],
    max_rows: usize,
) -> Result<Option<Vec<LicenseRow>>, Error> {
    if users.is_empty() {
        return Ok(Some(Vec::new()));
    }
    let over = i64::try_from(max_rows).unwrap_or(i64::MAX - 1) + 1;
    let rows: Vec<LicenseRow> = on_backend!(conn, |c| licenses::table
        .select(LicenseRow::as_select())
        .filter(licenses::user_id.eq_any(users))
        .order((licenses::user_id.asc(), licenses::id.asc()))
        .limit(over)
        .load(c))?;
    Ok((rows.len() <= max_rows).then_some(rows))
}

/// `stop_date IS NULL OR stop_date > t`: not yet expired at `t`.
fn running_at(t: i64) -> Condition {
    // `assume_not_null` only changes the SQL type (the comparison is reached for non-NULL
    // stop dates only), so that the conditions stay plain Bool.
    Box::new(
        licenses::stop_date
            .is_null()
            .or(licenses::stop_date.assume_not_null().gt(t)),
    )
}

/// The statuses filter, as [`License::status_at`] reads them at `now`: EXPIRED is
/// `stop_date <= now`; any other status is that stored status while not expired.
fn status_condition(statuses: &[LicenseStatus], now: Timestamp) -> Option<Condition> {
    let now = now.unix();
    let stored: Vec<String> = statuses
        .iter()
        .filter(|s| **s != LicenseStatus::Expired)
        .map(|s| s.as_str().to_owned())
        .collect();
    let mut condition: Option<Condition> = None;
    if !stored.is_empty() {
        condition = Some(Box::new(
            licenses::status.eq_any(stored).and(running_at(now)),
        ));
    }
    if statuses.contains(&LicenseStatus::Expired) {
        let expired: Condition = Box::new(
            licenses::stop_date
                .is_not_null()
                .and(licenses::stop_date.assume_not_null().le(now)),
        );
        condition = Some(match condition {
            Some(c) => Box::new(c.or(expired)),
            None => expired,
        });
    }
    condition
}

/// [`License::is_effective_at`]: ACTIVE, started, not expired.
fn effective_at(at: Timestamp) -> Condition {
    let at = at.unix();
    Box::new(
        licenses::status
            .eq(LicenseStatus::Active.as_str())
            .and(licenses::start_date.le(at))
            .and(running_at(at)),
    )
}

/// One page of licenses matching `q`, in id order after `q.after` (keyset pagination).
pub(crate) fn find(conn: &mut AnyConnection, q: &LicenseQuery) -> Result<Vec<License>, Error> {
    if let (Some(user), None, true) = (&q.user, &q.product, q.statuses.is_empty()) {
        return of_user(conn, user, q);
    }
    let mut query = licenses::table
        .select(LicenseRow::as_select())
        .into_boxed::<Db>();
    if let Some(user) = &q.user {
        query = query.filter(licenses::user_id.eq(user.as_str().to_owned()));
    }
    if let Some(product) = &q.product {
        query = query.filter(licenses::product_id.eq(product.as_str().to_owned()));
    }
    if let Some(condition) = status_condition(&q.statuses, q.now) {
        query = query.filter(condition);
    }
    if let Some(at) = q.active_at {
        query = query.filter(effective_at(at));
    }
    if let Some(after) = &q.after {
        query = query.filter(licenses::id.gt(after.as_str().to_owned()));
    }
    query
        .order(licenses::id.asc())
        .limit(i64::from(q.limit))
        .load(conn)?
        .into_iter()
        .map(LicenseRow::into_domain)
        .collect()
}

/// [`find`] for the user API's reads, the hottest queries of the service: one user's
/// licenses (GetUserLicenses), or those effective at a time (entitlements). The same
/// conditions as [`find`]'s, written unboxed so that diesel keeps each as a prepared
/// statement: a boxed query is parsed and planned again on every call.
fn of_user(
    conn: &mut AnyConnection,
    user: &UserId,
    q: &LicenseQuery,
) -> Result<Vec<License>, Error> {
    // Every id sorts after the empty string: one statement with or without a cursor.
    let after = q.after.as_ref().map_or("", LicenseId::as_str);
    // The statement is written inside each backend's arm: `as_select` is typed by the
    // backend it loads from.
    let (user, limit) = (user.as_str(), i64::from(q.limit));
    let rows: Vec<LicenseRow> = match q.active_at {
        None => on_backend!(conn, |c| licenses::table
            .select(LicenseRow::as_select())
            .filter(licenses::user_id.eq(user))
            .filter(licenses::id.gt(after))
            .order(licenses::id.asc())
            .limit(limit)
            .load(c))?,
        Some(at) => {
            let at = at.unix();
            on_backend!(conn, |c| licenses::table
                .select(LicenseRow::as_select())
                .filter(licenses::user_id.eq(user))
                .filter(licenses::id.gt(after))
                .filter(licenses::status.eq(LicenseStatus::Active.as_str()))
                .filter(licenses::start_date.le(at))
                .filter(
                    licenses::stop_date
                        .is_null()
                        .or(licenses::stop_date.assume_not_null().gt(at)),
                )
                .order(licenses::id.asc())
                .limit(limit)
                .load(c))?
        }
    };
    rows.into_iter().map(LicenseRow::into_domain).collect()
}

/// Positions of licenses whose (user, order id) is already stored, or taken by an earlier
/// license of the same batch. One query per chunk of the batch.
pub(crate) fn duplicate_orders(
    conn: &mut AnyConnection,
    batch: &[License],
) -> Result<Vec<usize>, Error> {
    let with_order: Vec<(usize, &str, &str)> = batch
        .iter()
        .enumerate()
        .filter_map(|(i, l)| l.order_id().map(|o| (i, l.user().as_str(), o.as_str())))
        .collect();
    let mut positions = Vec::new();
    let mut seen: HashSet<(&str, &str)> = HashSet::new();
    for &(i, user, order) in &with_order {
        if !seen.insert((user, order)) {
            positions.push(i);
        }
    }
    let pairs: Vec<(&str, &str)> = with_order.iter().map(|&(_, u, o)| (u, o)).collect();
    positions.extend(
        stored_pairs(conn, &pairs)?
            .into_iter()
            .map(|k| with_order[k].0),
    );
    positions.sort_unstable();
    positions.dedup();
    Ok(positions)
}

/// Positions (ascending) of the `(user, order id)` pairs already stored ([`stored_pairs`]).
pub(crate) fn existing_orders(
    conn: &mut AnyConnection,
    orders: &[(UserId, OrderId)],
) -> Result<Vec<usize>, Error> {
    let pairs: Vec<(&str, &str)> = orders
        .iter()
        .map(|(u, o)| (u.as_str(), o.as_str()))
        .collect();
    stored_pairs(conn, &pairs)
}

/// Positions (ascending) of the `(user, order id)` pairs already stored. Read-only: one query
/// per chunk of [`IN_LIST_CHUNK`] pairs, on the users alone (an index scan of
/// `(user_id, order_id)`), narrowed to the exact pairs here. Filtering on the order ids too
/// lets PostgreSQL probe every user × order combination of the chunk: a million index
/// searches for a thousand new licenses, half a second each chunk of a batch_create.
fn stored_pairs(conn: &mut AnyConnection, pairs: &[(&str, &str)]) -> Result<Vec<usize>, Error> {
    let mut positions = Vec::new();
    for (n, chunk) in pairs.chunks(IN_LIST_CHUNK).enumerate() {
        let mut users: Vec<&str> = chunk.iter().map(|&(u, _)| u).collect();
        users.sort_unstable();
        users.dedup();
        let stored: HashSet<(String, String)> = unprepared(
            licenses::table
                .filter(licenses::user_id.eq_any(users))
                .filter(licenses::order_id.is_not_null())
                .select((licenses::user_id, licenses::order_id.assume_not_null())),
        )
        .load::<(String, String)>(conn)?
        .into_iter()
        .collect();
        if stored.is_empty() {
            continue;
        }
        let offset = n * IN_LIST_CHUNK;
        positions.extend(chunk.iter().enumerate().filter_map(|(i, &(u, o))| {
            stored
                .contains(&(u.to_owned(), o.to_owned()))
                .then_some(offset + i)
        }));
    }
    Ok(positions)
}

/// Inserts every license (a batch by [`copy_rows`]): a reused order id is refused by the
/// unique index on `(user_id, order_id)`, as [`Conflict::DuplicateOrders`], with `[0]` for a
/// single license and no positions for a batch (the caller names them after the rollback,
/// with [`duplicate_orders`]); [`Conflict::DuplicateId`]; [`Conflict::ProductGone`] when a
/// product does not exist.
///
/// Nothing is read first: a batch that goes in, the usual case, costs no query per chunk of
/// its orders, and a single license (a purchase) is one statement diesel keeps prepared.
pub(crate) fn insert(
    conn: &mut AnyConnection,
    batch: &[License],
    at: Timestamp,
) -> Result<(), Error> {
    if let [license] = batch {
        let row = LicenseRow::from_domain(license, at);
        return insert_rows!(&mut *conn, licenses::table, &row)
            .map(drop)
            .map_err(|e| refused(e, 1));
    }
    // Rows made chunk by chunk: a copy of one chunk in memory, not of the whole batch.
    for chunk in batch.chunks(rows_per_insert(LICENSE_COLUMNS)) {
        let rows: Vec<LicenseRow> = chunk
            .iter()
            .map(|l| LicenseRow::from_domain(l, at))
            .collect();
        copy_rows!(&mut *conn, licenses::table, &rows).map_err(|e| refused(e, batch.len()))?;
    }
    Ok(())
}

/// Why the store refused licenses (a batch of `count`), as [`insert`] says.
fn refused(e: diesel::result::Error, count: usize) -> Error {
    let conflict = if is_unique_violation(&e) {
        if violation_mentions(&e, "order_id") {
            let positions = if count == 1 { vec![0] } else { Vec::new() };
            Conflict::DuplicateOrders(positions)
        } else {
            Conflict::DuplicateId
        }
    } else if is_foreign_key_violation(&e) {
        Conflict::ProductGone
    } else {
        return Error::Db(e);
    };
    Error::Store(StoreError::Conflict(conflict))
}

/// PostgreSQL: one license and all its creation writes (its change's idempotency record, the
/// license, its `license.created` event, its Irdeto jobs and its audit row) as one statement
/// ([`Together`]), sent outside a transaction: one round trip where a transaction of
/// [`insert`] and the others took seven (BEGIN, five inserts, COMMIT). Refused as [`insert`]
/// refuses one license, and with [`Conflict::IdempotencyKeyTaken`] for a used key.
pub(crate) fn create_alone(
    pg: &mut PgConnection,
    license: &License,
    jobs: &[NewEntitlementJob],
    change: &Change,
) -> Result<(), Error> {
    let row = LicenseRow::from_domain(license, change.at);
    let event = NewEventRow::license(EventType::LicenseCreated, &row, change.at)?;
    let idempotency = change.idempotency.as_ref().map(IdempotencyRow::from_domain);
    let jobs: Vec<NewJobRow> = jobs.iter().map(|j| NewJobRow::new(j, change.at)).collect();
    let actor = change.actor.to_string();
    let audit = NewAuditRow::new(
        Action::Create,
        Resource::License,
        &row.id,
        change.at,
        &actor,
    );

    // In the transaction's order: the key first, as a retry's wait is for the key.
    let license = diesel::insert_into(licenses::table).values(&row);
    let mut statement = match &idempotency {
        Some(record) => {
            Together::new(diesel::insert_into(idempotency_keys::table).values(record)).and(license)
        }
        None => Together::new(license),
    }
    .and(diesel::insert_into(events::table).values(&event));
    for job in &jobs {
        statement = statement.and(diesel::insert_into(entitlement_jobs::table).values(job));
    }
    statement = statement.and(diesel::insert_into(audit_log::table).values(&audit));
    statement
        .execute(pg)
        .map_err(|e| idempotency::key_taken(e).unwrap_or_else(|e| refused(e, 1)))?;
    Written::events();
    if !jobs.is_empty() {
        Written::jobs();
    }
    Ok(())
}

/// Deletes every license: [`StoreError::MissingItems`] with the positions of the ids that do
/// not exist (the caller rolls the transaction back). `DELETE … RETURNING` in chunks: what
/// was deleted is exactly what existed, even against a concurrent delete; the rows, in id
/// order, are what the events of the deletion show.
pub(crate) fn delete(
    conn: &mut AnyConnection,
    ids: &[LicenseId],
) -> Result<Vec<LicenseRow>, Error> {
    let mut unique: Vec<&str> = ids.iter().map(LicenseId::as_str).collect();
    unique.sort_unstable();
    unique.dedup();
    let mut deleted: Vec<LicenseRow> = Vec::with_capacity(unique.len());
    for chunk in unique.chunks(IN_LIST_CHUNK) {
        let gone: Vec<LicenseRow> = on_backend!(&mut *conn, |c| unprepared(
            diesel::delete(licenses::table.filter(licenses::id.eq_any(chunk)))
                .returning(LicenseRow::as_returning())
        )
        .get_results(c))?;
        deleted.extend(gone);
    }
    if deleted.len() < unique.len() {
        let found: HashSet<&str> = deleted.iter().map(|row| row.id.as_str()).collect();
        let missing: Vec<usize> = ids
            .iter()
            .enumerate()
            .filter(|(_, id)| !found.contains(id.as_str()))
            .map(|(i, _)| i)
            .collect();
        return Err(StoreError::MissingItems(missing).into());
    }
    deleted.sort_unstable_by(|a, b| a.id.cmp(&b.id));
    Ok(deleted)
}

#[cfg(test)]
mod tests {
    #![allow(clippy::unwrap_used)]

    use std::time::Duration;

    use diesel::sql_types::Text;
    use licenses_testkit::TestDatabase;

    use super::*;
    use crate::config::Target;
    use crate::connection::Manager;
    use crate::migrate;

    #[derive(QueryableByName)]
    struct Prepared {
        #[diesel(sql_type = Text)]
        statement: String,
    }

    /// The check of a batch's orders is planned for its ids every time ([`unprepared`]):
    /// after more runs than PostgreSQL's five custom plans, the session holds no prepared
    /// `= ANY` statement that a generic plan could stick to. The one-id lookup, run once, is
    /// there: the control that the view shows this session's statements.
    #[test]
    fn the_order_check_of_a_batch_is_never_kept_prepared() {
        let db = TestDatabase::postgres();
        let manager = Manager {
            target: Target::Postgres {
                url: db.url().to_owned(),
                shown: "the test database".to_owned(),
            },
            busy_timeout: Duration::from_secs(5),
            prepared_statements: true,
        };
        let mut conn = manager.open().unwrap();
        migrate::migrate(&mut conn).unwrap();
        for _ in 0..8 {
            assert!(
                stored_pairs(&mut conn, &[("u1", "o1"), ("u2", "o2")])
                    .unwrap()
                    .is_empty()
            );
        }
        assert!(
            get(&mut conn, &LicenseId::parse("l1").unwrap())
                .unwrap()
                .is_none()
        );

        let AnyConnection::Postgresql(pg) = &mut conn else {
            panic!("a PostgreSQL connection");
        };
        let prepared: Vec<String> =
            diesel::sql_query("SELECT statement FROM pg_prepared_statements")
                .load::<Prepared>(pg)
                .unwrap()
                .into_iter()
                .map(|p| p.statement)
                .collect();
        assert!(
            prepared
                .iter()
                .any(|s| s.contains(r#""licenses"."id" = $1"#)),
            "the one-id lookup is prepared: {prepared:#?}"
        );
        assert!(
            !prepared.iter().any(|s| s.contains("= ANY")),
            "an = ANY statement is kept prepared: {prepared:#?}"
        );
    }
}
