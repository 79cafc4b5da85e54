"""Rules of arithmetic on features: residual adds, gates, parameters added or multiplied in
(biases, positional embeddings, LayerScale), and concatenation (class tokens, and feature
tensors side by side)."""

from __future__ import annotations

import operator

import torch

from weightspace.graph.blocks import (
    NODE_BIAS,
    DenseEdges,
    DiagEdges,
)
from weightspace.graph.rules.registry import reads_concat, register_function, register_method
from weightspace.graph.values import Cat, Feat, LazyInput, ParamRef
from weightspace.graph.vocab import EdgeType, NodeType


def _aligned_dim(x: Feat, shape) -> int:
    """The feature axis of ``x`` in a broadcast result of shape ``shape``."""
    return len(shape) - (len(x.shape) - x.dim)


def _runs_along(r, other_shape, x: Feat, shape) -> bool:
    """Whether a broadcast operand of ``other_shape`` varies along ``x``'s feature axis."""
    if other_shape is None:
        return False
    axis = len(other_shape) - (len(shape) - _aligned_dim(x, shape))
    return 0 <= axis < len(other_shape) and other_shape[axis] > 1


def _residual(r, feats: list[Feat], shape, edge_type=EdgeType.RESIDUAL,
              node_type=NodeType.ADD) -> tuple[int, int]:
    """A new set tied to ``feats``, with identity edges from each (of ``edge_type``, or of
    ``edge_type[i]`` from ``feats[i]``): returns (set, axis)."""
    dims = {_aligned_dim(f, shape) for f in feats}
    sizes = {r.bp.sets[f.set].size for f in feats}
    if len(dims) != 1 or len(sizes) != 1 or any(f.spatial for f in feats):
        r.refuse("combines feature tensors whose feature axes do not line up")
    out = r.new_set(r.module_path()[0] or node_type.name.lower(), sizes.pop(), node_type)
    types = edge_type if isinstance(edge_type, list) else [edge_type] * len(feats)
    for f, t in zip(feats, types, strict=True):
        r.use(f, "other")
        r.tie(f.set, out)
        r.edges(DiagEdges(f.set, out, t))
    return out, dims.pop()


def _token_edges(r, p: ParamRef, x: Feat, out: int, shape, edge_type) -> None:
    """Edges from one-hot token nodes into ``out`` carrying parameter ``p`` (see module doc)."""
    vshape = p.shape if len(p.shape) else r.param_shape(p)
    C = r.bp.sets[out].size
    axis = len(vshape) - (len(shape) - _aligned_dim(x, shape))
    if not 0 <= axis < len(vshape) or vshape[axis] != C:
        r.refuse(f"parameter {p.name!r} of shape {list(vshape)} does not run along the "
                 f"{C} features")
    before = [a for a in range(axis) if vshape[a] > 1]
    after = [a for a in range(axis + 1, len(vshape)) if vshape[a] > 1]
    if before and after:
        r.refuse(f"parameter {p.name!r} has token axes on both sides of its feature axis")
    n_tokens = 1
    for a in before + after:
        n_tokens *= vshape[a]
    tokens = r.new_set(p.name, n_tokens, NodeType.TOKEN, role="token")
    r.edges(DenseEdges(tokens, out, edge_type, p.name, transposed=not after))


def _add_parameter(r, x: Feat, p: ParamRef, shape):
    vshape = p.shape if len(p.shape) else r.param_shape(p)
    varying = [s for s in vshape if s > 1]
    C = r.bp.sets[x.set].size
    out, dim = _residual(r, [x], shape,
                         EdgeType.BIAS_ADD if varying in ([C], []) else EdgeType.RESIDUAL)
    if varying in ([C], []):
        if not _runs_along(r, vshape, x, shape):
            r.refuse(f"adds parameter {p.name!r} that does not run along the features")
        r.node_slot(out, NODE_BIAS, p.name)
    else:
        _token_edges(r, p, x, out, shape, EdgeType.POSITION)
    return Feat(out, dim, shape)


def _constant_operand(r, x: Feat, other, other_shape, shape, how="other"):
    """``x`` combined with a scalar or a parameter-free tensor: same set, pinned if needed."""
    if _runs_along(r, other_shape, x, shape):
        r.pin(x.set)  # a constant that differs per channel fixes the channels' order
    x = r.use(x, how)
    return x.moved(_aligned_dim(x, shape), shape, x.spatial)


@register_function(operator.add, operator.iadd, torch.add)
@register_method("add", "add_")
def _add(r, a, b, *args, **kwargs):
    shape = r.out_shape()
    shapes = (r.arg_shape(0), r.arg_shape(1))
    feats = [v for v in (a, b) if isinstance(v, Feat)]
    if not feats:
        if any(isinstance(v, ParamRef) for v in (a, b)):
            r.refuse("adds a parameter to something that is not a feature tensor")
        lazy = [v for v in (a, b) if isinstance(v, LazyInput)]
        return LazyInput(lazy[0].index, shape, lazy[0].integer) if lazy else None
    if len(feats) == 2 and a.set == b.set:
        return _constant_operand(r, a, None, None, shape)
    first = feats[0]
    other, other_shape = (b, shapes[1]) if first is a else (a, shapes[0])
    if isinstance(other, LazyInput):
        d = len(other.shape) - (len(first.shape) - first.dim)
        other = r.feat(other, dim=d)
    if isinstance(other, Feat):
        out, dim = _residual(r, [first, other], shape)
        return Feat(out, dim, shape)
    if isinstance(other, ParamRef):
        return _add_parameter(r, first, other, shape)
    return _constant_operand(r, first, other, other_shape, shape)


@register_function(operator.sub, torch.sub)
@register_method("sub")
def _sub(r, a, b, *args, **kwargs):
    if isinstance(a, Feat) and isinstance(b, Feat):
        # a - b (PoolFormer's pool(x) - x): an add whose second operand's edges say "minus"
        shape = r.out_shape()
        if a.set == b.set:  # pool(x) - x: the same channels, no weights between them
            return _constant_operand(r, a, None, None, shape)
        out, dim = _residual(r, [a, b], shape, [EdgeType.RESIDUAL, EdgeType.SUBTRACT])
        return Feat(out, dim, shape)
    if isinstance(a, Feat) and not isinstance(b, (Feat, ParamRef, LazyInput)):
        return _constant_operand(r, a, b, r.arg_shape(1), r.out_shape())
    if isinstance(a, LazyInput) and not isinstance(b, (Feat, ParamRef)):
        return LazyInput(a.index, r.out_shape(), a.integer)
    if not any(isinstance(v, (Feat, ParamRef)) for v in (a, b)):
        return None
    return r.refuse("subtraction involving features or parameters is not read")


@register_function(operator.mul, operator.imul, torch.mul)
@register_method("mul", "mul_")
def _mul(r, a, b, *args, **kwargs):
    shape = r.out_shape()
    if isinstance(b, Feat) and not isinstance(a, Feat):
        a, b = b, a
        other_shape = r.arg_shape(0)
    else:
        other_shape = r.arg_shape(1)
    if isinstance(a, LazyInput) and not isinstance(b, (Feat, ParamRef)):
        return LazyInput(a.index, shape, a.integer)
    if not isinstance(a, Feat):
        if isinstance(b, ParamRef) or isinstance(a, ParamRef):
            r.refuse("multiplies a parameter with something that is not a feature tensor")
        return None
    if isinstance(b, LazyInput):
        r.refuse("a product of a feature tensor and a network input is not read")
    if isinstance(b, Feat):
        # A gate (squeeze-and-excitation: x * sigmoid(fc(pool(x)))): z_i = x_i g_i, so the
        # gated channels, the gate's channels and the product move under one permutation.
        if b.set == a.set:
            r.refuse("a product of a feature tensor with itself (a square) is not read")
        out, dim = _residual(r, [a, b], shape, EdgeType.GATE, NodeType.GATE)
        return Feat(out, dim, shape)
    if isinstance(b, ParamRef):
        # A learned per-channel scale (LayerScale): a diagonal layer like a norm's gamma.
        vshape = b.shape if len(b.shape) else r.param_shape(b)
        if [s for s in vshape if s > 1] != [r.bp.sets[a.set].size] or not _runs_along(
            r, vshape, a, shape
        ):
            r.refuse(f"multiplies by parameter {b.name!r} that is not a per-feature scale")
        r.use(a, "other")
        out = r.new_set(r.module_path()[0] or b.name, r.bp.sets[a.set].size, NodeType.NORM,
                        scalable=True)
        r.tie(a.set, out)
        r.edges(DiagEdges(a.set, out, EdgeType.NORM, b.name))
        return Feat(out, _aligned_dim(a, shape), shape)
    how = "pass" if isinstance(b, (int, float)) else "other"
    return _constant_operand(r, a, b, other_shape, shape, how)


@register_function(operator.truediv, torch.div)
@register_method("div")
def _div(r, a, b, *args, **kwargs):
    if isinstance(a, LazyInput) and not isinstance(b, (Feat, ParamRef)):
        return LazyInput(a.index, r.out_shape(), a.integer)
    if isinstance(a, Feat) and not isinstance(b, (Feat, ParamRef, LazyInput)):
        how = "pass" if isinstance(b, (int, float)) else "other"
        return _constant_operand(r, a, b, r.arg_shape(1), r.out_shape(), how)
    if not any(isinstance(v, (Feat, ParamRef)) for v in (a, b)):
        return None
    return r.refuse("division involving features or parameters is not read")


@register_function(operator.neg, torch.neg)
@register_method("neg")
def _neg(r, x):
    return x


def _feature_cat(r, tensors, d: int, shape) -> Cat:
    """Concatenation along the feature axis ``d``: the parts side by side (see ``Cat``)."""
    parts, sizes = [], []
    for t in tensors:
        if isinstance(t, Cat):  # a concatenation of concatenations is one, flat
            parts += t.parts
            sizes += t.sizes
            continue
        if isinstance(t, ParamRef) or not isinstance(t, (Feat, LazyInput)):
            r.refuse("concatenates features with a parameter or a constant along the "
                     "feature axis")
        t = r.feat(t, dim=d)
        parts.append(t)
        sizes.append(r.bp.sets[t.set].size)
    if len({p.set for p in parts}) < len(parts):
        r.refuse("concatenates a feature tensor with itself (its nodes would appear twice)")
    spatial = {p.spatial for p in parts}
    if len(spatial) > 1:
        r.refuse("concatenates flattened feature maps of different sizes")
    return Cat(tuple(parts), tuple(sizes), d, shape, spatial.pop())


@register_function(torch.cat, torch.concat)
@reads_concat
def _cat(r, tensors, dim=0):
    shape = r.out_shape()
    cats = [t for t in tensors if isinstance(t, Cat)]
    if cats:
        if dim % len(shape) != cats[0].dim:
            r.refuse("concatenates, along another axis, tensors concatenated along the "
                     "feature axis")
        return _feature_cat(r, tensors, cats[0].dim, shape)
    feats = [t for t in tensors if isinstance(t, Feat)]
    if not feats:
        lazy = [t for t in tensors if isinstance(t, LazyInput)]
        if lazy and not any(isinstance(t, ParamRef) for t in tensors):
            return LazyInput(lazy[0].index, shape, lazy[0].integer)
        if any(isinstance(t, ParamRef) for t in tensors):
            r.refuse("concatenates parameters with no feature tensor")
        return None
    d = _aligned_dim(feats[0], shape)
    if dim % len(shape) == d:
        return _feature_cat(r, tensors, d, shape)
    parts = []
    for t in tensors:
        if isinstance(t, LazyInput):
            t = r.feat(t, dim=d)
        parts.append(t)
    out, dim_out = _residual(r, [t for t in parts if isinstance(t, Feat)], shape)
    for t in parts:
        if isinstance(t, ParamRef):
            _token_edges(r, t, feats[0], out, shape, EdgeType.CLASS_TOKEN)
        elif not isinstance(t, Feat):
            r.refuse("concatenates features with a tensor that is neither feature nor parameter")
    return Feat(out, dim_out, shape)
