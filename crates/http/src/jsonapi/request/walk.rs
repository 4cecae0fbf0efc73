//! Reading a request document member by member, as a JSON tree, to find every problem with
//! the JSON pointer of the member at fault, so that a client learns all that is wrong at
//! once: the document's structure (400), a client-generated id (403), a resource of the
//! wrong type (409), and member values of the wrong JSON type or unknown members (422). The
//! domain's own rules are checked later, by the use cases, with pointers of the same form.
//!
//! Each document's module ([`super::product`], [`super::license`], [`super::purchase`])
//! walks its own members with these.

use actix_web::http::StatusCode;
use licenses_app::{MAX_BATCH, Problem};
use std::collections::HashMap;

use serde_json::value::RawValue;
use serde_json::{Map, Value};

use crate::jsonapi::ApiError;
use crate::jsonapi::MAX_PROBLEMS;

/// What is wrong with a request document, by kind: the first [`MAX_PROBLEMS`] problems of
/// each status, and how many were found in all (a batch of 10,000 bad items is not kept as
/// 50,000 problems: the answer lists 100 of them).
#[derive(Debug, Default)]
pub struct DocumentProblems {
    found: Vec<(StatusCode, Problem)>,
    /// Every problem found, kept or not.
    total: usize,
    /// Of each status (400, 403, 409, 422), whether one was found.
    seen: [bool; 4],
}

/// The statuses of problems, the most basic first: a document is answered with the first
/// found.
const ORDER: [StatusCode; 4] = [
    StatusCode::BAD_REQUEST,
    StatusCode::FORBIDDEN,
    StatusCode::CONFLICT,
    StatusCode::UNPROCESSABLE_ENTITY,
];

impl DocumentProblems {
    pub(super) fn push(
        &mut self,
        status: StatusCode,
        at: &str,
        code: &'static str,
        detail: impl Into<String>,
    ) {
        self.total += 1;
        let class = ORDER.iter().position(|s| *s == status).unwrap_or(3);
        self.seen[class] = true;
        let kept = self.found.iter().filter(|(s, _)| *s == status).count();
        if kept < MAX_PROBLEMS {
            self.found
                .push((status, Problem::new(Some(at.to_owned()), code, detail)));
        }
    }

    pub(super) fn structure(&mut self, at: &str, detail: impl Into<String>) {
        self.push(StatusCode::BAD_REQUEST, at, "invalid_document", detail);
    }

    pub(super) fn invalid(&mut self, at: &str, code: &'static str, detail: impl Into<String>) {
        self.push(StatusCode::UNPROCESSABLE_ENTITY, at, code, detail);
    }

    /// A new resource must not bring its own id (403, as JSON:API says for unsupported
    /// client-generated ids).
    pub(super) fn forbid_client_id(&mut self, r: &Resource<'_>, at: &str, what: &str) {
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
    pub(super) fn into_result<T>(self, value: T) -> Result<T, ApiError> {
        match ORDER.into_iter().zip(self.seen).find(|(_, seen)| *seen) {
            None => Ok(value),
            Some((status, _)) => Err(ApiError::mixed_of(status, self.found, self.total)),
        }
    }
}

/// The document's shape, as every reader checks it: an object, with primary data.
pub(super) const NOT_A_DOCUMENT: &str = "a request document is a JSON object with a data member";
pub(super) const NO_DATA: &str = "the document has no data member";

/// The members a request document's top level may have (JSON:API 1.0): `data`, and the
/// free-form `meta`, `jsonapi` and `links`.
pub(super) const TOP_LEVEL_MEMBERS: [&str; 4] = ["data", "meta", "jsonapi", "links"];

/// Reports every top-level member a request document cannot have (400, pointer `/name`).
fn only_top_level_members<'a>(names: impl Iterator<Item = &'a String>, p: &mut DocumentProblems) {
    for name in names {
        if !TOP_LEVEL_MEMBERS.contains(&name.as_str()) {
            p.structure(
                &format!("/{}", escape(name)),
                format!(
                    "a request document has no member {name:?}; its members are {}",
                    TOP_LEVEL_MEMBERS.join(", ")
                ),
            );
        }
    }
}

/// Parses the body as JSON (400 when it is not).
pub(super) fn parse<'a, T: serde::Deserialize<'a>>(body: &'a [u8]) -> Result<T, ApiError> {
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
pub(super) type Items<'a> = Vec<&'a RawValue>;

/// The items of a batch document (`{"data": [item, …]}`), checked as JSON but each left as
/// its text: a batch is read item by item, so that only one item's tree is in memory at a
/// time, not all of a 10,000-item batch (about 5 KB a license as a `Value`).
pub(super) fn batch_items<'a>(
    body: &'a [u8],
    p: &mut DocumentProblems,
) -> Result<Items<'a>, ApiError> {
    let doc: &RawValue = parse(body)?;
    let Ok(members) = serde_json::from_str::<HashMap<String, &RawValue>>(doc.get()) else {
        // JSON, but not an object.
        p.structure("", NOT_A_DOCUMENT);
        return Ok(Vec::new());
    };
    let mut names: Vec<&String> = members.keys().collect();
    names.sort_unstable();
    only_top_level_members(names.into_iter(), p);
    let Some(data) = members.get("data") else {
        p.structure("/data", NO_DATA);
        return Ok(Vec::new());
    };
    match serde_json::from_str::<CappedVec<&'a RawValue>>(data.get()) {
        Ok(items) => Ok(items.0),
        Err(e) if e.to_string().contains(TOO_MANY) => Err(batch_too_large()),
        Err(_) => {
            p.structure("/data", "a batch's data is an array of resource objects");
            Ok(Vec::new())
        }
    }
}

/// The one answer to a batch of more than [`MAX_BATCH`] items, found by counting them while
/// reading (the items past the cap are never read).
pub(super) fn batch_too_large() -> ApiError {
    ApiError::pointer(
        StatusCode::UNPROCESSABLE_ENTITY,
        "/data",
        "batch_too_large",
        format!("a batch holds at most {MAX_BATCH} licenses"),
    )
}

/// The message of the error [`CappedVec`] stops reading with.
const TOO_MANY: &str = "licenses-http: more items than a batch holds";

/// A batch's items read up to the cap: at most [`MAX_BATCH`] of them, or an error (its
/// message [`TOO_MANY`]) as soon as one more is there. Read as a sequence, element by
/// element (serde's `SeqAccess`), so that a 16 MiB array of `{}` costs the first 10,001
/// elements, not five million.
pub(super) struct CappedVec<T>(pub(super) Vec<T>);

impl<'de, T: serde::Deserialize<'de>> serde::Deserialize<'de> for CappedVec<T> {
    fn deserialize<D: serde::Deserializer<'de>>(d: D) -> Result<Self, D::Error> {
        struct V<T>(std::marker::PhantomData<T>);
        impl<'de, T: serde::Deserialize<'de>> serde::de::Visitor<'de> for V<T> {
            type Value = CappedVec<T>;
            fn expecting(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
                write!(f, "an array of at most {MAX_BATCH} items")
            }
            fn visit_seq<A: serde::de::SeqAccess<'de>>(
                self,
                mut seq: A,
            ) -> Result<CappedVec<T>, A::Error> {
                let mut items = Vec::with_capacity(seq.size_hint().unwrap_or(0).min(MAX_BATCH));
                while let Some(item) = seq.next_element()? {
                    if items.len() == MAX_BATCH {
                        return Err(serde::de::Error::custom(TOO_MANY));
                    }
                    items.push(item);
                }
                Ok(CappedVec(items))
            }
        }
        d.deserialize_seq(V(std::marker::PhantomData))
    }
}

/// One item of [`batch_items`] as a tree (it was checked as JSON with the document).
pub(super) fn item(raw: &RawValue) -> Value {
    serde_json::from_str(raw.get()).unwrap_or(Value::Null)
}

/// The document's primary data, which must be present.
pub(super) fn primary_data<'a>(doc: &'a Value, p: &mut DocumentProblems) -> Option<&'a Value> {
    let Some(obj) = doc.as_object() else {
        p.structure("", NOT_A_DOCUMENT);
        return None;
    };
    only_top_level_members(obj.keys(), p);
    let data = obj.get("data");
    if data.is_none() {
        p.structure("/data", NO_DATA);
    }
    data
}

/// The members of a resource object.
pub(super) struct Resource<'a> {
    pub(super) id: Option<&'a str>,
    pub(super) attributes: Option<&'a Map<String, Value>>,
    pub(super) relationships: Option<&'a Map<String, Value>>,
}

pub(super) fn resource<'a>(
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
pub(super) enum Member<'a> {
    Absent,
    Null,
    Present(&'a Value),
}

pub(super) fn member<'a>(map: Option<&'a Map<String, Value>>, name: &str) -> Member<'a> {
    match map.and_then(|m| m.get(name)) {
        None => Member::Absent,
        Some(Value::Null) => Member::Null,
        Some(v) => Member::Present(v),
    }
}

/// Reads a typed member: `None` when absent, `Some(None)` when null, `Some(Some(v))` when
/// present and of the right JSON type (else a 422 `invalid_type` problem and `None`).
pub(super) fn typed<'a, T>(
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

pub(super) fn string(
    m: Option<&Map<String, Value>>,
    name: &str,
    at: &str,
    p: &mut DocumentProblems,
) -> Option<Option<String>> {
    typed(m, name, at, "a string", p, |v| {
        v.as_str().map(str::to_owned)
    })
}

pub(super) fn integer(
    m: Option<&Map<String, Value>>,
    name: &str,
    at: &str,
    p: &mut DocumentProblems,
) -> Option<Option<i64>> {
    typed(m, name, at, "an integer", p, as_integer)
}

/// A JSON number that is an integer of `i64`'s range, as JSON Schema's `integer` counts them:
/// `3.0` is the integer 3 (the typed reading refuses it, and the walk then reads it), `3.5`
/// is not.
pub(super) fn as_integer(v: &Value) -> Option<i64> {
    if let Some(i) = v.as_i64() {
        return Some(i);
    }
    if v.is_u64() {
        return None; // beyond i64::MAX
    }
    // 2^63: the first float beyond i64::MAX; every float below it down to -2^63 fits.
    const LIMIT: f64 = 9_223_372_036_854_775_808.0;
    v.as_f64()
        .filter(|f| f.fract() == 0.0 && (-LIMIT..LIMIT).contains(f))
        .map(|f| f as i64)
}

pub(super) fn boolean(
    m: Option<&Map<String, Value>>,
    name: &str,
    at: &str,
    p: &mut DocumentProblems,
) -> Option<Option<bool>> {
    typed(m, name, at, "true or false", p, Value::as_bool)
}

pub(super) fn object<'a>(
    m: Option<&'a Map<String, Value>>,
    name: &str,
    at: &str,
    p: &mut DocumentProblems,
) -> Option<Option<&'a Map<String, Value>>> {
    typed(m, name, at, "an object", p, Value::as_object)
}

/// Reports every member of `map` not in `known`.
pub(super) fn only_known(
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
pub(super) fn escape(name: &str) -> String {
    name.replace('~', "~0").replace('/', "~1")
}

/// The `data` member of relationship `name` and its pointer: `None` when the relationship is
/// absent, or (reported) when it is not an object with `data`.
pub(super) fn relationship_data<'a>(
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
pub(super) fn only_identifier_members(v: &Value, at: &str, p: &mut DocumentProblems) {
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
pub(super) fn identifier_id(
    v: &Value,
    at: &str,
    kind: &str,
    p: &mut DocumentProblems,
) -> Option<String> {
    let identifier = resource(v, at, kind, p)?;
    only_identifier_members(v, at, p);
    if identifier.id.is_none() {
        p.structure(&format!("{at}/id"), format!("the {kind} needs its id"));
    }
    identifier.id.map(str::to_owned)
}

/// The id of a to-one relationship `{"data": {"type": kind, "id": …}}`.
pub(super) fn to_one(
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
pub(super) fn to_many(
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
