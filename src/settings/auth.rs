//! `[auth]`: the management API keys (by their SHA-256), how user tokens are verified, the
//! development key and secret of `config/local.toml` and `config/test.toml`, and the checks of
//! well-formed values. What serving requires of them (and refuses under production) is in
//! `production`.

use std::collections::HashSet;
use std::fmt;
use std::str::FromStr;

use licenses_api_management::Scopes;
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
    /// The management API keys, by the SHA-256 of the key: a list of `{ name, sha256, scopes }`
    /// tables (`scopes` optional: all of `read`, `write`, `irdeto` when absent), or one
    /// string `name:sha256[:read+irdeto],…` (as an environment variable gives it).
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
            if key.scopes.is_empty() {
                problems.push(Problem::new(
                    "auth.management_keys",
                    format!(
                        "key {:?} has no scope: list some of read, write, irdeto, or leave \
                         scopes out for all three",
                        key.name
                    ),
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
        let mut kids = HashSet::new();
        for key in &tokens.keys {
            if key.kid.trim().is_empty() {
                problems.push(Problem::new("auth.user_tokens.keys", "a key has no kid"));
            } else if !kids.insert(key.kid.as_str()) {
                problems.push(Problem::new(
                    "auth.user_tokens.keys",
                    format!("the kid {:?} is used twice", key.kid),
                ));
            }
            let material = match key.algorithm {
                TokenAlgorithm::Hs256 => key.secret.is_some() && key.public_key_pem.is_none(),
                TokenAlgorithm::Rs256 | TokenAlgorithm::Es256 => {
                    key.public_key_pem.is_some() && key.secret.is_none()
                }
            };
            if !material {
                problems.push(Problem::new(
                    "auth.user_tokens.keys",
                    format!(
                        "key {:?}: {} needs {} (and only it)",
                        key.kid,
                        key.algorithm,
                        if key.algorithm == TokenAlgorithm::Hs256 {
                            "secret"
                        } else {
                            "public_key_pem"
                        }
                    ),
                ));
            }
        }
        if let Some(url) = &tokens.jwks_url {
            match url::Url::parse(url) {
                Ok(u) if matches!(u.scheme(), "http" | "https") && u.host().is_some() => {}
                _ => problems.push(Problem::new(
                    "auth.user_tokens.jwks_url",
                    "is not an http:// or https:// URL",
                )),
            }
        }
    }
}

/// One management API key: its name (for the audit trail), the hex SHA-256 of the key, and
/// what it may do.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct ManagementKey {
    pub name: String,
    pub sha256: String,
    /// `read`, `write`, `irdeto`: all three when the entry does not say.
    pub scopes: Scopes,
}

impl ManagementKey {
    /// The entry for `key`, with every scope, as `licenses apikey new` would print it.
    pub fn for_key(name: &str, key: &str) -> Self {
        Self {
            name: name.to_owned(),
            sha256: sha256_hex(key),
            scopes: Scopes::ALL,
        }
    }
}

/// `name:sha256` or `name:sha256:read+irdeto`, the form an environment variable gives.
impl FromStr for ManagementKey {
    type Err = String;

    fn from_str(s: &str) -> Result<Self, Self::Err> {
        let (name, rest) = s
            .split_once(':')
            .ok_or_else(|| format!("expected NAME:SHA256[:SCOPES], got {s:?}"))?;
        let (sha256, scopes) = match rest.split_once(':') {
            Some((sha256, scopes)) => (sha256, scopes.parse::<Scopes>()?),
            None => (rest, Scopes::ALL),
        };
        Ok(Self {
            name: name.trim().to_owned(),
            sha256: sha256.trim().to_owned(),
            scopes,
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
            #[serde(default)]
            scopes: Option<Vec<String>>,
        }

        struct KeyVisitor;

        impl<'de> Visitor<'de> for KeyVisitor {
            type Value = ManagementKey;

            fn expecting(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
                f.write_str("a table { name, sha256, scopes } or a string NAME:SHA256[:SCOPES]")
            }

            fn visit_str<E: de::Error>(self, v: &str) -> Result<Self::Value, E> {
                v.parse().map_err(E::custom)
            }

            fn visit_map<A: MapAccess<'de>>(self, map: A) -> Result<Self::Value, A::Error> {
                let table = Table::deserialize(de::value::MapAccessDeserializer::new(map))?;
                let scopes = match table.scopes {
                    None => Scopes::ALL,
                    Some(list) => list
                        .iter()
                        .map(|s| s.parse())
                        .collect::<Result<Scopes, String>>()
                        .map_err(<A::Error as de::Error>::custom)?,
                };
                Ok(ManagementKey {
                    name: table.name,
                    sha256: table.sha256,
                    scopes,
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
    /// The algorithm of the key without `kid` (`secret` or `public_key_pem`). Outside
    /// production checks, unset means HS256; under them it must be set.
    #[serde(default)]
    pub algorithm: Option<TokenAlgorithm>,
    /// The HS256 secret.
    #[serde(default)]
    pub secret: Option<SecretString>,
    /// The RS256 or ES256 public key, PEM.
    #[serde(default)]
    pub public_key_pem: Option<String>,
    /// Static keys chosen by the token's `kid`: `[[auth.user_tokens.keys]]` tables
    /// `{ kid, algorithm, secret | public_key_pem }`.
    #[serde(default)]
    pub keys: Vec<StaticTokenKey>,
    /// A JWKS document (RS256 and ES256 keys by `kid`), fetched at start, every
    /// `jwks_max_age_s`, and on an unknown `kid` at most every `jwks_refresh_min_s`.
    #[serde(default)]
    pub jwks_url: Option<String>,
    /// The shortest time between two JWKS fetches caused by unknown `kid`s.
    pub jwks_refresh_min_s: u64,
    /// How often the JWKS is fetched again anyway (keys the issuer removed stop being
    /// accepted); 0: only at start and on unknown `kid`s.
    pub jwks_max_age_s: u64,
    /// Checked against `iss` when set; required under production checks.
    #[serde(default)]
    pub issuer: Option<String>,
    /// Checked against `aud` when set; required under production checks.
    #[serde(default)]
    pub audience: Option<String>,
    /// Tokens living longer than this (from `iat`, or now, to `exp`) are refused; 0: no
    /// maximum (refused under production checks).
    pub max_ttl_s: u64,
}

impl UserTokenSettings {
    /// Whether the key without `kid` is configured, or expected (no other key is).
    pub fn has_default_key(&self) -> bool {
        self.secret.is_some()
            || self.public_key_pem.is_some()
            || (self.keys.is_empty() && self.jwks_url.is_none())
    }
}

/// One of `auth.user_tokens.keys`: a static key chosen by the token's `kid`.
#[derive(Debug, Clone, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct StaticTokenKey {
    pub kid: String,
    pub algorithm: TokenAlgorithm,
    #[serde(default)]
    pub secret: Option<SecretString>,
    #[serde(default)]
    pub public_key_pem: Option<String>,
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

#[cfg(test)]
mod tests {
    use licenses_api_management::Scopes;

    use crate::settings::load;
    use crate::settings::test_sources::{message, sources, with_vars};

    use super::{ManagementKey, sha256_hex};

    #[test]
    fn management_keys_have_all_scopes_unless_they_say() {
        let hash = sha256_hex("k");
        let s = load(&with_vars(
            "local",
            &[(
                "LICENSES__AUTH__MANAGEMENT_KEYS",
                &format!("bss:{hash}, reports:{hash}:read, ops:{hash}:read+irdeto"),
            )],
        ))
        .expect("loads");
        let scopes: Vec<String> = s
            .auth
            .management_keys
            .iter()
            .map(|k| format!("{}={}", k.name, k.scopes))
            .collect();
        assert_eq!(
            scopes,
            ["bss=read+write+irdeto", "reports=read", "ops=read+irdeto"]
        );
        let m = message(load(&with_vars(
            "local",
            &[(
                "LICENSES__AUTH__MANAGEMENT_KEYS",
                &format!("x:{hash}:read+admin"),
            )],
        )));
        assert!(m.contains("unknown scope \"admin\""), "{m}");
        assert!(!m.contains('\n'), "{m}");
    }

    #[test]
    fn scopes_in_a_config_file_and_an_empty_list_is_refused() {
        let dir = tempfile::tempdir().expect("tempdir");
        let file = dir.path().join("keys.toml");
        let hash = sha256_hex("k");
        std::fs::write(
            &file,
            format!(
                "[auth]\nmanagement_keys = [\n  {{ name = \"ro\", sha256 = \"{hash}\", scopes = [\"read\"] }},\n  \
                 {{ name = \"all\", sha256 = \"{hash}\" }},\n]\n"
            ),
        )
        .expect("write");
        let mut src = sources("local");
        src.file = Some(file.clone());
        let s = load(&src).expect("loads");
        assert_eq!(
            s.auth.management_keys[0].scopes,
            "read".parse::<Scopes>().expect("scopes")
        );
        assert_eq!(s.auth.management_keys[1].scopes, Scopes::ALL);
        assert_eq!(
            s.auth.management_keys[1],
            ManagementKey::for_key("all", "k")
        );

        std::fs::write(
            &file,
            format!("[auth]\nmanagement_keys = [{{ name = \"none\", sha256 = \"{hash}\", scopes = [] }}]\n"),
        )
        .expect("write");
        let m = message(load(&src));
        assert!(
            m.starts_with("auth.management_keys: key \"none\" has no scope"),
            "{m}"
        );
    }

    #[test]
    fn user_token_keys_and_jwks_url_are_checked() {
        let dir = tempfile::tempdir().expect("tempdir");
        let file = dir.path().join("tokens.toml");
        std::fs::write(
            &file,
            "[auth.user_tokens]\njwks_url = \"ftp://id.example/jwks\"\n\
             [[auth.user_tokens.keys]]\nkid = \"a\"\nalgorithm = \"RS256\"\nsecret = \"s\"\n\
             [[auth.user_tokens.keys]]\nkid = \"a\"\nalgorithm = \"HS256\"\nsecret = \"0123456789abcdef0123456789abcdef\"\n",
        )
        .expect("write");
        let mut src = sources("local");
        src.file = Some(file.clone());
        let m = message(load(&src));
        assert!(
            m.contains("auth.user_tokens.keys: key \"a\": RS256 needs public_key_pem"),
            "{m}"
        );
        assert!(
            m.contains("auth.user_tokens.keys: the kid \"a\" is used twice"),
            "{m}"
        );
        assert!(
            m.contains("auth.user_tokens.jwks_url: is not an http"),
            "{m}"
        );
        assert!(
            !m.contains("0123456789abcdef"),
            "a secret in a message: {m}"
        );
    }
}
