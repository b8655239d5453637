"""Parameters and FLOPs, per component, under named counting conventions.

"FLOPs" means different things in different tables, so every number here carries the
name of its convention:

=================  ======================================================================
convention         what is counted
=================  ======================================================================
``flop_counter``   ``torch.utils.flop_counter.FlopCounterMode``: 2 x multiply-accumulates
                   of every convolution (element-wise ops, interpolation, LeakyReLU are
                   free). 587.43 G for the x4 model on a 3x128x128 input.
``conv_macs``      multiply-accumulates of the convolutions only (= ``flop_counter`` / 2).
``thop``           what the ``thop`` profiler calls "MACs": conv MACs + one add per output
                   element for the bias + one op per LeakyReLU input element (+ 2 per
                   BatchNorm element). 294.15 G for the x4 model at 3x128x128.
``vendor``           the vendor benchmark's script: ``thop_macs / 9e8 * 2`` printed as "GFLOPs".
                   Dividing by 9e8 instead of 1e9 inflates the figure by 1/0.9, giving
                   653.675 for the x4 model at 3x128x128.
=================  ======================================================================
"""

from __future__ import annotations

import copy
from collections import defaultdict
from dataclasses import dataclass, field

import torch
from torch import nn
from torch.utils.flop_counter import FlopCounterMode

from .spec import ModelSpec

CONVENTIONS: tuple[str, ...] = ("flop_counter", "conv_macs", "thop", "vendor")

#: The vendor's divisor: its script printed ``macs / 9e8 * 2`` as "GFLOPs".
VENDOR_DIVISOR = 9e8


def component_of(name: str) -> str:
    """Map a module name of :class:`RRDBNet` to its component in the paper's figure."""
    head = name.split(".", 1)[0]
    if head == "body":
        return "body (RRDB trunk)"
    if head.startswith(("conv_up", "bn_up")):
        return "upsampling"
    if head in ("bn_body",):
        return "conv_body"
    if head in ("bn_hr",):
        return "conv_hr"
    if head == "lrelu":
        return "lrelu (upsampler, HR)"
    return head or "(root)"


def parameter_table(model: nn.Module) -> dict[str, int]:
    """Number of parameters per component, in forward order, plus ``"total"``."""
    table: dict[str, int] = {}
    for name, param in model.named_parameters():
        key = component_of(name)
        table[key] = table.get(key, 0) + param.numel()
    table["total"] = sum(p.numel() for p in model.parameters())
    return table


@dataclass
class FlopReport:
    """FLOPs of one forward pass, per component and convention.

    Attributes:
        input_shape: ``(N, C, H, W)`` of the input.
        per_component: ``{convention: {component: count}}`` in raw operations.
        totals: ``{convention: count}``; ``vendor`` is already in the vendor's "GFLOPs".
    """

    input_shape: tuple[int, ...]
    per_component: dict[str, dict[str, float]] = field(default_factory=dict)
    totals: dict[str, float] = field(default_factory=dict)

    def giga(self, convention: str) -> float:
        """Total in units of 1e9 (the ``vendor`` convention is returned as printed)."""
        value = self.totals[convention]
        return value if convention == "vendor" else value / 1e9


def count_flops(model: nn.Module, input_shape: tuple[int, ...] = (1, 3, 128, 128)) -> FlopReport:
    """Count the FLOPs of ``model`` on a zero input of ``input_shape`` in every convention.

    The counting runs on a copy of the model on the meta device (shapes only: no memory,
    no compute), so it is instant even for large inputs.

    Args:
        model: Any module; components are named by :func:`component_of`.
        input_shape: ``(N, C, H, W)``.

    Returns:
        A :class:`FlopReport`.
    """
    conv_macs: dict[str, float] = defaultdict(float)
    thop: dict[str, float] = defaultdict(float)
    handles = []

    def hook(name: str):
        def fn(module: nn.Module, inputs: tuple, output: torch.Tensor) -> None:
            key = component_of(name)
            if isinstance(module, nn.Conv2d):
                kernel = module.weight.shape[2] * module.weight.shape[3]
                macs = output.numel() * (module.in_channels // module.groups) * kernel
                conv_macs[key] += macs
                thop[key] += macs + (output.numel() if module.bias is not None else 0)
            elif isinstance(module, nn.LeakyReLU):
                thop[key] += inputs[0].numel()
            elif isinstance(module, nn.BatchNorm2d):
                thop[key] += 2 * inputs[0].numel()

        return fn

    if any(p.device.type != "meta" for p in model.parameters()):
        model = copy.deepcopy(model).to("meta")
    for name, module in model.named_modules():
        if isinstance(module, (nn.Conv2d, nn.LeakyReLU, nn.BatchNorm2d)):
            handles.append(module.register_forward_hook(hook(name)))
    was_training = model.training
    model.eval()
    try:
        x = torch.zeros(input_shape, device="meta")
        counter = FlopCounterMode(display=False)
        with torch.no_grad(), counter:
            model(x)
    finally:
        for h in handles:
            h.remove()
        model.train(was_training)
    report = FlopReport(tuple(input_shape))
    report.per_component["conv_macs"] = dict(conv_macs)
    report.per_component["flop_counter"] = {k: 2 * v for k, v in conv_macs.items()}
    report.per_component["thop"] = dict(thop)
    report.per_component["vendor"] = {k: v / VENDOR_DIVISOR * 2 for k, v in thop.items()}
    report.totals["flop_counter"] = float(counter.get_total_flops())
    report.totals["conv_macs"] = sum(conv_macs.values())
    report.totals["thop"] = sum(thop.values())
    report.totals["vendor"] = report.totals["thop"] / VENDOR_DIVISOR * 2
    return report


def complexity_report(spec: ModelSpec | None = None, *, size: int | tuple[int, int] = 128) -> dict:
    """Parameters and FLOPs of a generator (default: the paper's) on one ``size`` input.

    Args:
        spec: The architecture; ``None`` for ESRGAN's (23 blocks, 64 features, x4).
        size: Input side, or ``(height, width)``.

    Returns:
        ``{"spec", "input_shape", "parameters", "parameters_per_component", "flops",
        "flops_per_component"}`` with FLOPs in raw operations per convention (``vendor`` in
        the vendor's printed GFLOPs) and ``spec`` as :meth:`ModelSpec.to_config` (JSON-able).
    """
    spec = spec or ModelSpec()
    height, width = (size, size) if isinstance(size, int) else size
    with torch.device("meta"):
        model = spec.build()
    report = count_flops(model, (1, spec.num_in_ch, height, width))
    return {
        "spec": spec.to_config(),
        "input_shape": report.input_shape,
        "parameters": sum(p.numel() for p in model.parameters()),
        "parameters_per_component": parameter_table(model),
        "flops": report.totals,
        "flops_per_component": report.per_component,
    }
