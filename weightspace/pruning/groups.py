"""Channel groups of a weight space, read off the spec: what structural pruning removes together.

A hidden channel ``k`` of a permutation group (the node sets that share one permutation: a
convolution's output, the BatchNorm after it, both sides of a residual add; see
:mod:`weightspace.graph.symmetry`) is removed as a whole: every parameter on a node ``k`` of
those sets (biases, norm shifts), and every parameter on an edge into or out of one (its
filter, norm scale, and the next layers' input weights). These are Torch-Pruning's dependency
groups, found here from the graph alone. With ``G`` groups and membership pairs
``(p, g)`` (a weight between two hidden channels belongs to both), the group norms of a weight
vector ``v`` are

.. math::
    n_g(v) = \\Big(\\sum_{p \\in g} v_p^2\\Big)^{1/2},

and the group-sparsity (group-lasso) regulariser is ``sum_g n_g(v)``: its gradient shrinks every
group towards zero in proportion to ``v_p / n_g``, so whole channels die together and a
group-norm criterion can remove them with little loss. Inputs, outputs and tokens are never
pruned and form no groups.

Which channels a global group-norm criterion removes first: Torch-Pruning's default ranks
``n_g^2`` divided by its mean over the channels of the same dependency group (here: the same
permutation group), so :meth:`ChannelGroups.relative_importance` does the same, and
:meth:`ChannelGroups.keep_mask` switches off the lowest-ranked fraction of the channels: the
network such pruning leaves, with the removed channels held at zero.
"""

from __future__ import annotations

import torch
from torch import Tensor

from weightspace.graph.blocks import NODE_FEATURES


class ChannelGroups:
    """The prunable channel groups of ``spec``, as membership pairs ``(param, group)``.

    Args:
        spec: the architecture; channels of tied node sets form one group.
    """

    def __init__(self, spec):
        node_group = torch.full((spec.num_nodes,), -1, dtype=torch.long)
        offset, layer = 0, []
        for group in spec.permutation_groups:
            if group.fixed:
                continue
            for s in group.sets:
                o = spec.set_offset[s]
                node_group[o : o + group.size] = offset + torch.arange(group.size)
            offset += group.size
            layer.append(torch.full((group.size,), len(layer)))
        self.num_groups = offset
        # the permutation group (Torch-Pruning: dependency group) of each channel group
        self.layer_index = torch.cat(layer) if layer else torch.zeros(0, dtype=torch.long)
        self.num_layers = len(layer)
        # Where each parameter sits: an edge (into and out of two nodes) or a node.
        place = spec.param_from
        on_edge = spec.num_edges * spec.num_edge_features
        edge = (place // spec.num_edge_features).clamp(max=max(spec.num_edges - 1, 0))
        node = ((place - on_edge) // NODE_FEATURES).clamp(min=0)
        params = torch.arange(spec.num_params)
        is_edge = place < on_edge
        owners = []
        if spec.num_edges:
            owners += [torch.where(is_edge, spec.edge_index[1][edge], -1),
                       torch.where(is_edge, spec.edge_index[0][edge], -1)]
        owners.append(torch.where(is_edge, -1, node))
        param_list, group_list = [], []
        for owner in owners:
            g = torch.where(owner >= 0, node_group[owner.clamp(min=0)], -1)
            keep = g >= 0
            param_list.append(params[keep])
            group_list.append(g[keep])
        # a weight between two nodes of one group (a norm's scale, diag edges) counts once
        stacked = torch.stack([torch.cat(param_list), torch.cat(group_list)])
        unique = torch.unique(stacked, dim=1) if stacked.numel() else stacked
        self.param_index, self.group_index = unique[0], unique[1]

    def norms(self, vecs: Tensor) -> Tensor:
        """``[B, G]`` group L2 norms of weight vectors ``vecs [B, P]`` (``[G]`` for ``[P]``)."""
        squeeze = vecs.dim() == 1
        v = vecs.unsqueeze(0) if squeeze else vecs
        param = self.param_index.to(v.device)
        group = self.group_index.to(v.device)
        sq = v.new_zeros(v.shape[0], self.num_groups).index_add_(1, group, v[:, param] ** 2)
        # clamped, not shifted: an empty group's gradient is 0 rather than 1/sqrt(eps)
        n = sq.clamp_min(1e-24).sqrt()
        return n[0] if squeeze else n

    def relative_importance(self, vecs: Tensor) -> Tensor:
        """``[B, G]`` for ``vecs [B, P]``: ``n_g^2`` over its mean among the channels of the
        same layer (permutation group)."""
        sq = self.norms(vecs) ** 2
        layer = self.layer_index.to(sq.device)
        total = sq.new_zeros(sq.shape[0], self.num_layers).index_add_(1, layer, sq)
        count = torch.bincount(layer, minlength=self.num_layers).to(sq)
        return sq / (total / count)[:, layer].clamp_min(1e-24)

    @torch.no_grad()
    def keep_mask(self, vecs: Tensor, fraction: float) -> Tensor:
        """``[B, P]`` of 0/1: 0 on every parameter of the ``fraction`` of channel groups with
        the lowest :meth:`relative_importance` (ranked across all layers, per network)."""
        imp = self.relative_importance(vecs)
        drop = int(fraction * self.num_groups)
        off = torch.zeros_like(imp)
        if drop > 0:
            off.scatter_(1, imp.topk(drop, dim=1, largest=False).indices, 1.0)
        param, group = self.param_index.to(vecs.device), self.group_index.to(vecs.device)
        dead = torch.zeros_like(vecs).index_add_(1, param, off[:, group].to(vecs.dtype))
        return (dead == 0).to(vecs.dtype)

    def lasso(self, vecs: Tensor) -> Tensor:
        """``[B]``: the group-lasso penalty ``sum_g n_g(v)`` of each weight vector."""
        return self.norms(vecs).sum(-1)
