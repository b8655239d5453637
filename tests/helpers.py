"""Test helpers shared by every test module: the tiny model and the missing-data rule."""

from __future__ import annotations

import importlib.util
import os
import sys
from pathlib import Path
from types import ModuleType

import pytest
import torch

from esrgan_lab.model.rrdbnet import RRDBNet

#: The architecture of the tiny test model: every code path of RRDBNet, 10 k parameters.
TINY = {"num_feat": 8, "num_block": 1, "num_grow_ch": 4}


def make_tiny(scale: int = 4, seed: int = 0, *, spread: bool = False, **kw) -> RRDBNet:
    """The tiny RRDBNet (:data:`TINY`, overridable by ``kw``) in eval mode, initialised
    from ``seed`` without touching the global RNG.

    ``spread``: larger ``conv_last`` weights than the 0.1-scaled init and a 0.5 bias, so
    the outputs span a real range and fp16 / int8 rounding shows above fp32 noise.
    """
    with torch.random.fork_rng(devices=[]):
        torch.manual_seed(seed)
        model = RRDBNet(scale=scale, **{**TINY, **kw}).eval()
    if spread:
        with torch.no_grad():
            model.conv_last.weight.mul_(4.0)
            model.conv_last.bias.fill_(0.5)
    return model


def missing(reason: str) -> None:
    """Skip the calling test for want of data, or fail it under ESRGAN_LAB_REQUIRE_DATA=1."""
    if os.environ.get("ESRGAN_LAB_REQUIRE_DATA") == "1":
        pytest.fail(f"required data missing: {reason}")
    pytest.skip(reason)


def load_tool(name: str) -> ModuleType:
    """The script ``tools/<name>.py`` imported as a module (the tools are not a package).

    It is registered in ``sys.modules`` first, as dataclasses defined in it look their
    module up there.
    """
    path = Path(__file__).resolve().parents[1] / "tools" / f"{name}.py"
    spec = importlib.util.spec_from_file_location(name, path)
    module = importlib.util.module_from_spec(spec)
    sys.modules[spec.name] = module
    spec.loader.exec_module(module)
    return module
