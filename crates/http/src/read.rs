//! Request documents read into domain drafts. Every problem is collected with the JSON
//! pointer of the member at fault, so that a client learns all that is wrong at once: the
//! document's structure (400), a client-generated id (403), a resource of the wrong type
//! (409), and member values of the wrong JSON type or unknown members (422). The domain's own
//! rules are checked later, by the use cases, with pointers of the same form.

use actix_web::http::StatusCode;
use licenses_app::Problem;
use licenses_domain::{
    LicenseDefaultsDraft, LicenseDraft, LicenseId, PriceDraft, ProductDraft, ProductId,
    ProductPatch, PurchaseDraft, RenewDraft, Service,
};
use std::collections::HashMap;

use serde_json::value::RawValue;
use serde_json::{Map, Value};

use crate::error::ApiError;

const PRODUCT_ATTRIBUTES: &[&str] = &[
    "title",
    "description",
    "type",
    "is_premium",
    "is_user_visible",
    "is_buyable",
    "auto_grant_on_signup",
    "price_record",
    "license_defaults",
    "irdeto_product_id",
];
const PRODUCT_RELATIONSHIPS: &[&str] = &["live", "npvr", "catchup", "startover"];
const LICENSE_ATTRIBUTES: &[&str] = &[
    "status",
    "start_date",
    "stop_date",
    "order_id",
    "purchase_record",
    "renew_record",
];
const LICENSE_RELATIONSHIPS: &[&str] = &["user", "product"];

/// What is wrong with a request document, by kind.
#[derive(Debug, Default)]
pub struct DocumentProblems {
    found: Vec<(StatusCode, Problem)>,
}

impl DocumentProblems {
    fn push(
        &mut self,
        status: StatusCode,
        at: &str,
        code: &'static str,
        detail: impl Into<String>,
    ) {
        self.found
            .push((status, Problem::new(Some(at.to_owned()), code, detail)));
    }

    fn structure(&mut self, at: &str, detail: impl Into<String>) {
        self.push(StatusCode::BAD_REQUEST, at, "invalid_document", detail);
    }

    fn invalid(&mut self, at: &str, code: &'static str, detail: impl Into<String>) {
        self.push(StatusCode::UNPROCESSABLE_ENTITY, at, code, detail);
    }

    /// A new resource must not bring its own id (403, as JSON:API says for unsupported
    /// client-generated ids).
    fn forbid_client_id(&mut self, r: &Resource<'_>, at: &str, what: &str) {
        if r.id.is_some() {
            self.push(
                StatusCode::FORBIDDEN,
                &format!("{at}/id"),
                "client_generated_id",
                format!("{what} ids are assigned by the service"),
            );
        }
    }

    /// `Ok(value)` if nothing was found; else every problem, answered with the status of the
    /// most basic kind found (400, then 403, 409, 422).
    fn into_result<T>(self, value: T) -> Result<T, ApiError> {
        let order = [
            StatusCode::BAD_REQUEST,
            StatusCode::FORBIDDEN,
            StatusCode::CONFLICT,
            StatusCode::UNPROCESSABLE_ENTITY,
        ];
        match order
            .into_iter()
            .find(|s| self.found.iter().any(|(f, _)| f == s))
        {
            None => Ok(value),
            Some(status) => Err(ApiError::mixed(status, self.found)),
        }
    }
}

/// The document's shape, as every reader checks it: an object, with primary data.
const NOT_A_DOCUMENT: &str = "a request document is a JSON object with a data member";
const NO_DATA: &str = "the document has no data member";

/// Parses the body as JSON (400 when it is not).
fn parse<'a, T: serde::Deserialize<'a>>(body: &'a [u8]) -> Result<T, ApiError> {
    serde_json::from_slice(body).map_err(|e| {
        ApiError::new(
            StatusCode::BAD_REQUEST,
            "invalid_json",
            format!(
                "the body is not valid JSON (line {}, column {})",
                e.line(),
                e.column()
            ),
        )
    })
}

/// A batch document's items, each still as its JSON text, for [`batch_items`].
type Items<'a> = Vec<&'a RawValue>;

/// The items of a batch document (`{"data": [item, …]}`), checked as JSON but each left as
/// its text: a batch is read item by item, so that only one item's tree is in memory at a
/// time, not all of a 10,000-item batch (about 5 KB a license as a `Value`).
fn batch_items<'a>(body: &'a [u8], p: &mut DocumentProblems) -> Result<Items<'a>, ApiError> {
    let doc: &RawValue = parse(body)?;
    let Ok(members) = serde_json::from_str::<HashMap<String, &RawValue>>(doc.get()) else {
        // JSON, but not an object.
        p.structure("", NOT_A_DOCUMENT);
        return Ok(Vec::new());
    };
    let Some(data) = members.get("data") else {
        p.structure("/data", NO_DATA);
        return Ok(Vec::new());
    };
    match serde_json::from_str::<Items<'a>>(data.get()) {
        Ok(items) => Ok(items),
        Err(_) => {
            p.structure("/data", "a batch's data is an array of resource objects");
            Ok(Vec::new())
        }
    }
}

/// One item of [`batch_items`] as a tree (it was checked as JSON with the document).
fn item(raw: &RawValue) -> Value {
    serde_json::from_str(raw.get()).unwrap_or(Value::Null)
}

/// The document's primary data, which must be present.
fn primary_data<'a>(doc: &'a Value, p: &mut DocumentProblems) -> Option<&'a Value> {
    let Some(obj) = doc.as_object() else {
        p.structure("", NOT_A_DOCUMENT);
        return None;
    };
    let data = obj.get("data");
    if data.is_none() {
        p.structure("/data", NO_DATA);
    }
    data
}

/// The members of a resource object.
struct Resource<'a> {
    id: Option<&'a str>,
    attributes: Option<&'a Map<String, Value>>,
    relationships: Option<&'a Map<String, Value>>,
}

fn resource<'a>(
    v: &'a Value,
    at: &str,
    kind: &str,
    p: &mut DocumentProblems,
) -> Option<Resource<'a>> {
    let Some(obj) = v.as_object() else {
        p.structure(at, format!("a {kind} resource object is expected here"));
        return None;
    };
    match obj.get("type") {
        None => p.structure(&format!("{at}/type"), "a resource object needs its type"),
        Some(Value::String(t)) if t == kind => {}
        Some(Value::String(t)) => p.push(
            StatusCode::CONFLICT,
            &format!("{at}/type"),
            "wrong_resource_type",
            format!("expected a {kind}, not a {t}"),
        ),
        Some(_) => p.structure(&format!("{at}/type"), "the type is a string"),
    }
    for name in obj.keys() {
        if !["type", "id", "attributes", "relationships", "meta", "links"].contains(&name.as_str())
        {
            p.structure(
                &format!("{at}/{}", escape(name)),
                format!("a resource object has no member {name:?}"),
            );
        }
    }
    let id = match obj.get("id") {
        None => None,
        Some(Value::String(id)) => Some(id.as_str()),
        Some(_) => {
            p.structure(&format!("{at}/id"), "an id is a string");
            None
        }
    };
    let mut member_object = |name: &str| match obj.get(name) {
        None => None,
        Some(Value::Object(m)) => Some(m),
        Some(_) => {
            p.structure(&format!("{at}/{name}"), format!("{name} is an object"));
            None
        }
    };
    let attributes = member_object("attributes");
    let relationships = member_object("relationships");
    Some(Resource {
        id,
        attributes,
        relationships,
    })
}

/// A member that may be absent, null or present.
enum Member<'a> {
    Absent,
    Null,
    Present(&'a Value),
}

fn member<'a>(map: Option<&'a Map<String, Value>>, name: &str) -> Member<'a> {
    match map.and_then(|m| m.get(name)) {
        None => Member::Absent,
        Some(Value::Null) => Member::Null,
        Some(v) => Member::Present(v),
    }
}

/// Reads a typed member: `None` when absent, `Some(None)` when null, `Some(Some(v))` when
/// present and of the right JSON type (else a 422 `invalid_type` problem and `None`).
fn typed<'a, T>(
    map: Option<&'a Map<String, Value>>,
    name: &str,
    at: &str,
    what: &str,
    p: &mut DocumentProblems,
    get: impl FnOnce(&'a Value) -> Option<T>,
) -> Option<Option<T>> {
    match member(map, name) {
        Member::Absent => None,
        Member::Null => Some(None),
        Member::Present(v) => match get(v) {
            Some(t) => Some(Some(t)),
            None => {
                p.invalid(
                    &format!("{at}/{name}"),
                    "invalid_type",
                    format!("{name} must be {what}"),
                );
                None
            }
        },
    }
}

fn string(
    m: Option<&Map<String, Value>>,
    name: &str,
    at: &str,
    p: &mut DocumentProblems,
) -> Option<Option<String>> {
    typed(m, name, at, "a string", p, |v| {
        v.as_str().map(str::to_owned)
    })
}

fn integer(
    m: Option<&Map<String, Value>>,
    name: &str,
    at: &str,
    p: &mut DocumentProblems,
) -> Option<Option<i64>> {
    typed(m, name, at, "an integer", p, Value::as_i64)
}

fn boolean(
    m: Option<&Map<String, Value>>,
    name: &str,
    at: &str,
    p: &mut DocumentProblems,
) -> Option<Option<bool>> {
    typed(m, name, at, "true or false", p, Value::as_bool)
}

fn object<'a>(
    m: Option<&'a Map<String, Value>>,
    name: &str,
    at: &str,
    p: &mut DocumentProblems,
) -> Option<Option<&'a Map<String, Value>>> {
    typed(m, name, at, "an object", p, Value::as_object)
}

/// Reports every member of `map` not in `known`.
fn only_known(
    map: Option<&Map<String, Value>>,
    known: &[&str],
    at: &str,
    code: &'static str,
    p: &mut DocumentProblems,
) {
    for name in map.into_iter().flat_map(|m| m.keys()) {
        if !known.contains(&name.as_str()) {
            p.invalid(
                &format!("{at}/{}", escape(name)),
                code,
                format!("{name:?} is not a member here; known: {}", known.join(", ")),
            );
        }
    }
}

/// Escapes a member name for a JSON pointer (RFC 6901).
fn escape(name: &str) -> String {
    name.replace('~', "~0").replace('/', "~1")
}

/// The `data` member of relationship `name` and its pointer: `None` when the relationship is
/// absent, or (reported) when it is not an object with `data`.
fn relationship_data<'a>(
    rels: Option<&'a Map<String, Value>>,
    name: &str,
    at: &str,
    p: &mut DocumentProblems,
) -> Option<(&'a Value, String)> {
    let at = format!("{at}/{name}");
    let rel = match member(rels, name) {
        Member::Absent => return None,
        Member::Null => {
            p.structure(&at, "a relationship is an object with a data member");
            return None;
        }
        Member::Present(v) => v,
    };
    if let Some(members) = rel.as_object() {
        for name in members.keys() {
            if !["data", "meta", "links"].contains(&name.as_str()) {
                p.structure(
                    &format!("{at}/{}", escape(name)),
                    format!("a relationship object has no member {name:?}"),
                );
            }
        }
    }
    let data_at = format!("{at}/data");
    match rel.get("data") {
        Some(data) => Some((data, data_at)),
        None => {
            p.structure(&data_at, "a relationship needs its data");
            None
        }
    }
}

/// Reports the members a resource identifier object cannot have (it has `type`, `id` and
/// maybe `meta`; [`resource`] reports the members no resource object has).
fn only_identifier_members(v: &Value, at: &str, p: &mut DocumentProblems) {
    for name in ["attributes", "relationships", "links"] {
        if v.get(name).is_some() {
            p.structure(
                &format!("{at}/{name}"),
                format!("a resource identifier has no member {name:?}"),
            );
        }
    }
}

/// The id of a resource identifier `{"type": kind, "id": …}` at `at`.
fn identifier_id(v: &Value, at: &str, kind: &str, p: &mut DocumentProblems) -> Option<String> {
    let identifier = resource(v, at, kind, p)?;
    only_identifier_members(v, at, p);
    if identifier.id.is_none() {
        p.structure(&format!("{at}/id"), format!("the {kind} needs its id"));
    }
    identifier.id.map(str::to_owned)
}

/// The id of a to-one relationship `{"data": {"type": kind, "id": …}}`.
fn to_one(
    rels: Option<&Map<String, Value>>,
    name: &str,
    kind: &str,
    at: &str,
    p: &mut DocumentProblems,
) -> Option<String> {
    let (data, data_at) = relationship_data(rels, name, at, p)?;
    identifier_id(data, &data_at, kind, p)
}

/// The ids of a to-many relationship `{"data": [{"type": kind, "id": …}, …]}`.
fn to_many(
    rels: Option<&Map<String, Value>>,
    name: &str,
    kind: &str,
    at: &str,
    p: &mut DocumentProblems,
) -> Option<Vec<String>> {
    let (data, data_at) = relationship_data(rels, name, at, p)?;
    let Value::Array(items) = data else {
        p.structure(
            &data_at,
            format!("{name} is a to-many relationship: its data is an array"),
        );
        return None;
    };
    Some(
        items
            .iter()
            .enumerate()
            .filter_map(|(i, item)| identifier_id(item, &format!("{data_at}/{i}"), kind, p))
            .collect(),
    )
}

fn price(
    attrs: Option<&Map<String, Value>>,
    at: &str,
    p: &mut DocumentProblems,
) -> Option<Option<PriceDraft>> {
    object(attrs, "price_record", at, p).map(|o| {
        o.map(|m| {
            let at = format!("{at}/price_record");
            only_known(
                Some(m),
                &["amount", "currency"],
                &at,
                "unknown_attribute",
                p,
            );
            PriceDraft {
                amount: integer(Some(m), "amount", &at, p).flatten(),
                currency: string(Some(m), "currency", &at, p).flatten(),
            }
        })
    })
}

fn license_defaults(
    attrs: Option<&Map<String, Value>>,
    at: &str,
    p: &mut DocumentProblems,
) -> Option<LicenseDefaultsDraft> {
    object(attrs, "license_defaults", at, p).flatten().map(|m| {
        let at = format!("{at}/license_defaults");
        only_known(
            Some(m),
            &["duration", "auto_renew"],
            &at,
            "unknown_attribute",
            p,
        );
        LicenseDefaultsDraft {
            duration: integer(Some(m), "duration", &at, p).flatten(),
            auto_renew: boolean(Some(m), "auto_renew", &at, p).flatten(),
        }
    })
}

/// The members of a product document, as a patch: absent members are `None`.
fn product_members(r: &Resource<'_>, p: &mut DocumentProblems) -> ProductPatch {
    let attrs = r.attributes;
    let at = "/data/attributes";
    only_known(attrs, PRODUCT_ATTRIBUTES, at, "unknown_attribute", p);
    only_known(
        r.relationships,
        PRODUCT_RELATIONSHIPS,
        "/data/relationships",
        "unknown_relationship",
        p,
    );
    let rels = r.relationships;
    ProductPatch {
        title: string(attrs, "title", at, p).flatten(),
        description: string(attrs, "description", at, p).flatten(),
        product_type: string(attrs, "type", at, p).flatten(),
        is_premium: boolean(attrs, "is_premium", at, p).flatten(),
        is_user_visible: boolean(attrs, "is_user_visible", at, p).flatten(),
        is_buyable: boolean(attrs, "is_buyable", at, p).flatten(),
        auto_grant_on_signup: boolean(attrs, "auto_grant_on_signup", at, p).flatten(),
        price_record: price(attrs, at, p),
        license_defaults: license_defaults(attrs, at, p),
        irdeto_product_id: string(attrs, "irdeto_product_id", at, p),
        channels: Service::ALL
            .map(|s| to_many(rels, s.as_str(), "Channel", "/data/relationships", p)),
    }
}

/// CreateProduct's document.
pub fn read_product_create(body: &[u8]) -> Result<ProductDraft, ApiError> {
    let doc: Value = parse(body)?;
    let mut p = DocumentProblems::default();
    let mut draft = ProductDraft::default();
    if let Some(r) =
        primary_data(&doc, &mut p).and_then(|d| resource(d, "/data", "Product", &mut p))
    {
        p.forbid_client_id(&r, "/data", "product");
        let m = product_members(&r, &mut p);
        draft = ProductDraft {
            title: m.title,
            description: m.description,
            product_type: m.product_type,
            is_premium: m.is_premium,
            is_user_visible: m.is_user_visible,
            is_buyable: m.is_buyable,
            auto_grant_on_signup: m.auto_grant_on_signup,
            price_record: m.price_record.flatten(),
            license_defaults: m.license_defaults,
            irdeto_product_id: m.irdeto_product_id.flatten(),
            channels: m.channels.map(Option::unwrap_or_default),
        };
    }
    p.into_result(draft)
}

/// UpdateProduct's document, whose `id` must be the one of the path (409 otherwise).
pub fn read_product_patch(body: &[u8], id: &ProductId) -> Result<ProductPatch, ApiError> {
    let doc: Value = parse(body)?;
    let mut p = DocumentProblems::default();
    let mut patch = ProductPatch::default();
    if let Some(r) =
        primary_data(&doc, &mut p).and_then(|d| resource(d, "/data", "Product", &mut p))
    {
        match r.id {
            None => p.structure("/data/id", "an update names the product's id"),
            Some(given) if given != id.as_str() => p.push(
                StatusCode::CONFLICT,
                "/data/id",
                "id_mismatch",
                "the document's id is not the id of the URL",
            ),
            Some(_) => {}
        }
        patch = product_members(&r, &mut p);
    }
    p.into_result(patch)
}

fn license_draft(v: &Value, base: &str, p: &mut DocumentProblems) -> LicenseDraft {
    let Some(r) = resource(v, base, "License", p) else {
        return LicenseDraft::default();
    };
    p.forbid_client_id(&r, base, "license");
    let at = format!("{base}/attributes");
    let attrs = r.attributes;
    only_known(attrs, LICENSE_ATTRIBUTES, &at, "unknown_attribute", p);
    let rels_at = format!("{base}/relationships");
    only_known(
        r.relationships,
        LICENSE_RELATIONSHIPS,
        &rels_at,
        "unknown_relationship",
        p,
    );

    let purchase_record = object(attrs, "purchase_record", &at, p).flatten().map(|m| {
        let at = format!("{at}/purchase_record");
        only_known(
            Some(m),
            &[
                "price_currency_amount",
                "price_currency_iso4217",
                "purchase_timestamp",
                "payment_method",
            ],
            &at,
            "unknown_attribute",
            p,
        );
        PurchaseDraft {
            price_currency_amount: integer(Some(m), "price_currency_amount", &at, p).flatten(),
            price_currency_iso4217: string(Some(m), "price_currency_iso4217", &at, p).flatten(),
            purchase_timestamp: integer(Some(m), "purchase_timestamp", &at, p).flatten(),
            payment_method: string(Some(m), "payment_method", &at, p).flatten(),
        }
    });
    let renew_record = object(attrs, "renew_record", &at, p).flatten().map(|m| {
        let at = format!("{at}/renew_record");
        only_known(
            Some(m),
            &["recurring", "expiry_date"],
            &at,
            "unknown_attribute",
            p,
        );
        RenewDraft {
            recurring: boolean(Some(m), "recurring", &at, p).flatten(),
            expiry_date: integer(Some(m), "expiry_date", &at, p).flatten(),
        }
    });
    LicenseDraft {
        user: to_one(r.relationships, "user", "User", &rels_at, p),
        product: to_one(r.relationships, "product", "Product", &rels_at, p),
        status: string(attrs, "status", &at, p).flatten(),
        start_date: integer(attrs, "start_date", &at, p).flatten(),
        stop_date: integer(attrs, "stop_date", &at, p).flatten(),
        order_id: string(attrs, "order_id", &at, p).flatten(),
        purchase_record,
        renew_record,
    }
}

/// CreateLicense's document.
pub fn read_license_create(body: &[u8]) -> Result<LicenseDraft, ApiError> {
    let doc: Value = parse(body)?;
    let mut p = DocumentProblems::default();
    let draft = primary_data(&doc, &mut p)
        .map(|d| license_draft(d, "/data", &mut p))
        .unwrap_or_default();
    p.into_result(draft)
}

/// BatchCreateLicenses' document: `{"data": [license, …]}`.
pub fn read_license_batch(body: &[u8]) -> Result<Vec<LicenseDraft>, ApiError> {
    let mut p = DocumentProblems::default();
    let items = batch_items(body, &mut p)?;
    let drafts = items
        .iter()
        .enumerate()
        .map(|(i, raw)| license_draft(&item(raw), &format!("/data/{i}"), &mut p))
        .collect();
    p.into_result(drafts)
}

/// BatchDeleteLicenses' document: `{"data": [{"type": "License", "id": …}, …]}`.
pub fn read_batch_delete(body: &[u8]) -> Result<Vec<LicenseId>, ApiError> {
    let mut p = DocumentProblems::default();
    let items = batch_items(body, &mut p)?;
    let mut ids = Vec::with_capacity(items.len());
    for (i, raw) in items.iter().enumerate() {
        let at = format!("/data/{i}");
        let v = item(raw);
        let Some(r) = resource(&v, &at, "License", &mut p) else {
            continue;
        };
        only_identifier_members(&v, &at, &mut p);
        match r.id.map(LicenseId::parse) {
            None => p.structure(&format!("{at}/id"), "each license is named by its id"),
            Some(Err(e)) => p.invalid(&format!("{at}/id"), "invalid_id", format!("license id {e}")),
            Some(Ok(id)) => ids.push(id),
        }
    }
    p.into_result(ids)
}

/// PurchaseUserLicense's document, read into its members: the product, `payment_method` and
/// `order_id` (the user is the path's).
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub struct PurchaseDocument {
    pub product: Option<String>,
    pub payment_method: Option<String>,
    pub order_id: Option<String>,
}

/// PurchaseUserLicense's document.
pub fn read_purchase(body: &[u8]) -> Result<PurchaseDocument, ApiError> {
    let doc: Value = parse(body)?;
    let mut p = DocumentProblems::default();
    let mut out = PurchaseDocument::default();
    if let Some(r) =
        primary_data(&doc, &mut p).and_then(|d| resource(d, "/data", "License", &mut p))
    {
        p.forbid_client_id(&r, "/data", "license");
        let at = "/data/attributes";
        only_known(
            r.attributes,
            &["payment_method", "order_id"],
            at,
            "unknown_attribute",
            &mut p,
        );
        only_known(
            r.relationships,
            &["product"],
            "/data/relationships",
            "unknown_relationship",
            &mut p,
        );
        out = PurchaseDocument {
            product: to_one(
                r.relationships,
                "product",
                "Product",
                "/data/relationships",
                &mut p,
            ),
            payment_method: string(r.attributes, "payment_method", at, &mut p).flatten(),
            order_id: string(r.attributes, "order_id", at, &mut p).flatten(),
        };
    }
    p.into_result(out)
}

#[cfg(test)]
mod tests {
    use serde_json::json;

    use super::*;

    fn errors(e: &ApiError) -> Vec<(String, &'static str)> {
        e.errors()
            .iter()
            .map(|o| {
                let at = match &o.source {
                    Some(crate::error::Source::Pointer(p)) => p.clone(),
                    _ => String::new(),
                };
                (at, o.code)
            })
            .collect()
    }

    fn bytes(v: serde_json::Value) -> Vec<u8> {
        serde_json::to_vec(&v).expect("json")
    }

    #[test]
    fn a_seed_shaped_product_document_reads_into_a_draft() {
        let doc = json!({"data": {"type": "Product", "attributes": {
            "title": "Sport", "description": "All sports", "type": "CHANNEL_GROUP", "is_premium": true,
            "price_record": {"amount": 999, "currency": "EUR"}, "license_defaults": {"duration": 3600, "auto_renew": true},
            "irdeto_product_id": "IRD-1"},
            "relationships": {"live": {"data": [{"type": "Channel", "id": "42"}]}, "npvr": {"data": []}}}});
        let d = read_product_create(&bytes(doc)).expect("valid");
        assert_eq!(d.title.as_deref(), Some("Sport"));
        assert_eq!(
            d.price_record,
            Some(PriceDraft {
                amount: Some(999),
                currency: Some("EUR".into())
            })
        );
        assert_eq!(d.channels[0], ["42"]);
        assert!(d.channels[1].is_empty());
        assert_eq!(d.irdeto_product_id.as_deref(), Some("IRD-1"));
    }

    #[test]
    fn malformed_json_is_400() {
        let e = read_product_create(b"{\"data\": ").expect_err("bad");
        assert_eq!(e.status(), StatusCode::BAD_REQUEST);
        assert_eq!(e.errors()[0].code, "invalid_json");
    }

    #[test]
    fn wrong_value_types_and_unknown_members_are_422_with_pointers() {
        let doc = json!({"data": {"type": "License",
            "attributes": {"start_date": "yesterday", "strat_date": 1, "purchase_record": {"price_currency_amount": 1.5}},
            "relationships": {"user": {"data": {"type": "User", "id": "41"}}, "owner": {}}}});
        let e = read_license_create(&bytes(doc)).expect_err("bad");
        assert_eq!(e.status(), StatusCode::UNPROCESSABLE_ENTITY);
        assert_eq!(
            errors(&e),
            [
                (
                    "/data/attributes/strat_date".to_owned(),
                    "unknown_attribute"
                ),
                (
                    "/data/relationships/owner".to_owned(),
                    "unknown_relationship"
                ),
                (
                    "/data/attributes/purchase_record/price_currency_amount".to_owned(),
                    "invalid_type"
                ),
                ("/data/attributes/start_date".to_owned(), "invalid_type"),
            ]
        );
    }

    #[test]
    fn structure_problems_are_400_and_wrong_types_409() {
        let e = read_license_create(&bytes(json!({"meta": {}}))).expect_err("no data");
        assert_eq!(
            (e.status(), errors(&e)),
            (
                StatusCode::BAD_REQUEST,
                vec![("/data".to_owned(), "invalid_document")]
            )
        );
        let e =
            read_license_create(&bytes(json!({"data": {"type": "Product"}}))).expect_err("type");
        assert_eq!(
            (e.status(), errors(&e)),
            (
                StatusCode::CONFLICT,
                vec![("/data/type".to_owned(), "wrong_resource_type")]
            )
        );
        let e = read_license_create(&bytes(json!({"data": {"type": "License", "id": "x"}})))
            .expect_err("id");
        assert_eq!(e.status(), StatusCode::FORBIDDEN);
    }

    #[test]
    fn batch_items_are_located_by_index() {
        let good = json!({"type": "License", "relationships": {
            "user": {"data": {"type": "User", "id": "u"}}, "product": {"data": {"type": "Product", "id": "p"}}}});
        let bad = json!({"type": "License", "attributes": {"stop_date": true}});
        let e = read_license_batch(&bytes(json!({"data": [good.clone(), good, bad]})))
            .expect_err("bad");
        assert_eq!(
            errors(&e),
            [("/data/2/attributes/stop_date".to_owned(), "invalid_type")]
        );
        let e = read_license_batch(&bytes(json!({"data": {}}))).expect_err("not array");
        assert_eq!(e.status(), StatusCode::BAD_REQUEST);
    }

    #[test]
    fn a_batch_is_read_item_by_item_with_the_same_answers_as_one_tree() {
        // The document's shape, whatever the items, as for every other document.
        for (body, at, code) in [
            (&b"[]"[..], "", "invalid_document"),
            (b"null", "", "invalid_document"),
            (b"{\"meta\": {}}", "/data", "invalid_document"),
            (b"{\"data\": null}", "/data", "invalid_document"),
            (b"{\"data\": \"x\"}", "/data", "invalid_document"),
            (b"{\"data\": [1, 2", "", "invalid_json"),
            (b"{\"data\": []} x", "", "invalid_json"),
        ] {
            for e in [
                read_license_batch(body).expect_err("refused"),
                read_batch_delete(body).expect_err("refused"),
            ] {
                assert_eq!(e.status(), StatusCode::BAD_REQUEST, "{body:?}");
                let found = errors(&e);
                let want = if code == "invalid_json" {
                    // Where the JSON breaks is in the detail; there is no pointer.
                    vec![(String::new(), code)]
                } else {
                    vec![(at.to_owned(), code)]
                };
                assert_eq!(found, want, "{}", String::from_utf8_lossy(body));
            }
        }
        // Items that are not resource objects, and escapes and nesting inside items.
        let e = read_license_batch(br#"{"data": [7, {"type": "License", "attributes": {"order_id": "a\"b"}, "relationships": {"user": {"data": {"type": "User", "id": "u\u00e9"}}, "product": {"data": {"type": "Product", "id": "p"}}}}]}"#)
            .expect_err("item 0");
        assert_eq!(e.status(), StatusCode::BAD_REQUEST);
        assert_eq!(errors(&e)[0].0, "/data/0");
        let drafts = read_license_batch(br#"{"data": [{"type": "License", "attributes": {"order_id": "a\"b"}, "relationships": {"user": {"data": {"type": "User", "id": "u\u00e9"}}, "product": {"data": {"type": "Product", "id": "p"}}}}], "meta": {"x": [1]}}"#)
            .expect("valid");
        assert_eq!(drafts.len(), 1);
        assert_eq!(drafts[0].order_id.as_deref(), Some("a\"b"));
        assert_eq!(drafts[0].user.as_deref(), Some("u\u{e9}"));
    }

    #[test]
    fn a_patch_must_name_the_product_of_the_url() {
        let id = ProductId::parse("41").expect("id");
        let ok =
            json!({"data": {"type": "Product", "id": "41", "attributes": {"price_record": null}}});
        let patch = read_product_patch(&bytes(ok), &id).expect("valid");
        assert_eq!(patch.price_record, Some(None));
        assert_eq!(patch.title, None);
        let other = json!({"data": {"type": "Product", "id": "42"}});
        assert_eq!(
            read_product_patch(&bytes(other), &id).map_err(|e| e.status()),
            Err(StatusCode::CONFLICT)
        );
    }

    #[test]
    fn a_purchase_names_product_and_payment_and_nothing_else() {
        let doc = json!({"data": {"type": "License", "attributes": {"payment_method": "billing", "order_id": "o-1"},
            "relationships": {"product": {"data": {"type": "Product", "id": "41"}}}}});
        let p = read_purchase(&bytes(doc)).expect("valid");
        assert_eq!(
            (
                p.product.as_deref(),
                p.payment_method.as_deref(),
                p.order_id.as_deref()
            ),
            (Some("41"), Some("billing"), Some("o-1"))
        );
        let doc = json!({"data": {"type": "License", "attributes": {"status": "ACTIVE"},
            "relationships": {"user": {"data": {"type": "User", "id": "1"}}}}});
        let e = read_purchase(&bytes(doc)).expect_err("bad");
        assert_eq!(
            errors(&e),
            [
                ("/data/attributes/status".to_owned(), "unknown_attribute"),
                (
                    "/data/relationships/user".to_owned(),
                    "unknown_relationship"
                )
            ]
        );
    }

    #[test]
    fn relationships_and_identifiers_have_only_their_own_members() {
        let e = read_license_create(&bytes(
            json!({"data": {"type": "License", "relationships": {
            "user": {"data": {"type": "User", "id": "41"}, "x": {}},
            "product": {"data": {"type": "Product", "id": "41", "attributes": {}}}}}}),
        ))
        .expect_err("extra members");
        assert_eq!(e.status(), StatusCode::BAD_REQUEST);
        assert_eq!(
            errors(&e),
            [
                ("/data/relationships/user/x".to_owned(), "invalid_document"),
                (
                    "/data/relationships/product/data/attributes".to_owned(),
                    "invalid_document"
                ),
            ]
        );
        let e = read_batch_delete(&bytes(
            json!({"data": [{"type": "License", "id": "1", "links": {}}]}),
        ))
        .expect_err("links");
        assert_eq!(
            errors(&e),
            [("/data/0/links".to_owned(), "invalid_document")]
        );
        // meta and links are a relationship's own members, meta an identifier's.
        assert!(
            read_license_create(&bytes(
                json!({"data": {"type": "License", "relationships": {
                "user": {"data": {"type": "User", "id": "41", "meta": {}}, "meta": {}, "links": {}},
                "product": {"data": {"type": "Product", "id": "41"}}}}})
            ))
            .is_ok()
        );
    }

    #[test]
    fn batch_delete_reads_ids() {
        let doc = json!({"data": [{"type": "License", "id": "a"}, {"type": "License"}, {"type": "License", "id": ""}]});
        let e = read_batch_delete(&bytes(doc)).expect_err("bad");
        assert_eq!(
            errors(&e),
            [
                ("/data/1/id".to_owned(), "invalid_document"),
                ("/data/2/id".to_owned(), "invalid_id")
            ]
        );
        let ids = read_batch_delete(&bytes(json!({"data": [{"type": "License", "id": "a"}]})))
            .expect("ok");
        assert_eq!(ids[0].as_str(), "a");
    }
}
