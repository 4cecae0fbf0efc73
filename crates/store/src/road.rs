//! The bounded road from an async caller to one database: a permit, then a pooled connection
//! and the work together on tokio's blocking pool, within a budget.

use std::sync::Arc;
use std::sync::atomic::{AtomicUsize, Ordering};
use std::time::{Duration, Instant};

use licenses_app::ports::StoreError;
use tokio::sync::Semaphore;

use crate::connection::{AnyConnection, LogErrors, Manager, Role};
use crate::error::Error;

/// A connection pool and the semaphore in front of it: at most `pool_size` calls on the
/// blocking pool at once, each waiting at most its budget for its turn and its connection.
pub(crate) struct Road {
    pub(crate) pool: r2d2::Pool<Manager>,
    pub(crate) permits: Arc<Semaphore>,
    /// Calls waiting for a permit: the queue in front of the blocking pool.
    pub(crate) waiting: AtomicUsize,
}

impl Road {
    /// A road of `size` connections to what `manager` opens, the database being `role` to
    /// the service. No connection is opened here.
    pub(crate) fn new(manager: Manager, role: Role, size: u32, checkout_timeout: Duration) -> Road {
        let errors = LogErrors {
            database: manager.target.shown(),
            role,
        };
        let pool = r2d2::Pool::builder()
            .max_size(size)
            .min_idle(Some(1))
            .connection_timeout(checkout_timeout)
            .test_on_check_out(false)
            .error_handler(Box::new(errors))
            .build_unchecked(manager);
        let permits = usize::try_from(size).unwrap_or(Semaphore::MAX_PERMITS);
        Road {
            pool,
            permits: Arc::new(Semaphore::new(permits.min(Semaphore::MAX_PERMITS))),
            waiting: AtomicUsize::new(0),
        }
    }

    /// Runs `f` with a pooled connection on the blocking pool: a permit, then a connection and
    /// the work together, all within `budget`; past it, [`StoreError::Unavailable`].
    pub(crate) async fn run<T, F>(&self, budget: Duration, f: F) -> Result<T, StoreError>
    where
        F: FnOnce(&mut AnyConnection) -> Result<T, Error> + Send + 'static,
        T: Send + 'static,
    {
        let started = Instant::now();
        let busy = || {
            StoreError::Unavailable(format!(
                "no database connection free within {} ms",
                budget.as_millis()
            ))
        };
        let permit = {
            let _waiting = Waiting::new(&self.waiting);
            tokio::time::timeout(budget, Arc::clone(&self.permits).acquire_owned())
                .await
                .map_err(|_| busy())?
                .map_err(|_| StoreError::Internal("the store is closed".into()))?
        };
        let remaining = budget
            .saturating_sub(started.elapsed())
            .max(Duration::from_millis(1));
        let pool = self.pool.clone();
        let task = tokio::task::spawn_blocking(move || {
            let _permit = permit;
            let mut pooled = pool.get_timeout(remaining).map_err(|e| {
                Error::Store(StoreError::Unavailable(format!(
                    "no database connection: {}",
                    crate::config::one_line(&e.to_string())
                )))
            })?;
            let result = f(&mut pooled.conn);
            pooled.notice(&result);
            result
        });
        match task.await {
            Ok(result) => result.map_err(StoreError::from),
            Err(e) => Err(StoreError::Internal(format!("storage task failed: {e}"))),
        }
    }
}

/// Counts a call among the waiting ones for as long as it lives (dropped, too, when the call
/// is cancelled).
struct Waiting<'a>(&'a AtomicUsize);

impl<'a> Waiting<'a> {
    fn new(count: &'a AtomicUsize) -> Self {
        count.fetch_add(1, Ordering::Relaxed);
        Self(count)
    }
}

impl Drop for Waiting<'_> {
    fn drop(&mut self) {
        self.0.fetch_sub(1, Ordering::Relaxed);
    }
}
