"""``python tools/nbtool.py run|store``: run notebooks headless (papermill), store for nbval.

* :func:`run_notebooks` is ``make figures``: executes every ``notebooks/*.ipynb`` in
  order with papermill (kernel ``python3``) at its stored parameters, or with
  ``notebooks/params/<name>.yaml`` when ``full=True``, writes the executed copies to an
  ignored build folder, and lists the figures each notebook wrote. A run of every
  notebook that succeeds then removes the PNGs in the figures folder that none of them
  wrote (an old figure no notebook shows any more).
* :func:`store_notebook` executes one notebook and writes it back for the reader who
  does not run it: the outputs of cells tagged ``nbval-check-output`` (the invariants
  nbval compares, source listings among them) or ``store-output`` (machine-dependent
  results, shown and not compared) and every image a cell displays (the
  figures it saves, the widgets' static views), as GitHub and JupyterLab render them.
  Everything else (progress prints, warnings, text reprs) is dropped, so the stored files
  diff cleanly. The kernel runs with matplotlib's inline backend and the widgets'
  headless rule, so ``plt.show()`` and a returned static figure become image outputs.
"""

from __future__ import annotations

import argparse
import contextlib
import os
import sys
import tempfile
import time
from pathlib import Path

from esrgan_lab.fileio import atomic_path
from esrgan_lab.settings import REPO_ROOT, figures_dir

NOTEBOOKS = REPO_ROOT / "notebooks"
BUILD = REPO_ROOT / "build" / "notebooks"
KERNEL = "python3"
CHECK_TAG = "nbval-check-output"
#: Outputs kept for the reader but not compared by nbval (``make test`` runs ``--nbval-lax``,
#: which compares only :data:`CHECK_TAG` cells): results that depend on the machine, such as
#: latencies and int8/bf16 output changes, which a reader should still see unrun.
SHOW_TAG = "store-output"
#: The kernel's environment while storing: inline figures (what JupyterLab shows) and the
#: widgets' static views (``esrgan_lab.lab.widgets``' headless rule).
STORE_ENV = {
    "MPLBACKEND": "module://matplotlib_inline.backend_inline",
    "ESRGAN_LAB_HEADLESS": "1",
}
IMAGE_TYPES = ("image/png", "image/jpeg", "image/svg+xml")


@contextlib.contextmanager
def _environ(values: dict[str, str]):
    old = {k: os.environ.get(k) for k in values}
    os.environ.update(values)
    try:
        yield
    finally:
        for k, v in old.items():
            if v is None:
                os.environ.pop(k, None)
            else:
                os.environ[k] = v


def _is_image(output) -> bool:
    return any(t in output.get("data", {}) for t in IMAGE_TYPES)


def stored_outputs(cell) -> list:
    """The outputs :func:`store_notebook` keeps of one executed code cell.

    A checked cell keeps what nbval compares (no stderr, no images: ``make test`` runs with
    the Agg backend), and so does a :data:`SHOW_TAG` cell (shown, not compared); any other
    cell keeps only the images it displayed.
    """
    tags = set(cell.metadata.get("tags", []))
    if {CHECK_TAG, SHOW_TAG} & tags:
        kept = [
            o
            for o in cell.outputs
            if not (o.output_type == "stream" and o.name == "stderr") and not _is_image(o)
        ]
        # A shown cell is not compared: leave out what a reader cannot see unrun.
        return kept if CHECK_TAG in tags else [o for o in kept if _readable(o)]
    return [
        o
        for o in cell.outputs
        if o.output_type in ("display_data", "execute_result") and _is_image(o)
    ]


def _readable(output) -> bool:
    """Whether a stored output shows anything without a kernel: not a widget view (its state
    is not stored; a progress bar reads "Output()") and not an empty display."""
    if output.output_type == "stream":
        return bool("".join(output.text).strip())
    data = output.get("data", {})
    if "application/vnd.jupyter.widget-view+json" in data:
        return False
    return any("".join(data.get(kind, "")).strip() for kind in ("text/markdown", "text/plain"))


def _snapshot(folder: Path) -> dict[str, float]:
    if not folder.is_dir():
        return {}
    return {p.name: p.stat().st_mtime_ns for p in folder.glob("*.png")}


def _params(path: Path, full: bool) -> dict:
    if not full:
        return {}
    import yaml

    params_file = NOTEBOOKS / "params" / f"{path.stem}.yaml"
    if not params_file.is_file():
        return {}
    with open(params_file) as fh:
        return yaml.safe_load(fh) or {}


def run_notebooks(
    names: list[str] | None = None, *, full: bool = False, build: Path = BUILD
) -> int:
    """Execute notebooks with papermill; return 0 if all ran, 1 otherwise."""
    import papermill as pm

    paths = sorted(NOTEBOOKS.glob("[0-9][0-9]_*.ipynb"))
    if names:
        paths = [p for p in paths if any(n in p.stem for n in names)]
    if not paths:
        print("no notebooks matched", file=sys.stderr)
        return 1
    build.mkdir(parents=True, exist_ok=True)
    failures: list[str] = []
    made: set[str] = set()
    for path in paths:
        before = _snapshot(figures_dir())
        start = time.perf_counter()
        print(f"[figures] {path.name}{' (full size)' if full else ''} ...", flush=True)
        try:
            pm.execute_notebook(
                str(path),
                str(build / path.name),
                parameters=_params(path, full),
                kernel_name=KERNEL,
                cwd=str(NOTEBOOKS),
                progress_bar=False,
            )
        except Exception as exc:  # papermill re-raises the cell's error
            first = str(exc).strip().splitlines()
            failures.append(f"{path.name}: {first[-1] if first else type(exc).__name__}")
            print(f"[figures] FAILED {path.name}: see {build / path.name}", file=sys.stderr)
            continue
        after = _snapshot(figures_dir())
        written = sorted(n for n, m in after.items() if before.get(n) != m)
        made.update(written)
        took = time.perf_counter() - start
        print(f"[figures] {path.name}: {took:.0f} s, wrote {len(written)} figure(s)")
        for name in written:
            print(f"    figures/{name}")
    if failures:
        print("[figures] failed notebooks:", file=sys.stderr)
        for line in failures:
            print(f"    {line}", file=sys.stderr)
        return 1
    if not names:
        for orphan in sorted(set(_snapshot(figures_dir())) - made):
            (figures_dir() / orphan).unlink()
            print(f"[figures] removed figures/{orphan}: no notebook makes it")
    return 0


def store_notebook(path: str | Path) -> Path:
    """Execute ``path`` and write it back with the outputs :func:`stored_outputs` keeps."""
    import nbformat
    import papermill as pm

    path = Path(path).resolve()
    with tempfile.TemporaryDirectory() as tmp:
        executed = Path(tmp) / path.name
        with _environ(STORE_ENV):
            pm.execute_notebook(
                str(path),
                str(executed),
                kernel_name=KERNEL,
                cwd=str(path.parent),
                progress_bar=False,
            )
        nb = nbformat.read(executed, as_version=4)
    nb.metadata.pop("papermill", None)
    nb.metadata["kernelspec"] = {
        "name": KERNEL,
        "display_name": "Python 3",
        "language": "python",
    }
    for cell in nb.cells:
        cell.metadata.pop("papermill", None)
        cell.metadata.pop("execution", None)
        if cell.cell_type != "code":
            continue
        tags = cell.metadata.get("tags", [])
        if "injected-parameters" in tags:
            raise RuntimeError("refusing to store a notebook with injected parameters")
        cell.outputs = stored_outputs(cell)
        if not cell.outputs:
            cell.execution_count = None
    with atomic_path(path, suffix=".ipynb") as tmp_out:
        nbformat.write(nb, tmp_out)
    return path


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(prog="nbtool", description=__doc__.splitlines()[0])
    sub = parser.add_subparsers(dest="cmd", required=True)
    run_p = sub.add_parser("run", help="execute notebooks with papermill (make figures)")
    run_p.add_argument("names", nargs="*", help="substrings of notebook names (default: all)")
    run_p.add_argument("--full", action="store_true", help="use notebooks/params/<name>.yaml")
    store_p = sub.add_parser("store", help="execute and store notebooks for nbval")
    store_p.add_argument("paths", nargs="+")
    args = parser.parse_args(argv)
    if args.cmd == "run":
        return run_notebooks(args.names, full=args.full)
    for p in args.paths:
        print(f"stored {store_notebook(p)}")
    return 0


if __name__ == "__main__":  # pragma: no cover
    sys.exit(main())
