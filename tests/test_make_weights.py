"""tools/make_weights.py: stored alpha sweeps and scores are reused only for the weights files
they were computed from (a retrained model never inherits its predecessor's numbers)."""

from __future__ import annotations

import hashlib
import importlib.util
import json
from pathlib import Path

import pytest

REPO = Path(__file__).resolve().parents[1]


@pytest.fixture
def make_weights():
    spec = importlib.util.spec_from_file_location(
        "make_weights", REPO / "tools" / "make_weights.py"
    )
    module = importlib.util.module_from_spec(spec)
    spec.loader.exec_module(module)
    return module


def test_made_from_names_each_file_by_its_sha256(make_weights, tmp_path) -> None:
    a, b = tmp_path / "a.safetensors", tmp_path / "b.safetensors"
    a.write_bytes(b"psnr weights")
    b.write_bytes(b"gan weights")
    assert make_weights.made_from(a, b) == {
        "a.safetensors": hashlib.sha256(b"psnr weights").hexdigest(),
        "b.safetensors": hashlib.sha256(b"gan weights").hexdigest(),
    }


def test_stored_numbers_are_reused_only_for_the_same_weights(make_weights, tmp_path) -> None:
    weights, stored = tmp_path / "full-gan-x4.safetensors", tmp_path / "eval.json"
    assert make_weights.reusable(stored, {}) is None  # nothing stored yet
    weights.write_bytes(b"version 1")
    key = make_weights.made_from(weights)
    stored.write_text(json.dumps({"mean": {"Set5": 1.0}, "made_from": key}))
    assert make_weights.reusable(stored, key)["mean"] == {"Set5": 1.0}
    weights.write_bytes(b"version 2")  # retrained: the stored scores belong to version 1
    assert make_weights.reusable(stored, make_weights.made_from(weights)) is None
    # A file stored before the key existed serves only models that have no weights file.
    stored.write_text(json.dumps({"mean": {"Set5": 1.0}}))
    assert make_weights.reusable(stored, {}) is not None
    assert make_weights.reusable(stored, key) is None
