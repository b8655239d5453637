"""Sub-image preparation against BasicSR's ``extract_subimages.py``, re-implemented here.

:func:`_basicsr` is the oracle: BasicSR's loop written again with plain numpy, independent
of :mod:`esrgan_lab.data.prepare` (which must not be imported into it).
"""

from __future__ import annotations

from pathlib import Path

import cv2
import numpy as np
import pytest

from esrgan_lab.data import prepare
from esrgan_lab.data.prepare import (
    PrepareSummary,
    SubImage,
    extract_paired_subimages,
    extract_subimages,
    subimage_grid,
    subimage_names,
    subimage_positions,
    write_meta_info,
)
from esrgan_lab.errors import ConfigError, DataError

FAST_PNG = [cv2.IMWRITE_PNG_COMPRESSION, 0]


def _smooth(rng: np.random.Generator, h: int, w: int, channels: int, dtype=np.uint8):
    """A cheap smooth random image: small noise resized up (``channels == 1``: 2-D)."""
    top = np.iinfo(dtype).max
    shape = (h // 40 + 2, w // 40 + 2) + (() if channels == 1 else (channels,))
    small = rng.integers(0, top, shape, endpoint=True).astype(dtype)
    return cv2.resize(small, (w, h), interpolation=cv2.INTER_LINEAR)


def _write_images(folder: Path, specs, seed: int = 0) -> dict[str, np.ndarray]:
    """Write ``specs`` = ``[(name, h, w, channels, dtype), ...]`` as fast PNGs."""
    rng = np.random.default_rng(seed)
    folder.mkdir(parents=True, exist_ok=True)
    images = {}
    for name, h, w, channels, dtype in specs:
        images[name] = _smooth(rng, h, w, channels, dtype)
        assert cv2.imwrite(str(folder / name), images[name], FAST_PNG)
    return images


def _basicsr(folder: Path, crop: int, step: int, thresh: int):
    """BasicSR's ``extract_subimages`` loop: ``{name: crop}`` and ``{name: (x, y)}``."""
    crops, corners = {}, {}
    for path in sorted(folder.iterdir()):
        img = cv2.imread(str(path), cv2.IMREAD_UNCHANGED)
        h, w = img.shape[0:2]
        if h < crop or w < crop:
            continue  # BasicSR raises IndexError on h_space[-1] here
        h_space = np.arange(0, h - crop + 1, step)
        if h - (h_space[-1] + crop) > thresh:
            h_space = np.append(h_space, h - crop)
        w_space = np.arange(0, w - crop + 1, step)
        if w - (w_space[-1] + crop) > thresh:
            w_space = np.append(w_space, w - crop)
        index = 0
        for x in h_space:
            for y in w_space:
                index += 1
                cropped = np.ascontiguousarray(img[x : x + crop, y : y + crop, ...])
                name = f"{path.stem}_s{index:03d}{path.suffix}"
                crops[name], corners[name] = cropped, (int(x), int(y))
    return crops, corners


def _outputs(folder: Path) -> set[str]:
    return {p.name for p in folder.iterdir() if p.suffix == ".png"}


def _assert_same_pixels(folder: Path, expected: dict[str, np.ndarray]) -> None:
    assert _outputs(folder) == set(expected)
    for name, want in expected.items():
        got = cv2.imread(str(folder / name), cv2.IMREAD_UNCHANGED)
        assert got.dtype == want.dtype and got.shape == want.shape, name
        assert np.array_equal(got, want), name


def _meta_lines(expected: dict[str, np.ndarray]) -> list[str]:
    def line(name: str, a: np.ndarray) -> str:
        return f"{name} ({a.shape[0]},{a.shape[1]},{1 if a.ndim == 2 else a.shape[2]})"

    return [line(name, expected[name]) for name in sorted(expected)]


# ------------------------------------------------------------------ BasicSR oracle


def _twenty() -> list[tuple[str, int, int, int, type]]:
    specs = []
    for i in range(20):
        h, w = (800, 1000) if i % 2 == 0 else (1000, 800)
        channels, dtype = {0: (1, np.uint8), 1: (4, np.uint8), 2: (3, np.uint16)}.get(
            i, (3, np.uint8)
        )
        specs.append((f"{i + 1:04d}.png", h, w, channels, dtype))
    return specs


def test_twenty_images_match_basicsr(tmp_path: Path) -> None:
    """The issue's acceptance test: same sub-image set, names and pixels as BasicSR.

    PNG level 0 keeps it quick; the level changes the bytes only, not the pixels (the
    default level 3 is checked byte for byte below).
    """
    src, out = tmp_path / "src", tmp_path / "out"
    _write_images(src, _twenty())
    summary = extract_subimages(
        src, out, crop=480, step=240, thresh_size=0, compression=0, workers=2, progress=False
    )
    expected, _ = _basicsr(src, 480, 240, 0)
    assert len(expected) == 20 * 12
    _assert_same_pixels(out, expected)
    assert summary == PrepareSummary(20, 240, 0, 0, meta=out / "meta_info.txt")
    assert (out / "meta_info.txt").read_text().splitlines() == _meta_lines(expected)
    assert not [p for p in out.iterdir() if p.name.startswith(".")]


def test_thresh_size_small_images_and_png_bytes(tmp_path: Path) -> None:
    """Nonzero thresh (remainders above and below it), a skipped small image, and the
    files byte-identical to ``cv2.imwrite`` at BasicSR's PNG level 3."""
    src, out, ref = tmp_path / "src", tmp_path / "out", tmp_path / "ref"
    specs = [
        ("a.png", 850, 1000, 3, np.uint8),  # rows: remainder 130 > 100 -> extra row at 370
        ("b.png", 800, 1000, 1, np.uint8),  # remainders 80 and 40 <= 100 -> no extra
        ("c.png", 1000, 730, 3, np.uint16),  # remainders 40 and 10
        ("d.png", 300, 1000, 3, np.uint8),  # smaller than the crop: skipped
    ]
    _write_images(src, specs)
    summary = extract_subimages(src, out, crop=480, step=240, thresh_size=100, workers=1)
    expected, corners = _basicsr(src, 480, 240, 100)
    assert len(expected) == 9 + 6 + 6
    assert corners["a_s007.png"] == (370, 0)
    assert (summary.images, summary.written, summary.small) == (4, 21, 1)
    _assert_same_pixels(out, expected)
    ref.mkdir()
    for name, array in expected.items():
        cv2.imwrite(str(ref / name), array, [cv2.IMWRITE_PNG_COMPRESSION, 3])
        assert (out / name).read_bytes() == (ref / name).read_bytes(), name


# ------------------------------------------------------------------ resume


class _Killed(Exception):
    """Stands for the process being killed in the middle of a write."""


def _resume_sources(folder: Path) -> None:
    specs = [(f"{i}.png", 300, 260, c, np.uint8) for i, c in enumerate((3, 1, 4, 3))]
    _write_images(folder, specs)


def test_interrupted_run_resumes_to_the_same_files(tmp_path: Path, monkeypatch) -> None:
    src, ref, out = tmp_path / "src", tmp_path / "ref", tmp_path / "out"
    _resume_sources(src)
    options = dict(crop=96, step=48, thresh_size=0, progress=False)
    total = extract_subimages(src, ref, workers=1, **options).written
    assert total == 4 * 6 * 5

    calls = []
    real_write = prepare._write_file

    def dying_write(path: Path, data: bytes) -> None:
        calls.append(path)
        if len(calls) > 10:
            path.write_bytes(data[: len(data) // 2])
            raise _Killed
        real_write(path, data)

    monkeypatch.setattr(prepare, "_write_file", dying_write)
    with pytest.raises(_Killed):
        extract_subimages(src, out, workers=1, **options)
    monkeypatch.undo()
    assert len(_outputs(out)) == 10
    assert not (out / "meta_info.txt").exists()  # the meta file comes last
    assert not [p for p in out.iterdir() if p.name.startswith(".")]  # cleaned on error
    # a kill leaves a truncated temporary file behind: the next run removes it
    missing = sorted(_outputs(ref) - _outputs(out))
    stale = out / f".{Path(missing[0]).stem}.tmp.png"
    stale.write_bytes((ref / missing[0]).read_bytes()[:100])
    (out / ".keep").write_text("not ours")

    summary = extract_subimages(src, out, workers=1, **options)
    assert (summary.written, summary.existing) == (total - 10, 10)
    assert not stale.exists() and (out / ".keep").exists()
    (out / ".keep").unlink()
    assert sorted(p.name for p in out.iterdir()) == sorted(p.name for p in ref.iterdir())
    for path in ref.iterdir():
        assert (out / path.name).read_bytes() == path.read_bytes(), path.name

    for name in missing[::7]:  # the pool path resumes the same way
        (out / name).unlink()
    summary = extract_subimages(src, out, workers=2, **options)
    assert (summary.written, summary.existing) == (len(missing[::7]), total - len(missing[::7]))
    for path in ref.iterdir():
        assert (out / path.name).read_bytes() == path.read_bytes(), path.name


# ------------------------------------------------------------------ positions and names


@pytest.mark.parametrize(
    ("length", "crop", "step", "thresh", "expected"),
    [
        (1000, 480, 240, 0, [0, 240, 480, 520]),
        (800, 480, 240, 0, [0, 240, 320]),
        (960, 480, 240, 0, [0, 240, 480]),  # exact fit: no extra crop
        (2040, 480, 240, 0, [0, 240, 480, 720, 960, 1200, 1440, 1560]),  # DIV2K width
        (1000, 480, 240, 39, [0, 240, 480, 520]),  # 40 uncovered > 39
        (1000, 480, 240, 40, [0, 240, 480]),  # 40 uncovered, not > 40
        (800, 480, 240, 100, [0, 240]),
        (850, 480, 240, 100, [0, 240, 370]),
        (480, 480, 240, 0, [0]),
        (479, 480, 240, 0, []),
        (250, 120, 60, 0, [0, 60, 120, 130]),
        (500, 120, 500, 0, [0, 380]),  # step larger than the crop
    ],
)
def test_subimage_positions(length, crop, step, thresh, expected) -> None:
    assert subimage_positions(length, crop, step, thresh) == expected


@pytest.mark.parametrize(("crop", "step", "thresh"), [(0, 240, 0), (480, 0, 0), (480, 240, -1)])
def test_positions_refuse_bad_sizes(crop, step, thresh) -> None:
    with pytest.raises(ConfigError):
        subimage_positions(1000, crop, step, thresh)


def test_names_count_rows_then_columns() -> None:
    grid = subimage_grid("0001", ".png", 800, 1000, 480, 240)
    assert [s.name for s in grid] == [f"0001_s{i:03d}.png" for i in range(1, 13)]
    assert grid[3] == SubImage("0001_s004.png", 0, 520)
    assert grid[4] == SubImage("0001_s005.png", 240, 0)
    assert subimage_names("x", ".PNG", 479, 1000, 480, 240, 0) == []
    many = subimage_names("x", ".png", 64, 64, 2, 2, 0)  # 32 x 32 crops
    assert many[998:1000] == ["x_s999.png", "x_s1000.png"] and len(many) == 1024


# ------------------------------------------------------------------ paired LQ


def _paired(tmp_path: Path) -> tuple[Path, Path, dict[str, np.ndarray]]:
    hr_dir, lq_dir = tmp_path / "hr", tmp_path / "lq"
    specs = [("0001.png", 320, 400, 3, np.uint8), ("0002.png", 400, 320, 1, np.uint8)]
    specs.append(("0003.png", 336, 400, 4, np.uint8))  # rows 0, 80, 160, 176
    hr = _write_images(hr_dir, specs)
    lq_dir.mkdir()
    lq = {}
    for (name, h, w, _, _), lq_name in zip(specs, ["0001x4.png", "0002.png", "0003x4.png"]):
        lq[name] = cv2.resize(hr[name], (w // 4, h // 4), interpolation=cv2.INTER_AREA)
        cv2.imwrite(str(lq_dir / lq_name), lq[name], FAST_PNG)
    return hr_dir, lq_dir, lq


def test_paired_lq_subimages_share_names_and_positions(tmp_path: Path) -> None:
    hr_dir, lq_dir, lq = _paired(tmp_path)
    out, lq_out = tmp_path / "hr_sub", tmp_path / "lq_sub"
    summary = extract_paired_subimages(
        hr_dir, out, lq_dir, lq_out, scale=4, crop=160, step=80, workers=2, progress=False
    )
    hr_expected, corners = _basicsr(hr_dir, 160, 80, 0)
    _assert_same_pixels(out, hr_expected)
    assert _outputs(lq_out) == set(hr_expected)
    assert (summary.written, summary.lq_written) == (len(hr_expected), len(hr_expected))
    # each LQ sub-image is the LQ crop at the HR position / 4 ...
    lq_expected = {}
    for name, (x, y) in corners.items():
        source = lq[name.split("_s")[0] + ".png"]
        lq_expected[name] = source[x // 4 : x // 4 + 40, y // 4 : y // 4 + 40, ...]
    _assert_same_pixels(lq_out, lq_expected)
    # ... which is what BasicSR cuts from the LQ folder with 160/4, 80/4, 0/4
    lq_basicsr, _ = _basicsr(lq_dir, 40, 20, 0)
    renamed = {name.replace("x4_s", "_s"): a for name, a in lq_basicsr.items()}
    assert set(renamed) == set(lq_expected)
    assert all(np.array_equal(renamed[n], lq_expected[n]) for n in renamed)
    assert not (lq_out / "meta_info.txt").exists()


def _one_line(exc: pytest.ExceptionInfo) -> str:
    text = str(exc.value)
    assert text and "\n" not in text
    return text


def test_paired_errors_are_one_line(tmp_path: Path) -> None:
    hr_dir, lq_dir, _ = _paired(tmp_path)
    out, lq_out = tmp_path / "hr_sub", tmp_path / "lq_sub"
    options = dict(scale=4, crop=160, step=80, workers=1, progress=False)
    with pytest.raises(ConfigError) as exc:
        extract_paired_subimages(hr_dir, out, lq_dir, lq_out, **{**options, "crop": 162})
    assert "crop 162" in _one_line(exc)
    with pytest.raises(ConfigError) as exc:
        extract_paired_subimages(hr_dir, out, lq_dir, out, **options)
    _one_line(exc)
    with pytest.raises(ConfigError) as exc:
        extract_paired_subimages(hr_dir, out, lq_dir, lq_dir / "sub", **options)
    _one_line(exc)

    (lq_dir / "0001.png").write_bytes((lq_dir / "0001x4.png").read_bytes())
    with pytest.raises(DataError) as exc:  # 0001.png and 0001x4.png both match
        extract_paired_subimages(hr_dir, out, lq_dir, lq_out, **options)
    assert "several" in _one_line(exc)
    (lq_dir / "0001.png").unlink()
    (lq_dir / "0002.png").unlink()
    with pytest.raises(DataError) as exc:
        extract_paired_subimages(hr_dir, out, lq_dir, lq_out, **options)
    assert "0002.png" in _one_line(exc)
    assert not out.exists() and not lq_out.exists()  # checked before anything is written

    lq2 = np.zeros((100, 81), np.uint8)
    cv2.imwrite(str(lq_dir / "0002x4.png"), lq2)
    with pytest.raises(DataError) as exc:
        extract_paired_subimages(hr_dir, out, lq_dir, lq_out, **options)
    assert "81x100, expected 80x100" in _one_line(exc)


# ------------------------------------------------------------------ checks and meta


def test_refuses_bad_folders(tmp_path: Path) -> None:
    src = tmp_path / "src"
    with pytest.raises(DataError):
        extract_subimages(src, tmp_path / "out")
    src.mkdir()
    (src / "notes.txt").write_text("no images")
    with pytest.raises(DataError):
        extract_subimages(src, tmp_path / "out")
    _write_images(src, [("a.png", 100, 100, 3, np.uint8)])
    for out in (src, src / "sub", src / "sub" / "deeper"):
        with pytest.raises(ConfigError):
            extract_subimages(src, out, crop=50, step=50)
    with pytest.raises(ConfigError):
        extract_subimages(src, tmp_path / "out", crop=50, step=50, compression=10)
    assert sorted(p.name for p in src.iterdir()) == ["a.png", "notes.txt"]
    assert not (tmp_path / "out").exists()


def test_write_meta_info_reads_unknown_files(tmp_path: Path) -> None:
    folder = tmp_path / "sub"
    _write_images(folder, [("b.png", 20, 30, 1, np.uint8), ("a.png", 10, 12, 4, np.uint16)])
    (folder / ".a_s001.tmp.png").write_bytes(b"")  # hidden files are not listed
    path = write_meta_info(folder)
    assert path == folder / "meta_info.txt"
    assert path.read_text() == "a.png (10,12,4)\nb.png (20,30,1)\n"
    other = write_meta_info(folder, str(tmp_path / "meta.txt"), shapes={"a.png": (1, 2, 3)})
    assert other == tmp_path / "meta.txt"
    assert other.read_text() == "a.png (1,2,3)\nb.png (20,30,1)\n"
