//! Rate limits per caller: a user (the token's `sub`) on the user API, a key (its name) on the
//! management API. Each is a keyed GCRA limiter from `governor`: `per_second` requests a second
//! sustained, up to `burst` at once. A refused request is answered 429 with `Retry-After`.
//!
//! The front-ends' authentication middleware checks the limit once it knows the caller; the
//! limits are found in the application's data ([`RateLimits`]), absent or off means no limit.
//!
//! Before authentication, [`limit_auth_failures`] bounds key and token guessing: each 401 a
//! client address gets is counted ([`AuthFailureLimiter`], `limits.auth_failures_per_minute`),
//! and once an address has used its budget, its requests get 429 with `Retry-After` before
//! any credential is looked at, until a failure is allowed again. The budget is shared by
//! both APIs. The client address is [`client_addr`]'s: the peer address, or a trusted proxy's `X-Forwarded-For`.

use std::collections::HashMap;
use std::net::IpAddr;
use std::num::NonZeroU32;
use std::sync::atomic::{AtomicU64, Ordering};
use std::sync::{Arc, Mutex, PoisonError};
use std::time::{Duration, Instant};

use actix_web::body::{EitherBody, MessageBody};
use actix_web::dev::{ServiceRequest, ServiceResponse};
use actix_web::http::StatusCode;
use actix_web::http::header::{self, HeaderValue};
use actix_web::middleware::Next;
use actix_web::{ResponseError, web};
use governor::clock::{Clock, DefaultClock};
use governor::middleware::StateInformationMiddleware;
use governor::{DefaultKeyedRateLimiter, Quota};

use crate::jsonapi::ApiError;

/// Every this many checks, callers not seen for a while are forgotten, so that the limiter's
/// memory follows the active callers and not every user ever seen.
const PRUNE_EVERY: u64 = 4096;

/// One keyed limit.
pub struct RateLimiter {
    limiter: DefaultKeyedRateLimiter<String>,
    clock: DefaultClock,
    checks: AtomicU64,
    per_second: u32,
    burst: u32,
}

impl std::fmt::Debug for RateLimiter {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("RateLimiter")
            .field("per_second", &self.per_second)
            .field("burst", &self.burst)
            .finish_non_exhaustive()
    }
}

impl RateLimiter {
    /// `per_second` requests a second per caller, bursts of up to `burst` (the settings refuse
    /// a burst of 0 with a rate; here it falls back to `per_second`); `None` when
    /// `per_second` is 0: no limit.
    pub fn new(per_second: u32, burst: u32) -> Option<Self> {
        let rate = NonZeroU32::new(per_second)?;
        let burst_cells = NonZeroU32::new(burst).unwrap_or(rate);
        let clock = DefaultClock::default();
        Some(Self {
            limiter: DefaultKeyedRateLimiter::dashmap_with_clock(
                Quota::per_second(rate).allow_burst(burst_cells),
                clock.clone(),
            ),
            clock,
            checks: AtomicU64::new(0),
            per_second,
            burst: burst_cells.get(),
        })
    }

    /// Counts one request of `caller`: `Err` with how long until the next one would pass when
    /// this one is over the limit.
    pub fn check(&self, caller: &str) -> Result<(), Duration> {
        if self.checks.fetch_add(1, Ordering::Relaxed) % PRUNE_EVERY == PRUNE_EVERY - 1 {
            self.limiter.retain_recent();
        }
        self.limiter
            .check_key(&caller.to_owned())
            .map_err(|not_until| not_until.wait_time_from(self.clock.now()))
    }
}

/// Addresses blocked at once beyond which the expired ones are forgotten.
const PRUNE_BLOCKED_AT: usize = 10_000;

/// Failed authentications (401) per client address: `per_minute` a minute, sustained, and as
/// many at once; an address over it is blocked until one more is allowed.
pub struct AuthFailureLimiter {
    failures: DefaultKeyedRateLimiter<IpAddr, StateInformationMiddleware>,
    clock: DefaultClock,
    /// Until when each blocked address is refused.
    blocked: Mutex<HashMap<IpAddr, Instant>>,
    replenish: Duration,
    checks: AtomicU64,
    per_minute: u32,
}

impl std::fmt::Debug for AuthFailureLimiter {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("AuthFailureLimiter")
            .field("per_minute", &self.per_minute)
            .finish_non_exhaustive()
    }
}

impl AuthFailureLimiter {
    /// `per_minute` failures a minute per address; `None` when 0: no limit.
    pub fn new(per_minute: u32) -> Option<Self> {
        let rate = NonZeroU32::new(per_minute)?;
        let quota = Quota::per_minute(rate).allow_burst(rate);
        let clock = DefaultClock::default();
        Some(Self {
            failures: DefaultKeyedRateLimiter::dashmap_with_clock(quota, clock.clone())
                .with_middleware::<StateInformationMiddleware>(),
            clock,
            blocked: Mutex::new(HashMap::new()),
            replenish: quota.replenish_interval(),
            checks: AtomicU64::new(0),
            per_minute,
        })
    }

    /// Before authentication: `Err` with how long `addr` must wait while it is blocked.
    pub fn check(&self, addr: IpAddr) -> Result<(), Duration> {
        let mut blocked = self.blocked.lock().unwrap_or_else(PoisonError::into_inner);
        let Some(until) = blocked.get(&addr).copied() else {
            return Ok(());
        };
        let now = Instant::now();
        if until > now {
            Err(until - now)
        } else {
            blocked.remove(&addr);
            Ok(())
        }
    }

    /// After a 401 to `addr`: counts it, and blocks the address once it has used its budget.
    pub fn record_failure(&self, addr: IpAddr) {
        if self.checks.fetch_add(1, Ordering::Relaxed) % PRUNE_EVERY == PRUNE_EVERY - 1 {
            self.failures.retain_recent();
        }
        let wait = match self.failures.check_key(&addr) {
            Ok(state) if state.remaining_burst_capacity() > 0 => return,
            // That was the last failure allowed: the next one is allowed once a cell is back.
            Ok(_) => self.replenish,
            Err(not_until) => not_until.wait_time_from(self.clock.now()),
        };
        let now = Instant::now();
        let mut blocked = self.blocked.lock().unwrap_or_else(PoisonError::into_inner);
        if blocked.len() >= PRUNE_BLOCKED_AT {
            blocked.retain(|_, until| *until > now);
        }
        blocked.insert(addr, now + wait);
    }
}

/// The address a request comes from, for [`limit_auth_failures`]: the peer address of the
/// connection, or behind a trusted proxy (`server.trusted_proxies`) the address its
/// `X-Forwarded-For` names ([`crate::PublicOrigins::client_addr`]).
pub fn client_addr(req: &ServiceRequest) -> Option<IpAddr> {
    let peer = req.peer_addr()?.ip();
    let Some(origins) = req.app_data::<web::Data<crate::PublicOrigins>>() else {
        return Some(peer);
    };
    let forwarded_for = req
        .headers()
        .get("x-forwarded-for")
        .and_then(|v| v.to_str().ok());
    Some(origins.client_addr(peer, forwarded_for))
}

/// Middleware, outside an API's authentication: 429 while the client address is blocked for
/// too many failed authentications, and counts the 401s it gets (when the application has
/// [`RateLimits::auth_failures`]).
pub async fn limit_auth_failures<B: MessageBody + 'static>(
    req: ServiceRequest,
    next: Next<B>,
) -> Result<ServiceResponse<EitherBody<B>>, actix_web::Error> {
    let limiter = req
        .app_data::<web::Data<RateLimits>>()
        .and_then(|limits| limits.auth_failures.clone());
    let (Some(limiter), Some(addr)) = (limiter, client_addr(&req)) else {
        return Ok(next.call(req).await?.map_into_left_body());
    };
    if let Err(wait) = limiter.check(addr) {
        tracing::info!(client = %addr, "too many failed authentications: answering 429");
        return Ok(req
            .into_response(too_many_failures(wait).error_response())
            .map_into_right_body());
    }
    let response = next.call(req).await?;
    if response.status() == StatusCode::UNAUTHORIZED {
        limiter.record_failure(addr);
    }
    Ok(response.map_into_left_body())
}

/// 429 `rate_limited` of a blocked address, with `Retry-After`.
fn too_many_failures(wait: Duration) -> ApiError {
    let seconds = retry_after_seconds(wait);
    ApiError::new(
        StatusCode::TOO_MANY_REQUESTS,
        "rate_limited",
        format!("too many failed authentications from this address; retry in {seconds} s"),
    )
    .with_header(header::RETRY_AFTER, retry_after(seconds))
}

/// The limits of both APIs, as application data. Cheap to clone.
#[derive(Debug, Clone, Default)]
pub struct RateLimits {
    /// Per user, on the user API.
    pub user: Option<Arc<RateLimiter>>,
    /// Per management key, on the management API.
    pub management: Option<Arc<RateLimiter>>,
    /// Failed authentications per client address, on both APIs.
    pub auth_failures: Option<Arc<AuthFailureLimiter>>,
}

impl RateLimits {
    /// Counts a request of `user` on the user API: 429 when over the limit.
    pub fn check_user(&self, user: &str) -> Result<(), ApiError> {
        check(self.user.as_deref(), "user", user)
    }

    /// Counts a request made with the management key named `key` (429 when over the limit).
    pub fn check_management(&self, key: &str) -> Result<(), ApiError> {
        check(self.management.as_deref(), "management", key)
    }
}

fn check(limiter: Option<&RateLimiter>, api: &'static str, caller: &str) -> Result<(), ApiError> {
    let Some(limiter) = limiter else {
        return Ok(());
    };
    limiter.check(caller).map_err(|wait| {
        tracing::info!(api, caller, "rate limited: answering 429");
        too_many_requests(wait)
    })
}

/// 429 with `Retry-After`: whole seconds, rounded up, at least 1.
pub fn too_many_requests(wait: Duration) -> ApiError {
    let seconds = retry_after_seconds(wait);
    ApiError::new(
        StatusCode::TOO_MANY_REQUESTS,
        "rate_limited",
        format!("too many requests; retry in {seconds} s"),
    )
    .with_header(header::RETRY_AFTER, retry_after(seconds))
}

/// Whole seconds, rounded up, at least 1.
fn retry_after_seconds(wait: Duration) -> u64 {
    (wait.as_secs() + u64::from(wait.subsec_nanos() > 0)).max(1)
}

fn retry_after(seconds: u64) -> HeaderValue {
    HeaderValue::from_str(&seconds.to_string()).unwrap_or(HeaderValue::from_static("1"))
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn off_means_no_limiter() {
        assert!(RateLimiter::new(0, 10).is_none());
        assert!(RateLimits::default().check_user("u").is_ok());
    }

    #[test]
    fn the_burst_passes_then_the_caller_waits_and_others_do_not() {
        let limiter = RateLimiter::new(1, 3).expect("on");
        for _ in 0..3 {
            assert!(limiter.check("a").is_ok());
        }
        let wait = limiter.check("a").expect_err("over the burst");
        assert!(wait <= Duration::from_secs(1), "{wait:?}");
        assert!(
            limiter.check("b").is_ok(),
            "another caller has its own budget"
        );
    }

    #[test]
    fn an_address_is_blocked_after_its_failures_and_others_are_not() {
        assert!(AuthFailureLimiter::new(0).is_none());
        let limiter = AuthFailureLimiter::new(3).expect("on");
        let a: IpAddr = [192, 0, 2, 1].into();
        let b: IpAddr = [192, 0, 2, 2].into();
        for _ in 0..2 {
            limiter.record_failure(a);
            assert!(limiter.check(a).is_ok(), "within the budget");
        }
        limiter.record_failure(a);
        let wait = limiter
            .check(a)
            .expect_err("the third failure used the budget");
        // One failure back every 60 s / 3.
        assert!(wait <= Duration::from_secs(20), "{wait:?}");
        assert!(
            limiter.check(b).is_ok(),
            "another address has its own budget"
        );
        limiter.record_failure(b);
        assert!(limiter.check(b).is_ok());
    }

    #[actix_web::test]
    async fn the_middleware_answers_429_before_authentication_once_blocked() {
        use actix_web::{App, HttpResponse, test};
        let limits = RateLimits {
            auth_failures: AuthFailureLimiter::new(2).map(Arc::new),
            ..RateLimits::default()
        };
        let app = test::init_service(
            App::new()
                .app_data(web::Data::new(limits))
                .wrap(actix_web::middleware::from_fn(limit_auth_failures))
                .route(
                    "/",
                    web::get().to(|req: actix_web::HttpRequest| async move {
                        if req.headers().contains_key("authorization") {
                            HttpResponse::Ok().finish()
                        } else {
                            HttpResponse::Unauthorized().finish()
                        }
                    }),
                ),
        )
        .await;
        let peer: std::net::SocketAddr = ([198, 51, 100, 7], 4000).into();
        let call = |authorized: bool| {
            let mut req = test::TestRequest::get().uri("/").peer_addr(peer);
            if authorized {
                req = req.insert_header(("authorization", "right"));
            }
            req.to_request()
        };
        assert_eq!(
            test::call_service(&app, call(true)).await.status(),
            StatusCode::OK
        );
        for _ in 0..2 {
            let r = test::call_service(&app, call(false)).await;
            assert_eq!(r.status(), StatusCode::UNAUTHORIZED);
        }
        // Blocked: even the right credential is not looked at.
        let r = test::call_service(&app, call(true)).await;
        assert_eq!(r.status(), StatusCode::TOO_MANY_REQUESTS);
        assert!(r.headers().contains_key(header::RETRY_AFTER));
    }

    #[test]
    fn refusals_are_429_with_retry_after_in_whole_seconds() {
        use actix_web::ResponseError;
        let response = too_many_requests(Duration::from_millis(1500)).error_response();
        assert_eq!(response.status(), StatusCode::TOO_MANY_REQUESTS);
        assert_eq!(
            response
                .headers()
                .get(header::RETRY_AFTER)
                .and_then(|v| v.to_str().ok()),
            Some("2")
        );
        let e = too_many_requests(Duration::ZERO);
        assert_eq!(e.errors()[0].code, "rate_limited");
        assert_eq!(e.errors()[0].detail, "too many requests; retry in 1 s");
    }
}
