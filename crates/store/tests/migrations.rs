//! Migrations: embedded, applied once, and safe when several instances start at once.
#![allow(clippy::unwrap_used)]

mod support;

use std::collections::BTreeSet;

use licenses_store::Store;
use licenses_testkit::TestDatabase;
use support::config;

const MIGRATIONS: usize = 9;

/// Two instances starting at once on one fresh PostgreSQL database: both succeed, and the
/// migrations apply exactly once (the advisory lock lets one in; the other finds nothing
/// pending).
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn racing_migrators_on_postgres_apply_each_migration_once() {
    for _ in 0..3 {
        let db = TestDatabase::postgres();
        let a = Store::open(&config(db.url())).unwrap();
        let b = Store::open(&config(db.url())).unwrap();
        let (ra, rb) = tokio::join!(a.migrate(), b.migrate());
        let (ra, rb) = (ra.unwrap(), rb.unwrap());
        assert_eq!(ra.len() + rb.len(), MIGRATIONS, "{ra:?} {rb:?}");
        let all: BTreeSet<_> = ra.iter().chain(&rb).collect();
        assert_eq!(all.len(), MIGRATIONS);
        assert_eq!(a.pending_migrations().await, Ok(0));
        assert_eq!(b.migrate().await, Ok(vec![]));
    }
}

/// The same on SQLite, where two migrators exclude each other with BEGIN IMMEDIATE.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn racing_migrators_on_sqlite_apply_each_migration_once() {
    let db = TestDatabase::sqlite();
    let a = Store::open(&config(db.url())).unwrap();
    let b = Store::open(&config(db.url())).unwrap();
    let (ra, rb) = tokio::join!(a.migrate(), b.migrate());
    let (ra, rb) = (ra.unwrap(), rb.unwrap());
    assert_eq!(ra.len() + rb.len(), MIGRATIONS, "{ra:?} {rb:?}");
    assert_eq!(b.pending_migrations().await, Ok(0));
}

/// Names are the migration directories', in order.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn migrate_reports_what_it_applied() {
    for db in [TestDatabase::postgres(), TestDatabase::sqlite()] {
        let store = Store::open(&config(db.url())).unwrap();
        assert_eq!(store.pending_migrations().await, Ok(MIGRATIONS));
        let applied = store.migrate().await.unwrap();
        assert_eq!(
            applied,
            [
                "2025-06-01-000001_catalogue_and_licenses",
                "2025-06-01-000002_idempotency_and_audit",
                "2025-06-01-000003_entitlement_jobs",
                "2025-06-01-000004_entitlement_jobs_pending",
                "2026-11-23-000005_catalogue_version",
                "2026-12-06-000006_audit_support_actions",
                "2026-12-06-000007_events",
                "2026-12-07-000008_webhooks",
                "2026-12-08-000009_events_position_indexes",
            ]
        );
        assert_eq!(store.migrate().await, Ok(vec![]));
    }
}

/// `sqlite://` with a relative path: relative to the working directory, its directory created.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_relative_sqlite_path_gets_its_directory() {
    let dir = tempfile::tempdir().unwrap();
    let path = dir.path().join("nested/data/licenses.db");
    // Relative to the process's working directory, which tests must not change: use a path
    // that climbs from it to the temporary directory.
    let cwd = std::env::current_dir().unwrap();
    let ups = cwd.components().count() - 1;
    let relative = format!(
        "{}{}",
        "../".repeat(ups),
        path.strip_prefix("/").unwrap().display()
    );
    let store = Store::open(&config(&format!("sqlite://{relative}"))).unwrap();
    assert_eq!(store.migrate().await.unwrap().len(), MIGRATIONS);
    assert!(path.is_file());
    // WAL is on for the file.
    assert!(path.with_extension("db-wal").exists());
}
