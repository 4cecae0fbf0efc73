//! Domain conversion of products: a product-create document (arbitrary bytes) read into a
//! draft and validated by `Product::new`; a valid product must rebuild identically from its
//! own draft (`into_draft`), and a patch document applied to it must give a valid product or
//! violations, never a panic.
#![no_main]

use libfuzzer_sys::fuzz_target;
use licenses_domain::{Product, ProductId};
use licenses_http::{read_product_create, read_product_patch};

fuzz_target!(|data: &[u8]| {
    // Two documents: the create one, then (after the first 0xFF byte, if any) the patch.
    let (create, patch) = match data.iter().position(|&b| b == 0xFF) {
        Some(at) => (&data[..at], Some(&data[at + 1..])),
        None => (data, None),
    };
    let id = ProductId::parse("p-1").expect("an id");
    let Ok(draft) = read_product_create(create) else {
        return;
    };
    let Ok(product) = Product::new(id.clone(), draft) else {
        return;
    };
    let again = Product::new(id.clone(), product.clone().into_draft())
        .expect("a valid product's own draft is valid");
    assert_eq!(again, product, "into_draft does not round-trip");
    if let Some(patch) = patch
        && let Ok(patch) = read_product_patch(patch, &id)
        && let Ok(patched) = product.patch(patch)
    {
        let again = Product::new(id, patched.clone().into_draft())
            .expect("a patched product's own draft is valid");
        assert_eq!(again, patched);
    }
});
