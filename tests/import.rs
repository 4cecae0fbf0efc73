//! `licenses import`, run as the operator runs it (the real binary) against a PostgreSQL or
//! SQLite database of its own: exactly the good rows are stored, every bad row is reported
//! with its line, field and code, a re-run or a run killed half-way never stores a row twice,
//! and a dry run writes nothing.
//! (Over 600 lines: one test file per command, each case a scenario an operator meets.)

use std::collections::BTreeSet;
use std::path::{Path, PathBuf};
use std::process::{Command, Output, Stdio};
use std::time::{Duration, Instant};

use licenses_app::ports::{Actor, Change, LicenseQuery, LicenseStore, ProductStore};
use licenses_domain::{Product, ProductDraft, ProductId, Timestamp};
use licenses_store::{Store, StoreConfig};
use licenses_testkit::{TestDatabase, isolated_command, query_strings, wait_for_row};

/// The binary, run from the repository root with the database of `db`, and no `APP_ENV` or
/// `LICENSES__…` variable inherited from the test's environment.
fn licenses(db: &TestDatabase, args: &[&str]) -> Command {
    let mut command = isolated_command(env!("CARGO_BIN_EXE_licenses"));
    command
        .args(args)
        .current_dir(env!("CARGO_MANIFEST_DIR"))
        .env("APP_ENV", "test")
        .env("LICENSES__DATABASE__URL", db.url());
    command
}

fn run(command: &mut Command) -> Output {
    let output = command.output().expect("the binary runs");
    assert!(
        output.status.success(),
        "status {:?}; stderr: {}",
        output.status,
        String::from_utf8_lossy(&output.stderr)
    );
    output
}

/// The summary: the last line of standard output (log lines may come before it).
fn stdout(output: &Output) -> String {
    let out = String::from_utf8_lossy(&output.stdout);
    out.lines().last().unwrap_or_default().trim().to_owned()
}

/// A migrated database with the products `p-sport` and `p-news`, and its store.
async fn database(postgres: bool) -> (TestDatabase, Store) {
    let db = tokio::task::spawn_blocking(move || {
        if postgres {
            TestDatabase::postgres()
        } else {
            TestDatabase::sqlite()
        }
    })
    .await
    .expect("database");
    run(&mut licenses(&db, &["migrate"]));
    let config = StoreConfig::new(db.url().to_owned(), 2, Duration::from_secs(5));
    let store = Store::open(&config).expect("store");
    for id in ["p-sport", "p-news"] {
        let product = Product::new(
            ProductId::parse(id).expect("id"),
            ProductDraft {
                title: Some(id.into()),
                product_type: Some("CHANNEL".into()),
                channels: [vec!["42".into()], vec![], vec![], vec![]],
                ..Default::default()
            },
        )
        .expect("product");
        let change = Change {
            actor: Actor::System("test"),
            at: Timestamp::from_unix(1_700_000_000),
            idempotency: None,
        };
        ProductStore::create(&store, &product, &change)
            .await
            .expect("product stored");
    }
    (db, store)
}

/// Every stored license as (user, order id, product).
async fn stored(store: &Store) -> Vec<(String, String, String)> {
    let query = LicenseQuery {
        user: None,
        product: None,
        statuses: Vec::new(),
        active_at: None,
        now: Timestamp::from_unix(1_700_000_000),
        after: None,
        limit: 100_000,
    };
    let mut rows: Vec<_> = LicenseStore::find(store, &query)
        .await
        .expect("licenses")
        .into_iter()
        .map(|l| {
            (
                l.user().to_string(),
                l.order_id()
                    .map(|o| o.as_str().to_owned())
                    .unwrap_or_default(),
                l.product().to_string(),
            )
        })
        .collect();
    rows.sort();
    rows
}

/// `licenses import FILE --products PRODUCTS --batch BATCH`, which must succeed.
fn import_in_batches(db: &TestDatabase, file: &Path, products: &Path, batch: &str) -> Output {
    let path = |p: &Path| p.to_str().expect("path").to_owned();
    run(&mut licenses(
        db,
        &[
            "import",
            &path(file),
            "--products",
            &path(products),
            "--batch",
            batch,
        ],
    ))
}

/// `n` licenses are stored, each of its own (user, order).
async fn assert_stored_once(store: &Store, n: usize) {
    let rows = stored(store).await;
    let orders: BTreeSet<_> = rows
        .iter()
        .map(|(u, o, _)| (u.clone(), o.clone()))
        .collect();
    assert_eq!((rows.len(), orders.len()), (n, n));
}

/// `SPORT` and `NEWS` map to stored products; `GHOST` to one that does not exist.
fn mapping(dir: &Path) -> PathBuf {
    let path = dir.join("products.csv");
    std::fs::write(
        &path,
        "legacy_code,product_id\nSPORT,p-sport\nNEWS,p-news\nGHOST,p-ghost\n",
    )
    .expect("mapping");
    path
}

const HEADER: &[u8] =
    b"user_id,product_code,start_date,stop_date,order_id,price_amount,currency,payment_method,recurring\n";

/// Three good rows and a bad row of every kind, one a line (the header is line 1).
fn mixed_csv(dir: &Path) -> PathBuf {
    let mut file = HEADER.to_vec();
    for line in [
        &b"u1,SPORT,2024-01-01,2025-01-01,o-1,999,EUR,card,true\n"[..], // 2 good
        b"u2,NEWS,1704067200,,o-2,,,,\n",                               // 3 good
        b"u3,NOPE,2024-01-01,2025-01-01,o-3,,,,\n",                     // 4 unknown code
        b"u4,SPORT,2024-13-01,2025-01-01,o-4,,,,\n",                    // 5 bad date
        b"u5,SPORT,2025-01-01,2024-01-01,o-5,,,,\n",                    // 6 stop before start
        b"u6,SPORT,2024-01-01,2025-01-01,o-6,100,EURO,,\n",             // 7 bad currency
        b"u1,SPORT,2024-02-01,2025-02-01,o-1,,,,\n",                    // 8 same order as 2
        b"u7,SPORT,2024-01-01\n",                                       // 9 malformed
        b"u8,SPORT,2024-01-01,2025-01-01,o-\xff\xfe,,,,\n",             // 10 not UTF-8
        b"u9,SPORT,2024-01-01,2025-01-01,,,,,\n",                       // 11 no order id
        b"u10,GHOST,2024-01-01,2025-01-01,o-10,,,,\n",                  // 12 no such product
        b"u11,\"SPORT\",2024-01-01T00:00:00Z,2025-01-01,o-11,,,,false\n", // 13 good
    ] {
        file.extend_from_slice(line);
    }
    let path = dir.join("legacy.csv");
    std::fs::write(&path, file).expect("legacy file");
    path
}

/// The report's (line, field, code) triples, and that each has a reason.
fn report(path: &Path) -> Vec<(u64, String, String)> {
    let text = std::fs::read_to_string(path).expect("report");
    let mut lines = text.lines();
    assert_eq!(lines.next(), Some("line,field,code,reason"));
    let mut reader = csv::Reader::from_path(path).expect("report reads");
    reader
        .records()
        .map(|r| {
            let r = r.expect("record");
            assert!(!r[3].is_empty(), "a reason for {r:?}");
            (
                r[0].parse().expect("line"),
                r[1].to_owned(),
                r[2].to_owned(),
            )
        })
        .collect()
}

fn expected_refusals() -> Vec<(u64, String, String)> {
    [
        (4, "product_code", "unknown_product_code"),
        (5, "start_date", "invalid_date"),
        (6, "stop_date", "stop_before_start"),
        (7, "currency", "invalid_currency"),
        (8, "order_id", "duplicate_order_id"),
        (9, "", "malformed"),
        (10, "order_id", "invalid_encoding"),
        (11, "order_id", "required"),
        (12, "product_code", "product_not_found"),
    ]
    .into_iter()
    .map(|(l, f, c)| (l, f.to_owned(), c.to_owned()))
    .collect()
}

fn good_rows() -> Vec<(String, String, String)> {
    [
        ("u1", "o-1", "p-sport"),
        ("u11", "o-11", "p-sport"),
        ("u2", "o-2", "p-news"),
    ]
    .into_iter()
    .map(|(u, o, p)| (u.to_owned(), o.to_owned(), p.to_owned()))
    .collect()
}

async fn imports_exactly_the_good_rows_and_reports_each_bad_one(postgres: bool) {
    let (db, store) = database(postgres).await;
    let dir = tempfile::tempdir().expect("tempdir");
    let (file, products) = (mixed_csv(dir.path()), mapping(dir.path()));
    let refused = dir.path().join("refused.csv");
    let args = [
        "import",
        file.to_str().expect("path"),
        "--products",
        products.to_str().expect("path"),
        "--report",
        refused.to_str().expect("path"),
    ];
    let output = run(&mut licenses(&db, &args));
    assert_eq!(
        stdout(&output),
        "read 12, imported 3, already present 0, refused 9"
    );
    assert_eq!(report(&refused), expected_refusals());
    assert_eq!(stored(&store).await, good_rows());

    // The legacy values reached the licenses.
    let query = LicenseQuery {
        user: Some(licenses_domain::UserId::parse("u1").expect("id")),
        product: None,
        statuses: Vec::new(),
        active_at: None,
        now: Timestamp::from_unix(1_700_000_000),
        after: None,
        limit: 10,
    };
    let u1 = LicenseStore::find(&store, &query).await.expect("u1");
    let l = &u1[0];
    assert_eq!(l.start_date().unix(), 1_704_067_200);
    assert_eq!(l.stop_date().map(Timestamp::unix), Some(1_735_689_600));
    let price = l.purchase_record().price().expect("price");
    assert_eq!((price.amount(), price.currency().code()), (999, "EUR"));
    assert_eq!(l.purchase_record().payment_method(), Some("card"));
    assert!(l.renew_record().recurring());

    // Again: nothing twice, the same refusals.
    let output = run(&mut licenses(&db, &args));
    assert_eq!(
        stdout(&output),
        "read 12, imported 0, already present 3, refused 9"
    );
    assert_eq!(report(&refused), expected_refusals());
    assert_eq!(stored(&store).await, good_rows());
}

#[tokio::test]
async fn postgres_imports_exactly_the_good_rows_and_reports_each_bad_one() {
    imports_exactly_the_good_rows_and_reports_each_bad_one(true).await;
}

#[tokio::test]
async fn sqlite_imports_exactly_the_good_rows_and_reports_each_bad_one() {
    imports_exactly_the_good_rows_and_reports_each_bad_one(false).await;
}

/// `n` good rows, u{i} with order o-{i}.
fn good_csv(dir: &Path, name: &str, n: usize) -> PathBuf {
    let mut file = HEADER.to_vec();
    for i in 0..n {
        file.extend_from_slice(format!("u{i},SPORT,2024-01-01,2025-01-01,o-{i},,,,\n").as_bytes());
    }
    let path = dir.join(name);
    std::fs::write(&path, file).expect("file");
    path
}

#[tokio::test]
async fn a_run_stopped_half_way_and_run_again_stores_every_row_once() {
    let (db, store) = database(false).await;
    let dir = tempfile::tempdir().expect("tempdir");
    let products = mapping(dir.path());
    let products = products.to_str().expect("path");
    let first = good_csv(dir.path(), "first.csv", 20);
    let full = good_csv(dir.path(), "full.csv", 50);
    let output = run(&mut licenses(
        &db,
        &[
            "import",
            first.to_str().expect("path"),
            "--products",
            products,
            "--batch",
            "7",
        ],
    ));
    assert_eq!(
        stdout(&output),
        "read 20, imported 20, already present 0, refused 0"
    );
    let output = run(&mut licenses(
        &db,
        &[
            "import",
            full.to_str().expect("path"),
            "--products",
            products,
            "--batch",
            "7",
        ],
    ));
    assert_eq!(
        stdout(&output),
        "read 50, imported 30, already present 20, refused 0"
    );
    assert_stored_once(&store, 50).await;
}

/// Batches are written two at once. Here each batch of three is followed by the same three
/// orders in the opposite order, so that the two batches in flight together share every
/// order: each order is stored once, and the second batch's rows are already present. (That
/// each batch writes in (user, order) order, so that two such batches cannot deadlock, is
/// the use case's unit test: timing here rarely lets them meet half-way.)
#[tokio::test]
async fn batches_written_at_once_that_share_orders_store_each_once() {
    let (db, store) = database(true).await;
    let dir = tempfile::tempdir().expect("tempdir");
    let products = mapping(dir.path());
    let mut file = HEADER.to_vec();
    for k in 0..40 {
        let three: Vec<usize> = (3 * k..3 * k + 3).collect();
        for i in three.iter().chain(three.iter().rev()) {
            file.extend_from_slice(
                format!("u{i},SPORT,2024-01-01,2025-01-01,o-{i},,,,\n").as_bytes(),
            );
        }
    }
    let path = dir.path().join("twice.csv");
    std::fs::write(&path, file).expect("file");
    let output = import_in_batches(&db, &path, &products, "3");
    assert_eq!(
        stdout(&output),
        "read 240, imported 120, already present 120, refused 0"
    );
    assert_stored_once(&store, 120).await;
}

/// The import refreshes the licenses' planner statistics each time the rows it imported
/// doubled, from 10,000 on: 21,000 rows, two `ANALYZE`s (at 10,000 and 20,000). The count is
/// of manual ANALYZEs only: autovacuum's are counted apart, so it cannot pass for them.
#[tokio::test]
async fn a_large_import_refreshes_the_planner_statistics_as_it_grows() {
    let (db, _store) = database(true).await;
    let dir = tempfile::tempdir().expect("tempdir");
    let products = mapping(dir.path());
    let file = good_csv(dir.path(), "large.csv", 21_000);
    let output = import_in_batches(&db, &file, &products, "1000");
    assert_eq!(
        stdout(&output),
        "read 21000, imported 21000, already present 0, refused 0"
    );
    let analyzed = query_strings(
        db.url(),
        "SELECT analyze_count::text AS value FROM pg_stat_user_tables WHERE relname = 'licenses'",
    );
    assert_eq!(analyzed, ["2"]);
}

#[tokio::test]
async fn an_import_killed_half_way_and_run_again_stores_every_row_once() {
    let (db, store) = database(true).await;
    let dir = tempfile::tempdir().expect("tempdir");
    let products = mapping(dir.path());
    // Enough rows, in batches of 5, that the first run cannot finish before it is killed even
    // on a loaded machine (the kill follows the first stored batch by a few milliseconds).
    let total = 20_000;
    let file = good_csv(dir.path(), "legacy.csv", total);
    let args = [
        "import",
        file.to_str().expect("path"),
        "--products",
        products.to_str().expect("path"),
        "--batch",
        "5",
    ];
    // Connections opened from now on are the first run's.
    let spawned = &query_strings(db.url(), "SELECT now()::text AS value")[0];
    let mut child = licenses(&db, &args)
        .stdout(Stdio::null())
        .stderr(Stdio::null())
        .spawn()
        .expect("spawned");
    let deadline = Instant::now() + Duration::from_secs(60);
    while stored(&store).await.is_empty() {
        assert!(
            Instant::now() < deadline,
            "nothing imported within a minute"
        );
        tokio::time::sleep(Duration::from_millis(5)).await;
    }
    child.kill().expect("SIGKILL");
    child.wait().expect("reaped");
    // A COMMIT the run had sent before it died is still carried out by its server process:
    // count once those processes are gone, or a batch may land after the count.
    let gone = format!(
        "SELECT 1 WHERE NOT EXISTS (SELECT 1 FROM pg_stat_activity \
         WHERE datname = current_database() AND pid <> pg_backend_pid() \
         AND backend_start >= '{spawned}'::timestamptz)"
    );
    assert!(
        wait_for_row(db.url(), &gone, Duration::from_secs(30)),
        "the killed run's connections outlived it by 30 s"
    );
    let half = stored(&store).await.len();
    assert!(
        half > 0 && half < total,
        "killed half-way, not after {half} of {total}"
    );
    assert_eq!(half % 5, 0, "whole batches only, not {half}");

    // The second run, in bigger batches, stores what the first did not, and nothing twice.
    let mut again = args;
    again[5] = "500";
    let output = run(&mut licenses(&db, &again));
    assert_eq!(
        stdout(&output),
        format!(
            "read {total}, imported {}, already present {half}, refused 0",
            total - half
        )
    );
    assert_stored_once(&store, total).await;
}

#[tokio::test]
async fn a_dry_run_writes_nothing_and_reports_the_same() {
    let (db, store) = database(false).await;
    let dir = tempfile::tempdir().expect("tempdir");
    let (file, products) = (mixed_csv(dir.path()), mapping(dir.path()));
    let (file, products) = (
        file.to_str().expect("path"),
        products.to_str().expect("path"),
    );
    // u1's o-1 is stored already.
    let one = dir.path().join("one.csv");
    let mut content = HEADER.to_vec();
    content.extend_from_slice(b"u1,SPORT,2024-01-01,2025-01-01,o-1,,,,\n");
    std::fs::write(&one, content).expect("file");
    run(&mut licenses(
        &db,
        &[
            "import",
            one.to_str().expect("path"),
            "--products",
            products,
        ],
    ));
    let before = stored(&store).await;
    assert_eq!(before.len(), 1);

    let refused = dir.path().join("refused.csv");
    let output = run(&mut licenses(
        &db,
        &[
            "import",
            file,
            "--products",
            products,
            "--dry-run",
            "--report",
            refused.to_str().expect("path"),
        ],
    ));
    assert_eq!(
        stdout(&output),
        "dry run, nothing written: read 12, would import 2, already present 1, refused 9"
    );
    assert_eq!(report(&refused), expected_refusals());
    assert_eq!(stored(&store).await, before);
}

#[tokio::test]
async fn json_lines_are_imported_with_the_same_rules() {
    let (db, store) = database(false).await;
    let dir = tempfile::tempdir().expect("tempdir");
    let products = mapping(dir.path());
    let path = dir.path().join("legacy.jsonl");
    let mut file = Vec::new();
    for line in [
        &br#"{"user_id": 41, "product_code": "SPORT", "order_id": "o-1", "start_date": "2024-01-01", "stop_date": 1735689600, "recurring": false}"#[..],
        b"",
        br#"{"user_id": "42", "product_code": "NEWS", "order_id": "o-2", "price_amount": 500, "currency": "USD"}"#,
        br#"{"user_id": "43", "product_code": "NEWS", "order_id": "o-3""#,
        b"{\"user_id\": \"44\", \"product_code\": \"NEWS\", \"order_id\": \"o-\xff\"}",
        br#"{"user_id": "45", "product_code": "NEWS", "order_id": "o-5", "colour": "red"}"#,
        br#"{"user_id": "46", "product_code": "NEWS", "order_id": "o-6", "price_amount": -5, "currency": "USD"}"#,
    ] {
        file.extend_from_slice(line);
        file.push(b'\n');
    }
    std::fs::write(&path, file).expect("file");
    let refused = dir.path().join("refused.csv");
    let output = run(&mut licenses(
        &db,
        &[
            "import",
            path.to_str().expect("path"),
            "--products",
            products.to_str().expect("path"),
            "--report",
            refused.to_str().expect("path"),
        ],
    ));
    assert_eq!(
        stdout(&output),
        "read 6, imported 2, already present 0, refused 4"
    );
    let expected: Vec<(u64, String, String)> = [
        (4, "", "malformed"),
        (5, "", "invalid_encoding"),
        (6, "colour", "unknown_field"),
        (7, "price_amount", "negative_amount"),
    ]
    .into_iter()
    .map(|(l, f, c)| (l, f.to_owned(), c.to_owned()))
    .collect();
    assert_eq!(report(&refused), expected);
    let rows: Vec<_> = stored(&store)
        .await
        .into_iter()
        .map(|(u, o, _)| (u, o))
        .collect();
    assert_eq!(
        rows,
        [
            ("41".to_owned(), "o-1".to_owned()),
            ("42".to_owned(), "o-2".to_owned())
        ]
    );
}

#[test]
fn a_bad_mapping_or_header_stops_before_anything_is_read() {
    let db = TestDatabase::sqlite();
    let dir = tempfile::tempdir().expect("tempdir");
    let legacy = dir.path().join("legacy.csv");
    std::fs::write(&legacy, "user_id,product,order_id\nu1,SPORT,o-1\n").expect("file");
    let products = mapping(dir.path());
    let output = licenses(
        &db,
        &[
            "import",
            legacy.to_str().expect("path"),
            "--products",
            products.to_str().expect("path"),
        ],
    )
    .output()
    .expect("runs");
    let err = String::from_utf8_lossy(&output.stderr);
    assert_eq!(output.status.code(), Some(1), "{err}");
    assert!(err.contains("unknown column \"product\""), "{err}");

    let bad_mapping = dir.path().join("bad.csv");
    std::fs::write(&bad_mapping, "code,id\nSPORT,p-sport\n").expect("file");
    let output = licenses(
        &db,
        &[
            "import",
            legacy.to_str().expect("path"),
            "--products",
            bad_mapping.to_str().expect("path"),
        ],
    )
    .output()
    .expect("runs");
    let err = String::from_utf8_lossy(&output.stderr);
    assert_eq!(output.status.code(), Some(1), "{err}");
    assert!(err.contains("legacy_code,product_id"), "{err}");
}

#[test]
fn help_explains_the_formats_with_examples() {
    let output = Command::new(env!("CARGO_BIN_EXE_licenses"))
        .args(["import", "--help"])
        .output()
        .expect("runs");
    assert!(output.status.success());
    let help = String::from_utf8_lossy(&output.stdout);
    for needle in [
        "legacy_code,product_id",
        "JSON Lines",
        "order_id",
        "--dry-run",
        "--batch",
        "line,field,code,reason",
        "Examples",
        "docs/migration.md",
    ] {
        assert!(help.contains(needle), "{needle} missing from:\n{help}");
    }
}

#[tokio::test]
async fn with_irdeto_enabled_imported_licenses_queue_their_grants() {
    use licenses_app::ports::EntitlementJobs;
    use licenses_domain::LicenseStatus;

    let (db, store) = database(false).await;
    let mapped = Product::new(
        ProductId::parse("p-drm").expect("id"),
        ProductDraft {
            title: Some("DRM".into()),
            product_type: Some("CHANNEL".into()),
            channels: [vec!["42".into()], vec![], vec![], vec![]],
            irdeto_product_id: Some("IRD-SPORT-01".into()),
            ..Default::default()
        },
    )
    .expect("product");
    let change = Change {
        actor: Actor::System("test"),
        at: Timestamp::from_unix(1_700_000_000),
        idempotency: None,
    };
    ProductStore::create(&store, &mapped, &change)
        .await
        .expect("stored");
    let dir = tempfile::tempdir().expect("tempdir");
    let products = dir.path().join("products.csv");
    std::fs::write(
        &products,
        "legacy_code,product_id\nDRM,p-drm\nSPORT,p-sport\n",
    )
    .expect("map");
    let legacy = dir.path().join("legacy.csv");
    let mut file = HEADER.to_vec();
    file.extend_from_slice(
        b"u1,DRM,2024-01-01,2099-01-01,o-1,,,,\nu2,SPORT,2024-01-01,2099-01-01,o-2,,,,\n",
    );
    std::fs::write(&legacy, file).expect("file");
    let output = run(licenses(
        &db,
        &[
            "import",
            legacy.to_str().expect("path"),
            "--products",
            products.to_str().expect("path"),
        ],
    )
    .env("LICENSES__IRDETO__ENABLED", "true")
    .env("LICENSES__IRDETO__BASE_URL", "http://127.0.0.1:9")
    .env("LICENSES__IRDETO__API_KEY", "test-irdeto-key"));
    assert_eq!(
        stdout(&output),
        "read 2, imported 2, already present 0, refused 0"
    );
    let now = Timestamp::from_unix(1_800_000_000);
    let processing = LicenseStore::find(
        &store,
        &LicenseQuery {
            user: None,
            product: None,
            statuses: vec![LicenseStatus::Processing],
            active_at: None,
            now,
            after: None,
            limit: 10,
        },
    )
    .await
    .expect("licenses");
    // Only the license of the product mapped to Irdeto waits for its entitlement.
    assert_eq!(processing.len(), 1);
    assert_eq!(processing[0].user().as_str(), "u1");
    let backlog = EntitlementJobs::backlog(&store, now)
        .await
        .expect("backlog");
    assert_eq!(backlog.due, 1);
}
