"""Training configuration: YAML files validated against dataclasses.

A config names the stages to run (``stages: [psnr, gan]``) and holds one section per
stage; shared sections describe the model, data, runtime and logging. Unknown keys and
wrong types raise :class:`~esrgan_lab.errors.ConfigError` with the dotted key. See
``configs/*.yaml`` for commented examples.
"""

from __future__ import annotations

import dataclasses
import types
import typing
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any, Literal, Union, get_args, get_origin

from ..errors import ConfigError
from ..model.spec import ModelSpec


@dataclass
class ModelConfig:
    """The ``model:`` section of a config file (BasicSR names).

    The YAML face of :class:`~esrgan_lab.model.spec.ModelSpec`: its fields less the image
    channels (always 3 here) and ``scale`` (a top-level key, shared with the data).
    :attr:`TrainConfig.spec` is the one conversion.
    """

    #: "rrdbnet" (ESRGAN) or "srresnet": the same network with SRResNet's residual blocks
    #: in the trunk (:mod:`esrgan_lab.model.srresnet`), for the architecture study.
    arch: Literal["rrdbnet", "srresnet"] = "rrdbnet"
    num_feat: int = 64
    num_block: int = 23
    num_grow_ch: int = 32
    res_scale: float = 0.2
    init_scale: float = 0.1
    #: None for ESRGAN; "batch" / "batch_hr" only for the BN-removal ablation.
    norm: Literal["batch", "batch_hr"] | None = None


@dataclass
class DataConfig:
    """Training and validation data."""

    #: Sources: dataset names under ESRGAN_LAB_DATA, folder paths, or "sample[:split]".
    train: list[str] = field(default_factory=lambda: ["sample:train"])
    #: Held-out validation sources (same syntax); empty list disables validation.
    val: list[str] = field(default_factory=lambda: ["sample:val"])
    gt_size: int = 128
    use_flip: bool = True
    use_rot: bool = True
    #: Per-process micro-batch: the global batch is batch_size * accumulate * world size.
    batch_size: int = 16
    #: Micro-batches accumulated per optimizer step (gradient accumulation, for small GPUs);
    #: a resumed run adjusts it to keep the checkpoint's global batch on another world size.
    accumulate: int = 1
    num_workers: int = 2
    #: Read training images from disk per sample (prepared sub-image folders, any size of
    #: dataset; memory bounded by batch and prefetch) instead of holding them in memory.
    lazy: bool = False
    #: LQ folders paired by file name with ``train`` (from ``prepare-data --lq-src``);
    #: empty: each GT image is degraded with MATLAB bicubic when it is read (lazy only).
    train_lq: list[str] = field(default_factory=list)
    #: Use at most this many validation images (None: all).
    val_max_images: int | None = None
    #: Validate on the central ``val_crop`` px square of each HR image (a multiple of the
    #: scale; None: whole images): cheap validation curves on large images (Urban100).
    val_crop: int | None = None


@dataclass
class PerceptualConfig:
    """Perceptual loss (paper Sec. 3.3); ``weight: 0`` drops the term (ablations)."""

    #: Layers (VGG19 names; before activation: convB_K, after: reluB_K) and their weights.
    layers: dict[str, float] = field(default_factory=lambda: {"conv5_4": 1.0})
    weight: float = 1.0
    criterion: Literal["l1", "l2"] = "l1"
    #: Feature network: "vgg19-imagenet" (the paper's), "vgg16-hed" (installs offline),
    #: "random" (untrained, only when named), or a VGG19 state-dict file. One that cannot be
    #: had is an error, never a fallback.
    backbone: str = "vgg19-imagenet"
    use_input_norm: bool = True
    range_norm: bool = False


@dataclass
class DiscriminatorConfig:
    """Discriminator and its optimizer."""

    type: Literal["vgg", "unet"] = "vgg"
    num_feat: int = 64
    learning_rate: float = 1e-4
    betas: list[float] = field(default_factory=lambda: [0.9, 0.99])
    weight_decay: float = 0.0
    milestones: list[int] = field(default_factory=lambda: [50000, 100000, 200000, 300000])
    gamma: float = 0.5


@dataclass
class StageConfig:
    """One training stage: iterations, generator optimizer and losses."""

    total_iter: int = 1000
    #: Wall-clock budget of the training loop in minutes (stops early, saves, exports).
    max_minutes: float | None = None
    learning_rate: float = 2e-4
    betas: list[float] = field(default_factory=lambda: [0.9, 0.99])
    weight_decay: float = 0.0
    milestones: list[int] = field(default_factory=lambda: [200000, 400000, 600000, 800000])
    gamma: float = 0.5
    #: EMA of the generator weights (BasicSR's ema_decay 0.999); null disables it.
    ema_decay: float | None = None
    #: Weight of the L1 pixel loss (1 in the PSNR stage, eta = 1e-2 in the GAN stage).
    pixel_weight: float = 1.0
    #: Learning-rate schedule: "multistep" (halve at ``milestones``, the paper's) or
    #: "cosine" (cosine annealing from ``learning_rate`` to ``eta_min`` over ``total_iter``,
    #: used by the short CPU recipes, which never reach the paper's milestones).
    scheduler: Literal["multistep", "cosine"] = "multistep"
    eta_min: float = 1e-7
    #: Generator weights to start from. GAN stage default: this run's PSNR-stage output.
    pretrained_g: str | None = None
    #: GAN stage only.
    perceptual: PerceptualConfig | None = None
    gan_type: Literal["ragan", "vanilla"] = "ragan"
    #: lambda of the paper (5e-3); 0 drops the adversarial term and the discriminator.
    gan_weight: float = 5e-3
    discriminator: DiscriminatorConfig | None = None


@dataclass
class RuntimeConfig:
    """Where and how to compute."""

    device: str = "auto"
    #: Mixed precision: "auto" (bf16 autocast where the device computes bf16 natively: CUDA,
    #: or a CPU with AVX512-BF16/AMX; fp32 elsewhere), "bf16" (required: an error where it
    #: is not native) or "none" (fp32).
    amp: Literal["auto", "none", "bf16"] = "auto"
    #: NHWC tensors for the convolutions (faster with oneDNN on CPU and cuDNN on GPU).
    channels_last: bool = True
    tf32: bool = True
    #: torch.set_num_threads on CPU (None: leave torch's default).
    num_threads: int | None = None


@dataclass
class LoggingConfig:
    """Logging, validation and checkpoint cadence (in iterations)."""

    log_every: int = 100
    val_every: int = 1000
    #: Also validate before the first step (iteration 0 of the curves).
    val_at_start: bool = False
    save_every: int = 1000
    keep_checkpoints: int = 2
    progress: bool = True
    #: Export weights as "float32" or "float16" (halves the file; for large models).
    export_dtype: Literal["float32", "float16"] = "float32"
    #: Every rank writes rank<r>/net_g.safetensors at the end (to check DDP sync).
    dump_rank_weights: bool = False


@dataclass
class TrainConfig:
    """A whole training run."""

    name: str = "run"
    seed: int = 0
    scale: int = 4
    stages: list[Literal["psnr", "gan"]] = field(default_factory=lambda: ["psnr"])
    model: ModelConfig = field(default_factory=ModelConfig)
    data: DataConfig = field(default_factory=DataConfig)
    psnr: StageConfig = field(default_factory=StageConfig)
    gan: StageConfig = field(
        default_factory=lambda: StageConfig(
            total_iter=400000,
            learning_rate=1e-4,
            milestones=[50000, 100000, 200000, 300000],
            pixel_weight=1e-2,
            perceptual=PerceptualConfig(),
            discriminator=DiscriminatorConfig(),
        )
    )
    runtime: RuntimeConfig = field(default_factory=RuntimeConfig)
    logging: LoggingConfig = field(default_factory=LoggingConfig)
    #: Output folder (CLI --out overrides); default runs/<name>.
    out: str | None = None

    def stage(self, name: str) -> StageConfig:
        return self.psnr if name == "psnr" else self.gan

    @property
    def spec(self) -> ModelSpec:
        """The generator this config trains (recorded in its exported weights)."""
        # The model: section has the spec's fields less scale and channels (a test holds it so).
        return ModelSpec(scale=self.scale, **dataclasses.asdict(self.model))


# --------------------------------------------------------------------------- validation


def _type_name(tp: Any) -> str:
    return getattr(tp, "__name__", None) or str(tp).replace("typing.", "")


def _convert(value: Any, tp: Any, key: str) -> Any:
    """Check/convert ``value`` against the annotation ``tp``; ConfigError on mismatch."""
    origin = get_origin(tp)
    if origin in (Union, types.UnionType):
        args = get_args(tp)
        if value is None:
            if type(None) in args:
                return None
            raise ConfigError(f"config key {key!r} must not be null")
        last: ConfigError | None = None
        for arg in args:
            if arg is type(None):
                continue
            try:
                return _convert(value, arg, key)
            except ConfigError as exc:
                last = exc
        assert last is not None
        raise last
    if origin is Literal:
        choices = get_args(tp)
        if value not in choices:
            raise ConfigError(f"config key {key!r} must be one of {list(choices)}, got {value!r}")
        return value
    if origin is list:
        if not isinstance(value, list | tuple):
            raise ConfigError(f"config key {key!r} must be a list, got {value!r}")
        (item_tp,) = get_args(tp)
        return [_convert(v, item_tp, f"{key}[{i}]") for i, v in enumerate(value)]
    if origin is dict:
        if not isinstance(value, dict):
            raise ConfigError(f"config key {key!r} must be a mapping, got {value!r}")
        k_tp, v_tp = get_args(tp)
        return {_convert(k, k_tp, key): _convert(v, v_tp, f"{key}.{k}") for k, v in value.items()}
    if dataclasses.is_dataclass(tp):
        return build(tp, value, key)
    if tp is bool:
        if not isinstance(value, bool):
            raise ConfigError(f"config key {key!r} must be true or false, got {value!r}")
        return value
    if tp is int:
        if isinstance(value, bool) or not isinstance(value, int | float) or int(value) != value:
            raise ConfigError(f"config key {key!r} must be an integer, got {value!r}")
        return int(value)
    if tp is float:
        if isinstance(value, str):
            try:
                return float(value)  # YAML reads "2e-4" (no dot) as a string
            except ValueError:
                pass
        if isinstance(value, bool) or not isinstance(value, int | float):
            raise ConfigError(f"config key {key!r} must be a number, got {value!r}")
        return float(value)
    if tp is str:
        if not isinstance(value, str):
            raise ConfigError(f"config key {key!r} must be a string, got {value!r}")
        return value
    raise ConfigError(f"config key {key!r}: unsupported type {_type_name(tp)}")  # pragma: no cover


def build(cls: type, data: Any, prefix: str = "") -> Any:
    """Instantiate dataclass ``cls`` from a mapping, rejecting unknown keys."""
    if data is None:
        data = {}
    if not isinstance(data, dict):
        raise ConfigError(f"config section {prefix or '<root>'!r} must be a mapping")
    hints = typing.get_type_hints(cls)
    names = {f.name for f in dataclasses.fields(cls)}
    kwargs = {}
    for key, value in data.items():
        dotted = f"{prefix}.{key}" if prefix else str(key)
        if key not in names:
            raise ConfigError(f"unknown config key {dotted!r}")
        kwargs[key] = _convert(value, hints[key], dotted)
    try:
        return cls(**kwargs)
    except TypeError as exc:  # pragma: no cover - defensive
        raise ConfigError(f"config section {prefix!r}: {exc}") from None


def to_dict(cfg: Any) -> dict[str, Any]:
    """A plain-data (YAML/JSON-able) copy of a config dataclass."""
    return dataclasses.asdict(cfg)


def _set_dotted(data: dict[str, Any], dotted: str, value: Any) -> None:
    parts = dotted.split(".")
    node = data
    for part in parts[:-1]:
        child = node.get(part)
        if child is None:
            child = {}
            node[part] = child
        if not isinstance(child, dict):
            raise ConfigError(f"--set {dotted}: {part!r} is not a section")
        node = child
    node[parts[-1]] = value


def parse_overrides(items: list[str] | None) -> list[tuple[str, Any]]:
    """``["psnr.total_iter=10", ...]`` -> ``[("psnr.total_iter", 10), ...]`` (YAML values)."""
    import yaml

    out = []
    for item in items or []:
        key, sep, raw = item.partition("=")
        if not sep or not key:
            raise ConfigError(f"--set expects key=value, got {item!r}")
        try:
            value = yaml.safe_load(raw) if raw else None
        except yaml.YAMLError:
            value = raw
        out.append((key.strip(), value))
    return out


def _merge_stage_defaults(data: dict[str, Any]) -> dict[str, Any]:
    """Let a partial ``gan:`` section keep the GAN-stage defaults it does not mention."""
    if isinstance(data.get("gan"), dict):
        defaults = to_dict(TrainConfig().gan)
        merged = {**defaults, **data["gan"]}
        for sub in ("perceptual", "discriminator"):
            if isinstance(data["gan"].get(sub), dict):
                merged[sub] = {**defaults[sub], **data["gan"][sub]}
        data = {**data, "gan": merged}
    return data


def load_config(
    path: str | Path | None = None, overrides: list[tuple[str, Any]] | None = None
) -> TrainConfig:
    """Read a YAML config, apply ``--set`` overrides, validate.

    Raises:
        ConfigError: Missing/unparsable file, unknown key, wrong type or bad combination.
    """
    import yaml

    data: dict[str, Any] = {}
    if path is not None:
        path = Path(path)
        if not path.is_file():
            raise ConfigError(f"{path}: no such config file")
        try:
            loaded = yaml.safe_load(path.read_text())
        except yaml.YAMLError as exc:
            first = str(exc).splitlines()[0] if str(exc) else type(exc).__name__
            raise ConfigError(f"{path}: not valid YAML ({first})") from None
        if loaded is not None and not isinstance(loaded, dict):
            raise ConfigError(f"{path}: top level must be a mapping")
        data = loaded or {}
    for key, value in overrides or []:
        _set_dotted(data, key, value)
    try:
        return from_dict(data)
    except ConfigError as exc:
        raise ConfigError(f"{path}: {exc}" if path is not None else str(exc)) from None


def from_dict(data: dict[str, Any]) -> TrainConfig:
    """A validated config from plain data (a partial ``gan:`` section keeps the GAN-stage
    defaults it does not mention).

    Raises:
        ConfigError: Unknown key, wrong type or bad combination.
    """
    cfg = build(TrainConfig, _merge_stage_defaults(data))
    check(cfg)
    return cfg


def check(cfg: TrainConfig) -> None:
    """Cross-field checks that types alone cannot express."""
    if not cfg.stages:
        raise ConfigError("config key 'stages' must name at least one stage")
    if cfg.scale not in (1, 2, 4, 8):
        raise ConfigError(f"config key 'scale' must be 1, 2, 4 or 8, got {cfg.scale}")
    # Sizes: types are checked on load; a zero or negative size would otherwise surface as
    # a traceback from torch ("negative dimension") long after the config was read.
    sizes = {
        "model.num_feat": cfg.model.num_feat,
        "model.num_block": cfg.model.num_block,
        "model.num_grow_ch": cfg.model.num_grow_ch,
        "data.gt_size": cfg.data.gt_size,
    }
    for name in cfg.stages:
        disc = cfg.stage(name).discriminator
        if name == "gan" and disc is not None:
            sizes["gan.discriminator.num_feat"] = disc.num_feat
    for key, value in sizes.items():
        if value < 1:
            raise ConfigError(f"config key {key!r} must be a positive integer, got {value}")
    if cfg.data.num_workers < 0:
        raise ConfigError(f"config key 'data.num_workers' must be >= 0, got {cfg.data.num_workers}")
    if cfg.runtime.num_threads is not None and cfg.runtime.num_threads < 1:
        raise ConfigError(
            f"config key 'runtime.num_threads' must be >= 1, got {cfg.runtime.num_threads}"
        )
    if cfg.data.gt_size % cfg.scale:
        raise ConfigError("config key 'data.gt_size' must be a multiple of 'scale'")
    crop = cfg.data.val_crop
    if crop is not None and (crop < cfg.scale or crop % cfg.scale):
        raise ConfigError(
            f"config key 'data.val_crop' must be a positive multiple of 'scale', got {crop}"
        )
    if cfg.data.batch_size < 1:
        raise ConfigError("config key 'data.batch_size' must be >= 1")
    if cfg.data.accumulate < 1:
        raise ConfigError("config key 'data.accumulate' must be >= 1")
    if cfg.data.train_lq and not cfg.data.lazy:
        raise ConfigError("config key 'data.train_lq' needs 'data.lazy: true'")
    if cfg.data.train_lq and len(cfg.data.train_lq) != len(cfg.data.train):
        raise ConfigError("config key 'data.train_lq' must pair one LQ folder with each 'train'")
    for name in cfg.stages:
        st = cfg.stage(name)
        if st.total_iter < 1:
            raise ConfigError(f"config key '{name}.total_iter' must be >= 1")
        if len(st.betas) != 2:
            raise ConfigError(f"config key '{name}.betas' must have two values")
        if st.ema_decay is not None and not 0.0 < st.ema_decay < 1.0:
            raise ConfigError(f"config key '{name}.ema_decay' must be in (0, 1)")
        if name == "gan":
            if st.perceptual is None or st.discriminator is None:
                raise ConfigError("the gan stage needs 'gan.perceptual' and 'gan.discriminator'")
            if st.discriminator.type == "vgg" and cfg.data.gt_size not in (128, 256):
                raise ConfigError(
                    "the 'vgg' discriminator needs data.gt_size 128 or 256; use "
                    "gan.discriminator.type: unet for other sizes"
                )
            if st.discriminator.type == "unet" and cfg.data.gt_size % 8:
                raise ConfigError("the 'unet' discriminator needs data.gt_size divisible by 8")
    for key in ("log_every", "val_every", "save_every"):
        if getattr(cfg.logging, key) < 1:
            raise ConfigError(f"config key 'logging.{key}' must be >= 1")
