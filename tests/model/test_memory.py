"""Activation memory: the closed forms against the measurements, and the measurements
against hand counts."""

from __future__ import annotations

import pytest
import torch
from torch import nn

import esrgan_lab as lab
from esrgan_lab.model import memory
from tests.helpers import make_tiny


@pytest.mark.parametrize(
    "config",
    [
        dict(num_block=1, num_feat=8, num_grow_ch=4, scale=4),
        dict(num_block=2, num_feat=16, num_grow_ch=8, scale=2),
        dict(num_block=1, num_feat=8, num_grow_ch=8, scale=1),
        dict(num_block=1, num_feat=8, num_grow_ch=4, scale=8),
    ],
)
def test_saved_activation_closed_form_matches_hook_count(config):
    height, width = 16, 24
    with torch.device("meta"):
        model = lab.RRDBNet(**config)
    counted = memory.saved_activation_bytes(model, (1, 3, height, width))
    spec = lab.ModelSpec(**config)
    assert counted == 4 * memory.saved_activation_elements(spec, height, width)


def test_memory_estimate_against_real_models():
    config = dict(num_block=2, num_feat=16, num_grow_ch=8, scale=4)
    est = memory.memory_estimate(lab.ModelSpec(**config), size=(16, 24))
    model = lab.RRDBNet(**config)
    assert est.weights == 4 * lab.count_parameters(model)
    assert est.inference == lab.estimate_memory(model, 16, 24)
    # hook count on a real CPU forward agrees with the meta-device closed form
    assert est.training == memory.saved_activation_bytes(model, (1, 3, 16, 24))
    # the default network: the published x4 model's 16,697,987 fp32 parameters
    assert memory.memory_estimate().weights == 4 * 16_697_987


@pytest.mark.parametrize(
    ("n", "text"),
    [(0, "0 B"), (999, "999 B"), (1536, "1.5 KiB"), (5 * 2**20, "5 MiB"), (3 * 2**40, "3 TiB")],
)
def test_format_bytes(n, text):
    assert memory.format_bytes(n) == text


def test_saved_bytes_of_one_conv_and_of_batchnorm() -> None:
    conv = nn.Conv2d(3, 4, 3, padding=1)
    x = torch.rand(2, 3, 8, 8)
    # A conv saves its input (and weight, a parameter - not counted).
    assert memory.saved_activation_bytes(conv, x) == x.numel() * 4
    plain = make_tiny()
    bn = make_tiny(norm="batch_hr")
    assert memory.saved_activation_bytes(bn, x) > memory.saved_activation_bytes(plain, x)


class _TwoOps(nn.Module):
    def forward(self, x: torch.Tensor) -> torch.Tensor:
        y = x * 2  # alive while z is made: peak = two tensors
        z = y + 1
        del y
        return z.sum()


def test_peak_activation_bytes_counts_live_tensors() -> None:
    x = torch.rand(4, 1000)
    assert memory.peak_activation_bytes(_TwoOps(), x) == 2 * x.numel() * 4


def test_process_memory_follows_an_allocation() -> None:
    """A touched 64 MiB buffer raises VmRSS by about its size; VmHWM stays above VmRSS."""
    import mmap

    size = 64 * 2**20
    # A fresh anonymous mapping, not np.ones: malloc may hand back pages that an earlier
    # test freed but that are still resident, and then VmRSS does not move (seen in CI).
    buffer = mmap.mmap(-1, size)
    try:
        rss_before = memory.process_memory("VmRSS")
        for offset in range(0, size, mmap.PAGESIZE):  # touch every page, allocate nothing else
            buffer[offset] = 1
        rss_after = memory.process_memory("VmRSS")
        assert 0.9 * size <= rss_after - rss_before <= 1.5 * size
        assert memory.process_memory("VmHWM") >= rss_after
    finally:
        buffer.close()
    with pytest.raises(ValueError, match="VmNope"):
        memory.process_memory("VmNope")
