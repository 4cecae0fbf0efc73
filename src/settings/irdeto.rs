//! `[irdeto]`: the Irdeto entitlement integration (endpoint, key, timeout, attempts), the checks
//! of its values, and what serving needs when it is enabled.

use std::path::PathBuf;
use std::time::Duration;

use secrecy::SecretString;
use serde::Deserialize;

use super::Problem;

/// `[irdeto]`: the Irdeto entitlement integration.
#[derive(Debug, Clone, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct IrdetoSettings {
    pub enabled: bool,
    #[serde(default)]
    pub base_url: Option<String>,
    #[serde(default)]
    pub api_key: Option<SecretString>,
    pub timeout_ms: u64,
    pub max_attempts: u32,
    /// A PEM bundle of the CAs trusted for Irdeto's certificate, instead of the system's
    /// roots.
    #[serde(default)]
    pub ca_file: Option<PathBuf>,
    /// A PEM client certificate (chain) for mutual TLS, with `client_key_file`.
    #[serde(default)]
    pub client_cert_file: Option<PathBuf>,
    /// The PEM private key of `client_cert_file`. Secret: keep the file readable by the
    /// service only.
    #[serde(default)]
    pub client_key_file: Option<PathBuf>,
}

impl IrdetoSettings {
    pub fn timeout(&self) -> Duration {
        Duration::from_millis(self.timeout_ms)
    }

    /// The problems of `irdeto.*` values as given.
    pub(super) fn validate(&self, problems: &mut Vec<Problem>) {
        if let Some(url) = &self.base_url
            && let Err(message) = check_http_url(url)
        {
            problems.push(Problem::new("irdeto.base_url", message));
        }
        if self.timeout_ms == 0 {
            problems.push(Problem::new("irdeto.timeout_ms", "must be at least 1"));
        }
        if self.max_attempts == 0 {
            problems.push(Problem::new("irdeto.max_attempts", "must be at least 1"));
        }
    }

    /// What serving needs when `irdeto.enabled`: the endpoint and its key, and the TLS files
    /// that are named readable (their contents are checked when the client is built).
    pub(super) fn check_for_serving(&self, problems: &mut Vec<Problem>) {
        if self.enabled {
            for (key, file) in [
                ("irdeto.ca_file", &self.ca_file),
                ("irdeto.client_cert_file", &self.client_cert_file),
                ("irdeto.client_key_file", &self.client_key_file),
            ] {
                if let Some(path) = file
                    && let Err(e) = std::fs::File::open(path)
                {
                    problems.push(Problem::new(
                        key,
                        format!("cannot read {}: {e}", path.display()),
                    ));
                }
            }
            match (&self.client_cert_file, &self.client_key_file) {
                (Some(_), None) => problems.push(Problem::new(
                    "irdeto.client_key_file",
                    "is not set: irdeto.client_cert_file needs it",
                )),
                (None, Some(_)) => problems.push(Problem::new(
                    "irdeto.client_cert_file",
                    "is not set: irdeto.client_key_file needs it",
                )),
                _ => {}
            }
            if self.base_url.is_none() {
                problems.push(Problem::new(
                    "irdeto.base_url",
                    "is not set: irdeto.enabled needs it",
                ));
            }
            if self.api_key.is_none() {
                problems.push(Problem::new(
                    "irdeto.api_key",
                    "is not set: irdeto.enabled needs it",
                ));
            }
        }
    }
}

fn check_http_url(url: &str) -> Result<(), String> {
    match url::Url::parse(url) {
        Ok(parsed) if matches!(parsed.scheme(), "http" | "https") => Ok(()),
        _ => Err(format!("expected an http:// or https:// URL, got {url:?}")),
    }
}

#[cfg(test)]
mod tests {
    use crate::settings::load;
    use crate::settings::test_sources::with_vars;

    #[test]
    fn irdeto_needs_its_endpoint_when_enabled() {
        let s = load(&with_vars(
            "local",
            &[("LICENSES__IRDETO__ENABLED", "true")],
        ))
        .expect("loads");
        let m = s.check_for_serving().expect_err("no endpoint").to_string();
        assert!(m.contains("irdeto.base_url"), "{m}");
        assert!(m.contains("irdeto.api_key"), "{m}");
    }

    #[test]
    fn tls_files_must_be_readable_and_come_in_pairs() {
        let enabled = [
            ("LICENSES__IRDETO__ENABLED", "true"),
            ("LICENSES__IRDETO__BASE_URL", "https://irdeto.example"),
            ("LICENSES__IRDETO__API_KEY", "k"),
        ];
        let with = |extra: &[(&'static str, &'static str)]| {
            let mut vars = enabled.to_vec();
            vars.extend_from_slice(extra);
            load(&with_vars("local", &vars)).expect("loads")
        };
        let m = with(&[("LICENSES__IRDETO__CA_FILE", "/nonexistent/ca.pem")])
            .check_for_serving()
            .expect_err("missing file")
            .to_string();
        assert!(
            m.starts_with("irdeto.ca_file: cannot read /nonexistent/ca.pem"),
            "{m}"
        );
        let m = with(&[("LICENSES__IRDETO__CLIENT_CERT_FILE", "/dev/null")])
            .check_for_serving()
            .expect_err("no key")
            .to_string();
        assert!(m.starts_with("irdeto.client_key_file: is not set"), "{m}");
        let m = with(&[("LICENSES__IRDETO__CLIENT_KEY_FILE", "/dev/null")])
            .check_for_serving()
            .expect_err("no certificate")
            .to_string();
        assert!(m.starts_with("irdeto.client_cert_file: is not set"), "{m}");
        with(&[("LICENSES__IRDETO__CA_FILE", "/dev/null")])
            .check_for_serving()
            .expect("readable");
    }
}
