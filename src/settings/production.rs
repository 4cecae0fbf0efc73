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
    match tokens.algorithm {
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
}

/// What production refuses of `server.*` (the checks are `ServerSettings`'s own).
pub(super) fn check_server_for_production(settings: &Settings, problems: &mut Vec<Problem>) {
    if settings.is_production() {
        settings.server.check_for_production(problems);
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

        let s = load(&with_vars(
            "production",
            &[
                ("LICENSES__DATABASE__URL", "postgres://db/licenses"),
                (
                    "LICENSES__AUTH__MANAGEMENT_KEYS",
                    &format!("bss:{}", sha256_hex("real")),
                ),
                (
                    "LICENSES__AUTH__USER_TOKENS__SECRET",
                    "a-real-secret-from-the-vault",
                ),
            ],
        ))
        .expect("loads");
        s.check_for_serving().expect("real material serves");
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
