//! The events outbox: events written with the changes that make them, the sequencer that
//! puts committed events in commit order, the feed's pages, pruning, expiry scheduling and
//! the publishers' marks.
//!
//! An event's snapshot is the resource's row as JSON (the store's own encoding, read back
//! into the domain type); the front-ends render it as the API renders the resource.

use diesel::prelude::*;
use diesel::sql_types::{BigInt, Nullable, Text};
use licenses_app::events::{
    Event, EventBacklog, EventPage, EventQuery, EventSubject, EventType, FeedError, Sequenced,
};
use licenses_domain::{License, LicenseStatus, Product, Timestamp};

use crate::connection::{AnyConnection, on_backend, unprepared};
use crate::error::{Error, corrupt};
use crate::listen::Written;
use crate::models::{LicenseRow, ProductRow};
use crate::repo::{copy_rows, insert_rows, rows_per_insert};
use crate::schema::{event_marks, events, licenses};

/// The advisory lock of the sequencer on PostgreSQL (one sequencer at a time across
/// instances): an arbitrary constant of ours.
const SEQUENCER_LOCK: i64 = 0x6c69_6365_7673_6571; // "licevseq"

/// The mark holding the last position given.
const LAST_POSITION: &str = "position";
/// The mark holding the last position pruned.
pub(crate) const PRUNED: &str = "pruned";

#[derive(Debug, Insertable)]
#[diesel(table_name = events, treat_none_as_default_value = false)]
pub(crate) struct NewEventRow {
    event_id: String,
    event_type: &'static str,
    user_id: Option<String>,
    subject_id: String,
    occurred_at: i64,
    snapshot: String,
}

/// Columns of [`NewEventRow`].
const EVENT_COLUMNS: usize = 6;
/// Events per multi-row INSERT: well under the bind limit, so that a batch of 10,000
/// licenses builds and binds its snapshots 1,000 at a time rather than in one statement.
/// Two concurrent batch_creates of 10,000, 15 times: peak RSS 121 MiB in one statement,
/// 101-103 MiB by 1,000.
const EVENTS_PER_INSERT: usize = 1_000;
const _: () = assert!(EVENTS_PER_INSERT <= rows_per_insert(EVENT_COLUMNS));

impl NewEventRow {
    pub(crate) fn license(kind: EventType, row: &LicenseRow, at: Timestamp) -> Result<Self, Error> {
        Ok(Self {
            event_id: uuid::Uuid::now_v7().to_string(),
            event_type: kind.as_str(),
            user_id: Some(row.user_id.clone()),
            subject_id: row.id.clone(),
            occurred_at: at.unix(),
            snapshot: serde_json::to_string(row)
                .map_err(|e| corrupt(format!("license snapshot: {e}")))?,
        })
    }

    fn product(kind: EventType, row: &ProductRow, at: Timestamp) -> Result<Self, Error> {
        Ok(Self {
            event_id: uuid::Uuid::now_v7().to_string(),
            event_type: kind.as_str(),
            user_id: None,
            subject_id: row.id.clone(),
            occurred_at: at.unix(),
            snapshot: serde_json::to_string(row)
                .map_err(|e| corrupt(format!("product snapshot: {e}")))?,
        })
    }
}

fn insert(conn: &mut AnyConnection, rows: &[NewEventRow]) -> Result<(), Error> {
    if !rows.is_empty() {
        Written::events();
    }
    if let [row] = rows {
        insert_rows!(conn, events::table, row)?;
        return Ok(());
    }
    for chunk in rows.chunks(EVENTS_PER_INSERT) {
        copy_rows!(conn, events::table, chunk)?;
    }
    Ok(())
}

/// Writes one `kind` event per license row (in the caller's transaction).
pub(crate) fn record_license_rows(
    conn: &mut AnyConnection,
    kind: EventType,
    rows: &[LicenseRow],
    at: Timestamp,
) -> Result<(), Error> {
    let events = rows
        .iter()
        .map(|row| NewEventRow::license(kind, row, at))
        .collect::<Result<Vec<_>, _>>()?;
    insert(conn, &events)
}

/// Writes one `kind` event per license (in the caller's transaction).
pub(crate) fn record_licenses(
    conn: &mut AnyConnection,
    kind: EventType,
    licenses: &[License],
    at: Timestamp,
) -> Result<(), Error> {
    // Rows chunk by chunk: a batch of 10,000 is not copied whole.
    for chunk in licenses.chunks(EVENTS_PER_INSERT) {
        let rows: Vec<LicenseRow> = chunk
            .iter()
            .map(|l| LicenseRow::from_domain(l, at))
            .collect();
        record_license_rows(conn, kind, &rows, at)?;
    }
    Ok(())
}

/// The event of a license that left PROCESSING for `settled`'s status.
pub(crate) fn record_settled(
    conn: &mut AnyConnection,
    settled: &License,
    at: Timestamp,
) -> Result<(), Error> {
    let kind = match settled.state().status() {
        LicenseStatus::Active => EventType::LicenseActivated,
        LicenseStatus::OrderError => EventType::LicenseOrderError,
        _ => EventType::LicenseUpdated,
    };
    record_licenses(conn, kind, std::slice::from_ref(settled), at)
}

/// Writes a product event (in the caller's transaction).
pub(crate) fn record_product(
    conn: &mut AnyConnection,
    kind: EventType,
    product: &Product,
    at: Timestamp,
) -> Result<(), Error> {
    let row = NewEventRow::product(kind, &ProductRow::from_domain(product, at), at)?;
    insert(conn, std::slice::from_ref(&row))
}

fn mark_value(conn: &mut AnyConnection, name: &str) -> Result<Option<i64>, Error> {
    Ok(event_marks::table
        .find(name)
        .select(event_marks::value)
        .first(conn)
        .optional()?)
}

pub(crate) fn set_mark(conn: &mut AnyConnection, name: &str, value: i64) -> Result<(), Error> {
    let row = (event_marks::name.eq(name), event_marks::value.eq(value));
    on_backend!(conn, |c| diesel::insert_into(event_marks::table)
        .values(row)
        .on_conflict(event_marks::name)
        .do_update()
        .set(event_marks::value.eq(value))
        .execute(c))?;
    Ok(())
}

/// The last position given (0 before the first event).
pub(crate) fn head(conn: &mut AnyConnection) -> Result<i64, Error> {
    Ok(mark_value(conn, LAST_POSITION)?.unwrap_or(0))
}

/// The sequenced events at `positions` (those still kept), in position order.
pub(crate) fn at_positions(
    conn: &mut AnyConnection,
    positions: &[i64],
) -> Result<Vec<Event>, Error> {
    let mut found = Vec::with_capacity(positions.len());
    for chunk in positions.chunks(crate::repo::IN_LIST_CHUNK) {
        let rows: Vec<EventRow> = unprepared(
            events::table
                .filter(events::position.eq_any(chunk))
                .order(events::position.asc())
                .select(EventRow::as_select()),
        )
        .load(conn)?;
        for row in rows {
            found.push(row.into_event()?);
        }
    }
    found.sort_by_key(|e| e.position);
    Ok(found)
}

/// A publisher's mark; 0 when it never ran.
pub(crate) fn mark(conn: &mut AnyConnection, name: &str) -> Result<i64, Error> {
    Ok(mark_value(conn, name)?.unwrap_or(0))
}

/// Moves a mark forward (never back).
pub(crate) fn advance(conn: &mut AnyConnection, name: &str, position: i64) -> Result<(), Error> {
    if mark_value(conn, name)?.is_none_or(|current| current < position) {
        set_mark(conn, name, position)?;
    }
    Ok(())
}

#[derive(Debug, QueryableByName)]
struct SequencedRow {
    #[diesel(sql_type = Nullable<Text>)]
    user_id: Option<String>,
    #[diesel(sql_type = Nullable<BigInt>)]
    user_seq: Option<i64>,
}

/// Gives positions to up to `limit` committed events without one, in id order, and their
/// users' next sequence numbers; one statement for the events, one for the users' counters.
/// Runs in the caller's write transaction; on PostgreSQL it first takes the sequencer's
/// transaction-scoped advisory lock, or answers `busy` when another instance holds it.
pub(crate) fn sequence(conn: &mut AnyConnection, limit: u32) -> Result<Sequenced, Error> {
    if let AnyConnection::Postgresql(pg) = conn {
        #[derive(QueryableByName)]
        struct Locked {
            #[diesel(sql_type = diesel::sql_types::Bool)]
            locked: bool,
        }
        let got: Locked = diesel::sql_query(format!(
            "SELECT pg_try_advisory_xact_lock({SEQUENCER_LOCK}) AS locked"
        ))
        .get_result(pg)?;
        if !got.locked {
            return Ok(Sequenced {
                events: 0,
                busy: true,
            });
        }
    }
    let last = mark_value(conn, LAST_POSITION)?.unwrap_or(0);
    // Integers of our own, formatted in: the same text for both backends' placeholders.
    let sql = format!(
        "WITH batch AS (\
           SELECT b.id, b.user_id, \
                  row_number() OVER (ORDER BY b.id) AS n, \
                  row_number() OVER (PARTITION BY b.user_id ORDER BY b.id) AS un \
           FROM (SELECT id, user_id FROM events WHERE position IS NULL ORDER BY id LIMIT {limit}) b) \
         UPDATE events SET position = {last} + batch.n, \
           user_seq = CASE WHEN batch.user_id IS NULL THEN NULL ELSE \
             COALESCE((SELECT s.last_seq FROM event_user_sequences s \
                       WHERE s.user_id = batch.user_id), 0) + batch.un END \
         FROM batch WHERE events.id = batch.id \
         RETURNING events.user_id, events.user_seq"
    );
    let rows: Vec<SequencedRow> = on_backend!(conn, |c| diesel::sql_query(&sql).load(c))?;
    if rows.is_empty() {
        return Ok(Sequenced::default());
    }
    let mut last_seqs: std::collections::BTreeMap<&str, i64> = std::collections::BTreeMap::new();
    for row in &rows {
        if let (Some(user), Some(seq)) = (row.user_id.as_deref(), row.user_seq) {
            let entry = last_seqs.entry(user).or_insert(seq);
            *entry = (*entry).max(seq);
        }
    }
    use crate::schema::event_user_sequences as seqs;
    let counters: Vec<_> = last_seqs
        .iter()
        .map(|(user, seq)| (seqs::user_id.eq(*user), seqs::last_seq.eq(*seq)))
        .collect();
    for chunk in counters.chunks(rows_per_insert(2)) {
        on_backend!(conn, |c| diesel::insert_into(seqs::table)
            .values(chunk)
            .on_conflict(seqs::user_id)
            .do_update()
            .set(seqs::last_seq.eq(diesel::upsert::excluded(seqs::last_seq)))
            .execute(c))?;
    }
    let n = i64::try_from(rows.len()).unwrap_or(i64::MAX);
    set_mark(conn, LAST_POSITION, last + n)?;
    Written::sequenced();
    Ok(Sequenced {
        events: u32::try_from(rows.len()).unwrap_or(u32::MAX),
        busy: false,
    })
}

#[derive(Debug, Queryable, Selectable)]
#[diesel(table_name = events)]
struct EventRow {
    event_id: String,
    event_type: String,
    occurred_at: i64,
    snapshot: String,
    position: Option<i64>,
    user_seq: Option<i64>,
}

impl EventRow {
    fn into_event(self) -> Result<Event, Error> {
        let kind = EventType::parse(&self.event_type)
            .ok_or_else(|| corrupt(format!("event type {:?}", self.event_type)))?;
        let subject = if kind.is_license() {
            let row: LicenseRow = serde_json::from_str(&self.snapshot)
                .map_err(|e| corrupt(format!("license snapshot: {e}")))?;
            EventSubject::License(row.into_domain()?)
        } else {
            let row: ProductRow = serde_json::from_str(&self.snapshot)
                .map_err(|e| corrupt(format!("product snapshot: {e}")))?;
            EventSubject::Product(row.into_domain()?)
        };
        Ok(Event {
            id: self.event_id,
            position: self
                .position
                .ok_or_else(|| corrupt("an unsequenced event was read"))?,
            user_seq: self.user_seq,
            kind,
            occurred_at: Timestamp::from_unix(self.occurred_at),
            subject,
        })
    }
}

/// A page of sequenced events, or the cursor's expiry: `Err((after, pruned_through))`.
/// The head (last position given) is read first and the page stops at it, so that a page
/// shorter than asked moves the cursor to the head: a filtered feed does not read the same
/// non-matching events again on every call.
pub(crate) fn page(
    conn: &mut AnyConnection,
    q: &EventQuery,
) -> Result<Result<EventPage, FeedError>, Error> {
    let pruned = mark_value(conn, PRUNED)?.unwrap_or(0);
    if let Some(after) = q.after
        && after < pruned
    {
        return Ok(Err(FeedError::CursorExpired {
            after,
            pruned_through: pruned,
        }));
    }
    // Events sequenced after this read are beyond the head: the page cannot skip them.
    let head = mark_value(conn, LAST_POSITION)?.unwrap_or(0);
    let after = q.after.unwrap_or(0);
    let mut query = events::table
        .filter(events::position.gt(after))
        .filter(events::position.le(head))
        .into_boxed();
    if let Some(user) = &q.user {
        query = query.filter(events::user_id.eq(user.as_str().to_owned()));
    }
    if !q.types.is_empty() {
        let names: Vec<&'static str> = q.types.iter().map(|t| t.as_str()).collect();
        query = query.filter(events::event_type.eq_any(names));
    }
    let rows: Vec<EventRow> = query
        .order(events::position.asc())
        .limit(i64::from(q.limit))
        .select(EventRow::as_select())
        .load(conn)?;
    let full = rows.len() >= usize::try_from(q.limit).unwrap_or(usize::MAX);
    let events = rows
        .into_iter()
        .map(EventRow::into_event)
        .collect::<Result<Vec<_>, _>>()?;
    let next = match events.last() {
        Some(last) if full => Some(last.position),
        _ if head > after => Some(head),
        _ => q.after,
    };
    Ok(Ok(EventPage { events, next }))
}

/// Deletes the sequenced events that occurred before `before` (those up to the last position
/// among them), and moves the `pruned` mark there.
pub(crate) fn prune(conn: &mut AnyConnection, before: Timestamp) -> Result<u64, Error> {
    let through: Option<i64> = events::table
        .filter(events::occurred_at.lt(before.unix()))
        .filter(events::position.is_not_null())
        .select(diesel::dsl::max(events::position))
        .first(conn)?;
    let Some(through) = through else {
        return Ok(0);
    };
    let n = diesel::delete(events::table.filter(events::position.le(through))).execute(conn)?;
    advance(conn, PRUNED, through)?;
    Ok(u64::try_from(n).unwrap_or(u64::MAX))
}

/// Expiry events of one kind: licenses whose stop date is in `(mark, horizon]` and that have
/// no such event yet, at most `limit`; the mark moves to `horizon` once a call finds fewer.
fn schedule(
    conn: &mut AnyConnection,
    kind: EventType,
    horizon: Timestamp,
    at: Timestamp,
    limit: u32,
) -> Result<u64, Error> {
    let name = kind.as_str();
    let Some(from) = mark_value(conn, name)? else {
        // The first run: licenses already past the horizon get no event.
        set_mark(conn, name, horizon.unix())?;
        return Ok(0);
    };
    if from >= horizon.unix() {
        return Ok(0);
    }
    let rows: Vec<LicenseRow> = licenses::table
        .filter(licenses::stop_date.gt(from))
        .filter(licenses::stop_date.le(horizon.unix()))
        .filter(diesel::dsl::not(diesel::dsl::exists(
            events::table
                .filter(events::subject_id.eq(licenses::id))
                .filter(events::event_type.eq(name)),
        )))
        .order((licenses::stop_date.asc(), licenses::id.asc()))
        .limit(i64::from(limit))
        .select(LicenseRow::as_select())
        .load(conn)?;
    let found = rows.len();
    let events = rows
        .iter()
        .map(|row| NewEventRow::license(kind, row, at))
        .collect::<Result<Vec<_>, _>>()?;
    let mut written = 0;
    for chunk in events.chunks(EVENTS_PER_INSERT) {
        // Another instance may have written some meanwhile: the unique index keeps one.
        written += on_backend!(conn, |c| diesel::insert_into(events::table)
            .values(chunk)
            .on_conflict_do_nothing()
            .execute(c))?;
    }
    if found < usize::try_from(limit).unwrap_or(usize::MAX) {
        set_mark(conn, name, horizon.unix())?;
    }
    Ok(u64::try_from(written).unwrap_or(u64::MAX))
}

/// `license.expired` up to `now`, `license.expiring_soon` up to `now + lead`.
pub(crate) fn schedule_expiry(
    conn: &mut AnyConnection,
    now: Timestamp,
    lead: std::time::Duration,
    limit: u32,
) -> Result<u64, Error> {
    let lead = i64::try_from(lead.as_secs()).unwrap_or(i64::MAX / 2);
    let soon = Timestamp::from_unix(now.unix().saturating_add(lead));
    Ok(schedule(conn, EventType::LicenseExpired, now, now, limit)?
        + schedule(conn, EventType::LicenseExpiringSoon, soon, now, limit)?)
}

/// Unsequenced events, and the head.
pub(crate) fn backlog(conn: &mut AnyConnection) -> Result<EventBacklog, Error> {
    let unsequenced: i64 = events::table
        .filter(events::position.is_null())
        .count()
        .get_result(conn)?;
    Ok(EventBacklog {
        unsequenced: u64::try_from(unsequenced).unwrap_or(0),
        last_position: mark_value(conn, LAST_POSITION)?.unwrap_or(0),
    })
}
