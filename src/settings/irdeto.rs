//! `[irdeto]`: the Irdeto entitlement integration (endpoint, key, timeout, attempts), the checks
//! of its values, and what serving needs when it is enabled.

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

    /// What serving needs when `irdeto.enabled`: the endpoint and its key.
    pub(super) fn check_for_serving(&self, problems: &mut Vec<Problem>) {
        if self.enabled {
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
}
