"""Shared test fixtures: fixed seeds, few threads, paths to the optional datasets."""

from __future__ import annotations

import os
from pathlib import Path

import numpy as np
import pytest
import torch

torch.set_num_threads(min(2, os.cpu_count() or 1))


@pytest.fixture(autouse=True)
def _seed() -> None:
    torch.manual_seed(0)
    np.random.seed(0)


@pytest.fixture
def data_root() -> Path:
    """The ESRGAN_LAB_DATA folder; skips the test when it is not available."""
    from esrgan_lab.settings import data_dir

    root = data_dir()
    if root is None:
        pytest.skip("ESRGAN_LAB_DATA is not set (datasets beside the repo are missing)")
    return root
