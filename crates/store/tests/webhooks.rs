//! Webhook endpoints and deliveries on every backend, at the store's own clock (times are
//! arguments): the fan-out queues each event once per endpoint whose filter takes it, from
//! the endpoint's creation on; a claim holds a delivery for its lease and only the oldest
//! pending one of a user; an attempt recorded under an expired claim is refused; failures
//! disable an endpoint after the configured time; failed deliveries replay.
#![allow(clippy::unwrap_used)]

mod support;

use licenses_app::events::{EventStore, EventType};
use licenses_app::ports::{LicenseStore, ProductStore};
use licenses_app::webhooks::{
    AttemptRecord, AttemptResult, DeliveryQuery, DeliveryState, DisabledReason, NewWebhook,
    WebhookStore,
};
use licenses_testkit::TestDatabase;
use support::*;

const T: i64 = 1_800_000_000_000;
const DAY: i64 = 86_400_000;

fn endpoint(id: &str, types: &[EventType]) -> NewWebhook {
    NewWebhook {
        id: id.into(),
        url: format!("https://hooks.example.com/{id}"),
        secret: "whsec_MfKQ9r8GKYqrTwjUPD8ILPZIo2LaLaSw".into(),
        event_types: types.to_vec(),
        description: String::new(),
        at: at(0),
    }
}

async fn sequenced(s: &support::Ctx) {
    while s.store.sequence(1_000).await.unwrap().events > 0 {}
}

fn attempt(id: i64, token: &str, at_ms: i64, result: AttemptResult) -> AttemptRecord {
    AttemptRecord {
        delivery_id: id,
        lease_token: token.into(),
        at_ms,
        status: Some(503),
        answer: "down".into(),
        result,
        disable_failing_since_before_ms: at_ms - 5 * DAY,
    }
}

async fn fan_out_claims_in_user_order_under_leases(ctx: Ctx) {
    let s = &ctx.store;
    // an event from before the endpoints existed is not theirs
    ProductStore::create(s, &full_product("p0"), &change())
        .await
        .unwrap();
    sequenced(&ctx).await;
    // no endpoint: nothing is read and nothing written, the mark stays behind
    let idle = s.fan_out(1_000, T).await.unwrap();
    assert_eq!((idle.events, idle.deliveries, idle.skipped), (0, 0, None));
    assert_eq!(s.mark("webhooks").await.unwrap(), 0);
    // p0 is pruned past that mark: no endpoint missed it, so none is reported skipped
    assert_eq!(s.prune_events(at(1)).await.unwrap(), 1);
    s.create_endpoint(&endpoint("all", &[])).await.unwrap();
    s.create_endpoint(&endpoint("created", &[EventType::LicenseCreated]))
        .await
        .unwrap();
    ProductStore::create(s, &full_product("p1"), &change())
        .await
        .unwrap();
    let batch = [
        active("l1", "u1", "p1"),
        active("l2", "u1", "p1"),
        active("l3", "u2", "p1"),
    ];
    LicenseStore::create(s, &batch, &[], &change())
        .await
        .unwrap();
    sequenced(&ctx).await;
    let fanned = s.fan_out(1_000, T).await.unwrap();
    // p0 came before every endpoint: not even read
    assert_eq!(fanned.events, 4);
    assert_eq!(fanned.skipped, None);
    // "all": p1 and three licenses; "created": three licenses
    assert_eq!(fanned.deliveries, 7);
    // again: nothing more (the mark moved with the deliveries)
    assert_eq!(s.fan_out(1_000, T).await.unwrap().deliveries, 0);

    // u1's second license waits behind its first, for each endpoint
    let claimed = s.claim(T, 10_000, 100).await.unwrap();
    let mut got: Vec<(String, String)> = claimed
        .iter()
        .map(|d| {
            let event = d.event.as_ref().unwrap();
            let subject = match &event.subject {
                licenses_app::events::EventSubject::License(l) => l.id().as_str().to_owned(),
                licenses_app::events::EventSubject::Product(p) => p.id().as_str().to_owned(),
            };
            (d.delivery.endpoint_id.clone(), subject)
        })
        .collect();
    got.sort();
    assert_eq!(
        got,
        [
            ("all".to_owned(), "l1".to_owned()),
            ("all".to_owned(), "l3".to_owned()),
            ("all".to_owned(), "p1".to_owned()),
            ("created".to_owned(), "l1".to_owned()),
            ("created".to_owned(), "l3".to_owned()),
        ]
    );
    assert!(claimed.iter().all(|d| d.secret.starts_with("whsec_")));
    // leased: nothing more for another claimer, even later than due
    assert!(s.claim(T + 5_000, 10_000, 100).await.unwrap().is_empty());

    // one is delivered: the user's next one comes due
    let l1_all = claimed
        .iter()
        .find(|d| {
            d.delivery.endpoint_id == "all"
                && d.delivery.event_type == EventType::LicenseCreated
                && d.event.as_ref().unwrap().user_seq == Some(1)
                && d.event.as_ref().unwrap().user().map(|u| u.as_str()) == Some("u1")
        })
        .unwrap();
    let delivered = AttemptRecord {
        status: Some(204),
        answer: String::new(),
        ..attempt(
            l1_all.delivery.id,
            &l1_all.lease_token,
            T + 100,
            AttemptResult::Delivered,
        )
    };
    assert_eq!(s.record(&[delivered]).await.unwrap(), 1);
    let next = s.claim(T + 200, 10_000, 100).await.unwrap();
    assert_eq!(next.len(), 1);
    assert_eq!(next[0].delivery.endpoint_id, "all");
    assert_eq!(next[0].event.as_ref().unwrap().user_seq, Some(2));

    // the lease passes (the claimer died): another claim takes the rest again, and the first
    // claimer's late record is refused
    let again = s.claim(T + 20_000, 10_000, 100).await.unwrap();
    assert_eq!(again.len(), 5, "{again:?}");
    let stale = claimed
        .iter()
        .find(|d| d.delivery.endpoint_id == "created")
        .unwrap();
    let fresh = again
        .iter()
        .find(|d| d.delivery.id == stale.delivery.id)
        .unwrap();
    // in one transaction: the stale claim's attempt is refused, the fresh one's recorded
    let both = [
        attempt(
            stale.delivery.id,
            &stale.lease_token,
            T + 21_000,
            AttemptResult::Delivered,
        ),
        attempt(
            fresh.delivery.id,
            &fresh.lease_token,
            T + 21_000,
            AttemptResult::Delivered,
        ),
    ];
    assert_eq!(s.record(&both).await.unwrap(), 1);
}

async fn failures_disable_after_the_configured_time_and_failed_ones_replay(ctx: Ctx) {
    let s = &ctx.store;
    s.create_endpoint(&endpoint("e", &[])).await.unwrap();
    ProductStore::create(s, &full_product("p1"), &change())
        .await
        .unwrap();
    sequenced(&ctx).await;
    s.fan_out(1_000, T).await.unwrap();
    let mut now = T;
    // four days of failures: still enabled, failing since the first
    for _ in 0..4 {
        let d = s.claim(now, 1_000, 10).await.unwrap().pop().unwrap();
        s.record(&[attempt(
            d.delivery.id,
            &d.lease_token,
            now,
            AttemptResult::RetryAt(now + DAY),
        )])
        .await
        .unwrap();
        now += DAY;
    }
    let e = s.endpoint("e").await.unwrap().unwrap();
    assert_eq!(e.failing_since_ms, Some(T));
    assert_eq!(e.disabled, None);
    // past five days: disabled, and nothing is claimed for it
    now += DAY + 1;
    let d = s.claim(now, 1_000, 10).await.unwrap().pop().unwrap();
    s.record(&[attempt(
        d.delivery.id,
        &d.lease_token,
        now,
        AttemptResult::GiveUp,
    )])
    .await
    .unwrap();
    let e = s.endpoint("e").await.unwrap().unwrap();
    assert_eq!(e.disabled, Some((now, DisabledReason::Failing)));
    let failed = s
        .deliveries(&DeliveryQuery {
            endpoint_id: "e".into(),
            state: Some(DeliveryState::Failed),
            after: None,
            limit: 10,
        })
        .await
        .unwrap();
    assert_eq!(failed.len(), 1);
    assert_eq!(failed[0].attempts, 5);
    assert_eq!(failed[0].last_status, Some(503));
    assert_eq!(failed[0].last_answer.as_deref(), Some("down"));

    // enabled again and replayed: due at once, a fresh schedule
    s.update_endpoint(
        "e",
        &licenses_app::webhooks::WebhookChange {
            url: None,
            event_types: None,
            description: None,
            enabled: Some(true),
            at: at(10),
            at_ms: now,
        },
    )
    .await
    .unwrap();
    assert_eq!(s.replay("e", None, now).await.unwrap(), 1);
    assert_eq!(s.replay("e", None, now).await.unwrap(), 0);
    let d = s.claim(now, 1_000, 10).await.unwrap().pop().unwrap();
    assert_eq!(d.delivery.attempts, 0);
    let e = s.endpoint("e").await.unwrap().unwrap();
    assert_eq!((e.disabled, e.failing_since_ms), (None, None));
    // deleting the endpoint deletes its deliveries
    assert!(s.delete_endpoint("e").await.unwrap());
    assert_eq!(s.webhook_backlog().await.unwrap().pending, 0);
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
    fan_out_claims_in_user_order_under_leases,
    failures_disable_after_the_configured_time_and_failed_ones_replay,
);
