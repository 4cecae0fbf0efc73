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
