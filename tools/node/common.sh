# Shared by scripts/newman.sh, scripts/openapi-lint.sh and scripts/docs-screenshot.sh
# (sourced, from the repository root): the pinned Node tools. The throwaway server that newman
# and the docs screenshot check is started by scripts/lib.sh.

NODE_TOOLS=tools/node
NODE_BIN=$NODE_TOOLS/node_modules/.bin

# Installs the pinned tools of tools/node/package-lock.json with `npm ci` when they are
# missing or older than the lock file.
node_tools() {
    if ! command -v npm >/dev/null; then
        echo "npm is missing: install Node.js 20 or newer (e.g. apt-get install nodejs npm)" >&2
        exit 1
    fi
    local installed=$NODE_TOOLS/node_modules/.package-lock.json
    if [[ ! -f $installed || $NODE_TOOLS/package-lock.json -nt $installed ]]; then
        echo "npm ci in $NODE_TOOLS"
        npm ci --prefix "$NODE_TOOLS" --no-audit --no-fund --loglevel=error
    fi
}
