#!/usr/bin/env bash
# QueueMe 0.0.14, for the tests that check that qme carries its users over
# (tests/test_queueme.py, tests/test_queueme_suite.py):
#   .work/queueme/qme-0.0.14.tar.gz   its sdist from PyPI, pinned by version and sha256
#   .work/queueme/suite/              the sdist's own tests/*.py, unchanged
#   .work/queueme/venv/               QueueMe installed from that sdist, in a venv of its own
#                                     (with SQLAlchemy < 2, which its SQLite store needs)
# Everything is cached: a second run checks the hash and returns. Exits non-zero
# when the sdist cannot be fetched or does not match its hash.
set -euo pipefail
cd "$(dirname "$0")/.."

VERSION=0.0.14
SHA256=9dc4ce377f3fef3adc0d5100935f0e13ae17bd96f52439b6def2f4025be5567e
DIR=.work/queueme
SDIST="$DIR/qme-$VERSION.tar.gz"
PYTHON=${PYTHON:-python3}

mkdir -p "$DIR"
if [ ! -f "$SDIST" ]; then
    "$PYTHON" -m pip download -q --no-deps --no-binary :all: "qme==$VERSION" -d "$DIR/download"
    mv "$DIR/download/qme-$VERSION.tar.gz" "$SDIST"
    rm -rf "$DIR/download"
fi
if ! echo "$SHA256  $SDIST" | sha256sum --check --status; then
    echo "queueme.sh: $SDIST does not match its pinned sha256 $SHA256" >&2
    rm -f "$SDIST"
    exit 1
fi

if [ ! -f "$DIR/suite/.done" ]; then
    rm -rf "$DIR/suite"
    mkdir -p "$DIR/suite"
    tar --no-same-owner -xzf "$SDIST" -C "$DIR/suite" --strip-components=2 --wildcards "qme-$VERSION/tests/*.py"
    touch "$DIR/suite/.done"
fi

if [ ! -x "$DIR/venv/bin/qme" ] || ! "$DIR/venv/bin/qme" --version 2>/dev/null | grep -qx "$VERSION"; then
    rm -rf "$DIR/venv"
    "$PYTHON" -m venv "$DIR/venv"
    "$DIR/venv/bin/python" -m pip install -q "$SDIST" "sqlalchemy<2"
fi
