//! Suspending a license and lifting the suspension. Licenses never change: a suspension
//! replaces the license by a SUSPENDEDADMIN copy under a new id, and reinstating replaces that
//! copy by an ACTIVE one (PROCESSING until Irdeto confirms, where Irdeto is on), each in one
//! transaction (`App::suspend_license`, `App::reinstate_license`). Built like the actions of
//! [`super::licenses`]: a confirmation page, then a POST with the CSRF token, as the signed-in
//! key; both need the `write` scope.

use actix_web::{HttpResponse, web};
use licenses_api_management::Scope;
use maud::html;

use super::Shared;
use super::licenses::{license_id, license_summary};
use crate::error::ConsoleError;
use crate::guard::{CsrfOnly, Posted, Signed, after_action};
use crate::html::{self, csrf_field, page, path_segment, user_url};

pub(crate) fn routes(routes: licenses_http::Routes) -> licenses_http::Routes {
    routes
        .get("/licenses/{license_id}/suspend", confirm_suspend)
        .post("/licenses/{license_id}/suspend", suspend)
        .get("/licenses/{license_id}/reinstate", confirm_reinstate)
        .post("/licenses/{license_id}/reinstate", reinstate)
}

/// The two replacements, told apart only by their words and their use case.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
enum Replacement {
    Suspend,
    Reinstate,
}

impl Replacement {
    /// The last segment of its path, and the id of its confirm button (`confirm-…`).
    fn verb(self) -> &'static str {
        match self {
            Self::Suspend => "suspend",
            Self::Reinstate => "reinstate",
        }
    }

    fn title(self) -> &'static str {
        match self {
            Self::Suspend => "Suspend a license?",
            Self::Reinstate => "Lift a suspension?",
        }
    }

    fn button(self) -> &'static str {
        match self {
            Self::Suspend => "Suspend license",
            Self::Reinstate => "Reinstate license",
        }
    }

    fn explanation(self) -> &'static str {
        match self {
            Self::Suspend => {
                "Suspending replaces the license by a SUSPENDEDADMIN copy under a new id: the \
                 user loses what it grants at once (its DRM entitlement is revoked), and keeps \
                 its dates and order. Reinstate the copy to give it back."
            }
            Self::Reinstate => {
                "Reinstating replaces the SUSPENDEDADMIN license by an ACTIVE copy under a new \
                 id (PROCESSING until the DRM entitlement is granted again)."
            }
        }
    }

    fn done(self) -> &'static str {
        match self {
            Self::Suspend => "suspended",
            Self::Reinstate => "reinstated",
        }
    }
}

async fn confirm(
    console: Shared,
    signed: Signed,
    path: web::Path<String>,
    what: Replacement,
) -> Result<HttpResponse, ConsoleError> {
    signed.require(Scope::Write)?;
    let id = license_id(&path)?;
    let (license, now) = console
        .app
        .get_license(&id)
        .await
        .map_err(ConsoleError::from_app)?;
    let user = license.user().as_str();
    let action = format!(
        "/console/licenses/{}/{}",
        path_segment(id.as_str()),
        what.verb()
    );
    let body = html! {
        (license_summary(&license, now))
        p { (what.explanation()) " The audit trail records that key " strong { (signed.key_name) } " did it." }
        form method="post" action=(action) id={ (what.verb()) "-form" } {
            (csrf_field(&signed))
            button type="submit" id={ "confirm-" (what.verb()) } { (what.button()) " " (id) }
            " "
            a href=(user_url(user)) id="cancel" { "Cancel" }
        }
    };
    Ok(html::ok(page(what.title(), Some(&signed), None, body)))
}

async fn replace(
    console: Shared,
    path: web::Path<String>,
    posted: Posted<CsrfOnly>,
    what: Replacement,
) -> Result<HttpResponse, ConsoleError> {
    let Posted(signed, _) = posted;
    signed.require(Scope::Write)?;
    let id = license_id(&path)?;
    let (license, _) = console
        .app
        .get_license(&id)
        .await
        .map_err(ConsoleError::from_app)?;
    let back = user_url(license.user().as_str());
    let done = match what {
        Replacement::Suspend => console.app.suspend_license(signed.actor(), &id).await,
        Replacement::Reinstate => console.app.reinstate_license(signed.actor(), &id).await,
    };
    after_action(
        &console,
        &signed,
        &back,
        done,
        |copy| {
            tracing::info!(key = %signed.key_name, license = %id, replacement = %copy.id(),
                "console: license {}", what.done());
            format!(
                "License {id} {}: it is now {} ({}).",
                what.done(),
                copy.id(),
                copy.state().status()
            )
        },
        |why| format!("License {id} was not {}: {why}", what.done()),
    )
}

/// `GET /console/licenses/{license_id}/suspend`.
pub async fn confirm_suspend(
    console: Shared,
    signed: Signed,
    path: web::Path<String>,
) -> Result<HttpResponse, ConsoleError> {
    confirm(console, signed, path, Replacement::Suspend).await
}

/// `POST /console/licenses/{license_id}/suspend`.
pub async fn suspend(
    console: Shared,
    path: web::Path<String>,
    posted: Posted<CsrfOnly>,
) -> Result<HttpResponse, ConsoleError> {
    replace(console, path, posted, Replacement::Suspend).await
}

/// `GET /console/licenses/{license_id}/reinstate`.
pub async fn confirm_reinstate(
    console: Shared,
    signed: Signed,
    path: web::Path<String>,
) -> Result<HttpResponse, ConsoleError> {
    confirm(console, signed, path, Replacement::Reinstate).await
}

/// `POST /console/licenses/{license_id}/reinstate`.
pub async fn reinstate(
    console: Shared,
    path: web::Path<String>,
    posted: Posted<CsrfOnly>,
) -> Result<HttpResponse, ConsoleError> {
    replace(console, path, posted, Replacement::Reinstate).await
}
