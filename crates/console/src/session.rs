//! Console sessions, in memory: a random 256-bit id (the cookie's value) names the management
//! key the agent signed in with, the session's CSRF token, when it began and when it was last
//! used, and the message to show on the next page (the "flash").
//!
//! A session ends when unused for the idle timeout, at the absolute timeout after sign-in, at
//! sign-out, when its key is no longer configured (the guard checks the key on every request),
//! or when the store is full and it is the least recently used. Sessions live in this process
//! only: a restart, or another instance behind a load balancer, asks to sign in again.

use std::collections::HashMap;
use std::sync::{Mutex, PoisonError};
use std::time::{Duration, Instant};

use rand::RngCore;
use subtle::ConstantTimeEq;

/// A message for the next page.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Flash {
    /// `true`: something went wrong (shown as an alert).
    pub error: bool,
    pub message: String,
}

/// The management key a session signed in with; never shown by `Debug`.
#[derive(Clone)]
pub struct SessionKey(String);

impl SessionKey {
    pub fn expose(&self) -> &str {
        &self.0
    }
}

impl std::fmt::Debug for SessionKey {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.write_str("SessionKey(..)")
    }
}

#[derive(Debug)]
struct Session {
    key: SessionKey,
    csrf: String,
    began: Instant,
    used: Instant,
    flash: Option<Flash>,
}

/// What a request learns of its session.
#[derive(Debug, Clone)]
pub struct Found {
    pub key: SessionKey,
    pub csrf: String,
}

/// Every session of this process.
#[derive(Debug)]
pub struct SessionStore {
    sessions: Mutex<HashMap<String, Session>>,
    idle: Duration,
    absolute: Duration,
    max: usize,
}

/// 32 random bytes, as 64 hex digits.
fn random_token() -> String {
    let mut bytes = [0u8; 32];
    rand::rng().fill_bytes(&mut bytes);
    hex::encode(bytes)
}

impl SessionStore {
    pub fn new(idle: Duration, absolute: Duration, max: usize) -> Self {
        Self {
            sessions: Mutex::new(HashMap::new()),
            idle,
            absolute,
            max: max.max(1),
        }
    }

    fn lock(&self) -> std::sync::MutexGuard<'_, HashMap<String, Session>> {
        self.sessions.lock().unwrap_or_else(PoisonError::into_inner)
    }

    fn alive(&self, s: &Session, now: Instant) -> bool {
        now.saturating_duration_since(s.used) < self.idle
            && now.saturating_duration_since(s.began) < self.absolute
    }

    /// A new session for `key`, at `now`: its id. When the store is full, the expired
    /// sessions are dropped, then the least recently used one.
    pub fn create(&self, key: &str, now: Instant) -> String {
        let id = random_token();
        let mut sessions = self.lock();
        if sessions.len() >= self.max {
            sessions.retain(|_, s| self.alive(s, now));
        }
        if sessions.len() >= self.max
            && let Some(oldest) = sessions
                .iter()
                .min_by_key(|(_, s)| s.used)
                .map(|(id, _)| id.clone())
        {
            sessions.remove(&oldest);
        }
        sessions.insert(
            id.clone(),
            Session {
                key: SessionKey(key.to_owned()),
                csrf: random_token(),
                began: now,
                used: now,
                flash: None,
            },
        );
        id
    }

    /// The live session `id` names, marked used at `now`; an expired one is dropped.
    pub fn touch(&self, id: &str, now: Instant) -> Option<Found> {
        let mut sessions = self.lock();
        let session = sessions.get_mut(id)?;
        if !self.alive(session, now) {
            sessions.remove(id);
            return None;
        }
        session.used = now;
        Some(Found {
            key: session.key.clone(),
            csrf: session.csrf.clone(),
        })
    }

    /// Ends session `id` (sign-out, or its key is gone).
    pub fn remove(&self, id: &str) {
        self.lock().remove(id);
    }

    /// Keeps `flash` for the next page of session `id`.
    pub fn set_flash(&self, id: &str, flash: Flash) {
        if let Some(s) = self.lock().get_mut(id) {
            s.flash = Some(flash);
        }
    }

    /// The message kept for this page, once.
    pub fn take_flash(&self, id: &str) -> Option<Flash> {
        self.lock().get_mut(id).and_then(|s| s.flash.take())
    }

    /// How many sessions are kept (expired ones included until they are noticed).
    pub fn len(&self) -> usize {
        self.lock().len()
    }

    pub fn is_empty(&self) -> bool {
        self.len() == 0
    }
}

/// Whether `presented` is the session's CSRF token, compared in constant time.
pub fn csrf_matches(expected: &str, presented: &str) -> bool {
    !expected.is_empty() && bool::from(expected.as_bytes().ct_eq(presented.as_bytes()))
}

#[cfg(test)]
mod tests {
    use super::*;

    fn store(max: usize) -> SessionStore {
        SessionStore::new(Duration::from_secs(60), Duration::from_secs(600), max)
    }

    #[test]
    fn a_session_has_a_random_256_bit_id_and_its_key_and_token() {
        let s = store(10);
        let t0 = Instant::now();
        let a = s.create("key-a", t0);
        let b = s.create("key-a", t0);
        assert_eq!(a.len(), 64);
        assert!(a.bytes().all(|c| c.is_ascii_hexdigit()));
        assert_ne!(a, b);
        let found = s.touch(&a, t0).expect("live");
        assert_eq!(found.key.expose(), "key-a");
        assert_eq!(found.csrf.len(), 64);
        assert_ne!(found.csrf, s.touch(&b, t0).expect("live").csrf);
        assert!(!format!("{found:?}").contains("key-a"));
        assert!(s.touch("nope", t0).is_none());
    }

    #[test]
    fn idle_and_absolute_timeouts_end_a_session() {
        let s = store(10);
        let t0 = Instant::now();
        let id = s.create("k", t0);
        // Used every 50 s: the idle timeout (60 s) never passes...
        let mut t = t0;
        for _ in 0..11 {
            t += Duration::from_secs(50);
            assert!(s.touch(&id, t).is_some(), "{:?}", t - t0);
        }
        // ...but the absolute one (600 s) does.
        t += Duration::from_secs(50);
        assert!(s.touch(&id, t).is_none());
        assert!(s.is_empty(), "an expired session is dropped");

        let idle = s.create("k", t0);
        assert!(s.touch(&idle, t0 + Duration::from_secs(61)).is_none());
    }

    #[test]
    fn a_full_store_drops_the_expired_then_the_least_recently_used() {
        let s = store(2);
        let t0 = Instant::now();
        let a = s.create("a", t0);
        let b = s.create("b", t0 + Duration::from_secs(1));
        s.touch(&a, t0 + Duration::from_secs(2));
        let c = s.create("c", t0 + Duration::from_secs(3));
        assert_eq!(s.len(), 2);
        assert!(
            s.touch(&b, t0 + Duration::from_secs(3)).is_none(),
            "b was least recent"
        );
        assert!(s.touch(&a, t0 + Duration::from_secs(3)).is_some());
        assert!(s.touch(&c, t0 + Duration::from_secs(3)).is_some());
    }

    #[test]
    fn flash_is_shown_once_and_sign_out_ends_the_session() {
        let s = store(2);
        let t0 = Instant::now();
        let id = s.create("k", t0);
        let flash = Flash {
            error: false,
            message: "done".into(),
        };
        s.set_flash(&id, flash.clone());
        assert_eq!(s.take_flash(&id), Some(flash));
        assert_eq!(s.take_flash(&id), None);
        s.remove(&id);
        assert!(s.touch(&id, t0).is_none());
    }

    #[test]
    fn csrf_tokens_compare_whole() {
        assert!(csrf_matches("abc", "abc"));
        assert!(!csrf_matches("abc", "abd"));
        assert!(!csrf_matches("abc", "ab"));
        assert!(!csrf_matches("abc", ""));
        assert!(!csrf_matches("", ""));
    }
}
