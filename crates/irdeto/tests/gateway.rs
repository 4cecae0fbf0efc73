//! The gateway against the stand-in Irdeto, a real HTTP server on loopback.

use std::time::{Duration, Instant};

use licenses_app::ports::{DeliveryError, EntitlementGateway, JobKind, NewEntitlementJob};
use licenses_domain::{LicenseId, Timestamp, UserId};
use licenses_irdeto::standin::StandIn;
use licenses_irdeto::{IrdetoConfig, IrdetoGateway, TlsFiles};

const KEY: &str = "test-irdeto-key";

fn gateway(url: &str, key: &str, timeout: Duration) -> IrdetoGateway {
    IrdetoGateway::new(&IrdetoConfig {
        base_url: url.parse().expect("url"),
        api_key: key.to_owned().into(),
        timeout,
        tls: TlsFiles::default(),
    })
    .expect("gateway")
}

fn job(license: &str, product: &str) -> NewEntitlementJob {
    NewEntitlementJob {
        kind: JobKind::Grant,
        license: LicenseId::parse(license).expect("id"),
        user: UserId::parse("41").expect("id"),
        irdeto_product: product.into(),
        valid_from: Timestamp::from_unix(1_700_000_000),
        valid_until: Some(Timestamp::from_unix(1_700_086_400)),
    }
}

#[tokio::test]
async fn a_grant_puts_the_entitlement_under_our_id_and_a_repeat_is_harmless() {
    let irdeto = StandIn::start(KEY).expect("stand-in");
    let g = gateway(irdeto.url(), KEY, Duration::from_secs(5));
    g.grant(&job("lic-1", "IRD-1")).await.expect("granted");
    g.grant(&job("lic-1", "IRD-1"))
        .await
        .expect("already granted is success");
    let counts = irdeto.counts();
    assert_eq!((counts.created, counts.duplicates), (1, 1));
    let body = irdeto.entitlement("lic-1").expect("held");
    assert_eq!(body["accountId"], "41");
    assert_eq!(body["productId"], "IRD-1");
    assert_eq!(body["validFrom"], "2023-11-14T22:13:20Z");
    assert_eq!(body["validUntil"], "2023-11-15T22:13:20Z");
}

#[tokio::test]
async fn a_revoke_deletes_it_and_revoking_what_is_gone_is_success() {
    let irdeto = StandIn::start(KEY).expect("stand-in");
    let g = gateway(irdeto.url(), KEY, Duration::from_secs(5));
    g.grant(&job("lic-2", "IRD-1")).await.expect("granted");
    let id = LicenseId::parse("lic-2").expect("id");
    g.revoke(&id).await.expect("revoked");
    g.revoke(&id).await.expect("already gone is success");
    let counts = irdeto.counts();
    assert_eq!((counts.revoked, counts.revoked_missing), (1, 1));
    assert!(irdeto.entitlement_ids().is_empty());
}

#[tokio::test]
async fn a_refused_product_is_permanent_with_the_answer_as_reason() {
    let irdeto = StandIn::start(KEY).expect("stand-in");
    irdeto.refuse_product("IRD-BAD");
    let g = gateway(irdeto.url(), KEY, Duration::from_secs(5));
    match g.grant(&job("lic-3", "IRD-BAD")).await {
        Err(DeliveryError::Permanent { reason }) => {
            assert!(reason.contains("422"), "{reason}");
            assert!(reason.contains("unknown product IRD-BAD"), "{reason}");
        }
        other => panic!("expected a permanent error, got {other:?}"),
    }
    assert_eq!(irdeto.counts().refused, 1);
}

#[tokio::test]
async fn a_wrong_key_is_permanent() {
    let irdeto = StandIn::start(KEY).expect("stand-in");
    let g = gateway(irdeto.url(), "not-the-key", Duration::from_secs(5));
    let answer = g.grant(&job("lic-4", "IRD-1")).await;
    assert!(
        matches!(answer, Err(DeliveryError::Permanent { ref reason }) if reason.contains("401")),
        "{answer:?}"
    );
    assert_eq!(irdeto.counts().unauthorized, 1);
}

#[tokio::test]
async fn service_unavailable_is_transient() {
    let irdeto = StandIn::start(KEY).expect("stand-in");
    irdeto.set_unavailable(true);
    let g = gateway(irdeto.url(), KEY, Duration::from_secs(5));
    let answer = g.grant(&job("lic-5", "IRD-1")).await;
    assert!(
        matches!(answer, Err(DeliveryError::Transient { ref reason, .. }) if reason.contains("503")),
        "{answer:?}"
    );
    let answer = g.revoke(&LicenseId::parse("lic-5").expect("id")).await;
    assert!(
        matches!(answer, Err(DeliveryError::Transient { .. })),
        "{answer:?}"
    );
    assert_eq!(irdeto.counts().unavailable, 2);
    irdeto.set_unavailable(false);
    g.grant(&job("lic-5", "IRD-1")).await.expect("recovered");
    assert_eq!(irdeto.counts().created, 1);
}

#[tokio::test]
async fn an_answer_slower_than_the_timeout_is_transient() {
    let irdeto = StandIn::start(KEY).expect("stand-in");
    irdeto.set_delay(Duration::from_millis(1_500));
    let g = gateway(irdeto.url(), KEY, Duration::from_millis(200));
    let started = Instant::now();
    let answer = g.grant(&job("lic-6", "IRD-1")).await;
    assert!(
        matches!(answer, Err(DeliveryError::Transient { ref reason, .. }) if reason.contains("timed out")),
        "{answer:?}"
    );
    // Bounded by the timeout, not by the stand-in's delay.
    assert!(started.elapsed() < Duration::from_millis(1_400));
}

#[tokio::test]
async fn nobody_listening_is_transient() {
    let port = {
        let l = std::net::TcpListener::bind("127.0.0.1:0").expect("bind");
        l.local_addr().expect("addr").port()
    };
    let g = gateway(
        &format!("http://127.0.0.1:{port}"),
        KEY,
        Duration::from_secs(2),
    );
    let answer = g.revoke(&LicenseId::parse("lic-7").expect("id")).await;
    assert!(
        matches!(answer, Err(DeliveryError::Transient { ref reason, .. }) if reason.contains("connect")),
        "{answer:?}"
    );
}

#[tokio::test]
async fn a_base_url_with_a_path_keeps_it() {
    let irdeto = StandIn::start(KEY).expect("stand-in");
    // The stand-in serves /entitlements at its root: a prefix must reach a 404 (permanent),
    // showing that the prefix is kept rather than dropped.
    let g = gateway(
        &format!("{}/irdeto/v1", irdeto.url()),
        KEY,
        Duration::from_secs(5),
    );
    let answer = g.grant(&job("lic-8", "IRD-1")).await;
    assert!(
        matches!(answer, Err(DeliveryError::Permanent { ref reason }) if reason.contains("404")),
        "{answer:?}"
    );
    assert_eq!(irdeto.counts().created, 0);
}
