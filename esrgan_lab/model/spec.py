"""One typed description of a generator: :class:`ModelSpec`.

Every place that needs a generator's sizes takes a :class:`ModelSpec` rather than its
own list of keyword arguments: checkpoint detection returns one
(:func:`esrgan_lab.weights.checkpoints.detect_spec`), it builds the network
(:meth:`ModelSpec.build`), the cost models take one (:func:`~.complexity.complexity_report`,
:func:`~.memory.memory_estimate`), the training configuration produces one
(:meth:`esrgan_lab.training.config.TrainConfig.spec`), the architecture explorer shows
one, and it is what ``.safetensors`` metadata records (:meth:`ModelSpec.to_config`).

Example::

    spec = ModelSpec(num_block=3, num_feat=32, num_grow_ch=16)
    model = spec.build()                  # RRDBNet(scale=4, num_feat=32, ...)
    assert ModelSpec.of(model) == spec    # a built model knows its spec
"""

from __future__ import annotations

import dataclasses
from collections.abc import Mapping
from dataclasses import dataclass
from typing import Any, Literal

from torch import nn

from ..errors import ConfigError
from .rrdbnet import INIT_SCALE, RES_SCALE, Norm

Arch = Literal["rrdbnet", "srresnet"]

#: Pixel-unshuffle factor in front of the trunk per scale (BasicSR's x1/x2 models): the
#: trunk always runs at a quarter of the output size.
UNSHUFFLE = {1: 4, 2: 2, 4: 1, 8: 1}


@dataclass(frozen=True, kw_only=True)
class ModelSpec:
    """A generator's architecture: everything needed to build it, nothing trained.

    Attributes:
        arch: ``"rrdbnet"`` (ESRGAN) or ``"srresnet"`` (the same network with SRResNet's
            residual blocks in the trunk, for the architecture study).
        num_in_ch: Image channels in.
        num_out_ch: Image channels out.
        scale: Upscaling factor: 1, 2, 4 or 8.
        num_feat: Trunk channels (``nf``).
        num_block: RRDBs (or residual blocks) in the trunk (``nb``).
        num_grow_ch: Dense growth channels (``gc``; always 0 for ``srresnet``).
        norm: ``None`` for ESRGAN; ``"batch"`` / ``"batch_hr"`` for the BN-removal ablation.
        res_scale: Residual scaling beta (paper Sec. 3.1). Invisible in a state dict's
            shapes, so checkpoints record it in their metadata.
        init_scale: Multiplier on the MSRA init of the trunk's convs (Sec. 3.1); matters
            only for an untrained network.
    """

    arch: Arch = "rrdbnet"
    num_in_ch: int = 3
    num_out_ch: int = 3
    scale: int = 4
    num_feat: int = 64
    num_block: int = 23
    num_grow_ch: int = 32
    norm: Norm = None
    res_scale: float = RES_SCALE
    init_scale: float = INIT_SCALE

    def __post_init__(self) -> None:
        if self.arch not in ("rrdbnet", "srresnet"):
            raise ConfigError(f"arch must be 'rrdbnet' or 'srresnet', got {self.arch!r}")
        if self.scale not in UNSHUFFLE:
            raise ConfigError(f"scale must be 1, 2, 4 or 8, got {self.scale}")
        if self.norm not in (None, "batch", "batch_hr"):
            raise ConfigError(f"norm must be None, 'batch' or 'batch_hr', got {self.norm!r}")
        if self.arch == "srresnet":
            if self.norm is not None:
                raise ConfigError("the srresnet trunk has no BatchNorm variant (norm must be None)")
            # Its residual blocks have no dense growth channels: one spelling, 0.
            object.__setattr__(self, "num_grow_ch", 0)
        for name in ("num_in_ch", "num_out_ch", "num_feat", "num_grow_ch", "num_block"):
            value = getattr(self, name)
            smallest = 0 if name in ("num_block", "num_grow_ch") else 1
            if isinstance(value, bool) or not isinstance(value, int) or value < smallest:
                raise ConfigError(f"{name} must be an integer >= {smallest}, got {value!r}")

    @property
    def unshuffle(self) -> int:
        """Pixel-unshuffle factor in front of ``conv_first`` (4 for x1, 2 for x2, else 1)."""
        return UNSHUFFLE[self.scale]

    @property
    def num_up(self) -> int:
        """Nearest-x2 upsampling stages: 3 for x8, otherwise 2."""
        return 3 if self.scale == 8 else 2

    def replace(self, **changes: Any) -> ModelSpec:
        """A copy with some fields changed (validated again)."""
        return dataclasses.replace(self, **changes)

    def build(self) -> nn.Module:
        """The untrained network (initialised from torch's global RNG)."""
        kwargs = {f.name: getattr(self, f.name) for f in dataclasses.fields(self)}
        if kwargs.pop("arch") == "srresnet":
            from .srresnet import SRResNetTrunk

            del kwargs["num_grow_ch"], kwargs["norm"]
            return SRResNetTrunk(**kwargs)
        from .rrdbnet import RRDBNet

        return RRDBNet(**kwargs)

    def to_config(self) -> dict[str, Any]:
        """What checkpoint metadata records (JSON-able; ``arch`` only when not RRDBNet,
        ``init_scale`` never: it says nothing about trained weights)."""
        config = {
            f.name: getattr(self, f.name)
            for f in dataclasses.fields(self)
            if f.name not in ("arch", "init_scale")
        }
        return config if self.arch == "rrdbnet" else {"arch": self.arch} | config

    @classmethod
    def from_config(cls, config: Mapping[str, Any]) -> ModelSpec:
        """The spec a recorded config describes (missing fields take their defaults).

        Raises:
            ConfigError: An unknown key or an invalid value.
        """
        names = {f.name for f in dataclasses.fields(cls)}
        unknown = sorted(set(config) - names)
        if unknown:
            raise ConfigError(f"unknown model config key {unknown[0]!r} (known: {sorted(names)})")
        values = dict(config)
        if isinstance(values.get("res_scale"), int):
            values["res_scale"] = float(values["res_scale"])
        return cls(**values)

    @classmethod
    def of(cls, model: nn.Module) -> ModelSpec:
        """The spec of a built :class:`~.rrdbnet.RRDBNet` (or ``SRResNetTrunk``).

        Raises:
            ConfigError: ``model`` is not one of the project's generators.
        """
        from .rrdbnet import RRDBNet
        from .srresnet import SRResNetTrunk

        if not isinstance(model, RRDBNet):
            raise ConfigError(f"{type(model).__name__} is not an RRDBNet: it has no ModelSpec")
        # Every field but arch is an attribute of the same name on the built model.
        values = {
            f.name: getattr(model, f.name) for f in dataclasses.fields(cls) if f.name != "arch"
        }
        for name in ("res_scale", "init_scale"):
            values[name] = float(values[name])
        return cls(arch="srresnet" if isinstance(model, SRResNetTrunk) else "rrdbnet", **values)

    def describe(self) -> str:
        """``"RRDBNet x4, num_block=23, num_feat=64, num_grow_ch=32"`` (plus what differs
        from ESRGAN: norm, beta, channels)."""
        name = "RRDBNet" if self.arch == "rrdbnet" else "SRResNet trunk"
        parts = [f"{name} x{self.scale}", f"num_block={self.num_block}"]
        parts.append(f"num_feat={self.num_feat}")
        if self.arch == "rrdbnet":
            parts.append(f"num_grow_ch={self.num_grow_ch}")
        if (self.num_in_ch, self.num_out_ch) != (3, 3):
            parts.append(f"channels {self.num_in_ch}->{self.num_out_ch}")
        if self.norm is not None:
            parts.append(f"norm={self.norm}")
        if self.res_scale != RES_SCALE:
            parts.append(f"beta={self.res_scale:g}")
        return ", ".join(parts)
