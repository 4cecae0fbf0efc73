//! The Postman collection and its local environment, generated from the code so that they
//! cannot drift from it (issue 6, after seed 000's LicenseV4 collection):
//! (Over 600 lines: the collection's requests are written out one by one, as a reader of the collection sees them.)
//!
//! - `docs/postman/LicenseV4.postman_collection.json` (collection format v2.1), with the
//!   folders "Helper" (mints a development token), "API spec" (one request per route of the
//!   route tables `licenses_api_user::endpoints()` and `licenses_api_management::endpoints()`)
//!   and "UseCase" (complete flows whose every request asserts the status and the document);
//! - `docs/postman/local.postman_environment.json`, for `cargo run`, with the development
//!   credentials of `licenses::settings`.
//!
//! Each test builds the file and compares it with the committed one;
//! `UPDATE_POSTMAN=1 cargo test -p licenses --test postman` rewrites them. `scripts/newman.sh`
//! runs the collection against a freshly started server.

use std::collections::HashSet;
use std::path::PathBuf;

use actix_web::http::Method;
use licenses::settings::{DEV_MANAGEMENT_KEY, DEV_TOKEN_SECRET};
use licenses_http::Endpoint;
use serde_json::{Value, json};

const COLLECTION: &str = "docs/postman/LicenseV4.postman_collection.json";
const ENVIRONMENT: &str = "docs/postman/local.postman_environment.json";
const SCHEMA: &str = "https://schema.getpostman.com/json/collection/v2.1.0/collection.json";
const JSONAPI: &str = "application/vnd.api+json";

// ---------------------------------------------------------------------------------------------
// The two APIs

#[derive(Debug, Clone, Copy, PartialEq, Eq)]
enum Api {
    User,
    Management,
}

impl Api {
    fn prefix(self) -> &'static str {
        match self {
            Api::User => licenses_api_user::PREFIX,
            Api::Management => licenses_api_management::PREFIX,
        }
    }

    /// The environment variable that holds the API's base URL.
    fn base(self) -> &'static str {
        match self {
            Api::User => "{{user_url}}",
            Api::Management => "{{management_url}}",
        }
    }

    fn authorization(self) -> &'static str {
        match self {
            Api::User => "Bearer {{user_token}}",
            Api::Management => "Apikey {{management_key}}",
        }
    }

    fn endpoints(self) -> Vec<Endpoint> {
        match self {
            Api::User => licenses_api_user::endpoints(),
            Api::Management => licenses_api_management::endpoints(),
        }
    }

    fn name(self) -> &'static str {
        match self {
            Api::User => "User API",
            Api::Management => "Management API",
        }
    }
}

// ---------------------------------------------------------------------------------------------
// Requests

/// One request of the collection, on a route of an API's table.
struct Request {
    name: String,
    description: String,
    api: Api,
    method: Method,
    /// The route's path under the API's prefix, as in the route table (`{name}` segments).
    route: &'static str,
    /// Which variable fills which `{segment}` of the route; a segment not listed is filled by
    /// the variable of its own name (`{user_id}` by `{{user_id}}`).
    segments: Vec<(&'static str, String)>,
    /// Query parameters; the disabled ones are shown in Postman, but not sent.
    query: Vec<(String, String, bool)>,
    idempotency_key: Option<String>,
    body: Option<Value>,
    prerequest: Vec<String>,
    tests: Vec<String>,
}

impl Request {
    fn new(api: Api, method: Method, route: &'static str, name: impl Into<String>) -> Self {
        let full = format!("{}{route}", api.prefix());
        assert!(
            api.endpoints()
                .iter()
                .any(|e| e.method == method && e.path == full),
            "{} has no route {method} {full}: tests/postman.rs must follow the route table",
            api.name()
        );
        Request {
            name: name.into(),
            description: String::new(),
            api,
            method,
            route,
            segments: Vec::new(),
            query: Vec::new(),
            idempotency_key: None,
            body: None,
            prerequest: Vec::new(),
            tests: Vec::new(),
        }
    }

    fn describe(mut self, text: &str) -> Self {
        self.description = text.to_owned();
        self
    }

    fn segment(mut self, name: &'static str, variable: &str) -> Self {
        self.segments.push((name, variable.to_owned()));
        self
    }

    fn query(mut self, key: &str, value: &str) -> Self {
        self.query.push((key.to_owned(), value.to_owned(), false));
        self
    }

    fn optional_query(mut self, key: &str, value: &str) -> Self {
        self.query.push((key.to_owned(), value.to_owned(), true));
        self
    }

    fn idempotency_key(mut self, value: &str) -> Self {
        self.idempotency_key = Some(value.to_owned());
        self
    }

    fn body(mut self, body: Value) -> Self {
        self.body = Some(body);
        self
    }

    fn before(mut self, script: &str) -> Self {
        self.prerequest.extend(lines(script));
        self
    }

    fn test(mut self, script: &str) -> Self {
        self.tests.extend(lines(script));
        self
    }

    /// Asserts the status, and for a document that it is JSON:API; `doc` holds it then.
    fn expect(mut self, status: u16, script: &str) -> Self {
        self.tests.push(format!(
            "pm.test(\"status is {status}\", function () {{ pm.response.to.have.status({status}); }});"
        ));
        if status != 204 {
            self.tests.push(format!(
                "pm.test(\"the answer is a JSON:API document\", function () {{ pm.response.to.have.header(\"Content-Type\", \"{JSONAPI}\"); }});"
            ));
            self.tests
                .push("const doc = pm.response.json();".to_owned());
        } else {
            self.tests.push(
                "pm.test(\"no body\", function () { pm.expect(pm.response.text()).to.eql(\"\"); });"
                    .to_owned(),
            );
        }
        self.test(script)
    }

    fn path(&self) -> String {
        let full = format!("{}{}", self.api.prefix(), self.route);
        full.split('/')
            .map(
                |segment| match segment.strip_prefix('{').and_then(|s| s.strip_suffix('}')) {
                    Some(name) => {
                        let variable = self
                            .segments
                            .iter()
                            .find(|(n, _)| *n == name)
                            .map_or(name, |(_, v)| v.as_str());
                        format!("{{{{{variable}}}}}")
                    }
                    None => segment.to_owned(),
                },
            )
            .collect::<Vec<_>>()
            .join("/")
    }

    fn to_json(&self) -> Value {
        let path = self.path();
        let enabled: Vec<String> = self
            .query
            .iter()
            .filter(|(_, _, disabled)| !disabled)
            .map(|(k, v, _)| format!("{k}={v}"))
            .collect();
        let mut raw = format!("{}{path}", self.api.base());
        if !enabled.is_empty() {
            raw = format!("{raw}?{}", enabled.join("&"));
        }
        let mut url = json!({
            "raw": raw,
            "host": [self.api.base()],
            "path": path.trim_start_matches('/').split('/').collect::<Vec<_>>(),
        });
        if !self.query.is_empty() {
            url["query"] = self
                .query
                .iter()
                .map(|(k, v, disabled)| {
                    let mut q = json!({"key": k, "value": v});
                    if *disabled {
                        q["disabled"] = json!(true);
                    }
                    q
                })
                .collect();
        }
        let mut header = vec![json!({"key": "Authorization", "value": self.api.authorization()})];
        if self.body.is_some() {
            header.push(json!({"key": "Content-Type", "value": JSONAPI}));
        }
        if let Some(key) = &self.idempotency_key {
            header.push(json!({"key": "Idempotency-Key", "value": key}));
        }
        let mut request = json!({
            "method": self.method.as_str(),
            "header": header,
            "url": url,
        });
        if !self.description.is_empty() {
            request["description"] = json!(self.description);
        }
        if let Some(body) = &self.body {
            request["body"] = json!({
                "mode": "raw",
                "raw": serde_json::to_string_pretty(body).expect("a body serialises"),
                "options": {"raw": {"language": "json"}},
            });
        }
        let mut item = json!({"name": self.name, "request": request, "response": []});
        let mut events = Vec::new();
        if !self.prerequest.is_empty() {
            events.push(script("prerequest", &self.prerequest));
        }
        if !self.tests.is_empty() {
            events.push(script("test", &self.tests));
        }
        if !events.is_empty() {
            item["event"] = Value::Array(events);
        }
        item
    }
}

fn lines(script: &str) -> Vec<String> {
    let script = script.strip_prefix('\n').unwrap_or(script);
    let script = script.trim_end();
    if script.is_empty() {
        return Vec::new();
    }
    let indent = script
        .lines()
        .filter(|l| !l.trim().is_empty())
        .map(|l| l.len() - l.trim_start().len())
        .min()
        .unwrap_or(0);
    script
        .lines()
        .map(|l| l.get(indent..).unwrap_or("").trim_end().to_owned())
        .collect()
}

fn script(listen: &str, exec: &[String]) -> Value {
    json!({"listen": listen, "script": {"type": "text/javascript", "exec": exec}})
}

fn folder(name: &str, description: &str, items: Vec<Value>) -> Value {
    json!({"name": name, "description": description, "item": items})
}

// ---------------------------------------------------------------------------------------------
// Example documents, from seed 003 (tests/fixtures)

fn fixture(name: &str) -> Value {
    let path = PathBuf::from(env!("CARGO_MANIFEST_DIR"))
        .join("tests/fixtures")
        .join(name);
    let text = std::fs::read_to_string(&path).unwrap_or_else(|e| panic!("{path:?}: {e}"));
    serde_json::from_str(&text).unwrap_or_else(|e| panic!("{path:?}: {e}"))
}

/// Seed 003's product (a CHANNEL_GROUP with every service on channel 42) as a creation
/// document, with a price and license defaults, titled `title`.
fn seed_product(title: &str) -> Value {
    let seed = fixture("seed003-get-all-products.json");
    let product = &seed["data"][0];
    let mut attributes = product["attributes"].clone();
    attributes["title"] = json!(title);
    attributes["price_record"] = json!({"amount": 999, "currency": "EUR"});
    attributes["license_defaults"] = json!({"duration": 2_592_000, "auto_renew": true});
    json!({"data": {"type": "Product", "attributes": attributes,
        "relationships": product["relationships"]}})
}

/// Seed 003's license of user 41 as a creation document: its status and dates.
fn seed_license(user: &str, product: &str, order_id: &str) -> Value {
    let seed = fixture("seed003-get-user-licenses.json");
    let mut attributes = seed["data"][0]["attributes"].clone();
    attributes["order_id"] = json!(order_id);
    json!({"data": license(user, product, attributes)})
}

fn license(user: &str, product: &str, attributes: Value) -> Value {
    json!({"type": "License", "attributes": attributes, "relationships": {
        "user": {"data": {"type": "User", "id": user}},
        "product": {"data": {"type": "Product", "id": product}}}})
}

fn purchase(product: &str) -> Value {
    json!({"data": {"type": "License", "attributes": {"payment_method": "billing"},
        "relationships": {"product": {"data": {"type": "Product", "id": product}}}}})
}

// ---------------------------------------------------------------------------------------------
// "API spec": every route of both tables

/// The name, description and example of each route, by API, method and path under the
/// prefix. A route of a table that is missing here fails the test: add it.
fn spec_request(api: Api, method: &Method, route: &'static str) -> Option<Request> {
    let r = |name: &str, text: &str| Request::new(api, method.clone(), route, name).describe(text);
    let created = |variable: &str| {
        format!(
            "if (pm.response.code === 201) {{ pm.collectionVariables.set(\"{variable}\", pm.response.json().data.id); }}"
        )
    };
    let request = match (api, method.as_str(), route) {
        (Api::Management, "GET", "/products") => r("GetAllProducts", "Every product, in id order."),
        (Api::Management, "POST", "/products") => r("CreateProduct", "Creates a product (201); its id is kept in `product_id`.")
            .idempotency_key("{{$randomUUID}}")
            .body(seed_product("Sport channels megapack"))
            .test(&created("product_id")),
        (Api::Management, "GET", "/products/{product_id}") => r("GetProductById", "One product (404: no such product)."),
        (Api::Management, "PATCH", "/products/{product_id}") => r("UpdateProduct", "Changes the members given, and only those; the document names the product's id.")
            .body(json!({"data": {"type": "Product", "id": "{{product_id}}",
                "attributes": {"title": "Sport channels megapack HD", "is_buyable": false}}})),
        (Api::Management, "DELETE", "/products/{product_id}") => r("DeleteProductById", "Deletes a product (204); 409 `product_in_use` while licenses refer to it."),
        (Api::Management, "GET", "/licenses") => r("GetLicenses", "A page of licenses, filtered; follow `links.next` for the next page.")
            .optional_query("filter[user]", "{{user_id}}")
            .optional_query("filter[product]", "{{product_id}}")
            .optional_query("filter[status]", "ACTIVE,SUSPENDED")
            .optional_query("filter[active_at]", "{{$timestamp}}")
            .optional_query("include", "product")
            .optional_query("page[size]", "100")
            .optional_query("page[after]", "{{license_id}}"),
        (Api::Management, "POST", "/licenses") => r("CreateLicense", "Grants a license on a product to a user (201); its id is kept in `license_id`. Dates, price and renewal left out come from the product.")
            .idempotency_key("{{$randomUUID}}")
            .body(seed_license("{{user_id}}", "{{product_id}}", "bss-{{$randomUUID}}"))
            .test(&created("license_id")),
        (Api::Management, "POST", "/licenses/batch_create") => r("BatchCreateLicenses", "Creates 1 to 10,000 licenses, all or nothing (201, the licenses in order).")
            .idempotency_key("{{$randomUUID}}")
            .body(json!({"data": [
                license("{{user_id}}", "{{product_id}}", json!({"order_id": "bss-{{$randomUUID}}"})),
                license("{{user_id}}", "{{product_id}}", json!({"status": "SUSPENDED"})),
            ]})),
        (Api::Management, "POST", "/licenses/batch_delete") => r("BatchDeleteLicenses", "Deletes 1 to 10,000 licenses by id, all or nothing (200, `meta.deleted`).")
            .idempotency_key("{{$randomUUID}}")
            .body(json!({"data": [{"type": "License", "id": "{{license_id}}"}]})),
        (Api::Management, "GET", "/licenses/{license_id}") => r("GetLicenseById", "One license (404: no such license).")
            .optional_query("include", "product"),
        (Api::Management, "DELETE", "/licenses/{license_id}") => r("DeleteLicenseById", "Revokes a license (204). Licenses are immutable: to change one, delete it and create another."),
        (Api::Management, "GET", "/users/{user_id}/licenses") => r("GetLicensesByUser", "A page of the user's licenses; as GetLicenses, without `filter[user]`.")
            .optional_query("filter[status]", "ACTIVE")
            .optional_query("include", "product"),
        (Api::Management, "GET", "/users/{user_id}/entitlements") => r("GetUserEntitlements", "What the user's licenses grant now, per channel."),
        (Api::Management, "GET", "/users/{user_id}/access") => r("ExplainUserAccess", "Why the user may or may not watch a service on a channel now: stable reason codes, the DRM job a license waits for, and the deciding licenses and products in `included`.")
            .query("channel", "42")
            .query("service", "live"),
        (Api::Management, "GET", "/events") => r("GetEvents", "A page of license and product events in commit order; follow `links.next` (always present) to keep up, dedupe by event `id`; 410 `cursor_expired` when the cursor is older than the retention.")
            .optional_query("page[after]", "0")
            .optional_query("page[size]", "100")
            .optional_query("filter[user]", "{{user_id}}")
            .optional_query("filter[type]", "license.created,license.deleted"),
        (Api::Management, "GET", "/webhooks") => r("GetAllWebhooks", "Every webhook endpoint, without its secret."),
        (Api::Management, "POST", "/webhooks") => r("CreateWebhook", "Registers an endpoint (201) for the events of `event_types` (empty: all); the answer's `secret` (`whsec_…`, shown only here) signs every delivery. Its id is kept in `webhook_id`. `cargo run` allows http:// and local receivers (config/local.toml).")
            .body(json!({"data": {"type": "Webhook", "attributes": {
                "url": "http://127.0.0.1:9000/hooks/licenses",
                "event_types": ["license.created", "license.deleted"],
                "description": "the BSS"}}}))
            .test(&created("webhook_id")),
        (Api::Management, "GET", "/webhooks/{webhook_id}") => r("GetWebhookById", "One endpoint: enabled or why not, failing since when."),
        (Api::Management, "PATCH", "/webhooks/{webhook_id}") => r("UpdateWebhook", "Changes an endpoint; `enabled: false` holds its deliveries, `enabled: true` resumes them.")
            .body(json!({"data": {"type": "Webhook", "id": "{{webhook_id}}",
                "attributes": {"enabled": true, "event_types": []}}})),
        (Api::Management, "DELETE", "/webhooks/{webhook_id}") => r("DeleteWebhookById", "Deletes an endpoint and its deliveries (204)."),
        (Api::Management, "GET", "/webhooks/{webhook_id}/deliveries") => r("GetWebhookDeliveries", "The endpoint's deliveries, oldest first, each with its last status and answer; `filter[status]=failed` for those to replay.")
            .optional_query("filter[status]", "failed")
            .optional_query("page[size]", "100")
            .optional_query("page[after]", "0"),
        (Api::Management, "POST", "/webhooks/{webhook_id}/replay") => r("ReplayFailedWebhookDeliveries", "Sends every failed delivery of the endpoint again (202, `meta.replayed`)."),
        (Api::Management, "POST", "/webhooks/{webhook_id}/deliveries/{delivery_id}/replay") => r("ReplayWebhookDelivery", "Sends one failed delivery again (202); 409 `not_failed` for one that is not failed."),
        (Api::Management, "GET", "/irdeto/backlog") => r("GetIrdetoBacklog", "The Irdeto entitlement jobs due, retrying and failed."),
        (Api::Management, "POST", "/irdeto/jobs/{job_id}/retry") => r("RetryIrdetoJob", "Makes a failed Irdeto job due again (202); 404 when no failed job has this id."),
        (Api::User, "GET", "/products") => r("GetAllProducts", "The user-visible catalogue; cacheable (`ETag`, `If-None-Match`)."),
        (Api::User, "GET", "/users/{user_id}/licenses") => r("GetUserLicenses", "Every license of the user, each product once in `included`.")
            .optional_query("filter[status]", "ACTIVE"),
        (Api::User, "POST", "/users/{user_id}/licenses") => r("PurchaseUserLicense", "Purchases a license (201, with its product in `included`); the Idempotency-Key is required, and a retry with the same key never buys twice.")
            .idempotency_key("{{$randomUUID}}")
            .body(purchase("{{product_id}}"))
            .test(&created("license_id")),
        (Api::User, "GET", "/users/{user_id}/licenses/{license_id}") => r("GetUserLicenseById", "One of the user's licenses: the target of its `links.self`."),
        (Api::User, "GET", "/users/{user_id}/entitlements") => r("GetUserEntitlements", "What the user may watch now, per channel."),
        (Api::User, "GET", "/users/{user_id}/access") => r("ExplainUserAccess", "Why the user may or may not watch a service on a channel now (reason codes, without the DRM job's details).")
            .query("channel", "42")
            .query("service", "live"),
        _ => return None,
    };
    Some(request.test(
        r#"
        pm.test("answered without a server error", function () { pm.expect(pm.response.code).to.be.below(500); });
        if (pm.response.code !== 204 && pm.response.code !== 304) {
            pm.test("the answer is a JSON:API document", function () { pm.response.to.have.header("Content-Type", "application/vnd.api+json"); });
        }
        "#,
    ))
}

fn api_spec() -> Value {
    let mut folders = Vec::new();
    for api in [Api::Management, Api::User] {
        let items = api
            .endpoints()
            .iter()
            .map(|endpoint| {
                let route = endpoint
                    .path
                    .strip_prefix(api.prefix())
                    .expect("every route is under its API's prefix");
                // The table's paths live as long as the program; the requests borrow them.
                let route: &'static str = Box::leak(route.to_owned().into_boxed_str());
                spec_request(api, &endpoint.method, route)
                    .unwrap_or_else(|| {
                        panic!(
                            "{} route {endpoint} has no entry in tests/postman.rs spec_request: add its name and example",
                            api.name()
                        )
                    })
                    .to_json()
            })
            .collect();
        folders.push(folder(
            api.name(),
            &format!(
                "Every route of the {} (`{}`), generated from its route table.",
                api.name().to_lowercase(),
                api.prefix()
            ),
            items,
        ));
    }
    folder(
        "API spec",
        "A plain listing of every call of both APIs, one request per route, generated from the \
         route tables. Their scripts only check that nothing fails on the server side: the \
         ids they use (`product_id`, `license_id`, `job_id`, `webhook_id`, `delivery_id`) are \
         collection variables, set by CreateProduct, CreateLicense, PurchaseUserLicense and \
         CreateWebhook.",
        folders,
    )
}

// ---------------------------------------------------------------------------------------------
// "UseCase": complete flows

fn fresh_run(variable: &str) -> String {
    format!(
        "// A fresh id for this run, so that the use case runs again and again on one server.\n\
         pm.collectionVariables.set(\"{variable}\", pm.variables.replaceIn(\"{{{{$randomUUID}}}}\"));"
    )
}

fn create_product(name: &str, run: &str, body: Value, product_var: &str) -> Request {
    Request::new(Api::Management, Method::POST, "/products", name)
        .before(&fresh_run(run))
        .body(body)
        .expect(
            201,
            &format!(
                r#"
                pm.test("the document is the new product", function () {{
                    pm.expect(doc.data.type).to.eql("Product");
                    pm.expect(doc.data.id).to.be.a("string").and.not.empty;
                    pm.expect(doc.data.attributes.is_user_visible).to.eql(true);
                    pm.expect(doc.data.attributes.is_buyable).to.eql(true);
                    pm.expect(doc.data.links.self).to.match(new RegExp("/products/" + doc.data.id + "$"));
                }});
                pm.collectionVariables.set("{product_var}", doc.data.id);
                "#
            ),
        )
}

fn delete_license(name: &str, license_var: &str) -> Request {
    Request::new(
        Api::Management,
        Method::DELETE,
        "/licenses/{license_id}",
        name,
    )
    .segment("license_id", license_var)
    .expect(204, "")
}

fn delete_product(name: &str, product_var: &str) -> Request {
    Request::new(
        Api::Management,
        Method::DELETE,
        "/products/{product_id}",
        name,
    )
    .segment("product_id", product_var)
    .expect(204, "")
}

fn purchase_flow() -> Value {
    let items = [
        create_product(
            "BSS creates a buyable product",
            "purchase_run",
            seed_product("Sport channels megapack {{purchase_run}}"),
            "purchase_product_id",
        )
        .describe("The BSS puts a product in the catalogue: seed 003's channel group, 9.99 EUR, licenses of 30 days."),
        Request::new(Api::User, Method::GET, "/products", "User lists the catalogue")
            .describe("GetAllProducts: the user-visible, buyable products, with their channels and services.")
            .expect(200, r#"
                pm.test("the catalogue lists products, the new one among them", function () {
                    pm.expect(doc.data).to.be.an("array");
                    doc.data.forEach(function (p) {
                        pm.expect(p.type).to.eql("Product");
                        pm.expect(["CHANNEL", "PVR", "CATCHUP", "STARTOVER", "CHANNEL_GROUP"]).to.include(p.attributes.type);
                    });
                    const mine = doc.data.find(p => p.id === pm.collectionVariables.get("purchase_product_id"));
                    pm.expect(mine, "the product created above").to.be.an("object");
                    pm.expect(mine.attributes.title).to.eql("Sport channels megapack " + pm.collectionVariables.get("purchase_run"));
                    pm.expect(mine.attributes.type).to.eql("CHANNEL_GROUP");
                    pm.expect(mine.attributes.price_record).to.eql({amount: 999, currency: "EUR"});
                    pm.expect(mine.relationships.live.data).to.eql([{id: "42", type: "Channel"}]);
                });
                pm.test("a user never sees the management members", function () {
                    doc.data.forEach(function (p) {
                        pm.expect(p.attributes).to.not.have.any.keys("is_user_visible", "is_buyable", "auto_grant_on_signup", "license_defaults", "irdeto_product_id");
                    });
                });
                pm.test("the catalogue can be cached", function () { pm.response.to.have.header("ETag"); });
            "#),
        Request::new(Api::User, Method::POST, "/users/{user_id}/licenses", "User purchases the product")
            .describe("PurchaseUserLicense with payment method `billing`. The Idempotency-Key is required; it is also the order id.")
            .before(r#"pm.collectionVariables.set("purchase_key", pm.variables.replaceIn("{{$randomUUID}}"));"#)
            .idempotency_key("{{purchase_key}}")
            .body(purchase("{{purchase_product_id}}"))
            .expect(201, r#"
                const product = pm.collectionVariables.get("purchase_product_id");
                pm.test("the document is the user's new license", function () {
                    pm.expect(doc.data.type).to.eql("License");
                    pm.expect(doc.data.id).to.be.a("string").and.not.empty;
                    const a = doc.data.attributes;
                    pm.expect(a.status).to.eql("ACTIVE");
                    pm.expect(a.order_id).to.eql(pm.collectionVariables.get("purchase_key"));
                    pm.expect(a.stop_date - a.start_date).to.eql(2592000);
                    pm.expect(a.purchase_record).to.include({price_currency_amount: 999, price_currency_iso4217: "EUR", payment_method: "billing"});
                    pm.expect(a.renew_record).to.eql({recurring: true, expiry_date: a.stop_date});
                    pm.expect(doc.data.relationships.user.data).to.eql({id: pm.variables.get("user_id"), type: "User"});
                    pm.expect(doc.data.relationships.product.data).to.eql({id: product, type: "Product"});
                    pm.expect(doc.data.links.self).to.match(new RegExp("/users/" + pm.variables.get("user_id") + "/licenses/" + doc.data.id + "$"));
                });
                pm.test("its product is included", function () {
                    pm.expect(doc.included.map(p => p.type + " " + p.id)).to.eql(["Product " + product]);
                });
                pm.collectionVariables.set("purchase_license_id", doc.data.id);
            "#),
        Request::new(Api::User, Method::POST, "/users/{user_id}/licenses", "User retries the purchase: never bought twice")
            .describe("The same request with the same Idempotency-Key returns the first answer and buys nothing.")
            .idempotency_key("{{purchase_key}}")
            .body(purchase("{{purchase_product_id}}"))
            .expect(201, r#"
                pm.test("the answer is the license bought the first time", function () {
                    pm.expect(doc.data.id).to.eql(pm.collectionVariables.get("purchase_license_id"));
                });
            "#),
        Request::new(Api::User, Method::GET, "/users/{user_id}/licenses/{license_id}", "User reads the license bought")
            .segment("license_id", "purchase_license_id")
            .expect(200, r#"
                pm.test("the document is the license bought", function () {
                    pm.expect(doc.data.type).to.eql("License");
                    pm.expect(doc.data.id).to.eql(pm.collectionVariables.get("purchase_license_id"));
                    pm.expect(doc.data.attributes.status).to.eql("ACTIVE");
                    pm.expect(doc.data.attributes).to.not.have.any.keys("status_reason");
                });
            "#),
        delete_license("Clean up: BSS revokes the license", "purchase_license_id"),
        delete_product("Clean up: BSS deletes the product", "purchase_product_id"),
    ];
    folder(
        "Let a user pick a product and purchase it",
        "Seed 002/003: the client lists the catalogue, the user picks a product and buys it. The \
         product is created first through the management API, and everything is deleted at the end.",
        items.iter().map(Request::to_json).collect(),
    )
}

fn view_flow() -> Value {
    let channel_product = json!({"data": {"type": "Product",
        "attributes": {"title": "News channel {{view_run}}", "type": "CHANNEL",
            "price_record": {"amount": 499, "currency": "EUR"},
            "license_defaults": {"duration": 2_592_000, "auto_renew": false}},
        "relationships": {"live": {"data": [{"type": "Channel", "id": "ch-{{view_run}}"}]}}}});
    let items = [
        create_product(
            "BSS creates a product",
            "view_run",
            channel_product,
            "view_product_id",
        )
        .describe("A CHANNEL product: live on a channel of its own, so that the entitlements below are this license's alone."),
        Request::new(Api::Management, Method::POST, "/licenses", "BSS grants the user a license")
            .idempotency_key("view-{{view_run}}")
            .body(json!({"data": license("{{user_id}}", "{{view_product_id}}", json!({"order_id": "view-{{view_run}}"}))}))
            .expect(201, r#"
                pm.test("the document is the new license", function () {
                    pm.expect(doc.data.type).to.eql("License");
                    pm.expect(doc.data.attributes.status).to.eql("ACTIVE");
                    pm.expect(doc.data.attributes.stop_date).to.be.a("number");
                });
                pm.collectionVariables.set("view_license_id", doc.data.id);
                pm.collectionVariables.set("view_stop_date", doc.data.attributes.stop_date);
            "#),
        Request::new(Api::User, Method::GET, "/users/{user_id}/licenses", "User views their licenses with their products")
            .describe("GetUserLicenses: every license of the user, and each of their products once in `included`.")
            .expect(200, r#"
                const user = pm.variables.get("user_id");
                pm.test("every license is the user's, with its product included once", function () {
                    pm.expect(doc.data).to.be.an("array").that.is.not.empty;
                    const included = doc.included.map(p => p.id);
                    pm.expect(new Set(included).size, "each product once").to.eql(included.length);
                    doc.included.forEach(p => pm.expect(p.type).to.eql("Product"));
                    doc.data.forEach(function (l) {
                        pm.expect(l.type).to.eql("License");
                        pm.expect(l.relationships.user.data).to.eql({id: user, type: "User"});
                        pm.expect(included).to.include(l.relationships.product.data.id);
                    });
                });
                pm.test("the license granted is there, with its product", function () {
                    const mine = doc.data.find(l => l.id === pm.collectionVariables.get("view_license_id"));
                    pm.expect(mine, "the license granted above").to.be.an("object");
                    pm.expect(mine.attributes.status).to.eql("ACTIVE");
                    const product = doc.included.find(p => p.id === pm.collectionVariables.get("view_product_id"));
                    pm.expect(mine.relationships.product.data.id).to.eql(product.id);
                    pm.expect(product.attributes.title).to.eql("News channel " + pm.collectionVariables.get("view_run"));
                    pm.expect(product.relationships.live.data).to.eql([{id: "ch-" + pm.collectionVariables.get("view_run"), type: "Channel"}]);
                });
            "#),
        Request::new(Api::User, Method::GET, "/users/{user_id}/licenses", "User views only their active licenses")
            .query("filter[status]", "ACTIVE")
            .expect(200, r#"
                pm.test("every license is ACTIVE, the license granted among them", function () {
                    doc.data.forEach(l => pm.expect(l.attributes.status).to.eql("ACTIVE"));
                    pm.expect(doc.data.map(l => l.id)).to.include(pm.collectionVariables.get("view_license_id"));
                });
            "#),
        Request::new(Api::User, Method::GET, "/users/{user_id}/entitlements", "User sees what they may watch")
            .expect(200, r#"
                pm.test("the product's channel is granted live until the license ends", function () {
                    const channel = "ch-" + pm.collectionVariables.get("view_run");
                    const e = doc.data.find(c => c.id === channel);
                    pm.expect(e, "the entitlement of " + channel).to.be.an("object");
                    pm.expect(e.type).to.eql("ChannelEntitlement");
                    pm.expect(e.attributes.live).to.eql({until: Number(pm.collectionVariables.get("view_stop_date"))});
                    pm.expect(e.attributes.npvr).to.eql(null);
                    pm.expect(e.relationships.channel.data).to.eql({id: channel, type: "Channel"});
                    pm.expect(doc.meta.user).to.eql(pm.variables.get("user_id"));
                });
            "#),
        delete_license("Clean up: BSS revokes the license", "view_license_id"),
        delete_product("Clean up: BSS deletes the product", "view_product_id"),
    ];
    folder(
        "View my licenses with their products",
        "Seed 003: the client shows the user their licenses, each combined with its product from \
         `included`, and what they may watch.",
        items.iter().map(Request::to_json).collect(),
    )
}

fn grant_flow() -> Value {
    let items = [
        create_product(
            "BSS creates a product",
            "grant_run",
            seed_product("Sport channels megapack {{grant_run}}"),
            "grant_product_id",
        ),
        Request::new(Api::Management, Method::POST, "/licenses", "BSS grants a license")
            .describe("CreateLicense: dates, price and renewal come from the product; the order id is the BSS's.")
            .idempotency_key("grant-{{grant_run}}")
            .body(json!({"data": license("{{user_id}}", "{{grant_product_id}}", json!({"order_id": "bss-{{grant_run}}", "status": "ACTIVE"}))}))
            .expect(201, r#"
                pm.test("the document is the license granted", function () {
                    pm.expect(doc.data.type).to.eql("License");
                    const a = doc.data.attributes;
                    pm.expect(a.status).to.eql("ACTIVE");
                    pm.expect(a.order_id).to.eql("bss-" + pm.collectionVariables.get("grant_run"));
                    pm.expect(a.stop_date - a.start_date).to.eql(2592000);
                    pm.expect(a.purchase_record).to.include({price_currency_amount: 999, price_currency_iso4217: "EUR"});
                    pm.expect(a.renew_record.recurring).to.eql(true);
                    pm.expect(doc.data.relationships.user.data).to.eql({id: pm.variables.get("user_id"), type: "User"});
                    pm.expect(doc.data.relationships.product.data).to.eql({id: pm.collectionVariables.get("grant_product_id"), type: "Product"});
                    pm.expect(doc.data.links.self).to.match(new RegExp("/licenses/" + doc.data.id + "$"));
                });
                pm.collectionVariables.set("grant_license_id", doc.data.id);
            "#),
        Request::new(Api::Management, Method::GET, "/licenses/{license_id}", "BSS reads it with its product")
            .segment("license_id", "grant_license_id")
            .query("include", "product")
            .expect(200, r#"
                pm.test("the license, its product included with the management members", function () {
                    pm.expect(doc.data.id).to.eql(pm.collectionVariables.get("grant_license_id"));
                    pm.expect(doc.included).to.have.lengthOf(1);
                    pm.expect(doc.included[0].id).to.eql(pm.collectionVariables.get("grant_product_id"));
                    pm.expect(doc.included[0].attributes).to.include({is_buyable: true, is_user_visible: true});
                });
            "#),
        Request::new(Api::Management, Method::GET, "/users/{user_id}/licenses", "BSS lists the user's licenses of the product")
            .query("filter[product]", "{{grant_product_id}}")
            .expect(200, r#"
                pm.test("exactly the license granted", function () {
                    pm.expect(doc.data.map(l => l.id)).to.eql([pm.collectionVariables.get("grant_license_id")]);
                });
            "#),
        delete_license("BSS revokes the license", "grant_license_id")
            .describe("DeleteLicenseById: licenses never change; revoking one deletes it."),
        Request::new(Api::Management, Method::GET, "/licenses/{license_id}", "The license is gone")
            .segment("license_id", "grant_license_id")
            .expect(404, r#"
                pm.test("a JSON:API error, not_found", function () {
                    pm.expect(doc.errors).to.have.lengthOf(1);
                    pm.expect(doc.errors[0]).to.include({status: "404", code: "not_found"});
                });
            "#),
        Request::new(Api::Management, Method::GET, "/users/{user_id}/licenses", "The user no longer has it")
            .query("filter[product]", "{{grant_product_id}}")
            .expect(200, r#"
                pm.test("no license of the product", function () { pm.expect(doc.data).to.eql([]); });
            "#),
        delete_product("Clean up: BSS deletes the product", "grant_product_id"),
    ];
    folder(
        "BSS grants and revokes a license",
        "Seed 001: the BSS grants a user a license on a product, reads it, and revokes it.",
        items.iter().map(Request::to_json).collect(),
    )
}

fn batch_flow() -> Value {
    let item = |suffix: &str| {
        license(
            &format!("{{{{batch_run}}}}-{suffix}"),
            "{{batch_product_id}}",
            json!({"order_id": format!("batch-{{{{batch_run}}}}-{suffix}")}),
        )
    };
    let items = [
        create_product(
            "BSS creates a product",
            "batch_run",
            seed_product("Sport channels megapack {{batch_run}}"),
            "batch_product_id",
        ),
        Request::new(Api::Management, Method::POST, "/licenses/batch_create", "BSS creates three licenses at once")
            .describe("BatchCreateLicenses: all or nothing, the licenses answered in the order given.")
            .idempotency_key("batch-{{batch_run}}")
            .body(json!({"data": [item("a"), item("b"), item("c")]}))
            .expect(201, r#"
                const run = pm.collectionVariables.get("batch_run");
                pm.test("three licenses, in the order given", function () {
                    pm.expect(doc.data).to.have.lengthOf(3);
                    ["a", "b", "c"].forEach(function (suffix, i) {
                        const l = doc.data[i];
                        pm.expect(l.type).to.eql("License");
                        pm.expect(l.attributes.status).to.eql("ACTIVE");
                        pm.expect(l.attributes.order_id).to.eql("batch-" + run + "-" + suffix);
                        pm.expect(l.relationships.user.data).to.eql({id: run + "-" + suffix, type: "User"});
                        pm.expect(l.relationships.product.data.id).to.eql(pm.collectionVariables.get("batch_product_id"));
                    });
                });
                doc.data.forEach((l, i) => pm.collectionVariables.set("batch_license_" + (i + 1), l.id));
            "#),
        Request::new(Api::Management, Method::GET, "/licenses", "BSS lists the product's licenses")
            .query("filter[product]", "{{batch_product_id}}")
            .expect(200, r#"
                pm.test("the three licenses", function () {
                    pm.expect(doc.data.map(l => l.id)).to.have.members([1, 2, 3].map(i => pm.collectionVariables.get("batch_license_" + i)));
                });
            "#),
        Request::new(Api::Management, Method::POST, "/licenses/batch_delete", "BSS deletes them at once")
            .describe("BatchDeleteLicenses: all or nothing; the answer counts the licenses deleted.")
            .idempotency_key("batch-delete-{{batch_run}}")
            .body(json!({"data": [
                {"type": "License", "id": "{{batch_license_1}}"},
                {"type": "License", "id": "{{batch_license_2}}"},
                {"type": "License", "id": "{{batch_license_3}}"},
            ]}))
            .expect(200, r#"
                pm.test("three licenses deleted", function () { pm.expect(doc).to.eql({meta: {deleted: 3}}); });
            "#),
        Request::new(Api::Management, Method::GET, "/licenses", "They are gone")
            .query("filter[product]", "{{batch_product_id}}")
            .expect(200, r#"
                pm.test("no license of the product", function () { pm.expect(doc.data).to.eql([]); });
            "#),
        delete_product("Clean up: BSS deletes the product", "batch_product_id"),
    ];
    folder(
        "Batch create and delete",
        "Seed 001: the BSS creates and deletes licenses in batches, each all or nothing.",
        items.iter().map(Request::to_json).collect(),
    )
}

fn lifecycle_flow() -> Value {
    let product = json!({"data": {"type": "Product",
        "attributes": {"title": "Movies {{lifecycle_run}}", "description": "Catch-up on the movie channel",
            "type": "CATCHUP"},
        "relationships": {"catchup": {"data": [{"type": "Channel", "id": "movies-{{lifecycle_run}}"}]}}}});
    let items = [
        create_product("BSS creates a product", "lifecycle_run", product, "lifecycle_product_id")
            .describe("CreateProduct: what is left out takes its default (visible, buyable, not premium, no price, licenses without end).")
            .test(r#"
                pm.test("left-out members take their defaults", function () {
                    pm.expect(doc.data.attributes).to.include({type: "CATCHUP", is_premium: false, auto_grant_on_signup: false, price_record: null, irdeto_product_id: null});
                    pm.expect(doc.data.attributes.license_defaults).to.eql({duration: null, auto_renew: false});
                    pm.expect(doc.data.relationships.live.data).to.eql([]);
                });
            "#),
        Request::new(Api::Management, Method::GET, "/products/{product_id}", "BSS reads it")
            .segment("product_id", "lifecycle_product_id")
            .expect(200, r#"
                pm.test("the product created", function () {
                    pm.expect(doc.data.type).to.eql("Product");
                    pm.expect(doc.data.id).to.eql(pm.collectionVariables.get("lifecycle_product_id"));
                    pm.expect(doc.data.attributes.title).to.eql("Movies " + pm.collectionVariables.get("lifecycle_run"));
                    pm.expect(doc.data.relationships.catchup.data).to.eql([{id: "movies-" + pm.collectionVariables.get("lifecycle_run"), type: "Channel"}]);
                });
            "#),
        Request::new(Api::Management, Method::PATCH, "/products/{product_id}", "BSS updates it")
            .describe("UpdateProduct: only the members given change.")
            .segment("product_id", "lifecycle_product_id")
            .body(json!({"data": {"type": "Product", "id": "{{lifecycle_product_id}}",
                "attributes": {"title": "Movies HD {{lifecycle_run}}", "is_buyable": false,
                    "price_record": {"amount": 299, "currency": "EUR"}}}}))
            .expect(200, r#"
                pm.test("the members given changed, the others did not", function () {
                    const a = doc.data.attributes;
                    pm.expect(a.title).to.eql("Movies HD " + pm.collectionVariables.get("lifecycle_run"));
                    pm.expect(a.is_buyable).to.eql(false);
                    pm.expect(a.price_record).to.eql({amount: 299, currency: "EUR"});
                    pm.expect(a).to.include({type: "CATCHUP", description: "Catch-up on the movie channel", is_user_visible: true});
                    pm.expect(doc.data.relationships.catchup.data).to.have.lengthOf(1);
                });
            "#),
        Request::new(Api::User, Method::POST, "/users/{user_id}/licenses", "A user cannot buy it any more")
            .idempotency_key("lifecycle-{{lifecycle_run}}")
            .body(purchase("{{lifecycle_product_id}}"))
            .expect(422, r#"
                pm.test("a JSON:API error, product_not_buyable", function () {
                    pm.expect(doc.errors).to.have.lengthOf(1);
                    pm.expect(doc.errors[0]).to.include({status: "422", code: "product_not_buyable"});
                });
            "#),
        delete_product("BSS deletes it", "lifecycle_product_id"),
        Request::new(Api::Management, Method::GET, "/products/{product_id}", "It is gone")
            .segment("product_id", "lifecycle_product_id")
            .expect(404, r#"
                pm.test("a JSON:API error, not_found", function () {
                    pm.expect(doc.errors[0]).to.include({status: "404", code: "not_found"});
                });
            "#),
    ];
    folder(
        "Product lifecycle",
        "Seed 001: the BSS creates, reads, updates and deletes a product.",
        items.iter().map(Request::to_json).collect(),
    )
}

fn use_cases() -> Value {
    folder(
        "UseCase",
        "Complete flows of the typical use cases, each request with tests on its status and its \
         document. Each flow creates what it needs (under fresh ids) and deletes it at the end, \
         so the collection runs green again and again against one server. The user API's \
         requests need `user_token`: run the Helper first.",
        vec![
            purchase_flow(),
            view_flow(),
            grant_flow(),
            batch_flow(),
            lifecycle_flow(),
        ],
    )
}

// ---------------------------------------------------------------------------------------------
// "Helper"

fn helper() -> Value {
    let token = Request::new(Api::User, Method::GET, "/products", "Obtain a development token")
        .describe(
            "The service has no token endpoint: user tokens come from the platform's identity \
             service, or locally from `licenses token --user ID`. This request's pre-request \
             script mints the same development token (an HS256 JWT, `sub` = `user_id`, valid \
             one hour) with the environment's `token_secret`, keeps it in the collection \
             variable `user_token`, and calls the catalogue with it to prove that it works.",
        )
        .before(
            r#"
            // Mints an HS256 JWT for {{user_id}}, as `licenses token --user ID` does.
            const cryptojs = require("crypto-js");
            const secret = pm.variables.get("token_secret");
            const user = pm.variables.get("user_id");
            if (!secret || !user) {
                throw new Error("select an environment with token_secret and user_id (docs/postman/local.postman_environment.json)");
            }
            const base64url = words => cryptojs.enc.Base64.stringify(words)
                .replace(/=+$/, "").replace(/\+/g, "-").replace(/\//g, "_");
            const part = object => base64url(cryptojs.enc.Utf8.parse(JSON.stringify(object)));
            const now = Math.floor(Date.now() / 1000);
            const unsigned = part({alg: "HS256", typ: "JWT"}) + "." + part({sub: user, iat: now, exp: now + 3600});
            const token = unsigned + "." + base64url(cryptojs.HmacSHA256(unsigned, secret));
            pm.collectionVariables.set("user_token", token);
            "#,
        )
        .expect(
            200,
            r#"
            pm.test("the token is accepted: the catalogue answers", function () {
                pm.expect(doc.data).to.be.an("array");
            });
            "#,
        );
    folder(
        "Helper",
        "Obtains a Bearer token for the user API. Run it first: the UseCase requests on the user \
         API send `Authorization: Bearer {{user_token}}`.",
        vec![token.to_json()],
    )
}

// ---------------------------------------------------------------------------------------------
// The files

fn collection() -> Value {
    let variable = |key: &str, value: &str| json!({"key": key, "value": value});
    json!({
        "info": {
            "_postman_id": "5b0e7c55-3a1f-4c8e-9d0b-4c1e5f2a7d10",
            "name": "LicenseV4",
            "description": "AminoTV Licenses v4: the user API (client apps) and the management API \
                (BSS). Generated by tests/postman.rs from the route tables: do not edit by hand, run \
                `UPDATE_POSTMAN=1 cargo test -p licenses --test postman`.\n\nSelect an environment \
                (docs/postman/local.postman_environment.json for `cargo run`), run \"Helper\" first, \
                then any request or folder. See docs/postman/README.md and docs/api.md.",
            "schema": SCHEMA,
        },
        "item": [helper(), api_spec(), use_cases()],
        "variable": [
            variable("user_token", ""),
            variable("product_id", "41"),
            variable("license_id", "42"),
            variable("job_id", "1"),
            variable("webhook_id", "0193a8c4-5e2f-7b10-9c4d-2f6e8a1b3c5d"),
            variable("delivery_id", "1"),
        ],
    })
}

fn environment() -> Value {
    let value = |key: &str, value: &str, kind: &str| json!({"key": key, "value": value, "type": kind, "enabled": true});
    json!({
        "id": "0c7a3f0e-2a54-4f53-9a0e-6f1d3b9e8c21",
        "name": "Licenses v4 local (cargo run)",
        "values": [
            value("user_url", "http://127.0.0.1:8080", "default"),
            value("management_url", "http://127.0.0.1:8081", "default"),
            value("management_key", DEV_MANAGEMENT_KEY, "secret"),
            value("token_secret", DEV_TOKEN_SECRET, "secret"),
            value("user_id", "41", "default"),
        ],
        "_postman_variable_scope": "environment",
    })
}

/// Compares `generated` with the committed file, or rewrites it under `UPDATE_POSTMAN`.
fn check(relative: &str, generated: &Value) {
    let path = PathBuf::from(env!("CARGO_MANIFEST_DIR")).join(relative);
    let text = serde_json::to_string_pretty(generated).expect("serialises") + "\n";
    if std::env::var_os("UPDATE_POSTMAN").is_some() {
        std::fs::create_dir_all(path.parent().expect("a directory")).expect("mkdir");
        std::fs::write(&path, &text).unwrap_or_else(|e| panic!("{path:?}: {e}"));
        return;
    }
    let committed = std::fs::read_to_string(&path).unwrap_or_default();
    if committed != text {
        let line = committed
            .lines()
            .zip(text.lines())
            .position(|(a, b)| a != b)
            .unwrap_or_else(|| committed.lines().count().min(text.lines().count()));
        panic!(
            "{relative} differs from what tests/postman.rs generates from the code (first at line {}: \
             committed {:?}, generated {:?}).\nRun `UPDATE_POSTMAN=1 cargo test -p licenses --test postman` \
             to rewrite it, and commit it.",
            line + 1,
            committed.lines().nth(line).unwrap_or("<end of file>"),
            text.lines().nth(line).unwrap_or("<end of file>"),
        );
    }
}

#[test]
fn the_committed_collection_is_the_generated_one() {
    check(COLLECTION, &collection());
}

#[test]
fn the_committed_environment_is_the_generated_one() {
    check(ENVIRONMENT, &environment());
}

/// Walks every request of a collection folder, depth first.
fn requests(item: &Value, out: &mut Vec<Value>) {
    match item.get("item").and_then(Value::as_array) {
        Some(children) => children.iter().for_each(|c| requests(c, out)),
        None => out.push(item.clone()),
    }
}

fn top_folder<'a>(collection: &'a Value, name: &str) -> &'a Value {
    collection["item"]
        .as_array()
        .expect("folders")
        .iter()
        .find(|f| f["name"] == name)
        .unwrap_or_else(|| panic!("no folder {name:?}"))
}

#[test]
fn api_spec_has_one_request_per_route_of_both_tables() {
    let collection = collection();
    let mut listed = Vec::new();
    requests(top_folder(&collection, "API spec"), &mut listed);
    let listed: Vec<(String, String)> = listed
        .iter()
        .map(|r| {
            let raw = r["request"]["url"]["raw"].as_str().expect("a raw URL");
            let path = raw.split_once("}}").expect("a base variable").1;
            let path = path.split('?').next().expect("a path");
            (
                r["request"]["method"]
                    .as_str()
                    .expect("a method")
                    .to_owned(),
                path.replace("{{", "{").replace("}}", "}"),
            )
        })
        .collect();
    let routes: Vec<(String, String)> = [Api::Management, Api::User]
        .iter()
        .flat_map(|api| api.endpoints())
        .map(|e| (e.method.to_string(), e.path))
        .collect();
    assert_eq!(listed, routes);
    let unique: HashSet<_> = routes.iter().collect();
    assert_eq!(unique.len(), routes.len(), "a route listed twice");
}

#[test]
fn every_use_case_request_asserts_its_status_and_helper_runs_first() {
    let collection = collection();
    let names: Vec<&str> = collection["item"]
        .as_array()
        .expect("folders")
        .iter()
        .map(|f| f["name"].as_str().expect("a name"))
        .collect();
    assert_eq!(names, ["Helper", "API spec", "UseCase"]);
    let mut all = Vec::new();
    requests(top_folder(&collection, "UseCase"), &mut all);
    assert!(all.len() >= 5 * 5, "{} use case requests", all.len());
    for request in all {
        let tests = request["event"]
            .as_array()
            .and_then(|events| events.iter().find(|e| e["listen"] == "test"))
            .unwrap_or_else(|| panic!("{} has no tests", request["name"]));
        let exec = tests["script"]["exec"].as_array().expect("lines");
        assert!(
            exec.iter().any(|l| l
                .as_str()
                .unwrap_or("")
                .contains("pm.response.to.have.status(")),
            "{} does not assert its status",
            request["name"]
        );
        // The user API takes the user's token; the management API the key.
        let headers = request["request"]["header"].as_array().expect("headers");
        assert!(headers.iter().any(|h| h["key"] == "Authorization"));
    }
}

#[test]
fn the_environment_holds_the_development_credentials_of_the_settings() {
    let env = environment();
    let get = |key: &str| {
        env["values"]
            .as_array()
            .expect("values")
            .iter()
            .find(|v| v["key"] == key)
            .map(|v| v["value"].as_str().expect("a string").to_owned())
            .unwrap_or_else(|| panic!("no {key}"))
    };
    assert_eq!(get("management_key"), DEV_MANAGEMENT_KEY);
    assert_eq!(get("token_secret"), DEV_TOKEN_SECRET);
    // The user API's listener and the management API's, as config/default.toml has them.
    let defaults = std::fs::read_to_string(
        PathBuf::from(env!("CARGO_MANIFEST_DIR")).join("config/default.toml"),
    )
    .expect("config/default.toml");
    for (key, setting) in [
        ("user_url", "user_addr"),
        ("management_url", "management_addr"),
    ] {
        let url = get(key);
        let addr = url.strip_prefix("http://").expect("http");
        assert!(
            defaults.contains(&format!("{setting} = \"{addr}\"")),
            "{key} {url} is not server.{setting} of config/default.toml"
        );
    }
}
