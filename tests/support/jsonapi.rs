//! JSON:API helpers of the integration tests: every response document is validated against
//! the JSON:API 1.0 response schema (tests/conformance), and documents are compared in shape
//! with seed 003's examples (tests/fixtures).

use std::sync::LazyLock;

use reqwest::StatusCode;
use reqwest::header::HeaderMap;
use serde_json::Value;

pub const JSONAPI: &str = "application/vnd.api+json";

static SCHEMA: LazyLock<jsonschema::Validator> = LazyLock::new(|| {
    let text = include_str!("../conformance/jsonapi-1.0-response.schema.json");
    let schema: Value = serde_json::from_str(text).expect("the schema is JSON");
    jsonschema::validator_for(&schema).expect("the schema compiles")
});

/// Panics, listing every violation, unless `doc` is a valid JSON:API response document.
pub fn assert_conforms(doc: &Value) {
    let problems: Vec<String> = SCHEMA
        .iter_errors(doc)
        .map(|e| format!("{} at {}", e, e.instance_path))
        .collect();
    assert!(
        problems.is_empty(),
        "not a JSON:API document: {problems:#?}\n{doc:#}"
    );
}

/// A seed example's fixture.
pub fn fixture(name: &str) -> Value {
    let path = format!("{}/tests/fixtures/{name}", env!("CARGO_MANIFEST_DIR"));
    let text = std::fs::read_to_string(&path).unwrap_or_else(|e| panic!("{path}: {e}"));
    serde_json::from_str(&text).unwrap_or_else(|e| panic!("{path}: {e}"))
}

/// Panics unless `ours` has every member `seed` has, at the same place, of the same JSON
/// kind (arrays compared by their first elements; an empty array fits any array: a CHANNEL
/// product has empty npvr lists where the seed's CHANNEL_GROUP has one). `ours` may have
/// more members.
pub fn assert_same_shape(seed: &Value, ours: &Value) {
    fn walk(seed: &Value, ours: &Value, at: &str, missing: &mut Vec<String>) {
        match (seed, ours) {
            (Value::Object(s), Value::Object(o)) => {
                for (k, v) in s {
                    match o.get(k) {
                        Some(ov) => walk(v, ov, &format!("{at}/{k}"), missing),
                        None => missing.push(format!("{at}/{k} is missing")),
                    }
                }
            }
            (Value::Array(s), Value::Array(o)) => {
                if let (Some(sv), Some(ov)) = (s.first(), o.first()) {
                    walk(sv, ov, &format!("{at}/0"), missing);
                }
            }
            (Value::String(_), Value::String(_))
            | (Value::Number(_), Value::Number(_))
            | (Value::Bool(_), Value::Bool(_))
            | (Value::Null, Value::Null) => {}
            (s, o) => missing.push(format!("{at}: the seed has {s}, we have {o}")),
        }
    }
    let mut missing = Vec::new();
    walk(seed, ours, "", &mut missing);
    assert!(
        missing.is_empty(),
        "not in the seed's shape: {missing:#?}\n{ours:#}"
    );
}

/// A response, read whole: status, headers, body bytes and the body as JSON (`Null` when
/// empty). A body is checked to be a JSON:API document with the JSON:API media type.
#[derive(Debug)]
pub struct Reply {
    pub status: StatusCode,
    pub headers: HeaderMap,
    pub bytes: Vec<u8>,
    pub json: Value,
}

impl Reply {
    pub async fn read(response: reqwest::Response) -> Reply {
        let status = response.status();
        let headers = response.headers().clone();
        let bytes = response.bytes().await.expect("a body").to_vec();
        let json = if bytes.is_empty() {
            Value::Null
        } else {
            let json: Value = serde_json::from_slice(&bytes).unwrap_or_else(|e| {
                panic!(
                    "{status}: not JSON ({e}): {}",
                    String::from_utf8_lossy(&bytes)
                )
            });
            assert_conforms(&json);
            assert_eq!(
                headers.get("content-type").and_then(|v| v.to_str().ok()),
                Some(JSONAPI),
                "{status} {json}"
            );
            json
        };
        Reply {
            status,
            headers,
            bytes,
            json,
        }
    }

    /// The `code` of the first error.
    pub fn code(&self) -> &str {
        self.json["errors"][0]["code"].as_str().unwrap_or("")
    }

    /// `(pointer, code)` of every error.
    pub fn problems(&self) -> Vec<(String, String)> {
        self.json["errors"]
            .as_array()
            .into_iter()
            .flatten()
            .map(|e| {
                let at = e["source"]["pointer"]
                    .as_str()
                    .or(e["source"]["parameter"].as_str())
                    .unwrap_or("");
                (at.to_owned(), e["code"].as_str().unwrap_or("").to_owned())
            })
            .collect()
    }

    pub fn header(&self, name: &str) -> Option<&str> {
        self.headers.get(name).and_then(|v| v.to_str().ok())
    }
}
