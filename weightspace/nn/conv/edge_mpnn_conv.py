"""``EdgeMPNNConv``: message passing with node and edge updates, FiLM by edges, PNA aggregation.

With node states ``h`` and edge states ``e`` (pre-normed by LayerNorm ``n_h``, ``n_e``):

.. math::
    m_{ij} = \\gamma(e_{ij}) \\odot \\phi_m([h_i, h_j, e_{ij}]) + \\beta(e_{ij})

    a_i = [\\mathrm{mean}, \\max, \\min, \\mathrm{std}]_{j \\in \\mathcal{N}(i)} m_{ij}

    h_i' = h_i + \\phi_h([h_i, a_i]), \\qquad e_{ij}' = e_{ij} + \\phi_e([h_i', h_j', e_{ij}])

where ``j -> i`` runs over the graph's edges in both directions (a reverse copy carries the
edge's state plus a learned direction vector), and ``\\gamma, \\beta`` are linear maps of the
edge state (FiLM). Every operation is
applied per node or per edge and pooled symmetrically, so the layer is equivariant to any
relabelling of nodes that preserves node and edge attributes. ``update_edges=False`` leaves
``e`` as it is (the last layer of a network whose readout reads nodes only).
"""

from __future__ import annotations

import math
from dataclasses import dataclass

import torch
import torch.nn.functional as F
from torch import Tensor, nn

from weightspace.nn.conv.degree_blocks import DegreeBlocks
from weightspace.nn.conv.message_pna import message_pna


def mlp(d_in: int, d_out: int, hidden: int | None = None) -> nn.Sequential:
    hidden = hidden or d_out
    return nn.Sequential(nn.Linear(d_in, hidden), nn.SiLU(), nn.Linear(hidden, d_out))


class EdgeMPNNConv(nn.Module):
    """One message-passing block with node and edge updates (the update rule is in the module
    docstring).

    Args:
        hidden: the width of node and edge states.
        update_edges: whether the block updates edge states too.

    Shapes:
        input: ``h [N, hidden]``, ``edge_index [2, E]``, ``e [E, hidden]``, and optionally
        the graph's :class:`MessageBlocks` (built once per batch and shared by the blocks of a
        network);
        output: ``(h' [N, hidden], e' [E, hidden])``.
    """

    def __init__(self, hidden: int, update_edges: bool = True):
        super().__init__()
        self.hidden = hidden
        self.norm_h, self.norm_e = nn.LayerNorm(hidden), nn.LayerNorm(hidden)
        self.message_mlp = mlp(3 * hidden, hidden)
        self.film = nn.Linear(hidden, 2 * hidden)
        self.node_mlp = mlp(5 * hidden, hidden)  # [h_i, mean, max, min, std]
        self.edge_mlp = mlp(3 * hidden, hidden) if update_edges else None
        self.reverse = nn.Parameter(torch.zeros(hidden))  # marks messages against an edge
        self.reset_parameters()

    def reset_parameters(self):
        for m in self.modules():
            if isinstance(m, (nn.Linear, nn.LayerNorm)) and m is not self:
                m.reset_parameters()
        with torch.no_grad():  # FiLM starts as the identity: gamma = 1, beta = 0
            self.reverse.normal_(0, 0.02)
            self.film.weight.zero_()
            self.film.bias.copy_(torch.cat([torch.ones(self.hidden), torch.zeros(self.hidden)]))

    def forward(self, h: Tensor, edge_index: Tensor, e: Tensor,
                blocks: MessageBlocks | None = None) -> tuple[Tensor, Tensor]:
        if blocks is None:
            blocks = MessageBlocks.of(edge_index, h.shape[0])
        hn, en = self.norm_h(h), self.norm_e(e)
        if torch.is_autocast_enabled(en.device.type):  # one low-precision copy for all uses
            en = en.to(torch.get_autocast_dtype(en.device.type))
        h = h + self.node_mlp(torch.cat([hn, self.aggregate(hn, en, blocks)], -1))
        if self.edge_mlp is None:
            return h, e
        src, dst = edge_index
        hn = self.norm_h(h)
        first = self.edge_mlp[0]
        to_dst, to_src, from_e = first.weight.split(self.hidden, 1)
        pre = (F.linear(hn, to_dst).index_select(0, dst)
               + F.linear(hn, to_src).index_select(0, src) + F.linear(en, from_e, first.bias))
        return h, e + self.edge_mlp[2](self.edge_mlp[1](pre))

    def aggregate(self, hn: Tensor, en: Tensor, blocks: MessageBlocks) -> Tensor:
        """``a_i`` of every node, ``[N, 4 * hidden]``, from the normed states."""
        # The first layer of phi_m on [h_i, h_j, e] is A h_i + B h_j + C e + c: A h and B h
        # are computed once per node, not once per edge on a 3x wider concatenation. A reverse
        # copy's C (e + r) = C e + C r and FiLM(e + r) = FiLM(e) + W_film r: the direction
        # vector only shifts the biases of that direction's messages.
        first, last = self.message_mlp[0], self.message_mlp[2]
        to_i, to_j, from_e = first.weight.split(self.hidden, 1)
        a, b = F.linear(hn, to_i), F.linear(hn, to_j, first.bias)
        film_bias = self.film.bias
        stats = []
        for direction, (targets, sources) in enumerate(blocks.directions):
            if direction:
                b = b + F.linear(self.reverse, from_e)
                film_bias = film_bias + F.linear(self.reverse, self.film.weight)
            stats.append(message_pna(en, a, b, from_e, self.film.weight, film_bias,
                                     last.weight, last.bias, targets, sources))
        return blocks.pna(stats)

    def __repr__(self) -> str:
        return f"{type(self).__name__}({self.hidden}, aggr=[mean, max, min, std])"


@dataclass(frozen=True)
class MessageBlocks:
    """The messages of :class:`EdgeMPNNConv` on one graph: along every edge (into ``dst``)
    and against it (into ``src``), each direction as :class:`DegreeBlocks` of its targets with
    the source node of each row; built once per batch and shared by the blocks of a network.

    Args:
        directions: ``((targets, sources), ...)`` for the forward and the reverse messages.
        counts: ``[N, 1]`` each, the number of messages of each direction into each node
            (float).
    """

    directions: tuple[tuple[DegreeBlocks, Tensor], tuple[DegreeBlocks, Tensor]]
    counts: tuple[Tensor, Tensor]

    @classmethod
    def of(cls, edge_index: Tensor, num_nodes: int) -> MessageBlocks:
        directions, counts = [], []
        for target, source in (edge_index.flip(0), edge_index):
            blocks = DegreeBlocks.of(target, num_nodes)
            directions.append((blocks, source.index_select(0, blocks.order)))
            counts.append(torch.bincount(target, minlength=num_nodes).unsqueeze(1).float())
        return cls(tuple(directions), tuple(counts))

    def pna(self, stats: list[tuple[Tensor, Tensor, Tensor, Tensor]]) -> Tensor:
        """``[mean, max, min, std]`` of every node's messages, ``[N, 4 * hidden]``, from the
        per-direction statistics of :func:`message_pna`. Equal to
        PyG's ``MultiAggregation(["mean", "max", "min", "std"])`` (nodes without messages get
        zeros; a tie for a max passes its gradient to one message, not to all)."""
        (forward, _), (reverse, _) = self.directions
        (mean_f, squares_f, high_f, low_f), (mean_r, squares_r, high_r, low_r) = stats
        mean_f, mean_r = forward.to_nodes(mean_f), reverse.to_nodes(mean_r)
        n_f, n_r = self.counts
        n = (n_f + n_r).clamp(min=1)
        mean = (n_f * mean_f + n_r * mean_r) / n
        # the two directions' squared deviations pooled without cancellation (Chan et al.)
        squares = (forward.to_nodes(squares_f) + reverse.to_nodes(squares_r)
                   + (mean_r - mean_f).square() * (n_f * n_r / n))
        high = torch.maximum(forward.to_nodes(high_f, -math.inf),
                             reverse.to_nodes(high_r, -math.inf))
        low = torch.minimum(forward.to_nodes(low_f, math.inf), reverse.to_nodes(low_r, math.inf))
        none = n_f + n_r == 0
        # PyG's StdAggregation: sqrt(var) clamped at VAR_EPS, and 0 below it
        std = (squares / n).clamp(min=VAR_EPS).sqrt()
        std = std.masked_fill(std <= math.sqrt(VAR_EPS), 0.0)
        return torch.cat([mean, high.masked_fill(none, 0.0), low.masked_fill(none, 0.0), std],
                         -1)


VAR_EPS = 1e-5
