#!/usr/bin/env bash
# Podman for the container tests (tests/test_containers.py), on Debian/Ubuntu, as
# root, with no registry reachable. Idempotent: each step is skipped when done.
#
#   bash scripts/podman.sh setup       install podman & co when missing, write
#                                      $WORK/containers.conf, build the base image
#                                      (Debian + Python, from the apt mirror) once
#   bash scripts/podman.sh build TAG   setup, then build the Containerfile as TAG on
#                                      that base
#
# Use the same settings in your own shell: export CONTAINERS_CONF=$WORK/containers.conf
# WORK is .podman/ in the repository (gitignored), or QME_PODMAN_WORK.
# Nothing under /etc is changed: the workarounds this kind of machine needs (crun
# cannot set the default rlimits nor run on hybrid cgroups; no systemd) live in
# that containers.conf. A proxy's CA that the host trusts is mounted into the
# build's pip step only, never copied into the image.
set -euo pipefail
cd "$(dirname "$0")/.."

WORK=${QME_PODMAN_WORK:-$PWD/.podman}
BASE=${QME_PODMAN_BASE:-localhost/qme-base:bookworm}
CA=/etc/ssl/certs/ca-certificates.crt
export CONTAINERS_CONF=$WORK/containers.conf

say() { echo "podman.sh: $*" >&2; }
die() { say "error: $*"; exit 1; }
# shellcheck source=scripts/packages.sh
. scripts/packages.sh

write_conf() {
    mkdir -p "$WORK"
    local nofile nproc
    nofile=$(ulimit -H -n) nproc=$(ulimit -H -u)
    [ "$nofile" = unlimited ] && nofile=1048576
    # Setting nproc as high as the hard limit is refused here too: 4096 is plenty.
    if [ "$nproc" = unlimited ] || [ "$nproc" -gt 4096 ]; then nproc=4096; fi
    cat >"$CONTAINERS_CONF.tmp" <<CONF
# Written by scripts/podman.sh: podman on a machine without systemd, whose hard
# rlimits are below podman's defaults and whose cgroups crun does not support.
[containers]
default_ulimits = ["nofile=$nofile:$nofile", "nproc=$nproc:$nproc"]

[engine]
runtime = "runc"
cgroup_manager = "cgroupfs"
events_logger = "file"
CONF
    mv "$CONTAINERS_CONF.tmp" "$CONTAINERS_CONF"
}

# The first Debian mirror apt uses here (deb822 .sources files, or sources.list).
mirror() {
    local found
    found=$(grep -hE '^\s*URIs:' /etc/apt/sources.list.d/*.sources 2>/dev/null |
        awk '{print $2}' | grep -v security | head -1 || true)
    [ -n "$found" ] || found=$(grep -hE '^\s*deb\s' /etc/apt/sources.list 2>/dev/null |
        awk '{print $2}' | head -1 || true)
    echo "${found:-http://deb.debian.org/debian}"
}

base_image() {
    podman image exists "$BASE" && return 0
    local rootfs=$WORK/rootfs
    say "building $BASE from $(mirror) (debootstrap, about 30 s)"
    rm -rf "$rootfs"
    debootstrap --variant=minbase --include=python3,python3-venv bookworm "$rootfs" "$(mirror)" \
        >"$WORK/debootstrap.log" 2>&1 || die "debootstrap failed: see $WORK/debootstrap.log"
    # What an image does not need: package lists, caches, documentation.
    rm -rf "$rootfs"/var/lib/apt/lists/* "$rootfs"/var/cache/apt/* "$rootfs"/usr/share/doc \
        "$rootfs"/usr/share/man "$rootfs"/usr/share/info "$rootfs"/usr/share/locale
    tar -C "$rootfs" -c . | podman import -q - "$BASE" >/dev/null
    rm -rf "$rootfs"
}

setup() {
    [ "$(uname -s)" = Linux ] || die "needs Linux"
    install_packages podman:podman buildah:buildah debootstrap:debootstrap runc:runc \
        newuidmap:uidmap fuse-overlayfs:fuse-overlayfs slirp4netns:slirp4netns
    # The docker CLI, which tests the docker executor against podman's service; its
    # own failure to install leaves the podman tests alone.
    install_packages docker:docker.io || say "warning: could not install the docker CLI"
    write_conf
    base_image
}

build() {
    local tag=${1:?usage: podman.sh build TAG}
    setup
    local args=(--build-arg "BASE=$BASE" -t "$tag" -f Containerfile)
    if [ -r "$CA" ]; then
        args+=(-v "$CA:/host-ca.crt:ro" --build-arg PIP_CERT=/host-ca.crt)
    fi
    # The index pip uses here, when it is a network one (file:// paths are not in the build).
    local name value
    for name in PIP_INDEX_URL PIP_EXTRA_INDEX_URL PIP_TRUSTED_HOST; do
        value=${!name:-}
        case $value in http*) args+=(--build-arg "$name=$value") ;; esac
    done
    podman build -q "${args[@]}" . >/dev/null
}

case ${1:-setup} in
    setup) setup ;;
    build) shift; build "$@" ;;
    *) die "usage: podman.sh setup | build TAG" ;;
esac
