"""Training runs for the notebooks: configs from dicts, runs through the trainer, logs read back.

The studies of notebooks 02 and 03 train with the project's trainer
(:mod:`esrgan_lab.training.trainer`), the same code as ``esrgan-lab train``; this module
only builds their configs, runs them in a folder and reads what the trainer wrote.
"""

from __future__ import annotations

import contextlib
import copy
import csv
import io
import json
from collections.abc import Mapping, Sequence
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import numpy as np

from ..training.config import TrainConfig, from_dict, to_dict
from ..training.trainer import Callback, train


def make_config(base: Mapping[str, Any] | TrainConfig, **overrides: Any) -> TrainConfig:
    """A validated :class:`TrainConfig` from ``base`` with dotted-key ``overrides``.

    ``make_config(base, **{"model.norm": "batch", "psnr.total_iter": 100})``.
    """
    data = copy.deepcopy(to_dict(base) if isinstance(base, TrainConfig) else dict(base))
    for dotted, value in overrides.items():
        node = data
        *parents, leaf = dotted.split(".")
        for key in parents:
            node = node.setdefault(key, {})
        node[leaf] = value
    return from_dict(data)


def read_log(path: str | Path) -> dict[str, np.ndarray]:
    """A trainer ``log.csv`` as float columns (empty cells are NaN)."""
    with Path(path).open(newline="") as f:
        rows = list(csv.DictReader(f))
    if not rows:
        return {}
    return {
        key: np.array([float(r[key]) if r[key] != "" else np.nan for r in rows]) for key in rows[0]
    }


@dataclass
class Run:
    """One stage of a finished training run, as the trainer left it on disk.

    Attributes:
        name: Label of the run in tables and plots.
        folder: The stage folder (``<out>/<stage>``).
        metrics: The stage's ``metrics.json``.
        log: :func:`read_log` of its ``log.csv``.
    """

    name: str
    folder: Path
    metrics: dict[str, Any]
    log: dict[str, np.ndarray]

    @property
    def diverged(self) -> bool:
        return self.metrics.get("diverged_at") is not None

    @property
    def seconds(self) -> float:
        return float(self.metrics["train_seconds_total"])

    def curve(self, key: str) -> tuple[np.ndarray, np.ndarray]:
        """``(iterations, values)`` where column ``key`` was logged."""
        values = self.log[key]
        keep = np.isfinite(values)
        return self.log["iter"][keep], values[keep]

    def weights_file(self, ema: bool = True) -> Path:
        """The exported generator's file (the EMA weights when the run kept them)."""
        path = self.folder / "net_g_ema.safetensors"
        return path if ema and path.is_file() else self.folder / "net_g.safetensors"

    def model(self, ema: bool = True):
        """The exported generator (the EMA weights when the run kept them)."""
        from ..weights.loading import load_model

        return load_model(self.weights_file(ema))


def run_config(
    name: str,
    cfg: TrainConfig,
    out: str | Path,
    *,
    callbacks: Sequence[Callback] = (),
    quiet: bool = True,
    resume: bool = False,
) -> dict[str, Run]:
    """Train ``cfg`` into ``out`` with the trainer; returns ``{stage: Run}``.

    Args:
        name: Label of the run.
        cfg: The configuration (e.g. from :func:`make_config`).
        out: Output folder.
        callbacks: Passed to the trainer (called after every step).
        quiet: Swallow the trainer's prints (notebooks print their own summary).
        resume: Continue a run already in ``out``.
    """
    out = Path(out)
    sink = io.StringIO()
    with contextlib.redirect_stdout(sink) if quiet else contextlib.nullcontext():
        train(cfg, out, resume=resume, callbacks=callbacks)
    return {stage: read_run(name, out / stage) for stage in cfg.stages}


def read_run(name: str, folder: str | Path) -> Run:
    """The :class:`Run` the trainer left in the stage folder ``folder`` (no training)."""
    folder = Path(folder)
    metrics = json.loads((folder / "metrics.json").read_text())
    return Run(name, folder, metrics, read_log(folder / "log.csv"))


def train_grid(
    variants: Mapping[str, Mapping[str, Any]],
    base: TrainConfig,
    out: str | Path,
    *,
    seeds: Sequence[int] = (0,),
    stage: str = "psnr",
    progress: bool = False,
    index: Mapping[str, int] | None = None,
) -> dict[str, list[Run]]:
    """Train every variant (config overrides) with every seed, under identical conditions.

    Each run is ``base`` with the variant's overrides and the seed set, written to
    ``out/<variant index>_seed<seed>``; a run already finished there is reused (resume).
    ``index`` names each variant's index when ``variants`` is part of a larger grid trained
    in pieces (default: its position in ``variants``).

    Returns:
        ``{variant: [Run per seed]}`` in the order given.
    """
    runs: dict[str, list[Run]] = {}
    for i, (name, overrides) in enumerate(variants.items()):
        for seed in seeds:
            folder = grid_folder(out, i if index is None else index[name], seed)
            run = train_one(name, overrides, base, folder, seed=seed, stage=stage)
            runs.setdefault(name, []).append(run)
            if progress:
                print_run(run, seed)
    return runs


def grid_folder(out: str | Path, index: int, seed: int) -> Path:
    """Where :func:`train_grid` trains variant number ``index`` with ``seed``."""
    return Path(out) / f"{index}_seed{seed}"


def train_one(
    name: str,
    overrides: Mapping[str, Any],
    base: TrainConfig,
    folder: str | Path,
    *,
    seed: int,
    stage: str = "psnr",
) -> Run:
    """One run of :func:`train_grid`: ``base`` with ``overrides`` and ``seed``, trained into
    ``folder`` (continued when a run is already there; a finished one is only read)."""
    cfg = make_config(base, seed=seed, stages=[stage], **overrides)
    stage_dir = Path(folder) / stage
    if (stage_dir / "metrics.json").is_file() and not (stage_dir / "checkpoints").is_dir():
        return read_run(name, stage_dir)  # finished elsewhere, put back by restore_runs
    return run_config(name, cfg, folder, resume=stage_dir.is_dir())[stage]


def print_run(run: Run, seed: int) -> None:
    """One progress line: the run's time and last validation score."""
    _, val = run.curve("val_psnr") if "val_psnr" in run.log else ((), ())
    last = f"{val[-1]:.2f} dB" if len(val) else "-"
    flag = "  (diverged)" if run.diverged else ""
    print(f"{run.name:<32} seed {seed}: {run.seconds:7.1f} s  val PSNR {last}{flag}", flush=True)


def run_record(run: Run, seed: int, keys: Sequence[str] = ("val_psnr", "l_pix")) -> dict:
    """A JSON-able summary of one run: its curves, time and end state."""
    curves = {}
    for key in keys:
        if key in run.log:
            iters, values = run.curve(key)
            curves[key] = [[int(i), float(v)] for i, v in zip(iters, values)]
    val = curves.get("val_psnr", [])
    return {
        "seed": seed,
        "curves": curves,
        "val_final": val[-1][1] if val else None,
        "seconds": run.seconds,
        "iterations": run.metrics["iterations"],
        "diverged_at": run.metrics.get("diverged_at"),
    }


#: The trainer's stage folders (:attr:`TrainConfig.stages`).
STAGES = ("psnr", "gan")
#: What :func:`archive_runs` keeps of a finished stage (weights only while unscored).
ARCHIVED_FILES = ("metrics.json", "log.csv", "test_scores.json")
#: The archive's description of what its runs were trained under.
ARCHIVE_META = "archive.json"


def finished_stages(out: str | Path) -> list[Path]:
    """The stage folders under a study's run folder whose training finished (the trainer
    wrote the stage's ``metrics.json`` at the end), sorted."""
    return sorted(p.parent for p in Path(out).glob("**/*/metrics.json") if p.parent.name in STAGES)


def study_amp(out: str | Path) -> str | None:
    """The precision the finished runs under ``out`` trained in (``"bf16"`` or ``"none"``,
    as each stage's ``metrics.json`` records it), or ``None`` before any run has finished.

    A study's arms are compared per seed (same seed, same initialisation and batches), so
    its runs must also share a precision: a study resumed on a host with native bf16 goes on
    in the precision of its first runs rather than in what ``amp: auto`` picks there.

    Raises:
        ConfigError: The finished runs were trained in different precisions.
    """
    from ..errors import ConfigError

    amps = {
        json.loads((stage / "metrics.json").read_text()).get("amp", "none")
        for stage in finished_stages(out)
    }
    if len(amps) > 1:
        raise ConfigError(
            f"{out} holds runs trained in different precisions ({', '.join(sorted(amps))}); "
            "a study's runs must share one: retrain the runs of one of them"
        )
    return amps.pop() if amps else None


def _other_meta(archive: Path, meta: Mapping[str, Any]) -> bool:
    """Whether ``archive`` holds runs made under another ``meta`` (compared as JSON)."""
    path = archive / ARCHIVE_META
    return path.is_file() and json.loads(path.read_text()) != json.loads(json.dumps(meta))


def archive_runs(out: str | Path, archive: str | Path, meta: Mapping[str, Any]) -> list[str]:
    """Copy every finished run of ``out`` into ``archive`` (a folder that is committed), so
    that a study of several hours resumes on another machine or in another session.

    Per stage: :data:`ARCHIVED_FILES`, and the generator's weights only when the run has
    no ``test_scores.json`` yet (its scoring still needs them). ``meta`` (the study's
    registration hash and sizes) is written beside them; :func:`restore_runs` refuses an
    archive whose ``meta`` differs.

    Returns:
        The stage folders archived, relative to ``out``.
    """
    from ..fileio import atomic_write_bytes, atomic_write_text

    out, archive = Path(out), Path(archive)
    if _other_meta(archive, meta):
        raise ValueError(f"{archive} holds runs made under another registration or size")
    done = []
    for stage_dir in finished_stages(out):
        rel = stage_dir.relative_to(out)
        scored = (stage_dir / "test_scores.json").is_file()
        names = list(ARCHIVED_FILES) + ([] if scored else ["net_g.safetensors"])
        for file in names:
            src = stage_dir / file
            if src.is_file():
                atomic_write_bytes(archive / rel / file, src.read_bytes())
        if scored:  # weights archived before the run was scored are not needed now
            (archive / rel / "net_g.safetensors").unlink(missing_ok=True)
        done.append(str(rel))
    atomic_write_text(archive / ARCHIVE_META, json.dumps(meta, indent=1, sort_keys=True) + "\n")
    return done


def restore_runs(archive: str | Path, out: str | Path, meta: Mapping[str, Any]) -> list[str]:
    """Put the archived runs (:func:`archive_runs`) back under ``out`` where ``out`` has no
    such run yet; :func:`train_one` then reads them instead of training them again.

    Raises:
        ConfigError: The archive was made under another registration or size than
            ``meta``: its runs are not the runs this study would train.

    Returns:
        The stage folders restored, relative to ``out``.
    """
    import shutil

    from ..errors import ConfigError

    archive, out = Path(archive), Path(out)
    if not (archive / ARCHIVE_META).is_file():
        return []
    if _other_meta(archive, meta):
        raise ConfigError(
            f"{archive} holds runs made under another registration or size than the study "
            "now asks for; remove it to rerun them"
        )
    done = []
    for stage_dir in finished_stages(archive):
        rel = stage_dir.relative_to(archive)
        if (out / rel.parent).exists():
            continue
        shutil.copytree(stage_dir, out / rel)
        done.append(str(rel))
    return done
