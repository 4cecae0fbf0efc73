# Shared by scripts/newman.sh, scripts/openapi-lint.sh and scripts/docs-screenshot.sh
# (sourced, from the repository root): the pinned Node tools, and a throwaway server.

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

# Builds `licenses` and serves it on a fresh temporary SQLite database, on free ports of
# 127.0.0.1. Sets USER_URL and MANAGEMENT_URL (http://127.0.0.1:PORT); the server is stopped,
# and its database removed, when the calling script exits. Its log is printed if it fails.
start_server() {
    echo "cargo build --bin licenses"
    cargo build --quiet --bin licenses
    SERVER_DIR=$(mktemp -d)
    SERVER_LOG=$SERVER_DIR/licenses.log
    : >"$SERVER_LOG"
    # Port 0: the system picks a free port; the log says which.
    APP_ENV=local \
        LICENSES__DATABASE__URL="sqlite://$SERVER_DIR/licenses.db" \
        LICENSES__SERVER__USER_ADDR=127.0.0.1:0 \
        LICENSES__SERVER__MANAGEMENT_ADDR=127.0.0.1:0 \
        RUST_LOG=warn,licenses=info \
        target/debug/licenses serve >"$SERVER_LOG" 2>&1 &
    SERVER_PID=$!
    trap stop_server EXIT
    local line=""
    for _ in $(seq 1 300); do
        line=$(grep -m1 'listening user_api=' "$SERVER_LOG" || true)
        [[ -n $line ]] && break
        if ! kill -0 "$SERVER_PID" 2>/dev/null; then
            echo "licenses serve exited:" >&2
            cat "$SERVER_LOG" >&2
            exit 1
        fi
        sleep 0.1
    done
    if [[ -z $line ]]; then
        echo "licenses serve did not start listening within 30 s:" >&2
        cat "$SERVER_LOG" >&2
        exit 1
    fi
    USER_URL=http://$(grep -o 'user_api=[0-9.]*:[0-9]*' <<<"$line" | cut -d= -f2)
    MANAGEMENT_URL=http://$(grep -o 'management_api=[0-9.]*:[0-9]*' <<<"$line" | cut -d= -f2)
    for _ in $(seq 1 100); do
        curl -fsS -o /dev/null "$USER_URL/health/ready" 2>/dev/null && break
        sleep 0.1
    done
    curl -fsS -o /dev/null "$USER_URL/health/ready"
    echo "licenses serve: user API $USER_URL, management API $MANAGEMENT_URL, database $SERVER_DIR/licenses.db"
}

stop_server() {
    local status=$?
    if [[ -n ${SERVER_PID:-} ]] && kill -0 "$SERVER_PID" 2>/dev/null; then
        kill -TERM "$SERVER_PID"
        wait "$SERVER_PID" 2>/dev/null || true
    fi
    if ((status != 0)) && [[ -f ${SERVER_LOG:-} ]]; then
        echo "---- licenses serve log ----" >&2
        tail -n 50 "$SERVER_LOG" >&2
    fi
    [[ -n ${SERVER_DIR:-} ]] && rm -rf "$SERVER_DIR"
    return "$status"
}
