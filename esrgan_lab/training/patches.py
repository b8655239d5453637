"""The training patch stream of a run: the dataset of ``data.train`` and its loader.

* :func:`train_patches` - random ``gt_size`` crops (flips, rotations) of the training
  images with their LQ, held in memory or read per sample with ``data.lazy``.
* :func:`patch_loader` - one rank's batches of a stage, from any iteration on, in the
  order :class:`~esrgan_lab.data.paired.StreamSampler` fixes (the same global batches for
  any world size and accumulation, so a resumed run continues the exact stream).
"""

from __future__ import annotations

import copy
import os
from collections.abc import Iterator
from typing import TYPE_CHECKING, Any

from ..procs import DieWithParent
from .config import TrainConfig

if TYPE_CHECKING:
    from ..data.paired import FolderPatchDataset, PairedPatchDataset


def train_patches(cfg: TrainConfig) -> FolderPatchDataset | PairedPatchDataset:
    """The training patch stream: in memory, or read from disk per sample with
    ``data.lazy`` (:class:`~esrgan_lab.data.paired.FolderPatchDataset`)."""
    from ..data.paired import FolderPatchDataset, PairedPatchDataset, paired_files
    from ..data.sources import load_source

    d = cfg.data
    args = (cfg.scale, d.gt_size, d.use_flip, d.use_rot)
    if d.lazy:
        gt_files, lq_files = paired_files(d.train, d.train_lq, cfg.scale)
        return FolderPatchDataset(gt_files, *args, seed=cfg.seed, lq_files=lq_files)
    images = [im for src in d.train for im in load_source(src)]
    return PairedPatchDataset(images, *args, seed=cfg.seed)


def patch_loader(
    patches: FolderPatchDataset | PairedPatchDataset,
    cfg: TrainConfig,
    *,
    stage_index: int,
    start_iter: int,
    rank: int,
    world: int,
    accumulate: int,
    pin_memory: bool,
) -> Iterator[dict[str, Any]]:
    """Endless batches ``{"lq", "gt"}`` of ``batch_size * accumulate`` patches (this
    rank's micro-batches of one step) for stage ``stage_index``, from ``start_iter`` on."""
    from torch.utils.data import DataLoader

    from ..data.paired import StreamSampler

    dataset = copy.copy(patches)
    # A different sample stream per stage (same images, other crops).
    dataset.seed = cfg.seed + 7919 * stage_index
    dataset._perms = {}
    d = cfg.data
    kwargs: dict[str, Any] = {}
    if d.num_workers > 0:
        import multiprocessing as mp

        # fork shares the in-memory images with the workers instead of pickling them.
        if "fork" in mp.get_all_start_methods():
            kwargs["multiprocessing_context"] = "fork"
        kwargs["prefetch_factor"] = 4
        # Workers end with this process, even when it is SIGKILLed (no orphans).
        kwargs["worker_init_fn"] = DieWithParent(os.getpid(), pool_signals=False)
    loader = DataLoader(
        dataset,
        batch_size=d.batch_size * accumulate,  # one rank's micro-batches (StreamSampler)
        sampler=StreamSampler(d.batch_size, start_iter, rank, world, accumulate),
        num_workers=d.num_workers,
        pin_memory=pin_memory,
        drop_last=True,
        **kwargs,
    )
    return iter(loader)
