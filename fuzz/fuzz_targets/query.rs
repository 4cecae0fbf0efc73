//! Query strings: `Query::parse` against each endpoint's known parameters, then everything
//! the handlers derive from it (filters, page request, include, the cursor-free query).
//! Errors must be 400s naming a parameter, never a panic.
#![no_main]

use libfuzzer_sys::fuzz_target;
use licenses_http::query::{LicenseListParams, QueryParams, StatusFilter, UserFilter};
use licenses_http::{Query, license_filter, page_request};

fuzz_target!(|data: &[u8]| {
    let Some((&which, rest)) = data.split_first() else {
        return;
    };
    let known: &[&[&str]] = match which % 4 {
        0 => &[UserFilter::NAMES, LicenseListParams::NAMES],
        1 => &[LicenseListParams::NAMES],
        2 => &[StatusFilter::NAMES],
        _ => &[],
    };
    let query_string = String::from_utf8_lossy(rest);
    match Query::parse(&query_string, known) {
        Ok(q) => {
            for name in known.iter().flat_map(|names| names.iter()) {
                let _ = q.get(name);
            }
            let _ = q.include_product();
            let _ = license_filter(&q);
            let _ = page_request(&q);
            let without = q.without_cursor();
            assert!(
                !without.contains("page%5Bafter%5D=") && !without.contains("page[after]="),
                "the cursor is still there: {without}"
            );
        }
        Err(e) => assert!(e.status().is_client_error(), "{e}"),
    }
});
