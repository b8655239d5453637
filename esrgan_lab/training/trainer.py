"""ESRGAN training: the PSNR-oriented stage and the GAN stage (paper Sec. 4.1).

* Stage ``psnr``: L1 loss, Adam (beta1 0.9, beta2 0.99), learning rate 2e-4 halved
  every 2e5 iterations (configurable milestones/gamma).
* Stage ``gan``: the generator starts from the PSNR-stage weights ("to avoid undesired
  local optima for the generator" and so the discriminator sees good images from the
  start); ``L_G = L_percep + 5e-3 L_G^Ra + 1e-2 L_1``; generator and discriminator
  learning rates 1e-4, halved at 50k, 100k, 200k and 300k iterations.

One :class:`Trainer` runs both, single-process or under ``torchrun`` with
DistributedDataParallel (gloo on CPU, nccl on CUDA); rank 0 writes everything. Output
layout of ``<out>``::

    config.yaml                 resolved configuration
    <stage>/log.csv             iter, losses, learning_rate, val_psnr, time_s
    <stage>/metrics.json        final numbers of the stage
    <stage>/checkpoints/iter_XXXXXXXX/{net_g,net_d,net_g_ema}.safetensors + state.pt
    <stage>/net_g.safetensors   exported generator (+ net_g_ema.safetensors)
    net_g.safetensors           the last stage's export (+ net_g_ema.safetensors)
    metrics.json                every stage's metrics

``state.pt`` holds only tensors, numbers and dicts (optimizer and scheduler state, the
iteration, RNG states) and is read with ``torch.load(weights_only=True)``.
"""

from __future__ import annotations

import copy
import csv
import json
import os
import random
import shutil
import tempfile
import time
import warnings
from collections.abc import Iterator
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import numpy as np
import torch
import torch.distributed as dist
import torch.nn.functional as F
from torch import nn
from torch.nn.parallel import DistributedDataParallel as DDP

from ..errors import CheckpointError, ConfigError
from ..fileio import atomic_path, atomic_write_text
from ..model.rrdbnet import RRDBNet
from ..settings import provenance
from .config import StageConfig, TrainConfig, to_dict

#: Columns of each stage's ``log.csv``.
LOG_COLUMNS = {
    "psnr": ["iter", "l_pix", "learning_rate", "val_psnr", "time_s"],
    "gan": [
        "iter",
        "l_pix",
        "l_percep",
        "l_gan",
        "l_g_total",
        "l_d",
        "d_real",
        "d_fake",
        "learning_rate",
        "learning_rate_d",
        "val_psnr",
        "time_s",
    ],
}
CHECKPOINT_PREFIX = "iter_"


# --------------------------------------------------------------------------- helpers


def _save_tensors(state: dict[str, torch.Tensor], path: Path, meta: dict[str, str] | None = None):
    from safetensors.torch import save_file

    tensors = {k: v.detach().to("cpu").contiguous().clone() for k, v in state.items()}
    save_file(tensors, str(path), metadata=meta or {"format": "pt"})


def _load_tensors(path: Path) -> dict[str, torch.Tensor]:
    from safetensors.torch import load_file

    try:
        return load_file(str(path))
    except Exception as exc:
        raise CheckpointError(f"{path}: cannot read safetensors file ({exc})") from exc


def rng_state() -> dict[str, Any]:
    """Every RNG state as plain tensors/numbers (loadable with ``weights_only=True``)."""
    np_state = np.random.get_state()
    py_state = random.getstate()
    state: dict[str, Any] = {
        "torch": torch.get_rng_state(),
        "numpy_keys": torch.from_numpy(np.asarray(np_state[1], dtype=np.int64)),
        "numpy_pos": int(np_state[2]),
        "numpy_has_gauss": int(np_state[3]),
        "numpy_cached_gaussian": float(np_state[4]),
        "python": torch.tensor(py_state[1], dtype=torch.int64),
    }
    if torch.cuda.is_available() and torch.cuda.is_initialized():
        state["cuda"] = torch.cuda.get_rng_state_all()
    return state


def set_rng_state(state: dict[str, Any]) -> None:
    """Inverse of :func:`rng_state`."""
    torch.set_rng_state(state["torch"])
    keys = state["numpy_keys"].numpy().astype(np.uint32)
    np.random.set_state(
        (
            "MT19937",
            keys,
            state["numpy_pos"],
            state["numpy_has_gauss"],
            state["numpy_cached_gaussian"],
        )
    )
    random.setstate((3, tuple(int(v) for v in state["python"].tolist()), None))
    if "cuda" in state and torch.cuda.is_available():
        torch.cuda.set_rng_state_all(state["cuda"])


def tensor_to_uint8(img: torch.Tensor) -> np.ndarray:
    """``(3, H, W)`` float RGB on [0, 1] -> ``(H, W, 3)`` uint8 (clamp, round, as BasicSR)."""
    arr = img.detach().float().clamp_(0, 1).mul_(255.0).round_().to("cpu", torch.uint8)
    return arr.permute(1, 2, 0).numpy()


def y_psnr(sr: np.ndarray, gt: np.ndarray, crop_border: int) -> float:
    """Y-channel PSNR of RGB uint8 images via :func:`esrgan_lab.metrics.psnr_ssim.calculate_psnr`.

    ``calculate_psnr`` follows BasicSR's BGR convention, so the channels are flipped.
    """
    from ..metrics.psnr_ssim import calculate_psnr

    return float(
        calculate_psnr(sr[..., ::-1], gt[..., ::-1], crop_border=crop_border, test_y_channel=True)
    )


class _Ema:
    """Exponential moving average of a model's parameters (buffers are copied)."""

    def __init__(self, model: nn.Module, decay: float) -> None:
        self.decay = decay
        self.model = copy.deepcopy(model).eval()
        for p in self.model.parameters():
            p.requires_grad_(False)

    @torch.no_grad()
    def update(self, model: nn.Module) -> None:
        ema_p = list(self.model.parameters())
        src_p = [p.detach() for p in model.parameters()]
        torch._foreach_mul_(ema_p, self.decay)
        torch._foreach_add_(ema_p, src_p, alpha=1.0 - self.decay)
        for b_ema, b in zip(self.model.buffers(), model.buffers()):
            b_ema.copy_(b)


@dataclass
class _Stage:
    """Everything a stage trains with."""

    name: str
    gan: bool
    net_g: nn.Module
    net_d: nn.Module | None
    ema: _Ema | None
    opt_g: torch.optim.Optimizer
    opt_d: torch.optim.Optimizer | None
    sched_g: Any
    sched_d: Any
    percep: nn.Module | None
    gan_loss: nn.Module | None
    g_train: nn.Module
    d_train: nn.Module | None
    elapsed_before: float
    best_psnr: float | None


class _Timer:
    """Wall-clock seconds since construction."""

    def __init__(self) -> None:
        self.start = time.perf_counter()

    def elapsed(self) -> float:
        return time.perf_counter() - self.start


# --------------------------------------------------------------------------- precision


def native_bf16(device: torch.device) -> bool:
    """Whether ``device`` computes bfloat16 natively (fast), not by emulation.

    CUDA: ``torch.cuda.is_bf16_supported()``. CPU: oneDNN's bf16 support, i.e. AVX512-BF16
    or AMX. On an AVX2-only CPU bf16 matmuls are emulated and run about 400x *slower*
    than fp32 (measured: 0.3 vs 123 GFLOP/s on 2 cores), so bf16 must not be used there.
    """
    if device.type == "cuda":
        return bool(torch.cuda.is_bf16_supported())
    if device.type == "cpu":
        try:
            return bool(torch.ops.mkldnn._is_mkldnn_bf16_supported())
        except (AttributeError, RuntimeError):  # pragma: no cover - very old torch
            return False
    return False


def resolve_amp(amp: str, device: torch.device) -> torch.dtype | None:
    """Autocast dtype for ``runtime.amp`` on ``device`` (``None``: fp32).

    Raises:
        ConfigError: ``amp: bf16`` where bf16 is not native (it would be emulated).
    """
    if amp == "none":
        return None
    native = native_bf16(device)
    if amp == "bf16" and not native:
        raise ConfigError(
            f"runtime.amp 'bf16': {device.type} has no native bf16 (no AVX512-BF16/AMX on "
            "this CPU); use amp: auto (bf16 where native, else fp32) or none"
        )
    return torch.bfloat16 if native else None


# --------------------------------------------------------------------------- distributed


def init_distributed(device_pref: str) -> tuple[int, int, torch.device]:
    """Join the process group when launched by ``torchrun``; returns ``(rank, world, device)``."""
    world = int(os.environ.get("WORLD_SIZE", "1"))
    rank = int(os.environ.get("RANK", "0"))
    local_rank = int(os.environ.get("LOCAL_RANK", "0"))
    if device_pref == "auto":
        use_cuda = torch.cuda.is_available()
    elif device_pref.startswith("cuda"):
        if not torch.cuda.is_available():
            raise ConfigError(f"runtime.device {device_pref!r} requested but CUDA is unavailable")
        use_cuda = True
    elif device_pref == "cpu":
        use_cuda = False
    else:
        raise ConfigError(f"runtime.device must be auto, cpu or cuda, got {device_pref!r}")
    if use_cuda:
        if world > 1:
            device = torch.device("cuda", local_rank)
        else:
            device = torch.device("cuda", torch.device(device_pref).index or 0)
        torch.cuda.set_device(device)
    else:
        device = torch.device("cpu")
    if world > 1 and not dist.is_initialized():
        dist.init_process_group(backend="nccl" if use_cuda else "gloo")
    return rank, world, device


# --------------------------------------------------------------------------- trainer


class Trainer:
    """Runs the configured stages; see the module docstring for the outputs.

    Args:
        cfg: Validated configuration.
        out_dir: Output folder (created).
        resume: Continue each stage from its latest checkpoint (a finished stage is
            skipped unless its ``total_iter`` grew). Without it, an output folder that
            already holds a stage's results is refused rather than overwritten.
    """

    def __init__(self, cfg: TrainConfig, out_dir: str | os.PathLike[str], resume: bool = False):
        self.cfg = cfg
        self.out = Path(out_dir)
        self.resume = resume
        rt = cfg.runtime
        self.rank, self.world, self.device = init_distributed(rt.device)
        self.is_main = self.rank == 0
        self.use_cuda = self.device.type == "cuda"
        if not self.use_cuda and rt.num_threads:
            torch.set_num_threads(rt.num_threads)
        if self.use_cuda and rt.tf32:
            torch.backends.cuda.matmul.allow_tf32 = True
            torch.backends.cudnn.allow_tf32 = True
        if self.use_cuda:
            torch.backends.cudnn.benchmark = True
        self.amp_dtype = resolve_amp(rt.amp, self.device)
        self.memory_format = torch.channels_last if rt.channels_last else torch.contiguous_format
        self._train_set = None
        self._val_set = None
        self.results: dict[str, Any] = {}

    # ------------------------------------------------------------------ data

    def train_set(self):
        from ..data.datasets import PairedPatchDataset, load_source

        if self._train_set is None:
            d = self.cfg.data
            images = [im for src in d.train for im in load_source(src)]
            self._train_set = PairedPatchDataset(
                images, self.cfg.scale, d.gt_size, d.use_flip, d.use_rot, seed=self.cfg.seed
            )
        return self._train_set

    def val_set(self):
        from ..data.datasets import PairedImageSet, load_source

        if self._val_set is None and self.cfg.data.val and self.is_main:
            images = [im for src in self.cfg.data.val for im in load_source(src)]
            if self.cfg.data.val_max_images is not None:
                images = images[: self.cfg.data.val_max_images]
            self._val_set = PairedImageSet(images, self.cfg.scale)
        return self._val_set

    def _loader(self, stage_index: int, start_iter: int) -> Iterator[dict[str, Any]]:
        from torch.utils.data import DataLoader

        from ..data.datasets import StreamSampler

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
        loader = DataLoader(
            dataset,
            batch_size=d.batch_size,
            sampler=StreamSampler(d.batch_size, start_iter, self.rank, self.world),
            num_workers=d.num_workers,
            pin_memory=self.use_cuda,
            drop_last=True,
            **kwargs,
        )
        return iter(loader)

    # ------------------------------------------------------------------ models

    def build_generator(self) -> RRDBNet:
        m = self.cfg.model
        return RRDBNet(
            num_in_ch=3,
            num_out_ch=3,
            scale=self.cfg.scale,
            num_feat=m.num_feat,
            num_block=m.num_block,
            num_grow_ch=m.num_grow_ch,
            res_scale=m.res_scale,
            init_scale=m.init_scale,
            norm=m.norm,
        )

    def model_config(self) -> dict[str, Any]:
        """RRDBNet arguments recorded in the exported safetensors metadata."""
        m = self.cfg.model
        return {
            "num_in_ch": 3,
            "num_out_ch": 3,
            "scale": self.cfg.scale,
            "num_feat": m.num_feat,
            "num_block": m.num_block,
            "num_grow_ch": m.num_grow_ch,
            "res_scale": m.res_scale,
            "norm": m.norm,
        }

    def _pretrained_path(self, name: str, st: StageConfig) -> Path | None:
        if st.pretrained_g:
            return Path(st.pretrained_g).expanduser()
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

    # ------------------------------------------------------------------ checkpoints

    def _checkpoints(self, stage_dir: Path) -> list[tuple[int, Path]]:
        folder = stage_dir / "checkpoints"
        if not folder.is_dir():
            return []
        found = []
        for p in folder.iterdir():
            if p.is_dir() and p.name.startswith(CHECKPOINT_PREFIX) and (p / "state.pt").is_file():
                try:
                    found.append((int(p.name[len(CHECKPOINT_PREFIX) :]), p))
                except ValueError:
                    continue
        return sorted(found)

    def _save_checkpoint(self, stage_dir: Path, it: int, parts: dict[str, Any]) -> None:
        folder = stage_dir / "checkpoints"
        folder.mkdir(parents=True, exist_ok=True)
        final = folder / f"{CHECKPOINT_PREFIX}{it:08d}"
        tmp = Path(tempfile.mkdtemp(dir=folder, prefix=".tmp_"))
        try:
            for key in ("net_g", "net_d", "net_g_ema"):
                if parts.get(key) is not None:
                    _save_tensors(parts[key].state_dict(), tmp / f"{key}.safetensors")
            torch.save(parts["state"], tmp / "state.pt")
            if final.exists():
                shutil.rmtree(final)
            os.replace(tmp, final)
        finally:
            if tmp.exists():
                shutil.rmtree(tmp, ignore_errors=True)
        keep = max(1, self.cfg.logging.keep_checkpoints)
        for _, old in self._checkpoints(stage_dir)[:-keep]:
            shutil.rmtree(old, ignore_errors=True)

    # ------------------------------------------------------------------ logging

    def _open_log(self, stage_dir: Path, name: str, start_iter: int):
        path = stage_dir / "log.csv"
        columns = LOG_COLUMNS[name]
        rows: list[dict[str, str]] = []
        if start_iter > 0 and path.is_file():
            # Resuming: keep the rows up to the checkpoint, drop those written after it.
            with path.open(newline="") as f:
                rows = [r for r in csv.DictReader(f) if int(r["iter"]) <= start_iter]
        f = path.open("w", newline="")
        writer = csv.DictWriter(f, fieldnames=columns)
        writer.writeheader()
        writer.writerows(rows)
        f.flush()
        return f, writer

    # ------------------------------------------------------------------ validation

    @torch.no_grad()
    def validate(self, model: nn.Module) -> float | None:
        """Mean Y-PSNR (crop_border = scale) on the validation images (rank 0 only)."""
        val = self.val_set()
        if val is None or len(val) == 0:
            return None
        model.eval()
        scores = []
        for _, gt, lq in val:
            x = torch.from_numpy(np.ascontiguousarray(lq.transpose(2, 0, 1))).float().div_(255)
            x = x.unsqueeze(0).to(self.device).contiguous(memory_format=self.memory_format)
            sr = model(x)[0]
            scores.append(y_psnr(tensor_to_uint8(sr), gt, self.cfg.scale))
        return float(np.mean(scores))

    # ------------------------------------------------------------------ stages

    def run(self) -> dict[str, Any]:
        """Run every configured stage; returns ``{stage: metrics}``."""
        import yaml

        if self.is_main:
            self.out.mkdir(parents=True, exist_ok=True)
            atomic_write_text(
                self.out / "config.yaml", yaml.safe_dump(to_dict(self.cfg), sort_keys=False)
            )
        last = None
        for index, name in enumerate(self.cfg.stages):
            self.results[name] = self.run_stage(name, index)
            last = name
        if self.is_main and last is not None:
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

    def _setup_stage(
        self, name: str, stage_index: int, ckpt_dir: Path | None, start_iter: int
    ) -> _Stage:
        """Models, losses, optimizers and schedulers of a stage, restored from a checkpoint."""
        st = self.cfg.stage(name)
        torch.manual_seed(self.cfg.seed + stage_index)
        np.random.seed(self.cfg.seed + stage_index)
        random.seed(self.cfg.seed + stage_index)
        net_g = self.build_generator()
        pretrained = self._pretrained_path(name, st) if ckpt_dir is None else None
        if pretrained is not None:
            from ..weights.checkpoints import load_checkpoint

            state = load_checkpoint(pretrained)
            try:
                net_g.load_state_dict(state, strict=True)
            except RuntimeError as exc:
                first = str(exc).splitlines()[0]
                raise CheckpointError(
                    f"{pretrained}: does not fit model {self.model_config()} ({first})"
                ) from None

        gan = name == "gan"
        net_d = percep = gan_loss = None
        if gan:
            from ..losses.basic import GANLoss, PerceptualLoss
            from ..model.discriminators import build_discriminator

            dc, pc = st.discriminator, st.perceptual
            net_d = build_discriminator(dc.type, 3, dc.num_feat, self.cfg.data.gt_size)
            with warnings.catch_warnings(record=True) as caught:
                warnings.simplefilter("always")
                percep = PerceptualLoss(
                    pc.layers,
                    weight=pc.weight,
                    criterion=pc.criterion,
                    weights=pc.weights,
                    use_input_norm=pc.use_input_norm,
                    range_norm=pc.range_norm,
                    allow_random_init=pc.allow_random_init,
                )
            if self.is_main:
                for w in caught:
                    print(f"[{name}] WARNING: {w.message}")
                print(f"[{name}] perceptual loss VGG19 weights: {percep.weights_source}")
            gan_loss = GANLoss(st.gan_type, st.gan_weight)

        ema = _Ema(net_g, st.ema_decay) if st.ema_decay else None

        opt_g = torch.optim.Adam(
            net_g.parameters(),
            lr=st.learning_rate,
            betas=tuple(st.betas),
            weight_decay=st.weight_decay,
        )
        sched_g = build_scheduler(opt_g, st, st.milestones, st.gamma)
        opt_d = sched_d = None
        if gan:
            opt_d = torch.optim.Adam(
                net_d.parameters(),
                lr=st.discriminator.learning_rate,
                betas=tuple(st.discriminator.betas),
                weight_decay=st.discriminator.weight_decay,
            )
            sched_d = build_scheduler(
                opt_d, st, st.discriminator.milestones, st.discriminator.gamma
            )

        elapsed_before = 0.0
        best_psnr = None
        if ckpt_dir is not None:
            net_g.load_state_dict(_load_tensors(ckpt_dir / "net_g.safetensors"))
            if gan:
                net_d.load_state_dict(_load_tensors(ckpt_dir / "net_d.safetensors"))
            if ema is not None:
                ema_file = ckpt_dir / "net_g_ema.safetensors"
                ema.model.load_state_dict(
                    _load_tensors(ema_file) if ema_file.is_file() else net_g.state_dict()
                )
            try:
                saved = torch.load(ckpt_dir / "state.pt", map_location="cpu", weights_only=True)
            except Exception as exc:
                raise CheckpointError(f"{ckpt_dir / 'state.pt'}: cannot load ({exc})") from exc
            opt_g.load_state_dict(saved["opt_g"])
            sched_g.load_state_dict(saved["sched_g"])
            if gan:
                opt_d.load_state_dict(saved["opt_d"])
                sched_d.load_state_dict(saved["sched_d"])
            set_rng_state(saved["rng"])
            elapsed_before = float(saved.get("elapsed_s", 0.0))
            best_psnr = saved.get("best_psnr")
            if self.is_main:
                print(f"[{name}] resumed from {ckpt_dir} at iteration {start_iter}")

        dev, mf = self.device, self.memory_format
        net_g.to(dev, memory_format=mf)
        if ema is not None:
            ema.model.to(dev, memory_format=mf)
        if gan:
            net_d.to(dev, memory_format=mf)
            percep.to(dev, memory_format=mf)
            gan_loss.to(dev)
        # Optimizer state follows the parameters onto the device.
        for opt in (opt_g, opt_d):
            if opt is None:
                continue
            for s in opt.state.values():
                for k, v in s.items():
                    if torch.is_tensor(v) and k != "step":
                        s[k] = v.to(dev)

        g_train = net_g
        d_train = net_d
        if self.world > 1:
            ids = [dev.index] if self.use_cuda else None
            g_train = DDP(net_g, device_ids=ids)
            if gan:
                d_train = DDP(net_d, device_ids=ids)

        return _Stage(
            name=name,
            gan=gan,
            net_g=net_g,
            net_d=net_d,
            ema=ema,
            opt_g=opt_g,
            opt_d=opt_d,
            sched_g=sched_g,
            sched_d=sched_d,
            percep=percep,
            gan_loss=gan_loss,
            g_train=g_train,
            d_train=d_train,
            elapsed_before=elapsed_before,
            best_psnr=best_psnr,
        )

    def _train_step(
        self, stage: _Stage, lq: torch.Tensor, gt: torch.Tensor, autocast: Any
    ) -> dict[str, torch.Tensor]:
        """One optimisation step of the stage; returns detached loss tensors to log."""
        st = self.cfg.stage(stage.name)
        gan, net_d, percep, gan_loss = stage.gan, stage.net_d, stage.percep, stage.gan_loss
        opt_g, opt_d, g_train, d_train = stage.opt_g, stage.opt_d, stage.g_train, stage.d_train
        l_pix_fn = F.l1_loss
        stats: dict[str, torch.Tensor] = {}
        if not gan:
            opt_g.zero_grad(set_to_none=True)
            with autocast:
                sr = g_train(lq)
            l_pix = st.pixel_weight * l_pix_fn(sr.float(), gt)
            l_pix.backward()
            opt_g.step()
            stats["l_pix"] = l_pix.detach()
        else:
            # -- generator step. D is frozen and called without its DDP wrapper, so the
            # G backward neither computes nor all-reduces D gradients (BasicSR also sets
            # requires_grad=False on D here). GT logits are constants for L_G^Ra.
            for p in net_d.parameters():
                p.requires_grad_(False)
            opt_g.zero_grad(set_to_none=True)
            with autocast:
                sr = g_train(lq)
                with torch.no_grad():
                    real_logits = net_d(gt)
                fake_logits = net_d(sr)
            l_pix = st.pixel_weight * l_pix_fn(sr.float(), gt)
            with autocast:
                l_percep = percep(sr, gt)
            l_gan = gan_loss.generator_loss(real_logits, fake_logits)
            l_g = l_pix + l_percep + l_gan
            l_g.backward()
            opt_g.step()
            # -- discriminator step on the detached SR
            for p in net_d.parameters():
                p.requires_grad_(True)
            opt_d.zero_grad(set_to_none=True)
            with autocast:
                real_d = d_train(gt)
                fake_d = d_train(sr.detach())
            l_d = gan_loss.discriminator_loss(real_d, fake_d)
            l_d.backward()
            opt_d.step()
            stats.update(
                l_pix=l_pix.detach(),
                l_percep=l_percep.detach(),
                l_gan=l_gan.detach(),
                l_g_total=l_g.detach(),
                l_d=l_d.detach(),
                d_real=real_d.detach().float().mean(),
                d_fake=fake_d.detach().float().mean(),
            )
        return stats

    def run_stage(self, name: str, stage_index: int) -> dict[str, Any]:
        cfg, st = self.cfg, self.cfg.stage(name)
        stage_dir = self.out / name
        ckpts = self._checkpoints(stage_dir)
        if not self.resume and (ckpts or (stage_dir / "net_g.safetensors").exists()):
            raise ConfigError(
                f"{stage_dir} already holds results; pass --resume to continue or choose "
                "another --out"
            )
        start_iter, ckpt_dir = ckpts[-1] if (self.resume and ckpts) else (0, None)
        if ckpt_dir is not None and start_iter >= st.total_iter:
            if (stage_dir / "metrics.json").is_file():
                if self.is_main:
                    print(f"[{name}] already complete at iteration {start_iter}; skipping")
                return json.loads((stage_dir / "metrics.json").read_text())

        stage = self._setup_stage(name, stage_index, ckpt_dir, start_iter)
        net_g, net_d, ema = stage.net_g, stage.net_d, stage.ema
        opt_g, opt_d, sched_g, sched_d = stage.opt_g, stage.opt_d, stage.sched_g, stage.sched_d
        gan, percep = stage.gan, stage.percep
        elapsed_before, best_psnr = stage.elapsed_before, stage.best_psnr
        dev, mf = self.device, self.memory_format

        log_file = writer = None
        if self.is_main:
            stage_dir.mkdir(parents=True, exist_ok=True)
            log_file, writer = self._open_log(stage_dir, name, start_iter)
        pbar = None
        if self.is_main and cfg.logging.progress:
            from tqdm.auto import tqdm

            pbar = tqdm(
                total=st.total_iter, initial=start_iter, desc=f"{cfg.name}:{name}", mininterval=1.0
            )

        batches = self._loader(stage_index, start_iter)
        timer = _Timer()
        budget_s = st.max_minutes * 60.0 if st.max_minutes is not None else None
        sums: dict[str, torch.Tensor] = {}
        n_sum = 0
        it = start_iter
        last_saved = start_iter if ckpt_dir is not None else -1
        last_psnr: float | None = None
        stopped_early = False
        autocast = (
            torch.autocast(dev.type, dtype=self.amp_dtype)
            if self.amp_dtype is not None
            else torch.autocast(dev.type, enabled=False)
        )
        lg = cfg.logging
        log_cols = LOG_COLUMNS[name]
        net_g.train()
        if gan:
            net_d.train()

        def checkpoint_parts() -> dict[str, Any]:
            state = {
                "iteration": it,
                "stage": name,
                "opt_g": opt_g.state_dict(),
                "sched_g": sched_g.state_dict(),
                "rng": rng_state(),
                "elapsed_s": elapsed_before + timer.elapsed(),
                "best_psnr": best_psnr,
            }
            if gan:
                state["opt_d"] = opt_d.state_dict()
                state["sched_d"] = sched_d.state_dict()
            return {
                "net_g": net_g,
                "net_d": net_d,
                "net_g_ema": ema.model if ema is not None else None,
                "state": state,
            }

        try:
            while it < st.total_iter:
                batch = next(batches)
                lq = batch["lq"].to(dev, non_blocking=True).contiguous(memory_format=mf)
                gt = batch["gt"].to(dev, non_blocking=True).contiguous(memory_format=mf)
                stats = self._train_step(stage, lq, gt, autocast)
                # Log the learning rates this iteration used (before the scheduler steps).
                lr_used = opt_g.param_groups[0]["lr"]
                lr_d_used = opt_d.param_groups[0]["lr"] if gan else None
                sched_g.step()
                if gan:
                    sched_d.step()
                if ema is not None:
                    ema.update(net_g)
                it += 1
                for k, v in stats.items():
                    sums[k] = sums[k] + v if k in sums else v.clone()
                n_sum += 1

                do_log = it % lg.log_every == 0 or it == st.total_iter
                do_val = it % lg.val_every == 0 or it == st.total_iter
                stop = False
                if budget_s is not None:
                    over = timer.elapsed() >= budget_s
                    if self.world > 1:
                        flag = torch.tensor([1.0 if over else 0.0], device=dev)
                        dist.broadcast(flag, 0)
                        over = bool(flag.item())
                    stop = over and it < st.total_iter
                if stop:
                    do_log = do_val = True
                row: dict[str, Any] = {}
                if do_log and n_sum:
                    keys = sorted(sums)
                    vec = torch.stack([sums[k].float() for k in keys]) / n_sum
                    if self.world > 1:
                        dist.all_reduce(vec)
                        vec /= self.world
                    row.update({k: f"{v:.6g}" for k, v in zip(keys, vec.tolist())})
                    sums, n_sum = {}, 0
                if do_val and self.is_main:
                    model = ema.model if ema is not None else net_g
                    last_psnr = self.validate(model)
                    net_g.train()
                    if last_psnr is not None:
                        row["val_psnr"] = f"{last_psnr:.4f}"
                        best_psnr = last_psnr if best_psnr is None else max(best_psnr, last_psnr)
                if row and self.is_main:
                    row["iter"] = it
                    row["learning_rate"] = f"{lr_used:.6g}"
                    if gan:
                        row["learning_rate_d"] = f"{lr_d_used:.6g}"
                    row["time_s"] = f"{elapsed_before + timer.elapsed():.2f}"
                    writer.writerow({k: row.get(k, "") for k in log_cols})
                    log_file.flush()
                if pbar is not None:
                    pbar.update(1)
                    if row:
                        post = {k: row[k] for k in ("l_pix", "l_g_total", "l_d") if k in row}
                        if last_psnr is not None:
                            post["psnr"] = f"{last_psnr:.2f}"
                        pbar.set_postfix(post, refresh=False)
                if self.is_main and (it % lg.save_every == 0 or stop):
                    self._save_checkpoint(stage_dir, it, checkpoint_parts())
                    last_saved = it
                if stop:
                    stopped_early = True
                    break
        finally:
            if pbar is not None:
                pbar.close()
            if log_file is not None:
                log_file.close()
            del batches

        train_time = timer.elapsed()
        if self.is_main and last_saved != it:
            self._save_checkpoint(stage_dir, it, checkpoint_parts())

        metrics: dict[str, Any] = {
            "stage": name,
            "iterations": it,
            "total_iter": st.total_iter,
            "stopped_by_time_budget": stopped_early,
            "iterations_this_run": it - start_iter,
            "train_seconds_this_run": round(train_time, 3),
            "iters_per_second": round((it - start_iter) / train_time, 4) if train_time else None,
            "train_seconds_total": round(elapsed_before + train_time, 3),
            "val_psnr_y": last_psnr,
            "val_model": "ema" if ema is not None else "net_g",
            "best_val_psnr_y": best_psnr,
            "val_images": len(self._val_set) if self._val_set is not None else 0,
            "world_size": self.world,
            "global_batch": cfg.data.batch_size * self.world,
            "device": str(dev) if not self.use_cuda else torch.cuda.get_device_name(dev),
            "amp": "bf16" if self.amp_dtype is not None else "none",
            "channels_last": self.memory_format == torch.channels_last,
            "threads": torch.get_num_threads() if not self.use_cuda else None,
            "model": self.model_config(),
            "num_params_g": sum(p.numel() for p in net_g.parameters()),
            "provenance": provenance(),
        }
        if gan:
            metrics["perceptual_vgg19_weights"] = percep.weights_source
            metrics["discriminator"] = st.discriminator.type
            metrics["gan_type"] = st.gan_type
        if self.is_main:
            self._export(stage_dir, net_g, ema)
            atomic_write_text(stage_dir / "metrics.json", json.dumps(metrics, indent=2) + "\n")
        if cfg.logging.dump_rank_weights:
            rank_dir = stage_dir / f"rank{self.rank}"
            rank_dir.mkdir(parents=True, exist_ok=True)
            _save_tensors(net_g.state_dict(), rank_dir / "net_g.safetensors")
            if gan:
                _save_tensors(
                    {k: v for k, v in net_d.named_parameters()}, rank_dir / "net_d.safetensors"
                )
        if self.world > 1:
            dist.barrier()
        return metrics

    def _export(self, stage_dir: Path, net_g: nn.Module, ema: _Ema | None) -> None:
        """Write ``net_g.safetensors`` (+ EMA) in BasicSR layout with the config metadata."""
        from ..weights.checkpoints import save_checkpoint

        dtype = torch.float16 if self.cfg.logging.export_dtype == "float16" else torch.float32
        for fname, model in (
            ("net_g.safetensors", net_g),
            ("net_g_ema.safetensors", ema and ema.model),
        ):
            if model is None:
                continue
            state = {
                k: v.detach().to("cpu", dtype).contiguous() for k, v in model.state_dict().items()
            }
            save_checkpoint(state, stage_dir / fname, config=self.model_config())


def build_scheduler(
    opt: torch.optim.Optimizer, st: StageConfig, milestones: list[int], gamma: float
) -> torch.optim.lr_scheduler.LRScheduler:
    """The stage's learning-rate schedule for ``opt`` (stepped once per iteration)."""
    if st.scheduler == "cosine":
        return torch.optim.lr_scheduler.CosineAnnealingLR(opt, st.total_iter, st.eta_min)
    return torch.optim.lr_scheduler.MultiStepLR(opt, milestones, gamma)


def default_out_dir(cfg: TrainConfig) -> Path:
    """``runs/<name>`` unless the config sets ``out``."""
    return Path(cfg.out) if cfg.out else Path("runs") / cfg.name


def train(
    cfg: TrainConfig, out_dir: str | os.PathLike[str] | None = None, resume: bool = False
) -> dict[str, Any]:
    """Run a training config; returns ``{stage: metrics}`` (see :class:`Trainer`)."""
    threads = torch.get_num_threads()
    trainer = Trainer(cfg, out_dir if out_dir is not None else default_out_dir(cfg), resume)
    try:
        return trainer.run()
    finally:
        torch.set_num_threads(threads)  # runtime.num_threads is for this run only
        if trainer.world > 1 and dist.is_initialized():
            dist.destroy_process_group()


#: Public alias: ``esrgan_lab.training.trainer`` is also this module's name, so the package exports
#: the function as ``run_training``.
run_training = train
