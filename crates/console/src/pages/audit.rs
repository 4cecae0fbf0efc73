//! The audit trail of a license: who created, suspended, reinstated, retried or deleted it,
//! with which key, oldest first (`App::audit_trail`). A revoked license keeps its trail, so
//! the page answers for ids that no longer name a license; the home page finds it by id.

use actix_web::{HttpResponse, web};
use licenses_api_management::Scope;
use licenses_app::ports::AuditEntry;
use maud::{Markup, html};
use serde::Deserialize;

use super::Shared;
use super::licenses::license_id;
use crate::dates;
use crate::error::ConsoleError;
use crate::guard::Signed;
use crate::html::{self, page, path_segment};

pub(crate) fn routes(routes: licenses_http::Routes) -> licenses_http::Routes {
    routes
        .get("/audit", find)
        .get("/licenses/{license_id}/audit", trail)
}

/// The page of a license's audit trail.
pub(crate) fn audit_url(license: &str) -> String {
    format!("/console/licenses/{}/audit", path_segment(license))
}

/// The form that finds a license's trail by id (`GET /console/audit?license=…`).
pub fn find_license_form() -> Markup {
    html! {
        form method="get" action="/console/audit" id="find-audit-form" role="search" {
            p {
                label for="audit-license" { "License id (revoked ones too)" }
                input type="text" id="audit-license" name="license" required;
            }
            button type="submit" id="find-audit" { "Show the audit trail" }
        }
    }
}

#[derive(Debug, Deserialize)]
pub struct FindQuery {
    #[serde(default)]
    license: String,
}

/// `GET /console/audit?license=…`: to the trail's page.
pub async fn find(
    signed: Signed,
    query: web::Query<FindQuery>,
) -> Result<HttpResponse, ConsoleError> {
    signed.require(Scope::Read)?;
    let id = license_id(query.license.trim())?;
    Ok(html::see_other(&audit_url(id.as_str())))
}

/// `GET /console/licenses/{license_id}/audit`.
pub async fn trail(
    console: Shared,
    signed: Signed,
    path: web::Path<String>,
) -> Result<HttpResponse, ConsoleError> {
    signed.require(Scope::Read)?;
    let id = license_id(&path)?;
    let entries = console
        .app
        .audit_trail(&id)
        .await
        .map_err(ConsoleError::from_app)?;
    let body = html! {
        table id="audit" {
            caption { "Audit trail of license " code { (id) } ", oldest first" }
            thead {
                tr {
                    th scope="col" { "When (UTC)" }
                    th scope="col" { "Action" }
                    th scope="col" { "By" }
                    th scope="col" { "Other license" }
                }
            }
            tbody {
                @for entry in &entries {
                    (row(entry))
                }
            }
        }
    };
    Ok(html::ok(page("Audit trail", Some(&signed), None, body)))
}

fn row(entry: &AuditEntry) -> Markup {
    html! {
        tr data-testid="audit-row" data-action=(entry.action.as_str()) {
            td { (dates::show(entry.at)) }
            td { (entry.action.as_str()) }
            td { code { (entry.actor) } }
            td {
                @match &entry.related {
                    Some(other) => a href=(audit_url(other.as_str())) { code { (other) } },
                    None => "—",
                }
            }
        }
    }
}
