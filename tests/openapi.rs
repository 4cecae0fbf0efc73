//! The OpenAPI documents: the committed ones are what the code generates, they describe
//! exactly the routes the router mounts, they are valid OpenAPI 3.1, and the service serves
//! them (and Swagger UI) without credentials.

mod support;

use std::collections::BTreeSet;
use std::sync::LazyLock;

use licenses::cli::{OpenapiApi, openapi_json};
use serde_json::Value;
use support::{Backend, spawn_app};

const APIS: [(OpenapiApi, &str); 2] = [
    (OpenapiApi::User, "user"),
    (OpenapiApi::Management, "management"),
];

fn generated(api: OpenapiApi) -> Value {
    serde_json::from_str(&openapi_json(api)).expect("the generated document is JSON")
}

#[test]
fn the_committed_documents_are_what_the_code_generates() {
    for (api, name) in APIS {
        let path = format!("{}/docs/openapi/{name}.json", env!("CARGO_MANIFEST_DIR"));
        let committed = std::fs::read_to_string(&path).unwrap_or_default();
        assert!(
            committed == openapi_json(api),
            "docs/openapi/{name}.json is not what the code generates; regenerate it with\n\n    \
             cargo run --quiet -- openapi {name} > docs/openapi/{name}.json\n"
        );
    }
}

/// The (method, path) pairs of a document's operations.
fn operations(doc: &Value) -> BTreeSet<(String, String)> {
    let paths = doc["paths"].as_object().expect("paths");
    paths
        .iter()
        .flat_map(|(path, item)| {
            let item = item.as_object().expect("a path item");
            item.keys()
                .filter(|k| {
                    [
                        "get", "put", "post", "delete", "options", "head", "patch", "trace",
                    ]
                    .contains(&k.as_str())
                })
                .map(move |method| (method.to_uppercase(), path.clone()))
        })
        .collect()
}

fn routes(endpoints: Vec<licenses_http::Endpoint>) -> BTreeSet<(String, String)> {
    endpoints
        .into_iter()
        .map(|e| (e.method.as_str().to_owned(), e.path))
        .collect()
}

#[test]
fn each_document_describes_exactly_the_routes_of_its_router() {
    for (api, routes) in [
        (OpenapiApi::User, routes(licenses_api_user::endpoints())),
        (
            OpenapiApi::Management,
            routes(licenses_api_management::endpoints()),
        ),
    ] {
        let documented = operations(&generated(api));
        let undocumented: Vec<_> = routes.difference(&documented).collect();
        let unrouted: Vec<_> = documented.difference(&routes).collect();
        assert!(
            undocumented.is_empty() && unrouted.is_empty(),
            "{api:?}: routes without an operation: {undocumented:?}; operations without a \
             route: {unrouted:?}"
        );
    }
}

/// The OpenAPI 3.1 schema (tests/conformance/openapi-3.1.schema.json).
static OAS_31: LazyLock<jsonschema::Validator> = LazyLock::new(|| {
    let text = include_str!("conformance/openapi-3.1.schema.json");
    let schema: Value = serde_json::from_str(text).expect("the schema is JSON");
    jsonschema::validator_for(&schema).expect("the schema compiles")
});

/// Every `$ref` of `doc` names something `doc` has.
fn dangling_refs(doc: &Value, node: &Value, at: &str, out: &mut Vec<String>) {
    match node {
        Value::Object(map) => {
            for (k, v) in map {
                if k == "$ref"
                    && let Some(target) = v.as_str()
                {
                    let pointer = target.strip_prefix('#').unwrap_or("~not local~");
                    if doc.pointer(pointer).is_none() {
                        out.push(format!("{at}: {target}"));
                    }
                }
                dangling_refs(doc, v, &format!("{at}/{k}"), out);
            }
        }
        Value::Array(items) => {
            for (i, v) in items.iter().enumerate() {
                dangling_refs(doc, v, &format!("{at}/{i}"), out);
            }
        }
        _ => {}
    }
}

#[test]
fn each_document_is_valid_openapi_3_1() {
    for (api, _) in APIS {
        let doc = generated(api);
        assert_eq!(doc["openapi"], "3.1.0", "{api:?}");
        let problems: Vec<String> = OAS_31
            .iter_errors(&doc)
            .map(|e| format!("{e} at {}", e.instance_path))
            .collect();
        assert!(problems.is_empty(), "{api:?}: {problems:#?}");
        let mut dangling = Vec::new();
        dangling_refs(&doc, &doc, "", &mut dangling);
        assert!(dangling.is_empty(), "{api:?}: dangling $ref: {dangling:#?}");
        // Every schema of the document is itself a valid JSON Schema (the 2020-12 dialect of
        // OpenAPI 3.1), with every reference resolved within the document.
        for (name, _) in doc["components"]["schemas"].as_object().expect("schemas") {
            let mut wrapper = doc["components"].clone();
            let schema = serde_json::json!({
                "$ref": format!("#/schemas/{name}"),
                "schemas": wrapper["schemas"].take(),
            });
            let compiled = jsonschema::validator_for(&rewrite_refs(schema));
            assert!(compiled.is_ok(), "{api:?}: schema {name}: {compiled:?}");
        }
    }
}

/// The check above can fail: the schema refuses a document with a parameter in no place, or
/// a response to a status that is none.
#[test]
fn the_openapi_schema_refuses_broken_documents() {
    let doc = generated(OpenapiApi::Management);
    let mut bad_parameter = doc.clone();
    bad_parameter["paths"]["/api/license/management/v4/products/{product_id}"]["get"]["parameters"]
        [0]["in"] = Value::from("body");
    assert!(!OAS_31.is_valid(&bad_parameter));
    let mut bad_status = doc.clone();
    bad_status["paths"]["/api/license/management/v4/products"]["get"]["responses"]["2000"] =
        serde_json::json!({"description": "not a status"});
    assert!(!OAS_31.is_valid(&bad_status));
    assert!(OAS_31.is_valid(&doc));
}

/// `#/components/schemas/X` as `#/schemas/X`, for a schema compiled out of its document.
fn rewrite_refs(node: Value) -> Value {
    match node {
        Value::Object(map) => Value::Object(
            map.into_iter()
                .map(|(k, v)| match (k.as_str(), v) {
                    ("$ref", Value::String(s)) => (
                        k,
                        Value::String(s.replace("#/components/schemas/", "#/schemas/")),
                    ),
                    (_, v) => (k, rewrite_refs(v)),
                })
                .collect(),
        ),
        Value::Array(items) => Value::Array(items.into_iter().map(rewrite_refs).collect()),
        v => v,
    }
}

/// Every security scheme the operations name is declared, and each API has its own.
#[test]
fn each_api_declares_its_security_scheme() {
    let user = generated(OpenapiApi::User);
    let management = generated(OpenapiApi::Management);
    assert_eq!(
        user["components"]["securitySchemes"]["Bearer"],
        serde_json::json!({"type": "http", "scheme": "bearer", "bearerFormat": "JWT",
            "description": user["components"]["securitySchemes"]["Bearer"]["description"]})
    );
    assert_eq!(user["security"], serde_json::json!([{"Bearer": []}]));
    let apikey = &management["components"]["securitySchemes"]["Apikey"];
    assert_eq!(
        (&apikey["type"], &apikey["in"], &apikey["name"]),
        (
            &Value::from("apiKey"),
            &Value::from("header"),
            &Value::from("Authorization")
        )
    );
    assert_eq!(management["security"], serde_json::json!([{"Apikey": []}]));
}

#[tokio::test]
async fn the_service_serves_its_documents_and_docs_without_credentials() {
    let app = spawn_app(Backend::Sqlite).await;
    for (api, base, prefix) in [
        (OpenapiApi::User, app.user_url.clone(), "/api/license/v4"),
        (
            OpenapiApi::Management,
            app.management_url.clone(),
            "/api/license/management/v4",
        ),
    ] {
        let r = app.get(&format!("{base}{prefix}/openapi.json")).await;
        assert_eq!(r.status(), 200, "{api:?}");
        let served: Value = r.json().await.expect("JSON");
        assert_eq!(served, generated(api), "{api:?}");

        // /docs sends the browser to /docs/, whose relative asset URLs then resolve.
        let r = app
            .client
            .get(format!("{base}{prefix}/docs"))
            .send()
            .await
            .expect("GET /docs");
        assert_eq!(r.url().path(), format!("{prefix}/docs/"), "{api:?}");
        assert_eq!(r.status(), 200, "{api:?}");
        let content_type = r.headers()["content-type"]
            .to_str()
            .unwrap_or("")
            .to_owned();
        assert!(content_type.starts_with("text/html"), "{content_type}");
        let page = r.text().await.expect("the page");
        assert!(page.contains("swagger-ui"), "{page}");

        // The page loads its own API's document.
        let r = app
            .get(&format!("{base}{prefix}/docs/swagger-initializer.js"))
            .await;
        assert_eq!(r.status(), 200, "{api:?}");
        let script = r.text().await.expect("the script");
        assert!(
            script.contains(&format!("\"url\": \"{prefix}/openapi.json\"")),
            "{script}"
        );

        // Everything else of the API still asks for credentials, and unknown paths are still
        // JSON:API errors.
        let r = app.get(&format!("{base}{prefix}/products")).await;
        assert_eq!(r.status(), 401, "{api:?}");
        let r = app.get(&format!("{base}{prefix}/docs-nope")).await;
        assert_eq!(
            r.headers()["content-type"],
            "application/vnd.api+json",
            "{api:?}"
        );
    }
    app.stop().await.expect("stops");
}

#[test]
fn the_openapi_command_prints_the_document() {
    for (api, name) in APIS {
        let output = std::process::Command::new(env!("CARGO_BIN_EXE_licenses"))
            .args(["openapi", name])
            .env_remove("APP_ENV")
            .output()
            .expect("licenses runs");
        assert!(output.status.success(), "{name}: {output:?}");
        assert_eq!(String::from_utf8_lossy(&output.stdout), openapi_json(api));
    }
    let help = std::process::Command::new(env!("CARGO_BIN_EXE_licenses"))
        .args(["openapi", "--help"])
        .output()
        .expect("licenses runs");
    let help = String::from_utf8_lossy(&help.stdout);
    assert!(
        help.contains("docs/openapi/user.json") && help.contains("management"),
        "{help}"
    );
}
