"""tools/bench_readme.py: the README's benchmark section, rendered from result files that
this test writes (two machines, so that each table names the one it was measured on)."""

from __future__ import annotations

import json
from pathlib import Path

import pytest

from tests.helpers import load_tool

REPO = Path(__file__).resolve().parents[1]


@pytest.fixture
def bench_readme(tmp_path, monkeypatch):
    module = load_tool("bench_readme")
    monkeypatch.setattr(module, "RESULTS", tmp_path)
    return module


def _prov(cpu: str, capability: str) -> dict:
    return {
        "cpu": cpu,
        "cpu_capability": capability,
        "cpu_count": 2,
        "threads": 2,
        "torch": "2.13.0+cpu",
        "date": "2026-12-07T00:00:00+00:00",
        "commit": "0123456789abcdef",
    }


def _int8(prov: dict, int8_seconds: float) -> dict:
    return {
        "provenance": prov,
        "threads": 2,
        "native_bf16": False,
        "paths": ["ORT fp32", "OpenVINO int8"],
        "speed": [
            {"path": "ORT fp32", "size": 128, "seconds": 8.0, "vs_ort_fp32": 1.0},
            {
                "path": "OpenVINO int8",
                "size": 128,
                "seconds": int8_seconds,
                "vs_ort_fp32": 8.0 / int8_seconds,
            },
        ],
        "bicubic": {"Set5": 28.431},
        "calibration": {"images": ["a", "b"], "patch": 64},
        "full_model": "full-psnr-x4",
        "accuracy": [
            {"model": "full-psnr-x4", "dataset": "Set5", "path": "ORT fp32", "psnr_y": 31.265},
            {
                "model": "full-psnr-x4",
                "dataset": "Set5",
                "path": "OpenVINO int8",
                "psnr_y": 31.2,
                "delta_db": -0.065,
            },
        ],
    }


def test_each_table_names_its_machine(bench_readme, tmp_path):
    epyc, xeon = _prov("AMD EPYC", "AVX2"), _prov("Intel Xeon", "AVX512")
    (tmp_path / "bench_int8.json").write_text(json.dumps(_int8(epyc, 7.9)))
    (tmp_path / "bench_int8.avx512.json").write_text(json.dumps(_int8(xeon, 1.25)))
    training = {"provenance": xeon, "models": {}}
    (tmp_path / "bench_training.json").write_text(json.dumps(training))
    text = bench_readme.render()
    assert text.startswith("Machine: AMD EPYC (2 cores), AVX2")
    # the latest int8 run: speed and accuracy; the earlier machine's: speed only
    assert "| OpenVINO int8 | 7.90 s, 1.01x | - |" in text
    assert "| full-psnr-x4 | Set5 | 31.265 | -0.065 |" in text
    earlier = text.split("(`bench_int8.avx512.json`): Intel Xeon (2 cores), AVX512", 1)[1]
    assert "| OpenVINO int8 | 1.25 s, 6.40x | - |" in earlier.split("**Training", 1)[0]
    assert "full-psnr-x4 | Set5" not in earlier
    # a table from another machine than the header's says so
    assert "Measured on another machine: Intel Xeon (2 cores), AVX512" in text
    assert "(`bench_upscale.py` has not been run" in text
