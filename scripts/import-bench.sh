#!/usr/bin/env bash
# Benchmark of `licenses import` on PostgreSQL against COPY of the same rows (docs/migration.md).
#
#   scripts/import-bench.sh                 1,000,000 rows
#   ROWS=200000 scripts/import-bench.sh     fewer
#
# Generates a legacy CSV of ROWS licenses (every row good, one order id each), imports it with
# the release binary into a fresh database, then loads the same rows with psql's \copy into
# the licenses table of a second fresh database with the same schema (indexes and constraints
# included), and prints both rates, their ratio, the rate of a re-run over the same file
# (every row already present, as after a crash), and the import's peak RSS. The import's peak
# RSS is also measured on a file a tenth the size (SMALL_ROWS): streaming means both are
# about the same. Needs psql, /usr/bin/time and a PostgreSQL server (PGURL, default
# postgres://postgres@127.0.0.1:5432). Leaves nothing behind: the databases are dropped.
set -euo pipefail

ROWS=${ROWS:-1000000}
SMALL_ROWS=${SMALL_ROWS:-$((ROWS / 10))}
BATCH=${BATCH:-1000}
PGURL=${PGURL:-postgres://postgres@127.0.0.1:5432}
ROOT=$(cd "$(dirname "$0")/.." && pwd)
BIN=$ROOT/target/release/licenses
WORK=$(mktemp -d)
DB_IMPORT=import_bench_$$
DB_SMALL=import_bench_small_$$
DB_COPY=import_bench_copy_$$

cleanup() {
    for db in "$DB_IMPORT" "$DB_SMALL" "$DB_COPY"; do
        psql -q "$PGURL/postgres" -c "DROP DATABASE IF EXISTS $db" >/dev/null 2>&1 || true
    done
    rm -rf "$WORK"
}
trap cleanup EXIT

now() { date +%s.%N; }

(cd "$ROOT" && cargo build --release --quiet --bin licenses)

# A migrated database with the product the mapping names.
prepare() {
    psql -q "$PGURL/postgres" -c "CREATE DATABASE $1" >/dev/null
    (cd "$ROOT" && APP_ENV=test LICENSES__DATABASE__URL="$PGURL/$1" "$BIN" migrate >/dev/null)
    psql -q "$PGURL/$1" -c "INSERT INTO products (id, title, description,
        product_type, is_premium, is_user_visible, is_buyable, auto_grant_on_signup, price_amount,
        price_currency, license_duration, license_auto_renew, irdeto_product_id, live_channels,
        npvr_channels, catchup_channels, startover_channels, created_at, updated_at) VALUES ('p-sport', 'Sport', '', 'CHANNEL',
        false, true, true, false, 999, 'EUR', NULL, false, NULL, '[\"42\"]', '[]', '[]', '[]',
        0, 0)" >/dev/null
}

# The legacy file: ROWS good rows.
generate() {
    awk -v n="$1" 'BEGIN {
        print "user_id,product_code,start_date,stop_date,order_id,price_amount,currency,payment_method,recurring"
        for (i = 1; i <= n; i++)
            printf "user-%d,SPORT,1704067200,1735689600,LEG-%d,999,EUR,card,true\n", i, i
    }' >"$2"
}

echo "legacy_code,product_id" >"$WORK/products.csv"
echo "SPORT,p-sport" >>"$WORK/products.csv"

# Runs the import; prints "seconds peak_rss_kb".
import() {
    local db=$1 file=$2 start end
    start=$(now)
    (cd "$ROOT" && APP_ENV=test RUST_LOG=warn LICENSES__DATABASE__URL="$PGURL/$db" \
        /usr/bin/time -v -o "$WORK/time.txt" \
        "$BIN" import "$file" --products "$WORK/products.csv" --batch "$BATCH" \
        --report "$WORK/refused.csv" >"$WORK/summary.txt" 2>"$WORK/progress.txt")
    end=$(now)
    echo "$(echo "$end - $start" | bc -l) $(awk -F': ' '/Maximum resident/ {print $2}' "$WORK/time.txt")"
}

echo "generating $ROWS rows (and $SMALL_ROWS) ..."
generate "$ROWS" "$WORK/legacy.csv"
generate "$SMALL_ROWS" "$WORK/legacy-small.csv"

prepare "$DB_SMALL"
read -r _ small_rss < <(import "$DB_SMALL" "$WORK/legacy-small.csv")

prepare "$DB_IMPORT"
echo "importing $ROWS rows, batch $BATCH ..."
read -r import_secs import_rss < <(import "$DB_IMPORT" "$WORK/legacy.csv")
echo "  $(tail -n 1 "$WORK/summary.txt")"
stored=$(psql -tA "$PGURL/$DB_IMPORT" -c "SELECT count(*) FROM licenses")
[ "$stored" = "$ROWS" ] || { echo "expected $ROWS licenses, found $stored" >&2; exit 1; }
echo "importing the same $ROWS rows again (a re-run after a crash: every row already present) ..."
read -r rerun_secs _ < <(import "$DB_IMPORT" "$WORK/legacy.csv")
echo "  $(tail -n 1 "$WORK/summary.txt")"

# The same rows as the licenses table holds them, loaded by COPY.
awk -v n="$ROWS" 'BEGIN {
    for (i = 1; i <= n; i++)
        printf "lic-%d,user-%d,p-sport,ACTIVE,,,1704067200,1735689600,LEG-%d,999,EUR,1700000000,card,true,1735689600,1700000000\n", i, i, i
}' >"$WORK/copy.csv"
prepare "$DB_COPY"
echo "copying $ROWS rows ..."
start=$(now)
psql -q "$PGURL/$DB_COPY" -c "\\copy licenses (id, user_id, product_id, status, requested_status, status_reason, start_date, stop_date, order_id, price_amount, price_currency, purchase_timestamp, payment_method, recurring, expiry_date, created_at) FROM '$WORK/copy.csv' WITH (FORMAT csv)"
end=$(now)
copy_secs=$(echo "$end - $start" | bc -l)

import_rate=$(echo "$ROWS / $import_secs" | bc -l)
copy_rate=$(echo "$ROWS / $copy_secs" | bc -l)
printf '\nrows:                 %d (batch %d)\n' "$ROWS" "$BATCH"
printf 'licenses import:      %8.1f s  %9.0f rows/s\n' "$import_secs" "$import_rate"
printf 're-run, all present:  %8.1f s  %9.0f rows/s\n' "$rerun_secs" "$(echo "$ROWS / $rerun_secs" | bc -l)"
printf 'COPY:                 %8.1f s  %9.0f rows/s\n' "$copy_secs" "$copy_rate"
printf 'ratio import/COPY:    %8.2f (target >= 0.60)\n' "$(echo "$import_rate / $copy_rate" | bc -l)"
printf 'peak RSS, %7d rows: %6d KiB\n' "$ROWS" "$import_rss"
printf 'peak RSS, %7d rows: %6d KiB\n' "$SMALL_ROWS" "$small_rss"
