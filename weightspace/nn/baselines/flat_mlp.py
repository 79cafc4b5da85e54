"""``FlatMLP``: an MLP on standardised input features -- on the raw flat weight vector, a
baseline with no symmetry built in; on weight statistics, :class:`StatNN`."""

from __future__ import annotations

import torch
from torch import Tensor, nn


class FlatMLP(nn.Module):
    """An MLP on standardised inputs: ``x [B, D] -> [B, out]``.

    On the raw flat weight vector it is the baseline with no symmetry built in; inputs are
    standardised per coordinate with :meth:`fit_normalization`.

    Args:
        num_params: ``D``, the input width.
        hidden: the hidden width.
        layers: linear layers.
        out: outputs.
    """

    def __init__(self, num_params: int, hidden: int = 256, layers: int = 3, out: int = 1):
        super().__init__()
        self.register_buffer("mean", torch.zeros(num_params))
        self.register_buffer("std", torch.ones(num_params))
        dims = [num_params] + [hidden] * (layers - 1)
        blocks = []
        for a, b in zip(dims[:-1], dims[1:], strict=True):
            blocks += [nn.Linear(a, b), nn.ReLU()]
        self.mlp = nn.Sequential(*blocks, nn.Linear(dims[-1], out))

    @torch.no_grad()
    def fit_normalization(self, vecs: Tensor):
        """Standardise each input with its mean and std over (training) rows ``vecs``."""
        self.mean.copy_(vecs.mean(0))
        self.std.copy_(vecs.std(0).clamp_min(1e-8))

    def forward(self, vecs: Tensor) -> Tensor:
        return self.mlp((vecs - self.mean) / self.std)
