"""Evaluation runner and ``esrgan-lab evaluate``: protocols, pairing, published numbers."""

from __future__ import annotations

import json

import cv2
import numpy as np
import pytest
from skimage import color
from skimage.metrics import peak_signal_noise_ratio

from esrgan_lab import settings
from esrgan_lab.cli import main
from esrgan_lab.data.degrade import bicubic_degrade, modcrop
from esrgan_lab.data.paired import PairedImageSet
from esrgan_lab.data.sources import SKIMAGE_IMAGES, NamedImage, resolve_dataset
from esrgan_lab.data.vendor import vendor_pair
from esrgan_lab.errors import ConfigError, DataError, ImageReadError
from esrgan_lab.evaluation import evaluate as ev
from esrgan_lab.metrics.scoring import pair_outputs
from tests.helpers import make_tiny


def _write(folder, name, img):
    folder.mkdir(parents=True, exist_ok=True)
    path = folder / name
    assert cv2.imwrite(str(path), img)
    return path


def _smooth(h, w, seed=0):
    rng = np.random.default_rng(seed)
    small = rng.integers(0, 256, size=(h // 8 + 1, w // 8 + 1, 3), dtype=np.uint8)
    return cv2.resize(small, (w, h), interpolation=cv2.INTER_CUBIC)


@pytest.fixture
def hr_dir(tmp_path):
    _write(tmp_path / "hr", "a.png", _smooth(50, 45, 0))  # not a multiple of 4
    _write(tmp_path / "hr", "b.png", cv2.cvtColor(_smooth(40, 48, 1), cv2.COLOR_BGR2GRAY))
    return tmp_path / "hr"


# --------------------------------------------------------------------------- published


def test_published_esrgan_baboon_psnr(data_root):
    """ESRGAN paper, Fig. 7: the baboon output scores 20.35 dB (Y, crop 4)."""
    rep = ev.evaluate_folders(
        data_root / "esrgan_samples" / "results_baboon_ESRGAN.png",
        data_root / "Set14",
        niqe=False,
        progress=False,
    )
    assert [s.image for s in rep.scores] == ["baboon"]
    assert rep.scores[0].psnr == pytest.approx(20.35, abs=0.05)


def test_published_bicubic_set5_set14(data_root):
    """Bicubic x4 as in the SR tables (e.g. EDSR/RCAN): Set5 28.42 / 0.8104, Set14 26.00 / 0.7027.

    Tolerances: PSNR 0.02 dB - the tables round to 0.01 dB, and MATLAB's uint8
    rgb2ycbcr rounds Y (we keep BasicSR's unrounded Y: 28.431 vs 28.419 rounded).
    SSIM 0.002 - MATLAB ssim implementations differ in the window's edge handling.
    """
    rep = ev.evaluate_model("bicubic", ["Set5", "Set14"], niqe=False, progress=False)
    means = rep.means()
    assert means["Set5"]["psnr"] == pytest.approx(28.42, abs=0.02)
    assert means["Set5"]["ssim"] == pytest.approx(0.8104, abs=0.002)
    assert means["Set14"]["psnr"] == pytest.approx(26.00, abs=0.02)
    assert means["Set14"]["ssim"] == pytest.approx(0.7027, abs=0.002)


# --------------------------------------------------------------------------- protocols


def test_standard_protocol_matches_skimage_oracle(hr_dir):
    rep = ev.evaluate_model("bicubic", [hr_dir], niqe=False, progress=False)
    assert [s.image for s in rep.scores] == ["a", "b"]
    gt = modcrop(cv2.imread(str(hr_dir / "a.png")), 4)
    assert rep.scores[0].sr_shape == gt.shape
    sr = ev.run_model("bicubic", bicubic_degrade(gt, 4), 4)

    def y(img):
        return color.rgb2ycbcr(img[..., ::-1] / 255.0)[4:-4, 4:-4, 0]

    assert rep.scores[0].psnr == pytest.approx(
        peak_signal_noise_ratio(y(gt), y(sr), data_range=255), rel=1e-9
    )
    # the gray image is scored on its gray values
    assert rep.scores[1].sr_shape == (40, 48)


def test_nearest_baseline_is_pixel_replication():
    lq = np.random.default_rng(0).integers(0, 256, size=(5, 7, 3), dtype=np.uint8)
    np.testing.assert_array_equal(
        ev.run_model("nearest", lq, 4), np.repeat(np.repeat(lq, 4, 0), 4, 1)
    )
    assert ev.run_model("lanczos", lq, 4).shape == (20, 28, 3)


def test_vendor_protocol_lq_is_the_vendor_input(hr_dir):
    from esrgan_lab.data.vendor import get_image_data

    img = cv2.imread(str(hr_dir / "a.png"))
    ref, lq = vendor_pair(img, 4)
    resized, _ = get_image_data(hr_dir / "a.png")
    np.testing.assert_array_equal(lq, resized)
    assert ref.shape == (512, 512, 3)
    rep = ev.evaluate_model("bicubic", [hr_dir], protocol="vendor", niqe=False, progress=False)
    assert rep.protocol == "vendor" and "no border crop" in rep.comparison
    assert rep.scores[0].sr_shape == (512, 512, 3)
    sr = ev.run_model("bicubic", lq, 4)
    assert rep.scores[0].psnr == pytest.approx(
        peak_signal_noise_ratio(ref, sr, data_range=255), rel=1e-9
    )


def test_tiny_network_and_scale_mismatch(hr_dir):
    model = make_tiny()
    rep = ev.evaluate_model(model, [hr_dir], niqe=False, progress=False)
    assert rep.model == "RRDBNet" and len(rep.scores) == 2
    assert all(np.isfinite(s.psnr) for s in rep.scores)
    with pytest.raises(ConfigError, match="check --scale"):
        ev.evaluate_model(model, [hr_dir], scale=2, niqe=False, progress=False)


def test_niqe_not_available_is_reported(hr_dir, monkeypatch):
    monkeypatch.setattr(settings, "niqe_params_path", lambda: None)
    rep = ev.evaluate_model("bicubic", [hr_dir], niqe=True, progress=False)
    assert all(s.niqe is None for s in rep.scores)
    assert "NIQE not available" in rep.niqe_status
    assert "n/a" in rep.format_table()


# --------------------------------------------------------------------------- datasets


def test_dataset_fallback_without_data(monkeypatch):
    monkeypatch.delenv("ESRGAN_LAB_DATA", raising=False)
    with pytest.raises(DataError, match="Set5.*ESRGAN_LAB_DATA is not set"):
        resolve_dataset("Set5")
    recs = resolve_dataset("skimage")
    assert [r.name for r in recs] == list(SKIMAGE_IMAGES)
    img = recs[0].load()
    assert img.dtype == np.uint8 and img.shape == (512, 512, 3)


def test_pairing_rule_and_errors(tmp_path):
    gt = _smooth(32, 32)
    _write(tmp_path / "gt", "foo.png", gt)
    _write(tmp_path / "gt", "bar_baz.png", gt)
    _write(tmp_path / "sr", "results_foo_ESRGAN.png", gt)
    _write(tmp_path / "sr", "bar_baz_x4.png", gt)
    pairs = pair_outputs(tmp_path / "sr", tmp_path / "gt")
    assert [(s.name, g.name) for s, g in pairs] == [
        ("bar_baz_x4.png", "bar_baz.png"),
        ("results_foo_ESRGAN.png", "foo.png"),
    ]
    rep = ev.evaluate_folders(tmp_path / "sr", tmp_path / "gt", niqe=False, progress=False)
    assert all(s.psnr == float("inf") for s in rep.scores)

    _write(tmp_path / "sr", "orphan.png", gt)
    with pytest.raises(DataError, match="orphan.png: no ground truth"):
        pair_outputs(tmp_path / "sr", tmp_path / "gt")

    _write(tmp_path / "sr2", "foo.png", gt[:28])
    with pytest.raises(DataError, match="foo.png: size 32x28 does not match"):
        ev.evaluate_folders(tmp_path / "sr2", tmp_path / "gt", niqe=False, progress=False)

    (tmp_path / "sr3").mkdir()
    (tmp_path / "sr3" / "foo.png").write_bytes(b"not a png")
    with pytest.raises(ImageReadError, match="foo.png"):
        ev.evaluate_folders(tmp_path / "sr3", tmp_path / "gt", niqe=False, progress=False)


# --------------------------------------------------------------------------- CLI


def test_cli_writes_json_and_csv(hr_dir, tmp_path, capsys):
    out_json, out_csv = tmp_path / "r.json", tmp_path / "r.csv"
    rc = main(
        [
            "evaluate",
            "--model",
            "bicubic",
            "--dataset",
            str(hr_dir),
            "--no-niqe",
            "--no-progress",
            "--json",
            str(out_json),
            "--csv",
            str(out_csv),
        ]
    )
    assert rc == 0
    printed = capsys.readouterr().out
    assert "mean (2)" in printed
    report = json.loads(out_json.read_text())
    assert report["protocol"] == "standard" and report["niqe_status"].startswith("disabled")
    psnrs = [im["psnr"] for im in report["images"]]
    assert report["mean"]["hr"]["psnr"] == pytest.approx(np.mean(psnrs))
    rows = out_csv.read_text().splitlines()
    assert rows[0] == "dataset,image,psnr,ssim,niqe" and len(rows) == 3


def test_cli_vendor_protocol_and_folders(hr_dir, tmp_path, capsys):
    out_json = tmp_path / "vendor.json"
    args = ["evaluate", "--model", "bicubic", "--dataset", str(hr_dir), "--no-niqe"]
    rc = main([*args, "--protocol", "vendor", "--no-progress", "--json", str(out_json)])
    assert rc == 0
    report = json.loads(out_json.read_text())
    direct = ev.evaluate_model("bicubic", [hr_dir], protocol="vendor", niqe=False, progress=False)
    assert report["protocol"] == "vendor"
    assert [im["psnr"] for im in report["images"]] == [s.psnr for s in direct.scores]
    # --sr/--gt: score saved outputs; the bicubic outputs written to files score the same
    kept: dict[str, np.ndarray] = {}
    standard = ev.evaluate_model("bicubic", [hr_dir], niqe=False, progress=False, keep_outputs=kept)
    sr_dir = tmp_path / "sr"
    for key, sr in kept.items():
        _write(sr_dir, f"results_{key.split('/')[1]}_x4.png", sr)
    capsys.readouterr()
    out = tmp_path / "folders.json"
    rc = main(
        ["evaluate", "--sr", str(sr_dir), "--gt", str(hr_dir), "--no-niqe", "--json", str(out)]
    )
    assert rc == 0
    folders = json.loads(out.read_text())
    assert folders["protocol"] == "folders"
    assert [im["psnr"] for im in folders["images"]] == [s.psnr for s in standard.scores]


def test_one_scoring_loop_serves_in_memory_pairs():
    """score_pairs on PairedImageSet (what the trainer validates with) = evaluate_model."""
    images = [NamedImage(n, _smooth(48, 40, i)) for i, n in enumerate(("a", "b"))]
    pairs = PairedImageSet(images, 4, dataset="mem")
    rep = ev.score_pairs("bicubic", pairs, 4, niqe=False)
    assert [s.image for s in rep.scores] == ["a", "b"] and rep.protocol == "standard"
    for s, pair in zip(rep.scores, pairs):
        sr = ev.run_model("bicubic", pair.lq, 4)
        y = lambda im: color.rgb2ycbcr(im[..., ::-1])[..., 0][4:-4, 4:-4]  # noqa: E731
        assert s.psnr == pytest.approx(peak_signal_noise_ratio(y(pair.gt), y(sr), data_range=255))
    means = rep.means()["mem"]
    assert means["psnr"] == pytest.approx(np.mean([s.psnr for s in rep.scores]))
    assert means["niqe"] is None and means["niqe_median"] is None


def test_cli_errors_are_one_line(tmp_path, capsys, monkeypatch):
    monkeypatch.delenv("ESRGAN_LAB_DATA", raising=False)
    assert main(["evaluate", "--model", "bicubic", "--dataset", "Set5", "--no-progress"]) == 1
    err = capsys.readouterr().err.strip()
    assert err.startswith("esrgan-lab evaluate: error: dataset 'Set5' not found")
    assert len(err.splitlines()) == 1
    assert main(["evaluate", "--sr", str(tmp_path)]) == 1
    assert "--sr and --gt go together" in capsys.readouterr().err
