"""The studies' common split (esrgan_lab.data.splits): deterministic, disjoint, present."""

from __future__ import annotations

from pathlib import Path

import pytest

from esrgan_lab.data import splits
from esrgan_lab.data.sources import resolve_dataset
from esrgan_lab.errors import DataError
from esrgan_lab.lab.experiments import set_name


def test_urban100_parts_are_the_documented_derivation() -> None:
    val, test = splits.urban100_split()
    assert tuple(val) == splits.URBAN100_VAL and tuple(test) == splits.URBAN100_TEST
    assert splits.urban100_split() == (val, test)  # deterministic


def test_parts_are_disjoint_sorted_and_sized() -> None:
    val, test = set(splits.URBAN100_VAL), set(splits.URBAN100_TEST)
    assert len(val) == 20 and len(test) == 30 and not val & test
    assert list(splits.URBAN100_VAL) == sorted(val)
    assert list(splits.URBAN100_TEST) == sorted(test)
    common = splits.common_split()
    # No dataset is both trained on and tested or validated on.
    trained = {set_name(s) for s in common["train"]}
    assert not trained & {set_name(s) for s in common["val"] + common["test"]}


def test_split_sources_resolve_to_the_named_images(data_root: Path) -> None:
    for part, names in splits.PARTS["Urban100"].items():
        records = resolve_dataset(f"Urban100:{part}")
        assert tuple(r.name for r in records) == names
        assert all(r.path is not None and r.path.is_file() for r in records)
    assert len(resolve_dataset("Urban100")) == 100
    for source in splits.TRAIN + splits.TEST:
        assert resolve_dataset(source)
    with pytest.raises(DataError, match="no split part"):
        resolve_dataset("Urban100:train")


def test_split_part_refuses_a_missing_image(monkeypatch, tmp_path: Path) -> None:
    import numpy as np

    from esrgan_lab.data.images import write_image

    (tmp_path / "Urban100").mkdir()
    write_image(tmp_path / "Urban100" / "img_002.png", np.zeros((8, 8, 3), np.uint8))
    monkeypatch.setenv("ESRGAN_LAB_DATA", str(tmp_path))
    with pytest.raises(DataError, match="missing from the dataset"):
        resolve_dataset("Urban100:val")


def test_set_name_strips_the_part() -> None:
    assert set_name("Urban100:test") == "Urban100" and set_name("Set14[:2]") == "Set14"
