"""The BN-removal study: matched variants trained by the trainer, BN folding, shifts, stats."""

from __future__ import annotations

import numpy as np
import pytest
import torch
from torch import nn

from esrgan_lab.data.paired import PairedImageSet
from esrgan_lab.data.sources import NamedImage
from esrgan_lab.lab import bn_study as ab
from esrgan_lab.lab.runs import make_config
from tests.helpers import TINY


def _images() -> list[NamedImage]:
    rng = np.random.default_rng(0)
    base = rng.integers(0, 256, (6, 6, 3)).astype(np.float64)
    # Smooth-ish 48x48 images (upsampled noise) so that learning is possible.
    img = np.kron(base, np.ones((8, 8, 1)))
    return [
        NamedImage("a", img.astype(np.uint8)),
        NamedImage("b", img[::-1].astype(np.uint8).copy()),
    ]


def _base(tmp_path) -> object:
    """A tiny PSNR-stage config on two synthetic images written to a folder."""
    import cv2

    folder = tmp_path / "imgs"
    folder.mkdir(exist_ok=True)
    for im in _images():
        cv2.imwrite(str(folder / f"{im.name}.png"), im.image)
    return make_config(
        {
            "stages": ["psnr"],
            "model": dict(TINY),
            "data": {
                "train": [str(folder)],
                "val": [f"{folder}[:1]"],
                "gt_size": 16,
                "batch_size": 2,
                "num_workers": 0,
            },
            "psnr": {"total_iter": 4, "learning_rate": 1e-3},
            "logging": {
                "log_every": 1,
                "val_every": 2,
                "val_at_start": True,
                "save_every": 100,
                "progress": False,
            },
            "runtime": {"device": "cpu", "num_threads": 1},
        }
    )


def _randomize_bn(model: nn.Module, seed: int = 0) -> None:
    gen = torch.Generator().manual_seed(seed)
    for m in model.modules():
        if isinstance(m, nn.BatchNorm2d):
            c = m.num_features
            m.running_mean.copy_(torch.randn(c, generator=gen) * 0.3)
            m.running_var.copy_(torch.rand(c, generator=gen) + 0.5)
            m.weight.data.copy_(torch.rand(c, generator=gen) + 0.5)
            m.bias.data.copy_(torch.randn(c, generator=gen) * 0.1)


def _generator(variant: ab.GeneratorVariant, seed: int = 0):
    cfg = make_config({"model": dict(TINY), "seed": seed})
    return ab.build_generator(variant, cfg)


def test_variants_share_conv_weights() -> None:
    plain = _generator(ab.BN_VARIANTS[0], seed=3).state_dict()
    for v in ab.BN_VARIANTS[1:]:
        state = _generator(v, seed=3).state_dict()
        assert set(plain) < set(state)
        extra = set(state) - set(plain)
        assert extra and all(".bn" in k or k.startswith("bn_") for k in extra)
        for k, t in plain.items():
            assert torch.equal(t, state[k]), k
    hr = _generator(ab.BN_VARIANTS[2]).state_dict()
    assert "bn_up1.running_mean" in hr and "bn_hr.weight" in hr
    lr = _generator(ab.BN_VARIANTS[1]).state_dict()
    assert "bn_up1.running_mean" not in lr and "bn_body.running_mean" in lr


def test_variants_train_through_the_trainer_reproducibly(tmp_path) -> None:
    base = _base(tmp_path)
    runs = [ab.train_variants(ab.BN_VARIANTS[:2], base, tmp_path / f"r{k}") for k in range(2)]
    for name in runs[0]:
        (a,), (b,) = runs[0][name], runs[1][name]
        iters, _ = a.curve("val_psnr")
        assert list(iters) == [0, 2, 4]
        _, loss_a = a.curve("l_pix")
        _, loss_b = b.curve("l_pix")
        assert len(loss_a) == 4 and np.array_equal(loss_a, loss_b)
        for k, t in a.model().state_dict().items():
            assert torch.equal(t, b.model().state_dict()[k]), k
        # the first batches were the same for both variants: same data stream
    # the variant really is the config: the BN model trained its running statistics
    bn = runs[0]["BN in LR trunk (SRGAN)"][0].model().body[0].rdb1.bn1
    assert not torch.equal(bn.running_mean, torch.zeros_like(bn.running_mean))
    assert runs[0]["no BN (ESRGAN)"][0].metrics["model"]["norm"] is None


def test_seeds_give_one_run_each(tmp_path) -> None:
    runs = ab.train_variants(ab.BN_VARIANTS[:1], _base(tmp_path), tmp_path / "s", seeds=(0, 1))
    (a, b) = runs["no BN (ESRGAN)"]
    assert a.metrics["provenance"] and a.folder != b.folder
    assert not np.array_equal(a.curve("l_pix")[1], b.curve("l_pix")[1])


@pytest.mark.parametrize("norm_variant", [1, 2])
def test_fold_batchnorm_matches_eval_mode(norm_variant: int) -> None:
    model = _generator(ab.BN_VARIANTS[norm_variant]).eval()
    _randomize_bn(model)
    folded = ab.fold_batchnorm(model)
    assert not any(isinstance(m, nn.BatchNorm2d) for m in folded.modules())
    assert any(isinstance(m, nn.BatchNorm2d) for m in model.modules())  # original kept
    x = torch.rand(2, 3, 6, 5)
    with torch.no_grad():
        torch.testing.assert_close(folded(x), model(x), atol=1e-5, rtol=1e-4)


def test_shift_apply() -> None:
    img = np.array([[[0, 64, 255]]], dtype=np.uint8)
    dark = ab.Shift("d", gain=0.5).apply(img)
    np.testing.assert_array_equal(dark, [[[0, 32, 128]]])  # 127.5 rounds half to even: 128
    bright = ab.Shift("b", gamma=0.5).apply(img)
    np.testing.assert_array_equal(bright, [[[0, round(255 * (64 / 255) ** 0.5), 255]]])
    same = ab.Shift("o").apply(img)
    np.testing.assert_array_equal(same, img)
    pairs = ab.shifted_pairs(_images(), ab.Shift("d", gain=0.5), 4)
    assert max(p.gt.max() for p in pairs) <= 128


def test_bn_input_stats_against_manual_forward() -> None:
    model = _generator(ab.BN_VARIANTS[2]).eval()
    _randomize_bn(model, 1)
    before = {k: v.clone() for k, v in model.state_dict().items()}
    x = torch.rand(2, 3, 8, 8)
    stats = ab.bn_input_stats(model, x)
    names = [s.name for s in stats]
    assert names[0] == "body.0.rdb1.bn1" and names[-1] == "bn_hr" and "bn_up2" in names
    with torch.no_grad():
        ref = model.body[0].rdb1.conv1(model.conv_first(x)).double()
    np.testing.assert_allclose(stats[0].batch_mean, ref.mean(dim=(0, 2, 3)).numpy(), rtol=1e-6)
    np.testing.assert_allclose(
        stats[0].batch_var, ref.var(dim=(0, 2, 3), unbiased=False).numpy(), rtol=1e-6
    )
    np.testing.assert_allclose(stats[0].running_mean, model.body[0].rdb1.bn1.running_mean.numpy())
    for k, v in model.state_dict().items():
        assert torch.equal(v, before[k]), k
    s = stats[0]
    expect = np.mean(np.abs(s.batch_mean - s.running_mean) / np.sqrt(s.running_var + 1e-5))
    assert s.mean_shift == pytest.approx(expect)


def test_batch_stats_copy_leaves_the_model_unchanged() -> None:
    pairs = PairedImageSet(_images(), 4)
    bn_model = _generator(ab.BN_VARIANTS[1]).eval()
    _randomize_bn(bn_model)
    state = {k: v.clone() for k, v in bn_model.state_dict().items()}
    running = ab.psnr_list(bn_model, pairs)
    batch = ab.psnr_list(ab.batch_stats_copy(bn_model), pairs)
    assert running != batch
    assert not bn_model.training
    for k, v in bn_model.state_dict().items():
        assert torch.equal(v, state[k]), k
    plain = _generator(ab.BN_VARIANTS[0]).eval()
    assert ab.psnr_list(plain, pairs) == ab.psnr_list(ab.batch_stats_copy(plain), pairs)


def test_precise_bn_is_the_average_of_the_batch_statistics() -> None:
    torch.manual_seed(0)
    bn = nn.BatchNorm2d(3, momentum=0.1)
    batches = [torch.randn(4, 3, 5, 5) * (1 + i) + i for i in range(5)]
    bn.running_mean.fill_(7.0)
    out = ab.precise_bn(bn, iter(batches))
    assert out is bn and not bn.training and bn.momentum == 0.1
    # Oracle: the mean over batches of each batch's per-channel mean and unbiased variance.
    means = torch.stack([b.mean(dim=(0, 2, 3)) for b in batches]).mean(0)
    variances = torch.stack([b.var(dim=(0, 2, 3), unbiased=True) for b in batches]).mean(0)
    torch.testing.assert_close(bn.running_mean, means)
    torch.testing.assert_close(bn.running_var, variances)
    assert int(bn.num_batches_tracked) == len(batches)


def test_precise_bn_leaves_a_bn_free_model_alone() -> None:
    plain = _generator(ab.BN_VARIANTS[0]).train()
    state = {k: v.clone() for k, v in plain.state_dict().items()}
    ab.precise_bn(plain, iter([torch.rand(2, 3, 8, 8)]))
    assert not plain.training
    for k, v in plain.state_dict().items():
        assert torch.equal(v, state[k]), k


def test_patch_batches_are_study_sized_training_patches() -> None:
    params = {"scale": 4, "gt_size": 16, "batch_size": 3}
    got = list(ab.patch_batches(_images(), params, 2, seed=5))
    assert [tuple(b.shape) for b in got] == [(3, 3, 4, 4)] * 2
    assert not torch.equal(got[0], got[1])
    again = list(ab.patch_batches(_images(), params, 2, seed=5))
    assert all(torch.equal(a, b) for a, b in zip(got, again, strict=True))


def test_shift_study_is_gain_over_bicubic() -> None:
    model = _generator(ab.BN_VARIANTS[0]).eval()
    sets = {"o": PairedImageSet(_images(), 4)}
    got = ab.shift_study({"m": model}, sets)
    expect = np.mean(np.subtract(ab.psnr_list(model, sets["o"]), ab.psnr_list(None, sets["o"])))
    assert got["m"]["o"] == pytest.approx(expect)


def test_measure_cost_restores_state() -> None:
    model = _generator(ab.BN_VARIANTS[1]).eval()
    state = {k: v.clone() for k, v in model.state_dict().items()}
    cost = ab.measure_cost("bn", model, (1, 3, 8, 8), repeats=1)
    assert cost.params == sum(p.numel() for p in model.parameters())
    assert cost.eval_seconds > 0 and cost.train_seconds > 0
    assert cost.train_saved_bytes > cost.eval_peak_bytes > 0
    assert all(p.grad is None or not p.grad.any() for p in model.parameters() if p.ndim > 1)
    assert not model.training
    for k, v in model.state_dict().items():
        assert torch.equal(v, state[k]), k
    quick = ab.measure_cost("bn", model, (1, 3, 8, 8), repeats=1, memory=False)
    assert quick.eval_peak_bytes is None and quick.train_saved_bytes is None
    for k, v in model.state_dict().items():
        assert torch.equal(v, state[k]), k


def test_smooth() -> None:
    np.testing.assert_allclose(ab.smooth([1, 3, float("nan"), 5], 2), [1, 2, 3, 5])


def test_artifact_box_finds_the_damage() -> None:
    gt = np.full((64, 80, 3), 100, np.uint8)
    ref = gt.copy()
    test = gt.copy()
    test[40:56, 48:64] = 200  # damage in one 16x16 region
    assert ab.artifact_box(gt, ref, test, 16) == (40, 48, 16, 16)
    y, x, h, w = ab.artifact_box(gt, ref, test, 200)
    assert (h, w) == (64, 64) and 0 <= x <= 16


def _val_results() -> dict:
    """Per-image validation PSNRs of three variants x two seeds (made-up values)."""

    def runs(*per_seed: list[float]) -> list[dict]:
        return [{"seed": s, "val_images": v} for s, v in enumerate(per_seed)]

    return {
        "variants": ["plain", "bn", "bn_hr"],
        "val_images": {"names": ["x", "y"], "bicubic": [24.0, 18.0]},
        "runs": {
            "plain": runs([30.0, 20.0], [25.0, 20.0]),
            "bn": runs([29.0, 20.0], [26.0, 19.0]),
            # Seed 1 on "x" is 6 dB below plain seed 0 but only 1 dB below plain seed 1.
            "bn_hr": runs([30.0, 17.5], [24.0, 20.0]),
        },
    }


def test_worst_case_compares_each_bn_run_with_the_same_seed() -> None:
    worst = ab.worst_case(_val_results())
    assert worst == {"variant": "bn_hr", "seed": 0, "image": "y", "index": 1, "deficit": 2.5}


def test_worst_validation_images_and_colour_shift() -> None:
    results = _val_results()
    val = PairedImageSet(_images(), 4)
    results["val_images"]["names"] = val.names

    class Offset(nn.Module):
        """Nearest x4 upscaling plus a constant per channel (RGB, on [0, 1])."""

        def __init__(self, rgb: list[float]) -> None:
            super().__init__()
            self.rgb = torch.tensor(rgb).view(1, 3, 1, 1)

        def forward(self, x: torch.Tensor) -> torch.Tensor:
            return nn.functional.interpolate(x, scale_factor=4) + self.rgb

    models = {("plain", 0): Offset([0.0, 0.0, 0.0]), ("bn_hr", 0): Offset([0.0, 0.2, 0.0])}
    record, images = ab.worst_validation(results, val, models)
    pair = list(val)[1]
    h, w = pair.gt.shape[:2]
    assert {k: v.shape for k, v in images.items()} == {
        f"worst_{k}": (h // 2, w // 2, 3) for k in ("gt", "plain", "bn")
    }
    # The green cast: +0.2 * 255 on G (clipped where the image is bright), nothing on B, R.
    nearest = np.repeat(np.repeat(pair.lq, 4, 0), 4, 1).astype(np.float64)
    expect = np.clip(nearest[..., 1] + 51, 0, 255).mean() - pair.gt[..., 1].mean()
    b, g, r = record["color_shift"]["bn_hr"]
    assert g == pytest.approx(expect, abs=0.5)
    b0, g0, r0 = record["color_shift"]["plain"]
    assert (b, r) == pytest.approx((b0, r0), abs=1e-9) and g > g0 + 20
    assert record["image"] == "b" and record["seed"] == 0


def test_worst_line_states_the_margins_and_casts_in_rgb() -> None:
    results = _val_results()
    results["worst"] = {
        **ab.worst_case(results),
        "color_shift": {"plain": [0.0, 1.0, 2.0], "bn_hr": [-3.0, 12.5, 0.25]},
    }
    line = ab._worst_line(results)
    assert "'bn_hr', seed 0, on image y: 2.50 dB below 'plain'" in line
    assert "-0.50 dB against bicubic there (on the other validation images: +6.00 dB)" in line
    assert "'plain' (+2.0, +1.0, +0.0); 'bn_hr' (+0.2, +12.5, -3.0)" in line


def test_validation_line_keeps_every_run_and_names_those_below_bicubic() -> None:
    """No gate: every run is in the margins; a run below bicubic is named with its variant,
    seed, margin and its worst validation image."""
    results = _val_results()
    results["bicubic"] = {"val": 21.0}
    finals = {"plain": [25.0, 22.5], "bn": [24.5, 22.5], "bn_hr": [23.75, 20.5]}
    for name, values in finals.items():
        for run, value in zip(results["runs"][name], values, strict=True):
            run["val_final"] = value
    line = ab._validation_lines(results)["bicubic"]
    assert "(no run left out)" in line
    # bn_hr: margins +2.75 and -0.50 -> mean +1.12 over both seeds, the collapsed one kept
    assert "bn_hr: 1.12" in line and "range -0.50 to 2.75, 2 seeds" in line
    # bn_hr seed 1: 0.50 dB below bicubic overall; per image +0.00 on x, +2.00 on y.
    assert line.endswith("Below bicubic: 'bn_hr' seed 1 -0.50 dB, +0.00 dB on image x.")
    for name in finals:
        for run in results["runs"][name]:
            run["val_final"] = 21.5
    assert "Below bicubic" not in ab._validation_lines(results)["bicubic"]
