# shellcheck shell=bash
# Sourced by the scripts that set up what the tests drive (slurm.sh, podman.sh,
# sqlservers.sh): install_packages PROGRAM:PACKAGE… installs, as root, the Debian
# packages whose programs are missing; wait_for SECONDS WHAT COMMAND… waits until
# COMMAND succeeds (the caller defines say and die; WAIT_HINT ends the failure).

as_root() { if [ "$(id -u)" -eq 0 ]; then "$@"; else sudo "$@"; fi; }

install_packages() {
    local missing=()
    for pair in "$@"; do
        command -v "${pair%%:*}" >/dev/null 2>&1 || [ -x "/usr/sbin/${pair%%:*}" ] ||
            missing+=("${pair#*:}")
    done
    [ ${#missing[@]} -eq 0 ] && return 0
    say "installing ${missing[*]}"
    export DEBIAN_FRONTEND=noninteractive
    as_root apt-get install -y -qq --no-install-recommends "${missing[@]}" >/dev/null 2>&1 || {
        as_root apt-get update -qq >/dev/null 2>&1
        as_root apt-get install -y -qq --no-install-recommends "${missing[@]}" >/dev/null
    }
}

wait_for() {
    local seconds=$1 what=$2
    shift 2
    for _ in $(seq $((seconds * 10))); do
        "$@" >/dev/null 2>&1 && return 0
        sleep 0.1
    done
    die "$what did not come up within ${seconds}s${WAIT_HINT:-}"
}
