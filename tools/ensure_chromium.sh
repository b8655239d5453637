#!/usr/bin/env bash
# Make sure Debian's chromium is installed for the browser tests (tests/test_browser.py).
#
# Prints the browser's path on stdout and exits 0 when it is (or now is) installed.
# Exit status 3: apt cannot reach its package servers (the caller skips the browser test).
# Any other non-zero status: a real failure (not root, apt error), which should fail loudly.
#
# Playwright's own `playwright install` downloads a browser build from a CDN; we use the
# distribution's package instead, so the same apt mirror that installs everything else
# serves it and security updates come with the system.
set -euo pipefail

BROWSER="${CHROMIUM:-/usr/bin/chromium}"
if [ -x "$BROWSER" ]; then
    echo "$BROWSER"
    exit 0
fi
if ! command -v apt-get >/dev/null 2>&1; then
    echo "ensure_chromium: $BROWSER is missing and apt-get is not available" >&2
    exit 3
fi
SUDO=""
if [ "$(id -u)" != "0" ]; then
    if command -v sudo >/dev/null 2>&1 && sudo -n true 2>/dev/null; then
        SUDO="sudo -n"
    else
        echo "ensure_chromium: $BROWSER is missing; run as root or install chromium" >&2
        exit 1
    fi
fi
export DEBIAN_FRONTEND=noninteractive
# apt-get update exits 0 even when every mirror is unreachable, so check its warnings.
log="$(mktemp)"
trap 'rm -f "$log"' EXIT
if ! timeout 120 $SUDO apt-get update >"$log" 2>&1 \
        || grep -Eq '^(W|E): (Failed to fetch|Some index files failed)' "$log"; then
    if grep -Eqi 'temporary failure resolving|could not resolve|network is unreachable|connection (failed|timed out|refused)|failed to fetch' "$log"; then
        echo "ensure_chromium: apt cannot reach its package servers" >&2
        exit 3
    fi
    cat "$log" >&2
    exit 1
fi
timeout 600 $SUDO apt-get install -y -q --no-install-recommends chromium >"$log" 2>&1 || {
    cat "$log" >&2
    exit 1
}
if [ ! -x "$BROWSER" ]; then
    echo "ensure_chromium: apt installed chromium but $BROWSER is missing" >&2
    exit 1
fi
echo "$BROWSER"
