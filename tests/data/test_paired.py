"""Paired data: aligned GT/LQ patches, stateless seeded augmentation, samplers, val pairs."""

from __future__ import annotations

import numpy as np
import pytest
import torch
from torch.utils.data import DataLoader

from esrgan_lab.data.degrade import bicubic_degrade
from esrgan_lab.data.images import tensor_to_array
from esrgan_lab.data.paired import (
    FolderPatchDataset,
    ImagePair,
    PairedImageSet,
    PairedPatchDataset,
    StreamSampler,
    augment,
    paired_files,
)
from esrgan_lab.data.sources import NamedImage
from esrgan_lab.errors import DataError


def _smooth_random_image(h: int, w: int, seed: int) -> np.ndarray:
    """Random but smooth uint8 colour image (structure survives x4 downsampling)."""
    rng = np.random.default_rng(seed)
    small = rng.random((h // 8 + 2, w // 8 + 2, 3))
    big = np.kron(small, np.ones((8, 8, 1)))[:h, :w]
    big = big + 0.15 * rng.random((h, w, 3))
    return np.clip(big / big.max() * 255, 0, 255).astype(np.uint8)


@pytest.fixture(scope="module")
def images() -> list[NamedImage]:
    return [NamedImage(f"img{i}", _smooth_random_image(90 + 10 * i, 110, i)) for i in range(3)]


def _u8(t: torch.Tensor) -> np.ndarray:
    """A sample tensor back to the uint8 array it was made from."""
    return tensor_to_array(t)


def test_patches_are_aligned_under_every_augmentation(images) -> None:
    """Bicubic-downsampling the GT patch reproduces the LQ patch away from its border."""
    ds = PairedPatchDataset(images, scale=4, gt_size=48, seed=3)
    for pos in range(24):
        item = ds[pos]
        gt, lq = _u8(item["gt"]), _u8(item["lq"])
        assert gt.shape == (48, 48, 3) and lq.shape == (12, 12, 3)
        ref = bicubic_degrade(gt, 4).astype(int)
        assert np.abs(ref[3:-3, 3:-3] - lq[3:-3, 3:-3].astype(int)).max() <= 1, pos


def test_patch_is_a_crop_of_the_cached_pair_without_augmentation(images) -> None:
    ds = PairedPatchDataset(images, 4, 32, use_flip=False, use_rot=False, seed=0)
    for pos in range(6):
        item = ds[pos]
        gt_full, lq_full = ds.pairs[item["index"]]
        gt, lq = _u8(item["gt"]), _u8(item["lq"])
        hits = [
            (y, x)
            for y in range(0, gt_full.shape[0] - 31, 4)
            for x in range(0, gt_full.shape[1] - 31, 4)
            if np.array_equal(gt_full[y : y + 32, x : x + 32], gt)
        ]
        assert len(hits) == 1
        y, x = hits[0]
        assert np.array_equal(lq_full[y // 4 : y // 4 + 8, x // 4 : x // 4 + 8], lq)
        assert np.array_equal(lq_full, bicubic_degrade(images[item["index"]].image, 4))


def test_samples_are_a_pure_function_of_seed_and_position(images) -> None:
    a = PairedPatchDataset(images, 4, 32, seed=5)
    b = PairedPatchDataset(images, 4, 32, seed=5)
    c = PairedPatchDataset(images, 4, 32, seed=6)
    for pos in (0, 7, 100):
        assert torch.equal(a[pos]["gt"], b[pos]["gt"])
    assert torch.equal(b[7]["gt"], b[7]["gt"])
    assert not all(torch.equal(a[p]["gt"], c[p]["gt"]) for p in range(6))
    # each epoch visits every image once
    n = len(a)
    for epoch in range(3):
        assert sorted(a[epoch * n + k]["index"] for k in range(n)) == list(range(n))


def test_workers_give_the_same_batches_as_the_main_process(images) -> None:
    ds = PairedPatchDataset(images, 4, 32, seed=1)

    def batches(workers: int) -> list[torch.Tensor]:
        loader = DataLoader(
            ds, batch_size=2, sampler=StreamSampler(2, start_iter=3), num_workers=workers
        )
        it = iter(loader)
        return [next(it)["gt"] for _ in range(3)]

    for x, y in zip(batches(0), batches(2)):
        assert torch.equal(x, y)


def test_stream_sampler_shards_ranks_and_resumes() -> None:
    def take(sampler, n):
        it = iter(sampler)
        return [next(it) for _ in range(n)]

    single = take(StreamSampler(4), 4 * 5)
    r0 = take(StreamSampler(2, rank=0, world_size=2), 2 * 5)
    r1 = take(StreamSampler(2, rank=1, world_size=2), 2 * 5)
    for i in range(5):  # the global batch of iteration i is the same
        assert sorted(r0[2 * i : 2 * i + 2] + r1[2 * i : 2 * i + 2]) == single[4 * i : 4 * i + 4]
    assert take(StreamSampler(4, start_iter=3), 8) == single[12:20]


def test_stream_sampler_accumulation_is_world_size_invariant() -> None:
    """Global batch 8 as 2 ranks x 2 micro-batches, 4 ranks x 1, or 1 rank x 4: the same
    samples in every iteration, and the same micro-batches in the same order."""

    def take(sampler, n):
        it = iter(sampler)
        return [next(it) for _ in range(n)]

    iters = 3
    one = take(StreamSampler(2, accumulate=4), 8 * iters)  # one process, 4 micro-batches
    four = [take(StreamSampler(2, rank=r, world_size=4), 2 * iters) for r in range(4)]
    two = [take(StreamSampler(2, rank=r, world_size=2, accumulate=2), 4 * iters) for r in (0, 1)]
    for i in range(iters):
        micro_one = [one[8 * i + 2 * k : 8 * i + 2 * k + 2] for k in range(4)]
        assert micro_one == [four[r][2 * i : 2 * i + 2] for r in range(4)]
        # rank r's micro-batch a is block a * W + r
        blocks = {
            a * 2 + r: two[r][4 * i + 2 * a : 4 * i + 2 * a + 2] for r in (0, 1) for a in (0, 1)
        }
        assert [blocks[j] for j in range(4)] == micro_one
    # accumulate 1 is the stream the trainer has always used
    assert take(StreamSampler(2, rank=1, world_size=2, accumulate=1), 6) == take(
        StreamSampler(2, rank=1, world_size=2), 6
    )


def test_folder_dataset_streams_the_same_samples_as_in_memory(images, tmp_path) -> None:
    """Read per sample from disk (GT only: degraded on read), the stream is the in-memory one."""
    import cv2

    files = []
    for im in images:
        files.append(tmp_path / f"{im.name}.png")
        cv2.imwrite(str(files[-1]), im.image)
    memory = PairedPatchDataset(images, scale=4, gt_size=32, seed=5)
    disk = FolderPatchDataset(files, scale=4, gt_size=32, seed=5)
    assert len(disk) == len(memory) and disk.names == memory.names
    for position in (0, 1, 2, 7, 11):
        a, b = memory[position], disk[position]
        assert a["index"] == b["index"]
        assert torch.equal(a["gt"], b["gt"]) and torch.equal(a["lq"], b["lq"])
    # with paired LQ files (named <stem>x4 as in DIV2K), those are used as they are
    lq_dir = tmp_path / "lq"
    lq_dir.mkdir()
    for im in images:
        h, w = (s // 4 for s in im.image.shape[:2])
        lq = cv2.resize(im.image[: 4 * h, : 4 * w], (w, h), interpolation=cv2.INTER_AREA)
        cv2.imwrite(str(lq_dir / f"{im.name}x4.png"), lq)
    gt_files, lq_files = paired_files([str(tmp_path)], [str(lq_dir)], 4)
    assert [f.name for f in lq_files] == [f"{im.name}x4.png" for im in images]
    paired = FolderPatchDataset(gt_files, scale=4, gt_size=32, seed=5, lq_files=lq_files)
    gt, lq = paired.pair(0)
    assert np.array_equal(lq, cv2.imread(str(lq_files[0])))
    assert gt.shape[:2] == (lq.shape[0] * 4, lq.shape[1] * 4)
    sample = paired[3]
    assert sample["gt"].shape == (3, 32, 32) and sample["lq"].shape == (3, 8, 8)


def test_folder_dataset_errors_name_the_file(images, tmp_path) -> None:
    import cv2

    small = tmp_path / "small.png"
    cv2.imwrite(str(small), images[0].image[:20, :20])
    with pytest.raises(DataError, match="small.png.*smaller than gt_size"):
        FolderPatchDataset([small], scale=4, gt_size=32)[0]
    big = tmp_path / "big.png"
    cv2.imwrite(str(big), images[0].image)
    wrong = tmp_path / "wrong.png"
    cv2.imwrite(str(wrong), images[0].image[:10, :10])
    with pytest.raises(DataError, match="wrong.png.*not the x4 LQ of big.png"):
        FolderPatchDataset([big], scale=4, gt_size=32, lq_files=[wrong])[0]
    with pytest.raises(DataError, match="1 LQ files for 2 GT files"):
        FolderPatchDataset([big, small], scale=4, gt_size=32, lq_files=[wrong])
    with pytest.raises(DataError, match="data.lazy reads files"):
        paired_files(["sample:train"], [], 4)
    (tmp_path / "lq").mkdir()
    cv2.imwrite(str(tmp_path / "lq" / "other.png"), images[0].image[:10, :10])
    with pytest.raises(DataError, match="no LQ image for big"):
        paired_files([str(tmp_path)], [str(tmp_path / "lq")], 4)


def test_augment_gives_the_eight_dihedral_transforms() -> None:
    img = np.arange(2 * 3 * 1).reshape(2, 3, 1)
    outs = {
        augment([img], h, v, r)[0].tobytes() + bytes(augment([img], h, v, r)[0].shape)
        for h in (False, True)
        for v in (False, True)
        for r in (False, True)
    }
    expect = set()
    for k in range(4):
        for flip in (False, True):
            t = np.rot90(img, k)
            t = t[:, ::-1] if flip else t
            expect.add(np.ascontiguousarray(t).tobytes() + bytes(t.shape))
    assert outs == expect


def test_too_small_or_empty_inputs_raise(images) -> None:
    with pytest.raises(DataError, match="smaller than gt_size"):
        PairedPatchDataset(images, 4, 128)
    with pytest.raises(DataError, match="empty"):
        PairedPatchDataset([], 4, 32)


def test_validation_pairs(images) -> None:
    val = PairedImageSet(images, 4, dataset="synthetic")
    pair = next(iter(val))
    assert isinstance(pair, ImagePair) and len(val) == 3 and val.scale == 4
    assert (pair.dataset, pair.name) == ("synthetic", "img0")
    assert pair.gt.shape == (88, 108, 3) and pair.lq.shape == (22, 27, 3)
    assert np.array_equal(pair.gt, images[0].image[:88, :108])
    assert np.array_equal(pair.lq, bicubic_degrade(pair.gt, 4))
