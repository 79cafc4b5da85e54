"""``recalibrate_batchnorm``: BatchNorm statistics re-estimated for weights that changed.

A network whose weights were edited -- pruned, averaged with another, generated -- keeps the
running statistics of the network it came from, which no longer describe its activations.
"""

from __future__ import annotations

import torch
from torch import nn


def recalibrate_batchnorm(model: nn.Module, data, batch_size: int = 256) -> nn.Module:
    """Re-estimate every BatchNorm's running statistics on ``data`` (``(x, y)`` or ``x``): the
    average of the statistics of its batches of ``batch_size``, in forward passes without
    gradients; other layers (dropout) stay in eval mode. Pruning leaves these statistics stale
    (removing a layer's input channels changes the distribution its BatchNorm normalises), and
    so does averaging two networks."""
    norms = [m for m in model.modules()
             if isinstance(m, nn.modules.batchnorm._BatchNorm) and m.track_running_stats]
    if not norms:
        return model
    x = data[0] if isinstance(data, tuple | list) else data
    momenta = [m.momentum for m in norms]
    model.eval()
    for m in norms:
        m.reset_running_stats()
        m.momentum = None  # cumulative average over all batches
        m.train()
    try:
        with torch.no_grad():
            for start in range(0, len(x), batch_size):
                model(x[start : start + batch_size])
    finally:
        for m, momentum in zip(norms, momenta, strict=True):
            m.momentum = momentum
        model.eval()
    return model
