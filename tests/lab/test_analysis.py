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
