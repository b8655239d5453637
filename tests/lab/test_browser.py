"""Notebook 01 in a real browser: JupyterLab + headless Debian Chromium via Playwright.

Runs every cell from the Run menu, checks that no cell shows an error and that the live
architecture explorer (esrgan_lab.lab.widgets, interactive path) rendered its sliders, and
saves a screenshot to ``screenshots/`` (ignored by git). The machinery (server on a free
loopback port with its own token, browser flags, process cleanup) is in
``tools/lab_browser.py``, shared with ``make screenshots``.

The browser comes from apt (``tools/ensure_chromium.sh``, run with apt in the C locale);
the test skips only when installing the package itself fails for want of a server or a
package (tests/test_ensure_chromium.py checks that decision against a fake apt-get).
"""

from __future__ import annotations

import importlib.util
import os
import subprocess
import sys
import time
from pathlib import Path

import pytest

pytestmark = pytest.mark.browser

REPO_ROOT = Path(__file__).resolve().parents[2]
NOTEBOOK = REPO_ROOT / "notebooks" / "01_architecture.ipynb"


def _load_lab_browser():
    spec = importlib.util.spec_from_file_location(
        "lab_browser", REPO_ROOT / "tools" / "lab_browser.py"
    )
    module = importlib.util.module_from_spec(spec)
    sys.modules[spec.name] = module  # dataclasses look their module up there
    spec.loader.exec_module(module)
    return module


lab_browser = _load_lab_browser()


@pytest.fixture(scope="session")
def chromium() -> str:
    """Path of Debian's chromium, installed with apt when missing."""
    pytest.importorskip("playwright.sync_api", reason="playwright is in the dev extras")
    proc = subprocess.run(
        [str(REPO_ROOT / "tools" / "ensure_chromium.sh")],
        capture_output=True,
        text=True,
        timeout=900,
    )
    if proc.returncode == 3:
        pytest.skip(f"chromium is not installed and apt cannot provide it: {proc.stderr.strip()}")
    if proc.returncode != 0:
        pytest.fail(f"tools/ensure_chromium.sh failed ({proc.returncode}):\n{proc.stderr}")
    return proc.stdout.strip().splitlines()[-1]


def test_notebook_01_runs_in_jupyterlab(chromium, tmp_path):
    start = time.monotonic()
    lab_browser.copy_notebook(NOTEBOOK, tmp_path, lab_browser.NB01_OVERRIDES)
    stored = NOTEBOOK.read_bytes()
    shots = REPO_ROOT / "screenshots"
    with lab_browser.jupyter_lab(tmp_path) as server:
        server_pid = server.process.pid
        with lab_browser.chromium_page(chromium) as page:
            try:
                result = lab_browser.run_notebook(page, server, NOTEBOOK.name, timeout=100)
            except Exception:
                page.screenshot(path=str(shots / "01_architecture_failure.png"))
                raise
            page.screenshot(path=str(shots / "01_architecture_page.png"), full_page=False)
            lab_browser.check(result, "01_architecture", min_sliders=2)
            lab_browser.shoot(page, ".esrgan-lab-explorer", shots / "01_explorer.png")
            # the interactive path ran: the explorer's labels hold the default count
            params = page.locator(".esrgan-lab-explorer .widget-label", has_text="16,697,987")
            assert params.count() >= 1
        sessions = server.api("sessions")
        assert len(sessions) == 1 and sessions[0]["kernel"]["name"] == "python3"
    # everything we started is gone: the server (and with it its kernel's group)
    assert server.process.poll() is not None
    with pytest.raises(ProcessLookupError):
        os.killpg(server_pid, 0)
    assert NOTEBOOK.read_bytes() == stored  # the run used a copy
    assert (shots / "01_explorer.png").stat().st_size > 10_000
    took = time.monotonic() - start
    print(f"browser test: {took:.0f} s in all, {result.seconds:.0f} s opening and running 01")
