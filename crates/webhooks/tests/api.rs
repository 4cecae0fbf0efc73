//! Secrets, signatures and endpoint checks, without a network: secrets and signatures are
//! held against `standardwebhooks`, the reference library receivers run.

use licenses_webhooks::{EndpointError, SecretError, WebhookSecret, sign, validate_endpoint};
use standardwebhooks::Webhook;

#[test]
fn a_secret_round_trips_and_the_reference_library_reads_it() {
    let secret = WebhookSecret::generate();
    let text = secret.as_str().to_owned();
    assert!(text.starts_with("whsec_"), "{text}");
    let again = WebhookSecret::parse(&text).expect("a generated secret parses");
    assert_eq!(again.as_str(), text);

    // Both sides sign alike: the reference library from the same text.
    let reference = Webhook::new(&text).expect("the reference library reads whsec_");
    let body = br#"{"type":"license.revoked","data":{"licenseId":"lic_9"}}"#;
    for (id, ts) in [("msg_1", 1_700_000_000), ("msg_2", 0), ("m", 4_102_444_800)] {
        assert_eq!(
            sign(&again, id, ts, body),
            reference.sign(id, ts, body).expect("UTF-8 body")
        );
    }
}

#[test]
fn debug_does_not_print_the_secret() {
    let secret = WebhookSecret::generate();
    let key = secret
        .as_str()
        .strip_prefix("whsec_")
        .expect("prefix")
        .to_owned();
    for shown in [format!("{secret:?}"), format!("{secret:#?}")] {
        assert!(!shown.contains(&key), "{shown}");
        assert!(!shown.contains("whsec_"), "{shown}");
        assert!(shown.contains("redacted"), "{shown}");
    }
    // Nor inside a struct that derives Debug.
    #[derive(Debug)]
    #[allow(dead_code)]
    struct Endpoint {
        secret: WebhookSecret,
    }
    let shown = format!("{:?}", Endpoint { secret });
    assert!(!shown.contains(&key), "{shown}");
}

#[test]
fn parse_refuses_what_is_not_a_secret() {
    let cases = [
        ("", SecretError::Prefix),
        ("C2FVsBQIhrscChlQIMV+b5sSYspob7oD", SecretError::Prefix),
        (
            "WHSEC_C2FVsBQIhrscChlQIMV+b5sSYspob7oD",
            SecretError::Prefix,
        ),
        ("whsec_", SecretError::Length(0)),
        ("whsec_C2FVsBQIhrscChlQIMV+b5sSYspob7o", SecretError::Base64),
        (
            "whsec_C2FVsBQIhrscChlQIMV-b5sSYspob7oD",
            SecretError::Base64,
        ),
        (
            " whsec_C2FVsBQIhrscChlQIMV+b5sSYspob7oD",
            SecretError::Prefix,
        ),
        ("whsec_c2hvcnQ=", SecretError::Length(5)),
    ];
    for (text, error) in cases {
        assert_eq!(
            WebhookSecret::parse(text).map(|s| s.as_str().to_owned()),
            Err(error.clone()),
            "{text:?}"
        );
        assert!(error.code().starts_with("secret_"));
    }
    assert!(WebhookSecret::parse("whsec_C2FVsBQIhrscChlQIMV+b5sSYspob7oD").is_ok());
}

#[test]
fn endpoints_accepted() {
    for (given, allow_http, normalized) in [
        (
            "https://hooks.example.com/aminotv",
            false,
            "https://hooks.example.com/aminotv",
        ),
        ("https://EXAMPLE.com", false, "https://example.com/"),
        (
            "https://example.com:8443/a/b?x=1&y=2",
            false,
            "https://example.com:8443/a/b?x=1&y=2",
        ),
        ("https://[::1]:9000/h", false, "https://[::1]:9000/h"),
        (
            "https://bücher.example/h",
            false,
            "https://xn--bcher-kva.example/h",
        ),
        (
            "http://127.0.0.1:8080/hook",
            true,
            "http://127.0.0.1:8080/hook",
        ),
        ("http://localhost/hook", true, "http://localhost/hook"),
        ("https://example.com/h", true, "https://example.com/h"),
    ] {
        let url = validate_endpoint(given, allow_http).unwrap_or_else(|e| panic!("{given}: {e}"));
        assert_eq!(url.as_str(), normalized);
    }
    let longest = format!("https://example.com/{}", "a".repeat(2048 - 20));
    assert_eq!(longest.len(), 2048);
    assert!(validate_endpoint(&longest, false).is_ok());
}

#[test]
fn endpoints_refused_with_stable_codes() {
    let too_long = format!("https://example.com/{}", "a".repeat(2048 - 19));
    // 1000 "é" (2000 bytes, 2020 in all) are 6000 bytes once percent-encoded.
    let long_once_encoded = format!("https://example.com/{}", "é".repeat(1000));
    for (given, allow_http, error, code) in [
        (
            "http://example.com/h",
            false,
            EndpointError::NotHttps,
            "endpoint_not_https",
        ),
        (
            "http://127.0.0.1:8080/h",
            false,
            EndpointError::NotHttps,
            "endpoint_not_https",
        ),
        (
            "ftp://example.com/h",
            true,
            EndpointError::NotHttps,
            "endpoint_not_https",
        ),
        (
            "file:///etc/passwd",
            true,
            EndpointError::NotHttps,
            "endpoint_not_https",
        ),
        (
            "javascript:alert(1)",
            true,
            EndpointError::NotHttps,
            "endpoint_not_https",
        ),
        (
            "ws://example.com/h",
            true,
            EndpointError::NotHttps,
            "endpoint_not_https",
        ),
        (
            "https://user:pw@example.com/h",
            false,
            EndpointError::Credentials,
            "endpoint_credentials",
        ),
        (
            "https://user@example.com/h",
            false,
            EndpointError::Credentials,
            "endpoint_credentials",
        ),
        (
            "https://:pw@example.com/h",
            false,
            EndpointError::Credentials,
            "endpoint_credentials",
        ),
        ("https://", false, EndpointError::NoHost, "endpoint_no_host"),
        (
            "https://:443/h",
            false,
            EndpointError::NoHost,
            "endpoint_no_host",
        ),
        (
            too_long.as_str(),
            false,
            EndpointError::TooLong,
            "endpoint_too_long",
        ),
        (
            long_once_encoded.as_str(),
            false,
            EndpointError::TooLong,
            "endpoint_too_long",
        ),
    ] {
        let refused = validate_endpoint(given, allow_http).expect_err(given);
        assert_eq!(refused, error, "{given}");
        assert_eq!(refused.code(), code, "{given}");
    }
    for given in [
        "",
        "example.com/hook",
        "https://exa mple.com/",
        "https://example.com:99999/",
    ] {
        let refused = validate_endpoint(given, true).expect_err(given);
        assert!(
            matches!(refused, EndpointError::Invalid(_)),
            "{given}: {refused:?}"
        );
        assert_eq!(refused.code(), "endpoint_invalid");
    }
}
