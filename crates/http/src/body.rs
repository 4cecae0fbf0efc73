//! The actix side of reading a request: its declared media type and the one it accepts, its
//! body within a size limit, and its `Idempotency-Key` bound to a digest of the request.

use actix_web::body::{EitherBody, MessageBody};
use actix_web::dev::{ServiceRequest, ServiceResponse};
use actix_web::error::PayloadError;
use actix_web::http::StatusCode;
use actix_web::http::header;
use actix_web::middleware::Next;
use actix_web::web::{Bytes, BytesMut, Payload};
use actix_web::{HttpRequest, ResponseError};
use futures_util::StreamExt;
use licenses_app::IdempotencyKey;
use sha2::{Digest, Sha256};

use crate::jsonapi::{ApiError, JSONAPI};

const IDEMPOTENCY_KEY: &str = "Idempotency-Key";
const IDEMPOTENCY_KEY_MAX: usize = 255;

/// Refuses a request whose body is not declared as a JSON:API document (415). Media type
/// parameters are refused too, as JSON:API 1.0 requires.
pub fn require_jsonapi(req: &HttpRequest) -> Result<(), ApiError> {
    let declared = req
        .headers()
        .get(header::CONTENT_TYPE)
        .and_then(|v| v.to_str().ok());
    match declared {
        Some(ct) if ct.trim().eq_ignore_ascii_case(JSONAPI) => Ok(()),
        _ => Err(ApiError::header_status(
            StatusCode::UNSUPPORTED_MEDIA_TYPE,
            "Content-Type",
            "unsupported_media_type",
            format!("send the request document with Content-Type: {JSONAPI}"),
        )),
    }
}

/// Refuses a request whose `Accept` names the JSON:API media type, but each time with media
/// type parameters (406), as JSON:API 1.0 requires: no answer of that variant exists. An
/// `Accept` that does not name it (`*/*`, `application/json`, none) gets it all the same.
/// A range's `q` and what follows it are its weight, not media type parameters.
pub fn require_acceptable(req: &HttpRequest) -> Result<(), ApiError> {
    let mut named = false;
    for value in req.headers().get_all(header::ACCEPT) {
        let Ok(value) = value.to_str() else {
            continue;
        };
        for range in value.split(',') {
            let mut parts = range.split(';').map(str::trim);
            if !parts
                .next()
                .is_some_and(|t| t.eq_ignore_ascii_case(JSONAPI))
            {
                continue;
            }
            named = true;
            if parts.take_while(|p| !is_weight(p)).all(str::is_empty) {
                return Ok(());
            }
        }
    }
    if named {
        Err(ApiError::header_status(
            StatusCode::NOT_ACCEPTABLE,
            "Accept",
            "not_acceptable",
            format!("accept {JSONAPI} without media type parameters"),
        ))
    } else {
        Ok(())
    }
}

/// Whether an `Accept` range's parameter is its weight (`q=0.5`).
fn is_weight(parameter: &str) -> bool {
    parameter
        .split_once('=')
        .is_some_and(|(name, _)| name.trim().eq_ignore_ascii_case("q"))
}

/// Middleware: [`require_acceptable`] before anything else of the request.
pub async fn acceptable_only<B: MessageBody + 'static>(
    req: ServiceRequest,
    next: Next<B>,
) -> Result<ServiceResponse<EitherBody<B>>, actix_web::Error> {
    match require_acceptable(req.request()) {
        Ok(()) => Ok(next.call(req).await?.map_into_left_body()),
        Err(error) => Ok(req
            .into_response(error.error_response())
            .map_into_right_body()),
    }
}

/// The cause of the `TimedOut` error a request's payload ends with when its whole body did
/// not arrive within the body deadline (`server.body_deadline_ms`): [`read_body`] answers it
/// 408 `body_deadline`, apart from a client that paused too long (`body_timeout`).
#[derive(Debug, Clone, Copy, PartialEq, Eq, thiserror::Error)]
#[error("the request body did not arrive within its deadline")]
pub struct BodyDeadlineExceeded;

/// Reads the request body, refusing more than `limit` bytes with 413 as soon as they arrive,
/// a body whose client stopped sending it (the payload ends with a `TimedOut` error) with
/// 408 `body_timeout`, and one that did not arrive whole within its deadline (a `TimedOut`
/// caused by [`BodyDeadlineExceeded`]) with 408 `body_deadline`.
pub async fn read_body(mut payload: Payload, limit: usize) -> Result<Bytes, ApiError> {
    let mut body = BytesMut::new();
    while let Some(chunk) = payload.next().await {
        let chunk = chunk.map_err(|error| match error {
            PayloadError::Io(e)
                if e.kind() == std::io::ErrorKind::TimedOut
                    && e.get_ref().is_some_and(|c| c.is::<BodyDeadlineExceeded>()) =>
            {
                ApiError::new(
                    StatusCode::REQUEST_TIMEOUT,
                    "body_deadline",
                    "the request body did not arrive whole within the deadline",
                )
            }
            PayloadError::Io(e) if e.kind() == std::io::ErrorKind::TimedOut => ApiError::new(
                StatusCode::REQUEST_TIMEOUT,
                "body_timeout",
                "the request body did not arrive in time",
            ),
            _ => ApiError::new(
                StatusCode::BAD_REQUEST,
                "unreadable_body",
                "the request body could not be read",
            ),
        })?;
        if body.len() + chunk.len() > limit {
            return Err(ApiError::new(
                StatusCode::PAYLOAD_TOO_LARGE,
                "body_too_large",
                format!("the request body is larger than {limit} bytes"),
            ));
        }
        body.extend_from_slice(&chunk);
    }
    Ok(body.freeze())
}

/// The request's `Idempotency-Key`, scoped to its caller and bound to a digest of the request
/// (method, path and query, body), or `None` when the header is absent.
pub fn idempotency_key(
    req: &HttpRequest,
    scope: &str,
    body: &[u8],
) -> Result<Option<IdempotencyKey>, ApiError> {
    let Some(value) = req.headers().get(IDEMPOTENCY_KEY) else {
        return Ok(None);
    };
    let key = value
        .to_str()
        .ok()
        .filter(|k| !k.is_empty() && k.len() <= IDEMPOTENCY_KEY_MAX && k.bytes().all(|b| b.is_ascii_graphic()))
        .ok_or_else(|| {
            ApiError::header(
                IDEMPOTENCY_KEY,
                "invalid_idempotency_key",
                format!("{IDEMPOTENCY_KEY} is 1 to {IDEMPOTENCY_KEY_MAX} visible ASCII characters, such as a UUID"),
            )
        })?;
    let mut digest = Sha256::new();
    digest.update(req.method().as_str());
    digest.update(b" ");
    digest.update(req.uri().path_and_query().map_or("", |p| p.as_str()));
    digest.update(b"\n");
    digest.update(body);
    Ok(Some(IdempotencyKey {
        scope: scope.to_owned(),
        key: key.to_owned(),
        fingerprint: hex::encode(digest.finalize()),
    }))
}

#[cfg(test)]
mod tests {
    use actix_web::test::TestRequest;

    use super::*;

    #[test]
    fn only_the_jsonapi_media_type_is_accepted() {
        let ok = TestRequest::default()
            .insert_header((header::CONTENT_TYPE, JSONAPI))
            .to_http_request();
        assert!(require_jsonapi(&ok).is_ok());
        for bad in [
            "application/json",
            "application/vnd.api+json; ext=x",
            "text/plain",
        ] {
            let r = TestRequest::default()
                .insert_header((header::CONTENT_TYPE, bad))
                .to_http_request();
            assert_eq!(
                require_jsonapi(&r).map_err(|e| e.status()),
                Err(StatusCode::UNSUPPORTED_MEDIA_TYPE),
                "{bad}"
            );
        }
        assert!(require_jsonapi(&TestRequest::default().to_http_request()).is_err());
    }

    #[test]
    fn the_key_is_bound_to_the_request() {
        let r = TestRequest::post()
            .uri("/x")
            .insert_header((IDEMPOTENCY_KEY, "abc"))
            .to_http_request();
        let a = idempotency_key(&r, "key:dev", b"{}")
            .expect("ok")
            .expect("some");
        let b = idempotency_key(&r, "key:dev", b"{ }")
            .expect("ok")
            .expect("some");
        assert_eq!(a.key, "abc");
        assert_ne!(a.fingerprint, b.fingerprint);
        assert_eq!(
            idempotency_key(&TestRequest::default().to_http_request(), "s", b""),
            Ok(None)
        );
        let bad = TestRequest::post()
            .insert_header((IDEMPOTENCY_KEY, "a b"))
            .to_http_request();
        assert!(idempotency_key(&bad, "s", b"").is_err());
    }
}
