"""``merge``: one network from several of one architecture, averaged after alignment.

Averaging the weights of two networks trained apart mostly averages neurons that do different
things, and the average is worse than either (the loss barrier of Frankle et al. 2020). Aligned
first (:func:`~weightspace.alignment.align`, every network onto the first), corresponding
neurons meet, and the average can keep what the networks know (Ainsworth et al. 2023).
BatchNorm statistics of an average no longer describe its activations; with ``data`` they are
re-estimated (the reset of REPAIR / Git Re-Basin). Fisher merging weighs each weight by how
much each network's predictions depend on it.
"""

from __future__ import annotations

import copy
from collections.abc import Sequence

import torch
from torch import nn

from weightspace.alignment import network
from weightspace.alignment.fisher import diagonal_fisher
from weightspace.batchnorm import recalibrate_batchnorm
from weightspace.graph.convert import load_flat
from weightspace.graph.spec import GraphSpec

METHODS = ("average", "fisher")
# Fisher values below this are raised to it, so that a weight no network's predictions depend
# on is averaged plainly instead of divided by zero (Matena & Raffel use the same floor).
FISHER_FLOOR = 1e-6


def merge(models: Sequence[nn.Module], *, weights: Sequence[float] | None = None,
          method: str = "average", align: bool | str = True, data=None,
          example_inputs=None) -> nn.Module:
    """One network of the models' architecture from ``models``, each first aligned onto
    ``models[0]`` by its symmetry ``g_k``.

    ``method="average"``: ``sum_k w_k g_k(theta_k)``, weights ``w`` equal by default.
    ``method="fisher"``: ``sum_k w_k F_k g_k(theta_k) / sum_k w_k F_k`` per weight, with
    ``F_k`` the diagonal Fisher of the aligned network ``k`` on ``data``
    (:func:`~weightspace.alignment.fisher.diagonal_fisher`; Matena & Raffel 2022).
    ``align``: ``True`` or ``"weights"`` (weight matching), ``"activations"`` (activation
    matching on ``data``), ``False`` (as they are). ``data``: inputs or ``(x, y)``; BatchNorm
    statistics of the result are re-estimated on it. Returns a new module in eval mode."""
    if method not in METHODS:
        raise ValueError(f"method must be one of {METHODS}, got {method!r}")
    if align not in (True, False, *network.METHODS):
        raise ValueError(f"align must be True, False or one of {network.METHODS}, got "
                         f"{align!r}")
    if len(models) < 2:
        raise ValueError(f"merge needs at least two networks, got {len(models)}")
    if method == "fisher" and data is None:
        raise ValueError("method='fisher' needs data to estimate the Fisher on: pass data=x "
                         "(inputs) or (x, y)")
    w = torch.full((len(models),), 1 / len(models), dtype=torch.float64) if weights is None \
        else torch.as_tensor(weights, dtype=torch.float64)
    if w.shape != (len(models),) or (w < 0).any() or abs(float(w.sum()) - 1) > 1e-6:
        raise ValueError(f"weights must be {len(models)} non-negative numbers summing to 1, "
                         f"got {list(weights or [])}")
    spec = GraphSpec.from_module(models[0], example_inputs)
    how = "weights" if align is True else align
    aligned = [models[0]] + [network.align(models[0], m, method=how, data=data,
                                           example_inputs=example_inputs)
                             if how else m for m in models[1:]]
    vecs = [spec.flatten(m).double() for m in aligned]
    if method == "fisher":
        importance = [wk * diagonal_fisher(m, data, spec).clamp(min=FISHER_FLOOR)
                      for wk, m in zip(w, aligned, strict=True)]
        vec = sum(f * v for f, v in zip(importance, vecs, strict=True)) / sum(importance)
    else:
        vec = sum(wk * v for wk, v in zip(w, vecs, strict=True))
    buffers = (sum(wk * spec.flatten_buffers(m).double() for wk, m in zip(w, aligned,
                                                                           strict=True))
               if len(spec.buffers) else None)
    merged = load_flat(copy.deepcopy(models[0]), spec, vec.float(), buffers)
    if data is not None:
        recalibrate_batchnorm(merged, data)
    return merged.eval()
