//! The one helper integration tests start the service with: [`spawn_app`] builds the
//! [`Application`] from `config/test.toml` against a database of its own (PostgreSQL or
//! SQLite, from licenses-testkit), on free ports, in the background of the test's runtime.
//! The database is dropped when the [`TestApp`] is.
//!
//! ```ignore
//! mod support;
//! use support::{spawn_app, Backend};
//!
//! #[tokio::test]
//! async fn something() {
//!     let app = spawn_app(Backend::Sqlite).await;
//!     let response = app.client.get(app.user("/health/live")).send().await.unwrap();
//! }
//! ```
//!
//! Set `TEST_LOG=1` to see the service's logs.

// Each test file uses only some of these helpers.
#![allow(dead_code)]

pub mod jsonapi;
pub mod management;
pub mod receiver;

/// Runs each named `async fn(Backend)` as two tests, `postgres::NAME` and `sqlite::NAME`, so
/// that every rule is checked on both backends.
#[macro_export]
macro_rules! on_both_backends {
    ($($test:ident),* $(,)?) => {
        mod postgres {
            $(#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
            async fn $test() { super::$test(super::Backend::Postgres).await })*
        }
        mod sqlite {
            $(#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
            async fn $test() { super::$test(super::Backend::Sqlite).await })*
        }
    };
}

use std::path::PathBuf;
use std::time::Duration;

use licenses::settings::{self, ConfigSources};
use licenses::{Application, Settings, StartError};
use licenses_testkit::TestDatabase;
use tokio::sync::oneshot;
use tokio::task::JoinHandle;

pub use licenses_store::Backend;

/// The management API key of `config/test.toml` (`Authorization: Apikey …`).
pub const MANAGEMENT_KEY: &str = settings::DEV_MANAGEMENT_KEY;

/// The HS256 secret user tokens are verified with under `config/test.toml`.
pub const TOKEN_SECRET: &str = settings::DEV_TOKEN_SECRET;

/// A running service and what a test needs to talk to it.
pub struct TestApp {
    /// `http://127.0.0.1:PORT` of the user API listener.
    pub user_url: String,
    /// `http://127.0.0.1:PORT` of the management API listener (the user one when shared).
    pub management_url: String,
    /// A client for both, with a timeout and no proxy.
    pub client: reqwest::Client,
    /// The settings the service was built with.
    pub settings: Settings,
    pub backend: Backend,
    stop: Option<oneshot::Sender<()>>,
    running: Option<JoinHandle<Result<(), StartError>>>,
    /// Declared last: dropped after the service is told to stop.
    database: Option<TestDatabase>,
}

impl std::fmt::Debug for TestApp {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("TestApp")
            .field("user_url", &self.user_url)
            .field("management_url", &self.management_url)
            .field("backend", &self.backend)
            .finish_non_exhaustive()
    }
}

/// The directory of the repository's configuration files.
pub fn config_dir() -> PathBuf {
    PathBuf::from(env!("CARGO_MANIFEST_DIR")).join("config")
}

/// `config/default.toml` + `config/test.toml`, without any environment override.
pub fn test_settings() -> Settings {
    settings::load(&ConfigSources::for_environment(config_dir(), "test"))
        .unwrap_or_else(|e| panic!("config/test.toml does not load: {e}"))
}

/// Starts the service on `backend`, with the test settings.
pub async fn spawn_app(backend: Backend) -> TestApp {
    spawn_app_with(backend, |_| {}).await
}

/// Starts the service on `backend`, with the test settings changed by `configure` (the
/// database URL is already the test database's).
pub async fn spawn_app_with(backend: Backend, configure: impl FnOnce(&mut Settings)) -> TestApp {
    spawn_adjusted(backend, configure, |application| application).await
}

/// [`spawn_app_with`], the application adjusted by `adjust` before it runs (e.g.
/// [`Application::without_delivery_worker`]).
pub async fn spawn_adjusted(
    backend: Backend,
    configure: impl FnOnce(&mut Settings),
    adjust: impl FnOnce(Application) -> Application,
) -> TestApp {
    init_test_logs();
    let database = tokio::task::spawn_blocking(move || match backend {
        Backend::Postgres => TestDatabase::postgres(),
        Backend::Sqlite => TestDatabase::sqlite(),
    })
    .await
    .unwrap_or_else(|e| std::panic::resume_unwind(e.into_panic()));
    let mut settings = test_settings();
    settings.database.url = database.url().to_owned();
    configure(&mut settings);
    let application = adjust(
        Application::build(settings.clone())
            .await
            .unwrap_or_else(|e| panic!("the service does not start: {e}")),
    );
    let user_url = format!("http://127.0.0.1:{}", application.user_port());
    let management_url = format!("http://127.0.0.1:{}", application.management_port());
    let (stop, stopped) = oneshot::channel::<()>();
    let running = tokio::spawn(application.run_until(async move {
        // A dropped sender stops the service too.
        let _ = stopped.await;
    }));
    let client = reqwest::Client::builder()
        .timeout(Duration::from_secs(30))
        .no_proxy()
        .build()
        .unwrap_or_else(|e| panic!("cannot build the HTTP client: {e}"));
    TestApp {
        user_url,
        management_url,
        client,
        settings,
        backend,
        stop: Some(stop),
        running: Some(running),
        database: Some(database),
    }
}

impl TestApp {
    /// The URL of `path` on the user API listener.
    pub fn user(&self, path: &str) -> String {
        format!("{}{path}", self.user_url)
    }

    /// The URL of `path` on the management API listener.
    pub fn management(&self, path: &str) -> String {
        format!("{}{path}", self.management_url)
    }

    /// `GET url`, panicking when no answer comes.
    pub async fn get(&self, url: &str) -> reqwest::Response {
        self.client
            .get(url)
            .send()
            .await
            .unwrap_or_else(|e| panic!("GET {url}: {e}"))
    }

    /// A user token for `user`, signed with the test secret, valid for an hour.
    pub fn user_token(&self, user: &str) -> String {
        licenses_api_user::mint_token(TOKEN_SECRET, user, &[], 3600, None, None)
            .unwrap_or_else(|e| panic!("cannot mint a token for {user}: {e}"))
    }

    /// Drops the test database while the service runs, as if the database went away.
    pub fn drop_database(&mut self) {
        drop(self.database.take());
    }

    /// Stops the service gracefully and waits until it has stopped.
    pub async fn stop(mut self) -> Result<(), StartError> {
        if let Some(stop) = self.stop.take() {
            let _ = stop.send(());
        }
        match self.running.take() {
            Some(running) => running
                .await
                .unwrap_or_else(|e| std::panic::resume_unwind(e.into_panic())),
            None => Ok(()),
        }
    }
}

impl Drop for TestApp {
    fn drop(&mut self) {
        if let Some(stop) = self.stop.take() {
            let _ = stop.send(());
        }
    }
}

/// Installs a log subscriber writing through the test harness when `TEST_LOG` is set.
fn init_test_logs() {
    if std::env::var_os("TEST_LOG").is_some() {
        let _ = tracing_subscriber::fmt()
            .with_env_filter(
                tracing_subscriber::EnvFilter::try_from_default_env()
                    .unwrap_or_else(|_| tracing_subscriber::EnvFilter::new("info")),
            )
            .with_test_writer()
            .try_init();
    }
}

/// The `licenses` binary (`APP_ENV=test`) on a SQLite database `name` in `dir`, logging every
/// line as JSON at debug level: for the tests that read the logs.
pub fn json_logging_service(dir: &std::path::Path, name: &str) -> licenses_testkit::ServiceProcess {
    licenses_testkit::ServiceProcess::builder(env!("CARGO_BIN_EXE_licenses"))
        .env("APP_ENV", "test")
        .env("LICENSES_CONFIG_DIR", config_dir())
        .env(
            "LICENSES__DATABASE__URL",
            format!("sqlite://{}/{name}", dir.display()),
        )
        .env("LICENSES__LOG__FORMAT", "json")
        .env("RUST_LOG", "debug")
        .spawn()
}

/// A client for a service process: no proxy, 10 s a request.
pub fn process_client() -> reqwest::Client {
    reqwest::Client::builder()
        .timeout(std::time::Duration::from_secs(10))
        .no_proxy()
        .build()
        .expect("an HTTP client")
}
