"""Stored experiments: each study run once at a size that shows its effect, kept small.

``data/experiments/<name>/`` holds what a notebook needs to plot a study without
rerunning it:

* ``config.yaml`` - the study's parameters (the notebook's ``notebooks/params`` file);
* ``results.json`` - every score per variant, seed and image, and the curves;
* ``curves.csv`` - the training curves in long form (variant, seed, iter, key, value);
* ``images/*.png`` - small sample crops;
* ``weights/*.safetensors`` - small weights a later notebook needs (optional);
* ``provenance.json`` - commit, device, threads, precision, wall time, date.

``tools/experiments.py`` (``make experiments [NAME=...]``) runs a study into
``runs/experiments/<name>`` (resumable: every training run continues from its last
checkpoint) and writes the artifact. The notebooks plot the stored artifact by default and
run a CI-size version of the same study live.
"""

from __future__ import annotations

import csv
import io
import json
from collections.abc import Callable, Iterable, Mapping, Sequence
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import numpy as np

from .. import settings
from ..fileio import atomic_write_text

#: Where the stored experiments live (in the repository: small data the project makes).
EXPERIMENTS_DIR = settings.PACKAGE_DATA / "experiments"
#: Where the notebooks' full-size parameters live.
PARAMS_DIR = settings.REPO_ROOT / "notebooks" / "params"


def notebook_params(notebook: str) -> dict[str, Any]:
    """The full-size parameters of ``notebook`` (``notebooks/params/<notebook>.yaml``)."""
    import yaml

    return yaml.safe_load((PARAMS_DIR / f"{notebook}.yaml").read_text()) or {}


@dataclass
class Artifact:
    """A stored experiment, as :func:`save` wrote it."""

    folder: Path
    config: dict[str, Any]
    results: dict[str, Any]
    provenance: dict[str, Any]
    images: dict[str, Path] = field(default_factory=dict)

    def gallery(self) -> dict[str, np.ndarray]:
        """The stored gallery crops in their order, keyed by what each shows."""
        names = self.results["gallery"]["names"]
        return {label: self.image(f"gallery_{key}") for key, label in names.items()}

    def size_note(self) -> str:
        """Which size this artifact was run at, in words, from its provenance."""
        name = self.provenance.get("experiment", self.folder.name)
        size = self.provenance.get("size", "full")
        if size == "full":
            return "full size: the params file's `study`"
        return (
            f"{size} size: a shrunk version (the params file's `{size}` overrides), not the "
            f"study's full size, which `make experiments NAME={name}` runs"
        )

    def made_by(self) -> str:
        """Which command made this artifact, where, how long and at which commit.

        The wall time is that of the invocation that wrote the artifact; the training
        time (when recorded) sums every run's, including runs an earlier, interrupted
        invocation finished (``make experiments`` resumes them)."""
        p = self.provenance
        train = f" ({p['train_seconds'] / 60:.0f} min training)" if p.get("train_seconds") else ""
        return (
            f"made by `{p['command']}` on {p['cpu']} ({p['cpu_count']} cores), torch "
            f"{p['torch']}, {p['wall_seconds'] / 60:.0f} min wall time{train}, commit "
            f"{p['commit'][:10]}"
        )

    def image(self, name: str) -> np.ndarray:
        """A stored sample image (uint8 BGR)."""
        from ..data.images import read_image

        return read_image(self.images[name])


def curves_rows(results: Mapping[str, Any]) -> Iterable[tuple]:
    """``(variant, seed, iter, key, value)`` of every curve in ``results["runs"]``."""
    for variant, runs in results.get("runs", {}).items():
        for run in runs:
            for key, points in run.get("curves", {}).items():
                for it, value in points:
                    yield variant, run["seed"], it, key, value


def save(
    folder: str | Path,
    config: Mapping[str, Any],
    results: Mapping[str, Any],
    provenance: Mapping[str, Any],
    images: Mapping[str, np.ndarray] | None = None,
) -> Artifact:
    """Write an experiment's artifact into ``folder`` (atomically, file by file)."""
    import yaml

    from ..data.images import write_image

    folder = Path(folder)
    (folder / "images").mkdir(parents=True, exist_ok=True)
    atomic_write_text(folder / "config.yaml", yaml.safe_dump(dict(config), sort_keys=False))
    atomic_write_text(folder / "results.json", json.dumps(results, indent=1, default=_plain) + "\n")
    atomic_write_text(folder / "provenance.json", json.dumps(dict(provenance), indent=2) + "\n")
    buf = io.StringIO()
    writer = csv.writer(buf)
    writer.writerow(["variant", "seed", "iter", "key", "value"])
    writer.writerows(curves_rows(results))
    atomic_write_text(folder / "curves.csv", buf.getvalue())
    for name, image in (images or {}).items():
        write_image(folder / "images" / f"{name}.png", image)
    return load_artifact(folder)


def load_artifact(folder: str | Path) -> Artifact:
    """Read an artifact written by :func:`save`."""
    import yaml

    folder = Path(folder)
    if not (folder / "results.json").is_file():
        raise FileNotFoundError(
            f"{folder}: no stored experiment here; run `make experiments NAME={folder.name}`"
        )
    images = {p.stem: p for p in sorted((folder / "images").glob("*.png"))}
    return Artifact(
        folder,
        yaml.safe_load((folder / "config.yaml").read_text()),
        json.loads((folder / "results.json").read_text()),
        json.loads((folder / "provenance.json").read_text()),
        images,
    )


def _plain(value: Any) -> Any:
    if isinstance(value, np.generic):
        return value.item()
    if isinstance(value, np.ndarray):
        return value.tolist()
    raise TypeError(f"not JSON-serialisable: {type(value).__name__}")


# --------------------------------------------------------------------------- statistics


@dataclass(frozen=True)
class Spread:
    """Mean, sample standard deviation, min and max of a few values (one per seed)."""

    mean: float
    std: float
    low: float
    high: float
    n: int

    @classmethod
    def of(cls, values: Sequence[float]) -> Spread:
        arr = np.asarray(values, dtype=np.float64)
        std = float(arr.std(ddof=1)) if len(arr) > 1 else 0.0
        return cls(float(arr.mean()), std, float(arr.min()), float(arr.max()), len(arr))

    def __str__(self) -> str:
        if self.n == 1:
            return f"{self.mean:.2f} (1 seed)"
        spread = f"range {self.low:.2f} to {self.high:.2f}, {self.n} seeds"
        return f"{self.mean:.2f} ± {self.std:.2f} ({spread})"


def compare(a: Sequence[float], b: Sequence[float], what: str, unit: str = "dB") -> str:
    """One descriptive sentence on two arms' per-seed values (same seeds, same order): the
    paired mean difference with its 95 % t interval (:mod:`esrgan_lab.lab.stats`) and each
    arm's spread. No verdict: the registered claims are judged by
    :mod:`esrgan_lab.lab.findings`."""
    from .stats import paired_effect

    eff = paired_effect(a, b)
    interval = (
        f"95 % interval {eff.low:+.2f} to {eff.high:+.2f}, paired over {eff.n} seeds"
        if eff.n > 1
        else "1 seed, no interval"
    )
    u = f" {unit}" if unit else ""
    return f"{what}: {eff.mean:+.2f}{u} ({interval}; {Spread.of(a)} vs {Spread.of(b)})"


def pooled_score(
    per_set: Mapping[str, Mapping[str, list]], metric: str, reduce: Callable = np.mean
) -> float:
    """``reduce`` (mean or median) of ``metric`` over every image of ``{set: {metric:
    [per image]}}``, the layout the studies store scores in (images without a score, such
    as NIQE on a too-small image, left out)."""
    return float(reduce([v for s in per_set.values() for v in s[metric] if v is not None]))


#: How :func:`margins_over_bicubic` is signed, in the words every sentence that prints a
#: margin uses (NIQE is lower-is-better, so its margin is bicubic's minus the model's).
MARGIN_CONVENTION = "positive is better: dB of Y-PSNR above bicubic, NIQE points below bicubic's"


def margins_over_bicubic(
    scores: Mapping[str, Mapping[str, list]], bicubic: Mapping[str, Mapping[str, list]]
) -> tuple[float, float]:
    """``(dB of Y-PSNR, NIQE points)`` by which a model beats bicubic on the same images,
    positive when it is better (higher PSNR, lower NIQE).

    Reported beside the verdicts (:mod:`esrgan_lab.lab.findings`); never used to leave a
    run out of a comparison.
    """
    return (
        pooled_score(scores, "psnr") - pooled_score(bicubic, "psnr"),
        pooled_score(bicubic, "niqe") - pooled_score(scores, "niqe"),
    )


# --------------------------------------------------------------------------- studies


def study_weights(name_or_path: str) -> Path:
    """The checkpoint a study's params name: a registry name (``"lab-psnr-x4"``), or a
    file stored in the repository given relative to its root
    (``"data/experiments/losses/start_g.safetensors"``), whatever the working directory.
    """
    from ..weights.loading import resolve_weights

    text = str(name_or_path)
    in_repo = settings.REPO_ROOT / text
    return resolve_weights(in_repo if "/" in text and in_repo.is_file() else text)


def study_config(params: Mapping[str, Any], **model: Any) -> Any:
    """The PSNR-stage :class:`~esrgan_lab.training.config.TrainConfig` of a stored study.

    ``params`` holds the sizes (``num_feat``, ``num_block``, ``num_grow_ch``, ``scale``,
    ``gt_size``, ``batch_size``, ``iterations``, ``learning_rate``, ``val_every``, and the
    ``train``/``val`` sources; optionally ``val_crop``, the central HR crop validated on);
    ``model`` overrides model fields. Cosine learning rate (a short run), validation at the
    start and every ``val_every`` iterations.
    """
    from .runs import make_config

    iterations = int(params["iterations"])
    return make_config(
        {
            "scale": params["scale"],
            "stages": ["psnr"],
            "model": {
                "num_feat": params["num_feat"],
                "num_block": params["num_block"],
                "num_grow_ch": params["num_grow_ch"],
                **model,
            },
            "data": {
                "train": list(params["train"]),
                "val": list(params["val"]),
                # Validation on the central crop of each image when the study sets one.
                "val_crop": params.get("val_crop"),
                "gt_size": params["gt_size"],
                "batch_size": params["batch_size"],
                "num_workers": 0,
                # Issue 28's studies validate on the central crop of each large image.
                **({"val_crop": params["val_crop"]} if params.get("val_crop") else {}),
            },
            "psnr": {
                "total_iter": iterations,
                "learning_rate": params["learning_rate"],
                "scheduler": "cosine",
            },
            "logging": {
                "log_every": max(1, iterations // 100),
                "val_every": params["val_every"],
                "val_at_start": True,
                "save_every": max(1, iterations // 4),
                "keep_checkpoints": 1,
                "progress": False,
            },
            # `amp` is set by tools/experiments.py so that all of a study's runs share one
            # precision whatever the host they resume on (runs.study_amp).
            "runtime": {
                "device": "cpu",
                "num_threads": params.get("threads", 2),
                "amp": params.get("amp", "auto"),
            },
        }
    )


def set_name(source: str) -> str:
    """``"Set14[:2]"`` -> ``"Set14"``, ``"Urban100:test"`` -> ``"Urban100"``: test sets are
    keyed by name, whatever the slice or split part."""
    return Path(str(source).split("[")[0].split(":")[0]).name


def test_sets(
    params: Mapping[str, Any], *, gray: bool = False, sources: Sequence[str] | None = None
) -> dict[str, Any]:
    """``{set name: PairedImageSet}`` of the study's ``test`` sources (or ``sources``).

    Args:
        params: The study's parameters (``scale``, ``test``).
        gray: Keep gray images gray, as the evaluation reads them (Set14's ``bridge``
            is then scored on its gray values, :mod:`esrgan_lab.metrics.scoring`);
            otherwise as training reads them (three equal channels, scored on Y).
        sources: The sources to load instead of ``params["test"]``.
    """
    from ..data.paired import PairedImageSet

    scale = int(params["scale"])
    return {
        set_name(s): PairedImageSet(source_images(s, gray=gray), scale, set_name(s))
        for s in (params["test"] if sources is None else sources)
    }


def source_images(source: str, *, gray: bool = False) -> list[Any]:
    """The images of ``source`` as :class:`~esrgan_lab.data.sources.NamedImage` s: as
    training reads them, or with ``gray`` as the evaluation does (gray files stay 2-D)."""
    from ..data.sources import NamedImage, load_source, resolve_dataset

    if not gray:
        return load_source(source)
    return [NamedImage(r.name, r.load()) for r in resolve_dataset(source)]


def gallery(
    params: Mapping[str, Any], test: Mapping[str, Any], models: Mapping[str, Any]
) -> tuple[dict[str, Any], dict[str, np.ndarray]]:
    """Crops of ``params["gallery_image"]`` (``"Set14/baboon"``) at the box
    :func:`esrgan_lab.lab.bn_study.detail_box` picks from the ground truth alone: the
    ground truth, bicubic and each model's output.

    Returns:
        ``(record, images)``: where the crop is and what each image is, and the crops.
    """
    from ..evaluation.evaluate import run_model
    from .bn_study import detail_box

    name, image = str(params["gallery_image"]).split("/")
    pairs = test[name]
    pair = next(p for p in pairs if p.name == image)
    y, x, h, w = detail_box(pair.gt, int(params["gallery_box"]))
    crops = {"gt": pair.gt, "bicubic": run_model("bicubic", pair.lq, pairs.scale)}
    names = {"gt": "ground truth", "bicubic": "bicubic"}
    for i, (label, model) in enumerate(models.items()):
        crops[f"model{i}"] = run_model(model, pair.lq, pairs.scale)
        names[f"model{i}"] = label
    record = {"image": params["gallery_image"], "box": [y, x, h, w], "names": names}
    return record, {f"gallery_{k}": v[y : y + h, x : x + w] for k, v in crops.items()}
