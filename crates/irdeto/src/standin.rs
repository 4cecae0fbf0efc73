//! A stand-in Irdeto for tests and benchmarks (feature `standin`): a real HTTP server on
//! loopback that speaks the contract of `docs/irdeto.md`, keeps the entitlements in memory,
//! counts what it was sent, and can be told to misbehave (answer 503, refuse a product with
//! 422, answer slowly). [`StandIn::start_tls`] serves it over TLS (rustls), with a certificate
//! the test made, and may require a client certificate (mutual TLS).

use std::collections::{HashMap, HashSet};
use std::net::TcpListener;
use std::sync::atomic::{AtomicBool, AtomicU64, Ordering};
use std::sync::{Arc, Mutex, PoisonError};
use std::time::Duration;

use actix_web::dev::ServerHandle;
use actix_web::{HttpRequest, HttpResponse, web};

/// What the stand-in was sent, so far.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Default)]
pub struct Counts {
    /// Grants that created an entitlement (201).
    pub created: u64,
    /// Grants for an id that already had one (409): a grant sent twice.
    pub duplicates: u64,
    /// Revokes that deleted an entitlement (204).
    pub revoked: u64,
    /// Revokes of an id that had none (404).
    pub revoked_missing: u64,
    /// Requests answered 503 while unavailable.
    pub unavailable: u64,
    /// Grants refused with 422 (refused product).
    pub refused: u64,
    /// Requests without the right bearer key (401).
    pub unauthorized: u64,
}

#[derive(Debug, Default)]
struct State {
    api_key: String,
    entitlements: Mutex<HashMap<String, serde_json::Value>>,
    refused_products: Mutex<HashSet<String>>,
    unavailable: AtomicBool,
    delay_ms: AtomicU64,
    created: AtomicU64,
    duplicates: AtomicU64,
    revoked: AtomicU64,
    revoked_missing: AtomicU64,
    unavailable_answers: AtomicU64,
    refused: AtomicU64,
    unauthorized: AtomicU64,
}

/// A running stand-in; stopped when dropped.
#[derive(Debug)]
pub struct StandIn {
    url: String,
    state: Arc<State>,
    handle: ServerHandle,
}

/// How a TLS stand-in presents itself: PEM documents, as a test generates them.
#[derive(Debug, Clone)]
pub struct TlsServer {
    /// The server's certificate chain, leaf first (for `127.0.0.1`).
    pub cert_pem: String,
    /// The private key of the leaf.
    pub key_pem: String,
    /// When set, a client must present a certificate issued by one of these CAs (mutual
    /// TLS): the handshake fails without one.
    pub client_ca_pem: Option<String>,
}

impl TlsServer {
    /// The rustls configuration, with the ring provider (the one reqwest's rustls uses).
    fn server_config(&self) -> Result<rustls::ServerConfig, String> {
        use rustls::pki_types::pem::PemObject;
        use rustls::pki_types::{CertificateDer, PrivateKeyDer};

        // ring: the provider reqwest's rustls uses in this workspace (no aws-lc C build).
        // Deprecated in rustls 0.23.48 for lacking post-quantum key exchange, which a test
        // stand-in on loopback does not need; explicit rather than the process-wide default.
        #[allow(deprecated)]
        let provider = Arc::new(rustls::crypto::ring::default_provider());
        let certs = |pem: &str| {
            CertificateDer::pem_slice_iter(pem.as_bytes())
                .collect::<Result<Vec<_>, _>>()
                .map_err(|e| format!("certificate PEM: {e}"))
        };
        let chain = certs(&self.cert_pem)?;
        let key = PrivateKeyDer::from_pem_slice(self.key_pem.as_bytes())
            .map_err(|e| format!("key PEM: {e}"))?;
        let builder = rustls::ServerConfig::builder_with_provider(Arc::clone(&provider))
            .with_safe_default_protocol_versions()
            .map_err(|e| e.to_string())?;
        let builder = match &self.client_ca_pem {
            Some(ca) => {
                let mut roots = rustls::RootCertStore::empty();
                for cert in certs(ca)? {
                    roots.add(cert).map_err(|e| e.to_string())?;
                }
                let verifier = rustls::server::WebPkiClientVerifier::builder_with_provider(
                    Arc::new(roots),
                    provider,
                )
                .build()
                .map_err(|e| e.to_string())?;
                builder.with_client_cert_verifier(verifier)
            }
            None => builder.with_no_client_auth(),
        };
        builder
            .with_single_cert(chain, key)
            .map_err(|e| e.to_string())
    }
}

impl StandIn {
    /// Starts a stand-in on a free loopback port that accepts `Authorization: Bearer api_key`.
    pub fn start(api_key: &str) -> std::io::Result<Self> {
        Self::serve(api_key, None)
    }

    /// [`StandIn::start`], over TLS: its [`StandIn::url`] is `https://127.0.0.1:PORT`.
    pub fn start_tls(api_key: &str, tls: &TlsServer) -> std::io::Result<Self> {
        let config = tls.server_config().map_err(std::io::Error::other)?;
        Self::serve(api_key, Some(config))
    }

    fn serve(api_key: &str, tls: Option<rustls::ServerConfig>) -> std::io::Result<Self> {
        let listener = TcpListener::bind("127.0.0.1:0")?;
        let scheme = if tls.is_some() { "https" } else { "http" };
        let url = format!("{scheme}://{}", listener.local_addr()?);
        let state = Arc::new(State {
            api_key: api_key.to_owned(),
            ..State::default()
        });
        let shared = web::Data::from(Arc::clone(&state));
        let server = actix_web::HttpServer::new(move || {
            actix_web::App::new()
                .app_data(shared.clone())
                .app_data(web::JsonConfig::default().limit(64 * 1024))
                .route("/entitlements/{id}", web::put().to(grant))
                .route("/entitlements/{id}", web::delete().to(revoke))
        })
        .workers(2)
        .disable_signals()
        .shutdown_timeout(1);
        let server = match tls {
            Some(config) => server.listen_rustls_0_23(listener, config)?,
            None => server.listen(listener)?,
        }
        .run();
        let handle = server.handle();
        tokio::spawn(server);
        Ok(Self { url, state, handle })
    }

    /// `http://127.0.0.1:PORT` (`https://` over TLS): the `irdeto.base_url` to configure.
    pub fn url(&self) -> &str {
        &self.url
    }

    /// While `true`, every request is answered 503.
    pub fn set_unavailable(&self, unavailable: bool) {
        self.state.unavailable.store(unavailable, Ordering::SeqCst);
    }

    /// Grants of this Irdeto product are refused with 422.
    pub fn refuse_product(&self, product: &str) {
        lock(&self.state.refused_products).insert(product.to_owned());
    }

    /// Every answer comes after `delay`.
    pub fn set_delay(&self, delay: Duration) {
        let ms = u64::try_from(delay.as_millis()).unwrap_or(u64::MAX);
        self.state.delay_ms.store(ms, Ordering::SeqCst);
    }

    pub fn counts(&self) -> Counts {
        let s = &self.state;
        Counts {
            created: s.created.load(Ordering::SeqCst),
            duplicates: s.duplicates.load(Ordering::SeqCst),
            revoked: s.revoked.load(Ordering::SeqCst),
            revoked_missing: s.revoked_missing.load(Ordering::SeqCst),
            unavailable: s.unavailable_answers.load(Ordering::SeqCst),
            refused: s.refused.load(Ordering::SeqCst),
            unauthorized: s.unauthorized.load(Ordering::SeqCst),
        }
    }

    /// The ids of the entitlements it holds now.
    pub fn entitlement_ids(&self) -> HashSet<String> {
        lock(&self.state.entitlements).keys().cloned().collect()
    }

    /// Loses one entitlement, as if Irdeto and the service had drifted apart.
    pub fn forget(&self, id: &str) -> bool {
        lock(&self.state.entitlements).remove(id).is_some()
    }

    /// The body of one entitlement, as granted.
    pub fn entitlement(&self, id: &str) -> Option<serde_json::Value> {
        lock(&self.state.entitlements).get(id).cloned()
    }
}

impl Drop for StandIn {
    fn drop(&mut self) {
        // Stopping is asynchronous; the handle's future need not be awaited.
        drop(self.handle.stop(false));
    }
}

fn lock<T>(m: &Mutex<T>) -> std::sync::MutexGuard<'_, T> {
    m.lock().unwrap_or_else(PoisonError::into_inner)
}

/// Delay, availability and authentication, common to both calls.
async fn gate(state: &State, request: &HttpRequest) -> Option<HttpResponse> {
    let delay = state.delay_ms.load(Ordering::SeqCst);
    if delay > 0 {
        tokio::time::sleep(Duration::from_millis(delay)).await;
    }
    if state.unavailable.load(Ordering::SeqCst) {
        state.unavailable_answers.fetch_add(1, Ordering::SeqCst);
        return Some(HttpResponse::ServiceUnavailable().body("down for maintenance"));
    }
    let expected = format!("Bearer {}", state.api_key);
    let given = request
        .headers()
        .get("authorization")
        .and_then(|v| v.to_str().ok());
    if given != Some(expected.as_str()) {
        state.unauthorized.fetch_add(1, Ordering::SeqCst);
        return Some(HttpResponse::Unauthorized().body("bad credentials"));
    }
    None
}

async fn grant(
    state: web::Data<State>,
    request: HttpRequest,
    id: web::Path<String>,
    body: web::Json<serde_json::Value>,
) -> HttpResponse {
    if let Some(answer) = gate(&state, &request).await {
        return answer;
    }
    let body = body.into_inner();
    let product = body
        .get("productId")
        .and_then(|p| p.as_str())
        .unwrap_or_default();
    let complete = ["accountId", "productId", "validFrom"]
        .iter()
        .all(|k| body.get(*k).and_then(|v| v.as_str()).is_some());
    if !complete {
        return HttpResponse::BadRequest().body("accountId, productId and validFrom are required");
    }
    if lock(&state.refused_products).contains(product) {
        state.refused.fetch_add(1, Ordering::SeqCst);
        return HttpResponse::UnprocessableEntity().body(format!("unknown product {product}"));
    }
    let mut entitlements = lock(&state.entitlements);
    if entitlements.contains_key(id.as_str()) {
        state.duplicates.fetch_add(1, Ordering::SeqCst);
        return HttpResponse::Conflict().body("entitlement exists");
    }
    entitlements.insert(id.into_inner(), body);
    state.created.fetch_add(1, Ordering::SeqCst);
    HttpResponse::Created().finish()
}

async fn revoke(
    state: web::Data<State>,
    request: HttpRequest,
    id: web::Path<String>,
) -> HttpResponse {
    if let Some(answer) = gate(&state, &request).await {
        return answer;
    }
    if lock(&state.entitlements).remove(id.as_str()).is_some() {
        state.revoked.fetch_add(1, Ordering::SeqCst);
        HttpResponse::NoContent().finish()
    } else {
        state.revoked_missing.fetch_add(1, Ordering::SeqCst);
        HttpResponse::NotFound().body("no such entitlement")
    }
}
