//! `[catalogue]`: how fresh the user API's catalogue in memory is kept, and the bound on it.

use std::time::Duration;

use serde::Deserialize;

use super::Problem;

/// `[catalogue]`: the catalogue in memory of the user API.
#[derive(Debug, Clone, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct CatalogueSettings {
    /// How often each instance polls the database's catalogue change marker, reloading the
    /// products when it moved: the bound on how stale another instance's catalogue may be.
    /// 1..=1000.
    pub refresh_ms: u64,
}

impl CatalogueSettings {
    pub fn refresh_every(&self) -> Duration {
        Duration::from_millis(self.refresh_ms)
    }

    /// The problems of `catalogue.*`.
    pub(super) fn validate(&self, problems: &mut Vec<Problem>) {
        if !(1..=1000).contains(&self.refresh_ms) {
            problems.push(Problem::new(
                "catalogue.refresh_ms",
                "must be between 1 and 1000: a product change must show on every instance \
                 within a second",
            ));
        }
    }
}
