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
//! Secrets are [`SecretString`]s: they never appear in `Debug` output or logs.

use std::collections::{HashMap, HashSet};
use std::fmt;
use std::marker::PhantomData;
use std::net::SocketAddr;
use std::path::PathBuf;
use std::str::FromStr;
use std::time::Duration;

use config::{Config, Environment, File, FileFormat};
use secrecy::{ExposeSecret, SecretString};
use serde::Deserialize;
use serde::de::{self, Deserializer, MapAccess, SeqAccess, Visitor};
use sha2::{Digest, Sha256};

/// The development management key of `config/local.toml` and `config/test.toml`. Public
/// knowledge, refused under `APP_ENV=production`.
pub const DEV_MANAGEMENT_KEY: &str = "dev-management-key-change-me";

/// The development user-token secret (HS256) of `config/local.toml` and `config/test.toml`.
/// Public knowledge, refused under `APP_ENV=production`.
pub const DEV_TOKEN_SECRET: &str = "dev-token-secret-change-me-0123456789abcdef";

/// The environments whose file may be missing without `APP_ENV` being an error.
pub const KNOWN_ENVIRONMENTS: [&str; 3] = ["local", "production", "test"];

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
}

fn default_app_env() -> String {
    "local".to_owned()
}

/// `[database]`
#[derive(Clone, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct DatabaseSettings {
    /// `sqlite://PATH` (embedded) or `postgres://…`. May hold a password: use
    /// [`redacted_url`] to show it.
    pub url: String,
    /// Connections in the pool.
    pub pool_size: u32,
    /// Longest wait for a free connection before a request is answered 503.
    pub checkout_timeout_ms: u64,
    /// Apply pending migrations when serving starts.
    pub migrate_on_start: bool,
}

impl DatabaseSettings {
    pub fn checkout_timeout(&self) -> Duration {
        Duration::from_millis(self.checkout_timeout_ms)
    }

    /// The file of an embedded SQLite database, `None` for PostgreSQL.
    pub fn sqlite_path(&self) -> Option<PathBuf> {
        let rest = self.url.strip_prefix("sqlite://")?;
        let path = rest.split('?').next().unwrap_or(rest);
        (!path.is_empty()).then(|| PathBuf::from(path))
    }
}

impl fmt::Debug for DatabaseSettings {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_struct("DatabaseSettings")
            .field("url", &redacted_url(&self.url))
            .field("pool_size", &self.pool_size)
            .field("checkout_timeout_ms", &self.checkout_timeout_ms)
            .field("migrate_on_start", &self.migrate_on_start)
            .finish()
    }
}

/// `[server]`
#[derive(Debug, Clone, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct ServerSettings {
    /// The user API listener, `HOST:PORT`; port 0 picks a free port.
    pub user_addr: String,
    /// The management API listener; when equal to `user_addr` (and not port 0), one listener
    /// serves both APIs.
    pub management_addr: String,
    /// How long a client has to send a request's head, and to close after the answer,
    /// before it is answered 408 or disconnected; also how long an idle keep-alive
    /// connection stays open.
    pub client_timeout_ms: u64,
    /// Origins allowed to call the user API from a browser: a list, or one comma-separated
    /// string (as an environment variable gives it).
    #[serde(deserialize_with = "list_or_comma_separated")]
    pub cors_origins: Vec<String>,
    /// How long a stopping server lets the requests in flight finish, in seconds, before it
    /// closes their connections.
    pub shutdown_grace_secs: u64,
}

impl ServerSettings {
    pub fn client_timeout(&self) -> Duration {
        Duration::from_millis(self.client_timeout_ms)
    }

    /// Whether one listener serves both APIs.
    pub fn shared_listener(&self) -> bool {
        self.user_addr.trim() == self.management_addr.trim() && !self.user_addr.ends_with(":0")
    }
}

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

/// `[irdeto]`: the Irdeto entitlement integration.
#[derive(Debug, Clone, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct IrdetoSettings {
    pub enabled: bool,
    #[serde(default)]
    pub base_url: Option<String>,
    #[serde(default)]
    pub api_key: Option<SecretString>,
    pub timeout_ms: u64,
    pub max_attempts: u32,
}

impl IrdetoSettings {
    pub fn timeout(&self) -> Duration {
        Duration::from_millis(self.timeout_ms)
    }
}

/// `[catalogue]`: the catalogue in memory of the user API.
#[derive(Debug, Clone, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct CatalogueSettings {
    /// How often each instance polls the database's catalogue change marker, reloading the
    /// products when it moved: the bound on how stale another instance's catalogue may be.
    /// 1..=1000.
    pub refresh_ms: u64,
}

impl CatalogueSettings {
    pub fn refresh_every(&self) -> Duration {
        Duration::from_millis(self.refresh_ms)
    }
}

/// `[log]`
#[derive(Debug, Clone, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct LogSettings {
    /// `text` (human-readable) or `json` (one object a line; production's default).
    pub format: LogFormat,
}

/// How log lines are written.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Deserialize)]
#[serde(try_from = "String")]
pub enum LogFormat {
    Text,
    Json,
}

impl TryFrom<String> for LogFormat {
    type Error = String;

    fn try_from(value: String) -> Result<Self, Self::Error> {
        match value.trim() {
            "text" => Ok(Self::Text),
            "json" => Ok(Self::Json),
            _ => Err(format!("expected text or json, got {value:?}")),
        }
    }
}

/// `[limits]`: rate limits per caller (0 requests a second: no limit).
#[derive(Debug, Clone, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct LimitsSettings {
    /// Requests a second each user (a token's `sub`) may sustain on the user API.
    pub user_requests_per_second: u32,
    /// Requests a user may send at once above that rate.
    pub user_burst: u32,
    /// Requests a second each management key may sustain on the management API.
    pub management_requests_per_second: u32,
    /// Requests a key may send at once above that rate.
    pub management_burst: u32,
}

/// Where the layers come from.
#[derive(Debug, Clone)]
pub struct ConfigSources {
    /// The directory holding `default.toml` and `$APP_ENV.toml`.
    pub dir: PathBuf,
    /// The environment: `local`, `production`, `test`, or any name with a file in `dir`.
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
        "{APP_ENV_VAR}={app_env:?} is not an environment: there is no {path} and it is none of \
         local, production, test"
    )]
    UnknownEnvironment { app_env: String, path: String },
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
    if !plain_name || (!env_file.is_file() && !KNOWN_ENVIRONMENTS.contains(&app_env)) {
        return Err(SettingsError::UnknownEnvironment {
            app_env: app_env.to_owned(),
            path: env_file.display().to_string(),
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
    /// Whether these are production settings (`APP_ENV=production`).
    pub fn is_production(&self) -> bool {
        self.app_env == "production"
    }

    /// Checks the values that are set: URLs parse, addresses are `HOST:PORT`, sizes are
    /// positive, key hashes are hex. Every problem is reported, in the order of the keys.
    pub fn validate(&self) -> Result<(), SettingsError> {
        let mut problems = Vec::new();
        let db = &self.database;
        if let Err(message) = check_database_url(&db.url) {
            problems.push(Problem::new("database.url", message));
        }
        if db.pool_size == 0 {
            problems.push(Problem::new("database.pool_size", "must be at least 1"));
        }
        if db.checkout_timeout_ms == 0 {
            problems.push(Problem::new(
                "database.checkout_timeout_ms",
                "must be at least 1",
            ));
        }
        for (key, addr) in [
            ("server.user_addr", &self.server.user_addr),
            ("server.management_addr", &self.server.management_addr),
        ] {
            if let Err(message) = check_listen_addr(addr) {
                problems.push(Problem::new(key, message));
            }
        }
        if self.server.shutdown_grace_secs == 0 {
            problems.push(Problem::new(
                "server.shutdown_grace_secs",
                "must be at least 1",
            ));
        }
        for origin in &self.server.cors_origins {
            if let Err(message) = check_origin(origin) {
                problems.push(Problem::new("server.cors_origins", message));
            }
        }
        let mut names = HashSet::new();
        for key in &self.auth.management_keys {
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
        let tokens = &self.auth.user_tokens;
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
        let irdeto = &self.irdeto;
        if let Some(url) = &irdeto.base_url
            && let Err(message) = check_http_url(url)
        {
            problems.push(Problem::new("irdeto.base_url", message));
        }
        if irdeto.timeout_ms == 0 {
            problems.push(Problem::new("irdeto.timeout_ms", "must be at least 1"));
        }
        if !(1..=1000).contains(&self.catalogue.refresh_ms) {
            problems.push(Problem::new(
                "catalogue.refresh_ms",
                "must be between 1 and 1000: a product change must show on every instance \
                 within a second",
            ));
        }
        if irdeto.max_attempts == 0 {
            problems.push(Problem::new("irdeto.max_attempts", "must be at least 1"));
        }
        if self.server.client_timeout_ms == 0 {
            problems.push(Problem::new(
                "server.client_timeout_ms",
                "must be at least 1",
            ));
        }
        let limits = &self.limits;
        for (rate, burst, key) in [
            (
                limits.user_requests_per_second,
                limits.user_burst,
                "limits.user_burst",
            ),
            (
                limits.management_requests_per_second,
                limits.management_burst,
                "limits.management_burst",
            ),
        ] {
            if rate > 0 && burst == 0 {
                problems.push(Problem::new(
                    key,
                    "must be at least 1 while its requests_per_second is set",
                ));
            }
        }
        into_result(problems)
    }

    /// What `serve` needs on top of [`Settings::validate`]: verification material for user
    /// tokens, the Irdeto endpoint when enabled, and under production real management keys
    /// and secret (not the development ones) and `auth.dev_tokens` off.
    pub fn check_for_serving(&self) -> Result<(), SettingsError> {
        let mut problems = Vec::new();
        let production = self.is_production();
        if production && self.auth.management_keys.is_empty() {
            problems.push(Problem::new(
                "auth.management_keys",
                "is not set: production needs at least one management key (NAME:SHA256)",
            ));
        }
        let dev_hash = sha256_hex(DEV_MANAGEMENT_KEY);
        if production
            && let Some(key) = self
                .auth
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
        let tokens = &self.auth.user_tokens;
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
        if production && self.auth.dev_tokens {
            problems.push(Problem::new(
                "auth.dev_tokens",
                "must be false under production",
            ));
        }
        if self.irdeto.enabled {
            if self.irdeto.base_url.is_none() {
                problems.push(Problem::new(
                    "irdeto.base_url",
                    "is not set: irdeto.enabled needs it",
                ));
            }
            if self.irdeto.api_key.is_none() {
                problems.push(Problem::new(
                    "irdeto.api_key",
                    "is not set: irdeto.enabled needs it",
                ));
            }
        }
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

/// The hex SHA-256 of `key`, as `auth.management_keys` holds it.
pub fn sha256_hex(key: &str) -> String {
    hex::encode(Sha256::digest(key.as_bytes()))
}

/// `url` with its password (if any) replaced by `***`, for messages and logs.
pub fn redacted_url(url: &str) -> String {
    match url::Url::parse(url) {
        Ok(mut parsed) => {
            if parsed.password().is_some() {
                // Setting a password fails only for URLs that cannot have one.
                let _ = parsed.set_password(Some("***"));
            }
            parsed.to_string()
        }
        Err(_) if !url.contains('@') => url.to_owned(),
        Err(_) => "(a URL that does not parse)".to_owned(),
    }
}

fn check_database_url(url: &str) -> Result<(), String> {
    const EXPECTED: &str = "expected sqlite://PATH or postgres://USER[:PASSWORD]@HOST[:PORT]/DB";
    let url = url.trim();
    if url.is_empty() {
        return Err(format!("is not set ({EXPECTED})"));
    }
    if let Some(path) = url.strip_prefix("sqlite://") {
        return if path.split('?').next().unwrap_or_default().is_empty() {
            Err(format!("{EXPECTED}: the SQLite path is empty"))
        } else {
            Ok(())
        };
    }
    if url.starts_with("postgres://") || url.starts_with("postgresql://") {
        return url::Url::parse(url)
            .map(drop)
            .map_err(|e| format!("{EXPECTED}: {e}"));
    }
    Err(format!("{EXPECTED}, got {}", redacted_url(url)))
}

fn check_listen_addr(addr: &str) -> Result<(), String> {
    let expected = || format!("expected HOST:PORT such as 127.0.0.1:8080, got {addr:?}");
    if addr.parse::<SocketAddr>().is_ok() {
        return Ok(());
    }
    let (host, port) = addr.rsplit_once(':').ok_or_else(expected)?;
    let host_ok = !host.is_empty()
        && host
            .chars()
            .all(|c| c.is_ascii_alphanumeric() || c == '-' || c == '.');
    if host_ok && port.parse::<u16>().is_ok() {
        Ok(())
    } else {
        Err(expected())
    }
}

fn check_origin(origin: &str) -> Result<(), String> {
    let bad = || format!("expected an origin such as https://app.example.com, got {origin:?}");
    let url = url::Url::parse(origin).map_err(|_| bad())?;
    let bare = matches!(url.scheme(), "http" | "https")
        && url.host().is_some()
        && url.path() == "/"
        && url.query().is_none()
        && url.fragment().is_none();
    if bare { Ok(()) } else { Err(bad()) }
}

fn check_http_url(url: &str) -> Result<(), String> {
    match url::Url::parse(url) {
        Ok(parsed) if matches!(parsed.scheme(), "http" | "https") => Ok(()),
        _ => Err(format!("expected an http:// or https:// URL, got {url:?}")),
    }
}

fn one_line(message: &str) -> String {
    message.split_whitespace().collect::<Vec<_>>().join(" ")
}

/// Deserializes a list, or one comma-separated string (the form environment variables give)
/// whose items parse with `FromStr`.
fn list_or_comma_separated<'de, D, T>(deserializer: D) -> Result<Vec<T>, D::Error>
where
    D: Deserializer<'de>,
    T: Deserialize<'de> + FromStr,
    T::Err: fmt::Display,
{
    struct ListVisitor<T>(PhantomData<T>);

    impl<'de, T> Visitor<'de> for ListVisitor<T>
    where
        T: Deserialize<'de> + FromStr,
        T::Err: fmt::Display,
    {
        type Value = Vec<T>;

        fn expecting(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
            f.write_str("a list, or a comma-separated string")
        }

        fn visit_str<E: de::Error>(self, v: &str) -> Result<Self::Value, E> {
            v.split(',')
                .map(str::trim)
                .filter(|item| !item.is_empty())
                .map(|item| item.parse().map_err(E::custom))
                .collect()
        }

        fn visit_seq<A: SeqAccess<'de>>(self, mut seq: A) -> Result<Self::Value, A::Error> {
            let mut items = Vec::new();
            while let Some(item) = seq.next_element()? {
                items.push(item);
            }
            Ok(items)
        }
    }

    deserializer.deserialize_any(ListVisitor(PhantomData))
}

#[cfg(test)]
mod tests {
    use std::path::Path;

    use super::*;

    /// The repository's own `config/` directory.
    fn repository_config_dir() -> &'static Path {
        Path::new(concat!(env!("CARGO_MANIFEST_DIR"), "/config"))
    }

    fn sources(app_env: &str) -> ConfigSources {
        ConfigSources::for_environment(repository_config_dir(), app_env)
    }

    fn with_vars(app_env: &str, vars: &[(&str, &str)]) -> ConfigSources {
        let mut sources = sources(app_env);
        sources.variables = vars
            .iter()
            .map(|(k, v)| ((*k).to_owned(), (*v).to_owned()))
            .collect();
        sources
    }

    fn message(result: Result<Settings, SettingsError>) -> String {
        match result {
            Ok(_) => panic!("expected an error"),
            Err(e) => e.to_string(),
        }
    }

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
        assert_eq!(s.auth.user_tokens.algorithm, TokenAlgorithm::Hs256);
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
    fn an_unknown_environment_names_app_env() {
        let m = message(load(&sources("staging")));
        assert!(m.starts_with("APP_ENV=\"staging\""), "{m}");
        let m = message(load(&sources("../etc/passwd")));
        assert!(m.starts_with("APP_ENV="), "{m}");
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
    fn a_password_never_shows_in_errors() {
        let m = message(load(&with_vars(
            "local",
            &[("LICENSES__DATABASE__URL", "mysql://u:hunter2@h/db")],
        )));
        assert!(m.contains("database.url"), "{m}");
        assert!(!m.contains("hunter2"), "{m}");
    }

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
    fn production_needs_a_database_url() {
        let m = message(load(&sources("production")));
        assert!(m.contains("database.url"), "{m}");
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

    #[test]
    fn irdeto_needs_its_endpoint_when_enabled() {
        let s = load(&with_vars(
            "local",
            &[("LICENSES__IRDETO__ENABLED", "true")],
        ))
        .expect("loads");
        let m = s.check_for_serving().expect_err("no endpoint").to_string();
        assert!(m.contains("irdeto.base_url"), "{m}");
        assert!(m.contains("irdeto.api_key"), "{m}");
    }

    #[test]
    fn logs_and_limits_default_per_environment() {
        let local = load(&sources("local")).expect("loads");
        assert_eq!(local.log.format, LogFormat::Text);
        assert_eq!(local.limits.user_requests_per_second, 0);
        assert_eq!(local.limits.management_requests_per_second, 0);
        assert_eq!(local.server.client_timeout_ms, 5000);
        let test = load(&sources("test")).expect("loads");
        assert_eq!(test.limits.user_requests_per_second, 0);
        assert_eq!(test.limits.management_requests_per_second, 0);
        let production = load(&with_vars(
            "production",
            &[("LICENSES__DATABASE__URL", "postgres://db/licenses")],
        ))
        .expect("loads");
        assert_eq!(production.log.format, LogFormat::Json);
        let limits = &production.limits;
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

    #[test]
    fn a_rate_needs_a_burst() {
        let m = message(load(&with_vars(
            "local",
            &[
                ("LICENSES__LIMITS__USER_REQUESTS_PER_SECOND", "5"),
                ("LICENSES__LIMITS__USER_BURST", "0"),
            ],
        )));
        assert_eq!(
            m,
            "limits.user_burst: must be at least 1 while its requests_per_second is set"
        );
        let s = load(&with_vars(
            "local",
            &[("LICENSES__LIMITS__USER_BURST", "0")],
        ))
        .expect("no rate, no burst needed");
        assert_eq!(s.limits.user_burst, 0);
    }

    #[test]
    fn equal_addresses_share_one_listener_unless_port_zero() {
        let mut s = load(&sources("local")).expect("loads").server;
        assert!(!s.shared_listener());
        s.management_addr = s.user_addr.clone();
        assert!(s.shared_listener());
        s.user_addr = "127.0.0.1:0".into();
        s.management_addr = "127.0.0.1:0".into();
        assert!(!s.shared_listener());
    }
}
