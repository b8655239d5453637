#!/usr/bin/env bash
# Make sure Debian's chromium is installed for the browser tests (tests/test_browser.py).
#
# Prints the browser's path on stdout and exits 0 when it is (or now is) installed.
# Exit status 3: apt cannot provide chromium (unreachable servers, no such package): the caller
# skips the browser test, saying why.
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
# apt's messages in English whatever the user's locale, so the checks below can read them.
export LC_ALL=C LANGUAGE=
log="$(mktemp)"
update_log="$(mktemp)"
trap 'rm -f "$log" "$update_log"' EXIT
# Whether the package can be had is decided by installing it, not by apt-get update's
# warnings: update exits 0 with every mirror unreachable, and warns about one failing
# mirror while the others (or the lists already on disk) still serve chromium.
timeout 120 $SUDO apt-get update >"$update_log" 2>&1 || true
if ! timeout 600 $SUDO apt-get install -y -q --no-install-recommends chromium >"$log" 2>&1; then
    # Only the install's own messages decide: no package (lists never fetched) or no
    # server to download it from. Anything else (dpkg, disk, lock) fails loudly.
    if grep -Eqi "unable to locate package|has no installation candidate|temporary failure resolving|could not resolve|network is unreachable|connection (failed|timed out|refused)|failed to fetch" "$log"; then
        echo "ensure_chromium: chromium cannot be had from apt here: $(grep -E '^(E|W): ' "$log" | tail -n 1)" >&2
        exit 3
    fi
    cat "$update_log" "$log" >&2
    exit 1
fi
if [ ! -x "$BROWSER" ]; then
    echo "ensure_chromium: apt installed chromium but $BROWSER is missing" >&2
    exit 1
fi
echo "$BROWSER"
