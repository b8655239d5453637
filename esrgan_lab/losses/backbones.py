"""VGG19 feature extractor for the perceptual loss (ESRGAN Sec. 3.3).

The network is torchvision's ``vgg19().features`` with the same parameter names
(``features.0.weight`` ... ``features.34.bias``), so torchvision's ImageNet state dict
``vgg19-dcbb9e9d.pth`` loads into it unchanged. Every layer also has a readable name:

===========  =====================================================================
name         layer
===========  =====================================================================
``convB_K``  K-th 3x3 conv of block B (B = 1..5), the output **before** the ReLU
``reluB_K``  the ReLU after it (the output **after** activation)
``poolB``    the 2x2 max-pool closing block B
===========  =====================================================================

ESRGAN's choice (paper Sec. 3.3) is ``conv5_4``: features *before* activation, because
after ReLU the deep features are sparse (most are zero) and carry weaker supervision,
and they give an inconsistent reconstructed brightness.

ImageNet weights cannot always be fetched (this project's build machines are offline).
:class:`VGGFeatureExtractor` never hides that: when it has to fall back to a random
initialisation it warns and says so in :attr:`VGGFeatureExtractor.weights_source`.
"""

from __future__ import annotations

import os
import re
import urllib.parse
import warnings
from collections.abc import Sequence
from pathlib import Path

import torch
from torch import nn

from ..errors import CheckpointError, DownloadError

#: torchvision's ImageNet VGG19 (no BatchNorm); the file name carries the SHA-256 prefix.
VGG19_URL = "https://download.pytorch.org/models/vgg19-dcbb9e9d.pth"
VGG19_FILENAME = "vgg19-dcbb9e9d.pth"
VGG19_HASH_PREFIX = "dcbb9e9d"
#: ImageNet statistics of RGB inputs on [0, 1] (what torchvision's weights expect).
IMAGENET_MEAN = (0.485, 0.456, 0.406)
IMAGENET_STD = (0.229, 0.224, 0.225)
#: Text of :attr:`VGGFeatureExtractor.weights_source` for a random network.
RANDOM_INIT = "random-init (ImageNet weights unavailable)"

#: Convolutions per block of VGG19 (configuration "E" of Simonyan & Zisserman).
_VGG19_BLOCKS = (2, 2, 4, 4, 4)


def vgg19_layer_names() -> list[str]:
    """Names of the 37 layers of ``vgg19().features`` in order (index = torchvision index)."""
    names: list[str] = []
    for block, n_conv in enumerate(_VGG19_BLOCKS, start=1):
        for k in range(1, n_conv + 1):
            names += [f"conv{block}_{k}", f"relu{block}_{k}"]
        names.append(f"pool{block}")
    return names


VGG19_LAYERS: tuple[str, ...] = tuple(vgg19_layer_names())


def _build_features(num_layers: int) -> nn.Sequential:
    """The first ``num_layers`` layers of ``vgg19().features`` (torchvision indices)."""
    layers: list[nn.Module] = []
    in_ch = 3
    for name in VGG19_LAYERS[:num_layers]:
        if name.startswith("conv"):
            block = int(name[4])
            out_ch = min(64 * 2 ** (block - 1), 512)
            layers.append(nn.Conv2d(in_ch, out_ch, 3, 1, 1))
            in_ch = out_ch
        elif name.startswith("relu"):
            # Not in-place: an in-place ReLU would overwrite the conv output that a
            # "convB_K" (before activation) feature refers to.
            layers.append(nn.ReLU(inplace=False))
        else:
            layers.append(nn.MaxPool2d(2, 2))
    return nn.Sequential(*layers)


def _random_init(features: nn.Sequential, seed: int) -> None:
    """torchvision's VGG init (Kaiming normal, fan_out) from a fixed seed.

    A fixed seed makes the random network identical in every process (DDP ranks, resumed
    runs), so a perceptual loss on it is at least a well-defined function.
    """
    gen = torch.Generator().manual_seed(seed)
    for m in features.modules():
        if isinstance(m, nn.Conv2d):
            fan_out = m.out_channels * m.kernel_size[0] * m.kernel_size[1]
            std = (2.0 / fan_out) ** 0.5
            with torch.no_grad():
                m.weight.copy_(torch.randn(m.weight.shape, generator=gen) * std)
                m.bias.zero_()


def _load_state_file(path: Path) -> dict[str, torch.Tensor]:
    if not path.is_file():
        raise CheckpointError(f"{path}: no such VGG19 weights file")
    try:
        if path.suffix.lower() == ".safetensors":
            from safetensors.torch import load_file

            return load_file(str(path))
        obj = torch.load(path, map_location="cpu", weights_only=True)
    except Exception as exc:  # torch/safetensors raise several types
        raise CheckpointError(f"{path}: cannot read VGG19 weights ({exc})") from exc
    if not isinstance(obj, dict):
        raise CheckpointError(f"{path}: VGG19 weights file does not hold a state dict")
    return obj


def fetch_vgg19_imagenet(
    cache_dir: str | os.PathLike[str] | None = None, url: str = VGG19_URL
) -> Path:
    """Path of a VGG19 state dict from ``url``, downloading it into the cache if needed.

    The default is torchvision's ImageNet file, cached as
    ``<weights_dir>/vgg19-dcbb9e9d.pth``. As torchvision does, a file name of the form
    ``name-<hex>.pth`` carries the SHA-256 prefix the download is checked against.

    Raises:
        DownloadError: Not cached and the download failed (offline, HTTP error, hash).
    """
    from ..settings import weights_dir

    folder = Path(cache_dir) if cache_dir is not None else weights_dir()
    filename = Path(urllib.parse.urlparse(url).path).name or VGG19_FILENAME
    match = re.search(r"-([0-9a-f]{8,})\.", filename)
    hash_prefix = match.group(1) if match else None
    target = folder / filename
    if target.is_file():
        return target
    from ..weights.registry import download_file

    try:
        download_file(url, target, hash_prefix, progress=False)
    except DownloadError as exc:  # offline, HTTP error, truncated, wrong hash
        raise DownloadError(
            f"cannot download VGG19 weights from {url} ({exc}); put {filename} into {folder}"
        ) from exc
    return target


class VGGFeatureExtractor(nn.Module):
    """Frozen VGG19 that returns the named intermediate features.

    Args:
        layer_names: Layers to return, e.g. ``["conv5_4"]`` (before activation) or
            ``["relu5_4"]`` (after). The network is cut after the deepest one.
        weights: ``"imagenet"`` (torchvision's weights from the cache or the internet),
            another ``https://`` URL of such a file, a path to a ``.pth``/``.safetensors``
            state dict in torchvision's layout, or ``None`` for a deliberately random
            network.
        use_input_norm: Normalise RGB inputs on [0, 1] with the ImageNet mean/std (what
            the ImageNet weights expect).
        range_norm: Inputs are on [-1, 1]; map them to [0, 1] first.
        allow_random_init: With ``weights="imagenet"``, fall back to a random network
            (with a warning) when the weights cannot be obtained, instead of raising.
        seed: Seed of the random initialisation (same network in every process).

    Attributes:
        weights_source: Where the weights came from: a file path, or :data:`RANDOM_INIT`.

    Shapes:
        ``(N, 3, H, W) -> {name: (N, C_name, H / 2^p, W / 2^p)}`` where ``p`` is the
        number of pools before that layer.
    """

    def __init__(
        self,
        layer_names: Sequence[str] = ("conv5_4",),
        weights: str | os.PathLike[str] | None = "imagenet",
        use_input_norm: bool = True,
        range_norm: bool = False,
        allow_random_init: bool = True,
        seed: int = 0,
    ) -> None:
        super().__init__()
        unknown = [n for n in layer_names if n not in VGG19_LAYERS]
        if unknown or not layer_names:
            raise ValueError(
                f"unknown VGG19 layer(s) {unknown or list(layer_names)}; "
                f"expected names like conv5_4, relu5_4, pool4"
            )
        self.layer_names = list(layer_names)
        last = max(VGG19_LAYERS.index(n) for n in self.layer_names)
        self.features = _build_features(last + 1)
        self.use_input_norm = use_input_norm
        self.range_norm = range_norm
        self.register_buffer("mean", torch.tensor(IMAGENET_MEAN).view(1, 3, 1, 1))
        self.register_buffer("std", torch.tensor(IMAGENET_STD).view(1, 3, 1, 1))
        self.weights_source = self._load(weights, allow_random_init, seed)
        self.eval()
        for p in self.parameters():
            p.requires_grad_(False)

    @property
    def pretrained(self) -> bool:
        """True when the weights were loaded from a file (not random)."""
        return self.weights_source != RANDOM_INIT

    def _load(self, weights: str | os.PathLike[str] | None, allow_random: bool, seed: int) -> str:
        if weights is None:
            _random_init(self.features, seed)
            warnings.warn(
                "VGG19 perceptual loss uses a RANDOM network (weights=None): it is not the "
                "paper's ImageNet-trained VGG19",
                stacklevel=3,
            )
            return RANDOM_INIT
        text = str(weights)
        if text.lower() == "imagenet" or text.startswith(("http://", "https://")):
            try:
                url = VGG19_URL if text.lower() == "imagenet" else text
                path = fetch_vgg19_imagenet(url=url)
            except DownloadError as exc:
                if not allow_random:
                    raise
                _random_init(self.features, seed)
                warnings.warn(
                    f"VGG19 ImageNet weights unavailable ({exc}); the perceptual loss uses "
                    "a RANDOM network instead - not the paper's setting",
                    stacklevel=3,
                )
                return RANDOM_INIT
        else:
            path = Path(weights).expanduser()
        state = _load_state_file(path)
        own = self.features.state_dict()
        wanted = {f"features.{k}": v for k, v in own.items()}
        missing = [k for k in wanted if k not in state]
        if missing:
            raise CheckpointError(
                f"{path}: not a torchvision VGG19 state dict (missing {missing[0]})"
            )
        for key, tensor in wanted.items():
            if state[key].shape != tensor.shape:
                raise CheckpointError(
                    f"{path}: {key} has shape {tuple(state[key].shape)}, "
                    f"expected {tuple(tensor.shape)}"
                )
        self.features.load_state_dict({k[len("features.") :]: state[k] for k in wanted})
        return str(path)

    def train(self, mode: bool = True) -> VGGFeatureExtractor:
        # Always frozen and in eval mode (it has no BatchNorm, but stay explicit).
        return super().train(False)

    def forward(self, x: torch.Tensor) -> dict[str, torch.Tensor]:
        if self.range_norm:
            x = (x + 1) / 2
        if self.use_input_norm:
            x = (x - self.mean) / self.std
        out: dict[str, torch.Tensor] = {}
        wanted = set(self.layer_names)
        for name, layer in zip(VGG19_LAYERS, self.features):
            x = layer(x)
            if name in wanted:
                out[name] = x
            if len(out) == len(wanted):
                break
        return out
