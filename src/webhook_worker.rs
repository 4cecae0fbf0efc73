//! The webhook worker of `licenses serve` (docs/events.md, "Webhooks"): it queues each
//! sequenced event for the endpoints whose filter takes it (the fan-out, from the
//! `webhooks` mark), then sends the due deliveries, signed, and records every attempt.
//!
//! Every instance runs one. The fan-out runs in one instance at a time and queues an event
//! once per endpoint (the mark moves in the transaction that queues); a delivery is claimed
//! with a lease, so two instances do not send it at once, and an instance killed mid-send
//! leaves it to be claimed again once the lease has passed: a delivery is sent at least once,
//! with the event id as `webhook-id` for receivers to drop a repeat. The API never waits for
//! a receiver.

use std::sync::Arc;
use std::time::{Duration, SystemTime, UNIX_EPOCH};

use futures_util::future::join_all;
use licenses_app::webhooks::{AttemptRecord, AttemptResult, DueDelivery, FanOut, WebhookStore};
use licenses_http::{Links, event_message};
use licenses_webhooks::{Outcome, WebhookSecret, WebhookSender, retry_delay};
use tokio::sync::{Notify, watch};
use tokio::task::JoinHandle;

/// Events one fan-out call reads.
pub const FAN_OUT_BATCH: u32 = 1_000;
/// How often it looks for work when nothing woke it: retries coming due, and events whose
/// wake-up was lost (a listener reconnecting).
pub const POLL: Duration = Duration::from_millis(500);
/// How often delivered and failed deliveries past the retention are pruned.
const PRUNE_EVERY: Duration = Duration::from_secs(600);

/// What the worker needs to know (`events.webhooks.*`, `events.retention_days`).
#[derive(Debug, Clone)]
pub struct WebhookConfig {
    pub timeout: Duration,
    pub concurrency: u32,
    pub disable_after: Duration,
    pub retry_scale: f64,
    pub allow_private_networks: bool,
    /// How long delivered and failed deliveries stay listed.
    pub retention: Duration,
}

impl WebhookConfig {
    /// A claim outlives the attempt it covers: the attempt's bound, twice, and a margin.
    fn lease(&self) -> Duration {
        self.timeout * 2 + Duration::from_secs(1)
    }
}

/// The running worker; [`WebhookWorker::stop`] ends it after the round in hand.
#[derive(Debug)]
pub struct WebhookWorker {
    stop: watch::Sender<bool>,
    task: JoinHandle<()>,
}

impl WebhookWorker {
    /// Starts the worker on the current runtime; `sequenced` wakes it.
    pub fn spawn(
        store: Arc<dyn WebhookStore>,
        config: WebhookConfig,
        links: Links,
        sequenced: Arc<Notify>,
    ) -> WebhookWorker {
        let (stop, stopped) = watch::channel(false);
        let sender = WebhookSender::new(config.timeout, config.allow_private_networks);
        let worker = Worker {
            store,
            config,
            links,
            sender,
        };
        let task = tokio::spawn(worker.run(sequenced, stopped));
        WebhookWorker { stop, task }
    }

    pub async fn stop(self) {
        let _ = self.stop.send(true);
        if let Err(error) = self.task.await {
            tracing::warn!(%error, "the webhook worker failed");
        }
    }
}

fn now_ms() -> i64 {
    let since = SystemTime::now()
        .duration_since(UNIX_EPOCH)
        .unwrap_or_default();
    i64::try_from(since.as_millis()).unwrap_or(i64::MAX)
}

fn millis(d: Duration) -> i64 {
    i64::try_from(d.as_millis()).unwrap_or(i64::MAX)
}

struct Worker {
    store: Arc<dyn WebhookStore>,
    config: WebhookConfig,
    links: Links,
    sender: WebhookSender,
}

impl Worker {
    async fn run(self, sequenced: Arc<Notify>, mut stopped: watch::Receiver<bool>) {
        let mut failing = false;
        let mut pruned = tokio::time::Instant::now();
        loop {
            if *stopped.borrow() {
                break;
            }
            let busy = match self.round().await {
                Ok(busy) => {
                    if failing {
                        tracing::info!("webhooks are delivered again");
                    }
                    failing = false;
                    busy
                }
                Err(error) => {
                    if !failing {
                        tracing::warn!(%error, "cannot deliver webhooks; retrying");
                    }
                    failing = true;
                    false
                }
            };
            if pruned.elapsed() >= PRUNE_EVERY {
                pruned = tokio::time::Instant::now();
                let before = now_ms().saturating_sub(millis(self.config.retention));
                match self.store.prune_deliveries(before).await {
                    Ok(0) => {}
                    Ok(n) => tracing::info!(deliveries = n, "webhook deliveries pruned"),
                    Err(error) => tracing::warn!(%error, "cannot prune webhook deliveries"),
                }
            }
            if busy {
                continue;
            }
            tokio::select! {
                () = sequenced.notified() => {}
                () = tokio::time::sleep(POLL) => {}
                _ = stopped.changed() => {}
            }
        }
        tracing::info!("webhook worker stopped");
    }

    /// Queues what was sequenced, then sends one claim's worth of due deliveries. Whether
    /// there is more to do at once.
    async fn round(&self) -> Result<bool, licenses_app::ports::StoreError> {
        // A fan-out that fails (the database, a row this version cannot read) does not hold
        // back the deliveries already queued: it is tried again next round.
        let fanned = match self.store.fan_out(FAN_OUT_BATCH, now_ms()).await {
            Ok(fanned) => fanned,
            Err(error) => {
                tracing::warn!(%error, "cannot queue webhook deliveries; retrying");
                FanOut::default()
            }
        };
        if let Some((after, pruned_through)) = fanned.skipped {
            tracing::error!(
                after,
                pruned_through,
                "events were pruned before they were queued for webhooks (the workers were \
                 down longer than events.retention_days): they are not delivered"
            );
        }
        let claimed = self
            .store
            .claim(
                now_ms(),
                millis(self.config.lease()),
                self.config.concurrency,
            )
            .await?;
        let full = claimed.len() >= usize::try_from(self.config.concurrency).unwrap_or(0);
        // Sent at once; their attempts recorded together, in one transaction.
        let attempts = join_all(claimed.into_iter().map(|due| self.deliver(due))).await;
        if !attempts.is_empty() {
            let recorded = self.store.record(&attempts).await?;
            if recorded < attempts.len() as u64 {
                tracing::debug!(
                    expired = attempts.len() as u64 - recorded,
                    "claims expired while their deliveries were sent; other attempts recorded them"
                );
            }
        }
        Ok(full || fanned.events >= FAN_OUT_BATCH)
    }

    /// Sends one delivery: the attempt to record.
    async fn deliver(&self, due: DueDelivery) -> AttemptRecord {
        let delivery = &due.delivery;
        let (status, answer, outcome) = match self.send(&due).await {
            Ok(attempt) => (attempt.status, attempt.answer, Some(attempt.outcome)),
            Err(reason) => (None, reason, None),
        };
        let at_ms = now_ms();
        let result = match outcome {
            Some(Outcome::Delivered) => AttemptResult::Delivered,
            Some(Outcome::Gone) => AttemptResult::Gone,
            Some(Outcome::Retry) => {
                match retry_delay(delivery.attempts + 1, rand::random::<f64>()) {
                    Some(wait) => AttemptResult::RetryAt(
                        at_ms.saturating_add(millis(wait.mul_f64(self.config.retry_scale))),
                    ),
                    None => AttemptResult::GiveUp,
                }
            }
            None => AttemptResult::GiveUp,
        };
        if matches!(result, AttemptResult::GiveUp | AttemptResult::Gone) {
            tracing::warn!(
                endpoint = %delivery.endpoint_id,
                event = %delivery.event_id,
                attempts = delivery.attempts + 1,
                status = ?status,
                "a webhook delivery failed for good (replay it once the receiver is fixed)"
            );
        }
        AttemptRecord {
            delivery_id: delivery.id,
            lease_token: due.lease_token.clone(),
            at_ms,
            status,
            answer,
            result,
            disable_failing_since_before_ms: at_ms
                .saturating_sub(millis(self.config.disable_after)),
        }
    }

    /// One attempt; `Err` when there is nothing that can be sent (the event was pruned, the
    /// stored endpoint or secret no longer reads): the delivery fails at once.
    async fn send(&self, due: &DueDelivery) -> Result<licenses_webhooks::Attempt, String> {
        let event = due.event.as_ref().ok_or_else(|| {
            "the event was pruned (events.retention_days) before it was delivered".to_owned()
        })?;
        let url = url::Url::parse(&due.url).map_err(|e| format!("the endpoint URL: {e}"))?;
        let secret =
            WebhookSecret::parse(&due.secret).map_err(|e| format!("the endpoint secret: {e}"))?;
        let body = event_message(event, &self.links);
        let timestamp = now_ms() / 1000;
        Ok(self
            .sender
            .send(&url, &secret, &event.id, timestamp, &body)
            .await)
    }
}
