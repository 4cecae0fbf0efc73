//! `[limits]`: the rate limits per caller of both APIs, and the check that a rate has a burst.

use serde::Deserialize;

use super::Problem;

/// `[limits]`: rate limits per caller (0 requests a second: no limit).
#[derive(Debug, Clone, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct LimitsSettings {
    /// Requests a second each user (a token's `sub`) may sustain on the user API.
    pub user_requests_per_second: u32,
    /// Requests a user may send at once above that rate.
    pub user_burst: u32,
    /// Requests a second each management key may sustain on the management API.
    pub management_requests_per_second: u32,
    /// Requests a key may send at once above that rate.
    pub management_burst: u32,
    /// Failed authentications (401) a client address may get a minute, on both APIs
    /// together, before its requests get 429 ahead of any credential check; 0: no limit.
    pub auth_failures_per_minute: u32,
}

impl LimitsSettings {
    /// The problems of `limits.*`: a rate without a burst.
    pub(super) fn validate(&self, problems: &mut Vec<Problem>) {
        for (rate, burst, key) in [
            (
                self.user_requests_per_second,
                self.user_burst,
                "limits.user_burst",
            ),
            (
                self.management_requests_per_second,
                self.management_burst,
                "limits.management_burst",
            ),
        ] {
            if rate > 0 && burst == 0 {
                problems.push(Problem::new(
                    key,
                    "must be at least 1 while its requests_per_second is set",
                ));
            }
        }
    }
}

#[cfg(test)]
mod tests {
    use crate::settings::load;
    use crate::settings::test_sources::{message, with_vars};

    #[test]
    fn a_rate_needs_a_burst() {
        let m = message(load(&with_vars(
            "local",
            &[
                ("LICENSES__LIMITS__USER_REQUESTS_PER_SECOND", "5"),
                ("LICENSES__LIMITS__USER_BURST", "0"),
            ],
        )));
        assert_eq!(
            m,
            "limits.user_burst: must be at least 1 while its requests_per_second is set"
        );
        let s = load(&with_vars(
            "local",
            &[("LICENSES__LIMITS__USER_BURST", "0")],
        ))
        .expect("no rate, no burst needed");
        assert_eq!(s.limits.user_burst, 0);
    }
}
