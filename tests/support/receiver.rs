//! A webhook receiver on loopback, as a receiver of ours would run one: a real HTTP server
//! (actix-web) that verifies every request with `standardwebhooks`, the Standard Webhooks
//! reference library, records it, and answers as the test says ([`Answer`]). It can be
//! stopped and started again on the same port: a receiver down, then up.

use std::sync::{Arc, Mutex};
use std::time::{Duration, Instant};

use actix_web::{HttpRequest, HttpResponse, web};
use reqwest::header::{HeaderMap, HeaderName, HeaderValue};
use serde_json::Value;
use standardwebhooks::Webhook;

/// How the receiver answers.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Answer {
    /// 204, when the signature verifies (401 otherwise).
    Ok,
    /// This status.
    Status(u16),
    /// 204 after this long.
    Slow(Duration),
}

/// One request, as received.
#[derive(Debug, Clone)]
pub struct Received {
    /// `webhook-id`.
    pub id: String,
    pub body: Value,
    /// The reference library's verdict.
    pub verified: Result<(), String>,
}

struct State {
    webhook: Mutex<Option<Webhook>>,
    answer: Mutex<Answer>,
    received: Mutex<Vec<Received>>,
}

pub struct Receiver {
    port: u16,
    state: Arc<State>,
    handle: Option<actix_web::dev::ServerHandle>,
}

impl Receiver {
    /// A receiver on a free loopback port, answering [`Answer::Ok`].
    pub fn start() -> Self {
        let mut receiver = Self {
            port: licenses_testkit::free_port(),
            state: Arc::new(State {
                webhook: Mutex::new(None),
                answer: Mutex::new(Answer::Ok),
                received: Mutex::new(Vec::new()),
            }),
            handle: None,
        };
        receiver.up();
        receiver
    }

    /// The URL to register, `http://127.0.0.1:PORT/hook`.
    pub fn url(&self) -> String {
        format!("http://127.0.0.1:{}/hook", self.port)
    }

    /// The endpoint's `whsec_` secret, from the 201 that created it.
    pub fn knows(&self, secret: &str) {
        *self.state.webhook.lock().expect("lock") =
            Some(Webhook::new(secret).expect("the reference library reads the secret"));
    }

    pub fn answer(&self, answer: Answer) {
        *self.state.answer.lock().expect("lock") = answer;
    }

    pub fn received(&self) -> Vec<Received> {
        self.state.received.lock().expect("lock").clone()
    }

    /// Listens (again) on its port: actix binds with SO_REUSEADDR, so the port of a stopped
    /// receiver is taken back at once.
    pub fn up(&mut self) {
        let shared = web::Data::from(Arc::clone(&self.state));
        let server = actix_web::HttpServer::new(move || {
            actix_web::App::new()
                .app_data(shared.clone())
                .default_service(web::to(receive))
        })
        .workers(2)
        .disable_signals()
        .shutdown_timeout(0)
        .bind(("127.0.0.1", self.port))
        .expect("the receiver's port")
        .run();
        self.handle = Some(server.handle());
        tokio::spawn(server);
    }

    /// Stops listening: connections are refused until [`Receiver::up`].
    pub async fn down(&mut self) {
        if let Some(handle) = self.handle.take() {
            handle.stop(false).await;
        }
    }

    /// The received requests once their distinct ids number at least `n` (or the deadline
    /// passed: the caller's assertions then say what is missing).
    pub async fn wait_for(&self, n: usize, within: Duration) -> Vec<Received> {
        let deadline = Instant::now() + within;
        loop {
            let received = self.received();
            let mut ids: Vec<&str> = received.iter().map(|r| r.id.as_str()).collect();
            ids.sort_unstable();
            ids.dedup();
            if ids.len() >= n || Instant::now() > deadline {
                return received;
            }
            tokio::time::sleep(Duration::from_millis(50)).await;
        }
    }
}

/// actix-web's headers (http 0.2) as the reference library's (http 1).
fn headers_of(request: &HttpRequest) -> HeaderMap {
    let mut headers = HeaderMap::new();
    for (name, value) in request.headers() {
        headers.append(
            HeaderName::from_bytes(name.as_str().as_bytes()).expect("a header name"),
            HeaderValue::from_bytes(value.as_bytes()).expect("a header value"),
        );
    }
    headers
}

async fn receive(request: HttpRequest, body: web::Bytes, state: web::Data<State>) -> HttpResponse {
    let headers = headers_of(&request);
    let verified = match state.webhook.lock().expect("lock").as_ref() {
        Some(webhook) => webhook.verify(&body, &headers).map_err(|e| e.to_string()),
        None => Err("the receiver does not know the secret yet".to_owned()),
    };
    let id = headers
        .get("webhook-id")
        .and_then(|v| v.to_str().ok())
        .unwrap_or_default()
        .to_owned();
    state.received.lock().expect("lock").push(Received {
        id,
        body: serde_json::from_slice(&body).unwrap_or(Value::Null),
        verified: verified.clone(),
    });
    let answer = *state.answer.lock().expect("lock");
    match answer {
        Answer::Ok => match verified {
            Ok(()) => HttpResponse::NoContent().finish(),
            Err(reason) => HttpResponse::Unauthorized().body(reason),
        },
        Answer::Status(code) => {
            HttpResponse::build(actix_web::http::StatusCode::from_u16(code).expect("a status"))
                .body(format!("answered {code}"))
        }
        Answer::Slow(wait) => {
            tokio::time::sleep(wait).await;
            HttpResponse::NoContent().finish()
        }
    }
}
