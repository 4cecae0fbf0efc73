//! The license events' publisher: NATS JetStream, with async-nats (the maintained official
//! client: JetStream publish acks and the `Nats-Msg-Id` dedup header).
//!
//! - subject: each event goes to `{subject_prefix}.{kind}`, e.g.
//!   `licenses.events.license.created`; the stream holds `{subject_prefix}.>`.
//! - once: each message carries `Nats-Msg-Id: {event id}`, so JetStream stores an event
//!   once however often it is sent within the stream's `duplicate_window`. The workers may
//!   therefore send again whatever they are not sure of: an ack that never came, a batch
//!   retried after a restart.
//! - acks: an event is published when JetStream acknowledged it (stored, or known already).
//!   [`NatsPublisher::publish`] pipelines a batch (sends it all, then awaits the acks in
//!   order) and tells exactly how many leading events were acknowledged, so the caller
//!   advances its mark over those only and sends the rest again.
//! - NATS down: the client reconnects on its own; meanwhile a publish fails within about
//!   `ack_timeout` instead of waiting, so the workers retry on their own schedule and the API,
//!   which only writes the outbox, never waits for NATS.
//!
//! The crate is standalone: it is handed ids, kinds and opaque bytes, not domain types.

use std::time::Duration;

use async_nats::jetstream::{self, context::ContextBuilder, stream};
use async_nats::{ConnectOptions, connection::State};
use bytes::Bytes;

/// Where the events go and how long NATS may take.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct NatsConfig {
    /// The server(s): `nats://host:4222`, a comma-separated list, or with credentials
    /// (`nats://user:password@host:4222`): they are never part of an error message.
    pub url: String,
    /// The JetStream stream, created or updated by [`NatsPublisher::connect`].
    pub stream: String,
    /// Each event is published to `{subject_prefix}.{kind}`.
    pub subject_prefix: String,
    /// How long JetStream remembers an event id: a resend within it is acknowledged as a
    /// duplicate and not stored again.
    pub duplicate_window: Duration,
    /// How long the stream keeps an event: its subscribers' catch-up horizon.
    pub max_age: Duration,
    /// The bound of one connection attempt at start (the client's own reconnects later use it
    /// too).
    pub connect_timeout: Duration,
    /// The bound of each send and each ack wait, and of the stream's creation: past it the
    /// batch fails and the caller retries later.
    pub ack_timeout: Duration,
}

impl Default for NatsConfig {
    fn default() -> Self {
        Self {
            url: "nats://127.0.0.1:4222".to_owned(),
            stream: "LICENSES_EVENTS".to_owned(),
            subject_prefix: "licenses.events".to_owned(),
            duplicate_window: Duration::from_secs(2 * 60),
            max_age: Duration::from_secs(7 * 24 * 60 * 60),
            connect_timeout: Duration::from_secs(5),
            ack_timeout: Duration::from_secs(5),
        }
    }
}

/// One event to publish.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Outgoing {
    /// The event's id, sent as `Nats-Msg-Id`: what JetStream deduplicates on.
    pub id: String,
    /// The event's type, e.g. `license.created`: the end of its subject.
    pub kind: String,
    /// The event as its subscribers read it (this crate does not look inside).
    pub body: Bytes,
}

/// What JetStream said of a batch that was acknowledged whole.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Default)]
pub struct Published {
    /// Events stored now.
    pub stored: usize,
    /// Events JetStream already had (their id was seen within the duplicate window): a resend
    /// after a lost ack, not stored again.
    pub duplicates: usize,
}

impl Published {
    /// The events acknowledged: stored or duplicates.
    pub fn acked(&self) -> usize {
        self.stored + self.duplicates
    }
}

/// Why nothing, or only the first events of a batch, were published. Messages name the
/// server without the url's credentials.
#[derive(Debug, thiserror::Error)]
pub enum PublishError {
    /// No connection could be made at start: the caller retries later.
    #[error("connecting to NATS at {server}: {reason}")]
    Connect { server: String, reason: String },
    /// The stream could not be created or brought to the configuration.
    #[error("JetStream stream {stream} at {server}: {source}")]
    Stream {
        stream: String,
        server: String,
        #[source]
        source: async_nats::jetstream::context::CreateStreamError,
    },
    /// The first `acked` events of the batch were acknowledged (`duplicates` of them as
    /// duplicates), the event `id` (at index `acked`) was not: the caller advances its mark
    /// over the first `acked` events only and sends the others again later. Those may have been
    /// stored all the same (an ack lost, or a send the client held while disconnected and
    /// sent on reconnecting): their resend is then acknowledged as duplicates.
    #[error(
        "NATS acknowledged {acked} event(s) of the batch, then not event {id} \
         (subject {subject}): {source}"
    )]
    Partial {
        acked: usize,
        duplicates: usize,
        id: String,
        subject: String,
        #[source]
        source: async_nats::jetstream::context::PublishError,
    },
}

impl PublishError {
    /// How many leading events of the batch were acknowledged: 0 unless [`Self::Partial`].
    pub fn acked(&self) -> usize {
        match self {
            Self::Partial { acked, .. } => *acked,
            Self::Connect { .. } | Self::Stream { .. } => 0,
        }
    }
}

/// Publishes sent before their acks are awaited: the pipeline's depth. Each holds one of the
/// client's in-flight permits until its ack is read.
const WINDOW: usize = 256;

/// The context's in-flight permits: the window, and room for the acks a failed batch
/// abandoned (their permits come back within `ack_timeout`), so the retry does not wait.
const IN_FLIGHT: usize = 4 * WINDOW;

/// A connection to NATS and the stream the events go to. One batch at a time: a batch's
/// acks are read in order, so its acked prefix is exact.
#[derive(Debug)]
pub struct NatsPublisher {
    client: async_nats::Client,
    jetstream: jetstream::Context,
    subject_prefix: String,
    /// Batches one after the other: two interleaved batches could each hold part of the
    /// in-flight permits and wait for the rest forever.
    one_batch: tokio::sync::Mutex<()>,
}

impl NatsPublisher {
    /// Connects (one attempt, bounded by `connect_timeout`: a server that is down is an error
    /// the caller retries, not a wait), then creates the stream or updates it to `config`.
    /// Once connected, the client reconnects by itself whenever the connection drops.
    pub async fn connect(config: NatsConfig) -> Result<Self, PublishError> {
        let server = redacted(&config.url);
        let connect_error = |reason: String| PublishError::Connect {
            server: server.clone(),
            reason,
        };
        let options = ConnectOptions::new()
            .name("licenses")
            .connection_timeout(config.connect_timeout)
            .request_timeout(Some(config.ack_timeout));
        let client = tokio::time::timeout(
            config.connect_timeout,
            async_nats::connect_with_options(config.url.as_str(), options),
        )
        .await
        .map_err(|_| connect_error(format!("no answer within {:?}", config.connect_timeout)))?
        .map_err(|err| connect_error(err.to_string()))?;

        let jetstream = ContextBuilder::new()
            .timeout(config.ack_timeout)
            .ack_timeout(config.ack_timeout)
            .max_ack_inflight(IN_FLIGHT)
            .backpressure_on_inflight(true)
            .build(client.clone());
        jetstream
            .create_or_update_stream(stream::Config {
                name: config.stream.clone(),
                subjects: vec![format!("{}.>", config.subject_prefix)],
                storage: stream::StorageType::File,
                duplicate_window: config.duplicate_window,
                max_age: config.max_age,
                ..Default::default()
            })
            .await
            .map_err(|source| PublishError::Stream {
                stream: config.stream.clone(),
                server: server.clone(),
                source,
            })?;

        Ok(Self {
            client,
            jetstream,
            subject_prefix: config.subject_prefix,
            one_batch: tokio::sync::Mutex::new(()),
        })
    }

    /// Publishes `batch` in its order, each event to `{subject_prefix}.{kind}` with
    /// `Nats-Msg-Id: {id}`. The publishes are pipelined (up to 256 sent before their acks are
    /// read), so a batch costs about one round trip, not one per event.
    ///
    /// `Ok` when every event was acknowledged; otherwise [`PublishError::Partial`] says how
    /// many leading events were. While NATS is down it fails within about `ack_timeout`.
    pub async fn publish(&self, batch: &[Outgoing]) -> Result<Published, PublishError> {
        let _one_batch = self.one_batch.lock().await;
        let mut published = Published::default();
        for window in batch.chunks(WINDOW) {
            let mut pending = Vec::with_capacity(window.len());
            let mut send_failure = None;
            for (index, event) in window.iter().enumerate() {
                let subject = self.subject(event);
                let message = jetstream::message::PublishMessage::build()
                    .message_id(&event.id)
                    .payload(event.body.clone());
                match self.jetstream.send_publish(subject, message).await {
                    Ok(ack) => pending.push(ack),
                    Err(source) => {
                        send_failure = Some((index, source));
                        break;
                    }
                }
            }
            // The acks of what was sent, in order, even after a failed send: they tell how
            // far the batch got.
            for (index, ack) in pending.into_iter().enumerate() {
                match ack.await {
                    Ok(ack) if ack.duplicate => published.duplicates += 1,
                    Ok(_) => published.stored += 1,
                    Err(source) => return Err(self.partial(published, &window[index], source)),
                }
            }
            if let Some((index, source)) = send_failure {
                return Err(self.partial(published, &window[index], source));
            }
        }
        Ok(published)
    }

    /// Connected to a server now. Between a drop and the client's reconnect it is false, and
    /// publishes fail.
    pub async fn ready(&self) -> bool {
        self.client.connection_state() == State::Connected
    }

    fn subject(&self, event: &Outgoing) -> String {
        format!("{}.{}", self.subject_prefix, event.kind)
    }

    fn partial(
        &self,
        published: Published,
        event: &Outgoing,
        source: async_nats::jetstream::context::PublishError,
    ) -> PublishError {
        PublishError::Partial {
            acked: published.acked(),
            duplicates: published.duplicates,
            id: event.id.clone(),
            subject: self.subject(event),
            source,
        }
    }
}

/// The server list without credentials (`user:password@` or `token@` before each host), for
/// messages and logs.
fn redacted(url: &str) -> String {
    url.split(',')
        .map(|server| {
            let server = server.trim();
            let (scheme, rest) = match server.split_once("://") {
                Some((scheme, rest)) => (Some(scheme), rest),
                None => (None, server),
            };
            let authority_end = rest.find('/').unwrap_or(rest.len());
            let rest = match rest[..authority_end].rfind('@') {
                Some(at) => &rest[at + 1..],
                None => rest,
            };
            match scheme {
                Some(scheme) => format!("{scheme}://{rest}"),
                None => rest.to_owned(),
            }
        })
        .collect::<Vec<_>>()
        .join(",")
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn redacted_drops_credentials_only() {
        assert_eq!(redacted("nats://127.0.0.1:4222"), "nats://127.0.0.1:4222");
        assert_eq!(redacted("nats://user:s3cr3t@nats:4222"), "nats://nats:4222");
        assert_eq!(redacted("token@nats"), "nats");
        assert_eq!(
            redacted("tls://a:p@one:4222, nats://two:4222"),
            "tls://one:4222,nats://two:4222"
        );
        assert_eq!(redacted("nats://u:p@w@host"), "nats://host");
    }

    #[test]
    fn connect_error_never_shows_the_password() {
        let err = PublishError::Connect {
            server: redacted("nats://user:s3cr3t@nats:4222"),
            reason: "IO error".into(),
        };
        assert!(!err.to_string().contains("s3cr3t"), "{err}");
        assert_eq!(err.acked(), 0);
    }
}
