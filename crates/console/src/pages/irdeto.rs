//! The Irdeto backlog: jobs due, retrying and failed, the failed ones listed with a retry
//! each. Needs the `irdeto` scope, as the management API's `/irdeto/` routes do.

use actix_web::{HttpResponse, web};
use licenses_api_management::Scope;
use licenses_app::ports::JobKind;
use licenses_http::Routes;
use maud::html;

use super::Shared;
use crate::error::ConsoleError;
use crate::guard::{CsrfOnly, Posted, Signed, after_action};
use crate::html::{self, csrf_field, page};

pub(crate) fn routes(routes: Routes) -> Routes {
    routes
        .get("/irdeto", backlog)
        .get("/irdeto/jobs/{job_id}/retry", confirm_retry)
        .post("/irdeto/jobs/{job_id}/retry", retry)
}

fn kind(kind: JobKind) -> &'static str {
    match kind {
        JobKind::Grant => "grant",
        JobKind::Revoke => "revoke",
    }
}

/// `GET /console/irdeto`.
pub async fn backlog(console: Shared, signed: Signed) -> Result<HttpResponse, ConsoleError> {
    signed.require(Scope::Irdeto)?;
    let report = console
        .app
        .entitlement_backlog()
        .await
        .map_err(ConsoleError::from_app)?;
    let flash = signed.take_flash(&console);
    let body = html! {
        @if !report.enabled {
            p data-testid="irdeto-off" { "The Irdeto integration is off (irdeto.enabled = false): there is no backlog." }
        } @else {
            table id="backlog-counts" {
                caption { "Jobs in the outbox" }
                thead { tr { th scope="col" { "Due" } th scope="col" { "Retrying" } th scope="col" { "Failed" } } }
                tbody {
                    tr {
                        td data-testid="count-due" { (report.counts.due) }
                        td data-testid="count-retrying" { (report.counts.retrying) }
                        td data-testid="count-failed" { (report.counts.failed) }
                    }
                }
            }
            h2 { "Failed jobs" }
            @if report.failed.is_empty() {
                p data-testid="no-failed-jobs" { "No job has failed." }
            } @else {
                table id="failed-jobs" {
                    caption { "Failed jobs: tried as often as irdeto.max_attempts allows, or refused for good" }
                    thead {
                        tr {
                            th scope="col" { "Job" }
                            th scope="col" { "Kind" }
                            th scope="col" { "License" }
                            th scope="col" { "Attempts" }
                            th scope="col" { "Last error" }
                            th scope="col" { "Action" }
                        }
                    }
                    tbody {
                        @for job in &report.failed {
                            tr data-testid="failed-job-row" data-job=(job.id) {
                                th scope="row" { (job.id) }
                                td { (kind(job.kind)) }
                                td { code { (job.license) } }
                                td { (job.attempts) }
                                td { (job.last_error.as_deref().unwrap_or("—")) }
                                td {
                                    a class="button" href={ "/console/irdeto/jobs/" (job.id) "/retry" } data-testid="retry-link" {
                                        "Retry…" span class="visually-hidden" { " job " (job.id) }
                                    }
                                }
                            }
                        }
                    }
                }
            }
        }
    };
    Ok(html::ok(page(
        "Irdeto backlog",
        Some(&signed),
        flash.as_ref(),
        body,
    )))
}

fn job_id(raw: &str) -> Result<i64, ConsoleError> {
    raw.parse()
        .map_err(|_| ConsoleError::NotFound("no entitlement job has this id".into()))
}

/// `GET /console/irdeto/jobs/{job_id}/retry`: the button.
pub async fn confirm_retry(
    signed: Signed,
    path: web::Path<String>,
) -> Result<HttpResponse, ConsoleError> {
    signed.require(Scope::Irdeto)?;
    let id = job_id(&path)?;
    let body = html! {
        p { "Job " (id) " will be due again now, its attempts counted from zero." }
        form method="post" action={ "/console/irdeto/jobs/" (id) "/retry" } id="retry-form" {
            (csrf_field(&signed))
            button type="submit" id="confirm-retry" { "Retry job " (id) }
            " "
            a href="/console/irdeto" id="cancel" { "Cancel" }
        }
    };
    Ok(html::ok(page(
        "Retry a failed job?",
        Some(&signed),
        None,
        body,
    )))
}

/// `POST /console/irdeto/jobs/{job_id}/retry`.
pub async fn retry(
    console: Shared,
    path: web::Path<String>,
    posted: Posted<CsrfOnly>,
) -> Result<HttpResponse, ConsoleError> {
    let Posted(signed, _) = posted;
    signed.require(Scope::Irdeto)?;
    let id = job_id(&path)?;
    let result = console.app.retry_entitlement_job(signed.actor(), id).await;
    after_action(
        &console,
        &signed,
        "/console/irdeto",
        result,
        |()| {
            tracing::info!(key = %signed.key_name, job = id, "console: entitlement job retried");
            format!("Job {id} is due again.")
        },
        |why| format!("Job {id} was not retried: {why}"),
    )
}
