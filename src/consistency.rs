//! Read-your-writes over read replicas: the `Licenses-Consistency` header and the window.
//!
//! Every request's store calls run in a [`ReadScope`]. A GET (or HEAD) may read from a
//! replica, but only from one that has replayed the position it must see: the one its
//! `Licenses-Consistency` header names, or the last write made with the same credentials
//! (the `Authorization` header, else the cookies of a console session) within
//! `database.read_your_writes_ms`, whichever is later.
//! Any other request reads and writes on the primary. On PostgreSQL, with or without
//! replicas, a request that wrote answers with its commit position in `Licenses-Consistency`.
//!
//! The window is this instance's: behind a load balancer, a client that must see its writes
//! on every instance sends the header back (docs/operations.md, "Scaling out").

use std::collections::HashMap;
use std::hash::BuildHasher;
use std::sync::Mutex;
use std::time::{Duration, Instant};

use actix_web::body::{EitherBody, MessageBody};
use actix_web::dev::{ServiceRequest, ServiceResponse};
use actix_web::http::Method;
use actix_web::http::header::{self, HeaderName, HeaderValue};
use actix_web::middleware::Next;
use actix_web::{ResponseError, web};
use licenses_http::ApiError;
use licenses_store::{Lsn, ReadScope};

/// The header a write's answer carries and a read may send back.
pub const HEADER: HeaderName = HeaderName::from_static("licenses-consistency");

/// Credentials remembered at most: past this, the oldest are forgotten first.
const MAX_REMEMBERED: usize = 100_000;

/// The last writes per credentials, for the window.
#[derive(Debug)]
pub struct Consistency {
    /// Writes have positions (PostgreSQL): their answers carry them. Without (the embedded
    /// SQLite store), every read sees every write and no answer carries a token.
    positions: bool,
    /// Replicas are configured: without, every read is the primary's and no window is kept.
    replicas: bool,
    window: Duration,
    recent: Mutex<HashMap<u64, (Lsn, Instant)>>,
    /// Credentials are kept as keyed hashes, never as they came.
    keys: std::collections::hash_map::RandomState,
}

impl Consistency {
    pub fn new(positions: bool, replicas: bool, window: Duration) -> Consistency {
        Consistency {
            positions,
            replicas,
            window,
            recent: Mutex::default(),
            keys: std::collections::hash_map::RandomState::new(),
        }
    }

    /// The caller's credentials: its `Authorization` header, else its cookies (the support
    /// console's session).
    fn credentials(&self, req: &ServiceRequest) -> Option<u64> {
        let value = req
            .headers()
            .get(header::AUTHORIZATION)
            .or_else(|| req.headers().get(header::COOKIE))?;
        Some(self.keys.hash_one(value.as_bytes()))
    }

    fn recent(&self, credentials: u64, now: Instant) -> Option<Lsn> {
        let recent = self
            .recent
            .lock()
            .unwrap_or_else(std::sync::PoisonError::into_inner);
        recent
            .get(&credentials)
            .filter(|(_, at)| now.saturating_duration_since(*at) < self.window)
            .map(|(lsn, _)| *lsn)
    }

    fn remember(&self, credentials: u64, lsn: Lsn, now: Instant) {
        if self.window.is_zero() {
            return;
        }
        let mut recent = self
            .recent
            .lock()
            .unwrap_or_else(std::sync::PoisonError::into_inner);
        if recent.len() >= MAX_REMEMBERED {
            let window = self.window;
            recent.retain(|_, (_, at)| now.saturating_duration_since(*at) < window);
            if recent.len() >= MAX_REMEMBERED {
                // More writers within the window than kept: the oldest half is forgotten
                // (their clients still have the header).
                let mut ages: Vec<Instant> = recent.values().map(|(_, at)| *at).collect();
                ages.sort_unstable();
                let cut = ages[ages.len() / 2];
                recent.retain(|_, (_, at)| *at > cut);
            }
        }
        let entry = recent.entry(credentials).or_insert((lsn, now));
        *entry = (entry.0.max(lsn), now);
    }
}

/// Middleware: runs the request in its [`ReadScope`] and puts a write's commit position in
/// the answer. A malformed `Licenses-Consistency` on a read is answered 400
/// `invalid_consistency_token`, unless the handler refused the request for another reason.
pub async fn read_your_writes<B: MessageBody + 'static>(
    req: ServiceRequest,
    next: Next<B>,
) -> Result<ServiceResponse<EitherBody<B>>, actix_web::Error> {
    let Some(consistency) = req.app_data::<web::Data<Consistency>>().cloned() else {
        return Ok(next.call(req).await?.map_into_left_body());
    };
    let read = matches!(*req.method(), Method::GET | Method::HEAD);
    let token = match req.headers().get(&HEADER).filter(|_| read) {
        None => None,
        Some(value) => match value.to_str().ok().map(str::parse::<Lsn>) {
            Some(Ok(lsn)) => Some(lsn),
            // Refused once the handler has answered: its refusals (401, 403, 404, …) come
            // first, as for any other bad input. Its reads went to the primary meanwhile.
            _ => {
                let response = ReadScope::run(ReadScope::primary_reads(), next.call(req)).await?;
                if !(response.status().is_success() || response.status().is_redirection()) {
                    return Ok(response.map_into_left_body());
                }
                let error = ApiError::header(
                    "Licenses-Consistency",
                    "invalid_consistency_token",
                    "Licenses-Consistency must be a token a write's answer carried, as it came",
                );
                let (req, _) = response.into_parts();
                return Ok(ServiceResponse::new(req, error.error_response()).map_into_right_body());
            }
        },
    };
    if !consistency.positions {
        return Ok(next.call(req).await?.map_into_left_body());
    }
    let now = Instant::now();
    // The window is kept only with replicas: without, every read is the primary's.
    let credentials = match consistency.replicas {
        true => consistency.credentials(&req),
        false => None,
    };
    let scope = if read && consistency.replicas {
        let recent = credentials.and_then(|c| consistency.recent(c, now));
        ReadScope::replica_reads(token.max(recent))
    } else {
        ReadScope::primary_reads()
    };
    let mut response = ReadScope::run(scope.clone(), next.call(req)).await?;
    if let Some(lsn) = scope.wrote() {
        if let Some(c) = credentials {
            consistency.remember(c, lsn, Instant::now());
        }
        if let Ok(value) = HeaderValue::from_str(&lsn.to_string()) {
            response.headers_mut().insert(HEADER, value);
        }
    }
    Ok(response.map_into_left_body())
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn the_window_remembers_the_latest_write_of_each_credentials_for_its_length() {
        let c = Consistency::new(true, true, Duration::from_secs(5));
        let t0 = Instant::now();
        c.remember(1, Lsn(10), t0);
        c.remember(1, Lsn(5), t0);
        assert_eq!(c.recent(1, t0), Some(Lsn(10)), "a position never goes back");
        assert_eq!(c.recent(2, t0), None);
        assert_eq!(c.recent(1, t0 + Duration::from_secs(4)), Some(Lsn(10)));
        assert_eq!(
            c.recent(1, t0 + Duration::from_secs(5)),
            None,
            "past the window"
        );
    }

    #[test]
    fn a_zero_window_remembers_nothing() {
        let c = Consistency::new(true, true, Duration::ZERO);
        let t0 = Instant::now();
        c.remember(1, Lsn(10), t0);
        assert_eq!(c.recent(1, t0), None);
    }

    #[test]
    fn too_many_writers_forget_the_oldest_first() {
        let c = Consistency::new(true, true, Duration::from_secs(3600));
        let t0 = Instant::now();
        for i in 0..MAX_REMEMBERED as u64 {
            c.remember(i, Lsn(i + 1), t0 + Duration::from_micros(i));
        }
        let last = t0 + Duration::from_secs(1);
        c.remember(u64::MAX, Lsn(1), last);
        assert_eq!(c.recent(u64::MAX, last), Some(Lsn(1)));
        assert_eq!(c.recent(0, last), None, "the oldest is forgotten");
        let newest = MAX_REMEMBERED as u64 - 1;
        assert_eq!(c.recent(newest, last), Some(Lsn(newest + 1)));
        assert!(c.recent.lock().expect("not poisoned").len() <= MAX_REMEMBERED / 2 + 1);
    }
}
