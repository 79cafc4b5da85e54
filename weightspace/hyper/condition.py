"""Conditions of a hypernetwork: checked at the boundary, and the MIP input encoding.

A hypernetwork's condition ``gamma`` is a vector of ``c`` numbers in ``[0, 1]`` (a loss weight,
a regularisation strength, a one-hot class). Magnitude Invariant Parametrizations (Ortiz, Guttag,
Dalca, ICLR 2024) encode every entry as

.. math::
    E(\\gamma) = [\\cos(\\pi \\gamma / 2), \\sin(\\pi \\gamma / 2)]

so that ``||E(gamma)||^2 = c`` for every condition: the size of the hypernetwork's input, and so
of its output, no longer grows with ``gamma`` (a plain MLP with zero biases and ReLUs is
positively homogeneous, ``h(a gamma) = a h(gamma)``). The encoding is elementwise, so it runs
under ``torch.vmap``; :func:`check_conditions` is the (not vmap-able) check done once per batch.
"""

from __future__ import annotations

import math

import torch
from torch import Tensor


def check_conditions(conditions, cond_dim: int) -> Tensor:
    """``conditions`` as a float ``[B, cond_dim]`` tensor, or a ``ValueError`` saying what is
    wrong. A 1-D tensor is one condition when its size is ``cond_dim``, and else -- for
    ``cond_dim == 1`` only -- ``B`` scalar conditions; a float is one scalar condition."""
    g = torch.as_tensor(conditions)
    if not (g.is_floating_point() or g.dtype in (torch.int64, torch.int32, torch.bool)):
        raise ValueError(f"conditions must be numbers, got dtype {g.dtype}")
    g = g.float() if not g.is_floating_point() else g
    if g.dim() == 0:
        g = g.reshape(1, 1)
    elif g.dim() == 1:
        g = g.unsqueeze(0) if g.numel() == cond_dim else g.unsqueeze(1)
    if g.dim() != 2 or g.shape[1] != cond_dim:
        raise ValueError(f"conditions must have {cond_dim} value(s) each ([B, {cond_dim}]), got "
                         f"shape {list(torch.as_tensor(conditions).shape)}")
    if g.shape[0] == 0:
        raise ValueError("no conditions given")
    if not torch.isfinite(g).all():
        raise ValueError("conditions hold NaN or inf values")
    low, high = float(g.min()), float(g.max())
    if low < 0 or high > 1:
        raise ValueError(f"conditions must lie in [0, 1] (the MIP encoding maps [0, 1] onto a "
                         f"quarter circle); got values in [{low:g}, {high:g}]")
    return g


def mip_encoding(conditions: Tensor) -> Tensor:
    """``[..., c] -> [..., 2c]``: ``[cos(pi g / 2), sin(pi g / 2)]`` per entry."""
    angle = conditions * (math.pi / 2)
    return torch.cat([angle.cos(), angle.sin()], -1)
