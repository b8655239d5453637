"""Where the project finds things: datasets, weights cache, NIQE model, figures.

Every location comes from an environment variable with a sensible default, never from a
hard-coded path:

* ``ESRGAN_LAB_DATA``: folder with ``Set5/``, ``Set14/``, ``BSD68/``, ... Unset: code
  falls back to the images that scikit-image ships.
* ``ESRGAN_LAB_WEIGHTS``: weights cache for downloaded checkpoints
  (default ``~/.cache/esrgan-lab/weights``).
* ``ESRGAN_LAB_NIQE_PARAMS``: the NIQE pristine model ``niqe_pris_params.npz``
  (default: ``reference/`` inside or beside ``ESRGAN_LAB_DATA``).
* ``ESRGAN_LAB_FIGURES``: where :func:`esrgan_lab.lab.viz.savefig` writes (default
  ``<repo>/figures``).
"""

from __future__ import annotations

import functools
import os
from pathlib import Path

#: Root of the source checkout (the folder holding ``pyproject.toml``).
REPO_ROOT = Path(__file__).resolve().parent.parent
#: Small data the project owns and ships (weights, sample images).
PACKAGE_DATA = REPO_ROOT / "data"


def data_dir() -> Path | None:
    """The dataset folder from ``ESRGAN_LAB_DATA``, or ``None`` when unset or missing."""
    value = os.environ.get("ESRGAN_LAB_DATA")
    if not value:
        return None
    path = Path(value).expanduser()
    return path if path.is_dir() else None


#: Folders of the benchmark sets as ``esrgan-lab datasets download benchmark`` unpacks them
#: (EDSR's archive), looked up when ``$ESRGAN_LAB_DATA/<name>`` does not exist.
BENCHMARK_LAYOUT = {
    "Set5": "benchmark/Set5/HR",
    "Set14": "benchmark/Set14/HR",
    "BSD100": "benchmark/B100/HR",
    "Urban100": "benchmark/Urban100/HR",
}


def dataset_dir(name: str) -> Path | None:
    """``$ESRGAN_LAB_DATA/<name>`` if it exists (e.g. ``"Set5"``), else the set's folder in
    the downloaded benchmark archive (:data:`BENCHMARK_LAYOUT`), else ``None``."""
    root = data_dir()
    if root is None:
        return None
    for path in (root / name, root / BENCHMARK_LAYOUT.get(name, name)):
        if path.is_dir():
            return path
    return None


def require_dataset(name: str) -> Path:
    """:func:`dataset_dir`, or a one-line :class:`~esrgan_lab.errors.DataError` saying what
    to set when the set cannot be found (for notebooks and scripts that need it)."""
    path = dataset_dir(name)
    if path is None:
        from .errors import DataError

        where = os.environ.get("ESRGAN_LAB_DATA")
        now = repr(where) if where else "unset"
        raise DataError(
            f"dataset {name} not found: ESRGAN_LAB_DATA is {now}; "
            f"point it at the folder that holds {name}/ (make figures uses ../shared/datasets)"
        )
    return path


def weights_dir() -> Path:
    """The weights cache folder (created on demand by the downloader, not here)."""
    value = os.environ.get("ESRGAN_LAB_WEIGHTS")
    if value:
        return Path(value).expanduser()
    xdg = os.environ.get("XDG_CACHE_HOME")
    base = Path(xdg).expanduser() if xdg else Path.home() / ".cache"
    return base / "esrgan-lab" / "weights"


def niqe_params_path() -> Path | None:
    """The NIQE pristine-model file, or ``None`` when it cannot be found."""
    value = os.environ.get("ESRGAN_LAB_NIQE_PARAMS")
    candidates = [Path(value).expanduser()] if value else []
    root = data_dir()
    if root is not None:
        candidates += [
            root / "reference" / "niqe_pris_params.npz",
            root.parent / "reference" / "niqe_pris_params.npz",
        ]
    for path in candidates:
        if path.is_file():
            return path
    return None


def figures_dir() -> Path:
    """Folder that :func:`esrgan_lab.lab.viz.savefig` writes to."""
    value = os.environ.get("ESRGAN_LAB_FIGURES")
    return Path(value).expanduser() if value else REPO_ROOT / "figures"


@functools.cache
def source_state() -> tuple[str | None, bool | None]:
    """The git commit of the checkout and whether its tracked files differed from it, read
    once per process (``None`` where git cannot tell).

    Once, because a process runs the code it imported when it started: a study that trains
    for hours while commits land must name the commit it started from in every run it
    makes, not the one that is checked out when each run finishes.
    """
    import subprocess

    def git(*args: str) -> str | None:
        try:
            out = subprocess.run(
                ["git", *args], cwd=REPO_ROOT, capture_output=True, text=True, timeout=10
            )
        except (OSError, subprocess.SubprocessError):
            return None
        return out.stdout.strip() if out.returncode == 0 else None

    status = git("status", "--porcelain", "--untracked-files=no")
    return git("rev-parse", "HEAD"), (bool(status) if status is not None else None)


def provenance() -> dict[str, object]:
    """Where and when a result was made: git commit (:func:`source_state`), machine, torch,
    threads, date (UTC).

    Stored with every training run and experiment so that a number can be traced to the
    code and the hardware that produced it.
    """
    import datetime
    import platform

    import torch

    cpu = platform.processor() or platform.machine()
    try:
        for line in Path("/proc/cpuinfo").read_text().splitlines():
            if line.startswith("model name"):
                cpu = line.split(":", 1)[1].strip()
                break
    except OSError:
        pass
    commit, dirty = source_state()
    return {
        "commit": commit,
        "dirty": dirty,
        "cpu": cpu,
        "cpu_capability": torch.backends.cpu.get_cpu_capability(),
        "cpu_count": os.cpu_count(),
        "gpu": torch.cuda.get_device_name(0) if torch.cuda.is_available() else None,
        "torch": torch.__version__,
        "threads": torch.get_num_threads(),
        "date": datetime.datetime.now(datetime.UTC).isoformat(timespec="seconds"),
    }
