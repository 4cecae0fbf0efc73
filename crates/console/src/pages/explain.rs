//! "Why can't this user watch?": the explain answer (`App::explain_access`, the rules of
//! `licenses_domain::explain`) for a channel and a service the agent chooses, with every
//! reason code, the licenses that decided it and, for a license waiting for its DRM
//! entitlement, the job's state, attempts and last error. Reading: the `read` scope.

use actix_web::{HttpResponse, web};
use licenses_api_management::Scope;
use licenses_app::Access;
use licenses_domain::{ChannelId, Reason, Service, UserId};
use maud::{Markup, html};
use serde::Deserialize;

use super::Shared;
use super::audit::audit_url;
use super::users::user_id;
use crate::dates;
use crate::error::ConsoleError;
use crate::guard::Signed;
use crate::html::{self, page, user_url};
use crate::session::Flash;

pub(crate) fn routes(routes: licenses_http::Routes) -> licenses_http::Routes {
    routes.get("/users/{user_id}/access", explain)
}

/// The question, as the form sends it.
#[derive(Debug, Default, Deserialize)]
pub struct Question {
    #[serde(default)]
    channel: String,
    #[serde(default)]
    service: String,
}

/// The explain form of a user's page, `question` filled in.
pub(crate) fn explain_form(user: &UserId, channel: &str, service: &str) -> Markup {
    html! {
        form method="get" action={ (user_url(user.as_str())) "/access" } id="explain-form" {
            p {
                label for="explain-channel" { "Channel" }
                input type="text" id="explain-channel" name="channel" value=(channel) required;
            }
            p {
                label for="explain-service" { "Service" }
                select id="explain-service" name="service" {
                    @for s in Service::ALL {
                        option value=(s) selected[s.to_string() == service] { (s) }
                    }
                }
            }
            button type="submit" id="explain" { "Explain" }
        }
    }
}

/// `GET /console/users/{user_id}/access?channel=C&service=S`.
pub async fn explain(
    console: Shared,
    signed: Signed,
    path: web::Path<String>,
    question: web::Query<Question>,
) -> Result<HttpResponse, ConsoleError> {
    signed.require(Scope::Read)?;
    let user = user_id(&path)?;
    let channel = ChannelId::parse(question.channel.trim());
    let service = Service::parse(question.service.trim());
    let title = format!("May user {user} watch?");
    let form = explain_form(&user, question.channel.trim(), question.service.trim());
    let (Ok(channel), Some(service)) = (channel, service) else {
        let flash = Flash {
            error: true,
            message: "Name a channel (its id) and one of the services.".into(),
        };
        return Ok(html::respond(
            actix_web::http::StatusCode::BAD_REQUEST,
            page(&title, Some(&signed), Some(&flash), form),
        ));
    };
    let access = console
        .app
        .explain_access(&user, &channel, service)
        .await
        .map_err(ConsoleError::from_app)?;
    let body = html! {
        p { a href=(user_url(user.as_str())) { "Back to user " (user) } }
        (form)
        (answer(&access, &channel, service, signed.can(Scope::Irdeto)))
    };
    Ok(html::ok(page(&title, Some(&signed), None, body)))
}

/// The answer; `can_retry`: the signed-in key may retry DRM jobs (the `irdeto` scope), so a
/// failed job links to the Irdeto page.
fn answer(access: &Access, channel: &ChannelId, service: Service, can_retry: bool) -> Markup {
    let e = &access.explanation;
    let product_title = |id: &licenses_domain::ProductId| {
        access
            .products
            .iter()
            .find(|p| p.id() == id)
            .map_or_else(|| id.to_string(), |p| format!("{} ({id})", p.title()))
    };
    html! {
        section aria-labelledby="answer-heading" data-testid="explanation" data-allowed=(e.allowed) {
            h2 id="answer-heading" {
                @if e.allowed {
                    "Yes: " (service) " on channel " (channel) " plays, "
                    (e.until.map_or_else(|| "without end".to_owned(), |t| format!("until {}", dates::show(t))))
                } @else {
                    "No: " (service) " on channel " (channel) " does not play"
                }
            }
            p { "As of " (dates::show(access.at)) "." }
            @if e.allowed {
                p { "Granted by: "
                    @for (i, id) in e.granted_by.iter().enumerate() {
                        @if i > 0 { ", " }
                        a href=(audit_url(id.as_str())) { code { (id) } }
                    }
                }
            } @else {
                table id="reasons" {
                    caption { "Why, license by license" }
                    thead {
                        tr {
                            th scope="col" { "Reason" }
                            th scope="col" { "License" }
                            th scope="col" { "Product" }
                            th scope="col" { "When" }
                            th scope="col" { "DRM job" }
                            th scope="col" { "Detail" }
                        }
                    }
                    tbody {
                        @for reason in &e.reasons {
                            (reason_row(reason, &product_title, can_retry))
                        }
                    }
                }
            }
        }
    }
}

fn reason_row(
    reason: &Reason,
    product_title: &dyn Fn(&licenses_domain::ProductId) -> String,
    can_retry: bool,
) -> Markup {
    html! {
        tr data-testid="reason" data-code=(reason.code.as_str()) {
            th scope="row" { code { (reason.code.as_str()) } }
            td {
                @match &reason.license {
                    Some(id) => a href=(audit_url(id.as_str())) { code { (id) } },
                    None => "—",
                }
            }
            td { (reason.product.as_ref().map_or_else(|| "—".to_owned(), product_title)) }
            td { (reason.at.map_or_else(|| "—".to_owned(), dates::show)) }
            td {
                @match &reason.drm {
                    Some(job) => {
                        (job.state) ", " (job.attempts) " attempt(s)"
                        @if let Some(error) = &job.last_error { ": " (error) }
                        @if job.state == licenses_domain::DrmJobState::Failed && can_retry {
                            " — " a href="/console/irdeto" { "retry it on the Irdeto page" }
                        }
                    },
                    None => "—",
                }
            }
            td { (reason.detail) }
        }
    }
}
