"""RRDBNet against the official architecture: size, names, and a functional oracle."""

from __future__ import annotations

import pytest
import torch
import torch.nn.functional as F

from esrgan_lab.model.rrdbnet import RRDB, ResidualDenseBlock, RRDBNet, count_parameters


def _param_count_by_formula(nf: int, nb: int, gc: int, in_ch: int, out_ch: int, nup: int) -> int:
    def conv(cin: int, cout: int) -> int:
        return cin * cout * 9 + cout

    rdb = sum(conv(nf + i * gc, gc) for i in range(4)) + conv(nf + 4 * gc, nf)
    return (
        conv(in_ch, nf)
        + nb * 3 * rdb
        + conv(nf, nf)
        + nup * conv(nf, nf)
        + conv(nf, nf)
        + conv(nf, out_ch)
    )


def test_default_is_the_official_x4_size() -> None:
    model = RRDBNet()
    # 16,697,987 is the size of the published RRDB_ESRGAN_x4.pth
    assert count_parameters(model) == 16_697_987
    assert count_parameters(model) == _param_count_by_formula(64, 23, 32, 3, 3, 2)


@pytest.mark.parametrize(
    "nf,nb,gc,scale", [(16, 2, 8, 4), (8, 1, 4, 2), (8, 1, 4, 1), (8, 1, 4, 8)]
)
def test_parameter_formula_for_other_configs(nf: int, nb: int, gc: int, scale: int) -> None:
    unshuffle = {1: 4, 2: 2}.get(scale, 1)
    nup = 3 if scale == 8 else 2
    model = RRDBNet(scale=scale, num_feat=nf, num_block=nb, num_grow_ch=gc)
    expected = _param_count_by_formula(nf, nb, gc, 3 * unshuffle**2, 3, nup)
    assert count_parameters(model) == expected


def test_state_dict_keys_follow_basicsr() -> None:
    keys = list(RRDBNet(num_block=2).state_dict())
    assert keys[:2] == ["conv_first.weight", "conv_first.bias"]
    assert "body.1.rdb3.conv5.weight" in keys
    tail = ["conv_body", "conv_up1", "conv_up2", "conv_hr", "conv_last"]
    assert [k.rsplit(".", 1)[0] for k in keys[-10::2]] == tail
    assert len(keys) == 2 + 2 * 3 * 5 * 2 + 2 * 5


@pytest.mark.parametrize("scale,size", [(1, 8), (2, 8), (4, 6), (8, 5)])
def test_output_shapes(scale: int, size: int) -> None:
    model = RRDBNet(scale=scale, num_feat=8, num_block=1, num_grow_ch=4).eval()
    with torch.no_grad():
        out = model(torch.rand(2, 3, size, size + 4))
    assert out.shape == (2, 3, size * scale, (size + 4) * scale)


def _reference_forward(model: RRDBNet, x: torch.Tensor) -> torch.Tensor:
    """The official RRDBNet_arch.py forward, written with functional ops on the weights."""
    sd = model.state_dict()

    def conv(name: str, t: torch.Tensor) -> torch.Tensor:
        return F.conv2d(t, sd[f"{name}.weight"], sd[f"{name}.bias"], padding=1)

    def lrelu(t: torch.Tensor) -> torch.Tensor:
        return F.leaky_relu(t, 0.2)

    def rdb(prefix: str, t: torch.Tensor) -> torch.Tensor:
        feats = [t]
        for i in range(1, 5):
            feats.append(lrelu(conv(f"{prefix}.conv{i}", torch.cat(feats, 1))))
        return conv(f"{prefix}.conv5", torch.cat(feats, 1)) * 0.2 + t

    fea = conv("conv_first", x)
    trunk = fea
    for n in range(model.num_block):
        out = trunk
        for r in (1, 2, 3):
            out = rdb(f"body.{n}.rdb{r}", out)
        trunk = out * 0.2 + trunk
    fea = fea + conv("conv_body", trunk)
    fea = lrelu(conv("conv_up1", F.interpolate(fea, scale_factor=2, mode="nearest")))
    fea = lrelu(conv("conv_up2", F.interpolate(fea, scale_factor=2, mode="nearest")))
    return conv("conv_last", lrelu(conv("conv_hr", fea)))


def test_forward_matches_functional_reference() -> None:
    model = RRDBNet(num_feat=8, num_block=2, num_grow_ch=4).eval()
    # larger weights than the 0.1-scaled init so every path matters numerically
    with torch.no_grad():
        for p in model.parameters():
            p.normal_(0, 0.1)
    x = torch.rand(1, 3, 7, 9)
    with torch.no_grad():
        assert torch.allclose(model(x), _reference_forward(model, x), atol=1e-5)


def test_residual_scaling_is_0_2() -> None:
    block = ResidualDenseBlock(num_feat=4, num_grow_ch=2)
    with torch.no_grad():
        for p in block.parameters():
            p.zero_()
        block.conv5.bias.fill_(1.0)  # branch output is exactly 1 everywhere
    x = torch.rand(1, 4, 5, 5)
    assert torch.allclose(block(x), x + 0.2)
    rrdb = RRDB(num_feat=4, num_grow_ch=2)
    with torch.no_grad():
        for p in rrdb.parameters():
            p.zero_()
    # with all-zero convs every RDB is the identity, and so is the RRDB: x*0.2 + x != x
    assert torch.allclose(rrdb(x), x * 0.2 + x)


def test_dense_convs_start_at_a_tenth_of_msra() -> None:
    torch.manual_seed(0)
    block = ResidualDenseBlock(num_feat=64, num_grow_ch=32)
    for conv in (block.conv1, block.conv5):
        fan_in = conv.weight[0].numel()
        expected = 0.1 * (2.0 / fan_in) ** 0.5
        assert conv.weight.std().item() == pytest.approx(expected, rel=0.05)
        assert torch.count_nonzero(conv.bias) == 0


def test_batchnorm_switch() -> None:
    plain = RRDBNet(num_feat=8, num_block=1, num_grow_ch=4)
    trunk = RRDBNet(num_feat=8, num_block=1, num_grow_ch=4, norm="batch")
    hr = RRDBNet(num_feat=8, num_block=1, num_grow_ch=4, norm="batch_hr")

    def n_bn(m: torch.nn.Module) -> int:
        return sum(isinstance(x, torch.nn.BatchNorm2d) for x in m.modules())

    assert n_bn(plain) == 0
    assert n_bn(trunk) == 3 * 5 + 1
    assert n_bn(hr) == 3 * 5 + 1 + 3
    assert set(plain.state_dict()) < set(trunk.state_dict())
    with pytest.raises(ValueError, match="norm"):
        RRDBNet(norm="layer")  # type: ignore[arg-type]
    with pytest.raises(ValueError, match="scale"):
        RRDBNet(scale=3)
