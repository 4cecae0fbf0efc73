//! `Authorization: Apikey KEY`: the key is hashed with SHA-256 and compared, in constant
//! time, with the hash of every configured key. Keys are named so that one can be rotated
//! (add the new one, move the BSS over, remove the old one); only the name is ever logged.

use actix_web::ResponseError;
use actix_web::body::{EitherBody, MessageBody};
use actix_web::dev::{ServiceRequest, ServiceResponse};
use actix_web::http::StatusCode;
use actix_web::http::header::{self, HeaderValue};
use actix_web::middleware::Next;
use actix_web::{HttpMessage, web};
use licenses_http::{ApiError, RateLimits};
use rand::RngCore;
use sha2::{Digest, Sha256};
use subtle::ConstantTimeEq;

/// The name of the key a request was authorized with.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct KeyName(pub String);

/// A configured key hash that is not 64 hex digits.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
#[error("management key {name:?}: sha256 must be 64 hexadecimal digits")]
pub struct BadKeyHash {
    pub name: String,
}

/// The management keys the service accepts, by name.
#[derive(Clone)]
pub struct ManagementKeys {
    keys: Vec<(String, [u8; 32])>,
}

impl std::fmt::Debug for ManagementKeys {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_list()
            .entries(self.keys.iter().map(|(name, _)| name))
            .finish()
    }
}

impl ManagementKeys {
    /// Keys from `(name, sha256 hex)` pairs, as `auth.management_keys` holds them.
    pub fn new(entries: impl IntoIterator<Item = (String, String)>) -> Result<Self, BadKeyHash> {
        let keys = entries
            .into_iter()
            .map(|(name, hash)| {
                let mut digest = [0u8; 32];
                match hex::decode_to_slice(hash.trim(), &mut digest) {
                    Ok(()) => Ok((name, digest)),
                    Err(_) => Err(BadKeyHash { name }),
                }
            })
            .collect::<Result<_, _>>()?;
        Ok(Self { keys })
    }

    /// The name of the key `presented` is, checking every key so that the time taken does not
    /// tell which one (nor how much of it) matched.
    pub fn verify(&self, presented: &str) -> Option<&str> {
        let digest: [u8; 32] = Sha256::digest(presented.as_bytes()).into();
        let mut found = None;
        for (name, hash) in &self.keys {
            if bool::from(hash.ct_eq(&digest)) {
                found = Some(name.as_str());
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

/// Middleware: refuses a request without a valid `Authorization: Apikey KEY` (401), or over
/// its key's rate limit (429, when the application has [`RateLimits`]), and records the key's
/// name for the handlers (audit trail, idempotency scope).
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
    let name = match (keys, presented) {
        (_, None) => {
            return Ok(refuse(
                req,
                "send the header Authorization: Apikey YOUR_KEY",
            ));
        }
        (None, Some(_)) => None,
        (Some(keys), Some(key)) => keys.verify(key).map(str::to_owned),
    };
    let Some(name) = name else {
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
    fn a_malformed_hash_is_refused_by_name() {
        let err = ManagementKeys::new([("dev".to_owned(), "xyz".to_owned())]).expect_err("bad");
        assert_eq!(err.name, "dev");
    }
}
