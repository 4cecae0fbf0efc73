//! Every request-document reader of the HTTP layer (crates/http/src/jsonapi/request/) on arbitrary
//! bytes: the first byte picks the reader, the rest is the body. A reader must answer a
//! draft or a JSON:API error (whose body renders, with a 4xx status), never panic.
#![no_main]

use libfuzzer_sys::fuzz_target;
use licenses_domain::ProductId;
use licenses_http::{
    ApiError, read_batch_delete, read_license_batch, read_license_create, read_product_create,
    read_product_patch, read_purchase,
};

fn check_error(e: &ApiError) {
    assert!(e.status().is_client_error(), "{e}: not a 4xx");
    assert!(!e.errors().is_empty(), "an error without error objects");
    let body: serde_json::Value = serde_json::from_slice(&e.body()).expect("a JSON error body");
    assert!(body["errors"].is_array(), "{body}");
}

fuzz_target!(|data: &[u8]| {
    let Some((&which, body)) = data.split_first() else {
        return;
    };
    let result = match which % 6 {
        0 => read_product_create(body).map(|d| format!("{d:?}")),
        1 => {
            let id = ProductId::parse("p-1").expect("an id");
            read_product_patch(body, &id).map(|d| format!("{d:?}"))
        }
        2 => read_license_create(body).map(|d| format!("{d:?}")),
        3 => read_license_batch(body).map(|d| format!("{d:?}")),
        4 => read_batch_delete(body).map(|d| format!("{d:?}")),
        _ => read_purchase(body).map(|d| format!("{d:?}")),
    };
    if let Err(e) = result {
        check_error(&e);
    }
});
