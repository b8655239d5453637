"""ESRGAN training: the PSNR-oriented stage and the GAN stage (paper Sec. 4.1).

* Stage ``psnr``: L1 loss, Adam (beta1 0.9, beta2 0.99), learning rate 2e-4 halved
  every 2e5 iterations (configurable milestones/gamma, or a cosine schedule).
* Stage ``gan``: the generator starts from the PSNR-stage weights ("to avoid undesired
  local optima for the generator" and so the discriminator sees good images from the
  start); ``L_G = L_percep + 5e-3 L_G^Ra + 1e-2 L_1``; generator and discriminator
  learning rates 1e-4, halved at 50k, 100k, 200k and 300k iterations.

One :class:`Trainer` runs both, single-process or under ``torchrun`` with
DistributedDataParallel (gloo on CPU, nccl on CUDA); rank 0 writes everything. It holds
the loop; the rest lives along its seams: what a stage trains :mod:`.models`, a stage's
state, checkpoint and export :mod:`.stage` (layout and RNG state :mod:`.state`), the
step :mod:`.steps`, the patch stream :mod:`.patches`, validation :mod:`.validation`,
logs :mod:`.log`. Output layout of ``<out>``::

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

import datetime
import json
import math
import os
import shutil
import time
from collections.abc import Callable, Iterator, Sequence
from pathlib import Path
from typing import Any

import torch
import torch.distributed as dist
from torch import nn

from ..errors import ConfigError
from ..fileio import atomic_path, atomic_write_text
from ..model.rrdbnet import RRDBNet
from ..model.spec import ModelSpec
from ..settings import provenance
from .config import TrainConfig, to_dict
from .log import CsvLog, RunningMeans, format_row, progress_bar
from .models import build_generator, load_pretrained, pretrained_path
from .patches import patch_loader, train_patches
from .runtime import autocast_context, init_distributed, resolve_amp
from .stage import Stage
from .state import Checkpoints, accumulate_for, seed_everything, set_rng_state
from .steps import StepResult
from .validation import Validator

#: ``callback(stage, iteration, result)``, called after every optimisation step.
Callback = Callable[[str, int, StepResult], None]


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
        self.validator = Validator(data=cfg.data, scale=cfg.scale, enabled=self.is_main)
        self.results: dict[str, Any] = {}
        #: Micro-batches per step; a resumed run may change it (:meth:`_keep_global_batch`).
        self.accumulate = cfg.data.accumulate
        #: Taken when the run starts: the commit of the code that trains, even when commits
        #: land while it runs (``metrics.json`` is written at the end).
        self.provenance = provenance()

    # ------------------------------------------------------------------ data and models

    def train_set(self):
        """The training patch stream (:func:`~esrgan_lab.training.patches.train_patches`)."""
        if self._train_set is None:
            self._train_set = train_patches(self.cfg)
        return self._train_set

    def val_set(self):
        """The validation pairs (:meth:`~.validation.Validator.pairs`); ``None`` off rank 0."""
        return self.validator.pairs()

    def validate(self, model: nn.Module) -> float | None:
        """Mean Y-PSNR (crop_border = scale) on the validation images (rank 0 only)."""
        return self.validator.score(model)

    def _loader(self, stage_index: int, start_iter: int) -> Iterator[dict[str, Any]]:
        """This rank's batches of a stage (:func:`~.patches.patch_loader`)."""
        return patch_loader(
            self.train_set(),
            self.cfg,
            stage_index=stage_index,
            start_iter=start_iter,
            rank=self.rank,
            world=self.world,
            accumulate=self.accumulate,
            pin_memory=self.use_cuda,
        )

    @property
    def spec(self) -> ModelSpec:
        """The generator's architecture (recorded in the exported safetensors metadata)."""
        return self.cfg.spec

    def build_generator(self) -> RRDBNet:
        """The untrained generator (seeded by the caller)."""
        return build_generator(self.cfg)

    # ------------------------------------------------------------------ stages

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

    def _setup_stage(self, name: str, index: int, stage_dir: Path) -> Stage:
        """Models, losses, optimizers and schedulers of a stage, restored if resuming."""
        seed_everything(self.cfg.seed + index)
        start_iter, ckpt_dir = Checkpoints(stage_dir).latest() if self.resume else (0, None)
        net_g = self.build_generator()
        pretrained = pretrained_path(self.cfg, self.out, name) if ckpt_dir is None else None
        if pretrained is not None:
            load_pretrained(net_g, pretrained, self.spec, name)
        stage = Stage.build(
            cfg=self.cfg, name=name, folder=stage_dir, net_g=net_g, verbose=self.is_main
        )
        if ckpt_dir is not None:
            saved = stage.restore(ckpt_dir, start_iter)
            set_rng_state(saved["rng"])
            self._keep_global_batch(saved)
            if self.is_main:
                print(f"[{name}] resumed from {ckpt_dir} at iteration {start_iter}")
        stage.place(self.device, self.memory_format, self.world)
        return stage

    @property
    def global_batch(self) -> int:
        """Samples per optimizer step over all ranks: batch_size * accumulate * world."""
        return self.cfg.data.batch_size * self.accumulate * self.world

    def _keep_global_batch(self, saved: dict[str, Any]) -> None:
        """Resume a run on another world size with the same global batch (and so the same
        sample stream): :func:`~esrgan_lab.training.state.accumulate_for` micro-batches."""
        wanted = int(saved.get("global_batch", self.global_batch))
        if wanted == self.global_batch:
            return
        self.accumulate = accumulate_for(wanted, self.cfg.data.batch_size, self.world)
        if self.is_main:
            print(
                f"resuming a run of global batch {wanted} on {self.world} rank(s): "
                f"{self.accumulate} micro-batches of {self.cfg.data.batch_size} per step"
            )

    # ------------------------------------------------------------------ loop

    def _train_loop(self, stage: Stage, index: int) -> dict[str, Any]:
        """Iterate to ``total_iter``; log, validate and checkpoint on the configured cadence.

        Returns ``{"stopped_by_time_budget": bool, "diverged_at": int | None,
        "train_seconds": float}``.
        """
        st, lg = stage.cfg, self.cfg.logging
        log = CsvLog(stage.folder, stage.name, stage.iteration) if self.is_main else None
        pbar = None
        if self.is_main and lg.progress:
            pbar = progress_bar(st.total_iter, stage.iteration, f"{self.cfg.name}:{stage.name}")
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
                row = self._iterate(stage, next(batches), means)  # step, schedules, EMA
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

    def _iterate(self, stage: Stage, batch: dict[str, Any], means: RunningMeans) -> dict:
        """One iteration on ``batch``: the step, the schedules and EMA, the callbacks.
        Returns the log row so far (the learning rates the step used)."""
        dev, mf = self.device, self.memory_format
        lq = batch["lq"].to(dev, non_blocking=True).contiguous(memory_format=mf)
        gt = batch["gt"].to(dev, non_blocking=True).contiguous(memory_format=mf)
        autocast = autocast_context(self.device, self.amp_dtype)
        result = stage.step(lq, gt, autocast=autocast, accumulate=self.accumulate)
        row = stage.learning_rates()
        stage.advance()
        means.add(result.losses)
        for callback in self.callbacks:
            callback(stage.name, stage.iteration, result)
        return row

    def _over_budget(self, start: float, budget_s: float) -> bool:
        over = time.perf_counter() - start >= budget_s
        if self.world > 1:  # every rank stops at the same iteration
            flag = torch.tensor([1.0 if over else 0.0], device=self.device)
            dist.broadcast(flag, 0)
            over = bool(flag.item())
        return over

    def _validate_row(self, stage: Stage, log: CsvLog | None, row: dict, seconds: float) -> None:
        if self.is_main:
            stage.record_psnr(self.validate(stage.eval_model()))
            stage.net_g.train()
            if stage.last_psnr is not None:
                row["val_psnr"] = stage.last_psnr
        if log is not None:
            self._write_row(stage, log, row, seconds)

    def _write_row(self, stage: Stage, log: CsvLog, row: dict, seconds: float) -> None:
        log.write(format_row(row, stage.iteration, stage.elapsed_before + seconds))

    def _save(self, stage: Stage, seconds: float) -> None:
        stage.save(seconds, {"global_batch": self.global_batch, "world_size": self.world})

    # ------------------------------------------------------------------ results

    def _finish(self, stage: Stage, seconds: float, status: dict[str, Any]) -> dict[str, Any]:
        """Export the generator and write the stage's ``metrics.json``."""
        metrics = self._metrics(stage, status)
        if self.is_main:
            fp16 = self.cfg.logging.export_dtype == "float16"
            stage.export(self.spec.to_config(), torch.float16 if fp16 else torch.float32)
            atomic_write_text(stage.folder / "metrics.json", json.dumps(metrics, indent=2) + "\n")
        if self.cfg.logging.dump_rank_weights:
            stage.dump_rank_weights(self.rank)
        if self.world > 1:
            dist.barrier()
        return metrics

    def _metrics(self, stage: Stage, status: dict[str, Any]) -> dict[str, Any]:
        """The stage's ``metrics.json`` (:meth:`Stage.metrics`) with what it ran on."""
        run = {
            "val_images": self.validator.count,
            "world_size": self.world,
            "accumulate": self.accumulate,
            "global_batch": self.global_batch,
            "device": str(self.device)
            if not self.use_cuda
            else torch.cuda.get_device_name(self.device),
            "amp": "bf16" if self.amp_dtype is not None else "none",
            "channels_last": self.memory_format == torch.channels_last,
            "model": self.spec.to_config(),
        }
        finished = datetime.datetime.now(datetime.UTC).isoformat(timespec="seconds")
        return stage.metrics(status, run, {**self.provenance, "finished": finished})


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
