//! The readers of request documents: what each accepts and refuses, with which pointers; and
//! that the typed reading agrees with the walk on every document it accepts.

#![allow(clippy::unwrap_used)]

use actix_web::http::StatusCode;
use licenses_domain::{LicenseId, PriceDraft, ProductId};
use serde_json::json;

use super::license::{walk_batch_delete, walk_license_batch, walk_license_create};
use super::product::{walk_product_create, walk_product_patch};
use super::purchase::walk_purchase;
use super::*;
use crate::jsonapi::ApiError;

fn errors(e: &ApiError) -> Vec<(String, &'static str)> {
    e.errors()
        .iter()
        .map(|o| {
            let at = match &o.source {
                Some(crate::jsonapi::Source::Pointer(p)) => p.clone(),
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
    let e = read_license_create(&bytes(json!({"data": {"type": "Product"}}))).expect_err("type");
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
    let e =
        read_license_batch(&bytes(json!({"data": [good.clone(), good, bad]}))).expect_err("bad");
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
    let ok = json!({"data": {"type": "Product", "id": "41", "attributes": {"price_record": null}}});
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
    let ids =
        read_batch_delete(&bytes(json!({"data": [{"type": "License", "id": "a"}]}))).expect("ok");
    assert_eq!(ids[0].as_str(), "a");
}

/// Documents the typed reading accepts: each must read the same through the walk.
fn accepted_documents() -> Vec<serde_json::Value> {
    let channels = json!({"data": [{"type": "Channel", "id": "42", "meta": {"x": 1}}],
        "meta": null, "links": {"related": "x"}});
    vec![
        json!({"data": {"type": "Product", "attributes": {"title": "T", "type": "CHANNEL"}}}),
        json!({"data": {"type": "Product", "attributes": {"title": "Sport", "description": null,
            "type": "CHANNEL_GROUP", "is_premium": true, "is_user_visible": false,
            "is_buyable": null, "auto_grant_on_signup": true,
            "price_record": {"amount": 999, "currency": "EUR"},
            "license_defaults": {"duration": 3600, "auto_renew": null},
            "irdeto_product_id": "IRD-1"},
            "relationships": {"live": channels, "npvr": {"data": []}},
            "meta": {"m": 1}, "links": null}}),
        json!({"data": {"type": "Product", "attributes": {"title": "T", "type": "PVR",
            "price_record": null, "license_defaults": null}}}),
    ]
}

fn accepted_patches() -> Vec<serde_json::Value> {
    vec![
        json!({"data": {"type": "Product", "id": "p1"}}),
        json!({"data": {"type": "Product", "id": "p1", "attributes": {"title": "New",
            "price_record": null, "irdeto_product_id": null, "license_defaults": null}}}),
        json!({"data": {"type": "Product", "id": "p1", "attributes": {
            "price_record": {"amount": 1, "currency": "USD"}, "irdeto_product_id": "I",
            "type": "CATCHUP", "is_premium": false},
            "relationships": {"startover": {"data": [{"type": "Channel", "id": "7"}]}}}}),
    ]
}

fn accepted_licenses() -> Vec<serde_json::Value> {
    let rels = json!({"user": {"data": {"type": "User", "id": "41"}, "meta": {}},
        "product": {"data": {"type": "Product", "id": "p1"}, "links": null}});
    vec![
        json!({"type": "License", "relationships": rels}),
        json!({"type": "License", "attributes": {"status": "SUSPENDED", "start_date": 10,
            "stop_date": null, "order_id": "o-1",
            "purchase_record": {"price_currency_amount": 5, "price_currency_iso4217": "EUR",
                "purchase_timestamp": 9, "payment_method": "card"},
            "renew_record": {"recurring": true, "expiry_date": 20}},
            "relationships": rels, "meta": {"any": [1]}}),
        json!({"type": "License", "attributes": {"status": null, "purchase_record": null,
            "renew_record": {"recurring": null}}, "relationships": rels}),
    ]
}

#[test]
fn the_typed_reading_and_the_walk_give_the_same_product_drafts() {
    for doc in accepted_documents() {
        let body = bytes(doc.clone());
        assert!(
            serde_json::from_slice::<ProductCreateDocument>(&body).is_ok(),
            "not typed: {doc}"
        );
        assert_eq!(
            read_product_create(&body),
            walk_product_create(&body),
            "{doc}"
        );
    }
    let id = ProductId::parse("p1").unwrap();
    for doc in accepted_patches() {
        let body = bytes(doc.clone());
        assert!(
            serde_json::from_slice::<ProductPatchDocument>(&body).is_ok(),
            "not typed: {doc}"
        );
        assert_eq!(
            read_product_patch(&body, &id),
            walk_product_patch(&body, &id),
            "{doc}"
        );
    }
}

#[test]
fn the_typed_reading_and_the_walk_give_the_same_license_drafts() {
    let licenses = accepted_licenses();
    for license in &licenses {
        let body = bytes(json!({"data": license}));
        assert!(
            serde_json::from_slice::<LicenseCreateDocument>(&body).is_ok(),
            "not typed: {license}"
        );
        assert_eq!(read_license_create(&body), walk_license_create(&body));
    }
    let batch = bytes(json!({"data": licenses}));
    assert!(serde_json::from_slice::<LicenseBatchDocument>(&batch).is_ok());
    assert_eq!(read_license_batch(&batch), walk_license_batch(&batch));
    let delete = bytes(json!({"data": [{"type": "License", "id": "a"},
        {"type": "License", "id": "b", "meta": {}}]}));
    assert!(serde_json::from_slice::<LicenseDeleteBatchDocument>(&delete).is_ok());
    assert_eq!(read_batch_delete(&delete), walk_batch_delete(&delete));
    let purchase = bytes(json!({"data": {"type": "License",
        "attributes": {"payment_method": "billing", "order_id": "o"},
        "relationships": {"product": {"data": {"type": "Product", "id": "p"}}}}}));
    assert!(serde_json::from_slice::<PurchaseDocument>(&purchase).is_ok());
    assert_eq!(read_purchase(&purchase), walk_purchase(&purchase));
}

#[test]
fn what_the_walk_refuses_the_typed_reading_refuses_too() {
    // Each member that the walk refuses as null, or as the wrong kind of JSON value.
    let refused = [
        json!({"data": {"type": "Product", "attributes": {"title": "T", "type": "PVR"},
            "relationships": null}}),
        json!({"data": {"type": "Product", "attributes": {"title": "T", "type": "PVR"},
            "relationships": {"live": null}}}),
        json!({"data": {"type": "Product", "id": "1", "attributes": {"title": "T",
            "type": "PVR"}}}),
        json!({"data": {"type": "Product", "attributes": {"title": "T", "type": "PVR",
            "price_record": {"amount": 1, "currency": "EUR", "x": 1}}}}),
        json!({"data": {"type": "Product", "attributes": {"title": "T", "type": "PVR",
            "is_premium": "yes"}}}),
        // An enum as serde's derive would also read it: an object of one member.
        json!({"data": {"type": {"Product": null}, "attributes": {"title": "T",
            "type": "PVR"}}}),
        json!({"data": {"type": "Product", "attributes": {"title": "T",
            "type": {"PVR": null}}}}),
    ];
    for doc in refused {
        let body = bytes(doc.clone());
        assert!(
            walk_product_create(&body).is_err(),
            "the walk accepts {doc}"
        );
        assert!(
            serde_json::from_slice::<ProductCreateDocument>(&body).is_err(),
            "the typed reading accepts {doc}"
        );
    }
    let id = ProductId::parse("p1").unwrap();
    for doc in [
        json!({"data": {"type": "Product", "id": "p1", "attributes": null}}),
        json!({"data": {"type": "Product", "id": "p2"}}),
    ] {
        let body = bytes(doc.clone());
        assert!(
            walk_product_patch(&body, &id).is_err(),
            "the walk accepts {doc}"
        );
        assert!(read_product_patch(&body, &id).is_err(), "{doc} is read");
    }
    let rels = json!({"user": {"data": {"type": "User", "id": "41"}},
        "product": {"data": {"type": "Product", "id": "p1"}}});
    for license in [
        json!({"type": "License", "attributes": null, "relationships": rels}),
        json!({"type": "License", "id": "x", "relationships": rels}),
        json!({"type": "License", "relationships": {"user": null, "product": rels["product"]}}),
        json!({"type": "License", "attributes": {"start_date": 1.5}, "relationships": rels}),
        json!({"type": {"License": null}, "relationships": rels}),
        json!({"type": "License", "attributes": {"status": {"SUSPENDED": null}},
            "relationships": rels}),
    ] {
        let body = bytes(json!({"data": license}));
        assert!(
            walk_license_create(&body).is_err(),
            "the walk accepts {license}"
        );
        assert!(
            serde_json::from_slice::<LicenseCreateDocument>(&body).is_err(),
            "the typed reading accepts {license}"
        );
    }
    let bad_id = bytes(json!({"data": [{"type": "License", "id": " "}]}));
    assert!(walk_batch_delete(&bad_id).is_err());
    assert!(read_batch_delete(&bad_id).is_err());
    let _ = LicenseId::parse("l");
}

/// JSON:API 1.0's top level of a request document: `data`, `meta`, `jsonapi` and `links` are
/// read (the last three ignored), anything else is a 400 at `/name`, in every reader.
#[test]
fn unknown_top_level_members_are_400_and_the_allowed_ones_are_read() {
    let license = json!({"type": "License", "relationships": {
        "user": {"data": {"type": "User", "id": "41"}},
        "product": {"data": {"type": "Product", "id": "41"}}}});
    let extras = json!({"meta": {"a": 1}, "jsonapi": {"version": "1.0"}, "links": {"self": "/x"}});
    let with = |data: serde_json::Value, extra: &serde_json::Value| {
        let mut doc = extra.clone();
        doc["data"] = data;
        bytes(doc)
    };
    assert!(read_license_create(&with(license.clone(), &extras)).is_ok());
    assert!(read_license_batch(&with(json!([license.clone()]), &extras)).is_ok());
    assert!(read_batch_delete(&with(json!([{"type": "License", "id": "1"}]), &extras)).is_ok());

    let unknown = json!({"included": [], "a/b": 1});
    let product = json!({"type": "Product", "attributes": {"title": "T", "type": "CHANNEL_GROUP"}});
    let purchase = json!({"type": "License", "attributes": {"payment_method": "billing"},
        "relationships": {"product": {"data": {"type": "Product", "id": "41"}}}});
    let expected = [
        ("/a~1b".to_owned(), "invalid_document"),
        ("/included".to_owned(), "invalid_document"),
    ];
    let id = ProductId::parse("41").unwrap();
    let patch = json!({"type": "Product", "id": "41"});
    for (what, answer) in [
        (
            "create",
            read_license_create(&with(license.clone(), &unknown)).map(|_| ()),
        ),
        (
            "batch",
            read_license_batch(&with(json!([license]), &unknown)).map(|_| ()),
        ),
        (
            "delete",
            read_batch_delete(&with(json!([{"type": "License", "id": "1"}]), &unknown)).map(|_| ()),
        ),
        (
            "product",
            read_product_create(&with(product, &unknown)).map(|_| ()),
        ),
        (
            "patch",
            read_product_patch(&with(patch, &unknown), &id).map(|_| ()),
        ),
        (
            "purchase",
            read_purchase(&with(purchase, &unknown)).map(|_| ()),
        ),
    ] {
        let e = answer.expect_err(what);
        assert_eq!(e.status(), StatusCode::BAD_REQUEST, "{what}");
        let mut found = errors(&e);
        found.sort();
        assert_eq!(found, expected, "{what}");
    }
}

/// JSON Schema's `integer` admits `3.0`: so does every reader, as the integer 3; `3.5`, and
/// integers beyond i64, are refused.
#[test]
fn integral_numbers_written_as_floats_are_integers() {
    let doc = |start: &str| {
        let text = format!(
            r#"{{"data": {{"type": "License", "attributes": {{"start_date": {start},
            "purchase_record": {{"price_currency_amount": {start}}}}},
            "relationships": {{"user": {{"data": {{"type": "User", "id": "41"}}}},
            "product": {{"data": {{"type": "Product", "id": "41"}}}}}}}}}}"#
        );
        text.into_bytes()
    };
    let three = read_license_create(&doc("3")).unwrap();
    for same in ["3.0", "3e0", "0.3e1", "3.000"] {
        assert_eq!(read_license_create(&doc(same)).unwrap(), three, "{same}");
    }
    for bad in ["3.5", "9223372036854775808", "9.3e18", "1e400"] {
        let e = read_license_create(&doc(bad)).expect_err(bad);
        assert!(e.status().is_client_error(), "{bad}: {e}");
    }
    let product = br#"{"data": {"type": "Product", "attributes": {"title": "T",
        "type": "CHANNEL_GROUP", "price_record": {"amount": 999.0, "currency": "EUR"},
        "license_defaults": {"duration": 3600.0}}}}"#;
    let d = read_product_create(product).unwrap();
    assert_eq!(d.price_record.and_then(|p| p.amount), Some(999));
    assert_eq!(d.license_defaults.and_then(|l| l.duration), Some(3600));
}
