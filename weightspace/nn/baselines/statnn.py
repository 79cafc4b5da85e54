"""``StatNN`` (Unterthiner et al. 2020): per-tensor weight statistics -> MLP.

For every parameter tensor ``W`` of the network the features are its mean, variance and the
quantiles 0, 0.25, 0.5, 0.75, 1 of its entries (7 numbers); all tensors' features are
concatenated, standardised with statistics of the training set, and fed to an MLP. Invariant
to hidden-neuron permutations by construction (statistics ignore order). With ``extra``, more
invariant features of each network are appended to the statistics (e.g. its outputs on a few
fixed inputs: ``model.probes`` with :class:`~weightspace.nn.WeightSpaceModel`).
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
        extra: the width of further invariant features per network given to ``forward``.

    Shapes:
        input: ``vecs [B, P]``, ``extra [B, extra]`` (or None);
        output: ``[B, out]``.
    """

    def __init__(self, spec: GraphSpec, hidden: int = 256, layers: int = 3, out: int = 1,
                 extra: int = 0):
        super().__init__()
        self.spec, self.extra = spec, extra
        self.head = FlatMLP(statistics_width(spec) + extra, hidden, layers, out)

    def features(self, vecs: Tensor, extra: Tensor | None = None) -> Tensor:
        if (extra is None) != (self.extra == 0):
            raise ValueError(f"StatNN was built for {self.extra} extra features per network; "
                             f"got {None if extra is None else extra.shape[1]}")
        stats = weight_statistics(self.spec, vecs)
        return stats if extra is None else torch.cat([stats, extra.to(stats)], 1)

    def fit_normalization(self, vecs: Tensor, extra: Tensor | None = None):
        """Standardise features with the statistics of (training) weights ``vecs``."""
        self.head.fit_normalization(self.features(vecs, extra))

    def forward(self, vecs: Tensor, extra: Tensor | None = None) -> Tensor:
        return self.head(self.features(vecs, extra))
