//! What a hostile batch costs: a 16 MiB body (the management API's limit) made of `{}`
//! members, about 5.6 million of them, must be refused with one error while holding no more
//! than a few MiB besides the body itself. The heap is measured with dhat, which must be the
//! global allocator: hence a test binary of its own, with one test (dhat allows one profiler
//! per process).

use licenses_http::{read_batch_delete, read_license_batch};

#[global_allocator]
static ALLOC: dhat::Alloc = dhat::Alloc;

/// The management API's body limit (licenses-api-management's `BODY_LIMIT`).
const BODY: usize = 16 * 1024 * 1024;

/// The most a refused batch may hold besides its body.
const BUDGET: usize = 4 * 1024 * 1024;

/// `{"data":[{},{},…]}`, about `size` bytes, allocated once at its exact size.
fn empty_members(size: usize) -> Vec<u8> {
    let mut body = Vec::with_capacity(size);
    body.extend_from_slice(b"{\"data\":[{}");
    while body.len() + 5 <= size {
        body.extend_from_slice(b",{}");
    }
    body.extend_from_slice(b"]}");
    body
}

/// At least the peak of the heap while `f` runs above what was held before it: dhat's peak
/// is over the whole run, so this is the peak of `f` or of anything before it, whichever is
/// higher, less what is held now (an upper bound of what `f` added).
fn peak_above_now(f: impl FnOnce()) -> usize {
    let before = dhat::HeapStats::get();
    f();
    dhat::HeapStats::get()
        .max_bytes
        .saturating_sub(before.curr_bytes)
}

#[test]
fn sixteen_mib_of_empty_members_costs_a_few_mib_and_one_error() {
    let _profiler = dhat::Profiler::builder().testing().build();
    let body = empty_members(BODY);
    assert!(
        body.len() > BODY - 8 && body.len() <= BODY,
        "{}",
        body.len()
    );
    let members = (body.len() - 10) / 3;
    assert!(members > 5_000_000, "{members}");

    let mut created = None;
    let create_peak = peak_above_now(|| created = Some(read_license_batch(&body)));
    let refused = created.expect("ran").expect_err("far too many licenses");
    assert_eq!(refused.status().as_u16(), 422);
    assert_eq!(refused.errors().len(), 1, "one error: {refused}");
    assert_eq!(refused.errors()[0].code, "batch_too_large");

    let mut deleted = None;
    let delete_peak = peak_above_now(|| deleted = Some(read_batch_delete(&body)));
    let refused = deleted.expect("ran").expect_err("far too many licenses");
    assert_eq!(refused.errors().len(), 1, "one error: {refused}");
    assert_eq!(refused.errors()[0].code, "batch_too_large");

    println!(
        "16 MiB of {{}} members ({members}): batch_create peaked at most {create_peak} bytes \
         above the body, batch_delete at most {delete_peak}"
    );
    assert!(
        create_peak < BUDGET,
        "batch_create held {create_peak} bytes"
    );
    assert!(
        delete_peak < BUDGET,
        "batch_delete held {delete_peak} bytes"
    );
}
