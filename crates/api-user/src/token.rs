//! User tokens: JWTs whose `sub` is the user id and whose optional `flags` array may hold
//! `LICENSE_PURCHASE_RESTRICTED`; `exp` is required.
//!
//! Verification is done by `jsonwebtoken` (RustCrypto backend) with exactly one accepted
//! algorithm, so a token cannot pick its own (`alg: none`, or an HS256 token signed with an
//! RS256 public key as the secret). A token is a credential: it is never logged, and the
//! reason a token is refused is logged only as a category.

use std::fmt;
use std::sync::Arc;

use jsonwebtoken as jwt;
use jsonwebtoken::errors::ErrorKind;
use licenses_domain::{IdError, UserId};
use serde::{Deserialize, Serialize};

/// The flag of a user who may not purchase (seed 002's `LICENSE_PURCHASE_RESTRICTED`).
pub const PURCHASE_RESTRICTED: &str = "LICENSE_PURCHASE_RESTRICTED";

/// Clock skew tolerated on `exp` and `nbf` unless configured otherwise.
pub const DEFAULT_LEEWAY_SECONDS: u64 = 30;

/// Shortest HS256 secret: RFC 7518 §3.2 requires a key at least as long as the hash (256 bits).
pub const MIN_SECRET_BYTES: usize = 32;

/// The signature algorithm of user tokens (`auth.user_tokens.algorithm`).
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
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

/// How user tokens are verified: `auth.user_tokens` of the configuration.
#[derive(Clone, PartialEq, Eq)]
pub struct TokenSettings {
    pub algorithm: Algorithm,
    /// The HS256 secret.
    pub secret: Option<String>,
    /// The RS256 or ES256 public key, PEM (`-----BEGIN PUBLIC KEY-----`).
    pub public_key_pem: Option<String>,
    /// Checked against `iss` (then required) when set.
    pub issuer: Option<String>,
    /// Checked against `aud` (then required) when set.
    pub audience: Option<String>,
    /// Clock skew tolerated on `exp` and `nbf`.
    pub leeway_seconds: u64,
}

impl TokenSettings {
    /// HS256 with `secret`, no issuer nor audience, the default leeway.
    pub fn hs256(secret: impl Into<String>) -> Self {
        Self {
            algorithm: Algorithm::Hs256,
            secret: Some(secret.into()),
            public_key_pem: None,
            issuer: None,
            audience: None,
            leeway_seconds: DEFAULT_LEEWAY_SECONDS,
        }
    }
}

impl fmt::Debug for TokenSettings {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_struct("TokenSettings")
            .field("algorithm", &self.algorithm)
            .field("secret", &self.secret.as_ref().map(|_| "<redacted>"))
            .field("public_key_pem", &self.public_key_pem.is_some())
            .field("issuer", &self.issuer)
            .field("audience", &self.audience)
            .field("leeway_seconds", &self.leeway_seconds)
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

/// Why a token was refused. Only [`TokenError::Expired`] is told to the client as such.
#[derive(Debug, Clone, Copy, PartialEq, Eq, thiserror::Error)]
pub enum TokenError {
    #[error("the token has expired")]
    Expired,
    /// Not a JWT, or undecodable parts.
    #[error("the token is malformed")]
    Malformed,
    /// Bad signature, or another algorithm than the configured one.
    #[error("the token's signature is not valid")]
    Signature,
    /// Wrong or missing `iss`, `aud`; not yet valid (`nbf`).
    #[error("the token is not meant for this service")]
    NotForUs,
    /// Missing `exp` or `sub`, or a `sub` that is not a user id, or bad `flags`.
    #[error("the token's claims are not valid")]
    Claims,
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
}

/// Verifies user tokens as [`TokenSettings`] say. Cheap to clone.
#[derive(Clone)]
pub struct TokenVerifier {
    inner: Arc<Inner>,
}

struct Inner {
    algorithm: Algorithm,
    key: jwt::DecodingKey,
    validation: jwt::Validation,
}

impl fmt::Debug for TokenVerifier {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_struct("TokenVerifier")
            .field("algorithm", &self.inner.algorithm)
            .field("issuer", &self.inner.validation.iss)
            .field("audience", &self.inner.validation.aud)
            .field("leeway", &self.inner.validation.leeway)
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

fn check_secret(secret: Option<&str>) -> Result<&str, TokenConfigError> {
    const KEY: &str = "auth.user_tokens.secret";
    match secret {
        None | Some("") => Err(TokenConfigError::new(
            KEY,
            "is not set: HS256 user tokens need it",
        )),
        Some(s) if s.len() < MIN_SECRET_BYTES => Err(TokenConfigError::new(
            KEY,
            format!("is shorter than {MIN_SECRET_BYTES} bytes, too weak for HS256"),
        )),
        Some(s) => Ok(s),
    }
}

impl TokenVerifier {
    /// A verifier, or the configuration key that is missing or bad.
    pub fn new(settings: &TokenSettings) -> Result<Self, TokenConfigError> {
        const PEM_KEY: &str = "auth.user_tokens.public_key_pem";
        let algorithm = settings.algorithm;
        let key = match algorithm {
            Algorithm::Hs256 => {
                jwt::DecodingKey::from_secret(check_secret(settings.secret.as_deref())?.as_bytes())
            }
            Algorithm::Rs256 | Algorithm::Es256 => {
                let pem = settings.public_key_pem.as_deref().ok_or_else(|| {
                    TokenConfigError::new(
                        PEM_KEY,
                        format!("is not set: {algorithm} user tokens need it"),
                    )
                })?;
                let parsed = if algorithm == Algorithm::Rs256 {
                    jwt::DecodingKey::from_rsa_pem(pem.as_bytes())
                } else {
                    jwt::DecodingKey::from_ec_pem(pem.as_bytes())
                };
                let key = parsed.map_err(|_| {
                    TokenConfigError::new(
                        PEM_KEY,
                        format!("is not a PEM public key for {algorithm}"),
                    )
                })?;
                // The key's DER is only decoded when a token is checked: check it once now,
                // so that a wrong key (another curve, a private key) fails at start-up rather
                // than refusing every token.
                if jwt::crypto::verify("AA", b"probe", &key, algorithm.jwt()).is_err() {
                    return Err(TokenConfigError::new(
                        PEM_KEY,
                        format!("is not a usable public key for {algorithm}"),
                    ));
                }
                key
            }
        };

        let mut validation = jwt::Validation::new(algorithm.jwt());
        validation.leeway = settings.leeway_seconds;
        validation.validate_exp = true;
        validation.validate_nbf = true;
        let mut required = vec!["exp", "sub"];
        if let Some(issuer) = non_empty(settings.issuer.as_ref(), "auth.user_tokens.issuer")? {
            validation.set_issuer(&[issuer]);
            required.push("iss");
        }
        match non_empty(settings.audience.as_ref(), "auth.user_tokens.audience")? {
            Some(audience) => {
                validation.set_audience(&[audience]);
                required.push("aud");
            }
            // Not configured: not checked (jsonwebtoken would otherwise refuse any `aud`).
            None => validation.validate_aud = false,
        }
        validation.set_required_spec_claims(&required);

        Ok(Self {
            inner: Arc::new(Inner {
                algorithm,
                key,
                validation,
            }),
        })
    }

    /// The claims of `token`, if it is valid now.
    pub fn verify(&self, token: &str) -> Result<Claims, TokenError> {
        let data = jwt::decode::<VerifiedClaims>(token, &self.inner.key, &self.inner.validation)
            .map_err(|e| TokenError::from_jwt(&e))?;
        let user = UserId::parse(data.claims.sub).map_err(|_| TokenError::Claims)?;
        Ok(Claims {
            user,
            flags: data.claims.flags.unwrap_or_default(),
        })
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
    let secret = check_secret(Some(secret))?;
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
    use super::*;

    const SECRET: &str = "a-test-secret-of-at-least-32-bytes!!";
    const EC_PUBLIC: &str = include_str!("../tests/keys/es256-public.pem");
    const RSA_PUBLIC: &str = include_str!("../tests/keys/rs256-public.pem");

    fn verifier(settings: TokenSettings) -> TokenVerifier {
        TokenVerifier::new(&settings).expect("valid settings")
    }

    #[test]
    fn a_minted_token_verifies_with_its_user_and_flags() {
        let flags = vec![PURCHASE_RESTRICTED.to_owned(), "OTHER".to_owned()];
        let token = mint_token(SECRET, "41", &flags, 60, None, None).expect("minted");
        let claims = verifier(TokenSettings::hs256(SECRET))
            .verify(&token)
            .expect("valid");
        assert_eq!(claims.user.as_str(), "41");
        assert!(claims.purchase_restricted());
        assert_eq!(claims.flags, flags);

        let plain = mint_token(SECRET, "41", &[], 60, None, None).expect("minted");
        let claims = verifier(TokenSettings::hs256(SECRET))
            .verify(&plain)
            .expect("valid");
        assert!(!claims.purchase_restricted());
    }

    #[test]
    fn issuer_and_audience_are_checked_when_configured() {
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
        assert!(v.verify(&good).is_ok());
        for (iss, aud) in [
            (Some("https://evil.test"), Some("licenses")),
            (Some("https://id.aminotv.test"), Some("playback")),
            (None, Some("licenses")),
            (Some("https://id.aminotv.test"), None),
        ] {
            let token = mint_token(SECRET, "41", &[], 60, iss, aud).expect("minted");
            assert!(
                matches!(
                    v.verify(&token),
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
                .is_ok()
        );
    }

    #[test]
    fn bad_tokens_are_refused_by_category() {
        let v = verifier(TokenSettings::hs256(SECRET));
        assert_eq!(v.verify("not-a-jwt"), Err(TokenError::Malformed));
        let other = mint_token(&"x".repeat(40), "41", &[], 60, None, None).expect("minted");
        assert_eq!(v.verify(&other), Err(TokenError::Signature));
        let expired = jwt::encode(
            &jwt::Header::default(),
            &serde_json::json!({"sub": "41", "exp": jwt::get_current_timestamp() - 3600}),
            &jwt::EncodingKey::from_secret(SECRET.as_bytes()),
        )
        .expect("encoded");
        assert_eq!(v.verify(&expired), Err(TokenError::Expired));
        for claims in [
            serde_json::json!({"sub": "41"}),
            serde_json::json!({"exp": jwt::get_current_timestamp() + 60}),
            serde_json::json!({"sub": "a b", "exp": jwt::get_current_timestamp() + 60}),
            serde_json::json!({"sub": "41", "exp": jwt::get_current_timestamp() + 60, "flags": "x"}),
        ] {
            let token = jwt::encode(
                &jwt::Header::default(),
                &claims,
                &jwt::EncodingKey::from_secret(SECRET.as_bytes()),
            )
            .expect("encoded");
            assert_eq!(v.verify(&token), Err(TokenError::Claims), "{claims}");
        }
    }

    #[test]
    fn a_token_cannot_choose_its_algorithm() {
        let mut settings = TokenSettings::hs256(SECRET);
        settings.algorithm = Algorithm::Rs256;
        settings.secret = None;
        settings.public_key_pem = Some(RSA_PUBLIC.to_owned());
        let v = verifier(settings);
        // The classic confusion: HS256 signed with the RSA public key as the secret.
        let forged = jwt::encode(
            &jwt::Header::new(jwt::Algorithm::HS256),
            &serde_json::json!({"sub": "41", "exp": jwt::get_current_timestamp() + 60}),
            &jwt::EncodingKey::from_secret(RSA_PUBLIC.as_bytes()),
        )
        .expect("encoded");
        assert_eq!(v.verify(&forged), Err(TokenError::Signature));
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
                issuer: None,
                audience: None,
                leeway_seconds: 30,
            };
            assert_eq!(
                TokenVerifier::new(&s).map(|_| ()).map_err(|e| e.key),
                Err("auth.user_tokens.public_key_pem"),
                "{algorithm} {pem:?}"
            );
        }
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
        let s = TokenSettings::hs256(SECRET);
        assert!(!format!("{s:?}").contains(SECRET));
        assert!(!format!("{:?}", verifier(s)).contains(SECRET));
    }
}
