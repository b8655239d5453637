"""``esrgan-lab prepare-data`` killed or interrupted part way, for real: a subprocess on a
tiny generated dataset whose sub-image writes are slowed down (issue 31)."""

from __future__ import annotations

import os
import signal
import subprocess
import sys
import time
from pathlib import Path

import cv2
import numpy as np
import psutil
import pytest

REPO = Path(__file__).resolve().parents[2]

#: The CLI with every sub-image write slowed to 0.3 s (the forked workers inherit it).
SLOW_CLI = """
import sys, time
import esrgan_lab.data.prepare as prepare
write = prepare._write_file
def slow(path, data):
    time.sleep(0.3)
    write(path, data)
prepare._write_file = slow
from esrgan_lab.cli import main
sys.exit(main(sys.argv[1:]))
"""

pytestmark = pytest.mark.skipif(sys.platform == "win32", reason="POSIX signals")


def _dataset(folder: Path) -> Path:
    folder.mkdir()
    rng = np.random.default_rng(0)
    for i in range(4):
        cv2.imwrite(str(folder / f"{i}.png"), rng.integers(0, 256, (64, 64, 3), dtype=np.uint8))
    return folder


def _as_foreground_job() -> None:
    """In the child before exec: SIGINT at its default action, as a terminal's foreground job
    has it. A test suite started in the background by a non-interactive shell (``make test &``,
    ``nohup``) runs with SIGINT ignored, an ignored signal stays ignored across fork and exec,
    and Python then leaves Ctrl-C ignored: the CLI would rightly go on (exit 0, or still
    running after 15 s), which is how this test failed in such runs and passed in CI."""
    signal.signal(signal.SIGINT, signal.SIG_DFL)


def _start(tmp_path: Path) -> tuple[subprocess.Popen, Path]:
    src, out = _dataset(tmp_path / "src"), tmp_path / "out"
    env = {**os.environ, "PYTHONPATH": str(REPO), "OMP_NUM_THREADS": "1"}
    args = [str(src), str(out), "--crop", "16", "--step", "8", "--workers", "2"]
    proc = subprocess.Popen(
        [sys.executable, "-c", SLOW_CLI, "prepare-data", *args],
        env=env,
        cwd=tmp_path,
        stdout=subprocess.PIPE,
        stderr=subprocess.PIPE,
        text=True,
        start_new_session=True,  # its own process group, as a shell job has
        preexec_fn=_as_foreground_job,
    )
    return proc, out


def _workers(proc: subprocess.Popen, want: int = 2, timeout: float = 30.0) -> list[psutil.Process]:
    """The pool's worker processes, once ``want`` are running."""
    deadline = time.monotonic() + timeout
    parent = psutil.Process(proc.pid)
    while time.monotonic() < deadline:
        children = parent.children()
        if len(children) >= want:
            return children
        assert proc.poll() is None, proc.communicate()
        time.sleep(0.1)
    pytest.fail(f"prepare-data did not start {want} workers in {timeout} s")


def _gone(procs: list[psutil.Process], timeout: float) -> list[psutil.Process]:
    """Those of ``procs`` still alive (zombies count as gone) after up to ``timeout`` s."""
    deadline = time.monotonic() + timeout
    while True:
        alive = []
        for p in procs:
            try:
                if p.status() != psutil.STATUS_ZOMBIE:
                    alive.append(p)
            except psutil.NoSuchProcess:
                pass
        if not alive or time.monotonic() > deadline:
            return alive
        time.sleep(0.1)


def _kill_left(procs: list[psutil.Process]) -> None:
    for p in procs:  # only the workers this test started
        try:
            p.kill()
        except psutil.NoSuchProcess:
            pass


def _wait_for_output(out: Path, timeout: float = 30.0) -> None:
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        if out.is_dir() and any(p.suffix == ".png" for p in out.iterdir()):
            return
        time.sleep(0.1)
    pytest.fail("no sub-image written")


def _sigkill_and_expect_no_orphans(proc, workers, what: str) -> None:
    """SIGKILL the parent; every worker must be gone within 5 s."""
    os.kill(proc.pid, signal.SIGKILL)
    proc.communicate(timeout=10)
    alive = _gone(workers, timeout=5.0)
    assert not alive, f"orphan {what} after SIGKILL: {[p.pid for p in alive]}"


def test_sigkill_leaves_no_orphan_workers(tmp_path: Path) -> None:
    proc, out = _start(tmp_path)
    workers = _workers(proc)
    try:
        _wait_for_output(out)
        _sigkill_and_expect_no_orphans(proc, workers, "workers")
    finally:
        _kill_left(workers)


@pytest.mark.parametrize("sig", [signal.SIGINT, signal.SIGTERM], ids=["ctrl-c", "sigterm"])
def test_interrupt_ends_workers_and_leaves_no_partial_output(tmp_path: Path, sig) -> None:
    proc, out = _start(tmp_path)
    workers = _workers(proc)
    try:
        _wait_for_output(out)
        if sig == signal.SIGINT:
            os.killpg(proc.pid, sig)  # Ctrl-C: the whole foreground process group
        else:
            os.kill(proc.pid, sig)
        _, err = proc.communicate(timeout=15)
        assert proc.returncode == 130
        assert err.strip().splitlines()[-1] == "esrgan-lab: interrupted"
        assert "Traceback" not in err, err
        assert not _gone(workers, timeout=5.0)
        names = sorted(p.name for p in out.iterdir())
        assert names and all(n.endswith(".png") and not n.startswith(".") for n in names)
        assert "meta_info.txt" not in names
        for name in names:  # every file there is whole
            assert cv2.imread(str(out / name)).shape == (16, 16, 3)
    finally:
        _kill_left(workers)


#: The trainer's data loader (2 workers) with every sample slowed to a minute: a worker
#: busy in ``__getitem__`` never reaches torch's own parent check.
SLOW_LOADER = """
import sys, time
import yaml
from esrgan_lab.data import paired
from esrgan_lab.training.config import from_dict
from esrgan_lab.training.trainer import Trainer
get = paired.PairedPatchDataset.__getitem__
def slow(self, index):
    time.sleep(60)
    return get(self, index)
paired.PairedPatchDataset.__getitem__ = slow
cfg = from_dict(yaml.safe_load(sys.argv[1]))
next(Trainer(cfg, sys.argv[2])._loader(0, 0))
"""


def test_sigkill_ends_the_trainers_data_loader_workers(tmp_path: Path) -> None:
    import yaml

    config = {
        "model": {"num_feat": 8, "num_block": 1, "num_grow_ch": 4},
        "data": {"train": ["sample:train[:1]"], "val": [], "gt_size": 32, "batch_size": 1},
        "runtime": {"device": "cpu", "num_threads": 1},
    }
    config["data"]["num_workers"] = 2
    env = {**os.environ, "PYTHONPATH": str(REPO), "OMP_NUM_THREADS": "1"}
    proc = subprocess.Popen(
        [sys.executable, "-c", SLOW_LOADER, yaml.safe_dump(config), str(tmp_path / "run")],
        env=env,
        cwd=tmp_path,
        stdout=subprocess.PIPE,
        stderr=subprocess.PIPE,
        text=True,
    )
    workers = _workers(proc, want=2, timeout=60)
    try:
        time.sleep(1.0)  # the workers are inside __getitem__
        _sigkill_and_expect_no_orphans(proc, workers, "loader workers")
    finally:
        _kill_left(workers)


def test_trainer_loader_workers_keep_torchs_quiet_sigterm(tmp_path: Path) -> None:
    """DieWithParent leaves torch's own worker signal handlers alone: torch ends a loader
    worker with SIGTERM, and its handler makes the worker exit with status 0 (a worker
    killed by the signal makes torch raise "DataLoader worker ... killed by signal")."""
    script = """
import signal, sys
from esrgan_lab.training.config import from_dict
from esrgan_lab.training.trainer import Trainer
cfg = from_dict({
    "model": {"num_feat": 8, "num_block": 1, "num_grow_ch": 4},
    "data": {"train": ["sample:train[:1]"], "val": [], "gt_size": 32, "batch_size": 1,
             "num_workers": 2},
    "runtime": {"device": "cpu", "num_threads": 1},
})
it = Trainer(cfg, sys.argv[1])._loader(0, 0)
next(it)
signal.signal(signal.SIGCHLD, signal.SIG_DFL)  # torch's check would raise on a bad exit
worker = it._workers[0]
worker.terminate()
worker.join(10)
print("exitcode", worker.exitcode)
"""
    env = {**os.environ, "PYTHONPATH": str(REPO), "OMP_NUM_THREADS": "1"}
    proc = subprocess.run(
        [sys.executable, "-c", script, str(tmp_path / "run")],
        env=env,
        cwd=tmp_path,
        capture_output=True,
        text=True,
        timeout=120,
    )
    assert "exitcode 0" in proc.stdout, (proc.stdout, proc.stderr[-2000:])
