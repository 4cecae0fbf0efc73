//! The page shell every console page shares (title, navigation, the signed-in key, the flash
//! message), the error page, the style sheet, and small helpers.

use actix_web::http::StatusCode;
use actix_web::http::header;
use actix_web::{HttpResponse, Responder};
use maud::{DOCTYPE, Markup, html};

use crate::guard::Signed;
use crate::session::Flash;
use licenses_api_management::Scope;

/// The content type of every page.
pub const HTML: &str = "text/html; charset=utf-8";

/// The style sheet, in the binary.
const STYLE: &str = include_str!("../assets/console.css");

/// `GET /console/console.css`.
pub async fn style_sheet() -> impl Responder {
    HttpResponse::Ok()
        .content_type("text/css; charset=utf-8")
        .insert_header((header::CACHE_CONTROL, "public, max-age=3600"))
        .body(STYLE)
}

/// 303 See Other to `location` (after a form, and to the sign-in page).
pub fn see_other(location: &str) -> HttpResponse {
    HttpResponse::SeeOther()
        .insert_header((header::LOCATION, location))
        .finish()
}

/// A page, 200.
pub fn ok(markup: Markup) -> HttpResponse {
    respond(StatusCode::OK, markup)
}

pub fn respond(status: StatusCode, markup: Markup) -> HttpResponse {
    HttpResponse::build(status)
        .content_type(HTML)
        .body(markup.into_string())
}

/// The page shell: `title` is also the page's `<h1>`; `signed` adds the navigation and the
/// sign-out button; `flash` is shown above the content.
pub fn page(title: &str, signed: Option<&Signed>, flash: Option<&Flash>, body: Markup) -> Markup {
    html! {
        (DOCTYPE)
        html lang="en" {
            head {
                meta charset="utf-8";
                meta name="viewport" content="width=device-width, initial-scale=1";
                title { (title) " · Licenses support console" }
                link rel="stylesheet" href="/console/console.css";
            }
            body {
                a class="skip" href="#main" { "Skip to the content" }
                header {
                    p class="brand" { "Licenses support console" }
                    @if let Some(signed) = signed {
                        nav aria-label="Console" {
                            ul {
                                li { a href="/console/" data-testid="nav-home" { "Find a user" } }
                                li { a href="/console/products" data-testid="nav-products" { "Products" } }
                                @if signed.can(Scope::Irdeto) {
                                    li { a href="/console/irdeto" data-testid="nav-irdeto" { "Irdeto backlog" } }
                                }
                            }
                        }
                        form method="post" action="/console/sign-out" class="sign-out" id="sign-out-form" {
                            span data-testid="signed-in-as" {
                                "Signed in with key " strong { (signed.key_name) }
                                " (" (signed.scopes) ")"
                            }
                            (csrf_field(signed))
                            button type="submit" id="sign-out" { "Sign out" }
                        }
                    }
                }
                main id="main" {
                    h1 { (title) }
                    @if let Some(flash) = flash {
                        @if flash.error {
                            p class="flash error" role="alert" data-testid="flash" { (flash.message) }
                        } @else {
                            p class="flash" role="status" data-testid="flash" { (flash.message) }
                        }
                    }
                    (body)
                }
            }
        }
    }
}

/// The hidden CSRF field of every form that posts.
pub fn csrf_field(signed: &Signed) -> Markup {
    html! { input type="hidden" name="csrf" value=(signed.csrf); }
}

/// The page of an error: its status and a readable message.
pub fn error_page(status: StatusCode, message: &str) -> Markup {
    let title = status.canonical_reason().unwrap_or("Error");
    page(
        title,
        None,
        None,
        html! {
            p data-testid="error-message" { (message) }
            p { a href="/console/" { "Back to the console" } }
        },
    )
}

/// `segment` percent-encoded for a URL path: every byte but letters, digits and `-_~` (a dot
/// too, so that an id `..` stays a segment).
pub fn path_segment(segment: &str) -> String {
    let mut out = String::with_capacity(segment.len());
    for b in segment.bytes() {
        if b.is_ascii_alphanumeric() || matches!(b, b'-' | b'_' | b'~') {
            out.push(char::from(b));
        } else {
            out.push_str(&format!("%{b:02X}"));
        }
    }
    out
}

/// The page of a user.
pub fn user_url(user: &str) -> String {
    format!("/console/users/{}", path_segment(user))
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn path_segments_are_percent_encoded() {
        assert_eq!(path_segment("user-1_b~"), "user-1_b~");
        assert_eq!(path_segment(".."), "%2E%2E");
        assert_eq!(path_segment("a/b?c#d e%"), "a%2Fb%3Fc%23d%20e%25");
        assert_eq!(path_segment("é"), "%C3%A9");
        assert_eq!(user_url("../x"), "/console/users/%2E%2E%2Fx");
    }

    #[test]
    fn values_are_escaped() {
        let m = error_page(StatusCode::NOT_FOUND, "<script>alert(1)</script>").into_string();
        assert!(!m.contains("<script>"), "{m}");
        assert!(m.contains("&lt;script&gt;"), "{m}");
        assert!(m.contains("<h1>Not Found</h1>"), "{m}");
    }
}
