use std::fmt;

use serde::{Deserialize, Serialize};

/// A point in time as unix seconds, as the API documents carry it (`start_date: 1523268666`).
#[derive(Debug, Clone, Copy, PartialEq, Eq, PartialOrd, Ord, Hash, Serialize, Deserialize)]
#[serde(transparent)]
pub struct Timestamp(i64);

impl Timestamp {
    /// 9999-12-31T23:59:59Z: later values are refused as input.
    pub const MAX: Timestamp = Timestamp(253_402_300_799);

    pub const fn from_unix(seconds: i64) -> Self {
        Self(seconds)
    }

    pub const fn unix(self) -> i64 {
        self.0
    }

    /// `self + seconds`, saturating at [`Timestamp::MAX`].
    pub fn plus_seconds(self, seconds: u64) -> Self {
        let s = i64::try_from(seconds).unwrap_or(i64::MAX);
        Self(self.0.saturating_add(s).min(Self::MAX.0))
    }

    /// `self - seconds`, saturating at the epoch.
    pub fn minus_seconds(self, seconds: u64) -> Self {
        let s = i64::try_from(seconds).unwrap_or(i64::MAX);
        Self(self.0.saturating_sub(s).max(0))
    }

    /// A timestamp an API client may send: between 1970 and 9999.
    pub(crate) fn parse_input(seconds: i64) -> Result<Self, &'static str> {
        if (0..=Self::MAX.0).contains(&seconds) {
            Ok(Self(seconds))
        } else {
            Err("must be unix seconds between 0 and 253402300799")
        }
    }
}

impl fmt::Display for Timestamp {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        self.0.fmt(f)
    }
}
