//! Reads from a real PostgreSQL streaming replica (`pg_basebackup -R`, [`PrivateCluster::
//! replica_of`]) that lags on purpose (`recovery_min_apply_delay`):
//! - a read in a scope that allows replicas is served by the replica (it does not see a write
//!   the primary has), one outside any scope by the primary;
//! - a read that must see a write's position is served by the primary until the replica has
//!   replayed it, then by the replica, and always sees the write;
//! - a replica that lags more than `replica_max_lag` is taken out and put back when it has
//!   caught up; a stopped one costs no error, and is put back once it answers.
#![allow(clippy::unwrap_used)]

mod support;

use std::time::{Duration, Instant};

use licenses_app::ports::{LicenseQuery, LicenseStore, ProductStore};
use licenses_domain::Product;
use licenses_store::{Lsn, ReadCounts, ReadScope, Store, StoreConfig};
use licenses_testkit::{PrivateCluster, query_strings};
use support::{NOW, active, change, full_product, pid, uid};

fn open(primary: &PrivateCluster, replica: &PrivateCluster, max_lag: Duration) -> Store {
    Store::open(&StoreConfig {
        replicas: vec![replica.url().to_owned()],
        replica_max_lag: max_lag,
        ..StoreConfig::new(primary.url(), 4, Duration::from_secs(2))
    })
    .unwrap()
}

/// Waits until `cluster` answers `sql` with `want`.
fn wait_for(cluster: &PrivateCluster, sql: &str, want: &str, within: Duration) {
    let deadline = Instant::now() + within;
    while query_strings(cluster.url(), sql) != [want] {
        assert!(Instant::now() < deadline, "{sql} never answered {want}");
        std::thread::sleep(Duration::from_millis(50));
    }
}

/// Migrated on the primary, the schema replayed by the replica, the replica probed in.
async fn ready(store: &Store, replica: &PrivateCluster) {
    store.migrate().await.unwrap();
    let migrated = "SELECT (to_regclass('products') IS NOT NULL)::text AS value";
    wait_for(replica, migrated, "true", Duration::from_secs(30));
    wait_in(store, true, Duration::from_secs(30)).await;
}

/// Probes until the replica is in (or out), as `up` says.
async fn wait_in(store: &Store, up: bool, within: Duration) {
    let deadline = Instant::now() + within;
    loop {
        store.probe_replicas().await;
        if store.replica_states()[0].up == up {
            return;
        }
        assert!(
            Instant::now() < deadline,
            "the replica never went {}: {:?}",
            if up { "in" } else { "out" },
            store.replica_states()
        );
        tokio::time::sleep(Duration::from_millis(100)).await;
    }
}

/// Runs `read` in a scope that allows replicas (at `at_least`): its result, and where it was
/// served (the read counts' difference).
async fn in_replica_scope<T>(
    store: &Store,
    at_least: Option<Lsn>,
    read: impl Future<Output = T>,
) -> (T, ReadCounts) {
    let before = store.read_counts();
    let value = ReadScope::run(ReadScope::replica_reads(at_least), read).await;
    let after = store.read_counts();
    let served = ReadCounts {
        primary: after.primary - before.primary,
        replica: after.replica - before.replica,
    };
    (value, served)
}

/// Product `id`, read in a scope that allows replicas, at `at_least`.
async fn read(store: &Store, id: &str, at_least: Option<Lsn>) -> (Option<Product>, ReadCounts) {
    let id = pid(id);
    let (found, served) = in_replica_scope(store, at_least, ProductStore::get(store, &id)).await;
    (found.unwrap(), served)
}

const PRIMARY: ReadCounts = ReadCounts {
    primary: 1,
    replica: 0,
};
const REPLICA: ReadCounts = ReadCounts {
    primary: 0,
    replica: 1,
};

/// How many licenses the first page of `user`'s has (a gathered read), read in a scope that
/// allows replicas.
async fn first_page(store: &Store, user: &str) -> (usize, ReadCounts) {
    let query = LicenseQuery {
        user: Some(uid(user)),
        product: None,
        statuses: Vec::new(),
        active_at: None,
        now: NOW,
        after: None,
        limit: 10,
    };
    let (found, served) = in_replica_scope(store, None, LicenseStore::find(store, &query)).await;
    (found.unwrap().len(), served)
}

/// Creates a product in a write scope and returns the write's commit position.
async fn create(store: &Store, id: &str) -> Lsn {
    let scope = ReadScope::primary_reads();
    ReadScope::run(scope.clone(), async {
        ProductStore::create(store, &full_product(id), &change()).await
    })
    .await
    .unwrap();
    scope
        .wrote()
        .expect("a write in a scope tells its position")
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn reads_see_the_position_they_ask_for_on_the_replica_that_serves_them() {
    let primary = PrivateCluster::new();
    let replica = PrivateCluster::replica_of(&primary, "recovery_min_apply_delay = '3s'");
    let store = open(&primary, &replica, Duration::from_secs(60));
    ready(&store, &replica).await;

    let lsn = create(&store, "p1").await;

    // Outside any scope (the workers, the commands): the primary.
    let before = store.read_counts();
    assert!(
        ProductStore::get(&store, &pid("p1"))
            .await
            .unwrap()
            .is_some()
    );
    assert_eq!(store.read_counts().primary, before.primary + 1);

    // Any replica will do: the replica answers, 3 s behind, without the product.
    let (found, served) = read(&store, "p1", None).await;
    assert_eq!(served, REPLICA);
    assert!(found.is_none(), "the delayed replica served the read");

    // The write's position: the replica has not replayed it, so the primary answers.
    let (found, served) = read(&store, "p1", Some(lsn)).await;
    assert_eq!(served, PRIMARY);
    assert!(found.is_some(), "read-your-writes");

    // Once the replica has replayed it, the replica answers, with the product.
    let there = "SELECT count(*)::text AS value FROM products WHERE id = 'p1'";
    wait_for(&replica, there, "1", Duration::from_secs(30));
    let (found, served) = read(&store, "p1", Some(lsn)).await;
    assert_eq!(served, REPLICA);
    assert!(found.is_some());

    // Users' first pages are read together, on the replica too: it does not have u1's yet.
    LicenseStore::create(&store, &[active("l1", "u1", "p1")], &[], &change())
        .await
        .unwrap();
    assert_eq!(first_page(&store, "u1").await, (0, REPLICA));

    // A position past anything written yet: only the primary may answer.
    let (_, served) = read(&store, "p1", Some(Lsn(lsn.0 + (1 << 40)))).await;
    assert_eq!(served, PRIMARY);
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_lagging_or_stopped_replica_is_taken_out_and_put_back() {
    let primary = PrivateCluster::new();
    let replica = PrivateCluster::replica_of(&primary, "recovery_min_apply_delay = '4s'");
    let store = open(&primary, &replica, Duration::from_millis(1000));
    ready(&store, &replica).await;

    // Lagging: out once it is more than 1 s behind, and no read goes to it meanwhile.
    create(&store, "p1").await;
    wait_in(&store, false, Duration::from_secs(10)).await;
    let lag = store.replica_states()[0].lag.unwrap();
    assert!(lag > Duration::from_millis(1000), "{lag:?}");
    let (found, served) = read(&store, "p1", None).await;
    assert_eq!(served, PRIMARY);
    assert!(found.is_some());
    // Caught up: in again.
    wait_in(&store, true, Duration::from_secs(15)).await;
    let (found, served) = read(&store, "p1", None).await;
    assert_eq!((found.is_some(), served), (true, REPLICA));

    // Stopped: the reads meant for it are the primary's, without an error.
    LicenseStore::create(&store, &[active("l1", "u1", "p1")], &[], &change())
        .await
        .unwrap();
    replica.stop();
    // A gathered read first: the batch the replica fails goes to the primary.
    assert_eq!(first_page(&store, "u1").await, (1, PRIMARY));
    for _ in 0..3 {
        let (found, served) = read(&store, "p1", None).await;
        assert_eq!((found.is_some(), served), (true, PRIMARY));
    }
    store.probe_replicas().await;
    assert!(!store.replica_states()[0].up);
    // Started again: in once a probe finds it answering.
    replica.start();
    wait_in(&store, true, Duration::from_secs(30)).await;
    let (found, served) = read(&store, "p1", None).await;
    assert_eq!((found.is_some(), served), (true, REPLICA));
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_primary_named_as_a_replica_is_never_read_from() {
    // After a failover the old replica may be a primary: it is out, whatever it answers.
    let primary = PrivateCluster::new();
    let store = Store::open(&StoreConfig {
        replicas: vec![primary.url().to_owned()],
        ..StoreConfig::new(primary.url(), 2, Duration::from_secs(2))
    })
    .unwrap();
    store.migrate().await.unwrap();
    store.probe_replicas().await;
    assert!(!store.replica_states()[0].up);
    let (_, served) = read(&store, "p1", None).await;
    assert_eq!(served, PRIMARY);
}
