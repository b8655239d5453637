"""Image sources: folders, named sets, scikit-image samples, slices, training form."""

from __future__ import annotations

import cv2
import numpy as np
import pytest

from esrgan_lab.data.samples import skimage_sample
from esrgan_lab.data.sources import (
    SKIMAGE_IMAGES,
    as_training_image,
    dataset_images,
    load_source,
    read_gt,
    resolve_dataset,
    sample_hr_images,
)
from esrgan_lab.errors import DataError, ImageReadError


def _image(h: int, w: int, seed: int) -> np.ndarray:
    return np.random.default_rng(seed).integers(0, 256, (h, w, 3), dtype=np.uint8)


def test_sample_splits_are_disjoint_bgr_uint8() -> None:
    train, val = sample_hr_images("train"), sample_hr_images("val")
    assert [im.name for im in train][:3] == ["astronaut", "chelsea", "coffee"]
    assert not {im.name for im in train} & {im.name for im in val}
    for im in train + val:
        assert im.image.dtype == np.uint8 and im.image.ndim == 3 and im.image.shape[2] == 3
    # the one scikit-image loader: BGR, as OpenCV would read the same picture
    np.testing.assert_array_equal(train[0].image, skimage_sample("astronaut"))
    assert len(load_source("sample:train[:2]")) == 2


def test_folder_reads_bgr_and_gray_in_name_order(tmp_path) -> None:
    bgr = _image(40, 50, 9)
    cv2.imwrite(str(tmp_path / "b.png"), bgr)
    cv2.imwrite(str(tmp_path / "a.png"), bgr[..., 0])
    (tmp_path / "notes.txt").write_text("not an image")
    got = load_source(str(tmp_path))
    assert [im.name for im in got] == ["a", "b"]
    np.testing.assert_array_equal(got[1].image, bgr)
    assert got[0].image.shape == (40, 50, 3)
    assert all(np.array_equal(got[0].image[..., c], bgr[..., 0]) for c in range(3))
    # evaluation keeps gray images 2-D (published tables score them on gray values)
    records = resolve_dataset(tmp_path)
    assert records[0].load().shape == (40, 50) and records[0].dataset == tmp_path.name
    empty = tmp_path / "empty"
    empty.mkdir()
    with pytest.raises(DataError, match="no image files"):
        load_source(str(empty))


def test_slices_select_by_position(tmp_path) -> None:
    for i in range(5):
        cv2.imwrite(str(tmp_path / f"{i}.png"), _image(8, 8, i))
    names = lambda src: [r.name for r in resolve_dataset(src)]  # noqa: E731
    assert names(f"{tmp_path}[:2]") == ["0", "1"]
    assert names(f"{tmp_path}[-2:]") == ["3", "4"]
    assert names(f"{tmp_path}[:-2]") == ["0", "1", "2"]
    assert names(f"{tmp_path}[1:3]") == ["1", "2"]
    # train and validation slices of one set never overlap
    assert not set(names(f"{tmp_path}[:-2]")) & set(names(f"{tmp_path}[-2:]"))


def test_skimage_sources() -> None:
    assert [r.name for r in resolve_dataset("skimage")] == list(SKIMAGE_IMAGES)
    recs = resolve_dataset("skimage:camera,brick")
    assert [r.name for r in recs] == ["camera", "brick"]
    assert recs[0].load().shape[2] == 3  # gray samples are replicated to BGR
    with pytest.raises(DataError, match="train, val or all"):
        resolve_dataset("sample:nope")


def test_read_gt_drops_alpha_and_refuses_16_bit(tmp_path) -> None:
    bgra = np.dstack([_image(6, 7, 1), np.full((6, 7), 9, np.uint8)])
    cv2.imwrite(str(tmp_path / "a.png"), bgra)
    np.testing.assert_array_equal(read_gt(tmp_path / "a.png"), bgra[..., :3])
    cv2.imwrite(str(tmp_path / "b.png"), np.zeros((4, 4), np.uint16))
    with pytest.raises(ImageReadError, match="8-bit"):
        read_gt(tmp_path / "b.png")


def test_training_form_rounds_16_bit() -> None:
    img16 = np.full((2, 2), 257 * 200 + 100, np.uint16)
    out = as_training_image(img16)
    assert out.dtype == np.uint8 and out.shape == (2, 2, 3) and (out == 200).all()


def test_dataset_missing_raises(monkeypatch, tmp_path) -> None:
    monkeypatch.setenv("ESRGAN_LAB_DATA", str(tmp_path))
    with pytest.raises(DataError, match="Set5"):
        dataset_images("Set5")
    with pytest.raises(DataError, match="no such image folder"):
        resolve_dataset(str(tmp_path / "nope" / "x"))


def test_dataset_images_set5(data_root) -> None:
    images = dataset_images("Set5")
    assert len(images) == 5 and all(im.image.shape[2] == 3 for im in images)
    assert [im.name for im in images] == ["baby", "bird", "butterfly", "head", "woman"]
