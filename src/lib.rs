//! The `licenses` binary: configuration, wiring and the command line.
//!
//! [`Application::build`] turns [`Settings`] into running parts: it opens the store
//! ([`licenses_store`]), applies migrations when `database.migrate_on_start`, binds the two
//! listeners and mounts, on each, the health endpoints and the API front-end it serves
//! ([`user_routes`], [`management_routes`]). [`cli`] parses the command line and runs a
//! command; those that open the store and run one use case ([`migrate`], [`irdeto_command`])
//! are in `commands`. `main.rs` only calls [`cli::main`].

pub mod cli;
mod commands;
pub mod consistency;
pub mod event_workers;
mod health;
pub mod import;
mod jwks;
mod limits;
pub mod log_buffer;
mod log_json;
pub mod maintenance;
pub mod metrics;
pub mod nats_publisher;
pub mod settings;
pub mod telemetry;
pub mod webhook_worker;
pub mod workers;

use std::future::Future;
use std::net::TcpListener;
use std::sync::Arc;

use actix_web::dev::Server;
use actix_web::middleware::from_fn;
use actix_web::{HttpServer, web};
use licenses_api_management::ManagementKeys;
use licenses_api_user::{
    Algorithm, DEFAULT_LEEWAY_SECONDS, JwksConfig, KeySettings, TokenConfigError, TokenSettings,
    TokenVerifier,
};
use licenses_app::ports::StoreHealth;
use licenses_app::webhooks::{WebhookPolicy, Webhooks};
use licenses_app::{
    App, Delivery, DeliveryPolicy, Entitlements, Events, Ports, SystemClock, UuidV7Ids,
};
use licenses_http::{ApiError, AuthFailureLimiter, PublicOrigins, RateLimiter, RateLimits};
use licenses_irdeto::{IrdetoConfig, IrdetoGateway, TlsFiles};
use licenses_store::{OpenError, Store, StoreConfig};
use secrecy::ExposeSecret;
use tokio::sync::Notify;
use tracing_actix_web::TracingLogger;

pub use commands::{irdeto_command, migrate};
pub use settings::{Settings, SettingsError};
use settings::{TokenAlgorithm, UserTokenSettings};

/// Why the service could not start. Every message is one line that names the configuration key
/// at fault and never shows a password.
#[derive(Debug, thiserror::Error)]
pub enum StartError {
    #[error(transparent)]
    Settings(#[from] SettingsError),
    /// The store could not be opened (malformed or unreachable `database.url`): the message
    /// names the key.
    #[error("{0}")]
    Database(String),
    /// Migrations could not be read or applied.
    #[error("database.url: cannot migrate {url}: {reason}")]
    Migrations { url: String, reason: String },
    /// A listener could not be bound.
    #[error("{key}: cannot listen on {addr}: {source}")]
    Listen {
        key: &'static str,
        addr: String,
        #[source]
        source: std::io::Error,
    },
    /// `auth.management_keys` holds a hash that is not one.
    #[error("auth.management_keys: {0}")]
    Keys(String),
    /// `auth.user_tokens` cannot verify tokens (the message names the key).
    #[error(transparent)]
    Tokens(#[from] TokenConfigError),
    /// `irdeto.*` cannot make an Irdeto client (the message names the key).
    #[error("{0}")]
    Irdeto(String),
    /// The servers failed while running.
    #[error("server failed: {0}")]
    Server(#[source] std::io::Error),
}

/// What the listeners are built from, once, and shared by every worker: the use cases over
/// the production adapters, the store's readiness, the management keys and the settings.
/// Cheap to clone.
#[derive(Clone)]
pub struct Services {
    /// The use cases of both APIs.
    pub app: App,
    /// Readiness, for `GET /health/ready`.
    pub health: Arc<dyn StoreHealth>,
    /// The keys of `auth.management_keys`.
    pub management_keys: ManagementKeys,
    /// The user token verification of `auth.user_tokens`.
    pub tokens: TokenVerifier,
    pub settings: Arc<Settings>,
    /// Notified when a use case wrote entitlement jobs: wakes this instance's worker.
    pub entitlement_jobs_written: Arc<Notify>,
    /// Notified when this instance wrote events (every license and product write, every
    /// settlement): wakes its sequencer.
    pub events_written: Arc<Notify>,
    /// Woken by the sequencer when events got their positions: the NATS publisher and the
    /// webhook worker.
    pub event_followers: event_workers::Followers,
    /// What `GET /metrics` exports.
    pub metrics: Arc<metrics::Metrics>,
    /// The rate limits of `limits.*`.
    pub rate_limits: RateLimits,
    /// The support console, when `console.enabled`: built once, so that every worker shares
    /// its sessions.
    pub console: Option<licenses_console::Console>,
    /// Read-your-writes over the replicas: the window of recent writes per credentials.
    pub consistency: Arc<consistency::Consistency>,
}

/// The management keys and the user token verifier of `auth.*`, refused when malformed.
fn credentials(settings: &Settings) -> Result<(ManagementKeys, TokenVerifier), StartError> {
    let management_keys = ManagementKeys::with_scopes(
        settings
            .auth
            .management_keys
            .iter()
            .map(|k| (k.name.clone(), k.sha256.clone(), k.scopes)),
    )
    .map_err(|e| StartError::Keys(e.to_string()))?;
    let tokens = TokenVerifier::new(&token_settings(&settings.auth.user_tokens)?)?;
    Ok((management_keys, tokens))
}

impl Services {
    /// The services over `store`, with the system clock and UUIDv7 ids.
    pub fn new(store: &Store, settings: Settings) -> Result<Self, StartError> {
        let ports = Ports {
            products: Arc::new(store.clone()),
            licenses: Arc::new(store.clone()),
            idempotency: Arc::new(store.clone()),
            clock: Arc::new(SystemClock),
            ids: Arc::new(UuidV7Ids),
        };
        let (management_keys, tokens) = credentials(&settings)?;
        let entitlement_jobs_written = Arc::new(Notify::new());
        let events_written = Arc::new(Notify::new());
        let event_followers = event_workers::Followers::default();
        let written = Arc::clone(&events_written);
        let mut app = App::new(ports).with_events(Events {
            store: Arc::new(store.clone()),
            wake: Arc::new(move || written.notify_one()),
        });
        let webhooks = &settings.events.webhooks;
        app = app.with_webhooks(Webhooks {
            store: Arc::new(store.clone()),
            policy: WebhookPolicy {
                allow_http: webhooks.allow_http,
                allow_private_networks: webhooks.allow_private_networks,
            },
        });
        if settings.irdeto.enabled {
            let notify = Arc::clone(&entitlement_jobs_written);
            app = app.with_entitlements(Entitlements {
                jobs: Arc::new(store.clone()),
                wake: Arc::new(move || notify.notify_one()),
            });
        }
        let metrics = metrics::Metrics::new(
            store.clone(),
            settings.irdeto.enabled,
            settings.events.nats.url.is_some(),
        )
        .map_err(|e| StartError::Server(std::io::Error::other(e)))?;
        let limits = &settings.limits;
        let rate_limits = RateLimits {
            user: RateLimiter::new(limits.user_requests_per_second, limits.user_burst)
                .map(Arc::new),
            management: RateLimiter::new(
                limits.management_requests_per_second,
                limits.management_burst,
            )
            .map(Arc::new),
            auth_failures: AuthFailureLimiter::new(limits.auth_failures_per_minute).map(Arc::new),
        };
        let console = settings.console.enabled.then(|| {
            licenses_console::Console::new(
                app.clone(),
                management_keys.clone(),
                &console_config(&settings),
            )
        });
        let consistency = Arc::new(consistency::Consistency::new(
            store.has_positions(),
            store.has_replicas(),
            settings.database.read_your_writes(),
        ));
        Ok(Self {
            console,
            consistency,
            app,
            entitlement_jobs_written,
            events_written,
            event_followers,
            metrics: Arc::new(metrics),
            rate_limits,
            health: Arc::new(store.clone()),
            management_keys,
            tokens,
            settings: Arc::new(settings),
        })
    }
}

/// `console.*` as the console takes it; its cookie is `Secure` when the management listener's
/// public base URL is `https://` (the listener itself speaks plain HTTP: TLS is a proxy's).
fn console_config(settings: &Settings) -> licenses_console::ConsoleConfig {
    let console = &settings.console;
    licenses_console::ConsoleConfig {
        idle_timeout: console.idle_timeout(),
        absolute_timeout: console.absolute_timeout(),
        max_sessions: console.max_sessions,
        secure_cookie: settings
            .server
            .management_public_base_url()
            .is_some_and(|base| base.trim().to_ascii_lowercase().starts_with("https://")),
    }
}

fn algorithm(algorithm: TokenAlgorithm) -> Algorithm {
    match algorithm {
        TokenAlgorithm::Hs256 => Algorithm::Hs256,
        TokenAlgorithm::Rs256 => Algorithm::Rs256,
        TokenAlgorithm::Es256 => Algorithm::Es256,
    }
}

/// `auth.user_tokens` as the user API takes it, with the JWKS source of `jwks_url`. An unset
/// `algorithm` is HS256 here: production checks have refused it already.
fn token_settings(tokens: &UserTokenSettings) -> Result<TokenSettings, StartError> {
    let jwks = match &tokens.jwks_url {
        Some(url) => Some(JwksConfig {
            source: Arc::new(
                jwks::HttpJwks::new(url).map_err(|problem| TokenConfigError {
                    key: "auth.user_tokens.jwks_url",
                    problem,
                })?,
            ),
            refresh_min: std::time::Duration::from_secs(tokens.jwks_refresh_min_s),
        }),
        None => None,
    };
    Ok(TokenSettings {
        algorithm: algorithm(tokens.algorithm.unwrap_or(TokenAlgorithm::Hs256)),
        secret: tokens
            .secret
            .as_ref()
            .map(|secret| secret.expose_secret().to_owned()),
        public_key_pem: tokens.public_key_pem.clone(),
        keys: tokens
            .keys
            .iter()
            .map(|k| KeySettings {
                kid: k.kid.clone(),
                algorithm: algorithm(k.algorithm),
                secret: k.secret.as_ref().map(|s| s.expose_secret().to_owned()),
                public_key_pem: k.public_key_pem.clone(),
            })
            .collect(),
        jwks,
        issuer: tokens.issuer.clone(),
        audience: tokens.audience.clone(),
        leeway_seconds: DEFAULT_LEEWAY_SECONDS,
        max_ttl_seconds: tokens.max_ttl_s,
    })
}

impl std::fmt::Debug for Services {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("Services")
            .field("management_keys", &self.management_keys)
            .field("tokens", &self.tokens)
            .finish_non_exhaustive()
    }
}

/// Which APIs a listener serves.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
enum Serves {
    User,
    Management,
    Both,
}

/// Mounts the user API (client apps, `/api/license/v4`, crates/api-user) on the listener of
/// `server.user_addr`, behind user tokens verified as `auth.user_tokens` says, and with the
/// CORS origins of `server.cors_origins`.
pub fn user_routes(cfg: &mut web::ServiceConfig, services: &Services) {
    cfg.configure(licenses_api_user::configure(
        services.app.clone(),
        services.tokens.clone(),
        services.settings.server.cors_origins.clone(),
    ));
}

/// Mounts the management API (the BSS, `/api/license/management/v4`, crates/api-management)
/// on the listener of `server.management_addr`, behind the keys of `auth.management_keys`,
/// and the support console (`/console/`, crates/console) when `console.enabled`, which signs
/// in with the same keys.
pub fn management_routes(cfg: &mut web::ServiceConfig, services: &Services) {
    cfg.configure(licenses_api_management::configure(
        services.app.clone(),
        services.management_keys.clone(),
    ));
    if let Some(console) = &services.console {
        cfg.configure(licenses_console::configure(console.clone()));
    }
}

/// The service, built and bound, not yet serving: [`Application::run_until_stopped`] serves.
pub struct Application {
    user_port: u16,
    management_port: u16,
    user_server: Server,
    /// `None` when one listener serves both APIs.
    management_server: Option<Server>,
    store: Store,
    /// The Irdeto delivery, when `irdeto.enabled`: started by [`Application::run_until`].
    delivery: Option<(Delivery, Arc<Notify>)>,
    /// The events sequencer and scheduler's settings and wake-ups (`events.*`).
    events: (
        event_workers::EventsConfig,
        Arc<Notify>,
        event_workers::Followers,
    ),
    /// The NATS publisher's settings and the root of its events' links, when
    /// `events.nats.url` is set.
    nats: Option<(licenses_nats::NatsConfig, licenses_http::Links)>,
    /// The webhook worker's settings and the root of its events' links.
    webhooks: (webhook_worker::WebhookConfig, licenses_http::Links),
    /// `server.shutdown_grace_secs`.
    shutdown_grace_secs: u64,
    /// The use cases, whose catalogue in memory the refresher keeps fresh.
    app: licenses_app::App,
    /// `catalogue.refresh_ms`.
    catalogue_refresh: std::time::Duration,
    /// The user token verifier, whose JWKS is fetched again on a timer.
    tokens: TokenVerifier,
    /// `auth.user_tokens.jwks_max_age_s`, when a JWKS is configured.
    jwks_max_age: Option<std::time::Duration>,
    /// `database.listen_url`: where the wake-up listener connects, if not `database.url`.
    listen_url: Option<String>,
}

impl std::fmt::Debug for Application {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("Application")
            .field("user_port", &self.user_port)
            .field("management_port", &self.management_port)
            .field("shared_listener", &self.management_server.is_none())
            .finish_non_exhaustive()
    }
}

impl Application {
    /// Checks the settings for serving, opens the store, migrates it when
    /// `database.migrate_on_start`, and binds both listeners (port 0 picks a free port; equal
    /// addresses share one listener).
    pub async fn build(settings: Settings) -> Result<Application, StartError> {
        settings.validate()?;
        settings.check_for_serving()?;
        // Bad keys or token material, and unusable Irdeto TLS files, are refused before the
        // database is touched (and migrated).
        credentials(&settings)?;
        let gateway = irdeto_gateway(&settings.irdeto)?;
        let store = open_store(&settings).await?;
        let url = settings::redacted_url(&settings.database.url);
        if settings.database.migrate_on_start {
            let applied = store.migrate().await.map_err(|e| StartError::Migrations {
                url: url.clone(),
                reason: e.to_string(),
            })?;
            tracing::info!(database = %url, applied = applied.len(), "migrations up to date");
        } else {
            match store.pending_migrations().await {
                Ok(0) => {}
                Ok(pending) => tracing::warn!(
                    database = %url,
                    pending,
                    "migrations are pending: /health/ready answers 503 until `licenses migrate` \
                     has run"
                ),
                Err(error) => tracing::warn!(database = %url, %error, "cannot count migrations"),
            }
        }

        let listen_url = settings.database.listen_url.clone();
        let services = Services::new(&store, settings)?;
        // The JWKS before the first request (a failure is logged; unknown kids fetch again).
        let _ = services.tokens.refresh_jwks().await;
        let user_tokens = &services.settings.auth.user_tokens;
        let jwks_max_age = user_tokens
            .jwks_url
            .as_ref()
            .map(|_| std::time::Duration::from_secs(user_tokens.jwks_max_age_s));
        let delivery = gateway.map(|gateway| irdeto_delivery(&store, &services, gateway));
        let events_settings = &services.settings.events;
        let events = (
            event_workers::EventsConfig {
                retention: events_settings.retention(),
                expiring_soon: events_settings.expiring_soon(),
                scheduler_every: events_settings.scheduler_every(),
            },
            Arc::clone(&services.events_written),
            services.event_followers.clone(),
        );
        maintenance::spawn_key_pruning(services.app.clone());
        let server = &services.settings.server;
        warn_without_public_base_url(server);
        // One readiness check a second for both listeners and all their workers.
        let ready = Arc::new(health::ReadyCache::new(Arc::clone(&services.health)));
        let user_listener = bind("server.user_addr", &server.user_addr)?;
        let user_port = local_port("server.user_addr", &server.user_addr, &user_listener)?;
        let (user_server, management_server, management_port) = if server.shared_listener() {
            let both = http_server(user_listener, Serves::Both, &services, &ready)?;
            (both, None, user_port)
        } else {
            let management_listener = bind("server.management_addr", &server.management_addr)?;
            let management_port = local_port(
                "server.management_addr",
                &server.management_addr,
                &management_listener,
            )?;
            let user = http_server(user_listener, Serves::User, &services, &ready)?;
            let management =
                http_server(management_listener, Serves::Management, &services, &ready)?;
            (user, Some(management), management_port)
        };
        let nats = nats_config(&services.settings, management_port);
        let webhooks = webhook_config(&services.settings, management_port);
        let shutdown_grace_secs = server.shutdown_grace_secs;
        let app = services.app.clone();
        let catalogue_refresh = services.settings.catalogue.refresh_every();
        let tokens = services.tokens.clone();
        tracing::info!(
            user_api = %format_args!("{}:{user_port}", host_of(&server.user_addr)),
            management_api = %format_args!("{}:{management_port}", host_of(&server.management_addr)),
            database = %url,
            backend = %store.backend(),
            "listening"
        );
        Ok(Application {
            user_port,
            management_port,
            user_server,
            management_server,
            store,
            delivery,
            events,
            nats,
            webhooks,
            shutdown_grace_secs,
            app,
            catalogue_refresh,
            tokens,
            jwks_max_age,
            listen_url,
        })
    }

    /// Runs no Irdeto delivery worker in this instance: the jobs it writes are delivered by
    /// the other instances' workers, woken by their listeners. For the benchmark of wake-ups
    /// across instances (`cargo bench --bench irdeto_delivery`).
    #[must_use]
    pub fn without_delivery_worker(mut self) -> Self {
        self.delivery = None;
        self
    }

    /// Reloads the catalogue in memory now if the database's change marker moved (what the
    /// refresher does every `catalogue.refresh_ms`): whether it reloaded. For tests that
    /// need another instance's change seen without waiting.
    pub async fn refresh_catalogue(&self) -> Result<bool, licenses_app::AppError> {
        self.app.refresh_catalogue().await
    }

    /// The port of the user API listener (the bound one, when configured as 0).
    pub fn user_port(&self) -> u16 {
        self.user_port
    }

    /// The port of the management API listener; equal to [`Self::user_port`] when one
    /// listener serves both.
    pub fn management_port(&self) -> u16 {
        self.management_port
    }

    /// The store the application serves from.
    pub fn store(&self) -> &Store {
        &self.store
    }

    /// Serves until SIGINT or SIGTERM, then stops gracefully: see [`Self::run_until`].
    pub async fn run_until_stopped(self) -> Result<(), StartError> {
        self.run_until(shutdown_signal()).await
    }

    /// Serves until `stop` completes, then stops gracefully: the listeners stop accepting,
    /// requests in flight finish (for at most `server.shutdown_grace_secs`), and this returns.
    pub async fn run_until(
        self,
        stop: impl Future<Output = ()> + Send + 'static,
    ) -> Result<(), StartError> {
        let (events_config, events_written, event_followers) = self.events;
        // Wake-ups from the other instances' commits (PostgreSQL): their jobs, events and
        // sequenced events wake this instance's delivery worker, sequencer and followers at
        // once, not at the next poll.
        let mut wakes = vec![(
            licenses_store::listen::EVENTS_CHANNEL,
            Arc::clone(&events_written),
        )];
        wakes.extend(event_followers.listened());
        if let Some((_, wake)) = &self.delivery {
            wakes.push((licenses_store::listen::JOBS_CHANNEL, Arc::clone(wake)));
        }
        let listener = match self.store.listen(self.listen_url.as_deref(), wakes) {
            Ok(listener) => listener,
            Err(error) => {
                tracing::warn!(%error, "no wake-up listener; the workers poll");
                None
            }
        };
        let nats = self.nats.map(|(config, links)| {
            nats_publisher::NatsWorker::spawn(
                Arc::new(self.store.clone()),
                config,
                links,
                Arc::clone(&event_followers.nats),
            )
        });
        let (webhook_config, webhook_links) = self.webhooks;
        let webhooks = webhook_worker::WebhookWorker::spawn(
            Arc::new(self.store.clone()),
            webhook_config,
            webhook_links,
            Arc::clone(&event_followers.webhooks),
        );
        let worker = self.delivery.map(|(delivery, wake)| {
            workers::Worker::spawn(delivery, wake, Arc::clone(&events_written))
        });
        let event_workers = event_workers::EventWorkers::spawn(
            Arc::new(self.store.clone()),
            Arc::new(SystemClock),
            events_config,
            events_written,
            event_followers,
        );
        let refresher =
            workers::CatalogueRefresher::spawn(self.app.clone(), self.catalogue_refresh);
        let jwks_refresher = jwks::spawn_refresher(self.tokens.clone(), self.jwks_max_age);
        // Replicas are read from once a probe found them in, and taken out by the next that
        // finds them down or lagging.
        let prober = self.store.has_replicas().then(|| {
            let store = self.store.clone();
            tokio::spawn(async move {
                loop {
                    store.probe_replicas().await;
                    tokio::time::sleep(licenses_store::PROBE_EVERY).await;
                }
            })
        });
        let user = self.user_server.handle();
        let management = self.management_server.as_ref().map(Server::handle);
        let grace_secs = self.shutdown_grace_secs;
        let stopper = tokio::spawn(async move {
            stop.await;
            tracing::info!(
                grace_secs,
                "stopping: no new connections, finishing the requests in flight"
            );
            let management = async {
                if let Some(handle) = &management {
                    handle.stop(true).await;
                }
            };
            tokio::join!(user.stop(true), management);
        });
        let management_server = self.management_server;
        let management = async move {
            match management_server {
                Some(server) => server.await,
                None => Ok(()),
            }
        };
        let (user_result, management_result) = tokio::join!(self.user_server, management);
        stopper.abort();
        if let Some(jwks_refresher) = jwks_refresher {
            jwks_refresher.abort();
        }
        if let Some(prober) = prober {
            prober.abort();
        }
        if let Some(listener) = listener {
            tokio::task::spawn_blocking(move || listener.stop())
                .await
                .ok();
        }
        refresher.stop().await;
        if let Some(worker) = worker {
            // The round in hand finishes: its jobs are delivered and settled.
            worker.stop().await;
        }
        // After the delivery worker: the events of its last settlements are sequenced.
        event_workers.stop().await;
        // Last: what was sequenced is published (or left for the next start).
        if let Some(nats) = nats {
            nats.stop().await;
        }
        webhooks.stop().await;
        user_result
            .and(management_result)
            .map_err(StartError::Server)?;
        tracing::info!("stopped");
        Ok(())
    }
}

/// The Irdeto gateway of `irdeto.*`, when enabled: its TLS files are read here, so that a
/// file that cannot be used stops the start with one line naming its key.
fn irdeto_gateway(irdeto: &settings::IrdetoSettings) -> Result<Option<IrdetoGateway>, StartError> {
    if !irdeto.enabled {
        return Ok(None);
    }
    let (Some(base_url), Some(api_key)) = (&irdeto.base_url, &irdeto.api_key) else {
        return Err(StartError::Irdeto(
            "irdeto.base_url and irdeto.api_key are required when irdeto.enabled".into(),
        ));
    };
    let base_url = base_url
        .parse()
        .map_err(|e| StartError::Irdeto(format!("irdeto.base_url: {e}")))?;
    let gateway = IrdetoGateway::new(&IrdetoConfig {
        base_url,
        api_key: api_key.clone(),
        timeout: irdeto.timeout(),
        tls: TlsFiles {
            ca_file: irdeto.ca_file.clone(),
            client_cert_file: irdeto.client_cert_file.clone(),
            client_key_file: irdeto.client_key_file.clone(),
        },
    })
    .map_err(|e| StartError::Irdeto(e.to_string()))?;
    Ok(Some(gateway))
}

/// The Irdeto delivery over `gateway`: the jobs of the store, and the policy of `irdeto.*`.
fn irdeto_delivery(
    store: &Store,
    services: &Services,
    gateway: IrdetoGateway,
) -> (Delivery, Arc<Notify>) {
    let irdeto = &services.settings.irdeto;
    let delivery = Delivery {
        jobs: Arc::new(store.clone()),
        gateway: Arc::new(metrics::MeteredGateway::new(
            Arc::new(gateway),
            Arc::clone(&services.metrics),
        )),
        licenses: Arc::new(store.clone()),
        clock: Arc::new(SystemClock),
        policy: delivery_policy(irdeto),
    };
    (delivery, Arc::clone(&services.entitlement_jobs_written))
}

/// How jobs are retried: `irdeto.max_attempts` tries, backoff from 1 s doubling up to
/// 5 minutes, and a lease long enough for one round (each call is bounded by
/// `irdeto.timeout_ms`) so that only a dead worker's jobs are claimed again.
pub fn delivery_policy(irdeto: &settings::IrdetoSettings) -> DeliveryPolicy {
    DeliveryPolicy {
        max_attempts: irdeto.max_attempts,
        lease_seconds: 2 * irdeto.timeout_ms.div_ceil(1_000) + 5,
        base_backoff_seconds: 1,
        max_backoff_seconds: 300,
    }
}

/// Opens the store of `database.*` on the blocking pool: opening checks that a connection
/// can be had (and, for SQLite, creates the file and its directory).
pub(crate) async fn open_store(settings: &Settings) -> Result<Store, StartError> {
    // Under production checks, no plaintext to a database beyond loopback, for any command.
    settings.check_transport()?;
    let database = &settings.database;
    let config = StoreConfig {
        replicas: database.replicas.clone(),
        replica_max_lag: database.replica_max_lag(),
        prepared_statements: database.prepared_statements,
        ..StoreConfig::new(
            database.url.clone(),
            database.pool_size,
            database.checkout_timeout(),
        )
    };
    let opened = tokio::task::spawn_blocking(move || Store::open(&config))
        .await
        .map_err(|e| StartError::Database(format!("database.url: cannot open the store: {e}")))?;
    opened.map_err(|e| {
        StartError::Database(match e {
            OpenError::InvalidUrl(why) => format!("database.url: {why}"),
            OpenError::Unreachable(why) => format!("database.url: cannot reach the database {why}"),
            OpenError::InvalidConfig(why) => why,
        })
    })
}

fn bind(key: &'static str, addr: &str) -> Result<TcpListener, StartError> {
    TcpListener::bind(addr).map_err(|source| StartError::Listen {
        key,
        addr: addr.to_owned(),
        source,
    })
}

fn local_port(key: &'static str, addr: &str, listener: &TcpListener) -> Result<u16, StartError> {
    listener
        .local_addr()
        .map(|a| a.port())
        .map_err(|source| StartError::Listen {
            key,
            addr: addr.to_owned(),
            source,
        })
}

/// The NATS publisher's settings (`events.nats.*`), when a URL is set, and the root of the
/// links in its events: the management API's public base URL, else its listener.
fn nats_config(
    settings: &Settings,
    management_port: u16,
) -> Option<(licenses_nats::NatsConfig, licenses_http::Links)> {
    let nats = &settings.events.nats;
    let url = nats.url.as_ref()?;
    let config = licenses_nats::NatsConfig {
        url: url.expose_secret().to_owned(),
        stream: nats.stream.clone(),
        subject_prefix: nats.subject_prefix.clone(),
        duplicate_window: nats.duplicate_window(),
        max_age: settings.events.retention(),
        connect_timeout: nats.timeout(),
        ack_timeout: nats.timeout(),
    };
    Some((config, event_links(settings, management_port)))
}

/// The root of the links in events sent out (NATS, webhooks): the management API's public
/// base URL, else its listener.
fn event_links(settings: &Settings, management_port: u16) -> licenses_http::Links {
    let server = &settings.server;
    let origin = server.management_public_base_url().map_or_else(
        || {
            format!(
                "http://{}:{management_port}",
                host_of(&server.management_addr)
            )
        },
        |base| base.trim_end_matches('/').to_owned(),
    );
    licenses_http::Links::with_root(format!("{origin}{}", licenses_api_management::PREFIX))
}

/// The webhook worker's settings (`events.webhooks.*`) and the root of its events' links.
fn webhook_config(
    settings: &Settings,
    management_port: u16,
) -> (webhook_worker::WebhookConfig, licenses_http::Links) {
    let webhooks = &settings.events.webhooks;
    let config = webhook_worker::WebhookConfig {
        timeout: webhooks.timeout(),
        concurrency: webhooks.concurrency,
        disable_after: webhooks.disable_after(),
        retry_scale: webhooks.retry_scale,
        allow_private_networks: webhooks.allow_private_networks,
        retention: settings.events.retention(),
    };
    (config, event_links(settings, management_port))
}

/// The host part of `HOST:PORT`, for the log line.
fn host_of(addr: &str) -> &str {
    addr.rsplit_once(':').map_or(addr, |(host, _)| host)
}

/// Where links point ([`licenses_http::origin`]): `server.public_base_url`, each API's own,
/// and `server.trusted_proxies`.
fn public_origins(server: &settings::ServerSettings) -> PublicOrigins {
    PublicOrigins::new()
        .with_api(licenses_api_user::PREFIX, server.user_public_base_url())
        .with_api(
            licenses_api_management::PREFIX,
            server.management_public_base_url(),
        )
        .with_api(
            licenses_console::PREFIX,
            server.management_public_base_url(),
        )
        .with_trusted_proxies(server.trusted_proxies())
}

/// A listener open beyond loopback without a public base URL links its answers to its own
/// address (a stranger's `Host` is never used): say how to do better.
fn warn_without_public_base_url(server: &settings::ServerSettings) {
    for (key, addr, base) in [
        (
            "server.user_addr",
            &server.user_addr,
            server.user_public_base_url(),
        ),
        (
            "server.management_addr",
            &server.management_addr,
            server.management_public_base_url(),
        ),
    ] {
        let loopback = addr
            .parse::<std::net::SocketAddr>()
            .map_or(host_of(addr) == "localhost", |a| a.ip().is_loopback());
        if base.is_none() && !loopback {
            tracing::warn!(
                listener = key,
                addr = %addr,
                "server.public_base_url is not set: links and Location point at the listener's \
                 address unless a trusted proxy (server.trusted_proxies) names the host"
            );
        }
    }
}

/// One actix-web server on `listener`: request ids, logging and metrics, the security
/// headers, the body bounds, the health endpoints (answered from `ready`), the APIs it
/// serves, and `GET /metrics` where the management API is. It ignores signals:
/// [`Application::run_until`] stops every server at once.
fn http_server(
    listener: TcpListener,
    serves: Serves,
    services: &Services,
    ready: &Arc<health::ReadyCache>,
) -> Result<Server, StartError> {
    let addr = listener
        .local_addr()
        .map_or_else(|_| "?".to_owned(), |a| a.to_string());
    let key = match serves {
        Serves::Management => "server.management_addr",
        Serves::User | Serves::Both => "server.user_addr",
    };
    let grace_secs = services.settings.server.shutdown_grace_secs;
    let blocking_threads = usize::try_from(services.settings.database.pool_size)
        .unwrap_or(usize::MAX)
        .max(1);
    let client_timeout = services.settings.server.client_timeout();
    let body_timeouts = limits::BodyTimeouts {
        idle: client_timeout,
        deadline: services.settings.server.body_deadline(),
    };
    let origins = web::Data::new(public_origins(&services.settings.server));
    let ready = Arc::clone(ready);
    let services = services.clone();
    let server = HttpServer::new(move || {
        actix_web::App::new()
            .app_data(web::Data::from(Arc::clone(&services.metrics)))
            .app_data(web::Data::new(services.rate_limits.clone()))
            .app_data(web::Data::new(body_timeouts))
            .app_data(origins.clone())
            .app_data(web::Data::from(Arc::clone(&services.consistency)))
            .wrap(from_fn(consistency::read_your_writes))
            .wrap(from_fn(limits::body_timeouts))
            .wrap(from_fn(licenses_http::security_headers))
            .wrap(TracingLogger::<telemetry::RequestSpans>::new())
            .wrap(from_fn(metrics::record))
            .wrap(from_fn(telemetry::request_id))
            .configure(|cfg| health::routes(cfg, Arc::clone(&ready)))
            .configure(|cfg| {
                if serves != Serves::Management {
                    user_routes(cfg, &services);
                }
                if serves != Serves::User {
                    metrics::routes(cfg);
                    management_routes(cfg, &services);
                }
            })
            .default_service(web::to(no_such_endpoint))
    })
    // Slow clients: the request head within `server.client_timeout_ms` (else 408), and idle
    // keep-alive connections closed after as long (a body's chunks: `limits`).
    .client_request_timeout(client_timeout)
    .client_disconnect_timeout(client_timeout)
    .keep_alive(client_timeout)
    // The store runs each query on the blocking pool, at most `pool_size` at once: more
    // threads would only wait for a connection.
    .worker_max_blocking_threads(blocking_threads)
    .shutdown_timeout(grace_secs)
    .disable_signals()
    .listen(listener)
    .map_err(|source| StartError::Listen { key, addr, source })?;
    Ok(server.run())
}

/// Any path outside the health endpoints and the APIs: a JSON:API 404, like the APIs' own.
async fn no_such_endpoint() -> Result<actix_web::HttpResponse, ApiError> {
    Err(ApiError::not_found("no such endpoint"))
}

/// Completes on SIGINT (Ctrl-C) or SIGTERM.
async fn shutdown_signal() {
    let interrupt = async {
        if let Err(error) = tokio::signal::ctrl_c().await {
            tracing::warn!(%error, "cannot listen for SIGINT");
            std::future::pending::<()>().await;
        }
    };
    #[cfg(unix)]
    let terminate = async {
        use tokio::signal::unix::{SignalKind, signal};
        match signal(SignalKind::terminate()) {
            Ok(mut term) => {
                term.recv().await;
            }
            Err(error) => {
                tracing::warn!(%error, "cannot listen for SIGTERM");
                std::future::pending::<()>().await;
            }
        }
    };
    #[cfg(not(unix))]
    let terminate = std::future::pending::<()>();
    tokio::select! {
        () = interrupt => tracing::info!("SIGINT received"),
        () = terminate => tracing::info!("SIGTERM received"),
    }
}
