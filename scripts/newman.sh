#!/usr/bin/env bash
# Runs the whole Postman collection (docs/postman/LicenseV4.postman_collection.json) with
# newman against a freshly started `licenses serve`: a new temporary SQLite database, free
# ports of 127.0.0.1 (they override the URLs of docs/postman/local.postman_environment.json).
# Fails on any failed assertion or request. Needs cargo, curl and Node.js 20+ with npm; newman
# is installed from the npm registry, pinned by tools/node/package-lock.json.
#
#   scripts/newman.sh [NEWMAN OPTIONS…]     e.g. scripts/newman.sh --folder UseCase
set -euo pipefail

cd "$(dirname "${BASH_SOURCE[0]}")/.."
# shellcheck source=../tools/node/common.sh
source tools/node/common.sh
# shellcheck source=lib.sh
source scripts/lib.sh

node_tools
start_server

"$NODE_BIN/newman" run docs/postman/LicenseV4.postman_collection.json \
    --environment docs/postman/local.postman_environment.json \
    --env-var "user_url=$USER_URL" \
    --env-var "management_url=$MANAGEMENT_URL" \
    --reporters cli \
    --reporter-cli-no-banner \
    "$@"
