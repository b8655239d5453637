"""The redesigned BN-removal study ``bn_removal_v2`` (issue 28; paper Sec. 3.1 and the
supplement's Sec. 1).

Registered as ``study_v2`` / ``registration_v2`` of
``notebooks/params/02_bn_removal_ablation.yaml`` before any of its runs: the three arms of
:data:`~esrgan_lab.lab.bn_study.BN_VARIANTS` over 8 seeds on the common split, every BN
model scored first with the running statistics training left it (what a user of the
weights gets), then after precise BN (the second, labelled endpoint).

* :func:`run_experiment_v2` trains and scores each (arm, seed) run and stores its record
  as it finishes, so an interrupted study resumes;
* :func:`score_run_v2` scores one model (:class:`StudySets`: the images, degraded once);
* :func:`artefact_images` / :func:`artefact_event` find the registered artefact events:
  a :func:`colour_cast` above :data:`COLOUR_CAST_LEVELS` or a Y-PSNR more than
  :data:`ARTEFACT_BELOW_BICUBIC_DB` below bicubic's, on any test or validation image.

The training, shifts, precise BN and worst-case pieces are the stored study's
(:mod:`.bn_study`).
"""

from __future__ import annotations

from collections.abc import Iterable, Mapping, Sequence
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import numpy as np
import torch
from torch import nn

from ..data.paired import PairedImageSet
from ..data.sources import NamedImage
from ..evaluation.evaluate import score_pairs
from .bn_study import (
    BN_VARIANTS,
    SHIFTS,
    patch_batches,
    precise_bn,
    psnr_list,
    shifted_pairs,
    worst_case,
    worst_validation,
)
from .experiments import gallery, study_config, test_sets

#: ``registration_v2.artefact_event``: an image whose Y-PSNR is *more than* this many dB
#: below bicubic's on that image is an artefact event ...
ARTEFACT_BELOW_BICUBIC_DB = 1.0
#: ... and so is an image whose colour cast (:func:`colour_cast`) *exceeds* this many grey
#: levels (of 255).
COLOUR_CAST_LEVELS = 8.0


def colour_cast(sr: np.ndarray, gt: np.ndarray) -> float:
    """The registered colour cast of one output: the largest over R, G, B of
    ``|mean(output channel) - mean(ground-truth channel)|``, in grey levels (0-255).

    Means are over the whole image (no border crop). A gray ground truth (``(H, W)``) is
    compared with each channel of a three-channel output; two gray images have one channel.

    Args:
        sr: ``(H, W, 3)`` or ``(H, W)`` uint8 output.
        gt: ``(H, W, 3)`` or ``(H, W)`` uint8 ground truth of the same size.
    """
    if sr.shape[:2] != gt.shape[:2]:
        raise ValueError(f"output {sr.shape[:2]} and ground truth {gt.shape[:2]} differ in size")
    s = sr.astype(np.float64).reshape(sr.shape[0], sr.shape[1], -1).mean((0, 1))
    g = gt.astype(np.float64).reshape(gt.shape[0], gt.shape[1], -1).mean((0, 1))
    return float(np.max(np.abs(s - g)))


def score_with_casts(model: object, pairs: PairedImageSet) -> tuple[list[float], list[float]]:
    """Per image: the Y-PSNR of :func:`psnr_list` and the :func:`colour_cast` of the output.

    One forward per image through the project's scoring loop; the cast is taken on the
    network's three-channel output, before the output of a gray image (Set14's bridge) is
    converted back to gray for its score, so a tinted output counts there too.

    Args:
        model: A module in the mode it is to be scored in, ``"bicubic"``, or a callable
            on uint8 BGR images (:func:`esrgan_lab.evaluation.evaluate.run_model`).
        pairs: The images.

    Returns:
        ``(psnr, cast)``, one value per pair each.
    """
    from ..evaluation.evaluate import run_model

    outputs: list[np.ndarray] = []

    def forward(lq: np.ndarray) -> np.ndarray:
        outputs.append(run_model(model, lq, pairs.scale))
        return outputs[-1]

    report = score_pairs(forward, pairs, pairs.scale)
    casts = [colour_cast(o, p.gt) for o, p in zip(outputs, pairs, strict=True)]
    return [s.psnr for s in report.scores], casts


def artefact_images(results: Mapping, record: Mapping) -> list[dict]:
    """The images on which one run has an artefact event, as registered: its Y-PSNR with
    running statistics more than :data:`ARTEFACT_BELOW_BICUBIC_DB` below bicubic's, or a
    :func:`colour_cast` above :data:`COLOUR_CAST_LEVELS`, on any test image or any full
    validation image.

    Returns:
        ``[{"part", "image", "margin", "cast"}]`` (margin = the run's Y-PSNR minus
        bicubic's, dB), empty when the run has no event.
    """
    parts = [
        (
            f"test {name}",
            names,
            record["test_running_bn"][name],
            results["bicubic"][name],
            record["colour_cast"]["test"][name],
        )
        for name, names in results["images"].items()
    ]
    val = results["val_images"]
    parts.append(
        (
            "validation",
            val["names"],
            record["val_images"],
            val["bicubic"],
            record["colour_cast"]["val"],
        )
    )
    out = []
    for part, names, psnr, bicubic, casts in parts:
        for name, p, b, c in zip(names, psnr, bicubic, casts, strict=True):
            if p - b < -ARTEFACT_BELOW_BICUBIC_DB or c > COLOUR_CAST_LEVELS:
                out.append({"part": part, "image": name, "margin": p - b, "cast": c})
    return out


def artefact_event(results: Mapping, record: Mapping) -> bool:
    """Whether the run ``record`` has an artefact event (:func:`artefact_images`)."""
    return bool(artefact_images(results, record))


def _gain(model_psnr: Sequence[float], bicubic_psnr: Sequence[float]) -> float:
    """Mean over images of the model's Y-PSNR minus bicubic's (dB)."""
    return float(np.mean(np.subtract(model_psnr, bicubic_psnr)))


@dataclass
class StudySets:
    """The images the redesigned study scores, degraded once (:func:`study_sets`).

    Attributes:
        test: ``{set name: pairs}`` of the test sources, gray images kept gray.
        val: The full validation images (not the trainer's central crops).
        other: The test set that is the registered 'other dataset'.
        shifted: ``{shift name: pairs}``: the test images of every set but ``other``,
            darkened / brightened (:data:`SHIFTS` after ``original``).
        bicubic: Bicubic's Y-PSNR per image: ``{set name: [...]}`` of the test sets,
            ``"val"``, and every shift name.
    """

    test: dict[str, PairedImageSet]
    val: PairedImageSet
    other: str
    shifted: dict[str, PairedImageSet]
    bicubic: dict[str, list[float]]

    @property
    def base(self) -> list[str]:
        """The test sets the shifts start from (every set but :attr:`other`)."""
        return [n for n in self.test if n != self.other]


def study_sets(params: Mapping[str, Any]) -> StudySets:
    """:class:`StudySets` of ``params`` (``test``, ``val``, ``other``, ``scale``).

    ``params["other"]`` names the test source that is the 'other dataset' of the shifted
    statistics (``"Urban100:test"`` in ``study_v2``, as registered); the dark and bright
    shifts apply to the remaining test sources (Set5 + Set14).
    """
    from .experiments import set_name, source_images

    scale = int(params["scale"])
    if params["other"] not in params["test"]:
        raise ValueError(f"'other' ({params['other']}) must be one of the test sources")
    test = test_sets(params, gray=True)
    val = PairedImageSet([im for s in params["val"] for im in source_images(s, gray=True)], scale)
    other = set_name(params["other"])
    base = [im for name, pairs in test.items() if name != other for im in pairs.images]
    shifted = {sh.name: shifted_pairs(base, sh, scale) for sh in SHIFTS[1:]}
    bicubic = {name: psnr_list(None, p) for name, p in {**test, **shifted}.items()}
    bicubic["val"] = psnr_list(None, val)
    return StudySets(test, val, other, shifted, bicubic)


def score_run_v2(
    model: nn.Module,
    sets: StudySets,
    precise: Iterable[torch.Tensor] | None = None,
) -> dict[str, Any]:
    """Score one trained model as the redesigned study registers it.

    First with the running statistics as training left them: Y-PSNR and colour cast on
    every test image and every full validation image, and the gain over bicubic on the
    original (Set5 + Set14), darkened, brightened and 'other dataset' images. Then, when
    ``precise`` batches are given (the BN arms), the BN statistics are re-estimated over
    them (:func:`precise_bn`, in place) and the test images scored again.

    Returns:
        ``test_running_bn`` and ``test`` (``{set: [Y-PSNR]}``; the same scores for a model
        scored without ``precise``), ``val_images`` (``[Y-PSNR]``), ``colour_cast``
        (``{"test": {set: [...]}, "val": [...]}``) and ``shift_gain_running_bn``
        (``{shift: dB}``, with ``original`` and ``other dataset``).
    """
    model.eval()
    running, casts = {}, {}
    for name, pairs in sets.test.items():
        running[name], casts[name] = score_with_casts(model, pairs)
    val_psnr, val_casts = score_with_casts(model, sets.val)
    base = sets.base
    gains = {
        "original": _gain(
            [v for n in base for v in running[n]], [v for n in base for v in sets.bicubic[n]]
        )
    }
    for shift, pairs in sets.shifted.items():
        gains[shift] = _gain(psnr_list(model, pairs), sets.bicubic[shift])
    gains["other dataset"] = _gain(running[sets.other], sets.bicubic[sets.other])
    if precise is not None:
        precise_bn(model, precise)
        test = {name: psnr_list(model, pairs) for name, pairs in sets.test.items()}
    else:
        test = {name: list(v) for name, v in running.items()}
    return {
        "test_running_bn": running,
        "test": test,
        "precise_bn": precise is not None,
        "val_images": val_psnr,
        "colour_cast": {"test": casts, "val": val_casts},
        "shift_gain_running_bn": gains,
    }


def _scoring_key(params: Mapping[str, Any]) -> str:
    """What a stored per-run score depends on: every parameter but the seed list, the
    thread count and the gallery (so adding seeds keeps the runs stored)."""
    import hashlib
    import json

    ignored = ("seeds", "threads", "gallery_image", "gallery_box")
    kept = {k: v for k, v in params.items() if k not in ignored}
    return hashlib.sha256(json.dumps(kept, sort_keys=True, default=str).encode()).hexdigest()


def _v2_header(params: Mapping[str, Any], sets: Any, n_precise: int) -> dict[str, Any]:
    """The ``study_v2`` results before any run: design, bicubic references, image names."""
    return {
        "variants": [v.name for v in BN_VARIANTS],
        "seeds": list(params["seeds"]),
        "scoring": (
            "test_running_bn, val_images, colour_cast and shift_gain_running_bn: running "
            "statistics as training left them; test: after precise BN over "
            f"{n_precise} training batches (BN arms; the BN-free arm's scores as they are); "
            "val_final: the trainer's last validation (central val_crop crops)"
        ),
        "precise_bn_batches": n_precise,
        "artefact_thresholds": {
            "below_bicubic_db": ARTEFACT_BELOW_BICUBIC_DB,
            "colour_cast_levels": COLOUR_CAST_LEVELS,
        },
        "bicubic": {
            "val": float(np.mean(sets.bicubic["val"])),
            **{n: sets.bicubic[n] for n in sets.test},
        },
        "val_images": {"names": sets.val.names, "bicubic": sets.bicubic["val"]},
        "images": {n: p.names for n, p in sets.test.items()},
        "other": sets.other,
        "shift_base": sets.base,
        "shift_bicubic": {n: sets.bicubic[n] for n in sets.shifted},
        "runs": {v.name: [] for v in BN_VARIANTS},
    }


def run_experiment_v2(
    params: Mapping[str, Any], out: str | Path, *, progress: bool = False
) -> tuple[dict, dict[str, np.ndarray]]:
    """The redesigned BN study (issue 28) at the size ``params`` set (``study_v2``).

    For each seed, then each of :data:`BN_VARIANTS`: train the run
    (:func:`esrgan_lab.lab.runs.train_one` into ``out/train/<arm>_seed<seed>``; a
    finished run is only read back), score it (:func:`score_run_v2`; BN arms also after
    precise BN over ``precise_bn_batches`` training batches) and store its record in
    ``out/scores/<arm>_seed<seed>.json`` at once. A rerun reads the stored records and
    trains and scores only what is missing; seeds go outermost, so an interrupted study
    holds complete pairs. No run is dropped or gated on bicubic.

    Then, from the first seed's models with running statistics, the gallery, and the
    validation image where a BN run falls furthest below the BN-free run of its seed
    (:func:`worst_validation`).

    Returns:
        ``(results, images)`` for :func:`esrgan_lab.lab.experiments.save`; the registered
        endpoints are read by :mod:`esrgan_lab.lab.findings`.
    """
    import json

    from ..data.sources import load_source
    from ..fileio import atomic_write_text
    from .runs import grid_folder, print_run, read_run, run_record, train_one

    out = Path(out)
    base = study_config(params)
    sets = study_sets(params)
    key = _scoring_key(params)
    n_precise = int(params.get("precise_bn_batches", 0))
    train_images: list[NamedImage] = []
    results = _v2_header(params, sets, n_precise)
    for seed in params["seeds"]:
        for i, v in enumerate(BN_VARIANTS):
            stored = out / "scores" / f"{i}_seed{seed}.json"
            if stored.is_file():
                rec = json.loads(stored.read_text())
                if rec.get("scoring_key") != key:
                    raise ValueError(
                        f"{stored} was scored with other parameters; move {out / 'scores'} "
                        "away to rescore"
                    )
            else:
                run = train_one(
                    v.name, v.overrides(), base, grid_folder(out / "train", i, seed), seed=seed
                )
                if progress:
                    print_run(run, seed)
                precise = None
                if v.norm and n_precise:
                    if not train_images:
                        train_images = [im for s in params["train"] for im in load_source(s)]
                    precise = patch_batches(train_images, params, n_precise, 10_000 + seed)
                rec = {
                    **run_record(run, seed),
                    **score_run_v2(run.model(ema=False), sets, precise),
                    "scoring_key": key,
                }
                atomic_write_text(stored, json.dumps(rec, indent=1) + "\n")
            results["runs"][v.name].append(rec)
            if progress:
                events = artefact_images(results, rec)
                print(
                    f"{v.name:<32} seed {seed}: test {np.mean(_pooled(rec['test_running_bn'])):.2f}"
                    f" dB (running statistics), {len(events)} artefact image(s)",
                    flush=True,
                )

    def model(variant: str, seed: int) -> nn.Module:
        i = results["variants"].index(variant)
        folder = grid_folder(out / "train", i, seed) / "psnr"
        return read_run(variant, folder).model(ema=False).eval()

    first = params["seeds"][0]
    results["gallery"], images = gallery(
        params, sets.test, {v.name: model(v.name, first) for v in BN_VARIANTS}
    )
    worst = worst_case(results)
    pair_models = {
        (n, worst["seed"]): model(n, worst["seed"])
        for n in (results["variants"][0], worst["variant"])
    }
    results["worst"], worst_images = worst_validation(results, sets.val, pair_models)
    images.update(worst_images)
    return results, images


def _pooled(per_set: Mapping[str, Sequence[float]]) -> list[float]:
    """Every image's value of ``{set: [per image]}``, sets in order."""
    return [v for values in per_set.values() for v in values]
