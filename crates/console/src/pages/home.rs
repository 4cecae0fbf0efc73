//! The console's home: find a user by id.

use actix_web::HttpResponse;
use maud::html;

use super::Shared;
use crate::guard::Signed;
use crate::html::{self, page};

/// The form that finds a user (`GET /console/users?id=…`).
pub fn find_user_form(value: &str) -> maud::Markup {
    html! {
        form method="get" action="/console/users" id="find-user-form" role="search" {
            p {
                label for="user-id" { "User id" }
                input type="text" id="user-id" name="id" value=(value) required;
            }
            button type="submit" id="find-user" { "Find" }
        }
    }
}

/// `GET /console/`.
pub async fn home(console: Shared, signed: Signed) -> HttpResponse {
    let flash = signed.take_flash(&console);
    html::ok(page(
        "Find a user",
        Some(&signed),
        flash.as_ref(),
        html! {
            (find_user_form(""))
            (super::audit::find_license_form())
        },
    ))
}
