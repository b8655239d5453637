"""Distributed training: two CPU ranks under torchrun (gloo) stay in sync; rank 0 writes."""

from __future__ import annotations

import json
import os
import subprocess
import sys
from pathlib import Path

import pytest
import torch
import yaml
from safetensors.torch import load_file

REPO = Path(__file__).resolve().parents[2]


@pytest.mark.slow
def test_torchrun_two_ranks_agree(tmp_path: Path) -> None:
    import cv2

    from esrgan_lab.data.sources import sample_hr_images

    val = tmp_path / "val"
    val.mkdir()
    cv2.imwrite(str(val / "crop.png"), sample_hr_images("val")[0].image[:96, :96])
    cfg = {
        "name": "ddp",
        "stages": ["psnr", "gan"],
        "model": {"num_feat": 8, "num_block": 1, "num_grow_ch": 4},
        "data": {
            "train": ["sample:train[:2]"],
            "val": [str(val)],
            "gt_size": 32,
            "batch_size": 2,
            "num_workers": 0,
        },
        "psnr": {"total_iter": 3},
        "gan": {
            "total_iter": 3,
            "ema_decay": 0.9,
            "perceptual": {"layers": {"conv2_2": 1.0}, "backbone": "random"},
            "discriminator": {"type": "unet", "num_feat": 4},
        },
        "runtime": {"device": "cpu"},
        "logging": {"log_every": 1, "val_every": 3, "progress": False, "dump_rank_weights": True},
    }
    path = tmp_path / "ddp.yaml"
    path.write_text(yaml.safe_dump(cfg))
    out = tmp_path / "out"
    env = {**os.environ, "OMP_NUM_THREADS": "1", "PYTHONPATH": str(REPO)}
    cmd = [
        sys.executable, "-m", "torch.distributed.run", "--standalone", "--nproc_per_node=2",
        "-m", "esrgan_lab", "train", "--config", str(path), "--out", str(out),
    ]  # fmt: skip
    proc = subprocess.run(cmd, cwd=tmp_path, env=env, capture_output=True, text=True, timeout=120)
    assert proc.returncode == 0, proc.stdout[-2000:] + proc.stderr[-4000:]
    # rank 0 wrote the outputs
    assert (out / "net_g.safetensors").is_file() and (out / "net_g_ema.safetensors").is_file()
    metrics = json.loads((out / "metrics.json").read_text())
    assert metrics["psnr"]["world_size"] == 2 and metrics["psnr"]["global_batch"] == 4
    assert metrics["gan"]["iterations"] == 3
    assert (out / "gan" / "log.csv").read_text().count("\n") == 4
    # every rank ends with the same generator and discriminator weights
    for stage, files in (("psnr", ["net_g"]), ("gan", ["net_g", "net_d"])):
        for name in files:
            r0 = load_file(str(out / stage / "rank0" / f"{name}.safetensors"))
            r1 = load_file(str(out / stage / "rank1" / f"{name}.safetensors"))
            assert r0.keys() == r1.keys()
            for k in r0:
                assert torch.equal(r0[k], r1[k]), f"{stage}/{name}: {k} differs between ranks"
    # ... and they trained: the exported generator differs from the PSNR-stage one
    a = load_file(str(out / "psnr" / "net_g.safetensors"))["conv_last.weight"]
    b = load_file(str(out / "gan" / "net_g.safetensors"))["conv_last.weight"]
    assert not torch.equal(a, b)


def _launch(args: list[str], cwd: Path, ranks: int) -> subprocess.CompletedProcess:
    env = {**os.environ, "OMP_NUM_THREADS": "1", "PYTHONPATH": str(REPO)}
    launcher = ["-m", "torch.distributed.run", "--standalone", f"--nproc_per_node={ranks}"]
    cmd = [sys.executable, *(launcher if ranks > 1 else []), "-m", "esrgan_lab", "train", *args]
    proc = subprocess.run(cmd, cwd=cwd, env=env, capture_output=True, text=True, timeout=300)
    assert proc.returncode == 0, proc.stdout[-2000:] + proc.stderr[-4000:]
    return proc


@pytest.mark.slow
def test_prepared_set_two_ranks_then_one_continues_the_same_run(tmp_path: Path) -> None:
    """Two CPU ranks read a prepared sub-image folder lazily; the run, resumed on one
    process, accumulates two micro-batches per step and ends where two ranks end."""
    import cv2

    from esrgan_lab.data.prepare import extract_subimages
    from esrgan_lab.data.sources import sample_hr_images

    src = tmp_path / "hr"
    src.mkdir()
    for im in sample_hr_images("train")[:2]:
        cv2.imwrite(str(src / f"{im.name}.png"), im.image[:192, :256])
    summary = extract_subimages(src, tmp_path / "sub", crop=64, step=48, workers=1, progress=False)
    assert summary.subimages > 20
    cfg = {
        "name": "lazy",
        "stages": ["psnr"],
        "model": {"num_feat": 8, "num_block": 1, "num_grow_ch": 4},
        "data": {
            "train": [str(tmp_path / "sub")],
            "lazy": True,
            "val": [],
            "gt_size": 32,
            "batch_size": 2,
            "num_workers": 1,
        },
        "psnr": {"total_iter": 4},
        "runtime": {"device": "cpu", "num_threads": 1},
        "logging": {"log_every": 1, "val_every": 100, "save_every": 2, "progress": False},
    }
    path = tmp_path / "lazy.yaml"
    path.write_text(yaml.safe_dump(cfg))
    # the reference: four steps on two ranks
    _launch(["--config", str(path), "--out", str(tmp_path / "ref")], tmp_path, 2)
    # the same run stopped after two steps, then resumed on one process
    first = ["--config", str(path), "--out", str(tmp_path / "run"), "--set", "psnr.total_iter=2"]
    _launch(first, tmp_path, 2)
    proc = _launch(["--config", str(path), "--out", str(tmp_path / "run"), "--resume"], tmp_path, 1)
    assert "2 micro-batches of 2 per step" in proc.stdout
    metrics = json.loads((tmp_path / "run" / "psnr" / "metrics.json").read_text())
    assert metrics["world_size"] == 1 and metrics["accumulate"] == 2
    assert metrics["global_batch"] == 4 and metrics["iterations"] == 4
    ref = load_file(str(tmp_path / "ref" / "psnr" / "net_g.safetensors"))
    got = load_file(str(tmp_path / "run" / "psnr" / "net_g.safetensors"))
    for key in ref:  # same samples, same mean gradient: equal up to summation order
        torch.testing.assert_close(got[key], ref[key], rtol=1e-4, atol=1e-6)
    logs = [
        (tmp_path / name / "psnr" / "log.csv").read_text().splitlines() for name in ("ref", "run")
    ]
    ref_losses = [float(row.split(",")[1]) for row in logs[0][1:]]
    run_losses = [float(row.split(",")[1]) for row in logs[1][1:]]
    assert run_losses == pytest.approx(ref_losses, rel=1e-4)
