use licenses_domain::Violation;

use crate::ports::StoreError;

/// One problem with a request, located by an absolute JSON pointer into the request document
/// (`/data/3/attributes/order_id`) where it has one.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Problem {
    pub pointer: Option<String>,
    pub code: &'static str,
    pub detail: String,
}

impl Problem {
    pub fn new(pointer: Option<String>, code: &'static str, detail: impl Into<String>) -> Self {
        Self {
            pointer,
            code,
            detail: detail.into(),
        }
    }

    /// A domain violation of the resource at `base` (`/data` or `/data/17`).
    pub fn at(base: &str, v: Violation) -> Self {
        Self {
            pointer: Some(format!("{base}{}", v.pointer)),
            code: v.code,
            detail: v.detail,
        }
    }
}

/// Why a use case failed. The front-ends map each variant to one HTTP status; only
/// `Internal` carries a cause, and that cause is logged, never shown to a client.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
pub enum AppError {
    /// The resource the request names does not exist (404).
    #[error("not found: {}", .0.detail)]
    NotFound(Problem),
    /// The request names resources that do not exist (404, as JSON:API 1.0 requires for a
    /// related resource): a license's product, a batch's licenses to delete; each at its
    /// pointer; `invalid` holds whatever else is wrong with
    /// the same request (422 each), so that the client learns every problem at once.
    #[error("related resources not found: {missing:?}")]
    RelatedNotFound {
        missing: Vec<Problem>,
        invalid: Vec<Problem>,
    },
    /// The request breaks the rules (422): every problem found.
    #[error("invalid request: {0:?}")]
    Invalid(Vec<Problem>),
    /// The request conflicts with the stored state (409).
    #[error("conflict: {0:?}")]
    Conflict(Vec<Problem>),
    /// The caller may not do this (403).
    #[error("forbidden: {}", .0.detail)]
    Forbidden(Problem),
    /// Storage is out of reach for now (503, retry).
    #[error("storage unavailable")]
    Unavailable,
    /// A bug or corrupt data (500); the text is for the logs.
    #[error("internal error: {0}")]
    Internal(String),
}

impl AppError {
    pub fn not_found(what: &str) -> Self {
        Self::NotFound(Problem::new(
            None,
            "not_found",
            format!("no {what} has this id"),
        ))
    }

    pub fn invalid(
        pointer: impl Into<String>,
        code: &'static str,
        detail: impl Into<String>,
    ) -> Self {
        Self::Invalid(vec![Problem::new(Some(pointer.into()), code, detail)])
    }
}

impl From<StoreError> for AppError {
    /// The store errors a use case does not handle itself.
    fn from(e: StoreError) -> Self {
        match e {
            StoreError::Unavailable(_) => Self::Unavailable,
            other => Self::Internal(other.to_string()),
        }
    }
}
