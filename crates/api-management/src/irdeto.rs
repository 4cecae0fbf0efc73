//! The Irdeto outbox, for operators: the backlog of entitlement jobs, and a failed job made
//! due again.

use actix_web::http::StatusCode;
use actix_web::{HttpRequest, web};
use licenses_app::App;
use licenses_app::ports::{Actor, JobKind as OutboxJobKind};
use licenses_http::openapi::{NotFound, ServiceUnavailable, UnauthorizedApikey};
use licenses_http::{ApiError, MetaDocument, respond};
use serde::Serialize;
use utoipa::ToSchema;

use crate::{Answer, caller};

/// GetIrdetoBacklog's answer.
#[derive(Serialize, ToSchema)]
pub(crate) struct BacklogMeta {
    irdeto: IrdetoBacklog,
}

#[derive(Serialize, ToSchema)]
struct IrdetoBacklog {
    enabled: bool,
    /// PENDING jobs due now (in flight included).
    due: u64,
    /// PENDING jobs waiting for their next try.
    retrying: u64,
    /// Jobs given up on: refused for good, or failed `irdeto.max_attempts` times.
    failed: u64,
    /// The newest failed jobs, for `POST /irdeto/jobs/{id}/retry`.
    failed_jobs: Vec<FailedJobMeta>,
}

#[derive(Serialize, ToSchema)]
struct FailedJobMeta {
    id: String,
    kind: JobKind,
    license_id: String,
    attempts: u32,
    last_error: Option<String>,
}

/// GET /irdeto/backlog: how many entitlement jobs are due, retrying and failed.
#[utoipa::path(
    get,
    path = "/api/license/management/v4/irdeto/backlog",
    operation_id = "GetIrdetoBacklog",
    summary = "The Irdeto outbox: jobs due, retrying and failed",
    tag = "Irdeto",
    responses(
        (status = 200, description = "The entitlement jobs due, retrying and failed.",
            body = MetaDocument<BacklogMeta>, content_type = "application/vnd.api+json"),
        (status = 401, response = UnauthorizedApikey),
        (status = 503, response = ServiceUnavailable),
    ),
)]
pub(crate) async fn irdeto_backlog(app: web::Data<App>) -> Answer {
    let report = app.entitlement_backlog().await?;
    let doc = MetaDocument {
        meta: BacklogMeta {
            irdeto: IrdetoBacklog {
                enabled: report.enabled,
                due: report.counts.due,
                retrying: report.counts.retrying,
                failed: report.counts.failed,
                failed_jobs: report
                    .failed
                    .into_iter()
                    .map(|j| FailedJobMeta {
                        id: j.id.to_string(),
                        kind: match j.kind {
                            OutboxJobKind::Grant => JobKind::Grant,
                            OutboxJobKind::Revoke => JobKind::Revoke,
                        },
                        license_id: j.license.into_string(),
                        attempts: j.attempts,
                        last_error: j.last_error,
                    })
                    .collect(),
            },
        },
    };
    Ok(respond(StatusCode::OK, &doc))
}

/// What a job does at Irdeto: GRANT or REVOKE an entitlement.
#[derive(Serialize, ToSchema)]
#[serde(rename_all = "UPPERCASE")]
enum JobKind {
    Grant,
    Revoke,
}

/// The state of a job retried: PENDING.
#[derive(Serialize, ToSchema)]
#[serde(rename_all = "UPPERCASE")]
enum RetriedState {
    Pending,
}

/// RetryIrdetoJob's answer.
#[derive(Serialize, ToSchema)]
pub(crate) struct RetryMeta {
    job: String,
    state: RetriedState,
}

/// POST /irdeto/jobs/{job_id}/retry: a failed job is due again now, attempts reset; audited
/// (`drm_retry`) on the job's license with the key's name.
#[utoipa::path(
    post,
    path = "/api/license/management/v4/irdeto/jobs/{job_id}/retry",
    operation_id = "RetryIrdetoJob",
    summary = "Make a failed Irdeto job due again",
    tag = "Irdeto",
    params(("job_id" = String, Path, description = "The entitlement job, as `meta.irdeto.failed_jobs[].id` gives it.", example = "1")),
    responses(
        (status = 202, description = "The failed job is due again now, its attempts reset.",
            body = MetaDocument<RetryMeta>, content_type = "application/vnd.api+json"),
        (status = 401, response = UnauthorizedApikey),
        (status = 404, response = NotFound),
        (status = 503, response = ServiceUnavailable),
    ),
)]
pub(crate) async fn irdeto_retry(
    app: web::Data<App>,
    req: HttpRequest,
    path: web::Path<String>,
) -> Answer {
    let id: i64 = path
        .parse()
        .map_err(|_| ApiError::not_found("no entitlement job has this id"))?;
    let actor = Actor::ManagementKey(caller(&req)?);
    app.retry_entitlement_job(actor, id).await?;
    Ok(respond(
        StatusCode::ACCEPTED,
        &MetaDocument {
            meta: RetryMeta {
                job: id.to_string(),
                state: RetriedState::Pending,
            },
        },
    ))
}
