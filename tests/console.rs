//! The support console (`/console/` on the management listener, crates/console), on the real
//! service: sessions, the cookie, CSRF and origins, scopes, and the actions (revoke, grant)
//! as an agent performs them, the management API left as it was.

mod support;

use reqwest::StatusCode;
use reqwest::header::{HeaderMap, LOCATION, SET_COOKIE};
use serde_json::{Value, json};
use support::jsonapi::JSONAPI;
use support::{Backend, MANAGEMENT_KEY, TestApp, spawn_app, spawn_app_with};

const MANAGEMENT: &str = licenses_api_management::PREFIX;

/// A read-only key added to the test settings.
const READ_ONLY_KEY: &str = "console-read-only-key";

/// A key with the `irdeto` scope alone, added to the test settings.
const IRDETO_ONLY_KEY: &str = "console-irdeto-only-key";

/// A client that does not follow redirects, for both listeners.
fn client() -> reqwest::Client {
    reqwest::Client::builder()
        .redirect(reqwest::redirect::Policy::none())
        .no_proxy()
        .timeout(std::time::Duration::from_secs(30))
        .build()
        .expect("a client")
}

/// The test service, with a read-only key beside the development one.
async fn console_app(backend: Backend) -> TestApp {
    spawn_app_with(backend, |settings| {
        let mut key = licenses::settings::ManagementKey::for_key("support-ro", READ_ONLY_KEY);
        key.scopes = "read".parse().expect("scopes");
        settings.auth.management_keys.push(key);
        let mut key = licenses::settings::ManagementKey::for_key("drm-ops", IRDETO_ONLY_KEY);
        key.scopes = "irdeto".parse().expect("scopes");
        settings.auth.management_keys.push(key);
    })
    .await
}

fn form(pairs: &[(&str, &str)]) -> String {
    url::form_urlencoded::Serializer::new(String::new())
        .extend_pairs(pairs)
        .finish()
}

/// A page of the console, with a session cookie or none.
struct Page {
    status: StatusCode,
    headers: HeaderMap,
    body: String,
}

impl Page {
    fn location(&self) -> Option<&str> {
        self.headers.get(LOCATION).and_then(|v| v.to_str().ok())
    }

    fn set_cookie(&self) -> Option<&str> {
        self.headers.get(SET_COOKIE).and_then(|v| v.to_str().ok())
    }

    /// The value of the page's hidden field `name`.
    fn hidden(&self, name: &str) -> String {
        let marker = format!("name=\"{name}\" value=\"");
        let start = self
            .body
            .find(&marker)
            .unwrap_or_else(|| panic!("no {name} field in {}", self.body))
            + marker.len();
        let len = self.body[start..].find('"').expect("the value's end");
        self.body[start..start + len].to_owned()
    }

    /// The CSRF token of the page's forms.
    fn csrf(&self) -> String {
        let marker = "name=\"csrf\" value=\"";
        let start = self
            .body
            .find(marker)
            .unwrap_or_else(|| panic!("no CSRF field in {}", self.body))
            + marker.len();
        self.body[start..start + 64].to_owned()
    }
}

async fn read(response: reqwest::Response) -> Page {
    let status = response.status();
    let headers = response.headers().clone();
    let body = response.text().await.expect("a body");
    Page {
        status,
        headers,
        body,
    }
}

async fn get(app: &TestApp, cookie: Option<&str>, path: &str) -> Page {
    let mut req = client().get(app.management(path));
    if let Some(cookie) = cookie {
        req = req.header("Cookie", cookie);
    }
    read(req.send().await.expect("an answer")).await
}

async fn post(
    app: &TestApp,
    cookie: Option<&str>,
    path: &str,
    pairs: &[(&str, &str)],
    headers: &[(&str, &str)],
) -> Page {
    let mut req = client()
        .post(app.management(path))
        .header("Content-Type", "application/x-www-form-urlencoded")
        .body(form(pairs));
    if let Some(cookie) = cookie {
        req = req.header("Cookie", cookie);
    }
    for (name, value) in headers {
        req = req.header(*name, *value);
    }
    read(req.send().await.expect("an answer")).await
}

/// Signs in with `key`: the `Cookie` header value of the session.
async fn sign_in(app: &TestApp, key: &str) -> String {
    let page = post(app, None, "/console/sign-in", &[("key", key)], &[]).await;
    assert_eq!(page.status, StatusCode::SEE_OTHER, "{}", page.body);
    assert_eq!(page.location(), Some("/console/"));
    let set = page.set_cookie().expect("a session cookie");
    set.split(';').next().expect("name=value").to_owned()
}

/// `POST` on the management API with the development key: the new resource's id.
async fn api_create(app: &TestApp, path: &str, doc: Value) -> String {
    let r = app
        .client
        .post(app.management(&format!("{MANAGEMENT}{path}")))
        .header("Authorization", format!("Apikey {MANAGEMENT_KEY}"))
        .header("Content-Type", JSONAPI)
        .body(doc.to_string())
        .send()
        .await
        .expect("an answer");
    assert_eq!(r.status(), StatusCode::CREATED);
    let body: Value = r.json().await.expect("json");
    body["data"]["id"].as_str().expect("an id").to_owned()
}

async fn api_get(app: &TestApp, path: &str) -> (StatusCode, Value) {
    let r = app
        .client
        .get(app.management(&format!("{MANAGEMENT}{path}")))
        .header("Authorization", format!("Apikey {MANAGEMENT_KEY}"))
        .send()
        .await
        .expect("an answer");
    let status = r.status();
    (status, r.json().await.unwrap_or(Value::Null))
}

/// A product granting live on channel 7 for a day, and a license to it for `user`.
async fn product_and_license(app: &TestApp, user: &str) -> (String, String) {
    let product = api_create(
        app,
        "/products",
        json!({"data": {"type": "Product", "attributes": {"title": "Sport Max",
            "description": "d", "type": "CHANNEL", "is_premium": true,
            "license_defaults": {"duration": 86_400, "auto_renew": false}},
            "relationships": {"live": {"data": [{"type": "Channel", "id": "7"}]}}}}),
    )
    .await;
    let license = api_create(
        app,
        "/licenses",
        json!({"data": {"type": "License", "attributes": {}, "relationships": {
            "user": {"data": {"type": "User", "id": user}},
            "product": {"data": {"type": "Product", "id": product}}}}}),
    )
    .await;
    (product, license)
}

/// A path template of the console with its segments filled.
fn fill(template: &str) -> String {
    template
        .replace("{user_id}", "u-1")
        .replace("{license_id}", "l-1")
        .replace("{job_id}", "1")
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn every_console_route_refuses_without_a_session() {
    let app = console_app(Backend::Sqlite).await;
    let forged = format!("{}={}", licenses_console::COOKIE, "ab".repeat(32));
    let endpoints = licenses_console::endpoints();
    assert!(endpoints.len() >= 12, "{endpoints:?}");
    let mut checked = 0;
    for e in &endpoints {
        if licenses_console::PUBLIC_PATHS.contains(&e.path.as_str()) {
            continue;
        }
        let path = fill(&e.path);
        for cookie in [None, Some(forged.as_str())] {
            let page = if e.method.as_str() == "GET" {
                get(&app, cookie, &path).await
            } else {
                post(&app, cookie, &path, &[("csrf", "x")], &[]).await
            };
            if e.method.as_str() == "GET" {
                assert_eq!(page.status, StatusCode::SEE_OTHER, "GET {path}");
                assert_eq!(page.location(), Some("/console/sign-in"), "GET {path}");
            } else {
                assert_eq!(page.status, StatusCode::FORBIDDEN, "POST {path}");
            }
            checked += 1;
        }
    }
    assert!(checked >= 20, "{checked}");
    // A path the console does not have is no different.
    assert_eq!(
        get(&app, None, "/console/nowhere").await.status,
        StatusCode::SEE_OTHER
    );
    // The API key does not open the console.
    let r = client()
        .get(app.management("/console/"))
        .header("Authorization", format!("Apikey {MANAGEMENT_KEY}"))
        .send()
        .await
        .expect("an answer");
    assert_eq!(r.status(), StatusCode::SEE_OTHER);
    // The public ones answer.
    for path in licenses_console::PUBLIC_PATHS {
        assert_eq!(get(&app, None, path).await.status, StatusCode::OK, "{path}");
    }
    assert_eq!(
        get(&app, None, "/console").await.location(),
        Some("/console/")
    );
    // Not on the user listener.
    let r = client()
        .get(app.user("/console/sign-in"))
        .send()
        .await
        .expect("an answer");
    assert_eq!(r.status(), StatusCode::NOT_FOUND);
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_wrong_key_cannot_sign_in_and_the_cookie_is_locked_down() {
    let app = console_app(Backend::Sqlite).await;
    for key in ["wrong-key", "", &format!("{MANAGEMENT_KEY}x")] {
        let page = post(&app, None, "/console/sign-in", &[("key", key)], &[]).await;
        assert_eq!(page.status, StatusCode::UNAUTHORIZED, "{key:?}");
        assert!(page.set_cookie().is_none(), "{key:?}");
        assert!(
            page.body.contains("That key is not valid."),
            "{}",
            page.body
        );
    }
    let page = post(
        &app,
        None,
        "/console/sign-in",
        &[("key", MANAGEMENT_KEY)],
        &[],
    )
    .await;
    assert_eq!(page.status, StatusCode::SEE_OTHER);
    let cookie = page.set_cookie().expect("a cookie").to_owned();
    let (pair, attributes) = cookie.split_once(';').expect("attributes");
    let (name, value) = pair.split_once('=').expect("name=value");
    assert_eq!(name, licenses_console::COOKIE);
    assert_eq!(value.len(), 64, "a 256-bit id in hex");
    assert!(!cookie.contains(MANAGEMENT_KEY));
    let attributes: Vec<&str> = attributes.split(';').map(str::trim).collect();
    for wanted in ["HttpOnly", "SameSite=Strict", "Path=/console/"] {
        assert!(attributes.contains(&wanted), "{cookie}");
    }
    assert!(!attributes.contains(&"Secure"), "plain HTTP here: {cookie}");
    // Never the key nor the session in a URL.
    assert_eq!(page.location(), Some("/console/"));
    let home = get(&app, Some(pair), "/console/").await;
    assert_eq!(home.status, StatusCode::OK);
    assert!(home.body.contains("<h1>Find a user</h1>"), "{}", home.body);
    assert!(!home.body.contains(MANAGEMENT_KEY));
    let headers = &home.headers;
    assert_eq!(
        headers.get("content-type").and_then(|v| v.to_str().ok()),
        Some("text/html; charset=utf-8")
    );
    assert!(headers.contains_key("content-security-policy"));
    assert_eq!(
        headers.get("x-frame-options").and_then(|v| v.to_str().ok()),
        Some("DENY")
    );
    assert_eq!(
        headers.get("cache-control").and_then(|v| v.to_str().ok()),
        Some("no-store")
    );
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn over_https_the_cookie_is_secure() {
    let app = spawn_app_with(Backend::Sqlite, |settings| {
        settings.server.management.public_base_url = Some("https://licenses-admin.example".into());
    })
    .await;
    let page = post(
        &app,
        None,
        "/console/sign-in",
        &[("key", MANAGEMENT_KEY)],
        &[],
    )
    .await;
    let cookie = page.set_cookie().expect("a cookie");
    assert!(cookie.split(';').any(|a| a.trim() == "Secure"), "{cookie}");
    // Its origin is the public one: a form from the listener's own address is foreign.
    let pair = cookie.split(';').next().expect("pair");
    let home = get(&app, Some(pair), "/console/").await;
    let refused = post(
        &app,
        Some(pair),
        "/console/sign-out",
        &[("csrf", &home.csrf())],
        &[("Origin", &app.management_url)],
    )
    .await;
    assert_eq!(refused.status, StatusCode::FORBIDDEN);
    let signed_out = post(
        &app,
        Some(pair),
        "/console/sign-out",
        &[("csrf", &home.csrf())],
        &[("Origin", "https://licenses-admin.example")],
    )
    .await;
    assert_eq!(signed_out.status, StatusCode::SEE_OTHER);
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn failed_sign_ins_count_against_the_authentication_failure_limit() {
    let app = spawn_app_with(Backend::Sqlite, |settings| {
        settings.limits.auth_failures_per_minute = 2;
    })
    .await;
    for _ in 0..2 {
        let page = post(&app, None, "/console/sign-in", &[("key", "guess")], &[]).await;
        assert_eq!(page.status, StatusCode::UNAUTHORIZED);
    }
    // Blocked, even with the right key; and so is the API from this address.
    let page = post(
        &app,
        None,
        "/console/sign-in",
        &[("key", MANAGEMENT_KEY)],
        &[],
    )
    .await;
    assert_eq!(page.status, StatusCode::TOO_MANY_REQUESTS);
    let (status, _) = api_get(&app, "/products").await;
    assert_eq!(status, StatusCode::TOO_MANY_REQUESTS);
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_post_needs_the_session_csrf_token_and_this_origin() {
    let app = console_app(Backend::Sqlite).await;
    let (_, license) = product_and_license(&app, "u-csrf").await;
    let cookie = sign_in(&app, MANAGEMENT_KEY).await;
    let page = get(
        &app,
        Some(&cookie),
        &format!("/console/licenses/{license}/revoke"),
    )
    .await;
    assert_eq!(page.status, StatusCode::OK, "{}", page.body);
    let csrf = page.csrf();
    let path = format!("/console/licenses/{license}/revoke");
    let other_session = sign_in(&app, MANAGEMENT_KEY).await;
    let other_csrf = get(&app, Some(&other_session), "/console/").await.csrf();
    assert_ne!(csrf, other_csrf);
    let zeros = "0".repeat(64);
    for (what, pairs, headers) in [
        ("no token", vec![], vec![]),
        ("an empty token", vec![("csrf", "")], vec![]),
        ("a wrong token", vec![("csrf", zeros.as_str())], vec![]),
        (
            "another session's token",
            vec![("csrf", other_csrf.as_str())],
            vec![],
        ),
        (
            "another origin",
            vec![("csrf", csrf.as_str())],
            vec![("Origin", "http://evil.example")],
        ),
        (
            "an opaque origin",
            vec![("csrf", csrf.as_str())],
            vec![("Origin", "null")],
        ),
        (
            "a cross-site fetch",
            vec![("csrf", csrf.as_str())],
            vec![("Sec-Fetch-Site", "cross-site")],
        ),
    ] {
        let page = post(&app, Some(&cookie), &path, &pairs, &headers).await;
        assert_eq!(page.status, StatusCode::FORBIDDEN, "{what}: {}", page.body);
        assert!(page.body.contains("<h1>Forbidden</h1>"), "{what}");
    }
    let (status, _) = api_get(&app, &format!("/licenses/{license}")).await;
    assert_eq!(status, StatusCode::OK, "nothing was revoked");
    // This listener's own origin passes.
    let own = app.management_url.clone();
    let page = post(
        &app,
        Some(&cookie),
        &path,
        &[("csrf", &csrf)],
        &[("Origin", &own), ("Sec-Fetch-Site", "same-origin")],
    )
    .await;
    assert_eq!(page.status, StatusCode::SEE_OTHER, "{}", page.body);
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_read_only_key_sees_no_action_and_cannot_act() {
    let app = console_app(Backend::Sqlite).await;
    let (product, license) = product_and_license(&app, "u-ro").await;
    let cookie = sign_in(&app, READ_ONLY_KEY).await;
    let page = get(&app, Some(&cookie), "/console/users/u-ro").await;
    assert_eq!(page.status, StatusCode::OK);
    assert!(page.body.contains(&license), "the license is listed");
    assert!(page.body.contains("signed-in-as"));
    assert!(page.body.contains("support-ro"));
    for hidden in ["revoke-link", "suspend-link", "grant-form", "nav-irdeto"] {
        assert!(
            !page.body.contains(hidden),
            "{hidden} shown to a read-only key"
        );
    }
    let csrf = page.csrf();
    for path in [
        format!("/console/licenses/{license}/revoke"),
        format!("/console/licenses/{license}/suspend"),
        format!("/console/licenses/{license}/reinstate"),
        format!("/console/users/u-ro/grant?product={product}"),
        "/console/irdeto".to_owned(),
        "/console/irdeto/jobs/1/retry".to_owned(),
    ] {
        let page = get(&app, Some(&cookie), &path).await;
        assert_eq!(page.status, StatusCode::FORBIDDEN, "GET {path}");
    }
    for (path, pairs) in [
        (
            format!("/console/licenses/{license}/revoke"),
            vec![("csrf", csrf.as_str())],
        ),
        (
            format!("/console/licenses/{license}/suspend"),
            vec![("csrf", csrf.as_str())],
        ),
        (
            format!("/console/licenses/{license}/reinstate"),
            vec![("csrf", csrf.as_str())],
        ),
        (
            "/console/users/u-ro/grant".to_owned(),
            vec![("csrf", csrf.as_str()), ("product", product.as_str())],
        ),
        (
            "/console/irdeto/jobs/1/retry".to_owned(),
            vec![("csrf", csrf.as_str())],
        ),
    ] {
        let page = post(&app, Some(&cookie), &path, &pairs, &[]).await;
        assert_eq!(page.status, StatusCode::FORBIDDEN, "POST {path}");
        assert!(page.body.contains("scope"), "{}", page.body);
    }
    let (status, body) = api_get(&app, "/users/u-ro/licenses").await;
    assert_eq!(status, StatusCode::OK);
    assert_eq!(
        body["data"].as_array().map(Vec::len),
        Some(1),
        "nothing changed"
    );
    // Reading works: products, the explain answer and the audit trail too.
    let page = get(
        &app,
        Some(&cookie),
        "/console/users/u-ro/access?channel=7&service=live",
    )
    .await;
    assert_eq!(page.status, StatusCode::OK);
    assert!(page.body.contains("data-allowed=\"true\""), "{}", page.body);
    let page = get(
        &app,
        Some(&cookie),
        &format!("/console/licenses/{license}/audit"),
    )
    .await;
    assert_eq!(page.status, StatusCode::OK);
    assert!(
        page.body.contains("data-action=\"create\""),
        "{}",
        page.body
    );
    let page = get(&app, Some(&cookie), "/console/products").await;
    assert_eq!(page.status, StatusCode::OK);
    assert!(page.body.contains("Sport Max"));
}

async fn revoke_and_grant(backend: Backend) {
    let app = console_app(backend).await;
    let (product, license) = product_and_license(&app, "u/1").await;
    let cookie = sign_in(&app, MANAGEMENT_KEY).await;

    // Find the user: the id is carried percent-encoded.
    let found = get(&app, Some(&cookie), "/console/users?id=u%2F1").await;
    assert_eq!(found.status, StatusCode::SEE_OTHER);
    assert_eq!(found.location(), Some("/console/users/u%2F1"));
    let page = get(&app, Some(&cookie), "/console/users/u%2F1").await;
    assert_eq!(page.status, StatusCode::OK, "{}", page.body);
    assert!(page.body.contains("<h1>User u/1</h1>"), "{}", page.body);
    assert!(page.body.contains(&license));
    assert!(page.body.contains("Sport Max"));
    assert!(page.body.contains("id=\"entitlements\""), "the grid");
    assert!(page.body.contains("data-channel=\"7\""));
    assert!(page.body.contains("revoke-link"));
    assert!(page.body.contains("grant-form"));

    // Revoke: a confirmation page, then the action.
    let confirm = get(
        &app,
        Some(&cookie),
        &format!("/console/licenses/{license}/revoke"),
    )
    .await;
    assert_eq!(confirm.status, StatusCode::OK);
    assert!(confirm.body.contains("confirm-revoke"));
    let (status, _) = api_get(&app, &format!("/licenses/{license}")).await;
    assert_eq!(
        status,
        StatusCode::OK,
        "the confirmation page changes nothing"
    );
    let done = post(
        &app,
        Some(&cookie),
        &format!("/console/licenses/{license}/revoke"),
        &[("csrf", &confirm.csrf())],
        &[],
    )
    .await;
    assert_eq!(done.status, StatusCode::SEE_OTHER, "{}", done.body);
    assert_eq!(done.location(), Some("/console/users/u%2F1"));
    let page = get(&app, Some(&cookie), "/console/users/u%2F1").await;
    assert!(
        page.body.contains(&format!("License {license} revoked.")),
        "{}",
        page.body
    );
    assert!(page.body.contains("no-licenses"), "{}", page.body);
    let (status, _) = api_get(&app, &format!("/licenses/{license}")).await;
    assert_eq!(status, StatusCode::NOT_FOUND);
    // The flash is shown once.
    let again = get(&app, Some(&cookie), "/console/users/u%2F1").await;
    assert!(!again.body.contains("revoked."));
    // Revoking it again: a readable refusal.
    let gone = post(
        &app,
        Some(&cookie),
        &format!("/console/licenses/{license}/revoke"),
        &[("csrf", &confirm.csrf())],
        &[],
    )
    .await;
    assert_eq!(gone.status, StatusCode::NOT_FOUND);
    assert!(
        gone.body.contains("no license has this id"),
        "{}",
        gone.body
    );

    // Grant: a confirmation page, then the action.
    let confirm = get(
        &app,
        Some(&cookie),
        &format!("/console/users/u%2F1/grant?product={product}&stop_date=2099-12-31"),
    )
    .await;
    assert_eq!(confirm.status, StatusCode::OK, "{}", confirm.body);
    assert!(confirm.body.contains("confirm-grant"));
    assert!(confirm.body.contains("2099-12-31 23:59 UTC"));
    let attempt = confirm.hidden("attempt");
    let fields = [
        ("csrf", confirm.csrf()),
        ("product", product.clone()),
        ("stop_date", "2099-12-31".to_owned()),
        ("attempt", attempt),
    ];
    let fields: Vec<(&str, &str)> = fields.iter().map(|(k, v)| (*k, v.as_str())).collect();
    // Sent twice (a double click): granted once.
    for _ in 0..2 {
        let done = post(
            &app,
            Some(&cookie),
            "/console/users/u%2F1/grant",
            &fields,
            &[],
        )
        .await;
        assert_eq!(done.status, StatusCode::SEE_OTHER, "{}", done.body);
    }
    let page = get(&app, Some(&cookie), "/console/users/u%2F1").await;
    assert!(page.body.contains("granted."), "{}", page.body);
    let (_, body) = api_get(&app, "/users/u%2F1/licenses").await;
    let licenses = body["data"].as_array().expect("licenses");
    assert_eq!(licenses.len(), 1, "{body}");
    assert_eq!(
        licenses[0]["attributes"]["stop_date"],
        json!(4_102_444_799_i64),
        "the end of 2099-12-31"
    );
    assert!(page.body.contains(licenses[0]["id"].as_str().expect("id")));

    // A refused grant is a readable message, not an error page.
    let refused = post(
        &app,
        Some(&cookie),
        "/console/users/u%2F1/grant",
        &[("csrf", &confirm.csrf()), ("product", "no-such-product")],
        &[],
    )
    .await;
    assert_eq!(refused.status, StatusCode::SEE_OTHER);
    let page = get(&app, Some(&cookie), "/console/users/u%2F1").await;
    assert!(
        page.body
            .contains("Nothing granted: no product has this id"),
        "{}",
        page.body
    );
    let refused = post(
        &app,
        Some(&cookie),
        "/console/users/u%2F1/grant",
        &[
            ("csrf", &confirm.csrf()),
            ("product", &product),
            ("stop_date", "1999-01-01"),
        ],
        &[],
    )
    .await;
    assert_eq!(refused.status, StatusCode::SEE_OTHER);
    let page = get(&app, Some(&cookie), "/console/users/u%2F1").await;
    assert!(
        page.body.contains("stop_date must be after start_date"),
        "{}",
        page.body
    );
}

/// The user's licenses, as the management API lists them: (id, status).
async fn licenses_of(app: &TestApp, user: &str) -> Vec<(String, String)> {
    let (status, body) = api_get(app, &format!("/users/{user}/licenses")).await;
    assert_eq!(status, StatusCode::OK, "{body}");
    body["data"]
        .as_array()
        .expect("licenses")
        .iter()
        .map(|l| {
            (
                l["id"].as_str().expect("id").to_owned(),
                l["attributes"]["status"]
                    .as_str()
                    .expect("status")
                    .to_owned(),
            )
        })
        .collect()
}

/// Confirms and performs a license action of the console (`suspend`, `reinstate`,
/// `revoke`): the page the agent is sent back to.
async fn act_on(app: &TestApp, cookie: &str, license: &str, action: &str) -> Page {
    let path = format!("/console/licenses/{license}/{action}");
    let confirm = get(app, Some(cookie), &path).await;
    assert_eq!(confirm.status, StatusCode::OK, "{}", confirm.body);
    assert!(confirm.body.contains(&format!("confirm-{action}")));
    let done = post(app, Some(cookie), &path, &[("csrf", &confirm.csrf())], &[]).await;
    assert_eq!(done.status, StatusCode::SEE_OTHER, "{}", done.body);
    get(
        app,
        Some(cookie),
        done.location().expect("back to the user"),
    )
    .await
}

async fn explain_suspend_reinstate_and_the_audit_trail(backend: Backend) {
    let app = console_app(backend).await;
    let (_, license) = product_and_license(&app, "u-s").await;
    let cookie = sign_in(&app, MANAGEMENT_KEY).await;
    let page = get(&app, Some(&cookie), "/console/users/u-s").await;
    for shown in ["explain-form", "suspend-link", "audit-link"] {
        assert!(page.body.contains(shown), "{shown} missing: {}", page.body);
    }

    // Explain: channel 7 plays; channel 99 is not in the product; a bad question is refused.
    let explain = |q: &str| format!("/console/users/u-s/access?{q}");
    let page = get(&app, Some(&cookie), &explain("channel=7&service=live")).await;
    assert_eq!(page.status, StatusCode::OK, "{}", page.body);
    assert!(page.body.contains("data-allowed=\"true\""), "{}", page.body);
    assert!(page.body.contains(&license), "granted by it");
    let page = get(&app, Some(&cookie), &explain("channel=99&service=live")).await;
    assert!(
        page.body.contains("data-allowed=\"false\""),
        "{}",
        page.body
    );
    assert!(page.body.contains("data-code=\"product_lacks_service\""));
    let page = get(
        &app,
        Some(&cookie),
        "/console/users/nobody/access?channel=7&service=live",
    )
    .await;
    assert!(
        page.body.contains("data-code=\"no_license\""),
        "{}",
        page.body
    );
    for bad in [
        "channel=7&service=radio",
        "service=live",
        "channel=&service=live",
    ] {
        let page = get(&app, Some(&cookie), &explain(bad)).await;
        assert_eq!(page.status, StatusCode::BAD_REQUEST, "{bad}");
        assert!(page.body.contains("explain-form"), "the form again");
    }

    // Suspend: the license is replaced by a SUSPENDEDADMIN copy; the channel goes black.
    let page = act_on(&app, &cookie, &license, "suspend").await;
    assert!(
        page.body.contains(&format!("License {license} suspended")),
        "{}",
        page.body
    );
    let [(suspended, status)] = licenses_of(&app, "u-s").await.try_into().expect("one");
    assert_eq!(status, "SUSPENDEDADMIN");
    assert_ne!(suspended, license, "a copy under a new id");
    assert!(page.body.contains("reinstate-link"));
    let page = get(&app, Some(&cookie), &explain("channel=7&service=live")).await;
    assert!(
        page.body.contains("data-code=\"suspended_by_admin\""),
        "{}",
        page.body
    );
    // Suspending the copy again is refused, readably.
    let again = act_on(&app, &cookie, &suspended, "suspend").await;
    assert!(again.body.contains("was not suspended"), "{}", again.body);

    // Reinstate: an ACTIVE copy (no Irdeto here), and the channel plays again.
    let page = act_on(&app, &cookie, &suspended, "reinstate").await;
    assert!(page.body.contains("reinstated"), "{}", page.body);
    let [(active, status)] = licenses_of(&app, "u-s").await.try_into().expect("one");
    assert_eq!(status, "ACTIVE");
    let page = get(&app, Some(&cookie), &explain("channel=7&service=live")).await;
    assert!(page.body.contains("data-allowed=\"true\""), "{}", page.body);

    // The audit trail of the first license, found from the home page by id: created with the
    // development key through the API, suspended by the signed-in key in the console.
    let found = get(
        &app,
        Some(&cookie),
        &format!("/console/audit?license={license}"),
    )
    .await;
    assert_eq!(found.status, StatusCode::SEE_OTHER);
    let trail = get(&app, Some(&cookie), found.location().expect("the trail")).await;
    assert_eq!(trail.status, StatusCode::OK, "{}", trail.body);
    let create = trail.body.find("data-action=\"create\"").expect("created");
    let suspend = trail
        .body
        .find("data-action=\"suspend\"")
        .expect("suspended");
    assert!(create < suspend, "oldest first");
    assert!(trail.body[suspend..].contains("key:dev"), "{}", trail.body);
    assert!(trail.body.contains(&suspended), "names the copy");
    // The last copy, revoked: its trail still reads, ending with the revocation.
    act_on(&app, &cookie, &active, "revoke").await;
    let trail = get(
        &app,
        Some(&cookie),
        &format!("/console/licenses/{active}/audit"),
    )
    .await;
    assert_eq!(trail.status, StatusCode::OK, "{}", trail.body);
    assert!(
        trail.body.contains("data-action=\"delete\""),
        "{}",
        trail.body
    );
    let unknown = get(&app, Some(&cookie), "/console/licenses/never-was/audit").await;
    assert_eq!(unknown.status, StatusCode::NOT_FOUND);
}

on_both_backends!(
    revoke_and_grant,
    explain_suspend_reinstate_and_the_audit_trail
);

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn pages_for_an_unknown_user_products_and_the_backlog() {
    let app = spawn_app(Backend::Sqlite).await;
    let cookie = sign_in(&app, MANAGEMENT_KEY).await;
    let page = get(&app, Some(&cookie), "/console/users/nobody").await;
    assert_eq!(page.status, StatusCode::OK);
    assert!(page.body.contains("no-licenses"));
    assert!(page.body.contains("no-entitlements"));
    let bad = get(&app, Some(&cookie), "/console/users?id=").await;
    assert_eq!(bad.status, StatusCode::BAD_REQUEST);
    assert!(bad.body.contains("role=\"alert\""), "{}", bad.body);
    let page = get(&app, Some(&cookie), "/console/products").await;
    assert_eq!(page.status, StatusCode::OK);
    assert!(page.body.contains("no-products"));
    let page = get(&app, Some(&cookie), "/console/irdeto").await;
    assert_eq!(page.status, StatusCode::OK);
    assert!(page.body.contains("irdeto-off"), "{}", page.body);
    let css = get(&app, None, "/console/console.css").await;
    assert!(css.body.contains(":focus-visible"));
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn sign_out_ends_the_session() {
    let app = spawn_app(Backend::Sqlite).await;
    let cookie = sign_in(&app, MANAGEMENT_KEY).await;
    let home = get(&app, Some(&cookie), "/console/").await;
    let out = post(
        &app,
        Some(&cookie),
        "/console/sign-out",
        &[("csrf", &home.csrf())],
        &[],
    )
    .await;
    assert_eq!(out.status, StatusCode::SEE_OTHER);
    assert_eq!(out.location(), Some("/console/sign-in"));
    assert!(out.set_cookie().is_some_and(|c| c.contains("Max-Age=0")));
    let after = get(&app, Some(&cookie), "/console/").await;
    assert_eq!(after.status, StatusCode::SEE_OTHER);
    assert_eq!(after.location(), Some("/console/sign-in"));

    // Signing in again with a session cookie ends that session: the new one has a new id.
    let first = sign_in(&app, MANAGEMENT_KEY).await;
    let page = post(
        &app,
        Some(&first),
        "/console/sign-in",
        &[("key", MANAGEMENT_KEY)],
        &[],
    )
    .await;
    assert_eq!(page.status, StatusCode::SEE_OTHER);
    let second = page
        .set_cookie()
        .expect("a cookie")
        .split(';')
        .next()
        .expect("pair")
        .to_owned();
    assert_ne!(first, second);
    assert_eq!(
        get(&app, Some(&first), "/console/").await.status,
        StatusCode::SEE_OTHER
    );
    assert_eq!(
        get(&app, Some(&second), "/console/").await.status,
        StatusCode::OK
    );
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn an_irdeto_only_key_reads_the_backlog_and_nothing_else() {
    let app = console_app(Backend::Sqlite).await;
    let (product, license) = product_and_license(&app, "u-d").await;
    let cookie = sign_in(&app, IRDETO_ONLY_KEY).await;
    let page = get(&app, Some(&cookie), "/console/irdeto").await;
    assert_eq!(page.status, StatusCode::OK, "{}", page.body);
    let csrf = page.csrf();
    for path in [
        "/console/users/u-d".to_owned(),
        "/console/users/u-d/access?channel=7&service=live".to_owned(),
        format!("/console/licenses/{license}/audit"),
        format!("/console/audit?license={license}"),
        "/console/products".to_owned(),
        format!("/console/licenses/{license}/revoke"),
        format!("/console/licenses/{license}/suspend"),
        format!("/console/users/u-d/grant?product={product}"),
    ] {
        let page = get(&app, Some(&cookie), &path).await;
        assert_eq!(page.status, StatusCode::FORBIDDEN, "GET {path}");
    }
    for path in [
        format!("/console/licenses/{license}/revoke"),
        format!("/console/licenses/{license}/suspend"),
        format!("/console/licenses/{license}/reinstate"),
    ] {
        let page = post(&app, Some(&cookie), &path, &[("csrf", &csrf)], &[]).await;
        assert_eq!(page.status, StatusCode::FORBIDDEN, "POST {path}");
    }
    assert_eq!(
        licenses_of(&app, "u-d").await,
        vec![(license, "ACTIVE".to_owned())]
    );
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn the_console_can_be_turned_off() {
    let app = spawn_app_with(Backend::Sqlite, |settings| {
        settings.console.enabled = false;
    })
    .await;
    assert_eq!(
        get(&app, None, "/console/sign-in").await.status,
        StatusCode::NOT_FOUND
    );
    let (status, _) = api_get(&app, "/products").await;
    assert_eq!(status, StatusCode::OK);
}
