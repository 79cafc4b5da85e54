"""Heads on a metanetwork's node and edge states, and the scatter back into weight space.

The invariant readout pools node states per graph (mean and max); the equivariant heads map
every node to ``3`` and every edge to ``F`` values -- the shape of the graph's own features --
and :func:`scatter_to_weights` sends those values back through the spec's inverse map, giving
``delta [B, P]`` in the flat layout: an edited, pruned or generated weight vector.
"""

from __future__ import annotations

import torch
from torch import Tensor, nn
from torch_geometric.nn import global_max_pool, global_mean_pool
from torch_geometric.utils import scatter

from weightspace.graph.blocks import NODE_FEATURES
from weightspace.graph.spec import GraphSpec
from weightspace.nn.conv.edge_mpnn_conv import mlp


class InvariantReadout(nn.Module):
    """``[mean_i h_i, max_i h_i]`` per graph, then an MLP to ``out`` values.

    Args:
        hidden: the width of node states.
        out: outputs per graph.
    """

    def __init__(self, hidden: int, out: int):
        super().__init__()
        self.mlp = mlp(2 * hidden, out, hidden)

    def forward(self, h: Tensor, batch: Tensor, num_graphs: int) -> Tensor:
        pooled = torch.cat([global_mean_pool(h, batch, num_graphs),
                            global_max_pool(h, batch, num_graphs)], -1)
        return self.mlp(pooled)


class LayerReadout(nn.Module):
    """Mean and max of node states per layer and of edge states per layer of their target
    node, plus optional invariant ``extra`` features, then an MLP to ``out`` values.

    Pooling within a layer keeps what a whole-graph pool mixes up (which layer's neurons
    look how), and stays invariant: a symmetry permutes neurons only within their layer.
    With ``outputs``, the states of the network's output neurons are also read one by one, in
    their order: no symmetry moves an output neuron, so this stays invariant and lets the
    readout compare classes (e.g. each class's logit on a probe input).
    Edge states carry the weights; pooling them lets the readout see every weight's code,
    not only what messages passed on to the nodes.

    Args:
        hidden: the width of node and edge states.
        out: outputs per graph.
        layers: ``L``, the number of layer ids (``0 .. L - 1``) to pool over.
        extra: the width of invariant features given to :meth:`forward` (0: none).
        outputs: the number of output neurons whose states are read in order (0: none).

    Shapes:
        input: ``h [N, hidden]``, ``e [E, hidden]``, node ``layer [N]`` and graph ``batch [N]``,
        ``dst [E]`` (each edge's target node), ``extra [B, extra]``, node ``output_id [N]``
        (``-1`` off the outputs); output: ``[B, out]``.
    """

    def __init__(self, hidden: int, out: int, layers: int, extra: int = 0, outputs: int = 0):
        super().__init__()
        self.layers, self.extra, self.outputs = layers, extra, outputs
        self.mlp = mlp((4 * layers + outputs) * hidden + extra, out, 2 * hidden)

    def forward(self, h: Tensor, e: Tensor, layer: Tensor, batch: Tensor, dst: Tensor,
                num_graphs: int, extra: Tensor | None = None,
                output_id: Tensor | None = None) -> Tensor:
        L = self.layers
        slot = batch * L + layer.clamp(0, L - 1)  # (graph, layer) of each node
        size = num_graphs * L
        parts = []
        for states, index in ((h, slot), (e, slot[dst])):
            for reduce in ("mean", "max"):
                pooled = scatter(states, index, 0, size, reduce=reduce)
                parts.append(pooled.reshape(num_graphs, -1))
        if self.outputs:
            at = (output_id >= 0).nonzero().squeeze(1)
            if len(at) != num_graphs * self.outputs:
                raise ValueError(f"the readout reads {self.outputs} output neurons per network; "
                                 f"the batch has {len(at)} in {num_graphs} networks")
            slot = batch[at] * self.outputs + output_id[at]
            states = h.new_zeros(num_graphs * self.outputs, h.shape[1]).index_copy(0, slot, h[at])
            parts.append(states.reshape(num_graphs, -1))
        if self.extra:
            parts.append(extra)
        return self.mlp(torch.cat(parts, -1))


class EquivariantHead(nn.Module):
    """Per node (or edge): ``hidden -> out`` values, the same map everywhere.

    Args:
        hidden: the width of node (edge) states.
        out: outputs per node (edge).
    """

    def __init__(self, hidden: int, out: int):
        super().__init__()
        self.mlp = mlp(hidden, out)

    def forward(self, h: Tensor) -> Tensor:
        return self.mlp(h)


def scatter_to_weights(spec: GraphSpec, node_values: Tensor, edge_values: Tensor) -> Tensor:
    """``delta [B, P]``: per-node ``[B * N, 3]`` and per-edge ``[B * E, F]`` values of a
    one-architecture batch, read back at every parameter's slot (the inverse of the gather
    that built the graphs). Slots that hold no parameter (padding, constants) are dropped."""
    N, E, F = spec.num_nodes, spec.num_edges, spec.num_edge_features
    if node_values.shape[-1] != NODE_FEATURES or edge_values.shape[-1] != F:
        raise ValueError(f"node values must have {NODE_FEATURES} and edge values {F} features")
    B = node_values.shape[0] // N
    if node_values.shape[0] != B * N or edge_values.shape[0] != B * E:
        raise ValueError(f"values do not cover whole graphs of spec {spec.id} ({N} nodes, "
                         f"{E} edges each)")
    flat = torch.cat([edge_values.reshape(B, E * F), node_values.reshape(B, N * NODE_FEATURES)],
                     -1)
    return flat[:, spec.param_from.to(flat.device)]
