"""``merge``: one network from several of one architecture, averaged after alignment.

Averaging the weights of two networks trained apart mostly averages neurons that do different
things, and the average is worse than either (the loss barrier of Frankle et al. 2020). Aligned
first (:func:`~weightspace.alignment.align`, every network onto the first), corresponding
neurons meet, and the average can keep what the networks know (Ainsworth et al. 2023).
BatchNorm statistics of an average no longer describe its activations; with ``data`` they are
re-estimated (the reset of REPAIR / Git Re-Basin).
"""

from __future__ import annotations

import copy
from collections.abc import Sequence

import torch
from torch import nn

from weightspace.alignment import network
from weightspace.batchnorm import recalibrate_batchnorm
from weightspace.graph.spec import GraphSpec

METHODS = ("average",)


def merge(models: Sequence[nn.Module], *, weights: Sequence[float] | None = None,
          method: str = "average", align: bool = True, data=None,
          example_inputs=None) -> nn.Module:
    """``sum_k w_k g_k(theta_k)``: the weighted average of ``models`` (weights ``w``, equal by
    default), each first aligned onto ``models[0]`` by its symmetry ``g_k`` unless
    ``align=False``. ``data``: inputs (or ``(x, y)``) on which BatchNorm statistics are
    re-estimated. Returns a new module of the models' architecture."""
    if method not in METHODS:
        raise ValueError(f"method must be one of {METHODS}, got {method!r}")
    if len(models) < 2:
        raise ValueError(f"merge needs at least two networks, got {len(models)}")
    w = torch.full((len(models),), 1 / len(models), dtype=torch.float64) if weights is None \
        else torch.as_tensor(weights, dtype=torch.float64)
    if w.shape != (len(models),) or (w < 0).any() or abs(float(w.sum()) - 1) > 1e-6:
        raise ValueError(f"weights must be {len(models)} non-negative numbers summing to 1, "
                         f"got {list(weights or [])}")
    spec = GraphSpec.from_module(models[0], example_inputs)
    aligned = [models[0]] + [network.align(models[0], m, example_inputs=example_inputs)
                             if align else m for m in models[1:]]
    vec = sum(wk * spec.flatten(m).double() for wk, m in zip(w, aligned, strict=True))
    buffers = (sum(wk * spec.flatten_buffers(m).double() for wk, m in zip(w, aligned,
                                                                           strict=True))
               if len(spec.buffers) else None)
    merged = copy.deepcopy(models[0])
    merged.load_state_dict(spec.unflatten(vec.float(), buffers), strict=True)
    if data is not None:
        recalibrate_batchnorm(merged, data)
    return merged.eval()
