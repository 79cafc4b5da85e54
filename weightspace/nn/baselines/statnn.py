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
from weightspace.nn.baselines.flat_mlp import FlatMLP

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


def statistics_width(spec: GraphSpec) -> int:
    """The number of features :func:`weight_statistics` gives per network of ``spec``."""
    return (2 + len(QUANTILES)) * len(spec.params.slots)


class StatNN(nn.Module):
    """:class:`FlatMLP` on the weight statistics instead of the weights.

    Args:
        spec: the architecture whose tensors are summarised.
        hidden: the MLP's hidden width.
        layers: the MLP's linear layers.
        out: outputs.
    """

    def __init__(self, spec: GraphSpec, hidden: int = 256, layers: int = 3, out: int = 1):
        super().__init__()
        self.spec = spec
        self.head = FlatMLP(statistics_width(spec), hidden, layers, out)

    def fit_normalization(self, vecs: Tensor):
        """Standardise features with the statistics of (training) weights ``vecs``."""
        self.head.fit_normalization(weight_statistics(self.spec, vecs))

    def forward(self, vecs: Tensor) -> Tensor:
        return self.head(weight_statistics(self.spec, vecs))
