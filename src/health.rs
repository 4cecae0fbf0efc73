//! The health endpoints, on every listener:
//! - `GET /health/live`: 200 while the process runs;
//! - `GET /health/ready`: 200 when the store answers and no migration is pending
//!   ([`StoreHealth::ready`]), else 503 with `Retry-After: 1`.
//!
//! Both answer JSON: `{"status":"ok"}` or `{"status":"unavailable"}`.
//!
//! Readiness is answered from a cached check ([`ReadyCache`]): at most one check of the store
//! a second, whoever asks and however many at once (concurrent callers share the check in
//! flight). The listeners may be public: a flood of `/health/ready` must not take a
//! database connection a request, nor wait `database.checkout_timeout_ms` each while the
//! pool is exhausted.

use std::sync::Arc;
use std::time::{Duration, Instant};

use actix_web::http::header::RETRY_AFTER;
use actix_web::{HttpResponse, web};
use licenses_app::ports::StoreHealth;
use serde_json::json;
use tokio::sync::Mutex;

/// How long a readiness check answers for.
pub(crate) const READY_MAX_AGE: Duration = Duration::from_secs(1);

/// A clock, so that tests can hold time still.
type Clock = Arc<dyn Fn() -> Instant + Send + Sync>;

/// The last readiness check and when it started; refreshed by the first caller who finds it
/// older than [`READY_MAX_AGE`], while the others wait for that one check (single flight:
/// the lock is held across it).
pub(crate) struct ReadyCache {
    health: Arc<dyn StoreHealth>,
    last: Mutex<Option<(Instant, bool)>>,
    max_age: Duration,
    now: Clock,
}

impl ReadyCache {
    pub(crate) fn new(health: Arc<dyn StoreHealth>) -> Self {
        Self::with_clock(health, READY_MAX_AGE, Arc::new(Instant::now))
    }

    fn with_clock(health: Arc<dyn StoreHealth>, max_age: Duration, now: Clock) -> Self {
        Self {
            health,
            last: Mutex::new(None),
            max_age,
            now,
        }
    }

    /// Whether the service is ready, as checked at most [`READY_MAX_AGE`] ago.
    pub(crate) async fn ready(&self) -> bool {
        let mut last = self.last.lock().await;
        let now = (self.now)();
        if let Some((checked, ready)) = *last
            && now.saturating_duration_since(checked) < self.max_age
        {
            return ready;
        }
        let ready = match self.health.ready().await {
            Ok(()) => true,
            Err(error) => {
                tracing::warn!(%error, "not ready");
                false
            }
        };
        // Dated from the check's start: checks start at least `max_age` apart.
        *last = Some((now, ready));
        ready
    }
}

/// Mounts both endpoints, reading readiness from `ready` (shared by every worker, and by
/// both listeners).
pub(crate) fn routes(cfg: &mut web::ServiceConfig, ready: Arc<ReadyCache>) {
    cfg.app_data(web::Data::from(ready))
        .route("/health/live", web::get().to(live))
        .route("/health/ready", web::get().to(ready_endpoint));
}

async fn live() -> HttpResponse {
    HttpResponse::Ok().json(json!({ "status": "ok" }))
}

async fn ready_endpoint(cache: web::Data<ReadyCache>) -> HttpResponse {
    if cache.ready().await {
        HttpResponse::Ok().json(json!({ "status": "ok" }))
    } else {
        HttpResponse::ServiceUnavailable()
            .insert_header((RETRY_AFTER, "1"))
            .json(json!({ "status": "unavailable" }))
    }
}

#[cfg(test)]
mod tests {
    use std::sync::Mutex as StdMutex;
    use std::sync::atomic::{AtomicUsize, Ordering};

    use async_trait::async_trait;
    use licenses_app::ports::StoreError;
    use tokio::sync::Semaphore;

    use super::*;

    /// A store whose checks are counted, answer `ok`, and each wait for a permit of `gate`.
    struct Counted {
        checks: AtomicUsize,
        ok: StdMutex<bool>,
        gate: Semaphore,
    }

    #[async_trait]
    impl StoreHealth for Counted {
        async fn ready(&self) -> Result<(), StoreError> {
            self.checks.fetch_add(1, Ordering::SeqCst);
            self.gate.acquire().await.map(|p| p.forget()).ok();
            if *self
                .ok
                .lock()
                .unwrap_or_else(std::sync::PoisonError::into_inner)
            {
                Ok(())
            } else {
                Err(StoreError::Unavailable("gone".into()))
            }
        }
    }

    fn counted(permits: usize) -> Arc<Counted> {
        Arc::new(Counted {
            checks: AtomicUsize::new(0),
            ok: StdMutex::new(true),
            gate: Semaphore::new(permits),
        })
    }

    /// A clock that moves only when told.
    fn still_clock() -> (Clock, Arc<StdMutex<Instant>>) {
        let at = Arc::new(StdMutex::new(Instant::now()));
        let read = Arc::clone(&at);
        let clock: Clock = Arc::new(move || {
            *read
                .lock()
                .unwrap_or_else(std::sync::PoisonError::into_inner)
        });
        (clock, at)
    }

    #[tokio::test(flavor = "multi_thread", worker_threads = 2)]
    async fn many_concurrent_callers_share_one_check_a_second() {
        let store = counted(0);
        let (clock, at) = still_clock();
        let cache = Arc::new(ReadyCache::with_clock(
            store.clone(),
            Duration::from_secs(1),
            clock,
        ));
        // 200 callers at once, while the one check is held in flight.
        let callers: Vec<_> = (0..200)
            .map(|_| {
                let cache = Arc::clone(&cache);
                tokio::spawn(async move { cache.ready().await })
            })
            .collect();
        // Let the check through only once it has started.
        while store.checks.load(Ordering::SeqCst) == 0 {
            tokio::task::yield_now().await;
        }
        store.gate.add_permits(1_000);
        for caller in callers {
            assert!(caller.await.expect("joins"));
        }
        assert_eq!(store.checks.load(Ordering::SeqCst), 1, "one check for all");

        // Within the second: still that check.
        *at.lock().expect("clock") += Duration::from_millis(999);
        *store.ok.lock().expect("ok") = false;
        assert!(cache.ready().await, "cached");
        assert_eq!(store.checks.load(Ordering::SeqCst), 1);

        // A second after it started: checked again, and the failure is cached as well.
        *at.lock().expect("clock") += Duration::from_millis(1);
        assert!(!cache.ready().await, "checked again");
        assert!(!cache.ready().await);
        assert_eq!(store.checks.load(Ordering::SeqCst), 2);
    }
}
