# Shared helpers for scripts/*. Source it; do not execute it.
# shellcheck shell=bash

log() { printf '%s: %s\n' "${0##*/}" "$*" >&2; }
die() { log "error: $*"; exit 1; }

# apt_install PKG...: non-interactive, quiet install. If the first attempt
# fails (typically stale or missing package lists), run apt-get update and
# retry once.
apt_install() {
    [ "$(id -u)" -eq 0 ] || die "need root to apt-get install $*"
    command -v apt-get >/dev/null 2>&1 || die "apt-get not found; install $* by hand"
    local aptlog
    aptlog=$(mktemp)
    export DEBIAN_FRONTEND=noninteractive
    log "installing $* with apt-get ..."
    if ! apt-get install -y -q --no-install-recommends "$@" >"$aptlog" 2>&1; then
        log "apt-get install failed; running apt-get update and retrying"
        if ! { apt-get update -q && apt-get install -y -q --no-install-recommends "$@"; } >"$aptlog" 2>&1; then
            tail -n 30 "$aptlog" >&2
            rm -f "$aptlog"
            die "apt-get install $* failed"
        fi
    fi
    rm -f "$aptlog"
    log "installed $*"
}
