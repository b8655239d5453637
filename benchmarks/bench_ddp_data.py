"""Training memory per DDP rank on a prepared sub-image folder: read from disk per sample
(``data.lazy``) against holding the set in memory, measured in one run.

Steps:

1. 50 synthetic 2040x1356 photographs (DIV2K's largest size; smooth noise) are cut by
   ``esrgan-lab prepare-data`` into 480x480 sub-images with step 240: 2,000 files, as
   BasicSR prepares DF2K.
2. Two CPU ranks (``torchrun --nproc_per_node 2``, gloo) train the PSNR stage on that folder
   for a few iterations (batch 8 of 128 px per rank, 2 DataLoader workers each), once with
   ``data.lazy: true`` and once with the in-memory dataset.
3. While they run, the resident memory (``VmRSS`` in ``/proc``) of every rank and of every
   DataLoader worker is sampled and the peak of each reported. A worker shares pages with
   the rank it was forked from, so RSS would count them twice: a rank with its workers is
   measured by proportional set size (``Pss`` of ``smaps_rollup``: shared pages divided
   among the processes sharing them).

The model is small (nf 32, 3 blocks): the point is the data, whose share does not depend on
the network. Linux only (``/proc``). Results go to ``benchmarks/results/bench_ddp_data.json``.

Usage::

    python benchmarks/bench_ddp_data.py            # 2,000 sub-images, lazy and in-memory
    python benchmarks/bench_ddp_data.py --quick    # 200 sub-images
"""

from __future__ import annotations

import argparse
import json
import os
import subprocess
import sys
import tempfile
import threading
import time
from pathlib import Path

import cv2
import numpy as np
import yaml

sys.path.insert(0, str(Path(__file__).resolve().parent.parent))

from esrgan_lab.data.prepare import extract_subimages  # noqa: E402
from esrgan_lab.settings import REPO_ROOT, provenance  # noqa: E402

RESULTS = REPO_ROOT / "benchmarks" / "results" / "bench_ddp_data.json"
#: 2040x1356 at crop 480 / step 240: 5 rows x 8 columns = 40 sub-images per photograph.
PHOTO = (1356, 2040)


def synthetic_photos(folder: Path, count: int) -> None:
    """Smooth random pictures of DIV2K's size (PNG-compressible like photographs)."""
    folder.mkdir(parents=True, exist_ok=True)
    rng = np.random.default_rng(0)
    h, w = PHOTO
    for i in range(count):
        small = rng.integers(0, 256, (h // 24, w // 24, 3), dtype=np.uint8)
        photo = cv2.resize(small, (w, h), interpolation=cv2.INTER_CUBIC)
        cv2.imwrite(str(folder / f"{i:04d}.png"), photo)


def _tree() -> dict[int, list[int]]:
    children: dict[int, list[int]] = {}
    for entry in os.listdir("/proc"):
        if not entry.isdigit():
            continue
        try:
            stat = Path(f"/proc/{entry}/stat").read_text()
        except OSError:
            continue
        ppid = int(stat.rsplit(")", 1)[1].split()[1])
        children.setdefault(ppid, []).append(int(entry))
    return children


def _field(path: str, key: str) -> int:
    try:
        for line in Path(path).read_text().splitlines():
            if line.startswith(key):
                return int(line.split()[1]) * 1024
    except OSError:
        pass
    return 0


def _rss(pid: int) -> int:
    return _field(f"/proc/{pid}/status", "VmRSS:")


def _pss(pid: int) -> int:
    """Proportional set size: shared pages divided among the processes sharing them."""
    return _field(f"/proc/{pid}/smaps_rollup", "Pss:")


class RankMemory:
    """Samples the RSS of the ranks (children of the torchrun agent) and their workers."""

    def __init__(self, agent: int, period: float = 0.2) -> None:
        self.agent = agent
        self.period = period
        self.ranks: dict[int, int] = {}
        self.workers: dict[int, dict[int, int]] = {}
        self.together: dict[int, int] = {}
        self._stop = threading.Event()
        self._thread = threading.Thread(target=self._run, daemon=True)

    def __enter__(self) -> RankMemory:
        self._thread.start()
        return self

    def __exit__(self, *exc: object) -> None:
        self._stop.set()
        self._thread.join()

    def _run(self) -> None:
        while not self._stop.is_set():
            tree = _tree()
            for rank in tree.get(self.agent, []):
                self.ranks[rank] = max(self.ranks.get(rank, 0), _rss(rank))
                total = _pss(rank)
                for worker in tree.get(rank, []):
                    seen = self.workers.setdefault(rank, {})
                    seen[worker] = max(seen.get(worker, 0), _rss(worker))
                    total += _pss(worker)
                self.together[rank] = max(self.together.get(rank, 0), total)
            time.sleep(self.period)

    def summary(self) -> dict[str, float]:
        gb = 1e9
        workers = [v for seen in self.workers.values() for v in seen.values()]
        return {
            "ranks": len(self.ranks),
            "peak_rank_rss_gb": round(max(self.ranks.values(), default=0) / gb, 3),
            "peak_worker_rss_gb": round(max(workers, default=0) / gb, 3),
            "peak_rank_plus_workers_pss_gb": round(max(self.together.values(), default=0) / gb, 3),
        }


def train_two_ranks(folder: Path, out: Path, lazy: bool, iters: int) -> dict:
    cfg = {
        "name": "bench_ddp_data",
        "stages": ["psnr"],
        "model": {"num_feat": 32, "num_block": 3, "num_grow_ch": 16},
        "data": {
            "train": [str(folder)],
            "lazy": lazy,
            "val": [],
            "gt_size": 128,
            "batch_size": 8,
            "num_workers": 2,
        },
        "psnr": {"total_iter": iters},
        "runtime": {"device": "cpu", "num_threads": 1},
        "logging": {"log_every": iters, "val_every": 10**6, "save_every": 10**6},
    }
    config = out.parent / f"{out.name}.yaml"
    config.write_text(yaml.safe_dump(cfg))
    env = {**os.environ, "OMP_NUM_THREADS": "1", "PYTHONPATH": str(REPO_ROOT)}
    cmd = [
        sys.executable, "-m", "torch.distributed.run", "--standalone", "--nproc_per_node=2",
        "-m", "esrgan_lab", "train", "--config", str(config), "--out", str(out),
    ]  # fmt: skip
    start = time.perf_counter()
    proc = subprocess.Popen(cmd, env=env, stdout=subprocess.PIPE, stderr=subprocess.STDOUT)
    with RankMemory(proc.pid) as memory:
        output, _ = proc.communicate()
    if proc.returncode != 0:
        raise RuntimeError(output.decode(errors="replace")[-3000:])
    row = {"lazy": lazy, "seconds": round(time.perf_counter() - start, 1), **memory.summary()}
    label = "from disk (lazy)" if lazy else "in memory"
    print(
        f"  {label:<16} peak RSS per rank {row['peak_rank_rss_gb']:.2f} GB, per worker "
        f"{row['peak_worker_rss_gb']:.2f} GB, rank + workers (PSS) "
        f"{row['peak_rank_plus_workers_pss_gb']:.2f} GB ({row['seconds']:.0f} s)",
        flush=True,
    )
    return row


def main(argv: list[str] | None = None) -> int:
    p = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    p.add_argument("--quick", action="store_true", help="5 photographs (200 sub-images)")
    p.add_argument("--iters", type=int, default=20)
    p.add_argument("--json", type=Path, default=RESULTS)
    args = p.parse_args(argv)
    photos = 5 if args.quick else 50
    results: dict = {"provenance": provenance()}
    with tempfile.TemporaryDirectory() as tmp:
        root = Path(tmp)
        synthetic_photos(root / "hr", photos)
        start = time.perf_counter()
        summary = extract_subimages(root / "hr", root / "sub", workers=2, progress=False)
        results["prepare"] = {
            "photos": photos,
            "subimages": summary.subimages,
            "seconds": round(time.perf_counter() - start, 1),
        }
        print(
            f"prepare-data: {photos} photographs {PHOTO[1]}x{PHOTO[0]} -> {summary.subimages} "
            f"sub-images of 480x480 in {results['prepare']['seconds']:.0f} s",
            flush=True,
        )
        print(f"two CPU ranks (gloo), {args.iters} iterations:", flush=True)
        results["train"] = [
            train_two_ranks(root / "sub", root / f"run_{lazy}", lazy, args.iters)
            for lazy in (True, False)
        ]
    lazy, memory = results["train"]
    print(
        f"in-memory / lazy peak RSS per rank: "
        f"{memory['peak_rank_rss_gb'] / lazy['peak_rank_rss_gb']:.1f}x"
    )
    args.json.parent.mkdir(parents=True, exist_ok=True)
    args.json.write_text(json.dumps(results, indent=2) + "\n")
    print(f"wrote {args.json}")
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
