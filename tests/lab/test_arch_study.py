"""The architecture study: the variants, the deep-trunk variants, growth at init."""

from __future__ import annotations

import torch

from esrgan_lab.lab import arch_study as arch
from esrgan_lab.lab.bn_study import build_generator
from esrgan_lab.lab.runs import make_config
from esrgan_lab.model.srresnet import SRResNetTrunk
from tests.helpers import TINY


def _generator(variant, seed: int = 0):
    return build_generator(variant, make_config({"model": dict(TINY), "seed": seed}))


def test_init_variants_scale_the_dense_convs() -> None:
    big = _generator(arch.INIT_VARIANTS[0], seed=1)
    small = _generator(arch.INIT_VARIANTS[1], seed=1)
    w_big = big.body[0].rdb1.conv1.weight
    w_small = small.body[0].rdb1.conv1.weight
    torch.testing.assert_close(w_small, 0.1 * w_big)
    assert big.body[0].res_scale == 1.0 and arch.INIT_VARIANTS[2].res_scale == 0.2


def test_arch_variants_build_matched_trunks_in_the_trainer(tmp_path) -> None:
    from esrgan_lab.training.trainer import Trainer

    variants = arch.arch_variants(32, 16, 2)
    res = variants["residual blocks (SRResNet)"]
    cfg = make_config({"model": {"num_feat": 32, "num_block": 2, "num_grow_ch": 16}}, **res)
    model = Trainer(cfg, tmp_path).build_generator()
    assert isinstance(model, SRResNetTrunk) and model.num_block == res["model.num_block"]
    assert model.body[0].res_scale == 1.0


def test_growth_at_init_orders_the_remedies() -> None:
    growth = arch.growth_at_init(num_feat=16, num_grow_ch=8, num_block=4)
    last = {name: stds[-1] / stds[0] for name, stds in growth.items()}
    plain, esrgan = last["MSRA init, beta 1"], last["init x0.1, beta 0.2 (ESRGAN)"]
    assert len(growth["MSRA init, beta 1"]) == 5  # after conv_first and each block
    assert plain > 10 * esrgan  # plain MSRA init grows the trunk's activations fastest
