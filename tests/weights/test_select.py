"""The one choice among the weights on disk: never downloads, random only by name."""

from __future__ import annotations

import pytest
import torch

import esrgan_lab.weights.registry as registry
from esrgan_lab.errors import CheckpointError
from esrgan_lab.model.spec import ModelSpec
from esrgan_lab.weights.checkpoints import save_checkpoint
from esrgan_lab.weights.loading import (
    RANDOM,
    best_available_weights,
    is_available,
    select_weights,
)
from tests.helpers import make_tiny


@pytest.fixture
def empty_disk(tmp_path, monkeypatch):
    """No weights cached, no project weights: a machine where nothing is on disk."""
    monkeypatch.setenv("ESRGAN_LAB_WEIGHTS", str(tmp_path / "cache"))
    monkeypatch.setattr(registry, "local_weights_dir", lambda: tmp_path / "local")
    (tmp_path / "local").mkdir()
    return tmp_path


def test_nothing_on_disk_is_an_error_naming_the_alternatives(empty_disk, monkeypatch):
    def no_download(*args, **kwargs):
        raise AssertionError("select_weights must never download")

    monkeypatch.setattr(registry, "download", no_download)
    with pytest.raises(CheckpointError, match="none of the weights") as info:
        select_weights(["esrgan-x4", "lab-gan-x4"])
    assert "'random' names an untrained network" in str(info.value)
    assert "\n" not in str(info.value)
    assert best_available_weights("gan") is None
    assert not is_available("esrgan-x4") and not is_available("no-such-name")


def test_random_only_by_name_and_deterministic(empty_disk):
    state = torch.random.get_rng_state()
    a = select_weights(["lab-psnr-x4", RANDOM], random_spec=ModelSpec(num_feat=8, num_block=1))
    b = select_weights(RANDOM, random_spec=ModelSpec(num_feat=8, num_block=1))
    assert torch.equal(state, torch.random.get_rng_state())  # global RNG untouched
    assert a.name == RANDOM and "seed 0" in a.label
    assert "RANDOM RRDBNet x4, num_block=1, num_feat=8" in a.label
    for (ka, va), (kb, vb) in zip(a.model.state_dict().items(), b.model.state_dict().items()):
        assert ka == kb and torch.equal(va, vb)


def test_first_on_disk_wins_in_the_order_asked(empty_disk):
    save_checkpoint(make_tiny(), empty_disk / "local" / "lab-psnr-x4.safetensors")
    save_checkpoint(make_tiny(seed=1), empty_disk / "local" / "lab-gan-x4.safetensors")
    chosen = select_weights(["esrgan-x4", "lab-gan-x4", "lab-psnr-x4", RANDOM])
    assert chosen.name == chosen.label == "lab-gan-x4" and chosen.model.num_feat == 8
    assert best_available_weights("gan") == "lab-gan-x4"
    assert best_available_weights("psnr") == "lab-psnr-x4"
    path = empty_disk / "local" / "lab-psnr-x4.safetensors"
    assert select_weights([str(path)]).name == str(path)


def test_the_shipped_weights_are_on_disk():
    assert is_available("lab-psnr-x4") and is_available("lab-gan-x4")
    assert select_weights(["lab-gan-x4"]).model.num_block == 3
