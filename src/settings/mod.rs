//! The typed configuration of the service, and how it is loaded.
//!
//! Layers, later wins (docs in README.md, "Configuration"):
//! 1. `default.toml` in the configuration directory (`./config`, or `$LICENSES_CONFIG_DIR`);
//! 2. `$APP_ENV.toml` beside it (`APP_ENV` defaults to `local`);
//! 3. the file given with `--config FILE`;
//! 4. environment variables `LICENSES__SECTION__KEY`, e.g. `LICENSES__DATABASE__URL`.
//!
//! [`load`] never reads the process environment itself: [`ConfigSources::from_process`] does,
//! so that tests can load settings without touching (or being disturbed by) the environment.
//! Secrets are [`SecretString`](secrecy::SecretString)s: they never appear in `Debug` output
//! or logs.
//!
//! The map, one module per section of the configuration (each with its types and the checks of
//! its values, called by [`Settings::validate`]):
//! - this module: [`Settings`], [`ConfigSources`], [`load`], [`SettingsError`] and [`Problem`],
//!   the environment variables' names; every other public name is re-exported here;
//! - `database`: `[database]`, the database URL check and [`redacted_url`];
//! - `server`: `[server]`, the listen address and CORS origin checks;
//! - `auth`: `[auth]`, management keys, user token settings, the development key and secret;
//! - `irdeto`: `[irdeto]`, and the endpoint an enabled integration needs to serve;
//! - `catalogue`: `[catalogue]`, the freshness of the catalogue in memory;
//! - `log`: `[log]`, the log format;
//! - `limits`: `[limits]`, the rate limits;
//! - `console`: `[console]`, the support console and its sessions;
//! - `events`: `[events]`, the feed's retention and the expiry scheduler;
//! - `production`: what production is ([`is_production`], [`Settings::exposure`]: the one
//!   rule) and every check that depends on it: the credentials `serve` needs
//!   ([`Settings::check_for_serving`]), the keys and secrets committed for the tests, and TLS
//!   to the database and to Irdeto ([`Settings::check_transport`]);
//! - `comma_separated`: the serde helper for keys given as a list or one comma-separated string.

mod auth;
mod catalogue;
mod comma_separated;
mod console;
mod database;
mod events;
mod irdeto;
mod limits;
mod log;
mod production;
mod server;
#[cfg(test)]
mod test_sources;

use std::collections::HashMap;
use std::path::PathBuf;

use config::{Config, Environment, File, FileFormat};
use serde::Deserialize;

pub use auth::{
    AuthSettings, DEV_MANAGEMENT_KEY, DEV_TOKEN_SECRET, ManagementKey, StaticTokenKey,
    TokenAlgorithm, UserTokenSettings, sha256_hex,
};
pub use catalogue::CatalogueSettings;
pub use console::ConsoleSettings;
pub use database::{DatabaseSettings, redacted_url};
pub use events::{EventsSettings, NatsSettings, WebhookSettings};
pub use irdeto::IrdetoSettings;
pub use limits::LimitsSettings;
pub use log::{LogFormat, LogSettings};
pub use production::{
    DEVELOPMENT_ENVIRONMENTS, Exposure, TLS_SSLMODES, is_loopback_listener, is_production,
    is_test_key, is_test_secret, key_fingerprint, plaintext_database_host,
};
pub use server::{ApiServerSettings, ServerSettings};

/// The environment variable naming the environment.
pub const APP_ENV_VAR: &str = "APP_ENV";

/// The environment variable naming the configuration directory (default `./config`).
pub const CONFIG_DIR_VAR: &str = "LICENSES_CONFIG_DIR";

/// The prefix of the environment variables that override keys (`LICENSES__DATABASE__URL`).
pub const ENV_PREFIX: &str = "LICENSES";

/// The separator between the prefix, the section and the key in those variables.
pub const ENV_SEPARATOR: &str = "__";

/// Everything the service reads from its configuration.
#[derive(Debug, Clone, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct Settings {
    /// The environment the settings were loaded for (`APP_ENV`); not a configuration key.
    #[serde(skip, default = "default_app_env")]
    pub app_env: String,
    pub database: DatabaseSettings,
    pub server: ServerSettings,
    pub auth: AuthSettings,
    pub irdeto: IrdetoSettings,
    pub catalogue: CatalogueSettings,
    pub log: LogSettings,
    pub limits: LimitsSettings,
    /// `[console]`; all defaults when the section is left out.
    #[serde(default)]
    pub console: ConsoleSettings,
    /// `[events]`; all defaults when the section is left out.
    #[serde(default)]
    pub events: EventsSettings,
}

fn default_app_env() -> String {
    "local".to_owned()
}

/// Where the layers come from.
#[derive(Debug, Clone)]
pub struct ConfigSources {
    /// The directory holding `default.toml` and `$APP_ENV.toml`.
    pub dir: PathBuf,
    /// The environment: `local`, `test`, `production`, or any other plain name (letters,
    /// digits, `-`, `_`), with or without a file in `dir`; all but `local` and `test` get the
    /// production checks.
    pub app_env: String,
    /// The file given with `--config`.
    pub file: Option<PathBuf>,
    /// The `LICENSES__…` variables that override keys, by name.
    pub variables: HashMap<String, String>,
}

impl ConfigSources {
    /// The sources an operator set up: `APP_ENV`, `LICENSES_CONFIG_DIR` and the
    /// `LICENSES__…` variables of the process environment, and the `--config` file.
    pub fn from_process(file: Option<PathBuf>) -> Self {
        let var = |name: &str| std::env::var(name).ok().filter(|v| !v.trim().is_empty());
        let prefix = format!("{ENV_PREFIX}{ENV_SEPARATOR}");
        Self {
            dir: var(CONFIG_DIR_VAR).map_or_else(|| PathBuf::from("config"), PathBuf::from),
            app_env: var(APP_ENV_VAR).unwrap_or_else(default_app_env),
            file,
            variables: std::env::vars()
                .filter(|(name, _)| name.starts_with(&prefix))
                .collect(),
        }
    }

    /// The files of a given environment in `dir`, with no override.
    pub fn for_environment(dir: impl Into<PathBuf>, app_env: &str) -> Self {
        Self {
            dir: dir.into(),
            app_env: app_env.to_owned(),
            file: None,
            variables: HashMap::new(),
        }
    }
}

/// Why the configuration cannot be used. Every message is one line naming the key, the
/// variable or the file at fault, and never shows a secret.
#[derive(Debug, thiserror::Error)]
pub enum SettingsError {
    #[error(
        "{APP_ENV_VAR}={app_env:?} is not an environment name: use letters, digits, - and _ \
         (local, test, production, or any other name, which gets the production checks)"
    )]
    UnknownEnvironment { app_env: String },
    #[error(
        "no configuration found: {path} does not exist (run from the directory that holds \
         config/, or set {CONFIG_DIR_VAR} to the directory holding default.toml)"
    )]
    NoConfigDirectory { path: String },
    #[error("--config {path}: no such file")]
    NoConfigFile { path: String },
    #[error("configuration: {0}")]
    Load(String),
    #[error("{}", join_problems(.0))]
    Invalid(Vec<Problem>),
}

/// One key with a value that cannot be used, and why.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Problem {
    pub key: &'static str,
    pub message: String,
}

impl Problem {
    fn new(key: &'static str, message: impl Into<String>) -> Self {
        Self {
            key,
            message: message.into(),
        }
    }
}

fn join_problems(problems: &[Problem]) -> String {
    problems
        .iter()
        .map(|p| format!("{}: {}", p.key, p.message))
        .collect::<Vec<_>>()
        .join("; ")
}

/// Loads, layers and checks the settings (the checks every command needs; `serve` adds
/// [`Settings::check_for_serving`]).
pub fn load(sources: &ConfigSources) -> Result<Settings, SettingsError> {
    let default_file = sources.dir.join("default.toml");
    if !default_file.is_file() {
        return Err(SettingsError::NoConfigDirectory {
            path: default_file.display().to_string(),
        });
    }
    let app_env = sources.app_env.trim();
    let env_file = sources.dir.join(format!("{app_env}.toml"));
    let plain_name = !app_env.is_empty()
        && app_env
            .chars()
            .all(|c| c.is_ascii_alphanumeric() || c == '-' || c == '_');
    // Any plain name is an environment, with or without a file: all but `local` and `test`
    // get the production checks, so a misspelt name fails closed.
    if !plain_name {
        return Err(SettingsError::UnknownEnvironment {
            app_env: app_env.to_owned(),
        });
    }
    let mut builder = Config::builder()
        .add_source(File::from(default_file.as_path()).format(FileFormat::Toml))
        .add_source(
            File::from(env_file.as_path())
                .format(FileFormat::Toml)
                .required(false),
        );
    if let Some(file) = &sources.file {
        if !file.is_file() {
            return Err(SettingsError::NoConfigFile {
                path: file.display().to_string(),
            });
        }
        builder = builder.add_source(File::from(file.as_path()).format(FileFormat::Toml));
    }
    let config = builder
        .add_source(
            Environment::with_prefix(ENV_PREFIX)
                .prefix_separator(ENV_SEPARATOR)
                .separator(ENV_SEPARATOR)
                .ignore_empty(true)
                .source(Some(sources.variables.clone().into_iter().collect())),
        )
        .build()
        .map_err(|e| SettingsError::Load(one_line(&e.to_string())))?;
    let mut settings: Settings = config
        .try_deserialize()
        .map_err(|e| SettingsError::Load(one_line(&e.to_string())))?;
    settings.app_env = app_env.to_owned();
    settings.validate()?;
    Ok(settings)
}

impl Settings {
    /// Checks the values that are set: URLs parse, addresses are `HOST:PORT`, sizes are
    /// positive, key hashes are hex. Every problem is reported, section by section in the
    /// order of the keys.
    pub fn validate(&self) -> Result<(), SettingsError> {
        let mut problems = Vec::new();
        self.database.validate(&mut problems);
        self.server.validate(&mut problems);
        self.auth.validate(&mut problems);
        self.irdeto.validate(&mut problems);
        self.catalogue.validate(&mut problems);
        self.limits.validate(&mut problems);
        self.console.validate(&mut problems);
        self.events.validate(&mut problems);
        into_result(problems)
    }

    /// What `serve` needs on top of [`Settings::validate`]: verification material for user
    /// tokens, the Irdeto endpoint when enabled, wherever development credentials are refused
    /// ([`Settings::exposure`]) real management keys and secret (not the development ones,
    /// nor those committed for the tests) and `auth.dev_tokens` off, and under production
    /// checks TLS to the database and to Irdeto ([`Settings::check_transport`]).
    pub fn check_for_serving(&self) -> Result<(), SettingsError> {
        let mut problems = Vec::new();
        production::check_credentials_for_serving(self, &mut problems);
        production::check_server_for_production(self, &mut problems);
        production::check_console_for_production(self, &mut problems);
        self.irdeto.check_for_serving(&mut problems);
        production::check_transport(self, &mut problems);
        into_result(problems)
    }

    /// Under production checks, TLS to a database (and to Irdeto, when enabled) that is not on
    /// loopback: what every command that opens the store checks first.
    pub fn check_transport(&self) -> Result<(), SettingsError> {
        let mut problems = Vec::new();
        production::check_transport(self, &mut problems);
        into_result(problems)
    }
}

fn into_result(problems: Vec<Problem>) -> Result<(), SettingsError> {
    if problems.is_empty() {
        Ok(())
    } else {
        Err(SettingsError::Invalid(problems))
    }
}

fn one_line(message: &str) -> String {
    message.split_whitespace().collect::<Vec<_>>().join(" ")
}

#[cfg(test)]
mod tests {
    use secrecy::ExposeSecret;

    use super::test_sources::{message, sources, with_vars};
    use super::*;

    #[test]
    fn local_defaults_are_the_documented_ones() {
        let s = load(&sources("local")).expect("local settings load");
        assert_eq!(s.app_env, "local");
        assert_eq!(s.database.url, "sqlite://data/licenses.db");
        assert_eq!(
            s.database.sqlite_path(),
            Some(PathBuf::from("data/licenses.db"))
        );
        assert!(s.database.pool_size >= 1 && s.database.pool_size <= 16);
        assert!(s.database.checkout_timeout_ms <= 2000);
        assert!(s.database.migrate_on_start);
        assert_eq!(s.server.user_addr, "127.0.0.1:8080");
        assert_eq!(s.server.management_addr, "127.0.0.1:8081");
        assert!(s.server.cors_origins.is_empty());
        assert_eq!(s.server.shutdown_grace_secs, 30);
        assert_eq!(
            s.auth.management_keys,
            vec![ManagementKey::for_key("dev", DEV_MANAGEMENT_KEY)]
        );
        assert_eq!(s.auth.user_tokens.algorithm, Some(TokenAlgorithm::Hs256));
        assert_eq!(
            s.auth
                .user_tokens
                .secret
                .as_ref()
                .map(|s| s.expose_secret()),
            Some(DEV_TOKEN_SECRET)
        );
        assert!(s.auth.dev_tokens);
        assert!(!s.irdeto.enabled);
        s.check_for_serving().expect("local settings can serve");
    }

    #[test]
    fn test_settings_load_and_can_serve() {
        let s = load(&sources("test")).expect("test settings load");
        assert_eq!(s.server.user_addr, "127.0.0.1:0");
        assert!(!s.server.shared_listener());
        s.check_for_serving().expect("test settings can serve");
    }

    #[test]
    fn secrets_never_print() {
        let s = load(&with_vars(
            "local",
            &[
                ("LICENSES__DATABASE__URL", "postgres://u:hunter2@db:5432/x"),
                ("LICENSES__IRDETO__API_KEY", "irdeto-secret-value"),
            ],
        ))
        .expect("loads");
        let debug = format!("{s:?}");
        assert!(!debug.contains(DEV_TOKEN_SECRET), "{debug}");
        assert!(!debug.contains("hunter2"), "{debug}");
        assert!(!debug.contains("irdeto-secret-value"), "{debug}");
        assert!(debug.contains("postgres://u:***@db:5432/x"), "{debug}");
    }

    #[test]
    fn environment_variables_override_files() {
        let s = load(&with_vars(
            "local",
            &[
                ("LICENSES__DATABASE__URL", "postgres://postgres@localhost/x"),
                ("LICENSES__DATABASE__POOL_SIZE", "3"),
                ("LICENSES__DATABASE__MIGRATE_ON_START", "false"),
                (
                    "LICENSES__SERVER__CORS_ORIGINS",
                    "https://a.example, http://b.example:8000",
                ),
                (
                    "LICENSES__AUTH__MANAGEMENT_KEYS",
                    &format!("bss:{}", sha256_hex("k")),
                ),
                ("LICENSES__AUTH__USER_TOKENS__SECRET", "12345"),
                ("LICENSES__AUTH__USER_TOKENS__ISSUER", "https://id.example"),
            ],
        ))
        .expect("loads");
        assert_eq!(s.database.url, "postgres://postgres@localhost/x");
        assert_eq!(s.database.pool_size, 3);
        assert!(!s.database.migrate_on_start);
        assert_eq!(
            s.server.cors_origins,
            ["https://a.example", "http://b.example:8000"]
        );
        assert_eq!(s.auth.management_keys, [ManagementKey::for_key("bss", "k")]);
        assert_eq!(
            s.auth
                .user_tokens
                .secret
                .as_ref()
                .map(|s| s.expose_secret()),
            Some("12345")
        );
        assert_eq!(
            s.auth.user_tokens.issuer.as_deref(),
            Some("https://id.example")
        );
    }

    #[test]
    fn the_config_file_overrides_the_environment_file() {
        let dir = tempfile::tempdir().expect("tempdir");
        let file = dir.path().join("mine.toml");
        std::fs::write(&file, "[server]\nuser_addr = \"0.0.0.0:9000\"\n").expect("write");
        let mut sources = sources("local");
        sources.file = Some(file);
        let s = load(&sources).expect("loads");
        assert_eq!(s.server.user_addr, "0.0.0.0:9000");
        assert_eq!(s.server.management_addr, "127.0.0.1:8081");
    }

    #[test]
    fn a_missing_config_file_is_named() {
        let mut sources = sources("local");
        sources.file = Some(PathBuf::from("/nonexistent/licenses.toml"));
        let m = message(load(&sources));
        assert!(m.contains("--config /nonexistent/licenses.toml"), "{m}");
    }

    #[test]
    fn a_name_that_is_not_plain_names_app_env() {
        let m = message(load(&sources("../etc/passwd")));
        assert!(m.starts_with("APP_ENV=\"../etc/passwd\""), "{m}");
        let m = message(load(&sources("")));
        assert!(m.starts_with("APP_ENV="), "{m}");
        let s = load(&with_vars(
            "staging",
            &[("LICENSES__DATABASE__URL", "sqlite://data/staging.db")],
        ))
        .expect("a plain name loads without a file");
        assert_eq!(s.app_env, "staging");
        assert!(s.production_checks());
    }

    #[test]
    fn a_missing_config_directory_says_where_it_looked() {
        let m = message(load(&ConfigSources::for_environment(
            "/nonexistent",
            "local",
        )));
        assert!(m.contains("/nonexistent/default.toml"), "{m}");
        assert!(m.contains(CONFIG_DIR_VAR), "{m}");
    }

    #[test]
    fn malformed_values_name_their_key() {
        let cases = [
            ("LICENSES__DATABASE__URL", "mysql://x", "database.url"),
            ("LICENSES__DATABASE__URL", "sqlite://", "database.url"),
            (
                "LICENSES__DATABASE__URL",
                "postgres://a b@:x",
                "database.url",
            ),
            ("LICENSES__DATABASE__POOL_SIZE", "0", "database.pool_size"),
            (
                "LICENSES__DATABASE__POOL_SIZE",
                "many",
                "database.pool_size",
            ),
            (
                "LICENSES__SERVER__USER_ADDR",
                "localhost",
                "server.user_addr",
            ),
            (
                "LICENSES__SERVER__MANAGEMENT_ADDR",
                "1.2.3.4:99999",
                "server.management_addr",
            ),
            (
                "LICENSES__SERVER__CORS_ORIGINS",
                "https://a.example/path",
                "server.cors_origins",
            ),
            (
                "LICENSES__SERVER__SHUTDOWN_GRACE_SECS",
                "0",
                "server.shutdown_grace_secs",
            ),
            (
                "LICENSES__AUTH__MANAGEMENT_KEYS",
                "bss:nothex",
                "auth.management_keys",
            ),
            (
                "LICENSES__AUTH__MANAGEMENT_KEYS",
                "no-colon",
                "auth.management_keys",
            ),
            (
                "LICENSES__AUTH__USER_TOKENS__ALGORITHM",
                "none",
                "auth.user_tokens.algorithm",
            ),
            ("LICENSES__IRDETO__BASE_URL", "ftp://x", "irdeto.base_url"),
            (
                "LICENSES__CATALOGUE__REFRESH_MS",
                "0",
                "catalogue.refresh_ms",
            ),
            (
                "LICENSES__CATALOGUE__REFRESH_MS",
                "1001",
                "catalogue.refresh_ms",
            ),
            ("LICENSES__DATABASE__URLL", "x", "urll"),
            ("LICENSES__LOG__FORMAT", "xml", "log.format"),
            (
                "LICENSES__SERVER__CLIENT_TIMEOUT_MS",
                "0",
                "server.client_timeout_ms",
            ),
            (
                "LICENSES__LIMITS__MANAGEMENT_REQUESTS_PER_SECOND",
                "-1",
                "limits.management_requests_per_second",
            ),
        ];
        for (var, value, key) in cases {
            let m = message(load(&with_vars("local", &[(var, value)])));
            assert!(m.contains(key), "{var}={value}: {m}");
            assert!(!m.contains('\n'), "{m}");
        }
    }

    #[test]
    fn logs_and_limits_default_per_environment() {
        let local = load(&sources("local")).expect("loads");
        assert_eq!(local.log.format, LogFormat::Text);
        assert_eq!(local.limits.user_requests_per_second, 0);
        assert_eq!(local.limits.management_requests_per_second, 0);
        assert_eq!(local.limits.auth_failures_per_minute, 0);
        assert_eq!(local.server.client_timeout_ms, 5000);
        let test = load(&sources("test")).expect("loads");
        assert_eq!(test.limits.user_requests_per_second, 0);
        assert_eq!(test.limits.management_requests_per_second, 0);
        assert_eq!(test.limits.auth_failures_per_minute, 0);
        let production = load(&with_vars(
            "production",
            &[("LICENSES__DATABASE__URL", "postgres://db/licenses")],
        ))
        .expect("loads");
        assert_eq!(production.log.format, LogFormat::Json);
        let limits = &production.limits;
        assert_eq!(limits.auth_failures_per_minute, 30);
        assert_eq!(
            (limits.user_requests_per_second, limits.user_burst),
            (10, 20)
        );
        assert_eq!(
            (
                limits.management_requests_per_second,
                limits.management_burst
            ),
            (100, 200)
        );
    }
}
