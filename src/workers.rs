//! The Irdeto delivery worker of `licenses serve`: a small task that runs the delivery use
//! case ([`Delivery::deliver_due`]) whenever jobs may be due.
//!
//! It wakes when this instance wrote jobs (an in-process notification from the use cases),
//! and polls every [`POLL_EVERY`] for the rest: jobs written by other instances, and retries
//! whose time has come. Any number of instances may run it on one PostgreSQL database: the
//! claim skips the rows another worker holds. Stopping lets the round in hand finish (its
//! jobs are delivered and settled, each call bounded by `irdeto.timeout_ms`); a worker killed
//! mid-round leaves its jobs leased until the lease ends, then they are claimed again.

use std::sync::Arc;
use std::time::Duration;

use licenses_app::{App, Delivery};
use tokio::sync::{Notify, watch};
use tokio::task::JoinHandle;

/// How often the worker looks for due jobs when nothing woke it.
pub const POLL_EVERY: Duration = Duration::from_millis(500);
/// Jobs one round claims, delivered concurrently.
pub const ROUND: u32 = 64;

/// A running worker; [`Worker::stop`] ends it gracefully.
#[derive(Debug)]
pub struct Worker {
    stop: watch::Sender<bool>,
    task: JoinHandle<()>,
}

impl Worker {
    /// Starts the worker on the current runtime. `events_written` is notified after a round
    /// that settled licenses (their events wait for the sequencer).
    pub fn spawn(delivery: Delivery, wake: Arc<Notify>, events_written: Arc<Notify>) -> Worker {
        let (stop, mut stopped) = watch::channel(false);
        let task = tokio::spawn(async move {
            loop {
                if *stopped.borrow() {
                    break;
                }
                let full = match delivery.deliver_due(ROUND).await {
                    Ok(stats) => {
                        if stats.claimed > 0 {
                            tracing::debug!(?stats, "entitlement jobs delivered");
                        }
                        if stats.delivered + stats.refused > 0 {
                            events_written.notify_one();
                        }
                        stats.claimed == ROUND
                    }
                    Err(error) => {
                        tracing::warn!(%error, "cannot claim entitlement jobs; retrying");
                        false
                    }
                };
                if full {
                    // More may be due at once.
                    continue;
                }
                tokio::select! {
                    () = wake.notified() => {}
                    () = tokio::time::sleep(POLL_EVERY) => {}
                    _ = stopped.changed() => {}
                }
            }
            tracing::info!("Irdeto delivery worker stopped");
        });
        Worker { stop, task }
    }

    /// Lets the round in hand finish, then ends the worker.
    pub async fn stop(self) {
        let _ = self.stop.send(true);
        if let Err(error) = self.task.await {
            tracing::warn!(%error, "the Irdeto delivery worker failed");
        }
    }
}

/// The catalogue refresher of `licenses serve`: every `catalogue.refresh_ms` it reads the
/// database's catalogue change marker (one one-row query) and reloads the products into
/// memory when it moved, so that a product change by any writer shows on this instance
/// within `refresh_ms`. Requests never wait for it: they read the snapshot in hand. While
/// the database is down it warns once and keeps polling; the last snapshot is served.
#[derive(Debug)]
pub struct CatalogueRefresher {
    stop: watch::Sender<bool>,
    task: JoinHandle<()>,
}

impl CatalogueRefresher {
    /// Starts the refresher on the current runtime.
    pub fn spawn(app: App, every: Duration) -> CatalogueRefresher {
        let (stop, mut stopped) = watch::channel(false);
        let task = tokio::spawn(async move {
            let mut failing = false;
            loop {
                if *stopped.borrow() {
                    break;
                }
                match app.refresh_catalogue().await {
                    Ok(reloaded) => {
                        if failing {
                            tracing::info!("the catalogue refreshes again");
                        }
                        failing = false;
                        if reloaded {
                            tracing::debug!("catalogue reloaded");
                        }
                    }
                    Err(error) => {
                        if !failing {
                            tracing::warn!(
                                ?error,
                                "cannot refresh the catalogue; serving the last one, retrying"
                            );
                        }
                        failing = true;
                    }
                }
                tokio::select! {
                    () = tokio::time::sleep(every) => {}
                    _ = stopped.changed() => {}
                }
            }
        });
        CatalogueRefresher { stop, task }
    }

    /// Ends the refresher.
    pub async fn stop(self) {
        let _ = self.stop.send(true);
        if let Err(error) = self.task.await {
            tracing::warn!(%error, "the catalogue refresher failed");
        }
    }
}
