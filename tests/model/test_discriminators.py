"""Discriminators: shapes, BasicSR / Real-ESRGAN parameter names, gradients, spectral norm."""

from __future__ import annotations

import pytest
import torch

from esrgan_lab.model.discriminators import (
    UNetDiscriminatorSN,
    VGGStyleDiscriminator,
    build_discriminator,
)


@pytest.fixture(autouse=True)
def _one_thread():
    """Tiny tensors: one thread is faster, and much faster on a busy machine."""
    threads = torch.get_num_threads()
    torch.set_num_threads(1)
    yield
    torch.set_num_threads(threads)


def _all_params_get_gradient(model: torch.nn.Module, x: torch.Tensor) -> None:
    model.train()
    model(x).sum().backward()
    for name, p in model.named_parameters():
        assert p.grad is not None, name
        assert p.grad.abs().sum() > 0, name


def test_vgg_discriminator_shapes_and_names() -> None:
    d = VGGStyleDiscriminator(3, num_feat=8, input_size=128)
    out = d(torch.rand(2, 3, 128, 128))
    assert out.shape == (2, 1)
    names = {
        k
        for k in d.state_dict()
        if not k.endswith(("running_mean", "running_var", "num_batches_tracked"))
    }
    expect = {"conv0_0.weight", "conv0_0.bias", "conv0_1.weight", "bn0_1.weight", "bn0_1.bias"}
    for k in range(1, 5):
        for j in (0, 1):
            expect |= {f"conv{k}_{j}.weight", f"bn{k}_{j}.weight", f"bn{k}_{j}.bias"}
    expect |= {"linear1.weight", "linear1.bias", "linear2.weight", "linear2.bias"}
    assert names == expect
    # after five stride-2 convs a 128 px patch is 4x4 with 8 * num_feat channels
    assert d.linear1.weight.shape == (100, 8 * 8 * 4 * 4)
    assert d.conv4_1.weight.shape == (64, 64, 4, 4)
    with pytest.raises(ValueError, match="128x128"):
        d(torch.rand(1, 3, 96, 96))


def test_vgg_discriminator_256_adds_a_stage() -> None:
    d = VGGStyleDiscriminator(3, num_feat=4, input_size=256)
    assert hasattr(d, "conv5_1")
    assert d(torch.rand(2, 3, 256, 256)).shape == (2, 1)


def test_vgg_discriminator_gradients_reach_every_parameter() -> None:
    torch.manual_seed(0)
    _all_params_get_gradient(VGGStyleDiscriminator(3, num_feat=8), torch.rand(2, 3, 128, 128))


def test_unet_discriminator_shapes_and_spectral_norm_keys() -> None:
    d = UNetDiscriminatorSN(3, num_feat=8)
    assert d(torch.rand(2, 3, 64, 64)).shape == (2, 1, 64, 64)
    assert d(torch.rand(1, 3, 48, 80)).shape == (1, 1, 48, 80)
    keys = set(d.state_dict())
    for k in range(1, 9):
        assert {f"conv{k}.weight_orig", f"conv{k}.weight_u", f"conv{k}.weight_v"} <= keys
    assert {"conv0.weight", "conv0.bias", "conv9.weight", "conv9.bias"} <= keys
    assert "conv0.weight_orig" not in keys
    with pytest.raises(ValueError, match="divisible by 8"):
        d(torch.rand(1, 3, 30, 32))


def test_unet_discriminator_gradients_reach_every_parameter() -> None:
    torch.manual_seed(1)
    for skip in (True, False):
        _all_params_get_gradient(UNetDiscriminatorSN(3, 8, skip), torch.rand(2, 3, 32, 32))


def test_spectral_norm_makes_the_largest_singular_value_one() -> None:
    torch.manual_seed(2)
    d = UNetDiscriminatorSN(3, num_feat=8).train()
    with torch.no_grad():
        for _ in range(50):  # one power iteration per forward pass
            d(torch.rand(1, 3, 16, 16))
        w = d.conv2.weight  # the normalised weight used by the last forward
        sigma = torch.linalg.matrix_norm(w.reshape(w.shape[0], -1), ord=2)
        raw = torch.linalg.matrix_norm(d.conv2.weight_orig.reshape(w.shape[0], -1), ord=2)
    assert sigma.item() == pytest.approx(1.0, abs=1e-2)
    assert raw.item() != pytest.approx(1.0, abs=0.05)


def test_build_discriminator() -> None:
    assert isinstance(build_discriminator("vgg", num_feat=4), VGGStyleDiscriminator)
    assert isinstance(build_discriminator("unet", num_feat=4), UNetDiscriminatorSN)
    with pytest.raises(ValueError):
        build_discriminator("patchgan")
