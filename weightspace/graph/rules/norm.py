"""Rules of normalisation layers: ``BatchNorm``, ``LayerNorm``, ``GroupNorm``."""

from __future__ import annotations

from torch import nn

from weightspace.graph.blocks import (
    NODE_BIAS,
    NODE_RUNNING_MEAN,
    NODE_RUNNING_VAR,
    DiagEdges,
)
from weightspace.graph.rules.dense import bias_name
from weightspace.graph.rules.registry import register_module
from weightspace.graph.values import Feat
from weightspace.graph.vocab import EdgeType, NodeType


def _norm(r, m, path, x, dim, size, weight_attr="weight", bias_attr="bias"):
    x = r.feat(x, dim=dim, size=size, what=f"norm layer {path!r}")
    r.use(x, "other")
    weight = bias_name(m, path, weight_attr)
    out = r.new_set(path, size, NodeType.NORM, scalable=weight is not None)
    r.tie(x.set, out)
    r.edges(DiagEdges(x.set, out, EdgeType.NORM, weight))
    r.node_slot(out, NODE_BIAS, bias_name(m, path, bias_attr))
    return out, x


@register_module(nn.BatchNorm1d, nn.BatchNorm2d)
def _batch_norm(r, m, path, x):
    out, x = _norm(r, m, path, x, 1, m.num_features)
    r.node_slot(out, NODE_RUNNING_MEAN, bias_name(m, path, "running_mean"))
    r.node_slot(out, NODE_RUNNING_VAR, bias_name(m, path, "running_var"))
    return Feat(out, 1, r.out_shape())


@register_module(nn.LayerNorm)
def _layer_norm(r, m, path, x):
    if len(m.normalized_shape) != 1:
        r.refuse(f"LayerNorm over {list(m.normalized_shape)}: only the last axis is read")
    out, x = _norm(r, m, path, x, -1, m.normalized_shape[0])
    return Feat(out, x.dim, r.out_shape())


@register_module(nn.GroupNorm)
def _group_norm(r, m, path, x):
    out, x = _norm(r, m, path, x, 1, m.num_channels)
    r.constrain(out, m.num_groups)  # channels may move only with their group
    return Feat(out, 1, r.out_shape())


# ---------------------------------------------------------------------- attention
