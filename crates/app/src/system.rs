//! The production implementations of the two ports that need no adapter crate.

use licenses_domain::{LicenseId, ProductId, Timestamp};

use crate::ports::{Clock, IdSource};

/// The wall clock, in unix seconds.
#[derive(Debug, Clone, Copy, Default)]
pub struct SystemClock;

impl Clock for SystemClock {
    fn now(&self) -> Timestamp {
        let secs = std::time::SystemTime::now()
            .duration_since(std::time::UNIX_EPOCH)
            .map_or(0, |d| i64::try_from(d.as_secs()).unwrap_or(i64::MAX));
        Timestamp::from_unix(secs)
    }
}

/// Ids as UUIDv7: unique across instances without coordination, and ordered by creation
/// time, so that keyset pagination by id follows creation order and index inserts stay local.
#[derive(Debug, Clone, Copy, Default)]
pub struct UuidV7Ids;

impl IdSource for UuidV7Ids {
    fn license_id(&self) -> LicenseId {
        LicenseId::parse(uuid::Uuid::now_v7().to_string()).expect("a UUID is a valid id")
    }

    fn product_id(&self) -> ProductId {
        ProductId::parse(uuid::Uuid::now_v7().to_string()).expect("a UUID is a valid id")
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn uuid_v7_ids_are_unique_and_ordered() {
        let ids: Vec<_> = (0..1000).map(|_| UuidV7Ids.license_id()).collect();
        assert!(ids.windows(2).all(|w| w[0] < w[1]));
    }
}
