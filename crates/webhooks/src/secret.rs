//! The signing secret of one endpoint, in the `whsec_` text form receivers paste into their
//! Standard Webhooks library.

use std::fmt;

use base64::Engine;
use base64::engine::general_purpose::STANDARD;

const PREFIX: &str = "whsec_";
/// The specification's bounds on the key: at least 24 bytes (192 bits), at most 64 (the block
/// of SHA-256: a longer HMAC key is hashed first and gains nothing).
const MIN_KEY: usize = 24;
const MAX_KEY: usize = 64;
/// What [`WebhookSecret::generate`] draws: 256 bits, the strength of HMAC-SHA256.
const GENERATED_KEY: usize = 32;

/// A webhook signing secret: `whsec_` then the standard base64 (padded) of 24 to 64 bytes.
///
/// It keeps its text (what is stored and shown to the receiver once) and its decoded key
/// (what signs). `Debug` prints neither, so a secret in a logged struct stays out of the logs.
#[derive(Clone)]
pub struct WebhookSecret {
    text: String,
    key: Vec<u8>,
}

/// A text that is not a `whsec_` secret. Codes are stable, for a JSON:API error's `code`.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
pub enum SecretError {
    #[error("a webhook secret starts with `whsec_`")]
    Prefix,
    #[error("a webhook secret is `whsec_` then standard base64")]
    Base64,
    #[error("a webhook secret holds 24 to 64 bytes, this one {0}")]
    Length(usize),
}

impl SecretError {
    /// The stable short code of the error.
    pub fn code(&self) -> &'static str {
        match self {
            SecretError::Prefix => "secret_prefix",
            SecretError::Base64 => "secret_base64",
            SecretError::Length(_) => "secret_length",
        }
    }
}

impl WebhookSecret {
    /// A new secret of 32 random bytes from the thread's CSPRNG (ChaCha seeded by the OS).
    pub fn generate() -> Self {
        let key: [u8; GENERATED_KEY] = rand::random();
        Self {
            text: format!("{PREFIX}{}", STANDARD.encode(key)),
            key: key.to_vec(),
        }
    }

    /// Reads a stored or given secret. Only the `whsec_` form is taken, so one secret has one
    /// text, the one receivers' libraries read.
    pub fn parse(text: &str) -> Result<Self, SecretError> {
        let encoded = text.strip_prefix(PREFIX).ok_or(SecretError::Prefix)?;
        let key = STANDARD.decode(encoded).map_err(|_| SecretError::Base64)?;
        if !(MIN_KEY..=MAX_KEY).contains(&key.len()) {
            return Err(SecretError::Length(key.len()));
        }
        Ok(Self {
            text: text.to_owned(),
            key,
        })
    }

    /// The `whsec_…` text, to store and to show the receiver.
    pub fn as_str(&self) -> &str {
        &self.text
    }

    /// The HMAC key.
    pub(crate) fn key(&self) -> &[u8] {
        &self.key
    }
}

impl fmt::Debug for WebhookSecret {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str("WebhookSecret(<redacted>)")
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn generated_secrets_differ_and_parse_back() {
        let a = WebhookSecret::generate();
        let b = WebhookSecret::generate();
        assert_ne!(a.as_str(), b.as_str());
        assert_eq!(a.key().len(), GENERATED_KEY);
        let again = WebhookSecret::parse(a.as_str()).expect("a generated secret parses");
        assert_eq!(again.key(), a.key());
    }

    #[test]
    fn refuses_what_is_not_a_secret() {
        let b64 = |n: usize| STANDARD.encode(vec![7u8; n]);
        assert_eq!(
            WebhookSecret::parse(&b64(32)).map(|_| ()),
            Err(SecretError::Prefix)
        );
        assert_eq!(
            WebhookSecret::parse("whsec_not base64!").map(|_| ()),
            Err(SecretError::Base64)
        );
        assert_eq!(
            WebhookSecret::parse(&format!("whsec_{}", b64(23))).map(|_| ()),
            Err(SecretError::Length(23))
        );
        assert_eq!(
            WebhookSecret::parse(&format!("whsec_{}", b64(65))).map(|_| ()),
            Err(SecretError::Length(65))
        );
        assert!(WebhookSecret::parse(&format!("whsec_{}", b64(24))).is_ok());
        assert!(WebhookSecret::parse(&format!("whsec_{}", b64(64))).is_ok());
    }
}
