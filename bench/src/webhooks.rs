//! License events to a webhook receiver (docs/events.md, "Webhooks"): an endpoint registered
//! on the benchmark's service, pointing at a receiver on loopback (actix-web) that verifies
//! each request with `standardwebhooks`, the reference library, as a real receiver would.
//! Two figures: how fast one batch_create's events go from the commit to the receipt of the
//! last, and the delay from sending `POST /licenses` to the receipt of its event.

use std::net::TcpListener;
use std::time::{Duration, Instant};

use actix_web::{HttpRequest, HttpResponse, web};
use anyhow::{Context, Result, bail};
use serde::{Deserialize, Serialize};
use serde_json::{Value, json};
use tokio::sync::mpsc;

use crate::events::{license, ms};
use crate::seed::{BATCH, Bss};

/// Licenses created one at a time for the delay.
const SINGLES: usize = 200;
/// The longest wait for the receiver to have what it should.
const PATIENCE: Duration = Duration::from_secs(600);

/// What [`webhooks`] measured.
#[derive(Debug, Clone, Serialize, Deserialize, Default)]
pub struct WebhookFigures {
    /// One batch_create of [`BATCH`] licenses: from its answer until the receiver had the last
    /// of its events, in ms.
    pub batch: u64,
    pub batch_ms: f64,
    /// From sending `POST /licenses` to the receiver's receipt of the event, in ms, each.
    pub delays_ms: Vec<f64>,
    /// Requests that failed the reference library's verification (0 when all is well).
    pub unverified: u64,
}

struct Receiver {
    webhook: std::sync::Mutex<Option<standardwebhooks::Webhook>>,
    arrivals: mpsc::UnboundedSender<(String, Instant, bool)>,
}

/// Verifies, then reports the license id and the time of arrival.
async fn receive(
    request: HttpRequest,
    body: web::Bytes,
    state: web::Data<Receiver>,
) -> HttpResponse {
    let arrived = Instant::now();
    let mut headers = reqwest::header::HeaderMap::new();
    for (name, value) in request.headers() {
        if let (Ok(name), Ok(value)) = (
            reqwest::header::HeaderName::from_bytes(name.as_str().as_bytes()),
            reqwest::header::HeaderValue::from_bytes(value.as_bytes()),
        ) {
            headers.append(name, value);
        }
    }
    let verified = state
        .webhook
        .lock()
        .ok()
        .and_then(|w| w.as_ref().map(|w| w.verify(&body, &headers).is_ok()))
        .unwrap_or(false);
    let event: Value = serde_json::from_slice(&body).unwrap_or(Value::Null);
    let license = event["data"]["id"].as_str().unwrap_or_default().to_owned();
    let _ = state.arrivals.send((license, arrived, verified));
    HttpResponse::NoContent().finish()
}

/// Runs the measurement against the service of `bss`; `product` is a product licenses can
/// be granted for. The endpoint is deleted at the end.
pub async fn webhooks(bss: &Bss, product: &str) -> Result<WebhookFigures> {
    println!("License events to a webhook receiver");
    let (sender, mut arrivals) = mpsc::unbounded_channel();
    let state = web::Data::new(Receiver {
        webhook: std::sync::Mutex::new(None),
        arrivals: sender,
    });
    let listener = TcpListener::bind("127.0.0.1:0").context("a port for the receiver")?;
    let url = format!("http://{}/hooks/licenses", listener.local_addr()?);
    let shared = state.clone();
    let server = actix_web::HttpServer::new(move || {
        actix_web::App::new()
            .app_data(shared.clone())
            .default_service(web::to(receive))
    })
    .workers(1)
    .disable_signals()
    .listen(listener)?
    .run();
    let handle = server.handle();
    tokio::spawn(server);

    let (status, created) = bss
        .post(
            "/webhooks",
            &json!({"data": {"type": "Webhook", "attributes": {"url": url,
                "event_types": ["license.created"], "description": "bench/run"}}}),
        )
        .await?;
    if status != 201 {
        bail!("POST /webhooks answered {status}: {created}");
    }
    let webhook = created["data"]["id"]
        .as_str()
        .context("a webhook id")?
        .to_owned();
    let secret = created["data"]["attributes"]["secret"]
        .as_str()
        .context("the secret")?;
    *state
        .webhook
        .lock()
        .map_err(|_| anyhow::anyhow!("poisoned"))? =
        Some(standardwebhooks::Webhook::new(secret).context("the reference library reads it")?);

    let mut unverified = 0;
    let data: Vec<Value> = (0..BATCH)
        .map(|i| license(&format!("webhooks-batch-{i}"), product))
        .collect();
    let (status, _) = bss
        .post("/licenses/batch_create", &json!({"data": data}))
        .await?;
    if status != 201 {
        bail!("batch_create answered {status}");
    }
    let committed = Instant::now();
    let mut seen = std::collections::HashSet::new();
    while seen.len() < BATCH {
        match tokio::time::timeout(PATIENCE, arrivals.recv()).await {
            Ok(Some((license, _, verified))) => {
                unverified += u64::from(!verified);
                seen.insert(license);
            }
            _ => bail!("the receiver got {} of {BATCH} events", seen.len()),
        }
    }
    let batch_ms = ms(committed.elapsed());
    println!(
        "  {BATCH} events of one batch from commit to webhook receipt in {batch_ms:.0} ms ({:.0} events/s)",
        BATCH as f64 / batch_ms * 1000.0
    );

    let mut delays_ms = Vec::with_capacity(SINGLES);
    for i in 0..SINGLES {
        let sent = Instant::now();
        let doc = json!({"data": license(&format!("webhooks-single-{i}"), product)});
        let (status, answer) = bss.post("/licenses", &doc).await?;
        if status != 201 {
            bail!("POST /licenses answered {status}");
        }
        let id = answer["data"]["id"].as_str().context("a license id")?;
        let arrived = loop {
            match tokio::time::timeout(Duration::from_secs(30), arrivals.recv()).await {
                Ok(Some((got, at, verified))) => {
                    unverified += u64::from(!verified);
                    if got == id {
                        break at;
                    }
                }
                _ => bail!("the event of license {id} never reached the receiver"),
            }
        };
        delays_ms.push(ms(arrived - sent));
    }
    println!(
        "  POST /licenses to the webhook receiver: median {:.1} ms over {SINGLES}",
        crate::report::median(&delays_ms)
    );
    if unverified > 0 {
        println!("  {unverified} requests failed the signature check");
    }
    let status = bss.delete(&format!("/webhooks/{webhook}")).await?;
    if status != 204 {
        bail!("DELETE /webhooks/{webhook} answered {status}");
    }
    handle.stop(true).await;
    Ok(WebhookFigures {
        batch: BATCH as u64,
        batch_ms,
        delays_ms,
        unverified,
    })
}
