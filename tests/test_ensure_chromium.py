"""``tools/ensure_chromium.sh`` (the browser test's set-up) against a fake ``apt-get``: it
decides "cannot be had" from the install itself with apt's messages in English whatever
the locale, and skips (exit 3) only then (issue 31)."""

from __future__ import annotations

import os
import subprocess
from pathlib import Path

import pytest

REPO = Path(__file__).resolve().parents[1]
SCRIPT = REPO / "tools" / "ensure_chromium.sh"

#: A fake apt-get: localized (German) messages unless apt runs in the C locale (LC_ALL=C,
#: or LANG=C.UTF-8 with no LC_ALL), behaviour from FAKE_APT.
FAKE_APT = r"""#!/bin/sh
url="http://deb.example/dists/InRelease"
english() { [ "$LC_ALL" = "C" ] || { [ -z "$LC_ALL" ] && [ "$LANG" = "C.UTF-8" ]; }; }
case "$1" in
update)
    [ "$FAKE_APT" = "dpkg-error" ] && exit 0
    if english; then
        echo "W: Failed to fetch $url  Temporary failure resolving 'deb.example'"
        echo "W: Some index files failed to download. They have been ignored."
    else
        echo "W: Fehlschlag beim Holen von $url  Temporärer Fehlschlag beim Auflösen"
    fi
    exit 0 ;;
install)
    case "$FAKE_APT" in
    offline)
        if english; then
            echo "E: Unable to locate package chromium"
        else
            echo "E: Paket chromium kann nicht gefunden werden."
        fi
        exit 100 ;;
    dpkg-error)
        echo "E: Sub-process /usr/bin/dpkg returned an error code (1)"
        exit 100 ;;
    *)
        printf '#!/bin/sh\n' > "$CHROMIUM" && chmod +x "$CHROMIUM"
        exit 0 ;;
    esac ;;
esac
exit 0
"""
#: The user's locale in each case: German, or English (apt's own language).
LOCALES = {
    "de": {"LANG": "de_DE.UTF-8", "LC_ALL": "de_DE.UTF-8", "LANGUAGE": "de"},
    "en": {"LANG": "C.UTF-8"},
}


def _run(tmp_path: Path, mode: str, locale: str = "de") -> subprocess.CompletedProcess:
    bin_dir = tmp_path / "bin"
    bin_dir.mkdir()
    (bin_dir / "apt-get").write_text(FAKE_APT)
    (bin_dir / "id").write_text("#!/bin/sh\necho 0\n")  # as root: no sudo involved
    for tool in ("apt-get", "id"):
        (bin_dir / tool).chmod(0o755)
    env = {
        "PATH": f"{bin_dir}:/usr/bin:/bin",
        "CHROMIUM": str(tmp_path / "chromium"),
        "FAKE_APT": mode,
        **LOCALES[locale],
    }
    return subprocess.run(
        ["bash", str(SCRIPT)], capture_output=True, text=True, timeout=60, env=env
    )


@pytest.mark.skipif(os.name != "posix", reason="a bash script")
@pytest.mark.parametrize("locale", ["en", "de"])
def test_offline_is_a_skip_with_the_reason_in_any_locale(tmp_path: Path, locale) -> None:
    proc = _run(tmp_path, "offline", locale)
    assert proc.returncode == 3, proc.stderr
    assert "Unable to locate package chromium" in proc.stderr


@pytest.mark.skipif(os.name != "posix", reason="a bash script")
@pytest.mark.parametrize("locale", ["en", "de"])
def test_update_warnings_do_not_skip_when_chromium_installs(tmp_path: Path, locale) -> None:
    """apt-get update warns about a failing mirror; the install still works: no skip."""
    proc = _run(tmp_path, "one-mirror-down", locale)
    assert proc.returncode == 0, proc.stderr
    assert proc.stdout.strip() == str(tmp_path / "chromium")


@pytest.mark.skipif(os.name != "posix", reason="a bash script")
def test_a_real_apt_failure_is_not_a_skip(tmp_path: Path) -> None:
    proc = _run(tmp_path, "dpkg-error")
    assert proc.returncode == 1 and "dpkg returned an error code" in proc.stderr
