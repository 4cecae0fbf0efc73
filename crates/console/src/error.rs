//! What a console page answers when it cannot show what was asked: an HTML page with the
//! status, never an internal message.

use actix_web::http::StatusCode;
use actix_web::http::header::{self, HeaderValue};
use actix_web::{HttpResponse, ResponseError};
use licenses_app::AppError;

use crate::html;

/// Why a console request failed.
#[derive(Debug, thiserror::Error)]
pub enum ConsoleError {
    /// A form or query that cannot be read (400).
    #[error("{0}")]
    BadRequest(String),
    /// No session, a bad CSRF token, a foreign origin, or a key without the scope (403).
    #[error("{0}")]
    Forbidden(String),
    /// No such page or resource (404).
    #[error("{0}")]
    NotFound(String),
    /// Over the key's rate limit (429).
    #[error("too many requests with this key: wait a moment")]
    TooManyRequests,
    /// Storage is out of reach for now (503).
    #[error("the database cannot be reached right now")]
    Unavailable,
    /// A bug or corrupt data (500): the cause is logged, not shown.
    #[error("an internal error occurred")]
    Internal,
}

impl ConsoleError {
    /// What a page shows of a use case's failure, logging an internal cause.
    pub fn from_app(e: AppError) -> Self {
        match e {
            AppError::Unavailable => Self::Unavailable,
            AppError::NotFound(p) => Self::NotFound(p.detail),
            AppError::Forbidden(p) => Self::Forbidden(p.detail),
            AppError::Internal(cause) => {
                tracing::error!(%cause, "console: internal error");
                Self::Internal
            }
            other => Self::BadRequest(readable(&other)),
        }
    }
}

/// A use case's refusal, in words an agent can act on: the problems' own details (written for
/// clients, never holding internals); an internal error says only that it happened (the cause
/// is logged).
pub fn readable(e: &AppError) -> String {
    let details = |problems: &[licenses_app::Problem]| {
        problems
            .iter()
            .map(|p| p.detail.as_str())
            .collect::<Vec<_>>()
            .join("; ")
    };
    match e {
        AppError::NotFound(p) | AppError::Forbidden(p) => p.detail.clone(),
        AppError::RelatedNotFound { missing, invalid } => {
            let mut all = missing.clone();
            all.extend(invalid.iter().cloned());
            details(&all)
        }
        AppError::Invalid(problems) | AppError::Conflict(problems) => details(problems),
        AppError::Unavailable => "the database cannot be reached right now: try again".into(),
        AppError::Internal(cause) => {
            tracing::error!(%cause, "console: internal error");
            "an internal error occurred (it is logged)".into()
        }
    }
}

impl ResponseError for ConsoleError {
    fn status_code(&self) -> StatusCode {
        match self {
            Self::BadRequest(_) => StatusCode::BAD_REQUEST,
            Self::Forbidden(_) => StatusCode::FORBIDDEN,
            Self::NotFound(_) => StatusCode::NOT_FOUND,
            Self::TooManyRequests => StatusCode::TOO_MANY_REQUESTS,
            Self::Unavailable => StatusCode::SERVICE_UNAVAILABLE,
            Self::Internal => StatusCode::INTERNAL_SERVER_ERROR,
        }
    }

    fn error_response(&self) -> HttpResponse {
        let status = self.status_code();
        let mut response = HttpResponse::build(status)
            .content_type(html::HTML)
            .body(html::error_page(status, &self.to_string()).into_string());
        if matches!(self, Self::Unavailable | Self::TooManyRequests) {
            response
                .headers_mut()
                .insert(header::RETRY_AFTER, HeaderValue::from_static("5"));
        }
        response
    }
}
