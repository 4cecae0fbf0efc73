//! The actions on licenses: revoke and grant. Each has a confirmation page (GET: it changes
//! nothing, and works without JavaScript) whose form posts the action with the session's CSRF
//! token; the action is performed as the signed-in key (`Actor::ManagementKey`), then the
//! agent is sent back to the user's page with a message. Both need the `write` scope.
//! Suspend and reinstate, built the same way, are in [`super::suspension`].

use actix_web::{HttpResponse, web};
use licenses_api_management::Scope;
use licenses_app::ports::StoredResponse;
use licenses_app::{AppError, IdempotencyKey};
use licenses_domain::{License, LicenseDraft, LicenseId, ProductId, Timestamp};
use licenses_http::Routes;
use maud::{Markup, html};
use serde::Deserialize;

use super::Shared;
use super::users::{drm_state, user_id};
use crate::dates;
use crate::error::ConsoleError;
use crate::guard::{CsrfForm, CsrfOnly, Posted, Signed, after_action, back_with};
use crate::html::{self, csrf_field, page, path_segment, user_url};

pub(crate) fn routes(routes: Routes) -> Routes {
    routes
        .get("/licenses/{license_id}/revoke", confirm_revoke)
        .post("/licenses/{license_id}/revoke", revoke)
        .get("/users/{user_id}/grant", confirm_grant)
        .post("/users/{user_id}/grant", grant)
}

pub(crate) fn license_id(raw: &str) -> Result<LicenseId, ConsoleError> {
    LicenseId::parse(raw).map_err(|_| ConsoleError::NotFound("no license has this id".into()))
}

/// What a confirmation page shows of the license an action is about.
pub(crate) fn license_summary(license: &License, now: Timestamp) -> Markup {
    let user = license.user().as_str();
    html! {
        dl {
            dt { "License" } dd { code { (license.id()) } }
            dt { "User" } dd { a href=(user_url(user)) { (user) } }
            dt { "Product" } dd { (license.product()) }
            dt { "Status" } dd { (license.status_at(now)) }
            dt { "Stop" } dd { (license.stop_date().map_or_else(|| "no end".to_owned(), dates::show)) }
            dt { "DRM" } dd { (drm_state(license)) }
        }
    }
}

/// `GET /console/licenses/{license_id}/revoke`: what would be revoked, and the button.
pub async fn confirm_revoke(
    console: Shared,
    signed: Signed,
    path: web::Path<String>,
) -> Result<HttpResponse, ConsoleError> {
    signed.require(Scope::Write)?;
    let id = license_id(&path)?;
    let (license, now) = console
        .app
        .get_license(&id)
        .await
        .map_err(ConsoleError::from_app)?;
    let user = license.user().as_str();
    let body = html! {
        (license_summary(&license, now))
        p { "Revoking deletes the license: the user loses what it grants at once. The audit \
             trail records that key " strong { (signed.key_name) } " did it." }
        form method="post" action={ "/console/licenses/" (path_segment(id.as_str())) "/revoke" } id="revoke-form" {
            (csrf_field(&signed))
            button type="submit" class="danger" id="confirm-revoke" { "Revoke license " (id) }
            " "
            a href=(user_url(user)) id="cancel" { "Cancel" }
        }
    };
    Ok(html::ok(page(
        "Revoke a license?",
        Some(&signed),
        None,
        body,
    )))
}

/// `POST /console/licenses/{license_id}/revoke`.
pub async fn revoke(
    console: Shared,
    path: web::Path<String>,
    posted: Posted<CsrfOnly>,
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
    let done = console
        .app
        .delete_licenses(signed.actor(), vec![id.clone()], false, None, |_| {
            StoredResponse {
                status: 204,
                body: Vec::new(),
            }
        })
        .await;
    after_action(
        &console,
        &signed,
        &back,
        done,
        |_| {
            tracing::info!(key = %signed.key_name, license = %id, "console: license revoked");
            format!("License {id} revoked.")
        },
        |why| format!("License {id} was not revoked: {why}"),
    )
}

/// The grant form: a product and an optional stop date (`YYYY-MM-DD`, included).
#[derive(Debug, Deserialize)]
pub struct GrantForm {
    #[serde(default)]
    csrf: String,
    #[serde(default)]
    product: String,
    #[serde(default)]
    stop_date: String,
    /// The confirmation page's random token: a form sent twice (a double click, a reload)
    /// grants once — it is the grant's idempotency key.
    #[serde(default)]
    attempt: String,
}

impl CsrfForm for GrantForm {
    fn csrf(&self) -> &str {
        &self.csrf
    }
}

/// A checked grant: the product and the stop date (none: the product's default duration).
struct Grant {
    product: ProductId,
    stop: Option<licenses_domain::Timestamp>,
}

fn read_grant(form: &GrantForm) -> Result<Grant, String> {
    let product =
        ProductId::parse(form.product.trim()).map_err(|_| "choose a product".to_owned())?;
    let stop = match form.stop_date.trim() {
        "" => None,
        date => Some(
            dates::end_of_day(date)
                .ok_or_else(|| format!("{date:?} is not a date (YYYY-MM-DD)"))?,
        ),
    };
    Ok(Grant { product, stop })
}

/// `GET /console/users/{user_id}/grant?product=…&stop_date=…`: what would be granted, and
/// the button.
pub async fn confirm_grant(
    console: Shared,
    signed: Signed,
    path: web::Path<String>,
    query: web::Query<GrantForm>,
) -> Result<HttpResponse, ConsoleError> {
    signed.require(Scope::Write)?;
    let user = user_id(&path)?;
    let back = user_url(user.as_str());
    let grant = match read_grant(&query) {
        Ok(grant) => grant,
        Err(why) => {
            return Ok(back_with(
                &console,
                &signed,
                &back,
                true,
                format!("Nothing granted: {why}."),
            ));
        }
    };
    let product = match console.app.get_product(&grant.product).await {
        Ok(product) => product,
        Err(AppError::NotFound(_)) => {
            return Ok(back_with(
                &console,
                &signed,
                &back,
                true,
                "Nothing granted: no product has this id.",
            ));
        }
        Err(e) => return Err(ConsoleError::from_app(e)),
    };
    let stop = match (grant.stop, product.license_defaults().duration()) {
        (Some(stop), _) => dates::show(stop),
        (None, Some(seconds)) => {
            format!("the product's default: {} days from now", seconds / 86_400)
        }
        (None, None) => "no end".to_owned(),
    };
    let body = html! {
        dl {
            dt { "User" } dd { a href=(back) { (user) } }
            dt { "Product" } dd { (product.title()) " (" (product.id()) ")" }
            dt { "Starts" } dd { "now" }
            dt { "Stops" } dd { (stop) }
        }
        p { "The audit trail records that key " strong { (signed.key_name) } " granted it." }
        form method="post" action={ (back) "/grant" } id="grant-confirm-form" {
            (csrf_field(&signed))
            input type="hidden" name="product" value=(product.id());
            input type="hidden" name="stop_date" value=(query.stop_date.trim());
            input type="hidden" name="attempt" value=(hex::encode(rand::random::<[u8; 16]>()));
            button type="submit" id="confirm-grant" { "Grant " (product.title()) " to " (user) }
            " "
            a href=(back) id="cancel" { "Cancel" }
        }
    };
    Ok(html::ok(page(
        "Grant a license?",
        Some(&signed),
        None,
        body,
    )))
}

/// `POST /console/users/{user_id}/grant`.
pub async fn grant(
    console: Shared,
    path: web::Path<String>,
    posted: Posted<GrantForm>,
) -> Result<HttpResponse, ConsoleError> {
    let Posted(signed, form) = posted;
    signed.require(Scope::Write)?;
    let user = user_id(&path)?;
    let back = user_url(user.as_str());
    let grant = match read_grant(&form) {
        Ok(grant) => grant,
        Err(why) => {
            return Ok(back_with(
                &console,
                &signed,
                &back,
                true,
                format!("Nothing granted: {why}."),
            ));
        }
    };
    let draft = LicenseDraft {
        user: Some(user.to_string()),
        product: Some(grant.product.to_string()),
        stop_date: grant.stop.map(|t| t.unix()),
        ..LicenseDraft::default()
    };
    // The same confirmation posted again is answered as the first time, never granted twice.
    let key = (!form.attempt.is_empty()).then(|| IdempotencyKey {
        scope: signed.actor().to_string(),
        key: format!("console-grant-{}", form.attempt.trim()),
        fingerprint: format!(
            "console grant {user} {} {}",
            grant.product,
            grant.stop.map_or(0, Timestamp::unix)
        ),
    });
    let done = console
        .app
        .create_licenses(signed.actor(), vec![draft], false, key, |licenses, _| {
            StoredResponse {
                status: 201,
                body: licenses
                    .first()
                    .map(|l| l.id().as_str().as_bytes().to_vec())
                    .unwrap_or_default(),
            }
        })
        .await;
    after_action(
        &console,
        &signed,
        &back,
        done,
        |created| {
            let id = String::from_utf8_lossy(&created.body).into_owned();
            tracing::info!(key = %signed.key_name, license = %id, "console: license granted");
            format!("License {id} granted.")
        },
        |why| format!("Nothing granted: {why}"),
    )
}
