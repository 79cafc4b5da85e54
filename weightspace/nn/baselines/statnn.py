"""``StatNN`` (Unterthiner et al. 2020): per-tensor weight statistics -> MLP.

For every parameter tensor ``W`` of the network the features are its mean, variance and the
quantiles 0, 0.25, 0.5, 0.75, 1 of its entries (7 numbers); all tensors' features are
concatenated, standardised with statistics of the training set, and fed to an MLP. Invariant
to hidden-neuron permutations by construction (statistics ignore order).
"""

from __future__ import annotations

import torch
from torch import Tensor, nn

from weightspace.graph.spec import GraphSpec

QUANTILES = (0.0, 0.25, 0.5, 0.75, 1.0)


def weight_statistics(spec: GraphSpec, vecs: Tensor) -> Tensor:
    """``[B, 7 T]``: mean, variance and quantiles of each of the ``T`` tensors of each row."""
    q = torch.tensor(QUANTILES, dtype=vecs.dtype, device=vecs.device)
    feats = []
    for slot in spec.params.slots:
        w = vecs[:, slot.offset : slot.stop]
        feats += [w.mean(1, keepdim=True), w.var(1, keepdim=True, unbiased=False),
                  torch.quantile(w, q, dim=1).T]
    return torch.cat(feats, 1)


class StatNN(nn.Module):
    def __init__(self, spec: GraphSpec, hidden: int = 256, layers: int = 3, out: int = 1):
        super().__init__()
        self.spec = spec
        d = 7 * len(spec.params.slots)
        self.register_buffer("mean", torch.zeros(d))
        self.register_buffer("std", torch.ones(d))
        dims = [d] + [hidden] * (layers - 1)
        blocks = []
        for a, b in zip(dims[:-1], dims[1:], strict=True):
            blocks += [nn.Linear(a, b), nn.ReLU()]
        self.mlp = nn.Sequential(*blocks, nn.Linear(dims[-1], out))

    @torch.no_grad()
    def fit_normalization(self, vecs: Tensor):
        """Standardise features with the statistics of (training) weights ``vecs``."""
        f = weight_statistics(self.spec, vecs)
        self.mean.copy_(f.mean(0))
        self.std.copy_(f.std(0).clamp_min(1e-8))

    def forward(self, vecs: Tensor) -> Tensor:
        return self.mlp((weight_statistics(self.spec, vecs) - self.mean) / self.std)
