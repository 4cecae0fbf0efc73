//! Read replicas (`database.replicas`): PostgreSQL streaming replicas the store reads from,
//! their health, and how far each has replayed.
//!
//! A replica is read from only while it is *in*: it answered the last probe, it is a standby
//! (`pg_is_in_recovery()`), and it lags at most `database.replica_max_lag_ms`. The lag is
//! measured against the primary's own positions, probed at the same time: the replica lags
//! by how long ago the primary had written past what the replica has replayed. So an idle
//! primary never makes a replica look late, and a replica whose stream stopped falls behind
//! by the clock even though nothing is replayed. A read that fails on a replica is served by
//! the primary, and the replica is taken out until a probe finds it answering again.

use std::collections::VecDeque;
use std::sync::Mutex;
use std::sync::atomic::{AtomicBool, AtomicU64, Ordering};
use std::time::{Duration, Instant};

use diesel::RunQueryDsl;
use diesel::sql_types::{Bool, Text};

use crate::connection::AnyConnection;
use crate::consistency::Lsn;
use crate::error::Error;
use crate::road::Road;

/// How long the primary's positions are kept to measure the lag against: a replica that
/// replayed none of them lags by at least this much. `database.replica_max_lag_ms` must be
/// below it.
pub const HISTORY: Duration = Duration::from_secs(120);

/// One replica, and what the last probe found.
pub(crate) struct Replica {
    pub(crate) road: Road,
    /// The URL for messages and metrics, without its password.
    pub(crate) shown: String,
    /// Read from: the last probe found it answering, a standby, and within the lag.
    up: AtomicBool,
    /// The furthest position it is known to have replayed.
    replayed: AtomicU64,
    /// The lag the last probe measured, in milliseconds (`u64::MAX`: unknown).
    lag_ms: AtomicU64,
}

/// What a probe or a read found out about a replica.
#[derive(Debug, Clone, PartialEq, Eq)]
pub(crate) enum Health {
    In,
    Unreachable(String),
    NotStandby,
    Lagging(Duration),
}

impl Replica {
    pub(crate) fn new(road: Road, shown: String) -> Replica {
        Replica {
            road,
            shown,
            // Out until the first probe has measured it.
            up: AtomicBool::new(false),
            replayed: AtomicU64::new(0),
            lag_ms: AtomicU64::new(u64::MAX),
        }
    }

    pub(crate) fn is_up(&self) -> bool {
        self.up.load(Ordering::Acquire)
    }

    pub(crate) fn replayed(&self) -> Lsn {
        Lsn(self.replayed.load(Ordering::Acquire))
    }

    /// A read found it at `lsn` or further.
    pub(crate) fn saw_replayed(&self, lsn: Lsn) {
        self.replayed.fetch_max(lsn.0, Ordering::AcqRel);
    }

    /// A probe found it at `lsn`: taken as is, even when lower than a read saw (a replica
    /// rebuilt from an older backup must not be trusted with positions it no longer has).
    fn probed(&self, lsn: Lsn) {
        self.replayed.store(lsn.0, Ordering::Release);
    }

    pub(crate) fn lag(&self) -> Option<Duration> {
        match self.lag_ms.load(Ordering::Acquire) {
            u64::MAX => None,
            ms => Some(Duration::from_millis(ms)),
        }
    }

    /// Takes the replica in or out, logging the change.
    pub(crate) fn set(&self, health: &Health) {
        let up = *health == Health::In;
        let was = self.up.swap(up, Ordering::AcqRel);
        match (was, health) {
            (false, Health::In) => {
                tracing::info!(replica = %self.shown, "replica in: reads go to it")
            }
            (true, Health::Unreachable(error)) => {
                tracing::warn!(replica = %self.shown, %error, "replica out: it does not answer");
            }
            (true, Health::NotStandby) => tracing::warn!(
                replica = %self.shown,
                "replica out: it is not a standby (promoted?); only database.url is written"
            ),
            (true, Health::Lagging(lag)) => tracing::warn!(
                replica = %self.shown,
                lag_ms = lag.as_millis(),
                "replica out: it lags more than database.replica_max_lag_ms"
            ),
            _ => {}
        }
    }

    fn measured(&self, lag: Duration) {
        self.lag_ms.store(
            u64::try_from(lag.as_millis()).unwrap_or(u64::MAX - 1),
            Ordering::Release,
        );
    }
}

/// The primary's recent positions, to measure the replicas' lag against.
#[derive(Default)]
pub(crate) struct Positions(Mutex<VecDeque<(Instant, Lsn)>>);

impl Positions {
    pub(crate) fn push(&self, at: Instant, lsn: Lsn) {
        let mut samples = self
            .0
            .lock()
            .unwrap_or_else(std::sync::PoisonError::into_inner);
        // Only the first sample of each position matters: the lag counts from when the
        // primary first had it.
        if samples.back().is_none_or(|&(_, last)| last < lsn) {
            samples.push_back((at, lsn));
        }
        while samples
            .front()
            .is_some_and(|&(t, _)| at.saturating_duration_since(t) > HISTORY)
            && samples.len() > 1
        {
            samples.pop_front();
        }
    }

    /// How far behind a replica that replayed `replayed` is at `now`: since the primary first
    /// had a position the replica has not replayed; nothing when it has replayed them all.
    ///
    /// The oldest position kept may be far older than its sample (the first probe after a
    /// start, or the last of those forgotten), so a replica lacking even that one lags by
    /// at least [`HISTORY`]: it is not known by how much. So does every replica while the
    /// primary's position has never been probed.
    pub(crate) fn lag(&self, replayed: Lsn, now: Instant) -> Duration {
        let samples = self
            .0
            .lock()
            .unwrap_or_else(std::sync::PoisonError::into_inner);
        let Some(&(_, oldest)) = samples.front() else {
            return HISTORY;
        };
        if oldest > replayed {
            return HISTORY;
        }
        // The oldest position the replica lacks: the primary has had it since then.
        samples
            .iter()
            .find(|&&(_, lsn)| lsn > replayed)
            .map_or(Duration::ZERO, |&(t, _)| now.saturating_duration_since(t))
    }
}

/// A WAL position as PostgreSQL shows it (`16/B374D848`), in a column named `lsn`.
#[derive(diesel::QueryableByName)]
struct Position {
    #[diesel(sql_type = Text)]
    lsn: String,
}

#[derive(diesel::QueryableByName)]
struct Standby {
    #[diesel(sql_type = Bool)]
    standby: bool,
    #[diesel(sql_type = Text)]
    replayed: String,
}

pub(crate) fn parse(text: &str) -> Result<Lsn, Error> {
    text.parse().map_err(|_| {
        Error::Store(licenses_app::ports::StoreError::Internal(format!(
            "PostgreSQL answered a WAL position that does not parse: {text:?}"
        )))
    })
}

/// The primary's current insert position: at or past the commit of every transaction
/// committed on this connection.
pub(crate) fn current_position(conn: &mut AnyConnection) -> Result<Lsn, Error> {
    let row: Position =
        diesel::sql_query("SELECT pg_current_wal_insert_lsn()::text AS lsn").get_result(conn)?;
    parse(&row.lsn)
}

/// How far a replica has replayed, and whether it is a standby.
pub(crate) fn replay_position(conn: &mut AnyConnection) -> Result<(bool, Lsn), Error> {
    let row: Standby = diesel::sql_query(
        "SELECT pg_is_in_recovery() AS standby, \
         coalesce(pg_last_wal_replay_lsn(), '0/0'::pg_lsn)::text AS replayed",
    )
    .get_result(conn)?;
    Ok((row.standby, parse(&row.replayed)?))
}

/// A replica's health from a probe's answer: in unless it is not a standby or lags too much.
pub(crate) fn judge(
    replica: &Replica,
    positions: &Positions,
    answer: Result<(bool, Lsn), String>,
    max_lag: Duration,
    now: Instant,
) -> Health {
    match answer {
        Err(error) => Health::Unreachable(error),
        Ok((false, _)) => Health::NotStandby,
        Ok((true, replayed)) => {
            replica.probed(replayed);
            let lag = positions.lag(replica.replayed(), now);
            replica.measured(lag);
            if lag > max_lag {
                Health::Lagging(lag)
            } else {
                Health::In
            }
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn a_replica_lags_by_the_age_of_the_first_position_it_lacks() {
        let t0 = Instant::now();
        let p = Positions::default();
        p.push(t0, Lsn(100));
        p.push(t0 + Duration::from_secs(1), Lsn(100)); // idle: not a new position
        p.push(t0 + Duration::from_secs(2), Lsn(200));
        p.push(t0 + Duration::from_secs(3), Lsn(300));
        let now = t0 + Duration::from_secs(4);
        assert_eq!(p.lag(Lsn(300), now), Duration::ZERO, "caught up");
        assert_eq!(p.lag(Lsn(400), now), Duration::ZERO, "past the last probe");
        assert_eq!(p.lag(Lsn(250), now), Duration::from_secs(1), "lacks 300");
        assert_eq!(p.lag(Lsn(150), now), Duration::from_secs(2), "lacks 200");
        assert_eq!(
            p.lag(Lsn(0), now),
            HISTORY,
            "lacks everything: by how much is unknown"
        );
    }

    #[test]
    fn after_a_start_a_replica_lacking_the_first_position_is_late_until_it_has_it() {
        let t0 = Instant::now();
        let p = Positions::default();
        assert_eq!(p.lag(Lsn(100), t0), HISTORY, "the primary never probed");
        // The first probe: the primary may have had 100 for hours.
        p.push(t0, Lsn(100));
        let soon = t0 + Duration::from_millis(5);
        assert_eq!(p.lag(Lsn(99), soon), HISTORY);
        assert_eq!(p.lag(Lsn(100), soon), Duration::ZERO);
        p.push(t0 + Duration::from_millis(500), Lsn(200));
        let later = t0 + Duration::from_millis(510);
        assert_eq!(p.lag(Lsn(150), later), Duration::from_millis(10));
    }

    #[test]
    fn an_idle_primary_never_makes_a_replica_late() {
        let t0 = Instant::now();
        let p = Positions::default();
        for s in 0..100 {
            p.push(t0 + Duration::from_secs(s), Lsn(7));
        }
        assert_eq!(p.lag(Lsn(7), t0 + Duration::from_secs(100)), Duration::ZERO);
    }

    #[test]
    fn old_positions_are_forgotten_but_a_replica_lacking_all_stays_late() {
        let t0 = Instant::now();
        let p = Positions::default();
        for s in 0..300u64 {
            p.push(t0 + Duration::from_secs(s), Lsn(s + 1));
        }
        let now = t0 + Duration::from_secs(300);
        assert!(p.lag(Lsn(0), now) >= HISTORY, "{:?}", p.lag(Lsn(0), now));
        assert_eq!(p.lag(Lsn(299), now), Duration::from_secs(1));
    }
}
