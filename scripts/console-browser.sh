#!/usr/bin/env bash
# The support console in a real browser: builds `licenses` and the Irdeto stand-in
# (crates/irdeto/examples/irdeto-standin.rs), then tools/node/console-browser.mjs starts both
# on free loopback ports and a fresh SQLite database, and drives headless Debian Chromium with
# playwright-core (pinned in tools/node) through the console: sign in, find a user, licenses
# and grid, explain a black channel, retry its failed DRM job, revoke, grant, suspend and
# reinstate, audit trail. Screenshots of each step: target/console-screenshots/*.png.
# Installs what is missing: Chromium (apt package `chromium`, as root) and the Node tools.
set -euo pipefail

cd "$(dirname "${BASH_SOURCE[0]}")/.."
# shellcheck source=../tools/node/common.sh
source tools/node/common.sh
# shellcheck source=lib.sh
source scripts/lib.sh

ensure_chromium
node_tools

echo "cargo build --bin licenses; cargo build --example irdeto-standin"
cargo build --quiet --bin licenses
cargo build --quiet -p licenses-irdeto --example irdeto-standin

node "$NODE_TOOLS/console-browser.mjs" target/debug/licenses target/debug/examples/irdeto-standin \
    target/console-screenshots
