//! Key rotation without a restart, on the real binary (`licenses serve`, started by
//! licenses-testkit's `ServiceProcess`), against a stand-in JWKS server on loopback that a test
//! changes, stops, breaks, and counts the requests of:
//!
//! - tokens signed by key `a` (the set published at start) are accepted, and fetch nothing;
//! - key `b` is published: a token with kid `b` is accepted, without a restart, after one fetch;
//! - unknown kids are refused 401, and fetch again at most once per
//!   `auth.user_tokens.jwks_refresh_min_s` (counted at the stand-in);
//! - a static key with a kid (`auth.user_tokens.keys`) stands beside the JWKS;
//! - with the JWKS server stopped, the known kids are still accepted;
//! - a fetch that fails (503, not JSON) keeps the last good set, and a later good fetch
//!   brings the new keys;
//! - a token living longer than `auth.user_tokens.max_ttl_s` is refused 401
//!   `token_too_long_lived`.
//!
//! The tokens are signed with the test-only keys of `crates/api-user/tests/keys` (public,
//! protecting nothing).

use std::io::{BufRead, BufReader, Write};
use std::net::{SocketAddr, TcpListener, TcpStream};
use std::path::Path;
use std::sync::atomic::{AtomicBool, AtomicUsize, Ordering};
use std::sync::{Arc, Mutex};
use std::thread::JoinHandle;
use std::time::Duration;

use jsonwebtoken as jwt;
use jsonwebtoken::jwk::Jwk;
use licenses_testkit::ServiceProcess;
use serde_json::{Value, json};

const RSA_PRIVATE: &[u8] = include_bytes!("../crates/api-user/tests/keys/rs256-private.pem");
const EC_PRIVATE: &[u8] = include_bytes!("../crates/api-user/tests/keys/es256-private.pem");

/// The HS256 secret of the static key `static-1` (test-only).
const STATIC_SECRET: &str = "key-rotation-test-static-secret-0123456789";

const CATALOGUE: &str = "/api/license/v4/products";

/// What the stand-in answers to `GET /jwks.json`.
#[derive(Debug, Clone)]
enum Answer {
    Jwks(String),
    Status(u16),
    Body(String),
}

/// A JWKS server on loopback: one thread, one connection at a time, `Connection: close`.
struct JwksStandIn {
    addr: SocketAddr,
    answer: Arc<Mutex<Answer>>,
    requests: Arc<AtomicUsize>,
    stopping: Arc<AtomicBool>,
    thread: Option<JoinHandle<()>>,
}

impl JwksStandIn {
    fn start(keys: &[Value]) -> JwksStandIn {
        let listener = TcpListener::bind("127.0.0.1:0").expect("binds");
        let addr = listener.local_addr().expect("an address");
        let answer = Arc::new(Mutex::new(Answer::Jwks(String::new())));
        let requests = Arc::new(AtomicUsize::new(0));
        let stopping = Arc::new(AtomicBool::new(false));
        let thread = {
            let (answer, requests, stopping) = (
                Arc::clone(&answer),
                Arc::clone(&requests),
                Arc::clone(&stopping),
            );
            std::thread::spawn(move || {
                for stream in listener.incoming() {
                    if stopping.load(Ordering::SeqCst) {
                        break;
                    }
                    if let Ok(stream) = stream {
                        serve(stream, &answer, &requests);
                    }
                }
                // The listener is dropped here: connections are refused from now on.
            })
        };
        let stand_in = JwksStandIn {
            addr,
            answer,
            requests,
            stopping,
            thread: Some(thread),
        };
        stand_in.publish(keys);
        stand_in
    }

    fn url(&self) -> String {
        format!("http://{}/jwks.json", self.addr)
    }

    fn publish(&self, keys: &[Value]) {
        self.answer_with(Answer::Jwks(json!({ "keys": keys }).to_string()));
    }

    fn answer_with(&self, answer: Answer) {
        *self.answer.lock().expect("lock") = answer;
    }

    /// The requests for the JWKS it has answered (or started to) so far.
    fn requests(&self) -> usize {
        self.requests.load(Ordering::SeqCst)
    }

    /// Stops listening; returns once nothing listens any more.
    fn stop(&mut self) {
        self.stopping.store(true, Ordering::SeqCst);
        // Wakes the accept loop, which then sees `stopping`.
        let _ = TcpStream::connect(self.addr);
        if let Some(thread) = self.thread.take() {
            thread.join().expect("the stand-in thread");
        }
    }
}

impl Drop for JwksStandIn {
    fn drop(&mut self) {
        self.stop();
    }
}

fn serve(stream: TcpStream, answer: &Mutex<Answer>, requests: &AtomicUsize) {
    let _ = stream.set_read_timeout(Some(Duration::from_secs(10)));
    let mut reader = BufReader::new(stream);
    let mut request_line = String::new();
    if reader.read_line(&mut request_line).is_err() {
        return;
    }
    loop {
        let mut line = String::new();
        match reader.read_line(&mut line) {
            Ok(0) | Err(_) => return,
            Ok(_) if line == "\r\n" || line == "\n" => break,
            Ok(_) => {}
        }
    }
    let mut stream = reader.into_inner();
    if !request_line.starts_with("GET /jwks.json ") {
        let _ = stream
            .write_all(b"HTTP/1.1 404 Not Found\r\nContent-Length: 0\r\nConnection: close\r\n\r\n");
        return;
    }
    // Counted before the answer leaves: once the service has its answer, the count has it.
    requests.fetch_add(1, Ordering::SeqCst);
    let answer = answer.lock().expect("lock").clone();
    let (status, body) = match answer {
        Answer::Jwks(body) | Answer::Body(body) => (200, body),
        Answer::Status(status) => (status, String::new()),
    };
    let head = format!(
        "HTTP/1.1 {status} X\r\nContent-Type: application/json\r\nContent-Length: {}\r\n\
         Connection: close\r\n\r\n",
        body.len()
    );
    let _ = stream.write_all(head.as_bytes());
    let _ = stream.write_all(body.as_bytes());
    let _ = stream.flush();
}

/// The public JWK of a test private key, under `kid`.
fn jwk(alg: jwt::Algorithm, kid: &str) -> Value {
    let mut jwk = Jwk::from_encoding_key(&encoding_key(alg), alg).expect("a JWK");
    jwk.common.key_id = Some(kid.to_owned());
    serde_json::to_value(jwk).expect("JSON")
}

fn encoding_key(alg: jwt::Algorithm) -> jwt::EncodingKey {
    match alg {
        jwt::Algorithm::RS256 => jwt::EncodingKey::from_rsa_pem(RSA_PRIVATE).expect("test key"),
        jwt::Algorithm::ES256 => jwt::EncodingKey::from_ec_pem(EC_PRIVATE).expect("test key"),
        _ => jwt::EncodingKey::from_secret(STATIC_SECRET.as_bytes()),
    }
}

fn now() -> u64 {
    jwt::get_current_timestamp()
}

/// A token for user 41, valid for ten minutes, signed by `alg`'s test key under `kid`.
fn token(alg: jwt::Algorithm, kid: &str) -> String {
    token_with(
        alg,
        kid,
        json!({"sub": "41", "iat": now(), "exp": now() + 600}),
    )
}

fn token_with(alg: jwt::Algorithm, kid: &str, claims: Value) -> String {
    let mut header = jwt::Header::new(alg);
    header.kid = Some(kid.to_owned());
    jwt::encode(&header, &claims, &encoding_key(alg)).expect("signed")
}

/// `config/default.toml` and `config/test.toml` in `dir`, the latter with the static key
/// `static-1` added.
fn config_dir(dir: &Path) {
    let repo = Path::new(env!("CARGO_MANIFEST_DIR")).join("config");
    std::fs::copy(repo.join("default.toml"), dir.join("default.toml")).expect("copies");
    let mut test = std::fs::read_to_string(repo.join("test.toml")).expect("reads");
    test.push_str(&format!(
        "\n[[auth.user_tokens.keys]]\nkid = \"static-1\"\nalgorithm = \"HS256\"\n\
         secret = \"{STATIC_SECRET}\"\n"
    ));
    std::fs::write(dir.join("test.toml"), test).expect("writes");
}

/// `licenses serve` verifying user tokens with the JWKS of `stand_in`.
fn service(dir: &tempfile::TempDir, stand_in: &JwksStandIn, refresh_min_s: u64) -> ServiceProcess {
    config_dir(dir.path());
    ServiceProcess::builder(env!("CARGO_BIN_EXE_licenses"))
        .current_dir(dir.path())
        .env("APP_ENV", "test")
        .env("LICENSES_CONFIG_DIR", dir.path())
        .env(
            "LICENSES__DATABASE__URL",
            format!("sqlite://{}/licenses.db", dir.path().display()),
        )
        .env("LICENSES__AUTH__USER_TOKENS__JWKS_URL", stand_in.url())
        .env(
            "LICENSES__AUTH__USER_TOKENS__JWKS_REFRESH_MIN_S",
            refresh_min_s.to_string(),
        )
        // No fetch on a timer: every fetch the stand-in counts has a cause the test made.
        .env("LICENSES__AUTH__USER_TOKENS__JWKS_MAX_AGE_S", "0")
        .spawn()
}

/// Status and error code of `GET` the catalogue with `token`.
struct Client {
    runtime: tokio::runtime::Runtime,
    http: reqwest::Client,
    url: String,
}

impl Client {
    fn new(service: &ServiceProcess) -> Client {
        Client {
            runtime: tokio::runtime::Builder::new_current_thread()
                .enable_all()
                .build()
                .expect("a runtime"),
            http: reqwest::Client::builder()
                .no_proxy()
                .timeout(Duration::from_secs(30))
                .build()
                .expect("a client"),
            url: format!("{}{CATALOGUE}", service.user_url),
        }
    }

    fn get(&self, token: &str) -> (u16, String) {
        self.runtime.block_on(async {
            let r = self
                .http
                .get(&self.url)
                .bearer_auth(token)
                .send()
                .await
                .expect("an answer");
            let status = r.status().as_u16();
            let body: Value = r.json().await.unwrap_or(Value::Null);
            let code = body["errors"][0]["code"].as_str().unwrap_or("").to_owned();
            (status, code)
        })
    }
}

#[test]
fn keys_rotate_without_a_restart_and_unknown_kids_fetch_at_most_once_per_interval() {
    let dir = tempfile::tempdir().expect("tempdir");
    let mut stand_in = JwksStandIn::start(&[jwk(jwt::Algorithm::RS256, "a")]);
    // One fetch by unknown kid an hour: within this test, one at most.
    let service = service(&dir, &stand_in, 3600);
    let client = Client::new(&service);
    assert_eq!(stand_in.requests(), 1, "the set is fetched once at start");

    assert_eq!(client.get(&token(jwt::Algorithm::RS256, "a")).0, 200);
    assert_eq!(stand_in.requests(), 1, "a known kid fetches nothing");

    // Rotation: the issuer publishes key b and signs with it.
    stand_in.publish(&[
        jwk(jwt::Algorithm::RS256, "a"),
        jwk(jwt::Algorithm::ES256, "b"),
    ]);
    assert_eq!(client.get(&token(jwt::Algorithm::ES256, "b")).0, 200);
    assert_eq!(stand_in.requests(), 2, "kid b fetched the set once");
    assert_eq!(client.get(&token(jwt::Algorithm::RS256, "a")).0, 200);

    // Unknown kids: refused, and no fetch within refresh_min_s.
    for _ in 0..5 {
        assert_eq!(
            client.get(&token(jwt::Algorithm::RS256, "c")),
            (401, "invalid_token".to_owned())
        );
    }
    assert_eq!(stand_in.requests(), 2, "unknown kids are rate limited");
    // A kid with another algorithm than its key's.
    assert_eq!(client.get(&token(jwt::Algorithm::RS256, "b")).0, 401);

    // A static key with a kid, beside the JWKS.
    assert_eq!(client.get(&token(jwt::Algorithm::HS256, "static-1")).0, 200);
    assert_eq!(stand_in.requests(), 2);

    // The JWKS server goes away: the known kids are still accepted.
    stand_in.stop();
    assert!(
        TcpStream::connect(stand_in.addr).is_err(),
        "nothing listens"
    );
    assert_eq!(client.get(&token(jwt::Algorithm::RS256, "a")).0, 200);
    assert_eq!(client.get(&token(jwt::Algorithm::ES256, "b")).0, 200);
    assert_eq!(client.get(&token(jwt::Algorithm::RS256, "c")).0, 401);

    // Longer lived than auth.user_tokens.max_ttl_s (86400 in the test settings).
    let long = token_with(
        jwt::Algorithm::RS256,
        "a",
        json!({"sub": "41", "iat": now(), "exp": now() + 2 * 86_400}),
    );
    assert_eq!(client.get(&long), (401, "token_too_long_lived".to_owned()));
}

#[test]
fn a_failing_jwks_endpoint_keeps_the_last_good_set_until_it_answers_again() {
    let dir = tempfile::tempdir().expect("tempdir");
    let stand_in = JwksStandIn::start(&[jwk(jwt::Algorithm::RS256, "a")]);
    // No minimum between fetches: every unknown kid fetches (one at a time).
    let service = service(&dir, &stand_in, 0);
    let client = Client::new(&service);
    assert_eq!(stand_in.requests(), 1);

    for broken in [
        Answer::Status(503),
        Answer::Body("<html>not json".to_owned()),
    ] {
        stand_in.answer_with(broken.clone());
        let before = stand_in.requests();
        assert_eq!(
            client.get(&token(jwt::Algorithm::ES256, "b")).0,
            401,
            "{broken:?}"
        );
        assert_eq!(
            stand_in.requests(),
            before + 1,
            "the unknown kid fetched ({broken:?})"
        );
        assert_eq!(
            client.get(&token(jwt::Algorithm::RS256, "a")).0,
            200,
            "the last good set is kept ({broken:?})"
        );
    }
    let warned = service.stdout_line_containing(
        "user token JWKS fetch failed: keeping the last good set",
        Duration::from_secs(30),
    );
    assert!(warned.is_some(), "a failed fetch is logged as a warning");

    // The endpoint answers again, with key b: accepted, no restart.
    stand_in.publish(&[
        jwk(jwt::Algorithm::RS256, "a"),
        jwk(jwt::Algorithm::ES256, "b"),
    ]);
    assert_eq!(client.get(&token(jwt::Algorithm::ES256, "b")).0, 200);
    // The issuer drops key a: the next fetch (caused by an unknown kid here) forgets it.
    stand_in.publish(&[jwk(jwt::Algorithm::ES256, "b")]);
    assert_eq!(client.get(&token(jwt::Algorithm::RS256, "z")).0, 401);
    assert_eq!(client.get(&token(jwt::Algorithm::RS256, "a")).0, 401);
}
