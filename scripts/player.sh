#!/usr/bin/env bash
# asciinema-player, the official web player, for tests/test_browser_cast.py (which
# plays `qme export --as cast` in headless Chromium): the npm package at a pinned
# version (npm checks it against the registry's sha512), into
# .work/asciinema-player/ (gitignored). A second run finds it there and returns.
# Exits non-zero when npm is missing or the package cannot be fetched.
set -euo pipefail
cd "$(dirname "$0")/.."

VERSION=3.18.0  # 3.9 and later read asciicast v3
DIR=.work/asciinema-player
BUNDLE="$DIR/node_modules/asciinema-player/dist/bundle/asciinema-player.min.js"

installed=$(node -p "require('./$DIR/node_modules/asciinema-player/package.json').version" 2>/dev/null || true)
if [ ! -f "$BUNDLE" ] || [ "$installed" != "$VERSION" ]; then
    mkdir -p "$DIR"
    npm install --prefix "$DIR" --no-audit --no-fund --no-save --ignore-scripts \
        "asciinema-player@$VERSION" >/dev/null
fi
