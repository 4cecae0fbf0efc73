//! The headers every answer carries, whatever answered it (a handler, an error, the
//! authentication, the health endpoints): [`security_headers`] is the middleware that adds
//! them.
//!
//! - `X-Content-Type-Options: nosniff`: a browser never guesses another type than the one
//!   declared (an error document is not script, whatever it echoes);
//! - `Cache-Control: no-store` on every answer that does not say otherwise: the answers of
//!   both APIs are to authenticated requests (or refusals of them) and no cache, shared or
//!   private, should keep them. An answer that sets its own `Cache-Control` keeps it: the
//!   user API's catalogue (`private, max-age=60`, revalidated by its `ETag`).

use actix_web::body::MessageBody;
use actix_web::dev::{ServiceRequest, ServiceResponse};
use actix_web::http::header::{self, HeaderValue};
use actix_web::middleware::Next;

/// `X-Content-Type-Options` on every answer.
pub const NOSNIFF: HeaderValue = HeaderValue::from_static("nosniff");

/// `Cache-Control` of every answer that sets none of its own.
pub const NO_STORE: HeaderValue = HeaderValue::from_static("no-store");

/// Middleware: adds the security headers to every answer (see the module's documentation).
pub async fn security_headers<B: MessageBody + 'static>(
    req: ServiceRequest,
    next: Next<B>,
) -> Result<ServiceResponse<B>, actix_web::Error> {
    let mut response = next.call(req).await?;
    add_security_headers(response.headers_mut());
    Ok(response)
}

/// Adds the security headers to `headers`, keeping a `Cache-Control` already there.
pub fn add_security_headers(headers: &mut header::HeaderMap) {
    headers.insert(header::X_CONTENT_TYPE_OPTIONS, NOSNIFF);
    if !headers.contains_key(header::CACHE_CONTROL) {
        headers.insert(header::CACHE_CONTROL, NO_STORE);
    }
}

#[cfg(test)]
mod tests {
    use actix_web::middleware::from_fn;
    use actix_web::{App, HttpResponse, test, web};

    use super::*;
    use crate::ApiError;

    #[actix_web::test]
    async fn answers_and_errors_get_them_and_an_own_cache_control_is_kept() {
        let app = test::init_service(
            App::new()
                .wrap(from_fn(security_headers))
                .route("/plain", web::get().to(HttpResponse::Ok))
                .route(
                    "/cached",
                    web::get().to(|| async {
                        HttpResponse::Ok()
                            .insert_header((header::CACHE_CONTROL, "private, max-age=60"))
                            .finish()
                    }),
                )
                .route(
                    "/error",
                    web::get().to(|| async {
                        Err::<HttpResponse, _>(ApiError::not_found("nothing here"))
                    }),
                ),
        )
        .await;
        for (path, cache) in [
            ("/plain", "no-store"),
            ("/cached", "private, max-age=60"),
            ("/error", "no-store"),
            ("/no-route", "no-store"),
        ] {
            let r = test::call_service(&app, test::TestRequest::get().uri(path).to_request()).await;
            let h = r.headers();
            assert_eq!(
                h.get(header::X_CONTENT_TYPE_OPTIONS),
                Some(&NOSNIFF),
                "{path}"
            );
            assert_eq!(
                h.get(header::CACHE_CONTROL).and_then(|v| v.to_str().ok()),
                Some(cache),
                "{path}"
            );
        }
    }
}
