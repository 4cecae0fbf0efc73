//! Wake-ups across instances: a dedicated PostgreSQL connection that `LISTEN`s to what the
//! triggers of migration `000009_notify` send when a transaction that queued Irdeto jobs or
//! wrote events commits, and wakes this instance's workers.
//!
//! The connection is the listener's own, never a pooled one: a pool behind pgbouncer in
//! transaction mode hands each transaction to any server connection, and a `LISTEN` there
//! would listen nowhere. It therefore goes straight to PostgreSQL (`database.listen_url`, else
//! `database.url`). It is read without a round trip, by a non-blocking read of its socket
//! every [`CHECK_EVERY`] (libpq's `PQconsumeInput`, through diesel), and pinged every
//! [`PING_EVERY`] so that a silent network failure is noticed. Whenever it (re)connects it
//! wakes every worker once, for what was written while it was away; the workers' own polls
//! remain the fallback throughout.

use std::sync::Arc;
use std::sync::atomic::{AtomicBool, Ordering};
use std::thread::JoinHandle;
use std::time::{Duration, Instant};

use diesel::{Connection, PgConnection, RunQueryDsl};
use tokio::sync::Notify;

use crate::config::{Target, one_line};

/// The channel of transactions that queued Irdeto entitlement jobs.
pub const JOBS_CHANNEL: &str = "licenses_jobs";
/// The channel of transactions that wrote license or product events.
pub const EVENTS_CHANNEL: &str = "licenses_events";

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
    /// Listens on `url` (a `postgres://` URL) and notifies each channel's [`Notify`] when a
    /// notification of it arrives. A thread of its own: the connection is held for good.
    pub(crate) fn spawn(
        target: Target,
        wakes: Vec<(&'static str, Arc<Notify>)>,
    ) -> std::io::Result<Listener> {
        let stop = Arc::new(AtomicBool::new(false));
        let stopped = Arc::clone(&stop);
        let thread = std::thread::Builder::new()
            .name("licenses-listen".into())
            .spawn(move || run(&target, &wakes, &stopped))?;
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

fn run(target: &Target, wakes: &[(&'static str, Arc<Notify>)], stop: &AtomicBool) {
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
                if let Err(error) = relay(&mut conn, wakes, stop) {
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
    for (channel, _) in wakes {
        diesel::sql_query(format!("LISTEN {channel}"))
            .execute(&mut conn)
            .map_err(|e| one_line(&e.to_string()))?;
    }
    Ok(conn)
}

/// Wakes the workers of each notification that arrives, until `stop` or a failure.
fn relay(
    conn: &mut PgConnection,
    wakes: &[(&'static str, Arc<Notify>)],
    stop: &AtomicBool,
) -> Result<(), String> {
    let mut pinged = Instant::now();
    while !stop.load(Ordering::Acquire) {
        for notification in conn.notifications_iter() {
            let notification = notification.map_err(|e| one_line(&e.to_string()))?;
            if let Some((_, wake)) = wakes.iter().find(|(c, _)| *c == notification.channel) {
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
