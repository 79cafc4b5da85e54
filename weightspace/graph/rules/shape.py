"""Rules that move or pool features without weights: dropout, identity, pooling, reshapes,
expansions, transposes, reductions, indexing."""

from __future__ import annotations

import operator

import torch
import torch.nn.functional as F
from torch import nn

from weightspace.graph.rules.registry import (
    elementwise,
    reads_concat,
    reads_mixed,
    register_function,
    register_function_name,
    register_method,
    register_module,
)
from weightspace.graph.values import (
    Cat,
    Feat,
    LazyInput,
    Mixed,
    ParamRef,
    follow_index,
    follow_reshape,
)


@register_module(nn.Dropout, nn.Dropout1d, nn.Dropout2d, nn.AlphaDropout, nn.Identity)
@elementwise
def _identity_module(r, m, path, x, *args, **kwargs):
    return x


@register_function_name("torchvision.ops.stochastic_depth.stochastic_depth")
@elementwise
def _stochastic_depth(r, x, p, mode, training=True):
    """torchvision's stochastic depth: the identity in eval mode (EfficientNet, ConvNeXt)."""
    if training and p > 0:
        r.refuse("stochastic depth in training mode drops random paths: call .eval() first")
    return x


@register_function(F.dropout, F.dropout1d, F.dropout2d, F.alpha_dropout)
@register_method("contiguous", "clone", "detach", "float", "to", "type_as")
@elementwise
def _identity(r, x, *args, **kwargs):
    return x


def _pool(r, x, how: str):
    if isinstance(x, LazyInput):
        return LazyInput(x.index, r.out_shape(), x.integer)
    x = r.features(x, dim=1, what="pooling")
    r.use(x, how)
    return x.moved(1, r.out_shape())


_MAX_POOLS = (nn.MaxPool1d, nn.MaxPool2d, nn.AdaptiveMaxPool1d, nn.AdaptiveMaxPool2d)
_AVG_POOLS = (nn.AvgPool1d, nn.AvgPool2d, nn.AdaptiveAvgPool1d, nn.AdaptiveAvgPool2d)
register_module(*_MAX_POOLS)(reads_concat(lambda r, m, path, x: _pool(r, x, "maxpool")))
register_module(*_AVG_POOLS)(reads_concat(lambda r, m, path, x: _pool(r, x, "pass")))
register_function(F.max_pool1d, F.max_pool2d, F.adaptive_max_pool1d, F.adaptive_max_pool2d)(
    reads_concat(lambda r, x, *a, **k: _pool(r, x, "maxpool"))
)
register_function(F.avg_pool1d, F.avg_pool2d, F.adaptive_avg_pool1d, F.adaptive_avg_pool2d)(
    reads_concat(lambda r, x, *a, **k: _pool(r, x, "pass"))
)


# Upsampling (nearest, linear, bilinear) is linear and acts on every channel alike, like an
# average pool: it moves no channel and keeps every sign and scale symmetry.
register_module(nn.Upsample, nn.UpsamplingNearest2d, nn.UpsamplingBilinear2d)(
    reads_concat(lambda r, m, path, x: _pool(r, x, "pass")))
register_function(F.interpolate)(reads_concat(lambda r, x, *a, **k: _pool(r, x, "pass")))


@reads_concat
def _reshape(r, x, *args, **kwargs):
    shape = r.out_shape()
    if isinstance(x, LazyInput):
        return LazyInput(x.index, shape, x.integer)
    if isinstance(x, ParamRef):
        return ParamRef(x.name, shape, x.is_buffer)
    if not isinstance(x, (Feat, Cat)):
        return None
    followed = follow_reshape(x.shape, x.dim, shape)
    if followed is None or (x.spatial is not None and followed[1] is not None):
        r.refuse(f"cannot follow the feature axis {x.dim} of {list(x.shape)} into "
                 f"{list(shape)}: a reshape that splits the features over several axes (a "
                 f"channel shuffle, a split into heads) is not read yet")
    dim, spatial = followed
    return x.moved(dim, shape, spatial if spatial is not None else x.spatial)


register_module(nn.Flatten, nn.Unflatten)(reads_concat(lambda r, m, path, x: _reshape(r, x)))
register_function(torch.flatten, torch.reshape, torch.squeeze, torch.unsqueeze)(_reshape)
register_method("view", "reshape", "view_as", "reshape_as", "flatten", "unflatten", "squeeze",
                "unsqueeze")(_reshape)


@register_method("expand", "expand_as", "repeat")
@reads_concat
def _expand(r, x, *args, **kwargs):
    if isinstance(x, ParamRef):
        return x  # broadcasting copies; the parameter's own shape is what is read
    shape = r.out_shape()
    if isinstance(x, LazyInput):
        return LazyInput(x.index, shape, x.integer)
    if not isinstance(x, (Feat, Cat)):
        return None
    dim = x.dim + len(shape) - len(x.shape)
    if shape[dim] != x.shape[x.dim]:
        r.refuse("repeats the feature axis")
    return x.moved(dim, shape, x.spatial)


def _permute_axes(r, x, order: list[int]):
    x = r.settle(x)  # a token-mixed tensor transposed back: its features are channels again
    shape = r.out_shape()
    if isinstance(x, LazyInput):
        return LazyInput(x.index, shape, x.integer)
    if not isinstance(x, (Feat, Cat)):
        return None if not isinstance(x, ParamRef) else r.refuse("permutes a parameter")
    order = [d % len(x.shape) for d in order]
    return x.moved(order.index(x.dim), shape, x.spatial)


@register_function(torch.transpose)
@register_method("transpose")
@reads_concat
@reads_mixed
def _transpose(r, x, d0, d1):
    n = len(x.shape) if isinstance(x, (Feat, Cat, LazyInput, Mixed)) else 0
    order = list(range(n))
    if n:
        d0, d1 = d0 % n, d1 % n
        order[d0], order[d1] = order[d1], order[d0]
    return _permute_axes(r, x, order)


@register_function(torch.permute)
@register_method("permute")
@reads_concat
@reads_mixed
def _permute(r, x, *dims):
    dims = list(dims[0]) if len(dims) == 1 and isinstance(dims[0], (tuple, list)) else list(dims)
    return _permute_axes(r, x, dims)


@register_function(torch.mean, torch.sum, torch.amax)
@register_method("mean", "sum", "amax")
@reads_concat
def _reduce(r, x, dim=None, keepdim=False, **kwargs):
    if isinstance(x, LazyInput):
        return LazyInput(x.index, r.out_shape(), x.integer)
    if not isinstance(x, (Feat, Cat)):
        return None if not isinstance(x, ParamRef) else r.refuse("reduces a parameter")
    if dim is None:
        r.refuse("reduces over all axes, features included")
    dims = [d % len(x.shape) for d in ([dim] if isinstance(dim, int) else dim)]
    if x.dim in dims:
        r.refuse("reduces over the feature axis")
    new_dim = x.dim if keepdim else x.dim - sum(d < x.dim for d in dims)
    return x.moved(new_dim, r.out_shape(), x.spatial)


@register_function(operator.getitem)
@reads_concat
def _getitem(r, x, index):
    if isinstance(x, (tuple, list)):
        return x[index]
    if isinstance(x, LazyInput):
        return LazyInput(x.index, r.out_shape(), x.integer)
    if isinstance(x, ParamRef):
        r.refuse(f"indexes parameter {x.name!r}: only whole parameters are read")
    if not isinstance(x, (Feat, Cat)):
        return None
    dim = follow_index(x.shape, x.dim, index)
    if dim is None:
        r.refuse("selects part of the feature axis")
    return x.moved(dim, r.out_shape(), x.spatial)


@register_function(getattr)
@register_method("size", "dim")
@reads_concat
def _no_features(r, *args, **kwargs):
    return None


# ---------------------------------------------------------------------- elementwise arithmetic
