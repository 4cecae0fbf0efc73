#!/usr/bin/env bash
# Schema fuzzing of both APIs with schemathesis (from PyPI): starts `licenses serve` on a
# temporary SQLite database and free ports, and runs schemathesis against each API's served
# OpenAPI document with authentication, a fixed seed and every check (`--checks all`):
# among them not_a_server_error, status_code_conformance, content_type_conformance,
# response_schema_conformance, response_headers_conformance, negative_data_rejection
# (bad input accepted), positive_data_acceptance (good input refused with 400/422),
# missing_required_header, ignored_auth, unsupported_method, use_after_free,
# ensure_resource_availability. Each with its default expectations.
# Exits non-zero on any failure; prints the number of generated cases per API.
#
#   scripts/schemathesis.sh                 # both APIs
#   ST_MAX_EXAMPLES=50 scripts/schemathesis.sh   # more cases per operation
#
# Needs python3 (with venv) and PyPI; schemathesis is installed once into
# target/ci-tools/schemathesis-VERSION.
set -euo pipefail

cd "$(dirname "$0")/.."

ST_VERSION=4.32.5
SEED=${ST_SEED:-20261123}
MAX_EXAMPLES=${ST_MAX_EXAMPLES:-60}
CHECKS=all
USER_ID=41
MANAGEMENT_KEY=dev-management-key-change-me

# The newest CPython at hand: 3.11 before 3.11.8 can fail inside `ast` while Hypothesis
# describes a strategy ("AST constructor recursion depth mismatch"), which schemathesis then
# reports as an error of the run. ST_PYTHON chooses another interpreter.
python=${ST_PYTHON:-}
if [ -z "$python" ]; then
    for candidate in python3.13 python3.12 /root/.pyenv/versions/3.13*/bin/python3 \
        /root/.pyenv/versions/3.12*/bin/python3 python3; do
        if "$candidate" -c 'import sys, venv; sys.exit(sys.version_info < (3, 11, 8))' 2>/dev/null \
            || [ "$candidate" = python3 ]; then
            python=$candidate
            break
        fi
    done
fi
py_version=$("$python" -c 'import sys; print("%d.%d" % sys.version_info[:2])')
venv="target/ci-tools/schemathesis-$ST_VERSION-py$py_version"
if [ ! -x "$venv/bin/st" ]; then
    echo "schemathesis: installing schemathesis==$ST_VERSION into $venv ($python)"
    rm -rf "$venv"
    "$python" -m venv "$venv"
    "$venv/bin/pip" install --quiet --disable-pip-version-check "schemathesis==$ST_VERSION"
fi
st="$venv/bin/st"

# shellcheck source=lib.sh
source scripts/lib.sh
start_server test
bin=target/debug/licenses
# The run's files live beside the server's database, removed when the script exits.
work=$SERVER_DIR
user_spec="$USER_URL/api/license/v4/openapi.json"
management_spec="$MANAGEMENT_URL/api/license/management/v4/openapi.json"

token=$(APP_ENV=test "$bin" token --user "$USER_ID" --ttl 3600)

# A product and a license of it for the user, for the operations that read one resource:
# without them every such case is a 404, which tells nothing about the handlers.
read -r product_id license_id spare_id < <("$python" scripts/schemathesis_seed.py \
    "$MANAGEMENT_URL/api/license/management/v4" "$MANAGEMENT_KEY" "$USER_ID")
echo "schemathesis: seeded product $product_id and license $license_id of user $USER_ID"
# Documents that name a product name that one (scripts/schemathesis_hooks.py).
export ST_SEED_PRODUCT=$product_id
export SCHEMATHESIS_HOOKS=scripts/schemathesis_hooks.py

# Paths under /users/{user_id} of the user API answer only the token's user: fuzz them as
# that user (any other user is a 403, which tells nothing about the handlers).
# No state kept between runs (schemathesis' cache, Hypothesis' database): the same seed gives
# the same cases.
common='[cache]
enabled = false
'
# Credentials through the OpenAPI security schemes (not a header on every request), so that
# the checks that leave them out (missing_required_header, ignored_auth) can.
cat >"$work/user.toml" <<EOF
$common
[auth.openapi.Bearer]
bearer = "$token"

[parameters]
"path.user_id" = "$USER_ID"

[[operations]]
include-operation-id = "GetUserLicense"
parameters = { "path.license_id" = "$license_id" }
EOF
{
    printf '%s\n' "$common"
    printf '[auth.openapi.Apikey]\napi_key = "Apikey %s"\n\n' "$MANAGEMENT_KEY"
    printf '[[operations]]\ninclude-operation-id = "GetProductById"\nparameters = { "path.product_id" = "%s" }\n\n' "$product_id"
    # Patches change the spare product, never the one licenses and purchases name.
    printf '[[operations]]\ninclude-operation-id = "UpdateProduct"\nparameters = { "path.product_id" = "%s" }\n\n' "$spare_id"
    printf '[[operations]]\ninclude-operation-id = "GetLicenseById"\nparameters = { "path.license_id" = "%s" }\n\n' "$license_id"
    for op in GetLicensesByUser GetUserEntitlements; do
        printf '[[operations]]\ninclude-operation-id = "%s"\nparameters = { "path.user_id" = "%s" }\n\n' "$op" "$USER_ID"
    done
} >"$work/management.toml"

# CreateWebhook is left out: whether a URL is taken depends on the service's network policy
# (events.webhooks.*), which no schema can say, so a schema-valid URL is refused (422) and
# positive_data_acceptance cannot hold (tests/webhooks.rs covers what it refuses and takes).
# The reports stay after the run, for a look at the cases and failures.
reports=target/schemathesis
mkdir -p "$reports"
failed=0
summary=""
run() {
    local name=$1 spec=$2 config=$3
    local report="$reports/$name.ndjson"
    echo
    echo "schemathesis: $name API, $spec"
    set +e
    "$st" --config-file "$config" run "$spec" \
        --checks "$CHECKS" \
        --seed "$SEED" \
        --max-examples "$MAX_EXAMPLES" \
        --workers 2 \
        --phases examples,coverage,fuzzing \
        --generation-database none \
        --exclude-operation-id CreateWebhook \
        --report ndjson --report-ndjson-path "$report" \
        --no-color
    local status=$?
    set -e
    local cases
    cases=$(python3 - "$report" <<'PY'
import json, sys
n = 0
with open(sys.argv[1]) as f:
    for line in f:
        event = json.loads(line)
        (kind, body), = event.items()
        if kind == "ScenarioFinished":
            n += len((body.get("recorder") or {}).get("cases") or {})
print(n)
PY
)
    summary="$summary$name API: $cases cases, exit status $status"$'\n'
    if [ "$status" -ne 0 ]; then failed=1; fi
}

run user "$user_spec" "$work/user.toml"
run management "$management_spec" "$work/management.toml"

echo
echo "schemathesis: seed $SEED, $MAX_EXAMPLES examples per operation and phase"
printf '%s' "$summary"
if [ "$failed" -ne 0 ]; then
    echo "schemathesis: FAILED (server log: below)" >&2
    exit 1
fi
echo "schemathesis: passed"
