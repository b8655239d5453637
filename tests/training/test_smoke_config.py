"""`esrgan-lab train --config configs/smoke.yaml` runs end to end, as CI promises."""

from __future__ import annotations

import subprocess
import sys
from pathlib import Path

import torch

from esrgan_lab.settings import REPO_ROOT
from esrgan_lab.weights.loading import load_model


def test_smoke_config_trains_both_stages_from_the_command_line(tmp_path: Path) -> None:
    out = tmp_path / "smoke"
    proc = subprocess.run(
        [
            sys.executable,
            "-m",
            "esrgan_lab",
            "train",
            "--config",
            str(REPO_ROOT / "configs" / "smoke.yaml"),
            "--out",
            str(out),
        ],
        capture_output=True,
        text=True,
        timeout=300,
        cwd=tmp_path,
    )
    assert proc.returncode == 0, proc.stderr[-2000:]
    model = load_model(str(out / "net_g.safetensors"))
    with torch.no_grad():
        sr = model(torch.rand(1, 3, 8, 8))
    assert sr.shape == (1, 3, 32, 32) and torch.isfinite(sr).all()
    assert (out / "psnr" / "log.csv").is_file() and (out / "gan" / "log.csv").is_file()
