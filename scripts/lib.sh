# Shared by the scripts that check a freshly started service (sourced, from the repository
# root): scripts/newman.sh, scripts/schemathesis.sh, scripts/docs-screenshot.sh and
# scripts/console-browser.sh.

# ensure_chromium: exports CHROMIUM (default /usr/bin/chromium), installing Debian's chromium
# package with apt-get when it is missing and we are root.
ensure_chromium() {
    export CHROMIUM=${CHROMIUM:-/usr/bin/chromium}
    if [[ ! -x $CHROMIUM ]]; then
        if [[ $(id -u) != 0 ]]; then
            echo "$CHROMIUM is missing: apt-get install chromium (as root), or set CHROMIUM" >&2
            exit 1
        fi
        echo "apt-get install chromium"
        export DEBIAN_FRONTEND=noninteractive
        apt-get update -q
        apt-get install -y -q --no-install-recommends chromium fonts-dejavu-core
    fi
    # (Debian's wrapper script complains on standard error about nothing that matters here.)
    "$CHROMIUM" --version 2>/dev/null
}

# start_server [APP_ENV]: builds `licenses` and serves it under APP_ENV (default local) on a
# fresh temporary SQLite database, on free ports of 127.0.0.1. Sets USER_URL and
# MANAGEMENT_URL (http://127.0.0.1:PORT) once it answers /health/ready, and SERVER_DIR, a
# temporary directory (the database, the log SERVER_LOG, and whatever the caller keeps
# there). When the calling script exits the server is stopped with SIGTERM and SERVER_DIR
# removed; the end of the log is printed if the script failed.
start_server() {
    local app_env=${1:-local}
    echo "cargo build --bin licenses"
    cargo build --quiet --bin licenses
    SERVER_DIR=$(mktemp -d)
    SERVER_LOG=$SERVER_DIR/licenses.log
    : >"$SERVER_LOG"
    # Port 0: the system picks a free port; the log says which.
    APP_ENV=$app_env \
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
