//! The events workers of `licenses serve` (docs/events.md): the sequencer, which puts the
//! committed events in commit order, and the scheduler of expiry events and of pruning.
//!
//! The sequencer wakes when this instance wrote (an in-process notification from the use
//! cases and from the Irdeto worker's settlements) and polls every [`SEQUENCE_POLL`] for the
//! rest: events written by other instances. Any number of instances may run it on one
//! PostgreSQL database: one sequences at a time (an advisory lock), the others find it busy
//! and wait for their next turn. The scheduler runs every `events.scheduler_interval_ms`:
//! expiry events (at most one of each kind per license, however many instances schedule),
//! then the pruning of events older than `events.retention_days`.

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

/// The running sequencer and scheduler; [`EventWorkers::stop`] ends them.
#[derive(Debug)]
pub struct EventWorkers {
    stop: watch::Sender<bool>,
    tasks: Vec<JoinHandle<()>>,
}

impl EventWorkers {
    /// Starts the workers on the current runtime. `written` wakes the sequencer; `sequenced`
    /// is notified whenever it gave positions (the publishers wait on it).
    pub fn spawn(
        store: Arc<dyn EventStore>,
        clock: Arc<dyn Clock>,
        config: EventsConfig,
        written: Arc<Notify>,
        sequenced: Arc<Notify>,
    ) -> EventWorkers {
        let (stop, stopped) = watch::channel(false);
        let scheduler = tokio::spawn(scheduler(
            Arc::clone(&store),
            clock,
            config,
            Arc::clone(&written),
            stopped.clone(),
        ));
        let sequencer = tokio::spawn(sequencer(store, written, sequenced, stopped));
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
    sequenced: Arc<Notify>,
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
                    sequenced.notify_waiters();
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
