"""LeViT's attention (timm's ``levit`` ``Attention`` and ``AttentionDownsample``), matched by
class name so that weightspace never imports timm.

One ``LinearNorm`` (a bias-free Linear and a BatchNorm over every token) projects the tokens
to queries, keys and values whose rows interleave the heads: head ``h`` owns rows
``[h D, (h + 1) D)`` with ``D = 2 d_k + d_v`` (``[q_h, k_h, v_h]``; the downsampling variant's
``kv`` holds ``[k_h, v_h]`` and a ``LinearNorm`` of its own gives the queries of the
subsampled tokens). Each of Q, K, V is a node set read head by head (``DenseEdges.first`` /
``count``), followed by its BatchNorm's set, read the same way. As for ``MultiheadAttention``,
heads move as permutation blocks of Q, K and V together, Q and K share one permutation
within a head, and V's features permute freely. The learned attention biases ``[heads, N]``
are edges from the key positions (a fixed set) to one node per head, which moves with the
head order and connects to its head's keys. The projection (an activation, then a
``LinearNorm``) reads V's normalised nodes.
"""

from __future__ import annotations

from weightspace.graph.blocks import DenseEdges, DiagEdges, HeadEdges
from weightspace.graph.rules.norm import norm_reads
from weightspace.graph.rules.registry import module_rule, register_module_name
from weightspace.graph.values import Feat
from weightspace.graph.vocab import EdgeType, NodeType

_ROLES = {"q": (NodeType.ATTN_Q, EdgeType.ATTN_Q), "k": (NodeType.ATTN_K, EdgeType.ATTN_K),
          "v": (NodeType.ATTN_V, EdgeType.ATTN_V)}


def _check_linear_norm(r, ln, what: str):
    if type(ln).__name__ != "LinearNorm" or ln.linear.bias is not None:
        r.refuse(f"{what} is not a LinearNorm (a bias-free Linear and a BatchNorm1d)")


def _projected(r, x: Feat, path: str, parts: list[tuple[str, int]], heads: int,
               group: str) -> dict[str, int]:
    """The normalised sets of one interleaved projection: ``parts`` lists each head's rows in
    order, ``(name, width)``; returns the set of each name after its BatchNorm."""
    stride = sum(w for _, w in parts)
    n_in, bn = x.shape[x.dim], f"{path}.bn"
    sets, start = {}, 0  # start: the part's first row within a head's rows
    for name, width in parts:
        node_type, edge_type = _ROLES[name]
        raw = r.new_set(f"{path}.{name}", heads * width, node_type)
        normed = r.new_set(f"{bn}.{name}", heads * width, NodeType.NORM)
        r.tie(raw, normed)
        for h in range(heads):
            row, first = h * stride + start, h * width
            r.edges(DenseEdges(x.set, raw, edge_type, f"{path}.linear.weight",
                               offset=row * n_in, first=first, count=width))
            norm_reads(r, raw, normed, f"{bn}.weight", f"{bn}.bias",
                       (f"{bn}.running_mean", f"{bn}.running_var"), offset=row, first=first,
                       count=width)
        for s in (raw, normed):
            r.constrain(s, heads, group)
        sets[name] = normed
        start += width
    return sets


def _levit_attention(r, m, path, x, downsample: bool):
    if getattr(m, "use_conv", False):
        r.refuse("LeViT attention on convolutions (use_conv) is not read yet")
    what = f"LeViT attention {path!r}"
    x = r.feat(x, dim=-1, what=what)
    r.use(x, "linear")
    H, kd, vd = m.num_heads, m.key_dim, m.val_dim
    group = f"{path}.heads"
    if downsample:
        _check_linear_norm(r, m.kv, what)
        _check_linear_norm(r, m.q.ln, what)
        sets = _projected(r, x, f"{path}.kv", [("k", kd), ("v", vd)], H, group)
        sets.update(_projected(r, x, f"{path}.q.ln", [("q", kd)], H, group))
    else:
        _check_linear_norm(r, m.qkv, what)
        sets = _projected(r, x, f"{path}.qkv", [("q", kd), ("k", kd), ("v", vd)], H,
                          group)
    # softmax(Q_h K_h^T + B_h) V_h: one permutation of the features of Q_h and K_h together,
    # any of V_h's, heads as wholes (with their biases B_h)
    r.tie(sets["q"], sets["k"])
    r.edges(DiagEdges(sets["q"], sets["k"], EdgeType.ATTN_QK))
    r.edges(HeadEdges(sets["k"], sets["v"], EdgeType.ATTN_KV, H))
    n_keys = m.attention_biases.shape[1]
    positions = r.new_set(f"{path}.positions", n_keys, NodeType.TOKEN, role="token")
    head = r.new_set(f"{path}.head", H, NodeType.ATTN_HEAD)
    r.constrain(head, H, group)
    r.edges(DenseEdges(positions, head, EdgeType.ATTN_BIAS, f"{path}.attention_biases"))
    r.edges(HeadEdges(head, sets["k"], EdgeType.ATTN_HEAD, H))
    # the projection: an activation of the attention's values, then a LinearNorm
    act, ln = m.proj.act, m.proj.ln
    _check_linear_norm(r, ln, what)
    v = Feat(sets["v"], x.dim, (*x.shape[:-1], H * vd))
    rule = module_rule(act)
    if rule is None:
        r.refuse(f"{what}: no rule reads its activation {type(act).__name__}")
    v = rule(r, act, f"{path}.proj.act", v)
    out = module_rule(ln.linear)(r, ln.linear, f"{path}.proj.ln.linear", v)
    shape = r.out_shape()
    flat = Feat(out.set, 1, (shape[0] * shape[1], shape[2]))  # the BatchNorm's input
    normed = module_rule(ln.bn)(r, ln.bn, f"{path}.proj.ln.bn", flat)
    return Feat(normed.set, len(shape) - 1, shape)


@register_module_name("timm.models.levit.Attention")
def _attention(r, m, path, x):
    return _levit_attention(r, m, path, x, downsample=False)


@register_module_name("timm.models.levit.AttentionDownsample")
def _attention_downsample(r, m, path, x):
    return _levit_attention(r, m, path, x, downsample=True)
