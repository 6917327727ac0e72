# Shared helpers for scripts/*: install what is missing, start local services.
# Sourced, not run.

SUDO=""
if [ "$(id -u)" != "0" ]; then SUDO="sudo"; fi

say() { printf '\033[1m==> %s\033[0m\n' "$*" >&2; }

apt_updated=""
apt_install() {
    if [ -z "$apt_updated" ]; then
        $SUDO apt-get update -qq >&2
        apt_updated=1
    fi
    DEBIAN_FRONTEND=noninteractive $SUDO apt-get install -y -qq "$@" >&2
}

# Tools the tests and the demo use: speech (espeak-ng, sox), pip + unzip for models/fetch,
# libopus (found with pkg-config) for Ogg/Opus call recordings, and Lua 5.2 (the version
# FreeSWITCH 1.10's mod_lua is built with) + curl for the Lua IVR tests.
ensure_tools() {
    local missing=()
    command -v espeak-ng >/dev/null || missing+=(espeak-ng)
    command -v sox >/dev/null || missing+=(sox)
    command -v pkg-config >/dev/null || missing+=(pkg-config)
    command -v pkg-config >/dev/null && pkg-config --exists opus || missing+=(libopus-dev)
    command -v unzip >/dev/null || missing+=(unzip)
    python3 -m pip --version >/dev/null 2>&1 || missing+=(python3-pip)
    command -v lua5.2 >/dev/null || missing+=(lua5.2)
    command -v curl >/dev/null || missing+=(curl)
    if [ ${#missing[@]} -gt 0 ]; then
        say "installing ${missing[*]}"
        apt_install "${missing[@]}"
    fi
}

ensure_postgres() {
    if pg_isready -q -h 127.0.0.1 -p 5432 2>/dev/null; then return; fi
    if ! ls /etc/postgresql/*/main >/dev/null 2>&1; then
        say "installing PostgreSQL"
        apt_install postgresql
    fi
    say "starting PostgreSQL"
    local version
    version=$(ls /etc/postgresql | sort -V | tail -1)
    # Trust local TCP connections, as a development database does.
    local hba="/etc/postgresql/$version/main/pg_hba.conf"
    if ! grep -q "voice-ai-dev" "$hba" 2>/dev/null; then
        printf '# voice-ai-dev\nhost all all 127.0.0.1/32 trust\nhost all all ::1/128 trust\n' | $SUDO tee -a "$hba" >/dev/null
    fi
    $SUDO pg_ctlcluster --skip-systemctl-redirect "$version" main start || $SUDO pg_ctlcluster "$version" main start
    for _ in $(seq 1 30); do pg_isready -q -h 127.0.0.1 -p 5432 && return; sleep 1; done
    echo "PostgreSQL did not start" >&2; return 1
}

ensure_redis() {
    if redis-cli -h 127.0.0.1 -p 6379 ping >/dev/null 2>&1; then return; fi
    if ! command -v redis-server >/dev/null; then
        say "installing Redis"
        apt_install redis-server
    fi
    say "starting Redis"
    redis-server --daemonize yes --bind 127.0.0.1 --port 6379 --save "" --appendonly no >/dev/null
    for _ in $(seq 1 30); do redis-cli -h 127.0.0.1 -p 6379 ping >/dev/null 2>&1 && return; sleep 1; done
    echo "Redis did not start" >&2; return 1
}

# An S3-compatible server for the object store tests: moto's server mode (PyPI), in memory,
# on 127.0.0.1:5090. Any access key is accepted; buckets vanish when it stops.
S3_PORT=5090
ensure_s3() {
    if curl -s -o /dev/null "http://127.0.0.1:$S3_PORT/" 2>/dev/null; then return; fi
    if ! python3 -c 'import moto.server, flask_cors' >/dev/null 2>&1; then
        say "installing moto's S3 server"
        python3 -m pip install --quiet 'moto[server]' >&2
    fi
    say "starting the S3-compatible server on :$S3_PORT"
    # python3 -m works even when pip's script directory is not on PATH (pyenv shims).
    nohup python3 -m moto.server -H 127.0.0.1 -p "$S3_PORT" >/tmp/moto_server.log 2>&1 &
    disown || true
    for _ in $(seq 1 30); do curl -s -o /dev/null "http://127.0.0.1:$S3_PORT/" && return; sleep 1; done
    echo "the S3-compatible server did not start (see /tmp/moto_server.log)" >&2; return 1
}

# Headless Chromium and its WebDriver for the web panel's browser test
# (insights/tests/panel_browser.rs). Debian's packages put them in /usr/bin.
ensure_chromium() {
    if [ -x /usr/bin/chromium ] && [ -x /usr/bin/chromedriver ]; then return; fi
    say "installing chromium and chromium-driver"
    apt_install chromium chromium-driver
}
