//! The support console: server-rendered HTML pages under `/console/` on the management
//! listener, for the operator's support staff (docs/console.md).
//!
//! A support agent signs in with a management key ([`ManagementKeys`], checked exactly as the
//! management API checks it); the key stays on the server, in a session ([`session`]) named by
//! an opaque, random cookie. Every request re-checks the key, so a key removed from the
//! configuration loses the console at once. Every state-changing request is a POST form with
//! the session's CSRF token, from this listener's origin ([`guard`]); every action has a
//! confirmation page (GET, changes nothing) and is performed as
//! `Actor::ManagementKey(<key name>)`, so the audit trail names the key.
//!
//! One module per page or group of actions, each mounting its routes in [`routes`]:
//! - [`pages::sign_in`]: sign in and out;
//! - [`pages::home`]: find a user;
//! - [`pages::users`]: a user's licenses and entitlement grid, and the explain form;
//! - [`pages::explain`]: why the user may or may not watch a channel's service;
//! - [`pages::licenses`]: revoke and grant;
//! - [`pages::suspension`]: suspend a license and lift the suspension;
//! - [`pages::audit`]: the audit trail of a license;
//! - [`pages::products`]: the catalogue;
//! - [`pages::irdeto`]: the Irdeto backlog and retries.

pub mod dates;
mod error;
pub mod guard;
mod html;
mod pages;
pub mod session;

use std::sync::Arc;
use std::time::Duration;

use actix_web::middleware::{DefaultHeaders, from_fn};
use actix_web::{HttpResponse, web};
use licenses_api_management::ManagementKeys;
use licenses_app::App;
use licenses_http::{Endpoint, Routes};

pub use error::ConsoleError;
pub use session::SessionStore;

/// Where the console lives on the management listener (its pages are under `/console/`).
pub const PREFIX: &str = "/console";

/// The name of the session cookie.
pub const COOKIE: &str = "licenses_console";

/// How the console is set up (`console.*`, and whether its cookie is `Secure`).
#[derive(Debug, Clone)]
pub struct ConsoleConfig {
    /// A session unused this long is over.
    pub idle_timeout: Duration,
    /// A session is over this long after sign-in, however busy.
    pub absolute_timeout: Duration,
    /// Most sessions at once; beyond, the least recently used is ended.
    pub max_sessions: usize,
    /// Whether the cookie is `Secure`: the listener is reached over HTTPS (its public base
    /// URL is `https://`).
    pub secure_cookie: bool,
}

impl Default for ConsoleConfig {
    fn default() -> Self {
        Self {
            idle_timeout: Duration::from_secs(30 * 60),
            absolute_timeout: Duration::from_secs(8 * 3600),
            max_sessions: 1000,
            secure_cookie: false,
        }
    }
}

/// What every console handler shares: the use cases, the keys, the sessions.
#[derive(Debug, Clone)]
pub struct Console {
    pub(crate) app: App,
    pub(crate) keys: ManagementKeys,
    pub(crate) sessions: Arc<SessionStore>,
    pub(crate) secure_cookie: bool,
}

impl Console {
    /// The console over `app`, signing in with `keys`. Build it once per process: its
    /// sessions are shared by every worker.
    pub fn new(app: App, keys: ManagementKeys, config: &ConsoleConfig) -> Self {
        Self {
            app,
            keys,
            sessions: Arc::new(SessionStore::new(
                config.idle_timeout,
                config.absolute_timeout,
                config.max_sessions,
            )),
            secure_cookie: config.secure_cookie,
        }
    }
}

/// The routes that need a session, declared once: [`configure`] mounts them, [`endpoints`]
/// lists them.
fn routes() -> Routes {
    let routes = Routes::new()
        .get("/", pages::home::home)
        .post("/sign-out", pages::sign_in::sign_out);
    let routes = pages::users::routes(routes);
    let routes = pages::explain::routes(routes);
    let routes = pages::licenses::routes(routes);
    let routes = pages::suspension::routes(routes);
    let routes = pages::audit::routes(routes);
    let routes = pages::products::routes(routes);
    pages::irdeto::routes(routes)
}

/// The routes that answer without a session: the sign-in form and the style sheet.
pub const PUBLIC_PATHS: [&str; 2] = ["/console/sign-in", "/console/console.css"];

/// Every console route with its full path: those that need a session, then the public ones
/// of [`PUBLIC_PATHS`].
pub fn endpoints() -> Vec<Endpoint> {
    let mut all = routes().endpoints(PREFIX);
    for (method, path) in [
        (actix_web::http::Method::GET, PUBLIC_PATHS[0]),
        (actix_web::http::Method::POST, PUBLIC_PATHS[0]),
        (actix_web::http::Method::GET, PUBLIC_PATHS[1]),
    ] {
        all.push(Endpoint {
            method,
            path: path.to_owned(),
        });
    }
    all
}

/// Mounts the console under [`PREFIX`].
pub fn configure(console: Console) -> impl FnOnce(&mut web::ServiceConfig) {
    move |cfg| {
        let guarded = routes().into_resources().into_iter().fold(
            web::scope("").wrap(from_fn(guard::require_session)),
            |scope, resource| scope.service(resource),
        );
        cfg.service(
            web::scope(PREFIX)
                .app_data(web::Data::new(console))
                .app_data(web::FormConfig::default().error_handler(|e, _| {
                    ConsoleError::BadRequest(format!("the form is not complete: {e}")).into()
                }))
                .app_data(
                    web::PathConfig::default()
                        .error_handler(|_, _| ConsoleError::NotFound("no such page".into()).into()),
                )
                .wrap(from_fn(guard::same_origin_posts))
                .wrap(
                    DefaultHeaders::new()
                        .add((
                            "Content-Security-Policy",
                            "default-src 'none'; style-src 'self'; img-src 'self'; \
                             form-action 'self'; frame-ancestors 'none'; base-uri 'none'",
                        ))
                        .add(("X-Frame-Options", "DENY"))
                        // Not `no-referrer`: under it a browser sends `Origin: null` with
                        // the console's own forms, and same_origin_posts refuses them.
                        .add(("Referrer-Policy", "same-origin")),
                )
                .service(
                    web::resource("/sign-in")
                        // A wrong key is answered 401: counted against
                        // `limits.auth_failures_per_minute`, as the APIs count theirs.
                        .wrap(from_fn(licenses_http::limit_auth_failures))
                        .route(web::get().to(pages::sign_in::form))
                        .route(web::post().to(pages::sign_in::sign_in)),
                )
                .service(web::resource("/console.css").route(web::get().to(html::style_sheet)))
                .service(web::resource("").route(web::get().to(to_home)))
                .service(guarded.default_service(web::to(not_found))),
        );
    }
}

/// `/console` without its slash: the cookie's path is `/console/`.
async fn to_home() -> HttpResponse {
    html::see_other("/console/")
}

async fn not_found() -> Result<HttpResponse, ConsoleError> {
    Err(ConsoleError::NotFound("no such page in the console".into()))
}

#[cfg(test)]
mod tests {
    use std::time::Instant;

    use actix_web::http::StatusCode;
    use actix_web::http::header;
    use actix_web::test as atest;
    use licenses_app::ports::{
        MockIdempotencyStore, MockLicenseStore, MockProductStore, StoreError,
    };
    use licenses_app::{Ports, SystemClock, UuidV7Ids};

    use super::*;

    const KEY: &str = "the-support-key";

    fn app(licenses: MockLicenseStore) -> App {
        App::new(Ports {
            products: Arc::new(MockProductStore::new()),
            licenses: Arc::new(licenses),
            idempotency: Arc::new(MockIdempotencyStore::new()),
            clock: Arc::new(SystemClock),
            ids: Arc::new(UuidV7Ids),
        })
    }

    fn keys() -> ManagementKeys {
        let hash = hex::encode(<sha2::Sha256 as sha2::Digest>::digest(KEY.as_bytes()));
        ManagementKeys::new([("support".to_owned(), hash)]).expect("hex")
    }

    fn console(licenses: MockLicenseStore) -> Console {
        Console::new(app(licenses), keys(), &ConsoleConfig::default())
    }

    fn cookie(id: &str) -> (header::HeaderName, String) {
        (header::COOKIE, format!("{COOKIE}={id}"))
    }

    #[actix_web::test]
    async fn a_session_whose_key_was_removed_is_ended_at_once() {
        let console = console(MockLicenseStore::new());
        // A session of a key that is no longer configured.
        let id = console.sessions.create("a-removed-key", Instant::now());
        let service =
            atest::init_service(actix_web::App::new().configure(configure(console.clone()))).await;
        let r = atest::call_service(
            &service,
            atest::TestRequest::get()
                .uri("/console/")
                .insert_header(cookie(&id))
                .to_request(),
        )
        .await;
        assert_eq!(r.status(), StatusCode::SEE_OTHER);
        assert_eq!(
            r.headers()
                .get(header::LOCATION)
                .and_then(|v| v.to_str().ok()),
            Some("/console/sign-in")
        );
        assert!(
            r.headers()
                .get(header::SET_COOKIE)
                .and_then(|v| v.to_str().ok())
                .is_some_and(|c| c.contains("Max-Age=0"))
        );
        assert!(console.sessions.is_empty(), "the session is gone");
    }

    #[actix_web::test]
    async fn a_storage_outage_is_a_503_page() {
        let mut licenses = MockLicenseStore::new();
        licenses
            .expect_find()
            .returning(|_| Err(StoreError::Unavailable("down".into())));
        let console = console(licenses);
        let id = console.sessions.create(KEY, Instant::now());
        let service =
            atest::init_service(actix_web::App::new().configure(configure(console.clone()))).await;
        let r = atest::call_service(
            &service,
            atest::TestRequest::get()
                .uri("/console/users/u-1")
                .insert_header(cookie(&id))
                .to_request(),
        )
        .await;
        assert_eq!(r.status(), StatusCode::SERVICE_UNAVAILABLE);
        assert!(r.headers().contains_key(header::RETRY_AFTER));
        let body = atest::read_body(r).await;
        let body = String::from_utf8_lossy(&body);
        assert!(body.contains("<h1>Service Unavailable</h1>"), "{body}");
        assert!(!body.contains("down"), "no internal message: {body}");
    }

    #[actix_web::test]
    async fn without_a_session_a_page_sends_to_sign_in_and_a_post_is_refused() {
        let service = atest::init_service(
            actix_web::App::new().configure(configure(console(MockLicenseStore::new()))),
        )
        .await;
        let r = atest::call_service(
            &service,
            atest::TestRequest::get()
                .uri("/console/products")
                .to_request(),
        )
        .await;
        assert_eq!(r.status(), StatusCode::SEE_OTHER);
        let r = atest::call_service(
            &service,
            atest::TestRequest::post()
                .uri("/console/licenses/l-1/revoke")
                .set_form([("csrf", "x")])
                .to_request(),
        )
        .await;
        assert_eq!(r.status(), StatusCode::FORBIDDEN);
        let r = atest::call_service(
            &service,
            atest::TestRequest::get()
                .uri("/console/sign-in")
                .to_request(),
        )
        .await;
        assert_eq!(r.status(), StatusCode::OK);
        let body = atest::read_body(r).await;
        let body = String::from_utf8_lossy(&body);
        assert!(
            body.contains("<label for=\"key\">Management key</label>"),
            "{body}"
        );
    }

    #[test]
    fn every_route_is_listed_once() {
        let endpoints = endpoints();
        let mut seen = std::collections::HashSet::new();
        for e in &endpoints {
            assert!(e.path.starts_with("/console/"), "{e}");
            assert!(seen.insert(e.to_string()), "{e} twice");
        }
    }
}
