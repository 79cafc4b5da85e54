"""``GraphMetaNetwork``: a permutation-equivariant metanetwork on parameter graphs (PyG).

Node and edge features are encoded (:mod:`weightspace.nn.encoders`; with ``probes = K``, also
``K`` probe values per node, ``batch.probe``: :mod:`weightspace.nn.probes`), updated by
``layers`` pre-norm residual :class:`~weightspace.nn.conv.EdgeMPNNConv` blocks, and read out by

- an invariant head: one vector of ``graph_out`` values per network (e.g. predicted accuracy);
- equivariant heads: per node ``3`` and per edge ``F`` values, which
  :meth:`GraphMetaNetwork.weight_delta` scatters back into ``delta [B, P]``.

Relabelling the hidden neurons of an input network (``random_symmetry``) leaves the invariant
output unchanged and moves the equivariant outputs with the neurons.
"""

from __future__ import annotations

import contextlib
from dataclasses import dataclass

import torch
from torch import Tensor, nn
from torch_geometric.data import Batch

from weightspace.graph.blocks import NODE_FEATURES
from weightspace.graph.spec import GraphSpec
from weightspace.nn.conv.edge_mpnn_conv import EdgeMPNNConv, MessageBlocks
from weightspace.nn.encoders import EdgeEncoder, NodeEncoder
from weightspace.nn.heads import (
    EquivariantHead,
    InvariantReadout,
    LayerReadout,
    scatter_to_weights,
)


@dataclass
class MetaNetworkOutput:
    """The outputs of a :class:`GraphMetaNetwork` for a batch of ``B`` graphs.

    Args:
        graph: ``[B, graph_out]`` invariant outputs, or ``None``.
        node: ``[B * N, 3]`` equivariant node outputs, or ``None``.
        edge: ``[B * E, F]`` equivariant edge outputs, or ``None``.
    """

    graph: Tensor | None  # [B, graph_out]
    node: Tensor | None  # [B * N, 3]
    edge: Tensor | None  # [B * E, F]


class GraphMetaNetwork(nn.Module):
    """A permutation-equivariant metanetwork on batches of parameter graphs (see the module
    docstring).

    Args:
        edge_features: ``F``, the edge-feature width of the graphs it reads.
        hidden: the width of node and edge states.
        layers: the number of :class:`~weightspace.nn.conv.EdgeMPNNConv` blocks.
        graph_out: invariant outputs per graph (0: none).
        equivariant: whether node and edge heads output per-weight values.
        fourier: Fourier frequencies of weight values (0: raw values).
        probes: probe values per node read from ``batch.probe`` (0: none).
        nonlinear: encode weight values with MLPs (keeps their magnitude through LayerNorm).
        readout_layers: ``L > 0`` pools node and edge states per layer (``LayerReadout``);
            0 pools node states over the whole graph.
        extra: the width of invariant features per network passed to ``forward`` (needs
            ``readout_layers``).
        precision: ``"32"``, or ``"bf16-mixed"``: the encoders and message-passing blocks
            run under bfloat16 autocast where the device computes bfloat16 natively (CUDA
            with bf16 support, CPUs with AVX512-BF16 or AMX; elsewhere in float32). Their
            matrix products and the per-message tensors, which dominate a step, take half the
            memory traffic; the residual states stay float32 and the heads run in float32, so
            predictions are not rounded to bfloat16 (see benchmarks/RESULTS.md).
        outputs: the number of output neurons whose states the per-layer readout also reads
            one by one (needs ``readout_layers``; 0: none).

    Shapes:
        input: a PyG ``Batch`` of ``B`` graphs from :class:`~weightspace.data.GraphBatcher`;
        output: :class:`MetaNetworkOutput`.
    """

    def __init__(self, edge_features: int, hidden: int = 64, layers: int = 4,
                 graph_out: int = 1, equivariant: bool = False, fourier: int = 0,
                 probes: int = 0, nonlinear: bool = False, readout_layers: int = 0,
                 extra: int = 0, precision: str = "32", outputs: int = 0):
        super().__init__()
        if precision not in PRECISIONS:
            raise ValueError(f"precision is one of {PRECISIONS}, got {precision!r}")
        self.precision = precision
        self.edge_features, self.hidden = edge_features, hidden
        self.node_encoder = NodeEncoder(hidden, fourier, probes=probes, nonlinear=nonlinear)
        self.edge_encoder = EdgeEncoder(edge_features, hidden, fourier, nonlinear=nonlinear)
        by_layer = bool(graph_out and readout_layers)
        # without edge heads or an edge readout, the last layer's edge update reaches no output
        self.convs = nn.ModuleList(
            EdgeMPNNConv(hidden, update_edges=equivariant or by_layer or i < layers - 1)
            for i in range(layers))
        self.norm_h = nn.LayerNorm(hidden)
        self.norm_e = nn.LayerNorm(hidden) if equivariant or by_layer else None
        if (extra or outputs) and not by_layer:
            raise ValueError("extra invariant features and output states go to the per-layer "
                             "readout: set readout_layers")
        self.readout = None
        if graph_out:
            self.readout = (LayerReadout(hidden, graph_out, readout_layers, extra, outputs)
                            if by_layer else InvariantReadout(hidden, graph_out))
        self.node_head = EquivariantHead(hidden, NODE_FEATURES) if equivariant else None
        self.edge_head = EquivariantHead(hidden, edge_features) if equivariant else None

    def reset_parameters(self):
        for m in self.modules():
            if m is not self and hasattr(m, "reset_parameters"):
                m.reset_parameters()

    def forward(self, batch: Batch, extra: Tensor | None = None) -> MetaNetworkOutput:
        """``extra [B, extra]``: invariant features of each network for the readout."""
        device = batch.edge_index.device
        with self._trunk_autocast(device):
            h, e = self.node_encoder(batch), self.edge_encoder(batch)
            blocks = MessageBlocks.of(batch.edge_index, h.shape[0])  # one grouping for all
            for conv in self.convs:
                h, e = conv(h, batch.edge_index, e, blocks)
        with torch.autocast(device.type, enabled=False):  # outputs are never rounded
            return self._heads(batch, h.float(), e.float(), extra)

    def _trunk_autocast(self, device: torch.device):
        if self.precision == "bf16-mixed" and bf16_native(device):
            return torch.autocast(device.type, torch.bfloat16)
        return contextlib.nullcontext()

    def _heads(self, batch: Batch, h: Tensor, e: Tensor, extra: Tensor | None):
        h = self.norm_h(h)
        e = self.norm_e(e) if self.norm_e is not None else e
        num_graphs = batch.num_graphs
        if isinstance(self.readout, LayerReadout):
            graph = self.readout(h, e, batch.layer, batch.batch, batch.edge_index[1], num_graphs,
                                 extra, batch.output_id)
        else:
            graph = self.readout(h, batch.batch, num_graphs) if self.readout else None
        return MetaNetworkOutput(
            graph=graph,
            node=self.node_head(h) if self.node_head else None,
            edge=self.edge_head(e) if self.edge_head else None,
        )

    def weight_delta(self, spec: GraphSpec, out: MetaNetworkOutput) -> Tensor:
        """The equivariant outputs as ``delta [B, P]`` in ``spec``'s flat layout."""
        if out.node is None:
            raise ValueError("this GraphMetaNetwork has no equivariant heads (equivariant=True)")
        return scatter_to_weights(spec, out.node, out.edge)

    def __repr__(self) -> str:
        return (f"{type(self).__name__}(hidden={self.hidden}, layers={len(self.convs)}, "
                f"edge_features={self.edge_features}, "
                f"graph_out={self.readout is not None and self.readout.mlp[-1].out_features}, "
                f"readout={type(self.readout).__name__}, "
                f"equivariant={self.node_head is not None}, precision={self.precision})")


PRECISIONS = ("32", "bf16-mixed")


def bf16_native(device: torch.device) -> bool:
    """Whether ``device`` computes bfloat16 natively (elsewhere bfloat16 autocast is slower
    than float32)."""
    if device.type == "cuda":
        return torch.cuda.is_bf16_supported()
    return device.type == "cpu" and torch.ops.mkldnn._is_mkldnn_bf16_supported()
