"""The residual-block trunk of the architecture study: shapes, matching, save and load."""

from __future__ import annotations

import torch

from esrgan_lab.model.complexity import count_flops
from esrgan_lab.model.rrdbnet import RRDBNet, count_parameters
from esrgan_lab.model.srresnet import ResidualBlockNoBN, SRResNetTrunk, matched_residual_blocks
from esrgan_lab.weights.checkpoints import save_checkpoint
from esrgan_lab.weights.loading import load_model


def test_block_is_conv_relu_conv_plus_identity() -> None:
    block = ResidualBlockNoBN(8, res_scale=0.5)
    x = torch.randn(2, 8, 5, 6)
    with torch.no_grad():
        expect = x + 0.5 * block.conv2(torch.relu(block.conv1(x)))
        torch.testing.assert_close(block(x), expect)
    assert count_parameters(block) == 2 * (9 * 8 * 8 + 8)


def test_matched_trunk_has_the_rrdb_trunks_parameters_and_flops() -> None:
    n = matched_residual_blocks(32, 16, 2)
    rrdb = RRDBNet(num_feat=32, num_block=2, num_grow_ch=16)
    res = SRResNetTrunk(num_feat=32, num_block=n)
    trunk = lambda m: sum(p.numel() for p in m.body.parameters())  # noqa: E731
    # one residual block more or less would be further from the RRDB trunk
    per_block = count_parameters(ResidualBlockNoBN(32))
    assert abs(trunk(res) - trunk(rrdb)) <= per_block / 2
    f_rrdb = count_flops(rrdb, (1, 3, 16, 16)).totals["flop_counter"]
    f_res = count_flops(res, (1, 3, 16, 16)).totals["flop_counter"]
    assert abs(f_res / f_rrdb - 1) < 0.03
    # same head and upsampler: only the trunk differs
    same = [k for k in rrdb.state_dict() if not k.startswith("body.")]
    assert all(rrdb.state_dict()[k].shape == res.state_dict()[k].shape for k in same)
    assert res(torch.rand(1, 3, 6, 7)).shape == (1, 3, 24, 28)


def test_saved_with_its_config_and_loaded_back(tmp_path) -> None:
    model = SRResNetTrunk(num_feat=8, num_block=3, res_scale=1.0).eval()
    config = {"arch": "srresnet", "num_feat": 8, "num_block": 3, "scale": 4, "res_scale": 1.0}
    path = save_checkpoint(model, tmp_path / "r.safetensors", config=config)
    back = load_model(path)
    assert isinstance(back, SRResNetTrunk) and back.num_block == 3
    x = torch.rand(1, 3, 8, 8)
    with torch.no_grad():
        torch.testing.assert_close(back(x), model(x))
