//! What a read must see: the consistency token (a PostgreSQL WAL position) and the scope a
//! request's store calls run in.
//!
//! A store with replicas serves a call from a replica only inside a [`ReadScope`] that
//! allows it (the front-ends open one per GET request) and, when the scope names a position,
//! only from a replica that has replayed that far; anything outside a scope (writes, the
//! workers, the commands) goes to the primary. Every write inside a scope leaves its commit
//! position there, for the answer's `Licenses-Consistency` header.

use std::fmt;
use std::future::Future;
use std::str::FromStr;
use std::sync::Arc;
use std::sync::atomic::{AtomicBool, AtomicU64, Ordering};

/// A position in PostgreSQL's write-ahead log (`pg_lsn`), shown as PostgreSQL shows it
/// (`16/B374D848`). Clients treat it as opaque.
#[derive(Debug, Clone, Copy, PartialEq, Eq, PartialOrd, Ord, Hash)]
pub struct Lsn(pub u64);

impl fmt::Display for Lsn {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(f, "{:X}/{:X}", self.0 >> 32, self.0 & 0xFFFF_FFFF)
    }
}

/// A token that is not a WAL position.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
#[error("expected a token from a Licenses-Consistency header, such as 16/B374D848")]
pub struct InvalidLsn;

impl FromStr for Lsn {
    type Err = InvalidLsn;

    fn from_str(s: &str) -> Result<Lsn, InvalidLsn> {
        let (high, low) = s.split_once('/').ok_or(InvalidLsn)?;
        let part = |p: &str| {
            if p.is_empty() || p.len() > 8 || !p.bytes().all(|b| b.is_ascii_hexdigit()) {
                return Err(InvalidLsn);
            }
            u64::from_str_radix(p, 16).map_err(|_| InvalidLsn)
        };
        Ok(Lsn(part(high)? << 32 | part(low)?))
    }
}

/// The consistency a request's store calls run under, shared with the store through a
/// task-local: [`ReadScope::run`].
#[derive(Debug, Default)]
pub struct ReadScope {
    /// Reads may go to a replica.
    replicas: AtomicBool,
    /// The position a replica serving a read must have replayed (0: any replica).
    at_least: AtomicU64,
    /// The commit position of the last write made in the scope (0: none).
    wrote: AtomicU64,
}

tokio::task_local! {
    static SCOPE: Arc<ReadScope>;
}

impl ReadScope {
    /// A scope whose reads may go to a replica that has replayed `at_least` (any healthy
    /// replica when `None`).
    pub fn replica_reads(at_least: Option<Lsn>) -> Arc<ReadScope> {
        Arc::new(ReadScope {
            replicas: AtomicBool::new(true),
            at_least: AtomicU64::new(at_least.map_or(0, |l| l.0)),
            wrote: AtomicU64::new(0),
        })
    }

    /// A scope whose reads all go to the primary: a write request's.
    pub fn primary_reads() -> Arc<ReadScope> {
        Arc::new(ReadScope::default())
    }

    /// Runs `future` in `scope`: the store calls it makes see the scope.
    pub async fn run<F: Future>(scope: Arc<ReadScope>, future: F) -> F::Output {
        SCOPE.scope(scope, future).await
    }

    /// The commit position of the scope's last write.
    pub fn wrote(&self) -> Option<Lsn> {
        match self.wrote.load(Ordering::Acquire) {
            0 => None,
            lsn => Some(Lsn(lsn)),
        }
    }

    /// Where a read in the current task may go.
    pub(crate) fn current_read() -> ReadTarget {
        SCOPE
            .try_with(|scope| {
                if !scope.replicas.load(Ordering::Acquire) {
                    return ReadTarget::Primary;
                }
                match scope.at_least.load(Ordering::Acquire) {
                    0 => ReadTarget::AnyReplica,
                    lsn => ReadTarget::ReplicaAt(Lsn(lsn)),
                }
            })
            .unwrap_or(ReadTarget::Primary)
    }

    /// Records a write's commit position in the current task's scope, if any; a later read
    /// of the same scope must see it.
    pub(crate) fn record_write(lsn: Lsn) {
        let _ = SCOPE.try_with(|scope| {
            scope.wrote.fetch_max(lsn.0, Ordering::AcqRel);
            scope.at_least.fetch_max(lsn.0, Ordering::AcqRel);
        });
    }

    /// Whether the current task runs in a scope (writes then fetch their commit position).
    pub(crate) fn in_scope() -> bool {
        SCOPE.try_with(|_| ()).is_ok()
    }
}

/// Where a read may be served from.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub(crate) enum ReadTarget {
    Primary,
    AnyReplica,
    ReplicaAt(Lsn),
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn positions_read_and_print_as_postgresql_shows_them() {
        for text in ["0/0", "16/B374D848", "FFFFFFFF/FFFFFFFF", "0/1"] {
            let lsn: Lsn = text.parse().expect(text);
            assert_eq!(lsn.to_string(), text);
        }
        assert_eq!("16/B374D848".parse(), Ok(Lsn(0x16_B374_D848)));
        assert_eq!(
            "a/b".parse::<Lsn>().map(|l| l.to_string()),
            Ok("A/B".into())
        );
        assert!(Lsn(0x1_0000_0000) > Lsn(0xFFFF_FFFF));
    }

    #[test]
    fn anything_else_is_refused() {
        for text in [
            "",
            "/",
            "0/",
            "/0",
            "16",
            "16/B374D848/1",
            "G/0",
            "123456789/0",
            " 1/2",
            "+1/2",
        ] {
            assert_eq!(text.parse::<Lsn>(), Err(InvalidLsn), "{text:?}");
        }
    }

    #[tokio::test]
    async fn reads_go_to_the_primary_outside_a_scope_and_in_a_write_scope() {
        assert_eq!(ReadScope::current_read(), ReadTarget::Primary);
        let target = ReadScope::run(ReadScope::primary_reads(), async {
            ReadScope::current_read()
        })
        .await;
        assert_eq!(target, ReadTarget::Primary);
    }

    #[tokio::test]
    async fn a_write_raises_the_position_later_reads_of_its_scope_need() {
        let scope = ReadScope::replica_reads(Some(Lsn(10)));
        let targets = ReadScope::run(scope.clone(), async {
            let before = ReadScope::current_read();
            ReadScope::record_write(Lsn(20));
            ReadScope::record_write(Lsn(15));
            (before, ReadScope::current_read())
        })
        .await;
        assert_eq!(
            targets,
            (
                ReadTarget::ReplicaAt(Lsn(10)),
                ReadTarget::ReplicaAt(Lsn(20))
            )
        );
        assert_eq!(scope.wrote(), Some(Lsn(20)));
        let any = ReadScope::run(ReadScope::replica_reads(None), async {
            ReadScope::current_read()
        })
        .await;
        assert_eq!(any, ReadTarget::AnyReplica);
        // Outside the scope nothing is recorded, and nothing fails.
        ReadScope::record_write(Lsn(30));
        assert_eq!(scope.wrote(), Some(Lsn(20)));
    }
}
