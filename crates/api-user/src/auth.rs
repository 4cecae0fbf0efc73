//! `Authorization: Bearer TOKEN`: the middleware of the whole API verifies the token and
//! leaves its [`Claims`] in the request's extensions; the middleware of `/users/{user_id}`
//! lets a user reach only their own resources. Both answer with a response (not an `Err`), so
//! the error document and its headers are the same in process and on the wire.

use actix_web::body::{EitherBody, MessageBody};
use actix_web::dev::{ServiceRequest, ServiceResponse};
use actix_web::http::StatusCode;
use actix_web::http::header::{self, HeaderValue};
use actix_web::middleware::Next;
use actix_web::{HttpMessage, HttpRequest, ResponseError, web};
use licenses_http::{ApiError, RateLimits};

use crate::token::{Claims, TokenError, TokenVerifier};

/// No usable credentials: the challenge only (RFC 6750 §3.1).
fn missing() -> ApiError {
    ApiError::new(
        StatusCode::UNAUTHORIZED,
        "unauthorized",
        "send the header Authorization: Bearer TOKEN",
    )
    .with_header(header::WWW_AUTHENTICATE, HeaderValue::from_static("Bearer"))
}

/// A token was presented and refused: `invalid_token`, or `token_too_long_lived` for a
/// token that lives longer than `auth.user_tokens.max_ttl_s` (the issuer must mint shorter
/// ones: retrying does not help).
fn invalid(reason: TokenError) -> ApiError {
    let (code, detail) = match reason {
        TokenError::Expired => ("invalid_token", "the token has expired"),
        TokenError::TooLongLived => (
            "token_too_long_lived",
            "the token lives longer than this service accepts",
        ),
        _ => ("invalid_token", "the token is not valid"),
    };
    ApiError::new(StatusCode::UNAUTHORIZED, code, detail).with_header(
        header::WWW_AUTHENTICATE,
        HeaderValue::from_static("Bearer error=\"invalid_token\""),
    )
}

/// The token of `Authorization: Bearer TOKEN` (the scheme is case-insensitive); `None`
/// when there is no such header or it is another scheme.
fn bearer(req: &ServiceRequest) -> Option<&str> {
    let value = req.headers().get(header::AUTHORIZATION)?.to_str().ok()?;
    let (scheme, token) = value.split_once(' ')?;
    let token = token.trim();
    (scheme.eq_ignore_ascii_case("Bearer") && !token.is_empty()).then_some(token)
}

/// Middleware: refuses a request without a valid user token (401), or over its user's rate
/// limit (429, when the application has [`RateLimits`]), and records its claims.
pub(crate) async fn require_token<B: MessageBody + 'static>(
    req: ServiceRequest,
    next: Next<B>,
) -> Result<ServiceResponse<EitherBody<B>>, actix_web::Error> {
    let Some(verifier) = req.app_data::<web::Data<TokenVerifier>>().cloned() else {
        tracing::error!("the user API is mounted without a token verifier");
        return Ok(refuse(req, ApiError::internal()));
    };
    let Some(token) = bearer(&req) else {
        return Ok(refuse(req, missing()));
    };
    let verified = verifier.verify(token).await;
    match verified {
        Ok(claims) => {
            let limited = req
                .app_data::<web::Data<RateLimits>>()
                .map_or(Ok(()), |limits| limits.check_user(claims.user.as_str()));
            if let Err(error) = limited {
                return Ok(refuse(req, error));
            }
            req.extensions_mut().insert(claims);
            Ok(next.call(req).await?.map_into_left_body())
        }
        Err(reason) => {
            // The reason only: the token is a credential and never reaches a log. Expiry is
            // routine (apps refresh on 401); anything else may be an attack or a misconfigured
            // issuer, worth seeing.
            if reason == TokenError::Expired {
                tracing::debug!(%reason, "user token refused");
            } else {
                tracing::info!(%reason, "user token refused");
            }
            Ok(refuse(req, invalid(reason)))
        }
    }
}

#[derive(serde::Deserialize)]
struct UserPath {
    user_id: String,
}

/// Middleware of `/users/{user_id}`: a token reaches only its own user's resources (403).
pub(crate) async fn require_owner<B: MessageBody + 'static>(
    req: ServiceRequest,
    next: Next<B>,
) -> Result<ServiceResponse<EitherBody<B>>, actix_web::Error> {
    // Compared as the handlers will read it: percent-decoded (`get` would give the raw
    // segment, and `a%2541` would then pass for the user `a%41`).
    let path_user = req.match_info().load::<UserPath>().ok().map(|p| p.user_id);
    let own = {
        let extensions = req.extensions();
        let user = extensions.get::<Claims>().map(|c| c.user.as_str());
        user.is_some() && user == path_user.as_deref()
    };
    if !own {
        return Ok(refuse(
            req,
            ApiError::new(
                StatusCode::FORBIDDEN,
                "forbidden",
                "this token does not give access to this user's resources",
            ),
        ));
    }
    Ok(next.call(req).await?.map_into_left_body())
}

fn refuse<B>(req: ServiceRequest, error: ApiError) -> ServiceResponse<EitherBody<B>> {
    req.into_response(error.error_response())
        .map_into_right_body()
}

/// The claims the middleware verified for this request.
pub(crate) fn claims(req: &HttpRequest) -> Result<Claims, ApiError> {
    req.extensions()
        .get::<Claims>()
        .cloned()
        .ok_or_else(ApiError::internal)
}
