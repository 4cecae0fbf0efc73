//! License events to NATS JetStream (docs/events.md): a second instance of the service,
//! publishing to a real `nats-server -js` on a free loopback port, over the benchmark's
//! database. Three figures: how fast it publishes the backlog of every event the run wrote
//! before it started (as after an outage), how fast one batch_create's events go from the
//! commit to JetStream's acknowledgement, and the delay from sending `POST /licenses` to a
//! JetStream consumer's receipt of its `license.created`.

use std::time::{Duration, Instant};

use anyhow::{Context, Result, bail};
use async_nats::jetstream::{self, consumer, stream::Stream};
use futures_util::StreamExt;
use licenses_testkit::NatsServer;
use serde::{Deserialize, Serialize};
use serde_json::{Value, json};
use tokio::sync::mpsc;

use crate::seed::{BATCH, Bss};
use crate::service::{Launch, Service};

/// The stream the service creates (`events.nats.stream`'s default).
const STREAM: &str = "LICENSES_EVENTS";
/// Licenses created one at a time for the delay.
const SINGLES: usize = 200;
/// The longest wait for JetStream to hold what it should.
const PATIENCE: Duration = Duration::from_secs(600);

/// What [`events`] measured.
#[derive(Debug, Clone, Serialize, Deserialize, Default)]
pub struct EventFigures {
    /// The events already in the table when the publisher started, and how long until
    /// JetStream held them all, in ms.
    pub backlog: u64,
    pub backlog_ms: f64,
    /// One batch_create of [`BATCH`] licenses: from its answer until JetStream held its last
    /// event, in ms.
    pub batch: u64,
    pub batch_ms: f64,
    /// From sending `POST /licenses` to the consumer's receipt of the event, in ms, each.
    pub delays_ms: Vec<f64>,
}

/// Runs the measurement; `product` is a product licenses can be granted for, `database` the
/// benchmark's database, where every event of the run so far waits.
pub async fn events(launch: &Launch<'_>, database: &str, product: &str) -> Result<EventFigures> {
    println!("License events to NATS JetStream");
    let nats = NatsServer::start();
    let backlog: u64 = crate::psql(database, "SELECT count(*) FROM events")?
        .trim()
        .parse()
        .context("counting the events")?;

    let mut publishing = launch.clone();
    publishing.log = launch.log.with_file_name("service-nats.log");
    publishing.nats_url = Some(nats.url());
    let started = Instant::now();
    let service = Service::start(&publishing)?;
    let jetstream = jetstream::new(
        async_nats::connect(nats.url())
            .await
            .context("connecting to NATS")?,
    );
    let mut stream = created(&jetstream).await?;
    held(&mut stream, backlog).await?;
    let backlog_ms = ms(started.elapsed());
    println!(
        "  a backlog of {backlog} events published in {:.1} s ({:.0} events/s)",
        backlog_ms / 1000.0,
        backlog as f64 / backlog_ms * 1000.0
    );

    let bss = Bss::new(&service.management_url)?;
    let data: Vec<Value> = (0..BATCH)
        .map(|i| license(&format!("events-batch-{i}"), product))
        .collect();
    let (status, _) = bss
        .post("/licenses/batch_create", &json!({"data": data}))
        .await?;
    if status != 201 {
        bail!("batch_create answered {status}");
    }
    let committed = Instant::now();
    held(&mut stream, backlog + BATCH as u64).await?;
    let batch_ms = ms(committed.elapsed());
    println!(
        "  {BATCH} events of one batch from commit to NATS ack in {batch_ms:.0} ms ({:.0} events/s)",
        BATCH as f64 / batch_ms * 1000.0
    );

    let delays_ms = delays(&bss, &stream, product).await?;
    println!(
        "  POST /licenses to a consumer's receipt: median {:.1} ms over {SINGLES}",
        crate::report::median(&delays_ms)
    );
    service.stop()?;
    Ok(EventFigures {
        backlog,
        backlog_ms,
        batch: BATCH as u64,
        batch_ms,
        delays_ms,
    })
}

/// A license resource of a batch_create or a POST /licenses.
pub(crate) fn license(user: &str, product: &str) -> Value {
    json!({"type": "License", "attributes": {},
        "relationships": {"user": {"data": {"type": "User", "id": user}},
            "product": {"data": {"type": "Product", "id": product}}}})
}

pub(crate) fn ms(d: Duration) -> f64 {
    d.as_secs_f64() * 1000.0
}

/// The stream, once the service's publisher has created it.
async fn created(jetstream: &jetstream::Context) -> Result<Stream> {
    let deadline = Instant::now() + Duration::from_secs(60);
    loop {
        if let Ok(stream) = jetstream.get_stream(STREAM).await {
            return Ok(stream);
        }
        if Instant::now() > deadline {
            bail!("the service did not create the stream {STREAM} within 60 s");
        }
        tokio::time::sleep(Duration::from_millis(20)).await;
    }
}

/// Waits until the stream holds `count` messages (polled every 5 ms).
async fn held(stream: &mut Stream, count: u64) -> Result<()> {
    let deadline = Instant::now() + PATIENCE;
    loop {
        let messages = stream.info().await.context("stream info")?.state.messages;
        if messages >= count {
            return Ok(());
        }
        if Instant::now() > deadline {
            bail!("JetStream holds {messages} of {count} events after {PATIENCE:?}");
        }
        tokio::time::sleep(Duration::from_millis(5)).await;
    }
}

/// One license at a time, from sending the POST to the receipt of its event by an ordered
/// pull consumer of new `license.created` messages.
async fn delays(bss: &Bss, stream: &Stream, product: &str) -> Result<Vec<f64>> {
    let consumer = stream
        .create_consumer(consumer::pull::OrderedConfig {
            deliver_policy: consumer::DeliverPolicy::New,
            filter_subject: "licenses.events.license.created".to_owned(),
            ..Default::default()
        })
        .await
        .context("a consumer")?;
    let mut messages = consumer.messages().await.context("consuming")?;
    let (received, mut arrivals) = mpsc::unbounded_channel();
    let reader = tokio::spawn(async move {
        while let Some(Ok(message)) = messages.next().await {
            let body: Value = serde_json::from_slice(&message.payload).unwrap_or(Value::Null);
            let id = body["data"]["id"].as_str().unwrap_or_default().to_owned();
            if received.send((id, Instant::now())).is_err() {
                break;
            }
        }
    });
    let mut delays = Vec::with_capacity(SINGLES);
    for i in 0..SINGLES {
        let sent = Instant::now();
        let doc = json!({"data": license(&format!("events-single-{i}"), product)});
        let (status, answer) = bss.post("/licenses", &doc).await?;
        if status != 201 {
            bail!("POST /licenses answered {status}");
        }
        let id = answer["data"]["id"].as_str().context("a license id")?;
        let arrived = loop {
            let next = tokio::time::timeout(Duration::from_secs(30), arrivals.recv()).await;
            match next {
                Ok(Some((got, at))) if got == id => break at,
                Ok(Some(_)) => {}
                Ok(None) | Err(_) => bail!("the event of license {id} never reached the consumer"),
            }
        };
        delays.push(ms(arrived - sent));
    }
    reader.abort();
    Ok(delays)
}
