"""SSIM speed: esrgan_lab.metrics.psnr_ssim.calculate_ssim vs scikit-image, same images, one run.

Usage: ``python benchmarks/bench_ssim.py [--repeat 5]``. Uses Set14 when
``ESRGAN_LAB_DATA`` is set, else the scikit-image sample images. Both compute the
same number (checked here); the script prints the median time of each and the ratio.
"""

from __future__ import annotations

import argparse
import statistics

import numpy as np
from skimage.metrics import structural_similarity

from esrgan_lab.data.degrade import bicubic_degrade, bicubic_upscale, modcrop
from esrgan_lab.data.sources import resolve_dataset
from esrgan_lab.metrics.psnr_ssim import bgr2y, calculate_ssim
from esrgan_lab.settings import dataset_dir
from esrgan_lab.timing import time_runs


def _pairs() -> tuple[str, list[tuple[np.ndarray, np.ndarray]]]:
    name = "Set14" if dataset_dir("Set14") is not None else "skimage"
    pairs = []
    for rec in resolve_dataset(name):
        gt = modcrop(rec.load(), 4)
        pairs.append((bicubic_upscale(bicubic_degrade(gt, 4), 4), gt))
    return name, pairs


def _ours(pairs) -> list[float]:
    return [calculate_ssim(sr, gt, 4, test_y_channel=True) for sr, gt in pairs]


def _skimage(pairs) -> list[float]:
    out = []
    for sr, gt in pairs:
        a = bgr2y(sr) if sr.ndim == 3 else sr.astype(np.float64)
        b = bgr2y(gt) if gt.ndim == 3 else gt.astype(np.float64)
        out.append(
            structural_similarity(
                a[4:-4, 4:-4],
                b[4:-4, 4:-4],
                gaussian_weights=True,
                sigma=1.5,
                use_sample_covariance=False,
                data_range=255,
            )
        )
    return out


def _time(fn, pairs, repeat: int) -> tuple[float, list[float]]:
    values: list = []
    times = time_runs(lambda: values.append(fn(pairs)), repeat, warmup=0)
    return statistics.median(times.tolist()), values[-1]


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--repeat", type=int, default=5)
    args = parser.parse_args()
    name, pairs = _pairs()
    t_ours, v_ours = _time(_ours, pairs, args.repeat)
    t_sk, v_sk = _time(_skimage, pairs, args.repeat)
    diff = max(abs(a - b) for a, b in zip(v_ours, v_sk))
    print(f"{len(pairs)} images ({name}, Y channel, crop 4), median of {args.repeat} runs")
    print(f"esrgan_lab  {t_ours * 1e3:8.1f} ms   mean SSIM {np.mean(v_ours):.6f}")
    print(f"skimage     {t_sk * 1e3:8.1f} ms   mean SSIM {np.mean(v_sk):.6f}")
    print(f"max |difference| {diff:.2e}; ratio ours / skimage = {t_ours / t_sk:.2f}")


if __name__ == "__main__":
    main()
