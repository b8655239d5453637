"""tools/make_weights.py: stored alpha sweeps and scores are reused only for the weights files
they were computed from (a retrained model never inherits its predecessor's numbers)."""

from __future__ import annotations

import json
from pathlib import Path

import pytest
import torch

from tests.helpers import load_tool

REPO = Path(__file__).resolve().parents[1]


@pytest.fixture
def make_weights():
    return load_tool("make_weights")


def test_made_from_digests_the_tensors_not_the_file(make_weights, tmp_path) -> None:
    from safetensors.torch import save_file

    weights = {"a": torch.arange(6, dtype=torch.float16).reshape(2, 3), "b": torch.ones(2)}
    one, two = tmp_path / "one.safetensors", tmp_path / "two.safetensors"
    save_file(weights, str(one), metadata={"x": "1", "y": "2"})
    save_file(dict(reversed(weights.items())), str(two), metadata={"y": "2", "x": "1"})
    digest = make_weights.weights_digest
    assert digest(one) == digest(two)  # same tensors, files written differently
    assert make_weights.made_from(one) == {"one.safetensors": digest(one)}
    save_file({**weights, "b": torch.full((2,), 2.0)}, str(two))
    assert digest(one) != digest(two)  # one tensor changed


def test_stored_numbers_are_reused_only_for_the_same_weights(make_weights, tmp_path) -> None:
    from safetensors.torch import save_file

    weights, stored = tmp_path / "full-gan-x4.safetensors", tmp_path / "eval.json"
    assert make_weights.reusable(stored, {}) is None  # nothing stored yet
    save_file({"w": torch.zeros(3)}, str(weights))
    key = make_weights.made_from(weights)
    stored.write_text(json.dumps({"mean": {"Set5": 1.0}, "made_from": key}))
    assert make_weights.reusable(stored, key)["mean"] == {"Set5": 1.0}
    save_file({"w": torch.ones(3)}, str(weights))  # retrained: the scores belong to the old one
    assert make_weights.reusable(stored, make_weights.made_from(weights)) is None
    # A file stored before the key existed serves only models that have no weights file.
    stored.write_text(json.dumps({"mean": {"Set5": 1.0}}))
    assert make_weights.reusable(stored, {}) is not None
    assert make_weights.reusable(stored, key) is None
