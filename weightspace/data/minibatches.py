"""``minibatches``: tensors of equal length, cut into (shuffled) minibatches."""

from __future__ import annotations

import torch


def minibatches(tensors: tuple, batch_size: int, generator: torch.Generator | None = None):
    """``tensors`` (equal first dimensions) in minibatches: shuffled by ``generator`` (one
    ``randperm``), in order without one."""
    n = len(tensors[0])
    order = torch.randperm(n, generator=generator) if generator is not None else torch.arange(n)
    for start in range(0, n, batch_size):
        idx = order[start : start + batch_size]
        yield tuple(t[idx] for t in tensors)
