#!/usr/bin/env bash
# The whole test suite on a fresh Debian/Ubuntu machine: installs what the tests
# need (Debian packages when missing, Python packages from pyproject.toml into
# .venv), then runs ruff and pytest. Extra arguments go to pytest, e.g.
#   bash scripts/test.sh -m "not slow"      bash scripts/test.sh tests/test_cli.py
set -euo pipefail
cd "$(dirname "$0")/.."

# Debian packages the tests drive for real: a pty-using `script`, less and vim
# (full-screen programs), GNU time, setpriv (run as an unprivileged user), the
# shells qme integrates with, shellcheck for its bash hooks, and chromium for the
# dashboard's browser tests (driven by Playwright; nothing is downloaded), and npm
# for the web player that plays exported casts (scripts/player.sh).
need=()
for pair in script:bsdutils less:less vim:vim time:time setpriv:util-linux ps:procps \
            zsh:zsh fish:fish shellcheck:shellcheck chromium:chromium npm:npm; do
    command -v "${pair%%:*}" >/dev/null 2>&1 || [ -x "/usr/bin/${pair%%:*}" ] || need+=("${pair#*:}")
done
if [ ${#need[@]} -gt 0 ]; then
    if [ "$(id -u)" -ne 0 ]; then SUDO=sudo; else SUDO=; fi
    $SUDO apt-get update -qq
    DEBIAN_FRONTEND=noninteractive $SUDO apt-get install -y -qq --no-install-recommends "${need[@]}"
fi

python3 -m venv .venv
unset PYTHONDONTWRITEBYTECODE
.venv/bin/python -m pip install -q --upgrade pip
.venv/bin/python -m pip install -q -e '.[test]'

.venv/bin/ruff check qme tests bench
# A real single-node Slurm for tests/test_slurm.py, unless one answers already
# (scripts/slurm.sh start does nothing then, and stop leaves it alone). It is
# stopped however pytest ends; without root it cannot start, and those tests skip
# (or fail, under CI=true).
# PostgreSQL and MariaDB for the SQL stores' tests likewise (scripts/sqlservers.sh:
# installs postgresql and mariadb-server when missing, creates the test user and
# database; servers already up are used and left running). One trap stops all.
trap 'bash scripts/sqlservers.sh stop || true; bash scripts/slurm.sh stop || true' EXIT
bash scripts/slurm.sh start || echo "test.sh: warning: could not start Slurm" >&2
bash scripts/sqlservers.sh start || echo "test.sh: warning: could not start the SQL servers" >&2
# Podman for tests/test_containers.py (scripts/podman.sh: installs podman, buildah,
# debootstrap & co when missing, writes its containers.conf under .podman/, builds
# a local Debian + Python base image once; nothing runs in the background).
bash scripts/podman.sh setup || echo "test.sh: warning: could not set up podman" >&2
# QueueMe 0.0.14 for tests/test_queueme*.py (scripts/queueme.sh: its sdist from PyPI,
# pinned by version and sha256, its own tests, and a venv with QueueMe installed;
# cached under .work/queueme). Those tests fail under CI=true without it.
bash scripts/queueme.sh || echo "test.sh: warning: could not fetch QueueMe 0.0.14" >&2
# asciinema-player (npm, pinned) for tests/test_browser_cast.py, under
# .work/asciinema-player; that test fails under CI=true without it.
bash scripts/player.sh || echo "test.sh: warning: could not install asciinema-player" >&2

# pytest exits 5 when it collects no test: that fails this script too.
status=0
.venv/bin/python -m pytest "$@" || status=$?
exit "$status"
