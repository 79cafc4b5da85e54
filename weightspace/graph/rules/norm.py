"""Rules of normalisation layers: ``BatchNorm``, ``LayerNorm``, ``GroupNorm``."""

from __future__ import annotations

import torch.nn.functional as F
from torch import nn

from weightspace.graph.blocks import (
    NODE_BIAS,
    NODE_RUNNING_MEAN,
    NODE_RUNNING_VAR,
    DiagEdges,
)
from weightspace.graph.rules.dense import bias_name
from weightspace.graph.rules.registry import reads_concat, register_function, register_module
from weightspace.graph.values import Cat, Feat, ParamRef, parts_of
from weightspace.graph.vocab import EdgeType, NodeType


def norm_reads(r, src: int, out: int, weight: str | None, bias: str | None, stats=None,
               offset: int = 0, first: int = 0, count: int = 0):
    """A norm's tensors from element ``offset`` on, read into set ``out`` after ``src``
    (their nodes ``first .. first + count - 1``; all when ``count`` is 0): the scale ``weight``
    on diagonal edges, the shift ``bias`` and the running ``stats`` (mean, var) as node
    features."""
    r.edges(DiagEdges(src, out, EdgeType.NORM, weight, offset=offset, first=first, count=count))
    slots = [(NODE_BIAS, bias)] + (
        [(NODE_RUNNING_MEAN, stats[0]), (NODE_RUNNING_VAR, stats[1])] if stats else [])
    for slot, tensor in slots:
        r.node_slot(out, slot, tensor, offset=offset, first=first, count=count)


def _norm(r, path, x, dim, size, weight: str | None, bias: str | None, stats=None):
    """A new set tied to each part of ``x`` (one, unless ``x`` is a concatenation), with the
    part's share of the scale ``weight``, shift ``bias`` and running ``stats`` (mean, var)."""
    x = r.features(x, dim=dim, size=size, what=f"norm layer {path!r}")
    r.use(x, "other")
    parts = parts_of(x)
    outs = []
    for part, start in parts:
        n = r.bp.sets[part.set].size
        name = path if len(parts) == 1 else f"{path}.{start}"
        out = r.new_set(name, n, NodeType.NORM, scalable=weight is not None)
        r.tie(part.set, out)
        norm_reads(r, part.set, out, weight, bias, stats, offset=start)
        outs.append((out, part))
    return outs


def _module_norm(r, m, path, x, dim, size, stats=False):
    return _norm(r, path, x, dim, size, bias_name(m, path, "weight"), bias_name(m, path),
                 (bias_name(m, path, "running_mean"), bias_name(m, path, "running_var"))
                 if stats else None)


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
    return _normed(r, _module_norm(r, m, path, x, 1, m.num_features, stats=True), x, 1)


@register_module(nn.LayerNorm)
@reads_concat
def _layer_norm(r, m, path, x):
    if len(m.normalized_shape) != 1:
        r.refuse(f"LayerNorm over {list(m.normalized_shape)}: only the last axis is read")
    # statistics over every feature of a concatenation: each part may still move on its own
    return _normed(r, _module_norm(r, m, path, x, -1, m.normalized_shape[0]), x, -1)


@register_module(nn.GroupNorm)
def _group_norm(r, m, path, x):
    [(out, _)] = _module_norm(r, m, path, x, 1, m.num_channels)
    r.constrain(out, m.num_groups)  # channels may move only with their group
    return Feat(out, 1, r.out_shape())


# ---------------------------------------------------------------------- attention


# The functional forms, as modules of other libraries call them from forwards of their own
# (timm's LayerNorm, LayerNorm2d and BatchNormAct2d): the tensors must be whole parameters.
def _names(r, what: str, *tensors) -> list[str | None]:
    if any(t is not None and not isinstance(t, ParamRef) for t in tensors):
        r.refuse(f"{what} is read only with parameters and buffers as its tensors")
    return [t.name if t is not None else None for t in tensors]


def _owner(r, names: list[str | None], fallback: str) -> str:
    named = next((n for n in names if n), None)
    return named.rpartition(".")[0] if named else (r.module_path()[0] or fallback)


@register_function(F.layer_norm)
@reads_concat
def _layer_norm_function(r, x, normalized_shape, weight=None, bias=None, eps=1e-5):
    if len(normalized_shape) != 1:
        r.refuse(f"layer_norm over {list(normalized_shape)}: only the last axis is read")
    names = _names(r, "layer_norm", weight, bias)
    outs = _norm(r, _owner(r, names, "layer_norm"), x, -1, normalized_shape[0], *names)
    return _normed(r, outs, x, -1)


@register_function(F.batch_norm)
@reads_concat
def _batch_norm_function(r, x, running_mean, running_var, weight=None, bias=None,
                         training=False, *args, **kwargs):
    if training or running_mean is None:
        r.refuse("batch_norm with batch statistics (training mode) is not a fixed function")
    mean, var, w, b = _names(r, "batch_norm", running_mean, running_var, weight, bias)
    outs = _norm(r, _owner(r, [w, b, mean], "batch_norm"), x, 1, None, w, b, (mean, var))
    return _normed(r, outs, x, 1)


@register_function(F.group_norm)
def _group_norm_function(r, x, num_groups, weight=None, bias=None, eps=1e-5):
    names = _names(r, "group_norm", weight, bias)
    [(out, _)] = _norm(r, _owner(r, names, "group_norm"), x, 1, None, *names)
    r.constrain(out, num_groups)
    return Feat(out, 1, r.out_shape())
