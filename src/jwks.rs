//! The JWKS of `auth.user_tokens.jwks_url`, fetched over HTTP(S) with reqwest (rustls) for
//! the user API's token verifier ([`licenses_api_user::JwksSource`]), and the timer that
//! fetches it again every `auth.user_tokens.jwks_max_age_s`.
//!
//! Each fetch is bounded ([`FETCH_TIMEOUT`], [`licenses_api_user::MAX_JWKS_BYTES`]) and async:
//! no actix worker ever blocks on it. Connections are not pooled: fetches are rare, and a
//! fetch may run on any worker's runtime.

use std::time::Duration;

use licenses_api_user::{JwksSource, MAX_JWKS_BYTES, TokenVerifier};
use tokio::task::JoinHandle;

/// The longest one fetch of the JWKS may take.
pub const FETCH_TIMEOUT: Duration = Duration::from_secs(5);

/// The JWKS document at a URL.
#[derive(Debug)]
pub struct HttpJwks {
    client: reqwest::Client,
    url: url::Url,
}

impl HttpJwks {
    /// A source for `url` (`auth.user_tokens.jwks_url`, an `http(s)://` URL): the message
    /// names the key when it cannot be one.
    pub fn new(url: &str) -> Result<Self, String> {
        const KEY: &str = "auth.user_tokens.jwks_url";
        let url = url::Url::parse(url).map_err(|e| format!("{KEY}: {e}"))?;
        if !matches!(url.scheme(), "http" | "https") {
            return Err(format!("{KEY}: is not an http:// or https:// URL"));
        }
        let mut client = reqwest::Client::builder()
            .timeout(FETCH_TIMEOUT)
            .pool_max_idle_per_host(0)
            .redirect(reqwest::redirect::Policy::limited(3));
        if url
            .host_str()
            .is_some_and(|h| h == "localhost" || h == "127.0.0.1" || h == "[::1]")
        {
            client = client.no_proxy();
        }
        let client = client
            .build()
            .map_err(|e| format!("{KEY}: cannot make an HTTP client: {e}"))?;
        Ok(Self { client, url })
    }
}

#[async_trait::async_trait]
impl JwksSource for HttpJwks {
    async fn fetch(&self) -> Result<Vec<u8>, String> {
        // The URL is not logged with its query: it might carry a credential.
        let mut shown = self.url.clone();
        shown.set_query(None);
        let mut response = self
            .client
            .get(self.url.clone())
            .header(reqwest::header::ACCEPT, "application/json")
            .send()
            .await
            .map_err(|e| format!("GET {shown}: {}", e.without_url()))?;
        if !response.status().is_success() {
            return Err(format!("GET {shown}: answered {}", response.status()));
        }
        let mut body = Vec::new();
        while let Some(chunk) = response
            .chunk()
            .await
            .map_err(|e| format!("GET {shown}: {}", e.without_url()))?
        {
            if body.len() + chunk.len() > MAX_JWKS_BYTES {
                return Err(format!("GET {shown}: larger than {MAX_JWKS_BYTES} bytes"));
            }
            body.extend_from_slice(&chunk);
        }
        Ok(body)
    }
}

/// Fetches the JWKS again every `every` until aborted (keys the issuer removed stop being
/// accepted within `every`); `None` without a JWKS (`every` is `None`) or with `every` zero.
pub fn spawn_refresher(tokens: TokenVerifier, every: Option<Duration>) -> Option<JoinHandle<()>> {
    let every = every.filter(|every| !every.is_zero())?;
    Some(tokio::spawn(async move {
        let mut ticks = tokio::time::interval(every);
        ticks.set_missed_tick_behavior(tokio::time::MissedTickBehavior::Delay);
        // The first tick is now: the key set was fetched at start.
        ticks.tick().await;
        loop {
            ticks.tick().await;
            let _ = tokens.refresh_jwks().await;
        }
    }))
}
