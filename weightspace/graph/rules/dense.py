"""Rules of dense layers: ``Linear`` (and ``F.linear``), ``Conv1d/2d``, ``ConvTranspose1d/2d``,
``Embedding``."""

from __future__ import annotations

import torch.nn.functional as F
from torch import nn

from weightspace.graph.blocks import (
    NODE_BIAS,
    DenseEdges,
)
from weightspace.graph.rules.registry import (
    reads_concat,
    reads_mixed,
    register_function,
    register_module,
)
from weightspace.graph.values import Cat, Feat, Mixed, ParamRef, parts_of
from weightspace.graph.vocab import EdgeType, NodeType


def bias_name(module: nn.Module, path: str, attr: str = "bias") -> str | None:
    return f"{path}.{attr}" if getattr(module, attr, None) is not None else None


# ---------------------------------------------------------------------- linear maps
def dense_edges(r, x, out: int, edge_type, weight: str, kernel=(1, 1), n_channels=None):
    """Edges from every node of ``x`` (each part of a concatenation, with its weight columns:
    ``DenseEdges.in_offset``) into set ``out``; ``x`` has ``n_channels`` in all."""
    total = n_channels if isinstance(x, Cat) else 0
    for part, start in parts_of(x):
        r.edges(DenseEdges(part.set, out, edge_type, weight, kernel=kernel, in_offset=start,
                           in_total=total))


def token_linear(r, x: Feat | Mixed, weight: str, bias: str | None, n_out: int, n_in: int,
                 path: str) -> Mixed:
    """A linear map along an axis other than the features' (MLP-Mixer's token MLP), one map
    shared by every channel. Its inputs are the positions on that axis, a fixed set (or the
    outputs of the map before, in a token MLP), its outputs a new set there: edges
    ``TOKEN_MIX`` carry ``W[out, in]``, the outputs the bias. The channels pass through: they
    keep their permutations, not their sign and scale symmetries (the map's bias and what
    follows it are not linear in a channel's values)."""
    if x.shape[-1] != n_in:
        r.refuse(f"expects {n_in} inputs, got {x.shape[-1]}")
    if isinstance(x, Mixed):
        src = x.set
        r.use(x, "linear")
        carrier, carrier_dim = x.carrier, x.carrier_dim
    else:
        r.use(x, "other")  # rules out the channels' sign and scale
        src = r.new_set(f"{path}.positions", n_in, NodeType.TOKEN, role="token")
        carrier, carrier_dim = x.set, x.dim
    out = r.new_set(path, n_out, NodeType.LINEAR, scalable=True)
    r.edges(DenseEdges(src, out, EdgeType.TOKEN_MIX, weight))
    r.node_slot(out, NODE_BIAS, bias)
    shape = r.out_shape()
    return Mixed(out, len(shape) - 1, shape, carrier, carrier_dim)


def _along_another_axis(x) -> bool:
    return isinstance(x, Mixed) or (isinstance(x, Feat) and x.spatial is None
                                    and x.dim != len(x.shape) - 1)


def linear(r, x, weight: str, bias: str | None, n_out: int, n_in: int, path: str):
    if _along_another_axis(x):
        return token_linear(r, x, weight, bias, n_out, n_in, path)
    x = r.features(x, dim=-1, what=f"linear layer {path!r}")
    C = sum(x.sizes) if isinstance(x, Cat) else r.bp.sets[x.set].size
    if x.spatial is not None:
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
    dense_edges(r, x, out, edge_type, weight, kernel, C)
    r.node_slot(out, NODE_BIAS, bias)
    shape = r.out_shape()
    return Feat(out, len(shape) - 1, shape)


@register_module(nn.Linear)
@reads_concat
@reads_mixed
def _linear_module(r, m, path, x):
    return linear(r, x, f"{path}.weight", bias_name(m, path), m.out_features, m.in_features,
                  path)


@register_function(F.linear)
@reads_concat
@reads_mixed
def _linear_function(r, x, weight, bias=None):
    if not isinstance(weight, ParamRef) or not (bias is None or isinstance(bias, ParamRef)):
        r.refuse("F.linear is read only with parameters as weight and bias")
    n_out, n_in = r.param_shape(weight)
    path = weight.name.rsplit(".", 1)[0] if "." in weight.name else weight.name
    return linear(r, x, weight.name, bias.name if bias else None, n_out, n_in, path)


@register_module(nn.Conv1d, nn.Conv2d)
@reads_concat
def _conv(r, m, path, x):
    what = f"convolution {path!r}"
    x = r.features(x, dim=1, size=m.in_channels, what=what)
    if isinstance(x, Cat) and m.groups > 1:
        r.refuse(f"{what} with groups reads a concatenation along its input channels")
    r.use(x, "linear")
    kernel = tuple(m.kernel_size)
    kernel = (1, kernel[0]) if len(kernel) == 1 else kernel
    out = r.new_set(path, m.out_channels, NodeType.CONV, scalable=True)
    if isinstance(x, Cat):
        dense_edges(r, x, out, EdgeType.CONV, f"{path}.weight", kernel, m.in_channels)
    else:
        r.edges(DenseEdges(x.set, out, EdgeType.CONV, f"{path}.weight", groups=m.groups,
                           kernel=kernel))
    r.node_slot(out, NODE_BIAS, bias_name(m, path))
    if m.groups > 1:
        # Input group k feeds only output group k: groups move together on both sides.
        r.constrain(x.set, m.groups, f"{path}.groups")
        r.constrain(out, m.groups, f"{path}.groups")
    return Feat(out, 1, r.out_shape())


@register_module(nn.ConvTranspose1d, nn.ConvTranspose2d)
@reads_concat
def _conv_transpose(r, m, path, x, output_size=None):
    """Weight ``[in, out, kh, kw]``: edge ``(i, o)`` carries ``W[i, o]``; a part of a
    concatenated input reads its own rows, a contiguous slice."""
    if m.groups > 1:
        r.refuse("transposed convolution with groups is not read yet")
    x = r.features(x, dim=1, size=m.in_channels, what=f"transposed convolution {path!r}")
    r.use(x, "linear")
    kernel = tuple(m.kernel_size)
    kernel = (1, kernel[0]) if len(kernel) == 1 else kernel
    out = r.new_set(path, m.out_channels, NodeType.CONV, scalable=True)
    K = kernel[0] * kernel[1]
    for part, start in parts_of(x):
        r.edges(DenseEdges(part.set, out, EdgeType.CONV_TRANSPOSE, f"{path}.weight",
                           offset=start * m.out_channels * K, kernel=kernel, transposed=True))
    r.node_slot(out, NODE_BIAS, bias_name(m, path))
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
