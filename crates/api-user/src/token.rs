//! User tokens: JWTs whose `sub` is the user id and whose optional `flags` array may hold
//! `LICENSE_PURCHASE_RESTRICTED`; `exp` is required.
//!
//! Verification is done by `jsonwebtoken` (RustCrypto backend). A token is verified by one
//! key, chosen by the `kid` of its header, and only with that key's algorithm, so a token
//! cannot pick its own (`alg: none`, or an HS256 token signed with an RS256 public key as the
//! secret). The keys:
//! - the key without `kid` (`auth.user_tokens.secret` or `public_key_pem`, with `algorithm`):
//!   verifies tokens without a `kid`, and those whose `kid` no other key has;
//! - the static keys with a `kid` (`auth.user_tokens.keys`);
//! - the keys of a JWKS document (`auth.user_tokens.jwks_url`, RS256 and ES256 only), cached:
//!   a `kid` found nowhere makes the set be fetched again, at most once every
//!   `jwks_refresh_min_s` and by one request at a time (the others wait for its result); a
//!   failed fetch keeps the last good set. The fetching itself is the binary's
//!   ([`JwksSource`]): this crate does no outbound I/O.
//!
//! A token that lives longer than `max_ttl_s` (from `iat`, or from now when it has none, to
//! `exp`) is refused. A token is a credential: it is never logged, and the reason a token is
//! refused is logged only as a category.

use std::collections::HashMap;
use std::fmt;
use std::sync::atomic::{AtomicU64, Ordering};
use std::sync::{Arc, PoisonError, RwLock};
use std::time::{Duration, Instant};

use jsonwebtoken as jwt;
use jsonwebtoken::errors::ErrorKind;
use jsonwebtoken::jwk::{AlgorithmParameters, EllipticCurve, Jwk, KeyAlgorithm, PublicKeyUse};
use licenses_domain::{IdError, UserId};
use serde::{Deserialize, Serialize};

/// The flag of a user who may not purchase (seed 002's `LICENSE_PURCHASE_RESTRICTED`).
pub const PURCHASE_RESTRICTED: &str = "LICENSE_PURCHASE_RESTRICTED";

/// Clock skew tolerated on `exp` and `nbf` unless configured otherwise.
pub const DEFAULT_LEEWAY_SECONDS: u64 = 30;

/// Shortest HS256 secret: RFC 7518 §3.2 requires a key at least as long as the hash (256 bits).
pub const MIN_SECRET_BYTES: usize = 32;

/// The longest lifetime of a token unless configured otherwise (`auth.user_tokens.max_ttl_s`).
pub const DEFAULT_MAX_TTL_SECONDS: u64 = 86_400;

/// Largest JWKS document read: a real one is a few KiB.
pub const MAX_JWKS_BYTES: usize = 1024 * 1024;

/// The signature algorithm of user tokens (`auth.user_tokens.algorithm`).
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash)]
pub enum Algorithm {
    /// HMAC-SHA256 with a shared secret.
    Hs256,
    /// RSASSA-PKCS1-v1_5 with SHA-256, verified with an RSA public key.
    Rs256,
    /// ECDSA on P-256 with SHA-256, verified with an EC public key.
    Es256,
}

impl Algorithm {
    pub fn as_str(self) -> &'static str {
        match self {
            Self::Hs256 => "HS256",
            Self::Rs256 => "RS256",
            Self::Es256 => "ES256",
        }
    }

    fn jwt(self) -> jwt::Algorithm {
        match self {
            Self::Hs256 => jwt::Algorithm::HS256,
            Self::Rs256 => jwt::Algorithm::RS256,
            Self::Es256 => jwt::Algorithm::ES256,
        }
    }
}

impl fmt::Display for Algorithm {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(self.as_str())
    }
}

/// A static verification key with a `kid` (one entry of `auth.user_tokens.keys`).
#[derive(Clone, PartialEq, Eq)]
pub struct KeySettings {
    /// The `kid` of the tokens it verifies.
    pub kid: String,
    pub algorithm: Algorithm,
    /// The HS256 secret.
    pub secret: Option<String>,
    /// The RS256 or ES256 public key, PEM.
    pub public_key_pem: Option<String>,
}

impl fmt::Debug for KeySettings {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_struct("KeySettings")
            .field("kid", &self.kid)
            .field("algorithm", &self.algorithm)
            .field("secret", &self.secret.as_ref().map(|_| "<redacted>"))
            .field("public_key_pem", &self.public_key_pem.is_some())
            .finish()
    }
}

/// Where the JWKS document of `auth.user_tokens.jwks_url` comes from: the binary fetches it
/// over HTTP; tests hand in documents of their own.
#[async_trait::async_trait]
pub trait JwksSource: Send + Sync + fmt::Debug {
    /// The document's body, or why it could not be had (logged: never a secret).
    async fn fetch(&self) -> Result<Vec<u8>, String>;
}

/// The JWKS of `auth.user_tokens.jwks_url`, and how often an unknown `kid` may fetch it again.
#[derive(Clone, Debug)]
pub struct JwksConfig {
    pub source: Arc<dyn JwksSource>,
    /// `auth.user_tokens.jwks_refresh_min_s`: the shortest time between two fetches caused by
    /// an unknown `kid` (zero: no minimum, one fetch at a time still).
    pub refresh_min: Duration,
}

/// How user tokens are verified: `auth.user_tokens` of the configuration.
#[derive(Clone)]
pub struct TokenSettings {
    /// The algorithm of the key without `kid`.
    pub algorithm: Algorithm,
    /// The HS256 secret of the key without `kid`.
    pub secret: Option<String>,
    /// The RS256 or ES256 public key of the key without `kid`, PEM
    /// (`-----BEGIN PUBLIC KEY-----`).
    pub public_key_pem: Option<String>,
    /// The static keys with a `kid`.
    pub keys: Vec<KeySettings>,
    /// The JWKS, when `auth.user_tokens.jwks_url` is set.
    pub jwks: Option<JwksConfig>,
    /// Checked against `iss` (then required) when set.
    pub issuer: Option<String>,
    /// Checked against `aud` (then required) when set.
    pub audience: Option<String>,
    /// Clock skew tolerated on `exp` and `nbf`.
    pub leeway_seconds: u64,
    /// The longest lifetime of a token, in seconds; 0: no maximum.
    pub max_ttl_seconds: u64,
}

impl TokenSettings {
    /// HS256 with `secret` as the key without `kid`, no issuer nor audience, the default
    /// leeway and maximum lifetime.
    pub fn hs256(secret: impl Into<String>) -> Self {
        Self {
            algorithm: Algorithm::Hs256,
            secret: Some(secret.into()),
            public_key_pem: None,
            keys: Vec::new(),
            jwks: None,
            issuer: None,
            audience: None,
            leeway_seconds: DEFAULT_LEEWAY_SECONDS,
            max_ttl_seconds: DEFAULT_MAX_TTL_SECONDS,
        }
    }

    /// No key without `kid`: only the keys of `keys` and of the JWKS.
    pub fn by_kid(keys: Vec<KeySettings>, jwks: Option<JwksConfig>) -> Self {
        Self {
            secret: None,
            keys,
            jwks,
            ..Self::hs256("")
        }
    }

    /// Whether a key without `kid` is configured (or, with no other key, expected).
    fn has_default_key(&self) -> bool {
        self.secret.is_some()
            || self.public_key_pem.is_some()
            || (self.keys.is_empty() && self.jwks.is_none())
    }
}

impl fmt::Debug for TokenSettings {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_struct("TokenSettings")
            .field("algorithm", &self.algorithm)
            .field("secret", &self.secret.as_ref().map(|_| "<redacted>"))
            .field("public_key_pem", &self.public_key_pem.is_some())
            .field("keys", &self.keys)
            .field("jwks", &self.jwks.is_some())
            .field("issuer", &self.issuer)
            .field("audience", &self.audience)
            .field("leeway_seconds", &self.leeway_seconds)
            .field("max_ttl_seconds", &self.max_ttl_seconds)
            .finish()
    }
}

/// Token settings the service cannot start with; `key` names the configuration key.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
#[error("{key}: {problem}")]
pub struct TokenConfigError {
    pub key: &'static str,
    pub problem: String,
}

impl TokenConfigError {
    fn new(key: &'static str, problem: impl Into<String>) -> Self {
        Self {
            key,
            problem: problem.into(),
        }
    }
}

/// Who a verified token speaks for.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Claims {
    /// `sub`.
    pub user: UserId,
    /// `flags`, as sent (unknown flags are kept and ignored).
    pub flags: Vec<String>,
}

impl Claims {
    /// Whether the user may not purchase.
    pub fn purchase_restricted(&self) -> bool {
        self.flags.iter().any(|f| f == PURCHASE_RESTRICTED)
    }
}

/// Why a token was refused. Only [`TokenError::Expired`] and [`TokenError::TooLongLived`] are
/// told to the client as such.
#[derive(Debug, Clone, Copy, PartialEq, Eq, thiserror::Error)]
pub enum TokenError {
    #[error("the token has expired")]
    Expired,
    /// Not a JWT, or undecodable parts.
    #[error("the token is malformed")]
    Malformed,
    /// Bad signature, or another algorithm than its key's.
    #[error("the token's signature is not valid")]
    Signature,
    /// No configured or published key has the token's `kid` (nor is there a key without one).
    #[error("the token's key is not known")]
    UnknownKey,
    /// Wrong or missing `iss`, `aud`; not yet valid (`nbf`).
    #[error("the token is not meant for this service")]
    NotForUs,
    /// Missing `exp` or `sub`, or a `sub` that is not a user id, or bad `flags`.
    #[error("the token's claims are not valid")]
    Claims,
    /// From `iat` (or now) to `exp`, longer than `auth.user_tokens.max_ttl_s`.
    #[error("the token lives longer than allowed")]
    TooLongLived,
}

impl TokenError {
    fn from_jwt(e: &jwt::errors::Error) -> Self {
        match e.kind() {
            ErrorKind::ExpiredSignature => Self::Expired,
            ErrorKind::InvalidSignature
            | ErrorKind::InvalidAlgorithm
            | ErrorKind::MissingAlgorithm
            | ErrorKind::InvalidAlgorithmName
            | ErrorKind::UnsupportedAlgorithm => Self::Signature,
            ErrorKind::InvalidIssuer
            | ErrorKind::InvalidAudience
            | ErrorKind::ImmatureSignature
            | ErrorKind::InvalidSubject => Self::NotForUs,
            ErrorKind::MissingRequiredClaim(_) | ErrorKind::InvalidClaimFormat(_) => Self::Claims,
            ErrorKind::Json(_) => Self::Claims,
            _ => Self::Malformed,
        }
    }
}

#[derive(Deserialize)]
struct VerifiedClaims {
    sub: String,
    #[serde(default)]
    flags: Option<Vec<String>>,
    exp: f64,
    #[serde(default)]
    iat: Option<f64>,
}

/// One verification key and the only algorithm it verifies.
struct Key {
    algorithm: Algorithm,
    key: jwt::DecodingKey,
}

/// The keys of the JWKS, as last fetched with success, and the fetch policy.
struct Jwks {
    source: Arc<dyn JwksSource>,
    refresh_min: Duration,
    keys: RwLock<Arc<HashMap<String, Arc<Key>>>>,
    /// When the last fetch caused by an unknown `kid` started; held while one runs, so that
    /// there is only one at a time.
    unknown_kid_fetch: tokio::sync::Mutex<Option<Instant>>,
    /// Fetches attempted, to tell a request that waited whether one ran meanwhile.
    attempts: AtomicU64,
}

#[derive(Deserialize)]
struct RawJwks {
    keys: Vec<serde_json::Value>,
}

impl Jwks {
    fn get(&self, kid: &str) -> Option<Arc<Key>> {
        let keys = self.keys.read().unwrap_or_else(PoisonError::into_inner);
        keys.get(kid).cloned()
    }

    fn len(&self) -> usize {
        self.keys
            .read()
            .unwrap_or_else(PoisonError::into_inner)
            .len()
    }

    /// Fetches the document and replaces the keys with its usable ones: how many, or why the
    /// last good set is kept.
    async fn fetch(&self) -> Result<usize, String> {
        let outcome = self.fetch_keys().await.map(|keys| {
            let count = keys.len();
            *self.keys.write().unwrap_or_else(PoisonError::into_inner) = Arc::new(keys);
            count
        });
        self.attempts.fetch_add(1, Ordering::SeqCst);
        outcome
    }

    async fn fetch_keys(&self) -> Result<HashMap<String, Arc<Key>>, String> {
        let body = self.source.fetch().await?;
        if body.len() > MAX_JWKS_BYTES {
            return Err(format!(
                "the document is larger than {MAX_JWKS_BYTES} bytes"
            ));
        }
        keys_of_jwks(&body)
    }

    /// Fetches completed so far.
    fn attempts(&self) -> u64 {
        self.attempts.load(Ordering::SeqCst)
    }

    /// Fetches and logs the outcome; a failure keeps the last good set.
    async fn refresh(&self, why: &'static str) -> Result<usize, String> {
        let outcome = self.fetch().await;
        match &outcome {
            Ok(keys) => tracing::info!(keys, why, "user token JWKS loaded"),
            Err(reason) => tracing::warn!(
                %reason,
                why,
                kept = self.len(),
                "user token JWKS fetch failed: keeping the last good set"
            ),
        }
        outcome
    }

    /// An unknown `kid` was presented (when `seen` fetches had completed): fetch again,
    /// unless a fetch caused by one started less than `refresh_min` ago, or one completed
    /// since (while this request waited for its turn, say).
    async fn refresh_for_unknown_kid(&self, seen: u64) {
        let mut last = self.unknown_kid_fetch.lock().await;
        if self.attempts() != seen {
            return;
        }
        if last.is_some_and(|at| at.elapsed() < self.refresh_min) {
            return;
        }
        *last = Some(Instant::now());
        let _ = self.refresh("a token's kid is not in the set").await;
    }
}

/// The usable keys of a JWKS document: RS256 and ES256 (P-256) signing keys with a `kid`.
/// Others are skipped (logged); a document that is not a JWKS, or holds no usable key, is an
/// error (the last good set is kept).
fn keys_of_jwks(body: &[u8]) -> Result<HashMap<String, Arc<Key>>, String> {
    let raw: RawJwks =
        serde_json::from_slice(body).map_err(|e| format!("not a JWKS document: {e}"))?;
    let mut keys = HashMap::new();
    for value in raw.keys {
        let kid = value.get("kid").and_then(|k| k.as_str()).map(str::to_owned);
        let usable = serde_json::from_value::<Jwk>(value)
            .map_err(|_| "not a JWK this service reads")
            .and_then(|jwk| key_of_jwk(&jwk));
        match usable {
            Ok((kid, key)) => {
                keys.insert(kid, Arc::new(key));
            }
            Err(reason) => tracing::info!(kid = ?kid, reason, "JWKS key skipped"),
        }
    }
    if keys.is_empty() {
        return Err("the document holds no usable RS256 or ES256 signing key with a kid".into());
    }
    Ok(keys)
}

fn key_of_jwk(jwk: &Jwk) -> Result<(String, Key), &'static str> {
    let kid = jwk
        .common
        .key_id
        .clone()
        .filter(|k| !k.is_empty())
        .ok_or("no kid")?;
    if jwk
        .common
        .public_key_use
        .as_ref()
        .is_some_and(|u| *u != PublicKeyUse::Signature)
    {
        return Err("not a signing key (use)");
    }
    // Symmetric keys have no place in a published set; the algorithm is the key's own.
    let algorithm = match (&jwk.algorithm, jwk.common.key_algorithm) {
        (AlgorithmParameters::RSA(_), None | Some(KeyAlgorithm::RS256)) => Algorithm::Rs256,
        (AlgorithmParameters::EllipticCurve(p), None | Some(KeyAlgorithm::ES256))
            if p.curve == EllipticCurve::P256 =>
        {
            Algorithm::Es256
        }
        _ => return Err("not an RS256 or ES256 public key"),
    };
    let key = jwt::DecodingKey::from_jwk(jwk).map_err(|_| "unusable key material")?;
    if !usable(&key, algorithm) {
        return Err("unusable key material");
    }
    Ok((kid, Key { algorithm, key }))
}

/// Whether `key` can check signatures of `algorithm`: the key's DER is only decoded when a
/// token is checked, so a wrong key (another curve, a private key) is caught here, once.
fn usable(key: &jwt::DecodingKey, algorithm: Algorithm) -> bool {
    algorithm == Algorithm::Hs256
        || jwt::crypto::verify("AA", b"probe", key, algorithm.jwt()).is_ok()
}

/// Verifies user tokens as [`TokenSettings`] say. Cheap to clone.
#[derive(Clone)]
pub struct TokenVerifier {
    inner: Arc<Inner>,
}

struct Inner {
    /// The key without `kid`.
    default_key: Option<Arc<Key>>,
    /// The static keys with a `kid`.
    by_kid: HashMap<String, Arc<Key>>,
    jwks: Option<Jwks>,
    /// One validation per algorithm (`Validation` holds exactly one accepted algorithm).
    hs256: jwt::Validation,
    rs256: jwt::Validation,
    es256: jwt::Validation,
    leeway_seconds: u64,
    max_ttl_seconds: u64,
}

impl Inner {
    fn validation(&self, algorithm: Algorithm) -> &jwt::Validation {
        match algorithm {
            Algorithm::Hs256 => &self.hs256,
            Algorithm::Rs256 => &self.rs256,
            Algorithm::Es256 => &self.es256,
        }
    }
}

impl fmt::Debug for TokenVerifier {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        let inner = &self.inner;
        f.debug_struct("TokenVerifier")
            .field(
                "default_key",
                &inner.default_key.as_ref().map(|k| k.algorithm),
            )
            .field("kids", &inner.by_kid.keys().collect::<Vec<_>>())
            .field("jwks", &inner.jwks.as_ref().map(Jwks::len))
            .field("issuer", &inner.hs256.iss)
            .field("audience", &inner.hs256.aud)
            .field("leeway", &inner.leeway_seconds)
            .field("max_ttl_seconds", &inner.max_ttl_seconds)
            .finish_non_exhaustive()
    }
}

fn non_empty(
    value: Option<&String>,
    key: &'static str,
) -> Result<Option<String>, TokenConfigError> {
    match value.map(|v| v.trim()) {
        Some("") => Err(TokenConfigError::new(
            key,
            "is empty: leave it unset not to check it",
        )),
        other => Ok(other.map(str::to_owned)),
    }
}

/// Which configuration key a problem of the key `kid` (none: the key without `kid`) is named by.
fn config_key(kid: Option<&str>, field: &'static str) -> &'static str {
    match (kid, field) {
        (Some(_), _) => "auth.user_tokens.keys",
        (None, "secret") => "auth.user_tokens.secret",
        (None, _) => "auth.user_tokens.public_key_pem",
    }
}

/// `problem`, prefixed with the `kid` of a key of `auth.user_tokens.keys`.
fn about(kid: Option<&str>, problem: String) -> String {
    match kid {
        Some(kid) => format!("key {kid:?}: {problem}"),
        None => problem,
    }
}

fn check_secret<'a>(
    secret: Option<&'a str>,
    kid: Option<&str>,
) -> Result<&'a str, TokenConfigError> {
    let key = config_key(kid, "secret");
    match secret {
        None | Some("") => Err(TokenConfigError::new(
            key,
            about(kid, "is not set: HS256 user tokens need it".to_owned()),
        )),
        Some(s) if s.len() < MIN_SECRET_BYTES => Err(TokenConfigError::new(
            key,
            about(
                kid,
                format!("is shorter than {MIN_SECRET_BYTES} bytes, too weak for HS256"),
            ),
        )),
        Some(s) => Ok(s),
    }
}

fn static_key(
    kid: Option<&str>,
    algorithm: Algorithm,
    secret: Option<&str>,
    pem: Option<&str>,
) -> Result<Key, TokenConfigError> {
    let key = match algorithm {
        Algorithm::Hs256 => jwt::DecodingKey::from_secret(check_secret(secret, kid)?.as_bytes()),
        Algorithm::Rs256 | Algorithm::Es256 => {
            let pem_key = config_key(kid, "public_key_pem");
            let pem = pem.ok_or_else(|| {
                TokenConfigError::new(
                    pem_key,
                    about(kid, format!("is not set: {algorithm} user tokens need it")),
                )
            })?;
            let parsed = if algorithm == Algorithm::Rs256 {
                jwt::DecodingKey::from_rsa_pem(pem.as_bytes())
            } else {
                jwt::DecodingKey::from_ec_pem(pem.as_bytes())
            };
            let key = parsed.map_err(|_| {
                TokenConfigError::new(
                    pem_key,
                    about(kid, format!("is not a PEM public key for {algorithm}")),
                )
            })?;
            if !usable(&key, algorithm) {
                return Err(TokenConfigError::new(
                    pem_key,
                    about(kid, format!("is not a usable public key for {algorithm}")),
                ));
            }
            key
        }
    };
    Ok(Key { algorithm, key })
}

impl TokenVerifier {
    /// A verifier, or the configuration key that is missing or bad. With a JWKS, the set is
    /// empty until [`TokenVerifier::refresh_jwks`] (or the first unknown `kid`) fetches it.
    pub fn new(settings: &TokenSettings) -> Result<Self, TokenConfigError> {
        let default_key = if settings.has_default_key() {
            Some(Arc::new(static_key(
                None,
                settings.algorithm,
                settings.secret.as_deref(),
                settings.public_key_pem.as_deref(),
            )?))
        } else {
            None
        };
        let mut by_kid = HashMap::new();
        for k in &settings.keys {
            if k.kid.trim().is_empty() {
                return Err(TokenConfigError::new(
                    "auth.user_tokens.keys",
                    "a key has an empty kid",
                ));
            }
            let key = static_key(
                Some(&k.kid),
                k.algorithm,
                k.secret.as_deref(),
                k.public_key_pem.as_deref(),
            )?;
            if by_kid.insert(k.kid.clone(), Arc::new(key)).is_some() {
                return Err(TokenConfigError::new(
                    "auth.user_tokens.keys",
                    format!("the kid {:?} is used twice", k.kid),
                ));
            }
        }

        let issuer = non_empty(settings.issuer.as_ref(), "auth.user_tokens.issuer")?;
        let audience = non_empty(settings.audience.as_ref(), "auth.user_tokens.audience")?;
        let validation = |algorithm: Algorithm| {
            let mut validation = jwt::Validation::new(algorithm.jwt());
            validation.leeway = settings.leeway_seconds;
            validation.validate_exp = true;
            validation.validate_nbf = true;
            let mut required = vec!["exp", "sub"];
            if let Some(issuer) = &issuer {
                validation.set_issuer(&[issuer]);
                required.push("iss");
            }
            match &audience {
                Some(audience) => {
                    validation.set_audience(&[audience]);
                    required.push("aud");
                }
                // Not configured: not checked (jsonwebtoken would otherwise refuse any `aud`).
                None => validation.validate_aud = false,
            }
            validation.set_required_spec_claims(&required);
            validation
        };
        let jwks = settings.jwks.as_ref().map(|config| Jwks {
            source: Arc::clone(&config.source),
            refresh_min: config.refresh_min,
            keys: RwLock::new(Arc::new(HashMap::new())),
            unknown_kid_fetch: tokio::sync::Mutex::new(None),
            attempts: AtomicU64::new(0),
        });

        Ok(Self {
            inner: Arc::new(Inner {
                default_key,
                by_kid,
                jwks,
                hs256: validation(Algorithm::Hs256),
                rs256: validation(Algorithm::Rs256),
                es256: validation(Algorithm::Es256),
                leeway_seconds: settings.leeway_seconds,
                max_ttl_seconds: settings.max_ttl_seconds,
            }),
        })
    }

    /// Fetches the JWKS now (at start, and on a timer: keys the issuer removed stop being
    /// accepted): `None` without a JWKS, else how many keys it holds, or why the last good set
    /// is kept (logged as a warning).
    pub async fn refresh_jwks(&self) -> Option<Result<usize, String>> {
        let jwks = self.inner.jwks.as_ref()?;
        Some(jwks.refresh("scheduled").await)
    }

    /// The key of a token whose header names `kid`.
    async fn key_for(&self, kid: Option<&str>) -> Option<Arc<Key>> {
        let inner = &self.inner;
        if let Some(kid) = kid {
            if let Some(key) = inner.by_kid.get(kid) {
                return Some(Arc::clone(key));
            }
            if let Some(jwks) = &inner.jwks {
                let seen = jwks.attempts();
                if let Some(key) = jwks.get(kid) {
                    return Some(key);
                }
                jwks.refresh_for_unknown_kid(seen).await;
                if let Some(key) = jwks.get(kid) {
                    return Some(key);
                }
            }
        }
        inner.default_key.clone()
    }

    /// The claims of `token`, if it is valid now. Only a token whose `kid` is unknown may
    /// wait, for one fetch of the JWKS.
    pub async fn verify(&self, token: &str) -> Result<Claims, TokenError> {
        let header = jwt::decode_header(token).map_err(|_| TokenError::Malformed)?;
        let key = self
            .key_for(header.kid.as_deref())
            .await
            .ok_or(TokenError::UnknownKey)?;
        if header.alg != key.algorithm.jwt() {
            return Err(TokenError::Signature);
        }
        let data =
            jwt::decode::<VerifiedClaims>(token, &key.key, self.inner.validation(key.algorithm))
                .map_err(|e| TokenError::from_jwt(&e))?;
        let claims = data.claims;
        self.check_lifetime(claims.exp, claims.iat)?;
        let user = UserId::parse(claims.sub).map_err(|_| TokenError::Claims)?;
        Ok(Claims {
            user,
            flags: claims.flags.unwrap_or_default(),
        })
    }

    /// `exp` no further than `max_ttl_s` from `iat`, or from now when the token has no `iat`
    /// or one in the future (a future `iat` must not stretch the lifetime).
    fn check_lifetime(&self, exp: f64, iat: Option<f64>) -> Result<(), TokenError> {
        let max = self.inner.max_ttl_seconds;
        if max == 0 {
            return Ok(());
        }
        let now = jwt::get_current_timestamp() as f64;
        // Leeway only where the clocks of two machines meet (now), never on the token's own
        // iat-to-exp span.
        let (from, slack) = match iat {
            Some(iat) if iat.is_finite() && iat <= now => (iat, 0),
            _ => (now, self.inner.leeway_seconds),
        };
        if exp - from > max.saturating_add(slack) as f64 {
            return Err(TokenError::TooLongLived);
        }
        Ok(())
    }
}

/// Why a development token could not be minted.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
pub enum MintError {
    #[error(transparent)]
    Secret(#[from] TokenConfigError),
    #[error("user id {0}")]
    User(#[from] IdError),
    #[error("could not sign the token")]
    Signing,
}

#[derive(Serialize)]
struct MintedClaims<'a> {
    sub: &'a str,
    iat: u64,
    exp: u64,
    #[serde(skip_serializing_if = "<[String]>::is_empty")]
    flags: &'a [String],
    #[serde(skip_serializing_if = "Option::is_none")]
    iss: Option<&'a str>,
    #[serde(skip_serializing_if = "Option::is_none")]
    aud: Option<&'a str>,
}

/// An HS256 user token for `user`, valid for `ttl_seconds` from now (`licenses token`, for
/// development only: production tokens come from the platform's identity service).
pub fn mint_token(
    secret: &str,
    user: &str,
    flags: &[String],
    ttl_seconds: u64,
    issuer: Option<&str>,
    audience: Option<&str>,
) -> Result<String, MintError> {
    let secret = check_secret(Some(secret), None)?;
    let user = UserId::parse(user)?;
    let now = jwt::get_current_timestamp();
    let claims = MintedClaims {
        sub: user.as_str(),
        iat: now,
        exp: now.saturating_add(ttl_seconds),
        flags,
        iss: issuer,
        aud: audience,
    };
    jwt::encode(
        &jwt::Header::new(jwt::Algorithm::HS256),
        &claims,
        &jwt::EncodingKey::from_secret(secret.as_bytes()),
    )
    .map_err(|_| MintError::Signing)
}

#[cfg(test)]
mod tests {
    use std::sync::Mutex;
    use std::sync::atomic::AtomicUsize;

    use super::*;

    const SECRET: &str = "a-test-secret-of-at-least-32-bytes!!";
    const EC_PUBLIC: &str = include_str!("../tests/keys/es256-public.pem");
    const EC_PRIVATE: &str = include_str!("../tests/keys/es256-private.pem");
    const RSA_PUBLIC: &str = include_str!("../tests/keys/rs256-public.pem");
    const RSA_PRIVATE: &str = include_str!("../tests/keys/rs256-private.pem");

    fn verifier(settings: TokenSettings) -> TokenVerifier {
        TokenVerifier::new(&settings).expect("valid settings")
    }

    fn now() -> u64 {
        jwt::get_current_timestamp()
    }

    fn signed(alg: jwt::Algorithm, kid: Option<&str>, claims: &serde_json::Value) -> String {
        let mut header = jwt::Header::new(alg);
        header.kid = kid.map(str::to_owned);
        let key = match alg {
            jwt::Algorithm::RS256 => {
                jwt::EncodingKey::from_rsa_pem(RSA_PRIVATE.as_bytes()).expect("test key")
            }
            jwt::Algorithm::ES256 => {
                jwt::EncodingKey::from_ec_pem(EC_PRIVATE.as_bytes()).expect("test key")
            }
            _ => jwt::EncodingKey::from_secret(SECRET.as_bytes()),
        };
        jwt::encode(&header, claims, &key).expect("encoded")
    }

    fn claims() -> serde_json::Value {
        serde_json::json!({"sub": "41", "iat": now(), "exp": now() + 300})
    }

    /// The public JWK of a test private key, with its `kid`.
    fn jwk(alg: jwt::Algorithm, kid: &str) -> serde_json::Value {
        let key = match alg {
            jwt::Algorithm::RS256 => jwt::EncodingKey::from_rsa_pem(RSA_PRIVATE.as_bytes()),
            _ => jwt::EncodingKey::from_ec_pem(EC_PRIVATE.as_bytes()),
        }
        .expect("test key");
        let mut jwk = Jwk::from_encoding_key(&key, alg).expect("a jwk");
        jwk.common.key_id = Some(kid.to_owned());
        serde_json::to_value(jwk).expect("json")
    }

    /// A JWKS source a test changes and counts the fetches of; `None`: it is down.
    #[derive(Debug, Default)]
    struct FakeJwks {
        document: Mutex<Option<String>>,
        fetches: AtomicUsize,
    }

    impl FakeJwks {
        fn serve(&self, keys: &[serde_json::Value]) {
            *self.document.lock().expect("lock") =
                Some(serde_json::json!({ "keys": keys }).to_string());
        }

        fn down(&self) {
            *self.document.lock().expect("lock") = None;
        }

        fn fetches(&self) -> usize {
            self.fetches.load(Ordering::SeqCst)
        }
    }

    #[async_trait::async_trait]
    impl JwksSource for FakeJwks {
        async fn fetch(&self) -> Result<Vec<u8>, String> {
            self.fetches.fetch_add(1, Ordering::SeqCst);
            // As a real fetch would: let the other requests run meanwhile.
            tokio::task::yield_now().await;
            self.document
                .lock()
                .expect("lock")
                .clone()
                .map(String::into_bytes)
                .ok_or_else(|| "connection refused".to_owned())
        }
    }

    fn with_jwks(source: &Arc<FakeJwks>, refresh_min: Duration) -> TokenVerifier {
        verifier(TokenSettings::by_kid(
            Vec::new(),
            Some(JwksConfig {
                source: Arc::clone(source) as Arc<dyn JwksSource>,
                refresh_min,
            }),
        ))
    }

    #[tokio::test]
    async fn a_minted_token_verifies_with_its_user_and_flags() {
        let flags = vec![PURCHASE_RESTRICTED.to_owned(), "OTHER".to_owned()];
        let token = mint_token(SECRET, "41", &flags, 60, None, None).expect("minted");
        let claims = verifier(TokenSettings::hs256(SECRET))
            .verify(&token)
            .await
            .expect("valid");
        assert_eq!(claims.user.as_str(), "41");
        assert!(claims.purchase_restricted());
        assert_eq!(claims.flags, flags);

        let plain = mint_token(SECRET, "41", &[], 60, None, None).expect("minted");
        let claims = verifier(TokenSettings::hs256(SECRET))
            .verify(&plain)
            .await
            .expect("valid");
        assert!(!claims.purchase_restricted());
    }

    #[tokio::test]
    async fn issuer_and_audience_are_checked_when_configured() {
        let mut settings = TokenSettings::hs256(SECRET);
        settings.issuer = Some("https://id.aminotv.test".into());
        settings.audience = Some("licenses".into());
        let v = verifier(settings);
        let good = mint_token(
            SECRET,
            "41",
            &[],
            60,
            Some("https://id.aminotv.test"),
            Some("licenses"),
        )
        .expect("minted");
        assert!(v.verify(&good).await.is_ok());
        for (iss, aud) in [
            (Some("https://evil.test"), Some("licenses")),
            (Some("https://id.aminotv.test"), Some("playback")),
            (None, Some("licenses")),
            (Some("https://id.aminotv.test"), None),
        ] {
            let token = mint_token(SECRET, "41", &[], 60, iss, aud).expect("minted");
            assert!(
                matches!(
                    v.verify(&token).await,
                    Err(TokenError::NotForUs | TokenError::Claims)
                ),
                "{iss:?} {aud:?}"
            );
        }
        // Not configured: an audience in the token is not checked.
        let with_aud = mint_token(SECRET, "41", &[], 60, None, Some("x")).expect("minted");
        assert!(
            verifier(TokenSettings::hs256(SECRET))
                .verify(&with_aud)
                .await
                .is_ok()
        );
    }

    #[tokio::test]
    async fn bad_tokens_are_refused_by_category() {
        let v = verifier(TokenSettings::hs256(SECRET));
        assert_eq!(v.verify("not-a-jwt").await, Err(TokenError::Malformed));
        let other = mint_token(&"x".repeat(40), "41", &[], 60, None, None).expect("minted");
        assert_eq!(v.verify(&other).await, Err(TokenError::Signature));
        let expired = jwt::encode(
            &jwt::Header::default(),
            &serde_json::json!({"sub": "41", "exp": now() - 3600}),
            &jwt::EncodingKey::from_secret(SECRET.as_bytes()),
        )
        .expect("encoded");
        assert_eq!(v.verify(&expired).await, Err(TokenError::Expired));
        for claims in [
            serde_json::json!({"sub": "41"}),
            serde_json::json!({"exp": now() + 60}),
            serde_json::json!({"sub": "a b", "exp": now() + 60}),
            serde_json::json!({"sub": "41", "exp": now() + 60, "flags": "x"}),
        ] {
            let token = jwt::encode(
                &jwt::Header::default(),
                &claims,
                &jwt::EncodingKey::from_secret(SECRET.as_bytes()),
            )
            .expect("encoded");
            assert_eq!(v.verify(&token).await, Err(TokenError::Claims), "{claims}");
        }
    }

    #[tokio::test]
    async fn a_token_cannot_choose_its_algorithm() {
        let mut settings = TokenSettings::hs256(SECRET);
        settings.algorithm = Algorithm::Rs256;
        settings.secret = None;
        settings.public_key_pem = Some(RSA_PUBLIC.to_owned());
        let v = verifier(settings);
        // The classic confusion: HS256 signed with the RSA public key as the secret.
        let forged = jwt::encode(
            &jwt::Header::new(jwt::Algorithm::HS256),
            &serde_json::json!({"sub": "41", "exp": now() + 60}),
            &jwt::EncodingKey::from_secret(RSA_PUBLIC.as_bytes()),
        )
        .expect("encoded");
        assert_eq!(v.verify(&forged).await, Err(TokenError::Signature));
        // `alg: none`, unsigned.
        let header = base64_url(br#"{"alg":"none","typ":"JWT"}"#);
        let body = base64_url(serde_json::to_string(&claims()).expect("json").as_bytes());
        let unsigned = format!("{header}.{body}.");
        assert!(v.verify(&unsigned).await.is_err());
        assert!(
            v.verify(&signed(jwt::Algorithm::RS256, None, &claims()))
                .await
                .is_ok()
        );
    }

    fn base64_url(bytes: &[u8]) -> String {
        // RFC 4648 §5 without padding, enough for a test.
        const ALPHABET: &[u8; 64] =
            b"ABCDEFGHIJKLMNOPQRSTUVWXYZabcdefghijklmnopqrstuvwxyz0123456789-_";
        let mut out = String::new();
        for chunk in bytes.chunks(3) {
            let b = [
                chunk[0],
                *chunk.get(1).unwrap_or(&0),
                *chunk.get(2).unwrap_or(&0),
            ];
            let n = (u32::from(b[0]) << 16) | (u32::from(b[1]) << 8) | u32::from(b[2]);
            for i in 0..=chunk.len() {
                out.push(char::from(ALPHABET[((n >> (18 - 6 * i)) & 63) as usize]));
            }
        }
        out
    }

    #[tokio::test]
    async fn several_static_keys_are_chosen_by_kid_each_with_its_own_algorithm() {
        let mut settings = TokenSettings::hs256(SECRET);
        settings.keys = vec![
            KeySettings {
                kid: "rsa-2026".into(),
                algorithm: Algorithm::Rs256,
                secret: None,
                public_key_pem: Some(RSA_PUBLIC.into()),
            },
            KeySettings {
                kid: "ec-2026".into(),
                algorithm: Algorithm::Es256,
                secret: None,
                public_key_pem: Some(EC_PUBLIC.into()),
            },
        ];
        let v = verifier(settings);
        let c = claims();
        assert!(
            v.verify(&signed(jwt::Algorithm::RS256, Some("rsa-2026"), &c))
                .await
                .is_ok()
        );
        assert!(
            v.verify(&signed(jwt::Algorithm::ES256, Some("ec-2026"), &c))
                .await
                .is_ok()
        );
        // The key without kid verifies tokens without one.
        assert!(
            v.verify(&signed(jwt::Algorithm::HS256, None, &c))
                .await
                .is_ok()
        );
        // A kid with another key's algorithm or signature.
        assert_eq!(
            v.verify(&signed(jwt::Algorithm::ES256, Some("rsa-2026"), &c))
                .await,
            Err(TokenError::Signature)
        );
        assert_eq!(
            v.verify(&signed(jwt::Algorithm::HS256, Some("ec-2026"), &c))
                .await,
            Err(TokenError::Signature)
        );
        // Without a key without kid, an unknown kid and a missing one are unknown keys.
        let v = verifier(TokenSettings::by_kid(
            vec![KeySettings {
                kid: "rsa-2026".into(),
                algorithm: Algorithm::Rs256,
                secret: None,
                public_key_pem: Some(RSA_PUBLIC.into()),
            }],
            None,
        ));
        assert_eq!(
            v.verify(&signed(jwt::Algorithm::RS256, Some("other"), &c))
                .await,
            Err(TokenError::UnknownKey)
        );
        assert_eq!(
            v.verify(&signed(jwt::Algorithm::RS256, None, &c)).await,
            Err(TokenError::UnknownKey)
        );
    }

    #[tokio::test]
    async fn jwks_keys_rotate_and_unknown_kids_refetch_at_most_once_per_interval() {
        let source = Arc::new(FakeJwks::default());
        source.serve(&[jwk(jwt::Algorithm::RS256, "a")]);
        let v = with_jwks(&source, Duration::from_secs(3600));
        assert_eq!(v.refresh_jwks().await, Some(Ok(1)));
        assert_eq!(source.fetches(), 1);
        let c = claims();
        assert!(
            v.verify(&signed(jwt::Algorithm::RS256, Some("a"), &c))
                .await
                .is_ok()
        );
        assert_eq!(source.fetches(), 1, "a known kid fetches nothing");

        // Key b is published: the first token with it fetches the set again.
        source.serve(&[
            jwk(jwt::Algorithm::RS256, "a"),
            jwk(jwt::Algorithm::ES256, "b"),
        ]);
        assert!(
            v.verify(&signed(jwt::Algorithm::ES256, Some("b"), &c))
                .await
                .is_ok()
        );
        assert_eq!(source.fetches(), 2);

        // Unknown kids within the interval: refused, without fetching.
        for _ in 0..5 {
            assert_eq!(
                v.verify(&signed(jwt::Algorithm::RS256, Some("c"), &c))
                    .await,
                Err(TokenError::UnknownKey)
            );
        }
        assert_eq!(source.fetches(), 2, "refetches are rate limited");
        // A kid with another algorithm than its JWK's.
        assert_eq!(
            v.verify(&signed(jwt::Algorithm::RS256, Some("b"), &c))
                .await,
            Err(TokenError::Signature)
        );
    }

    #[tokio::test]
    async fn the_last_good_set_is_kept_when_the_jwks_endpoint_fails() {
        let source = Arc::new(FakeJwks::default());
        source.serve(&[jwk(jwt::Algorithm::RS256, "a")]);
        let v = with_jwks(&source, Duration::ZERO);
        assert_eq!(v.refresh_jwks().await, Some(Ok(1)));
        let c = claims();
        for broken in [
            None,
            Some("not json"),
            Some(r#"{"keys": [{"kty": "oct", "k": "AAAA", "kid": "h"}]}"#),
        ] {
            match broken {
                None => source.down(),
                Some(body) => *source.document.lock().expect("lock") = Some(body.to_owned()),
            }
            let before = source.fetches();
            assert_eq!(
                v.verify(&signed(jwt::Algorithm::RS256, Some("x"), &c))
                    .await,
                Err(TokenError::UnknownKey)
            );
            assert_eq!(
                source.fetches(),
                before + 1,
                "an unknown kid fetched ({broken:?})"
            );
            assert!(
                v.verify(&signed(jwt::Algorithm::RS256, Some("a"), &c))
                    .await
                    .is_ok(),
                "the last good set is kept ({broken:?})"
            );
            assert!(v.refresh_jwks().await.is_some_and(|r| r.is_err()));
        }
        // A symmetric key in a published set is never used.
        assert_eq!(
            v.verify(&signed(jwt::Algorithm::HS256, Some("h"), &c))
                .await,
            Err(TokenError::UnknownKey)
        );
    }

    #[tokio::test]
    async fn unknown_kids_arriving_together_cause_one_fetch() {
        let source = Arc::new(FakeJwks::default());
        source.serve(&[jwk(jwt::Algorithm::RS256, "a")]);
        let v = with_jwks(&source, Duration::ZERO);
        let token = signed(jwt::Algorithm::RS256, Some("a"), &claims());
        // Nothing fetched yet: all of them find the kid unknown at once.
        let all = futures_util::future::join_all((0..8).map(|_| v.verify(&token))).await;
        assert!(all.iter().all(Result::is_ok), "{all:?}");
        assert_eq!(source.fetches(), 1, "one fetch for all of them");
    }

    #[tokio::test]
    async fn tokens_living_longer_than_the_maximum_are_refused() {
        let mut settings = TokenSettings::hs256(SECRET);
        settings.max_ttl_seconds = 3600;
        let v = verifier(settings.clone());
        let t = now();
        let hs = |c: serde_json::Value| signed(jwt::Algorithm::HS256, None, &c);
        for (claims, ok) in [
            (
                serde_json::json!({"sub": "41", "iat": t, "exp": t + 3600}),
                true,
            ),
            (
                serde_json::json!({"sub": "41", "iat": t, "exp": t + 3601}),
                false,
            ),
            // Issued long ago for long: still too long, though it expires soon.
            (
                serde_json::json!({"sub": "41", "iat": t - 86_000, "exp": t + 60}),
                false,
            ),
            // No iat: from now.
            (serde_json::json!({"sub": "41", "exp": t + 3000}), true),
            (serde_json::json!({"sub": "41", "exp": t + 7200}), false),
            // An iat in the future does not stretch the lifetime.
            (
                serde_json::json!({"sub": "41", "iat": t + 86_400, "exp": t + 86_400 + 60}),
                false,
            ),
        ] {
            let outcome = v.verify(&hs(claims.clone())).await;
            if ok {
                assert!(outcome.is_ok(), "{claims}: {outcome:?}");
            } else {
                assert_eq!(outcome, Err(TokenError::TooLongLived), "{claims}");
            }
        }
        settings.max_ttl_seconds = 0;
        let unlimited = verifier(settings);
        let long = hs(serde_json::json!({"sub": "41", "iat": t, "exp": t + 10 * 86_400}));
        assert!(unlimited.verify(&long).await.is_ok(), "0: no maximum");
    }

    #[test]
    fn missing_or_bad_material_names_its_key() {
        let mut s = TokenSettings::hs256("");
        assert_eq!(
            TokenVerifier::new(&s).map(|_| ()).map_err(|e| e.key),
            Err("auth.user_tokens.secret")
        );
        s.secret = Some("short".into());
        assert!(
            TokenVerifier::new(&s)
                .map(|_| ())
                .expect_err("weak")
                .to_string()
                .starts_with("auth.user_tokens.secret: is shorter")
        );
        s.secret = None;
        assert_eq!(
            TokenVerifier::new(&s).map(|_| ()).map_err(|e| e.key),
            Err("auth.user_tokens.secret")
        );
        for (algorithm, pem) in [
            (Algorithm::Rs256, None),
            (Algorithm::Es256, None),
            (Algorithm::Rs256, Some("-----BEGIN PUBLIC KEY-----\nxx\n")),
            (Algorithm::Rs256, Some(EC_PUBLIC)),
            (Algorithm::Es256, Some(RSA_PUBLIC)),
        ] {
            let s = TokenSettings {
                algorithm,
                secret: None,
                public_key_pem: pem.map(str::to_owned),
                ..TokenSettings::hs256("")
            };
            assert_eq!(
                TokenVerifier::new(&s).map(|_| ()).map_err(|e| e.key),
                Err("auth.user_tokens.public_key_pem"),
                "{algorithm} {pem:?}"
            );
            let s = TokenSettings::by_kid(
                vec![KeySettings {
                    kid: "k1".into(),
                    algorithm,
                    secret: None,
                    public_key_pem: pem.map(str::to_owned),
                }],
                None,
            );
            let e = TokenVerifier::new(&s).map(|_| ()).expect_err("bad key");
            assert_eq!(e.key, "auth.user_tokens.keys");
            assert!(e.problem.starts_with("key \"k1\": "), "{e}");
        }
        let twice = KeySettings {
            kid: "k".into(),
            algorithm: Algorithm::Hs256,
            secret: Some(SECRET.into()),
            public_key_pem: None,
        };
        let e = TokenVerifier::new(&TokenSettings::by_kid(vec![twice.clone(), twice], None))
            .map(|_| ())
            .expect_err("twice");
        assert!(e.to_string().contains("used twice"), "{e}");
        let mut s = TokenSettings::hs256(SECRET);
        s.issuer = Some(" ".into());
        assert_eq!(
            TokenVerifier::new(&s).map(|_| ()).map_err(|e| e.key),
            Err("auth.user_tokens.issuer")
        );
        assert!(mint_token("short", "41", &[], 60, None, None).is_err());
        assert!(mint_token(SECRET, "", &[], 60, None, None).is_err());
    }

    #[test]
    fn secrets_never_print() {
        let mut s = TokenSettings::hs256(SECRET);
        s.keys = vec![KeySettings {
            kid: "k".into(),
            algorithm: Algorithm::Hs256,
            secret: Some(format!("{SECRET}-2")),
            public_key_pem: None,
        }];
        assert!(!format!("{s:?}").contains(SECRET));
        assert!(!format!("{:?}", verifier(s)).contains(SECRET));
    }
}
