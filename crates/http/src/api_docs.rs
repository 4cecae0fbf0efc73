//! The public documentation of an API, served on its own listener without credentials: its
//! OpenAPI document at `PREFIX/openapi.json`, and Swagger UI (its assets compiled into the
//! binary) at `PREFIX/docs/`, loading that document.

use actix_web::http::header;
use actix_web::{HttpResponse, web};
use utoipa_swagger_ui::SwaggerUi;

/// Where an API's OpenAPI document is served.
pub fn openapi_path(prefix: &str) -> String {
    format!("{prefix}/openapi.json")
}

/// Where an API's Swagger UI is served.
pub fn docs_path(prefix: &str) -> String {
    format!("{prefix}/docs/")
}

/// Mounts the document and Swagger UI of the API under `prefix`. Register this before the
/// API's scope: the scope's middleware asks for credentials, and these answer without.
pub fn configure(cfg: &mut web::ServiceConfig, prefix: &str, openapi: utoipa::openapi::OpenApi) {
    cfg.service(
        SwaggerUi::new(format!("{prefix}/docs/{{_:.*}}")).url(openapi_path(prefix), openapi),
    );
    // Without its trailing slash, the page's relative asset URLs would miss.
    let to = docs_path(prefix);
    cfg.service(
        web::resource(format!("{prefix}/docs")).route(web::get().to(move || {
            let to = to.clone();
            async move {
                HttpResponse::Found()
                    .insert_header((header::LOCATION, to))
                    .finish()
            }
        })),
    );
}
