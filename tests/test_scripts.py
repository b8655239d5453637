"""The scripts in scripts/: dry runs that need no GPU."""

from __future__ import annotations

import json
import subprocess
import sys
from pathlib import Path

import pytest
import torch

from tests.helpers import make_tiny

REPO = Path(__file__).resolve().parents[1]


def test_gpu_script_dry_run(tmp_path):
    env = {"OUT": str(tmp_path), "PATH": "/usr/bin:/bin"}
    proc = subprocess.run(
        [sys.executable, str(REPO / "scripts" / "gpu_precision.py"), "--dry-run"],
        capture_output=True,
        text=True,
        timeout=120,
        env=env,
        cwd=REPO,
    )
    assert proc.returncode == 0, proc.stderr[-2000:]
    result = json.loads((tmp_path / "gpu_precision.json").read_text())
    assert {(p["mode"], p["batch"]) for p in result["points"]} == {
        (m, b) for m in ("fp32", "bf16") for b in (1, 2)
    }
    assert result["skipped"].keys() == {"tf32", "fp16"}
    # flop_counter convention: the dry-run model's FLOPs, recomputed here independently
    from esrgan_lab.model.complexity import count_flops

    torch.manual_seed(0)
    model = make_tiny()
    flops = count_flops(model, (1, 3, 16, 16)).totals["flop_counter"]
    assert result["gflop_per_image"] == pytest.approx(flops / 1e9)
    assert result["output_difference_vs_fp32"]["fp32"]["raw_max_abs_diff"] == 0
