"""Attention: ``MultiheadAttention`` and timm's fused-qkv ``Attention``, as Q, K, V sets with
heads as permutation blocks."""

from __future__ import annotations

from torch import nn

from weightspace.graph.blocks import (
    NODE_BIAS,
    DenseEdges,
    DiagEdges,
    HeadEdges,
)
from weightspace.graph.rules.dense import bias_name
from weightspace.graph.rules.registry import register_module, register_module_name
from weightspace.graph.values import Feat
from weightspace.graph.vocab import EdgeType, NodeType


def attention(r, path: str, inputs, heads: int, width: int, in_weight: str,
              in_bias: str | None, out_weight: str, out_bias: str | None, out_size: int):
    """Sets Q, K, V of ``width`` features each, read from ``inputs`` (query, key, value) through
    the rows ``[i * width, (i + 1) * width)`` of one stacked ``[3 * width, in]`` projection,
    heads as permutation blocks, and the output projection V -> out."""
    sets = {}
    for i, (x, name, node_type, edge_type) in enumerate(
        [(inputs[0], "q", NodeType.ATTN_Q, EdgeType.ATTN_Q),
         (inputs[1], "k", NodeType.ATTN_K, EdgeType.ATTN_K),
         (inputs[2], "v", NodeType.ATTN_V, EdgeType.ATTN_V)]
    ):
        r.use(x, "linear")
        s = r.new_set(f"{path}.{name}", width, node_type)
        n_in = x.shape[x.dim]
        r.edges(DenseEdges(x.set, s, edge_type, in_weight, offset=i * width * n_in))
        r.node_slot(s, NODE_BIAS, in_bias, offset=i * width)
        r.constrain(s, heads, f"{path}.heads")
        sets[name] = s
    # softmax(Q_h K_h^T) V_h is unchanged by one permutation applied to the features of Q_h and
    # K_h together, and by any permutation of the features of V_h; heads move as wholes.
    r.tie(sets["q"], sets["k"])
    r.edges(DiagEdges(sets["q"], sets["k"], EdgeType.ATTN_QK))
    r.edges(HeadEdges(sets["k"], sets["v"], EdgeType.ATTN_KV, heads))
    out = r.new_set(f"{path}.out_proj", out_size, NodeType.ATTN_OUT, scalable=True)
    r.edges(DenseEdges(sets["v"], out, EdgeType.ATTN_OUT, out_weight))
    r.node_slot(out, NODE_BIAS, out_bias)
    return out


@register_module(nn.MultiheadAttention)
def _multihead_attention(r, m, path, query, key, value, *args, **kwargs):
    if not m._qkv_same_embed_dim or m.bias_k is not None or m.add_zero_attn:
        r.refuse("only attention with equal q/k/v sizes, no bias_k/bias_v, no add_zero_attn")
    E, H = m.embed_dim, m.num_heads
    q, k, v = (r.feat(x, dim=-1, size=E, what=f"attention {path!r}") for x in (query, key, value))
    out = attention(r, path, (q, k, v), H, E, f"{path}.in_proj_weight",
                    bias_name(m, path, "in_proj_bias"), f"{path}.out_proj.weight",
                    bias_name(m.out_proj, f"{path}.out_proj"), E)
    return (Feat(out, q.dim, q.shape), None)


# timm's ViT attention: one fused qkv Linear whose output is reshaped to [B, N, 3, H, D], then
# scaled dot-product attention and a projection. Matched by its class's qualified name, so
# that weightspace never imports timm.
@register_module_name("timm.layers.attention.Attention",
                      "timm.models.vision_transformer.Attention")
def _fused_qkv_attention(r, m, path, x, attn_mask=None, is_causal=False, *args, **kwargs):
    plain = all(isinstance(getattr(m, a, None), nn.Identity) for a in ("q_norm", "k_norm", "norm"))
    if not plain or getattr(m, "gate", None) is not None:
        r.refuse("timm attention with q/k norms, a scale norm or a gate is not read yet")
    x = r.feat(x, dim=-1, size=m.qkv.in_features, what=f"attention {path!r}")
    width = m.num_heads * m.head_dim
    out = attention(r, path, (x, x, x), m.num_heads, width, f"{path}.qkv.weight",
                    bias_name(m.qkv, f"{path}.qkv"), f"{path}.proj.weight",
                    bias_name(m.proj, f"{path}.proj"), m.proj.out_features)
    return Feat(out, x.dim, r.out_shape())


