"""One training stage as it runs: its models, optimizers and schedules, where it stands,
and how it is checkpointed, restored and exported.

:class:`Stage` is what :class:`~esrgan_lab.training.trainer.Trainer` loops over. The
checkpoint of a stage (:meth:`Stage.save` / :meth:`Stage.restore`) is the nets as
safetensors plus a ``state.pt`` of optimizer and scheduler states, the iteration, the
RNG states, the training time so far and the best validation PSNR
(layout: :mod:`esrgan_lab.training.state`).
"""

from __future__ import annotations

from contextlib import AbstractContextManager
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import torch
from torch import nn
from torch.nn.parallel import DistributedDataParallel as DDP

from .config import StageConfig, TrainConfig
from .models import adam, gan_parts
from .runtime import build_scheduler
from .state import Checkpoints, export_generator, rng_state, save_tensors
from .steps import Ema, GanLosses, StepResult, gan_step, psnr_step


@dataclass
class Stage:
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

    @classmethod
    def build(
        cls,
        *,
        cfg: TrainConfig,
        name: str,
        folder: Path,
        net_g: nn.Module,
        verbose: bool,
    ) -> Stage:
        """The stage ``name`` (in ``folder``) around ``net_g``: discriminator and losses
        (GAN stage), optimizers, schedulers and EMA, built in this order (it fixes the RNG)."""
        st = cfg.stage(name)
        net_d, losses = gan_parts(cfg, st, verbose=verbose) if name == "gan" else (None, None)
        opt_g = adam(net_g, st.learning_rate, st.betas, st.weight_decay)
        ckpts = Checkpoints(folder, cfg.logging.keep_checkpoints)
        stage = cls(name, st, folder, ckpts, net_g, net_g, opt_g, None, losses=losses)
        stage.sched_g = build_scheduler(opt_g, st, st.milestones, st.gamma)
        stage.ema = Ema(net_g, st.ema_decay) if st.ema_decay else None
        if net_d is not None:
            dc = st.discriminator
            stage.net_d = stage.d_train = net_d
            stage.opt_d = adam(net_d, dc.learning_rate, dc.betas, dc.weight_decay)
            stage.sched_d = build_scheduler(stage.opt_d, st, dc.milestones, dc.gamma)
        return stage

    @property
    def gan(self) -> bool:
        return self.losses is not None

    def eval_model(self) -> nn.Module:
        """The weights validation scores: the EMA copy when there is one."""
        return self.ema.model if self.ema is not None else self.net_g

    def nets(self) -> dict[str, nn.Module | None]:
        """The checkpointed nets by file name (``None``: absent in this stage)."""
        nets = {"net_g": self.net_g, "net_d": self.net_d}
        nets["net_g_ema"] = self.ema.model if self.ema is not None else None
        return nets

    def place(self, device: torch.device, memory_format: torch.memory_format, world: int) -> None:
        """Move models (and optimizer state) to ``device``; wrap them for DDP."""
        for net in (self.net_g, self.net_d, self.ema and self.ema.model):
            if net is not None:
                net.to(device, memory_format=memory_format)
        if self.losses is not None:
            for term in (self.losses.perceptual, self.losses.gan):
                if term is not None:
                    term.to(device, memory_format=memory_format)
        for opt in (self.opt_g, self.opt_d):
            for s in opt.state.values() if opt is not None else ():
                for k, v in s.items():
                    if torch.is_tensor(v) and k != "step":
                        s[k] = v.to(device)
        if world > 1:
            ids = [device.index] if device.type == "cuda" else None
            self.g_train = DDP(self.net_g, device_ids=ids)
            if self.net_d is not None:
                self.d_train = DDP(self.net_d, device_ids=ids)

    # ------------------------------------------------------------------ one iteration

    def step(
        self,
        lq: torch.Tensor,
        gt: torch.Tensor,
        *,
        autocast: AbstractContextManager[Any],
        accumulate: int,
    ) -> StepResult:
        """One optimisation step of this stage's losses on ``lq`` (N,3,h,w), ``gt`` (N,3,H,W)."""
        if self.gan:
            return gan_step(
                self.g_train,
                self.net_d,
                self.opt_g,
                self.opt_d,
                lq,
                gt,
                self.losses,
                d_train=self.d_train,
                autocast=autocast,
                accumulate=accumulate,
            )
        return psnr_step(
            self.g_train,
            self.opt_g,
            lq,
            gt,
            pixel_weight=self.cfg.pixel_weight,
            autocast=autocast,
            accumulate=accumulate,
        )

    def learning_rates(self) -> dict[str, float]:
        """The rates of the step just taken, as ``log.csv`` columns."""
        row = {"learning_rate": self.opt_g.param_groups[0]["lr"]}
        if self.opt_d is not None:
            row["learning_rate_d"] = self.opt_d.param_groups[0]["lr"]
        return row

    def advance(self) -> None:
        """After a step: step the schedules, update the EMA, count the iteration."""
        self.sched_g.step()
        if self.sched_d is not None:
            self.sched_d.step()
        if self.ema is not None:
            self.ema.update(self.net_g)
        self.iteration += 1

    def record_psnr(self, psnr: float | None) -> None:
        """Keep the latest validation PSNR and the best so far."""
        self.last_psnr = psnr
        if psnr is not None:
            self.best_psnr = psnr if self.best_psnr is None else max(self.best_psnr, psnr)

    # ------------------------------------------------------------------ checkpoints

    def save(self, seconds: float, run: dict[str, Any]) -> None:
        """Checkpoint at the current iteration; ``seconds`` trained in this run, ``run``
        the run's shape (``global_batch``, ``world_size``) recorded with it."""
        state = {
            "iteration": self.iteration,
            "stage": self.name,
            "opt_g": self.opt_g.state_dict(),
            "sched_g": self.sched_g.state_dict(),
            "rng": rng_state(),
            "elapsed_s": self.elapsed_before + seconds,
            "best_psnr": self.best_psnr,
            **run,
        }
        if self.opt_d is not None:
            state["opt_d"] = self.opt_d.state_dict()
            state["sched_d"] = self.sched_d.state_dict()
        self.checkpoints.save(self.iteration, self.nets(), state)

    def restore(self, ckpt_dir: Path, iteration: int) -> dict[str, Any]:
        """Load nets, optimizers and schedules from ``ckpt_dir`` and continue at
        ``iteration``; returns the saved state (its ``rng`` is for the caller to set)."""
        saved = Checkpoints.restore(ckpt_dir, self.nets())
        self.opt_g.load_state_dict(saved["opt_g"])
        self.sched_g.load_state_dict(saved["sched_g"])
        if self.opt_d is not None:
            self.opt_d.load_state_dict(saved["opt_d"])
            self.sched_d.load_state_dict(saved["sched_d"])
        self.iteration = self.start_iteration = iteration
        self.elapsed_before = float(saved.get("elapsed_s", 0.0))
        self.best_psnr = saved.get("best_psnr")
        return saved

    # ------------------------------------------------------------------ results

    def export(self, config: dict[str, Any], dtype: torch.dtype) -> None:
        """``net_g.safetensors`` (+ ``net_g_ema.safetensors``) in the stage folder."""
        export_generator(self.net_g, self.folder / "net_g.safetensors", config, dtype)
        if self.ema is not None:
            export_generator(self.ema.model, self.folder / "net_g_ema.safetensors", config, dtype)

    def metrics(
        self, status: dict[str, Any], run: dict[str, Any], provenance: dict[str, Any]
    ) -> dict[str, Any]:
        """The stage's ``metrics.json``: how far it ran (``status`` of the loop), how fast
        and how well, then ``run`` (what it ran on), its size and ``provenance``."""
        st, it, seconds = self.cfg, self.iteration, status["train_seconds"]
        ran = it - self.start_iteration
        metrics: dict[str, Any] = {
            "stage": self.name,
            "iterations": it,
            "total_iter": st.total_iter,
            "stopped_by_time_budget": status["stopped_by_time_budget"],
            "diverged_at": status["diverged_at"],
            "iterations_this_run": ran,
            "train_seconds_this_run": round(seconds, 3),
            "iters_per_second": round(ran / seconds, 4) if seconds else None,
            "train_seconds_total": round(self.elapsed_before + seconds, 3),
            "val_psnr_y": self.last_psnr,
            "val_model": "ema" if self.ema is not None else "net_g",
            "best_val_psnr_y": self.best_psnr,
            **run,
            "num_params_g": sum(p.numel() for p in self.net_g.parameters()),
            "provenance": provenance,
        }
        if self.gan:
            percep = self.losses.perceptual
            metrics["perceptual_backbone"] = st.perceptual.backbone if percep else None
            metrics["perceptual_weights"] = percep.weights_source if percep else None
            metrics["discriminator"] = st.discriminator.type if self.net_d else None
            metrics["gan_type"] = st.gan_type if self.net_d else None
        return metrics

    def dump_rank_weights(self, rank: int) -> None:
        """This rank's G (and D parameters) under ``rank<k>/`` (DDP agreement checks)."""
        rank_dir = self.folder / f"rank{rank}"
        rank_dir.mkdir(parents=True, exist_ok=True)
        save_tensors(self.net_g.state_dict(), rank_dir / "net_g.safetensors")
        if self.net_d is not None:
            save_tensors(dict(self.net_d.named_parameters()), rank_dir / "net_d.safetensors")
