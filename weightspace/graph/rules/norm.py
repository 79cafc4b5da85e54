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
from weightspace.graph.rules.registry import reads_concat, register_module
from weightspace.graph.values import Cat, Feat
from weightspace.graph.vocab import EdgeType, NodeType


def _norm(r, m, path, x, dim, size, weight_attr="weight", bias_attr="bias",
          stats=False):
    """A new set tied to each part of ``x`` (one, unless ``x`` is a concatenation), with the
    part's share of the scale, shift and (``stats``) running statistics."""
    parts = r.parts(x, dim=dim, size=size, what=f"norm layer {path!r}")
    r.use(x, "other")
    weight = bias_name(m, path, weight_attr)
    slots = [(NODE_BIAS, bias_attr)] + (
        [(NODE_RUNNING_MEAN, "running_mean"), (NODE_RUNNING_VAR, "running_var")] if stats else [])
    outs = []
    for part, start in parts:
        n = r.bp.sets[part.set].size
        name = path if len(parts) == 1 else f"{path}.{start}"
        out = r.new_set(name, n, NodeType.NORM, scalable=weight is not None)
        r.tie(part.set, out)
        r.edges(DiagEdges(part.set, out, EdgeType.NORM, weight, offset=start))
        for slot, attr in slots:
            r.node_slot(out, slot, bias_name(m, path, attr), offset=start)
        outs.append((out, part))
    return outs


def _normed(r, outs, x, dim):
    """The norm's result: a feature tensor, or a concatenation when ``x`` was one."""
    shape = r.out_shape()
    if not isinstance(x, Cat):
        return Feat(outs[0][0], dim % len(shape), shape)
    return Cat(tuple(Feat(o, p.dim, p.shape, p.spatial) for o, p in outs), x.sizes, x.dim, shape,
               x.spatial)


@register_module(nn.BatchNorm1d, nn.BatchNorm2d)
@reads_concat
def _batch_norm(r, m, path, x):
    return _normed(r, _norm(r, m, path, x, 1, m.num_features, stats=True), x, 1)


@register_module(nn.LayerNorm)
@reads_concat
def _layer_norm(r, m, path, x):
    if len(m.normalized_shape) != 1:
        r.refuse(f"LayerNorm over {list(m.normalized_shape)}: only the last axis is read")
    # statistics over every feature of a concatenation: each part may still move on its own
    return _normed(r, _norm(r, m, path, x, -1, m.normalized_shape[0]), x, -1)


@register_module(nn.GroupNorm)
def _group_norm(r, m, path, x):
    [(out, _)] = _norm(r, m, path, x, 1, m.num_channels)
    r.constrain(out, m.num_groups)  # channels may move only with their group
    return Feat(out, 1, r.out_shape())


# ---------------------------------------------------------------------- attention
