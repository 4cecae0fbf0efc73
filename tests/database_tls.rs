//! PostgreSQL over TLS, as the store connects: a private cluster of the test's own with
//! `ssl = on`, a certificate for 127.0.0.1 issued by a CA the test generates
//! (`licenses_testkit::TestCa`), and plain TCP connections rejected. `database.url`'s
//! `sslmode` and `sslrootcert` reach libpq untouched: `verify-full` with the right root
//! certificate connects; with another CA's, or for a certificate made out to another host, it
//! fails with a one-line error that says why; `require` connects without checking; `disable`
//! is rejected (so the connections that succeeded were encrypted).

use std::path::Path;
use std::time::Duration;

use licenses_store::{OpenError, Store, StoreConfig};
use licenses_testkit::{PrivateCluster, TestCa};

fn open(url: &str) -> Result<Store, OpenError> {
    Store::open(&StoreConfig::new(url.to_owned(), 1, Duration::from_secs(5)))
}

/// The cluster's URL with `params` added to its query.
fn with(cluster: &PrivateCluster, params: &str) -> String {
    format!("{}?{params}", cluster.url())
}

fn write(dir: &Path, name: &str, contents: &str) -> String {
    let path = dir.join(name);
    std::fs::write(&path, contents).expect("write");
    path.display().to_string()
}

fn unreachable(result: Result<Store, OpenError>) -> String {
    match result {
        Err(OpenError::Unreachable(message)) => {
            assert!(!message.contains('\n'), "{message}");
            message
        }
        Err(other) => panic!("expected an unreachable database, got {other:?}"),
        Ok(_) => panic!("expected the connection to fail"),
    }
}

#[test]
fn sslmode_from_the_url_is_honoured() {
    let ca = TestCa::new("database test CA");
    let cluster = PrivateCluster::with_tls(&ca.server(&["127.0.0.1", "localhost"]));
    let dir = tempfile::tempdir().expect("tempdir");
    let right = write(dir.path(), "root.crt", &ca.cert_pem());
    let wrong = write(
        dir.path(),
        "other.crt",
        &TestCa::new("another CA").cert_pem(),
    );

    // Plain text is rejected by this cluster: whatever connects below is encrypted.
    let m = unreachable(open(&with(&cluster, "sslmode=disable")));
    assert!(m.contains("no encryption"), "{m}");

    open(&with(
        &cluster,
        &format!("sslmode=verify-full&sslrootcert={right}"),
    ))
    .expect("verify-full with the right root certificate connects");
    open(&with(
        &cluster,
        &format!("sslmode=verify-ca&sslrootcert={right}"),
    ))
    .expect("verify-ca with the right root certificate connects");
    open(&with(&cluster, "sslmode=require")).expect("require connects without checking");

    let m = unreachable(open(&with(
        &cluster,
        &format!("sslmode=verify-full&sslrootcert={wrong}"),
    )));
    assert!(m.contains("certificate verify failed"), "{m}");
}

#[test]
fn verify_full_refuses_a_certificate_made_out_to_another_host() {
    let ca = TestCa::new("database test CA");
    let cluster = PrivateCluster::with_tls(&ca.server(&["db.example"]));
    let dir = tempfile::tempdir().expect("tempdir");
    let root = write(dir.path(), "root.crt", &ca.cert_pem());
    let m = unreachable(open(&with(
        &cluster,
        &format!("sslmode=verify-full&sslrootcert={root}"),
    )));
    assert!(m.contains("does not match host name"), "{m}");
    // verify-ca checks the issuer only: the same certificate passes.
    open(&with(
        &cluster,
        &format!("sslmode=verify-ca&sslrootcert={root}"),
    ))
    .expect("verify-ca does not check the host name");
}
