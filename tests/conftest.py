"""Shared test fixtures: fixed seeds, few threads, the tiny model, the optional datasets.

Datasets and the NIQE model live outside the repository (``ESRGAN_LAB_DATA``,
``ESRGAN_LAB_NIQE_PARAMS``). Tests that need them skip where they are missing, unless
``ESRGAN_LAB_REQUIRE_DATA=1`` (set by ``make test`` when ``../shared`` exists, and so in
CI): then a missing dataset fails the test instead of quietly skipping it.
"""

from __future__ import annotations

import os
from collections.abc import Callable
from pathlib import Path

import numpy as np
import pytest
import torch

from esrgan_lab.model.rrdbnet import RRDBNet

from .helpers import make_tiny, missing

torch.set_num_threads(min(2, os.cpu_count() or 1))


@pytest.fixture(autouse=True)
def _seed() -> None:
    torch.manual_seed(0)
    np.random.seed(0)


@pytest.fixture(scope="session")
def tiny_model() -> Callable[..., RRDBNet]:
    """The factory :func:`tests.helpers.make_tiny`: ``tiny_model(scale=4, seed=0, **kw)``."""
    return make_tiny


@pytest.fixture
def data_root() -> Path:
    """The ESRGAN_LAB_DATA folder (see :func:`tests.helpers.missing`)."""
    from esrgan_lab.settings import data_dir

    root = data_dir()
    if root is None:
        missing("ESRGAN_LAB_DATA is not set (datasets beside the repo are missing)")
    return root


@pytest.fixture
def niqe_params() -> Path:
    """The NIQE pristine model file (see :func:`tests.helpers.missing`)."""
    from esrgan_lab.settings import niqe_params_path

    path = niqe_params_path()
    if path is None:
        missing("NIQE pristine model not available (ESRGAN_LAB_NIQE_PARAMS / ESRGAN_LAB_DATA)")
    return path
