//! Rate limits per caller: a user (the token's `sub`) on the user API, a key (its name) on the
//! management API. Each is a keyed GCRA limiter from `governor`: `per_second` requests a second
//! sustained, up to `burst` at once. A refused request is answered 429 with `Retry-After`.
//!
//! The front-ends' authentication middleware checks the limit once it knows the caller; the
//! limits are found in the application's data ([`RateLimits`]), absent or off means no limit.

use std::num::NonZeroU32;
use std::sync::Arc;
use std::sync::atomic::{AtomicU64, Ordering};
use std::time::Duration;

use actix_web::http::StatusCode;
use actix_web::http::header::{self, HeaderValue};
use governor::clock::{Clock, DefaultClock};
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

/// The limits of both APIs, as application data. Cheap to clone.
#[derive(Debug, Clone, Default)]
pub struct RateLimits {
    /// Per user, on the user API.
    pub user: Option<Arc<RateLimiter>>,
    /// Per management key, on the management API.
    pub management: Option<Arc<RateLimiter>>,
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
    let seconds = wait.as_secs() + u64::from(wait.subsec_nanos() > 0);
    let seconds = seconds.max(1);
    ApiError::new(
        StatusCode::TOO_MANY_REQUESTS,
        "rate_limited",
        format!("too many requests; retry in {seconds} s"),
    )
    .with_header(
        header::RETRY_AFTER,
        HeaderValue::from_str(&seconds.to_string()).unwrap_or(HeaderValue::from_static("1")),
    )
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
