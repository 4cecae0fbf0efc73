#!/usr/bin/env bash
# The docs screenshot check: starts `licenses serve` on a fresh temporary SQLite database and
# free ports, opens /api/license/v4/docs and /api/license/management/v4/docs in headless
# Debian Chromium with playwright-core (pinned in tools/node), waits for the operations to
# render, fails unless each page renders as many operations as its OpenAPI document has, and
# saves the screenshots as target/docs-screenshots/docs-{user,management}.png.
# Installs what is missing: Chromium (apt package `chromium`, as root) and the Node tools.
set -euo pipefail

cd "$(dirname "${BASH_SOURCE[0]}")/.."
# shellcheck source=../tools/node/common.sh
source tools/node/common.sh
# shellcheck source=lib.sh
source scripts/lib.sh

ensure_chromium

node_tools
start_server

node "$NODE_TOOLS/docs-screenshot.mjs" "$USER_URL" "$MANAGEMENT_URL" target/docs-screenshots
