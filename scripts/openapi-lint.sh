#!/usr/bin/env bash
# Lints the committed OpenAPI documents, docs/openapi/user.json and docs/openapi/management.json,
# with Redocly CLI (its `recommended` rules; pinned by tools/node/package-lock.json, installed
# from the npm registry with `npm ci` when missing). Fails on any error; warnings are printed.
set -euo pipefail

cd "$(dirname "${BASH_SOURCE[0]}")/.."
# shellcheck source=../tools/node/common.sh
source tools/node/common.sh

node_tools

documents=(docs/openapi/user.json docs/openapi/management.json)
for document in "${documents[@]}"; do
    if [[ ! -f $document ]]; then
        echo "$document is missing (cargo run -- openapi user|management writes it)" >&2
        exit 1
    fi
done

export REDOCLY_TELEMETRY=off REDOCLY_SUPPRESS_UPDATE_NOTICE=true
"$NODE_BIN/redocly" lint --format=stylish "${documents[@]}"
