//! `[auth]`: the management API keys (by their SHA-256), how user tokens are verified, the
//! development key and secret of `config/local.toml` and `config/test.toml`, and the checks of
//! well-formed values. What serving requires of them (and refuses under production) is in
//! `production`.

use std::collections::HashSet;
use std::fmt;
use std::str::FromStr;

use secrecy::{ExposeSecret, SecretString};
use serde::Deserialize;
use serde::de::{self, Deserializer, MapAccess, Visitor};
use sha2::{Digest, Sha256};

use super::Problem;
use super::comma_separated::list_or_comma_separated;

/// The development management key of `config/local.toml` and `config/test.toml`. Public
/// knowledge, refused under `APP_ENV=production`.
pub const DEV_MANAGEMENT_KEY: &str = "dev-management-key-change-me";

/// The development user-token secret (HS256) of `config/local.toml` and `config/test.toml`.
/// Public knowledge, refused under `APP_ENV=production`.
pub const DEV_TOKEN_SECRET: &str = "dev-token-secret-change-me-0123456789abcdef";

/// `[auth]`
#[derive(Debug, Clone, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct AuthSettings {
    /// The management API keys, by the SHA-256 of the key: a list of `{ name, sha256 }`
    /// tables, or one string `name:sha256,name:sha256` (as an environment variable gives it).
    #[serde(deserialize_with = "list_or_comma_separated")]
    pub management_keys: Vec<ManagementKey>,
    pub user_tokens: UserTokenSettings,
    /// Allows minting user tokens with the configured secret; refused under production.
    pub dev_tokens: bool,
}

impl AuthSettings {
    /// The problems of `auth.*` values as given: key names and hashes, an empty secret, a
    /// public key that is not PEM.
    pub(super) fn validate(&self, problems: &mut Vec<Problem>) {
        let mut names = HashSet::new();
        for key in &self.management_keys {
            if key.name.trim().is_empty() {
                problems.push(Problem::new("auth.management_keys", "a key has no name"));
            } else if !names.insert(key.name.as_str()) {
                problems.push(Problem::new(
                    "auth.management_keys",
                    format!("the name {:?} is used twice", key.name),
                ));
            }
            if key.sha256.len() != 64 || !key.sha256.chars().all(|c| c.is_ascii_hexdigit()) {
                problems.push(Problem::new(
                    "auth.management_keys",
                    format!(
                        "the sha256 of key {:?} is not 64 hex digits (it is the SHA-256 of \
                         the key, never the key itself)",
                        key.name
                    ),
                ));
            }
        }
        let tokens = &self.user_tokens;
        if tokens
            .secret
            .as_ref()
            .is_some_and(|s| s.expose_secret().is_empty())
        {
            problems.push(Problem::new("auth.user_tokens.secret", "is empty"));
        }
        if tokens
            .public_key_pem
            .as_ref()
            .is_some_and(|pem| !pem.contains("-----BEGIN"))
        {
            problems.push(Problem::new(
                "auth.user_tokens.public_key_pem",
                "is not a PEM document (-----BEGIN …)",
            ));
        }
    }
}

/// One management API key: its name (for the audit trail) and the hex SHA-256 of the key.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct ManagementKey {
    pub name: String,
    pub sha256: String,
}

impl ManagementKey {
    /// The entry for `key`, as `licenses apikey new` would print it.
    pub fn for_key(name: &str, key: &str) -> Self {
        Self {
            name: name.to_owned(),
            sha256: sha256_hex(key),
        }
    }
}

/// `name:sha256`, the form an environment variable gives.
impl FromStr for ManagementKey {
    type Err = String;

    fn from_str(s: &str) -> Result<Self, Self::Err> {
        let (name, sha256) = s
            .split_once(':')
            .ok_or_else(|| format!("expected NAME:SHA256, got {s:?}"))?;
        Ok(Self {
            name: name.trim().to_owned(),
            sha256: sha256.trim().to_owned(),
        })
    }
}

impl<'de> Deserialize<'de> for ManagementKey {
    fn deserialize<D: Deserializer<'de>>(deserializer: D) -> Result<Self, D::Error> {
        #[derive(Deserialize)]
        #[serde(deny_unknown_fields)]
        struct Table {
            name: String,
            sha256: String,
        }

        struct KeyVisitor;

        impl<'de> Visitor<'de> for KeyVisitor {
            type Value = ManagementKey;

            fn expecting(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
                f.write_str("a table { name, sha256 } or a string NAME:SHA256")
            }

            fn visit_str<E: de::Error>(self, v: &str) -> Result<Self::Value, E> {
                v.parse().map_err(E::custom)
            }

            fn visit_map<A: MapAccess<'de>>(self, map: A) -> Result<Self::Value, A::Error> {
                let table = Table::deserialize(de::value::MapAccessDeserializer::new(map))?;
                Ok(ManagementKey {
                    name: table.name,
                    sha256: table.sha256,
                })
            }
        }

        deserializer.deserialize_any(KeyVisitor)
    }
}

/// The hex SHA-256 of `key`, as `auth.management_keys` holds it.
pub fn sha256_hex(key: &str) -> String {
    hex::encode(Sha256::digest(key.as_bytes()))
}

/// `[auth.user_tokens]`: how user tokens (JWT) are verified.
#[derive(Debug, Clone, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct UserTokenSettings {
    pub algorithm: TokenAlgorithm,
    /// The HS256 secret.
    #[serde(default)]
    pub secret: Option<SecretString>,
    /// The RS256 or ES256 public key, PEM.
    #[serde(default)]
    pub public_key_pem: Option<String>,
    /// Checked against `iss` when set.
    #[serde(default)]
    pub issuer: Option<String>,
    /// Checked against `aud` when set.
    #[serde(default)]
    pub audience: Option<String>,
}

/// The signature algorithm of user tokens.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Deserialize)]
#[serde(try_from = "String")]
pub enum TokenAlgorithm {
    Hs256,
    Rs256,
    Es256,
}

impl TryFrom<String> for TokenAlgorithm {
    type Error = String;

    fn try_from(value: String) -> Result<Self, Self::Error> {
        match value.as_str() {
            "HS256" => Ok(Self::Hs256),
            "RS256" => Ok(Self::Rs256),
            "ES256" => Ok(Self::Es256),
            _ => Err(format!("expected HS256, RS256 or ES256, got {value:?}")),
        }
    }
}

impl fmt::Display for TokenAlgorithm {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(match self {
            Self::Hs256 => "HS256",
            Self::Rs256 => "RS256",
            Self::Es256 => "ES256",
        })
    }
}
