//! Deliveries to a real HTTP receiver on loopback (actix-web) that verifies every request
//! with `standardwebhooks`, the reference library a receiver of ours would run: the
//! acceptance test of the signature and of the outcome of each kind of answer.

use std::net::TcpListener;
use std::sync::{Arc, Mutex};
use std::time::{Duration, SystemTime, UNIX_EPOCH};

use actix_web::{HttpRequest, HttpResponse, web};
use licenses_webhooks::{
    Attempt, MAX_ANSWER_LEN, Outcome, USER_AGENT, WebhookSecret, WebhookSender, sign,
    validate_endpoint,
};
use reqwest::header::{HeaderMap, HeaderName, HeaderValue};
use standardwebhooks::Webhook;

const BODY: &[u8] =
    br#"{"type":"license.created","data":{"licenseId":"lic_1","note":"caf\u00e9 \u2014 ok"}}"#;

/// One request as the receiver saw it.
#[derive(Debug, Clone)]
struct Received {
    path: String,
    headers: HeaderMap,
    body: Vec<u8>,
    /// The reference library's verdict.
    verified: Result<(), String>,
}

struct State {
    webhook: Webhook,
    received: Mutex<Vec<Received>>,
}

struct Receiver {
    base: String,
    state: Arc<State>,
    handle: actix_web::dev::ServerHandle,
}

impl Receiver {
    /// A receiver on a free loopback port that knows `secret`.
    fn start(secret: &WebhookSecret) -> Self {
        let listener = TcpListener::bind("127.0.0.1:0").expect("a loopback port");
        let base = format!("http://{}", listener.local_addr().expect("its address"));
        let state = Arc::new(State {
            webhook: Webhook::new(secret.as_str()).expect("the reference library reads whsec_"),
            received: Mutex::new(Vec::new()),
        });
        let shared = web::Data::from(Arc::clone(&state));
        let server = actix_web::HttpServer::new(move || {
            actix_web::App::new()
                .app_data(shared.clone())
                .app_data(web::PayloadConfig::new(4 * 1024 * 1024))
                .default_service(web::to(receive))
        })
        .workers(1)
        .disable_signals()
        .shutdown_timeout(1)
        .listen(listener)
        .expect("listen")
        .run();
        let handle = server.handle();
        tokio::spawn(server);
        Self {
            base,
            state,
            handle,
        }
    }

    fn url(&self, path: &str) -> url::Url {
        validate_endpoint(&format!("{}{path}", self.base), true).expect("a loopback endpoint")
    }

    fn received(&self) -> Vec<Received> {
        self.state.received.lock().expect("lock").clone()
    }

    async fn stop(self) {
        self.handle.stop(false).await;
    }
}

/// actix-web's headers (http 0.2) as the reference library's (http 1, reqwest's).
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

/// Verifies, records, then answers as the path says:
/// - `/ok`: 204 when the reference library verified the request, else 401 with its reason;
/// - `/status/{code}`: that status;
/// - `/slow`: 200 after 3 s;
/// - `/long`: 200 with 1023 ASCII bytes, a 2-byte "é" across the 1 KiB mark, then 64 KiB more;
/// - `/redirect`: 302 to `/ok`.
async fn receive(request: HttpRequest, body: web::Bytes, state: web::Data<State>) -> HttpResponse {
    let headers = headers_of(&request);
    let verified = state
        .webhook
        .verify(&body, &headers)
        .map_err(|e| e.to_string());
    let path = request.path().to_owned();
    state.received.lock().expect("lock").push(Received {
        path: path.clone(),
        headers,
        body: body.to_vec(),
        verified: verified.clone(),
    });
    match path.as_str() {
        "/ok" => match verified {
            Ok(()) => HttpResponse::NoContent().finish(),
            Err(reason) => HttpResponse::Unauthorized().body(reason),
        },
        "/slow" => {
            tokio::time::sleep(Duration::from_secs(3)).await;
            HttpResponse::Ok().body("too late")
        }
        "/long" => {
            let long = format!(
                "{}é{}",
                "a".repeat(MAX_ANSWER_LEN - 1),
                "b".repeat(64 * 1024)
            );
            HttpResponse::Ok().body(long)
        }
        "/redirect" => HttpResponse::Found()
            .insert_header(("location", "/ok"))
            .finish(),
        other => match other
            .strip_prefix("/status/")
            .and_then(|code| code.parse::<u16>().ok())
            .and_then(|code| actix_web::http::StatusCode::from_u16(code).ok())
        {
            Some(status) => HttpResponse::build(status).body(format!("answered {status}")),
            None => HttpResponse::NotFound().finish(),
        },
    }
}

fn now() -> i64 {
    let since = SystemTime::now()
        .duration_since(UNIX_EPOCH)
        .expect("after 1970");
    i64::try_from(since.as_secs()).expect("seconds fit")
}

fn sender() -> WebhookSender {
    WebhookSender::new(Duration::from_secs(2), true)
}

async fn send_to(receiver: &Receiver, secret: &WebhookSecret, path: &str) -> Attempt {
    sender()
        .send(&receiver.url(path), secret, "msg_01", now(), BODY)
        .await
}

#[tokio::test]
async fn a_delivery_is_verified_by_the_reference_library() {
    let secret = WebhookSecret::generate();
    let receiver = Receiver::start(&secret);
    let timestamp = now();
    let attempt = sender()
        .send(
            &receiver.url("/ok"),
            &secret,
            "msg_2mWDa8dy4R",
            timestamp,
            BODY,
        )
        .await;
    assert_eq!(
        attempt,
        Attempt {
            status: Some(204),
            answer: String::new(),
            outcome: Outcome::Delivered,
        }
    );

    let received = receiver.received();
    assert_eq!(received.len(), 1);
    let request = &received[0];
    assert_eq!(request.verified, Ok(()));
    assert_eq!(request.body, BODY);
    let header = |name: &str| {
        request
            .headers
            .get(name)
            .and_then(|v| v.to_str().ok())
            .map(str::to_owned)
    };
    assert_eq!(header("webhook-id").as_deref(), Some("msg_2mWDa8dy4R"));
    assert_eq!(header("webhook-timestamp"), Some(timestamp.to_string()));
    assert_eq!(
        header("webhook-signature"),
        Some(sign(&secret, "msg_2mWDa8dy4R", timestamp, BODY))
    );
    assert_eq!(header("content-type").as_deref(), Some("application/json"));
    assert_eq!(header("user-agent").as_deref(), Some(USER_AGENT));
    assert!(USER_AGENT.starts_with("aminotv-licenses"));

    // The same request, changed after signing, fails the reference library's check.
    let webhook = Webhook::new(secret.as_str()).expect("whsec_");
    let mut tampered_body = request.body.clone();
    tampered_body[10] ^= 0x01;
    assert!(webhook.verify(&tampered_body, &request.headers).is_err());
    let mut tampered_time = request.headers.clone();
    tampered_time.insert(
        "webhook-timestamp",
        HeaderValue::from_str(&(timestamp + 1).to_string()).expect("value"),
    );
    assert!(webhook.verify(&request.body, &tampered_time).is_err());
    let mut tampered_id = request.headers.clone();
    tampered_id.insert("webhook-id", HeaderValue::from_static("msg_other"));
    assert!(webhook.verify(&request.body, &tampered_id).is_err());
    let other = Webhook::new(WebhookSecret::generate().as_str()).expect("whsec_");
    assert!(other.verify(&request.body, &request.headers).is_err());
    receiver.stop().await;
}

#[tokio::test]
async fn tampered_requests_are_refused_by_the_receiver() {
    let secret = WebhookSecret::generate();
    let receiver = Receiver::start(&secret);
    let client = reqwest::Client::new();
    let timestamp = now();
    let signature = sign(&secret, "msg_t", timestamp, BODY);
    let post = |body: &'static [u8], ts: i64| {
        client
            .post(receiver.url("/ok"))
            .header("webhook-id", "msg_t")
            .header("webhook-timestamp", ts.to_string())
            .header("webhook-signature", signature.clone())
            .header("content-type", "application/json")
            .body(body)
            .send()
    };
    let honest = post(BODY, timestamp).await.expect("answer");
    assert_eq!(honest.status(), 204);
    let other_body = post(br#"{"type":"license.revoked"}"#, timestamp)
        .await
        .expect("answer");
    assert_eq!(other_body.status(), 401);
    let other_time = post(BODY, timestamp - 1).await.expect("answer");
    assert_eq!(other_time.status(), 401);

    let verdicts: Vec<bool> = receiver
        .received()
        .iter()
        .map(|r| r.verified.is_ok())
        .collect();
    assert_eq!(verdicts, [true, false, false]);
    receiver.stop().await;
}

#[tokio::test]
async fn a_stale_timestamp_is_refused_and_retried() {
    // Receivers refuse a timestamp minutes old (replays): a retry must be signed anew.
    let secret = WebhookSecret::generate();
    let receiver = Receiver::start(&secret);
    let attempt = sender()
        .send(&receiver.url("/ok"), &secret, "msg_old", now() - 600, BODY)
        .await;
    assert_eq!(attempt.status, Some(401));
    assert_eq!(attempt.outcome, Outcome::Retry);
    assert!(attempt.answer.contains("too old"), "{}", attempt.answer);
    receiver.stop().await;
}

#[tokio::test]
async fn answers_decide_the_outcome() {
    let secret = WebhookSecret::generate();
    let receiver = Receiver::start(&secret);
    for (code, outcome) in [
        (200, Outcome::Delivered),
        (202, Outcome::Delivered),
        (500, Outcome::Retry),
        (503, Outcome::Retry),
        (429, Outcome::Retry),
        (408, Outcome::Retry),
        (400, Outcome::Retry),
        (404, Outcome::Retry),
        (410, Outcome::Gone),
    ] {
        let attempt = send_to(&receiver, &secret, &format!("/status/{code}")).await;
        assert_eq!(attempt.status, Some(code), "{code}");
        assert_eq!(attempt.outcome, outcome, "{code}");
        assert!(
            attempt.answer.starts_with(&format!("answered {code}")),
            "{attempt:?}"
        );
    }
    // Every one was signed right, whatever the answer.
    assert!(receiver.received().iter().all(|r| r.verified.is_ok()));
    receiver.stop().await;
}

#[tokio::test]
async fn connection_refused_is_retried_with_the_error() {
    let port = {
        let listener = TcpListener::bind("127.0.0.1:0").expect("a loopback port");
        listener.local_addr().expect("its address").port()
    };
    let url = validate_endpoint(&format!("http://127.0.0.1:{port}/hook?token=s3cr3t"), true)
        .expect("endpoint");
    let attempt = sender()
        .send(&url, &WebhookSecret::generate(), "msg_r", now(), BODY)
        .await;
    assert_eq!(attempt.status, None);
    assert_eq!(attempt.outcome, Outcome::Retry);
    assert!(
        attempt.answer.to_lowercase().contains("connect"),
        "{}",
        attempt.answer
    );
    assert!(attempt.answer.contains("refused"), "{}", attempt.answer);
    // The URL (and a token in its query) stays out of the attempt log.
    assert!(!attempt.answer.contains("s3cr3t"), "{}", attempt.answer);
}

#[tokio::test]
async fn a_slow_receiver_times_out_and_is_retried() {
    let secret = WebhookSecret::generate();
    let receiver = Receiver::start(&secret);
    let sender = WebhookSender::new(Duration::from_millis(300), true);
    let started = std::time::Instant::now();
    let attempt = sender
        .send(&receiver.url("/slow"), &secret, "msg_s", now(), BODY)
        .await;
    let took = started.elapsed();
    assert_eq!(attempt.status, None);
    assert_eq!(attempt.outcome, Outcome::Retry);
    assert!(attempt.answer.contains("timed out"), "{}", attempt.answer);
    assert!(took < Duration::from_secs(2), "{took:?}");
    receiver.stop().await;
}

#[tokio::test]
async fn a_long_answer_is_cut_at_a_character_boundary() {
    let secret = WebhookSecret::generate();
    let receiver = Receiver::start(&secret);
    let attempt = send_to(&receiver, &secret, "/long").await;
    assert_eq!(attempt.status, Some(200));
    assert_eq!(attempt.outcome, Outcome::Delivered);
    // "é" straddles the limit: it is left out whole, not split into a replacement character.
    assert_eq!(attempt.answer, "a".repeat(MAX_ANSWER_LEN - 1));
    receiver.stop().await;
}

#[tokio::test]
async fn redirects_are_not_followed() {
    let secret = WebhookSecret::generate();
    let receiver = Receiver::start(&secret);
    let attempt = send_to(&receiver, &secret, "/redirect").await;
    assert_eq!(attempt.status, Some(302));
    assert_eq!(attempt.outcome, Outcome::Retry);
    let paths: Vec<String> = receiver.received().into_iter().map(|r| r.path).collect();
    assert_eq!(paths, ["/redirect"]);
    receiver.stop().await;
}

/// Without `allow_private_networks`, nothing reaches a receiver on loopback: not by its
/// address, not by a name that resolves to it. The same receiver gets the delivery once
/// private networks are allowed, so the refusal is the policy's, not the receiver's.
#[tokio::test]
async fn private_networks_are_refused_unless_allowed() {
    let secret = WebhookSecret::generate();
    let receiver = Receiver::start(&secret);
    let public_only = WebhookSender::new(Duration::from_secs(2), false);
    let by_address = receiver.url("/ok");
    let by_name = validate_endpoint(&by_address.as_str().replace("127.0.0.1", "localhost"), true)
        .expect("endpoint");
    for url in [&by_address, &by_name] {
        let attempt = public_only.send(url, &secret, "msg_p", now(), BODY).await;
        assert_eq!(attempt.status, None, "{url}");
        assert_eq!(attempt.outcome, Outcome::Retry, "{url}");
        assert!(
            attempt.answer.contains("private") || attempt.answer.contains("public"),
            "{url}: {}",
            attempt.answer
        );
    }
    assert!(receiver.received().is_empty());
    let attempt = sender()
        .send(&by_address, &secret, "msg_p", now(), BODY)
        .await;
    assert_eq!(attempt.outcome, Outcome::Delivered);
    assert_eq!(receiver.received().len(), 1);
    receiver.stop().await;
}
