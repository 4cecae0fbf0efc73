//! Routing shared by both front-ends.

use actix_web::{HttpResponse, Resource, web};

use crate::error::ApiError;

/// A resource at `path` that answers 405 with `Allow: allow`, as a JSON:API error, to every
/// method it has no route for. `allow` lists the methods its routes answer.
pub fn resource(path: &str, allow: &'static str) -> Resource {
    web::resource(path).default_service(web::to(move || async move {
        Err::<HttpResponse, ApiError>(ApiError::method_not_allowed(allow))
    }))
}
