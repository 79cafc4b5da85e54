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
from weightspace.nn.baselines.published_np import PublishedNP
from weightspace.nn.baselines.statnn import statistics_width
from weightspace.nn.gmn import GraphMetaNetwork
from weightspace.registry import Registry


@dataclass(frozen=True)
class Metanetwork:
    """How to build one kind of metanetwork, and what it can do.

    Args:
        build: ``build(specs, out_dim, equivariant, hidden, layers, fourier, probes,
            **options)`` -> the module, for the architectures ``specs`` (``options``: the
            model config's other keys). A flat module maps ``[B, P] -> [B, out_dim]`` (or
            ``[B, P]`` when equivariant); a graph module maps a PyG batch to a
            :class:`~weightspace.nn.MetaNetworkOutput`.
        reads_graphs: it reads parameter graphs (any mix of architectures with one
            edge-feature width), else flat vectors of one layout.
        equivariant_ok: it can output an edit per weight.
        probes_ok: it reads probe features: a graph module per node, a flat one as the
            network's outputs on the probe inputs (``build`` then takes a second input,
            ``[B, probes * outputs]``).
    """

    build: Callable[..., nn.Module]
    reads_graphs: bool = False
    equivariant_ok: bool = True
    probes_ok: bool = False


def output_width(spec: GraphSpec) -> int:
    """The number of output neurons of ``spec`` (its nodes with an ``output_id``)."""
    return int((spec.output_id >= 0).sum())


METANETWORKS: Registry[Metanetwork] = Registry("model", "model.name", group="weightspace.models")


def _gmn(specs: list[GraphSpec], out_dim, equivariant, hidden, layers, fourier, probes,
         nonlinear: bool = False, readout: str = "graph", stats: bool = False,
         precision: str = "32", outputs: bool = False):
    if readout not in ("graph", "layers"):
        raise ValueError(f"model.readout is 'graph' (pool all nodes) or 'layers' (pool nodes "
                         f"and edges per layer), got {readout!r}")
    stats = stats and not equivariant  # statistics feed the invariant readout only
    for option, on in (("stats", stats), ("outputs", outputs)):
        if on and readout != "layers":
            raise ValueError(f"model.{option} adds to the per-layer readout: set "
                             f"model.readout=layers")
    outputs = outputs and not equivariant
    if outputs and len({output_width(s) for s in specs}) > 1:
        raise ValueError("model.outputs reads each output neuron in order: the architectures "
                         "must have as many outputs each")
    layer_ids = max(int(s.layer.max()) for s in specs) + 1 if readout == "layers" else 0
    return GraphMetaNetwork(specs[0].num_edge_features, hidden, layers,
                            0 if equivariant else out_dim, equivariant, fourier, probes,
                            nonlinear, layer_ids, statistics_width(specs[0]) if stats else 0,
                            str(precision), output_width(specs[0]) if outputs else 0)


def _statnn(specs: list[GraphSpec], out_dim, equivariant, hidden, layers, fourier, probes):
    # with probes: the network's outputs on the probe inputs beside its statistics
    return StatNN(specs[0], hidden, layers, out_dim, probes * output_width(specs[0]))


def _np(specs: list[GraphSpec], out_dim, equivariant, hidden, layers, fourier, probes):
    return NPNetwork(specs[0], hidden, layers, out_dim, equivariant)


def _mlp(specs: list[GraphSpec], out_dim, equivariant, hidden, layers, fourier, probes):
    n = specs[0].num_params
    return FlatMLP(n, hidden, layers, n if equivariant else out_dim)


def _nfn_np(specs: list[GraphSpec], out_dim, equivariant, hidden, layers, fourier, probes):
    if equivariant:
        raise ValueError("model nfn_np (the published NFN NP layers) is wired here as an "
                         "invariant predictor; for edits use np, gmn or mlp")
    return PublishedNP(specs[0], hidden, layers, out_dim)


METANETWORKS.register("gmn", Metanetwork(_gmn, reads_graphs=True, probes_ok=True))
METANETWORKS.register("statnn", Metanetwork(_statnn, equivariant_ok=False, probes_ok=True))
METANETWORKS.register("np", Metanetwork(_np))
METANETWORKS.register("mlp", Metanetwork(_mlp))
METANETWORKS.register("nfn_np", Metanetwork(_nfn_np, equivariant_ok=False))
