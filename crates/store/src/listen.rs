//! Wake-ups across instances: after a transaction that queued Irdeto jobs, wrote events or
//! sequenced events commits, the writing store sends a notification on each channel
//! concerned ([`after_commit`]), and every instance's listener, a dedicated PostgreSQL
//! connection that `LISTEN`s to them, wakes that instance's workers.
//!
//! The notifications are sent after the COMMIT, by a statement of their own on the same
//! connection (`pg_notify`), not inside the writing transaction: PostgreSQL commits the
//! transactions that notified one at a time (a database-wide lock held from COMMIT until the
//! commit record is flushed), which cost 10 to 20 % of the purchases a second under load when
//! triggers sent them (docs/operations.md). A statement of its own writes only its commit
//! record, which it does not wait to flush, and holds that lock only for itself. The same
//! round trip reads the position of the write for its answer. A rollback sends nothing; a
//! wake-up lost with a connection costs a poll.
//!
//! The listening connection is the listener's own, never a pooled one: a pool behind
//! pgbouncer in transaction mode hands each transaction to any server connection, and a
//! `LISTEN` there would listen nowhere. It therefore goes straight to PostgreSQL
//! (`database.listen_url`, else `database.url`). It is read without a round trip, by a
//! non-blocking read of its socket every [`CHECK_EVERY`] (libpq's `PQconsumeInput`, through
//! diesel), and pinged every [`PING_EVERY`] so that a silent network failure is noticed.
//! Whenever it (re)connects it wakes every worker once, for what was written while it was
//! away; the workers' own polls remain the fallback throughout.
//!
//! Each notification carries the id of the store that sent it ([`Instance`]), and a listener
//! passes over its own store's: the instance that wrote has woken its own workers in process
//! already, and a second wake-up a few milliseconds later would cost each of them a round
//! that finds nothing (the sequencer's, then every follower's).

use std::cell::Cell;
use std::sync::Arc;
use std::sync::atomic::{AtomicBool, Ordering};
use std::thread::JoinHandle;
use std::time::{Duration, Instant};

use diesel::pg::Pg;
use diesel::query_builder::{AstPass, Query, QueryFragment, QueryId};
use diesel::sql_types::{Array, BigInt, Text};
use diesel::{Connection, PgConnection, QueryResult, RunQueryDsl};
use tokio::sync::Notify;

use crate::config::{Target, one_line};
use crate::connection::AnyConnection;
use crate::consistency::Lsn;
use crate::error::Error;
use crate::replicas::parse;

/// The channel of transactions that queued Irdeto entitlement jobs.
pub const JOBS_CHANNEL: &str = "licenses_jobs";
/// The channel of transactions that wrote license or product events.
pub const EVENTS_CHANNEL: &str = "licenses_events";
/// The channel of transactions that gave events their positions: the followers of the
/// sequenced events (NATS publisher, webhook worker) of every instance wake on it, whichever
/// instance's sequencer numbered them.
pub const SEQUENCED_CHANNEL: &str = "licenses_sequenced";

thread_local! {
    /// What the transaction running on this thread wrote that other instances wait for: the
    /// store's write runs, commits and announces on one blocking thread.
    static WRITTEN: Cell<Written> = const { Cell::new(Written::NOTHING) };
}

/// The channels a transaction gives work to.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub(crate) struct Written {
    jobs: bool,
    events: bool,
    sequenced: bool,
}

impl Written {
    const NOTHING: Written = Written {
        jobs: false,
        events: false,
        sequenced: false,
    };

    /// Forgets what an earlier transaction of this thread left (one that failed), before a
    /// new one starts; and, after its commit, takes what it wrote.
    pub(crate) fn take() -> Written {
        WRITTEN.with(|w| w.replace(Written::NOTHING))
    }

    /// The running transaction queued Irdeto jobs.
    pub(crate) fn jobs() {
        Self::mark(|w| w.jobs = true);
    }

    /// The running transaction wrote events.
    pub(crate) fn events() {
        Self::mark(|w| w.events = true);
    }

    /// The running transaction gave events their positions.
    pub(crate) fn sequenced() {
        Self::mark(|w| w.sequenced = true);
    }

    fn mark(set: impl FnOnce(&mut Written)) {
        WRITTEN.with(|cell| {
            let mut written = cell.get();
            set(&mut written);
            cell.set(written);
        });
    }

    /// The channels given work.
    fn channels(self) -> impl Iterator<Item = &'static str> {
        [
            (self.jobs, JOBS_CHANNEL),
            (self.events, EVENTS_CHANNEL),
            (self.sequenced, SEQUENCED_CHANNEL),
        ]
        .into_iter()
        .filter_map(|(wrote, channel)| wrote.then_some(channel))
    }
}

/// The id a store signs its notifications with, and its listener knows its own by: random,
/// one per opened store (an instance of the service opens one).
#[derive(Debug, Clone, PartialEq, Eq)]
pub(crate) struct Instance(Arc<str>);

impl Instance {
    pub(crate) fn new() -> Instance {
        // Hex digits only: a payload that needs no quoting.
        Instance(uuid::Uuid::now_v7().simple().to_string().into())
    }
}

/// After a transaction committed on `conn`: tells every listening instance what it wrote
/// and, when `position` is asked, reads the primary's position past its commit (the answer's
/// consistency token). One round trip, outside any transaction, of a statement that stays
/// prepared ([`AfterCommit`]). On SQLite (one instance) there is nobody to tell and no
/// position.
///
/// The write stands whatever happens here. A failure is logged: the other instances find the
/// work at their next poll, and the answer goes without a token rather than as an error
/// that a client would retry into a duplicate.
pub(crate) fn after_commit(
    conn: &mut AnyConnection,
    written: Written,
    from: &Instance,
    position: bool,
) -> Option<Lsn> {
    let AnyConnection::Postgresql(pg) = conn else {
        return None;
    };
    let channels: Vec<&'static str> = written.channels().collect();
    if channels.is_empty() && !position {
        return None;
    }
    let statement = AfterCommit {
        channels,
        payload: from.clone(),
    };
    let answer = statement
        .get_result::<(String, i64)>(pg)
        .map_err(Error::Db)
        .and_then(|(lsn, _)| parse(&lsn));
    match answer {
        Ok(lsn) => position.then_some(lsn),
        Err(error) => {
            crate::connection::went_on_without(&error);
            let error = error.to_store_error();
            match position {
                true => tracing::warn!(
                    %error,
                    "a write committed, but its position is unknown: answered without a \
                     consistency token; the other instances will poll"
                ),
                false => tracing::debug!(
                    %error,
                    "cannot announce a commit; the other instances will poll"
                ),
            }
            None
        }
    }
}

/// `SELECT pg_current_wal_insert_lsn()::text, (SELECT count(pg_notify(c, $2)) FROM
/// unnest($1) AS c)`: the notifications of `channels`, signed `payload`, and the position.
/// The channels are a bound array, so the text is the same for every write and diesel keeps
/// the statement prepared on its connection: one round trip a write, where a statement
/// built for its channels would be prepared each time (two).
struct AfterCommit {
    channels: Vec<&'static str>,
    payload: Instance,
}

impl Query for AfterCommit {
    type SqlType = (Text, BigInt);
}

impl QueryId for AfterCommit {
    type QueryId = AfterCommit;
    const HAS_STATIC_QUERY_ID: bool = true;
}

impl QueryFragment<Pg> for AfterCommit {
    fn walk_ast<'b>(&'b self, mut out: AstPass<'_, 'b, Pg>) -> QueryResult<()> {
        out.push_sql("SELECT pg_current_wal_insert_lsn()::text, (SELECT count(pg_notify(c, ");
        out.push_bind_param::<Text, _>(&*self.payload.0)?;
        out.push_sql(")) FROM unnest(");
        out.push_bind_param::<Array<Text>, _>(&self.channels)?;
        out.push_sql(") AS c)");
        Ok(())
    }
}

impl RunQueryDsl<PgConnection> for AfterCommit {}

/// How often the listener reads what arrived on its connection.
pub const CHECK_EVERY: Duration = Duration::from_millis(2);
/// How often it pings the server.
const PING_EVERY: Duration = Duration::from_secs(10);
/// How long it waits before connecting again.
const RECONNECT_AFTER: Duration = Duration::from_secs(1);

/// A running listener; [`Listener::stop`] (or dropping it) ends it.
#[derive(Debug)]
pub struct Listener {
    stop: Arc<AtomicBool>,
    thread: Option<JoinHandle<()>>,
}

impl Listener {
    /// Listens on `url` (a `postgres://` URL) and notifies each [`Notify`] of a channel (a
    /// channel may have several) when a notification of it arrives from another instance than
    /// `own`. A thread of its own: the connection is held for good.
    pub(crate) fn spawn(
        target: Target,
        wakes: Vec<(&'static str, Arc<Notify>)>,
        own: Instance,
    ) -> std::io::Result<Listener> {
        let stop = Arc::new(AtomicBool::new(false));
        let stopped = Arc::clone(&stop);
        let thread = std::thread::Builder::new()
            .name("licenses-listen".into())
            .spawn(move || run(&target, &wakes, &own, &stopped))?;
        Ok(Listener {
            stop,
            thread: Some(thread),
        })
    }

    /// Ends the listener and closes its connection.
    pub fn stop(mut self) {
        self.end();
    }

    fn end(&mut self) {
        self.stop.store(true, Ordering::Release);
        if let Some(thread) = self.thread.take()
            && thread.join().is_err()
        {
            tracing::warn!("the listener thread panicked");
        }
    }
}

impl Drop for Listener {
    fn drop(&mut self) {
        self.end();
    }
}

fn run(target: &Target, wakes: &[(&'static str, Arc<Notify>)], own: &Instance, stop: &AtomicBool) {
    let Target::Postgres { url, shown } = target else {
        return;
    };
    let mut failing = false;
    while !stop.load(Ordering::Acquire) {
        match listen(url, wakes) {
            Ok(mut conn) => {
                if failing {
                    tracing::info!(database = %shown, "listening for wake-ups again");
                }
                failing = false;
                // What was written while nobody listened.
                for (_, wake) in wakes {
                    wake.notify_one();
                }
                if let Err(error) = relay(&mut conn, wakes, own, stop) {
                    tracing::warn!(database = %shown, %error, "the wake-up listener lost its connection");
                    failing = true;
                }
            }
            Err(error) => {
                if !failing {
                    tracing::warn!(
                        database = %shown,
                        %error,
                        "cannot listen for wake-ups; the workers poll meanwhile"
                    );
                }
                failing = true;
            }
        }
        let until = Instant::now() + RECONNECT_AFTER;
        while !stop.load(Ordering::Acquire) && Instant::now() < until {
            std::thread::sleep(Duration::from_millis(50));
        }
    }
}

/// A connection listening on every channel of `wakes`.
fn listen(url: &str, wakes: &[(&'static str, Arc<Notify>)]) -> Result<PgConnection, String> {
    let mut conn = PgConnection::establish(url).map_err(|e| one_line(&e.to_string()))?;
    let mut channels: Vec<&str> = wakes.iter().map(|(channel, _)| *channel).collect();
    channels.sort_unstable();
    channels.dedup();
    for channel in channels {
        diesel::sql_query(format!("LISTEN {channel}"))
            .execute(&mut conn)
            .map_err(|e| one_line(&e.to_string()))?;
    }
    Ok(conn)
}

/// Wakes the workers of each notification that arrives from another instance, until `stop`
/// or a failure.
fn relay(
    conn: &mut PgConnection,
    wakes: &[(&'static str, Arc<Notify>)],
    own: &Instance,
    stop: &AtomicBool,
) -> Result<(), String> {
    let mut pinged = Instant::now();
    while !stop.load(Ordering::Acquire) {
        for notification in conn.notifications_iter() {
            let notification = notification.map_err(|e| one_line(&e.to_string()))?;
            if notification.payload == *own.0 {
                continue;
            }
            for (_, wake) in wakes.iter().filter(|(c, _)| *c == notification.channel) {
                wake.notify_one();
            }
        }
        if pinged.elapsed() >= PING_EVERY {
            diesel::sql_query("SELECT 1")
                .execute(conn)
                .map_err(|e| one_line(&e.to_string()))?;
            pinged = Instant::now();
        }
        std::thread::sleep(CHECK_EVERY);
    }
    Ok(())
}

#[cfg(test)]
mod tests {
    use diesel::{Connection, PgConnection, RunQueryDsl};
    use licenses_testkit::TestDatabase;

    use super::*;
    use crate::connection::Pooled;
    use crate::error::tests::backend_pid;

    #[test]
    fn after_a_commit_the_position_comes_with_the_notifications_and_a_lost_connection_goes() {
        let db = TestDatabase::postgres();
        let session = PgConnection::establish(db.url()).expect("a session");
        let mut pooled = Pooled {
            conn: AnyConnection::Postgresql(session),
            lost: false,
        };
        let from = Instance::new();
        let events = Written {
            events: true,
            ..Written::NOTHING
        };
        let first = after_commit(&mut pooled.conn, events, &from, true).expect("a position");
        assert!(first > Lsn(0), "{first}");
        assert_eq!(after_commit(&mut pooled.conn, events, &from, false), None);
        pooled.notice::<()>(&Ok(()));
        assert!(!pooled.lost);

        // The server ends the session between a commit and the round trip after it.
        let AnyConnection::Postgresql(pg) = &mut pooled.conn else {
            unreachable!("a PostgreSQL session")
        };
        let pid = backend_pid(pg);
        let mut admin = PgConnection::establish(db.url()).expect("another session");
        diesel::sql_query(format!("SELECT pg_terminate_backend({pid})"))
            .execute(&mut admin)
            .expect("terminated");
        assert_eq!(
            after_commit(&mut pooled.conn, events, &from, true),
            None,
            "answered without a token"
        );
        pooled.notice::<()>(&Ok(()));
        assert!(pooled.lost, "the pool drops it, though the call went on");
    }
}
