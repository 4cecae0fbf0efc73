//! A user's page: their licenses (status as read now, dates, product, DRM state) with their
//! audit trail and action links, what they may watch now as a channel × service grid, the
//! explain form ("why can't this user watch?", answered by [`super::explain`]) and the form
//! that grants a license.

use actix_web::{HttpResponse, web};
use licenses_api_management::Scope;
use licenses_app::UserLicenses;
use licenses_domain::{
    Entitlements, License, LicenseState, LicenseStatus, Product, Service, Timestamp, UserId,
};
use licenses_http::Routes;
use maud::{Markup, html};
use serde::Deserialize;

use super::Shared;
use super::audit::audit_url;
use super::explain::explain_form;
use super::home::find_user_form;
use crate::dates;
use crate::error::ConsoleError;
use crate::guard::Signed;
use crate::html::{self, page, path_segment, user_url};

pub(crate) fn routes(routes: Routes) -> Routes {
    routes
        .get("/users", find_user)
        .get("/users/{user_id}", user_page)
}

#[derive(Debug, Deserialize)]
pub struct FindUser {
    #[serde(default)]
    id: String,
}

/// `GET /console/users?id=…`: 303 to the user's page.
pub async fn find_user(
    signed: Signed,
    query: web::Query<FindUser>,
) -> Result<HttpResponse, ConsoleError> {
    signed.require(Scope::Read)?;
    let id = query.id.trim();
    match UserId::parse(id) {
        Ok(user) => Ok(html::see_other(&user_url(user.as_str()))),
        Err(why) => {
            let flash = crate::session::Flash {
                error: true,
                message: format!("A user id {why}."),
            };
            Ok(html::respond(
                actix_web::http::StatusCode::BAD_REQUEST,
                page(
                    "Find a user",
                    Some(&signed),
                    Some(&flash),
                    find_user_form(id),
                ),
            ))
        }
    }
}

/// A user id from the path; one that cannot be an id names no user.
pub(crate) fn user_id(raw: &str) -> Result<UserId, ConsoleError> {
    UserId::parse(raw).map_err(|_| ConsoleError::NotFound("this is not a user id".into()))
}

/// `GET /console/users/{user_id}`.
pub async fn user_page(
    console: Shared,
    signed: Signed,
    path: web::Path<String>,
) -> Result<HttpResponse, ConsoleError> {
    signed.require(Scope::Read)?;
    let user = user_id(&path)?;
    let app = &console.app;
    let licenses = app
        .user_licenses(&user, Vec::new())
        .await
        .map_err(ConsoleError::from_app)?;
    let (entitlements, now) = app
        .entitlements(&user)
        .await
        .map_err(ConsoleError::from_app)?;
    let products = if signed.can(Scope::Write) {
        app.list_products().await.map_err(ConsoleError::from_app)?
    } else {
        Vec::new()
    };
    let flash = signed.take_flash(&console);
    let body = html! {
        p { a href="/console/" { "Find another user" } }
        (licenses_section(&signed, &user, &licenses))
        (grid_section(&entitlements, now))
        section aria-labelledby="explain-heading" {
            h2 id="explain-heading" { "Why can't they watch?" }
            (explain_form(&user, "", "live"))
        }
        @if signed.can(Scope::Write) {
            (grant_section(&user, &products))
        }
    };
    Ok(html::ok(page(
        &format!("User {user}"),
        Some(&signed),
        flash.as_ref(),
        body,
    )))
}

/// What a license's DRM (Irdeto) entitlement is at: only PROCESSING, ORDER_ERROR and
/// CHECK_INVALID licenses have something to say.
pub(crate) fn drm_state(license: &License) -> String {
    match license.state() {
        LicenseState::Processing { .. } => "waiting for the DRM entitlement".into(),
        LicenseState::OrderError { reason } => format!("refused by the DRM: {reason}"),
        LicenseState::CheckInvalid { reason } => format!("check failed: {reason}"),
        _ => "—".into(),
    }
}

/// `title (id)` of a license's product, or its id alone when the catalogue lacks it.
fn product_title(licenses: &UserLicenses, license: &License) -> String {
    licenses
        .catalogue
        .as_ref()
        .and_then(|c| c.get(license.product()))
        .map_or_else(
            || license.product().to_string(),
            |p| format!("{} ({})", p.title(), p.id()),
        )
}

fn licenses_section(signed: &Signed, user: &UserId, licenses: &UserLicenses) -> Markup {
    let now = licenses.now;
    html! {
        section aria-labelledby="licenses-heading" {
            h2 id="licenses-heading" { "Licenses" }
            @if licenses.licenses.is_empty() {
                p data-testid="no-licenses" { "User " (user) " has no license." }
            } @else {
                table id="licenses" {
                    caption { "Licenses of user " (user) ", status as of " (dates::show(now)) }
                    thead {
                        tr {
                            th scope="col" { "License" }
                            th scope="col" { "Product" }
                            th scope="col" { "Status" }
                            th scope="col" { "Start" }
                            th scope="col" { "Stop" }
                            th scope="col" { "DRM" }
                            th scope="col" { "History" }
                            @if signed.can(Scope::Write) {
                                th scope="col" { "Actions" }
                            }
                        }
                    }
                    tbody {
                        @for license in &licenses.licenses {
                            tr data-testid="license-row" data-license=(license.id()) {
                                th scope="row" { code { (license.id()) } }
                                td { (product_title(licenses, license)) }
                                td data-testid="license-status" { (license.status_at(now)) }
                                td { (dates::show(license.start_date())) }
                                td { (license.stop_date().map_or_else(|| "no end".to_owned(), dates::show)) }
                                td { (drm_state(license)) }
                                td {
                                    a href=(audit_url(license.id().as_str())) data-testid="audit-link" {
                                        "Audit trail" span class="visually-hidden" { " of license " (license.id()) }
                                    }
                                }
                                @if signed.can(Scope::Write) {
                                    td {
                                        @match license.status_at(now) {
                                            LicenseStatus::SuspendedAdmin => a class="button"
                                                href={ "/console/licenses/" (path_segment(license.id().as_str())) "/reinstate" }
                                                data-testid="reinstate-link" {
                                                "Reinstate…" span class="visually-hidden" { " license " (license.id()) }
                                            },
                                            LicenseStatus::Active => a class="button"
                                                href={ "/console/licenses/" (path_segment(license.id().as_str())) "/suspend" }
                                                data-testid="suspend-link" {
                                                "Suspend…" span class="visually-hidden" { " license " (license.id()) }
                                            },
                                            _ => {},
                                        }
                                        " "
                                        a class="button danger"
                                            href={ "/console/licenses/" (path_segment(license.id().as_str())) "/revoke" }
                                            data-testid="revoke-link" {
                                            "Revoke…" span class="visually-hidden" { " license " (license.id()) }
                                        }
                                    }
                                }
                            }
                        }
                    }
                }
            }
        }
    }
}

fn grid_section(entitlements: &Entitlements, now: Timestamp) -> Markup {
    html! {
        section aria-labelledby="entitlements-heading" {
            h2 id="entitlements-heading" { "What the user may watch now" }
            @if entitlements.is_empty() {
                p data-testid="no-entitlements" { "Nothing: no license grants a service now." }
            } @else {
                table id="entitlements" {
                    caption { "Services by channel, as of " (dates::show(now)) }
                    thead {
                        tr {
                            th scope="col" { "Channel" }
                            @for service in Service::ALL {
                                th scope="col" { (service) }
                            }
                        }
                    }
                    tbody {
                        @for (channel, grants) in entitlements.channels() {
                            tr data-channel=(channel) {
                                th scope="row" { (channel) }
                                @for service in Service::ALL {
                                    @match grants.get(service) {
                                        Some(grant) => td class="yes" data-service=(service) {
                                            "yes" br;
                                            small { (grant.until.map_or_else(|| "no end".to_owned(), |t| format!("until {}", dates::show(t)))) }
                                        },
                                        None => td class="no" data-service=(service) { "no" },
                                    }
                                }
                            }
                        }
                    }
                }
            }
        }
    }
}

fn grant_section(user: &UserId, products: &[Product]) -> Markup {
    html! {
        section aria-labelledby="grant-heading" {
            h2 id="grant-heading" { "Grant a license" }
            @if products.is_empty() {
                p { "The catalogue has no product." }
            } @else {
                form method="get" action={ (user_url(user.as_str())) "/grant" } id="grant-form" {
                    p {
                        label for="grant-product" { "Product" }
                        select id="grant-product" name="product" required {
                            @for product in products {
                                option value=(product.id()) { (product.title()) " (" (product.id()) ")" }
                            }
                        }
                    }
                    p {
                        label for="grant-stop-date" { "Stop date (optional, UTC, included)" }
                        input type="date" id="grant-stop-date" name="stop_date";
                    }
                    button type="submit" id="grant" { "Grant…" }
                }
            }
        }
    }
}
