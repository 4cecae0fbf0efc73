//! License events to NATS JetStream (docs/events.md) across processes: the real `licenses
//! serve` binary with `events.nats.url` set, against a real `nats-server -js` on a free port
//! (licenses-testkit). NATS killed and restarted mid-stream, the service killed with SIGKILL
//! mid-publish, and two instances publishing at once: the stream holds every event of the
//! feed once (by event id), in position order, each user's events in `user_seq` order.

mod support;

use std::collections::{HashMap, HashSet};
use std::time::{Duration, Instant};

use async_nats::jetstream::{self, consumer};
use futures_util::StreamExt;
use licenses_testkit::{NatsServer, ServiceProcess, TestDatabase};
use serde_json::Value;
use support::management::{feed, grant, product, revoke};

const STREAM: &str = "LICENSES_EVENTS";

/// `licenses serve` on `database`, publishing to `nats`; ready when this returns.
fn serve(database: &str, nats: &NatsServer) -> ServiceProcess {
    ServiceProcess::builder(env!("CARGO_BIN_EXE_licenses"))
        .current_dir(env!("CARGO_MANIFEST_DIR"))
        .env("APP_ENV", "test")
        .env("RUST_LOG", "info")
        .env("LICENSES__DATABASE__URL", database)
        .env("LICENSES__EVENTS__NATS__URL", nats.url())
        .env("LICENSES__EVENTS__NATS__TIMEOUT_MS", "500")
        .spawn()
}

/// A client patient enough for batches of 2,000 on a debug build.
fn client() -> reqwest::Client {
    reqwest::Client::builder()
        .no_proxy()
        .timeout(Duration::from_secs(30))
        .build()
        .expect("a client")
}

/// A message of the stream: its subject, its `Nats-Msg-Id`, its body.
#[derive(Debug)]
struct Message {
    subject: String,
    msg_id: String,
    body: Value,
}

/// Every message of the stream, once it holds at least `expected` (or the deadline passed).
async fn stream(nats: &NatsServer, expected: u64) -> Vec<Message> {
    let client = async_nats::connect(nats.url())
        .await
        .expect("the reader connects");
    let jetstream = jetstream::new(client);
    let deadline = Instant::now() + Duration::from_secs(30);
    let stream = loop {
        if let Ok(stream) = jetstream.get_stream(STREAM).await {
            let count = stream.get_info().await.expect("stream info").state.messages;
            if count >= expected || Instant::now() > deadline {
                break stream;
            }
        }
        assert!(Instant::now() < deadline, "no stream {STREAM}");
        tokio::time::sleep(Duration::from_millis(50)).await;
    };
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
        .max_messages(usize::try_from(count).expect("fits"))
        .expires(Duration::from_secs(5))
        .messages()
        .await
        .expect("a batch");
    let mut read = Vec::new();
    while let Some(message) = messages.next().await {
        let message = message.expect("a message");
        read.push(Message {
            subject: message.subject.to_string(),
            msg_id: message
                .headers
                .as_ref()
                .and_then(|headers| headers.get("Nats-Msg-Id"))
                .map(|id| id.as_str().to_owned())
                .expect("Nats-Msg-Id"),
            body: serde_json::from_slice(&message.payload).expect("a JSON body"),
        });
    }
    read
}

/// The stream holds the feed: every event once, in position order, with its subject and
/// its body; each user's events in `user_seq` order without a gap.
fn assert_stream_is_the_feed(messages: &[Message], feed: &[Value]) {
    let ids: Vec<&str> = messages.iter().map(|m| m.msg_id.as_str()).collect();
    let unique: HashSet<&str> = ids.iter().copied().collect();
    assert_eq!(unique.len(), ids.len(), "an event stored twice");
    let feed_ids: Vec<&str> = feed.iter().map(|e| e["id"].as_str().expect("id")).collect();
    assert_eq!(ids, feed_ids, "the stream is the feed, in position order");
    let mut seqs: HashMap<&str, i64> = HashMap::new();
    for (message, event) in messages.iter().zip(feed) {
        let kind = event["attributes"]["event_type"].as_str().expect("type");
        assert_eq!(message.subject, format!("licenses.events.{kind}"));
        assert_eq!(message.body["id"], event["id"]);
        assert_eq!(message.body["type"], kind);
        assert_eq!(message.body["position"], event["attributes"]["position"]);
        // the resource as the feed shows it (links aside: each instance roots them at its own
        // listener when server.public_base_url is unset)
        let resource = &event["attributes"]["resource"];
        for member in ["type", "id", "attributes", "relationships"] {
            assert_eq!(message.body["data"][member], resource[member]);
        }
        if let Some(user) =
            event["attributes"]["resource"]["relationships"]["user"]["data"]["id"].as_str()
        {
            let seq = message.body["user_seq"].as_i64().expect("user_seq");
            let last = seqs.insert(user, seq).unwrap_or(0);
            assert_eq!(seq, last + 1, "{user}'s events in order, none missing");
        }
    }
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn nats_down_then_up_loses_and_doubles_nothing() {
    for database in [TestDatabase::postgres(), TestDatabase::sqlite()] {
        let mut nats = NatsServer::start();
        let mut service = serve(database.url(), &nats);
        let client = client();
        let sport = product(&client, &service.management_url).await;
        let first = grant(&client, &service.management_url, &sport, 20).await;
        // NATS dies while the service goes on writing: the API does not wait for it
        nats.stop();
        let second = grant(&client, &service.management_url, &sport, 20).await;
        revoke(&client, &service.management_url, &first[..5]).await;
        revoke(&client, &service.management_url, &second[..5]).await;
        // the publisher tries and fails (timeout_ms 500) before the service dies: what the
        // client library buffered dies with it, so only the stored mark says what is left
        tokio::time::sleep(Duration::from_millis(1_500)).await;
        service.kill();
        nats.restart();
        let service = serve(database.url(), &nats);
        grant(&client, &service.management_url, &sport, 10).await;

        let expected = 1 + 20 + 20 + 10 + 10;
        let feed = feed(&client, &service.management_url, "", expected).await;
        assert_eq!(feed.len(), expected);
        let messages = stream(&nats, expected as u64).await;
        assert_stream_is_the_feed(&messages, &feed);
        // the publisher's backlog metric reaches the head once all is acknowledged
        let head = feed[expected - 1]["attributes"]["position"]
            .as_i64()
            .expect("position");
        let line = format!("licenses_events_nats_position {head}");
        let deadline = Instant::now() + Duration::from_secs(10);
        loop {
            let metrics = client
                .get(format!("{}/metrics", service.management_url))
                .send()
                .await
                .expect("the metrics answer")
                .text()
                .await
                .expect("the metrics");
            if metrics.lines().any(|l| l == line) {
                break;
            }
            assert!(Instant::now() < deadline, "no {line:?} in {metrics}");
            tokio::time::sleep(Duration::from_millis(100)).await;
        }
    }
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_service_killed_mid_publish_and_two_instances_publish_each_event_once() {
    let database = TestDatabase::postgres();
    let nats = NatsServer::start();
    let mut one = serve(database.url(), &nats);
    let client = client();
    let sport = product(&client, &one.management_url).await;
    let mut expected = 1;
    // big batches, killed at once: the kill lands before, during or after a publish round
    for _ in 0..3 {
        grant(&client, &one.management_url, &sport, 2_000).await;
        expected += 2_000;
    }
    one.kill();
    let one = serve(database.url(), &nats);
    let two = serve(database.url(), &nats);
    for at in [&one, &two, &one, &two] {
        grant(&client, &at.management_url, &sport, 500).await;
        expected += 500;
    }
    let feed = feed(&client, &two.management_url, "", expected).await;
    assert_eq!(feed.len(), expected);
    let messages = stream(&nats, expected as u64).await;
    assert_stream_is_the_feed(&messages, &feed);
}
