//! Routing shared by both front-ends: each API declares its routes once, as a [`Routes`]
//! table, which both mounts them and lists them. The list is what the OpenAPI coverage test
//! and the authorization matrix test walk, so neither can miss a route the service answers.

use actix_web::http::Method;
use actix_web::{FromRequest, Handler, HttpResponse, Resource, Responder, Route, web};

use crate::jsonapi::ApiError;

/// One route of an API: a method on a path template, as mounted (`{name}` marks a segment).
#[derive(Debug, Clone, PartialEq, Eq, Hash)]
pub struct Endpoint {
    pub method: Method,
    pub path: String,
}

impl std::fmt::Display for Endpoint {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        write!(f, "{} {}", self.method, self.path)
    }
}

/// The routes of one scope, in the order they were declared.
#[derive(Default)]
pub struct Routes {
    entries: Vec<(&'static str, Method, Route)>,
}

impl std::fmt::Debug for Routes {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_list()
            .entries(self.entries.iter().map(|(path, method, _)| (method, path)))
            .finish()
    }
}

impl Routes {
    pub fn new() -> Self {
        Self::default()
    }

    pub fn get<F, Args>(self, path: &'static str, handler: F) -> Self
    where
        F: Handler<Args>,
        Args: FromRequest + 'static,
        F::Output: Responder + 'static,
    {
        self.route(path, Method::GET, handler)
    }

    pub fn post<F, Args>(self, path: &'static str, handler: F) -> Self
    where
        F: Handler<Args>,
        Args: FromRequest + 'static,
        F::Output: Responder + 'static,
    {
        self.route(path, Method::POST, handler)
    }

    pub fn patch<F, Args>(self, path: &'static str, handler: F) -> Self
    where
        F: Handler<Args>,
        Args: FromRequest + 'static,
        F::Output: Responder + 'static,
    {
        self.route(path, Method::PATCH, handler)
    }

    pub fn delete<F, Args>(self, path: &'static str, handler: F) -> Self
    where
        F: Handler<Args>,
        Args: FromRequest + 'static,
        F::Output: Responder + 'static,
    {
        self.route(path, Method::DELETE, handler)
    }

    fn route<F, Args>(mut self, path: &'static str, method: Method, handler: F) -> Self
    where
        F: Handler<Args>,
        Args: FromRequest + 'static,
        F::Output: Responder + 'static,
    {
        let route = web::method(method.clone()).to(handler);
        self.entries.push((path, method, route));
        self
    }

    /// Every route, its path under `prefix` (the scope it is mounted in).
    pub fn endpoints(&self, prefix: &str) -> Vec<Endpoint> {
        self.entries
            .iter()
            .map(|(path, method, _)| Endpoint {
                method: method.clone(),
                path: format!("{prefix}{path}"),
            })
            .collect()
    }

    /// One resource per path, in the order of declaration, answering its methods, and any
    /// other method with 405 and an `Allow` header that lists them.
    pub fn into_resources(self) -> Vec<Resource> {
        let mut paths: Vec<&'static str> = Vec::new();
        for (path, _, _) in &self.entries {
            if !paths.contains(path) {
                paths.push(path);
            }
        }
        let mut entries = self.entries;
        paths
            .into_iter()
            .map(|path| {
                let (here, rest): (Vec<_>, Vec<_>) =
                    entries.drain(..).partition(|(p, _, _)| *p == path);
                entries = rest;
                let allow = here
                    .iter()
                    .map(|(_, method, _)| method.as_str())
                    .collect::<Vec<_>>()
                    .join(", ");
                here.into_iter()
                    .fold(refusing_others(path, allow), |resource, (_, _, route)| {
                        resource.route(route)
                    })
            })
            .collect()
    }
}

/// A resource at `path` whose default answer is 405 with `Allow: allow`, as a JSON:API error.
fn refusing_others(path: &str, allow: String) -> Resource {
    web::resource(path).default_service(web::to(move || {
        let allow = allow.clone();
        async move { Err::<HttpResponse, ApiError>(ApiError::method_not_allowed(&allow)) }
    }))
}
