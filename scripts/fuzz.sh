#!/usr/bin/env bash
# Runs every cargo-fuzz target of fuzz/ for a bounded time and fails on the first crash.
#
#   scripts/fuzz.sh [SECONDS_PER_TARGET]     (default 60)
#   FUZZ_TARGETS="query product" scripts/fuzz.sh 30   (only some targets)
#
# Not part of `cargo test` or CI: run it before a release or after touching a reader or the
# domain's conversions. Needs cargo-fuzz (`cargo install cargo-fuzz`) and a C++ compiler
# (libFuzzer is built from source).
#
# cargo-fuzz passes nightly-only flags to rustc (-Zsanitizer, sancov passes). This machine
# has the stable toolchain only, so the script sets RUSTC_BOOTSTRAP=1, which lets the stable
# compiler accept them; with a nightly toolchain installed it is harmless.
#
# The sanitizer is `none`: every crate of ours forbids unsafe code, so AddressSanitizer has
# nothing to find that a Rust panic would not report, and without it a target runs ~3x
# faster. What counts as a crash: a panic (including the targets' own property checks and,
# since cargo-fuzz builds with debug assertions, integer overflow), an allocation over
# -rss_limit_mb, or a single input running over -timeout.
#
# Each target starts from the valid documents of fuzz/seeds/TARGET (committed) and the tokens
# of fuzz/json.dict; its corpus grows in fuzz/corpus/TARGET (ignored by git). A crash is saved under
# fuzz/artifacts/TARGET/ and can be replayed with
#   RUSTC_BOOTSTRAP=1 cargo fuzz run -s none TARGET fuzz/artifacts/TARGET/crash-…
# and then becomes a regression test in the crate it belongs to.
set -euo pipefail

seconds="${1:-60}"
root="$(cd "$(dirname "$0")/.." && pwd)"
cd "$root/fuzz"
export RUSTC_BOOTSTRAP=1

command -v cargo-fuzz >/dev/null || {
    echo "cargo-fuzz is missing: cargo install cargo-fuzz" >&2
    exit 2
}

targets="${FUZZ_TARGETS:-$(cargo fuzz list)}"
build_log="$(mktemp)"
if ! nice -n 5 cargo fuzz build -s none >"$build_log" 2>&1; then
    cat "$build_log" >&2
    echo "the fuzz targets do not build" >&2
    exit 2
fi
rm -f "$build_log"

summary=()
failed=0
for target in $targets; do
    mkdir -p "corpus/$target"
    log="$(mktemp)"
    echo "== $target: ${seconds}s"
    seeds=()
    [ -d "seeds/$target" ] && seeds=("seeds/$target")
    if nice -n 5 cargo fuzz run -s none "$target" "corpus/$target" "${seeds[@]}" -- \
        -dict=json.dict -max_total_time="$seconds" -timeout=10 -rss_limit_mb=2048 -max_len=65536 \
        -print_final_stats=1 >"$log" 2>&1; then
        status=ok
    else
        status=CRASH
        failed=1
        grep -E "panicked|ERROR|SUMMARY|artifact_prefix|Test unit written" "$log" | head -n 20 >&2
    fi
    # libFuzzer's final statistics, and the coverage of its last status line.
    execs="$(sed -n 's/^stat::number_of_executed_units: *//p' "$log" | tail -n 1)"
    per_sec="$(sed -n 's/^stat::average_exec_per_sec: *//p' "$log" | tail -n 1)"
    last="$(grep -E '^#[0-9]+' "$log" | tail -n 1)"
    cov="$(sed -n 's/.*cov: \([0-9]*\).*/\1/p' <<<"$last")"
    ft="$(sed -n 's/.*ft: \([0-9]*\).*/\1/p' <<<"$last")"
    corp="$(sed -n 's/.*corp: \([0-9]*\/[0-9A-Za-z]*\).*/\1/p' <<<"$last")"
    summary+=("$(printf '%-16s %-6s execs=%-10s exec/s=%-7s cov=%-6s ft=%-6s corpus=%s' \
        "$target" "$status" "${execs:-?}" "${per_sec:-?}" "${cov:-?}" "${ft:-?}" "${corp:-?}")")
    rm -f "$log"
done

echo
echo "fuzzing summary (${seconds}s per target):"
printf '%s\n' "${summary[@]}"
exit "$failed"
