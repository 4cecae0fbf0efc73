//! Idempotent writes: a repeated `Idempotency-Key` gets the stored answer of its first use.
//!
//! The record is written by the store in the transaction of the change it belongs to (see
//! [`Change`]), so a key is never recorded for a change that did not commit, and two
//! concurrent requests with one key cannot both commit: the loser finds the key taken and
//! replays the winner's answer.

use licenses_domain::Timestamp;

use crate::error::{AppError, Problem};
use crate::ports::{Conflict, IdempotencyRecord, IdempotencyStore, StoreError, StoredResponse};

/// The idempotency key of a request, with the scope it belongs to and the request's digest.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct IdempotencyKey {
    /// Whose key (`key:NAME`, `user:ID`): one client cannot replay another's answers.
    pub scope: String,
    pub key: String,
    /// A digest of the request (method, path, body); the same key with another request is
    /// refused.
    pub fingerprint: String,
}

impl IdempotencyKey {
    pub(crate) fn record(&self, response: &StoredResponse, at: Timestamp) -> IdempotencyRecord {
        IdempotencyRecord {
            scope: self.scope.clone(),
            key: self.key.clone(),
            fingerprint: self.fingerprint.clone(),
            response: response.clone(),
            created_at: at,
        }
    }
}

/// The stored answer for `key`, if the key was used before with the same request; an error
/// if it was used with another request.
pub(crate) async fn earlier_answer(
    store: &dyn IdempotencyStore,
    key: Option<&IdempotencyKey>,
) -> Result<Option<StoredResponse>, AppError> {
    let Some(key) = key else { return Ok(None) };
    match store.find(&key.scope, &key.key).await? {
        None => Ok(None),
        Some(record) if record.fingerprint == key.fingerprint => Ok(Some(record.response)),
        Some(_) => Err(AppError::Invalid(vec![Problem::new(
            None,
            "idempotency_key_reused",
            "this Idempotency-Key was already used with a different request",
        )])),
    }
}

/// After the store refused a keyed write with a conflict: a concurrent request with the same
/// key may have won the race (on the key itself, or on a unique index it reached first, such
/// as the order id a purchase takes from its key). Its answer then stands for this request
/// too; otherwise `refused` is the answer.
pub(crate) async fn settle_conflict(
    store: &dyn IdempotencyStore,
    key: Option<&IdempotencyKey>,
    refused: StoreError,
    otherwise: impl FnOnce(StoreError) -> AppError,
) -> Result<StoredResponse, AppError> {
    if key.is_some()
        && matches!(refused, StoreError::Conflict(_))
        && let Some(answer) = earlier_answer(store, key).await?
    {
        return Ok(answer);
    }
    match refused {
        StoreError::Conflict(Conflict::IdempotencyKeyTaken) => Err(AppError::Internal(
            "idempotency key reported taken but no record found".to_owned(),
        )),
        other => Err(otherwise(other)),
    }
}

/// How long an idempotency key is kept: a client may repeat a request for at least this long.
pub const KEY_RETENTION_SECONDS: u64 = 24 * 60 * 60;

impl crate::App {
    /// Deletes the idempotency records older than [`KEY_RETENTION_SECONDS`]; how many.
    pub async fn prune_idempotency_keys(&self) -> Result<u64, AppError> {
        let now = self.ports.clock.now().unix();
        let cutoff = now.saturating_sub(i64::try_from(KEY_RETENTION_SECONDS).unwrap_or(i64::MAX));
        Ok(self
            .ports
            .idempotency
            .prune(Timestamp::from_unix(cutoff))
            .await?)
    }
}

#[cfg(test)]
mod tests {
    use crate::testing::{Mocks, NOW};

    #[tokio::test]
    async fn keys_younger_than_a_day_are_kept() {
        let mut m = Mocks::new();
        m.idempotency
            .expect_prune()
            .withf(|before| before.unix() == NOW.unix() - 86_400)
            .times(1)
            .returning(|_| Ok(3));
        assert_eq!(m.app().prune_idempotency_keys().await, Ok(3));
    }
}
