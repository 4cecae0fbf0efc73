//! The JSON:API media type, of every request and response document.

/// The JSON:API media type, of every request and response document.
pub const JSONAPI: &str = "application/vnd.api+json";
