"""Training logs: the per-stage ``log.csv``, its rows, the running means of the logged
losses and the progress bar.

``log.csv`` columns are fixed per stage (:data:`LOG_COLUMNS`); every loss term of the
GAN stage (pixel, perceptual, adversarial) has its own column, weighted as it enters
``L_G``, so the balance of the terms can be read off the log. On resume the rows after
the restored checkpoint are dropped, so a resumed log reads like an uninterrupted one.
"""

from __future__ import annotations

import csv
from pathlib import Path
from typing import Any

import torch
import torch.distributed as dist

#: Columns of each stage's ``log.csv``.
LOG_COLUMNS = {
    "psnr": ["iter", "l_pix", "learning_rate", "val_psnr", "time_s"],
    "gan": [
        "iter",
        "l_pix",
        "l_percep",
        "l_gan",
        "l_g_total",
        "l_d",
        "d_real",
        "d_fake",
        "learning_rate",
        "learning_rate_d",
        "val_psnr",
        "time_s",
    ],
}


class CsvLog:
    """Append rows to ``<stage_dir>/log.csv`` (flushed per row); a context manager."""

    def __init__(self, stage_dir: Path, stage: str, start_iter: int) -> None:
        path = stage_dir / "log.csv"
        self.columns = LOG_COLUMNS[stage]
        rows: list[dict[str, str]] = []
        if start_iter > 0 and path.is_file():
            # Resuming: keep the rows up to the checkpoint, drop those written after it.
            with path.open(newline="") as f:
                rows = [r for r in csv.DictReader(f) if int(r["iter"]) <= start_iter]
        self.file = path.open("w", newline="")
        self.writer = csv.DictWriter(self.file, fieldnames=self.columns)
        self.writer.writeheader()
        self.writer.writerows(rows)
        self.file.flush()

    def write(self, row: dict[str, Any]) -> None:
        self.writer.writerow({k: row.get(k, "") for k in self.columns})
        self.file.flush()

    def close(self) -> None:
        self.file.close()

    def __enter__(self) -> CsvLog:
        return self

    def __exit__(self, *exc: object) -> None:
        self.close()


def format_row(row: dict[str, Any], iteration: int, time_s: float) -> dict[str, Any]:
    """A ``log.csv`` row as written: floats to 6 significant digits, ``val_psnr`` to 4
    decimals, ``iter`` (``row["iter"]`` if set, else ``iteration``) and ``time_s``, the
    training seconds of the stage so far."""
    formatted = {k: (f"{v:.6g}" if isinstance(v, float) else v) for k, v in row.items()}
    if "val_psnr" in row:
        formatted["val_psnr"] = f"{row['val_psnr']:.4f}"
    formatted["iter"] = row.get("iter", iteration)
    formatted["time_s"] = f"{time_s:.2f}"
    return formatted


def progress_bar(total: int, initial: int, desc: str) -> Any:
    """A tqdm bar over a stage's iterations (updated at most once a second)."""
    from tqdm.auto import tqdm

    return tqdm(total=total, initial=initial, desc=desc, mininterval=1.0)


class RunningMeans:
    """Sums of the step losses since the last log row, averaged over steps and ranks."""

    def __init__(self) -> None:
        self.sums: dict[str, torch.Tensor] = {}
        self.count = 0

    def add(self, losses: dict[str, torch.Tensor]) -> None:
        for k, v in losses.items():
            self.sums[k] = self.sums[k] + v if k in self.sums else v.clone()
        self.count += 1

    def pop(self, world: int = 1) -> dict[str, float]:
        """The means (all-reduced over ``world`` ranks), then reset."""
        if not self.count:
            return {}
        keys = sorted(self.sums)
        vec = torch.stack([self.sums[k].float() for k in keys]) / self.count
        if world > 1:
            dist.all_reduce(vec)
            vec /= world
        self.sums, self.count = {}, 0
        return dict(zip(keys, vec.tolist()))
