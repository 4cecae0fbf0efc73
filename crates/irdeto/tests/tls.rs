//! The gateway over TLS, against the stand-in Irdeto served with rustls on loopback, with
//! certificates the test generates (`licenses_testkit::TestCa`): the right CA delivers; a
//! wrong CA, or the system's roots (which do not hold the test's CA), fail with a transient
//! error that says TLS and certificate, so the job is retried; a stand-in that requires a
//! client certificate refuses a gateway without one and accepts one with it.

use std::path::PathBuf;
use std::time::Duration;

use licenses_app::ports::{DeliveryError, EntitlementGateway, JobKind, NewEntitlementJob};
use licenses_domain::{LicenseId, Timestamp, UserId};
use licenses_irdeto::standin::{StandIn, TlsServer};
use licenses_irdeto::{ConfigError, IrdetoConfig, IrdetoGateway, TlsFiles};
use licenses_testkit::{CertifiedKey, TestCa};

const KEY: &str = "test-irdeto-key";

fn job(license: &str) -> NewEntitlementJob {
    NewEntitlementJob {
        kind: JobKind::Grant,
        license: LicenseId::parse(license).expect("id"),
        user: UserId::parse("41").expect("id"),
        irdeto_product: "IRD-1".into(),
        valid_from: Timestamp::from_unix(1_700_000_000),
        valid_until: None,
    }
}

/// PEM files of a test, removed with it.
struct Files(tempfile::TempDir);

impl Files {
    fn new() -> Self {
        Self(tempfile::tempdir().expect("tempdir"))
    }

    fn write(&self, name: &str, contents: &str) -> PathBuf {
        let path = self.0.path().join(name);
        std::fs::write(&path, contents).expect("write");
        path
    }
}

fn config(url: &str, tls: TlsFiles) -> IrdetoConfig {
    IrdetoConfig {
        base_url: url.parse().expect("url"),
        api_key: KEY.to_owned().into(),
        timeout: Duration::from_secs(10),
        tls,
    }
}

fn gateway(url: &str, tls: TlsFiles) -> IrdetoGateway {
    IrdetoGateway::new(&config(url, tls)).expect("gateway")
}

fn trusting(files: &Files, ca: &TestCa) -> TlsFiles {
    TlsFiles {
        ca_file: Some(files.write("ca.pem", &ca.cert_pem())),
        ..TlsFiles::default()
    }
}

fn tls_standin(server: &CertifiedKey, client_ca: Option<&TestCa>) -> StandIn {
    StandIn::start_tls(
        KEY,
        &TlsServer {
            cert_pem: server.cert_pem.clone(),
            key_pem: server.key_pem.clone(),
            client_ca_pem: client_ca.map(TestCa::cert_pem),
        },
    )
    .expect("TLS stand-in")
}

/// A transient error whose reason says TLS and certificate, for an answer that never came.
fn assert_tls_failure(answer: Result<(), DeliveryError>) -> String {
    match answer {
        Err(DeliveryError::Transient {
            reason,
            retry_after: None,
        }) => {
            assert!(reason.starts_with("TLS failed"), "{reason}");
            assert!(
                reason.to_ascii_lowercase().contains("certificate"),
                "{reason}"
            );
            assert!(!reason.contains('\n'), "{reason}");
            reason
        }
        other => panic!("expected a transient TLS error, got {other:?}"),
    }
}

#[tokio::test]
async fn the_right_ca_delivers_over_tls() {
    let ca = TestCa::new("irdeto test CA");
    let irdeto = tls_standin(&ca.server(&["127.0.0.1", "localhost"]), None);
    assert!(
        irdeto.url().starts_with("https://127.0.0.1:"),
        "{}",
        irdeto.url()
    );
    let files = Files::new();
    let g = gateway(irdeto.url(), trusting(&files, &ca));
    g.grant(&job("tls-1")).await.expect("granted over TLS");
    g.revoke(&LicenseId::parse("tls-1").expect("id"))
        .await
        .expect("revoked over TLS");
    let counts = irdeto.counts();
    assert_eq!((counts.created, counts.revoked), (1, 1));
}

#[tokio::test]
async fn a_wrong_ca_is_a_transient_tls_error_and_nothing_is_delivered() {
    let ca = TestCa::new("irdeto test CA");
    let other = TestCa::new("another CA");
    let irdeto = tls_standin(&ca.server(&["127.0.0.1"]), None);
    let files = Files::new();
    let wrong = gateway(irdeto.url(), trusting(&files, &other));
    assert_tls_failure(wrong.grant(&job("tls-2")).await);
    // The system's roots (no irdeto.ca_file) do not hold the test's CA either.
    let system = gateway(irdeto.url(), TlsFiles::default());
    assert_tls_failure(system.grant(&job("tls-2")).await);
    assert_eq!(irdeto.counts().created, 0, "nothing reached the stand-in");
    // The same job goes through once the right CA is trusted: it was only delayed.
    gateway(irdeto.url(), trusting(&files, &ca))
        .grant(&job("tls-2"))
        .await
        .expect("delivered with the right CA");
    assert_eq!(irdeto.counts().created, 1);
}

#[tokio::test]
async fn a_certificate_for_another_host_is_refused() {
    let ca = TestCa::new("irdeto test CA");
    let irdeto = tls_standin(&ca.server(&["irdeto.example"]), None);
    let files = Files::new();
    let reason = assert_tls_failure(
        gateway(irdeto.url(), trusting(&files, &ca))
            .grant(&job("tls-3"))
            .await,
    );
    assert!(reason.contains("not valid for name"), "{reason}");
    assert_eq!(irdeto.counts().created, 0);
}

#[tokio::test]
async fn mutual_tls_needs_the_client_certificate() {
    let ca = TestCa::new("irdeto test CA");
    let clients = TestCa::new("irdeto client CA");
    let irdeto = tls_standin(&ca.server(&["127.0.0.1"]), Some(&clients));
    let files = Files::new();

    let anonymous = gateway(irdeto.url(), trusting(&files, &ca));
    match anonymous.grant(&job("tls-4")).await {
        Err(DeliveryError::Transient { reason, .. }) => {
            eprintln!("no client certificate: {reason}")
        }
        other => panic!("expected a transient error without a client certificate: {other:?}"),
    }

    let stranger = clients_of(&files, &ca, &TestCa::new("a stranger's CA"), "stranger");
    match gateway(irdeto.url(), stranger).grant(&job("tls-4")).await {
        Err(DeliveryError::Transient { .. }) => {}
        other => panic!("expected a transient error with a foreign certificate: {other:?}"),
    }
    assert_eq!(irdeto.counts().created, 0, "nothing reached the stand-in");

    let ours = clients_of(&files, &ca, &clients, "licenses");
    gateway(irdeto.url(), ours)
        .grant(&job("tls-4"))
        .await
        .expect("granted with the client certificate");
    assert_eq!(irdeto.counts().created, 1);
}

/// Trusting `ca`, presenting a client certificate `issuer` made for `name`.
fn clients_of(files: &Files, ca: &TestCa, issuer: &TestCa, name: &str) -> TlsFiles {
    let client = issuer.client(name);
    TlsFiles {
        ca_file: Some(files.write("ca.pem", &ca.cert_pem())),
        client_cert_file: Some(files.write(&format!("{name}.crt"), &client.cert_pem)),
        client_key_file: Some(files.write(&format!("{name}.key"), &client.key_pem)),
    }
}

#[test]
fn unusable_tls_files_name_their_key_on_one_line() {
    let files = Files::new();
    let ca = TestCa::new("irdeto test CA");
    let client = ca.client("licenses");
    let missing = PathBuf::from("/nonexistent/irdeto-ca.pem");
    let garbage = files.write("garbage.pem", "not a certificate");
    let cert = files.write("client.crt", &client.cert_pem);
    let key = files.write("client.key", &client.key_pem);
    let cases = [
        (
            TlsFiles {
                ca_file: Some(missing),
                ..TlsFiles::default()
            },
            "irdeto.ca_file: cannot read /nonexistent/irdeto-ca.pem",
        ),
        (
            TlsFiles {
                ca_file: Some(garbage.clone()),
                ..TlsFiles::default()
            },
            "irdeto.ca_file: ",
        ),
        (
            TlsFiles {
                client_cert_file: Some(cert.clone()),
                ..TlsFiles::default()
            },
            "irdeto.client_key_file: is not set",
        ),
        (
            TlsFiles {
                client_key_file: Some(key.clone()),
                ..TlsFiles::default()
            },
            "irdeto.client_cert_file: is not set",
        ),
        (
            TlsFiles {
                client_cert_file: Some(cert),
                client_key_file: Some(garbage),
                ..TlsFiles::default()
            },
            "irdeto.client_cert_file: ",
        ),
    ];
    for (tls, expected) in cases {
        let error = IrdetoGateway::new(&config("https://127.0.0.1:1", tls)).expect_err(expected);
        assert!(matches!(error, ConfigError::Tls { .. }), "{error:?}");
        let m = error.to_string();
        assert!(m.starts_with(expected), "{m}");
        assert!(!m.contains('\n'), "{m}");
        assert!(!m.contains("PRIVATE KEY"), "{m}");
    }
    // A good pair builds.
    IrdetoGateway::new(&config(
        "https://127.0.0.1:1",
        TlsFiles {
            ca_file: Some(files.write("ca.pem", &ca.cert_pem())),
            client_cert_file: Some(files.write("c.crt", &client.cert_pem)),
            client_key_file: Some(key),
        },
    ))
    .expect("a good client certificate and key");
}
