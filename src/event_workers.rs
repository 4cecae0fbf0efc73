//! The events workers of `licenses serve` (docs/events.md): the sequencer, which puts the
//! committed events in commit order, and the scheduler of expiry events and of pruning.
//!
//! The sequencer wakes when this instance wrote (an in-process notification from the use
//! cases and from the Irdeto worker's settlements) or when another instance did (its
//! listener), and polls every [`SEQUENCE_POLL`] for what a lost wake-up would leave. Any
//! number of instances may run it on one PostgreSQL database: one sequences at a time (an
//! advisory lock), the others find it busy and wait: the one at work is woken too, and goes
//! again after its round for what committed meanwhile. When it gave positions, it wakes this
//! instance's [`Followers`], and the store's `NOTIFY` after the commit wakes the other
//! instances' ones. The scheduler runs every `events.scheduler_interval_ms`: expiry events
//! (at most one of each kind per license, however many instances schedule), then the pruning
//! of events older than `events.retention_days`.

use std::sync::Arc;
use std::time::Duration;

use licenses_app::events::EventStore;
use licenses_app::ports::Clock;
use tokio::sync::{Notify, watch};
use tokio::task::JoinHandle;

/// How often the sequencer looks for events other instances wrote when nothing woke it.
pub const SEQUENCE_POLL: Duration = Duration::from_millis(200);
/// Events one sequencing statement takes.
pub const SEQUENCE_ROUND: u32 = 1_000;
/// Expiry events one scheduling call writes, of each kind (the next call goes on).
pub const EXPIRY_ROUND: u32 = 5_000;

/// What the events workers need to know.
#[derive(Debug, Clone)]
pub struct EventsConfig {
    /// `events.retention_days`, in seconds.
    pub retention: Duration,
    /// `events.expiring_soon_hours`: the lead time of `license.expiring_soon`.
    pub expiring_soon: Duration,
    /// `events.scheduler_interval_ms`.
    pub scheduler_every: Duration,
}

/// The followers of the sequenced events in this instance, the NATS publisher and the
/// webhook worker, each woken by a [`Notify`] of its own. `notify_one` keeps a wake-up that
/// comes while the follower is busy with a round for its next wait: none is lost to the poll.
#[derive(Debug, Clone, Default)]
pub struct Followers {
    pub nats: Arc<Notify>,
    pub webhooks: Arc<Notify>,
}

impl Followers {
    /// Wakes each follower, now or at its next wait.
    pub fn wake(&self) {
        self.nats.notify_one();
        self.webhooks.notify_one();
    }

    /// What the listener wakes when another instance sequenced events.
    pub fn listened(&self) -> [(&'static str, Arc<Notify>); 2] {
        let channel = licenses_store::listen::SEQUENCED_CHANNEL;
        [
            (channel, Arc::clone(&self.nats)),
            (channel, Arc::clone(&self.webhooks)),
        ]
    }
}

/// The running sequencer and scheduler; [`EventWorkers::stop`] ends them.
#[derive(Debug)]
pub struct EventWorkers {
    stop: watch::Sender<bool>,
    tasks: Vec<JoinHandle<()>>,
}

impl EventWorkers {
    /// Starts the workers on the current runtime. `written` wakes the sequencer; `followers`
    /// are woken whenever it gave positions.
    pub fn spawn(
        store: Arc<dyn EventStore>,
        clock: Arc<dyn Clock>,
        config: EventsConfig,
        written: Arc<Notify>,
        followers: Followers,
    ) -> EventWorkers {
        let (stop, stopped) = watch::channel(false);
        let scheduler = tokio::spawn(scheduler(
            Arc::clone(&store),
            clock,
            config,
            Arc::clone(&written),
            stopped.clone(),
        ));
        let sequencer = tokio::spawn(sequencer(store, written, followers, stopped));
        EventWorkers {
            stop,
            tasks: vec![sequencer, scheduler],
        }
    }

    /// Lets the round in hand finish, then ends the workers.
    pub async fn stop(self) {
        let _ = self.stop.send(true);
        for task in self.tasks {
            if let Err(error) = task.await {
                tracing::warn!(%error, "an events worker failed");
            }
        }
    }
}

async fn sequencer(
    store: Arc<dyn EventStore>,
    written: Arc<Notify>,
    followers: Followers,
    mut stopped: watch::Receiver<bool>,
) {
    let mut failing = false;
    loop {
        if *stopped.borrow() {
            break;
        }
        let more = match store.sequence(SEQUENCE_ROUND).await {
            Ok(done) => {
                if failing {
                    tracing::info!("events are sequenced again");
                }
                failing = false;
                if done.events > 0 {
                    followers.wake();
                }
                done.events == SEQUENCE_ROUND
            }
            Err(error) => {
                if !failing {
                    tracing::warn!(%error, "cannot sequence events; retrying");
                }
                failing = true;
                false
            }
        };
        if more {
            continue;
        }
        tokio::select! {
            () = written.notified() => {}
            () = tokio::time::sleep(SEQUENCE_POLL) => {}
            _ = stopped.changed() => {}
        }
    }
    tracing::info!("events sequencer stopped");
}

async fn scheduler(
    store: Arc<dyn EventStore>,
    clock: Arc<dyn Clock>,
    config: EventsConfig,
    written: Arc<Notify>,
    mut stopped: watch::Receiver<bool>,
) {
    loop {
        if *stopped.borrow() {
            break;
        }
        let now = clock.now();
        match store
            .schedule_expiry(now, config.expiring_soon, EXPIRY_ROUND)
            .await
        {
            Ok(0) => {}
            Ok(n) => {
                tracing::debug!(events = n, "expiry events written");
                written.notify_one();
                // More may be due at once: go on without waiting.
                if n >= u64::from(EXPIRY_ROUND) {
                    continue;
                }
            }
            Err(error) => tracing::warn!(%error, "cannot schedule expiry events; retrying"),
        }
        let before = now.minus_seconds(config.retention.as_secs());
        match store.prune_events(before).await {
            Ok(0) => {}
            Ok(n) => tracing::info!(events = n, "events past their retention pruned"),
            Err(error) => tracing::warn!(%error, "cannot prune events; retrying"),
        }
        tokio::select! {
            () = tokio::time::sleep(config.scheduler_every) => {}
            _ = stopped.changed() => {}
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    /// Whether `notify` is notified within a second.
    async fn woken(notify: &Notify) -> bool {
        tokio::time::timeout(Duration::from_secs(1), notify.notified())
            .await
            .is_ok()
    }

    #[tokio::test]
    async fn a_wake_up_sent_while_the_followers_are_busy_waits_for_their_next_wait() {
        let followers = Followers::default();
        // Both are in a round: nobody waits when the sequencer wakes them.
        followers.wake();
        assert!(woken(&followers.nats).await, "the NATS publisher");
        assert!(woken(&followers.webhooks).await, "the webhook worker");
        // One wake-up is one round, not a standing signal.
        assert!(!woken(&followers.nats).await);
    }

    #[test]
    fn the_listener_wakes_both_followers_on_the_sequenced_channel() {
        let followers = Followers::default();
        let listened = followers.listened();
        assert!(
            listened
                .iter()
                .all(|(channel, _)| *channel == licenses_store::listen::SEQUENCED_CHANNEL)
        );
        assert!(Arc::ptr_eq(&listened[0].1, &followers.nats));
        assert!(Arc::ptr_eq(&listened[1].1, &followers.webhooks));
    }
}
