//! What production is, and everything that depends on it: the one rule that says whether the
//! production checks apply to settings ([`is_production`], [`Settings::exposure`]), and the
//! checks `serve` makes of the credentials — management keys and user token material present,
//! and, wherever development credentials are refused, no public development key or secret,
//! no key or secret committed for the tests, and `auth.dev_tokens` off — and of the transport
//! to the database and to Irdeto (TLS).
//!
//! The rule, in two parts:
//! - every environment but `local` and `test` (`production`, `staging`, any other name) gets
//!   the production checks: [`Settings::production_checks`];
//! - whatever `APP_ENV` is, a listener (`server.user_addr`, `server.management_addr`) bound to
//!   an address that is not loopback refuses development credentials:
//!   [`Exposure::PublicListener`].
//!
//! Whatever asks "production or not" asks [`is_production`] (before the settings are loaded)
//! or [`Settings::exposure`] (after): change the rule here only.

use std::net::{IpAddr, SocketAddr};

use secrecy::ExposeSecret;

use super::auth::{DEV_MANAGEMENT_KEY, DEV_TOKEN_SECRET, TokenAlgorithm, sha256_hex};
use super::{Problem, Settings};

/// The environments (`APP_ENV`) of a developer's machine and of the tests: the only ones
/// without the production checks.
pub const DEVELOPMENT_ENVIRONMENTS: [&str; 2] = ["local", "test"];

/// Whether settings loaded for `app_env` (`APP_ENV`) get the production checks: every
/// environment but `local` and `test`.
pub fn is_production(app_env: &str) -> bool {
    !DEVELOPMENT_ENVIRONMENTS.contains(&app_env.trim())
}

/// Why development credentials are allowed or refused, and how far the checks go.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Exposure {
    /// `APP_ENV` is `local` or `test` and every listener is on loopback: development
    /// credentials are allowed.
    Development,
    /// `APP_ENV` is `local` or `test`, but the listener of `key` is bound to `addr`, which is
    /// not loopback: development credentials are refused (the other production checks do not
    /// apply).
    PublicListener { key: &'static str, addr: String },
    /// Any other environment: every production check.
    Production { app_env: String },
}

impl Exposure {
    /// Whether the development key and secret, the test keys and secrets and
    /// `auth.dev_tokens` are refused.
    pub fn refuses_development_credentials(&self) -> bool {
        !matches!(self, Self::Development)
    }

    /// Why, for a message: `refused under production checks (APP_ENV=staging)`.
    fn refused(&self) -> String {
        match self {
            Self::Development => "allowed in development".to_owned(),
            Self::PublicListener { key, addr } => {
                format!("refused while {key} ({addr}) is not a loopback address")
            }
            Self::Production { app_env } => {
                format!("refused under production checks (APP_ENV={app_env})")
            }
        }
    }
}

impl Settings {
    /// Whether the production checks apply: see [`is_production`].
    pub fn production_checks(&self) -> bool {
        is_production(&self.app_env)
    }

    /// Whether development credentials are allowed here, and if not why: the one rule.
    pub fn exposure(&self) -> Exposure {
        if self.production_checks() {
            return Exposure::Production {
                app_env: self.app_env.clone(),
            };
        }
        let server = &self.server;
        for (key, addr) in [
            ("server.user_addr", &server.user_addr),
            ("server.management_addr", &server.management_addr),
        ] {
            if !is_loopback_listener(addr) {
                return Exposure::PublicListener {
                    key,
                    addr: addr.trim().to_owned(),
                };
            }
        }
        Exposure::Development
    }
}

/// Whether a listen address (`HOST:PORT`) only accepts connections from this host: a
/// loopback IP address (`127.0.0.0/8`, `::1`) or `localhost`. `0.0.0.0`, `::` and any other
/// host name are not.
pub fn is_loopback_listener(addr: &str) -> bool {
    let addr = addr.trim();
    if let Ok(socket) = addr.parse::<SocketAddr>() {
        return socket.ip().to_canonical().is_loopback();
    }
    addr.rsplit_once(':')
        .is_some_and(|(host, _)| is_loopback_host(host))
}

/// Whether a host (name or IP address, IPv6 with or without brackets) is this machine's
/// loopback.
pub(super) fn is_loopback_host(host: &str) -> bool {
    let host = host.trim().trim_start_matches('[').trim_end_matches(']');
    if host.eq_ignore_ascii_case("localhost") {
        return true;
    }
    host.parse::<IpAddr>()
        .is_ok_and(|ip| ip.to_canonical().is_loopback())
}

/// The public keys committed for the tests (`crates/*/tests/keys`), by [`key_fingerprint`]:
/// anyone can sign tokens for them, so they are refused wherever development credentials are.
/// `committed_test_keys_and_secrets_are_all_refused` fails when a key is committed that is not
/// listed here.
pub const TEST_PUBLIC_KEYS: [(&str, &str); 2] = [
    (
        "crates/api-user/tests/keys/es256-public.pem",
        "ffd99c47ffcb54a299ee937f9d97e021534d283a76e1feb47f02945dec116585",
    ),
    (
        "crates/api-user/tests/keys/rs256-public.pem",
        "8dccd73ab7b13629fbb8b36a1d3c9bb42a9fb51aecc82c0a27f675738881873a",
    ),
];

/// The secrets committed in the tests (HS256 user token secrets, Irdeto API keys): public
/// knowledge, refused as `auth.user_tokens.secret` or `irdeto.api_key` wherever development
/// credentials are. The same test keeps the list complete.
pub const TEST_SECRETS: [&str; 16] = [
    "a-real-secret-from-the-vault-0123456789",
    DEV_TOKEN_SECRET,
    "0123456789abcdef0123456789abcdef",
    "key-rotation-test-static-secret-0123456789",
    "a-test-secret-of-at-least-32-bytes!!",
    "another-secret-nobody-configured-0123456789",
    "another-secret-that-is-long-enough-0123456789",
    "not-the-service-secret-but-long-enough-0123456789",
    "routing-test-secret-of-32-bytes-or-more",
    "bench-irdeto-key",
    "irdeto-test-key",
    "test-irdeto-key",
    // the webhook signing secret of the licenses-webhooks examples and tests
    "whsec_C2FVsBQIhrscChlQIMV+b5sSYspob7oD",
    "C2FVsBQIhrscChlQIMV+b5sSYspob7oD",
    "whsec_C2FVsBQIhrscChlQIMV+b5sSYspob7o",
    // the secret of the webhook endpoints of crates/store/tests/webhooks.rs and of the OpenAPI
    // document's example
    "whsec_MfKQ9r8GKYqrTwjUPD8ILPZIo2LaLaSw",
];

/// The fingerprint of a PEM public key as [`TEST_PUBLIC_KEYS`] lists it: the hex SHA-256 of
/// the base64 body of its first `-----BEGIN …-----` block, whitespace removed (so line
/// lengths and `\r\n` do not matter). `None` when `pem` holds no such block.
pub fn key_fingerprint(pem: &str) -> Option<String> {
    let start = pem.find("-----BEGIN ")?;
    let rest = &pem[start..];
    let header_end = rest[11..].find("-----")? + 16;
    let body = &rest[header_end..];
    let end = body.find("-----END ")?;
    // A PEM given in an environment variable may carry literal `\n`s (never base64).
    let compact: String = body[..end]
        .replace("\\n", "")
        .chars()
        .filter(|c| !c.is_whitespace())
        .collect();
    Some(sha256_hex(&compact))
}

/// Whether `pem` is one of the public keys committed for the tests ([`TEST_PUBLIC_KEYS`]).
pub fn is_test_key(pem: &str) -> bool {
    key_fingerprint(pem).is_some_and(|f| TEST_PUBLIC_KEYS.iter().any(|(_, known)| *known == f))
}

/// Whether `secret` is one of the secrets committed for the tests ([`TEST_SECRETS`]).
pub fn is_test_secret(secret: &str) -> bool {
    TEST_SECRETS.contains(&secret)
}

/// What `serve` needs of `auth.*`: verification material for user tokens; under production
/// checks at least one management key; and wherever development credentials are refused
/// ([`Exposure::refuses_development_credentials`]) neither the development key and secret
/// nor a key or secret committed for the tests, and `auth.dev_tokens` off.
pub(super) fn check_credentials_for_serving(settings: &Settings, problems: &mut Vec<Problem>) {
    let exposure = settings.exposure();
    let production = settings.production_checks();
    let refuse = exposure.refuses_development_credentials();
    let auth = &settings.auth;
    if production && auth.management_keys.is_empty() {
        problems.push(Problem::new(
            "auth.management_keys",
            "is not set: production needs at least one management key (NAME:SHA256)",
        ));
    }
    let dev_hash = sha256_hex(DEV_MANAGEMENT_KEY);
    if refuse
        && let Some(key) = auth
            .management_keys
            .iter()
            .find(|k| k.sha256.eq_ignore_ascii_case(&dev_hash))
    {
        problems.push(Problem::new(
            "auth.management_keys",
            format!(
                "key {:?} is the public development key, {}",
                key.name,
                exposure.refused()
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
            Some(secret) if refuse && secret.expose_secret() == DEV_TOKEN_SECRET => {
                problems.push(Problem::new(
                    "auth.user_tokens.secret",
                    format!("is the public development secret, {}", exposure.refused()),
                ));
            }
            Some(secret) if refuse && is_test_secret(secret.expose_secret()) => {
                problems.push(Problem::new(
                    "auth.user_tokens.secret",
                    format!(
                        "is a secret committed for the tests, {}",
                        exposure.refused()
                    ),
                ));
            }
            Some(_) => {}
        },
        algorithm @ (TokenAlgorithm::Rs256 | TokenAlgorithm::Es256) => match &tokens.public_key_pem
        {
            None => problems.push(Problem::new(
                "auth.user_tokens.public_key_pem",
                format!("is not set: {algorithm} user tokens need it"),
            )),
            Some(pem) if refuse && is_test_key(pem) => problems.push(Problem::new(
                "auth.user_tokens.public_key_pem",
                format!("is a key committed for the tests, {}", exposure.refused()),
            )),
            Some(_) => {}
        },
    }
    if refuse && auth.dev_tokens {
        problems.push(Problem::new(
            "auth.dev_tokens",
            format!(
                "must be false: development tokens are {}",
                exposure.refused()
            ),
        ));
    }
    if refuse
        && let Some(key) = &settings.irdeto.api_key
        && is_test_secret(key.expose_secret())
    {
        problems.push(Problem::new(
            "irdeto.api_key",
            format!("is a key committed for the tests, {}", exposure.refused()),
        ));
    }
    if refuse
        && let Some(key) = tokens.keys.iter().find(|k| {
            k.secret.as_ref().is_some_and(|s| {
                s.expose_secret() == DEV_TOKEN_SECRET || is_test_secret(s.expose_secret())
            }) || k.public_key_pem.as_deref().is_some_and(is_test_key)
        })
    {
        problems.push(Problem::new(
            "auth.user_tokens.keys",
            format!(
                "key {:?} is a development or test key, {}",
                key.kid,
                exposure.refused()
            ),
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
        && !url.host_str().is_some_and(is_loopback_host)
    {
        problems.push(Problem::new(
            "auth.user_tokens.jwks_url",
            "is http:// to a host that is not loopback: production fetches keys over https://",
        ));
    }
}

/// The values of `sslmode` that make libpq use TLS (`require` encrypts; `verify-ca` also
/// checks the server's certificate against `sslrootcert`; `verify-full` also its host name).
pub const TLS_SSLMODES: [&str; 3] = ["require", "verify-ca", "verify-full"];

/// Under production checks, what the transport to the database and to Irdeto needs: TLS to a
/// PostgreSQL server that is not on loopback (`sslmode=require|verify-ca|verify-full` in
/// `database.url`, unless `database.allow_plaintext`), and `https://` to an Irdeto host that
/// is not on loopback. Every command that opens the store checks the first; `serve` both.
pub(super) fn check_transport(settings: &Settings, problems: &mut Vec<Problem>) {
    if !settings.production_checks() {
        return;
    }
    let exposure = settings.exposure();
    let database = &settings.database;
    // database.url, the listener's own URL and every replica: one rule for each.
    let urls = std::iter::once(("database.url", String::new(), database.url.as_str()))
        .chain(
            database
                .listen_url
                .as_deref()
                .map(|url| ("database.listen_url", String::new(), url)),
        )
        .chain(database.replicas.iter().enumerate().map(|(i, url)| {
            (
                "database.replicas",
                format!("replica {}: ", i + 1),
                url.as_str(),
            )
        }));
    for (key, which, url) in urls {
        if !database.allow_plaintext
            && let Some(host) = plaintext_database_host(url)
        {
            problems.push(Problem::new(
                key,
                format!(
                    "{which}reaches {host} without TLS, {}: add sslmode=verify-full (with \
                     sslrootcert=CA FILE) or sslmode=require to the URL, or set \
                     database.allow_plaintext = true",
                    exposure.refused()
                ),
            ));
        }
    }
    let irdeto = &settings.irdeto;
    if irdeto.enabled
        && let Some(url) = irdeto.base_url.as_deref()
        && let Ok(parsed) = url::Url::parse(url)
        && parsed.scheme() == "http"
        && let Some(host) = parsed.host_str()
        && !is_loopback_host(host)
    {
        problems.push(Problem::new(
            "irdeto.base_url",
            format!("is http:// to {host}, {}: use https://", exposure.refused()),
        ));
    }
}

/// The host a PostgreSQL `url` reaches in plain text: `None` for SQLite, for a URL whose
/// `sslmode` is one of [`TLS_SSLMODES`], or whose hosts (`hostaddr=` or `host=` parameters
/// override the URL's host, as in libpq) are all loopback or Unix sockets. A URL that does not
/// parse is `database.url`'s own check's to report.
pub fn plaintext_database_host(url: &str) -> Option<String> {
    let url = url.trim();
    if !(url.starts_with("postgres://") || url.starts_with("postgresql://")) {
        return None;
    }
    let parsed = url::Url::parse(url).ok()?;
    let mut sslmode = None;
    let mut host_param = None;
    let mut hostaddr_param = None;
    for (key, value) in parsed.query_pairs() {
        match key.as_ref() {
            "sslmode" => sslmode = Some(value.into_owned()),
            "host" => host_param = Some(value.into_owned()),
            "hostaddr" => hostaddr_param = Some(value.into_owned()),
            _ => {}
        }
    }
    if sslmode.is_some_and(|mode| TLS_SSLMODES.contains(&mode.as_str())) {
        return None;
    }
    let hosts: Vec<String> = match hostaddr_param.or(host_param) {
        Some(list) => list.split(',').map(|h| h.trim().to_owned()).collect(),
        None => parsed.host_str().map(str::to_owned).into_iter().collect(),
    };
    hosts.into_iter().find(|host| {
        // Empty: libpq's default Unix socket; `/…` or `@…`: a Unix socket directory.
        !(host.is_empty()
            || host.starts_with('/')
            || host.starts_with('@')
            || is_loopback_host(host))
    })
}

/// What production refuses of `server.*` (the checks are `ServerSettings`'s own).
pub(super) fn check_server_for_production(settings: &Settings, problems: &mut Vec<Problem>) {
    if settings.production_checks() {
        settings.server.check_for_production(problems);
    }
}

/// Under production checks, the console on a management listener that is not loopback needs
/// a `Secure` cookie: the management public base URL (`server.management.public_base_url`, or
/// `server.public_base_url`) is the `https://` address of the TLS proxy in front. Otherwise
/// the session cookie, and the key typed at sign-in, would cross the network in clear text.
/// Turn the console off (`console.enabled = false`, production.toml's default) where there is
/// no such proxy.
pub(super) fn check_console_for_production(settings: &Settings, problems: &mut Vec<Problem>) {
    let server = &settings.server;
    let https = server
        .management_public_base_url()
        .is_some_and(|base| base.trim().to_ascii_lowercase().starts_with("https://"));
    if settings.production_checks()
        && settings.console.enabled
        && !is_loopback_listener(&server.management_addr)
        && !https
    {
        problems.push(Problem::new(
            "console.enabled",
            format!(
                "the console on server.management_addr ({}) needs HTTPS under production checks \
                 (APP_ENV={}): set server.management.public_base_url (or \
                 server.public_base_url) to the https:// address of the TLS proxy in front, or \
                 set console.enabled = false",
                server.management_addr.trim(),
                settings.app_env
            ),
        ));
    }
}

#[cfg(test)]
mod tests {
    use std::path::{Path, PathBuf};

    use super::*;
    use crate::settings::auth::{DEV_MANAGEMENT_KEY, DEV_TOKEN_SECRET, sha256_hex};
    use crate::settings::load;
    use crate::settings::test_sources::with_vars;

    const TLS_DB: &str = "postgres://db/licenses?sslmode=require";

    fn serve_error(app_env: &str, vars: &[(&str, &str)]) -> String {
        let s = load(&with_vars(app_env, vars)).expect("loads");
        let m = s
            .check_for_serving()
            .expect_err("refused to serve")
            .to_string();
        assert!(!m.contains('\n'), "{m}");
        m
    }

    fn real_credentials() -> Vec<(&'static str, String)> {
        vec![
            ("LICENSES__DATABASE__URL", TLS_DB.to_owned()),
            (
                "LICENSES__AUTH__MANAGEMENT_KEYS",
                format!("bss:{}", sha256_hex("real")),
            ),
            (
                "LICENSES__AUTH__USER_TOKENS__SECRET",
                "a-real-secret-from-the-vault".to_owned(),
            ),
            ("LICENSES__AUTH__DEV_TOKENS", "false".to_owned()),
            ("LICENSES__AUTH__USER_TOKENS__ALGORITHM", "HS256".to_owned()),
            (
                "LICENSES__AUTH__USER_TOKENS__ISSUER",
                "https://id.aminotv.example".to_owned(),
            ),
            (
                "LICENSES__AUTH__USER_TOKENS__AUDIENCE",
                "licenses".to_owned(),
            ),
        ]
    }

    /// `real_credentials` with `extra` after them (later wins).
    fn serving(app_env: &str, extra: &[(&str, &str)]) -> Result<(), String> {
        let mut vars = real_credentials();
        vars.extend(extra.iter().map(|(k, v)| (*k, (*v).to_owned())));
        let vars: Vec<(&str, &str)> = vars.iter().map(|(k, v)| (*k, v.as_str())).collect();
        let s = load(&with_vars(app_env, &vars)).map_err(|e| e.to_string())?;
        s.check_for_serving().map_err(|e| e.to_string())
    }

    #[test]
    fn production_refuses_to_serve_without_real_keys_and_secret() {
        let m = serve_error("production", &[("LICENSES__DATABASE__URL", TLS_DB)]);
        assert!(m.contains("auth.management_keys"), "{m}");
        assert!(m.contains("auth.user_tokens.secret"), "{m}");

        let dev_key = format!("dev:{}", sha256_hex(DEV_MANAGEMENT_KEY));
        let m = serve_error(
            "production",
            &[
                ("LICENSES__DATABASE__URL", TLS_DB),
                ("LICENSES__AUTH__MANAGEMENT_KEYS", &dev_key),
                ("LICENSES__AUTH__USER_TOKENS__SECRET", DEV_TOKEN_SECRET),
                ("LICENSES__AUTH__DEV_TOKENS", "true"),
            ],
        );
        assert!(
            m.contains("auth.management_keys: key \"dev\" is the public development key"),
            "{m}"
        );
        assert!(
            m.contains("auth.user_tokens.secret: is the public development secret"),
            "{m}"
        );
        assert!(m.contains("auth.dev_tokens"), "{m}");
        assert!(m.contains("(APP_ENV=production)"), "{m}");
        assert!(!m.contains(DEV_TOKEN_SECRET), "{m}");

        assert_eq!(
            serving_problems(&real_credentials()),
            "",
            "real material serves"
        );
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
        let base = real_credentials();
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
    fn every_environment_but_local_and_test_gets_the_production_checks() {
        assert!(!is_production("local") && !is_production("test"));
        for env in ["production", "staging", "prod", "qa", "Local", "tset"] {
            assert!(is_production(env), "{env}");
        }
        // `staging` has no file of its own: it loads, and is checked as production.
        let s = load(&with_vars(
            "staging",
            &[("LICENSES__DATABASE__URL", TLS_DB)],
        ))
        .expect("a plain environment name loads without a file");
        assert!(s.production_checks());
        assert_eq!(
            s.exposure(),
            Exposure::Production {
                app_env: "staging".into()
            }
        );
        let m = serve_error("staging", &[("LICENSES__DATABASE__URL", TLS_DB)]);
        assert!(m.contains("auth.management_keys: is not set"), "{m}");
        let m = serve_error(
            "staging",
            &[
                ("LICENSES__DATABASE__URL", TLS_DB),
                ("LICENSES__AUTH__USER_TOKENS__SECRET", DEV_TOKEN_SECRET),
                ("LICENSES__AUTH__DEV_TOKENS", "true"),
            ],
        );
        assert!(
            m.contains(
                "auth.user_tokens.secret: is the public development secret, refused under \
                 production checks (APP_ENV=staging)"
            ),
            "{m}"
        );
        assert!(m.contains("auth.dev_tokens: must be false"), "{m}");
        serving("staging", &[]).expect("real material serves");
    }

    #[test]
    fn a_public_listener_refuses_development_credentials_whatever_the_environment() {
        for (var, key) in [
            ("LICENSES__SERVER__USER_ADDR", "server.user_addr"),
            (
                "LICENSES__SERVER__MANAGEMENT_ADDR",
                "server.management_addr",
            ),
        ] {
            for env in ["local", "test"] {
                let m = serve_error(env, &[(var, "0.0.0.0:8080")]);
                let why = format!("refused while {key} (0.0.0.0:8080) is not a loopback address");
                assert!(
                    m.contains(&format!(
                        "auth.management_keys: key \"dev\" is the public development key, {why}"
                    )),
                    "{m}"
                );
                assert!(
                    m.contains(&format!(
                        "auth.user_tokens.secret: is the public development secret, {why}"
                    )),
                    "{m}"
                );
                assert!(m.contains("auth.dev_tokens: must be false"), "{m}");
                // The other production checks do not apply: no key is required, nor TLS.
                serving(
                    env,
                    &[
                        (var, "0.0.0.0:8080"),
                        ("LICENSES__DATABASE__URL", "postgres://db.example/x"),
                    ],
                )
                .expect("real credentials serve on a public listener");
            }
        }
        // Loopback listeners keep the development credentials.
        for addr in ["127.0.0.1:0", "localhost:8080", "[::1]:8080", "127.0.0.2:9"] {
            let s = load(&with_vars(
                "local",
                &[
                    ("LICENSES__SERVER__USER_ADDR", addr),
                    ("LICENSES__SERVER__MANAGEMENT_ADDR", addr),
                ],
            ))
            .expect("loads");
            assert_eq!(s.exposure(), Exposure::Development, "{addr}");
            s.check_for_serving()
                .expect("development serves on loopback");
        }
    }

    #[test]
    fn loopback_listeners_are_told_from_public_ones() {
        for addr in [
            "127.0.0.1:8080",
            "127.1.2.3:1",
            "[::1]:8080",
            "[::ffff:127.0.0.1]:80",
            "localhost:8080",
            "LOCALHOST:1",
        ] {
            assert!(is_loopback_listener(addr), "{addr}");
        }
        for addr in [
            "0.0.0.0:8080",
            "[::]:8080",
            "10.0.0.5:8080",
            "192.168.1.1:80",
            "api.example.com:443",
            "localhost.example.com:1",
            "nonsense",
        ] {
            assert!(!is_loopback_listener(addr), "{addr}");
        }
    }

    #[test]
    fn keys_and_secrets_committed_for_the_tests_are_refused() {
        let es256 = include_str!("../../crates/api-user/tests/keys/es256-public.pem");
        let rs256 = include_str!("../../crates/api-user/tests/keys/rs256-public.pem");
        assert!(is_test_key(es256) && is_test_key(rs256));
        // Another layout of the same key is the same key.
        assert!(is_test_key(&es256.replace('\n', "\r\n")));
        assert!(is_test_key(&es256.replace('\n', "\\n")));
        for (algorithm, pem) in [("ES256", es256), ("RS256", rs256)] {
            for app_env in ["production", "local"] {
                let m = match serving(
                    app_env,
                    &[
                        ("LICENSES__SERVER__USER_ADDR", "0.0.0.0:8080"),
                        ("LICENSES__AUTH__USER_TOKENS__ALGORITHM", algorithm),
                        ("LICENSES__AUTH__USER_TOKENS__PUBLIC_KEY_PEM", pem),
                    ],
                ) {
                    Err(m) => m,
                    Ok(()) => panic!("{algorithm} test key served under {app_env}"),
                };
                assert!(
                    m.contains("auth.user_tokens.public_key_pem: is a key committed for the tests"),
                    "{m}"
                );
            }
        }
        for secret in TEST_SECRETS.iter().filter(|s| s.len() >= 32) {
            let m = serving(
                "production",
                &[("LICENSES__AUTH__USER_TOKENS__SECRET", secret)],
            )
            .expect_err("a test secret");
            assert!(m.contains("auth.user_tokens.secret: is"), "{m}");
            assert!(!m.contains(secret), "the secret is never shown: {m}");
        }
        let m = serving(
            "production",
            &[
                ("LICENSES__IRDETO__ENABLED", "true"),
                ("LICENSES__IRDETO__BASE_URL", "https://irdeto.example"),
                ("LICENSES__IRDETO__API_KEY", "irdeto-test-key"),
            ],
        )
        .expect_err("a test Irdeto key");
        assert!(
            m.contains("irdeto.api_key: is a key committed for the tests"),
            "{m}"
        );
        assert!(!m.contains("irdeto-test-key"), "{m}");
    }

    /// The repository's files that hold test material: everything under a `tests` directory,
    /// the test kit, the benchmarks, and every `.rs` file (unit tests live beside the code).
    fn repository_files() -> Vec<(PathBuf, String)> {
        fn walk(dir: &Path, out: &mut Vec<PathBuf>) {
            let Ok(entries) = std::fs::read_dir(dir) else {
                return;
            };
            for entry in entries.flatten() {
                let path = entry.path();
                let name = entry.file_name().to_string_lossy().into_owned();
                if path.is_dir() {
                    if !(name.starts_with('.') || name == "target" || name.starts_with("target-")) {
                        walk(&path, out);
                    }
                } else {
                    out.push(path);
                }
            }
        }
        let root = Path::new(env!("CARGO_MANIFEST_DIR"));
        let mut paths = Vec::new();
        walk(root, &mut paths);
        paths
            .into_iter()
            .filter_map(|path| {
                let text = std::fs::read_to_string(&path).ok()?;
                let relative = path.strip_prefix(root).ok()?.to_path_buf();
                Some((relative, text))
            })
            .collect()
    }

    fn is_test_material(path: &Path) -> bool {
        let shown = path.to_string_lossy();
        shown.starts_with("tests/")
            || shown.contains("/tests/")
            || shown.starts_with("crates/testkit/")
            || shown.starts_with("benches/")
            || shown.starts_with("bench/")
            || path.extension().is_some_and(|e| e == "pem" || e == "key")
    }

    /// The PEM blocks of `text`: (the label, as in `PUBLIC KEY`, and the whole block).
    fn pem_blocks(text: &str) -> Vec<(String, String)> {
        let mut blocks = Vec::new();
        let mut rest = text;
        while let Some(start) = rest.find("-----BEGIN ") {
            let block = &rest[start..];
            let Some(label_end) = block[11..].find("-----") else {
                break;
            };
            let label = block[11..11 + label_end].to_owned();
            let end_marker = format!("-----END {label}-----");
            let Some(end) = block.find(&end_marker) else {
                rest = &block[11..];
                continue;
            };
            blocks.push((label, block[..end + end_marker.len()].to_owned()));
            rest = &block[end + end_marker.len()..];
        }
        blocks
    }

    /// Whether the private key `private_pem` signs what `public_pem` verifies.
    fn halves_of_one_key(private_pem: &str, public_pem: &str) -> bool {
        use jsonwebtoken::{Algorithm, DecodingKey, EncodingKey, Header, Validation};
        let claims = serde_json::json!({ "sub": "scan", "exp": 4_102_444_800_u64 });
        let pairs = [
            (
                Algorithm::ES256,
                EncodingKey::from_ec_pem(private_pem.as_bytes()).ok(),
                DecodingKey::from_ec_pem(public_pem.as_bytes()).ok(),
            ),
            (
                Algorithm::RS256,
                EncodingKey::from_rsa_pem(private_pem.as_bytes()).ok(),
                DecodingKey::from_rsa_pem(public_pem.as_bytes()).ok(),
            ),
        ];
        pairs.into_iter().any(|(algorithm, signing, verifying)| {
            let (Some(signing), Some(verifying)) = (signing, verifying) else {
                return false;
            };
            jsonwebtoken::encode(&Header::new(algorithm), &claims, &signing)
                .ok()
                .is_some_and(|token| {
                    jsonwebtoken::decode::<serde_json::Value>(
                        &token,
                        &verifying,
                        &Validation::new(algorithm),
                    )
                    .is_ok()
                })
        })
    }

    /// The list of refused test material cannot go stale: every public key committed in test
    /// material is in [`TEST_PUBLIC_KEYS`]; every private key has its public half there; every
    /// long secret on a line about secrets, and every Irdeto test key, is in [`TEST_SECRETS`].
    #[test]
    fn committed_test_keys_and_secrets_are_all_refused() {
        let files = repository_files();
        assert!(
            files
                .iter()
                .any(|(p, _)| p.ends_with("crates/api-user/tests/keys/es256-public.pem")),
            "the scan sees the repository"
        );
        let mut public = Vec::new();
        let mut private = Vec::new();
        for (path, text) in files.iter().filter(|(p, _)| is_test_material(p)) {
            for (label, block) in pem_blocks(text) {
                if label.contains("PRIVATE KEY") {
                    private.push((path.clone(), block));
                } else if label.contains("PUBLIC KEY") {
                    assert!(
                        is_test_key(&block),
                        "{}: a public key committed for the tests that production.rs does not \
                         refuse: add (path, \"{}\") to TEST_PUBLIC_KEYS",
                        path.display(),
                        key_fingerprint(&block).unwrap_or_default()
                    );
                    public.push(block);
                }
            }
        }
        assert!(
            public.len() >= 2 && private.len() >= 2,
            "the scan finds the keys"
        );
        for (path, block) in &private {
            assert!(
                public
                    .iter()
                    .any(|p| is_test_key(p) && halves_of_one_key(block, p)),
                "{}: a private key committed for the tests whose public half is not in \
                 TEST_PUBLIC_KEYS: commit its public half beside it",
                path.display()
            );
        }

        let literals = |line: &str| -> Vec<String> {
            line.split('"')
                .skip(1)
                .step_by(2)
                // `\"` inside a literal (a TOML document in a test): the secret ends at it
                .map(|l| l.trim_end_matches('\\').to_owned())
                .collect()
        };
        let mut found = Vec::new();
        for (path, text) in files.iter().filter(|(p, _)| {
            p.extension().is_some_and(|e| e == "rs") && !p.ends_with("src/settings/production.rs")
        }) {
            for line in text.lines() {
                let lower = line.to_ascii_lowercase();
                for literal in literals(line) {
                    let secret_like = lower.contains("secret")
                        && literal.len() >= 32
                        && !literal.contains(char::is_whitespace)
                        && !literal.contains("__")
                        // a URL or query string about secrets (the redaction tests), not one
                        && !literal.contains(['/', '?', '&']);
                    let irdeto_key = path.to_string_lossy().contains("irdeto")
                        && is_test_material(path)
                        && line.trim_start().starts_with("const KEY: &str");
                    if secret_like || irdeto_key {
                        found.push(literal.clone());
                        assert!(
                            is_test_secret(&literal),
                            "{}: {literal:?} looks like a secret committed for the tests: add it \
                             to TEST_SECRETS",
                            path.display()
                        );
                    }
                }
            }
        }
        for secret in TEST_SECRETS {
            assert!(
                found.iter().any(|f| f == secret),
                "{secret:?} is no longer in the repository: remove it from TEST_SECRETS"
            );
        }
    }

    #[test]
    fn the_database_needs_tls_beyond_loopback_under_production_checks() {
        for url in [
            "postgres://u:pw@db.internal:5432/licenses",
            "postgresql://db.internal/licenses?sslmode=prefer",
            "postgres://10.0.0.3/licenses?sslmode=disable",
            "postgres://localhost/x?host=db.internal",
            "postgres://localhost/x?hostaddr=10.1.1.1",
            "postgres:///x?host=/var/run/postgresql,db.internal",
        ] {
            assert!(plaintext_database_host(url).is_some(), "{url}");
        }
        for url in [
            "postgres://u:pw@db.internal:5432/licenses?sslmode=require",
            "postgres://db.internal/licenses?sslmode=verify-ca&sslrootcert=/ca.pem",
            "postgres://db.internal/licenses?sslmode=disable&sslmode=verify-full",
            "postgres://127.0.0.1/x",
            "postgres://localhost:5432/x?sslmode=disable",
            "postgres://[::1]/x",
            "postgres:///x",
            "postgres:///x?host=/var/run/postgresql",
            "sqlite://data/licenses.db",
        ] {
            assert_eq!(plaintext_database_host(url), None, "{url}");
        }

        let plaintext = "postgres://app:hunter2@db.internal:5432/licenses";
        let m = serving("production", &[("LICENSES__DATABASE__URL", plaintext)])
            .expect_err("plaintext to another host");
        assert!(
            m.starts_with(
                "database.url: reaches db.internal without TLS, refused under production checks"
            ),
            "{m}"
        );
        assert!(m.contains("database.allow_plaintext"), "{m}");
        assert!(!m.contains("hunter2") && !m.contains('\n'), "{m}");
        serving(
            "production",
            &[
                ("LICENSES__DATABASE__URL", plaintext),
                ("LICENSES__DATABASE__ALLOW_PLAINTEXT", "true"),
            ],
        )
        .expect("explicitly allowed");
        serving(
            "staging",
            &[(
                "LICENSES__DATABASE__URL",
                "postgres://app:hunter2@db.internal/licenses?sslmode=verify-full",
            )],
        )
        .expect("TLS");
        serving("local", &[("LICENSES__DATABASE__URL", plaintext)])
            .expect("no production checks in local");
    }

    #[test]
    fn irdeto_over_http_beyond_loopback_is_refused_under_production_checks() {
        let irdeto = |url: &'static str| {
            [
                ("LICENSES__IRDETO__ENABLED", "true"),
                ("LICENSES__IRDETO__BASE_URL", url),
                ("LICENSES__IRDETO__API_KEY", "a-real-irdeto-key"),
            ]
        };
        let m =
            serving("production", &irdeto("http://irdeto.example/api")).expect_err("plain http");
        assert!(
            m.starts_with(
                "irdeto.base_url: is http:// to irdeto.example, refused under production checks"
            ),
            "{m}"
        );
        serving("production", &irdeto("https://irdeto.example/api")).expect("https");
        serving("production", &irdeto("http://127.0.0.1:9000")).expect("loopback stand-in");
        serving("local", &irdeto("http://irdeto.example/api")).expect("no production checks");
    }

    #[test]
    fn a_public_console_needs_https_under_production_checks() {
        let on = [
            ("LICENSES__CONSOLE__ENABLED", "true"),
            ("LICENSES__SERVER__MANAGEMENT_ADDR", "0.0.0.0:8081"),
        ];
        let m = serving("production", &on).expect_err("refused");
        assert!(
            m.starts_with(
                "console.enabled: the console on server.management_addr (0.0.0.0:8081) \
                 needs HTTPS"
            ),
            "{m}"
        );
        // production.toml turns it off.
        serving("production", &[]).expect("off by default in production");
        // Behind a TLS proxy, or on loopback, it may be on.
        let mut https = on.to_vec();
        https.push((
            "LICENSES__SERVER__MANAGEMENT__PUBLIC_BASE_URL",
            "https://licenses-admin.example.com",
        ));
        serving("production", &https).expect("https");
        let mut http = on.to_vec();
        http.push((
            "LICENSES__SERVER__PUBLIC_BASE_URL",
            "http://licenses.example.com",
        ));
        assert!(serving("production", &http).is_err());
        serving(
            "production",
            &[
                ("LICENSES__CONSOLE__ENABLED", "true"),
                ("LICENSES__SERVER__MANAGEMENT_ADDR", "127.0.0.1:8081"),
            ],
        )
        .expect("loopback");
    }
}
