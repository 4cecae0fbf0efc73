//! Sign in with a management key, and sign out. The key is checked as the management API
//! checks it ([`licenses_api_management::ManagementKeys::authorize`]); a wrong one is answered
//! 401, which `limits.auth_failures_per_minute` counts.

use std::time::Instant;

use actix_web::http::StatusCode;
use actix_web::http::header;
use actix_web::{HttpResponse, web};
use maud::{Markup, html};
use serde::Deserialize;

use super::Shared;
use crate::guard::{CsrfOnly, Posted, clear_cookie, session_cookie, set_cookie};
use crate::html::{self, page};
use crate::session::Flash;

#[derive(Debug, Deserialize)]
pub struct SignIn {
    #[serde(default)]
    key: String,
}

fn sign_in_page(flash: Option<&Flash>) -> Markup {
    page(
        "Sign in",
        None,
        flash,
        html! {
            p { "Sign in with a management key. The key stays on the server for this session; \
                 the actions you take are recorded under the key's name." }
            form method="post" action="/console/sign-in" id="sign-in-form" {
                p {
                    label for="key" { "Management key" }
                    input type="password" id="key" name="key" autocomplete="off" required;
                }
                button type="submit" id="sign-in" { "Sign in" }
            }
        },
    )
}

/// `GET /console/sign-in`.
pub async fn form() -> HttpResponse {
    html::ok(sign_in_page(None))
}

/// `POST /console/sign-in`: a session for a valid key (303 to the console), else 401.
pub async fn sign_in(
    console: Shared,
    req: actix_web::HttpRequest,
    form: web::Form<SignIn>,
) -> HttpResponse {
    // Whatever session the browser held ends here: a sign-in always starts a new one, with a
    // new id (never one the browser was given before).
    if let Some(old) = session_cookie(req.headers()) {
        console.sessions.remove(&old);
    }
    let key = form.key.trim();
    let Some((name, _)) = console.keys.authorize(key) else {
        tracing::info!("console: sign-in with a key that is not valid");
        let flash = Flash {
            error: true,
            message: "That key is not valid.".into(),
        };
        return html::respond(StatusCode::UNAUTHORIZED, sign_in_page(Some(&flash)));
    };
    tracing::info!(key = %name, "console: signed in");
    let id = console.sessions.create(key, Instant::now());
    let mut response = html::see_other("/console/");
    if let Ok(value) = set_cookie(&id, console.secure_cookie).parse() {
        response.headers_mut().insert(header::SET_COOKIE, value);
    }
    response
}

/// `POST /console/sign-out`.
pub async fn sign_out(console: Shared, posted: Posted<CsrfOnly>) -> HttpResponse {
    let Posted(signed, _) = posted;
    console.sessions.remove(&signed.session);
    tracing::info!(key = %signed.key_name, "console: signed out");
    let mut response = html::see_other("/console/sign-in");
    if let Ok(value) = clear_cookie(console.secure_cookie).parse() {
        response.headers_mut().insert(header::SET_COOKIE, value);
    }
    response
}
