//! The OpenAPI 3.1 description of the JSON:API documents both front-ends read and answer:
//! schemas of request and response documents, the error document and its responses, the
//! query parameters and headers the readers accept, and the security schemes. Each API crate
//! puts these together with the `#[utoipa::path]` of its handlers.
//!
//! Request schemas say exactly what the readers of [`crate::read`] and the domain accept
//! (required members, enumerations, id lengths, no unknown members), so that schema fuzzing
//! can tell accepted bad input from a rejected good one. These types only describe documents:
//! the service reads and writes JSON with [`crate::read`] and [`crate::render`].

#![allow(dead_code)]

use serde::Serialize;
use utoipa::openapi::security::{ApiKey, ApiKeyValue, HttpAuthScheme, HttpBuilder, SecurityScheme};
use utoipa::openapi::{Content, OpenApi, RefOr, Response, ResponseBuilder};
use utoipa::{IntoParams, ToResponse, ToSchema};

use crate::request::JSONAPI;

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
             `auth.management_keys` (`licenses apikey new` makes one).",
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
/// front of the handlers (the rate limits of `limits.*`; for a request with a body, its size
/// limit and the slow-body timeout). Also names the server: the service's own address, as
/// the paths are absolute.
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
        <RequestTimeout as ToResponse>::response(),
        <PayloadTooLarge as ToResponse>::response(),
    ] {
        components.responses.insert(name.to_owned(), response);
    }
    for item in openapi.paths.paths.values_mut() {
        let operations = [
            &mut item.get,
            &mut item.put,
            &mut item.post,
            &mut item.delete,
            &mut item.patch,
        ];
        for operation in operations.into_iter().flatten() {
            add(operation, "429", "TooManyRequests");
            if operation.request_body.is_some() {
                add(operation, "408", "RequestTimeout");
                add(operation, "413", "PayloadTooLarge");
            }
        }
    }
}

// ---------------------------------------------------------------------------------------
// Errors

/// A JSON:API error document: every problem found, each with a stable `code`.
#[derive(Debug, Serialize, ToSchema)]
#[schema(example = json!({"errors": [{"status": "404", "code": "not_found",
    "title": "Not Found", "detail": "no product has this id"}]}))]
pub struct ErrorDocument {
    pub errors: Vec<ErrorObjectDoc>,
}

/// One problem.
#[derive(Debug, Serialize, ToSchema)]
#[schema(as = ErrorObject)]
pub struct ErrorObjectDoc {
    /// The HTTP status of this problem, as a string.
    #[schema(pattern = "^[1-5][0-9][0-9]$")]
    pub status: String,
    /// A stable, machine-readable code (`not_found`, `invalid_type`, `required`, …).
    pub code: String,
    /// The status's reason phrase.
    pub title: String,
    /// What is wrong, for a person.
    pub detail: String,
    pub source: Option<ErrorSource>,
}

/// Where the problem is: a JSON pointer into the request document, or a query parameter.
#[derive(Debug, Serialize, ToSchema)]
pub struct ErrorSource {
    /// RFC 6901 pointer to the member at fault (`/data/attributes/title`).
    pub pointer: Option<String>,
    /// The query parameter at fault (`page[size]`).
    pub parameter: Option<String>,
}

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
        (`source.pointer`), or a missing or invalid `Idempotency-Key`.";
    /// 401 of the management API.
    UnauthorizedApikey => "No `Authorization: Apikey KEY` header, or a key that is not \
        configured (`unauthorized`).",
        header "WWW-Authenticate" => "The challenge: `Apikey`.";
    /// 401 of the user API.
    UnauthorizedBearer => "No `Authorization: Bearer TOKEN` header (`unauthorized`), or a token \
        that is expired or not valid (`invalid_token`).",
        header "WWW-Authenticate" => "The challenge: `Bearer`, or `Bearer error=\"invalid_token\"`.";
    /// 403 of a user's own paths.
    ForbiddenOwner => "The token's user is not the user of the path (`forbidden`).";
    /// 403 of a creation.
    ForbiddenClientId => "The document brings its own id (`client_generated_id`): ids are \
        assigned by the service.";
    /// 403 of a purchase.
    ForbiddenPurchase => "The token's user is not the user of the path (`forbidden`), the \
        document brings its own id (`client_generated_id`), or the user may not purchase \
        (`purchase_restricted`).";
    /// 404.
    NotFound => "No resource has this id, or the path is not one of the API (`not_found`).";
    /// 409.
    Conflict => "A resource of the wrong type (`wrong_resource_type`), an id that is not the \
        path's (`id_mismatch`), or a state that forbids the change (a product licenses refer \
        to, an `order_id` the user already has).";
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
        the request body (`body_timeout`).";
    /// 429.
    TooManyRequests => "The caller (the token's user, or the API key) sent more requests than \
        its rate limit allows (`rate_limited`); retry after the `Retry-After` seconds.",
        header "Retry-After" => "Seconds to wait before retrying.";
    /// 503.
    ServiceUnavailable => "The service cannot reach its database; retry after the \
        `Retry-After` seconds (`unavailable`).",
        header "Retry-After" => "Seconds to wait before retrying.";
}

// ---------------------------------------------------------------------------------------
// Parameters

/// The id of a product (1 to 64 bytes, no white space).
pub const PRODUCT_ID_MAX: usize = licenses_domain::ProductId::MAX_LEN;
/// Pattern of an id: no white space nor control characters.
pub const ID_PATTERN: &str = r"^[^\s\x00-\x1f\x7f-\x9f]+$";

/// `Idempotency-Key`: retries of a creation with the same key get the first answer back.
#[derive(Debug, IntoParams)]
#[into_params(parameter_in = Header)]
pub struct IdempotencyKeyHeader {
    /// 1 to 255 visible ASCII characters, such as a UUID; a retry with the same key and the
    /// same request gets the first answer back, with another request 409.
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

const STATUS_LIST: &str = r"^\s*(PROCESSING|ACTIVE|SUSPENDED|EXPIRED|ORDER_ERROR|CHECK_INVALID|DELETED)\s*(,\s*(PROCESSING|ACTIVE|SUSPENDED|EXPIRED|ORDER_ERROR|CHECK_INVALID|DELETED)\s*)*$";

/// `filter[status]` alone (the user API's listing).
#[derive(Debug, IntoParams)]
#[into_params(parameter_in = Query)]
pub struct StatusFilter {
    /// Only licenses in one of these statuses: a comma-separated list (EXPIRED is derived
    /// from `stop_date`).
    #[param(
        rename = "filter[status]",
        pattern = r"^\s*(PROCESSING|ACTIVE|SUSPENDED|EXPIRED|ORDER_ERROR|CHECK_INVALID|DELETED)\s*(,\s*(PROCESSING|ACTIVE|SUSPENDED|EXPIRED|ORDER_ERROR|CHECK_INVALID|DELETED)\s*)*$",
        example = "ACTIVE,SUSPENDED"
    )]
    pub status: Option<String>,
}

/// `filter[user]` (the management listing of every license).
#[derive(Debug, IntoParams)]
#[into_params(parameter_in = Query)]
pub struct UserFilter {
    /// Only the licenses of this user.
    #[param(
        rename = "filter[user]",
        min_length = 1,
        max_length = 255,
        pattern = r"^[^\s\x00-\x1f\x7f-\x9f]+$",
        example = "41"
    )]
    pub user: Option<String>,
}

/// The management listings' filters, pages and include (but `filter[user]`).
#[derive(Debug, IntoParams)]
#[into_params(parameter_in = Query)]
pub struct LicenseListParams {
    /// Only the licenses of this product.
    #[param(
        rename = "filter[product]",
        min_length = 1,
        max_length = 64,
        pattern = r"^[^\s\x00-\x1f\x7f-\x9f]+$",
        example = "41"
    )]
    pub product: Option<String>,
    /// Only licenses in one of these statuses: a comma-separated list (EXPIRED is derived
    /// from `stop_date`).
    #[param(
        rename = "filter[status]",
        pattern = r"^\s*(PROCESSING|ACTIVE|SUSPENDED|EXPIRED|ORDER_ERROR|CHECK_INVALID|DELETED)\s*(,\s*(PROCESSING|ACTIVE|SUSPENDED|EXPIRED|ORDER_ERROR|CHECK_INVALID|DELETED)\s*)*$",
        example = "ACTIVE"
    )]
    pub status: Option<String>,
    /// Only licenses active at this time (unix seconds): started, and not stopped.
    #[param(rename = "filter[active_at]", minimum = 0, example = 1523268666)]
    pub active_at: Option<i64>,
    /// `product`: the licenses' products in `included`.
    #[param(rename = "include", inline)]
    pub include: Option<Include>,
    /// Licenses per page, 1 to 1000 (default 100).
    #[param(rename = "page[size]", minimum = 1, maximum = 1000, example = 100)]
    pub size: Option<u32>,
    /// The cursor of `links.next`: the page after this license.
    #[param(
        rename = "page[after]",
        min_length = 1,
        max_length = 64,
        pattern = r"^[^\s\x00-\x1f\x7f-\x9f]+$"
    )]
    pub after: Option<String>,
}

/// `include` alone (one license).
#[derive(Debug, IntoParams)]
#[into_params(parameter_in = Query)]
pub struct IncludeParam {
    /// `product`: the license's product in `included`.
    #[param(rename = "include", inline)]
    pub include: Option<Include>,
}

/// The only related resource a license document can include.
#[derive(Debug, Serialize, ToSchema)]
pub enum Include {
    #[serde(rename = "product")]
    Product,
}

// ---------------------------------------------------------------------------------------
// Resource identifiers and links

/// The resource type `Product`.
#[derive(Debug, Serialize, ToSchema)]
pub enum ProductType {
    Product,
}

/// The resource type `License`.
#[derive(Debug, Serialize, ToSchema)]
pub enum LicenseType {
    License,
}

/// The resource type `User`.
#[derive(Debug, Serialize, ToSchema)]
pub enum UserType {
    User,
}

/// The resource type `Channel`.
#[derive(Debug, Serialize, ToSchema)]
pub enum ChannelType {
    Channel,
}

/// The resource type `ChannelEntitlement`.
#[derive(Debug, Serialize, ToSchema)]
pub enum ChannelEntitlementType {
    ChannelEntitlement,
}

/// A channel of the Channel API.
#[derive(Debug, Serialize, ToSchema)]
#[serde(deny_unknown_fields)]
pub struct ChannelIdentifier {
    #[schema(
        min_length = 1,
        max_length = 255,
        pattern = r"^[^\s\x00-\x1f\x7f-\x9f]+$",
        example = "42"
    )]
    pub id: String,
    #[serde(rename = "type")]
    pub kind: ChannelType,
    /// Free-form; ignored.
    #[schema(nullable = false)]
    pub meta: Option<serde_json::Value>,
}

/// A product named by its id.
#[derive(Debug, Serialize, ToSchema)]
#[serde(deny_unknown_fields)]
pub struct ProductIdentifier {
    #[schema(
        min_length = 1,
        max_length = 64,
        pattern = r"^[^\s\x00-\x1f\x7f-\x9f]+$",
        example = "41"
    )]
    pub id: String,
    #[serde(rename = "type")]
    pub kind: ProductType,
    /// Free-form; ignored.
    #[schema(nullable = false)]
    pub meta: Option<serde_json::Value>,
}

/// A user named by their id.
#[derive(Debug, Serialize, ToSchema)]
#[serde(deny_unknown_fields)]
pub struct UserIdentifier {
    #[schema(
        min_length = 1,
        max_length = 255,
        pattern = r"^[^\s\x00-\x1f\x7f-\x9f]+$",
        example = "41"
    )]
    pub id: String,
    #[serde(rename = "type")]
    pub kind: UserType,
    /// Free-form; ignored.
    #[schema(nullable = false)]
    pub meta: Option<serde_json::Value>,
}

/// A license named by its id.
#[derive(Debug, Serialize, ToSchema)]
#[serde(deny_unknown_fields)]
pub struct LicenseIdentifier {
    #[schema(
        min_length = 1,
        max_length = 64,
        pattern = r"^[^\s\x00-\x1f\x7f-\x9f]+$",
        example = "42"
    )]
    pub id: String,
    #[serde(rename = "type")]
    pub kind: LicenseType,
    /// Free-form; ignored.
    #[schema(nullable = false)]
    pub meta: Option<serde_json::Value>,
}

/// The channels a product grants one service on.
#[derive(Debug, Serialize, ToSchema)]
#[serde(deny_unknown_fields)]
pub struct ChannelsRelationship {
    pub data: Vec<ChannelIdentifier>,
    /// Free-form; ignored.
    pub meta: Option<serde_json::Value>,
    /// Free-form; ignored.
    pub links: Option<serde_json::Value>,
}

/// The user of a license.
#[derive(Debug, Serialize, ToSchema)]
#[serde(deny_unknown_fields)]
pub struct UserRelationship {
    pub data: UserIdentifier,
    /// Free-form; ignored.
    pub meta: Option<serde_json::Value>,
    /// Free-form; ignored.
    pub links: Option<serde_json::Value>,
}

/// The product of a license.
#[derive(Debug, Serialize, ToSchema)]
#[serde(deny_unknown_fields)]
pub struct ProductRelationship {
    pub data: ProductIdentifier,
    /// Free-form; ignored.
    pub meta: Option<serde_json::Value>,
    /// Free-form; ignored.
    pub links: Option<serde_json::Value>,
}

/// The channel of an entitlement.
#[derive(Debug, Serialize, ToSchema)]
pub struct ChannelRelationship {
    pub data: ChannelIdentifier,
}

/// A resource's own URL.
#[derive(Debug, Serialize, ToSchema)]
pub struct SelfLink {
    #[serde(rename = "self")]
    pub self_: String,
}

/// A listing's URL, and the next page's when there is one.
#[derive(Debug, Serialize, ToSchema)]
pub struct ListLinks {
    #[serde(rename = "self")]
    pub self_: String,
    pub next: Option<String>,
}

// ---------------------------------------------------------------------------------------
// Products

/// What a product is: one service on one channel, or a group.
#[derive(Debug, Serialize, ToSchema)]
#[allow(clippy::upper_case_acronyms)]
pub enum ProductKind {
    #[serde(rename = "CHANNEL")]
    Channel,
    #[serde(rename = "PVR")]
    Pvr,
    #[serde(rename = "CATCHUP")]
    Catchup,
    #[serde(rename = "STARTOVER")]
    Startover,
    #[serde(rename = "CHANNEL_GROUP")]
    ChannelGroup,
}

/// A price in minor units (cents) of an ISO 4217 currency.
#[derive(Debug, Serialize, ToSchema)]
#[serde(deny_unknown_fields)]
pub struct PriceRecord {
    #[schema(minimum = 0, example = 999)]
    pub amount: i64,
    #[schema(pattern = "^[A-Z]{3}$", example = "EUR")]
    pub currency: String,
}

/// The channels and services a product grants (every service is listed, maybe empty).
#[derive(Debug, Serialize, ToSchema)]
pub struct ProductRelationships {
    pub live: ChannelsRelationship,
    pub npvr: ChannelsRelationship,
    pub catchup: ChannelsRelationship,
    pub startover: ChannelsRelationship,
}

/// A product as a client app sees it.
#[derive(Debug, Serialize, ToSchema)]
pub struct UserProductAttributes {
    pub title: String,
    pub description: String,
    #[serde(rename = "type")]
    pub product_type: ProductKind,
    pub is_premium: bool,
    #[schema(required = true)]
    pub price_record: Option<PriceRecord>,
}

/// A product of the catalogue, as a client app sees it.
#[derive(Debug, Serialize, ToSchema)]
#[schema(example = json!({"id": "41", "type": "Product", "attributes": {"title":
    "Sport channels meagpack", "description": "Complete collection for all sports channels",
    "type": "CHANNEL_GROUP", "is_premium": true, "price_record": null}, "relationships": {
    "live": {"data": [{"id": "42", "type": "Channel"}]}, "npvr": {"data": [{"id": "42",
    "type": "Channel"}]}, "catchup": {"data": [{"id": "42", "type": "Channel"}]},
    "startover": {"data": [{"id": "42", "type": "Channel"}]}}}))]
pub struct UserProduct {
    pub id: String,
    #[serde(rename = "type")]
    pub kind: ProductType,
    pub attributes: UserProductAttributes,
    pub relationships: ProductRelationships,
}

/// How licenses of a product are granted when their document does not say.
#[derive(Debug, Serialize, ToSchema)]
pub struct LicenseDefaults {
    /// Seconds from `start_date` to `stop_date`; `null`: no end.
    #[schema(required = true, minimum = 1)]
    pub duration: Option<u64>,
    pub auto_renew: bool,
}

/// A product as the BSS sees it: every attribute.
#[derive(Debug, Serialize, ToSchema)]
pub struct ManagementProductAttributes {
    pub title: String,
    pub description: String,
    #[serde(rename = "type")]
    pub product_type: ProductKind,
    pub is_premium: bool,
    #[schema(required = true)]
    pub price_record: Option<PriceRecord>,
    pub is_user_visible: bool,
    pub is_buyable: bool,
    pub auto_grant_on_signup: bool,
    pub license_defaults: LicenseDefaults,
    /// The product's reference in Irdeto, where licenses of it are entitled.
    #[schema(required = true)]
    pub irdeto_product_id: Option<String>,
}

/// A product, as the BSS sees it.
#[derive(Debug, Serialize, ToSchema)]
pub struct ManagementProduct {
    pub id: String,
    #[serde(rename = "type")]
    pub kind: ProductType,
    pub attributes: ManagementProductAttributes,
    pub relationships: ProductRelationships,
    pub links: SelfLink,
}

/// The attributes of a new product: `title` and `type` are required.
#[derive(Debug, Serialize, ToSchema)]
#[serde(deny_unknown_fields)]
pub struct ProductCreateAttributes {
    #[schema(min_length = 1, max_length = 255)]
    pub title: String,
    #[schema(max_length = 4000)]
    pub description: Option<String>,
    #[serde(rename = "type")]
    pub product_type: ProductKind,
    pub is_premium: Option<bool>,
    /// Default true.
    pub is_user_visible: Option<bool>,
    /// Default true.
    pub is_buyable: Option<bool>,
    pub auto_grant_on_signup: Option<bool>,
    pub price_record: Option<PriceRecord>,
    pub license_defaults: Option<LicenseDefaultsInput>,
    #[schema(min_length = 1, max_length = 255)]
    pub irdeto_product_id: Option<String>,
}

/// The attributes a patch changes; absent ones keep their value.
#[derive(Debug, Serialize, ToSchema)]
#[serde(deny_unknown_fields)]
pub struct ProductPatchAttributes {
    #[schema(min_length = 1, max_length = 255)]
    pub title: Option<String>,
    #[schema(max_length = 4000)]
    pub description: Option<String>,
    #[serde(rename = "type")]
    pub product_type: Option<ProductKind>,
    pub is_premium: Option<bool>,
    pub is_user_visible: Option<bool>,
    pub is_buyable: Option<bool>,
    pub auto_grant_on_signup: Option<bool>,
    /// `null` removes the price.
    pub price_record: Option<PriceRecord>,
    pub license_defaults: Option<LicenseDefaultsInput>,
    /// `null` removes the reference.
    #[schema(min_length = 1, max_length = 255)]
    pub irdeto_product_id: Option<String>,
}

/// License defaults in a request document.
#[derive(Debug, Serialize, ToSchema)]
#[serde(deny_unknown_fields)]
pub struct LicenseDefaultsInput {
    /// Seconds, positive.
    #[schema(minimum = 1)]
    pub duration: Option<i64>,
    pub auto_renew: Option<bool>,
}

/// The channels of each service a product grants; an absent service grants none (or, in a
/// patch, keeps its channels).
#[derive(Debug, Serialize, ToSchema)]
#[serde(deny_unknown_fields)]
pub struct ProductRelationshipsInput {
    #[schema(nullable = false)]
    pub live: Option<ChannelsRelationship>,
    #[schema(nullable = false)]
    pub npvr: Option<ChannelsRelationship>,
    #[schema(nullable = false)]
    pub catchup: Option<ChannelsRelationship>,
    #[schema(nullable = false)]
    pub startover: Option<ChannelsRelationship>,
}

/// A new product (its id is assigned by the service).
#[derive(Debug, Serialize, ToSchema)]
#[serde(deny_unknown_fields)]
pub struct ProductCreateResource {
    #[serde(rename = "type")]
    pub kind: ProductType,
    pub attributes: ProductCreateAttributes,
    #[schema(nullable = false)]
    pub relationships: Option<ProductRelationshipsInput>,
    /// Free-form; ignored.
    pub meta: Option<serde_json::Value>,
    /// Free-form; ignored.
    pub links: Option<serde_json::Value>,
}

/// CreateProduct's request document.
#[derive(Debug, Serialize, ToSchema)]
#[serde(deny_unknown_fields)]
#[schema(example = json!({"data": {"type": "Product", "attributes": {"title":
    "Sport channels meagpack", "description": "Complete collection for all sports channels",
    "type": "CHANNEL_GROUP", "is_premium": true}, "relationships": {
    "live": {"data": [{"id": "42", "type": "Channel"}]}, "npvr": {"data": [{"id": "42",
    "type": "Channel"}]}, "catchup": {"data": [{"id": "42", "type": "Channel"}]},
    "startover": {"data": [{"id": "42", "type": "Channel"}]}}}}))]
pub struct ProductCreateDocument {
    pub data: ProductCreateResource,
}

/// A product's changes, named by the id of the URL.
#[derive(Debug, Serialize, ToSchema)]
#[serde(deny_unknown_fields)]
pub struct ProductPatchResource {
    #[serde(rename = "type")]
    pub kind: ProductType,
    /// The id of the URL.
    #[schema(
        min_length = 1,
        max_length = 64,
        pattern = r"^[^\s\x00-\x1f\x7f-\x9f]+$"
    )]
    pub id: String,
    #[schema(nullable = false)]
    pub attributes: Option<ProductPatchAttributes>,
    #[schema(nullable = false)]
    pub relationships: Option<ProductRelationshipsInput>,
    /// Free-form; ignored.
    pub meta: Option<serde_json::Value>,
    /// Free-form; ignored.
    pub links: Option<serde_json::Value>,
}

/// UpdateProduct's request document.
#[derive(Debug, Serialize, ToSchema)]
#[serde(deny_unknown_fields)]
#[schema(example = json!({"data": {"type": "Product", "id": "41", "attributes":
    {"title": "Sport channels megapack", "is_buyable": false}}}))]
pub struct ProductPatchDocument {
    pub data: ProductPatchResource,
}

/// One product, as the BSS sees it.
#[derive(Debug, Serialize, ToSchema)]
pub struct ProductDocument {
    pub data: ManagementProduct,
}

/// Every product, as the BSS sees them.
#[derive(Debug, Serialize, ToSchema)]
pub struct ProductsDocument {
    pub data: Vec<ManagementProduct>,
    pub links: ListLinks,
}

/// GetAllProducts: the products a client app may show.
#[derive(Debug, Serialize, ToSchema)]
#[schema(example = json!({"data": [{"id": "41", "type": "Product", "attributes": {"title":
    "Sport channels meagpack", "description": "Complete collection for all sports channels",
    "type": "CHANNEL_GROUP", "is_premium": true, "price_record": null}, "relationships": {
    "live": {"data": [{"id": "42", "type": "Channel"}]}, "npvr": {"data": [{"id": "42",
    "type": "Channel"}]}, "catchup": {"data": [{"id": "42", "type": "Channel"}]},
    "startover": {"data": [{"id": "42", "type": "Channel"}]}}}]}))]
pub struct CatalogueDocument {
    pub data: Vec<UserProduct>,
}

// ---------------------------------------------------------------------------------------
// Licenses

/// A license's status; EXPIRED is derived from `stop_date`.
#[derive(Debug, Serialize, ToSchema)]
#[allow(clippy::upper_case_acronyms)]
pub enum LicenseStatus {
    #[serde(rename = "PROCESSING")]
    Processing,
    #[serde(rename = "ACTIVE")]
    Active,
    #[serde(rename = "SUSPENDED")]
    Suspended,
    #[serde(rename = "EXPIRED")]
    Expired,
    #[serde(rename = "ORDER_ERROR")]
    OrderError,
    #[serde(rename = "CHECK_INVALID")]
    CheckInvalid,
    #[serde(rename = "DELETED")]
    Deleted,
}

/// How a license was bought.
#[derive(Debug, Serialize, ToSchema)]
pub struct PurchaseRecord {
    #[schema(required = true)]
    pub price_currency_amount: Option<i64>,
    #[schema(required = true)]
    pub price_currency_iso4217: Option<String>,
    pub purchase_timestamp: i64,
    #[schema(required = true)]
    pub payment_method: Option<String>,
}

/// Whether a license renews.
#[derive(Debug, Serialize, ToSchema)]
pub struct RenewRecord {
    pub recurring: bool,
    #[schema(required = true)]
    pub expiry_date: Option<i64>,
}

/// A license's attributes (times are unix seconds).
#[derive(Debug, Serialize, ToSchema)]
pub struct LicenseAttributes {
    pub status: LicenseStatus,
    pub start_date: i64,
    /// `null`: no end.
    #[schema(required = true)]
    pub stop_date: Option<i64>,
    #[schema(required = true)]
    pub order_id: Option<String>,
    pub purchase_record: PurchaseRecord,
    pub renew_record: RenewRecord,
}

/// The user and product of a license.
#[derive(Debug, Serialize, ToSchema)]
pub struct LicenseRelationships {
    pub user: UserRelationship,
    pub product: ProductRelationship,
}

/// Management-only facts about a license.
#[derive(Debug, Serialize, ToSchema)]
pub struct LicenseMeta {
    /// Why an order failed (ORDER_ERROR, CHECK_INVALID).
    pub status_reason: String,
}

/// A license. `meta` (management API only) says why an order failed.
#[derive(Debug, Serialize, ToSchema)]
#[schema(example = json!({"id": "42", "type": "License", "attributes": {"status": "ACTIVE",
    "start_date": 1523268666, "stop_date": 1523268698, "order_id": null, "purchase_record":
    {"price_currency_amount": null, "price_currency_iso4217": null, "purchase_timestamp":
    1523268666, "payment_method": null}, "renew_record": {"recurring": false, "expiry_date":
    1523268698}}, "relationships": {"user": {"data": {"id": "41", "type": "User"}},
    "product": {"data": {"id": "41", "type": "Product"}}}, "links": {"self":
    "https://licenses.example/api/license/v4/users/41/licenses/42"}}))]
pub struct License {
    pub id: String,
    #[serde(rename = "type")]
    pub kind: LicenseType,
    pub attributes: LicenseAttributes,
    pub relationships: LicenseRelationships,
    pub links: SelfLink,
    pub meta: Option<LicenseMeta>,
}

/// One license of a user, with its product.
#[derive(Debug, Serialize, ToSchema)]
pub struct UserLicenseDocument {
    pub data: License,
    pub included: Vec<UserProduct>,
}

/// GetUserLicenses: a user's licenses, each product once in `included`.
#[derive(Debug, Serialize, ToSchema)]
pub struct UserLicensesDocument {
    pub data: Vec<License>,
    pub included: Vec<UserProduct>,
    pub links: ListLinks,
}

/// One license, with its product when `include=product`.
#[derive(Debug, Serialize, ToSchema)]
pub struct LicenseDocument {
    pub data: License,
    pub included: Option<Vec<ManagementProduct>>,
}

/// A page of licenses, with their products when `include=product`, and `links.next` when
/// there are more.
#[derive(Debug, Serialize, ToSchema)]
pub struct LicensesDocument {
    pub data: Vec<License>,
    pub included: Option<Vec<ManagementProduct>>,
    pub links: ListLinks,
}

/// The licenses a batch created, in the order of the request.
#[derive(Debug, Serialize, ToSchema)]
pub struct CreatedLicensesDocument {
    pub data: Vec<License>,
}

/// The one license CreateLicense granted.
#[derive(Debug, Serialize, ToSchema)]
pub struct CreatedLicenseDocument {
    pub data: License,
}

/// A new license's status: ACTIVE (the default) or SUSPENDED.
#[derive(Debug, Serialize, ToSchema)]
pub enum NewLicenseStatus {
    #[serde(rename = "ACTIVE")]
    Active,
    #[serde(rename = "SUSPENDED")]
    Suspended,
}

/// How a new license was bought; the price comes from the product when absent.
#[derive(Debug, Serialize, ToSchema)]
#[serde(deny_unknown_fields)]
pub struct PurchaseRecordInput {
    #[schema(minimum = 0)]
    pub price_currency_amount: Option<i64>,
    #[schema(pattern = "^[A-Z]{3}$")]
    pub price_currency_iso4217: Option<String>,
    #[schema(minimum = 0, maximum = 253402300799_i64)]
    pub purchase_timestamp: Option<i64>,
    #[schema(min_length = 1, max_length = 64)]
    pub payment_method: Option<String>,
}

/// Whether a new license renews (default: the product's `auto_renew`).
#[derive(Debug, Serialize, ToSchema)]
#[serde(deny_unknown_fields)]
pub struct RenewRecordInput {
    pub recurring: Option<bool>,
    #[schema(minimum = 0, maximum = 253402300799_i64)]
    pub expiry_date: Option<i64>,
}

/// A new license's attributes; every one has a default.
#[derive(Debug, Serialize, ToSchema)]
#[serde(deny_unknown_fields)]
pub struct LicenseCreateAttributes {
    pub status: Option<NewLicenseStatus>,
    /// Default: now.
    #[schema(minimum = 0, maximum = 253402300799_i64)]
    pub start_date: Option<i64>,
    /// Default: `start_date` plus the product's `license_defaults.duration`.
    #[schema(minimum = 0, maximum = 253402300799_i64)]
    pub stop_date: Option<i64>,
    /// Unique per user.
    #[schema(
        min_length = 1,
        max_length = 255,
        pattern = r"^[^\s\x00-\x1f\x7f-\x9f]+$"
    )]
    pub order_id: Option<String>,
    pub purchase_record: Option<PurchaseRecordInput>,
    pub renew_record: Option<RenewRecordInput>,
}

/// The user and product of a new license.
#[derive(Debug, Serialize, ToSchema)]
#[serde(deny_unknown_fields)]
pub struct LicenseCreateRelationships {
    pub user: UserRelationship,
    pub product: ProductRelationship,
}

/// A new license (its id is assigned by the service).
#[derive(Debug, Serialize, ToSchema)]
#[serde(deny_unknown_fields)]
pub struct LicenseCreateResource {
    #[serde(rename = "type")]
    pub kind: LicenseType,
    #[schema(nullable = false)]
    pub attributes: Option<LicenseCreateAttributes>,
    pub relationships: LicenseCreateRelationships,
    /// Free-form; ignored.
    pub meta: Option<serde_json::Value>,
    /// Free-form; ignored.
    pub links: Option<serde_json::Value>,
}

/// CreateLicense's request document.
#[derive(Debug, Serialize, ToSchema)]
#[serde(deny_unknown_fields)]
#[schema(example = json!({"data": {"type": "License", "attributes": {"status": "ACTIVE",
    "start_date": 1523268666, "stop_date": 1523268698}, "relationships": {"user": {"data":
    {"id": "41", "type": "User"}}, "product": {"data": {"id": "41", "type": "Product"}}}}}))]
pub struct LicenseCreateDocument {
    pub data: LicenseCreateResource,
}

/// BatchCreateLicenses' request document: 1 to 10,000 licenses, all created or none.
#[derive(Debug, Serialize, ToSchema)]
#[serde(deny_unknown_fields)]
#[schema(example = json!({"data": [{"type": "License", "relationships": {"user": {"data":
    {"id": "41", "type": "User"}}, "product": {"data": {"id": "41", "type": "Product"}}}}]}))]
pub struct LicenseBatchDocument {
    #[schema(min_items = 1, max_items = 10000)]
    pub data: Vec<LicenseCreateResource>,
}

/// BatchDeleteLicenses' request document: 1 to 10,000 distinct licenses.
#[derive(Debug, Serialize, ToSchema)]
#[serde(deny_unknown_fields)]
#[schema(example = json!({"data": [{"type": "License", "id": "42"}]}))]
pub struct LicenseDeleteBatchDocument {
    #[schema(min_items = 1, max_items = 10000)]
    pub data: Vec<LicenseIdentifier>,
}

/// How many licenses a batch deleted.
#[derive(Debug, Serialize, ToSchema)]
pub struct DeletedMeta {
    pub deleted: u64,
}

/// BatchDeleteLicenses' answer.
#[derive(Debug, Serialize, ToSchema)]
pub struct DeletedDocument {
    pub meta: DeletedMeta,
}

/// The only payment method.
#[derive(Debug, Serialize, ToSchema)]
pub enum PaymentMethod {
    #[serde(rename = "billing")]
    Billing,
}

/// A purchase's attributes.
#[derive(Debug, Serialize, ToSchema)]
#[serde(deny_unknown_fields)]
pub struct PurchaseAttributes {
    pub payment_method: PaymentMethod,
    /// The app's id of this purchase, unique per user (default: the `Idempotency-Key`).
    #[schema(
        min_length = 1,
        max_length = 255,
        pattern = r"^[^\s\x00-\x1f\x7f-\x9f]+$"
    )]
    pub order_id: Option<String>,
}

/// The product a purchase buys.
#[derive(Debug, Serialize, ToSchema)]
#[serde(deny_unknown_fields)]
pub struct PurchaseRelationships {
    pub product: ProductRelationship,
}

/// A purchase: a new license of the path's user.
#[derive(Debug, Serialize, ToSchema)]
#[serde(deny_unknown_fields)]
pub struct PurchaseResource {
    #[serde(rename = "type")]
    pub kind: LicenseType,
    pub attributes: PurchaseAttributes,
    pub relationships: PurchaseRelationships,
    /// Free-form; ignored.
    pub meta: Option<serde_json::Value>,
    /// Free-form; ignored.
    pub links: Option<serde_json::Value>,
}

/// PurchaseUserLicense's request document.
#[derive(Debug, Serialize, ToSchema)]
#[serde(deny_unknown_fields)]
#[schema(example = json!({"data": {"type": "License", "attributes": {"payment_method":
    "billing"}, "relationships": {"product": {"data": {"id": "41", "type": "Product"}}}}}))]
pub struct PurchaseDocument {
    pub data: PurchaseResource,
}

// ---------------------------------------------------------------------------------------
// Entitlements

/// A service granted on a channel, until when (`null`: no end).
#[derive(Debug, Serialize, ToSchema)]
pub struct Grant {
    #[schema(required = true)]
    pub until: Option<i64>,
}

/// Each service on one channel: granted with its end, or `null`.
#[derive(Debug, Serialize, ToSchema)]
pub struct EntitlementAttributes {
    #[schema(required = true)]
    pub live: Option<Grant>,
    #[schema(required = true)]
    pub npvr: Option<Grant>,
    #[schema(required = true)]
    pub catchup: Option<Grant>,
    #[schema(required = true)]
    pub startover: Option<Grant>,
}

/// The channel an entitlement is of.
#[derive(Debug, Serialize, ToSchema)]
pub struct EntitlementRelationships {
    pub channel: ChannelRelationship,
}

/// What a user may watch on one channel (its id is the channel's).
#[derive(Debug, Serialize, ToSchema)]
pub struct ChannelEntitlement {
    pub id: String,
    #[serde(rename = "type")]
    pub kind: ChannelEntitlementType,
    pub attributes: EntitlementAttributes,
    pub relationships: EntitlementRelationships,
}

/// Whose entitlements, and when they were resolved (unix seconds).
#[derive(Debug, Serialize, ToSchema)]
pub struct EntitlementsMeta {
    pub user: String,
    pub at: i64,
}

/// What a user may watch now, one resource per channel in channel id order.
#[derive(Debug, Serialize, ToSchema)]
#[schema(example = json!({"data": [{"id": "42", "type": "ChannelEntitlement", "attributes":
    {"live": {"until": 1523268698}, "npvr": {"until": 1523268698}, "catchup": {"until":
    1523268698}, "startover": {"until": 1523268698}}, "relationships": {"channel": {"data":
    {"id": "42", "type": "Channel"}}}}], "meta": {"user": "41", "at": 1523268670}}))]
pub struct EntitlementsDocument {
    pub data: Vec<ChannelEntitlement>,
    pub meta: EntitlementsMeta,
}
