//! Errors answered as JSON:API error documents: one place maps every error of the layers below
//! to a status and stable codes, logging an internal cause and never sending it.

use actix_web::http::StatusCode;
use actix_web::http::header::{self, HeaderValue};
use actix_web::{HttpResponse, ResponseError};
use licenses_app::{AppError, Problem};
use serde::Serialize;
use utoipa::ToSchema;

use super::media_type::JSONAPI;

/// One problem: a member of a JSON:API `errors` array.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, ToSchema)]
pub struct ErrorObject {
    /// The HTTP status of this problem, as a string.
    #[schema(pattern = "^[1-5][0-9][0-9]$")]
    pub status: String,
    /// A stable, machine-readable code (`not_found`, `invalid_type`, `required`, …).
    pub code: &'static str,
    /// The status's reason phrase.
    pub title: &'static str,
    /// What is wrong, for a person.
    pub detail: String,
    #[serde(skip_serializing_if = "Option::is_none")]
    #[schema(nullable = false)]
    pub source: Option<Source>,
}

/// Where the problem is: an RFC 6901 pointer to the member at fault in the request document
/// (`/data/attributes/title`), the query parameter at fault (`page[size]`), or the request
/// header at fault (`Licenses-Consistency`; JSON:API 1.1's `source.header`).
#[derive(Debug, Clone, PartialEq, Eq, Serialize, ToSchema)]
#[serde(rename_all = "lowercase")]
pub enum Source {
    Pointer(String),
    Parameter(String),
    Header(String),
}

/// A JSON:API error document: every problem found, each with a stable `code`; at most 100
/// of them, with `meta.problems_total` saying how many there were when there were more.
#[derive(Debug, Serialize, ToSchema)]
#[schema(example = json!({"errors": [{"status": "404", "code": "not_found",
    "title": "Not Found", "detail": "no product has this id"}]}))]
pub struct ErrorDocument<'a> {
    #[schema(max_items = 100)]
    pub errors: &'a [ErrorObject],
    #[serde(skip_serializing_if = "Option::is_none")]
    #[schema(nullable = false)]
    pub meta: Option<ErrorMeta>,
}

/// The `meta` of an error document whose problems were too many to list.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, ToSchema)]
pub struct ErrorMeta {
    /// How many problems were found; `errors` lists the first 100.
    #[schema(minimum = 101)]
    pub problems_total: usize,
}

/// The most problems an error document lists: a document with thousands of bad members gets
/// the first of them and their count, not an answer larger than its request.
pub const MAX_PROBLEMS: usize = 100;

/// An error answered as a JSON:API error document. Built from a status and problems with a
/// stable `code` each; the cause of an internal error is logged here and never sent.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct ApiError {
    status: StatusCode,
    errors: Vec<ErrorObject>,
    /// How many problems there were, when more than `errors` lists.
    problems_total: Option<usize>,
    headers: Vec<(header::HeaderName, HeaderValue)>,
}

impl ApiError {
    pub fn new(status: StatusCode, code: &'static str, detail: impl Into<String>) -> Self {
        Self::sourced(status, code, detail.into(), None)
    }

    /// One problem, at `source` when it has one.
    fn sourced(
        status: StatusCode,
        code: &'static str,
        detail: String,
        source: Option<Source>,
    ) -> Self {
        Self {
            status,
            errors: vec![object(status, code, detail, source)],
            problems_total: None,
            headers: Vec::new(),
        }
    }

    /// Problems of the request document, each with its pointer (the first
    /// [`MAX_PROBLEMS`], and their count when there were more).
    pub fn problems(status: StatusCode, problems: Vec<Problem>) -> Self {
        let total = problems.len();
        Self::mixed_of(
            status,
            problems.into_iter().map(|p| (status, p)).collect(),
            total,
        )
    }

    /// Problems of different kinds, each keeping its own status; the response has `status`.
    pub fn mixed(status: StatusCode, problems: Vec<(StatusCode, Problem)>) -> Self {
        let total = problems.len();
        Self::mixed_of(status, problems, total)
    }

    /// Like [`Self::mixed`], of `total` problems of which `problems` are the first found
    /// (the reader kept no more); the document lists at most [`MAX_PROBLEMS`]. When it
    /// cannot list them all, those of the answer's own status come first, so that the
    /// client learns why it got that status.
    pub fn mixed_of(
        status: StatusCode,
        mut problems: Vec<(StatusCode, Problem)>,
        total: usize,
    ) -> Self {
        if problems.len() > MAX_PROBLEMS {
            problems.sort_by_key(|(s, _)| *s != status);
        }
        let errors: Vec<ErrorObject> = problems
            .into_iter()
            .take(MAX_PROBLEMS)
            .map(|(s, p)| object(s, p.code, p.detail, p.pointer.map(Source::Pointer)))
            .collect();
        let total = total.max(errors.len());
        Self {
            status,
            problems_total: (total > errors.len()).then_some(total),
            errors,
            headers: Vec::new(),
        }
    }

    /// How many problems there were, when the document lists fewer.
    pub fn problems_total(&self) -> Option<usize> {
        self.problems_total
    }

    /// A bad query parameter (400, `source.parameter`).
    pub fn parameter(parameter: &str, code: &'static str, detail: impl Into<String>) -> Self {
        Self::parameter_status(StatusCode::BAD_REQUEST, parameter, code, detail)
    }

    /// A bad request header (400, `source.header`).
    pub fn header(name: &str, code: &'static str, detail: impl Into<String>) -> Self {
        Self::header_status(StatusCode::BAD_REQUEST, name, code, detail)
    }

    /// A request header answered with another status than 400 (a `Content-Type` that is not
    /// JSON:API: 415), with `source.header`.
    pub fn header_status(
        status: StatusCode,
        name: &str,
        code: &'static str,
        detail: impl Into<String>,
    ) -> Self {
        let source = Source::Header(name.to_owned());
        Self::sourced(status, code, detail.into(), Some(source))
    }

    /// A query parameter answered with another status than 400 (the feed's expired cursor:
    /// 410), with `source.parameter`.
    pub fn parameter_status(
        status: StatusCode,
        parameter: &str,
        code: &'static str,
        detail: impl Into<String>,
    ) -> Self {
        let source = Source::Parameter(parameter.to_owned());
        Self::sourced(status, code, detail.into(), Some(source))
    }

    pub fn pointer(
        status: StatusCode,
        pointer: &str,
        code: &'static str,
        detail: impl Into<String>,
    ) -> Self {
        let source = Source::Pointer(pointer.to_owned());
        Self::sourced(status, code, detail.into(), Some(source))
    }

    pub fn not_found(detail: impl Into<String>) -> Self {
        Self::new(StatusCode::NOT_FOUND, "not_found", detail)
    }

    /// 405, with the methods the resource does answer.
    pub fn method_not_allowed(allow: &str) -> Self {
        Self::new(
            StatusCode::METHOD_NOT_ALLOWED,
            "method_not_allowed",
            format!("this resource answers {allow} only"),
        )
        .with_header(
            header::ALLOW,
            HeaderValue::from_str(allow).unwrap_or(HeaderValue::from_static("")),
        )
    }

    /// 503 with `Retry-After`.
    pub fn unavailable() -> Self {
        Self::new(
            StatusCode::SERVICE_UNAVAILABLE,
            "unavailable",
            "the service cannot reach its database; retry shortly",
        )
        .with_header(header::RETRY_AFTER, HeaderValue::from_static("1"))
    }

    pub fn internal() -> Self {
        Self::new(
            StatusCode::INTERNAL_SERVER_ERROR,
            "internal_error",
            "an unexpected error occurred; it has been logged",
        )
    }

    pub fn with_header(mut self, name: header::HeaderName, value: HeaderValue) -> Self {
        self.headers.push((name, value));
        self
    }

    pub fn status(&self) -> StatusCode {
        self.status
    }

    pub fn errors(&self) -> &[ErrorObject] {
        &self.errors
    }

    /// The error document's bytes.
    pub fn body(&self) -> Vec<u8> {
        serde_json::to_vec(&ErrorDocument {
            errors: &self.errors,
            meta: self
                .problems_total
                .map(|problems_total| ErrorMeta { problems_total }),
        })
        .unwrap_or_default()
    }
}

fn object(
    status: StatusCode,
    code: &'static str,
    detail: String,
    source: Option<Source>,
) -> ErrorObject {
    ErrorObject {
        status: status.as_u16().to_string(),
        code,
        title: status.canonical_reason().unwrap_or("Error"),
        detail,
        source,
    }
}

impl std::fmt::Display for ApiError {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        write!(f, "{}", self.status)?;
        for e in &self.errors {
            write!(f, " [{}: {}]", e.code, e.detail)?;
        }
        Ok(())
    }
}

impl ResponseError for ApiError {
    fn status_code(&self) -> StatusCode {
        self.status
    }

    fn error_response(&self) -> HttpResponse {
        let mut response = HttpResponse::build(self.status);
        response.insert_header((header::CONTENT_TYPE, JSONAPI));
        for (name, value) in &self.headers {
            response.insert_header((name.clone(), value.clone()));
        }
        response.body(self.body())
    }
}

impl From<AppError> for ApiError {
    fn from(e: AppError) -> Self {
        match e {
            AppError::NotFound(p) => Self::problems(StatusCode::NOT_FOUND, vec![p]),
            AppError::RelatedNotFound { missing, invalid } => Self::mixed(
                StatusCode::NOT_FOUND,
                missing
                    .into_iter()
                    .map(|p| (StatusCode::NOT_FOUND, p))
                    .chain(
                        invalid
                            .into_iter()
                            .map(|p| (StatusCode::UNPROCESSABLE_ENTITY, p)),
                    )
                    .collect(),
            ),
            AppError::Invalid(p) => Self::problems(StatusCode::UNPROCESSABLE_ENTITY, p),
            AppError::Conflict(p) => Self::problems(StatusCode::CONFLICT, p),
            AppError::Forbidden(p) => Self::problems(StatusCode::FORBIDDEN, vec![p]),
            AppError::Unavailable => {
                tracing::warn!("storage unavailable: answering 503");
                Self::unavailable()
            }
            AppError::Internal(cause) => {
                tracing::error!(%cause, "internal error");
                Self::internal()
            }
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn an_internal_cause_never_reaches_the_client() {
        let e = ApiError::from(AppError::Internal(
            "relation \"licenses\" does not exist at /srv/x.rs".into(),
        ));
        let body = String::from_utf8(e.body()).expect("utf8");
        assert_eq!(e.status(), StatusCode::INTERNAL_SERVER_ERROR);
        assert!(!body.contains("relation"), "{body}");
    }

    #[test]
    fn problems_keep_their_pointers_and_codes() {
        let e = ApiError::from(AppError::Invalid(vec![Problem::new(
            Some("/data/3/attributes/order_id".into()),
            "duplicate_order_id",
            "d",
        )]));
        let v: serde_json::Value = serde_json::from_slice(&e.body()).expect("json");
        assert_eq!(
            v,
            serde_json::json!({"errors": [{"status": "422", "code": "duplicate_order_id", "title": "Unprocessable Entity",
                "detail": "d", "source": {"pointer": "/data/3/attributes/order_id"}}]})
        );
    }

    #[test]
    fn a_long_list_of_problems_is_cut_at_100_with_its_count() {
        let many = |n: usize| {
            (0..n)
                .map(|i| Problem::new(Some(format!("/data/{i}")), "required", "d"))
                .collect::<Vec<_>>()
        };
        let e = ApiError::from(AppError::Invalid(many(250)));
        assert_eq!(e.errors().len(), MAX_PROBLEMS);
        assert_eq!(e.problems_total(), Some(250));
        let v: serde_json::Value = serde_json::from_slice(&e.body()).expect("json");
        assert_eq!(v["meta"]["problems_total"], 250);
        assert_eq!(v["errors"].as_array().map(Vec::len), Some(100));
        assert_eq!(v["errors"][99]["source"]["pointer"], "/data/99");

        let exact = ApiError::from(AppError::Invalid(many(100)));
        assert_eq!(exact.errors().len(), 100);
        assert_eq!(exact.problems_total(), None);
        let v: serde_json::Value = serde_json::from_slice(&exact.body()).expect("json");
        assert!(v.get("meta").is_none(), "{v}");

        let kept = ApiError::mixed_of(
            StatusCode::BAD_REQUEST,
            vec![(StatusCode::BAD_REQUEST, many(1).remove(0))],
            5000,
        );
        assert_eq!(kept.problems_total(), Some(5000));

        // 100 unknown attributes (422) found before one item that is not an object (400):
        // the answer is 400, and its reason is among those listed.
        let mut found: Vec<_> = many(100)
            .into_iter()
            .map(|p| (StatusCode::UNPROCESSABLE_ENTITY, p))
            .collect();
        found.push((
            StatusCode::BAD_REQUEST,
            Problem::new(Some("/data/100".into()), "invalid_type", "d"),
        ));
        let cut = ApiError::mixed(StatusCode::BAD_REQUEST, found);
        assert_eq!(cut.errors().len(), MAX_PROBLEMS);
        assert_eq!(cut.errors()[0].status, "400");
        assert_eq!(cut.errors()[1].status, "422");
    }

    #[test]
    fn unavailable_says_when_to_retry() {
        let r = ApiError::from(AppError::Unavailable).error_response();
        assert_eq!(r.status(), StatusCode::SERVICE_UNAVAILABLE);
        assert_eq!(
            r.headers()
                .get(header::RETRY_AFTER)
                .and_then(|v| v.to_str().ok()),
            Some("1")
        );
    }
}
