//! The outbox of Irdeto entitlement jobs: claiming, settling, the backlog, and the
//! cancellation of a GRANT never tried by the REVOKE of its license.
//!
//! A job is claimable when it is PENDING, due, not leased (or its lease ran out: its worker
//! died), and no earlier PENDING job of the same license exists, so that the jobs of one
//! license are delivered in the order they were written (a REVOKE never overtakes its GRANT).
//! Claiming counts an attempt: `attempts = 0` means never handed to Irdeto.

use std::collections::HashSet;

use diesel::prelude::*;
use diesel::sql_types::BigInt;
use licenses_app::SystemClock;
use licenses_app::ports::Clock;
use licenses_app::ports::{
    Backlog, EntitlementJob, FailedJob, JobKind, NewEntitlementJob, OpenJob, OpenJobState,
    StoreError,
};
use licenses_domain::{License, LicenseId, Timestamp, UserId};

use crate::connection::{AnyConnection, unprepared};
use crate::error::{Error, corrupt};
use crate::models::{JOB_PENDING, LicenseRow};
use crate::repo::{IN_LIST_CHUNK, events};
use crate::schema::{entitlement_jobs as jobs, licenses};

const DONE: &str = "DONE";
const PARKED: &str = "PARKED";
/// Longest error kept with a job.
const MAX_ERROR: usize = 1_000;

#[derive(Debug, Clone, Queryable, QueryableByName, Selectable)]
#[diesel(table_name = jobs)]
struct JobRow {
    id: i64,
    kind: String,
    license_id: String,
    user_id: String,
    irdeto_product: String,
    valid_from: i64,
    valid_until: Option<i64>,
    attempts: i32,
    last_error: Option<String>,
}

fn kind(code: &str) -> Result<JobKind, Error> {
    match code {
        "GRANT" => Ok(JobKind::Grant),
        "REVOKE" => Ok(JobKind::Revoke),
        other => Err(corrupt(format!("job kind {other:?}"))),
    }
}

impl JobRow {
    fn into_domain(self) -> Result<EntitlementJob, Error> {
        Ok(EntitlementJob {
            id: self.id,
            job: NewEntitlementJob {
                kind: kind(&self.kind)?,
                license: LicenseId::parse(self.license_id)
                    .map_err(|e| corrupt(format!("job license: {e}")))?,
                user: UserId::parse(self.user_id).map_err(|e| corrupt(format!("job user: {e}")))?,
                irdeto_product: self.irdeto_product,
                valid_from: Timestamp::from_unix(self.valid_from),
                valid_until: self.valid_until.map(Timestamp::from_unix),
            },
            attempts: u32::try_from(self.attempts).unwrap_or(0),
        })
    }
}

/// The claim, one statement on both backends. On PostgreSQL the candidate rows are locked
/// with `FOR UPDATE SKIP LOCKED`: concurrent workers of any number of instances take disjoint
/// jobs without waiting for each other. SQLite runs it in its single-writer transaction.
fn claim_sql(postgres: bool) -> String {
    let (p1, p2, p3) = if postgres {
        ("$1", "$2", "$3")
    } else {
        ("?1", "?2", "?3")
    };
    format!(
        "UPDATE entitlement_jobs SET leased_until = {p1}, attempts = attempts + 1 \
         WHERE id IN (\
           SELECT j.id FROM entitlement_jobs j \
           WHERE j.state = 'PENDING' AND j.due_at <= {p2} \
             AND (j.leased_until IS NULL OR j.leased_until <= {p2}) \
             AND NOT EXISTS (SELECT 1 FROM entitlement_jobs e \
                             WHERE e.license_id = j.license_id AND e.state = 'PENDING' \
                               AND e.id < j.id) \
           ORDER BY j.id LIMIT {p3}{}) \
         RETURNING id, kind, license_id, user_id, irdeto_product, valid_from, valid_until, \
                   attempts, last_error",
        if postgres {
            " FOR UPDATE SKIP LOCKED"
        } else {
            ""
        }
    )
}

pub(crate) fn claim(
    conn: &mut AnyConnection,
    now: Timestamp,
    limit: u32,
    lease_until: Timestamp,
) -> Result<Vec<EntitlementJob>, Error> {
    let limit = i64::from(limit);
    let rows: Vec<JobRow> = match conn {
        AnyConnection::Postgresql(c) => diesel::sql_query(claim_sql(true))
            .bind::<BigInt, _>(lease_until.unix())
            .bind::<BigInt, _>(now.unix())
            .bind::<BigInt, _>(limit)
            .load(c)?,
        AnyConnection::Sqlite(c) => diesel::sql_query(claim_sql(false))
            .bind::<BigInt, _>(lease_until.unix())
            .bind::<BigInt, _>(now.unix())
            .bind::<BigInt, _>(limit)
            .load(c)?,
    };
    let mut claimed = rows
        .into_iter()
        .map(JobRow::into_domain)
        .collect::<Result<Vec<_>, _>>()?;
    claimed.sort_by_key(|j| j.id);
    Ok(claimed)
}

fn one_line(error: &str) -> String {
    error
        .split_whitespace()
        .collect::<Vec<_>>()
        .join(" ")
        .chars()
        .take(MAX_ERROR)
        .collect()
}

/// Ends a job in `state` (DONE or PARKED) with `error`; NotFound if it is gone.
fn finish(
    conn: &mut AnyConnection,
    id: i64,
    state: &str,
    error: Option<&str>,
) -> Result<(), Error> {
    let n = diesel::update(jobs::table.find(id))
        .set((
            jobs::state.eq(state),
            jobs::leased_until.eq(None::<i64>),
            jobs::last_error.eq(error.map(one_line)),
        ))
        .execute(conn)?;
    if n == 0 {
        return Err(StoreError::NotFound.into());
    }
    Ok(())
}

/// Stores the settled status of a license that is still PROCESSING (one deleted meanwhile,
/// or settled by another delivery, is left alone), with its event, which occurs now (the
/// workers' settlement has no other time).
fn settle(conn: &mut AnyConnection, license: &License) -> Result<(), Error> {
    let row = LicenseRow::from_domain(license, Timestamp::from_unix(0));
    let settled = diesel::update(
        licenses::table
            .find(row.id)
            .filter(licenses::status.eq("PROCESSING")),
    )
    .set((
        licenses::status.eq(row.status),
        licenses::requested_status.eq(row.requested_status),
        licenses::status_reason.eq(row.status_reason),
    ))
    .execute(conn)?;
    if settled > 0 {
        events::record_settled(conn, license, SystemClock.now())?;
    }
    Ok(())
}

/// Deletes the DONE jobs last due before `before`; how many.
pub(crate) fn prune_delivered(conn: &mut AnyConnection, before: Timestamp) -> Result<u64, Error> {
    let n = diesel::delete(
        jobs::table
            .filter(jobs::state.eq(DONE))
            .filter(jobs::due_at.lt(before.unix())),
    )
    .execute(conn)?;
    Ok(u64::try_from(n).unwrap_or(u64::MAX))
}

pub(crate) fn complete(
    conn: &mut AnyConnection,
    id: i64,
    settled: Option<&License>,
) -> Result<(), Error> {
    finish(conn, id, DONE, None)?;
    settled.map_or(Ok(()), |l| settle(conn, l))
}

pub(crate) fn complete_many(
    conn: &mut AnyConnection,
    done: &[(i64, Option<License>)],
) -> Result<(), Error> {
    let ids: Vec<i64> = done.iter().map(|(id, _)| *id).collect();
    for chunk in ids.chunks(IN_LIST_CHUNK) {
        unprepared(
            diesel::update(jobs::table.filter(jobs::id.eq_any(chunk))).set((
                jobs::state.eq(DONE),
                jobs::leased_until.eq(None::<i64>),
                jobs::last_error.eq(None::<String>),
            )),
        )
        .execute(conn)?;
    }
    for license in done.iter().filter_map(|(_, l)| l.as_ref()) {
        settle(conn, license)?;
    }
    Ok(())
}

pub(crate) fn refuse(
    conn: &mut AnyConnection,
    id: i64,
    error: &str,
    settled: Option<&License>,
) -> Result<(), Error> {
    finish(conn, id, PARKED, Some(error))?;
    settled.map_or(Ok(()), |l| settle(conn, l))
}

pub(crate) fn park(conn: &mut AnyConnection, id: i64, error: &str) -> Result<(), Error> {
    finish(conn, id, PARKED, Some(error))
}

pub(crate) fn retry(
    conn: &mut AnyConnection,
    id: i64,
    at: Timestamp,
    error: &str,
) -> Result<(), Error> {
    let n = diesel::update(jobs::table.find(id))
        .set((
            jobs::state.eq(JOB_PENDING),
            jobs::due_at.eq(at.unix()),
            jobs::leased_until.eq(None::<i64>),
            jobs::last_error.eq(Some(one_line(error))),
        ))
        .execute(conn)?;
    if n == 0 {
        return Err(StoreError::NotFound.into());
    }
    Ok(())
}

pub(crate) fn requeue(conn: &mut AnyConnection, id: i64, at: Timestamp) -> Result<String, Error> {
    diesel::update(jobs::table.find(id).filter(jobs::state.eq(PARKED)))
        .set((
            jobs::state.eq(JOB_PENDING),
            jobs::attempts.eq(0),
            jobs::due_at.eq(at.unix()),
            jobs::leased_until.eq(None::<i64>),
        ))
        .returning(jobs::license_id)
        .get_result::<String>(conn)
        .optional()?
        .ok_or_else(|| StoreError::NotFound.into())
}

/// The backlog's counts, as one statement reads them.
#[derive(QueryableByName)]
struct BacklogRow {
    #[diesel(sql_type = BigInt)]
    due: i64,
    #[diesel(sql_type = BigInt)]
    retrying: i64,
    #[diesel(sql_type = BigInt)]
    failed: i64,
}

/// The backlog in one statement, so that its three counts are of one moment: counted one by
/// one, a job the worker moved between two counts (due, then retrying after a failed try)
/// was counted twice.
fn backlog_sql(postgres: bool) -> String {
    let now = if postgres { "$1" } else { "?1" };
    format!(
        "SELECT \
           COUNT(CASE WHEN state = '{JOB_PENDING}' AND due_at <= {now} THEN 1 END) AS due, \
           COUNT(CASE WHEN state = '{JOB_PENDING}' AND due_at > {now} THEN 1 END) AS retrying, \
           COUNT(CASE WHEN state = '{PARKED}' THEN 1 END) AS failed \
         FROM entitlement_jobs WHERE state IN ('{JOB_PENDING}', '{PARKED}')"
    )
}

/// Due: PENDING and due now (in flight included); retrying: PENDING, waiting for a later
/// try; failed: PARKED.
pub(crate) fn backlog(conn: &mut AnyConnection, now: Timestamp) -> Result<Backlog, Error> {
    let row: BacklogRow = match conn {
        AnyConnection::Postgresql(c) => diesel::sql_query(backlog_sql(true))
            .bind::<BigInt, _>(now.unix())
            .get_result(c)?,
        AnyConnection::Sqlite(c) => diesel::sql_query(backlog_sql(false))
            .bind::<BigInt, _>(now.unix())
            .get_result(c)?,
    };
    let to_u64 = |n: i64| u64::try_from(n).unwrap_or(0);
    Ok(Backlog {
        due: to_u64(row.due),
        retrying: to_u64(row.retrying),
        failed: to_u64(row.failed),
    })
}

pub(crate) fn failed(conn: &mut AnyConnection, limit: u32) -> Result<Vec<FailedJob>, Error> {
    jobs::table
        .filter(jobs::state.eq(PARKED))
        .order(jobs::id.desc())
        .limit(i64::from(limit))
        .select(JobRow::as_select())
        .load(conn)?
        .into_iter()
        .map(|row| {
            let last_error = row.last_error.clone();
            let job = row.into_domain()?;
            Ok(FailedJob {
                id: job.id,
                kind: job.job.kind,
                license: job.job.license,
                attempts: job.attempts,
                last_error,
            })
        })
        .collect()
}

/// A job not delivered yet, as [`open_jobs_of`] reads it.
#[derive(Debug, Queryable, Selectable)]
#[diesel(table_name = jobs)]
struct OpenJobRow {
    id: i64,
    kind: String,
    license_id: String,
    state: String,
    attempts: i32,
    due_at: i64,
    last_error: Option<String>,
}

/// The PENDING and PARKED jobs of `licenses`, in id order. A PENDING job is retrying once a
/// try has failed (it has attempts and an error); the operator's requeue resets its attempts,
/// so it is pending again.
pub(crate) fn open_jobs_of(
    conn: &mut AnyConnection,
    licenses: &[LicenseId],
) -> Result<Vec<OpenJob>, Error> {
    let ids: Vec<&str> = licenses.iter().map(LicenseId::as_str).collect();
    let mut open = Vec::new();
    for chunk in ids.chunks(IN_LIST_CHUNK) {
        let rows: Vec<OpenJobRow> = unprepared(
            jobs::table
                .filter(jobs::license_id.eq_any(chunk))
                .filter(jobs::state.eq_any([JOB_PENDING, PARKED]))
                .select(OpenJobRow::as_select()),
        )
        .load(conn)?;
        for row in rows {
            let state = match (row.state.as_str(), row.attempts, &row.last_error) {
                (PARKED, _, _) => OpenJobState::Parked,
                (_, 1.., Some(_)) => OpenJobState::Retrying,
                _ => OpenJobState::Pending,
            };
            open.push(OpenJob {
                id: row.id,
                kind: kind(&row.kind)?,
                license: LicenseId::parse(row.license_id)
                    .map_err(|e| corrupt(format!("job license: {e}")))?,
                state,
                attempts: u32::try_from(row.attempts).unwrap_or(0),
                last_error: row.last_error,
                due_at: Timestamp::from_unix(row.due_at),
            });
        }
    }
    open.sort_by_key(|j| j.id);
    Ok(open)
}

/// For the REVOKE jobs of licenses being deleted: deletes their GRANT jobs never handed to
/// Irdeto (PENDING, no attempt), and returns the licenses for which that leaves no GRANT at
/// all: Irdeto never heard of them, so their REVOKE is not needed either. A GRANT claimed
/// meanwhile has an attempt and stays: its REVOKE is queued behind it.
pub(crate) fn cancel_untried_grants(
    conn: &mut AnyConnection,
    licenses: &[&str],
) -> Result<HashSet<String>, Error> {
    let mut unneeded = HashSet::new();
    for chunk in licenses.chunks(IN_LIST_CHUNK) {
        let cancelled: Vec<String> = unprepared(
            diesel::delete(
                jobs::table
                    .filter(jobs::license_id.eq_any(chunk))
                    .filter(jobs::kind.eq("GRANT"))
                    .filter(jobs::state.eq(JOB_PENDING))
                    .filter(jobs::attempts.eq(0)),
            )
            .returning(jobs::license_id),
        )
        .get_results(conn)?;
        if cancelled.is_empty() {
            continue;
        }
        let still_granted: HashSet<String> = unprepared(
            jobs::table
                .filter(jobs::license_id.eq_any(&cancelled))
                .filter(jobs::kind.eq("GRANT"))
                .select(jobs::license_id),
        )
        .load::<String>(conn)?
        .into_iter()
        .collect();
        unneeded.extend(cancelled.into_iter().filter(|l| !still_granted.contains(l)));
    }
    Ok(unneeded)
}
