//! CORS for client apps running in a browser: exactly the configured origins (`server.
//! cors_origins`), none by default, and then no CORS header at all.

use actix_cors::{Cors, CorsError};
use actix_web::ResponseError;
use actix_web::body::{EitherBody, MessageBody};
use actix_web::dev::{ServiceRequest, ServiceResponse};
use actix_web::http::header::{self, HeaderName};
use actix_web::http::{Method, StatusCode};
use actix_web::middleware::Next;
use licenses_http::ApiError;

/// How long a browser may keep a preflight's answer, in seconds.
const PREFLIGHT_MAX_AGE: usize = 600;

/// The CORS middleware for `origins` (`scheme://host[:port]`, compared exactly with the
/// `Origin` header; a trailing `/` is dropped). Only the methods and request headers the API
/// uses are allowed, and `ETag` is exposed so that a web app can revalidate the catalogue,
/// `Licenses-Consistency` so that it can read its own writes.
/// No credentials mode: the token travels in `Authorization`, set by the app, not a cookie.
pub(crate) fn cors(origins: &[String]) -> Cors {
    let cors = Cors::default()
        .allowed_methods([Method::GET, Method::POST, Method::OPTIONS])
        .allowed_headers([
            header::AUTHORIZATION,
            header::CONTENT_TYPE,
            header::IF_NONE_MATCH,
            HeaderName::from_static("idempotency-key"),
            HeaderName::from_static("licenses-consistency"),
        ])
        .expose_headers([
            header::ETAG,
            HeaderName::from_static("licenses-consistency"),
        ])
        .max_age(PREFLIGHT_MAX_AGE);
    origins.iter().fold(cors, |cors, origin| {
        cors.allowed_origin(origin.trim().trim_end_matches('/'))
    })
}

/// Middleware around [`cors`]: a refused preflight (an origin, method or header not allowed)
/// is answered with a JSON:API error document like every other error, rather than actix-cors'
/// plain text.
pub(crate) async fn refusals_as_jsonapi<B: MessageBody + 'static>(
    req: ServiceRequest,
    next: Next<B>,
) -> Result<ServiceResponse<EitherBody<B>>, actix_web::Error> {
    let response = next.call(req).await?;
    let refusal = response
        .response()
        .error()
        .and_then(|e| e.as_error::<CorsError>())
        .map(|e| (e.status_code(), e.to_string()));
    match refusal {
        None => Ok(response.map_into_left_body()),
        Some((status, detail)) => {
            let status = if status.is_client_error() {
                status
            } else {
                StatusCode::BAD_REQUEST
            };
            let error = ApiError::new(status, "cors_refused", detail);
            let (req, old) = response.into_parts();
            let mut new = error.error_response();
            // Keep the `Vary` actix-cors set, so that caches keep answers per origin apart.
            if let Some(vary) = old.headers().get(header::VARY) {
                new.headers_mut().insert(header::VARY, vary.clone());
            }
            Ok(ServiceResponse::new(req, new).map_into_right_body())
        }
    }
}
