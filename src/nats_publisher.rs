//! The NATS publisher of `licenses serve` (docs/events.md), when `events.nats.url` is set: it
//! follows the sequenced events from its mark (`event_marks.nats`) and publishes each, in
//! position order, to `{subject_prefix}.{type}` with `Nats-Msg-Id` = the event id.
//!
//! The mark moves only over events JetStream acknowledged, so an event is published at least
//! once: after a failure (NATS down, an ack lost, the process killed) the unacknowledged rest
//! is sent again, and JetStream drops the repeats it still remembers
//! (`events.nats.duplicate_window_secs`); consumers dedupe by event id beyond that. The API
//! never waits for NATS: it only writes the outbox, and this task retries on its own, with
//! backoff, while NATS is down. Every instance runs one; they share the mark, and the same
//! event sent by two of them is stored once.

use std::sync::Arc;
use std::time::Duration;

use bytes::Bytes;
use licenses_app::events::{EventQuery, EventStore, FeedError};
use licenses_app::ports::StoreError;
use licenses_http::{Links, event_message};
use licenses_nats::{NatsConfig, NatsPublisher, Outgoing, PublishError};
use tokio::sync::{Notify, watch};
use tokio::task::JoinHandle;

/// The publisher's mark: every event up to it was acknowledged by JetStream.
pub const MARK: &str = "nats";
/// Events one publish round takes (pipelined: sent at once, then their acks awaited).
pub const BATCH: u32 = 500;
/// How often it looks for events when nothing woke it: the fallback for a wake-up lost (a
/// listener reconnecting); this instance's sequencer and the other instances' (through the
/// listener) wake it at once.
pub const POLL: Duration = Duration::from_millis(500);
/// The first wait after a failure; it doubles up to [`MAX_BACKOFF`].
const MIN_BACKOFF: Duration = Duration::from_millis(250);
const MAX_BACKOFF: Duration = Duration::from_secs(30);

/// The running publisher; [`NatsWorker::stop`] ends it after the round in hand.
#[derive(Debug)]
pub struct NatsWorker {
    stop: watch::Sender<bool>,
    task: JoinHandle<()>,
}

impl NatsWorker {
    /// Starts publishing on the current runtime. `links` roots the links of the events'
    /// resources (the management API's public URL); `sequenced` wakes it.
    pub fn spawn(
        store: Arc<dyn EventStore>,
        config: NatsConfig,
        links: Links,
        sequenced: Arc<Notify>,
    ) -> NatsWorker {
        let (stop, stopped) = watch::channel(false);
        let task = tokio::spawn(run(store, config, links, sequenced, stopped));
        NatsWorker { stop, task }
    }

    pub async fn stop(self) {
        let _ = self.stop.send(true);
        if let Err(error) = self.task.await {
            tracing::warn!(%error, "the NATS publisher failed");
        }
    }
}

#[derive(Debug, thiserror::Error)]
enum RoundError {
    #[error(transparent)]
    Nats(#[from] PublishError),
    #[error(transparent)]
    Store(#[from] StoreError),
}

async fn run(
    store: Arc<dyn EventStore>,
    config: NatsConfig,
    links: Links,
    sequenced: Arc<Notify>,
    mut stopped: watch::Receiver<bool>,
) {
    let mut publisher = None;
    let mut backoff = MIN_BACKOFF;
    let mut failing = false;
    loop {
        if *stopped.borrow() {
            break;
        }
        let wait = match round(&*store, &mut publisher, &config, &links).await {
            Ok(published) => {
                if failing {
                    tracing::info!("events are published to NATS again");
                }
                failing = false;
                backoff = MIN_BACKOFF;
                if published == BATCH as usize {
                    continue;
                }
                None
            }
            Err(error) => {
                if !failing {
                    tracing::warn!(%error, "cannot publish events to NATS; retrying");
                }
                failing = true;
                let wait = backoff;
                backoff = (backoff * 2).min(MAX_BACKOFF);
                Some(wait)
            }
        };
        match wait {
            Some(wait) => tokio::select! {
                () = tokio::time::sleep(wait) => {}
                _ = stopped.changed() => {}
            },
            None => tokio::select! {
                () = sequenced.notified() => {}
                () = tokio::time::sleep(POLL) => {}
                _ = stopped.changed() => {}
            },
        }
    }
    tracing::info!("NATS publisher stopped");
}

/// One round: connects when not connected, publishes the next events after the mark, and
/// moves the mark over those acknowledged. How many were published.
async fn round(
    store: &dyn EventStore,
    publisher: &mut Option<NatsPublisher>,
    config: &NatsConfig,
    links: &Links,
) -> Result<usize, RoundError> {
    let publisher = match publisher {
        Some(publisher) => publisher,
        None => {
            let connected = NatsPublisher::connect(config.clone()).await?;
            tracing::info!(stream = %config.stream, "publishing events to NATS");
            publisher.insert(connected)
        }
    };
    let mark = store.mark(MARK).await?;
    let query = EventQuery {
        // never ran: from the oldest event kept
        after: (mark > 0).then_some(mark),
        user: None,
        types: Vec::new(),
        limit: BATCH,
    };
    let page = match store.page(&query).await {
        Ok(page) => page,
        Err(FeedError::CursorExpired {
            after,
            pruned_through,
        }) => {
            tracing::error!(
                after,
                pruned_through,
                "events were pruned before they reached NATS (it was down longer than \
                 events.retention_days): they are not published; consumers must resync"
            );
            store.advance(MARK, pruned_through).await?;
            return Ok(0);
        }
        Err(FeedError::Store(error)) => return Err(error.into()),
    };
    let Some(last) = page.events.last() else {
        return Ok(0);
    };
    let batch: Vec<Outgoing> = page
        .events
        .iter()
        .map(|event| Outgoing {
            id: event.id.clone(),
            kind: event.kind.as_str().to_owned(),
            body: Bytes::from(event_message(event, links)),
        })
        .collect();
    match publisher.publish(&batch).await {
        Ok(published) => {
            store.advance(MARK, last.position).await?;
            if published.duplicates > 0 {
                tracing::debug!(
                    duplicates = published.duplicates,
                    "events NATS already had (sent again after a failure or by another instance)"
                );
            }
            Ok(batch.len())
        }
        Err(error) => {
            let acked = error.acked();
            if let Some(event) = acked.checked_sub(1).and_then(|i| page.events.get(i)) {
                store.advance(MARK, event.position).await?;
            }
            Err(error.into())
        }
    }
}
