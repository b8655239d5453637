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


def test_a_staged_psnr_candidate_leaves_the_shipped_pair_alone(
    make_weights, tmp_path, monkeypatch
) -> None:
    """`--stage-psnr NAME` stores a new full_psnr run beside the shipped pair: fp16 weights
    equal to the run's EMA generator, its log and metrics, and a card whose scores are the
    stored evaluations; the shipped files are not touched."""
    from esrgan_lab.evaluation import evaluate as ev
    from esrgan_lab.model.rrdbnet import RRDBNet
    from esrgan_lab.weights.checkpoints import load_checkpoint, save_checkpoint

    runs, weights = tmp_path / "runs", tmp_path / "weights"
    run = runs / "full_psnr"
    (run / "psnr").mkdir(parents=True)
    (weights / "runs").mkdir(parents=True)
    model = RRDBNet(num_feat=8, num_block=1, num_grow_ch=4)
    save_checkpoint(model, run / "net_g_ema.safetensors")
    shipped = weights / "full-psnr-x4.safetensors"
    save_checkpoint(RRDBNet(num_feat=8, num_block=1, num_grow_ch=4), shipped)
    before = shipped.read_bytes()
    (run / "psnr" / "log.csv").write_text("iter,l_pix\n1,0.1\n")
    prov = {"commit": "0123456789abc", "dirty": False, "cpu": "CPU", "cpu_count": 2}
    prov |= {"cpu_capability": "AVX2", "torch": "2.13.0", "date": "2026-12-07"}
    metrics = {"iterations": 4000, "total_iter": 4000, "global_batch": 8, "amp": "none"}
    metrics |= {"train_seconds_total": 600.0, "val_psnr_y": 27.5, "val_images": 4}
    metrics |= {"num_params_g": 1, "model": {"num_feat": 8, "num_block": 1}, "provenance": prov}
    (run / "metrics.json").write_text(json.dumps({"psnr": metrics}))
    monkeypatch.setattr(make_weights, "RUNS", runs)
    monkeypatch.setattr(make_weights, "WEIGHTS", weights)
    scored = []

    class Report:
        def __init__(self, model):
            self.model = model

        def to_dict(self):
            value = 30.0 + len(scored)
            cell = {"psnr": value, "ssim": 0.9, "niqe": 5.0, "niqe_median": 4.9}
            return {"model": self.model, "mean": {"Set5": cell, "Set14": cell}}

    def fake_evaluate(model, datasets, **kw):
        scored.append(model)
        return Report(model)

    monkeypatch.setattr(ev, "evaluate_model", fake_evaluate)
    assert make_weights.stage_psnr("full-psnr-x4-v9", skip_training=True) == 0
    staged = load_checkpoint(weights / "full-psnr-x4-v9.safetensors")
    for key, value in model.state_dict().items():
        assert staged[key].dtype == torch.float16  # stored in fp16 (33 MB at full size)
        torch.testing.assert_close(staged[key], value.half())
    assert shipped.read_bytes() == before
    assert scored == ["bicubic", "realesrgan-x4plus", "full-psnr-x4", "full-psnr-x4-v9"]
    assert (weights / "runs" / "full_psnr_x4_v9" / "log.csv").read_text().startswith("iter")
    card = (weights / "full-psnr-x4-v9.md").read_text()
    assert "| Set5 | 31.000 / 0.9000 / 5.000 (median 4.900) |" in card  # bicubic's column
    assert card.count("| Set14 |") == 1 and "| 34.000 / 0.9000" in card  # this model's column
    assert "4,000 of the config's 4,000" in card
    # Rerun: every score is stored and made from the same weights, so nothing is rescored.
    make_weights.stage_psnr("full-psnr-x4-v9", skip_training=True)
    assert len(scored) == 4

    # The GAN stage retrained from the candidate promotes it: the shipped name gets its
    # tensors, log and scores (made from the new file), the recipe names the shipped file.
    repo = tmp_path / "repo"
    (repo / "configs").mkdir(parents=True)
    (repo / "configs" / "full_gan.yaml").write_text("gan:\n  pretrained_g: full-psnr-x4-v9\n")
    (weights / "runs" / "full_psnr").mkdir()
    (weights / "runs" / "full_psnr" / "stop.txt").write_text("stopped by hand\n")
    monkeypatch.setattr(make_weights, "REPO_ROOT", repo)
    assert make_weights.gan_start() == "full-psnr-x4-v9"
    make_weights.promote("full-psnr-x4-v9")
    for key, value in load_checkpoint(shipped).items():
        torch.testing.assert_close(value, model.state_dict()[key].half())
    assert not list(weights.glob("full-psnr-x4-v9*"))
    assert not (weights / "runs" / "full_psnr" / "stop.txt").exists()
    assert (weights / "runs" / "full_psnr" / "log.csv").read_text().startswith("iter")
    stored = json.loads((weights / "runs" / "eval_full-psnr-x4.json").read_text())
    assert stored["mean"]["Set5"]["psnr"] == 34.0  # the candidate's own score
    assert make_weights.reusable(
        weights / "runs" / "eval_full-psnr-x4.json", make_weights.made_from(shipped)
    )
    assert make_weights.gan_start() == "full-psnr-x4"
    (repo / "configs" / "full_gan.yaml").write_text("gan:\n  pretrained_g: nowhere\n")
    with pytest.raises(SystemExit, match="neither full-psnr-x4 nor a staged candidate"):
        make_weights.gan_start()
