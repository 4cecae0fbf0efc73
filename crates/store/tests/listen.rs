//! Wake-ups across instances: one store's listener is woken by what another store announces
//! after its commits on the same PostgreSQL database, on the channels of what they wrote, not
//! by a rollback nor by its own store's commits, and once more whenever it reconnects after
//! the server restarted. Every
//! `Notify` of a channel wakes (an instance's followers of the sequenced events share one).
#![allow(clippy::unwrap_used)]

mod support;

use std::sync::Arc;
use std::time::Duration;

use licenses_app::events::EventStore;
use licenses_app::ports::{LicenseStore, ProductStore};
use licenses_store::Store;
use licenses_store::listen::{EVENTS_CHANNEL, JOBS_CHANNEL, SEQUENCED_CHANNEL};
use licenses_testkit::PrivateCluster;
use support::{active, change, config, full_product};
use tokio::sync::Notify;

/// Whether `wake` is notified within `within`.
async fn woken(wake: &Notify, within: Duration) -> bool {
    tokio::time::timeout(within, wake.notified()).await.is_ok()
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn another_instances_commits_wake_this_one_and_a_reconnection_does_too() {
    let pg = PrivateCluster::new();
    let listening = Store::open(&config(pg.url())).unwrap();
    listening.migrate().await.unwrap();
    let writing = Store::open(&config(pg.url())).unwrap();
    let (events, jobs) = (Arc::new(Notify::new()), Arc::new(Notify::new()));
    let followers = [Arc::new(Notify::new()), Arc::new(Notify::new())];
    let listener = listening
        .listen(
            None,
            vec![
                (EVENTS_CHANNEL, Arc::clone(&events)),
                (JOBS_CHANNEL, Arc::clone(&jobs)),
                (SEQUENCED_CHANNEL, Arc::clone(&followers[0])),
                (SEQUENCED_CHANNEL, Arc::clone(&followers[1])),
            ],
        )
        .unwrap()
        .expect("a listener on PostgreSQL");
    // The wake-up of the first connection.
    assert!(woken(&events, Duration::from_secs(10)).await);
    assert!(woken(&jobs, Duration::from_secs(1)).await);
    for follower in &followers {
        assert!(woken(follower, Duration::from_secs(1)).await);
    }

    // A product's events: the events channel only.
    ProductStore::create(&writing, &full_product("p1"), &change())
        .await
        .unwrap();
    assert!(woken(&events, Duration::from_secs(5)).await, "events");
    assert!(
        !woken(&jobs, Duration::from_millis(300)).await,
        "no job was queued"
    );
    assert!(
        !woken(&followers[0], Duration::from_millis(100)).await,
        "nothing was sequenced"
    );

    // The writer's sequencer numbers them: every follower wakes.
    assert_eq!(writing.sequence(100).await.unwrap().events, 1);
    for follower in &followers {
        assert!(woken(follower, Duration::from_secs(5)).await, "sequenced");
    }
    // Nothing left to number: nobody is woken.
    assert_eq!(writing.sequence(100).await.unwrap().events, 0);
    assert!(
        !woken(&followers[1], Duration::from_millis(300)).await,
        "sequencing nothing notifies nobody"
    );

    // A write that fails (the product exists) is rolled back: no wake-up.
    assert!(
        ProductStore::create(&writing, &full_product("p1"), &change())
            .await
            .is_err()
    );
    assert!(
        !woken(&events, Duration::from_millis(300)).await,
        "a rollback notifies nobody"
    );

    // Licenses with their Irdeto jobs: both channels.
    let license = active("l1", "u1", "p1");
    let job = licenses_app::ports::NewEntitlementJob {
        kind: licenses_app::ports::JobKind::Grant,
        license: license.id().clone(),
        user: license.user().clone(),
        irdeto_product: "IRD-1".into(),
        valid_from: support::NOW,
        valid_until: None,
    };
    LicenseStore::create(&writing, &[license], &[job], &change())
        .await
        .unwrap();
    assert!(woken(&jobs, Duration::from_secs(5)).await, "jobs");
    assert!(woken(&events, Duration::from_secs(5)).await, "events");

    // The listening store's own commits: its instance has woken its workers in process, and
    // its listener passes over them.
    ProductStore::create(&listening, &full_product("own"), &change())
        .await
        .unwrap();
    assert!(
        !woken(&events, Duration::from_millis(300)).await,
        "its own events"
    );
    assert_eq!(listening.sequence(100).await.unwrap().events, 2);
    assert!(
        !woken(&followers[0], Duration::from_millis(300)).await,
        "its own sequencing"
    );
    // Another's still do, on the same connection.
    ProductStore::create(&writing, &full_product("theirs"), &change())
        .await
        .unwrap();
    assert!(woken(&events, Duration::from_secs(5)).await, "theirs");

    // The server restarts: the listener connects again, and wakes everyone once for what
    // may have been written meanwhile.
    pg.restart();
    assert!(
        woken(&jobs, Duration::from_secs(15)).await,
        "woken on reconnecting"
    );
    // The writer's pooled connections the restart broke fail once each.
    let mut written = false;
    for i in 0..10 {
        let product = full_product(&format!("p{}", i + 2));
        if ProductStore::create(&writing, &product, &change())
            .await
            .is_ok()
        {
            written = true;
            break;
        }
    }
    assert!(written, "the writer's pool recovered");
    assert!(
        woken(&events, Duration::from_secs(5)).await,
        "listening again"
    );
    listener.stop();
}

#[tokio::test]
async fn sqlite_has_no_listener() {
    let db = licenses_testkit::TestDatabase::sqlite();
    let store = Store::open(&config(db.url())).unwrap();
    assert!(store.listen(None, Vec::new()).unwrap().is_none());
}
