//! Webhook endpoints and deliveries: the fan-out from the `webhooks` mark, the workers'
//! claims with leases, the attempt log, replay and pruning.

use std::sync::{Mutex, PoisonError};
use std::time::{Duration, Instant};

use diesel::prelude::*;
use diesel::sql_types::BigInt;
use licenses_app::events::EventType;
use licenses_app::webhooks::{
    AttemptRecord, AttemptResult, DeliveryQuery, DeliveryState, DisabledReason, DueDelivery,
    FanOut, NewWebhook, WebhookBacklog, WebhookChange, WebhookDelivery, WebhookEndpoint,
};
use licenses_domain::Timestamp;

use crate::connection::{AnyConnection, on_backend, unprepared};
use crate::error::{Error, corrupt};
use crate::repo::events;
use crate::repo::{IN_LIST_CHUNK, insert_rows, rows_per_insert};
use crate::schema::{events as events_table, webhook_deliveries as deliveries, webhook_endpoints};

/// The fan-out's mark: every event up to it has its deliveries queued.
pub(crate) const MARK: &str = "webhooks";

/// The advisory lock of the fan-out on PostgreSQL (one at a time across instances).
const FAN_OUT_LOCK: i64 = 0x6c69_6365_7768_6b73; // "licewhks"

// No Debug: it holds the secret.
#[derive(Queryable, Selectable, Insertable, AsChangeset)]
#[diesel(table_name = webhook_endpoints, treat_none_as_null = true)]
struct EndpointRow {
    id: String,
    url: String,
    secret: String,
    event_types: String,
    description: String,
    after_position: i64,
    disabled_at_ms: Option<i64>,
    disabled_reason: Option<String>,
    failing_since_ms: Option<i64>,
    created_at: i64,
    updated_at: i64,
}

fn types_text(types: &[EventType]) -> String {
    types
        .iter()
        .map(|t| t.as_str())
        .collect::<Vec<_>>()
        .join(" ")
}

impl EndpointRow {
    fn into_endpoint(self) -> Result<WebhookEndpoint, Error> {
        let event_types = self
            .event_types
            .split_whitespace()
            .map(|t| {
                EventType::parse(t).ok_or_else(|| corrupt(format!("webhook event type {t:?}")))
            })
            .collect::<Result<Vec<_>, _>>()?;
        let disabled = match (self.disabled_at_ms, self.disabled_reason.as_deref()) {
            (Some(at), Some(reason)) => Some((
                at,
                DisabledReason::parse(reason)
                    .ok_or_else(|| corrupt(format!("webhook disabled reason {reason:?}")))?,
            )),
            _ => None,
        };
        Ok(WebhookEndpoint {
            id: self.id,
            url: self.url,
            event_types,
            description: self.description,
            disabled,
            failing_since_ms: self.failing_since_ms,
            created_at: Timestamp::from_unix(self.created_at),
            updated_at: Timestamp::from_unix(self.updated_at),
        })
    }
}

#[derive(Debug, Queryable, Selectable)]
#[diesel(table_name = deliveries)]
struct DeliveryRow {
    id: i64,
    endpoint_id: String,
    position: i64,
    event_id: String,
    event_type: String,
    state: String,
    attempts: i32,
    next_attempt_ms: i64,
    last_attempt_ms: Option<i64>,
    last_status: Option<i32>,
    last_answer: Option<String>,
}

impl DeliveryRow {
    fn into_delivery(self) -> Result<WebhookDelivery, Error> {
        Ok(WebhookDelivery {
            id: self.id,
            endpoint_id: self.endpoint_id,
            position: self.position,
            event_type: EventType::parse(&self.event_type)
                .ok_or_else(|| corrupt(format!("delivery event type {:?}", self.event_type)))?,
            event_id: self.event_id,
            state: DeliveryState::parse(&self.state)
                .ok_or_else(|| corrupt(format!("delivery state {:?}", self.state)))?,
            attempts: u32::try_from(self.attempts).unwrap_or(0),
            next_attempt_ms: self.next_attempt_ms,
            last_attempt_ms: self.last_attempt_ms,
            last_status: self.last_status.and_then(|s| u16::try_from(s).ok()),
            last_answer: self.last_answer,
        })
    }
}

#[derive(Debug, Insertable)]
#[diesel(table_name = deliveries, treat_none_as_default_value = false)]
struct NewDeliveryRow<'a> {
    endpoint_id: &'a str,
    position: i64,
    event_id: &'a str,
    event_type: &'a str,
    user_id: Option<&'a str>,
    state: &'static str,
    attempts: i32,
    next_attempt_ms: i64,
}

/// Columns of [`NewDeliveryRow`].
const DELIVERY_COLUMNS: usize = 8;

fn load_endpoint(conn: &mut AnyConnection, id: &str) -> Result<Option<EndpointRow>, Error> {
    Ok(webhook_endpoints::table
        .find(id)
        .select(EndpointRow::as_select())
        .first(conn)
        .optional()?)
}

/// On PostgreSQL, waits for the fan-out's lock (held to the end of the caller's transaction):
/// an endpoint that reads the head as its start is committed before the next fan-out reads
/// the endpoints, so no event after its start is fanned out without it.
fn hold_fan_out(conn: &mut AnyConnection) -> Result<(), Error> {
    if let AnyConnection::Postgresql(pg) = conn {
        diesel::sql_query(format!("SELECT pg_advisory_xact_lock({FAN_OUT_LOCK})")).execute(pg)?;
    }
    Ok(())
}

pub(crate) fn create(conn: &mut AnyConnection, new: &NewWebhook) -> Result<WebhookEndpoint, Error> {
    hold_fan_out(conn)?;
    let row = EndpointRow {
        id: new.id.clone(),
        url: new.url.clone(),
        secret: new.secret.clone(),
        event_types: types_text(&new.event_types),
        description: new.description.clone(),
        // Events sequenced from now on: not the backlog of before it existed.
        after_position: events::head(conn)?,
        disabled_at_ms: None,
        disabled_reason: None,
        failing_since_ms: None,
        created_at: new.at.unix(),
        updated_at: new.at.unix(),
    };
    insert_rows!(conn, webhook_endpoints::table, &row)?;
    row.into_endpoint()
}

pub(crate) fn endpoint(
    conn: &mut AnyConnection,
    id: &str,
) -> Result<Option<WebhookEndpoint>, Error> {
    load_endpoint(conn, id)?
        .map(EndpointRow::into_endpoint)
        .transpose()
}

pub(crate) fn endpoints(conn: &mut AnyConnection) -> Result<Vec<WebhookEndpoint>, Error> {
    let rows: Vec<EndpointRow> = webhook_endpoints::table
        .order((
            webhook_endpoints::created_at.asc(),
            webhook_endpoints::id.asc(),
        ))
        .select(EndpointRow::as_select())
        .load(conn)?;
    rows.into_iter().map(EndpointRow::into_endpoint).collect()
}

pub(crate) fn update(
    conn: &mut AnyConnection,
    id: &str,
    change: &WebhookChange,
) -> Result<Option<WebhookEndpoint>, Error> {
    if change.enabled == Some(true) {
        hold_fan_out(conn)?;
    }
    if let AnyConnection::Postgresql(pg) = conn {
        // The row is written back whole: a worker's record (a 410, a failure) must not
        // commit between its read and its write and be undone.
        diesel::sql_query("SELECT id FROM webhook_endpoints WHERE id = $1 FOR UPDATE")
            .bind::<diesel::sql_types::Text, _>(id)
            .execute(pg)?;
    }
    let Some(mut row) = load_endpoint(conn, id)? else {
        return Ok(None);
    };
    if let Some(url) = &change.url {
        row.url.clone_from(url);
    }
    if let Some(types) = &change.event_types {
        row.event_types = types_text(types);
    }
    if let Some(description) = &change.description {
        row.description.clone_from(description);
    }
    match change.enabled {
        Some(true) if row.disabled_at_ms.is_some() => {
            row.disabled_at_ms = None;
            row.disabled_reason = None;
            row.failing_since_ms = None;
            // The events of while it was disabled were not queued for it; from now on.
            row.after_position = events::head(conn)?;
        }
        Some(false) if row.disabled_at_ms.is_none() => {
            row.disabled_at_ms = Some(change.at_ms);
            row.disabled_reason = Some(DisabledReason::Manual.as_str().to_owned());
        }
        _ => {}
    }
    row.updated_at = change.at.unix();
    diesel::update(webhook_endpoints::table.find(id))
        .set(&row)
        .execute(conn)?;
    row.into_endpoint().map(Some)
}

pub(crate) fn delete(conn: &mut AnyConnection, id: &str) -> Result<bool, Error> {
    diesel::delete(deliveries::table.filter(deliveries::endpoint_id.eq(id))).execute(conn)?;
    Ok(diesel::delete(webhook_endpoints::table.find(id)).execute(conn)? > 0)
}

pub(crate) fn list(
    conn: &mut AnyConnection,
    q: &DeliveryQuery,
) -> Result<Vec<WebhookDelivery>, Error> {
    let mut query = deliveries::table
        .filter(deliveries::endpoint_id.eq(q.endpoint_id.clone()))
        .filter(deliveries::id.gt(q.after.unwrap_or(0)))
        .into_boxed();
    if let Some(state) = q.state {
        query = query.filter(deliveries::state.eq(state.as_str()));
    }
    let rows: Vec<DeliveryRow> = query
        .order(deliveries::id.asc())
        .limit(i64::from(q.limit))
        .select(DeliveryRow::as_select())
        .load(conn)?;
    rows.into_iter().map(DeliveryRow::into_delivery).collect()
}

pub(crate) fn replay(
    conn: &mut AnyConnection,
    endpoint_id: &str,
    delivery_id: Option<i64>,
    now_ms: i64,
) -> Result<u64, Error> {
    let mut target = deliveries::table
        .filter(deliveries::endpoint_id.eq(endpoint_id.to_owned()))
        .filter(deliveries::state.eq(DeliveryState::Failed.as_str()))
        .into_boxed();
    if let Some(id) = delivery_id {
        target = target.filter(deliveries::id.eq(id));
    }
    let ids: Vec<i64> = target.select(deliveries::id).load(conn)?;
    let mut n = 0;
    for chunk in ids.chunks(IN_LIST_CHUNK) {
        // Still failed: a concurrent replay may have sent it again meanwhile.
        let failed = deliveries::table
            .filter(deliveries::id.eq_any(chunk))
            .filter(deliveries::state.eq(DeliveryState::Failed.as_str()));
        n += unprepared(diesel::update(failed).set((
            deliveries::state.eq(DeliveryState::Pending.as_str()),
            deliveries::attempts.eq(0),
            deliveries::next_attempt_ms.eq(now_ms),
            deliveries::lease_until_ms.eq(None::<i64>),
            deliveries::lease_token.eq(None::<String>),
        )))
        .execute(conn)?;
    }
    Ok(u64::try_from(n).unwrap_or(u64::MAX))
}

/// Queues the deliveries of the next `limit` sequenced events past the mark and moves the
/// mark, in the caller's write transaction; on PostgreSQL under a transaction-scoped
/// advisory lock (`busy` when another instance holds it).
pub(crate) fn fan_out(conn: &mut AnyConnection, limit: u32, now_ms: i64) -> Result<FanOut, Error> {
    if let AnyConnection::Postgresql(pg) = conn {
        #[derive(QueryableByName)]
        struct Locked {
            #[diesel(sql_type = diesel::sql_types::Bool)]
            locked: bool,
        }
        let got: Locked = diesel::sql_query(format!(
            "SELECT pg_try_advisory_xact_lock({FAN_OUT_LOCK}) AS locked"
        ))
        .get_result(pg)?;
        if !got.locked {
            return Ok(FanOut {
                busy: true,
                ..FanOut::default()
            });
        }
    }
    let endpoints: Vec<EndpointRow> = webhook_endpoints::table
        .filter(webhook_endpoints::disabled_at_ms.is_null())
        .select(EndpointRow::as_select())
        .load(conn)?;
    if endpoints.is_empty() {
        // Nobody to queue for: nothing is read and nothing written, so that every instance's
        // round after every sequencing commits no change (no WAL to flush) where no endpoint
        // is enabled. The mark stays behind; see `floor`.
        return Ok(FanOut::default());
    }
    let stored = events::mark(conn, MARK)?;
    let head = events::head(conn)?;
    // Events no endpoint starts before are nobody's: an endpoint starts at the head of when
    // it was created or enabled (`after_position`), so reading resumes at the first start,
    // not at a mark left behind while there were no endpoints.
    let floor = endpoints
        .iter()
        .map(|e| e.after_position)
        .min()
        .unwrap_or(head);
    let mut mark = stored.max(floor.min(head));
    let pruned = events::mark(conn, events::PRUNED)?;
    let mut skipped = None;
    if mark < pruned {
        // Behind for longer than the retention: events an endpoint should have had are gone.
        skipped = Some((mark, pruned));
        mark = pruned;
    }
    if mark > stored {
        events::set_mark(conn, MARK, mark)?;
    }
    if head <= mark {
        return Ok(FanOut {
            skipped,
            ..FanOut::default()
        });
    }
    let found: Vec<(i64, String, String, Option<String>)> = events_table::table
        .filter(events_table::position.gt(mark))
        .filter(events_table::position.le(head))
        .order(events_table::position.asc())
        .limit(i64::from(limit))
        .select((
            events_table::position.assume_not_null(),
            events_table::event_id,
            events_table::event_type,
            events_table::user_id,
        ))
        .load(conn)?;
    let Some(last) = found.last().map(|e| e.0) else {
        // Pruned under the mark: nothing left to queue up to the head.
        events::set_mark(conn, MARK, head)?;
        return Ok(FanOut {
            skipped,
            ..FanOut::default()
        });
    };
    let endpoints = endpoints
        .into_iter()
        .map(|row| Ok((row.after_position, row.into_endpoint()?)))
        .collect::<Result<Vec<_>, Error>>()?;
    let mut rows = Vec::new();
    for (position, event_id, event_type, user_id) in &found {
        let kind = EventType::parse(event_type)
            .ok_or_else(|| corrupt(format!("event type {event_type:?}")))?;
        for (after, endpoint) in &endpoints {
            if position > after && endpoint.takes(kind) {
                rows.push(NewDeliveryRow {
                    endpoint_id: &endpoint.id,
                    position: *position,
                    event_id,
                    event_type: kind.as_str(),
                    user_id: user_id.as_deref(),
                    state: DeliveryState::Pending.as_str(),
                    attempts: 0,
                    next_attempt_ms: now_ms,
                });
            }
        }
    }
    let mut queued = 0;
    for chunk in rows.chunks(rows_per_insert(DELIVERY_COLUMNS)) {
        queued += on_backend!(conn, |c| diesel::insert_into(deliveries::table)
            .values(chunk)
            .on_conflict_do_nothing()
            .execute(c))?;
    }
    events::set_mark(conn, MARK, last)?;
    Ok(FanOut {
        events: u32::try_from(found.len()).unwrap_or(u32::MAX),
        deliveries: u64::try_from(queued).unwrap_or(u64::MAX),
        busy: false,
        skipped,
    })
}

#[derive(QueryableByName)]
struct ClaimedId {
    #[diesel(sql_type = BigInt)]
    id: i64,
}

/// Claims due deliveries for `lease_ms` under a new token, in the caller's write
/// transaction, and reads what sending them needs.
pub(crate) fn claim(
    conn: &mut AnyConnection,
    now_ms: i64,
    lease_ms: i64,
    limit: u32,
) -> Result<Vec<DueDelivery>, Error> {
    let token = uuid::Uuid::now_v7().to_string();
    let until = now_ms.saturating_add(lease_ms);
    // SKIP LOCKED: instances claiming at once take different deliveries, without waiting.
    let lock = match conn {
        AnyConnection::Postgresql(_) => "FOR UPDATE OF d SKIP LOCKED",
        AnyConnection::Sqlite(_) => "",
    };
    // Integers and a UUID of our own, formatted in: one text for both backends.
    let sql = format!(
        "UPDATE webhook_deliveries SET lease_until_ms = {until}, lease_token = '{token}' \
         WHERE id IN (\
           SELECT d.id FROM webhook_deliveries d \
           JOIN webhook_endpoints e ON e.id = d.endpoint_id \
           WHERE d.state = 'pending' AND d.next_attempt_ms <= {now_ms} \
             AND (d.lease_until_ms IS NULL OR d.lease_until_ms < {now_ms}) \
             AND e.disabled_at_ms IS NULL \
             AND NOT EXISTS (SELECT 1 FROM webhook_deliveries p \
               WHERE p.endpoint_id = d.endpoint_id AND p.user_id = d.user_id \
                 AND p.state = 'pending' AND p.position < d.position) \
           ORDER BY d.id LIMIT {limit} {lock}) \
         RETURNING id"
    );
    let claimed: Vec<ClaimedId> = on_backend!(conn, |c| diesel::sql_query(&sql).load(c))?;
    if claimed.is_empty() {
        return Ok(Vec::new());
    }
    let ids: Vec<i64> = claimed.iter().map(|c| c.id).collect();
    let rows: Vec<DeliveryRow> = deliveries::table
        .filter(deliveries::id.eq_any(&ids))
        .order(deliveries::id.asc())
        .select(DeliveryRow::as_select())
        .load(conn)?;
    let mut endpoint_ids: Vec<&str> = rows.iter().map(|r| r.endpoint_id.as_str()).collect();
    endpoint_ids.sort_unstable();
    endpoint_ids.dedup();
    let targets: Vec<(String, String, String)> = webhook_endpoints::table
        .filter(webhook_endpoints::id.eq_any(&endpoint_ids))
        .select((
            webhook_endpoints::id,
            webhook_endpoints::url,
            webhook_endpoints::secret,
        ))
        .load(conn)?;
    let mut positions: Vec<i64> = rows.iter().map(|r| r.position).collect();
    positions.sort_unstable();
    positions.dedup();
    let found = events::at_positions(conn, &positions)?;
    rows.into_iter()
        .map(|row| {
            let (_, url, secret) = targets
                .iter()
                .find(|t| t.0 == row.endpoint_id)
                .ok_or_else(|| corrupt("a delivery without its endpoint"))?;
            let event = found.iter().find(|e| e.position == row.position).cloned();
            Ok(DueDelivery {
                lease_token: token.clone(),
                url: url.clone(),
                secret: secret.clone(),
                event,
                delivery: row.into_delivery()?,
            })
        })
        .collect()
}

/// Records an attempt (in the caller's write transaction) if the lease is still the
/// caller's, and what it means for the endpoint: failures since when, disabled when failing
/// too long or gone.
pub(crate) fn record(conn: &mut AnyConnection, a: &AttemptRecord) -> Result<bool, Error> {
    let (state, next) = match a.result {
        AttemptResult::Delivered => (DeliveryState::Delivered, a.at_ms),
        AttemptResult::RetryAt(at) => (DeliveryState::Pending, at),
        AttemptResult::GiveUp | AttemptResult::Gone => (DeliveryState::Failed, a.at_ms),
    };
    let mine = deliveries::table
        .filter(deliveries::id.eq(a.delivery_id))
        .filter(deliveries::lease_token.eq(a.lease_token.clone()));
    let recorded: Option<String> = on_backend!(conn, |c| diesel::update(mine.clone())
        .set((
            deliveries::state.eq(state.as_str()),
            deliveries::attempts.eq(deliveries::attempts + 1),
            deliveries::next_attempt_ms.eq(next),
            deliveries::lease_until_ms.eq(None::<i64>),
            deliveries::lease_token.eq(None::<String>),
            deliveries::last_attempt_ms.eq(Some(a.at_ms)),
            deliveries::last_status.eq(a.status.map(i32::from)),
            deliveries::last_answer.eq(Some(a.answer.clone())),
        ))
        .returning(deliveries::endpoint_id)
        .get_result(c)
        .optional())?;
    let Some(endpoint_id) = recorded else {
        return Ok(false);
    };
    let endpoint = webhook_endpoints::table.find(&endpoint_id);
    match a.result {
        AttemptResult::Delivered => {
            // Written only when it was failing: the common case writes nothing.
            diesel::update(endpoint.filter(webhook_endpoints::failing_since_ms.is_not_null()))
                .set(webhook_endpoints::failing_since_ms.eq(None::<i64>))
                .execute(conn)?;
        }
        AttemptResult::Gone => {
            diesel::update(endpoint.filter(webhook_endpoints::disabled_at_ms.is_null()))
                .set((
                    webhook_endpoints::disabled_at_ms.eq(Some(a.at_ms)),
                    webhook_endpoints::disabled_reason.eq(Some(DisabledReason::Gone.as_str())),
                ))
                .execute(conn)?;
        }
        AttemptResult::RetryAt(_) | AttemptResult::GiveUp => {
            diesel::update(endpoint.filter(webhook_endpoints::failing_since_ms.is_null()))
                .set(webhook_endpoints::failing_since_ms.eq(Some(a.at_ms)))
                .execute(conn)?;
            diesel::update(
                endpoint
                    .filter(webhook_endpoints::disabled_at_ms.is_null())
                    .filter(
                        webhook_endpoints::failing_since_ms.lt(a.disable_failing_since_before_ms),
                    ),
            )
            .set((
                webhook_endpoints::disabled_at_ms.eq(Some(a.at_ms)),
                webhook_endpoints::disabled_reason.eq(Some(DisabledReason::Failing.as_str())),
            ))
            .execute(conn)?;
        }
    }
    Ok(true)
}

/// The queue's planner statistics, after a burst: the claim's plan depends on them. A queue
/// analyzed while nearly empty, then holding thousands of deliveries, gets a plan that reads
/// every pending delivery of the endpoint for each one it checks: a claim of 16 took 2.3 s
/// with 4,000 pending, and 13 ms once analyzed. Autovacuum analyzes too, but a minute later
/// at best.
pub(crate) const ANALYZE_AFTER: u64 = 1_000;
/// At most one `ANALYZE` of the queue this often, however fast it fills.
pub(crate) const ANALYZE_EVERY: Duration = Duration::from_secs(10);

/// When the deliveries queued since the last `ANALYZE` of the queue call for another.
#[derive(Default)]
pub(crate) struct QueueStatistics {
    state: Mutex<(u64, Option<Instant>)>,
}

impl QueueStatistics {
    /// `queued` more deliveries: whether to analyze the queue now (counted as done).
    pub(crate) fn due(&self, queued: u64, now: Instant) -> bool {
        let mut state = self.state.lock().unwrap_or_else(PoisonError::into_inner);
        let (since, last) = &mut *state;
        *since = since.saturating_add(queued);
        let due = *since >= ANALYZE_AFTER
            && last.is_none_or(|t| now.saturating_duration_since(t) >= ANALYZE_EVERY);
        if due {
            *since = 0;
            *last = Some(now);
        }
        due
    }
}

pub(crate) fn prune(conn: &mut AnyConnection, before_ms: i64) -> Result<u64, Error> {
    let n = diesel::delete(
        deliveries::table
            .filter(deliveries::state.ne(DeliveryState::Pending.as_str()))
            .filter(deliveries::last_attempt_ms.lt(before_ms)),
    )
    .execute(conn)?;
    Ok(u64::try_from(n).unwrap_or(u64::MAX))
}

pub(crate) fn backlog(conn: &mut AnyConnection) -> Result<WebhookBacklog, Error> {
    let count = |conn: &mut AnyConnection, state: DeliveryState| -> Result<u64, Error> {
        let n: i64 = deliveries::table
            .filter(deliveries::state.eq(state.as_str()))
            .count()
            .get_result(conn)?;
        Ok(u64::try_from(n).unwrap_or(0))
    };
    Ok(WebhookBacklog {
        pending: count(conn, DeliveryState::Pending)?,
        failed: count(conn, DeliveryState::Failed)?,
    })
}

#[cfg(test)]
mod statistics_tests {
    use std::time::{Duration, Instant};

    use super::{ANALYZE_AFTER, ANALYZE_EVERY, QueueStatistics};

    #[test]
    fn the_queue_is_analyzed_after_a_burst_and_not_more_often_than_its_period() {
        let s = QueueStatistics::default();
        let t0 = Instant::now();
        assert!(!s.due(ANALYZE_AFTER - 1, t0), "fewer than the burst");
        assert!(s.due(1, t0), "the burst, counted across fan-outs");
        assert!(
            !s.due(ANALYZE_AFTER, t0 + Duration::from_secs(1)),
            "too soon"
        );
        assert!(
            s.due(0, t0 + ANALYZE_EVERY),
            "what was queued meanwhile still counts"
        );
        assert!(!s.due(10, t0 + 3 * ANALYZE_EVERY), "a trickle never");
    }
}
