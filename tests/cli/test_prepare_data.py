"""``esrgan-lab prepare-data`` through ``esrgan_lab.cli.main``."""

from __future__ import annotations

import re
from pathlib import Path

import cv2
import numpy as np
import pytest

from esrgan_lab.cli import main
from esrgan_lab.cli import prepare_data as cli
from esrgan_lab.data import prepare


def _images(folder: Path, sizes: dict[str, tuple[int, ...]]) -> None:
    folder.mkdir(parents=True, exist_ok=True)
    rng = np.random.default_rng(0)
    for name, shape in sizes.items():
        image = rng.integers(0, 256, shape, dtype=np.uint8)
        assert cv2.imwrite(str(folder / name), image, [cv2.IMWRITE_PNG_COMPRESSION, 0])


def _error_line(capsys) -> str:
    err = capsys.readouterr().err.strip()
    assert len(err.splitlines()) == 1, err
    assert err.startswith("esrgan-lab prepare-data: error: ")
    return err


def test_cli_defaults_mirror_the_core() -> None:
    for name in ("DEFAULT_CROP", "DEFAULT_STEP", "DEFAULT_THRESH", "DEFAULT_COMPRESSION"):
        assert getattr(cli, name) == getattr(prepare, name), name
    assert (cli.DEFAULT_SCALE, cli.META_NAME) == (prepare.DEFAULT_SCALE, prepare.META_NAME)


def test_cli_writes_subimages_and_basicsr_meta(tmp_path: Path, capsys) -> None:
    src, out = tmp_path / "src", tmp_path / "out"
    _images(src, {"b.png": (150, 200, 3), "a.png": (200, 150), "tiny.png": (50, 300, 3)})
    argv = ["prepare-data", str(src), str(out), "--crop", "96", "--step", "48"]
    assert main([*argv, "--workers", "1"]) == 0
    stdout = capsys.readouterr().out
    assert "3 images -> 24 sub-images" in stdout and "skipped 1 image smaller" in stdout
    lines = (out / "meta_info.txt").read_text().splitlines()
    # a: rows 0, 48, 96, 104 x cols 0, 48, 54; b: rows 0, 48, 54 x cols 0, 48, 96, 104
    assert lines == sorted(lines) and len(lines) == 24
    assert lines[0] == "a_s001.png (96,96,1)" and lines[-1] == "b_s012.png (96,96,3)"
    assert all(re.fullmatch(r"[ab]_s\d{3}\.png \(96,96,[13]\)", line) for line in lines)
    assert {p.name for p in out.iterdir()} == {line.split()[0] for line in lines} | {
        "meta_info.txt"
    }
    assert main([*argv, "--meta", "meta_sub.txt"]) == 0  # resumed: nothing re-encoded
    assert "(0 written, 24 already there)" in capsys.readouterr().out
    assert (out / "meta_sub.txt").read_text() == (out / "meta_info.txt").read_text()


def test_cli_paired(tmp_path: Path, capsys) -> None:
    src, lq = tmp_path / "hr", tmp_path / "lq"
    _images(src, {"0001.png": (192, 240, 3)})
    _images(lq, {"0001x4.png": (48, 60, 3)})
    argv = ["prepare-data", str(src), str(tmp_path / "hr_sub"), "--crop", "96", "--step", "48"]
    argv += ["--lq-src", str(lq), "--lq-out", str(tmp_path / "lq_sub"), "--scale", "4"]
    assert main(argv) == 0
    assert "LQ: 12 sub-images" in capsys.readouterr().out
    names = {p.name for p in (tmp_path / "lq_sub").iterdir()}
    assert names == {f"0001_s{i:03d}.png" for i in range(1, 13)}
    assert all(cv2.imread(str(tmp_path / "lq_sub" / n)).shape == (24, 24, 3) for n in names)


@pytest.mark.parametrize(
    ("case", "message"),
    [
        ("missing", "does not exist"),
        ("empty", "holds no images"),
        ("out-is-src", "inside the source folder"),
        ("out-in-src", "inside the source folder"),
        ("crop-0", "crop size must be positive"),
        ("step-0", "step must be positive"),
        ("lq-without-out", "--lq-src and --lq-out go together"),
        ("crop-not-divisible", "crop 90 not divisible by the scale 4"),
        ("lq-missing", "no LQ image for a.png"),
    ],
)
def test_cli_bad_input_is_one_line_and_writes_nothing(
    tmp_path: Path, capsys, case: str, message: str
) -> None:
    src, out, lq = tmp_path / "src", tmp_path / "out", tmp_path / "lq"
    if case != "missing":
        _images(src, {} if case == "empty" else {"a.png": (100, 100, 3)})
    _images(lq, {"b.png": (25, 25, 3)})
    argv = {
        "out-is-src": [str(src), str(src)],
        "out-in-src": [str(src), str(src / "sub")],
        "crop-0": [str(src), str(out), "--crop", "0"],
        "step-0": [str(src), str(out), "--step", "0"],
        "lq-without-out": [str(src), str(out), "--lq-src", str(lq)],
        "crop-not-divisible": [str(src), str(out), "--crop", "90", "--lq-src", str(lq)],
        "lq-missing": [str(src), str(out), "--crop", "40", "--step", "20", "--lq-src", str(lq)],
    }.get(case, [str(src), str(out)])
    if "--lq-src" in argv and case != "lq-without-out":
        argv += ["--lq-out", str(tmp_path / "lq_out")]
    before = sorted(p.relative_to(tmp_path) for p in tmp_path.rglob("*"))
    assert main(["prepare-data", *argv]) == 1
    assert message in _error_line(capsys)
    assert sorted(p.relative_to(tmp_path) for p in tmp_path.rglob("*")) == before
