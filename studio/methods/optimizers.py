"""The optimiser every method trains with: Adam, fused into one kernel per parameter where torch has that kernel.

torch's default Adam on the CPU loops over the parameters and makes several elementwise passes over each (lerp,
sqrt, div, addcdiv, ...). ``benchmarks/profile_hot_paths.py`` showed those passes taking about a fifth of a GZS-Net
CPU step; the fused kernel does one pass per parameter (``benchmarks/optimizer_impl.py``: the optimiser step 24 ms
to 4 ms, the whole step 1.19x faster). The arithmetic is Adam's either way, but the fused kernel walks a parameter
and its state in memory order, so both must be laid out alike: :func:`match_state_layout` sees to that after a
weight's memory format changes under a restored optimiser.
"""

from __future__ import annotations

from collections.abc import Iterable
from typing import Any

import torch
from torch import nn

#: Device types whose fused Adam kernel we have measured or that torch documents for it.
FUSED_DEVICES = ("cpu", "cuda")


def adam(params: Iterable[nn.Parameter] | Iterable[dict[str, Any]], **options: Any) -> torch.optim.Adam:
    """``torch.optim.Adam`` over ``params`` (tensors or param-group dicts), fused when every parameter is a
    floating-point tensor on a device in ``FUSED_DEVICES`` (the method is on its training device by then)."""
    groups = [dict(p, params=list(p["params"])) if isinstance(p, dict) else p for p in params]
    tensors = [t for g in groups for t in (g["params"] if isinstance(g, dict) else [g])]
    fused = bool(tensors) and all(t.device.type in FUSED_DEVICES and t.is_floating_point() for t in tensors)
    return torch.optim.Adam(groups, fused=fused or None, **options)


def match_state_layout(optimizer: torch.optim.Optimizer) -> None:
    """Give every state tensor shaped like its parameter that parameter's strides (e.g. channels-last), keeping
    its values. A restored state arrives contiguous; the fused kernel would pair it with a channels-last weight
    element by element in memory and compute garbage, silently."""
    for param, state in optimizer.state.items():
        for key, value in state.items():
            if (isinstance(value, torch.Tensor) and value.shape == param.shape and value.dim() > 1
                    and value.stride() != param.stride()):
                state[key] = torch.empty_like(param, dtype=value.dtype).copy_(value)
