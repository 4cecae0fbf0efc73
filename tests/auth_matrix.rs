//! The authorization matrix: walks both route tables (`licenses_api_user::endpoints()` and
//! `licenses_api_management::endpoints()`, the same tables that mount the routes, so a new
//! route is covered the day it is added) and proves, for every route:
//!
//! - no credentials → 401 with `WWW-Authenticate`;
//! - a wrong or unknown credential → 401;
//! - the other API's credential (the management key on the user API, a user token on the
//!   management API) → 401;
//! - on the user API, another user's valid token → 403 on every route under `/users/{user_id}`;
//! - none of the refused requests (each sent with a valid body) changed anything;
//! - with the right credential, the route answers something else than 401/403, so a route that
//!   refuses everyone is noticed too.
//!
//! And that the only paths answering without credentials are the public ones of
//! [`PUBLIC_ROUTES`], each on its own listener.
//!
//! The scope matrix: every management route × a key of each combination of scopes
//! ([`SCOPED_KEYS`]): 403 `insufficient_scope` (changing nothing) where the key lacks the
//! route's scope, anything but 401/403 where it has it.

mod support;

use reqwest::{Method, StatusCode};
use serde_json::{Value, json};
use support::jsonapi::{JSONAPI, Reply};
use support::{Backend, MANAGEMENT_KEY, TestApp, spawn_app, spawn_app_with};

const API: &str = licenses_api_user::PREFIX;
const MANAGEMENT: &str = licenses_api_management::PREFIX;

/// The owner of the user-API paths walked, and a user who is not them.
const OWNER: &str = "41";
const INTRUDER: &str = "42";

#[derive(Debug, Clone, Copy, PartialEq, Eq)]
enum Listener {
    User,
    Management,
}

/// THE list of routes that answer without credentials, each on the listener that serves it.
/// Anything not listed here must refuse a request without credentials. Keep it short, and
/// change it only on purpose:
/// - health, on both listeners (load balancers and orchestrators probe them without secrets);
/// - Prometheus metrics, on the management listener only (never exposed to client apps: the
///   user listener answers 404, asserted in [`metrics_are_not_on_the_user_listener`]);
/// - each API's OpenAPI document and its rendered docs, on that API's listener;
/// - the support console's sign-in form and style sheet, on the management listener (every
///   other console route needs a session: tests/console.rs walks `licenses_console::endpoints()`).
const PUBLIC_ROUTES: &[(Listener, &str)] = &[
    (Listener::User, "/health/live"),
    (Listener::User, "/health/ready"),
    (Listener::Management, "/health/live"),
    (Listener::Management, "/health/ready"),
    (Listener::Management, "/metrics"),
    (Listener::User, "/api/license/v4/openapi.json"),
    (Listener::User, "/api/license/v4/docs"),
    (
        Listener::Management,
        "/api/license/management/v4/openapi.json",
    ),
    (Listener::Management, "/api/license/management/v4/docs"),
    (Listener::Management, "/console/sign-in"),
    (Listener::Management, "/console/console.css"),
];

fn is_public(listener: Listener, path: &str) -> bool {
    PUBLIC_ROUTES.contains(&(listener, path))
}

/// What a request carries in `Authorization`.
#[derive(Debug, Clone)]
enum Credential {
    None,
    Header(String),
}

fn bearer(token: &str) -> Credential {
    Credential::Header(format!("Bearer {token}"))
}

fn apikey(key: &str) -> Credential {
    Credential::Header(format!("Apikey {key}"))
}

/// A well-formed token for `OWNER`, signed with a secret the service does not know.
fn forged_token() -> String {
    licenses_api_user::mint_token(
        "not-the-service-secret-but-long-enough-0123456789",
        OWNER,
        &[],
        3600,
        None,
        None,
    )
    .expect("a token")
}

/// The ids the path templates are filled with: all exist, so a refusal can only come from
/// the credential, and each destructive route gets its own spare resource.
#[derive(Debug)]
struct Fixtures {
    product: String,
    spare_product: String,
    license: String,
    spare_license: String,
    batch_license: String,
    webhook: String,
    spare_webhook: String,
}

impl Fixtures {
    async fn create(app: &TestApp) -> Self {
        let product = create(app, "/products", product_doc("Matrix")).await;
        let spare_product = create(app, "/products", product_doc("Spare")).await;
        let mut licenses = Vec::new();
        for _ in 0..3 {
            licenses.push(create(app, "/licenses", license_doc(OWNER, &product)).await);
        }
        let [license, spare_license, batch_license] =
            <[String; 3]>::try_from(licenses).expect("three licenses");
        // Registered disabled: an enabled endpoint would get the licenses' events, and the
        // webhook worker's failed attempts (there is no such host) would change its
        // `failing_since` while the refused requests run, whatever they do.
        let webhook = create(
            app,
            "/webhooks",
            disabled_webhook_doc("https://hooks.example.com/a"),
        )
        .await;
        let spare_webhook = create(
            app,
            "/webhooks",
            disabled_webhook_doc("https://hooks.example.com/b"),
        )
        .await;
        Self {
            product,
            spare_product,
            license,
            spare_license,
            batch_license,
            webhook,
            spare_webhook,
        }
    }

    /// `template` with its segments filled: destructive routes get the spare resources.
    fn fill(&self, method: &Method, template: &str) -> String {
        let destructive = *method == Method::DELETE;
        template
            .replace("{user_id}", OWNER)
            .replace(
                "{product_id}",
                if destructive {
                    &self.spare_product
                } else {
                    &self.product
                },
            )
            .replace(
                "{license_id}",
                if destructive {
                    &self.spare_license
                } else {
                    &self.license
                },
            )
            .replace(
                "{webhook_id}",
                if destructive {
                    &self.spare_webhook
                } else {
                    &self.webhook
                },
            )
            .replace("{job_id}", "1")
            .replace("{delivery_id}", "1")
            // The explain call needs its question (without it: 400, which proves nothing).
            .replace("/access", "/access?channel=42&service=live")
    }

    /// A body the route would accept (so that a route letting a refused request through would
    /// show as a changed state), or none.
    fn body(&self, listener: Listener, method: &Method, path: &str) -> Option<Value> {
        if *method != Method::POST && *method != Method::PATCH {
            return None;
        }
        let template_free = path.trim_end_matches('/');
        Some(match (listener, method.as_str()) {
            (Listener::User, "POST") => json!({"data": {"type": "License",
                "attributes": {"payment_method": "billing"},
                "relationships": {"product": {"data": {"type": "Product", "id": self.product}}}}}),
            (Listener::Management, "PATCH") if template_free.contains("/webhooks/") => {
                json!({"data": {"type": "Webhook", "id": self.webhook,
                    "attributes": {"description": "Changed"}}})
            }
            (Listener::Management, _) if template_free.ends_with("/webhooks") => {
                webhook_doc("https://hooks.example.com/intruder")
            }
            (Listener::Management, "PATCH") => json!({"data": {"type": "Product",
                "id": self.product, "attributes": {"title": "Changed"}}}),
            (Listener::Management, _) if template_free.ends_with("/products") => {
                product_doc("Intruder's")
            }
            (Listener::Management, _) if template_free.ends_with("/licenses") => {
                license_doc(OWNER, &self.product)
            }
            (Listener::Management, _) if template_free.ends_with("/batch_create") => {
                json!({"data": [license_resource(OWNER, &self.product)]})
            }
            (Listener::Management, _) if template_free.ends_with("/batch_delete") => {
                json!({"data": [{"type": "License", "id": self.batch_license}]})
            }
            // Anything else (an action without a document): an empty one.
            _ => json!({}),
        })
    }
}

fn product_doc(title: &str) -> Value {
    json!({"data": {"type": "Product", "attributes": {"title": title, "description": "d",
        "type": "CHANNEL", "is_premium": true, "price_record": {"amount": 499, "currency": "EUR"},
        "license_defaults": {"duration": 86_400, "auto_renew": false}},
        "relationships": {"live": {"data": [{"type": "Channel", "id": "7"}]}}}})
}

fn webhook_doc(url: &str) -> Value {
    json!({"data": {"type": "Webhook", "attributes": {"url": url}}})
}

fn disabled_webhook_doc(url: &str) -> Value {
    json!({"data": {"type": "Webhook", "attributes": {"url": url, "enabled": false}}})
}

fn license_resource(user: &str, product: &str) -> Value {
    json!({"type": "License", "attributes": {}, "relationships": {
        "user": {"data": {"type": "User", "id": user}},
        "product": {"data": {"type": "Product", "id": product}}}})
}

fn license_doc(user: &str, product: &str) -> Value {
    json!({"data": license_resource(user, product)})
}

async fn send(
    app: &TestApp,
    listener: Listener,
    method: Method,
    path: &str,
    credential: &Credential,
    body: Option<&Value>,
) -> Reply {
    let url = match listener {
        Listener::User => app.user(path),
        Listener::Management => app.management(path),
    };
    let mut req = app.client.request(method.clone(), &url);
    if let Credential::Header(value) = credential {
        req = req.header("Authorization", value);
    }
    if let Some(body) = body {
        // A fresh key each time: a replayed answer must never pass for an authorized one.
        req = req
            .header("Content-Type", JSONAPI)
            .header("Idempotency-Key", uuid_like())
            .body(serde_json::to_vec(body).expect("json"));
    }
    let response = req
        .send()
        .await
        .unwrap_or_else(|e| panic!("{method} {url}: {e}"));
    Reply::read(response).await
}

/// Status and body of an answer that need not be JSON:API (health, metrics, docs, 404s
/// outside the APIs).
async fn send_raw(
    app: &TestApp,
    listener: Listener,
    method: Method,
    path: &str,
    credential: &Credential,
) -> (StatusCode, String) {
    let url = match listener {
        Listener::User => app.user(path),
        Listener::Management => app.management(path),
    };
    let mut req = app.client.request(method.clone(), &url);
    if let Credential::Header(value) = credential {
        req = req.header("Authorization", value);
    }
    let response = req
        .send()
        .await
        .unwrap_or_else(|e| panic!("{method} {url}: {e}"));
    let status = response.status();
    (status, response.text().await.unwrap_or_default())
}

fn uuid_like() -> String {
    use std::sync::atomic::{AtomicU64, Ordering};
    static NEXT: AtomicU64 = AtomicU64::new(0);
    format!("auth-matrix-{}", NEXT.fetch_add(1, Ordering::Relaxed))
}

/// Creates a resource through the management API; its id.
async fn create(app: &TestApp, path: &str, doc: Value) -> String {
    let r = send(
        app,
        Listener::Management,
        Method::POST,
        &format!("{MANAGEMENT}{path}"),
        &apikey(MANAGEMENT_KEY),
        Some(&doc),
    )
    .await;
    assert_eq!(r.status, StatusCode::CREATED, "POST {path}: {}", r.json);
    r.json["data"]["id"].as_str().expect("an id").to_owned()
}

/// Everything a request could have changed, as the management API reads it: every product,
/// every license (all pages), and the entitlement-job backlog.
async fn state(app: &TestApp) -> Vec<Value> {
    let mut state = Vec::new();
    for path in ["/products", "/licenses", "/webhooks"] {
        let mut url = Some(app.management(&format!("{MANAGEMENT}{path}")));
        while let Some(u) = url.take() {
            let r = app
                .client
                .get(&u)
                .header("Authorization", format!("Apikey {MANAGEMENT_KEY}"))
                .send()
                .await
                .expect("an answer");
            let r = Reply::read(r).await;
            assert_eq!(r.status, StatusCode::OK, "GET {u}: {}", r.json);
            state.push(r.json["data"].clone());
            url = r.json["links"]["next"].as_str().map(|next| {
                if next.starts_with("http") {
                    next.to_owned()
                } else {
                    app.management(next)
                }
            });
        }
    }
    let backlog = send(
        app,
        Listener::Management,
        Method::GET,
        &format!("{MANAGEMENT}/irdeto/backlog"),
        &apikey(MANAGEMENT_KEY),
        None,
    )
    .await;
    state.push(backlog.json);
    state
}

/// One route of one API, its template filled.
#[derive(Debug)]
struct Case {
    listener: Listener,
    method: Method,
    template: String,
    path: String,
    body: Option<Value>,
}

fn cases(fixtures: &Fixtures) -> Vec<Case> {
    let user = licenses_api_user::endpoints()
        .into_iter()
        .map(|e| (Listener::User, e));
    let management = licenses_api_management::endpoints()
        .into_iter()
        .map(|e| (Listener::Management, e));
    user.chain(management)
        .map(|(listener, e)| {
            // actix and reqwest use different versions of `http`.
            let method = Method::from_bytes(e.method.as_str().as_bytes()).expect("a method");
            let path = fixtures.fill(&method, &e.path);
            assert!(!path.contains('{'), "{e}: a segment is left unfilled");
            Case {
                listener,
                body: fixtures.body(listener, &method, &e.path),
                method,
                template: e.path,
                path,
            }
        })
        .collect()
}

fn assert_unauthorized(r: &Reply, what: &str) {
    assert_eq!(r.status, StatusCode::UNAUTHORIZED, "{what}: {}", r.json);
    assert!(
        r.header("www-authenticate").is_some(),
        "{what}: a 401 without WWW-Authenticate"
    );
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn every_route_refuses_the_wrong_credentials_and_serves_the_right_one() {
    let app = spawn_app(Backend::Sqlite).await;
    let fixtures = Fixtures::create(&app).await;
    let cases = cases(&fixtures);
    let owner = app.user_token(OWNER);
    let intruder = app.user_token(INTRUDER);
    let before = state(&app).await;

    let mut checked = 0usize;
    let mut protected = 0usize;
    for case in &cases {
        let Case {
            listener,
            method,
            template,
            path,
            body,
        } = case;
        if is_public(*listener, path) {
            continue;
        }
        protected += 1;
        let mut refused = vec![
            ("no credentials", Credential::None),
            ("an empty Authorization", Credential::Header(String::new())),
            (
                "another scheme",
                Credential::Header("Basic dTpw".to_owned()),
            ),
        ];
        match listener {
            Listener::User => refused.extend([
                ("a token that is no JWT", bearer("not-a-token")),
                (
                    "a token signed with another secret",
                    bearer(&forged_token()),
                ),
                ("the management key", apikey(MANAGEMENT_KEY)),
                ("the management key as a bearer", bearer(MANAGEMENT_KEY)),
            ]),
            Listener::Management => refused.extend([
                ("an unknown key", apikey("wrong-key")),
                (
                    "a key one character off",
                    apikey(&off_by_one(MANAGEMENT_KEY)),
                ),
                ("a user token", bearer(&owner)),
                ("a user token as a key", apikey(&owner)),
            ]),
        }
        for (what, credential) in &refused {
            let r = send(
                &app,
                *listener,
                method.clone(),
                path,
                credential,
                body.as_ref(),
            )
            .await;
            assert_unauthorized(&r, &format!("{listener:?} {method} {template} with {what}"));
            checked += 1;
        }
        if *listener == Listener::User && template.starts_with(&format!("{API}/users/{{user_id}}"))
        {
            let r = send(
                &app,
                *listener,
                method.clone(),
                path,
                &bearer(&intruder),
                body.as_ref(),
            )
            .await;
            assert_eq!(
                r.status,
                StatusCode::FORBIDDEN,
                "{method} {template} with another user's token: {}",
                r.json
            );
            checked += 1;
        }
    }
    assert_eq!(
        state(&app).await,
        before,
        "a refused request changed something"
    );

    // The right credential is let through (in declaration order: destructive routes use
    // spare resources, so the others still find theirs).
    for case in &cases {
        if is_public(case.listener, &case.path) {
            continue;
        }
        let credential = match case.listener {
            Listener::User => bearer(&owner),
            Listener::Management => apikey(MANAGEMENT_KEY),
        };
        let r = send(
            &app,
            case.listener,
            case.method.clone(),
            &case.path,
            &credential,
            case.body.as_ref(),
        )
        .await;
        assert!(
            r.status != StatusCode::UNAUTHORIZED
                && r.status != StatusCode::FORBIDDEN
                && !r.status.is_server_error(),
            "{:?} {} {} refuses the right credential, or fails with it: {} {}",
            case.listener,
            case.method,
            case.template,
            r.status,
            r.json
        );
        checked += 1;
    }

    let user_routes = licenses_api_user::endpoints().len();
    let management_routes = licenses_api_management::endpoints().len();
    assert_eq!(cases.len(), user_routes + management_routes);
    assert!(
        user_routes >= 6 && management_routes >= 16,
        "route tables shrank"
    );
    println!(
        "auth matrix: {} routes ({user_routes} user, {management_routes} management), \
         {protected} protected, {checked} requests checked",
        cases.len()
    );
}

fn off_by_one(key: &str) -> String {
    let mut chars: Vec<char> = key.chars().collect();
    if let Some(last) = chars.last_mut() {
        *last = if *last == 'x' { 'y' } else { 'x' };
    }
    chars.into_iter().collect()
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn only_the_public_routes_answer_without_credentials() {
    let app = spawn_app(Backend::Sqlite).await;
    for (listener, path) in PUBLIC_ROUTES {
        let (status, body) = send_raw(&app, *listener, Method::GET, path, &Credential::None).await;
        assert_eq!(
            status,
            StatusCode::OK,
            "public {listener:?} {path} without credentials: {body}"
        );
    }
    // Paths outside the route tables: under an API's prefix the credential is checked first
    // (401); elsewhere nothing is there (404). Never a success.
    let elsewhere = [
        (Listener::User, format!("{API}/nowhere")),
        (Listener::User, format!("{API}/users/{OWNER}/nowhere")),
        (Listener::User, format!("{API}/")),
        (Listener::User, "/".to_owned()),
        (Listener::User, "/api".to_owned()),
        (Listener::User, format!("{MANAGEMENT}/products")),
        (Listener::Management, format!("{MANAGEMENT}/nowhere")),
        (Listener::Management, format!("{MANAGEMENT}/")),
        (Listener::Management, "/".to_owned()),
        (Listener::Management, format!("{API}/products")),
    ];
    for (listener, path) in &elsewhere {
        for method in [Method::GET, Method::POST, Method::DELETE] {
            let (status, body) =
                send_raw(&app, *listener, method.clone(), path, &Credential::None).await;
            assert!(
                status == StatusCode::UNAUTHORIZED || status == StatusCode::NOT_FOUND,
                "{listener:?} {method} {path} without credentials answers {status}: {body}"
            );
        }
    }
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn metrics_are_not_on_the_user_listener() {
    let app = spawn_app(Backend::Sqlite).await;
    assert_ne!(
        app.user_url, app.management_url,
        "the test settings give each API its own listener"
    );
    let token = bearer(&app.user_token(OWNER));
    for credential in [Credential::None, token] {
        let (status, body) =
            send_raw(&app, Listener::User, Method::GET, "/metrics", &credential).await;
        assert_eq!(
            status,
            StatusCode::NOT_FOUND,
            "GET /metrics on the user listener with {credential:?}: {body}"
        );
    }
}

/// Management keys of every combination of scopes: (the key, its `scopes`, as configured;
/// `None`: the field left out, which means all three).
const SCOPED_KEYS: &[(&str, Option<&[&str]>)] = &[
    ("scope-key-read", Some(&["read"])),
    ("scope-key-write", Some(&["write"])),
    ("scope-key-irdeto", Some(&["irdeto"])),
    ("scope-key-read-write", Some(&["read", "write"])),
    ("scope-key-read-irdeto", Some(&["read", "irdeto"])),
    ("scope-key-write-irdeto", Some(&["write", "irdeto"])),
    ("scope-key-all", Some(&["read", "write", "irdeto"])),
    ("scope-key-unlisted", None),
];

/// Whether a key with `scopes` may call `method template`, as the documentation says it, on
/// its own: `irdeto` for the `/irdeto/` routes, `read` or `write` for GET and HEAD elsewhere,
/// `write` for anything else.
fn scope_allows(scopes: Option<&[&str]>, method: &Method, template: &str) -> bool {
    let has = |s: &str| scopes.is_none_or(|list| list.contains(&s));
    if template.contains("/irdeto/") {
        has("irdeto")
    } else if *method == Method::GET || *method == Method::HEAD {
        has("read") || has("write")
    } else {
        has("write")
    }
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn every_management_route_answers_each_scope_as_it_should() {
    let app = spawn_app_with(Backend::Sqlite, |settings| {
        for (key, scopes) in SCOPED_KEYS {
            let mut entry = licenses::settings::ManagementKey::for_key(key, key);
            if let Some(list) = scopes {
                entry.scopes = list.join("+").parse().expect("scopes");
            }
            settings.auth.management_keys.push(entry);
        }
    })
    .await;
    let fixtures = Fixtures::create(&app).await;
    let cases: Vec<Case> = cases(&fixtures)
        .into_iter()
        .filter(|c| c.listener == Listener::Management && !is_public(c.listener, &c.path))
        .collect();
    let before = state(&app).await;

    let (mut refused, mut allowed) = (0usize, 0usize);
    for case in &cases {
        for (key, scopes) in SCOPED_KEYS {
            if scope_allows(*scopes, &case.method, &case.template) {
                continue;
            }
            let r = send(
                &app,
                case.listener,
                case.method.clone(),
                &case.path,
                &apikey(key),
                case.body.as_ref(),
            )
            .await;
            let what = format!("{} {} with {key}", case.method, case.template);
            assert_eq!(r.status, StatusCode::FORBIDDEN, "{what}: {}", r.json);
            assert_eq!(r.json["errors"][0]["code"], "insufficient_scope", "{what}");
            let detail = r.json["errors"][0]["detail"].as_str().unwrap_or_default();
            assert!(
                !detail.contains(key),
                "{what}: the key in the detail: {detail}"
            );
            assert!(
                ["read", "write", "irdeto"]
                    .iter()
                    .any(|s| detail.contains(&format!("`{s}`"))),
                "{what}: the scope needed is not named: {detail}"
            );
            refused += 1;
        }
    }
    // A path spelt differently for the same route needs the same scope.
    for path in [
        format!("{MANAGEMENT}/%69rdeto/backlog"),
        format!("{MANAGEMENT}/irdet%6F/backlog"),
    ] {
        for key in ["scope-key-read", "scope-key-read-write"] {
            let r = send(
                &app,
                Listener::Management,
                Method::GET,
                &path,
                &apikey(key),
                None,
            )
            .await;
            assert_eq!(
                r.status,
                StatusCode::FORBIDDEN,
                "GET {path} with {key}: {}",
                r.json
            );
            refused += 1;
        }
    }
    assert_eq!(
        state(&app).await,
        before,
        "a request refused for its scope changed something"
    );

    for case in &cases {
        for (key, scopes) in SCOPED_KEYS {
            if !scope_allows(*scopes, &case.method, &case.template) {
                continue;
            }
            let r = send(
                &app,
                case.listener,
                case.method.clone(),
                &case.path,
                &apikey(key),
                case.body.as_ref(),
            )
            .await;
            assert!(
                r.status != StatusCode::UNAUTHORIZED
                    && r.status != StatusCode::FORBIDDEN
                    && !r.status.is_server_error(),
                "{} {} with {key} is refused or fails: {} {}",
                case.method,
                case.template,
                r.status,
                r.json
            );
            allowed += 1;
        }
    }
    assert_eq!(refused + allowed, cases.len() * SCOPED_KEYS.len() + 4);
    // Each kind of route is refused to some key and allowed to others.
    assert!(
        refused >= cases.len() && allowed >= cases.len(),
        "{refused} {allowed}"
    );
    println!(
        "scope matrix: {} management routes x {} keys: {allowed} allowed, {refused} refused \
         with 403 insufficient_scope",
        cases.len(),
        SCOPED_KEYS.len()
    );
}
