"""ESRGAN training: the PSNR-oriented stage and the GAN stage (paper Sec. 4.1).

* Stage ``psnr``: L1 loss, Adam (beta1 0.9, beta2 0.99), learning rate 2e-4 halved
  every 2e5 iterations (configurable milestones/gamma, or a cosine schedule).
* Stage ``gan``: the generator starts from the PSNR-stage weights ("to avoid undesired
  local optima for the generator" and so the discriminator sees good images from the
  start); ``L_G = L_percep + 5e-3 L_G^Ra + 1e-2 L_1``; generator and discriminator
  learning rates 1e-4, halved at 50k, 100k, 200k and 300k iterations.

One :class:`Trainer` runs both, single-process or under ``torchrun`` with
DistributedDataParallel (gloo on CPU, nccl on CUDA); rank 0 writes everything. The step
itself is :mod:`esrgan_lab.training.steps`; checkpoints and RNG state are
:mod:`esrgan_lab.training.state`; logs :mod:`esrgan_lab.training.log`. Output layout of
``<out>``::

    config.yaml                 resolved configuration
    <stage>/log.csv             iter, losses, learning_rate, val_psnr, time_s
    <stage>/metrics.json        final numbers of the stage, with provenance
    <stage>/checkpoints/iter_XXXXXXXX/{net_g,net_d,net_g_ema}.safetensors + state.pt
    <stage>/net_g.safetensors   exported generator (+ net_g_ema.safetensors)
    net_g.safetensors           the last stage's export (+ net_g_ema.safetensors)
    metrics.json                every stage's metrics

Studies hook in with ``callbacks``: each is called as ``callback(stage, iteration,
result)`` after every step with the :class:`~esrgan_lab.training.steps.StepResult`.
"""

from __future__ import annotations

import copy
import datetime
import json
import math
import os
import shutil
import time
from collections.abc import Callable, Iterator, Sequence
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import torch
import torch.distributed as dist
from torch import nn
from torch.nn.parallel import DistributedDataParallel as DDP

from ..errors import CheckpointError, ConfigError
from ..fileio import atomic_path, atomic_write_text
from ..model.rrdbnet import RRDBNet
from ..procs import DieWithParent
from ..settings import provenance
from .config import StageConfig, TrainConfig, to_dict
from .log import CsvLog, RunningMeans
from .runtime import autocast_context, build_scheduler, init_distributed, resolve_amp
from .state import Checkpoints, export_generator, rng_state, save_tensors, seed_everything
from .steps import Ema, GanLosses, StepResult, gan_step, psnr_step

#: ``callback(stage, iteration, result)``, called after every optimisation step.
Callback = Callable[[str, int, StepResult], None]


@dataclass
class _Stage:
    """Everything one stage trains with, and where it stands."""

    name: str
    cfg: StageConfig
    folder: Path
    checkpoints: Checkpoints
    net_g: nn.Module
    g_train: nn.Module
    opt_g: torch.optim.Optimizer
    sched_g: Any
    ema: Ema | None = None
    losses: GanLosses | None = None
    net_d: nn.Module | None = None
    d_train: nn.Module | None = None
    opt_d: torch.optim.Optimizer | None = None
    sched_d: Any = None
    iteration: int = 0
    start_iteration: int = 0
    elapsed_before: float = 0.0
    best_psnr: float | None = None
    last_psnr: float | None = None

    @property
    def gan(self) -> bool:
        return self.losses is not None

    def eval_model(self) -> nn.Module:
        """The weights validation scores: the EMA copy when there is one."""
        return self.ema.model if self.ema is not None else self.net_g


# Longer than the project's ~300-line guide for a class, on purpose: one object owns a
# run's state (models, optimizers, data stream, logs) across both stages; the step, the
# state, the logs and the runtime choices already live in their own modules.
class Trainer:
    """Runs the configured stages; see the module docstring for the outputs.

    Args:
        cfg: Validated configuration.
        out_dir: Output folder (created).
        resume: Continue each stage from its latest checkpoint (a finished stage is
            skipped unless its ``total_iter`` grew). Without it, an output folder that
            already holds a stage's results is refused rather than overwritten.
        callbacks: Called after every step (module docstring).
    """

    def __init__(
        self,
        cfg: TrainConfig,
        out_dir: str | os.PathLike[str],
        resume: bool = False,
        callbacks: Sequence[Callback] = (),
    ) -> None:
        self.cfg = cfg
        self.out = Path(out_dir)
        self.resume = resume
        self.callbacks = list(callbacks)
        rt = cfg.runtime
        self.rank, self.world, self.device = init_distributed(rt.device)
        self.is_main = self.rank == 0
        self.use_cuda = self.device.type == "cuda"
        if not self.use_cuda and rt.num_threads:
            torch.set_num_threads(rt.num_threads)
        if self.use_cuda:
            torch.backends.cuda.matmul.allow_tf32 = rt.tf32
            torch.backends.cudnn.allow_tf32 = rt.tf32
            torch.backends.cudnn.benchmark = True
        self.amp_dtype = resolve_amp(rt.amp, self.device)
        self.memory_format = torch.channels_last if rt.channels_last else torch.contiguous_format
        self._train_set = None
        self._val_set = None
        self.results: dict[str, Any] = {}
        #: Micro-batches per step; a resumed run may change it (:meth:`_keep_global_batch`).
        self.accumulate = cfg.data.accumulate
        #: Taken when the run starts: the commit of the code that trains, even when commits
        #: land while it runs (``metrics.json`` is written at the end).
        self.provenance = provenance()

    # ------------------------------------------------------------------ data

    def train_set(self):
        """The training patch stream: in memory, or read from disk per sample with
        ``data.lazy`` (:class:`~esrgan_lab.data.paired.FolderPatchDataset`)."""
        from ..data.paired import FolderPatchDataset, PairedPatchDataset, paired_files
        from ..data.sources import load_source

        if self._train_set is None:
            d = self.cfg.data
            args = (self.cfg.scale, d.gt_size, d.use_flip, d.use_rot)
            if d.lazy:
                gt_files, lq_files = paired_files(d.train, d.train_lq, self.cfg.scale)
                self._train_set = FolderPatchDataset(
                    gt_files, *args, seed=self.cfg.seed, lq_files=lq_files
                )
            else:
                images = [im for src in d.train for im in load_source(src)]
                self._train_set = PairedPatchDataset(images, *args, seed=self.cfg.seed)
        return self._train_set

    def val_set(self):
        from ..data.degrade import center_crop
        from ..data.paired import ImagePair, degrade_all
        from ..data.sources import NamedImage, load_source

        if self._val_set is None and self.cfg.data.val and self.is_main:
            pairs: list[ImagePair] = []
            crop = self.cfg.data.val_crop
            for src in self.cfg.data.val:
                images = load_source(src)
                if crop is not None:
                    images = [NamedImage(im.name, center_crop(im.image, crop)) for im in images]
                pairs += degrade_all(images, self.cfg.scale, src)
            if self.cfg.data.val_max_images is not None:
                pairs = pairs[: self.cfg.data.val_max_images]
            self._val_set = pairs
        return self._val_set

    def _loader(self, stage_index: int, start_iter: int) -> Iterator[dict[str, Any]]:
        from torch.utils.data import DataLoader

        from ..data.paired import StreamSampler

        dataset = copy.copy(self.train_set())
        # A different sample stream per stage (same images, other crops).
        dataset.seed = self.cfg.seed + 7919 * stage_index
        dataset._perms = {}
        d = self.cfg.data
        kwargs: dict[str, Any] = {}
        if d.num_workers > 0:
            import multiprocessing as mp

            # fork shares the in-memory images with the workers instead of pickling them.
            if "fork" in mp.get_all_start_methods():
                kwargs["multiprocessing_context"] = "fork"
            kwargs["prefetch_factor"] = 4
            # Workers end with this process, even when it is SIGKILLed (no orphans).
            kwargs["worker_init_fn"] = DieWithParent(os.getpid(), pool_signals=False)
        a = self.accumulate
        loader = DataLoader(
            dataset,
            batch_size=d.batch_size * a,  # one rank's a micro-batches (StreamSampler)
            sampler=StreamSampler(d.batch_size, start_iter, self.rank, self.world, a),
            num_workers=d.num_workers,
            pin_memory=self.use_cuda,
            drop_last=True,
            **kwargs,
        )
        return iter(loader)

    # ------------------------------------------------------------------ models

    def model_config(self) -> dict[str, Any]:
        """RRDBNet arguments (recorded in the exported safetensors metadata)."""
        m = self.cfg.model
        arch = {} if m.arch == "rrdbnet" else {"arch": m.arch}
        return arch | {
            "num_in_ch": 3,
            "num_out_ch": 3,
            "scale": self.cfg.scale,
            "num_feat": m.num_feat,
            "num_block": m.num_block,
            "num_grow_ch": m.num_grow_ch,
            "res_scale": m.res_scale,
            "norm": m.norm,
        }

    def build_generator(self) -> RRDBNet:
        from ..weights.loading import build_model

        return build_model(self.model_config(), init_scale=self.cfg.model.init_scale)

    def _pretrained_path(self, name: str, st: StageConfig) -> Path | None:
        if st.pretrained_g:
            # A file, or a weights name (``realesrgan-x4plus``, ``lab-psnr-x4``).
            from ..weights.loading import resolve_weights

            return resolve_weights(Path(st.pretrained_g).expanduser())
        if name == "gan":
            # Paper Sec. 4.1: initialise the GAN generator with the PSNR-oriented model
            # (EMA weights when there are some, as BasicSR's param_key_g: params_ema).
            for fname in ("net_g_ema.safetensors", "net_g.safetensors"):
                candidate = self.out / "psnr" / fname
                if candidate.is_file():
                    return candidate
            raise ConfigError(
                "the gan stage needs a PSNR-oriented generator: set gan.pretrained_g or run "
                "the psnr stage first in the same --out"
            )
        return None

    def _load_pretrained(self, net_g: nn.Module, path: Path, stage: str = "psnr") -> None:
        from ..weights.checkpoints import infer_config, load_checkpoint

        state = load_checkpoint(path)
        want = self.model_config()
        found: dict[str, Any] = {}
        if want.get("arch", "rrdbnet") == "rrdbnet":
            try:
                found = infer_config(state)
            except CheckpointError:
                pass  # not an RRDBNet: load_state_dict below says what does not fit
        # A model of another scale or size: name the config key, not torch's shape dump.
        for key, cfg_key in (
            ("scale", "scale"),
            ("num_feat", "model.num_feat"),
            ("num_block", "model.num_block"),
            ("num_grow_ch", "model.num_grow_ch"),
        ):
            if key in found and key in want and found[key] != want[key]:
                what = f"x{found[key]}" if key == "scale" else f"{key} {found[key]}"
                raise ConfigError(
                    f"config key '{stage}.pretrained_g': {path} is a {what} model but "
                    f"config key {cfg_key!r} is {want[key]}"
                )
        try:
            net_g.load_state_dict(state, strict=True)
        except RuntimeError as exc:
            first = str(exc).splitlines()[0]
            raise CheckpointError(
                f"{path}: does not fit model {self.model_config()} ({first})"
            ) from None

    def _gan_parts(self, st: StageConfig) -> tuple[nn.Module | None, GanLosses]:
        """The discriminator (``None`` without a GAN term) and the stage's loss terms."""
        from ..losses.gan import GANLoss
        from ..losses.perceptual import PerceptualLoss
        from ..model.discriminators import build_discriminator

        pc, dc = st.perceptual, st.discriminator
        percep = None
        if pc is not None and pc.weight:
            percep = PerceptualLoss(
                pc.layers,
                weight=pc.weight,
                criterion=pc.criterion,
                backbone=pc.backbone,
                use_input_norm=pc.use_input_norm,
                range_norm=pc.range_norm,
            )
            if self.is_main:
                print(f"[gan] perceptual loss: {pc.backbone} ({percep.weights_source})")
        net_d = gan_loss = None
        if st.gan_weight:
            net_d = build_discriminator(dc.type, 3, dc.num_feat, self.cfg.data.gt_size)
            gan_loss = GANLoss(st.gan_type, st.gan_weight)
        return net_d, GanLosses(st.pixel_weight, percep, gan_loss)

    # ------------------------------------------------------------------ stages

    def _setup_stage(self, name: str, index: int, stage_dir: Path) -> _Stage:
        """Models, losses, optimizers and schedulers of a stage, restored if resuming."""
        st = self.cfg.stage(name)
        seed_everything(self.cfg.seed + index)
        ckpts = Checkpoints(stage_dir, self.cfg.logging.keep_checkpoints)
        start_iter, ckpt_dir = ckpts.latest() if self.resume else (0, None)
        net_g = self.build_generator()
        if ckpt_dir is None and (pretrained := self._pretrained_path(name, st)) is not None:
            self._load_pretrained(net_g, pretrained, name)
        net_d, losses = self._gan_parts(st) if name == "gan" else (None, None)
        opt_g = _adam(net_g, st.learning_rate, st.betas, st.weight_decay)
        stage = _Stage(name, st, stage_dir, ckpts, net_g, net_g, opt_g, None, losses=losses)
        stage.sched_g = build_scheduler(opt_g, st, st.milestones, st.gamma)
        stage.ema = Ema(net_g, st.ema_decay) if st.ema_decay else None
        if net_d is not None:
            dc = st.discriminator
            stage.net_d = stage.d_train = net_d
            stage.opt_d = _adam(net_d, dc.learning_rate, dc.betas, dc.weight_decay)
            stage.sched_d = build_scheduler(stage.opt_d, st, dc.milestones, dc.gamma)
        if ckpt_dir is not None:
            self._restore(stage, ckpt_dir, start_iter)
        self._place(stage)
        return stage

    def _restore(self, stage: _Stage, ckpt_dir: Path, start_iter: int) -> None:
        from .state import set_rng_state

        nets = {"net_g": stage.net_g, "net_d": stage.net_d}
        nets["net_g_ema"] = stage.ema.model if stage.ema is not None else None
        saved = Checkpoints.restore(ckpt_dir, nets)
        stage.opt_g.load_state_dict(saved["opt_g"])
        stage.sched_g.load_state_dict(saved["sched_g"])
        if stage.opt_d is not None:
            stage.opt_d.load_state_dict(saved["opt_d"])
            stage.sched_d.load_state_dict(saved["sched_d"])
        set_rng_state(saved["rng"])
        self._keep_global_batch(saved)
        stage.iteration = stage.start_iteration = start_iter
        stage.elapsed_before = float(saved.get("elapsed_s", 0.0))
        stage.best_psnr = saved.get("best_psnr")
        if self.is_main:
            print(f"[{stage.name}] resumed from {ckpt_dir} at iteration {start_iter}")

    @property
    def global_batch(self) -> int:
        """Samples per optimizer step over all ranks: batch_size * accumulate * world."""
        return self.cfg.data.batch_size * self.accumulate * self.world

    def _keep_global_batch(self, saved: dict[str, Any]) -> None:
        """Resume a run on another world size with the same global batch (and so the same
        sample stream, :class:`~esrgan_lab.data.paired.StreamSampler`): the number of
        accumulated micro-batches makes up the difference."""
        wanted = int(saved.get("global_batch", self.global_batch))
        if wanted == self.global_batch:
            return
        per_step = self.cfg.data.batch_size * self.world
        if wanted % per_step:
            raise ConfigError(
                f"the checkpoint was trained with a global batch of {wanted}; batch_size "
                f"{self.cfg.data.batch_size} on {self.world} rank(s) cannot make it up: set "
                "data.batch_size so that batch_size * world size divides it"
            )
        self.accumulate = wanted // per_step
        if self.is_main:
            print(
                f"resuming a run of global batch {wanted} on {self.world} rank(s): "
                f"{self.accumulate} micro-batches of {self.cfg.data.batch_size} per step"
            )

    def _place(self, stage: _Stage) -> None:
        """Move models (and optimizer state) to the device; wrap them for DDP."""
        dev, mf = self.device, self.memory_format
        for net in (stage.net_g, stage.net_d, stage.ema and stage.ema.model):
            if net is not None:
                net.to(dev, memory_format=mf)
        if stage.losses is not None:
            for term in (stage.losses.perceptual, stage.losses.gan):
                if term is not None:
                    term.to(dev, memory_format=mf)
        for opt in (stage.opt_g, stage.opt_d):
            for s in opt.state.values() if opt is not None else ():
                for k, v in s.items():
                    if torch.is_tensor(v) and k != "step":
                        s[k] = v.to(dev)
        if self.world > 1:
            ids = [dev.index] if self.use_cuda else None
            stage.g_train = DDP(stage.net_g, device_ids=ids)
            if stage.net_d is not None:
                stage.d_train = DDP(stage.net_d, device_ids=ids)

    def run(self) -> dict[str, Any]:
        """Run every configured stage; returns ``{stage: metrics}``."""
        import yaml

        if self.is_main:
            self.out.mkdir(parents=True, exist_ok=True)
            atomic_write_text(
                self.out / "config.yaml", yaml.safe_dump(to_dict(self.cfg), sort_keys=False)
            )
        for index, name in enumerate(self.cfg.stages):
            self.results[name] = self.run_stage(name, index)
        if self.is_main and self.cfg.stages:
            last = self.cfg.stages[-1]
            for fname in ("net_g.safetensors", "net_g_ema.safetensors"):
                src = self.out / last / fname
                if src.is_file():
                    with atomic_path(self.out / fname) as tmp:
                        shutil.copyfile(src, tmp)
                elif (self.out / fname).is_file():
                    (self.out / fname).unlink()
            atomic_write_text(self.out / "metrics.json", json.dumps(self.results, indent=2) + "\n")
        if self.world > 1:
            dist.barrier()
        return self.results

    def run_stage(self, name: str, index: int) -> dict[str, Any]:
        """Train one stage to its ``total_iter`` (or time budget); returns its metrics."""
        stage_dir = self.out / name
        ckpts = Checkpoints(stage_dir)
        done = ckpts.list() or (stage_dir / "net_g.safetensors").exists()
        if not self.resume and done:
            raise ConfigError(
                f"{stage_dir} already holds results; pass --resume to continue or choose "
                "another --out"
            )
        latest, _ = ckpts.latest()
        finished = stage_dir / "metrics.json"
        if self.resume and latest >= self.cfg.stage(name).total_iter and finished.is_file():
            if self.is_main:
                print(f"[{name}] already complete at iteration {latest}; skipping")
            return json.loads(finished.read_text())
        stage = self._setup_stage(name, index, stage_dir)
        if self.is_main:
            stage_dir.mkdir(parents=True, exist_ok=True)
        timer = time.perf_counter()
        status = self._train_loop(stage, index)
        return self._finish(stage, time.perf_counter() - timer, status)

    # ------------------------------------------------------------------ loop

    def _step(self, stage: _Stage, lq: torch.Tensor, gt: torch.Tensor) -> StepResult:
        autocast = autocast_context(self.device, self.amp_dtype)
        if stage.gan:
            return gan_step(
                stage.g_train,
                stage.net_d,
                stage.opt_g,
                stage.opt_d,
                lq,
                gt,
                stage.losses,
                d_train=stage.d_train,
                autocast=autocast,
                accumulate=self.accumulate,
            )
        return psnr_step(
            stage.g_train,
            stage.opt_g,
            lq,
            gt,
            pixel_weight=stage.cfg.pixel_weight,
            autocast=autocast,
            accumulate=self.accumulate,
        )

    def _train_loop(self, stage: _Stage, index: int) -> dict[str, Any]:
        """Iterate to ``total_iter``; log, validate and checkpoint on the configured cadence.

        Returns ``{"stopped_by_time_budget": bool, "diverged_at": int | None,
        "train_seconds": float}``.
        """
        st, lg, dev, mf = stage.cfg, self.cfg.logging, self.device, self.memory_format
        log = CsvLog(stage.folder, stage.name, stage.iteration) if self.is_main else None
        pbar = self._progress(stage)
        batches = self._loader(index, stage.iteration)
        means = RunningMeans()
        start = time.perf_counter()
        budget_s = st.max_minutes * 60.0 if st.max_minutes is not None else None
        status: dict[str, Any] = {"stopped_by_time_budget": False, "diverged_at": None}
        last_saved = stage.iteration if self.resume and stage.iteration else -1
        stage.net_g.train()
        if stage.net_d is not None:
            stage.net_d.train()
        if lg.val_at_start and stage.iteration == 0 and self.is_main:
            self._validate_row(stage, log, {"iter": 0}, time.perf_counter() - start)
        try:
            while stage.iteration < st.total_iter:
                batch = next(batches)
                lq = batch["lq"].to(dev, non_blocking=True).contiguous(memory_format=mf)
                gt = batch["gt"].to(dev, non_blocking=True).contiguous(memory_format=mf)
                result = self._step(stage, lq, gt)
                row = {"learning_rate": stage.opt_g.param_groups[0]["lr"]}
                if stage.opt_d is not None:
                    row["learning_rate_d"] = stage.opt_d.param_groups[0]["lr"]
                stage.sched_g.step()
                if stage.sched_d is not None:
                    stage.sched_d.step()
                if stage.ema is not None:
                    stage.ema.update(stage.net_g)
                stage.iteration += 1
                means.add(result.losses)
                for callback in self.callbacks:
                    callback(stage.name, stage.iteration, result)
                it = stage.iteration
                over = budget_s is not None and self._over_budget(start, budget_s)
                stop = over and it < st.total_iter
                last = it == st.total_iter
                do_log = it % lg.log_every == 0 or last or stop
                if do_log:
                    row.update(means.pop(self.world))
                    if not all(math.isfinite(v) for k, v in row.items() if k.startswith("l_")):
                        status["diverged_at"] = it
                        stop = True
                if it % lg.val_every == 0 or last or stop:
                    self._validate_row(stage, log, row, time.perf_counter() - start)
                elif do_log and log is not None:
                    self._write_row(stage, log, row, time.perf_counter() - start)
                if pbar is not None:
                    pbar.update(1)
                if self.is_main and (it % lg.save_every == 0 or stop):
                    self._save(stage, time.perf_counter() - start)
                    last_saved = it
                if stop:
                    status["stopped_by_time_budget"] = over and status["diverged_at"] is None
                    break
        finally:
            if pbar is not None:
                pbar.close()
            if log is not None:
                log.close()
            del batches
        status["train_seconds"] = time.perf_counter() - start
        if self.is_main and last_saved != stage.iteration:
            self._save(stage, status["train_seconds"])
        return status

    def _over_budget(self, start: float, budget_s: float) -> bool:
        over = time.perf_counter() - start >= budget_s
        if self.world > 1:  # every rank stops at the same iteration
            flag = torch.tensor([1.0 if over else 0.0], device=self.device)
            dist.broadcast(flag, 0)
            over = bool(flag.item())
        return over

    def _progress(self, stage: _Stage):
        if not (self.is_main and self.cfg.logging.progress):
            return None
        from tqdm.auto import tqdm

        return tqdm(
            total=stage.cfg.total_iter,
            initial=stage.iteration,
            desc=f"{self.cfg.name}:{stage.name}",
            mininterval=1.0,
        )

    def _validate_row(self, stage: _Stage, log: CsvLog | None, row: dict, seconds: float) -> None:
        if self.is_main:
            stage.last_psnr = self.validate(stage.eval_model())
            stage.net_g.train()
            if stage.last_psnr is not None:
                row["val_psnr"] = stage.last_psnr
                best = stage.best_psnr
                stage.best_psnr = stage.last_psnr if best is None else max(best, stage.last_psnr)
        if log is not None:
            self._write_row(stage, log, row, seconds)

    def _write_row(self, stage: _Stage, log: CsvLog, row: dict, seconds: float) -> None:
        formatted = {k: (f"{v:.6g}" if isinstance(v, float) else v) for k, v in row.items()}
        if "val_psnr" in row:
            formatted["val_psnr"] = f"{row['val_psnr']:.4f}"
        formatted["iter"] = row.get("iter", stage.iteration)
        formatted["time_s"] = f"{stage.elapsed_before + seconds:.2f}"
        log.write(formatted)

    def _save(self, stage: _Stage, seconds: float) -> None:
        state = {
            "iteration": stage.iteration,
            "stage": stage.name,
            "opt_g": stage.opt_g.state_dict(),
            "sched_g": stage.sched_g.state_dict(),
            "rng": rng_state(),
            "elapsed_s": stage.elapsed_before + seconds,
            "best_psnr": stage.best_psnr,
            "global_batch": self.global_batch,
            "world_size": self.world,
        }
        if stage.opt_d is not None:
            state["opt_d"] = stage.opt_d.state_dict()
            state["sched_d"] = stage.sched_d.state_dict()
        nets = {"net_g": stage.net_g, "net_d": stage.net_d}
        nets["net_g_ema"] = stage.ema.model if stage.ema is not None else None
        stage.checkpoints.save(stage.iteration, nets, state)

    # ------------------------------------------------------------------ validation

    @torch.no_grad()
    def validate(self, model: nn.Module) -> float | None:
        """Mean Y-PSNR (crop_border = scale) on the validation images (rank 0 only)."""
        from ..evaluation.evaluate import score_pairs

        val = self.val_set()
        if not val:
            return None
        model.eval()
        report = score_pairs(model, val, self.cfg.scale)
        return float(sum(s.psnr for s in report.scores) / len(report.scores))

    # ------------------------------------------------------------------ results

    def _finish(self, stage: _Stage, seconds: float, status: dict[str, Any]) -> dict[str, Any]:
        """Export the generator and write the stage's ``metrics.json``."""
        st, cfg, it = stage.cfg, self.cfg, stage.iteration
        ran = it - stage.start_iteration
        metrics: dict[str, Any] = {
            "stage": stage.name,
            "iterations": it,
            "total_iter": st.total_iter,
            "stopped_by_time_budget": status["stopped_by_time_budget"],
            "diverged_at": status["diverged_at"],
            "iterations_this_run": ran,
            "train_seconds_this_run": round(status["train_seconds"], 3),
            "iters_per_second": round(ran / status["train_seconds"], 4)
            if status["train_seconds"]
            else None,
            "train_seconds_total": round(stage.elapsed_before + status["train_seconds"], 3),
            "val_psnr_y": stage.last_psnr,
            "val_model": "ema" if stage.ema is not None else "net_g",
            "best_val_psnr_y": stage.best_psnr,
            "val_images": len(self._val_set) if self._val_set else 0,
            "world_size": self.world,
            "accumulate": self.accumulate,
            "global_batch": self.global_batch,
            "device": str(self.device)
            if not self.use_cuda
            else torch.cuda.get_device_name(self.device),
            "amp": "bf16" if self.amp_dtype is not None else "none",
            "channels_last": self.memory_format == torch.channels_last,
            "model": self.model_config(),
            "num_params_g": sum(p.numel() for p in stage.net_g.parameters()),
            "provenance": {
                **self.provenance,
                "finished": datetime.datetime.now(datetime.UTC).isoformat(timespec="seconds"),
            },
        }
        if stage.gan:
            percep = stage.losses.perceptual
            metrics["perceptual_backbone"] = st.perceptual.backbone if percep else None
            metrics["perceptual_weights"] = percep.weights_source if percep else None
            metrics["discriminator"] = st.discriminator.type if stage.net_d else None
            metrics["gan_type"] = st.gan_type if stage.net_d else None
        if self.is_main:
            dtype = torch.float16 if cfg.logging.export_dtype == "float16" else torch.float32
            export_generator(
                stage.net_g, stage.folder / "net_g.safetensors", self.model_config(), dtype
            )
            if stage.ema is not None:
                export_generator(
                    stage.ema.model,
                    stage.folder / "net_g_ema.safetensors",
                    self.model_config(),
                    dtype,
                )
            atomic_write_text(stage.folder / "metrics.json", json.dumps(metrics, indent=2) + "\n")
        if cfg.logging.dump_rank_weights:
            rank_dir = stage.folder / f"rank{self.rank}"
            rank_dir.mkdir(parents=True, exist_ok=True)
            save_tensors(stage.net_g.state_dict(), rank_dir / "net_g.safetensors")
            if stage.net_d is not None:
                save_tensors(dict(stage.net_d.named_parameters()), rank_dir / "net_d.safetensors")
        if self.world > 1:
            dist.barrier()
        return metrics


def _adam(
    net: nn.Module, learning_rate: float, betas: Sequence[float], weight_decay: float
) -> torch.optim.Adam:
    return torch.optim.Adam(
        net.parameters(), lr=learning_rate, betas=tuple(betas), weight_decay=weight_decay
    )


def default_out_dir(cfg: TrainConfig) -> Path:
    """``runs/<name>`` unless the config sets ``out``."""
    return Path(cfg.out) if cfg.out else Path("runs") / cfg.name


def train(
    cfg: TrainConfig,
    out_dir: str | os.PathLike[str] | None = None,
    resume: bool = False,
    callbacks: Sequence[Callback] = (),
) -> dict[str, Any]:
    """Run a training config; returns ``{stage: metrics}`` (see :class:`Trainer`)."""
    threads = torch.get_num_threads()
    out = out_dir if out_dir is not None else default_out_dir(cfg)
    trainer = Trainer(cfg, out, resume, callbacks)
    try:
        return trainer.run()
    finally:
        torch.set_num_threads(threads)  # runtime.num_threads is for this run only
        if trainer.world > 1 and dist.is_initialized():
            dist.destroy_process_group()
