"""The one data split of every study trained from scratch (issue 28), stated once.

* **Training**: every image of ``BSD68`` (68) and ``SunHays80`` (80).
* **Validation**: 20 fixed ``Urban100`` images (:data:`URBAN100_VAL`), read during
  training (curves, the stopping rule) and never for a verdict.
* **Test**: ``Set5`` + ``Set14`` + 30 other fixed ``Urban100`` images
  (:data:`URBAN100_TEST`); the registered endpoints are read here.

How the Urban100 images were chosen: the 100 images sorted by name (``img_001`` ..
``img_100``), permuted by ``numpy.random.default_rng(28).permutation(100)`` (28: the
issue's number); the first 20 of the permutation are validation, the next 30 test
(:func:`urban100_split` recomputes them; ``tests/data/test_splits.py`` checks the lists
below against it). The other 50 Urban100 images are used by no study.

Sources (:mod:`esrgan_lab.data.sources`) name the parts ``"Urban100:val"`` and
``"Urban100:test"``, so configs and params files say ``val: ["Urban100:val"]``.
"""

from __future__ import annotations

#: Seed of the Urban100 permutation (the issue that set the split).
URBAN100_SEED = 28

#: The 20 Urban100 validation images (sorted).
URBAN100_VAL: tuple[str, ...] = (
    "img_002", "img_003", "img_008", "img_014", "img_021", "img_023", "img_028",
    "img_030", "img_032", "img_041", "img_046", "img_058", "img_061", "img_064",
    "img_068", "img_079", "img_087", "img_096", "img_098", "img_100",
)  # fmt: skip

#: The 30 Urban100 test images (sorted; disjoint from :data:`URBAN100_VAL`).
URBAN100_TEST: tuple[str, ...] = (
    "img_001", "img_007", "img_010", "img_012", "img_015", "img_018", "img_020",
    "img_022", "img_026", "img_027", "img_029", "img_031", "img_033", "img_034",
    "img_036", "img_037", "img_038", "img_040", "img_042", "img_045", "img_049",
    "img_055", "img_057", "img_065", "img_070", "img_073", "img_078", "img_081",
    "img_089", "img_099",
)  # fmt: skip

#: ``{dataset: {part: names}}``: the named parts a source may select (``"Urban100:test"``).
PARTS: dict[str, dict[str, tuple[str, ...]]] = {
    "Urban100": {"val": URBAN100_VAL, "test": URBAN100_TEST},
}

#: The common split as study parameters (``train``, ``val``, ``test`` source lists).
TRAIN: tuple[str, ...] = ("BSD68", "SunHays80")
VAL: tuple[str, ...] = ("Urban100:val",)
TEST: tuple[str, ...] = ("Set5", "Set14", "Urban100:test")


def urban100_split(n_val: int = 20, n_test: int = 30) -> tuple[list[str], list[str]]:
    """``(validation, test)`` names as the module docstring derives them (sorted)."""
    import numpy as np

    names = [f"img_{i:03d}" for i in range(1, 101)]
    order = np.random.default_rng(URBAN100_SEED).permutation(len(names))
    val = sorted(names[i] for i in order[:n_val])
    test = sorted(names[i] for i in order[n_val : n_val + n_test])
    return val, test


def common_split() -> dict[str, list[str]]:
    """``{"train": [...], "val": [...], "test": [...]}`` source lists of the common split."""
    return {"train": list(TRAIN), "val": list(VAL), "test": list(TEST)}
