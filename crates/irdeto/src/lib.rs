//! Irdeto entitlement adapter: implements [`EntitlementGateway`] over the small REST contract
//! of `docs/irdeto.md`, with reqwest.
//!
//! - grant: `PUT {base_url}/entitlements/{license_id}` with JSON
//!   `{"accountId", "productId", "validFrom", "validUntil"}` (RFC 3339, UTC; `validUntil`
//!   null when the license has no end). PUT with our id is idempotent by construction.
//! - revoke: `DELETE {base_url}/entitlements/{license_id}`.
//! - authentication: `Authorization: Bearer {irdeto.api_key}`.
//! - answers: 2xx is success; 409 on a grant (already granted) and 404 on a revoke (already
//!   gone) are success too; 408, 429 (with its `Retry-After`), 5xx, timeouts and connection
//!   errors are [`DeliveryError::Transient`]; any other answer is
//!   [`DeliveryError::Permanent`].
//!
//! One client per gateway: connections are kept alive and reused, and every call is bounded
//! by `irdeto.timeout_ms` as a whole (connect, send, answer).
//!
//! TLS (`https://`) is rustls: Irdeto's certificate is checked against the system's CA roots
//! (rustls-native-certs: `/etc/ssl/certs`, or `SSL_CERT_FILE`/`SSL_CERT_DIR`), or, when
//! `irdeto.ca_file` is set, against the CAs of that PEM bundle only. `irdeto.client_cert_file`
//! and `irdeto.client_key_file` add a client certificate (mutual TLS). A failed handshake (an
//! unknown CA, a refused client certificate) is a transport failure: transient, retried, and
//! its reason says `TLS`.

use std::path::PathBuf;
use std::time::Duration;

use async_trait::async_trait;
use licenses_app::ports::{DeliveryError, EntitlementGateway, NewEntitlementJob};
use licenses_domain::{LicenseId, Timestamp};
use reqwest::{Method, StatusCode, header};
use secrecy::{ExposeSecret, SecretString};
use serde::Serialize;

/// Where Irdeto is and how to call it (the `irdeto.*` keys).
#[derive(Debug, Clone)]
pub struct IrdetoConfig {
    /// `irdeto.base_url`: `http://…`; the entitlements live under `{base_url}/entitlements/`.
    pub base_url: url::Url,
    /// `irdeto.api_key`, sent as a bearer token.
    pub api_key: SecretString,
    /// `irdeto.timeout_ms`: the budget of one call, connect to last byte.
    pub timeout: Duration,
    /// The TLS files of `irdeto.*`, read when the gateway is built.
    pub tls: TlsFiles,
}

/// `irdeto.ca_file`, `irdeto.client_cert_file` and `irdeto.client_key_file`: PEM files.
#[derive(Debug, Clone, Default)]
pub struct TlsFiles {
    /// The CAs trusted for Irdeto's certificate (a PEM bundle), instead of the system's roots.
    pub ca_file: Option<PathBuf>,
    /// The client certificate (PEM, leaf first) for mutual TLS.
    pub client_cert_file: Option<PathBuf>,
    /// The private key of `client_cert_file` (PEM: PKCS#8, PKCS#1 or SEC1).
    pub client_key_file: Option<PathBuf>,
}

/// The configuration cannot make a client. Every message is one line that names the key.
#[derive(Debug, thiserror::Error)]
pub enum ConfigError {
    #[error("irdeto.base_url: {0}")]
    BaseUrl(String),
    /// A TLS file cannot be read or holds no usable PEM.
    #[error("{key}: {message}")]
    Tls { key: &'static str, message: String },
    #[error("irdeto: cannot build the HTTP client: {0}")]
    Client(String),
}

fn read_pem(key: &'static str, path: &std::path::Path) -> Result<Vec<u8>, ConfigError> {
    std::fs::read(path).map_err(|e| ConfigError::Tls {
        key,
        message: format!("cannot read {}: {e}", path.display()),
    })
}

/// The client's trust (the CAs of `irdeto.ca_file`, else the system's roots) and identity.
fn with_tls(
    mut builder: reqwest::ClientBuilder,
    tls: &TlsFiles,
) -> Result<reqwest::ClientBuilder, ConfigError> {
    builder = builder.use_rustls_tls();
    if let Some(path) = &tls.ca_file {
        let pem = read_pem("irdeto.ca_file", path)?;
        let bad = |why: String| ConfigError::Tls {
            key: "irdeto.ca_file",
            message: format!("{}: {why}", path.display()),
        };
        let certificates = reqwest::Certificate::from_pem_bundle(&pem)
            .map_err(|e| bad(format!("not a PEM bundle of certificates: {e}")))?;
        if certificates.is_empty() {
            return Err(bad(
                "holds no certificate (-----BEGIN CERTIFICATE-----)".into()
            ));
        }
        builder = builder.tls_built_in_root_certs(false);
        for certificate in certificates {
            builder = builder.add_root_certificate(certificate);
        }
    } else {
        // The system's roots only: what an operator manages on the host.
        builder = builder
            .tls_built_in_webpki_certs(false)
            .tls_built_in_native_certs(true);
    }
    match (&tls.client_cert_file, &tls.client_key_file) {
        (Some(cert), Some(key)) => {
            let mut pem = read_pem("irdeto.client_cert_file", cert)?;
            pem.push(b'\n');
            pem.extend(read_pem("irdeto.client_key_file", key)?);
            let identity = reqwest::Identity::from_pem(&pem).map_err(|e| ConfigError::Tls {
                key: "irdeto.client_cert_file",
                message: format!(
                    "{} and irdeto.client_key_file {} are not a PEM certificate and its private \
                     key: {e}",
                    cert.display(),
                    key.display()
                ),
            })?;
            builder = builder.identity(identity);
        }
        (Some(_), None) => {
            return Err(ConfigError::Tls {
                key: "irdeto.client_key_file",
                message: "is not set: irdeto.client_cert_file needs it".into(),
            });
        }
        (None, Some(_)) => {
            return Err(ConfigError::Tls {
                key: "irdeto.client_cert_file",
                message: "is not set: irdeto.client_key_file needs it".into(),
            });
        }
        (None, None) => {}
    }
    Ok(builder)
}

/// The Irdeto entitlement gateway. Cheap to clone: clones share the connection pool.
#[derive(Clone)]
pub struct IrdetoGateway {
    client: reqwest::Client,
    entitlements: url::Url,
    authorization: header::HeaderValue,
}

impl std::fmt::Debug for IrdetoGateway {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("IrdetoGateway")
            .field("entitlements", &self.entitlements.as_str())
            .finish_non_exhaustive()
    }
}

/// The body of a grant.
#[derive(Debug, Serialize)]
#[serde(rename_all = "camelCase")]
struct Grant<'a> {
    account_id: &'a str,
    product_id: &'a str,
    valid_from: String,
    valid_until: Option<String>,
}

/// Longest piece of an error answer kept in a reason.
const BODY_SHOWN: usize = 200;

impl IrdetoGateway {
    pub fn new(config: &IrdetoConfig) -> Result<Self, ConfigError> {
        if !matches!(config.base_url.scheme(), "http" | "https")
            || config.base_url.cannot_be_a_base()
        {
            return Err(ConfigError::BaseUrl(
                "must be an https:// (or http://) URL".into(),
            ));
        }
        let mut base = config.base_url.clone();
        if !base.path().ends_with('/') {
            base.set_path(&format!("{}/", base.path()));
        }
        let entitlements = base
            .join("entitlements/")
            .map_err(|e| ConfigError::BaseUrl(e.to_string()))?;
        let mut authorization =
            header::HeaderValue::from_str(&format!("Bearer {}", config.api_key.expose_secret()))
                .map_err(|_| ConfigError::Client("irdeto.api_key is not a valid header".into()))?;
        authorization.set_sensitive(true);
        let builder = reqwest::Client::builder()
            .timeout(config.timeout)
            .connect_timeout(config.timeout)
            .pool_idle_timeout(Duration::from_secs(60))
            .user_agent(concat!("aminotv-licenses/", env!("CARGO_PKG_VERSION")));
        let client = with_tls(builder, &config.tls)?
            .build()
            .map_err(|e| ConfigError::Client(chain(&e)))?;
        Ok(Self {
            client,
            entitlements,
            authorization,
        })
    }

    fn url(&self, license: &LicenseId) -> Result<url::Url, DeliveryError> {
        let mut url = self.entitlements.clone();
        url.path_segments_mut()
            .map_err(|()| DeliveryError::Permanent {
                reason: "irdeto.base_url cannot hold a path".into(),
            })?
            .pop_if_empty()
            .push(license.as_str());
        Ok(url)
    }

    async fn call(
        &self,
        method: Method,
        license: &LicenseId,
        body: Option<&Grant<'_>>,
        also_success: StatusCode,
    ) -> Result<(), DeliveryError> {
        let mut request = self
            .client
            .request(method.clone(), self.url(license)?)
            .header(header::AUTHORIZATION, self.authorization.clone())
            .header(header::ACCEPT, "application/json");
        if let Some(body) = body {
            request = request.json(body);
        }
        let response = request.send().await.map_err(|e| transport(&e))?;
        let status = response.status();
        if status.is_success() || status == also_success {
            return Ok(());
        }
        let retry_after = response
            .headers()
            .get(header::RETRY_AFTER)
            .and_then(|v| v.to_str().ok())
            .and_then(|v| v.trim().parse::<u64>().ok())
            .map(Duration::from_secs);
        let text = response.text().await.unwrap_or_default();
        let reason = format!("{method} answered {status}{}", excerpt(&text));
        tracing::debug!(%license, %status, "Irdeto answered an error");
        Err(classify(status, reason, retry_after))
    }
}

/// Which error answers may succeed later.
fn classify(status: StatusCode, reason: String, retry_after: Option<Duration>) -> DeliveryError {
    if status.is_server_error()
        || status == StatusCode::TOO_MANY_REQUESTS
        || status == StatusCode::REQUEST_TIMEOUT
    {
        DeliveryError::Transient {
            reason,
            retry_after,
        }
    } else {
        DeliveryError::Permanent { reason }
    }
}

/// A failure before any answer: always transient (timeout, refused or reset connection, a
/// TLS handshake that failed: an unknown CA, a refused client certificate).
fn transport(e: &reqwest::Error) -> DeliveryError {
    let detail = chain(e);
    let lower = detail.to_ascii_lowercase();
    let what = if e.is_timeout() {
        "timed out"
    } else if lower.contains("certificate") || lower.contains("tls") || lower.contains("handshake")
    {
        "TLS failed (certificate or handshake)"
    } else if e.is_connect() {
        "cannot connect"
    } else {
        "request failed"
    };
    DeliveryError::Transient {
        reason: format!("{what}: {detail}"),
        retry_after: None,
    }
}

/// An error and its sources, on one line.
fn chain(e: &dyn std::error::Error) -> String {
    let mut text = e.to_string();
    let mut source = e.source();
    while let Some(s) = source {
        text.push_str(&format!(": {s}"));
        source = s.source();
    }
    text.split_whitespace().collect::<Vec<_>>().join(" ")
}

/// A short, one-line piece of an answer's body, for the reason kept with the job.
fn excerpt(body: &str) -> String {
    let line: String = body
        .split_whitespace()
        .collect::<Vec<_>>()
        .join(" ")
        .chars()
        .take(BODY_SHOWN)
        .collect();
    if line.is_empty() {
        String::new()
    } else {
        format!(": {line}")
    }
}

/// Unix seconds as RFC 3339 UTC (`1970-01-01T00:00:00Z`), without a date library: the civil
/// calendar from days since the epoch (Howard Hinnant's algorithm).
fn rfc3339(t: Timestamp) -> String {
    let secs = t.unix();
    let days = secs.div_euclid(86_400);
    let rem = secs.rem_euclid(86_400);
    let z = days + 719_468;
    let era = z.div_euclid(146_097);
    let doe = z.rem_euclid(146_097);
    let yoe = (doe - doe / 1_460 + doe / 36_524 - doe / 146_096) / 365;
    let doy = doe - (365 * yoe + yoe / 4 - yoe / 100);
    let mp = (5 * doy + 2) / 153;
    let day = doy - (153 * mp + 2) / 5 + 1;
    let month = if mp < 10 { mp + 3 } else { mp - 9 };
    let year = yoe + era * 400 + i64::from(month <= 2);
    format!(
        "{year:04}-{month:02}-{day:02}T{:02}:{:02}:{:02}Z",
        rem / 3_600,
        rem % 3_600 / 60,
        rem % 60
    )
}

#[async_trait]
impl EntitlementGateway for IrdetoGateway {
    async fn grant(&self, job: &NewEntitlementJob) -> Result<(), DeliveryError> {
        let body = Grant {
            account_id: job.user.as_str(),
            product_id: &job.irdeto_product,
            valid_from: rfc3339(job.valid_from),
            valid_until: job.valid_until.map(rfc3339),
        };
        self.call(Method::PUT, &job.license, Some(&body), StatusCode::CONFLICT)
            .await
    }

    async fn revoke(&self, license: &LicenseId) -> Result<(), DeliveryError> {
        self.call(Method::DELETE, license, None, StatusCode::NOT_FOUND)
            .await
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn dates_are_rfc3339_utc() {
        assert_eq!(rfc3339(Timestamp::from_unix(0)), "1970-01-01T00:00:00Z");
        assert_eq!(
            rfc3339(Timestamp::from_unix(1_700_000_000)),
            "2023-11-14T22:13:20Z"
        );
        assert_eq!(
            rfc3339(Timestamp::from_unix(951_782_400)),
            "2000-02-29T00:00:00Z"
        );
    }

    #[test]
    fn answers_are_classified_by_the_contract() {
        let t = |s: u16| {
            matches!(
                classify(
                    StatusCode::from_u16(s).expect("status"),
                    String::new(),
                    None
                ),
                DeliveryError::Transient { .. }
            )
        };
        assert!(t(500) && t(502) && t(503) && t(429) && t(408));
        assert!(!t(400) && !t(401) && !t(403) && !t(404) && !t(422));
    }
}

#[cfg(feature = "standin")]
pub mod standin;
