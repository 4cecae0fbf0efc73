//! What production is, and everything that depends on it: the one rule that says whether
//! settings are production settings ([`is_production`]), and the checks `serve` makes of the
//! credentials — management keys and user token material present, and under production no
//! public development key or secret and `auth.dev_tokens` off.
//!
//! Whatever asks "production or not" asks [`is_production`]: change the rule there only.

use secrecy::ExposeSecret;

use super::auth::{DEV_MANAGEMENT_KEY, DEV_TOKEN_SECRET, TokenAlgorithm, sha256_hex};
use super::{Problem, Settings};

/// The environment (`APP_ENV`) whose settings are production settings.
const PRODUCTION: &str = "production";

/// Whether settings loaded for `app_env` (`APP_ENV`) are production settings.
pub fn is_production(app_env: &str) -> bool {
    app_env == PRODUCTION
}

/// What `serve` needs of `auth.*`: verification material for user tokens, and under
/// production real management keys and secret (not the development ones) and
/// `auth.dev_tokens` off.
pub(super) fn check_credentials_for_serving(settings: &Settings, problems: &mut Vec<Problem>) {
    let production = settings.is_production();
    let auth = &settings.auth;
    if production && auth.management_keys.is_empty() {
        problems.push(Problem::new(
            "auth.management_keys",
            "is not set: production needs at least one management key (NAME:SHA256)",
        ));
    }
    let dev_hash = sha256_hex(DEV_MANAGEMENT_KEY);
    if production
        && let Some(key) = auth
            .management_keys
            .iter()
            .find(|k| k.sha256.eq_ignore_ascii_case(&dev_hash))
    {
        problems.push(Problem::new(
            "auth.management_keys",
            format!(
                "key {:?} is the public development key, refused under production",
                key.name
            ),
        ));
    }
    let tokens = &auth.user_tokens;
    // The key without kid, when it is configured or no other key is. Outside production
    // checks an unset algorithm means HS256; under them it is refused below.
    let algorithm = tokens.algorithm.unwrap_or(TokenAlgorithm::Hs256);
    let default_key = tokens.has_default_key();
    match algorithm {
        _ if !default_key => {}
        TokenAlgorithm::Hs256 => match &tokens.secret {
            None => problems.push(Problem::new(
                "auth.user_tokens.secret",
                "is not set: HS256 user tokens need it",
            )),
            Some(secret) if production && secret.expose_secret() == DEV_TOKEN_SECRET => {
                problems.push(Problem::new(
                    "auth.user_tokens.secret",
                    "is the public development secret, refused under production",
                ));
            }
            Some(_) => {}
        },
        algorithm @ (TokenAlgorithm::Rs256 | TokenAlgorithm::Es256) => {
            if tokens.public_key_pem.is_none() {
                problems.push(Problem::new(
                    "auth.user_tokens.public_key_pem",
                    format!("is not set: {algorithm} user tokens need it"),
                ));
            }
        }
    }
    if production && auth.dev_tokens {
        problems.push(Problem::new(
            "auth.dev_tokens",
            "must be false under production",
        ));
    }
    if production {
        check_user_tokens_for_production(settings, problems);
    }
}

/// What production requires of `auth.user_tokens` on top of verification material: the
/// algorithm of the key without kid chosen explicitly (HS256 is never a default), `issuer`
/// and `audience` set, a maximum token lifetime, no development secret among the keys, and
/// the JWKS fetched over TLS (plain `http://` only to a loopback host).
fn check_user_tokens_for_production(settings: &Settings, problems: &mut Vec<Problem>) {
    let tokens = &settings.auth.user_tokens;
    if tokens.algorithm.is_none() && tokens.has_default_key() {
        problems.push(Problem::new(
            "auth.user_tokens.algorithm",
            "is not set: production requires the algorithm to be chosen explicitly (HS256, \
             RS256 or ES256)",
        ));
    }
    for (key, value) in [
        ("auth.user_tokens.issuer", &tokens.issuer),
        ("auth.user_tokens.audience", &tokens.audience),
    ] {
        if value.as_deref().is_none_or(|v| v.trim().is_empty()) {
            problems.push(Problem::new(
                key,
                "is not set: production checks every token's issuer and audience",
            ));
        }
    }
    if tokens.max_ttl_s == 0 {
        problems.push(Problem::new(
            "auth.user_tokens.max_ttl_s",
            "is 0 (no maximum): production refuses tokens living longer than it (e.g. 86400)",
        ));
    }
    if let Some(key) = tokens.keys.iter().find(|k| {
        k.secret
            .as_ref()
            .is_some_and(|s| s.expose_secret() == DEV_TOKEN_SECRET)
    }) {
        problems.push(Problem::new(
            "auth.user_tokens.keys",
            format!(
                "key {:?} is the public development secret, refused under production",
                key.kid
            ),
        ));
    }
    if let Some(url) = tokens
        .jwks_url
        .as_deref()
        .and_then(|u| url::Url::parse(u).ok())
        && url.scheme() == "http"
        && !is_loopback_host(&url)
    {
        problems.push(Problem::new(
            "auth.user_tokens.jwks_url",
            "is http:// to a host that is not loopback: production fetches keys over https://",
        ));
    }
}

/// Whether `url`'s host is this machine (`localhost`, 127.0.0.0/8, ::1).
fn is_loopback_host(url: &url::Url) -> bool {
    match url.host() {
        Some(url::Host::Domain(d)) => d.eq_ignore_ascii_case("localhost"),
        Some(url::Host::Ipv4(ip)) => ip.is_loopback(),
        Some(url::Host::Ipv6(ip)) => ip.is_loopback(),
        None => false,
    }
}

#[cfg(test)]
mod tests {
    use crate::settings::auth::{DEV_MANAGEMENT_KEY, DEV_TOKEN_SECRET, sha256_hex};
    use crate::settings::load;
    use crate::settings::test_sources::with_vars;

    #[test]
    fn production_refuses_to_serve_without_real_keys_and_secret() {
        let s = load(&with_vars(
            "production",
            &[("LICENSES__DATABASE__URL", "postgres://db/licenses")],
        ))
        .expect("production loads: migrate needs only the database");
        let m = s
            .check_for_serving()
            .expect_err("missing material")
            .to_string();
        assert!(m.contains("auth.management_keys"), "{m}");
        assert!(m.contains("auth.user_tokens.secret"), "{m}");
        assert!(!m.contains('\n'), "{m}");

        let dev_key = format!("dev:{}", sha256_hex(DEV_MANAGEMENT_KEY));
        let s = load(&with_vars(
            "production",
            &[
                ("LICENSES__DATABASE__URL", "postgres://db/licenses"),
                ("LICENSES__AUTH__MANAGEMENT_KEYS", &dev_key),
                ("LICENSES__AUTH__USER_TOKENS__SECRET", DEV_TOKEN_SECRET),
                ("LICENSES__AUTH__DEV_TOKENS", "true"),
            ],
        ))
        .expect("loads");
        let m = s
            .check_for_serving()
            .expect_err("development material")
            .to_string();
        assert!(
            m.contains("auth.management_keys: key \"dev\" is the public development key"),
            "{m}"
        );
        assert!(
            m.contains("auth.user_tokens.secret: is the public development secret"),
            "{m}"
        );
        assert!(m.contains("auth.dev_tokens"), "{m}");

        assert_eq!(
            serving_problems(&real_production()),
            "",
            "real material serves"
        );
    }

    /// Production settings that serve: real key and secret, and every token rule.
    fn real_production() -> Vec<(&'static str, String)> {
        vec![
            ("LICENSES__DATABASE__URL", "postgres://db/licenses".into()),
            (
                "LICENSES__AUTH__MANAGEMENT_KEYS",
                format!("bss:{}", sha256_hex("real")),
            ),
            (
                "LICENSES__AUTH__USER_TOKENS__SECRET",
                "a-real-secret-from-the-vault".into(),
            ),
            ("LICENSES__AUTH__USER_TOKENS__ALGORITHM", "HS256".into()),
            (
                "LICENSES__AUTH__USER_TOKENS__ISSUER",
                "https://id.aminotv.example".into(),
            ),
            ("LICENSES__AUTH__USER_TOKENS__AUDIENCE", "licenses".into()),
        ]
    }

    fn with(
        base: &[(&'static str, String)],
        changes: &[(&'static str, &str)],
    ) -> Vec<(&'static str, String)> {
        let mut vars: Vec<(&'static str, String)> = base
            .iter()
            .filter(|(k, _)| !changes.iter().any(|(c, _)| c == k))
            .cloned()
            .collect();
        vars.extend(
            changes
                .iter()
                .filter(|(_, v)| !v.is_empty())
                .map(|(k, v)| (*k, (*v).to_owned())),
        );
        vars
    }

    fn serving_problems(vars: &[(&'static str, String)]) -> String {
        let vars: Vec<(&str, &str)> = vars.iter().map(|(k, v)| (*k, v.as_str())).collect();
        let s = load(&with_vars("production", &vars)).expect("loads");
        s.check_for_serving()
            .err()
            .map(|e| e.to_string())
            .unwrap_or_default()
    }

    #[test]
    fn production_requires_explicit_algorithm_issuer_audience_and_a_maximum_lifetime() {
        let base = real_production();
        for (var, key) in [
            (
                "LICENSES__AUTH__USER_TOKENS__ALGORITHM",
                "auth.user_tokens.algorithm: is not set: production requires",
            ),
            (
                "LICENSES__AUTH__USER_TOKENS__ISSUER",
                "auth.user_tokens.issuer: is not set",
            ),
            (
                "LICENSES__AUTH__USER_TOKENS__AUDIENCE",
                "auth.user_tokens.audience: is not set",
            ),
        ] {
            let m = serving_problems(&with(&base, &[(var, "")]));
            assert!(m.contains(key), "without {var}: {m}");
            assert!(!m.contains('\n'), "{m}");
        }
        let m = serving_problems(&with(
            &base,
            &[("LICENSES__AUTH__USER_TOKENS__MAX_TTL_S", "0")],
        ));
        assert!(m.starts_with("auth.user_tokens.max_ttl_s: is 0"), "{m}");
        let m = serving_problems(&with(
            &base,
            &[(
                "LICENSES__AUTH__USER_TOKENS__JWKS_URL",
                "http://id.example/jwks.json",
            )],
        ));
        assert!(
            m.starts_with("auth.user_tokens.jwks_url: is http://"),
            "{m}"
        );
        for url in [
            "https://id.example/jwks.json",
            "http://127.0.0.1:9/jwks.json",
        ] {
            let m = serving_problems(&with(
                &base,
                &[("LICENSES__AUTH__USER_TOKENS__JWKS_URL", url)],
            ));
            assert_eq!(m, "", "{url}");
        }
        // A JWKS alone is material enough: no secret, no algorithm needed.
        let m = serving_problems(&with(
            &base,
            &[
                ("LICENSES__AUTH__USER_TOKENS__SECRET", ""),
                ("LICENSES__AUTH__USER_TOKENS__ALGORITHM", ""),
                (
                    "LICENSES__AUTH__USER_TOKENS__JWKS_URL",
                    "https://id.example/jwks.json",
                ),
            ],
        ));
        assert_eq!(m, "");
    }

    #[test]
    fn outside_production_an_unset_algorithm_is_hs256() {
        let mut s = load(&with_vars("local", &[])).expect("loads");
        s.auth.user_tokens.algorithm = None;
        s.check_for_serving().expect("serves");
        assert_eq!(s.auth.user_tokens.max_ttl_s, 86_400);
    }

    #[test]
    fn asymmetric_tokens_need_a_public_key() {
        let s = load(&with_vars(
            "local",
            &[("LICENSES__AUTH__USER_TOKENS__ALGORITHM", "RS256")],
        ))
        .expect("loads");
        let m = s.check_for_serving().expect_err("no key").to_string();
        assert!(
            m.contains("auth.user_tokens.public_key_pem: is not set: RS256"),
            "{m}"
        );
    }
}
