"""The rule of ``MultiheadAttention``: Q, K, V sets with heads as permutation blocks."""

from __future__ import annotations

from torch import nn

from weightspace.graph.blocks import (
    NODE_BIAS,
    DenseEdges,
    DiagEdges,
    HeadEdges,
)
from weightspace.graph.rules.dense import bias_name
from weightspace.graph.rules.registry import register_module
from weightspace.graph.values import Feat
from weightspace.graph.vocab import EdgeType, NodeType


@register_module(nn.MultiheadAttention)
def _multihead_attention(r, m, path, query, key, value, *args, **kwargs):
    if not m._qkv_same_embed_dim or m.bias_k is not None or m.add_zero_attn:
        r.refuse("only attention with equal q/k/v sizes, no bias_k/bias_v, no add_zero_attn")
    E, H = m.embed_dim, m.num_heads
    q = r.feat(query, dim=-1, size=E, what=f"attention {path!r}")
    k = r.feat(key, dim=-1, size=E, what=f"attention {path!r}")
    v = r.feat(value, dim=-1, size=E, what=f"attention {path!r}")
    bias = bias_name(m, path, "in_proj_bias")
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
    r.node_slot(out, NODE_BIAS, bias_name(m.out_proj, f"{path}.out_proj"))
    return (Feat(out, q.dim, q.shape), None)


# ---------------------------------------------------------------------- activations
