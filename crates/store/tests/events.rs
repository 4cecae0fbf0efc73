//! The events outbox on every backend: each change writes its events in its own
//! transaction; the sequencer puts them in commit order with each user's sequence; the feed
//! pages, filters and expires cursors; expiry events are written once per license and kind.
#![allow(clippy::unwrap_used)]

mod support;

use std::collections::HashMap;
use std::time::Duration;

use diesel::{Connection, PgConnection, RunQueryDsl};
use licenses_app::events::{
    Event, EventQuery, EventStore, EventSubject, EventType, FeedError, Sequenced,
};
use licenses_app::ports::{
    EntitlementJobs, JobKind, LicenseStore, NewEntitlementJob, ProductStore,
};
use licenses_domain::{License, LicenseState, LicenseStatus, Requested, UserId};
use licenses_store::Store;
use licenses_testkit::TestDatabase;
use support::*;

fn grant(l: &License) -> NewEntitlementJob {
    NewEntitlementJob {
        kind: JobKind::Grant,
        license: l.id().clone(),
        user: l.user().clone(),
        irdeto_product: "IRD-1".into(),
        valid_from: l.start_date(),
        valid_until: l.stop_date(),
    }
}

fn processing(id: &str, user: &str) -> License {
    full_license(
        id,
        user,
        "p1",
        LicenseState::Processing {
            requested: Requested::Active,
        },
    )
}

/// Sequences everything written so far.
async fn sequence_all(s: &dyn EventStore) -> u32 {
    let mut total = 0;
    loop {
        let done = s.sequence(100).await.unwrap();
        assert!(!done.busy);
        total += done.events;
        if done.events < 100 {
            return total;
        }
    }
}

/// Product p1 and license l1 of user u1: two events.
async fn product_and_license(s: &Store) {
    ProductStore::create(s, &full_product("p1"), &change())
        .await
        .unwrap();
    LicenseStore::create(s, &[active("l1", "u1", "p1")], &[], &change())
        .await
        .unwrap();
}

/// The whole feed, in pages of `size`.
async fn feed(s: &dyn EventStore, user: Option<&str>, size: u32) -> Vec<Event> {
    let mut all = Vec::new();
    let mut after = None;
    loop {
        let page = s
            .page(&EventQuery {
                after,
                user: user.map(uid),
                types: Vec::new(),
                limit: size,
            })
            .await
            .unwrap();
        let last = page.events.is_empty();
        all.extend(page.events);
        if last {
            return all;
        }
        after = page.next;
    }
}

fn kinds(events: &[Event]) -> Vec<(EventType, String)> {
    events
        .iter()
        .map(|e| {
            let subject = match &e.subject {
                EventSubject::License(l) => l.id().as_str().to_owned(),
                EventSubject::Product(p) => p.id().as_str().to_owned(),
            };
            (e.kind, subject)
        })
        .collect()
}

fn ev(kind: EventType, subject: &str) -> (EventType, String) {
    (kind, subject.to_owned())
}

async fn every_change_writes_its_events_in_order(ctx: Ctx) {
    let s = &ctx.store;
    ProductStore::create(s, &full_product("p1"), &change())
        .await
        .unwrap();
    let batch = [
        active("l1", "u1", "p1"),
        processing("l2", "u2"),
        processing("l3", "u1"),
    ];
    let jobs = [grant(&batch[1]), grant(&batch[2])];
    LicenseStore::create(s, &batch, &jobs, &change())
        .await
        .unwrap();
    // Irdeto delivers l2 (ACTIVE) and refuses l3 (ORDER_ERROR).
    let claimed = s.claim(NOW, 10, at(60)).await.unwrap();
    assert_eq!(claimed.len(), 2);
    let by_license: HashMap<String, i64> = claimed
        .iter()
        .map(|j| (j.job.license.as_str().to_owned(), j.id))
        .collect();
    let l2 = batch[1].clone().confirm().unwrap();
    s.complete(by_license["l2"], Some(l2)).await.unwrap();
    let l3 = batch[2].clone().fail_order("refused").unwrap();
    s.refuse(by_license["l3"], "refused", Some(l3))
        .await
        .unwrap();
    // A suspension replaces l1 by s1; then s1 is revoked.
    let s1 = active("l1", "u1", "p1")
        .suspend_by_admin(lid("s1"), NOW)
        .unwrap();
    LicenseStore::replace(s, &lid("l1"), &s1, &[], &change())
        .await
        .unwrap();
    LicenseStore::delete(s, &[lid("s1")], &[], &change())
        .await
        .unwrap();
    ProductStore::update(s, &full_product("p1"), &change())
        .await
        .unwrap();

    // Nothing is visible before the sequencer ran.
    assert!(feed(s, None, 10).await.is_empty());
    assert_eq!(sequence_all(s).await, 10);
    let events = feed(s, None, 3).await;
    assert_eq!(
        kinds(&events),
        [
            ev(EventType::ProductCreated, "p1"),
            ev(EventType::LicenseCreated, "l1"),
            ev(EventType::LicenseCreated, "l2"),
            ev(EventType::LicenseCreated, "l3"),
            ev(EventType::LicenseActivated, "l2"),
            ev(EventType::LicenseOrderError, "l3"),
            ev(EventType::LicenseDeleted, "l1"),
            ev(EventType::LicenseCreated, "s1"),
            ev(EventType::LicenseDeleted, "s1"),
            ev(EventType::ProductUpdated, "p1"),
        ]
    );
    // Positions strictly increase; ids are unique.
    assert!(events.windows(2).all(|w| w[0].position < w[1].position));
    let mut ids: Vec<&str> = events.iter().map(|e| e.id.as_str()).collect();
    ids.sort_unstable();
    ids.dedup();
    assert_eq!(ids.len(), events.len());
    // The snapshots: as the change left the license.
    let EventSubject::License(activated) = &events[4].subject else {
        panic!("a license event")
    };
    assert_eq!(activated.state(), &LicenseState::Active);
    let EventSubject::License(deleted) = &events[8].subject else {
        panic!("a license event")
    };
    assert_eq!(deleted.status_at(NOW), LicenseStatus::SuspendedAdmin);
    // Each user's own sequence: 1, 2, 3… in feed order; none for products.
    let mut seqs: HashMap<UserId, Vec<i64>> = HashMap::new();
    for e in &events {
        match e.user() {
            Some(user) => seqs
                .entry(user.clone())
                .or_default()
                .push(e.user_seq.unwrap()),
            None => assert_eq!(e.user_seq, None),
        }
    }
    assert_eq!(seqs[&uid("u1")], [1, 2, 3, 4, 5, 6]);
    assert_eq!(seqs[&uid("u2")], [1, 2]);
    // filter[user] and filter[type].
    assert_eq!(feed(s, Some("u2"), 1).await.len(), 2);
    let deleted = s
        .page(&EventQuery {
            after: None,
            user: None,
            types: vec![EventType::LicenseDeleted, EventType::ProductUpdated],
            limit: 10,
        })
        .await
        .unwrap();
    assert_eq!(
        kinds(&deleted.events),
        [
            ev(EventType::LicenseDeleted, "l1"),
            ev(EventType::LicenseDeleted, "s1"),
            ev(EventType::ProductUpdated, "p1"),
        ]
    );

    // A product deletion, and the next user sequence number goes on.
    ProductStore::create(s, &plain_product("p2"), &change())
        .await
        .unwrap();
    ProductStore::delete(s, &pid("p2"), &change())
        .await
        .unwrap();
    LicenseStore::create(s, &[active("l4", "u1", "p1")], &[], &change())
        .await
        .unwrap();
    assert_eq!(sequence_all(s).await, 3);
    let tail = s
        .page(&EventQuery {
            after: Some(events.last().unwrap().position),
            user: None,
            types: Vec::new(),
            limit: 10,
        })
        .await
        .unwrap();
    assert_eq!(
        kinds(&tail.events),
        [
            ev(EventType::ProductCreated, "p2"),
            ev(EventType::ProductDeleted, "p2"),
            ev(EventType::LicenseCreated, "l4"),
        ]
    );
    assert_eq!(tail.events[2].user_seq, Some(7));
    let backlog = s.event_backlog().await.unwrap();
    assert_eq!(backlog.unsequenced, 0);
    assert_eq!(backlog.last_position, tail.events[2].position);
}

async fn a_refused_change_writes_no_event(ctx: Ctx) {
    let s = &ctx.store;
    product_and_license(s).await;
    // The same id again: refused as a whole, its event with it.
    let again = LicenseStore::create(
        s,
        &[active("l2", "u1", "p1"), active("l1", "u1", "p1")],
        &[],
        &change(),
    )
    .await;
    assert!(again.is_err());
    // An unknown id in a deletion: nothing deleted, no event.
    let missing = LicenseStore::delete(s, &[lid("l1"), lid("nope")], &[], &change()).await;
    assert!(missing.is_err());
    sequence_all(s).await;
    assert_eq!(
        kinds(&feed(s, None, 10).await),
        [
            ev(EventType::ProductCreated, "p1"),
            ev(EventType::LicenseCreated, "l1"),
        ]
    );
}

async fn a_short_page_moves_the_cursor_to_the_head(ctx: Ctx) {
    let s = &ctx.store;
    ProductStore::create(s, &full_product("p1"), &change())
        .await
        .unwrap();
    let many: Vec<License> = (0..5)
        .map(|i| active(&format!("l{i}"), "u1", "p1"))
        .collect();
    LicenseStore::create(s, &many, &[], &change())
        .await
        .unwrap();
    sequence_all(s).await;
    // Only product events wanted: one, then the cursor jumps past the license events.
    let page = s
        .page(&EventQuery {
            after: None,
            user: None,
            types: vec![EventType::ProductDeleted],
            limit: 10,
        })
        .await
        .unwrap();
    assert!(page.events.is_empty());
    assert_eq!(page.next, Some(6));
    // An empty feed past the head keeps the cursor.
    let page = s
        .page(&EventQuery {
            after: Some(6),
            user: None,
            types: Vec::new(),
            limit: 10,
        })
        .await
        .unwrap();
    assert!(page.events.is_empty());
    assert_eq!(page.next, Some(6));
}

async fn pruned_events_expire_older_cursors(ctx: Ctx) {
    let s = &ctx.store;
    ProductStore::create(s, &full_product("p1"), &change())
        .await
        .unwrap();
    sequence_all(s).await;
    let mut later = change();
    later.at = at(7 * 86_400);
    LicenseStore::create(s, &[active("l1", "u1", "p1")], &[], &later)
        .await
        .unwrap();
    sequence_all(s).await;
    // The product event is older than a day before `later`: pruned.
    assert_eq!(s.prune_events(at(6 * 86_400)).await.unwrap(), 1);
    assert_eq!(s.prune_events(at(6 * 86_400)).await.unwrap(), 0);
    let from_start = feed(s, None, 10).await;
    assert_eq!(kinds(&from_start), [ev(EventType::LicenseCreated, "l1")]);
    // A consumer still at position 0 missed the pruned event: 410, not a silent gap.
    let stale = s
        .page(&EventQuery {
            after: Some(0),
            user: None,
            types: Vec::new(),
            limit: 10,
        })
        .await;
    assert!(matches!(
        stale,
        Err(FeedError::CursorExpired {
            after: 0,
            pruned_through: 1
        })
    ));
    // At the pruned position itself, nothing was missed.
    let current = s
        .page(&EventQuery {
            after: Some(1),
            user: None,
            types: Vec::new(),
            limit: 10,
        })
        .await
        .unwrap();
    assert_eq!(current.events.len(), 1);
}

async fn expiry_events_are_written_once(ctx: Ctx) {
    let s = &ctx.store;
    ProductStore::create(s, &full_product("p1"), &change())
        .await
        .unwrap();
    let lead = Duration::from_secs(3_600);
    // The first run, two hours ago, only set where the scheduler starts.
    assert_eq!(s.schedule_expiry(at(-7_200), lead, 100).await.unwrap(), 0);
    let ends = |id: &str, stop: i64| {
        license(
            id,
            "u1",
            "p1",
            LicenseState::Active,
            at(-100),
            Some(at(stop)),
        )
    };
    let batch = [
        ends("soon", 1_800),
        ends("later", 2 * 3_600),
        ends("forever", 100 * 86_400),
    ];
    LicenseStore::create(s, &batch, &[], &change())
        .await
        .unwrap();
    // At NOW "soon" ends within the hour: two instances at once write its event once.
    let (a, b) = tokio::join!(
        s.schedule_expiry(NOW, lead, 100),
        s.schedule_expiry(NOW, lead, 100)
    );
    assert_eq!(a.unwrap() + b.unwrap(), 1);
    assert_eq!(s.schedule_expiry(NOW, lead, 100).await.unwrap(), 0);
    // Two hours on: "soon" expired, "later" expiring; in pages of one.
    let two_hours = at(2 * 3_600 - 1);
    let mut written = 0;
    for _ in 0..4 {
        written += s.schedule_expiry(two_hours, lead, 1).await.unwrap();
    }
    assert_eq!(written, 2);
    assert_eq!(
        s.schedule_expiry(at(3 * 3_600), lead, 100).await.unwrap(),
        1
    );
    sequence_all(s).await;
    let expiry: Vec<(EventType, String)> = kinds(&feed(s, None, 100).await)
        .into_iter()
        .filter(|(k, _)| {
            matches!(
                k,
                EventType::LicenseExpired | EventType::LicenseExpiringSoon
            )
        })
        .collect();
    assert_eq!(
        expiry,
        [
            ev(EventType::LicenseExpiringSoon, "soon"),
            ev(EventType::LicenseExpired, "soon"),
            ev(EventType::LicenseExpiringSoon, "later"),
            ev(EventType::LicenseExpired, "later"),
        ]
    );
}

async fn marks_only_move_forward(ctx: Ctx) {
    let s = &ctx.store;
    assert_eq!(s.mark("nats").await.unwrap(), 0);
    s.advance("nats", 5).await.unwrap();
    s.advance("nats", 3).await.unwrap();
    assert_eq!(s.mark("nats").await.unwrap(), 5);
    assert_eq!(s.mark("webhooks").await.unwrap(), 0);
}

/// PostgreSQL: an event written first but committed last is sequenced after the one that
/// committed first, so a consumer that read the first never misses the second.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn postgres_positions_follow_commit_order() {
    let ctx = Ctx::new(TestDatabase::postgres()).await;
    let s = &ctx.store;
    ProductStore::create(s, &full_product("p1"), &change())
        .await
        .unwrap();
    sequence_all(s).await;
    let mut slow = PgConnection::establish(ctx.db.url()).unwrap();
    diesel::sql_query("BEGIN").execute(&mut slow).unwrap();
    diesel::sql_query(
        "INSERT INTO events (event_id, event_type, user_id, subject_id, occurred_at, snapshot) \
         SELECT 'slow', 'product.updated', NULL, 'p1', occurred_at, snapshot FROM events",
    )
    .execute(&mut slow)
    .unwrap();
    // Written after "slow" (a larger id), committed before it.
    LicenseStore::create(s, &[active("l1", "u1", "p1")], &[], &change())
        .await
        .unwrap();
    sequence_all(s).await;
    let seen = feed(s, None, 10).await;
    assert_eq!(seen.len(), 2);
    let cursor = seen.last().unwrap().position;
    // Another instance's sequencer is busy meanwhile.
    let mut other = PgConnection::establish(ctx.db.url()).unwrap();
    diesel::sql_query("BEGIN").execute(&mut other).unwrap();
    // The sequencer's lock (repo/events.rs: SEQUENCER_LOCK).
    diesel::sql_query("SELECT pg_advisory_xact_lock(7811884316080956785)")
        .execute(&mut other)
        .unwrap();
    assert_eq!(
        s.sequence(10).await.unwrap(),
        Sequenced {
            events: 0,
            busy: true
        }
    );
    diesel::sql_query("ROLLBACK").execute(&mut other).unwrap();
    diesel::sql_query("COMMIT").execute(&mut slow).unwrap();
    assert_eq!(sequence_all(s).await, 1);
    let next = s
        .page(&EventQuery {
            after: Some(cursor),
            user: None,
            types: Vec::new(),
            limit: 10,
        })
        .await
        .unwrap();
    assert_eq!(next.events.len(), 1);
    assert_eq!(next.events[0].id, "slow");
}

macro_rules! on_every_backend {
    ($($test:ident),* $(,)?) => {
        mod postgres {
            $(
                #[tokio::test(flavor = "multi_thread", worker_threads = 2)]
                async fn $test() {
                    super::$test(super::Ctx::new(super::TestDatabase::postgres()).await).await;
                }
            )*
        }
        mod sqlite {
            $(
                #[tokio::test(flavor = "multi_thread", worker_threads = 2)]
                async fn $test() {
                    super::$test(super::Ctx::new(super::TestDatabase::sqlite()).await).await;
                }
            )*
        }
    };
}

on_every_backend!(
    every_change_writes_its_events_in_order,
    a_refused_change_writes_no_event,
    a_short_page_moves_the_cursor_to_the_head,
    pruned_events_expire_older_cursors,
    expiry_events_are_written_once,
    marks_only_move_forward,
);

/// PostgreSQL: the position indexes hold sequenced events only (migration 9), so an event
/// awaiting its position costs its writer no entry in them; positions stay unique.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn postgres_position_indexes_hold_sequenced_events_only() {
    #[derive(diesel::QueryableByName)]
    struct Partial {
        #[diesel(sql_type = diesel::sql_types::Text)]
        name: String,
        #[diesel(sql_type = diesel::sql_types::Nullable<diesel::sql_types::Text>)]
        predicate: Option<String>,
    }
    let ctx = Ctx::new(TestDatabase::postgres()).await;
    let mut conn = PgConnection::establish(ctx.db.url()).unwrap();
    let mut indexes: Vec<(String, Option<String>)> = diesel::sql_query(
        "SELECT c.relname::text AS name, pg_get_expr(i.indpred, i.indrelid) AS predicate \
         FROM pg_index i JOIN pg_class c ON c.oid = i.indexrelid \
         WHERE i.indrelid = 'events'::regclass AND pg_get_indexdef(i.indexrelid) LIKE '%position%' \
         ORDER BY 1",
    )
    .load::<Partial>(&mut conn)
    .unwrap()
    .into_iter()
    .map(|p| (p.name, p.predicate))
    .collect();
    indexes.retain(|(name, _)| name != "events_unsequenced_idx");
    let sequenced = Some("(\"position\" IS NOT NULL)".to_owned());
    assert_eq!(
        indexes,
        [
            ("events_position_key".to_owned(), sequenced.clone()),
            ("events_type_position_idx".to_owned(), sequenced.clone()),
            ("events_user_position_idx".to_owned(), sequenced),
        ]
    );

    let s = &ctx.store;
    product_and_license(s).await;
    assert_eq!(sequence_all(s).await, 2);
    let twice = diesel::sql_query("UPDATE events SET position = 1").execute(&mut conn);
    assert!(
        matches!(
            twice,
            Err(diesel::result::Error::DatabaseError(
                diesel::result::DatabaseErrorKind::UniqueViolation,
                _
            ))
        ),
        "{twice:?}"
    );
}
