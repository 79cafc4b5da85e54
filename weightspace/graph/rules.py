"""The rule registry: how each module, function and method becomes node sets and edges.

A module rule is called as ``rule(reader, module, path, *args, **kwargs)`` and a function or
method rule as ``rule(reader, *args, **kwargs)``, with every fx value replaced by its descriptor
(``weightspace.graph.values``). A rule returns the descriptor of the result. Register new ones
with :func:`register_module` / :func:`register_function` / :func:`register_method`.

Layers and their graphs (``W`` a weight, ``b`` a bias, ``->`` an edge block):

- ``Linear``: ``in -> out`` with features ``W[o, i]``, node bias ``b[o]``; after a flatten of a
  ``C x h x w`` map, one edge per channel pair carrying the ``h x w`` block of ``W``;
- ``Conv1d/2d``: one edge per channel pair (within a group) carrying the kernel;
- ``BatchNorm/LayerNorm/GroupNorm``: a new set tied to its input, diagonal edges ``gamma``, node
  features ``beta``, running mean and variance;
- ``x + y`` of two feature tensors: a new set tied to both, identity edges from each;
- ``x + p`` for a parameter ``p``: per-channel -> node bias; with a token axis (positional
  embedding) -> one-hot position nodes with edges ``p[t, c]``;
- ``cat([cls, x], tokens)``: a class token is a one-hot node with edges ``cls[c]``;
- ``MultiheadAttention``: sets Q, K, V (edges typed apart, heads as permutation blocks, constant
  Q_j -> K_j and within-head K -> V edges) and the output projection V -> out;
- ``Embedding``: one-hot vocabulary nodes -> features, edges ``W[v, c]``;
- activations are recorded on the set they act on; dropout, pooling, reshapes pass through.
"""

from __future__ import annotations

import operator
from collections.abc import Callable

import torch
import torch.nn.functional as F
from torch import nn

from weightspace.graph.blocks import (
    NODE_BIAS,
    NODE_RUNNING_MEAN,
    NODE_RUNNING_VAR,
    DenseEdges,
    DiagEdges,
    HeadEdges,
)
from weightspace.graph.values import Feat, LazyInput, ParamRef, follow_index, follow_reshape
from weightspace.graph.vocab import Activation, EdgeType, NodeType

_MODULE_RULES: list[tuple[type, Callable]] = []
_FUNCTION_RULES: dict[Callable, Callable] = {}
_METHOD_RULES: dict[str, Callable] = {}


def register_module(*types):
    def deco(rule):
        for t in types:
            _MODULE_RULES.append((t, rule))
        return rule

    return deco


def register_function(*fns):
    def deco(rule):
        for f in fns:
            _FUNCTION_RULES[f] = rule
        return rule

    return deco


def register_method(*names):
    def deco(rule):
        for n in names:
            _METHOD_RULES[n] = rule
        return rule

    return deco


def module_rule(module: nn.Module):
    for t, rule in _MODULE_RULES:
        if type(module) is t:
            return rule
    return None


def has_module_rule(module: nn.Module) -> bool:
    return module_rule(module) is not None


def function_rule(node):
    if node.op == "call_method":
        return _METHOD_RULES.get(node.target)
    return _FUNCTION_RULES.get(node.target)


def supported_names() -> list[str]:
    return sorted({t.__name__ for t, _ in _MODULE_RULES})


def _bias_name(module: nn.Module, path: str, attr: str = "bias") -> str | None:
    return f"{path}.{attr}" if getattr(module, attr, None) is not None else None


# ---------------------------------------------------------------------- linear maps
def linear(r, x, weight: str, bias: str | None, n_out: int, n_in: int, path: str):
    x = r.feat(x, dim=-1, what=f"linear layer {path!r}")
    if x.spatial is not None:
        C = r.bp.sets[x.set].size
        h, w = x.spatial
        if C * h * w != n_in:
            r.refuse(f"expects {n_in} inputs, got {C}x{h}x{w} flattened features")
        edge_type, kernel = EdgeType.FLATTEN, (h, w)
    else:
        if x.shape[x.dim] != n_in:
            r.refuse(f"expects {n_in} inputs, got {x.shape[x.dim]}")
        edge_type, kernel = EdgeType.LINEAR, (1, 1)
    r.use(x, "linear")
    out = r.new_set(path, n_out, NodeType.LINEAR, scalable=True)
    r.edges(DenseEdges(x.set, out, edge_type, weight, kernel=kernel))
    r.node_slot(out, NODE_BIAS, bias)
    shape = r.out_shape()
    return Feat(out, len(shape) - 1, shape)


@register_module(nn.Linear)
def _linear_module(r, m, path, x):
    return linear(r, x, f"{path}.weight", _bias_name(m, path), m.out_features, m.in_features,
                  path)


@register_function(F.linear)
def _linear_function(r, x, weight, bias=None):
    if not isinstance(weight, ParamRef) or not (bias is None or isinstance(bias, ParamRef)):
        r.refuse("F.linear is read only with parameters as weight and bias")
    n_out, n_in = r.param_shape(weight)
    path = weight.name.rsplit(".", 1)[0] if "." in weight.name else weight.name
    return linear(r, x, weight.name, bias.name if bias else None, n_out, n_in, path)


@register_module(nn.Conv1d, nn.Conv2d)
def _conv(r, m, path, x):
    x = r.feat(x, dim=1, size=m.in_channels, what=f"convolution {path!r}")
    r.use(x, "linear")
    kernel = tuple(m.kernel_size)
    kernel = (1, kernel[0]) if len(kernel) == 1 else kernel
    out = r.new_set(path, m.out_channels, NodeType.CONV, scalable=True)
    r.edges(DenseEdges(x.set, out, EdgeType.CONV, f"{path}.weight", groups=m.groups,
                       kernel=kernel))
    r.node_slot(out, NODE_BIAS, _bias_name(m, path))
    if m.groups > 1:
        # Input group k feeds only output group k: groups move together on both sides.
        r.constrain(x.set, m.groups, f"{path}.groups")
        r.constrain(out, m.groups, f"{path}.groups")
    return Feat(out, 1, r.out_shape())


@register_module(nn.Embedding)
def _embedding(r, m, path, ids, *args, **kwargs):
    if isinstance(ids, Feat):
        r.refuse("an Embedding reads token ids, not features")
    vocab = r.new_set(f"{path}.vocab", m.num_embeddings, NodeType.TOKEN, role="token")
    out = r.new_set(path, m.embedding_dim, NodeType.EMBEDDING, scalable=True)
    r.edges(DenseEdges(vocab, out, EdgeType.EMBEDDING, f"{path}.weight", transposed=True))
    shape = r.out_shape()
    return Feat(out, len(shape) - 1, shape)


# ---------------------------------------------------------------------- normalisation
def _norm(r, m, path, x, dim, size, weight_attr="weight", bias_attr="bias"):
    x = r.feat(x, dim=dim, size=size, what=f"norm layer {path!r}")
    r.use(x, "other")
    weight = _bias_name(m, path, weight_attr)
    out = r.new_set(path, size, NodeType.NORM, scalable=weight is not None)
    r.tie(x.set, out)
    r.edges(DiagEdges(x.set, out, EdgeType.NORM, weight))
    r.node_slot(out, NODE_BIAS, _bias_name(m, path, bias_attr))
    return out, x


@register_module(nn.BatchNorm1d, nn.BatchNorm2d)
def _batch_norm(r, m, path, x):
    out, x = _norm(r, m, path, x, 1, m.num_features)
    r.node_slot(out, NODE_RUNNING_MEAN, _bias_name(m, path, "running_mean"))
    r.node_slot(out, NODE_RUNNING_VAR, _bias_name(m, path, "running_var"))
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
@register_module(nn.MultiheadAttention)
def _multihead_attention(r, m, path, query, key, value, *args, **kwargs):
    if not m._qkv_same_embed_dim or m.bias_k is not None or m.add_zero_attn:
        r.refuse("only attention with equal q/k/v sizes, no bias_k/bias_v, no add_zero_attn")
    E, H = m.embed_dim, m.num_heads
    q = r.feat(query, dim=-1, size=E, what=f"attention {path!r}")
    k = r.feat(key, dim=-1, size=E, what=f"attention {path!r}")
    v = r.feat(value, dim=-1, size=E, what=f"attention {path!r}")
    bias = _bias_name(m, path, "in_proj_bias")
    heads = f"{path}.heads"
    sets = {}
    for i, (x, name, node_type, edge_type) in enumerate(
        [(q, "q", NodeType.ATTN_Q, EdgeType.ATTN_Q), (k, "k", NodeType.ATTN_K, EdgeType.ATTN_K),
         (v, "v", NodeType.ATTN_V, EdgeType.ATTN_V)]
    ):
        r.use(x, "linear")
        s = r.new_set(f"{path}.{name}", E, node_type)
        r.edges(DenseEdges(x.set, s, edge_type, f"{path}.in_proj_weight", offset=i * E * E))
        r.node_slot(s, NODE_BIAS, bias, offset=i * E)
        r.constrain(s, H, heads)
        sets[name] = s
    # softmax(Q_h K_h^T) V_h is unchanged by one permutation applied to the features of Q_h and
    # K_h together, and by any permutation of the features of V_h; heads move as wholes.
    r.tie(sets["q"], sets["k"])
    r.edges(DiagEdges(sets["q"], sets["k"], EdgeType.ATTN_QK))
    r.edges(HeadEdges(sets["k"], sets["v"], EdgeType.ATTN_KV, H))
    out = r.new_set(f"{path}.out_proj", E, NodeType.ATTN_OUT, scalable=True)
    r.edges(DenseEdges(sets["v"], out, EdgeType.ATTN_OUT, f"{path}.out_proj.weight"))
    r.node_slot(out, NODE_BIAS, _bias_name(m.out_proj, f"{path}.out_proj"))
    return (Feat(out, q.dim, q.shape), None)


# ---------------------------------------------------------------------- activations
_ACTIVATION_MODULES = {
    nn.ReLU: Activation.RELU, nn.GELU: Activation.GELU, nn.SiLU: Activation.SILU,
    nn.Tanh: Activation.TANH, nn.Sigmoid: Activation.SIGMOID,
    nn.LeakyReLU: Activation.LEAKY_RELU, nn.ELU: Activation.ELU,
    nn.Softplus: Activation.SOFTPLUS,
}
_ACTIVATION_FUNCTIONS = {
    F.relu: Activation.RELU, torch.relu: Activation.RELU, F.gelu: Activation.GELU,
    F.silu: Activation.SILU, torch.tanh: Activation.TANH, F.tanh: Activation.TANH,
    torch.sigmoid: Activation.SIGMOID, F.sigmoid: Activation.SIGMOID,
    F.leaky_relu: Activation.LEAKY_RELU, F.elu: Activation.ELU, F.softplus: Activation.SOFTPLUS,
    torch.sin: Activation.SINE,
}
_ACTIVATION_METHODS = {
    "relu": Activation.RELU, "tanh": Activation.TANH, "sigmoid": Activation.SIGMOID,
    "sin": Activation.SINE,
}


def _activate(r, x, act: Activation):
    if isinstance(x, LazyInput):
        return x  # preprocessing of the input, before any layer
    if not isinstance(x, Feat):
        r.refuse(f"activation {act.name.lower()} applied to a non-feature value")
    return r.use(x, "activation", act)


for _type, _act in _ACTIVATION_MODULES.items():
    register_module(_type)(lambda r, m, path, x, *a, _act=_act, **k: _activate(r, x, _act))
for _fn, _act in _ACTIVATION_FUNCTIONS.items():
    register_function(_fn)(lambda r, x, *a, _act=_act, **k: _activate(r, x, _act))
for _name, _act in _ACTIVATION_METHODS.items():
    register_method(_name)(lambda r, x, *a, _act=_act, **k: _activate(r, x, _act))


# ---------------------------------------------------------------------- structure
@register_module(nn.Dropout, nn.Dropout1d, nn.Dropout2d, nn.AlphaDropout, nn.Identity)
def _identity_module(r, m, path, x, *args, **kwargs):
    return x


@register_function(F.dropout, F.dropout1d, F.dropout2d, F.alpha_dropout)
@register_method("contiguous", "clone", "detach", "float", "to", "type_as")
def _identity(r, x, *args, **kwargs):
    return x


def _pool(r, x, how: str):
    if isinstance(x, LazyInput):
        return LazyInput(x.index, r.out_shape(), x.integer)
    x = r.feat(x, dim=1, what="pooling")
    r.use(x, how)
    return x.moved(1, r.out_shape())


_MAX_POOLS = (nn.MaxPool1d, nn.MaxPool2d, nn.AdaptiveMaxPool1d, nn.AdaptiveMaxPool2d)
_AVG_POOLS = (nn.AvgPool1d, nn.AvgPool2d, nn.AdaptiveAvgPool1d, nn.AdaptiveAvgPool2d)
register_module(*_MAX_POOLS)(lambda r, m, path, x: _pool(r, x, "maxpool"))
register_module(*_AVG_POOLS)(lambda r, m, path, x: _pool(r, x, "pass"))
register_function(F.max_pool1d, F.max_pool2d, F.adaptive_max_pool1d, F.adaptive_max_pool2d)(
    lambda r, x, *a, **k: _pool(r, x, "maxpool")
)
register_function(F.avg_pool1d, F.avg_pool2d, F.adaptive_avg_pool1d, F.adaptive_avg_pool2d)(
    lambda r, x, *a, **k: _pool(r, x, "pass")
)


def _reshape(r, x, *args, **kwargs):
    shape = r.out_shape()
    if isinstance(x, LazyInput):
        return LazyInput(x.index, shape, x.integer)
    if isinstance(x, ParamRef):
        return ParamRef(x.name, shape, x.is_buffer)
    if not isinstance(x, Feat):
        return None
    followed = follow_reshape(x.shape, x.dim, shape)
    if followed is None or (x.spatial is not None and followed[1] is not None):
        r.refuse(f"cannot follow the feature axis {x.dim} of {list(x.shape)} into "
                 f"{list(shape)}")
    dim, spatial = followed
    return x.moved(dim, shape, spatial if spatial is not None else x.spatial)


register_module(nn.Flatten, nn.Unflatten)(lambda r, m, path, x: _reshape(r, x))
register_function(torch.flatten, torch.reshape, torch.squeeze, torch.unsqueeze)(_reshape)
register_method("view", "reshape", "flatten", "unflatten", "squeeze", "unsqueeze")(_reshape)


@register_method("expand", "expand_as", "repeat")
def _expand(r, x, *args, **kwargs):
    if isinstance(x, ParamRef):
        return x  # broadcasting copies; the parameter's own shape is what is read
    shape = r.out_shape()
    if isinstance(x, LazyInput):
        return LazyInput(x.index, shape, x.integer)
    if not isinstance(x, Feat):
        return None
    dim = x.dim + len(shape) - len(x.shape)
    if shape[dim] != x.shape[x.dim]:
        r.refuse("repeats the feature axis")
    return x.moved(dim, shape, x.spatial)


def _permute_axes(r, x, order: list[int]):
    shape = r.out_shape()
    if isinstance(x, LazyInput):
        return LazyInput(x.index, shape, x.integer)
    if not isinstance(x, Feat):
        return None if not isinstance(x, ParamRef) else r.refuse("permutes a parameter")
    order = [d % len(x.shape) for d in order]
    return x.moved(order.index(x.dim), shape, x.spatial)


@register_function(torch.transpose)
@register_method("transpose")
def _transpose(r, x, d0, d1):
    n = len(x.shape) if isinstance(x, (Feat, LazyInput)) else 0
    order = list(range(n))
    if n:
        d0, d1 = d0 % n, d1 % n
        order[d0], order[d1] = order[d1], order[d0]
    return _permute_axes(r, x, order)


@register_function(torch.permute)
@register_method("permute")
def _permute(r, x, *dims):
    dims = list(dims[0]) if len(dims) == 1 and isinstance(dims[0], (tuple, list)) else list(dims)
    return _permute_axes(r, x, dims)


@register_function(torch.mean, torch.sum, torch.amax)
@register_method("mean", "sum", "amax")
def _reduce(r, x, dim=None, keepdim=False, **kwargs):
    if isinstance(x, LazyInput):
        return LazyInput(x.index, r.out_shape(), x.integer)
    if not isinstance(x, Feat):
        return None if not isinstance(x, ParamRef) else r.refuse("reduces a parameter")
    if dim is None:
        r.refuse("reduces over all axes, features included")
    dims = [d % len(x.shape) for d in ([dim] if isinstance(dim, int) else dim)]
    if x.dim in dims:
        r.refuse("reduces over the feature axis")
    new_dim = x.dim if keepdim else x.dim - sum(d < x.dim for d in dims)
    return x.moved(new_dim, r.out_shape(), x.spatial)


@register_function(operator.getitem)
def _getitem(r, x, index):
    if isinstance(x, (tuple, list)):
        return x[index]
    if isinstance(x, LazyInput):
        return LazyInput(x.index, r.out_shape(), x.integer)
    if isinstance(x, ParamRef):
        r.refuse(f"indexes parameter {x.name!r}: only whole parameters are read")
    if not isinstance(x, Feat):
        return None
    dim = follow_index(x.shape, x.dim, index)
    if dim is None:
        r.refuse("selects part of the feature axis")
    return x.moved(dim, r.out_shape(), x.spatial)


@register_function(getattr)
@register_method("size", "dim")
def _no_features(r, *args, **kwargs):
    return None


# ---------------------------------------------------------------------- elementwise arithmetic
def _aligned_dim(x: Feat, shape) -> int:
    """The feature axis of ``x`` in a broadcast result of shape ``shape``."""
    return len(shape) - (len(x.shape) - x.dim)


def _runs_along(r, other_shape, x: Feat, shape) -> bool:
    """Whether a broadcast operand of ``other_shape`` varies along ``x``'s feature axis."""
    if other_shape is None:
        return False
    axis = len(other_shape) - (len(shape) - _aligned_dim(x, shape))
    return 0 <= axis < len(other_shape) and other_shape[axis] > 1


def _residual(r, feats: list[Feat], shape, edge_type=EdgeType.RESIDUAL) -> tuple[int, int]:
    """A new set tied to ``feats``, with identity edges from each: returns (set, axis)."""
    dims = {_aligned_dim(f, shape) for f in feats}
    sizes = {r.bp.sets[f.set].size for f in feats}
    if len(dims) != 1 or len(sizes) != 1 or any(f.spatial for f in feats):
        r.refuse("combines feature tensors whose feature axes do not line up")
    out = r.new_set(r.module_path()[0] or "add", sizes.pop(), NodeType.ADD)
    for f in feats:
        r.use(f, "other")
        r.tie(f.set, out)
        r.edges(DiagEdges(f.set, out, edge_type))
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
    if isinstance(b, (Feat, LazyInput)):
        r.refuse("a product of two feature tensors is not read")
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


@register_function(torch.cat, torch.concat)
def _cat(r, tensors, dim=0):
    shape = r.out_shape()
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
        r.refuse("concatenation along the feature axis is not read")
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
