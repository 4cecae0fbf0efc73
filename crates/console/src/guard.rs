//! Who may use the console, and how a form proves it came from the console:
//! - [`require_session`]: every route but sign-in needs a live session whose key is still
//!   configured (re-checked on every request); without one a GET is sent to the sign-in page
//!   and anything else gets 403. The key's scopes and name go to the handlers as [`Signed`];
//! - [`same_origin_posts`]: a POST whose `Origin` is not this listener's own, or that the
//!   browser says is cross-site (`Sec-Fetch-Site`), gets 403 before anything reads it;
//! - [`Posted`]: a form that changes something carries the session's CSRF token, compared in
//!   constant time, else 403.
//!
//! The cookie holds only the session's id: `HttpOnly`, `SameSite=Strict`, `Path=/console/`,
//! and `Secure` when the listener is reached over HTTPS.

use std::future::Future;
use std::pin::Pin;
use std::time::Instant;

use actix_web::body::{EitherBody, MessageBody};
use actix_web::dev::{Payload, ServiceRequest, ServiceResponse};
use actix_web::http::Method;
use actix_web::http::header::{self, HeaderMap};
use actix_web::middleware::Next;
use actix_web::{FromRequest, HttpMessage, HttpRequest, HttpResponse, ResponseError, web};
use licenses_api_management::{Scope, Scopes};
use licenses_app::AppError;
use licenses_app::ports::Actor;
use licenses_http::{PublicOrigins, RateLimits};
use serde::de::DeserializeOwned;

use crate::error::{ConsoleError, readable};
use crate::session::{Flash, csrf_matches};
use crate::{COOKIE, Console, PREFIX, html};

/// The signed-in key of a request, as [`require_session`] found it.
#[derive(Debug, Clone)]
pub struct Signed {
    pub(crate) session: String,
    /// The key's name (never the key).
    pub key_name: String,
    pub scopes: Scopes,
    pub(crate) csrf: String,
}

impl Signed {
    /// Whether the key's scopes allow what needs `scope` (`write` allows reading too).
    pub fn can(&self, scope: Scope) -> bool {
        self.scopes.allow(scope)
    }

    /// 403 unless the key's scopes allow `scope`.
    pub fn require(&self, scope: Scope) -> Result<(), ConsoleError> {
        if self.can(scope) {
            Ok(())
        } else {
            tracing::info!(key = %self.key_name, needed = %scope, "console: key lacks a scope");
            Err(ConsoleError::Forbidden(format!(
                "the key you signed in with does not have the scope `{scope}` this needs"
            )))
        }
    }

    /// Who the audit trail says made a change.
    pub fn actor(&self) -> Actor {
        Actor::ManagementKey(self.key_name.clone())
    }

    /// The message kept for this page, once.
    pub fn take_flash(&self, console: &Console) -> Option<Flash> {
        console.sessions.take_flash(&self.session)
    }

    /// Keeps a message for the next page.
    pub fn flash(&self, console: &Console, error: bool, message: impl Into<String>) {
        console.sessions.set_flash(
            &self.session,
            Flash {
                error,
                message: message.into(),
            },
        );
    }
}

impl FromRequest for Signed {
    type Error = ConsoleError;
    type Future = std::future::Ready<Result<Self, ConsoleError>>;

    fn from_request(req: &HttpRequest, _: &mut Payload) -> Self::Future {
        std::future::ready(
            req.extensions()
                .get::<Signed>()
                .cloned()
                .ok_or_else(|| ConsoleError::Forbidden("sign in first".into())),
        )
    }
}

/// A form that changes something: it carries the session's CSRF token as `csrf`.
pub trait CsrfForm {
    fn csrf(&self) -> &str;
}

/// The extractor of a form that changes something: the signed-in key and the form, once its
/// CSRF token matched the session's (else 403). Forms give every field a default, so that a
/// missing token is a 403 and not a form that cannot be read.
#[derive(Debug)]
pub struct Posted<T>(pub Signed, pub T);

impl<T: DeserializeOwned + CsrfForm + 'static> FromRequest for Posted<T> {
    type Error = actix_web::Error;
    type Future = Pin<Box<dyn Future<Output = Result<Self, actix_web::Error>>>>;

    fn from_request(req: &HttpRequest, payload: &mut Payload) -> Self::Future {
        let signed = req.extensions().get::<Signed>().cloned();
        let form = web::Form::<T>::from_request(req, payload);
        Box::pin(async move {
            let signed = signed.ok_or_else(|| ConsoleError::Forbidden("sign in first".into()))?;
            let form = form.await?.into_inner();
            if !csrf_matches(&signed.csrf, form.csrf()) {
                tracing::info!(key = %signed.key_name, "console: CSRF token missing or wrong");
                return Err(ConsoleError::Forbidden(
                    "this form's security token is missing or out of date: reload the page and \
                     try again"
                        .into(),
                )
                .into());
            }
            Ok(Posted(signed, form))
        })
    }
}

/// A form that only carries the CSRF token (sign-out).
#[derive(Debug, serde::Deserialize)]
pub struct CsrfOnly {
    #[serde(default)]
    pub csrf: String,
}

impl CsrfForm for CsrfOnly {
    fn csrf(&self) -> &str {
        &self.csrf
    }
}

/// The session id the request's cookie holds, if it looks like one.
pub fn session_cookie(headers: &HeaderMap) -> Option<String> {
    headers
        .get_all(header::COOKIE)
        .filter_map(|v| v.to_str().ok())
        .flat_map(|v| v.split(';'))
        .filter_map(|pair| pair.trim().split_once('='))
        .find(|(name, _)| *name == COOKIE)
        .map(|(_, value)| value.trim().to_owned())
        .filter(|value| value.len() == 64 && value.bytes().all(|b| b.is_ascii_hexdigit()))
}

fn cookie_attributes(secure: bool) -> &'static str {
    if secure {
        "Path=/console/; HttpOnly; SameSite=Strict; Secure"
    } else {
        "Path=/console/; HttpOnly; SameSite=Strict"
    }
}

/// The `Set-Cookie` of a new session.
pub fn set_cookie(id: &str, secure: bool) -> String {
    format!("{COOKIE}={id}; {}", cookie_attributes(secure))
}

/// The `Set-Cookie` that removes the session cookie.
pub fn clear_cookie(secure: bool) -> String {
    format!("{COOKIE}=; Max-Age=0; {}", cookie_attributes(secure))
}

/// Middleware: a live session whose key is still configured, else a GET is sent to the
/// sign-in page (303) and anything else gets 403; the key's rate limit (429).
pub async fn require_session<B: MessageBody + 'static>(
    req: ServiceRequest,
    next: Next<B>,
) -> Result<ServiceResponse<EitherBody<B>>, actix_web::Error> {
    let Some(console) = req.app_data::<web::Data<Console>>().cloned() else {
        return Ok(refuse(req, ConsoleError::Internal));
    };
    let cookie = session_cookie(req.headers());
    let signed = cookie.as_deref().and_then(|id| {
        let found = console.sessions.touch(id, Instant::now())?;
        match console.keys.authorize(found.key.expose()) {
            Some((name, scopes)) => Some(Signed {
                session: id.to_owned(),
                key_name: name.to_owned(),
                scopes,
                csrf: found.csrf,
            }),
            None => {
                tracing::info!("console: the session's key is no longer configured");
                console.sessions.remove(id);
                None
            }
        }
    });
    let Some(signed) = signed else {
        if req.method() == Method::GET || req.method() == Method::HEAD {
            let mut response = html::see_other("/console/sign-in");
            if cookie.is_some()
                && let Ok(value) = clear_cookie(console.secure_cookie).parse()
            {
                response.headers_mut().append(header::SET_COOKIE, value);
            }
            return Ok(req.into_response(response).map_into_right_body());
        }
        return Ok(refuse(
            req,
            ConsoleError::Forbidden("sign in first: this needs a console session".into()),
        ));
    };
    let limited = req
        .app_data::<web::Data<RateLimits>>()
        .map_or(Ok(()), |limits| limits.check_management(&signed.key_name));
    if limited.is_err() {
        return Ok(refuse(req, ConsoleError::TooManyRequests));
    }
    req.extensions_mut().insert(signed);
    Ok(next.call(req).await?.map_into_left_body())
}

fn refuse<B>(req: ServiceRequest, error: ConsoleError) -> ServiceResponse<EitherBody<B>> {
    req.into_response(error.error_response())
        .map_into_right_body()
}

/// `scheme://host[:port]` of a base URL that may have a path.
fn origin_of(base: &str) -> &str {
    let after_scheme = base.find("://").map_or(0, |i| i + 3);
    match base[after_scheme..].find('/') {
        Some(slash) => &base[..after_scheme + slash],
        None => base,
    }
}

/// This listener's origin, as links are built ([`PublicOrigins`]): the management public base
/// URL's, else the request's own from loopback or a trusted proxy.
fn own_origin(req: &HttpRequest) -> String {
    let origins = req
        .app_data::<web::Data<PublicOrigins>>()
        .map(|o| o.get_ref().clone())
        .unwrap_or_default();
    origin_of(&origins.origin(req, PREFIX)).to_ascii_lowercase()
}

/// Whether the console has a public base URL: then forms come from its origin only.
fn has_public_origin(req: &HttpRequest) -> bool {
    req.app_data::<web::Data<PublicOrigins>>()
        .is_some_and(|o| o.base_url(PREFIX).is_some())
}

/// Whether `origin` (`scheme://host[:port]`, lower case) names the host the request was sent
/// to (its `Host` header): the console of a listener without a public base URL, reached from
/// another machine (its own origin is then the listener's bound address). A page of another site cannot make a browser send
/// our host as its origin, and the CSRF token is checked besides.
fn names_the_host(origin: &str, headers: &HeaderMap) -> bool {
    let authority = origin.split_once("://").map_or("", |(_, rest)| rest);
    headers
        .get(header::HOST)
        .and_then(|h| h.to_str().ok())
        .is_some_and(|host| !host.is_empty() && host.eq_ignore_ascii_case(authority))
}

/// Middleware: a request that may change something (any method but GET and HEAD) is refused
/// (403) when its `Origin` header is there and is not this listener's origin (nor, without a
/// public base URL, the host the request was sent to: [`names_the_host`]), or when the
/// browser says it comes from another site (`Sec-Fetch-Site: cross-site` or `same-site`).
pub async fn same_origin_posts<B: MessageBody + 'static>(
    req: ServiceRequest,
    next: Next<B>,
) -> Result<ServiceResponse<EitherBody<B>>, actix_web::Error> {
    if req.method() != Method::GET && req.method() != Method::HEAD {
        let origin = req
            .headers()
            .get(header::ORIGIN)
            .map(|v| v.to_str().unwrap_or("").to_ascii_lowercase());
        let foreign_origin = origin.is_some_and(|o| {
            o != own_origin(req.request())
                && (has_public_origin(req.request()) || !names_the_host(&o, req.headers()))
        });
        let cross_site = req
            .headers()
            .get("sec-fetch-site")
            .and_then(|v| v.to_str().ok())
            .is_some_and(|v| v == "cross-site" || v == "same-site");
        if foreign_origin || cross_site {
            tracing::info!("console: a form posted from another origin refused");
            return Ok(refuse(
                req,
                ConsoleError::Forbidden("this form was sent from another site".into()),
            ));
        }
    }
    Ok(next.call(req).await?.map_into_left_body())
}

/// How an action ended, for the agent: back (303) to `location` with `done(value)` when it was
/// performed, or with `refused(why)` in the API's words when the service refused it; a storage
/// outage is the 503 page instead (the action may be tried again).
pub fn after_action<T>(
    console: &Console,
    signed: &Signed,
    location: &str,
    result: Result<T, AppError>,
    done: impl FnOnce(T) -> String,
    refused: impl FnOnce(String) -> String,
) -> Result<HttpResponse, ConsoleError> {
    match result {
        Ok(value) => Ok(back_with(console, signed, location, false, done(value))),
        Err(AppError::Unavailable) => Err(ConsoleError::Unavailable),
        Err(e) => Ok(back_with(
            console,
            signed,
            location,
            true,
            refused(readable(&e)),
        )),
    }
}

/// 303 to `location` with a message for the next page.
pub fn back_with(
    console: &Console,
    signed: &Signed,
    location: &str,
    error: bool,
    message: impl Into<String>,
) -> HttpResponse {
    signed.flash(console, error, message);
    html::see_other(location)
}

#[cfg(test)]
mod tests {
    use actix_web::http::header::HeaderValue;

    use super::*;

    #[test]
    fn an_origin_names_the_host_only_when_its_authority_is_the_host_header() {
        let mut headers = HeaderMap::new();
        assert!(!names_the_host("http://licenses:8081", &headers), "no Host");
        headers.insert(header::HOST, HeaderValue::from_static("Licenses:8081"));
        assert!(names_the_host("http://licenses:8081", &headers));
        assert!(names_the_host("https://licenses:8081", &headers));
        for other in [
            "http://licenses",
            "http://licenses:8082",
            "http://evil.example",
            "null",
            "",
        ] {
            assert!(!names_the_host(other, &headers), "{other}");
        }
    }

    #[test]
    fn the_cookie_is_read_only_when_it_looks_like_a_session_id() {
        let id = "a".repeat(64);
        let mut headers = HeaderMap::new();
        headers.insert(
            header::COOKIE,
            HeaderValue::from_str(&format!("other=1; {COOKIE}={id}; x=y")).expect("value"),
        );
        assert_eq!(session_cookie(&headers), Some(id));
        headers.insert(
            header::COOKIE,
            HeaderValue::from_static("licenses_console=short"),
        );
        assert_eq!(session_cookie(&headers), None);
        assert_eq!(session_cookie(&HeaderMap::new()), None);
    }

    #[test]
    fn cookies_are_http_only_strict_on_the_console_path_and_secure_over_https() {
        assert_eq!(
            set_cookie("abc", false),
            "licenses_console=abc; Path=/console/; HttpOnly; SameSite=Strict"
        );
        assert!(set_cookie("abc", true).ends_with("; Secure"));
        assert!(clear_cookie(true).contains("Max-Age=0"));
    }

    #[test]
    fn the_origin_of_a_base_url_drops_its_path() {
        assert_eq!(origin_of("https://x.example/mgmt/"), "https://x.example");
        assert_eq!(origin_of("http://127.0.0.1:8081"), "http://127.0.0.1:8081");
    }
}
