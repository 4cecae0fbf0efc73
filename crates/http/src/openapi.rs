//! What the OpenAPI documents say beside the schemas of the documents (which the types of
//! [`crate::jsonapi`] derive) and of the query parameters (the types of [`crate::query`]):
//! the security schemes, the error responses, the headers, and the answers of the layers in
//! front of the handlers. Each API crate puts these together with the `#[utoipa::path]` of
//! its handlers.

use utoipa::openapi::path::Operation;
use utoipa::openapi::security::{ApiKey, ApiKeyValue, HttpAuthScheme, HttpBuilder, SecurityScheme};
use utoipa::openapi::{Content, OpenApi, RefOr, Response, ResponseBuilder};
use utoipa::{IntoParams, ToResponse};

use crate::jsonapi::JSONAPI;

/// The name of the management API's security scheme: `Authorization: Apikey KEY`.
pub const APIKEY_SCHEME: &str = "Apikey";
/// The name of the user API's security scheme: `Authorization: Bearer JWT`.
pub const BEARER_SCHEME: &str = "Bearer";

/// Adds the `Apikey` security scheme (the management API's).
pub fn add_apikey_scheme(openapi: &mut OpenApi) {
    let components = openapi.components.get_or_insert_with(Default::default);
    components.add_security_scheme(
        APIKEY_SCHEME,
        SecurityScheme::ApiKey(ApiKey::Header(ApiKeyValue::with_description(
            "Authorization",
            "The header `Authorization: Apikey KEY`, with a key configured in \
             `auth.management_keys` (`licenses apikey new` makes one). A key has scopes: \
             `read` (GET outside `/irdeto/`), `write` (every method outside `/irdeto/`), \
             `irdeto` (the `/irdeto/` routes); a key without the scope a request needs gets \
             403 `insufficient_scope`.",
        ))),
    );
}

/// Adds the `Bearer` security scheme (the user API's): a JWT whose `sub` is the user.
pub fn add_bearer_scheme(openapi: &mut OpenApi) {
    let components = openapi.components.get_or_insert_with(Default::default);
    components.add_security_scheme(
        BEARER_SCHEME,
        SecurityScheme::Http(
            HttpBuilder::new()
                .scheme(HttpAuthScheme::Bearer)
                .bearer_format("JWT")
                .description(Some(
                    "The header `Authorization: Bearer TOKEN`: a JWT signed by the platform's \
                     identity service, whose `sub` is the user (`licenses token --user ID` \
                     mints one for development).",
                ))
                .build(),
        ),
    );
}

/// What every operation may answer, wherever its handler is: the answers of the layers in
/// front of the handlers (the rate limits of `limits.*`, the 406 of an `Accept` the API
/// cannot answer; for a request with a body, its size
/// limit and the slow-body timeout and deadline), and the `Location` of every 201. Also names
/// the server: the service's own address, as the paths are absolute.
pub fn add_limit_responses(openapi: &mut OpenApi) {
    use utoipa::openapi::path::Operation;
    use utoipa::openapi::server::Server;

    fn add(operation: &mut Operation, status: &str, name: &str) {
        operation
            .responses
            .responses
            .entry(status.to_owned())
            .or_insert_with(|| RefOr::Ref(utoipa::openapi::Ref::from_response_name(name)));
    }

    openapi.servers = Some(vec![Server::new("/")]);
    let components = openapi.components.get_or_insert_with(Default::default);
    for (name, response) in [
        <TooManyRequests as ToResponse>::response(),
        <NotAcceptable as ToResponse>::response(),
        <RequestTimeout as ToResponse>::response(),
        <PayloadTooLarge as ToResponse>::response(),
    ] {
        components.responses.insert(name.to_owned(), response);
    }
    for operation in operations_mut(openapi) {
        if let Some(RefOr::T(created)) = operation.responses.responses.get_mut("201") {
            created.headers.insert(
                "Location".to_owned(),
                utoipa::openapi::HeaderBuilder::new()
                    .schema(utoipa::openapi::schema::Object::with_type(
                        utoipa::openapi::schema::Type::String,
                    ))
                    .description(Some(
                        "The URL of the new resource (of the first one, for a batch): its \
                         `links.self`, under the API's public base URL.",
                    ))
                    .build(),
            );
        }
        add(operation, "406", "NotAcceptable");
        add(operation, "429", "TooManyRequests");
        if operation.request_body.is_some() {
            add(operation, "408", "RequestTimeout");
            add(operation, "413", "PayloadTooLarge");
        }
    }
}

/// The header of read-your-writes over read replicas: every write's answer carries its commit
/// position there when the service reads from replicas, and a read that sends it back sees
/// that write (docs/operations.md, "Scaling out"). Adds it to every GET as an optional request
/// header (with its 400) and to the successful answers of every other operation.
pub fn add_consistency_header(openapi: &mut OpenApi) {
    use utoipa::openapi::path::{ParameterBuilder, ParameterIn};
    use utoipa::openapi::schema::{ObjectBuilder, Type};

    const NAME: &str = "Licenses-Consistency";
    const PATTERN: &str = "^[0-9A-Fa-f]{1,8}/[0-9A-Fa-f]{1,8}$";
    let components = openapi.components.get_or_insert_with(Default::default);
    let (bad_request, response) = <BadRequest as ToResponse>::response();
    components
        .responses
        .insert(bad_request.to_owned(), response);
    let token = || {
        ObjectBuilder::new()
            .schema_type(Type::String)
            .pattern(Some(PATTERN))
    };
    for item in openapi.paths.paths.values_mut() {
        if let Some(get) = &mut item.get {
            get.parameters.get_or_insert_with(Vec::new).push(
                ParameterBuilder::new()
                    .name(NAME)
                    .parameter_in(ParameterIn::Header)
                    .required(utoipa::openapi::Required::False)
                    .description(Some(
                        "The `Licenses-Consistency` of a write's answer, as it came: the read \
                         sees that write, whichever replica or instance serves it.",
                    ))
                    .schema(Some(token()))
                    .build(),
            );
            get.responses
                .responses
                .entry("400".to_owned())
                .or_insert_with(|| {
                    RefOr::Ref(utoipa::openapi::Ref::from_response_name(bad_request))
                });
        }
        for write in [
            &mut item.post,
            &mut item.put,
            &mut item.patch,
            &mut item.delete,
        ]
        .into_iter()
        .flatten()
        {
            for (status, response) in &mut write.responses.responses {
                if let (true, RefOr::T(response)) = (status.starts_with('2'), response) {
                    response.headers.insert(
                        NAME.to_owned(),
                        utoipa::openapi::HeaderBuilder::new()
                            .schema(token())
                            .description(Some(
                                "The write's commit position, opaque to clients, when the \
                                 service reads from replicas (`database.replicas`): send it \
                                 back on a read to see this write.",
                            ))
                            .build(),
                    );
                }
            }
        }
    }
}

/// Adds the 403 of a management key without the scope a route needs (`insufficient_scope`)
/// to every operation: [`ForbiddenScope`], or [`ForbiddenClientId`] where the route has it
/// already (its description tells both).
pub fn add_scope_responses(openapi: &mut OpenApi) {
    let components = openapi.components.get_or_insert_with(Default::default);
    let (name, response) = <ForbiddenScope as ToResponse>::response();
    components.responses.insert(name.to_owned(), response);
    for operation in operations_mut(openapi) {
        operation
            .responses
            .responses
            .entry("403".to_owned())
            .or_insert_with(|| RefOr::Ref(utoipa::openapi::Ref::from_response_name(name)));
    }
}

// ---------------------------------------------------------------------------------------
// Error responses

/// An error response: a JSON:API error document.
fn error_response(description: &str) -> Response {
    ResponseBuilder::new()
        .description(description)
        .content(
            JSONAPI,
            Content::new(Some(RefOr::Ref(utoipa::openapi::Ref::from_schema_name(
                "ErrorDocument",
            )))),
        )
        .build()
}

fn error_response_with_header(description: &str, header: &str, about: &str) -> Response {
    let mut r = error_response(description);
    r.headers.insert(
        header.to_owned(),
        utoipa::openapi::HeaderBuilder::new()
            .schema(utoipa::openapi::schema::Object::with_type(
                utoipa::openapi::schema::Type::String,
            ))
            .description(Some(about))
            .build(),
    );
    r
}

macro_rules! error_responses {
    ($($(#[$doc:meta])* $name:ident => $description:expr $(, header $h:expr => $about:expr)?;)*) => {
        $(
            $(#[$doc])*
            #[derive(Debug)]
            pub struct $name;

            impl<'r> ToResponse<'r> for $name {
                fn response() -> (&'r str, RefOr<Response>) {
                    #[allow(unused_mut, unused_assignments)]
                    let mut response = error_response($description);
                    $( response = error_response_with_header($description, $h, $about); )?
                    (stringify!($name), RefOr::T(response))
                }
            }
        )*
    };
}

error_responses! {
    /// 400.
    BadRequest => "The request is malformed: an unknown, repeated or invalid query parameter \
        (`source.parameter` names it), a body that is not JSON or not a JSON:API document \
        (`source.pointer`), a missing or invalid `Idempotency-Key`, or a \
        `Licenses-Consistency` that is not a token a write's answer carried \
        (`invalid_consistency_token`, `source.header`).";
    /// 401 of the management API.
    UnauthorizedApikey => "No `Authorization: Apikey KEY` header, or a key that is not \
        configured (`unauthorized`).",
        header "WWW-Authenticate" => "The challenge: `Apikey`.";
    /// 401 of the user API.
    UnauthorizedBearer => "No `Authorization: Bearer TOKEN` header (`unauthorized`), a token \
        that is expired or not valid (`invalid_token`), or one that lives longer than the \
        service accepts (`token_too_long_lived`).",
        header "WWW-Authenticate" => "The challenge: `Bearer`, or `Bearer error=\"invalid_token\"`.";
    /// 403 of a user's own paths.
    ForbiddenOwner => "The token's user is not the user of the path (`forbidden`).";
    /// 403 of a creation.
    ForbiddenClientId => "The document brings its own id (`client_generated_id`): ids are \
        assigned by the service; or the API key does not have the scope the route needs \
        (`insufficient_scope`).";
    /// 403 of a management key without the route's scope.
    ForbiddenScope => "The API key does not have the scope the route needs \
        (`insufficient_scope`): `read` for GET, `write` for changes, `irdeto` for the \
        `/irdeto/` routes.";
    /// 403 of a purchase.
    ForbiddenPurchase => "The token's user is not the user of the path (`forbidden`), the \
        document brings its own id (`client_generated_id`), or the user may not purchase \
        (`purchase_restricted`).";
    /// 404.
    NotFound => "No resource has this id, or the path is not one of the API (`not_found`).";
    /// 404 of a creation that names a product.
    RelatedNotFound => "A resource the document names does not exist: a license's product \
        (`product_not_found`, at the relationship, e.g. `/data/3/relationships/product` in a \
        batch), a license of a batch delete (`license_not_found`, at `/data/3/id`). Each is \
        listed, 404 each, with any other problem of the document under its own status (422). \
        JSON:API 1.0 answers 404 to a request that references a related resource that does \
        not exist.";
    /// 409.
    Conflict => "A resource of the wrong type (`wrong_resource_type`), an id that is not the \
        path's (`id_mismatch`), or a state that forbids the change (a product licenses refer \
        to, an `order_id` the user already has).";
    /// 406.
    NotAcceptable => "The `Accept` header names the JSON:API media type only with media type \
        parameters (`not_acceptable`, `source.header`), as JSON:API 1.0 requires; without \
        parameters, or not naming it at all, the answer is JSON:API.";
    /// 413.
    PayloadTooLarge => "The request body is larger than the API accepts (`body_too_large`).";
    /// 415.
    UnsupportedMediaType => "The request body is not declared as \
        `Content-Type: application/vnd.api+json` (without media type parameters).";
    /// 422.
    UnprocessableEntity => "Members of the document have the wrong JSON type, are unknown, \
        or break a rule of the resource; each problem has its `source.pointer` and `code`. \
        Also an `Idempotency-Key` used before with another request \
        (`idempotency_key_reused`).";
    /// 408 of a body sent too slowly.
    RequestTimeout => "The client paused longer than `server.client_timeout_ms` while sending \
        the request body (`body_timeout`), or the whole body did not arrive within \
        `server.body_deadline_ms` (`body_deadline`); the connection is closed.",
        header "Connection" => "`close`.";
    /// 429.
    TooManyRequests => "The caller (the token's user, or the API key) sent more requests than \
        its rate limit allows, or the client address had too many failed authentications \
        (`rate_limited`); retry after the `Retry-After` seconds.",
        header "Retry-After" => "Seconds to wait before retrying.";
    /// 503.
    ServiceUnavailable => "The service cannot reach its database; retry after the \
        `Retry-After` seconds (`unavailable`).",
        header "Retry-After" => "Seconds to wait before retrying.";
}

// ---------------------------------------------------------------------------------------
// Headers

/// `Idempotency-Key`: retries of a creation with the same key get the first answer back.
#[derive(Debug, IntoParams)]
#[into_params(parameter_in = Header)]
pub struct IdempotencyKeyHeader {
    /// 1 to 255 visible ASCII characters, such as a UUID; a retry with the same key and the
    /// same request gets the first answer back, with another request 422
    /// (`idempotency_key_reused`).
    #[param(
        rename = "Idempotency-Key",
        min_length = 1,
        max_length = 255,
        pattern = "^[\\x21-\\x7e]+$",
        example = "5b4e1a2c-6f0d-4d2e-9a7b-0c1d2e3f4a5b"
    )]
    pub idempotency_key: Option<String>,
}

/// `Idempotency-Key`, required (a purchase).
#[derive(Debug, IntoParams)]
#[into_params(parameter_in = Header)]
pub struct RequiredIdempotencyKeyHeader {
    /// A new UUID per purchase, the same for its retries: a retried purchase never bills
    /// twice. 1 to 255 visible ASCII characters.
    #[param(
        rename = "Idempotency-Key",
        min_length = 1,
        max_length = 255,
        pattern = "^[\\x21-\\x7e]+$",
        example = "5b4e1a2c-6f0d-4d2e-9a7b-0c1d2e3f4a5b"
    )]
    pub idempotency_key: String,
}

/// `If-None-Match`: revalidating the catalogue.
#[derive(Debug, IntoParams)]
#[into_params(parameter_in = Header)]
pub struct IfNoneMatchHeader {
    /// An `ETag` of an earlier answer (or `*`): 304 without a body while it still matches.
    #[param(rename = "If-None-Match")]
    pub if_none_match: Option<String>,
}

// ---------------------------------------------------------------------------------------
// Rules between members

/// Adds to the request schemas the rules between members that the service checks and the
/// derived schemas cannot say (JSON Schema can: `oneOf`, `if`/`then`), so that a document
/// the schema admits is not refused for them:
/// - `ProductCreateResource`: a CHANNEL, PVR, CATCHUP or STARTOVER product grants its one
///   service (live, npvr, catchup, startover) on exactly one channel and no other service; a
///   CHANNEL_GROUP grants at least one service on at least one channel;
/// - `ChannelsRelationship`: each channel once;
/// - `PurchaseRecordInput`: `price_currency_amount` and `price_currency_iso4217` come
///   together (or neither, and the product's price applies).
///
/// Rules that depend on stored data or on the clock (an `UpdateProduct` checked against the
/// product it changes, `stop_date` after a `start_date` that defaults to now) stay in the
/// descriptions and the 422 answers.
pub fn add_member_rules(openapi: &mut OpenApi) {
    use serde_json::{Value, json};

    const SINGLE: [(&str, &str); 4] = [
        ("CHANNEL", "live"),
        ("PVR", "npvr"),
        ("CATCHUP", "catchup"),
        ("STARTOVER", "startover"),
    ];
    let services = ["live", "npvr", "catchup", "startover"];
    let of_type = |t: &str| json!({"attributes": {"properties": {"type": {"const": t}}}});
    let mut branches: Vec<Value> = SINGLE
        .iter()
        .map(|(t, only)| {
            let lists: serde_json::Map<String, Value> = services
                .iter()
                .map(|s| {
                    let data = if s == only {
                        json!({"minItems": 1, "maxItems": 1})
                    } else {
                        json!({"maxItems": 0})
                    };
                    ((*s).to_owned(), json!({"properties": {"data": data}}))
                })
                .collect();
            let mut properties = of_type(t);
            properties["relationships"] = json!({"required": [only], "properties": lists});
            json!({"required": ["relationships"], "properties": properties})
        })
        .collect();
    let mut group = of_type("CHANNEL_GROUP");
    group["relationships"] = json!({"anyOf": services
        .iter()
        .map(|s| json!({"required": [s], "properties": {*s: {"properties": {"data": {"minItems": 1}}}}}))
        .collect::<Vec<_>>()});
    branches.push(json!({"required": ["relationships"], "properties": group}));
    add_rule(
        openapi,
        "ProductCreateResource",
        "oneOf",
        Value::Array(branches),
    );

    add_rule(
        openapi,
        "ChannelsRelationship",
        "allOf",
        json!([{"properties": {"data": {"uniqueItems": true}}}]),
    );

    let together = |a: &str, ta: &str, b: &str, tb: &str| {
        json!({
            "if": {"required": [a], "properties": {a: {"type": ta}}},
            "then": {"required": [b], "properties": {b: {"type": tb}}},
        })
    };
    add_rule(
        openapi,
        "PurchaseRecordInput",
        "allOf",
        json!([
            together(
                "price_currency_amount",
                "integer",
                "price_currency_iso4217",
                "string"
            ),
            together(
                "price_currency_iso4217",
                "string",
                "price_currency_amount",
                "integer"
            ),
        ]),
    );
}

/// Sets keyword `keyword` of the component schema `name` (an object schema of the document).
fn add_rule(openapi: &mut OpenApi, name: &str, keyword: &str, rule: serde_json::Value) {
    use utoipa::openapi::schema::Schema;
    let schema = openapi
        .components
        .as_mut()
        .and_then(|c| c.schemas.get_mut(name));
    if let Some(RefOr::T(Schema::Object(object))) = schema {
        object
            .extensions
            .get_or_insert_with(Default::default)
            .insert(keyword.to_owned(), rule);
    } else {
        debug_assert!(false, "no object schema {name}");
    }
}

/// Every operation of `openapi`, to add what all of them answer.
fn operations_mut(openapi: &mut OpenApi) -> impl Iterator<Item = &mut Operation> {
    openapi.paths.paths.values_mut().flat_map(|item| {
        [
            &mut item.get,
            &mut item.put,
            &mut item.post,
            &mut item.delete,
            &mut item.patch,
        ]
        .into_iter()
        .flatten()
    })
}
