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

import torch
import torch.nn.functional as F
from torch import Tensor, nn
from torch_geometric.nn import MessagePassing
from torch_geometric.nn.aggr import MultiAggregation


def mlp(d_in: int, d_out: int, hidden: int | None = None) -> nn.Sequential:
    hidden = hidden or d_out
    return nn.Sequential(nn.Linear(d_in, hidden), nn.SiLU(), nn.Linear(hidden, d_out))


class EdgeMPNNConv(MessagePassing):
    """One message-passing block with node and edge updates (the update rule is in the module
    docstring).

    Args:
        hidden: the width of node and edge states.
        aggregators: PyG aggregations whose outputs are concatenated (PNA-style).
        update_edges: whether the block updates edge states too.

    Shapes:
        input: ``h [N, hidden]``, ``edge_index [2, E]``, ``e [E, hidden]``;
        output: ``(h' [N, hidden], e' [E, hidden])``.
    """

    def __init__(self, hidden: int, aggregators=("mean", "max", "min", "std"),
                 update_edges: bool = True):
        super().__init__(aggr=MultiAggregation(list(aggregators), mode="cat"))
        self.hidden = hidden
        self.norm_h, self.norm_e = nn.LayerNorm(hidden), nn.LayerNorm(hidden)
        self.message_mlp = mlp(3 * hidden, hidden)
        self.film = nn.Linear(hidden, 2 * hidden)
        self.node_mlp = mlp((1 + len(aggregators)) * hidden, hidden)
        self.edge_mlp = mlp(3 * hidden, hidden) if update_edges else None
        self.reverse = nn.Parameter(torch.zeros(hidden))  # marks messages against an edge
        self.reset_parameters()

    def reset_parameters(self):
        super().reset_parameters()
        for m in self.modules():
            if isinstance(m, (nn.Linear, nn.LayerNorm)) and m is not self:
                m.reset_parameters()
        with torch.no_grad():  # FiLM starts as the identity: gamma = 1, beta = 0
            self.reverse.normal_(0, 0.02)
            self.film.weight.zero_()
            self.film.bias.copy_(torch.cat([torch.ones(self.hidden), torch.zeros(self.hidden)]))

    def forward(self, h: Tensor, edge_index: Tensor, e: Tensor) -> tuple[Tensor, Tensor]:
        hn, en = self.norm_h(h), self.norm_e(e)
        # The first layer of phi_m on [h_i, h_j, e] is A h_i + B h_j + C e + c: A h and B h are
        # computed once per node and gathered, not once per edge on a 3x wider concatenation;
        # the reverse copy's C (e + r) = C e + C r and FiLM(e + r) = FiLM(e) + W_film r alike.
        first = self.message_mlp[0]
        to_i, to_j, from_e = first.weight.split(self.hidden, 1)
        pe = F.linear(en, from_e, first.bias)
        fe = self.film(en)
        both = torch.cat([edge_index, edge_index.flip(0)], 1)
        agg = self.propagate(both, a=F.linear(hn, to_i), b=F.linear(hn, to_j),
                             pe=torch.cat([pe, pe + F.linear(self.reverse, from_e)]),
                             fe=torch.cat([fe, fe + F.linear(self.reverse, self.film.weight)]))
        h = h + self.node_mlp(torch.cat([hn, agg], -1))
        if self.edge_mlp is None:
            return h, e
        hn = self.norm_h(h)
        src, dst = edge_index
        first = self.edge_mlp[0]
        to_dst, to_src, from_e = first.weight.split(self.hidden, 1)
        pre = (F.linear(hn, to_dst)[dst] + F.linear(hn, to_src)[src]
               + F.linear(en, from_e, first.bias))
        e = e + self.edge_mlp[2](self.edge_mlp[1](pre))
        return h, e

    def message(self, a_i: Tensor, b_j: Tensor, pe: Tensor, fe: Tensor) -> Tensor:
        gamma, beta = fe.chunk(2, -1)
        return gamma * self.message_mlp[2](self.message_mlp[1](a_i + b_j + pe)) + beta

    def __repr__(self) -> str:
        return f"{type(self).__name__}({self.hidden}, aggr={self.aggr})"
