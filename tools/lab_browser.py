"""Drive JupyterLab in a real (headless) Chromium: run notebooks, check them, screenshot.

Used by ``tests/test_browser.py`` (marker ``browser``) and by ``make screenshots``::

    python tools/lab_browser.py screenshots [--out docs/screenshots]

Every process this starts (the Jupyter server, its kernels, the browser) is stopped in a
``finally`` block by its own handle, even when a check fails. Nothing in ``notebooks/`` is
touched: notebooks are copied to a temporary folder first, and figures the notebooks save
go to a temporary ``ESRGAN_LAB_FIGURES``.

The kernel runs the *interactive* path of :mod:`esrgan_lab.lab.widgets`: ``ESRGAN_LAB_HEADLESS``
and ``MPLBACKEND`` (which ``make test`` sets) are removed from the server's environment,
so the widgets are live and plots render inline, exactly as under ``make lab``.

The browser is Debian's ``chromium`` (``tools/ensure_chromium.sh`` installs it with apt),
started by Playwright with ``executable_path``; ``playwright install`` is never needed.
"""

from __future__ import annotations

import argparse
import contextlib
import json
import os
import secrets
import shutil
import signal
import socket
import subprocess
import sys
import tempfile
import time
import urllib.error
import urllib.request
from collections.abc import Iterator
from dataclasses import dataclass, field
from pathlib import Path

REPO_ROOT = Path(__file__).resolve().parent.parent
CHROMIUM = os.environ.get("CHROMIUM", "/usr/bin/chromium")
#: Flags for a quiet, self-contained headless Chromium (no sandbox: CI runs as root).
CHROMIUM_ARGS = [
    "--no-sandbox",
    "--disable-gpu",
    "--disable-dev-shm-usage",
    "--disable-background-networking",
    "--disable-component-update",
    "--disable-default-apps",
    "--disable-sync",
    "--disable-extensions",
    "--disable-features=Translate,MediaRouter,OptimizationHints",
    "--metrics-recording-only",
    "--no-first-run",
    "--no-default-browser-check",
    "--password-store=basic",
    "--use-mock-keychain",
]
#: JupyterLab settings for a deterministic page: every cell in the DOM (no windowing),
#: no news / update toasts over the notebook.
LAB_SETTINGS = {
    "@jupyterlab/notebook-extension/tracker.jupyterlab-settings": {
        "windowingMode": "none",
        "autoStartDefaultKernel": True,
    },
    "@jupyterlab/apputils-extension/notification.jupyterlab-settings": {
        "fetchNews": "false",
        "checkForUpdates": False,
    },
}
#: Smaller experiment sizes for notebook 01 in the browser (nbval checks the stored CI
#: values); the explorer keeps the paper's architecture, so its labels are known.
NB01_OVERRIDES: dict[str, object] = {"activation_size": 16, "max_flops_size": 256}
#: Environment variables the kernel must not inherit (see the module docstring).
DROP_ENV = ("ESRGAN_LAB_HEADLESS", "MPLBACKEND")


def free_port() -> int:
    """A TCP port on 127.0.0.1 that is free right now."""
    with socket.socket(socket.AF_INET, socket.SOCK_STREAM) as sock:
        sock.bind(("127.0.0.1", 0))
        return sock.getsockname()[1]


def stop_process(proc: subprocess.Popen, timeout: float = 10.0) -> None:
    """Stop ``proc`` and the process group it leads: SIGTERM, wait, then SIGKILL."""
    if proc.poll() is not None:
        return
    with contextlib.suppress(ProcessLookupError):
        os.killpg(proc.pid, signal.SIGTERM)  # the group holds the server's kernels too
    try:
        proc.wait(timeout=timeout)
    except subprocess.TimeoutExpired:
        with contextlib.suppress(ProcessLookupError):
            os.killpg(proc.pid, signal.SIGKILL)
        proc.wait(timeout=timeout)
    # kernels are in the same group: make sure none outlived the server
    with contextlib.suppress(ProcessLookupError):
        os.killpg(proc.pid, signal.SIGKILL)


@dataclass
class LabServer:
    """A running JupyterLab: ``url`` (``http://127.0.0.1:PORT``), ``token``, ``process``."""

    url: str
    token: str
    process: subprocess.Popen
    log: Path
    root: Path

    def lab_url(self, path: str = "") -> str:
        """URL of ``/lab/tree/<path>`` with the token."""
        tail = f"/tree/{path}" if path else ""
        return f"{self.url}/lab{tail}?token={self.token}"

    def api(self, path: str) -> dict | list:
        """GET ``/api/<path>`` as JSON, authenticated with the token."""
        req = urllib.request.Request(
            f"{self.url}/api/{path}", headers={"Authorization": f"token {self.token}"}
        )
        with urllib.request.urlopen(req, timeout=10) as resp:
            return json.load(resp)


def server_env(figures: Path) -> dict[str, str]:
    """Environment of the Jupyter server (and so of its kernels)."""
    env = {k: v for k, v in os.environ.items() if k not in DROP_ENV}
    env["ESRGAN_LAB_FIGURES"] = str(figures)
    env["PYDEVD_DISABLE_FILE_VALIDATION"] = "1"
    return env


@contextlib.contextmanager
def jupyter_lab(root: Path, *, startup_timeout: float = 60.0) -> Iterator[LabServer]:
    """Start JupyterLab on a free loopback port with a fresh token; stop it on exit.

    Args:
        root: The server's root folder (notebooks are opened relative to it).
        startup_timeout: Seconds to wait for ``/api/status`` to answer.
    """
    state = Path(tempfile.mkdtemp(prefix="esrgan-lab-jupyter-"))
    settings = state / "user-settings"
    for name, values in LAB_SETTINGS.items():
        target = settings / name
        target.parent.mkdir(parents=True, exist_ok=True)
        target.write_text(json.dumps(values))
    token = secrets.token_hex(24)
    port = free_port()
    env = server_env(state / "figures")
    env["JUPYTER_RUNTIME_DIR"] = str(state / "runtime")
    cmd = [
        sys.executable, "-m", "jupyterlab",
        "--no-browser",
        "--ServerApp.ip=127.0.0.1",
        f"--ServerApp.port={port}",
        "--ServerApp.port_retries=0",
        f"--IdentityProvider.token={token}",
        f"--ServerApp.root_dir={root}",
        f"--LabApp.user_settings_dir={settings}",
        f"--LabApp.workspaces_dir={state / 'workspaces'}",
        "--LabApp.news_url=",
        "--LabApp.check_for_updates_class=jupyterlab.NeverCheckForUpdate",
        "--ServerApp.open_browser=False",
        "--ServerApp.terminals_enabled=False",
    ]  # fmt: skip
    if os.geteuid() == 0:  # CI containers run as root; the server refuses without this
        cmd.append("--allow-root")
    log = state / "server.log"
    with open(log, "wb") as log_fh:
        proc = subprocess.Popen(
            cmd, env=env, stdout=log_fh, stderr=subprocess.STDOUT, start_new_session=True
        )
    server = LabServer(f"http://127.0.0.1:{port}", token, proc, log, root)
    try:
        deadline = time.monotonic() + startup_timeout
        while True:
            if proc.poll() is not None:
                raise RuntimeError(f"jupyter lab exited with {proc.returncode}:\n{log.read_text()}")
            try:
                server.api("status")
                break
            except (urllib.error.URLError, ConnectionError, TimeoutError):
                if time.monotonic() > deadline:
                    raise RuntimeError(
                        f"jupyter lab did not answer in {startup_timeout:.0f} s:\n{log.read_text()}"
                    ) from None
                time.sleep(0.5)
        yield server
    finally:
        stop_process(proc)
        shutil.rmtree(state, ignore_errors=True)


@contextlib.contextmanager
def chromium_page(executable: str = CHROMIUM, *, width: int = 1400, height: int = 1000):
    """A Playwright page in headless Debian Chromium; browser closed (and killed) on exit."""
    from playwright.sync_api import sync_playwright

    with sync_playwright() as pw:
        browser = pw.chromium.launch(
            executable_path=executable, headless=True, args=CHROMIUM_ARGS, timeout=60_000
        )
        try:
            context = browser.new_context(viewport={"width": width, "height": height})
            yield context.new_page()
        finally:
            browser.close()


@dataclass
class RunResult:
    """What :func:`run_notebook` saw: prompts, errors, widgets, timing."""

    prompts: list[str]
    errors: list[str] = field(default_factory=list)
    widgets: int = 0
    sliders: int = 0
    seconds: float = 0.0


_PROMPTS_JS = """() => [...document.querySelectorAll(
    '.jp-NotebookPanel:not(.lm-mod-hidden) .jp-CodeCell .jp-InputPrompt')]
    .map(e => e.textContent.trim())"""

_ERRORS_JS = """() => {
  const panel = document.querySelector('.jp-NotebookPanel:not(.lm-mod-hidden)');
  const found = [];
  for (const el of panel.querySelectorAll(
      '.jp-OutputArea-output[data-mime-type*="error"], '
      + '.jp-OutputArea-output[data-mime-type="application/vnd.jupyter.stderr"], '
      + '.jp-RenderedText[data-mime-type*="error"]')) {
    const text = el.textContent || '';
    if (el.getAttribute('data-mime-type').includes('error') || text.includes('Traceback'))
      found.push(text.slice(0, 2000));
  }
  for (const el of panel.querySelectorAll('.jp-OutputArea-output')) {
    const text = el.textContent || '';
    if (text.includes('Traceback (most recent call last)') && !found.includes(text.slice(0, 2000)))
      found.push(text.slice(0, 2000));
  }
  return found;
}"""


def run_notebook(page, server: LabServer, name: str, *, timeout: float = 100.0) -> RunResult:
    """Open ``name``, run all cells from the Run menu, wait until every cell has run.

    Waits for: the kernel to be ready, every code prompt to show an execution count (or
    an error to stop the run), and the kernel to report ``idle`` through the REST API.

    Returns:
        A :class:`RunResult`; ``errors`` holds the text of every error/Traceback output.
    """
    start = time.monotonic()
    deadline = start + timeout
    page.set_default_timeout(timeout * 1000)
    page.goto(server.lab_url(name), wait_until="domcontentloaded")
    page.wait_for_selector(".jp-NotebookPanel:not(.lm-mod-hidden) .jp-CodeCell")
    # The kernel starts when the notebook opens (autoStartDefaultKernel); should JupyterLab
    # still ask which kernel to use, accept its proposal (the notebook's python3). Then wait
    # for the kernel's session to exist and be idle before running anything.
    while True:
        dialog = page.locator(".jp-Dialog .jp-Dialog-button.jp-mod-accept")
        if dialog.count():
            dialog.first.click()
        sessions = [s for s in server.api("sessions") if s["path"].endswith(name)]
        if sessions and sessions[0]["kernel"]["execution_state"] == "idle":
            break
        if time.monotonic() > deadline:
            raise TimeoutError(f"no idle kernel for {name} after {timeout:.0f} s")
        time.sleep(0.5)
    page.wait_for_function(
        """() => {
          const s = document.querySelector(
            '.jp-NotebookPanel:not(.lm-mod-hidden) .jp-Notebook-ExecutionIndicator');
          return s && s.getAttribute('data-status') === 'idle';
        }"""
    )
    page.locator(".lm-MenuBar-item", has_text="Run").first.click()
    page.locator('.lm-Menu-item[data-command="runmenu:run-all"]').click()
    # All prompts numbered -> done; an error output -> the run stopped early.
    page.wait_for_function(
        f"""() => {{
          const p = ({_PROMPTS_JS})();
          if (p.some(t => t.includes('*'))) return false;
          const done = p.length > 0 && p.every(t => /\\[\\d+\\]/.test(t));
          return done || ({_ERRORS_JS})().length > 0;
        }}""",
        polling=500,
    )
    while time.monotonic() < deadline:
        sessions = server.api("sessions")
        if all(s["kernel"]["execution_state"] == "idle" for s in sessions):
            break
        time.sleep(0.5)
    else:
        raise TimeoutError(f"kernel still busy after {timeout:.0f} s")
    # Widgets render asynchronously after the comm messages arrive.
    page.wait_for_timeout(1000)
    result = RunResult(prompts=page.evaluate(_PROMPTS_JS), errors=page.evaluate(_ERRORS_JS))
    result.widgets = page.locator(".jupyter-widgets").count()
    result.sliders = page.locator(".widget-slider:visible").count()
    result.seconds = time.monotonic() - start
    return result


def shoot(page, selector: str, path: Path) -> Path:
    """Screenshot of the first element matching ``selector`` (scrolled into view)."""
    path.parent.mkdir(parents=True, exist_ok=True)
    element = page.locator(selector).first
    element.scroll_into_view_if_needed()
    page.wait_for_timeout(300)
    element.screenshot(path=str(path), animations="disabled")
    return path


# --------------------------------------------------------------------------- screenshots

COMPARISON_CELLS = [
    """import cv2

import esrgan_lab as lab
from esrgan_lab.data import samples
from esrgan_lab.lab import widgets

lr_file = samples.sample_image_file("esrgan_samples/LR_baboon.png", fallback="chelsea")
lq = lab.read_image(lr_file)
if max(lq.shape[:2]) > 160:  # the skimage fallback: make it a small LR image first
    lq = cv2.resize(lq, (lq.shape[1] * 128 // max(lq.shape[:2]),
                         lq.shape[0] * 128 // max(lq.shape[:2])), interpolation=cv2.INTER_AREA)
h, w = lq.shape[:2]
bicubic = cv2.resize(lq, (4 * w, 4 * h), interpolation=cv2.INTER_CUBIC)
official = lr_file.parent / "results_baboon_ESRGAN.png"
if official.is_file():
    after, label = lab.read_image(official), "ESRGAN (official result)"
else:
    after, label = cv2.resize(lq, (4 * w, 4 * h), interpolation=cv2.INTER_NEAREST), "nearest"
print(lr_file.name, lq.shape, "->", bicubic.shape, "vs", label)""",
    """widgets.comparison_slider(bicubic, after, labels=("bicubic", label),
                          zoom=(bicubic.shape[0] * 7 // 10, bicubic.shape[1] * 4 // 5),
                          zoom_size=64)""",
]


def copy_notebook(src: Path, folder: Path, overrides: dict[str, object] | None = None) -> Path:
    """Copy notebook ``src`` into ``folder``, appending ``overrides`` to its parameters cell.

    The overrides are written as ``name = repr(value)`` lines at the end of the cell
    tagged ``parameters`` (as papermill does), so the browser can run a notebook at a
    smaller size than its stored CI values without touching the stored file.
    """
    import nbformat

    nb = nbformat.read(src, as_version=4)
    if overrides:
        cell = next((c for c in nb.cells if "parameters" in c.metadata.get("tags", [])), None)
        if cell is None:
            raise ValueError(f"{src.name} has no cell tagged 'parameters'")
        lines = [f"{k} = {v!r}  # browser run override" for k, v in overrides.items()]
        cell.source = cell.source.rstrip("\n") + "\n" + "\n".join(lines)
    target = folder / src.name
    nbformat.write(nb, target)
    return target


def scratch_notebook(path: Path, cells: list[str]) -> Path:
    """Write a notebook of code ``cells`` (kernel python3) to ``path``."""
    import nbformat

    nb = nbformat.v4.new_notebook()
    nb.metadata["kernelspec"] = {
        "name": "python3",
        "display_name": "Python 3",
        "language": "python",
    }
    nb.cells = [nbformat.v4.new_code_cell(src) for src in cells]
    nbformat.write(nb, path)
    return path


def check(result: RunResult, name: str, *, min_sliders: int) -> None:
    """Raise ``AssertionError`` naming what went wrong in ``result``."""
    if result.errors:
        raise AssertionError(f"{name}: error output in the browser:\n{result.errors[0]}")
    pending = [p for p in result.prompts if not any(c.isdigit() for c in p)]
    if pending:
        raise AssertionError(f"{name}: {len(pending)} cell(s) did not run: {result.prompts}")
    if result.sliders < min_sliders:
        raise AssertionError(
            f"{name}: expected >= {min_sliders} visible sliders, found {result.sliders} "
            f"({result.widgets} .jupyter-widgets elements)"
        )


def make_screenshots(out: Path, executable: str = CHROMIUM) -> list[Path]:
    """Run notebook 01 and a scratch comparison notebook in the browser; write PNGs.

    Writes ``out/explorer.png`` (the architecture explorer of notebook 01) and
    ``out/comparison.png`` (the before/after comparison slider).
    """
    written = []
    with tempfile.TemporaryDirectory(prefix="esrgan-lab-shots-") as tmp:
        root = Path(tmp)
        copy_notebook(REPO_ROOT / "notebooks" / "01_architecture.ipynb", root, NB01_OVERRIDES)
        scratch_notebook(root / "comparison.ipynb", COMPARISON_CELLS)
        page_size = dict(width=1600, height=1400)  # tall enough for a whole widget
        with jupyter_lab(root) as server, chromium_page(executable, **page_size) as page:
            result = run_notebook(page, server, "01_architecture.ipynb", timeout=300)
            check(result, "01_architecture", min_sliders=2)
            written.append(shoot(page, ".esrgan-lab-explorer", out / "explorer.png"))
            result = run_notebook(page, server, "comparison.ipynb", timeout=120)
            check(result, "comparison", min_sliders=4)
            written.append(shoot(page, ".esrgan-lab-comparison", out / "comparison.png"))
    return written


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    sub = parser.add_subparsers(dest="cmd", required=True)
    shots = sub.add_parser("screenshots", help="write docs/screenshots/{explorer,comparison}.png")
    shots.add_argument("--out", type=Path, default=REPO_ROOT / "docs" / "screenshots")
    args = parser.parse_args(argv)
    start = time.monotonic()
    for path in make_screenshots(args.out):
        print(f"wrote {path}")
    print(f"took {time.monotonic() - start:.0f} s")
    return 0


if __name__ == "__main__":
    sys.exit(main())
