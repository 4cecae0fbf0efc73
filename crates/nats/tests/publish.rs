//! The publisher against a real `nats-server -js` (licenses-testkit): what is stored, the dedup
//! by `Nats-Msg-Id`, and NATS going down and coming back.
use std::time::{Duration, Instant};

use async_nats::jetstream::{self, consumer};
use bytes::Bytes;
use futures_util::StreamExt;
use licenses_nats::{NatsConfig, NatsPublisher, Outgoing, PublishError, Published};
use licenses_testkit::{NatsServer, free_port};

/// Slack over a configured timeout for a loaded machine (CI shares its cores).
const SLACK: Duration = Duration::from_secs(2);

fn config(url: String) -> NatsConfig {
    NatsConfig {
        url,
        connect_timeout: Duration::from_secs(2),
        ack_timeout: Duration::from_secs(1),
        ..NatsConfig::default()
    }
}

fn event(id: &str, kind: &str) -> Outgoing {
    Outgoing {
        id: id.to_owned(),
        kind: kind.to_owned(),
        body: Bytes::from(format!(r#"{{"id":"{id}"}}"#)),
    }
}

/// One message of the stream, as a subscriber reads it.
#[derive(Debug, PartialEq, Eq)]
struct Stored {
    subject: String,
    id: String,
    body: Bytes,
}

/// The whole stream, read in order with a pull consumer of its own.
async fn stored(url: &str, stream: &str) -> Vec<Stored> {
    let client = async_nats::connect(url).await.expect("reader connects");
    let jetstream = jetstream::new(client);
    let stream = jetstream
        .get_stream(stream)
        .await
        .expect("the stream exists");
    let count = stream.get_info().await.expect("stream info").state.messages;
    let consumer = stream
        .create_consumer(consumer::pull::Config {
            deliver_policy: consumer::DeliverPolicy::All,
            ack_policy: consumer::AckPolicy::None,
            ..Default::default()
        })
        .await
        .expect("a pull consumer");
    let mut messages = consumer
        .batch()
        .max_messages(usize::try_from(count).expect("count fits"))
        .expires(Duration::from_secs(5))
        .messages()
        .await
        .expect("a batch");
    let mut read = Vec::new();
    while let Some(message) = messages.next().await {
        let message = message.expect("a message");
        let id = message
            .headers
            .as_ref()
            .and_then(|headers| headers.get("Nats-Msg-Id"))
            .map(|id| id.as_str().to_owned())
            .expect("Nats-Msg-Id");
        read.push(Stored {
            subject: message.subject.to_string(),
            id,
            body: message.payload.clone(),
        });
    }
    assert_eq!(read.len() as u64, count, "every stored message read");
    read
}

fn ids(stored: &[Stored]) -> Vec<&str> {
    stored.iter().map(|message| message.id.as_str()).collect()
}

/// Polls `condition` until it holds, or fails the test at `within`.
async fn eventually(what: &str, within: Duration, mut condition: impl AsyncFnMut() -> bool) {
    let deadline = Instant::now() + within;
    while !condition().await {
        assert!(Instant::now() < deadline, "{what}: not within {within:?}");
        tokio::time::sleep(Duration::from_millis(20)).await;
    }
}

#[tokio::test]
async fn events_are_stored_once_each_with_their_subject_and_msg_id() {
    let server = NatsServer::start();
    let publisher = NatsPublisher::connect(config(server.url()))
        .await
        .expect("connects");
    assert!(publisher.ready().await);

    let batch = [
        event("e1", "license.created"),
        event("e2", "license.revoked"),
        event("e3", "license.created"),
    ];
    let published = publisher.publish(&batch).await.expect("published");
    assert_eq!(
        published,
        Published {
            stored: 3,
            duplicates: 0
        }
    );
    assert_eq!(
        publisher.publish(&[]).await.expect("nothing"),
        Published::default()
    );

    let stored = stored(&server.url(), "LICENSES_EVENTS").await;
    let expected: Vec<Stored> = batch
        .iter()
        .map(|event| Stored {
            subject: format!("licenses.events.{}", event.kind),
            id: event.id.clone(),
            body: event.body.clone(),
        })
        .collect();
    assert_eq!(stored, expected);
}

#[tokio::test]
async fn a_repeated_id_is_acked_as_duplicate_and_not_stored_again() {
    let server = NatsServer::start();
    let publisher = NatsPublisher::connect(config(server.url()))
        .await
        .expect("connects");

    publisher
        .publish(&[event("a", "license.created"), event("b", "license.created")])
        .await
        .expect("first batch");
    // A batch retried after a lost ack: its first event is known already.
    let published = publisher
        .publish(&[event("b", "license.created"), event("c", "license.updated")])
        .await
        .expect("second batch");
    assert_eq!(
        published,
        Published {
            stored: 1,
            duplicates: 1
        }
    );
    // The same id twice in one batch.
    let published = publisher
        .publish(&[event("d", "license.created"), event("d", "license.created")])
        .await
        .expect("third batch");
    assert_eq!(published.acked(), 2);
    assert_eq!(
        published,
        Published {
            stored: 1,
            duplicates: 1
        }
    );

    let stored = stored(&server.url(), "LICENSES_EVENTS").await;
    assert_eq!(ids(&stored), ["a", "b", "c", "d"]);
}

#[tokio::test]
async fn a_batch_larger_than_the_pipeline_is_stored_whole_in_order() {
    let server = NatsServer::start();
    let publisher = NatsPublisher::connect(config(server.url()))
        .await
        .expect("connects");

    let batch: Vec<Outgoing> = (0..600)
        .map(|n| event(&format!("e{n:04}"), "license.created"))
        .collect();
    let published = publisher.publish(&batch).await.expect("published");
    assert_eq!(published.stored, 600);

    let stored = stored(&server.url(), "LICENSES_EVENTS").await;
    let expected: Vec<&str> = batch.iter().map(|event| event.id.as_str()).collect();
    assert_eq!(ids(&stored), expected);
}

#[tokio::test]
async fn a_failure_in_the_batch_reports_exactly_the_acked_prefix() {
    let server = NatsServer::start();
    let publisher = NatsPublisher::connect(config(server.url()))
        .await
        .expect("connects");

    // A kind that makes no valid subject fails its send; the events before it are acked.
    let batch = [
        event("p1", "license.created"),
        event("p2", "license.created"),
        event("bad", "license created"),
        event("p3", "license.created"),
    ];
    let err = publisher.publish(&batch).await.expect_err("a bad subject");
    assert_eq!(err.acked(), 2, "{err}");
    let PublishError::Partial {
        acked,
        duplicates,
        id,
        ..
    } = &err
    else {
        panic!("not partial: {err}");
    };
    assert_eq!((*acked, *duplicates, id.as_str()), (2, 0, "bad"));

    let stored = stored(&server.url(), "LICENSES_EVENTS").await;
    assert_eq!(ids(&stored), ["p1", "p2"]);
}

#[tokio::test]
async fn while_nats_is_down_publish_fails_fast_and_after_restart_nothing_is_lost() {
    let mut server = NatsServer::start();
    let config = config(server.url());
    let ack_timeout = config.ack_timeout;
    let publisher = NatsPublisher::connect(config).await.expect("connects");

    let events: Vec<Outgoing> = (1..=6)
        .map(|n| event(&format!("e{n}"), "license.created"))
        .collect();
    publisher.publish(&events[..2]).await.expect("before");
    let mut mark = 2;

    server.stop();
    eventually(
        "the client sees the server gone",
        Duration::from_secs(10),
        async || !publisher.ready().await,
    )
    .await;

    let started = Instant::now();
    let err = publisher
        .publish(&events[mark..])
        .await
        .expect_err("NATS is down");
    let took = started.elapsed();
    assert!(took < ack_timeout + SLACK, "failed after {took:?}: {err}");
    assert_eq!(err.acked(), 0, "{err}");
    assert!(matches!(err, PublishError::Partial { .. }), "{err}");

    server.restart();
    eventually(
        "the client reconnects",
        Duration::from_secs(20),
        async || publisher.ready().await,
    )
    .await;

    // The worker's loop: send from the mark, advance it over what was acked, until all are.
    // (The failed batch's sends waited in the client and went out on the reconnect: its
    // resend is acked as duplicates, which is what the ids are for.)
    let deadline = Instant::now() + Duration::from_secs(30);
    while mark < events.len() {
        match publisher.publish(&events[mark..]).await {
            Ok(published) => mark += published.acked(),
            Err(err) => {
                assert!(Instant::now() < deadline, "still failing: {err}");
                mark += err.acked();
                tokio::time::sleep(Duration::from_millis(50)).await;
            }
        }
    }

    let stored = stored(&server.url(), "LICENSES_EVENTS").await;
    assert_eq!(ids(&stored), ["e1", "e2", "e3", "e4", "e5", "e6"]);
}

#[tokio::test]
async fn connecting_to_a_down_server_errors_within_connect_timeout() {
    // Nothing listens on the port: refused at once.
    let url = format!("nats://127.0.0.1:{}", free_port());
    let config = config(url);
    let connect_timeout = config.connect_timeout;
    let started = Instant::now();
    let err = NatsPublisher::connect(config)
        .await
        .expect_err("nothing listens");
    assert!(matches!(err, PublishError::Connect { .. }), "{err}");
    assert!(started.elapsed() < connect_timeout + SLACK, "{err}");

    // A listener that never greets (a hung server): the timeout ends the wait.
    let silent = std::net::TcpListener::bind("127.0.0.1:0").expect("a listener");
    let url = format!(
        "nats://user:s3cr3t@127.0.0.1:{}",
        silent.local_addr().expect("its address").port()
    );
    let started = Instant::now();
    let err = NatsPublisher::connect(config_with(url, connect_timeout))
        .await
        .expect_err("no INFO");
    let took = started.elapsed();
    assert!(matches!(err, PublishError::Connect { .. }), "{err}");
    assert!(
        took < connect_timeout + SLACK,
        "failed after {took:?}: {err}"
    );
    assert!(!err.to_string().contains("s3cr3t"), "{err}");
    assert!(err.to_string().contains("127.0.0.1"), "{err}");
}

fn config_with(url: String, connect_timeout: Duration) -> NatsConfig {
    NatsConfig {
        connect_timeout,
        ..config(url)
    }
}

#[tokio::test]
async fn the_stream_is_updated_to_the_configuration_on_connect() {
    let server = NatsServer::start();
    NatsPublisher::connect(config(server.url()))
        .await
        .expect("creates");
    let again = NatsConfig {
        max_age: Duration::from_secs(3600),
        duplicate_window: Duration::from_secs(60),
        ..config(server.url())
    };
    NatsPublisher::connect(again).await.expect("updates");

    let client = async_nats::connect(server.url()).await.expect("connects");
    let info = jetstream::new(client)
        .get_stream("LICENSES_EVENTS")
        .await
        .expect("the stream")
        .get_info()
        .await
        .expect("info");
    assert_eq!(info.config.subjects, ["licenses.events.>"]);
    assert_eq!(info.config.storage, jetstream::stream::StorageType::File);
    assert_eq!(info.config.max_age, Duration::from_secs(3600));
    assert_eq!(info.config.duplicate_window, Duration::from_secs(60));
}
