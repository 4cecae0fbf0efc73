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

// ---------------------------------------------------------------------------------------
// The documents and the server agree both ways

/// A value as a test names it: at most 40 characters.
fn short(value: &Value) -> String {
    value.to_string().chars().take(40).collect()
}

/// `{"type": ["integer", "null"], …}` as `{"anyOf": [{"type": "integer"}, {"type": "null"}],
/// …}`, which means the same: jsonschema 0.33 refuses `60.0` against a list of types with
/// `integer` (JSON Schema 2020-12 counts it an integer, and so do `"type": "integer"` alone
/// and schemathesis' own validator).
fn split_type_lists(node: Value) -> Value {
    match node {
        Value::Object(map) => {
            let mut map: serde_json::Map<String, Value> = map
                .into_iter()
                .map(|(k, v)| (k, split_type_lists(v)))
                .collect();
            if let Some(Value::Array(types)) = map.get("type").cloned() {
                map.remove("type");
                let any: Vec<Value> = types
                    .into_iter()
                    .map(|t| serde_json::json!({"type": t}))
                    .collect();
                let mut all = vec![serde_json::json!({"anyOf": any})];
                if let Some(other) = map.remove("allOf") {
                    all.extend(other.as_array().cloned().unwrap_or_default());
                }
                map.insert("allOf".to_owned(), Value::Array(all));
            }
            Value::Object(map)
        }
        Value::Array(items) => Value::Array(items.into_iter().map(split_type_lists).collect()),
        v => v,
    }
}

/// A validator of the schema `name` of `doc`'s components.
fn component_validator(doc: &Value, name: &str) -> jsonschema::Validator {
    let schema = serde_json::json!({
        "$ref": format!("#/schemas/{name}"),
        "schemas": doc["components"]["schemas"].clone(),
    });
    jsonschema::validator_for(&split_type_lists(rewrite_refs(schema)))
        .unwrap_or_else(|e| panic!("{name} compiles: {e}"))
}

/// The schema of the query parameter `name` of `GET path`.
fn parameter_validator(doc: &Value, path: &str, name: &str) -> jsonschema::Validator {
    let parameters = doc["paths"][path]["get"]["parameters"]
        .as_array()
        .expect("parameters");
    let parameter = parameters
        .iter()
        .find(|p| p["name"] == name)
        .unwrap_or_else(|| panic!("{path} has no {name}"));
    jsonschema::validator_for(&parameter["schema"]).expect("the parameter's schema compiles")
}

/// What the server made of one value: accepted (2xx) or refused as bad input (400/422).
/// Anything else (a 500, a 404 where none is possible) fails the test.
fn accepted(status: reqwest::StatusCode, what: &str, body: &str) -> bool {
    match status.as_u16() {
        200..=299 => true,
        400 | 422 => false,
        other => panic!("{what}: {other} is neither acceptance nor refusal: {body}"),
    }
}

/// Tricky values, each given to the published schema and to the service: the schema admits
/// a value exactly when the service accepts it (2xx), and refuses it exactly when the
/// service answers 400 or 422. White space around `filter[status]` items, lengths counted
/// in characters (multi-byte strings at `maxLength`), blank titles, `3.0` for an integer,
/// currencies, unknown top-level members.
#[tokio::test]
async fn the_schemas_and_the_service_agree_on_tricky_values() {
    use serde_json::json;

    let doc = generated(OpenapiApi::Management);
    let app = spawn_app(Backend::Sqlite).await;
    let key = format!("Apikey {}", support::MANAGEMENT_KEY);
    let base = app.management("/api/license/management/v4");
    let post = |path: &str, body: String| {
        app.client
            .post(format!("{base}{path}"))
            .header("Authorization", &key)
            .header("Content-Type", support::jsonapi::JSONAPI)
            .body(body)
            .send()
    };
    let mut checked = 0;
    let mut disagreements = Vec::new();

    // filter[status].
    let path = "/api/license/management/v4/licenses";
    let status_schema = parameter_validator(&doc, path, "filter[status]");
    for value in [
        "ACTIVE",
        "ACTIVE,EXPIRED",
        "SUSPENDEDADMIN,CHECK_INVALID,ORDER_ERROR",
        "ACTIVE, EXPIRED",
        "ACTIVE ,EXPIRED",
        " ACTIVE",
        "ACTIVE ",
        "\tACTIVE",
        "ACTIVE\n",
        "ACTIVE\u{a0}",
        "\u{feff}ACTIVE",
        "\u{3000}ACTIVE",
        "ACTIVE,",
        ",ACTIVE",
        "ACTIVE,,EXPIRED",
        "",
        "active",
        "GONE",
    ] {
        let schema = status_schema.is_valid(&Value::from(value));
        let url = format!(
            "{base}/licenses?{}",
            url::form_urlencoded::Serializer::new(String::new())
                .append_pair("filter[status]", value)
                .finish()
        );
        let r = app
            .client
            .get(&url)
            .header("Authorization", &key)
            .send()
            .await
            .expect("answer");
        let status = r.status();
        let body = r.text().await.unwrap_or_default();
        let server = accepted(status, &format!("filter[status]={value:?}"), &body);
        checked += 1;
        if schema != server {
            disagreements.push(format!(
                "filter[status]={value:?}: schema {schema}, server {status}"
            ));
        }
    }

    // Documents: each variant of a good document, through its schema and its endpoint.
    let channel = json!({"data": [{"type": "Channel", "id": "42"}]});
    let good_product = json!({"data": {"type": "Product",
        "attributes": {"title": "Sport", "type": "CHANNEL_GROUP",
            "price_record": {"amount": 999, "currency": "EUR"},
            "license_defaults": {"duration": 3600}},
        "relationships": {"live": channel}}});
    let r = post("/products", good_product.to_string())
        .await
        .expect("answer");
    assert_eq!(r.status(), 201);
    let product: Value = r.json().await.expect("JSON");
    let product_id = product["data"]["id"].as_str().expect("id").to_owned();
    let good_license = json!({"data": {"type": "License",
        "relationships": {"user": {"data": {"type": "User", "id": "41"}},
            "product": {"data": {"type": "Product", "id": product_id}}}}});

    let set = |doc: &Value, pointer: &str, value: Value| {
        let mut doc = doc.clone();
        let (parent, name) = pointer.rsplit_once('/').expect("a member");
        let parent = if parent.is_empty() {
            &mut doc
        } else {
            doc.pointer_mut(parent)
                .unwrap_or_else(|| panic!("{pointer}"))
        };
        parent[name] = value;
        doc
    };
    let text = |s: String| Value::from(s);
    let long = |c: &str, n: usize| Value::from(c.repeat(n));

    let mut product_cases: Vec<(String, Value)> = Vec::new();
    for title in [
        text("T".into()),
        text(" ".into()),
        text("\t\n".into()),
        text("\u{a0}".into()),
        text("\u{3000}\u{2028}".into()),
        text("\u{85}".into()),
        text("\u{feff}".into()),
        text(" x ".into()),
        text(String::new()),
        long("é", 255),
        long("é", 256),
        long("😀", 255),
        long("😀", 256),
    ] {
        product_cases.push((
            format!("title {title:?}"),
            set(&good_product, "/data/attributes/title", title),
        ));
    }
    for (what, pointer, value) in [
        (
            "description",
            "/data/attributes/description",
            long("ü", 4000),
        ),
        (
            "description",
            "/data/attributes/description",
            long("ü", 4001),
        ),
        (
            "description",
            "/data/attributes/description",
            text(" ".into()),
        ),
        (
            "irdeto",
            "/data/attributes/irdeto_product_id",
            long("ü", 255),
        ),
        (
            "irdeto",
            "/data/attributes/irdeto_product_id",
            long("ü", 256),
        ),
        (
            "irdeto",
            "/data/attributes/irdeto_product_id",
            text(" ".into()),
        ),
        (
            "currency",
            "/data/attributes/price_record/currency",
            text("JPY".into()),
        ),
        (
            "currency",
            "/data/attributes/price_record/currency",
            text("AAA".into()),
        ),
        (
            "currency",
            "/data/attributes/price_record/currency",
            text("eur".into()),
        ),
        ("amount", "/data/attributes/price_record/amount", json!(3)),
        ("amount", "/data/attributes/price_record/amount", json!(3.0)),
        ("amount", "/data/attributes/price_record/amount", json!(3.5)),
        ("amount", "/data/attributes/price_record/amount", json!(-1)),
        (
            "amount",
            "/data/attributes/price_record/amount",
            json!(u64::MAX),
        ),
        (
            "duration",
            "/data/attributes/license_defaults/duration",
            json!(60.0),
        ),
        (
            "duration",
            "/data/attributes/license_defaults/duration",
            json!(0.0),
        ),
        (
            "channel",
            "/data/relationships/live/data/0/id",
            long("ß", 255),
        ),
        (
            "channel",
            "/data/relationships/live/data/0/id",
            long("ß", 256),
        ),
        (
            "channel",
            "/data/relationships/live/data/0/id",
            text("a\u{2028}b".into()),
        ),
        (
            "channel",
            "/data/relationships/live/data/0/id",
            text("a\u{feff}b".into()),
        ),
        ("top level", "/meta", json!({"a": 1})),
        ("top level", "/jsonapi", json!({"version": "1.0"})),
        ("top level", "/links", json!({"self": "/x"})),
        ("top level", "/included", json!([])),
        ("top level", "/foo", json!(1)),
        ("resource", "/data/foo", json!(1)),
        ("attributes", "/data/attributes/foo", json!(1)),
        ("relationships", "/data/relationships/foo", channel.clone()),
        (
            "array for object",
            "/data/attributes/license_defaults",
            json!([null, null]),
        ),
        (
            "array for object",
            "/data/attributes/price_record",
            json!([1, "EUR"]),
        ),
        ("type", "/data/attributes/type", json!("CHANNEL")),
        ("type", "/data/attributes/type", json!("PVR")),
        ("type", "/data/relationships/npvr", channel.clone()),
        ("no channel", "/data/relationships", json!({})),
        (
            "twice",
            "/data/relationships/live/data",
            json!([{"type": "Channel", "id": "7"}, {"type": "Channel", "id": "7"}]),
        ),
    ] {
        product_cases.push((
            format!("{what} {pointer} = {}", short(&value)),
            set(&good_product, pointer, value),
        ));
    }
    let product_schema = component_validator(&doc, "ProductCreateDocument");
    for (what, body) in product_cases {
        let schema = product_schema.is_valid(&body);
        let r = post("/products", body.to_string()).await.expect("answer");
        let status = r.status();
        let server = accepted(status, &what, &r.text().await.unwrap_or_default());
        checked += 1;
        if schema != server {
            disagreements.push(format!("product {what}: schema {schema}, server {status}"));
        }
    }

    let mut license_cases: Vec<(String, Value)> = Vec::new();
    for (i, (what, pointer, value)) in [
        ("user", "/data/relationships/user/data/id", long("é", 255)),
        ("user", "/data/relationships/user/data/id", long("é", 256)),
        (
            "user",
            "/data/relationships/user/data/id",
            text("a b".into()),
        ),
        (
            "user",
            "/data/relationships/user/data/id",
            text("a\u{a0}b".into()),
        ),
        (
            "user",
            "/data/relationships/user/data/id",
            text("a\u{85}b".into()),
        ),
        (
            "user",
            "/data/relationships/user/data/id",
            text("a\u{feff}b".into()),
        ),
        (
            "product",
            "/data/relationships/product/data/id",
            long("é", 65),
        ),
        ("order", "/data/attributes/order_id", long("ü", 255)),
        ("order", "/data/attributes/order_id", long("ü", 256)),
        (
            "start",
            "/data/attributes/start_date",
            json!(1_700_000_000.0),
        ),
        ("start", "/data/attributes/start_date", json!(1.5)),
        (
            "start",
            "/data/attributes/start_date",
            json!(253_402_300_800_i64),
        ),
        (
            "payment",
            "/data/attributes/purchase_record",
            json!({"payment_method": " "}),
        ),
        (
            "payment",
            "/data/attributes/purchase_record",
            json!({"payment_method": "ü".repeat(64)}),
        ),
        (
            "payment",
            "/data/attributes/purchase_record",
            json!({"payment_method": "ü".repeat(65)}),
        ),
        (
            "price",
            "/data/attributes/purchase_record",
            json!({"price_currency_amount": 5.0, "price_currency_iso4217": "EUR"}),
        ),
        (
            "price",
            "/data/attributes/purchase_record",
            json!({"price_currency_iso4217": "XXY"}),
        ),
        (
            "renew",
            "/data/attributes/renew_record",
            json!({"recurring": true, "expiry_date": 1_900_000_000.0}),
        ),
        (
            "price",
            "/data/attributes/purchase_record",
            json!({"price_currency_iso4217": "EUR"}),
        ),
        (
            "price",
            "/data/attributes/purchase_record",
            json!({"price_currency_amount": 5}),
        ),
        (
            "price",
            "/data/attributes/purchase_record",
            json!({"price_currency_amount": null, "price_currency_iso4217": "EUR"}),
        ),
        (
            "price",
            "/data/attributes/purchase_record",
            json!({"price_currency_amount": null, "price_currency_iso4217": null}),
        ),
        (
            "array for object",
            "/data/attributes/renew_record",
            json!([true]),
        ),
        (
            "array for object",
            "/data/relationships/user",
            json!([{"type": "User", "id": "1"}]),
        ),
        ("top level", "/meta", json!(null)),
        ("top level", "/errors", json!([])),
    ]
    .into_iter()
    .enumerate()
    {
        // Each its own user, so that order ids never meet.
        let base = set(
            &good_license,
            "/data/relationships/user/data/id",
            Value::from(format!("agree-{i}")),
        );
        let base = set(&base, "/data/attributes", json!({}));
        license_cases.push((
            format!("{what} {pointer} = {}", short(&value)),
            set(&base, pointer, value),
        ));
    }
    let license_schema = component_validator(&doc, "LicenseCreateDocument");
    for (what, body) in license_cases {
        let schema = license_schema.is_valid(&body);
        let r = post("/licenses", body.to_string()).await.expect("answer");
        let status = r.status();
        let server = accepted(status, &what, &r.text().await.unwrap_or_default());
        checked += 1;
        if schema != server {
            disagreements.push(format!("license {what}: schema {schema}, server {status}"));
        }
    }

    // A license of a product that does not exist: a valid document, and a 404 at its
    // relationship (JSON:API 1.0), documented as such.
    let unknown = set(
        &good_license,
        "/data/relationships/product/data/id",
        Value::from("no-such-product"),
    );
    assert!(license_schema.is_valid(&unknown));
    let r = post("/licenses", unknown.to_string())
        .await
        .expect("answer");
    assert_eq!(r.status(), 404);
    let body: Value = r.json().await.expect("JSON");
    assert_eq!(
        body["errors"][0]["source"]["pointer"],
        "/data/relationships/product"
    );
    assert_eq!(body["errors"][0]["code"], "product_not_found");
    for path in [
        "/api/license/management/v4/licenses",
        "/api/license/management/v4/licenses/batch_create",
    ] {
        assert!(
            doc["paths"][path]["post"]["responses"]["404"].is_object(),
            "{path} documents its 404"
        );
    }
    checked += 1;

    println!("schema and service: {checked} values checked");
    assert!(
        disagreements.is_empty(),
        "the schema and the service disagree ({} of {checked}):\n{}",
        disagreements.len(),
        disagreements.join("\n")
    );
    app.stop().await.expect("stops");
}
