//! Domain conversion of licenses: a license-create document (arbitrary bytes) read into a
//! draft and granted by `License::grant` against a product (priced or not, with or without a
//! duration) at an arbitrary time; a granted license must restore identically from its own
//! stored parts, and its status at any time must be computable.
#![no_main]

use libfuzzer_sys::fuzz_target;
use licenses_domain::{
    Activation, License, LicenseDefaultsDraft, LicenseId, PriceDraft, Product, ProductDraft,
    ProductId, StoredParts, Timestamp,
};
use licenses_http::read_license_create;

fn product(priced: bool, duration: Option<i64>) -> Product {
    let draft = ProductDraft {
        title: Some("Sport".to_owned()),
        description: Some(String::new()),
        product_type: Some("CHANNEL_GROUP".to_owned()),
        price_record: priced.then(|| PriceDraft {
            amount: Some(999),
            currency: Some("EUR".to_owned()),
        }),
        license_defaults: Some(LicenseDefaultsDraft {
            duration,
            auto_renew: Some(duration.is_some()),
        }),
        channels: [vec!["42".to_owned()], vec![], vec!["42".to_owned()], vec![]],
        ..ProductDraft::default()
    };
    Product::new(ProductId::parse("p-1").expect("an id"), draft).expect("a valid product")
}

fuzz_target!(|data: &[u8]| {
    if data.len() < 9 {
        return;
    }
    let (head, body) = data.split_at(9);
    let flags = head[0];
    let now = i64::from_le_bytes(head[1..9].try_into().expect("8 bytes"));
    let now = Timestamp::from_unix(now.rem_euclid(Timestamp::MAX.unix() + 1));
    let product = product(flags & 1 == 1, (flags & 2 == 2).then_some(86_400));
    let activation = if flags & 4 == 4 {
        Activation::AwaitEntitlement
    } else {
        Activation::Immediate
    };
    let Ok(draft) = read_license_create(body) else {
        return;
    };
    let known = (flags & 8 == 0).then_some(&product);
    let id = LicenseId::parse("l-1").expect("an id");
    let Ok(license) = License::grant(id, draft, known, now, activation) else {
        return;
    };
    let purchase = license.purchase_record();
    let renew = license.renew_record();
    let parts = StoredParts {
        id: license.id().clone(),
        user: license.user().clone(),
        product: license.product().clone(),
        state: license.state().clone(),
        start_date: license.start_date(),
        stop_date: license.stop_date(),
        order_id: license.order_id().cloned(),
        price: purchase.price(),
        purchase_timestamp: purchase.purchase_timestamp(),
        payment_method: purchase.payment_method().map(str::to_owned),
        recurring: renew.recurring(),
        expiry_date: renew.expiry_date(),
    };
    let restored = License::restore(parts).expect("a granted license restores");
    assert_eq!(restored, license, "restore does not round-trip");
    for at in [
        now,
        license.start_date(),
        Timestamp::MAX,
        Timestamp::from_unix(0),
    ] {
        let _ = license.status_at(at);
        let _ = license.is_effective_at(at);
    }
    if let Ok(confirmed) = license.confirm() {
        let _ = confirmed.status_at(now);
    }
});
