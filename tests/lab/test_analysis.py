"""The notebooks' trunk measurements against direct computation."""

from __future__ import annotations

import torch

from esrgan_lab.lab.analysis import trunk_activation_std, trunk_update_ratio
from esrgan_lab.model.rrdbnet import RRDBNet


def _model(seed: int = 0) -> RRDBNet:
    torch.manual_seed(seed)
    return RRDBNet(num_feat=8, num_block=3, num_grow_ch=4).eval()


def test_update_ratio_matches_a_manual_pass() -> None:
    model = _model()
    lq = torch.rand(1, 3, 12, 12)
    with torch.no_grad():
        x = model.conv_first(lq)
        expected = []
        for block in model.body:
            y = block(x)
            expected.append(float((y - x).std() / x.std()))
            x = y
    assert trunk_update_ratio(model, lq) == expected
    assert len(trunk_activation_std(model, lq)) == 4


def test_a_block_with_silent_dense_branches_scales_by_beta() -> None:
    """x + 0.2 * D(x) with D(x) = x: the block multiplies the trunk by 1.2 exactly."""
    model = _model()
    with torch.no_grad():
        for p in model.body[1].parameters():
            p.zero_()
    ratios = trunk_update_ratio(model, torch.rand(1, 3, 12, 12))
    assert abs(ratios[1] - 0.2) < 1e-6
    assert abs(ratios[0] - 0.2) > 1e-4 and abs(ratios[2] - 0.2) > 1e-4


def test_beta_scales_the_update() -> None:
    """x + beta * F(x): with the same weights, beta 1 adds five times what beta 0.2 adds
    in the first block (the outer residual and the three inner ones all scale by beta, so
    only the first dense block's own output is exactly linear in beta; compare loosely)."""
    lq = torch.rand(1, 3, 12, 12)
    small = _model()
    big = RRDBNet(num_feat=8, num_block=3, num_grow_ch=4, res_scale=1.0).eval()
    big.load_state_dict(small.state_dict())
    assert trunk_update_ratio(big, lq)[0] > 2 * trunk_update_ratio(small, lq)[0]


def test_texture_statistics_tells_strands_from_grain() -> None:
    import numpy as np

    from esrgan_lab.lab.analysis import texture_statistics

    rng = np.random.default_rng(0)
    image = np.full((64, 128, 3), 128, np.uint8)
    stripes = (128 + 100 * np.sin(np.arange(64) / 2.0)).astype(np.uint8)
    image[:, :64] = stripes[None, :, None]  # left half: vertical strands
    image[:, 64:] = rng.integers(0, 256, (64, 64, 3), dtype=np.uint8)  # right half: grain
    strands = texture_statistics(image, (8, 8, 48, 48))
    grain = texture_statistics(image, (8, 72, 48, 48))
    assert strands["coherence"] > 0.95 and grain["coherence"] < 0.4
    assert grain["detail"] > strands["detail"] > 0
    flat = texture_statistics(np.full((32, 32, 3), 77, np.uint8), (0, 0, 32, 32))
    assert flat == {"detail": 0.0, "coherence": 0.0}


def test_brightness_response_on_a_linear_feature_space() -> None:
    """With features ``x - 0.5`` the before-activation distance of a shift is ``|delta|``
    exactly, linear in delta; where every feature is positive the ReLU changes nothing."""
    import numpy as np
    import pytest

    from esrgan_lab.lab.loss_study import brightness_response

    def linear(x: torch.Tensor) -> dict[str, torch.Tensor]:
        return {"conv1_1": x - 0.5}

    torch.manual_seed(0)
    images = 0.62 + 0.1 * torch.rand(2, 3, 32, 32)  # features in (0.12, 0.22)
    out = brightness_response(linear, images, "conv1_1", [0.0, 0.02, 0.04])
    assert out["before"][0] == 0.0
    assert out["before"][2] == pytest.approx(2 * out["before"][1], rel=1e-5)
    np.testing.assert_allclose(out["after"], out["before"], rtol=1e-6)
    mixed = 0.4 + 0.2 * torch.rand(2, 3, 32, 32)  # half the features negative: ReLU zeroes them
    shifted = brightness_response(linear, mixed, "conv1_1", [-0.1])
    assert shifted["after"][0] < shifted["before"][0]
    with pytest.raises(ValueError, match="convB_K"):
        brightness_response(linear, images, "relu1_1", [0.1])
