"""``PublishedNP``: the NP layers of the published NFN package (Zhou et al. 2023), as a baseline.

This runs NFN's own code (PyPI ``nfn``, an optional benchmark dependency: ``pip install
weightspace[bench]``) on our zoos, so that tables compare against the published layers, not
only our re-implementation :class:`~weightspace.nn.baselines.NPNetwork`. The network follows
the NFN paper's invariant predictor: ``layers`` ``NPLinear`` layers of ``hidden`` channels
with ReLUs (the first with learned input/output embeddings, ``io_embed``), ``NPPool`` (the
mean of every layer's weights and biases per channel), and an MLP to ``out`` values.

A flat weight row is cut into NFN's ``WeightSpaceFeatures``: weights ``[B, 1, n_out, n_in]``
for a Linear layer and ``[B, 1, n_out, n_in, kh, kw]`` for a convolution (a 1-D kernel is
``1 x k``), biases ``[B, 1, n_out]``; each tensor is standardised by its mean and std over the
training networks (per-tensor constants keep the symmetry). Only chains of Linear/Conv layers
are NFN's NP weight space; anything else is refused by :func:`weight_chain`.
"""

from __future__ import annotations

import torch
from torch import Tensor, nn

from weightspace.graph.spec import GraphSpec
from weightspace.nn.baselines.np_network import (
    chain_tensors,
    fit_tensor_statistics,
    weight_chain,
)


def _nfn():
    try:
        from nfn.common import WeightSpaceFeatures, network_spec_from_wsfeat
        from nfn.layers import NPLinear, NPPool, TupleOp
    except ImportError:
        raise ImportError("model=nfn_np runs the published NFN layers: pip install nfn einops "
                          "(or weightspace[bench])") from None
    return WeightSpaceFeatures, network_spec_from_wsfeat, NPLinear, NPPool, TupleOp


class PublishedNP(nn.Module):
    """The published NFN NP layers as an invariant predictor (module docstring).

    Args:
        spec: an MLP/CNN architecture.
        hidden: channels of the NP layers.
        layers: NP layers.
        out: outputs.

    Shapes:
        input ``[B, P]`` flat weights; output ``[B, out]``.
    """

    def __init__(self, spec: GraphSpec, hidden: int = 16, layers: int = 3, out: int = 1):
        super().__init__()
        features, spec_of, np_linear, np_pool, tuple_op = _nfn()
        self.spec, self.chain, self._features = spec, weight_chain(spec), features
        self.register_buffer("mean", torch.zeros(len(spec.params.slots)))
        self.register_buffer("std", torch.ones(len(spec.params.slots)))
        network = spec_of(self._cut(torch.zeros(1, spec.num_params)))
        blocks = []
        for i in range(layers):
            blocks += [np_linear(network, 1 if i == 0 else hidden, hidden, io_embed=i == 0),
                       tuple_op(nn.ReLU())]
        self.np_layers = nn.Sequential(*blocks)
        self.pool = np_pool(network)
        pooled = np_pool.get_num_outs(network) * hidden
        self.head = nn.Sequential(nn.Flatten(), nn.Linear(pooled, 1000), nn.ReLU(),
                                  nn.Linear(1000, out))

    def fit_normalization(self, vecs: Tensor):
        """Standardise each tensor by its mean and std over (training) networks ``vecs``."""
        fit_tensor_statistics(self.spec, vecs, self.mean, self.std)

    def _cut(self, vecs: Tensor):
        """``vecs [B, P]`` as NFN's WeightSpaceFeatures (one channel)."""
        B, weights, biases = vecs.shape[0], [], []
        for layer, (w, b) in zip(self.chain, chain_tensors(self.spec, self.chain, vecs,
                                                           self.mean, self.std), strict=True):
            kernel = tuple(layer.weight.shape[2:])
            weights.append(w.reshape(B, 1, layer.n_out, layer.n_in,
                                     *((1, *kernel) if len(kernel) == 1 else kernel)))
            biases.append(b.reshape(B, 1, layer.n_out))
        return self._features(tuple(weights), tuple(biases))

    def forward(self, vecs: Tensor) -> Tensor:
        return self.head(self.pool(self.np_layers(self._cut(vecs))))
