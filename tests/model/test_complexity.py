"""FLOP counting conventions, including the vendor's 653.675 'GFLOPs'."""

from __future__ import annotations

import pytest
import torch
from torch import nn

from esrgan_lab.cli import main
from esrgan_lab.model.complexity import complexity_report, count_flops, parameter_table
from esrgan_lab.model.rrdbnet import RRDBNet
from esrgan_lab.model.spec import ModelSpec


def test_single_conv_by_hand() -> None:
    model = nn.Sequential(nn.Conv2d(3, 5, 3, padding=1), nn.LeakyReLU(0.2))
    rep = count_flops(model, (1, 3, 4, 6))
    macs = 4 * 6 * 5 * 3 * 9
    assert rep.totals["conv_macs"] == macs
    assert rep.totals["flop_counter"] == 2 * macs  # torch's own counter agrees
    assert rep.totals["thop"] == macs + 4 * 6 * 5 + 4 * 6 * 5  # + bias + LeakyReLU
    assert rep.totals["vendor"] == pytest.approx(rep.totals["thop"] / 9e8 * 2)


def test_torch_counter_equals_twice_conv_macs_on_rrdbnet() -> None:
    model = RRDBNet(num_feat=8, num_block=2, num_grow_ch=4)
    rep = count_flops(model, (1, 3, 10, 12))
    assert rep.totals["flop_counter"] == 2 * rep.totals["conv_macs"]
    for conv in ("conv_macs", "thop"):
        assert sum(rep.per_component[conv].values()) == pytest.approx(rep.totals[conv])


def test_official_x4_at_128_reproduces_both_published_figures() -> None:
    rep = complexity_report(ModelSpec(num_block=23, scale=4), size=128)
    assert rep["parameters"] == 16_697_987
    # torch.utils.flop_counter: 587.43 GFLOPs (2 x conv MACs)
    assert rep["flops"]["flop_counter"] / 1e9 == pytest.approx(587.43, abs=0.005)
    # thop "MACs": 294.15 G; the vendor printed macs / 9e8 * 2 = 653.675
    assert rep["flops"]["thop"] / 1e9 == pytest.approx(294.15, abs=0.005)
    assert rep["flops"]["vendor"] == pytest.approx(653.675, abs=0.0005)


def test_flops_scale_with_pixels() -> None:
    small = complexity_report(ModelSpec(num_block=1, num_feat=8, num_grow_ch=4), size=16)
    large = complexity_report(ModelSpec(num_block=1, num_feat=8, num_grow_ch=4), size=32)
    assert large["flops"]["conv_macs"] == 4 * small["flops"]["conv_macs"]


def test_parameter_table_sums_to_total() -> None:
    table = parameter_table(RRDBNet())
    total = table.pop("total")
    assert sum(table.values()) == total == 16_697_987
    assert table["body (RRDB trunk)"] == 23 * 3 * (
        sum((64 + 32 * i) * 32 * 9 + 32 for i in range(4)) + (64 + 128) * 64 * 9 + 64
    )


def test_meta_device_count_matches_real_tensors() -> None:
    real = count_flops(RRDBNet(num_feat=8, num_block=1, num_grow_ch=4), (1, 3, 8, 8))
    with torch.device("meta"):
        meta_model = RRDBNet(num_feat=8, num_block=1, num_grow_ch=4)
    meta = count_flops(meta_model, (1, 3, 8, 8))
    assert meta.totals == real.totals


def test_info_cli_prints_parameters_and_both_flop_figures(capsys) -> None:
    assert main(["info", "--num-block", "23", "--scale", "4", "--size", "128"]) == 0
    out = capsys.readouterr().out
    assert "16,697,987" in out
    assert "587.427" in out and "653.675" in out and "294.154" in out


def test_info_cli_bad_size_is_one_line(capsys) -> None:
    assert main(["info", "--size", "0"]) == 1
    err = capsys.readouterr().err.strip().splitlines()
    assert len(err) == 1 and "--size" in err[0]
