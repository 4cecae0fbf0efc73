#!/usr/bin/env bash
# Load and soak: mixed traffic against `licenses serve` (release build) over a private,
# throwaway PostgreSQL cluster, with a database outage in the middle, then a report and a
# consistency check. See docs/operations.md, "Load and soak".
#
#   scripts/soak.sh [--duration SECONDS] [--outage SECONDS] [--outage-at SECONDS]
#                   [--clients N] [--users N] [--warmup SECONDS] [--keep]
#
#   --duration   seconds of traffic (default 600)
#   --outage     seconds PostgreSQL is stopped for, 0 for none (default 30)
#   --outage-at  when the outage starts, seconds into the traffic (default: halfway)
#   --clients    concurrent clients (default 32)
#   --users      distinct users, one token each (default 2000)
#   --warmup     seconds of traffic before the RSS baseline (default: a tenth of the
#                duration, at most 60)
#   --keep       keep the temporary directory (database, service log) for a look afterwards
#
# It creates a PostgreSQL cluster of its own (initdb/pg_ctl of the newest
# /usr/lib/postgresql/*/bin, on a free port, in a temporary directory; run as the postgres
# user when the script runs as root), so that it can stop and start it without touching any
# other database. The driver is examples/soak.rs (built in the dev profile, whose
# dependencies are already compiled for the tests; the service is the release build).
#
# Exit status: 0 when the run passes; 1 when a license was lost or duplicated, a deleted one
# is still there, a 5xx was answered outside the outage (or any 5xx other than 503), a
# request got no answer, the service's RSS grew by 10 % or more after the warm-up, or the
# service did not survive; 2 when the run could not be set up.
set -euo pipefail

duration=600
outage=30
outage_at=""
clients=32
users=2000
warmup=""
keep=0
while [ $# -gt 0 ]; do
    case "$1" in
        --duration) duration="$2"; shift 2 ;;
        --outage) outage="$2"; shift 2 ;;
        --outage-at) outage_at="$2"; shift 2 ;;
        --clients) clients="$2"; shift 2 ;;
        --users) users="$2"; shift 2 ;;
        --warmup) warmup="$2"; shift 2 ;;
        --keep) keep=1; shift ;;
        -h|--help) sed -n '2,28p' "$0"; exit 0 ;;
        *) echo "unknown argument: $1" >&2; exit 2 ;;
    esac
done

root="$(cd "$(dirname "$0")/.." && pwd)"
cd "$root"

pg_bin="$(ls -d /usr/lib/postgresql/*/bin 2>/dev/null | sort -V | tail -n 1)"
[ -x "$pg_bin/pg_ctl" ] || { echo "no PostgreSQL server binaries under /usr/lib/postgresql" >&2; exit 2; }

# As root, PostgreSQL must run as another user.
as_pg=()
if [ "$(id -u)" = 0 ]; then
    as_pg=(runuser -u postgres --)
fi

free_port() {
    local port
    while :; do
        port=$((20000 + RANDOM % 40000))
        if ! ss -ltnH "sport = :$port" | grep -q .; then
            echo "$port"
            return
        fi
    done
}

work="$(mktemp -d /tmp/licenses-soak.XXXXXX)"
chmod 755 "$work"
pg_data="$work/pg"
pg_port="$(free_port)"
user_port="$(free_port)"
management_port="$(free_port)"
service_pid=""

cleanup() {
    if [ -n "$service_pid" ] && kill -0 "$service_pid" 2>/dev/null; then
        kill -TERM "$service_pid" 2>/dev/null || true
        wait "$service_pid" 2>/dev/null || true
    fi
    if [ -f "$pg_data/postmaster.pid" ]; then
        "${as_pg[@]}" "$pg_bin/pg_ctl" -D "$pg_data" -m immediate -w stop >/dev/null 2>&1 || true
    fi
    if [ "$keep" = 1 ]; then
        echo "soak: kept $work"
    else
        rm -rf "$work"
    fi
}
trap cleanup EXIT

echo "soak: building (release service, dev-profile driver)"
nice -n 5 cargo build --quiet --release --bin licenses
nice -n 5 cargo build --quiet --example soak

echo "soak: PostgreSQL ($pg_bin) on 127.0.0.1:$pg_port in $work"
if [ "$(id -u)" = 0 ]; then
    chown postgres "$work"
fi
"${as_pg[@]}" "$pg_bin/initdb" -D "$pg_data" -A trust -U postgres --no-sync >"$work/initdb.log" 2>&1 ||
    { cat "$work/initdb.log" >&2; exit 2; }
pg_options="-p $pg_port -k $work -c listen_addresses=127.0.0.1 -c max_connections=50"
pg_start=("${as_pg[@]}" "$pg_bin/pg_ctl" -D "$pg_data" -l "$work/postgres.log" -o "$pg_options" -w start)
pg_stop=("${as_pg[@]}" "$pg_bin/pg_ctl" -D "$pg_data" -m fast -w stop)
"${pg_start[@]}" >/dev/null
database_url="postgres://postgres@127.0.0.1:$pg_port/licenses_soak"
psql -q "postgres://postgres@127.0.0.1:$pg_port/postgres" -c "CREATE DATABASE licenses_soak"

echo "soak: licenses serve on 127.0.0.1:$user_port (user) and 127.0.0.1:$management_port (management)"
APP_ENV=test \
LICENSES_CONFIG_DIR="$root/config" \
LICENSES__DATABASE__URL="$database_url" \
LICENSES__DATABASE__POOL_SIZE=16 \
LICENSES__SERVER__USER_ADDR="127.0.0.1:$user_port" \
LICENSES__SERVER__MANAGEMENT_ADDR="127.0.0.1:$management_port" \
RUST_LOG="${RUST_LOG:-warn}" \
    "$root/target/release/licenses" serve >"$work/service.log" 2>&1 &
service_pid=$!
for _ in $(seq 1 100); do
    if curl -fsS "http://127.0.0.1:$management_port/health/ready" >/dev/null 2>&1; then
        break
    fi
    kill -0 "$service_pid" 2>/dev/null || { cat "$work/service.log" >&2; exit 2; }
    sleep 0.2
done
curl -fsS "http://127.0.0.1:$management_port/health/ready" >/dev/null ||
    { echo "the service is not ready" >&2; cat "$work/service.log" >&2; exit 2; }

quote() { printf '%q ' "$@"; }
driver_args=(
    --user-url "http://127.0.0.1:$user_port"
    --management-url "http://127.0.0.1:$management_port"
    --duration "$duration" --clients "$clients" --users "$users"
    --outage "$outage"
    --stop-database "$(quote "${pg_stop[@]}")"
    --start-database "$(quote "${pg_start[@]}")"
    --pid "$service_pid"
    --database-url "$database_url"
)
if [ -n "$outage_at" ]; then
    driver_args+=(--outage-at "$outage_at")
fi
if [ -n "$warmup" ]; then
    driver_args+=(--warmup "$warmup")
fi

status=0
"$root/target/debug/examples/soak" "${driver_args[@]}" || status=$?

echo
if kill -0 "$service_pid" 2>/dev/null; then
    echo "soak: the service (pid $service_pid) ran throughout, never restarted"
else
    echo "soak: FAIL: the service died; its log:"
    tail -n 50 "$work/service.log"
    status=1
fi
errors="$(grep -c -E 'ERROR|panicked' "$work/service.log" || true)"
echo "soak: service log lines with ERROR or a panic: $errors"
exit "$status"
