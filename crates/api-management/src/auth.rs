//! `Authorization: Apikey KEY`: the key is hashed with SHA-256 and compared, in constant
//! time, with the hash of every configured key. Keys are named so that one can be rotated
//! (add the new one, move the BSS over, remove the old one); only the name is ever logged.
//!
//! Each key has scopes ([`Scope`]): `read` (GET and HEAD outside `/irdeto/`), `write` (every
//! method outside `/irdeto/`), `irdeto` (the `/irdeto/` routes: the backlog and retries). A
//! key configured without scopes has all three. A key without the scope a request needs gets
//! 403 `insufficient_scope`.

use std::fmt;
use std::str::FromStr;

use actix_web::ResponseError;
use actix_web::body::{EitherBody, MessageBody};
use actix_web::dev::{ServiceRequest, ServiceResponse};
use actix_web::http::header::{self, HeaderValue};
use actix_web::http::{Method, StatusCode};
use actix_web::middleware::Next;
use actix_web::{HttpMessage, web};
use licenses_http::{ApiError, RateLimits};
use rand::RngCore;
use sha2::{Digest, Sha256};
use subtle::ConstantTimeEq;

use crate::PREFIX;

/// The name of the key a request was authorized with.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct KeyName(pub String);

/// What a management key may do.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash)]
pub enum Scope {
    /// GET and HEAD on every route outside `/irdeto/`.
    Read,
    /// Every method on every route outside `/irdeto/` (reads included).
    Write,
    /// The `/irdeto/` routes: the backlog (GET) and retries (POST).
    Irdeto,
}

impl Scope {
    /// Every scope, in the order they are written.
    pub const ALL: [Scope; 3] = [Scope::Read, Scope::Write, Scope::Irdeto];

    pub fn as_str(self) -> &'static str {
        match self {
            Self::Read => "read",
            Self::Write => "write",
            Self::Irdeto => "irdeto",
        }
    }

    fn bit(self) -> u8 {
        match self {
            Self::Read => 1,
            Self::Write => 2,
            Self::Irdeto => 4,
        }
    }

    /// The scope a request needs: `irdeto` under `/irdeto/`, else `read` for GET and HEAD
    /// (which `write` also grants) and `write` for anything else.
    pub fn needed(method: &Method, path: &str) -> Scope {
        let irdeto = path
            .strip_prefix(PREFIX)
            .is_some_and(|rest| rest == "/irdeto" || rest.starts_with("/irdeto/"));
        if irdeto {
            Scope::Irdeto
        } else if method == Method::GET || method == Method::HEAD {
            Scope::Read
        } else {
            Scope::Write
        }
    }
}

impl fmt::Display for Scope {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(self.as_str())
    }
}

impl FromStr for Scope {
    type Err = String;

    fn from_str(s: &str) -> Result<Self, Self::Err> {
        match s.trim() {
            "read" => Ok(Self::Read),
            "write" => Ok(Self::Write),
            "irdeto" => Ok(Self::Irdeto),
            other => Err(format!(
                "unknown scope {other:?}: expected read, write or irdeto"
            )),
        }
    }
}

/// A set of scopes. Written `read+irdeto` (the form of `name:sha256:read+irdeto`).
#[derive(Clone, Copy, PartialEq, Eq, Hash)]
pub struct Scopes(u8);

impl Scopes {
    /// All three: what a key configured without scopes has.
    pub const ALL: Scopes = Scopes(7);
    /// None (refused by the settings: such a key could do nothing).
    pub const NONE: Scopes = Scopes(0);

    pub fn contains(self, scope: Scope) -> bool {
        self.0 & scope.bit() != 0
    }

    pub fn is_empty(self) -> bool {
        self.0 == 0
    }

    /// Whether these scopes allow a request that needs `needed`.
    pub fn allow(self, needed: Scope) -> bool {
        match needed {
            Scope::Read => self.contains(Scope::Read) || self.contains(Scope::Write),
            Scope::Write => self.contains(Scope::Write),
            Scope::Irdeto => self.contains(Scope::Irdeto),
        }
    }

    /// The scopes, in the order of [`Scope::ALL`].
    pub fn iter(self) -> impl Iterator<Item = Scope> {
        Scope::ALL.into_iter().filter(move |s| self.contains(*s))
    }
}

impl FromIterator<Scope> for Scopes {
    fn from_iter<I: IntoIterator<Item = Scope>>(iter: I) -> Self {
        Scopes(iter.into_iter().fold(0, |bits, s| bits | s.bit()))
    }
}

impl fmt::Display for Scopes {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        let names: Vec<&str> = self.iter().map(Scope::as_str).collect();
        f.write_str(&names.join("+"))
    }
}

impl fmt::Debug for Scopes {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(f, "Scopes({self})")
    }
}

/// `read+irdeto` (also `read,irdeto` and `read irdeto`), each scope once or more.
impl FromStr for Scopes {
    type Err = String;

    fn from_str(s: &str) -> Result<Self, Self::Err> {
        s.split(['+', ',', ' '])
            .filter(|part| !part.trim().is_empty())
            .map(str::parse::<Scope>)
            .collect()
    }
}

/// A configured key hash that is not 64 hex digits.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
#[error("management key {name:?}: sha256 must be 64 hexadecimal digits")]
pub struct BadKeyHash {
    pub name: String,
}

/// The management keys the service accepts, by name, with their scopes.
#[derive(Clone)]
pub struct ManagementKeys {
    keys: Vec<(String, [u8; 32], Scopes)>,
}

impl std::fmt::Debug for ManagementKeys {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_list()
            .entries(
                self.keys
                    .iter()
                    .map(|(name, _, scopes)| format!("{name} ({scopes})")),
            )
            .finish()
    }
}

impl ManagementKeys {
    /// Keys from `(name, sha256 hex)` pairs, each with every scope.
    pub fn new(entries: impl IntoIterator<Item = (String, String)>) -> Result<Self, BadKeyHash> {
        Self::with_scopes(
            entries
                .into_iter()
                .map(|(name, hash)| (name, hash, Scopes::ALL)),
        )
    }

    /// Keys from `(name, sha256 hex, scopes)`, as `auth.management_keys` holds them.
    pub fn with_scopes(
        entries: impl IntoIterator<Item = (String, String, Scopes)>,
    ) -> Result<Self, BadKeyHash> {
        let keys = entries
            .into_iter()
            .map(|(name, hash, scopes)| {
                let mut digest = [0u8; 32];
                match hex::decode_to_slice(hash.trim(), &mut digest) {
                    Ok(()) => Ok((name, digest, scopes)),
                    Err(_) => Err(BadKeyHash { name }),
                }
            })
            .collect::<Result<_, _>>()?;
        Ok(Self { keys })
    }

    /// The name of the key `presented` is: see [`ManagementKeys::authorize`].
    pub fn verify(&self, presented: &str) -> Option<&str> {
        self.authorize(presented).map(|(name, _)| name)
    }

    /// The name and scopes of the key `presented` is, checking every key so that the time
    /// taken does not tell which one (nor how much of it) matched.
    pub fn authorize(&self, presented: &str) -> Option<(&str, Scopes)> {
        let digest: [u8; 32] = Sha256::digest(presented.as_bytes()).into();
        let mut found = None;
        for (name, hash, scopes) in &self.keys {
            if bool::from(hash.ct_eq(&digest)) {
                found = Some((name.as_str(), *scopes));
            }
        }
        found
    }
}

/// A new random key and the SHA-256 hex digest to configure for it
/// (`licenses apikey new --name NAME`).
pub fn new_key() -> (String, String) {
    let mut bytes = [0u8; 32];
    rand::rng().fill_bytes(&mut bytes);
    let key = hex::encode(bytes);
    let hash = hex::encode(Sha256::digest(key.as_bytes()));
    (key, hash)
}

fn unauthorized(detail: &str) -> ApiError {
    ApiError::new(StatusCode::UNAUTHORIZED, "unauthorized", detail)
        .with_header(header::WWW_AUTHENTICATE, HeaderValue::from_static("Apikey"))
}

/// 403 `insufficient_scope`: names the scope needed, never the key.
fn insufficient_scope(needed: Scope) -> ApiError {
    ApiError::new(
        StatusCode::FORBIDDEN,
        "insufficient_scope",
        format!("this API key does not have the scope `{needed}` this request needs"),
    )
}

/// Middleware: refuses a request without a valid `Authorization: Apikey KEY` (401), over its
/// key's rate limit (429, when the application has [`RateLimits`]), or that its key's scopes
/// do not allow (403), and records the key's name for the handlers (audit trail,
/// idempotency scope).
pub async fn require_key<B: MessageBody + 'static>(
    req: ServiceRequest,
    next: Next<B>,
) -> Result<ServiceResponse<EitherBody<B>>, actix_web::Error> {
    let keys = req.app_data::<web::Data<ManagementKeys>>().cloned();
    let presented = req
        .headers()
        .get(header::AUTHORIZATION)
        .and_then(|v| v.to_str().ok())
        .and_then(|v| v.strip_prefix("Apikey "))
        .map(str::trim);
    let found = match (keys, presented) {
        (_, None) => {
            return Ok(refuse(
                req,
                "send the header Authorization: Apikey YOUR_KEY",
            ));
        }
        (None, Some(_)) => None,
        (Some(keys), Some(key)) => keys
            .authorize(key)
            .map(|(name, scopes)| (name.to_owned(), scopes)),
    };
    let Some((name, scopes)) = found else {
        return Ok(refuse(req, "the API key is not valid"));
    };
    let limited = req
        .app_data::<web::Data<RateLimits>>()
        .map_or(Ok(()), |limits| limits.check_management(&name));
    if let Err(error) = limited {
        return Ok(req
            .into_response(error.error_response())
            .map_into_right_body());
    }
    // The path as the router matches it (percent-decoded where unreserved): `/%69rdeto/…`
    // reaches the Irdeto routes and needs their scope.
    let needed = Scope::needed(req.method(), req.match_info().as_str());
    if !scopes.allow(needed) {
        tracing::info!(key = %name, %needed, "management key lacks a scope: answering 403");
        return Ok(req
            .into_response(insufficient_scope(needed).error_response())
            .map_into_right_body());
    }
    req.extensions_mut().insert(KeyName(name));
    Ok(next.call(req).await?.map_into_left_body())
}

fn refuse<B>(req: ServiceRequest, detail: &str) -> ServiceResponse<EitherBody<B>> {
    req.into_response(unauthorized(detail).error_response())
        .map_into_right_body()
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn a_new_key_verifies_under_its_name_and_others_do_not() {
        let (key, hash) = new_key();
        let (_, other_hash) = new_key();
        let keys = ManagementKeys::new([("old".to_owned(), other_hash), ("bss".to_owned(), hash)])
            .expect("hex");
        assert_eq!(keys.verify(&key), Some("bss"));
        assert_eq!(keys.verify("guess"), None);
        assert_eq!(keys.verify(""), None);
        assert!(!format!("{keys:?}").contains(&key));
    }

    #[test]
    fn scopes_parse_print_and_allow_what_they_say() {
        assert_eq!(
            "read+irdeto".parse::<Scopes>().map(|s| s.to_string()),
            Ok("read+irdeto".into())
        );
        assert_eq!("irdeto,read".parse::<Scopes>(), "read+irdeto".parse());
        assert_eq!("".parse::<Scopes>(), Ok(Scopes::NONE));
        assert!("read+admin".parse::<Scopes>().is_err());
        assert_eq!(Scopes::ALL.to_string(), "read+write+irdeto");
        let p = |rest: &str| format!("{PREFIX}{rest}");
        assert_eq!(Scope::needed(&Method::GET, &p("/products")), Scope::Read);
        assert_eq!(Scope::needed(&Method::HEAD, &p("/licenses/1")), Scope::Read);
        assert_eq!(
            Scope::needed(&Method::DELETE, &p("/licenses/1")),
            Scope::Write
        );
        assert_eq!(
            Scope::needed(&Method::POST, &p("/licenses/batch_create")),
            Scope::Write
        );
        assert_eq!(
            Scope::needed(&Method::GET, &p("/irdeto/backlog")),
            Scope::Irdeto
        );
        assert_eq!(
            Scope::needed(&Method::POST, &p("/irdeto/jobs/1/retry")),
            Scope::Irdeto
        );
        assert_eq!(Scope::needed(&Method::GET, &p("/irdetox")), Scope::Read);
        let read: Scopes = [Scope::Read].into_iter().collect();
        let write: Scopes = [Scope::Write].into_iter().collect();
        let irdeto: Scopes = [Scope::Irdeto].into_iter().collect();
        assert!(read.allow(Scope::Read) && !read.allow(Scope::Write) && !read.allow(Scope::Irdeto));
        assert!(
            write.allow(Scope::Read) && write.allow(Scope::Write) && !write.allow(Scope::Irdeto)
        );
        assert!(
            !irdeto.allow(Scope::Read)
                && !irdeto.allow(Scope::Write)
                && irdeto.allow(Scope::Irdeto)
        );
    }

    #[test]
    fn a_key_is_authorized_with_its_scopes() {
        let (key, hash) = new_key();
        let keys =
            ManagementKeys::with_scopes([("ro".to_owned(), hash, "read".parse().expect("scopes"))])
                .expect("hex");
        assert_eq!(
            keys.authorize(&key),
            Some(("ro", "read".parse().expect("scopes")))
        );
        assert!(!format!("{keys:?}").contains(&key));
        let all = ManagementKeys::new([("all".to_owned(), new_key().1)]).expect("hex");
        assert!(format!("{all:?}").contains("read+write+irdeto"));
    }

    #[test]
    fn a_malformed_hash_is_refused_by_name() {
        let err = ManagementKeys::new([("dev".to_owned(), "xyz".to_owned())]).expect_err("bad");
        assert_eq!(err.name, "dev");
    }
}
