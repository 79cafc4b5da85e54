"""``METANETWORKS``: the metanetworks a config names with ``model.name``.

Each entry says how to build the network for an architecture and what it reads: flat weight
vectors ``[B, P]`` (the baselines), or batches of parameter graphs (``reads_graphs``; the
graph is built from the weights divided by their per-tensor scale, see
:mod:`weightspace.nn.weight_model`). Another package adds its own metanetwork under the
``weightspace.models`` entry-point group, or with ``METANETWORKS.register(name, Metanetwork(...))``.
"""

from __future__ import annotations

from collections.abc import Callable
from dataclasses import dataclass

from torch import nn

from weightspace.graph.spec import GraphSpec
from weightspace.nn.baselines import FlatMLP, NPNetwork, StatNN
from weightspace.nn.gmn import GraphMetaNetwork
from weightspace.registry import Registry


@dataclass(frozen=True)
class Metanetwork:
    """How to build one kind of metanetwork, and what it can do.

    Args:
        build: ``build(spec, out_dim, equivariant, hidden, layers, fourier, probes)`` -> the
            module. A flat module maps ``[B, P] -> [B, out_dim]`` (or ``[B, P]`` when
            equivariant); a graph module maps a PyG batch to a
            :class:`~weightspace.nn.MetaNetworkOutput`.
        reads_graphs: it reads parameter graphs (any mix of architectures with one
            edge-feature width), else flat vectors of one layout.
        equivariant_ok: it can output an edit per weight.
        probes_ok: its nodes can carry probe features.
    """

    build: Callable[..., nn.Module]
    reads_graphs: bool = False
    equivariant_ok: bool = True
    probes_ok: bool = False


METANETWORKS: Registry[Metanetwork] = Registry("model", "model.name", group="weightspace.models")


def _gmn(spec: GraphSpec, out_dim, equivariant, hidden, layers, fourier, probes):
    return GraphMetaNetwork(spec.num_edge_features, hidden, layers,
                            0 if equivariant else out_dim, equivariant, fourier, probes)


def _statnn(spec: GraphSpec, out_dim, equivariant, hidden, layers, fourier, probes):
    return StatNN(spec, hidden, layers, out_dim)


def _np(spec: GraphSpec, out_dim, equivariant, hidden, layers, fourier, probes):
    return NPNetwork(spec, hidden, layers, out_dim, equivariant)


def _mlp(spec: GraphSpec, out_dim, equivariant, hidden, layers, fourier, probes):
    return FlatMLP(spec.num_params, hidden, layers, spec.num_params if equivariant else out_dim)


METANETWORKS.register("gmn", Metanetwork(_gmn, reads_graphs=True, probes_ok=True))
METANETWORKS.register("statnn", Metanetwork(_statnn, equivariant_ok=False))
METANETWORKS.register("np", Metanetwork(_np))
METANETWORKS.register("mlp", Metanetwork(_mlp))
