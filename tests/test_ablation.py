"""BN-removal ablation helpers: matched models, same batches, BN folding, stats, memory."""

from __future__ import annotations

import numpy as np
import pytest
import torch
from torch import nn

from esrgan_lab.data.datasets import NamedImage, PairedImageSet, PairedPatchDataset, StreamSampler
from esrgan_lab.lab import bn_study as ab

TINY = dict(num_feat=8, num_block=1, num_grow_ch=4)


def _images() -> list[NamedImage]:
    rng = np.random.default_rng(0)
    base = rng.integers(0, 256, (6, 6, 3)).astype(np.float64)
    # Smooth-ish 48x48 images (upsampled noise) so that learning is possible.
    img = np.kron(base, np.ones((8, 8, 1)))
    return [
        NamedImage("a", img.astype(np.uint8)),
        NamedImage("b", img[::-1].astype(np.uint8).copy()),
    ]


def _randomize_bn(model: nn.Module, seed: int = 0) -> None:
    gen = torch.Generator().manual_seed(seed)
    for m in model.modules():
        if isinstance(m, nn.BatchNorm2d):
            c = m.num_features
            m.running_mean.copy_(torch.randn(c, generator=gen) * 0.3)
            m.running_var.copy_(torch.rand(c, generator=gen) + 0.5)
            m.weight.data.copy_(torch.rand(c, generator=gen) + 0.5)
            m.bias.data.copy_(torch.randn(c, generator=gen) * 0.1)


def test_variants_share_conv_weights() -> None:
    plain = ab.build_generator(ab.BN_VARIANTS[0], **TINY, seed=3).state_dict()
    for v in ab.BN_VARIANTS[1:]:
        state = ab.build_generator(v, **TINY, seed=3).state_dict()
        assert set(plain) < set(state)
        extra = set(state) - set(plain)
        assert extra and all(".bn" in k or k.startswith("bn_") for k in extra)
        for k, t in plain.items():
            assert torch.equal(t, state[k]), k
    hr = ab.build_generator(ab.BN_VARIANTS[2], **TINY).state_dict()
    assert "bn_up1.running_mean" in hr and "bn_hr.weight" in hr
    lr = ab.build_generator(ab.BN_VARIANTS[1], **TINY).state_dict()
    assert "bn_up1.running_mean" not in lr and "bn_body.running_mean" in lr


def test_init_variants_scale_the_dense_convs() -> None:
    big = ab.build_generator(ab.INIT_VARIANTS[0], **TINY, seed=1)
    small = ab.build_generator(ab.INIT_VARIANTS[1], **TINY, seed=1)
    w_big = big.body[0].rdb1.conv1.weight
    w_small = small.body[0].rdb1.conv1.weight
    torch.testing.assert_close(w_small, 0.1 * w_big)
    assert big.body[0].res_scale == 1.0 and ab.INIT_VARIANTS[2].res_scale == 0.2


def test_batch_at_follows_stream_sampler() -> None:
    ds = PairedPatchDataset(_images(), 4, 16, seed=5)
    sampler = iter(StreamSampler(3))
    for it in range(3):
        lq, gt = ab.batch_at(ds, it, 3)
        positions = [next(sampler) for _ in range(3)]
        torch.testing.assert_close(gt, torch.stack([ds[p]["gt"] for p in positions]))
        torch.testing.assert_close(lq, torch.stack([ds[p]["lq"] for p in positions]))
        assert lq.shape == (3, 3, 4, 4) and gt.shape == (3, 3, 16, 16)


def test_training_is_reproducible_and_logs() -> None:
    ds = PairedPatchDataset(_images(), 4, 16, seed=0)
    val = PairedImageSet(_images()[:1], 4)
    runs = [
        ab.train_variants(
            ab.BN_VARIANTS[:2],
            ds,
            **TINY,
            iterations=4,
            batch_size=2,
            learning_rate=1e-3,
            val_pairs=val,
            val_every=2,
        )
        for _ in range(2)
    ]
    for name in runs[0]:
        a, b = runs[0][name], runs[1][name]
        assert a.history.val_iters == [0, 2, 4]
        assert len(a.history.loss) == 4 and a.history.loss == b.history.loss
        for k, t in a.model.state_dict().items():
            assert torch.equal(t, b.model.state_dict()[k]), k
    # The BN model really trained its running statistics.
    bn = runs[0]["BN in LR trunk (SRGAN)"].model.body[0].rdb1.bn1
    assert not torch.equal(bn.running_mean, torch.zeros_like(bn.running_mean))


def test_divergence_stops_training() -> None:
    ds = PairedPatchDataset(_images(), 4, 16, seed=0)
    model = ab.build_generator(ab.BN_VARIANTS[0], **TINY)
    with torch.no_grad():
        model.conv_last.bias.fill_(float("nan"))
    hist = ab.train_l1(model, ds, iterations=5, batch_size=2)
    assert hist.diverged and len(hist.loss) == 1 and np.isnan(hist.loss[0])


@pytest.mark.parametrize("norm_variant", [1, 2])
def test_fold_batchnorm_matches_eval_mode(norm_variant: int) -> None:
    model = ab.build_generator(ab.BN_VARIANTS[norm_variant], **TINY).eval()
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
    assert max(gt.max() for _, gt, _ in pairs) <= 128


def test_bn_input_stats_against_manual_forward() -> None:
    model = ab.build_generator(ab.BN_VARIANTS[2], **TINY).eval()
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


def test_super_resolve_batch_stats_leave_model_unchanged() -> None:
    lq = np.random.default_rng(1).integers(0, 256, (6, 6, 3)).astype(np.uint8)
    bn_model = ab.build_generator(ab.BN_VARIANTS[1], **TINY).eval()
    _randomize_bn(bn_model)
    state = {k: v.clone() for k, v in bn_model.state_dict().items()}
    run_stats = ab.super_resolve(bn_model, lq)
    batch_stats = ab.super_resolve(bn_model, lq, use_batch_stats=True)
    assert run_stats.shape == (24, 24, 3) and run_stats.dtype == np.uint8
    assert not np.array_equal(run_stats, batch_stats)
    assert not bn_model.training
    for k, v in bn_model.state_dict().items():
        assert torch.equal(v, state[k]), k
    plain = ab.build_generator(ab.BN_VARIANTS[0], **TINY)
    np.testing.assert_array_equal(
        ab.super_resolve(plain, lq), ab.super_resolve(plain, lq, use_batch_stats=True)
    )


def test_shift_study_is_gain_over_bicubic() -> None:
    model = ab.build_generator(ab.BN_VARIANTS[0], **TINY)
    sets = {"o": PairedImageSet(_images(), 4)}
    got = ab.shift_study({"m": model}, sets)
    expect = np.mean(np.subtract(ab.psnr_list(model, sets["o"]), ab.psnr_list(None, sets["o"])))
    assert got["m"]["o"] == pytest.approx(expect)


def test_saved_tensor_bytes_single_conv() -> None:
    conv = nn.Conv2d(3, 4, 3, padding=1)
    x = torch.rand(2, 3, 8, 8)
    # A conv saves its input (and weight, a parameter - not counted).
    assert ab.saved_tensor_bytes(conv, x) == x.numel() * 4
    plain = ab.build_generator(ab.BN_VARIANTS[0], **TINY)
    bn = ab.build_generator(ab.BN_VARIANTS[2], **TINY)
    assert ab.saved_tensor_bytes(bn, x) > ab.saved_tensor_bytes(plain, x)


class _TwoOps(nn.Module):
    def forward(self, x: torch.Tensor) -> torch.Tensor:
        y = x * 2  # alive while z is made: peak = two tensors
        z = y + 1
        del y
        return z.sum()


def test_peak_activation_bytes_counts_live_tensors() -> None:
    x = torch.rand(4, 1000)
    assert ab.peak_activation_bytes(_TwoOps(), x) == 2 * x.numel() * 4


def test_measure_cost_restores_state() -> None:
    model = ab.build_generator(ab.BN_VARIANTS[1], **TINY).eval()
    state = {k: v.clone() for k, v in model.state_dict().items()}
    cost = ab.measure_cost("bn", model, (1, 3, 8, 8), repeats=1)
    assert cost.params == sum(p.numel() for p in model.parameters())
    assert cost.eval_seconds > 0 and cost.train_seconds > 0
    assert cost.train_saved_bytes > cost.eval_peak_bytes > 0
    assert not model.training
    for k, v in model.state_dict().items():
        assert torch.equal(v, state[k]), k


def test_default_sources_fallback(monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.delenv("ESRGAN_LAB_DATA", raising=False)
    src = ab.default_sources()
    assert src.fallback and src.train == "sample:train"
    other = ab.load_images(src.other)
    assert [o.name for o in other] == list(ab.SKIMAGE_OTHER)
    assert all(o.image.ndim == 3 and o.image.shape[2] == 3 for o in other)


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
