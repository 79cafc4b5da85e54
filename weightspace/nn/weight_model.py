"""``WeightSpaceModel``: a metanetwork with its input adapter, chosen by name.

Takes flat weights ``vecs [B, P]`` (and buffers ``[B, Q]``) of one architecture and returns
``[B, out_dim]`` (an invariant prediction) or, with ``equivariant=True``, an edit
``delta [B, P]`` in the spec's layout, scaled by a learned scalar that starts at ``edit_scale``
(so that a fresh model barely moves the weights it edits). The metanetwork is one of

- ``gmn``: :class:`~weightspace.nn.GraphMetaNetwork` on the parameter graphs (batched on the
  inputs' device by :class:`~weightspace.data.GraphBatcher`);
- ``statnn``: :class:`~weightspace.nn.baselines.StatNN` (invariant only);
- ``np``: :class:`~weightspace.nn.baselines.NPNetwork` (MLP and CNN weight spaces);
- ``mlp``: :class:`~weightspace.nn.baselines.FlatMLP` on the raw flat vector.
"""

from __future__ import annotations

import torch
from torch import Tensor, nn

from weightspace.data.batcher import GraphBatcher
from weightspace.graph.spec import GraphSpec
from weightspace.nn.baselines import FlatMLP, NPNetwork, StatNN
from weightspace.nn.gmn import GraphMetaNetwork

MODELS = ("gmn", "statnn", "np", "mlp")


class WeightSpaceModel(nn.Module):
    def __init__(self, name: str, spec: GraphSpec, out_dim: int = 1, equivariant: bool = False,
                 hidden: int = 64, layers: int = 4, fourier: int = 0, edit_scale: float = 0.01):
        super().__init__()
        self.name, self.spec, self.equivariant = name, spec, equivariant
        out = spec.num_params if equivariant else out_dim
        if name == "gmn":
            self.net = GraphMetaNetwork(spec.num_edge_features, hidden, layers,
                                        0 if equivariant else out_dim, equivariant, fourier)
            self._batchers: dict[str, GraphBatcher] = {}
        elif name == "statnn":
            if equivariant:
                raise ValueError("statnn is invariant (weight statistics forget which weight is "
                                 "which): it cannot output edits; use gmn, np or mlp")
            self.net = StatNN(spec, hidden, layers, out_dim)
        elif name == "np":
            self.net = NPNetwork(spec, hidden, layers, out_dim, equivariant)
        elif name == "mlp":
            self.net = FlatMLP(spec.num_params, hidden, layers, out)
        else:
            raise KeyError(f"unknown model {name!r} (config key model.name); known: {MODELS}")
        self.scale = nn.Parameter(torch.tensor(float(edit_scale))) if equivariant else None

    @classmethod
    def from_config(cls, cfg, spec: GraphSpec, out_dim: int = 1, equivariant: bool = False):
        """From a ``model`` config group (``name``, ``hidden``, ``layers``, ...)."""
        return cls(cfg.name, spec, out_dim, equivariant, cfg.get("hidden", 64),
                   cfg.get("layers", 4), cfg.get("fourier", 0), cfg.get("edit_scale", 0.01))

    def fit_normalization(self, vecs: Tensor):
        """Input statistics of the training weights (the baselines standardise their inputs)."""
        if hasattr(self.net, "fit_normalization"):
            self.net.fit_normalization(vecs)

    def _batcher(self, device: torch.device) -> GraphBatcher:
        key = str(device)
        if key not in self._batchers:
            self._batchers[key] = GraphBatcher(self.spec, device)
        return self._batchers[key]

    def forward(self, vecs: Tensor, buffers: Tensor | None = None) -> Tensor:
        if self.name == "gmn":
            out = self.net(self._batcher(vecs.device)(vecs, buffers))
            result = self.net.weight_delta(self.spec, out) if self.equivariant else out.graph
        else:
            result = self.net(vecs)
        return result * self.scale if self.equivariant else result
