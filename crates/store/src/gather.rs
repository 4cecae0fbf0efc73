//! Users' first pages of licenses, read together.
//!
//! GetUserLicenses and the entitlements are the hottest reads of the service, and each is
//! one indexed query. Read one at a time, each costs a hop to the blocking pool and back and
//! a round trip to the database, and on a loaded machine those thread wake-ups cost more than
//! the query (docs/performance.md). So these reads queue here: a *reader* on the blocking
//! pool takes every read waiting, answers them all with one statement on one connection,
//! and goes on while more wait. Under light load a read finds no reader busy and starts one:
//! it is answered as soon as alone. Under heavy load the batches grow by themselves with the
//! time a batch takes, and the cost of a hop and a round trip is shared by the batch.
//!
//! A reader holds one of the store's permits and one pooled connection like any store call,
//! within the same checkout timeout; at most [`READERS`] run at once. Reads are answered
//! exactly as [`licenses::find`] answers them alone.

use std::collections::HashMap;
use std::sync::atomic::{AtomicU8, AtomicU64, Ordering};
use std::sync::{Mutex, MutexGuard};

use licenses_app::ports::{LicenseQuery, StoreError};
use licenses_domain::License;
use tokio::sync::oneshot;

use crate::connection::AnyConnection;
use crate::error::Error;
use crate::repo::licenses;

/// Readers at most at once. One reads while fewer than a full batch wait: more would only
/// split the batches (measured with `bench/run`: a second reader for every read cost 5 to 15 %
/// of the throughput); a second starts when a full batch waits for the first.
pub(crate) const READERS: usize = 2;

/// Reads answered by one statement at most.
pub(crate) const MAX_BATCH: usize = 64;

/// Rows one statement reads at most. A batch whose users hold more is answered user by user
/// instead (a user with thousands of licenses is rare, and must not hold a batch's memory).
pub(crate) const MAX_ROWS: usize = 10_000;

/// A reader's call on a replica, which its task may abandon at a deadline: a replica that
/// stopped answering holds the call, and the batch in its hands, until it answers or its
/// connection fails. The task keeps the reader's count and goes on at the primary; the call
/// takes no batch after that. Changed only under the state's lock, like the count.
pub(crate) struct Claim(AtomicU8);

impl Default for Claim {
    fn default() -> Self {
        Self(AtomicU8::new(LIVE))
    }
}

/// The call reads (or has not begun).
const LIVE: u8 = 0;
/// The call found no read waiting and counted its reader out.
const COUNTED_OUT: u8 = 1;
/// The task gave up on the call.
const ABANDONED: u8 = 2;

/// The answer a waiting read gets.
type Answer = Result<Vec<License>, StoreError>;

/// A read waiting for a reader: the first page of one user's licenses.
struct Waiting {
    query: LicenseQuery,
    answer: oneshot::Sender<Answer>,
}

/// The reads waiting, and how many readers run.
pub(crate) struct Gather {
    state: Mutex<State>,
    /// [`MAX_ROWS`], but in tests.
    max_rows: usize,
}

impl Default for Gather {
    fn default() -> Self {
        Self {
            state: Mutex::default(),
            max_rows: MAX_ROWS,
        }
    }
}

#[derive(Default)]
struct State {
    waiting: Vec<Waiting>,
    readers: usize,
}

impl Gather {
    fn state(&self) -> MutexGuard<'_, State> {
        // Nothing is left half-done under this lock (a push, a take, a count): a panic
        // elsewhere does not make the state wrong.
        self.state
            .lock()
            .unwrap_or_else(std::sync::PoisonError::into_inner)
    }

    /// Queues `query` (a first page: no cursor) and returns where its answer comes, and
    /// whether the caller must start a reader ([`Gather::read`]): none runs, or a full batch
    /// waits and fewer than [`READERS`] run.
    pub(crate) fn push(&self, query: LicenseQuery) -> (oneshot::Receiver<Answer>, bool) {
        debug_assert!(query.user.is_some() && query.after.is_none());
        let (answer, receiver) = oneshot::channel();
        let mut state = self.state();
        state.waiting.push(Waiting { query, answer });
        let start =
            state.readers == 0 || (state.readers < READERS && state.waiting.len() >= MAX_BATCH);
        if start {
            state.readers += 1;
        }
        (receiver, start)
    }

    /// A reader's work, on a pooled connection: batches until no read waits, each counted in
    /// `served` before it is answered. Returns once it found none waiting and so ended (counted out, atomically
    /// with finding the queue empty). On an error of the statement, the batch in hand gets it
    /// and the error is returned, for the pool to judge the connection; the reader is then
    /// still counted ([`Gather::ended`]).
    pub(crate) fn read(&self, conn: &mut AnyConnection, served: &AtomicU64) -> Result<(), Error> {
        self.read_batches(conn, served, false, None)
    }

    /// [`Gather::read`] on a replica, for a task that may abandon the call ([`Claim`]): a
    /// batch whose statement fails goes back to the front of the queue unanswered, and the
    /// reader, still counted, goes on elsewhere (the primary). Once abandoned, the call takes
    /// no more batches and leaves the count to its task.
    pub(crate) fn read_or_give_back(
        &self,
        conn: &mut AnyConnection,
        served: &AtomicU64,
        claim: &Claim,
    ) -> Result<(), Error> {
        self.read_batches(conn, served, true, Some(claim))
    }

    /// A task gives up waiting for its call of [`Gather::read_or_give_back`] (the replica
    /// stopped answering, or failed): whether the task is still a counted reader, to go on
    /// elsewhere. It is not when the call had answered every read and counted itself out.
    pub(crate) fn abandon(&self, claim: &Claim) -> bool {
        let _state = self.state();
        claim.0.swap(ABANDONED, Ordering::AcqRel) != COUNTED_OUT
    }

    fn read_batches(
        &self,
        conn: &mut AnyConnection,
        served: &AtomicU64,
        give_back: bool,
        claim: Option<&Claim>,
    ) -> Result<(), Error> {
        loop {
            let batch = {
                let mut state = self.state();
                if claim.is_some_and(|c| c.0.load(Ordering::Acquire) == ABANDONED) {
                    return Ok(());
                }
                if state.waiting.is_empty() {
                    state.readers -= 1;
                    if let Some(claim) = claim {
                        claim.0.store(COUNTED_OUT, Ordering::Release);
                    }
                    return Ok(());
                }
                let n = state.waiting.len().min(MAX_BATCH);
                state.waiting.drain(..n).collect::<Vec<_>>()
            };
            let n = u64::try_from(batch.len()).unwrap_or(u64::MAX);
            // Counted before the answers go: a caller reading the count after its answer
            // finds its read in it.
            served.fetch_add(n, Ordering::Relaxed);
            match answer(conn, batch, self.max_rows, give_back) {
                Ok(()) => {}
                Err((error, back)) => {
                    served.fetch_sub(n, Ordering::Relaxed);
                    if let Some(back) = back {
                        let mut state = self.state();
                        let later = std::mem::replace(&mut state.waiting, back);
                        state.waiting.extend(later);
                    }
                    return Err(error);
                }
            }
        }
    }

    /// A reader ended on `error` (of its statement, or before it had a connection). When it
    /// was the last, the reads still waiting get that error: no reader would take them.
    pub(crate) fn ended(&self, error: &StoreError) {
        let orphans = {
            let mut state = self.state();
            state.readers -= 1;
            if state.readers > 0 {
                return;
            }
            std::mem::take(&mut state.waiting)
        };
        for w in orphans {
            // A read whose request is gone has dropped its receiver: nothing to tell.
            let _ = w.answer.send(Err(error.clone()));
        }
    }
}

/// Answers every read of `batch` from one statement (or, past `max_rows`, read by read). When
/// the statement fails, the batch gets the error, or comes back unanswered if `give_back`.
fn answer(
    conn: &mut AnyConnection,
    batch: Vec<Waiting>,
    max_rows: usize,
    give_back: bool,
) -> Result<(), (Error, Option<Vec<Waiting>>)> {
    let mut users: Vec<&str> = batch.iter().filter_map(|w| user_of(&w.query)).collect();
    users.sort_unstable();
    users.dedup();
    let rows = match licenses::of_users(conn, &users, max_rows) {
        Ok(Some(rows)) => rows,
        Ok(None) => {
            // Too many rows for one statement: each read alone, keyset-paged as usual.
            for w in batch {
                let page = licenses::find(conn, &w.query).map_err(StoreError::from);
                let _ = w.answer.send(page);
            }
            return Ok(());
        }
        Err(error) if give_back => return Err((error, Some(batch))),
        Err(error) => {
            let refused = error.to_store_error();
            for w in batch {
                let _ = w.answer.send(Err(refused.clone()));
            }
            return Err((error, None));
        }
    };
    // Each user's licenses, in id order (the statement's); a user asked for by several reads
    // of the batch is cloned for all but the last.
    let mut asked: HashMap<String, usize> = HashMap::with_capacity(batch.len());
    for w in &batch {
        *asked
            .entry(user_of(&w.query).unwrap_or_default().to_owned())
            .or_default() += 1;
    }
    let mut found: HashMap<String, Result<Vec<License>, StoreError>> =
        HashMap::with_capacity(asked.len());
    for row in rows {
        // A key made once a user, not once a row.
        if !found.contains_key(row.user_id.as_str()) {
            found.insert(row.user_id.clone(), Ok(Vec::new()));
        }
        let Some(licenses) = found.get_mut(row.user_id.as_str()) else {
            continue;
        };
        if let Ok(list) = licenses {
            match row.into_domain() {
                Ok(license) => list.push(license),
                Err(error) => *licenses = Err(StoreError::from(error)),
            }
        }
    }
    for w in batch {
        let user = user_of(&w.query).unwrap_or_default();
        let left = asked.get_mut(user).map_or(0, |n| {
            *n -= 1;
            *n
        });
        let licenses = if left == 0 {
            found.remove(user).unwrap_or(Ok(Vec::new()))
        } else {
            found.get(user).cloned().unwrap_or(Ok(Vec::new()))
        };
        let page = licenses.map(|list| page(list, &w.query));
        let _ = w.answer.send(page);
    }
    Ok(())
}

fn user_of(query: &LicenseQuery) -> Option<&str> {
    query.user.as_ref().map(|u| u.as_str())
}

/// The page `query` asks for, out of all of its user's licenses in id order: those effective
/// at `active_at` when it is set (the statement of [`licenses::find`] filters the same way),
/// `limit` at most.
fn page(mut all: Vec<License>, query: &LicenseQuery) -> Vec<License> {
    if let Some(at) = query.active_at {
        all.retain(|l| l.is_effective_at(at));
    }
    all.truncate(usize::try_from(query.limit).unwrap_or(usize::MAX));
    all
}

#[cfg(test)]
mod tests {
    #![allow(clippy::unwrap_used)]

    use std::time::Duration;

    use diesel::connection::SimpleConnection;
    use licenses_domain::{
        LicenseId, LicenseState, Product, ProductDraft, ProductId, StoredParts, Timestamp, UserId,
    };

    use super::*;
    use crate::config::Target;
    use crate::connection::Manager;
    use crate::migrate;
    use crate::repo::products;

    const NOW: Timestamp = Timestamp::from_unix(1_700_000_000);

    /// A migrated SQLite database with product `p` and, for each `(user, licenses)`, that
    /// many licenses `user-0`, `user-1`…: the even ones ACTIVE, the odd ones SUSPENDED.
    fn database(dir: &tempfile::TempDir, users: &[(&str, usize)]) -> AnyConnection {
        let manager = Manager {
            target: Target::Sqlite {
                path: dir.path().join("gather.db"),
            },
            busy_timeout: Duration::from_secs(5),
            prepared_statements: true,
        };
        let mut conn = manager.open().unwrap();
        migrate::migrate(&mut conn).unwrap();
        let product = Product::new(
            ProductId::parse("p").unwrap(),
            ProductDraft {
                title: Some("One channel".into()),
                product_type: Some("CHANNEL".into()),
                channels: [vec!["7".into()], vec![], vec![], vec![]],
                ..Default::default()
            },
        )
        .unwrap();
        products::insert(&mut conn, &product, NOW).unwrap();
        let mut all = Vec::new();
        for (user, n) in users {
            for i in 0..*n {
                let state = if i % 2 == 0 {
                    LicenseState::Active
                } else {
                    LicenseState::Suspended
                };
                all.push(
                    License::restore(StoredParts {
                        id: LicenseId::parse(format!("{user}-{i}")).unwrap(),
                        user: UserId::parse(*user).unwrap(),
                        product: product.id().clone(),
                        state,
                        start_date: NOW,
                        stop_date: None,
                        order_id: None,
                        price: None,
                        purchase_timestamp: NOW,
                        payment_method: None,
                        recurring: false,
                        expiry_date: None,
                    })
                    .unwrap(),
                );
            }
        }
        licenses::insert(&mut conn, &all, NOW).unwrap();
        conn
    }

    fn first_page(user: &str, active_at: Option<Timestamp>, limit: u32) -> LicenseQuery {
        LicenseQuery {
            user: Some(UserId::parse(user).unwrap()),
            product: None,
            statuses: Vec::new(),
            active_at,
            now: NOW,
            after: None,
            limit,
        }
    }

    fn ids(answer: Answer) -> Vec<String> {
        answer.unwrap().iter().map(|l| l.id().to_string()).collect()
    }

    /// What the same query answers alone, the way it is read without a gather.
    fn alone(conn: &mut AnyConnection, query: &LicenseQuery) -> Vec<String> {
        ids(licenses::find(conn, query).map_err(StoreError::from))
    }

    #[test]
    fn one_reader_answers_every_read_waiting_as_each_would_be_answered_alone() {
        let dir = tempfile::tempdir().unwrap();
        let mut conn = database(&dir, &[("a", 3), ("b", 12), ("c", 1)]);
        let gather = Gather::default();
        let queries = [
            first_page("a", None, 1000),
            first_page("b", None, 5),
            // The same user twice in one batch, once for the effective licenses only.
            first_page("b", Some(NOW), 1000),
            first_page("c", Some(Timestamp::from_unix(NOW.unix() - 1)), 1000),
            first_page("nobody", None, 1000),
        ];
        let mut answers = Vec::new();
        for (i, q) in queries.iter().enumerate() {
            let (answer, start) = gather.push(q.clone());
            assert_eq!(start, i == 0, "only the first read starts a reader");
            answers.push(answer);
        }
        gather.read(&mut conn, &AtomicU64::new(0)).unwrap();
        assert_eq!(gather.state().readers, 0, "the reader counted itself out");
        assert!(gather.state().waiting.is_empty());
        for (q, mut answer) in queries.iter().zip(answers) {
            let got = ids(answer.try_recv().unwrap());
            assert_eq!(got, alone(&mut conn, q), "{q:?}");
        }
        // Worth checking that the cases differ.
        assert_eq!(alone(&mut conn, &queries[1]).len(), 5);
        assert_eq!(alone(&mut conn, &queries[2]).len(), 6);
        assert!(alone(&mut conn, &queries[3]).is_empty(), "not started yet");
    }

    #[test]
    fn past_max_rows_each_read_is_answered_alone_and_the_same() {
        let dir = tempfile::tempdir().unwrap();
        let mut conn = database(&dir, &[("a", 3), ("b", 4)]);
        let gather = Gather {
            max_rows: 5,
            ..Gather::default()
        };
        let queries = [first_page("a", None, 2), first_page("b", Some(NOW), 1000)];
        let answers: Vec<_> = queries.iter().map(|q| gather.push(q.clone()).0).collect();
        gather.read(&mut conn, &AtomicU64::new(0)).unwrap();
        for (q, mut answer) in queries.iter().zip(answers) {
            assert_eq!(
                ids(answer.try_recv().unwrap()),
                alone(&mut conn, q),
                "{q:?}"
            );
        }
    }

    #[test]
    fn a_full_batch_waiting_starts_a_second_reader_and_no_more() {
        let gather = Gather::default();
        let mut started = 0;
        let mut answers = Vec::new();
        for _ in 0..(READERS + 1) * MAX_BATCH {
            let (answer, start) = gather.push(first_page("a", None, 10));
            started += usize::from(start);
            answers.push(answer);
        }
        assert_eq!(started, READERS);
        assert_eq!(gather.state().readers, READERS);
    }

    #[test]
    fn a_failed_statement_answers_its_batch_and_the_last_reader_the_rest() {
        let dir = tempfile::tempdir().unwrap();
        let mut conn = database(&dir, &[("a", 1)]);
        conn.batch_execute("DROP TABLE licenses").unwrap();
        let gather = Gather::default();
        let (mut first, start) = gather.push(first_page("a", None, 10));
        assert!(start);
        let error = gather.read(&mut conn, &AtomicU64::new(0)).unwrap_err();
        assert!(matches!(first.try_recv(), Ok(Err(StoreError::Internal(_)))));
        // A read that came after the batch was taken waits for a reader; the reader that
        // failed was the last one, so it gets the error rather than waiting for ever.
        let (mut later, start) = gather.push(first_page("a", None, 10));
        assert!(!start, "the failed reader is still counted until it ends");
        gather.ended(&error.to_store_error());
        assert!(matches!(later.try_recv(), Ok(Err(StoreError::Internal(_)))));
        assert_eq!(gather.state().readers, 0);
        // The next read starts a reader again.
        assert!(gather.push(first_page("a", None, 10)).1);
    }

    #[test]
    fn a_reader_that_ends_beside_another_leaves_it_the_waiting_reads() {
        let gather = Gather::default();
        let mut answers = Vec::new();
        for _ in 0..(2 * MAX_BATCH) {
            answers.push(gather.push(first_page("a", None, 10)).0);
        }
        assert_eq!(gather.state().readers, 2);
        gather.ended(&StoreError::Unavailable("no connection".into()));
        assert_eq!(gather.state().readers, 1);
        assert_eq!(gather.state().waiting.len(), 2 * MAX_BATCH);
        assert!(answers.iter_mut().all(|a| a.try_recv().is_err()));
    }

    #[test]
    fn an_abandoned_replica_call_takes_nothing_more_and_leaves_the_count_to_its_task() {
        let dir = tempfile::tempdir().unwrap();
        let mut conn = database(&dir, &[("a", 2)]);
        let gather = Gather::default();
        let (mut first, start) = gather.push(first_page("a", None, 10));
        assert!(start);
        // Given up on before it began (its turn or its connection came too late): it reads
        // nothing, and the task, still the counted reader, reads at the primary.
        let claim = Claim::default();
        assert!(gather.abandon(&claim), "the task is still the reader");
        gather
            .read_or_give_back(&mut conn, &AtomicU64::new(0), &claim)
            .unwrap();
        assert!(first.try_recv().is_err(), "the abandoned call read");
        assert_eq!(gather.state().readers, 1);
        gather.read(&mut conn, &AtomicU64::new(0)).unwrap();
        assert_eq!(ids(first.try_recv().unwrap()), ["a-0", "a-1"]);
        assert_eq!(gather.state().readers, 0);

        // Answered everything and counted out just as the deadline passed: nothing left for
        // the task to do.
        let (mut second, start) = gather.push(first_page("a", None, 1));
        assert!(start);
        let claim = Claim::default();
        gather
            .read_or_give_back(&mut conn, &AtomicU64::new(0), &claim)
            .unwrap();
        assert_eq!(ids(second.try_recv().unwrap()), ["a-0"]);
        assert!(!gather.abandon(&claim), "the reader was counted out");
        assert_eq!(gather.state().readers, 0);
    }
}
