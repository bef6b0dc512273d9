#!/usr/bin/env bash
# The web UI in a real browser: tests/ui/browser_check.py drives headless Chromium (Debian's
# chromium and chromium-driver) with Selenium against a `weir standalone` (debug binary), in a
# venv outside the clone that is reused. Screenshots of each step go to
# $CARGO_TARGET_DIR/ui-screenshots/. Under CI=true a missing browser fails the run.
set -euo pipefail
cd "$(dirname "$0")/.."
export CARGO_TARGET_DIR="${CARGO_TARGET_DIR:-$HOME/.cache/weir/target}"
# The models pages are shown on the public jaffle_shop_duckdb project, from the test fixtures
# (CI keeps them beside the clone).
export WEIR_FIXTURES="${WEIR_FIXTURES:-$(cd .. && pwd)/shared/fixtures}"
export WEIR_CHROMIUM="${WEIR_CHROMIUM:-/usr/bin/chromium}"
export WEIR_CHROMEDRIVER="${WEIR_CHROMEDRIVER:-/usr/bin/chromedriver}"
if [ ! -x "$WEIR_CHROMIUM" ] || [ ! -x "$WEIR_CHROMEDRIVER" ]; then
    if [ "${CI:-}" = true ]; then
        echo "error: the browser check needs $WEIR_CHROMIUM and $WEIR_CHROMEDRIVER" >&2
        echo "hint: apt-get install chromium chromium-driver (.ci/run does it)" >&2
        exit 1
    fi
    echo "ui: skipped: no $WEIR_CHROMIUM or $WEIR_CHROMEDRIVER (apt-get install chromium chromium-driver)" >&2
    exit 0
fi
venv="${WEIR_UI_VENV:-$HOME/.cache/weir/ui-venv}"
if ! "$venv/bin/python" -c 'import selenium' 2>/dev/null; then
    echo "ui: preparing the Python venv in $venv" >&2
    python3 -m venv "$venv"
    "$venv/bin/pip" install --quiet --disable-pip-version-check 'selenium>=4.20,<5'
fi
export WEIR_BIN="${WEIR_BIN:-$CARGO_TARGET_DIR/debug/weir}"
[ -x "$WEIR_BIN" ] || cargo build -p weir --locked
exec "$venv/bin/python" tests/ui/browser_check.py "$WEIR_BIN" "$CARGO_TARGET_DIR/ui-screenshots"
